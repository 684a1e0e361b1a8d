//! `check` gives no false or permanent alarms (issue 11, defect 4), on the
//! virtual st drive: an archive that is simply running is reported as
//! running (it holds the catalogue's lock), not as killed; an archive
//! killed between recording its tape file and ending its history row stops
//! being an alarm once the target is confirmed; and `ack ID` acknowledges
//! an old alarm, in the catalogue and the log.

mod support;

use support::{vst_rig, world};

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use vst_rig::{Rig, assert_has, found};
use world::describe;

/// Run `tapeop archive` with `TAPEOP_FAULT=archive-after-record`: it dies
/// (SIGKILL) after recording the tape file, before ending its history row.
fn archive_killed_after_record(rig: &Rig) {
    let out = rig.w.command(&["archive"]).env("TAPEOP_FAULT", "archive-after-record").output().unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", describe(&out));
}

fn detail(doc: &serde_json::Value, key: &str) -> String {
    doc["conditions"][key]["items"][0]["detail"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_running_archive_is_running_and_a_killed_one_is_cleared_by_its_confirm_or_an_ack() {
    let rig = Rig::new(false);
    let targets = [rig.target("a", 3000), rig.target("b", 4000)];
    rig.prepare(&targets);

    // The data host's command waits at a gate: the archive is running, its
    // history row says `running`, and it holds the catalogue's lock.
    let (started, gate) = (rig.path("started.fifo"), rig.path("gate.fifo"));
    for fifo in [&started, &gate] {
        assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
    }
    let wrapper = rig.path("gate.sh");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ ! -e {p}.passed ]; then : > {p}.passed; echo up > {s}; read x < {g}; fi\nexec sh -c \"$1\"\n",
            p = wrapper.display(),
            s = started.display(),
            g = gate.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    rig.conf_ssh(&wrapper.display().to_string(), "");
    let archive = rig.w.command(&["archive"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Should the archive end before the gate, its reader is let go (no hang).
    let (tx, rx) = mpsc::channel();
    let fifo = started.clone();
    thread::spawn(move || {
        let out = archive.wait_with_output();
        let _ = fs::OpenOptions::new().read(true).write(true).open(&fifo);
        let _ = tx.send(out);
    });
    let mut word = String::new();
    fs::File::open(&started).unwrap().read_to_string(&mut word).unwrap();
    let check = (word == "up\n").then(|| rig.w.output(&["--json", "check"]));
    // Open the gate before asserting anything, so that a failure leaves no archive waiting.
    if check.is_some() {
        fs::OpenOptions::new().write(true).open(&gate).unwrap().write_all(b"go\n").unwrap();
    }
    let out = rx.recv().unwrap().unwrap();
    let check = check.unwrap_or_else(|| panic!("the archive never reached the data host: {}", describe(&out)));
    let code = check.status.code().unwrap_or(-1);
    let doc: serde_json::Value =
        serde_json::from_slice(&check.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&check)));
    assert_eq!(found(&doc, "failed_archive"), 0, "a running archive is no failure: {doc}");
    assert_eq!(found(&doc, "archive_running"), 1, "{doc}");
    let running = detail(&doc, "archive_running");
    assert_has(&running, "tape T1 file 1");
    assert_has(&running, "archive running since");
    assert_has(&running, "(archive))");
    assert_eq!(code, 0, "{doc}");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (code, doc) = rig.check();
    assert_eq!((code, found(&doc, "archive_running"), found(&doc, "failed_archive")), (0, 0, 0), "{doc}");

    // Killed between recording and the history update: an alarm...
    rig.conf("");
    archive_killed_after_record(&rig);
    assert_eq!(rig.count("SELECT COUNT(*) FROM backups WHERE status = 'recorded'"), 2);
    let (code, doc) = rig.check();
    assert_eq!(code, 1);
    assert_eq!(found(&doc, "failed_archive"), 1, "{doc}");
    assert_has(&detail(&doc, "failed_archive"), "it never finished (killed?)");
    assert_has(&detail(&doc, "failed_archive"), "tapeop ack");
    // ...until the target it wrote is confirmed; closing the tape keeps it clear.
    rig.run(&["confirm", "--repeat"], 40);
    let (code, doc) = rig.check();
    assert_eq!((code, found(&doc, "failed_archive")), (0, 0), "{doc}");
    rig.run(&["-y", "close_tape"], 0);
    let (code, doc) = rig.check();
    assert_eq!((code, found(&doc, "failed_archive")), (0, 0), "{doc}");

    // An alarm that nothing clears: acknowledged by its history id.
    let c = rig.target("c", 2000);
    let list = rig.w.list("more.txt", &[c]);
    rig.run(&["-y", "import", list.to_str().unwrap()], 0);
    rig.load("B.tap");
    rig.run(&["open_tape", "T2", "--serial", "S2", "--online", "-y"], 0);
    rig.run(&["-y", "assign"], 0);
    archive_killed_after_record(&rig);
    let (code, doc) = rig.check();
    assert_eq!((code, found(&doc, "failed_archive")), (1, 1), "{doc}");
    let id = doc["conditions"]["failed_archive"]["items"][0]["history_id"].as_i64().unwrap();
    assert_has(&detail(&doc, "failed_archive"), &format!("history id {id}; tapeop ack {id} once dealt with"));

    let before = rig.count("SELECT COUNT(*) FROM tapeop_history");
    let out = rig.run(&["ack", "999999"], 1);
    assert_has(&out, "there is no history id 999999");
    let ok_id = rig.count("SELECT MIN(id) FROM tapeop_history WHERE kind = 'confirm' AND outcome = 'ok'");
    let out = rig.run(&["ack", &ok_id.to_string()], 1);
    assert_has(&out, "not an alarm");
    rig.run(&["ack", "twelve"], 2);
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapeop_history"), before, "a refused ack logged something");

    let out = rig.run(&["ack", &id.to_string(), "--note", "tape file checked by hand"], 0);
    assert_has(&out, &format!("Acknowledged history id {id}"));
    assert_eq!(rig.count(&format!("SELECT COUNT(*) FROM tapeop_meta WHERE key = 'ack_history_{id}'")), 1);
    let (code, doc) = rig.check();
    assert_eq!((code, found(&doc, "failed_archive")), (0, 0), "{doc}");
    let out = rig.run(&["log"], 0);
    assert_has(&out, &format!("acknowledges history id {id} (archive running): tape file checked by hand"));
    let out = rig.run(&["ack", &id.to_string()], 0);
    assert_has(&out, "was already acknowledged");
    assert_eq!(rig.count("SELECT COUNT(*) FROM tapeop_meta WHERE key LIKE 'ack_history_%'"), 1);
}
