//! Waiting for a drive that is still loading a cartridge: a new LTO-9
//! cartridge can take up to two hours on its first load, and meanwhile a
//! plain `open()` of the st device fails (EIO). This module owns the
//! `load_timeout` in force, the non-blocking readiness check (`MTIOCGET`:
//! door closed but not online means loading) and the progress line; the
//! same wait after a robot's load (until the cartridge is ready) and while
//! a cleaning cartridge cleans (until the drive ejects it).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{mtio, probe};

/// The default `load_timeout`: three hours.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

const POLL: Duration = Duration::from_millis(200);
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

static LOAD_TIMEOUT_SECS: AtomicU64 = AtomicU64::new(3 * 3600);

/// Set how long an open waits for a loading drive (the `load_timeout` key).
pub fn set_load_timeout(timeout: Duration) {
    LOAD_TIMEOUT_SECS.store(timeout.as_secs(), Ordering::Relaxed);
}

/// The `load_timeout` in force.
pub fn load_timeout() -> Duration {
    Duration::from_secs(LOAD_TIMEOUT_SECS.load(Ordering::Relaxed))
}

/// Whether the drive at `path` is loading a cartridge: its door is closed
/// but it is not online. Any failure to ask counts as not loading (the
/// blocking open that follows reports it).
fn is_loading(path: &Path) -> bool {
    probe::gstat(path).is_ok_and(|g| g & mtio::GMT_DR_OPEN == 0 && g & mtio::GMT_ONLINE == 0)
}

/// Wait, with a progress line on stderr, while the drive at `path` is
/// loading a cartridge, up to the `load_timeout`. An empty drive or a
/// ready one returns at once.
pub fn wait_while_loading(path: &Path) -> Result<()> {
    let timeout = load_timeout();
    wait_while(path, LOADING, timeout, true, is_loading).map_err(|_| {
        anyhow::anyhow!(
            "the drive {} was still loading the cartridge after {}: raise load_timeout under [default] in the config file, or check the drive",
            path.display(),
            shown(timeout)
        )
    })
}

/// Wait, with the progress line of [`wait_while_loading`], until a
/// cartridge a robot just put in the drive at `path` is loaded and ready,
/// up to the `load_timeout` (a new LTO-9 cartridge's first load can take
/// two hours).
pub fn wait_ready(path: &Path) -> Result<()> {
    let timeout = load_timeout();
    let not_ready = |p: &Path| !matches!(probe::has_medium(p), Ok(true));
    wait_while(path, LOADING, timeout, true, not_ready).map_err(|_| {
        let why = match probe::has_medium(path) {
            Err(e) => format!("{e:#}"),
            Ok(_) => "it reports no cartridge loaded".to_string(),
        };
        anyhow::anyhow!(
            "the drive {} did not become ready within {} after the load ({why}): raise load_timeout under [default] \
             in the config file, or check the drive",
            path.display(),
            shown(timeout)
        )
    })
}

/// Wait until the drive at `path` has ejected the cleaning cartridge a
/// robot put in it (`MTIOCGET` reports the door open: no cartridge
/// threaded), up to `timeout`; the progress line only when `progress`.
pub fn wait_cleaned(path: &Path, timeout: Duration, progress: bool) -> Result<()> {
    wait_while(path, "to clean and eject the cleaning cartridge", timeout, progress, |p| !is_ejected(p)).map_err(|_| {
        anyhow::anyhow!(
            "the drive {} had not ejected the cleaning cartridge after {}: it did not finish cleaning (check the \
             drive; load_timeout under [default] bounds this wait)",
            path.display(),
            shown(timeout)
        )
    })
}

/// Whether the drive at `path` reports its door open (no cartridge
/// threaded: empty, or ejected). Any failure to ask counts as not ejected.
fn is_ejected(path: &Path) -> bool {
    probe::gstat(path).is_ok_and(|g| g & mtio::GMT_DR_OPEN != 0)
}

/// What the progress line waits for while a cartridge loads.
const LOADING: &str = "to become ready (loading the cartridge)";

/// Poll `still(path)` until it is false, up to `timeout`; with `progress`,
/// a line on stderr at once and every 30 s: "Waiting for DEVICE `until`:
/// N s of at most T". Err(waited) on timeout.
fn wait_while(
    path: &Path,
    until: &str,
    timeout: Duration,
    progress: bool,
    still: impl Fn(&Path) -> bool,
) -> Result<(), Duration> {
    let start = Instant::now();
    let mut next_line = Duration::ZERO;
    while still(path) {
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(waited);
        }
        if progress && waited >= next_line {
            eprintln!("Waiting for {} {until}: {} s of at most {}", path.display(), waited.as_secs(), shown(timeout));
            next_line += PROGRESS_EVERY;
        }
        std::thread::sleep(POLL.min(timeout.saturating_sub(waited)).max(Duration::from_millis(1)));
    }
    Ok(())
}

/// A duration as the config file takes it: `3 h`, `90 min`, `45 s`.
pub fn shown(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Parse a duration like `3h`, `90m`, `45s` (or a number of seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim_end();
    let n: u64 = digits.parse().ok()?;
    let factor = match text[digits.len()..].trim() {
        "" | "s" | "sec" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(factor).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_that_never_ends_times_out_and_one_that_ends_returns() {
        let path = Path::new("/nonexistent/nst0");
        let waited = wait_while(path, "cleaning", Duration::from_millis(50), false, |_| true).unwrap_err();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        let calls = std::cell::Cell::new(0);
        let ends = |_: &Path| {
            calls.set(calls.get() + 1);
            calls.get() < 3
        };
        assert_eq!(wait_while(path, "cleaning", Duration::from_secs(60), false, ends), Ok(()));
        assert_eq!(calls.get(), 3);
        let err = wait_cleaned(path, Duration::from_millis(10), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the drive /nonexistent/nst0 had not ejected the cleaning cartridge after 0 s: it did not finish \
             cleaning (check the drive; load_timeout under [default] bounds this wait)"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3h"), Some(Duration::from_secs(10800)));
        assert_eq!(parse_duration("90m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("3 h"), Some(Duration::from_secs(10800)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("3d"), None);
        assert_eq!(shown(Duration::from_secs(10800)), "3 h");
        assert_eq!(shown(Duration::from_secs(5400)), "90 min");
        assert_eq!(shown(Duration::from_secs(1)), "1 s");
    }
}
