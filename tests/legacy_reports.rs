//! The read-only reports of tapeop on the old tool's catalogue print exactly
//! what the old tool printed (fixture `outputs/`), leave the catalogue
//! byte-identical, and `confirm` / `dump_manifest` work on the old tool's
//! tapes, including the two tape files the old tool crashed on.

mod support;

use support::fixture;

use std::fs;
use std::process::Command;

use fixture::{Fixture, legacy_snapshot, tar_members};

/// Run a read-only report and compare it byte for byte with `outputs/NAME.txt`
/// (exit code from `outputs/NAME.rc`); the catalogue must stay byte-identical.
fn assert_legacy_report(args: &[&str], name: &str) {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let run = fx.run(args);
    let want_rc: i32 = fx.expected_output(&format!("{name}.rc")).trim().parse().unwrap();
    assert_eq!(want_rc, 0);
    run.expect_code(want_rc);
    let want = fx.expected_output(&format!("{name}.txt"));
    assert_eq!(run.stderr, "", "tapeop {args:?} wrote to stderr");
    assert_eq!(run.stdout, want, "tapeop {args:?} differs from outputs/{name}.txt");
    assert_eq!(fx.db_md5(), before, "tapeop {args:?} changed tape.sqlite");
    assert_eq!(fx.user_version(), 0, "a read-only report upgraded the schema");
}

macro_rules! legacy_report {
    ($test:ident, $name:literal, [$($arg:literal),*]) => {
        #[test]
        fn $test() {
            assert_legacy_report(&[$($arg),*], $name);
        }
    };
}

legacy_report!(status_matches_legacy, "status", ["status"]);
legacy_report!(status_closed_tape_matches_legacy, "status_closed", ["status", "PUB-T1"]);
legacy_report!(tapes_matches_legacy, "tapes", ["tapes"]);
legacy_report!(tapes_verbose_matches_legacy, "tapes_v", ["tapes", "-v"]);
legacy_report!(unassigned_matches_legacy, "unassigned", ["unassigned"]);
legacy_report!(tape_detail_matches_legacy, "tape_detail", ["tape_detail"]);
legacy_report!(tape_detail_verbose_matches_legacy, "tape_detail_v", ["tape_detail", "-v"]);
legacy_report!(tape_detail_closed_verbose_matches_legacy, "tape_detail_closed_v", ["tape_detail", "PUB-T1", "-v"]);
legacy_report!(
    tape_detail_one_file_verbose_matches_legacy,
    "tape_detail_active_fnum1_v",
    ["tape_detail", "PUB-T2", "1", "-v"]
);

/// The old tool's where_is output with the `/` it forgot between target and
/// the relative name `rel` inserted on every data line.
fn where_is_with_slash(old: &str, rel: &str) -> String {
    let mut out = String::new();
    for line in old.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if body.starts_with('#') || body.is_empty() {
            out.push_str(line);
            continue;
        }
        let target = body.strip_suffix(rel).unwrap_or_else(|| panic!("old line {body:?} does not end with {rel:?}"));
        assert!(!target.ends_with('/'), "old line already has a slash: {body:?}");
        out.push_str(&format!("{target}/{rel}{nl}"));
    }
    out
}

fn assert_where_is(words: &[&str], name: &str) {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let mut args = vec!["where_is"];
    args.extend_from_slice(words);
    let run = fx.run(&args);
    run.expect_code(0);
    assert_eq!(run.stderr, "");
    let rel = words.join(" ");
    let want = where_is_with_slash(&fx.expected_output(&format!("{name}.txt")), &rel);
    let (hints, table): (Vec<&str>, Vec<&str>) = run.stdout.lines().partition(|l| l.starts_with("# restore: "));
    let table: String = table.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(table, want, "tapeop {args:?} (old output with '/' inserted)");
    let on_tape = want.lines().filter(|l| l.contains(" recorded ") || l.contains(" confirmed ")).count();
    assert_eq!(hints.len(), on_tape, "one restore command per hit on tape: {}", run.stdout);
    for h in &hints {
        assert!(
            h.contains("tapeop restore '/mnt/act6/actpol/data/season4/") && h.contains(&format!("'{rel}' --to DIR")),
            "{h}"
        );
    }
    assert_eq!(fx.db_md5(), before, "where_is changed tape.sqlite");
}

#[test]
fn where_is_by_absolute_path_and_by_glob() {
    let fx = Fixture::new();
    let run = fx.run(&["where_is", "/mnt/act6/actpol/data/season4/edge/e_nested/child/child_file.dat"]);
    run.expect_code(0);
    let rows: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        rows,
        [
            "PUB-T2     3 recorded   eecf0395e422cd33695a373cb5eb91cf /mnt/act6/actpol/data/season4/edge/e_nested/child/child_file.dat"
        ]
    );
    assert!(run.stdout.contains("# restore: tapeop restore '/mnt/act6/actpol/data/season4/edge/e_nested/child' 'child_file.dat' --to DIR   (tape PUB-T2 file 3)"));
    let run = fx.run(&["where_is", "sub0/f00[12].dat"]);
    let rows = run.stdout.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(rows, 6, "f001 and f002 in t00, t01 and t02: {}", run.stdout);
    let run = fx.run(&["where_is", "/mnt/*/e_sp*/*"]);
    let rows: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 2, "{}", run.stdout);
    assert!(rows.iter().all(|r| r.contains("/edge/e_spaces/")));
    let run = fx.run(&["where_is", "/mnt/act6/actpol/data/season4/small/t00/nope.dat"]);
    assert_eq!(run.stdout.lines().count(), 1, "just the header");
}

#[test]
fn where_is_plain_txt_joins_with_slash() {
    assert_where_is(&["plain.txt"], "where_is_plain.txt");
}

#[test]
fn where_is_sub0_f000_joins_with_slash() {
    assert_where_is(&["sub0/f000.dat"], "where_is_sub0_f000.dat");
}

#[test]
fn where_is_bare_name_matches_nothing() {
    // Exact match on the relative name only: f000.dat is never a relative name.
    assert_where_is(&["f000.dat"], "where_is_f000.dat");
}

#[test]
fn where_is_child_target_joins_with_slash() {
    assert_where_is(&["child_file.dat"], "where_is_child_file.dat");
}

#[test]
fn where_is_joins_words_with_spaces() {
    assert_where_is(&["file", "with", "spaces.txt"], "where_is_file_with_spaces");
}

#[test]
fn where_is_quoted_name_with_spaces_is_the_same() {
    let fx = Fixture::new();
    let a = fx.run(&["where_is", "file with spaces.txt"]);
    let b = fx.run(&["where_is", "file", "with", "spaces.txt"]);
    a.expect_code(0);
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.contains("/mnt/act6/actpol/data/season4/edge/e_spaces/file with spaces.txt\n"), "{a:#?}");
}

#[test]
fn default_command_is_status_when_a_tape_is_online() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let run = fx.run::<&str>(&[]);
    run.expect_code(0);
    assert_eq!(run.stdout, fx.expected_output("status.txt"));
    assert_eq!(fx.db_md5(), before);
}

#[test]
fn default_command_is_tapes_when_no_tape_is_online_then_status_after_activate() {
    let fx = Fixture::new();
    fx.exec("update tapes set online=0");
    let before = fx.db_md5();
    let run = fx.run::<&str>(&[]);
    run.expect_code(0);
    let want = fx.expected_output("tapes.txt").replace("PUB-T2 *", "PUB-T2 .");
    assert_eq!(run.stdout, want, "default command with no online tape should be the tapes report");
    assert_eq!(fx.db_md5(), before, "the default command changed tape.sqlite");

    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0).expect_stdout("Tape \"PUB-T2\" is now online.");
    let run = fx.run::<&str>(&[]);
    run.expect_code(0);
    assert_eq!(run.stdout, fx.expected_output("status.txt"));
}

// ---- confirm on the old tool's tapes ----

fn backup_status(fx: &Fixture, tape: &str, file_number: i64) -> String {
    fx.sql()
        .query_row(
            "select b.status from backups b join tapes t on t.id = b.tape_id where t.name = ?1 and b.file_number = ?2",
            rusqlite::params![tape, file_number],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn confirm_0_with_ampersand_passes_and_marks_confirmed() {
    let fx = Fixture::new();
    assert_eq!(backup_status(&fx, "PUB-T2", 0), "recorded");
    let run = fx.run(&["confirm", "0"]);
    run.expect_code(0).expect_stdout("Marking record as confirmed.");
    assert_eq!(backup_status(&fx, "PUB-T2", 0), "confirmed");
    for n in [3, 4] {
        assert_eq!(backup_status(&fx, "PUB-T2", n), "recorded", "confirm 0 touched file {n}");
    }
}

#[test]
fn confirm_4_with_spaces_passes_and_marks_confirmed() {
    let fx = Fixture::new();
    assert_eq!(backup_status(&fx, "PUB-T2", 4), "recorded");
    let run = fx.run(&["confirm", "4"]);
    run.expect_code(0).expect_stdout("Marking record as confirmed.");
    assert_eq!(backup_status(&fx, "PUB-T2", 4), "confirmed");
    for n in [0, 3] {
        assert_eq!(backup_status(&fx, "PUB-T2", n), "recorded", "confirm 4 touched file {n}");
    }
}

#[test]
fn confirm_no_db_update_passes_and_changes_nothing() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let run = fx.run(&["confirm", "3", "--no-db-update"]);
    run.expect_code(0).expect_stdout("Confirm job succeeded, but DB will not be updated.");
    assert!(!run.stdout.contains("Marking record as confirmed"), "{run:#?}");
    assert_eq!(fx.db_md5(), before, "confirm --no-db-update changed tape.sqlite");
    assert_eq!(fx.user_version(), 0);
    assert_eq!(backup_status(&fx, "PUB-T2", 3), "recorded");
}

#[test]
fn confirm_next_no_db_update_checks_one_file_and_stops() {
    // The old tool re-confirmed the same file forever in this mode.
    let fx = Fixture::new();
    let before = fx.db_md5();
    let run = fx.run(&["confirm", "next", "--no-db-update"]);
    run.expect_code(0);
    assert_eq!(run.stdout.matches("Confirm job succeeded, but DB will not be updated.").count(), 1, "{run:#?}");
    assert!(run.stdout.contains("Seeking to file_number 0..."), "{run:#?}");
    assert_eq!(fx.db_md5(), before);
}

#[test]
fn confirm_numbered_checks_one_file_and_exits_0() {
    // The old tool looped on after a numbered confirm and exited 1.
    let fx = Fixture::new();
    let run = fx.run(&["confirm", "3"]);
    run.expect_code(0);
    assert_eq!(run.stdout.matches("Marking record as confirmed.").count(), 1, "{run:#?}");
    assert_eq!(backup_status(&fx, "PUB-T2", 0), "recorded");
    assert_eq!(backup_status(&fx, "PUB-T2", 3), "confirmed");
}

#[test]
fn confirm_next_repeat_confirms_all_three_then_exits_40() {
    let fx = Fixture::new();
    let run = fx.run(&["confirm", "next", "--repeat"]);
    run.expect_code(40);
    assert_eq!(run.stdout.matches("Marking record as confirmed.").count(), 3, "{run:#?}");
    for n in 0..=6 {
        assert_eq!(backup_status(&fx, "PUB-T2", n), "confirmed", "file {n}");
    }
    let status = fx.run(&["status"]);
    status.expect_code(0);
    assert!(status.stdout.contains("\n       0 -     6 : confirmed\n"), "{status:#?}");
    assert!(status.stdout.contains("type confirmed           :      7 ("), "{status:#?}");
    assert!(status.stdout.contains("type recorded            :      0 ("), "{status:#?}");
    // Nothing left: a second run has nothing to do.
    fx.run(&["confirm", "next", "--repeat"]).expect_code(40);
}

/// Flip one byte inside the data of the 10th regular member of
/// emu/PUB-T2/file00005.tar; returns the member's name relative to t00.
fn corrupt_t00(fx: &Fixture) -> String {
    let path = fx.path("emu/PUB-T2/file00005.tar");
    let mut data = fs::read(&path).unwrap();
    let members = tar_members(&data);
    let (name, off, size, _) = members
        .iter()
        .filter(|(_, _, size, ty)| (*ty == b'0' || *ty == 0) && *size > 100)
        .nth(9)
        .cloned()
        .expect("a regular member");
    data[off + size / 2] ^= 0x5a;
    fs::write(&path, data).unwrap();
    name.strip_prefix("mnt/act6/actpol/data/season4/small/t00/").expect("member of t00").to_string()
}

#[test]
fn confirm_retry_on_corrupted_tape_file_fails_naming_that_file() {
    let fx = Fixture::new();
    let rel = corrupt_t00(&fx);
    let before = fx.legacy_snapshot();
    let run = fx.run(&["confirm", "5", "--retry"]);
    run.expect_code(1).expect_stderr(&rel).expect_stderr("FAILED");
    // Exactly that file is named, no other f*.dat.
    let named: Vec<&str> =
        run.stderr.split(|c: char| c.is_whitespace()).filter(|w| w.starts_with("sub") && w.ends_with(".dat")).collect();
    assert_eq!(named, vec![rel.as_str()], "{run:#?}");
    assert!(!run.stdout.contains("Marking record as confirmed"), "{run:#?}");
    assert_eq!(fx.legacy_snapshot(), before, "a failed confirm changed the legacy tables");
    assert_eq!(backup_status(&fx, "PUB-T2", 5), "confirmed");
}

#[test]
fn confirm_retry_on_good_tape_file_passes() {
    let fx = Fixture::new();
    let run = fx.run(&["confirm", "5", "--retry", "--no-db-update"]);
    run.expect_code(0).expect_stdout("Confirm job succeeded");
    assert_eq!(run.stderr, "");
}

// ---- dump_manifest ----

#[test]
fn dump_manifest_lines_pass_md5sum_c_on_extracted_tape_files() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let run = fx.run(&["dump_manifest", "man"]);
    run.expect_code(0).expect_stdout("Wrote 10 manifests");
    assert_eq!(fx.db_md5(), before, "dump_manifest changed tape.sqlite");

    let index = fs::read_to_string(fx.path("man/INDEX.txt")).expect("INDEX.txt");
    let rows: Vec<Vec<&str>> =
        index.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 10, "INDEX.txt:\n{index}");
    assert!(
        index.lines().any(|l| l.starts_with("PUB-T2 5 ") && l.ends_with(" /mnt/act6/actpol/data/season4/small/t00")),
        "INDEX.txt lacks tape PUB-T2 file 5 = t00:\n{index}"
    );
    assert!(
        index
            .lines()
            .any(|l| l.starts_with("PUB-T1 2 ") && l.ends_with(" /mnt/act6/actpol/data/season4/edge/e_symlink")),
        "INDEX.txt lacks tape PUB-T1 file 2:\n{index}"
    );

    let mut checked = 0;
    for row in &rows {
        let (tape, fnum, manifest) = (row[0], row[1].parse::<u32>().unwrap(), row[3]);
        let scratch = fx.path(format!("scratch-{tape}-{fnum}"));
        fs::create_dir_all(&scratch).unwrap();
        let tarfile = fx.path(format!("emu/{tape}/file{fnum:05}.tar"));
        let st = Command::new("tar").arg("-xf").arg(&tarfile).arg("-C").arg(&scratch).status().unwrap();
        assert!(st.success(), "tar -xf {}", tarfile.display());
        let out = Command::new("md5sum")
            .arg("-c")
            .arg(fx.path("man").join(manifest))
            .current_dir(&scratch)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "md5sum -c {manifest} failed:\n{text}{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines.is_empty(), "{manifest} is empty");
        for l in &lines {
            assert!(l.ends_with(": OK"), "{manifest}: {l}");
        }
        checked += lines.len();
        if tape == "PUB-T2" && fnum == 5 {
            assert_eq!(lines.len(), 250, "t00 has 250 files");
        }
    }
    // 509 catalogued files on PUB-T2 + 7 on PUB-T1, minus the 2 symlinks (no md5).
    assert_eq!(checked, 509 + 8 - 2);
}

#[test]
fn dump_manifest_default_dir_is_manifests() {
    let fx = Fixture::new();
    fx.run(&["dump_manifest"]).expect_code(0);
    assert!(fx.path("manifests/INDEX.txt").is_file());
    assert!(fx.path("manifests/PUB-T2-file00005.md5").is_file());
}

#[test]
fn legacy_snapshot_helper_sees_the_fixture() {
    // Guards the helpers the other tests lean on.
    let fx = Fixture::new();
    let s = legacy_snapshot(&fx.db());
    assert!(s.contains("'PUB-T1'|'PUB-SN-0001'|'closed'|0"), "{s}");
    assert_eq!(fx.user_version(), 0);
}
