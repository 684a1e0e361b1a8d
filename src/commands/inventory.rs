//! The `inventory` command: every drive, storage slot and import/export
//! slot of the tape library, its barcode, and which catalogue tape it is
//! (with the tape's state), a cleaning cartridge, a barcode the catalogue
//! does not know, or nothing. Also the one-line description of a cartridge
//! that `drive` prints. A report over the changer layer and the catalogue.

use std::io::Write;

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::Context_;
use super::reports::{display_status, tape_json, write_json};
use crate::catalog::{Catalog, DEFAULT_POOL, Mode, Tape};
use crate::changer::{Changer, DriveElement, LibraryStatus, SlotElement, is_cleaning};
use crate::config::{ChangerConfig, Config};
use crate::drive::DriveSpec;
use crate::exit_codes::{Exit, ExitCode};

/// What a drive or slot holds, against the catalogue.
pub enum Holds {
    /// Nothing.
    Empty,
    /// A cartridge without a (readable) barcode.
    NoBarcode,
    /// A cleaning cartridge (`CLN...`).
    Cleaning(String),
    /// A barcode no catalogue tape has as its serial (blank or foreign).
    Unknown(String),
    /// The catalogue tape whose serial is the barcode.
    Tape(String, Tape),
}

impl Holds {
    /// Classify a cartridge by its barcode; `cat` None: no catalogue yet.
    pub fn of(cat: Option<&Catalog>, full: bool, barcode: Option<&str>) -> Result<Holds> {
        let Some(code) = barcode else {
            return Ok(if full { Holds::NoBarcode } else { Holds::Empty });
        };
        if is_cleaning(code) {
            return Ok(Holds::Cleaning(code.to_string()));
        }
        match cat.map(|c| c.tape_by_serial(code)).transpose()?.flatten() {
            Some(tape) => Ok(Holds::Tape(code.to_string(), tape)),
            None => Ok(Holds::Unknown(code.to_string())),
        }
    }

    /// The barcode, if it has one.
    pub fn barcode(&self) -> Option<&str> {
        match self {
            Holds::Empty | Holds::NoBarcode => None,
            Holds::Cleaning(b) | Holds::Unknown(b) | Holds::Tape(b, _) => Some(b),
        }
    }

    /// What it holds, as one word: `empty`, `no_barcode`, `cleaning`, `unknown`, `tape`.
    pub fn kind(&self) -> &'static str {
        match self {
            Holds::Empty => "empty",
            Holds::NoBarcode => "no_barcode",
            Holds::Cleaning(_) => "cleaning",
            Holds::Unknown(_) => "unknown",
            Holds::Tape(..) => "tape",
        }
    }

    /// What it is, without the barcode: `tape T1 (open, online)`,
    /// `unknown (not in the catalogue)`, ...; `more` adds to the parentheses.
    pub fn describe(&self, cat: Option<&Catalog>, more: Option<String>) -> Result<String> {
        let (what, mut notes) = match self {
            Holds::Empty => return Ok("empty".to_string()),
            Holds::NoBarcode => ("no barcode".to_string(), Vec::new()),
            Holds::Cleaning(_) => ("cleaning cartridge".to_string(), Vec::new()),
            Holds::Unknown(_) => ("unknown".to_string(), vec!["not in the catalogue".to_string()]),
            Holds::Tape(_, tape) => {
                let status = match cat {
                    Some(cat) => display_status(cat, tape)?.to_string(),
                    None => tape.status.to_string(),
                };
                let mut notes = vec![status];
                if let Some(pool) = cat.map(|c| c.tape_pool(tape)).transpose()?.filter(|p| p != DEFAULT_POOL) {
                    notes.push(format!("pool {pool}"));
                }
                if tape.online {
                    notes.push("online".to_string());
                }
                (format!("tape {}", tape.name), notes)
            }
        };
        notes.extend(more);
        Ok(if notes.is_empty() { what } else { format!("{what} ({})", notes.join(", ")) })
    }
}

/// Where a drive's cartridge came from, as `inventory` and `drive` say it.
pub fn from_slot(d: &DriveElement) -> Option<String> {
    match (d.full, d.source_slot) {
        (false, _) => None,
        (true, Some(slot)) => Some(format!("from slot {slot}")),
        (true, None) => Some("from an unknown slot".to_string()),
    }
}

/// The changer of tape.conf, or the one-line error that says inventory needs one.
fn changer_config(config: &Config) -> Result<&ChangerConfig> {
    config.changer.as_ref().ok_or_else(|| {
        Exit::error(ExitCode::Failure, "no [changer] in tape.conf: inventory needs a tape library (see tape.conf.ex)")
    })
}

/// The catalogue, when there is one yet (else every barcode is unknown).
pub fn catalogue(config: &Config) -> Result<Option<Catalog>> {
    if !config.database_file.exists() {
        return Ok(None);
    }
    Ok(Some(Catalog::open(&config.database_file, Mode::ReadOnly)?))
}

/// `inventory [--json]`: what the changer holds, against the catalogue.
pub fn run(ctx: &Context_, out: &mut dyn Write) -> Result<ExitCode> {
    let changer = Changer::new(changer_config(&ctx.config)?);
    let status = changer.status()?;
    let cat = catalogue(&ctx.config)?;
    if ctx.json {
        write_json(out, &inventory_json(&ctx.config, &changer, &status, cat.as_ref())?)?;
    } else {
        write_text(&ctx.config, &changer, &status, cat.as_ref(), out)?;
    }
    Ok(ExitCode::Success)
}

/// A drive's label: `Drive A (element 0, /dev/nst0)`.
fn drive_label(config: &Config, index: u32) -> String {
    match config.drive_at(index) {
        Some(e) => format!("Drive {} (element {index}, {})", e.name, spec_text(&e.spec)),
        None => format!("Drive - (element {index}, not in tape.conf)"),
    }
}

fn spec_text(spec: &DriveSpec) -> String {
    match spec {
        DriveSpec::Device(p) => p.display().to_string(),
        DriveSpec::Emulator { dir, .. } => format!("emulated tape {}", dir.display()),
    }
}

fn slot_label(s: &SlotElement) -> String {
    if s.import_export { format!("Slot {} (import/export)", s.number) } else { format!("Slot {}", s.number) }
}

/// One row of the text inventory: its label, what it holds, and where
/// a drive's cartridge came from.
type Row = (String, Holds, Option<String>);

fn drive_rows(config: &Config, status: &LibraryStatus, cat: Option<&Catalog>) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for d in &status.drives {
        rows.push((drive_label(config, d.index), Holds::of(cat, d.full, d.barcode.as_deref())?, from_slot(d)));
    }
    Ok(rows)
}

/// For `status` with a changer: which cartridge (and catalogue tape) each
/// drive holds, under a heading. A changer that cannot be asked is said
/// in one line: `status` never fails on it.
pub fn drive_lines(config: &Config, cat: &Catalog, out: &mut dyn Write) -> Result<()> {
    let Some(changer) = &config.changer else { return Ok(()) };
    writeln!(out, "In the library's drives:")?;
    match Changer::new(changer).status() {
        Ok(status) => write_rows(drive_rows(config, &status, Some(cat))?, Some(cat), out),
        Err(e) => Ok(writeln!(out, "unknown: {e:#}")?),
    }
}

fn write_text(
    config: &Config,
    changer: &Changer,
    status: &LibraryStatus,
    cat: Option<&Catalog>,
    out: &mut dyn Write,
) -> Result<()> {
    let mut rows = drive_rows(config, status, cat)?;
    for s in &status.slots {
        rows.push((slot_label(s), Holds::of(cat, s.full, s.barcode.as_deref())?, None));
    }
    let ie = status.slots.iter().filter(|s| s.import_export).count();
    writeln!(
        out,
        "Changer {}: {} drives, {} slots, {ie} import/export",
        changer.device().display(),
        status.drives.len(),
        status.slots.len() - ie
    )?;
    write_rows(rows, cat, out)
}

/// The rows, aligned: label, barcode, what it is.
fn write_rows(rows: Vec<Row>, cat: Option<&Catalog>, out: &mut dyn Write) -> Result<()> {
    let label_width = rows.iter().map(|r| r.0.len() + 1).max().unwrap_or(0);
    let code_width = rows.iter().filter_map(|r| r.1.barcode()).map(str::len).max().unwrap_or(0);
    for (label, holds, more) in rows {
        let label = format!("{label}:");
        let what = holds.describe(cat, more)?;
        match holds.barcode() {
            Some(code) => writeln!(out, "{label:<label_width$} {code:<code_width$}  {what}")?,
            None => writeln!(out, "{label:<label_width$} {what}")?,
        }
    }
    Ok(())
}

/// The common fields of a drive or slot: `full`, `barcode`, `holds`, `tape`.
fn holds_json(cat: Option<&Catalog>, full: bool, barcode: Option<&str>) -> Result<Map<String, Value>> {
    let holds = Holds::of(cat, full, barcode)?;
    let tape = match (&holds, cat) {
        (Holds::Tape(_, tape), Some(cat)) => {
            let mut m = tape_json(cat, tape)?;
            m.insert("pool".into(), Value::String(cat.tape_pool(tape)?));
            Value::Object(m)
        }
        _ => Value::Null,
    };
    let mut m = Map::new();
    m.insert("full".into(), json!(full));
    m.insert("barcode".into(), json!(barcode));
    m.insert("holds".into(), json!(holds.kind()));
    m.insert("tape".into(), tape);
    Ok(m)
}

fn inventory_json(config: &Config, changer: &Changer, status: &LibraryStatus, cat: Option<&Catalog>) -> Result<Value> {
    let mut drives = Vec::new();
    for d in &status.drives {
        let mut m = holds_json(cat, d.full, d.barcode.as_deref())?;
        let entry = config.drive_at(d.index);
        m.insert("element".into(), json!(d.index));
        m.insert("name".into(), json!(entry.map(|e| e.name.as_str())));
        m.insert("device".into(), json!(entry.map(|e| spec_text(&e.spec))));
        m.insert("source_slot".into(), json!(d.source_slot));
        drives.push(Value::Object(m));
    }
    let mut slots = Vec::new();
    for s in &status.slots {
        let mut m = holds_json(cat, s.full, s.barcode.as_deref())?;
        m.insert("slot".into(), json!(s.number));
        m.insert("import_export".into(), json!(s.import_export));
        slots.push(Value::Object(m));
    }
    Ok(json!({ "changer": changer.device().display().to_string(), "drives": drives, "slots": slots }))
}
