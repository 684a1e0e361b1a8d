//! `scan_tape`: reading a whole tape back without trusting the catalogue.
//! This module owns walking the loaded tape from file 0 to end of data
//! (reading on from where a load leaves the head; end of data is the read
//! that finds no tape file, so the tape is neither spaced to its end nor
//! rewound to count its files; tapeop's label at file 0 is recognised and
//! skipped), parsing and md5-ing
//! every tape file, and then either comparing each one with the catalogue's
//! backup at that file number (compare mode: the tape the label names, or
//! the online tape for an unlabelled one; the catalogue is never changed), or
//! recording a tape the catalogue does not know (`--record-as NAME`): the
//! tape is created `closed` and offline — nothing is ever appended to a tape
//! known only from what could be read back — and each tape file becomes a
//! target (the members' longest common directory, with a leading `/`), its
//! files and md5 sums, and a `recorded` backup at that file number, in one
//! transaction per tape file. Members are held in memory one tape file at a
//! time. `--record-as` creates the catalogue when there is none, so a lost
//! catalogue is rebuilt tape by tape. `--adopt` is compare mode that then
//! records, in the same way, the tape files of the known tape that the
//! catalogue lost (the target's assigned backup on this tape, if any,
//! becomes the recorded one), unless that is ambiguous (see `adopt_lost`).

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};

use crate::catalog::{
    Backup, BackupStatus, Catalog, Mode, NewFile, Outcome, ParentFiles, Tape, legacy_file_number, show,
};
use crate::config::Config;
use crate::drive::stream_file;
use crate::drive::{self, Access, Drive, Next};
use crate::exit_codes::{Exit, ExitCode};
use crate::label::{self, LABEL_MEMBER, Label};
use crate::stop;
use crate::tape_file::TapeFile;
use crate::tarstream::{self, Member, MemberKind};
use crate::verify_stream::Checker;

/// Run `scan_tape` (`adopt`: record the tape files the catalogue lost).
pub fn run(config: &Config, record_as: Option<&str>, adopt: bool) -> Result<ExitCode> {
    if let Some(name) = record_as {
        crate::catalog::check_tape_name(name)?;
    }
    let mode = match (record_as, adopt) {
        (Some(_), _) => Mode::Create,
        (None, true) => Mode::ReadWrite,
        (None, false) => Mode::ReadOnly,
    };
    let cat = Catalog::open(&config.database_file, mode)?;
    if let Some(name) = record_as {
        check_new_name(&cat, name)?;
    }
    let mut drive = drive::open(&config.drive, Access::Read, config.block_size)?;
    // Whatever tape this is, it is read to its end: a proof left for the
    // tape that was in the drive before must not pass for it.
    drive::last_proof::forget(&config.drive);
    // Read from where a load leaves the head: the label first, then the
    // tape files one after the other; the read that finds no tape file is
    // end of data, so nothing spaces to it or rewinds back.
    let label = read_label_here(&mut *drive)?;
    match &label {
        Some(l) => println!(
            "Tape file 0 is tapeop's label: tape \"{}\", serial \"{}\", catalogue {}.",
            l.tape, l.serial, l.catalogue
        ),
        None => println!("The tape has no tapeop label: an old tool's tape, data from file 0."),
    }
    match record_as {
        Some(name) => {
            cat.writable()?;
            record(&cat, &mut *drive, name, label.as_ref())
        }
        None => compare(&cat, &mut *drive, label.as_ref(), adopt),
    }
}

/// The label at tape file 0, read where a load leaves the head (a head
/// elsewhere goes back to file 0 once). A blank tape is refused here.
fn read_label_here(drive: &mut dyn Drive) -> Result<Option<Label>> {
    let blank = |drive: &mut dyn Drive| {
        drive.status().is_ok_and(|s| s.file_number == Some(0) && (s.eod || s.block_number == Some(0)))
    };
    let no_files = |drive: &dyn Drive| anyhow::anyhow!("{} holds no tape files: nothing to scan", drive.name());
    if drive.status().is_ok_and(|s| s.eod && s.file_number == Some(0)) {
        return Err(no_files(drive));
    }
    let label = label::read_label(drive).with_context(|| format!("reading tape file 0 of {}", drive.name()))?;
    // Nothing read and no filemark crossed: the tape is blank.
    if label.is_none() && blank(drive) {
        return Err(no_files(drive));
    }
    Ok(label)
}

/// Say how many tape files the scan found (`count`: end of data).
fn announce_count(drive: &dyn Drive, count: TapeFile) {
    println!("{} holds {count} tape files.", drive.name());
}

fn check_new_name(cat: &Catalog, name: &str) -> Result<()> {
    if let Some(t) = cat.tape_by_name(name)? {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "a tape named \"{name}\" is already in the catalogue (id {}, {}): nothing was recorded; scan_tape without --record-as compares the loaded tape with it",
                t.id, t.status
            ),
        ));
    }
    Ok(())
}

/// One tape file as read back.
struct ScannedFile {
    members: Vec<Member>,
    bytes: u64,
}

impl ScannedFile {
    /// tapeop's catalogue file (the last tape file of a closed or full tape).
    fn is_catalogue(&self) -> bool {
        crate::catalogue_file::is_catalogue_file(self.members.iter().map(|m| m.name.as_slice()))
    }

    /// An unreadable tapeop label at file 0 (read_label could not parse it).
    fn is_label(&self, n: TapeFile) -> bool {
        n == TapeFile::LABEL
            && self.members.len() == 1
            && self.members.iter().all(|m| m.name == LABEL_MEMBER.as_bytes())
    }
}

fn read_tape_file(drive: &mut dyn Drive, n: TapeFile) -> Result<ScannedFile> {
    let mut members = Vec::new();
    let summary = stream_file(drive, n.get(), |reader| scan_members(reader, &mut members))
        .with_context(|| format!("tape file {n} is not a readable tar stream"))?;
    Ok(ScannedFile { members, bytes: summary.stream_bytes })
}

/// Read tape file `n` on from the head (see [`drive::stream_next_file`]):
/// `None` at end of data, else the tape file or why it is unreadable.
fn next_tape_file(drive: &mut dyn Drive, n: TapeFile) -> Result<Option<Result<ScannedFile>>> {
    let mut members = Vec::new();
    let next = drive::stream_next_file(drive, n.get(), |reader| scan_members(reader, &mut members))
        .with_context(|| format!("reading on to tape file {n} of {}; the tape was not read further", drive.name()))?;
    Ok(match next {
        Next::EndOfData => None,
        Next::File(read) => Some(
            read.map(|summary| ScannedFile { members, bytes: summary.stream_bytes })
                .with_context(|| format!("tape file {n} is not a readable tar stream")),
        ),
    })
}

fn scan_members(reader: tarstream::ChannelReader, members: &mut Vec<Member>) -> Result<tarstream::ScanSummary> {
    tarstream::scan(reader, |m| {
        stop::check_abort()?;
        members.push(m);
        Ok(())
    })
}

// ---- compare mode ----

/// What comparing one tape file found.
enum Verdict {
    /// The catalogue's backup at that file number matches.
    Matches,
    /// Unreadable, or different from the catalogue's backup.
    Differs,
    /// Readable, one target, and not written there in the catalogue.
    Lost(Vec<u8>),
}

fn compare(cat: &Catalog, drive: &mut dyn Drive, label: Option<&Label>, adopt: bool) -> Result<ExitCode> {
    let tape = known_tape(cat, label)?;
    if adopt {
        check_adopt_label(cat, &tape, label)?;
        cat.writable()?;
    }
    println!("Comparing with the catalogue's tape \"{}\".", tape.name);
    let first = TapeFile::new(u64::from(label.is_some()));
    let (mut bad, mut lost, mut matched) = (Vec::new(), Vec::new(), 0u64);
    let mut count = first;
    loop {
        stop::check()?;
        let Some(file) = next_tape_file(drive, count)? else { break };
        let n = count;
        count = count.next();
        match compare_file(cat, &tape, n, file)? {
            Verdict::Matches => matched += 1,
            Verdict::Differs => bad.push(n),
            Verdict::Lost(target) => {
                bad.push(n);
                lost.push((n, target));
            }
        }
    }
    announce_count(drive, count);
    for b in cat.written_backups(tape.id, None)? {
        let Some(n) = b.file_number.filter(|n| *n >= count) else { continue };
        println!(
            "file {n}: {}: in the catalogue ({}), but the tape ends after file {}",
            show(&b.target),
            b.status,
            legacy_file_number(count.prev())
        );
        bad.push(n);
    }
    let mut adopted = Vec::new();
    if adopt && !lost.is_empty() {
        adopted = adopt_lost(cat, drive, &tape, &lost, bad.len() - lost.len(), matched + u64::from(label.is_some()))?;
        bad.retain(|n| !adopted.contains(n));
    }
    if bad.is_empty() {
        let note = if adopted.is_empty() { String::new() } else { format!(" ({} adopted)", adopted.len()) };
        println!("Tape \"{}\": all {} tape files match the catalogue{note}.", tape.name, count.get() - first.get());
        return Ok(ExitCode::Success);
    }
    let list: Vec<String> = bad.iter().map(TapeFile::to_string).collect();
    let changed = match (adopt, adopted.len()) {
        (false, _) if !lost.is_empty() => format!(
            "the catalogue was not changed; scan_tape --adopt records the {} tape files it does not know",
            lost.len()
        ),
        (_, 0) => "the catalogue was not changed".to_string(),
        (_, k) => format!("{k} other tape files were adopted"),
    };
    Err(Exit::error(
        ExitCode::Failure,
        format!(
            "tape \"{}\": {} tape files differ from the catalogue (files {}); {changed}",
            tape.name,
            bad.len(),
            list.join(", ")
        ),
    ))
}

/// The catalogue's tape for the loaded one: the one its label names, or the
/// online tape when it has no label.
fn known_tape(cat: &Catalog, label: Option<&Label>) -> Result<Tape> {
    let Some(l) = label else {
        let tape = cat.online_tape()?.context(
            "the loaded tape has no tapeop label and no tape is online: activate_tape NAME to compare, or scan_tape --record-as NAME to record it",
        )?;
        if label::recorded_label(cat, &tape)?.is_some() {
            bail!(
                "wrong tape: the online tape \"{}\" was labelled by tapeop, but the loaded tape has no label",
                tape.name
            );
        }
        return Ok(tape);
    };
    let tape = cat.tape_by_name(&l.tape)?.with_context(|| {
        format!("the loaded tape is labelled \"{}\", which this catalogue does not know: scan_tape --record-as {} records it", l.tape, l.tape)
    })?;
    if let Some(want) = label::recorded_label(cat, &tape)?
        && want != l.catalogue
    {
        eprintln!(
            "tapeop: warning: the label was written for catalogue {}, but this catalogue records tape \"{}\" as labelled for {want}",
            l.catalogue, tape.name
        );
    }
    Ok(tape)
}

/// Compare tape file `n` with the catalogue and print the result.
fn compare_file(cat: &Catalog, tape: &Tape, n: TapeFile, file: Result<ScannedFile>) -> Result<Verdict> {
    if file.as_ref().is_ok_and(ScannedFile::is_catalogue) {
        let known = cat.tape_catalogue_file(tape.id)?.filter(|f| f.file_number == n);
        let note = if known.is_some() { "as the catalogue records" } else { "the catalogue does not record it" };
        println!("file {n}: the tape's catalogue file ({note}); not a target");
        return Ok(Verdict::Matches);
    }
    let backup = cat.backup_at(tape.id, n)?;
    if let Some(b) = backup.as_ref().filter(|b| b.status == BackupStatus::Failed) {
        println!("file {n}: {}: failed confirm and was requeued; not compared", show(&b.target));
        return Ok(Verdict::Matches);
    }
    let backup = backup.filter(|b| b.status.is_on_tape());
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            let what = backup.as_ref().map_or("not in the catalogue".to_string(), |b| show(&b.target));
            println!("file {n}: {what}: UNREADABLE: {e:#}");
            return Ok(Verdict::Differs);
        }
    };
    let Some(backup) = backup else {
        let target = common_target(&file.members);
        let holds = target.as_ref().map_or_else(|e| format!("{e:#}"), |t| show(t));
        println!("file {n}: not in the catalogue as written to tape \"{}\"; the tape file holds {holds}", tape.name);
        return Ok(target.map_or(Verdict::Differs, Verdict::Lost));
    };
    let mut checker = Checker::for_backup(cat, &backup)?;
    for m in &file.members {
        checker.check(m);
    }
    checker.finish();
    if checker.problems.is_empty() {
        println!("file {n}: {}: OK ({} files match)", show(&backup.target), checker.matched);
        return Ok(Verdict::Matches);
    }
    println!("file {n}: {}: {} differences", show(&backup.target), checker.problems.len());
    for p in &checker.problems {
        println!("  {p}");
    }
    Ok(Verdict::Differs)
}

// ---- adopt (`scan_tape --adopt`) ----

/// Adopting writes into this catalogue what the loaded tape holds: a
/// labelled tape must carry this catalogue's label.
fn check_adopt_label(cat: &Catalog, tape: &Tape, label: Option<&Label>) -> Result<()> {
    let (Some(want), Some(l)) = (label::recorded_label(cat, tape)?, label) else { return Ok(()) };
    if l.catalogue != want {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "the loaded tape's label names catalogue {}, but this catalogue labelled tape \"{}\" for {want}: nothing adopted; scan_tape without --adopt only compares",
                l.catalogue, tape.name
            ),
        ));
    }
    Ok(())
}

/// Record the tape files the catalogue lost (`lost`: file number and the
/// target each holds), unless that is ambiguous: the tape must be proven
/// (`proven`: its label, or tape files that matched the catalogue) and
/// agree with everything else the catalogue knows of it (`differing`: how
/// many known tape files differ), and a target must be on one lost tape
/// file only. Returns the file numbers adopted.
fn adopt_lost(
    cat: &Catalog,
    drive: &mut dyn Drive,
    tape: &Tape,
    lost: &[(TapeFile, Vec<u8>)],
    differing: usize,
    proven: u64,
) -> Result<Vec<TapeFile>> {
    let numbers: Vec<String> = lost.iter().map(|(n, _)| n.to_string()).collect();
    let why_not = if differing > 0 {
        Some(format!(
            "{differing} tape files the catalogue knows differ from the loaded tape, so it may not be tape \"{}\"",
            tape.name
        ))
    } else if proven == 0 {
        Some(format!(
            "the loaded tape has no label and none of its tape files matched the catalogue, so nothing proves it is tape \"{}\"",
            tape.name
        ))
    } else {
        None
    };
    if let Some(why) = why_not {
        println!("Not adopting tape files {}: {why}.", numbers.join(", "));
        return Ok(Vec::new());
    }
    let mut adopted = Vec::new();
    for (n, target) in lost {
        stop::check()?;
        let twins: Vec<String> = lost.iter().filter(|(_, t)| t == target).map(|(m, _)| m.to_string()).collect();
        if twins.len() > 1 {
            println!(
                "file {n}: NOT adopted: tape files {} all hold {}; which one the catalogue should know is ambiguous",
                twins.join(", "),
                show(target)
            );
            continue;
        }
        match adopt_file(cat, drive, tape, *n, target) {
            Ok(line) => {
                println!("file {n}: adopted {line}");
                adopted.push(*n);
            }
            Err(e) => println!("file {n}: NOT adopted: {e:#}"),
        }
    }
    println!("Adopted {} of the {} tape files the catalogue did not know.", adopted.len(), lost.len());
    Ok(adopted)
}

/// Record lost tape file `n` (holding `target`) on `tape` in one
/// transaction: the target (new, or the catalogue's, whose files must match
/// the tape), its files when the catalogue has none, and a `recorded`
/// backup (the target's assigned backup on this tape, if it has one).
fn adopt_file(cat: &Catalog, drive: &mut dyn Drive, tape: &Tape, n: TapeFile, target: &[u8]) -> Result<String> {
    let file = read_tape_file(drive, n)?;
    if common_target(&file.members)? != target {
        bail!("the tape file read differently the second time");
    }
    let rows = file_rows(target, &file.members)?;
    let tx = cat.begin_recovery()?;
    let (id, assigned) = match cat.target_id_by_name(target)? {
        Some(id) => (id, adoptable(cat, id, tape, target, &file)?),
        None => (new_target(cat, target)?, None),
    };
    if cat.target_file_count(id)? == 0 {
        cat.add_scanned_files(id, &rows)?;
    }
    cat.mark_target_scanned(id)?;
    let backup_id = match assigned {
        Some(b) => {
            cat.record_assigned(b, n)?;
            b
        }
        None => cat.add_recorded_backup(id, tape, n)?,
    };
    cat.set_backup_bytes(backup_id, file.bytes, true)?;
    tx.commit().with_context(|| format!("adopting tape file {n} ({})", show(target)))?;
    let history = cat.history_start("adopt", &tape.name, n, target)?;
    cat.history_end(history, Some(file.bytes), Outcome::Ok, None)?;
    let files = cat.target_file_count(id)?;
    Ok(format!("{} ({files} files) as recorded on tape \"{}\"", show(target), tape.name))
}

/// Whether the catalogue's target `id` may take lost tape file of `tape`:
/// refused when it is already written anywhere or assigned to another tape,
/// or when its catalogued files differ from the tape. Some(backup id) when
/// it is assigned to `tape` (that backup becomes the recorded one).
fn adoptable(cat: &Catalog, id: i64, tape: &Tape, target: &[u8], file: &ScannedFile) -> Result<Option<i64>> {
    let mut assigned = None;
    for b in cat.backups_with_tapes(id)? {
        let (name, fnum, status) = (&b.tape, legacy_file_number(b.file_number), &b.status);
        match status {
            BackupStatus::Assigned if b.tape_id == tape.id => assigned = Some(b.id),
            BackupStatus::Assigned => bail!(
                "target {} is assigned to tape \"{name}\", not to \"{}\": which tape the catalogue should know it on is ambiguous",
                show(target),
                tape.name
            ),
            _ => bail!(
                "target {} is already on tape \"{name}\" (file {fnum}, {status}): not recorded twice",
                show(target)
            ),
        }
    }
    if cat.target_file_count(id)? > 0 {
        same_files(cat, id, target, &file.members, "the tape holds another scan of it")?;
    }
    Ok(assigned)
}

// ---- record mode ----

fn record(cat: &Catalog, drive: &mut dyn Drive, name: &str, label: Option<&Label>) -> Result<ExitCode> {
    if let Some(l) = label
        && l.tape != name
    {
        bail!(
            "the loaded tape's label says it is tape \"{}\": record it under that name (--record-as {}); nothing was recorded",
            l.tape,
            l.tape
        );
    }
    let tape = create_tape(cat, name, label)?;
    println!("Recorded tape \"{name}\" (closed, offline); reading its tape files ...");
    let first = TapeFile::new(u64::from(label.is_some()));
    let (mut recorded, mut failed) = (0u64, Vec::new());
    let mut count = first;
    loop {
        stop::check()?;
        let Some(file) = next_tape_file(drive, count)? else { break };
        let n = count;
        count = count.next();
        if file.as_ref().is_ok_and(ScannedFile::is_catalogue) {
            println!("file {n}: the tape's catalogue file (recover_catalogue reads it); not a target");
            continue;
        }
        match file.and_then(|file| record_file(cat, &tape, n, &file)) {
            Ok(Some(line)) => {
                println!("file {n}: recorded {line}");
                recorded += 1;
            }
            Ok(None) => println!("file {n}: an unreadable tapeop label; skipped"),
            Err(e) => {
                println!("file {n}: NOT recorded: {e:#}");
                failed.push(n.to_string());
            }
        }
    }
    announce_count(drive, count);
    println!("Tape \"{name}\": {recorded} tape files recorded, {} not.", failed.len());
    if failed.is_empty() {
        return Ok(ExitCode::Success);
    }
    Err(Exit::error(
        ExitCode::Failure,
        format!("tape \"{name}\": tape files {} were not recorded (reasons above)", failed.join(", ")),
    ))
}

fn create_tape(cat: &Catalog, name: &str, label: Option<&Label>) -> Result<Tape> {
    let serial = label.map(|l| l.serial.clone()).filter(|s| !s.is_empty());
    let serial = match serial {
        Some(s) if cat.serial_taken(&s)? => {
            eprintln!(
                "tapeop: warning: serial {s:?} from the label already belongs to another tape; recorded without a serial"
            );
            None
        }
        other => other,
    };
    cat.create_recorded_tape(name, serial.as_deref(), label.map(|l| l.catalogue.as_str()))
}

/// Record tape file `n`; Some(description) when recorded, None for a label.
fn record_file(cat: &Catalog, tape: &Tape, n: TapeFile, file: &ScannedFile) -> Result<Option<String>> {
    if file.is_label(n) {
        return Ok(None);
    }
    let target = common_target(&file.members)?;
    let rows = file_rows(&target, &file.members)?;
    store(cat, tape, n, &target, &rows, file)?;
    Ok(Some(format!("{} ({} files)", show(&target), rows.len())))
}

/// The longest common directory of the members, with a leading `/`.
fn common_target(members: &[Member]) -> Result<Vec<u8>> {
    let mut common: Option<Vec<&[u8]>> = None;
    for m in members {
        if !tarstream::classify_name(&m.name).is_safe() {
            bail!(
                "member {} has an absolute name or a '..' component: not a tape file tapeop can record",
                show(&m.name)
            );
        }
        let mut comps: Vec<&[u8]> = m.name.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        if m.kind != MemberKind::Directory {
            comps.pop();
        }
        common = Some(match common {
            None => comps,
            Some(c) => c.iter().zip(&comps).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect(),
        });
    }
    let comps = common.context("the tape file holds no members")?;
    if comps.is_empty() {
        bail!("its members share no directory, so they are not one target");
    }
    Ok([b"/".as_slice(), &comps.join(&b'/')].concat())
}

/// The catalogue rows for the members, as import would have listed them:
/// files and hard links with their md5, symlinks, and empty directories.
fn file_rows(target: &[u8], members: &[Member]) -> Result<Vec<NewFile>> {
    let prefix = target.strip_prefix(b"/").unwrap_or(target);
    let rels: Vec<&[u8]> = members
        .iter()
        .map(|m| {
            tarstream::strip_prefix(&m.name, prefix)
                .with_context(|| format!("member {} is outside {}", show(&m.name), show(target)))
        })
        .collect::<Result<_>>()?;
    let nonempty = nonempty_dirs(&rels);
    let mut rows: Vec<NewFile> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for (m, rel) in members.iter().zip(&rels) {
        if rel.is_empty() {
            continue;
        }
        let Some(row) = file_row(m, rel, &nonempty)? else { continue };
        match index.get(*rel) {
            Some(&i) => rows[i] = row,
            None => {
                index.insert(rel.to_vec(), rows.len());
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

fn nonempty_dirs(rels: &[&[u8]]) -> HashSet<Vec<u8>> {
    let mut set = HashSet::new();
    for rel in rels {
        for (i, b) in rel.iter().enumerate() {
            if *b == b'/' {
                set.insert(rel.get(..i).unwrap_or_default().to_vec());
            }
        }
        if !rel.is_empty() {
            set.insert(Vec::new());
        }
    }
    set
}

fn file_row(m: &Member, rel: &[u8], nonempty: &HashSet<Vec<u8>>) -> Result<Option<NewFile>> {
    let name = rel.to_vec();
    Ok(Some(match m.kind {
        MemberKind::File | MemberKind::HardLink => {
            let md5 = m
                .md5_hex()
                .with_context(|| format!("hard link {} points to a member not earlier in the stream", show(rel)))?;
            NewFile { name, md5, size: m.size, link: None }
        }
        MemberKind::Symlink => {
            NewFile { name, md5: "symlink".into(), size: 0, link: Some(m.link_target.clone().unwrap_or_default()) }
        }
        MemberKind::Directory if !nonempty.contains(rel) => {
            NewFile { name, md5: "directory".into(), size: 0, link: None }
        }
        MemberKind::Directory => return Ok(None),
        MemberKind::Other(t) => {
            eprintln!("tapeop: skipped {} (special file, tar type {}), as import does", show(rel), show(&[t]));
            return Ok(None);
        }
    }))
}

/// Write one tape file's target, files and backup in one transaction.
fn store(cat: &Catalog, tape: &Tape, n: TapeFile, target: &[u8], rows: &[NewFile], file: &ScannedFile) -> Result<()> {
    let tx = cat.begin_recovery()?;
    let existing = cat.target_id_by_name(target)?;
    let id = match existing {
        Some(id) => adopt_target(cat, id, target, file)?,
        None => new_target(cat, target)?,
    };
    if existing.is_none() || cat.target_file_count(id)? == 0 {
        cat.add_scanned_files(id, rows)?;
    }
    cat.mark_target_scanned(id)?;
    let backup_id = cat.add_recorded_backup(id, tape, n)?;
    cat.set_backup_bytes(backup_id, file.bytes, false)?;
    tx.commit().with_context(|| format!("recording tape file {n} ({})", show(target)))?;
    Ok(())
}

/// A target the catalogue already has: refused if it has a backup; if it
/// has files, the tape must match them.
fn adopt_target(cat: &Catalog, id: i64, target: &[u8], file: &ScannedFile) -> Result<i64> {
    if let Some(b) = cat.first_backup_with_tape(id)? {
        bail!(
            "target {} already has a backup on tape \"{}\" (file {}, {}); not recorded twice",
            show(target),
            b.tape,
            legacy_file_number(b.file_number),
            b.status
        );
    }
    if cat.target_file_count(id)? == 0 {
        return Ok(id);
    }
    same_files(cat, id, target, &file.members, "not recorded")?;
    Ok(id)
}

/// Refuse when the catalogue's files of target `id` differ from the tape's
/// `members`, saying how many places differ and then `consequence`.
fn same_files(cat: &Catalog, id: i64, target: &[u8], members: &[Member], consequence: &str) -> Result<()> {
    let backup = Backup {
        id: 0,
        target_id: id,
        target: target.to_vec(),
        file_number: None,
        status: BackupStatus::Other(String::new()),
        file_count: 0,
        size_kb: 0,
    };
    let mut checker = Checker::for_backup(cat, &backup)?;
    members.iter().for_each(|m| checker.check(m));
    checker.finish();
    if let Some(first) = checker.problems.first() {
        bail!(
            "target {} is in the catalogue with files that differ from the tape in {} places (first: {first}); \
             {consequence}",
            show(target),
            checker.problems.len()
        );
    }
    Ok(())
}

/// Insert a target (scanned: its files come from the tape) and link it into
/// the parent tree, keeping the rows of a parent already on tape.
fn new_target(cat: &Catalog, target: &[u8]) -> Result<i64> {
    let ids = cat.add_linked_targets(&[target], true, ParentFiles::AsWritten)?;
    ids.first().copied().context("no target was inserted")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::is_under;

    fn member(name: &str, kind: MemberKind) -> Member {
        Member {
            name: name.as_bytes().to_vec(),
            kind,
            size: 0,
            md5: Some([0; 16]),
            link_target: Some(b"x".to_vec()),
            mode: 0o644,
            mtime: 0,
            uid: 0,
            gid: 0,
            unhashed: false,
        }
    }

    #[test]
    fn target_is_the_common_directory() {
        let ms = [
            member("a/b/t/", MemberKind::Directory),
            member("a/b/t/f", MemberKind::File),
            member("a/b/t/s/g", MemberKind::File),
        ];
        assert_eq!(common_target(&ms).unwrap(), b"/a/b/t");
        let one = [member("a/b/t/s/g", MemberKind::File)];
        assert_eq!(common_target(&one).unwrap(), b"/a/b/t/s");
        assert!(common_target(&[member("f", MemberKind::File)]).is_err());
        assert!(common_target(&[]).is_err());
        assert!(common_target(&[member("/etc/x", MemberKind::File)]).is_err());
    }

    #[test]
    fn rows_like_import() {
        let ms = [
            member("t/", MemberKind::Directory),
            member("t/full/", MemberKind::Directory),
            member("t/full/f", MemberKind::File),
            member("t/empty/", MemberKind::Directory),
            member("t/l", MemberKind::Symlink),
            member("t/fifo", MemberKind::Other(b'6')),
        ];
        let rows = file_rows(b"/t", &ms).unwrap();
        let names: Vec<(&[u8], &str)> = rows.iter().map(|r| (r.name.as_slice(), r.md5.as_str())).collect();
        assert_eq!(
            names,
            vec![(&b"full/f"[..], "00000000000000000000000000000000"), (b"empty", "directory"), (b"l", "symlink")]
        );
    }

    #[test]
    fn under() {
        assert!(is_under(b"/a/b", b"/a"));
        assert!(!is_under(b"/ab", b"/a"));
        assert!(!is_under(b"/a", b"/a"));
    }
}
