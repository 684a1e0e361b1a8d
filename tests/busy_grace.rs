//! A drive that is busy for a moment (st allows one open at a time, and a
//! cron `check` opens each idle drive briefly to ask about its health) does
//! not fail a job that starts in that moment: the open is tried again for
//! two seconds. A drive busy for longer is still refused in one line.

mod support;

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::vst_rig::Rig;
use support::world::{stderr, stdout};

#[test]
fn a_job_waits_out_a_moment_of_busy_and_a_longer_one_is_refused() {
    let rig = Rig::new(false);
    // Another program has the drive open.
    let holder = File::open(rig.drive.device_path()).unwrap();
    let job = rig.w.command(&["drive"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The job has met the busy drive at least once: now let go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rig.drive.busy_refusals() == 0 {
        assert!(Instant::now() < deadline, "tapeop never tried to open the drive");
        std::thread::yield_now();
    }
    drop(holder);
    let out = job.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Loaded:          yes\n"), "{}", stdout(&out));

    // Held for longer than the grace: refused, naming the device.
    let _holder = File::open(rig.drive.device_path()).unwrap();
    let out = rig.w.output(&["drive"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stderr(&out).trim_end(),
        format!("tapeop: {} is busy: another program has the drive open", rig.drive.device_path().display())
    );
}
