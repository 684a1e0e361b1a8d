//! Tape motion budgets on the virtual st drive, which counts every
//! positioning operation, rewind and byte the head passes over while
//! positioning: `tape_batch.bash archive` (one `tapeop archive` per target)
//! moves the tape less than 10 % of what it writes with at most two rewinds;
//! `tape_batch.bash confirm` after a load moves it at most 10 % of what it
//! reads; the same with `--repeat`; a restore moves it at most its distance
//! from the head; confirming right after archiving (no load) goes back to
//! file 1 once per run, not per target; `scan_tape` after a load moves it
//! at most 10 % more than it reads, with no rewind (one for an unlabelled
//! tape or a head away from the beginning). And the proof that costs no motion is never fooled by a
//! cartridge swapped between two runs: the wrong tape is refused, the right
//! one is proved in full.

mod support;

use support::{vst, world};

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::MutexGuard;

use vst::{Motion, VirtualDrive, VstOptions};
use world::{World, describe, stderr, stdout};

/// Size of the data file of each target.
const TARGET_BYTES: usize = 2_000_000;
/// Targets per tape in the budget tests.
const TARGETS: usize = 12;

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
        let rig = Rig { drive, w, _serial: serial };
        rig.conf(rig.w.root());
        rig
    }

    /// tape.conf in `dir` naming this drive and the catalogue `tape.sqlite` there.
    fn conf(&self, dir: &Path) {
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n",
            self.drive.device_path().display()
        );
        fs::write(dir.join("tape.conf"), text).unwrap();
    }

    /// `n` targets of `size` bytes each, imported, assigned to the online tape T1.
    fn prepare(&self, w: &World, prefix: &str, n: usize, size: usize) -> Vec<PathBuf> {
        let targets: Vec<PathBuf> = (0..n).map(|i| make_target(w, &format!("{prefix}{i:02}"), size)).collect();
        let list = w.list("list.txt", &targets);
        w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
        w.run(&["-y", "assign"], 0);
        targets
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    /// Take the cartridge out and put `tapes/NAME` in (at the beginning of the tape).
    fn load(&self, name: &str) -> PathBuf {
        let image = self.w.root().join("tapes").join(name);
        self.drive.change_tape(&image, &VstOptions::default()).unwrap();
        image
    }

    fn mt(&self, args: &[&str]) {
        let out = Command::new("mt").arg("-f").arg(self.drive.device_path()).args(args).output().unwrap();
        assert!(out.status.success(), "mt {args:?}: {}", describe(&out));
    }

    /// Run `body` and return the tape motion it caused.
    fn motion_of(&self, body: impl FnOnce()) -> Motion {
        let before = self.drive.motion();
        body();
        self.drive.motion().since(&before)
    }

    fn batch(&self, mode: &str) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tape_batch.bash");
        Command::new("bash")
            .arg(script)
            .arg(mode)
            .current_dir(self.w.root())
            .env("TAPEOP", env!("CARGO_BIN_EXE_tapeop"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn statuses(&self) -> Vec<String> {
        self.w.backups().into_iter().map(|(_, _, s)| s).collect()
    }
}

/// Deterministic, incompressible bytes for one seed.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn make_target(w: &World, name: &str, size: usize) -> PathBuf {
    let dir = w.data().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("readme.txt"), format!("target {name}\n")).unwrap();
    let seed = name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    fs::write(dir.join("data.bin"), bytes(size, seed)).unwrap();
    dir
}

/// Record bytes of tape files `from..` of the tape image.
fn bytes_from(image: &Path, from: usize) -> u64 {
    let files = vst::tap_files(image).unwrap();
    files[from..].iter().flatten().map(|r| r.len() as u64).sum()
}

fn assert_archive_budget(m: &Motion, what: &str) {
    eprintln!("{what}: {m:?}");
    assert!(m.bytes_written >= (TARGETS * TARGET_BYTES) as u64, "{what}: {m:?}");
    assert!(m.bytes_passed * 10 < m.bytes_written, "{what}: moved {} for {} written", m.bytes_passed, m.bytes_written);
    assert!(m.rewinds <= 2, "{what}: {} rewinds", m.rewinds);
}

fn assert_confirm_budget(m: &Motion, what: &str) {
    eprintln!("{what}: {m:?}");
    assert!(m.bytes_read >= (TARGETS * TARGET_BYTES) as u64, "{what}: {m:?}");
    assert!(m.bytes_passed * 10 <= m.bytes_read, "{what}: moved {} for {} read", m.bytes_passed, m.bytes_read);
    assert!(m.rewinds <= 2, "{what}: {} rewinds", m.rewinds);
}

#[test]
fn tape_batch_archive_and_confirm_stay_within_their_motion_budgets() {
    let rig = Rig::new();
    rig.prepare(&rig.w, "t", TARGETS, TARGET_BYTES);

    let m = rig.motion_of(|| {
        let out = rig.batch("archive");
        assert_eq!(out.status.code(), Some(40), "{}", describe(&out));
    });
    assert_archive_budget(&m, "tape_batch.bash archive");
    let log = fs::read_to_string(rig.w.root().join("backup.log")).unwrap();
    assert_eq!(log.matches("Marking record as archived.").count(), TARGETS, "{log}");
    assert_eq!(log.matches("proved without moving it").count(), TARGETS - 1, "{log}");

    // The operator takes the tape out and later puts it back to confirm it.
    rig.load("A.tap");
    let m = rig.motion_of(|| {
        let out = rig.batch("confirm");
        assert_eq!(out.status.code(), Some(40), "{}", describe(&out));
    });
    assert_confirm_budget(&m, "tape_batch.bash confirm after a load");
    assert!(rig.statuses().iter().all(|s| s == "confirmed"), "{:?}", rig.statuses());
    let log = fs::read_to_string(rig.w.root().join("backup.log")).unwrap();
    assert_eq!(log.matches("its label is not read again").count(), TARGETS - 1, "label proved once per load: {log}");
}

#[test]
fn archive_and_confirm_repeat_stay_within_their_motion_budgets() {
    let rig = Rig::new();
    rig.prepare(&rig.w, "r", TARGETS, TARGET_BYTES);
    let m = rig.motion_of(|| {
        rig.run(&["archive", "--repeat"], 40);
    });
    assert_archive_budget(&m, "archive --repeat");
    rig.load("A.tap");
    let m = rig.motion_of(|| {
        rig.run(&["confirm", "--repeat"], 40);
    });
    assert_confirm_budget(&m, "confirm --repeat after a load");
    assert!(rig.statuses().iter().all(|s| s == "confirmed"), "{:?}", rig.statuses());

    // A restore of one target moves the tape at most its distance from the
    // head (end of data here), and trusts the label it proved.
    let targets: Vec<PathBuf> = (0..TARGETS).map(|i| rig.w.data().join(format!("r{i:02}"))).collect();
    let image = rig.drive.image_path();
    let (file, target) = (9, &targets[8]);
    let distance = bytes_from(&image, file);
    let to = rig.w.root().join("restored");
    let m = rig.motion_of(|| {
        let out = rig.w.run(&[OsStr::new("restore"), target.as_os_str(), OsStr::new("--to"), to.as_os_str()], 0);
        assert!(stdout(&out).contains("its label is not read again"), "{}", describe(&out));
    });
    eprintln!("restore of file {file} from the end of data: {m:?} (distance {distance})");
    assert!(m.bytes_passed <= distance, "moved {} for a distance of {distance}", m.bytes_passed);
    assert_eq!(m.rewinds, 0);
    assert_eq!(fs::read(to.join("data.bin")).unwrap(), fs::read(target.join("data.bin")).unwrap());

    // The next restore goes on from where the last one left the head.
    let (file, target) = (11, &targets[10]);
    let here = bytes_from(&image, 10);
    let ahead = here - bytes_from(&image, file);
    let to = rig.w.root().join("restored2");
    let m = rig.motion_of(|| {
        rig.w.run(&[OsStr::new("restore"), target.as_os_str(), OsStr::new("--to"), to.as_os_str()], 0);
    });
    eprintln!("restore of file {file} from file 10: {m:?} (distance {ahead})");
    assert!(m.bytes_passed <= ahead, "moved {} for a distance of {ahead}", m.bytes_passed);
    assert_eq!(m.rewinds, 0);
}

/// Tape A (T1 of this catalogue) holds a and b at files 1 and 2; returns
/// its image. The drive's last proof is left at its end of data.
fn archived_two(rig: &Rig) -> PathBuf {
    rig.prepare(&rig.w, "x", 3, 1000);
    rig.run(&["archive"], 0);
    let out = rig.run(&["archive"], 0);
    assert!(out.contains("Tape \"T1\" proved without moving it"), "{out}");
    let out = rig.run(&["drive"], 0);
    assert!(out.contains("Last proof:      tape \"T1\" (serial S1) by archive at "), "{out}");
    assert!(out.contains("head left at file 3 block 0"), "{out}");
    assert!(out.contains("the head is still there"), "{out}");
    rig.drive.image_path()
}

/// A tape another catalogue also calls T1 (serial S1), whose end of data is
/// at file 3 like tape A's: a label and two one-record targets.
fn twin_of_another_catalogue(rig: &Rig) -> PathBuf {
    let image = rig.load("twin.tap");
    let other = World::new();
    rig.conf(other.root());
    rig.prepare(&other, "y", 2, 1000);
    other.run(&["archive", "--repeat"], 40);
    assert_eq!(vst::tap_files(&image).unwrap().len(), 3);
    image
}

#[test]
fn a_cartridge_swapped_between_two_archives_is_refused_or_proved_in_full() {
    let rig = Rig::new();
    let twin = twin_of_another_catalogue(&rig);
    let image_twin = fs::read(&twin).unwrap();
    rig.load("A.tap");
    let a = archived_two(&rig);
    let image_a = fs::read(&a).unwrap();

    // The twin, as loaded (at the beginning of the tape), then moved to its
    // end of data by hand: file 3 like tape A, yet refused both times.
    rig.load("twin.tap");
    let out = rig.run(&["archive"], 1);
    assert!(
        out.contains("wrong tape: the catalogue expects tape \"T1\" here, but the loaded tape's label says"),
        "{out}"
    );
    for how in [&["eod"][..], &["fsf", "3"]] {
        rig.mt(&["rewind"]);
        rig.mt(how);
        let out = rig.run(&["archive"], 1);
        assert!(out.contains("refusing to write: wrong tape"), "{how:?}: {out}");
        assert!(!out.contains("proved without moving"), "{how:?}: {out}");
    }
    assert_eq!(fs::read(&twin).unwrap(), image_twin, "the twin is untouched");
    assert_eq!(fs::read(&a).unwrap(), image_a, "tape A is untouched");
    assert_eq!(rig.w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 2);

    // Tape A back in: proved in full (the label read where the load left
    // the head, no rewind), then written.
    rig.load("A.tap");
    let m = rig.motion_of(|| {
        let out = rig.run(&["archive"], 0);
        assert!(!out.contains("proved without moving"), "{out}");
    });
    assert_eq!(m.rewinds, 0, "{m:?}");
    assert_eq!(rig.w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 3);
    assert_eq!(vst::tap_files(&a).unwrap().len(), 4);

    // Unloaded and loaded again between two runs: proved in full too.
    rig.drive.set_loaded(false);
    rig.drive.set_loaded(true);
    let out = rig.run(&["drive"], 0);
    assert!(out.contains("the head has moved since (or a tape was loaded)"), "{out}");
    let out = rig.run(&["confirm", "next"], 0);
    assert!(!out.contains("its label is not read again"), "{out}");
}

#[test]
fn a_proof_left_by_a_run_that_died_is_not_trusted() {
    let rig = Rig::new();
    archived_two(&rig);
    // A run that takes the proof and dies leaves none: simulate by moving
    // the head away and back, which changes nothing on tape but is not
    // where the proof was left (the drive reports end of data now).
    rig.mt(&["rewind"]);
    rig.mt(&["eod"]);
    let out = rig.run(&["archive"], 0);
    assert!(!out.contains("proved without moving"), "{out}");
    assert_eq!(rig.w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 3);
}

#[test]
fn a_swapped_cartridge_read_to_the_same_position_by_scan_tape_is_still_refused() {
    let rig = Rig::new();
    let twin = twin_of_another_catalogue(&rig);
    let image_twin = fs::read(&twin).unwrap();
    rig.load("A.tap");
    let a = archived_two(&rig);
    rig.load("twin.tap");
    // scan_tape reads the twin to its end of data: file 3, where tape A's
    // proof left the head, at the same absolute position.
    let out = rig.w.output(&["scan_tape"]);
    assert_eq!(rig.drive.position(), (3, 0), "{}", describe(&out));
    let out = rig.run(&["archive"], 1);
    assert!(out.contains("refusing to write: wrong tape"), "{out}");
    assert_eq!(fs::read(&twin).unwrap(), image_twin, "the twin is untouched");
    rig.load("A.tap");
    rig.run(&["archive"], 0);
    assert_eq!(vst::tap_files(&a).unwrap().len(), 4);
}

fn assert_scan_budget(m: &Motion, read_at_least: u64, rewinds: u64, what: &str) {
    eprintln!("{what}: {m:?}");
    assert!(m.bytes_read >= read_at_least, "{what}: {m:?}");
    assert!(m.bytes_passed * 10 <= m.bytes_read, "{what}: moved {} for {} read", m.bytes_passed, m.bytes_read);
    assert!(m.rewinds <= rewinds, "{what}: {} rewinds", m.rewinds);
}

/// `scan_tape` reads on from where a load leaves the head: the label, then
/// each tape file, end of data found by the read that finds no tape file.
/// After a load it moves the tape at most 10 % more than it reads, with no
/// rewind; an unlabelled tape costs one rewind (back over the first records
/// of file 0, read to look for a label). Without a load, a head left at
/// end of data (by `archive`, or an earlier scan) costs the one pass back
/// that reaching file 0 needs: one rewind.
#[test]
fn scan_tape_reads_on_from_the_head_within_its_motion_budget() {
    let rig = Rig::new();
    rig.prepare(&rig.w, "s", TARGETS, TARGET_BYTES);
    rig.run(&["archive", "--repeat"], 40);
    let image = rig.drive.image_path();
    let data = bytes_from(&image, 1);
    let files = TARGETS + 1;

    rig.load("A.tap");
    let m = rig.motion_of(|| {
        let out = rig.run(&["scan_tape"], 0);
        assert!(out.contains(&format!("holds {files} tape files.")), "{out}");
        assert!(out.contains(&format!("Tape \"T1\": all {TARGETS} tape files match the catalogue.")), "{out}");
    });
    assert_scan_budget(&m, data, 0, "scan_tape after a load");
    assert_eq!(rig.drive.position(), (files as i32, 0), "the head is left at end of data");

    // A lost catalogue rebuilt from the tape: the same motion.
    let other = World::new();
    rig.conf(other.root());
    rig.load("A.tap");
    let m = rig.motion_of(|| {
        let out = other.run(&["scan_tape", "--record-as", "T1"], 0);
        assert!(
            stdout(&out).contains(&format!("Tape \"T1\": {TARGETS} tape files recorded, 0 not.")),
            "{}",
            describe(&out)
        );
    });
    assert_scan_budget(&m, data, 0, "scan_tape --record-as after a load");

    // The head at end of data (where the last scan, like archive, left
    // it): the one rewind to file 0.
    let m = rig.motion_of(|| {
        rig.run(&["scan_tape"], 0);
    });
    eprintln!("scan_tape with the head at end of data: {m:?}");
    assert_eq!(m.rewinds, 1, "{m:?}");
    assert!(m.bytes_passed <= bytes_from(&image, 0), "one pass back at most: {m:?}");
    assert!(m.bytes_read >= data, "{m:?}");

    // The old tool's tape (no label): one rewind back over what was read
    // of file 0 looking for a label.
    let old = rig.w.root().join("tapes/old.tap");
    vst::write_tap_files(&old, &vst::tap_files(&image).unwrap()[1..]).unwrap();
    rig.load("old.tap");
    let fresh = World::new();
    rig.conf(fresh.root());
    let m = rig.motion_of(|| {
        let out = fresh.run(&["scan_tape", "--record-as", "OLD"], 0);
        let out = stdout(&out);
        assert!(out.contains("The tape has no tapeop label"), "{out}");
        assert!(out.contains(&format!("holds {TARGETS} tape files.")), "{out}");
    });
    assert_scan_budget(&m, data, 1, "scan_tape --record-as of an unlabelled tape after a load");
}

/// A blank tape is refused before anything is read or recorded, and an
/// empty catalogue is not created with a tape in it.
#[test]
fn scan_tape_of_a_blank_tape_reads_nothing() {
    let rig = Rig::new();
    let err = stderr(&rig.w.run(&["scan_tape", "--record-as", "B"], 1));
    let want = format!("{} holds no tape files: nothing to scan", rig.drive.device_path().display());
    assert!(err.contains(&want), "{err}");
    assert_eq!(rig.w.count("SELECT COUNT(*) FROM tapes"), 0);
    assert_eq!(rig.drive.motion().rewinds, 0);
}

/// `tape_batch.bash confirm` right after `tape_batch.bash archive` (no
/// load in between) goes back to file 1 once, for the whole run of tape
/// files, then reads forward: one pass back, not one per target. The same
/// for `confirm --repeat` after `archive --repeat`.
#[test]
fn confirm_right_after_archive_goes_back_once_per_run() {
    for batch in [true, false] {
        let rig = Rig::new();
        rig.prepare(&rig.w, "c", TARGETS, TARGET_BYTES);
        if batch {
            let out = rig.batch("archive");
            assert_eq!(out.status.code(), Some(40), "{}", describe(&out));
        } else {
            rig.run(&["archive", "--repeat"], 40);
        }
        let back = bytes_from(&rig.drive.image_path(), 1);
        let m = rig.motion_of(|| {
            if batch {
                let out = rig.batch("confirm");
                assert_eq!(out.status.code(), Some(40), "{}", describe(&out));
            } else {
                rig.run(&["confirm", "--repeat"], 40);
            }
        });
        let what = if batch { "tape_batch.bash confirm" } else { "confirm --repeat" };
        eprintln!("{what} right after archive: {m:?} (one pass back: {back})");
        assert!(m.bytes_read >= (TARGETS * TARGET_BYTES) as u64, "{what}: {m:?}");
        assert!(m.bytes_passed <= back, "{what}: moved {} for one pass back of {back}", m.bytes_passed);
        assert!(m.positioning_ops <= 2 && m.rewinds <= 1, "{what}: {m:?}");
        assert!(rig.statuses().iter().all(|s| s == "confirmed"), "{what}: {:?}", rig.statuses());
    }
}
