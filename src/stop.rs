//! Stop requests: a file named `exit_file` in the current directory (checked
//! before and after each job), and Ctrl-C — once to finish the current job
//! and exit 41, twice within a second to stop at once with nothing marked.
//! A stdout whose reader went away (see `out`) is a stop request too: the
//! job in hand is finished and recorded, and no further job is started.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::exit_codes::{Exit, ExitCode};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static ABORT: AtomicBool = AtomicBool::new(false);
static LAST_MS: AtomicU64 = AtomicU64::new(0);

/// The name of the stop file the old tool watched.
pub const EXIT_FILE: &str = "exit_file";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Install the Ctrl-C handler (once per process).
pub fn install_handler() {
    let _ = ctrlc::set_handler(|| {
        let now = now_ms();
        let last = LAST_MS.swap(now, Ordering::SeqCst);
        if REQUESTED.swap(true, Ordering::SeqCst) && now.saturating_sub(last) <= 1000 {
            ABORT.store(true, Ordering::SeqCst);
            eprintln!("\nSecond Ctrl-C: stopping now; the job in progress is abandoned and nothing is marked.");
        } else {
            eprintln!("\nCtrl-C: finishing the current job, then stopping (Ctrl-C again within a second stops now).");
        }
    });
}

/// Whether the operator asked to stop after the current job.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst) || Path::new(EXIT_FILE).exists() || crate::out::closed()
}

/// Whether the operator asked to stop at once (second Ctrl-C).
pub fn aborted() -> bool {
    ABORT.load(Ordering::SeqCst)
}

/// Fail with exit 41 if a stop was requested.
pub fn check() -> Result<()> {
    if crate::out::closed() && !REQUESTED.load(Ordering::SeqCst) && !Path::new(EXIT_FILE).exists() {
        return Err(Exit::error(
            ExitCode::StopRequested,
            "stopping: standard output was closed (its reader went away); what was done so far is recorded",
        ));
    }
    if requested() {
        return Err(Exit::error(
            ExitCode::StopRequested,
            format!("stop requested ({} present or Ctrl-C); remove {} to carry on", EXIT_FILE, EXIT_FILE),
        ));
    }
    Ok(())
}

/// Fail at once if the operator pressed Ctrl-C twice.
pub fn check_abort() -> Result<()> {
    if aborted() {
        return Err(Exit::error(ExitCode::StopRequested, "stopped at once by a second Ctrl-C; nothing was recorded"));
    }
    Ok(())
}
