//! `block_size` is bounded: a size no drive can write as one record (a
//! variable-length SCSI block is at most 16,777,215 bytes) is refused when
//! the config is read; a size the drive itself refuses fails the archive at
//! the first record, naming the drive's limit; and a tape file whose records
//! the drive counted differently from those written (a record split on its
//! way to the tape) fails the archive with exit 42, recording nothing.
//!
//! The drive tests need FUSE (/dev/fuse, root) for the virtual st drive of
//! tests/support/vst.rs, and hold `vst::serial()` for their whole body.

mod support;

use support::{vst, world};

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::sync::MutexGuard;

use vst::{VirtualDrive, VstOptions};
use world::{World, stderr, stdout};

/// A world whose tape.conf names the virtual drive, plus `extra` lines.
struct Rig {
    drive: VirtualDrive,
    w: World,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    fn new(extra: &str) -> Rig {
        let serial = vst::serial();
        let w = World::new();
        let drive = VirtualDrive::mount(&w.root().join("A.tap"), VstOptions::default()).expect("mounting the drive");
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n{extra}\n",
            drive.device_path().display()
        );
        fs::write(w.root().join("tape.conf"), text).unwrap();
        Rig { drive, w, _serial: serial }
    }

    /// Import `targets`, open T1 online and assign them.
    fn prepare(&self, targets: &[PathBuf]) {
        let list = self.w.list("list.txt", targets);
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        self.w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
        self.w.run(&["-y", "assign"], 0);
    }

    fn history(&self) -> Vec<(i64, String)> {
        let conn = self.w.sql();
        let mut stmt = conn.prepare("SELECT file_number, outcome FROM tapeop_history ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    }
}

fn target(w: &World, name: &str, size: usize) -> PathBuf {
    let dir = w.data().join(name);
    fs::create_dir_all(&dir).unwrap();
    let content: Vec<u8> = (0..size).map(|i| (i * 7 + name.len()) as u8).collect();
    fs::write(dir.join("data.bin"), content).unwrap();
    dir
}

#[test]
fn a_block_size_no_drive_can_write_as_one_record_is_refused_when_the_config_is_read() {
    let w = World::new();
    for (size, code) in [("16M", 1), ("16776705", 1), ("16776704", 0)] {
        w.config_with("", "emulator_dir = emu", &format!("block_size = {size}"));
        let out = w.output(&["drive"]);
        assert_eq!(out.status.code(), Some(code), "block_size = {size}: {}", stderr(&out));
        if code == 0 {
            continue;
        }
        let err = stderr(&out);
        let want = if size == "16M" {
            "tapeop: config file tape.conf: block_size = 16777216 is larger than any tape drive writes as one \
             record (a SCSI variable-length block is at most 16777215 bytes): use at most 16776704; 256K (the \
             default) to 1M suit LTO drives\n"
        } else {
            "tapeop: config file tape.conf: block_size = 16776705 is larger than any tape drive writes as one record"
        };
        assert!(err.starts_with(want), "{err}");
    }
    assert!(!w.root().join("tape.sqlite").exists(), "nothing created");
}

#[test]
fn a_record_larger_than_the_drive_takes_is_refused_at_the_first_record_naming_the_limit() {
    let rig = Rig::new("block_size = 2M");
    assert!(rig.drive.limits().max_record < 2 << 20, "the virtual drive takes records of at most 1 MiB");
    let w = &rig.w;
    let a = target(w, "a", 3000);
    rig.prepare(std::slice::from_ref(&a));
    let out = w.run(&["archive"], 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "the drive refused a 2097152-byte record: it is larger than the largest block the drive takes \
             (its READ BLOCK LIMITS, which st logs as \"Block limits\" in the kernel log when a tape is loaded); \
             lower block_size in tape.conf"
        ),
        "{err}"
    );
    assert_eq!(rig.drive.files().unwrap(), Vec::<Vec<Vec<u8>>>::new(), "nothing on tape");
    assert_eq!(w.backups(), vec![(a.display().to_string(), -1, "assigned".to_string())]);

    // With a block size the drive takes, the same tape is labelled and written.
    let conf = fs::read_to_string(w.root().join("tape.conf")).unwrap().replace("block_size = 2M", "block_size = 512K");
    fs::write(w.root().join("tape.conf"), conf).unwrap();
    w.run(&["archive"], 0);
    assert_eq!(w.backups(), vec![(a.display().to_string(), 1, "recorded".to_string())]);
    let sizes: Vec<Vec<usize>> = rig.drive.files().unwrap().iter().map(|f| f.iter().map(Vec::len).collect()).collect();
    assert_eq!(sizes, vec![vec![512 * 1024], vec![512 * 1024]]);
}

#[test]
fn records_split_on_the_way_to_the_tape_fail_the_archive_and_record_nothing() {
    let rig = Rig::new("");
    let w = &rig.w;
    let (a, b) = (target(w, "a", 1000), target(w, "b", 300_000));
    rig.prepare(&[a.clone(), b.clone()]);
    w.run(&["archive"], 0);

    // Every 256 KiB write now lands as two records, as when a transport
    // splits a write larger than it carries whole.
    rig.drive.split_writes_above(Some(100_000));
    let out = w.run(&["archive"], 42);
    let err = stderr(&out);
    let want = format!(
        "tape file 2: {} counts 4 records but 2 records of 262144 bytes were written: the records did not reach \
         the tape as written (block_size 262144 is more than this drive path carries as one record); lower \
         block_size in tape.conf",
        rig.drive.device_path().display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("nothing was recorded, the target stays assigned"), "{err}");
    assert!(!stdout(&out).contains("Marking record as archived."), "{}", stdout(&out));
    assert_eq!(rig.history(), vec![(0, "ok".to_string()), (1, "ok".to_string()), (2, "failed".to_string())]);
    let backups = w.backups();
    assert!(backups.contains(&(b.display().to_string(), -1, "assigned".to_string())), "{backups:?}");
    let sizes: Vec<usize> = rig.drive.files().unwrap()[2].iter().map(Vec::len).collect();
    assert_eq!(sizes, [100_000, 162_144, 100_000, 162_144], "the split file, ended by a filemark");

    // With whole records again, the next archive writes over the failed file.
    rig.drive.split_writes_above(None);
    w.run(&["archive"], 0);
    assert!(w.backups().contains(&(b.display().to_string(), 2, "recorded".to_string())));
    w.run(&["confirm", "--repeat"], 40);
    assert_eq!(w.count("SELECT COUNT(*) FROM backups WHERE status = 'confirmed'"), 2);
}
