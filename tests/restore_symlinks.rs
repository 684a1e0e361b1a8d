//! Symlinks that point outside the destination (absolute, or up through
//! `..`): refused by default (listed, exit 1 "incomplete", with the flag
//! named), restored as they are with `restore --symlinks-as-is`, as tar does,
//! and never followed either way.

mod support;

use support::world;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use world::{World, stderr, stdout};

/// A target with one file, a symlink inside it, an absolute symlink and
/// one that climbs out, archived and confirmed on T1.
fn archived_world() -> (World, PathBuf) {
    let w = World::new();
    let t = w.data().join("t");
    fs::create_dir_all(t.join("sub")).unwrap();
    fs::write(t.join("sub/f.dat"), b"data\n").unwrap();
    symlink("f.dat", t.join("sub/inside")).unwrap();
    symlink("/etc/hostname", t.join("absolute")).unwrap();
    symlink("../../../elsewhere/x", t.join("sub/climbs")).unwrap();
    let list = w.list("list.txt", std::slice::from_ref(&t));
    w.archive_all(&list, "T1");
    (w, t)
}

fn restore(w: &World, t: &Path, to: &str, extra: &[&str], code: i32) -> std::process::Output {
    let mut args = vec!["restore", t.to_str().unwrap(), "--to", to];
    args.extend_from_slice(extra);
    w.run(&args, code)
}

fn link(p: PathBuf) -> Option<PathBuf> {
    fs::read_link(p).ok()
}

#[test]
fn outside_symlinks_are_refused_by_default_and_the_flag_is_named() {
    let (w, t) = archived_world();
    let out = restore(&w, &t, "out", &[], 1);
    let e = stderr(&out);
    for want in [
        "tapeop: refused absolute: symlink to /etc/hostname points outside the destination (--symlinks-as-is restores it as it is)\n",
        "tapeop: refused sub/climbs: symlink to ../../../elsewhere/x points outside the destination (--symlinks-as-is restores it as it is)\n",
    ] {
        assert!(e.contains(want), "want {want:?} in {e}");
    }
    assert!(
        e.ends_with(
            "is incomplete: 2 refused, 2 of them symlinks pointing outside the destination (restore --symlinks-as-is restores them as they are, as tar does)\n"
        ),
        "{e}"
    );
    let o = w.root().join("out");
    assert_eq!(fs::read(o.join("sub/f.dat")).unwrap(), b"data\n");
    assert_eq!(link(o.join("sub/inside")), Some(PathBuf::from("f.dat")));
    assert_eq!(link(o.join("absolute")), None);
    assert_eq!(link(o.join("sub/climbs")), None);
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'restore' AND outcome = 'failed'"), 1);
}

#[test]
fn symlinks_as_is_restores_them_as_links_and_succeeds() {
    let (w, t) = archived_world();
    let out = restore(&w, &t, "out", &["--symlinks-as-is"], 0);
    assert_eq!(stderr(&out), "");
    let line = "Restored 1 files (5 bytes), 3 symlinks, 1 directories to out; 0 md5 mismatches, 0 refused, 0 skipped (exist), \
         2 symlinks pointing outside the destination restored as they are (--symlinks-as-is)\n";
    assert!(stdout(&out).ends_with(line), "{}", stdout(&out));
    let o = w.root().join("out");
    assert_eq!(fs::read(o.join("sub/f.dat")).unwrap(), b"data\n");
    assert_eq!(link(o.join("absolute")), Some(PathBuf::from("/etc/hostname")));
    assert_eq!(link(o.join("sub/climbs")), Some(PathBuf::from("../../../elsewhere/x")));
    assert_eq!(link(o.join("sub/inside")), Some(PathBuf::from("f.dat")));
    assert!(!w.root().join("elsewhere").exists(), "nothing written through a link");
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'restore' AND outcome = 'ok'"), 1);
    // Restoring again over them: existing links are skipped, never followed.
    let again = restore(&w, &t, "out", &["--symlinks-as-is"], 1);
    assert!(stderr(&again).contains("tapeop: skipped absolute: "), "{}", stderr(&again));
    assert_eq!(link(o.join("absolute")), Some(PathBuf::from("/etc/hostname")));
}

#[test]
fn help_documents_the_flag_and_the_default() {
    let w = World::new();
    let help = stdout(&w.run(&["restore", "--help"], 0));
    assert!(help.contains("--symlinks-as-is"), "{help}");
    assert!(help.contains("Default: refuse them, list them, exit 1"), "{help}");
}
