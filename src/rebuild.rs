//! PLACEHOLDER: scan_tape is being written; this file is replaced whole.
use anyhow::{Result, bail};

use crate::config::Config;
use crate::exit_codes::ExitCode;

/// Run `scan_tape`.
pub fn run(_config: &Config, _record_as: Option<&str>) -> Result<ExitCode> {
    bail!("scan_tape is not available yet")
}
