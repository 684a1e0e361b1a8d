//! The simulated tape library (tests/support/library.rs, mtx-sim and the
//! virtual drives' control files), exercised through the real `mt` (mt-st),
//! GNU tar and mtx-sim only: moves, mtx's exact output and errors, fault
//! injection, and a caller killed mid-move.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::library::{Cartridge, Library};
use support::vst::{self, DriveState};

/// Exit code, stdout and stderr of an mtx-sim run.
fn run(lib: &Library, args: &[&str]) -> (i32, String, String) {
    split(lib.mtx(args))
}

fn split(out: Output) -> (i32, String, String) {
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn mt(device: &Path, args: &[&str]) -> (i32, String, String) {
    split(Command::new("mt").arg("-f").arg(device).args(args).output().expect("running mt (install mt-st)"))
}

fn tar(args: &[&str], device: &Path, dir: &Path) -> (i32, String, String) {
    let out = Command::new("tar").args(args).arg(device).arg("-C").arg(dir).args(["."]).output().unwrap();
    split(out)
}

fn pad(tag: &str) -> String {
    format!("{tag:<32}")
}

/// A temp dir and a library: 2 drives, A00001L9, A00002L9, an unlabelled
/// cartridge and CLN001L1 in slots 1-4, slot 5 empty, one I/E slot (6).
fn library() -> (tempfile::TempDir, Library) {
    let dir = tempfile::Builder::new().prefix("library-sim").tempdir().unwrap();
    let carts = [
        Cartridge::labelled("A00001L9"),
        Cartridge::labelled("A00002L9"),
        Cartridge { barcode: None, capacity: Some(1 << 20), cleaning: false },
        Cartridge::cleaning("CLN001L1"),
    ];
    let lib = Library::with_slots(dir.path(), 2, &carts, 5, 1);
    (dir, lib)
}

fn sense_block(key: &str, asc: &str, ascq: &str) -> String {
    [
        "Long Report=yes".to_string(),
        "Valid Residual=no".into(),
        "Error Code=70 (Current)".into(),
        format!("Sense Key={key}"),
        "FileMark=no".into(),
        "EOM=no".into(),
        "ILI=no".into(),
        format!("Additional Sense Code = {asc}"),
        format!("Additional Sense Qualifier = {ascq}"),
        "BPV=no".into(),
        "Error in CDB=no".into(),
        "SKSV=no".into(),
    ]
    .iter()
    .map(|l| format!("mtx: Request Sense: {l}\n"))
    .collect()
}

#[test]
fn status_is_mtx_format_byte_for_byte() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    let dev = lib.device().display().to_string();
    let expected = format!(
        "  Storage Changer {dev}:2 Drives, 6 Slots ( 1 Import/Export )\n\
         Data Transfer Element 0:Empty\n\
         Data Transfer Element 1:Empty\n\
         \x20     Storage Element 1:Full :VolumeTag={}\n\
         \x20     Storage Element 2:Full :VolumeTag={}\n\
         \x20     Storage Element 3:Full \n\
         \x20     Storage Element 4:Full :VolumeTag={}\n\
         \x20     Storage Element 5:Empty\n\
         \x20     Storage Element 6 IMPORT/EXPORT:Empty\n",
        pad("A00001L9"),
        pad("A00002L9"),
        pad("CLN001L1")
    );
    assert_eq!(lib.status_text(), expected);

    assert_eq!(
        run(&lib, &["load", "2", "1"]),
        (0, "Loading media from Storage Element 2 into drive 1...done\n".into(), String::new())
    );
    let expected = expected
        .replace(
            "Element 1:Empty\n",
            &format!("Element 1:Full (Storage Element 2 Loaded):VolumeTag = {}\n", pad("A00002L9")),
        )
        .replace(&format!("Storage Element 2:Full :VolumeTag={}\n", pad("A00002L9")), "Storage Element 2:Empty\n");
    assert_eq!(lib.status_text(), expected);
    assert_eq!(lib.in_drive(1).as_deref(), Some("A00002L9"));
    assert_eq!(lib.in_slot(2), None);
    assert_eq!(lib.in_slot(3).as_deref(), Some("slot3"));
    assert_eq!(run(&lib, &["inventory"]), (0, String::new(), String::new()));
}

/// Every line of mtx-sim's status has the shape of a line of the real
/// samples in tests/support/mtx_samples (same fields, same separators).
#[test]
fn status_lines_have_the_shape_of_the_real_samples() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    run(&lib, &["load", "1", "0"]);
    let shapes = [
        regex_lite(r"^  Storage Changer \S+:[0-9]+ Drives, [0-9]+ Slots \( [0-9]+ Import/Export \)$"),
        regex_lite(r"^Data Transfer Element [0-9]+:Empty$"),
        regex_lite(r"^Data Transfer Element [0-9]+:Full \(Storage Element [0-9]+ Loaded\)(:VolumeTag = \S+ *)?$"),
        regex_lite(r"^      Storage Element [0-9]+( IMPORT/EXPORT)?:(Empty|Full (:VolumeTag=\S+ *)?)$"),
    ];
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mtx_samples");
    let mut texts = vec![lib.status_text()];
    for entry in fs::read_dir(&samples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            texts.push(fs::read_to_string(&path).unwrap());
        }
    }
    assert!(texts.len() >= 4, "samples missing in {}", samples.display());
    for text in &texts {
        for line in text.lines() {
            let shape = shapes.iter().position(|re| re(line));
            assert!(shape.is_some(), "line of unknown shape: {line:?}");
        }
    }
}

/// A tiny matcher for the few patterns above, through grep -E (no regex
/// crate in this project).
fn regex_lite(pattern: &'static str) -> impl Fn(&str) -> bool {
    move |line: &str| {
        let mut child = Command::new("grep").args(["-qE", pattern]).stdin(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(format!("{line}\n").as_bytes()).unwrap();
        child.wait().unwrap().success()
    }
}

#[test]
fn a_tape_written_in_one_drive_reads_back_in_the_other() {
    let _serial = vst::serial();
    let (dir, lib) = library();
    let (d0, d1) = (lib.drive(0).device_path(), lib.drive(1).device_path());
    let (code, status, _) = mt(&d0, &["status"]);
    assert_eq!(code, 0);
    assert!(status.contains("DR_OPEN"), "{status}");

    assert_eq!(
        run(&lib, &["load", "1"]),
        (0, "Loading media from Storage Element 1 into drive 0...done\n".into(), String::new())
    );
    assert_eq!(lib.drive(0).state(), DriveState::Loaded(lib.image("A00001L9")));
    let (code, status, err) = mt(&d0, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(status.contains(" BOT ONLINE"), "{status}");
    assert_eq!(vst::mt_position(&status), Some((0, 0)));

    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("hello.txt"), "hello from slot 1\n").unwrap();
    assert_eq!(tar(&["-cf"], &d0, &src).0, 0);
    assert_eq!(mt(&d0, &["offline"]).0, 0);
    assert_eq!(lib.drive(0).state(), DriveState::Ejected(lib.image("A00001L9")));
    assert_eq!(run(&lib, &["unload"]), (0, "Unloading drive 0 into Storage Element 1...done\n".into(), String::new()));
    assert_eq!(lib.drive(0).state(), DriveState::Empty);
    assert_eq!(fs::read_to_string(lib.drive(0).control_path()).unwrap(), "empty\n");
    let (code, _, err) = mt(&d0, &["rewind"]);
    assert_ne!(code, 0);
    assert!(err.contains("No medium found"), "{err}");

    assert_eq!(run(&lib, &["load", "1", "1"]).0, 0);
    assert_eq!(lib.in_drive(1).as_deref(), Some("A00001L9"));
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let (code, _, err) = tar(&["-xf"], &d1, &out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read_to_string(out.join("hello.txt")).unwrap(), "hello from slot 1\n");
}

#[test]
fn unloading_a_threaded_tape_fails_like_mtx_and_changes_nothing() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    run(&lib, &["load", "1", "0"]);
    let before = lib.status_text();
    let (code, out, err) = run(&lib, &["unload", "1", "0"]);
    assert_eq!(code, 1);
    assert_eq!(out, "Unloading drive 0 into Storage Element 1...");
    let expected =
        sense_block("Illegal Request", "53", "02") + "mtx: MOVE MEDIUM from Element Address 256 to 4096 Failed\n";
    assert_eq!(err, expected);
    assert_eq!(lib.status_text(), before);
    assert_eq!(lib.drive(0).state(), DriveState::Loaded(lib.image("A00001L9")));
    assert_eq!(lib.log().last().map(String::as_str), Some("status -> ok"));
    assert!(lib.log().contains(&"unload 1 0 -> failed".to_string()), "{:?}", lib.log());
}

#[test]
fn the_drive_refuses_to_give_up_a_cartridge_a_program_holds_open() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    run(&lib, &["load", "1", "0"]);
    assert_eq!(mt(&lib.drive(0).device_path(), &["offline"]).0, 0);
    // A program holding the device (O_NONBLOCK: the drive is not ready).
    let held = std::fs::OpenOptions::new().read(true).custom_flags_nonblock().open(lib.drive(0).device_path()).unwrap();
    assert!(lib.drive(0).is_open());
    let (code, _, err) = run(&lib, &["unload"]);
    assert_eq!(code, 1);
    assert!(err.ends_with("mtx: MOVE MEDIUM from Element Address 256 to 4096 Failed\n"), "{err}");
    assert_eq!(lib.in_drive(0).as_deref(), Some("A00001L9"));
    drop(held);
    assert_eq!(run(&lib, &["unload"]).0, 0);
    assert_eq!(lib.in_slot(1).as_deref(), Some("A00001L9"));
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

#[test]
fn mtx_errors_for_bad_moves() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    let before = lib.status_text();
    let fails = |args: &[&str], out: &str, err: &str| {
        assert_eq!(run(&lib, args), (1, out.to_string(), format!("mtx: {err}\n")), "mtx-sim {args:?}");
    };
    fails(
        &["load", "5", "0"],
        "Loading media from Storage Element 5 into drive 0...",
        "Source Element Address 4100 is Empty",
    );
    fails(
        &["load", "6", "1"],
        "Loading media from Storage Element 6 into drive 1...",
        "Source Element Address 16 is Empty",
    );
    fails(&["load", "7", "0"], "", "Invalid <storage-element-number> argument '7' to 'load' command");
    fails(&["load", "1", "2"], "", "illegal <drive-number> argument '2' to 'load' command");
    fails(&["load"], "", "No source specified");
    fails(&["unload", "5", "1"], "", "Data Transfer Element 1 is Empty");
    fails(&["unload"], "", "No Source for tape in drive 0!");
    fails(&["unload", "9", "0"], "", "illegal <storage-element-number> argument '9' to 'unload' command");
    fails(&["transfer", "5", "1"], "", "Source Element Address 4100 is Empty");
    fails(&["transfer", "1", "2"], "", "Destination Element Address 4097 is Already Full");
    fails(&["transfer", "1", "7"], "", "Invalid destination");
    fails(&["transfer", "8", "1"], "", "Invalid source");
    assert_eq!(lib.status_text(), before);

    assert_eq!(run(&lib, &["load", "1", "0"]).0, 0);
    fails(&["load", "2", "0"], "", "Drive 0 Full (Storage Element 1 loaded)");
    fails(&["unload", "2", "0"], "", "Storage Element 2 is Already Full");

    let missing = lib.device().join("nowhere");
    let out = Command::new(Library::command()).arg("-f").arg(&missing).arg("status").output().unwrap();
    let expected = format!("mtx: cannot open SCSI device '{}' - No such file or directory\n", missing.display());
    assert_eq!(split(out), (1, String::new(), expected));
    let (code, out, err) = run(&lib, &["frobnicate"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("Usage:\n"), "{err}");
}

#[test]
fn transfer_moves_between_storage_and_import_export_slots() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    assert_eq!(run(&lib, &["transfer", "2", "6"]), (0, String::new(), String::new()));
    assert_eq!(lib.in_slot(6).as_deref(), Some("A00002L9"));
    assert_eq!(lib.in_slot(2), None);
    assert!(
        lib.status_text().contains(&format!("Storage Element 6 IMPORT/EXPORT:Full :VolumeTag={}\n", pad("A00002L9")))
    );
    assert_eq!(run(&lib, &["load", "6", "1"]).0, 0);
    assert_eq!(lib.in_drive(1).as_deref(), Some("A00002L9"));
}

#[test]
fn a_cleaning_cartridge_cleans_and_comes_back_ejected() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    assert_eq!(run(&lib, &["load", "4", "0"]).0, 0);
    assert_eq!(lib.drive(0).state(), DriveState::Ejected(lib.image("CLN001L1")));
    let (code, status, _) = mt(&lib.drive(0).device_path(), &["status"]);
    assert_eq!(code, 0);
    assert!(status.contains("DR_OPEN"), "{status}");
    let (code, _, err) = mt(&lib.drive(0).device_path(), &["load"]);
    assert_ne!(code, 0, "a cleaning cartridge never loads for data");
    assert!(err.contains("Input/output error"), "{err}");
    assert_eq!(run(&lib, &["unload"]), (0, "Unloading drive 0 into Storage Element 4...done\n".into(), String::new()));
}

#[test]
fn the_capacity_of_a_cartridge_reaches_its_drive() {
    let _serial = vst::serial();
    let (dir, lib) = library();
    assert_eq!(run(&lib, &["load", "3", "0"]).0, 0);
    assert_eq!(
        fs::read_to_string(lib.drive(0).control_path()).unwrap(),
        format!("loaded {}\n", lib.image("slot3").display())
    );
    // 1 MiB capacity: dd of 2 MiB in 64 KiB records meets early warning.
    let out = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", lib.drive(0).device_path().display()))
        .args(["bs=65536", "count=32"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "writing past capacity should fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No space left on device"));
    drop(dir);
}

#[test]
fn control_file_protocol() {
    let _serial = vst::serial();
    let (dir, lib) = library();
    let control = lib.drive(1).control_path();
    let image = dir.path().join("loose.tap");
    let errno = |text: &str| fs::write(&control, text).unwrap_err().raw_os_error();
    assert_eq!(fs::metadata(&control).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(errno("unload\n"), Some(libc::ENOMEDIUM));
    assert_eq!(errno("fly\n"), Some(libc::EINVAL));
    assert_eq!(errno(&format!("load {} capacity=x\n", image.display())), Some(libc::EINVAL));
    fs::write(&control, format!("load {} capacity=4096\n", image.display())).unwrap();
    assert_eq!(fs::read_to_string(&control).unwrap(), format!("loaded {}\n", image.display()));
    assert_eq!(lib.drive(1).cartridge(), Some(image.clone()));
    assert_eq!(errno(&format!("load {}\n", image.display())), Some(libc::EBUSY));
    assert_eq!(errno("unload\n"), Some(libc::EBUSY));
    assert_eq!(mt(&lib.drive(1).device_path(), &["offline"]).0, 0);
    assert_eq!(fs::read_to_string(&control).unwrap(), format!("ejected {}\n", image.display()));
    assert_eq!(mt(&lib.drive(1).device_path(), &["load"]).0, 0);
    assert_eq!(lib.drive(1).state(), DriveState::Loaded(image.clone()));
    assert_eq!(mt(&lib.drive(1).device_path(), &["offline"]).0, 0);
    fs::write(&control, "unload\n").unwrap();
    assert_eq!(lib.drive(1).cartridge(), None);
    assert_eq!(fs::read_to_string(&control).unwrap(), "empty\n");
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn each_injected_failure_fails_once_and_changes_nothing() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    assert_eq!(run(&lib, &["load", "2", "1"]).0, 0);
    assert_eq!(mt(&lib.drive(1).device_path(), &["offline"]).0, 0);
    let hw = sense_block("Hardware Error", "15", "01");
    let cases: [(&str, &[&str], &str, String); 4] = [
        (
            "load",
            &["load", "1", "0"],
            "Loading media from Storage Element 1 into drive 0...",
            hw.clone() + "mtx: MOVE MEDIUM from Element Address 4096 to 256 Failed\n",
        ),
        (
            "unload",
            &["unload", "2", "1"],
            "Unloading drive 1 into Storage Element 2...",
            hw.clone() + "mtx: MOVE MEDIUM from Element Address 257 to 4097 Failed\n",
        ),
        (
            "transfer",
            &["transfer", "3", "5"],
            "",
            hw.clone() + "mtx: MOVE MEDIUM from Element Address 4098 to 4100 Failed\n",
        ),
        (
            "status",
            &["status"],
            "",
            sense_block("Hardware Error", "44", "00") + "mtx: READ ELEMENT STATUS Command Failed\n",
        ),
    ];
    for (word, args, out, err) in cases {
        let before = lib.status_text();
        let states = (lib.drive(0).state(), lib.drive(1).state());
        lib.fail_next(word);
        // Another command does not consume it.
        if word != "status" {
            assert_eq!(lib.status_text(), before);
        }
        assert_eq!(run(&lib, args), (1, out.to_string(), err), "fail-next {word}");
        assert!(!lib.device().join("fail-next").exists());
        assert_eq!(lib.status_text(), before, "fail-next {word}");
        assert_eq!((lib.drive(0).state(), lib.drive(1).state()), states);
        assert_eq!(run(&lib, args).0, 0, "{word} after the injected failure");
    }
}

#[test]
fn a_caller_killed_mid_load_leaves_the_move_finished() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    lib.hold_next_load();
    let mut caller = Command::new("bash")
        .args(["-c", "\"$0\" -f \"$1\" load 1 0; echo after"])
        .arg(Library::command())
        .arg(lib.device())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let hold = lib.wait_load_held();
    // Held: the cartridge is in the drive, the state not yet updated.
    assert_eq!(lib.drive(0).state(), DriveState::Loaded(lib.image("A00001L9")));
    assert_eq!(lib.in_drive(0), None);
    assert_eq!(lib.in_slot(1).as_deref(), Some("A00001L9"));
    caller.kill().unwrap();
    caller.wait().unwrap();
    drop(caller.stdout.take());
    drop(caller.stderr.take());
    drop(hold);
    lib.wait_idle();
    assert_eq!(lib.in_drive(0).as_deref(), Some("A00001L9"));
    assert_eq!(lib.in_slot(1), None);
    assert_eq!(lib.drive(0).state(), DriveState::Loaded(lib.image("A00001L9")));
    assert!(!lib.device().join("hold-load").exists());
    assert_eq!(lib.log(), vec!["load 1 0 -> ok".to_string()]);
    // The next load is not held.
    assert_eq!(run(&lib, &["load", "2", "1"]).0, 0);
}

#[test]
fn mtx_sim_killed_mid_load_is_reconciled_by_inventory() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    lib.hold_next_load();
    let mut sim = Command::new(Library::command())
        .arg("-f")
        .arg(lib.device())
        .args(["load", "2", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let hold = lib.wait_load_held();
    sim.kill().unwrap();
    sim.wait().unwrap();
    drop(hold);
    lib.wait_idle();
    // The robot moved the cartridge; the state never heard of it.
    assert_eq!(lib.drive(1).state(), DriveState::Loaded(lib.image("A00002L9")));
    assert_eq!((lib.in_drive(1), lib.in_slot(2).as_deref()), (None, Some("A00002L9")));
    assert_eq!(run(&lib, &["inventory"]), (0, String::new(), String::new()));
    assert_eq!((lib.in_drive(1).as_deref(), lib.in_slot(2)), (Some("A00002L9"), None));
    assert!(lib.status_text().contains("Data Transfer Element 1:Full (Storage Element 2 Loaded):VolumeTag = A00002L9"));
}

#[test]
fn concurrent_moves_do_not_corrupt_the_state() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    let spawn = |args: &[&str]| {
        Command::new(Library::command()).arg("-f").arg(lib.device()).args(args).stdout(Stdio::null()).spawn().unwrap()
    };
    let mut a = spawn(&["load", "1", "0"]);
    let mut b = spawn(&["load", "2", "1"]);
    let mut c = spawn(&["transfer", "3", "6"]);
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success() && c.wait().unwrap().success());
    assert_eq!((lib.in_drive(0).as_deref(), lib.in_drive(1).as_deref()), (Some("A00001L9"), Some("A00002L9")));
    assert_eq!((lib.in_slot(1), lib.in_slot(2), lib.in_slot(6).as_deref()), (None, None, Some("slot3")));
    assert_eq!(lib.log().len(), 3);
}

#[test]
fn conf_sections_name_the_changer_and_each_drive() {
    let _serial = vst::serial();
    let (_dir, lib) = library();
    let expected = format!(
        "[changer]\ndevice = {}\ncommand = {}\n[drive.A]\ndevice = {}\nchanger_index = 0\n[drive.B]\ndevice = {}\nchanger_index = 1\n",
        lib.device().display(),
        Library::command().display(),
        lib.drive(0).device_path().display(),
        lib.drive(1).device_path().display()
    );
    assert_eq!(lib.conf_sections(), expected);
    assert!(Library::command().is_absolute());
}

#[test]
fn virtual_drive_cartridge_methods() {
    let _serial = vst::serial();
    let dir = tempfile::Builder::new().prefix("library-sim").tempdir().unwrap();
    let drive = vst::VirtualDrive::mount_empty(vst::VstOptions::default()).unwrap();
    let image = dir.path().join("t.tap");
    assert_eq!((drive.state(), drive.cartridge()), (DriveState::Empty, None));
    drive.set_loaded(true);
    assert_eq!(drive.state(), DriveState::Empty, "an empty drive cannot load");
    let err = drive.remove().unwrap_err().to_string();
    assert!(err.contains("taking the cartridge out of the virtual drive") && err.contains("No medium found"), "{err}");

    drive.insert(&image, Some(1000)).unwrap();
    assert!(image.exists());
    assert_eq!(drive.state(), DriveState::Loaded(image.clone()));
    assert!(format!("{:#}", drive.insert(&image, None).unwrap_err()).contains("busy"));
    assert!(format!("{:#}", drive.remove().unwrap_err()).contains("busy"), "a threaded cartridge stays");
    drive.set_loaded(false);
    assert_eq!(drive.state(), DriveState::Ejected(image.clone()));
    drive.remove().unwrap();
    assert_eq!(drive.state(), DriveState::Empty);

    drive.insert_cleaning(&image).unwrap();
    assert_eq!(drive.state(), DriveState::Ejected(image.clone()));
    drive.set_loaded(true);
    assert_eq!(drive.state(), DriveState::Ejected(image), "a cleaning cartridge never loads");
    drive.remove().unwrap();
}
