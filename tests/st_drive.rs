//! The st drive (`tapeop::drive::st`) against the virtual st drive over
//! FUSE (tests/support/vst.rs): positioning by tape file, reading records
//! of any size, writing and truncating, early warning, and the refusals
//! (rewinding devices, non-tape files, no tape, write-protect, busy).
//! These need FUSE (/dev/fuse) and fail, never skip, without it.

mod support;

use std::path::Path;

use support::vst::{self, VirtualDrive, VstOptions};
use tapeop::drive::st::{MIN_READ_BUFFER, StDrive};
use tapeop::drive::{Access, Drive, DriveError, DriveStatus};

/// `n` records of `size` bytes, each filled with a byte naming file and record.
fn records(file: u8, n: u8, size: usize) -> Vec<Vec<u8>> {
    (0..n).map(|r| vec![file.wrapping_mul(16).wrapping_add(r); size]).collect()
}

/// A tempdir and a virtual drive mounted over a tape holding `files`.
fn drive_with(files: &[Vec<Vec<u8>>], opts: VstOptions) -> (tempfile::TempDir, VirtualDrive) {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("tape.tap");
    vst::write_tap_files(&image, files).expect("writing the tape image");
    let drive = VirtualDrive::mount(&image, opts).expect("mounting the virtual drive");
    (dir, drive)
}

fn five_files() -> Vec<Vec<Vec<u8>>> {
    (0..5).map(|f| records(f, 3, 1000 + usize::from(f))).collect()
}

fn drive_error(err: &anyhow::Error) -> Option<DriveError> {
    err.downcast_ref::<DriveError>().cloned()
}

fn read(drive: &mut StDrive) -> Vec<u8> {
    let mut buf = Vec::new();
    drive.read_record(&mut buf).expect("read_record");
    buf
}

fn at(drive: &mut StDrive) -> (Option<u64>, Option<u64>) {
    let s = drive.status().expect("status");
    (s.file_number, s.block_number)
}

#[test]
fn seek_file_spaces_forward_and_back_to_file_starts() {
    let files = five_files();
    let (_dir, vd) = drive_with(&files, VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    d.seek_file(3).unwrap(); // MTFSF 3 from BOT
    assert_eq!(at(&mut d), (Some(3), Some(0)));
    assert_eq!(read(&mut d), files[3][0]);
    d.seek_file(1).unwrap(); // MTBSFM 3 from file 3 block 1
    assert_eq!(at(&mut d), (Some(1), Some(0)));
    assert_eq!(read(&mut d), files[1][0]);
    assert_eq!(read(&mut d), files[1][1]);
    d.seek_file(1).unwrap(); // MTBSFM 1 from inside file 1
    assert_eq!(read(&mut d), files[1][0]);
    d.seek_file(4).unwrap(); // MTFSF 3
    assert_eq!(read(&mut d), files[4][0]);
    d.seek_file(0).unwrap(); // MTREW
    let status = d.status().unwrap();
    assert!(status.bot && status.loaded && !status.eod);
    assert_eq!(read(&mut d), files[0][0]);
    d.seek_file(5).unwrap(); // end of data is the start of file 5
    assert_eq!(at(&mut d), (Some(5), Some(0)));
    assert_eq!(read(&mut d), Vec::<u8>::new());
}

#[test]
fn seek_file_reads_every_record_then_zero_at_the_filemark() {
    let files = five_files();
    let (_dir, vd) = drive_with(&files, VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    for n in [2u64, 0, 4, 1] {
        d.seek_file(n).unwrap();
        for record in &files[n as usize] {
            assert_eq!(&read(&mut d), record);
        }
        assert_eq!(read(&mut d).len(), 0, "filemark after file {n}");
    }
}

#[test]
fn seek_file_detects_a_position_mismatch() {
    let files = five_files();
    let (_dir, vd) = drive_with(&files, VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    vd.inject_fsf_short();
    let err = d.seek_file(3).unwrap_err();
    let want =
        format!("{}: position mismatch: asked for file 3, drive reports file 2 block 0", vd.device_path().display());
    assert_eq!(err.to_string(), want);
}

#[test]
fn seek_file_past_end_of_data_reports_where_the_drive_stopped() {
    let files = five_files();
    let (_dir, vd) = drive_with(&files[..2], VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    let err = d.seek_file(4).unwrap_err();
    assert!(err.to_string().ends_with("position mismatch: asked for file 4, drive reports file 2 block 0"), "{err:#}");
    let chain = format!("{err:#}");
    assert!(chain.contains("spacing forward 4 filemarks (MTFSF) from file 0 to file 4"), "{chain}");
    assert!(chain.contains("EIO"), "{chain}");
}

#[test]
fn read_record_recovers_from_enomem_with_large_records() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("tape.tap");
    let vd = VirtualDrive::mount(&image, VstOptions::default()).unwrap();
    let big = vd.limits().max_record;
    assert!(big > 2 * MIN_READ_BUFFER, "the drive must allow records above 512 KiB");
    let file = vec![vec![1u8; big], vec![2u8; 600_000], vec![3u8; 3], vec![4u8; 300_000]];
    drop(vd);
    vst::write_tap_files(&image, std::slice::from_ref(&file)).unwrap();
    let vd = VirtualDrive::mount(&image, VstOptions::default()).unwrap();
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    assert_eq!(d.read_buffer_size(), MIN_READ_BUFFER);
    let mut buf = Vec::new();
    for record in &file {
        let n = d.read_record(&mut buf).unwrap();
        assert_eq!((n, &buf), (record.len(), record));
    }
    assert!(d.read_buffer_size() >= big, "buffer grew to {}", d.read_buffer_size());
    assert_eq!(d.read_record(&mut buf).unwrap(), 0, "filemark");
    assert_eq!(d.read_record(&mut buf).unwrap(), 0, "end of data");
    assert_eq!(d.read_record(&mut buf).unwrap(), 0, "EIO after end of data reads as 0");
    assert_eq!(at(&mut d), (Some(1), Some(0)));
}

#[test]
fn write_record_reports_end_of_medium_at_early_warning() {
    let opts = VstOptions { capacity: Some(1 << 20), ..VstOptions::default() };
    let (_dir, vd) = drive_with(&[], opts);
    let mut d = StDrive::open(&vd.device_path(), Access::Write, 256 * 1024).unwrap();
    d.begin_write(0).unwrap();
    let record = vec![9u8; 256 * 1024];
    for _ in 0..4 {
        d.write_record(&record).unwrap(); // the 4th crosses the early warning
    }
    let err = d.write_record(&record).unwrap_err();
    assert_eq!(drive_error(&err), Some(DriveError::EndOfMedium), "{err:#}");
    assert!(err.to_string().ends_with("the record after it was written"), "{err}");
    assert!(d.status().unwrap().eot);
    d.write_filemark().unwrap();
    drop(d);
    assert_eq!(vd.files().unwrap(), vec![vec![record; 5]]);
}

#[test]
fn begin_write_appends_at_end_of_data_and_truncates_in_the_middle() {
    let files = five_files();
    let (_dir, vd) = drive_with(&files[..3], VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Write, 0).unwrap();
    assert_eq!(d.count_files().unwrap(), 3);
    assert!(d.status().unwrap().eod);
    d.begin_write(3).unwrap();
    d.write_record(b"appended").unwrap();
    d.write_filemark().unwrap();
    assert_eq!(d.count_files().unwrap(), 4);
    d.begin_write(1).unwrap();
    d.write_record(b"replaces files 1 to 3").unwrap();
    d.write_filemark().unwrap();
    let err = d.begin_write(5).unwrap_err();
    assert!(err.to_string().starts_with("cannot write file 5: end of data is at file 2 block 0"), "{err:#}");
    drop(d);
    let expect = vec![files[0].clone(), vec![b"replaces files 1 to 3".to_vec()]];
    assert_eq!(vd.files().unwrap(), expect);
}

#[test]
fn blank_tape_has_no_files_and_takes_file_zero() {
    let (_dir, vd) = drive_with(&[], VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Write, 0).unwrap();
    assert_eq!(d.count_files().unwrap(), 0);
    d.begin_write(0).unwrap();
    d.write_record(b"first").unwrap();
    drop(d); // st writes the filemark on close
    assert_eq!(vd.files().unwrap(), vec![vec![b"first".to_vec()]]);
}

#[test]
fn read_only_drive_refuses_to_write() {
    let (_dir, vd) = drive_with(&five_files(), VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    let err = d.begin_write(0).unwrap_err();
    assert!(err.to_string().ends_with("opened read-only, cannot write file 0"), "{err}");
}

#[test]
fn status_reports_position_and_variable_block_mode() {
    let (_dir, vd) = drive_with(&five_files(), VstOptions::default());
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    let s = d.status().unwrap();
    let expect =
        DriveStatus { loaded: true, file_number: Some(0), block_number: Some(0), bot: true, ..DriveStatus::default() };
    assert_eq!(s, expect);
    assert_eq!(d.name(), vd.device_path().display().to_string());
}

#[test]
fn rewinding_devices_are_refused() {
    let (_dir, vd) = drive_with(&[], VstOptions::default());
    let err = StDrive::open(&vd.rewinding_device_path(), Access::Read, 0).unwrap_err();
    let want = format!(
        "{} is a rewinding device: every close would rewind; use {}",
        vd.rewinding_device_path().display(),
        vd.device_path().display()
    );
    assert_eq!(err.to_string(), want);
    let err = StDrive::open(Path::new("/dev/st3"), Access::Write, 0).unwrap_err();
    assert_eq!(err.to_string(), "/dev/st3 is a rewinding device: every close would rewind; use /dev/nst3");
}

#[test]
fn regular_files_and_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("nst0");
    std::fs::write(&plain, b"not a tape").unwrap();
    for access in [Access::Read, Access::Write] {
        let err = StDrive::open(&plain, access, 0).unwrap_err();
        let want = format!("{} is not a tape device (it does not answer MTIOCGET: ", plain.display());
        assert!(err.to_string().starts_with(&want), "{err}");
    }
    assert_eq!(std::fs::read(&plain).unwrap(), b"not a tape");
    let err = StDrive::open(dir.path(), Access::Read, 0).unwrap_err();
    assert!(err.to_string().contains("is not a tape device"), "{err}");
    let err = StDrive::open(dir.path(), Access::Write, 0).unwrap_err();
    assert_eq!(err.to_string(), format!("{} is not a tape device (it is a directory)", dir.path().display()));
    let err = StDrive::open(&dir.path().join("nst9"), Access::Read, 0).unwrap_err();
    assert!(err.to_string().ends_with("nst9 does not exist"), "{err}");
}

#[test]
fn missing_and_write_protected_tapes_are_typed_errors() {
    let opts = VstOptions { loaded: false, ..VstOptions::default() };
    let (_dir, vd) = drive_with(&[], opts);
    let err = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap_err();
    assert_eq!(drive_error(&err), Some(DriveError::NotLoaded), "{err:#}");
    let want = format!("tape drive {}: no tape loaded in the drive", vd.device_path().display());
    assert_eq!(format!("{err:#}"), want);

    let opts = VstOptions { write_protected: true, ..VstOptions::default() };
    let (_dir, vd) = drive_with(&five_files(), opts);
    let err = StDrive::open(&vd.device_path(), Access::Write, 0).unwrap_err();
    assert_eq!(drive_error(&err), Some(DriveError::WriteProtected), "{err:#}");
    let mut d = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    assert!(d.status().unwrap().write_protected);
}

#[test]
fn a_second_open_is_refused_as_busy() {
    let (_dir, vd) = drive_with(&[], VstOptions::default());
    let _first = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap();
    let err = StDrive::open(&vd.device_path(), Access::Read, 0).unwrap_err();
    let want = format!("{} is busy: another program has the drive open", vd.device_path().display());
    assert_eq!(err.to_string(), want);
}
