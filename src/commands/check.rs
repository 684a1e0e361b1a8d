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
use crate::catalog::{BackupStatus, Catalog, HistoryRef, Mode, legacy_file_number, show};
use crate::commands::reports::put_name;
use crate::config::Config;
use crate::drive::{DriveSpec, health};
use crate::exit_codes::ExitCode;
use crate::tape_file::TapeFile;

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
struct Condition {
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
struct Item {
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
    let mut conditions = find_all(cat, opts, live)?;
    conditions.extend(drive_health(config));
    Ok(conditions)
}

/// Every condition of the catalogue, in the order they are reported.
fn find_all(cat: &Catalog, opts: Options, live: Option<&str>) -> Result<Vec<Condition>> {
    let (overdue, unknown) = unconfirmed(cat, opts.days)?;
    let (full, nearly) = tape_fill(cat, opts.full_percent)?;
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

// ---- the conditions ----

/// Recorded backups: unconfirmed for more than `days` days (a problem),
/// and recorded with no date (the old tool's; a notice).
fn unconfirmed(cat: &Catalog, days: u32) -> Result<(Condition, Condition)> {
    let mut overdue = Condition::new(
        "unconfirmed_overdue",
        true,
        format!("recorded unconfirmed > {days} days"),
        format!("recorded unconfirmed > {days} days"),
    );
    let mut unknown = Condition::new(
        "unconfirmed_age_unknown",
        false,
        "recorded unconfirmed, age unknown",
        "recorded unconfirmed, age unknown",
    );
    cat.each_recorded_backup(|b| {
        let (what, mut m) = tape_file(&b.tape, b.file_number, &b.target);
        let (written_at, age) = (b.written_at, b.age_days);
        m.insert("backup_id".into(), json!(b.backup_id));
        m.insert("written_at".into(), json!(written_at));
        m.insert("age_days".into(), json!(age.map(|a| (a * 100.0).round() / 100.0)));
        match (&written_at, age) {
            (Some(w), Some(a)) if a > f64::from(days) => overdue.add(
                format!("{what} recorded {w}, {} days ago, still not confirmed: tapeop confirm next", a.floor()),
                Value::Object(m),
            ),
            (_, Some(_)) => {}
            _ => unknown
                .add(format!("{what} recorded, not confirmed; when it was written is not known"), Value::Object(m)),
        }
        Ok(())
    })?;
    Ok((overdue, unknown))
}

/// Tape files whose latest confirm failed (none without the history
/// table), until the alarm is acknowledged (`ack`) or a later confirm of
/// the same target succeeds (its requeued copy, on another tape file).
fn failed_confirms(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("failed_confirm", true, "failed confirm", "failed confirms");
    for a in cat.failed_confirm_attempts()?.into_iter().filter(|a| a.backup_status != Some(BackupStatus::Failed)) {
        let (what, mut m) = tape_file(&a.tape, a.file_number, &a.target);
        let n = legacy_file_number(a.file_number);
        let state = format!(": tapeop confirm {n} retries it, tapeop requeue {n} archives it again");
        m.insert("history_id".into(), json!(a.id));
        m.insert("started".into(), json!(a.started));
        m.insert("error".into(), json!(a.error));
        let why = a.error.as_deref().unwrap_or("no reason recorded").replace('\n', " | ");
        let detail = format!(
            "{what}: the last confirm ({}) failed: {why}{state} (history id {}; tapeop ack {} once dealt with)",
            a.started, a.id, a.id
        );
        c.add(detail, Value::Object(m));
    }
    Ok(c)
}

/// Tapes whose latest sample found a bad tape file, until a later good
/// sample, or `ack`.
fn verify_failed(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("verify_failed", true, "failed verification", "failed verifications");
    for f in cat.failed_verifications()? {
        let why = f.error.as_deref().unwrap_or("no reason recorded").replace('\n', " | ");
        let detail = format!(
            "tape {}: the sample of {} ({}) failed: {why} \
             (history id {}; tapeop ack {} once dealt with)",
            f.tape, f.read, f.started, f.history_id, f.history_id
        );
        let fields = json!({ "tape": f.tape, "read": f.read, "started": f.started, "error": f.error,
                             "history_id": f.history_id });
        c.add(detail, fields);
    }
    Ok(c)
}

/// Tapes whose recovered errors per GB grew from one read to the next (a
/// read: one `confirm` run on the tape, or one `confirm --sample` of it;
/// see `catalog::drive_io`), until a later read shows no growth, or `ack`
/// of the latest read's id.
fn tape_errors_growing(cat: &Catalog) -> Result<Condition> {
    let mut c =
        Condition::new("tape_errors_growing", true, "tape with growing read errors", "tapes with growing read errors");
    for g in cat.errors_growing()? {
        let (p, l) = (&g.previous, &g.latest);
        let detail = format!(
            "tape {}: recovered read errors grew from {:.1}/GB ({} in {:.3} GB, {}) to {:.1}/GB ({} in {:.3} GB, {}): \
             read it again (tapeop confirm --sample --tape {}); if they grow on, the tape is wearing out: get its \
             targets onto another tape (a copy pool, or restore and archive them again) and retire it \
             (history id {}; tapeop ack {} once dealt with)",
            g.tape,
            p.per_gb(),
            p.errors,
            p.bytes as f64 / 1e9,
            p.started,
            l.per_gb(),
            l.errors,
            l.bytes as f64 / 1e9,
            l.started,
            g.tape,
            l.run,
            l.run
        );
        let read = |r: &crate::catalog::TapeRead| {
            json!({ "history_id": r.run, "started": r.started, "errors": r.errors, "bytes": r.bytes,
                    "errors_per_gb": r.per_gb() })
        };
        let fields = json!({ "tape": g.tape, "history_id": l.run, "previous": read(p), "latest": read(l) });
        c.add(detail, fields);
    }
    Ok(c)
}

/// Tapes whose last verification is older than `verify_days`.
fn verify_due(cat: &Catalog, days: u32) -> Result<Condition> {
    let mut c = Condition::new("verify_due", true, "tape due for verification", "tapes due for verification");
    for d in cat.verification_due(days)? {
        let detail = format!(
            "tape {}: last verified {}, more than {days} days ago: tapeop confirm --sample --due reads a sample of it",
            d.tape, d.last
        );
        c.add(detail, json!({ "tape": d.tape, "last_verified": d.last, "verify_days": days }));
    }
    Ok(c)
}

/// Tape files given up by `requeue` (backup status `failed`) whose target
/// has no confirmed copy yet: where that target is now.
fn requeued(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("requeued", true, "requeued tape file", "requeued tape files");
    cat.each_requeued_file(|f| {
        let (what, mut m) = tape_file(&f.tape, f.file_number, &f.target);
        let todo = match &f.now {
            None => "its target waits for a tape: tapeop assign, archive, confirm".to_string(),
            Some(n) => format!("its target is now on tape {n}: archive and confirm it"),
        };
        m.insert("target_id".into(), json!(f.target_id));
        m.insert("now".into(), json!(f.now));
        c.add(format!("{what} was requeued (it stays on tape, marked failed); {todo}"), Value::Object(m));
        Ok(())
    })?;
    Ok(c)
}

/// Tapes whose last archive attempt failed or was interrupted (a crash
/// leaves it `running`): a person should look before the next run. An
/// attempt still `running` while an archive holds the catalogue's lock is
/// the live one: a notice, not a problem. An alarm ends when it is
/// acknowledged (`ack`) or a later archive or confirm of the same target
/// succeeds.
fn failed_archives(cat: &Catalog, live: Option<&str>) -> Result<(Condition, Condition)> {
    let mut c = Condition::new("failed_archive", true, "failed archive", "failed archives");
    let mut running = Condition::new("archive_running", false, "archive running", "archives running");
    let rows = cat.failed_archive_attempts()?;
    let newest = cat.newest_archive_attempt()?;
    let live_archive = live.filter(|h| h.contains("(archive)"));
    for a in rows {
        let (what, mut m) = tape_file(&a.tape, a.file_number, &a.target);
        m.insert("history_id".into(), json!(a.id));
        m.insert("started".into(), json!(a.started));
        m.insert("error".into(), json!(a.error));
        if let (Some(holder), true) = (live_archive, a.running && Some(a.id) == newest) {
            m.insert("holder".into(), json!(holder));
            let who = holder.split(" since ").next().unwrap_or(holder);
            running.add(format!("{what}: archive running since {} ({who})", a.started), Value::Object(m));
            continue;
        }
        let why = if a.running {
            "it never finished (killed?)".to_string()
        } else {
            a.error.as_deref().unwrap_or("no reason recorded").replace('\n', " | ")
        };
        let detail = format!(
            "{what}: the last archive ({}) failed: {why} (history id {}; tapeop ack {} once dealt with)",
            a.started, a.id, a.id
        );
        c.add(detail, Value::Object(m));
    }
    Ok((c, running))
}

/// Scanned targets with no backup: waiting for `assign`.
fn unassigned(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("unassigned", true, "unassigned target", "unassigned targets");
    cat.each_unassigned_target(|t| {
        let kb = t.size_kb;
        let mut m = Map::new();
        put_name(&mut m, "target", &t.name);
        m.insert("target_id".into(), json!(t.id));
        m.insert("size_kb".into(), json!(kb));
        m.insert("gb".into(), json!(kb as f64 / 1e6));
        c.add(
            format!("{} ({:.3} GB) waits for a tape: tapeop assign", show(&t.name), kb as f64 / 1e6),
            Value::Object(m),
        );
        Ok(())
    })?;
    Ok(c)
}

/// With `copy_pools`: targets short of a confirmed copy in some pool.
fn short_of_copies(cat: &Catalog) -> Result<Condition> {
    let mut c =
        Condition::new("missing_copies", true, "target short of a confirmed copy", "targets short of a confirmed copy");
    cat.each_short_of_copies(|t| {
        let mut m = object(json!({ "target_id": t.target_id, "pools": t.pools }));
        put_name(&mut m, "target", &t.target);
        let lacking = cat.lacking_pools(t.target_id)?;
        c.add(
            format!("{} has no confirmed copy in {}", show(&t.target), copies_advice(&t.pools, &lacking)),
            Value::Object(m),
        );
        Ok(())
    })?;
    Ok(c)
}

/// What to do about the pools without a confirmed copy: those without any
/// copy need one written; in the others a copy is on its way (assigned or
/// recorded) and wants its archive or confirm.
fn copies_advice(unconfirmed: &[String], lacking: &[String]) -> String {
    let pools = |p: &[&String]| {
        let word = if p.len() == 1 { "pool" } else { "pools" };
        format!("{word} {}", p.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
    };
    let (none, pending): (Vec<&String>, Vec<&String>) = unconfirmed.iter().partition(|p| lacking.contains(p));
    match (none.is_empty(), pending.is_empty()) {
        (false, true) => format!("{}: assign, archive and confirm it on a tape of each", pools(&none)),
        (true, _) if pending.len() == 1 => {
            format!("{}: its copy there is assigned or recorded; archive and confirm it", pools(&pending))
        }
        (true, _) => {
            format!("{}: its copies there are assigned or recorded; archive and confirm them", pools(&pending))
        }
        (false, false) => format!(
            "{}: assign, archive and confirm it on a tape of each; and in {}: its copy there is assigned or \
             recorded, archive and confirm it",
            pools(&none),
            pools(&pending)
        ),
    }
}

/// Targets never scanned: an import that failed or was interrupted.
fn never_scanned(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("never_scanned", true, "target never scanned", "targets never scanned");
    cat.each_unscanned_target(|t| {
        let mut m = Map::new();
        put_name(&mut m, "target", &t.name);
        m.insert("target_id".into(), json!(t.id));
        c.add(
            format!(
                "{} was never scanned (its import failed or was interrupted): tapeop import LIST --retry, \
                 or tapeop remove_target TARGET if the path is wrong",
                show(&t.name)
            ),
            Value::Object(m),
        );
        Ok(())
    })?;
    Ok(c)
}

/// Open tapes marked full, and open tapes at or above `percent` of their
/// capacity (written bytes, or du size where the bytes are not known).
/// None without tapeop's side tables.
fn tape_fill(cat: &Catalog, percent: u32) -> Result<(Condition, Condition)> {
    let mut full =
        Condition::new("tape_full_open", true, "tape marked full but still open", "tapes marked full but still open");
    let mut nearly = Condition::new(
        "tape_nearly_full",
        true,
        format!("tape >= {percent}% full"),
        format!("tapes >= {percent}% full"),
    );
    cat.each_open_tape_fill(|t| {
        let (tape, capacity, written) = (t.tape, t.capacity_bytes, t.written_bytes);
        if t.full {
            let detail = format!(
                "tape {tape} is marked full but still open: tapeop close_tape {tape}, then open_tape and assign a new one"
            );
            full.add(detail, json!({ "tape": tape }));
        } else if let Some(cap) =
            capacity.filter(|&c| c > 0 && written as i128 * 100 >= i128::from(percent) * c as i128)
        {
            let pct = written as f64 * 100.0 / cap as f64;
            let m = json!({ "tape": tape, "capacity_bytes": cap, "written_bytes": written, "percent": (pct * 10.0).round() / 10.0 });
            nearly
                .add(format!("tape {tape} is {pct:.1}% full ({written} of {cap} bytes): have the next tape ready"), m);
        }
        Ok(())
    })?;
    Ok((full, nearly))
}

/// `PRAGMA integrity_check`: every line that is not `ok`.
fn integrity(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("integrity", true, "integrity error", "integrity errors");
    cat.each_integrity_error(|line| {
        c.add(format!("sqlite integrity_check: {line}"), json!({ "message": line }));
        Ok(())
    })?;
    Ok(c)
}

/// A status as shown (`?` when NULL) and as JSON (null when NULL).
fn status_text(status: &Option<BackupStatus>) -> (&str, Value) {
    let s = status.as_ref().map(BackupStatus::as_str);
    (s.unwrap_or("?"), json!(s))
}

/// Backups whose target row is missing.
fn missing_target(cat: &Catalog) -> Result<Condition> {
    let mut c =
        Condition::new("backup_missing_target", true, "backup of a missing target", "backups of missing targets");
    cat.each_backup_missing_target(|b| {
        let (id, target_id, tape, fnum) = (b.id, b.target_id, b.tape, b.file_number);
        let (status, status_json) = status_text(&b.status);
        let m =
            json!({ "backup_id": id, "target_id": target_id, "tape": tape, "file_number": fnum.as_stored(), "status": status_json });
        let detail = format!(
            "backup {id} (tape {} file {}, {status}) names target id {}, which is not in the catalogue",
            tape.as_deref().unwrap_or("?"),
            fnum.shown(),
            target_id.map_or("NULL".into(), |t| t.to_string())
        );
        c.add(detail, m);
        Ok(())
    })?;
    Ok(c)
}

/// Backups whose tape row is missing.
fn missing_tape(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("backup_missing_tape", true, "backup on a missing tape", "backups on missing tapes");
    cat.each_backup_missing_tape(|b| {
        let (id, tape_id, fnum) = (b.id, b.tape_id, b.file_number);
        let (status, status_json) = status_text(&b.status);
        let mut m = object(
            json!({ "backup_id": id, "tape_id": tape_id, "file_number": fnum.as_stored(), "status": status_json }),
        );
        put_name(&mut m, "target", &b.target);
        let detail = format!(
            "backup {id} ({}, file {}, {status}) names tape id {}, which is not in the catalogue",
            show(&b.target),
            fnum.shown(),
            tape_id.map_or("NULL".into(), |t| t.to_string())
        );
        c.add(detail, Value::Object(m));
        Ok(())
    })?;
    Ok(c)
}

/// Tape file numbers held by more than one written backup.
fn duplicate_numbers(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new(
        "duplicate_file_number",
        true,
        "tape file number written twice",
        "tape file numbers written twice",
    );
    cat.each_duplicate_file_number(|d| {
        let (tape, fnum, n) = (d.tape, d.file_number, d.backups);
        let m = json!({ "tape": tape, "tape_id": d.tape_id, "file_number": fnum.as_stored(), "backups": n });
        c.add(format!("tape {tape} file {} is claimed by {n} written backups (ids {})", fnum.shown(), d.ids), m);
        Ok(())
    })?;
    Ok(c)
}

/// Targets with more than one backup row (a target goes to one tape).
fn multiple_backups(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("multiple_backups", true, "target with several backups", "targets with several backups");
    let one = if cat.counts_pools() { "one tape per pool" } else { "one tape" };
    cat.each_multiple_backups(|t| {
        let n = t.backups;
        let mut m = object(json!({ "target_id": t.target_id, "backups": n }));
        put_name(&mut m, "target", &t.target);
        c.add(format!("{} has {n} backups (ids {}); a target goes to {one}", show(&t.target), t.ids), Value::Object(m));
        Ok(())
    })?;
    Ok(c)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

// ---- what the drives say ----

/// What the configured st drives say about themselves (nothing at all when
/// tape.conf names none: an emulator is not asked). Each drive is opened
/// without blocking, and not at all while a job holds its lock.
fn drive_health(config: &Config) -> Vec<Condition> {
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
