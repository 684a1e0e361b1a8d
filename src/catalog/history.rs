//! History: the log of archive, confirm, restore, requeue and ack attempts,
//! failed confirms, and acknowledgements kept in `tapeop_meta`.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::file_number::{legacy_file_number, tape_file_at};
use super::{Catalog, now_text, show};
use crate::tape_file::TapeFile;

/// The last failed confirm of a tape file: its history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedConfirm {
    /// `tapeop_history` id.
    pub history_id: i64,
    /// When that confirm started.
    pub started: String,
    /// What it found.
    pub error: Option<String>,
}

/// What a history row is about (`-` where unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRef {
    /// `archive`, `confirm`, `restore`, `requeue`, `ack`, ...
    pub kind: String,
    /// Tape name.
    pub tape: String,
    /// Tape file (none when unknown).
    pub file_number: Option<TapeFile>,
    /// Target, as shown.
    pub target: String,
    /// `running`, `ok`, `failed`, ...
    pub outcome: String,
}

/// The `tapeop_meta` key that marks history row `id` acknowledged.
pub fn ack_key(history_id: i64) -> String {
    format!("ack_history_{history_id}")
}

/// How an attempt in the history ended (its `outcome` column; a row still
/// `running` has not ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it set out to do.
    Ok,
    /// It failed; the row's error says why.
    Failed,
    /// An archive reached the end of the tape: the tape is full.
    TapeFull,
    /// An archive filled a whole blank tape: the target fits on no tape.
    TargetLargerThanTape,
    /// An archive with `--no-db-update` wrote the tape file and recorded
    /// nothing else.
    WrittenNotRecorded,
}

impl Outcome {
    /// The text stored in the catalogue (as the history has always held it).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TapeFull => "tape full",
            Outcome::TargetLargerThanTape => "target larger than the tape",
            Outcome::WrittenNotRecorded => "written, not recorded (--no-db-update)",
        }
    }
}

/// Failed tape files, requeued targets, acknowledged alarms and removed
/// targets.
impl Catalog {
    // ---- history ----

    /// Record the start of an archive, confirm or restore attempt.
    pub fn history_start(&self, kind: &str, tape: &str, file_number: TapeFile, target: &[u8]) -> Result<i64> {
        self.writable()?;
        self.conn.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, started_ms, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')",
            params![kind, tape, file_number, show(target), now_text(), now_ms()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record how an attempt ended: `ok`, `failed`, `tape full`, ...
    pub fn history_end(&self, id: i64, bytes: Option<u64>, outcome: Outcome, error: Option<String>) -> Result<()> {
        self.conn.execute(
            "UPDATE tapeop_history SET ended = ?2, bytes = ?3, outcome = ?4, error = ?5, elapsed_ms = ?6 - started_ms
             WHERE id = ?1",
            params![id, now_text(), bytes.map(|b| b as i64), outcome.as_str(), error, now_ms()],
        )?;
        Ok(())
    }

    /// The latest confirm of tape file `file_number` of `tape`, when it failed.
    pub fn confirm_failure(&self, tape: &str, file_number: TapeFile) -> Result<Option<FailedConfirm>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        let row: Option<(i64, String, Option<String>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT id, started, outcome, error FROM tapeop_history WHERE kind = 'confirm' AND tape = ?1
                 AND file_number = ?2 ORDER BY id DESC LIMIT 1",
                params![tape, file_number],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        Ok(row.filter(|r| r.2.as_deref() == Some("failed")).map(|(history_id, started, _, error)| FailedConfirm {
            history_id,
            started,
            error,
        }))
    }

    /// A history row's kind, tape, file number, target and outcome.
    pub fn history_row(&self, id: i64) -> Result<Option<HistoryRef>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT kind, COALESCE(tape, '-'), file_number, COALESCE(target, '-'),
                        COALESCE(outcome, '-') FROM tapeop_history WHERE id = ?1",
                [id],
                |r| {
                    Ok(HistoryRef {
                        kind: r.get(0)?,
                        tape: r.get(1)?,
                        file_number: tape_file_at(r, 2)?,
                        target: r.get(3)?,
                        outcome: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Whether history row `id` was acknowledged (`ack`), and when.
    pub fn acked(&self, id: i64) -> Result<Option<String>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row("SELECT value FROM tapeop_meta WHERE key = ?1", [ack_key(id)], |r| r.get(0))
            .optional()?)
    }

    /// Acknowledge history row `id` (kept in `tapeop_meta`, which every
    /// tapeop catalogue has, so no schema change), and log it.
    pub fn ack(&self, id: i64, what: (&str, Option<TapeFile>, &str), note: &str) -> Result<()> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let now = now_text();
        tx.execute("INSERT OR REPLACE INTO tapeop_meta (key, value) VALUES (?1, ?2)", params![ack_key(id), now])?;
        tx.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, outcome, error)
             VALUES ('ack', ?1, ?2, ?3, ?4, ?4, 'ok', ?5)",
            params![what.0, legacy_file_number(what.1), what.2, now, note],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// Milliseconds since the epoch, for the history's own clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
