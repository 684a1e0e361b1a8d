//! Proves the test harnesses: the private sshd (`support/sshd.rs`) accepts
//! logins with `ssh_command()`, counts them, and refuses or drops connections
//! once stopped; the awkward data tree (`support/datatree.rs`) is
//! deterministic and survives `tar -c` over ssh byte for byte. These run the
//! real `/usr/sbin/sshd` and fail loudly when OpenSSH is missing.

mod support;

use support::{datatree, sshd};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use datatree::{PWNED, RANDOM_SIZE, TARGETS, make_awkward_tree, manifest, md5_of};
use sshd::Sshd;

#[test]
fn echo_over_ssh_and_connections_are_counted() {
    let server = Sshd::start();
    assert_eq!(server.connections(), 0, "the readiness probe is not counted");
    let out = server.ssh("echo hi");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(server.connections(), 1);
    server.ssh("true");
    server.ssh("exit 3");
    assert_eq!(server.connections(), 3);
}

#[test]
fn ssh_command_splits_into_a_working_prefix() {
    let server = Sshd::start();
    let words = shell_words::split(&server.ssh_command()).unwrap();
    assert_eq!(words[0], "ssh");
    let out = Command::new(&words[0])
        .args(&words[1..])
        .arg("printf '%s|' \"$0\" \"$USER\"; printf 'a b'")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.ends_with(b"|root|a b"), "{:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn parallel_logins_are_all_accepted() {
    let server = Sshd::start();
    let server = &server;
    let results: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = (0..12).map(|i| s.spawn(move || (i, server.ssh(&format!("echo {i}"))))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in results {
        assert!(out.status.success(), "login {i}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, format!("{i}\n").as_bytes());
    }
    assert_eq!(server.connections(), 12);
}

#[test]
fn stopped_server_refuses_the_next_connection() {
    let mut server = Sshd::start();
    assert!(server.ssh("true").status.success());
    server.stop();
    assert!(!server.is_running());
    let start = Instant::now();
    let out = server.ssh("echo hi");
    assert_eq!(out.status.code(), Some(255), "ssh reports a failed connection as 255");
    assert!(out.stdout.is_empty());
    assert!(start.elapsed() < Duration::from_secs(10));
    server.stop();
}

#[test]
fn stop_drops_a_session_in_progress() {
    let mut server = Sshd::start();
    let words = server.ssh_words();
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .arg("echo started; exec sleep 120")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    server.stop();
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(255), "dropped ssh session: {status}");
}

/// Polls `child` until it exits; kills it and panics past `limit`.
fn wait_with_deadline(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ssh did not notice the server going away within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn awkward_tree_has_every_kind_of_entry() {
    let dir = tempfile::tempdir().unwrap();
    let targets = make_awkward_tree(dir.path());
    assert_eq!(targets.len(), TARGETS.len());
    assert!(targets.iter().all(|t| t.is_dir()));
    assert!(targets[4].starts_with(&targets[3]), "child target nested in parent");
    let map = manifest(&targets[0]);
    let kinds = ["dir", "file ", "symlink -> ", "fifo"];
    for kind in kinds {
        assert!(map.values().any(|d| d.starts_with(kind)), "no {kind:?} entry");
    }
    assert!(map.keys().any(|p| p.as_os_str().len() > 100), "no path over 100 bytes");
    assert!(map.keys().any(|p| p.to_str().is_none()), "no non-UTF-8 name");
    assert!(map.values().any(|d| d.ends_with("links=2")), "no hard-link pair");
    assert!(map[Path::new("random.bin")].starts_with(&format!("file {RANDOM_SIZE} ")));
    assert!(Path::new(&targets[2]).to_str().unwrap().ends_with("$(touch /tmp/pwned)"));
}

#[test]
fn awkward_tree_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_awkward_tree(a.path());
    make_awkward_tree(b.path());
    assert_eq!(manifest(a.path()), manifest(b.path()));
    let random = Path::new(TARGETS[0]).join("random.bin");
    assert_eq!(md5_of(a.path().join(&random)), md5_of(b.path().join(&random)));
}

#[test]
fn awkward_tree_survives_tar_over_ssh() {
    let server = Sshd::start();
    let src = tempfile::tempdir().unwrap();
    make_awkward_tree(src.path());
    let top: Vec<&str> = TARGETS.iter().copied().filter(|t| !t.contains('/') || t.starts_with('$')).collect();
    let script =
        format!("cd {} && tar -cf - -- {}", shell_words::quote(src.path().to_str().unwrap()), shell_words::join(&top));
    let dest = tempfile::tempdir().unwrap();
    let out = server.ssh(&script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    untar(&out.stdout, dest.path());
    assert_eq!(manifest(dest.path()), manifest(src.path()));
    assert!(!Path::new(PWNED).exists(), "a quoting bug ran the injected command");
}

fn untar(archive: &[u8], into: &Path) {
    use std::io::Write;
    let mut tar = Command::new("tar").arg("-xf").arg("-").arg("-C").arg(into).stdin(Stdio::piped()).spawn().unwrap();
    tar.stdin.take().unwrap().write_all(archive).unwrap();
    assert!(tar.wait().unwrap().success());
}
