//! `restore`: getting a target, or chosen files and globs of it, back from
//! tape into a destination directory. This module owns finding the tape file
//! that holds the target (and refusing while another tape is online or the
//! loaded tape's label is wrong), streaming that tape file off the drive on a
//! reader thread ([`stream_file`], also used by `scan_tape`), choosing the
//! members to extract ([`Selection`], with its byte-wise glob matcher),
//! writing them without ever writing outside the destination or following a
//! symlink found there (a symlink pointing outside the destination is
//! refused, or with `--symlinks-as-is` created as it is and still never
//! followed), md5-ing every regular file as it is written against
//! the catalogue, and the history row and summary of the attempt. Member
//! names are made relative to the target: restoring `/data/t00` into `DIR`
//! puts `/data/t00/sub/f.dat` at `DIR/sub/f.dat`. A file whose md5 differs
//! from the catalogue is kept under its name and reported; an existing file
//! or symlink is skipped unless `--overwrite` (which replaces it, never what
//! it points to), an existing directory is merged into; ownership is not
//! restored, and set-uid/set-gid bits are dropped.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use md5::{Digest, Md5};
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use crate::catalog::{Catalog, Mode, Outcome, RestoreSource, Tape, show};
use crate::config::Config;
use crate::drive::{self, Access, Drive, stream_file};
use crate::exit_codes::{Exit, ExitCode};
use crate::tape_file::TapeFile;
use crate::tarstream::{self, Member, MemberKind, NameSafety};
use crate::{label, stop};

mod copies;

/// Options of `restore`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Target directory as imported.
    pub target: Vec<u8>,
    /// Files or globs relative to the target (empty: all).
    pub files: Vec<Vec<u8>>,
    /// Destination directory.
    pub to: PathBuf,
    /// Replace existing files.
    pub overwrite: bool,
    /// Restore symlinks pointing outside the destination as they are
    /// (default: refuse them).
    pub symlinks_as_is: bool,
}

/// Where the catalogue says a target is on tape.
struct Located {
    target_id: i64,
    target: Vec<u8>,
    tape: Tape,
    file_number: TapeFile,
}

/// Run `restore`.
pub fn run(config: &Config, opts: Options) -> Result<ExitCode> {
    let (cat, writable) = open_catalogue(config)?;
    let target = crate::target_path::normalise(&opts.target).with_context(|| {
        format!("restore target {:?}: give the target's absolute path as imported", show(&opts.target))
    })?;
    cat.set_copy_pools(&config.copy_pools);
    if let Some(copies) = copies::several(&cat, &target)? {
        return copies::run(config, &cat, writable, copies, &opts);
    }
    let loc = locate(&cat, &target)?;
    let selection = Selection::new(&target, &opts.files)?;
    // On a library the tape is loaded (and claimed) here; else it must be online.
    let _claim = match crate::library::LibraryDrive::from_config(config)? {
        Some(lib) => {
            Some(lib.mount_tape(&loc.tape, &config.database_file, &format!("restore --drive {}", lib.name))?)
        }
        None => require_online(&cat, &loc).map(|()| None)?,
    };
    fs::create_dir_all(&opts.to).with_context(|| format!("cannot create the destination {}", opts.to.display()))?;
    let history = match writable {
        true => Some(cat.history_start("restore", &loc.tape.name, loc.file_number, &loc.target)?),
        false => None,
    };
    let outcome = restore_target(config, &cat, &loc, selection, &opts, &mut HashSet::new());
    let outcome = outcome.with_context(|| {
        format!("restore of {} from tape \"{}\" file {}", show(&loc.target), loc.tape.name, loc.file_number)
    });
    if let Some(id) = history {
        end_history(&cat, id, &outcome)?;
    }
    let (counts, unmatched) = outcome?;
    verdict(&loc, &opts.to, &counts, &unmatched)
}

/// Open the catalogue to write its history; a catalogue that cannot be
/// written is still read, and the restore goes unrecorded.
fn open_catalogue(config: &Config) -> Result<(Catalog, bool)> {
    match Catalog::open(&config.database_file, Mode::ReadWrite) {
        Ok(cat) => Ok((cat, true)),
        Err(e) => {
            let cat = Catalog::open(&config.database_file, Mode::ReadOnly).map_err(|_| anyhow!("{e:#}"))?;
            eprintln!(
                "tapeop: warning: the catalogue cannot be written ({e:#}); this restore is not recorded in its history"
            );
            Ok((cat, false))
        }
    }
}

fn locate(cat: &Catalog, target: &[u8]) -> Result<Located> {
    let target_id = cat.target_id_by_name(target)?.with_context(|| {
        format!("no target {} in the catalogue (tapeop where_is NAME finds a file's target)", show(target))
    })?;
    let Some(RestoreSource { tape_id, file_number, status }) = cat.restore_source(target_id)? else {
        bail!("target {} is not on tape yet: it is not assigned to any tape", show(target));
    };
    let tape = cat.tapes()?.into_iter().find(|t| t.id == tape_id);
    let tape =
        tape.with_context(|| format!("target {} has a backup on tape id {tape_id}, which is missing", show(target)))?;
    if !status.is_on_tape() {
        bail!("target {} is not on tape yet: its backup on tape \"{}\" is {status}", show(target), tape.name);
    }
    let file_number = file_number.with_context(|| {
        format!(
            "target {} is {status} on tape \"{}\" but has no tape file number in the catalogue: tapeop check lists damaged rows",
            show(target),
            tape.name
        )
    })?;
    Ok(Located { target_id, target: target.to_vec(), tape, file_number })
}

fn require_online(cat: &Catalog, loc: &Located) -> Result<()> {
    if loc.tape.online {
        return Ok(());
    }
    let online = match cat.online_tape()? {
        Some(t) => format!("the online tape is \"{}\"", t.name),
        None => "no tape is online".to_string(),
    };
    let name = &loc.tape.name;
    Err(Exit::error(
        ExitCode::Failure,
        format!(
            "{} is on tape \"{name}\" file {}, but {online}: load tape \"{name}\" and run `tapeop activate_tape {name}` \
             (with emulator_dir, point it at that tape's directory first), then restore again; nothing was restored",
            show(&loc.target),
            loc.file_number
        ),
    ))
}

/// The label tapeop recorded for `tape` (none on a legacy catalogue that
/// tapeop has not upgraded yet).
pub fn tape_label(cat: &Catalog, tape: &Tape) -> Result<Option<String>> {
    if !cat.has_totals()? {
        return Ok(None);
    }
    label::recorded_label(cat, tape)
}

fn check_label(cat: &Catalog, drive: &mut dyn Drive, tape: &Tape) -> Result<()> {
    let Some(want) = tape_label(cat, tape)? else { return Ok(()) };
    let found =
        label::read_label(drive).with_context(|| format!("reading the tape label at file 0 of {}", drive.name()))?;
    let name = &tape.name;
    match found {
        Some(l) if l.tape == *name && l.catalogue == want => Ok(()),
        Some(l) => Err(Exit::error(
            ExitCode::Failure,
            format!(
                "wrong tape: the target is on tape \"{name}\", but the loaded tape's label says \"{}\" (catalogue {}); load tape \"{name}\"; nothing was restored",
                l.tape, l.catalogue
            ),
        )),
        None => Err(Exit::error(
            ExitCode::Failure,
            format!(
                "wrong tape: tape \"{name}\" was labelled by tapeop, but the loaded tape has no tapeop label at file 0; load tape \"{name}\"; nothing was restored"
            ),
        )),
    }
}

fn restore_target(
    config: &Config,
    cat: &Catalog,
    loc: &Located,
    selection: Selection,
    opts: &Options,
    written: &mut HashSet<Vec<u8>>,
) -> Result<(Counts, Vec<Vec<u8>>)> {
    let mut drive = drive::open(&config.drive, Access::Read, config.block_size)?;
    let end_of_data = match label::take_trusted(cat, &mut *drive, &config.drive, &loc.tape) {
        Some(last) => {
            label::announce_trusted(&loc.tape, &last);
            last.end_of_data
        }
        None => check_label(cat, &mut *drive, &loc.tape).map(|()| None)?,
    };
    let expected = load_expected(cat, loc.target_id)?;
    let prefix = loc.target.strip_prefix(b"/").unwrap_or(&loc.target).to_vec();
    let mut r = Restorer::new(opts.to.clone(), prefix, selection, expected, opts.overwrite);
    r.symlinks_as_is = opts.symlinks_as_is;
    r.replaceable = written.clone();
    let n = loc.file_number;
    println!("Restoring {} from tape \"{}\" file {n} to {} ...", show(&loc.target), loc.tape.name, opts.to.display());
    let walked = stream_file(&mut *drive, n.get(), |reader| tarstream::walk(reader, |m, content| r.member(m, content)));
    label::remember(cat, &mut *drive, &config.drive, &loc.tape, end_of_data, "restore");
    let dirs = r.finish_dirs();
    if walked.is_err() {
        println!("{}", r.counts.summary(&opts.to));
    }
    written.extend(r.written.drain());
    walked.with_context(|| format!("tape file {n} ({})", drive.name()))?;
    dirs?;
    Ok((r.counts, r.selection.unmatched()))
}

fn end_history(cat: &Catalog, id: i64, outcome: &Result<(Counts, Vec<Vec<u8>>)>) -> Result<()> {
    match outcome {
        Ok((c, unmatched)) => match c.problems(unmatched) {
            None => cat.history_end(id, Some(c.bytes), Outcome::Ok, None),
            Some(p) => cat.history_end(id, Some(c.bytes), Outcome::Failed, Some(p)),
        },
        Err(e) => cat.history_end(id, None, Outcome::Failed, Some(format!("{e:#}"))),
    }
}

fn verdict(loc: &Located, to: &Path, counts: &Counts, unmatched: &[Vec<u8>]) -> Result<ExitCode> {
    for u in unmatched {
        eprintln!("tapeop: nothing in {} matches {}", show(&loc.target), show(u));
    }
    println!("{}", counts.summary(to));
    match counts.problems(unmatched) {
        None => Ok(ExitCode::Success),
        Some(p) => Err(Exit::error(
            ExitCode::Failure,
            format!(
                "restore of {} from tape \"{}\" file {} is incomplete: {p}",
                show(&loc.target),
                loc.tape.name,
                loc.file_number
            ),
        )),
    }
}

/// What the catalogue says about one file of the target.
struct Expected {
    md5: String,
    link: Option<Vec<u8>>,
}

fn load_expected(cat: &Catalog, target_id: i64) -> Result<HashMap<Vec<u8>, Expected>> {
    let mut map = HashMap::new();
    cat.each_file(target_id, |f| {
        map.insert(f.name, Expected { md5: f.md5, link: f.link_target });
        Ok(())
    })?;
    Ok(map)
}

/// Tallies of one restore.
#[derive(Debug, Clone, Default)]
struct Counts {
    files: u64,
    bytes: u64,
    symlinks: u64,
    dirs: u64,
    mismatches: u64,
    refused: u64,
    skipped: u64,
    unchecked: u64,
    /// Symlinks pointing outside the destination: refused (default).
    outside_refused: u64,
    /// Symlinks pointing outside the destination: restored as they are.
    outside_kept: u64,
}

impl Counts {
    fn summary(&self, to: &Path) -> String {
        let mut s = format!(
            "Restored {} files ({} bytes), {} symlinks, {} directories to {}; {} md5 mismatches, {} refused, {} skipped (exist)",
            self.files,
            self.bytes,
            self.symlinks,
            self.dirs,
            to.display(),
            self.mismatches,
            self.refused,
            self.skipped
        );
        if self.unchecked > 0 {
            s.push_str(&format!(", {} unchecked (not in the catalogue)", self.unchecked));
        }
        if self.outside_kept > 0 {
            s.push_str(&format!(
                ", {} symlinks pointing outside the destination restored as they are (--symlinks-as-is)",
                self.outside_kept
            ));
        }
        s
    }

    /// What went wrong, in one line; None when everything was restored and matched.
    fn problems(&self, unmatched: &[Vec<u8>]) -> Option<String> {
        let mut parts: Vec<String> = [
            (self.mismatches, "md5 mismatches"),
            (self.refused, "refused"),
            (self.skipped, "skipped because they exist (--overwrite replaces them)"),
            (self.unchecked, "unchecked (not in the catalogue)"),
            (unmatched.len() as u64, "names or globs matched nothing"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if self.outside_refused > 0 {
            parts.push(format!(
                "{} of them symlinks pointing outside the destination (restore --symlinks-as-is restores them as they are, as tar does)",
                self.outside_refused
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Extracts the selected members of one tape file below `dest`.
struct Restorer {
    dest: PathBuf,
    prefix: Vec<u8>,
    selection: Selection,
    expected: HashMap<Vec<u8>, Expected>,
    overwrite: bool,
    /// Restore symlinks pointing outside the destination as they are.
    symlinks_as_is: bool,
    /// Regular files written in this run (relative name -> md5), for hard links.
    restored: HashMap<Vec<u8>, [u8; 16]>,
    /// Relative directories known to be real directories (not symlinks).
    real_dirs: HashSet<Vec<u8>>,
    /// Directories restored, in stream order, with their mode and mtime.
    dir_times: Vec<(PathBuf, u32, u64)>,
    /// Non-directories this run created (relative names).
    written: HashSet<Vec<u8>>,
    /// What an earlier attempt from another copy wrote: replaced without --overwrite.
    replaceable: HashSet<Vec<u8>>,
    first: bool,
    counts: Counts,
}

impl Restorer {
    fn new(
        dest: PathBuf,
        prefix: Vec<u8>,
        selection: Selection,
        expected: HashMap<Vec<u8>, Expected>,
        overwrite: bool,
    ) -> Self {
        Restorer {
            dest,
            prefix,
            selection,
            expected,
            overwrite,
            symlinks_as_is: false,
            restored: HashMap::new(),
            real_dirs: HashSet::new(),
            dir_times: Vec::new(),
            written: HashSet::new(),
            replaceable: HashSet::new(),
            first: true,
            counts: Counts::default(),
        }
    }

    /// Handle one member of the stream.
    fn member(&mut self, m: Member, content: &mut dyn Read) -> Result<()> {
        stop::check_abort()?;
        let first = std::mem::replace(&mut self.first, false);
        let Some(rel) = self.relative(&m, first)? else { return Ok(()) };
        if rel.is_empty() || !self.selection.matches(&rel) {
            return Ok(());
        }
        match m.kind {
            MemberKind::File => self.file(&rel, &m, content),
            MemberKind::HardLink => self.hard_link(&rel, &m),
            MemberKind::Symlink => self.symlink(&rel, &m),
            MemberKind::Directory => self.directory(&rel, &m),
            MemberKind::Other(t) => {
                self.refuse(&rel, &format!("special file (tar type {}) is not restored", show(&[t])));
                Ok(())
            }
        }
    }

    /// The member's name relative to the target, cleaned; None (reported) when unsafe.
    fn relative(&mut self, m: &Member, first: bool) -> Result<Option<Vec<u8>>> {
        match tarstream::classify_name(&m.name) {
            NameSafety::Absolute => return Ok(self.refuse_none(&m.name, "absolute member name")),
            NameSafety::DotDot => return Ok(self.refuse_none(&m.name, "member name with a '..' component")),
            NameSafety::Relative => {}
        }
        match tarstream::strip_prefix(&m.name, &self.prefix) {
            Some(rel) => Ok(Some(clean(rel))),
            None if first => bail!(
                "wrong tape or catalogue out of step: the tape file's first member {} is not inside the target /{}; nothing was written",
                show(&m.name),
                show(&self.prefix)
            ),
            None => Ok(self.refuse_none(&m.name, "outside the target")),
        }
    }

    fn refuse(&mut self, name: &[u8], why: &str) {
        eprintln!("tapeop: refused {}: {why}", show(name));
        self.counts.refused += 1;
    }

    fn refuse_none<T>(&mut self, name: &[u8], why: &str) -> Option<T> {
        self.refuse(name, why);
        None
    }

    fn skip_existing(&mut self, rel: &[u8], path: &Path, what: &str) {
        eprintln!("tapeop: skipped {}: {} already exists{what}", show(rel), path.display());
        self.counts.skipped += 1;
    }

    fn path_of(&self, rel: &[u8]) -> PathBuf {
        self.dest.join(OsStr::from_bytes(rel))
    }

    /// Make every directory between the destination and `rel` a real
    /// directory, creating missing ones; false (reported) if one is a symlink
    /// or not a directory.
    fn ensure_parents(&mut self, rel: &[u8]) -> Result<bool> {
        let Some(end) = rel.iter().rposition(|&b| b == b'/') else { return Ok(true) };
        let parent = rel.get(..end).unwrap_or_default();
        if self.real_dirs.contains(parent) {
            return Ok(true);
        }
        let mut sofar: Vec<u8> = Vec::new();
        for comp in parent.split(|&b| b == b'/') {
            if !sofar.is_empty() {
                sofar.push(b'/');
            }
            sofar.extend_from_slice(comp);
            if self.real_dirs.contains(&sofar) {
                continue;
            }
            if !self.ensure_dir(&sofar, rel)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn ensure_dir(&mut self, dir: &[u8], rel: &[u8]) -> Result<bool> {
        let path = self.path_of(dir);
        match fs::symlink_metadata(&path) {
            Ok(md) if md.file_type().is_symlink() => {
                self.refuse(rel, &format!("{} in the destination is a symlink; it is not followed", path.display()));
                return Ok(false);
            }
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                self.refuse(rel, &format!("{} in the destination is not a directory", path.display()));
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&path).with_context(|| format!("cannot create directory {}", path.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot examine {}", path.display())),
        }
        self.real_dirs.insert(dir.to_vec());
        Ok(true)
    }

    /// Make way for a new non-directory at `path`: true if it is free now.
    fn make_room(&mut self, rel: &[u8], path: &Path) -> Result<bool> {
        let md = match fs::symlink_metadata(path) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.written.insert(rel.to_vec());
                return Ok(true);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot examine {}", path.display())),
        };
        if md.is_dir() {
            self.skip_existing(rel, path, " as a directory (not replaced, even with --overwrite)");
            return Ok(false);
        }
        if !self.overwrite && !self.replaceable.contains(rel) {
            self.skip_existing(rel, path, " (--overwrite replaces it)");
            return Ok(false);
        }
        self.written.insert(rel.to_vec());
        fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(true)
    }

    fn file(&mut self, rel: &[u8], m: &Member, content: &mut dyn Read) -> Result<()> {
        let path = self.path_of(rel);
        if !self.ensure_parents(rel)? || !self.make_room(rel, &path)? {
            return Ok(());
        }
        let written = write_file(&path, m, content);
        if written.is_err() {
            let _ = fs::remove_file(&path);
        }
        let (digest, bytes) = written.with_context(|| format!("writing {}", path.display()))?;
        self.counts.files += 1;
        self.counts.bytes += bytes;
        self.restored.insert(rel.to_vec(), digest);
        self.check_md5(rel, &digest);
        Ok(())
    }

    fn hard_link(&mut self, rel: &[u8], m: &Member) -> Result<()> {
        let to = m.link_target.as_deref().unwrap_or_default();
        let to_rel = match tarstream::classify_name(to) {
            NameSafety::Relative => tarstream::strip_prefix(to, &self.prefix).map(clean),
            _ => None,
        };
        let Some(to_rel) = to_rel.filter(|r| !r.is_empty()) else {
            self.refuse(rel, &format!("hard link to {}, outside the target", show(to)));
            return Ok(());
        };
        let Some(&digest) = self.restored.get(&to_rel) else {
            self.refuse(
                rel,
                &format!("hard link to {}, which was not restored in this run (select it too)", show(&to_rel)),
            );
            return Ok(());
        };
        let path = self.path_of(rel);
        if !self.ensure_parents(rel)? || !self.make_room(rel, &path)? {
            return Ok(());
        }
        let source = self.path_of(&to_rel);
        fs::hard_link(&source, &path)
            .with_context(|| format!("cannot link {} to {}", path.display(), source.display()))?;
        self.counts.files += 1;
        self.restored.insert(rel.to_vec(), digest);
        self.check_md5(rel, &digest);
        Ok(())
    }

    fn symlink(&mut self, rel: &[u8], m: &Member) -> Result<()> {
        let to = m.link_target.clone().unwrap_or_default();
        let outside = tarstream::link_escapes(rel, &to);
        if outside && !self.symlinks_as_is {
            self.refuse(
                rel,
                &format!(
                    "symlink to {} points outside the destination (--symlinks-as-is restores it as it is)",
                    show(&to)
                ),
            );
            self.counts.outside_refused += 1;
            return Ok(());
        }
        let path = self.path_of(rel);
        if !self.ensure_parents(rel)? || !self.make_room(rel, &path)? {
            return Ok(());
        }
        std::os::unix::fs::symlink(OsStr::from_bytes(&to), &path)
            .with_context(|| format!("cannot create symlink {}", path.display()))?;
        set_mtime_nofollow(&path, m.mtime)?;
        self.counts.symlinks += 1;
        self.counts.outside_kept += u64::from(outside);
        self.check_symlink(rel, &to);
        Ok(())
    }

    fn directory(&mut self, rel: &[u8], m: &Member) -> Result<()> {
        let path = self.path_of(rel);
        if !self.ensure_parents(rel)? {
            return Ok(());
        }
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => {}
            Ok(md) if md.file_type().is_symlink() || !self.overwrite => {
                self.skip_existing(
                    rel,
                    &path,
                    " and is not a directory (--overwrite replaces a file, never a symlink)",
                );
                return Ok(());
            }
            Ok(_) => {
                fs::remove_file(&path).with_context(|| format!("cannot replace {}", path.display()))?;
                fs::create_dir(&path).with_context(|| format!("cannot create directory {}", path.display()))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&path).with_context(|| format!("cannot create directory {}", path.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot examine {}", path.display())),
        }
        self.real_dirs.insert(rel.to_vec());
        self.dir_times.push((path, m.mode, m.mtime));
        self.counts.dirs += 1;
        Ok(())
    }

    fn check_md5(&mut self, rel: &[u8], digest: &[u8; 16]) {
        let got = hex(digest);
        match self.expected.get(rel) {
            Some(e) if e.md5 == got => {}
            Some(e) => {
                eprintln!(
                    "tapeop: MD5 MISMATCH {}: catalogue {}, tape {got} (the file is kept as restored)",
                    show(rel),
                    e.md5
                );
                self.counts.mismatches += 1;
            }
            None => {
                eprintln!("tapeop: unchecked {}: the catalogue has no md5 for it", show(rel));
                self.counts.unchecked += 1;
            }
        }
    }

    fn check_symlink(&mut self, rel: &[u8], to: &[u8]) {
        let problem = match self.expected.get(rel) {
            None => None,
            Some(e) if e.md5 != "symlink" => Some(format!("the catalogue has it as {}, not a symlink", e.md5)),
            Some(Expected { link: Some(want), .. }) if want != to => {
                Some(format!("the catalogue has it pointing to {}", show(want)))
            }
            Some(_) => None,
        };
        if let Some(p) = problem {
            eprintln!("tapeop: MISMATCH symlink {} -> {}: {p}", show(rel), show(to));
            self.counts.mismatches += 1;
        }
    }

    /// Give the restored directories their mode and mtime, deepest first
    /// (after their contents, which would change the mtime).
    fn finish_dirs(&mut self) -> Result<()> {
        for (path, mode, mtime) in self.dir_times.iter().rev() {
            let is_dir = fs::symlink_metadata(path).map(|md| md.is_dir()).unwrap_or(false);
            if !is_dir {
                continue;
            }
            fs::set_permissions(path, Permissions::from_mode(safe_mode(*mode)))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
            set_mtime_nofollow(path, *mtime)?;
        }
        Ok(())
    }
}

/// Create `path` (never through a symlink), copy the member's content into
/// it while md5-ing it, then set its mode and mtime.
fn write_file(path: &Path, m: &Member, content: &mut dyn Read) -> Result<([u8; 16], u64)> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .context("cannot create the file")?;
    let (digest, bytes) = copy_hashing(content, &mut out, m.size)?;
    out.set_permissions(Permissions::from_mode(safe_mode(m.mode))).context("cannot set its mode")?;
    out.set_modified(mtime(m.mtime)).context("cannot set its mtime")?;
    Ok((digest, bytes))
}

fn copy_hashing(content: &mut dyn Read, out: &mut impl Write, size: u64) -> Result<([u8; 16], u64)> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context(format!("read error on tape after {got} of {size} bytes")),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        out.write_all(chunk).context("write error")?;
        hasher.update(chunk);
        got += n as u64;
    }
    if got != size {
        bail!("the member was cut short: {got} of {size} bytes on tape");
    }
    Ok((hasher.finalize().into(), got))
}

/// Permission bits to restore: set-uid and set-gid are dropped (ownership is not restored).
fn safe_mode(mode: u32) -> u32 {
    mode & 0o1777
}

fn mtime(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn set_mtime_nofollow(path: &Path, secs: u64) -> Result<()> {
    let when = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
    utimensat(nix::fcntl::AT_FDCWD, path, &TimeSpec::UTIME_OMIT, &when, UtimensatFlags::NoFollowSymlink)
        .with_context(|| format!("cannot set the mtime of {}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `rel` without empty and `.` components.
fn clean(rel: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect();
    parts.join(&b'/')
}

/// Which members of the target to restore: everything, or those named by
/// FILE_OR_GLOB arguments (relative to the target). A name selects that
/// member and, if it is a directory, everything below it. A glob is matched
/// byte-wise against the whole relative name (see [`Glob`]); a glob that
/// matches a directory selects everything below it too.
#[derive(Debug, Clone)]
pub struct Selection {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    given: Vec<u8>,
    rel: Vec<u8>,
    glob: Option<Glob>,
    matched: bool,
}

impl Selection {
    /// The selection for `files` (relative to `target`, or absolute inside it).
    pub fn new(target: &[u8], files: &[Vec<u8>]) -> Result<Selection> {
        let mut patterns = Vec::new();
        for f in files {
            let rel = if let Some(abs) = f.strip_prefix(b"/") {
                tarstream::strip_prefix(abs, target).with_context(|| {
                    format!("{} is not inside target {}: name files relative to the target", show(f), show(target))
                })?
            } else {
                f.as_slice()
            };
            let rel = clean(rel);
            if rel.split(|&b| b == b'/').any(|c| c == b"..") {
                bail!("{}: '..' is not allowed in a file name to restore", show(f));
            }
            let glob = if rel.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
                Some(Glob::new(&rel).with_context(|| {
                    format!("{} is not a valid glob: escape a literal * ? [ with a backslash", show(f))
                })?)
            } else {
                None
            };
            patterns.push(Pattern { given: f.clone(), rel, glob, matched: false });
        }
        Ok(Selection { patterns })
    }

    /// Whether the member `rel` is selected (and note which patterns matched).
    pub fn matches(&mut self, rel: &[u8]) -> bool {
        if self.patterns.is_empty() {
            return true;
        }
        let mut any = false;
        for p in &mut self.patterns {
            if p.selects(rel) {
                p.matched = true;
                any = true;
            }
        }
        any
    }

    /// The arguments that matched no member.
    pub fn unmatched(&self) -> Vec<Vec<u8>> {
        self.patterns.iter().filter(|p| !p.matched).map(|p| p.given.clone()).collect()
    }
}

impl Pattern {
    fn selects(&self, rel: &[u8]) -> bool {
        if self.rel.is_empty() {
            return true;
        }
        let Some(glob) = &self.glob else {
            return rel == self.rel.as_slice()
                || (rel.starts_with(&self.rel) && rel.get(self.rel.len()) == Some(&b'/'));
        };
        if glob.is_match(rel) {
            return true;
        }
        rel.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .any(|(i, _)| glob.is_match(rel.get(..i).unwrap_or_default()))
    }
}

/// A FILE_OR_GLOB argument compiled for matching whole relative names, byte
/// for byte. The syntax and its translation are globset's (with `/` literal:
/// `*`, `?` and `[...]` never match it; `**` as a whole path component
/// matches any number of components; `\\` escapes; a `[` without a closing
/// `]` is literal). Braces are literal, not alternatives. globset takes the
/// pattern as text, so bytes that are not UTF-8 and the braces go through it
/// as private-use stand-ins, restored to the exact bytes in the regex it
/// produces, which runs on the engine globset uses, with its settings.
#[derive(Debug, Clone)]
pub struct Glob {
    regex: regex_automata::meta::Regex,
}

/// First of the 256 private-use code points standing in for raw bytes.
const STAND_IN: u32 = 0xF0000;

impl Glob {
    /// Compile `pattern`; an error names what is wrong with it.
    pub fn new(pattern: &[u8]) -> Result<Glob> {
        let text = stand_in_text(pattern)?;
        let glob = globset::GlobBuilder::new(&text)
            .literal_separator(true)
            .backslash_escape(true)
            .allow_unclosed_class(true)
            .build()
            .map_err(|e| anyhow::anyhow!("{}", e.kind()))?;
        let regex = restore_stand_ins(glob.regex());
        let syntax = regex_automata::util::syntax::Config::new().utf8(false).dot_matches_new_line(true);
        let config = regex_automata::meta::Regex::config().utf8_empty(false);
        let regex = regex_automata::meta::Regex::builder().syntax(syntax).configure(config).build(&regex)?;
        Ok(Glob { regex })
    }

    /// Whether the whole of `name` matches.
    pub fn is_match(&self, name: &[u8]) -> bool {
        self.regex.is_match(name)
    }
}

/// `pattern` as text for globset: bytes that are not UTF-8, `{` and `}`
/// become stand-ins; a trailing lone `\\` is doubled (it stays literal).
fn stand_in_text(pattern: &[u8]) -> Result<String> {
    let stand_in = |b: u8| char::from_u32(STAND_IN + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut text = String::with_capacity(pattern.len() + 1);
    for chunk in pattern.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '{' | '}' => text.push(stand_in(c as u8)),
                c if (STAND_IN..STAND_IN + 256).contains(&u32::from(c)) => {
                    bail!("character U+{:X} (private use) is not allowed in a glob", u32::from(c))
                }
                c => text.push(c),
            }
        }
        chunk.invalid().iter().for_each(|&b| text.push(stand_in(b)));
    }
    if text.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1 {
        text.push('\\');
    }
    Ok(text)
}

/// globset's regex with each stand-in (escaped as its four UTF-8 bytes)
/// turned back into the one byte it stands for.
fn restore_stand_ins(regex: &str) -> String {
    let mut out = regex.to_string();
    for b in 0..=255u8 {
        let c = char::from_u32(STAND_IN + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER);
        let escaped: String = c.to_string().bytes().map(|x| format!("\\x{x:02x}")).collect();
        if out.contains(&escaped) {
            out = out.replace(&escaped, &format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
        Glob::new(pattern).unwrap().is_match(name)
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*.dat", b"f.dat"));
        assert!(!glob_match(b"*.dat", b"sub/f.dat"));
        assert!(glob_match(b"sub*/f0?1.dat", b"sub2/f001.dat"));
        assert!(glob_match(b"**/*.dat", b"f.dat"));
        assert!(glob_match(b"**/*.dat", b"a/b/f.dat"));
        assert!(glob_match(b"f[0-2]", b"f1"));
        assert!(!glob_match(b"f[!0-2]", b"f1"));
        assert!(glob_match(b"f[^0-2]", b"f7"));
        assert!(glob_match(b"[]x]", b"]"));
        assert!(glob_match(b"a[", b"a["));
        assert!(glob_match(b"a\\*", b"a*"));
        assert!(!glob_match(b"a\\*", b"ab"));
        assert!(!glob_match(b"a?b", b"a/b"));
        assert!(!glob_match(b"a[/]b", b"a/b"));
        assert!(!glob_match(b"a[!x]b", b"a/b"));
        assert!(glob_match(b"f[[:digit:]]", b"f7"));
        assert!(!glob_match(b"f[[:digit:]]", b"fx"));
        assert!(glob_match(b"f[\\]", b"f\\"));
        assert!(glob_match(b"amp&*", b"amp&name.txt"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"x"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"bad\xff*", b"bad\xffname"));
    }

    #[test]
    fn double_star_is_a_whole_component() {
        assert!(glob_match(b"a/**/b", b"a/b"));
        assert!(glob_match(b"a/**/b", b"a/x/y/b"));
        assert!(glob_match(b"a/**", b"a/x/y"));
        assert!(!glob_match(b"a/**", b"a"));
        assert!(glob_match(b"**", b"a/b/c"));
        // Elsewhere `**` is two `*`: it does not cross `/`.
        assert!(glob_match(b"**.dat", b"f.dat"));
        assert!(!glob_match(b"**.dat", b"a/b/f.dat"));
        assert!(!glob_match(b"x**/y", b"x/a/y"));
    }

    #[test]
    fn globs_match_bytes_exactly() {
        // `?` and classes match one byte, also of a multi-byte or non-UTF-8 name.
        assert!(glob_match(b"bad?name", b"bad\xffname"));
        assert!(glob_match(b"caf??", "café".as_bytes()));
        assert!(!glob_match(b"caf?", "café".as_bytes()));
        assert!(glob_match("café*".as_bytes(), "café.txt".as_bytes()));
        assert!(!glob_match(b"bad\xfe*", b"bad\xffname"));
        assert!(glob_match(b"[\xfe\xff]x", b"\xffx"));
        assert!(glob_match(b"[\x80-\xff]x", b"\xc3x"));
        assert!(!glob_match(b"[\x80-\xfe]x", b"\xffx"));
        assert!(glob_match(b"\xff\xff*", b"\xff\xffz"));
        assert!(glob_match(b"new*", b"new\nline"));
        assert!(glob_match(b"**/x", b"a\nb/x"));
        // A private-use character standing for a byte would be ambiguous.
        assert!(Glob::new("\u{F00FF}*".as_bytes()).is_err());
    }

    #[test]
    fn braces_and_backslashes_are_literal() {
        assert!(glob_match(b"a{1,2}*", b"a{1,2}.txt"));
        assert!(!glob_match(b"a{1,2}*", b"a1.txt"));
        assert!(glob_match(b"[{]*", b"{x"));
        assert!(glob_match(b"\\{*", b"{x"));
        assert!(glob_match(b"x*\\", b"xy\\"));
        assert!(glob_match(b"x*\\\\", b"xy\\"));
        assert!(glob_match(b"glob\\[1]\\*\\?.txt", b"glob[1]*?.txt"));
        assert!(!glob_match(b"glob\\[1]\\*\\?.txt", b"glob[1]ab.txt"));
    }

    #[test]
    fn bad_globs_are_errors_naming_the_argument() {
        let err = Selection::new(b"/d/t", &[b"f[z-a]*".to_vec()]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.starts_with("f[z-a]* is not a valid glob"), "{msg}");
    }

    #[test]
    fn selection_of_names_dirs_and_globs() {
        let mut s = Selection::new(b"/d/t", &[b"sub".to_vec(), b"/d/t/x.txt".to_vec(), b"g*".to_vec()]).unwrap();
        assert!(s.matches(b"sub"));
        assert!(s.matches(b"sub/a/b"));
        assert!(!s.matches(b"subway"));
        assert!(s.matches(b"x.txt"));
        assert!(s.matches(b"gdir/inner"));
        assert!(s.unmatched().is_empty());
        let mut none = Selection::new(b"/d/t", &[b"./nothing/".to_vec()]).unwrap();
        assert!(!none.matches(b"other"));
        assert_eq!(none.unmatched(), vec![b"./nothing/".to_vec()]);
        assert!(Selection::new(b"/d/t", &[b"../x".to_vec()]).is_err());
        assert!(Selection::new(b"/d/t", &[b"/elsewhere/x".to_vec()]).is_err());
        assert!(Selection::new(b"/d/t", &[]).unwrap().matches(b"anything"));
    }

    #[test]
    fn cleaning_and_modes() {
        assert_eq!(clean(b"./a//b/./c"), b"a/b/c");
        assert_eq!(safe_mode(0o4755), 0o755);
        assert_eq!(safe_mode(0o1777), 0o1777);
    }
}
