//! tapeop: archives a data host's directories onto LTO tape, one tar per tape
//! file, and proves file by file that the tape holds what the disk held.
//! `main` parses the command line, runs the command, and is the one place
//! that maps an error to the documented exit codes.
#![deny(unsafe_code)]

mod archive;
mod catalog;
mod check;
mod cli;
mod commands;
mod config;
mod drive;
mod exit_codes;
mod import;
mod label;
mod prompt;
mod rebuild;
mod remote;
mod report;
mod restore;
mod stop;
mod tarstream;
mod verify;

use exit_codes::{Exit, ExitCode};

fn main() {
    let code = match cli::parse().and_then(|inv| {
        stop::install_handler();
        commands::run(inv)
    }) {
        Ok(code) => code,
        Err(err) => {
            report_error(&err);
            exit_codes::for_error(&err)
        }
    };
    std::process::exit(code.code());
}

fn report_error(err: &anyhow::Error) {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let quiet = err.downcast_ref::<Exit>().is_some_and(|e| e.message.is_empty());
    if !quiet {
        eprintln!("tapeop: {err:#}");
    }
    let _ = ExitCode::Success;
}
