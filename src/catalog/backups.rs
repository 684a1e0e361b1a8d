//! Backups: a target's place on a tape file and its status, assigning
//! targets to tapes, recording and confirming them, the per-tape summaries,
//! and capacity and space estimates.

use anyhow::{Context, Result, bail};
use rusqlite::{OptionalExtension, params};

use super::file_number::{NO_TAPE_FILE, legacy_file_number, tape_file_at};
use super::{Catalog, Tape, name_bytes, now_text, show};
use crate::tape_file::TapeFile;

/// The `tapeop_meta` key of the tape capacity measured when a target did
/// not fit on a whole blank tape (bytes, as text).
const MEASURED_CAPACITY: &str = "measured_tape_capacity";

/// GNU tar's record with `-b 512`: its output is a whole number of these.
const TAR_RECORD: i64 = 512 * 512;
/// The most a label tape file's tar takes before padding to a record
/// (header, a text of at most about 600 bytes, end of archive).
pub const LABEL_TAR_BYTES: u64 = 3 * 1024;

/// What a filemark is counted as in capacity estimates: one record of
/// `block` bytes (a filemark makes the drive flush its buffer; LTO drives
/// then pad the data set, so it costs tape even though it holds no data).
pub fn filemark_estimate(block: usize) -> i64 {
    block as i64
}

/// What the label (tape file 0) takes: its tar in whole `block`-byte
/// records plus its filemark.
pub fn label_estimate(block: usize) -> i64 {
    let block = block.max(1) as i64;
    round_up(LABEL_TAR_BYTES as i64, block) + filemark_estimate(block as usize)
}

/// `n` rounded up to a whole number of `unit`s.
fn round_up(n: i64, unit: i64) -> i64 {
    (n + unit - 1) / unit * unit
}

/// Bytes of a target's name as tar's member names start: without its `/`.
fn name_len_of(target: &[u8]) -> i64 {
    target.strip_prefix(b"/").unwrap_or(target).len() as i64
}

/// One backup of a tape, with its target's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// backups row id.
    pub id: i64,
    /// The target's id.
    pub target_id: i64,
    /// The target's directory (raw bytes).
    pub target: Vec<u8>,
    /// Tape file (none while assigned).
    pub file_number: Option<TapeFile>,
    /// `assigned`, `recorded`, `confirmed` (or legacy `new`), or `failed`:
    /// a tape file that failed confirm and whose target was requeued.
    pub status: BackupStatus,
    /// Number of file rows of the target.
    pub file_count: i64,
    /// Sum of the target's `size_kb`.
    pub size_kb: i64,
}

impl Backup {
    /// Its tape file, which every written backup has; an error naming the
    /// backup when the catalogue holds none (an assigned or damaged row).
    pub fn tape_file(&self) -> Result<TapeFile> {
        self.file_number.with_context(|| {
            format!(
                "backup {} ({}, {}) has no tape file number in the catalogue: tapeop check lists damaged rows",
                self.id,
                show(&self.target),
                self.status.as_str()
            )
        })
    }
}

/// Where a target's current backup is: `(tape, file number, status)`.
pub type CurrentBackup = (String, Option<TapeFile>, BackupStatus);

/// A count and a size in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// How many.
    pub count: i64,
    /// Sum of `size_kb`.
    pub size_kb: i64,
}

/// A backup's status. The catalogue keeps it as the old tool's text in
/// `backups.status`; it is parsed here and nowhere else. A string neither
/// tool writes (or a NULL, read as "") is kept verbatim as `Other`, shown as
/// it is and matching no other status: reading a catalogue never fails on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupStatus {
    /// `assigned`: waiting to be archived to its tape (no tape file yet).
    Assigned,
    /// `recorded`: written to its tape file, not yet confirmed.
    Recorded,
    /// `confirmed`: its tape file was read back and matched the catalogue.
    Confirmed,
    /// `failed`: its tape file failed confirm and its target was requeued.
    Failed,
    /// `new`: the old tool's status of a backup not yet assigned a place.
    New,
    /// Any other string, kept as it was read.
    Other(String),
}

impl BackupStatus {
    /// The status as read from `backups.status`.
    pub fn parse(s: &str) -> BackupStatus {
        match s {
            "assigned" => BackupStatus::Assigned,
            "recorded" => BackupStatus::Recorded,
            "confirmed" => BackupStatus::Confirmed,
            "failed" => BackupStatus::Failed,
            "new" => BackupStatus::New,
            other => BackupStatus::Other(other.to_string()),
        }
    }

    /// The status as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            BackupStatus::Assigned => "assigned",
            BackupStatus::Recorded => "recorded",
            BackupStatus::Confirmed => "confirmed",
            BackupStatus::Failed => "failed",
            BackupStatus::New => "new",
            BackupStatus::Other(s) => s,
        }
    }

    /// Recorded or confirmed: a good copy may be read from its tape file.
    pub fn is_on_tape(&self) -> bool {
        matches!(self, BackupStatus::Recorded | BackupStatus::Confirmed)
    }
}

impl std::fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Catalog {
    // ---- summaries ----

    fn totals_join(&self) -> Result<String> {
        Ok(format!("LEFT JOIN {} tt ON tt.target_id = b.target_id", self.totals_table()?))
    }

    /// The size in KiB of backup `b`'s target, for a sum over backups: the
    /// kept totals (joined by [`Catalog::backup_totals_join`]), or, before
    /// tapeop first wrote to a legacy catalogue, the old tool's way: a sum
    /// over that target's rows only (through the `file_on_target` unique
    /// index), so a report costs the files of the tape it reports, not the
    /// whole `files` table, and writes nothing.
    fn backup_size_kb(&self) -> Result<String> {
        Ok(if self.has_totals()? { "tt.size_kb".into() } else { legacy_size_kb("b.target_id") })
    }

    /// The join [`Catalog::backup_size_kb`] needs: the totals, or nothing.
    fn backup_totals_join(&self) -> Result<String> {
        if self.has_totals()? { self.totals_join() } else { Ok(String::new()) }
    }

    /// Count and size of a tape's backups in each status.
    pub fn tape_tally(&self, tape_id: i64, status: &BackupStatus) -> Result<Tally> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM({}), 0) FROM backups b {} WHERE b.tape_id = ?1 AND b.status = ?2",
            self.backup_size_kb()?,
            self.backup_totals_join()?
        );
        Ok(self.conn.query_row(&sql, params![tape_id, status.as_str()], |r| {
            Ok(Tally { count: r.get(0)?, size_kb: r.get(1)? })
        })?)
    }

    /// Size written to a tape (recorded + confirmed), in KiB.
    pub fn tape_written_kb(&self, tape_id: i64) -> Result<i64> {
        let sql = format!(
            "SELECT COALESCE(SUM({}), 0) FROM backups b {} WHERE b.tape_id = ?1 AND b.status IN ('recorded', 'confirmed')",
            self.backup_size_kb()?,
            self.backup_totals_join()?
        );
        Ok(self.conn.query_row(&sql, [tape_id], |r| r.get(0))?)
    }

    /// Targets that are scanned and lack a copy (without `copy_pools`: have
    /// no backup; with it: in some listed pool): count and size.
    pub fn unassigned_tally(&self) -> Result<Tally> {
        let filter = format!("t.scanned = 1 AND {}", self.lacks_some_copy("t.id")?);
        self.unassigned_tally_where(&filter)
    }

    /// Targets that are scanned and have no copy in `pool`: count and size.
    pub fn unassigned_tally_in(&self, pool: &str) -> Result<Tally> {
        let filter = format!("t.scanned = 1 AND {}", self.lacks_copy_in("t.id", Some(pool))?);
        self.unassigned_tally_where(&filter)
    }

    fn unassigned_tally_where(&self, filter: &str) -> Result<Tally> {
        let sql = if self.has_totals()? {
            let join = self.totals_join()?.replace("b.target_id", "t.id");
            format!("SELECT COUNT(*), COALESCE(SUM(tt.size_kb), 0) FROM targets t {join} WHERE {filter}")
        } else {
            format!("SELECT COUNT(*), COALESCE(SUM({}), 0) FROM targets t WHERE {filter}", legacy_size_kb("t.id"))
        };
        Ok(self.conn.query_row(&sql, [], |r| Ok(Tally { count: r.get(0)?, size_kb: r.get(1)? }))?)
    }

    /// How many targets are scanned and lack a copy (no sizes: instant
    /// on any catalogue).
    pub fn unassigned_count(&self) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM targets t WHERE t.scanned = 1 AND {}", self.lacks_some_copy("t.id")?);
        Ok(self.conn.query_row(&sql, [], |r| r.get(0))?)
    }

    /// Ids of targets lacking a copy (in some pool, with `copy_pools`), by name.
    pub fn unassigned_targets(&self) -> Result<Vec<i64>> {
        let sql = format!(
            "SELECT t.id FROM targets t WHERE t.scanned = 1 AND {} ORDER BY t.name",
            self.lacks_some_copy("t.id")?
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Ids of the targets `tape` would take, by name: those lacking a copy
    /// in its pool (without `copy_pools`: those with no backup).
    pub fn unassigned_for(&self, tape: &Tape) -> Result<Vec<i64>> {
        let pool = self.copy_pool_of(tape)?;
        let sql = format!(
            "SELECT t.id FROM targets t WHERE t.scanned = 1 AND {} ORDER BY t.name",
            self.lacks_copy_in("t.id", pool.as_deref())?
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Runs of consecutive file numbers with the same status on a tape
    /// (recorded or confirmed), streamed in order: (first, last, status).
    pub fn layout(&self, tape_id: i64, mut each: impl FnMut(TapeFile, TapeFile, &str)) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT file_number, status FROM backups WHERE tape_id = ?1 AND status IN ('recorded','confirmed','failed')
             ORDER BY file_number",
        )?;
        let mut rows = stmt.query([tape_id])?;
        let mut run: Option<(TapeFile, TapeFile, String)> = None;
        while let Some(r) = rows.next()? {
            let (Some(n), s): (Option<TapeFile>, String) = (tape_file_at(r, 0)?, r.get(1)?) else { continue };
            match &mut run {
                Some((_, last, status)) if *status == s && last.next() == n => *last = n,
                _ => {
                    if let Some((a, b, st)) = run.take() {
                        each(a, b, &st);
                    }
                    run = Some((n, n, s));
                }
            }
        }
        if let Some((a, b, st)) = run {
            each(a, b, &st);
        }
        Ok(())
    }

    // ---- backups ----

    fn backup_query(&self, filter: &str) -> Result<String> {
        let (count, size) = if self.has_totals()? {
            ("tt.file_count".to_string(), "tt.size_kb".to_string())
        } else {
            (legacy_file_count("b.target_id"), legacy_size_kb("b.target_id"))
        };
        Ok(format!(
            "SELECT b.id, b.target_id, t.name, b.file_number, b.status, COALESCE({count}, 0), COALESCE({size}, 0)
             FROM backups b JOIN targets t ON t.id = b.target_id {} WHERE {filter}",
            self.backup_totals_join()?
        ))
    }

    fn backup_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Backup> {
        Ok(Backup {
            id: r.get(0)?,
            target_id: r.get(1)?,
            target: name_bytes(r.get_ref(2)?),
            file_number: tape_file_at(r, 3)?,
            status: BackupStatus::parse(&r.get::<_, Option<String>>(4)?.unwrap_or_default()),
            file_count: r.get(5)?,
            size_kb: r.get(6)?,
        })
    }

    /// Backups of a tape on tape (recorded, confirmed, or failed and
    /// requeued), by file number; only `file_number` when given.
    pub fn written_backups(&self, tape_id: i64, file_number: Option<TapeFile>) -> Result<Vec<Backup>> {
        let sql = self.backup_query(
            "b.tape_id = ?1 AND b.status IN ('recorded','confirmed','failed') AND (?2 IS NULL OR b.file_number = ?2)
             ORDER BY b.file_number",
        )?;
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![tape_id, file_number], Self::backup_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Backups of a tape in `status`, ordered by target name (assigned) or
    /// file number (written).
    pub fn backups_with_status(&self, tape_id: i64, status: &BackupStatus) -> Result<Vec<Backup>> {
        let order = if *status == BackupStatus::Assigned { "t.name" } else { "b.file_number" };
        let sql = self.backup_query(&format!("b.tape_id = ?1 AND b.status = ?2 ORDER BY {order}"))?;
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![tape_id, status.as_str()], Self::backup_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The backup at `file_number` of a tape, whatever its status.
    pub fn backup_at(&self, tape_id: i64, file_number: TapeFile) -> Result<Option<Backup>> {
        let sql = self.backup_query("b.tape_id = ?1 AND b.file_number = ?2 ORDER BY b.id LIMIT 1")?;
        Ok(self.conn.query_row(&sql, params![tape_id, file_number], Self::backup_from_row).optional()?)
    }

    /// The next free tape file number of a tape (highest written + 1).
    pub fn append_point(&self, tape_id: i64) -> Result<TapeFile> {
        let last = self.conn.query_row(
            "SELECT MAX(file_number) FROM backups WHERE tape_id = ?1 AND status IN ('recorded','confirmed','failed')",
            [tape_id],
            |r| tape_file_at(r, 0),
        )?;
        Ok(last.map_or(TapeFile::LABEL, TapeFile::next))
    }

    /// Give every target of `target_ids` that lacks a copy in `tape`'s pool
    /// (without `copy_pools`: has no backup) an `assigned` backup on `tape`.
    pub fn assign(&self, tape: &Tape, target_ids: &[i64]) -> Result<usize> {
        self.writable()?;
        let sql = self.assign_sql(tape)?;
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare(&sql)?;
            for id in target_ids {
                stmt.execute(params![id, tape.id, NO_TAPE_FILE])?;
                crate::fault::point("assign-mid");
            }
        }
        tx.commit()?;
        Ok(target_ids.len())
    }

    /// The insert of an `assigned` backup of target ?1 on tape ?2, unless
    /// the target has its copy in the tape's pool already.
    fn assign_sql(&self, tape: &Tape) -> Result<String> {
        let pool = self.copy_pool_of(tape)?;
        Ok(format!(
            "INSERT INTO backups (target_id, tape_id, file_number, status) SELECT ?1, ?2, ?3, 'assigned'
             WHERE NOT EXISTS (SELECT 1 {} AND b.target_id = ?1)",
            self.copies_in(pool.as_deref())?
        ))
    }

    /// Assign one target lacking a copy in `tape`'s pool to `tape`, unless
    /// another run took it first (one statement: sqlite decides between
    /// concurrent runs). Returns whether this run got it.
    pub fn assign_one(&self, tape: &Tape, target_id: i64) -> Result<bool> {
        self.writable()?;
        let n = self.conn.execute(&self.assign_sql(tape)?, params![target_id, tape.id, NO_TAPE_FILE])?;
        Ok(n == 1)
    }

    /// Put the targets assigned to `tape` back in the unassigned pool (a
    /// library run does so when the tape fills). Returns how many.
    pub fn release_assigned(&self, tape: &Tape) -> Result<usize> {
        self.writable()?;
        Ok(self.conn.execute("DELETE FROM backups WHERE tape_id = ?1 AND status = 'assigned'", [tape.id])?)
    }

    /// Mark an assigned backup as recorded at `file_number`.
    pub fn mark_recorded(&self, backup_id: i64, file_number: TapeFile, bytes: u64, block_size: usize) -> Result<()> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let n = tx.execute(
            "UPDATE backups SET status = 'recorded', file_number = ?2 WHERE id = ?1 AND status = 'assigned'",
            params![backup_id, file_number],
        )?;
        if n != 1 {
            bail!("backup {backup_id} is no longer assigned; the catalogue changed under this archive");
        }
        tx.execute(
            "INSERT OR REPLACE INTO tapeop_backup_info (backup_id, bytes, block_size, written_at) VALUES (?1, ?2, ?3, ?4)",
            params![backup_id, bytes as i64, block_size as i64, now_text()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Mark a recorded backup as confirmed.
    pub fn mark_confirmed(&self, backup_id: i64) -> Result<()> {
        self.writable()?;
        crate::fault::point("confirm-before-mark");
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("UPDATE backups SET status = 'confirmed' WHERE id = ?1", [backup_id])?;
        tx.execute(
            "INSERT INTO tapeop_backup_info (backup_id, confirmed_at) VALUES (?1, ?2)
             ON CONFLICT(backup_id) DO UPDATE SET confirmed_at = excluded.confirmed_at",
            params![backup_id, now_text()],
        )?;
        tx.commit()?;
        Ok(())
    }

    // ---- capacity ----

    /// Set a tape's capacity in bytes.
    pub fn set_capacity(&self, tape: &Tape, bytes: u64) -> Result<()> {
        self.writable()?;
        self.conn.execute(
            "INSERT INTO tapeop_tape_info (tape_id, capacity_bytes) VALUES (?1, ?2)
             ON CONFLICT(tape_id) DO UPDATE SET capacity_bytes = excluded.capacity_bytes",
            params![tape.id, bytes as i64],
        )?;
        Ok(())
    }

    /// Estimated bytes a target takes on tape written in `block` -byte
    /// records, as `archive` writes it: GNU tar's stream (a 512-byte header
    /// per member — the target directory too — and a long-name header plus
    /// the name for names or link targets of 100 bytes or more; each file's
    /// data padded to 512; two zero blocks at the end; the whole padded to
    /// tar's 256 KiB record), padded to whole records, plus its filemark
    /// ([`filemark_estimate`]). File sizes are the exact ones tapeop
    /// scanned, else the old tool's du KiB.
    pub fn target_estimate(&self, target_id: i64, block: usize) -> Result<i64> {
        let (exact, link) = if self.has_totals()? {
            ("COALESCE(i.size_bytes, f.size_kb * 1024)", "length(i.link_target)")
        } else {
            ("f.size_kb * 1024", "0")
        };
        let join = if self.has_totals()? { "LEFT JOIN tapeop_file_info i ON i.file_id = f.id" } else { "" };
        // The member name is the target without its leading '/', '/', the
        // file's name, and '/' for a directory: as long as target + name.
        let name_len = "(?2 + length(CAST(f.name AS BLOB)) + (f.md5sum IS 'directory'))";
        let sql = format!(
            "SELECT COUNT(*),
                COALESCE(SUM((CASE WHEN f.md5sum IN ('directory', 'symlink') THEN 0 ELSE {exact} END + 511) / 512 * 512), 0),
                COALESCE(SUM(CASE WHEN {name_len} >= 100 THEN 512 + ({name_len} + 512) / 512 * 512 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN {link} >= 100 THEN 512 + ({link} + 512) / 512 * 512 ELSE 0 END), 0)
             FROM files f {join} WHERE f.target_id = ?1"
        );
        let target_len = name_len_of(&self.target(target_id)?.name);
        let (members, data, names, links): (i64, i64, i64, i64) =
            self.conn.query_row(&sql, params![target_id, target_len], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        let root = 512 + if target_len >= 100 { 512 + (target_len + 512) / 512 * 512 } else { 0 };
        let tar = round_up(root + members * 512 + data + names + links + 1024, TAR_RECORD);
        let block = block.max(1) as i64;
        Ok(round_up(tar, block) + filemark_estimate(block as usize))
    }

    /// A tape's capacity in bytes: its own, else `default` (tape.conf's
    /// `tape_capacity`), else the capacity last measured when a target did
    /// not fit on a whole tape ([`Catalog::record_too_big`]). None when
    /// none is known.
    pub fn tape_capacity(&self, tape: &Tape, default: Option<u64>) -> Result<Option<i64>> {
        if !self.has_totals()? {
            return Ok(default.map(|d| d as i64));
        }
        let own: Option<i64> = self
            .conn
            .query_row("SELECT capacity_bytes FROM tapeop_tape_info WHERE tape_id = ?1", [tape.id], |r| r.get(0))
            .optional()?
            .flatten();
        let measured: Option<String> = self
            .conn
            .query_row("SELECT value FROM tapeop_meta WHERE key = ?1", [MEASURED_CAPACITY], |r| r.get(0))
            .optional()?;
        Ok(own.or(default.map(|d| d as i64)).or(measured.and_then(|m| m.parse().ok())))
    }

    /// A target did not fit on the whole of blank `tape`: its assigned
    /// backup `backup_id` goes (the target is unassigned again), and the
    /// `capacity` measured at the early warning becomes the tape's own and
    /// the one assumed for tapes with none known. One transaction.
    pub fn record_too_big(&self, tape: &Tape, backup_id: i64, capacity: u64) -> Result<()> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM backups WHERE id = ?1 AND status = 'assigned'", [backup_id])?;
        tx.execute(
            "INSERT INTO tapeop_tape_info (tape_id, capacity_bytes) VALUES (?1, ?2)
             ON CONFLICT(tape_id) DO UPDATE SET capacity_bytes = excluded.capacity_bytes",
            params![tape.id, capacity as i64],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO tapeop_meta (key, value) VALUES (?1, ?2)",
            params![MEASURED_CAPACITY, capacity.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Bytes left on a tape with a known capacity ([`Catalog::tape_capacity`]):
    /// capacity minus what is written (as measured, else estimated) and,
    /// with `count_assigned`, what is assigned (estimated). None when no
    /// capacity is known.
    pub fn space_left(
        &self,
        tape: &Tape,
        default: Option<u64>,
        count_assigned: bool,
        block: usize,
    ) -> Result<Option<i64>> {
        let Some(capacity) = self.tape_capacity(tape, default)? else { return Ok(None) };
        let mut used = if self.takes_label(tape)? { label_estimate(block) } else { 0 };
        for b in self.tape_backups(tape.id)? {
            if !count_assigned
                && !matches!(b.status, BackupStatus::Recorded | BackupStatus::Confirmed | BackupStatus::Failed)
            {
                continue;
            }
            used += match self.written_bytes(b.id)? {
                Some(bytes) => bytes + filemark_estimate(block),
                None => self.target_estimate(b.target_id, block)?,
            };
        }
        Ok(Some(capacity - used))
    }

    /// Whether `tape` has (or, written first, will get) tapeop's label as
    /// tape file 0: an old tool's tape with data on it has none.
    fn takes_label(&self, tape: &Tape) -> Result<bool> {
        if self.append_point(tape.id)? == TapeFile::LABEL {
            return Ok(true);
        }
        if !self.has_totals()? {
            return Ok(false);
        }
        let label: Option<Option<String>> = self
            .conn
            .query_row("SELECT label FROM tapeop_tape_info WHERE tape_id = ?1", [tape.id], |r| r.get(0))
            .optional()?;
        Ok(label.flatten().is_some())
    }

    fn written_bytes(&self, backup_id: i64) -> Result<Option<i64>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row("SELECT bytes FROM tapeop_backup_info WHERE backup_id = ?1", [backup_id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn tape_backups(&self, tape_id: i64) -> Result<Vec<Backup>> {
        let sql = self.backup_query("b.tape_id = ?1 ORDER BY b.id")?;
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([tape_id], Self::backup_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Give up a recorded tape file (or a confirmed one a sample found bad):
    /// its backup becomes `failed` (the tape file stays where it is, and
    /// keeps its number) and its target goes back to the unassigned pool;
    /// the history gets a `requeue` row.
    pub fn requeue(&self, tape: &Tape, backup: &Backup, note: &str) -> Result<()> {
        if !backup.status.is_on_tape() {
            bail!("backup {} is {}, not on tape: nothing was requeued", backup.id, backup.status);
        }
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let status = backup.status.as_str();
        let n = tx.execute(
            "UPDATE backups SET status = 'failed' WHERE id = ?1 AND status = ?2",
            params![backup.id, status],
        )?;
        if n != 1 {
            bail!("backup {} is no longer {status}; the catalogue changed meanwhile, nothing was requeued", backup.id);
        }
        let now = now_text();
        tx.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, outcome, error)
             VALUES ('requeue', ?1, ?2, ?3, ?4, ?4, 'ok', ?5)",
            params![tape.name, legacy_file_number(backup.file_number), show(&backup.target), now, note],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Where a target's current (not failed) backup is: `(tape, file
    /// number, status)`, or None while it is unassigned.
    pub fn current_backup(&self, target_id: i64) -> Result<Option<CurrentBackup>> {
        Ok(self
            .conn
            .query_row(
                "SELECT COALESCE(tp.name, '?'), b.file_number, COALESCE(b.status, '?') FROM backups b
                 LEFT JOIN tapes tp ON tp.id = b.tape_id WHERE b.target_id = ?1 AND COALESCE(b.status, '') != 'failed'
                 ORDER BY b.id DESC LIMIT 1",
                [target_id],
                |r| Ok((r.get(0)?, tape_file_at(r, 1)?, BackupStatus::parse(&r.get::<_, String>(2)?))),
            )
            .optional()?)
    }

    /// Backups of a target, by id: (tape, file number, status).
    pub fn target_backups(&self, target_id: i64) -> Result<Vec<(String, Option<TapeFile>, BackupStatus)>> {
        let mut stmt = self.conn.prepare(
            "SELECT COALESCE(tp.name, '?'), b.file_number, COALESCE(b.status, '?') FROM backups b
             LEFT JOIN tapes tp ON tp.id = b.tape_id WHERE b.target_id = ?1 ORDER BY b.id",
        )?;
        let rows = stmt.query_map([target_id], |r| {
            Ok((r.get(0)?, tape_file_at(r, 1)?, BackupStatus::parse(&r.get::<_, String>(2)?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The sum of `size_kb` of one target's files (`target` is its id column),
/// read through the `file_on_target (target_id, name)` unique index.
fn legacy_size_kb(target: &str) -> String {
    format!("(SELECT SUM(f.size_kb) FROM files f WHERE f.target_id = {target})")
}

/// The number of one target's files (`target` is its id column), counted
/// in the `file_on_target (target_id, name)` unique index.
fn legacy_file_count(target: &str) -> String {
    format!("(SELECT COUNT(*) FROM files f WHERE f.target_id = {target})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_statuses_round_trip_and_keep_unknown_strings() {
        for s in ["assigned", "recorded", "confirmed", "failed", "new", "", "?", "lost"] {
            assert_eq!(BackupStatus::parse(s).as_str(), s);
        }
        assert_eq!(BackupStatus::parse("lost"), BackupStatus::Other("lost".into()));
        assert!(BackupStatus::Recorded.is_on_tape() && BackupStatus::Confirmed.is_on_tape());
        assert!(!BackupStatus::Failed.is_on_tape() && !BackupStatus::parse("x").is_on_tape());
        assert_eq!(format!("[{:<10}]", BackupStatus::Failed), "[failed    ]");
    }
}
