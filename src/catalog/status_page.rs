//! What the status page (`report --html`) asks of the catalogue beyond the
//! other reports: the recent history of archives and confirms, and when the
//! last of each finished. Every query reads `tapeop_history` only (never
//! `files`), so the page stays instant on any catalogue; a legacy
//! catalogue (no side tables) has no history.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::reports::HISTORY_COLUMNS;
use super::{Catalog, HistoryRow};

/// When the last successful run of one kind finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFinished {
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub ended: String,
    /// Whole seconds from then to now.
    pub seconds_ago: i64,
}

impl Catalog {
    /// Archive and confirm rows that ended within the last `days` days,
    /// oldest first, with the drive's own figures where recorded (none on a
    /// legacy catalogue).
    pub fn recent_transfers(&self, days: u32) -> Result<Vec<HistoryRow>> {
        if !self.has_totals()? {
            return Ok(Vec::new());
        }
        let (drive, join) = self.drive_io_columns()?;
        let sql = format!(
            "SELECT {HISTORY_COLUMNS}, {drive} FROM tapeop_history {join}
             WHERE kind IN ('archive', 'confirm') AND ended IS NOT NULL
               AND julianday(substr(ended, 1, 19)) >= julianday('now') - ?1
             ORDER BY id"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(params![f64::from(days)], HistoryRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the last successful `kind` (`archive`, `confirm`) finished,
    /// if ever (None on a legacy catalogue).
    pub fn last_finished(&self, kind: &str) -> Result<Option<LastFinished>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        let sql = "SELECT ended, CAST(strftime('%s', 'now') AS INTEGER) - CAST(strftime('%s', substr(ended, 1, 19)) AS INTEGER)
                   FROM tapeop_history WHERE kind = ?1 AND outcome = 'ok' AND ended IS NOT NULL
                   ORDER BY ended DESC LIMIT 1";
        let row = self
            .conn()
            .query_row(sql, [kind], |r| {
                Ok(LastFinished { ended: r.get(0)?, seconds_ago: r.get::<_, Option<i64>>(1)?.unwrap_or(0) })
            })
            .optional()?;
        Ok(row)
    }
}
