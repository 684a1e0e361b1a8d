//! The virtual st drive (tests/support/vst.rs) behaves like a Linux st
//! device in variable-block mode, checked with the real tools: `mt` (mt-st)
//! for positioning and status, `dd` and GNU `tar` for records, and plain
//! `read`/`write` calls for exact errno values. These tests need FUSE
//! (/dev/fuse, root) and `mt`; they fail, never skip, when either is missing.

mod support;

use support::{vst, world};

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vst::{TapItem, VirtualDrive, VstOptions, mt_position};
use world::describe;

/// Panic with a clear message when the tests cannot run here.
fn require_tools() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: these tests need FUSE (apt-get install fuse3; modprobe fuse)"
    );
    for tool in ["mt", "dd", "tar"] {
        let found =
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
        assert!(found, "`{tool}` is not installed: these tests need it (mt comes from mt-st)");
    }
}

/// A scratch directory with a virtual drive over `tape.tap` in it. Tests
/// run one at a time (see `vst::serial`): they hold the drive open while
/// other tests spawn `mt`, `dd` and `tar`.
struct Rig {
    drive: VirtualDrive,
    dir: tempfile::TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Rig {
    fn new(opts: VstOptions) -> Rig {
        Self::with_tape(&[], opts)
    }

    fn with_tape(items: &[TapItem], opts: VstOptions) -> Rig {
        // Lock first: require_tools spawns processes too.
        let serial = vst::serial();
        require_tools();
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("tape.tap");
        vst::write_tap(&image, items).expect("writing the tape image");
        let drive = VirtualDrive::mount(&image, opts).expect("mounting the virtual drive");
        Rig { drive, dir, _serial: serial }
    }

    fn dev(&self) -> PathBuf {
        self.drive.device_path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mt -f DEV args...`, which must succeed; returns its stdout.
    fn mt(&self, args: &[&str]) -> String {
        let out = self.mt_raw(args);
        assert!(out.status.success(), "mt {args:?} failed: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn mt_raw(&self, args: &[&str]) -> Output {
        Command::new("mt").arg("-f").arg(self.dev()).args(args).output().expect("running mt")
    }

    /// File and block number as `mt status` prints them.
    fn mt_position(&self) -> (i64, i64) {
        let status = self.mt(&["status"]);
        mt_position(&status).unwrap_or_else(|| panic!("no position in mt status:\n{status}"))
    }

    /// The general status bit names `mt status` lists.
    fn mt_bits(&self) -> Vec<String> {
        let status = self.mt(&["status"]);
        let line = status.lines().last().unwrap_or_default();
        line.split_whitespace().map(str::to_string).collect()
    }

    fn open_rw(&self) -> File {
        OpenOptions::new().read(true).write(true).open(self.dev()).expect("opening the drive")
    }

    fn open_ro(&self) -> File {
        File::open(self.dev()).expect("opening the drive")
    }

    fn items(&self) -> Vec<TapItem> {
        vst::read_tap(&self.drive.image_path()).expect("reading the image")
    }

    fn record_sizes(&self) -> Vec<Vec<usize>> {
        let files = self.drive.files().expect("reading the image");
        files.iter().map(|f| f.iter().map(Vec::len).collect()).collect()
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", describe(&out));
    out
}

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or_else(|| panic!("not an OS error: {e}"))
}

fn file_of(records: &[Vec<u8>]) -> Vec<TapItem> {
    let mut items: Vec<TapItem> = records.iter().cloned().map(TapItem::Record).collect();
    items.push(TapItem::Filemark);
    items
}

#[test]
fn dd_writes_one_record_per_write_and_close_adds_a_filemark() {
    let rig = Rig::new(VstOptions::default());
    let input = pattern(3 * 262_144 + 100_000, 1);
    std::fs::write(rig.path("in"), &input).unwrap();
    assert_eq!(rig.mt_position(), (0, 0));
    assert!(rig.mt_bits().contains(&"BOT".to_string()));
    run(Command::new("dd")
        .arg(format!("if={}", rig.path("in").display()))
        .arg(format!("of={}", rig.dev().display()))
        .arg("bs=256k"));
    assert_eq!(rig.record_sizes(), vec![vec![262_144, 262_144, 262_144, 100_000]]);
    assert_eq!(rig.mt_position(), (1, 0));
    assert!(rig.mt_bits().contains(&"EOF".to_string()));
    rig.mt(&["rewind"]);
    let back = run(Command::new("dd").arg(format!("if={}", rig.dev().display())).arg("bs=1M"));
    assert_eq!(back.stdout, input);
    assert_eq!(rig.mt_position(), (1, 0), "dd stops after reading the filemark");
}

#[test]
fn tar_archives_listed_after_rewind_and_fsf() {
    let rig = Rig::new(VstOptions::default());
    let tree = rig.path("tree");
    for (dir, file, len) in [("a", "one", 10), ("a", "two", 400_000), ("b", "three", 5)] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
        std::fs::write(tree.join(dir).join(file), pattern(len, len as u32)).unwrap();
    }
    for dir in ["a", "b"] {
        run(Command::new("tar").current_dir(&tree).args(["-b", "512", "-cf"]).arg(rig.dev()).arg(dir));
    }
    assert_eq!(rig.mt_position(), (2, 0));
    let sizes = rig.record_sizes();
    assert_eq!(sizes.len(), 2);
    assert!(sizes.iter().flatten().all(|&s| s == 262_144), "tar -b 512 writes 256 KiB records: {sizes:?}");
    rig.mt(&["rewind"]);
    rig.mt(&["fsf", "1"]);
    assert_eq!(rig.mt_position(), (1, 0));
    let list = run(Command::new("tar").args(["-b", "512", "-tf"]).arg(rig.dev()));
    assert_eq!(String::from_utf8_lossy(&list.stdout), "b/\nb/three\n");
    rig.mt(&["rewind"]);
    let list = run(Command::new("tar").args(["-b", "512", "-tvf"]).arg(rig.dev()));
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| l.split_whitespace().last().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["a/", "a/one", "a/two"]);
    let out = rig.path("out");
    std::fs::create_dir(&out).unwrap();
    rig.mt(&["rewind"]);
    run(Command::new("tar").current_dir(&out).args(["-b", "512", "-xf"]).arg(rig.dev()));
    assert_eq!(std::fs::read(out.join("a/two")).unwrap(), pattern(400_000, 400_000));
}

#[test]
fn short_read_buffer_fails_with_enomem_and_moves_past_the_record() {
    let records = vec![pattern(300_000, 1), pattern(300_000, 2)];
    let rig = Rig::with_tape(&file_of(&records), VstOptions::default());
    let out = Command::new("dd")
        .arg(format!("if={}", rig.dev().display()))
        .args(["bs=256k", "count=1", "of=/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot allocate memory"), "{}", describe(&out));
    assert_eq!(rig.mt_position(), (0, 1), "the head moved past the record");
    rig.mt(&["bsr", "1"]);
    let mut f = rig.open_ro();
    let mut small = vec![0u8; 299_999];
    assert_eq!(errno(&f.read(&mut small).unwrap_err()), libc::ENOMEM);
    let mut exact = vec![0u8; 300_000];
    assert_eq!(f.read(&mut exact).unwrap(), 300_000);
    assert_eq!(exact, records[1]);
}

#[test]
fn end_of_data_reads_zero_then_eio_and_fsf_into_blank_tape_fails() {
    let rig = Rig::with_tape(&file_of(&[pattern(1000, 7)]), VstOptions::default());
    let mut buf = vec![0u8; 1 << 20];
    {
        let mut f = rig.open_ro();
        assert_eq!(f.read(&mut buf).unwrap(), 1000);
        assert_eq!(f.read(&mut buf).unwrap(), 0, "the filemark");
        assert_eq!(f.read(&mut buf).unwrap(), 0, "end of data, first read");
        assert_eq!(errno(&f.read(&mut buf).unwrap_err()), libc::EIO, "end of data, second read");
    }
    rig.mt(&["rewind"]);
    rig.mt(&["eod"]);
    assert_eq!(rig.mt_position(), (1, 0));
    assert!(rig.mt_bits().contains(&"EOD".to_string()), "{:?}", rig.mt_bits());
    {
        let mut f = rig.open_ro();
        assert_eq!(errno(&f.read(&mut buf).unwrap_err()), libc::EIO, "read after MTEOM");
    }
    rig.mt(&["rewind"]);
    let out = rig.mt_raw(&["fsf", "3"]);
    assert!(!out.status.success(), "fsf into blank tape must fail: {}", describe(&out));
    assert_eq!(rig.mt_position(), (1, 0), "left at end of data");
}

#[test]
fn a_child_closing_an_inherited_descriptor_writes_no_filemark() {
    let rig = Rig::new(VstOptions::default());
    let mut f = rig.open_rw();
    assert_eq!(f.write(b"first").unwrap(), 5);
    // The child inherits the descriptor and its exec closes it (CLOEXEC):
    // st ignores such closes (other references remain), so must the drive.
    run(&mut Command::new("true"));
    assert_eq!(f.write(b"second").unwrap(), 6);
    drop(f);
    assert_eq!(rig.items(), file_of(&[b"first".to_vec(), b"second".to_vec()]));
}

#[test]
fn writing_in_the_middle_truncates_the_rest_of_the_tape() {
    let mut items = file_of(&[pattern(10, 1)]);
    items.extend(file_of(&[pattern(20, 2)]));
    items.extend(file_of(&[pattern(30, 3)]));
    let rig = Rig::with_tape(&items, VstOptions::default());
    rig.mt(&["fsf", "1"]);
    {
        let mut f = rig.open_rw();
        assert_eq!(f.write(b"new second file").unwrap(), 15);
    }
    let mut expect = file_of(&[pattern(10, 1)]);
    expect.extend(file_of(&[b"new second file".to_vec()]));
    assert_eq!(rig.items(), expect);
    assert_eq!(rig.mt_position(), (2, 0));
}

#[test]
fn mt_spacing_matches_st() {
    let mut items = Vec::new();
    for f in 0..4 {
        items.extend(file_of(&[pattern(100, f), pattern(200, f + 10)]));
    }
    let rig = Rig::with_tape(&items, VstOptions::default());
    rig.mt(&["fsf", "3"]);
    assert_eq!(rig.mt_position(), (3, 0));
    rig.mt(&["bsf", "1"]);
    assert_eq!(rig.mt_position(), (2, -1), "MTBSF leaves the block number unknown");
    rig.mt(&["bsfm", "1"]);
    assert_eq!(rig.mt_position(), (2, 0), "MTBSFM lands at the start of the file");
    rig.mt(&["fsr", "2"]);
    assert_eq!(rig.mt_position(), (2, 2));
    rig.mt(&["bsr", "1"]);
    assert_eq!(rig.mt_position(), (2, 1));
    let mut f = rig.open_ro();
    let mut buf = vec![0u8; 4096];
    assert_eq!(f.read(&mut buf).unwrap(), 200);
    assert_eq!(&buf[..200], pattern(200, 12).as_slice());
    drop(f);
    rig.mt(&["eod"]);
    assert_eq!(rig.mt_position(), (4, 0));
    rig.mt(&["weof", "2"]);
    assert_eq!(rig.mt_position(), (6, 0));
    assert_eq!(rig.record_sizes().len(), 6);
    let tell = rig.mt(&["tell"]);
    assert_eq!(tell.trim(), "At block 14.", "8 records and 6 filemarks before the head");
}

#[test]
fn rewinding_twin_rewinds_on_close() {
    let rig = Rig::with_tape(&file_of(&[pattern(10, 1)]), VstOptions::default());
    run(Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", rig.drive.rewinding_device_path().display()))
        .args(["bs=4k", "count=1", "conv=notrunc"]));
    assert_eq!(rig.mt_position(), (0, 0));
    assert_eq!(rig.record_sizes(), vec![vec![4096]]);
}

#[test]
fn write_protected_tape_refuses_writers() {
    let records = vec![pattern(500, 3)];
    let rig = Rig::with_tape(&file_of(&records), VstOptions { write_protected: true, ..Default::default() });
    let err = OpenOptions::new().write(true).open(rig.dev()).unwrap_err();
    assert_eq!(errno(&err), libc::EROFS);
    assert!(rig.mt_bits().contains(&"WR_PROT".to_string()), "{:?}", rig.mt_bits());
    let out = rig.mt_raw(&["weof", "1"]);
    assert!(!out.status.success(), "mt weof on a protected tape: {}", describe(&out));
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(rig.dev())
        .expect("O_NONBLOCK opens a protected tape for writing");
    assert_eq!(errno(&f.write(b"x").unwrap_err()), libc::EACCES);
    let mut buf = vec![0u8; 4096];
    assert_eq!(f.read(&mut buf).unwrap(), 500, "reading still works");
    drop(f);
    assert_eq!(rig.items(), file_of(&records), "the tape is unchanged");
}

#[test]
fn early_warning_gives_enospc_then_alternates() {
    let rig = Rig::new(VstOptions { capacity: Some(1_000_000), ..Default::default() });
    let record = pattern(262_144, 5);
    let mut f = rig.open_rw();
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(match f.write(&record) {
            Ok(n) => n as i32,
            Err(e) => -errno(&e),
        });
    }
    let enospc = -libc::ENOSPC;
    assert_eq!(outcomes, [262_144, 262_144, 262_144, 262_144, enospc, 262_144, enospc, 262_144]);
    drop(f);
    assert_eq!(rig.record_sizes(), vec![vec![262_144; 6]]);
    rig.mt(&["eod"]);
    assert!(rig.mt_bits().contains(&"EOT".to_string()), "{:?}", rig.mt_bits());
}

#[test]
fn a_second_open_is_busy() {
    let rig = Rig::new(VstOptions::default());
    let first = rig.open_ro();
    let err = File::open(rig.dev()).unwrap_err();
    assert_eq!(errno(&err), libc::EBUSY);
    let out = rig.mt_raw(&["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Device or resource busy"), "{}", describe(&out));
    drop(first);
    assert_eq!(rig.mt_position(), (0, 0), "free again after close");
}

#[test]
fn empty_drive_reports_door_open() {
    let rig = Rig::new(VstOptions { loaded: false, ..Default::default() });
    let err = File::open(rig.dev()).unwrap_err();
    assert_eq!(errno(&err), libc::ENOMEDIUM);
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(rig.dev())
        .expect("O_NONBLOCK opens an empty drive");
    assert!(f.as_raw_fd() >= 0);
    drop(f);
    rig.drive.set_loaded(true);
    assert_eq!(rig.mt_position(), (0, 0));
    rig.mt(&["offline"]);
    // mt-st opens with O_NONBLOCK for status: an empty drive shows DR_OPEN.
    assert_eq!(rig.mt_position(), (-1, -1));
    assert!(rig.mt_bits().contains(&"DR_OPEN".to_string()), "{:?}", rig.mt_bits());
    assert!(!rig.mt_bits().contains(&"ONLINE".to_string()), "{:?}", rig.mt_bits());
    let out = rig.mt_raw(&["rewind"]);
    assert!(!out.status.success(), "rewind with no tape: {}", describe(&out));
}

#[test]
fn records_up_to_max_record_survive_whole_from_unaligned_buffers() {
    let rig = Rig::new(VstOptions::default());
    let max = rig.drive.limits().max_record;
    assert!(max >= 1_044_480, "limits: {:?}", rig.drive.limits());
    let record = pattern(max + 1, 9);
    {
        let mut f = rig.open_rw();
        // Start one byte into the allocation: the buffer is not page-aligned.
        assert_eq!(f.write(&record[1..]).unwrap(), max);
        assert_eq!(f.write(&record[1..max]).unwrap(), max - 1);
        let err = f.write(&record).unwrap_err();
        assert_eq!(errno(&err), libc::EINVAL, "a record above the bound is refused, not split");
    }
    assert_eq!(rig.record_sizes(), vec![vec![max, max - 1]]);
    rig.mt(&["rewind"]);
    let mut f = rig.open_ro();
    let mut buf = vec![0u8; (4 << 20) + 1];
    assert_eq!(f.read(&mut buf[1..]).unwrap(), max, "a large buffer gets exactly one record");
    assert_eq!(&buf[1..=max], &record[1..]);
    assert_eq!(f.read(&mut buf[1..]).unwrap(), max - 1);
    assert_eq!(f.read(&mut buf[1..]).unwrap(), 0);
}

#[test]
fn without_raising_the_page_limit_the_bound_follows_it() {
    let opts = VstOptions { max_record: 4 << 20, raise_page_limit: false, ..Default::default() };
    let rig = Rig::new(opts);
    let limits = rig.drive.limits();
    let sysctl = std::fs::read_to_string(vst::MAX_PAGES_LIMIT_SYSCTL).expect("reading the sysctl");
    let pages: usize = sysctl.trim().parse().unwrap();
    assert_eq!(limits.max_pages_limit, pages);
    assert_eq!(limits.max_pages, pages.min((4 << 20) / limits.page_size + 1));
    assert_eq!(limits.max_record, (4 << 20).min((limits.max_pages - 1) * limits.page_size));
    let max = limits.max_record;
    let record = pattern(max + 2, 4);
    let mut f = rig.open_rw();
    assert_eq!(f.write(&record[1..=max]).unwrap(), max);
    assert_eq!(errno(&f.write(&record[1..]).unwrap_err()), libc::EINVAL);
    drop(f);
    assert_eq!(rig.record_sizes(), vec![vec![max]]);
}

#[test]
fn image_round_trip_and_odd_lengths() {
    let items = vec![
        TapItem::Record(pattern(3, 1)),
        TapItem::Record(pattern(4, 2)),
        TapItem::Filemark,
        TapItem::Filemark,
        TapItem::Record(pattern(1, 3)),
    ];
    let rig = Rig::with_tape(&items, VstOptions::default());
    let raw = std::fs::read(rig.drive.image_path()).unwrap();
    // 3-byte record: 4 + 3 + 1 pad + 4; 4-byte: 12; two filemarks: 8; 1-byte: 10.
    assert_eq!(raw.len(), 12 + 12 + 8 + 10);
    assert_eq!(&raw[..4], &3u32.to_le_bytes());
    assert_eq!(&raw[8..12], &3u32.to_le_bytes());
    assert_eq!(rig.items(), items);
    let mut f = rig.open_rw();
    let mut buf = vec![0u8; 16];
    assert_eq!(f.read(&mut buf).unwrap(), 3);
    assert_eq!(f.write(b"xyz").unwrap(), 3);
    drop(f);
    let expect = vec![TapItem::Record(pattern(3, 1)), TapItem::Record(b"xyz".to_vec()), TapItem::Filemark];
    assert_eq!(rig.items(), expect);
    assert_eq!(vst::tap_files(&rig.drive.image_path()).unwrap(), vec![vec![pattern(3, 1), b"xyz".to_vec()]]);
}

#[test]
fn lseek_is_refused_so_tar_reads_instead_of_seeking() {
    let rig = Rig::with_tape(&file_of(&[pattern(10, 1)]), VstOptions::default());
    let mut f = rig.open_ro();
    use std::io::Seek;
    let err = f.seek(std::io::SeekFrom::Current(4096)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSeekable, "{err}");
}
