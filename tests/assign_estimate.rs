//! `assign` with a capacity counts what a target takes on tape, not its du
//! size: tar's headers (512 bytes per member, plus a long-name header and
//! the name for names of 100 bytes or more), data padded to 512, tar's
//! 256 KiB record, padding to whole `block_size` records, one record for
//! each filemark, and the label file (its record and filemark).
//!
//! The first test needs FUSE (/dev/fuse, root) for the virtual st drive and
//! holds `vst::serial()` for its whole body.

mod support;

use support::{vst, world};

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;

use vst::{VirtualDrive, VstOptions};
use world::{World, stderr, stdout};

const KIB: u64 = 1024;

fn import(w: &World, targets: &[PathBuf]) {
    let list = w.list("list.txt", targets);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
}

fn one_file_target(w: &World, name: &str, size: usize) -> PathBuf {
    let dir = w.data().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("data.bin"), vec![name.as_bytes()[0]; size]).unwrap();
    dir
}

fn recorded_bytes(w: &World) -> Vec<i64> {
    let conn = w.sql();
    let mut stmt = conn.prepare("SELECT bytes FROM tapeop_backup_info ORDER BY backup_id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn assign_counts_tar_record_padding_filemarks_and_the_label() {
    let _serial = vst::serial();
    let w = World::new();
    // Four targets of one 300,000-byte file: du says about 300 KiB each, so
    // the old estimate (du + 1 KiB per file + 10 KiB) put all four in 3 MiB.
    // On tape each is two 256 KiB records plus its filemark (768 KiB), and
    // the label one record plus its filemark (512 KiB): three fit in 3 MiB.
    let targets: Vec<PathBuf> = ["a", "b", "c", "d"].iter().map(|n| one_file_target(&w, n, 300_000)).collect();
    import(&w, &targets);
    let naive: i64 = w.count("SELECT SUM(size_kb) * 1024 + COUNT(*) * 1024 FROM files") + 4 * 10240;
    assert!(naive < 3 * 1024 * 1024, "the old estimate fits all four: {naive}");

    let capacity = 3 * 1024 * KIB;
    let opts = VstOptions { capacity: Some(capacity), ..VstOptions::default() };
    let drive = VirtualDrive::mount(&w.root().join("A.tap"), opts).expect("mounting the drive");
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command =\n",
        drive.device_path().display()
    );
    fs::write(w.root().join("tape.conf"), conf).unwrap();
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y", "--capacity", "3M"], 0);
    let out = w.run(&["-y", "assign"], 0);
    assert!(
        stdout(&out).contains("3 targets fit in the space left on tape \"T1\"; 1 do not and stay unassigned."),
        "{}",
        stdout(&out)
    );
    let assigned = w.count("SELECT COUNT(*) FROM backups WHERE status = 'assigned'");
    assert_eq!(assigned, 3);
    let out = w.run(&["-y", "assign"], 43);
    assert!(stderr(&out).contains("no unassigned target fits in the space left on tape \"T1\""), "{}", stderr(&out));

    // What was estimated is what the drive took: two records each.
    w.run(&["archive", "--repeat"], 40);
    assert_eq!(recorded_bytes(&w), vec![512 * KIB as i64; 3]);
    let sizes: Vec<Vec<usize>> = drive.files().unwrap().iter().map(|f| f.iter().map(Vec::len).collect()).collect();
    assert_eq!(sizes, vec![vec![256 * 1024], vec![256 * 1024; 2], vec![256 * 1024; 2], vec![256 * 1024; 2]]);
}

#[test]
fn long_member_names_count_their_extra_headers_to_the_byte() {
    // 200 empty files with 150-byte names: each member is a header, a GNU
    // long-name header and the name in one 512-byte block, 1536 bytes, so
    // the tar stream (about 300 KiB) takes two records, not one.
    let w = World::new();
    let dir = w.data().join("long");
    fs::create_dir_all(&dir).unwrap();
    for i in 0..200 {
        fs::write(dir.join(format!("{i:03}{}", "n".repeat(147))), b"").unwrap();
    }
    import(&w, std::slice::from_ref(&dir));
    // label 256 KiB + filemark, target 2 x 256 KiB + filemark = 1,310,720.
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y", "--capacity", "1310719"], 0);
    let out = w.run(&["-y", "assign"], 43);
    assert!(stderr(&out).contains("no unassigned target fits in the space left on tape \"T1\""), "{}", stderr(&out));
    w.sql().execute("UPDATE tapeop_tape_info SET capacity_bytes = 1310720", []).unwrap();
    w.run(&["-y", "assign"], 0);
    w.run(&["archive"], 0);
    assert_eq!(recorded_bytes(&w), vec![512 * KIB as i64]);
}
