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

use std::path::Path;
use std::process::{Command, Output};

use support::world::{stderr, stdout};

use support::library_rig::{LibRig, barcode};

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
