//! The queries behind the operator reports: tapeop's marks of a tape
//! (`full`, capacity), the exact bytes of a target, what tapeop recorded of
//! a written backup, the `where_is` search (streamed, indexed for every form
//! but an absolute glob) and the rows of `tapeop_history` that `log` and
//! `backup_info` show. On a legacy catalogue (no tapeop tables) each answers
//! "nothing known".

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::file_number::{StoredFileNumber, tape_file_at};
use super::{BackupStatus, Catalog, name_bytes, name_value};
use crate::tape_file::TapeFile;

/// tapeop's marks of a tape (none on a legacy catalogue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapeMarks {
    /// tapeop marked the open tape full.
    pub full: bool,
    /// The capacity recorded for the tape, in bytes.
    pub capacity_bytes: Option<i64>,
}

/// What tapeop recorded when it wrote (and confirmed) a backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupExtra {
    /// Bytes written to the tape file.
    pub bytes: Option<i64>,
    /// The block size it was written with.
    pub block_size: Option<i64>,
    /// When it was written.
    pub written_at: Option<String>,
    /// When it was confirmed.
    pub confirmed_at: Option<String>,
}

/// One catalogue hit of `where_is`.
pub struct WhereIsHit {
    /// Tape name.
    pub tape: String,
    /// Tape file (none while assigned).
    pub file_number: Option<TapeFile>,
    /// Backup status.
    pub status: BackupStatus,
    /// md5 (or `symlink`, `directory`).
    pub md5: String,
    /// The target directory.
    pub target: Vec<u8>,
    /// The name relative to the target.
    pub name: Vec<u8>,
}

/// One row of `tapeop_history`: an archive, confirm or restore attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// Row id (increases with time).
    pub id: i64,
    /// `archive`, `confirm`, `restore`, ...
    pub kind: String,
    /// Tape name.
    pub tape: Option<String>,
    /// Tape file number, as stored.
    pub file_number: StoredFileNumber,
    /// Target directory.
    pub target: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub started: String,
    /// `YYYY-MM-DD HH:MM:SS UTC`, None while running (or after a crash).
    pub ended: Option<String>,
    /// Bytes moved.
    pub bytes: Option<i64>,
    /// `running`, `ok`, `failed`, `tape full`, ...
    pub outcome: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Whole seconds from `started` to `ended`.
    pub seconds: Option<i64>,
    /// Bytes the drive moved for it (st statistics), when recorded.
    pub drive_bytes: Option<i64>,
    /// The drive's I/O nanoseconds for it, when recorded.
    pub drive_io_ns: Option<i64>,
    /// Recovered errors the drive reported during it, when recorded.
    pub drive_errors: Option<i64>,
    /// Milliseconds from start to end, by tapeop's own clock (schema 4).
    pub elapsed_ms: Option<i64>,
}

impl HistoryRow {
    pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRow> {
        Ok(HistoryRow {
            id: r.get(0)?,
            kind: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            tape: r.get(2)?,
            file_number: StoredFileNumber::at(r, 3)?,
            target: r.get(4)?,
            started: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            ended: r.get(6)?,
            bytes: r.get(7)?,
            outcome: r.get(8)?,
            error: r.get(9)?,
            seconds: r.get(10)?,
            drive_bytes: r.get(11)?,
            drive_io_ns: r.get(12)?,
            drive_errors: r.get(13)?,
            elapsed_ms: r.get(14)?,
        })
    }
}

/// The history columns (followed by the drive figures of `drive_io`), plus the seconds between `started` and `ended`
/// (NULL unless both are readable timestamps).
pub(super) const HISTORY_COLUMNS: &str = "id, kind, tape, file_number, target, started, ended, bytes, outcome, error,
    CAST(strftime('%s', substr(ended, 1, 19)) AS INTEGER) - CAST(strftime('%s', substr(started, 1, 19)) AS INTEGER)";

/// A file of a target, on a tape file: the columns of a `where_is` hit.
const WHERE_IS_SELECT: &str = "SELECT tp.name, b.file_number, b.status, f.md5sum, t.name, f.name
     FROM files f JOIN targets t ON t.id = f.target_id
     JOIN backups b ON b.target_id = f.target_id JOIN tapes tp ON tp.id = b.tape_id";

fn hit_from_row(r: &rusqlite::Row<'_>) -> Result<WhereIsHit> {
    Ok(WhereIsHit {
        tape: r.get(0)?,
        file_number: tape_file_at(r, 1)?,
        status: BackupStatus::parse(&r.get::<_, Option<String>>(2)?.unwrap_or_default()),
        md5: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        target: name_bytes(r.get_ref(4)?),
        name: name_bytes(r.get_ref(5)?),
    })
}

/// Reports: tape marks, exact sizes, backup records, `where_is`, history.
impl Catalog {
    /// Whether tapeop marked the tape full (false on a legacy catalogue, or
    /// when nothing is recorded for it).
    pub fn marked_full(&self, tape_id: i64) -> Result<bool> {
        if !self.has_totals()? {
            return Ok(false);
        }
        let full: Option<i64> =
            self.conn().query_row("SELECT full FROM tapeop_tape_info WHERE tape_id = ?1", [tape_id], |r| r.get(0)).ok();
        Ok(full == Some(1))
    }

    /// tapeop's marks of a tape: full, capacity; none on a legacy catalogue.
    pub fn tape_marks(&self, tape_id: i64) -> Result<TapeMarks> {
        if !self.has_totals()? {
            return Ok(TapeMarks::default());
        }
        let row = self
            .conn()
            .query_row("SELECT full, capacity_bytes FROM tapeop_tape_info WHERE tape_id = ?1", [tape_id], |r| {
                Ok(TapeMarks {
                    full: r.get::<_, Option<i64>>(0)?.unwrap_or(0) != 0,
                    capacity_bytes: r.get::<_, Option<i64>>(1)?,
                })
            })
            .optional()?;
        Ok(row.unwrap_or_default())
    }

    /// The exact bytes of a target's files as tapeop scanned them (None on
    /// a legacy catalogue, or when no file of it has an exact size).
    pub fn target_exact_bytes(&self, target_id: i64) -> Result<Option<i64>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self.conn().query_row(
            "SELECT SUM(i.size_bytes) FROM files f JOIN tapeop_file_info i ON i.file_id = f.id WHERE f.target_id = ?1",
            [target_id],
            |r| r.get(0),
        )?)
    }

    /// What tapeop recorded of writing backup `backup_id`, if anything.
    pub fn backup_extra(&self, backup_id: i64) -> Result<Option<BackupExtra>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT bytes, block_size, written_at, confirmed_at FROM tapeop_backup_info WHERE backup_id = ?1",
                [backup_id],
                |r| {
                    Ok(BackupExtra {
                        bytes: r.get(0)?,
                        block_size: r.get(1)?,
                        written_at: r.get(2)?,
                        confirmed_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Stream every hit for `query`: a name relative to its target (exact,
    /// as the old tool), an absolute path (the target that holds it, then
    /// the name), or a glob with `*`, `?` or `[...]` (relative names; an
    /// absolute glob matches whole paths). Every form but an absolute glob
    /// uses an index.
    pub fn each_where_is(&self, query: &[u8], mut each: impl FnMut(WhereIsHit) -> Result<()>) -> Result<()> {
        let glob = query.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
        let absolute = query.starts_with(b"/");
        let filter = match (absolute, glob) {
            (false, false) => "f.name = ?1",
            (false, true) => "f.name GLOB ?1",
            (true, true) => "(t.name || '/' || f.name) GLOB ?1",
            (true, false) => return self.each_at_path(query, each),
        };
        let sql = format!("{WHERE_IS_SELECT} WHERE {filter} ORDER BY b.id");
        let mut stmt = self.conn().prepare(&sql)?;
        let mut rows = stmt.query([name_value(query)])?;
        while let Some(r) = rows.next()? {
            each(hit_from_row(r)?)?;
        }
        Ok(())
    }

    /// Hits for an absolute path: each ancestor directory that is a target,
    /// with the rest of the path as the relative name.
    fn each_at_path(&self, path: &[u8], mut each: impl FnMut(WhereIsHit) -> Result<()>) -> Result<()> {
        let sql = format!("{WHERE_IS_SELECT} WHERE t.name = ?1 AND f.name = ?2 ORDER BY b.id");
        let mut stmt = self.conn().prepare(&sql)?;
        for (i, _) in path.iter().enumerate().filter(|(i, c)| **c == b'/' && *i > 0) {
            let (target, rel) = (&path[..i], &path[i + 1..]);
            let mut rows = stmt.query(params![name_value(target), name_value(rel)])?;
            while let Some(r) = rows.next()? {
                each(hit_from_row(r)?)?;
            }
        }
        Ok(())
    }

    /// History rows of one tape file, oldest first (none on a legacy
    /// catalogue).
    pub fn history_of_tape_file(&self, tape: &str, file_number: TapeFile) -> Result<Vec<HistoryRow>> {
        if !self.has_totals()? {
            return Ok(Vec::new());
        }
        let (drive, join) = self.drive_io_columns()?;
        let sql = format!(
            "SELECT {HISTORY_COLUMNS}, {drive} FROM tapeop_history {join} WHERE tape = ?1 AND file_number = ?2 ORDER BY id"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(params![tape, file_number], HistoryRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest `limit` history rows (0: all), of one tape or all, oldest
    /// first (none on a legacy catalogue).
    pub fn history_tail(&self, tape: Option<&str>, limit: u32) -> Result<Vec<HistoryRow>> {
        if !self.has_totals()? {
            return Ok(Vec::new());
        }
        let (drive, join) = self.drive_io_columns()?;
        let sql = format!(
            "SELECT * FROM (SELECT {HISTORY_COLUMNS}, {drive} FROM tapeop_history {join} WHERE ?1 IS NULL OR tape = ?1
         ORDER BY id DESC LIMIT ?2) ORDER BY id"
        );
        let limit = if limit == 0 { -1 } else { i64::from(limit) };
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(params![tape, limit], HistoryRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
