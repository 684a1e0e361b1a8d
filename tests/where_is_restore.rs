//! The restore command `where_is` prints can be pasted into bash as it
//! is, even for names that are not UTF-8, hold control characters, glob
//! characters or quotes, or start with `-`: run through `bash -c`, it
//! restores exactly that file, byte for byte.

mod support;

use support::world;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use world::{World, describe, stdout};

/// The file names of the target (relative), none of them plain.
const NAMES: [&[u8]; 6] =
    [b"bad\xffname.dat", b"new\nline\xfe", b"glob[1]*?.txt", b"-dash\xff", b"it's \\ \xff", b"caf\xc3\xa9 ok"];

/// A target whose own path is not UTF-8, holding every name of [`NAMES`].
fn archived_world() -> (World, PathBuf) {
    let w = World::new();
    let t = w.data().join(OsStr::from_bytes(b"t\xfe dir"));
    fs::create_dir_all(&t).unwrap();
    for (i, n) in NAMES.iter().enumerate() {
        fs::write(t.join(OsStr::from_bytes(n)), [n, &b" content "[..], &[i as u8; 3]].concat()).unwrap();
    }
    let list = w.list("list.txt", std::slice::from_ref(&t));
    w.archive_all(&list, "T1");
    (w, t)
}

/// The restore commands of a `where_is` run, `DIR` replaced by `to`.
fn restore_commands(out: &str, to: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("# restore: "))
        .map(|l| l.split("   (tape ").next().unwrap().replace("--to DIR", &format!("--to {to}")))
        .collect()
}

fn bash(w: &World, command: &str) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_tapeop")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    Command::new("bash").arg("-c").arg(command).current_dir(w.root()).env("PATH", path).output().unwrap()
}

/// Every file below `dir`, as raw relative names.
fn names_below(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
    v.sort();
    v
}

#[test]
fn the_printed_restore_command_restores_a_non_utf8_name_byte_for_byte() {
    let (w, t) = archived_world();
    for (i, name) in NAMES.iter().enumerate() {
        // where_is takes a glob: `[[]` is a literal `[` there.
        let query = if name.starts_with(b"glob") { b"glob[[]1]*".as_slice() } else { name };
        let out = w.run(&[OsStr::new("where_is"), OsStr::new("--"), OsStr::from_bytes(query)], 0);
        let text = stdout(&out);
        let commands = restore_commands(&text, &format!("out{i}"));
        assert_eq!(commands.len(), 1, "one hint for {:?}:\n{text}", String::from_utf8_lossy(name));
        assert!(commands[0].is_ascii() || std::str::from_utf8(name).is_ok(), "{}", commands[0]);
        let ran = bash(&w, &commands[0]);
        assert_eq!(ran.status.code(), Some(0), "{}\n{}", commands[0], describe(&ran));
        let restored = w.root().join(format!("out{i}"));
        assert_eq!(names_below(&restored), vec![name.to_vec()], "only that file, by its exact name");
        let want = fs::read(t.join(OsStr::from_bytes(name))).unwrap();
        assert_eq!(fs::read(restored.join(OsStr::from_bytes(name))).unwrap(), want);
    }
}

#[test]
fn hints_quote_plain_names_as_before_and_bytes_with_bash_escapes() {
    let (w, t) = archived_world();
    let out = w.run(&[OsStr::new("where_is"), OsStr::new("bad\u{fffd}name.dat")], 0);
    assert_eq!(restore_commands(&stdout(&out), "X"), Vec::<String>::new(), "U+FFFD is not the byte 0xff");
    let out = w.run(&[OsStr::new("where_is"), OsStr::from_bytes(b"bad\xffname.dat")], 0);
    let target = format!("$'{}/t\\xfe dir'", w.data().display());
    assert_eq!(restore_commands(&stdout(&out), "X"), [format!("tapeop restore {target} $'bad\\xffname.dat' --to X")]);
    let out = w.run(&[OsStr::new("where_is"), OsStr::new("--"), OsStr::from_bytes(b"-dash\xff")], 0);
    assert_eq!(restore_commands(&stdout(&out), "X"), [format!("tapeop restore --to X -- {target} $'-dash\\xff'")]);
    let out = w.run(&[OsStr::new("where_is"), OsStr::new("glob[[]1]*")], 0);
    assert_eq!(restore_commands(&stdout(&out), "X"), [format!("tapeop restore {target} 'glob\\[1]\\*\\?.txt' --to X")]);
    // Without the escapes the glob would select nothing: restore says so and fails.
    let cmd = format!("tapeop restore {target} 'glob[1]*?.txt' --to none");
    let ran = bash(&w, &cmd);
    assert_eq!(ran.status.code(), Some(1), "{}", describe(&ran));
    assert!(t.exists());
}
