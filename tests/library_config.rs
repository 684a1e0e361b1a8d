//! The tape-library sections of tape.conf (`[changer]`, `[drive.NAME]`) and
//! the global `--drive NAME`: each config error word for word, unknown keys
//! warned about, which drive a command uses, and `drive` on the chosen
//! (virtual) drive naming the cartridge the changer says it holds.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::vst_rig::Rig;
use support::world::{World, describe, stderr, stdout};

const HEAD: &str = "[default]\ndatabase_file = tape.sqlite\nssh_command =\n";
const CHANGER: &str = "[changer]\ndevice = /dev/sg5\n";

fn conf(w: &World, body: &str) {
    fs::write(w.root().join("tape.conf"), format!("{HEAD}{body}")).unwrap();
}

/// Two drives, A (/dev/nst0, element 0) and B (/dev/nst1, element 1), and a changer.
fn two_drives(w: &World) {
    conf(
        w,
        &format!(
            "{CHANGER}[drive.A]\ndevice = /dev/nst0\nchanger_index = 0\n[drive.B]\ndevice = /dev/nst1\nchanger_index = 1\n"
        ),
    );
}

/// Run `tapes` (which reads the config first) and expect this one error.
fn refused(w: &World, body: &str, want: &str) {
    conf(w, body);
    let out = w.run(&["tapes"], 1);
    assert_eq!(stderr(&out), format!("tapeop: config file tape.conf: {want}\n"), "for:\n{body}");
    assert_eq!(stdout(&out), "");
}

#[test]
fn each_library_config_error_is_one_exact_line() {
    let w = World::new();
    w.run(&["open_tape", "T1", "-y", "--serial", "S1", "--online"], 0);
    refused(&w, "[drive.A]\nchanger_index = 0\n", "[drive.A] has no device: set device = /dev/nstN");
    refused(&w, "[drive.A]\ndevice =\n", "[drive.A] has no device: set device = /dev/nstN");
    refused(
        &w,
        &format!("{CHANGER}[drive.A]\ndevice = /dev/nst0\nchanger_index = first\n"),
        "[drive.A] changer_index = \"first\" is not a number: give the drive's Data Transfer Element number in mtx \
         status (0, 1, ...)",
    );
    refused(
        &w,
        &format!("{CHANGER}[drive.A]\ndevice = /dev/nst0\nchanger_index = -1\n"),
        "[drive.A] changer_index = \"-1\" is not a number: give the drive's Data Transfer Element number in mtx \
         status (0, 1, ...)",
    );
    refused(
        &w,
        &format!(
            "{CHANGER}[drive.A]\ndevice = /dev/nst0\nchanger_index = 0\n[drive.B]\ndevice = /dev/nst1\nchanger_index = 0\n"
        ),
        "drives A and B have the same changer_index 0: each drive is its own Data Transfer Element in mtx status",
    );
    refused(
        &w,
        "[drive.A]\ndevice = /dev/nst0\n[drive.B]\ndevice = /dev/nst0\n",
        "drives A and B have the same device /dev/nst0: each drive needs its own",
    );
    refused(
        &w,
        "tape_device = /dev/nst1\n[drive.B]\ndevice = /dev/nst1\n",
        "drives default and B have the same device /dev/nst1: each drive needs its own",
    );
    refused(
        &w,
        "[drive.A]\ndevice = /dev/nst0\nchanger_index = 0\n",
        "[drive.A] has changer_index but there is no [changer] section: add [changer] with device = /dev/sgN (see \
         tape.conf.ex), or remove changer_index",
    );
    refused(
        &w,
        "[drive.a b]\ndevice = /dev/nst0\n",
        "drive name \"a b\" in [drive.a b] is not allowed: use only letters, digits, _ and -",
    );
    refused(
        &w,
        "[drive.]\ndevice = /dev/nst0\n",
        "drive name \"\" in [drive.] is not allowed: use only letters, digits, _ and -",
    );
    refused(
        &w,
        "[changer]\ncommand = mtx\n[drive.A]\ndevice = /dev/nst0\n",
        "[changer] has no device: set device = /dev/sgN (the changer's SCSI generic device)",
    );
    // Without drive sections, tape_device stays required, as before.
    refused(&w, "", "key 'tape_device' missing under [default] (see tape.conf.ex)");
}

#[test]
fn unknown_keys_in_library_sections_are_warned_about() {
    let w = World::new();
    w.run(&["open_tape", "T1", "-y", "--serial", "S1", "--online"], 0);
    conf(&w, "[changer]\ndevice = /dev/sg5\ncomand = mtx\n[drive.A]\ndevice = /dev/nst0\nchanger_idx = 0\n");
    let out = w.run(&["tapes"], 0);
    assert_eq!(
        stderr(&out),
        "tapeop: warning: config file tape.conf: unknown key 'comand' under [changer] is ignored (did you mean 'command'?)\n\
         tapeop: warning: config file tape.conf: unknown key 'changer_idx' under [drive.A] is ignored (did you mean 'changer_index'?)\n"
    );
    assert!(stdout(&out).contains("T1"));
}

#[test]
fn several_drives_need_drive_for_a_command_that_uses_one() {
    let w = World::new();
    w.run(&["open_tape", "T1", "-y", "--serial", "S1", "--online"], 0);
    two_drives(&w);
    for args in [&["drive"][..], &["archive"], &["confirm", "next"], &["scan_tape"], &["load", "T1"], &["unload"]] {
        let out = w.run(args, 1);
        assert_eq!(stderr(&out), "tapeop: tape.conf names 2 drives (A, B): pick one with --drive NAME\n", "{args:?}");
    }
    // Reports use no drive: no --drive needed, and --drive is accepted anywhere.
    for args in [&["tapes"][..], &["status"], &["tapes", "--drive", "B"], &[]] {
        let out = w.run(args, 0);
        assert!(stdout(&out).contains("T1"), "{args:?}: {}", describe(&out));
    }
    // An unknown name is refused even where no drive is needed.
    for args in [&["--drive", "C", "drive"][..], &["tapes", "--drive", "C"]] {
        let out = w.run(args, 1);
        assert_eq!(stderr(&out), "tapeop: no drive named C in tape.conf: the drives are A, B\n", "{args:?}");
    }
}

#[test]
fn the_drive_picked_is_the_one_used() {
    let w = World::new();
    two_drives(&w);
    // Neither device exists here: `drive` fails naming the device it opened.
    let out = w.run(&["--drive", "B", "drive"], 1);
    assert!(stderr(&out).contains("/dev/nst1") && !stderr(&out).contains("/dev/nst0"), "{}", describe(&out));
    let out = w.run(&["drive", "--drive", "A"], 1);
    assert!(stderr(&out).contains("/dev/nst0") && !stderr(&out).contains("/dev/nst1"), "{}", describe(&out));
    // One [drive.NAME] alone is the default; the legacy form's drive is `default`.
    conf(&w, "[drive.only]\ndevice = /dev/nst7\n");
    assert!(stderr(&w.run(&["drive"], 1)).contains("/dev/nst7"));
    conf(&w, "tape_device = /dev/nst3\n");
    assert!(stderr(&w.run(&["--drive", "default", "drive"], 1)).contains("/dev/nst3"));
    let out = w.run(&["--drive", "A", "drive"], 1);
    assert_eq!(stderr(&out), "tapeop: no drive named A in tape.conf: the drives are default\n");
    // Both forms at once: `default` and the named drives.
    conf(&w, "tape_device = /dev/nst3\n[drive.A]\ndevice = /dev/nst0\n");
    let out = w.run(&["drive"], 1);
    assert_eq!(stderr(&out), "tapeop: tape.conf names 2 drives (default, A): pick one with --drive NAME\n");
}

/// A fake mtx in `w`'s root printing `status` for `mtx -f DEV status`.
fn fake_mtx(w: &World, status: &str) -> String {
    let path = w.root().join("mtx");
    fs::write(w.root().join("status.txt"), status).unwrap();
    fs::write(&path, format!("#!/bin/sh\ncat '{}/status.txt'\n", w.root().display())).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn drive_on_the_picked_virtual_drive_names_its_cartridge() {
    let rig = Rig::new(false);
    let w = &rig.w;
    w.run(&["open_tape", "T1", "-y", "--serial", "A00001L9", "--online"], 0);
    let mtx = fake_mtx(
        w,
        "  Storage Changer /dev/sg5:2 Drives, 2 Slots ( 0 Import/Export )\n\
         Data Transfer Element 0:Empty\n\
         Data Transfer Element 1:Full (Storage Element 2 Loaded):VolumeTag = A00001L9   \n\
         \x20     Storage Element 1:Empty\n\
         \x20     Storage Element 2:Empty\n",
    );
    let dev = rig.drive.device_path();
    conf(
        w,
        &format!(
            "[changer]\ndevice = /dev/sg5\ncommand = {mtx}\n[drive.A]\ndevice = /nowhere/nst0\nchanger_index = 0\n\
             [drive.B]\ndevice = {}\nchanger_index = 1\n",
            dev.display()
        ),
    );
    let out = w.run(&["--drive", "B", "drive"], 0);
    let text = stdout(&out);
    assert!(text.starts_with(&format!("Drive:           {}\n", dev.display())), "{text}");
    assert!(
        text.contains("Cartridge:       A00001L9  tape T1 (open, online, from slot 2) [changer element 1]\n"),
        "{text}"
    );
    // Unloaded, drive still says what the changer reports for it.
    rig.drive.set_loaded(false);
    let text = stdout(&w.run(&["--drive", "B", "drive"], 0));
    assert!(text.contains("Loaded:          no"), "{text}");
    assert!(text.contains("Cartridge:       A00001L9  tape T1"), "{text}");
    // A drive outside the changer: drive says it cannot tell.
    conf(w, &format!("[changer]\ndevice = /dev/sg5\ncommand = {mtx}\n[drive.B]\ndevice = {}\n", dev.display()));
    let text = stdout(&w.run(&["drive"], 0));
    assert!(text.contains("Cartridge:       unknown (drive B has no changer_index in tape.conf)\n"), "{text}");
    // No [changer]: no Cartridge line at all.
    conf(w, &format!("[drive.B]\ndevice = {}\n", dev.display()));
    let text = stdout(&w.run(&["drive"], 0));
    assert!(!text.contains("Cartridge:"), "{text}");
}
