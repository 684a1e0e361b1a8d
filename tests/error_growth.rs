//! `check`'s `tape_errors_growing`: a tape whose recovered read errors per
//! GB grew from one read of it to the next (a read: one `confirm` run on the
//! tape, or one `confirm --sample` of it), with the virtual st drive making
//! recovered errors as it reads (`set_recovered_errors_per_mb_read`) and
//! returning them in `mt_erreg` like st. Equal or falling errors are no
//! finding; `ack` of the latest read's id clears it.

mod support;

use serde_json::Value;
use support::vst::VstOptions;
use support::vst_rig::{Rig, assert_has, found};
use support::world::{stderr, stdout};

/// Errors per MB that make exactly `k` errors per 256 KiB record read.
fn per_record(k: f64) -> f64 {
    k * 1e6 / 262_144.0
}

/// A rig with st statistics under `sys/`, one target of 1 MiB (four
/// records) archived on T1 and confirmed once with no errors.
fn confirmed() -> Rig {
    let rig = Rig::with_options(false, |root| VstOptions { sysfs: Some(root.join("sys")), ..VstOptions::default() });
    let target = rig.target("a", 1 << 20);
    rig.prepare(&[target]);
    tapeop(&rig, &["archive"], 0);
    tapeop(&rig, &["confirm"], 0);
    rig
}

/// `tapeop ARGS` with `TAPEOP_SYSFS` at the rig's `sys/`; must exit `code`.
fn tapeop(rig: &Rig, args: &[&str], code: i32) -> String {
    let out = rig.w.command(args).env("TAPEOP_SYSFS", rig.path("sys")).output().unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(code), "tapeop {args:?}:\n{text}");
    text
}

/// Read tape file 1 again with `k` recovered errors per record.
fn confirm_with(rig: &Rig, k: f64) {
    rig.drive.set_recovered_errors_per_mb_read(per_record(k));
    tapeop(rig, &["confirm", "1", "--retry"], 0);
}

/// `check --json`'s `tape_errors_growing` items, and the exit code.
fn growing(rig: &Rig) -> (i32, Vec<Value>) {
    let (code, doc) = rig.check();
    let items = doc["conditions"]["tape_errors_growing"]["items"].as_array().unwrap().clone();
    assert_eq!(found(&doc, "tape_errors_growing") as usize, items.len());
    (code, items)
}

#[test]
fn errors_growing_from_one_confirm_to_the_next_are_a_problem_until_acked() {
    let rig = confirmed();
    confirm_with(&rig, 2.0);
    let (code, items) = growing(&rig);
    assert_eq!(code, 1);
    assert_eq!(items.len(), 1, "{items:?}");
    let g = &items[0];
    assert_eq!(g["tape"], "T1");
    assert_eq!(g["previous"]["errors"], 0);
    // Four data records of the tape file, two errors each (label not counted).
    let bytes = g["latest"]["bytes"].as_u64().unwrap();
    assert_eq!(g["latest"]["errors"].as_u64().unwrap(), 2 * bytes / 262_144, "{g}");
    assert_eq!(g["previous"]["bytes"], g["latest"]["bytes"], "the same tape file read twice");
    let id = g["history_id"].as_i64().unwrap();
    assert_eq!(id, rig.count("SELECT MAX(id) FROM tapeop_history WHERE kind = 'confirm'"));

    let text = tapeop(&rig, &["check"], 1);
    assert_has(&text, "1 tape with growing read errors");
    let line = text.lines().find(|l| l.starts_with("tape_errors_growing: ")).unwrap();
    assert_has(line, "tape T1: recovered read errors grew from 0.0/GB (0 in 0.00");
    assert_has(line, "tapeop confirm --sample --tape T1); ");
    assert_has(line, &format!("(history id {id}; tapeop ack {id} once dealt with)"));

    let log = tapeop(&rig, &["log"], 0);
    assert_has(&log, &format!("{} recovered errors)", 2 * bytes / 262_144));
    tapeop(&rig, &["ack", &id.to_string()], 0);
    let (code, items) = growing(&rig);
    assert_eq!((code, items.len()), (0, 0));
}

#[test]
fn equal_or_falling_errors_are_no_finding() {
    let rig = confirmed();
    confirm_with(&rig, 1.0);
    assert_eq!(growing(&rig).0, 1, "0 then 1 per record grew");
    confirm_with(&rig, 1.0);
    let (code, items) = growing(&rig);
    assert_eq!((code, items.len()), (0, 0), "equal: {items:?}");
    confirm_with(&rig, 0.0);
    let (code, items) = growing(&rig);
    assert_eq!((code, items.len()), (0, 0), "falling: {items:?}");
    assert_eq!(rig.count("SELECT COUNT(DISTINCT read_run) FROM tapeop_drive_io"), 4);
}

#[test]
fn a_sample_is_a_read_of_the_tape_too() {
    let rig = confirmed();
    rig.drive.set_recovered_errors_per_mb_read(per_record(3.0));
    tapeop(&rig, &["confirm", "--sample", "--tape", "T1"], 0);
    let (code, items) = growing(&rig);
    assert_eq!(code, 1);
    let verify = rig.count("SELECT id FROM tapeop_history WHERE kind = 'verify'");
    assert_eq!(items[0]["history_id"].as_i64(), Some(verify), "{items:?}");
    assert!(items[0]["latest"]["errors_per_gb"].as_f64().unwrap() > 0.0);
    // The sample's row carries the sum of its tape files' figures.
    let doc: Value = serde_json::from_str(&tapeop(&rig, &["--json", "log"], 0)).unwrap();
    let row = doc["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "verify").unwrap().clone();
    assert_eq!(row["drive_bytes"], row["bytes"], "{row}");
    assert!(row["drive_mb_per_s"].as_f64().unwrap() > 0.0, "{row}");
    rig.drive.set_recovered_errors_per_mb_read(0.0);
    tapeop(&rig, &["confirm", "--sample", "--tape", "T1"], 0);
    assert_eq!(growing(&rig), (0, vec![]));
}
