//! `archive`: writes the online tape's next assigned target to the tape file
//! at its append point. The data host's `tar -c` streams through a bounded
//! buffer of fixed `block_size` blocks into the drive (last block
//! zero-padded, then one filemark) while a second thread parses the same
//! blocks as tar and md5s each member against the catalogue (all of them,
//! or with `check_in_flight = keep-pace` only what keeps pace with the
//! drive, or none with `off`); the catalogue is changed only after the
//! filemark is on tape and everything checked matched.

mod library;
mod two;

pub use two::{run_two, second_drive_lock};

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::buffer::{Block, BlockBuffer, BlockPool, Pop};
use crate::catalog::{Backup, BackupStatus, Catalog, Mode, Outcome, Tape, TapeStatus, show};
use crate::config::{Config, InFlight};
use crate::drive::{self, Access, Drive, DriveError};
use crate::exit_codes::{Exit, ExitCode};
use crate::remote::{Remote, RemoteChild, quote};
use crate::tape_file::TapeFile;
use crate::tarstream::{self, ChannelReader, Pace};
use crate::verify_stream::Checker;
use crate::{label, stop};

/// Options of `archive`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Keep going until nothing is left or the tape is full.
    pub repeat: bool,
    /// Write, but record nothing.
    pub no_db_update: bool,
    /// Write at the catalogue's append point without proving the tape.
    pub override_tape_check: bool,
    /// Start a target even when it is estimated not to fit.
    pub try_anyway: bool,
    /// How the stream is checked against the catalogue while it is written.
    pub check: InFlight,
}

/// Run `archive`.
pub fn run(config: &Config, opts: Options) -> Result<ExitCode> {
    if let Some(lib) = crate::library::LibraryDrive::from_config(config)? {
        return library::run(config, &lib, opts);
    }
    let cat = Catalog::open(&config.database_file, Mode::ReadWrite)?;
    cat.set_copy_pools(&config.copy_pools);
    let tape = cat.tape_or_online(None)?;
    let status = crate::commands::reports::display_status(&cat, &tape)?;
    if status != TapeStatus::Open {
        bail!("tape \"{}\" is {status}: nothing more is written to it (close it and open_tape a new one)", tape.name);
    }
    refuse_catalogued(&cat, &tape)?;
    let remote = Remote::new(&config.ssh_command)?;
    if cat.backups_with_status(tape.id, &BackupStatus::Assigned)?.is_empty() {
        println!("No assigned targets left for tape \"{}\".", tape.name);
        return Ok(ExitCode::NothingToDo);
    }
    cat.writable()?;
    let mut drive: Option<Box<dyn Drive>> = None;
    let mut proven = false;
    let (run_started, mut run_bytes, mut warned) = (Instant::now(), 0u64, false);
    loop {
        let assigned = cat.backups_with_status(tape.id, &BackupStatus::Assigned)?;
        let Some(job) = assigned.first().cloned() else {
            println!("No assigned targets left for tape \"{}\".", tape.name);
            return Ok(ExitCode::NothingToDo);
        };
        if opts.repeat {
            let left: i64 = assigned.iter().map(|b| b.size_kb).sum();
            println!(
                "Total data remaining: {:.3} GB in {} targets ({})",
                left as f64 / 1e6,
                assigned.len(),
                hours_left(left, run_bytes, run_started)
            );
        }
        if !opts.try_anyway {
            check_fits(&cat, &tape, &job, config)?;
        }
        let d = match &mut drive {
            Some(d) => d,
            None => drive.insert(drive::open(&config.drive, Access::Write, config.block_size)?),
        };
        warn_if_cleaning(&mut **d, &mut warned);
        let done = archive_one(Env { cat: &cat, config, remote: &remote }, &tape, &job, &mut **d, opts, &mut proven);
        run_bytes += done.inspect_err(|e| after_full(&cat, config, &tape, &mut **d, e, opts))?;
        if !opts.repeat || opts.no_db_update {
            if !opts.repeat {
                println!("Exiting ... pass --repeat to keep doing this.");
            }
            return Ok(ExitCode::Success);
        }
        stop::check()?;
    }
}

/// Before each target (so between two targets of `--repeat`, and at the
/// start of each run `tape_batch.bash` makes) on a drive without a
/// library: a drive that asks for cleaning gets one warning line per run,
/// and the run carries on (`check` reports it; `clean` needs a library). The
/// two-drive run asks each of its drives the same way.
fn warn_if_cleaning(d: &mut dyn Drive, warned: &mut bool) {
    if *warned {
        return;
    }
    if d.status().is_ok_and(|s| s.cleaning_requested) {
        *warned = true;
        eprintln!(
            "tapeop: warning: the drive {} asks for cleaning: carrying on with this run; load a cleaning cartridge \
             into it when the run ends (tapeop check reports it until then)",
            d.name()
        );
    }
}

/// Refuse to write on a tape that ends with its catalogue file.
fn refuse_catalogued(cat: &Catalog, tape: &Tape) -> Result<()> {
    if let Some(f) = cat.tape_catalogue_file(tape.id)? {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "tape \"{}\" ends with its catalogue file (tape file {}): nothing more is written to it; open_tape a new one",
                tape.name, f.file_number
            ),
        ));
    }
    Ok(())
}

/// After a failed archive: when it marked the tape full, the tape (still
/// in the drive) gets its catalogue file.
fn after_full(cat: &Catalog, config: &Config, tape: &Tape, drive: &mut dyn Drive, e: &anyhow::Error, opts: Options) {
    let full = crate::exit_codes::for_error(e) == ExitCode::TapeFull
        && crate::commands::reports::display_status(cat, tape).is_ok_and(|s| s == TapeStatus::Full);
    if full && !opts.no_db_update {
        crate::catalogue_file::write_when_full(cat, drive, tape, config);
    }
}

/// Refuse (tape full, exit 43) to start a target estimated not to fit in
/// the space left on the tape, when its capacity is known.
fn check_fits(cat: &Catalog, tape: &Tape, job: &Backup, config: &Config) -> Result<()> {
    let Some(left) = cat.space_left(tape, config.tape_capacity, false, config.block_size)? else { return Ok(()) };
    let need = cat.target_estimate(job.target_id, config.block_size)?;
    if need > left {
        return Err(Exit::error(
            ExitCode::TapeFull,
            format!(
                "{} needs about {:.3} GB but only {:.3} GB are left on tape \"{}\": close_tape and put it on the next tape, or archive --try-anyway",
                show(&job.target),
                need as f64 / 1e9,
                left.max(0) as f64 / 1e9,
                tape.name
            ),
        ));
    }
    Ok(())
}

/// The time left at this run's rate so far, as the old tool printed it.
fn hours_left(left_kb: i64, done_bytes: u64, since: Instant) -> String {
    let secs = since.elapsed().as_secs_f64();
    if done_bytes == 0 || secs <= 0.0 {
        return "? hours".into();
    }
    let rate = done_bytes as f64 / secs;
    format!("{:.2} hours", left_kb as f64 * 1024.0 / rate / 3600.0)
}

/// The remote command that streams a target as the old tool named it.
pub fn tar_script(target: &[u8], children: &[Vec<u8>]) -> Vec<u8> {
    let rel = |p: &[u8]| p.strip_prefix(b"/").unwrap_or(p).to_vec();
    let mut s = b"cd / && tar -c --format=gnu -b 512 --anchored --no-wildcards".to_vec();
    for c in children {
        s.extend_from_slice(b" --exclude=");
        s.extend_from_slice(&quote(&rel(c)));
    }
    s.extend_from_slice(b" -- ");
    s.extend_from_slice(&quote(&rel(target)));
    s
}

/// What every target of one run is archived with.
#[derive(Clone, Copy)]
struct Env<'a> {
    cat: &'a Catalog,
    config: &'a Config,
    remote: &'a Remote,
}

fn archive_one(
    env: Env<'_>,
    tape: &Tape,
    job: &Backup,
    drive: &mut dyn Drive,
    opts: Options,
    proven: &mut bool,
) -> Result<u64> {
    let Env { cat, config, remote } = env;
    let mut n = label::append_point(cat, tape)?;
    if opts.override_tape_check {
        println!("--override-tape-check: writing tape file {n} without proving the tape.");
    } else if !*proven {
        n = label::prove(cat, drive, tape, n, config.block_size, &config.drive)?;
    }
    println!("Seeking to file_number={n}");
    println!("Copying {:.3} GB from network to tape...", job.size_kb as f64 / 1e6);
    println!("Archiving: {}", show(&job.target));
    let history = cat.history_start("archive", &tape.name, n, &job.target)?;
    // Writing moves the end of data: the drive's last proof no longer holds.
    drive::last_proof::forget(&config.drive);
    let started = Instant::now();
    let outcome = write_target(cat, config, remote, job, drive, n.get(), opts.check);
    let outcome =
        outcome.with_context(|| format!("archive of {} to tape \"{}\" file {n}", show(&job.target), tape.name));
    let written = match outcome {
        Ok(w) => w,
        Err(e) => {
            let attempt = Attempt { tape, job, n, history, block_size: config.block_size, record: !opts.no_db_update };
            return Err(end_failed(cat, &attempt, e));
        }
    };
    *proven = true;
    if !opts.override_tape_check {
        label::remember(cat, drive, &config.drive, tape, Some(n.next().get()), "archive");
    }
    crate::fault::point("archive-after-filemark");
    println!("... success.");
    finish_record(cat, job, n, written.bytes, config.block_size, opts)?;
    // Only now: until the backup is recorded, the attempt is not a success
    // (a crash before this line leaves a tape file the next archive rewrites).
    let outcome = if opts.no_db_update { Outcome::WrittenNotRecorded } else { Outcome::Ok };
    cat.history_end(history, Some(written.bytes), outcome, None)?;
    let gb = written.bytes as f64 / 1e9;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(" -- completed {gb:.3} GB in {minutes:.1} minutes; rate is {:.3} GB/min", gb / minutes.max(1e-9));
    crate::commands::record_drive_io(cat, history, None, written.io)?;
    println!(" -- the write buffer ran dry {} times (each a stop for a real drive)", written.dry_runs);
    report_in_flight(opts.check, &written);
    Ok(written.bytes)
}

/// One archive attempt: which target, onto which tape file.
struct Attempt<'a> {
    tape: &'a Tape,
    job: &'a Backup,
    /// The tape file written.
    n: TapeFile,
    /// Its history row.
    history: i64,
    block_size: usize,
    /// Whether the catalogue may change (not `--no-db-update`).
    record: bool,
}

/// Record a failed attempt in the history and turn its error into the one
/// to exit with: the end of the tape inside the first data file of a blank
/// tape (the target fits on no tape of this kind), inside a later one (the
/// tape is full), or any other failure.
fn end_failed(cat: &Catalog, a: &Attempt<'_>, e: anyhow::Error) -> anyhow::Error {
    let full = is_end_of_medium(&e);
    let whole_tape = full && blank_up_to(cat, a.tape, a.n).unwrap_or(false);
    let outcome = match (full, whole_tape) {
        (true, true) => Outcome::TargetLargerThanTape,
        (true, false) => Outcome::TapeFull,
        _ => Outcome::Failed,
    };
    if let Err(db) = cat.history_end(a.history, None, outcome, Some(format!("{e:#}"))) {
        return e.context(format!("and the attempt could not be logged: {db:#}"));
    }
    match (full, whole_tape) {
        (true, true) => too_big(cat, a, e),
        (true, false) => tape_full(cat, a.tape, a.job, a.n, e),
        _ => archive_failed(e),
    }
}

/// Whether tape file `n` is the first data file of a tape with nothing
/// recorded on it: the whole tape was there for it.
fn blank_up_to(cat: &Catalog, tape: &Tape, n: TapeFile) -> Result<bool> {
    Ok(cat.append_point(tape.id)? == TapeFile::LABEL && n == label::first_data_file(cat, tape)?)
}

/// Where a failed `write_record` was: records and bytes of the tape file
/// written before it.
#[derive(Debug, Clone, Copy)]
struct WriteAt {
    block: u64,
    bytes: u64,
}

impl std::fmt::Display for WriteAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing block {} of the tape file", self.block)
    }
}

/// The target filled the whole of a blank tape: unassign it, record what
/// the tape took as its capacity (bytes written when the early warning
/// came: this file's, plus the label's), and say why it cannot be archived.
fn too_big(cat: &Catalog, a: &Attempt<'_>, e: anyhow::Error) -> anyhow::Error {
    let (tape, n) = (&a.tape.name, a.n);
    let in_file = e.downcast_ref::<WriteAt>().map_or(0, |w| w.bytes);
    let block = a.block_size as u64;
    let before = crate::catalog::LABEL_TAR_BYTES.div_ceil(block) * block * n.get();
    let capacity = before + in_file;
    let done = if !a.record {
        "Nothing was recorded (--no-db-update: the target stays assigned and no capacity is recorded)".to_string()
    } else if let Err(db) = cat.record_too_big(a.tape, a.job.id, capacity) {
        return e.context(format!("and the target could not be unassigned: {db:#}"));
    } else {
        format!(
            "Nothing was recorded; the target is unassigned again (assign gives it no tape of this capacity, now \
             recorded for tape \"{tape}\" and for tapes with no capacity of their own)"
        )
    };
    Exit::error(
        ExitCode::ArchiveFailed,
        format!(
            "{} does not fit on a whole tape: tape \"{tape}\" reached its end after {:.3} GB ({capacity} bytes) while \
             writing tape file {n}, its first data file, so the target cannot fit on any tape of this kind. {done}, \
             and tape \"{tape}\" stays open: the next archive writes over the partial tape file. Split it: import \
             its subdirectories as targets of their own. (drive: {e:#})",
            show(&a.job.target),
            capacity as f64 / 1e9,
        ),
    )
}

fn is_end_of_medium(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<DriveError>() == Some(&DriveError::EndOfMedium))
}

fn archive_failed(e: anyhow::Error) -> anyhow::Error {
    if e.chain().any(|c| c.downcast_ref::<Exit>().is_some()) {
        return e;
    }
    Exit::error(ExitCode::ArchiveFailed, format!("{e:#}; nothing was recorded, the target stays assigned"))
}

fn tape_full(cat: &Catalog, tape: &Tape, job: &Backup, n: TapeFile, e: anyhow::Error) -> anyhow::Error {
    let marked = cat.mark_tape_full(tape);
    if let Err(db) = marked {
        return e.context(format!("and the tape could not be marked full: {db}"));
    }
    Exit::error(
        ExitCode::TapeFull,
        format!(
            "tape \"{}\" reached its end while writing tape file {n} ({}): the partial tape file is not recorded, \
             and tape \"{}\" is now marked full; the target stays assigned. Next: confirm --repeat and close_tape \
             this tape, open_tape a new one, assign, then archive. (drive: {e:#})",
            tape.name,
            show(&job.target),
            tape.name
        ),
    )
}

fn finish_record(cat: &Catalog, job: &Backup, n: TapeFile, written: u64, block: usize, opts: Options) -> Result<()> {
    if opts.no_db_update {
        println!(
            "--no-db-update: would mark backup {} ({}) as recorded at file_number={n} of its tape ({written} bytes in blocks of {block}); the catalogue is unchanged.",
            job.id,
            show(&job.target)
        );
        return Ok(());
    }
    println!("Marking record as archived.");
    cat.mark_recorded(job.id, n, written, block)?;
    crate::fault::point("archive-after-record");
    Ok(())
}

/// Bytes written, how often the buffer ran dry, and what the in-flight
/// check left unhashed.
#[derive(Debug, Clone, Copy)]
struct Written {
    bytes: u64,
    dry_runs: u64,
    /// Files matched and files (and their bytes) left unhashed, when checked.
    checked: Option<(u64, u64, u64)>,
    /// The drive's own counters over the tape file (from after
    /// `begin_write` to after the filemark), when it has any.
    io: Option<drive::IoCounters>,
}

/// Blocks queued between the drive writer and the in-flight check.
const CHECK_QUEUE: usize = 32;

/// The summary line of a check that was not `full`.
fn report_in_flight(check: InFlight, w: &Written) {
    match (check, w.checked) {
        (InFlight::Full, _) => {}
        (_, Some((matched, files, bytes))) => println!(
            " -- checked in flight (check_in_flight = {}): {matched} files md5-checked, {files} files ({:.3} GB) left for confirm to md5",
            check.name(),
            bytes as f64 / 1e9
        ),
        (_, None) => {
            println!(" -- not checked in flight (check_in_flight = off): confirm is the check of this tape file")
        }
    }
}

/// Stream the target onto tape file `n`: the source fills a bounded
/// buffer on its own thread, this thread writes the drive and (unless the
/// check is off) tees each block to the tar parser, which checks every
/// member on further threads; `keep-pace` lets the parser skip hashing
/// whenever it falls behind the drive.
fn write_target(
    cat: &Catalog,
    config: &Config,
    remote: &Remote,
    job: &Backup,
    drive: &mut dyn Drive,
    n: u64,
    check: InFlight,
) -> Result<Written> {
    let (mut checker, child) = start_source(cat, remote, job, check)?;
    let child_pid = child.id();
    drive.begin_write(n)?;
    let start = drive.absolute_position()?;
    let io_before = drive.io_counters();
    let depth = (config.buffer_size / config.block_size).max(2);
    let buffer = Arc::new(BlockBuffer::new(depth, depth / 2));
    let pool = Arc::new(BlockPool::new(config.block_size, 16));
    let (source_buffer, source_pool) = (Arc::clone(&buffer), Arc::clone(&pool));
    let source = thread::spawn(move || read_blocks(child, &source_pool, &source_buffer));
    let (check_tx, check_rx) = sync_channel::<Block>(CHECK_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let reader = ChannelReader::counted(check_rx, Arc::clone(&queued));
    let (written, parsed) = thread::scope(|s| {
        let handle = spawn_parser(s, checker.as_mut(), reader, Arc::clone(&queued), check);
        let tee = handle.is_some().then(|| Tee { tx: check_tx, queued: &queued });
        let written = pump_to_drive(&mut *drive, &buffer, &pool, tee, job.size_kb as u64 * 1024);
        if written.is_err() {
            buffer.abandon();
            kill_source(child_pid);
        }
        let parsed = handle.map(|h| h.join().map_err(|_| anyhow::anyhow!("tar parser thread panicked")));
        (written, parsed)
    });
    let source = source.join().map_err(|_| anyhow::anyhow!("source reader thread panicked"))?;
    let counted = written.and_then(|b| check_record_count(drive, start, b, config.block_size, n).map(|()| b));
    let bytes = match counted {
        Ok(b) => b,
        Err(e) => {
            // End the partial tape file cleanly (st would on close; the
            // emulator and the record of what is on tape need it now).
            let _ = drive.write_filemark();
            return Err(e);
        }
    };
    drive.write_filemark().with_context(|| format!("writing the filemark after tape file {n}"))?;
    let io = drive::counters::between(io_before, drive.io_counters());
    source.context("the data host's tar failed")?;
    let checked = check_verdict(checker.as_mut(), parsed)?;
    Ok(Written { bytes, dry_runs: buffer.dry_runs(), checked, io })
}

/// Compare the drive's own record count over tape file `n` (from `start`,
/// its logical position after `begin_write`) with the `bytes / block`
/// records written: a record split on its way to the tape (a block larger
/// than the path to the drive carries whole) would read back as other
/// records than were written.
fn check_record_count(drive: &mut dyn Drive, start: Option<u64>, bytes: u64, block: usize, n: u64) -> Result<()> {
    let Some(start) = start else { return Ok(()) };
    let Some(end) = drive.absolute_position()? else { return Ok(()) };
    let written = bytes / block.max(1) as u64;
    let counted = end.saturating_sub(start);
    if counted == written {
        return Ok(());
    }
    bail!(
        "tape file {n}: {} counts {counted} records but {written} records of {block} bytes were written: \
         the records did not reach the tape as written (block_size {block} is more than this drive path \
         carries as one record); lower block_size in tape.conf",
        drive.name()
    )
}

/// The in-flight check's verdict once the stream is on tape: the parser's
/// error, or every difference listed, or the files matched and left
/// unhashed (`None` when nothing was checked).
fn check_verdict(
    checker: Option<&mut Checker>,
    parsed: Option<Result<Result<tarstream::ScanSummary>>>,
) -> Result<Option<(u64, u64, u64)>> {
    if let Some(parsed) = parsed {
        parsed??;
    }
    let Some(c) = checker else { return Ok(None) };
    report_problems(c)?;
    Ok(Some((c.matched, c.unhashed, c.unhashed_bytes)))
}

/// Start the data host's tar of `job` (its child targets left out), with
/// the in-flight check's checker unless the check is off.
fn start_source(
    cat: &Catalog,
    remote: &Remote,
    job: &Backup,
    check: InFlight,
) -> Result<(Option<Checker>, RemoteChild)> {
    let children = cat.child_targets(job.target_id)?;
    let checker = match check {
        InFlight::Off => None,
        _ => Some(Checker::for_backup(cat, job)?),
    };
    Ok((checker, remote.spawn(&tar_script(&job.target, &children))?))
}

/// The in-flight check's tar parser, on a thread of scope `s`: it reads the
/// stream the source tees to it (`reader`, whose queue length is `queued`)
/// and checks each member; with `keep-pace` it hashes less while the queue
/// is long. None when the check is off (no `checker`).
fn spawn_parser<'scope>(
    s: &'scope thread::Scope<'scope, '_>,
    checker: Option<&'scope mut Checker>,
    reader: ChannelReader,
    queued: Arc<AtomicUsize>,
    check: InFlight,
) -> Option<thread::ScopedJoinHandle<'scope, Result<tarstream::ScanSummary>>> {
    checker.map(|c| {
        s.spawn(move || {
            let behind = |starting| lagging(&queued, starting);
            let pace = Pace {
                behind: (check == InFlight::KeepPace).then_some(&behind as _),
                ..Pace::hash_all(tarstream::default_workers())
            };
            tarstream::scan_paced(reader, pace, |m| {
                c.check(&m);
                Ok(())
            })
        })
    })
}

/// Whether a `keep-pace` check is falling behind the drive: before a member
/// it must have nearly caught up to start hashing it; in the middle of one
/// it gives up only when the drive writer is about to wait for it.
fn lagging(queued: &AtomicUsize, starting: bool) -> bool {
    let limit = if starting { CHECK_QUEUE / 4 } else { CHECK_QUEUE - 2 };
    queued.load(Ordering::Relaxed) >= limit || crate::fault::active("check-behind")
}

/// Where the drive writer sends each block for the in-flight check.
struct Tee<'a> {
    tx: SyncSender<Block>,
    /// Blocks sent and not yet taken by the parser.
    queued: &'a AtomicUsize,
}

impl Tee<'_> {
    /// Hand `block` to the in-flight check (a check that gave up is ignored).
    fn send(&self, block: &Block) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Arc::clone(block));
    }
}

fn report_problems(checker: &mut Checker) -> Result<()> {
    checker.finish();
    if checker.problems.is_empty() {
        return Ok(());
    }
    for p in &checker.problems {
        eprintln!("  {p}");
    }
    let places = match checker.problems.len() {
        1 => "1 place".to_string(),
        n => format!("{n} places"),
    };
    bail!(
        "the data differs from the catalogue in {places} (listed above): the source changed since import; rescan it with `tapeop import LIST --rescan`, then archive again"
    )
}

/// Stop the source when the tape side gives up (its reader thread may be
/// blocked reading, so refusing its next block alone would not wake it).
fn kill_source(pid: u32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}

/// The next block, waking every 200 ms to honour a second Ctrl-C.
fn next_block(buffer: &BlockBuffer) -> Result<Option<Block>> {
    loop {
        stop::check_abort()?;
        match buffer.pop(Duration::from_millis(200)) {
            Pop::Block(block) => return Ok(Some(block)),
            Pop::Waiting => continue,
            Pop::End => return Ok(None),
        }
    }
}

/// Move blocks from the buffer to the drive, teeing them to the parser.
fn pump_to_drive(
    drive: &mut dyn Drive,
    buffer: &BlockBuffer,
    pool: &BlockPool,
    tee: Option<Tee<'_>>,
    estimate: u64,
) -> Result<u64> {
    let bar = progress(estimate);
    let mut written = 0u64;
    let result = (|| {
        while let Some(block) = next_block(buffer)? {
            if let Some(t) = &tee {
                t.send(&block);
            }
            crate::fault::point("archive-block");
            let at = WriteAt { block: written / block.len().max(1) as u64, bytes: written };
            drive.write_record(&block).context(at)?;
            written += block.len() as u64;
            pool.give(block);
            bar.set_position(written);
        }
        Ok(written)
    })();
    bar.finish_and_clear();
    result
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total.max(1));
    bar.set_style(
        ProgressStyle::with_template("{bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_bar}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Read the child's stdout into full blocks (the last one zero-padded) and
/// buffer them; then wait for the child and report its exit.
fn read_blocks(mut child: RemoteChild, pool: &BlockPool, buffer: &BlockBuffer) -> Result<()> {
    let result = read_source(&mut child, pool, "the tape side", |block| buffer.push(block));
    buffer.finish();
    match child.finish() {
        Err(e) => Err(e),
        Ok(()) => result,
    }
}

/// Read the child's stdout into full blocks (the last one zero-padded) and
/// hand each to `push`, until the end of the stream, or until `push` says
/// nobody takes blocks any more (then the child is killed and the error
/// says that `stopped` stopped).
fn read_source(
    child: &mut RemoteChild,
    pool: &BlockPool,
    stopped: &str,
    mut push: impl FnMut(Block) -> bool,
) -> Result<()> {
    let mut total = 0u64;
    loop {
        let mut block = pool.take();
        let block_size = block.len();
        let filled = fill(child, &mut block)?;
        if filled == 0 {
            break;
        }
        block[filled..].fill(0);
        total += filled as u64;
        if !push(Arc::new(block)) {
            child.kill()?;
            bail!("{stopped} stopped after {total} bytes");
        }
        if filled < block_size {
            break;
        }
    }
    if total == 0 {
        bail!("the data host sent no data");
    }
    Ok(())
}

fn fill(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the data host's tar stream"),
        }
    }
    Ok(filled)
}
