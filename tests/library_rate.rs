//! A library drive with a speed (`VstOptions::write_rate`, built with
//! `Library::new_with`): records take at least their length over the rate to
//! write and to read (lower bounds only, measured), and the drive's other
//! side (the changer's control file) answers while a slow write is pending.

mod support;

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use support::library::{Cartridge, Library};
use support::vst::{self, VstOptions};

/// A temp dir and a one-drive library whose drive moves `rate` bytes a
/// second, with A00001L9 loaded in it.
fn rated_library(rate: u64) -> (tempfile::TempDir, Library) {
    let dir = tempfile::Builder::new().prefix("library-rate").tempdir().unwrap();
    let opts = VstOptions { write_rate: Some(rate), ..VstOptions::default() };
    let lib = Library::new_with(dir.path(), 1, &[Cartridge::labelled("A00001L9")], 1, 0, opts);
    let out = lib.mtx(&["load", "1", "0"]);
    assert!(out.status.success(), "mtx-sim load failed: {}", String::from_utf8_lossy(&out.stderr));
    (dir, lib)
}

fn record(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn a_rated_drive_takes_at_least_len_over_rate_to_write_and_to_read() {
    let _serial = vst::serial();
    const RATE: u64 = 8 << 20;
    const LEN: usize = 256 << 10;
    const RECORDS: usize = 8;
    let (_dir, lib) = rated_library(RATE);
    let device = lib.drive(0).device_path();
    let least = Duration::from_secs_f64((LEN * RECORDS) as f64 / RATE as f64);

    let mut tape = OpenOptions::new().write(true).open(&device).unwrap();
    let start = Instant::now();
    for i in 0..RECORDS {
        assert_eq!(tape.write(&record(i, LEN)).unwrap(), LEN);
    }
    let wrote = start.elapsed();
    drop(tape);
    assert!(wrote >= least, "writing {} bytes at {RATE} B/s took {wrote:?}, less than {least:?}", LEN * RECORDS);

    let rewound = Command::new("mt").arg("-f").arg(&device).arg("rewind").status().expect("running mt (mt-st)");
    assert!(rewound.success());
    let mut tape = OpenOptions::new().read(true).open(&device).unwrap();
    let mut buf = vec![0; LEN + 1];
    let start = Instant::now();
    for i in 0..RECORDS {
        let n = tape.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &record(i, LEN)[..], "record {i} read back");
    }
    let read = start.elapsed();
    assert_eq!(tape.read(&mut buf).unwrap(), 0, "the filemark after the records");
    assert!(read >= least, "reading {} bytes at {RATE} B/s took {read:?}, less than {least:?}", LEN * RECORDS);
    assert_eq!(lib.drive(0).files().unwrap().len(), 1);
}

#[test]
fn the_drive_answers_its_control_file_while_a_slow_write_is_pending() {
    let _serial = vst::serial();
    // One 768 KiB record at 256 KiB/s: the write() returns after 3 s.
    let (_dir, lib) = rated_library(256 << 10);
    let device = lib.drive(0).device_path();
    let writer = std::thread::spawn(move || {
        let mut tape = OpenOptions::new().write(true).open(&device).unwrap();
        tape.write(&record(0, 768 << 10)).unwrap()
    });
    while lib.drive(0).motion().bytes_written == 0 {
        std::thread::yield_now();
    }
    let line = fs::read_to_string(lib.drive(0).control_path()).unwrap();
    assert_eq!(line, format!("loaded {}\n", lib.image("A00001L9").display()));
    assert!(!writer.is_finished(), "the control file answered only after the write's 3 s");
    assert_eq!(writer.join().unwrap(), 768 << 10);
}
