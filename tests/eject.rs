//! `drive::eject`: rewind and eject (`MTOFFL`) before a changer takes the
//! cartridge out, on the virtual st drive; an empty drive is not an error.

mod support;

use support::vst_rig::Rig;
use support::world::stdout;
use tapeop::drive::{self, DriveSpec};

#[test]
fn eject_rewinds_and_unloads_and_an_empty_drive_is_left_alone() {
    let rig = Rig::new(false);
    let spec = DriveSpec::Device(rig.drive.device_path());
    assert!(stdout(&rig.w.run(&["drive"], 0)).contains("Loaded:          yes\n"));
    drive::eject(&spec).unwrap();
    assert!(stdout(&rig.w.run(&["drive"], 0)).contains("Loaded:          no"), "ejected");
    drive::eject(&spec).unwrap();
    // The device was closed again: the next open (queued behind the
    // release, as every FUSE request is) is not refused as busy.
    assert!(stdout(&rig.w.run(&["drive"], 0)).contains("Loaded:          no"), "still ejected");
    let missing = DriveSpec::Device("/nowhere/nst9".into());
    assert_eq!(format!("{:#}", drive::eject(&missing).unwrap_err()), "/nowhere/nst9 does not exist");
}
