//! `tape_batch.bash`: loops `tapeop archive` / `tapeop confirm next` until
//! tapeop exits non-zero, appending everything to backup.log, and exits with
//! tapeop's last code — run here against the real binary.

mod support;

use support::world;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use world::World;

fn batch(w: &World, mode: &str) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tape_batch.bash");
    Command::new("bash")
        .arg(script)
        .arg(mode)
        .current_dir(w.root())
        .env("TAPEOP", env!("CARGO_BIN_EXE_tapeop"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn batch_archives_and_confirms_until_nothing_is_left() {
    let w = World::new();
    let mut targets = Vec::new();
    for name in ["a", "b", "c"] {
        let t = w.data().join(name);
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("f"), name.repeat(1000)).unwrap();
        targets.push(t);
    }
    let list = w.list("list.txt", &targets);
    w.run(&[std::ffi::OsStr::new("-y"), std::ffi::OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);

    let out = batch(&w, "archive");
    assert_eq!(out.status.code(), Some(40), "{}", String::from_utf8_lossy(&out.stderr));
    let out = batch(&w, "confirm");
    assert_eq!(out.status.code(), Some(40));
    assert!(w.backups().iter().all(|(_, _, s)| s == "confirmed"), "{:?}", w.backups());
    let log = fs::read_to_string(w.root().join("backup.log")).unwrap();
    assert_eq!(log.matches("Marking record as archived.").count(), 3, "{log}");
    assert_eq!(log.matches("Marking record as confirmed.").count(), 3, "{log}");
    assert!(log.contains("exited with code 40; stopping."), "{log}");
}

#[test]
fn batch_stops_on_the_first_failure_with_its_code() {
    let w = World::new();
    let t = w.data().join("a");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("f"), b"x").unwrap();
    let list = w.list("list.txt", std::slice::from_ref(&t));
    w.run(&[std::ffi::OsStr::new("-y"), std::ffi::OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    fs::write(t.join("f"), b"changed").unwrap();
    let out = batch(&w, "archive");
    assert_eq!(out.status.code(), Some(42));
    fs::write(w.root().join("exit_file"), b"").unwrap();
    let out = batch(&w, "confirm");
    assert_eq!(out.status.code(), Some(41), "exit_file stops the loop");
    let out = batch(&w, "bogus");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}
