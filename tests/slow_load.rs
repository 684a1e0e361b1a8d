//! Slow loads: a drive still loading a cartridge (a new LTO-9 cartridge's
//! first load can take two hours) is waited for with a progress line on
//! stderr, up to `load_timeout`, instead of failing with EIO; a load that
//! outlasts it fails in one line and records nothing; a bad `load_timeout`
//! is refused; an empty drive still fails at once. Run on the virtual st
//! drive of tests/support/vst.rs, whose load a test finishes from its own
//! thread once the waiting line has appeared.

mod support;

use support::{vst, world};

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::MutexGuard;

use vst::{VirtualDrive, VstOptions};
use world::{World, stderr};

/// A World whose tape.conf names the virtual drive (with `extra` lines),
/// tape image `tapes/A.tap` in it; holds the serial guard.
struct Rig {
    drive: VirtualDrive,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    fn new(extra: &str, empty: bool) -> Rig {
        let serial = vst::serial();
        let w = World::new();
        fs::create_dir_all(w.root().join("tapes")).unwrap();
        let drive = if empty {
            VirtualDrive::mount_empty(VstOptions::default()).unwrap()
        } else {
            VirtualDrive::mount(&w.root().join("tapes/A.tap"), VstOptions::default()).unwrap()
        };
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n{extra}\n",
            drive.device_path().display()
        );
        fs::write(w.root().join("tape.conf"), text).unwrap();
        Rig { drive, w, _serial: serial }
    }

    /// Import one small target, open tape A and assign it.
    fn prepare(&self) {
        let dir = self.w.data().join("a");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), vec![7u8; 5000]).unwrap();
        let list = self.w.list("list.txt", &[dir]);
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        self.w.run(&["open_tape", "A", "--serial", "SA", "--online", "-y"], 0);
        self.w.run(&["-y", "assign"], 0);
    }

    /// Run `args` while the drive is loading: read stderr until the waiting
    /// line, finish the load, and return the exit code and all of stderr.
    fn run_during_load(&self, args: &[&str]) -> (i32, String) {
        self.drive.start_loading();
        let mut child = self.w.command(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("run tapeop");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let want = format!(
            "Waiting for {} to become ready (loading the cartridge): 0 s of at most 3 h",
            self.drive.device_path().display()
        );
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = err.read_line(&mut line).unwrap();
            assert!(n > 0, "{args:?}: stderr ended before the waiting line: {seen}");
            seen.push_str(&line);
            if line.trim_end() == want {
                break;
            }
        }
        self.drive.finish_loading();
        err.read_to_string(&mut seen).unwrap();
        let code = child.wait().unwrap().code().unwrap();
        (code, seen)
    }
}

#[test]
fn archive_and_confirm_wait_for_a_loading_drive_then_work() {
    let rig = Rig::new("", false);
    rig.prepare();
    let (code, err) = rig.run_during_load(&["archive", "--repeat"]);
    assert_eq!(code, 40, "{err}");
    assert_eq!(rig.w.backups(), vec![(rig.w.data().join("a").display().to_string(), 1, "recorded".to_string())]);
    let (code, err) = rig.run_during_load(&["confirm", "--repeat"]);
    assert_eq!(code, 40, "{err}");
    assert_eq!(rig.w.count("SELECT COUNT(*) FROM backups WHERE status = 'confirmed'"), 1);
}

#[test]
fn a_load_outlasting_load_timeout_fails_in_one_line_and_records_nothing() {
    let rig = Rig::new("load_timeout = 1s", false);
    rig.prepare();
    rig.drive.start_loading();
    let out = rig.w.run(&["archive"], 1);
    let dev = rig.drive.device_path();
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "Waiting for {} to become ready (loading the cartridge): 0 s of at most 1 s",
            dev.display()
        )),
        "{err}"
    );
    let want = format!(
        "the drive {} was still loading the cartridge after 1 s: raise load_timeout under [default] in the config file, or check the drive",
        dev.display()
    );
    assert!(err.lines().any(|l| l.ends_with(&want)), "{err}");
    assert_eq!(rig.w.backups(), vec![(rig.w.data().join("a").display().to_string(), -1, "assigned".to_string())]);
    assert_eq!(rig.w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'archive'"), 0);
}

#[test]
fn a_bad_load_timeout_is_refused_in_one_line() {
    let rig = Rig::new("load_timeout = soon", false);
    let out = rig.w.output(&["archive"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(
        stderr(&out).trim_end().lines().last().unwrap_or(""),
        format!("tapeop: config file tape.conf: load_timeout = \"soon\" is not a duration (e.g. 3h, 90m, 45s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_empty_drive_is_not_waited_for() {
    let rig = Rig::new("", true);
    rig.prepare();
    let out = rig.w.output(&["archive"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(!err.contains("Waiting for"), "{err}");
    assert_eq!(rig.w.backups(), vec![(rig.w.data().join("a").display().to_string(), -1, "assigned".to_string())]);
    assert!(err.contains(&format!("tape drive {}", rig.drive.device_path().display())), "{err}");
}
