//! `archive --repeat --drive A --drive B` with `copy_pools = primary
//! offsite`, on two plain virtual st drives (no changer): each target is
//! read once from the data host (the tar runs are counted by an
//! `ssh_command` wrapper) and written to the tape in each drive; the
//! copies are byte-identical and confirm on each tape. The offsite tape
//! filling mid-target ends that copy cleanly (tape full, its catalogue
//! file written) while the primary copy is recorded, and a single-drive run
//! on a new offsite tape writes the missing copies. Bad usage is refused
//! in one line. A drive failing mid-target (a write error) ends its copy
//! with a filemark while the other copy is recorded. On a simulated
//! library each drive loads a tape of its pool. A drive that asks for
//! cleaning is warned about once, between targets, and the run carries on.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use support::library_rig::{CAPACITY, LibRig, barcode};
use support::vst::{self, VirtualDrive, VstOptions};
use support::world::{World, stderr, stdout};

/// Two plain drives A (tape P1, pool primary) and B (tape O1, pool
/// offsite), targets t0..t3 under data/, a counting data host.
struct TwoDrives {
    a: VirtualDrive,
    b: VirtualDrive,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl TwoDrives {
    /// Mount the drives (B's cartridge early-warns at `b_capacity`).
    fn new(b_capacity: Option<u64>) -> TwoDrives {
        let serial = vst::serial();
        assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: these tests need FUSE");
        let w = World::new();
        fs::create_dir_all(w.root().join("tapes")).unwrap();
        let a = VirtualDrive::mount(&w.root().join("tapes/P1.tap"), VstOptions::default()).expect("mounting A");
        let opts = VstOptions { capacity: b_capacity, ..VstOptions::default() };
        let b = VirtualDrive::mount(&w.root().join("tapes/O1.tap"), opts).expect("mounting B");
        let counter = w.root().join("count.sh");
        let script = format!(
            "case \"$1\" in *'tar -c'*) echo tar >> '{}';; esac\nexec sh -c \"$1\"\n",
            w.root().join("tars.log").display()
        );
        fs::write(&counter, script).unwrap();
        let conf = format!(
            "[default]\ndatabase_file = tape.sqlite\nssh_command = sh {}\ncopy_pools = primary offsite\n\
             [drive.A]\ndevice = {}\n[drive.B]\ndevice = {}\n",
            counter.display(),
            a.device_path().display(),
            b.device_path().display()
        );
        fs::write(w.root().join("tape.conf"), conf).unwrap();
        TwoDrives { a, b, w, _serial: serial }
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    /// A target `data/NAME` with a readme and `size` bytes of data.
    fn target(&self, name: &str, size: usize) -> PathBuf {
        let dir = self.w.data().join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("readme.txt"), format!("target {name}\n")).unwrap();
        let body: Vec<u8> = (0..size).map(|i| (i * 13 + name.len()) as u8).collect();
        fs::write(dir.join("data.bin"), body).unwrap();
        dir
    }

    fn import(&self, list: &str, targets: &[PathBuf]) {
        let list = self.w.list(list, targets);
        self.run(&["-y", "import", list.to_str().unwrap()], 0);
    }

    /// t0 written with one drive on each tape (which labels P1 and O1),
    /// then t1..t3 (of `size` bytes each) imported; the tar count reset.
    fn labelled(&self, size: usize) {
        let t0 = self.target("t0", 1000);
        self.import("list0.txt", &[t0]);
        self.run(&["open_tape", "P1", "--serial", "SP1", "--pool", "primary", "--online", "-y"], 0);
        self.run(&["open_tape", "O1", "--serial", "SO1", "--pool", "offsite", "--offline", "-y"], 0);
        self.run(&["-y", "assign", "P1"], 0);
        self.run(&["archive", "--drive", "A"], 0);
        self.run(&["activate_tape", "O1"], 0);
        self.run(&["-y", "assign", "O1"], 0);
        self.run(&["archive", "--drive", "B"], 0);
        let rest: Vec<PathBuf> = ["t1", "t2", "t3"].iter().map(|n| self.target(n, size)).collect();
        self.import("list1.txt", &rest);
        let _ = fs::remove_file(self.w.root().join("tars.log"));
    }

    /// How many tar streams the data host ran since the reset.
    fn tar_runs(&self) -> usize {
        fs::read_to_string(self.w.root().join("tars.log")).map_or(0, |s| s.lines().count())
    }

    /// Backups of target `name` by status on tape `tape`.
    fn status_of(&self, name: &str, tape: &str) -> String {
        let conn = self.w.sql();
        conn.query_row(
            "SELECT b.status FROM backups b JOIN targets t ON t.id = b.target_id JOIN tapes p ON p.id = b.tape_id \
             WHERE t.name LIKE '%/' || ?1 AND p.name = ?2",
            [name, tape],
            |r| r.get::<_, String>(0),
        )
        .unwrap_or_else(|_| "none".into())
    }
}

#[test]
fn both_copies_come_from_one_read_and_confirm() {
    let r = TwoDrives::new(None);
    r.labelled(300_000);
    let out = r.run(&["archive", "--repeat", "--drive", "A", "--drive", "B"], 40);
    assert!(out.contains("Drive A holds tape \"P1\" (pool primary)."), "{out}");
    assert!(out.contains("Drive B holds tape \"O1\" (pool offsite)."), "{out}");
    assert!(out.contains("Nothing is left to archive in pools primary and offsite."), "{out}");
    assert_eq!(r.tar_runs(), 3, "one read per target: {out}");
    for t in ["t1", "t2", "t3"] {
        assert_eq!(r.status_of(t, "P1"), "recorded", "{t}: {out}");
        assert_eq!(r.status_of(t, "O1"), "recorded", "{t}: {out}");
    }
    let (p, o) = (r.a.files().unwrap(), r.b.files().unwrap());
    assert_eq!(p.len(), 5, "label, t0..t3");
    assert_eq!(p[1..], o[1..], "the copies are byte-identical");
    assert_eq!(r.w.count("SELECT count(*) FROM tapeop_history WHERE kind = 'archive' AND outcome = 'ok'"), 3 * 2 + 2);
    r.run(&["activate_tape", "P1"], 0);
    r.run(&["confirm", "--repeat", "--drive", "A"], 40);
    r.run(&["activate_tape", "O1"], 0);
    r.run(&["confirm", "--repeat", "--drive", "B"], 40);
    assert_eq!(r.w.count("SELECT count(*) FROM backups WHERE status = 'confirmed'"), 8);
    r.run(&["check"], 0);
}

#[test]
fn the_offsite_tape_filling_ends_that_copy_and_one_drive_writes_it_later() {
    // Label (256 KiB) + t0 (one record) + t1 (two records) fit; t2 does not.
    let r = TwoDrives::new(Some(1_200 * 1024));
    r.labelled(300_000);
    let out = r.run(&["archive", "--repeat", "--drive", "A", "--drive", "B"], 43);
    assert!(out.contains("tape \"O1\" reached its end while writing tape file 3"), "{out}");
    assert_eq!(r.tar_runs(), 2, "{out}");
    assert_eq!(r.status_of("t1", "O1"), "recorded");
    assert_eq!(r.status_of("t2", "P1"), "recorded", "the other copy is recorded: {out}");
    assert_eq!(r.status_of("t2", "O1"), "none", "released from the full tape: {out}");
    assert_eq!(r.status_of("t3", "P1"), "none");
    assert_eq!(r.w.count("SELECT count(*) FROM tapeop_tape_info i JOIN tapes t ON t.id = i.tape_id WHERE t.name = 'O1' AND i.full = 1"), 1);
    assert_eq!(r.w.count("SELECT count(*) FROM tapeop_history WHERE tape = 'O1' AND outcome = 'tape full'"), 1);
    let catalogued = "SELECT count(*) FROM tapeop_tape_catalog c JOIN tapes t ON t.id = c.tape_id WHERE t.name = 'O1'";
    assert_eq!(r.w.count(catalogued), 1, "the full tape gets its catalogue file: {out}");
    // A new offsite tape in drive B; one drive writes what it lacks.
    r.b.change_tape(&r.w.root().join("tapes/O2.tap"), &VstOptions::default()).unwrap();
    r.run(&["open_tape", "O2", "--serial", "SO2", "--pool", "offsite", "--offline", "-y"], 0);
    r.run(&["activate_tape", "O2"], 0);
    r.run(&["-y", "assign", "O2"], 0);
    r.run(&["archive", "--repeat", "--drive", "B"], 40);
    assert_eq!(r.status_of("t2", "O2"), "recorded");
    assert_eq!(r.status_of("t3", "O2"), "recorded");
    // t3 now lacks only its primary copy: nothing for two drives.
    let out = r.run(&["archive", "--repeat", "--drive", "A", "--drive", "B"], 40);
    assert!(out.contains("1 targets wait for a copy in pool primary (tape \"P1\")"), "{out}");
}

#[test]
fn two_drives_are_refused_without_copy_pools_and_off_archive() {
    let w = World::new();
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\nssh_command =\n[drive.A]\ndevice = {r}/nstA\n[drive.B]\ndevice = {r}/nstB\n",
        r = w.root().display()
    );
    fs::write(w.root().join("tape.conf"), conf).unwrap();
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    let out = w.run(&["archive", "--drive", "A", "--drive", "B"], 1);
    assert_eq!(
        stderr(&out).trim(),
        "tapeop: two --drive write one copy in each of two pools, but tape.conf sets no copy_pools of two pools: set \
         copy_pools = POOL1 POOL2 under [default], or give one --drive"
    );
    let out = w.run(&["confirm", "--drive", "A", "--drive", "B"], 2);
    assert_eq!(stderr(&out).trim(), "tapeop: only archive takes two --drive (one copy on each); confirm uses one");
    let out = w.run(&["archive", "--drive", "A", "--drive", "A"], 2);
    assert_eq!(stderr(&out).trim(), "tapeop: archive takes two different --drive (one copy on each), not A, A");
}

#[test]
fn on_a_library_each_drive_loads_a_tape_of_its_pool() {
    let r = LibRig::new(3, 0);
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\nssh_command = \nblock_size = 64K\ntape_capacity = {CAPACITY}\n\
         copy_pools = primary offsite\n\n{}",
        r.lib.conf_sections()
    );
    fs::write(r.w.root().join("tape.conf"), conf).unwrap();
    r.targets(3);
    for (i, pool) in [(1, "offsite"), (2, "primary"), (3, "offsite")] {
        let name = format!("T{i}");
        r.w.run(&["-y", "open_tape", &name, "--serial", &barcode(i), "--pool", pool, "--offline"], 0);
    }
    let out = r.run(&["--drive", "A", "--drive", "B", "archive", "--repeat"], 40);
    assert!(
        out.contains(&format!("Tape \"T2\" (pool primary, cartridge {}) is next for drive A", barcode(2))),
        "{out}"
    );
    assert!(
        out.contains(&format!("Tape \"T1\" (pool offsite, cartridge {}) is next for drive B", barcode(1))),
        "{out}"
    );
    let want: Vec<(String, i64, String)> =
        ["T1", "T2"].iter().flat_map(|t| [1, 2, 3].map(|n| (t.to_string(), n, "recorded".to_string()))).collect();
    assert_eq!(r.backups(), want, "{out}");
    r.run(&["--drive", "A", "confirm", "next", "--repeat"], 40);
    let check = r.run(&["check"], 0);
    assert!(check.starts_with("tapeop check: all well"), "{check}");
}

#[test]
fn a_blank_tape_in_a_plain_drive_is_refused() {
    let r = TwoDrives::new(None);
    let t = r.target("t1", 1000);
    r.import("list.txt", &[t]);
    r.run(&["open_tape", "P1", "--serial", "SP1", "--pool", "primary", "--online", "-y"], 0);
    r.run(&["open_tape", "O1", "--serial", "SO1", "--pool", "offsite", "--offline", "-y"], 0);
    let out = r.w.run(&["archive", "--drive", "A", "--drive", "B"], 1);
    assert_eq!(
        stderr(&out).trim(),
        "tapeop: drive A holds no labelled tape of this catalogue: load an open tape of a copy pool there (a new \
         tape is labelled by a first archive with one drive: activate_tape NAME, archive --drive A)"
    );
    assert_eq!(r.w.count("SELECT count(*) FROM backups"), 0);
    assert_eq!(r.tar_runs(), 0);
}

#[test]
fn a_changed_source_fails_both_copies_once_checked() {
    let r = TwoDrives::new(None);
    r.labelled(300_000);
    fs::write(r.w.data().join("t1/readme.txt"), "changed since import\n").unwrap();
    let out = r.run(&["archive", "--repeat", "--drive", "A", "--drive", "B"], 42);
    assert_eq!(out.matches("the data differs from the catalogue in 1 place").count(), 2, "{out}");
    assert!(out.contains("the copy of") && out.contains("on tape \"P1\" file 2 (drive A)"), "{out}");
    assert!(out.contains("on tape \"O1\" file 2 (drive B)"), "{out}");
    assert_eq!(r.tar_runs(), 1);
    assert_eq!(r.status_of("t1", "P1"), "assigned");
    assert_eq!(r.status_of("t1", "O1"), "assigned");
    assert_eq!(r.w.count("SELECT count(*) FROM tapeop_history WHERE outcome = 'failed'"), 2);
}

#[test]
fn on_a_library_full_tapes_are_replaced_by_the_next_of_their_pool() {
    let r = LibRig::new(4, 0);
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\nssh_command = \nblock_size = 64K\ntape_capacity = {CAPACITY}\n\
         copy_pools = primary offsite\n\n{}",
        r.lib.conf_sections()
    );
    fs::write(r.w.root().join("tape.conf"), conf).unwrap();
    r.targets(6);
    for (i, pool) in [(1, "primary"), (2, "offsite"), (3, "primary"), (4, "offsite")] {
        let name = format!("T{i}");
        r.w.run(&["-y", "open_tape", &name, "--serial", &barcode(i), "--pool", pool, "--offline"], 0);
    }
    let out = r.run(&["--drive", "A", "--drive", "B", "archive", "--repeat"], 40);
    assert!(out.contains("Tape \"T1\" is full: drive A (element 0) takes the next tape of pool primary."), "{out}");
    assert!(out.contains("Tape \"T2\" is full: drive B (element 1) takes the next tape of pool offsite."), "{out}");
    let mut want = Vec::new();
    for (tape, files) in [("T1", 4), ("T2", 4), ("T3", 2), ("T4", 2)] {
        want.extend((1..=files).map(|n| (tape.to_string(), n, "recorded".to_string())));
    }
    assert_eq!(r.backups(), want, "{out}");
    let states = r.tape_states();
    assert!(
        states.contains(&("T1".into(), "full".into())) && states.contains(&("T2".into(), "full".into())),
        "{states:?}"
    );
}

#[test]
fn two_tapes_of_one_pool_are_refused() {
    let r = TwoDrives::new(None);
    r.run(&["open_tape", "P1", "--serial", "SP1", "--pool", "primary", "--online", "-y"], 0);
    r.run(&["open_tape", "P2", "--serial", "SP2", "--pool", "primary", "--offline", "-y"], 0);
    let t0 = r.target("t0", 1000);
    r.import("list0.txt", &[t0]);
    r.run(&["-y", "assign", "P1"], 0);
    r.run(&["archive", "--drive", "A"], 0);
    let t1 = r.target("t1", 1000);
    r.import("list1.txt", &[t1]);
    r.run(&["activate_tape", "P2"], 0);
    r.run(&["-y", "assign", "P2"], 0);
    r.run(&["archive", "--drive", "B"], 0);
    let before = r.w.count("SELECT count(*) FROM backups");
    let out = r.w.run(&["archive", "--drive", "A", "--drive", "B"], 1);
    assert_eq!(
        stderr(&out).trim(),
        "tapeop: tapes \"P1\" (drive A) and \"P2\" (drive B) are both in pool primary: two drives write one copy in \
         each of two pools; load a tape of another pool of copy_pools (primary offsite)"
    );
    assert_eq!(r.w.count("SELECT count(*) FROM backups"), before);
}

#[test]
fn one_drive_failing_mid_target_ends_its_copy_and_the_other_is_recorded() {
    let r = TwoDrives::new(None);
    r.labelled(300_000);
    let before = r.b.files().unwrap().len();
    // Drive B fails on t1's second record, as a drive with a hardware fault.
    r.b.fail_writes_after(1);
    let out = r.w.output(&["archive", "--repeat", "--drive", "A", "--drive", "B"]);
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(42), "{text}");
    assert!(
        text.contains(" -- copy on tape \"P1\" file 2: recorded")
            && text.contains("tapeop: the copy of ")
            && text.contains(" on tape \"O1\" file 2 (drive B): writing block 1"),
        "{text}"
    );
    assert_eq!(r.tar_runs(), 1, "{text}");
    assert_eq!(r.status_of("t1", "P1"), "recorded", "the other copy is recorded: {text}");
    assert_eq!(r.status_of("t1", "O1"), "assigned", "{text}");
    assert_eq!(r.w.count("SELECT count(*) FROM tapeop_history WHERE tape = 'O1' AND outcome = 'failed'"), 1, "{text}");
    // The failed copy's partial tape file ended with a filemark; nothing after it.
    assert_eq!(r.b.files().unwrap().len(), before + 1, "{text}");
    // The drive is repaired: two drives write t2 and t3 from one read each
    // (the first over the partial file), then one drive writes t1's
    // offsite copy.
    r.b.clear_write_fault();
    let out = r.run(&["archive", "--repeat", "--drive", "A", "--drive", "B"], 40);
    assert!(out.contains("holds a failed archive attempt; writing over it"), "{out}");
    assert_eq!(r.tar_runs(), 3, "{out}");
    assert_eq!(r.status_of("t1", "O1"), "assigned", "the failed copy stays assigned to its tape");
    r.run(&["activate_tape", "O1"], 0);
    r.run(&["archive", "--repeat", "--drive", "B"], 40);
    for t in ["t1", "t2", "t3"] {
        assert_eq!((r.status_of(t, "P1"), r.status_of(t, "O1")), ("recorded".into(), "recorded".into()), "{t}");
    }
    // Both tapes hold t0..t3, in another order on O1.
    assert_eq!((r.a.files().unwrap().len(), r.b.files().unwrap().len()), (5, 5));
    r.run(&["activate_tape", "P1"], 0);
    r.run(&["confirm", "--repeat", "--drive", "A"], 40);
    r.run(&["activate_tape", "O1"], 0);
    r.run(&["confirm", "--repeat", "--drive", "B"], 40);
    r.run(&["check"], 0);
}

#[test]
fn a_drive_asking_for_cleaning_in_a_two_drive_run_is_warned_about_once() {
    let r = TwoDrives::new(None);
    r.labelled(1000);
    r.b.set_cleaning_requested(true);
    let out = r.run(&["archive", "--repeat", "--drive", "A", "--drive", "B"], 40);
    let warning = format!("tapeop: warning: the drive {} asks for cleaning", r.b.device_path().display());
    assert_eq!(out.matches(&warning).count(), 1, "{out}");
    assert_eq!(out.matches("asks for cleaning").count(), 1, "drive A does not ask: {out}");
    for t in ["t1", "t2", "t3"] {
        assert_eq!(r.status_of(t, "O1"), "recorded", "{t}: the run carried on: {out}");
    }
}
