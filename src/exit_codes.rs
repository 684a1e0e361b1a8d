//! The documented exit codes and the one error type that carries a chosen
//! code up to `main`. Every other failure is exit 1; `main` is the only place
//! that turns an error into a process exit status.

use std::fmt;

/// The exit codes tapeop documents (README, `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The command did what it was asked.
    Success = 0,
    /// Refused, failed, aborted at a question, or a confirm found differences.
    Failure = 1,
    /// Command-line usage error (clap's own code).
    Usage = 2,
    /// Nothing left to do (no assigned backup to archive, nothing to confirm).
    NothingToDo = 40,
    /// A stop was requested (`exit_file` present, or Ctrl-C).
    StopRequested = 41,
    /// An archive job failed; nothing was recorded.
    ArchiveFailed = 42,
    /// The tape is full: the target stays assigned for the next tape.
    TapeFull = 43,
    /// A report's stdout was closed by its reader (`| head`, a pager quit):
    /// ended quietly with the status a shell shows for SIGPIPE (128 + 13).
    StdoutClosed = 141,
}

impl ExitCode {
    /// The numeric process status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error that ends the run with a specific exit code.
#[derive(Debug)]
pub struct Exit {
    /// The exit code to leave with.
    pub code: ExitCode,
    /// What to tell the operator (one line; may be empty for a quiet exit).
    pub message: String,
}

impl Exit {
    /// A failure with `code` and a message.
    pub fn error(code: ExitCode, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Exit { code, message: message.into() })
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Pick the exit code for an error: an `Exit` anywhere in the chain decides,
/// a full tape is `TapeFull`, anything else is `Failure`.
pub fn for_error(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        if let Some(crate::tape_error::DriveError::EndOfMedium) = cause.downcast_ref() {
            return ExitCode::TapeFull;
        }
    }
    ExitCode::Failure
}
