//! `tape.conf` keys: an unknown key is warned about (naming the nearest
//! known one) and ignored; an empty `database_file` is refused clearly.

mod support;

use support::world;

use std::fs;

use world::{World, stderr, stdout};

#[test]
fn an_unknown_key_is_warned_about_with_the_nearest_known_one() {
    let w = World::new();
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.config_with("", "emulator_dir = emu", "blocksize = 1M\nchek_in_flight = off\nblocksize = 2M");
    let out = w.run(&["tapes"], 0);
    assert_eq!(
        stderr(&out),
        "tapeop: warning: config file tape.conf: unknown key 'blocksize' is ignored (did you mean 'block_size'?)\n\
         tapeop: warning: config file tape.conf: unknown key 'chek_in_flight' is ignored (did you mean 'check_in_flight'?)\n"
    );
    assert!(stdout(&out).contains("T1"), "the command still runs");
    // Known keys alone: not a word.
    w.config_with("", "emulator_dir = emu", "block_size = 1M");
    assert_eq!(stderr(&w.run(&["tapes"], 0)), "");
}

#[test]
fn an_empty_database_file_is_refused_clearly() {
    let w = World::new();
    fs::write(w.root().join("tape.conf"), "[default]\ndatabase_file =\nssh_command =\nemulator_dir = emu\n").unwrap();
    for args in [&["tapes"][..], &["open_tape", "T1", "-y"]] {
        let out = w.run(args, 1);
        assert_eq!(
            stderr(&out),
            "tapeop: config file tape.conf: database_file is empty: set it to the catalogue's path (e.g. database_file = tape.sqlite)\n"
        );
    }
    assert_eq!(fs::read_dir(w.root()).unwrap().count(), 3, "nothing created beside tape.conf, data and emu");
}
