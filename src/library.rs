//! Moving cartridges in a tape library: which cartridge a configured drive
//! holds, and putting a given cartridge (by barcode) into it or taking the
//! one it holds back to a slot. This module owns the order of a move as a
//! tape operator does it: the drive rewinds and ejects (`MTOFFL`) before the
//! robot pulls a cartridge, the robot is held (one move at a time across
//! processes) from the `mtx status` that decides the move to the move
//! itself, a cartridge a killed run left ejected in the drive is loaded
//! again, and the drive's last proof is forgotten whenever the cartridge
//! changes; a drive is cleaned with a cleaning cartridge from a slot
//! ([`LibraryDrive::clean`]). It knows barcodes and elements, not tapes:
//! which tape a barcode is belongs to the catalogue, and the choice of tape
//! to the commands; it only claims a catalogue tape
//! ([`LibraryDrive::mount_tape`]) and finds its cartridge by the tape's
//! serial, which is its barcode.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::catalog::Tape;
use crate::changer::{Changer, LibraryStatus, Location, Robot, is_cleaning};
use crate::config::{Config, DriveEntry};
use crate::drive::{self, DriveSpec};
use crate::exit_codes::{Exit, ExitCode};
use crate::lock::{self, Lock};

/// The selected drive of a library: its changer, element and device.
pub struct LibraryDrive {
    /// The library's changer.
    pub changer: Changer,
    /// The drive's name in tape.conf.
    pub name: String,
    /// Its Data Transfer Element number.
    pub index: u32,
    /// Its device.
    pub spec: DriveSpec,
    /// The library's other drives in tape.conf (a cartridge wanted here
    /// may sit idle in one of them).
    others: Vec<DriveEntry>,
}

impl LibraryDrive {
    /// The selected drive as a library drive, or None when tape.conf has no
    /// changer. A changer without a `changer_index` for this drive is an
    /// error naming the fix.
    pub fn from_config(config: &Config) -> Result<Option<LibraryDrive>> {
        let Some(changer) = &config.changer else { return Ok(None) };
        let Some(index) = config.changer_index else {
            bail!(
                "tape.conf has a [changer] but drive {} has no changer_index: add changer_index = N under \
                 [drive.{}] (N is its Data Transfer Element number in mtx status)",
                config.drive_name,
                config.drive_name
            );
        };
        Ok(Some(LibraryDrive {
            changer: Changer::new(changer),
            name: config.drive_name.clone(),
            index,
            spec: config.drive.clone(),
            others: config.drives.iter().filter(|d| d.changer_index != Some(index)).cloned().collect(),
        }))
    }

    /// "drive A (element 0)", for messages.
    pub fn describe(&self) -> String {
        format!("drive {} (element {})", self.name, self.index)
    }

    /// The barcode of the cartridge in this drive, as `mtx status` says:
    /// Some("") for a cartridge without one, None for an empty drive.
    pub fn holds(&self, status: &LibraryStatus) -> Result<Option<String>> {
        let element = status.drive(self.index).with_context(|| {
            format!(
                "the changer reports no Data Transfer Element {} for {}: check changer_index in tape.conf against mtx status",
                self.index,
                self.describe()
            )
        })?;
        Ok(element.full.then(|| element.barcode.clone().unwrap_or_default()))
    }

    /// Put cartridge `barcode` into this drive, ready to read or write. A
    /// cartridge already there stays (loaded again if a killed run left it
    /// ejected); any other is ejected and returned to a slot first. A
    /// barcode the library does not hold, a cleaning cartridge or one in
    /// another drive is refused (exit 1) before anything moves.
    pub fn mount(&self, barcode: &str, command: &str) -> Result<()> {
        if is_cleaning(barcode) {
            return Err(refused(format!("{barcode} is a cleaning cartridge: it is never loaded as a data tape")));
        }
        let robot = self.changer.robot(command)?;
        let status = robot.status()?;
        match status.locate(barcode) {
            Some(Location::Drive(i)) if i == self.index => return self.reload(barcode),
            Some(Location::Drive(i)) => self.take_from_other_drive(&robot, &status, i, barcode, command)?,
            None => {
                return Err(refused(format!(
                    "cartridge {barcode} is not in the library: put it in a slot (or an import/export slot), then run again"
                )));
            }
            Some(Location::Slot(_)) => {}
        }
        let status = robot.status()?;
        self.empty_drive(&robot, &status)?;
        let Some(Location::Slot(slot)) = status.locate(barcode) else {
            bail!("cartridge {barcode} moved while tapeop was moving it: run again");
        };
        println!("Loading cartridge {barcode} from slot {slot} into {}...", self.describe());
        drive::last_proof::forget(&self.spec);
        robot.load(slot, self.index)?;
        crate::fault::point("library-after-load");
        self.wait_ready(barcode)
    }

    /// Claim catalogue tape `tape` of the catalogue `db` for this run and
    /// put its cartridge (its serial is its barcode) into this drive. The
    /// claim is held until the returned lock is dropped. A tape without a
    /// serial, one another run holds, or one not in the library is refused
    /// with what to do.
    pub fn mount_tape(&self, tape: &Tape, db: &Path, command: &str) -> Result<Lock> {
        let Some(barcode) = Some(tape.serial.clone()).filter(|s| !s.is_empty()) else {
            return Err(refused(format!(
                "tape \"{}\" has no serial (barcode) in the catalogue, so the library cannot find it: load it by hand \
                 into {} (or give it its barcode with scan_tape), then run again",
                tape.name,
                self.describe()
            )));
        };
        let Some(claim) = lock::claim_tape(db, &tape.name, command)? else {
            let holder = lock::tape_holder(db, &tape.name).unwrap_or_else(|| "another run".into());
            return Err(refused(format!("tape \"{}\" is in use by {holder}; wait for it to finish", tape.name)));
        };
        self.mount(&barcode, command).with_context(|| format!("tape \"{}\"", tape.name))?;
        Ok(claim)
    }

    /// Take the cartridge out of this drive (ejecting it first) and put it
    /// back in the slot it came from (or a free one). Returns its barcode
    /// and that slot, or None when the drive was empty.
    pub fn dismount(&self, command: &str) -> Result<Option<(String, u32)>> {
        let robot = self.changer.robot(command)?;
        let status = robot.status()?;
        self.empty_drive(&robot, &status)
    }

    /// The wanted cartridge is in drive element `index`, another drive:
    /// when that drive is one of tape.conf's and no run holds it, eject it
    /// there and return it to its slot (under that drive's lock); otherwise
    /// refuse, naming the drive.
    fn take_from_other_drive(
        &self,
        robot: &Robot<'_>,
        status: &LibraryStatus,
        index: u32,
        barcode: &str,
        command: &str,
    ) -> Result<()> {
        let Some(other) = self.others.iter().find(|d| d.changer_index == Some(index)) else {
            return Err(refused(format!(
                "cartridge {barcode} is in drive element {index}, which tape.conf does not name: unload it there \
                 (mtx -f {} unload), then run again",
                self.changer.device().display()
            )));
        };
        let what = match &other.spec {
            DriveSpec::Device(dev) => format!("the drive {}", dev.display()),
            DriveSpec::Emulator { dir, .. } => format!("the emulated tape {}", dir.display()),
        };
        let _lock = lock::acquire(&drive::drive_lock_path(&other.spec), &what, command)
            .with_context(|| format!("cartridge {barcode} is in drive {}", other.name))?;
        let other = LibraryDrive {
            changer: self.changer.clone(),
            name: other.name.clone(),
            index,
            spec: other.spec.clone(),
            others: Vec::new(),
        };
        other.empty_drive(robot, status)?;
        Ok(())
    }

    /// Eject and unload whatever the drive holds (nothing if empty).
    fn empty_drive(&self, robot: &Robot<'_>, status: &LibraryStatus) -> Result<Option<(String, u32)>> {
        let Some(held) = self.holds(status)? else { return Ok(None) };
        let element = status.drive(self.index).context("drive element vanished")?;
        let slot = match element.source_slot.filter(|s| slot_is_free(status, *s)) {
            Some(s) => s,
            None => status.free_slot().with_context(|| {
                format!(
                    "no free slot to put cartridge {} from {} back into: free a slot",
                    shown(&held),
                    self.describe()
                )
            })?,
        };
        self.eject()?;
        crate::fault::point("library-after-eject");
        println!("Unloading cartridge {} from {} into slot {slot}...", shown(&held), self.describe());
        drive::last_proof::forget(&self.spec);
        robot.unload(slot, self.index)?;
        crate::fault::point("library-after-unload");
        Ok(Some((held, slot)))
    }

    /// Rewind and eject the cartridge (MTOFFL) so the robot can take it.
    fn eject(&self) -> Result<()> {
        match &self.spec {
            DriveSpec::Device(path) => {
                drive::st::eject(path).with_context(|| format!("ejecting the cartridge in {}", self.describe()))?;
                Ok(())
            }
            DriveSpec::Emulator { .. } => {
                bail!("{} is an emulator directory: a changer drives st devices only", self.describe())
            }
        }
    }

    /// The wanted cartridge is already in the drive: load it again if a
    /// killed run left it ejected, and wait until it is ready.
    fn reload(&self, barcode: &str) -> Result<()> {
        let DriveSpec::Device(path) = &self.spec else { bail!("{} is not a st device", self.describe()) };
        if !drive::probe::has_medium(path)? {
            println!("Cartridge {barcode} is in {} but not loaded: loading it again.", self.describe());
            drive::last_proof::forget(&self.spec);
            drive::st::load(path).with_context(|| format!("loading cartridge {barcode} in {}", self.describe()))?;
        }
        self.wait_ready(barcode)
    }

    fn wait_ready(&self, barcode: &str) -> Result<()> {
        let DriveSpec::Device(path) = &self.spec else { return Ok(()) };
        drive::loading::wait_ready(path).with_context(|| format!("cartridge {barcode} in {}", self.describe()))
    }

    /// Clean this drive: return the cartridge it holds to its slot, load a
    /// cleaning cartridge (`CLN...`) from a storage slot, wait (up to
    /// `load_timeout`) until the drive ejects it, and return it to its slot.
    /// No cleaning cartridge in a slot is refused (exit 1) before anything
    /// moves. The robot is held for each move, not while the drive cleans.
    pub fn clean(&self, command: &str) -> Result<Cleaning> {
        let DriveSpec::Device(path) = &self.spec else { bail!("{} is not a st device", self.describe()) };
        let robot = self.changer.robot(command)?;
        let status = robot.status()?;
        let Some((slot, barcode)) = cleaning_cartridge(&status) else {
            return Err(refused(format!(
                "no cleaning cartridge (barcode CLN...) in a slot of the library for {}: put one in a slot, run \
                 tapeop inventory, then run again",
                self.describe()
            )));
        };
        self.empty_drive(&robot, &status)?;
        println!("Loading cleaning cartridge {barcode} from slot {slot} into {}...", self.describe());
        let start = Instant::now();
        drive::last_proof::forget(&self.spec);
        robot.load(slot, self.index)?;
        drop(robot);
        let timeout = drive::loading::load_timeout();
        let waited = drive::loading::wait_cleaned(path, timeout, std::io::stderr().is_terminal());
        let elapsed = start.elapsed();
        let back = self.dismount(command).and_then(|b| b.context("the drive was found empty"));
        let (slot, error) = match (waited, back) {
            (Ok(()), Ok((_, s))) => (Some(s), None),
            (Err(e), Ok((_, s))) => (Some(s), Some(e.context(format!("{barcode} is back in slot {s}")))),
            (Ok(()), Err(e)) => (None, Some(e.context(format!("returning cleaning cartridge {barcode} to a slot")))),
            (Err(e), Err(back)) => {
                (None, Some(e.context(format!("cleaning cartridge {barcode} is still in the drive: {back:#}"))))
            }
        };
        let still_asks = error.is_none() && drive::health::drive_flags(path).is_ok_and(|f| f.cleaning_requested);
        Ok(Cleaning { barcode, slot, elapsed, still_asks, error })
    }
}

/// How a cleaning went ([`LibraryDrive::clean`]).
#[derive(Debug)]
pub struct Cleaning {
    /// The cleaning cartridge's barcode.
    pub barcode: String,
    /// The slot it is back in (None: it could not be returned).
    pub slot: Option<u32>,
    /// From the robot's load to the drive's eject.
    pub elapsed: Duration,
    /// The drive still asks for cleaning afterwards (a used-up cartridge).
    pub still_asks: bool,
    /// Why it did not finish (the drive never ejected it, or the robot
    /// could not take it back), with where the cartridge is.
    pub error: Option<anyhow::Error>,
}

/// The first cleaning cartridge (barcode `CLN...`) in a storage slot of
/// the library: its slot and barcode.
pub fn cleaning_cartridge(status: &LibraryStatus) -> Option<(u32, String)> {
    let cleaning = |s: &crate::changer::SlotElement| s.barcode.clone().filter(|b| is_cleaning(b));
    status.slots.iter().filter(|s| s.full && !s.import_export).find_map(|s| cleaning(s).map(|b| (s.number, b)))
}

/// Whether storage slot `n` is empty.
fn slot_is_free(status: &LibraryStatus, n: u32) -> bool {
    status.slots.iter().any(|s| s.number == n && !s.full)
}

/// A barcode for messages ("(no barcode)" for an empty one).
pub fn shown(barcode: &str) -> &str {
    if barcode.is_empty() { "(no barcode)" } else { barcode }
}

fn refused(msg: String) -> anyhow::Error {
    Exit::error(ExitCode::Failure, msg)
}
