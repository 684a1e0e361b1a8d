//! `restore` through the real binary: whole targets, single files, globs
//! and directories from the emulated tape and from the old tool's tapes;
//! every restored byte, symlink, hard link, mode and mtime compared with the
//! source; and every refusal — hostile member names and symlinks, symlinks
//! already in the destination, existing files, the wrong tape online or
//! loaded, a corrupted tape file — with nothing written outside the
//! destination.

mod support;

use support::{datatree, fixture, vst, world};

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use world::{World, flip_byte, member_offset, stderr, stdout};

/// mtimes given to the source trees (distinct per entry).
const BASE_MTIME: i64 = 1_600_000_000;

/// `restore TARGET NAMES... --to TO [--overwrite]`.
fn restore_args(target: &Path, names: &[&[u8]], to: &str, overwrite: bool) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["restore".into(), target.as_os_str().to_owned()];
    a.extend(names.iter().map(|n| OsStr::from_bytes(n).to_owned()));
    a.extend(["--to".into(), to.into()]);
    if overwrite {
        a.push("--overwrite".into());
    }
    a
}

fn set_mtime(path: &Path, secs: i64) {
    let t = TimeSpec::new(secs, 0);
    utimensat(nix::fcntl::AT_FDCWD, path, &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
}

/// Give every entry below `dir` its own mtime (children before their directory).
fn pin_mtimes(dir: &Path, next: &mut i64) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            pin_mtimes(&p, next);
        }
        set_mtime(&p, *next);
        *next += 1;
    }
}

/// Every entry below `dir`: kind, permission bits, mtime (and, via
/// `datatree::manifest`, contents, link targets and hard-link counts).
fn metadata(dir: &Path) -> BTreeMap<PathBuf, (String, u32, i64)> {
    datatree::manifest(dir)
        .into_keys()
        .map(|rel| {
            let m = fs::symlink_metadata(dir.join(&rel)).unwrap();
            let kind = format!("{:?}", m.file_type());
            (rel, (kind, m.mode() & 0o7777, m.mtime()))
        })
        .collect()
}

/// The awkward tree with pinned modes and mtimes, every target archived
/// and confirmed on tape T1. Returns the world and the targets.
fn awkward_world() -> (World, Vec<PathBuf>) {
    let w = World::new();
    let targets = datatree::make_awkward_tree(&w.data());
    let main = &targets[0];
    fs::set_permissions(main.join("file with spaces.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(main.join("-rf"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(main.join("random.bin"), fs::Permissions::from_mode(0o400)).unwrap();
    fs::set_permissions(main.join("empty dir"), fs::Permissions::from_mode(0o750)).unwrap();
    pin_mtimes(main, &mut BASE_MTIME.clone());
    let list = w.list("list.txt", &targets);
    w.archive_all(&list, "T1");
    (w, targets)
}

/// A small target `data/t` (a.txt, link -> a.txt, sub/f00..f19.dat) archived
/// and confirmed on tape T1 at file 1.
fn small_world() -> (World, PathBuf) {
    let w = World::new();
    let t = w.data().join("t");
    fs::create_dir_all(t.join("sub")).unwrap();
    fs::write(t.join("a.txt"), b"original a\n").unwrap();
    symlink("a.txt", t.join("link")).unwrap();
    for i in 0..20 {
        fs::write(t.join(format!("sub/f{i:02}.dat")), datatree::pseudo_random(5000 + i)).unwrap();
    }
    pin_mtimes(&t, &mut BASE_MTIME.clone());
    w.archive_all(&w.list("list.txt", std::slice::from_ref(&t)), "T1");
    (w, t)
}

/// The tape file number the catalogue gives `target`.
fn file_number_of(w: &World, target: &Path) -> u64 {
    let name = target.to_string_lossy();
    let found = w.backups().into_iter().find(|(t, _, _)| *t == name);
    found.unwrap_or_else(|| panic!("{name} has no backup")).1 as u64
}

/// The relative names of everything below `dir`.
fn names(dir: &Path) -> Vec<String> {
    datatree::manifest(dir).into_keys().map(|p| p.to_string_lossy().into_owned()).collect()
}

fn summary(files: usize, bytes: u64, symlinks: usize, dirs: usize, to: &str, tail: &str) -> String {
    format!("Restored {files} files ({bytes} bytes), {symlinks} symlinks, {dirs} directories to {to}; {tail}")
}

#[test]
fn whole_awkward_target_is_restored_exactly_except_what_is_refused() {
    let (w, targets) = awkward_world();
    let src = &targets[0];
    let out = w.run(&restore_args(src, &[], "out", false), 1);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(e.contains("tapeop: refused absolute link: symlink to /etc/passwd points outside the destination"), "{e}");
    assert!(e.contains("tapeop: refused fifo: special file (tar type 6) is not restored"), "{e}");
    assert!(e.contains("is incomplete: 2 refused"), "{e}");

    let dest = w.root().join("out");
    let mut want = metadata(src);
    want.remove(Path::new("absolute link"));
    want.remove(Path::new("fifo"));
    assert_eq!(metadata(&dest), want, "names, types, modes and mtimes");
    let mut want_manifest = datatree::manifest(src);
    want_manifest.remove(Path::new("absolute link"));
    want_manifest.remove(Path::new("fifo"));
    assert_eq!(datatree::manifest(&dest), want_manifest, "contents, link targets, hard links");

    let (mut files, mut symlinks, mut dirs, mut bytes, mut inodes) = (0, 0, 0, 0u64, HashSet::new());
    for rel in want.keys() {
        let m = fs::symlink_metadata(src.join(rel)).unwrap();
        match m.file_type() {
            t if t.is_dir() => dirs += 1,
            t if t.is_symlink() => symlinks += 1,
            _ => {
                files += 1;
                if inodes.insert(m.ino()) {
                    bytes += m.len();
                }
            }
        }
    }
    assert_eq!(symlinks, 2);
    let line = summary(files, bytes, symlinks, dirs, "out", "0 md5 mismatches, 2 refused, 0 skipped (exist)");
    assert!(o.contains(&line), "want {line:?} in {o}");
    let n = file_number_of(&w, src);
    let history = w.count(&format!(
        "SELECT COUNT(*) FROM tapeop_history WHERE kind = 'restore' AND outcome = 'failed' AND tape = 'T1' AND file_number = {n} AND bytes = {bytes}"
    ));
    assert_eq!(history, 1);
}

#[test]
fn nested_and_command_like_targets_restore_with_exit_zero() {
    let (w, targets) = awkward_world();
    for (i, t) in targets.iter().enumerate().skip(1) {
        let to = format!("out{i}");
        let out = w.run(&restore_args(t, &[], &to, false), 0);
        let mut want = datatree::manifest(t);
        let child = |rel: &PathBuf| targets.iter().any(|o| o != t && o.starts_with(t) && t.join(rel).starts_with(o));
        want.retain(|rel, _| !child(rel));
        assert_eq!(datatree::manifest(&w.root().join(&to)), want, "{t:?}");
        assert!(stdout(&out).contains("0 md5 mismatches, 0 refused, 0 skipped (exist)"), "{}", stdout(&out));
    }
    assert!(!Path::new(datatree::PWNED).exists());
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'restore' AND outcome = 'ok'"), 4);
}

#[test]
fn single_files_directories_and_globs_select_only_those() {
    let (w, targets) = awkward_world();
    let src = &targets[0];
    let d2 = "long/directory_level_01_padding/directory_level_02_padding";
    let out = w.run(&restore_args(src, &[b"file with spaces.txt", d2.as_bytes()], "one", false), 0);
    let deep = format!(
        "{d2}/directory_level_03_padding/directory_level_04_padding/directory_level_05_padding/directory_level_06_padding"
    );
    let mut want = vec!["file with spaces.txt".to_string(), "long".into(), "long/directory_level_01_padding".into()];
    let mut p = d2.to_string();
    for level in 2..=6 {
        if level > 2 {
            p = format!("{p}/directory_level_{level:02}_padding");
        }
        want.push(p.clone());
    }
    want.push(format!("{deep}/deep file.txt"));
    want.sort();
    assert_eq!(names(&w.root().join("one")), want);
    let bytes = fs::metadata(src.join("file with spaces.txt")).unwrap().len() + 5;
    assert!(stdout(&out).contains(&summary(2, bytes, 0, 5, "one", "0 md5 mismatches")), "{}", stdout(&out));
    for f in ["file with spaces.txt".to_string(), format!("{deep}/deep file.txt")] {
        assert_eq!(fs::read(w.root().join("one").join(&f)).unwrap(), fs::read(src.join(&f)).unwrap());
    }

    w.run(&restore_args(src, &[b"*.txt"], "glob", false), 0);
    let long_name = format!("{}.txt", "long_file_name_".repeat(12));
    let mut top = vec!["file with spaces.txt".to_string(), "\u{65e5}\u{672c}.txt".into(), long_name];
    top.sort();
    assert_eq!(names(&w.root().join("glob")), top, "`*` does not cross `/`");

    w.run(&restore_args(src, &[b"**/deep*", b"$(touch*"], "deep", false), 0);
    let got = names(&w.root().join("deep"));
    assert!(got.contains(&format!("{deep}/deep file.txt")), "{got:?}");
    assert!(
        got.contains(&"$(touch /tmp/pwned)/inside".to_string()),
        "a glob matching a directory selects below it: {got:?}"
    );
    let touch = ["$(touch ", "$(touch /tmp", "$(touch /tmp/pwned)", "$(touch /tmp/pwned)/inside"];
    assert_eq!(got.iter().filter(|n| !n.starts_with("long")).collect::<Vec<_>>(), touch, "{got:?}");

    let mut bad = src.as_os_str().as_bytes().to_vec();
    bad.extend_from_slice(b"/bad\xffname");
    w.run(&restore_args(src, &[&bad], "abs", false), 0);
    assert_eq!(fs::read(w.root().join("abs").join(OsStr::from_bytes(b"bad\xffname"))).unwrap(), b"name: bad\xffname\n");
}

#[test]
fn names_that_match_nothing_and_lone_hard_links_fail_the_restore() {
    let (w, targets) = awkward_world();
    let src = &targets[0];
    let out = w.run(&restore_args(src, &[b"no such file", b"single'quote"], "nm", false), 1);
    let e = stderr(&out);
    assert!(e.contains(&format!("nothing in {} matches no such file", src.display())), "{e}");
    assert!(e.contains("1 names or globs matched nothing"), "{e}");
    assert_eq!(fs::read(w.root().join("nm/single'quote")).unwrap(), b"name: single'quote\n");

    let tape = fs::read(w.tape_file(file_number_of(&w, src))).unwrap();
    let link = fixture::tar_members(&tape)
        .into_iter()
        .find(|(n, _, _, ty)| *ty == b'1' && (n.ends_with("/hard a") || n.ends_with("/hard b")))
        .expect("one of the pair is a hard link member");
    let (link_name, other) = if link.0.ends_with("hard a") { ("hard a", "hard b") } else { ("hard b", "hard a") };
    let out = w.run(&restore_args(src, &[link_name.as_bytes()], "lone", false), 1);
    let e = stderr(&out);
    assert!(
        e.contains(&format!("refused {link_name}: hard link to {other}, which was not restored in this run")),
        "{e}"
    );
    assert!(!w.root().join("lone").join(link_name).exists());
    w.run(&restore_args(src, &[b"hard ?"], "pair", false), 0);
    let a = fs::metadata(w.root().join("pair/hard a")).unwrap();
    let b = fs::metadata(w.root().join("pair/hard b")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "restored as one inode");
}

#[test]
fn existing_files_are_skipped_unless_overwrite() {
    let (w, t) = small_world();
    w.run(&restore_args(&t, &[], "dest", false), 0);
    let dest = w.root().join("dest");
    assert_eq!(datatree::manifest(&dest), datatree::manifest(&t));
    assert_eq!(metadata(&dest), metadata(&t));
    fs::write(dest.join("a.txt"), b"local edit\n").unwrap();
    let outside = w.root().join("outside.txt");
    fs::write(&outside, b"not to be touched\n").unwrap();
    fs::remove_file(dest.join("sub/f03.dat")).unwrap();
    symlink(&outside, dest.join("sub/f03.dat")).unwrap();

    let out = w.run(&restore_args(&t, &[], "dest", false), 1);
    let e = stderr(&out);
    assert!(e.contains("tapeop: skipped a.txt: dest/a.txt already exists (--overwrite replaces it)"), "{e}");
    assert!(e.contains("tapeop: skipped sub/f03.dat"), "{e}");
    assert!(
        stdout(&out).contains(&summary(0, 0, 0, 1, "dest", "0 md5 mismatches, 0 refused, 22 skipped (exist)")),
        "{}",
        stdout(&out)
    );
    assert!(e.contains("22 skipped because they exist"), "{e}");
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"local edit\n", "content unchanged");
    assert_eq!(fs::read(&outside).unwrap(), b"not to be touched\n");

    let out = w.run(&restore_args(&t, &[], "dest", true), 0);
    assert!(stdout(&out).contains("0 md5 mismatches, 0 refused, 0 skipped (exist)"), "{}", stdout(&out));
    assert_eq!(datatree::manifest(&dest), datatree::manifest(&t), "replaced");
    assert!(
        fs::symlink_metadata(dest.join("sub/f03.dat")).unwrap().is_file(),
        "the symlink was replaced, not followed"
    );
    assert_eq!(fs::read(&outside).unwrap(), b"not to be touched\n");
}

#[test]
fn wrong_tape_online_or_loaded_is_refused_before_anything_is_written() {
    let (w, t) = small_world();
    w.run(&["open_tape", "T2", "--serial", "S2", "--online", "-y"], 0);
    let out = w.run(&restore_args(&t, &[], "dest", false), 1);
    let e = stderr(&out);
    assert!(e.contains(&format!("{} is on tape \"T1\" file 1, but the online tape is \"T2\"", t.display())), "{e}");
    assert!(e.contains("`tapeop activate_tape T1`"), "{e}");
    assert!(!w.root().join("dest").exists());

    w.run(&["activate_tape", "T1"], 0);
    let (other, _) = small_world();
    fs::copy(other.tape_file(0), w.tape_file(0)).unwrap();
    let out = w.run(&restore_args(&t, &[], "dest", false), 1);
    let e = stderr(&out);
    assert!(
        e.contains("wrong tape: the target is on tape \"T1\", but the loaded tape's label says \"T1\" (catalogue"),
        "{e}"
    );
    assert!(names(&w.root().join("dest")).is_empty(), "nothing was written");
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'restore' AND outcome = 'failed' AND error LIKE '%wrong tape%'"), 1);
}

#[test]
fn md5_mismatch_is_reported_the_file_kept_and_the_restore_fails() {
    let (w, t) = small_world();
    let file = w.tape_file(1);
    let (offset, _) = member_offset(&fs::read(&file).unwrap(), b"sub/f07.dat").expect("member on tape");
    flip_byte(&file, offset + 100);
    let out = w.run(&restore_args(&t, &[b"sub"], "dest", false), 1);
    let e = stderr(&out);
    let want = datatree::md5_of(t.join("sub/f07.dat"));
    assert!(e.contains(&format!("tapeop: MD5 MISMATCH sub/f07.dat: catalogue {want}, tape ")), "{e}");
    assert_eq!(e.matches("MISMATCH").count(), 1, "{e}");
    assert!(stdout(&out).contains("; 1 md5 mismatches, 0 refused, 0 skipped (exist)"), "{}", stdout(&out));
    let dest = w.root().join("dest");
    let mut bad = fs::read(t.join("sub/f07.dat")).unwrap();
    bad[100] ^= 0xff;
    assert_eq!(fs::read(dest.join("sub/f07.dat")).unwrap(), bad, "kept as it came off the tape");
    assert_eq!(fs::read(dest.join("sub/f08.dat")).unwrap(), fs::read(t.join("sub/f08.dat")).unwrap());
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'restore' AND outcome = 'failed' AND error = '1 md5 mismatches'"), 1);
}

/// One member of the hand-made hostile tape file: name, type, content, link.
type HostileMember = (Vec<u8>, tar::EntryType, &'static [u8], Option<&'static [u8]>);

/// A GNU header with `name` written raw (absolute names and `..` included).
fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, link: Option<&[u8]>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    h.set_mtime(BASE_MTIME as u64);
    h.set_uid(0);
    h.set_gid(0);
    if let Some(l) = link {
        h.set_link_name(OsStr::from_bytes(l)).unwrap();
    }
    h.set_cksum();
    h
}

#[test]
fn hostile_tape_file_never_writes_outside_the_destination() {
    let w = World::new();
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    let outside = w.root().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let dest = w.root().join("dest");
    fs::create_dir_all(&dest).unwrap();
    symlink(&outside, dest.join("pre")).unwrap();

    let abs = format!("{}/abs.txt", outside.display());
    let members: Vec<HostileMember> = vec![
        (b"h/t/".to_vec(), tar::EntryType::Directory, b"", None),
        (b"h/t/ok.txt".to_vec(), tar::EntryType::Regular, b"fine\n", None),
        (abs.clone().into_bytes(), tar::EntryType::Regular, b"absolute\n", None),
        (b"h/t/../../outside/dotdot.txt".to_vec(), tar::EntryType::Regular, b"dotdot\n", None),
        (b"h/t/evil".to_vec(), tar::EntryType::Symlink, b"", Some(b"../outside")),
        (b"h/t/evil/via_link.txt".to_vec(), tar::EntryType::Regular, b"via\n", None),
        (b"h/t/pre/planted.txt".to_vec(), tar::EntryType::Regular, b"planted\n", None),
        (b"h/t/hl".to_vec(), tar::EntryType::Link, b"", Some(b"/etc/passwd")),
        (b"other/x.txt".to_vec(), tar::EntryType::Regular, b"x\n", None),
    ];
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in &members {
        b.append(&raw_header(name, *kind, data.len() as u64, *link), *data).unwrap();
    }
    let mut bytes = b.into_inner().unwrap();
    bytes.resize(bytes.len().next_multiple_of(10240), 0);
    fs::write(w.tape_file(0), bytes).unwrap();

    let conn = w.sql();
    conn.execute("INSERT INTO targets (name, scanned) VALUES ('/h/t', 1)", []).unwrap();
    let tid = conn.last_insert_rowid();
    for (name, data) in [("ok.txt", &b"fine\n"[..]), ("evil/via_link.txt", b"via\n")] {
        conn.execute(
            "INSERT INTO files (target_id, name, md5sum, size_kb) VALUES (?1, ?2, ?3, 4)",
            rusqlite::params![tid, name, fixture::md5_hex(data)],
        )
        .unwrap();
    }
    conn.execute("INSERT INTO backups (target_id, tape_id, file_number, status) SELECT ?1, id, 0, 'recorded' FROM tapes WHERE name = 'T1'", [tid])
        .unwrap();
    drop(conn);

    let out = w.run(&restore_args(Path::new("/h/t"), &[], "dest", false), 1);
    let e = stderr(&out);
    for want in [
        format!("tapeop: refused {abs}: absolute member name"),
        "tapeop: refused h/t/../../outside/dotdot.txt: member name with a '..' component".to_string(),
        "tapeop: refused evil: symlink to ../outside points outside the destination".to_string(),
        "tapeop: refused pre/planted.txt: dest/pre in the destination is a symlink; it is not followed".to_string(),
        "tapeop: refused hl: hard link to /etc/passwd, outside the target".to_string(),
        "tapeop: refused other/x.txt: outside the target".to_string(),
    ] {
        assert!(e.contains(&want), "want {want:?} in {e}");
    }
    assert!(
        stdout(&out).contains(&summary(2, 9, 0, 0, "dest", "0 md5 mismatches, 6 refused, 0 skipped (exist)")),
        "{}",
        stdout(&out)
    );
    assert_eq!(names(&outside), Vec::<String>::new(), "nothing written outside the destination");
    assert_eq!(names(&dest), vec!["evil", "evil/via_link.txt", "ok.txt", "pre"]);
    assert!(fs::symlink_metadata(dest.join("evil")).unwrap().is_dir(), "a real directory, not the refused symlink");
    assert!(!w.root().join("h").exists() && !w.root().join("other").exists());
}

#[test]
fn old_tools_tapes_restore_with_every_md5_checked() {
    let fx = fixture::Fixture::new();
    let t00 = "/mnt/act6/actpol/data/season4/small/t00";
    let slash = format!("{t00}/");
    let run = fx.run(&["restore", slash.as_str(), "--to", "t00"]);
    run.expect_code(0).expect_stdout("Restored 250 files (1120934 bytes), 0 symlinks, 5 directories to t00; 0 md5 mismatches, 0 refused, 0 skipped (exist)");
    let reference = fx.path("reference");
    fs::create_dir_all(&reference).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(fx.path("emu/PUB-T2/file00005.tar"))
        .arg("-C")
        .arg(&reference)
        .status()
        .unwrap();
    assert!(tar.success());
    let reference = reference.join(&t00[1..]);
    assert_eq!(datatree::manifest(&fx.path("t00")), datatree::manifest(&reference), "same bytes as GNU tar extracts");
    assert_eq!(metadata(&fx.path("t00")), metadata(&reference), "same modes and mtimes as GNU tar extracts");
    let conn = fx.sql();
    let mut stmt = conn
        .prepare("SELECT f.name, f.md5sum FROM files f JOIN targets t ON t.id = f.target_id WHERE t.name = ?1")
        .unwrap();
    let rows: Vec<(String, String)> =
        stmt.query_map([t00], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 250);
    for (name, md5) in rows {
        assert_eq!(fixture::md5_file(&fx.path("t00").join(&name)), md5, "{name}");
    }
    let history: (String, String, i64, String, i64) = conn
        .query_row("SELECT kind, tape, file_number, outcome, bytes FROM tapeop_history WHERE target = ?1", [t00], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(history, ("restore".into(), "PUB-T2".into(), 5, "ok".into(), 1_120_934));

    fx.run(&["restore", t00, "sub[13]/f00?.dat", "--to", "glob"]).expect_code(0);
    let mut want: Vec<String> = names(&reference)
        .into_iter()
        .filter(|n| (n.starts_with("sub1/f00") || n.starts_with("sub3/f00")) && n.len() == "sub1/f00x.dat".len())
        .collect();
    assert!(!want.is_empty());
    want.extend(["sub1".to_string(), "sub3".to_string()]);
    want.sort();
    assert_eq!(names(&fx.path("glob")), want);

    let spaces = "/mnt/act6/actpol/data/season4/edge/e_spaces";
    fx.run(&["restore", spaces, "file with spaces.txt", "--to", "sp"])
        .expect_code(0)
        .expect_stdout("Restored 1 files (2000 bytes)");
    assert_eq!(names(&fx.path("sp")), vec!["file with spaces.txt"]);
    let amp = "/mnt/act6/actpol/data/season4/edge/e_ampersand";
    fx.run(&["restore", amp, "amp&name.txt", "--to", "amp"])
        .expect_code(0)
        .expect_stdout("Restored 1 files (2900 bytes)");
    assert_eq!(names(&fx.path("amp")), vec!["amp&name.txt"]);

    fx.run(&["restore", "/mnt/act6/actpol/data/season4/small/t02", "--to", "x"])
        .expect_code(1)
        .expect_stderr("is not on tape yet: its backup on tape \"PUB-T2\" is assigned");
    fx.run(&["restore", "/mnt/act6/actpol/data/season4/small/t03", "--to", "x"])
        .expect_code(1)
        .expect_stderr("is not on tape yet: it is not assigned to any tape");
    fx.run(&["restore", "/mnt/act6/actpol/data/season4/small/nope", "--to", "x"])
        .expect_code(1)
        .expect_stderr("no target /mnt/act6/actpol/data/season4/small/nope in the catalogue");
    assert!(!fx.path("x").exists());
}

#[test]
fn old_tools_closed_tape_restores_its_symlinks_after_activation() {
    let fx = fixture::Fixture::new();
    let target = "/mnt/act6/actpol/data/season4/edge/e_symlink";
    fx.run(&["restore", target, "--to", "sym"])
        .expect_code(1)
        .expect_stderr("is on tape \"PUB-T1\" file 2, but the online tape is \"PUB-T2\"")
        .expect_stderr("`tapeop activate_tape PUB-T1`");
    assert!(!fx.path("sym").exists());
    fs::copy(fx.path("tape.conf.PUB-T1"), fx.path("tape.conf")).unwrap();
    fx.run(&["activate_tape", "PUB-T1"]).expect_code(0);
    fx.run(&["restore", target, "--to", "sym"])
        .expect_code(0)
        .expect_stdout("Restored 2 files (3700 bytes), 2 symlinks, 0 directories to sym; 0 md5 mismatches, 0 refused, 0 skipped (exist)");
    let sym = fx.path("sym");
    assert_eq!(fs::read_link(sym.join("link_to_real")).unwrap(), Path::new("real.dat"));
    assert_eq!(fs::read_link(sym.join("dangling_link")).unwrap(), Path::new("does_not_exist"));
    assert_eq!(fs::read(sym.join("link_to_real")).unwrap().len(), 2200, "points at the restored file");
    for name in ["link_to_real", "dangling_link", "real.dat", "plain.txt"] {
        assert_eq!(fs::symlink_metadata(sym.join(name)).unwrap().mtime(), 1_577_836_800, "{name}");
    }
}

/// The old tool's tape PUB-T2 in a virtual st drive (10 KiB records, as tar
/// wrote them), and a config for it; the drive stays mounted while held.
fn legacy_tape_in_st_drive(fx: &fixture::Fixture) -> (vst::VirtualDrive, std::sync::MutexGuard<'static, ()>) {
    let serial = vst::serial();
    assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: this test needs FUSE");
    let files: Vec<Vec<Vec<u8>>> = (0..7)
        .map(|n| {
            fs::read(fx.path(format!("emu/PUB-T2/file{n:05}.tar"))).unwrap().chunks(10240).map(<[u8]>::to_vec).collect()
        })
        .collect();
    let image = fx.path("PUB-T2.tap");
    vst::write_tap_files(&image, &files).unwrap();
    let drive = vst::VirtualDrive::mount(&image, vst::VstOptions::default()).expect("mounting the virtual drive");
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n",
        drive.device_path().display()
    );
    fs::write(fx.path("st.conf"), conf).unwrap();
    (drive, serial)
}

#[test]
fn restore_reads_an_old_tape_from_a_st_drive() {
    let fx = fixture::Fixture::new();
    let (_drive, _serial) = legacy_tape_in_st_drive(&fx);
    let t00 = "/mnt/act6/actpol/data/season4/small/t00";
    fx.run(&["-c", "st.conf", "restore", t00, "sub2", "--to", "st"])
        .expect_code(0)
        .expect_stdout("0 md5 mismatches, 0 refused, 0 skipped (exist)");
    fx.run(&["-c", "st.conf", "restore", "/mnt/act6/actpol/data/season4/edge/e_spaces", "--to", "sp"])
        .expect_code(0)
        .expect_stdout("Restored 2 files (3500 bytes), 0 symlinks, 0 directories to sp");
    let got = datatree::manifest(&fx.path("st"));
    assert_eq!(got.len(), 51, "sub2 and its 50 files: {got:?}");
    let conn = fx.sql();
    for (rel, _) in got.iter().filter(|(_, d)| d.starts_with("file")) {
        let md5: String = conn
            .query_row(
                "SELECT f.md5sum FROM files f JOIN targets t ON t.id = f.target_id WHERE t.name = ?1 AND f.name = ?2",
                [t00, rel.to_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(fixture::md5_file(&fx.path("st").join(rel)), md5, "{rel:?}");
    }
}
