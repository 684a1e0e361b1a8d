//! Serve a virtual st tape drive over FUSE for rehearsals:
//!
//! ```text
//! cargo run --example vst -- IMAGE MOUNTPOINT [--capacity SIZE] [--write-protect]
//!                             [--no-tape] [--max-record SIZE] [--rate SIZE] [--ignore-stdin]
//! ```
//!
//! `IMAGE` is a SIMH `.tap` file (created empty if missing); `MOUNTPOINT/nst0`
//! then behaves like a non-rewinding st device (and `MOUNTPOINT/st0` like its
//! rewinding twin), for `mt -f`, `tar -f`, `dd` or `tapeop`. `--rate` gives
//! the drive a speed in bytes per second (e.g. `50M`): each record read or
//! written then takes its length over the rate. The drive is served until
//! Ctrl-C (SIGINT) or until standard input closes (unless `--ignore-stdin`),
//! then unmounted.

#[path = "../tests/support/serve.rs"]
mod serve;
#[path = "../tests/support/vst.rs"]
mod vst;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The command line.
struct Args {
    image: PathBuf,
    mountpoint: PathBuf,
    opts: vst::VstOptions,
    ignore_stdin: bool,
}

const USAGE: &str = "usage: vst IMAGE MOUNTPOINT [--capacity SIZE] [--write-protect] \
                     [--no-tape] [--max-record SIZE] [--rate SIZE] [--ignore-stdin]";

fn parse_args() -> Result<Args> {
    let mut positional = Vec::new();
    let mut opts = vst::VstOptions::default();
    let mut ignore_stdin = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--capacity") => opts.capacity = Some(number(args.next(), "--capacity")?),
            Some("--max-record") => opts.max_record = number(args.next(), "--max-record")? as usize,
            Some("--rate") => opts.write_rate = Some(rate(args.next())?),
            Some("--write-protect") => opts.write_protected = true,
            Some("--no-tape") => opts.loaded = false,
            Some("--ignore-stdin") => ignore_stdin = true,
            Some("-h" | "--help") => bail!("{USAGE}"),
            Some(s) if s.starts_with("--") => bail!("unknown option {s}\n{USAGE}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [image, mountpoint] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| anyhow::anyhow!("IMAGE and MOUNTPOINT are required\n{USAGE}"))?;
    Ok(Args { image, mountpoint, opts, ignore_stdin })
}

fn number(value: Option<std::ffi::OsString>, flag: &str) -> Result<u64> {
    let value = value.with_context(|| format!("{flag} needs a number of bytes"))?;
    let text = value.to_string_lossy();
    tapeop::config::parse_size(&text).with_context(|| format!("{flag}: {text:?} is not a number of bytes (e.g. 2G)"))
}

/// `--rate`: a positive number of bytes per second.
fn rate(value: Option<std::ffi::OsString>) -> Result<u64> {
    let rate = number(value, "--rate")?;
    if rate == 0 {
        bail!("--rate 0 is no speed: give bytes per second above 0 (e.g. 50M), or leave --rate out");
    }
    Ok(rate)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let drive = vst::VirtualDrive::mount_at(&args.image, &args.mountpoint, args.opts)?;
    let limits = drive.limits();
    println!("virtual tape drive: {}", drive.device_path().display());
    println!("rewinding twin:     {}", drive.rewinding_device_path().display());
    println!("tape image:         {}", args.image.display());
    println!(
        "largest record:     {} bytes (FUSE max_pages {}, max_write {})",
        limits.max_record, limits.max_pages, limits.max_write
    );
    let why = serve::until_stopped(args.ignore_stdin, "")?;
    println!("stopping ({why}); unmounting");
    drop(drive);
    Ok(())
}
