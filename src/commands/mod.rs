//! The operator commands, one module per command family: each opens what it
//! needs (config, catalogue, drive), asks its questions, and hands the work
//! to the core (`catalog`, `drive`, `tarstream`, `label`). This module owns
//! the run: the commands that need no config, the locks a command takes,
//! and the dispatch from the parsed `Command` to its family. Returns the exit
//! code for a run that did not fail.

pub mod archive;
pub mod check;
pub mod confirm;
pub mod drive;
pub mod import;
pub mod reports;
pub mod restore;
pub mod scan_tape;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::catalog::{Catalog, HistoryRef, Mode, show};
use crate::cli::{self, Command, Invocation};
use crate::config::Config;
use crate::exit_codes::{Exit, ExitCode};
use crate::prompt::Prompter;
use crate::{lock, stop};
use confirm::ConfirmWhich;

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
    let config = Config::load(&inv.config_file)?;
    let mut ctx = Context_ { config, prompter: Prompter { yes: inv.yes }, json: inv.json, verbose: inv.verbose };
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
        _ => return Ok(Vec::new()),
    };
    lock::for_drive_job(&ctx.config, name)
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
    Catalog::open(&ctx.config.database_file, mode)
}

fn dispatch(ctx: &Context_, command: Command) -> Result<ExitCode> {
    let mut out = crate::out::stdout();
    match command {
        Command::Tapes => reports::tapes(&open(ctx, Mode::ReadOnly)?, ctx.verbose, ctx.json, &mut out)?,
        Command::Status { tape } => {
            let cat = open(ctx, Mode::ReadOnly)?;
            reports::status(&cat, &cat.tape_or_online(tape.as_deref())?, ctx.json, &mut out)?
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
        Command::BackupInfo { file_number } => backup_info(ctx, file_number, &mut out)?,
        Command::DumpManifest { output_dir } => {
            let output_dir = output_dir.unwrap_or_else(|| PathBuf::from("manifests"));
            let n = reports::dump_manifest(&open(ctx, Mode::ReadOnly)?, &output_dir)?;
            writeln!(out, "Wrote {n} manifests and INDEX.txt to {}", output_dir.display())?;
        }
        Command::OpenTape { name, serial, online, offline, capacity } => {
            let online = if online { Some(true) } else { offline.then_some(false) };
            open_tape(ctx, &name, serial, online, capacity)?
        }
        Command::CloseTape { tape, force } => close_tape(ctx, tape.as_deref(), force)?,
        Command::ActivateTape { name } => {
            let cat = open(ctx, Mode::ReadWrite)?;
            let tape = cat.require_tape(&name)?;
            cat.activate_tape(&tape)?;
            writeln!(out, "Tape \"{}\" is now online.", tape.name)?;
        }
        Command::Assign { tape } => assign(ctx, tape.as_deref())?,
        Command::Import { listfile, retry, no_scan, rescan } => {
            let opts = import::Options { retry, no_scan, rescan };
            return import::run(&ctx.config, &ctx.prompter, &listfile, opts);
        }
        Command::Archive { repeat, no_db_update, override_tape_check, try_anyway, check_in_flight } => {
            let check = check_in_flight.unwrap_or(ctx.config.check_in_flight);
            let opts = archive::Options { repeat, no_db_update, override_tape_check, try_anyway, check };
            return archive::run(&ctx.config, opts);
        }
        Command::Confirm { which, retry, no_db_update, repeat } => {
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
                check::Options { days, full_percent, json: ctx.json },
                holder.as_deref(),
                &mut out,
            );
        }
        Command::Log { tape, limit } => {
            reports::log(&open(ctx, Mode::ReadOnly)?, tape.as_deref(), limit, ctx.json, &mut out)?
        }
        Command::ScanTape { record_as, adopt } => return scan_tape::run(&ctx.config, record_as.as_deref(), adopt),
        Command::Drive => return drive::run(&ctx.config, &mut out),
        Command::Completions { .. } | Command::Manpage => unreachable!("handled before the config is read"),
        Command::Requeue { file_number, tape, rescan, force } => {
            requeue(ctx, tape.as_deref(), file_number, rescan, force)?
        }
        Command::Ack { history_id, note } => ack(ctx, history_id, note.as_deref())?,
        Command::RemoveTarget { target } => remove_target(ctx, target.as_bytes())?,
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

fn backup_info(ctx: &Context_, file_number: Option<i64>, out: &mut dyn Write) -> Result<()> {
    let cat = open(ctx, Mode::ReadOnly)?;
    let tape = cat.tape_or_online(None)?;
    let backups = match file_number {
        Some(n) => vec![cat.backup_at(tape.id, n)?.with_context(|| {
            format!("tape \"{}\" has no backup at file number {n} (tapeop tape_detail lists them)", tape.name)
        })?],
        None => cat.written_backups(tape.id, None)?,
    };
    reports::backup_info(&cat, &tape, &backups, ctx.json, out)
}

fn open_tape(
    ctx: &Context_,
    name: &str,
    serial: Option<String>,
    online: Option<bool>,
    capacity: Option<u64>,
) -> Result<()> {
    crate::catalog::check_tape_name(name)?;
    // A new catalogue is created only once the answers are in.
    let existing = if ctx.config.database_file.exists() { Some(open(ctx, Mode::Create)?) } else { None };
    if let Some(cat) = &existing {
        if let Some(t) = cat.tape_by_name(name)? {
            bail!(
                "a tape named {name:?} already exists (id {}, {}); use activate_tape to bring it online",
                t.id,
                t.status
            );
        }
        if let Some(s) = serial.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            cat.check_serial_free(s)?;
        }
    }
    if existing.as_ref().map(Catalog::online_tape).transpose()?.flatten().is_none() {
        println!("No tape marked as active.");
    }
    println!("This action will create a new tape entry with name \"{name}\".");
    ctx.prompter.proceed("Do you wish to proceed?")?;
    let serial = match serial {
        Some(s) => s,
        None => ctx.prompter.text("\nSerial number? [blank is ok]")?,
    };
    let online = match online {
        Some(o) => o,
        None => ctx.prompter.yes_no("Put the tape online now?")?,
    };
    println!("Creating tape entry...");
    let cat = match existing {
        Some(cat) => cat,
        None => open(ctx, Mode::Create)?,
    };
    let serial = Some(serial.trim()).filter(|s| !s.is_empty());
    let tape = cat.create_tape(name, serial, online)?;
    if let Some(bytes) = capacity.or(ctx.config.tape_capacity) {
        cat.set_capacity(&tape, bytes)?;
        println!("Capacity of \"{name}\": {:.3} GB.", bytes as f64 / 1e9);
    }
    Ok(())
}

fn close_tape(ctx: &Context_, name: Option<&str>, force: bool) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let tape = cat.tape_or_online(name)?;
    let recorded = cat.tape_tally(tape.id, "recorded")?;
    if recorded.count > 0 && !force {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "tape \"{}\" has {} recorded tape files not yet confirmed: run tapeop confirm --repeat first, or close_tape --force",
                tape.name, recorded.count
            ),
        ));
    }
    println!("This action will apply to tape \"{}\".\n", tape.name);
    println!("This action will mark the tape as full and dissociate all non-archived targets from this tape.\n");
    ctx.prompter.proceed("Do you wish to proceed?")?;
    let n = cat.close_tape(&tape)?;
    println!("Found {n} jobs to dissociate.");
    Ok(())
}

fn assign(ctx: &Context_, name: Option<&str>) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let tape = cat.tape_or_online(name)?;
    let status = reports::display_status(&cat, &tape)?;
    if status != "open" {
        bail!(
            "tape \"{}\" is {status}: only an open tape takes new targets (close_tape it, then open_tape a new one)",
            tape.name
        );
    }
    let ids = cat.unassigned_targets()?;
    println!("\nThere are {} unassigned targets.\n", ids.len());
    if ids.is_empty() {
        return Err(Exit::error(ExitCode::NothingToDo, "nothing to assign"));
    }
    let block = ctx.config.block_size;
    let (fit, left_out) = match cat.space_left(&tape, ctx.config.tape_capacity, true, block)? {
        Some(left) => fitting(&cat, &ids, left, block)?,
        None => (ids, Vec::new()),
    };
    if let Some(whole) = cat.tape_capacity(&tape, ctx.config.tape_capacity)? {
        larger_than_a_tape(&cat, &left_out, whole - crate::catalog::label_estimate(block), block)?;
    }
    if !left_out.is_empty() {
        println!(
            "{} targets fit in the space left on tape \"{}\"; {} do not and stay unassigned.\n",
            fit.len(),
            tape.name,
            left_out.len()
        );
    }
    if fit.is_empty() {
        return Err(Exit::error(
            ExitCode::TapeFull,
            format!("no unassigned target fits in the space left on tape \"{}\"", tape.name),
        ));
    }
    ctx.prompter.proceed(&format!("Do you wish to assign them to tape \"{}\"?", tape.name))?;
    cat.assign(&tape, &fit)?;
    println!("Done.\n");
    Ok(())
}

/// Name the targets that need more than a whole tape of `whole` bytes:
/// no tape of this kind takes them.
fn larger_than_a_tape(cat: &Catalog, ids: &[i64], whole: i64, block: usize) -> Result<()> {
    for &id in ids {
        let need = cat.target_estimate(id, block)?;
        if need > whole {
            println!(
                "{} needs about {:.3} GB, more than a whole tape ({:.3} GB): it cannot be archived on tapes of this kind; import its subdirectories as targets instead.",
                crate::catalog::show(&cat.target(id)?.name),
                need as f64 / 1e9,
                whole as f64 / 1e9
            );
        }
    }
    Ok(())
}

/// Split targets (in name order) into those that fit in `left` bytes and
/// those that do not.
fn fitting(cat: &Catalog, ids: &[i64], mut left: i64, block: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    let (mut fit, mut out) = (Vec::new(), Vec::new());
    for &id in ids {
        let need = cat.target_estimate(id, block)?;
        if need <= left {
            left -= need;
            fit.push(id);
        } else {
            out.push(id);
        }
    }
    Ok((fit, out))
}

/// `requeue N`: the target of tape file N, which failed confirm, goes back
/// to the unassigned pool; the tape file stays, marked `failed`.
fn requeue(ctx: &Context_, name: Option<&str>, n: i64, rescan: bool, force: bool) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let tape = cat.tape_or_online(name)?;
    let backup = cat.backup_at(tape.id, n)?.with_context(|| {
        format!("tape \"{}\" has no tape file {n} in the catalogue (tapeop tape_detail lists them)", tape.name)
    })?;
    let target = show(&backup.target);
    let refuse = |why: String| Err(Exit::error(ExitCode::Failure, format!("{why}; nothing was requeued")));
    match backup.status.as_str() {
        "recorded" => {}
        "failed" => {
            return refuse(format!(
                "tape file {n} of \"{}\" ({target}) was already requeued: tapeop unassigned and status show its target",
                tape.name
            ));
        }
        "confirmed" => {
            return refuse(format!(
                "tape file {n} of \"{}\" ({target}) is confirmed: its copy is good, there is nothing to requeue",
                tape.name
            ));
        }
        other => {
            return refuse(format!(
                "tape file {n} of \"{}\" ({target}) is {other}, not on tape: close_tape dissociates assigned targets",
                tape.name
            ));
        }
    }
    let failure = cat.confirm_failure(&tape.name, n)?;
    let note = match (&failure, force) {
        (Some(f), _) => format!("confirm of {} failed; target back in the unassigned pool", f.started),
        (None, true) => "never failed confirm (--force); target back in the unassigned pool".to_string(),
        (None, false) => {
            return refuse(format!(
                "tape file {n} of \"{}\" ({target}) has not failed confirm: run tapeop confirm {n} first \
                 (requeue --force gives it up unconfirmed)",
                tape.name
            ));
        }
    };
    println!("Tape file {n} of \"{}\" ({target}) stays on tape, marked failed.", tape.name);
    println!("Its target goes back to the unassigned pool: assign and archive put it on a tape again.\n");
    ctx.prompter.proceed("Do you wish to proceed?")?;
    cat.requeue(&tape, &backup, &note)?;
    println!("Requeued {target}.");
    if rescan {
        import::rescan_target(&cat, &ctx.config, backup.target_id, &backup.target).with_context(|| {
            format!("{target} is requeued but its rescan failed; tapeop import LIST --rescan scans it again")
        })?;
    }
    Ok(())
}

/// `ack ID`: acknowledge the alarm of history row ID.
fn ack(ctx: &Context_, id: i64, note: Option<&str>) -> Result<()> {
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

/// `remove_target TARGET`: forget a target never written to tape.
fn remove_target(ctx: &Context_, name: &[u8]) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let shown = show(name);
    let target = cat.target_by_name(name)?.with_context(|| {
        format!("no target {shown} in the catalogue (give the path exactly as imported; tapeop check lists targets never scanned)")
    })?;
    let backups = cat.target_backups(target.id)?;
    if let Some((tape, n, status)) = backups.iter().find(|b| !matches!(b.2.as_str(), "assigned" | "new")) {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "target {shown} has tape file {n} on tape \"{tape}\" ({status}): a target on tape is never removed; nothing was removed"
            ),
        ));
    }
    println!("This action will remove target {shown} and its files from the catalogue (it was never written to tape).");
    ctx.prompter.proceed("Do you wish to proceed?")?;
    let files = cat.remove_target(&target)?;
    println!("Removed target {shown} ({files} files).");
    if let Some(parent) = target.parent_id {
        let parent = cat.target(parent)?;
        println!(
            "Its directory lies inside target {}: tapeop import LIST --rescan adds it there while that target is not on tape.",
            show(&parent.name)
        );
    }
    Ok(())
}
