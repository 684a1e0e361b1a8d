//! Two copies in a tape library (`copy_pools = primary offsite`, one
//! cartridge of each pool): one library archive run writes each target's
//! copy on the tape of each pool in turn, confirm confirms both, `check` is
//! clean; and `restore`, when the copy it loads first fails its md5, says
//! so, loads the other copy's tape and restores every file intact from it,
//! naming that copy.
//!
//! These tests need FUSE (/dev/fuse, root) and hold `vst::serial()` for
//! their whole body.

mod support;

use std::fs;

use support::library_rig::{CAPACITY, LibRig, barcode};

/// The library rig with tape.conf asking for copies in pools primary and offsite.
fn library_with_pools() -> LibRig {
    let r = LibRig::new(2, 0);
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\nssh_command = \nblock_size = 64K\ntape_capacity = {CAPACITY}\n\
         copy_pools = primary offsite\n\n{}",
        r.lib.conf_sections()
    );
    fs::write(r.w.root().join("tape.conf"), conf).unwrap();
    r
}

/// A library rig whose tape.conf asks for a copy in pools primary and
/// offsite; T1 (A00001L9) is primary, T2 (A00002L9) offsite; `n` targets.
fn two_pool_library(n: usize) -> (LibRig, Vec<std::path::PathBuf>) {
    let r = library_with_pools();
    let targets = r.targets(n);
    for (i, pool) in [(1, "primary"), (2, "offsite")] {
        let name = format!("T{i}");
        r.w.run(&["-y", "open_tape", &name, "--serial", &barcode(i), "--pool", pool, "--offline"], 0);
    }
    (r, targets)
}

#[test]
fn one_library_run_writes_a_copy_on_each_pool_and_check_is_clean() {
    let (r, _) = two_pool_library(2);
    let inventory = r.run(&["inventory"], 0);
    assert!(inventory.contains("tape T1 (open, pool primary)"), "{inventory}");
    assert!(inventory.contains("tape T2 (open, pool offsite)"), "{inventory}");
    let out = r.run(&["--drive", "A", "archive", "--repeat"], 40);
    assert!(
        out.contains("Tape \"T1\" has its pool's copy of every target waiting; the rest go to tapes of other pools."),
        "{out}"
    );
    r.run(&["--drive", "A", "confirm", "next", "--repeat"], 40);
    let want: Vec<(String, i64, String)> =
        ["T1", "T2"].iter().flat_map(|t| [1, 2].map(|n| (t.to_string(), n, "confirmed".to_string()))).collect();
    assert_eq!(r.backups(), want);
    assert_eq!(r.w.count("SELECT COUNT(DISTINCT target_id) FROM backups"), 2);
    let check = r.run(&["check"], 0);
    assert!(check.starts_with("tapeop check: all well"), "{check}");
}

#[test]
fn restore_takes_the_other_copy_when_the_first_fails_its_md5() {
    let (r, targets) = two_pool_library(2);
    r.run(&["--drive", "A", "archive", "--repeat"], 40);
    r.run(&["--drive", "A", "confirm", "next", "--repeat"], 40);
    r.run(&["--drive", "A", "unload"], 0);
    // Flip a byte of t00's data in T1's cartridge (the copy tried first).
    let data = fs::read(targets[0].join("data.bin")).unwrap();
    let image = r.lib.image(&barcode(1));
    let mut bytes = fs::read(&image).unwrap();
    let at = bytes.windows(64).position(|w| w == &data[1000..1064]).expect("t00's data in T1's image");
    bytes[at + 10] ^= 0xff;
    fs::write(&image, bytes).unwrap();

    let target = targets[0].to_str().unwrap();
    let out = r.run(&["--drive", "B", "restore", target, "--to", "out"], 0);
    assert!(
        out.contains(
            "tapeop: the copy on tape \"T1\" file 1 (pool primary) failed (1 md5 mismatches); trying the next copy"
        ),
        "{out}"
    );
    assert!(out.contains("The files came from the copy on tape \"T2\" file 1 (pool offsite)."), "{out}");
    assert_eq!(fs::read(r.w.root().join("out/data.bin")).unwrap(), data, "{out}");
    assert_eq!(r.lib.in_drive(1).as_deref(), Some(barcode(2).as_str()));

    // The copy already in the drive comes first: no robot move.
    let other = targets[1].to_str().unwrap();
    let out = r.run(&["--drive", "B", "restore", other, "--to", "out2"], 0);
    assert!(out.contains("The files came from the copy on tape \"T2\" file 2 (pool offsite)."), "{out}");
    assert!(!out.contains("Loading cartridge"), "{out}");
    assert_eq!(fs::read(r.w.root().join("out2/data.bin")).unwrap(), fs::read(targets[1].join("data.bin")).unwrap());
}

#[test]
fn without_a_tape_of_the_offsite_pool_the_run_says_which_pool_needs_one() {
    let r = library_with_pools();
    r.targets(2);
    r.w.run(&["-y", "open_tape", "T1", "--serial", &barcode(1), "--pool", "primary", "--offline"], 0);
    let out = r.w.run(&["--drive", "A", "archive", "--repeat"], 43);
    let err = support::world::stderr(&out);
    assert!(
        err.contains(
            "no tape of pool offsite with room is left in the library for drive A (element 0): 2 targets lack a \
             copy there. Put a blank cartridge in the library and register it with tapeop open_tape NAME --serial \
             BARCODE --pool POOL, then run again"
        ),
        "{err}"
    );
    let backups = r.backups();
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(backups.iter().all(|(t, _, s)| t == "T1" && s == "recorded"), "{backups:?}");
}
