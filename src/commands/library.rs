//! `load TAPE` and `unload`: an operator moving a cartridge in the library
//! by hand, on the drive `--drive` names. `load` takes a catalogue tape's
//! name or a barcode (a cartridge the catalogue does not know yet, to read
//! it with `scan_tape`); the moves themselves are the library module's
//! (eject before the robot pulls, one move at a time).

use anyhow::Result;

use super::Context_;
use crate::catalog::{Catalog, Mode};
use crate::exit_codes::{Exit, ExitCode};
use crate::library::{LibraryDrive, shown};

/// The selected drive of the library, or the one-line error for a
/// tape.conf without a changer.
pub fn require(config: &crate::config::Config, command: &str) -> Result<LibraryDrive> {
    LibraryDrive::from_config(config)?.ok_or_else(|| {
        Exit::error(
            ExitCode::Failure,
            format!("no [changer] in tape.conf: {command} needs a tape library (see tape.conf.ex)"),
        )
    })
}

/// `load TAPE`: put the tape named `which` (or the cartridge with that
/// barcode) into the selected drive.
pub fn load(ctx: &Context_, which: &str) -> Result<()> {
    let lib = require(&ctx.config, "load")?;
    let db = &ctx.config.database_file;
    let cat = if db.exists() { Some(Catalog::open(db, Mode::ReadOnly)?) } else { None };
    let tape = match &cat {
        Some(cat) => match cat.tape_by_name(which)? {
            Some(t) => Some(t),
            None => cat.tape_by_serial(which)?,
        },
        None => None,
    };
    match tape {
        Some(tape) => {
            let _claim = lib.mount_tape(&tape, db, "load")?;
            let barcode = &tape.serial;
            println!("Tape \"{}\" (cartridge {barcode}) is loaded in {}.", tape.name, lib.describe());
        }
        None => {
            lib.mount(which, "load")?;
            println!("Cartridge {which} (not a tape of the catalogue) is loaded in {}.", lib.describe());
        }
    }
    Ok(())
}

/// `unload`: eject the cartridge in the selected drive and return it to
/// its slot.
pub fn unload(ctx: &Context_) -> Result<()> {
    let lib = require(&ctx.config, "unload")?;
    match lib.dismount("unload")? {
        Some((barcode, slot)) => {
            println!("Cartridge {} is back in slot {slot}; {} is empty.", shown(&barcode), lib.describe())
        }
        None => println!("Nothing to unload: {} is empty.", lib.describe()),
    }
    Ok(())
}
