//! `scan_tape --record-as` on a tape where a parent target's tape file was
//! written before its child was a target, so it holds the child's files too
//! (as the old tool left a child imported after its parent was archived):
//! the rebuilt catalogue links the child under the parent and keeps the
//! parent's rows for the child's files, so both tape files compare and
//! confirm clean. And `scan_tape --adopt` of a child below a parent that is
//! not on tape yet drops the parent's rows there, since the parent's tar
//! will exclude the child, as import does (tests/data_path.rs
//! `child_imported_after_its_parent_was_scanned_takes_its_files`).

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::world::{self, World, stdout};

/// Rows of one query, cells joined with `|`.
fn rows(w: &World, sql: &str) -> Vec<String> {
    let conn = w.sql();
    let mut stmt = conn.prepare(sql).unwrap();
    let mapped = stmt.query_map([], |r| Ok(format!("{}|{}", r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap();
    mapped.map(Result::unwrap).collect()
}

/// Append to the emulated tape a tape file holding directory `dir` as the
/// archive writes one (GNU tar, member names without the leading `/`).
fn append_tar_of(w: &World, n: u64, dir: &Path) {
    let rel = dir.strip_prefix("/").unwrap();
    let out = Command::new("tar").arg("-cf").arg(w.tape_file(n)).arg("-C").arg("/").arg(rel).output().unwrap();
    assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_parent_written_before_its_child_keeps_the_childs_files_when_rebuilt() {
    let w = World::new();
    let (p, c) = (w.data().join("p"), w.data().join("p/c"));
    fs::create_dir_all(&c).unwrap();
    fs::write(p.join("pf"), b"parent\n").unwrap();
    fs::write(c.join("cf"), b"child\n").unwrap();
    w.archive_all(&w.list("list.txt", std::slice::from_ref(&p)), "T1");
    assert!(world::member_offset(&fs::read(w.tape_file(1)).unwrap(), b"p/c/cf").is_some());
    append_tar_of(&w, 2, &c);
    for f in ["tape.sqlite", "tape.sqlite-wal", "tape.sqlite-shm"] {
        let _ = fs::remove_file(w.root().join(f));
    }

    let out = w.run(&["scan_tape", "--record-as", "T1"], 0);
    assert!(stdout(&out).contains("Tape \"T1\": 2 tape files recorded, 0 not."), "{}", stdout(&out));
    let (pn, cn) = (p.display().to_string(), c.display().to_string());
    let links = rows(&w, "SELECT c.name, p.name FROM targets c JOIN targets p ON p.id = c.parent_id");
    assert_eq!(links, [format!("{cn}|{pn}")]);
    let files = rows(&w, "SELECT t.name, f.name FROM files f JOIN targets t ON t.id = f.target_id ORDER BY 1, 2");
    assert_eq!(files, [format!("{pn}|c/cf"), format!("{pn}|pf"), format!("{cn}|cf")], "the parent keeps c/cf");

    w.run(&["activate_tape", "T1"], 0);
    let out = w.run(&["scan_tape"], 0);
    assert!(stdout(&out).contains("Tape \"T1\": all 2 tape files match the catalogue."), "{}", stdout(&out));
    w.run(&["confirm", "--repeat"], 40);
    assert_eq!(w.backups(), [(pn, 1, "confirmed".to_string()), (cn, 2, "confirmed".to_string())]);
}

#[test]
fn a_child_adopted_below_a_parent_not_yet_on_tape_leaves_the_parent_to_exclude_it() {
    let w = World::new();
    let (x, p, c) = (w.data().join("x"), w.data().join("p"), w.data().join("p/c"));
    fs::create_dir_all(&c).unwrap();
    fs::create_dir_all(&x).unwrap();
    fs::write(x.join("xf"), b"x\n").unwrap();
    fs::write(p.join("pf"), b"parent\n").unwrap();
    fs::write(c.join("cf"), b"child\n").unwrap();
    w.archive_all(&w.list("x.txt", std::slice::from_ref(&x)), "T1");
    w.run(&[std::ffi::OsStr::new("-y"), "import".as_ref(), w.list("p.txt", std::slice::from_ref(&p)).as_os_str()], 0);
    let (pn, cn) = (p.display().to_string(), c.display().to_string());
    assert_eq!(
        rows(
            &w,
            "SELECT t.name, f.name FROM files f JOIN targets t ON t.id = f.target_id WHERE t.name LIKE '%/p' ORDER BY 2"
        ),
        [format!("{pn}|c/cf"), format!("{pn}|pf")]
    );
    append_tar_of(&w, 2, &c);

    let out = w.run(&["scan_tape", "--adopt"], 0);
    assert!(stdout(&out).contains(&format!("file 2: adopted {cn} (1 files)")), "{}", stdout(&out));
    let links = rows(&w, "SELECT c.name, p.name FROM targets c JOIN targets p ON p.id = c.parent_id");
    assert_eq!(links, [format!("{cn}|{pn}")]);
    let files = rows(
        &w,
        "SELECT t.name, f.name FROM files f JOIN targets t ON t.id = f.target_id WHERE t.name LIKE '%/p%' ORDER BY 1, 2",
    );
    assert_eq!(files, [format!("{pn}|pf"), format!("{cn}|cf")], "the parent's tar will exclude its new child");

    w.run(&["-y", "assign"], 0);
    w.run(&["archive", "--repeat"], 40);
    assert!(
        world::member_offset(&fs::read(w.tape_file(3)).unwrap(), b"p/c/cf").is_none(),
        "the parent's tar excludes c"
    );
    w.run(&["confirm", "--repeat"], 40);
    let backups = w.backups();
    assert_eq!(backups.iter().filter(|b| b.2 == "confirmed").count(), 3, "{backups:?}");
}
