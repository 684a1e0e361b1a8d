//! The tape drive abstraction: one trait that archive, confirm and restore
//! drive, with two implementations — `st` (a Linux SCSI tape through the mtio
//! ioctls) and `emulator` (the old tool's directory of `fileNNNNN.tar` files).
//! This module owns the trait, the drive status it reports, the choice of
//! implementation from the config and where a drive's lock and state files
//! live. Its typed errors live in `tape_error` (re-exported here), and the
//! `drive` report in `commands::drive`: the drive layer holds only hardware.

pub mod counters;
pub mod emulator;
pub mod health;
pub mod loading;
pub mod mtio;
pub mod probe;
pub mod st;

pub mod last_proof;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;

use anyhow::{Context, Result};

use crate::tarstream::ChannelReader;

pub use counters::IoCounters;

/// What a drive reports about itself and its position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriveStatus {
    /// A cartridge is loaded and the drive is ready.
    pub loaded: bool,
    /// The loaded cartridge is write-protected.
    pub write_protected: bool,
    /// Tape file number of the head, when known.
    pub file_number: Option<u64>,
    /// Block (record) number inside the current file, when known.
    pub block_number: Option<u64>,
    /// Fixed block size in bytes; `None` means variable-block mode.
    pub block_size: Option<u32>,
    /// At the beginning of the tape.
    pub bot: bool,
    /// Just after a filemark.
    pub eof: bool,
    /// At the end of recorded data.
    pub eod: bool,
    /// At or past the physical end-of-tape warning.
    pub eot: bool,
    /// The drive asks for cleaning (`GMT_CLN`; never for the emulator).
    pub cleaning_requested: bool,
}

pub use crate::tape_error::DriveError;

/// A tape drive, positioned by tape file number, read and written in records.
///
/// Tape file numbers start at 0. A write session is `begin_write(n)`, any
/// number of `write_record`, then `write_filemark`; nothing after file `n`
/// survives it. Reading is `seek_file(n)` then `read_record` until it
/// returns 0 (the filemark, or end of data).
pub trait Drive: Send {
    /// A short human name: the device path or the emulator directory.
    fn name(&self) -> String;
    /// What the drive says about itself now.
    fn status(&mut self) -> Result<DriveStatus>;
    /// Position the head at the start of tape file `n` for reading.
    fn seek_file(&mut self, n: u64) -> Result<()>;
    /// Position at the start of tape file `n` and prepare to write it.
    fn begin_write(&mut self, n: u64) -> Result<()>;
    /// Write one record. At early warning this returns
    /// `Err(DriveError::EndOfMedium)` (as an `anyhow` error) and the caller
    /// must finish with `write_filemark`.
    fn write_record(&mut self, data: &[u8]) -> Result<()>;
    /// Write the filemark that ends the current tape file.
    fn write_filemark(&mut self) -> Result<()>;
    /// Read the next record into `buf` (growing it when a record is larger)
    /// and return its length; 0 means filemark or end of data.
    fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<usize>;
    /// Number of tape files recorded (the file number of end of data).
    fn count_files(&mut self) -> Result<u64>;
    /// The drive's absolute logical position (blocks and filemarks from the
    /// beginning of the tape, `MTIOCPOS`), when the drive reports one
    /// (`None` otherwise). The last proof compares it; `archive` compares
    /// its advance over a tape file with the records it wrote, to catch a
    /// record split (or merged) on its way to the tape.
    fn absolute_position(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// The drive's own counters now (bytes and I/O time from the st
    /// statistics, recovered errors), for a snapshot before and after a
    /// tape file ([`IoCounters::since`]); `None` when the drive has none
    /// (the emulator). Never an error: a missing figure is `None`.
    fn io_counters(&mut self) -> Option<IoCounters> {
        None
    }
}

/// How to reach the drive, as the configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveSpec {
    /// A st device node (or anything that answers the mtio ioctls).
    Device(PathBuf),
    /// The old tool's emulator: a directory of `fileNNNNN.tar` files,
    /// with an optional capacity in bytes.
    Emulator {
        /// The directory.
        dir: PathBuf,
        /// Early-warning capacity in bytes, if any.
        capacity: Option<u64>,
    },
}

/// Whether a drive is opened to write or only to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only (confirm, restore, status).
    Read,
    /// Read-write (archive).
    Write,
}

/// Open the drive that `spec` names.
pub fn open(spec: &DriveSpec, access: Access, block_size: usize) -> Result<Box<dyn Drive>> {
    match spec {
        DriveSpec::Device(path) => Ok(Box::new(st::StDrive::open(path, access, block_size)?)),
        DriveSpec::Emulator { dir, capacity } => {
            Ok(Box::new(emulator::Emulator::open(dir, access, *capacity, block_size)?))
        }
    }
}

/// Rewind and eject the cartridge (`MTOFFL`) before a changer takes it out;
/// an empty drive is left as it is. The emulator has nothing to eject.
pub fn eject(spec: &DriveSpec) -> Result<()> {
    match spec {
        DriveSpec::Device(path) => st::eject(path).map(|_| ()),
        DriveSpec::Emulator { .. } => Ok(()),
    }
}

/// The lock file of a drive: inside the emulator directory, or in /run/lock
/// (falling back to the temp dir) named after the device path.
pub fn drive_lock_path(spec: &DriveSpec) -> PathBuf {
    match spec {
        DriveSpec::Emulator { dir, .. } => dir.join(".tapeop.lock"),
        DriveSpec::Device(dev) => {
            let abs = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.clone());
            let name: String =
                abs.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            let dir = std::path::Path::new("/run/lock");
            let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
            dir.join(format!("tapeop{name}.lock"))
        }
    }
}

/// Read tape file `n` on a reader thread and hand its bytes to `parse` on
/// this thread; returns what `parse` returned. A read error wins over the
/// parse error it causes.
pub fn stream_file<T>(drive: &mut dyn Drive, n: u64, parse: impl FnOnce(ChannelReader) -> Result<T>) -> Result<T> {
    drive.seek_file(n).with_context(|| format!("positioning {} at tape file {n}", drive.name()))?;
    let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(64);
    thread::scope(|s| {
        let reader = s.spawn(move || pump(drive, &tx));
        let parsed = parse(ChannelReader::new(rx));
        let read = reader.join().map_err(|_| anyhow::anyhow!("tape reader thread panicked"))?;
        read.with_context(|| format!("reading tape file {n}"))?;
        parsed
    })
}

fn pump(drive: &mut dyn Drive, tx: &SyncSender<Arc<Vec<u8>>>) -> Result<()> {
    loop {
        let mut buf = Vec::new();
        let len = drive.read_record(&mut buf)?;
        if len == 0 {
            return Ok(());
        }
        buf.truncate(len);
        if tx.send(Arc::new(buf)).is_err() {
            return Ok(());
        }
    }
}

/// What reading on from the head found at tape file `n`.
pub enum Next<T> {
    /// End of data: the tape has no file `n`.
    EndOfData,
    /// Tape file `n` as `parse` read it, or why it could not be read.
    File(Result<T>),
}

/// Read tape file `n` like [`stream_file`], but find end of data by reading
/// rather than by spacing to it: with the head already at file `n` (as after
/// reading file `n - 1` to its filemark) nothing moves but the read. A read
/// that returns nothing without crossing a filemark is end of data; one that
/// crosses a filemark at once is an empty tape file. `Err` only when the head
/// cannot be put at file `n`.
pub fn stream_next_file<T>(
    drive: &mut dyn Drive,
    n: u64,
    parse: impl FnOnce(ChannelReader) -> Result<T>,
) -> Result<Next<T>> {
    // The emulator (and st after spacing there) already knows end of data.
    if drive.status().is_ok_and(|s| s.eod && s.file_number == Some(n)) {
        return Ok(Next::EndOfData);
    }
    if let Err(e) = drive.seek_file(n) {
        // Only after an unreadable (or unterminated) file n - 1, which left
        // the head inside it: whether file n exists is then asked of the
        // drive (on st, the failed space already stopped at end of data).
        if drive.count_files().is_ok_and(|files| files <= n) {
            return Ok(Next::EndOfData);
        }
        return Err(e.context(format!("positioning {} at tape file {n}", drive.name())));
    }
    let mut first = Vec::new();
    let len = match drive.read_record(&mut first) {
        Ok(len) => len,
        Err(e) => return Ok(Next::File(Err(e.context(format!("reading tape file {n}"))))),
    };
    if len == 0 {
        let s = drive.status()?;
        if s.file_number == Some(n) || (s.file_number.is_none() && s.eod) {
            return Ok(Next::EndOfData);
        }
    }
    first.truncate(len);
    let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(64);
    Ok(Next::File(thread::scope(|s| {
        let reader = s.spawn(move || {
            if len == 0 || tx.send(Arc::new(first)).is_err() {
                return Ok(());
            }
            pump(drive, &tx)
        });
        let parsed = parse(ChannelReader::new(rx));
        let read = reader.join().map_err(|_| anyhow::anyhow!("tape reader thread panicked"))?;
        read.with_context(|| format!("reading tape file {n}"))?;
        parsed
    })))
}
