//! Drive cleanings in the history: a row of kind `clean` per cleaning
//! cartridge loaded, with the cartridge's barcode in the tape column and
//! the drive in the target column (no schema change).

use anyhow::Result;
use rusqlite::params;

use super::{Catalog, Outcome, now_text};

impl Catalog {
    /// Record a cleaning of drive `drive` with cleaning cartridge `barcode`,
    /// begun at `started` (as [`now_text`] gives it) and ended now.
    pub fn record_cleaning(
        &self,
        drive: &str,
        barcode: &str,
        started: &str,
        outcome: Outcome,
        error: Option<String>,
    ) -> Result<i64> {
        self.writable()?;
        self.conn.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, outcome, error)
             VALUES ('clean', ?1, NULL, ?2, ?3, ?4, ?5, ?6)",
            params![barcode, format!("drive {drive}"), started, now_text(), outcome.as_str(), error],
        )?;
        Ok(self.conn.last_insert_rowid())
    }
}
