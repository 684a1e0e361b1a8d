//! The drive's own rate per tape file: `archive` and `confirm` on the
//! virtual st drive, which keeps st's statistics in a sysfs tree the test
//! points `TAPEOP_SYSFS` at, record the drive's bytes and I/O time beside the
//! wall-clock rate, and `log` (text and `--json`) shows both. A drive slowed
//! by its own speed (`write_rate`) shows that speed; a drive starved by a
//! slow source shows a rate far above the wall-clock one. The emulator
//! records no drive figures, and a catalogue of schema version 3 (or the old
//! tool's) is still read without the new table.

mod support;

use std::fs;
use std::path::PathBuf;

use serde_json::Value;
use support::fixture::Fixture;
use support::vst::{self, VstOptions};
use support::vst_rig::{Rig, assert_has};
use support::world::{World, stderr, stdout};

/// A rig whose drive keeps st statistics under `sys/` (and moves `rate`
/// bytes a second, when given).
fn rig(rate: Option<u64>) -> Rig {
    Rig::with_options(false, |root| VstOptions {
        write_rate: rate,
        sysfs: Some(root.join("sys")),
        ..VstOptions::default()
    })
}

/// `tapeop ARGS` with `TAPEOP_SYSFS` at the rig's `sys/`; must exit `code`.
fn tapeop(rig: &Rig, args: &[&str], code: i32) -> String {
    let out = rig.w.command(args).env("TAPEOP_SYSFS", rig.path("sys")).output().unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(code), "tapeop {args:?}:\n{text}");
    text
}

/// The `log --json` entries of `kind`.
fn entries(rig: &Rig, kind: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&tapeop(rig, &["--json", "log"], 0)).unwrap();
    doc["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).cloned().collect()
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no number {key} in {v}"))
}

#[test]
fn a_drive_slowed_by_its_own_speed_shows_that_speed() {
    const RATE: u64 = 4_000_000;
    let rig = rig(Some(RATE));
    let target = rig.target("a", 6_000_000);
    rig.prepare(&[target]);
    let out = tapeop(&rig, &["archive"], 0);
    assert_has(&out, " -- the drive's own rate: ");
    let archive = &entries(&rig, "archive")[0];
    let drive = number(archive, "drive_mb_per_s");
    // Each record takes len / rate in the drive, plus a little handling.
    assert!((3.0..=4.0).contains(&drive), "drive rate {drive} MB/s for a {RATE} B/s drive: {archive}");
    assert_eq!(archive["drive_bytes"], archive["bytes"], "the drive moved exactly the tape file's bytes");
    assert_eq!(archive["drive_errors"], 0);
    let io_s = number(archive, "drive_io_ns") / 1e9;
    let least = number(archive, "bytes") / RATE as f64;
    assert!(io_s >= least, "{io_s} s of drive I/O for {least} s of data at {RATE} B/s");
    // The statistics the drive keeps are the ones tapeop read.
    let stats = vst::read_st_counters(&rig.path("sys"), 0).unwrap();
    let label = 256 * 1024; // the label, one block, written before
    assert_eq!(stats.write_byte_cnt as f64, number(archive, "bytes") + label as f64);
    assert_eq!(stats.io_ns, stats.read_ns + stats.write_ns);
    let log = tapeop(&rig, &["log"], 0);
    assert_has(&log, &format!("(drive {drive:.2})"));
}

#[test]
fn a_drive_starved_by_a_slow_source_shows_a_rate_far_above_the_wall_rate() {
    let rig = rig(Some(20_000_000));
    // The data host starts its tar two seconds late: the drive waits.
    let slow = rig.path("slow.sh");
    fs::write(&slow, "sleep 2\nexec sh -c \"$1\"\n").unwrap();
    rig.conf_ssh(&format!("sh {}", slow.display()), "");
    let target = rig.target("a", 4_000_000);
    rig.prepare(&[target]);
    tapeop(&rig, &["archive"], 0);
    let archive = &entries(&rig, "archive")[0];
    let (wall, drive) = (number(archive, "rate_mb_s"), number(archive, "drive_mb_per_s"));
    assert!(number(archive, "seconds") >= 2.0, "{archive}");
    assert!(drive > 5.0 * wall, "drive {drive} MB/s should be far above the wall-clock {wall} MB/s: {archive}");
    // confirm records the drive's figures of its read too.
    tapeop(&rig, &["confirm"], 0);
    let confirm = &entries(&rig, "confirm")[0];
    assert_eq!(confirm["drive_bytes"], archive["bytes"], "{confirm}");
    assert!(number(confirm, "drive_mb_per_s") > 0.0, "{confirm}");
    let text = tapeop(&rig, &["log"], 0);
    let line = text.lines().find(|l| l.contains(" confirm ")).unwrap();
    assert_has(line, "(drive ");
    // The status page plots the same two rates.
    let page = rig.path("page");
    fs::create_dir_all(&page).unwrap();
    tapeop(&rig, &["report", "--html", page.to_str().unwrap()], 0);
    let report: Value = serde_json::from_str(&fs::read_to_string(page.join("report.json")).unwrap()).unwrap();
    let plotted = report["rates"].as_array().unwrap();
    assert_eq!(plotted.len(), 2, "{plotted:?}");
    assert_eq!(plotted[0]["drive_mb_per_s"], archive["drive_mb_per_s"], "{plotted:?}");
    assert_eq!(plotted[1]["drive_mb_per_s"], confirm["drive_mb_per_s"], "{plotted:?}");
}

#[test]
fn without_statistics_the_st_drive_records_errors_only_and_nothing_breaks() {
    let rig = Rig::new(false);
    let target = rig.target("a", 100_000);
    rig.prepare(&[target]);
    // No sysfs tree where TAPEOP_SYSFS points.
    let out = tapeop(&rig, &["archive"], 0);
    assert_has(&out, " -- the drive's own rate: unknown (no st statistics) over its I/O time; 0 recovered errors");
    tapeop(&rig, &["confirm"], 0);
    for kind in ["archive", "confirm"] {
        let e = &entries(&rig, kind)[0];
        assert_eq!(
            (&e["drive_mb_per_s"], &e["drive_bytes"], &e["drive_errors"]),
            (&Value::Null, &Value::Null, &0.into())
        );
    }
    let (code, doc) = rig.check();
    assert_eq!(code, 0, "{doc}");
}

/// A world on the emulator with one target archived and confirmed.
fn emulator_world() -> World {
    let w = World::new();
    let dir: PathBuf = w.data().join("a");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f.txt"), "contents\n".repeat(1000)).unwrap();
    let list = w.list("list.txt", &[dir]);
    w.archive_all(&list, "T1");
    w
}

#[test]
fn emulator_runs_record_no_drive_figures() {
    let w = emulator_world();
    w.run(&["confirm", "--sample"], 0);
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_drive_io"), 0);
    let doc: Value = serde_json::from_slice(&w.run(&["--json", "log"], 0).stdout).unwrap();
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "label, archive, confirm and verify: {doc}");
    for e in entries {
        assert_eq!(e["drive_mb_per_s"], Value::Null, "{e}");
        assert_eq!(e["drive_errors"], Value::Null, "{e}");
    }
    let log = stdout(&w.run(&["log"], 0));
    assert!(!log.contains("drive"), "{log}");
    w.run(&["check"], 0);
}

#[test]
fn a_version_3_catalogue_is_read_without_the_new_table_and_upgraded_by_a_write() {
    let w = emulator_world();
    w.sql().execute_batch("DROP TABLE tapeop_drive_io; PRAGMA user_version = 3;").unwrap();
    let doc: Value = serde_json::from_slice(&w.run(&["--json", "log"], 0).stdout).unwrap();
    assert_eq!(doc["entries"].as_array().unwrap().len(), 3, "label, archive and confirm: {doc}");
    assert_eq!(doc["entries"][0]["drive_mb_per_s"], Value::Null);
    w.run(&["check"], 0);
    w.run(&["--json", "check"], 0);
    let version = |w: &World| w.count("PRAGMA user_version");
    assert_eq!(version(&w), 3, "read-only commands left the schema alone");
    assert_eq!(w.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tapeop_drive_io'"), 0);
    w.run(&["confirm", "--sample"], 0);
    assert_eq!(version(&w), 4);
    assert_eq!(w.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tapeop_drive_io'"), 1);
}

#[test]
fn the_old_tools_catalogue_is_read_without_the_new_table() {
    let fx = Fixture::new();
    let out = fx.run(&["--json", "log"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = fx.run(&["--json", "check"]);
    assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["conditions"]["tape_errors_growing"]["count"], 0, "{doc}");
    assert_eq!(fx.user_version(), 0);
}
