//! Tape capacity: `assign` gives a tape only what fits in its known
//! capacity, `archive` refuses to start a target estimated not to fit
//! (tape full, exit 43) unless told `--try-anyway`, and a capacity that is
//! not a size is a usage error.

mod support;

use support::world;

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;

use world::{World, stderr, stdout};

/// Three targets of about 400 KiB each, imported.
fn three_targets(w: &World) -> Vec<PathBuf> {
    let mut targets = Vec::new();
    for name in ["a", "b", "c"] {
        let t = w.data().join(name);
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("f"), vec![name.as_bytes()[0]; 400_000]).unwrap();
        targets.push(t);
    }
    let list = w.list("list.txt", &targets);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    targets
}

fn assigned(w: &World) -> i64 {
    w.count("SELECT COUNT(*) FROM backups WHERE status = 'assigned'")
}

#[test]
fn assign_gives_a_tape_only_what_fits() {
    let w = World::new();
    three_targets(&w);
    // Each target takes 768 KiB (two 256 KiB records and its filemark), the
    // label 512 KiB: 2500K holds two.
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y", "--capacity", "2500K"], 0);
    let out = w.run(&["-y", "assign"], 0);
    assert!(
        stdout(&out).contains("2 targets fit in the space left on tape \"T1\"; 1 do not and stay unassigned."),
        "{}",
        stdout(&out)
    );
    assert_eq!(assigned(&w), 2);
    assert!(stdout(&w.run(&["unassigned"], 0)).starts_with("There are 1 unassigned targets"));
    let out = w.run(&["-y", "assign"], 43);
    assert!(stderr(&out).contains("no unassigned target fits in the space left on tape \"T1\""), "{}", stderr(&out));
    w.run(&["archive", "--repeat"], 40);
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 2);
}

#[test]
fn the_config_default_capacity_applies_to_new_tapes() {
    let w = World::new();
    three_targets(&w);
    w.config_with("", "emulator_dir = emu", "tape_capacity = 1500K");
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    assert_eq!(assigned(&w), 1);
}

#[test]
fn archive_refuses_a_target_that_cannot_fit_unless_told_to_try() {
    let w = World::new();
    three_targets(&w);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    w.sql().execute("INSERT INTO tapeop_tape_info (tape_id, capacity_bytes) VALUES (1, 1500000)", []).unwrap();
    w.run(&["archive"], 0);
    let before = fs::read_dir(w.root().join("emu")).unwrap().count();
    let out = w.run(&["archive"], 43);
    let err = stderr(&out);
    assert!(
        err.contains("needs about") && err.contains("are left on tape \"T1\"") && err.contains("--try-anyway"),
        "{err}"
    );
    assert_eq!(fs::read_dir(w.root().join("emu")).unwrap().count(), before, "nothing written");
    assert_eq!(assigned(&w), 2);
    w.run(&["archive", "--try-anyway"], 0);
    assert_eq!(assigned(&w), 1);
}

#[test]
fn a_capacity_that_is_not_a_size_is_a_usage_error() {
    let w = World::new();
    let out = w.run(&["open_tape", "T1", "--capacity", "lots", "-y"], 2);
    assert!(stderr(&out).contains("--capacity \"lots\" is not a size"), "{}", stderr(&out));
    assert!(!w.root().join("tape.sqlite").exists());
}
