//! First contact with a catalogue the old tool left (schema version 0, no
//! tapeop tables): `status`, `tapes` and `unassigned` answer from the legacy
//! tables with the old tool's exact output and write nothing; the first
//! command that writes upgrades the schema once and says so on stderr.

mod support;

use support::fixture;

use fixture::Fixture;

/// The three first-contact reports and their saved outputs.
const REPORTS: [(&str, &str); 3] = [("status", "status"), ("tapes", "tapes"), ("unassigned", "unassigned")];

fn assert_reports_match_old_tool(fx: &Fixture) {
    for (cmd, name) in REPORTS {
        let run = fx.run(&[cmd]);
        run.expect_code(0);
        assert_eq!(run.stderr, "", "tapeop {cmd} wrote to stderr");
        assert_eq!(run.stdout, fx.expected_output(&format!("{name}.txt")), "tapeop {cmd} differs from the old tool");
    }
}

#[test]
fn reports_leave_a_never_upgraded_catalogue_unchanged_then_first_write_upgrades_it() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    assert_reports_match_old_tool(&fx);
    assert_eq!(fx.db_md5(), before, "a report changed the never-upgraded catalogue");
    assert_eq!(fx.user_version(), 0, "a report upgraded the schema");
    let legacy = fx.legacy_snapshot();

    // PUB-T2 is already online: the legacy rows stay as they are.
    let run = fx.run(&["activate_tape", "PUB-T2"]);
    run.expect_code(0).expect_stdout("Tape \"PUB-T2\" is now online.");
    let upgrade: Vec<&str> = run.stderr_lines().into_iter().filter(|l| l.contains("upgrading catalogue")).collect();
    assert_eq!(upgrade.len(), 1, "the upgrade is announced on one plain line: {:?}", run.stderr);
    assert!(upgrade[0].starts_with("tapeop: upgrading catalogue "), "{}", upgrade[0]);
    assert!(upgrade[0].contains("tape.sqlite from schema version 0 to 4"), "{}", upgrade[0]);
    assert!(upgrade[0].contains("of 1017 file rows"), "{}", upgrade[0]);
    assert_eq!(fx.user_version(), 4);
    assert_eq!(fx.legacy_snapshot(), legacy, "the upgrade changed the old tool's rows");
    let totals: i64 = fx
        .sql()
        .query_row("SELECT SUM(file_count) - (SELECT COUNT(*) FROM files) FROM tapeop_target_totals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(totals, 0, "the totals count every file row");

    // The reports now answer from the totals, with the same output; the
    // next write does not upgrade again.
    assert_reports_match_old_tool(&fx);
    let again = fx.run(&["activate_tape", "PUB-T2"]);
    again.expect_code(0);
    assert_eq!(again.stderr, "", "a second write announced an upgrade again");
}

#[test]
fn a_refused_write_leaves_a_never_upgraded_catalogue_untouched() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let run = fx.run(&["activate_tape", "NO-SUCH-TAPE"]);
    run.expect_code(1).expect_stderr("no tape named \"NO-SUCH-TAPE\"");
    assert!(!run.stderr.contains("upgrading"), "a refused command upgraded: {}", run.stderr);
    assert_eq!(fx.db_md5(), before);
    assert_eq!(fx.user_version(), 0);
}
