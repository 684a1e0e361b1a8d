//! The sqlite catalogue: tapes, targets, their files and md5 sums, and the
//! backups that put a target on a tape file. This module owns the schema
//! (the old tool's four tables, unchanged, plus tapeop's additive tables,
//! indexes and triggers, versioned with `PRAGMA user_version`), opening a
//! catalogue safely (WAL, busy timeout, refusing newer versions), and every
//! query the commands make. Reports are SQL aggregates; nothing here loads
//! all the file rows of a tape.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// The schema version this tapeop writes and understands.
pub const SCHEMA_VERSION: i64 = 2;

/// The old tool's tables, exactly as it created them.
const LEGACY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS `files` (`id` integer primary key autoincrement,`target_id` integer,`name` varchar(512),`md5sum` varchar(32),`size_kb` integer,constraint file_on_target UNIQUE (target_id, name));
CREATE TABLE IF NOT EXISTS `backups` (`id` integer primary key autoincrement,`target_id` integer,`tape_id` integer,`file_number` integer,`status` varchar(16));
CREATE TABLE IF NOT EXISTS `targets` (`id` integer primary key autoincrement,`name` varchar(2048) unique,`scanned` integer default 0,`parent_id` integer default null);
CREATE TABLE IF NOT EXISTS `tapes` (`id` integer primary key autoincrement,`name` varchar(256) unique,`serial` varchar(256) unique,`status` varchar(16),`online` integer not null default 0);
";

/// Version 1: indexes for what is queried, side tables for what the old
/// schema cannot hold, and per-target totals (kept right as described at
/// `FILE_TRIGGERS` and `MIGRATION_2`).
const MIGRATION_1: &str = "
CREATE INDEX IF NOT EXISTS tapeop_files_name ON files(name);
CREATE INDEX IF NOT EXISTS tapeop_backups_tape ON backups(tape_id, status, file_number);
CREATE INDEX IF NOT EXISTS tapeop_backups_target ON backups(target_id);
CREATE INDEX IF NOT EXISTS tapeop_targets_parent ON targets(parent_id);
CREATE TABLE IF NOT EXISTS tapeop_file_info (
    file_id INTEGER PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    link_target BLOB
);
CREATE TABLE IF NOT EXISTS tapeop_target_totals (
    target_id INTEGER PRIMARY KEY,
    file_count INTEGER NOT NULL DEFAULT 0,
    size_kb INTEGER NOT NULL DEFAULT 0
);
INSERT OR REPLACE INTO tapeop_target_totals (target_id, file_count, size_kb)
    SELECT target_id, COUNT(*), COALESCE(SUM(size_kb), 0) FROM files GROUP BY target_id;
CREATE TABLE IF NOT EXISTS tapeop_tape_info (
    tape_id INTEGER PRIMARY KEY,
    capacity_bytes INTEGER,
    full INTEGER NOT NULL DEFAULT 0,
    label TEXT
);
CREATE TABLE IF NOT EXISTS tapeop_backup_info (
    backup_id INTEGER PRIMARY KEY,
    bytes INTEGER,
    block_size INTEGER,
    written_at TEXT,
    confirmed_at TEXT
);
CREATE TABLE IF NOT EXISTS tapeop_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO tapeop_meta (key, value)
    VALUES ('catalogue_id', lower(hex(randomblob(16))));
CREATE TABLE IF NOT EXISTS tapeop_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    tape TEXT,
    file_number INTEGER,
    target TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    bytes INTEGER,
    outcome TEXT,
    error TEXT
);
";

/// The triggers that keep `tapeop_target_totals` right when any program
/// deletes or updates `files` rows already counted in them (at or below the
/// high-water mark; rows above it are counted by whoever folds them in
/// later, as they are then). Inserted rows need no trigger: the old
/// tool only ever inserts, with ids above the totals' high-water mark
/// (`MIGRATION_2`), and tapeop folds them in before it next writes (readers
/// add them on the fly meanwhile). Version 1 also had a per-row insert
/// trigger; at millions of rows it halved the insert rate.
const FILE_TRIGGERS: &str = "
CREATE TRIGGER IF NOT EXISTS tapeop_files_del AFTER DELETE ON files BEGIN
    UPDATE tapeop_target_totals SET file_count = file_count - 1,
        size_kb = size_kb - COALESCE(OLD.size_kb, 0)
        WHERE target_id = OLD.target_id
          AND OLD.id <= (SELECT CAST(value AS INTEGER) FROM tapeop_meta WHERE key = 'totals_file_id');
    DELETE FROM tapeop_file_info WHERE file_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS tapeop_files_upd AFTER UPDATE OF size_kb, target_id ON files
    WHEN OLD.id <= (SELECT CAST(value AS INTEGER) FROM tapeop_meta WHERE key = 'totals_file_id') BEGIN
    UPDATE tapeop_target_totals SET file_count = file_count - 1,
        size_kb = size_kb - COALESCE(OLD.size_kb, 0) WHERE target_id = OLD.target_id;
    INSERT OR IGNORE INTO tapeop_target_totals (target_id) VALUES (NEW.target_id);
    UPDATE tapeop_target_totals SET file_count = file_count + 1,
        size_kb = size_kb + COALESCE(NEW.size_kb, 0) WHERE target_id = NEW.target_id;
END;
";

/// Version 2: the totals hold every `files` row up to the id in
/// `tapeop_meta` key `totals_file_id`; rows above it (the old tool's
/// inserts) are folded in by the next tapeop write ([`Catalog::fold_new_files`]).
const MIGRATION_2: &str = "
DROP TRIGGER IF EXISTS tapeop_files_ins;
DROP TRIGGER IF EXISTS tapeop_files_del;
DROP TRIGGER IF EXISTS tapeop_files_upd;
INSERT OR REPLACE INTO tapeop_meta (key, value)
    SELECT 'totals_file_id', CAST(COALESCE(MAX(id), 0) AS TEXT) FROM files;
";

/// The `tapeop_meta` key of the totals' high-water mark.
const TOTALS_MARK: &str = "totals_file_id";

/// How a command uses the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reports: the file must exist; nothing is written.
    ReadOnly,
    /// Changes: the file must exist.
    ReadWrite,
    /// Changes, and a new catalogue is created if there is none.
    Create,
}

/// An open catalogue.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
    mode: Mode,
    ready: std::cell::Cell<bool>,
}

/// A tape row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tape {
    /// Row id.
    pub id: i64,
    /// Name, e.g. `PUB-T1`.
    pub name: String,
    /// Serial number ("" when not set).
    pub serial: String,
    /// `open`, `closed` or `garbage`.
    pub status: String,
    /// Whether it is the online (active) tape.
    pub online: bool,
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
    /// Tape file number (-1 while assigned).
    pub file_number: i64,
    /// `assigned`, `recorded`, `confirmed` (or legacy `new`).
    pub status: String,
    /// Number of file rows of the target.
    pub file_count: i64,
    /// Sum of the target's `size_kb`.
    pub size_kb: i64,
}

/// A count and a size in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// How many.
    pub count: i64,
    /// Sum of `size_kb`.
    pub size_kb: i64,
}

/// One catalogued file of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Name relative to the target (raw bytes).
    pub name: Vec<u8>,
    /// 32 hex digits, `symlink`, or `directory`.
    pub md5: String,
    /// `du` size in KiB (as the old tool stored it).
    pub size_kb: i64,
    /// Exact size in bytes, when tapeop scanned it.
    pub size_bytes: Option<i64>,
    /// Symlink target, when tapeop scanned it.
    pub link_target: Option<Vec<u8>>,
}

/// A target row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Row id.
    pub id: i64,
    /// Absolute directory on the data host (raw bytes).
    pub name: Vec<u8>,
    /// Whether its files were scanned.
    pub scanned: bool,
    /// Nearest ancestor target.
    pub parent_id: Option<i64>,
}

/// Store a name as TEXT when it is UTF-8 (as the old tool did), else as BLOB.
pub fn name_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::Text(s.to_string()),
        Err(_) => Value::Blob(bytes.to_vec()),
    }
}

/// Read a name stored as TEXT or BLOB.
pub fn name_bytes(v: ValueRef<'_>) -> Vec<u8> {
    match v {
        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
        ValueRef::Null => Vec::new(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(r) => r.to_string().into_bytes(),
    }
}

/// Show raw name bytes to a person (lossy for non-UTF-8 bytes).
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`, for output and history rows.
pub fn now_text() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    utc_text(secs)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian).
pub fn utc_text(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

impl Catalog {
    /// Open (or, in `Mode::Create`, create) the catalogue at `path`.
    pub fn open(path: &Path, mode: Mode) -> Result<Catalog> {
        let exists = path.exists();
        if !exists && mode != Mode::Create {
            bail!(
                "catalogue {} does not exist: check database_file in tape.conf (import or open_tape creates a new one)",
                path.display()
            );
        }
        if path.is_dir() {
            bail!("catalogue {} is a directory: database_file must name an sqlite file", path.display());
        }
        let flags = match mode {
            Mode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
            Mode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            Mode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot open catalogue {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.set_prepared_statement_cache_capacity(64);
        let catalog = Catalog { conn, path: path.to_path_buf(), mode, ready: std::cell::Cell::new(false) };
        catalog.prepare(mode, exists).with_context(|| format!("catalogue {}", path.display()))?;
        Ok(catalog)
    }

    fn prepare(&self, mode: Mode, existed: bool) -> Result<()> {
        let version = self.user_version().context("not a readable sqlite catalogue")?;
        if version > SCHEMA_VERSION {
            bail!(
                "was written by a newer tapeop (schema version {version}, this one knows {SCHEMA_VERSION}); upgrade tapeop — the catalogue was not modified"
            );
        }
        self.conn.pragma_update(None, "cache_size", -16384)?;
        let empty = self.table_count()? == 0;
        if existed && !empty {
            self.check_legacy_tables()?;
        }
        if empty && mode != Mode::Create {
            bail!("is empty (no tables): not a tapeop catalogue; check database_file in tape.conf");
        }
        if mode == Mode::Create && empty {
            self.writable()?;
        }
        Ok(())
    }

    /// Get ready to change the catalogue: WAL mode, and the additive schema
    /// upgrade of a legacy catalogue. Commands call it once they know they
    /// will write, so a refused command leaves a legacy file untouched.
    pub fn writable(&self) -> Result<()> {
        if self.ready.get() {
            return Ok(());
        }
        if self.mode == Mode::ReadOnly {
            bail!("catalogue {} was opened read-only", self.path.display());
        }
        // Multi-row inserts keep a statement journal; in memory, not in /tmp.
        self.conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Upgrade before WAL: new index pages then go to the file once, not
        // to the WAL first and the file again at the checkpoint.
        let version = self.user_version()?;
        if version < SCHEMA_VERSION {
            self.migrate(version).with_context(|| format!("upgrading catalogue {}", self.path.display()))?;
        }
        self.conn.pragma_update(None, "journal_mode", "WAL").context("cannot switch to WAL mode")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
        let tx = self.conn.unchecked_transaction()?;
        Self::fold_new_files(&tx)?;
        tx.commit().context("cannot bring the per-target totals up to date")?;
        self.ready.set(true);
        Ok(())
    }

    fn table_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .context("not a readable sqlite catalogue")?)
    }

    fn user_version(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn check_legacy_tables(&self) -> Result<()> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name IN ('tapes','targets','files','backups')",
            [],
            |r| r.get(0),
        ).context("not a readable sqlite catalogue")?;
        if n != 4 {
            bail!("is not a tapeop catalogue (it lacks the tapes/targets/files/backups tables)");
        }
        Ok(())
    }

    fn migrate(&self, from: i64) -> Result<()> {
        let progress = if self.has_files_table()? {
            let files: i64 = self.conn.query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0))?;
            Some(UpgradeProgress::start(&self.path, from, files))
        } else {
            None
        };
        // The index on 20M names is one big sort over a full read of
        // `files`: up to 1 GiB of cache, which is also the sorter's memory
        // (at 6M files a fifth less CPU than 256 MiB), and reads from a map
        // of the file rather than copies (a fifth less CPU at 2M files).
        self.conn.pragma_update(None, "cache_size", -1_048_576)?;
        self.conn.pragma_update(None, "mmap_size", 1_i64 << 31)?;
        let tx = self.conn.unchecked_transaction()?;
        let mut batches = vec![LEGACY_SCHEMA];
        if from < 1 {
            batches.push(MIGRATION_1);
        }
        if from < 2 {
            batches.extend([MIGRATION_2, FILE_TRIGGERS]);
        }
        for sql in batches {
            Self::run_steps(&tx, sql, progress.as_ref())?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit().context("cannot upgrade the catalogue schema")?;
        self.conn.pragma_update(None, "cache_size", -16384)?;
        self.conn.pragma_update(None, "mmap_size", 0)?;
        if let Some(p) = progress {
            p.finish();
        }
        Ok(())
    }

    /// Run the statements of `sql` one by one, naming each on the progress bar.
    fn run_steps(conn: &Connection, sql: &str, progress: Option<&UpgradeProgress>) -> Result<()> {
        use rusqlite::fallible_iterator::FallibleIterator;
        let mut batch = rusqlite::Batch::new(conn, sql);
        while let Some(mut stmt) = batch.next()? {
            if let Some(p) = progress {
                p.step(&stmt.expanded_sql().unwrap_or_default());
            }
            stmt.raw_execute()?;
        }
        Ok(())
    }

    fn has_files_table(&self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'files')",
            [],
            |r| r.get(0),
        )?)
    }

    /// The underlying connection, for modules that own their own queries.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Whether the tapeop side tables exist (false on a legacy catalogue
    /// opened read-only before tapeop ever wrote to it).
    pub fn has_totals(&self) -> Result<bool> {
        Ok(self.user_version()? >= 1)
    }

    // ---- tapes ----

    fn tape_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tape> {
        Ok(Tape {
            id: r.get(0)?,
            name: r.get(1)?,
            serial: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            status: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            online: r.get::<_, i64>(4)? != 0,
        })
    }

    /// Every tape, by id.
    pub fn tapes(&self) -> Result<Vec<Tape>> {
        let mut stmt = self.conn.prepare("SELECT id, name, serial, status, online FROM tapes ORDER BY id")?;
        let rows = stmt.query_map([], Self::tape_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The tape named `name`, if any.
    pub fn tape_by_name(&self, name: &str) -> Result<Option<Tape>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, serial, status, online FROM tapes WHERE name = ?1",
                [name],
                Self::tape_from_row,
            )
            .optional()?)
    }

    /// The tape named `name`, or an error that says how to list them.
    pub fn require_tape(&self, name: &str) -> Result<Tape> {
        self.tape_by_name(name)?
            .with_context(|| format!("no tape named {name:?} in the catalogue (tapeop tapes lists them)"))
    }

    /// The online tape, if one is.
    pub fn online_tape(&self) -> Result<Option<Tape>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, serial, status, online FROM tapes WHERE online = 1 ORDER BY id LIMIT 1",
                [],
                Self::tape_from_row,
            )
            .optional()?)
    }

    /// The named tape, or the online one when `name` is None.
    pub fn tape_or_online(&self, name: Option<&str>) -> Result<Tape> {
        match name {
            Some(n) => self.require_tape(n),
            None => self
                .online_tape()?
                .context("no tape is online: name the tape, or bring one online with tapeop activate_tape NAME"),
        }
    }

    /// Create an `open` tape; `online` makes it the only online tape.
    pub fn create_tape(&self, name: &str, serial: Option<&str>, online: bool) -> Result<Tape> {
        self.writable()?;
        if let Some(t) = self.tape_by_name(name)? {
            bail!("a tape named {name:?} already exists (id {}, {})", t.id, t.status);
        }
        if let Some(s) = serial {
            self.check_serial_free(s)?;
        }
        let tx = self.conn.unchecked_transaction()?;
        if online {
            tx.execute("UPDATE tapes SET online = 0 WHERE online != 0", [])?;
        }
        tx.execute(
            "INSERT INTO tapes (name, serial, status, online) VALUES (?1, ?2, 'open', ?3)",
            params![name, serial, online as i64],
        )?;
        tx.commit()?;
        self.require_tape(name)
    }

    /// Refuse a serial number that another tape has.
    pub fn check_serial_free(&self, serial: &str) -> Result<()> {
        let other: Option<String> =
            self.conn.query_row("SELECT name FROM tapes WHERE serial = ?1", [serial], |r| r.get(0)).optional()?;
        if let Some(other) = other {
            bail!("serial number {serial:?} already belongs to tape {other:?}");
        }
        Ok(())
    }

    /// Make `tape` the only online tape.
    pub fn activate_tape(&self, tape: &Tape) -> Result<()> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("UPDATE tapes SET online = 0 WHERE online != 0", [])?;
        tx.execute("UPDATE tapes SET online = 1 WHERE id = ?1", [tape.id])?;
        tx.commit()?;
        Ok(())
    }

    /// Close a tape: its assigned backups are dissociated, it goes offline
    /// and its status becomes `closed`. Returns how many were dissociated.
    pub fn close_tape(&self, tape: &Tape) -> Result<usize> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let n = tx.execute("DELETE FROM backups WHERE tape_id = ?1 AND status IN ('assigned', 'new')", [tape.id])?;
        tx.execute("UPDATE tapes SET status = 'closed', online = 0 WHERE id = ?1", [tape.id])?;
        crate::fault::point("close-before-commit");
        tx.commit()?;
        Ok(n)
    }

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
    pub fn tape_tally(&self, tape_id: i64, status: &str) -> Result<Tally> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM({}), 0) FROM backups b {} WHERE b.tape_id = ?1 AND b.status = ?2",
            self.backup_size_kb()?,
            self.backup_totals_join()?
        );
        Ok(self
            .conn
            .query_row(&sql, params![tape_id, status], |r| Ok(Tally { count: r.get(0)?, size_kb: r.get(1)? }))?)
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

    /// Targets that are scanned and have no backup: count and size.
    pub fn unassigned_tally(&self) -> Result<Tally> {
        let sql = if self.has_totals()? {
            let join = self.totals_join()?.replace("b.target_id", "t.id");
            format!("SELECT COUNT(*), COALESCE(SUM(tt.size_kb), 0) FROM targets t {join} WHERE {UNASSIGNED}")
        } else {
            format!("SELECT COUNT(*), COALESCE(SUM({}), 0) FROM targets t WHERE {UNASSIGNED}", legacy_size_kb("t.id"))
        };
        Ok(self.conn.query_row(&sql, [], |r| Ok(Tally { count: r.get(0)?, size_kb: r.get(1)? }))?)
    }

    /// How many targets are scanned and have no backup (no sizes: instant
    /// on any catalogue).
    pub fn unassigned_count(&self) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM targets t WHERE {UNASSIGNED}");
        Ok(self.conn.query_row(&sql, [], |r| r.get(0))?)
    }

    /// Ids of unassigned targets, by name.
    pub fn unassigned_targets(&self) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id FROM targets t WHERE t.scanned = 1
             AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.target_id = t.id) ORDER BY t.name",
        )?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Runs of consecutive file numbers with the same status on a tape
    /// (recorded or confirmed), streamed in order: (first, last, status).
    pub fn layout(&self, tape_id: i64, mut each: impl FnMut(i64, i64, &str)) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT file_number, status FROM backups WHERE tape_id = ?1 AND status IN ('recorded','confirmed')
             ORDER BY file_number",
        )?;
        let mut rows = stmt.query([tape_id])?;
        let mut run: Option<(i64, i64, String)> = None;
        while let Some(r) = rows.next()? {
            let (n, s): (i64, String) = (r.get(0)?, r.get(1)?);
            match &mut run {
                Some((_, last, status)) if *status == s && *last + 1 == n => *last = n,
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
            file_number: r.get::<_, Option<i64>>(3)?.unwrap_or(-1),
            status: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            file_count: r.get(5)?,
            size_kb: r.get(6)?,
        })
    }

    /// Backups of a tape on tape (recorded or confirmed), by file number;
    /// only `file_number` when given.
    pub fn written_backups(&self, tape_id: i64, file_number: Option<i64>) -> Result<Vec<Backup>> {
        let sql = self.backup_query(
            "b.tape_id = ?1 AND b.status IN ('recorded','confirmed') AND (?2 IS NULL OR b.file_number = ?2)
             ORDER BY b.file_number",
        )?;
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![tape_id, file_number], Self::backup_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Backups of a tape in `status`, ordered by target name (assigned) or
    /// file number (written).
    pub fn backups_with_status(&self, tape_id: i64, status: &str) -> Result<Vec<Backup>> {
        let order = if status == "assigned" { "t.name" } else { "b.file_number" };
        let sql = self.backup_query(&format!("b.tape_id = ?1 AND b.status = ?2 ORDER BY {order}"))?;
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![tape_id, status], Self::backup_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The backup at `file_number` of a tape, whatever its status.
    pub fn backup_at(&self, tape_id: i64, file_number: i64) -> Result<Option<Backup>> {
        let sql = self.backup_query("b.tape_id = ?1 AND b.file_number = ?2 ORDER BY b.id LIMIT 1")?;
        Ok(self.conn.query_row(&sql, params![tape_id, file_number], Self::backup_from_row).optional()?)
    }

    /// The next free tape file number of a tape (highest written + 1).
    pub fn append_point(&self, tape_id: i64) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(file_number), -1) + 1 FROM backups WHERE tape_id = ?1 AND status IN ('recorded','confirmed')",
            [tape_id],
            |r| r.get(0),
        )?)
    }

    /// Give every unassigned target an `assigned` backup on `tape`.
    pub fn assign(&self, tape: &Tape, target_ids: &[i64]) -> Result<usize> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO backups (target_id, tape_id, file_number, status) SELECT ?1, ?2, -1, 'assigned'
                 WHERE NOT EXISTS (SELECT 1 FROM backups WHERE target_id = ?1)",
            )?;
            for id in target_ids {
                stmt.execute(params![id, tape.id])?;
                crate::fault::point("assign-mid");
            }
        }
        tx.commit()?;
        Ok(target_ids.len())
    }

    /// Mark an assigned backup as recorded at `file_number`.
    pub fn mark_recorded(&self, backup_id: i64, file_number: i64, bytes: u64, block_size: usize) -> Result<()> {
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

    /// Estimated bytes a target takes on tape: its data (du sizes, which
    /// round up) plus 1 KiB of tar headers per file.
    pub fn target_estimate(&self, target_id: i64) -> Result<i64> {
        let sql = format!(
            "SELECT COALESCE(tt.size_kb, 0) * 1024 + COALESCE(tt.file_count, 0) * 1024 + 10240 FROM (SELECT ?1 AS target_id) b {}",
            self.totals_join()?
        );
        Ok(self.conn.query_row(&sql, [target_id], |r| r.get(0))?)
    }

    /// Bytes left on a tape with a known capacity (its own, or `default`):
    /// capacity minus what is written (as measured, else estimated) and,
    /// with `count_assigned`, what is assigned (estimated). None when no
    /// capacity is known.
    pub fn space_left(&self, tape: &Tape, default: Option<u64>, count_assigned: bool) -> Result<Option<i64>> {
        let own: Option<i64> = if self.has_totals()? {
            self.conn
                .query_row("SELECT capacity_bytes FROM tapeop_tape_info WHERE tape_id = ?1", [tape.id], |r| r.get(0))
                .optional()?
                .flatten()
        } else {
            None
        };
        let Some(capacity) = own.or(default.map(|d| d as i64)) else { return Ok(None) };
        let mut used = 0i64;
        for b in self.tape_backups(tape.id)? {
            if !count_assigned && !matches!(b.status.as_str(), "recorded" | "confirmed") {
                continue;
            }
            used += match self.written_bytes(b.id)? {
                Some(bytes) => bytes,
                None => self.target_estimate(b.target_id)?,
            };
        }
        Ok(Some(capacity - used))
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

    // ---- bulk file writes ----

    /// The totals' high-water mark: every `files` row up to this id is
    /// counted in `tapeop_target_totals`.
    fn totals_mark(conn: &Connection) -> Result<i64> {
        let mark: Option<String> = conn
            .prepare_cached("SELECT value FROM tapeop_meta WHERE key = ?1")?
            .query_row([TOTALS_MARK], |r| r.get(0))
            .optional()?;
        Ok(mark.and_then(|m| m.parse().ok()).unwrap_or(0))
    }

    fn max_file_id(conn: &Connection) -> Result<i64> {
        Ok(conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM files")?.query_row([], |r| r.get(0))?)
    }

    fn set_totals_mark(conn: &Connection, id: i64) -> Result<()> {
        conn.prepare_cached("INSERT OR REPLACE INTO tapeop_meta (key, value) VALUES (?1, ?2)")?
            .execute(params![TOTALS_MARK, id.to_string()])?;
        Ok(())
    }

    /// Fold `files` rows above the high-water mark (inserted by another
    /// program, such as the old tool) into the totals, inside `conn`'s
    /// open transaction.
    pub fn fold_new_files(conn: &Connection) -> Result<()> {
        let (mark, max) = (Self::totals_mark(conn)?, Self::max_file_id(conn)?);
        if max <= mark {
            return Ok(());
        }
        conn.execute(
            "INSERT OR IGNORE INTO tapeop_target_totals (target_id) SELECT DISTINCT target_id FROM files WHERE id > ?1",
            [mark],
        )?;
        conn.execute(
            "UPDATE tapeop_target_totals AS t SET file_count = t.file_count + n.c, size_kb = t.size_kb + n.kb
             FROM (SELECT target_id, COUNT(*) AS c, COALESCE(SUM(size_kb), 0) AS kb FROM files WHERE id > ?1 GROUP BY target_id) AS n
             WHERE t.target_id = n.target_id",
            [mark],
        )?;
        Self::set_totals_mark(conn, max)
    }

    /// Start a bulk write of file rows inside the open transaction of
    /// `tx`: bring the totals up to date, so that `end_bulk` may move the
    /// high-water mark past the rows this write adds.
    pub fn begin_bulk(tx: &Connection) -> Result<()> {
        Self::fold_new_files(tx)
    }

    /// End a bulk write: recompute the totals of `targets` in one aggregate
    /// each and move the high-water mark past the new rows (still inside
    /// the transaction, which holds the write lock, so no other program's
    /// rows can be among them).
    pub fn end_bulk(tx: &Connection, targets: &[i64]) -> Result<()> {
        for t in targets {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO tapeop_target_totals (target_id, file_count, size_kb)
                 SELECT ?1, COUNT(*), COALESCE(SUM(size_kb), 0) FROM files WHERE target_id = ?1",
            )?
            .execute([t])?;
        }
        Self::set_totals_mark(tx, Self::max_file_id(tx)?)
    }

    /// End a bulk write that replaced every file row of `target` and knows
    /// their count and KiB: set its totals so (no aggregate over the rows)
    /// and move the high-water mark past the new rows, as [`Catalog::end_bulk`].
    pub fn end_bulk_counted(tx: &Connection, target: i64, files: i64, kb: i64) -> Result<()> {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO tapeop_target_totals (target_id, file_count, size_kb) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![target, files, kb])?;
        Self::set_totals_mark(tx, Self::max_file_id(tx)?)
    }

    /// The SQL of a derived table `(target_id, file_count, size_kb)` of
    /// per-target totals: the kept totals when they are up to date, else
    /// those plus the rows another program inserted since tapeop last wrote.
    pub fn totals_table(&self) -> Result<&'static str> {
        if !self.has_totals()? {
            return Ok(
                "(SELECT target_id, COUNT(*) AS file_count, SUM(size_kb) AS size_kb FROM files GROUP BY target_id)",
            );
        }
        if self.user_version()? < 2 || Self::max_file_id(&self.conn)? <= Self::totals_mark(&self.conn)? {
            return Ok("tapeop_target_totals");
        }
        Ok("(SELECT target_id, SUM(file_count) AS file_count, SUM(size_kb) AS size_kb FROM (
               SELECT target_id, file_count, size_kb FROM tapeop_target_totals
               UNION ALL SELECT target_id, 1, COALESCE(size_kb, 0) FROM files
                 WHERE id > (SELECT CAST(value AS INTEGER) FROM tapeop_meta WHERE key = 'totals_file_id'))
             GROUP BY target_id)")
    }

    // ---- history ----

    /// Record the start of an archive, confirm or restore attempt.
    pub fn history_start(&self, kind: &str, tape: &str, file_number: i64, target: &[u8]) -> Result<i64> {
        self.writable()?;
        self.conn.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, outcome) VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
            params![kind, tape, file_number, show(target), now_text()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record how an attempt ended: `ok`, `failed`, `tape full`, ...
    pub fn history_end(&self, id: i64, bytes: Option<u64>, outcome: &str, error: Option<String>) -> Result<()> {
        self.conn.execute(
            "UPDATE tapeop_history SET ended = ?2, bytes = ?3, outcome = ?4, error = ?5 WHERE id = ?1",
            params![id, now_text(), bytes.map(|b| b as i64), outcome, error],
        )?;
        Ok(())
    }

    // ---- targets and files ----

    /// The target row with `id`.
    pub fn target(&self, id: i64) -> Result<Target> {
        self.conn
            .prepare_cached("SELECT id, name, scanned, parent_id FROM targets WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(Target {
                    id: r.get(0)?,
                    name: name_bytes(r.get_ref(1)?),
                    scanned: r.get::<_, Option<i64>>(2)?.unwrap_or(0) != 0,
                    parent_id: r.get(3)?,
                })
            })
            .with_context(|| format!("target id {id} is missing from the catalogue"))
    }

    /// Names of the direct child targets of a target.
    pub fn child_targets(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self.conn.prepare("SELECT name FROM targets WHERE parent_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([id], |r| Ok(name_bytes(r.get_ref(0)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stream the files of a target, by name.
    pub fn each_file(&self, target_id: i64, mut each: impl FnMut(FileRow) -> Result<()>) -> Result<()> {
        let info = self.has_totals()?;
        let sql = if info {
            "SELECT f.name, f.md5sum, f.size_kb, i.size_bytes, i.link_target FROM files f
             LEFT JOIN tapeop_file_info i ON i.file_id = f.id WHERE f.target_id = ?1 ORDER BY f.name"
        } else {
            "SELECT name, md5sum, size_kb, NULL, NULL FROM files WHERE target_id = ?1 ORDER BY name"
        };
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([target_id])?;
        while let Some(r) = rows.next()? {
            each(FileRow {
                name: name_bytes(r.get_ref(0)?),
                md5: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                size_kb: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                size_bytes: r.get(3)?,
                link_target: r.get_ref(4)?.as_bytes_or_null()?.map(<[u8]>::to_vec),
            })?;
        }
        Ok(())
    }
}

/// The filter of unassigned targets `t`: scanned, with no backups row. `NOT
/// IN` reads `backups` once (a legacy catalogue has no index on its
/// `target_id` for a per-target `NOT EXISTS`).
const UNASSIGNED: &str = "t.scanned = 1 AND t.id NOT IN (SELECT target_id FROM backups WHERE target_id IS NOT NULL)";

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

/// What the one-time upgrade of a legacy catalogue shows on stderr: a
/// spinner naming the current step when stderr is a terminal, otherwise one
/// plain line.
struct UpgradeProgress {
    bar: indicatif::ProgressBar,
    steps: std::cell::Cell<u64>,
    started: std::time::Instant,
}

impl UpgradeProgress {
    fn start(path: &Path, from: i64, files: i64) -> UpgradeProgress {
        let what = format!(
            "upgrading catalogue {} from schema version {from} to {SCHEMA_VERSION} (once; indexes and per-target totals of {files} file rows)",
            path.display()
        );
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if bar.is_hidden() {
            eprintln!("tapeop: {what}");
        } else {
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] step {pos}: {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.println(format!("tapeop: {what}"));
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        UpgradeProgress { bar, steps: std::cell::Cell::new(0), started: std::time::Instant::now() }
    }

    fn step(&self, sql: &str) {
        self.steps.set(self.steps.get() + 1);
        self.bar.set_position(self.steps.get());
        let first = sql.trim().lines().next().unwrap_or_default();
        self.bar.set_message(first.chars().take(56).collect::<String>());
    }

    fn finish(self) {
        if !self.bar.is_hidden() {
            self.bar.println(format!("tapeop: catalogue upgraded in {:.1} s", self.started.elapsed().as_secs_f64()));
        }
        self.bar.finish_and_clear();
    }
}

/// The longest tape name `open_tape` and `scan_tape --record-as` accept.
pub const TAPE_NAME_MAX: usize = 64;

/// Whether `b` may appear in a tape name: `A-Z a-z 0-9 . _ -`.
fn tape_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Refuse a tape name that could not safely become part of a file name:
/// only `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`, at most
/// [`TAPE_NAME_MAX`] characters. Every name the old tool's manual shows
/// (`T0001`, `PUB-T1`) passes.
pub fn check_tape_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= TAPE_NAME_MAX
        && b.iter().all(|&c| tape_name_byte(c))
        && !matches!(b.first(), Some(b'.' | b'-'));
    if !ok {
        bail!(
            "tape name {name:?} is not allowed: use 1 to {TAPE_NAME_MAX} of the characters A-Z a-z 0-9 . _ - \
             (not starting with '.' or '-'), e.g. T0001"
        );
    }
    Ok(())
}

/// A tape name as it may be used inside a file name: unchanged when
/// [`check_tape_name`] accepts it; otherwise (a name another program put in
/// the catalogue) every byte outside `A-Z a-z 0-9 . _ -`, and a leading `.`
/// or `-`, becomes `%XX`. The result never contains `/`, is never `.` or
/// `..`, and distinct names stay distinct.
pub fn tape_name_for_path(name: &str) -> String {
    if check_tape_name(name).is_ok() {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len() * 3);
    for (i, &c) in name.as_bytes().iter().enumerate() {
        if tape_name_byte(c) && !(i == 0 && matches!(c, b'.' | b'-')) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_577_836_800), "2020-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_795_800_644), "2026-11-27 17:30:44 UTC");
    }

    #[test]
    fn names_round_trip_as_text_or_blob() {
        assert_eq!(name_value(b"plain"), Value::Text("plain".into()));
        assert_eq!(name_value(b"bad\xffname"), Value::Blob(b"bad\xffname".to_vec()));
    }

    #[test]
    fn tape_names() {
        for ok in ["T0001", "PUB-T1", "LTO9_0001.a", "x"] {
            assert!(check_tape_name(ok).is_ok(), "{ok}");
            assert_eq!(tape_name_for_path(ok), ok);
        }
        let long = "T".repeat(TAPE_NAME_MAX + 1);
        for bad in ["", "../../escaped", "x/y", ".hidden", "-rf", "a b", "caf\u{e9}", "..", long.as_str()] {
            assert!(check_tape_name(bad).is_err(), "{bad}");
        }
        assert_eq!(tape_name_for_path("../../escaped"), "%2E.%2F..%2Fescaped");
        assert_eq!(tape_name_for_path("x/y"), "x%2Fy");
        assert_eq!(tape_name_for_path(".."), "%2E.");
        assert_eq!(tape_name_for_path(""), "%");
        assert_eq!(tape_name_for_path("a%2Fb"), "a%252Fb");
    }
}
