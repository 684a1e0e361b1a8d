//! The catalogue's conditions that `check` reports, one function per kind
//! (or per pair of kinds found together): each asks `catalog` for its
//! findings and words them as the detail line and the JSON fields.

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::{Condition, tape_file};
use crate::catalog::{BackupStatus, Catalog, legacy_file_number, show};
use crate::commands::reports::put_name;

// ---- the conditions ----

/// Recorded backups: unconfirmed for more than `days` days (a problem),
/// and recorded with no date (the old tool's; a notice).
pub(super) fn unconfirmed(cat: &Catalog, days: u32) -> Result<(Condition, Condition)> {
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
pub(super) fn failed_confirms(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn verify_failed(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn tape_errors_growing(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn verify_due(cat: &Catalog, days: u32) -> Result<Condition> {
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
pub(super) fn requeued(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn failed_archives(cat: &Catalog, live: Option<&str>) -> Result<(Condition, Condition)> {
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
pub(super) fn unassigned(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn short_of_copies(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn never_scanned(cat: &Catalog) -> Result<Condition> {
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
/// What to do before a tape fills.
fn next_tape_advice(library: bool) -> &'static str {
    if library {
        "make sure another open tape of its pool is in the library (tapeop inventory)"
    } else {
        "have the next tape ready"
    }
}

/// Full or nearly full open tapes; `library`: tape.conf names a changer,
/// whose unattended runs go on with the next tape of the pool by themselves.
pub(super) fn tape_fill(cat: &Catalog, percent: u32, library: bool) -> Result<(Condition, Condition)> {
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
            let detail = if library {
                format!(
                    "tape {tape} is marked full but still open: tapeop close_tape {tape} once its tape files are \
                     confirmed (the library's runs go on with the next open tape of its pool by themselves)"
                )
            } else {
                format!(
                    "tape {tape} is marked full but still open: tapeop close_tape {tape}, then open_tape and assign a new one"
                )
            };
            full.add(detail, json!({ "tape": tape }));
        } else if let Some(cap) =
            capacity.filter(|&c| c > 0 && written as i128 * 100 >= i128::from(percent) * c as i128)
        {
            let pct = written as f64 * 100.0 / cap as f64;
            let m = json!({ "tape": tape, "capacity_bytes": cap, "written_bytes": written, "percent": (pct * 10.0).round() / 10.0 });
            nearly
                .add(format!("tape {tape} is {pct:.1}% full ({written} of {cap} bytes): {}", next_tape_advice(library)), m);
        }
        Ok(())
    })?;
    Ok((full, nearly))
}

/// `PRAGMA integrity_check`: every line that is not `ok`.
pub(super) fn integrity(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn missing_target(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn missing_tape(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn duplicate_numbers(cat: &Catalog) -> Result<Condition> {
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
pub(super) fn multiple_backups(cat: &Catalog) -> Result<Condition> {
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

pub(super) fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
