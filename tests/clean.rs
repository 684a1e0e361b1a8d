//! `clean` on the simulated library: a drive that asks for cleaning is
//! reported by `check` until `clean` loads the cleaning cartridge (after
//! returning the data tape to its slot), waits for the drive to eject it,
//! returns it and records the cleaning in the history; and its refusals
//! (no changer, no cleaning cartridge, a busy drive, a used-up cartridge).

mod support;

use support::library_rig::LibRig;
use support::world::{Gate, World, stderr, stdout};

/// `--json check`: its exit code and document.
fn check(r: &LibRig) -> (i32, serde_json::Value) {
    let out = r.w.output(&["--json", "check"]);
    let code = out.status.code().unwrap_or(-1);
    (code, serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out))))
}

/// The robot's moves, as mtx-sim logged them (`load 3 0`, `unload 1 0`).
fn moves(r: &LibRig) -> Vec<String> {
    let log = r.lib.log();
    let moved = log.iter().filter(|l| l.starts_with("load ") || l.starts_with("unload "));
    moved.map(|l| l.trim_end_matches(" -> ok").to_string()).collect()
}

/// A library with one data cartridge (slot 1), CLN001L1 (slot 2), one
/// free slot, and a catalogue that knows tape T1 (and no target).
fn rig() -> LibRig {
    let r = LibRig::new(1, 1);
    r.open_tapes(1..=1);
    r
}

#[test]
fn check_reports_the_request_until_clean_cleans_the_drive() {
    let r = rig();
    r.run(&["--drive", "A", "load", "T1"], 0);
    r.lib.drive(0).set_cleaning_requested(true);
    let dev = r.lib.drive(0).device_path();
    let out = r.w.output(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("tapeop check: 1 problem — 1 drive asks for cleaning"), "{text}");
    let line = format!("drive_cleaning: drive A ({}) asks for cleaning: tapeop --drive A clean\n", dev.display());
    assert!(text.contains(&line), "{text}");
    let (code, doc) = check(&r);
    assert_eq!(code, 1);
    let c = &doc["conditions"]["drive_cleaning"];
    assert_eq!((c["problem"].as_bool(), c["count"].as_i64()), (Some(true), Some(1)), "{doc}");
    assert_eq!(c["items"][0]["drive"], "A");
    assert_eq!(c["items"][0]["device"], dev.display().to_string());
    assert_eq!(doc["conditions"]["tape_alert"]["count"], 0);

    let out = r.run(&["--drive", "A", "clean"], 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "Unloading cartridge A00001L9 from drive A (element 0) into slot 1...",
            "Loading cleaning cartridge CLN001L1 from slot 2 into drive A (element 0)...",
            "Unloading cartridge CLN001L1 from drive A (element 0) into slot 2...",
        ],
        "{out}"
    );
    assert!(lines[3].starts_with("drive A cleaned with CLN001L1 (slot 2), ") && lines[3].ends_with(" s"), "{out}");
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(moves(&r), ["load 1 0", "unload 1 0", "load 2 0", "unload 2 0"]);
    assert_eq!((r.lib.in_drive(0), r.slot_of("A00001L9"), r.slot_of("CLN001L1")), (None, 1, 2));

    let (code, doc) = check(&r);
    assert_eq!((code, doc["conditions"]["drive_cleaning"]["count"].as_i64()), (0, Some(0)), "{doc}");
    let log = r.run(&["log"], 0);
    let row = log.lines().find(|l| l.contains(" clean ")).unwrap_or_else(|| panic!("no clean row:\n{log}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(row.contains(" clean ") && row.contains(" CLN001L1 ") && row.contains(" drive A "), "{log}");
    assert_eq!(cells.iter().filter(|c| **c == "ok").count(), 1, "{row}");
    let kinds = r.w.sql().query_row(
        "SELECT kind || '|' || tape || '|' || target || '|' || outcome || '|' || (file_number IS NULL) FROM tapeop_history",
        [],
        |row| row.get::<_, String>(0),
    );
    assert_eq!(kinds.unwrap(), "clean|CLN001L1|drive A|ok|1");
}

#[test]
fn without_a_changer_clean_says_to_insert_a_cleaning_cartridge_by_hand() {
    let w = World::new();
    w.config("", "");
    let out = w.run(&["clean"], 1);
    assert_eq!(
        stderr(&out),
        "tapeop: no [changer] in tape.conf: tapeop cannot load a cleaning cartridge itself; insert one into the \
         drive /dev/nst0 by hand (it cleans and ejects itself)\n"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn without_a_cleaning_cartridge_in_a_slot_nothing_moves() {
    let r = rig();
    r.take_out(2);
    r.run(&["--drive", "A", "load", "T1"], 0);
    let out = r.run(&["--drive", "A", "clean"], 1);
    assert_eq!(
        out,
        "tapeop: no cleaning cartridge (barcode CLN...) in a slot of the library for drive A (element 0): put one \
         in a slot, run tapeop inventory, then run again\n"
    );
    assert_eq!(moves(&r), ["load 1 0"]);
    assert_eq!(r.lib.in_drive(0).as_deref(), Some("A00001L9"));
}

#[test]
fn clean_is_refused_while_a_job_holds_the_drive() {
    let r = LibRig::new(1, 1);
    r.targets(1);
    r.open_tapes(1..=1);
    let gate = Gate::new(&r.w);
    r.conf(&gate.ssh_command());
    let job = r.spawn(&["--drive", "A", "archive"], None);
    gate.wait_started();
    let dev = r.lib.drive(0).device_path();
    let out = r.run(&["--drive", "A", "clean"], 1);
    let expect =
        format!("tapeop: the drive {} is in use by pid {} (archive --drive A) since ", dev.display(), job.id());
    assert!(out.starts_with(&expect), "{out}");
    gate.release();
    let out = job.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(!moves(&r).iter().any(|m| m == "load 2 0"), "the cleaning cartridge never moved: {:?}", moves(&r));
}

#[test]
fn a_used_up_cleaning_cartridge_fails_and_goes_back_to_its_slot() {
    let r = rig();
    r.lib.drive(0).set_cleaning_requested(true);
    r.lib.drive(0).set_cleaning_used_up(true);
    let out = r.run(&["--drive", "A", "clean"], 1);
    assert!(out.ends_with(
        "tapeop: drive A still asks for cleaning after cleaning cartridge CLN001L1 (back in slot 2): the cartridge \
         is probably used up; put a new cleaning cartridge in a slot, run tapeop inventory, then tapeop --drive A clean\n"
    ), "{out}");
    assert!(!out.contains("cleaned with"), "{out}");
    assert_eq!(moves(&r), ["load 2 0", "unload 2 0"]);
    assert_eq!((r.lib.in_drive(0), r.slot_of("CLN001L1")), (None, 2));
    let row =
        r.w.sql().query_row("SELECT outcome || '|' || error FROM tapeop_history WHERE kind = 'clean'", [], |row| {
            row.get::<_, String>(0)
        });
    assert_eq!(row.unwrap(), "failed|the drive still asks for cleaning");
    assert_eq!(check(&r).1["conditions"]["drive_cleaning"]["count"], 1);
}
