//! The typed errors of the tape hardware that more than one layer branches
//! on: the drive implementations raise them, `archive` ends a tape file on
//! a full medium, and `exit_codes` maps a full medium to its exit code. A
//! neutral module, so that `exit_codes` does not depend on the drive layer.

use std::fmt;

/// Errors that callers branch on; everything else is a plain `anyhow` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveError {
    /// The medium is full (early warning reached); the job must end with a
    /// filemark and go on on another tape.
    EndOfMedium,
    /// The cartridge is write-protected.
    WriteProtected,
    /// No cartridge in the drive.
    NotLoaded,
}

impl fmt::Display for DriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::EndOfMedium => write!(f, "tape full (end of medium reached)"),
            DriveError::WriteProtected => write!(f, "the tape is write-protected"),
            DriveError::NotLoaded => write!(f, "no tape loaded in the drive"),
        }
    }
}

impl std::error::Error for DriveError {}

/// Attached to a [`DriveError::EndOfMedium`] when the record was written
/// all the same (st allows every other write past early warning, and the
/// driver's one retry succeeded): the caller may go on with the next record.
/// It carries the drive's own message, so the error reads the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWritten(pub String);

impl fmt::Display for RecordWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
