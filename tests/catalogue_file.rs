//! The catalogue written onto the tape (issue 14, items 4 and 5): closing a
//! tape (or filling it) appends one last tape file holding README.txt,
//! MANIFEST.md5 and a gzipped snapshot of the catalogue; `recover_catalogue`
//! reads it back from the end of data (reading no data file) into a working
//! catalogue. Faults: a corrupt or truncated catalogue file, a tape without
//! one, an existing `--to`, and `close_tape` with the wrong tape loaded;
//! reading it by hand with mt, tar, md5sum and gunzip; scan_tape; a library
//! run that fills a tape. Runs on the virtual st drive (FUSE) and the
//! simulated library, holding `vst::serial()`; needs mt-st and GNU tar.

mod support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use support::fixture::table_rows;
use support::vst;
use support::vst_rig::{Rig, assert_has};

/// A rig with two small targets archived on T1 (recorded, not confirmed).
fn archived() -> (Rig, Vec<PathBuf>) {
    let rig = Rig::new(false);
    let targets = vec![rig.target("alpha", 300_000), rig.target("beta", 5_000)];
    rig.prepare(&targets);
    rig.run(&["archive", "--repeat"], 40);
    (rig, targets)
}

/// The rows of the tables a recovered catalogue must give back.
fn tables(db: &Path) -> String {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut s = String::new();
    for t in ["tapes", "targets", "files", "backups"] {
        s += &format!("== {t}\n{}\n", table_rows(&c, t).join("\n"));
    }
    let mut stmt = c.prepare("SELECT tape_id, file_number, bytes, md5, written FROM tapeop_tape_catalog").unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{}|{}",
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    s + "== tapeop_tape_catalog\n" + &rows.join("\n")
}

/// Members of a tape file's records: (name, data).
fn members(records: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    let bytes = records.concat();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

fn remove_catalogue(rig: &Rig) {
    for f in ["tape.sqlite", "tape.sqlite-wal", "tape.sqlite-shm"] {
        let _ = fs::remove_file(rig.path(f));
    }
}

/// Rewrite the tape image `A.tap` with `edit` applied to its tape files
/// (the cartridge is out of the drive meanwhile), then load it again.
fn edit_image(rig: &Rig, edit: impl FnOnce(&mut Vec<Vec<Vec<u8>>>)) {
    rig.load("other.tap");
    let image = rig.path("tapes/A.tap");
    let mut files = vst::tap_files(&image).unwrap();
    edit(&mut files);
    vst::write_tap_files(&image, &files).unwrap();
    rig.load("A.tap");
}

#[test]
fn a_closed_tape_carries_its_catalogue_and_recover_catalogue_brings_it_back() {
    let (rig, targets) = archived();
    let out = rig.run(&["-y", "close_tape", "--force"], 0);
    assert_has(&out, "Wrote the catalogue file of tape \"T1\" as tape file 3");
    let files = rig.files();
    assert_eq!(files.len(), 4, "label, two targets, the catalogue file");
    assert!(files[3].iter().all(|r| r.len() == 256 * 1024), "whole records of block_size");
    let m = members(&files[3]);
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["README.txt", "MANIFEST.md5", "catalogue.sqlite.gz"]);
    let readme = String::from_utf8_lossy(&m[0].1).into_owned();
    assert_has(&readme, "tape: T1\nserial: S1\n");
    assert_has(&readme, "mt -f /dev/nst0 eod; mt -f /dev/nst0 bsfm 2");
    assert_has(&readme, &format!("file 1: {} (recorded)", targets[0].display()));
    let manifest = String::from_utf8_lossy(&m[1].1).into_owned();
    let alpha = targets[0].strip_prefix("/").unwrap().display().to_string();
    assert_has(&manifest, &format!("  {alpha}/sub/data.bin\n"));
    assert_eq!(manifest.lines().count(), 4, "two files per target:\n{manifest}");
    assert_eq!(rig.count("SELECT file_number FROM tapeop_tape_catalog"), 3);
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapes WHERE status = 'closed'"), 1);
    let original = tables(&rig.path("tape.sqlite"));

    // Archive refuses to append after it (the tape is closed; were it open
    // again, as in a catalogue out of step, the catalogue file refuses it).
    rig.run(&["-y", "activate_tape", "T1"], 0);
    let out = rig.run(&["archive"], 1);
    assert_has(&out, "tape \"T1\" is closed: nothing more is written to it");
    rig.w.sql().execute("UPDATE tapes SET status = 'open'", []).unwrap();
    let out = rig.run(&["archive"], 1);
    assert_has(&out, "tape \"T1\" ends with its catalogue file (tape file 3): nothing more is written to it");
    rig.w.sql().execute("UPDATE tapes SET status = 'closed', online = 0", []).unwrap();

    // scan_tape knows it.
    let out = rig.run(&["scan_tape"], 0);
    assert_has(&out, "file 3: the tape's catalogue file (as the catalogue records); not a target");

    remove_catalogue(&rig);
    rig.drive.reset_motion();
    let out = rig.run(&["recover_catalogue", "--to", "recovered.sqlite"], 0);
    assert_has(&out, "Tape file 3 of ");
    assert_has(&out, "is the catalogue file of tape \"T1\"");
    let motion = rig.drive.motion();
    let last: u64 = files[3].iter().map(|r| r.len() as u64).sum();
    assert_eq!(motion.bytes_read, last, "only the catalogue file is read: {motion:?}");
    assert!(!rig.path("tape.sqlite").exists(), "the configured catalogue is neither opened nor created");
    assert_eq!(tables(&rig.path("recovered.sqlite")), original);
    let left: Vec<String> = fs::read_dir(rig.w.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("recovering"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "no temporary file is left");

    // The recovered catalogue works: confirm and restore.
    fs::rename(rig.path("recovered.sqlite"), rig.path("tape.sqlite")).unwrap();
    rig.run(&["-y", "activate_tape", "T1"], 0);
    rig.run(&["confirm", "--repeat"], 40);
    assert_eq!(rig.count("SELECT COUNT(*) FROM backups WHERE status = 'confirmed'"), 2);
    let to = rig.path("restored");
    rig.run(&["restore", targets[0].to_str().unwrap(), "--to", to.to_str().unwrap()], 0);
    let got = fs::read(to.join("sub/data.bin")).unwrap();
    assert_eq!(got, fs::read(targets[0].join("sub/data.bin")).unwrap());
}

#[test]
fn a_corrupt_catalogue_file_is_refused_and_nothing_is_written() {
    let (rig, _) = archived();
    rig.run(&["-y", "close_tape", "--force"], 0);
    edit_image(&rig, |files| {
        let bytes = files[3].concat();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let gz =
            archive.entries().unwrap().map(Result::unwrap).find(|e| e.path_bytes().as_ref() == b"catalogue.sqlite.gz");
        let at = gz.unwrap().raw_file_position() as usize + 40;
        let (rec, off) = (at / (256 * 1024), at % (256 * 1024));
        files[3][rec][off] ^= 0x40;
    });
    remove_catalogue(&rig);
    let out = rig.run(&["recover_catalogue", "--to", "recovered.sqlite"], 1);
    assert_has(&out, "the catalogue file (tape file 3) in ");
    assert_has(&out, "is damaged: catalogue.sqlite.gz has md5 ");
    assert_has(&out, "nothing was written to recovered.sqlite");
    assert_has(&out, "tapeop scan_tape --record-as NAME, tape by tape");
    assert!(!rig.path("recovered.sqlite").exists());
    assert!(!rig.path("tape.sqlite").exists());
}

#[test]
fn a_truncated_catalogue_file_is_refused_and_nothing_is_written() {
    let (rig, _) = archived();
    rig.run(&["-y", "close_tape", "--force"], 0);
    edit_image(&rig, |files| {
        // It ends 100 bytes into the snapshot.
        let bytes = files[3].concat();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let gz =
            archive.entries().unwrap().map(Result::unwrap).find(|e| e.path_bytes().as_ref() == b"catalogue.sqlite.gz");
        let end = gz.unwrap().raw_file_position() as usize + 100;
        files[3] = vec![bytes[..end].to_vec()];
    });
    remove_catalogue(&rig);
    let out = rig.run(&["recover_catalogue", "--to", "recovered.sqlite"], 1);
    assert_has(&out, "the catalogue file (tape file 3) in ");
    assert_has(&out, "is damaged: ");
    assert_has(&out, "nothing was written to recovered.sqlite");
    assert!(!rig.path("recovered.sqlite").exists());
}

#[test]
fn recover_catalogue_on_a_tape_without_one_says_what_to_do() {
    let (rig, _) = archived();
    let out = rig.run(&["-y", "close_tape", "--force", "--no-catalogue-file"], 0);
    assert!(!out.contains("Wrote the catalogue file"), "{out}");
    assert_eq!(rig.files().len(), 3, "nothing appended");
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapeop_tape_catalog"), 0);
    rig.drive.reset_motion();
    let out = rig.run(&["recover_catalogue", "--to", "recovered.sqlite"], 1);
    assert_has(&out, "has no catalogue file: its last tape file (2) is a tar archive of ");
    assert_has(&out, "(a tape closed by the old tool, or with close_tape --no-catalogue-file); nothing was written");
    assert_has(&out, "tapeop scan_tape --record-as NAME, tape by tape");
    assert!(!rig.path("recovered.sqlite").exists());
    let files = rig.files();
    let last: u64 = files[2].iter().map(|r| r.len() as u64).sum();
    assert_eq!(rig.drive.motion().bytes_read, last, "only the last tape file is read");
}

#[test]
fn recover_catalogue_never_overwrites_a_file() {
    let (rig, _) = archived();
    rig.run(&["-y", "close_tape", "--force"], 0);
    fs::write(rig.path("existing.sqlite"), "keep me").unwrap();
    rig.drive.reset_motion();
    let out = rig.run(&["recover_catalogue", "--to", "existing.sqlite"], 1);
    assert_has(&out, "existing.sqlite exists: recover_catalogue never overwrites a file; give a new path with --to");
    assert_eq!(fs::read(rig.path("existing.sqlite")).unwrap(), b"keep me");
    assert_eq!(rig.drive.motion(), vst::Motion::default(), "the tape did not move");
}

#[test]
fn close_tape_with_the_wrong_tape_in_the_drive_is_refused() {
    let (rig, _) = archived();
    rig.load("B.tap");
    let out = rig.run(&["-y", "close_tape", "--force"], 1);
    assert_has(&out, "close_tape writes the catalogue file of tape \"T1\" onto it, but the drive does not hold it: ");
    assert_has(&out, "wrong tape");
    assert_has(
        &out,
        "tape \"T1\" was not closed: load it and run again, or close it without one: tapeop close_tape T1 --no-catalogue-file",
    );
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapes WHERE status = 'closed'"), 0);
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapeop_tape_catalog"), 0);
    assert!(rig.image("B.tap").len() < 64, "nothing written on the wrong tape");
    rig.run(&["-y", "close_tape", "T1", "--force", "--no-catalogue-file"], 0);
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapes WHERE status = 'closed'"), 1);
}

#[test]
fn a_tape_marked_full_at_early_warning_gets_its_catalogue_file() {
    let rig = Rig::new(false);
    let targets = vec![rig.target("a_small", 300_000), rig.target("b_big", 3_000_000)];
    rig.prepare(&targets);
    rig.drive.set_capacity(Some(1536 * 1024));
    let out = rig.run(&["archive", "--repeat"], 43);
    assert_has(&out, "tape \"T1\" is now marked full");
    assert_has(&out, "Wrote the catalogue file of tape \"T1\" as tape file 2");
    let files = rig.files();
    assert_eq!(files.len(), 3, "label, the small target, the catalogue file over the partial one");
    assert_eq!(members(&files[2]).len(), 3);
    // Closing it later writes no second one.
    rig.run(&["confirm", "--repeat"], 40);
    let out = rig.run(&["-y", "close_tape"], 0);
    assert!(!out.contains("Wrote the catalogue file"), "{out}");
    assert_eq!(rig.files().len(), 3);
    remove_catalogue(&rig);
    rig.run(&["recover_catalogue", "--to", "recovered.sqlite"], 0);
    let c = Connection::open(rig.path("recovered.sqlite")).unwrap();
    let full: i64 = c.query_row("SELECT full FROM tapeop_tape_info", [], |r| r.get(0)).unwrap();
    assert_eq!(full, 1, "the snapshot was taken with the tape marked full");
}

fn sh(dir: &Path, cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd).args(args).current_dir(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd} {args:?}: {text}");
    text
}

#[test]
fn the_catalogue_file_reads_with_mt_tar_md5sum_and_gunzip_alone() {
    let (rig, _) = archived();
    rig.run(&["confirm", "--repeat"], 40);
    rig.run(&["-y", "close_tape"], 0);
    let dev = rig.drive.device_path();
    let dev = dev.to_str().unwrap();
    let x = rig.path("x");
    fs::create_dir(&x).unwrap();
    // As README.txt says.
    sh(&x, "mt", &["-f", dev, "eod"]);
    sh(&x, "mt", &["-f", dev, "bsfm", "2"]);
    let listed = sh(&x, "tar", &["-b", "512", "-xvf", dev]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["README.txt", "MANIFEST.md5", "catalogue.sqlite.gz"]);
    let readme = fs::read_to_string(x.join("README.txt")).unwrap();
    let want = readme.lines().find_map(|l| l.strip_prefix("snapshot md5: ")).unwrap().to_string();
    assert_has(&sh(&x, "md5sum", &["catalogue.sqlite.gz"]), &want);
    sh(&x, "gunzip", &["catalogue.sqlite.gz"]);
    let c = Connection::open(x.join("catalogue.sqlite")).unwrap();
    let closed: String = c.query_row("SELECT status FROM tapes WHERE name = 'T1'", [], |r| r.get(0)).unwrap();
    assert_eq!(closed, "closed");
    // Every file of the tape checks against the manifest once extracted.
    let y = rig.path("y");
    fs::create_dir(&y).unwrap();
    for n in ["1", "2"] {
        sh(&y, "mt", &["-f", dev, "asf", n]);
        sh(&y, "tar", &["-b", "512", "-xf", dev]);
    }
    let checked = sh(&y, "md5sum", &["-c", x.join("MANIFEST.md5").to_str().unwrap()]);
    assert_eq!(checked.matches(": OK").count(), 4, "{checked}");
}

#[test]
fn scan_tape_record_as_lists_the_catalogue_file_and_records_only_the_targets() {
    let (rig, _) = archived();
    rig.run(&["-y", "close_tape", "--force"], 0);
    remove_catalogue(&rig);
    let out = rig.run(&["scan_tape", "--record-as", "T1"], 0);
    assert_has(&out, "file 3: the tape's catalogue file (recover_catalogue reads it); not a target");
    assert_has(&out, "Tape \"T1\": 2 tape files recorded, 0 not.");
    assert_eq!(rig.count("SELECT COUNT(*) FROM targets"), 2);
}

#[test]
fn a_library_tape_filled_by_a_run_gets_its_catalogue_file_and_recovers_through_its_drive() {
    use support::library_rig::{LibRig, barcode};
    let r = LibRig::new(2, 1);
    r.targets(6);
    r.open_tapes(1..=2);
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert_has(&out, "marking it full and moving on");
    assert_has(&out, "Wrote the catalogue file of tape \"T1\" as tape file 5");
    let t1 = vst::tap_files(&r.lib.image(&barcode(1))).unwrap();
    assert_eq!(t1.len(), 6, "label, four targets, the catalogue file");
    assert_eq!(members(&t1[5]).len(), 3);
    // close_tape loads T2 and writes its catalogue file too.
    let out = r.run(&["--drive", "A", "-y", "close_tape", "T2", "--force"], 0);
    assert_has(&out, "Wrote the catalogue file of tape \"T2\" as tape file 3");
    // Recover from T1, loaded by hand, through drive B.
    r.run(&["--drive", "B", "load", "T1"], 0);
    for f in ["tape.sqlite", "tape.sqlite-wal", "tape.sqlite-shm"] {
        let _ = fs::remove_file(r.w.root().join(f));
    }
    let out = r.run(&["--drive", "B", "recover_catalogue", "--to", "rec.sqlite"], 0);
    assert_has(&out, "Tape file 5 of ");
    let c = Connection::open(r.w.root().join("rec.sqlite")).unwrap();
    let backups: i64 = c.query_row("SELECT COUNT(*) FROM backups WHERE status = 'recorded'", [], |r| r.get(0)).unwrap();
    assert_eq!(backups, 4, "T1's four targets, as when it filled");
}

#[test]
fn close_tape_killed_while_writing_the_catalogue_file_writes_it_again() {
    use std::os::unix::process::ExitStatusExt;
    let (rig, targets) = archived();
    let mut cmd = rig.w.command(&["-y", "close_tape", "--force"]);
    let out = cmd.env("TAPEOP_FAULT", "catalogue-file-mid").output().unwrap();
    assert_eq!(out.status.signal(), Some(9), "killed after the first record");
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapes WHERE status = 'closed'"), 1);
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapeop_tape_catalog"), 0, "not recorded");
    let out = rig.run(&["-y", "close_tape", "T1", "--force"], 0);
    assert_has(&out, "Tape file 3 holds the unfinished catalogue file of an interrupted close_tape; writing it again.");
    assert_has(&out, "Wrote the catalogue file of tape \"T1\" as tape file 3");
    assert_eq!(rig.files().len(), 4);
    assert_eq!(rig.count("SELECT COUNT(*) FROM backups"), targets.len() as i64, "nothing lost");
    remove_catalogue(&rig);
    rig.run(&["recover_catalogue", "--to", "recovered.sqlite"], 0);
}
