//! The drive's own I/O counters around one tape file: bytes moved and I/O
//! time from the st driver's statistics (`<sysfs>/class/scsi_tape/stN/stats/`,
//! see [`super::health::read_stats`]) and the recovered (soft) errors the
//! drive reported. Code that writes or reads a tape file takes a snapshot
//! before and after it ([`super::Drive::io_counters`]) and keeps the
//! difference ([`IoCounters::since`]); the catalogue stores it beside the
//! history row of that tape file.
//!
//! Recovered errors: st counts them in `recover_reg` and returns them in the
//! low word of `mt_erreg` on `MTIOCGET`, and its MTIOCGET handler ends with
//! `STp->recover_reg = 0; /* Clear after read */` (drivers/scsi/st.c). So
//! each `MTIOCGET` returns the errors since the previous one, by any
//! process on that drive, and tapeop's own status calls would lose them. The
//! st drive therefore adds every `MTIOCGET` reading of its descriptor to a
//! running tally ([`ErrorTally`]); a snapshot is the tally after one more
//! `MTIOCGET`. Errors another process's `MTIOCGET` collects (e.g. `mt
//! status` during a run) are not seen.
//!
//! Nothing here stops a job: a drive without statistics (no sysfs, not a st
//! device) has no byte or time figures, and the emulator has no counters.

use std::cell::Cell;

/// What the drive counted up to one moment, or between two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Bytes read plus written, as the st driver counts them (`None`
    /// without its statistics).
    pub bytes: Option<u64>,
    /// Nanoseconds of I/O (`io_ns`; `None` without the statistics).
    pub io_ns: Option<u64>,
    /// Recovered errors (`mt_erreg`, summed over every `MTIOCGET`).
    pub recovered_errors: u64,
}

impl IoCounters {
    /// What happened between `before` and this later snapshot (a counter
    /// that went backwards, as after a driver reload, gives no figure).
    pub fn since(&self, before: &IoCounters) -> IoCounters {
        let diff = |a: Option<u64>, b: Option<u64>| a?.checked_sub(b?);
        IoCounters {
            bytes: diff(self.bytes, before.bytes),
            io_ns: diff(self.io_ns, before.io_ns),
            recovered_errors: self.recovered_errors.saturating_sub(before.recovered_errors),
        }
    }

    /// The sum of two spans (a byte or time figure missing from either is
    /// missing from the sum).
    pub fn plus(&self, other: &IoCounters) -> IoCounters {
        let sum = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_add(b?));
        IoCounters {
            bytes: sum(self.bytes, other.bytes),
            io_ns: sum(self.io_ns, other.io_ns),
            recovered_errors: self.recovered_errors.saturating_add(other.recovered_errors),
        }
    }

    /// The drive's own rate in MB/s (10^6 bytes): bytes over I/O time.
    pub fn mb_per_s(&self) -> Option<f64> {
        match (self.bytes, self.io_ns) {
            (Some(b), Some(ns)) if ns > 0 => Some(b as f64 * 1000.0 / ns as f64),
            _ => None,
        }
    }
}

/// The difference between two optional snapshots (none when either is
/// missing).
pub fn between(before: Option<IoCounters>, after: Option<IoCounters>) -> Option<IoCounters> {
    Some(after?.since(&before?))
}

/// The recovered errors that `MTIOCGET` readings returned so far on one
/// descriptor (each reading clears st's count, so they are summed here).
#[derive(Debug, Default)]
pub struct ErrorTally(Cell<u64>);

impl ErrorTally {
    /// Add one reading's `mt_erreg` (its low word: `MT_ST_SOFTERR_MASK`).
    pub fn add(&self, mt_erreg: libc::c_long) {
        self.0.set(self.0.get().saturating_add((mt_erreg & 0xffff) as u64));
    }

    /// The sum so far.
    pub fn total(&self) -> u64 {
        self.0.get()
    }
}

/// A snapshot of the st drive at `path` whose `MTIOCGET` readings `tally`
/// summed: the statistics of its st name under [`super::health::sysfs_root`]
/// when they can be read, and the tally.
pub fn st_snapshot(path: &std::path::Path, tally: &ErrorTally) -> IoCounters {
    let stats =
        super::health::st_name(path).and_then(|st| super::health::read_stats(&super::health::sysfs_root(), &st).ok());
    IoCounters {
        bytes: stats.map(|s| s.read_byte_cnt + s.write_byte_cnt),
        io_ns: stats.map(|s| s.io_ns),
        recovered_errors: tally.total(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_and_rate() {
        let a = IoCounters { bytes: Some(1_000), io_ns: Some(10), recovered_errors: 2 };
        let b = IoCounters { bytes: Some(2_001_000), io_ns: Some(10_000_010), recovered_errors: 5 };
        let d = b.since(&a);
        assert_eq!(d, IoCounters { bytes: Some(2_000_000), io_ns: Some(10_000_000), recovered_errors: 3 });
        assert_eq!(d.mb_per_s(), Some(200.0));
        let none = IoCounters { recovered_errors: 1, ..IoCounters::default() };
        assert_eq!(none.since(&a).bytes, None);
        assert_eq!(a.since(&b).bytes, None, "a counter that went back gives no figure");
        assert_eq!(between(None, Some(b)), None);
        assert_eq!(d.plus(&d).bytes, Some(4_000_000));
        assert_eq!(d.plus(&none), IoCounters { recovered_errors: 4, ..IoCounters::default() });
    }

    #[test]
    fn the_tally_sums_the_low_word() {
        let t = ErrorTally::default();
        t.add(3);
        t.add(0x1_0002);
        assert_eq!(t.total(), 5);
    }
}
