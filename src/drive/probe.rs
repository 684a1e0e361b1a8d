//! Asking an st drive about itself without blocking: the `O_NONBLOCK` open
//! (which succeeds on an empty or loading drive) and its `MTIOCGET` status
//! bits. st allows one open at a time, and cron's `check` opens an idle
//! drive for a moment to ask about its health, so an open that finds the
//! drive busy is tried again for [`BUSY_GRACE`]. `st` (its opens, eject,
//! load) and `loading` (the waits) both ask through here.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use super::mtio;

/// How long an open refused as busy is tried again.
pub const BUSY_GRACE: Duration = Duration::from_secs(2);

/// Open `path` with `options`, trying again while it is busy, for at most
/// [`BUSY_GRACE`].
pub fn open_waiting_out_busy(options: &OpenOptions, path: &Path) -> std::io::Result<File> {
    let started = Instant::now();
    loop {
        match options.open(path) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && started.elapsed() < BUSY_GRACE => {
                std::thread::sleep(Duration::from_millis(50));
            }
            opened => return opened,
        }
    }
}

/// Open the device read-only without waiting for a cartridge.
pub fn open_nonblocking(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NONBLOCK);
    open_waiting_out_busy(&options, path).map_err(|e| match e.raw_os_error() {
        Some(libc::EBUSY) => anyhow!("{} is busy: another program has the drive open", path.display()),
        Some(libc::ENOENT) => anyhow!("{} does not exist", path.display()),
        _ => anyhow!(e).context(format!("opening tape device {}", path.display())),
    })
}

/// The drive's `mt_gstat` bits, asked without blocking.
pub fn gstat(path: &Path) -> Result<libc::c_long> {
    let file = open_nonblocking(path)?;
    let status = mtio::mt_get(file.as_fd()).with_context(|| format!("{}: reading the drive status", path.display()))?;
    Ok(status.mt_gstat)
}

/// Whether the drive at `path` holds a loaded cartridge: online, door
/// closed (an empty or ejected drive reports its door open).
pub fn has_medium(path: &Path) -> Result<bool> {
    let g = gstat(path)?;
    Ok(g & mtio::GMT_ONLINE != 0 && g & mtio::GMT_DR_OPEN == 0)
}
