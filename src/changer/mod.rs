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
