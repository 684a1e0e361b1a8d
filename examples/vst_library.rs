//! Serve a simulated tape library for rehearsals by hand:
//!
//! ```text
//! cargo run --example vst_library -- DIR [--drives N] [--slots N] [--capacity SIZE]
//!                                        [--cleaning N] [--ie N] [--rate SIZE] [--sysfs]
//!                                        [--ignore-stdin]
//! ```
//!
//! Mounts `--drives` empty virtual st drives (tests/support/vst.rs) under
//! `DIR/mnt/driveN`, fills `--slots` storage slots with blank cartridges
//! (`A00001L9`, `A00002L9`, ... then `--cleaning` cleaning cartridges
//! `CLN001L1`, ... in the last slots; images under `DIR/cartridges`), adds
//! `--ie` empty import/export slots, and writes the changer's state under
//! `DIR/library` (tests/support/library.rs). `--rate` gives every drive a
//! speed in bytes per second (e.g. `50M`; see `VstOptions::write_rate`).
//! `--sysfs` makes each drive keep st's statistics under `DIR/sys` (run
//! tapeop with `TAPEOP_SYSFS=DIR/sys`) and names drive N `DIR/dev/nstN`, so
//! that tapeop finds its `stN`. Each drive's `control` file also takes
//! `cleaning-request on|off` and `errors-per-mb F` (see tests/support/vst.rs),
//! to rehearse a drive that asks for cleaning or a wearing tape. It prints the tape.conf sections to use (`[changer]` with
//! tests/support/mtx-sim as its command, and `[drive.A]`...), then serves
//! until Ctrl-C (SIGINT) or until standard input closes (unless
//! `--ignore-stdin`), and unmounts.

#[path = "../tests/support/library.rs"]
mod library;
#[path = "../tests/support/serve.rs"]
mod serve;
#[path = "../tests/support/vst.rs"]
mod vst;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use library::{Cartridge, Library};

/// The command line.
struct Args {
    dir: PathBuf,
    drives: usize,
    slots: usize,
    capacity: Option<u64>,
    cleaning: usize,
    ie: usize,
    rate: Option<u64>,
    sysfs: bool,
    ignore_stdin: bool,
}

const USAGE: &str = "usage: vst_library DIR [--drives N] [--slots N] [--capacity SIZE] \
                     [--cleaning N] [--ie N] [--rate SIZE] [--sysfs] [--ignore-stdin]";

fn parse_args() -> Result<Args> {
    let mut args = Args {
        dir: PathBuf::new(),
        drives: 2,
        slots: 5,
        capacity: None,
        cleaning: 0,
        ie: 0,
        rate: None,
        sysfs: false,
        ignore_stdin: false,
    };
    let mut positional = Vec::new();
    let mut argv = std::env::args_os().skip(1);
    while let Some(arg) = argv.next() {
        match arg.to_str() {
            Some("--drives") => args.drives = count(argv.next(), "--drives")?,
            Some("--slots") => args.slots = count(argv.next(), "--slots")?,
            Some("--cleaning") => args.cleaning = count(argv.next(), "--cleaning")?,
            Some("--ie") => args.ie = count(argv.next(), "--ie")?,
            Some("--capacity") => args.capacity = Some(size(argv.next(), "--capacity")?),
            Some("--rate") => args.rate = Some(size(argv.next(), "--rate")?),
            Some("--ignore-stdin") => args.ignore_stdin = true,
            Some("--sysfs") => args.sysfs = true,
            Some("-h" | "--help") => bail!("{USAGE}"),
            Some(s) if s.starts_with("--") => bail!("unknown option {s}\n{USAGE}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [dir] = <[PathBuf; 1]>::try_from(positional).map_err(|_| anyhow::anyhow!("DIR is required\n{USAGE}"))?;
    if args.cleaning > args.slots {
        bail!("--cleaning {} is more than --slots {}: give at least as many slots", args.cleaning, args.slots);
    }
    if args.drives == 0 || args.drives > 26 {
        bail!("--drives {} is out of range: give 1 to 26 drives", args.drives);
    }
    if args.rate == Some(0) {
        bail!("--rate 0 is no speed: give bytes per second above 0 (e.g. 50M), or leave --rate out");
    }
    args.dir = dir;
    Ok(args)
}

fn count(value: Option<std::ffi::OsString>, flag: &str) -> Result<usize> {
    let value = value.with_context(|| format!("{flag} needs a number"))?;
    let text = value.to_string_lossy();
    text.parse().with_context(|| format!("{flag}: {text:?} is not a number (e.g. 2)"))
}

fn size(value: Option<std::ffi::OsString>, flag: &str) -> Result<u64> {
    let value = value.with_context(|| format!("{flag} needs a number of bytes"))?;
    let text = value.to_string_lossy();
    tapeop::config::parse_size(&text).with_context(|| format!("{flag}: {text:?} is not a number of bytes (e.g. 40M)"))
}

/// The cartridges: data ones first, then the cleaning ones.
fn cartridges(args: &Args) -> Vec<Cartridge> {
    let data = args.slots - args.cleaning;
    let mut carts: Vec<Cartridge> = (1..=data)
        .map(|i| Cartridge { capacity: args.capacity, ..Cartridge::labelled(&format!("A{i:05}L9")) })
        .collect();
    carts.extend((1..=args.cleaning).map(|i| Cartridge::cleaning(&format!("CLN{i:03}L1"))));
    carts
}

/// The tape.conf sections; with `--sysfs`, each drive named by a link
/// `DIR/dev/nstN` to its device, so that tapeop reads `stN`'s statistics.
fn conf_sections(lib: &Library, dir: &std::path::Path, named: bool) -> Result<String> {
    let mut text = lib.conf_sections();
    if !named {
        return Ok(text);
    }
    let dev = dir.join("dev");
    std::fs::create_dir_all(&dev).with_context(|| format!("creating {}", dev.display()))?;
    for i in 0..lib.drive_count() {
        let path = lib.drive(i).device_path();
        let link = dev.join(format!("nst{i}"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link).with_context(|| format!("linking {}", link.display()))?;
        text = text.replace(&format!("device = {}\n", path.display()), &format!("device = {}\n", link.display()));
    }
    Ok(text)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = args.dir.canonicalize().with_context(|| format!("resolving {}", args.dir.display()))?;
    let carts = cartridges(&args);
    let sysfs = args.sysfs.then(|| dir.join("sys"));
    let opts = vst::VstOptions { write_rate: args.rate, sysfs: sysfs.clone(), ..vst::VstOptions::default() };
    let lib = Library::new_with(&dir, args.drives, &carts, carts.len(), args.ie, opts);
    println!("# tape.conf sections for this library (add your [default] section):");
    print!("{}", conf_sections(&lib, &dir, sysfs.is_some())?);
    if let Some(root) = &sysfs {
        println!("# st statistics under {}: run tapeop with TAPEOP_SYSFS={}", root.display(), root.display());
    }
    println!("# try: {} -f {} status", Library::command().display(), lib.device().display());
    let why = serve::until_stopped(args.ignore_stdin, "# ")?;
    println!("# stopping ({why}); unmounting");
    drop(lib);
    Ok(())
}
