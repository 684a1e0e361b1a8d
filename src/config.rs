//! `tape.conf`: the INI file the old tool read, with its four keys under
//! `[default]` and tapeop's optional additions. This module owns parsing it
//! into a plain `Config`, the defaults of the new keys, and the one-line
//! errors that name the file and the key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ini::Ini;

use crate::drive::DriveSpec;

/// Default tape block size: 256 KiB, which keeps LTO drives streaming.
pub const DEFAULT_BLOCK_SIZE: usize = 256 * 1024;
/// Default write buffer between the source and the drive.
pub const DEFAULT_BUFFER_SIZE: usize = 256 * 1024 * 1024;

/// How `archive` checks the stream against the catalogue while it writes
/// (`check_in_flight`; `confirm` always checks everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// `full`: md5 every member; if that is slower than the drive, the drive waits.
    Full,
    /// `keep-pace`: md5 what the cores manage without ever holding up the
    /// drive; what is left unhashed is counted and left to `confirm`.
    KeepPace,
    /// `off`: pure pass-through, nothing checked until `confirm`.
    Off,
}

impl InFlight {
    /// Parse a `check_in_flight` value.
    pub fn parse(text: &str) -> Option<InFlight> {
        match text.trim() {
            "full" => Some(InFlight::Full),
            "keep-pace" => Some(InFlight::KeepPace),
            "off" => Some(InFlight::Off),
            _ => None,
        }
    }

    /// The value as written in `tape.conf`.
    pub fn name(self) -> &'static str {
        match self {
            InFlight::Full => "full",
            InFlight::KeepPace => "keep-pace",
            InFlight::Off => "off",
        }
    }
}

/// Everything tapeop takes from `tape.conf`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    /// The sqlite catalogue.
    pub database_file: PathBuf,
    /// The drive: a st device or the emulator directory.
    pub drive: DriveSpec,
    /// Command prefix that runs a shell command on the data host; empty = local.
    pub ssh_command: String,
    /// Bytes per tape record when writing.
    pub block_size: usize,
    /// Bytes of write buffer between the source and the drive.
    pub buffer_size: usize,
    /// Parallel md5 jobs on the data host during import (None: all its cores).
    pub scan_jobs: Option<u32>,
    /// Default capacity of a tape in bytes, used by `assign` (None: unlimited).
    pub tape_capacity: Option<u64>,
    /// How `archive` checks the data while writing.
    pub check_in_flight: InFlight,
}

impl Config {
    /// Read and check the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        if path.is_dir() {
            bail!("config file {} is a directory; give the tape.conf file (-c PATH)", path.display());
        }
        let ini = Ini::load_from_file(path).map_err(|e| match e {
            ini::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "config file {} not found: create it (see tape.conf.ex) or pass -c PATH",
                path.display()
            ),
            other => anyhow::anyhow!("cannot read config file {}: {other}", path.display()),
        })?;
        let section = ini
            .section(Some("default"))
            .with_context(|| format!("config file {} has no [default] section (see tape.conf.ex)", path.display()))?;
        let keys = Keys { path, section };
        for warning in unknown_keys(path, section) {
            eprintln!("tapeop: warning: {warning}");
        }
        Self::from_keys(&keys)
    }

    fn from_keys(keys: &Keys<'_>) -> Result<Config> {
        let database_file = PathBuf::from(keys.required("database_file")?);
        if database_file.as_os_str().is_empty() {
            bail!(
                "config file {}: database_file is empty: set it to the catalogue's path (e.g. database_file = tape.sqlite)",
                keys.path.display()
            );
        }
        let ssh_command = keys.required("ssh_command")?.to_string();
        let drive = match keys.optional("emulator_dir").filter(|s| !s.is_empty()) {
            Some(dir) => DriveSpec::Emulator { dir: PathBuf::from(dir), capacity: keys.size("emulator_capacity")? },
            None => DriveSpec::Device(PathBuf::from(keys.required("tape_device")?)),
        };
        let block_size = keys.size("block_size")?.map_or(DEFAULT_BLOCK_SIZE, |v| v as usize);
        if !(512..=16 * 1024 * 1024).contains(&block_size) || block_size % 512 != 0 {
            bail!(
                "config file {}: block_size = {block_size} must be a multiple of 512 between 512 and 16M",
                keys.path.display()
            );
        }
        let buffer_size = keys.size("buffer_size")?.map_or(DEFAULT_BUFFER_SIZE, |v| v as usize);
        Ok(Config {
            path: keys.path.to_path_buf(),
            database_file,
            drive,
            ssh_command,
            block_size,
            buffer_size: buffer_size.max(block_size),
            scan_jobs: keys.number("scan_jobs")?.map(|n| n as u32),
            tape_capacity: keys.size("tape_capacity")?,
            check_in_flight: keys.in_flight()?,
        })
    }
}

struct Keys<'a> {
    path: &'a Path,
    section: &'a ini::Properties,
}

impl Keys<'_> {
    fn optional(&self, key: &str) -> Option<&str> {
        self.section.get_all(key).next_back().map(str::trim)
    }

    fn required(&self, key: &str) -> Result<&str> {
        self.optional(key).with_context(|| {
            format!("config file {}: key '{key}' missing under [default] (see tape.conf.ex)", self.path.display())
        })
    }

    fn number(&self, key: &str) -> Result<Option<u64>> {
        match self.optional(key).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                anyhow::anyhow!("config file {}: {key} = {v:?} is not a whole number", self.path.display())
            }),
        }
    }

    fn in_flight(&self) -> Result<InFlight> {
        match self.optional("check_in_flight").filter(|s| !s.is_empty()) {
            None => Ok(InFlight::Full),
            Some(v) => InFlight::parse(v).with_context(|| {
                format!("config file {}: check_in_flight = {v:?} must be full, keep-pace or off", self.path.display())
            }),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.optional(key).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => parse_size(v).map(Some).with_context(|| {
                format!("config file {}: {key} = {v:?} is not a size (e.g. 256K, 64M, 18T)", self.path.display())
            }),
        }
    }
}

/// Every key tapeop reads under `[default]` (add a new key here too).
pub const KNOWN_KEYS: [&str; 10] = [
    "database_file",
    "tape_device",
    "ssh_command",
    "emulator_dir",
    "emulator_capacity",
    "block_size",
    "buffer_size",
    "scan_jobs",
    "tape_capacity",
    "check_in_flight",
];

/// One warning per key under `[default]` that tapeop does not read (it is
/// ignored), naming the nearest known key.
fn unknown_keys(path: &Path, section: &ini::Properties) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in section.iter() {
        if !KNOWN_KEYS.contains(&key) && !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen.into_iter()
        .map(|key| {
            let near = KNOWN_KEYS.iter().min_by_key(|k| edit_distance(key, k)).copied().unwrap_or("database_file");
            format!("config file {}: unknown key '{key}' is ignored (did you mean '{near}'?)", path.display())
        })
        .collect()
}

/// Levenshtein distance between two keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Parse a byte count with an optional K/M/G/T suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        other => bail!("unknown unit {other:?}"),
    };
    let n: u64 = digits.parse().context("no number")?;
    n.checked_mul(1u64 << shift).context("too large")
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, parse_size};

    #[test]
    fn distances() {
        assert_eq!(edit_distance("blocksize", "block_size"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("256K").unwrap(), 262144);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("18T").unwrap(), 18 << 40);
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
    }
}
