//! The drive's own rate on the two-drive path (`archive --drive A --drive
//! B` with `copy_pools`): each copy's history row gets the figures of its
//! own drive, so a slow drive stands out beside a fast one fed by the same
//! read. Each virtual drive keeps its st statistics as `st0` and `st1` of
//! one sysfs tree; tapeop finds them from the device names (links
//! `dev/nst0` and `dev/nst1` to the drives).

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use serde_json::Value;
use support::vst::{self, VirtualDrive, VstOptions};
use support::world::{World, stderr, stdout};

/// `tapeop ARGS` with `TAPEOP_SYSFS` at `sys/`; must exit `code`.
fn tapeop(w: &World, args: &[&str], code: i32) -> String {
    let out = w.command(args).env("TAPEOP_SYSFS", w.root().join("sys")).output().unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(code), "tapeop {args:?}:\n{text}");
    text
}

/// Mount drive `st{n}` holding `tapes/IMAGE`, linked as `dev/nst{n}`.
fn drive(w: &World, n: u32, image: &str, rate: Option<u64>) -> VirtualDrive {
    let opts =
        VstOptions { write_rate: rate, sysfs: Some(w.root().join("sys")), st_number: n, ..VstOptions::default() };
    let d = VirtualDrive::mount(&w.root().join("tapes").join(image), opts).expect("mounting");
    symlink(d.device_path(), w.root().join(format!("dev/nst{n}"))).unwrap();
    d
}

fn target(w: &World, name: &str, size: usize) -> std::path::PathBuf {
    let dir = w.data().join(name);
    fs::create_dir_all(&dir).unwrap();
    let body: Vec<u8> = (0..size).map(|i| (i * 13 + name.len()) as u8).collect();
    fs::write(dir.join("data.bin"), body).unwrap();
    dir
}

#[test]
fn each_copy_gets_its_own_drives_figures() {
    const SLOW: u64 = 4_000_000;
    let _serial = vst::serial();
    assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: these tests need FUSE");
    let w = World::new();
    for dir in ["tapes", "dev"] {
        fs::create_dir_all(w.root().join(dir)).unwrap();
    }
    let (_a, _b) = (drive(&w, 0, "P1.tap", Some(SLOW)), drive(&w, 1, "O1.tap", None));
    let dev = w.root().join("dev");
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\nssh_command =\ncopy_pools = primary offsite\n\
         [drive.A]\ndevice = {}\n[drive.B]\ndevice = {}\n",
        dev.join("nst0").display(),
        dev.join("nst1").display()
    );
    fs::write(w.root().join("tape.conf"), conf).unwrap();
    let list = w.list("list0.txt", &[target(&w, "t0", 1000)]);
    tapeop(&w, &["-y", "import", list.to_str().unwrap()], 0);
    tapeop(&w, &["open_tape", "P1", "--serial", "SP1", "--pool", "primary", "--online", "-y"], 0);
    tapeop(&w, &["open_tape", "O1", "--serial", "SO1", "--pool", "offsite", "--offline", "-y"], 0);
    tapeop(&w, &["-y", "assign", "P1"], 0);
    tapeop(&w, &["archive", "--drive", "A"], 0);
    tapeop(&w, &["activate_tape", "O1"], 0);
    tapeop(&w, &["-y", "assign", "O1"], 0);
    tapeop(&w, &["archive", "--drive", "B"], 0);
    let list = w.list("list1.txt", &[target(&w, "t1", 4_000_000)]);
    tapeop(&w, &["-y", "import", list.to_str().unwrap()], 0);
    tapeop(&w, &["archive", "--repeat", "--drive", "A", "--drive", "B"], 40);

    let doc: Value = serde_json::from_str(&tapeop(&w, &["--json", "log"], 0)).unwrap();
    let copy = |tape: &str| -> Value {
        let rows = doc["entries"].as_array().unwrap();
        rows.iter().rfind(|e| e["kind"] == "archive" && e["tape"] == tape).unwrap().clone()
    };
    let (p, o) = (copy("P1"), copy("O1"));
    assert!(p["target"].as_str().unwrap().ends_with("/t1") && o["target"] == p["target"], "{p}\n{o}");
    for c in [&p, &o] {
        assert_eq!(c["drive_bytes"], c["bytes"], "each drive moved its copy's bytes: {c}");
    }
    let (slow, fast) = (p["drive_mb_per_s"].as_f64().unwrap(), o["drive_mb_per_s"].as_f64().unwrap());
    assert!((3.0..=4.0).contains(&slow), "drive A at {SLOW} B/s: {p}");
    assert!(fast > 10.0 * slow, "drive B (instant) {fast} MB/s beside drive A {slow} MB/s");
}
