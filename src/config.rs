//! `tape.conf`: the INI file the old tool read, with its four keys under
//! `[default]` and tapeop's optional additions. This module owns parsing it
//! into a plain `Config`, the defaults of the new keys, and the one-line
//! errors that name the file and the key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ini::Ini;

use crate::drive::DriveSpec;

mod library;

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
    /// The selected drive: a st device or the emulator directory (until
    /// `select_drive` picks one, the first of `drives`).
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
    /// Every configured drive: `[default]`'s `tape_device`/`emulator_dir`
    /// is the drive named `default`, then each `[drive.NAME]` in file order.
    pub drives: Vec<DriveEntry>,
    /// The `[changer]` section, when there is a tape library.
    pub changer: Option<ChangerConfig>,
    /// The selected drive's name (`default` for the single-drive form).
    pub drive_name: String,
    /// The selected drive's Data Transfer Element number in `mtx status`.
    pub changer_index: Option<u32>,
    /// `copy_pools`: the pools of which every target needs a copy (empty:
    /// one copy on any tape, as the old tool).
    pub copy_pools: Vec<String>,
    /// `load_timeout`: how long an open waits for a drive still loading a cartridge.
    pub load_timeout: std::time::Duration,
    /// `sample_files`: how many tape files besides the first and last
    /// `confirm --sample` reads (default 3).
    pub sample_files: u32,
    /// `verify_days`: days after which `check` reports a tape not verified.
    pub verify_days: u32,
}

/// One configured drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveEntry {
    /// Its name: `default`, or NAME of `[drive.NAME]`.
    pub name: String,
    /// How to reach it.
    pub spec: DriveSpec,
    /// Its Data Transfer Element number in `mtx status`, in a library.
    pub changer_index: Option<u32>,
}

/// The `[changer]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangerConfig {
    /// The changer's SCSI generic device, handed to `mtx -f`.
    pub device: PathBuf,
    /// The mtx program: a path, or a name looked up on PATH (default `mtx`).
    pub command: PathBuf,
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
        for warning in library::unknown_keys(path, &ini) {
            eprintln!("tapeop: warning: {warning}");
        }
        let library = library::read(path, &ini)?;
        Self::from_keys(&keys, library)
    }

    fn from_keys(keys: &Keys<'_>, library: library::Library) -> Result<Config> {
        let database_file = PathBuf::from(keys.required("database_file")?);
        if database_file.as_os_str().is_empty() {
            bail!(
                "config file {}: database_file is empty: set it to the catalogue's path (e.g. database_file = tape.sqlite)",
                keys.path.display()
            );
        }
        let ssh_command = keys.required("ssh_command")?.to_string();
        let default_drive = match keys.optional("emulator_dir").filter(|s| !s.is_empty()) {
            Some(dir) => {
                Some(DriveSpec::Emulator { dir: PathBuf::from(dir), capacity: keys.size("emulator_capacity")? })
            }
            None if library.drives.is_empty() => Some(DriveSpec::Device(PathBuf::from(keys.required("tape_device")?))),
            None => keys.optional("tape_device").filter(|s| !s.is_empty()).map(|d| DriveSpec::Device(PathBuf::from(d))),
        };
        let drives = library::all_drives(keys.path, default_drive, library.drives)?;
        let first = drives[0].clone();
        let block_size = keys.size("block_size")?.map_or(DEFAULT_BLOCK_SIZE, |v| v as usize);
        check_block_size(keys.path, block_size)?;
        let buffer_size = keys.size("buffer_size")?.map_or(DEFAULT_BUFFER_SIZE, |v| v as usize);
        Ok(Config {
            path: keys.path.to_path_buf(),
            database_file,
            drive: first.spec,
            ssh_command,
            block_size,
            buffer_size: buffer_size.max(block_size),
            scan_jobs: keys.number("scan_jobs")?.map(|n| n as u32),
            tape_capacity: keys.size("tape_capacity")?,
            check_in_flight: keys.in_flight()?,
            drives,
            changer: library.changer,
            drive_name: first.name,
            changer_index: first.changer_index,
            copy_pools: keys.copy_pools()?,
            load_timeout: keys.load_timeout()?,
            sample_files: keys.positive("sample_files", 3, "sample_files = 3")?,
            verify_days: keys.positive("verify_days", 365, "verify_days = 365")?,
        })
    }

    /// Pick the drive `name` (the global --drive). None: the only drive. `needed`: the command
    /// uses a drive, so with several drives and no name it is an error naming them
    /// ("tape.conf names 2 drives (A, B): pick one with --drive NAME").
    pub fn select_drive(&mut self, name: Option<&str>, needed: bool) -> Result<()> {
        let names = || self.drives.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
        let entry = match name {
            Some(name) => self
                .drives
                .iter()
                .find(|d| d.name == name)
                .with_context(|| format!("no drive named {name} in tape.conf: the drives are {}", names()))?,
            None if needed && self.drives.len() > 1 => {
                bail!("tape.conf names {} drives ({}): pick one with --drive NAME", self.drives.len(), names())
            }
            None => return Ok(()),
        };
        let entry = entry.clone();
        self.drive = entry.spec;
        self.drive_name = entry.name;
        self.changer_index = entry.changer_index;
        Ok(())
    }

    /// The drive whose changer_index is `index`, if configured.
    pub fn drive_at(&self, index: u32) -> Option<&DriveEntry> {
        self.drives.iter().find(|d| d.changer_index == Some(index))
    }
}

/// The largest record any drive can write: the transfer length of a
/// variable-length SCSI WRITE is 24 bits, so 16,777,215 bytes.
pub const MAX_SCSI_RECORD: usize = (1 << 24) - 1;
/// The largest `block_size`: the largest multiple of 512 in one SCSI record.
pub const MAX_BLOCK_SIZE: usize = MAX_SCSI_RECORD / 512 * 512;

/// Refuse a `block_size` that is not a multiple of 512, or that no drive
/// could write as one record. What a given drive and the st driver take is
/// smaller still and is only known when writing: they refuse the first
/// record, and `archive` names the limit (see `drive::st`).
fn check_block_size(path: &Path, block_size: usize) -> Result<()> {
    if block_size > MAX_BLOCK_SIZE {
        bail!(
            "config file {}: block_size = {block_size} is larger than any tape drive writes as one record (a SCSI \
             variable-length block is at most {MAX_SCSI_RECORD} bytes): use at most {MAX_BLOCK_SIZE}; \
             256K (the default) to 1M suit LTO drives",
            path.display()
        );
    }
    if block_size < 512 || !block_size.is_multiple_of(512) {
        bail!(
            "config file {}: block_size = {block_size} must be a multiple of 512 between 512 and {MAX_BLOCK_SIZE}",
            path.display()
        );
    }
    Ok(())
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

    /// A whole number of at least 1 (`default` when absent).
    fn positive(&self, key: &str, default: u32, example: &str) -> Result<u32> {
        match self.optional(key).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).with_context(|| {
                format!(
                    "config file {}: {key} = {v:?} must be a whole number of at least 1, e.g. {example}",
                    self.path.display()
                )
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

    fn copy_pools(&self) -> Result<Vec<String>> {
        let mut pools: Vec<String> = Vec::new();
        for pool in self.optional("copy_pools").unwrap_or_default().split_whitespace() {
            crate::catalog::check_pool_name(pool)
                .with_context(|| format!("config file {}: copy_pools", self.path.display()))?;
            if pools.iter().any(|p| p == pool) {
                bail!("config file {}: copy_pools names pool {pool} twice: list each pool once", self.path.display());
            }
            pools.push(pool.to_string());
        }
        Ok(pools)
    }

    fn load_timeout(&self) -> Result<std::time::Duration> {
        match self.optional("load_timeout").filter(|s| !s.is_empty()) {
            None => Ok(crate::drive::loading::DEFAULT_LOAD_TIMEOUT),
            Some(v) => crate::drive::loading::parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| {
                anyhow::anyhow!(
                    "config file {}: load_timeout = {v:?} is not a duration (e.g. 3h, 90m, 45s)",
                    self.path.display()
                )
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
pub const KNOWN_KEYS: [&str; 14] = [
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
    "copy_pools",
    "load_timeout",
    "sample_files",
    "verify_days",
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
            let near =
                KNOWN_KEYS.iter().min_by_key(|k| strsim::levenshtein(key, k)).copied().unwrap_or("database_file");
            format!("config file {}: unknown key '{key}' is ignored (did you mean '{near}'?)", path.display())
        })
        .collect()
}

/// Parse a byte count with an optional K/M/G/T suffix, powers of 1024 with
/// or without `B`/`iB` (`256K`, `256KB`, `256 KiB` are all 262144), in any
/// case. Done by `parse-size` in its binary mode, which also takes a
/// fraction (`1.5G`), digit grouping (`1_000`) and the larger P and E.
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    parse_size::Config::new().with_binary().parse_size(text).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("256K").unwrap(), 262144);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("18T").unwrap(), 18 << 40);
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
    }

    #[test]
    fn size_suffixes_are_binary_in_every_spelling() {
        for (text, want) in [
            ("0", 0),
            (" 512 ", 512),
            ("512B", 512),
            ("1k", 1024),
            ("1K", 1024),
            ("1KB", 1024),
            ("1KiB", 1024),
            ("1 kib", 1024),
            ("64M", 64 << 20),
            ("256M", 256 << 20),
            ("16M", 16 << 20),
            ("2G", 2 << 30),
            ("2gb", 2 << 30),
            ("400G", 400 << 30),
            ("18T", 18 << 40),
            ("18 TiB", 18 << 40),
            ("2ki", 2048),
            // parse-size also takes fractions and digit grouping.
            ("1.5G", 3 << 29),
            ("1_000", 1000),
        ] {
            assert_eq!(parse_size(text).unwrap(), want, "{text:?}");
        }
        for bad in ["", "-1", "1X", "G2", "12Q", "99999999999T", "1.5.2G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
