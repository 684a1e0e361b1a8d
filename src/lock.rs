//! One writer per drive and per catalogue. Jobs that use the drive or change
//! the catalogue at length (import, archive, confirm, restore, scan_tape)
//! take exclusive `flock` locks on a lock file beside the catalogue and on
//! one for the drive, and write who they are (pid, command, since when)
//! into it, so a second run says who holds the lock and exits at once.
//! Commands that change assignments or the online tape (open_tape,
//! close_tape, activate_tape, assign) take the catalogue lock too. Reports
//! take no lock: the catalogue's WAL mode lets them read meanwhile.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::drive::DriveSpec;
use crate::exit_codes::{Exit, ExitCode};

/// A held lock; released when dropped (or when the process dies).
pub struct Lock {
    _file: Flock<File>,
    /// The lock file.
    pub path: PathBuf,
}

/// The lock file of a catalogue: `DATABASE.lock`.
pub fn catalogue_lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

pub use crate::drive::drive_lock_path;

/// Take the lock at `path` for `what` (e.g. "the catalogue tape.sqlite"),
/// or fail naming the holder.
pub fn acquire(path: &Path, what: &str, command: &str) -> Result<Lock> {
    acquire_as(path, what, command, FlockArg::LockExclusiveNonblock)
}

/// [`acquire`], exclusive or shared as `how` says.
fn acquire_as(path: &Path, what: &str, command: &str, how: FlockArg) -> Result<Lock> {
    match try_acquire(path, what, command, how)? {
        Ok(lock) => Ok(lock),
        Err(holder) => Err(Exit::error(
            ExitCode::Failure,
            format!("{what} is in use by {holder}; wait for it to finish (lock file {})", path.display()),
        )),
    }
}

/// Take the lock at `path` the way `how` says, without waiting: the held
/// lock, or who holds it.
fn try_acquire(path: &Path, what: &str, command: &str, how: FlockArg) -> Result<Result<Lock, String>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot create the lock file {} for {what}", path.display()))?;
    let flock = match Flock::lock(file, how) {
        Ok(l) => l,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Ok(Err(if holder.is_empty() { "another tapeop".to_string() } else { holder.to_string() }));
        }
        Err((_, e)) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
    };
    held_by_me(flock, path, command).map(Ok)
}

/// Write who holds the lock (pid, command, since when) into its file.
fn held_by_me(mut flock: Flock<File>, path: &Path, command: &str) -> Result<Lock> {
    let me = format!("pid {} ({command}) since {}\n", std::process::id(), crate::catalog::now_text());
    flock.set_len(0)?;
    flock.rewind()?;
    flock.write_all(me.as_bytes())?;
    flock.flush()?;
    Ok(Lock { _file: flock, path: path.to_path_buf() })
}

/// Take the lock at `path` for `what`, waiting while someone else holds it:
/// prints once "Waiting for WHAT (held by HOLDER)" to stderr, and polls so
/// that a stop request (Ctrl-C, exit_file) ends the wait with exit 41.
pub fn wait_for(path: &Path, what: &str, command: &str) -> Result<Lock> {
    wait_for_telling(path, what, command, &mut |line| eprintln!("{line}"))
}

/// [`wait_for`], handing the one "Waiting for ..." line to `tell`.
pub fn wait_for_telling(path: &Path, what: &str, command: &str, tell: &mut dyn FnMut(&str)) -> Result<Lock> {
    let mut said = false;
    loop {
        match try_acquire(path, what, command, FlockArg::LockExclusiveNonblock)? {
            Ok(lock) => return Ok(lock),
            Err(holder) if !said => {
                tell(&format!("Waiting for {what} (held by {holder})"));
                said = true;
            }
            Err(_) => {}
        }
        crate::stop::check()?;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Locks for a job that uses the drive and the catalogue. A catalogue or
/// emulator directory that does not exist is not locked (opening it fails
/// with its own message right after).
pub fn for_drive_job(config: &crate::config::Config, command: &str) -> Result<Vec<Lock>> {
    let mut locks = Vec::new();
    if config.database_file.exists() {
        locks.push(for_catalogue_job(config, command)?);
    }
    let what = match &config.drive {
        DriveSpec::Emulator { dir, .. } if !dir.is_dir() => return Ok(locks),
        DriveSpec::Emulator { dir, .. } => format!("the emulated tape {}", dir.display()),
        DriveSpec::Device(dev) => format!("the drive {}", dev.display()),
    };
    locks.push(acquire(&drive_lock_path(&config.drive), &what, command)?);
    Ok(locks)
}

/// The lock for a job that changes the catalogue but not the drive.
pub fn for_catalogue_job(config: &crate::config::Config, command: &str) -> Result<Lock> {
    let db = catalogue_lock_path(&config.database_file);
    acquire(&db, &format!("the catalogue {}", config.database_file.display()), command)
}

/// Locks for a job on one drive of a tape library: the drive's, and the
/// catalogue's shared with the library jobs on the other drives (a command
/// that changes assignments, or a job without a library, still finds the
/// catalogue in use). The tapes a library job uses are claimed one by one
/// ([`claim_tape`]).
pub fn for_library_job(config: &crate::config::Config, command: &str) -> Result<Vec<Lock>> {
    let mut locks = Vec::new();
    if config.database_file.exists() {
        let path = catalogue_lock_path(&config.database_file);
        let what = format!("the catalogue {}", config.database_file.display());
        locks.push(acquire_as(&path, &what, command, FlockArg::LockSharedNonblock)?);
    }
    let DriveSpec::Device(dev) = &config.drive else { return Ok(locks) };
    locks.push(acquire(&drive_lock_path(&config.drive), &format!("the drive {}", dev.display()), command)?);
    Ok(locks)
}

/// The lock file of one tape of a catalogue: `DATABASE.tape-NAME.lock`.
pub fn tape_lock_path(db: &Path, tape: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(format!(".tape-{}.lock", crate::catalog::tape_name_for_path(tape)));
    PathBuf::from(name)
}

/// Claim tape `tape` of the catalogue `db` for this run (a library job on
/// one drive), or None when another run holds it. Held until dropped or
/// the process dies, so a killed run never leaves a tape claimed.
pub fn claim_tape(db: &Path, tape: &str, command: &str) -> Result<Option<Lock>> {
    let what = format!("tape \"{tape}\"");
    Ok(try_acquire(&tape_lock_path(db, tape), &what, command, FlockArg::LockExclusiveNonblock)?.ok())
}

/// Who holds the claim on `tape` right now, if anyone.
pub fn tape_holder(db: &Path, tape: &str) -> Option<String> {
    holder(&tape_lock_path(db, tape))
}

/// Who holds the lock at `path` right now ("pid N (archive) since ..."),
/// or None when nobody does (or there is no lock file). Reports use it to
/// tell a running job from one that was killed. It reads /proc/locks, so
/// it never takes the lock itself (a job starting meanwhile is not turned
/// away); where /proc/locks cannot be read it probes with a shared lock,
/// dropped at once.
pub fn holder(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let held = match std::fs::read_to_string("/proc/locks") {
        Ok(table) => table.lines().any(|l| is_flock_on(l, meta.dev(), meta.ino())),
        Err(_) => probe_held(path)?,
    };
    if !held {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    Some(if text.is_empty() { "another tapeop".to_string() } else { text.to_string() })
}

/// Whether a /proc/locks line is a flock (exclusive, or shared by library jobs) on device `dev`, inode `ino`.
fn is_flock_on(line: &str, dev: u64, ino: u64) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < 6 || words[1] != "FLOCK" || !matches!(words[3], "WRITE" | "READ") {
        return false;
    }
    let mut id = words[5].split(':');
    let (Some(maj), Some(min), Some(i)) = (id.next(), id.next(), id.next()) else { return false };
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    u64::from_str_radix(maj, 16) == Ok(major) && u64::from_str_radix(min, 16) == Ok(minor) && i.parse() == Ok(ino)
}

/// Whether someone holds the lock, by trying a shared lock (None: cannot tell).
fn probe_held(path: &Path) -> Option<bool> {
    let file = File::open(path).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_probe) => Some(false),
        Err((_, Errno::EWOULDBLOCK)) => Some(true),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = acquire(&path, "the thing", "archive").unwrap();
        let err = acquire(&path, "the thing", "confirm").err().unwrap();
        let msg = format!("{err:#}");
        assert!(msg.contains("the thing is in use by pid") && msg.contains("(archive) since"), "{msg}");
        assert!(holder(&path).is_some_and(|h| h.contains("(archive) since")));
        assert_eq!(probe_held(&path), Some(true));
        drop(first);
        assert_eq!(holder(&path), None);
        assert_eq!(probe_held(&path), Some(false));
        assert!(acquire(&path, "the thing", "confirm").is_ok(), "released on drop");
    }

    #[test]
    fn a_waiter_says_once_who_holds_the_lock_and_gets_it_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("robot.lock");
        let first = acquire(&path, "the changer /dev/sg5", "archive").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut told = Vec::new();
                let lock = wait_for_telling(&path, "the changer /dev/sg5", "load", &mut |line| {
                    told.push(line.to_string());
                    tx.send(line.to_string()).unwrap();
                });
                (lock.map(|_| ()), told)
            })
        };
        let line = rx.recv().unwrap();
        assert!(line.starts_with("Waiting for the changer /dev/sg5 (held by pid "), "{line}");
        assert!(line.ends_with(")") && line.contains(" (archive) since "), "{line}");
        drop(first);
        let (got, told) = waiter.join().unwrap();
        got.unwrap();
        assert_eq!(told.len(), 1, "said once: {told:?}");
        assert!(std::fs::read_to_string(&path).unwrap().contains("(load) since"), "the waiter now holds it");
    }
}
