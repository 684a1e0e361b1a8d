//! `--json` on the reports, run by the real binary on a copy of the old
//! tool's catalogue: every document parses as one JSON value, carries the
//! exact figures of the fixture (FACTS.md), represents non-UTF-8 names
//! losslessly, and leaves the catalogue byte-identical.

mod support;

use support::fixture;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use fixture::Fixture;
use serde_json::{Value, json};

const ROOT: &str = "/mnt/act6/actpol/data/season4";

/// Run `tapeop --json ARGS` on the fixture copy: exit 0, nothing on stderr,
/// one JSON document on stdout, catalogue unchanged.
fn json_of<S: AsRef<OsStr>>(fx: &Fixture, args: &[S]) -> Value {
    let before = fx.db_md5();
    let mut all: Vec<&OsStr> = vec![OsStr::new("--json")];
    all.extend(args.iter().map(|a| a.as_ref()));
    let run = fx.run(&all);
    run.expect_code(0);
    assert_eq!(run.stderr, "", "{run:#?}");
    assert!(run.stdout.ends_with('\n'), "a JSON document ends with a newline: {run:#?}");
    let doc: Value = serde_json::from_slice(&run.stdout_bytes)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", run.stdout));
    assert_eq!(fx.db_md5(), before, "--json {:?} changed tape.sqlite", all);
    assert_eq!(fx.user_version(), 0, "a read-only report upgraded the schema");
    doc
}

fn tally(count: i64, size_kb: i64) -> Value {
    json!({ "count": count, "size_kb": size_kb, "gb": size_kb as f64 / 1e6 })
}

#[test]
fn status_json_has_the_fixture_figures() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["status"]);
    assert_eq!(doc["confirmed"], tally(4, 3064));
    assert_eq!(doc["recorded"], tally(3, 24));
    assert_eq!(doc["assigned"], tally(1, 1664));
    assert_eq!(doc["total"], tally(8, 4752));
    assert_eq!(doc["unassigned"], tally(1, 1540));
    assert_eq!(
        doc["tape"],
        json!({ "id": 2, "name": "PUB-T2", "serial": "PUB-SN-0002", "status": "open", "full": false,
                "online": true, "capacity_bytes": null })
    );
    assert_eq!(
        doc["layout"],
        json!([
            { "first": 0, "last": 0, "status": "recorded" },
            { "first": 1, "last": 2, "status": "confirmed" },
            { "first": 3, "last": 4, "status": "recorded" },
            { "first": 5, "last": 6, "status": "confirmed" },
        ])
    );
}

#[test]
fn status_json_of_the_closed_tape() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["status", "PUB-T1"]);
    assert_eq!(doc["tape"]["name"], "PUB-T1");
    assert_eq!(doc["tape"]["status"], "closed");
    assert_eq!(doc["tape"]["online"], false);
    assert_eq!(doc["confirmed"], tally(3, 20));
    assert_eq!(doc["recorded"], tally(0, 0));
    assert_eq!(doc["assigned"], tally(0, 0));
    assert_eq!(doc["layout"], json!([{ "first": 0, "last": 2, "status": "confirmed" }]));
}

#[test]
fn tapes_json_lists_both_tapes_with_written_sizes() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["tapes"]);
    assert_eq!(doc["unassigned"], tally(1, 1540));
    let tapes = doc["tapes"].as_array().expect("tapes array");
    assert_eq!(tapes.len(), 2);
    assert_eq!(tapes[0]["name"], "PUB-T1");
    assert_eq!(tapes[0]["id"], 1);
    assert_eq!(tapes[0]["serial"], "PUB-SN-0001");
    assert_eq!(tapes[0]["status"], "closed");
    assert_eq!(tapes[0]["online"], false);
    assert_eq!(tapes[0]["written"], json!({ "size_kb": 20, "gb": 20.0 / 1e6 }));
    assert_eq!(tapes[1]["name"], "PUB-T2");
    assert_eq!(tapes[1]["online"], true);
    assert_eq!(tapes[1]["status"], "open");
    assert_eq!(tapes[1]["full"], false);
    assert_eq!(tapes[1]["written"], json!({ "size_kb": 3088, "gb": 3088.0 / 1e6 }));
    // -v changes nothing in JSON: written is always there.
    assert_eq!(json_of(&fx, &["tapes", "-v"]), doc);
}

#[test]
fn tapes_json_shows_tapeops_full_mark_and_blank_serial_as_null() {
    let fx = Fixture::new();
    // A tapeop catalogue: the side tables exist (user_version 1).
    fx.run(&["-y", "open_tape", "PUB-T3", "--serial", "", "--offline"]).expect_code(0);
    fx.exec("INSERT INTO tapeop_tape_info (tape_id, full, capacity_bytes) VALUES (2, 1, 5000000)");
    let run = fx.run(&["--json", "tapes"]);
    run.expect_code(0);
    let doc: Value = serde_json::from_slice(&run.stdout_bytes).unwrap();
    let t2 = &doc["tapes"][1];
    assert_eq!(
        (t2["status"].as_str(), t2["full"].as_bool(), t2["capacity_bytes"].as_i64()),
        (Some("open"), Some(true), Some(5_000_000))
    );
    assert_eq!(doc["tapes"][2]["name"], "PUB-T3");
    assert_eq!(doc["tapes"][2]["serial"], Value::Null);
    // The text report shows the mark as the status.
    let text = fx.run(&["tapes"]);
    assert!(text.stdout.contains("PUB-T2 *    PUB-SN-0002     2 full      \n"), "{text:#?}");
}

#[test]
fn unassigned_json() {
    let fx = Fixture::new();
    assert_eq!(json_of(&fx, &["unassigned"]), tally(1, 1540));
}

#[test]
fn tape_detail_verbose_json_of_the_closed_tape() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["tape_detail", "PUB-T1", "-v"]);
    assert_eq!(doc["tape"]["name"], "PUB-T1");
    assert_eq!(doc["tape"]["serial"], "PUB-SN-0001");
    let tf = doc["tape_files"].as_array().expect("tape_files");
    assert_eq!(tf.len(), 3);
    let targets: Vec<&str> = tf.iter().map(|t| t["target"].as_str().unwrap()).collect();
    assert_eq!(
        targets,
        [format!("{ROOT}/edge/e_emptyfile"), format!("{ROOT}/edge/e_longpath"), format!("{ROOT}/edge/e_symlink")]
    );
    for (i, t) in tf.iter().enumerate() {
        assert_eq!(t["file_number"], i as i64);
        assert_eq!(t["status"], "confirmed");
        assert_eq!(t["files"].as_array().unwrap().len() as i64, t["file_count"].as_i64().unwrap());
    }
    assert_eq!(tf[0]["size_kb"], 4);
    assert_eq!(
        tf[0]["files"][1],
        json!({ "name": "plain.txt", "md5": "e9ac2d1cf882bde0bd644df7427f1219", "type": "file", "size_kb": 4,
                "gb": 4.0 / 1e6, "size_bytes": null, "link_target": null })
    );
    let sym = tf[2]["files"].as_array().unwrap();
    assert_eq!(sym.len(), 4);
    let links: Vec<&str> = sym.iter().filter(|f| f["type"] == "symlink").map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(links, ["dangling_link", "link_to_real"]);
    for f in sym.iter().filter(|f| f["type"] == "symlink") {
        assert_eq!((f["md5"].as_str(), f["size_kb"].as_i64()), (Some("symlink"), Some(0)));
    }
    assert_eq!(sym[3]["name"], "real.dat");
    assert_eq!(sym[3]["md5"], "56eed277788354fece4c49d465353226");
}

#[test]
fn tape_detail_json_without_verbose_has_no_files() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["tape_detail"]);
    assert_eq!(doc["tape"]["name"], "PUB-T2");
    let tf = doc["tape_files"].as_array().unwrap();
    assert_eq!(tf.len(), 7);
    assert!(tf.iter().all(|t| t.get("files").is_none()), "{doc}");
    let fnums: Vec<i64> = tf.iter().map(|t| t["file_number"].as_i64().unwrap()).collect();
    assert_eq!(fnums, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(tf[3]["target"], format!("{ROOT}/edge/e_nested/child"));
    assert_eq!(tf[3]["status"], "recorded");
    assert_eq!((tf[5]["file_count"].as_i64(), tf[5]["size_kb"].as_i64()), (Some(250), Some(1536)));
}

#[test]
fn tape_detail_verbose_json_streams_every_file_of_the_active_tape() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["tape_detail", "-v"]);
    let files: usize = doc["tape_files"].as_array().unwrap().iter().map(|t| t["files"].as_array().unwrap().len()).sum();
    assert_eq!(files, 509, "the text report has 509 file lines");
    let one = json_of(&fx, &["tape_detail", "PUB-T2", "1", "-v"]);
    assert_eq!(one["tape_files"].as_array().unwrap().len(), 1);
    assert_eq!(one["tape_files"][0]["files"][0]["md5"], "50bbcf1957dd72dd6956f76378022c99");
}

#[test]
fn where_is_json_plain_txt_has_seven_hits_with_their_md5s() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["where_is", "plain.txt"]);
    assert_eq!(doc["name"], "plain.txt");
    assert!(doc.get("name_hex").is_none());
    let hits = doc["hits"].as_array().unwrap();
    let got: Vec<(String, i64, String, String, String)> = hits
        .iter()
        .map(|h| {
            (
                h["tape"].as_str().unwrap().to_string(),
                h["file_number"].as_i64().unwrap(),
                h["status"].as_str().unwrap().to_string(),
                h["md5"].as_str().unwrap().to_string(),
                h["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("PUB-T1", 0, "confirmed", "e9ac2d1cf882bde0bd644df7427f1219", "e_emptyfile"),
        ("PUB-T1", 1, "confirmed", "b2273180cef6ed57cf0ff95bc753a8b5", "e_longpath"),
        ("PUB-T1", 2, "confirmed", "9af4f7b70257e7cee8b616e57a5b1459", "e_symlink"),
        ("PUB-T2", 0, "recorded", "7dfc93930def18ddabe397d5a0e1031f", "e_ampersand"),
        ("PUB-T2", 1, "confirmed", "50bbcf1957dd72dd6956f76378022c99", "e_emptydir"),
        ("PUB-T2", 2, "confirmed", "adc806d1037dbe69cb3e5e7397e1f619", "e_nested"),
        ("PUB-T2", 4, "recorded", "ee419bfd94fa9fdff43b8cd1193cdd5a", "e_spaces"),
    ];
    let want: Vec<(String, i64, String, String, String)> = want
        .iter()
        .map(|(t, n, s, m, d)| (t.to_string(), *n, s.to_string(), m.to_string(), format!("{ROOT}/edge/{d}/plain.txt")))
        .collect();
    assert_eq!(got, want);
    assert!(hits.iter().all(|h| h["name"] == "plain.txt"));
    assert_eq!(hits[0]["target"], format!("{ROOT}/edge/e_emptyfile"));
}

#[test]
fn where_is_json_includes_assigned_and_empty_results() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["where_is", "sub0/f000.dat"]);
    let hits = doc["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!((hits[2]["file_number"].as_i64(), hits[2]["status"].as_str()), (Some(-1), Some("assigned")));
    assert_eq!(hits[2]["md5"], "f928380a3a8899864560df58cb9ce764");
    assert_eq!(json_of(&fx, &["where_is", "f000.dat"]), json!({ "name": "f000.dat", "hits": [] }));
    let spaced = json_of(&fx, &["where_is", "file", "with", "spaces.txt"]);
    assert_eq!(spaced["hits"][0]["path"], format!("{ROOT}/edge/e_spaces/file with spaces.txt"));
}

#[test]
fn non_utf8_names_carry_their_exact_bytes_in_hex() {
    let fx = Fixture::new();
    {
        let c = fx.sql();
        c.execute("INSERT INTO targets (id, name, scanned) VALUES (20, CAST(X'2F646174612F62E9' AS BLOB), 1)", [])
            .unwrap();
        c.execute(
            "INSERT INTO files (target_id, name, md5sum, size_kb) VALUES (20, CAST(X'636166E92E747874' AS BLOB), '0123456789abcdef0123456789abcdef', 4)",
            [],
        )
        .unwrap();
        c.execute("INSERT INTO backups (target_id, tape_id, file_number, status) VALUES (20, 2, 7, 'recorded')", [])
            .unwrap();
    }
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    let doc = json_of(&fx, &[OsStr::new("where_is"), name]);
    assert_eq!(doc["name"], "caf\u{fffd}.txt");
    assert_eq!(doc["name_hex"], "636166e92e747874");
    let hit = &doc["hits"][0];
    assert_eq!(hit["target_hex"], "2f646174612f62e9");
    assert_eq!(hit["name_hex"], "636166e92e747874");
    assert_eq!(hit["path_hex"], "2f646174612f62e92f636166e92e747874");
    assert_eq!(hit["file_number"], 7);

    let detail = json_of(&fx, &["tape_detail", "PUB-T2", "7", "-v"]);
    let tf = &detail["tape_files"][0];
    assert_eq!(tf["target_hex"], "2f646174612f62e9");
    assert_eq!(tf["files"][0]["name_hex"], "636166e92e747874");
    // UTF-8 names have no _hex field.
    let plain = json_of(&fx, &["tape_detail", "PUB-T2", "1", "-v"]);
    assert!(plain["tape_files"][0].get("target_hex").is_none());
    assert!(plain["tape_files"][0]["files"][0].get("name_hex").is_none());
}

#[test]
fn backup_info_json_of_a_legacy_tape_file() {
    let fx = Fixture::new();
    let doc = json_of(&fx, &["backup_info", "3"]);
    assert_eq!(doc["tape"]["name"], "PUB-T2");
    let b = &doc["backups"].as_array().unwrap()[..];
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0],
        json!({
            "backup_id": 8, "file_number": 3, "status": "recorded", "target": format!("{ROOT}/edge/e_nested/child"),
            "target_id": 10, "file_count": 2, "size_kb": 8, "gb": 8.0 / 1e6, "size_bytes": null,
            "parent": format!("{ROOT}/edge/e_nested"), "children": [], "tape_bytes": null, "block_size": null,
            "written_at": null, "confirmed_at": null, "history": [],
        })
    );
    let parent = json_of(&fx, &["backup_info", "2"]);
    assert_eq!(parent["backups"][0]["children"], json!([{ "target": format!("{ROOT}/edge/e_nested/child") }]));
    assert_eq!(parent["backups"][0]["parent"], Value::Null);
    let all = json_of(&fx, &["backup_info"]);
    assert_eq!(all["backups"].as_array().unwrap().len(), 7);
}
