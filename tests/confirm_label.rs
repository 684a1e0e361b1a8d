//! `confirm` proves the tape label before it reads anything, as `archive`
//! and `restore` do: with another tape in the drive than the online one it
//! refuses (exit 1, one line naming both tapes), reads no tape file and
//! records nothing — no history row, no failed confirm against the online
//! tape. Run on the virtual st drive of tests/support/vst.rs.

mod support;

use support::{vst, world};

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::sync::MutexGuard;

use vst::{VirtualDrive, VstOptions};
use world::{World, stderr, stdout};

/// A World whose tape.conf names the virtual drive, with tape image
/// `tapes/A.tap` loaded; holds the serial guard (the drive is shared with
/// the processes it spawns).
struct Rig {
    drive: VirtualDrive,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    fn new() -> Rig {
        let serial = vst::serial();
        let w = World::new();
        fs::create_dir_all(w.root().join("tapes")).unwrap();
        let drive = VirtualDrive::mount(&w.root().join("tapes/A.tap"), VstOptions::default()).unwrap();
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n",
            drive.device_path().display()
        );
        fs::write(w.root().join("tape.conf"), text).unwrap();
        Rig { drive, w, _serial: serial }
    }

    fn target(&self, name: &str, size: usize) -> PathBuf {
        let dir = self.w.data().join(name);
        fs::create_dir_all(&dir).unwrap();
        for i in 0..8 {
            fs::write(dir.join(format!("f{i}")), vec![name.as_bytes()[0].wrapping_add(i); size]).unwrap();
        }
        dir
    }

    fn import(&self, targets: &[PathBuf]) {
        let list = self.w.list("list.txt", targets);
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    }

    fn load(&self, name: &str) {
        self.drive.change_tape(&self.w.root().join("tapes").join(name), &VstOptions::default()).unwrap();
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    fn confirms(&self) -> i64 {
        self.w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'confirm'")
    }

    fn catalogue_id(&self) -> String {
        self.w.sql().query_row("SELECT value FROM tapeop_meta WHERE key = 'catalogue_id'", [], |r| r.get(0)).unwrap()
    }
}

#[test]
fn confirm_refuses_another_tape_of_the_catalogue_and_records_nothing() {
    let rig = Rig::new();
    let w = &rig.w;
    // Tape A holds a and b; tape B holds c and d (eight files each).
    let (a, b, c, d) = (rig.target("a", 1000), rig.target("b", 1000), rig.target("c", 1000), rig.target("d", 1000));
    rig.import(&[a, b]);
    w.run(&["open_tape", "A", "--serial", "SA", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    rig.run(&["archive", "--repeat"], 40);
    let list = w.list("list2.txt", &[c, d]);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "B", "--serial", "SB", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    rig.load("B.tap");
    rig.run(&["archive", "--repeat"], 40);

    // Tape B stays in the drive; A goes online.
    w.run(&["activate_tape", "A"], 0);
    let image_b = fs::read(rig.drive.image_path()).unwrap();
    let backups = w.backups();
    for args in [&["confirm", "next"][..], &["confirm", "1"], &["confirm", "--repeat"]] {
        let out = rig.run(args, 1);
        let want = format!(
            "refusing to confirm: wrong tape: the catalogue expects tape \"A\" here, but the loaded tape's label says \"B\" (catalogue {}); load tape \"A\"; nothing was recorded",
            rig.catalogue_id()
        );
        assert!(out.contains(&want), "{args:?}: {out}");
        assert!(!out.contains("unexpected member"), "{args:?}: nothing is read: {out}");
        assert!(!out.contains("Checksumming"), "{args:?}: {out}");
        assert_eq!(rig.confirms(), 0, "{args:?}: no confirm is recorded");
        assert_eq!(w.backups(), backups, "{args:?}: nothing is marked");
        assert_eq!(fs::read(rig.drive.image_path()).unwrap(), image_b, "{args:?}: tape B untouched");
    }

    // A blank tape: no label at all.
    rig.load("blank.tap");
    let out = rig.run(&["confirm", "next"], 1);
    assert!(
        out.contains("refusing to confirm: wrong tape: tape \"A\" was labelled by tapeop, but the loaded tape has no tapeop label at file 0; load tape \"A\"; nothing was recorded"),
        "{out}"
    );
    assert_eq!(rig.confirms(), 0);

    // With A loaded, confirm goes ahead and records its confirms.
    rig.load("A.tap");
    let out = rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(out.matches("Marking record as confirmed.").count(), 2, "{out}");
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'confirm' AND outcome = 'ok'"), 2);
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'confirmed'"), 2);
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 2, "B's files wait for B");
}

#[test]
fn confirm_no_db_update_also_refuses_the_wrong_tape() {
    let rig = Rig::new();
    let w = &rig.w;
    rig.import(&[rig.target("a", 100)]);
    w.run(&["open_tape", "A", "--serial", "SA", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    rig.run(&["archive"], 0);
    // Another catalogue's tape, also called "A".
    rig.load("other.tap");
    let other = World::new();
    fs::write(other.root().join("tape.conf"), fs::read(w.root().join("tape.conf")).unwrap()).unwrap();
    let theirs = other.data().join("theirs");
    fs::create_dir_all(&theirs).unwrap();
    fs::write(theirs.join("f"), b"theirs").unwrap();
    let list = other.list("list.txt", &[theirs]);
    other.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    other.run(&["open_tape", "A", "--serial", "SA", "--online", "-y"], 0);
    other.run(&["-y", "assign"], 0);
    other.run(&["archive"], 0);
    let theirs_id: String =
        other.sql().query_row("SELECT value FROM tapeop_meta WHERE key = 'catalogue_id'", [], |r| r.get(0)).unwrap();

    let out = rig.run(&["confirm", "1", "--no-db-update"], 1);
    assert!(
        out.contains(&format!("but the loaded tape's label says \"A\" (catalogue {theirs_id}); load tape \"A\"")),
        "{out}"
    );
    let out = rig.run(&["confirm", "next"], 1);
    assert!(out.contains("refusing to confirm: wrong tape"), "{out}");
    assert_eq!(rig.confirms(), 0);
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 1);
}
