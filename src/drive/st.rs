//! A Linux SCSI tape drive (the st driver) behind the [`Drive`] trait.
//!
//! The drive is used through its non-rewinding device (`/dev/nstN`) in
//! variable-block mode: one `write()` is one tape record, one `read()`
//! returns one record. Positioning goes through the mtio ioctls of
//! [`super::mtio`]; after every seek the drive's own file and block numbers
//! are checked, so the tool never writes or reads at a place it did not ask
//! for. Errors name the device and, where it matters, the tape position.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use libc::{c_int, c_short};
use nix::errno::Errno;

use super::mtio::{self, MtGet};
use super::probe::{has_medium, open_nonblocking, open_waiting_out_busy};
use super::{Access, Drive, DriveError, DriveStatus};

/// The major device number of st character devices.
const ST_MAJOR: u64 = 9;
/// The minor-number bit that marks a non-rewinding st device.
const ST_NO_REWIND_BIT: u64 = 128;
/// Smallest first read buffer.
pub const MIN_READ_BUFFER: usize = 256 * 1024;
/// Largest read buffer: a record beyond this is an error.
const MAX_READ_BUFFER: usize = 16 * 1024 * 1024;

/// A tape drive reached through a st device node.
#[derive(Debug)]
pub struct StDrive {
    file: File,
    path: PathBuf,
    access: Access,
    /// Size of the next read buffer; grows when a record is larger.
    read_size: usize,
    /// The previous read returned 0 (filemark or end of data).
    after_zero_read: bool,
    /// Recovered errors of every `MTIOCGET` made here (st clears its
    /// count on each one; see `counters`).
    errors: super::counters::ErrorTally,
}

impl StDrive {
    /// The size of the next read buffer: at least `MIN_READ_BUFFER` (or the
    /// block size), grown to twice a record that did not fit (ENOMEM).
    pub fn read_buffer_size(&self) -> usize {
        self.read_size
    }

    /// Open the tape device at `path` for `access`, check that a writable
    /// tape is loaded as needed, and put the drive in variable-block mode.
    /// `block_size` is the record size the caller expects; reads start with
    /// a buffer of at least that (and at least 256 KiB).
    pub fn open(path: &Path, access: Access, block_size: usize) -> Result<StDrive> {
        refuse_rewinding(path)?;
        super::loading::wait_while_loading(path)?;
        let file = open_device(path, access)?;
        let drive = StDrive {
            file,
            path: path.to_path_buf(),
            access,
            read_size: block_size.clamp(MIN_READ_BUFFER, MAX_READ_BUFFER),
            after_zero_read: false,
            errors: Default::default(),
        };
        let status = drive.mtget().map_err(|e| match e {
            Errno::ENOTTY | Errno::EINVAL => {
                anyhow!("{} is not a tape device (it does not answer MTIOCGET: {e})", path.display())
            }
            e => anyhow!(e).context(format!("{}: reading the drive status", path.display())),
        })?;
        drive.check_loaded(&status)?;
        drive
            .op(mtio::MTSETBLK, 0)
            .with_context(|| format!("{}: setting variable-block mode", drive.path.display()))?;
        Ok(drive)
    }

    /// Refuse a drive without a (writable, when writing) tape.
    fn check_loaded(&self, status: &MtGet) -> Result<()> {
        match unusable(status.mt_gstat, self.access) {
            None => Ok(()),
            Some(error) => Err(anyhow!(error).context(format!("tape drive {}", self.path.display()))),
        }
    }

    /// `MTIOCGET`, its recovered errors added to the tally.
    fn mtget(&self) -> nix::Result<MtGet> {
        let status = mtio::mt_get(self.file.as_fd())?;
        self.errors.add(status.mt_erreg);
        Ok(status)
    }

    fn op(&self, op: c_short, count: c_int) -> nix::Result<()> {
        mtio::mt_op(self.file.as_fd(), op, count)
    }

    /// The drive status, with the device named in the error.
    fn get(&self) -> Result<MtGet> {
        self.mtget().with_context(|| format!("{}: reading the drive status (MTIOCGET)", self.path.display()))
    }

    /// Run a tape operation, naming it and the device in the error.
    fn op_ctx(&self, op: c_short, count: c_int, what: &str) -> Result<()> {
        self.op(op, count).with_context(|| format!("{}: {what}", self.path.display()))
    }

    /// "file F block B" as the drive reports it now, for error messages.
    fn position(&self) -> String {
        match self.mtget() {
            Ok(s) => format!("file {} block {}", s.mt_fileno, s.mt_blkno),
            Err(_) => "an unknown position".to_string(),
        }
    }

    /// Move the head from where the drive says it is to the start of file `n`.
    fn move_to_file(&self, n: u64) -> Result<()> {
        let status = self.get()?;
        let target = i64::try_from(n).context("file number too large")?;
        let (cur, blk) = (i64::from(status.mt_fileno), i64::from(status.mt_blkno));
        if n == 0 && cur == 0 && blk == 0 {
            // Already at the beginning of the tape: no rewind.
            return Ok(());
        }
        if n == 0 || cur < 0 {
            self.op_ctx(mtio::MTREW, 1, "rewinding")?;
            return self.space_forward(0, target);
        }
        if cur < target {
            self.space_forward(cur, target)
        } else if cur == target && blk == 0 {
            Ok(())
        } else {
            let back = cur - target + 1;
            let what = format!("spacing back {back} filemarks (MTBSFM) from file {cur} to file {n}");
            self.op_ctx(mtio::MTBSFM, count(back)?, &what)
        }
    }

    fn space_forward(&self, from: i64, to: i64) -> Result<()> {
        if to <= from {
            return Ok(());
        }
        let what = format!("spacing forward {} filemarks (MTFSF) from file {from} to file {to}", to - from);
        self.op_ctx(mtio::MTFSF, count(to - from)?, &what)
    }

    /// One `read()` of up to `len` bytes into `buf`.
    fn read_once(&mut self, buf: &mut Vec<u8>, len: usize) -> std::io::Result<usize> {
        if buf.len() < len {
            buf.resize(len, 0);
        }
        self.file.read(&mut buf[..len])
    }

    /// After `ENOMEM` on a read of `len` bytes: step back over the record
    /// and double the buffer.
    fn grow_after_enomem(&mut self, len: usize) -> Result<()> {
        if len >= MAX_READ_BUFFER {
            bail!(
                "{}: a record at {} is larger than {} MiB",
                self.path.display(),
                self.position(),
                MAX_READ_BUFFER >> 20
            );
        }
        self.op_ctx(mtio::MTBSR, 1, "stepping back over a record larger than the read buffer")?;
        self.read_size = (len * 2).min(MAX_READ_BUFFER);
        Ok(())
    }

    /// Whether an `EIO` on read means "no more data": right after a
    /// filemark or end of data.
    fn eio_is_end(&self) -> bool {
        self.after_zero_read || self.mtget().is_ok_and(|s| s.mt_gstat & mtio::GMT_EOD != 0)
    }

    fn end_of_medium(&self, written: bool) -> anyhow::Error {
        let what = if written { "written" } else { "NOT written" };
        let e = anyhow!(DriveError::EndOfMedium);
        let msg =
            format!("{}: early warning at {}; the record after it was {what}", self.path.display(), self.position());
        // The same message either way; a written record is also typed.
        if written { e.context(crate::tape_error::RecordWritten(msg)) } else { e.context(msg) }
    }
}

impl StDrive {
    /// The error of a `write()` of a `len`-byte record that failed with
    /// `e`: a record too large for the drive (`EINVAL`: st checks it
    /// against the drive's READ BLOCK LIMITS) or for st's buffer
    /// (`EOVERFLOW`) says which limit and what to change.
    fn write_refused(&self, e: std::io::Error, len: usize) -> anyhow::Error {
        let at = format!("{}: writing a {len}-byte record at {}", self.path.display(), self.position());
        let why = match e.raw_os_error() {
            Some(libc::EINVAL) => format!(
                "the drive refused a {len}-byte record: it is larger than the largest block the drive takes \
                 (its READ BLOCK LIMITS, which st logs as \"Block limits\" in the kernel log when a tape is loaded); \
                 lower block_size in tape.conf"
            ),
            Some(libc::EOVERFLOW) => format!(
                "the st driver cannot buffer a {len}-byte record ({}): lower block_size in tape.conf",
                st_driver_limits()
            ),
            _ => return anyhow!(e).context(at),
        };
        anyhow!(e).context(why).context(at)
    }
}

/// The st driver's buffer settings as /sys/module/st/parameters shows them.
fn st_driver_limits() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/module/st/parameters/{name}"))
            .map_or_else(|_| "unknown".to_string(), |v| v.trim().to_string())
    };
    format!(
        "st parameters: max_sg_segs = {}, buffer_kbs = {}, try_direct_io = {}",
        read("max_sg_segs"),
        read("buffer_kbs"),
        read("try_direct_io")
    )
}

/// Why a drive with status bits `gstat` cannot serve `access`, if it cannot.
fn unusable(gstat: libc::c_long, access: Access) -> Option<DriveError> {
    if gstat & mtio::GMT_DR_OPEN != 0 || gstat & mtio::GMT_ONLINE == 0 {
        Some(DriveError::NotLoaded)
    } else if access == Access::Write && gstat & mtio::GMT_WR_PROT != 0 {
        Some(DriveError::WriteProtected)
    } else {
        None
    }
}

/// A mt_count from a spacing distance.
fn count(n: i64) -> Result<c_int> {
    c_int::try_from(n).context("too many filemarks to space over")
}

/// Refuse the rewinding variant of a st device: by name (`stN`, with an
/// optional mode letter) or by device number (major 9, minor without 128).
fn refuse_rewinding(path: &Path) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let rewinding_minor = std::fs::metadata(path).ok().and_then(|m| {
        let rdev = m.rdev();
        let st = m.file_type().is_char_device() && nix::sys::stat::major(rdev) == ST_MAJOR;
        let minor = nix::sys::stat::minor(rdev);
        (st && minor & ST_NO_REWIND_BIT == 0).then_some(minor)
    });
    let suggestion = if is_rewinding_name(name) {
        path.with_file_name(format!("n{name}")).display().to_string()
    } else if let Some(minor) = rewinding_minor {
        non_rewinding_node(minor)
    } else {
        return Ok(());
    };
    bail!("{} is a rewinding device: every close would rewind; use {suggestion}", path.display())
}

/// The `/dev` name of the non-rewinding twin of st minor `minor`, from sysfs.
fn non_rewinding_node(minor: u64) -> String {
    let twin = minor | ST_NO_REWIND_BIT;
    std::fs::read_link(format!("/sys/dev/char/{ST_MAJOR}:{twin}"))
        .ok()
        .and_then(|link| link.file_name().map(|n| format!("/dev/{}", n.to_string_lossy())))
        .unwrap_or_else(|| format!("the non-rewinding device (char {ST_MAJOR}:{twin})"))
}

/// `st` followed by digits and an optional mode letter (`l`, `m`, `a`).
fn is_rewinding_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("st") else {
        return false;
    };
    let digits = rest.trim_end_matches(['l', 'm', 'a']);
    rest.len() - digits.len() <= 1 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Rewind the cartridge in the drive at `path` and take it offline
/// (`MTOFFL`), so a robot can pull it. A drive with no loaded cartridge
/// (empty, or already ejected) is left as it is; returns whether an eject
/// was done.
pub fn eject(path: &Path) -> Result<bool> {
    refuse_rewinding(path)?;
    if !has_medium(path)? {
        return Ok(false);
    }
    let file = open_nonblocking(path)?;
    mtio::mt_op(file.as_fd(), mtio::MTOFFL, 1)
        .with_context(|| format!("{}: rewinding and ejecting the cartridge (MTOFFL)", path.display()))?;
    Ok(true)
}

/// Load again a cartridge that was ejected but is still in the drive
/// (`MTLOAD`), as after a run killed between its eject and the robot's move.
pub fn load(path: &Path) -> Result<()> {
    refuse_rewinding(path)?;
    let file = open_nonblocking(path)?;
    mtio::mt_op(file.as_fd(), mtio::MTLOAD, 1)
        .with_context(|| format!("{}: loading the cartridge (MTLOAD)", path.display()))
}

/// Open the device node, turning the st driver's refusals into typed
/// errors; a busy device is tried again for [`super::probe::BUSY_GRACE`].
fn open_device(path: &Path, access: Access) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(access == Access::Write);
    open_waiting_out_busy(&options, path).map_err(|e| {
        let shown = path.display();
        match (e.raw_os_error().map(Errno::from_raw), e.kind()) {
            // st refuses a read-write open of a protected tape with EROFS.
            (Some(Errno::EROFS), _) if access == Access::Write => {
                anyhow!(DriveError::WriteProtected).context(format!("tape drive {shown}"))
            }
            (Some(Errno::ENOMEDIUM), _) => anyhow!(DriveError::NotLoaded).context(format!("tape drive {shown}")),
            (Some(Errno::EBUSY), _) => {
                anyhow!("{shown} is busy: another program has the drive open")
            }
            (Some(Errno::EISDIR), _) => anyhow!("{shown} is not a tape device (it is a directory)"),
            (_, ErrorKind::NotFound) => anyhow!("{shown} does not exist"),
            _ => anyhow!(e).context(format!("opening tape device {shown}")),
        }
    })
}

impl Drive for StDrive {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn status(&mut self) -> Result<DriveStatus> {
        Ok(status_from(&self.get()?))
    }

    fn seek_file(&mut self, n: u64) -> Result<()> {
        self.after_zero_read = false;
        let moved = self.move_to_file(n);
        let status = self.get()?;
        // Linux st reports block -1 after MTEOM: end of data is a start too.
        let at_start = status.mt_blkno == 0 || (status.mt_blkno == -1 && status.mt_gstat & mtio::GMT_EOD != 0);
        if i64::from(status.mt_fileno) == n as i64 && at_start {
            return Ok(());
        }
        let mismatch = format!(
            "{}: position mismatch: asked for file {n}, drive reports file {} block {}",
            self.path.display(),
            status.mt_fileno,
            status.mt_blkno
        );
        Err(match moved {
            Ok(()) => anyhow!(mismatch),
            Err(e) => e.context(mismatch),
        })
    }

    fn begin_write(&mut self, n: u64) -> Result<()> {
        if self.access != Access::Write {
            bail!("{}: opened read-only, cannot write file {n}", self.path.display());
        }
        let Err(seek_error) = self.seek_file(n) else {
            return Ok(());
        };
        // Spacing onto end of data may fail on blank tape: go to end of data
        // and accept it when that is the start of file n.
        if let Err(e) = self.op(mtio::MTEOM, 1) {
            return Err(seek_error.context(format!("cannot write file {n}: MTEOM failed too: {e}")));
        }
        let status = self.get()?;
        // Linux st reports block -1 after MTEOM: end of data is a start too.
        let at_start = status.mt_blkno == 0 || (status.mt_blkno == -1 && status.mt_gstat & mtio::GMT_EOD != 0);
        if i64::from(status.mt_fileno) == n as i64 && at_start {
            return Ok(());
        }
        Err(seek_error.context(format!(
            "cannot write file {n}: end of data is at file {} block {}",
            status.mt_fileno, status.mt_blkno
        )))
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        match self.file.write(data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(n) => bail!("{}: short write at {}: {n} of {} bytes", self.path.display(), self.position(), data.len()),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                // Past early warning st allows every other write: retry once.
                let written = matches!(self.file.write(data), Ok(n) if n == data.len());
                Err(self.end_of_medium(written))
            }
            Err(e) => Err(self.write_refused(e, data.len())),
        }
    }

    fn write_filemark(&mut self) -> Result<()> {
        self.op(mtio::MTWEOF, 1)
            .with_context(|| format!("{}: writing a filemark at {}", self.path.display(), self.position()))
    }

    fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        loop {
            let len = self.read_size.max(buf.capacity()).min(MAX_READ_BUFFER);
            match self.read_once(buf, len) {
                Ok(n) => {
                    buf.truncate(n);
                    self.after_zero_read = n == 0;
                    return Ok(n);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => self.grow_after_enomem(len)?,
                Err(e) if e.raw_os_error() == Some(libc::EIO) && self.eio_is_end() => {
                    buf.clear();
                    self.after_zero_read = true;
                    return Ok(0);
                }
                Err(e) => {
                    return Err(anyhow!(e).context(format!(
                        "{}: reading a record at {}",
                        self.path.display(),
                        self.position()
                    )));
                }
            }
        }
    }

    fn count_files(&mut self) -> Result<u64> {
        self.after_zero_read = false;
        self.op_ctx(mtio::MTEOM, 1, "spacing to end of data to count files")?;
        let status = self.get()?;
        let fileno = u64::try_from(status.mt_fileno).map_err(|_| {
            anyhow!("{}: the drive does not know the file number at end of data (fast EOM?)", self.path.display())
        })?;
        // Records after the last filemark make an unterminated last file.
        Ok(fileno + u64::from(status.mt_blkno > 0))
    }

    fn absolute_position(&mut self) -> Result<Option<u64>> {
        // Drives that cannot READ POSITION make st fail MTIOCPOS: no position then.
        Ok(mtio::mt_pos(self.file.as_fd()).ok().and_then(|p| u64::try_from(p).ok()))
    }

    fn io_counters(&mut self) -> Option<super::IoCounters> {
        // One more MTIOCGET brings the tally up to now.
        let _ = self.mtget();
        Some(super::counters::st_snapshot(&self.path, &self.errors))
    }
}

/// Map `MTIOCGET` to what the tool needs.
fn status_from(s: &MtGet) -> DriveStatus {
    let g = s.mt_gstat;
    let block_size = (s.mt_dsreg & mtio::MT_ST_BLKSIZE_MASK) as u32;
    DriveStatus {
        loaded: g & mtio::GMT_ONLINE != 0 && g & mtio::GMT_DR_OPEN == 0,
        write_protected: g & mtio::GMT_WR_PROT != 0,
        file_number: u64::try_from(s.mt_fileno).ok(),
        block_number: u64::try_from(s.mt_blkno).ok(),
        block_size: (block_size != 0).then_some(block_size),
        bot: g & mtio::GMT_BOT != 0,
        eof: g & mtio::GMT_EOF != 0,
        eod: g & mtio::GMT_EOD != 0,
        eot: g & mtio::GMT_EOT != 0,
        cleaning_requested: g & super::health::GMT_CLN != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewinding_names() {
        for name in ["st0", "st12", "st0l", "st1m", "st2a"] {
            assert!(is_rewinding_name(name), "{name}");
        }
        for name in ["nst0", "st", "sta", "stx0", "st0ll", "tape", "nst0l"] {
            assert!(!is_rewinding_name(name), "{name}");
        }
    }

    #[test]
    fn status_bits_map_to_typed_errors_and_drive_status() {
        let online = mtio::GMT_ONLINE;
        assert_eq!(unusable(online, Access::Write), None);
        assert_eq!(unusable(mtio::GMT_DR_OPEN, Access::Read), Some(DriveError::NotLoaded));
        assert_eq!(unusable(0, Access::Read), Some(DriveError::NotLoaded));
        let protected = online | mtio::GMT_WR_PROT;
        assert_eq!(unusable(protected, Access::Read), None);
        assert_eq!(unusable(protected, Access::Write), Some(DriveError::WriteProtected));
        let raw = MtGet {
            mt_dsreg: (0x60 << mtio::MT_ST_DENSITY_SHIFT) | 512,
            mt_gstat: online | mtio::GMT_EOF | mtio::GMT_EOD | mtio::GMT_EOT,
            mt_fileno: 7,
            mt_blkno: -1,
            ..MtGet::default()
        };
        let expect = DriveStatus {
            loaded: true,
            file_number: Some(7),
            block_size: Some(512),
            eof: true,
            eod: true,
            eot: true,
            ..DriveStatus::default()
        };
        assert_eq!(status_from(&raw), expect);
    }
}
