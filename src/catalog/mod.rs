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
    /// `assigned`, `recorded`, `confirmed` (or legacy `new`), or `failed`:
    /// a tape file that failed confirm and whose target was requeued.
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

/// Whether opening failed because sqlite could not open a file it needs
/// (`SQLITE_CANTOPEN`: for a reader, most often the `-shm` of a WAL catalogue
/// in a directory it cannot write).
fn cannot_open(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::CannotOpen)
    })
}

/// `PATH` with `suffix` appended to its file name (`-wal`, `-shm`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A path as the path part of an sqlite `file:` URI (percent-encoded).
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Refuse, before any question is asked, to change a catalogue that cannot
/// be written: sqlite opens a write-protected (or immutable) file read-only
/// without a word, and a directory that cannot be written has no room for
/// the WAL and journal files; either would fail only at the first change.
pub fn refuse_unwritable(path: &Path) -> Result<()> {
    use nix::unistd::{AccessFlags, access};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let why = match access(path, AccessFlags::W_OK) {
        Err(errno) => Some(format!("the file cannot be written: {}", errno.desc())),
        Ok(()) => access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
            .err()
            .map(|errno| format!("its directory {} cannot be written: {}", dir.display(), errno.desc())),
    };
    match why {
        Some(why) => Err(read_only(path, &why)),
        None => Ok(()),
    }
}

fn read_only(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "catalogue {} is read-only ({why}); nothing was changed: make it writable (chmod, chattr -i, a read-write mount), or run only reports",
        path.display()
    )
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`, for output and history rows.
pub fn now_text() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    utc_text(secs)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic
/// Gregorian). Past jiff's range it shows the last second of year 9999.
pub fn utc_text(secs: u64) -> String {
    let epoch = jiff::civil::DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
    let when = i64::try_from(secs)
        .ok()
        .and_then(|s| epoch.checked_add(jiff::SignedDuration::from_secs(s)).ok())
        .unwrap_or(jiff::civil::DateTime::MAX);
    when.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
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
        match Self::open_as(path, path, flags, mode, exists) {
            Err(e) if mode == Mode::ReadOnly && cannot_open(&e) => Self::open_immutable(path, e),
            other => other,
        }
    }

    fn open_as(path: &Path, target: &Path, flags: OpenFlags, mode: Mode, exists: bool) -> Result<Catalog> {
        let conn = Connection::open_with_flags(target, flags)
            .with_context(|| format!("cannot open catalogue {}", path.display()))?;
        if mode != Mode::ReadOnly && exists {
            refuse_unwritable(path)?;
            if conn.is_readonly(rusqlite::MAIN_DB)? {
                return Err(read_only(path, "sqlite opened it read-only"));
            }
        }
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.set_prepared_statement_cache_capacity(64);
        let catalog = Catalog { conn, path: path.to_path_buf(), mode, ready: std::cell::Cell::new(false) };
        catalog.prepare(mode, exists).with_context(|| format!("catalogue {}", path.display()))?;
        Ok(catalog)
    }

    /// A WAL catalogue in a directory we cannot write: sqlite cannot make
    /// its `-shm` file, so it cannot be read the usual way. With no `-wal`
    /// file there is nothing beyond the main file to read, and no writer
    /// can start there, so it is opened as immutable. With a `-wal` file
    /// whose changes would be missed, it is refused, saying why.
    fn open_immutable(path: &Path, first: anyhow::Error) -> Result<Catalog> {
        let wal = sibling(path, "-wal");
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            bail!(
                "catalogue {} cannot be read here: its newest changes are in {}, and sqlite cannot create {} beside it to read them; make the directory writable, or run any tapeop command there as a user who can write it",
                path.display(),
                wal.display(),
                sibling(path, "-shm").display()
            );
        }
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let uri = format!("file:{}?immutable=1", uri_path(&abs));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::open_as(path, Path::new(&uri), flags, Mode::ReadOnly, true).map_err(|_| first)
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
        self.conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .context("not a readable sqlite catalogue")
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
        // The sort may use the other cores too (sqlite's worker threads).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        self.conn.pragma_update(None, "threads", cores as i64)?;
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
        self.conn.pragma_update(None, "threads", 0)?;
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
             AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.target_id = t.id AND COALESCE(b.status, '') != 'failed') ORDER BY t.name",
        )?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Runs of consecutive file numbers with the same status on a tape
    /// (recorded or confirmed), streamed in order: (first, last, status).
    pub fn layout(&self, tape_id: i64, mut each: impl FnMut(i64, i64, &str)) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT file_number, status FROM backups WHERE tape_id = ?1 AND status IN ('recorded','confirmed','failed')
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

    /// Backups of a tape on tape (recorded, confirmed, or failed and
    /// requeued), by file number; only `file_number` when given.
    pub fn written_backups(&self, tape_id: i64, file_number: Option<i64>) -> Result<Vec<Backup>> {
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
            "SELECT COALESCE(MAX(file_number), -1) + 1 FROM backups WHERE tape_id = ?1 AND status IN ('recorded','confirmed','failed')",
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
                 WHERE NOT EXISTS (SELECT 1 FROM backups WHERE target_id = ?1 AND COALESCE(status, '') != 'failed')",
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
            if !count_assigned && !matches!(b.status.as_str(), "recorded" | "confirmed" | "failed") {
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
        if self.append_point(tape.id)? == 0 {
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
const UNASSIGNED: &str = "t.scanned = 1 AND t.id NOT IN (SELECT target_id FROM backups WHERE target_id IS NOT NULL \
     AND COALESCE(status, '') != 'failed')";

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
    /// Tape file number (-1 when unknown).
    pub file_number: i64,
    /// Target, as shown.
    pub target: String,
    /// `running`, `ok`, `failed`, ...
    pub outcome: String,
}

/// The `tapeop_meta` key that marks history row `id` acknowledged.
pub fn ack_key(history_id: i64) -> String {
    format!("ack_history_{history_id}")
}

/// Failed tape files, requeued targets, acknowledged alarms and removed
/// targets.
impl Catalog {
    /// The latest confirm of tape file `file_number` of `tape`, when it failed.
    pub fn confirm_failure(&self, tape: &str, file_number: i64) -> Result<Option<FailedConfirm>> {
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

    /// Give up a recorded tape file: its backup becomes `failed` (the tape
    /// file stays where it is, and keeps its number) and its target goes
    /// back to the unassigned pool; the history gets a `requeue` row.
    pub fn requeue(&self, tape: &Tape, backup: &Backup, note: &str) -> Result<()> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let n =
            tx.execute("UPDATE backups SET status = 'failed' WHERE id = ?1 AND status = 'recorded'", [backup.id])?;
        if n != 1 {
            bail!("backup {} is no longer recorded; the catalogue changed meanwhile, nothing was requeued", backup.id);
        }
        let now = now_text();
        tx.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, outcome, error)
             VALUES ('requeue', ?1, ?2, ?3, ?4, ?4, 'ok', ?5)",
            params![tape.name, backup.file_number, show(&backup.target), now, note],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Where a target's current (not failed) backup is: `(tape, file
    /// number, status)`, or None while it is unassigned.
    pub fn current_backup(&self, target_id: i64) -> Result<Option<(String, i64, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT COALESCE(tp.name, '?'), COALESCE(b.file_number, -1), COALESCE(b.status, '?') FROM backups b
                 LEFT JOIN tapes tp ON tp.id = b.tape_id WHERE b.target_id = ?1 AND COALESCE(b.status, '') != 'failed'
                 ORDER BY b.id DESC LIMIT 1",
                [target_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// A history row's kind, tape, file number, target and outcome.
    pub fn history_row(&self, id: i64) -> Result<Option<HistoryRef>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT kind, COALESCE(tape, '-'), COALESCE(file_number, -1), COALESCE(target, '-'),
                        COALESCE(outcome, '-') FROM tapeop_history WHERE id = ?1",
                [id],
                |r| {
                    Ok(HistoryRef {
                        kind: r.get(0)?,
                        tape: r.get(1)?,
                        file_number: r.get(2)?,
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
    pub fn ack(&self, id: i64, what: (&str, i64, &str), note: &str) -> Result<()> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let now = now_text();
        tx.execute("INSERT OR REPLACE INTO tapeop_meta (key, value) VALUES (?1, ?2)", params![ack_key(id), now])?;
        tx.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, outcome, error)
             VALUES ('ack', ?1, ?2, ?3, ?4, ?4, 'ok', ?5)",
            params![what.0, what.1, what.2, now, note],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The target named `name`, if any.
    pub fn target_by_name(&self, name: &[u8]) -> Result<Option<Target>> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM targets WHERE name = ?1", [name_value(name)], |r| r.get(0))
            .optional()?;
        id.map(|id| self.target(id)).transpose()
    }

    /// Backups of a target, by id: (tape, file number, status).
    pub fn target_backups(&self, target_id: i64) -> Result<Vec<(String, i64, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT COALESCE(tp.name, '?'), COALESCE(b.file_number, -1), COALESCE(b.status, '?') FROM backups b
             LEFT JOIN tapes tp ON tp.id = b.tape_id WHERE b.target_id = ?1 ORDER BY b.id",
        )?;
        let rows = stmt.query_map([target_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Remove a target that was never written to tape: its files, its
    /// assigned backup (if any) and its row; its child targets take its
    /// parent. Refuses a target with any tape file. Returns the number of
    /// file rows removed.
    pub fn remove_target(&self, target: &Target) -> Result<i64> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let written: i64 = tx.query_row(
            "SELECT COUNT(*) FROM backups WHERE target_id = ?1 AND status NOT IN ('assigned', 'new')",
            [target.id],
            |r| r.get(0),
        )?;
        if written > 0 {
            bail!("target {} has a tape file; nothing was removed", show(&target.name));
        }
        tx.execute("DELETE FROM backups WHERE target_id = ?1", [target.id])?;
        tx.execute(
            "DELETE FROM tapeop_file_info WHERE file_id IN (SELECT id FROM files WHERE target_id = ?1)",
            [target.id],
        )?;
        let files = tx.execute("DELETE FROM files WHERE target_id = ?1", [target.id])?;
        tx.execute("DELETE FROM tapeop_target_totals WHERE target_id = ?1", [target.id])?;
        tx.execute("UPDATE targets SET parent_id = ?2 WHERE parent_id = ?1", params![target.id, target.parent_id])?;
        tx.execute("DELETE FROM targets WHERE id = ?1", [target.id])?;
        tx.commit()?;
        Ok(files as i64)
    }
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
    fn utc_dates_around_leap_days_and_the_ends() {
        assert_eq!(utc_text(86_399), "1970-01-01 23:59:59 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_text(951_868_800), "2000-03-01 00:00:00 UTC");
        assert_eq!(utc_text(1_709_164_799), "2024-02-28 23:59:59 UTC");
        assert_eq!(utc_text(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(utc_text(4_107_542_400), "2100-03-01 00:00:00 UTC");
        assert_eq!(utc_text(4_107_456_000), "2100-02-28 00:00:00 UTC");
        assert_eq!(utc_text(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(utc_text(u64::MAX), "9999-12-31 23:59:59 UTC");
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
