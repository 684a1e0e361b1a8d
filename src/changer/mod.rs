//! The tape library's robot, driven through `mtx -f DEVICE`: its status
//! (parsed in `status`), the moves (load, unload, transfer) and the robot
//! lock that lets one move at a time happen across processes. Hardware
//! only: this layer knows nothing of the catalogue nor of the command line.
//! Element numbers are mtx's: drives from 0, slots from 1.

mod mtx;
pub mod status;

use std::path::{Path, PathBuf};

use anyhow::Result;

pub use status::{DriveElement, LibraryStatus, Location, SlotElement, is_cleaning};

use crate::config::ChangerConfig;
use crate::lock::{self, Lock};

/// A tape library's changer, reached with the mtx program.
#[derive(Debug, Clone)]
pub struct Changer {
    device: PathBuf,
    command: PathBuf,
}

impl Changer {
    /// The changer that `[changer]` describes.
    pub fn new(cfg: &ChangerConfig) -> Changer {
        Changer { device: cfg.device.clone(), command: cfg.command.clone() }
    }

    /// The changer device handed to `mtx -f`.
    pub fn device(&self) -> &Path {
        &self.device
    }

    /// `mtx -f DEVICE status`, parsed.
    pub fn status(&self) -> Result<LibraryStatus> {
        let text = mtx::run(self, &["status"], "report its status")?;
        LibraryStatus::parse(&text).map_err(|e| {
            e.context(format!("the changer {} answered mtx status with text tapeop cannot read", self.device.display()))
        })
    }

    /// Take the robot: one move at a time across processes. Waits (polling,
    /// so that Ctrl-C ends the wait) and prints once "Waiting for the changer
    /// DEVICE (held by ...)" to stderr while someone else holds it.
    pub fn robot(&self, command: &str) -> Result<Robot<'_>> {
        let what = format!("the changer {}", self.device.display());
        let lock = lock::wait_for(&robot_lock_path(&self.device), &what, command)?;
        Ok(Robot { changer: self, _lock: lock })
    }
}

/// The robot lock file of a changer device: in /run/lock (or the temp dir),
/// named after the canonical device path, as a drive's lock is.
pub fn robot_lock_path(device: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let name: String = abs.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let dir = Path::new("/run/lock");
    let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
    dir.join(format!("tapeop-changer{name}.lock"))
}

/// The held robot: moves happen only through it; dropping it lets the next
/// process move.
pub struct Robot<'a> {
    changer: &'a Changer,
    _lock: Lock,
}

impl Robot<'_> {
    /// `mtx status`, parsed, while holding the robot.
    pub fn status(&self) -> Result<LibraryStatus> {
        self.changer.status()
    }

    /// `mtx load SLOT DRIVE`: the cartridge in `slot` into drive `drive`.
    pub fn load(&self, slot: u32, drive: u32) -> Result<()> {
        let (s, d) = (slot.to_string(), drive.to_string());
        mtx::run(self.changer, &["load", &s, &d], &format!("load slot {slot} into drive {drive}")).map(drop)
    }

    /// `mtx unload SLOT DRIVE`: the cartridge in drive `drive` into `slot`.
    pub fn unload(&self, slot: u32, drive: u32) -> Result<()> {
        let (s, d) = (slot.to_string(), drive.to_string());
        mtx::run(self.changer, &["unload", &s, &d], &format!("unload drive {drive} into slot {slot}")).map(drop)
    }

    /// `mtx transfer FROM TO`: the cartridge in slot `from` into slot `to`.
    pub fn transfer(&self, from: u32, to: u32) -> Result<()> {
        let (f, t) = (from.to_string(), to.to_string());
        mtx::run(self.changer, &["transfer", &f, &t], &format!("move slot {from} to slot {to}")).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A fake mtx in a temp dir: logs its argv; prints `status.txt` for
    /// status; with `fail` present, prints it on stderr and exits 1.
    fn fake(dir: &Path) -> Changer {
        let root = dir.display();
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{root}/log'\n\
             if [ -f '{root}/fail' ]; then cat '{root}/fail' >&2; exit 1; fi\n\
             [ \"$3\" = status ] && cat '{root}/status.txt'\nexit 0\n"
        );
        fs::write(dir.join("mtx"), script).unwrap();
        fs::set_permissions(dir.join("mtx"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("status.txt"), include_str!("samples/mhvtl_empty_drives_ie.txt")).unwrap();
        fs::write(dir.join("sg5"), "").unwrap();
        Changer::new(&ChangerConfig { device: dir.join("sg5"), command: dir.join("mtx") })
    }

    #[test]
    fn moves_run_mtx_with_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let changer = fake(dir.path());
        let dev = dir.path().join("sg5").display().to_string();
        let robot = changer.robot("test").unwrap();
        assert_eq!(robot.status().unwrap().slots.len(), 9);
        robot.load(3, 1).unwrap();
        robot.unload(3, 1).unwrap();
        robot.transfer(2, 6).unwrap();
        let log = fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(log, format!("-f {dev} status\n-f {dev} load 3 1\n-f {dev} unload 3 1\n-f {dev} transfer 2 6\n"));
        assert!(lock::holder(&robot_lock_path(&changer.device)).is_some_and(|h| h.contains("(test) since")));
        drop(robot);
        assert_eq!(lock::holder(&robot_lock_path(&changer.device)), None, "released on drop");
    }

    #[test]
    fn a_failed_move_quotes_mtx_and_names_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let changer = fake(dir.path());
        fs::write(dir.path().join("fail"), "source Element Address 3 is Empty\n").unwrap();
        let robot = changer.robot("test").unwrap();
        let (dev, mtx) = (dir.path().join("sg5"), dir.path().join("mtx"));
        let err = robot.load(3, 1).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "the changer {} could not load slot 3 into drive 1: mtx said: \"source Element Address 3 is Empty\" \
                 ({} -f {} load 3 1)",
                dev.display(),
                mtx.display(),
                dev.display()
            )
        );
        let multi = "mtx: Request Sense: Sense Key=Not Ready\nMOVE MEDIUM from Element Address 1000 to 500 Failed\n";
        fs::write(dir.path().join("fail"), multi).unwrap();
        let err = format!("{:#}", robot.unload(2, 0).unwrap_err());
        assert!(
            err.contains(
                "could not unload drive 0 into slot 2: mtx said: \"sense key Not Ready; \
                 MOVE MEDIUM from Element Address 1000 to 500 Failed\""
            ),
            "{err}"
        );
        let err = format!("{:#}", robot.transfer(1, 2).unwrap_err());
        assert!(err.contains("could not move slot 1 to slot 2: mtx said: "), "{err}");
        let err = format!("{:#}", changer.status().unwrap_err());
        assert!(err.contains("could not report its status: mtx said: "), "{err}");
    }

    #[test]
    fn a_missing_mtx_says_how_to_fix_it() {
        let changer = Changer::new(&ChangerConfig {
            device: PathBuf::from("/dev/sg5"),
            command: PathBuf::from("/nonexistent/mtx"),
        });
        let err = changer.status().unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "cannot run the changer command /nonexistent/mtx: not found; install mtx or set command = under [changer]"
        );
    }
}
