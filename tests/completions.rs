//! `completions SHELL` and `manpage` print without any tape.conf: run the
//! real binary in an empty directory.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tapeop_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapeop"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("TAPEOP_CONFIG")
        .output()
        .expect("run tapeop")
}

fn empty_dir() -> tempfile::TempDir {
    let tmp = tempfile::Builder::new().prefix("tapeop-completions-").tempdir().unwrap();
    assert!(!tmp.path().join("tape.conf").exists());
    tmp
}

#[test]
fn bash_completions_name_the_commands_without_a_config() {
    let tmp = empty_dir();
    let out = tapeop_in(tmp.path(), &["completions", "bash"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    for word in ["tape_detail", "where_is", "check", "log", "--json"] {
        assert!(stdout.contains(word), "bash completions lack {word}");
    }
    assert!(out.stderr.is_empty());
}

#[test]
fn other_shells_and_an_unknown_shell() {
    let tmp = empty_dir();
    for shell in ["zsh", "fish"] {
        let out = tapeop_in(tmp.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("tape_detail"), "{shell}");
    }
    let out = tapeop_in(tmp.path(), &["completions", "cmd.exe"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn manpage_is_roff_without_a_config() {
    let tmp = empty_dir();
    let out = tapeop_in(tmp.path(), &["manpage"]);
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let page = String::from_utf8_lossy(&out.stdout);
    // clap_mangen opens with its two-line definition of the \*(Aq string
    // (`.ie \n(.g .ds Aq ...` / `.el .ds Aq '`); the page itself starts at .TH.
    let body: Vec<&str> = page.lines().skip_while(|l| l.starts_with(".ie ") || l.starts_with(".el ")).collect();
    assert!(page.lines().take_while(|l| !l.starts_with(".TH")).count() <= 2, "{}", &page[..page.len().min(300)]);
    assert!(body[0].starts_with(".TH tapeop 1"), "{}", &page[..page.len().min(300)]);
    assert!(body.iter().any(|l| l.starts_with(".SH")));
    assert!(page.contains("tapeop"));
    assert!(out.stderr.is_empty());
}
