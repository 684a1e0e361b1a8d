//! PLACEHOLDER: check is being written; this file is replaced whole.
use std::io::Write;

use anyhow::{Result, bail};

use crate::catalog::Catalog;
use crate::exit_codes::ExitCode;

/// Options of `check`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Days a recorded backup may wait for its confirm.
    pub days: u32,
    /// Percent of capacity at which a tape is nearly full.
    pub full_percent: u32,
    /// JSON output.
    pub json: bool,
}

/// Run `check`.
pub fn run(_cat: &Catalog, _opts: Options, _out: &mut dyn Write) -> Result<ExitCode> {
    bail!("check is not available yet")
}
