//! The tape administration commands: `open_tape`, `close_tape`,
//! `activate_tape`, `assign`, `requeue` and `remove_target`. Each asks its
//! questions and hands the change to the catalogue.

use std::io::Write;

use anyhow::{Context, Result, bail};

use super::{Context_, import, open, reports};
use crate::catalog::{Backup, BackupStatus, Catalog, Mode, Tape, TapeStatus, legacy_file_number, show};
use crate::catalogue_file;
use crate::exit_codes::{Exit, ExitCode};
use crate::tape_file::TapeFile;
use crate::{drive, label};

/// `open_tape NAME`: create a tape entry (and the catalogue, if there is none).
pub fn open_tape(
    ctx: &Context_,
    name: &str,
    serial: Option<String>,
    online: Option<bool>,
    capacity: Option<u64>,
    pool: &str,
) -> Result<()> {
    crate::catalog::check_tape_name(name)?;
    crate::catalog::check_pool_name(pool)?;
    if let Some(s) = &serial {
        refuse_cleaning(s)?;
    }
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
    if let Some(s) = serial {
        refuse_cleaning(s)?;
    }
    let tape = cat.create_tape(name, serial, online)?;
    if pool != crate::catalog::DEFAULT_POOL {
        cat.set_tape_pool(&tape, pool)?;
    }
    if let Some(bytes) = capacity.or(ctx.config.tape_capacity) {
        cat.set_capacity(&tape, bytes)?;
        println!("Capacity of \"{name}\": {:.3} GB.", bytes as f64 / 1e9);
    }
    Ok(())
}

/// A cleaning cartridge's barcode (`CLN...`) never names a data tape.
fn refuse_cleaning(serial: &str) -> Result<()> {
    let serial = serial.trim();
    if crate::changer::is_cleaning(serial) {
        return Err(Exit::error(ExitCode::Failure, format!("{serial} is a cleaning cartridge: it cannot hold data")));
    }
    Ok(())
}

/// `close_tape [TAPE]`: mark the tape full and dissociate its targets not
/// on tape; a tape with data and no catalogue file gets one, written as
/// its last tape file (the drive must hold it, unless `no_catalogue_file`).
pub fn close_tape(ctx: &Context_, name: Option<&str>, force: bool, no_catalogue_file: bool) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let tape = cat.tape_or_online(name)?;
    let recorded = cat.tape_tally(tape.id, &BackupStatus::Recorded)?;
    if recorded.count > 0 && !force {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "tape \"{}\" has {} recorded tape files not yet confirmed: run tapeop confirm --repeat first, or close_tape --force",
                tape.name, recorded.count
            ),
        ));
    }
    let write_file = !no_catalogue_file && needs_catalogue_file(&cat, &tape)?;
    println!("This action will apply to tape \"{}\".\n", tape.name);
    println!("This action will mark the tape as full and dissociate all non-archived targets from this tape.\n");
    if write_file {
        println!("It then writes the tape's catalogue file as its last tape file: the drive must hold the tape.\n");
    }
    ctx.prompter.proceed("Do you wish to proceed?")?;
    if !write_file {
        let n = cat.close_tape(&tape)?;
        println!("Found {n} jobs to dissociate.");
        return Ok(());
    }
    let (mut drive, at, _claim) = tape_in_drive(ctx, &cat, &tape).map_err(|e| not_in_drive(&tape, e))?;
    let n = cat.close_tape(&tape)?;
    println!("Found {n} jobs to dissociate.");
    drive::last_proof::forget(&ctx.config.drive);
    catalogue_file::write(&cat, &mut *drive, &tape, at, ctx.config.block_size).map_err(|e| {
        Exit::error(
            ExitCode::Failure,
            format!(
                "tape \"{}\" is closed, but its catalogue file could not be written: {e:#}; close_tape {} again \
                 writes it (or leave it without one)",
                tape.name, tape.name
            ),
        )
    })
}

/// Whether closing `tape` writes its catalogue file: it has tape files
/// and none yet (a tape with nothing on it needs none).
fn needs_catalogue_file(cat: &Catalog, tape: &crate::catalog::Tape) -> Result<bool> {
    Ok(cat.append_point(tape.id)? != TapeFile::LABEL && cat.tape_catalogue_file(tape.id)?.is_none())
}

/// The drive holding `tape`, proven, and the tape file its catalogue file
/// goes to (a library loads it first and claims it: the lock is returned).
fn tape_in_drive(
    ctx: &Context_,
    cat: &Catalog,
    tape: &crate::catalog::Tape,
) -> Result<(Box<dyn drive::Drive>, TapeFile, Option<crate::lock::Lock>)> {
    let config = &ctx.config;
    let claim = match crate::library::LibraryDrive::from_config(config)? {
        Some(lib) => Some(lib.mount_tape(tape, &config.database_file, "close_tape")?),
        None => None,
    };
    let mut d = drive::open(&config.drive, drive::Access::Write, config.block_size)?;
    let n = label::append_point(cat, tape)?;
    let n = match label::prove(cat, &mut *d, tape, n, config.block_size, &config.drive) {
        Ok(n) => n,
        // An earlier close_tape left its catalogue file unfinished: write it again.
        Err(_) if catalogue_file::unfinished_at(&mut *d, cat, tape, n).unwrap_or(false) => {
            println!(
                "Tape file {n} holds the unfinished catalogue file of an interrupted close_tape; writing it again."
            );
            n
        }
        Err(e) => return Err(e),
    };
    Ok((d, n, claim))
}

/// The drive does not hold `tape` (or could not prove it): refused, with
/// the way to close it without a catalogue file.
fn not_in_drive(tape: &crate::catalog::Tape, e: anyhow::Error) -> anyhow::Error {
    Exit::error(
        ExitCode::Failure,
        format!(
            "close_tape writes the catalogue file of tape \"{}\" onto it, but the drive does not hold it: {e:#}; \
             tape \"{}\" was not closed: load it and run again, or close it without one: tapeop close_tape {} --no-catalogue-file",
            tape.name, tape.name, tape.name
        ),
    )
}

/// `activate_tape NAME`: bring a tape online.
pub fn activate_tape(ctx: &Context_, name: &str, out: &mut dyn Write) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let tape = cat.require_tape(name)?;
    cat.activate_tape(&tape)?;
    writeln!(out, "Tape \"{}\" is now online.", tape.name)?;
    Ok(())
}

/// `assign [TAPE]`: assign the unassigned targets that fit to an open tape.
pub fn assign(ctx: &Context_, name: Option<&str>) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let tape = cat.tape_or_online(name)?;
    let status = reports::display_status(&cat, &tape)?;
    if status != TapeStatus::Open {
        bail!(
            "tape \"{}\" is {status}: only an open tape takes new targets (close_tape it, then open_tape a new one)",
            tape.name
        );
    }
    let ids = cat.unassigned_for(&tape)?;
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

/// `requeue N`: the target of tape file N, which failed confirm (or a
/// sample), goes back to the unassigned pool; the tape file stays, marked
/// `failed`.
pub fn requeue(ctx: &Context_, name: Option<&str>, n: TapeFile, rescan: bool, force: bool) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let tape = cat.tape_or_online(name)?;
    let backup = cat.backup_at(tape.id, n)?.with_context(|| {
        format!("tape \"{}\" has no tape file {n} in the catalogue (tapeop tape_detail lists them)", tape.name)
    })?;
    let note = requeue_note(&cat, &tape, &backup, n, force)?;
    let target = show(&backup.target);
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

/// Why tape file `n` may be given up (the history's note), or the refusal:
/// a recorded tape file whose last confirm or a later sample failed (or any
/// recorded one with `force`); a confirmed one only once a sample found it
/// bad (its copy was proven once, so not `force` either).
fn requeue_note(cat: &Catalog, tape: &Tape, backup: &Backup, n: TapeFile, force: bool) -> Result<String> {
    let target = show(&backup.target);
    let refuse = |why: String| Err(Exit::error(ExitCode::Failure, format!("{why}; nothing was requeued")));
    match &backup.status {
        BackupStatus::Recorded | BackupStatus::Confirmed => {}
        BackupStatus::Failed => {
            return refuse(format!(
                "tape file {n} of \"{}\" ({target}) was already requeued: tapeop unassigned and status show its target",
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
    let confirmed = backup.status == BackupStatus::Confirmed;
    if !confirmed && let Some(f) = cat.confirm_failure(&tape.name, n)? {
        return Ok(format!("confirm of {} failed; target back in the unassigned pool", f.started));
    }
    if let Some(f) = cat.sample_failure(&tape.name, n)? {
        if confirmed {
            println!(
                "Tape file {n} of \"{}\" ({target}) was confirmed, but the sample of {} found it bad.",
                tape.name, f.started
            );
        }
        return Ok(format!(
            "sample of {} found it bad (history id {}); target back in the unassigned pool",
            f.started, f.history_id
        ));
    }
    if confirmed {
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "tape file {n} of \"{}\" ({target}) is confirmed and no sample found it bad since: its copy is \
                 good, there is nothing to requeue (tapeop confirm --sample --tape {} reads it again)",
                tape.name, tape.name
            ),
        ));
    }
    if force {
        return Ok("never failed confirm (--force); target back in the unassigned pool".to_string());
    }
    refuse(format!(
        "tape file {n} of \"{}\" ({target}) has not failed confirm: run tapeop confirm {n} first \
         (requeue --force gives it up unconfirmed)",
        tape.name
    ))
}

/// `remove_target TARGET`: forget a target never written to tape.
pub fn remove_target(ctx: &Context_, name: &[u8]) -> Result<()> {
    let cat = open(ctx, Mode::ReadWrite)?;
    let shown = show(name);
    let target = cat.target_by_name(name)?.with_context(|| {
        format!("no target {shown} in the catalogue (give the path exactly as imported; tapeop check lists targets never scanned)")
    })?;
    let backups = cat.target_backups(target.id)?;
    if let Some((tape, n, status)) = backups.iter().find(|b| !matches!(b.2, BackupStatus::Assigned | BackupStatus::New))
    {
        let n = legacy_file_number(*n);
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
