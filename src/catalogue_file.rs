//! A tape's catalogue file: the one last tape file written when a tape is
//! closed or marked full, a plain tar of `README.txt` (what the tape is,
//! the snapshot's md5, how to read it with `mt` and `tar` alone),
//! `MANIFEST.md5` (an `md5sum -c` manifest of every file on the tape, named
//! as `tar -x` creates them) and `catalogue.sqlite.gz` (a consistent,
//! gzipped snapshot of the whole catalogue). This module owns building,
//! writing (in `block_size` records, each record refused at early warning
//! written once more) and reading it back and checking it; its row in the
//! catalogue is `catalog::TapeCatalogueFile`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use md5::{Digest, Md5};

use crate::catalog::{BackupStatus, Catalog, Tape, TapeCatalogueFile, now_text, show};
use crate::drive::{Drive, DriveError};
use crate::manifest::manifest_lines;
use crate::tape_error::RecordWritten;
use crate::tape_file::TapeFile;

/// The text member: what the tape is and how to read it.
pub const README: &str = "README.txt";
/// The `md5sum -c` manifest of every file on the tape.
pub const MANIFEST: &str = "MANIFEST.md5";
/// The gzipped sqlite snapshot of the catalogue.
pub const SNAPSHOT: &str = "catalogue.sqlite.gz";
/// The first line of README.txt.
const README_HEAD: &str = "tapeop tape catalogue file v1";
/// README.txt's line with the snapshot's md5.
const SNAPSHOT_MD5: &str = "snapshot md5:";

/// Whether tape file members named `names` are a tapeop catalogue file.
pub fn is_catalogue_file<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut names: Vec<&[u8]> = names.into_iter().collect();
    names.sort();
    names == [MANIFEST.as_bytes(), README.as_bytes(), SNAPSHOT.as_bytes()]
}

/// Write `tape`'s catalogue file as tape file `n` (the tape's end of data,
/// already proven) and record it. The snapshot is of the catalogue as it
/// is now: change the tape's state (closed, full) first.
pub fn write(cat: &Catalog, drive: &mut dyn Drive, tape: &Tape, n: TapeFile, block_size: usize) -> Result<()> {
    cat.writable()?;
    let written = now_text();
    let tar = build(cat, tape, n, block_size, &written)
        .with_context(|| format!("building the catalogue file of tape \"{}\"", tape.name))?;
    let mut records: Vec<&[u8]> = tar.chunks(block_size).collect();
    records.retain(|r| !r.is_empty());
    drive.begin_write(n.get()).with_context(|| format!("positioning {} at tape file {n}", drive.name()))?;
    for (i, record) in records.iter().enumerate() {
        write_record(drive, record)
            .with_context(|| format!("writing record {i} of the catalogue file (tape file {n})"))?;
        crate::fault::point("catalogue-file-mid");
    }
    drive.write_filemark().with_context(|| format!("writing the filemark after the catalogue file (tape file {n})"))?;
    let file = TapeCatalogueFile { file_number: n, bytes: tar.len() as u64, md5: md5_hex(&tar), written };
    cat.record_tape_catalogue_file(tape.id, &file)?;
    println!(
        "Wrote the catalogue file of tape \"{}\" as tape file {n} ({} bytes): tapeop recover_catalogue reads it back.",
        tape.name, file.bytes
    );
    Ok(())
}

/// Write one record; a record refused at early warning is written once more.
fn write_record(drive: &mut dyn Drive, record: &[u8]) -> Result<()> {
    match drive.write_record(record) {
        Ok(()) => Ok(()),
        Err(e) if written_anyway(&e) => Ok(()),
        Err(e) if is_end_of_medium(&e) => match drive.write_record(record) {
            Err(e) if !written_anyway(&e) => Err(e.context("the record was refused twice past the early warning")),
            _ => Ok(()),
        },
        Err(e) => Err(e),
    }
}

fn written_anyway(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RecordWritten>().is_some()
}

fn is_end_of_medium(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<DriveError>() == Some(&DriveError::EndOfMedium))
}

/// The catalogue file as a tar padded to whole records of `block_size`.
fn build(cat: &Catalog, tape: &Tape, n: TapeFile, block_size: usize, written: &str) -> Result<Vec<u8>> {
    let snapshot = gzipped_snapshot(cat)?;
    let mut manifest = Vec::new();
    for b in cat.written_backups(tape.id, None)? {
        if matches!(b.status, BackupStatus::Recorded | BackupStatus::Confirmed) {
            manifest_lines(cat, &b, &mut manifest)?;
        }
    }
    let readme = readme(cat, tape, n, block_size, &snapshot, written)?;
    let mut builder = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for (name, data) in [(README, readme.as_bytes()), (MANIFEST, manifest.as_slice()), (SNAPSHOT, snapshot.as_slice())]
    {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o444);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(now);
        header.set_cksum();
        builder.append_data(&mut header, name, data)?;
    }
    let mut bytes = builder.into_inner()?;
    bytes.resize(bytes.len().div_ceil(block_size) * block_size, 0);
    Ok(bytes)
}

/// A consistent copy of the whole catalogue (`VACUUM INTO` a temp file), gzipped.
fn gzipped_snapshot(cat: &Catalog) -> Result<Vec<u8>> {
    let tmp = TempPath(temp_path("snapshot"));
    cat.snapshot_into(&tmp.0)?;
    let raw = fs::read(&tmp.0).with_context(|| format!("reading the snapshot {}", tmp.0.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw)?;
    Ok(gz.finish()?)
}

/// A temp file removed when dropped.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn temp_path(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("tapeop-{what}-{}-{nanos}.sqlite", std::process::id()))
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// README.txt: the tape, its tape files, the snapshot's md5, and how to
/// read it all without tapeop.
fn readme(
    cat: &Catalog,
    tape: &Tape,
    n: TapeFile,
    block_size: usize,
    snapshot: &[u8],
    written: &str,
) -> Result<String> {
    let b = block_size / 512;
    let mut t = format!(
        "{README_HEAD}\ntape: {}\nserial: {}\ncatalogue: {}\nwritten: {}\ntape file: {n}\n{SNAPSHOT_MD5} {}\nsnapshot bytes: {}\nblock size: {block_size}\n\n",
        tape.name,
        tape.serial,
        cat.catalogue_id().unwrap_or_default(),
        written,
        md5_hex(snapshot),
        snapshot.len()
    );
    t += "This is the last tape file of the tape. It holds:\n";
    t += &format!("  {README}           this text\n");
    t += &format!("  {MANIFEST}         md5sum -c manifest of every file on this tape, named as tar -x creates them\n");
    t += &format!("  {SNAPSHOT}  the whole tapeop catalogue (sqlite), gzipped\n\n");
    t += "Tape files:\n";
    if crate::label::recorded_label(cat, tape)?.is_some() {
        t += "  file 0: tapeop label (TAPEOP-LABEL.txt)\n";
    }
    for bk in cat.written_backups(tape.id, None)? {
        let at = bk.file_number.map_or("-".to_string(), |f| f.to_string());
        t += &format!("  file {at}: {} ({})\n", show(&bk.target), bk.status);
    }
    t += &format!("  file {n}: this catalogue file\n\n");
    t += &format!(
        "Reading it with mt and tar alone (records of {block_size} bytes: tar -b {b}):\n\
         \x20 mt -f /dev/nst0 eod; mt -f /dev/nst0 bsfm 2       # the start of this last tape file (GNU mt: eom)\n\
         \x20 tar -b {b} -xvf /dev/nst0                          # these three files\n\
         \x20 md5sum {SNAPSHOT}                          # must match \"{SNAPSHOT_MD5}\" above\n\
         \x20 gunzip {SNAPSHOT}                          # catalogue.sqlite: tape.conf's database_file\n\
         \x20 mt -f /dev/nst0 asf N; tar -b {b} -xvf /dev/nst0    # tape file N\n\
         \x20 md5sum -c {MANIFEST}                            # after extracting the tape files\n\
         Or, with tapeop: tapeop recover_catalogue --to FILE\n"
    );
    Ok(t)
}

/// A catalogue file read back from a tape.
#[derive(Debug)]
pub struct Found {
    /// Its tape file number.
    pub n: TapeFile,
    /// The record bytes read, and their md5.
    pub bytes: u64,
    /// md5 of the bytes read.
    pub md5: String,
    /// README.txt.
    pub readme: String,
    /// catalogue.sqlite.gz.
    pub snapshot: Vec<u8>,
}

impl Found {
    /// A README field (`tape`, `serial`, `catalogue`, `written`).
    pub fn field(&self, key: &str) -> Option<String> {
        let key = format!("{key}:");
        self.readme.lines().find_map(|l| l.strip_prefix(key.as_str())).map(|v| v.trim().to_string())
    }
}

/// Why reading a catalogue file failed.
#[derive(Debug)]
pub enum NotFound {
    /// The tape holds no tape files.
    Blank,
    /// The last tape file is not a catalogue file (the names read, if any).
    NotOne(TapeFile, String),
    /// It is one, but damaged (why).
    Damaged(TapeFile, String),
}

/// Read the last tape file, straight from the end of data (no data file
/// is read), and check it is a whole catalogue file.
pub fn read_last(drive: &mut dyn Drive) -> Result<std::result::Result<Found, NotFound>> {
    let files = drive.count_files().with_context(|| format!("finding the end of data on {}", drive.name()))?;
    let Some(n) = TapeFile::new(files).prev() else { return Ok(Err(NotFound::Blank)) };
    drive.seek_file(n.get()).with_context(|| format!("positioning {} at tape file {n}", drive.name()))?;
    let mut bytes = Vec::new();
    let mut buf = Vec::new();
    loop {
        let len = drive.read_record(&mut buf).with_context(|| format!("reading tape file {n} of {}", drive.name()))?;
        if len == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..len]);
    }
    Ok(parse(n, &bytes))
}

fn parse(n: TapeFile, bytes: &[u8]) -> std::result::Result<Found, NotFound> {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let damaged = |why: String| NotFound::Damaged(n, why);
    let mut archive = tar::Archive::new(bytes);
    let read = (|| -> std::io::Result<()> {
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            members.push((name, data));
        }
        Ok(())
    })();
    let ours = members.first().is_some_and(|(name, data)| name == README && data.starts_with(README_HEAD.as_bytes()));
    if !ours {
        let names: Vec<&str> = members.iter().map(|(m, _)| m.as_str()).take(3).collect();
        let what = match (&read, names.is_empty()) {
            (Err(e), true) => format!("not a tar archive ({e})"),
            _ => format!("a tar archive of {}", names.join(", ")),
        };
        return Err(NotFound::NotOne(n, what));
    }
    if let Err(e) = read {
        return Err(damaged(format!("its tar archive is truncated or corrupt ({e})")));
    }
    let readme = String::from_utf8_lossy(&members[0].1).into_owned();
    let Some(snapshot) = members.iter().find(|(m, _)| m == SNAPSHOT).map(|(_, d)| d.clone()) else {
        return Err(damaged(format!("it has no {SNAPSHOT} (truncated)")));
    };
    let want = readme.lines().find_map(|l| l.strip_prefix(SNAPSHOT_MD5)).map(str::trim).unwrap_or_default();
    let got = md5_hex(&snapshot);
    if want != got {
        return Err(damaged(format!("{SNAPSHOT} has md5 {got}, but README.txt says {want:?}")));
    }
    Ok(Found { n, bytes: bytes.len() as u64, md5: md5_hex(bytes), readme, snapshot })
}

/// Gunzip `found`'s snapshot to the new file `to` (refused if it exists),
/// check it opens as a tapeop catalogue, and record in it that the tape
/// ends with this catalogue file. Returns the tapes it knows.
pub fn restore_snapshot(found: &Found, to: &Path) -> Result<usize> {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let part = to.with_file_name(format!(".{name}.recovering-{}", std::process::id()));
    let guard = TempPath(part.clone());
    let mut out = fs::File::create_new(&part).with_context(|| format!("cannot create {}", part.display()))?;
    let mut gz = flate2::read::GzDecoder::new(found.snapshot.as_slice());
    std::io::copy(&mut gz, &mut out).with_context(|| format!("gunzipping {SNAPSHOT} into {}", part.display()))?;
    out.sync_all()?;
    drop(out);
    // The connection closes (checkpointing its WAL) before the file is linked.
    let tapes = {
        let cat = Catalog::open(&part, crate::catalog::Mode::ReadWrite)
            .with_context(|| format!("{SNAPSHOT} does not open as a tapeop catalogue"))?;
        let tapes = cat.tapes().with_context(|| format!("{SNAPSHOT} is not a tapeop catalogue"))?;
        let name = found.field("tape").unwrap_or_default();
        if let Some(tape) = tapes.iter().find(|t| t.name == name) {
            let file = TapeCatalogueFile {
                file_number: found.n,
                bytes: found.bytes,
                md5: found.md5.clone(),
                written: found.field("written").unwrap_or_default(),
            };
            cat.record_tape_catalogue_file(tape.id, &file)?;
        }
        tapes.len()
    };
    if to.exists() {
        bail!("{} appeared while recovering: nothing was overwritten", to.display());
    }
    fs::hard_link(&part, to).with_context(|| format!("cannot create {}", to.display()))?;
    drop(guard);
    Ok(tapes)
}

/// After `tape` was marked full, with the drive still holding it: write
/// its catalogue file at its append point. A failure is only a warning
/// (`close_tape` writes it later).
pub fn write_when_full(cat: &Catalog, drive: &mut dyn Drive, tape: &Tape, config: &crate::config::Config) {
    crate::drive::last_proof::forget(&config.drive);
    let written = crate::label::append_point(cat, tape).and_then(|n| write(cat, drive, tape, n, config.block_size));
    if let Err(e) = written {
        eprintln!(
            "tapeop: warning: tape \"{}\" is full, but its catalogue file could not be written ({e:#}); \
             tapeop close_tape {} writes it",
            tape.name, tape.name
        );
    }
}

/// Whether the tape in `drive` ends, one tape file after `n`, with a
/// catalogue file (finished or not) of `tape` of this catalogue: an
/// earlier `close_tape` closed the tape but did not finish writing it, so
/// it is written again at `n`.
pub fn unfinished_at(drive: &mut dyn Drive, cat: &Catalog, tape: &Tape, n: TapeFile) -> Result<bool> {
    if drive.count_files()? != n.next().get() {
        return Ok(false);
    }
    drive.seek_file(n.get())?;
    let mut head = Vec::new();
    if drive.read_record(&mut head).is_err() {
        return Ok(false);
    }
    let mut archive = tar::Archive::new(head.as_slice());
    let Some(Ok(mut first)) = archive.entries().ok().and_then(|mut e| e.next()) else { return Ok(false) };
    let mut text = String::new();
    if first.path_bytes().as_ref() != README.as_bytes() || first.read_to_string(&mut text).is_err() {
        return Ok(false);
    }
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::trim).map(str::to_string);
    let id = cat.catalogue_id().ok();
    Ok(text.starts_with(README_HEAD) && field("tape:").as_deref() == Some(&tape.name) && field("catalogue:") == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o444);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn readme_for(snapshot: &[u8]) -> String {
        format!("{README_HEAD}\ntape: T1\nwritten: now\n{SNAPSHOT_MD5} {}\n", md5_hex(snapshot))
    }

    #[test]
    fn a_whole_catalogue_file_parses_and_names_its_tape() {
        let readme = readme_for(b"gz");
        let tar = tar_of(&[(README, readme.as_bytes()), (MANIFEST, b""), (SNAPSHOT, b"gz")]);
        let found = parse(TapeFile::new(4), &tar).unwrap();
        assert_eq!(
            (found.n, found.field("tape").as_deref(), found.snapshot.as_slice()),
            (TapeFile::new(4), Some("T1"), &b"gz"[..])
        );
        assert!(is_catalogue_file([MANIFEST.as_bytes(), SNAPSHOT.as_bytes(), README.as_bytes()]));
        assert!(!is_catalogue_file([README.as_bytes()]));
    }

    #[test]
    fn a_data_file_a_wrong_md5_and_a_missing_snapshot_are_told_apart() {
        let data = tar_of(&[("data/a/f", b"x")]);
        assert!(matches!(parse(TapeFile::new(2), &data), Err(NotFound::NotOne(_, what)) if what.contains("data/a/f")));
        assert!(matches!(parse(TapeFile::new(2), &[7u8; 1024]), Err(NotFound::NotOne(..))));
        let readme = readme_for(b"gz");
        let bad = tar_of(&[(README, readme.as_bytes()), (MANIFEST, b""), (SNAPSHOT, b"gZ")]);
        assert!(matches!(parse(TapeFile::new(2), &bad), Err(NotFound::Damaged(_, why)) if why.contains("has md5")));
        let short = tar_of(&[(README, readme.as_bytes())]);
        assert!(
            matches!(parse(TapeFile::new(2), &short), Err(NotFound::Damaged(_, why)) if why.contains("no catalogue"))
        );
    }
}
