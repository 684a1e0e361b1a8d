//! A virtual st tape drive served over FUSE, for tests and rehearsals.
//!
//! [`VirtualDrive::mount`] mounts, in-process (a fuser background session),
//! a directory holding `nst0`, a file that answers `open`, `read`, `write`,
//! `close` and the mtio ioctls (`MTIOCTOP`, `MTIOCGET`, `MTIOCPOS`) like the
//! non-rewinding device of a Linux st drive in variable-block mode, `st0`,
//! the same drive through its rewinding device (it rewinds on every close),
//! and `control` (mode 0600), the tape library's side of the drive (below).
//! The tape is a SIMH `.tap` image file — each record framed by its 32-bit
//! little-endian length before and after (odd lengths padded with one zero
//! byte, as SIMH does), a zero word per filemark — loaded at mount and
//! written through on every change, so a test can inspect or copy it at any
//! time ([`read_tap`], [`tap_files`]). Dropping the [`VirtualDrive`]
//! unmounts it.
//!
//! A drive is in one of three states ([`DriveState`]): empty (no cartridge;
//! [`VirtualDrive::mount_empty_at`]), loaded (cartridge threaded, ready), or
//! ejected (`MTOFFL`/`MTUNLOAD` done, or mounted with `loaded: false`: the
//! cartridge is still in the drive but not ready; `MTLOAD` loads it again).
//! Empty and ejected both answer as an st drive with no tape. The
//! `control` file is how a simulated changer (tests/support/mtx-sim) moves
//! cartridges: reading it gives one line, `empty`, `loaded IMAGE` or
//! `ejected IMAGE`; writing `load IMAGE [capacity=BYTES] [cleaning]` puts a
//! cartridge in and loads it at BOT (`EBUSY` when a cartridge is already in
//! the drive; image paths contain no whitespace), and `unload` takes the
//! cartridge out (`EBUSY` unless it is ejected and no program has the drive
//! open, `ENOMEDIUM` when empty); `cleaning-request on|off` sets the
//! drive's cleaning request and `errors-per-mb F` how many recovered errors
//! its reads meet (for rehearsals by hand); anything else fails with
//! `EINVAL`. A
//! cleaning cartridge (`cleaning`) runs its cleaning at once, which clears
//! the drive's cleaning request (`GMT_CLN`; not with a used-up cartridge,
//! [`VirtualDrive::set_cleaning_used_up`]), and ends
//! ejected: the drive never comes ready with it, and `MTLOAD` fails with
//! `EIO` (a drive refusing to thread a cleaning cartridge for data). The
//! same moves are [`VirtualDrive::insert`], [`VirtualDrive::insert_cleaning`]
//! and [`VirtualDrive::remove`].
//!
//! What it reproduces of st (see the kernel's `Documentation/scsi/st.rst`):
//! one `write()` is one record and writing truncates everything after the
//! head; a close after a write (or `MTREW`/`MTOFFL`/`MTBSF`/`MTBSFM` after a
//! write) writes a filemark first; a read returns one whole record, fails with
//! `ENOMEM` when the buffer is shorter (the head still moves past the record),
//! returns 0 once at a filemark and moves past it, and at end of data returns
//! 0 and then `EIO` (`EIO` at once after `MTEOM`); `MTFSF` into blank tape
//! fails with `EIO` and leaves the head at end of data; `MTBSF` leaves the
//! block number unknown (-1); early warning at a configurable capacity (the
//! write that crosses it completes, the next fails with `ENOSPC`, then writes
//! alternately succeed and fail); a write-protected tape refuses a read-write
//! open with `EROFS` (writes through an `O_NONBLOCK` open fail with
//! `EACCES`); no tape gives `ENOMEDIUM` (or, with `O_NONBLOCK`, `GMT_DR_OPEN`);
//! a cartridge still loading ([`VirtualDrive::start_loading`] until
//! [`VirtualDrive::finish_loading`]) gives `EIO` (or, with `O_NONBLOCK`, the
//! door closed but not `GMT_ONLINE`); a second open while the drive is open fails with `EBUSY`. The drive
//! counts tape motion ([`VirtualDrive::motion`]): positioning operations,
//! rewinds, the bytes the head passed over while positioning, and the bytes
//! read and written, so tests can hold each command to a motion budget;
//! `MTIOCPOS` reports the head's absolute position (records and filemarks
//! before it), as a drive's READ POSITION does. A drive may have a speed
//! ([`VstOptions::write_rate`]): each record read or written then takes
//! `len / rate` seconds (see [`VirtualDrive::mount`]). It counts recovered
//! errors ([`VirtualDrive::add_recovered_errors`], or a rate per MB read:
//! [`VirtualDrive::set_recovered_errors_per_mb_read`]), returned in the low
//! word of `mt_erreg` and cleared by each `MTIOCGET` as st does, and may keep
//! st's statistics in a sysfs-like directory ([`VstOptions::sysfs`],
//! [`StStatsFiles`]). Only
//! variable-block mode exists: `MTSETBLK` with a non-zero size fails with
//! `EINVAL`, as for a size outside a drive's limits.
//!
//! Two st behaviours need care over FUSE. st writes the close filemark only
//! on the last close of an open file (`file_count == 1`), and the drive is
//! released only then; FUSE sends a flush for every close, including a
//! forked child's exec closing an inherited close-on-exec descriptor. So the
//! filemark is written on the flush that comes from the writer's own file
//! table (the FUSE lock owner of its writes) or at release, and a descriptor
//! copied into a forked child keeps the drive busy until the child execs or
//! exits, as with st (see [`serial`]).
//!
//! The FUSE transport sets one limit, found by experiment on Linux 6.18:
//! the kernel splits a direct-I/O `write()` or `read()` into requests of at
//! most `max_pages` pages of the *user buffer* (an unaligned 1 MiB buffer
//! spans 257 pages) and at most `max_write` bytes; `max_pages` is capped by
//! the sysctl `fs.fuse.max_pages_limit` (256 by default, i.e. 1 MiB). A
//! split write arrives as two writes (two records), and a read whose first
//! piece comes back full is continued into the next record. So the drive
//! refuses with `EINVAL` (as st does for a block beyond the drive's maximum)
//! any write larger than [`Limits::max_record`], chosen so that a whole
//! record always fits one request, and is always shorter than one, whatever
//! the buffer alignment. For 1 MiB records ([`VstOptions::max_record`]'s
//! default) mounting raises `fs.fuse.max_pages_limit` to 257 when it is
//! lower and writable (root); otherwise the bound drops to `limit - 1` pages
//! (1020 KiB with the default 256). Files are opened with `FOPEN_DIRECT_IO`
//! (no page cache: each `write()` reaches the drive whole and in order) and
//! `FOPEN_NONSEEKABLE` (GNU tar seeks in an archive that is a regular file;
//! `lseek` failing with `ESPIPE` makes it read instead).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, IoctlFlags, KernelConfig, LockOwner,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};

/// File name of the non-rewinding device inside the mount.
pub const DEVICE_NAME: &str = "nst0";
/// File name of the rewinding device inside the mount.
pub const REWINDING_NAME: &str = "st0";
/// File name of the changer's control file inside the mount.
pub const CONTROL_NAME: &str = "control";
/// The sysctl that caps the pages of one FUSE request.
pub const MAX_PAGES_LIMIT_SYSCTL: &str = "/proc/sys/fs/fuse/max_pages_limit";
/// The kernel's cap on FUSE request pages when the sysctl does not exist.
const DEFAULT_MAX_PAGES_LIMIT: usize = 256;
/// fuser's largest `max_write` (its request buffer is 16 MiB + one page).
const FUSER_MAX_WRITE: usize = 16 << 20;

const ROOT_INO: INodeNo = INodeNo::ROOT;
const NST_INO: INodeNo = INodeNo(2);
const ST_INO: INodeNo = INodeNo(3);
const CONTROL_INO: INodeNo = INodeNo(4);
const TTL: Duration = Duration::from_secs(1);

// Linux ioctl numbers: _IOC(dir, 'm', nr, size) with dir 1 = write, 2 = read.
const fn mt_ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((b'm' as u32) << 8) | nr
}
const LONG: usize = std::mem::size_of::<libc::c_long>();
const MTGET_SIZE: usize = 5 * LONG + 8;
/// `MTIOCTOP`: `_IOW('m', 1, struct mtop)`.
pub const MTIOCTOP: u32 = mt_ioc(1, 1, 8);
/// `MTIOCGET`: `_IOR('m', 2, struct mtget)`.
pub const MTIOCGET: u32 = mt_ioc(2, 2, MTGET_SIZE);
/// `MTIOCPOS`: `_IOR('m', 3, struct mtpos)`.
pub const MTIOCPOS: u32 = mt_ioc(2, 3, LONG);

// mt_op codes and mt_gstat bits, from <linux/mtio.h>.
const MTFSF: i16 = 1;
const MTBSF: i16 = 2;
const MTFSR: i16 = 3;
const MTBSR: i16 = 4;
const MTWEOF: i16 = 5;
const MTREW: i16 = 6;
const MTOFFL: i16 = 7;
const MTNOP: i16 = 8;
const MTRETEN: i16 = 9;
const MTBSFM: i16 = 10;
const MTFSFM: i16 = 11;
const MTEOM: i16 = 12;
const MTERASE: i16 = 13;
const MTSETBLK: i16 = 20;
const MTLOAD: i16 = 30;
const MTUNLOAD: i16 = 31;
const MTWEOFI: i16 = 35;
const GMT_EOF: i64 = 0x8000_0000;
const GMT_BOT: i64 = 0x4000_0000;
const GMT_EOT: i64 = 0x2000_0000;
const GMT_EOD: i64 = 0x0800_0000;
const GMT_WR_PROT: i64 = 0x0400_0000;
const GMT_ONLINE: i64 = 0x0100_0000;
const GMT_DR_OPEN: i64 = 0x0004_0000;
const GMT_IM_REP_EN: i64 = 0x0001_0000;
const GMT_CLN: i64 = 0x0000_8000;
const MT_ISSCSI2: i64 = 0x72;

/// How the virtual drive behaves.
#[derive(Debug, Clone)]
pub struct VstOptions {
    /// Early-warning point, in bytes of record data before the head; `None`
    /// for a tape that never fills.
    pub capacity: Option<u64>,
    /// The cartridge is write-protected.
    pub write_protected: bool,
    /// The cartridge is loaded (otherwise it is in the drive, ejected).
    pub loaded: bool,
    /// Largest record wanted, in bytes (see [`Limits::max_record`]).
    pub max_record: usize,
    /// Raise `fs.fuse.max_pages_limit` when it is too low for `max_record`.
    pub raise_page_limit: bool,
    /// The drive's speed in bytes per second, for reads as well as writes;
    /// `None` (the default) or 0 transfers instantly. See [`VirtualDrive::mount`]
    /// for how the time is spent. A property of the mount (the drive), like
    /// the transfer limits: changing tapes keeps it.
    pub write_rate: Option<u64>,
    /// A sysfs root in which the drive keeps st's statistics up to date, as
    /// `ROOT/class/scsi_tape/stN/stats/` (point `TAPEOP_SYSFS` at `ROOT`);
    /// `None` (the default) keeps none. See [`StStatsFiles`].
    pub sysfs: Option<PathBuf>,
    /// The `N` of `stN` in `sysfs` (default 0). tapeop finds it from the
    /// device's name: give the drive a link named `nstN` to its `nst0`.
    pub st_number: u32,
}

impl Default for VstOptions {
    fn default() -> Self {
        VstOptions {
            capacity: None,
            write_protected: false,
            loaded: true,
            max_record: 1 << 20,
            raise_page_limit: true,
            write_rate: None,
            sysfs: None,
            st_number: 0,
        }
    }
}

/// The transfer limits in force for one mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The machine's page size.
    pub page_size: usize,
    /// `fs.fuse.max_pages_limit` when mounting (after any raise).
    pub max_pages_limit: usize,
    /// Pages of one FUSE request, as the kernel grants them.
    pub max_pages: usize,
    /// `max_write` given to the kernel at FUSE init.
    pub max_write: usize,
    /// Largest record a `write()` may carry; larger ones fail with `EINVAL`.
    pub max_record: usize,
}

/// One element of a tape image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapItem {
    /// A data record.
    Record(Vec<u8>),
    /// A filemark.
    Filemark,
}

/// Whether a cartridge is in the drive, and whether it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveState {
    /// No cartridge.
    Empty,
    /// This cartridge image, threaded and ready.
    Loaded(PathBuf),
    /// This cartridge image, in the drive but not loaded (after `MTOFFL`).
    Ejected(PathBuf),
}

impl DriveState {
    /// The `control` file's line for this state (without the newline).
    pub fn line(&self) -> String {
        match self {
            DriveState::Empty => "empty".to_string(),
            DriveState::Loaded(p) => format!("loaded {}", p.display()),
            DriveState::Ejected(p) => format!("ejected {}", p.display()),
        }
    }
}

/// A mounted virtual drive; dropping it unmounts it.
pub struct VirtualDrive {
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    tempdir: Option<tempfile::TempDir>,
    tape: Arc<Mutex<Tape>>,
    limits: Limits,
}

impl VirtualDrive {
    /// Mount a drive holding the tape `image` (created empty if missing) on a
    /// fresh temporary directory.
    ///
    /// A drive with a [`VstOptions::write_rate`] answers a data `read()` or
    /// `write()` of `len` bytes only `len / rate` seconds after doing it: the
    /// tape moves (and the image changes) at once, then a thread of its own
    /// waits and replies, holding neither the tape's mutex nor the FUSE
    /// session, so `MTIOCGET` and the `control` file stay answerable while
    /// the caller is blocked. It models a physical drive's speed for
    /// benchmarks (e.g. two drives against one), not synchronisation.
    pub fn mount(image: &Path, opts: VstOptions) -> Result<VirtualDrive> {
        let dir = tempfile::Builder::new()
            .prefix("vst-mount")
            .tempdir()
            .context("creating a mount point for the virtual drive")?;
        let mut drive = Self::mount_at(image, dir.path(), opts)?;
        drive.tempdir = Some(dir);
        Ok(drive)
    }

    /// Mount a drive holding the tape `image` on the directory `mountpoint`.
    pub fn mount_at(image: &Path, mountpoint: &Path, opts: VstOptions) -> Result<VirtualDrive> {
        Self::mount_with(mountpoint, &opts, |max_record| Tape::load(image, &opts, max_record))
    }

    /// Mount a drive with no cartridge (a tape library's drive) on a fresh
    /// temporary directory; `opts` gives the transfer limits.
    pub fn mount_empty(opts: VstOptions) -> Result<VirtualDrive> {
        let dir = tempfile::Builder::new()
            .prefix("vst-mount")
            .tempdir()
            .context("creating a mount point for the virtual drive")?;
        let mut drive = Self::mount_empty_at(dir.path(), opts)?;
        drive.tempdir = Some(dir);
        Ok(drive)
    }

    /// Mount a drive with no cartridge on the directory `mountpoint`.
    pub fn mount_empty_at(mountpoint: &Path, opts: VstOptions) -> Result<VirtualDrive> {
        Self::mount_with(mountpoint, &opts, Tape::empty)
    }

    fn mount_with(
        mountpoint: &Path,
        opts: &VstOptions,
        make: impl FnOnce(usize) -> Result<Tape>,
    ) -> Result<VirtualDrive> {
        require_fuse()?;
        let limits = negotiate_limits(opts)?;
        let tape = Arc::new(Mutex::new(make(limits.max_record)?));
        let stats = opts.sysfs.as_deref().map(|r| StStatsFiles::create(r, opts.st_number)).transpose()?.map(Arc::new);
        let fs = VstFs { tape: tape.clone(), max_write: limits.max_write as u32, rate: opts.write_rate, stats };
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("vst".into()), fuser::MountOption::NoAtime];
        let session = fuser::spawn_mount(fs, mountpoint, &config)
            .with_context(|| format!("mounting the virtual drive on {}", mountpoint.display()))?;
        Ok(VirtualDrive { session: Some(session), mountpoint: mountpoint.to_path_buf(), tempdir: None, tape, limits })
    }

    /// Path of the non-rewinding device (`MOUNT/nst0`).
    pub fn device_path(&self) -> PathBuf {
        self.mountpoint.join(DEVICE_NAME)
    }

    /// Path of the rewinding device (`MOUNT/st0`), which rewinds on close.
    pub fn rewinding_device_path(&self) -> PathBuf {
        self.mountpoint.join(REWINDING_NAME)
    }

    /// Path of the changer's control file (`MOUNT/control`).
    pub fn control_path(&self) -> PathBuf {
        self.mountpoint.join(CONTROL_NAME)
    }

    /// The cartridge image in the drive (loaded or ejected), if any.
    pub fn cartridge(&self) -> Option<PathBuf> {
        let tape = self.lock();
        tape.cartridge.then(|| tape.image_path.clone())
    }

    /// Empty, loaded or ejected, as the `control` file reports it.
    pub fn state(&self) -> DriveState {
        self.lock().state()
    }

    /// Put the cartridge `image` (created empty if missing) in the drive and
    /// load it at BOT, as a changer does; `capacity` is its early-warning
    /// point. Fails when a cartridge is already in the drive.
    pub fn insert(&self, image: &Path, capacity: Option<u64>) -> Result<()> {
        let done = self.lock().insert(image, capacity, false);
        done.map_err(|e| errno_error(e, &format!("inserting {} into the virtual drive", image.display())))
    }

    /// Put the cleaning cartridge `image` in the drive: it cleans and ends
    /// ejected at once (see the module text).
    pub fn insert_cleaning(&self, image: &Path) -> Result<()> {
        let done = self.lock().insert(image, None, true);
        done.map_err(|e| errno_error(e, &format!("inserting cleaning cartridge {}", image.display())))
    }

    /// Take the cartridge out, as a changer does; fails unless it is
    /// ejected and no program has the drive open.
    pub fn remove(&self) -> Result<()> {
        let done = self.lock().remove();
        done.map_err(|e| errno_error(e, "taking the cartridge out of the virtual drive"))
    }

    /// The directory the drive is mounted on.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The tape image file.
    pub fn image_path(&self) -> PathBuf {
        self.lock().image_path.clone()
    }

    /// The transfer limits of this mount.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Set or clear the cartridge's write protection.
    pub fn set_write_protected(&self, on: bool) {
        self.lock().write_protected = on;
    }

    /// Load (at the beginning of the tape) or unload the cartridge; an
    /// empty drive stays empty.
    pub fn set_loaded(&self, on: bool) {
        let mut tape = self.lock();
        tape.loaded = on && tape.cartridge && !tape.cleaning;
        tape.move_to(0);
    }

    /// Start loading the cartridge in the drive (as a new LTO-9 cartridge's
    /// first load): until [`VirtualDrive::finish_loading`], an open without
    /// `O_NONBLOCK` fails with `EIO` and `MTIOCGET` reports the door closed
    /// but the drive not online.
    pub fn start_loading(&self) {
        let mut tape = self.lock();
        tape.loading = tape.cartridge && !tape.cleaning;
        tape.loaded = false;
    }

    /// End the load begun by [`VirtualDrive::start_loading`]: the cartridge
    /// is ready at the beginning of the tape.
    pub fn finish_loading(&self) {
        let mut tape = self.lock();
        tape.loaded = tape.loading;
        tape.loading = false;
        tape.move_to(0);
    }

    /// Set or clear the drive's cleaning request (`GMT_CLN` in `MTIOCGET`).
    pub fn set_cleaning_requested(&self, on: bool) {
        self.lock().cleaning_requested = on;
    }

    /// Make the cleaning cartridges loaded from now on used up (they clean
    /// nothing: the cleaning request stays), or good again.
    pub fn set_cleaning_used_up(&self, on: bool) {
        self.lock().cleaning_used_up = on;
    }

    /// Change the early-warning capacity.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.lock().capacity = capacity;
    }

    /// Fault injection: the next `MTFSF n` (n >= 1) stops one filemark
    /// short yet reports success, like a drive that missed a filemark.
    pub fn inject_fsf_short(&self) {
        self.lock().fsf_short = true;
    }

    /// Fault injection: after `records` more records are written, every
    /// write fails with `EIO`, as from a drive with a hardware fault, until
    /// [`VirtualDrive::clear_write_fault`].
    pub fn fail_writes_after(&self, records: u64) {
        self.lock().write_fault = Some(records);
    }

    /// End the write fault of [`VirtualDrive::fail_writes_after`].
    pub fn clear_write_fault(&self) {
        self.lock().write_fault = None;
    }

    /// Take the cartridge out and load the tape `image` (created empty if
    /// missing) instead, as an operator swapping tapes: the head is at the
    /// beginning of the new tape, and `opts` (capacity, write protection,
    /// loaded) describe the new cartridge. Transfer limits stay those of the
    /// mount. A program that still has the drive open keeps its descriptor
    /// (its late release is honoured) but sees the new tape.
    pub fn change_tape(&self, image: &Path, opts: &VstOptions) -> Result<()> {
        let mut tape = self.lock();
        let new = Tape::load(image, opts, self.limits.max_record)?;
        tape.replace(new);
        Ok(())
    }

    /// Report end of data as Linux st does after `MTEOM` or an `MTFSF`
    /// that runs into blank tape: the file number right, the block number
    /// unknown (-1), so no `GMT_EOF` (kernel `st.c`, `st_int_ioctl`: a failed
    /// `MTFSF` sets `drv_block = -1`, and `MTEOM` is an `MTFSF` over
    /// everything that returns there). Off by default: the drive then
    /// reports block 0 (after a final filemark) at end of data.
    pub fn set_linux_eod_position(&self, on: bool) {
        self.lock().eod_blk_unknown = on;
    }

    /// How many reads failed with `ENOMEM` (a buffer shorter than the
    /// record) since the drive was mounted.
    pub fn enomem_reads(&self) -> u64 {
        self.lock().enomem_reads
    }

    /// The tape motion counted since the mount (or the last
    /// [`reset_motion`](Self::reset_motion)), across tape changes.
    pub fn motion(&self) -> Motion {
        self.lock().motion
    }

    /// Start counting tape motion from zero.
    pub fn reset_motion(&self) {
        self.lock().motion = Motion::default();
    }

    /// Whether a program has the drive open.
    pub fn is_open(&self) -> bool {
        self.lock().open.is_some()
    }

    /// How many opens were refused with `EBUSY` (the drive was open).
    #[allow(dead_code)]
    pub fn busy_refusals(&self) -> u64 {
        self.lock().busy_refusals
    }

    /// The head position as st reports it: (file number, block number).
    pub fn position(&self) -> (i32, i32) {
        let tape = self.lock();
        tape.fileno_blkno()
    }

    /// The tape's files, read back from the image (see [`tap_files`]).
    pub fn files(&self) -> Result<Vec<Vec<Vec<u8>>>> {
        tap_files(&self.image_path())
    }

    fn lock(&self) -> MutexGuard<'_, Tape> {
        self.tape.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for VirtualDrive {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if session.umount_and_join().is_err() {
            // Still busy (a descriptor left open): detach it lazily.
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.mountpoint).status();
        }
    }
}

/// An errno from the drive as an error naming what was being done.
fn errno_error(e: Errnum, what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", io::Error::from_raw_os_error(e))
}

static SERIAL: Mutex<()> = Mutex::new(());

/// A process-wide lock for tests that share one test binary.
///
/// A descriptor is shared with every child forked while it is open (Rust
/// spawns by fork/exec or posix_spawn, both of which copy the descriptor
/// table; close-on-exec drops the copy only at exec). Like st, the drive is
/// released only when the last copy goes, so a test that closes the drive
/// and reopens it (or runs `mt`) can get `EBUSY` while another thread of the
/// same test binary is spawning a process. Tests that open the drive in the
/// test process *and* spawn processes should hold this guard for their
/// whole body; it survives a panicking holder.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fail loudly when FUSE cannot work here.
fn require_fuse() -> Result<()> {
    if !Path::new("/dev/fuse").exists() {
        bail!("/dev/fuse is missing: the virtual tape drive needs FUSE (modprobe fuse)");
    }
    Ok(())
}

/// The page size, from the kernel's report on this process's mappings.
pub fn page_size() -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    smaps
        .lines()
        .find_map(|l| l.strip_prefix("KernelPageSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(4096, |kb| kb * 1024)
}

fn read_page_limit() -> Option<usize> {
    std::fs::read_to_string(MAX_PAGES_LIMIT_SYSCTL).ok().and_then(|s| s.trim().parse().ok())
}

/// Work out (and if allowed, make room for) the largest whole record.
fn negotiate_limits(opts: &VstOptions) -> Result<Limits> {
    let page = page_size();
    if opts.max_record == 0 {
        bail!("max_record must be positive");
    }
    let wanted = opts.max_record.min(FUSER_MAX_WRITE - page);
    // A request carrying a whole record must fit one FUSE request for any
    // buffer alignment: max_record + page bytes of pages.
    let wanted_pages = wanted.div_ceil(page) + 1;
    let current = read_page_limit();
    if opts.raise_page_limit && current.is_some_and(|limit| limit < wanted_pages) {
        // Best effort (root only); the bound below follows what is in force.
        let _ = std::fs::write(MAX_PAGES_LIMIT_SYSCTL, wanted_pages.to_string());
    }
    let limit = read_page_limit().unwrap_or(DEFAULT_MAX_PAGES_LIMIT);
    let max_pages = wanted_pages.min(limit);
    let max_record = wanted.min((max_pages - 1) * page);
    Ok(Limits { page_size: page, max_pages_limit: limit, max_pages, max_write: max_pages * page, max_record })
}

/// Where the head is, as numbers cached per tape element.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    /// Byte offset of the element in the image.
    offset: u64,
    /// Filemarks before it.
    fileno: u32,
    /// Records between the previous filemark and it.
    blkno: u32,
    /// Record bytes before it.
    bytes: u64,
}

impl Mark {
    fn after(self, len: u32) -> Mark {
        if len == 0 {
            Mark { offset: self.offset + 4, fileno: self.fileno + 1, blkno: 0, bytes: self.bytes }
        } else {
            Mark {
                offset: self.offset + 8 + u64::from(len) + u64::from(len & 1),
                fileno: self.fileno,
                blkno: self.blkno + 1,
                bytes: self.bytes + u64::from(len),
            }
        }
    }
}

/// One record (`len > 0`) or filemark (`len == 0`) on the tape.
#[derive(Debug, Clone, Copy)]
struct Item {
    len: u32,
    mark: Mark,
}

/// Which device node a descriptor was opened through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    NonRewinding,
    Rewinding,
}

#[derive(Debug, Clone, Copy)]
struct OpenFile {
    fh: u64,
    node: Node,
}

type Errnum = i32;

/// The drive and its tape.
#[derive(Debug)]
struct Tape {
    image: File,
    image_path: PathBuf,
    items: Vec<Item>,
    end: Mark,
    pos: usize,
    /// The block number is unknown (after spacing backward over a filemark).
    blk_unknown: bool,
    /// The last read or space hit end of data (GMT_EOD).
    eod_seen: bool,
    /// A read at end of data already returned 0: the next one fails.
    eod_read: bool,
    /// The last operation was a data write (st's `ST_WRITING`).
    writing: bool,
    /// FUSE lock owner (the writer's file table) of the last data write.
    writer: Option<u64>,
    /// Past early warning: the next write fails with ENOSPC.
    ew_fail_next: bool,
    block_size: u32,
    capacity: Option<u64>,
    write_protected: bool,
    /// Ready: the cartridge is threaded (implies `cartridge`).
    loaded: bool,
    /// A cartridge is in the drive (loaded or ejected).
    cartridge: bool,
    /// The cartridge is being loaded (not ready yet, door closed).
    loading: bool,
    /// The cartridge is a cleaning cartridge: never ready.
    cleaning: bool,
    max_record: usize,
    open: Option<OpenFile>,
    next_fh: u64,
    /// One-shot fault: the next MTFSF stops one filemark short.
    fsf_short: bool,
    /// Records still written before every write fails with `EIO`.
    write_fault: Option<u64>,
    /// Reads refused with ENOMEM so far.
    enomem_reads: u64,
    /// Spacing to end of data leaves the block number unknown (Linux st).
    eod_blk_unknown: bool,
    /// Fault: every data write larger than this lands as two records.
    split_above: Option<usize>,
    /// Tape motion counted since the mount (or the last reset).
    motion: Motion,
    /// The drive asks for cleaning (`GMT_CLN`); a drive-side bit.
    cleaning_requested: bool,
    /// Cleaning cartridges clean nothing (a drive-side test switch).
    cleaning_used_up: bool,
    /// Opens refused with `EBUSY` (drive-side: kept across tape changes).
    busy_refusals: u64,
    /// Recovered errors (drive-side): see [`Recovered`].
    errors: Recovered,
}

impl Tape {
    fn load(path: &Path, opts: &VstOptions, max_record: usize) -> Result<Tape> {
        let image = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening tape image {}", path.display()))?;
        Self::load_file(image, path.to_path_buf(), opts, max_record)
    }

    fn load_file(image: File, path: PathBuf, opts: &VstOptions, max_record: usize) -> Result<Tape> {
        let path = path.as_path();
        let (items, end) = scan_image(&image).with_context(|| format!("reading tape image {}", path.display()))?;
        image.set_len(end.offset).with_context(|| format!("trimming tape image {}", path.display()))?;
        Ok(Tape {
            image,
            image_path: path.to_path_buf(),
            items,
            end,
            pos: 0,
            blk_unknown: false,
            eod_seen: false,
            eod_read: false,
            writing: false,
            writer: None,
            ew_fail_next: true,
            block_size: 0,
            capacity: opts.capacity,
            write_protected: opts.write_protected,
            loaded: opts.loaded,
            loading: false,
            cartridge: true,
            cleaning: false,
            max_record,
            open: None,
            next_fh: 1,
            fsf_short: false,
            write_fault: None,
            enomem_reads: 0,
            eod_blk_unknown: false,
            split_above: None,
            motion: Motion::default(),
            cleaning_requested: false,
            cleaning_used_up: false,
            busy_refusals: 0,
            errors: Recovered::default(),
        })
    }

    /// A drive with no cartridge: a placeholder image nobody can reach
    /// (every access first needs the drive ready).
    fn empty(max_record: usize) -> Result<Tape> {
        let placeholder = tempfile::tempfile().context("creating the empty drive's placeholder image")?;
        let opts = VstOptions { loaded: false, ..VstOptions::default() };
        let mut tape = Tape::load_file(placeholder, PathBuf::new(), &opts, max_record)?;
        tape.cartridge = false;
        Ok(tape)
    }

    /// Take over the drive-side state (open descriptor, counters, modes)
    /// into `new`, the drive's next tape, and make it current.
    fn replace(&mut self, mut new: Tape) {
        new.open = self.open;
        new.next_fh = self.next_fh;
        new.enomem_reads = self.enomem_reads;
        new.eod_blk_unknown = self.eod_blk_unknown;
        new.motion = self.motion;
        new.cleaning_requested = self.cleaning_requested;
        new.cleaning_used_up = self.cleaning_used_up;
        new.busy_refusals = self.busy_refusals;
        new.errors = self.errors;
        *self = new;
    }

    fn state(&self) -> DriveState {
        match (self.cartridge, self.loaded) {
            (false, _) => DriveState::Empty,
            (true, true) => DriveState::Loaded(self.image_path.clone()),
            (true, false) => DriveState::Ejected(self.image_path.clone()),
        }
    }

    /// The changer puts a cartridge in and the drive loads it.
    fn insert(&mut self, image: &Path, capacity: Option<u64>, cleaning: bool) -> Result<(), Errnum> {
        if self.cartridge {
            return Err(libc::EBUSY);
        }
        let opts = VstOptions { capacity, loaded: !cleaning, ..VstOptions::default() };
        let mut new = Tape::load(image, &opts, self.max_record).map_err(|_| libc::EIO)?;
        new.cleaning = cleaning;
        self.replace(new);
        self.cleaning_requested &= !cleaning || self.cleaning_used_up;
        Ok(())
    }

    /// The changer takes the (ejected) cartridge out.
    fn remove(&mut self) -> Result<(), Errnum> {
        if !self.cartridge {
            return Err(libc::ENOMEDIUM);
        }
        if self.loaded || self.open.is_some() {
            return Err(libc::EBUSY);
        }
        let new = Tape::empty(self.max_record).map_err(|_| libc::EIO)?;
        self.replace(new);
        Ok(())
    }

    /// One command written to the `control` file.
    fn control(&mut self, data: &[u8]) -> Result<(), Errnum> {
        let text = std::str::from_utf8(data).map_err(|_| libc::EINVAL)?;
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["unload"] => self.remove(),
            ["load", image, rest @ ..] => {
                let mut capacity = None;
                let mut cleaning = false;
                for word in rest {
                    match (word.strip_prefix("capacity="), *word) {
                        (Some(n), _) => capacity = Some(n.parse().map_err(|_| libc::EINVAL)?),
                        (None, "cleaning") => cleaning = true,
                        _ => return Err(libc::EINVAL),
                    }
                }
                self.insert(Path::new(image), capacity, cleaning)
            }
            ["cleaning-request", on @ ("on" | "off")] => {
                self.cleaning_requested = *on == "on";
                Ok(())
            }
            ["errors-per-mb", rate] => {
                self.errors.per_mb_read = rate.parse().ok().filter(|r: &f64| *r >= 0.0).ok_or(libc::EINVAL)?;
                Ok(())
            }
            _ => Err(libc::EINVAL),
        }
    }

    fn mark_at(&self, pos: usize) -> Mark {
        self.items.get(pos).map_or(self.end, |item| item.mark)
    }

    fn fileno_blkno(&self) -> (i32, i32) {
        if !self.loaded {
            return (-1, -1);
        }
        let mark = self.mark_at(self.pos);
        let blkno = if self.blk_unknown { -1 } else { mark.blkno as i32 };
        (mark.fileno as i32, blkno)
    }

    /// Put the head at `pos`, forgetting what the last operation saw.
    fn move_to(&mut self, pos: usize) {
        self.pos = pos;
        self.blk_unknown = false;
        self.eod_seen = false;
        self.eod_read = false;
        self.ew_fail_next = true;
    }

    fn at_eod(&mut self) {
        let len = self.items.len();
        self.move_to(len);
        self.eod_seen = true;
    }

    /// At end of data after spacing over filemarks (`MTEOM`, or an
    /// `MTFSF` into blank tape).
    fn at_eod_after_spacing(&mut self) {
        self.at_eod();
        self.blk_unknown = self.eod_blk_unknown;
    }

    fn is_filemark(&self, i: usize) -> bool {
        self.items[i].len == 0
    }

    fn ready(&self) -> Result<(), Errnum> {
        if self.loaded { Ok(()) } else { Err(libc::ENOMEDIUM) }
    }

    fn writable(&self) -> Result<(), Errnum> {
        self.ready()?;
        if self.write_protected { Err(libc::EACCES) } else { Ok(()) }
    }

    /// Drop everything from the head on, in memory and in the image.
    fn truncate_at_head(&mut self) -> Result<(), Errnum> {
        self.end = self.mark_at(self.pos);
        self.items.truncate(self.pos);
        self.image.set_len(self.end.offset).map_err(|_| libc::EIO)
    }

    /// Append a record (or a filemark for empty `data`) at end of data.
    fn append(&mut self, data: &[u8]) -> Result<(), Errnum> {
        let len = u32::try_from(data.len()).map_err(|_| libc::EINVAL)?;
        let mut frame = Vec::with_capacity(data.len() + 9);
        frame.extend_from_slice(&len.to_le_bytes());
        if len > 0 {
            frame.extend_from_slice(data);
            if len & 1 == 1 {
                frame.push(0);
            }
            frame.extend_from_slice(&len.to_le_bytes());
        }
        self.image.write_all_at(&frame, self.end.offset).map_err(|_| libc::EIO)?;
        self.items.push(Item { len, mark: self.end });
        self.end = self.end.after(len);
        self.pos = self.items.len();
        self.blk_unknown = false;
        Ok(())
    }

    fn write_record(&mut self, data: &[u8], owner: Option<u64>) -> Result<usize, Errnum> {
        self.writable()?;
        match &mut self.write_fault {
            Some(0) => return Err(libc::EIO),
            Some(left) => *left -= 1,
            None => {}
        }
        if data.len() > self.max_record {
            return Err(libc::EINVAL);
        }
        if self.past_early_warning() {
            if self.ew_fail_next {
                self.ew_fail_next = false;
                return Err(libc::ENOSPC);
            }
            self.ew_fail_next = true;
        }
        // Linux st counts blocks on from an unknown block number as unknown.
        let blk_unknown = self.eod_blk_unknown && self.blk_unknown;
        self.truncate_at_head()?;
        match self.split_above {
            Some(limit) if data.len() > limit => {
                let (first, second) = data.split_at(limit);
                self.append(first)?;
                self.append(second)?;
            }
            _ => self.append(data)?,
        }
        self.motion.bytes_written += data.len() as u64;
        self.blk_unknown = blk_unknown;
        self.writing = true;
        self.writer = owner;
        self.eod_seen = false;
        self.eod_read = false;
        Ok(data.len())
    }

    fn past_early_warning(&self) -> bool {
        self.capacity.is_some_and(|cap| self.mark_at(self.pos).bytes >= cap)
    }

    fn write_filemarks(&mut self, count: i32) -> Result<(), Errnum> {
        self.writable()?;
        if count < 0 {
            return Err(libc::EINVAL);
        }
        self.truncate_at_head()?;
        for _ in 0..count {
            self.append(&[])?;
        }
        self.writing = false;
        Ok(())
    }

    fn read_record(&mut self, size: usize) -> Result<Vec<u8>, Errnum> {
        self.ready()?;
        self.writing = false;
        if self.pos == self.items.len() {
            if self.eod_read {
                return Err(libc::EIO);
            }
            self.eod_read = true;
            self.eod_seen = true;
            return Ok(Vec::new());
        }
        let item = self.items[self.pos];
        let blk_unknown = self.blk_unknown && item.len != 0;
        self.move_to(self.pos + 1);
        self.blk_unknown = blk_unknown;
        if item.len == 0 {
            return Ok(Vec::new());
        }
        if size < item.len as usize {
            self.enomem_reads += 1;
            // The head passed the record without delivering it.
            self.motion.bytes_passed += u64::from(item.len);
            return Err(libc::ENOMEM);
        }
        let mut data = vec![0; item.len as usize];
        self.image.read_exact_at(&mut data, item.mark.offset + 4).map_err(|_| libc::EIO)?;
        self.motion.bytes_read += data.len() as u64;
        self.errors.after_read(data.len());
        Ok(data)
    }

    /// Close of a descriptor by the process owning file table `owner` (None
    /// for the last close): a filemark after a write, as st does. st skips
    /// closes that leave other references (`file_count > 1`), such as a
    /// forked child's exec closing an inherited descriptor; FUSE cannot see
    /// that count, so only the writer's own close (same lock owner as its
    /// writes) or the final release writes the filemark.
    fn flush(&mut self, owner: Option<u64>) -> Result<(), Errnum> {
        let by_writer = owner.is_none() || self.writer.is_none() || self.writer == owner;
        if self.writing && by_writer {
            self.writing = false;
            self.write_filemarks(1)?;
        }
        Ok(())
    }

    /// One `MTIOCTOP`, with the motion it caused counted.
    fn mt_op(&mut self, op: i16, count: i32) -> Result<(), Errnum> {
        let before = self.mark_at(self.pos).bytes;
        let done = self.mt_op_uncounted(op, count);
        if self.loaded && is_positioning(op) {
            self.motion.count(op, before.abs_diff(self.mark_at(self.pos).bytes));
        }
        done
    }

    fn mt_op_uncounted(&mut self, op: i16, count: i32) -> Result<(), Errnum> {
        if !self.loaded && op != MTLOAD && op != MTNOP {
            return Err(libc::ENOMEDIUM);
        }
        let mut count = count;
        if self.writing && matches!(op, MTREW | MTOFFL | MTUNLOAD | MTBSF | MTBSFM) {
            self.write_filemarks(1)?;
            if matches!(op, MTBSF | MTBSFM) {
                count += 1;
            }
        }
        if op != MTNOP && op != MTSETBLK {
            self.writing = false;
        }
        if matches!(op, MTFSF | MTBSF | MTFSR | MTBSR | MTBSFM | MTFSFM) && count < 0 {
            return Err(libc::EINVAL);
        }
        match op {
            MTREW | MTRETEN => self.move_to(0),
            MTOFFL | MTUNLOAD => {
                self.move_to(0);
                self.loaded = false;
            }
            MTLOAD => {
                if !self.cartridge || self.cleaning {
                    return Err(libc::EIO);
                }
                self.loaded = true;
                self.move_to(0);
            }
            MTFSF => self.space_filemarks_forward(count)?,
            MTBSF => self.space_filemarks_backward(count)?,
            MTBSFM => {
                self.space_filemarks_backward(count)?;
                if count > 0 {
                    self.move_to(self.pos + 1);
                }
            }
            MTFSFM => {
                self.space_filemarks_forward(count)?;
                if count > 0 {
                    self.move_to(self.pos - 1);
                    self.blk_unknown = true;
                }
            }
            MTFSR => self.space_records_forward(count)?,
            MTBSR => self.space_records_backward(count)?,
            MTWEOF | MTWEOFI => self.write_filemarks(count)?,
            MTEOM => {
                self.at_eod_after_spacing();
                self.eod_read = true;
            }
            MTERASE => {
                self.writable()?;
                self.truncate_at_head()?;
            }
            MTSETBLK if count == 0 => self.block_size = 0,
            MTSETBLK => return Err(libc::EINVAL),
            MTNOP => {}
            _ => return Err(libc::ENOSYS),
        }
        Ok(())
    }

    fn space_filemarks_forward(&mut self, count: i32) -> Result<(), Errnum> {
        let count = if count > 0 && std::mem::take(&mut self.fsf_short) { count - 1 } else { count };
        for _ in 0..count {
            let next = (self.pos..self.items.len()).find(|&i| self.is_filemark(i));
            match next {
                Some(i) => self.move_to(i + 1),
                None => {
                    self.at_eod_after_spacing();
                    return Err(libc::EIO);
                }
            }
        }
        Ok(())
    }

    fn space_filemarks_backward(&mut self, count: i32) -> Result<(), Errnum> {
        for _ in 0..count {
            let prev = (0..self.pos).rev().find(|&i| self.is_filemark(i));
            match prev {
                Some(i) => self.move_to(i),
                None => {
                    self.move_to(0);
                    return Err(libc::EIO);
                }
            }
        }
        if count > 0 {
            self.blk_unknown = true;
        }
        Ok(())
    }

    fn space_records_forward(&mut self, count: i32) -> Result<(), Errnum> {
        let unknown = self.blk_unknown;
        for _ in 0..count {
            if self.pos == self.items.len() {
                self.at_eod();
                return Err(libc::EIO);
            }
            let filemark = self.is_filemark(self.pos);
            self.move_to(self.pos + 1);
            if filemark {
                return Err(libc::EIO);
            }
            self.blk_unknown = unknown;
        }
        Ok(())
    }

    fn space_records_backward(&mut self, count: i32) -> Result<(), Errnum> {
        let unknown = self.blk_unknown;
        for _ in 0..count {
            if self.pos == 0 {
                return Err(libc::EIO);
            }
            if self.is_filemark(self.pos - 1) {
                self.move_to(self.pos - 1);
                self.blk_unknown = true;
                return Err(libc::EIO);
            }
            self.move_to(self.pos - 1);
            self.blk_unknown = unknown;
        }
        Ok(())
    }

    /// `struct mtget`, laid out as the kernel does for this machine.
    fn mtget(&mut self) -> Vec<u8> {
        let (fileno, blkno) = self.fileno_blkno();
        // st returns its recovered-error count and clears it (`recover_reg`).
        let erreg = std::mem::take(&mut self.errors.pending).min(0xffff) as i64;
        let longs: [i64; 5] = [MT_ISSCSI2, 0, i64::from(self.block_size), self.gstat(), erreg];
        let mut out = Vec::with_capacity(MTGET_SIZE);
        for value in longs {
            out.extend_from_slice(&(value as libc::c_long).to_ne_bytes());
        }
        out.extend_from_slice(&fileno.to_ne_bytes());
        out.extend_from_slice(&blkno.to_ne_bytes());
        out
    }

    fn gstat(&self) -> i64 {
        let mut gstat = GMT_IM_REP_EN;
        if self.cleaning_requested {
            gstat |= GMT_CLN;
        }
        if self.write_protected {
            gstat |= GMT_WR_PROT;
        }
        if self.loading {
            return gstat;
        }
        if !self.loaded {
            return gstat | GMT_DR_OPEN;
        }
        gstat |= GMT_ONLINE;
        if self.pos == 0 {
            gstat |= GMT_BOT;
        } else if self.is_filemark(self.pos - 1) && !self.blk_unknown {
            gstat |= GMT_EOF;
        }
        if self.pos == self.items.len() && self.eod_seen {
            gstat |= GMT_EOD;
        }
        if self.past_early_warning() {
            gstat |= GMT_EOT;
        }
        gstat
    }

    fn ioctl(&mut self, cmd: u32, input: &[u8]) -> Result<Vec<u8>, Errnum> {
        match cmd {
            MTIOCTOP => {
                let bytes: [u8; 8] = input.try_into().map_err(|_| libc::EINVAL)?;
                let op = i16::from_ne_bytes([bytes[0], bytes[1]]);
                let count = i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                self.mt_op(op, count).map(|()| Vec::new())
            }
            MTIOCGET => Ok(self.mtget()),
            MTIOCPOS => {
                self.ready()?;
                Ok((self.pos as libc::c_long).to_ne_bytes().to_vec())
            }
            _ => Err(libc::ENOTTY),
        }
    }

    fn open(&mut self, node: Node, flags: i32) -> Result<u64, Errnum> {
        if self.open.is_some() {
            self.busy_refusals += 1;
            return Err(libc::EBUSY);
        }
        let nonblock = flags & libc::O_NONBLOCK != 0;
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if self.loading && !nonblock {
            return Err(libc::EIO);
        }
        if !self.loaded && !nonblock {
            return Err(libc::ENOMEDIUM);
        }
        if writing && self.write_protected && !nonblock {
            return Err(libc::EROFS);
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        self.open = Some(OpenFile { fh, node });
        self.writing = false;
        self.ew_fail_next = true;
        Ok(fh)
    }

    fn release(&mut self, fh: u64) -> Result<(), Errnum> {
        let Some(open) = self.open.filter(|o| o.fh == fh) else {
            return Ok(());
        };
        let flushed = self.flush(None);
        if open.node == Node::Rewinding && self.loaded {
            let before = self.mark_at(self.pos).bytes;
            self.move_to(0);
            self.motion.count(MTREW, before);
        }
        self.open = None;
        flushed
    }
}

/// Parse a SIMH image into its elements (lengths and positions only).
fn scan_image(image: &File) -> Result<(Vec<Item>, Mark)> {
    let size = image.metadata()?.len();
    let mut reader = BufReader::new(image);
    reader.seek(SeekFrom::Start(0))?;
    let mut items = Vec::new();
    let mut mark = Mark::default();
    while mark.offset < size {
        let len = read_word(&mut reader).context("truncated length word")?;
        if len == 0xFFFF_FFFF {
            break; // SIMH end-of-medium marker: nothing after it counts.
        }
        if len & 0xFF00_0000 != 0 {
            bail!("record class {:#x} at byte {} is not supported", len >> 24, mark.offset);
        }
        if len > 0 {
            let padded = i64::from(len) + i64::from(len & 1);
            reader.seek_relative(padded)?;
            let trailer = read_word(&mut reader).context("truncated record")?;
            if trailer != len {
                bail!("record at byte {} has length {len} but trailer {trailer}", mark.offset);
            }
        }
        items.push(Item { len, mark });
        mark = mark.after(len);
    }
    Ok((items, mark))
}

fn read_word(reader: &mut impl Read) -> io::Result<u32> {
    let mut word = [0u8; 4];
    reader.read_exact(&mut word)?;
    Ok(u32::from_le_bytes(word))
}

/// Read a SIMH `.tap` image: its records and filemarks in order.
pub fn read_tap(path: &Path) -> Result<Vec<TapItem>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (items, _) = scan_image(&file).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.len == 0 {
            out.push(TapItem::Filemark);
        } else {
            let mut data = vec![0; item.len as usize];
            file.read_exact_at(&mut data, item.mark.offset + 4)?;
            out.push(TapItem::Record(data));
        }
    }
    Ok(out)
}

/// Read a SIMH `.tap` image as tape files, each a list of records. Every
/// filemark ends a file; records after the last filemark make a last,
/// unterminated file.
pub fn tap_files(path: &Path) -> Result<Vec<Vec<Vec<u8>>>> {
    let mut files = Vec::new();
    let mut current = Vec::new();
    for item in read_tap(path)? {
        match item {
            TapItem::Record(data) => current.push(data),
            TapItem::Filemark => files.push(std::mem::take(&mut current)),
        }
    }
    if !current.is_empty() {
        files.push(current);
    }
    Ok(files)
}

/// Write a SIMH `.tap` image holding `items`.
pub fn write_tap(path: &Path, items: &[TapItem]) -> Result<()> {
    let mut out = Vec::new();
    for item in items {
        match item {
            TapItem::Filemark => out.extend_from_slice(&0u32.to_le_bytes()),
            TapItem::Record(data) => {
                let len = u32::try_from(data.len()).context("record too large")?;
                if len == 0 {
                    bail!("a record cannot be empty (that is a filemark)");
                }
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(data);
                if len & 1 == 1 {
                    out.push(0);
                }
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Write a SIMH `.tap` image holding `files`, each followed by a filemark.
pub fn write_tap_files(path: &Path, files: &[Vec<Vec<u8>>]) -> Result<()> {
    let mut items = Vec::new();
    for file in files {
        items.extend(file.iter().cloned().map(TapItem::Record));
        items.push(TapItem::Filemark);
    }
    write_tap(path, &items)
}

/// The FUSE side: a root directory with the two device nodes.
struct VstFs {
    tape: Arc<Mutex<Tape>>,
    max_write: u32,
    /// The drive's speed in bytes per second (`None`: instant).
    rate: Option<u64>,
    /// st's statistics, when the mount keeps them.
    stats: Option<Arc<StStatsFiles>>,
}

impl VstFs {
    fn lock(&self) -> MutexGuard<'_, Tape> {
        self.tape.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send `reply` once the drive has spent the time `len` bytes take at
    /// its rate: at once for an instant drive or no data, otherwise from a
    /// thread of its own, so the session goes on serving other requests.
    fn after_transfer(&self, len: usize, reply: impl FnOnce() + Send + 'static) {
        match transfer_time(self.rate, len) {
            None => reply(),
            Some(time) => {
                std::thread::spawn(move || {
                    std::thread::sleep(time);
                    reply();
                });
            }
        }
    }

    fn attr(ino: INodeNo) -> FileAttr {
        let dir = ino == ROOT_INO;
        FileAttr {
            ino,
            size: 0,
            blocks: 0,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: if dir { FileType::Directory } else { FileType::RegularFile },
            perm: if dir {
                0o755
            } else if ino == CONTROL_INO {
                0o600
            } else {
                0o666
            },
            nlink: if dir { 2 } else { 1 },
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            rdev: 0,
            blksize: 512,
            flags: 0,
        }
    }

    fn node(ino: INodeNo) -> Option<Node> {
        match ino {
            NST_INO => Some(Node::NonRewinding),
            ST_INO => Some(Node::Rewinding),
            _ => None,
        }
    }
}

fn errno(e: Errnum) -> Errno {
    Errno::from_i32(e)
}

/// How long moving `len` bytes takes at `rate` bytes per second (`None`
/// for an instant drive, a zero rate, or no data).
fn transfer_time(rate: Option<u64>, len: usize) -> Option<Duration> {
    let rate = rate.filter(|&r| r > 0 && len > 0)?;
    Some(Duration::from_secs_f64(len as f64 / rate as f64))
}

impl Filesystem for VstFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        config
            .set_max_write(self.max_write)
            .map_err(|max| io::Error::other(format!("max_write above fuser's {max}")))?;
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let ino = match name.to_str() {
            Some(DEVICE_NAME) => NST_INO,
            Some(REWINDING_NAME) => ST_INO,
            Some(CONTROL_NAME) => CONTROL_INO,
            _ => return reply.error(Errno::ENOENT),
        };
        if parent != ROOT_INO {
            return reply.error(Errno::ENOENT);
        }
        reply.entry(&TTL, &Self::attr(ino), fuser::Generation(0));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == ROOT_INO || ino == CONTROL_INO || Self::node(ino).is_some() {
            reply.attr(&TTL, &Self::attr(ino));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // O_TRUNC and ftruncate() are no-ops on a tape device.
        self.getattr(_req, ino, None, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if ino == CONTROL_INO {
            // The changer's side: no tape state, nothing cached.
            return reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
        }
        let Some(node) = Self::node(ino) else {
            return reply.error(Errno::EISDIR);
        };
        match self.lock().open(node, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NONSEEKABLE),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if ino == CONTROL_INO {
            let line = format!("{}\n", self.lock().state().line()).into_bytes();
            let start = (offset as usize).min(line.len());
            let end = (start + size as usize).min(line.len());
            return reply.data(&line[start..end]);
        }
        let started = Instant::now();
        let done = self.lock().read_record(size as usize);
        match done {
            Ok(data) => {
                let stats = self.stats.clone();
                self.after_transfer(data.len(), move || {
                    if let Some(s) = stats {
                        s.count(Transfer::Read, data.len(), started.elapsed());
                    }
                    reply.data(&data)
                })
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if ino == CONTROL_INO {
            return match self.lock().control(data) {
                Ok(()) => reply.written(data.len() as u32),
                Err(e) => reply.error(errno(e)),
            };
        }
        let started = Instant::now();
        let done = self.lock().write_record(data, lock_owner.map(|o| o.0));
        match done {
            Ok(n) => {
                let stats = self.stats.clone();
                self.after_transfer(n, move || {
                    if let Some(s) = stats {
                        s.count(Transfer::Write, n, started.elapsed());
                    }
                    reply.written(n as u32)
                })
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, lock_owner: LockOwner, reply: ReplyEmpty) {
        if ino == CONTROL_INO {
            return reply.ok();
        }
        match self.lock().flush(Some(lock_owner.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if ino == CONTROL_INO {
            return reply.ok();
        }
        match self.lock().release(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _d: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        if ino != ROOT_INO {
            return reply.error(Errno::ENOTDIR);
        }
        let entries = [
            (ROOT_INO, FileType::Directory, "."),
            (ROOT_INO, FileType::Directory, ".."),
            (NST_INO, FileType::RegularFile, DEVICE_NAME),
            (ST_INO, FileType::RegularFile, REWINDING_NAME),
            (CONTROL_INO, FileType::RegularFile, CONTROL_NAME),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(*ino, (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn ioctl(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        if Self::node(ino).is_none() {
            return reply.error(Errno::ENOTTY);
        }
        if let (Some(s), MTIOCTOP) = (&self.stats, cmd) {
            s.count(Transfer::Other, 0, Duration::ZERO);
        }
        match self.lock().ioctl(cmd, in_data) {
            Ok(out) => reply.ioctl(0, &out),
            Err(e) => reply.error(errno(e)),
        }
    }
}

/// The `(file, block)` position in `mt status` output ("File number=F, block number=B").
pub fn mt_position(status: &str) -> Option<(i64, i64)> {
    let line = status.lines().find(|l| l.starts_with("File number="))?;
    let mut parts = line.split(',');
    let file = parts.next()?.trim().strip_prefix("File number=")?.parse().ok()?;
    let block = parts.next()?.trim().strip_prefix("block number=")?.parse().ok()?;
    Some((file, block))
}

impl VirtualDrive {
    /// Fault injection: from now on every data write larger than `limit`
    /// bytes is accepted whole but lands on tape as two records (its first
    /// `limit` bytes, then the rest), as a transport that splits a large
    /// `write()` would leave it; `None` ends the fault.
    pub fn split_writes_above(&self, limit: Option<usize>) {
        self.lock().split_above = limit;
    }
}
/// Tape motion as the virtual drive counts it: positioning operations, the
/// rewinds among them, the record bytes the head passed over while
/// positioning (spacing, rewinding, or a read that skipped a record too large
/// for the buffer), and the bytes read and written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Motion {
    /// `MTFSF`, `MTBSF`, `MTFSR`, `MTBSR`, `MTFSFM`, `MTBSFM`, `MTEOM`,
    /// `MTREW`, `MTRETEN`, `MTOFFL`, `MTUNLOAD`, and rewinding closes.
    pub positioning_ops: u64,
    /// Rewinds (`MTREW`, `MTRETEN`, `MTOFFL`, `MTUNLOAD`, rewinding closes).
    pub rewinds: u64,
    /// Record bytes the head passed over without reading or writing them.
    pub bytes_passed: u64,
    /// Record bytes delivered by reads.
    pub bytes_read: u64,
    /// Record bytes written.
    pub bytes_written: u64,
}

impl Motion {
    fn count(&mut self, op: i16, passed: u64) {
        self.positioning_ops += 1;
        if matches!(op, MTREW | MTRETEN | MTOFFL | MTUNLOAD) {
            self.rewinds += 1;
        }
        self.bytes_passed += passed;
    }

    /// The motion between `earlier` and this later reading.
    pub fn since(&self, earlier: &Motion) -> Motion {
        Motion {
            positioning_ops: self.positioning_ops - earlier.positioning_ops,
            rewinds: self.rewinds - earlier.rewinds,
            bytes_passed: self.bytes_passed - earlier.bytes_passed,
            bytes_read: self.bytes_read - earlier.bytes_read,
            bytes_written: self.bytes_written - earlier.bytes_written,
        }
    }
}

/// Whether an mt operation moves the tape to position it.
fn is_positioning(op: i16) -> bool {
    matches!(op, MTFSF | MTBSF | MTFSR | MTBSR | MTBSFM | MTFSFM | MTEOM | MTREW | MTRETEN | MTOFFL | MTUNLOAD)
}

// ---- error counters and st statistics ----

/// The drive's recovered (soft) errors: those not yet returned by an
/// `MTIOCGET` (st returns them in `mt_erreg` and clears its count), and an
/// optional rate at which reads make new ones.
#[derive(Debug, Clone, Copy, Default)]
struct Recovered {
    /// Errors since the last `MTIOCGET`.
    pending: u64,
    /// New errors per MB (10^6 bytes) read.
    per_mb_read: f64,
    /// The fraction of an error carried to the next read.
    carry: f64,
}

impl Recovered {
    fn after_read(&mut self, len: usize) {
        self.carry += len as f64 / 1e6 * self.per_mb_read;
        // A rate that makes whole errors per record gives them exactly.
        let whole = (self.carry + 1e-9).floor();
        self.carry = (self.carry - whole).max(0.0);
        self.pending += whole as u64;
    }
}

impl VirtualDrive {
    /// The drive recovered `n` more errors (returned by the next `MTIOCGET`).
    pub fn add_recovered_errors(&self, n: u64) {
        self.lock().errors.pending += n;
    }

    /// From now on, reads recover `per_mb` errors per MB (10^6 bytes) read
    /// (0 stops it); they accumulate until the next `MTIOCGET`, as in st.
    pub fn set_recovered_errors_per_mb_read(&self, per_mb: f64) {
        let mut tape = self.lock();
        tape.errors.per_mb_read = per_mb;
        tape.errors.carry = 0.0;
    }
}

/// What a FUSE request did, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Read,
    Write,
    /// An `MTIOCTOP` (not timed).
    Other,
}

/// st's statistics of the virtual drive (the kernel's `Documentation/scsi/
/// st.rst`), kept as the files of `ROOT/class/scsi_tape/stN/stats/` and
/// rewritten (each through a rename) after every data read or write, before
/// the reply: the time of a transfer is the time really spent in its FUSE
/// handler, from the request to the reply, so a [`VstOptions::write_rate`]
/// counts in it; `io_ns` is `read_ns + write_ns` (operations are not timed).
/// A read that returns nothing (a filemark) counts as a read with a residual.
#[derive(Debug)]
pub struct StStatsFiles {
    dir: PathBuf,
    counters: Mutex<StCounters>,
}

/// The counters, named as the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StCounters {
    /// `read_byte_cnt`.
    pub read_byte_cnt: u64,
    /// `write_byte_cnt`.
    pub write_byte_cnt: u64,
    /// `read_cnt`.
    pub read_cnt: u64,
    /// `write_cnt`.
    pub write_cnt: u64,
    /// `other_cnt`.
    pub other_cnt: u64,
    /// `resid_cnt`.
    pub resid_cnt: u64,
    /// `read_ns`.
    pub read_ns: u64,
    /// `write_ns`.
    pub write_ns: u64,
    /// `io_ns`.
    pub io_ns: u64,
    /// `in_flight` (always 0 between requests).
    pub in_flight: u64,
}

impl StCounters {
    fn files(&self) -> [(&'static str, u64); 10] {
        [
            ("read_byte_cnt", self.read_byte_cnt),
            ("write_byte_cnt", self.write_byte_cnt),
            ("read_cnt", self.read_cnt),
            ("write_cnt", self.write_cnt),
            ("other_cnt", self.other_cnt),
            ("resid_cnt", self.resid_cnt),
            ("read_ns", self.read_ns),
            ("write_ns", self.write_ns),
            ("io_ns", self.io_ns),
            ("in_flight", self.in_flight),
        ]
    }
}

impl StStatsFiles {
    /// The stats directory of st`n` under `root`, with every counter at 0.
    pub fn create(root: &Path, n: u32) -> Result<StStatsFiles> {
        let dir = Self::dir_under(root, n);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let stats = StStatsFiles { dir, counters: Mutex::new(StCounters::default()) };
        stats.write(&StCounters::default()).context("writing the st statistics")?;
        Ok(stats)
    }

    /// `ROOT/class/scsi_tape/stN/stats`.
    pub fn dir_under(root: &Path, n: u32) -> PathBuf {
        root.join(format!("class/scsi_tape/st{n}/stats"))
    }

    fn count(&self, what: Transfer, len: usize, took: Duration) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let (len, ns) = (len as u64, took.as_nanos() as u64);
        match what {
            Transfer::Read => {
                c.read_cnt += 1;
                c.read_byte_cnt += len;
                c.read_ns += ns;
                c.resid_cnt += u64::from(len == 0);
            }
            Transfer::Write => {
                c.write_cnt += 1;
                c.write_byte_cnt += len;
                c.write_ns += ns;
            }
            Transfer::Other => c.other_cnt += 1,
        }
        c.io_ns = c.read_ns + c.write_ns;
        // Best effort: a test reads the files and fails on a wrong figure.
        let _ = self.write(&c);
    }

    fn write(&self, c: &StCounters) -> io::Result<()> {
        for (name, value) in c.files() {
            let tmp = self.dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, format!("{value}\n"))?;
            std::fs::rename(&tmp, self.dir.join(name))?;
        }
        Ok(())
    }
}

/// Read the statistics files of st`n` under sysfs root `root` (as tapeop does).
pub fn read_st_counters(root: &Path, n: u32) -> Result<StCounters> {
    let dir = StStatsFiles::dir_under(root, n);
    let get = |name: &str| -> Result<u64> {
        let text = std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {name}"))?;
        text.trim().parse().with_context(|| format!("{name}: {text:?}"))
    };
    Ok(StCounters {
        read_byte_cnt: get("read_byte_cnt")?,
        write_byte_cnt: get("write_byte_cnt")?,
        read_cnt: get("read_cnt")?,
        write_cnt: get("write_cnt")?,
        other_cnt: get("other_cnt")?,
        resid_cnt: get("resid_cnt")?,
        read_ns: get("read_ns")?,
        write_ns: get("write_ns")?,
        io_ns: get("io_ns")?,
        in_flight: get("in_flight")?,
    })
}
