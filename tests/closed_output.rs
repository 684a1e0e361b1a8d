//! A closed standard output: a job finishes and records what it is writing,
//! then stops (exit 41); a report into a closed pipe ends quietly (exit
//! 141, as coreutils' commands do); and `tape_batch.bash` keeps its log
//! writer alive through a Ctrl-C to its process group.

mod support;

use support::world;

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use world::{Gate, World, describe, stderr};

/// A pipe whose reader is already gone, to be a child's stdout.
fn closed_pipe() -> Stdio {
    let (reader, writer): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// Import `names` as targets of one file each, open T1 online, assign all.
fn assigned(w: &World, names: &[&str]) -> Vec<PathBuf> {
    let targets: Vec<PathBuf> = names
        .iter()
        .map(|n| {
            let t = w.data().join(n);
            fs::create_dir_all(&t).unwrap();
            fs::write(t.join("f"), n.repeat(5000)).unwrap();
            t
        })
        .collect();
    let list = w.list("list.txt", &targets);
    w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    targets
}

fn history(w: &World) -> Vec<(String, i64, String)> {
    let conn = w.sql();
    let mut stmt = conn.prepare("SELECT kind, file_number, outcome FROM tapeop_history ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

#[test]
fn archive_into_a_closed_stdout_records_the_job_then_stops() {
    let w = World::new();
    let targets = assigned(&w, &["a", "b"]);
    let out = w.command(&["archive", "--repeat"]).stdout(closed_pipe()).output().unwrap();
    assert_eq!(out.status.code(), Some(41), "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "tapeop: stopping: standard output was closed (its reader went away); what was done so far is recorded\n"
    );
    let a = targets[0].to_string_lossy().into_owned();
    let b = targets[1].to_string_lossy().into_owned();
    assert_eq!(w.backups(), vec![(a, 1, "recorded".to_string()), (b, -1, "assigned".to_string())]);
    assert_eq!(
        history(&w),
        vec![("label".to_string(), 0, "ok".to_string()), ("archive".to_string(), 1, "ok".to_string())],
        "no row left running"
    );
    assert!(w.tape_file(1).exists() && !w.tape_file(2).exists());
    // With a reader again, the next archive carries on where it stopped.
    w.run(&["archive"], 0);
    assert!(w.backups().iter().all(|(_, _, s)| s == "recorded"), "{:?}", w.backups());
}

#[test]
fn reports_into_a_closed_pipe_end_quietly_with_141() {
    let w = World::new();
    assigned(&w, &["a"]);
    w.run(&["archive"], 0);
    for args in [&["status"][..], &["tapes"], &["tape_detail", "-v"], &["log"], &["completions", "bash"], &["check"]] {
        let out = w.command(args).stdout(closed_pipe()).output().unwrap();
        assert_eq!(out.status.code(), Some(141), "tapeop {args:?}: {}", describe(&out));
        assert_eq!(stderr(&out), "", "tapeop {args:?} into a closed pipe says nothing");
    }
}

fn batch(root: &Path, mode: &str) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tape_batch.bash");
    let mut c = Command::new("bash");
    c.arg(script).arg(mode).current_dir(root).env("TAPEOP", env!("CARGO_BIN_EXE_tapeop"));
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    c
}

/// Lines of `out`, read on a thread, so a writer that died fails the test
/// (after two minutes) instead of hanging it.
fn lines(out: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for a line containing `want`.
fn wait_for(lines: &std::sync::mpsc::Receiver<String>, want: &str) {
    loop {
        match lines.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(line) if line.contains(want) => return,
            Ok(_) => {}
            Err(e) => panic!("no {want:?} in the output ({e}): its writer died?"),
        }
    }
}

#[test]
fn batch_survives_ctrl_c_to_its_process_group_and_logs_to_the_end() {
    let w = World::new();
    let targets = assigned(&w, &["a", "b"]);
    let gate = Gate::new(&w);
    w.config(&gate.ssh_command(), "emulator_dir = emu");
    let mut child = batch(w.root(), "archive").process_group(0).spawn().unwrap();
    let out = lines(child.stdout.take().unwrap());
    gate.wait_started();
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGINT).unwrap();
    // tapeop's answer to the Ctrl-C comes through tee: tee is still alive.
    wait_for(&out, "Ctrl-C: finishing the current job");
    gate.release();
    let rest: Vec<String> = out.iter().collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(41), "{rest:?}");
    let a = targets[0].to_string_lossy().into_owned();
    let b = targets[1].to_string_lossy().into_owned();
    assert_eq!(w.backups(), vec![(a, 1, "recorded".to_string()), (b, -1, "assigned".to_string())]);
    assert_eq!(
        history(&w),
        vec![("label".to_string(), 0, "ok".to_string()), ("archive".to_string(), 1, "ok".to_string())]
    );
    let log = fs::read_to_string(w.root().join("backup.log")).unwrap();
    for line in [
        "Ctrl-C: finishing the current job",
        "Marking record as archived.",
        "tapeop: stop requested (exit_file present or Ctrl-C); remove exit_file to carry on",
        "tapeop archive exited with code 41; stopping.",
    ] {
        assert!(log.contains(line), "backup.log lacks {line:?}:\n{log}");
    }
}
