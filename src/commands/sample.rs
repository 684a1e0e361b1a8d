//! Verification on a schedule: `confirm --sample [--tape T] [--due]`,
//! which proves a tape's label, then reads its first and last tape files
//! and `sample_files` others picked at random (the seed is printed, and
//! `--seed` repeats a choice), checking every md5 in them without changing
//! any backup's status. Each run is recorded in the history (kind
//! `verify`, plus one `verify_file` row per bad tape file, which lets
//! `requeue` give up even a confirmed one); `--due` picks the tapes `check` reports as `verify_due`, and
//! with a library loads each in turn and unloads it after.

use anyhow::{Result, bail};

use crate::catalog::{Backup, BackupStatus, Catalog, Mode, Outcome, Tape, show};
use crate::config::Config;
use crate::drive::{self, Access, Drive, IoCounters};
use crate::exit_codes::{Exit, ExitCode};
use crate::library::LibraryDrive;
use crate::verify_stream::Checker;

/// Options of `confirm --sample`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The tape (default: the online one).
    pub tape: Option<String>,
    /// Sample the tapes due for verification.
    pub due: bool,
    /// Repeat a run's random choice.
    pub seed: Option<u64>,
}

/// Run `confirm --sample`: Success when every sampled tape file matched,
/// Failure naming the bad ones, NothingToDo when no tape is due.
pub fn run(config: &Config, opts: &Options) -> Result<ExitCode> {
    let cat = Catalog::open(&config.database_file, Mode::ReadWrite)?;
    let lib = LibraryDrive::from_config(config)?;
    let seed = opts.seed.unwrap_or_else(time_seed);
    println!("Sample seed: {seed} (tapeop confirm --sample --seed {seed} picks the same tape files again)");
    let tapes = if opts.due {
        due_tapes(config, &cat, lib.is_some())?
    } else {
        vec![cat.tape_or_online(opts.tape.as_deref())?]
    };
    if tapes.is_empty() {
        println!("No tape is due for verification (verify_days = {}).", config.verify_days);
        return Ok(ExitCode::NothingToDo);
    }
    let mut bad: Vec<String> = Vec::new();
    for tape in &tapes {
        let ok = match &lib {
            Some(lib) => {
                let command = format!("confirm --sample --drive {}", lib.name);
                let claim = lib.mount_tape(tape, &config.database_file, &command)?;
                let ok = sample_tape(config, &cat, tape, seed);
                if opts.due {
                    lib.dismount(&command)?;
                }
                drop(claim);
                ok?
            }
            None => sample_tape(config, &cat, tape, seed)?,
        };
        if !ok {
            bad.push(tape.name.clone());
        }
    }
    if bad.is_empty() {
        return Ok(ExitCode::Success);
    }
    Err(Exit::error(
        ExitCode::Failure,
        format!(
            "verification FAILED on tape(s) {} (bad tape files above); tapeop check keeps reporting it",
            bad.join(", ")
        ),
    ))
}

/// The tapes due for verification that this run can read: with a library
/// all of them; with one drive the online tape if it is due, else an error
/// naming the tapes to load.
fn due_tapes(config: &Config, cat: &Catalog, library: bool) -> Result<Vec<Tape>> {
    let due = cat.verification_due(config.verify_days)?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = due.iter().map(|d| d.tape.as_str()).collect();
    if library {
        return names.iter().map(|n| cat.tape_or_online(Some(n))).collect();
    }
    let online = cat.tape_or_online(None).ok();
    match online {
        Some(t) if names.contains(&t.name.as_str()) => Ok(vec![t]),
        _ => Err(Exit::error(
            ExitCode::Failure,
            format!(
                "tape(s) {} are due for verification and none is the online tape: load one, make it online \
                 (tapeop activate_tape NAME) and run tapeop confirm --sample --due again",
                names.join(", ")
            ),
        )),
    }
}

/// Sample `tape` (the loaded one) and record the verification; false when
/// a tape file was bad (each one reported, with the target's other copy).
fn sample_tape(config: &Config, cat: &Catalog, tape: &Tape, seed: u64) -> Result<bool> {
    let backups = on_tape(cat, tape)?;
    if backups.is_empty() {
        bail!("tape \"{}\" has no recorded or confirmed tape files to sample: archive to it first", tape.name);
    }
    let chosen = choose(&backups, config.sample_files as usize, seed);
    let numbers: Vec<String> = chosen.iter().filter_map(|b| b.file_number.map(|n| n.to_string())).collect();
    println!("Sampling tape \"{}\": tape files {}", tape.name, numbers.join(", "));
    let mut d = drive::open(&config.drive, Access::Read, config.block_size)?;
    let proof = crate::label::prove_for_reading(cat, &mut *d, &config.drive, tape)?;
    if let crate::label::ReadProof::Wrong(found) = &proof {
        bail!(
            "refusing to sample: {}; load tape \"{}\"",
            crate::label::mismatch(&tape.name, found.as_ref()),
            tape.name
        );
    }
    let mut errors: Vec<String> = Vec::new();
    let mut read = SampleRead::default();
    for b in &chosen {
        if let Some(e) = check_one(cat, tape, b, &mut *d, &mut read)? {
            eprintln!("{e}");
            errors.push(e);
        }
    }
    crate::label::remember(cat, &mut *d, &config.drive, tape, proof.end_of_data(), "confirm");
    let files = format!("files {}", numbers.join(","));
    let (outcome, error) =
        if errors.is_empty() { (Outcome::Ok, None) } else { (Outcome::Failed, Some(errors.join("; "))) };
    let id = cat.record_verification(&tape.name, &files, Some(read.bytes), outcome, error)?;
    // The sample is one read of the tape: its figures are its tape files' sum.
    super::record_drive_io(cat, id, Some(id), read.io)?;
    if errors.is_empty() {
        println!("Tape \"{}\" verified: {} tape files read, every md5 matched.", tape.name, chosen.len());
    }
    Ok(errors.is_empty())
}

/// The recorded and confirmed backups of `tape` with a tape file, by number.
fn on_tape(cat: &Catalog, tape: &Tape) -> Result<Vec<Backup>> {
    let mut all = cat.backups_with_status(tape.id, &BackupStatus::Recorded)?;
    all.extend(cat.backups_with_status(tape.id, &BackupStatus::Confirmed)?);
    all.retain(|b| b.file_number.is_some());
    all.sort_by_key(|b| b.file_number);
    Ok(all)
}

/// The first and last backups and `extra` others picked with `seed`.
fn choose(backups: &[Backup], extra: usize, seed: u64) -> Vec<Backup> {
    let last = backups.len() - 1;
    let mut middle: Vec<usize> = (1..last).collect();
    let mut state = seed;
    for i in (1..middle.len()).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        middle.swap(i, j);
    }
    let mut picked: Vec<usize> = vec![0];
    picked.extend(middle.into_iter().take(extra));
    if last > 0 {
        picked.push(last);
    }
    picked.sort_unstable();
    picked.into_iter().map(|i| backups[i].clone()).collect()
}

/// One step of splitmix64.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed from the clock.
fn time_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        % 1_000_000_007
}

/// What a sample read over its tape files: the tar bytes, and the sum of
/// the drive's figures (none when a file had none).
#[derive(Debug, Default)]
struct SampleRead {
    bytes: u64,
    io: Option<IoCounters>,
    files: usize,
}

impl SampleRead {
    fn add(&mut self, bytes: Option<u64>, io: Option<IoCounters>) {
        self.bytes += bytes.unwrap_or(0);
        self.io = match (self.files, self.io, io) {
            (0, _, io) => io,
            (_, Some(sum), Some(io)) => Some(sum.plus(&io)),
            _ => None,
        };
        self.files += 1;
    }
}

/// Read one tape file and check its md5s: None when it matched, else a line
/// naming the target, the tape file and the other copy. What was read is
/// added to `read`.
fn check_one(
    cat: &Catalog,
    tape: &Tape,
    b: &Backup,
    d: &mut dyn Drive,
    read: &mut SampleRead,
) -> Result<Option<String>> {
    let n = b.tape_file()?;
    println!("Reading tape file {n} ({})...", show(&b.target));
    let mut checker = Checker::for_backup(cat, b)?;
    let (result, io) = super::confirm::read_and_check(d, n.get(), &mut checker);
    read.add(result.as_ref().ok().copied(), io);
    let what = match result {
        Err(e) => format!("{e:#}"),
        Ok(_) => {
            checker.finish();
            match checker.problems.first() {
                None => return Ok(None),
                Some(p) => format!("{} differences, first: {p}", checker.problems.len()),
            }
        }
    };
    cat.record_bad_sample(&tape.name, n, &b.target, &what)?;
    Ok(Some(format!(
        "BAD: target {} on tape \"{}\" file {n}: {what}; {}",
        show(&b.target),
        tape.name,
        other_copy(cat, tape, b)?
    )))
}

/// Where else the target of `b` is, and what to do.
fn other_copy(cat: &Catalog, tape: &Tape, b: &Backup) -> Result<String> {
    let copies = cat.target_copies(b.target_id)?;
    let other = copies.iter().find(|c| c.tape != tape.name && c.file_number.is_some());
    let n = b.tape_file()?;
    let todo = format!(
        "tapeop requeue {n} --tape {} gives this tape file up (it stays, marked failed) and archives the target again",
        tape.name
    );
    Ok(match other {
        Some(c) => format!(
            "the other copy is on tape \"{}\" file {} ({}); {todo}",
            c.tape,
            c.file_number.map(|f| f.to_string()).unwrap_or_default(),
            c.status,
        ),
        None => format!("there is no other copy; {todo}"),
    })
}
