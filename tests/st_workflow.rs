//! The operator's workflow through the real `tapeop` binary onto a (virtual)
//! Linux st drive: `tape_device` is the non-rewinding `nst0` of the FUSE
//! drive of tests/support/vst.rs, whose tape is a SIMH `.tap` image the
//! tests inspect byte for byte. Checked with the real tools: OpenSSH (the
//! data host), `mt` (mt-st), GNU `tar` and `md5sum`. Covers the whole
//! workflow with awkward names, what `mt`/`tar` see on the tape tapeop wrote,
//! the `drive` command, every refusal (rewinding device, write protection,
//! busy drive, empty drive, not a tape device, wrong tape), tape full at
//! early warning (and on the emulator), records larger than the reader's
//! first buffer, a drive that stops one filemark short, a failed archive
//! written over, end of data reported as Linux st does (block unknown), a
//! tape.conf key given twice, and assign on a tape marked full.
//!
//! These tests need FUSE (/dev/fuse, root), `mt`, `tar`, `md5sum` and
//! OpenSSH's `sshd`: they fail, never skip, when one is missing. Each holds
//! `vst::serial()` for its whole body: the drive is shared with the
//! processes it spawns.

mod support;

use support::{datatree, sshd, vst, world};

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::MutexGuard;

use serde_json::Value;
use sshd::Sshd;
use vst::{TapItem, VirtualDrive, VstOptions, mt_position};
use world::{World, describe, stderr, stdout};

const KIB: usize = 1024;
const RECORD: usize = 256 * KIB;

/// Panic with a clear message when the tests cannot run here.
fn require_tools() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: these tests need FUSE (apt-get install fuse3; modprobe fuse)"
    );
    for tool in ["mt", "tar", "md5sum"] {
        let found =
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
        assert!(found, "`{tool}` is not installed: these tests need it (mt comes from mt-st)");
    }
}

/// A working directory (World) with a virtual st drive, optionally a data
/// host over ssh, and the serial guard. Fields drop in order: the drive is
/// unmounted and sshd stopped before the directory goes and the guard is
/// released.
struct Rig {
    drive: VirtualDrive,
    sshd: Option<Sshd>,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    /// A rig with tape image `tapes/A.tap` (blank) in the drive and a
    /// tape.conf for it; `ssh` starts a private sshd as the data host (else
    /// the data is local).
    fn new(opts: VstOptions, ssh: bool) -> Rig {
        // Lock first: everything below spawns processes.
        let serial = vst::serial();
        require_tools();
        let sshd = ssh.then(Sshd::start);
        let w = World::new();
        fs::create_dir_all(w.root().join("tapes")).unwrap();
        let image = w.root().join("tapes/A.tap");
        let drive = VirtualDrive::mount(&image, opts).expect("mounting the virtual drive");
        let rig = Rig { drive, sshd, w, _serial: serial };
        rig.conf("");
        rig
    }

    fn dev(&self) -> PathBuf {
        self.drive.device_path()
    }

    fn ssh_command(&self) -> String {
        self.sshd.as_ref().map(Sshd::ssh_command).unwrap_or_default()
    }

    /// tape.conf with `tape_device` = the drive's nst0, plus `extra` lines.
    fn conf(&self, extra: &str) {
        self.conf_device(&self.dev(), extra);
    }

    /// tape.conf with `tape_device = device` (written by hand: one
    /// `tape_device` line only).
    fn conf_device(&self, device: &Path, extra: &str) {
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command = {}\n{extra}\n",
            device.display(),
            self.ssh_command()
        );
        fs::write(self.w.root().join("tape.conf"), text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.w.root().join(name)
    }

    /// The raw bytes of the image of the tape in the drive.
    fn image(&self) -> Vec<u8> {
        fs::read(self.drive.image_path()).unwrap()
    }

    /// Record sizes of each tape file of the tape in the drive.
    fn record_sizes(&self) -> Vec<Vec<usize>> {
        let files = self.drive.files().expect("reading the image");
        files.iter().map(|f| f.iter().map(Vec::len).collect()).collect()
    }

    /// Unload the cartridge and load `tapes/NAME` (blank if new).
    fn load(&self, name: &str, opts: VstOptions) -> PathBuf {
        let image = self.path(&format!("tapes/{name}"));
        self.drive.change_tape(&image, &opts).expect("changing the tape");
        image
    }

    /// `mt -f DEV args...`, which must succeed; returns its stdout.
    fn mt(&self, args: &[&str]) -> String {
        let out = Command::new("mt").arg("-f").arg(self.dev()).args(args).output().expect("running mt");
        assert!(out.status.success(), "mt {args:?} failed: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// File and block number as `mt status` prints them.
    fn mt_position(&self) -> (i64, i64) {
        let status = self.mt(&["status"]);
        mt_position(&status).unwrap_or_else(|| panic!("no position in mt status:\n{status}"))
    }

    /// The general status bits `mt status` lists (its last line).
    fn mt_bits(&self) -> Vec<String> {
        let status = self.mt(&["status"]);
        status.lines().last().unwrap_or_default().split_whitespace().map(str::to_string).collect()
    }

    /// Plain GNU tar on the drive, in 256 KiB records, run in `cwd`.
    fn tar(&self, args: &[&str], cwd: &Path) -> Output {
        let out = Command::new("tar")
            .current_dir(cwd)
            .args(["-b", "512"])
            .args(args)
            .arg("-f")
            .arg(self.dev())
            .output()
            .expect("running tar");
        assert!(out.status.success(), "tar {args:?} failed: {}", describe(&out));
        out
    }

    /// Import `targets`, open T1 (serial S1) online and assign them all.
    /// Targets a, b and c (1000, 2000, 3000 bytes) imported and assigned,
    /// and a and b archived (tape files 1 and 2); returns the three.
    fn two_of_three_archived(&self) -> Vec<PathBuf> {
        let w = &self.w;
        let targets = vec![make_target(w, "a", 1000), make_target(w, "b", 2000), make_target(w, "c", 3000)];
        self.prepare(&targets);
        self.run(&["archive"], 0);
        self.run(&["archive"], 0);
        targets
    }

    fn prepare(&self, targets: &[PathBuf]) {
        let list = self.w.list("list.txt", targets);
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        self.w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
        self.w.run(&["-y", "assign"], 0);
    }

    /// `tapeop ARGS` with exit `code`; stdout and stderr joined.
    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    /// `(kind, file_number, outcome)` of every history entry, oldest first.
    fn history(&self) -> Vec<(String, i64, String)> {
        let conn = self.w.sql();
        let mut stmt = conn.prepare("SELECT kind, file_number, outcome FROM tapeop_history ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    /// Everything a refusal must leave alone: the tape image byte for byte,
    /// the backups, the history, the tape marks and the ssh logins.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            image: self.image(),
            backups: self.w.backups(),
            history: self.history(),
            tape_info: self
                .w
                .sql()
                .query_row("SELECT COUNT(*), COALESCE(SUM(full), 0) FROM tapeop_tape_info", [], |r| {
                    Ok(format!("{} tapes, {} full", r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .unwrap(),
            logins: self.sshd.as_ref().map_or(0, Sshd::connections),
        }
    }

    fn assert_unchanged(&self, before: &Snapshot, what: &str) {
        let now = self.snapshot();
        assert!(now.image == before.image, "{what}: the tape image changed");
        assert_eq!(now.backups, before.backups, "{what}: the backups changed");
        assert_eq!(now.history, before.history, "{what}: the history changed");
        assert_eq!(now.tape_info, before.tape_info, "{what}: the tape marks changed");
        assert_eq!(now.logins, before.logins, "{what}: data moved (ssh logins)");
    }
}

#[derive(Debug)]
struct Snapshot {
    image: Vec<u8>,
    backups: Vec<(String, i64, String)>,
    history: Vec<(String, i64, String)>,
    tape_info: String,
    logins: usize,
}

/// Deterministic bytes, different for each seed.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A target directory `data/NAME` holding `readme.txt` and `sub/data.bin`
/// (`size` bytes of content unique to this target).
fn make_target(w: &World, name: &str, size: usize) -> PathBuf {
    let dir = w.data().join(name);
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("readme.txt"), format!("target {name}\n")).unwrap();
    let seed = name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    fs::write(dir.join("sub/data.bin"), bytes(size, seed)).unwrap();
    dir
}

/// The member names GNU tar lists for a target made by `make_target`.
fn members(target: &Path) -> BTreeSet<String> {
    let rel = target.to_str().unwrap().strip_prefix('/').unwrap().to_string();
    [format!("{rel}/"), format!("{rel}/readme.txt"), format!("{rel}/sub/"), format!("{rel}/sub/data.bin")]
        .into_iter()
        .collect()
}

/// The target path as tar names it: without its leading `/`.
fn rel(target: &Path) -> &Path {
    target.strip_prefix("/").unwrap()
}

/// The backup of `target`: `(file_number, status)`.
fn backup_of(w: &World, target: &Path) -> (i64, String) {
    let name = target.to_str().unwrap();
    let found = w.backups().into_iter().find(|(t, _, _)| t == name);
    let (_, n, s) = found.unwrap_or_else(|| panic!("no backup of {name}: {:?}", w.backups()));
    (n, s)
}

fn status_json(w: &World) -> Value {
    let out = w.run(&["--json", "status"], 0);
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// The `tapes` row of tape `name`, split in words.
fn tapes_row(w: &World, name: &str) -> Vec<String> {
    let out = stdout(&w.run(&["tapes"], 0));
    let row = out.lines().find(|l| l.split_whitespace().next() == Some(name));
    let row = row.unwrap_or_else(|| panic!("no row for {name} in tapes:\n{out}"));
    row.split_whitespace().map(str::to_string).collect()
}

fn assert_contains(text: &str, want: &str) {
    assert!(text.contains(want), "expected {want:?} in:\n{text}");
}

// ---------------------------------------------------------------------------

#[test]
fn whole_workflow_over_ssh_onto_the_st_drive_confirms_every_awkward_target() {
    let rig = Rig::new(VstOptions::default(), true);
    let sshd = rig.sshd.as_ref().unwrap();
    let w = &rig.w;
    let targets = datatree::make_awkward_tree(&w.data());
    let list = w.list("list.txt", &targets);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);

    let before = sshd.connections();
    let out = rig.run(&["archive", "--repeat"], 40);
    assert_eq!(sshd.connections() - before, targets.len(), "one ssh connection per target");
    assert_contains(&out, "Labelled tape \"T1\" (tape file 0); data starts at file 1.");
    rig.run(&["confirm", "--repeat"], 40);

    let backups = w.backups();
    assert!(backups.iter().all(|(_, _, s)| s == "confirmed"), "{backups:?}");
    let numbers: BTreeSet<i64> = backups.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(numbers, (1..=targets.len() as i64).collect(), "file 0 is the label: {backups:?}");
    let status = stdout(&w.run(&["status"], 0));
    assert_contains(&status, &format!("type {:<20}: {:6}", "confirmed", targets.len()));
    assert_contains(&status, &format!("type {:<20}: {:6}", "recorded", 0));
    assert_contains(&status, &format!("type {:<20}: {:6}", "assigned", 0));
    assert_contains(&status, &format!("       1 - {:5} : confirmed", targets.len()));
    assert!(!Path::new(datatree::PWNED).exists(), "a target name was executed");

    // The tape: the label, then one tape file per target, all in 256 KiB records.
    let sizes = rig.record_sizes();
    assert_eq!(sizes.len(), targets.len() + 1, "{sizes:?}");
    assert!(sizes.iter().flatten().all(|&s| s == RECORD), "{sizes:?}");

    // Plain tar restores the most awkward target from the drive exactly.
    let main = &targets[0];
    let (n, _) = backup_of(w, main);
    rig.mt(&["rewind"]);
    rig.mt(&["fsf", &n.to_string()]);
    let out_dir = rig.path("restored");
    fs::create_dir(&out_dir).unwrap();
    rig.tar(&["-x"], &out_dir);
    assert_eq!(datatree::manifest(&out_dir.join(rel(main))), datatree::manifest(main));
    assert!(!Path::new(datatree::PWNED).exists(), "a target name was executed");
}

#[test]
fn mt_and_tar_read_the_tape_as_tapeop_wrote_it() {
    let rig = Rig::new(VstOptions::default(), false);
    let w = &rig.w;
    let targets: Vec<PathBuf> = [("alpha", 700_000), ("beta", 10), ("gamma", 300_000)]
        .iter()
        .map(|(name, size)| make_target(w, name, *size))
        .collect();
    rig.prepare(&targets);
    rig.run(&["archive", "--repeat"], 40);

    // tapeop leaves the head after the filemark of the last file it wrote:
    // N + 1 with the label at file 0, which is end of data.
    let n = targets.len() as i64;
    assert_eq!(rig.mt_position(), (n + 1, 0));
    assert!(rig.mt_bits().contains(&"EOF".to_string()), "{:?}", rig.mt_bits());
    rig.mt(&["eod"]);
    assert_eq!(rig.mt_position(), (n + 1, 0), "end of data is where tapeop stopped");
    assert!(rig.mt_bits().contains(&"EOD".to_string()), "{:?}", rig.mt_bits());

    for target in &targets {
        let (k, status) = backup_of(w, target);
        assert_eq!(status, "recorded");
        rig.mt(&["rewind"]);
        rig.mt(&["fsf", &k.to_string()]);
        assert_eq!(rig.mt_position(), (k, 0));
        let list = rig.tar(&["-tv"], w.root());
        let names: BTreeSet<String> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(|l| l.split_whitespace().last().unwrap_or_default().to_string())
            .collect();
        assert_eq!(names, members(target), "tape file {k}");

        rig.mt(&["rewind"]);
        rig.mt(&["fsf", &k.to_string()]);
        let out_dir = rig.path(&format!("x{k}"));
        fs::create_dir(&out_dir).unwrap();
        rig.tar(&["-x"], &out_dir);
        for file in ["readme.txt", "sub/data.bin"] {
            let got = datatree::md5_of(out_dir.join(rel(target)).join(file));
            assert_eq!(got, datatree::md5_of(target.join(file)), "tape file {k}: {file}");
        }
        assert_eq!(datatree::manifest(&out_dir.join(rel(target))), datatree::manifest(target));
    }

    // File 0 is the label.
    rig.mt(&["rewind"]);
    rig.mt(&["fsf", "0"]);
    assert_eq!(rig.mt_position(), (0, 0));
    let list = rig.tar(&["-t"], w.root());
    assert_eq!(String::from_utf8_lossy(&list.stdout), "TAPEOP-LABEL.txt\n");
    rig.mt(&["rewind"]);
    let label = String::from_utf8(rig.tar(&["-xO"], w.root()).stdout).unwrap();
    let id: String =
        w.sql().query_row("SELECT value FROM tapeop_meta WHERE key = 'catalogue_id'", [], |r| r.get(0)).unwrap();
    assert!(label.starts_with("tapeop tape label v1\ntape: T1\nserial: S1\n"), "{label}");
    assert_contains(&label, &format!("catalogue: {id}\n"));

    // tapeop finds its way from wherever tar left the head.
    rig.run(&["confirm", "--repeat"], 40);
    assert!(w.backups().iter().all(|(_, _, s)| s == "confirmed"), "{:?}", w.backups());
}

#[test]
fn drive_command_reports_the_drive_and_the_append_point() {
    let rig = Rig::new(VstOptions::default(), false);
    let w = &rig.w;
    rig.two_of_three_archived();
    let dev = rig.dev().display().to_string();

    let out = rig.run(&["drive"], 0);
    let expect = format!(
        "Drive:           {dev}\n\
         Loaded:          yes\n\
         Write-protected: no\n\
         File number:     3\n\
         Block number:    0\n\
         Block size:      variable\n\
         Flags:           EOF\n\
         Online tape:     \"T1\", next tape file 3: drive is at the append point\n"
    );
    let (head, proof) = out.split_at(expect.len().min(out.len()));
    assert_eq!(head, expect);
    // Then the drive's last proof (its time varies), then its health lines.
    let proof = &proof[..proof.find("\nCleaning:").map_or(proof.len(), |i| i + 1)];
    assert!(proof.starts_with("Last proof:      tape \"T1\" (serial S1) by archive at "), "{proof}");
    assert!(
        proof.ends_with(
            ": head left at file 3 block 0, position 6; end of data at file 3\n                 the head is still there: the next run trusts it and does not read the label again\n"
        ),
        "{proof}"
    );
    assert_eq!(rig.mt_position(), (3, 0), "drive does not move the head");

    rig.mt(&["rewind"]);
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "File number:     0\nBlock number:    0\n");
    assert_contains(&out, "Flags:           BOT\n");
    assert_contains(&out, "next tape file 3: drive is NOT at the append point");

    rig.mt(&["eod"]);
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "File number:     3\n");
    assert_contains(&out, "Flags:           EOF EOD\n");
    assert_contains(&out, "next tape file 3: drive is at the append point (end of data)");

    rig.mt(&["rewind"]);
    rig.mt(&["fsf", "1"]);
    rig.mt(&["fsr", "1"]);
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "File number:     1\nBlock number:    1\n");
    assert_contains(&out, "drive is NOT at the append point");

    rig.drive.set_write_protected(true);
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "Write-protected: yes\n");
    rig.drive.set_write_protected(false);

    // No tape online: the drive is still described.
    w.sql().execute("UPDATE tapes SET online = 0", []).unwrap();
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "Loaded:          yes\n");
    assert_contains(&out, "Catalogue:       no tape is online\n");

    // An empty drive is reported as such (the operator asked what it says).
    rig.drive.set_loaded(false);
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, &format!("Loaded:          no (tape drive {dev}: no tape loaded in the drive)"));
}

#[test]
fn drive_inside_the_tape_file_at_the_append_point_is_not_at_the_append_point() {
    let rig = Rig::new(VstOptions::default(), false);
    let w = &rig.w;
    rig.two_of_three_archived();
    // Another program's file after the catalogue's end of data (file 3).
    rig.mt(&["eod"]);
    let out = Command::new("tar")
        .current_dir(w.root())
        .args(["-b", "512", "-c", "-f"])
        .arg(rig.dev())
        .arg("list.txt")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    rig.mt(&["rewind"]);
    rig.mt(&["fsf", "3"]);
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "File number:     3\nBlock number:    0\n");
    assert_contains(&out, "next tape file 3: drive is at the append point\n");
    rig.mt(&["fsr", "1"]);
    assert_eq!(rig.mt_position(), (3, 1));
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "File number:     3\nBlock number:    1\n");
    assert_contains(&out, "next tape file 3: drive is NOT at the append point");
}

#[test]
fn refusals_leave_the_tape_and_the_catalogue_untouched() {
    let rig = Rig::new(VstOptions::default(), true);
    let w = &rig.w;
    let targets = vec![make_target(w, "a", 300_000), make_target(w, "b", 300_000)];
    rig.prepare(&targets);
    rig.run(&["archive"], 0);
    assert_eq!(backup_of(w, &targets[1]), (-1, "assigned".to_string()));
    let dev = rig.dev();
    let before = rig.snapshot();

    // The rewinding twin of the drive, named st0.
    let rewinding = rig.drive.rewinding_device_path();
    rig.conf_device(&rewinding, "");
    for args in [&["archive", "--repeat"][..], &["confirm", "1"], &["drive"]] {
        let out = rig.run(args, 1);
        let want =
            format!("{} is a rewinding device: every close would rewind; use {}", rewinding.display(), dev.display());
        assert_contains(&out, &want);
        rig.assert_unchanged(&before, "rewinding device");
    }
    rig.conf("");

    // A write-protected cartridge: refused at open, before the data host is asked.
    rig.drive.set_write_protected(true);
    let out = rig.run(&["archive", "--repeat"], 1);
    assert_contains(&out, &format!("tape drive {}: the tape is write-protected", dev.display()));
    rig.assert_unchanged(&before, "write-protected tape");
    rig.drive.set_write_protected(false);

    // No cartridge.
    rig.drive.set_loaded(false);
    for args in [&["archive", "--repeat"][..], &["confirm", "1"]] {
        let out = rig.run(args, 1);
        assert_contains(&out, &format!("tape drive {}: no tape loaded in the drive", dev.display()));
        rig.assert_unchanged(&before, "empty drive");
    }
    rig.drive.set_loaded(true);

    // Another program has the drive open.
    let holder = fs::File::open(&dev).unwrap();
    for args in [&["archive", "--repeat"][..], &["confirm", "1"], &["drive"]] {
        let out = rig.run(args, 1);
        assert_contains(&out, &format!("{} is busy: another program has the drive open", dev.display()));
        rig.assert_unchanged(&before, "busy drive");
    }
    drop(holder);

    // A regular file and a directory are not tape devices.
    let plain = rig.path("nst0");
    fs::write(&plain, b"not a tape").unwrap();
    let dir = rig.path("tapes");
    for (device, why) in [(&plain, "(it does not answer MTIOCGET"), (&dir, "(it is a directory)")] {
        rig.conf_device(device, "");
        let out = rig.run(&["archive", "--repeat"], 1);
        assert_contains(&out, &format!("{} is not a tape device {why}", device.display()));
        let out = rig.run(&["confirm", "1"], 1);
        assert_contains(&out, &format!("{} is not a tape device", device.display()));
        rig.assert_unchanged(&before, "not a tape device");
    }
    assert_eq!(fs::read(&plain).unwrap(), b"not a tape");

    // Back on the drive, the job carries on where it was.
    rig.conf("");
    rig.run(&["archive", "--repeat"], 40);
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(backup_of(w, &targets[1]), (2, "confirmed".to_string()));
}

#[test]
fn early_warning_in_a_target_marks_the_tape_full_and_the_next_tape_takes_it() {
    // The label and the small target take 3 records (768 KiB); the big one
    // crosses the early warning at 1.5 MiB.
    let opts = VstOptions { capacity: Some(1536 * KIB as u64), ..VstOptions::default() };
    let rig = Rig::new(opts, false);
    let w = &rig.w;
    let small = make_target(w, "a_small", 300_000);
    let big = make_target(w, "b_big", 3_000_000);
    rig.prepare(&[small.clone(), big.clone()]);

    let out = rig.run(&["archive", "--repeat"], 43);
    assert_contains(&out, "tape full (end of medium reached)");
    assert_contains(&out, "tape \"T1\" is now marked full; the target stays assigned");
    assert_eq!(backup_of(w, &small), (1, "recorded".to_string()));
    assert_eq!(backup_of(w, &big), (-1, "assigned".to_string()), "the partial file is not recorded");
    let recorded_info = w.count(&format!(
        "SELECT COUNT(*) FROM tapeop_backup_info i JOIN backups b ON b.id = i.backup_id JOIN targets t ON t.id = b.target_id WHERE t.name = '{}'",
        big.display()
    ));
    assert_eq!(recorded_info, 0, "nothing recorded for the target that did not fit");
    let last = rig.history().pop().unwrap();
    assert_eq!(last, ("archive".to_string(), 2, "tape full".to_string()));

    // On tape: label, the small target, and the partial big one, ended by a filemark.
    let sizes = rig.record_sizes();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert_eq!(sizes[..2], [vec![RECORD], vec![RECORD; 2]]);
    assert!(sizes[2].len() < 3_000_000 / RECORD, "only part of the big target: {sizes:?}");
    assert_eq!(vst::read_tap(&rig.drive.image_path()).unwrap().last(), Some(&TapItem::Filemark));

    // The reports say so, and nothing more is written to the tape.
    assert_eq!(tapes_row(w, "T1")[4], "full");
    assert_eq!(status_json(w)["tape"]["full"], Value::Bool(true));
    let before = rig.snapshot();
    let out = rig.run(&["archive", "--repeat"], 1);
    assert_contains(&out, "tape \"T1\" is full: nothing more is written to it (close it and open_tape a new one)");
    rig.assert_unchanged(&before, "archive on a full tape");

    // The operator confirms what is on it, closes it and goes on with T2.
    let out = rig.run(&["close_tape", "-y"], 1);
    assert_contains(&out, "tape \"T1\" has 1 recorded tape files not yet confirmed");
    rig.assert_unchanged(&before, "close_tape with unconfirmed files");
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(backup_of(w, &small), (1, "confirmed".to_string()));
    let out = rig.run(&["close_tape", "-y"], 0);
    assert_contains(&out, "Found 1 jobs to dissociate.");
    assert_eq!(tapes_row(w, "T1")[1..], [".", "S1", "1", "closed"]);

    let image_t1 = rig.image();
    w.run(&["open_tape", "T2", "--serial", "S2", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    assert_eq!(backup_of(w, &big), (-1, "assigned".to_string()));

    // T1 is still in the drive: a used tape is not taken for the new one.
    let before = rig.snapshot();
    let out = rig.run(&["archive", "--repeat"], 1);
    assert_contains(
        &out,
        &format!(
            "tape \"T2\" has nothing written in the catalogue, but {} holds 3 tape files: wrong tape, or a used one",
            rig.dev().display()
        ),
    );
    rig.assert_unchanged(&before, "T1 loaded for T2");

    let b = rig.load("B.tap", VstOptions::default());
    rig.run(&["archive", "--repeat"], 40);
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(backup_of(w, &big), (1, "confirmed".to_string()));
    let t2: i64 = w.count(&format!(
        "SELECT b.tape_id FROM backups b JOIN targets t ON t.id = b.target_id WHERE t.name = '{}'",
        big.display()
    ));
    assert_eq!(t2, w.count("SELECT id FROM tapes WHERE name = 'T2'"));
    assert_eq!(vst::tap_files(&b).unwrap().len(), 2, "T2: label and the big target");
    assert_eq!(fs::read(rig.path("tapes/A.tap")).unwrap(), image_t1, "T1 untouched");
}

#[test]
fn emulator_capacity_rehearses_tape_full() {
    let w = World::new();
    w.config_with("", "emulator_dir = emu", "emulator_capacity = 1M");
    let small = make_target(&w, "a_small", 100_000);
    let big = make_target(&w, "b_big", 2_000_000);
    let list = w.list("list.txt", &[small.clone(), big.clone()]);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);

    let out = w.run(&["archive", "--repeat"], 43);
    assert_contains(&stderr(&out), "tape \"T1\" is now marked full; the target stays assigned");
    assert_eq!(backup_of(&w, &small), (1, "recorded".to_string()));
    assert_eq!(backup_of(&w, &big), (-1, "assigned".to_string()));
    assert_eq!(tapes_row(&w, "T1")[4], "full");
    let out = w.run(&["archive"], 1);
    assert_contains(&stderr(&out), "tape \"T1\" is full");

    // Closing with a recorded, unconfirmed file takes --force.
    w.run(&["close_tape", "-y"], 1);
    let out = w.run(&["close_tape", "--force", "-y"], 0);
    assert_contains(&stdout(&out), "Found 1 jobs to dissociate.");
    fs::create_dir(w.root().join("emu2")).unwrap();
    w.config("", "emulator_dir = emu2");
    w.run(&["open_tape", "T2", "--serial", "S2", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    w.run(&["archive", "--repeat"], 40);
    w.run(&["confirm", "--repeat"], 40);
    assert_eq!(backup_of(&w, &big), (1, "confirmed".to_string()));

    // The closed tape can still be confirmed later.
    w.config("", "emulator_dir = emu");
    w.run(&["activate_tape", "T1"], 0);
    w.run(&["confirm", "--repeat"], 40);
    assert_eq!(backup_of(&w, &small), (1, "confirmed".to_string()));
}

#[test]
fn records_larger_than_the_first_read_buffer_are_read_after_enomem() {
    let rig = Rig::new(VstOptions::default(), false);
    let limits = rig.drive.limits();
    assert!(
        limits.max_record >= 1 << 20,
        "the virtual drive cannot take 1 MiB records here (fs.fuse.max_pages_limit): {limits:?}"
    );
    let w = &rig.w;
    let targets = vec![make_target(w, "a", 2_500_000), make_target(w, "b", 1_500_000)];
    rig.conf("block_size = 1M");
    rig.prepare(&targets);
    rig.run(&["archive", "--repeat"], 40);
    let sizes = rig.record_sizes();
    assert_eq!(sizes.len(), 3);
    assert!(sizes.iter().flatten().all(|&s| s == 1 << 20), "1 MiB records: {sizes:?}");

    rig.conf("block_size = 256K");
    let refused = rig.drive.enomem_reads();
    rig.run(&["confirm", "--repeat"], 40);
    assert!(rig.drive.enomem_reads() > refused, "the first 256 KiB read must have failed with ENOMEM");
    assert!(w.backups().iter().all(|(_, _, s)| s == "confirmed"), "{:?}", w.backups());
    let out = rig.run(&["confirm", "1", "--retry"], 0);
    assert_contains(&out, "Marking record as confirmed.");
}

#[test]
fn a_drive_that_stops_short_of_a_filemark_is_caught() {
    let rig = Rig::new(VstOptions::default(), false);
    let w = &rig.w;
    let targets = rig.two_of_three_archived();

    // confirm: positioning from the beginning spaces forward (MTFSF 2).
    rig.mt(&["rewind"]);
    let before = rig.snapshot();
    rig.drive.inject_fsf_short();
    let out = rig.run(&["confirm", "2"], 1);
    assert_contains(
        &out,
        &format!("{}: position mismatch: asked for file 2, drive reports file 1 block 0", rig.dev().display()),
    );
    assert_eq!(w.backups(), before.backups, "nothing marked");
    assert!(rig.image() == before.image);
    let last = rig.history().pop().unwrap();
    assert_eq!(last, ("confirm".to_string(), 2, "failed".to_string()));
    rig.run(&["confirm", "2"], 0);
    assert_eq!(backup_of(w, &targets[1]), (2, "confirmed".to_string()));

    // archive: proving the tape reads file 2 before writing file 3.
    rig.mt(&["rewind"]);
    let before = rig.snapshot();
    rig.drive.inject_fsf_short();
    let out = rig.run(&["archive"], 1);
    assert_contains(&out, "position mismatch: asked for file 2, drive reports file 1 block 0");
    rig.assert_unchanged(&before, "archive after a short spacing");
    rig.run(&["archive"], 0);
    assert_eq!(backup_of(w, &targets[2]), (3, "recorded".to_string()));
}

#[test]
fn a_wrong_tape_is_refused_and_the_override_writes_anyway() {
    let rig = Rig::new(VstOptions::default(), false);
    let w = &rig.w;
    let targets = rig.two_of_three_archived();
    let a = rig.drive.image_path();
    let image_a = rig.image();
    let files_a = vst::tap_files(&a).unwrap();
    assert_eq!(files_a.len(), 3);

    // A blank tape.
    rig.load("blank.tap", VstOptions::default());
    let before = rig.snapshot();
    let out = rig.run(&["archive"], 1);
    assert_contains(
        &out,
        "refusing to write: wrong tape: the loaded tape is blank, but the catalogue's tape \"T1\" holds tape files up to file 2; nothing was written (archive --override-tape-check writes anyway)",
    );
    rig.assert_unchanged(&before, "blank tape");
    assert!(rig.image().is_empty());

    // A tape named T1 too, but labelled for another catalogue.
    rig.load("other.tap", VstOptions::default());
    let other = World::new();
    let text =
        format!("[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n", rig.dev().display());
    fs::write(other.root().join("tape.conf"), text).unwrap();
    let theirs = make_target(&other, "theirs", 500);
    let list = other.list("list.txt", &[theirs]);
    other.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    other.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    other.run(&["-y", "assign"], 0);
    other.run(&["archive", "--repeat"], 40);
    let their_id: String =
        other.sql().query_row("SELECT value FROM tapeop_meta WHERE key = 'catalogue_id'", [], |r| r.get(0)).unwrap();
    let before = rig.snapshot();
    let out = rig.run(&["archive"], 1);
    assert_contains(
        &out,
        &format!(
            "wrong tape: the catalogue expects tape \"T1\" here, but the loaded tape's label says \"T1\" (catalogue {their_id})"
        ),
    );
    rig.assert_unchanged(&before, "another catalogue's tape");

    // T1 itself, with a file after the catalogue's end of data.
    let mut extra = files_a.clone();
    extra.push(vec![b"something else".to_vec()]);
    let d = rig.path("tapes/extra.tap");
    vst::write_tap_files(&d, &extra).unwrap();
    rig.load("extra.tap", VstOptions::default());
    let before = rig.snapshot();
    let out = rig.run(&["archive"], 1);
    assert_contains(
        &out,
        &format!(
            "the catalogue expects tape \"T1\" to end after file 2, but {} ends after file 3: catalogue out of step, or wrong tape",
            rig.dev().display()
        ),
    );
    rig.assert_unchanged(&before, "tape with an extra file");

    // The documented override writes at the catalogue's append point.
    let out = rig.run(&["archive", "--override-tape-check"], 0);
    assert_contains(&out, "--override-tape-check: writing tape file 3 without proving the tape.");
    assert_eq!(backup_of(w, &targets[2]), (3, "recorded".to_string()));
    let files = vst::tap_files(&d).unwrap();
    assert_eq!(files.len(), 4);
    assert_eq!(files[..3], files_a[..], "files 0 to 2 untouched");
    rig.run(&["confirm", "--repeat"], 40);
    assert!(w.backups().iter().all(|(_, _, s)| s == "confirmed"), "{:?}", w.backups());

    // The original tape A was never touched by any of this.
    assert_eq!(fs::read(&a).unwrap(), image_a);

    // The override cannot write past the end of data of a blank tape: the
    // archive fails (42), nothing is written or recorded.
    let late = make_target(w, "d", 4000);
    let list = w.list("late.txt", std::slice::from_ref(&late));
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["-y", "assign"], 0);
    rig.load("blank.tap", VstOptions::default());
    let out = rig.run(&["archive", "--override-tape-check"], 42);
    assert_contains(&out, "cannot write file 4: end of data is at file 0 block 0");
    assert_contains(&out, "nothing was recorded, the target stays assigned");
    assert!(rig.image().is_empty(), "the blank tape stays blank");
    assert_eq!(backup_of(w, &late), (-1, "assigned".to_string()));
    rig.load("extra.tap", VstOptions::default());
    rig.run(&["archive"], 0);
    assert_eq!(backup_of(w, &late), (4, "recorded".to_string()));
}

#[test]
fn a_duplicated_config_key_is_not_silently_read_as_its_first_value() {
    // The old tool (Python 2 ConfigParser) took the last value of a key given
    // twice; World::config writes `tape_device = /dev/nst0` before the drive
    // line, as an operator's edited tape.conf might.
    let rig = Rig::new(VstOptions::default(), false);
    rig.w.config("", &format!("tape_device = {}", rig.dev().display()));
    rig.w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    let out = rig.w.output(&["drive"]);
    let text = stdout(&out) + &stderr(&out);
    let used_last =
        out.status.code() == Some(0) && text.contains(&format!("Drive:           {}\n", rig.dev().display()));
    let named_duplicate =
        out.status.code() == Some(1) && text.contains("tape_device") && !text.contains("/dev/nst0 does not exist");
    assert!(used_last || named_duplicate, "tape.conf with tape_device twice: {:?}\n{text}", out.status);
}

#[test]
fn drive_describes_the_drive_before_any_catalogue_exists() {
    // Checking the drive is the first thing an operator does on a new
    // machine, before `open_tape` creates the catalogue.
    let rig = Rig::new(VstOptions::default(), false);
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, &format!("Drive:           {}\nLoaded:          yes\n", rig.dev().display()));
    assert!(!rig.path("tape.sqlite").exists(), "drive creates no catalogue");
}

#[test]
fn a_failed_archive_leaves_a_tape_file_that_the_next_archive_writes_over() {
    let rig = Rig::new(VstOptions::default(), false);
    let w = &rig.w;
    let targets = vec![make_target(w, "a", 400_000), make_target(w, "b", 2000)];
    rig.prepare(&targets);
    fs::write(targets[0].join("readme.txt"), "changed after import\n").unwrap();

    let out = rig.run(&["archive", "--repeat"], 42);
    assert_contains(&out, "md5 mismatch");
    assert_contains(&out, "nothing was recorded, the target stays assigned");
    assert_eq!(backup_of(w, &targets[0]), (-1, "assigned".to_string()));
    assert_eq!(rig.record_sizes().len(), 2, "the label and the failed attempt at file 1");
    assert_eq!(rig.history().pop().unwrap(), ("archive".to_string(), 1, "failed".to_string()));

    // Again: the failed file is written over, not appended to.
    let out = rig.run(&["archive"], 42);
    assert_contains(&out, "Tape file 1 holds a failed archive attempt; writing over it.");
    assert_eq!(rig.record_sizes().len(), 2);

    let list = w.root().join("list.txt");
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str(), OsStr::new("--rescan")], 0);
    let out = rig.run(&["archive", "--repeat"], 40);
    assert_contains(&out, "Tape file 1 holds a failed archive attempt; writing over it.");
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(backup_of(w, &targets[0]), (1, "confirmed".to_string()));
    assert_eq!(backup_of(w, &targets[1]), (2, "confirmed".to_string()));
    assert_eq!(rig.record_sizes().len(), 3);
    assert_eq!(rig.mt_position(), (3, 0));
}

#[test]
fn end_of_data_without_a_block_number_as_linux_st_reports_it() {
    let rig = Rig::new(VstOptions::default(), false);
    rig.drive.set_linux_eod_position(true);
    let w = &rig.w;
    let targets = vec![make_target(w, "a", 300_000), make_target(w, "b", 2000)];
    rig.prepare(&targets);
    rig.mt(&["eod"]);
    assert_eq!(rig.mt_position(), (0, -1), "blank tape");
    rig.run(&["archive", "--repeat"], 40);
    assert_eq!(rig.mt_position(), (3, 0), "after the last filemark");

    rig.mt(&["eod"]);
    assert_eq!(rig.mt_position(), (3, -1));
    let bits = rig.mt_bits();
    assert!(bits.contains(&"EOD".to_string()) && !bits.contains(&"EOF".to_string()), "{bits:?}");
    let out = rig.run(&["drive"], 0);
    assert_contains(&out, "File number:     3\nBlock number:    unknown\n");
    assert_contains(&out, "Flags:           EOD\n");
    assert_contains(&out, "next tape file 3: drive is at the append point (end of data)");

    // Proving the tape counts its files from there; confirm seeks back.
    let late = make_target(w, "c", 5000);
    let list = w.list("late.txt", std::slice::from_ref(&late));
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["-y", "assign"], 0);
    rig.run(&["archive"], 0);
    assert_eq!(backup_of(w, &late), (3, "recorded".to_string()));
    rig.mt(&["eod"]);
    rig.run(&["confirm", "--repeat"], 40);
    assert!(w.backups().iter().all(|(_, _, s)| s == "confirmed"), "{:?}", w.backups());

    // A catalogue out of step is still caught.
    let mut files = rig.drive.files().unwrap();
    files.pop();
    let short = rig.path("tapes/short.tap");
    vst::write_tap_files(&short, &files).unwrap();
    rig.load("short.tap", VstOptions::default());
    let d = make_target(w, "d", 100);
    let list = w.list("d.txt", std::slice::from_ref(&d));
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["-y", "assign"], 0);
    let before = rig.snapshot();
    let out = rig.run(&["archive"], 1);
    assert_contains(&out, "to end after file 3, but");
    assert_contains(&out, "holds only 3 tape files");
    rig.assert_unchanged(&before, "a tape that lacks the last file");
}

#[test]
fn a_target_ending_exactly_at_early_warning_is_recorded_and_the_next_one_is_not() {
    // Label (1 record) and the first target (2 records) end exactly at the
    // early warning: that target is whole on tape; the next write fails.
    let opts = VstOptions { capacity: Some(3 * RECORD as u64), ..VstOptions::default() };
    let rig = Rig::new(opts, false);
    let w = &rig.w;
    let first = make_target(w, "a_first", 300_000);
    let second = make_target(w, "b_second", 1000);
    rig.prepare(&[first.clone(), second.clone()]);
    rig.run(&["archive", "--repeat"], 43);
    assert_eq!(backup_of(w, &first), (1, "recorded".to_string()));
    assert_eq!(backup_of(w, &second), (-1, "assigned".to_string()));
    let sizes = rig.record_sizes();
    assert_eq!(sizes[..2], [vec![RECORD], vec![RECORD; 2]], "{sizes:?}");
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(backup_of(w, &first), (1, "confirmed".to_string()));
}

#[test]
fn assign_refuses_a_tape_marked_full() {
    // archive refuses a full tape; assign must not give it more targets.
    let w = World::new();
    w.config_with("", "emulator_dir = emu", "emulator_capacity = 1M");
    let small = make_target(&w, "a_small", 100_000);
    let big = make_target(&w, "b_big", 2_000_000);
    let list = w.list("list.txt", &[small, big]);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    w.run(&["archive", "--repeat"], 43);
    assert_eq!(tapes_row(&w, "T1")[4], "full");

    let later = make_target(&w, "c_later", 1000);
    let list = w.list("later.txt", std::slice::from_ref(&later));
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    let out = w.output(&["-y", "assign"]);
    let text = stdout(&out) + &stderr(&out);
    assert!(matches!(out.status.code(), Some(1 | 43)), "assign to a full tape: {:?}\n{text}", out.status);
    assert_contains(&text, "full");
    let unassigned = w.count(&format!(
        "SELECT COUNT(*) FROM targets t WHERE t.name = '{}' AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.target_id = t.id)",
        later.display()
    ));
    assert_eq!(unassigned, 1, "the new target stays unassigned: {:?}", w.backups());
}
