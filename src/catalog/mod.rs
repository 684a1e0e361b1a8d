//! The sqlite catalogue: tapes, targets, their files and md5 sums, and the
//! backups that put a target on a tape file. This module owns opening a
//! catalogue safely (WAL, busy timeout, refusing newer versions), the
//! `Catalog` handle and the helpers for names and times; the queries are
//! split by concern: `schema` (tables, versions, upgrade), `tapes`,
//! `targets` (targets and files), `backups` (assignment, status, space),
//! `history`, `pools` (tape pools and the copies a target still lacks), `file_number` (the legacy tape file number column), `scans` (import's targets and scan rows), `labels` (the
//! catalogue id and tape labels), `drive_io` (the drive's own figures per tape file), `reports` (what the reports read),
//! `findings` (what `check` looks for), `recovery` (scan_tape's recording
//! and adopting, restore's sources) and `tree` (new targets linked into the
//! parent tree, for import and scan_tape), `tape_catalogue` (a tape's
//! catalogue file and the catalogue's snapshot). All of tapeop's SQL lives here. Reports
//! are SQL aggregates; nothing here loads all the file rows of a tape.
mod backups;
mod bench;
mod cleanings;
mod drive_io;
mod file_number;
mod findings;
mod history;
mod labels;
mod pools;
mod recovery;
mod reports;
mod scans;
mod schema;
mod status_page;
mod tape_catalogue;
mod tapes;
mod targets;
mod tree;
mod verifications;

pub use backups::{Backup, BackupStatus, CurrentBackup, LABEL_TAR_BYTES, Tally, filemark_estimate, label_estimate};
pub use drive_io::{ErrorGrowth, TapeRead};
pub use file_number::{StoredFileNumber, legacy_file_number};
pub use findings::{
    DuplicateFileNumber, FailedAttempt, MultipleBackups, OpenTapeFill, OrphanBackup, RecordedBackup, RequeuedFile,
    UnassignedTarget, UnscannedTarget,
};
pub use history::{FailedConfirm, HistoryRef, Outcome, ack_key};
pub use pools::{DEFAULT_POOL, ShortOfCopies, TargetCopy, check_pool_name};
pub use recovery::{NewFile, Recovery, RestoreSource, TargetBackup};
pub use reports::{BackupExtra, HistoryRow, TapeMarks, WhereIsHit};
pub use scans::{ImportTarget, ScanEntry, is_under};
pub use schema::SCHEMA_VERSION;
pub use status_page::LastFinished;
pub use tape_catalogue::TapeCatalogueFile;
pub use tapes::{TAPE_NAME_MAX, Tape, TapeStatus, check_tape_name, tape_name_for_path};
pub use targets::{FileRow, Target};
pub use tree::ParentFiles;
pub use verifications::{DueTape, FailedVerification};

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};

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
    copy_pools: std::cell::RefCell<Vec<String>>,
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
        let catalog = Catalog {
            conn,
            path: path.to_path_buf(),
            mode,
            ready: std::cell::Cell::new(false),
            copy_pools: Default::default(),
        };
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

    /// The underlying connection, for the catalogue's own modules only
    /// (everything outside goes through typed methods).
    fn conn(&self) -> &Connection {
        &self.conn
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
}
