//! Opening the catalogue: an aborted `open_tape` or `import` creates no
//! catalogue (so a mistyped `database_file` says it does not exist, not
//! "0 tapes"); reports read a WAL catalogue in a read-only directory; and
//! every command that writes refuses a read-only or immutable catalogue
//! before it asks anything.

mod support;

use support::world;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use world::{World, describe, stderr, stdout};

const MISSING: &str = "tapeop: catalogue tape.sqlite does not exist: check database_file in tape.conf (import or open_tape creates a new one)\n";

#[test]
fn an_aborted_open_tape_or_import_creates_no_catalogue() {
    let w = World::new();
    let t = w.data().join("a");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("f"), b"x").unwrap();
    let list = w.list("list.txt", &[t]);
    // stdin is empty: the question gets no answer and the command aborts.
    let out = w.run(&["open_tape", "T1"], 1);
    assert!(stderr(&out).starts_with("tapeop: no answer on standard input"), "{}", describe(&out));
    let out = w.run(&[OsStr::new("import"), list.as_os_str()], 1);
    assert!(stderr(&out).starts_with("tapeop: no answer on standard input"), "{}", describe(&out));
    assert!(!w.root().join("tape.sqlite").exists(), "an aborted command left a catalogue behind");
    for args in [&["tapes"][..], &["status"], &["check"]] {
        assert_eq!(stderr(&w.run(args, 1)), MISSING, "tapeop {args:?}");
    }
    // Answered, they create it.
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    assert!(stdout(&w.run(&["tapes"], 0)).contains("T1"));
}

/// A read-only bind mount of a directory over itself; unmounted on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn set(dir: &Path) -> ReadOnlyMount {
        let bind = Command::new("mount").arg("--bind").arg(dir).arg(dir).output().expect("mount(8)");
        assert!(bind.status.success(), "mount --bind (needs root): {}", stderr(&bind));
        let guard = ReadOnlyMount(dir.to_path_buf());
        let ro = Command::new("mount").args(["-o", "remount,ro,bind"]).arg(dir).output().expect("mount(8)");
        assert!(ro.status.success(), "remount read-only: {}", stderr(&ro));
        guard
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        if !Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// The immutable flag on a file (even root cannot write it); cleared on drop.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let st = Command::new("chattr").arg("+i").arg(path).status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "chattr +i {}: needs chattr and an ext4-like file system",
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

/// A catalogue with a recorded tape file and an unassigned target, and an
/// import list for one more.
fn world_with_catalogue() -> (World, PathBuf) {
    let w = World::new();
    let mut targets = Vec::new();
    for n in ["a", "b", "c"] {
        let t = w.data().join(n);
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("f"), n.repeat(100)).unwrap();
        targets.push(t);
    }
    let list = w.list("list.txt", &targets[..1]);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    w.run(&["archive"], 0);
    let list = w.list("list2.txt", &targets[1..2]);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    let more = w.list("list3.txt", &targets[2..]);
    (w, more)
}

const REPORTS: [&[&str]; 6] =
    [&["status"], &["tapes", "-v"], &["tape_detail", "-v"], &["log"], &["unassigned"], &["backup_info"]];

/// Every command that writes, without -y: refused with `message` before
/// any question (nothing on stdout), the catalogue's bytes unchanged.
fn writers_refused(w: &World, conf: &str, db: &Path, list: &Path, message: &str) {
    let before = fs::read(db).unwrap();
    let list = list.to_str().unwrap();
    for args in [
        &["open_tape", "T9"][..],
        &["close_tape"],
        &["activate_tape", "T1"],
        &["assign"],
        &["archive"],
        &["confirm", "1"],
        &["import", list],
    ] {
        let mut all = vec!["-c", conf];
        all.extend_from_slice(args);
        let out = w.run(&all, 1);
        assert_eq!(stderr(&out), message, "tapeop {all:?}");
        assert_eq!(stdout(&out), "", "tapeop {all:?} asked or said something before refusing");
    }
    assert_eq!(fs::read(db).unwrap(), before, "the catalogue changed");
}

#[test]
fn a_wal_catalogue_in_a_read_only_directory_is_read_and_never_written() {
    let (w, more) = world_with_catalogue();
    let dir = w.root().join("ro");
    fs::create_dir_all(&dir).unwrap();
    fs::rename(w.root().join("tape.sqlite"), dir.join("tape.sqlite")).unwrap();
    let journal: String = w.sql_at(&dir.join("tape.sqlite"));
    assert_eq!(journal, "wal", "the catalogue is in WAL mode");
    let conf = fs::read_to_string(w.root().join("tape.conf")).unwrap().replace("tape.sqlite", "ro/tape.sqlite");
    fs::write(w.root().join("ro.conf"), conf).unwrap();
    let reports: Vec<String> =
        REPORTS.iter().map(|r| stdout(&w.run(&[&["-c", "ro.conf"][..], r].concat(), 0))).collect();
    // Readers leave an empty -wal and a -shm behind; as the last writer's
    // close does, take them away: sqlite then needs to create them to read.
    for suffix in ["-wal", "-shm"] {
        let p = dir.join(format!("tape.sqlite{suffix}"));
        if suffix == "-wal" && p.exists() {
            assert_eq!(fs::metadata(&p).unwrap().len(), 0, "nothing pending in the WAL");
        }
        let _ = fs::remove_file(p);
    }
    let _ro = ReadOnlyMount::set(&dir);
    for (r, want) in REPORTS.iter().zip(&reports) {
        let out = w.run(&[&["-c", "ro.conf"][..], r].concat(), 0);
        assert_eq!(&stdout(&out), want, "tapeop {r:?} in a read-only directory");
        assert_eq!(stderr(&out), "", "tapeop {r:?}");
    }
    writers_refused(
        &w,
        "ro.conf",
        &dir.join("tape.sqlite"),
        &more,
        "tapeop: catalogue ro/tape.sqlite is read-only (the file cannot be written: Read-only file system); nothing was changed: make it writable (chmod, chattr -i, a read-write mount), or run only reports\n",
    );
    assert!(!dir.join("tape.sqlite-shm").exists() && !dir.join("tape.sqlite-wal").exists());
}

#[test]
fn an_immutable_catalogue_is_refused_before_any_question() {
    let (w, more) = world_with_catalogue();
    let db = w.root().join("tape.sqlite");
    let reports: Vec<String> = REPORTS.iter().map(|r| stdout(&w.run(r, 0))).collect();
    let _ro = Immutable::set(&db);
    writers_refused(
        &w,
        "tape.conf",
        &db,
        &more,
        "tapeop: catalogue tape.sqlite is read-only (the file cannot be written: Operation not permitted); nothing was changed: make it writable (chmod, chattr -i, a read-write mount), or run only reports\n",
    );
    for (r, want) in REPORTS.iter().zip(&reports) {
        assert_eq!(&stdout(&w.run(r, 0)), want, "tapeop {r:?} on an immutable catalogue");
    }
}

#[test]
fn changes_pending_in_a_wal_that_cannot_be_read_are_refused_not_missed() {
    let (w, _) = world_with_catalogue();
    let dir = w.root().join("ro");
    fs::create_dir_all(&dir).unwrap();
    fs::rename(w.root().join("tape.sqlite"), dir.join("tape.sqlite")).unwrap();
    let conf = fs::read_to_string(w.root().join("tape.conf")).unwrap().replace("tape.sqlite", "ro/tape.sqlite");
    fs::write(w.root().join("ro.conf"), conf).unwrap();
    // A writer killed with a change still in the -wal (never checkpointed).
    let conn = rusqlite::Connection::open(dir.join("tape.sqlite")).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute("UPDATE tapes SET serial = 'S1-new'", []).unwrap();
    std::mem::forget(conn);
    assert!(fs::metadata(dir.join("tape.sqlite-wal")).unwrap().len() > 0);
    fs::remove_file(dir.join("tape.sqlite-shm")).unwrap();
    let _ro = ReadOnlyMount::set(&dir);
    for report in REPORTS {
        let out = w.run(&[&["-c", "ro.conf"][..], report].concat(), 1);
        assert_eq!(
            stderr(&out),
            "tapeop: catalogue ro/tape.sqlite cannot be read here: its newest changes are in ro/tape.sqlite-wal, and sqlite cannot create ro/tape.sqlite-shm beside it to read them; make the directory writable, or run any tapeop command there as a user who can write it\n",
            "tapeop {report:?}"
        );
        assert_eq!(stdout(&out), "", "tapeop {report:?} showed a catalogue without its newest changes");
    }
}
