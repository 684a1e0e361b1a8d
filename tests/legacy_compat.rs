//! The old tool must keep working on a catalogue tapeop has used: tapeop
//! keeps the four legacy tables exactly (columns, types, rows except what a
//! command means to change), the old tool's own SQL still runs on it, and
//! tapeop's reports agree with rows the old tool writes afterwards.

mod support;

use support::fixture;

use rusqlite::{Connection, OpenFlags, params};

use fixture::{Fixture, LEGACY_TABLES, legacy_tables};

/// (cid, name, type, notnull, default, pk) of every column of a table.
type ColumnInfo = (i64, String, String, i64, Option<String>, i64);

fn table_info(conn: &Connection, table: &str) -> Vec<ColumnInfo> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})")).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The legacy columns as (name, declared type), from the legacy schema.
const LEGACY_COLUMNS: [(&str, &[(&str, &str)]); 4] = [
    (
        "tapes",
        &[
            ("id", "integer"),
            ("name", "varchar(256)"),
            ("serial", "varchar(256)"),
            ("status", "varchar(16)"),
            ("online", "integer"),
        ],
    ),
    ("targets", &[("id", "integer"), ("name", "varchar(2048)"), ("scanned", "integer"), ("parent_id", "integer")]),
    (
        "files",
        &[
            ("id", "integer"),
            ("target_id", "integer"),
            ("name", "varchar(512)"),
            ("md5sum", "varchar(32)"),
            ("size_kb", "integer"),
        ],
    ),
    (
        "backups",
        &[
            ("id", "integer"),
            ("target_id", "integer"),
            ("tape_id", "integer"),
            ("file_number", "integer"),
            ("status", "varchar(16)"),
        ],
    ),
];

fn ro(fx: &Fixture) -> Connection {
    Connection::open_with_flags(fx.db(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn table_sql(conn: &Connection, table: &str) -> String {
    conn.query_row("select sql from sqlite_master where type='table' and name=?1", [table], |r| r.get(0)).unwrap()
}

/// Legacy rows as (table, rows); `edit` mutates the expected copy.
fn expect_rows(
    before: &[(String, Vec<String>)],
    edit: impl FnOnce(&mut Vec<(String, Vec<String>)>),
) -> Vec<(String, Vec<String>)> {
    let mut v = before.to_vec();
    edit(&mut v);
    v
}

fn rows_mut<'a>(v: &'a mut [(String, Vec<String>)], table: &str) -> &'a mut Vec<String> {
    &mut v.iter_mut().find(|(t, _)| t == table).unwrap().1
}

fn replace_row(v: &mut [(String, Vec<String>)], table: &str, old: &str, new: &str) {
    let rows = rows_mut(v, table);
    let i = rows.iter().position(|r| r == old).unwrap_or_else(|| panic!("no row {old:?} in {table}: {rows:#?}"));
    rows[i] = new.to_string();
}

// ---- (a) schema ----

#[test]
fn legacy_columns_and_types_survive_read_write_commands() {
    let pristine = Fixture::new();
    let fx = Fixture::new();
    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
    fx.run(&["confirm", "3"]).expect_code(0);
    fx.run(&["assign", "-y"]).expect_code(0);
    fx.run_stdin(&["open_tape", "T3"], "y\nSN3\nn\n").expect_code(0);
    assert_eq!(fx.user_version(), 4);

    let (old, new) = (ro(&pristine), ro(&fx));
    for (table, cols) in LEGACY_COLUMNS {
        let info = table_info(&new, table);
        assert_eq!(info, table_info(&old, table), "PRAGMA table_info({table}) changed");
        // sqlite reports `integer` as INTEGER: compare declared types case-insensitively.
        let got: Vec<(String, String)> = info.iter().map(|c| (c.1.clone(), c.2.to_ascii_lowercase())).collect();
        let want: Vec<(String, String)> = cols.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(got, want, "legacy columns of {table}");
        assert_eq!(table_sql(&new, table), table_sql(&old, table), "CREATE TABLE {table} text changed");
    }
    // The legacy unique constraints are still there.
    let autoindexes = |c: &Connection| -> Vec<String> {
        let mut s = c
            .prepare(
                "select name from sqlite_master where type='index' and name like 'sqlite_autoindex_%'
                 and tbl_name in ('tapes','targets','files','backups') order by name",
            )
            .unwrap();
        s.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    };
    assert_eq!(autoindexes(&new), autoindexes(&old));
    // `select * from tapes` still returns exactly the 5 legacy columns.
    assert_eq!(new.prepare("select * from tapes").unwrap().column_count(), 5);
}

#[test]
fn a_catalogue_created_by_tapeop_has_the_legacy_tables() {
    let fx = Fixture::new();
    fx.write(
        "new.conf",
        "[default]\ndatabase_file = new.sqlite\ntape_device = /dev/nst0\nssh_command = ssh x\nemulator_dir = emu/NEW\n",
    );
    fx.run(&["-c", "new.conf", "open_tape", "N1", "--serial", "S1", "-y"]).expect_code(0);
    let new = Connection::open_with_flags(fx.path("new.sqlite"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let old = ro(&fx);
    for (table, _) in LEGACY_COLUMNS {
        assert_eq!(
            table_info(&new, table),
            table_info(&old, table),
            "new catalogue's {table} differs from the legacy one"
        );
    }
    assert_eq!(new.query_row("select * from tapes", [], |r| Ok(r.as_ref().column_count())).unwrap(), 5);
    let user_version: i64 = new.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(user_version, 4);
}

// ---- (b) rows ----

#[test]
fn activating_the_online_tape_changes_no_legacy_row() {
    let fx = Fixture::new();
    let before = legacy_tables(&fx.db());
    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
    assert_eq!(legacy_tables(&fx.db()), before);
}

#[test]
fn activating_another_tape_changes_only_online_flags() {
    let fx = Fixture::new();
    let before = legacy_tables(&fx.db());
    fx.run(&["activate_tape", "PUB-T1"]).expect_code(0).expect_stdout("Tape \"PUB-T1\" is now online.");
    let want = expect_rows(&before, |v| {
        replace_row(v, "tapes", "1|'PUB-T1'|'PUB-SN-0001'|'closed'|0", "1|'PUB-T1'|'PUB-SN-0001'|'closed'|1");
        replace_row(v, "tapes", "2|'PUB-T2'|'PUB-SN-0002'|'open'|1", "2|'PUB-T2'|'PUB-SN-0002'|'open'|0");
    });
    assert_eq!(legacy_tables(&fx.db()), want);
}

#[test]
fn confirm_changes_only_that_backup_status() {
    let fx = Fixture::new();
    let before = legacy_tables(&fx.db());
    let id: i64 =
        fx.sql().query_row("select id from backups where tape_id=2 and file_number=3", [], |r| r.get(0)).unwrap();
    let row = |s: &str| format!("{id}|10|2|3|'{s}'");
    fx.run(&["confirm", "3"]).expect_code(0);
    let want = expect_rows(&before, |v| replace_row(v, "backups", &row("recorded"), &row("confirmed")));
    assert_eq!(legacy_tables(&fx.db()), want);
}

#[test]
fn close_tape_changes_only_its_tape_and_assigned_backups() {
    let fx = Fixture::new();
    let before = legacy_tables(&fx.db());
    fx.run(&["close_tape", "--force", "-y"]).expect_code(0).expect_stdout("Found 1 jobs to dissociate.");
    let want = expect_rows(&before, |v| {
        replace_row(v, "tapes", "2|'PUB-T2'|'PUB-SN-0002'|'open'|1", "2|'PUB-T2'|'PUB-SN-0002'|'closed'|0");
        let b = rows_mut(v, "backups");
        let n = b.len();
        b.retain(|r| !r.ends_with("|2|-1|'assigned'"));
        assert_eq!(b.len(), n - 1);
    });
    assert_eq!(legacy_tables(&fx.db()), want);
}

#[test]
fn open_tape_and_assign_only_add_rows() {
    let fx = Fixture::new();
    let before = legacy_tables(&fx.db());
    fx.run_stdin(&["open_tape", "T3"], "y\nSN3\ny\n").expect_code(0);
    fx.run(&["assign", "-y"]).expect_code(0);
    let after = legacy_tables(&fx.db());
    let want = expect_rows(&before, |v| {
        replace_row(v, "tapes", "2|'PUB-T2'|'PUB-SN-0002'|'open'|1", "2|'PUB-T2'|'PUB-SN-0002'|'open'|0");
        rows_mut(v, "tapes").push("3|'T3'|'SN3'|'open'|1".into());
    });
    // tapes as expected; targets/files untouched; backups gain one assigned row for t03 (id 15) on T3.
    assert_eq!(after[0], want[0]);
    assert_eq!(after[1], before[1]);
    assert_eq!(after[2], before[2]);
    let (old_b, new_b) = (&before[3].1, &after[3].1);
    assert_eq!(&new_b[..old_b.len()], &old_b[..]);
    assert_eq!(new_b.len(), old_b.len() + 1);
    assert!(new_b.last().unwrap().ends_with("|15|3|-1|'assigned'"), "{new_b:#?}");
}

// ---- (c) the old tool's statements on a catalogue tapeop has upgraded ----

/// tapeop's `status` figure lines, computed independently from the legacy
/// tables only.
fn legacy_status_lines(conn: &Connection, tape_id: i64) -> Vec<String> {
    let mut lines = Vec::new();
    let mut total = 0i64;
    for status in ["confirmed", "recorded", "assigned"] {
        let (n, kb): (i64, i64) = conn
            .query_row(
                "select count(*), coalesce(sum(f.s), 0) from backups b
                 left join (select target_id, sum(size_kb) s from files group by target_id) f on f.target_id = b.target_id
                 where b.tape_id = ?1 and b.status = ?2",
                params![tape_id, status],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        total += kb;
        lines.push(format!("   type {status:<20}: {n:6} ({:9.3} GB)", kb as f64 / 1e6));
    }
    lines.push(format!("   total usage: {:.3} GB", total as f64 / 1e6));
    lines
}

fn legacy_unassigned(conn: &Connection) -> (i64, i64) {
    conn.query_row(
        "select count(*), coalesce(sum((select sum(size_kb) from files f where f.target_id = t.id)), 0) from targets t
         where t.scanned = 1 and not exists (select 1 from backups b where b.target_id = t.id)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn assert_reports_agree(fx: &Fixture, tape: &str, tape_id: i64) {
    let conn = ro(fx);
    let status = fx.run(&["status", tape]);
    status.expect_code(0);
    for line in legacy_status_lines(&conn, tape_id) {
        assert!(status.stdout.contains(&format!("{line}\n")), "status lacks {line:?}:\n{}", status.stdout);
    }
    let (n, kb) = legacy_unassigned(&conn);
    status.expect_stdout(&format!("There are {n} unassigned targets.\n"));
    let un = fx.run(&["unassigned"]);
    un.expect_code(0);
    assert_eq!(un.stdout, format!("There are {n} unassigned targets ({:.3} GB).\n\n", kb as f64 / 1e6));
}

#[test]
fn old_tool_statements_still_work_and_tapeop_reports_agree() {
    let fx = Fixture::new();
    // tapeop upgrades the catalogue (indexes, side tables, triggers).
    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
    fx.run(&["confirm", "3"]).expect_code(0);
    assert_eq!(fx.user_version(), 4);
    assert_reports_agree(&fx, "PUB-T2", 2);

    let c = fx.sql();
    // `select * from tapes`: exactly the 5 legacy columns.
    {
        let mut s = c.prepare("select * from tapes").unwrap();
        assert_eq!(s.column_count(), 5);
        let rows: Vec<(i64, String)> =
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap();
        assert_eq!(rows, vec![(1, "PUB-T1".into()), (2, "PUB-T2".into())]);
    }

    // The old tool's open_tape.
    c.execute("insert into tapes (name, serial, status) values (?,?,?)", params!["OLD-T3", "OLD-SN-3", "open"])
        .unwrap();
    let tapes = fx.run(&["tapes"]);
    tapes.expect_code(0);
    assert!(tapes.stdout.contains("\nOLD-T3 .    OLD-SN-3        3 open      \n"), "{tapes:#?}");

    // The old tool's import: a target, its files (1,000,000 + 234 KiB), scanned.
    let name = "/mnt/act6/actpol/data/season4/small/t99";
    c.execute("insert into targets (name) values (?)", [name]).unwrap();
    let tid = c.last_insert_rowid();
    // Not scanned yet: not unassigned.
    assert_reports_agree(&fx, "PUB-T2", 2);
    for (fname, md5, kb) in [
        ("a.dat", "0123456789abcdef0123456789abcdef", 1_000_000),
        ("b b&c.dat", "fedcba9876543210fedcba9876543210", 234),
    ] {
        c.execute(
            "insert into files (target_id, name, md5sum, size_kb) values (?,?,?,?)",
            params![tid, fname, md5, kb],
        )
        .unwrap();
    }
    c.execute("update targets set scanned=1 where id=?", [tid]).unwrap();
    let un = fx.run(&["unassigned"]);
    assert_eq!(un.stdout, "There are 2 unassigned targets (1.002 GB).\n\n", "{un:#?}");
    assert_reports_agree(&fx, "PUB-T2", 2);

    // The old tool's assign to PUB-T2.
    c.execute(
        "insert into backups (target_id, tape_id, file_number, status) values (?,?,?,?)",
        params![tid, 2, -1, "assigned"],
    )
    .unwrap();
    let bid = c.last_insert_rowid();
    let status = fx.run(&["status"]);
    status.expect_stdout("   type assigned            :      2 (    1.002 GB)\n");
    assert_reports_agree(&fx, "PUB-T2", 2);

    // The old tool's archive and confirm of it at file 7.
    c.execute("update backups set status='recorded', file_number=? where id=?", params![7, bid]).unwrap();
    c.execute("update backups set status='confirmed' where id=?", [bid]).unwrap();
    let status = fx.run(&["status"]);
    status
        .expect_stdout("   type confirmed           :      6 (    1.003 GB)\n")
        .expect_stdout("       5 -     7 : confirmed\n");
    assert_reports_agree(&fx, "PUB-T2", 2);
    let detail = fx.run(&["tape_detail", "PUB-T2", "7", "-v"]);
    detail.expect_code(0);
    assert_eq!(
        detail.stdout,
        format!(
            "# Tape name=\"PUB-T2\" serial=\"PUB-SN-0002\"\n#FNum Status          Size_GB Target_name\n    7 confirmed         1.000 {name}\nfile 0123456789abcdef0123456789abcdef   1.000000 a.dat\nfile fedcba9876543210fedcba9876543210   0.000234 b b&c.dat\n"
        )
    );
    let w = fx.run(&["where_is", "b b&c.dat"]);
    assert_eq!(
        w.stdout,
        format!(
            "#tape_name  Fnum status     md5sum                           filename\nPUB-T2     7 confirmed  fedcba9876543210fedcba9876543210 {name}/b b&c.dat\n# restore: tapeop restore '{name}' 'b b&c.dat' --to DIR   (tape PUB-T2 file 7)\n"
        )
    );

    // The old tool's close_tape: assigned backups dissociated.
    let n = c.execute("delete from backups where tape_id=? and status='assigned'", [2]).unwrap();
    assert_eq!(n, 1);
    let status = fx.run(&["status"]);
    status.expect_stdout("   type assigned            :      0 (    0.000 GB)\n");
    assert_reports_agree(&fx, "PUB-T2", 2);
    fx.run(&["unassigned"]).expect_code(0).expect_stdout("There are 2 unassigned targets (0.003 GB).");
    let tapes_v = fx.run(&["tapes", "-v"]);
    assert!(tapes_v.stdout.contains("\nPUB-T2 *    PUB-SN-0002     2 open            1.003\n"), "{tapes_v:#?}");

    // Files the old tool changes afterwards (size fix-up, removal) keep the totals right.
    c.execute("update files set size_kb=? where target_id=? and name=?", params![2_000_000, tid, "a.dat"]).unwrap();
    assert_reports_agree(&fx, "PUB-T2", 2);
    fx.run(&["status"]).expect_code(0).expect_stdout("   type confirmed           :      6 (    2.003 GB)\n");
    c.execute("delete from files where target_id=? and name=?", params![tid, "a.dat"]).unwrap();
    assert_reports_agree(&fx, "PUB-T2", 2);
    fx.run(&["status"]).expect_code(0).expect_stdout("   type confirmed           :      6 (    0.003 GB)\n");

    // The old tool's rows sit above the totals' high-water mark until
    // tapeop next writes; then they are folded in, counted once.
    let mark = |c: &Connection| -> i64 {
        c.query_row("select cast(value as integer) from tapeop_meta where key = 'totals_file_id'", [], |r| r.get(0))
            .unwrap()
    };
    let max_id: i64 = c.query_row("select max(id) from files", [], |r| r.get(0)).unwrap();
    assert!(mark(&c) < max_id);
    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
    assert_eq!(mark(&c), max_id);
    let kept: (i64, i64) = c
        .query_row("select file_count, size_kb from tapeop_target_totals where target_id = ?", [tid], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kept, (1, 234));
    assert_reports_agree(&fx, "PUB-T2", 2);
    fx.run(&["status"]).expect_code(0).expect_stdout("   type confirmed           :      6 (    0.003 GB)\n");

    // And tapeop still reads the old tool's tape 7 as confirmed next to its own work.
    fx.run(&["confirm", "next", "--repeat"]).expect_code(40);
    let status = fx.run(&["status"]);
    status.expect_stdout("       0 -     7 : confirmed\n");
}

#[test]
fn reports_are_unchanged_after_tapeop_upgraded_the_catalogue() {
    let fx = Fixture::new();
    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
    assert_eq!(fx.user_version(), 4);
    for (args, name) in [
        (&["status"][..], "status"),
        (&["status", "PUB-T1"], "status_closed"),
        (&["tapes"], "tapes"),
        (&["tapes", "-v"], "tapes_v"),
        (&["unassigned"], "unassigned"),
        (&["tape_detail"], "tape_detail"),
        (&["tape_detail", "-v"], "tape_detail_v"),
        (&["tape_detail", "PUB-T1", "-v"], "tape_detail_closed_v"),
        (&["tape_detail", "PUB-T2", "1", "-v"], "tape_detail_active_fnum1_v"),
    ] {
        let before = fx.legacy_snapshot();
        let run = fx.run(args);
        run.expect_code(0);
        assert_eq!(run.stdout, fx.expected_output(&format!("{name}.txt")), "tapeop {args:?} after the upgrade");
        assert_eq!(fx.legacy_snapshot(), before);
    }
}

// ---- (d) user_version ----

#[test]
fn user_version_stays_0_after_read_only_commands() {
    let fx = Fixture::new();
    let before = fx.db_md5();
    let cmds: &[&[&str]] = &[
        &[],
        &["status"],
        &["status", "PUB-T1"],
        &["tapes"],
        &["tapes", "-v"],
        &["unassigned"],
        &["tape_detail", "-v"],
        &["tape_detail", "PUB-T1"],
        &["where_is", "plain.txt"],
        &["backup_info"],
        &["backup_info", "3"],
        &["dump_manifest", "man"],
        &["confirm", "3", "--no-db-update"],
        &["confirm", "5", "--retry", "--no-db-update"],
    ];
    for args in cmds {
        fx.run(args).expect_code(0);
        assert_eq!(fx.user_version(), 0, "tapeop {args:?} upgraded the schema");
        assert_eq!(fx.db_md5(), before, "tapeop {args:?} changed tape.sqlite");
    }
    // No tapeop table appeared.
    let n: i64 =
        ro(&fx).query_row("select count(*) from sqlite_master where name like 'tapeop%'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn user_version_is_4_after_a_read_write_command() {
    for args in [&["activate_tape", "PUB-T2"][..], &["confirm", "3"], &["assign", "-y"], &["open_tape", "T3", "-y"]] {
        let fx = Fixture::new();
        assert_eq!(fx.user_version(), 0);
        fx.run(args).expect_code(0);
        assert_eq!(fx.user_version(), 4, "after tapeop {args:?}");
        // A second read-write run keeps it at 2 and changes no legacy row.
        let before = fx.legacy_snapshot();
        fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
        assert_eq!(fx.user_version(), 4);
        let after = fx.legacy_snapshot();
        if args[0] != "open_tape" {
            assert_eq!(after, before);
        }
    }
}

#[test]
fn legacy_tables_list_is_complete() {
    // Every table of the fixture is one of the four legacy tables (plus sqlite_sequence).
    let fx = Fixture::new();
    let c = ro(&fx);
    let mut s = c.prepare("select name from sqlite_master where type='table' order by name").unwrap();
    let names: Vec<String> = s.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap();
    let mut want: Vec<String> = LEGACY_TABLES.iter().map(|s| s.to_string()).collect();
    want.push("sqlite_sequence".into());
    want.sort();
    assert_eq!(names, want);
}

/// The version 1 insert trigger, as tapeop 1 left it in catalogues.
const V1_INSERT_TRIGGER: &str = "CREATE TRIGGER tapeop_files_ins AFTER INSERT ON files BEGIN
    INSERT OR IGNORE INTO tapeop_target_totals (target_id) VALUES (NEW.target_id);
    UPDATE tapeop_target_totals SET file_count = file_count + 1,
        size_kb = size_kb + COALESCE(NEW.size_kb, 0) WHERE target_id = NEW.target_id;
END;";

#[test]
fn a_version_1_catalogue_upgrades_to_2_without_counting_a_file_twice() {
    let fx = Fixture::new();
    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
    // Turn it back into what tapeop 1 left: an insert trigger, no mark.
    let c = fx.sql();
    c.execute_batch(&format!(
        "DELETE FROM tapeop_meta WHERE key = 'totals_file_id'; {V1_INSERT_TRIGGER} PRAGMA user_version = 1;"
    ))
    .unwrap();
    // The old tool imports a file; the version 1 trigger counts it.
    c.execute("insert into files (target_id, name, md5sum, size_kb) values (1, 'late.dat', '0123456789abcdef0123456789abcdef', 5000)", [])
        .unwrap();
    fx.run(&["activate_tape", "PUB-T2"]).expect_code(0);
    assert_eq!(fx.user_version(), 4);
    let triggers: Vec<String> = c
        .prepare("select name from sqlite_master where type = 'trigger' order by name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(triggers, ["tapeop_files_del", "tapeop_files_upd"]);
    let rows = |sql: &str| -> Vec<(i64, i64, i64)> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let kept = rows(
        "select target_id, file_count, size_kb from tapeop_target_totals where file_count != 0 order by target_id",
    );
    let actual = rows("select target_id, count(*), sum(size_kb) from files group by target_id order by target_id");
    assert_eq!(kept, actual);
    let (mark, max): (i64, i64) = c
        .query_row(
            "select (select cast(value as integer) from tapeop_meta where key = 'totals_file_id'), max(id) from files",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(mark, max);
}
