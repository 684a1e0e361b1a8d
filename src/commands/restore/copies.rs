//! `restore` of a target that has several copies on tape (with
//! `copy_pools`, one per pool): the order copies are tried in (the online
//! tape's first, then confirmed before recorded), loading each in turn on a
//! library, going on to the next copy when one fails its md5 or cannot be
//! read (saying so), and naming the tape the files came from. A target with
//! one copy never comes here: its restore is as it always was.

use std::collections::HashSet;
use std::fs;

use anyhow::{Context, Result};

use super::{Counts, Located, Options, end_history, restore_target, verdict};
use super::{Selection, show};
use crate::catalog::Catalog;
use crate::changer::Location;
use crate::config::Config;
use crate::exit_codes::{Exit, ExitCode};
use crate::library::LibraryDrive;

/// The copies of `target` to try, in order, when it has more than one on tape.
pub(super) fn several(cat: &Catalog, target: &[u8]) -> Result<Option<Vec<Located>>> {
    let Some(target_id) = cat.target_id_by_name(target)? else { return Ok(None) };
    let sources = cat.restore_sources(target_id)?;
    if sources.len() < 2 {
        return Ok(None);
    }
    let tapes = cat.tapes()?;
    let mut copies = Vec::new();
    for s in sources {
        let (Some(tape), Some(file_number)) = (tapes.iter().find(|t| t.id == s.tape_id), s.file_number) else {
            continue;
        };
        copies.push(Located { target_id, target: target.to_vec(), tape: tape.clone(), file_number });
    }
    if copies.len() < 2 {
        return Ok(None);
    }
    copies.sort_by_key(|c| !c.tape.online);
    Ok(Some(copies))
}

/// On a library: the copy whose cartridge is already in this drive first
/// (no robot move), the others in their order.
fn in_drive_first(lib: &LibraryDrive, mut copies: Vec<Located>) -> Result<Vec<Located>> {
    let status = lib.changer.status()?;
    let here =
        |c: &Located| !c.tape.serial.is_empty() && status.locate(&c.tape.serial) == Some(Location::Drive(lib.index));
    copies.sort_by_key(|c| !here(c));
    Ok(copies)
}

/// "tape "T" file N (pool P)".
fn name_copy(cat: &Catalog, loc: &Located) -> Result<String> {
    Ok(format!("tape \"{}\" file {} (pool {})", loc.tape.name, loc.file_number, cat.tape_pool(&loc.tape)?))
}

/// Restore from the first copy that reads back whole.
pub(super) fn run(
    config: &Config,
    cat: &Catalog,
    writable: bool,
    copies: Vec<Located>,
    opts: &Options,
) -> Result<ExitCode> {
    let library = LibraryDrive::from_config(config)?;
    let copies = match &library {
        Some(lib) => in_drive_first(lib, copies)?,
        None => copies,
    };
    if library.is_none() && !copies[0].tape.online {
        return Err(none_online(cat, &copies)?);
    }
    fs::create_dir_all(&opts.to).with_context(|| format!("cannot create the destination {}", opts.to.display()))?;
    let mut written = HashSet::new();
    let mut failed = Vec::new();
    for loc in &copies {
        let _claim = match &library {
            Some(lib) => {
                match lib.mount_tape(&loc.tape, &config.database_file, &format!("restore --drive {}", lib.name)) {
                    Ok(claim) => Some(claim),
                    Err(e) => {
                        failed.push(said_failed(cat, loc, &format!("{e:#}"))?);
                        continue;
                    }
                }
            }
            None if !loc.tape.online => continue,
            None => None,
        };
        let why = match attempt(config, cat, writable, loc, opts, &mut written)? {
            Ok((counts, unmatched)) => {
                println!("The files came from the copy on {}.", name_copy(cat, loc)?);
                return verdict(loc, &opts.to, &counts, &unmatched);
            }
            Err(why) => why,
        };
        failed.push(said_failed(cat, loc, &why)?);
    }
    Err(none_worked(cat, &copies, &failed, library.is_some())?)
}

/// A copy read back whole (its counts and the names that matched nothing),
/// or why it failed.
type Attempt = std::result::Result<(Counts, Vec<Vec<u8>>), String>;

/// One restore from `loc`, with its history row: the counts when it read
/// back whole and every md5 matched, else why this copy failed.
fn attempt(
    config: &Config,
    cat: &Catalog,
    writable: bool,
    loc: &Located,
    opts: &Options,
    written: &mut HashSet<Vec<u8>>,
) -> Result<Attempt> {
    let selection = Selection::new(&loc.target, &opts.files)?;
    let history = match writable {
        true => Some(cat.history_start("restore", &loc.tape.name, loc.file_number, &loc.target)?),
        false => None,
    };
    let outcome = restore_target(config, cat, loc, selection, opts, written);
    if let Some(id) = history {
        end_history(cat, id, &outcome)?;
    }
    Ok(match outcome {
        Ok((counts, _)) if counts.mismatches > 0 => Err(format!("{} md5 mismatches", counts.mismatches)),
        Ok(done) => Ok(done),
        Err(e) => Err(format!("{e:#}")),
    })
}

/// Say that the copy at `loc` failed and why; returns its description.
fn said_failed(cat: &Catalog, loc: &Located, why: &str) -> Result<String> {
    let copy = name_copy(cat, loc)?;
    eprintln!("tapeop: the copy on {copy} failed ({why}); trying the next copy");
    Ok(copy)
}

/// No copy is on the online tape, and there is no library to load one.
fn none_online(cat: &Catalog, copies: &[Located]) -> Result<anyhow::Error> {
    let online = match cat.online_tape()? {
        Some(t) => format!("the online tape is \"{}\"", t.name),
        None => "no tape is online".to_string(),
    };
    let list = copies.iter().map(|c| name_copy(cat, c)).collect::<Result<Vec<_>>>()?.join(", ");
    Ok(Exit::error(
        ExitCode::Failure,
        format!(
            "{} has copies on {list}, but {online}: load one of them and run `tapeop activate_tape NAME` \
             (with emulator_dir, point it at that tape's directory first), then restore again; nothing was restored",
            show(&copies[0].target)
        ),
    ))
}

/// Every copy tried failed; without a library, name the copies left to load.
fn none_worked(cat: &Catalog, copies: &[Located], failed: &[String], library: bool) -> Result<anyhow::Error> {
    let mut left = Vec::new();
    for c in copies.iter().filter(|c| !library && !c.tape.online) {
        left.push(name_copy(cat, c)?);
    }
    let target = show(&copies[0].target);
    let text = if left.is_empty() {
        format!("restore of {target} failed: no copy read back whole (tried {})", failed.join(", "))
    } else {
        let first = &copies.iter().find(|c| !c.tape.online).map(|c| c.tape.name.clone()).unwrap_or_default();
        format!(
            "restore of {target} from {} failed; the other copy is on {}: load tape \"{first}\", run \
             `tapeop activate_tape {first}` (with emulator_dir, point it at that tape's directory first), then \
             restore again",
            failed.join(", "),
            left.join(", ")
        )
    };
    Ok(Exit::error(ExitCode::Failure, text))
}
