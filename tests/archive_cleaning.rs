//! A drive that asks for cleaning during `archive --repeat`: on the
//! library rig it is cleaned between two targets (never while one is being
//! written) and the same tape is loaded back, and every target is confirmed
//! afterwards; on a plain drive the run warns once and carries on. A run
//! of one target (as `tape_batch.bash` loops `archive`) asks before its
//! target, so an overnight batch cleans (or warns) too.

mod support;

use support::library_rig::LibRig;
use support::vst_rig::Rig;
use support::world::{Gate, stderr, stdout};

/// The robot's moves, as mtx-sim logged them (`load 2 0`, `unload 1 0`).
fn moves(r: &LibRig) -> Vec<String> {
    let log = r.lib.log();
    let moved = log.iter().filter(|l| l.starts_with("load ") || l.starts_with("unload "));
    moved.map(|l| l.trim_end_matches(" -> ok").to_string()).collect()
}

#[test]
fn a_cleaning_request_mid_target_is_handled_before_the_next_target() {
    // One data cartridge (slot 1), CLN001L1 (slot 2).
    let r = LibRig::new(1, 0);
    r.targets(3);
    r.open_tapes(1..=1);
    let gate = Gate::new(&r.w);
    r.conf(&gate.ssh_command());
    let job = r.spawn(&["--drive", "A", "archive", "--repeat"], None);
    gate.wait_started();
    // The first target is being written: the drive asks now.
    r.lib.drive(0).set_cleaning_requested(true);
    assert_eq!(moves(&r), ["load 1 0"], "nothing moves while a target is written");
    gate.release();
    for _ in 1..3 {
        gate.wait_started();
        gate.release();
    }
    let out = job.wait_with_output().unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(40), "{text}");
    assert_eq!(moves(&r), ["load 1 0", "unload 1 0", "load 2 0", "unload 2 0", "load 1 0"], "{text}");
    let first = text.find("drive A (element 0) asks for cleaning: cleaning it before the next target.").unwrap();
    let cleaned = text.find("drive A cleaned with CLN001L1 (slot 2), ").unwrap();
    let archiving: Vec<usize> = text.match_indices("Archiving: ").map(|(i, _)| i).collect();
    assert_eq!(archiving.len(), 3, "{text}");
    assert!(archiving[0] < first && cleaned < archiving[1], "cleaned between the first two targets:\n{text}");
    assert_eq!(text.matches("asks for cleaning").count(), 1, "cleaned once: {text}");
    assert_eq!(r.lib.in_drive(0).as_deref(), Some("A00001L9"));
    assert_eq!(r.slot_of("CLN001L1"), 2);

    r.conf("");
    r.run(&["--drive", "A", "confirm", "next", "--repeat"], 40);
    let backups = r.backups();
    assert_eq!(backups.len(), 3, "{backups:?}");
    assert!(backups.iter().all(|(t, _, s)| t == "T1" && s == "confirmed"), "{backups:?}");
    let clean = r.w.sql().query_row(
        "SELECT kind || '|' || tape || '|' || target || '|' || outcome FROM tapeop_history WHERE kind = 'clean'",
        [],
        |row| row.get::<_, String>(0),
    );
    assert_eq!(clean.unwrap(), "clean|CLN001L1|drive A|ok");
}

#[test]
fn without_a_cleaning_cartridge_the_library_run_warns_once_and_carries_on() {
    let r = LibRig::new(1, 0);
    r.take_out(2);
    r.targets(3);
    r.open_tapes(1..=1);
    r.lib.drive(0).set_cleaning_requested(true);
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    let warning = "tapeop: warning: drive A (element 0) asks for cleaning, but no cleaning cartridge (CLN...) is in \
                   a slot: carrying on; put one in a slot, run tapeop inventory, then tapeop --drive A clean\n";
    assert_eq!(out.matches(warning).count(), 1, "{out}");
    assert_eq!(moves(&r), ["load 1 0"]);
    assert_eq!(r.backups().len(), 3);
}

#[test]
fn a_plain_drive_that_asks_for_cleaning_warns_once_and_the_run_carries_on() {
    let rig = Rig::new(false);
    let targets: Vec<_> = ["a", "b", "c"].iter().map(|n| rig.target(n, 20_000)).collect();
    rig.prepare(&targets);
    rig.drive.set_cleaning_requested(true);
    let out = rig.w.run(&["archive", "--repeat"], 40);
    let warning = format!(
        "tapeop: warning: the drive {} asks for cleaning: carrying on with this run; load a cleaning cartridge into \
         it when the run ends (tapeop check reports it until then)\n",
        rig.drive.device_path().display()
    );
    assert_eq!(stderr(&out), warning);
    assert_eq!(stdout(&out).matches("Archiving: ").count(), 3);
    assert_eq!(rig.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 3);
}

#[test]
fn a_run_of_one_target_as_tape_batch_makes_cleans_before_its_target() {
    // One data cartridge (slot 1), CLN001L1 (slot 2); the drive asks
    // before the run: `archive` without --repeat (one target per run, as
    // tape_batch.bash loops it) cleans first, then writes its target.
    let r = LibRig::new(1, 0);
    r.targets(2);
    r.open_tapes(1..=1);
    r.lib.drive(0).set_cleaning_requested(true);
    let out = r.run(&["--drive", "A", "archive"], 0);
    assert_eq!(moves(&r), ["load 1 0", "unload 1 0", "load 2 0", "unload 2 0", "load 1 0"], "{out}");
    let cleaned = out.find("drive A cleaned with CLN001L1 (slot 2), ").unwrap();
    assert!(cleaned < out.find("Archiving: ").unwrap(), "cleaned before the target:\n{out}");
    assert_eq!(r.backups().len(), 1, "one target per run");
    // The next run finds the drive clean: no robot move but the mount.
    let out = r.run(&["--drive", "A", "archive"], 0);
    assert!(!out.contains("asks for cleaning"), "{out}");
    assert_eq!(r.backups().len(), 2);
}

#[test]
fn each_run_on_a_plain_drive_that_asks_for_cleaning_warns() {
    let rig = Rig::new(false);
    let targets: Vec<_> = ["a", "b"].iter().map(|n| rig.target(n, 20_000)).collect();
    rig.prepare(&targets);
    rig.drive.set_cleaning_requested(true);
    for _ in 0..2 {
        let out = rig.w.run(&["archive"], 0);
        assert!(stderr(&out).starts_with("tapeop: warning: the drive "), "{}", stderr(&out));
        assert_eq!(stdout(&out).matches("Archiving: ").count(), 1);
    }
    assert_eq!(rig.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 2);
}
