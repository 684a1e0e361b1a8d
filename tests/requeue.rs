//! A tape file that fails confirm is no dead end (issue 11, defect 1), on
//! the virtual st drive: `confirm next` passes over it (it stays recorded,
//! failed, and reported), and `requeue N` gives its target back to the
//! unassigned pool (rescanning its source on request), so that `assign` and
//! `archive` put it on another tape. The failed tape file stays on tape,
//! byte for byte, with its catalogue row marked `failed`; `check`,
//! `backup_info` and `log` show it until the new copy is confirmed.

mod support;

use support::{datatree, vst_rig};

use std::fs;

use vst_rig::{Rig, assert_has, found};

/// `(tape, file_number, status)` of every backup of target `name` (`a`..).
fn backups_of(rig: &Rig, name: &str) -> Vec<(String, i64, String)> {
    let conn = rig.w.sql();
    let mut stmt = conn
        .prepare(
            "SELECT tp.name, b.file_number, b.status FROM backups b JOIN tapes tp ON tp.id = b.tape_id
             JOIN targets t ON t.id = b.target_id WHERE t.name LIKE '%/data/' || ?1 ORDER BY b.id",
        )
        .unwrap();
    stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

fn row(tape: &str, n: i64, status: &str) -> (String, i64, String) {
    (tape.to_string(), n, status.to_string())
}

#[test]
fn a_failed_confirm_is_passed_over_and_requeue_archives_the_target_again_elsewhere() {
    let rig = Rig::new(false);
    let targets = [rig.target("a", 3000), rig.target("b", 4000), rig.target("c", 5000)];
    rig.prepare(&targets);
    // The source of a changes after its scan; the archive does not check.
    fs::write(targets[0].join("sub/data.bin"), vec![b'Z'; 3000]).unwrap();
    rig.run(&["archive", "--repeat", "--check-in-flight", "off"], 40);
    assert_eq!(rig.files().len(), 4, "label + three tape files");

    // A recorded tape file that never failed confirm is not requeued.
    let out = rig.run(&["-y", "requeue", "2"], 1);
    assert_has(&out, "tape file 2 of \"T1\"");
    assert_has(&out, "has not failed confirm: run tapeop confirm 2 first");
    assert_has(&out, "nothing was requeued");
    assert_eq!(backups_of(&rig, "b"), vec![row("T1", 2, "recorded")]);

    // The first confirm finds a's difference and fails.
    let out = rig.run(&["confirm", "next"], 1);
    assert_has(&out, "md5 mismatch");
    assert_has(&out, "confirm of tape \"T1\" file 1");
    // The next one passes over file 1 and confirms file 2: no dead end.
    let out = rig.run(&["confirm", "next"], 0);
    assert_has(&out, "Passing over tape file 1");
    assert_has(&out, "tapeop requeue 1 archives its target again");
    assert_eq!(backups_of(&rig, "b"), vec![row("T1", 2, "confirmed")]);
    // --repeat confirms the rest and then has nothing left (file 1 stays failed).
    let out = rig.run(&["confirm", "--repeat"], 40);
    assert_has(&out, "Passing over tape file 1");
    assert_eq!(backups_of(&rig, "c"), vec![row("T1", 3, "confirmed")]);
    assert_eq!(backups_of(&rig, "a"), vec![row("T1", 1, "recorded")]);
    // confirm 1 still reads it explicitly (and fails again).
    rig.run(&["confirm", "1"], 1);
    let out = rig.run(&["status"], 0);
    assert_has(&out, "Tape file 1 (");
    assert_has(&out, "FAILED its last confirm");

    let (code, doc) = rig.check();
    assert_eq!(code, 1);
    assert_eq!(found(&doc, "failed_confirm"), 1, "{doc}");
    let detail = doc["conditions"]["failed_confirm"]["items"][0]["detail"].as_str().unwrap().to_string();
    assert_has(&detail, "tape T1 file 1");
    assert_has(&detail, "tapeop requeue 1");

    // Refusals: a confirmed tape file, a tape file that does not exist.
    let out = rig.run(&["-y", "requeue", "2"], 1);
    assert_has(&out, "is confirmed and no sample found it bad since: its copy is good, there is nothing to requeue");
    let out = rig.run(&["-y", "requeue", "9"], 1);
    assert_has(&out, "tape \"T1\" has no tape file 9 in the catalogue");
    rig.run(&["requeue", "x1"], 2);

    // requeue 1 --rescan: the target is unassigned again, with the source as it is now.
    let tape_a = rig.image("A.tap");
    let out = rig.run(&["-y", "requeue", "1", "--rescan"], 0);
    assert_has(&out, "Requeued");
    assert_eq!(backups_of(&rig, "a"), vec![row("T1", 1, "failed")]);
    assert_eq!(rig.image("A.tap"), tape_a, "requeue changed the tape");
    let z_md5 = datatree::md5_of(targets[0].join("sub/data.bin"));
    assert_eq!(
        rig.count(&format!("SELECT COUNT(*) FROM files WHERE name = 'sub/data.bin' AND md5sum = '{z_md5}'")),
        1,
        "the rescan took the changed source"
    );
    let out = rig.run(&["unassigned"], 0);
    assert_has(&out, "1");
    let out = rig.run(&["-y", "requeue", "1"], 1);
    assert_has(&out, "was already requeued");
    let out = rig.run(&["confirm", "1"], 1);
    assert_has(&out, "failed confirm and was requeued");

    // The failed copy is still shown: backup_info, log, status, check.
    let out = rig.run(&["backup_info", "1"], 0);
    assert_has(&out, "Status:        failed");
    assert_has(&out, "Requeued:      this copy failed confirm; its target waits to be assigned to a tape");
    assert_has(&out, "requeue ok");
    let out = rig.run(&["backup_info"], 0);
    assert_has(&out, "Status:        failed");
    let out = rig.run(&["log"], 0);
    assert_has(&out, "requeue");
    let out = rig.run(&["status"], 0);
    assert_has(&out, "1 -     1 : failed");
    let (_, doc) = rig.check();
    assert_eq!(found(&doc, "failed_confirm"), 0, "reported as requeued now: {doc}");
    assert_eq!(found(&doc, "requeued"), 1, "{doc}");
    let detail = doc["conditions"]["requeued"]["items"][0]["detail"].as_str().unwrap().to_string();
    assert_has(&detail, "tape T1 file 1");
    assert_has(&detail, "was requeued (it stays on tape, marked failed); its target waits for a tape");
    assert_eq!(found(&doc, "unassigned"), 1, "{doc}");
    assert_eq!(found(&doc, "multiple_backups"), 0, "{doc}");

    // scan_tape knows the failed tape file; dump_manifest lists it without a manifest.
    let out = rig.run(&["scan_tape"], 0);
    assert_has(&out, "failed confirm and was requeued; not compared");
    rig.run(&["dump_manifest", "manifests"], 0);
    let index = fs::read_to_string(rig.path("manifests/INDEX.txt")).unwrap();
    assert_has(&index, &format!("T1 1 failed - {}", targets[0].display()));
    assert!(!rig.path("manifests/T1-file00001.md5").exists());

    // Nothing recorded is left on T1: it closes without --force; T2 takes a.
    rig.run(&["-y", "close_tape"], 0);
    // Closing appended T1's catalogue file: nothing is written to T1 after it.
    let tape_a = rig.image("A.tap");
    rig.load("B.tap");
    rig.run(&["open_tape", "T2", "--serial", "S2", "--online", "-y"], 0);
    rig.run(&["-y", "assign"], 0);
    rig.run(&["archive", "--repeat"], 40);
    let (_, doc) = rig.check();
    let detail = doc["conditions"]["requeued"]["items"][0]["detail"].as_str().unwrap().to_string();
    assert_has(&detail, "its target is now on tape T2 recorded at file 1: archive and confirm it");
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(backups_of(&rig, "a"), vec![row("T1", 1, "failed"), row("T2", 1, "confirmed")]);
    let t2 = rig.files();
    assert_eq!(t2.len(), 2, "label + a on T2");
    assert_eq!(rig.image("A.tap"), tape_a, "T1 was written to after the requeue");

    // Once the new copy is confirmed, check is all well.
    let (code, doc) = rig.check();
    assert_eq!(code, 0, "{doc}");
    assert_eq!((found(&doc, "failed_confirm"), found(&doc, "requeued")), (0, 0), "{doc}");
    let out = rig.run(&["backup_info", "1"], 0);
    assert_has(&out, "Status:        confirmed");
}

#[test]
fn a_requeued_last_tape_file_is_never_written_over_when_its_target_goes_to_the_same_tape() {
    let rig = Rig::new(false);
    let targets = [rig.target("a", 3000), rig.target("b", 4000)];
    rig.prepare(&targets);
    fs::write(targets[1].join("sub/data.bin"), vec![b'Y'; 4000]).unwrap();
    rig.run(&["archive", "--repeat", "--check-in-flight", "off"], 40);

    // --repeat goes on past the failure, confirms the rest, then exits 1.
    let out = rig.run(&["confirm", "--repeat"], 1);
    assert_has(&out, "confirm of tape \"T1\" file(s) 2 FAILED");
    assert_eq!(backups_of(&rig, "a"), vec![row("T1", 1, "confirmed")]);
    assert_eq!(backups_of(&rig, "b"), vec![row("T1", 2, "recorded")]);
    let before = rig.files();

    rig.run(&["-y", "requeue", "2", "--rescan"], 0);
    rig.run(&["-y", "assign"], 0);
    assert_eq!(backups_of(&rig, "b"), vec![row("T1", 2, "failed"), row("T1", -1, "assigned")]);
    rig.run(&["archive"], 0);
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(backups_of(&rig, "b"), vec![row("T1", 2, "failed"), row("T1", 3, "confirmed")]);
    let after = rig.files();
    assert_eq!(after.len(), 4, "label, a, the failed b, the new b");
    assert_eq!(after[..3], before[..], "a tape file written before the requeue changed");
    let (code, doc) = rig.check();
    assert_eq!(code, 0, "{doc}");
    let out = rig.run(&["status"], 0);
    assert_has(&out, "2 -     2 : failed");
}

#[test]
fn requeue_force_gives_up_a_tape_file_that_was_never_confirmed() {
    let rig = Rig::new(false);
    let targets = [rig.target("a", 3000), rig.target("b", 4000)];
    rig.prepare(&targets);
    rig.run(&["archive", "--repeat"], 40);
    let image = rig.image("A.tap");
    let out = rig.run(&["-y", "requeue", "2", "--force"], 0);
    assert_has(&out, "stays on tape, marked failed");
    assert_eq!(backups_of(&rig, "b"), vec![row("T1", 2, "failed")]);
    assert_eq!(rig.image("A.tap"), image);
    let out = rig.run(&["log"], 0);
    assert_has(&out, "never failed confirm (--force); target back in the unassigned pool");
    let (code, doc) = rig.check();
    assert_eq!(code, 1);
    assert_eq!((found(&doc, "requeued"), found(&doc, "unassigned"), found(&doc, "failed_confirm")), (1, 1, 0), "{doc}");
}
