//! `scan_tape` through the real binary: a catalogue rebuilt from the tape
//! alone matches the one the workflow built (targets, parents, files, md5
//! sums, sizes, symlink targets, file numbers); compare mode passes on an
//! intact tape, names the tape file and member whose byte was flipped, and
//! never changes the catalogue; the old tool's tapes compare clean and can be
//! recorded into a new catalogue with the old tool's md5 sums.

mod support;

use support::{datatree, fixture, vst, world};

use std::fs;
use std::path::PathBuf;

use rusqlite::Connection;
use world::{World, flip_byte, member_offset, stderr, stdout};

/// Shows a TEXT or BLOB cell as escaped bytes.
fn cell(r: &rusqlite::Row<'_>, i: usize) -> String {
    match r.get_ref(i).unwrap() {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b.escape_ascii().to_string(),
        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
        rusqlite::types::ValueRef::Null => "NULL".into(),
        rusqlite::types::ValueRef::Real(x) => x.to_string(),
    }
}

fn lines(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    let rows = stmt.query_map([], |r| Ok((0..n).map(|i| cell(r, i)).collect::<Vec<_>>().join(" | "))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// What a catalogue knows that does not depend on the data host's file
/// system: targets with their parents, every file with its md5, exact size
/// and symlink target, and which tape file holds which target.
fn dump(conn: &Connection) -> Vec<String> {
    let mut out = lines(
        conn,
        "SELECT 'target', CAST(t.name AS BLOB), t.scanned, CAST(p.name AS BLOB) FROM targets t
         LEFT JOIN targets p ON p.id = t.parent_id ORDER BY CAST(t.name AS BLOB)",
    );
    out.extend(lines(
        conn,
        "SELECT 'file', CAST(t.name AS BLOB), CAST(f.name AS BLOB), f.md5sum, i.size_bytes, i.link_target FROM files f
         JOIN targets t ON t.id = f.target_id LEFT JOIN tapeop_file_info i ON i.file_id = f.id
         ORDER BY CAST(t.name AS BLOB), CAST(f.name AS BLOB)",
    ));
    out.extend(lines(
        conn,
        "SELECT 'backup', CAST(t.name AS BLOB), tp.name, b.file_number FROM backups b JOIN targets t ON t.id = b.target_id
         JOIN tapes tp ON tp.id = b.tape_id ORDER BY b.file_number",
    ));
    out
}

/// Delete the world's catalogue and make an empty one with a tape OTHER.
fn fresh_catalogue(w: &World) {
    for f in ["tape.sqlite", "tape.sqlite-wal", "tape.sqlite-shm"] {
        let _ = fs::remove_file(w.root().join(f));
    }
    w.run(&["open_tape", "OTHER", "--serial", "SN-OTHER", "--offline", "-y"], 0);
    assert_eq!(w.count("SELECT COUNT(*) FROM targets"), 0);
}

#[test]
fn rebuilt_catalogue_matches_the_original_exactly() {
    let w = World::new();
    let targets = datatree::make_awkward_tree(&w.data());
    w.archive_all(&w.list("list.txt", &targets), "T1");
    let before = dump(&w.sql());
    assert_eq!(before.iter().filter(|l| l.starts_with("file |")).count(), 30, "{before:#?}");
    fresh_catalogue(&w);

    let out = w.run(&["scan_tape", "--record-as", "T1"], 0);
    let o = stdout(&out);
    assert!(o.contains("Tape file 0 is tapeop's label: tape \"T1\", serial \"SN-T1\""), "{o}");
    assert!(o.contains("Tape \"T1\": 5 tape files recorded, 0 not."), "{o}");
    assert!(stderr(&out).contains("skipped fifo (special file, tar type 6), as import does"), "{}", stderr(&out));
    assert_eq!(dump(&w.sql()), before);
    let tape = lines(&w.sql(), "SELECT name, serial, status, online FROM tapes WHERE name = 'T1'");
    assert_eq!(tape, vec!["T1 | SN-T1 | closed | 0"]);
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 5);

    w.run(&["activate_tape", "T1"], 0);
    let out = w.run(&["scan_tape"], 0);
    assert!(stdout(&out).contains("Tape \"T1\": all 5 tape files match the catalogue."), "{}", stdout(&out));
    w.run(&[std::ffi::OsStr::new("restore"), targets[3].as_os_str(), "--to".as_ref(), "back".as_ref()], 0);
    assert_eq!(fs::read(w.root().join("back/parent file")).unwrap(), b"parent\n");

    let out = w.run(&["scan_tape", "--record-as", "T1"], 1);
    assert!(stderr(&out).contains("a tape named \"T1\" is already in the catalogue"), "{}", stderr(&out));
    let out = w.run(&["scan_tape", "--record-as", "T9"], 1);
    assert!(
        stderr(&out).contains("the loaded tape's label says it is tape \"T1\": record it under that name"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.count("SELECT COUNT(*) FROM tapes WHERE name = 'T9'"), 0);
}

/// Two small targets `t1` (sub/f00..f19.dat) and `t2` archived on tape T1.
fn small_world() -> (World, PathBuf, PathBuf) {
    let w = World::new();
    let (t1, t2) = (w.data().join("t1"), w.data().join("t2"));
    fs::create_dir_all(t1.join("sub")).unwrap();
    fs::create_dir_all(t2.join("empty")).unwrap();
    for i in 0..20 {
        fs::write(t1.join(format!("sub/f{i:02}.dat")), datatree::pseudo_random(4000 + i)).unwrap();
    }
    fs::write(t2.join("only.txt"), b"only\n").unwrap();
    w.archive_all(&w.list("list.txt", &[t1.clone(), t2.clone()]), "T1");
    (w, t1, t2)
}

#[test]
fn a_target_already_on_another_tape_is_skipped_and_fails_the_scan() {
    let (w, t1, t2) = small_world();
    fresh_catalogue(&w);
    let conn = w.sql();
    conn.execute("INSERT INTO targets (name, scanned) VALUES (?1, 1)", [t2.to_str().unwrap()]).unwrap();
    conn.execute(
        "INSERT INTO backups (target_id, tape_id, file_number, status) SELECT t.id, p.id, 7, 'recorded' FROM targets t, tapes p WHERE p.name = 'OTHER'",
        [],
    )
    .unwrap();
    drop(conn);
    let out = w.run(&["scan_tape", "--record-as", "T1"], 1);
    let o = stdout(&out);
    assert!(o.contains(&format!("file 1: recorded {} (20 files)", t1.display())), "{o}");
    let refused = format!(
        "file 2: NOT recorded: target {} already has a backup on tape \"OTHER\" (file 7, recorded); not recorded twice",
        t2.display()
    );
    assert!(o.contains(&refused), "{o}");
    assert!(stderr(&out).contains("tape \"T1\": tape files 2 were not recorded"), "{}", stderr(&out));
    assert_eq!(w.count("SELECT COUNT(*) FROM backups b JOIN tapes t ON t.id = b.tape_id WHERE t.name = 'T1'"), 1);
    assert_eq!(w.count("SELECT COUNT(*) FROM files"), 20, "nothing of the skipped tape file was stored");
}

#[test]
fn compare_mode_passes_then_names_the_corrupted_file_and_changes_nothing() {
    let (w, t1, t2) = small_world();
    let db = w.root().join("tape.sqlite");
    let snapshot = || (fixture::legacy_snapshot(&db), dump(&w.sql()), w.count("SELECT COUNT(*) FROM tapeop_history"));
    let before = snapshot();
    let out = w.run(&["scan_tape"], 0);
    let o = stdout(&out);
    assert!(o.contains(&format!("file 1: {}: OK (20 files match)", t1.display())), "{o}");
    assert!(o.contains(&format!("file 2: {}: OK (1 files match)", t2.display())), "{o}");
    assert!(o.contains("Tape \"T1\": all 2 tape files match the catalogue."), "{o}");

    let file = w.tape_file(1);
    let (offset, _) = member_offset(&fs::read(&file).unwrap(), b"sub/f07.dat").expect("member on tape");
    flip_byte(&file, offset + 10);
    let out = w.run(&["scan_tape"], 1);
    let o = stdout(&out);
    assert!(o.contains(&format!("file 1: {}: 1 differences\n  md5 mismatch (catalogue ", t1.display())), "{o}");
    assert!(o.contains("): sub/f07.dat\n"), "{o}");
    assert!(o.contains(&format!("file 2: {}: OK", t2.display())), "{o}");
    assert!(
        stderr(&out)
            .contains("tape \"T1\": 1 tape files differ from the catalogue (files 1); the catalogue was not changed"),
        "{}",
        stderr(&out)
    );

    fs::remove_file(w.tape_file(2)).unwrap();
    let out = w.run(&["scan_tape"], 1);
    let o = stdout(&out);
    assert!(
        o.contains(&format!("file 2: {}: in the catalogue (confirmed), but the tape ends after file 1", t2.display())),
        "{o}"
    );
    assert!(stderr(&out).contains("(files 1, 2)"), "{}", stderr(&out));
    assert_eq!(snapshot(), before, "compare mode never changes the catalogue");
}

#[test]
fn old_tools_tapes_compare_clean_and_record_with_the_old_md5s() {
    let fx = fixture::Fixture::new();
    let md5 = fx.db_md5();
    let run = fx.run(&["scan_tape"]);
    run.expect_code(0)
        .expect_stdout("The tape has no tapeop label")
        .expect_stdout("Tape \"PUB-T2\": all 7 tape files match the catalogue.");
    assert_eq!(run.stdout.matches(": OK (").count(), 7, "{}", run.stdout);
    assert!(
        run.stdout.contains("file 5: /mnt/act6/actpol/data/season4/small/t00: OK (250 files match)"),
        "{}",
        run.stdout
    );
    assert_eq!(fx.db_md5(), md5, "the legacy catalogue is not touched");

    fs::write(fx.path("new.conf"), "[default]\ndatabase_file = new.sqlite\nssh_command =\nemulator_dir = emu/PUB-T2\n")
        .unwrap();
    assert!(!fx.path("new.sqlite").exists(), "scan_tape --record-as creates a lost catalogue");
    let run = fx.run(&["-c", "new.conf", "scan_tape", "--record-as", "PUB-T2"]);
    run.expect_code(0).expect_stdout("Tape \"PUB-T2\": 7 tape files recorded, 0 not.");
    let old = Connection::open(fx.db()).unwrap();
    let old_rows = lines(
        &old,
        "SELECT t.name, f.name, f.md5sum FROM files f JOIN targets t ON t.id = f.target_id JOIN backups b ON b.target_id = t.id
         JOIN tapes p ON p.id = b.tape_id WHERE p.name = 'PUB-T2' AND b.status IN ('recorded', 'confirmed') ORDER BY 1, 2",
    );
    let new = Connection::open(fx.path("new.sqlite")).unwrap();
    let mut new_rows =
        lines(&new, "SELECT t.name, f.name, f.md5sum FROM files f JOIN targets t ON t.id = f.target_id ORDER BY 1, 2");
    let empty_dir = "/mnt/act6/actpol/data/season4/edge/e_emptydir | empty_sub | directory".to_string();
    assert!(new_rows.contains(&empty_dir), "tapeop records empty directories as import does");
    new_rows.retain(|r| *r != empty_dir);
    assert_eq!(new_rows.len(), 2 + 1 + 2 + 2 + 2 + 250 + 250);
    assert_eq!(new_rows, old_rows);
    let nested = lines(&new, "SELECT c.name, p.name FROM targets c JOIN targets p ON p.id = c.parent_id");
    assert_eq!(
        nested,
        vec!["/mnt/act6/actpol/data/season4/edge/e_nested/child | /mnt/act6/actpol/data/season4/edge/e_nested"]
    );

    fs::copy(fx.path("tape.conf.PUB-T1"), fx.path("tape.conf")).unwrap();
    fx.run(&["activate_tape", "PUB-T1"]).expect_code(0);
    fx.run(&["scan_tape"]).expect_code(0).expect_stdout("Tape \"PUB-T1\": all 3 tape files match the catalogue.");
}

#[test]
fn an_old_tape_in_a_st_drive_compares_clean_and_records() {
    let fx = fixture::Fixture::new();
    let _serial = vst::serial();
    assert!(std::path::Path::new("/dev/fuse").exists(), "/dev/fuse is missing: this test needs FUSE");
    let files: Vec<Vec<Vec<u8>>> = (0..7)
        .map(|n| {
            fs::read(fx.path(format!("emu/PUB-T2/file{n:05}.tar"))).unwrap().chunks(10240).map(<[u8]>::to_vec).collect()
        })
        .collect();
    let image = fx.path("PUB-T2.tap");
    vst::write_tap_files(&image, &files).unwrap();
    let drive = vst::VirtualDrive::mount(&image, vst::VstOptions::default()).expect("mounting the virtual drive");
    let dev = drive.device_path();
    for (conf, db) in [("st.conf", "tape.sqlite"), ("new.conf", "new.sqlite")] {
        let text = format!("[default]\ndatabase_file = {db}\ntape_device = {}\nssh_command =\n", dev.display());
        fs::write(fx.path(conf), text).unwrap();
    }
    let md5 = fx.db_md5();
    fx.run(&["-c", "st.conf", "scan_tape"])
        .expect_code(0)
        .expect_stdout("holds 7 tape files")
        .expect_stdout("Tape \"PUB-T2\": all 7 tape files match the catalogue.");
    assert_eq!(fx.db_md5(), md5);
    fx.run(&["-c", "new.conf", "scan_tape", "--record-as", "PUB-T2"])
        .expect_code(0)
        .expect_stdout("file 6: recorded /mnt/act6/actpol/data/season4/small/t01 (250 files)")
        .expect_stdout("Tape \"PUB-T2\": 7 tape files recorded, 0 not.");
    let new = Connection::open(fx.path("new.sqlite")).unwrap();
    assert_eq!(lines(&new, "SELECT COUNT(*) FROM files"), vec![(2 + 2 + 2 + 2 + 2 + 250 + 250).to_string()]);
}
