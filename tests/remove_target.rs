//! A mistyped or missing import path is no dead end (issue 11, defect 8):
//! a listed path that is a regular file is refused as "not a directory"
//! (locally and over ssh), and `remove_target` removes a target never
//! written to tape, with its files and assignment, while it refuses one
//! that has a tape file (on the virtual st drive), leaving tape and
//! catalogue unchanged.

mod support;

use support::vst_rig;

use std::fs;

use vst_rig::{Rig, assert_has, found};

/// Rows of the catalogue tables a removal touches.
fn rows(rig: &Rig) -> [i64; 4] {
    ["targets", "files", "backups", "tapeop_target_totals"].map(|t| rig.count(&format!("SELECT COUNT(*) FROM {t}")))
}

#[test]
fn a_mistyped_path_is_refused_clearly_and_remove_target_forgets_it_but_never_a_target_on_tape() {
    let rig = Rig::new(true);
    let a = rig.target("a", 3000);
    let typo = rig.w.data().join("typo");
    let plain = rig.w.data().join("notes.txt");
    fs::write(&plain, "a regular file\n").unwrap();
    let list = rig.w.list("list.txt", &[a.clone(), typo.clone(), plain.clone()]);
    let list = list.to_str().unwrap();

    // Over ssh, then locally: the regular file is "not a directory".
    for ssh in [true, false] {
        if !ssh {
            rig.conf_ssh("", "");
        }
        let args: &[&str] = if ssh { &["-y", "import", list] } else { &["-y", "import", list, "--retry"] };
        let out = rig.run(args, 1);
        assert_has(&out, &format!("{}: not a directory (an import list names directories)", plain.display()));
        assert!(!out.contains(&format!("{}: No such file or directory", plain.display())), "{out}");
        assert_has(&out, &format!("{}: No such file or directory", typo.display()));
        assert_has(&out, "2 of the targets could not be scanned");
    }
    rig.conf("");
    let (_, doc) = rig.check();
    assert_eq!(found(&doc, "never_scanned"), 2, "{doc}");

    rig.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    rig.run(&["-y", "assign"], 0);
    rig.run(&["archive"], 0);
    let image = rig.image("A.tap");

    // A target on tape is never removed.
    let before = rows(&rig);
    let out = rig.run(&["-y", "remove_target", a.to_str().unwrap()], 1);
    assert_has(
        &out,
        &format!("target {} has tape file 1 on tape \"T1\" (recorded): a target on tape is never removed", a.display()),
    );
    let out = rig.run(&["-y", "remove_target", rig.w.data().join("nosuch").to_str().unwrap()], 1);
    assert_has(&out, "no target");
    assert_eq!(rows(&rig), before);

    // The two bad paths go, and check no longer names them.
    for t in [&typo, &plain] {
        let out = rig.run(&["-y", "remove_target", t.to_str().unwrap()], 0);
        assert_has(&out, &format!("Removed target {} (0 files)", t.display()));
    }
    assert_eq!(rows(&rig), [before[0] - 2, before[1], before[2], before[3]]);
    let (code, doc) = rig.check();
    assert_eq!(found(&doc, "never_scanned"), 0, "{doc}");
    assert_eq!(code, 0, "{doc}");

    // An assigned target not yet written goes with its files and assignment.
    let b = rig.target("b", 2000);
    let more = rig.w.list("more.txt", std::slice::from_ref(&b));
    rig.run(&["-y", "import", more.to_str().unwrap()], 0);
    rig.run(&["-y", "assign"], 0);
    let with_b = rows(&rig);
    let out = rig.run(&["-y", "remove_target", b.to_str().unwrap()], 0);
    assert_has(&out, &format!("Removed target {} (2 files)", b.display()));
    assert_eq!(rows(&rig), [with_b[0] - 1, with_b[1] - 2, with_b[2] - 1, with_b[3] - 1]);
    assert_eq!(
        rig.count("SELECT COUNT(*) FROM files f LEFT JOIN targets t ON t.id = f.target_id WHERE t.id IS NULL"),
        0
    );
    rig.run(&["archive"], 40);
    rig.run(&["confirm", "--repeat"], 40);
    let (code, doc) = rig.check();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(rig.image("A.tap")[..image.len()], image[..], "the tape file of a changed");
}

#[test]
fn removing_a_parent_target_hands_its_child_targets_to_the_grandparent() {
    let rig = Rig::new(false);
    let outer = rig.target("outer", 1000);
    let mid = outer.join("mid");
    let inner = mid.join("inner");
    fs::create_dir_all(&inner).unwrap();
    fs::write(mid.join("m.txt"), "m\n").unwrap();
    fs::write(inner.join("i.txt"), "i\n").unwrap();
    let list = rig.w.list("list.txt", &[outer.clone(), mid.clone(), inner.clone()]);
    rig.run(&["-y", "import", list.to_str().unwrap()], 0);
    let parent_of = |t: &std::path::Path| {
        rig.count(&format!(
            "SELECT COALESCE((SELECT p.id FROM targets c JOIN targets p ON p.id = c.parent_id WHERE c.name = '{}'), 0)",
            t.display()
        ))
    };
    let outer_id = rig.count(&format!("SELECT id FROM targets WHERE name = '{}'", outer.display()));
    assert_ne!(parent_of(&inner), outer_id);
    let out = rig.run(&["-y", "remove_target", mid.to_str().unwrap()], 0);
    assert_has(&out, &format!("Removed target {} (1 files)", mid.display()));
    assert_has(&out, &format!("Its directory lies inside target {}", outer.display()));
    assert_eq!(parent_of(&inner), outer_id, "inner now hangs under outer");
    assert_eq!(rig.count("SELECT COUNT(*) FROM targets"), 2);
    assert_eq!(rig.count("SELECT COUNT(*) FROM files WHERE name = 'i.txt'"), 1, "inner keeps its files");
}
