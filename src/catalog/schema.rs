//! The catalogue schema: the old tool's four tables, tapeop's additive tables,
//! indexes and triggers, their versions (`PRAGMA user_version`), and the
//! one-time upgrade of a legacy catalogue with its progress display.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

use super::{Catalog, Mode};

/// The schema version this tapeop writes and understands.
pub const SCHEMA_VERSION: i64 = 4;

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

/// Version 3: a tape's pool (a tape without a row is in pool `default`),
/// and the catalogue file tapeop appends to a tape it closes or fills.
/// A reader of a catalogue not upgraded yet finds neither table, and
/// treats them as empty (see [`Catalog::has_version`]).
const MIGRATION_3: &str = "
CREATE TABLE IF NOT EXISTS tapeop_tape_pool (
    tape_id INTEGER PRIMARY KEY,
    pool TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tapeop_tape_catalog (
    tape_id INTEGER PRIMARY KEY,
    file_number INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    written TEXT NOT NULL
);
";

/// Version 4: the drive's own figures for a tape file written or read
/// (`drive_io`): bytes and I/O time from the st statistics, recovered
/// errors, and for reads the run they belong to. Keyed by history id.
/// And the history's own clock in milliseconds ([`HISTORY_MS_COLUMNS`]).
const MIGRATION_4: &str = "
CREATE TABLE IF NOT EXISTS tapeop_drive_io (
    history_id INTEGER PRIMARY KEY,
    read_run INTEGER,
    drive_bytes INTEGER,
    drive_io_ns INTEGER,
    recovered_errors INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tapeop_drive_io_run ON tapeop_drive_io(read_run);
";

/// Version 4's columns of `tapeop_history`: its own clock in milliseconds
/// (`started_ms` since the epoch, `elapsed_ms` to the end), so that a tape
/// file moved in less than a second still has a wall-clock rate.
const HISTORY_MS_COLUMNS: [(&str, &str); 2] = [("started_ms", "INTEGER"), ("elapsed_ms", "INTEGER")];

/// `ALTER TABLE table ADD COLUMN column kind`, unless the column is there
/// already (an upgrade is then still additive and can be repeated).
fn add_column(tx: &rusqlite::Transaction<'_>, table: &str, column: &str, kind: &str) -> Result<()> {
    let present: bool = tx.query_row(
        &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
        [column],
        |r| r.get(0),
    )?;
    if !present {
        tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
    }
    Ok(())
}

impl Catalog {
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

    pub(super) fn table_count(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .context("not a readable sqlite catalogue")
    }

    pub(super) fn user_version(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub(super) fn check_legacy_tables(&self) -> Result<()> {
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
        // Only versions 1 and 2 touch the file rows: worth a progress line.
        let progress = if from < 2 && self.has_files_table()? {
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
        if from < 3 {
            batches.push(MIGRATION_3);
        }
        if from < 4 {
            batches.push(MIGRATION_4);
        }
        for sql in batches {
            Self::run_steps(&tx, sql, progress.as_ref())?;
        }
        if from < 4 {
            for (column, kind) in HISTORY_MS_COLUMNS {
                add_column(&tx, "tapeop_history", column, kind)?;
            }
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

    /// Whether the tapeop side tables exist (false on a legacy catalogue
    /// opened read-only before tapeop ever wrote to it).
    pub fn has_totals(&self) -> Result<bool> {
        self.has_version(1)
    }

    /// Whether the catalogue's schema is at least `version` (a catalogue
    /// only read so far may be older than [`SCHEMA_VERSION`]: its newer
    /// tables do not exist yet, and reads take them as empty).
    pub fn has_version(&self, version: i64) -> Result<bool> {
        Ok(self.user_version()? >= version)
    }
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
