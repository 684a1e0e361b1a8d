//! Fault injection: every command is killed (SIGKILL, via `TAPEOP_FAULT`)
//! at each of its named fault points and at random records, the emulated
//! drive fails writes and reads with EIO, the data host's stream is cut at
//! random byte counts, the tape fills up, the catalogue's disk fills up, and
//! the wrong tape is loaded. After every case the same invariants must hold
//! (see [`check_invariants`]), and running the same command again without
//! the fault must carry on to the normal end.
//!
//! Run it alone with its summary line:
//!
//! ```sh
//! cargo test --test fault_injection -- --nocapture
//! ```
//!
//! which prints `fault injection: F faults injected, C cases passed, B bad
//! inputs tried, data lost: 0`. The random choices come from a seeded
//! xorshift; set `TAPEOP_FAULT_SEED=N` to try other ones (the seed used is
//! printed). The disk-full case mounts a small tmpfs and so needs root.

mod support;

use support::world;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Instant;

use md5::{Digest, Md5};
use rusqlite::{Connection, OptionalExtension};
use world::{World, describe, stderr};

/// Fixed seed, so a failure can be reproduced; `TAPEOP_FAULT_SEED` overrides.
const SEED: u64 = 0x5EED_7A9E_0F00_D15C;

/// Records of 4 KiB, so one target is many records.
const BLOCK: usize = 4096;

/// GNU tar with `-b 512` pads each target's archive to whole 256 KiB tar
/// records; our targets hold a bit over 200 KiB, so each is exactly 64
/// records of 4 KiB on tape.
const RECORDS_PER_TARGET: u64 = 64;

/// The label is one record.
const LABEL_RECORDS: u64 = 1;

/// Targets per set.
const SET: usize = 3;

// ---------------------------------------------------------------- random

/// xorshift64: small, seeded, no crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut r = XorShift(seed | 1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&r.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_file(path: &Path) -> String {
    md5_hex(&fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

// ---------------------------------------------------------------- tmpfs

/// A small tmpfs mounted for the disk-full catalogue; unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("the disk-full catalogue case needs mount(8): {e}"));
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {} for the disk-full catalogue case (it needs root): {}",
            dir.display(),
            stderr(&out)
        );
        Tmpfs { dir: dir.to_path_buf() }
    }

    /// Fill it up, then free `leave` bytes.
    fn fill(&self, leave: u64) {
        let path = self.dir.join("filler");
        let mut f = fs::File::create(&path).unwrap();
        let chunk = vec![0xA5u8; 4096];
        let mut len = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(k) => len += k as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        f.set_len(len.saturating_sub(leave)).unwrap();
    }

    fn unfill(&self) {
        fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

// ---------------------------------------------------------------- the lab

/// A world plus what the suite needs to know about it: where the catalogue
/// is, which emulator directory holds which tape, the config in force.
struct Lab {
    /// Dropped (unmounted) before the world's temp dir is removed.
    mount: Option<Tmpfs>,
    w: World,
    /// The catalogue, relative to the root.
    db: String,
    ssh: String,
    /// The emulator directory in the config, relative to the root.
    emu: String,
    extra: String,
    /// Tape name -> its emulator directory (relative to the root).
    tapes: BTreeMap<String, String>,
    targets: Vec<PathBuf>,
}

impl Lab {
    fn new() -> Lab {
        Lab::with_db("tape.sqlite", None)
    }

    fn with_db(db: &str, mount: Option<&str>) -> Lab {
        let w = World::new();
        let mount = mount.map(|size| Tmpfs::mount(&w.root().join(Path::new(db).parent().unwrap()), size));
        let lab = Lab {
            mount,
            w,
            db: db.to_string(),
            ssh: String::new(),
            emu: "emu".into(),
            extra: String::new(),
            tapes: BTreeMap::new(),
            targets: Vec::new(),
        };
        lab.write_config();
        lab
    }

    fn root(&self) -> &Path {
        self.w.root()
    }

    fn write_config(&self) {
        let text = format!(
            "[default]\ndatabase_file = {}\ntape_device = /dev/nst0\nssh_command = {}\nemulator_dir = {}\nblock_size = 4K\nbuffer_size = 64K\n{}\n",
            self.db, self.ssh, self.emu, self.extra
        );
        fs::write(self.root().join("tape.conf"), text).unwrap();
    }

    fn set_ssh(&mut self, ssh: &str) {
        self.ssh = ssh.into();
        self.write_config();
    }

    fn set_extra(&mut self, extra: &str) {
        self.extra = extra.into();
        self.write_config();
    }

    fn set_emu(&mut self, emu: &str) {
        fs::create_dir_all(self.root().join(emu)).unwrap();
        self.emu = emu.into();
        self.write_config();
    }

    fn sql(&self) -> Connection {
        Connection::open(self.root().join(&self.db)).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.sql().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Make `n` targets `data/{prefix}{i}` (a 200 KiB random file, a small
    /// one in a subdirectory, a symlink) and a list file naming them.
    fn add_targets(&mut self, prefix: &str, n: usize) -> String {
        let mut made = Vec::new();
        for i in 0..n {
            let t = self.w.data().join(format!("{prefix}{i}"));
            fs::create_dir_all(t.join("sub")).unwrap();
            let seed = (prefix.bytes().map(u64::from).sum::<u64>() << 8) + i as u64 + 1;
            fs::write(t.join("big.bin"), pseudo_random(seed, 200 * 1024)).unwrap();
            fs::write(t.join("sub/small.txt"), format!("target {prefix}{i}\n")).unwrap();
            symlink("sub/small.txt", t.join("link")).unwrap();
            made.push(t);
        }
        let list = format!("{prefix}.txt");
        self.w.list(&list, &made);
        self.targets.extend(made);
        list
    }

    fn command(&self, args: &[&str], fault: Option<&str>) -> Command {
        let mut c = self.w.command(args);
        c.env_remove("TAPEOP_FAULT");
        if let Some(f) = fault {
            c.env("TAPEOP_FAULT", f);
        }
        c
    }

    fn output(&self, args: &[&str], fault: Option<&str>) -> Output {
        self.command(args, fault).output().expect("run tapeop")
    }

    /// Run without a fault and require `code`.
    fn run(&self, args: &[&str], code: i32) -> Output {
        let out = self.output(args, None);
        assert_eq!(out.status.code(), Some(code), "tapeop {} should exit {code}\n{}", args.join(" "), describe(&out));
        out
    }

    /// Run with `TAPEOP_FAULT=fault` and require death by SIGKILL.
    fn run_killed(&self, args: &[&str], fault: &str) -> Output {
        let out = self.output(args, Some(fault));
        assert_eq!(
            out.status.signal(),
            Some(9),
            "TAPEOP_FAULT={fault} tapeop {} should die by SIGKILL\n{}",
            args.join(" "),
            describe(&out)
        );
        out
    }

    fn open_tape(&mut self, name: &str) {
        self.run(&["open_tape", name, "--serial", &format!("SN-{name}"), "--online", "-y"], 0);
        self.tapes.insert(name.to_string(), self.emu.clone());
    }

    fn tape_dir(&self, tape: &str) -> PathBuf {
        self.root().join(&self.tapes[tape])
    }

    /// 1 when the catalogue records a catalogue file at the end of `tape`.
    fn catalogue_files(&self, tape: &str) -> u64 {
        let table = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tapeop_tape_catalog'";
        if self.count(table) == 0 {
            return 0;
        }
        let sql = format!(
            "SELECT COUNT(*) FROM tapeop_tape_catalog c JOIN tapes t ON t.id = c.tape_id WHERE t.name = '{tape}'"
        );
        self.count(&sql) as u64
    }

    /// The tape files of an emulated tape: file00000.tar, file00001.tar, ...
    fn tape_files(&self, tape: &str) -> u64 {
        let dir = self.tape_dir(tape);
        (0..).take_while(|n| dir.join(format!("file{n:05}.tar")).exists()).count() as u64
    }

    fn tape_file(&self, tape: &str, n: i64) -> PathBuf {
        self.tape_dir(tape).join(format!("file{n:05}.tar"))
    }

    /// md5 of every file in an emulator directory (lock file excepted).
    fn tape_md5s(&self, dir: &str) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for e in fs::read_dir(self.root().join(dir)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name != ".tapeop.lock" {
                m.insert(name, md5_file(&e.path()));
            }
        }
        m
    }

    /// (target, tape, file_number, status) of every backup.
    fn backups(&self) -> Vec<(String, String, i64, String)> {
        let conn = self.sql();
        let mut stmt = conn
            .prepare(
                "SELECT t.name, COALESCE(tp.name, '?'), b.file_number, b.status FROM backups b
                 JOIN targets t ON t.id = b.target_id LEFT JOIN tapes tp ON tp.id = b.tape_id ORDER BY t.name",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
    }

    fn online(&self) -> Option<String> {
        self.sql().query_row("SELECT name FROM tapes WHERE online = 1", [], |r| r.get(0)).optional().unwrap()
    }
}

// ---------------------------------------------------------------- states

/// Where a case starts.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// Targets and a list file, no catalogue.
    Listed,
    /// Imported, tape T1 open and online, nothing assigned.
    Opened,
    /// Imported, T1 open, everything assigned, nothing on tape.
    Fresh,
    /// Fresh, then `archive --repeat`: three tape files recorded.
    Archived,
    /// Two tape files confirmed and one recorded, a second set imported,
    /// not assigned.
    MidlifeUnassigned,
    /// MidlifeUnassigned with the second set assigned.
    Midlife,
}

fn setup(lab: &mut Lab, s: Setup) -> String {
    let list = lab.add_targets("t", SET);
    match s {
        Setup::Listed => return list,
        _ => {
            lab.run(&["-y", "import", &list], 0);
            lab.open_tape("T1");
        }
    }
    match s {
        Setup::Opened => {}
        Setup::Fresh => {
            lab.run(&["-y", "assign"], 0);
        }
        Setup::Archived => {
            lab.run(&["-y", "assign"], 0);
            lab.run(&["archive", "--repeat"], 40);
        }
        Setup::MidlifeUnassigned | Setup::Midlife => {
            lab.run(&["-y", "assign"], 0);
            lab.run(&["archive", "--repeat"], 40);
            lab.run(&["confirm"], 0);
            lab.run(&["confirm"], 0);
            let second = lab.add_targets("u", SET);
            lab.run(&["-y", "import", &second], 0);
            if matches!(s, Setup::Midlife) {
                lab.run(&["-y", "assign"], 0);
            }
            return second;
        }
        Setup::Listed => unreachable!(),
    }
    list
}

/// Records the `archive --repeat` of this setup writes (through the
/// `archive-block` point), and so the largest K that surely fires.
fn records_to_write(s: Setup) -> u64 {
    match s {
        Setup::Fresh | Setup::Midlife => RECORDS_PER_TARGET * SET as u64,
        _ => 0,
    }
}

// ---------------------------------------------------------------- invariants

/// What must not change: every recorded or confirmed tape file, its status
/// and the md5 of its emulated tape file, before the fault.
struct BeforeState {
    written: BTreeMap<(String, i64), (String, String)>,
}

impl BeforeState {
    fn capture(lab: &Lab) -> BeforeState {
        let mut written = BTreeMap::new();
        if lab.root().join(&lab.db).exists() {
            for (_, tape, n, status) in lab.backups() {
                if status == "recorded" || status == "confirmed" {
                    let md5 = md5_file(&lab.tape_file(&tape, n));
                    written.insert((tape, n), (status, md5));
                }
            }
        }
        BeforeState { written }
    }
}

/// The invariants after any fault. Returns one line per violation.
///
/// (a) every recorded or confirmed backup's tape file holds exactly its
///     target: `confirm N --retry --no-db-update` exits 0;
/// (b) no tape file recorded or confirmed before the fault changed (same
///     md5, still at least as far along: confirmed stays confirmed);
/// (c) the append point is right: the tape holds (highest written file + 1)
///     files (or the label only), or one more when the last archive attempt
///     on it (history) did not end `ok` — a partial file the next archive
///     writes over;
/// (d) `PRAGMA integrity_check` is ok, no backup points at a missing
///     target, no file number is taken twice on a tape, no target has two
///     backups, and `tapeop_target_totals` equals the files table.
fn check_invariants(lab: &Lab, before: &BeforeState) -> Vec<String> {
    let mut v = Vec::new();
    if !lab.root().join(&lab.db).exists() {
        return v;
    }
    let conn = lab.sql();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    if one("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'backups'") == 0 {
        // A catalogue whose creation failed (disk full): no tables yet.
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        if integrity != "ok" {
            v.push(format!("(d) integrity_check of an empty catalogue: {integrity}"));
        }
        return v;
    }

    // (d)
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    if integrity != ["ok"] {
        v.push(format!("(d) integrity_check: {integrity:?}"));
    }
    let orphans =
        one("SELECT COUNT(*) FROM backups b WHERE NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = b.target_id)");
    if orphans != 0 {
        v.push(format!("(d) {orphans} backups point at a missing target"));
    }
    let dups =
        one("SELECT COUNT(*) FROM (SELECT tape_id, file_number FROM backups WHERE status IN ('recorded','confirmed')
         GROUP BY tape_id, file_number HAVING COUNT(*) > 1)");
    if dups != 0 {
        v.push(format!("(d) {dups} tape file numbers are held by two backups"));
    }
    let multi = one("SELECT COUNT(*) FROM (SELECT target_id FROM backups GROUP BY target_id HAVING COUNT(*) > 1)");
    if multi != 0 {
        v.push(format!("(d) {multi} targets have more than one backup"));
    }
    // The delete and update triggers keep the totals; inserts are folded in
    // up to the high-water mark (schema version 2, no insert trigger).
    let upgraded = one("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tapeop_target_totals'") == 1;
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'tapeop_files_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    if upgraded && triggers != ["tapeop_files_del", "tapeop_files_upd"] {
        v.push(format!("(d) the totals triggers are {triggers:?}"));
    }
    let has_totals = one("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tapeop_target_totals'") == 1;
    if has_totals {
        let rows = |sql: &str| -> Vec<(i64, i64, i64)> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        // A target whose files were all deleted keeps a zero row.
        let totals = rows(
            "SELECT target_id, file_count, size_kb FROM tapeop_target_totals WHERE file_count != 0 ORDER BY target_id",
        );
        let actual = rows(
            "SELECT target_id, COUNT(*), COALESCE(SUM(size_kb), 0) FROM files
             WHERE id <= (SELECT CAST(value AS INTEGER) FROM tapeop_meta WHERE key = 'totals_file_id')
             GROUP BY target_id ORDER BY target_id",
        );
        if totals != actual {
            v.push(format!("(d) tapeop_target_totals {totals:?} != files {actual:?}"));
        }
    }

    // (b)
    let now: BTreeMap<(String, i64), String> = lab
        .backups()
        .into_iter()
        .filter(|b| b.3 == "recorded" || b.3 == "confirmed")
        .map(|b| ((b.1, b.2), b.3))
        .collect();
    for ((tape, n), (status, md5)) in &before.written {
        match now.get(&(tape.clone(), *n)) {
            None => v.push(format!("(b) tape \"{tape}\" file {n} was {status} and is no longer recorded")),
            Some(s) if status == "confirmed" && s != "confirmed" => {
                v.push(format!("(b) tape \"{tape}\" file {n} was confirmed and is now {s}"))
            }
            _ => {}
        }
        let path = lab.tape_file(tape, *n);
        let got = if path.exists() { md5_file(&path) } else { "missing".into() };
        if &got != md5 {
            v.push(format!("(b) tape \"{tape}\" file {n} ({status}) changed: md5 {md5} -> {got}"));
        }
    }

    // (c)
    for tape in lab.tapes.keys() {
        let (id, label): (i64, Option<String>) = conn
            .query_row(
                "SELECT t.id, i.label FROM tapes t LEFT JOIN tapeop_tape_info i ON i.tape_id = t.id WHERE t.name = ?1",
                [tape],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let highest: Option<i64> = conn
            .query_row(
                "SELECT MAX(file_number) FROM backups WHERE tape_id = ?1 AND status IN ('recorded','confirmed')",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        let last = |kind: &str| -> Option<Option<String>> {
            conn.query_row(
                "SELECT outcome FROM tapeop_history WHERE kind = ?1 AND tape = ?2 ORDER BY id DESC LIMIT 1",
                [kind, tape.as_str()],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
        };
        let base = match highest {
            Some(h) => h as u64 + 1,
            None => u64::from(label.is_some()),
        };
        // A closed or full tape ends with its catalogue file.
        let base = base + lab.catalogue_files(tape);
        let mut allowed = vec![base];
        if matches!(last("archive"), Some(o) if o.as_deref() != Some("ok")) {
            allowed.push(base + 1);
        }
        if highest.is_none() && label.is_some() && !matches!(last("label"), Some(Some(o)) if o == "ok") {
            allowed.push(0); // the label was recorded, then its writing failed before file 0 began
        }
        let files = lab.tape_files(tape);
        if !allowed.contains(&files) {
            v.push(format!(
                "(c) tape \"{tape}\" holds {files} tape files; the catalogue allows {allowed:?} (highest written {highest:?}, last archive outcome {:?})",
                last("archive")
            ));
        }
    }
    drop(conn);

    // (a)
    for (_, tape, n, status) in lab.backups() {
        if status != "recorded" && status != "confirmed" {
            continue;
        }
        if let Err(e) = confirm_readonly(lab, &tape, n) {
            v.push(format!("(a) tape \"{tape}\" file {n} ({status}) does not hold its target: {e}"));
        }
    }
    v
}

/// `confirm N --retry --no-db-update` of a tape file: on the online tape
/// directly; on another tape through a copy of the catalogue with that tape
/// online (the real catalogue is not touched).
fn confirm_readonly(lab: &Lab, tape: &str, n: i64) -> Result<(), String> {
    let num = n.to_string();
    let args = ["confirm", num.as_str(), "--retry", "--no-db-update"];
    let out = if lab.online().as_deref() == Some(tape) && lab.tapes[tape] == lab.emu {
        lab.output(&args, None)
    } else {
        let copy = lab.root().join("invariant-copy");
        let _ = fs::remove_dir_all(&copy);
        fs::create_dir_all(&copy).unwrap();
        let db = lab.root().join(&lab.db);
        fs::copy(&db, copy.join("tape.sqlite")).unwrap();
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        if wal.exists() {
            fs::copy(&wal, copy.join("tape.sqlite-wal")).unwrap();
        }
        let conn = Connection::open(copy.join("tape.sqlite")).unwrap();
        conn.execute("UPDATE tapes SET online = (name = ?1)", [tape]).unwrap();
        drop(conn);
        let conf = copy.join("tape.conf");
        fs::write(
            &conf,
            format!(
                "[default]\ndatabase_file = {}\ntape_device = /dev/nst0\nssh_command =\nemulator_dir = {}\n",
                copy.join("tape.sqlite").display(),
                lab.tape_dir(tape).display()
            ),
        )
        .unwrap();
        let conf = conf.display().to_string();
        let mut all = vec!["-c", conf.as_str()];
        all.extend(args);
        lab.output(&all, None)
    };
    match out.status.code() {
        Some(0) => Ok(()),
        _ => Err(stderr(&out).trim().to_string()),
    }
}

// ---------------------------------------------------------------- expected ends

/// Every target is scanned once, with exactly its files on disk.
fn assert_catalogue_matches_disk(lab: &Lab) {
    let conn = lab.sql();
    for t in &lab.targets {
        let name = t.to_str().unwrap();
        let (id, scanned): (i64, i64) = conn
            .query_row("SELECT id, scanned FROM targets WHERE name = ?1", [name], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap_or_else(|e| panic!("target {name} missing from the catalogue: {e}"));
        assert_eq!(scanned, 1, "target {name} is not scanned");
        let mut stmt = conn.prepare("SELECT name, md5sum FROM files WHERE target_id = ?1 ORDER BY name").unwrap();
        let rows: Vec<(String, String)> =
            stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        let want = vec![
            ("big.bin".to_string(), md5_file(&t.join("big.bin"))),
            ("link".to_string(), "symlink".to_string()),
            ("sub/small.txt".to_string(), md5_file(&t.join("sub/small.txt"))),
        ];
        assert_eq!(rows, want, "file rows of {name}");
    }
}

/// Every target has exactly one backup, on the online tape.
fn assert_all_assigned(lab: &Lab) {
    let b = lab.backups();
    assert_eq!(b.len(), lab.targets.len(), "one backup per target: {b:?}");
    assert_eq!(
        lab.count("SELECT COUNT(*) FROM targets t WHERE NOT EXISTS (SELECT 1 FROM backups b WHERE b.target_id = t.id)"),
        0
    );
}

/// Archive and confirm what is left; then every target is confirmed, once,
/// and each tape's data files are numbered 1, 2, 3, ... with no gap.
fn finish(lab: &Lab) {
    lab.run(&["archive", "--repeat"], 40);
    lab.run(&["confirm", "--repeat"], 40);
    assert_all_confirmed(lab);
}

fn assert_all_confirmed(lab: &Lab) {
    let b = lab.backups();
    assert_eq!(b.len(), lab.targets.len(), "one backup per target: {b:?}");
    assert!(b.iter().all(|x| x.3 == "confirmed"), "everything confirmed: {b:?}");
    for tape in lab.tapes.keys() {
        let mut nums: Vec<i64> = b.iter().filter(|x| &x.1 == tape).map(|x| x.2).collect();
        nums.sort();
        let want: Vec<i64> = (1..=nums.len() as i64).collect();
        assert_eq!(nums, want, "tape {tape} file numbers");
        let files = nums.len() as u64 + 1 + lab.catalogue_files(tape);
        assert_eq!(lab.tape_files(tape), files, "tape {tape} holds the label, its files (and its catalogue file)");
    }
}

// ---------------------------------------------------------------- cases

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fault,
    BadInput,
}

/// A case's body: it pushes invariant violations and panics on anything else.
type CaseFn = Box<dyn FnOnce(&mut Vec<String>) + Send>;

struct Case {
    name: String,
    kind: Kind,
    run: CaseFn,
}

fn case(name: String, kind: Kind, run: impl FnOnce(&mut Vec<String>) + Send + 'static) -> Case {
    Case { name, kind, run: Box::new(run) }
}

/// What running the command again without the fault must do.
#[derive(Debug, Clone, Copy)]
enum End {
    /// Exit with this code, then every target scanned with its files.
    Import(i32),
    /// Exit 0, then every target assigned.
    Assign,
    /// Exit 0, then the tape is closed and holds no assigned backup.
    Close,
    /// Exit with this code, then archive and confirm the rest.
    Finish(i32),
}

/// Kill `args` at `fault`, check, run `args` again, check, reach the end.
fn kill_case(s: Setup, args: &'static [&'static str], fault: String, end: End) -> Case {
    let name = format!("{} [TAPEOP_FAULT={fault}] from {s:?}", args.join(" "));
    case(name, Kind::Fault, move |v: &mut Vec<String>| {
        let mut lab = Lab::new();
        let list = setup(&mut lab, s);
        let args: Vec<&str> = args.iter().map(|a| if *a == "LIST" { list.as_str() } else { a }).collect();
        let before = BeforeState::capture(&lab);
        let backups_before = if lab.root().join(&lab.db).exists() { lab.backups() } else { Vec::new() };
        lab.run_killed(&args, &fault);
        v.extend(check_invariants(&lab, &before));
        match end {
            End::Import(_) => {
                // A target is either unscanned or scanned with all its files.
                let conn = lab.sql();
                let partial: i64 = conn
                    .query_row(
                        "SELECT COUNT(*) FROM targets t WHERE t.scanned = 1 AND (SELECT COUNT(*) FROM files f WHERE f.target_id = t.id) != 3",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                if partial != 0 {
                    v.push(format!("{partial} targets marked scanned with a partial file list"));
                }
            }
            End::Assign | End::Close => {
                if lab.backups() != backups_before {
                    v.push(format!("a killed transaction left a change: {:?} -> {:?}", backups_before, lab.backups()));
                }
            }
            End::Finish(_) => {}
        }
        match end {
            End::Import(code) => {
                lab.run(&args, code);
                assert_catalogue_matches_disk(&lab);
            }
            End::Assign => {
                lab.run(&args, 0);
                assert_all_assigned(&lab);
            }
            End::Close => {
                lab.run(&args, 0);
                let (status, online): (String, i64) = lab
                    .sql()
                    .query_row("SELECT status, online FROM tapes WHERE name = 'T1'", [], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap();
                assert_eq!((status.as_str(), online), ("closed", 0));
                assert_eq!(lab.count("SELECT COUNT(*) FROM backups WHERE status IN ('assigned','new')"), 0);
            }
            End::Finish(code) => {
                lab.run(&args, code);
            }
        }
        v.extend(check_invariants(&lab, &before));
        if let End::Finish(_) = end {
            finish(&lab);
            v.extend(check_invariants(&lab, &before));
        }
    })
}

/// `archive --repeat` with the emulated drive failing the K-th record write.
fn drive_eio_case(s: Setup, k: u64) -> Case {
    case(
        format!("archive --repeat [TAPEOP_FAULT=drive-eio:{k}] from {s:?}"),
        Kind::Fault,
        move |v: &mut Vec<String>| {
            let mut lab = Lab::new();
            setup(&mut lab, s);
            let before = BeforeState::capture(&lab);
            let out = lab.output(&["archive", "--repeat"], Some(&format!("drive-eio:{k}")));
            let err = stderr(&out);
            if k <= LABEL_RECORDS && matches!(s, Setup::Fresh) {
                // The label itself failed: refused before any data was written.
                assert_eq!(out.status.code(), Some(1), "label write failing\n{}", describe(&out));
                assert!(err.contains("Input/output error"), "{err}");
            } else {
                assert_eq!(out.status.code(), Some(42), "drive EIO\n{}", describe(&out));
                assert!(err.contains("Input/output error") && err.contains("nothing was recorded"), "{err}");
            }
            assert!(lab.backups().iter().any(|b| b.3 == "assigned"), "the failed target stays assigned");
            v.extend(check_invariants(&lab, &before));
            finish(&lab);
            v.extend(check_invariants(&lab, &before));
        },
    )
}

/// `confirm --repeat` with the emulated drive failing the K-th record read.
fn drive_read_eio_case(k: u64) -> Case {
    case(
        format!("confirm --repeat [TAPEOP_FAULT=drive-read-eio:{k}] from Archived"),
        Kind::Fault,
        move |v: &mut Vec<String>| {
            let mut lab = Lab::new();
            setup(&mut lab, Setup::Archived);
            let before = BeforeState::capture(&lab);
            let out = lab.output(&["confirm", "--repeat"], Some(&format!("drive-read-eio:{k}")));
            assert_eq!(out.status.code(), Some(1), "read EIO\n{}", describe(&out));
            assert!(stderr(&out).contains("Input/output error"), "{}", describe(&out));
            let failed: (i64, String) = lab
                .sql()
                .query_row(
                    "SELECT file_number, outcome FROM tapeop_history WHERE kind = 'confirm' AND outcome != 'ok'
                     ORDER BY id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(failed.1, "failed");
            let status = lab.backups().into_iter().find(|b| b.2 == failed.0).unwrap().3;
            assert_eq!(status, "recorded", "the file whose read failed is not marked");
            v.extend(check_invariants(&lab, &before));
            // confirm next passes over a tape file whose last confirm failed;
            // --retry reads it again.
            lab.run(&["confirm", "--repeat"], 40);
            lab.run(&["confirm", "--repeat", "--retry"], 40);
            assert_all_confirmed(&lab);
            v.extend(check_invariants(&lab, &before));
        },
    )
}

const DROP_SSH: &str = r#"sh -c 'eval "$1" | head -c N; exit 255' sh"#;

/// `archive --repeat` while the "ssh connection" drops after N bytes.
fn ssh_drop_archive_case(s: Setup, n: u64) -> Case {
    case(
        format!("archive --repeat with ssh dropping after {n} bytes, from {s:?}"),
        Kind::Fault,
        move |v: &mut Vec<String>| {
            let mut lab = Lab::new();
            setup(&mut lab, s);
            let before = BeforeState::capture(&lab);
            lab.set_ssh(&DROP_SSH.replace('N', &n.to_string()));
            let out = lab.run(&["archive", "--repeat"], 42);
            assert!(stderr(&out).contains("nothing was recorded"), "{}", describe(&out));
            v.extend(check_invariants(&lab, &before));
            lab.set_ssh("");
            lab.run(&["archive", "--repeat"], 40);
            v.extend(check_invariants(&lab, &before));
            finish(&lab);
            v.extend(check_invariants(&lab, &before));
        },
    )
}

/// `import` while the "ssh connection" drops after N bytes.
fn ssh_drop_import_case(n: u64) -> Case {
    case(format!("import with ssh dropping after {n} bytes"), Kind::Fault, move |v: &mut Vec<String>| {
        let mut lab = Lab::new();
        let list = setup(&mut lab, Setup::Listed);
        lab.set_ssh(&DROP_SSH.replace('N', &n.to_string()));
        let out = lab.run(&["-y", "import", &list], 1);
        assert!(stderr(&out).contains("could not be scanned"), "{}", describe(&out));
        assert_eq!(lab.count("SELECT COUNT(*) FROM targets WHERE scanned = 1"), 0, "no scan succeeded");
        assert_eq!(lab.count("SELECT COUNT(*) FROM files"), 0, "no partial file rows");
        let before = BeforeState::capture(&lab);
        v.extend(check_invariants(&lab, &before));
        lab.set_ssh("");
        lab.run(&["-y", "import", &list], 0);
        assert_catalogue_matches_disk(&lab);
        v.extend(check_invariants(&lab, &before));
    })
}

/// The tape fills up at `capacity` bytes: exit 43, the tape is marked full,
/// the target stays assigned; then the rest goes to a second tape.
fn enospc_case(capacity: u64) -> Case {
    case(
        format!("archive --repeat onto a tape that is full at {capacity} bytes"),
        Kind::Fault,
        move |v: &mut Vec<String>| {
            let mut lab = Lab::new();
            setup(&mut lab, Setup::Fresh);
            let before = BeforeState::capture(&lab);
            lab.set_extra(&format!("emulator_capacity = {capacity}"));
            let out = lab.run(&["archive", "--repeat"], 43);
            assert!(stderr(&out).contains("now marked full"), "{}", describe(&out));
            assert_eq!(
                lab.count("SELECT full FROM tapeop_tape_info ti JOIN tapes t ON t.id = ti.tape_id WHERE t.name = 'T1'"),
                1
            );
            assert!(lab.backups().iter().any(|b| b.3 == "assigned"), "the target that did not fit stays assigned");
            v.extend(check_invariants(&lab, &before));
            // Without the capacity limit the tape is still marked full: refused, unchanged.
            lab.set_extra("");
            let tape = lab.tape_md5s("emu");
            let out = lab.run(&["archive", "--repeat"], 1);
            assert!(stderr(&out).contains("is full"), "{}", describe(&out));
            assert_eq!(lab.tape_md5s("emu"), tape, "a full tape is not written");
            let out = lab.run(&["-y", "assign"], 1);
            assert!(stderr(&out).contains("is full"), "a full tape takes no more targets\n{}", describe(&out));
            lab.run(&["confirm", "--repeat"], 40);
            lab.run(&["-y", "close_tape"], 0);
            lab.set_emu("emu2");
            lab.open_tape("T2");
            lab.run(&["-y", "assign"], 0);
            v.extend(check_invariants(&lab, &before));
            lab.run(&["archive", "--repeat"], 40);
            lab.run(&["confirm", "--repeat"], 40);
            let b = lab.backups();
            assert!(b.iter().all(|x| x.3 == "confirmed") && b.len() == lab.targets.len(), "{b:?}");
            v.extend(check_invariants(&lab, &before));
        },
    )
}

/// The catalogue's file system fills up (a small tmpfs) with `leave` bytes
/// free while `args` runs: whatever the command manages, it fails cleanly
/// (no signal) and loses nothing; once there is space again it carries on.
fn disk_full_case(s: Setup, args: &'static [&'static str], leave: u64) -> Case {
    let name = format!("{} with the catalogue's disk full ({leave} bytes free), from {s:?}", args.join(" "));
    case(name, Kind::Fault, move |v: &mut Vec<String>| {
        let mut lab = Lab::with_db("cat/tape.sqlite", Some("2m"));
        let list = setup(&mut lab, s);
        let args: Vec<&str> = args.iter().map(|a| if *a == "LIST" { list.as_str() } else { a }).collect();
        let before = BeforeState::capture(&lab);
        let mount = lab.mount.as_ref().unwrap();
        mount.fill(leave);
        let out = lab.output(&args, None);
        mount.unfill();
        assert!(out.status.signal().is_none(), "a full disk must not crash tapeop\n{}", describe(&out));
        let code = out.status.code().unwrap();
        assert!([0, 1, 40, 42].contains(&code), "unexpected exit code\n{}", describe(&out));
        if code != 0 && code != 40 {
            let err = stderr(&out);
            assert!(err.lines().count() >= 1 && err.starts_with("tapeop: "), "a message: {err}");
        }
        v.extend(check_invariants(&lab, &before));
        match args[..] {
            ["-y", "import", _] => {
                lab.run(&args, 0);
                assert_catalogue_matches_disk(&lab);
                lab.open_tape("T1");
                lab.run(&["-y", "assign"], 0);
            }
            ["-y", "assign"] => {
                lab.run(&args, if code == 0 { 40 } else { 0 });
                assert_all_assigned(&lab);
            }
            _ => {
                lab.run(&args, 40);
            }
        }
        v.extend(check_invariants(&lab, &before));
        finish(&lab);
        v.extend(check_invariants(&lab, &before));
    })
}

// ---------------------------------------------------------------- wrong tapes

/// Two tapes of one catalogue: T1 (closed, three files) in `emu`, T2
/// (online, one file, three assigned) in `emu2`.
fn two_tapes(lab: &mut Lab) {
    setup(lab, Setup::Archived);
    lab.run(&["confirm", "--repeat"], 40);
    lab.run(&["-y", "close_tape"], 0);
    let second = lab.add_targets("u", SET + 1);
    lab.run(&["-y", "import", &second], 0);
    lab.set_emu("emu2");
    lab.open_tape("T2");
    lab.run(&["-y", "assign"], 0);
    lab.run(&["archive"], 0);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != ".tapeop.lock" {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Load the wrong tape into the drive (swap the online tape's emulator
/// directory for `wrong`), `archive` must refuse with `phrase`, exit 1,
/// tape and catalogue unchanged; the right tape back, archive carries on.
fn wrong_tape_case(what: &'static str, phrase: &'static str, make_wrong: fn(&Lab, &Path)) -> Case {
    case(format!("archive with the wrong tape loaded: {what}"), Kind::BadInput, move |v: &mut Vec<String>| {
        let mut lab = Lab::new();
        two_tapes(&mut lab);
        let before = BeforeState::capture(&lab);
        let real = lab.root().join("emu2.real");
        fs::rename(lab.root().join("emu2"), &real).unwrap();
        let loaded = lab.root().join("emu2");
        make_wrong(&lab, &loaded);
        let tape = lab.tape_md5s("emu2");
        let rows = lab.backups();
        let history = lab.count("SELECT COUNT(*) FROM tapeop_history");
        for args in [&["archive"][..], &["archive", "--repeat"]] {
            let out = lab.run(args, 1);
            let err = stderr(&out);
            assert!(err.contains(phrase), "{what}: expected {phrase:?} in {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        }
        if lab.tape_md5s("emu2") != tape {
            v.push(format!("wrong tape ({what}) was written to"));
        }
        if lab.backups() != rows || lab.count("SELECT COUNT(*) FROM tapeop_history") != history {
            v.push(format!("wrong tape ({what}): the catalogue changed"));
        }
        fs::remove_dir_all(&loaded).unwrap();
        fs::rename(&real, &loaded).unwrap();
        v.extend(check_invariants(&lab, &before));
        finish(&lab);
        v.extend(check_invariants(&lab, &before));
    })
}

fn wrong_tape_cases() -> Vec<Case> {
    vec![
        wrong_tape_case(
            "another tape of this catalogue (T1 where T2 is online)",
            "label says \"T1\"",
            |lab, loaded| {
                copy_dir(&lab.root().join("emu"), loaded);
            },
        ),
        wrong_tape_case("a tape of another catalogue that is also named T2", "wrong tape", |_, loaded| {
            let mut other = Lab::new();
            two_tapes(&mut other);
            copy_dir(&other.root().join("emu2"), loaded);
        }),
        wrong_tape_case("a blank tape", "wrong tape: the loaded tape is blank", |_, loaded| {
            fs::create_dir_all(loaded).unwrap();
        }),
        wrong_tape_case("the right tape with no label at file 0", "has no tapeop label", |lab, loaded| {
            copy_dir(&lab.root().join("emu2.real"), loaded);
            fs::write(loaded.join("file00000.tar"), pseudo_random(7, BLOCK)).unwrap();
        }),
        wrong_tape_case("the right tape with an extra tape file at the end", "out of step", |lab, loaded| {
            copy_dir(&lab.root().join("emu2.real"), loaded);
            fs::copy(loaded.join("file00001.tar"), loaded.join("file00002.tar")).unwrap();
        }),
        wrong_tape_case("the right tape missing its last tape file", "out of step", |lab, loaded| {
            copy_dir(&lab.root().join("emu2.real"), loaded);
            fs::remove_file(loaded.join("file00001.tar")).unwrap();
        }),
    ]
}

// ---------------------------------------------------------------- the suite

fn all_cases(rng: &mut XorShift) -> Vec<Case> {
    let mut cases = Vec::new();
    let f = |s: &str| s.to_string();

    // import
    const IMPORT: &[&str] = &["-y", "import", "LIST"];
    for fault in [
        "import-after-targets",
        "import-before-commit:1",
        "import-before-commit:3",
        "import-after-scan:1",
        "import-after-scan:3",
    ] {
        cases.push(kill_case(Setup::Listed, IMPORT, f(fault), End::Import(0)));
    }
    // assign
    for fault in ["assign-mid:1", "assign-mid:3"] {
        cases.push(kill_case(Setup::MidlifeUnassigned, &["-y", "assign"], f(fault), End::Assign));
    }
    cases.push(kill_case(Setup::Opened, &["-y", "assign"], f("assign-mid:2"), End::Assign));
    // close_tape
    cases.push(kill_case(Setup::Midlife, &["-y", "close_tape", "--force"], f("close-before-commit"), End::Close));
    // archive, one target
    const ARCHIVE: &[&str] = &["archive"];
    const REPEAT: &[&str] = &["archive", "--repeat"];
    for (s, fault) in [
        (Setup::Fresh, "label-before-filemark"),
        (Setup::Fresh, "archive-block:1"),
        (Setup::Midlife, "archive-block:40"),
        (Setup::Fresh, "archive-after-filemark"),
        (Setup::Midlife, "archive-after-filemark"),
        (Setup::Fresh, "archive-after-record"),
        (Setup::Midlife, "archive-after-record"),
    ] {
        cases.push(kill_case(s, ARCHIVE, f(fault), End::Finish(0)));
    }
    // archive --repeat
    for (s, fault) in [
        (Setup::Fresh, "label-before-filemark"),
        (Setup::Fresh, "archive-block:100"),
        (Setup::Fresh, "archive-after-filemark:2"),
        (Setup::Midlife, "archive-after-record:2"),
    ] {
        cases.push(kill_case(s, REPEAT, f(fault), End::Finish(40)));
    }
    // confirm, confirm --repeat
    cases.push(kill_case(Setup::Midlife, &["confirm"], f("confirm-before-mark"), End::Finish(0)));
    cases.push(kill_case(Setup::Archived, &["confirm", "--repeat"], f("confirm-before-mark:2"), End::Finish(40)));
    cases.push(kill_case(Setup::Archived, &["confirm", "--repeat"], f("confirm-before-mark:3"), End::Finish(40)));

    // kills at random records
    for i in 0..20 {
        let s = if i % 2 == 0 { Setup::Fresh } else { Setup::Midlife };
        let k = rng.range(1, records_to_write(s));
        cases.push(kill_case(s, REPEAT, format!("archive-block:{k}"), End::Finish(40)));
    }
    // drive errors
    cases.push(drive_eio_case(Setup::Fresh, 1));
    for i in 0..4 {
        let s = if i % 2 == 0 { Setup::Fresh } else { Setup::Midlife };
        let k = rng.range(LABEL_RECORDS + 1, records_to_write(s));
        cases.push(drive_eio_case(s, k));
    }
    for _ in 0..4 {
        // Each tape file is at least one data read and the end-of-file read.
        cases.push(drive_read_eio_case(rng.range(1, 2 * SET as u64)));
    }
    // ssh drops
    for i in 0..4 {
        let s = if i % 2 == 0 { Setup::Fresh } else { Setup::Midlife };
        cases.push(ssh_drop_archive_case(s, rng.range(0, RECORDS_PER_TARGET * BLOCK as u64 + 4096)));
    }
    for _ in 0..2 {
        cases.push(ssh_drop_import_case(rng.range(0, 400)));
    }
    // tape full
    for _ in 0..3 {
        cases.push(enospc_case(
            rng.range(2 * BLOCK as u64, (LABEL_RECORDS + 3 * RECORDS_PER_TARGET - 1) * BLOCK as u64),
        ));
    }
    // catalogue disk full
    // From too little space to open the catalogue to enough for it all.
    for i in 0..9 {
        cases.push(disk_full_case(Setup::Fresh, REPEAT, i * 16 * 1024 + rng.range(0, 12 * 1024)));
    }
    cases.push(disk_full_case(Setup::Archived, &["confirm", "--repeat"], rng.range(0, 96 * 1024)));
    cases.push(disk_full_case(Setup::Listed, IMPORT, rng.range(0, 160 * 1024)));
    cases.push(disk_full_case(Setup::MidlifeUnassigned, &["-y", "assign"], rng.range(0, 64 * 1024)));
    // wrong tapes
    cases.extend(wrong_tape_cases());
    cases
}

struct Result_ {
    name: String,
    kind: Kind,
    violations: Vec<String>,
    failure: Option<String>,
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

#[test]
fn every_fault_loses_nothing_and_the_same_command_carries_on() {
    let seed = std::env::var("TAPEOP_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let mut rng = XorShift(seed);
    let started = Instant::now();
    let queue = Mutex::new(all_cases(&mut rng).into_iter().rev().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    // Failed cases are reported below, once, with their cause.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let Some(c) = queue.lock().unwrap().pop() else { break };
                    let (name, kind) = (c.name, c.kind);
                    let mut violations = Vec::new();
                    let run = c.run;
                    let outcome = catch_unwind(AssertUnwindSafe(|| run(&mut violations)));
                    let failure = outcome.err().map(panic_text);
                    let r = Result_ { name, kind, violations, failure };
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    std::panic::set_hook(hook);
    let results = results.into_inner().unwrap();
    let faults = results.iter().filter(|r| r.kind == Kind::Fault).count();
    let bad = results.iter().filter(|r| r.kind == Kind::BadInput).count();
    let passed = results.iter().filter(|r| r.failure.is_none() && r.violations.is_empty()).count();
    let lost: usize = results.iter().map(|r| r.violations.len()).sum();
    println!("fault injection: seed {seed}, {} cases in {:.1} s", results.len(), started.elapsed().as_secs_f64());
    for r in results.iter().filter(|r| r.failure.is_some() || !r.violations.is_empty()) {
        println!("FAILED: {}", r.name);
        for v in &r.violations {
            println!("    invariant violated: {v}");
        }
        if let Some(f) = &r.failure {
            for line in f.lines().take(12) {
                println!("    {line}");
            }
        }
    }
    println!(
        "fault injection: {faults} faults injected, {passed} cases passed, {bad} bad inputs tried, data lost: {lost}"
    );
    assert!(faults >= 60, "{faults} faults injected");
    assert!(bad >= 5, "{bad} bad inputs tried");
    assert_eq!(lost, 0, "invariant violations (listed above)");
    assert_eq!(passed, results.len(), "failed cases (listed above)");
}
