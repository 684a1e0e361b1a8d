//! The `tapeop` binary: parses the command line, runs the command, and is
//! the one place that maps an error to the documented exit codes.
#![deny(unsafe_code)]

use tapeop::exit_codes::{self, Exit, ExitCode};
use tapeop::{cli, commands, out, stop};

fn main() {
    let code = match cli::parse().and_then(|inv| {
        stop::install_handler();
        commands::run(inv)
    }) {
        Ok(code) => code,
        Err(err) if out::is_stdout_closed(&err) => ExitCode::StdoutClosed,
        Err(err) => {
            report_error(&err);
            exit_codes::for_error(&err)
        }
    };
    std::process::exit(code.code());
}

fn report_error(err: &anyhow::Error) {
    out::flush();
    let quiet = err.downcast_ref::<Exit>().is_some_and(|e| e.message.is_empty());
    if !quiet {
        out::write_err(format_args!("tapeop: {err:#}\n"));
    }
}
