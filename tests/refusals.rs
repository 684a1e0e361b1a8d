//! Hostile and broken input: every refusal exits with its code and one
//! clear `tapeop: ...` line, and changes neither the emulated tape (md5 of
//! every tape file) nor the catalogue (md5 of tape.sqlite, or — when the
//! command legitimately writes its history — the rows of the old tool's
//! four tables). Covered: import lists with shell metacharacters, junk,
//! binary garbage, relative paths and `..` above `/`; tape files whose tar
//! members climb out with `..`, absolute names or symlinks; corrupted and
//! truncated tape files; a catalogue that is read-only (immutable file, and
//! a read-only mount), locked, corrupt, or from a newer tapeop; a
//! tape_device that is a directory or a regular file; the drive locked; and
//! two real `archive` runs at once.
//!
//! `cargo test --test refusals -- --nocapture` prints one summary line:
//! `refusals: B bad inputs tried, R refused cleanly, tape or catalogue changed: 0`.

mod support;

use support::world;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use md5::{Digest, Md5};
use nix::fcntl::{Flock, FlockArg};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use world::{World, describe, stderr};

// ---------------------------------------------------------------- helpers

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// md5 of every file of an emulated tape (the lock file excepted).
fn tape_md5s(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name != ".tapeop.lock" {
                m.insert(name, md5_hex(&fs::read(e.path()).unwrap()));
            }
        }
    }
    m
}

/// Every row of the old tool's four tables, as text.
fn legacy_rows(db: &Path) -> Vec<String> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut out = Vec::new();
    for table in ["tapes", "targets", "files", "backups"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY id")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(t) | ValueRef::Blob(t) => format!("{:?}", String::from_utf8_lossy(t)),
                })
                .collect();
            out.push(format!("{table}: {}", cells.join("|")));
        }
    }
    out
}

/// Fold any WAL into the catalogue file, so its bytes say everything.
fn settle(db: &Path) {
    let conn = Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
}

/// How much of the catalogue must stay the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Same {
    /// The file, byte for byte.
    Bytes,
    /// The rows of the four legacy tables (the command writes its history).
    Legacy,
}

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    tried: usize,
    clean: usize,
    changed: Vec<String>,
}

/// A world with its catalogue and tape, and the tally.
struct Env<'a> {
    w: World,
    tally: &'a Mutex<Tally>,
    /// The catalogue file (relative to the root) and the emulator dir.
    db: PathBuf,
    emu: PathBuf,
    /// A tape file another running tapeop is writing (not compared).
    busy: Option<String>,
}

impl<'a> Env<'a> {
    fn new(tally: &'a Mutex<Tally>) -> Env<'a> {
        let w = World::new();
        let db = w.root().join("tape.sqlite");
        let emu = w.root().join("emu");
        Env { w, tally, db, emu, busy: None }
    }

    fn root(&self) -> &Path {
        self.w.root()
    }

    /// Targets `data/{name}` with two files each.
    fn targets(&self, names: &[&str]) -> PathBuf {
        let mut made = Vec::new();
        for n in names {
            let t = self.w.data().join(n);
            fs::create_dir_all(t.join("sub")).unwrap();
            fs::write(t.join("a.txt"), format!("a of {n}\n")).unwrap();
            fs::write(t.join("sub/b.bin"), garbage(n.len() as u64 + 7, 5000)).unwrap();
            made.push(t);
        }
        self.w.list(&format!("{}.txt", names[0]), &made)
    }

    fn import(&self, list: &Path) {
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    }

    /// Two targets archived (files 1, 2) and confirmed, a third assigned
    /// and a fourth imported but unassigned, on the online tape T1.
    fn standard(&self) {
        let list = self.targets(&["t1", "t2"]);
        self.w.archive_all(&list, "T1");
        let more = self.targets(&["t3"]);
        self.import(&more);
        self.w.run(&["-y", "assign"], 0);
        let last = self.targets(&["t4"]);
        self.import(&last);
        settle(&self.db);
    }

    /// Run a bad input: it must exit `code` with one `tapeop:` line holding
    /// `phrase` (other stderr lines only as an indented list of
    /// differences), and leave the tape and the catalogue as they were.
    fn refused(&self, args: &[&str], code: i32, phrase: &str, same: Same) -> Output {
        self.refused_with(self.w.command(args), args, code, phrase, same)
    }

    fn tape(&self) -> BTreeMap<String, String> {
        let mut m = tape_md5s(&self.emu);
        if let Some(b) = &self.busy {
            m.remove(b);
        }
        m
    }

    fn refused_with(&self, mut cmd: Command, args: &[&str], code: i32, phrase: &str, same: Same) -> Output {
        let tape = self.tape();
        let db_exists = self.db.exists();
        let bytes = db_exists.then(|| md5_hex(&fs::read(&self.db).unwrap()));
        let rows = (db_exists && same == Same::Legacy).then(|| legacy_rows(&self.db));
        let out = cmd.env_remove("TAPEOP_FAULT").output().unwrap();
        self.tally.lock().unwrap().tried += 1;
        let shown = args.join(" ");
        assert_eq!(out.status.code(), Some(code), "tapeop {shown} should exit {code}\n{}", describe(&out));
        let err = stderr(&out);
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("tapeop: ") && last.contains(phrase),
            "tapeop {shown}: {phrase:?} not in {last:?}\n{}",
            describe(&out)
        );
        // Before it, only the list of what differed or was refused.
        for l in err.lines().rev().skip(1) {
            let listing =
                l.starts_with("  ") || l.starts_with("tapeop: refused ") || l.starts_with("tapeop: unchecked ");
            assert!(listing, "tapeop {shown}: stray stderr line {l:?}\n{}", describe(&out));
        }
        let mut changed = Vec::new();
        if self.tape() != tape {
            changed.push(format!("tapeop {shown} changed the tape"));
        }
        match (same, db_exists) {
            (_, false) if self.db.exists() => changed.push(format!("tapeop {shown} created the catalogue")),
            (_, false) => {}
            (Same::Bytes, true) => {
                if md5_hex(&fs::read(&self.db).unwrap()) != bytes.unwrap() {
                    changed.push(format!("tapeop {shown} changed tape.sqlite"));
                }
            }
            (Same::Legacy, true) => {
                if legacy_rows(&self.db) != rows.unwrap() {
                    changed.push(format!("tapeop {shown} changed the catalogue's tables"));
                }
            }
        }
        let mut t = self.tally.lock().unwrap();
        if changed.is_empty() {
            t.clean += 1;
        }
        t.changed.extend(changed);
        out
    }

    fn write_conf(&self, name: &str, db: &str, drive: &str, ssh: &str) -> String {
        fs::write(
            self.root().join(name),
            format!("[default]\ndatabase_file = {db}\ntape_device = /dev/nst0\nssh_command = {ssh}\n{drive}\n"),
        )
        .unwrap();
        name.to_string()
    }

    fn status_of(&self, file_number: i64) -> String {
        self.w
            .sql()
            .query_row("SELECT status FROM backups WHERE file_number = ?1", [file_number], |r| r.get(0))
            .unwrap()
    }
}

// ---------------------------------------------------------------- guards

/// `chattr +i` on a file; `chattr -i` on drop.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let st = Command::new("chattr").arg("+i").arg(path).status();
        assert!(
            st.as_ref().is_ok_and(|s| s.success()),
            "chattr +i {} failed ({st:?}): the read-only catalogue case needs chattr and a file system with the immutable flag",
            path.display()
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A read-only bind mount of a directory over itself; unmounted on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn set(dir: &Path) -> ReadOnlyMount {
        let run = |args: &[&str]| {
            let out = Command::new("mount").args(args).arg(dir).arg(dir).output().expect("mount(8)");
            assert!(
                out.status.success(),
                "mount {args:?} {} failed (the read-only mount case needs root): {}",
                dir.display(),
                stderr(&out)
            );
        };
        run(&["--bind"]);
        let guard = ReadOnlyMount(dir.to_path_buf());
        let out = Command::new("mount").args(["-o", "remount,ro,bind"]).arg(dir).output().expect("mount(8)");
        assert!(out.status.success(), "remount read-only: {}", stderr(&out));
        guard
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Hold the flock on a lock file as another tapeop would.
fn hold_lock(path: &Path) -> Flock<File> {
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap();
    let mut l = Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e).unwrap();
    l.set_len(0).unwrap();
    l.write_all(b"pid 4242 (archive) since the test began\n").unwrap();
    l
}

// ---------------------------------------------------------------- tar members

/// One raw tar member with the name bytes exactly as given (the tar crate's
/// path setters refuse `..` and absolute names; the old header fields don't).
fn raw_member(out: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A tape file for target `t1` holding its real files plus `evil` members.
fn hostile_tape_file(env: &Env, evil: &dyn Fn(&mut Vec<u8>, &[u8])) -> Vec<u8> {
    let target = env.w.data().join("t1");
    let prefix = target.to_str().unwrap().trim_start_matches('/').as_bytes().to_vec();
    let mut out = Vec::new();
    let member = |rel: &str| [prefix.as_slice(), b"/", rel.as_bytes()].concat();
    raw_member(&mut out, &[prefix.as_slice(), b"/"].concat(), tar::EntryType::Directory, b"", b"");
    raw_member(&mut out, &member("a.txt"), tar::EntryType::Regular, b"", &fs::read(target.join("a.txt")).unwrap());
    raw_member(&mut out, &member("sub/"), tar::EntryType::Directory, b"", b"");
    raw_member(
        &mut out,
        &member("sub/b.bin"),
        tar::EntryType::Regular,
        b"",
        &fs::read(target.join("sub/b.bin")).unwrap(),
    );
    evil(&mut out, &prefix);
    out.resize(out.len() + 1024, 0);
    out.resize(out.len().div_ceil(10240) * 10240, 0);
    out
}

/// Where an escaping member would land.
fn escape_path(tag: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/tapeop-escape-{}-{tag}", std::process::id()))
}

// ---------------------------------------------------------------- cases

fn import_lists(t: &Mutex<Tally>) {
    let env = Env::new(t);
    env.standard();
    let pwned = |n: u32| PathBuf::from(format!("/tmp/tapeop-pwned-{}-{n}", std::process::id()));
    let lists: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "relative.txt",
            format!("# quotes and a command\nx'; touch {}; echo '\n", pwned(1).display()).into_bytes(),
            "line 2",
        ),
        ("subst.txt", format!("/data/ok\n$(touch {})\n", pwned(2).display()).into_bytes(), "not an absolute path"),
        ("semi.txt", format!("/data/ok\n;touch {}\n", pwned(3).display()).into_bytes(), "not an absolute path"),
        ("junk.txt", b"/data/ok\nhello world\n*\n~/x\n".to_vec(), "line 2"),
        ("binary.txt", [b"\x01".as_slice(), &garbage(99, 4096)].concat(), "line 1"),
        ("dotdot.txt", b"/data/ok\n/data/../../../etc\n".to_vec(), "'..' climbs above /"),
        ("root.txt", b"/data/ok\n/\n".to_vec(), "/ itself cannot be a target"),
        ("empty.txt", b"# nothing\n\n".to_vec(), "names no directories"),
    ];
    for (name, content, phrase) in lists {
        fs::write(env.root().join(name), content).unwrap();
        env.refused(&["-y", "import", name], 1, phrase, Same::Bytes);
    }
    for n in 1..=3 {
        assert!(!pwned(n).exists(), "a list line was executed");
    }
}

fn hostile_paths_that_do_not_exist(t: &Mutex<Tally>) {
    let env = Env::new(t);
    env.standard();
    env.w.run(&["-y", "assign"], 0);
    let pwned = |n: u32| format!("/tmp/tapeop-pwned-{}-h{n}", std::process::id());
    let paths = [
        format!("/nonexistent/x'; touch {}; echo '", pwned(1)),
        format!("/nonexistent/$(touch {})", pwned(2)),
        format!("/nonexistent/a;touch {}", pwned(3)),
        format!("/nonexistent/`touch {}`", pwned(4)),
        format!("/nonexistent/\"; touch {}; \"", pwned(5)),
    ];
    fs::write(env.root().join("hostile.txt"), paths.join("\n") + "\n").unwrap();
    let tape = tape_md5s(&env.emu);
    let before = legacy_rows(&env.db);
    let out = env.w.command(&["-y", "import", "hostile.txt"]).output().unwrap();
    t.lock().unwrap().tried += 1;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.lines().all(|l| l.starts_with("tapeop: ")), "{err}");
    assert!(err.lines().last().unwrap().contains("5 of the targets could not be scanned"), "{err}");
    for p in &paths {
        assert!(
            err.contains(&format!("scan of target {p} failed")) && err.contains("No such file or directory"),
            "{p}: {err}"
        );
    }
    for n in 1..=5 {
        assert!(!Path::new(&pwned(n)).exists(), "a target path was executed by the shell");
    }
    // The only change: the five targets, recorded unscanned, with no files.
    let after = legacy_rows(&env.db);
    let added: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
    let mut changed = Vec::new();
    if added.len() != 5 || !added.iter().all(|r| r.starts_with("targets: ") && r.ends_with("|0|NULL")) {
        changed.push(format!(
            "import of nonexistent hostile paths changed more than five unscanned target rows: {added:?}"
        ));
    }
    if before.iter().any(|r| !after.contains(r)) {
        changed.push("import of nonexistent hostile paths changed existing rows".to_string());
    }
    if tape_md5s(&env.emu) != tape {
        changed.push("import changed the tape".to_string());
    }
    let mut tally = t.lock().unwrap();
    if changed.is_empty() {
        tally.clean += 1;
    }
    tally.changed.extend(changed);
    drop(tally);
    // Unscanned targets are never offered for assignment.
    settle(&env.db);
    env.refused(&["-y", "assign"], 40, "nothing to assign", Same::Bytes);
}

fn hostile_tar_members(t: &Mutex<Tally>) {
    type Evil = Box<dyn Fn(&mut Vec<u8>, &[u8])>;
    let cases: Vec<(&str, Evil, &str)> = vec![
        (
            "dotdot",
            Box::new(|out, prefix| {
                let name =
                    [prefix, b"/../../../../../../..", escape_path("dotdot").to_str().unwrap().as_bytes()].concat();
                raw_member(out, &name, tar::EntryType::Regular, b"", b"escaped with ..\n");
            }),
            "'..'",
        ),
        (
            "absolute",
            Box::new(|out, _| {
                raw_member(
                    out,
                    escape_path("absolute").to_str().unwrap().as_bytes(),
                    tar::EntryType::Regular,
                    b"",
                    b"absolute\n",
                );
            }),
            "absolute",
        ),
        (
            "symlink",
            Box::new(|out, prefix| {
                raw_member(out, &[prefix, b"/evil"].concat(), tar::EntryType::Symlink, b"/tmp", b"");
                let name =
                    [prefix, b"/evil/", escape_path("symlink").file_name().unwrap().to_str().unwrap().as_bytes()]
                        .concat();
                raw_member(out, &name, tar::EntryType::Regular, b"", b"through a symlink\n");
            }),
            "outside",
        ),
        (
            "relative-symlink",
            Box::new(|out, prefix| {
                raw_member(out, &[prefix, b"/up"].concat(), tar::EntryType::Symlink, b"../../../../../../../tmp", b"");
                let name = [
                    prefix,
                    b"/up/",
                    escape_path("relative-symlink").file_name().unwrap().to_str().unwrap().as_bytes(),
                ]
                .concat();
                raw_member(out, &name, tar::EntryType::Regular, b"", b"through a relative symlink\n");
            }),
            "outside",
        ),
    ];
    for (tag, evil, phrase) in cases {
        let env = Env::new(t);
        let list = env.targets(&["t1", "t2"]);
        env.import(&list);
        env.w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
        env.w.run(&["-y", "assign"], 0);
        env.w.run(&["archive", "--repeat"], 40);
        let bytes = hostile_tape_file(&env, &*evil);
        fs::write(env.w.tape_file(1), bytes).unwrap();
        settle(&env.db);
        let out = env.refused(&["confirm", "1"], 1, "FAILED", Same::Legacy);
        assert!(
            stderr(&out).contains("on tape but not in the catalogue") || stderr(&out).contains("outside the target"),
            "{tag}: {}",
            describe(&out)
        );
        assert_eq!(env.status_of(1), "recorded", "{tag}: a failed confirm marks nothing");
        let target = env.w.data().join("t1");
        let dest = env.root().join("restored");
        let root_before: Vec<_> = fs::read_dir(env.root()).unwrap().map(|e| e.unwrap().file_name()).collect();
        let out =
            env.refused(&["restore", target.to_str().unwrap(), "--to", "restored"], 1, "incomplete", Same::Legacy);
        assert!(
            stderr(&out).lines().any(|l| l.starts_with("tapeop: refused ") && l.contains(phrase)),
            "{tag}: {}",
            describe(&out)
        );
        let mut root_after: Vec<_> = fs::read_dir(env.root()).unwrap().map(|e| e.unwrap().file_name()).collect();
        root_after.retain(|n| n != "restored");
        // (The catalogue's -wal/-shm come and go with its connections.)
        root_after.retain(|n| !root_before.contains(n) && !n.to_string_lossy().starts_with("tape.sqlite"));
        assert!(root_after.is_empty(), "{tag}: restore wrote beside its destination: {root_after:?}");
        let escaped = escape_path(tag);
        let leaked = escaped.exists() || fs::symlink_metadata(&escaped).is_ok();
        let _ = fs::remove_file(&escaped);
        assert!(!leaked, "{tag}: restore wrote {} outside its destination", escaped.display());
        assert_eq!(
            fs::read(dest.join("a.txt")).unwrap(),
            fs::read(target.join("a.txt")).unwrap(),
            "{tag}: the good files are restored"
        );
        if tag.contains("symlink") {
            let link = dest.join(if tag == "symlink" { "evil" } else { "up" });
            assert!(fs::read_link(&link).is_err(), "{tag}: an escaping symlink was created");
        }
    }
}

fn broken_tape_files(t: &Mutex<Tally>) {
    type Break = fn(&Path);
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "a flipped byte in a file",
            |p| {
                let bytes = fs::read(p).unwrap();
                let (off, _) = world::member_offset(&bytes, b"sub/b.bin").unwrap();
                world::flip_byte(p, off + 100);
            },
            "1 differences",
        ),
        (
            "a flipped byte in a tar header",
            |p| {
                let bytes = fs::read(p).unwrap();
                let (off, _) = world::member_offset(&bytes, b"a.txt").unwrap();
                world::flip_byte(p, off - 512 + 5);
            },
            "confirming tape",
        ),
        (
            "cut short inside a member",
            |p| {
                let bytes = fs::read(p).unwrap();
                let (off, _) = world::member_offset(&bytes, b"sub/b.bin").unwrap();
                OpenOptions::new().write(true).open(p).unwrap().set_len(off as u64 + 1000).unwrap();
            },
            "confirming tape",
        ),
        ("empty", |p| fs::write(p, b"").unwrap(), "confirming tape"),
        ("garbage", |p| fs::write(p, garbage(5, 20480)).unwrap(), "confirming tape"),
    ];
    for (what, breakit, phrase) in cases {
        let env = Env::new(t);
        let list = env.targets(&["t1", "t2"]);
        env.import(&list);
        env.w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
        env.w.run(&["-y", "assign"], 0);
        env.w.run(&["archive", "--repeat"], 40);
        breakit(&env.w.tape_file(1));
        settle(&env.db);
        let out = env.refused(&["confirm", "1"], 1, phrase, Same::Legacy);
        assert_eq!(env.status_of(1), "recorded", "{what}: nothing marked\n{}", describe(&out));
        env.refused(&["confirm", "1"], 1, phrase, Same::Legacy);
        assert_eq!(env.status_of(1), "recorded", "{what}: nothing marked");
        // confirm --repeat passes over the failed tape file (it stays
        // recorded) and confirms the other one, which is still fine.
        let out = env.w.run(&["confirm", "--repeat"], 40);
        assert!(String::from_utf8_lossy(&out.stdout).contains("Passing over tape file 1"), "{}", describe(&out));
        assert_eq!((env.status_of(1).as_str(), env.status_of(2).as_str()), ("recorded", "confirmed"), "{what}");
    }
}

fn read_only_catalogue(t: &Mutex<Tally>) {
    // An immutable file: even root cannot write it.
    let env = Env::new(t);
    env.standard();
    {
        let _ro = Immutable::set(&env.db);
        for args in [
            &["open_tape", "T9", "-y"][..],
            &["-y", "assign"],
            &["archive"],
            &["confirm", "1", "--retry"],
            &["-y", "close_tape", "--force"],
        ] {
            env.refused(args, 1, "catalogue tape.sqlite is read-only (the file cannot be written", Same::Bytes);
        }
        env.w.run(&["status"], 0);
    }
    // A read-only mount of the catalogue's directory.
    let env = Env::new(t);
    env.standard();
    let dir = env.root().join("ro");
    fs::create_dir_all(&dir).unwrap();
    fs::rename(&env.db, dir.join("tape.sqlite")).unwrap();
    let env = Env { db: dir.join("tape.sqlite"), ..env };
    let conf = env.write_conf("ro.conf", "ro/tape.sqlite", "emulator_dir = emu", "");
    {
        let _ro = ReadOnlyMount::set(&dir);
        // Reports read it; every command that writes says which catalogue
        // it cannot write.
        for args in [&["open_tape", "T9", "-y"][..], &["-y", "assign"], &["archive"], &["confirm", "1", "--retry"]] {
            let mut all = vec!["-c", conf.as_str()];
            all.extend_from_slice(args);
            env.refused(&all, 1, "catalogue ro/tape.sqlite is read-only", Same::Bytes);
        }
        env.w.run(&["-c", conf.as_str(), "status"], 0);
    }
}

fn locked_catalogue_and_drive(t: &Mutex<Tally>) {
    let env = Env::new(t);
    env.standard();
    {
        let _held = hold_lock(&env.root().join("tape.sqlite.lock"));
        for args in
            [&["archive"][..], &["archive", "--repeat"], &["confirm", "1", "--retry"], &["-y", "import", "t4.txt"]]
        {
            env.refused(args, 1, "is in use by pid 4242 (archive)", Same::Bytes);
        }
    }
    {
        let _held = hold_lock(&env.emu.join(".tapeop.lock"));
        for args in [&["archive"][..], &["confirm", "1", "--retry"]] {
            env.refused(args, 1, "is in use by pid 4242 (archive)", Same::Bytes);
        }
    }
    env.w.run(&["archive"], 0);
}

fn corrupt_and_newer_catalogues(t: &Mutex<Tally>) {
    let commands: [&[&str]; 6] = [
        &["status"],
        &["tapes"],
        &["archive"],
        &["confirm", "1", "--retry"],
        &["-y", "assign"],
        &["open_tape", "T9", "-y"],
    ];
    // Garbage bytes.
    let env = Env::new(t);
    env.standard();
    fs::write(&env.db, garbage(11, 64 * 1024)).unwrap();
    for args in commands {
        env.refused(args, 1, "not a readable sqlite catalogue", Same::Bytes);
    }
    env.refused(&["-y", "import", "t4.txt"], 1, "not a readable sqlite catalogue", Same::Bytes);
    // A real header, garbage pages.
    let env = Env::new(t);
    env.standard();
    let mut bytes = fs::read(&env.db).unwrap();
    let g = garbage(12, bytes.len() - 4096);
    bytes[4096..].copy_from_slice(&g);
    fs::write(&env.db, bytes).unwrap();
    for args in commands {
        env.refused(args, 1, "database disk image is malformed", Same::Bytes);
    }
    // From a newer tapeop.
    let env = Env::new(t);
    env.standard();
    env.w.sql().pragma_update(None, "user_version", 99).unwrap();
    settle(&env.db);
    for args in commands {
        env.refused(args, 1, "newer tapeop (schema version 99", Same::Bytes);
    }
    env.refused(&["-y", "import", "t4.txt"], 1, "newer tapeop", Same::Bytes);
}

fn tape_device_not_a_tape(t: &Mutex<Tally>) {
    let env = Env::new(t);
    env.standard();
    fs::create_dir_all(env.root().join("adir")).unwrap();
    fs::write(env.root().join("afile"), b"not a tape\n").unwrap();
    for (dev, phrase) in [("adir", "is not a tape device"), ("afile", "is not a tape device")] {
        let conf = format!("{dev}.conf");
        fs::write(
            env.root().join(&conf),
            format!("[default]\ndatabase_file = tape.sqlite\ntape_device = {dev}\nssh_command =\n"),
        )
        .unwrap();
        for args in [&["archive"][..], &["confirm", "1", "--retry"]] {
            let mut all = vec!["-c", conf.as_str()];
            all.extend_from_slice(args);
            env.refused(&all, 1, phrase, Same::Bytes);
        }
    }
    assert_eq!(fs::read(env.root().join("afile")).unwrap(), b"not a tape\n", "the regular file was not written");
    assert_eq!(fs::read_dir(env.root().join("adir")).unwrap().count(), 0, "nothing was written into the directory");
}

/// Two real archives at once: the first holds the locks while its data
/// host waits for a byte on a fifo; the second is refused naming the first.
fn two_archives_at_once(t: &Mutex<Tally>) {
    let env = Env::new(t);
    env.standard();
    // The first archive writes tape file 3 meanwhile.
    let env = Env { busy: Some("file00003.tar".into()), ..env };
    let fifo = env.root().join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Held open read-write (which never blocks on Linux), so the data
    // host's `head` never waits to open it, only for the byte.
    let mut gate = OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
    let ssh = format!(r#"sh -c 'head -c 1 {} >/dev/null; eval "$1"' sh"#, fifo.display());
    env.w.config(&ssh, "emulator_dir = emu");
    let mut first = env.w.command(&["archive"]);
    first.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut first = first.spawn().unwrap();
    // "Archiving:" is printed after the locks are taken and the tape is proven.
    let mut lines = BufReader::new(first.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Archiving:") {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            first.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("the first archive ended early:\n{seen}\n{err}");
        }
        seen.push_str(&line);
    }
    let phrase = format!("is in use by pid {} (archive)", first.id());
    env.refused(&["archive"], 1, &phrase, Same::Bytes);
    env.refused(&["archive", "--repeat"], 1, &phrase, Same::Bytes);
    env.refused(&["confirm", "1", "--retry"], 1, &phrase, Same::Bytes);
    gate.write_all(b"g").unwrap();
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the first archive finishes\n{seen}{rest}\n{}", describe(&out));
    drop(gate);
    env.w.config("", "emulator_dir = emu");
    env.w.run(&["confirm", "--repeat"], 40);
}

#[test]
fn hostile_and_broken_input_is_refused_and_changes_nothing() {
    let tally = Mutex::new(Tally::default());
    type Group = fn(&Mutex<Tally>);
    let cases: Vec<(&str, Group)> = vec![
        ("import lists", import_lists),
        ("hostile paths that do not exist", hostile_paths_that_do_not_exist),
        ("hostile tar members", hostile_tar_members),
        ("broken tape files", broken_tape_files),
        ("read-only catalogue", read_only_catalogue),
        ("locked catalogue and drive", locked_catalogue_and_drive),
        ("corrupt and newer catalogues", corrupt_and_newer_catalogues),
        ("tape_device not a tape", tape_device_not_a_tape),
        ("two archives at once", two_archives_at_once),
    ];
    let queue = Mutex::new(cases);
    let failures = Mutex::new(Vec::new());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some((name, f)) = queue.lock().unwrap().pop() else { break };
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(&tally))) {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                        failures.lock().unwrap().push(format!("{name}: {}", msg.unwrap_or_default()));
                    }
                }
            });
        }
    });
    std::panic::set_hook(hook);
    let tally = tally.into_inner().unwrap();
    let failures = failures.into_inner().unwrap();
    for f in &failures {
        println!("FAILED: {f}");
    }
    for c in &tally.changed {
        println!("CHANGED: {c}");
    }
    println!(
        "refusals: {} bad inputs tried, {} refused cleanly, tape or catalogue changed: {}",
        tally.tried,
        tally.clean,
        tally.changed.len()
    );
    assert!(failures.is_empty(), "{} groups failed (listed above)", failures.len());
    assert!(tally.changed.is_empty(), "tape or catalogue changed (listed above)");
    assert!(tally.tried >= 60, "{} bad inputs tried", tally.tried);
    assert_eq!(tally.clean, tally.tried);
}
