//! Verifications: the history rows (kind `verify`) that `confirm --sample`
//! writes for each tape it samples, and the queries behind `check`'s
//! `verify_due` and `verify_failed` findings. A confirm that ended `ok`
//! counts as a verification of its tape too. Each bad tape file a sample
//! finds gets its own row (kind `verify_file`, with its file number and
//! target), which is what lets `requeue` give up a confirmed tape file.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::{Catalog, FailedConfirm, Outcome, legacy_file_number, now_text, show, utc_text};
use crate::tape_file::TapeFile;

/// A tape whose last verification is older than `verify_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTape {
    /// Tape name.
    pub tape: String,
    /// When it was last verified (a sample or a confirm that ended ok).
    pub last: String,
}

/// A tape whose latest sample found a bad tape file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedVerification {
    /// `tapeop_history` id.
    pub history_id: i64,
    /// Tape name.
    pub tape: String,
    /// The tape files read, e.g. `files 1,2,5`.
    pub read: String,
    /// When it started.
    pub started: String,
    /// What it found.
    pub error: Option<String>,
}

impl Catalog {
    /// Record one verification of `tape`: the tape files read (`read`,
    /// e.g. `files 1,2,5`), the tar bytes read from them, and how it ended.
    pub fn record_verification(
        &self,
        tape: &str,
        read: &str,
        bytes: Option<u64>,
        outcome: Outcome,
        error: Option<String>,
    ) -> Result<i64> {
        self.writable()?;
        let now = now_text();
        self.conn.execute(
            "INSERT INTO tapeop_history (kind, tape, target, started, ended, bytes, outcome, error)
             VALUES ('verify', ?1, ?2, ?3, ?3, ?4, ?5, ?6)",
            params![tape, read, now, bytes.map(|b| b as i64), outcome.as_str(), error],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record that a sample found tape file `n` of `tape` (target
    /// `target`) bad, with what it found.
    pub fn record_bad_sample(&self, tape: &str, n: TapeFile, target: &[u8], error: &str) -> Result<i64> {
        self.writable()?;
        let now = now_text();
        self.conn.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, outcome, error)
             VALUES ('verify_file', ?1, ?2, ?3, ?4, ?4, 'failed', ?5)",
            params![tape, legacy_file_number(Some(n)), show(target), now, error],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The latest sample of tape file `n` of `tape` that found it bad, when
    /// no confirm of that tape file ended ok after it.
    pub fn sample_failure(&self, tape: &str, n: TapeFile) -> Result<Option<FailedConfirm>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        let row = self
            .conn
            .query_row(
                "SELECT id, started, error FROM tapeop_history h WHERE kind = 'verify_file' AND tape = ?1
                   AND file_number = ?2 AND outcome = 'failed'
                   AND NOT EXISTS (SELECT 1 FROM tapeop_history c WHERE c.kind = 'confirm' AND c.tape = h.tape
                                   AND c.file_number = h.file_number AND c.outcome = 'ok' AND c.id > h.id)
                 ORDER BY id DESC LIMIT 1",
                params![tape, legacy_file_number(Some(n))],
                |r| Ok(FailedConfirm { history_id: r.get(0)?, started: r.get(1)?, error: r.get(2)? }),
            )
            .optional()?;
        Ok(row)
    }

    /// Tapes with confirmed backups whose last verification (a sample or a
    /// confirm that ended ok) is more than `days` days old.
    pub fn verification_due(&self, days: u32) -> Result<Vec<DueTape>> {
        if !self.has_totals()? {
            return Ok(Vec::new());
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let cutoff = utc_text(now.saturating_sub(u64::from(days) * 86_400));
        let mut stmt = self.conn.prepare(
            "SELECT t.name, MAX(h.started) FROM tapes t
               JOIN tapeop_history h ON h.tape = t.name AND h.kind IN ('verify', 'confirm') AND h.outcome = 'ok'
             WHERE EXISTS (SELECT 1 FROM backups b WHERE b.tape_id = t.id AND b.status = 'confirmed')
             GROUP BY t.name HAVING MAX(h.started) < ?1 ORDER BY t.name",
        )?;
        let rows = stmt.query_map([cutoff.as_str()], |r| Ok(DueTape { tape: r.get(0)?, last: r.get(1)? }))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Tapes whose latest verification found a bad tape file and that no
    /// one acknowledged (`ack`); a later good sample, or a `requeue` of one
    /// of the tape's files after it, clears it.
    pub fn failed_verifications(&self) -> Result<Vec<FailedVerification>> {
        if !self.has_totals()? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT h.id, h.tape, COALESCE(h.target, ''), h.started, h.error FROM tapeop_history h
             WHERE h.kind = 'verify' AND h.outcome = 'failed'
               AND h.id = (SELECT MAX(id) FROM tapeop_history WHERE kind = 'verify' AND tape = h.tape)
               AND NOT EXISTS (SELECT 1 FROM tapeop_meta WHERE key = 'ack_history_' || h.id)
               AND NOT EXISTS (SELECT 1 FROM tapeop_history r WHERE r.kind = 'requeue' AND r.tape = h.tape AND r.id > h.id)
             ORDER BY h.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FailedVerification {
                history_id: r.get(0)?,
                tape: r.get(1)?,
                read: r.get(2)?,
                started: r.get(3)?,
                error: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
