//! `check` asks the configured st drive what it says about itself: a
//! cleaning request (`drive_cleaning`), critical TapeAlert flags
//! (`tape_alert`, problems) and warning ones (`tape_alert_warning`,
//! notices), read with a stand-in `sg_logs` on PATH from a sysfs tree the
//! test fills (TAPEOP_SYSFS). A drive another program holds, one a job
//! holds, and a missing sg_logs are one notice each, never a failure.

mod support;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use support::vst_rig::Rig;
use support::world::{stderr, stdout};

/// sg_logs -p 0x2e output, laid out as sg_logs.c prints the tape alert page.
const PAGE: &str = "    IBM       ULT3580-TD8       Q3C5\nTape alert page (ssc-3) [0x2e]\n  Read warning: 0\n  Hard error: 1\n  Media: 0\n  Cleaning required: 1\n  Cleaning requested: 0\n  No removal: 1\n";

/// A vst rig with a catalogue (tape T1, no target), a sysfs tree naming
/// /dev/sg3 as st0's SCSI generic device, and `bin/sg_logs` printing PAGE.
fn rig() -> Rig {
    let rig = Rig::new(false);
    rig.run(&["-y", "open_tape", "T1", "--serial", "S1", "--offline"], 0);
    tools(&rig);
    rig
}

/// The sysfs tree and `bin/sg_logs` of [`rig`].
fn tools(rig: &Rig) {
    fs::create_dir_all(rig.path("sys/class/scsi_tape/st0/device/scsi_generic/sg3")).unwrap();
    fs::create_dir_all(rig.path("bin")).unwrap();
    fs::create_dir_all(rig.path("empty-bin")).unwrap();
    let script = rig.path("bin/sg_logs");
    let body = format!(
        "#!/bin/sh\n[ \"$1 $2 $3\" = \"-p 0x2e /dev/sg3\" ] || {{ echo \"bad args: $*\" >&2; exit 2; }}\ncat <<'EOF'\n{PAGE}EOF\n"
    );
    fs::write(&script, body).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `check` (with `args` before it) under the rig's sysfs tree and `bin`
/// PATH directory: exit code and stdout.
fn check(rig: &Rig, bin: &str, args: &[&str]) -> (i32, String) {
    let path = format!("{}:/usr/bin:/bin", rig.path(bin).display());
    let mut all = args.to_vec();
    all.push("check");
    let out = rig.w.command(&all).env("TAPEOP_SYSFS", rig.path("sys")).env("PATH", path).output().unwrap();
    assert_eq!(stderr(&out), "", "check wrote to stderr");
    (out.status.code().unwrap_or(-1), stdout(&out))
}

#[test]
fn critical_flags_and_a_cleaning_request_are_problems_warnings_are_notices() {
    let rig = rig();
    rig.drive.set_cleaning_requested(true);
    let dev = rig.drive.device_path().display().to_string();
    let (code, text) = check(&rig, "bin", &[]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        text,
        format!(
            "tapeop check: 2 problems — 1 drive asks for cleaning, 1 critical TapeAlert flag (also 1 TapeAlert warning)\n\
             drive_cleaning: drive default ({dev}) asks for cleaning: load a cleaning cartridge into it (it cleans \
             and ejects itself)\n\
             tape_alert: drive default ({dev}): TapeAlert 20 Clean now (critical): act now; see the drive's manual \
             for this flag (tapeop drive shows them all)\n\
             tape_alert_warning: drive default ({dev}): TapeAlert 3 Hard error (warning): act soon; see the drive's \
             manual\n"
        )
    );
    let (code, json) = check(&rig, "bin", &["--json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((doc["problems"].as_i64(), doc["notices"].as_i64()), (Some(2), Some(1)), "{doc}");
    let alert = &doc["conditions"]["tape_alert"];
    assert_eq!(alert["problem"], true);
    let item = &alert["items"][0];
    assert_eq!((item["drive"].as_str(), item["device"].as_str()), (Some("default"), Some(dev.as_str())));
    assert_eq!((item["code"].as_i64(), item["name"].as_str()), (Some(20), Some("Clean now")));
    assert_eq!(item["severity"], "Critical");
    assert_eq!(doc["conditions"]["tape_alert_warning"]["problem"], false);
    assert_eq!(doc["conditions"]["tape_alert_warning"]["items"][0]["code"], 3);
    assert_eq!(doc["conditions"]["drive_cleaning"]["items"][0]["drive"], "default");
    // The request cleared (a cleaning cartridge did its work), the page clean: all well.
    rig.drive.set_cleaning_requested(false);
    fs::write(rig.path("bin/sg_logs"), "#!/bin/sh\nprintf 'Tape alert page (ssc-3) [0x2e]\\n  Hard error: 0\\n'\n")
        .unwrap();
    assert_eq!(check(&rig, "bin", &[]), (0, "tapeop check: all well (1 tape, 0 targets)\n".to_string()));
}

#[test]
fn a_missing_sg_logs_is_one_notice() {
    let rig = rig();
    let (code, text) = check(&rig, "empty-bin", &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text,
        "tapeop check: all well (1 tape, 0 targets; 1 drive not fully read)\n\
         drive_not_read: sg_logs not found (install sg3-utils): the drives' TapeAlert flags were not read\n"
    );
}

#[test]
fn a_drive_another_program_holds_open_is_a_notice_and_check_does_not_wait() {
    let rig = rig();
    rig.drive.set_cleaning_requested(true);
    let dev = rig.drive.device_path();
    let held = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&dev).unwrap();
    let (code, text) = check(&rig, "bin", &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text,
        format!(
            "tapeop check: all well (1 tape, 0 targets; 1 drive not fully read)\n\
             drive_not_read: drive default ({}) could not be asked: another program has it open (busy)\n",
            dev.display()
        )
    );
    drop(held);
    assert_eq!(check(&rig, "bin", &[]).0, 1, "asked again once free");
}

#[test]
fn a_drive_a_job_holds_is_not_opened() {
    let rig = Rig::new(false);
    tools(&rig);
    let target = rig.target("t1", 1000);
    rig.prepare(&[target]);
    let gate = support::world::Gate::new(&rig.w);
    rig.conf_ssh(&gate.ssh_command(), "");
    let job = rig.w.command(&["archive"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let pid = job.id();
    gate.wait_started();
    let (code, text) = check(&rig, "bin", &[]);
    let dev = rig.drive.device_path();
    gate.release();
    let out = job.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(code, 0, "{text}");
    let line = format!("drive_not_read: drive default ({}) is in use by pid {} (archive) since ", dev.display(), pid);
    assert!(text.contains(&line), "{text}");
    assert!(text.ends_with(": not asked\n"), "{text}");
    assert!(!text.contains("TapeAlert"), "{text}");
}

#[test]
fn an_emulator_only_config_keeps_check_as_it_was() {
    let rig = rig();
    rig.w.config("", "emulator_dir = emu");
    let out = rig.w.command(&["--json", "check"]).env("TAPEOP_SYSFS", rig.path("sys")).output().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in ["drive_cleaning", "tape_alert", "tape_alert_warning", "drive_not_read"] {
        assert!(doc["conditions"].get(key).is_none(), "{key}: {doc}");
    }
    assert!(Path::new(&rig.path("emu")).is_dir());
}
