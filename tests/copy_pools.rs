//! Pools and two copies of every target (`copy_pools = primary offsite`)
//! through the real binary with the emulated drive: tapes show their pool;
//! each target is assigned, archived and confirmed once per pool (one drive,
//! the tapes loaded in turn); `check` names a target short of a copy and
//! exits 1 until both copies are confirmed; `where_is`, `backup_info`,
//! `status` and `unassigned` show every copy and the per-pool counts; and
//! `restore` says when the copy it reads fails its md5 and names the copy
//! the files came from.

mod support;

use support::world;

use std::fs;
use std::path::{Path, PathBuf};

use world::{World, flip_byte, member_offset, stderr, stdout};

/// Two targets `a` and `b` with a file each, imported, under `copy_pools`.
fn two_pool_world() -> (World, Vec<PathBuf>) {
    let w = World::new();
    w.config_with("", "emulator_dir = emu", "copy_pools = primary offsite");
    let mut targets = Vec::new();
    for name in ["a", "b"] {
        let t = w.data().join(name);
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join(format!("{name}.dat")), format!("content of {name}\n").repeat(200)).unwrap();
        targets.push(t);
    }
    let list = w.list("list.txt", &targets);
    w.run(&[std::ffi::OsStr::new("-y"), "import".as_ref(), list.as_os_str()], 0);
    w.run(&["open_tape", "P1", "--serial", "SN-P1", "--pool", "primary", "--online", "-y"], 0);
    w.run(&["open_tape", "O1", "--serial", "SN-O1", "--pool", "offsite", "--offline", "-y"], 0);
    (w, targets)
}

/// Archive and confirm everything assigned to the online tape.
fn archive_and_confirm(w: &World) {
    w.run(&["archive", "--repeat"], 40);
    w.run(&["confirm", "--repeat"], 40);
}

/// Take the cartridge out of the emulated drive (its directory is kept
/// as `emu-NAME`) and load `load` (a blank one when it has none yet).
fn swap_tape(w: &World, out: &str, load: &str) {
    fs::rename(w.root().join("emu"), w.root().join(format!("emu-{out}"))).unwrap();
    let stored = w.root().join(format!("emu-{load}"));
    if stored.exists() {
        fs::rename(stored, w.root().join("emu")).unwrap();
    } else {
        fs::create_dir(w.root().join("emu")).unwrap();
    }
    w.run(&["activate_tape", load], 0);
}

/// Both tapes written and confirmed; O1 is the loaded, online tape.
fn both_copies() -> (World, Vec<PathBuf>) {
    let (w, targets) = two_pool_world();
    w.run(&["-y", "assign", "P1"], 0);
    archive_and_confirm(&w);
    w.run(&["-y", "assign", "O1"], 0);
    swap_tape(&w, "P1", "O1");
    archive_and_confirm(&w);
    (w, targets)
}

#[test]
fn tapes_show_a_pool_column_only_when_a_tape_is_pooled() {
    let w = World::new();
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    let plain = stdout(&w.run(&["tapes"], 0));
    assert!(!plain.contains("Pool"), "{plain}");
    w.run(&["open_tape", "T2", "--serial", "S2", "--pool", "offsite", "--offline", "-y"], 0);
    let text = stdout(&w.run(&["tapes"], 0));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("Name ") && l.ends_with(" Pool   ")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("T1 ") && l.trim_end().ends_with(" default")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("T2 ") && l.trim_end().ends_with(" offsite")), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&w.run(&["tapes", "--json"], 0).stdout).unwrap();
    let pools: Vec<&str> = json["tapes"].as_array().unwrap().iter().map(|t| t["pool"].as_str().unwrap()).collect();
    assert_eq!(pools, ["default", "offsite"]);
    let status = stdout(&w.run(&["status", "T2"], 0));
    assert!(status.contains("\n   pool: offsite\n"), "{status}");
}

#[test]
fn a_bad_pool_name_is_refused_and_nothing_is_created() {
    let w = World::new();
    let out = w.run(&["open_tape", "T1", "--pool", "../x", "--online", "-y"], 1);
    assert!(stderr(&out).contains("pool name \"../x\" is not allowed"), "{}", stderr(&out));
    assert!(!w.root().join("tape.sqlite").exists());
    w.config_with("", "emulator_dir = emu", "copy_pools = primary primary");
    let out = w.run(&["tapes"], 1);
    assert!(stderr(&out).contains("copy_pools names pool primary twice"), "{}", stderr(&out));
}

#[test]
fn each_pool_gets_its_own_copy_and_check_names_the_missing_one() {
    let (w, targets) = two_pool_world();
    let unassigned = stdout(&w.run(&["unassigned"], 0));
    assert!(unassigned.contains("   pool primary: 2 targets lack a copy"), "{unassigned}");
    assert!(unassigned.contains("   pool offsite: 2 targets lack a copy"), "{unassigned}");
    let json: serde_json::Value = serde_json::from_slice(&w.run(&["unassigned", "--json"], 0).stdout).unwrap();
    assert_eq!(json["count"], 2);
    assert_eq!(json["pools"]["primary"]["count"], 2);
    assert_eq!(json["pools"]["offsite"]["count"], 2);
    w.run(&["-y", "assign", "P1"], 0);
    // Assigning P1 again finds nothing: both have their primary copy.
    w.run(&["-y", "assign", "P1"], 40);
    archive_and_confirm(&w);
    let status = stdout(&w.run(&["status"], 0));
    assert!(status.contains("   pool primary: 0 targets lack a copy"), "{status}");
    assert!(status.contains("   pool offsite: 2 targets lack a copy"), "{status}");
    let json: serde_json::Value = serde_json::from_slice(&w.run(&["status", "--json"], 0).stdout).unwrap();
    assert_eq!((json["pool"].as_str(), json["unassigned"]["count"].as_i64()), (Some("primary"), Some(2)));
    assert_eq!(json["unassigned"]["pools"]["primary"]["count"], 0);
    assert_eq!(json["unassigned"]["pools"]["offsite"]["count"], 2);

    let out = w.run(&["check"], 1);
    let text = stdout(&out);
    // Their primary copies are confirmed: only offsite lacks one.
    for t in &targets {
        let line = format!(
            "missing_copies: {} has no confirmed copy in pool offsite: assign, archive and confirm it on a tape of each",
            t.display()
        );
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    assert!(text.lines().next().unwrap().contains("2 targets short of a confirmed copy"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&w.run(&["check", "--json"], 1).stdout).unwrap();
    let missing = &json["conditions"]["missing_copies"];
    assert_eq!(missing["count"], 2, "{json}");
    assert_eq!(missing["items"][0]["pools"], serde_json::json!(["offsite"]), "{json}");
    assert_eq!(missing["items"][0]["target"], targets[0].display().to_string(), "{json}");

    w.run(&["-y", "assign", "O1"], 0);
    // Assigned to O1, not yet written: check says what is left to do.
    let text = stdout(&w.run(&["check"], 1));
    let line = format!(
        "missing_copies: {} has no confirmed copy in pool offsite: its copy there is assigned or recorded; archive and confirm it",
        targets[0].display()
    );
    assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    swap_tape(&w, "P1", "O1");
    archive_and_confirm(&w);
    let rows = w.backups();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let a = targets[0].display().to_string();
    let b = targets[1].display().to_string();
    let confirmed = |t: &str, n: i64| (t.to_string(), n, "confirmed".to_string());
    // Each tape holds a at file 1 and b at file 2.
    assert_eq!(rows.iter().filter(|r| **r == confirmed(&a, 1)).count(), 2, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| **r == confirmed(&b, 2)).count(), 2, "{rows:?}");
    let out = w.run(&["check"], 0);
    assert!(stdout(&out).starts_with("tapeop check: all well"), "{}", stdout(&out));
    w.run(&["-y", "assign", "O1"], 40);
}

#[test]
fn a_tape_of_an_unlisted_pool_takes_nothing() {
    let (w, _) = two_pool_world();
    w.run(&["open_tape", "X1", "--pool", "spare", "--offline", "-y"], 0);
    let out = w.run(&["-y", "assign", "X1"], 1);
    assert!(
        stderr(&out)
            .contains("tape \"X1\" is in pool spare, which copy_pools in tape.conf does not list (primary offsite)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.count("SELECT COUNT(*) FROM backups"), 0);
}

#[test]
fn where_is_and_backup_info_list_both_copies() {
    let (w, targets) = both_copies();
    let text = stdout(&w.run(&["where_is", "a.dat"], 0));
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(text.starts_with("#tape_name pool  Fnum status"), "{text}");
    assert!(rows[0].starts_with("P1 primary     1 confirmed "), "{text}");
    assert!(rows[1].starts_with("O1 offsite     1 confirmed "), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&w.run(&["where_is", "a.dat", "--json"], 0).stdout).unwrap();
    let pools: Vec<&str> = json["hits"].as_array().unwrap().iter().map(|h| h["pool"].as_str().unwrap()).collect();
    assert_eq!(pools, ["primary", "offsite"]);
    let info = stdout(&w.run(&["backup_info", "1"], 0));
    let a = targets[0].display();
    assert!(info.contains(&format!("Target:        {a}")), "{info}");
    assert!(
        info.contains("Copies:        P1 (pool primary) file 1 confirmed; O1 (pool offsite) file 1 confirmed"),
        "{info}"
    );
    let json: serde_json::Value = serde_json::from_slice(&w.run(&["backup_info", "1", "--json"], 0).stdout).unwrap();
    assert_eq!(
        json["backups"][0]["copies"],
        serde_json::json!([
            { "tape": "P1", "pool": "primary", "file_number": 1, "status": "confirmed" },
            { "tape": "O1", "pool": "offsite", "file_number": 1, "status": "confirmed" },
        ])
    );
}

#[test]
fn restore_reads_the_loaded_copy_and_names_it() {
    let (w, targets) = both_copies();
    let out = w.run(&["restore", targets[0].to_str().unwrap(), "--to", "out"], 0);
    assert!(
        stdout(&out).contains("The files came from the copy on tape \"O1\" file 1 (pool offsite)."),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(w.root().join("out/a.dat")).unwrap(), fs::read(targets[0].join("a.dat")).unwrap());
}

/// Flip a byte of `a.dat` inside tape file 1 of the tape in `dir`.
fn corrupt_a(dir: &Path) {
    let file = dir.join("file00001.tar");
    let tar = fs::read(&file).unwrap();
    let (offset, _) = member_offset(&tar, b"a.dat").unwrap();
    flip_byte(&file, offset + 3);
}

#[test]
fn a_corrupt_copy_is_named_and_the_other_copy_restores_the_files() {
    let (w, targets) = both_copies();
    corrupt_a(&w.root().join("emu"));
    let target = targets[0].to_str().unwrap();
    let out = w.run(&["restore", target, "--to", "out"], 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "tapeop: the copy on tape \"O1\" file 1 (pool offsite) failed (1 md5 mismatches); trying the next copy"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "the other copy is on tape \"P1\" file 1 (pool primary): load tape \"P1\", run `tapeop activate_tape P1`"
        ),
        "{err}"
    );
    swap_tape(&w, "O1", "P1");
    let out = w.run(&["restore", target, "--to", "out2"], 0);
    assert!(
        stdout(&out).contains("The files came from the copy on tape \"P1\" file 1 (pool primary)."),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(w.root().join("out2/a.dat")).unwrap(), fs::read(targets[0].join("a.dat")).unwrap());
}

#[test]
fn without_copy_pools_a_second_tape_takes_nothing_as_before() {
    let w = World::new();
    let t = w.data().join("a");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("a.dat"), "x").unwrap();
    let list = w.list("list.txt", &[t]);
    w.archive_all(&list, "T1");
    w.run(&["open_tape", "T2", "--pool", "offsite", "--offline", "-y"], 0);
    w.run(&["-y", "assign", "T2"], 40);
    let out = w.run(&["check"], 0);
    assert!(!stdout(&out).contains("missing_copies"), "{}", stdout(&out));
    let json: serde_json::Value = serde_json::from_slice(&w.run(&["check", "--json"], 0).stdout).unwrap();
    assert!(json["conditions"].get("missing_copies").is_none(), "{json}");
    let tapes = stdout(&w.run(&["tapes"], 0));
    assert!(tapes.lines().any(|l| l.starts_with("T2 ") && l.trim_end().ends_with(" offsite")), "{tapes}");
}

#[test]
fn restore_with_no_copy_online_names_every_copy_and_writes_nothing() {
    let (w, targets) = both_copies();
    w.run(&["open_tape", "X1", "--online", "-y"], 0);
    let target = targets[0].to_str().unwrap();
    let out = w.run(&["restore", target, "--to", "out"], 1);
    let want = format!(
        "{target} has copies on tape \"P1\" file 1 (pool primary), tape \"O1\" file 1 (pool offsite), but the online \
         tape is \"X1\": load one of them and run `tapeop activate_tape NAME`"
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(!w.root().join("out").exists(), "nothing may be restored");
}

#[test]
fn a_requeued_copy_is_written_again_in_its_own_pool_only() {
    let (w, targets) = two_pool_world();
    w.run(&["-y", "assign", "P1"], 0);
    archive_and_confirm(&w);
    w.run(&["-y", "assign", "O1"], 0);
    swap_tape(&w, "P1", "O1");
    w.run(&["archive", "--repeat"], 40);
    w.run(&["-y", "requeue", "1", "--force"], 0);
    // Only the offsite copy of a is missing: O1 takes it, P1 takes nothing.
    w.run(&["-y", "assign", "P1"], 40);
    let out = w.run(&["-y", "assign", "O1"], 0);
    assert!(stdout(&out).contains("There are 1 unassigned targets."), "{}", stdout(&out));
    w.run(&["archive", "--repeat"], 40);
    w.run(&["confirm", "--repeat"], 40);
    let info = stdout(&w.run(&["backup_info", "1"], 0));
    assert!(info.contains("Status:        failed"), "{info}");
    assert!(
        info.contains("Requeued:      this copy failed confirm; its target is now tape O1 file 3, confirmed"),
        "{info}"
    );
    let a = targets[0].display().to_string();
    let mut copies: Vec<(String, i64, String)> = w.backups().into_iter().filter(|r| r.0 == a).collect();
    copies.sort();
    let row = |n: i64, s: &str| (a.clone(), n, s.to_string());
    assert_eq!(copies, [row(1, "confirmed"), row(1, "failed"), row(3, "confirmed")]);
    let out = w.run(&["check"], 0);
    assert!(stdout(&out).starts_with("tapeop check: all well"), "{}", stdout(&out));
}
