//! Verification on a schedule: `confirm --sample [--due]` on the emulator
//! drive, the `verify_due` and `verify_failed` findings of `check`, and the
//! `sample_files` / `verify_days` keys.

mod support;

use std::fs;

use support::world::{self, World, stderr, stdout};

/// A world with three targets archived and confirmed on tape T1.
fn archived() -> World {
    let w = World::new();
    let mut targets = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let dir = w.data().join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f.txt"), format!("contents of {name}\n").repeat(50)).unwrap();
        targets.push(dir);
    }
    let list = w.list("list.txt", &targets);
    w.archive_all(&list, "T1");
    w
}

/// Make every verification and confirm of the history look two years old.
fn age_history(w: &World) {
    w.sql().execute("UPDATE tapeop_history SET started = '2000-01-01 00:00:00 UTC'", []).unwrap();
}

#[test]
fn a_due_tape_is_reported_and_cleared_by_a_sample() {
    let w = archived();
    w.run(&["check"], 0);
    age_history(&w);
    let o = w.run(&["check"], 1);
    assert!(stdout(&o).contains("verify_due"), "{}", stdout(&o));
    assert!(stdout(&o).contains("tape T1: last verified 2000-01-01"), "{}", stdout(&o));
    assert!(stdout(&o).contains("tapeop confirm --sample --due"), "{}", stdout(&o));
    let o = w.run(&["--json", "check"], 1);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc.to_string().contains("\"verify_due\""), "{doc}");
    let o = w.run(&["confirm", "--sample", "--due"], 0);
    assert!(stdout(&o).contains("Tape \"T1\" verified"), "{}", stdout(&o));
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'verify' AND outcome = 'ok'"), 1);
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'confirmed'"), 4, "statuses unchanged");
    w.run(&["check"], 0);
    let o = w.run(&["confirm", "--sample", "--due"], 40);
    assert!(stdout(&o).contains("No tape is due for verification (verify_days = 365)."), "{}", stdout(&o));
}

#[test]
fn a_flipped_byte_in_a_sampled_file_is_found_and_kept_reported() {
    let w = archived();
    let first = w.tape_file(1);
    let bytes = fs::read(&first).unwrap();
    let (off, _) = world::member_offset(&bytes, b"f.txt").unwrap();
    world::flip_byte(&first, off + 10);
    let o = w.run(&["confirm", "--sample", "--seed", "7"], 1);
    let err = stderr(&o);
    assert!(err.contains("BAD: target") && err.contains("on tape \"T1\" file 1"), "{err}");
    assert!(err.contains("there is no other copy"), "{err}");
    assert!(err.contains("verification FAILED on tape(s) T1"), "{err}");
    assert!(stdout(&o).contains("Sample seed: 7"), "{}", stdout(&o));
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'confirmed'"), 4, "statuses unchanged");
    let o = w.run(&["check"], 1);
    assert!(stdout(&o).contains("verify_failed"), "{}", stdout(&o));
    let id = w.count("SELECT id FROM tapeop_history WHERE kind = 'verify'");
    w.run(&["ack", &id.to_string()], 0);
    w.run(&["check"], 0);
}

#[test]
fn bad_sample_files_and_verify_days_are_refused_in_one_line() {
    for (key, value) in [("sample_files", "0"), ("verify_days", "-3"), ("verify_days", "soon")] {
        let w = World::new();
        w.config_with("", "emulator_dir = emu", &format!("{key} = {value}"));
        let o = w.output(&["check"]);
        assert_ne!(o.status.code(), Some(0));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{key} = \"{value}\" must be a whole number of at least 1")), "{err}");
    }
}

#[test]
fn a_bad_file_is_reported_with_the_other_copy() {
    let w = World::new();
    w.config_with("", "emulator_dir = emu", "copy_pools = primary offsite");
    let t = w.data().join("a");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("a.dat"), "content of a\n".repeat(200)).unwrap();
    let list = w.list("list.txt", &[t]);
    w.run(&[std::ffi::OsStr::new("-y"), "import".as_ref(), list.as_os_str()], 0);
    w.run(&["open_tape", "P1", "--serial", "SN-P1", "--pool", "primary", "--online", "-y"], 0);
    w.run(&["open_tape", "O1", "--serial", "SN-O1", "--pool", "offsite", "--offline", "-y"], 0);
    w.run(&["-y", "assign", "P1"], 0);
    w.run(&["archive", "--repeat"], 40);
    w.run(&["confirm", "--repeat"], 40);
    fs::rename(w.root().join("emu"), w.root().join("emu-P1")).unwrap();
    fs::create_dir(w.root().join("emu")).unwrap();
    w.run(&["activate_tape", "O1"], 0);
    w.run(&["-y", "assign", "O1"], 0);
    w.run(&["archive", "--repeat"], 40);
    w.run(&["confirm", "--repeat"], 40);
    let file = w.tape_file(1);
    let bytes = fs::read(&file).unwrap();
    let (off, _) = world::member_offset(&bytes, b"a.dat").unwrap();
    world::flip_byte(&file, off + 3);
    let o = w.run(&["confirm", "--sample", "--tape", "O1"], 1);
    let err = stderr(&o);
    assert!(err.contains("on tape \"O1\" file 1"), "{err}");
    assert!(err.contains("the other copy is on tape \"P1\" file 1 (confirmed)"), "{err}");
    let o = w.run(&["--json", "check"], 1);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc.to_string().contains("\"verify_failed\""), "{doc}");
}

#[test]
fn one_drive_names_the_due_tapes_when_the_online_one_is_not_due() {
    let w = archived();
    age_history(&w);
    w.run(&["open_tape", "T2", "--serial", "SN-T2", "--online", "-y"], 0);
    let o = w.run(&["confirm", "--sample", "--due"], 1);
    let err = stderr(&o);
    assert!(err.contains("tape(s) T1 are due for verification and none is the online tape"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'verify'"), 0);
}

#[test]
fn a_library_loads_each_due_tape_samples_it_and_unloads_it() {
    use support::library_rig::{LibRig, barcode};
    let r = LibRig::new(2, 1);
    r.targets(8);
    r.open_tapes(1..=2);
    r.run(&["--drive", "A", "archive", "--repeat"], 40);
    r.run(&["--drive", "A", "confirm", "next", "--repeat"], 40);
    age_history(&r.w);
    let check = r.run(&["check"], 1);
    assert!(check.contains("tape T1: last verified") && check.contains("tape T2: last verified"), "{check}");
    let out = r.run(&["--drive", "A", "confirm", "--sample", "--due"], 0);
    assert!(out.contains("Tape \"T1\" verified") && out.contains("Tape \"T2\" verified"), "{out}");
    assert_eq!(r.lib.in_slot(1).as_deref(), Some(barcode(1).as_str()), "{:?}", r.lib.log());
    assert_eq!(r.lib.in_slot(2).as_deref(), Some(barcode(2).as_str()), "{:?}", r.lib.log());
    let check = r.run(&["check"], 1);
    assert!(!check.contains("verify_due") && check.contains("tape_full_open"), "{check}");
    // With a library, the advice for a full tape is the library's.
    assert!(check.contains("once its tape files are confirmed (the library's runs go on"), "{check}");
    assert!(!check.contains("then open_tape and assign a new one"), "{check}");
}

#[test]
fn a_bad_recorded_file_is_cleared_by_requeue() {
    let w = archived();
    w.sql().execute("UPDATE backups SET status = 'recorded' WHERE file_number = 1", []).unwrap();
    let first = w.tape_file(1);
    let bytes = fs::read(&first).unwrap();
    let (off, _) = world::member_offset(&bytes, b"f.txt").unwrap();
    world::flip_byte(&first, off + 10);
    let o = w.run(&["confirm", "--sample", "--tape", "T1"], 1);
    assert!(stderr(&o).contains("tapeop requeue 1 --tape T1 gives this tape file up"), "{}", stderr(&o));
    assert!(stdout(&w.run(&["check"], 1)).contains("verify_failed"));
    // The bad sample is reason enough: no --force needed.
    w.run(&["-y", "requeue", "1", "--tape", "T1"], 0);
    let check = stdout(&w.output(&["check"]));
    assert!(!check.contains("verify_failed"), "{check}");
}
