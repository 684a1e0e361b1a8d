//! Tape file numbers at the edges (issue 12: one `TapeFile` type, no `-1`
//! outside the catalogue): a number beyond the catalogue's range is a usage
//! error, reports print the old tool's `-1` and the stored value exactly
//! where they did, and a written backup whose row lost its number is
//! refused by name instead of being read from a tape file that does not
//! exist.

mod support;

use serde_json::Value;
use support::fixture::Fixture;

const EDGE: &str = "/mnt/act6/actpol/data/season4/edge";

fn json(fx: &Fixture, args: &[&str]) -> Value {
    let run = fx.run(args);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:#?}"))
}

#[test]
fn a_file_number_beyond_the_catalogues_range_is_a_usage_error() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    for args in [
        &["backup_info", "9223372036854775808"][..],
        &["tape_detail", "PUB-T2", "18446744073709551616"],
        &["confirm", "9223372036854775808"],
        &["requeue", "9223372036854775808"],
    ] {
        let run = fx.run(args);
        run.expect_code(2).expect_stderr("is not a tape file number: give a whole number such as 0 or 12");
    }
    fx.run(&["backup_info", "9223372036854775807"]).expect_code(1).expect_stderr("has no backup at file number");
    assert_eq!(fx.db_md5(), before);
}

#[test]
fn a_written_backup_with_no_file_number_is_shown_as_minus_one_as_before() {
    let fx = Fixture::new();
    fx.exec("UPDATE backups SET file_number = NULL WHERE id = 9");
    let run = fx.run(&["tape_detail", "PUB-T2"]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[2].starts_with("   -1 recorded "), "{run:#?}");
    assert!(lines[2].ends_with("edge/e_spaces"), "{run:#?}");
    let doc = json(&fx, &["tape_detail", "PUB-T2", "--json"]);
    assert_eq!(doc["tape_files"][0]["file_number"], -1);
    assert_eq!(doc["tape_files"][1]["file_number"], 0);
}

#[test]
fn a_damaged_row_is_reported_with_its_stored_number() {
    let fx = Fixture::new();
    // The assigned backup keeps the old tool's -1; another loses its number.
    fx.exec("UPDATE backups SET tape_id = 9 WHERE id IN (9, 12); UPDATE backups SET file_number = NULL WHERE id = 9");
    let run = fx.run(&["check", "--json"]);
    run.expect_code(1);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let items = &doc["conditions"]["backup_missing_tape"]["items"];
    assert_eq!((items[0]["backup_id"].as_i64(), &items[0]["file_number"]), (Some(9), &Value::Null), "{doc:#}");
    assert_eq!((items[1]["backup_id"].as_i64(), &items[1]["file_number"]), (Some(12), &Value::from(-1)), "{doc:#}");
    let text = fx.run(&["check"]);
    text.expect_stdout("backup 9 (").expect_stdout(", file -1, recorded) names tape id 9");
}

#[test]
fn restoring_a_target_whose_backup_lost_its_number_is_refused_by_name() {
    let fx = Fixture::new();
    fx.exec("UPDATE backups SET file_number = NULL WHERE id = 9");
    let to = fx.path("out");
    let target = format!("{EDGE}/e_spaces");
    let run = fx.run(&["restore", &target, "--to", to.to_str().unwrap()]);
    run.expect_code(1).expect_stderr(&format!(
        "target {target} is recorded on tape \"PUB-T2\" but has no tape file number in the catalogue: \
         tapeop check lists damaged rows"
    ));
    assert!(!to.exists(), "nothing is restored");
}
