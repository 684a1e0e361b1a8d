//! The `inventory` command: every drive, storage slot and import/export
//! slot of the tape library, its barcode, and which catalogue tape it is.

use std::io::Write;

use anyhow::{Result, bail};

use super::Context_;
use crate::exit_codes::ExitCode;

/// `inventory [--json]`: what the changer holds, against the catalogue.
pub fn run(_ctx: &Context_, _out: &mut dyn Write) -> Result<ExitCode> {
    bail!("not yet")
}
