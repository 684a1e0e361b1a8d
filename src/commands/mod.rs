//! The operator commands, one module per command family: each opens what it
//! needs (config, catalogue, drive), asks its questions, and hands the work
//! to the core (`catalog`, `drive`, `tarstream`, `label`). This module owns
//! the run: the commands that need no config, the locks a command takes,
//! and the dispatch from the parsed `Command` to its family. Returns the exit
//! code for a run that did not fail.

pub mod archive;
pub mod check;
pub mod clean;
pub mod confirm;
pub mod drive;
pub mod import;
pub mod inventory;
pub mod library;
pub mod recover;
pub mod report;
pub mod reports;
pub mod restore;
pub mod sample;
pub mod scan_tape;
pub mod tapes;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Result;

use crate::catalog::{Catalog, Mode};
use crate::cli::ConfirmWhich;
use crate::cli::{self, Command, Invocation};
use crate::config::Config;
use crate::exit_codes::ExitCode;
use crate::prompt::Prompter;
use crate::{lock, stop};

/// Everything a command needs from the invocation.
pub struct Context_ {
    /// The loaded config.
    pub config: Config,
    /// How questions are answered.
    pub prompter: Prompter,
    /// Machine-readable output.
    pub json: bool,
    /// More detail (`tapes`, `tape_detail`); off for the default command.
    pub verbose: bool,
    /// The second `--drive` of a two-copy `archive` (one copy on each).
    pub second_drive: Option<String>,
}

/// Run one invocation.
pub fn run(inv: Invocation) -> Result<ExitCode> {
    match &inv.command {
        // Rendered first: clap_complete panics on a failed write.
        Some(Command::Completions { shell }) => {
            let mut text = Vec::new();
            cli::write_completions(*shell, &mut text)?;
            crate::out::stdout().write_all(&text)?;
            return Ok(ExitCode::Success);
        }
        Some(Command::Manpage) => {
            let mut text = Vec::new();
            cli::write_manpage(&mut text)?;
            crate::out::stdout().write_all(&text)?;
            return Ok(ExitCode::Success);
        }
        _ => {}
    }
    let second_drive = second_drive(&inv)?;
    let mut config = Config::load(&inv.config_file)?;
    crate::drive::loading::set_load_timeout(config.load_timeout);
    config.select_drive(inv.drives.first().map(String::as_str), inv.command.as_ref().is_some_and(uses_drive))?;
    let (prompter, json, verbose) = (Prompter { yes: inv.yes }, inv.json, inv.verbose);
    let mut ctx = Context_ { config, prompter, json, verbose, second_drive };
    let command = match inv.command {
        Some(c) => c,
        None => {
            ctx.verbose = false;
            default_command(&ctx)?
        }
    };
    let job = is_job(&command);
    if job {
        stop::check()?;
    }
    let _locks = take_locks(&ctx, &command)?;
    let code = dispatch(&ctx, command).map_err(|e| name_catalogue(e, &ctx.config.database_file))?;
    if job && code == ExitCode::Success {
        stop::check()?;
    }
    Ok(code)
}

/// The second `--drive`: only `archive` takes one (one copy on each drive);
/// any other command, or a third drive, is a usage error (exit 2).
fn second_drive(inv: &Invocation) -> Result<Option<String>> {
    if inv.drives.len() < 2 {
        return Ok(None);
    }
    let name = inv.command.as_ref().map_or("the default report".to_string(), command_name);
    if !matches!(inv.command, Some(Command::Archive { .. })) {
        let msg = format!("only archive takes two --drive (one copy on each); {name} uses one");
        return Err(crate::exit_codes::Exit::error(ExitCode::Usage, msg));
    }
    if inv.drives.len() > 2 || inv.drives[0] == inv.drives[1] {
        let msg = format!("archive takes two different --drive (one copy on each), not {}", inv.drives.join(", "));
        return Err(crate::exit_codes::Exit::error(ExitCode::Usage, msg));
    }
    Ok(Some(inv.drives[1].clone()))
}

/// The command's name as typed (`ScanTape { .. }` is `scan_tape`).
fn command_name(c: &Command) -> String {
    let debug = format!("{c:?}");
    let variant = debug.split([' ', '{', '(']).next().unwrap_or_default();
    let mut name = String::new();
    for (i, ch) in variant.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(ch.to_ascii_lowercase());
    }
    name
}

/// Whether the command uses one drive (so with several drives, --drive must pick it).
fn uses_drive(c: &Command) -> bool {
    matches!(
        c,
        Command::Archive { .. }
            | Command::Confirm { .. }
            | Command::Restore { .. }
            | Command::ScanTape { .. }
            | Command::RecoverCatalogue { .. }
            | Command::Drive
            | Command::Load { .. }
            | Command::Unload
            | Command::Clean
    )
}

fn is_job(c: &Command) -> bool {
    matches!(
        c,
        Command::Import { .. }
            | Command::Assign { .. }
            | Command::Archive { .. }
            | Command::Confirm { .. }
            | Command::Restore { .. }
            | Command::ScanTape { .. }
    )
}

/// An sqlite error says what went wrong but not with which file: add it.
fn name_catalogue(e: anyhow::Error, db: &std::path::Path) -> anyhow::Error {
    let from_sqlite = e.chain().any(|c| c.is::<rusqlite::Error>());
    if from_sqlite && !format!("{e:#}").contains(&db.display().to_string()) {
        return e.context(format!("catalogue {}", db.display()));
    }
    e
}

/// One writer per drive and catalogue: the long jobs lock them.
fn take_locks(ctx: &Context_, c: &Command) -> Result<Vec<lock::Lock>> {
    if writes_catalogue(c) && ctx.config.database_file.exists() {
        crate::catalog::refuse_unwritable(&ctx.config.database_file)?;
    }
    let name = match c {
        Command::Archive { .. } => "archive",
        Command::Confirm { .. } => "confirm",
        Command::Restore { .. } => "restore",
        Command::ScanTape { .. } => "scan_tape",
        Command::Import { .. } => return Ok(vec![lock::for_catalogue_job(&ctx.config, "import")?]),
        Command::Requeue { .. } | Command::RemoveTarget { .. } if ctx.config.database_file.exists() => {
            let name = if matches!(c, Command::Requeue { .. }) { "requeue" } else { "remove_target" };
            return Ok(vec![lock::for_catalogue_job(&ctx.config, name)?]);
        }
        // They change assignments or the online tape: never under a running job.
        Command::OpenTape { .. } => return assignment_lock(ctx, "open_tape"),
        Command::CloseTape { .. } => return assignment_lock(ctx, "close_tape"),
        Command::ActivateTape { .. } => return assignment_lock(ctx, "activate_tape"),
        Command::Assign { .. } => return assignment_lock(ctx, "assign"),
        Command::Load { .. } => return drive_lock(ctx, "load"),
        Command::RecoverCatalogue { .. } => return drive_lock(ctx, "recover_catalogue"),
        Command::Unload => return drive_lock(ctx, "unload"),
        Command::Clean => return drive_lock(ctx, "clean"),
        _ => return Ok(Vec::new()),
    };
    if let Some(second) = ctx.second_drive.as_deref() {
        let mut locks = lock::for_drive_job(&ctx.config, name)?;
        locks.push(archive::second_drive_lock(&ctx.config, second)?);
        return Ok(locks);
    }
    if ctx.config.changer.is_some() && name != "scan_tape" {
        // Library jobs on other drives run beside it: the catalogue is shared.
        return lock::for_library_job(&ctx.config, &format!("{name} --drive {}", ctx.config.drive_name));
    }
    lock::for_drive_job(&ctx.config, name)
}

/// The lock of the selected drive alone, for a robot move by hand (a job
/// on that drive must not have its cartridge pulled away).
fn drive_lock(ctx: &Context_, name: &str) -> Result<Vec<lock::Lock>> {
    let what = match &ctx.config.drive {
        crate::drive::DriveSpec::Device(dev) => format!("the drive {}", dev.display()),
        crate::drive::DriveSpec::Emulator { dir, .. } => format!("the emulated tape {}", dir.display()),
    };
    let command = format!("{name} --drive {}", ctx.config.drive_name);
    Ok(vec![lock::acquire(&lock::drive_lock_path(&ctx.config.drive), &what, &command)?])
}

/// Whether the command always changes the catalogue (so a read-only one is
/// refused before the lock and any question).
fn writes_catalogue(c: &Command) -> bool {
    match c {
        Command::Confirm { no_db_update, .. } => !no_db_update,
        Command::Archive { no_db_update, .. } => !no_db_update,
        Command::ScanTape { record_as, adopt } => record_as.is_some() || *adopt,
        _ => matches!(
            c,
            Command::Import { .. }
                | Command::Assign { .. }
                | Command::Requeue { .. }
                | Command::Ack { .. }
                | Command::RemoveTarget { .. }
                | Command::OpenTape { .. }
                | Command::CloseTape { .. }
                | Command::ActivateTape { .. }
        ),
    }
}

/// The catalogue lock that `archive`, `confirm`, `restore` and `import`
/// hold, for a command that changes assignments or the online tape (none
/// when there is no catalogue yet: no job can be running on it).
fn assignment_lock(ctx: &Context_, name: &str) -> Result<Vec<lock::Lock>> {
    if !ctx.config.database_file.exists() {
        return Ok(Vec::new());
    }
    Ok(vec![lock::for_catalogue_job(&ctx.config, name)?])
}

fn default_command(ctx: &Context_) -> Result<Command> {
    let cat = open(ctx, Mode::ReadOnly)?;
    Ok(match cat.online_tape()? {
        Some(_) => Command::Status { tape: None },
        None => Command::Tapes,
    })
}

fn open(ctx: &Context_, mode: Mode) -> Result<Catalog> {
    let cat = Catalog::open(&ctx.config.database_file, mode)?;
    cat.set_copy_pools(&ctx.config.copy_pools);
    Ok(cat)
}

fn dispatch(ctx: &Context_, command: Command) -> Result<ExitCode> {
    let mut out = crate::out::stdout();
    match command {
        Command::Tapes => reports::tapes(&open(ctx, Mode::ReadOnly)?, ctx.verbose, ctx.json, &mut out)?,
        Command::Status { tape } => {
            let cat = open(ctx, Mode::ReadOnly)?;
            reports::status(&cat, &cat.tape_or_online(tape.as_deref())?, ctx.json, &mut out)?;
            if !ctx.json {
                inventory::drive_lines(&ctx.config, &cat, &mut out)?;
            }
        }
        Command::Unassigned => reports::unassigned(&open(ctx, Mode::ReadOnly)?, ctx.json, &mut out)?,
        Command::TapeDetail { tape, file_number } => {
            let cat = open(ctx, Mode::ReadOnly)?;
            let tape = cat.tape_or_online(tape.as_deref())?;
            reports::tape_detail(&cat, &tape, file_number, ctx.verbose, ctx.json, &mut out)?
        }
        Command::WhereIs { name } => {
            reports::where_is(&open(ctx, Mode::ReadOnly)?, &join_words(&name), ctx.json, &mut out)?
        }
        Command::BackupInfo { file_number } => {
            reports::backup_info_at(&open(ctx, Mode::ReadOnly)?, file_number, ctx.json, &mut out)?
        }
        Command::DumpManifest { output_dir } => {
            let output_dir = output_dir.unwrap_or_else(|| PathBuf::from("manifests"));
            let n = reports::dump_manifest(&open(ctx, Mode::ReadOnly)?, &output_dir)?;
            writeln!(out, "Wrote {n} manifests and INDEX.txt to {}", output_dir.display())?;
        }
        Command::OpenTape { name, serial, online, offline, capacity, pool } => {
            let online = if online { Some(true) } else { offline.then_some(false) };
            tapes::open_tape(ctx, &name, serial, online, capacity, &pool)?
        }
        Command::CloseTape { tape, force, no_catalogue_file } => {
            tapes::close_tape(ctx, tape.as_deref(), force, no_catalogue_file)?
        }
        Command::RecoverCatalogue { to } => return recover::run(&ctx.config, &to),
        Command::ActivateTape { name } => tapes::activate_tape(ctx, &name, &mut out)?,
        Command::Assign { tape } => tapes::assign(ctx, tape.as_deref())?,
        Command::Import { listfile, retry, no_scan, rescan } => {
            let opts = import::Options { retry, no_scan, rescan };
            return import::run(&ctx.config, &ctx.prompter, &listfile, opts);
        }
        Command::Archive { repeat, no_db_update, override_tape_check, try_anyway, check_in_flight } => {
            let check = check_in_flight.unwrap_or(ctx.config.check_in_flight);
            let opts = archive::Options { repeat, no_db_update, override_tape_check, try_anyway, check };
            if let Some(second) = ctx.second_drive.as_deref() {
                return archive::run_two(&ctx.config, second, opts);
            }
            return archive::run(&ctx.config, opts);
        }
        Command::Confirm { sample: true, tape, due, seed, .. } => {
            return sample::run(&ctx.config, &sample::Options { tape, due, seed });
        }
        Command::Confirm { which, retry, no_db_update, repeat, .. } => {
            let which = which.unwrap_or(ConfirmWhich::Next);
            return confirm::run(&ctx.config, confirm::Options { which, retry, no_db_update, repeat });
        }
        Command::Restore { target, files, to, overwrite, symlinks_as_is } => {
            let (target, files) = (bytes(&target), files.iter().map(|f| bytes(f)).collect());
            return restore::run(&ctx.config, restore::Options { target, files, to, overwrite, symlinks_as_is });
        }
        Command::Check { days, full_percent } => {
            let holder = lock::holder(&lock::catalogue_lock_path(&ctx.config.database_file));
            return check::run(
                &open(ctx, Mode::ReadOnly)?,
                check::Options {
                    days,
                    full_percent,
                    json: ctx.json,
                    verify_days: ctx.config.verify_days,
                    integrity: true,
                },
                holder.as_deref(),
                &ctx.config,
                &mut out,
            );
        }
        Command::Report { html } => return report::run(ctx, &html, &mut out),
        Command::Log { tape, limit } => {
            check::log(&open(ctx, Mode::ReadOnly)?, tape.as_deref(), limit, ctx.json, &mut out)?
        }
        Command::ScanTape { record_as, adopt } => return scan_tape::run(&ctx.config, record_as.as_deref(), adopt),
        Command::Drive => return drive::run(&ctx.config, ctx.json, &mut out),
        Command::Completions { .. } | Command::Manpage => unreachable!("handled before the config is read"),
        Command::Requeue { file_number, tape, rescan, force } => {
            tapes::requeue(ctx, tape.as_deref(), file_number, rescan, force)?
        }
        Command::Ack { history_id, note } => check::ack(ctx, history_id, note.as_deref())?,
        Command::RemoveTarget { target } => tapes::remove_target(ctx, target.as_bytes())?,
        Command::Load { tape } => library::load(ctx, &tape)?,
        Command::Unload => library::unload(ctx)?,
        Command::Inventory => return inventory::run(ctx, &mut out),
        Command::Clean => return clean::run(ctx),
    }
    out.flush()?;
    Ok(ExitCode::Success)
}

/// The old tool joined the words of `where_is` with spaces.
fn join_words(words: &[OsString]) -> Vec<u8> {
    words.iter().map(|w| w.as_bytes()).collect::<Vec<_>>().join(&b' ')
}

fn bytes(word: &OsStr) -> Vec<u8> {
    word.as_bytes().to_vec()
}

/// Keep the drive's own figures for history row `history` (`run`: the
/// read run, none for a write) and say them: the drive's rate beside the
/// wall-clock one tells a slow drive (both low) from a starved one (the
/// drive's high). Nothing when the drive has no counters.
pub(crate) fn record_drive_io(
    cat: &Catalog,
    history: i64,
    run: Option<i64>,
    io: Option<crate::drive::IoCounters>,
) -> Result<()> {
    let Some(io) = io else { return Ok(()) };
    cat.record_drive_io(history, run, &io)?;
    let rate = io.mb_per_s().map_or_else(|| "unknown (no st statistics)".to_string(), |r| format!("{r:.1} MB/s"));
    println!(" -- the drive's own rate: {rate} over its I/O time; {} recovered errors", io.recovered_errors);
    Ok(())
}
