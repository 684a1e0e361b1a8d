//! A scratch world for end-to-end tests: a temp dir with a data tree, an
//! emulated tape directory, a tape.conf and a catalogue, and helpers that
//! run the real `tapeop` binary there and assert its exit code.
//!
//! Include with `mod support;` and `use support::world;`.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rusqlite::Connection;
use tempfile::TempDir;

/// A temp dir laid out as an operator's working directory.
pub struct World {
    dir: TempDir,
}

impl World {
    /// A new world with `data/` and `emu/` and a config for a local source.
    pub fn new() -> World {
        let dir = tempfile::Builder::new().prefix("tapeop-world").tempdir().unwrap();
        fs::create_dir_all(dir.path().join("data")).unwrap();
        fs::create_dir_all(dir.path().join("emu")).unwrap();
        let w = World { dir };
        w.config("", "emulator_dir = emu");
        w
    }

    /// The world's directory (the cwd of every tapeop run).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `data/` under the root.
    pub fn data(&self) -> PathBuf {
        self.root().join("data")
    }

    /// Write tape.conf with `ssh_command` and a drive line such as
    /// `emulator_dir = emu` or `tape_device = /x/nst0`, plus `extra` lines.
    pub fn config_with(&self, ssh_command: &str, drive: &str, extra: &str) {
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = /dev/nst0\nssh_command = {ssh_command}\n{drive}\n{extra}\n"
        );
        fs::write(self.root().join("tape.conf"), text).unwrap();
    }

    /// Write tape.conf with `ssh_command` and a drive line.
    pub fn config(&self, ssh_command: &str, drive: &str) {
        self.config_with(ssh_command, drive, "");
    }

    /// Write an import list naming `targets` (raw bytes, one per line).
    pub fn list(&self, name: &str, targets: &[PathBuf]) -> PathBuf {
        let path = self.root().join(name);
        let mut f = fs::File::create(&path).unwrap();
        for t in targets {
            f.write_all(t.as_os_str().as_bytes()).unwrap();
            f.write_all(b"\n").unwrap();
        }
        path
    }

    /// A `tapeop` command with cwd = root, stdin null.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tapeop"));
        c.args(args).current_dir(self.root()).stdin(Stdio::null());
        c
    }

    /// Run tapeop and return its output, whatever the exit code.
    pub fn output<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command(args).output().expect("run tapeop")
    }

    /// Run tapeop and assert its exit code; returns the output.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S], code: i32) -> Output {
        let out = self.output(args);
        let shown: Vec<String> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        assert_eq!(
            out.status.code(),
            Some(code),
            "tapeop {} exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            shown.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The whole workflow up to a confirmed tape: import the list, open and
    /// assign tape `tape`, archive and confirm everything.
    pub fn archive_all(&self, list: &Path, tape: &str) {
        self.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        self.run(&["open_tape", tape, "--serial", &format!("SN-{tape}"), "--online", "-y"], 0);
        self.run(&["-y", "assign"], 0);
        self.run(&["archive", "--repeat"], 40);
        self.run(&["confirm", "--repeat"], 40);
    }

    /// An sqlite connection to the catalogue.
    pub fn sql(&self) -> Connection {
        Connection::open(self.root().join("tape.sqlite")).unwrap()
    }

    /// One integer from an SQL query.
    pub fn count(&self, sql: &str) -> i64 {
        self.sql().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Status of each backup, by target name: `(target, file_number, status)`.
    pub fn backups(&self) -> Vec<(String, i64, String)> {
        let conn = self.sql();
        let mut stmt = conn
            .prepare("SELECT t.name, b.file_number, b.status FROM backups b JOIN targets t ON t.id = b.target_id ORDER BY t.name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    /// The emulated tape file `n`.
    pub fn tape_file(&self, n: u64) -> PathBuf {
        self.root().join("emu").join(format!("file{n:05}.tar"))
    }
}

/// Text of an output's stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Text of an output's stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Offset and size of the content of the member whose name ends with
/// `suffix` in a tar file (ustar/GNU headers, GNU long names followed).
pub fn member_offset(tar: &[u8], suffix: &[u8]) -> Option<(usize, usize)> {
    let mut off = 0;
    let mut long: Option<Vec<u8>> = None;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            return None;
        }
        let size = usize::from_str_radix(
            std::str::from_utf8(&h[124..136]).unwrap().trim_matches(|c: char| c == '\0' || c == ' '),
            8,
        )
        .unwrap_or(0);
        let data = off + 512;
        let name = long.take().unwrap_or_else(|| {
            let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
            h[..end].to_vec()
        });
        if h[156] == b'L' {
            let mut n = tar[data..data + size].to_vec();
            while n.last() == Some(&0) {
                n.pop();
            }
            long = Some(n);
        } else if name.ends_with(suffix) && (h[156] == b'0' || h[156] == 0) {
            return Some((data, size));
        }
        off = data + size.div_ceil(512) * 512;
    }
    None
}

/// Flip one byte of a file at `offset`.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

/// A data source that holds an archive in the middle of its job: the
/// config's `ssh_command` runs a gate script that signals on the FIFO
/// `started` and then waits on the FIFO `release` before it runs the tar.
/// Nothing is timed: the test waits for `started`, acts, then releases.
pub struct Gate {
    dir: PathBuf,
}

impl Gate {
    /// A gate in `gate/` under the world's root.
    pub fn new(w: &World) -> Gate {
        let dir = w.root().join("gate");
        fs::create_dir_all(&dir).unwrap();
        for fifo in ["started", "release"] {
            nix::unistd::mkfifo(&dir.join(fifo), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        }
        let script =
            format!("echo started > '{d}/started'\nread go < '{d}/release'\nexec sh -c \"$1\"\n", d = dir.display());
        fs::write(dir.join("gate.sh"), script).unwrap();
        Gate { dir }
    }

    /// The `ssh_command` value that runs scripts through the gate.
    pub fn ssh_command(&self) -> String {
        format!("sh {}", self.dir.join("gate.sh").display())
    }

    /// Block until a job has reached the gate (panics after two minutes,
    /// so that a job that never gets there fails the test, not hangs it).
    pub fn wait_started(&self) {
        let path = self.dir.join("started");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(fs::read_to_string(path));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("no job reached the gate");
        assert_eq!(got.unwrap().trim(), "started");
    }

    /// Let the job at the gate go on.
    pub fn release(&self) {
        fs::write(self.dir.join("release"), b"go\n").unwrap();
    }
}

impl Drop for Gate {
    /// Free a job still waiting (a failed test), without blocking if none is.
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        let open = fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(self.dir.join("release"));
        if let Ok(mut f) = open {
            let _ = f.write_all(b"go\n");
        }
    }
}

impl World {
    /// `PRAGMA journal_mode` of the catalogue at `db`, read without changing it.
    pub fn sql_at(&self, db: &Path) -> String {
        let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap()
    }
}
