//! The faults of a tape library, each with its message, its exit code, and
//! the proof that tapes and catalogue did not change (or, after a kill -9,
//! that the next run carries on with nothing written twice or lost): a
//! robot move that fails, cartridges not in the library, a drive holding a
//! cartridge the catalogue does not know, a cartridge moved to another
//! slot, a drive busy with another run, and runs killed during a load or
//! between the eject and the unload.
//!
//! These tests need FUSE (/dev/fuse, root) and hold `vst::serial()` for
//! their whole body.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Output};

use support::library_rig::LibRig;
use support::world::{Gate, stderr, stdout};

fn killed(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "expected a kill -9:\n{}{}", stdout(&out), stderr(&out));
    out
}

#[test]
fn a_failed_robot_move_changes_nothing_and_the_next_run_goes_on() {
    let r = LibRig::new(2, 0);
    r.targets(2);
    r.open_tapes(1..=2);
    let (before, images) = (r.catalogue(), r.images());
    r.lib.fail_next("load");
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 1);
    let device = r.lib.device();
    assert!(
        out.contains(&format!(
            "tapeop: tape \"T1\": the changer {} could not load slot 1 into drive 0: mtx said: \"",
            device.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "sense key Hardware Error, ASC 15 ASCQ 01; mtx: MOVE MEDIUM from Element Address 4096 to 256 Failed\" ("
        ),
        "{out}"
    );
    assert_eq!((r.catalogue(), r.images()), (before, images), "the catalogue or a tape changed");
    assert_eq!((r.lib.in_drive(0), r.lib.in_slot(1).as_deref()), (None, Some("A00001L9")));
    // Every lock was released: the next run takes the same tape and goes on.
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert!(out.contains("Loading cartridge A00001L9 from slot 1 into drive A (element 0)..."), "{out}");
    assert_eq!(r.backups(), vec![("T1".into(), 1, "recorded".into()), ("T1".into(), 2, "recorded".into())]);
}

#[test]
fn cartridges_not_in_the_library_are_named_with_what_to_do() {
    let r = LibRig::new(2, 0);
    r.targets(1);
    r.open_tapes(1..=1);
    r.w.run(&["-y", "open_tape", "T9", "--serial", "X00009L9", "--offline"], 0);
    let out = r.run(&["--drive", "A", "load", "T9"], 1);
    assert_eq!(
        out,
        "tapeop: tape \"T9\": cartridge X00009L9 is not in the library: put it in a slot (or an import/export slot), \
         then run again\n"
    );
    let out = r.run(&["--drive", "B", "load", "NOSUCH"], 1);
    assert_eq!(
        out,
        "tapeop: cartridge NOSUCH is not in the library: put it in a slot (or an import/export slot), then run again\n"
    );
    // A target on a tape that left the library: restore says which tape.
    r.run(&["--drive", "A", "archive", "--repeat"], 40);
    r.run(&["--drive", "A", "unload"], 0);
    r.take_out(1);
    let before = r.catalogue();
    let target = r.w.data().join("t00");
    let out = r.run(&["--drive", "A", "restore", target.to_str().unwrap(), "--to", "out"], 1);
    assert!(out.contains("tape \"T1\": cartridge A00001L9 is not in the library: put it in a slot"), "{out}");
    assert!(!r.w.root().join("out").exists(), "nothing may be restored");
    assert_eq!(r.catalogue(), before);
}

#[test]
fn an_unknown_cartridge_in_the_drive_goes_back_to_its_slot_untouched() {
    let r = LibRig::new(2, 0);
    r.targets(1);
    r.open_tapes(1..=1);
    // A00002L9 is not a tape of the catalogue; someone left it in drive A.
    assert!(r.lib.mtx(&["load", "2", "0"]).status.success());
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert!(out.contains("Unloading cartridge A00002L9 from drive A (element 0) into slot 2..."), "{out}");
    assert_eq!(r.lib.in_slot(2).as_deref(), Some("A00002L9"));
    assert_eq!(fs::metadata(r.lib.image("A00002L9")).unwrap().len(), 0, "the unknown cartridge was written");
    assert_eq!(r.backups(), vec![("T1".into(), 1, "recorded".into())]);
}

#[test]
fn a_cartridge_moved_to_another_slot_is_found_by_its_barcode() {
    let r = LibRig::new(1, 2);
    r.targets(2);
    r.open_tapes(1..=1);
    r.run(&["--drive", "A", "archive", "--repeat"], 40);
    r.run(&["--drive", "A", "unload"], 0);
    assert!(r.lib.mtx(&["transfer", "1", "3"]).status.success());
    let out = r.run(&["--drive", "B", "confirm", "next", "--repeat"], 40);
    assert!(out.contains("Loading cartridge A00001L9 from slot 3 into drive B (element 1)..."), "{out}");
    assert_eq!(r.backups().iter().filter(|b| b.2 == "confirmed").count(), 2);
    let out = r.run(&["--drive", "B", "unload"], 0);
    assert_eq!(
        out,
        "Unloading cartridge A00001L9 from drive B (element 1) into slot 3...\nCartridge A00001L9 is back in slot 3; drive B (element 1) is empty.\n"
    );
}

#[test]
fn a_drive_busy_with_another_run_is_refused_and_the_run_finishes() {
    let r = LibRig::new(2, 0);
    r.targets(1);
    r.open_tapes(1..=2);
    let gate = Gate::new(&r.w);
    r.conf(&gate.ssh_command());
    let job = r.spawn(&["--drive", "A", "archive", "--repeat"], None);
    gate.wait_started();
    let dev = r.lib.drive(0).device_path();
    for args in [&["--drive", "A", "load", "T2"][..], &["--drive", "A", "unload"], &["--drive", "A", "archive"]] {
        let out = r.run(args, 1);
        assert!(
            out.starts_with(&format!("tapeop: the drive {} is in use by pid {} (", dev.display(), job.id())),
            "{out}"
        );
        assert!(out.contains("--drive A) since "), "{out}");
    }
    let out = r.run(&["-y", "open_tape", "T3", "--serial", "A00003L9", "--offline"], 1);
    assert!(out.contains("is in use by pid") && out.contains("(archive --drive A) since"), "{out}");
    gate.release();
    let out = job.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(40), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(r.backups(), vec![("T1".into(), 1, "recorded".into())]);
    assert_eq!(r.lib.in_drive(0).as_deref(), Some("A00001L9"));
}

#[test]
fn killed_during_a_load_the_next_run_carries_on() {
    let r = LibRig::new(2, 0);
    r.targets(2);
    r.open_tapes(1..=2);
    r.lib.hold_next_load();
    let job = r.spawn(&["--drive", "A", "archive", "--repeat"], None);
    let held = r.lib.wait_load_held();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(job.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    killed(job);
    drop(held);
    r.lib.wait_idle();
    assert_eq!(r.lib.in_drive(0).as_deref(), Some("A00001L9"), "the robot finished its move");
    assert!(r.backups().is_empty());
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert!(!out.contains("Loading cartridge"), "the cartridge is already there: {out}");
    assert_eq!(r.backups(), vec![("T1".into(), 1, "recorded".into()), ("T1".into(), 2, "recorded".into())]);
    r.run(&["--drive", "A", "confirm", "next", "--repeat"], 40);
    assert!(r.backups().iter().all(|b| b.2 == "confirmed"));
}

#[test]
fn killed_between_the_eject_and_the_unload_the_next_run_carries_on() {
    let r = LibRig::new(2, 0);
    r.targets(5);
    r.open_tapes(1..=2);
    // T1 takes four targets; the fifth sends the run to T2, and it dies
    // after ejecting T1 and before the robot takes it.
    let job = r.spawn(&["--drive", "A", "archive", "--repeat"], Some("library-after-eject"));
    let out = killed(job);
    assert!(stdout(&out).contains("No unassigned target fits in the space left on tape \"T1\""), "{}", stdout(&out));
    assert_eq!(r.lib.in_drive(0).as_deref(), Some("A00001L9"));
    let files = |tape: &str| r.backups().iter().filter(|b| b.0 == tape).count();
    assert_eq!((files("T1"), files("T2")), (4, 0));
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert!(out.contains("Unloading cartridge A00001L9 from drive A (element 0) into slot 1..."), "{out}");
    assert_eq!((files("T1"), files("T2")), (4, 1));
    assert_eq!(r.w.count("SELECT COUNT(DISTINCT target_id) FROM backups"), 5);
}

#[test]
fn a_cartridge_left_ejected_is_loaded_again() {
    let r = LibRig::new(1, 0);
    r.targets(1);
    r.open_tapes(1..=1);
    r.run(&["--drive", "A", "archive", "--repeat"], 40);
    killed(r.spawn(&["--drive", "A", "unload"], Some("library-after-eject")));
    assert_eq!(r.lib.in_drive(0).as_deref(), Some("A00001L9"));
    let out = r.run(&["--drive", "A", "load", "T1"], 0);
    assert_eq!(
        out,
        "Cartridge A00001L9 is in drive A (element 0) but not loaded: loading it again.\n\
         Tape \"T1\" (cartridge A00001L9) is loaded in drive A (element 0).\n"
    );
    let out = r.run(&["--drive", "A", "confirm", "next"], 0);
    assert!(out.contains("Marking record as confirmed."), "{out}");
}

#[test]
fn restore_loads_the_tape_that_holds_the_target() {
    let r = LibRig::new(2, 0);
    r.targets(2);
    r.open_tapes(1..=2);
    r.run(&["--drive", "A", "archive", "--repeat"], 40);
    r.run(&["--drive", "A", "unload"], 0);
    let target = r.w.data().join("t01");
    let out = r.run(&["--drive", "B", "restore", target.to_str().unwrap(), "--to", "out"], 0);
    assert!(out.contains("Loading cartridge A00001L9 from slot 1 into drive B (element 1)..."), "{out}");
    let restored = r.w.root().join("out/data.bin");
    assert_eq!(fs::read(restored).unwrap(), fs::read(target.join("data.bin")).unwrap());
    assert_eq!(r.lib.in_drive(1).as_deref(), Some("A00001L9"));
}

#[test]
fn a_label_that_does_not_match_the_barcode_is_refused_and_nothing_is_written() {
    let r = LibRig::new(2, 0);
    r.targets(3);
    r.open_tapes(1..=2);
    r.run(&["--drive", "A", "load", "T1"], 0);
    r.run(&["--drive", "B", "load", "T2"], 0);
    // One target on each tape, labelled T1 and T2.
    r.w.run(&["-y", "assign", "T1"], 0);
    r.run(&["--drive", "A", "archive"], 0);
    r.w.run(&["-y", "close_tape", "T1", "--force"], 0);
    r.run(&["--drive", "B", "archive"], 0);
    r.run(&["--drive", "A", "unload"], 0);
    r.run(&["--drive", "B", "unload"], 0);
    // The barcode stickers of the two cartridges were swapped.
    let slots = |n: usize| r.lib.device().join(format!("slots/{n}"));
    let relabel = |n: usize, barcode: &str| {
        let line = fs::read_to_string(slots(n)).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        fs::write(slots(n), format!("{} {barcode} {}\n", words[0], words[2])).unwrap();
    };
    relabel(1, "A00002L9");
    relabel(2, "A00001L9");
    let (before, images) = (r.catalogue(), r.images());
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 1);
    assert!(
        out.contains("tapeop: refusing to write: wrong tape: the catalogue expects tape \"T2\" here, but the loaded tape's label says \"T1\"")
            && out.contains("nothing was written"),
        "{out}"
    );
    assert_eq!((r.catalogue(), r.images()), (before, images));
}

#[test]
fn an_unload_that_fails_leaves_the_tape_recorded_and_the_next_run_goes_on() {
    let r = LibRig::new(2, 0);
    r.targets(5);
    r.open_tapes(1..=2);
    r.lib.fail_next("unload");
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 1);
    assert!(out.contains("could not unload drive 0 into slot 1: mtx said: \"sense key Hardware Error"), "{out}");
    let files = |tape: &str| r.backups().iter().filter(|b| b.0 == tape && b.2 == "recorded").count();
    assert_eq!((files("T1"), files("T2")), (4, 0), "T1 is full and recorded");
    assert_eq!(
        r.lib.in_drive(0).as_deref(),
        Some("A00001L9"),
        "the failed move left the cartridge (ejected) in the drive"
    );
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert!(out.contains("Unloading cartridge A00001L9 from drive A (element 0) into slot 1..."), "{out}");
    assert_eq!((files("T1"), files("T2")), (4, 1));
}

#[test]
fn one_batch_per_drive_each_with_its_log() {
    let r = LibRig::new(2, 0);
    r.targets(2);
    r.open_tapes(1..=2);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tape_batch.bash");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args(["archive", "--drive", "B", "--repeat"])
        .current_dir(r.w.root())
        .env("TAPEOP", env!("CARGO_BIN_EXE_tapeop"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(40), "{}", stderr(&out));
    let log = fs::read_to_string(r.w.root().join("backup.B.log")).unwrap();
    assert!(log.contains("Loading cartridge A00001L9 from slot 1 into drive B (element 1)..."), "{log}");
    assert_eq!(log.matches("Marking record as archived.").count(), 2, "{log}");
    assert!(log.ends_with("tapeop archive exited with code 40; stopping.\n"), "{log}");
    assert!(!r.w.root().join("backup.log").exists());
}

#[test]
fn without_a_known_capacity_the_end_of_the_tape_sends_the_target_to_the_next_tape() {
    let r = LibRig::new(2, 0);
    r.conf_with("", "");
    r.targets(6);
    r.open_tapes(1..=2);
    // No tape_capacity: T1 takes five targets (the write that crosses the
    // early warning completes); the sixth meets the early warning, and its
    // partial tape file is not recorded.
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert!(
        out.contains("reached its end while writing")
            && out.contains("the tape is marked full, and the target goes to the next tape."),
        "{out}"
    );
    assert!(out.contains("Unloading cartridge A00001L9 from drive A (element 0) into slot 1..."), "{out}");
    let files = |tape: &str| r.backups().iter().filter(|b| b.0 == tape && b.2 == "recorded").count();
    assert_eq!((files("T1"), files("T2")), (5, 1));
    assert_eq!(r.w.count("SELECT COUNT(*) FROM backups"), 6, "no assigned row is left on the full tape");
    let states = r.tape_states();
    assert_eq!(states, vec![("T1".to_string(), "full".to_string()), ("T2".to_string(), "open".to_string())]);
    r.run(&["--drive", "B", "confirm", "next", "--repeat"], 40);
    assert!(r.backups().iter().all(|b| b.2 == "confirmed"), "{:?}", r.backups());
}
