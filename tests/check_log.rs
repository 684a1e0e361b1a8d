//! `check` (for cron) and `log` (the history table), run by the real
//! binary: on a copy of the old tool's catalogue, and on a fresh local
//! workflow (no ssh, emulated tape) that is clean until one row is changed
//! per condition.

mod support;

use support::fixture;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fixture::{Fixture, md5_file};
use rusqlite::Connection;
use serde_json::Value;
use tempfile::TempDir;

/// Every problem condition `check` reports (the notice is separate).
const PROBLEMS: [&str; 12] = [
    "unconfirmed_overdue",
    "failed_confirm",
    "failed_archive",
    "unassigned",
    "never_scanned",
    "tape_full_open",
    "tape_nearly_full",
    "integrity",
    "backup_missing_target",
    "backup_missing_tape",
    "duplicate_file_number",
    "multiple_backups",
];

/// What one run of the binary produced.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A scratch directory with local data, an emulated tape and a catalogue.
struct Local {
    tmp: TempDir,
}

impl Local {
    /// Data targets `data/a` (2 files) and `data/b` (1 file), imported,
    /// assigned to online tape T1; nothing archived yet.
    fn assigned() -> Local {
        let tmp = tempfile::Builder::new().prefix("tapeop-check-").tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir_all(d.join("data/a/sub")).unwrap();
        fs::create_dir_all(d.join("data/b")).unwrap();
        fs::create_dir_all(d.join("emu")).unwrap();
        fs::write(d.join("data/a/x.txt"), "hello\n").unwrap();
        fs::write(d.join("data/a/sub/y.dat"), vec![7u8; 5000]).unwrap();
        fs::write(d.join("data/b/z.txt"), "zed\n").unwrap();
        let list = format!("{}\n{}\n", d.join("data/a").display(), d.join("data/b").display());
        fs::write(d.join("list.txt"), list).unwrap();
        fs::write(
            d.join("tape.conf"),
            "[default]\ndatabase_file = cat.sqlite\ntape_device = /dev/nst0\nssh_command =\nemulator_dir = emu\n",
        )
        .unwrap();
        let l = Local { tmp };
        l.ok(&["-y", "import", "list.txt"]);
        l.ok(&["open_tape", "T1", "--serial", "S", "--online", "-y"]);
        l.ok(&["-y", "assign"]);
        l
    }

    /// Both targets archived (tape files 1 and 2; 0 is tapeop's label).
    fn archived() -> Local {
        let l = Local::assigned();
        l.expect(&["archive", "--repeat"], 40);
        l
    }

    /// Archived and confirmed: a clean catalogue.
    fn clean() -> Local {
        let l = Local::archived();
        l.expect(&["confirm", "--repeat"], 40);
        l
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn db(&self) -> PathBuf {
        self.dir().join("cat.sqlite")
    }

    fn run(&self, args: &[&str]) -> Out {
        let o = Command::new(env!("CARGO_BIN_EXE_tapeop"))
            .args(args)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .output()
            .expect("run tapeop");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn expect(&self, args: &[&str], code: i32) -> Out {
        let o = self.run(args);
        assert_eq!(o.code, code, "tapeop {args:?}:\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
        o
    }

    fn ok(&self, args: &[&str]) -> Out {
        self.expect(args, 0)
    }

    fn sql(&self, sql: &str) {
        let c = Connection::open(self.db()).unwrap();
        c.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `check --json EXTRA...`: exit code and document.
    fn check(&self, extra: &[&str]) -> (i32, Value) {
        check_json(|args| self.run(args), extra)
    }
}

fn check_json(run: impl Fn(&[&str]) -> Out, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json", "check"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.code == 0 || o.code == 1, "check exit {}: {}", o.code, o.stderr);
    assert_eq!(o.stderr, "");
    let doc: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
    (o.code, doc)
}

fn count(doc: &Value, key: &str) -> i64 {
    doc["conditions"][key]["count"].as_i64().unwrap_or_else(|| panic!("no condition {key}: {doc}"))
}

/// Exit 1, and `key` is the only problem, found `n` times.
fn assert_only_problem(code: i32, doc: &Value, key: &str, n: i64) {
    assert_eq!(code, 1, "{doc:#}");
    for k in PROBLEMS {
        assert_eq!(count(doc, k), if k == key { n } else { 0 }, "condition {k}: {doc:#}");
    }
    assert_eq!(doc["problems"], n);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["conditions"][key]["problem"], true);
    assert_eq!(doc["conditions"][key]["items"].as_array().unwrap().len() as i64, n);
}

// ---- check on the old tool's catalogue ----

#[test]
fn check_on_the_legacy_fixture_finds_unassigned_and_unscanned_targets() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let text = fx.run(&["check"]);
    text.expect_code(1);
    assert_eq!(text.stderr, "");
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "tapeop check: 4 problems — 1 unassigned target, 3 targets never scanned (also 3 recorded unconfirmed, age unknown)"
    );
    assert_eq!(lines.len(), 1 + 1 + 3 + 3, "{}", text.stdout);
    assert!(lines[1].starts_with("unassigned: /mnt/act6/actpol/data/season4/small/t03 "), "{}", text.stdout);
    for t in ["e_unicode", "e_hardlink", "e_dirspaces"] {
        let want = format!("never_scanned: /mnt/act6/actpol/data/season4/edge/{t} ");
        assert!(lines.iter().any(|l| l.starts_with(&want)), "no line for {t}:\n{}", text.stdout);
    }
    for n in [0, 3, 4] {
        let want = format!("unconfirmed_age_unknown: tape PUB-T2 file {n} (");
        assert!(lines.iter().any(|l| l.starts_with(&want)), "no line for file {n}:\n{}", text.stdout);
    }

    let (code, doc) = check_json(|a| fx_out(&fx, a), &[]);
    assert_eq!(code, 1);
    assert_eq!((doc["problems"].as_i64(), doc["notices"].as_i64()), (Some(4), Some(3)));
    assert_eq!((doc["tapes"].as_i64(), doc["targets"].as_i64()), (Some(2), Some(15)));
    assert_eq!(count(&doc, "unassigned"), 1);
    assert_eq!(count(&doc, "never_scanned"), 3);
    assert_eq!(count(&doc, "unconfirmed_age_unknown"), 3);
    assert_eq!(doc["conditions"]["unconfirmed_age_unknown"]["problem"], false);
    for k in PROBLEMS.iter().filter(|k| !["unassigned", "never_scanned"].contains(k)) {
        assert_eq!(count(&doc, k), 0, "{k}");
    }
    assert_eq!(doc["conditions"]["unassigned"]["items"][0]["size_kb"], 1540);
    assert_eq!(doc["summary"], lines[0]);
    assert_eq!(fx.db_md5(), before, "check changed tape.sqlite");
    assert_eq!(fx.user_version(), 0, "check upgraded the schema");
}

fn fx_out(fx: &Fixture, args: &[&str]) -> Out {
    let r = fx.run(args);
    Out { code: r.code, stdout: r.stdout, stderr: r.stderr }
}

#[test]
fn check_on_the_legacy_fixture_is_well_once_targets_are_dealt_with() {
    let fx = Fixture::new();
    fx.exec("DELETE FROM targets WHERE scanned = 0; DELETE FROM targets WHERE id = 15;");
    let run = fx.run(&["check"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout.lines().next(),
        Some("tapeop check: all well (2 tapes, 11 targets; 3 recorded unconfirmed, age unknown)")
    );
}

// ---- check on a fresh local workflow ----

#[test]
fn check_is_well_after_a_clean_local_workflow() {
    let l = Local::clean();
    let before = md5_file(&l.db());
    let text = l.ok(&["check"]);
    assert_eq!(text.stdout, "tapeop check: all well (1 tape, 2 targets)\n");
    let (code, doc) = l.check(&[]);
    assert_eq!(code, 0);
    assert_eq!(doc["ok"], true);
    assert_eq!((doc["problems"].as_i64(), doc["notices"].as_i64()), (Some(0), Some(0)));
    assert_eq!((doc["days"].as_i64(), doc["full_percent"].as_i64()), (Some(7), Some(90)));
    for k in PROBLEMS.iter().chain(&["unconfirmed_age_unknown"]) {
        assert_eq!(count(&doc, k), 0, "{k}");
    }
    assert_eq!(md5_file(&l.db()), before, "check changed the catalogue");
}

#[test]
fn freshly_recorded_unconfirmed_tape_files_are_fine() {
    let l = Local::archived();
    let (code, doc) = l.check(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(count(&doc, "unconfirmed_overdue"), 0);
}

#[test]
fn recorded_unconfirmed_for_more_than_n_days_is_a_problem() {
    let l = Local::archived();
    l.sql("UPDATE tapeop_backup_info SET written_at = '2020-01-01 00:00:00 UTC' WHERE backup_id = 1");
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "unconfirmed_overdue", 1);
    let item = &doc["conditions"]["unconfirmed_overdue"]["items"][0];
    assert_eq!((item["tape"].as_str(), item["file_number"].as_i64()), (Some("T1"), Some(1)));
    assert_eq!(item["written_at"], "2020-01-01 00:00:00 UTC");
    assert!(item["age_days"].as_f64().unwrap() > 365.0);
    let text = l.expect(&["check"], 1);
    assert_eq!(text.stdout.lines().next(), Some("tapeop check: 1 problem — 1 recorded unconfirmed > 7 days"));
    assert!(
        text.stdout.lines().nth(1).unwrap().starts_with("unconfirmed_overdue: tape T1 file 1 ("),
        "{}",
        text.stdout
    );
    // A long enough allowance makes it fine again.
    assert_eq!(l.check(&["--days", "1000000"]).0, 0);
}

#[test]
fn recorded_without_a_date_is_a_notice_not_a_problem() {
    let l = Local::archived();
    l.sql("DELETE FROM tapeop_backup_info WHERE backup_id = 2");
    let (code, doc) = l.check(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(count(&doc, "unconfirmed_age_unknown"), 1);
    assert_eq!(doc["notices"], 1);
}

#[test]
fn a_failed_last_confirm_is_a_problem_until_a_later_one_passes() {
    let l = Local::clean();
    let row = "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, outcome, error)
               VALUES ('confirm', 'T1', 2, 'x', '2026-01-01 00:00:00 UTC', '2026-01-01 00:01:00 UTC', ";
    l.sql(&format!("{row} 'failed', '1 differences: z.txt md5 mismatch')"));
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "failed_confirm", 1);
    let item = &doc["conditions"]["failed_confirm"]["items"][0];
    assert_eq!((item["tape"].as_str(), item["file_number"].as_i64()), (Some("T1"), Some(2)));
    assert_eq!(item["error"], "1 differences: z.txt md5 mismatch");
    l.sql(&format!("{row} 'ok', NULL)"));
    assert_eq!(l.check(&[]).0, 0);
}

#[test]
fn a_full_mark_on_an_open_tape_is_a_problem() {
    let l = Local::clean();
    l.sql("UPDATE tapeop_tape_info SET full = 1 WHERE tape_id = 1");
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "tape_full_open", 1);
    assert_eq!(doc["conditions"]["tape_full_open"]["items"][0]["tape"], "T1");
    // Closed, it is fine.
    l.sql("UPDATE tapes SET status = 'closed', online = 0 WHERE id = 1");
    assert_eq!(l.check(&[]).0, 0);
}

#[test]
fn a_nearly_full_open_tape_is_a_problem() {
    let l = Local::clean();
    let written: i64 = Connection::open(l.db())
        .unwrap()
        .query_row("SELECT SUM(bytes) FROM tapeop_backup_info", [], |r| r.get(0))
        .unwrap();
    let capacity = written * 100 / 95;
    l.sql(&format!("UPDATE tapeop_tape_info SET capacity_bytes = {capacity} WHERE tape_id = 1"));
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "tape_nearly_full", 1);
    let item = &doc["conditions"]["tape_nearly_full"]["items"][0];
    assert_eq!((item["capacity_bytes"].as_i64(), item["written_bytes"].as_i64()), (Some(capacity), Some(written)));
    assert_eq!(item["percent"], 95.0);
    let text = l.expect(&["check"], 1);
    assert_eq!(text.stdout.lines().next(), Some("tapeop check: 1 problem — 1 tape >= 90% full"));
    assert_eq!(l.check(&["--full-percent", "99"]).0, 0);
}

#[test]
fn an_unassigned_target_is_a_problem() {
    let l = Local::clean();
    l.sql("INSERT INTO targets (name, scanned) VALUES ('/data/new', 1)");
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "unassigned", 1);
    assert_eq!(doc["conditions"]["unassigned"]["items"][0]["target"], "/data/new");
}

#[test]
fn a_never_scanned_target_is_a_problem() {
    let l = Local::clean();
    l.sql("INSERT INTO targets (name, scanned) VALUES ('/data/failed import', 0)");
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "never_scanned", 1);
    assert_eq!(doc["conditions"]["never_scanned"]["items"][0]["target"], "/data/failed import");
}

#[test]
fn two_written_backups_at_one_file_number_are_a_problem() {
    let l = Local::clean();
    l.sql(
        "INSERT INTO targets (id, name, scanned) VALUES (50, '/data/other', 1);
         INSERT INTO backups (target_id, tape_id, file_number, status) VALUES (50, 1, 2, 'confirmed');",
    );
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "duplicate_file_number", 1);
    let item = &doc["conditions"]["duplicate_file_number"]["items"][0];
    assert_eq!(
        (item["tape"].as_str(), item["file_number"].as_i64(), item["backups"].as_i64()),
        (Some("T1"), Some(2), Some(2))
    );
}

#[test]
fn a_backup_of_a_missing_target_is_a_problem() {
    let l = Local::clean();
    l.sql("DELETE FROM targets WHERE id = 2");
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "backup_missing_target", 1);
    assert_eq!(doc["conditions"]["backup_missing_target"]["items"][0]["target_id"], 2);
}

#[test]
fn a_backup_on_a_missing_tape_is_a_problem() {
    let l = Local::clean();
    l.sql("UPDATE backups SET tape_id = 9 WHERE id = 2");
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "backup_missing_tape", 1);
    assert_eq!(doc["conditions"]["backup_missing_tape"]["items"][0]["tape_id"], 9);
}

#[test]
fn a_target_with_two_backups_is_a_problem() {
    let l = Local::clean();
    l.sql("INSERT INTO backups (target_id, tape_id, file_number, status) VALUES (1, 1, -1, 'assigned')");
    let (code, doc) = l.check(&[]);
    assert_only_problem(code, &doc, "multiple_backups", 1);
    assert_eq!(doc["conditions"]["multiple_backups"]["items"][0]["backups"], 2);
}

#[test]
fn a_damaged_index_fails_the_integrity_check() {
    let l = Local::clean();
    // Make the schema say the name index covers md5sum: its entries no longer match.
    l.sql(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_master SET sql = 'CREATE INDEX tapeop_files_name ON files(md5sum)' WHERE name = 'tapeop_files_name';",
    );
    let (code, doc) = l.check(&[]);
    assert_eq!(code, 1);
    assert!(count(&doc, "integrity") > 0, "{doc:#}");
    let msg = doc["conditions"]["integrity"]["items"][0]["message"].as_str().unwrap();
    assert!(msg.contains("tapeop_files_name"), "{msg}");
}

#[test]
fn check_lists_at_most_the_detail_limit_but_counts_everything() {
    let l = Local::clean();
    l.sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 130)
         INSERT INTO targets (name, scanned) SELECT '/data/new' || i, 1 FROM n;",
    );
    let (code, doc) = l.check(&[]);
    assert_only_problem_count(code, &doc, "unassigned", 130, 100);
    let text = l.expect(&["check"], 1);
    assert_eq!(text.stdout.lines().count(), 1 + 100 + 1);
    assert_eq!(text.stdout.lines().last(), Some("unassigned: ... and 30 more"));
}

fn assert_only_problem_count(code: i32, doc: &Value, key: &str, n: i64, listed: usize) {
    assert_eq!(code, 1);
    assert_eq!(count(doc, key), n);
    assert_eq!(doc["conditions"][key]["items"].as_array().unwrap().len(), listed);
    assert_eq!(doc["conditions"][key]["more"].as_i64(), Some(n - listed as i64));
    assert_eq!(doc["problems"], n);
}

// ---- log ----

#[test]
fn log_after_the_local_workflow_lists_the_attempts() {
    let l = Local::clean();
    let text = l.ok(&["log"]);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "header, the label, 2 archives, 2 confirms: {}", text.stdout);
    let header = lines[0];
    for col in ["Started", "Ended", "Kind", "Tape", "FNum", "Target", "Bytes", "MB/s", "Outcome", "Error"] {
        assert!(header.contains(col), "{header}");
    }
    // Aligned: every column starts where its header does.
    let target_col = header.find("Target").unwrap();
    let outcome_col = header.find("Outcome").unwrap();
    let a = l.dir().join("data/a").display().to_string();
    for (i, (kind, fnum)) in [("archive", 1), ("archive", 2), ("confirm", 1), ("confirm", 2)].iter().enumerate() {
        let line = lines[i + 2];
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[6], *kind, "{line}");
        assert_eq!(words[7], "T1", "{line}");
        assert_eq!(words[8], fnum.to_string(), "{line}");
        assert_eq!(&line[outcome_col..outcome_col + 2], "ok", "{}", text.stdout);
        assert!(line[target_col..].starts_with(&l.dir().display().to_string()), "{line}");
    }
    assert!(lines[1].split_whitespace().nth(6) == Some("label"), "{}", text.stdout);
    assert!(lines[2][target_col..].starts_with(&a));

    let doc = log_json(&l, &[]);
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "the label, 2 archives, 2 confirms");
    let archives: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "archive").collect();
    assert_eq!(archives.len(), 2);
    for e in &archives {
        assert_eq!(e["outcome"], "ok");
        assert_eq!(e["error"], Value::Null);
        assert!(e["bytes"].as_i64().unwrap() > 0);
        assert!(e["ended"].as_str().unwrap().ends_with(" UTC"));
        assert!(e["seconds"].as_i64().unwrap() >= 0);
    }
    assert_eq!(archives[0]["target"], a);
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "newest last: {ids:?}");
}

fn log_json(l: &Local, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "log"];
    args.extend_from_slice(extra);
    let o = l.ok(&args);
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout))
}

#[test]
fn log_limit_keeps_the_newest_and_tape_filters() {
    let l = Local::clean();
    let doc = log_json(&l, &["--limit", "1"]);
    let e = doc["entries"].as_array().unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0]["kind"].as_str(), e[0]["file_number"].as_i64()), (Some("confirm"), Some(2)));
    assert_eq!(doc["limit"], 1);
    assert_eq!(log_json(&l, &["--limit", "0"])["entries"].as_array().unwrap().len(), 5);
    assert_eq!(log_json(&l, &["--tape", "T1"])["entries"].as_array().unwrap().len(), 5);
    l.ok(&["open_tape", "T2", "--serial", "S2", "--offline", "-y"]);
    let t2 = log_json(&l, &["--tape", "T2"]);
    assert_eq!((t2["tape"].as_str(), t2["entries"].as_array().unwrap().len()), (Some("T2"), 0));
    let bad = l.expect(&["log", "--tape", "NOPE"], 1);
    assert!(bad.stderr.contains("NOPE"), "{}", bad.stderr);
}

#[test]
fn log_shows_a_failed_archive_with_its_error_and_computes_rates() {
    let l = Local::assigned();
    fs::rename(l.dir().join("data/a"), l.dir().join("data/a.gone")).unwrap();
    l.expect(&["archive"], 42);
    l.sql(
        "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, bytes, outcome)
         VALUES ('archive', 'T1', 9, '/x', '2026-01-01 00:00:00 UTC', '2026-01-01 00:00:10 UTC', 50000000, 'ok')",
    );
    let doc = log_json(&l, &[]);
    let e = doc["entries"].as_array().unwrap();
    assert_eq!(e.len(), 3, "the label, the failed archive, the inserted row");
    assert_eq!(e[0]["kind"].as_str(), Some("label"));
    assert_eq!((e[1]["outcome"].as_str(), e[1]["bytes"].as_i64()), (Some("failed"), None));
    assert!(e[1]["error"].as_str().unwrap().contains("data/a"), "{}", e[1]);
    assert_eq!(e[1]["rate_mb_s"], Value::Null);
    assert_eq!((e[2]["seconds"].as_i64(), e[2]["rate_mb_s"].as_f64()), (Some(10), Some(5.0)));
    let text = l.ok(&["log"]);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[2].contains(" failed ") && lines[2].contains("data/a"), "{}", text.stdout);
    assert!(lines[3].contains(" 50000000  5.00  ok"), "{}", text.stdout);
}

#[test]
fn log_on_the_legacy_fixture_is_empty_and_changes_nothing() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let run = fx.run(&["log"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("Started"), "{run:#?}");
    let json = fx.run(&["--json", "log"]);
    json.expect_code(0);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["entries"], serde_json::json!([]));
    assert_eq!(fx.db_md5(), before);
    assert_eq!(fx.user_version(), 0);
}

// ---- backup_info history ----

#[test]
fn backup_info_shows_the_history_of_its_tape_file() {
    let l = Local::clean();
    let text = l.ok(&["backup_info", "1"]);
    let hist: Vec<&str> = text.stdout.lines().filter(|l| l.starts_with("History:")).collect();
    assert_eq!(hist.len(), 2, "{}", text.stdout);
    assert!(hist[0].contains(" archive ok, ") && hist[0].contains(" bytes"), "{}", hist[0]);
    assert!(hist[1].contains(" confirm ok"), "{}", hist[1]);
    let o = l.ok(&["--json", "backup_info", "1"]);
    let doc: Value = serde_json::from_str(&o.stdout).unwrap();
    let b = &doc["backups"][0];
    assert_eq!((b["file_number"].as_i64(), b["status"].as_str()), (Some(1), Some("confirmed")));
    assert!(b["written_at"].as_str().unwrap().ends_with(" UTC"));
    assert!(b["confirmed_at"].as_str().unwrap().ends_with(" UTC"));
    assert_eq!(b["size_bytes"], 6 + 5000);
    assert!(b["tape_bytes"].as_i64().unwrap() > 0);
    let kinds: Vec<&str> = b["history"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["archive", "confirm"]);
}

#[test]
fn a_failed_archive_needs_a_person_until_an_archive_succeeds() {
    let l = Local::assigned();
    fs::rename(l.dir().join("data/a"), l.dir().join("data/a.gone")).unwrap();
    l.expect(&["archive"], 42);
    let (code, doc) = l.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(count(&doc, "failed_archive"), 1, "{doc}");
    let item = doc["conditions"]["failed_archive"]["items"][0]["detail"].as_str().unwrap().to_string();
    assert!(item.contains("the last archive") && item.contains("data/a"), "{item}");
    fs::rename(l.dir().join("data/a.gone"), l.dir().join("data/a")).unwrap();
    l.expect(&["archive"], 0);
    let (_, doc) = l.check(&[]);
    assert_eq!(count(&doc, "failed_archive"), 0, "{doc}");
}
