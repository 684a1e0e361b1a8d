//! Knowing the tape before writing to it. This module owns tapeop's tape
//! label — a small tar archive written as tape file 0 of a new tape, naming
//! the tape, its serial and the catalogue it belongs to — and the proof that
//! must hold before tape file N is written: the loaded tape carries the
//! online tape's label (or, on an unlabelled tape the old tool wrote, file
//! N-1 starts with a member of the target the catalogue recorded there), and
//! N is the drive's true end of data. It also owns the label proof before
//! reading (`confirm`, `restore`) and the use of the drive's last proof
//! ([`crate::drive::last_proof`]): trusted while the head has not moved, so
//! the tape is proved without motion, at most once per load.

use std::io::Read;

use anyhow::{Context, Result};

use crate::catalog::{Catalog, Outcome, Tape, legacy_file_number, now_text, show};
use crate::drive::last_proof::{self, LastProof};
use crate::drive::{Drive, DriveSpec};
use crate::exit_codes::{Exit, ExitCode};
use crate::tape_file::TapeFile;

/// Name of the one member of a label tape file.
pub const LABEL_MEMBER: &str = "TAPEOP-LABEL.txt";

/// What a label says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Tape name.
    pub tape: String,
    /// Serial number ("" if none).
    pub serial: String,
    /// The catalogue's id.
    pub catalogue: String,
}

impl Label {
    fn text(&self) -> String {
        format!(
            "tapeop tape label v1\ntape: {}\nserial: {}\ncatalogue: {}\nwritten: {}\n",
            self.tape,
            self.serial,
            self.catalogue,
            now_text()
        )
    }

    fn parse(text: &str) -> Option<Label> {
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
        if !text.starts_with("tapeop tape label") {
            return None;
        }
        Some(Label {
            tape: field("tape:")?,
            serial: field("serial:").unwrap_or_default(),
            catalogue: field("catalogue:")?,
        })
    }

    /// The label as a tar archive padded to whole `block_size` records.
    pub fn to_records(&self, block_size: usize) -> Result<Vec<Vec<u8>>> {
        let text = self.text();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o444);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, LABEL_MEMBER, text.as_bytes())?;
        let mut bytes = builder.into_inner()?;
        bytes.resize(bytes.len().div_ceil(block_size) * block_size, 0);
        Ok(bytes.chunks(block_size).map(<[u8]>::to_vec).collect())
    }
}

/// The catalogue's id (made once, when tapeop first upgraded it).
pub fn catalogue_id(cat: &Catalog) -> Result<String> {
    cat.catalogue_id()
}

/// The label tapeop wrote on `tape`, if it wrote one.
pub fn recorded_label(cat: &Catalog, tape: &Tape) -> Result<Option<String>> {
    cat.recorded_label(tape.id)
}

/// The first tape file that holds data: 1 on a labelled tape, else 0.
pub fn first_data_file(cat: &Catalog, tape: &Tape) -> Result<TapeFile> {
    Ok(if recorded_label(cat, tape)?.is_some() { TapeFile::LABEL.next() } else { TapeFile::LABEL })
}

/// Where the next target goes: after the highest written file, or the
/// first data file on a tape with nothing written yet.
pub fn append_point(cat: &Catalog, tape: &Tape) -> Result<TapeFile> {
    Ok(cat.append_point(tape.id)?.max(first_data_file(cat, tape)?))
}

fn refuse(msg: String) -> anyhow::Error {
    Exit::error(
        ExitCode::Failure,
        format!("refusing to write: {msg}; nothing was written (archive --override-tape-check writes anyway)"),
    )
}

/// What is known of the loaded tape's label before the proof reads it.
#[derive(Debug, Clone)]
enum Seen {
    /// Not read yet.
    Unread,
    /// Read at the beginning of the tape, where a load leaves the head.
    Read(Option<Label>),
    /// Proven earlier in this load (the drive's last proof still holds).
    Trusted,
}

/// Prove that the loaded tape is `tape` and that `n` is its end of data,
/// labelling a blank new tape on the way. Returns the file number to write.
///
/// When the drive's last proof (see [`last_proof`]) still holds for this
/// tape, the label is not read again, and when it left the head at end of
/// data `n`, nothing moves at all. Otherwise a head at the beginning of the
/// tape (a fresh load) reads the label there first, before spacing away.
pub fn prove(
    cat: &Catalog,
    drive: &mut dyn Drive,
    tape: &Tape,
    n: TapeFile,
    block_size: usize,
    spec: &DriveSpec,
) -> Result<TapeFile> {
    let seen = match take_trusted(cat, drive, spec, tape) {
        Some(last) if last.end_of_data == Some(n.get()) && last.file == n.get() && last.block == 0 => {
            println!(
                "Tape \"{}\" proved without moving it: the drive is where {} left it at {}, at the end of data (file {n}, position {}).",
                tape.name, last.command, last.time, last.position
            );
            return Ok(n);
        }
        Some(_) => Seen::Trusted,
        None => label_at_bot(drive),
    };
    prove_in_full(cat, drive, tape, n, block_size, &seen)
}

/// The label, read now if the head is at the beginning of the tape (file 0
/// block 0) so that no motion is spent reading it there later.
fn label_at_bot(drive: &mut dyn Drive) -> Seen {
    let at_bot = drive.status().is_ok_and(|s| s.file_number == Some(0) && s.block_number == Some(0));
    match at_bot.then(|| read_label(drive)) {
        Some(Ok(label)) => Seen::Read(label),
        _ => Seen::Unread,
    }
}

fn prove_in_full(
    cat: &Catalog,
    drive: &mut dyn Drive,
    tape: &Tape,
    n: TapeFile,
    block_size: usize,
    seen: &Seen,
) -> Result<TapeFile> {
    let unwritten = cat.append_point(tape.id)? == TapeFile::LABEL;
    let previous = if n > first_data_file(cat, tape)? { n.prev() } else { None };
    // With the right label read at the beginning of the tape, file n-1 is
    // read on the way forward to end of data (its verdict waits its turn).
    let on_the_way = match previous {
        Some(prev) if !unwritten && label_read_matches(cat, tape, seen)? => Some(first_member(drive, prev)),
        _ => None,
    };
    let files = drive.count_files().with_context(|| format!("finding the end of data on {}", drive.name()))?;
    // The tape file at the end of data: as many as the tape holds.
    let end = TapeFile::new(files);
    if !unwritten && end == TapeFile::LABEL {
        return Err(refuse(format!(
            "wrong tape: the loaded tape is blank, but the catalogue's tape \"{}\" holds tape files up to file {}",
            tape.name,
            legacy_file_number(n.prev())
        )));
    }
    if unwritten {
        if let Some(n) = prove_unwritten(cat, drive, tape, end, block_size, seen)? {
            return Ok(n);
        }
    } else {
        check_label(cat, drive, tape, seen)?;
    }
    if !unwritten && end < n {
        return Err(refuse(format!(
            "the catalogue expects tape \"{}\" to end after file {}, but {} holds only {files} tape files: wrong tape, or a catalogue out of step",
            tape.name,
            legacy_file_number(n.prev()),
            drive.name()
        )));
    }
    if let Some(prev) = previous {
        check_previous(cat, drive, tape, prev, on_the_way)?;
    }
    check_end_of_data(cat, &*drive, tape, n, end)
}

/// Whether the label was read (at the beginning of the tape) and is the
/// one the catalogue recorded for `tape` (or, for a tape the catalogue
/// recorded no label for, whether there was none).
fn label_read_matches(cat: &Catalog, tape: &Tape, seen: &Seen) -> Result<bool> {
    let Seen::Read(found) = seen else { return Ok(false) };
    Ok(match (recorded_label(cat, tape)?, found) {
        (Some(want), Some(l)) => l.catalogue == want && l.tape == tape.name,
        (None, None) => true,
        _ => false,
    })
}

fn check_end_of_data(cat: &Catalog, drive: &dyn Drive, tape: &Tape, n: TapeFile, end: TapeFile) -> Result<TapeFile> {
    if end == n.next() && last_attempt_failed(cat, tape, n)? {
        println!("Tape file {n} holds a failed archive attempt; writing over it.");
        return Ok(n);
    }
    if end != n {
        return Err(refuse(format!(
            "the catalogue expects tape \"{}\" to end after file {}, but {} ends after file {}: catalogue out of step, or wrong tape",
            tape.name,
            legacy_file_number(n.prev()),
            drive.name(),
            legacy_file_number(end.prev())
        )));
    }
    Ok(n)
}

/// A tape with nothing recorded yet: blank (label it), or holding only
/// the label tapeop wrote (or began to write) on it. Returns the file to
/// write when that is settled here.
fn prove_unwritten(
    cat: &Catalog,
    drive: &mut dyn Drive,
    tape: &Tape,
    end: TapeFile,
    block_size: usize,
    seen: &Seen,
) -> Result<Option<TapeFile>> {
    if end == TapeFile::LABEL {
        return write_label(cat, drive, tape, block_size).map(Some);
    }
    let Some(want) = recorded_label(cat, tape)? else {
        return Err(refuse(format!(
            "tape \"{}\" has nothing written in the catalogue, but {} holds {end} tape files: wrong tape, or a used one",
            tape.name,
            drive.name()
        )));
    };
    let found = match seen {
        Seen::Trusted => return Ok(None),
        Seen::Read(label) => label.clone(),
        Seen::Unread => read_label(drive)?,
    };
    match found {
        Some(l) if l.catalogue == want && l.tape == tape.name => Ok(None),
        _ if end == TapeFile::LABEL.next() && last_label_failed(cat, tape)? => {
            println!("Tape file 0 holds an interrupted label; writing it again.");
            write_label(cat, drive, tape, block_size).map(Some)
        }
        found => check_label(cat, drive, tape, &Seen::Read(found)).map(|()| None),
    }
}

fn last_label_failed(cat: &Catalog, tape: &Tape) -> Result<bool> {
    cat.last_label_failed(&tape.name)
}

/// Record the label in the catalogue, then write it as tape file 0, so a
/// crash in between leaves a state the next archive recognises.
fn write_label(cat: &Catalog, drive: &mut dyn Drive, tape: &Tape, block_size: usize) -> Result<TapeFile> {
    let label = Label { tape: tape.name.clone(), serial: tape.serial.clone(), catalogue: catalogue_id(cat)? };
    cat.record_label(tape.id, &label.catalogue)?;
    let history = cat.history_start("label", &tape.name, TapeFile::LABEL, b"")?;
    drive.begin_write(TapeFile::LABEL.get())?;
    for record in label.to_records(block_size)? {
        drive.write_record(&record).context("writing the tape label")?;
    }
    crate::fault::point("label-before-filemark");
    drive.write_filemark().context("writing the filemark after the tape label")?;
    cat.history_end(history, None, Outcome::Ok, None)?;
    println!("Labelled tape \"{}\" (tape file 0); data starts at file 1.", tape.name);
    Ok(TapeFile::LABEL.next())
}

/// Read the label at tape file 0, if the tape has one.
pub fn read_label(drive: &mut dyn Drive) -> Result<Option<Label>> {
    drive.seek_file(0)?;
    let head = read_head(drive)?;
    let mut archive = tar::Archive::new(head.as_slice());
    let Ok(mut entries) = archive.entries() else { return Ok(None) };
    let Some(Ok(mut entry)) = entries.next() else { return Ok(None) };
    if entry.path_bytes().as_ref() != LABEL_MEMBER.as_bytes() {
        return Ok(None);
    }
    let mut text = String::new();
    entry.read_to_string(&mut text).ok();
    Ok(Label::parse(&text))
}

fn check_label(cat: &Catalog, drive: &mut dyn Drive, tape: &Tape, seen: &Seen) -> Result<()> {
    let Some(want) = recorded_label(cat, tape)? else { return Ok(()) };
    let found = match seen {
        Seen::Trusted => return Ok(()),
        Seen::Read(label) => label.clone(),
        Seen::Unread => read_label(drive)?,
    };
    match found {
        Some(l) if l.catalogue == want && l.tape == tape.name => Ok(()),
        found => Err(refuse(mismatch(&tape.name, found.as_ref()))),
    }
}

/// Why a loaded tape whose label is `found` is not the catalogue's `tape`.
pub fn mismatch(tape: &str, found: Option<&Label>) -> String {
    match found {
        Some(l) => format!(
            "wrong tape: the catalogue expects tape \"{tape}\" here, but the loaded tape's label says \"{}\" (catalogue {})",
            l.tape, l.catalogue
        ),
        None => format!(
            "wrong tape: tape \"{tape}\" was labelled by tapeop, but the loaded tape has no tapeop label at file 0"
        ),
    }
}

/// What proving the label before reading a tape found.
#[derive(Debug, Clone)]
pub enum ReadProof {
    /// The drive's last proof still holds: the label was not read again.
    Trusted(LastProof),
    /// The label was read and names `tape` of this catalogue.
    Read,
    /// The catalogue recorded no label for the tape (the old tool's tape).
    NoLabel,
    /// The label was read and is not `tape`'s (the label found, if any).
    Wrong(Option<Label>),
}

impl ReadProof {
    /// The tape's end of data, when the drive's last proof knew it.
    pub fn end_of_data(&self) -> Option<u64> {
        match self {
            ReadProof::Trusted(last) => last.end_of_data,
            _ => None,
        }
    }
}

/// Prove the label of `tape` before reading it (confirm, restore): trust
/// the drive's last proof when it still holds, else read the label (at no
/// cost when the head is at the beginning of the tape, as after a load).
pub fn prove_for_reading(cat: &Catalog, drive: &mut dyn Drive, spec: &DriveSpec, tape: &Tape) -> Result<ReadProof> {
    if let Some(last) = take_trusted(cat, drive, spec, tape) {
        announce_trusted(tape, &last);
        return Ok(ReadProof::Trusted(last));
    }
    let Some(want) = recorded_label(cat, tape)? else { return Ok(ReadProof::NoLabel) };
    let found = read_label(drive).with_context(|| format!("reading the tape label at file 0 of {}", drive.name()))?;
    match found {
        Some(l) if l.catalogue == want && l.tape == tape.name => Ok(ReadProof::Read),
        found => Ok(ReadProof::Wrong(found)),
    }
}

/// Say that the label of `tape` is taken as proven from the drive's last proof.
pub fn announce_trusted(tape: &Tape, last: &LastProof) {
    println!(
        "Tape \"{}\" is the tape {} proved in this drive at {}; the head has not moved since (file {} block {}): its label is not read again.",
        tape.name, last.command, last.time, last.file, last.block
    );
}

/// The drive's last proof, taken (see [`last_proof::take`]), when it still
/// holds for `tape`: the same tape and serial of this catalogue, and the
/// head exactly where it was left.
pub fn take_trusted(cat: &Catalog, drive: &mut dyn Drive, spec: &DriveSpec, tape: &Tape) -> Option<LastProof> {
    let last = last_proof::take(spec)?;
    let id = catalogue_id(cat).ok()?;
    let same = last.tape == tape.name && last.serial == tape.serial && last.catalogue == id;
    (same && last.still_here(last_proof::head(drive))).then_some(last)
}

/// Record in the drive's state file that `tape` is proven in it, with the
/// head where the drive now says it is. A failure only costs the next run
/// a full proof, so it is a warning.
pub fn remember(cat: &Catalog, drive: &mut dyn Drive, spec: &DriveSpec, tape: &Tape, eod: Option<u64>, command: &str) {
    let (Some(head), Ok(catalogue)) = (last_proof::head(drive), catalogue_id(cat)) else { return };
    let last = LastProof {
        tape: tape.name.clone(),
        serial: tape.serial.clone(),
        catalogue,
        file: head.file,
        block: head.block,
        position: head.position,
        at_eod: head.at_eod,
        end_of_data: eod,
        command: command.to_string(),
        time: now_text(),
    };
    if let Err(e) = last_proof::write(spec, &last) {
        eprintln!("tapeop: warning: could not record the tape proof ({e:#}); the next run proves the tape in full");
    }
}

/// The first records of the current tape file (enough for the first
/// member's headers, GNU long names included).
fn read_head(drive: &mut dyn Drive) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = Vec::new();
    while head.len() < 64 * 1024 {
        let n = drive.read_record(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

fn first_member(drive: &mut dyn Drive, n: TapeFile) -> Result<Option<Vec<u8>>> {
    drive.seek_file(n.get())?;
    let head = read_head(drive)?;
    let mut archive = tar::Archive::new(head.as_slice());
    let name = archive.entries().ok().and_then(|mut e| e.next()).and_then(|e| e.ok()).map(|e| e.path_bytes().to_vec());
    Ok(name)
}

/// Check that tape file `prev` starts with a member of the target the
/// catalogue recorded there (`read`: its first member, when already read).
fn check_previous(
    cat: &Catalog,
    drive: &mut dyn Drive,
    tape: &Tape,
    prev: TapeFile,
    read: Option<Result<Option<Vec<u8>>>>,
) -> Result<()> {
    let Some(b) = cat.backup_at(tape.id, prev)? else {
        return Err(refuse(format!(
            "the catalogue has no tape file {prev} on tape \"{}\" before the append point",
            tape.name
        )));
    };
    let prefix = b.target.strip_prefix(b"/").unwrap_or(&b.target).to_vec();
    let member = match read {
        Some(member) => member?,
        None => first_member(drive, prev)?,
    };
    match member {
        Some(m) if crate::tarstream::strip_prefix(&m, &prefix).is_some() => Ok(()),
        Some(m) => Err(refuse(format!(
            "wrong tape or catalogue out of step: tape file {prev} should hold {}, but its first member is {}",
            show(&b.target),
            show(&m)
        ))),
        None => Err(refuse(format!("tape file {prev} should hold {}, but it is not a tar archive", show(&b.target)))),
    }
}

/// Whether the last archive attempt on `tape` was at `n` and did not succeed
/// (its partial tape file may be written over).
pub fn last_attempt_failed(cat: &Catalog, tape: &Tape, n: TapeFile) -> Result<bool> {
    cat.last_archive_failed_at(&tape.name, n)
}
