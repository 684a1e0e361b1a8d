//! The `drive` command: what the drive says about itself (loaded,
//! write-protect, position, block size), whether its position matches the
//! catalogue's online tape, and whether its last proof still holds. A report
//! over the drive layer and the catalogue; the drive layer itself knows
//! nothing of the catalogue.

use std::io::Write;

use anyhow::Result;

use super::inventory::{self, Holds};
use crate::catalog::{Catalog, Mode};
use crate::changer::Changer;
use crate::config::Config;
use crate::drive::{self, Access, Drive, DriveError, DriveSpec, health, last_proof};
use crate::exit_codes::ExitCode;

fn describe_spec(spec: &DriveSpec) -> String {
    match spec {
        DriveSpec::Device(p) => p.display().to_string(),
        DriveSpec::Emulator { dir, .. } => format!("emulated tape {}", dir.display()),
    }
}

/// `drive`: print what the drive says and whether its position matches
/// what the catalogue expects for the online tape, then what a st drive
/// says about its health (`drive::health`: cleaning, statistics, TapeAlert).
/// With `json`, only the health, as one JSON object
/// (`{"device": ..., "health": ...}`; `health` is null for an emulated drive).
pub fn run(config: &Config, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    if json {
        let health = match &config.drive {
            DriveSpec::Device(path) => health::report_json(path),
            DriveSpec::Emulator { .. } => serde_json::Value::Null,
        };
        let value = serde_json::json!({ "device": describe_spec(&config.drive), "health": health });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::Success);
    }
    // After the report, which refuses a rewinding device before any open.
    let code = report(config, out)?;
    let health = match &config.drive {
        DriveSpec::Device(path) => health::report_lines(path),
        DriveSpec::Emulator { .. } => Vec::new(),
    };
    for line in health {
        writeln!(out, "{line}")?;
    }
    Ok(code)
}

/// The `drive` lines about the drive's state and position.
fn report(config: &Config, out: &mut dyn Write) -> Result<ExitCode> {
    let mut drive = match drive::open(&config.drive, Access::Read, config.block_size) {
        Ok(d) => d,
        Err(e) if e.chain().any(|c| c.downcast_ref::<DriveError>() == Some(&DriveError::NotLoaded)) => {
            writeln!(out, "Drive:           {}", describe_spec(&config.drive))?;
            writeln!(out, "Loaded:          no ({e:#})")?;
            report_cartridge(config, out)?;
            return Ok(ExitCode::Success);
        }
        Err(e) => return Err(e),
    };
    let st = drive.status()?;
    let opt = |v: Option<u64>| v.map_or("unknown".to_string(), |n| n.to_string());
    writeln!(out, "Drive:           {}", drive.name())?;
    writeln!(out, "Loaded:          {}", if st.loaded { "yes" } else { "no" })?;
    writeln!(out, "Write-protected: {}", if st.write_protected { "yes" } else { "no" })?;
    writeln!(out, "File number:     {}", opt(st.file_number))?;
    writeln!(out, "Block number:    {}", opt(st.block_number))?;
    writeln!(
        out,
        "Block size:      {}",
        st.block_size.map_or("variable".to_string(), |b| format!("{b} bytes (fixed)"))
    )?;
    let flags: Vec<&str> = [(st.bot, "BOT"), (st.eof, "EOF"), (st.eod, "EOD"), (st.eot, "EOT")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
    writeln!(out, "Flags:           {}", if flags.is_empty() { "-".to_string() } else { flags.join(" ") })?;
    report_cartridge(config, out)?;
    if !config.database_file.exists() {
        writeln!(out, "Catalogue:       none yet ({} does not exist)", config.database_file.display())?;
        return report_last_proof(config, &mut *drive, out);
    }
    let cat = Catalog::open(&config.database_file, Mode::ReadOnly)?;
    match cat.online_tape()? {
        None => writeln!(out, "Catalogue:       no tape is online")?,
        Some(tape) => {
            let next = crate::label::append_point(&cat, &tape)?;
            let at_start = st.block_number.is_none_or(|b| b == 0);
            let verdict = match st.file_number {
                Some(f) if f == next.get() && at_start && st.eod => "at the append point (end of data)",
                Some(f) if f == next.get() && at_start => "at the append point",
                Some(_) => "NOT at the append point (archive positions it and proves the tape first)",
                None => "position unknown",
            };
            writeln!(out, "Online tape:     \"{}\", next tape file {next}: drive is {verdict}", tape.name)?;
        }
    }
    report_last_proof(config, &mut *drive, out)
}

/// With a changer: the line saying which cartridge the selected drive
/// holds (its barcode and catalogue tape), by `mtx status`.
fn report_cartridge(config: &Config, out: &mut dyn Write) -> Result<()> {
    let Some(changer) = &config.changer else { return Ok(()) };
    let Some(index) = config.changer_index else {
        writeln!(out, "Cartridge:       unknown (drive {} has no changer_index in tape.conf)", config.drive_name)?;
        return Ok(());
    };
    let what = match Changer::new(changer).status() {
        Err(e) => format!("unknown ({e:#})"),
        Ok(status) => match status.drive(index) {
            None => format!("unknown (the changer has no drive element {index})"),
            Some(d) => {
                let cat = inventory::catalogue(config)?;
                let holds = Holds::of(cat.as_ref(), d.full, d.barcode.as_deref())?;
                let what = holds.describe(cat.as_ref(), inventory::from_slot(d))?;
                holds.barcode().map_or(what.clone(), |code| format!("{code}  {what}"))
            }
        },
    };
    writeln!(out, "Cartridge:       {what} [changer element {index}]")?;
    Ok(())
}

/// The `drive` lines about the drive's last proof and whether it still holds.
fn report_last_proof(config: &Config, drive: &mut dyn Drive, out: &mut dyn Write) -> Result<ExitCode> {
    let Some(last) = last_proof::read(&config.drive) else {
        if drive.absolute_position()?.is_some() {
            writeln!(out, "Last proof:      none recorded (the next archive, confirm or restore reads the label)")?;
        }
        return Ok(ExitCode::Success);
    };
    let eod = last.end_of_data.map_or("end of data unknown".to_string(), |e| format!("end of data at file {e}"));
    let serial = if last.serial.is_empty() { String::new() } else { format!(" (serial {})", last.serial) };
    writeln!(
        out,
        "Last proof:      tape \"{}\"{serial} by {} at {}: head left at file {} block {}, position {}; {eod}",
        last.tape, last.command, last.time, last.file, last.block, last.position
    )?;
    let verdict = if last.still_here(last_proof::head(drive)) {
        "the head is still there: the next run trusts it and does not read the label again"
    } else {
        "the head has moved since (or a tape was loaded): the next run proves the tape in full"
    };
    writeln!(out, "                 {verdict}")?;
    Ok(ExitCode::Success)
}
