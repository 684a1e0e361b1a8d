//! Standard output and standard error for the whole library. What tapeop
//! prints is for the operator, but a job's real work is the tape and the
//! catalogue: a print that fails — most often because the reader of a pipe
//! went away (a `tee` killed by Ctrl-C, `| head`, a pager quit) — must never
//! abort a job between writing a tape file and recording it.
//!
//! So this module owns every write to stdout and stderr. The `print!`,
//! `println!`, `eprint!` and `eprintln!` macros defined here shadow std's in
//! every module of the crate (`lib.rs` declares this module first, with
//! `#[macro_use]`): they never panic and never fail. A stdout whose reader
//! is gone is remembered ([`closed`]): a job takes it as a stop request
//! (it finishes and records the job in hand, then exits 41), and a report
//! writing through [`stdout`] stops at once with [`StdoutClosed`], which
//! `main` turns into a quiet exit 141, the status a shell shows for a
//! command ended by SIGPIPE, as coreutils' commands end in a pipe.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to stdout found its reader gone.
pub fn closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

fn note(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::SeqCst);
    }
}

/// Write to stdout; a failure is noted (see [`closed`]) and otherwise ignored.
pub fn write_out(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        note(&e);
    }
}

/// Write to stderr; a failure is ignored (there is nowhere left to say it).
pub fn write_err(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Flush stdout (before a question is read); a failure is noted and ignored.
pub fn flush() {
    if let Err(e) = io::stdout().lock().flush() {
        note(&e);
    }
}

/// The error a write through [`stdout`] fails with once the reader of
/// stdout is gone; `main` ends the run quietly on it.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether `err` is (or was caused by) a write into a closed stdout.
pub fn is_stdout_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.is::<StdoutClosed>()
            || c.downcast_ref::<io::Error>().and_then(|e| e.get_ref()).is_some_and(|e| e.is::<StdoutClosed>())
    })
}

/// Stdout for reports, which stop at the first failed write: a closed pipe
/// fails with [`StdoutClosed`], any other error as it came.
pub struct Stdout(io::StdoutLock<'static>);

/// Stdout for a report (see [`Stdout`]).
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

impl Stdout {
    fn check<T>(r: io::Result<T>) -> io::Result<T> {
        r.map_err(|e| {
            note(&e);
            if e.kind() == io::ErrorKind::BrokenPipe {
                io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
            } else {
                e
            }
        })
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Self::check(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Self::check(self.0.flush())
    }
}

/// std's `print!`, but it never panics: see the module documentation.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::out::write_out(format_args!($($arg)*))
    };
}

/// std's `println!`, but it never panics: see the module documentation.
macro_rules! println {
    () => {
        $crate::out::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// std's `eprint!`, but it never panics: see the module documentation.
#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::out::write_err(format_args!($($arg)*))
    };
}

/// std's `eprintln!`, but it never panics: see the module documentation.
macro_rules! eprintln {
    () => {
        $crate::out::write_err(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_write_error_is_recognised_only_as_its_own() {
        let ours = anyhow::Error::new(io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)).context("printing");
        assert!(is_stdout_closed(&ours));
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing to ssh");
        assert!(!is_stdout_closed(&other), "a broken pipe to a data host is not stdout");
    }
}
