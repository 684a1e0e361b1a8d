//! `archive` on a tape library, unattended: the run on one drive picks the
//! tape it needs (the one in its drive when that still has work or room,
//! else a tape whose assigned targets wait, else an open tape with room
//! that no other drive holds), claims it so no other run takes it, has the
//! robot load it, writes its assigned targets and then takes unassigned
//! targets itself (each assigned to this tape as it starts, when it fits
//! the space left), and when the tape fills marks it full, puts what was
//! still assigned to it back in the pool, unloads it and goes on with the
//! next. It ends when nothing is left (exit 40) or when no tape with room
//! is left in the library (exit 43, naming what is needed). With
//! `--repeat`, a drive that asks for cleaning between two targets is
//! cleaned (`commands::clean`) and the same tape loaded back.

use anyhow::{Context, Result};

use super::{Env, Options, archive_one};
use crate::catalog::{Backup, BackupStatus, Catalog, Mode, Tape, TapeStatus, show};
use crate::changer::{LibraryStatus, Location, is_cleaning};
use crate::commands::reports::display_status;
use crate::config::Config;
use crate::drive::{self, Access, Drive};
use crate::exit_codes::{self, Exit, ExitCode};
use crate::library::LibraryDrive;
use crate::lock::{self, Lock};
use crate::remote::Remote;
use crate::{label, stop};

/// A tape this run has claimed, with its barcode.
struct Claimed {
    tape: Tape,
    barcode: String,
    _claim: Lock,
}

/// How writing on one tape ended.
enum Ended {
    /// The tape filled (or nothing waiting fits in what is left): next tape.
    Full,
    /// Nothing is left for this drive.
    NoWork,
    /// With `copy_pools`: every target waiting has its copy in this
    /// tape's pool; the others wait for a tape of another pool.
    PoolDone,
    /// One target was written and `--repeat` was not given.
    Once,
}

/// Run `archive` on the library drive `lib`.
pub(super) fn run(config: &Config, lib: &LibraryDrive, opts: Options) -> Result<ExitCode> {
    if opts.no_db_update {
        return Err(Exit::error(
            ExitCode::Failure,
            "archive --no-db-update is not for a library run: tapeop load TAPE, then archive --no-db-update with a \
             tape.conf without [changer]",
        ));
    }
    let cat = Catalog::open(&config.database_file, Mode::ReadWrite)?;
    cat.set_copy_pools(&config.copy_pools);
    cat.writable()?;
    let remote = Remote::new(&config.ssh_command)?;
    let command = format!("archive --drive {}", lib.name);
    let mut run =
        Run { cat: &cat, config, lib, opts, remote: &remote, too_big: Vec::new(), command, cleaning_given_up: false };
    loop {
        stop::check()?;
        let status = lib.changer.status()?;
        let Some(claimed) = run.choose_tape(&status)? else { return run.nothing_to_load() };
        lib.mount(&claimed.barcode, &run.command).with_context(|| format!("tape \"{}\"", claimed.tape.name))?;
        match run.fill(&claimed)? {
            Ended::Full => {
                let back = cat.release_assigned(&claimed.tape)?;
                if back > 0 {
                    let (noun, verb) = if back == 1 { ("target", "goes") } else { ("targets", "go") };
                    println!(
                        "{back} {noun} assigned to tape \"{}\" {verb} back to the unassigned pool.",
                        claimed.tape.name
                    );
                }
                let mut drive = drive::open(&config.drive, Access::Write, config.block_size)?;
                crate::catalogue_file::write_when_full(&cat, &mut *drive, &claimed.tape, config);
                drop(drive);
                lib.dismount(&run.command)?;
            }
            Ended::PoolDone => {
                println!(
                    "Tape \"{}\" has its pool's copy of every target waiting; the rest go to tapes of other pools.",
                    claimed.tape.name
                );
                lib.dismount(&run.command)?;
            }
            Ended::NoWork => {
                println!("Nothing is left to archive for {}.", lib.describe());
                return Ok(ExitCode::NothingToDo);
            }
            Ended::Once => {
                println!("Exiting ... pass --repeat to keep doing this.");
                return Ok(ExitCode::Success);
            }
        }
    }
}

/// One library run.
struct Run<'a> {
    cat: &'a Catalog,
    config: &'a Config,
    lib: &'a LibraryDrive,
    opts: Options,
    remote: &'a Remote,
    /// Targets estimated larger than a whole tape: never taken.
    too_big: Vec<i64>,
    /// This run, as lock files and messages name it.
    command: String,
    /// The drive asked for cleaning and it could not be done (no cleaning
    /// cartridge, or it still asked afterwards): not tried again this run.
    cleaning_given_up: bool,
}

impl Run<'_> {
    /// The tape to write next, claimed; None when none has work for us.
    fn choose_tape(&mut self, status: &LibraryStatus) -> Result<Option<Claimed>> {
        let unassigned = self.unassigned_left()?;
        let mut with_work = Vec::new();
        let mut with_room = Vec::new();
        for tape in self.cat.tapes()? {
            let Some(barcode) = Some(tape.serial.clone()).filter(|s| !s.is_empty() && !is_cleaning(s)) else {
                continue;
            };
            let here = match status.locate(&barcode) {
                Some(Location::Drive(i)) if i == self.lib.index => true,
                Some(Location::Slot(_)) => false,
                _ => continue,
            };
            if display_status(self.cat, &tape)? != TapeStatus::Open {
                continue;
            }
            let assigned = !self.cat.backups_with_status(tape.id, &BackupStatus::Assigned)?.is_empty();
            let room = unassigned && self.takes_more(&tape)? && self.has_room(&tape)?;
            let rank = if here { 0 } else { 1 };
            if assigned {
                with_work.push((rank, tape, barcode));
            } else if room {
                with_room.push((rank, tape, barcode));
            }
        }
        with_work.sort_by_key(|(rank, t, _)| (*rank, t.id));
        with_room.sort_by_key(|(rank, t, _)| (*rank, t.id));
        for (_, tape, barcode) in with_work.into_iter().chain(with_room) {
            if let Some(claim) = lock::claim_tape(&self.config.database_file, &tape.name, &self.command)? {
                println!("Tape \"{}\" (cartridge {barcode}) is next for {}.", tape.name, self.lib.describe());
                return Ok(Some(Claimed { tape, barcode, _claim: claim }));
            }
        }
        Ok(None)
    }

    /// Whether unassigned targets wait that this run would take.
    fn unassigned_left(&self) -> Result<bool> {
        Ok(self.cat.unassigned_targets()?.iter().any(|id| !self.too_big.contains(id)))
    }

    /// With `copy_pools`: whether some target waiting (not too big) lacks
    /// a copy in `tape`'s pool (never for a pool copy_pools does not list).
    /// Without it: always (whatever waits may go to any tape).
    fn takes_more(&self, tape: &Tape) -> Result<bool> {
        if !self.cat.counts_pools() {
            return Ok(true);
        }
        if self.cat.copy_pool_of(tape).is_err() {
            return Ok(false);
        }
        Ok(self.cat.unassigned_for(tape)?.iter().any(|id| !self.too_big.contains(id)))
    }

    /// Whether `tape` has room for more (always, when its capacity is unknown).
    fn has_room(&self, tape: &Tape) -> Result<bool> {
        let left = self.cat.space_left(tape, self.config.tape_capacity, true, self.config.block_size)?;
        Ok(left.is_none_or(|l| l > crate::catalog::filemark_estimate(self.config.block_size)))
    }

    /// Nothing could be loaded: exit 40 when nothing waits, else 43 naming
    /// what the library needs.
    fn nothing_to_load(&self) -> Result<ExitCode> {
        let waiting: Vec<i64> =
            self.cat.unassigned_targets()?.into_iter().filter(|id| !self.too_big.contains(id)).collect();
        if waiting.is_empty() {
            println!("Nothing is left to archive for {}.", self.lib.describe());
            if !self.too_big.is_empty() {
                println!(
                    "{} targets are larger than a whole tape and were left unassigned: split them (import their \
                     subdirectories as targets of their own).",
                    self.too_big.len()
                );
            }
            return Ok(ExitCode::NothingToDo);
        }
        if let Some((tape, holder)) = self.busy_tape_with_room()? {
            println!(
                "Nothing is left for {}: the {} unassigned targets waiting go to tape \"{tape}\", which {holder} is \
                 writing.",
                self.lib.describe(),
                waiting.len()
            );
            return Ok(ExitCode::NothingToDo);
        }
        if self.cat.counts_pools() {
            return Err(self.no_tape_of_pool(waiting.len()));
        }
        Err(Exit::error(
            ExitCode::TapeFull,
            format!(
                "no tape with room is left in the library for {}: {} unassigned targets wait. Put a blank cartridge \
                 in the library and register it with tapeop open_tape NAME --serial BARCODE, then run again",
                self.lib.describe(),
                waiting.len()
            ),
        ))
    }

    /// With `copy_pools`: no tape with room for the pools still lacking copies.
    fn no_tape_of_pool(&self, waiting: usize) -> anyhow::Error {
        let lacking: Vec<String> = self
            .cat
            .copy_pools()
            .into_iter()
            .filter(|p| self.cat.unassigned_tally_in(p).is_ok_and(|t| t.count > 0))
            .collect();
        Exit::error(
            ExitCode::TapeFull,
            format!(
                "no tape of pool {} with room is left in the library for {}: {waiting} targets lack a copy there. Put \
                 a blank cartridge in the library and register it with tapeop open_tape NAME --serial BARCODE \
                 --pool POOL, then run again",
                lacking.join(" or "),
                self.lib.describe()
            ),
        )
    }

    /// An open tape with room that another run holds: (name, holder).
    fn busy_tape_with_room(&self) -> Result<Option<(String, String)>> {
        for tape in self.cat.tapes()? {
            let Some(holder) = lock::tape_holder(&self.config.database_file, &tape.name) else { continue };
            if display_status(self.cat, &tape)? == TapeStatus::Open && self.has_room(&tape)? {
                return Ok(Some((tape.name, holder)));
            }
        }
        Ok(None)
    }

    /// Write targets on the claimed tape (now in the drive) until it is
    /// full or nothing is left for it.
    fn fill(&mut self, claimed: &Claimed) -> Result<Ended> {
        let tape = &claimed.tape;
        let mut drive: Box<dyn Drive> = drive::open(&self.config.drive, Access::Write, self.config.block_size)?;
        // Prove the tape before taking any target for it: a wrong cartridge
        // behind this barcode is refused with the catalogue unchanged.
        let mut proven = false;
        if !self.opts.override_tape_check {
            let n = label::append_point(self.cat, tape)?;
            label::prove(self.cat, &mut *drive, tape, n, self.config.block_size, &self.config.drive)?;
            proven = true;
        }
        loop {
            let Some(job) = self.next_job(tape)? else {
                if !self.unassigned_left()? {
                    return Ok(Ended::NoWork);
                }
                return if self.takes_more(tape)? { self.no_fit(tape) } else { Ok(Ended::PoolDone) };
            };
            // Before each target, so also before the first of a run (as
            // `tape_batch.bash` makes them, one target each).
            if !self.cleaning_given_up && drive.status()?.cleaning_requested {
                drop(drive);
                proven &= !self.clean_between_targets(claimed)?;
                drive = drive::open(&self.config.drive, Access::Write, self.config.block_size)?;
            }
            let env = Env { cat: self.cat, config: self.config, remote: self.remote };
            match archive_one(env, tape, &job, &mut *drive, self.opts, &mut proven) {
                Ok(_) => {}
                Err(e) if exit_codes::for_error(&e) == ExitCode::TapeFull => {
                    println!(
                        "Tape \"{}\" reached its end while writing {}: the partial tape file is not recorded, the \
                         tape is marked full, and the target goes to the next tape.",
                        tape.name,
                        show(&job.target)
                    );
                    return Ok(Ended::Full);
                }
                Err(e) => return Err(e),
            }
            if !self.opts.repeat {
                return Ok(Ended::Once);
            }
            stop::check()?;
        }
    }

    /// Between two targets the drive asks for cleaning: clean it and load
    /// `claimed` back (its proof is then done again). With no cleaning
    /// cartridge in the library, or when the drive still asks after the
    /// cleaning, one warning and the run carries on. Whether the tape left
    /// the drive.
    fn clean_between_targets(&mut self, claimed: &Claimed) -> Result<bool> {
        let name = &self.lib.name;
        if crate::library::cleaning_cartridge(&self.lib.changer.status()?).is_none() {
            self.cleaning_given_up = true;
            eprintln!(
                "tapeop: warning: {} asks for cleaning, but no cleaning cartridge (CLN...) is in a slot: carrying \
                 on; put one in a slot, run tapeop inventory, then tapeop --drive {name} clean",
                self.lib.describe()
            );
            return Ok(false);
        }
        println!("{} asks for cleaning: cleaning it before the next target.", self.lib.describe());
        let cleaning = crate::commands::clean::clean_drive(self.lib, Some(self.cat), &self.command)?;
        if cleaning.still_asks {
            self.cleaning_given_up = true;
            eprintln!("tapeop: warning: {}; carrying on", crate::commands::clean::still_asks(self.lib, &cleaning));
        }
        self.lib.mount(&claimed.barcode, &self.command).with_context(|| format!("tape \"{}\"", claimed.tape.name))?;
        Ok(true)
    }

    /// Nothing waiting fits in what is left of `tape`: it is as good as full.
    fn no_fit(&self, tape: &Tape) -> Result<Ended> {
        println!(
            "No unassigned target fits in the space left on tape \"{}\": marking it full and moving on.",
            tape.name
        );
        self.cat.mark_tape_full(tape)?;
        Ok(Ended::Full)
    }

    /// The next target for `tape`: one assigned to it, else an unassigned
    /// one that fits, assigned to it now.
    fn next_job(&mut self, tape: &Tape) -> Result<Option<Backup>> {
        if let Some(job) = self.first_assigned(tape)? {
            return Ok(Some(job));
        }
        let block = self.config.block_size;
        let whole = self.cat.tape_capacity(tape, self.config.tape_capacity)?;
        let left = self.cat.space_left(tape, self.config.tape_capacity, true, block)?;
        for id in self.cat.unassigned_for(tape)? {
            if self.too_big.contains(&id) {
                continue;
            }
            let need = self.cat.target_estimate(id, block)?;
            if whole.is_some_and(|w| need > w - crate::catalog::label_estimate(block)) {
                let name = self.cat.target(id)?.name;
                println!("{} is larger than a whole tape: it is left unassigned (split it).", show(&name));
                self.too_big.push(id);
                continue;
            }
            if left.is_some_and(|l| need > l) {
                continue;
            }
            if self.cat.assign_one(tape, id)? {
                return self.first_assigned(tape);
            }
        }
        Ok(None)
    }

    fn first_assigned(&self, tape: &Tape) -> Result<Option<Backup>> {
        Ok(self.cat.backups_with_status(tape.id, &BackupStatus::Assigned)?.into_iter().next())
    }
}
