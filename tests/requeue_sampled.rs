//! A confirmed tape file that a later `confirm --sample` found bad can be
//! given up with `requeue` (issue 15): the sample records the bad tape file
//! (history kind `verify_file`), `requeue N` then takes it although it is
//! confirmed, marks it failed, gives its target back to the unassigned pool
//! and clears `check`'s `verify_failed`; a confirmed tape file no sample
//! found bad is still refused, `--force` or not.

mod support;

use std::fs;

use support::world::{self, World, stderr, stdout};

/// Two targets archived and confirmed on tape T1 of the emulator.
fn archived() -> World {
    let w = World::new();
    let mut targets = Vec::new();
    for name in ["a", "b"] {
        let dir = w.data().join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f.txt"), format!("contents of {name}\n").repeat(50)).unwrap();
        targets.push(dir);
    }
    let list = w.list("list.txt", &targets);
    w.archive_all(&list, "T1");
    w
}

#[test]
fn a_confirmed_tape_file_is_refused_unless_a_sample_found_it_bad() {
    let w = archived();
    for args in [&["-y", "requeue", "1"][..], &["-y", "requeue", "1", "--force"][..]] {
        let o = w.run(args, 1);
        assert_eq!(
            stderr(&o).trim_end(),
            format!(
                "tapeop: tape file 1 of \"T1\" ({}) is confirmed and no sample found it bad since: its copy is good, \
                 there is nothing to requeue (tapeop confirm --sample --tape T1 reads it again)",
                w.data().join("a").display()
            )
        );
    }
    assert_eq!(w.backups()[0].2, "confirmed");
    // A sample that finds the file good changes nothing.
    w.run(&["confirm", "--sample", "--seed", "1"], 0);
    w.run(&["-y", "requeue", "1"], 1);
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'verify_file'"), 0);
}

#[test]
fn requeue_gives_up_a_confirmed_tape_file_a_sample_found_bad() {
    let w = archived();
    let first = w.tape_file(1);
    let (off, _) = world::member_offset(&fs::read(&first).unwrap(), b"f.txt").unwrap();
    world::flip_byte(&first, off + 10);
    let o = w.run(&["confirm", "--sample", "--seed", "3"], 1);
    let err = stderr(&o);
    assert!(err.contains("tapeop requeue 1 --tape T1 gives this tape file up"), "{err}");
    assert_eq!(
        w.count(
            "SELECT COUNT(*) FROM tapeop_history WHERE kind = 'verify_file' AND file_number = 1 AND outcome = 'failed'"
        ),
        1
    );
    let o = w.run(&["check"], 1);
    assert!(stdout(&o).contains("verify_failed"), "{}", stdout(&o));

    let o = w.run(&["-y", "requeue", "1", "--tape", "T1"], 0);
    let out = stdout(&o);
    assert!(out.contains("was confirmed, but the sample of"), "{out}");
    assert!(out.contains(&format!("Requeued {}.", w.data().join("a").display())), "{out}");
    let statuses: Vec<String> = w.backups().into_iter().map(|b| b.2).collect();
    assert_eq!(statuses, ["failed", "confirmed"]);
    assert_eq!(w.count("SELECT COUNT(*) FROM tapeop_history WHERE kind = 'requeue'"), 1);
    // check: the failed verification is dealt with; the requeued target
    // waits for its new copy.
    let o = w.run(&["--json", "check"], 1);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["conditions"]["verify_failed"]["count"], 0, "{doc}");
    assert_eq!(doc["conditions"]["requeued"]["count"], 1, "{doc}");
    // Once requeued, it is not requeued twice.
    let o = w.run(&["-y", "requeue", "1", "--tape", "T1"], 1);
    assert!(stderr(&o).contains("was already requeued"), "{}", stderr(&o));
}
