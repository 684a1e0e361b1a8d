//! `archive --drive A --drive B` with `copy_pools`: both copies from one
//! read. Each drive holds a labelled tape of the catalogue, of a different
//! copy pool; each target lacking a copy in both pools is assigned to both
//! tapes, read once from the data host, and the one stream goes to each
//! drive through its own bounded buffer and writer thread, md5-checked once
//! in flight (fed from the source side). A drive that fails or fills ends
//! its own copy (filemark, tape marked full with its catalogue file, the
//! target released) while the other copy is completed and recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use super::{
    Attempt, CHECK_QUEUE, Env, Options, Tee, Written, after_full, check_fits, check_record_count, check_verdict,
    end_failed, kill_source, pump_to_drive, read_source, refuse_catalogued, report_in_flight, spawn_parser,
    start_source,
};
use crate::buffer::{Block, BlockBuffer, BlockPool};
use crate::catalog::{Backup, BackupStatus, Catalog, Mode, Outcome, Tape, TapeStatus, show};
use crate::changer::{Location, is_cleaning};
use crate::config::{Config, InFlight};
use crate::drive::{self, Access, Drive};
use crate::exit_codes::{self, Exit, ExitCode};
use crate::library::LibraryDrive;
use crate::lock::{self, Lock};
use crate::remote::{Remote, RemoteChild};
use crate::tape_file::TapeFile;
use crate::tarstream::ChannelReader;
use crate::{label, stop};

/// The lock of the second drive of a two-copy archive (the first is taken
/// as for any archive).
pub fn second_drive_lock(config: &Config, second: &str) -> Result<Lock> {
    let cfg = drive_config(config, second)?;
    let what = format!("the drive {} (--drive {second})", drive::drive_lock_path(&cfg.drive).display());
    let command = format!("archive --drive {} --drive {second}", config.drive_name);
    lock::acquire(&drive::drive_lock_path(&cfg.drive), &what, &command)
}

/// `config` with the drive `name` selected.
fn drive_config(config: &Config, name: &str) -> Result<Config> {
    let mut cfg = config.clone();
    cfg.select_drive(Some(name), true)?;
    Ok(cfg)
}

/// One drive of the run with the tape it holds.
struct Copy {
    config: Config,
    tape: Tape,
    pool: String,
    drive: Box<dyn Drive>,
    proven: bool,
}

/// Run `archive --drive A --drive B`: one copy on each drive's tape.
pub fn run_two(config: &Config, second: &str, opts: Options) -> Result<ExitCode> {
    refuse_usage(config, opts)?;
    let cat = Catalog::open(&config.database_file, Mode::ReadWrite)?;
    cat.set_copy_pools(&config.copy_pools);
    cat.writable()?;
    let remote = Remote::new(&config.ssh_command)?;
    let command = format!("archive --drive {} --drive {second}", config.drive_name);
    let mut claims = Vec::new();
    let mut copies = open_copies(&cat, config, second, &command, &mut claims)?;
    let library = config.changer.is_some() && opts.repeat;
    let (run_started, mut run_bytes) = (Instant::now(), 0u64);
    let mut warned = [false; 2];
    loop {
        let jobs = match next_pair(&cat, &copies)? {
            Next::Pair(jobs) => jobs,
            Next::Nothing => return nothing_left(&cat, &copies),
            Next::NoRoom(i) if library => {
                mark_full(&cat, &mut copies[i])?;
                copies = next_tapes(&cat, copies, &command, &mut claims)?;
                continue;
            }
            Next::NoRoom(i) => return Err(no_room(&copies[i])),
        };
        if opts.repeat {
            let minutes = run_started.elapsed().as_secs_f64() / 60.0;
            println!("Run so far: {:.3} GB in {minutes:.1} minutes", run_bytes as f64 / 1e9);
        }
        for (c, warned) in copies.iter_mut().zip(&mut warned) {
            super::warn_if_cleaning(&mut *c.drive, warned);
        }
        let env = Env { cat: &cat, config, remote: &remote };
        match archive_pair(env, &mut copies, &jobs, opts) {
            Ok(bytes) => run_bytes += bytes,
            Err(e) if library && exit_codes::for_error(&e) == ExitCode::TapeFull && any_full(&cat, &copies) => {
                println!("{e:#}");
                copies = next_tapes(&cat, copies, &command, &mut claims)?;
                continue;
            }
            Err(e) => return Err(e),
        }
        if !opts.repeat {
            println!("Exiting ... pass --repeat to keep doing this.");
            return Ok(ExitCode::Success);
        }
        stop::check()?;
    }
}

/// Refuse two drives without two copy pools, and with --no-db-update.
fn refuse_usage(config: &Config, opts: Options) -> Result<()> {
    if config.copy_pools.len() < 2 {
        return Err(Exit::error(
            ExitCode::Failure,
            "two --drive write one copy in each of two pools, but tape.conf sets no copy_pools of two pools: set \
             copy_pools = POOL1 POOL2 under [default], or give one --drive",
        ));
    }
    if opts.no_db_update {
        return Err(Exit::error(ExitCode::Failure, "archive --no-db-update takes one --drive, not two"));
    }
    Ok(())
}

/// Each drive with its tape: on a library, drive i loads a tape of the
/// i-th pool of copy_pools; plain drives hold labelled tapes of two pools.
fn open_copies(
    cat: &Catalog,
    config: &Config,
    second: &str,
    command: &str,
    claims: &mut Vec<Lock>,
) -> Result<[Copy; 2]> {
    let [first, other] = [config.clone(), drive_config(config, second)?];
    let copies = if config.changer.is_some() {
        let pools = &config.copy_pools;
        [library_copy(cat, first, &pools[0], command, claims)?, library_copy(cat, other, &pools[1], command, claims)?]
    } else {
        [open_copy(cat, first)?, open_copy(cat, other)?]
    };
    if copies[0].pool != copies[1].pool {
        return Ok(copies);
    }
    let [a, b] = &copies;
    Err(Exit::error(
        ExitCode::Failure,
        format!(
            "tapes \"{}\" (drive {}) and \"{}\" (drive {}) are both in pool {}: two drives write one copy in each \
             of two pools; load a tape of another pool of copy_pools ({})",
            a.tape.name,
            a.config.drive_name,
            b.tape.name,
            b.config.drive_name,
            a.pool,
            config.copy_pools.join(" ")
        ),
    ))
}

/// Whether the tape of some copy is now marked full.
fn any_full(cat: &Catalog, copies: &[Copy; 2]) -> bool {
    copies.iter().any(|c| crate::commands::reports::display_status(cat, &c.tape).is_ok_and(|s| s == TapeStatus::Full))
}

/// Open the drive of `config` and find the catalogue's tape it holds, by
/// its label: open, not ended by its catalogue file, in a copy pool.
fn open_copy(cat: &Catalog, config: Config) -> Result<Copy> {
    let name = config.drive_name.clone();
    let mut drive = drive::open(&config.drive, Access::Write, config.block_size)?;
    let found = label::read_label(&mut *drive).with_context(|| format!("reading the label in drive {name}"))?;
    let want = label::catalogue_id(cat)?;
    let Some(found) = found.filter(|l| l.catalogue == want) else {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "drive {name} holds no labelled tape of this catalogue: load an open tape of a copy pool there (a \
                 new tape is labelled by a first archive with one drive: activate_tape NAME, archive --drive {name})"
            ),
        ));
    };
    let tape = cat.tape_or_online(Some(&found.tape))?;
    let status = crate::commands::reports::display_status(cat, &tape)?;
    if status != TapeStatus::Open {
        bail!("tape \"{}\" in drive {name} is {status}: nothing more is written to it; load an open tape", tape.name);
    }
    refuse_catalogued(cat, &tape)?;
    let pool = cat.copy_pool_of(&tape)?.context("copy_pools is not set")?;
    println!("Drive {name} holds tape \"{}\" (pool {pool}).", tape.name);
    Ok(Copy { config, tape, pool, drive, proven: false })
}

/// On a library: claim an open tape of `pool` with room (the one in this
/// drive first, then one with targets assigned, then the oldest) and have
/// the robot load it; a blank cartridge is labelled by the proof before
/// its first write.
fn library_copy(cat: &Catalog, config: Config, pool: &str, command: &str, claims: &mut Vec<Lock>) -> Result<Copy> {
    let lib = LibraryDrive::from_config(&config)?.context("the drive is not in the library")?;
    let status = lib.changer.status()?;
    let mut candidates = Vec::new();
    for tape in cat.tapes()? {
        let here = match status.locate(&tape.serial) {
            _ if tape.serial.is_empty() || is_cleaning(&tape.serial) => continue,
            Some(Location::Drive(i)) if i == lib.index => true,
            Some(Location::Slot(_)) => false,
            _ => continue,
        };
        if !usable(cat, &config, &tape, pool)? {
            continue;
        }
        let idle = cat.backups_with_status(tape.id, &BackupStatus::Assigned)?.is_empty();
        candidates.push(((!here, idle, tape.id), tape));
    }
    candidates.sort_by_key(|(rank, _)| *rank);
    for (_, tape) in candidates {
        if lock::tape_holder(&config.database_file, &tape.name).is_some() {
            continue;
        }
        println!("Tape \"{}\" (pool {pool}, cartridge {}) is next for {}.", tape.name, tape.serial, lib.describe());
        claims.push(lib.mount_tape(&tape, &config.database_file, command)?);
        let drive = drive::open(&config.drive, Access::Write, config.block_size)?;
        return Ok(Copy { config, tape, pool: pool.to_string(), drive, proven: false });
    }
    Err(Exit::error(
        ExitCode::TapeFull,
        format!(
            "no open tape of pool {pool} with room is in the library for {}: put a blank cartridge in the library, \
             register it with tapeop open_tape NAME --serial BARCODE --pool {pool}, then run again",
            lib.describe()
        ),
    ))
}

/// On a library, after a copy's tape filled: each full tape goes back to
/// its slot and its drive loads the next open tape of its pool.
fn next_tapes(cat: &Catalog, copies: [Copy; 2], command: &str, claims: &mut Vec<Lock>) -> Result<[Copy; 2]> {
    let [a, b] = copies;
    Ok([next_tape(cat, a, command, claims)?, next_tape(cat, b, command, claims)?])
}

/// `c` itself while its tape has room, else the next tape of its pool.
fn next_tape(cat: &Catalog, c: Copy, command: &str, claims: &mut Vec<Lock>) -> Result<Copy> {
    if crate::commands::reports::display_status(cat, &c.tape)? != TapeStatus::Full {
        return Ok(c);
    }
    let Copy { config, pool, drive, tape, .. } = c;
    drop(drive);
    let lib = LibraryDrive::from_config(&config)?.context("the drive is not in the library")?;
    println!("Tape \"{}\" is full: {} takes the next tape of pool {pool}.", tape.name, lib.describe());
    lib.dismount(command)?;
    library_copy(cat, config, &pool, command, claims)
}

/// Whether `tape` is open, of `pool`, not ended by its catalogue file, and
/// has room left.
fn usable(cat: &Catalog, config: &Config, tape: &Tape, pool: &str) -> Result<bool> {
    if crate::commands::reports::display_status(cat, tape)? != TapeStatus::Open || cat.tape_pool(tape)? != pool {
        return Ok(false);
    }
    if cat.tape_catalogue_file(tape.id)?.is_some() {
        return Ok(false);
    }
    let left = cat.space_left(tape, config.tape_capacity, true, config.block_size)?;
    Ok(left.is_none_or(|l| l > crate::catalog::filemark_estimate(config.block_size)))
}

/// What the two drives write next.
enum Next {
    /// This target: its backup on each tape.
    Pair([Backup; 2]),
    /// Targets lack a copy in both pools, but none fits in the space left
    /// on the tape of this copy.
    NoRoom(usize),
    /// No target lacks a copy in both pools.
    Nothing,
}

/// The next target for both tapes: one assigned to both, else one lacking
/// a copy in both pools that fits both, assigned to both now. A target
/// larger than a whole tape is never taken.
fn next_pair(cat: &Catalog, copies: &[Copy; 2]) -> Result<Next> {
    let on_b = cat.backups_with_status(copies[1].tape.id, &BackupStatus::Assigned)?;
    for a in cat.backups_with_status(copies[0].tape.id, &BackupStatus::Assigned)? {
        if let Some(b) = on_b.iter().find(|b| b.target_id == a.target_id) {
            return Ok(Next::Pair([a, b.clone()]));
        }
    }
    let for_b = cat.unassigned_for(&copies[1].tape)?;
    let mut short = None;
    for id in cat.unassigned_for(&copies[0].tape)? {
        if !for_b.contains(&id) {
            continue;
        }
        match room_for(cat, copies, id)? {
            Room::Fits => {}
            Room::Short(i) => {
                short = short.or(Some(i));
                continue;
            }
            Room::Never => continue,
        }
        if cat.assign_one(&copies[0].tape, id)? && cat.assign_one(&copies[1].tape, id)? {
            return next_pair(cat, copies);
        }
    }
    Ok(short.map_or(Next::Nothing, Next::NoRoom))
}

/// Whether a target fits on both tapes.
enum Room {
    Fits,
    /// Not in the space left on the tape of this copy.
    Short(usize),
    /// Not on a whole tape.
    Never,
}

/// Whether target `id`'s estimate fits in the space left on both tapes.
fn room_for(cat: &Catalog, copies: &[Copy; 2], id: i64) -> Result<Room> {
    for (i, c) in copies.iter().enumerate() {
        let block = c.config.block_size;
        let need = cat.target_estimate(id, block)?;
        let whole = cat.tape_capacity(&c.tape, c.config.tape_capacity)?;
        if whole.is_some_and(|w| need > w - crate::catalog::label_estimate(block)) {
            return Ok(Room::Never);
        }
        let left = cat.space_left(&c.tape, c.config.tape_capacity, true, block)?;
        if left.is_some_and(|l| need > l) {
            return Ok(Room::Short(i));
        }
    }
    Ok(Room::Fits)
}

/// On a library: nothing waiting fits on `c`'s tape, so it is as good as
/// full: marked full, its assigned targets released, its catalogue file written.
fn mark_full(cat: &Catalog, c: &mut Copy) -> Result<()> {
    println!(
        "No target lacking both copies fits in the space left on tape \"{}\": marking it full and moving on.",
        c.tape.name
    );
    cat.mark_tape_full(&c.tape)?;
    cat.release_assigned(&c.tape)?;
    crate::catalogue_file::write_when_full(cat, &mut *c.drive, &c.tape, &c.config);
    Ok(())
}

/// With plain drives: nothing waiting fits on `c`'s tape (exit 43).
fn no_room(c: &Copy) -> anyhow::Error {
    Exit::error(
        ExitCode::TapeFull,
        format!(
            "no target lacking both copies fits in the space left on tape \"{}\" (drive {}): close_tape it, load a \
             new tape of pool {} there, and run again",
            c.tape.name, c.config.drive_name, c.pool
        ),
    )
}

/// Nothing lacks a copy in both pools (exit 40): say what is left for a
/// single-drive run.
fn nothing_left(cat: &Catalog, copies: &[Copy; 2]) -> Result<ExitCode> {
    let mut left = Vec::new();
    for c in copies {
        let n = cat.unassigned_for(&c.tape)?.len() + cat.backups_with_status(c.tape.id, &BackupStatus::Assigned)?.len();
        if n > 0 {
            left.push(format!("{n} targets wait for a copy in pool {} (tape \"{}\")", c.pool, c.tape.name));
        }
    }
    if left.is_empty() {
        println!("Nothing is left to archive in pools {} and {}.", copies[0].pool, copies[1].pool);
    } else {
        println!(
            "No target left lacks a copy in both pools: {}; write them with one drive (activate_tape TAPE, then \
             archive --repeat).",
            left.join("; ")
        );
    }
    Ok(ExitCode::NothingToDo)
}

/// Write `jobs` (one target, a backup on each tape) to both drives from
/// one read, then record each copy that ended well. Err: a copy failed
/// (after the other was recorded). Returns the bytes written per copy.
fn archive_pair(env: Env<'_>, copies: &mut [Copy; 2], jobs: &[Backup; 2], opts: Options) -> Result<u64> {
    let cat = env.cat;
    let mut ns = [TapeFile::LABEL; 2];
    for (i, (c, job)) in copies.iter_mut().zip(jobs).enumerate() {
        if !opts.try_anyway {
            check_fits(cat, &c.tape, job, &c.config)?;
        }
        ns[i] = prepare(cat, c, opts)?;
    }
    println!("Archiving: {}", show(&jobs[0].target));
    let mut histories = [0i64; 2];
    for (i, c) in copies.iter().enumerate() {
        println!(
            "  copy {}: tape \"{}\" (pool {}) file {} in drive {}",
            i + 1,
            c.tape.name,
            c.pool,
            ns[i],
            c.config.drive_name
        );
        histories[i] = cat.history_start("archive", &c.tape.name, ns[i], &jobs[i].target)?;
        drive::last_proof::forget(&c.config.drive);
    }
    let started = Instant::now();
    let [a, b] = copies;
    let results = write_copies(env, &jobs[0], [&mut *a.drive, &mut *b.drive], [ns[0].get(), ns[1].get()], opts.check);
    let mut failed: Option<anyhow::Error> = None;
    let mut bytes = 0;
    for (i, (c, result)) in [a, b].into_iter().zip(results).enumerate() {
        let tape = c.tape.clone();
        let attempt = Attempt {
            tape: &tape,
            job: &jobs[i],
            n: ns[i],
            history: histories[i],
            block_size: c.config.block_size,
            record: true,
        };
        match result {
            Ok(w) => bytes = record_copy(cat, c, &attempt, &w, started)?,
            Err(e) => {
                let e = end_copy(cat, c, &attempt, opts, e);
                if let Some(earlier) = &failed {
                    eprintln!("{earlier:#}");
                }
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(bytes),
    }
}

/// The file number to write on `c`'s tape, proving the tape the first time.
fn prepare(cat: &Catalog, c: &mut Copy, opts: Options) -> Result<TapeFile> {
    let n = label::append_point(cat, &c.tape)?;
    if opts.override_tape_check || c.proven {
        return Ok(n);
    }
    let n = label::prove(cat, &mut *c.drive, &c.tape, n, c.config.block_size, &c.config.drive)?;
    c.proven = true;
    Ok(n)
}

/// Record one copy that is on tape. Returns its bytes.
fn record_copy(cat: &Catalog, c: &mut Copy, a: &Attempt<'_>, w: &Written, started: Instant) -> Result<u64> {
    label::remember(cat, &mut *c.drive, &c.config.drive, &c.tape, Some(a.n.next().get()), "archive");
    cat.mark_recorded(a.job.id, a.n, w.bytes, a.block_size)?;
    cat.history_end(a.history, Some(w.bytes), Outcome::Ok, None)?;
    crate::commands::record_drive_io(cat, a.history, None, w.io)?;
    let gb = w.bytes as f64 / 1e9;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        " -- copy on tape \"{}\" file {}: recorded {gb:.3} GB in {minutes:.1} minutes; rate is {:.3} GB/min; the \
         buffer of drive {} ran dry {} times",
        c.tape.name,
        a.n,
        gb / minutes.max(1e-9),
        c.config.drive_name,
        w.dry_runs
    );
    report_in_flight(c.config.check_in_flight, w);
    Ok(w.bytes)
}

/// End one failed copy as the single-drive archive does (history, tape
/// marked full with its catalogue file); a full tape's assigned targets go
/// back to the pool so another tape of its pool takes them.
fn end_copy(cat: &Catalog, c: &mut Copy, a: &Attempt<'_>, opts: Options, e: anyhow::Error) -> anyhow::Error {
    let e = e.context(format!(
        "the copy of {} on tape \"{}\" file {} (drive {})",
        show(&a.job.target),
        c.tape.name,
        a.n,
        c.config.drive_name
    ));
    let e = end_failed(cat, a, e);
    after_full(cat, &c.config, &c.tape, &mut *c.drive, &e, opts);
    let full = crate::commands::reports::display_status(cat, &c.tape).is_ok_and(|s| s == TapeStatus::Full);
    if full && let Ok(back) = cat.release_assigned(&c.tape) {
        println!("{back} targets assigned to the full tape \"{}\" go back to the unassigned pool.", c.tape.name);
    }
    e
}

/// One drive's side of the stream.
struct Lane<'d> {
    drive: &'d mut dyn Drive,
    n: u64,
    start: Option<u64>,
    buffer: Arc<BlockBuffer>,
    /// The drive's counters after `begin_write`.
    io_before: Option<drive::IoCounters>,
}

/// Stream the target once onto both drives: each copy's result (a failure
/// of the source or of the in-flight check fails both).
fn write_copies(
    env: Env<'_>,
    job: &Backup,
    drives: [&mut dyn Drive; 2],
    ns: [u64; 2],
    check: InFlight,
) -> [Result<Written>; 2] {
    match stream_to_lanes(env, job, drives, ns, check) {
        Ok(r) => r,
        Err(e) => {
            let again = anyhow!("{e:#}");
            [Err(e), Err(again)]
        }
    }
}

fn stream_to_lanes(
    env: Env<'_>,
    job: &Backup,
    drives: [&mut dyn Drive; 2],
    ns: [u64; 2],
    check: InFlight,
) -> Result<[Result<Written>; 2]> {
    let Env { cat, config, remote } = env;
    let (mut checker, child) = start_source(cat, remote, job, check)?;
    let child_pid = child.id();
    let depth = (config.buffer_size / config.block_size).max(2);
    let mut results: [Option<Result<Written>>; 2] = [None, None];
    let mut lanes = begin_lanes(drives, ns, depth, &mut results);
    if lanes.is_empty() {
        kill_source(child_pid);
    }
    let pool = BlockPool::new(config.block_size, 16);
    let (check_tx, check_rx) = sync_channel::<Block>(CHECK_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let reader = ChannelReader::counted(check_rx, Arc::clone(&queued));
    let stopped = AtomicUsize::new(0);
    let lane_count = lanes.len();
    let (written, parsed, source) = thread::scope(|s| {
        let parser = spawn_parser(s, checker.as_mut(), reader, Arc::clone(&queued), check);
        let tee = parser.is_some().then(|| Tee { tx: check_tx, queued: &queued });
        let buffers: Vec<Arc<BlockBuffer>> = lanes.iter().map(|(_, l)| Arc::clone(&l.buffer)).collect();
        let pool = &pool;
        let source = s.spawn(move || read_blocks_to(child, pool, &buffers, tee));
        let writers: Vec<_> = lanes
            .iter_mut()
            .map(|(_, l)| {
                let stopped = &stopped;
                s.spawn(move || {
                    let r = pump_to_drive(&mut *l.drive, &l.buffer, pool, None, job.size_kb as u64 * 1024);
                    if r.is_err() {
                        l.buffer.abandon();
                        if stopped.fetch_add(1, Ordering::SeqCst) + 1 == lane_count {
                            kill_source(child_pid);
                        }
                    }
                    r
                })
            })
            .collect();
        let written: Vec<Result<u64>> = writers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("drive writer thread panicked"))))
            .collect();
        let source = source.join().unwrap_or_else(|_| Err(anyhow!("source reader thread panicked")));
        let parsed = parser.map(|h| h.join().map_err(|_| anyhow!("tar parser thread panicked")));
        (written, parsed, source)
    });
    for ((i, lane), w) in lanes.iter_mut().zip(written) {
        results[*i] = Some(end_lane(lane, w, config.block_size));
    }
    let shared = source.context("the data host's tar failed").and_then(|()| check_verdict(checker.as_mut(), parsed));
    Ok(results.map(|r| with_verdict(r, &shared)))
}

/// Start tape file `n` on each drive: the lanes that began, by copy index
/// (a drive that could not begin has its error in `results`).
fn begin_lanes<'d>(
    drives: [&'d mut dyn Drive; 2],
    ns: [u64; 2],
    depth: usize,
    results: &mut [Option<Result<Written>>; 2],
) -> Vec<(usize, Lane<'d>)> {
    let mut lanes = Vec::new();
    for (i, (drive, n)) in drives.into_iter().zip(ns).enumerate() {
        match drive.begin_write(n).and_then(|()| drive.absolute_position()) {
            Ok(start) => {
                let io_before = drive.io_counters();
                let buffer = Arc::new(BlockBuffer::new(depth, depth / 2));
                lanes.push((i, Lane { drive, n, start, buffer, io_before }))
            }
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    lanes
}

/// One copy's result once the source and the in-flight check are known:
/// their failure fails a copy that was written.
fn with_verdict(copy: Option<Result<Written>>, shared: &Result<Option<(u64, u64, u64)>>) -> Result<Written> {
    let copy = copy.unwrap_or_else(|| Err(anyhow!("the drive was not written")));
    match (shared, copy) {
        (Ok(checked), Ok(w)) => Ok(Written { checked: *checked, ..w }),
        (Err(e), Ok(_)) => Err(anyhow!("{e:#}")),
        (_, Err(e)) => Err(e),
    }
}

/// Close one drive's tape file: its record count checked and a filemark
/// written (also after a failure, to end the partial file cleanly).
fn end_lane(lane: &mut Lane<'_>, written: Result<u64>, block: usize) -> Result<Written> {
    let n = lane.n;
    let counted = written.and_then(|b| check_record_count(&mut *lane.drive, lane.start, b, block, n).map(|()| b));
    match counted {
        Ok(bytes) => {
            lane.drive.write_filemark().with_context(|| format!("writing the filemark after tape file {n}"))?;
            let io = drive::counters::between(lane.io_before, lane.drive.io_counters());
            Ok(Written { bytes, dry_runs: lane.buffer.dry_runs(), checked: None, io })
        }
        Err(e) => {
            let _ = lane.drive.write_filemark();
            Err(e)
        }
    }
}

/// Read the child's stdout into full blocks (the last one zero-padded),
/// tee each to the in-flight check and push it to every drive's buffer
/// still taking blocks; then wait for the child and report its exit.
fn read_blocks_to(
    mut child: RemoteChild,
    pool: &BlockPool,
    buffers: &[Arc<BlockBuffer>],
    tee: Option<Tee<'_>>,
) -> Result<()> {
    let mut open: Vec<&BlockBuffer> = buffers.iter().map(|b| &**b).collect();
    let result = read_source(&mut child, pool, "every drive", |block| {
        if let Some(t) = &tee {
            t.send(&block);
        }
        open.retain(|b| b.push(Arc::clone(&block)));
        !open.is_empty()
    });
    drop(tee);
    for b in buffers {
        b.finish();
    }
    match child.finish() {
        Err(e) => Err(e),
        Ok(()) => result,
    }
}
