//! Bad input on a copy of the old tool's catalogue: every refusal prints its
//! one-line message, exits with its documented code, and leaves the
//! catalogue as it was. Plus the happy paths of the questions (answers on
//! stdin, `-y`).

mod support;

use support::fixture;

use fixture::{Fixture, Run, md5_file};

/// One `tapeop: ...` line on stderr, containing `phrase` (after the
/// one-time upgrade's announcement, when the command opened the legacy
/// catalogue read-write first).
fn assert_one_line_error(run: &Run, phrase: &str) {
    let mut lines = run.stderr_lines();
    if lines
        .first()
        .is_some_and(|l| l.starts_with("tapeop: upgrading catalogue tape.sqlite from schema version 0 to 4"))
    {
        lines.remove(0);
    }
    assert_eq!(lines.len(), 1, "expected a one-line message; run was {run:#?}");
    assert!(lines[0].starts_with("tapeop: "), "{run:#?}");
    assert!(lines[0].contains(phrase), "message lacks {phrase:?}; run was {run:#?}");
}

/// Run a command that must be refused by a read-only path: exit `code`,
/// `phrase` in its one-line message, tape.sqlite byte-identical.
fn refused_bytes_same(fx: &Fixture, args: &[&str], code: i32, phrase: &str) -> Run {
    let before = fx.db_md5();
    let run = fx.run(args);
    run.expect_code(code);
    assert_one_line_error(&run, phrase);
    assert_eq!(fx.db_md5(), before, "tapeop {args:?} changed tape.sqlite");
    run
}

/// Run a command that opens the catalogue read-write (which may upgrade a
/// legacy schema) and must be refused: the legacy tables must be unchanged.
fn refused_legacy_same(fx: &Fixture, args: &[&str], stdin: &str, code: i32, phrase: &str) -> Run {
    let before = fx.legacy_snapshot();
    let run = fx.run_stdin(args, stdin);
    run.expect_code(code);
    assert_one_line_error(&run, phrase);
    assert_eq!(fx.legacy_snapshot(), before, "tapeop {args:?} changed the legacy tables");
    run
}

// ---- config ----

#[test]
fn missing_config_file() {
    let fx = Fixture::new();
    refused_bytes_same(&fx, &["-c", "nope.conf", "status"], 1, "config file nope.conf not found");
}

#[test]
fn missing_default_tape_conf() {
    let fx = Fixture::new();
    std::fs::remove_file(fx.path("tape.conf")).unwrap();
    refused_bytes_same(&fx, &["status"], 1, "tape.conf not found");
    refused_bytes_same(&fx, &["activate_tape", "PUB-T1"], 1, "tape.conf not found");
}

#[test]
fn config_without_default_section() {
    let fx = Fixture::new();
    fx.write("bad.conf", "[other]\ndatabase_file = tape.sqlite\nssh_command = ssh x\ntape_device = /dev/nst0\n");
    refused_bytes_same(&fx, &["-c", "bad.conf", "status"], 1, "no [default] section");
    refused_bytes_same(&fx, &["-c", "bad.conf", "close_tape", "-y", "--force"], 1, "no [default] section");
}

#[test]
fn config_without_database_file_key() {
    let fx = Fixture::new();
    fx.write("bad.conf", "[default]\ntape_device = /dev/nst0\nssh_command = ssh x\nemulator_dir = emu/PUB-T2\n");
    refused_bytes_same(&fx, &["-c", "bad.conf", "tapes"], 1, "key 'database_file' missing");
    refused_bytes_same(&fx, &["-c", "bad.conf", "open_tape", "T9", "-y"], 1, "key 'database_file' missing");
}

#[test]
fn config_pointing_at_missing_database_for_reports() {
    let fx = Fixture::new();
    fx.write("bad.conf", "[default]\ndatabase_file = missing.sqlite\ntape_device = /dev/nst0\nssh_command = ssh x\n");
    for args in [
        &["-c", "bad.conf", "status"][..],
        &["-c", "bad.conf", "tapes"],
        &["-c", "bad.conf", "unassigned"],
        &["-c", "bad.conf", "tape_detail"],
        &["-c", "bad.conf", "where_is", "plain.txt"],
        &["-c", "bad.conf"],
    ] {
        refused_bytes_same(&fx, args, 1, "catalogue missing.sqlite does not exist");
        assert!(!fx.path("missing.sqlite").exists(), "tapeop {args:?} created the missing catalogue");
    }
    // A read-write command that does not create one refuses too.
    refused_bytes_same(&fx, &["-c", "bad.conf", "activate_tape", "PUB-T1"], 1, "does not exist");
    assert!(!fx.path("missing.sqlite").exists());
}

#[test]
fn database_that_is_not_sqlite() {
    let fx = Fixture::new();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let path = fx.write("garbage.sqlite", &garbage);
    fx.write("bad.conf", "[default]\ndatabase_file = garbage.sqlite\ntape_device = /dev/nst0\nssh_command = ssh x\n");
    let before = md5_file(&path);
    for args in [
        &["-c", "bad.conf", "status"][..],
        &["-c", "bad.conf", "tapes"],
        &["-c", "bad.conf", "activate_tape", "PUB-T1"],
        &["-c", "bad.conf", "open_tape", "T9", "-y"],
        &["-c", "bad.conf", "close_tape", "-y", "--force"],
        &["-c", "bad.conf", "confirm", "next"],
    ] {
        let run = fx.run(args);
        run.expect_code(1);
        assert_one_line_error(&run, "not a readable sqlite catalogue");
        assert_eq!(md5_file(&path), before, "tapeop {args:?} wrote to the garbage file");
    }
}

// ---- unknown tapes, duplicates ----

#[test]
fn unknown_tape_in_reports() {
    let fx = Fixture::new();
    refused_bytes_same(&fx, &["status", "NOPE"], 1, "no tape named \"NOPE\"");
    refused_bytes_same(&fx, &["tape_detail", "NOPE"], 1, "no tape named \"NOPE\"");
    refused_bytes_same(&fx, &["tape_detail", "NOPE", "1", "-v"], 1, "no tape named \"NOPE\"");
}

#[test]
fn activating_an_unknown_tape() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["activate_tape", "NOPE"], "", 1, "no tape named \"NOPE\"");
    // Still PUB-T2 online.
    let run = fx.run(&["tapes"]);
    assert_eq!(run.stdout, fx.expected_output("tapes.txt"));
}

#[test]
fn unknown_tape_for_close_and_assign() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["close_tape", "NOPE", "-y", "--force"], "", 1, "no tape named \"NOPE\"");
    refused_legacy_same(&fx, &["assign", "NOPE", "-y"], "", 1, "no tape named \"NOPE\"");
}

#[test]
fn duplicate_tape_name() {
    let fx = Fixture::new();
    let run = refused_legacy_same(&fx, &["open_tape", "PUB-T1", "-y"], "", 1, "a tape named \"PUB-T1\" already exists");
    assert!(!run.stdout.contains("Creating tape entry"), "{run:#?}");
}

#[test]
fn duplicate_serial() {
    let fx = Fixture::new();
    refused_legacy_same(
        &fx,
        &["open_tape", "NEW", "--serial", "PUB-SN-0001", "-y", "--online"],
        "",
        1,
        "serial number \"PUB-SN-0001\" already belongs to tape \"PUB-T1\"",
    );
    // The online tape did not move.
    assert_eq!(fx.run(&["tapes"]).stdout, fx.expected_output("tapes.txt"));
}

#[test]
fn duplicate_serial_given_at_the_question() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["open_tape", "NEW"], "y\nPUB-SN-0002\ny\n", 1, "already belongs to tape \"PUB-T2\"");
}

#[test]
fn tape_name_with_spaces_is_refused() {
    let fx = Fixture::new();
    refused_legacy_same(
        &fx,
        &["open_tape", "A B", "-y"],
        "",
        1,
        "tape name \"A B\" is not allowed: use 1 to 64 of the characters A-Z a-z 0-9 . _ -",
    );
}

// ---- close_tape ----

#[test]
fn closing_a_tape_with_recorded_unconfirmed_work_is_refused() {
    let fx = Fixture::new();
    for args in [&["close_tape"][..], &["close_tape", "-y"], &["close_tape", "PUB-T2", "-y"]] {
        refused_legacy_same(&fx, args, "y\n", 1, "has 3 recorded tape files not yet confirmed");
    }
}

#[test]
fn close_tape_force_closes_and_dissociates_assigned() {
    let fx = Fixture::new();
    let run = fx.run(&["close_tape", "--force", "-y"]);
    run.expect_code(0).expect_stdout("Found 1 jobs to dissociate.");
    let (status, online): (String, i64) = fx
        .sql()
        .query_row("select status, online from tapes where name='PUB-T2'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((status.as_str(), online), ("closed", 0));
    fx.run(&["unassigned"]).expect_code(0).expect_stdout("There are 2 unassigned targets");
}

#[test]
fn close_tape_with_no_answer_on_stdin() {
    let fx = Fixture::new();
    // A tape with nothing recorded: the question is reached.
    let run = refused_legacy_same(&fx, &["close_tape", "PUB-T1"], "", 1, "no answer");
    run.expect_stdout("Do you wish to proceed?");
    // --force past the recorded check: the question is reached, no answer.
    refused_legacy_same(&fx, &["close_tape", "--force"], "", 1, "no answer");
    let status: String = fx.sql().query_row("select status from tapes where name='PUB-T2'", [], |r| r.get(0)).unwrap();
    assert_eq!(status, "open");
}

#[test]
fn close_tape_answered_no() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["close_tape", "--force"], "n\n", 1, "aborted: nothing was changed");
}

// ---- assign ----

#[test]
fn assign_with_no_online_tape() {
    let fx = Fixture::new();
    fx.exec("update tapes set online=0");
    refused_legacy_same(&fx, &["assign", "-y"], "y\n", 1, "no tape is online");
    refused_legacy_same(&fx, &["assign"], "y\n", 1, "no tape is online");
}

#[test]
fn assign_to_a_closed_tape() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["assign", "PUB-T1", "-y"], "", 1, "is closed");
}

#[test]
fn assign_with_no_answer() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["assign"], "", 1, "no answer");
}

#[test]
fn assign_with_yes_on_stdin() {
    let fx = Fixture::new();
    let run = fx.run_stdin(&["assign"], "y\n");
    run.expect_code(0).expect_stdout("There are 1 unassigned targets.").expect_stdout("Done.");
    let status = fx.run(&["status"]);
    status
        .expect_code(0)
        .expect_stdout("type assigned            :      2 (")
        .expect_stdout("There are 0 unassigned targets.");
    // Nothing left: exit 40.
    let again = fx.run(&["assign", "-y"]);
    again.expect_code(40);
}

#[test]
fn assign_with_many_yes_lines_like_yes_pipe() {
    let fx = Fixture::new();
    let run = fx.run_stdin(&["assign"], &"y\n".repeat(1000));
    run.expect_code(0).expect_stdout("Done.");
}

// ---- file numbers ----

#[test]
fn non_numeric_file_numbers_are_usage_errors() {
    let fx = Fixture::new();
    refused_bytes_same(&fx, &["tape_detail", "PUB-T2", "x"], 2, "not a tape file number");
    refused_bytes_same(&fx, &["backup_info", "x"], 2, "not a tape file number");
    refused_bytes_same(&fx, &["confirm", "x"], 2, "not a tape file number");
    refused_bytes_same(&fx, &["confirm", "1.5"], 2, "not a tape file number");
}

#[test]
fn negative_file_number_is_a_usage_error() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    fx.run(&["confirm", "-1"]).expect_code(2);
    fx.run(&["backup_info", "--", "-1"]).expect_code(2).expect_stderr("not a tape file number");
    assert_eq!(fx.db_md5(), before);
}

#[test]
fn file_number_not_on_the_tape() {
    let fx = Fixture::new();
    refused_bytes_same(&fx, &["backup_info", "9"], 1, "has no backup at file number 9");
    refused_legacy_same(&fx, &["confirm", "9"], "", 1, "has no tape file 9");
    refused_legacy_same(&fx, &["confirm", "6"], "", 1, "already confirmed; pass --retry");
}

#[test]
fn unknown_command_is_a_usage_error() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    fx.run(&["frobnicate"]).expect_code(2);
    fx.run(&["where_is"]).expect_code(2);
    fx.run(&["open_tape"]).expect_code(2);
    assert_eq!(fx.db_md5(), before);
}

// ---- newer catalogue ----

#[test]
fn newer_catalogue_version_is_refused_by_every_command() {
    let fx = Fixture::new();
    fx.exec("PRAGMA user_version=99");
    let before = fx.db_md5();
    let cmds: &[&[&str]] = &[
        &[],
        &["status"],
        &["status", "PUB-T1"],
        &["tapes"],
        &["tapes", "-v"],
        &["unassigned"],
        &["tape_detail"],
        &["tape_detail", "-v"],
        &["where_is", "plain.txt"],
        &["backup_info"],
        &["backup_info", "1"],
        &["dump_manifest", "man"],
        &["open_tape", "T9", "-y"],
        &["close_tape", "-y", "--force"],
        &["activate_tape", "PUB-T1"],
        &["assign", "-y"],
        &["import", "lists/stageC.txt", "-y"],
        &["archive"],
        &["confirm", "next"],
        &["confirm", "3"],
        &["confirm", "3", "--no-db-update"],
    ];
    for args in cmds {
        let run = fx.run_stdin(args, "y\n");
        run.expect_code(1);
        assert_one_line_error(&run, "newer");
        assert_eq!(fx.db_md5(), before, "tapeop {args:?} changed a newer catalogue");
    }
    assert!(!fx.path("man").exists(), "dump_manifest wrote output for a refused catalogue");
    assert_eq!(fx.user_version(), 99);
    assert!(!fx.path("tape.sqlite-wal").exists(), "a WAL file appeared beside a refused catalogue");
}

// ---- exit_file ----

#[test]
fn exit_file_stops_confirm_before_it_starts() {
    let fx = Fixture::new();
    fx.write("exit_file", "");
    let before = fx.db_md5();
    for args in [&["confirm", "next"][..], &["confirm", "3"], &["confirm", "next", "--repeat"]] {
        let run = fx.run(args);
        run.expect_code(41);
        assert_one_line_error(&run, "stop requested");
        assert!(!run.stdout.contains("Marking"), "{run:#?}");
        assert_eq!(fx.db_md5(), before, "tapeop {args:?} changed tape.sqlite despite exit_file");
    }
    // Reports are not jobs: they still run.
    fx.run(&["status"]).expect_code(0);
    // Removing it lets confirm go on.
    std::fs::remove_file(fx.path("exit_file")).unwrap();
    fx.run(&["confirm", "3"]).expect_code(0);
}

#[test]
fn exit_file_stops_assign() {
    let fx = Fixture::new();
    fx.write("exit_file", "");
    let before = fx.db_md5();
    let run = fx.run(&["assign", "-y"]);
    run.expect_code(41);
    assert_one_line_error(&run, "stop requested");
    assert_eq!(fx.db_md5(), before);
}

// ---- open_tape questions ----

fn tape_row(fx: &Fixture, name: &str) -> (Option<String>, String, i64) {
    fx.sql()
        .query_row("select serial, status, online from tapes where name=?1", [name], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
}

#[test]
fn open_tape_with_answers_on_stdin() {
    let fx = Fixture::new();
    let run = fx.run_stdin(&["open_tape", "T3"], "y\nSN3\ny\n");
    run.expect_code(0).expect_stdout("Creating tape entry...");
    let tapes = fx.run(&["tapes"]);
    tapes.expect_code(0);
    assert!(tapes.stdout.contains("\nT3     *    SN3             3 open      \n"), "{tapes:#?}");
    assert!(tapes.stdout.contains("\nPUB-T2 .    PUB-SN-0002     2 open      \n"), "{tapes:#?}");
    assert_eq!(tape_row(&fx, "T3"), (Some("SN3".into()), "open".into(), 1));
}

#[test]
fn open_tape_answered_no_creates_nothing() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["open_tape", "T3"], "n\n", 1, "aborted");
}

#[test]
fn open_tape_with_no_answer_creates_nothing() {
    let fx = Fixture::new();
    refused_legacy_same(&fx, &["open_tape", "T3"], "", 1, "no answer");
    // Answered the first question only.
    refused_legacy_same(&fx, &["open_tape", "T3"], "y\n", 1, "no answer");
}

#[test]
fn open_tape_offline_answer_keeps_online_tape() {
    let fx = Fixture::new();
    fx.run_stdin(&["open_tape", "T3"], "y\nSN3\nn\n").expect_code(0);
    assert_eq!(tape_row(&fx, "T3"), (Some("SN3".into()), "open".into(), 0));
    assert_eq!(tape_row(&fx, "PUB-T2").2, 1);
}

#[test]
fn blank_serials_do_not_collide() {
    let fx = Fixture::new();
    fx.run_stdin(&["open_tape", "A"], "y\n\nn\n").expect_code(0);
    fx.run_stdin(&["open_tape", "B"], "y\n   \nn\n").expect_code(0);
    fx.run(&["open_tape", "C", "-y", "--offline"]).expect_code(0);
    let tapes = fx.run(&["tapes"]);
    tapes.expect_code(0);
    for name in ["A", "B", "C"] {
        assert!(tapes.stdout.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} missing: {tapes:#?}");
        let (serial, status, online) = tape_row(&fx, name);
        assert!(serial.as_deref().unwrap_or("").is_empty(), "{name} serial {serial:?}");
        assert_eq!((status.as_str(), online), ("open", 0));
    }
}

#[test]
fn yes_flag_answers_yes() {
    let fx = Fixture::new();
    let run = fx.run(&["open_tape", "T4", "-y"]);
    run.expect_code(0).expect_stdout("Do you wish to proceed?  [yn] y");
    let (serial, status, online) = tape_row(&fx, "T4");
    assert!(serial.is_none() || serial.as_deref() == Some(""), "{serial:?}");
    assert_eq!((status.as_str(), online), ("open", 1), "-y answers yes to 'online now?'");
    assert_eq!(tape_row(&fx, "PUB-T2").2, 0, "only one tape is online");
    // --yes spelled out on assign.
    fx.run(&["assign", "--yes"]).expect_code(0).expect_stdout("Done.");
    let n: i64 = fx
        .sql()
        .query_row(
            "select count(*) from backups b join tapes t on t.id=b.tape_id where t.name='T4' and b.status='assigned'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

// ---- unreadable tape files ----

#[test]
fn confirm_of_a_missing_tape_file_fails_and_marks_nothing() {
    let fx = Fixture::new();
    std::fs::remove_file(fx.path("emu/PUB-T2/file00003.tar")).unwrap();
    let run = refused_legacy_same(&fx, &["confirm", "3"], "", 1, "file00003.tar does not exist");
    assert!(!run.stdout.contains("Marking"), "{run:#?}");
}

#[test]
fn confirm_of_a_truncated_tape_file_fails_and_marks_nothing() {
    let fx = Fixture::new();
    let p = fx.path("emu/PUB-T2/file00005.tar");
    let data = std::fs::read(&p).unwrap();
    std::fs::write(&p, &data[..700_000]).unwrap();
    refused_legacy_same(&fx, &["confirm", "5", "--retry"], "", 1, "not a readable tar stream");
    std::fs::write(fx.path("emu/PUB-T2/file00004.tar"), b"").unwrap();
    refused_legacy_same(&fx, &["confirm", "4"], "", 1, "not a readable tar stream");
}

#[test]
fn confirm_against_the_wrong_tape_fails_and_marks_nothing() {
    // PUB-T1's files in the drive while PUB-T2 is online: every file differs.
    let fx = Fixture::new();
    let before = fx.legacy_snapshot();
    let run = fx.run(&["-c", "tape.conf.PUB-T1", "confirm", "0"]);
    run.expect_code(1).expect_stderr("unexpected member outside the target");
    // One line per difference, then the one-line verdict.
    let last = *run.stderr_lines().last().unwrap();
    assert!(last.starts_with("tapeop: ") && last.contains("FAILED") && last.contains("nothing was marked"), "{run:#?}");
    assert!(!run.stdout.contains("Marking"), "{run:#?}");
    assert_eq!(fx.legacy_snapshot(), before);
}

// ---- questionable behaviour found while writing these (run with --ignored) ----

/// A zero-byte file as database_file: reports die with a raw sqlite error
/// that does not name the file (`tapeop: no such table: tapes: Error code 1:
/// SQL logic error`), and where_is prints its header before failing.
#[test]
fn empty_database_file_is_reported_by_name() {
    let fx = Fixture::new();
    fx.write("empty.sqlite", b"");
    fx.write("bad.conf", "[default]\ndatabase_file = empty.sqlite\ntape_device = /dev/nst0\nssh_command = ssh x\n");
    for args in [&["-c", "bad.conf", "status"][..], &["-c", "bad.conf", "tapes"], &["-c", "bad.conf", "where_is", "x"]]
    {
        let run = fx.run(args);
        run.expect_code(1);
        assert_one_line_error(&run, "empty.sqlite");
        assert!(!run.stderr.contains("SQL logic error"), "{run:#?}");
        assert_eq!(run.stdout, "", "partial report before the error: {run:#?}");
    }
}

/// A serial number given with --serial is only checked after the questions,
/// so the operator is asked, told "Creating tape entry...", then refused.
#[test]
fn duplicate_serial_is_refused_before_the_questions() {
    let fx = Fixture::new();
    let run = fx.run(&["open_tape", "NEW", "--serial", "PUB-SN-0001", "-y", "--online"]);
    run.expect_code(1);
    assert!(!run.stdout.contains("Creating tape entry"), "{run:#?}");
}

/// A refused read-write command still upgrades a legacy catalogue (schema
/// version 1, WAL mode, tapeop tables and triggers) before it refuses.
#[test]
fn refused_commands_leave_a_legacy_catalogue_byte_identical() {
    for args in [
        &["activate_tape", "NOPE"][..],
        &["open_tape", "PUB-T1", "-y"],
        &["close_tape", "-y"],
        &["confirm", "9"],
        &["confirm", "6"],
    ] {
        let fx = Fixture::new();
        refused_bytes_same(&fx, args, 1, "");
        assert_eq!(fx.user_version(), 0, "tapeop {args:?}");
    }
}
