//! `recover_catalogue --to FILE`: a lost catalogue back from the catalogue
//! file at the end of the loaded tape. This module owns the command: it
//! never opens tape.conf's `database_file` (which may be gone), refuses an
//! existing FILE, reads only the last tape file (spaced to from the end of
//! data), checks the snapshot's md5 against README.txt, and writes FILE
//! only when it opens as a tapeop catalogue.

use std::path::Path;

use anyhow::{Context, Result};

use crate::catalogue_file::{self, NotFound};
use crate::config::Config;
use crate::drive::{self, Access};
use crate::exit_codes::{Exit, ExitCode};

/// Run `recover_catalogue --to FILE`.
pub fn run(config: &Config, to: &Path) -> Result<ExitCode> {
    if to.exists() || to.symlink_metadata().is_ok() {
        return Err(Exit::error(
            ExitCode::Failure,
            format!("{} exists: recover_catalogue never overwrites a file; give a new path with --to", to.display()),
        ));
    }
    let mut drive = drive::open(&config.drive, Access::Read, config.block_size)?;
    let name = drive.name();
    // Reading moves the head: a proof left by an earlier run no longer holds.
    drive::last_proof::forget(&config.drive);
    let found = match catalogue_file::read_last(&mut *drive)? {
        Ok(found) => found,
        Err(why) => return Err(Exit::error(ExitCode::Failure, not_found(&name, to, why))),
    };
    let tape = found.field("tape").unwrap_or_default();
    println!(
        "Tape file {} of {name} is the catalogue file of tape \"{tape}\" (written {}, catalogue {}); its snapshot's md5 matches.",
        found.n,
        found.field("written").unwrap_or_default(),
        found.field("catalogue").unwrap_or_default()
    );
    let tapes = catalogue_file::restore_snapshot(&found, to)
        .with_context(|| format!("recovering the catalogue into {}; nothing was written there", to.display()))?;
    println!(
        "Recovered the catalogue ({tapes} tapes) into {}: set database_file in tape.conf to it. It knows what was \
         on the tapes when tape \"{tape}\" was closed or filled; scan_tape --adopt adds later tape files.",
        to.display()
    );
    Ok(ExitCode::Success)
}

/// The one-line refusal when the loaded tape has no usable catalogue file.
fn not_found(drive: &str, to: &Path, why: NotFound) -> String {
    let rebuild =
        "rebuild the catalogue by reading every tape file instead: tapeop scan_tape --record-as NAME, tape by tape";
    match why {
        NotFound::Blank => {
            format!("{drive} holds no tape files: there is no catalogue file to recover; nothing was written")
        }
        NotFound::NotOne(n, what) => format!(
            "the tape in {drive} has no catalogue file: its last tape file ({n}) is {what} (a tape closed by the old \
             tool, or with close_tape --no-catalogue-file); nothing was written to {}. Load another closed or full \
             tape, or {rebuild}",
            to.display()
        ),
        NotFound::Damaged(n, why) => format!(
            "the catalogue file (tape file {n}) in {drive} is damaged: {why}; nothing was written to {}. Load another \
             closed or full tape (each has its own catalogue file), or {rebuild}",
            to.display()
        ),
    }
}
