//! `check`, for cron: looks through the catalogue (opened read-only) for
//! what needs a person — tape files recorded but left unconfirmed too long,
//! failed confirms, full or nearly full open tapes, targets waiting for a
//! tape or never scanned, and catalogue damage — and prints a one-line
//! summary fit for a mail subject, then one line per finding (or one JSON
//! document). Exit 0 when nothing is a problem, 1 otherwise.
//!
//! Tape files recorded by the old tool carry no date: they are listed as
//! "age unknown" notices, which never make the exit code non-zero.
//!
//! `log` (the history of archive, confirm and restore attempts) and `ack ID`
//! (which acknowledges an alarm that `check` reports) live here too.

use std::io::Write;

use anyhow::{Result, bail};
use rusqlite::{Params, Row};
use serde_json::{Map, Value, json};

use super::reports::{self, HistoryRow};
use super::{Context_, open};
use crate::catalog::{BackupStatus, Catalog, HistoryRef, Mode, name_bytes, show};
use crate::commands::reports::put_name;
use crate::exit_codes::ExitCode;

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
pub fn run(cat: &Catalog, opts: Options, live: Option<&str>, out: &mut dyn Write) -> Result<ExitCode> {
    let conditions = find_all(cat, opts, live)?;
    let (tapes, targets) = counts(cat)?;
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

/// Every condition, in the order they are reported.
fn find_all(cat: &Catalog, opts: Options, live: Option<&str>) -> Result<Vec<Condition>> {
    let side = cat.has_totals()?;
    let (overdue, unknown) = unconfirmed(cat, opts.days, side)?;
    let (full, nearly) = tape_fill(cat, opts.full_percent, side)?;
    let (archives, running) = failed_archives(cat, side, live)?;
    let mut all = vec![
        overdue,
        failed_confirms(cat, side)?,
        requeued(cat)?,
        archives,
        unassigned(cat)?,
        never_scanned(cat)?,
        full,
        nearly,
    ];
    all.extend([
        integrity(cat)?,
        missing_target(cat)?,
        missing_tape(cat)?,
        duplicate_numbers(cat)?,
        multiple_backups(cat)?,
    ]);
    all.push(unknown);
    all.push(running);
    Ok(all)
}

/// Number of tapes and of targets.
fn counts(cat: &Catalog) -> Result<(i64, i64)> {
    Ok(cat.conn().query_row("SELECT (SELECT COUNT(*) FROM tapes), (SELECT COUNT(*) FROM targets)", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?)
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

fn write_json(
    out: &mut dyn Write,
    opts: Options,
    conditions: &[Condition],
    summary: &str,
    tapes: i64,
    targets: i64,
) -> Result<()> {
    let count = |problem: bool| -> usize { conditions.iter().filter(|c| c.problem == problem).map(|c| c.count).sum() };
    let map: Map<String, Value> = conditions.iter().map(|c| (c.key.to_string(), c.to_json())).collect();
    let doc = json!({
        "ok": count(true) == 0, "summary": summary, "problems": count(true), "notices": count(false),
        "days": opts.days, "full_percent": opts.full_percent, "tapes": tapes, "targets": targets,
        "conditions": map,
    });
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

/// Stream the rows of a query into `each`.
fn each_row(cat: &Catalog, sql: &str, params: impl Params, mut each: impl FnMut(&Row<'_>) -> Result<()>) -> Result<()> {
    let mut stmt = cat.conn().prepare(sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(r) = rows.next()? {
        each(r)?;
    }
    Ok(())
}

/// A target name column (NULL when the target row is missing).
fn target_of(r: &Row<'_>, i: usize) -> Result<Vec<u8>> {
    Ok(name_bytes(r.get_ref(i)?))
}

/// `tape T file N (TARGET)` and its JSON fields.
fn tape_file(tape: &str, file_number: i64, target: &[u8]) -> (String, Map<String, Value>) {
    let mut m = Map::new();
    m.insert("tape".into(), json!(tape));
    m.insert("file_number".into(), json!(file_number));
    put_name(&mut m, "target", target);
    (format!("tape {tape} file {file_number} ({})", show(target)), m)
}

// ---- the conditions ----

/// Recorded backups: unconfirmed for more than `days` days (a problem),
/// and recorded with no date (the old tool's; a notice).
fn unconfirmed(cat: &Catalog, days: u32, side: bool) -> Result<(Condition, Condition)> {
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
    let (written, join) =
        if side { ("bi.written_at", "LEFT JOIN tapeop_backup_info bi ON bi.backup_id = b.id") } else { ("NULL", "") };
    let sql = format!(
        "SELECT b.id, COALESCE(tp.name, '?'), b.file_number, t.name, {written},
                julianday('now') - julianday(substr({written}, 1, 19))
         FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id LEFT JOIN targets t ON t.id = b.target_id {join}
         WHERE b.status = 'recorded' ORDER BY tp.name, b.file_number"
    );
    each_row(cat, &sql, [], |r| {
        let (what, mut m) =
            tape_file(&r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?.unwrap_or(-1), &target_of(r, 3)?);
        let (written_at, age): (Option<String>, Option<f64>) = (r.get(4)?, r.get(5)?);
        m.insert("backup_id".into(), json!(r.get::<_, i64>(0)?));
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
fn failed_confirms(cat: &Catalog, side: bool) -> Result<Condition> {
    let mut c = Condition::new("failed_confirm", true, "failed confirm", "failed confirms");
    let rows = failed_attempts(cat, side, "confirm", "tape, file_number", "'failed'", "'confirm'")?;
    for a in
        rows.into_iter().filter(|a| a.backup_status.as_deref().map(BackupStatus::parse) != Some(BackupStatus::Failed))
    {
        let (what, mut m) = tape_file(&a.tape, a.file_number, &a.target);
        let n = a.file_number;
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

/// Tape files given up by `requeue` (backup status `failed`) whose target
/// has no confirmed copy yet: where that target is now.
fn requeued(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("requeued", true, "requeued tape file", "requeued tape files");
    let sql = "SELECT COALESCE(tp.name, '?'), b.file_number, t.name, b.target_id,
                      (SELECT COALESCE(p.name, '?') || ' ' || n.status || CASE WHEN n.file_number >= 0
                              THEN ' at file ' || n.file_number ELSE '' END
                       FROM backups n LEFT JOIN tapes p ON p.id = n.tape_id
                       WHERE n.target_id = b.target_id AND COALESCE(n.status, '') != 'failed' ORDER BY n.id DESC LIMIT 1)
               FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id LEFT JOIN targets t ON t.id = b.target_id
               WHERE b.status = 'failed' AND NOT EXISTS
                 (SELECT 1 FROM backups o WHERE o.target_id = b.target_id AND o.status = 'confirmed')
               ORDER BY tp.name, b.file_number";
    each_row(cat, sql, [], |r| {
        let (what, mut m) =
            tape_file(&r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(-1), &target_of(r, 2)?);
        let now: Option<String> = r.get(4)?;
        let todo = match &now {
            None => "its target waits for a tape: tapeop assign, archive, confirm".to_string(),
            Some(n) => format!("its target is now on tape {n}: archive and confirm it"),
        };
        m.insert("target_id".into(), json!(r.get::<_, Option<i64>>(3)?));
        m.insert("now".into(), json!(now));
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
fn failed_archives(cat: &Catalog, side: bool, live: Option<&str>) -> Result<(Condition, Condition)> {
    let mut c = Condition::new("failed_archive", true, "failed archive", "failed archives");
    let mut running = Condition::new("archive_running", false, "archive running", "archives running");
    let rows = failed_attempts(cat, side, "archive", "tape", "'failed', 'running'", "'archive', 'confirm'")?;
    let newest = if side {
        cat.conn().query_row("SELECT MAX(id) FROM tapeop_history WHERE kind = 'archive'", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
    } else {
        None
    };
    let live_archive = live.filter(|h| h.contains("(archive)"));
    for a in rows {
        let (what, mut m) = tape_file(&a.tape, a.file_number, &a.target);
        m.insert("history_id".into(), json!(a.id));
        m.insert("started".into(), json!(a.started));
        m.insert("error".into(), json!(a.error));
        if let (Some(holder), true) = (live_archive, a.outcome == "running" && Some(a.id) == newest) {
            m.insert("holder".into(), json!(holder));
            let who = holder.split(" since ").next().unwrap_or(holder);
            running.add(format!("{what}: archive running since {} ({who})", a.started), Value::Object(m));
            continue;
        }
        let why = match a.outcome.as_str() {
            "running" => "it never finished (killed?)".to_string(),
            _ => a.error.as_deref().unwrap_or("no reason recorded").replace('\n', " | "),
        };
        let detail = format!(
            "{what}: the last archive ({}) failed: {why} (history id {}; tapeop ack {} once dealt with)",
            a.started, a.id, a.id
        );
        c.add(detail, Value::Object(m));
    }
    Ok((c, running))
}

/// One failed (or unfinished) attempt from the history.
struct Attempt {
    id: i64,
    tape: String,
    file_number: i64,
    target: Vec<u8>,
    started: String,
    outcome: String,
    error: Option<String>,
    /// Status of the backup at that tape file now, if there is one.
    backup_status: Option<String>,
}

/// The latest history row of `kind` per `group`, when its outcome is one
/// of `outcomes`, it is not acknowledged, and no later attempt of a kind in
/// `cleared_by` succeeded for the same target.
fn failed_attempts(
    cat: &Catalog,
    side: bool,
    kind: &str,
    group: &str,
    outcomes: &str,
    cleared_by: &str,
) -> Result<Vec<Attempt>> {
    let mut found = Vec::new();
    if !side {
        return Ok(found);
    }
    let sql = format!(
        "SELECT h.id, h.tape, h.file_number, h.target, h.started, h.outcome, h.error,
                (SELECT b.status FROM backups b JOIN tapes tp ON tp.id = b.tape_id WHERE tp.name = h.tape
                   AND b.file_number = h.file_number AND b.status IN ('recorded', 'confirmed', 'failed') LIMIT 1)
         FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY id DESC) AS latest
               FROM tapeop_history WHERE kind = ?1) h
         WHERE h.latest = 1 AND h.outcome IN ({outcomes})
           AND NOT EXISTS (SELECT 1 FROM tapeop_meta m WHERE m.key = 'ack_history_' || h.id)
           AND NOT EXISTS (SELECT 1 FROM tapeop_history l WHERE l.id > h.id AND l.target = h.target
                           AND l.kind IN ({cleared_by}) AND l.outcome = 'ok')
         ORDER BY h.tape, h.file_number"
    );
    each_row(cat, &sql, [kind], |r| {
        found.push(Attempt {
            id: r.get(0)?,
            tape: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            file_number: r.get::<_, Option<i64>>(2)?.unwrap_or(-1),
            target: target_of(r, 3)?,
            started: r.get(4)?,
            outcome: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            error: r.get(6)?,
            backup_status: r.get(7)?,
        });
        Ok(())
    })?;
    Ok(found)
}

/// Scanned targets with no backup: waiting for `assign`.
fn unassigned(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("unassigned", true, "unassigned target", "unassigned targets");
    let sql = "SELECT t.id, t.name, (SELECT COALESCE(SUM(f.size_kb), 0) FROM files f WHERE f.target_id = t.id)
               FROM targets t WHERE t.scanned = 1
               AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.target_id = t.id AND COALESCE(b.status, '') != 'failed')
               ORDER BY t.name";
    each_row(cat, sql, [], |r| {
        let name = target_of(r, 1)?;
        let kb: i64 = r.get(2)?;
        let mut m = Map::new();
        put_name(&mut m, "target", &name);
        m.insert("target_id".into(), json!(r.get::<_, i64>(0)?));
        m.insert("size_kb".into(), json!(kb));
        m.insert("gb".into(), json!(kb as f64 / 1e6));
        c.add(format!("{} ({:.3} GB) waits for a tape: tapeop assign", show(&name), kb as f64 / 1e6), Value::Object(m));
        Ok(())
    })?;
    Ok(c)
}

/// Targets never scanned: an import that failed or was interrupted.
fn never_scanned(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("never_scanned", true, "target never scanned", "targets never scanned");
    let sql = "SELECT id, name FROM targets WHERE COALESCE(scanned, 0) = 0 ORDER BY name";
    each_row(cat, sql, [], |r| {
        let name = target_of(r, 1)?;
        let mut m = Map::new();
        put_name(&mut m, "target", &name);
        m.insert("target_id".into(), json!(r.get::<_, i64>(0)?));
        c.add(
            format!(
                "{} was never scanned (its import failed or was interrupted): tapeop import LIST --retry, \
                 or tapeop remove_target TARGET if the path is wrong",
                show(&name)
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
fn tape_fill(cat: &Catalog, percent: u32, side: bool) -> Result<(Condition, Condition)> {
    let mut full =
        Condition::new("tape_full_open", true, "tape marked full but still open", "tapes marked full but still open");
    let mut nearly = Condition::new(
        "tape_nearly_full",
        true,
        format!("tape >= {percent}% full"),
        format!("tapes >= {percent}% full"),
    );
    if !side {
        return Ok((full, nearly));
    }
    let sql = format!(
        "SELECT tp.name, ti.full, ti.capacity_bytes,
                 (SELECT COALESCE(SUM(COALESCE(bi.bytes, tt.size_kb * 1024)), 0) FROM backups b
                  LEFT JOIN tapeop_backup_info bi ON bi.backup_id = b.id
                  LEFT JOIN {} tt ON tt.target_id = b.target_id
                  WHERE b.tape_id = tp.id AND b.status IN ('recorded', 'confirmed'))
               FROM tapes tp JOIN tapeop_tape_info ti ON ti.tape_id = tp.id
               WHERE tp.status = 'open' ORDER BY tp.name",
        cat.totals_table()?
    );
    each_row(cat, &sql, [], |r| {
        let (tape, is_full, capacity, written): (String, Option<i64>, Option<i64>, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        if is_full.unwrap_or(0) != 0 {
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
    each_row(cat, "PRAGMA integrity_check", [], |r| {
        let line: String = r.get(0)?;
        if line != "ok" {
            c.add(format!("sqlite integrity_check: {line}"), json!({ "message": line }));
        }
        Ok(())
    })?;
    Ok(c)
}

/// Backups whose target row is missing.
fn missing_target(cat: &Catalog) -> Result<Condition> {
    let mut c =
        Condition::new("backup_missing_target", true, "backup of a missing target", "backups of missing targets");
    let sql = "SELECT b.id, b.target_id, tp.name, b.file_number, b.status FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id
               WHERE NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = b.target_id) ORDER BY b.id";
    each_row(cat, sql, [], |r| {
        let (id, target_id, tape, fnum, status): (i64, Option<i64>, Option<String>, Option<i64>, Option<String>) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let m = json!({ "backup_id": id, "target_id": target_id, "tape": tape, "file_number": fnum, "status": status });
        let detail = format!(
            "backup {id} (tape {} file {}, {}) names target id {}, which is not in the catalogue",
            tape.as_deref().unwrap_or("?"),
            fnum.unwrap_or(-1),
            status.as_deref().unwrap_or("?"),
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
    let sql = "SELECT b.id, b.tape_id, t.name, b.file_number, b.status FROM backups b LEFT JOIN targets t ON t.id = b.target_id
               WHERE NOT EXISTS (SELECT 1 FROM tapes tp WHERE tp.id = b.tape_id) ORDER BY b.id";
    each_row(cat, sql, [], |r| {
        let (id, tape_id, fnum, status): (i64, Option<i64>, Option<i64>, Option<String>) =
            (r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?);
        let target = target_of(r, 2)?;
        let mut m = object(json!({ "backup_id": id, "tape_id": tape_id, "file_number": fnum, "status": status }));
        put_name(&mut m, "target", &target);
        let detail = format!(
            "backup {id} ({}, file {}, {}) names tape id {}, which is not in the catalogue",
            show(&target),
            fnum.unwrap_or(-1),
            status.as_deref().unwrap_or("?"),
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
    let sql = "SELECT b.tape_id, COALESCE(tp.name, '?'), b.file_number, COUNT(*), group_concat(b.id, ',')
               FROM backups b LEFT JOIN tapes tp ON tp.id = b.tape_id
               WHERE b.status IN ('recorded', 'confirmed')
               GROUP BY b.tape_id, b.file_number HAVING COUNT(*) > 1 ORDER BY tp.name, b.file_number";
    each_row(cat, sql, [], |r| {
        let (tape_id, tape, fnum, n, ids): (Option<i64>, String, Option<i64>, i64, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let m = json!({ "tape": tape, "tape_id": tape_id, "file_number": fnum, "backups": n });
        c.add(format!("tape {tape} file {} is claimed by {n} written backups (ids {ids})", fnum.unwrap_or(-1)), m);
        Ok(())
    })?;
    Ok(c)
}

/// Targets with more than one backup row (a target goes to one tape).
fn multiple_backups(cat: &Catalog) -> Result<Condition> {
    let mut c = Condition::new("multiple_backups", true, "target with several backups", "targets with several backups");
    let sql = "SELECT b.target_id, t.name, COUNT(*), group_concat(b.id, ',') FROM backups b LEFT JOIN targets t ON t.id = b.target_id
               WHERE COALESCE(b.status, '') != 'failed' GROUP BY b.target_id HAVING COUNT(*) > 1 ORDER BY t.name";
    each_row(cat, sql, [], |r| {
        let (target_id, n, ids): (Option<i64>, i64, String) = (r.get(0)?, r.get(2)?, r.get(3)?);
        let target = target_of(r, 1)?;
        let mut m = object(json!({ "target_id": target_id, "backups": n }));
        put_name(&mut m, "target", &target);
        c.add(format!("{} has {n} backups (ids {ids}); a target goes to one tape", show(&target)), Value::Object(m));
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
    let Some(HistoryRef { kind, tape, file_number: n, target, outcome }) = cat.history_row(id)? else {
        bail!("there is no history id {id} in the catalogue: tapeop check and tapeop log show the ids");
    };
    if !matches!(kind.as_str(), "archive" | "confirm") || outcome == "ok" {
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
    println!("Acknowledged history id {id}: the {kind} of tape {tape} file {n} ({target}), {outcome}.");
    Ok(())
}
