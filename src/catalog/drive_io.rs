//! The drive's own figures for each tape file written or read (table
//! `tapeop_drive_io`, schema version 4, keyed by history id): bytes and I/O
//! time from the st statistics, and the recovered errors the drive
//! reported. `log` shows the drive rate beside the wall-clock rate; `check`
//! compares the recovered errors per GB of a tape's latest two reads.
//!
//! A *read* of a tape is one `tapeop confirm` run on it (every tape file
//! that one process confirmed on that tape, e.g. with `--repeat`), or one
//! `confirm --sample` of it. Each read row carries its run (`read_run`: the
//! history id of the run's first confirm, or of the sample's `verify` row);
//! archive rows have none (writes are not reads). A catalogue not yet at
//! version 4 has no table: reads find no figures.

use anyhow::Result;
use rusqlite::params;

use super::Catalog;
use crate::drive::IoCounters;

/// One read of a tape: when, recovered errors and bytes read.
#[derive(Debug, Clone, PartialEq)]
pub struct TapeRead {
    /// The run (`read_run`: a history id; also what `ack` takes).
    pub run: i64,
    /// When it started.
    pub started: String,
    /// Recovered errors over the read.
    pub errors: u64,
    /// Bytes read (the drive's count, or tapeop's where the drive has none).
    pub bytes: u64,
}

impl TapeRead {
    /// Recovered errors per GB (10^9 bytes) read.
    pub fn per_gb(&self) -> f64 {
        self.errors as f64 * 1e9 / self.bytes.max(1) as f64
    }
}

/// A tape whose recovered errors per GB grew from its previous read to its
/// latest.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGrowth {
    /// Tape name.
    pub tape: String,
    /// The read before.
    pub previous: TapeRead,
    /// The latest read.
    pub latest: TapeRead,
}

impl Catalog {
    /// Record the drive's figures for history row `history_id`; `read_run`
    /// is the run of a read (none for a write).
    pub fn record_drive_io(&self, history_id: i64, read_run: Option<i64>, io: &IoCounters) -> Result<()> {
        self.writable()?;
        let int = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        self.conn.execute(
            "INSERT OR REPLACE INTO tapeop_drive_io (history_id, read_run, drive_bytes, drive_io_ns, recovered_errors)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                history_id,
                read_run,
                int(io.bytes),
                int(io.io_ns),
                i64::try_from(io.recovered_errors).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(())
    }

    /// The extra history columns of version 4 (drive bytes, I/O ns,
    /// recovered errors, and the history's own `elapsed_ms`) and the join
    /// that gives them; NULLs before version 4.
    pub(super) fn drive_io_columns(&self) -> Result<(&'static str, &'static str)> {
        Ok(if self.has_version(4)? {
            (
                "drive_bytes, drive_io_ns, recovered_errors, tapeop_history.elapsed_ms",
                "LEFT JOIN tapeop_drive_io ON tapeop_drive_io.history_id = tapeop_history.id",
            )
        } else {
            ("NULL, NULL, NULL, NULL", "")
        })
    }

    /// Tapes whose latest read had more recovered errors per GB than the
    /// read before it, unless that latest read was acknowledged (`ack RUN`).
    pub fn errors_growing(&self) -> Result<Vec<ErrorGrowth>> {
        if !self.has_version(4)? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT h.tape, d.read_run, MIN(h.started), SUM(d.recovered_errors),
                    SUM(COALESCE(d.drive_bytes, h.bytes, 0)) AS read_bytes
             FROM tapeop_drive_io d JOIN tapeop_history h ON h.id = d.history_id
             WHERE d.read_run IS NOT NULL AND h.tape IS NOT NULL
             GROUP BY h.tape, d.read_run HAVING read_bytes > 0 ORDER BY h.tape, d.read_run",
        )?;
        let rows = stmt.query_map([], |r| {
            let read = TapeRead {
                run: r.get(1)?,
                started: r.get(2)?,
                errors: r.get::<_, i64>(3)?.max(0) as u64,
                bytes: r.get::<_, i64>(4)?.max(0) as u64,
            };
            Ok((r.get::<_, String>(0)?, read))
        })?;
        let mut reads: std::collections::BTreeMap<String, Vec<TapeRead>> = Default::default();
        for row in rows {
            let (tape, read) = row?;
            reads.entry(tape).or_default().push(read);
        }
        let mut grown = Vec::new();
        for (tape, mut list) in reads {
            let (Some(latest), Some(previous)) = (list.pop(), list.pop()) else { continue };
            if latest.per_gb() > previous.per_gb() && self.acked(latest.run)?.is_none() {
                grown.push(ErrorGrowth { tape, previous, latest });
            }
        }
        Ok(grown)
    }
}
