//! Running the mtx program: `COMMAND -f DEVICE ARGS...`, its standard
//! output on success, and on failure an error that says what the changer
//! could not do, quotes mtx's own message and names the command run.

use std::io::ErrorKind;
use std::process::{Command, Stdio};

use anyhow::Result;

use super::Changer;
use crate::exit_codes::{Exit, ExitCode};

/// Run mtx with `args` for `what` (e.g. "load slot 3 into drive 1"); its stdout.
pub(super) fn run(changer: &Changer, args: &[&str], what: &str) -> Result<String> {
    let program = changer.command.display().to_string();
    let shown = format!("{program} -f {} {}", changer.device.display(), args.join(" "));
    let out = match output(changer, args) {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Exit::error(
                ExitCode::Failure,
                format!(
                    "cannot run the changer command {program}: not found; install mtx or set command = under [changer]"
                ),
            ));
        }
        Err(e) => {
            return Err(Exit::error(
                ExitCode::Failure,
                format!("cannot run the changer command {program}: {e}; check command = under [changer]"),
            ));
        }
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let said = said(&out.stderr, &out.stdout, out.status);
    Err(Exit::error(
        ExitCode::Failure,
        format!("the changer {} could not {what}: mtx said: \"{said}\" ({shown})", changer.device.display()),
    ))
}

/// Run it and collect its output. A program file that another process still
/// has open for writing (just installed or generated: ETXTBSY) is tried
/// again a few times.
fn output(changer: &Changer, args: &[&str]) -> std::io::Result<std::process::Output> {
    let mut tries = 0;
    loop {
        let run =
            Command::new(&changer.command).arg("-f").arg(&changer.device).args(args).stdin(Stdio::null()).output();
        match run {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// mtx's own message: its stderr lines joined on one line (else the last
/// line of its stdout, else how it ended).
fn said(stderr: &[u8], stdout: &[u8], status: std::process::ExitStatus) -> String {
    let err = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = err.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if !lines.is_empty() {
        return summarise_sense(&lines);
    }
    let out = String::from_utf8_lossy(stdout);
    match out.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        Some(last) => last.to_string(),
        None => format!("nothing, and ended with {status}"),
    }
}

/// mtx's stderr on one line, its request-sense dump (a dozen lines) cut to
/// what an operator looks up: the sense key and the additional sense code
/// and qualifier, before mtx's own closing words.
fn summarise_sense(lines: &[&str]) -> String {
    let field =
        |name: &str| lines.iter().find_map(|l| l.split_once("Request Sense: ")?.1.strip_prefix(name).map(str::trim));
    let rest: Vec<&str> = lines.iter().copied().filter(|l| !l.contains("Request Sense: ")).collect();
    let Some(key) = field("Sense Key=") else { return lines.join("; ") };
    let sense = match (field("Additional Sense Code = "), field("Additional Sense Qualifier = ")) {
        (Some(asc), Some(ascq)) => format!("sense key {key}, ASC {asc} ASCQ {ascq}"),
        _ => format!("sense key {key}"),
    };
    std::iter::once(sense.as_str()).chain(rest).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::summarise_sense;

    #[test]
    fn a_request_sense_dump_is_cut_to_its_key_and_codes() {
        let lines = [
            "mtx: Request Sense: Long Report=yes",
            "mtx: Request Sense: Error Code=70 (Current)",
            "mtx: Request Sense: Sense Key=Illegal Request",
            "mtx: Request Sense: Additional Sense Code = 53",
            "mtx: Request Sense: Additional Sense Qualifier = 02",
            "mtx: Request Sense: BPV=no",
            "mtx: MOVE MEDIUM from Element Address 256 to 4096 Failed",
        ];
        assert_eq!(
            summarise_sense(&lines),
            "sense key Illegal Request, ASC 53 ASCQ 02; mtx: MOVE MEDIUM from Element Address 256 to 4096 Failed"
        );
        assert_eq!(summarise_sense(&["Source Element Address 4096 is Empty"]), "Source Element Address 4096 is Empty");
    }
}
