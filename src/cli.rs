//! The command line: clap definitions of every command of the old tool's
//! manual (same names, positional words and flags; kebab-case aliases),
//! parsed into the plain `Invocation` that the rest of tapeop runs. The one
//! command enum, `Command`, is derived here; its fields are plain data (the
//! values clap's parsers in this module checked and typed), so the modules
//! below match on it without using clap. A value the operator mistyped
//! (a file number, a history id, a size) is refused with tapeop's one-line
//! usage error, exit 2.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::PossibleValue;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::InFlight;
use crate::exit_codes::{Exit, ExitCode};
use crate::tape_file::TapeFile;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   done
  1   refused, failed, aborted at a question, or a confirm found differences
  2   command-line usage error
  40  nothing left to do (no assigned target to archive, nothing to confirm)
  41  stop requested (a file named exit_file in the current directory, or Ctrl-C)
  42  an archive failed: nothing was recorded, the target stays assigned
  43  the tape is full: the target stays assigned for the next tape
  141 a report's standard output was closed by its reader (| head): ended quietly";

/// tapeop: archive directories of a data host onto LTO tape, and prove it.
#[derive(Parser, Debug)]
#[command(name = "tapeop", version, about, after_help = EXIT_CODES_HELP)]
struct Args {
    /// The config file (default: tape.conf in the current directory).
    #[arg(short = 'c', long = "config-file", global = true, value_name = "PATH")]
    config_file: Option<PathBuf>,
    /// Answer yes to every question.
    #[arg(short = 'y', long = "yes", global = true)]
    yes: bool,
    /// More detail (tapes: GB written; tape_detail: one line per file).
    #[arg(short = 'v', long = "verbose", global = true)]
    verbose: bool,
    /// Machine-readable JSON output (status, tapes, unassigned, tape_detail,
    /// where_is, backup_info, check, log, inventory, drive).
    #[arg(long, global = true)]
    json: bool,
    /// The drive to use, by its name in tape.conf ([drive.NAME]); needed
    /// when tape.conf names several drives. archive takes it twice (one
    /// copy on each drive, with copy_pools).
    #[arg(long, global = true, value_name = "NAME", action = clap::ArgAction::Append)]
    drive: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// One operator command with its arguments, as typed on the command line
/// (the doc comments are the `--help` texts).
#[allow(missing_docs)]
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// List the tapes: name, online flag, serial, id, status.
    Tapes,
    /// Summary of the online tape (or TAPE): counts, GB, layout.
    Status { tape: Option<String> },
    /// Count and size of the targets not yet assigned to a tape.
    Unassigned,
    /// The tape files of the online tape (or TAPE); -v lists every file.
    #[command(name = "tape_detail", visible_alias = "tape-detail")]
    TapeDetail {
        tape: Option<String>,
        #[arg(value_parser = file_number_arg)]
        file_number: Option<TapeFile>,
    },
    /// Find a file by its name relative to its target.
    #[command(name = "where_is", visible_alias = "where-is")]
    WhereIs {
        #[arg(required = true, num_args = 1..)]
        name: Vec<OsString>,
    },
    /// Everything the catalogue knows about a tape file of the online tape.
    #[command(name = "backup_info", visible_alias = "backup-info")]
    BackupInfo {
        #[arg(value_parser = file_number_arg)]
        file_number: Option<TapeFile>,
    },
    /// Write md5sum -c manifests of every tape file into OUTPUT_DIR.
    #[command(name = "dump_manifest", visible_alias = "dump-manifest")]
    DumpManifest { output_dir: Option<PathBuf> },
    /// Register a new tape (asks for a serial number and whether to put it online).
    #[command(name = "open_tape", visible_alias = "open-tape")]
    OpenTape {
        name: String,
        /// Serial number (skips the question).
        #[arg(long)]
        serial: Option<String>,
        /// Put it online (skips the question).
        #[arg(long, conflicts_with = "offline")]
        online: bool,
        /// Leave it offline (skips the question).
        #[arg(long)]
        offline: bool,
        /// Capacity of the cartridge (e.g. 18T); default: tape_capacity in tape.conf.
        #[arg(long, value_name = "SIZE", value_parser = capacity_arg)]
        capacity: Option<u64>,
        /// The pool the tape belongs to (see copy_pools in tape.conf).
        #[arg(long, default_value = "default")]
        pool: String,
    },
    /// Close a tape: dissociate its assigned targets, mark it closed and offline.
    #[command(name = "close_tape", visible_alias = "close-tape")]
    CloseTape {
        tape: Option<String>,
        /// Close even though some tape files are recorded but not confirmed.
        #[arg(long)]
        force: bool,
        /// Close without writing the tape's catalogue file (when the drive
        /// cannot hold the tape now; the tape then has none).
        #[arg(long = "no-catalogue-file")]
        no_catalogue_file: bool,
    },
    /// Recover a lost catalogue from the catalogue file at the end of the
    /// loaded tape (written when a tape is closed or full).
    #[command(name = "recover_catalogue", visible_alias = "recover-catalogue")]
    RecoverCatalogue {
        /// The new catalogue file to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
    },
    /// Bring a registered tape online.
    #[command(name = "activate_tape", visible_alias = "activate-tape")]
    ActivateTape { name: String },
    /// Assign every unassigned target to the online tape (or TAPE).
    Assign { tape: Option<String> },
    /// Add the directories listed in LISTFILE as targets and scan them.
    Import {
        listfile: PathBuf,
        /// Carry on an interrupted import; accept targets that already exist.
        #[arg(long)]
        retry: bool,
        /// Mark targets scanned without listing their files.
        #[arg(long = "no-scan")]
        no_scan: bool,
        /// Scan again targets already scanned but not yet on tape (after the
        /// source changed).
        #[arg(long)]
        rescan: bool,
    },
    /// Tape library: load TAPE (a tape name or a barcode) into the drive.
    Load { tape: String },
    /// Tape library: put the drive's cartridge back into its slot.
    Unload,
    /// Tape library: every drive and slot, its barcode and catalogue tape.
    Inventory,
    /// Tape library: clean the drive with a cleaning cartridge (CLN...) from
    /// a slot, then return it there.
    Clean,
    /// Write the next assigned target of the online tape to tape.
    Archive {
        /// Keep archiving until nothing is left or the tape is full.
        #[arg(long)]
        repeat: bool,
        /// Do everything but record the result in the catalogue.
        #[arg(long = "no-db-update")]
        no_db_update: bool,
        /// Write at the catalogue's append point without proving that the
        /// loaded tape is the online tape and that it ends there.
        #[arg(long = "override-tape-check")]
        override_tape_check: bool,
        /// Start a target even when its estimated size exceeds the space left.
        #[arg(long = "try-anyway")]
        try_anyway: bool,
        /// How to check the data against the catalogue while writing, for
        /// this run (default: check_in_flight in tape.conf, else full).
        #[arg(long = "check-in-flight", value_name = "MODE", value_enum)]
        check_in_flight: Option<InFlight>,
    },
    /// Restore a target, or chosen files and globs of it, into a directory.
    Restore {
        /// The target directory as imported (absolute path).
        target: OsString,
        /// Files (relative to the target) or globs; none = the whole target.
        files: Vec<OsString>,
        /// Destination directory.
        #[arg(long = "to", value_name = "DIR", required = true)]
        to: PathBuf,
        /// Replace files that already exist in the destination.
        #[arg(long)]
        overwrite: bool,
        /// Restore symlinks that point outside the destination (absolute, or
        /// up through '..') as they are, as tar does. They are never followed
        /// while restoring. Default: refuse them, list them, exit 1.
        #[arg(long = "symlinks-as-is")]
        symlinks_as_is: bool,
    },
    /// Exit 0 when all is well, non-zero when something needs a person (for cron).
    Check {
        /// Recorded backups unconfirmed for more than this many days need attention.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// A tape this full (percent of its capacity) needs attention.
        #[arg(long = "full-percent", default_value_t = 90)]
        full_percent: u32,
    },
    /// Write the status page: DIR/index.html (self-contained, no script)
    /// and DIR/report.json, each replaced atomically (for cron).
    Report {
        /// The directory to write into (it must exist).
        #[arg(long, value_name = "DIR", required = true)]
        html: PathBuf,
    },
    /// The history of archive, confirm and restore attempts.
    Log {
        /// Only this tape.
        #[arg(long)]
        tape: Option<String>,
        /// Show at most this many entries (newest last).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Read every tape file of the loaded tape: compare with the catalogue, or
    /// record a tape the catalogue does not know.
    #[command(name = "scan_tape", visible_alias = "scan-tape")]
    ScanTape {
        /// Record the tape under this name when the catalogue does not know it.
        #[arg(long = "record-as", value_name = "NAME", conflicts_with = "adopt")]
        record_as: Option<String>,
        /// Record into the catalogue the tape files of a known tape that it
        /// lost (target, files and md5 sums from the tape), unless ambiguous.
        #[arg(long)]
        adopt: bool,
    },
    /// What the drive says: loaded, write-protect, position, block size, and
    /// whether the position matches the catalogue's online tape.
    Drive,
    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) on standard output.
    Manpage,
    /// Read a tape file back and check every md5 (FILE_NUMBER or next).
    Confirm {
        #[arg(value_parser = which_arg)]
        which: Option<ConfirmWhich>,
        /// Allow re-confirming an already confirmed tape file; with next, also
        /// take tape files whose last confirm failed (next passes over them).
        #[arg(long)]
        retry: bool,
        /// Do everything but record the result in the catalogue.
        #[arg(long = "no-db-update")]
        no_db_update: bool,
        /// Keep confirming until nothing is left (a failed one does not stop it).
        #[arg(long)]
        repeat: bool,
        /// Verify a tape by a sample: its label, first and last tape files and
        /// sample_files others at random, recorded in the history.
        #[arg(long, conflicts_with_all = ["which", "retry", "no_db_update", "repeat"])]
        sample: bool,
        /// With --sample: the tape (default: the online tape).
        #[arg(long, requires = "sample", conflicts_with = "due")]
        tape: Option<String>,
        /// With --sample: the tapes due for verification (verify_days).
        #[arg(long, requires = "sample")]
        due: bool,
        /// With --sample: repeat the random choice of a run (the seed it printed).
        #[arg(long, requires = "sample")]
        seed: Option<u64>,
    },
    /// Give the target of a tape file that failed confirm (or a confirmed
    /// one a later `confirm --sample` found bad) back to the unassigned
    /// pool, so that assign and archive put it on another tape; the failed
    /// tape file stays on tape, marked failed.
    Requeue {
        /// The tape file (tape_detail lists them).
        #[arg(value_parser = file_number_arg)]
        file_number: TapeFile,
        /// The tape (default: the online tape).
        #[arg(long)]
        tape: Option<String>,
        /// Scan the target's source again first (after it changed).
        #[arg(long)]
        rescan: bool,
        /// Requeue a recorded tape file that never failed confirm.
        #[arg(long)]
        force: bool,
    },
    /// Acknowledge an alarm of check (a failed archive, confirm or sample, or
    /// a tape whose read errors grow), by the history id check prints:
    /// check no longer reports it.
    Ack {
        /// The history id check prints (log --json shows every id).
        #[arg(value_parser = history_id_arg)]
        history_id: i64,
        /// Why (kept in the log).
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove a target that was never written to tape (a mistyped or
    /// missing import path) with its files.
    #[command(name = "remove_target", visible_alias = "remove-target")]
    RemoveTarget {
        /// The target directory exactly as imported (absolute path).
        target: OsString,
    },
}

/// What to run, free of clap.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The config file to read.
    pub config_file: PathBuf,
    /// Answer yes to every question.
    pub yes: bool,
    /// More detail (`tapes`, `tape_detail`).
    pub verbose: bool,
    /// Machine-readable output.
    pub json: bool,
    /// The drives named with --drive, in order (archive takes two).
    pub drives: Vec<String>,
    /// The command (None: status when a tape is online, else tapes).
    pub command: Option<Command>,
}

/// Parse the process arguments: clap exits 2 on its own usage errors; a
/// mistyped value is tapeop's one-line usage error (exit 2).
pub fn parse() -> Result<Invocation> {
    let a = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<BadValue>()) {
            Some(bad) => return Err(Exit::error(ExitCode::Usage, bad.0.clone())),
            None => e.exit(),
        },
    };
    Ok(Invocation {
        config_file: a.config_file.unwrap_or_else(|| PathBuf::from("tape.conf")),
        yes: a.yes,
        verbose: a.verbose,
        json: a.json,
        drives: a.drive,
        command: a.command,
    })
}

/// A value the operator mistyped, with the sentence that says so.
#[derive(Debug)]
struct BadValue(String);

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadValue {}

impl ValueEnum for InFlight {
    fn value_variants<'a>() -> &'a [Self] {
        &[InFlight::Full, InFlight::KeepPace, InFlight::Off]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

fn file_number_arg(text: &str) -> Result<TapeFile, BadValue> {
    match text.parse::<i64>().ok().and_then(|n| u64::try_from(n).ok()) {
        Some(n) => Ok(TapeFile::new(n)),
        None => Err(BadValue(format!(
            "file number {text:?} is not a tape file number: give a whole number such as 0 or 12"
        ))),
    }
}

/// Which tape file `confirm` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmWhich {
    /// The next recorded, unconfirmed one.
    Next,
    /// That file number.
    Number(TapeFile),
}

fn which_arg(text: &str) -> Result<ConfirmWhich, BadValue> {
    match text {
        "next" => Ok(ConfirmWhich::Next),
        n => file_number_arg(n).map(ConfirmWhich::Number),
    }
}

fn history_id_arg(text: &str) -> Result<i64, BadValue> {
    match text.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => {
            Err(BadValue(format!("history id {text:?} is not a number: give the id check prints, e.g. tapeop ack 12")))
        }
    }
}

fn capacity_arg(text: &str) -> Result<u64, BadValue> {
    crate::config::parse_size(text)
        .map_err(|_| BadValue(format!("--capacity {text:?} is not a size: give bytes or K/M/G/T, e.g. 18T")))
}

/// The clap command, for generated completions and man pages.
fn clap_command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Write shell completions for `shell`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) -> Result<()> {
    clap_complete::generate(shell, &mut clap_command(), "tapeop", out);
    Ok(())
}

/// Write the man page (roff).
pub fn write_manpage(out: &mut dyn std::io::Write) -> Result<()> {
    clap_mangen::Man::new(clap_command()).render(out)?;
    Ok(())
}
