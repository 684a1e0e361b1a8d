//! Commands that change assignments or the online tape (`close_tape`,
//! `assign`, `activate_tape`, `open_tape`) take the catalogue lock that a
//! running `archive` holds: while it writes they are refused, naming the
//! holder, and change nothing.

mod support;

use support::world;

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;

use world::{Gate, World, stderr};

/// Every row that says what is assigned where and which tape is online.
fn snapshot(w: &World) -> Vec<String> {
    let conn = w.sql();
    let mut rows = Vec::new();
    for sql in [
        "SELECT 'tape', name, status, online FROM tapes ORDER BY id",
        "SELECT 'backup', target_id, tape_id, file_number || ' ' || status FROM backups ORDER BY id",
        "SELECT 'target', name, scanned, parent_id FROM targets ORDER BY id",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let got = stmt
            .query_map([], |r| {
                let cols: Vec<String> = (0..4)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                    .collect::<Result<_, _>>()?;
                Ok(cols.join("|"))
            })
            .unwrap();
        rows.extend(got.map(Result::unwrap));
    }
    rows
}

fn target(w: &World, name: &str) -> PathBuf {
    let t = w.data().join(name);
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("f"), name.repeat(3000)).unwrap();
    t
}

#[test]
fn assignment_commands_are_refused_while_an_archive_runs() {
    let w = World::new();
    let list = w.list("list.txt", &[target(&w, "a")]);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T2", "--serial", "S2", "-y"], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    let more = w.list("more.txt", &[target(&w, "b")]);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), more.as_os_str()], 0);

    let gate = Gate::new(&w);
    w.config(&gate.ssh_command(), "emulator_dir = emu");
    let archive = w.command(&["archive"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    gate.wait_started();
    let before = snapshot(&w);
    let holder = format!("tapeop: the catalogue tape.sqlite is in use by pid {} (archive) since ", archive.id());
    for args in [
        &["-y", "close_tape", "--force"][..],
        &["-y", "close_tape", "T1", "--force"],
        &["-y", "assign"],
        &["activate_tape", "T2"],
        &["open_tape", "T3", "--serial", "S3", "--online", "-y"],
    ] {
        let out = w.run(args, 1);
        let err = stderr(&out);
        assert!(
            err.starts_with(&holder) && err.ends_with("; wait for it to finish (lock file tape.sqlite.lock)\n"),
            "tapeop {args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(snapshot(&w), before, "tapeop {args:?} changed the catalogue");
    }
    // Reports still run meanwhile.
    w.run(&["status"], 0);
    gate.release();
    let out = archive.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let backups = w.backups();
    assert_eq!(backups[0].1, 1);
    assert_eq!(backups[0].2, "recorded", "{backups:?}");
    // Once it is done, they run.
    w.run(&["activate_tape", "T2"], 0);
}
