//! Appending to a tape the old tool wrote (no label): tapeop proves the tape
//! by the first member of the last tape file and the true end of data, then
//! writes at the old tool's append point; a wrong tape is refused.

mod support;

use support::fixture;

use fixture::Fixture;

#[test]
fn the_old_tools_tape_is_proven_by_its_last_file_and_appended_at_7() {
    let fx = Fixture::new();
    fx.write(
        "tape.conf",
        "[default]\ndatabase_file = tape.sqlite\ntape_device = /dev/nst0\nssh_command =\nemulator_dir = emu/PUB-T2\n",
    );
    // small/t02 is assigned; its source is not on this machine, so tar fails
    // after the proof has passed: the attempt is at file 7.
    let run = fx.run(&["archive"]);
    run.expect_code(42).expect_stdout("Seeking to file_number=7").expect_stderr("Cannot stat");
    assert!(fx.path("emu/PUB-T2/file00006.tar").exists());
    let backups: i64 = fx
        .sql()
        .query_row("SELECT COUNT(*) FROM backups WHERE status = 'assigned' AND file_number = -1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(backups, 1, "nothing recorded");
}

#[test]
fn a_wrong_old_tape_is_refused_before_anything_is_written() {
    let fx = Fixture::new();
    // The catalogue's online tape is PUB-T2 (7 files); load PUB-T1 (3 files).
    fx.write(
        "tape.conf",
        "[default]\ndatabase_file = tape.sqlite\ntape_device = /dev/nst0\nssh_command =\nemulator_dir = emu/PUB-T1\n",
    );
    let before: Vec<String> =
        (0..3).map(|n| fixture::md5_file(&fx.path(format!("emu/PUB-T1/file{n:05}.tar")))).collect();
    let run = fx.run(&["archive"]);
    run.expect_code(1).expect_stderr("refusing").expect_stderr("nothing was written");
    let after: Vec<String> =
        (0..3).map(|n| fixture::md5_file(&fx.path(format!("emu/PUB-T1/file{n:05}.tar")))).collect();
    assert_eq!(before, after);
    assert!(!fx.path("emu/PUB-T1/file00003.tar").exists());
}
