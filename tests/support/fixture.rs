//! Shared helpers for the integration tests: a writable copy of the public
//! legacy fixture in a temp dir, running the real `tapeop` binary there,
//! md5 of files, and snapshots of the catalogue's legacy tables.
//!
//! Part of `support` (`use support::fixture;`). Not every test file uses
//! every helper.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use md5::{Digest, Md5};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use tempfile::TempDir;

/// The read-only public fixture made by the old tool.
pub const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/legacy-public");

/// The four tables of the old tool, in a fixed order.
pub const LEGACY_TABLES: [&str; 4] = ["tapes", "targets", "files", "backups"];

/// The fixture directory (overridable with `TAPEOP_LEGACY_FIXTURE`).
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("TAPEOP_LEGACY_FIXTURE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(FIXTURE))
}

/// Copy `src` into `dst` recursively, making every copy writable by us.
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).unwrap();
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("read_dir {}: {e}", src.display())) {
        let entry = entry.unwrap();
        let ty = entry.file_type().unwrap();
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_tree(&entry.path(), &to);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else {
            fs::copy(entry.path(), &to).unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
            fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// A writable copy of the legacy fixture in its own temp dir.
pub struct Fixture {
    tmp: TempDir,
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output as text (lossy).
    pub stdout: String,
    /// Standard error as text (lossy).
    pub stderr: String,
    /// Raw standard output.
    pub stdout_bytes: Vec<u8>,
}

impl Run {
    fn from_output(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            stdout_bytes: o.stdout,
        }
    }

    /// Panic with the whole run shown unless it exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code; run was {self:#?}");
        self
    }

    /// Panic unless stderr contains `phrase`.
    pub fn expect_stderr(&self, phrase: &str) -> &Run {
        assert!(self.stderr.contains(phrase), "stderr lacks {phrase:?}; run was {self:#?}");
        self
    }

    /// Panic unless stdout contains `phrase`.
    pub fn expect_stdout(&self, phrase: &str) -> &Run {
        assert!(self.stdout.contains(phrase), "stdout lacks {phrase:?}; run was {self:#?}");
        self
    }

    /// The lines of stderr that are not blank.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
    }
}

impl Fixture {
    /// Copy the legacy fixture into a fresh temp dir.
    pub fn new() -> Fixture {
        let tmp = tempfile::Builder::new().prefix("tapeop-legacy-").tempdir().expect("tempdir");
        copy_tree(&fixture_dir(), tmp.path());
        Fixture { tmp }
    }

    /// The copy's directory (the cwd of every run).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// A path inside the copy.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// The copy's catalogue.
    pub fn db(&self) -> PathBuf {
        self.path("tape.sqlite")
    }

    /// md5 of the copy's catalogue file.
    pub fn db_md5(&self) -> String {
        md5_file(&self.db())
    }

    /// Write a file inside the copy.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        fs::write(&p, contents).unwrap();
        p
    }

    /// A `tapeop` command with cwd = the copy and stdin closed.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tapeop"));
        c.args(args).current_dir(self.dir()).stdin(Stdio::null());
        c.env_remove("TAPEOP_CONFIG").env("NO_COLOR", "1");
        c
    }

    /// Run `tapeop ARGS` with an empty stdin.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let out = self.command(args).output().expect("run tapeop");
        Run::from_output(out)
    }

    /// Run `tapeop ARGS` with `input` on stdin.
    pub fn run_stdin<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], input: &str) -> Run {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tapeop");
        let mut stdin = child.stdin.take().unwrap();
        let data = input.as_bytes().to_vec();
        let writer = std::thread::spawn(move || {
            // The child may exit before reading everything: ignore EPIPE.
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait tapeop");
        writer.join().unwrap();
        Run::from_output(out)
    }

    /// A read-write rusqlite connection to the copy's catalogue.
    pub fn sql(&self) -> Connection {
        Connection::open(self.db()).expect("open catalogue with rusqlite")
    }

    /// Run SQL on the copy's catalogue (e.g. `update tapes set online=0`).
    pub fn exec(&self, sql: &str) {
        self.sql().execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The catalogue's `PRAGMA user_version`.
    pub fn user_version(&self) -> i64 {
        user_version(&self.db())
    }

    /// Every row of the four legacy tables, as text (`SELECT * ... ORDER BY id`).
    pub fn legacy_snapshot(&self) -> String {
        legacy_snapshot(&self.db())
    }

    /// The text of a file in the fixture's `outputs/`.
    pub fn expected_output(&self, name: &str) -> String {
        fs::read_to_string(self.path("outputs").join(name)).unwrap_or_else(|e| panic!("outputs/{name}: {e}"))
    }
}

/// md5 of a file, as 32 lowercase hex digits.
pub fn md5_file(path: &Path) -> String {
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    md5_hex(&data)
}

/// md5 of bytes, as 32 lowercase hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// `PRAGMA user_version` of an sqlite file (opened read-only).
pub fn user_version(db: &Path) -> i64 {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

fn show_value(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => format!("{r}"),
        ValueRef::Text(t) => format!("'{}'", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("x'{}'", b.iter().map(|c| format!("{c:02x}")).collect::<String>()),
    }
}

/// Rows of one table (`SELECT * FROM t ORDER BY id`), one line per row.
pub fn table_rows(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY id")).unwrap();
    let n = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        let cells: Vec<String> = (0..n).map(|i| show_value(r.get_ref(i).unwrap())).collect();
        out.push(cells.join("|"));
    }
    out
}

/// Every row of the four legacy tables of an sqlite file, as text.
pub fn legacy_snapshot(db: &Path) -> String {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut s = String::new();
    for t in LEGACY_TABLES {
        s.push_str(&format!("== {t}\n"));
        for row in table_rows(&c, t) {
            s.push_str(&row);
            s.push('\n');
        }
    }
    s
}

/// The legacy tables' rows, per table, for comparing what changed.
pub fn legacy_tables(db: &Path) -> Vec<(String, Vec<String>)> {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    LEGACY_TABLES.iter().map(|t| (t.to_string(), table_rows(&c, t))).collect()
}

/// The 512-byte-header walk of a tar file: (member name, data offset, size, type flag).
pub fn tar_members(data: &[u8]) -> Vec<(String, usize, usize, u8)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 512 <= data.len() {
        let h = &data[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&h[..name_end]).into_owned();
        let size_field: String = h[124..136].iter().take_while(|&&b| b != 0).map(|&b| b as char).collect::<String>();
        let size = usize::from_str_radix(size_field.trim(), 8).unwrap_or(0);
        let ty = h[156];
        out.push((name, off + 512, size, ty));
        off += 512 + size.div_ceil(512) * 512;
    }
    out
}
