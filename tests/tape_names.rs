//! Tape names become parts of file names (`dump_manifest`'s
//! `TAPE-fileNNNNN.md5`), so `open_tape` and `scan_tape --record-as` accept
//! only `A-Z a-z 0-9 . _ -` (not starting with `.` or `-`, at most 64), and
//! a name someone else put in the catalogue is escaped, never followed out
//! of the manifest directory.

mod support;

use support::world;

use std::fs;
use std::path::Path;

use world::{World, stderr};

const ALLOWED: &str = "is not allowed: use 1 to 64 of the characters A-Z a-z 0-9 . _ - (not starting with '.' or '-')";

/// Every file below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(
                files_below(&p).into_iter().map(|f| format!("{}/{f}", p.file_name().unwrap().to_string_lossy())),
            );
        } else {
            out.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[test]
fn open_tape_refuses_names_that_are_not_plain_words_and_writes_nothing() {
    let w = World::new();
    let long = "T".repeat(65);
    for bad in ["../../escaped", "x/y", ".hidden", "a b", "caf\u{e9}", "..", long.as_str()] {
        let out = w.run(&["open_tape", bad, "--serial", "S", "--online", "-y"], 1);
        let err = stderr(&out);
        assert_eq!(err, format!("tapeop: tape name {bad:?} {ALLOWED}, e.g. T0001\n"), "{bad}");
        assert!(!w.root().join("tape.sqlite").exists(), "{bad}: a refused open_tape created the catalogue");
    }
    // A name starting with '-' is refused too (after `--`, clap passes it on).
    let err = stderr(&w.run(&["open_tape", "-y", "--", "-rf"], 1));
    assert!(err.contains(&format!("tape name \"-rf\" {ALLOWED}")), "{err}");
    for good in ["PUB-T1", "T0001", "LTO9_000123.b", &"T".repeat(64)] {
        w.run(&["open_tape", good, "--serial", &format!("SN{good}"), "--offline", "-y"], 0);
    }
    assert_eq!(w.count("SELECT COUNT(*) FROM tapes"), 4);
}

#[test]
fn scan_tape_record_as_refuses_a_bad_name_before_creating_a_catalogue() {
    let w = World::new();
    let err = stderr(&w.run(&["scan_tape", "--record-as", "../lost"], 1));
    assert_eq!(err, format!("tapeop: tape name \"../lost\" {ALLOWED}, e.g. T0001\n"));
    assert!(!w.root().join("tape.sqlite").exists());
}

#[test]
fn dump_manifest_escapes_a_bad_tape_name_already_in_the_catalogue() {
    let w = World::new();
    let t = w.data().join("t");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("f.dat"), b"hello\n").unwrap();
    let list = w.list("list.txt", std::slice::from_ref(&t));
    w.archive_all(&list, "T1");
    // Another program renamed the tape to something hostile.
    w.sql().execute("UPDATE tapes SET name = '../../escaped' WHERE name = 'T1'", []).unwrap();
    fs::create_dir_all(w.root().join("a/b")).unwrap();
    w.run(&["dump_manifest", "a/b/man"], 0);
    assert_eq!(files_below(&w.root().join("a/b/man")), ["%2E.%2F..%2Fescaped-file00001.md5", "INDEX.txt"]);
    assert_eq!(files_below(&w.root().join("a")), ["b/man/%2E.%2F..%2Fescaped-file00001.md5", "b/man/INDEX.txt"]);
    let top: Vec<String> = files_below(w.root()).into_iter().filter(|f| f.contains("escaped")).collect();
    assert_eq!(top, ["a/b/man/%2E.%2F..%2Fescaped-file00001.md5"], "nothing written outside the manifest directory");
    let manifest = fs::read_to_string(w.root().join("a/b/man/%2E.%2F..%2Fescaped-file00001.md5")).unwrap();
    assert!(manifest.ends_with("/t/f.dat\n") && manifest.starts_with("b1946ac92492d2347c6235b4d2611184  "));
    let index = fs::read_to_string(w.root().join("a/b/man/INDEX.txt")).unwrap();
    assert!(index.contains("../../escaped 1 confirmed %2E.%2F..%2Fescaped-file00001.md5 "), "{index}");
}
