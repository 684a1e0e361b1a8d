//! The operator reports: `status`, `tapes`, `unassigned`, `tape_detail`,
//! `where_is`, `backup_info` and `dump_manifest` (and the history rows and
//! table writer that `log`, in `check`, prints with). This module owns
//! their layout (the old tool's columns and figures, GB = size_kb / 1e6),
//! their `--json` form (one JSON document per invocation, field names
//! documented in the README), and streams rows from the catalogue straight
//! to the output, so reports stay instant on catalogues of tens of millions
//! of files.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

pub use crate::catalog::HistoryRow;
use crate::catalog::{
    Backup, BackupExtra, BackupStatus, Catalog, FileRow, Tally, Tape, TapeMarks, TapeStatus, WhereIsHit,
    legacy_file_number, show, tape_name_for_path,
};
use crate::manifest::manifest_lines;
use crate::tape_file::TapeFile;
use crate::target_path::join_path;

/// The backup statuses `status` reports, in its order.
const STATUSES: [BackupStatus; 3] = [BackupStatus::Confirmed, BackupStatus::Recorded, BackupStatus::Assigned];

fn gb(size_kb: i64) -> f64 {
    size_kb as f64 / 1e6
}

/// `status [TAPE]`: per-status counts and sizes, unassigned count, layout.
pub fn status(cat: &Catalog, tape: &Tape, json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        return status_json(cat, tape, out);
    }
    writeln!(out, "\nWork on \"{}\"", tape.name)?;
    let pool = cat.tape_pool(tape)?;
    if cat.counts_pools() || pool != crate::catalog::DEFAULT_POOL {
        writeln!(out, "   pool: {pool}")?;
    }
    let mut total = 0;
    for status in &STATUSES {
        let t = cat.tape_tally(tape.id, status)?;
        total += t.size_kb;
        writeln!(out, "   type {status:<20}: {:6} ({:9.3} GB)", t.count, gb(t.size_kb))?;
    }
    writeln!(out, "   total usage: {:.3} GB", gb(total))?;
    if display_status(cat, tape)? == TapeStatus::Full {
        writeln!(out, "   the tape is FULL: close_tape it, then open_tape the next one")?;
    }
    writeln!(out, "\nThere are {} unassigned targets.\n", cat.unassigned_count()?)?;
    per_pool_lines(cat, out)?;
    writeln!(out, "Current layout of work on tape \"{}\":", tape.name)?;
    let mut err = Ok(());
    cat.layout(tape.id, |a, b, s| {
        if err.is_ok() {
            err = writeln!(out, "{a:8} - {b:5} : {s}");
        }
    })?;
    err?;
    writeln!(out)?;
    failed_confirms(cat, tape, out)
}

/// With `copy_pools`: one line per pool, the targets still lacking a copy there.
fn per_pool_lines(cat: &Catalog, out: &mut dyn Write) -> Result<()> {
    if !cat.counts_pools() {
        return Ok(());
    }
    for pool in cat.copy_pools() {
        let t = cat.unassigned_tally_in(&pool)?;
        writeln!(out, "   pool {pool}: {} targets lack a copy ({:.3} GB)", t.count, gb(t.size_kb))?;
    }
    writeln!(out)?;
    Ok(())
}

/// Under `status`: the recorded tape files whose last confirm failed.
fn failed_confirms(cat: &Catalog, tape: &Tape, out: &mut dyn Write) -> Result<()> {
    for b in cat.backups_with_status(tape.id, &BackupStatus::Recorded)? {
        let Some(n) = b.file_number else { continue };
        if let Some(f) = cat.confirm_failure(&tape.name, n)? {
            writeln!(
                out,
                "Tape file {n} ({}) FAILED its last confirm ({}): tapeop confirm {n} retries it, tapeop requeue {n} archives its target again.",
                show(&b.target),
                f.started
            )?;
        }
    }
    Ok(())
}

/// `tapes [-v]`: one row per tape.
pub fn tapes(cat: &Catalog, verbose: bool, json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        return tapes_json(cat, out);
    }
    let un_count = cat.unassigned_count()?;
    writeln!(out, "\nThere are {} unassigned targets.  (Use \"unassigned\" to see size.)\n", un_count)?;
    writeln!(out, "All tapes in database:")?;
    let tapes = cat.tapes()?;
    let nw = tapes.iter().map(|t| t.name.len()).max().unwrap_or(0).max(4);
    let sw = tapes.iter().map(|t| t.serial.len() + 1).max().unwrap_or(0).max(12);
    let mut header = format!("{:<nw$} {:<4} {:<sw$} {:>4} {:<10}", "Name", "ON", "SerialNo", "ID", "Status");
    let pools = pool_column(cat, &tapes)?;
    if let Some((_, pw)) = &pools {
        header.push_str(&format!(" {:<pw$}", "Pool"));
    }
    if verbose {
        header.push_str(&format!(" {:>10}", "WroteGB"));
    }
    writeln!(out, "{header}\n{}", "-".repeat(header.len()))?;
    for t in &tapes {
        let on = if t.online { "*" } else { "." };
        let status = display_status(cat, t)?;
        write!(out, "{:<nw$} {on:<4} {:<sw$} {:>4} {status:<10}", t.name, t.serial, t.id)?;
        if let Some((names, pw)) = &pools {
            write!(out, " {:<pw$}", names[&t.id])?;
        }
        if verbose {
            write!(out, " {:10.3}", gb(cat.tape_written_kb(t.id)?))?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    Ok(())
}

/// The Pool column of `tapes` (each tape's pool and the column width):
/// only when some tape is not in pool `default`, so older outputs stay as they were.
fn pool_column(cat: &Catalog, tapes: &[Tape]) -> Result<Option<(std::collections::HashMap<i64, String>, usize)>> {
    if !cat.has_pooled_tapes()? {
        return Ok(None);
    }
    let mut names = std::collections::HashMap::new();
    for t in tapes {
        names.insert(t.id, cat.tape_pool(t)?);
    }
    let width = names.values().map(String::len).max().unwrap_or(0).max(7);
    Ok(Some((names, width)))
}

/// A tape's status as shown: `full` is tapeop's mark on an open tape.
pub fn display_status(cat: &Catalog, tape: &Tape) -> Result<TapeStatus> {
    if tape.status == TapeStatus::Open && cat.marked_full(tape.id)? {
        return Ok(TapeStatus::Full);
    }
    Ok(tape.status.clone())
}

/// `unassigned`: count and size of the targets waiting for a tape.
pub fn unassigned(cat: &Catalog, json: bool, out: &mut dyn Write) -> Result<()> {
    let un = cat.unassigned_tally()?;
    if json {
        return write_json(out, &unassigned_json(cat)?);
    }
    writeln!(out, "There are {} unassigned targets ({:.3} GB).\n", un.count, gb(un.size_kb))?;
    per_pool_lines(cat, out)
}

/// `tape_detail [TAPE] [FILE_NUMBER] [-v]`: the written backups of a tape,
/// with one line per file when verbose.
pub fn tape_detail(
    cat: &Catalog,
    tape: &Tape,
    file_number: Option<TapeFile>,
    verbose: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if json {
        return tape_detail_json(cat, tape, file_number, verbose, out);
    }
    writeln!(out, "# Tape name=\"{}\" serial=\"{}\"", tape.name, tape.serial)?;
    writeln!(out, "#FNum {:<12} {:>10} Target_name", "Status", "Size_GB")?;
    for b in cat.written_backups(tape.id, file_number)? {
        let n = legacy_file_number(b.file_number);
        writeln!(out, "{n:5} {:<12} {:10.3} {}", b.status, gb(b.size_kb), show(&b.target))?;
        if verbose {
            cat.each_file(b.target_id, |f| {
                writeln!(out, "file {} {:10.6} {}", f.md5, gb(f.size_kb), show(&f.name))?;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// `where_is NAME`: every backup that holds a file of that relative name.
pub fn where_is(cat: &Catalog, name: &[u8], json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        return where_is_json(cat, name, out);
    }
    let pools = cat.counts_pools();
    if pools {
        writeln!(out, "#tape_name pool  Fnum status     md5sum                           filename")?;
    } else {
        writeln!(out, "#tape_name  Fnum status     md5sum                           filename")?;
    }
    let mut hints = Vec::new();
    cat.each_where_is(name, |hit| {
        let path = join_path(&hit.target, &hit.name);
        let n = legacy_file_number(hit.file_number);
        if pools {
            write!(out, "{} {}", hit.tape, cat.pool_of_tape_named(&hit.tape)?)?;
        } else {
            write!(out, "{}", hit.tape)?;
        }
        writeln!(out, " {n:5} {:<10} {} {}", hit.status, hit.md5, show(&path))?;
        if hit.status.is_on_tape() && hints.len() < 100 {
            hints.push(restore_hint(&hit));
        }
        Ok(())
    })?;
    for h in hints {
        writeln!(out, "{h}")?;
    }
    Ok(())
}

/// The command that restores a hit, as a comment line. Both words are
/// quoted for bash so that pasting the command names the exact bytes, and
/// the name is made literal for `restore` (which treats `*`, `?` and `[` as
/// a glob). A name starting with `-` comes after `--`.
fn restore_hint(hit: &WhereIsHit) -> String {
    let target = bash_word(&hit.target);
    let name = bash_word(&literal_for_restore(&hit.name));
    let command = if hit.name.starts_with(b"-") {
        format!("tapeop restore --to DIR -- {target} {name}")
    } else {
        format!("tapeop restore {target} {name} --to DIR")
    };
    format!("# restore: {command}   (tape {} file {})", hit.tape, legacy_file_number(hit.file_number))
}

/// `name` as a `restore` argument that matches exactly that name: when it
/// holds a glob character, `\`, `*`, `?` and `[` are escaped with `\`.
pub fn literal_for_restore(name: &[u8]) -> Vec<u8> {
    if !name.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
        return name.to_vec();
    }
    let mut out = Vec::with_capacity(name.len() + 4);
    for &c in name {
        if matches!(c, b'\\' | b'*' | b'?' | b'[') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

/// One bash word that stands for exactly `bytes`: `'...'` (with `'\''` for a
/// quote) when the bytes are UTF-8 without control characters, else
/// `$'...'` with `\xHH` for every byte that is not printable ASCII.
pub fn bash_word(bytes: &[u8]) -> String {
    let plain = std::str::from_utf8(bytes).is_ok_and(|s| !s.chars().any(char::is_control));
    if plain {
        return format!("'{}'", show(bytes).replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    for &c in bytes {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(char::from(c)),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('\'');
    out
}

/// `backup_info [FILE_NUMBER]`: what the catalogue knows of one tape file
/// of the online tape (or of every backup of it).
/// Each tape file also lists its history rows (archive and confirm attempts).
pub fn backup_info(cat: &Catalog, tape: &Tape, backups: &[Backup], json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        return backup_info_json(cat, tape, backups, out);
    }
    writeln!(
        out,
        "Tape \"{}\" (serial \"{}\", id {}, {})",
        tape.name,
        tape.serial,
        tape.id,
        display_status(cat, tape)?
    )?;
    for b in backups {
        let target = cat.target(b.target_id)?;
        writeln!(out, "\nFile number:   {}", legacy_file_number(b.file_number))?;
        writeln!(out, "Target:        {}", show(&target.name))?;
        writeln!(out, "Status:        {}", b.status)?;
        if b.status == BackupStatus::Failed {
            writeln!(out, "Requeued:      {}", requeued_to(cat, b.target_id, tape)?)?;
        }
        if cat.counts_pools() {
            writeln!(out, "Copies:        {}", copies_line(cat, b.target_id)?)?;
        }
        writeln!(out, "Files:         {}", b.file_count)?;
        writeln!(out, "Size:          {:.3} GB ({} KiB by du)", gb(b.size_kb), b.size_kb)?;
        if let Some(bytes) = cat.target_exact_bytes(b.target_id)? {
            writeln!(out, "Bytes:         {bytes}")?;
        }
        let parent = match target.parent_id {
            Some(p) => show(&cat.target(p)?.name),
            None => "(none)".into(),
        };
        writeln!(out, "Parent:        {parent}")?;
        for child in cat.child_targets(b.target_id)? {
            writeln!(out, "Child target:  {}", show(&child))?;
        }
        write_backup_extra(cat, b.id, out)?;
        for h in history_of(cat, tape, b)? {
            writeln!(out, "History:       {}", h.line())?;
        }
    }
    Ok(())
}

/// With `copy_pools`: every copy of a target, as `T1 (pool p) file 1 confirmed; ...`.
fn copies_line(cat: &Catalog, target_id: i64) -> Result<String> {
    let copies = cat.target_copies(target_id)?;
    let each: Vec<String> = copies
        .iter()
        .map(|c| match c.file_number {
            Some(n) => format!("{} (pool {}) file {n} {}", c.tape, c.pool, c.status),
            None => format!("{} (pool {}) {}", c.tape, c.pool, c.status),
        })
        .collect();
    Ok(if each.is_empty() { "none".to_string() } else { each.join("; ") })
}

/// `backup_info [N]`: the tape files of the online tape (or file number `N`
/// only) with their history.
pub fn backup_info_at(cat: &Catalog, file_number: Option<TapeFile>, json: bool, out: &mut dyn Write) -> Result<()> {
    let tape = cat.tape_or_online(None)?;
    let backups = match file_number {
        Some(n) => vec![cat.backup_at(tape.id, n)?.with_context(|| {
            format!("tape \"{}\" has no backup at file number {n} (tapeop tape_detail lists them)", tape.name)
        })?],
        None => cat.written_backups(tape.id, None)?,
    };
    backup_info(cat, &tape, &backups, json, out)
}

/// The history rows of a backup's tape file (none before it is written).
fn history_of(cat: &Catalog, tape: &Tape, b: &Backup) -> Result<Vec<HistoryRow>> {
    match b.file_number {
        Some(n) => cat.history_of_tape_file(&tape.name, n),
        None => Ok(Vec::new()),
    }
}

/// Where the target of a failed (requeued) tape file is now.
fn requeued_to(cat: &Catalog, target_id: i64, tape: &Tape) -> Result<String> {
    Ok(match cat.current_copy(target_id, tape)? {
        None => "this copy failed confirm; its target waits to be assigned to a tape".to_string(),
        Some((tape, Some(n), status)) if status != BackupStatus::Assigned => {
            format!("this copy failed confirm; its target is now tape {tape} file {n}, {status}")
        }
        Some((tape, _, status)) => format!("this copy failed confirm; its target is {status} to tape {tape}"),
    })
}

fn write_backup_extra(cat: &Catalog, backup_id: i64, out: &mut dyn Write) -> Result<()> {
    // As before the move: a record that cannot be read is left out.
    if let Ok(Some(BackupExtra { bytes, block_size: block, written_at: written, confirmed_at: confirmed })) =
        cat.backup_extra(backup_id)
    {
        if let Some(b) = bytes {
            writeln!(out, "Tape bytes:    {b} (block size {})", block.unwrap_or(0))?;
        }
        if let Some(w) = written {
            writeln!(out, "Written:       {w}")?;
        }
        if let Some(c) = confirmed {
            writeln!(out, "Confirmed:     {c}")?;
        }
    }
    Ok(())
}

/// `dump_manifest [DIR]`: one `md5sum -c` manifest per written tape file,
/// named `TAPE-fileNNNNN.md5`, plus `INDEX.txt`. Returns how many manifests.
pub fn dump_manifest(cat: &Catalog, dir: &Path) -> Result<usize> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create manifest directory {}", dir.display()))?;
    let index_path = dir.join("INDEX.txt");
    let mut index = std::io::BufWriter::new(
        fs::File::create(&index_path).with_context(|| format!("cannot write {}", index_path.display()))?,
    );
    writeln!(index, "#tape file_number status manifest target")?;
    let mut count = 0;
    for tape in cat.tapes()? {
        for b in cat.written_backups(tape.id, None)? {
            let n = legacy_file_number(b.file_number);
            if b.status == BackupStatus::Failed {
                // Its target's files are those of the requeued copy, not of this one.
                writeln!(index, "{} {n} {} - {}", tape.name, b.status, show(&b.target))?;
                continue;
            }
            let file_name = format!("{}-file{n:05}.md5", tape_name_for_path(&tape.name));
            write_manifest(cat, &b, &dir.join(&file_name))?;
            writeln!(index, "{} {n} {} {} {}", tape.name, b.status, file_name, show(&b.target))?;
            count += 1;
        }
    }
    index.flush()?;
    Ok(count)
}

fn write_manifest(cat: &Catalog, b: &Backup, path: &Path) -> Result<()> {
    let mut out =
        std::io::BufWriter::new(fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?);
    manifest_lines(cat, b, &mut out)?;
    out.flush()?;
    Ok(())
}

// ---- history (`log`, in `check`, and `backup_info`) ----

/// How reports show a history row.
impl HistoryRow {
    /// MB/s (1 MB = 1e6 bytes) when bytes and a non-zero duration are
    /// known: the milliseconds of tapeop's own clock, else the whole
    /// seconds between the start and end times (rows of older versions).
    pub fn rate_mb_s(&self) -> Option<f64> {
        let secs = match (self.elapsed_ms, self.seconds) {
            (Some(ms), _) if ms > 0 => ms as f64 / 1000.0,
            (_, Some(s)) if s > 0 => s as f64,
            _ => return None,
        };
        self.bytes.map(|b| b as f64 / 1e6 / secs)
    }

    /// The drive's own rate in MB/s: its bytes over its I/O time, when
    /// the drive's figures were recorded (st statistics).
    pub fn drive_mb_per_s(&self) -> Option<f64> {
        match (self.drive_bytes, self.drive_io_ns) {
            (Some(b), Some(ns)) if ns > 0 => Some(b as f64 * 1000.0 / ns as f64),
            _ => None,
        }
    }

    /// What the drive said, for text: ` (drive 180.30 MB/s, 2 recovered
    /// errors)`, or nothing when it said nothing.
    fn drive_note(&self, unit: &str) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.drive_mb_per_s() {
            parts.push(format!("drive {r:.2}{unit}"));
        }
        if let Some(e) = self.drive_errors.filter(|&e| e > 0) {
            parts.push(format!("{e} recovered {}", if e == 1 { "error" } else { "errors" }));
        }
        if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
    }

    /// One line for `backup_info`: start, kind, outcome, bytes, rate, error.
    fn line(&self) -> String {
        let mut l = format!("{} {} {}", self.started, self.kind, self.outcome.as_deref().unwrap_or("-"));
        if let Some(b) = self.bytes {
            l.push_str(&format!(", {b} bytes"));
        }
        if let Some(r) = self.rate_mb_s() {
            l.push_str(&format!(", {r:.2} MB/s"));
        }
        l.push_str(&self.drive_note(" MB/s"));
        if let Some(e) = &self.error {
            l.push_str(&format!(": {}", one_line(e)));
        }
        l
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id, "kind": self.kind, "tape": self.tape, "file_number": self.file_number.as_stored(),
            "target": self.target, "started": self.started, "ended": self.ended, "bytes": self.bytes,
            "seconds": self.seconds, "elapsed_ms": self.elapsed_ms, "rate_mb_s": self.rate_mb_s(), "outcome": self.outcome, "error": self.error,
            "drive_bytes": self.drive_bytes, "drive_io_ns": self.drive_io_ns,
            "drive_mb_per_s": self.drive_mb_per_s(), "drive_errors": self.drive_errors,
        })
    }

    pub(crate) fn cells(&self) -> Vec<String> {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        vec![
            self.started.clone(),
            opt(self.ended.clone()),
            self.kind.clone(),
            opt(self.tape.clone()),
            opt(self.file_number.as_stored().map(|n| n.to_string())),
            opt(self.target.clone()),
            opt(self.bytes.map(|b| b.to_string())),
            self.rate_cell(),
            opt(self.outcome.clone()),
            self.error.as_deref().map(one_line).unwrap_or_default(),
        ]
    }
}

impl HistoryRow {
    /// The `log` MB/s cell: the wall-clock rate, then the drive's own.
    fn rate_cell(&self) -> String {
        let wall = self.rate_mb_s().map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
        format!("{wall}{}", self.drive_note(""))
    }
}

/// Multi-line text (e.g. a remote's stderr) on one line.
fn one_line(text: &str) -> String {
    text.trim().replace(['\n', '\r'], " | ")
}

/// An aligned text table: columns padded to their widest cell (the last
/// one is not padded), numbers right-aligned, no trailing blanks.
pub(crate) fn write_table(out: &mut dyn Write, header: &[&str], right: &[bool], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            let last = i + 1 == row.len();
            match (right[i], last) {
                (true, _) => line.push_str(&format!("{pad}{cell}")),
                (false, true) => line.push_str(cell),
                (false, false) => line.push_str(&format!("{cell}{pad}")),
            }
            if !last {
                line.push_str("  ");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

// ---- JSON ----

/// Write one JSON document and a newline.
pub(crate) fn write_json(out: &mut dyn Write, v: &Value) -> Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Put a name under `key` as a string. When the bytes are not UTF-8 the
/// string is lossy (U+FFFD) and `KEY_hex` holds the exact bytes in hex.
pub fn put_name(map: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    map.insert(key.to_string(), Value::String(show(bytes)));
    if std::str::from_utf8(bytes).is_err() {
        map.insert(format!("{key}_hex"), Value::String(hex(bytes)));
    }
}

/// A JSON object from `json!`, for adding fields to.
fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `{"count", "size_kb", "gb"}`.
fn tally_json(t: Tally) -> Value {
    json!({ "count": t.count, "size_kb": t.size_kb, "gb": gb(t.size_kb) })
}

/// A tape as JSON: id, name, serial (null when blank), status (`open`,
/// `closed`, `garbage`), full (tapeop's mark), online, capacity_bytes.
pub(crate) fn tape_json(cat: &Catalog, tape: &Tape) -> Result<Map<String, Value>> {
    let TapeMarks { full, capacity_bytes: capacity } = cat.tape_marks(tape.id)?;
    let serial = Some(tape.serial.as_str()).filter(|s| !s.is_empty());
    Ok(object(json!({
        "id": tape.id, "name": tape.name, "serial": serial, "status": tape.status.as_str(),
        "full": full, "online": tape.online, "capacity_bytes": capacity,
    })))
}

fn status_json(cat: &Catalog, tape: &Tape, out: &mut dyn Write) -> Result<()> {
    let mut doc = Map::new();
    doc.insert("tape".into(), Value::Object(tape_json(cat, tape)?));
    let mut total = Tally::default();
    for status in &STATUSES {
        let t = cat.tape_tally(tape.id, status)?;
        total.count += t.count;
        total.size_kb += t.size_kb;
        doc.insert(status.as_str().into(), tally_json(t));
    }
    doc.insert("total".into(), tally_json(total));
    doc.insert("unassigned".into(), unassigned_json(cat)?);
    let pool = cat.tape_pool(tape)?;
    if cat.counts_pools() || pool != crate::catalog::DEFAULT_POOL {
        doc.insert("pool".into(), Value::String(pool));
    }
    let mut layout = Vec::new();
    cat.layout(tape.id, |a, b, s| layout.push(json!({ "first": a.get(), "last": b.get(), "status": s })))?;
    doc.insert("layout".into(), Value::Array(layout));
    write_json(out, &Value::Object(doc))
}

/// The unassigned tally as JSON; with `copy_pools`, also `"pools"`: the
/// tally of the targets lacking a copy in each pool.
fn unassigned_json(cat: &Catalog) -> Result<Value> {
    let mut v = tally_json(cat.unassigned_tally()?);
    if cat.counts_pools() {
        let mut pools = Map::new();
        for pool in cat.copy_pools() {
            pools.insert(pool.clone(), tally_json(cat.unassigned_tally_in(&pool)?));
        }
        if let Value::Object(m) = &mut v {
            m.insert("pools".into(), Value::Object(pools));
        }
    }
    Ok(v)
}

fn tapes_json(cat: &Catalog, out: &mut dyn Write) -> Result<()> {
    let mut tapes = Vec::new();
    for t in cat.tapes()? {
        let mut m = tape_json(cat, &t)?;
        m.insert("pool".into(), Value::String(cat.tape_pool(&t)?));
        let kb = cat.tape_written_kb(t.id)?;
        m.insert("written".into(), json!({ "size_kb": kb, "gb": gb(kb) }));
        tapes.push(Value::Object(m));
    }
    write_json(out, &json!({ "unassigned": unassigned_json(cat)?, "tapes": tapes }))
}

/// Writes a JSON array one item at a time, so large reports stream.
struct JsonArray {
    first: bool,
}

impl JsonArray {
    /// Write `prefix` (e.g. `,"files":`) and the opening bracket.
    fn open(out: &mut dyn Write, prefix: &str) -> Result<JsonArray> {
        write!(out, "{prefix}[")?;
        Ok(JsonArray { first: true })
    }

    /// Write the comma (when needed); the caller then writes one item.
    fn next(&mut self, out: &mut dyn Write) -> Result<()> {
        if !self.first {
            out.write_all(b",\n")?;
        }
        self.first = false;
        Ok(())
    }

    /// Write one whole item.
    fn item(&mut self, out: &mut dyn Write, v: &Value) -> Result<()> {
        self.next(out)?;
        serde_json::to_writer(&mut *out, v)?;
        Ok(())
    }

    /// Write the closing bracket.
    fn close(self, out: &mut dyn Write) -> Result<()> {
        out.write_all(b"]")?;
        Ok(())
    }
}

/// Write an object's fields without its closing brace, so that a streamed
/// array can follow (`,"key":[...]}` is written by the caller).
fn open_object(out: &mut dyn Write, map: &Map<String, Value>) -> Result<()> {
    out.write_all(b"{")?;
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, k)?;
        out.write_all(b":")?;
        serde_json::to_writer(&mut *out, v)?;
    }
    Ok(())
}

/// A written or assigned backup as JSON (without its files).
fn backup_json(b: &Backup) -> Map<String, Value> {
    let mut m = object(json!({
        "backup_id": b.id, "file_number": legacy_file_number(b.file_number), "status": b.status.as_str(), "target_id": b.target_id,
        "file_count": b.file_count, "size_kb": b.size_kb, "gb": gb(b.size_kb),
    }));
    put_name(&mut m, "target", &b.target);
    m
}

/// What a catalogued file is, from its md5 column.
fn file_type(md5: &str) -> &'static str {
    match md5 {
        "symlink" => "symlink",
        "directory" => "directory",
        _ => "file",
    }
}

/// One catalogued file as JSON.
fn file_json(f: &FileRow) -> Value {
    let mut m = object(json!({
        "md5": f.md5, "type": file_type(&f.md5), "size_kb": f.size_kb, "gb": gb(f.size_kb),
        "size_bytes": f.size_bytes, "link_target": Value::Null,
    }));
    put_name(&mut m, "name", &f.name);
    if let Some(l) = &f.link_target {
        put_name(&mut m, "link_target", l);
    }
    Value::Object(m)
}

fn tape_detail_json(
    cat: &Catalog,
    tape: &Tape,
    file_number: Option<TapeFile>,
    verbose: bool,
    out: &mut dyn Write,
) -> Result<()> {
    out.write_all(b"{\"tape\":")?;
    serde_json::to_writer(&mut *out, &Value::Object(tape_json(cat, tape)?))?;
    let mut tape_files = JsonArray::open(out, ",\"tape_files\":")?;
    for b in cat.written_backups(tape.id, file_number)? {
        tape_files.next(out)?;
        open_object(out, &backup_json(&b))?;
        if verbose {
            let mut files = JsonArray::open(out, ",\"files\":")?;
            cat.each_file(b.target_id, |f| files.item(out, &file_json(&f)))?;
            files.close(out)?;
        }
        out.write_all(b"}")?;
    }
    tape_files.close(out)?;
    out.write_all(b"}\n")?;
    Ok(())
}

fn where_is_json(cat: &Catalog, name: &[u8], out: &mut dyn Write) -> Result<()> {
    let mut query = Map::new();
    put_name(&mut query, "name", name);
    open_object(out, &query)?;
    let mut hits = JsonArray::open(out, ",\"hits\":")?;
    cat.each_where_is(name, |hit| {
        let mut m = object(json!({
            "tape": hit.tape,
            "file_number": legacy_file_number(hit.file_number),
            "status": hit.status.as_str(),
            "md5": hit.md5,
        }));
        if cat.counts_pools() {
            m.insert("pool".into(), Value::String(cat.pool_of_tape_named(&hit.tape)?));
        }
        let (target, rel) = (hit.target, hit.name);
        put_name(&mut m, "target", &target);
        put_name(&mut m, "name", &rel);
        put_name(&mut m, "path", &join_path(&target, &rel));
        hits.item(out, &Value::Object(m))
    })?;
    hits.close(out)?;
    out.write_all(b"}\n")?;
    Ok(())
}

fn backup_info_json(cat: &Catalog, tape: &Tape, backups: &[Backup], out: &mut dyn Write) -> Result<()> {
    out.write_all(b"{\"tape\":")?;
    serde_json::to_writer(&mut *out, &Value::Object(tape_json(cat, tape)?))?;
    let mut items = JsonArray::open(out, ",\"backups\":")?;
    for b in backups {
        items.item(out, &Value::Object(backup_info_item(cat, tape, b)?))?;
    }
    items.close(out)?;
    out.write_all(b"}\n")?;
    Ok(())
}

/// Everything `backup_info` knows of one backup, as JSON.
fn backup_info_item(cat: &Catalog, tape: &Tape, b: &Backup) -> Result<Map<String, Value>> {
    let target = cat.target(b.target_id)?;
    let mut m = backup_json(b);
    if cat.counts_pools() {
        let copies: Vec<Value> = cat
            .target_copies(b.target_id)?
            .iter()
            .map(|c| {
                json!({ "tape": c.tape, "pool": c.pool, "file_number": legacy_file_number(c.file_number),
                        "status": c.status.as_str() })
            })
            .collect();
        m.insert("copies".into(), Value::Array(copies));
    }
    m.insert("size_bytes".into(), json!(cat.target_exact_bytes(b.target_id)?));
    m.insert("parent".into(), Value::Null);
    if let Some(p) = target.parent_id {
        put_name(&mut m, "parent", &cat.target(p)?.name);
    }
    let children: Vec<Value> = cat
        .child_targets(b.target_id)?
        .iter()
        .map(|c| {
            let mut cm = Map::new();
            put_name(&mut cm, "target", c);
            Value::Object(cm)
        })
        .collect();
    m.insert("children".into(), Value::Array(children));
    for (k, v) in backup_extra(cat, b.id)? {
        m.insert(k.into(), v);
    }
    let history: Vec<Value> = history_of(cat, tape, b)?.iter().map(HistoryRow::to_json).collect();
    m.insert("history".into(), Value::Array(history));
    Ok(m)
}

/// `tape_bytes`, `block_size`, `written_at`, `confirmed_at` of a backup
/// (null when unknown).
fn backup_extra(cat: &Catalog, backup_id: i64) -> Result<[(&'static str, Value); 4]> {
    let BackupExtra { bytes, block_size: block, written_at: written, confirmed_at: confirmed } =
        cat.backup_extra(backup_id)?.unwrap_or_default();
    Ok([
        ("tape_bytes", json!(bytes)),
        ("block_size", json!(block)),
        ("written_at", json!(written)),
        ("confirmed_at", json!(confirmed)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_words_name_the_exact_bytes() {
        assert_eq!(bash_word(b"/data/t 1"), "'/data/t 1'");
        assert_eq!(bash_word(b"it's"), "'it'\\''s'");
        assert_eq!(bash_word("caf\u{e9}".as_bytes()), "'caf\u{e9}'");
        assert_eq!(bash_word(b"bad\xffa"), "$'bad\\xffa'");
        assert_eq!(bash_word(b"n\nl'\\"), "$'n\\x0al\\'\\\\'");
        assert_eq!(literal_for_restore(b"plain\\name"), b"plain\\name");
        assert_eq!(literal_for_restore(b"a[1]*\\?"), b"a\\[1]\\*\\\\\\?");
    }
}
