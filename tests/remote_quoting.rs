//! `tapeop::remote`'s quoting of raw bytes as one shell word, checked by
//! running it: through local shells (plain, prefixed, nested) and over a
//! real ssh connection to a private sshd (tests/support/sshd.rs), with
//! bytes that break naive quoting and injection attempts that must create
//! nothing; and a remote command's failure and a dropped connection.
//! The ssh tests run the real `/usr/sbin/sshd` and fail loudly without it.

mod support;

use std::io::{self, Read};

use support::sshd::Sshd;
use tapeop::remote::{CommandFailed, Remote, quote};

/// Byte strings that break naive quoting.
fn nasty() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        "plain",
        "with space",
        "it's",
        "''",
        "'\\''",
        "\"double\"",
        "back\\slash",
        "trailing\\",
        "new\nline",
        "\n",
        "$(touch pwned)",
        "`id`",
        "$HOME",
        "a;b",
        "a&b",
        "a|b",
        "*",
        "?",
        "[a]",
        "~",
        "-rf",
        "--",
        "é 日本",
        "\t tab",
        "!bang",
        "#hash",
        "{a,b}",
        "%s %d",
        "'; touch x; '",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(b"bad\xffname".to_vec());
    v.push(b"\x01\x7f\x80\xfe\xff'\\'\n".to_vec());
    v.push((1u8..=255).collect());
    v
}

fn printf_script(bytes: &[u8]) -> Vec<u8> {
    [b"printf %s ".as_slice(), &quote(bytes)].concat()
}

#[test]
fn quote_round_trips_locally_and_through_prefixes() {
    for ssh_command in ["", "sh -c", "env X=1 sh -c", "  "] {
        let remote = Remote::new(ssh_command).unwrap();
        for s in nasty() {
            let got = remote.run(&printf_script(&s)).unwrap();
            assert_eq!(got, s, "ssh_command {ssh_command:?}, input {s:?}");
        }
    }
}

#[test]
fn quote_composes_for_nested_shells() {
    let remote = Remote::new("sh -c").unwrap();
    for s in nasty() {
        let script = [b"sh -c ".as_slice(), &quote(&printf_script(&s))].concat();
        assert_eq!(remote.run(&script).unwrap(), s, "input {s:?}");
    }
}

#[test]
fn quoted_injection_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let attacks = [
        format!("'; touch {d}/a; '"),
        format!("'; touch {d}/b"),
        format!("$(touch {d}/c)"),
        format!("`touch {d}/d`"),
        format!("x\ntouch {d}/e\n"),
        format!("\\'; touch {d}/f; echo '"),
    ];
    let remote = Remote::new("sh -c").unwrap();
    for attack in &attacks {
        let got = remote.run(&printf_script(attack.as_bytes())).unwrap();
        assert_eq!(got, attack.as_bytes());
    }
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(made.is_empty(), "injection created files: {made:?}");
}

fn count_to_eof(r: &mut impl Read) -> u64 {
    io::copy(r, &mut io::sink()).unwrap()
}

#[test]
fn over_ssh_quoting_round_trips_and_injects_nothing() {
    let server = Sshd::start();
    let remote = Remote::new(&server.ssh_command()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let attack = format!("'; touch {}/a; '$(touch {0}/b)", dir.path().display());
    let mut inputs = nasty();
    inputs.push(attack.into_bytes());
    // One connection: every input printed, each followed by a NUL.
    let script: Vec<u8> =
        inputs.iter().flat_map(|s| [printf_script(s), b"; printf '\\0'; ".to_vec()].concat()).collect();
    let out = remote.run(&script).unwrap();
    let got: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    assert_eq!(got.len(), inputs.len() + 1);
    for (got, want) in got.iter().zip(&inputs) {
        assert_eq!(got, want);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(server.connections(), 1);
}

#[test]
fn over_ssh_failure_carries_remote_stderr() {
    let server = Sshd::start();
    let remote = Remote::new(&server.ssh_command()).unwrap();
    let err = remote.run(b"cd /nonexistent-dir && echo unreachable").unwrap_err();
    let failed = err.downcast_ref::<CommandFailed>().unwrap();
    assert_eq!(failed.code, Some(1), "{err}");
    assert!(failed.stderr.contains("/nonexistent-dir"), "{err}");
}

#[test]
fn over_ssh_large_stream_then_dropped_connection() {
    let mut server = Sshd::start();
    let remote = Remote::new(&server.ssh_command()).unwrap();
    let mut child = remote.spawn(b"head -c 30000000 /dev/zero").unwrap();
    assert_eq!(count_to_eof(&mut child), 30_000_000);
    child.finish().unwrap();

    let mut child = remote.spawn(b"echo started; exec cat /dev/zero").unwrap();
    let mut first = [0u8; 8];
    child.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"started\n");
    server.stop();
    count_to_eof(&mut child);
    let err = child.finish().unwrap_err();
    let failed = err.downcast_ref::<CommandFailed>().unwrap();
    assert_eq!(failed.code, Some(255), "{err}");
    let err = remote.run(b"true").unwrap_err();
    assert!(err.to_string().contains("exit 255"), "{err}");
}
