//! What the configured st drives say to `check`: their cleaning request and
//! TapeAlert flags (`drive_cleaning`, `tape_alert`, `tape_alert_warning`),
//! and a `drive_not_read` notice for a drive that could not be asked.

use anyhow::Result;
use serde_json::{Value, json};

use super::Condition;
use super::conditions::object;
use crate::config::Config;
use crate::drive::{DriveSpec, health};

// ---- what the drives say ----

/// What the configured st drives say about themselves (nothing at all when
/// tape.conf names none: an emulator is not asked). Each drive is opened
/// without blocking, and not at all while a job holds its lock.
pub(super) fn drive_health(config: &Config) -> Vec<Condition> {
    let devices: Vec<(&str, &std::path::Path, &DriveSpec)> = config
        .drives
        .iter()
        .filter_map(|d| match &d.spec {
            DriveSpec::Device(path) => Some((d.name.as_str(), path.as_path(), &d.spec)),
            DriveSpec::Emulator { .. } => None,
        })
        .collect();
    if devices.is_empty() {
        return Vec::new();
    }
    let mut cleaning = Condition::new("drive_cleaning", true, "drive asks for cleaning", "drives ask for cleaning");
    let mut critical = Condition::new("tape_alert", true, "critical TapeAlert flag", "critical TapeAlert flags");
    let mut warning = Condition::new("tape_alert_warning", false, "TapeAlert warning", "TapeAlert warnings");
    let mut unread = Condition::new("drive_not_read", false, "drive not fully read", "drives not fully read");
    let mut no_sg_logs = false;
    for (name, path, spec) in devices {
        let m = json!({ "drive": name, "device": path.display().to_string() });
        let what = format!("drive {name} ({})", path.display());
        if let Some(holder) = crate::lock::holder(&crate::lock::drive_lock_path(spec)) {
            unread.add(format!("{what} is in use by {holder}: not asked"), m);
            continue;
        }
        match health::drive_flags(path) {
            Err(e) => {
                unread.add(format!("{what} could not be asked: {}", busy_or(&e)), m);
                continue;
            }
            Ok(f) if f.cleaning_requested => {
                let advice = cleaning_advice(config, name);
                cleaning.add(format!("{what} asks for cleaning: {advice}"), m.clone());
            }
            Ok(_) => {}
        }
        match drive_alerts(path) {
            Ok(alerts) => add_alerts(&mut critical, &mut warning, &what, &m, &alerts),
            Err(e) if format!("{e:#}").starts_with("sg_logs not found") => no_sg_logs = true,
            Err(e) => unread.add(format!("{what}: its TapeAlert flags were not read: {e:#}"), m),
        }
    }
    if no_sg_logs {
        let line = "sg_logs not found (install sg3-utils): the drives' TapeAlert flags were not read";
        unread.add(line.to_string(), json!({ "drive": null, "device": null }));
    }
    vec![cleaning, critical, warning, unread]
}

/// What to do about a drive that asks for cleaning.
fn cleaning_advice(config: &Config, name: &str) -> String {
    let in_library =
        config.changer.is_some() && config.drives.iter().any(|d| d.name == name && d.changer_index.is_some());
    if in_library {
        format!("tapeop --drive {name} clean")
    } else {
        "load a cleaning cartridge into it (it cleans and ejects itself)".to_string()
    }
}

/// A drive that another program holds open (EBUSY) said plainly; any other
/// failure as it is.
fn busy_or(e: &anyhow::Error) -> String {
    let busy = e
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error) == Some(libc::EBUSY));
    if busy { "another program has it open (busy)".to_string() } else { format!("{e:#}") }
}

/// The TapeAlert flags of the st drive at `path` (sysfs, then sg_logs).
fn drive_alerts(path: &std::path::Path) -> Result<Vec<health::TapeAlert>> {
    let st = health::st_name(path).ok_or_else(|| anyhow::anyhow!("{} is not a st device", path.display()))?;
    health::read_tape_alerts(&health::sg_device(&health::sysfs_root(), &st)?)
}

/// Critical flags as problems, warnings as notices (information flags are
/// left to `drive`).
fn add_alerts(critical: &mut Condition, warning: &mut Condition, what: &str, m: &Value, alerts: &[health::TapeAlert]) {
    for a in alerts {
        let mut fields = object(m.clone());
        fields.insert("code".into(), json!(a.code));
        fields.insert("name".into(), json!(a.name));
        fields.insert("severity".into(), json!(format!("{:?}", a.severity)));
        let flag = format!("{what}: TapeAlert {} {}", a.code, a.name);
        match a.severity {
            health::Severity::Critical => critical.add(
                format!(
                    "{flag} (critical): act now; see the drive's manual for this flag (tapeop drive shows them all)"
                ),
                Value::Object(fields),
            ),
            health::Severity::Warning => {
                warning.add(format!("{flag} (warning): act soon; see the drive's manual"), Value::Object(fields))
            }
            health::Severity::Information => {}
        }
    }
}
