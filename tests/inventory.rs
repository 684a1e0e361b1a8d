//! `inventory [--json]` against a small fake mtx program (a script that
//! prints a canned `mtx status` and logs its argv) and a catalogue whose
//! tapes have barcodes as serials: the exact report, its JSON, mtx failing,
//! mtx missing, no [changer]; and `open_tape` refusing a cleaning
//! cartridge's barcode or a taken one.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use support::world::{World, stderr, stdout};

const STATUS: &str = "  Storage Changer /dev/sg5:2 Drives, 6 Slots ( 1 Import/Export )
Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = A00001L9                       
Data Transfer Element 1:Empty
      Storage Element 1:Empty
      Storage Element 2:Full :VolumeTag=A00002L9                       
      Storage Element 3:Full :VolumeTag=CLN001L1
      Storage Element 4:Full :VolumeTag=A00009L9
      Storage Element 5:Full 
      Storage Element 6 IMPORT/EXPORT:Full :VolumeTag=A00003L9
";

/// A world whose tape.conf names a changer run by the fake `mtx` script in
/// its root, and drives A (element 0) and B (element 1).
fn library(w: &World, command: &str) {
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\nssh_command =\n\n[changer]\ndevice = /dev/sg5\ncommand = {command}\n\n\
         [drive.A]\ndevice = /dev/nst0\nchanger_index = 0\n\n[drive.B]\ndevice = /dev/nst1\nchanger_index = 1\n"
    );
    fs::write(w.root().join("tape.conf"), conf).unwrap();
}

/// The fake mtx: logs its argv to mtx.log; prints status.txt for `status`;
/// with a file named `fail` present, prints its text on stderr and exits 1.
fn fake_mtx(w: &World, status: &str) -> String {
    let root = w.root().display().to_string();
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{root}/mtx.log'\n\
         if [ -f '{root}/fail' ]; then cat '{root}/fail' >&2; exit 1; fi\n\
         [ \"$3\" = status ] && cat '{root}/status.txt'\nexit 0\n"
    );
    let path = w.root().join("mtx");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(w.root().join("status.txt"), status).unwrap();
    path.display().to_string()
}

/// T1 (A00001L9) open and online, T2 (A00002L9) full, T3 (A00003L9) closed.
fn tapes(w: &World) {
    w.run(&["open_tape", "T1", "--serial", "A00001L9", "--online", "-y"], 0);
    w.run(&["open_tape", "T2", "--serial", "A00002L9", "--offline", "-y"], 0);
    w.run(&["open_tape", "T3", "--serial", "A00003L9", "--offline", "-y"], 0);
    w.run(&["close_tape", "T3", "-y"], 0);
    w.sql().execute("INSERT OR REPLACE INTO tapeop_tape_info (tape_id, full) VALUES (2, 1)", []).unwrap();
}

fn log(w: &World) -> String {
    fs::read_to_string(w.root().join("mtx.log")).unwrap_or_default()
}

#[test]
fn inventory_names_every_drive_and_slot_with_its_catalogue_tape() {
    let w = World::new();
    library(&w, &fake_mtx(&w, STATUS));
    tapes(&w);
    let out = w.run(&["inventory"], 0);
    assert_eq!(
        stdout(&out),
        "Changer /dev/sg5: 2 drives, 5 slots, 1 import/export\n\
         Drive A (element 0, /dev/nst0): A00001L9  tape T1 (open, online, from slot 1)\n\
         Drive B (element 1, /dev/nst1): empty\n\
         Slot 1:                         empty\n\
         Slot 2:                         A00002L9  tape T2 (full)\n\
         Slot 3:                         CLN001L1  cleaning cartridge\n\
         Slot 4:                         A00009L9  unknown (not in the catalogue)\n\
         Slot 5:                         no barcode\n\
         Slot 6 (import/export):         A00003L9  tape T3 (closed)\n"
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(log(&w), "-f /dev/sg5 status\n", "inventory only asks for the status");
}

#[test]
fn inventory_without_a_catalogue_calls_every_barcode_unknown() {
    let w = World::new();
    library(&w, &fake_mtx(&w, STATUS));
    let text = stdout(&w.run(&["inventory"], 0));
    assert!(
        text.contains("Drive A (element 0, /dev/nst0): A00001L9  unknown (not in the catalogue, from slot 1)\n"),
        "{text}"
    );
    assert!(!w.root().join("tape.sqlite").exists(), "no catalogue created");
}

#[test]
fn inventory_json() {
    let w = World::new();
    library(&w, &fake_mtx(&w, STATUS));
    tapes(&w);
    let out = w.run(&["inventory", "--json"], 0);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["changer"], "/dev/sg5");
    let a = &doc["drives"][0];
    assert_eq!(
        (&a["element"], &a["name"], &a["device"], &a["full"], &a["source_slot"], &a["barcode"], &a["holds"]),
        (&0.into(), &"A".into(), &"/dev/nst0".into(), &true.into(), &1.into(), &"A00001L9".into(), &"tape".into())
    );
    assert_eq!(
        (&a["tape"]["name"], &a["tape"]["status"], &a["tape"]["online"]),
        (&"T1".into(), &"open".into(), &true.into())
    );
    let b = &doc["drives"][1];
    assert_eq!(
        (&b["full"], &b["barcode"], &b["holds"], &b["tape"]),
        (&false.into(), &Value::Null, &"empty".into(), &Value::Null)
    );
    let holds: Vec<&str> = doc["slots"].as_array().unwrap().iter().map(|s| s["holds"].as_str().unwrap()).collect();
    assert_eq!(holds, ["empty", "tape", "cleaning", "unknown", "no_barcode", "tape"]);
    assert_eq!(doc["slots"][1]["tape"]["full"], true);
    assert_eq!(doc["slots"][5]["import_export"], true);
    assert_eq!(doc["slots"][5]["slot"], 6);
    assert_eq!(doc["slots"][5]["tape"]["status"], "closed");
}

#[test]
fn mtx_failing_is_reported_with_its_own_words() {
    let w = World::new();
    library(&w, &fake_mtx(&w, STATUS));
    fs::write(w.root().join("fail"), "cannot open SCSI device '/dev/sg5' - No such file or directory\n").unwrap();
    let out = w.run(&["inventory"], 1);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!(
            "tapeop: the changer /dev/sg5 could not report its status: mtx said: \"cannot open SCSI device '/dev/sg5' - \
             No such file or directory\" ({}/mtx -f /dev/sg5 status)\n",
            w.root().display()
        )
    );
}

#[test]
fn mtx_printing_garbage_names_the_line() {
    let w = World::new();
    library(&w, &fake_mtx(&w, "  Storage Changer /dev/sg5:1 Drives, 1 Slots ( 0 Import/Export )\nhello\n"));
    let out = w.run(&["inventory"], 1);
    assert_eq!(
        stderr(&out),
        "tapeop: the changer /dev/sg5 answered mtx status with text tapeop cannot read: mtx status line 2, \"hello\", \
         is not in mtx's format: it is neither a drive nor a slot\n"
    );
}

#[test]
fn mtx_missing_says_how_to_fix_it() {
    let w = World::new();
    library(&w, "no-such-mtx-program");
    let out = w.run(&["inventory"], 1);
    assert_eq!(
        stderr(&out),
        "tapeop: cannot run the changer command no-such-mtx-program: not found; install mtx or set command = under [changer]\n"
    );
}

#[test]
fn inventory_needs_a_changer() {
    let w = World::new();
    let out = w.run(&["inventory"], 1);
    assert_eq!(stderr(&out), "tapeop: no [changer] in tape.conf: inventory needs a tape library (see tape.conf.ex)\n");
    assert_eq!(stdout(&out), "");
}

#[test]
fn open_tape_refuses_a_cleaning_cartridge_and_a_taken_barcode() {
    let w = World::new();
    let out = w.run(&["open_tape", "T9", "--serial", "CLN001L1", "--online", "-y"], 1);
    assert_eq!(stderr(&out), "tapeop: CLN001L1 is a cleaning cartridge: it cannot hold data\n");
    assert!(!w.root().join("tape.sqlite").exists(), "nothing created");
    w.run(&["open_tape", "T1", "--serial", "A00001L9", "--online", "-y"], 0);
    let out = w.run(&["open_tape", "T2", "--serial", "A00001L9", "--online", "-y"], 1);
    assert_eq!(stderr(&out), "tapeop: serial number \"A00001L9\" already belongs to tape \"T1\"\n");
    assert_eq!(w.count("SELECT count(*) FROM tapes"), 1);
}

#[test]
fn a_drive_not_in_tape_conf_and_a_cartridge_from_an_unknown_slot() {
    let w = World::new();
    let status = "  Storage Changer /dev/sg5:3 Drives, 1 Slots ( 0 Import/Export )
Data Transfer Element 0:Full (Unknown Storage Element Loaded):VolumeTag = A00001L9
Data Transfer Element 1:Full (Storage Element 1 Loaded)
Data Transfer Element 2:Full (Storage Element 1 Loaded):VolumeTag = CLN001L1
      Storage Element 1:Empty
";
    library(&w, &fake_mtx(&w, status));
    tapes(&w);
    assert_eq!(
        stdout(&w.run(&["inventory"], 0)),
        "Changer /dev/sg5: 3 drives, 1 slots, 0 import/export\n\
         Drive A (element 0, /dev/nst0):        A00001L9  tape T1 (open, online, from an unknown slot)\n\
         Drive B (element 1, /dev/nst1):        no barcode (from slot 1)\n\
         Drive - (element 2, not in tape.conf): CLN001L1  cleaning cartridge (from slot 1)\n\
         Slot 1:                                empty\n"
    );
    let doc: Value = serde_json::from_str(&stdout(&w.run(&["--json", "inventory"], 0))).unwrap();
    let c = &doc["drives"][2];
    assert_eq!((&c["name"], &c["device"], &c["holds"]), (&Value::Null, &Value::Null, &"cleaning".into()));
    assert_eq!(doc["drives"][0]["source_slot"], Value::Null);
}

#[test]
fn an_incomplete_status_is_refused() {
    let w = World::new();
    library(
        &w,
        &fake_mtx(
            &w,
            "  Storage Changer /dev/sg5:2 Drives, 6 Slots ( 1 Import/Export )\nData Transfer Element 0:Empty\n",
        ),
    );
    let out = w.run(&["inventory"], 1);
    assert_eq!(
        stderr(&out),
        "tapeop: the changer /dev/sg5 answered mtx status with text tapeop cannot read: mtx status announced 2 drives, \
         6 slots (1 import/export) but listed 1, 0 (0): its output is incomplete\n"
    );
}
