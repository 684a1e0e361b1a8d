//! A tape library run unattended: a simulated library (the stand-in `mtx`
//! of tests/support/mtx-sim, whose drives are virtual st drives) with two
//! drives and five cartridges, one of them for cleaning; two `archive
//! --repeat` runs at once (one per drive) and then `confirm next --repeat`;
//! and the faults of a library: a failed robot move, a cartridge not in the
//! library, a drive holding a cartridge the catalogue does not know, a
//! cartridge in another slot, a drive busy with another run, and a run
//! killed with -9 during a load or between the eject and the unload.
//!
//! These tests need FUSE (/dev/fuse, root) and mt-st, and hold
//! `vst::serial()` for their whole body.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::MutexGuard;

use support::datatree::pseudo_random;
use support::library::{Cartridge, Library};
use support::vst;
use support::world::{World, stderr, stdout};

const KIB: u64 = 1024;
/// Early warning of every data cartridge, and `tape_capacity`: four of the
/// targets below fit on a tape (with the label), five do not.
const CAPACITY: u64 = 2600 * KIB;

/// A world with a library: catalogue, data and tape.conf in `w`.
struct LibRig {
    lib: Library,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl LibRig {
    /// Two drives, data cartridges A00001L9..A0000nL9 (capacity CAPACITY),
    /// then the cleaning cartridge CLN001L1, then `free` empty slots.
    fn new(data_cartridges: usize, free: usize) -> LibRig {
        let serial = vst::serial();
        assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: these tests need FUSE");
        let w = World::new();
        let mut carts: Vec<Cartridge> = (1..=data_cartridges)
            .map(|i| Cartridge { capacity: Some(CAPACITY), ..Cartridge::labelled(&barcode(i)) })
            .collect();
        carts.push(Cartridge::cleaning("CLN001L1"));
        let slots = carts.len() + free;
        let lib = Library::with_slots(&w.root().join("lib"), 2, &carts, slots, 0);
        let conf = format!(
            "[default]\ndatabase_file = tape.sqlite\nssh_command =\nblock_size = 64K\ntape_capacity = {CAPACITY}\n\n{}",
            lib.conf_sections()
        );
        fs::write(w.root().join("tape.conf"), conf).unwrap();
        LibRig { lib, w, _serial: serial }
    }

    /// `count` targets t00.. of one 300 KiB file each, imported.
    fn targets(&self, count: usize) -> Vec<PathBuf> {
        let targets: Vec<PathBuf> = (0..count)
            .map(|i| {
                let dir = self.w.data().join(format!("t{i:02}"));
                fs::create_dir_all(&dir).unwrap();
                fs::write(dir.join("data.bin"), pseudo_random(300 * 1024 + i)).unwrap();
                dir
            })
            .collect();
        let list = self.w.list("list", &targets);
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        targets
    }

    /// open_tape T<i> --serial <barcode i> for i in `which`.
    fn open_tapes(&self, which: std::ops::RangeInclusive<usize>) {
        for i in which {
            self.w.run(&["-y", "open_tape", &format!("T{i}"), "--serial", &barcode(i), "--offline"], 0);
        }
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    /// (tape, file number, status) of every backup, by tape and file.
    fn backups(&self) -> Vec<(String, i64, String)> {
        let conn = self.w.sql();
        let mut stmt = conn
            .prepare(
                "SELECT tp.name, b.file_number, b.status FROM backups b JOIN tapes tp ON tp.id = b.tape_id
                 ORDER BY tp.name, b.file_number",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    /// Each tape's status as `tapes` shows it (`full`: tapeop's mark on an open tape).
    fn tape_states(&self) -> Vec<(String, String)> {
        let out = self.w.run(&["--json", "tapes"], 0);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .or_else(|| v["tapes"].as_array())
            .unwrap()
            .iter()
            .map(|t| {
                let full = t["full"].as_bool().unwrap() && t["status"] == "open";
                let status = if full { "full" } else { t["status"].as_str().unwrap() };
                (t["name"].as_str().unwrap().to_string(), status.to_string())
            })
            .collect()
    }

    /// The bytes of every cartridge image, by barcode.
    fn images(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.w.root().join("lib/cartridges")).unwrap() {
            let path = entry.unwrap().path();
            out.push((path.file_stem().unwrap().to_string_lossy().into_owned(), fs::read(&path).unwrap()));
        }
        out.sort();
        out
    }

    /// The storage slot holding `barcode`.
    fn slot_of(&self, barcode: &str) -> usize {
        (1..=self.lib.slots()).find(|&s| self.lib.in_slot(s).as_deref() == Some(barcode)).unwrap_or_else(|| {
            panic!("{barcode} is in no slot:\n{}", self.lib.status_text());
        })
    }
}

fn barcode(i: usize) -> String {
    format!("A{i:05}L9")
}

fn mt(dev: &Path, args: &[&str]) -> Output {
    let out = Command::new("mt").arg("-f").arg(dev).args(args).output().expect("running mt (mt-st)");
    assert!(out.status.success(), "mt {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The member names of tape file `n` of the cartridge in drive 0, read with
/// mt and GNU tar alone.
fn tar_list(dev: &Path, n: usize) -> Vec<String> {
    mt(dev, &["rewind"]);
    mt(dev, &["fsf", &n.to_string()]);
    let out = Command::new("tar").arg("-t").arg("-b").arg("128").arg("-f").arg(dev).output().unwrap();
    assert!(out.status.success(), "tar -t of tape file {n}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn two_drives_archive_sixteen_targets_onto_four_tapes_and_confirm_them() {
    let r = LibRig::new(4, 1);
    let targets = r.targets(16);
    r.open_tapes(1..=4);
    let spawn = |drive: &str| r.w.command(&["--drive", drive, "archive", "--repeat"]).output_async();
    let (a, b) = (spawn("A"), spawn("B"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    for (name, out) in [("A", &a), ("B", &b)] {
        assert_eq!(
            out.status.code(),
            Some(40),
            "drive {name}:\n{}{}\nmtx log:\n{}",
            stdout(out),
            stderr(out),
            r.lib.log().join("\n")
        );
        let written = stdout(out).matches("Archiving: ").count();
        assert!(written >= 4, "drive {name} wrote {written} targets: the runs did not work side by side");
    }
    assert_eq!(stdout(&a).matches("Archiving: ").count() + stdout(&b).matches("Archiving: ").count(), 16);
    let confirm = r.run(&["--drive", "A", "confirm", "next", "--repeat"], 40);
    assert!(confirm.contains("Nothing is left to confirm in the library for drive A (element 0)."), "{confirm}");

    // Every target confirmed, once, four to a tape, on tape files 1..4.
    let backups = r.backups();
    assert_eq!(backups.len(), 16, "{backups:?}");
    assert!(backups.iter().all(|(_, _, s)| s == "confirmed"), "{backups:?}");
    for i in 1..=4 {
        let files: Vec<i64> = backups.iter().filter(|(t, _, _)| *t == format!("T{i}")).map(|b| b.1).collect();
        assert_eq!(files, vec![1, 2, 3, 4], "tape T{i}: {backups:?}");
    }
    assert_eq!(r.w.count("SELECT COUNT(DISTINCT target_id) FROM backups"), 16);
    // Each drive's first tape was filled and marked full; none is closed.
    let states = r.tape_states();
    assert!(states.iter().all(|(_, s)| s == "open" || s == "full"), "{states:?}");
    assert!(states.iter().filter(|(_, s)| s == "full").count() >= 2, "{states:?}");
    // The cleaning cartridge never left its slot.
    assert!(r.lib.log().iter().all(|l| !l.starts_with("load 5 ")), "{:?}", r.lib.log());
    assert_eq!(r.lib.in_slot(5).as_deref(), Some("CLN001L1"));

    // The drives give their cartridges back; then every tape file reads
    // with mt and GNU tar alone, and holds the target catalogued there.
    // (confirm took B's last tape into A, so B is empty.)
    let out = r.run(&["--drive", "A", "unload"], 0);
    assert!(out.contains("is back in slot") && out.contains("drive A (element 0) is empty."), "{out}");
    assert_eq!(r.run(&["--drive", "B", "unload"], 0), "Nothing to unload: drive B (element 1) is empty.\n");
    assert_eq!((r.lib.in_drive(0), r.lib.in_drive(1)), (None, None));
    let dev = r.lib.drive(0).device_path();
    for i in 1..=4 {
        let slot = r.slot_of(&barcode(i)).to_string();
        let loaded = r.lib.mtx(&["load", &slot, "0"]);
        assert!(loaded.status.success(), "{}", String::from_utf8_lossy(&loaded.stderr));
        for n in 1..=4 {
            let target: String = r.w.sql().query_row(
                "SELECT t.name FROM backups b JOIN targets t ON t.id = b.target_id JOIN tapes tp ON tp.id = b.tape_id
                 WHERE tp.name = ?1 AND b.file_number = ?2",
                rusqlite::params![format!("T{i}"), n],
                |row| row.get(0),
            ).unwrap();
            let rel = target.trim_start_matches('/').to_string();
            assert_eq!(tar_list(&dev, n as usize), vec![format!("{rel}/"), format!("{rel}/data.bin")]);
        }
        mt(&dev, &["offline"]);
        assert!(r.lib.mtx(&["unload", &slot, "0"]).status.success());
    }
    assert_eq!(targets.len(), 16);
}

/// `Command::output` on a thread, so two runs go at once.
trait OutputAsync {
    fn output_async(&mut self) -> std::thread::JoinHandle<Output>;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> std::thread::JoinHandle<Output> {
        let child = self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        std::thread::spawn(move || child.wait_with_output().unwrap())
    }
}
