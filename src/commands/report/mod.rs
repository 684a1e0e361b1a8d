//! `report --html DIR`: the status page. This module gathers what the page
//! shows into one serialisable model ([`Report`]) — every tape's fill, the
//! targets waiting, the last 30 days of archive and confirm rates, the
//! library, and the whole `check --json` document — from the catalogue's
//! per-target totals and history (never the `files` table), and writes
//! `index.html` (rendered by [`html`]) and `report.json` (the model) into
//! DIR, each atomically: a temp file in DIR, fsync, rename, fsync DIR.

mod html;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::{Context_, check, inventory, open};
use crate::catalog::{BackupStatus, Catalog, LastFinished, Mode, Tally, Tape, now_text, show};
use crate::changer::Changer;
use crate::exit_codes::{Exit, ExitCode};

/// Days of history the rate chart covers.
pub const RATE_DAYS: u32 = 30;

/// At most this many waiting tape files are listed (the figures stay exact).
pub const WAITING_LIMIT: usize = 20;

/// Everything the status page shows; `report.json` is this, serialised.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When the page was made (`YYYY-MM-DD HH:MM:SS UTC`).
    pub made_at: String,
    /// Which catalogue.
    pub catalogue: CatalogueInfo,
    /// When the last successful archive finished, if ever.
    pub last_archive: Option<Finished>,
    /// When the last successful confirm finished, if ever.
    pub last_confirm: Option<Finished>,
    /// The document `check --json` prints, less its `integrity` condition
    /// (the integrity check reads the whole catalogue: `check` runs it).
    pub check: Value,
    /// tape.conf's `copy_pools` (empty: one copy).
    pub copy_pools: Vec<String>,
    /// Every tape, in the catalogue's order.
    pub tapes: Vec<TapeBar>,
    /// The targets waiting for a tape, an archive or a confirm.
    pub waiting: Waiting,
    /// Archive and confirm runs that ended in the last [`RATE_DAYS`] days.
    pub rates: Vec<RateRow>,
    /// The library, when tape.conf has a `[changer]`.
    pub library: Option<LibraryView>,
}

/// The catalogue the page was made from.
#[derive(Debug, Serialize)]
pub struct CatalogueInfo {
    /// Its path, from tape.conf.
    pub path: String,
    /// Its id (None on a catalogue tapeop has not upgraded yet).
    pub catalogue_id: Option<String>,
}

/// When a run finished.
#[derive(Debug, Serialize)]
pub struct Finished {
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub ended: String,
    /// Seconds before `made_at`.
    pub seconds_ago: i64,
}

/// A count and size, as the `--json` reports give them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct TallyView {
    /// How many.
    pub count: i64,
    /// KiB (du).
    pub size_kb: i64,
    /// size_kb / 1e6, as the reports print it.
    pub gb: f64,
}

impl From<Tally> for TallyView {
    fn from(t: Tally) -> TallyView {
        TallyView { count: t.count, size_kb: t.size_kb, gb: t.size_kb as f64 / 1e6 }
    }
}

impl TallyView {
    fn add(self, other: TallyView) -> TallyView {
        let size_kb = self.size_kb + other.size_kb;
        TallyView { count: self.count + other.count, size_kb, gb: size_kb as f64 / 1e6 }
    }
}

/// One tape as a bar.
#[derive(Debug, Serialize)]
pub struct TapeBar {
    /// Catalogue id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Serial (barcode); None when blank.
    pub serial: Option<String>,
    /// `open`, `full`, `closed`, `garbage` (as `tapes` shows it).
    pub status: String,
    /// tapeop's full mark.
    pub full: bool,
    /// The online tape.
    pub online: bool,
    /// Its pool.
    pub pool: String,
    /// Whether its pool is one of `copy_pools`.
    pub copy_pool: bool,
    /// Capacity in bytes: its own, tape.conf's, or the measured one.
    pub capacity_bytes: Option<i64>,
    /// Backups confirmed, recorded, assigned (as `status --json`).
    pub confirmed: TallyView,
    /// See `confirmed`.
    pub recorded: TallyView,
    /// See `confirmed`.
    pub assigned: TallyView,
    /// confirmed + recorded + assigned (as `status --json` "total").
    pub total: TallyView,
    /// KiB written (recorded + confirmed), as `tapes --json` "written".
    pub written_kb: i64,
    /// Capacity less what is written and assigned (KiB × 1024), when known.
    pub free_bytes: Option<i64>,
}

/// The targets waiting.
#[derive(Debug, Serialize)]
pub struct Waiting {
    /// Scanned targets lacking a copy (as `unassigned --json`).
    pub unassigned: TallyView,
    /// With `copy_pools`: those lacking a copy in each pool.
    pub unassigned_pools: Vec<(String, TallyView)>,
    /// Assigned to a tape, not yet archived (all tapes).
    pub assigned: TallyView,
    /// Written, not yet confirmed (all tapes).
    pub recorded: TallyView,
    /// Days since the oldest recorded tape file was written (of those with a date).
    pub oldest_recorded_days: Option<f64>,
    /// Recorded tape files with no write date (the old tool's).
    pub recorded_age_unknown: i64,
    /// The oldest recorded tape files, at most [`WAITING_LIMIT`].
    pub recorded_oldest: Vec<WaitingFile>,
}

/// A tape file written and not yet confirmed.
#[derive(Debug, Serialize)]
pub struct WaitingFile {
    /// Tape name.
    pub tape: String,
    /// Tape file number (as the reports print it).
    pub file_number: i64,
    /// Target (lossy when its bytes are not UTF-8).
    pub target: String,
    /// The exact bytes in hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
    /// When it was written.
    pub written_at: Option<String>,
    /// Days since.
    pub age_days: Option<f64>,
}

/// One archive or confirm run of the history.
#[derive(Debug, Serialize)]
pub struct RateRow {
    /// History id.
    pub id: i64,
    /// `archive` or `confirm`.
    pub kind: String,
    /// Tape name.
    pub tape: Option<String>,
    /// Tape file number.
    pub file_number: Option<i64>,
    /// When it ended.
    pub ended: String,
    /// Days before `made_at` that it ended.
    pub age_days: f64,
    /// `ok`, `failed`, ...
    pub outcome: Option<String>,
    /// Bytes moved.
    pub bytes: Option<i64>,
    /// MB/s of the tape file (bytes / seconds), when known.
    pub rate_mb_s: Option<f64>,
    /// The drive's own rate, when known.
    pub drive_mb_per_s: Option<f64>,
}

/// The library: its changer's drives and slots, or why it could not be read.
#[derive(Debug, Serialize)]
pub struct LibraryView {
    /// The changer device.
    pub changer: String,
    /// Why `mtx status` failed (then drives and slots are empty).
    pub error: Option<String>,
    /// The drives.
    pub drives: Vec<Element>,
    /// The slots.
    pub slots: Vec<Element>,
}

/// A drive or slot and what it holds.
#[derive(Debug, Serialize)]
pub struct Element {
    /// `Drive A (element 0)`, `Slot 3`, `Slot 10 (import/export)`.
    pub label: String,
    /// The cartridge's barcode.
    pub barcode: Option<String>,
    /// `empty`, `no_barcode`, `cleaning`, `unknown`, `tape`.
    pub holds: String,
    /// The catalogue tape, when it is one.
    pub tape: Option<String>,
    /// What it is, in `inventory`'s words.
    pub what: String,
}

/// `report --html DIR`: write DIR/index.html and DIR/report.json.
pub fn run(ctx: &Context_, dir: &Path, out: &mut dyn Write) -> Result<ExitCode> {
    check_dir(dir)?;
    let cat = open(ctx, Mode::ReadOnly)?;
    let report = gather(ctx, &cat)?;
    let json = serde_json::to_vec_pretty(&report)?;
    write_atomic(dir, "report.json", &json)?;
    write_atomic(dir, "index.html", html::page(&report).as_bytes())?;
    let problems = report.check["problems"].as_u64().unwrap_or(0);
    let (tapes, plural) = (report.tapes.len(), if report.tapes.len() == 1 { "" } else { "s" });
    let problems = format!("{problems} problem{}", if problems == 1 { "" } else { "s" });
    writeln!(out, "Wrote {} and report.json ({tapes} tape{plural}, {problems}).", dir.join("index.html").display())?;
    Ok(ExitCode::Success)
}

/// DIR must be an existing directory: one line naming it otherwise.
fn check_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let why = if dir.exists() { "is not a directory" } else { "does not exist" };
    Err(Exit::error(
        ExitCode::Failure,
        format!("cannot write the status page: {} {why} (create it, or give another --html DIR)", dir.display()),
    ))
}

/// Gather the whole model.
pub fn gather(ctx: &Context_, cat: &Catalog) -> Result<Report> {
    let config = &ctx.config;
    let live = crate::lock::holder(&crate::lock::catalogue_lock_path(&config.database_file));
    // Everything check looks at but the integrity check, which reads the whole catalogue.
    let opts =
        check::Options { days: 7, full_percent: 90, json: true, verify_days: config.verify_days, integrity: false };
    let tapes = tape_bars(ctx, cat)?;
    Ok(Report {
        made_at: now_text(),
        catalogue: CatalogueInfo {
            path: fs::canonicalize(&config.database_file)
                .unwrap_or_else(|_| config.database_file.clone())
                .display()
                .to_string(),
            catalogue_id: cat.catalogue_id().ok(),
        },
        last_archive: cat.last_finished("archive")?.map(finished),
        last_confirm: cat.last_finished("confirm")?.map(finished),
        check: check::json_document(cat, opts, live.as_deref(), config)?,
        copy_pools: cat.copy_pools(),
        waiting: waiting(cat, &tapes)?,
        tapes,
        rates: rates(cat)?,
        library: library(ctx, cat),
    })
}

fn finished(f: LastFinished) -> Finished {
    Finished { ended: f.ended, seconds_ago: f.seconds_ago }
}

fn tape_bars(ctx: &Context_, cat: &Catalog) -> Result<Vec<TapeBar>> {
    let pools = cat.copy_pools();
    let mut bars = Vec::new();
    for tape in cat.tapes()? {
        bars.push(tape_bar(ctx, cat, &tape, &pools)?);
    }
    Ok(bars)
}

fn tape_bar(ctx: &Context_, cat: &Catalog, tape: &Tape, pools: &[String]) -> Result<TapeBar> {
    let tally = |s: BackupStatus| -> Result<TallyView> { Ok(cat.tape_tally(tape.id, &s)?.into()) };
    let (confirmed, recorded, assigned) =
        (tally(BackupStatus::Confirmed)?, tally(BackupStatus::Recorded)?, tally(BackupStatus::Assigned)?);
    let total = confirmed.add(recorded).add(assigned);
    let capacity = cat.tape_capacity(tape, ctx.config.tape_capacity)?;
    let pool = cat.tape_pool(tape)?;
    Ok(TapeBar {
        id: tape.id,
        name: tape.name.clone(),
        serial: Some(tape.serial.clone()).filter(|s| !s.is_empty()),
        status: super::reports::display_status(cat, tape)?.to_string(),
        full: cat.tape_marks(tape.id)?.full,
        online: tape.online,
        copy_pool: pools.contains(&pool),
        pool,
        capacity_bytes: capacity,
        free_bytes: capacity.map(|c| (c - total.size_kb * 1024).max(0)),
        written_kb: cat.tape_written_kb(tape.id)?,
        confirmed,
        recorded,
        assigned,
        total,
    })
}

fn waiting(cat: &Catalog, tapes: &[TapeBar]) -> Result<Waiting> {
    let sum = |f: fn(&TapeBar) -> TallyView| tapes.iter().map(f).fold(TallyView::default(), TallyView::add);
    let mut pools = Vec::new();
    if cat.counts_pools() {
        for pool in cat.copy_pools() {
            let t = cat.unassigned_tally_in(&pool)?.into();
            pools.push((pool, t));
        }
    }
    let (oldest, unknown) = recorded_files(cat)?;
    Ok(Waiting {
        unassigned: cat.unassigned_tally()?.into(),
        unassigned_pools: pools,
        assigned: sum(|t| t.assigned),
        recorded: sum(|t| t.recorded),
        oldest_recorded_days: oldest.first().and_then(|f| f.age_days),
        recorded_age_unknown: unknown,
        recorded_oldest: oldest,
    })
}

/// The oldest recorded tape files (dated ones first, oldest first), and
/// how many have no date.
fn recorded_files(cat: &Catalog) -> Result<(Vec<WaitingFile>, i64)> {
    let mut all = Vec::new();
    let mut unknown = 0;
    cat.each_recorded_backup(|b| {
        unknown += i64::from(b.age_days.is_none());
        let hex = std::str::from_utf8(&b.target).is_err().then(|| super::reports::hex(&b.target));
        all.push(WaitingFile {
            tape: b.tape,
            file_number: crate::catalog::legacy_file_number(b.file_number),
            target: show(&b.target),
            target_hex: hex,
            written_at: b.written_at,
            age_days: b.age_days.map(|a| (a * 100.0).round() / 100.0),
        });
        Ok(())
    })?;
    all.sort_by(|a, b| b.age_days.unwrap_or(-1.0).total_cmp(&a.age_days.unwrap_or(-1.0)));
    all.truncate(WAITING_LIMIT);
    Ok((all, unknown))
}

fn rates(cat: &Catalog) -> Result<Vec<RateRow>> {
    let now = epoch_secs(&now_text()).unwrap_or(0);
    Ok(cat
        .recent_transfers(RATE_DAYS)?
        .iter()
        .map(|h| RateRow {
            id: h.id,
            kind: h.kind.clone(),
            tape: h.tape.clone(),
            file_number: h.file_number.as_stored(),
            ended: h.ended.clone().unwrap_or_default(),
            age_days: h.ended.as_deref().and_then(epoch_secs).map_or(0.0, |e| (now - e) as f64 / 86_400.0),
            outcome: h.outcome.clone(),
            bytes: h.bytes,
            rate_mb_s: h.rate_mb_s(),
            drive_mb_per_s: h.drive_mb_per_s(),
        })
        .collect())
}

/// Seconds since the epoch of a `YYYY-MM-DD HH:MM:SS[ UTC]` text.
fn epoch_secs(text: &str) -> Option<i64> {
    let when = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text.get(..19)?).ok()?;
    let epoch = jiff::civil::DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
    Some(when.duration_since(epoch).as_secs())
}

/// The library with `[changer]`; a changer that cannot be read is its
/// error, never a failure of the page.
fn library(ctx: &Context_, cat: &Catalog) -> Option<LibraryView> {
    let changer = Changer::new(ctx.config.changer.as_ref()?);
    let device = changer.device().display().to_string();
    let view = changer.status().and_then(|status| library_elements(ctx, cat, &status));
    Some(match view {
        Ok((drives, slots)) => LibraryView { changer: device, error: None, drives, slots },
        Err(e) => LibraryView { changer: device, error: Some(format!("{e:#}")), drives: vec![], slots: vec![] },
    })
}

fn library_elements(
    ctx: &Context_,
    cat: &Catalog,
    status: &crate::changer::LibraryStatus,
) -> Result<(Vec<Element>, Vec<Element>)> {
    let mut drives = Vec::new();
    for d in &status.drives {
        let name = ctx.config.drive_at(d.index).map_or("-", |e| e.name.as_str());
        let label = format!("Drive {name} (element {})", d.index);
        drives.push(element(cat, label, d.full, d.barcode.as_deref(), inventory::from_slot(d))?);
    }
    let mut slots = Vec::new();
    for s in &status.slots {
        let label =
            if s.import_export { format!("Slot {} (import/export)", s.number) } else { format!("Slot {}", s.number) };
        slots.push(element(cat, label, s.full, s.barcode.as_deref(), None)?);
    }
    Ok((drives, slots))
}

fn element(cat: &Catalog, label: String, full: bool, barcode: Option<&str>, more: Option<String>) -> Result<Element> {
    let holds = inventory::Holds::of(Some(cat), full, barcode)?;
    let tape = match &holds {
        inventory::Holds::Tape(_, t) => Some(t.name.clone()),
        _ => None,
    };
    Ok(Element {
        label,
        barcode: barcode.map(str::to_string),
        holds: holds.kind().to_string(),
        tape,
        what: holds.describe(Some(cat), more)?,
    })
}

/// Write `bytes` to DIR/NAME so that a reader sees the old file or the
/// whole new one, never a part: a temp file in DIR, fsync, rename, fsync
/// DIR. On failure the temp file is removed and NAME is left as it was.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    remove_stale_temps(dir, name);
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = write_synced(&temp, bytes).and_then(|()| {
        crate::fault::point("report-before-rename");
        fs::rename(&temp, dir.join(name)).with_context(|| format!("cannot rename {} to {name}", temp.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(|e| {
        Exit::error(
            ExitCode::Failure,
            format!(
                "cannot write the status page into {}: {e:#} (make it writable, or give another --html DIR)",
                dir.display()
            ),
        )
    })?;
    // The rename is durable once the directory is.
    fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))
}

/// Remove the temp files `.NAME.tmp-PID` that a run killed before its
/// rename left in `dir`, when process PID is gone (a run writing now keeps
/// its own). Best effort: nothing here stops the page from being written.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn write_synced(path: &PathBuf, bytes: &[u8]) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all().with_context(|| format!("cannot sync {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_of_catalogue_times() {
        assert_eq!(epoch_secs("1970-01-02 00:00:01 UTC"), Some(86_401));
        assert_eq!(epoch_secs("2026-12-02 07:00:00"), Some(1_796_194_800));
        assert_eq!(epoch_secs("garbage"), None);
    }

    #[test]
    fn an_atomic_write_replaces_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.html"), "old page").unwrap();
        write_atomic(dir.path(), "index.html", b"new page").unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("index.html")).unwrap(), "new page");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("index.html")]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_page_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.html"), "old page").unwrap();
        // A directory where the temp file would go: its creation fails.
        fs::create_dir(dir.path().join(format!(".index.html.tmp-{}", std::process::id()))).unwrap();
        let e = write_atomic(dir.path(), "index.html", b"new page").unwrap_err();
        assert!(format!("{e:#}").contains("cannot write the status page into"), "{e:#}");
        assert_eq!(fs::read_to_string(dir.path().join("index.html")).unwrap(), "old page");
    }

    #[test]
    fn temp_files_of_dead_runs_are_removed_and_a_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        // No pid reaches 2^31 on Linux (pid_max is at most 2^22).
        let dead = dir.path().join(".index.html.tmp-2147483647");
        let live = dir.path().join(".index.html.tmp-1");
        let other = dir.path().join(".report.json.tmp-2147483647");
        for f in [&dead, &live, &other] {
            fs::write(f, "half a page").unwrap();
        }
        write_atomic(dir.path(), "index.html", b"new page").unwrap();
        assert!(!dead.exists(), "the dead run's temp file is removed");
        assert!(live.exists(), "pid 1 is alive: its temp file stays");
        assert!(other.exists(), "another name's temp file waits for that name's write");
    }
}
