//! `check`, for cron: looks through the catalogue (opened read-only) for
//! what needs a person — tape files recorded but left unconfirmed too long,
//! failed confirms, full or nearly full open tapes, targets waiting for a
//! tape or never scanned, tapes whose recovered read errors grow from one
//! read to the next (`tape_errors_growing`; what a read is: see
//! `catalog::drive_io`), and catalogue damage — and prints a one-line
//! summary fit for a mail subject, then one line per finding (or one JSON
//! document). Exit 0 when nothing is a problem, 1 otherwise. When tape.conf
//! names st drives, it also asks each (without blocking, and not while a
//! job holds it) whether it wants cleaning and which TapeAlert flags it has
//! set (`drive_cleaning`, `tape_alert`, `tape_alert_warning`; a drive that
//! cannot be asked is a `drive_not_read` notice).
//!
//! Tape files recorded by the old tool carry no date: they are listed as
//! "age unknown" notices, which never make the exit code non-zero.
//!
//! `log` (the history of archive, confirm and restore attempts) and `ack ID`
//! (which acknowledges an alarm that `check` reports) live here too.

use std::io::Write;

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use super::reports::{self, HistoryRow};
use super::{Context_, open};
use crate::catalog::{Catalog, HistoryRef, Mode, legacy_file_number, show};
use crate::commands::reports::put_name;
use crate::config::Config;
use crate::exit_codes::ExitCode;
use crate::tape_file::TapeFile;

mod conditions;
mod drives;

use conditions::{
    duplicate_numbers, failed_archives, failed_confirms, integrity, missing_tape, missing_target, multiple_backups,
    never_scanned, requeued, short_of_copies, tape_errors_growing, tape_fill, unassigned, unconfirmed, verify_due,
    verify_failed,
};
use drives::drive_health;

/// At most this many findings of one kind are listed; counts stay exact.
pub const DETAIL_LIMIT: usize = 100;

/// Options of `check`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Days a recorded backup may wait for its confirm.
    pub days: u32,
    /// Percent of capacity at which a tape is nearly full.
    pub full_percent: u32,
    /// JSON output.
    pub json: bool,
    /// Days after which a tape is due for verification (`verify_days`).
    pub verify_days: u32,
    /// Run `PRAGMA integrity_check` (it reads the whole catalogue: seconds
    /// on tens of millions of files). Without it there is no `integrity` key.
    pub integrity: bool,
}

/// One kind of finding, with its findings.
#[derive(Debug)]
pub(super) struct Condition {
    /// Stable key (JSON and the prefix of each detail line).
    key: &'static str,
    /// Whether a finding of this kind makes the exit code non-zero.
    problem: bool,
    /// Summary label for one finding, and for several.
    one: String,
    many: String,
    /// How many findings.
    count: usize,
    /// The first `DETAIL_LIMIT` findings.
    items: Vec<Item>,
}

/// One finding: a sentence, and the same facts as JSON fields.
#[derive(Debug)]
pub(super) struct Item {
    detail: String,
    fields: Map<String, Value>,
}

impl Condition {
    fn new(key: &'static str, problem: bool, one: impl Into<String>, many: impl Into<String>) -> Condition {
        Condition { key, problem, one: one.into(), many: many.into(), count: 0, items: Vec::new() }
    }

    fn add(&mut self, detail: String, fields: Value) {
        self.count += 1;
        if self.items.len() < DETAIL_LIMIT {
            let fields = match fields {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            self.items.push(Item { detail, fields });
        }
    }

    fn label(&self) -> String {
        format!("{} {}", self.count, if self.count == 1 { &self.one } else { &self.many })
    }

    fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                let mut m = i.fields.clone();
                m.insert("detail".into(), Value::String(i.detail.clone()));
                Value::Object(m)
            })
            .collect();
        json!({ "problem": self.problem, "count": self.count, "items": items, "more": self.count - self.items.len() })
    }
}

/// Run `check`: print the summary and the findings; Success when no
/// finding is a problem, Failure otherwise. `live` is who holds the
/// catalogue's lock now (`lock::holder`), if anyone: an archive that is
/// running is reported as such, not as killed.
pub fn run(cat: &Catalog, opts: Options, live: Option<&str>, config: &Config, out: &mut dyn Write) -> Result<ExitCode> {
    let conditions = find_all_with_drives(cat, opts, live, config)?;
    let (tapes, targets) = cat.tape_and_target_counts()?;
    let summary = summary(&conditions, tapes, targets);
    let problems: usize = conditions.iter().filter(|c| c.problem).map(|c| c.count).sum();
    if opts.json {
        write_json(out, opts, &conditions, &summary, tapes, targets)?;
    } else {
        write_text(out, &conditions, &summary)?;
    }
    out.flush()?;
    Ok(if problems == 0 { ExitCode::Success } else { ExitCode::Failure })
}

/// Every condition of the catalogue, then what the configured drives say.
fn find_all_with_drives(cat: &Catalog, opts: Options, live: Option<&str>, config: &Config) -> Result<Vec<Condition>> {
    let mut conditions = find_all(cat, opts, live, config.changer.is_some())?;
    conditions.extend(drive_health(config));
    Ok(conditions)
}

/// Every condition of the catalogue, in the order they are reported
/// (`library`: tape.conf names a changer, which changes some advice).
fn find_all(cat: &Catalog, opts: Options, live: Option<&str>, library: bool) -> Result<Vec<Condition>> {
    let (overdue, unknown) = unconfirmed(cat, opts.days)?;
    let (full, nearly) = tape_fill(cat, opts.full_percent, library)?;
    let (archives, running) = failed_archives(cat, live)?;
    let mut all = vec![
        overdue,
        failed_confirms(cat)?,
        requeued(cat)?,
        archives,
        unassigned(cat)?,
        never_scanned(cat)?,
        full,
        nearly,
    ];
    if opts.integrity {
        all.push(integrity(cat)?);
    }
    all.extend([missing_target(cat)?, missing_tape(cat)?, duplicate_numbers(cat)?, multiple_backups(cat)?]);
    if cat.counts_pools() {
        all.push(short_of_copies(cat)?);
    }
    all.push(verify_failed(cat)?);
    all.push(tape_errors_growing(cat)?);
    all.push(verify_due(cat, opts.verify_days)?);
    all.push(unknown);
    all.push(running);
    Ok(all)
}

/// The first line: `tapeop check: N problems — ...` or `tapeop check: all well (...)`.
fn summary(conditions: &[Condition], tapes: i64, targets: i64) -> String {
    let labels = |problem: bool| -> Vec<String> {
        conditions.iter().filter(|c| c.problem == problem && c.count > 0).map(Condition::label).collect()
    };
    let (problems, notes) = (labels(true), labels(false));
    let n: usize = conditions.iter().filter(|c| c.problem).map(|c| c.count).sum();
    if n == 0 {
        let mut s = format!(
            "tapeop check: all well ({} {}, {} {}",
            tapes,
            plural(tapes, "tape"),
            targets,
            plural(targets, "target")
        );
        for note in notes {
            s.push_str(&format!("; {note}"));
        }
        return s + ")";
    }
    let mut s = format!("tapeop check: {n} {} — {}", plural(n as i64, "problem"), problems.join(", "));
    if !notes.is_empty() {
        s.push_str(&format!(" (also {})", notes.join(", ")));
    }
    s
}

fn plural(n: i64, word: &str) -> String {
    if n == 1 { word.to_string() } else { format!("{word}s") }
}

fn write_text(out: &mut dyn Write, conditions: &[Condition], summary: &str) -> Result<()> {
    writeln!(out, "{summary}")?;
    for c in conditions {
        for i in &c.items {
            writeln!(out, "{}: {}", c.key, i.detail)?;
        }
        if c.count > c.items.len() {
            writeln!(out, "{}: ... and {} more", c.key, c.count - c.items.len())?;
        }
    }
    Ok(())
}

/// Exactly the document `check --json` prints, for the status page
/// (`report --html`), which shows every condition from it.
pub fn json_document(cat: &Catalog, opts: Options, live: Option<&str>, config: &Config) -> Result<Value> {
    let conditions = find_all_with_drives(cat, opts, live, config)?;
    let (tapes, targets) = cat.tape_and_target_counts()?;
    let summary = summary(&conditions, tapes, targets);
    Ok(json_doc(opts, &conditions, &summary, tapes, targets))
}

fn write_json(
    out: &mut dyn Write,
    opts: Options,
    conditions: &[Condition],
    summary: &str,
    tapes: i64,
    targets: i64,
) -> Result<()> {
    serde_json::to_writer(&mut *out, &json_doc(opts, conditions, summary, tapes, targets))?;
    writeln!(out)?;
    Ok(())
}

fn json_doc(opts: Options, conditions: &[Condition], summary: &str, tapes: i64, targets: i64) -> Value {
    let count = |problem: bool| -> usize { conditions.iter().filter(|c| c.problem == problem).map(|c| c.count).sum() };
    let map: Map<String, Value> = conditions.iter().map(|c| (c.key.to_string(), c.to_json())).collect();
    json!({
        "ok": count(true) == 0, "summary": summary, "problems": count(true), "notices": count(false),
        "days": opts.days, "full_percent": opts.full_percent, "tapes": tapes, "targets": targets,
        "conditions": map,
    })
}

/// `tape T file N (TARGET)` and its JSON fields.
fn tape_file(tape: &str, file_number: Option<TapeFile>, target: &[u8]) -> (String, Map<String, Value>) {
    let file_number = legacy_file_number(file_number);
    let mut m = Map::new();
    m.insert("tape".into(), json!(tape));
    m.insert("file_number".into(), json!(file_number));
    put_name(&mut m, "target", target);
    (format!("tape {tape} file {file_number} ({})", show(target)), m)
}

/// The header of the `log` table.
const LOG_HEADER: [&str; 10] =
    ["Started", "Ended", "Kind", "Tape", "FNum", "Target", "Bytes", "MB/s", "Outcome", "Error"];
/// Which `log` columns are right-aligned (numbers).
const LOG_RIGHT: [bool; 10] = [false, false, false, false, true, false, true, true, false, false];

/// `log [--tape T] [--limit N]`: the history of archive, confirm and restore
/// attempts, newest last (at most `limit` rows; 0 = all), as an aligned
/// table or JSON.
pub fn log(cat: &Catalog, tape: Option<&str>, limit: u32, json: bool, out: &mut dyn Write) -> Result<()> {
    if let Some(t) = tape {
        cat.require_tape(t)?;
    }
    let rows = cat.history_tail(tape, limit)?;
    if json {
        let entries: Vec<Value> = rows.iter().map(HistoryRow::to_json).collect();
        return reports::write_json(out, &json!({ "tape": tape, "limit": limit, "entries": entries }));
    }
    let cells: Vec<Vec<String>> = rows.iter().map(HistoryRow::cells).collect();
    reports::write_table(out, &LOG_HEADER, &LOG_RIGHT, &cells)?;
    if rows.is_empty() {
        writeln!(out, "(no archive, confirm or restore recorded yet)")?;
    }
    Ok(())
}

/// `ack ID`: acknowledge the alarm of history row ID.
pub fn ack(ctx: &Context_, id: i64, note: Option<&str>) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let Some(row) = cat.history_row(id)? else {
        bail!("there is no history id {id} in the catalogue: tapeop check and tapeop log show the ids");
    };
    let alarm = row.is_alarm() || cat.errors_growing()?.iter().any(|g| g.latest.run == id);
    let HistoryRef { kind, tape, file_number: n, target, outcome } = row;
    if !alarm {
        bail!("history id {id} is a {kind} that ended {outcome}, not an alarm: tapeop check shows the ids of alarms");
    }
    if let Some(when) = cat.acked(id)? {
        println!("History id {id} was already acknowledged ({when}).");
        return Ok(());
    }
    let text = format!(
        "acknowledges history id {id} ({kind} {outcome}){}",
        note.map(|t| format!(": {t}")).unwrap_or_default()
    );
    cat.ack(id, (&tape, n, &target), &text)?;
    let n = legacy_file_number(n);
    println!("Acknowledged history id {id}: the {kind} of tape {tape} file {n} ({target}), {outcome}.");
    Ok(())
}
