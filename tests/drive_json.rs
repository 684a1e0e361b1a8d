//! `drive --json` carries every fact the text report shows (issue 15):
//! the drive's state and position, the online tape and whether the drive
//! is at its append point, the last proof, and the health; an ejected
//! drive says why it is not loaded.

mod support;

use serde_json::{Value, json};
use support::vst_rig::Rig;
use support::world::stdout;

/// `tapeop --json drive` (exit 0) as JSON, with no sysfs tree.
fn drive_json(rig: &Rig) -> Value {
    let out = rig.w.command(&["--json", "drive"]).env("TAPEOP_SYSFS", rig.path("none")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn drive_json_has_state_position_online_tape_and_last_proof() {
    let rig = Rig::new(false);
    rig.prepare(&[rig.target("a", 3000)]);
    rig.run(&["archive"], 0);
    let v = drive_json(&rig);
    assert_eq!(v["device"], rig.drive.device_path().display().to_string());
    assert_eq!(v["loaded"], true);
    assert_eq!(v["write_protected"], false);
    assert_eq!(v["file_number"], 2);
    assert_eq!(v["block_number"], 0);
    assert_eq!(v["block_size"], Value::Null, "variable block mode");
    assert_eq!(v["flags"], json!(["EOF"]));
    assert_eq!(v["cartridge"], Value::Null, "no changer");
    assert_eq!(v["online_tape"], json!({ "tape": "T1", "next_tape_file": 2, "drive_is": "at the append point" }));
    assert_eq!(v["last_proof"]["tape"], "T1");
    assert_eq!(v["last_proof"]["serial"], "S1");
    assert_eq!(v["last_proof"]["command"], "archive");
    assert_eq!(v["last_proof"]["head_still_there"], true);
    assert_eq!(v["health"]["drive"]["cleaning_requested"], false);
    // The text report says the same.
    let text = rig.run(&["drive"], 0);
    assert!(text.contains("Online tape:     \"T1\", next tape file 2: drive is at the append point"));
}

#[test]
fn drive_json_of_an_ejected_drive_says_why_it_is_not_loaded() {
    let rig = Rig::new(false);
    tapeop::drive::eject(&tapeop::drive::DriveSpec::Device(rig.drive.device_path())).unwrap();
    let v = drive_json(&rig);
    assert_eq!(v["loaded"], false);
    assert!(v["why_not_loaded"].as_str().unwrap().contains("no tape"), "{v}");
    assert_eq!(v["online_tape"], Value::Null);
    assert_eq!(v["file_number"], Value::Null);
}
