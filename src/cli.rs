//! The command line: clap definitions of every command of the old tool's
//! manual (same names, positional words and flags; kebab-case aliases) and
//! their translation into the plain `Invocation` that the rest of tapeop
//! runs. clap types never leave this module.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::InFlight;
use crate::exit_codes::{Exit, ExitCode};

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
    /// where_is, backup_info, check, log).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the tapes: name, online flag, serial, id, status.
    Tapes,
    /// Summary of the online tape (or TAPE): counts, GB, layout.
    Status { tape: Option<String> },
    /// Count and size of the targets not yet assigned to a tape.
    Unassigned,
    /// The tape files of the online tape (or TAPE); -v lists every file.
    #[command(name = "tape_detail", visible_alias = "tape-detail")]
    TapeDetail { tape: Option<String>, file_number: Option<String> },
    /// Find a file by its name relative to its target.
    #[command(name = "where_is", visible_alias = "where-is")]
    WhereIs {
        #[arg(required = true, num_args = 1..)]
        name: Vec<OsString>,
    },
    /// Everything the catalogue knows about a tape file of the online tape.
    #[command(name = "backup_info", visible_alias = "backup-info")]
    BackupInfo { file_number: Option<String> },
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
        #[arg(long, value_name = "SIZE")]
        capacity: Option<String>,
    },
    /// Close a tape: dissociate its assigned targets, mark it closed and offline.
    #[command(name = "close_tape", visible_alias = "close-tape")]
    CloseTape {
        tape: Option<String>,
        /// Close even though some tape files are recorded but not confirmed.
        #[arg(long)]
        force: bool,
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
        #[arg(long = "check-in-flight", value_name = "MODE", value_parser = ["full", "keep-pace", "off"])]
        check_in_flight: Option<String>,
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
        which: Option<String>,
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
    },
    /// Give the target of a tape file that failed confirm back to the
    /// unassigned pool, so that assign and archive put it on another tape;
    /// the failed tape file stays on tape, marked failed.
    Requeue {
        /// The tape file (tape_detail lists them).
        file_number: String,
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
    /// Acknowledge an alarm of check (a failed archive or confirm), by the
    /// history id check prints: check no longer reports it.
    Ack {
        /// The history id check prints (log --json shows every id).
        history_id: String,
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
    /// Machine-readable output.
    pub json: bool,
    /// The command (None: status when a tape is online, else tapes).
    pub command: Option<Command>,
}

/// One operator command with its arguments. Each field is the flag or
/// positional word of the same name, documented on the clap side above.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub enum Command {
    /// `tapes [-v]`
    Tapes { verbose: bool },
    /// `status [TAPE]`
    Status { tape: Option<String> },
    /// `unassigned`
    Unassigned,
    /// `tape_detail [TAPE] [FILE_NUMBER] [-v]`
    TapeDetail { tape: Option<String>, file_number: Option<i64>, verbose: bool },
    /// `where_is NAME`
    WhereIs { name: Vec<u8> },
    /// `backup_info [FILE_NUMBER]`
    BackupInfo { file_number: Option<i64> },
    /// `dump_manifest [OUTPUT_DIR]`
    DumpManifest { output_dir: PathBuf },
    /// `open_tape NAME`
    OpenTape { name: String, serial: Option<String>, online: Option<bool>, capacity: Option<u64> },
    /// `close_tape [TAPE]`
    CloseTape { tape: Option<String>, force: bool },
    /// `activate_tape NAME`
    ActivateTape { name: String },
    /// `assign [TAPE]`
    Assign { tape: Option<String> },
    /// `import LISTFILE`
    Import { listfile: PathBuf, retry: bool, no_scan: bool, rescan: bool },
    /// `archive`
    Archive {
        repeat: bool,
        no_db_update: bool,
        override_tape_check: bool,
        try_anyway: bool,
        check_in_flight: Option<InFlight>,
    },
    /// `restore TARGET [FILE_OR_GLOB...] --to DIR`
    Restore { target: Vec<u8>, files: Vec<Vec<u8>>, to: PathBuf, overwrite: bool, symlinks_as_is: bool },
    /// `check`
    Check { days: u32, full_percent: u32 },
    /// `log`
    Log { tape: Option<String>, limit: u32 },
    /// `scan_tape`
    ScanTape { record_as: Option<String>, adopt: bool },
    /// `drive`
    Drive,
    /// `completions SHELL` (printed without reading the config)
    Completions { shell: String },
    /// `manpage` (printed without reading the config)
    Manpage,
    /// `confirm [FILE_NUMBER|next]`
    Confirm { which: ConfirmWhich, retry: bool, no_db_update: bool, repeat: bool },
    /// `requeue FILE_NUMBER [--tape T] [--rescan] [--force]`
    Requeue { file_number: i64, tape: Option<String>, rescan: bool, force: bool },
    /// `ack HISTORY_ID [--note TEXT]`
    Ack { history_id: i64, note: Option<String> },
    /// `remove_target TARGET`
    RemoveTarget { target: Vec<u8> },
}

/// Which tape file `confirm` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmWhich {
    /// The next recorded, unconfirmed one.
    Next,
    /// That file number.
    Number(i64),
}

/// Parse the process arguments (clap exits 2 on a usage error).
pub fn parse() -> Result<Invocation> {
    from_args(Args::parse())
}

fn from_args(a: Args) -> Result<Invocation> {
    let verbose = a.verbose;
    let command = match a.command {
        None => None,
        Some(c) => Some(convert(c, verbose)?),
    };
    Ok(Invocation {
        config_file: a.config_file.unwrap_or_else(|| PathBuf::from("tape.conf")),
        yes: a.yes,
        json: a.json,
        command,
    })
}

fn convert(c: Cmd, verbose: bool) -> Result<Command> {
    Ok(match c {
        Cmd::Tapes => Command::Tapes { verbose },
        Cmd::Status { tape } => Command::Status { tape },
        Cmd::Unassigned => Command::Unassigned,
        Cmd::TapeDetail { tape, file_number } => {
            Command::TapeDetail { tape, file_number: file_number.as_deref().map(file_number_arg).transpose()?, verbose }
        }
        Cmd::WhereIs { name } => Command::WhereIs { name: join_words(&name) },
        Cmd::BackupInfo { file_number } => {
            Command::BackupInfo { file_number: file_number.as_deref().map(file_number_arg).transpose()? }
        }
        Cmd::DumpManifest { output_dir } => {
            Command::DumpManifest { output_dir: output_dir.unwrap_or_else(|| PathBuf::from("manifests")) }
        }
        Cmd::OpenTape { name, serial, online, offline, capacity } => {
            let online = if online {
                Some(true)
            } else if offline {
                Some(false)
            } else {
                None
            };
            let capacity = match capacity {
                None => None,
                Some(text) => Some(crate::config::parse_size(&text).map_err(|_| {
                    Exit::error(
                        ExitCode::Usage,
                        format!("--capacity {text:?} is not a size: give bytes or K/M/G/T, e.g. 18T"),
                    )
                })?),
            };
            Command::OpenTape { name, serial, online, capacity }
        }
        Cmd::CloseTape { tape, force } => Command::CloseTape { tape, force },
        Cmd::ActivateTape { name } => Command::ActivateTape { name },
        Cmd::Assign { tape } => Command::Assign { tape },
        Cmd::Import { listfile, retry, no_scan, rescan } => Command::Import { listfile, retry, no_scan, rescan },
        Cmd::Archive { repeat, no_db_update, override_tape_check, try_anyway, check_in_flight } => Command::Archive {
            repeat,
            no_db_update,
            override_tape_check,
            try_anyway,
            check_in_flight: check_in_flight.as_deref().and_then(InFlight::parse),
        },
        Cmd::Restore { target, files, to, overwrite, symlinks_as_is } => Command::Restore {
            target: target.as_bytes().to_vec(),
            files: files.iter().map(|f| f.as_bytes().to_vec()).collect(),
            to,
            overwrite,
            symlinks_as_is,
        },
        Cmd::Check { days, full_percent } => Command::Check { days, full_percent },
        Cmd::Log { tape, limit } => Command::Log { tape, limit },
        Cmd::ScanTape { record_as, adopt } => Command::ScanTape { record_as, adopt },
        Cmd::Drive => Command::Drive,
        Cmd::Completions { shell } => Command::Completions { shell: shell.to_string() },
        Cmd::Manpage => Command::Manpage,
        Cmd::Confirm { which, retry, no_db_update, repeat } => {
            let which = match which.as_deref() {
                None | Some("next") => ConfirmWhich::Next,
                Some(n) => ConfirmWhich::Number(file_number_arg(n)?),
            };
            Command::Confirm { which, retry, no_db_update, repeat }
        }
        Cmd::Requeue { file_number, tape, rescan, force } => {
            Command::Requeue { file_number: file_number_arg(&file_number)?, tape, rescan, force }
        }
        Cmd::Ack { history_id, note } => Command::Ack { history_id: history_id_arg(&history_id)?, note },
        Cmd::RemoveTarget { target } => Command::RemoveTarget { target: target.as_bytes().to_vec() },
    })
}

/// The old tool joined the words of `where_is` with spaces.
fn join_words(words: &[OsString]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(w.as_bytes());
    }
    out
}

fn file_number_arg(text: &str) -> Result<i64> {
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(Exit::error(
            ExitCode::Usage,
            format!("file number {text:?} is not a tape file number: give a whole number such as 0 or 12"),
        )),
    }
}

fn history_id_arg(text: &str) -> Result<i64> {
    match text.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Exit::error(
            ExitCode::Usage,
            format!("history id {text:?} is not a number: give the id check prints, e.g. tapeop ack 12"),
        )),
    }
}

/// The clap command, for generated completions and man pages.
fn clap_command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Write shell completions for `shell` (a name clap_complete knows).
pub fn write_completions(shell: &str, out: &mut dyn std::io::Write) -> Result<()> {
    let shell: clap_complete::Shell = shell.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    clap_complete::generate(shell, &mut clap_command(), "tapeop", out);
    Ok(())
}

/// Write the man page (roff).
pub fn write_manpage(out: &mut dyn std::io::Write) -> Result<()> {
    clap_mangen::Man::new(clap_command()).render(out)?;
    Ok(())
}
