//! PLACEHOLDER: restore is being written; this file is replaced whole.
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::config::Config;
use crate::exit_codes::ExitCode;

/// Options of `restore`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Target directory as imported.
    pub target: Vec<u8>,
    /// Files or globs relative to the target (empty: all).
    pub files: Vec<Vec<u8>>,
    /// Destination directory.
    pub to: PathBuf,
    /// Replace existing files.
    pub overwrite: bool,
}

/// Run `restore`.
pub fn run(_config: &Config, _opts: Options) -> Result<ExitCode> {
    bail!("restore is not available yet")
}
