//! The end of the tape while archiving, on the virtual st drive: inside the
//! first data file of a blank tape the target fits on no tape of this kind
//! (it is unassigned, the tape stays open and its measured capacity is
//! recorded, so assign gives the target no other tape of this kind); inside
//! a later file the tape is full, and the message says in plain words what
//! happened and what to do next.
//!
//! These tests need FUSE (/dev/fuse, root) and hold `vst::serial()` for
//! their whole body.

mod support;

use support::{vst, world};

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::sync::MutexGuard;

use vst::{VirtualDrive, VstOptions};
use world::{World, stderr, stdout};

const KIB: u64 = 1024;

struct Rig {
    drive: VirtualDrive,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    /// A world whose tape.conf names a virtual drive holding a blank tape
    /// with its early warning at `capacity` bytes.
    fn new(capacity: u64) -> Rig {
        let serial = vst::serial();
        let w = World::new();
        let opts = VstOptions { capacity: Some(capacity), ..VstOptions::default() };
        let drive = VirtualDrive::mount(&w.root().join("A.tap"), opts).expect("mounting the drive");
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n",
            drive.device_path().display()
        );
        fs::write(w.root().join("tape.conf"), text).unwrap();
        Rig { drive, w, _serial: serial }
    }

    fn import(&self, list: &str, targets: &[PathBuf]) {
        let list = self.w.list(list, targets);
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    fn last_history(&self) -> (i64, String) {
        self.w
            .sql()
            .query_row("SELECT file_number, outcome FROM tapeop_history ORDER BY id DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    }

    fn tape_info(&self, tape: &str) -> (Option<i64>, i64) {
        self.w
            .sql()
            .query_row(
                "SELECT i.capacity_bytes, i.full FROM tapeop_tape_info i JOIN tapes t ON t.id = i.tape_id WHERE t.name = ?1",
                [tape],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }
}

fn target(w: &World, name: &str, size: usize) -> PathBuf {
    let dir = w.data().join(name);
    fs::create_dir_all(&dir).unwrap();
    let content: Vec<u8> = (0..size).map(|i| (i * 31 + i / 251 + name.len()) as u8).collect();
    fs::write(dir.join("data.bin"), content).unwrap();
    dir
}

fn assert_contains(text: &str, want: &str) {
    assert!(text.contains(want), "expected {want:?} in:\n{text}");
}

#[test]
fn a_target_larger_than_a_whole_tape_is_unassigned_and_the_tape_stays_open() {
    // Early warning at 1.5 MiB: the label (one 256 KiB record) and five
    // records of the big target are written, the sixth write fails.
    let rig = Rig::new(1536 * KIB);
    let w = &rig.w;
    let big = target(w, "big", 3_000_000);
    rig.import("list.txt", std::slice::from_ref(&big));
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);

    let out = rig.run(&["archive", "--repeat"], 42);
    let want = format!(
        "{} does not fit on a whole tape: tape \"T1\" reached its end after 0.002 GB (1572864 bytes) while writing \
         tape file 1, its first data file, so the target cannot fit on any tape of this kind. Nothing was recorded; \
         the target is unassigned again (assign gives it no tape of this capacity, now recorded for tape \"T1\" and \
         for tapes with no capacity of their own), and tape \"T1\" stays open: the next archive writes over the \
         partial tape file. Split it: import its subdirectories as targets of their own. (drive: ",
        big.display()
    );
    assert_contains(&out, &want);
    assert!(!out.contains("close_tape"), "no advice to change tapes:\n{out}");
    assert_eq!(w.backups(), Vec::new(), "the target is unassigned");
    assert_eq!(rig.tape_info("T1"), (Some(1_572_864), 0), "capacity recorded, not full");
    assert_eq!(rig.last_history(), (1, "target larger than the tape".to_string()));
    let status = stdout(&w.run(&["status"], 0));
    assert!(!status.contains("FULL"), "{status}");

    // assign does not give it back to this tape, nor to a new tape of
    // unknown capacity.
    let out = rig.run(&["-y", "assign"], 43);
    assert_contains(&out, &format!("{} needs about 0.003 GB, more than a whole tape (0.001 GB)", big.display()));
    assert_eq!(w.backups(), Vec::new());

    // The tape goes on with a target that fits, written over the partial file.
    let small = target(w, "small", 1000);
    rig.import("small.txt", std::slice::from_ref(&small));
    w.run(&["-y", "assign"], 0);
    w.run(&["archive"], 0);
    assert_eq!(w.backups(), vec![(small.display().to_string(), 1, "recorded".to_string())]);
    assert_eq!(rig.drive.files().unwrap().len(), 2, "label and the small target only");
    w.run(&["confirm", "--repeat"], 40);
    w.run(&["close_tape", "-y"], 0);

    w.run(&["open_tape", "T2", "--serial", "S2", "--online", "-y"], 0);
    let out = rig.run(&["-y", "assign"], 43);
    assert_contains(&out, "no unassigned target fits in the space left on tape \"T2\"");
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'assigned'"), 0);
}

#[test]
fn the_end_of_the_tape_in_a_later_file_marks_it_full_and_says_what_to_do() {
    let rig = Rig::new(1536 * KIB);
    let w = &rig.w;
    let (small, big) = (target(w, "a_small", 300_000), target(w, "b_big", 3_000_000));
    rig.import("list.txt", &[small.clone(), big.clone()]);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);

    let out = rig.run(&["archive", "--repeat"], 43);
    let want = format!(
        "tape \"T1\" reached its end while writing tape file 2 ({}): the partial tape file is not recorded, and \
         tape \"T1\" is now marked full; the target stays assigned. Next: confirm --repeat and close_tape this \
         tape, open_tape a new one, assign, then archive. (drive: ",
        big.display()
    );
    assert_contains(&out, &want);
    assert_contains(&out, "early warning at file 2 block 4; the record after it was written: tape full");
    assert_eq!(rig.tape_info("T1"), (None, 1));
    assert_eq!(rig.last_history(), (2, "tape full".to_string()));
    assert!(w.backups().contains(&(big.display().to_string(), -1, "assigned".to_string())));
}

#[test]
fn with_no_db_update_a_target_larger_than_the_tape_changes_nothing_in_the_catalogue() {
    let rig = Rig::new(1536 * KIB);
    let w = &rig.w;
    let big = target(w, "big", 3_000_000);
    rig.import("list.txt", std::slice::from_ref(&big));
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    let out = rig.run(&["archive", "--no-db-update"], 42);
    assert_contains(
        &out,
        "so the target cannot fit on any tape of this kind. Nothing was recorded (--no-db-update: the target stays assigned and no capacity is recorded), and tape \"T1\" stays open",
    );
    assert_eq!(w.backups(), vec![(big.display().to_string(), -1, "assigned".to_string())]);
    let capacity: Option<i64> =
        w.sql().query_row("SELECT capacity_bytes FROM tapeop_tape_info WHERE tape_id = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(capacity, None);
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_meta WHERE key = 'measured_tape_capacity'"), 0);
}
