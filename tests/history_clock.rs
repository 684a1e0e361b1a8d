//! The history keeps its own clock in milliseconds (schema 4:
//! `started_ms`, `elapsed_ms`), so that a tape file moved in less than a
//! second still has a wall-clock rate in `log` and on the status page;
//! rows without it (older tapeop versions) keep the whole-second rate.

mod support;

use std::fs;

use serde_json::Value;
use support::world::World;

#[test]
fn a_sub_second_archive_has_a_wall_clock_rate_from_milliseconds() {
    let w = World::new();
    let dir = w.data().join("a");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f.bin"), vec![7u8; 300_000]).unwrap();
    let list = w.list("list.txt", &[dir]);
    w.archive_all(&list, "T1");
    let out = w.run(&["--json", "log"], 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = doc["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "archive").unwrap().clone();
    let ms = archive["elapsed_ms"].as_i64().unwrap_or_else(|| panic!("no elapsed_ms: {archive}"));
    assert!(ms >= 1, "{archive}");
    let bytes = archive["bytes"].as_f64().unwrap();
    let rate = archive["rate_mb_s"].as_f64().unwrap_or_else(|| panic!("no rate: {archive}"));
    assert!((rate - bytes / 1e6 / (ms as f64 / 1000.0)).abs() < 1e-9, "{archive}");
    // A row without the milliseconds (as older versions wrote) keeps the
    // whole-second rate, and none under a second.
    w.sql().execute("UPDATE tapeop_history SET elapsed_ms = NULL", []).unwrap();
    let out = w.run(&["--json", "log"], 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = doc["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "archive").unwrap().clone();
    assert_eq!(archive["elapsed_ms"], Value::Null);
    match archive["seconds"].as_i64() {
        Some(0) => assert_eq!(archive["rate_mb_s"], Value::Null, "{archive}"),
        Some(s) => assert_eq!(archive["rate_mb_s"].as_f64(), Some(bytes / 1e6 / s as f64), "{archive}"),
        None => panic!("no seconds: {archive}"),
    }
}
