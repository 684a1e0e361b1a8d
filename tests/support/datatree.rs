//! An awkward, deterministic data tree for archive tests.
//! `make_awkward_tree(root)` builds, under `root`, target directories whose
//! names and contents break naive quoting and naive tar handling: spaces,
//! quotes, backslashes, a newline, `&`, `;`, `$(touch /tmp/pwned)`, unicode,
//! a non-UTF-8 name, a `-rf` file, paths over 100 bytes, empty files and
//! directories, symlinks (relative, dangling, absolute), a hard-link pair, a
//! 3 MiB pseudo-random file, a fifo, and a target nested inside another.
//! `manifest(dir)` describes a tree for before/after comparisons and
//! `md5_of(path)` hashes one file with `md5sum`. If a quoting bug ever runs
//! the injected command, [`PWNED`] appears.
//!
//! Use it from an integration test with `mod support;` and `use support::datatree;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::stat::Mode;
use nix::unistd::mkfifo;

/// The file a shell-injection bug would create via the `$(touch /tmp/pwned)` names.
pub const PWNED: &str = "/tmp/pwned";

/// Size of the pseudo-random file `random.bin` (3 MiB).
pub const RANDOM_SIZE: usize = 3 * 1024 * 1024;

/// Relative names (under `root`) of the target directories, in the order
/// `make_awkward_tree` returns them. None contains a newline or a comma, so
/// each fits on one line of a config file; the hostile bytes are inside.
pub const TARGETS: [&str; 5] =
    ["space dir", "odd 'single' \"double\" & ; \\ é 日本", "$(touch /tmp/pwned)", "parent", "parent/child"];

/// Builds the awkward tree under `root` (created if needed) and returns the
/// target directories as absolute paths (see [`TARGETS`]). The third target
/// is the nested path `$(touch ` / `tmp` / `pwned)`; "parent/child" is a
/// target inside the target "parent". Panics on any I/O error.
pub fn make_awkward_tree(root: &Path) -> Vec<PathBuf> {
    let targets: Vec<PathBuf> = TARGETS.iter().map(|t| root.join(t)).collect();
    targets.iter().for_each(|t| mkdirs(t));
    fill_main(&targets[0]);
    write(&targets[1].join("inside odd"), b"odd target content\n");
    write(&targets[1].join("it's here"), b"quoted\n");
    write(&targets[2].join("not executed"), b"the target path looks like a command\n");
    write(&targets[3].join("parent file"), b"parent\n");
    write(&targets[4].join("child file"), b"child\n");
    targets
}

/// Fills the main target with every awkward entry.
fn fill_main(dir: &Path) {
    awkward_names(dir);
    long_paths(dir);
    empties(dir);
    links(dir);
    write(&dir.join("random.bin"), &pseudo_random(RANDOM_SIZE));
    mkfifo(&dir.join("fifo"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
}

fn awkward_names(dir: &Path) {
    let names: [&[u8]; 13] = [
        b"file with spaces.txt",
        b"single'quote",
        b"double\"quote",
        b"back\\slash",
        b"new\nline",
        b"amp&ersand",
        b"semi;colon",
        b"`touch pwned`",
        "caf\u{e9} \u{e9}".as_bytes(),
        "\u{65e5}\u{672c}.txt".as_bytes(),
        b"bad\xffname",
        b"-rf",
        b"  leading and trailing spaces  ",
    ];
    for name in names {
        let content = [b"name: ".as_slice(), name, b"\n"].concat();
        write(&dir.join(OsStr::from_bytes(name)), &content);
    }
    let injected = dir.join("$(touch /tmp/pwned)");
    mkdirs(&injected);
    write(&injected.join("inside"), b"a dir path that looks like a command\n");
}

/// A path over 100 bytes through directories, and a single name over 100
/// bytes: both need GNU long names (or ustar prefix) in tar.
fn long_paths(dir: &Path) {
    let deep = (1..=6).fold(dir.join("long"), |p, i| p.join(format!("directory_level_{i:02}_padding")));
    mkdirs(&deep);
    write(&deep.join("deep file.txt"), b"deep\n");
    let long_name = format!("{}.txt", "long_file_name_".repeat(12));
    write(&dir.join(long_name), b"long name\n");
}

fn empties(dir: &Path) {
    write(&dir.join("empty file"), b"");
    mkdirs(&dir.join("empty dir"));
    mkdirs(&dir.join("nested empty/inner empty"));
}

fn links(dir: &Path) {
    symlink("file with spaces.txt", dir.join("link to file")).unwrap();
    symlink("does/not/exist", dir.join("dangling link")).unwrap();
    // Absolute, and outside the tree so the link text does not depend on root.
    symlink("/etc/passwd", dir.join("absolute link")).unwrap();
    write(&dir.join("hard a"), b"hard linked content\n");
    fs::hard_link(dir.join("hard a"), dir.join("hard b")).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift64, fixed seed).
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn mkdirs(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
}

fn write(path: &Path, content: &[u8]) {
    fs::write(path, content).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

/// The md5 of a file's content as 32 lowercase hex digits, via `md5sum`
/// (fed on stdin, so any file name works).
pub fn md5_of(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {path:?}: {e}"));
    let out =
        Command::new("md5sum").stdin(file).stderr(Stdio::inherit()).output().expect("md5sum is needed (coreutils)");
    assert!(out.status.success(), "md5sum failed on {path:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

/// Every entry below `dir` (not `dir` itself), keyed by relative path:
/// `dir`, `file SIZE MD5 links=N`, `symlink -> TARGET`, `fifo`, or `other`.
/// Two trees with equal manifests have the same names, types, contents, link
/// targets and hard-link counts (mtimes and modes are not compared).
pub fn manifest(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut map = BTreeMap::new();
    walk(dir, Path::new(""), &mut map);
    map
}

fn walk(base: &Path, rel: &Path, map: &mut BTreeMap<PathBuf, String>) {
    let entries = fs::read_dir(base.join(rel)).unwrap_or_else(|e| panic!("read_dir {rel:?}: {e}"));
    for entry in entries {
        let rel = rel.join(entry.unwrap().file_name());
        let description = describe(&base.join(&rel));
        if description == "dir" {
            walk(base, &rel, map);
        }
        map.insert(rel, description);
    }
}

fn describe(path: &Path) -> String {
    let meta = fs::symlink_metadata(path).unwrap();
    let kind = meta.file_type();
    if kind.is_dir() {
        "dir".to_string()
    } else if kind.is_symlink() {
        format!("symlink -> {}", fs::read_link(path).unwrap().display())
    } else if kind.is_file() {
        format!("file {} {} links={}", meta.len(), md5_of(path), meta.nlink())
    } else if kind.is_fifo() {
        "fifo".to_string()
    } else {
        "other".to_string()
    }
}
