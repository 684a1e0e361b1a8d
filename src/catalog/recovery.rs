//! Recovery: what `scan_tape` writes when it records a tape the catalogue
//! lost (`--record-as`) or adopts the lost tape files of a known tape
//! (`--adopt`) — a `closed`, offline tape, targets marked scanned (linked
//! into the parent tree by `tree`), their files, and `recorded` backups with
//! their bytes, one transaction per tape file — plus the lookups `restore`
//! uses to find a target's best backup and the mark `archive` sets when a
//! tape is full.

use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, Transaction, params};

use super::file_number::tape_file_at;
use super::{BackupStatus, Catalog, Tape, name_value};
use crate::tape_file::TapeFile;

/// One catalogue file row made from the tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Name relative to the target.
    pub name: Vec<u8>,
    /// md5 sum, or `symlink` / `directory`.
    pub md5: String,
    /// Size in bytes.
    pub size: u64,
    /// A symlink's target.
    pub link: Option<Vec<u8>>,
}

/// A backup of a target, with its tape's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetBackup {
    /// Backup id.
    pub id: i64,
    /// Tape id.
    pub tape_id: i64,
    /// Tape name.
    pub tape: String,
    /// Tape file (none while assigned).
    pub file_number: Option<TapeFile>,
    /// Its status.
    pub status: BackupStatus,
}

/// The backup a restore reads a target from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSource {
    /// Tape id.
    pub tape_id: i64,
    /// Tape file (none while assigned).
    pub file_number: Option<TapeFile>,
    /// Its status.
    pub status: BackupStatus,
}

/// An open transaction on the catalogue: dropped without `commit`, it rolls
/// back. The `Catalog` methods run inside it while it is open.
pub struct Recovery<'a>(Transaction<'a>);

impl Recovery<'_> {
    /// Commit everything done since `begin`.
    pub fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }
}

impl Catalog {
    /// Begin one transaction (one tape file's target, files and backup).
    pub fn begin_recovery(&self) -> Result<Recovery<'_>> {
        Ok(Recovery(self.conn.unchecked_transaction()?))
    }

    /// The id of the target named `name`, if the catalogue has it.
    pub fn target_id_by_name(&self, name: &[u8]) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT id FROM targets WHERE name = ?1", [name_value(name)], |r| r.get(0))
            .optional()?)
    }

    /// How many files target `id` has in the catalogue.
    pub fn target_file_count(&self, id: i64) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM files WHERE target_id = ?1", [id], |r| r.get(0))?)
    }

    /// Mark target `id` as scanned (its files came from a scan or a tape).
    pub fn mark_target_scanned(&self, id: i64) -> Result<()> {
        self.conn.execute("UPDATE targets SET scanned = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every backup of target `id`, oldest first, with its tape's name.
    pub fn backups_with_tapes(&self, id: i64) -> Result<Vec<TargetBackup>> {
        let mut stmt = self.conn.prepare(
            "SELECT b.id, b.tape_id, t.name, b.file_number, COALESCE(b.status, '') FROM backups b
             JOIN tapes t ON t.id = b.tape_id WHERE b.target_id = ?1 ORDER BY b.id",
        )?;
        let rows = stmt.query_map([id], backup_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The oldest backup of target `id`, with its tape's name.
    pub fn first_backup_with_tape(&self, id: i64) -> Result<Option<TargetBackup>> {
        Ok(self
            .conn
            .query_row(
                "SELECT b.id, b.tape_id, t.name, b.file_number, COALESCE(b.status, '') FROM backups b
                 JOIN tapes t ON t.id = b.tape_id WHERE b.target_id = ?1 ORDER BY b.id LIMIT 1",
                [id],
                backup_row,
            )
            .optional()?)
    }

    /// Turn assigned backup `id` into the `recorded` one at file `n`.
    pub fn record_assigned(&self, id: i64, n: TapeFile) -> Result<()> {
        self.conn.execute(
            "UPDATE backups SET status = 'recorded', file_number = ?2 WHERE id = ?1 AND status = 'assigned'",
            params![id, n],
        )?;
        Ok(())
    }

    /// Add a `recorded` backup of `target_id` at file `n` of `tape`; its id.
    pub fn add_recorded_backup(&self, target_id: i64, tape: &Tape, n: TapeFile) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO backups (target_id, tape_id, file_number, status) VALUES (?1, ?2, ?3, 'recorded')",
            params![target_id, tape.id, n],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Store the bytes of backup `id`'s tape file (`replace`: over any row
    /// it has).
    pub fn set_backup_bytes(&self, id: i64, bytes: u64, replace: bool) -> Result<()> {
        let sql = if replace {
            "INSERT OR REPLACE INTO tapeop_backup_info (backup_id, bytes) VALUES (?1, ?2)"
        } else {
            "INSERT INTO tapeop_backup_info (backup_id, bytes) VALUES (?1, ?2)"
        };
        self.conn.execute(sql, params![id, bytes as i64])?;
        Ok(())
    }

    /// Whether a tape already has `serial`.
    pub fn serial_taken(&self, serial: &str) -> Result<bool> {
        Ok(self.conn.query_row("SELECT EXISTS (SELECT 1 FROM tapes WHERE serial = ?1)", [serial], |r| r.get(0))?)
    }

    /// Create tape `name`, closed and offline, with `serial` and the
    /// catalogue id from its label, in one transaction.
    pub fn create_recorded_tape(&self, name: &str, serial: Option<&str>, label: Option<&str>) -> Result<Tape> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO tapes (name, serial, status, online) VALUES (?1, ?2, 'closed', 0)",
            params![name, serial],
        )?;
        if let Some(catalogue) = label {
            tx.execute(
                "INSERT INTO tapeop_tape_info (tape_id, label) VALUES (?1, ?2)",
                params![tx.last_insert_rowid(), catalogue],
            )?;
        }
        tx.commit().with_context(|| format!("recording tape \"{name}\""))?;
        self.require_tape(name)
    }

    /// Insert the files of target `target_id` (a bulk load: the totals are
    /// brought up to date at the end).
    pub fn add_scanned_files(&self, target_id: i64, rows: &[NewFile]) -> Result<()> {
        Catalog::begin_bulk(&self.conn)?;
        {
            let mut ins =
                self.conn.prepare("INSERT INTO files (target_id, name, md5sum, size_kb) VALUES (?1, ?2, ?3, ?4)")?;
            let mut info = self.conn.prepare(
                "INSERT OR REPLACE INTO tapeop_file_info (file_id, size_bytes, link_target) VALUES (?1, ?2, ?3)",
            )?;
            for f in rows {
                ins.execute(params![target_id, name_value(&f.name), f.md5, f.size.div_ceil(1024) as i64])?;
                info.execute(params![self.conn.last_insert_rowid(), f.size as i64, f.link])?;
            }
        }
        Catalog::end_bulk(&self.conn, &[target_id])
    }

    /// The backup to restore target `target_id` from: confirmed first, then
    /// recorded, then any; the oldest of those.
    pub fn restore_source(&self, target_id: i64) -> Result<Option<RestoreSource>> {
        let row: Option<(i64, Option<TapeFile>, String)> = self
            .conn
            .query_row(
                "SELECT tape_id, file_number, COALESCE(status, '') FROM backups WHERE target_id = ?1
                 ORDER BY CASE status WHEN 'confirmed' THEN 0 WHEN 'recorded' THEN 1 ELSE 2 END, id LIMIT 1",
                [target_id],
                |r| Ok((r.get(0)?, tape_file_at(r, 1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.map(|(tape_id, file_number, status)| RestoreSource {
            tape_id,
            file_number,
            status: BackupStatus::parse(&status),
        }))
    }

    /// Every copy of target `target_id` that is on tape (recorded or
    /// confirmed, with a tape file): confirmed first, then by age.
    pub fn restore_sources(&self, target_id: i64) -> Result<Vec<RestoreSource>> {
        let mut stmt = self.conn.prepare(
            "SELECT tape_id, file_number, status FROM backups WHERE target_id = ?1
             AND status IN ('confirmed', 'recorded') AND file_number >= 0
             ORDER BY CASE status WHEN 'confirmed' THEN 0 ELSE 1 END, id",
        )?;
        let rows = stmt.query_map([target_id], |r| {
            Ok(RestoreSource {
                tape_id: r.get(0)?,
                file_number: tape_file_at(r, 1)?,
                status: BackupStatus::parse(&r.get::<_, String>(2)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Mark `tape` full (it reached its end while writing).
    pub fn mark_tape_full(&self, tape: &Tape) -> Result<()> {
        self.conn.execute(
            "INSERT INTO tapeop_tape_info (tape_id, full) VALUES (?1, 1) ON CONFLICT(tape_id) DO UPDATE SET full = 1",
            [tape.id],
        )?;
        Ok(())
    }
}

fn backup_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TargetBackup> {
    let status: String = r.get(4)?;
    Ok(TargetBackup {
        id: r.get(0)?,
        tape_id: r.get(1)?,
        tape: r.get(2)?,
        file_number: tape_file_at(r, 3)?,
        status: BackupStatus::parse(&status),
    })
}
