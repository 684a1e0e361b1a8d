//! The tape-library sections of `tape.conf`: `[changer]` (the robot, driven
//! through `mtx`) and `[drive.NAME]` (one per drive, with its element number
//! in the changer). This module owns reading them, their unknown-key
//! warnings, and the checks that make the set of drives consistent (names,
//! no shared device or element, an element only with a changer).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ini::{Ini, Properties};

use super::{ChangerConfig, DriveEntry};
use crate::drive::DriveSpec;

/// Every key tapeop reads under `[changer]`.
pub const CHANGER_KEYS: [&str; 2] = ["device", "command"];
/// Every key tapeop reads under `[drive.NAME]`.
pub const DRIVE_KEYS: [&str; 2] = ["device", "changer_index"];

/// What the library sections say.
pub(super) struct Library {
    /// The `[drive.NAME]` sections, in file order.
    pub drives: Vec<DriveEntry>,
    /// The `[changer]` section.
    pub changer: Option<ChangerConfig>,
}

/// Read `[changer]` and every `[drive.NAME]` of `ini`.
pub(super) fn read(path: &Path, ini: &Ini) -> Result<Library> {
    let changer = match ini.section(Some("changer")) {
        None => None,
        Some(section) => Some(changer(path, section)?),
    };
    let mut drives = Vec::new();
    for (name, section) in drive_sections(ini) {
        drives.push(drive(path, name, section)?);
    }
    if changer.is_none()
        && let Some(d) = drives.iter().find(|d| d.changer_index.is_some())
    {
        bail!(
            "config file {}: [drive.{}] has changer_index but there is no [changer] section: add [changer] with \
             device = /dev/sgN (see tape.conf.ex), or remove changer_index",
            path.display(),
            d.name
        );
    }
    Ok(Library { drives, changer })
}

/// The `[drive.NAME]` sections with their names, in file order.
fn drive_sections(ini: &Ini) -> impl Iterator<Item = (&str, &Properties)> {
    ini.iter().filter_map(|(name, section)| Some((name?.strip_prefix("drive.")?, section)))
}

/// The last value of `key` in `section`, trimmed; None when absent or empty.
fn value<'a>(section: &'a Properties, key: &str) -> Option<&'a str> {
    section.get_all(key).next_back().map(str::trim).filter(|v| !v.is_empty())
}

fn changer(path: &Path, section: &Properties) -> Result<ChangerConfig> {
    let Some(device) = value(section, "device") else {
        bail!(
            "config file {}: [changer] has no device: set device = /dev/sgN (the changer's SCSI generic device)",
            path.display()
        );
    };
    let command = value(section, "command").unwrap_or("mtx");
    Ok(ChangerConfig { device: PathBuf::from(device), command: PathBuf::from(command) })
}

fn drive(path: &Path, name: &str, section: &Properties) -> Result<DriveEntry> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        bail!(
            "config file {}: drive name {name:?} in [drive.{name}] is not allowed: use only letters, digits, _ and -",
            path.display()
        );
    }
    let Some(device) = value(section, "device") else {
        bail!("config file {}: [drive.{name}] has no device: set device = /dev/nstN", path.display());
    };
    let changer_index = match value(section, "changer_index") {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            anyhow::anyhow!(
                "config file {}: [drive.{name}] changer_index = {v:?} is not a number: give the drive's Data Transfer \
                 Element number in mtx status (0, 1, ...)",
                path.display()
            )
        })?),
    };
    Ok(DriveEntry { name: name.to_string(), spec: DriveSpec::Device(PathBuf::from(device)), changer_index })
}

/// The drive `default` (from `[default]`, if it names one) and then the
/// `[drive.NAME]` drives, refusing two drives on one device or one element.
pub(super) fn all_drives(path: &Path, default: Option<DriveSpec>, named: Vec<DriveEntry>) -> Result<Vec<DriveEntry>> {
    let mut drives: Vec<DriveEntry> = Vec::new();
    let default = default.map(|spec| DriveEntry { name: "default".to_string(), spec, changer_index: None });
    for d in default.into_iter().chain(named) {
        if let Some(other) = drives.iter().find(|o| o.name == d.name) {
            bail!(
                "config file {}: two drives are named {}: give each [drive.NAME] its own name",
                path.display(),
                other.name
            );
        }
        if let Some(other) = drives.iter().find(|o| o.spec == d.spec) {
            bail!(
                "config file {}: drives {} and {} have the same device {}: each drive needs its own",
                path.display(),
                other.name,
                d.name,
                describe(&d.spec)
            );
        }
        if let Some(other) = drives.iter().find(|o| o.changer_index.is_some() && o.changer_index == d.changer_index) {
            bail!(
                "config file {}: drives {} and {} have the same changer_index {}: each drive is its own Data Transfer \
                 Element in mtx status",
                path.display(),
                other.name,
                d.name,
                d.changer_index.unwrap_or_default()
            );
        }
        drives.push(d);
    }
    Ok(drives)
}

fn describe(spec: &DriveSpec) -> String {
    match spec {
        DriveSpec::Device(p) => p.display().to_string(),
        DriveSpec::Emulator { dir, .. } => dir.display().to_string(),
    }
}

/// One warning per key of `[changer]` or a `[drive.NAME]` that tapeop does
/// not read (it is ignored), naming the nearest known key.
pub(super) fn unknown_keys(path: &Path, ini: &Ini) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(section) = ini.section(Some("changer")) {
        warnings.extend(unknown_in(path, "changer", section, &CHANGER_KEYS));
    }
    for (name, section) in drive_sections(ini) {
        warnings.extend(unknown_in(path, &format!("drive.{name}"), section, &DRIVE_KEYS));
    }
    warnings
}

fn unknown_in(path: &Path, name: &str, section: &Properties, known: &[&str]) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in section.iter() {
        if !known.contains(&key) && !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen.into_iter()
        .map(|key| {
            let near = known.iter().min_by_key(|k| strsim::levenshtein(key, k)).copied().unwrap_or("device");
            format!(
                "config file {}: unknown key '{key}' under [{name}] is ignored (did you mean '{near}'?)",
                path.display()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::{ChangerConfig, Config, DriveEntry};
    use crate::drive::DriveSpec;

    /// tape.conf.ex with its library sections uncommented, as an operator would.
    fn example_with_library() -> String {
        let ex = include_str!("../../tape.conf.ex");
        let start = ex.find("# [changer]").unwrap();
        let end = ex.find("# Worked example").unwrap();
        let sections: String = ex[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        format!("{}{sections}", &ex[..start])
    }

    fn entry(name: &str, dev: &str, index: Option<u32>) -> DriveEntry {
        DriveEntry { name: name.into(), spec: DriveSpec::Device(PathBuf::from(dev)), changer_index: index }
    }

    #[test]
    fn the_documented_library_example_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tape.conf");
        // As documented, tape_device under [default] is one more drive: drop
        // it, as a library's tape.conf would.
        let text = example_with_library().replace("\ntape_device = /dev/nst0\n", "\n");
        std::fs::write(&path, text).unwrap();
        let mut config = Config::load(&path).unwrap();
        assert_eq!(
            config.changer,
            Some(ChangerConfig { device: PathBuf::from("/dev/sg5"), command: PathBuf::from("mtx") })
        );
        assert_eq!(config.drives, vec![entry("A", "/dev/nst0", Some(0)), entry("B", "/dev/nst1", Some(1))]);
        assert!(config.select_drive(None, true).is_err(), "two drives: a drive command must name one");
        config.select_drive(Some("B"), true).unwrap();
        assert_eq!(
            (config.drive.clone(), config.drive_name.as_str(), config.changer_index),
            (DriveSpec::Device(PathBuf::from("/dev/nst1")), "B", Some(1))
        );
        assert_eq!(config.drive_at(0).map(|d| d.name.as_str()), Some("A"));
        assert_eq!(config.drive_at(7), None);
    }

    #[test]
    fn the_legacy_form_is_the_drive_named_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tape.conf");
        std::fs::write(&path, include_str!("../../tape.conf.ex")).unwrap();
        let mut config = Config::load(&path).unwrap();
        assert_eq!(config.drives, vec![entry("default", "/dev/nst0", None)]);
        assert_eq!((config.drive_name.as_str(), config.changer_index, &config.changer), ("default", None, &None));
        config.select_drive(None, true).unwrap();
        config.select_drive(Some("default"), true).unwrap();
        assert_eq!(config.drive, DriveSpec::Device(PathBuf::from("/dev/nst0")));
    }
}
