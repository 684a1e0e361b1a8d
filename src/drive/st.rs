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
use super::{Access, Drive, DriveError, DriveStatus};

/// The major device number of st character devices.
const ST_MAJOR: u64 = 9;
/// The minor-number bit that marks a non-rewinding st device.
const ST_NO_REWIND_BIT: u64 = 128;
/// Smallest first read buffer.
const MIN_READ_BUFFER: usize = 256 * 1024;
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
}

impl StDrive {
    /// Open the tape device at `path` for `access`, check that a writable
    /// tape is loaded as needed, and put the drive in variable-block mode.
    /// `block_size` is the record size the caller expects; reads start with
    /// a buffer of at least that (and at least 256 KiB).
    pub fn open(path: &Path, access: Access, block_size: usize) -> Result<StDrive> {
        refuse_rewinding(path)?;
        let file = open_device(path, access)?;
        let drive = StDrive {
            file,
            path: path.to_path_buf(),
            access,
            read_size: block_size.clamp(MIN_READ_BUFFER, MAX_READ_BUFFER),
            after_zero_read: false,
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

    fn mtget(&self) -> nix::Result<MtGet> {
        mtio::mt_get(self.file.as_fd())
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
        anyhow!(DriveError::EndOfMedium).context(format!(
            "{}: early warning at {}; the record after it was {what}",
            self.path.display(),
            self.position()
        ))
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

/// Open the device node, turning the st driver's refusals into typed errors.
fn open_device(path: &Path, access: Access) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(access == Access::Write);
    options.open(path).map_err(|e| {
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
    }
}

#[cfg(test)]
#[path = "../../tests/support/vst.rs"]
mod vst;

#[cfg(test)]
mod tests {
    use super::vst::{self, VirtualDrive, VstOptions};
    use super::*;

    /// `n` records of `size` bytes, each filled with a byte naming file and record.
    fn records(file: u8, n: u8, size: usize) -> Vec<Vec<u8>> {
        (0..n).map(|r| vec![file.wrapping_mul(16).wrapping_add(r); size]).collect()
    }

    /// A tempdir and a virtual drive mounted over a tape holding `files`.
    fn drive_with(files: &[Vec<Vec<u8>>], opts: VstOptions) -> (tempfile::TempDir, VirtualDrive) {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("tape.tap");
        vst::write_tap_files(&image, files).expect("writing the tape image");
        let drive = VirtualDrive::mount(&image, opts).expect("mounting the virtual drive");
        (dir, drive)
    }

    fn five_files() -> Vec<Vec<Vec<u8>>> {
        (0..5).map(|f| records(f, 3, 1000 + usize::from(f))).collect()
    }

    fn drive_error(err: &anyhow::Error) -> Option<DriveError> {
        err.downcast_ref::<DriveError>().cloned()
    }

    fn read(drive: &mut StDrive) -> Vec<u8> {
        let mut buf = Vec::new();
        drive.read_record(&mut buf).expect("read_record");
        buf
    }

    fn at(drive: &mut StDrive) -> (Option<u64>, Option<u64>) {
        let s = drive.status().expect("status");
        (s.file_number, s.block_number)
    }

    #[test]
    fn seek_file_spaces_forward_and_back_to_file_starts() {
        let files = five_files();
        let (_dir, vd) = drive_with(&files, VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        d.seek_file(3).unwrap(); // MTFSF 3 from BOT
        assert_eq!(at(&mut d), (Some(3), Some(0)));
        assert_eq!(read(&mut d), files[3][0]);
        d.seek_file(1).unwrap(); // MTBSFM 3 from file 3 block 1
        assert_eq!(at(&mut d), (Some(1), Some(0)));
        assert_eq!(read(&mut d), files[1][0]);
        assert_eq!(read(&mut d), files[1][1]);
        d.seek_file(1).unwrap(); // MTBSFM 1 from inside file 1
        assert_eq!(read(&mut d), files[1][0]);
        d.seek_file(4).unwrap(); // MTFSF 3
        assert_eq!(read(&mut d), files[4][0]);
        d.seek_file(0).unwrap(); // MTREW
        let status = d.status().unwrap();
        assert!(status.bot && status.loaded && !status.eod);
        assert_eq!(read(&mut d), files[0][0]);
        d.seek_file(5).unwrap(); // end of data is the start of file 5
        assert_eq!(at(&mut d), (Some(5), Some(0)));
        assert_eq!(read(&mut d), Vec::<u8>::new());
    }

    #[test]
    fn seek_file_reads_every_record_then_zero_at_the_filemark() {
        let files = five_files();
        let (_dir, vd) = drive_with(&files, VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        for n in [2u64, 0, 4, 1] {
            d.seek_file(n).unwrap();
            for record in &files[n as usize] {
                assert_eq!(&read(&mut d), record);
            }
            assert_eq!(read(&mut d).len(), 0, "filemark after file {n}");
        }
    }

    #[test]
    fn seek_file_detects_a_position_mismatch() {
        let files = five_files();
        let (_dir, vd) = drive_with(&files, VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        vd.inject_fsf_short();
        let err = d.seek_file(3).unwrap_err();
        let want = format!(
            "{}: position mismatch: asked for file 3, drive reports file 2 block 0",
            vd.device_path().display()
        );
        assert_eq!(err.to_string(), want);
    }

    #[test]
    fn seek_file_past_end_of_data_reports_where_the_drive_stopped() {
        let files = five_files();
        let (_dir, vd) = drive_with(&files[..2], VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        let err = d.seek_file(4).unwrap_err();
        assert!(
            err.to_string().ends_with("position mismatch: asked for file 4, drive reports file 2 block 0"),
            "{err:#}"
        );
        let chain = format!("{err:#}");
        assert!(chain.contains("spacing forward 4 filemarks (MTFSF) from file 0 to file 4"), "{chain}");
        assert!(chain.contains("EIO"), "{chain}");
    }

    #[test]
    fn read_record_recovers_from_enomem_with_large_records() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("tape.tap");
        let vd = VirtualDrive::mount(&image, VstOptions::default()).unwrap();
        let big = vd.limits().max_record;
        assert!(big > 2 * MIN_READ_BUFFER, "the drive must allow records above 512 KiB");
        let file = vec![vec![1u8; big], vec![2u8; 600_000], vec![3u8; 3], vec![4u8; 300_000]];
        drop(vd);
        vst::write_tap_files(&image, std::slice::from_ref(&file)).unwrap();
        let vd = VirtualDrive::mount(&image, VstOptions::default()).unwrap();
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        assert_eq!(d.read_size, MIN_READ_BUFFER);
        let mut buf = Vec::new();
        for record in &file {
            let n = d.read_record(&mut buf).unwrap();
            assert_eq!((n, &buf), (record.len(), record));
        }
        assert!(d.read_size >= big, "buffer grew to {}", d.read_size);
        assert_eq!(d.read_record(&mut buf).unwrap(), 0, "filemark");
        assert_eq!(d.read_record(&mut buf).unwrap(), 0, "end of data");
        assert_eq!(d.read_record(&mut buf).unwrap(), 0, "EIO after end of data reads as 0");
        assert_eq!(at(&mut d), (Some(1), Some(0)));
    }

    #[test]
    fn write_record_reports_end_of_medium_at_early_warning() {
        let opts = VstOptions { capacity: Some(1 << 20), ..VstOptions::default() };
        let (_dir, vd) = drive_with(&[], opts);
        let mut d = StDrive::open(&vd.device_path(), Access::Write, 256 * 1024).unwrap();
        d.begin_write(0).unwrap();
        let record = vec![9u8; 256 * 1024];
        for _ in 0..4 {
            d.write_record(&record).unwrap(); // the 4th crosses the early warning
        }
        let err = d.write_record(&record).unwrap_err();
        assert_eq!(drive_error(&err), Some(DriveError::EndOfMedium), "{err:#}");
        assert!(err.to_string().ends_with("the record after it was written"), "{err}");
        assert!(d.status().unwrap().eot);
        d.write_filemark().unwrap();
        drop(d);
        assert_eq!(vd.files().unwrap(), vec![vec![record; 5]]);
    }

    #[test]
    fn begin_write_appends_at_end_of_data_and_truncates_in_the_middle() {
        let files = five_files();
        let (_dir, vd) = drive_with(&files[..3], VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Write, 0).unwrap();
        assert_eq!(d.count_files().unwrap(), 3);
        assert!(d.status().unwrap().eod);
        d.begin_write(3).unwrap();
        d.write_record(b"appended").unwrap();
        d.write_filemark().unwrap();
        assert_eq!(d.count_files().unwrap(), 4);
        d.begin_write(1).unwrap();
        d.write_record(b"replaces files 1 to 3").unwrap();
        d.write_filemark().unwrap();
        let err = d.begin_write(5).unwrap_err();
        assert!(err.to_string().starts_with("cannot write file 5: end of data is at file 2 block 0"), "{err:#}");
        drop(d);
        let expect = vec![files[0].clone(), vec![b"replaces files 1 to 3".to_vec()]];
        assert_eq!(vd.files().unwrap(), expect);
    }

    #[test]
    fn blank_tape_has_no_files_and_takes_file_zero() {
        let (_dir, vd) = drive_with(&[], VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Write, 0).unwrap();
        assert_eq!(d.count_files().unwrap(), 0);
        d.begin_write(0).unwrap();
        d.write_record(b"first").unwrap();
        drop(d); // st writes the filemark on close
        assert_eq!(vd.files().unwrap(), vec![vec![b"first".to_vec()]]);
    }

    #[test]
    fn read_only_drive_refuses_to_write() {
        let (_dir, vd) = drive_with(&five_files(), VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        let err = d.begin_write(0).unwrap_err();
        assert!(err.to_string().ends_with("opened read-only, cannot write file 0"), "{err}");
    }

    #[test]
    fn status_reports_position_and_variable_block_mode() {
        let (_dir, vd) = drive_with(&five_files(), VstOptions::default());
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        let s = d.status().unwrap();
        let expect = DriveStatus {
            loaded: true,
            file_number: Some(0),
            block_number: Some(0),
            bot: true,
            ..DriveStatus::default()
        };
        assert_eq!(s, expect);
        assert_eq!(d.name(), vd.device_path().display().to_string());
    }

    #[test]
    fn rewinding_devices_are_refused() {
        let (_dir, vd) = drive_with(&[], VstOptions::default());
        let err = StDrive::open(&vd.rewinding_device_path(), Access::Read, 0).unwrap_err();
        let want = format!(
            "{} is a rewinding device: every close would rewind; use {}",
            vd.rewinding_device_path().display(),
            vd.device_path().display()
        );
        assert_eq!(err.to_string(), want);
        let err = StDrive::open(Path::new("/dev/st3"), Access::Write, 0).unwrap_err();
        assert_eq!(err.to_string(), "/dev/st3 is a rewinding device: every close would rewind; use /dev/nst3");
    }

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
    fn regular_files_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("nst0");
        std::fs::write(&plain, b"not a tape").unwrap();
        for access in [Access::Read, Access::Write] {
            let err = StDrive::open(&plain, access, 0).unwrap_err();
            let want = format!("{} is not a tape device (it does not answer MTIOCGET: ", plain.display());
            assert!(err.to_string().starts_with(&want), "{err}");
        }
        assert_eq!(std::fs::read(&plain).unwrap(), b"not a tape");
        let err = StDrive::open(dir.path(), Access::Read, 0).unwrap_err();
        assert!(err.to_string().contains("is not a tape device"), "{err}");
        let err = StDrive::open(dir.path(), Access::Write, 0).unwrap_err();
        assert_eq!(err.to_string(), format!("{} is not a tape device (it is a directory)", dir.path().display()));
        let err = StDrive::open(&dir.path().join("nst9"), Access::Read, 0).unwrap_err();
        assert!(err.to_string().ends_with("nst9 does not exist"), "{err}");
    }

    #[test]
    fn missing_and_write_protected_tapes_are_typed_errors() {
        let opts = VstOptions { loaded: false, ..VstOptions::default() };
        let (_dir, vd) = drive_with(&[], opts);
        let err = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap_err();
        assert_eq!(drive_error(&err), Some(DriveError::NotLoaded), "{err:#}");
        let want = format!("tape drive {}: no tape loaded in the drive", vd.device_path().display());
        assert_eq!(format!("{err:#}"), want);

        let opts = VstOptions { write_protected: true, ..VstOptions::default() };
        let (_dir, vd) = drive_with(&five_files(), opts);
        let err = StDrive::open(&vd.device_path(), Access::Write, 0).unwrap_err();
        assert_eq!(drive_error(&err), Some(DriveError::WriteProtected), "{err:#}");
        let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        assert!(d.status().unwrap().write_protected);
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

    #[test]
    fn a_second_open_is_refused_as_busy() {
        let (_dir, vd) = drive_with(&[], VstOptions::default());
        let _first = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
        let err = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap_err();
        let want = format!("{} is busy: another program has the drive open", vd.device_path().display());
        assert_eq!(err.to_string(), want);
    }
}
