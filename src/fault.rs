//! Fault injection for the test suite. With `TAPEOP_FAULT=NAME` (or
//! `NAME:K`, the K-th time) in the environment, the process kills itself
//! with SIGKILL when it reaches the named point, or — for `drive-eio` and
//! `drive-read-eio` — the emulated drive fails that record with EIO, so the
//! tests can prove that a crash or a drive error at any of these moments
//! loses nothing. A few names are states for the whole run instead
//! (`check-behind`: archive's in-flight check always looks behind the
//! drive). Without the variable every point is a no-op.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn spec() -> &'static Option<(String, u64)> {
    SPEC.get_or_init(|| {
        let raw = std::env::var("TAPEOP_FAULT").ok()?;
        match raw.rsplit_once(':') {
            Some((name, k)) => Some((name.to_string(), k.parse().unwrap_or(1))),
            None => Some((raw, 1)),
        }
    })
}

/// Whether the fault `name` fires now (counting hits of that name).
pub fn fires(name: &str) -> bool {
    match spec() {
        Some((want, k)) if want == name => HITS.fetch_add(1, Ordering::SeqCst) + 1 == *k,
        _ => false,
    }
}

/// Die at once (as `kill -9` would) if the fault `name` fires here.
pub fn point(name: &str) {
    if fires(name) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    }
}

/// Whether the state `name` is simulated for this whole run.
pub fn active(name: &str) -> bool {
    matches!(spec(), Some((want, _)) if want == name)
}
