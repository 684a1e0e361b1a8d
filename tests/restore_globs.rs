//! `restore`'s FILE_OR_GLOB arguments through the real binary, as README
//! describes them: `**` as a whole component, `?` matching one byte of a
//! name that is not UTF-8, literal braces, `**` elsewhere being `*`, and a
//! glob that cannot be parsed refused with one line, nothing written.

mod support;

use support::{datatree, world};

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use world::{World, stderr};

/// A target `data/t` (a.txt, `b{1,2}.txt`, `bad\xffname`, sub/f0.dat,
/// sub/x/f1.dat, sub/x/y/f22.dat) archived on tape T1.
fn glob_world() -> (World, PathBuf) {
    let w = World::new();
    let t = w.data().join("t");
    fs::create_dir_all(t.join("sub/x/y")).unwrap();
    for (name, body) in [
        (b"a.txt".as_slice(), b"a\n".as_slice()),
        (b"b{1,2}.txt", b"braces\n"),
        (b"bad\xffname", b"bytes\n"),
        (b"sub/f0.dat", b"f0\n"),
        (b"sub/x/f1.dat", b"f1\n"),
        (b"sub/x/y/f22.dat", b"f22\n"),
    ] {
        fs::write(t.join(OsStr::from_bytes(name)), body).unwrap();
    }
    w.archive_all(&w.list("list.txt", std::slice::from_ref(&t)), "T1");
    (w, t)
}

fn restore_args(target: &Path, names: &[&[u8]], to: &str) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["restore".into(), target.as_os_str().to_owned()];
    a.extend(names.iter().map(|n| OsStr::from_bytes(n).to_owned()));
    a.extend(["--to".into(), to.into()]);
    a
}

/// The relative names of the files below `dir` (raw bytes).
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let all = datatree::manifest(dir).into_keys().filter(|p| dir.join(p).is_file());
    let mut names: Vec<Vec<u8>> = all.map(|p| p.as_os_str().as_bytes().to_vec()).collect();
    names.sort();
    names
}

#[test]
fn double_star_components_single_bytes_and_literal_braces_select_exactly() {
    let (w, t) = glob_world();
    w.run(&restore_args(&t, &[b"sub/**/f?.dat", b"b{1,2}*", b"bad?name"], "out"), 0);
    let want: Vec<Vec<u8>> =
        vec![b"bad\xffname".to_vec(), b"b{1,2}.txt".to_vec(), b"sub/f0.dat".to_vec(), b"sub/x/f1.dat".to_vec()];
    assert_eq!(files(&w.root().join("out")), want);
    assert_eq!(fs::read(w.root().join("out").join(OsStr::from_bytes(b"bad\xffname"))).unwrap(), b"bytes\n");
}

#[test]
fn double_star_inside_a_component_does_not_cross_slashes() {
    let (w, t) = glob_world();
    let out = w.run(&restore_args(&t, &[b"**.dat", b"a*"], "out"), 1);
    let e = stderr(&out);
    assert!(e.contains(&format!("nothing in {} matches **.dat", t.display())), "{e}");
    assert!(e.contains("1 names or globs matched nothing"), "{e}");
    assert_eq!(files(&w.root().join("out")), [b"a.txt".to_vec()]);
}

#[test]
fn a_glob_that_cannot_be_parsed_is_one_line_and_writes_nothing() {
    let (w, t) = glob_world();
    let out = w.run(&restore_args(&t, &[b"a*", b"f[z-a]*"], "out"), 1);
    assert_eq!(
        stderr(&out),
        "tapeop: f[z-a]* is not a valid glob: escape a literal * ? [ with a backslash: invalid range; 'z' > 'a'\n"
    );
    assert!(!w.root().join("out").exists());
}
