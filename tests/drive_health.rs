//! `drive` shows what the drive says about its health: the cleaning request
//! (GMT_CLN of the virtual drive), the st statistics of a sysfs tree the test
//! fills (TAPEOP_SYSFS), and the TapeAlert flags printed by a stand-in
//! `sg_logs` on PATH; a missing part is one line and the rest is shown.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::vst_rig::Rig;
use support::world::{stderr, stdout};

/// sg_logs -p 0x2e output, laid out as sg_logs.c prints the tape alert page.
const PAGE: &str = "    IBM       ULT3580-TD8       Q3C5\nTape alert page (ssc-3) [0x2e]\n  Read warning: 0\n  Write warning: 0\n  Hard error: 1\n  Media: 0\n  Cleaning required: 1\n  Cleaning requested: 0\n";

/// A sysfs tree under `root` for st0 with sg3 and these counters.
fn fill_sysfs(root: &Path) {
    let st = root.join("class/scsi_tape/st0");
    fs::create_dir_all(st.join("stats")).unwrap();
    fs::create_dir_all(st.join("device/scsi_generic/sg3")).unwrap();
    let counters = [
        ("read_byte_cnt", 1_000_000u64),
        ("write_byte_cnt", 3_000_000),
        ("read_cnt", 4),
        ("write_cnt", 12),
        ("other_cnt", 5),
        ("resid_cnt", 1),
        ("read_ns", 500_000_000),
        ("write_ns", 1_500_000_000),
        ("io_ns", 2_000_000_000),
        ("in_flight", 0),
    ];
    for (name, value) in counters {
        fs::write(st.join("stats").join(name), format!("{value}\n")).unwrap();
    }
}

/// A PATH directory with a stand-in `sg_logs` that prints `PAGE` for /dev/sg3.
fn fake_sg_logs(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let script = dir.join("sg_logs");
    let body = format!(
        "#!/bin/sh\n[ \"$1 $2 $3\" = \"-p 0x2e /dev/sg3\" ] || {{ echo \"bad args: $*\" >&2; exit 2; }}\ncat <<'EOF'\n{PAGE}EOF\n"
    );
    fs::write(&script, body).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `tapeop drive` with this sysfs root and PATH; must exit 0.
fn drive(rig: &Rig, sysfs: &Path, path: &Path) -> String {
    let out = rig.w.command(&["drive"]).env("TAPEOP_SYSFS", sysfs).env("PATH", path).output().unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    text
}

#[test]
fn drive_shows_cleaning_stats_and_tape_alerts() {
    let rig = Rig::new(false);
    rig.drive.set_cleaning_requested(true);
    fill_sysfs(&rig.path("sys"));
    fake_sg_logs(&rig.path("bin"));
    let path = format!("{}:/usr/bin:/bin", rig.path("bin").display());
    let text = drive(&rig, &rig.path("sys"), Path::new(&path));
    let lines: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("Cleaning:")).collect();
    assert_eq!(
        lines,
        vec![
            "Cleaning:        requested",
            "Errors:          0 recovered (MTIOCGET mt_erreg)",
            "Bytes read:      1000000 in 4 reads (0.500 s)",
            "Bytes written:   3000000 in 12 writes (1.500 s)",
            "I/O time:        2.000 s, 5 other commands, 0 in flight",
            "Drive rate:      2.0 MB/s (bytes over I/O time)",
            "Residuals:       1 (reads or writes that did not move all their bytes)",
            "TapeAlert:       3 Hard error (Warning)",
            "TapeAlert:       20 Clean now (Critical)",
        ],
        "{text}"
    );
    rig.drive.set_cleaning_requested(false);
    let text = drive(&rig, &rig.path("sys"), Path::new(&path));
    assert!(text.contains("\nCleaning:        not requested\n"), "{text}");
}

#[test]
fn missing_sysfs_and_sg_logs_are_one_line_each() {
    let rig = Rig::new(false);
    fs::create_dir_all(rig.path("empty-bin")).unwrap();
    let sys = rig.path("no-sys");
    let text = drive(&rig, &sys, &rig.path("empty-bin"));
    let lines: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("Cleaning:")).collect();
    let stats = sys.join("class/scsi_tape/st0/stats");
    let sg = sys.join("class/scsi_tape/st0/device/scsi_generic");
    assert_eq!(
        lines,
        vec![
            "Cleaning:        not requested".to_string(),
            "Errors:          0 recovered (MTIOCGET mt_erreg)".to_string(),
            format!("Drive stats:     unavailable ({} does not exist)", stats.display()),
            format!(
                "TapeAlert:       not read (no SCSI generic device: {} cannot be read: No such file or directory (os error 2))",
                sg.display()
            ),
        ],
        "{text}"
    );
    assert!(text.starts_with("Drive:"), "{text}");
    fill_sysfs(&sys);
    let text = drive(&rig, &sys, &rig.path("empty-bin"));
    assert!(text.ends_with("TapeAlert:       not read (sg_logs not found (install sg3-utils))\n"), "{text}");
}

#[test]
fn drive_json_carries_the_health() {
    let rig = Rig::new(false);
    rig.drive.set_cleaning_requested(true);
    fill_sysfs(&rig.path("sys"));
    fake_sg_logs(&rig.path("bin"));
    let path = format!("{}:/usr/bin:/bin", rig.path("bin").display());
    let out =
        rig.w.command(&["--json", "drive"]).env("TAPEOP_SYSFS", rig.path("sys")).env("PATH", &path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let h = &v["health"];
    assert_eq!(v["device"], rig.drive.device_path().display().to_string());
    assert_eq!(h["drive"], serde_json::json!({ "cleaning_requested": true, "recovered_errors": 0 }));
    assert_eq!(h["stats"]["st"], "st0");
    assert_eq!(h["stats"]["write_byte_cnt"], 3_000_000);
    assert_eq!(h["stats"]["mb_per_s"], 2.0);
    assert_eq!(
        h["tape_alerts"],
        serde_json::json!([
            { "code": 3, "name": "Hard error", "severity": "Warning" },
            { "code": 20, "name": "Clean now", "severity": "Critical" },
        ])
    );
    let out = rig.w.command(&["--json", "drive"]).env("TAPEOP_SYSFS", rig.path("none")).output().unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let missing = rig.path("none").join("class/scsi_tape/st0/stats");
    assert_eq!(v["health"]["stats"]["error"], format!("{} does not exist", missing.display()));
}
