//! After the robot loads a cartridge, a library drive that is still
//! loading it (a new LTO-9 cartridge's first load) is waited for up to
//! `load_timeout`, with the progress line of a single drive's slow load;
//! past it, the run fails in one line naming the key.

mod support;

use std::io::{BufRead, BufReader, Read};

use support::library_rig::{CAPACITY, LibRig};

/// A library whose next load leaves drive A loading, and `tapeop --drive A
/// load T1` spawned into it (with `load_timeout` as given); returns once
/// the drive is loading and the load is let go.
fn loading(r: &LibRig, timeout: &str) -> std::process::Child {
    r.open_tapes(1..=1);
    r.conf_with("", &format!("tape_capacity = {CAPACITY}\nload_timeout = {timeout}\n"));
    r.lib.hold_next_load();
    let job = r.spawn(&["--drive", "A", "load", "T1"], None);
    let held = r.lib.wait_load_held();
    r.lib.drive(0).start_loading();
    drop(held);
    job
}

#[test]
fn a_loading_drive_is_waited_for_with_progress_then_used() {
    let r = LibRig::new(1, 0);
    let mut job = loading(&r, "3h");
    let mut err = BufReader::new(job.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let dev = r.lib.drive(0).device_path();
    assert_eq!(
        line,
        format!("Waiting for {} to become ready (loading the cartridge): 0 s of at most 3 h\n", dev.display())
    );
    r.lib.drive(0).finish_loading();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let out = job.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{rest}");
    assert!(text.ends_with("Tape \"T1\" (cartridge A00001L9) is loaded in drive A (element 0).\n"), "{text}");
    assert_eq!(rest, "");
}

#[test]
fn a_load_outlasting_load_timeout_fails_naming_the_key() {
    let r = LibRig::new(1, 0);
    let job = loading(&r, "1s");
    let out = job.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let dev = r.lib.drive(0).device_path();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let progress =
        format!("Waiting for {} to become ready (loading the cartridge): 0 s of at most 1 s\n", dev.display());
    assert!(err.starts_with(&progress), "{err}");
    assert!(
        err.ends_with(&format!(
            "tape \"T1\": cartridge A00001L9 in drive A (element 0): the drive {} did not become ready within 1 s \
             after the load (it reports no cartridge loaded): raise load_timeout under [default] in the config \
             file, or check the drive\n",
            dev.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
}
