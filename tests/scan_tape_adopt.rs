//! `scan_tape --adopt` on the virtual st drive: a tape file that the
//! catalogue lost (an archive killed after its filemark, before it was
//! recorded; or a target the catalogue no longer has) is recorded into the
//! catalogue from the tape — target, files, md5 sums — so that it is known,
//! confirmed and restored again and the next archive appends after it.
//! Adoption is refused, changing nothing, when it is ambiguous: the target
//! assigned to another tape or already written, its catalogued files
//! different from the tape, two lost tape files of one target, or tape files
//! the catalogue knows that differ from the loaded tape.
//!
//! Needs FUSE (/dev/fuse, root), like tests/st_workflow.rs; fails, never
//! skips, without it. Each test holds `vst::serial()` for its whole body.

mod support;

use support::{vst, world};

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use vst::{VirtualDrive, VstOptions};
use world::{World, stderr, stdout};

/// A world with a virtual st drive (blank tape `A.tap`) configured as
/// `tape_device`. Fields drop in order: the drive is unmounted first.
struct Rig {
    drive: VirtualDrive,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    fn new() -> Rig {
        let serial = vst::serial();
        assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: this test needs FUSE");
        let w = World::new();
        let drive = VirtualDrive::mount(&w.root().join("A.tap"), VstOptions::default()).expect("mounting the drive");
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n",
            drive.device_path().display()
        );
        fs::write(w.root().join("tape.conf"), text).unwrap();
        Rig { drive, w, _serial: serial }
    }

    /// Targets a, b, c imported and assigned to T1; a archived at file 1;
    /// b's archive killed after its filemark at file 2, so the tape holds
    /// it and the catalogue does not. Returns the three targets.
    fn with_lost_file(&self) -> Vec<PathBuf> {
        let w = &self.w;
        let targets: Vec<PathBuf> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let dir = w.data().join(n);
                fs::create_dir_all(dir.join("sub")).unwrap();
                fs::write(dir.join("readme.txt"), format!("target {n}\n")).unwrap();
                fs::write(dir.join("sub/data.bin"), vec![i as u8 + 1; 3000 * (i + 1)]).unwrap();
                dir
            })
            .collect();
        let list = w.list("list.txt", &targets);
        w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
        w.run(&["-y", "assign"], 0);
        w.run(&["archive"], 0);
        let killed = w.command(&["archive"]).env("TAPEOP_FAULT", "archive-after-filemark").output().unwrap();
        assert_eq!(killed.status.code(), None, "killed: {}", stderr(&killed));
        assert_eq!(self.drive.files().unwrap().len(), 3, "label, a, b on tape");
        assert_eq!(self.backups(), ["a 1 recorded", "b -1 assigned", "c -1 assigned"]);
        targets
    }

    /// `target-basename file_number status` of every backup.
    fn backups(&self) -> Vec<String> {
        self.w
            .backups()
            .into_iter()
            .map(|(t, n, s)| format!("{} {n} {s}", Path::new(&t).file_name().unwrap().to_string_lossy()))
            .collect()
    }

    /// What adoption must not change when refused.
    fn catalogue(&self) -> String {
        let conn = self.w.sql();
        let mut out = String::new();
        for sql in [
            "SELECT id || ' ' || target_id || ' ' || tape_id || ' ' || COALESCE(file_number, '') || ' ' || status FROM backups ORDER BY id",
            "SELECT id || ' ' || name || ' ' || scanned FROM targets ORDER BY id",
            "SELECT id || ' ' || target_id || ' ' || name || ' ' || md5sum FROM files ORDER BY id",
            "SELECT COUNT(*) FROM tapeop_history WHERE kind = 'adopt'",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            for r in stmt
                .query_map([], |r| r.get::<_, String>(0).or_else(|_| r.get::<_, i64>(0).map(|n| n.to_string())))
                .unwrap()
            {
                out.push_str(&r.unwrap());
                out.push('\n');
            }
        }
        out
    }
}

#[test]
fn a_lost_tape_file_is_adopted_then_confirmed_restored_and_appended_after() {
    let rig = Rig::new();
    let targets = rig.with_lost_file();
    let w = &rig.w;
    let b = targets[1].display().to_string();

    let out = w.run(&["scan_tape"], 1);
    assert!(
        stdout(&out)
            .contains(&format!("file 2: not in the catalogue as written to tape \"T1\"; the tape file holds {b}\n"))
    );
    assert_eq!(
        stderr(&out),
        "tapeop: tape \"T1\": 1 tape files differ from the catalogue (files 2); the catalogue was not changed; \
         scan_tape --adopt records the 1 tape files it does not know\n"
    );

    let out = w.run(&["scan_tape", "--adopt"], 0);
    let o = stdout(&out);
    assert!(o.contains("file 1: "), "{o}");
    assert!(o.contains(&format!("file 2: adopted {b} (2 files) as recorded on tape \"T1\"\n")), "{o}");
    assert!(o.contains("Adopted 1 of the 1 tape files the catalogue did not know.\n"), "{o}");
    assert!(o.ends_with("Tape \"T1\": all 2 tape files match the catalogue (1 adopted).\n"), "{o}");
    assert_eq!(rig.backups(), ["a 1 recorded", "b 2 recorded", "c -1 assigned"]);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'adopt' AND outcome = 'ok' AND file_number = 2"),
        1
    );
    assert_eq!(w.count("SELECT COUNT(*) FROM targets"), 3, "the existing target was used");

    // Known again: compared clean, confirmed, restored; c goes after it.
    w.run(&["scan_tape"], 0);
    w.run(&["confirm", "--repeat"], 40);
    assert_eq!(rig.backups(), ["a 1 confirmed", "b 2 confirmed", "c -1 assigned"]);
    w.run(&["restore", &b, "--to", "back"], 0);
    assert_eq!(fs::read(w.root().join("back/sub/data.bin")).unwrap(), vec![2u8; 6000]);
    w.run(&["archive"], 0);
    assert_eq!(rig.backups(), ["a 1 confirmed", "b 2 confirmed", "c 3 recorded"]);
    assert_eq!(rig.drive.files().unwrap().len(), 4);
    // Nothing left to adopt: --adopt is a plain compare now.
    let out = w.run(&["scan_tape", "--adopt"], 0);
    assert!(stdout(&out).ends_with("Tape \"T1\": all 3 tape files match the catalogue.\n"), "{}", stdout(&out));
}

#[test]
fn a_target_the_catalogue_no_longer_has_is_adopted_from_the_tape() {
    let rig = Rig::new();
    let targets = rig.with_lost_file();
    let w = &rig.w;
    let md5_of = |name: &str| -> String {
        w.sql()
            .query_row(
                "SELECT md5sum FROM files f JOIN targets t ON t.id = f.target_id WHERE t.name LIKE '%/b' AND f.name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
    };
    let md5s = (md5_of("readme.txt"), md5_of("sub/data.bin"));
    let conn = w.sql();
    conn.execute("DELETE FROM backups WHERE target_id = (SELECT id FROM targets WHERE name LIKE '%/b')", []).unwrap();
    conn.execute("DELETE FROM files WHERE target_id = (SELECT id FROM targets WHERE name LIKE '%/b')", []).unwrap();
    conn.execute("DELETE FROM targets WHERE name LIKE '%/b'", []).unwrap();
    drop(conn);
    let out = w.run(&["scan_tape", "--adopt"], 0);
    assert!(stdout(&out).contains(&format!("file 2: adopted {} (2 files)", targets[1].display())), "{}", stdout(&out));
    assert_eq!((md5_of("readme.txt"), md5_of("sub/data.bin")), md5s, "the md5 sums come from the tape");
    assert_eq!(w.count("SELECT COUNT(*) FROM files f JOIN targets t ON t.id = f.target_id WHERE t.name LIKE '%/b'"), 2);
    assert_eq!(w.count("SELECT scanned FROM targets WHERE name LIKE '%/b'"), 1);
    w.run(&["confirm", "--repeat"], 40);
    assert_eq!(rig.backups(), ["a 1 confirmed", "b 2 confirmed", "c -1 assigned"]);
}

#[test]
fn adoption_is_refused_when_ambiguous_and_changes_nothing() {
    let rig = Rig::new();
    let targets = rig.with_lost_file();
    let w = &rig.w;
    let b = targets[1].display().to_string();
    let readme_b: String = w
        .sql()
        .query_row(
            "SELECT md5sum FROM files f JOIN targets t ON t.id = f.target_id WHERE t.name LIKE '%/b' AND f.name = 'readme.txt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let lost_only = "tape \"T1\": 1 tape files differ from the catalogue (files 2); the catalogue was not changed\n";
    let refuse = |sql: &str, want: &str, want_err: &str| {
        let conn = w.sql();
        let tx = conn.unchecked_transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.commit().unwrap();
        let before = rig.catalogue();
        let out = w.run(&["scan_tape", "--adopt"], 1);
        assert!(stdout(&out).contains(want), "want {want:?} in\n{}", stdout(&out));
        assert_eq!(stderr(&out), format!("tapeop: {want_err}"));
        assert_eq!(rig.catalogue(), before, "{sql}");
    };
    // b assigned to another tape.
    w.run(&["open_tape", "T2", "--serial", "S2", "--offline", "-y"], 0);
    refuse(
        "UPDATE backups SET tape_id = (SELECT id FROM tapes WHERE name = 'T2') WHERE status = 'assigned' AND target_id = (SELECT id FROM targets WHERE name LIKE '%/b')",
        &format!(
            "file 2: NOT adopted: target {b} is assigned to tape \"T2\", not to \"T1\": which tape the catalogue should know it on is ambiguous\n"
        ),
        lost_only,
    );
    // b already recorded on another tape.
    refuse(
        "UPDATE backups SET status = 'recorded', file_number = 5 WHERE target_id = (SELECT id FROM targets WHERE name LIKE '%/b')",
        &format!("file 2: NOT adopted: target {b} is already on tape \"T2\" (file 5, recorded): not recorded twice\n"),
        lost_only,
    );
    // b's catalogued files differ from the tape (rescanned after a change).
    refuse(
        "UPDATE backups SET status = 'assigned', file_number = -1, tape_id = (SELECT id FROM tapes WHERE name = 'T1') WHERE target_id = (SELECT id FROM targets WHERE name LIKE '%/b');
         UPDATE files SET md5sum = '00000000000000000000000000000000' WHERE name = 'readme.txt' AND target_id = (SELECT id FROM targets WHERE name LIKE '%/b')",
        &format!("file 2: NOT adopted: target {b} is in the catalogue with files that differ from the tape in 1 places (first: "),
        lost_only,
    );
    // A tape file the catalogue knows differs: the loaded tape may be another.
    refuse(
        &format!(
            "UPDATE files SET md5sum = '{readme_b}' WHERE name = 'readme.txt' AND target_id = (SELECT id FROM targets WHERE name LIKE '%/b');
             UPDATE files SET md5sum = '11111111111111111111111111111111' WHERE name = 'readme.txt' AND target_id = (SELECT id FROM targets WHERE name LIKE '%/a')"
        ),
        "Not adopting tape files 2: 1 tape files the catalogue knows differ from the loaded tape, so it may not be tape \"T1\".\n",
        "tape \"T1\": 2 tape files differ from the catalogue (files 1, 2); the catalogue was not changed\n",
    );
}

#[test]
fn two_lost_tape_files_of_one_target_are_not_adopted() {
    let rig = Rig::new();
    let targets = rig.with_lost_file();
    let w = &rig.w;
    // The tape holds b at file 2; write it once more as file 3 by hand.
    let mut files = rig.drive.files().unwrap();
    files.push(files[2].clone());
    drop(rig.drive);
    let image = w.root().join("A.tap");
    vst::write_tap_files(&image, &files).unwrap();
    let drive = VirtualDrive::mount(&image, VstOptions::default()).unwrap();
    let text = format!(
        "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n",
        drive.device_path().display()
    );
    fs::write(w.root().join("tape.conf"), text).unwrap();
    let out = w.run(&["scan_tape", "--adopt"], 1);
    let b = targets[1].display().to_string();
    for n in [2, 3] {
        let want = format!(
            "file {n}: NOT adopted: tape files 2, 3 all hold {b}; which one the catalogue should know is ambiguous\n"
        );
        assert!(stdout(&out).contains(&want), "{want:?} in\n{}", stdout(&out));
    }
    assert_eq!(
        w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"),
        1,
        "only a is recorded: {}",
        stdout(&out)
    );
    drop(drive);
}
