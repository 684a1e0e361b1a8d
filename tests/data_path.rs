//! The data path end to end through the real binary: import over a real
//! OpenSSH server, archive onto the emulated tape, confirm; awkward names,
//! nested targets, one ssh connection per target, and every failure path
//! (unreachable host, missing directory, permission denied, tar failing,
//! a dropped stream, a source that changed, Ctrl-C once and twice).

mod support;

use support::{datatree, sshd, world};

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use world::{World, flip_byte, member_offset, stderr, stdout};

/// A catalogued file: name, md5, size in bytes, link target.
type FileRow = (Vec<u8>, String, i64, Option<Vec<u8>>);

fn import_args(list: &Path) -> Vec<&OsStr> {
    vec![OsStr::new("-y"), OsStr::new("import"), list.as_os_str()]
}

#[test]
fn ssh_workflow_keeps_every_awkward_name_and_uses_one_connection_per_target() {
    let sshd = sshd::Sshd::start();
    let w = World::new();
    let mut targets = datatree::make_awkward_tree(&w.data());
    let semi = w.data().join("x; touch /tmp/tapeop-pwned-semicolon");
    fs::create_dir_all(semi.join("in")).unwrap();
    fs::write(semi.join("in/f"), b"semi").unwrap();
    targets.push(semi);
    w.config(&sshd.ssh_command(), "emulator_dir = emu");
    let list = w.list("list.txt", &targets);

    let before = sshd.connections();
    let out = w.run(&import_args(&list), 0);
    assert_eq!(sshd.connections() - before, targets.len(), "one ssh connection per target during import");
    assert!(stderr(&out).contains("skipped fifo"), "the fifo is reported: {}", stderr(&out));
    assert_eq!(w.count("SELECT COUNT(*) FROM targets WHERE scanned = 1"), targets.len() as i64);

    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    let before = sshd.connections();
    w.run(&["archive", "--repeat"], 40);
    assert_eq!(sshd.connections() - before, targets.len(), "one ssh connection per archived target");
    w.run(&["confirm", "--repeat"], 40);
    assert!(w.backups().iter().all(|(_, _, s)| s == "confirmed"), "{:?}", w.backups());
    assert!(!Path::new(datatree::PWNED).exists(), "a target name was executed");
    assert!(!Path::new("/tmp/tapeop-pwned-semicolon").exists(), "a target name was executed");
    assert_catalogue_matches_disk(&w, &targets);
}

/// Every regular file of every target is catalogued with its md5 and exact
/// size, every symlink with its target; names byte for byte.
fn assert_catalogue_matches_disk(w: &World, targets: &[PathBuf]) {
    let conn = w.sql();
    for t in targets {
        let tid: i64 = conn
            .query_row("SELECT id FROM targets WHERE CAST(name AS BLOB) = ?1", [t.as_os_str().as_bytes()], |r| r.get(0))
            .unwrap_or_else(|e| panic!("target {t:?} missing: {e}"));
        let mut stmt = conn
            .prepare("SELECT CAST(f.name AS BLOB), f.md5sum, i.size_bytes, i.link_target FROM files f JOIN tapeop_file_info i ON i.file_id = f.id WHERE f.target_id = ?1")
            .unwrap();
        let rows: Vec<FileRow> = stmt
            .query_map([tid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (name, md5, size, link) in &rows {
            let path = t.join(OsStr::from_bytes(name));
            let meta = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            match md5.as_str() {
                "symlink" => assert_eq!(link.as_deref(), Some(fs::read_link(&path).unwrap().as_os_str().as_bytes())),
                "directory" => assert!(meta.is_dir()),
                _ => {
                    assert_eq!(md5, &datatree::md5_of(&path), "{path:?}");
                    assert_eq!(*size as u64, meta.len(), "{path:?}");
                }
            }
        }
        let on_disk = count_entries(t, targets);
        assert_eq!(rows.len(), on_disk, "entries of {t:?}");
    }
}

/// Files, symlinks and empty directories below `dir`, not inside other targets.
fn count_entries(dir: &Path, targets: &[PathBuf]) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if targets.contains(&p) {
            continue;
        }
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            let inner = count_entries(&p, targets);
            n += if inner == 0 && fs::read_dir(&p).unwrap().next().is_none() { 1 } else { inner };
        } else if m.is_file() || m.file_type().is_symlink() {
            n += 1;
        }
    }
    n
}

#[test]
fn confirm_names_exactly_the_file_whose_byte_was_flipped() {
    let w = World::new();
    let t = w.data().join("t");
    fs::create_dir_all(t.join("sub")).unwrap();
    for i in 0..20 {
        fs::write(t.join(format!("sub/f{i:02}.dat")), datatree::pseudo_random(5000 + i)).unwrap();
    }
    let list = w.list("list.txt", std::slice::from_ref(&t));
    w.archive_all(&list, "T1");
    let file = w.tape_file(1);
    let (offset, _) = member_offset(&fs::read(&file).unwrap(), b"sub/f07.dat").expect("member on tape");
    flip_byte(&file, offset + 100);
    let out = w.run(&["confirm", "1", "--retry"], 1);
    let err = stderr(&out);
    assert!(err.contains("md5 mismatch") && err.contains("sub/f07.dat"), "{err}");
    assert_eq!(err.matches("md5 mismatch").count(), 1, "only that file: {err}");
    assert!(err.contains("1 differences"), "{err}");
    assert_eq!(w.backups()[0].2, "confirmed", "a failed re-confirm marks nothing");
}

#[test]
fn child_imported_after_its_parent_was_scanned_takes_its_files() {
    let w = World::new();
    let parent = w.data().join("p");
    let child = parent.join("c");
    fs::create_dir_all(&child).unwrap();
    fs::write(parent.join("pf"), b"parent").unwrap();
    fs::write(child.join("cf"), b"child").unwrap();
    w.run(&import_args(&w.list("a.txt", std::slice::from_ref(&parent))), 0);
    assert_eq!(w.count("SELECT COUNT(*) FROM files"), 2);
    w.run(&import_args(&w.list("b.txt", std::slice::from_ref(&child))), 0);
    assert_eq!(w.count("SELECT COUNT(*) FROM files WHERE name = 'pf'"), 1);
    assert_eq!(w.count("SELECT COUNT(*) FROM files WHERE name LIKE '%cf'"), 1, "every file in exactly one target");
    assert_eq!(w.count("SELECT COUNT(*) FROM targets WHERE parent_id IS NOT NULL"), 1);
    w.run(&["open_tape", "T1", "--online", "-y", "--serial", "S"], 0);
    w.run(&["-y", "assign"], 0);
    w.run(&["archive", "--repeat"], 40);
    w.run(&["confirm", "--repeat"], 40);
    let parent_tar = fs::read(w.tape_file(1)).unwrap();
    assert!(member_offset(&parent_tar, b"c/cf").is_none(), "the parent's tar excludes the child");
}

#[test]
fn child_imported_before_its_parent_is_excluded_from_the_parent() {
    let w = World::new();
    let parent = w.data().join("p");
    let child = parent.join("deeper/c");
    fs::create_dir_all(&child).unwrap();
    fs::write(parent.join("pf"), b"parent").unwrap();
    fs::write(child.join("cf"), b"child").unwrap();
    w.run(&import_args(&w.list("a.txt", std::slice::from_ref(&child))), 0);
    w.run(&import_args(&w.list("b.txt", std::slice::from_ref(&parent))), 0);
    assert_eq!(w.count("SELECT COUNT(*) FROM files WHERE name LIKE '%cf'"), 1);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM targets t JOIN targets p ON p.id = t.parent_id WHERE p.name LIKE '%/p'"),
        1
    );
    w.run(&["open_tape", "T1", "--online", "-y", "--serial", "S"], 0);
    w.run(&["-y", "assign"], 0);
    w.run(&["archive", "--repeat"], 40);
    w.run(&["confirm", "--repeat"], 40);
}

#[test]
fn bad_lists_are_rejected_with_the_line_number_before_anything_is_written() {
    let w = World::new();
    fs::write(w.root().join("rel.txt"), "# comment\n\n/ok/dir\nrelative/dir\n").unwrap();
    let out = w.run(&["-y", "import", "rel.txt"], 1);
    assert!(
        stderr(&out).contains("rel.txt line 4") && stderr(&out).contains("not an absolute path"),
        "{}",
        stderr(&out)
    );
    fs::write(w.root().join("dup.txt"), "/a/b\n/a/./b/\n").unwrap();
    let out = w.run(&["-y", "import", "dup.txt"], 1);
    assert!(
        stderr(&out).contains("line 2") && stderr(&out).contains("listed twice (first on line 1)"),
        "{}",
        stderr(&out)
    );
    let out = w.run(&["-y", "import", "missing.txt"], 1);
    assert!(stderr(&out).contains("cannot read list file missing.txt"), "{}", stderr(&out));
    assert!(!w.root().join("tape.sqlite").exists(), "nothing was written");
}

#[test]
fn a_scan_that_fails_names_the_target_and_leaves_it_unscanned() {
    let w = World::new();
    let good = w.data().join("good");
    fs::create_dir_all(&good).unwrap();
    fs::write(good.join("f"), b"x").unwrap();
    let missing = w.data().join("missing");
    let out = w.run(&import_args(&w.list("l.txt", &[good.clone(), missing.clone()])), 1);
    let err = stderr(&out);
    assert!(err.contains(&format!("scan of target {} failed", missing.display())), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert_eq!(w.count("SELECT COUNT(*) FROM targets WHERE scanned = 1"), 1, "the good one is scanned");
    assert_eq!(w.count("SELECT COUNT(*) FROM targets WHERE scanned = 0"), 1);
    fs::create_dir_all(&missing).unwrap();
    fs::write(missing.join("g"), b"y").unwrap();
    w.run(&[OsStr::new("-y"), OsStr::new("import"), w.root().join("l.txt").as_os_str(), OsStr::new("--retry")], 0);
    assert_eq!(w.count("SELECT COUNT(*) FROM targets WHERE scanned = 1"), 2, "--retry resumes");
}

#[test]
fn permission_denied_fails_the_scan() {
    let w = World::new();
    let t = w.data().join("t");
    fs::create_dir_all(t.join("locked")).unwrap();
    fs::write(t.join("locked/secret"), b"s").unwrap();
    fs::write(t.join("open"), b"o").unwrap();
    fs::set_permissions(w.root(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(t.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
    w.config("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c", "emulator_dir = emu");
    let out = w.run(&import_args(&w.list("l.txt", &[t])), 1);
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    assert_eq!(w.count("SELECT COUNT(*) FROM targets WHERE scanned = 0"), 1);
    assert_eq!(w.count("SELECT COUNT(*) FROM files"), 0);
}

#[test]
fn unreachable_host_fails_the_scan() {
    let w = World::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    w.config(
        &format!("ssh -p {port} -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=no root@127.0.0.1"),
        "emulator_dir = emu",
    );
    let out = w.run(&import_args(&w.list("l.txt", &[w.data().join("x")])), 1);
    let err = stderr(&out);
    assert!(err.contains("exit 255") && err.contains("Connection refused"), "{err}");
    assert_eq!(w.count("SELECT COUNT(*) FROM targets WHERE scanned = 0"), 1);
}

/// A world with one imported, assigned target and an online tape.
fn assigned_world() -> (World, PathBuf) {
    let w = World::new();
    let t = w.data().join("t");
    fs::create_dir_all(&t).unwrap();
    for i in 0..5 {
        fs::write(t.join(format!("f{i}")), datatree::pseudo_random(300_000 + i)).unwrap();
    }
    w.run(&import_args(&w.list("l.txt", std::slice::from_ref(&t))), 0);
    w.run(&["open_tape", "T1", "--online", "-y", "--serial", "S"], 0);
    w.run(&["-y", "assign"], 0);
    (w, t)
}

fn assert_nothing_recorded(w: &World) {
    assert_eq!(w.backups()[0].1, -1);
    assert_eq!(w.backups()[0].2, "assigned");
}

#[test]
fn tar_exiting_non_zero_fails_the_archive_and_records_nothing() {
    let (w, _) = assigned_world();
    w.config("sh -c 'eval \"$1\"; echo tar: simulated failure >&2; exit 2' sh", "emulator_dir = emu");
    let out = w.run(&["archive"], 42);
    let err = stderr(&out);
    assert!(err.contains("exit 2") && err.contains("simulated failure"), "{err}");
    assert!(err.contains("nothing was recorded"), "{err}");
    assert_nothing_recorded(&w);
    w.config("", "emulator_dir = emu");
    let out = w.run(&["archive"], 0);
    assert!(stdout(&out).contains("Seeking to file_number=1"), "the same append point is reused: {}", stdout(&out));
    assert!(stdout(&out).contains("failed archive attempt"), "{}", stdout(&out));
    w.run(&["confirm", "next"], 0);
}

#[test]
fn a_dropped_connection_mid_stream_fails_the_archive() {
    let (w, _) = assigned_world();
    w.config("sh -c 'eval \"$1\" | head -c 700000; echo connection reset >&2; exit 255' sh", "emulator_dir = emu");
    let out = w.run(&["archive"], 42);
    let err = stderr(&out);
    assert!(err.contains("exit 255") && err.contains("connection reset"), "{err}");
    assert_nothing_recorded(&w);
}

#[test]
fn a_dropped_ssh_connection_fails_the_archive() {
    let mut sshd = sshd::Sshd::start();
    let (w, _) = assigned_world();
    w.config(&sshd.ssh_command(), "emulator_dir = emu");
    sshd.stop();
    let out = w.run(&["archive"], 42);
    assert!(stderr(&out).contains("exit 255"), "{}", stderr(&out));
    assert_nothing_recorded(&w);
}

#[test]
fn a_source_changed_since_import_is_caught_while_archiving() {
    let (w, t) = assigned_world();
    fs::write(t.join("f3"), b"changed after the scan").unwrap();
    fs::write(t.join("new file"), b"appeared after the scan").unwrap();
    let out = w.run(&["archive"], 42);
    let err = stderr(&out);
    assert!(err.contains("md5 mismatch") && err.contains(": f3"), "{err}");
    assert!(err.contains("on tape but not in the catalogue: new file"), "{err}");
    assert!(err.contains("import LIST --rescan"), "{err}");
    assert_nothing_recorded(&w);
    w.run(&["-y", "import", "l.txt", "--rescan"], 0);
    w.run(&["archive"], 0);
    w.run(&["confirm", "next"], 0);
    assert_eq!(w.backups()[0], (t.display().to_string(), 1, "confirmed".into()));
}

/// Start an archive whose source blocks on a fifo after sending its tar;
/// returns the child and the fifo path, once tapeop said "Archiving:".
fn blocked_archive(w: &World) -> (std::process::Child, PathBuf, BufReader<std::process::ChildStdout>) {
    let fifo = w.root().join("hold");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    w.config(&format!("sh -c 'eval \"$1\"; cat {} >/dev/null' sh", fifo.display()), "emulator_dir = emu");
    let mut child = w.command(&["archive"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Archiving:") {
        line.clear();
        assert!(lines.read_line(&mut line).unwrap() > 0, "tapeop ended before archiving");
    }
    (child, fifo, lines)
}

fn release(fifo: &Path) {
    drop(fs::OpenOptions::new().write(true).open(fifo).unwrap());
}

#[test]
fn one_ctrl_c_finishes_the_job_then_exits_41() {
    let (w, _) = assigned_world();
    let (mut child, fifo, _lines) = blocked_archive(&w);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    release(&fifo);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(41));
    assert_eq!(w.backups()[0].2, "recorded", "the job in progress was finished");
}

#[test]
fn two_ctrl_c_stop_at_once_with_nothing_marked() {
    let (w, _) = assigned_world();
    let (mut child, fifo, _lines) = blocked_archive(&w);
    let pid = Pid::from_raw(child.id() as i32);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    kill(pid, Signal::SIGINT).unwrap();
    let mut line = String::new();
    while !line.contains("Ctrl-C: finishing") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "tapeop ended before handling the first Ctrl-C");
    }
    kill(pid, Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    release_if_waiting(&fifo);
    assert_eq!(status.code(), Some(41), "{rest}");
    assert!(rest.contains("Second Ctrl-C"), "{rest}");
    assert_nothing_recorded(&w);
}

/// The source's `cat` may still hold the fifo open for reading: let it go.
fn release_if_waiting(fifo: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo);
}

#[test]
fn keep_pace_checks_everything_it_keeps_up_with() {
    let (w, t) = assigned_world();
    w.config_with("", "emulator_dir = emu", "check_in_flight = keep-pace");
    fs::write(t.join("f3"), b"changed after the scan").unwrap();
    let out = w.run(&["archive"], 42);
    let err = stderr(&out);
    assert!(err.contains("md5 mismatch") && err.contains(": f3"), "{err}");
    assert_nothing_recorded(&w);
    w.run(&["-y", "import", "l.txt", "--rescan"], 0);
    let out = w.run(&["archive"], 0);
    assert!(
        stdout(&out).contains(" -- checked in flight (check_in_flight = keep-pace): 5 files md5-checked, 0 files (0.000 GB) left for confirm to md5\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn keep_pace_behind_the_drive_leaves_md5_to_confirm_but_still_checks_names() {
    let (w, t) = assigned_world();
    fs::write(t.join("f3"), b"changed after the scan").unwrap();
    fs::write(t.join("new file"), b"appeared after the scan").unwrap();
    let behind = |w: &World, code: i32| {
        let out = w
            .command(&["archive", "--check-in-flight", "keep-pace"])
            .env("TAPEOP_FAULT", "check-behind")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}{}", stdout(&out), stderr(&out));
        out
    };
    let err = stderr(&behind(&w, 42));
    assert!(err.contains("on tape but not in the catalogue: new file"), "{err}");
    assert!(!err.contains("md5 mismatch"), "nothing was hashed: {err}");
    assert_nothing_recorded(&w);
    fs::remove_file(t.join("new file")).unwrap();
    let out = stdout(&behind(&w, 0));
    assert!(
        out.contains(" -- checked in flight (check_in_flight = keep-pace): 0 files md5-checked, 5 files (0.001 GB) left for confirm to md5\n"),
        "{out}"
    );
    assert_eq!(w.backups()[0].2, "recorded");
    let err = stderr(&w.run(&["confirm", "next"], 1));
    assert!(err.contains("md5 mismatch") && err.contains(": f3"), "confirm is the check: {err}");
    assert_eq!(w.backups()[0].2, "recorded");
}

#[test]
fn check_in_flight_off_is_pure_pass_through_and_confirm_catches_a_change() {
    let (w, t) = assigned_world();
    fs::write(t.join("f3"), b"changed after the scan").unwrap();
    let out = stdout(&w.run(&["archive", "--check-in-flight", "off"], 0));
    assert!(
        out.contains(" -- not checked in flight (check_in_flight = off): confirm is the check of this tape file\n"),
        "{out}"
    );
    assert_eq!(w.backups()[0].2, "recorded");
    let err = stderr(&w.run(&["confirm", "next"], 1));
    assert!(err.contains("md5 mismatch") && err.contains(": f3") && err.contains("FAILED: 1 differences"), "{err}");
}

#[test]
fn a_bad_check_in_flight_is_refused_before_anything_is_written() {
    let (w, _) = assigned_world();
    w.config_with("", "emulator_dir = emu", "check_in_flight = fast");
    let err = stderr(&w.run(&["archive"], 1));
    assert_eq!(
        err.trim_end(),
        "tapeop: config file tape.conf: check_in_flight = \"fast\" must be full, keep-pace or off"
    );
    w.config("", "emulator_dir = emu");
    let err = stderr(&w.run(&["archive", "--check-in-flight", "fast"], 2));
    assert!(err.contains("invalid value 'fast' for '--check-in-flight <MODE>'"), "{err}");
    assert_nothing_recorded(&w);
    assert!(!w.tape_file(1).exists());
}
