//! Findings: the queries behind `check`'s conditions — recorded backups and
//! their age, requeued tape files, failed or unfinished archive and confirm
//! attempts that no one acknowledged, targets waiting for a tape or never
//! scanned, how full the open tapes are, and catalogue damage (sqlite's
//! integrity check, backups naming a missing target or tape, a tape file
//! number written twice, a target with several backups). Each returns typed
//! rows, streamed to a callback where there may be many. It also says which
//! history rows are alarms (`HistoryRef::is_alarm`, for `ack`).

use anyhow::Result;
use rusqlite::{Params, Row};

use super::file_number::{StoredFileNumber, tape_file_at};
use super::{BackupStatus, Catalog, HistoryRef, name_bytes};
use crate::tape_file::TapeFile;

/// A recorded (written, unconfirmed) backup and how long ago it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedBackup {
    /// backups row id.
    pub backup_id: i64,
    /// Tape name (`?` when the tape row is missing).
    pub tape: String,
    /// Tape file (none when unknown).
    pub file_number: Option<TapeFile>,
    /// Target name (empty when the target row is missing).
    pub target: Vec<u8>,
    /// When it was written (none for the old tool's backups).
    pub written_at: Option<String>,
    /// Days since it was written.
    pub age_days: Option<f64>,
}

/// A tape file given up by `requeue` whose target has no confirmed copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequeuedFile {
    /// Tape name (`?` when the tape row is missing).
    pub tape: String,
    /// Tape file (none when unknown).
    pub file_number: Option<TapeFile>,
    /// Target name (empty when the target row is missing).
    pub target: Vec<u8>,
    /// The target's id.
    pub target_id: Option<i64>,
    /// Where the target is now: `TAPE STATUS[ at file N]` of its newest
    /// backup that is not failed, if it has one.
    pub now: Option<String>,
}

/// One failed (or unfinished) attempt from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// `tapeop_history` id.
    pub id: i64,
    /// Tape name (empty when unknown).
    pub tape: String,
    /// Tape file (none when unknown).
    pub file_number: Option<TapeFile>,
    /// Target name.
    pub target: Vec<u8>,
    /// When it started.
    pub started: String,
    /// Whether it never ended (still `running`: live, or killed).
    pub running: bool,
    /// What went wrong.
    pub error: Option<String>,
    /// Status of the backup at that tape file now, if there is one.
    pub backup_status: Option<BackupStatus>,
}

/// A scanned target with no backup, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnassignedTarget {
    /// The target's id.
    pub id: i64,
    /// Target name.
    pub name: Vec<u8>,
    /// Sum of its files' `size_kb`.
    pub size_kb: i64,
}

/// A target that was never scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnscannedTarget {
    /// The target's id.
    pub id: i64,
    /// Target name.
    pub name: Vec<u8>,
}

/// An open tape (with tapeop's side row) and how much is written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTapeFill {
    /// Tape name.
    pub tape: String,
    /// Marked full.
    pub full: bool,
    /// Capacity in bytes, when known.
    pub capacity_bytes: Option<i64>,
    /// Bytes of its recorded and confirmed backups (du size where the
    /// written bytes are not known).
    pub written_bytes: i64,
}

/// A backup whose target row or tape row is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanBackup {
    /// backups row id.
    pub id: i64,
    /// The target id it names.
    pub target_id: Option<i64>,
    /// The tape id it names.
    pub tape_id: Option<i64>,
    /// Tape name, when the tape row exists.
    pub tape: Option<String>,
    /// Target name (empty when the target row is missing).
    pub target: Vec<u8>,
    /// Tape file number, as stored.
    pub file_number: StoredFileNumber,
    /// Status (none when NULL).
    pub status: Option<BackupStatus>,
}

/// A tape file number held by more than one written backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateFileNumber {
    /// The tape's id.
    pub tape_id: Option<i64>,
    /// Tape name (`?` when the tape row is missing).
    pub tape: String,
    /// Tape file number, as stored.
    pub file_number: StoredFileNumber,
    /// How many written backups claim it.
    pub backups: i64,
    /// Their ids, comma-separated.
    pub ids: String,
}

/// A target with more than one backup that is not failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipleBackups {
    /// The target's id.
    pub target_id: Option<i64>,
    /// Target name (empty when the target row is missing).
    pub target: Vec<u8>,
    /// How many backups.
    pub backups: i64,
    /// Their ids, comma-separated.
    pub ids: String,
}

impl HistoryRef {
    /// Whether this row is an alarm `check` may report and `ack` may
    /// acknowledge: an archive or confirm that did not end `ok`.
    pub fn is_alarm(&self) -> bool {
        matches!(self.kind.as_str(), "archive" | "confirm" | "verify") && self.outcome != "ok"
    }
}

/// A target name column (NULL when the target row is missing).
fn target_of(r: &Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(name_bytes(r.get_ref(i)?))
}

/// A status column (None when NULL).
fn status_of(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<BackupStatus>> {
    Ok(r.get::<_, Option<String>>(i)?.as_deref().map(BackupStatus::parse))
}

/// The queries behind `check`.
impl Catalog {
    /// Stream the rows of a query, each read by `read`, into `each`.
    fn each_finding<T>(
        &self,
        sql: &str,
        params: impl Params,
        read: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
        mut each: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params)?;
        while let Some(r) = rows.next()? {
            each(read(r)?)?;
        }
        Ok(())
    }

    /// Number of tapes and of targets.
    pub fn tape_and_target_counts(&self) -> Result<(i64, i64)> {
        Ok(self.conn.query_row("SELECT (SELECT COUNT(*) FROM tapes), (SELECT COUNT(*) FROM targets)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
    }

    /// Every recorded backup, by tape and file number, with its age (none
    /// without tapeop's side tables).
    pub fn each_recorded_backup(&self, each: impl FnMut(RecordedBackup) -> Result<()>) -> Result<()> {
        let side = self.has_totals()?;
        let (written, join) = if side {
            ("bi.written_at", "LEFT JOIN tapeop_backup_info bi ON bi.backup_id = b.id")
        } else {
            ("NULL", "")
        };
        let sql = format!(
            "SELECT b.id, COALESCE(tp.name, '?'), b.file_number, t.name, {written},
                    julianday('now') - julianday(substr({written}, 1, 19))
             FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id LEFT JOIN targets t ON t.id = b.target_id {join}
             WHERE b.status = 'recorded' ORDER BY tp.name, b.file_number"
        );
        let read = |r: &Row<'_>| {
            Ok(RecordedBackup {
                backup_id: r.get(0)?,
                tape: r.get(1)?,
                file_number: tape_file_at(r, 2)?,
                target: target_of(r, 3)?,
                written_at: r.get(4)?,
                age_days: r.get(5)?,
            })
        };
        self.each_finding(&sql, [], read, each)
    }

    /// Tape files given up by `requeue` (status `failed`) whose target has
    /// no confirmed copy yet, by tape and file number.
    pub fn each_requeued_file(&self, each: impl FnMut(RequeuedFile) -> Result<()>) -> Result<()> {
        let sql = "SELECT COALESCE(tp.name, '?'), b.file_number, t.name, b.target_id,
                      (SELECT COALESCE(p.name, '?') || ' ' || n.status || CASE WHEN n.file_number >= 0
                              THEN ' at file ' || n.file_number ELSE '' END
                       FROM backups n LEFT JOIN tapes p ON p.id = n.tape_id
                       WHERE n.target_id = b.target_id AND COALESCE(n.status, '') != 'failed' ORDER BY n.id DESC LIMIT 1)
               FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id LEFT JOIN targets t ON t.id = b.target_id
               WHERE b.status = 'failed' AND NOT EXISTS
                 (SELECT 1 FROM backups o WHERE o.target_id = b.target_id AND o.status = 'confirmed')
               ORDER BY tp.name, b.file_number";
        let read = |r: &Row<'_>| {
            Ok(RequeuedFile {
                tape: r.get(0)?,
                file_number: tape_file_at(r, 1)?,
                target: target_of(r, 2)?,
                target_id: r.get(3)?,
                now: r.get(4)?,
            })
        };
        self.each_finding(sql, [], read, each)
    }

    /// Tape files whose latest confirm failed, not acknowledged, and not
    /// followed by a successful confirm of the same target (none without
    /// the history table), by tape and file number.
    pub fn failed_confirm_attempts(&self) -> Result<Vec<FailedAttempt>> {
        self.failed_attempts("confirm", "tape, file_number", "'failed'", "'confirm'")
    }

    /// Tapes whose latest archive failed or never ended, not acknowledged,
    /// and not followed by a successful archive or confirm of the same
    /// target (none without the history table), by tape.
    pub fn failed_archive_attempts(&self) -> Result<Vec<FailedAttempt>> {
        self.failed_attempts("archive", "tape", "'failed', 'running'", "'archive', 'confirm'")
    }

    /// The id of the newest archive attempt (none without the history table).
    pub fn newest_archive_attempt(&self) -> Result<Option<i64>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self.conn.query_row("SELECT MAX(id) FROM tapeop_history WHERE kind = 'archive'", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?)
    }

    /// The latest history row of `kind` per `group`, when its outcome is one
    /// of `outcomes`, it is not acknowledged, and no later attempt of a kind
    /// in `cleared_by` succeeded for the same target.
    fn failed_attempts(&self, kind: &str, group: &str, outcomes: &str, cleared_by: &str) -> Result<Vec<FailedAttempt>> {
        let mut found = Vec::new();
        if !self.has_totals()? {
            return Ok(found);
        }
        let sql = format!(
            "SELECT h.id, h.tape, h.file_number, h.target, h.started, h.outcome, h.error,
                    (SELECT b.status FROM backups b JOIN tapes tp ON tp.id = b.tape_id WHERE tp.name = h.tape
                       AND b.file_number = h.file_number AND b.status IN ('recorded', 'confirmed', 'failed') LIMIT 1)
             FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY id DESC) AS latest
                   FROM tapeop_history WHERE kind = ?1) h
             WHERE h.latest = 1 AND h.outcome IN ({outcomes})
               AND NOT EXISTS (SELECT 1 FROM tapeop_meta m WHERE m.key = 'ack_history_' || h.id)
               AND NOT EXISTS (SELECT 1 FROM tapeop_history l WHERE l.id > h.id AND l.target = h.target
                               AND l.kind IN ({cleared_by}) AND l.outcome = 'ok')
             ORDER BY h.tape, h.file_number"
        );
        let read = |r: &Row<'_>| {
            Ok(FailedAttempt {
                id: r.get(0)?,
                tape: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                file_number: tape_file_at(r, 2)?,
                target: target_of(r, 3)?,
                started: r.get(4)?,
                running: r.get::<_, Option<String>>(5)?.as_deref() == Some("running"),
                error: r.get(6)?,
                backup_status: status_of(r, 7)?,
            })
        };
        self.each_finding(&sql, [kind], read, |a| {
            found.push(a);
            Ok(())
        })?;
        Ok(found)
    }

    /// Scanned targets with no backup that is not failed, by name.
    pub fn each_unassigned_target(&self, each: impl FnMut(UnassignedTarget) -> Result<()>) -> Result<()> {
        let sql = format!(
            "SELECT t.id, t.name, (SELECT COALESCE(SUM(f.size_kb), 0) FROM files f WHERE f.target_id = t.id)
               FROM targets t WHERE t.scanned = 1 AND {} ORDER BY t.name",
            self.lacks_some_copy("t.id")?
        );
        let read = |r: &Row<'_>| Ok(UnassignedTarget { id: r.get(0)?, name: target_of(r, 1)?, size_kb: r.get(2)? });
        self.each_finding(&sql, [], read, each)
    }

    /// Targets never scanned, by name.
    pub fn each_unscanned_target(&self, each: impl FnMut(UnscannedTarget) -> Result<()>) -> Result<()> {
        let sql = "SELECT id, name FROM targets WHERE COALESCE(scanned, 0) = 0 ORDER BY name";
        let read = |r: &Row<'_>| Ok(UnscannedTarget { id: r.get(0)?, name: target_of(r, 1)? });
        self.each_finding(sql, [], read, each)
    }

    /// Open tapes with tapeop's side row, by name, and what is written to
    /// them (none without the side tables).
    pub fn each_open_tape_fill(&self, each: impl FnMut(OpenTapeFill) -> Result<()>) -> Result<()> {
        if !self.has_totals()? {
            return Ok(());
        }
        let sql = format!(
            "SELECT tp.name, ti.full, ti.capacity_bytes,
                 (SELECT COALESCE(SUM(COALESCE(bi.bytes, tt.size_kb * 1024)), 0) FROM backups b
                  LEFT JOIN tapeop_backup_info bi ON bi.backup_id = b.id
                  LEFT JOIN {} tt ON tt.target_id = b.target_id
                  WHERE b.tape_id = tp.id AND b.status IN ('recorded', 'confirmed'))
               FROM tapes tp JOIN tapeop_tape_info ti ON ti.tape_id = tp.id
               WHERE tp.status = 'open' ORDER BY tp.name",
            self.totals_table()?
        );
        let read = |r: &Row<'_>| {
            Ok(OpenTapeFill {
                tape: r.get(0)?,
                full: r.get::<_, Option<i64>>(1)?.unwrap_or(0) != 0,
                capacity_bytes: r.get(2)?,
                written_bytes: r.get(3)?,
            })
        };
        self.each_finding(&sql, [], read, each)
    }

    /// `PRAGMA integrity_check`: every line that is not `ok`.
    pub fn each_integrity_error(&self, mut each: impl FnMut(String) -> Result<()>) -> Result<()> {
        let read = |r: &Row<'_>| r.get::<_, String>(0);
        self.each_finding("PRAGMA integrity_check", [], read, |line| if line != "ok" { each(line) } else { Ok(()) })
    }

    /// Backups whose target row is missing, by id.
    pub fn each_backup_missing_target(&self, each: impl FnMut(OrphanBackup) -> Result<()>) -> Result<()> {
        let sql = "SELECT b.id, b.target_id, tp.name, b.file_number, b.status FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id
               WHERE NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = b.target_id) ORDER BY b.id";
        let read = |r: &Row<'_>| {
            Ok(OrphanBackup {
                id: r.get(0)?,
                target_id: r.get(1)?,
                tape_id: None,
                tape: r.get(2)?,
                target: Vec::new(),
                file_number: StoredFileNumber::at(r, 3)?,
                status: status_of(r, 4)?,
            })
        };
        self.each_finding(sql, [], read, each)
    }

    /// Backups whose tape row is missing, by id.
    pub fn each_backup_missing_tape(&self, each: impl FnMut(OrphanBackup) -> Result<()>) -> Result<()> {
        let sql = "SELECT b.id, b.tape_id, t.name, b.file_number, b.status FROM backups b LEFT JOIN targets t ON t.id = b.target_id
               WHERE NOT EXISTS (SELECT 1 FROM tapes tp WHERE tp.id = b.tape_id) ORDER BY b.id";
        let read = |r: &Row<'_>| {
            Ok(OrphanBackup {
                id: r.get(0)?,
                target_id: None,
                tape_id: r.get(1)?,
                tape: None,
                target: target_of(r, 2)?,
                file_number: StoredFileNumber::at(r, 3)?,
                status: status_of(r, 4)?,
            })
        };
        self.each_finding(sql, [], read, each)
    }

    /// Tape file numbers held by more than one recorded or confirmed
    /// backup, by tape and file number.
    pub fn each_duplicate_file_number(&self, each: impl FnMut(DuplicateFileNumber) -> Result<()>) -> Result<()> {
        let sql = "SELECT b.tape_id, COALESCE(tp.name, '?'), b.file_number, COUNT(*), group_concat(b.id, ',')
               FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id
               WHERE b.status IN ('recorded', 'confirmed')
               GROUP BY b.tape_id, b.file_number HAVING COUNT(*) > 1 ORDER BY tp.name, b.file_number";
        let read = |r: &Row<'_>| {
            Ok(DuplicateFileNumber {
                tape_id: r.get(0)?,
                tape: r.get(1)?,
                file_number: StoredFileNumber::at(r, 2)?,
                backups: r.get(3)?,
                ids: r.get(4)?,
            })
        };
        self.each_finding(sql, [], read, each)
    }

    /// Targets with more than one backup that is not failed, by name.
    pub fn each_multiple_backups(&self, each: impl FnMut(MultipleBackups) -> Result<()>) -> Result<()> {
        let per_pool = self.counts_pools() && self.has_version(3)?;
        let (join, group) = if per_pool {
            ("LEFT JOIN tapeop_tape_pool p ON p.tape_id = b.tape_id", ", COALESCE(p.pool, 'default')")
        } else {
            ("", "")
        };
        let sql = format!(
            "SELECT b.target_id, t.name, COUNT(*), group_concat(b.id, ',') FROM backups b LEFT JOIN targets t ON t.id = b.target_id
               {join} WHERE COALESCE(b.status, '') != 'failed' GROUP BY b.target_id{group} HAVING COUNT(*) > 1 ORDER BY t.name"
        );
        let sql = sql.as_str();
        let read = |r: &Row<'_>| {
            Ok(MultipleBackups { target_id: r.get(0)?, target: target_of(r, 1)?, backups: r.get(2)?, ids: r.get(3)? })
        };
        self.each_finding(sql, [], read, each)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, outcome: &str) -> HistoryRef {
        HistoryRef {
            kind: kind.into(),
            tape: "T1".into(),
            file_number: Some(TapeFile::new(1)),
            target: "/d".into(),
            outcome: outcome.into(),
        }
    }

    #[test]
    fn alarms_are_archives_and_confirms_that_did_not_end_ok() {
        assert!(row("archive", "failed").is_alarm());
        assert!(row("archive", "running").is_alarm());
        assert!(row("confirm", "failed").is_alarm());
        assert!(!row("confirm", "ok").is_alarm());
        assert!(!row("restore", "failed").is_alarm());
        assert!(!row("ack", "ok").is_alarm());
    }
}
