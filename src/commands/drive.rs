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
use crate::drive::{self, Access, DriveError, DriveSpec, DriveStatus, health, last_proof};
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
/// With `json`, the same facts as one JSON object: `device`, `loaded`,
/// `why_not_loaded`, `write_protected`, `file_number`, `block_number`,
/// `block_size` (null: variable), `flags`, `cartridge`, `online_tape`,
/// `last_proof` and `health` (null for an emulated drive).
pub fn run(config: &Config, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    // The facts first: opening refuses a rewinding device before any other open.
    let facts = gather(config)?;
    let device = match &config.drive {
        DriveSpec::Device(path) => Some(path),
        DriveSpec::Emulator { .. } => None,
    };
    if json {
        let mut value = facts.to_json();
        value["health"] = device.map_or(serde_json::Value::Null, |p| health::report_json(p));
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::Success);
    }
    facts.write_text(out)?;
    for line in device.map(|p| health::report_lines(p)).unwrap_or_default() {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::Success)
}

/// What `drive` reports, gathered once for the text and the JSON forms.
struct Facts {
    device: String,
    /// The drive's status, or why it has no cartridge ready.
    status: std::result::Result<DriveStatus, String>,
    /// Which cartridge the drive holds, by the changer (None: no changer).
    cartridge: Option<(Option<u32>, String)>,
    /// What the catalogue expects.
    catalogue: CatalogueView,
    /// The drive's last proof and whether the head is still there.
    last_proof: Option<(last_proof::LastProof, bool)>,
    /// The drive is at a known position but has no proof recorded.
    no_proof_yet: bool,
}

/// The catalogue's side of `drive`.
enum CatalogueView {
    /// The drive has no cartridge: the catalogue was not asked.
    NotAsked,
    /// No catalogue file yet.
    Missing(String),
    /// No tape is online.
    NoOnlineTape,
    /// The online tape, its next tape file and where the drive is.
    Online { tape: String, next: u64, verdict: &'static str },
}

/// Gather the facts of `drive`.
fn gather(config: &Config) -> Result<Facts> {
    let device = describe_spec(&config.drive);
    let cartridge = cartridge(config)?;
    let mut drive = match drive::open(&config.drive, Access::Read, config.block_size) {
        Ok(d) => d,
        Err(e) if e.chain().any(|c| c.downcast_ref::<DriveError>() == Some(&DriveError::NotLoaded)) => {
            let status = Err(format!("{e:#}"));
            let catalogue = CatalogueView::NotAsked;
            return Ok(Facts { device, status, cartridge, catalogue, last_proof: None, no_proof_yet: false });
        }
        Err(e) => return Err(e),
    };
    let st = drive.status()?;
    let device = drive.name();
    let catalogue = catalogue_view(config, &st)?;
    let last_proof = last_proof::read(&config.drive).map(|last| {
        let here = last.still_here(last_proof::head(&mut *drive));
        (last, here)
    });
    let no_proof_yet = last_proof.is_none() && drive.absolute_position()?.is_some();
    Ok(Facts { device, status: Ok(st), cartridge, catalogue, last_proof, no_proof_yet })
}

/// Where the drive is against the catalogue's online tape.
fn catalogue_view(config: &Config, st: &DriveStatus) -> Result<CatalogueView> {
    if !config.database_file.exists() {
        return Ok(CatalogueView::Missing(config.database_file.display().to_string()));
    }
    let cat = Catalog::open(&config.database_file, Mode::ReadOnly)?;
    let Some(tape) = cat.online_tape()? else { return Ok(CatalogueView::NoOnlineTape) };
    let next = crate::label::append_point(&cat, &tape)?.get();
    let at_start = st.block_number.is_none_or(|b| b == 0);
    let verdict = match st.file_number {
        Some(f) if f == next && at_start && st.eod => "at the append point (end of data)",
        Some(f) if f == next && at_start => "at the append point",
        Some(_) => "NOT at the append point (archive positions it and proves the tape first)",
        None => "position unknown",
    };
    Ok(CatalogueView::Online { tape: tape.name, next, verdict })
}

/// With a changer: which cartridge the selected drive holds (its barcode
/// and catalogue tape), by `mtx status`, and the drive's changer element.
fn cartridge(config: &Config) -> Result<Option<(Option<u32>, String)>> {
    let Some(changer) = &config.changer else { return Ok(None) };
    let Some(index) = config.changer_index else {
        let why = format!("unknown (drive {} has no changer_index in tape.conf)", config.drive_name);
        return Ok(Some((None, why)));
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
    Ok(Some((Some(index), what)))
}

impl Facts {
    /// The text form, line by line.
    fn write_text(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(out, "Drive:           {}", self.device)?;
        let st = match &self.status {
            Err(why) => {
                writeln!(out, "Loaded:          no ({why})")?;
                return self.write_cartridge(out);
            }
            Ok(st) => st,
        };
        let opt = |v: Option<u64>| v.map_or("unknown".to_string(), |n| n.to_string());
        let yes = |b: bool| if b { "yes" } else { "no" };
        writeln!(out, "Loaded:          {}", yes(st.loaded))?;
        writeln!(out, "Write-protected: {}", yes(st.write_protected))?;
        writeln!(out, "File number:     {}", opt(st.file_number))?;
        writeln!(out, "Block number:    {}", opt(st.block_number))?;
        let bs = st.block_size.map_or("variable".to_string(), |b| format!("{b} bytes (fixed)"));
        writeln!(out, "Block size:      {bs}")?;
        let flags = flags(st);
        writeln!(out, "Flags:           {}", if flags.is_empty() { "-".to_string() } else { flags.join(" ") })?;
        self.write_cartridge(out)?;
        match &self.catalogue {
            CatalogueView::NotAsked => {}
            CatalogueView::Missing(path) => writeln!(out, "Catalogue:       none yet ({path} does not exist)")?,
            CatalogueView::NoOnlineTape => writeln!(out, "Catalogue:       no tape is online")?,
            CatalogueView::Online { tape, next, verdict } => {
                writeln!(out, "Online tape:     \"{tape}\", next tape file {next}: drive is {verdict}")?;
            }
        }
        self.write_last_proof(out)
    }

    /// The `Cartridge:` line, with a changer.
    fn write_cartridge(&self, out: &mut dyn Write) -> Result<()> {
        match &self.cartridge {
            Some((Some(index), what)) => writeln!(out, "Cartridge:       {what} [changer element {index}]")?,
            Some((None, what)) => writeln!(out, "Cartridge:       {what}")?,
            None => {}
        }
        Ok(())
    }

    /// The `Last proof:` lines.
    fn write_last_proof(&self, out: &mut dyn Write) -> Result<()> {
        let Some((last, here)) = &self.last_proof else {
            if self.no_proof_yet {
                writeln!(out, "Last proof:      none recorded (the next archive, confirm or restore reads the label)")?;
            }
            return Ok(());
        };
        let eod = last.end_of_data.map_or("end of data unknown".to_string(), |e| format!("end of data at file {e}"));
        let serial = if last.serial.is_empty() { String::new() } else { format!(" (serial {})", last.serial) };
        writeln!(
            out,
            "Last proof:      tape \"{}\"{serial} by {} at {}: head left at file {} block {}, position {}; {eod}",
            last.tape, last.command, last.time, last.file, last.block, last.position
        )?;
        let verdict = if *here {
            "the head is still there: the next run trusts it and does not read the label again"
        } else {
            "the head has moved since (or a tape was loaded): the next run proves the tape in full"
        };
        writeln!(out, "                 {verdict}")?;
        Ok(())
    }

    /// The JSON form (without `health`, which `run` adds).
    fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        let mut v = json!({ "device": self.device });
        match &self.status {
            Err(why) => {
                v["loaded"] = json!(false);
                v["why_not_loaded"] = json!(why);
            }
            Ok(st) => {
                v["loaded"] = json!(st.loaded);
                v["write_protected"] = json!(st.write_protected);
                v["file_number"] = json!(st.file_number);
                v["block_number"] = json!(st.block_number);
                v["block_size"] = json!(st.block_size);
                v["flags"] = json!(flags(st));
            }
        }
        v["cartridge"] = match &self.cartridge {
            None => Value::Null,
            Some((element, what)) => json!({ "changer_element": element, "holds": what }),
        };
        v["online_tape"] = match &self.catalogue {
            CatalogueView::Online { tape, next, verdict } => {
                json!({ "tape": tape, "next_tape_file": next, "drive_is": verdict })
            }
            _ => Value::Null,
        };
        v["last_proof"] = match &self.last_proof {
            None => Value::Null,
            Some((l, here)) => json!({
                "tape": l.tape, "serial": l.serial, "command": l.command, "time": l.time,
                "file": l.file, "block": l.block, "position": l.position,
                "end_of_data": l.end_of_data, "head_still_there": here,
            }),
        };
        v
    }
}

/// The names of the status flags that are set.
fn flags(st: &DriveStatus) -> Vec<&'static str> {
    [(st.bot, "BOT"), (st.eof, "EOF"), (st.eod, "EOD"), (st.eot, "EOT")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect()
}
