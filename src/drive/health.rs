//! What a drive says about its own health, from the hardware alone (no
//! catalogue): its cleaning request (the `GMT_CLN` bit of `MTIOCGET`), the
//! st driver's I/O statistics under `<sysfs>/class/scsi_tape/stN/stats/`, and
//! its TapeAlert flags (log page 0x2e, read with `sg_logs` of sg3-utils from
//! the drive's SCSI generic device, named as SSC names them). Each part that
//! cannot be read (tool or file missing) becomes one line saying why, and the
//! other parts are still shown. The sysfs root is `TAPEOP_SYSFS` (default
//! `/sys`), so that tests can point it at a tree they fill.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::mtio;

/// `mt_gstat`: the drive asks for cleaning (`GMT_CLN(x) ((x) & 0x00008000)`
/// in `<linux/mtio.h>`).
pub const GMT_CLN: libc::c_long = 0x0000_8000;
/// The major device number of st character devices.
const ST_MAJOR: u64 = 9;

/// The sysfs root: the `TAPEOP_SYSFS` environment variable, or `/sys`.
pub fn sysfs_root() -> PathBuf {
    std::env::var_os("TAPEOP_SYSFS").map_or_else(|| PathBuf::from("/sys"), PathBuf::from)
}

/// What `MTIOCGET` says about the drive's health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriveFlags {
    /// The drive asks for cleaning (`GMT_CLN`).
    pub cleaning_requested: bool,
    /// The recovered-error count of `mt_erreg` (its low word).
    pub recovered_errors: u64,
}

/// Read the drive's cleaning request and recovered-error count at `path`,
/// opening it without blocking (an empty or loading drive still answers).
pub fn drive_flags(path: &Path) -> Result<DriveFlags> {
    if is_rewinding(path) {
        bail!("{} is a rewinding device: not opened (every close would rewind)", path.display());
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening tape device {}", path.display()))?;
    let status = mtio::mt_get(file.as_fd()).with_context(|| format!("{}: reading the drive status", path.display()))?;
    Ok(DriveFlags {
        cleaning_requested: status.mt_gstat & GMT_CLN != 0,
        recovered_errors: (status.mt_erreg & 0xffff) as u64,
    })
}

/// A rewinding st device: named `stN` (with a mode letter), or a st
/// character device whose minor lacks the no-rewind bit (128).
fn is_rewinding(path: &Path) -> bool {
    if let Ok(m) = std::fs::metadata(path)
        && m.file_type().is_char_device()
        && nix::sys::stat::major(m.rdev()) == ST_MAJOR
    {
        return nix::sys::stat::minor(m.rdev()) & 128 == 0;
    }
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("st") && st_name(path).is_some())
}

/// The st drive number of st minor `minor` (the kernel's `TAPE_NR`): the
/// low five bits, joined by the bits above the first byte shifted down by 3.
pub fn st_number(minor: u64) -> u64 {
    ((minor & !255) >> 3) | (minor & 31)
}

/// The st name (`st0`) of the tape device at `path`: from its device number
/// when it is a st character device (major 9; `nst0` is minor 128), else
/// from its file name (`nst0`, `st0`, with an optional mode letter).
pub fn st_name(path: &Path) -> Option<String> {
    if let Ok(m) = std::fs::metadata(path)
        && m.file_type().is_char_device()
        && nix::sys::stat::major(m.rdev()) == ST_MAJOR
    {
        return Some(format!("st{}", st_number(nix::sys::stat::minor(m.rdev()))));
    }
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix('n').unwrap_or(name).strip_prefix("st")?;
    let digits = rest.trim_end_matches(['l', 'm', 'a']);
    (!digits.is_empty() && rest.len() - digits.len() <= 1 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("st{digits}"))
}

/// The st driver's counters for one drive (Documentation/scsi/st.rst,
/// "sysfs and statistics").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StStats {
    /// Bytes read from the tape.
    pub read_byte_cnt: u64,
    /// Bytes written to the tape.
    pub write_byte_cnt: u64,
    /// Read requests completed.
    pub read_cnt: u64,
    /// Write requests completed.
    pub write_cnt: u64,
    /// Other commands (spacing, filemarks, ...) completed.
    pub other_cnt: u64,
    /// Reads or writes that ended with a non-zero residual.
    pub resid_cnt: u64,
    /// Nanoseconds spent in reads.
    pub read_ns: u64,
    /// Nanoseconds spent in writes.
    pub write_ns: u64,
    /// Nanoseconds spent in all I/O.
    pub io_ns: u64,
    /// Requests in flight now.
    pub in_flight: u64,
}

impl StStats {
    /// The drive's own rate in MB/s (10^6 bytes): bytes moved over I/O time.
    pub fn mb_per_s(&self) -> Option<f64> {
        let bytes = self.read_byte_cnt + self.write_byte_cnt;
        (self.io_ns > 0).then(|| bytes as f64 * 1000.0 / self.io_ns as f64)
    }
}

/// Read the counters of st drive `st` under `<root>/class/scsi_tape/`.
pub fn read_stats(root: &Path, st: &str) -> Result<StStats> {
    let dir = root.join("class/scsi_tape").join(st).join("stats");
    if !dir.is_dir() {
        bail!("{} does not exist", dir.display());
    }
    let read = |name: &str| -> Result<u64> {
        let file = dir.join(name);
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        text.trim().parse().with_context(|| format!("{}: not a number: {:?}", file.display(), text.trim()))
    };
    Ok(StStats {
        read_byte_cnt: read("read_byte_cnt")?,
        write_byte_cnt: read("write_byte_cnt")?,
        read_cnt: read("read_cnt")?,
        write_cnt: read("write_cnt")?,
        other_cnt: read("other_cnt")?,
        resid_cnt: read("resid_cnt")?,
        read_ns: read("read_ns")?,
        write_ns: read("write_ns")?,
        io_ns: read("io_ns")?,
        in_flight: read("in_flight")?,
    })
}

/// How bad a TapeAlert flag is (SSC-3, Annex A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Information: nothing is wrong yet.
    Information,
    /// Warning: act soon.
    Warning,
    /// Critical: act now.
    Critical,
}

use Severity::{Critical as C, Information as I, Warning as W};

/// The TapeAlert flags 1..=64 as SSC names them, with their severity.
const TAPE_ALERTS: [(&str, Severity); 64] = [
    ("Read warning", W),
    ("Write warning", W),
    ("Hard error", W),
    ("Media", C),
    ("Read failure", C),
    ("Write failure", C),
    ("Media life", W),
    ("Not data grade", W),
    ("Write protect", C),
    ("No removal", I),
    ("Cleaning media", I),
    ("Unsupported format", I),
    ("Recoverable mechanical cartridge failure", C),
    ("Unrecoverable mechanical cartridge failure", C),
    ("Memory chip in cartridge failure", W),
    ("Forced eject", C),
    ("Read only format", W),
    ("Tape directory corrupted on load", W),
    ("Nearing media life", I),
    ("Clean now", C),
    ("Clean periodic", W),
    ("Expired cleaning media", C),
    ("Invalid cleaning tape", C),
    ("Retension requested", W),
    ("Dual-port interface error", W),
    ("Cooling fan failure", W),
    ("Power supply failure", W),
    ("Power consumption", W),
    ("Drive maintenance", W),
    ("Hardware A", C),
    ("Hardware B", C),
    ("Interface", W),
    ("Eject media", C),
    ("Microcode update fail", W),
    ("Drive humidity", W),
    ("Drive temperature", W),
    ("Drive voltage", W),
    ("Predictive failure", C),
    ("Diagnostics required", W),
    ("Obsolete (28h)", I),
    ("Obsolete (29h)", I),
    ("Obsolete (2Ah)", I),
    ("Obsolete (2Bh)", I),
    ("Obsolete (2Ch)", I),
    ("Obsolete (2Dh)", I),
    ("Obsolete (2Eh)", I),
    ("Reserved (2Fh)", I),
    ("Reserved (30h)", I),
    ("Reserved (31h)", I),
    ("Lost statistics", W),
    ("Tape directory invalid at unload", W),
    ("Tape system area write failure", C),
    ("Tape system area read failure", C),
    ("No start of data", C),
    ("Loading failure", C),
    ("Unrecoverable unload failure", C),
    ("Automation interface failure", C),
    ("Firmware failure", W),
    ("WORM medium - integrity check failed", W),
    ("WORM medium - overwrite attempted", W),
    ("Reserved (3Dh)", I),
    ("Reserved (3Eh)", I),
    ("Reserved (3Fh)", I),
    ("Reserved (40h)", I),
];

/// Names sg_logs prints that differ from the SSC names above.
const SG_LOGS_ALIASES: [(&str, u8); 4] = [
    ("Cleaning required", 20),
    ("Cleaning requested", 21),
    ("Dual port interface error", 25),
    ("Cooling fan failing", 26),
];

/// One TapeAlert flag that is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapeAlert {
    /// The flag number (SSC parameter code), 1..=64.
    pub code: u8,
    /// Its SSC name.
    pub name: &'static str,
    /// Its severity.
    pub severity: Severity,
}

impl TapeAlert {
    /// The flag numbered `code`, when it is one of 1..=64.
    pub fn from_code(code: u8) -> Option<TapeAlert> {
        let (name, severity) = *TAPE_ALERTS.get(usize::from(code).checked_sub(1)?)?;
        Some(TapeAlert { code, name, severity })
    }
}

/// The flag number of a name printed by sg_logs (SSC name or sg_logs's own).
fn code_of(name: &str) -> Option<u8> {
    let same = |n: &str| n.eq_ignore_ascii_case(name);
    if let Some(i) = TAPE_ALERTS.iter().position(|(n, _)| same(n)) {
        return u8::try_from(i + 1).ok();
    }
    SG_LOGS_ALIASES.iter().find(|(n, _)| same(n)).map(|(_, c)| *c)
}

/// The flags set in `sg_logs -p 0x2e` output: the lines `  NAME: 0|1`
/// after the "Tape alert page" header (and sg_logs's "Reserved parameter
/// code 0x.., flag: N" lines). Fails when the output has no such page.
pub fn parse_tape_alerts(text: &str) -> Result<Vec<TapeAlert>> {
    let mut lines = text.lines().skip_while(|l| !l.to_ascii_lowercase().contains("tape alert page"));
    if lines.next().is_none() {
        bail!("sg_logs printed no \"Tape alert page\"");
    }
    let mut set = Vec::new();
    for line in lines {
        let Some((name, flag)) = line.trim().rsplit_once(':') else { continue };
        if flag.trim() != "1" {
            continue;
        }
        let code = match name.split_once("parameter code 0x") {
            Some((_, rest)) => u8::from_str_radix(rest.trim_end_matches(", flag").trim(), 16).ok(),
            None => code_of(name.trim()),
        };
        if let Some(alert) = code.and_then(TapeAlert::from_code) {
            set.push(alert);
        }
    }
    Ok(set)
}

/// The SCSI generic device (`/dev/sgM`) of st drive `st`, from sysfs.
pub fn sg_device(root: &Path, st: &str) -> Result<PathBuf> {
    let dir = root.join("class/scsi_tape").join(st).join("device/scsi_generic");
    let entry = std::fs::read_dir(&dir)
        .with_context(|| format!("no SCSI generic device: {} cannot be read", dir.display()))?
        .flatten()
        .next()
        .with_context(|| format!("no SCSI generic device: {} is empty", dir.display()))?;
    Ok(Path::new("/dev").join(entry.file_name()))
}

/// Read the TapeAlert flags of `sg` with `sg_logs -p 0x2e`.
pub fn read_tape_alerts(sg: &Path) -> Result<Vec<TapeAlert>> {
    let output = match Command::new("sg_logs").arg("-p").arg("0x2e").arg(sg).output() {
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("sg_logs not found (install sg3-utils)"),
        r => r.context("running sg_logs")?,
    };
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        bail!("sg_logs -p 0x2e {} failed ({}): {}", sg.display(), output.status, err.trim());
    }
    parse_tape_alerts(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("sg_logs -p 0x2e {}", sg.display()))
}

/// The `drive` report lines about the health of the st drive at `path`.
pub fn report_lines(path: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    match drive_flags(path) {
        Ok(f) => {
            let cln = if f.cleaning_requested { "requested" } else { "not requested" };
            lines.push(format!("Cleaning:        {cln}"));
            lines.push(format!("Errors:          {} recovered (MTIOCGET mt_erreg)", f.recovered_errors));
        }
        Err(e) => lines.push(format!("Cleaning:        unknown ({e:#})")),
    }
    let Some(st) = st_name(path) else {
        lines.push(format!("Drive stats:     unknown ({} is not a st device)", path.display()));
        return lines;
    };
    let root = sysfs_root();
    match read_stats(&root, &st) {
        Ok(s) => lines.extend(stats_lines(&s)),
        Err(e) => lines.push(format!("Drive stats:     unavailable ({e:#})")),
    }
    let alerts = sg_device(&root, &st).and_then(|sg| read_tape_alerts(&sg));
    match alerts {
        Ok(a) if a.is_empty() => lines.push("TapeAlert:       none set".to_string()),
        Ok(a) => lines.extend(a.iter().map(|t| format!("TapeAlert:       {} {} ({:?})", t.code, t.name, t.severity))),
        Err(e) => lines.push(format!("TapeAlert:       not read ({e:#})")),
    }
    lines
}

/// The same health as a JSON object (`drive --json`): each part is its
/// value, or `{"error": "..."}` when it could not be read.
pub fn report_json(path: &Path) -> serde_json::Value {
    use serde_json::json;
    let err = |e: anyhow::Error| json!({ "error": format!("{e:#}") });
    let flags = drive_flags(path).map_or_else(
        err,
        |f| json!({ "cleaning_requested": f.cleaning_requested, "recovered_errors": f.recovered_errors }),
    );
    let Some(st) = st_name(path) else {
        let e = json!({ "error": format!("{} is not a st device", path.display()) });
        return json!({ "drive": flags, "stats": e.clone(), "tape_alerts": e });
    };
    let root = sysfs_root();
    let stats = read_stats(&root, &st).map_or_else(err, |s| {
        json!({
            "st": st, "read_byte_cnt": s.read_byte_cnt, "write_byte_cnt": s.write_byte_cnt,
            "read_cnt": s.read_cnt, "write_cnt": s.write_cnt, "other_cnt": s.other_cnt,
            "resid_cnt": s.resid_cnt, "read_ns": s.read_ns, "write_ns": s.write_ns,
            "io_ns": s.io_ns, "in_flight": s.in_flight, "mb_per_s": s.mb_per_s(),
        })
    });
    let alerts = sg_device(&root, &st).and_then(|sg| read_tape_alerts(&sg)).map_or_else(err, |a| {
        let set: Vec<_> = a
            .iter()
            .map(|t| json!({ "code": t.code, "name": t.name, "severity": format!("{:?}", t.severity) }))
            .collect();
        json!(set)
    });
    json!({ "drive": flags, "stats": stats, "tape_alerts": alerts })
}

/// The report lines of the st statistics.
fn stats_lines(s: &StStats) -> Vec<String> {
    let secs = |ns: u64| ns as f64 / 1e9;
    let rate = s.mb_per_s().map_or("no I/O time yet".to_string(), |r| format!("{r:.1} MB/s"));
    vec![
        format!("Bytes read:      {} in {} reads ({:.3} s)", s.read_byte_cnt, s.read_cnt, secs(s.read_ns)),
        format!("Bytes written:   {} in {} writes ({:.3} s)", s.write_byte_cnt, s.write_cnt, secs(s.write_ns)),
        format!("I/O time:        {:.3} s, {} other commands, {} in flight", secs(s.io_ns), s.other_cnt, s.in_flight),
        format!("Drive rate:      {rate} (bytes over I/O time)"),
        format!("Residuals:       {} (reads or writes that did not move all their bytes)", s.resid_cnt),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Laid out as sg_logs.c's show_tape_alert_ssc_page prints it.
    const PAGE: &str = "    IBM       ULT3580-TD8       Q3C5\n\
Tape alert page (ssc-3) [0x2e]\n  Read warning: 0\n  Write warning: 1\n  Media: 0\n\
  Cleaning required: 1\n  Cleaning requested: 0\n  Expired cleaning media: 1\n\
  Reserved parameter code 0x3d, flag: 1\n";

    #[test]
    fn parses_set_flags_with_ssc_names_and_severity() {
        let got: Vec<(u8, &str, Severity)> =
            parse_tape_alerts(PAGE).unwrap().iter().map(|a| (a.code, a.name, a.severity)).collect();
        assert_eq!(
            got,
            vec![
                (2, "Write warning", Severity::Warning),
                (20, "Clean now", Severity::Critical),
                (22, "Expired cleaning media", Severity::Critical),
                (61, "Reserved (3Dh)", Severity::Information),
            ]
        );
    }

    #[test]
    fn real_clean_capture_has_no_flag_set_and_every_name_is_known() {
        let text = include_str!("samples/sg_logs_2e_ibm_td8_clean.txt");
        assert_eq!(parse_tape_alerts(text).unwrap(), vec![]);
        let flipped = text.replace(": 0\n", ": 1\n");
        let codes: Vec<u8> = parse_tape_alerts(&flipped).unwrap().iter().map(|a| a.code).collect();
        assert_eq!(codes, (1..=64).collect::<Vec<u8>>());
    }

    #[test]
    fn alerts_sample_names_ssc_flags() {
        let got: Vec<String> = parse_tape_alerts(include_str!("samples/sg_logs_2e_ibm_td8_alerts.txt"))
            .unwrap()
            .iter()
            .map(|a| format!("{} {} {:?}", a.code, a.name, a.severity))
            .collect();
        assert_eq!(got, ["3 Hard error Warning", "20 Clean now Critical", "62 Reserved (3Eh) Information"]);
    }

    #[test]
    fn undecodable_page_is_an_error() {
        let err = parse_tape_alerts(include_str!("samples/sg_logs_2e_changer_undecodable.txt")).unwrap_err();
        assert_eq!(err.to_string(), "sg_logs printed no \"Tape alert page\"");
    }

    #[test]
    fn output_without_the_page_is_an_error() {
        assert!(parse_tape_alerts("sg_logs: no such page\n").is_err());
    }

    #[test]
    fn st_numbers_and_names() {
        assert_eq!(st_number(128), 0);
        assert_eq!(st_number(129), 1);
        assert_eq!(st_number(256 + 128), 32);
        assert_eq!(st_name(Path::new("/nonexistent/nst0")).as_deref(), Some("st0"));
        assert_eq!(st_name(Path::new("/nonexistent/nst12l")).as_deref(), Some("st12"));
        assert_eq!(st_name(Path::new("/nonexistent/tape")), None);
    }
}
