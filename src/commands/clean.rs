//! `clean`: clean a library drive with a cleaning cartridge from its slots
//! (the moves are [`LibraryDrive::clean`]'s), print one line, and record
//! the cleaning in the catalogue's history (kind `clean`) so that `log`
//! shows it. `archive --repeat` on a library cleans through
//! [`clean_drive`] too, between targets, when the drive asks.

use anyhow::Result;

use super::Context_;
use crate::catalog::{Catalog, Mode, Outcome, now_text};
use crate::drive::DriveSpec;
use crate::exit_codes::{Exit, ExitCode};
use crate::library::{Cleaning, LibraryDrive};

/// `clean`: clean the selected drive of the library.
pub fn run(ctx: &Context_) -> Result<ExitCode> {
    let Some(lib) = LibraryDrive::from_config(&ctx.config)? else {
        let what = match &ctx.config.drive {
            DriveSpec::Device(dev) => format!("the drive {}", dev.display()),
            DriveSpec::Emulator { dir, .. } => format!("the emulated tape {}", dir.display()),
        };
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "no [changer] in tape.conf: tapeop cannot load a cleaning cartridge itself; insert one into {what} \
                 by hand (it cleans and ejects itself)"
            ),
        ));
    };
    let cat = catalogue(&ctx.config.database_file);
    let cleaning = clean_drive(&lib, cat.as_ref(), &format!("clean --drive {}", lib.name))?;
    if cleaning.still_asks {
        return Err(Exit::error(ExitCode::Failure, still_asks(&lib, &cleaning)));
    }
    Ok(ExitCode::Success)
}

/// The catalogue to record the cleaning in, when there is one that can be
/// written (else a warning: the cleaning itself does not need it).
fn catalogue(db: &std::path::Path) -> Option<Catalog> {
    if !db.exists() {
        return None;
    }
    Catalog::open(db, Mode::ReadWrite)
        .inspect_err(|e| eprintln!("tapeop: warning: the cleaning will not be recorded: {e:#}"))
        .ok()
}

/// Clean the drive of `lib`, record it in `cat`'s history, and print
/// `drive NAME cleaned with CLN001L1 (slot 3), 2 s`. A cleaning that did
/// not finish (the drive never ejected the cartridge, or it could not be
/// returned) is an error saying where the cartridge is; one after which the
/// drive still asks is returned with `still_asks` (recorded as failed).
pub fn clean_drive(lib: &LibraryDrive, cat: Option<&Catalog>, command: &str) -> Result<Cleaning> {
    let started = now_text();
    let mut cleaning = lib.clean(command)?;
    record(lib, cat, &cleaning, &started);
    if let Some(e) = cleaning.error.take() {
        return Err(e.context(format!("the cleaning of {} did not finish", lib.describe())));
    }
    if !cleaning.still_asks {
        let slot = cleaning.slot.map_or(String::new(), |s| format!(" (slot {s})"));
        println!("drive {} cleaned with {}{slot}, {} s", lib.name, cleaning.barcode, cleaning.elapsed.as_secs());
    }
    Ok(cleaning)
}

/// The line for a drive that still asks for cleaning after `cleaning`.
pub fn still_asks(lib: &LibraryDrive, cleaning: &Cleaning) -> String {
    let slot = cleaning.slot.map_or(String::new(), |s| format!(" (back in slot {s})"));
    format!(
        "drive {} still asks for cleaning after cleaning cartridge {}{slot}: the cartridge is probably used up; \
         put a new cleaning cartridge in a slot, run tapeop inventory, then tapeop --drive {} clean",
        lib.name, cleaning.barcode, lib.name
    )
}

/// Record `cleaning` in the history (a warning when it cannot be).
fn record(lib: &LibraryDrive, cat: Option<&Catalog>, cleaning: &Cleaning, started: &str) {
    let Some(cat) = cat else { return };
    let error = match (&cleaning.error, cleaning.still_asks) {
        (Some(e), _) => Some(format!("{e:#}")),
        (None, true) => Some("the drive still asks for cleaning".to_string()),
        (None, false) => None,
    };
    let outcome = if error.is_some() { Outcome::Failed } else { Outcome::Ok };
    if let Err(e) = cat.record_cleaning(&lib.name, &cleaning.barcode, started, outcome, error) {
        eprintln!("tapeop: warning: the cleaning of {} is not recorded in the catalogue: {e:#}", lib.describe());
    }
}
