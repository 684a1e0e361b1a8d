//! `scan_tape` finds end of data by reading on, not by counting the tape
//! files first: an unreadable tape file, the last one included, is named
//! and the scan goes on to end of data, which is still found (the tape's
//! file count printed at the end) and the scan fails with exit 1.

#[path = "support/world.rs"]
mod world;

use std::fs;

use world::{World, stderr, stdout};

/// Tape T1 (emulator) holding the label and targets t0..t2 at files 1..3,
/// t2 with an 8 MB file (more than the reader reads ahead of the parser).
fn three_targets() -> World {
    let w = World::new();
    let targets: Vec<_> = (0..3)
        .map(|i| {
            let dir = w.data().join(format!("t{i}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("f.txt"), format!("target {i}\n").repeat(200)).unwrap();
            dir
        })
        .collect();
    fs::write(targets[2].join("big.bin"), vec![7u8; 8 << 20]).unwrap();
    w.archive_all(&w.list("list.txt", &targets), "T1");
    w
}

/// Spoil the first tar header of tape file `n` of the emulator (its
/// checksum no longer matches): the parser gives up at once, with the head
/// still inside the tape file.
fn spoil(w: &World, n: u64) {
    world::flip_byte(&w.root().join(format!("emu/file{n:05}.tar")), 10);
}

#[test]
fn an_unreadable_last_tape_file_is_named_and_end_of_data_still_found() {
    let w = three_targets();
    spoil(&w, 3);
    let out = w.run(&["scan_tape"], 1);
    let o = stdout(&out);
    assert!(o.contains("file 1: ") && o.contains("file 2: "), "{o}");
    let t2 = w.data().join("t2");
    assert!(
        o.contains(&format!("file 3: {}: UNREADABLE: tape file 3 is not a readable tar stream", t2.display())),
        "{o}"
    );
    assert!(o.contains("holds 4 tape files."), "{o}");
    let err = stderr(&out);
    assert!(
        err.contains("tape \"T1\": 1 tape files differ from the catalogue (files 3); the catalogue was not changed"),
        "{err}"
    );
}

#[test]
fn an_unreadable_tape_file_in_the_middle_does_not_end_the_scan() {
    let w = three_targets();
    spoil(&w, 2);
    let out = w.run(&["scan_tape"], 1);
    let o = stdout(&out);
    assert!(o.contains("UNREADABLE"), "{o}");
    assert!(o.contains(&format!("file 3: {}: OK", w.data().join("t2").display())), "{o}");
    assert!(o.contains("holds 4 tape files."), "{o}");
    assert!(stderr(&out).contains("1 tape files differ from the catalogue (files 2)"), "{}", stderr(&out));
}
