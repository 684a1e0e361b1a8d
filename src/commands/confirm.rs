//! Proving a tape file: the `confirm` command, which reads a tape file back
//! in variable-block mode on one thread while another parses the tar and
//! md5s each member, compares them with the catalogue (`verify_stream`'s
//! `Checker`), then reports every mismatch, missing file and unexpected
//! member before marking anything.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::catalog::{Backup, BackupStatus, Catalog, FailedConfirm, Mode, Outcome, Tape, show};
use crate::changer::Location;
use crate::cli::ConfirmWhich;
use crate::config::Config;
use crate::drive::{self, Access, Drive, IoCounters};
use crate::exit_codes::{self, Exit, ExitCode};
use crate::library::LibraryDrive;
use crate::stop;
use crate::tape_file::TapeFile;
use crate::tarstream;
use crate::verify_stream::Checker;

/// Options of `confirm`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Which tape file.
    pub which: ConfirmWhich,
    /// Allow re-confirming a confirmed one.
    pub retry: bool,
    /// Do not mark it confirmed.
    pub no_db_update: bool,
    /// Go on until nothing is left.
    pub repeat: bool,
}

/// Run `confirm`. `next` passes over tape files whose last confirm failed
/// (they stay failed and reported; `confirm N` or `--retry` reads them
/// again); with `--repeat`, a failed confirm does not stop the run: the
/// others are confirmed, and the run ends in failure naming the failed ones.
pub fn run(config: &Config, opts: Options) -> Result<ExitCode> {
    let cat = Catalog::open(&config.database_file, if opts.no_db_update { Mode::ReadOnly } else { Mode::ReadWrite })?;
    if let Some(lib) = LibraryDrive::from_config(config)? {
        return library_run(config, &cat, &lib, opts);
    }
    let tape = cat.tape_or_online(None)?;
    run_on(config, &cat, &tape, opts)
}

/// `confirm` on a library drive: `confirm N` loads the online tape; `next`
/// loads, in turn, each tape in the library with recorded tape files to
/// confirm (with `--repeat`, all of them; the tape in the drive first).
/// Exit 40 when none is left, 1 naming the tapes whose confirms failed.
fn library_run(config: &Config, cat: &Catalog, lib: &LibraryDrive, opts: Options) -> Result<ExitCode> {
    let command = format!("confirm --drive {}", lib.name);
    if let ConfirmWhich::Number(_) = opts.which {
        let tape = cat.tape_or_online(None)?;
        let _claim = lib.mount_tape(&tape, &config.database_file, &command)?;
        return run_on(config, cat, &tape, opts);
    }
    let mut seen: Vec<i64> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    loop {
        stop::check()?;
        let Some((tape, _claim)) = next_library_tape(config, cat, lib, opts, &seen, &command)? else { break };
        seen.push(tape.id);
        match run_on(config, cat, &tape, opts) {
            Ok(ExitCode::Success) if !opts.repeat => return Ok(ExitCode::Success),
            Ok(_) => {}
            Err(e) if opts.repeat && !stop::requested() && exit_codes::for_error(&e) == ExitCode::Failure => {
                eprintln!("tapeop: {e:#}");
                failed.push(tape.name.clone());
            }
            Err(e) => return Err(e),
        }
    }
    if failed.is_empty() {
        println!("Nothing is left to confirm in the library for {}.", lib.describe());
        return Ok(ExitCode::NothingToDo);
    }
    Err(Exit::error(
        ExitCode::Failure,
        format!(
            "confirms FAILED on tape(s) {} (reasons above); the other tape files were confirmed",
            failed.join(", ")
        ),
    ))
}

/// The next tape in the library with tape files `next` would confirm, not
/// yet done in this run, claimed and loaded (the one in the drive first).
fn next_library_tape(
    config: &Config,
    cat: &Catalog,
    lib: &LibraryDrive,
    opts: Options,
    seen: &[i64],
    command: &str,
) -> Result<Option<(Tape, crate::lock::Lock)>> {
    let status = lib.changer.status()?;
    let here = lib.holds(&status)?;
    let mut tapes: Vec<Tape> = Vec::new();
    for tape in cat.tapes()? {
        let Some(barcode) = Some(tape.serial.as_str()).filter(|s| !s.is_empty()) else { continue };
        let reachable = match status.locate(barcode) {
            Some(Location::Drive(i)) if i != lib.index => other_drive_idle(config, i),
            Some(_) => true,
            None => false,
        };
        if reachable && !seen.contains(&tape.id) && has_pending(cat, &tape, opts)? {
            tapes.push(tape);
        }
    }
    tapes.sort_by_key(|t| (here.as_deref() != Some(t.serial.as_str()), t.id));
    for tape in tapes {
        if crate::lock::tape_holder(&config.database_file, &tape.name).is_some() {
            continue;
        }
        let claim = lib.mount_tape(&tape, &config.database_file, command)?;
        return Ok(Some((tape, claim)));
    }
    Ok(None)
}

/// Whether drive element `index` is one of tape.conf's drives and no run
/// holds it (its cartridge may then be moved here).
fn other_drive_idle(config: &Config, index: u32) -> bool {
    config.drive_at(index).is_some_and(|d| crate::lock::holder(&crate::lock::drive_lock_path(&d.spec)).is_none())
}

/// Whether `next` would find a recorded tape file to confirm on `tape`.
fn has_pending(cat: &Catalog, tape: &Tape, opts: Options) -> Result<bool> {
    for b in cat.backups_with_status(tape.id, &BackupStatus::Recorded)? {
        if opts.retry || last_failure(cat, tape, &b)?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Confirm tape files of `tape`, which must be the loaded one.
fn run_on(config: &Config, cat: &Catalog, tape: &Tape, opts: Options) -> Result<ExitCode> {
    let mut drive: Option<Box<dyn Drive>> = None;
    let mut end_of_data = None;
    let mut failed: Vec<TapeFile> = Vec::new();
    // This run's reads of the tape, for the drive's figures (see catalog::drive_io).
    let mut run: Option<i64> = None;
    loop {
        let pending = pending(cat, tape, opts, &failed)?;
        println!("Found {} jobs to confirm.", pending.len());
        let job = match pick(cat, tape, &pending, opts)? {
            Some(job) => job,
            None if failed.is_empty() => return Ok(ExitCode::NothingToDo),
            None => return Err(failures(tape, &failed)),
        };
        if drive.is_none() {
            let mut d = drive::open(&config.drive, Access::Read, config.block_size)?;
            end_of_data =
                prove_label(cat, &mut *d, config, tape).or_else(|e| unreadable_label(cat, tape, &job, opts, e))?;
            drive = Some(d);
        }
        let once = !opts.repeat || matches!(opts.which, ConfirmWhich::Number(_)) || opts.no_db_update;
        if let Some(d) = drive.as_deref_mut() {
            let confirmed = confirm_one(cat, tape, &job, d, opts, &mut run);
            crate::label::remember(cat, d, &config.drive, tape, end_of_data, "confirm");
            match confirmed {
                Err(e) if !once && !stop::requested() => {
                    eprintln!("tapeop: {e:#}");
                    failed.push(job.tape_file()?);
                }
                other => other?,
            }
        }
        if once {
            return Ok(ExitCode::Success);
        }
        stop::check()?;
    }
}

/// Prove that the loaded tape is `tape` before anything is read or
/// recorded (once per run; not at all when the drive's last proof still
/// holds); a wrong tape is refused and nothing is recorded. Returns the
/// tape's end of data when the last proof knew it.
fn prove_label(cat: &Catalog, drive: &mut dyn Drive, config: &Config, tape: &Tape) -> Result<Option<u64>> {
    let proof = crate::label::prove_for_reading(cat, drive, &config.drive, tape)?;
    if let crate::label::ReadProof::Wrong(found) = &proof {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "refusing to confirm: {}; load tape \"{}\"; nothing was recorded",
                crate::label::mismatch(&tape.name, found.as_ref()),
                tape.name
            ),
        ));
    }
    Ok(proof.end_of_data())
}

/// A label that could not be read (a drive error, not a wrong tape): the
/// confirm of `job` failed, and is recorded as such with the error.
fn unreadable_label(cat: &Catalog, tape: &Tape, job: &Backup, opts: Options, e: anyhow::Error) -> Result<Option<u64>> {
    if e.chain().any(|c| c.downcast_ref::<Exit>().is_some()) || opts.no_db_update {
        return Err(e);
    }
    let n = job.tape_file()?;
    let e = e.context(format!("confirming tape \"{}\" file {n} ({})", tape.name, show(&job.target)));
    let history = cat.history_start("confirm", &tape.name, n, &job.target)?;
    cat.history_end(history, None, Outcome::Failed, Some(format!("{e:#}")))?;
    Err(e)
}

/// The recorded tape files `next` may pick: those whose last confirm did
/// not fail (all of them with `--retry`), leaving out `done` (failed in
/// this run). Each one passed over is named, with what to do about it.
fn pending(cat: &Catalog, tape: &Tape, opts: Options, done: &[TapeFile]) -> Result<Vec<Backup>> {
    let mut out = Vec::new();
    for b in cat.backups_with_status(tape.id, &BackupStatus::Recorded)? {
        if b.file_number.is_some_and(|n| done.contains(&n)) {
            continue;
        }
        let failure = match (opts.which, opts.retry) {
            (ConfirmWhich::Next, false) => last_failure(cat, tape, &b)?,
            _ => None,
        };
        match (failure, b.file_number) {
            (Some(f), Some(n)) => println!(
                "Passing over tape file {n} ({}): its last confirm ({}) failed; tapeop confirm {n} reads it again, \
                 tapeop requeue {n} archives its target again.",
                show(&b.target),
                f.started,
            ),
            _ => out.push(b),
        }
    }
    Ok(out)
}

/// The last confirm of a backup's tape file, when it failed (none for a
/// backup with no tape file).
fn last_failure(cat: &Catalog, tape: &Tape, b: &Backup) -> Result<Option<FailedConfirm>> {
    match b.file_number {
        Some(n) => cat.confirm_failure(&tape.name, n),
        None => Ok(None),
    }
}

/// The error of a `--repeat` run in which some confirms failed.
fn failures(tape: &Tape, failed: &[TapeFile]) -> anyhow::Error {
    let numbers: Vec<String> = failed.iter().map(TapeFile::to_string).collect();
    Exit::error(
        ExitCode::Failure,
        format!(
            "confirm of tape \"{}\" file(s) {} FAILED (reasons above); the others were confirmed. \
             tapeop requeue N archives a failed one's target again",
            tape.name,
            numbers.join(", ")
        ),
    )
}

fn pick(cat: &Catalog, tape: &Tape, pending: &[Backup], opts: Options) -> Result<Option<Backup>> {
    match opts.which {
        ConfirmWhich::Next => Ok(pending.first().cloned()),
        ConfirmWhich::Number(n) => {
            let b = cat.backup_at(tape.id, n)?.with_context(|| {
                format!("tape \"{}\" has no tape file {n} in the catalogue (tapeop tape_detail lists them)", tape.name)
            })?;
            println!("Matched file_number={n}");
            match &b.status {
                BackupStatus::Recorded => Ok(Some(b)),
                BackupStatus::Confirmed if opts.retry => Ok(Some(b)),
                BackupStatus::Confirmed => {
                    bail!("tape file {n} of \"{}\" is already confirmed; pass --retry to check it again", tape.name)
                }
                BackupStatus::Failed if opts.no_db_update => Ok(Some(b)),
                BackupStatus::Failed => bail!(
                    "tape file {n} of \"{}\" failed confirm and was requeued: its target goes to another tape file; \
                     confirm {n} --no-db-update reads it without recording anything",
                    tape.name
                ),
                other => bail!("tape file {n} of \"{}\" is {other}, not on tape yet", tape.name),
            }
        }
    }
}

/// Confirm `job`'s tape file; `run` is this run's first confirm history id
/// (set by the first one), which the drive's figures are recorded under.
fn confirm_one(
    cat: &Catalog,
    tape: &Tape,
    job: &Backup,
    drive: &mut dyn Drive,
    opts: Options,
    run: &mut Option<i64>,
) -> Result<()> {
    let n = job.tape_file()?;
    println!("Seeking to file_number {n}...");
    println!("Checksumming {:.3} GB from tape...", job.size_kb as f64 / 1e6);
    let started = Instant::now();
    let history =
        if opts.no_db_update { None } else { Some(cat.history_start("confirm", &tape.name, n, &job.target)?) };
    let mut checker = Checker::for_backup(cat, job)?;
    let (read, io) = read_and_check(drive, n.get(), &mut checker);
    let read = read.with_context(|| format!("confirming tape \"{}\" file {n} ({})", tape.name, show(&job.target)));
    if let Some(id) = history {
        let run = *run.get_or_insert(id);
        super::record_drive_io(cat, id, Some(run), io)?;
    }
    let scanned = match read {
        Ok(v) => v,
        Err(e) => {
            if let Some(id) = history {
                cat.history_end(id, None, Outcome::Failed, Some(format!("{e:#}")))?;
            }
            return Err(e);
        }
    };
    checker.finish();
    report_rate(scanned, started);
    if let Some(id) = history {
        let (outcome, error) = match checker.problems.len() {
            0 => (Outcome::Ok, None),
            k => (
                Outcome::Failed,
                Some(format!("{k} differences: {}", checker.problems.first().cloned().unwrap_or_default())),
            ),
        };
        cat.history_end(id, Some(scanned), outcome, error)?;
    }
    if !checker.problems.is_empty() {
        for p in &checker.problems {
            eprintln!("  {p}");
        }
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "confirm of tape \"{}\" file {n} ({}) FAILED: {} differences; nothing was marked",
                tape.name,
                show(&job.target),
                checker.problems.len()
            ),
        ));
    }
    if opts.no_db_update {
        println!("Confirm job succeeded, but DB will not be updated.");
    } else {
        println!("Marking record as confirmed.");
        cat.mark_confirmed(job.id)?;
    }
    Ok(())
}

fn report_rate(bytes: u64, started: Instant) {
    let gb = bytes as f64 / 1e9;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(" -- completed {gb:.3} GB in {minutes:.1} minutes; rate is {:.3} GB/min", gb / minutes.max(1e-9));
}

/// Read tape file `n` (on a reader thread) and check every member; returns
/// the tar stream's byte count, and the drive's own counters over the read
/// (from after positioning to the end of the file; none when the drive has
/// none or could not be positioned).
pub fn read_and_check(drive: &mut dyn Drive, n: u64, checker: &mut Checker) -> (Result<u64>, Option<IoCounters>) {
    if let Err(e) = drive.seek_file(n) {
        return (Err(e.context(format!("positioning {} at tape file {n}", drive.name()))), None);
    }
    let before = drive.io_counters();
    let read = stream_and_check(drive, n, checker);
    (read, drive::counters::between(before, drive.io_counters()))
}

/// The read of [`read_and_check`], the head already at tape file `n`.
fn stream_and_check(drive: &mut dyn Drive, n: u64, checker: &mut Checker) -> Result<u64> {
    let summary = drive::stream_file(drive, n, |reader| {
        tarstream::scan_paced(reader, read_ahead(tarstream::default_workers()), |m| {
            stop::check_abort()?;
            checker.check(&m);
            Ok(())
        })
        .with_context(|| format!("tape file {n} is not a readable tar stream"))
    })?;
    Ok(summary.stream_bytes)
}

/// Confirm's pace: every member hashed, with up to 256 MiB of read-ahead
/// shared by the hashing threads (64 MiB each at most), so that while one
/// large member is still being hashed the next one already is too.
fn read_ahead(workers: usize) -> tarstream::Pace<'static> {
    let per_worker = (256 / workers.max(1)).clamp(8, 64);
    tarstream::Pace { queue_chunks: per_worker, ..tarstream::Pace::hash_all(workers) }
}
