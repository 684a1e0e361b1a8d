//! The tape-library moves an operator asks for: `load TAPE` and `unload`
//! on the selected drive, through the changer layer (`crate::changer`).

use anyhow::{Result, bail};

use super::Context_;
use crate::exit_codes::ExitCode;

/// `load TAPE`: put the cartridge of TAPE (a tape name or a barcode) into the selected drive.
pub fn load(_ctx: &Context_, _tape: &str) -> Result<ExitCode> {
    bail!("not yet")
}

/// `unload`: put the selected drive's cartridge back into its slot.
pub fn unload(_ctx: &Context_) -> Result<ExitCode> {
    bail!("not yet")
}
