//! The status page, `tapeop report --html DIR` (issue 16), by the real
//! binary on a copy of the old tool's catalogue grown to hold tapes in
//! every state (closed, open, full, a pool with a capacity), tape files
//! confirmed, recorded (dated and undated) and assigned, unassigned targets
//! — one named `<script>alert(1)</script>`, one with bytes that are not
//! UTF-8 — and 30 days of archive and confirm history.
//!
//! `report.json` is checked figure by figure against `status --json` of
//! every tape, `tapes -v --json` and `check --json` (all of it but the
//! integrity check, which the page leaves to `check`: it reads the whole
//! catalogue). The page is then
//! opened in headless Chromium (Debian's `chromium`, 148 when written;
//! the test fails, never skips, when it is missing):
//! - screenshots at 1280×900 and 390×844 have that size and are not blank;
//! - `--dump-dom` holds the `<script>` name as text and no script element;
//! - at phone width the page is no wider than the screen: a probe page
//!   (scripted, run with `--allow-file-access-from-files`) frames it at
//!   390 px and reports its `scrollWidth`;
//! - nothing is loaded from the network: Chromium runs with
//!   `--proxy-server` pointing at a listener this test owns, which records
//!   the host of every request. Chromium itself still calls a few Google
//!   services (`accounts.google.com`, `www.google.com`, ... even with
//!   `--disable-background-networking`), so those hosts are left out; a
//!   control page with an `<img>` on `http://tapeop.invalid/` proves the
//!   listener does see a page's request;
//! - no console message at all: with `--enable-logging=stderr --v=0` this
//!   Chromium writes every console message (errors, CSP refusals) as a
//!   `:CONSOLE` line on stderr (the control page shows one appears).
//!
//! Also: a missing DIR, or a file in its place, is one line naming it and
//! leaves nothing behind; a run killed before its rename leaves the old
//! page whole.

mod support;

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::fixture::Fixture;

const SCRIPT_NAME: &str = "/data/<script>alert(1)</script>";
const BAD_UTF8: &[u8] = b"/data/bad\xff\xfename";

/// The fixture, grown: tape PUB-T3 (pool offsite, 50 MB) holding a
/// recorded tape file of the non-UTF-8 target written 10 days ago; PUB-T2
/// marked full; the `<script>` target unassigned; history rows.
fn build() -> Fixture {
    let fx = Fixture::new();
    run_ok(
        &fx,
        &["-y", "open_tape", "PUB-T3", "--serial", "SN-3", "--offline", "--capacity", "50M", "--pool", "offsite"],
    );
    let sql = fx.sql();
    sql.execute("INSERT INTO targets (id, name, scanned) VALUES (16, ?1, 1)", [SCRIPT_NAME]).unwrap();
    sql.execute("INSERT INTO targets (id, name, scanned) VALUES (17, ?1, 1)", [BAD_UTF8]).unwrap();
    sql.execute_batch(
        "INSERT INTO files (target_id, name, md5sum, size_kb) VALUES
             (16, 'a', '0123456789abcdef0123456789abcdef', 700), (17, 'b', '0123456789abcdef0123456789abcdef', 900);
         INSERT INTO backups (id, target_id, tape_id, file_number, status) VALUES (13, 17, 3, 1, 'recorded');
         INSERT INTO tapeop_backup_info (backup_id, bytes, written_at)
             VALUES (13, 921600, strftime('%Y-%m-%d %H:%M:%S UTC', 'now', '-10 days'));
         INSERT OR REPLACE INTO tapeop_tape_info (tape_id, full, capacity_bytes) VALUES (2, 1, 6000000);",
    )
    .unwrap();
    for (kind, days, bytes, secs, outcome) in [
        ("archive", 45, 100, 1, "ok"),
        ("archive", 20, 900_000_000, 6, "ok"),
        ("archive", 12, 1_200_000_000, 8, "ok"),
        ("confirm", 11, 1_200_000_000, 5, "ok"),
        ("archive", 3, 500_000_000, 10, "ok"),
        ("confirm", 2, 500_000_000, 4, "failed"),
    ] {
        sql.execute(
            "INSERT INTO tapeop_history (kind, tape, file_number, target, started, ended, bytes, outcome)
             VALUES (?1, 'PUB-T2', 0, '/x', strftime('%Y-%m-%d %H:%M:%S UTC', 'now', ?2),
                     strftime('%Y-%m-%d %H:%M:%S UTC', 'now', ?2, ?3), ?4, ?5)",
            rusqlite::params![kind, format!("-{days} days"), format!("+{secs} seconds"), bytes, outcome],
        )
        .unwrap();
    }
    fx
}

fn run_ok<S: AsRef<std::ffi::OsStr>>(fx: &Fixture, args: &[S]) -> Output {
    let out = fx.command(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    out
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_of(fx: &Fixture, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend(args);
    let out = fx.command(&all).output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Write the page into `fx/site` and return the dir and report.json.
fn report(fx: &Fixture) -> (PathBuf, Value) {
    let dir = fx.path("site");
    fs::create_dir_all(&dir).unwrap();
    let out = run_ok(fx, &["report", "--html", "site"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Wrote site/index.html and report.json (3 tapes, "));
    let doc = serde_json::from_slice(&fs::read(dir.join("report.json")).unwrap()).unwrap();
    (dir, doc)
}

/// Drop `age_days` (it moves with the clock), checking it is a number or null.
fn without_ages(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| k.as_str() != "age_days" || !(v.is_number() || v.is_null()))
                .map(|(k, v)| (k.clone(), without_ages(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_ages).collect()),
        other => other.clone(),
    }
}

#[test]
fn report_json_has_the_figures_of_status_tapes_and_check() {
    let fx = build();
    let (_, doc) = report(&fx);
    let tapes = json_of(&fx, &["tapes", "-v"], 0);
    let mut check = json_of(&fx, &["check"], 1);
    // The page leaves out the integrity check (it reads the whole catalogue); all else is check --json.
    assert_eq!(check["conditions"]["integrity"]["count"], 0);
    check["conditions"].as_object_mut().unwrap().remove("integrity");
    assert_eq!(without_ages(&doc["check"]), without_ages(&check), "report.json's check is check --json");
    assert_eq!(doc["check"]["conditions"]["unassigned"]["count"], 2);
    assert_eq!(doc["waiting"]["unassigned"], tapes["unassigned"]);
    let bars = doc["tapes"].as_array().unwrap();
    assert_eq!(bars.len(), 3);
    for (bar, listed) in bars.iter().zip(tapes["tapes"].as_array().unwrap()) {
        let name = listed["name"].as_str().unwrap();
        let status = json_of(&fx, &["status", name], 0);
        assert_eq!(bar["name"], listed["name"]);
        for key in ["confirmed", "recorded", "assigned", "total"] {
            assert_eq!(bar[key], status[key], "{name} {key}");
        }
        for key in ["id", "serial", "full", "online", "capacity_bytes", "pool"] {
            assert_eq!(bar[key], listed[key], "{name} {key}");
        }
        assert_eq!(bar["written_kb"], listed["written"]["size_kb"], "{name}");
    }
    let statuses: Vec<&str> = bars.iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["closed", "full", "open"]);
    // PUB-T3: 50 MB, 900 KiB recorded.
    assert_eq!(bars[2]["capacity_bytes"], 50 << 20);
    assert_eq!(bars[2]["free_bytes"], (50 << 20) - 900 * 1024);
    let sum = |key: &str| -> i64 { bars.iter().map(|b| b[key]["size_kb"].as_i64().unwrap()).sum() };
    assert_eq!(doc["waiting"]["recorded"]["size_kb"], sum("recorded"));
    assert_eq!(doc["waiting"]["assigned"]["size_kb"], sum("assigned"));
    assert_eq!(doc["waiting"]["recorded"]["count"], 4);
    assert_eq!(doc["waiting"]["recorded_age_unknown"], 3);
    let oldest = &doc["waiting"]["recorded_oldest"][0];
    assert_eq!((oldest["tape"].as_str(), oldest["file_number"].as_i64()), (Some("PUB-T3"), Some(1)));
    assert_eq!(oldest["target_hex"], "2f646174612f626164fffe6e616d65");
    assert!((oldest["age_days"].as_f64().unwrap() - 10.0).abs() < 0.02, "{oldest}");
    // The history of the last 30 days, with its rates; the drive's own rate is not known yet.
    let rates: Vec<(&str, Option<f64>)> = doc["rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["rate_mb_s"].as_f64()))
        .collect();
    assert_eq!(
        rates,
        [
            ("archive", Some(150.0)),
            ("archive", Some(150.0)),
            ("confirm", Some(240.0)),
            ("archive", Some(50.0)),
            ("confirm", Some(125.0))
        ]
    );
    assert!(doc["rates"].as_array().unwrap().iter().all(|r| r["drive_mb_per_s"].is_null()));
    assert_eq!(doc["last_archive"]["seconds_ago"].as_i64().map(|s| (s + 30) / 86_400), Some(3));
    assert_eq!(doc["library"], Value::Null);
    assert_eq!(doc["catalogue"]["path"], fs::canonicalize(fx.db()).unwrap().display().to_string());
    let id: String =
        fx.sql().query_row("SELECT value FROM tapeop_meta WHERE key = 'catalogue_id'", [], |r| r.get(0)).unwrap();
    assert_eq!(doc["catalogue"]["catalogue_id"], id);
}

#[test]
fn the_page_is_self_contained_and_shows_names_as_text() {
    let fx = build();
    let (dir, _) = report(&fx);
    let page = fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
    let lower = page.to_lowercase();
    for banned in ["<script", "src=", "url(", "@import", "http:", "https:", "<link rel=\"stylesheet\""] {
        assert!(!lower.contains(banned), "the page holds {banned:?}");
    }
    assert!(page.contains("/data/&lt;script&gt;alert(1)&lt;/script&gt;"), "the <script> name is escaped");
    assert!(page.contains("/data/bad\u{fffd}\u{fffd}name"), "the non-UTF-8 name shows lossy");
    assert!(page.contains("default-src 'none'"), "a CSP forbids every load");
    // check's words, and the commands in them.
    assert!(page.contains("waits for a tape: tapeop assign"));
    assert!(page.contains("still not confirmed: tapeop confirm next"));
    assert!(page.contains("integrity is not checked for this page"));
}

// ---- Chromium ----

fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file());
    found.expect("chromium is missing: apt-get install chromium (.ci/run installs it); the status page test needs it")
}

/// Headless Chromium with a fresh profile under `tmp`, at most 30 s.
fn chromium_run(tmp: &Path, tag: &str, args: &[&str]) -> Output {
    let profile = tmp.join(format!("profile-{tag}"));
    let mut c = Command::new("timeout");
    c.arg("30").arg(chromium());
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]);
    c.args(["--disable-background-networking", "--disable-component-update", "--enable-logging=stderr", "--v=0"]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    let out = c.args(args).output().unwrap();
    assert!(out.status.success(), "chromium {args:?}: {}", describe(&out));
    out
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Width, height, and whether the pixels vary (not one blank colour).
fn png_facts(path: &Path) -> (u32, u32, bool) {
    let data = fs::read(path).unwrap();
    assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    let be = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
    let (w, h, colour) = (be(16), be(20), data[25]);
    let (mut at, mut idat) = (8, Vec::new());
    while at + 8 <= data.len() {
        let len = be(at) as usize;
        if &data[at + 4..at + 8] == b"IDAT" {
            idat.extend_from_slice(&data[at + 8..at + 8 + len]);
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let bpp = if colour == 6 { 4 } else { 3 };
    assert_eq!(raw.len(), h as usize * (1 + w as usize * bpp), "{} is whole", path.display());
    let distinct: HashSet<u8> = raw.iter().copied().collect();
    (w, h, distinct.len() > 32)
}

#[test]
fn chromium_shows_the_page_at_desktop_and_phone_width() {
    let fx = build();
    let (dir, _) = report(&fx);
    let page = url(&dir.join("index.html"));
    for (w, h) in [(1280, 900), (390, 844)] {
        let png = fx.path(format!("shot-{w}.png"));
        let size = format!("--window-size={w},{h}");
        chromium_run(fx.dir(), &format!("shot-{w}"), &[&format!("--screenshot={}", png.display()), &size, &page]);
        assert_eq!(png_facts(&png), (w, h, true), "screenshot at {w}x{h}");
    }
    // At phone width nothing is wider than the screen (no horizontal scroll).
    let probe = fx.path("probe.html");
    fs::write(
        &probe,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"f\" src=\"{page}\" \
             style=\"width:390px;height:844px;border:0\"></iframe><pre id=\"out\">pending</pre><script>\
             document.getElementById('f').onload=function(){{var d=this.contentDocument.documentElement;\
             document.getElementById('out').textContent='width '+d.scrollWidth+' of '+d.clientWidth;}};</script></body></html>"
        ),
    )
    .unwrap();
    let out = chromium_run(
        fx.dir(),
        "probe",
        &["--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom", &url(&probe)],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let tag = "<pre id=\"out\">width ";
    let at = dom.find(tag).unwrap_or_else(|| panic!("the probe did not run: {dom}")) + tag.len();
    let words: Vec<u32> = dom[at..].split(['<', ' ']).take(3).filter_map(|w| w.parse().ok()).collect();
    assert!(words.len() == 2 && words[0] <= words[1], "at 390 px the page is wider than the screen: {words:?}");
}

/// A proxy that records the host of every request made through it.
struct Recorder {
    port: u16,
    hosts: Arc<Mutex<Vec<String>>>,
    seen: std::sync::mpsc::Receiver<String>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let (tx, seen) = std::sync::mpsc::channel();
        let kept = hosts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut line = String::new();
                let _ = BufReader::new(conn).read_line(&mut line);
                // `CONNECT host:443 HTTP/1.1` or `GET http://host/path HTTP/1.1`.
                let target = line.split(' ').nth(1).unwrap_or("").to_string();
                let host = target.trim_start_matches("http://").split(['/', ':']).next().unwrap_or("").to_string();
                if !host.is_empty() {
                    kept.lock().unwrap().push(host.clone());
                    let _ = tx.send(host);
                }
            }
        });
        Recorder { port, hosts, seen }
    }

    fn flag(&self) -> String {
        format!("--proxy-server=http://127.0.0.1:{}", self.port)
    }

    /// The hosts requested, less Chromium's own Google services.
    fn page_hosts(&self) -> Vec<String> {
        let own = |h: &str| h.ends_with(".google.com") || h.ends_with(".gvt1.com") || h.ends_with(".googleapis.com");
        let hosts = self.hosts.lock().unwrap();
        hosts.iter().filter(|h| !own(h) || h.starts_with("fonts.")).cloned().collect()
    }
}

fn console_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect()
}

#[test]
fn chromium_runs_no_script_logs_nothing_and_loads_nothing() {
    let fx = build();
    let (dir, _) = report(&fx);
    let proxy = Recorder::start();
    let load = ["--virtual-time-budget=3000", "--dump-dom"];

    // The control: a page that loads an image and logs, without a CSP.
    let control = fx.path("control.html");
    fs::write(
        &control,
        "<!DOCTYPE html><p>x</p><img src=\"http://tapeop.invalid/x.png\"><script>console.error('seen')</script>",
    )
    .unwrap();
    let out = chromium_run(fx.dir(), "control", &[&proxy.flag(), load[0], load[1], &url(&control)]);
    assert_eq!(console_lines(&out).len(), 1, "the control's console line shows: {}", describe(&out));
    let saw = std::iter::from_fn(|| proxy.seen.recv_timeout(std::time::Duration::from_secs(10)).ok())
        .find(|h| h == "tapeop.invalid");
    assert!(saw.is_some(), "the recorder sees a page's request");
    proxy.hosts.lock().unwrap().clear();

    let out = chromium_run(fx.dir(), "page", &[&proxy.flag(), load[0], load[1], &url(&dir.join("index.html"))]);
    assert_eq!(console_lines(&out), Vec::<String>::new(), "the page logs nothing");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("tapeop status"), "{dom}");
    assert!(!dom.to_lowercase().contains("<script"), "no script element in the DOM");
    assert!(dom.contains("/data/&lt;script&gt;alert(1)&lt;/script&gt;"), "the name is text in the DOM");
    assert_eq!(proxy.page_hosts(), Vec::<String>::new(), "the page loads nothing from the network");
}

// ---- writing ----

#[test]
fn a_missing_dir_or_a_file_in_its_place_is_one_line_and_leaves_nothing() {
    let fx = build();
    let out = fx.command(&["report", "--html", "nowhere"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("nowhere does not exist (create it, or give another --html DIR)"), "{err}");
    assert!(!fx.path("nowhere").exists());

    fs::write(fx.path("afile"), "keep").unwrap();
    let out = fx.command(&["report", "--html", "afile"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("afile is not a directory"), "{}", describe(&out));
    assert_eq!(fs::read_to_string(fx.path("afile")).unwrap(), "keep");
    let left: Vec<_> = fs::read_dir(fx.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_run_killed_before_its_rename_leaves_the_old_page_whole() {
    let fx = build();
    let (dir, _) = report(&fx);
    let old = fs::read(dir.join("index.html")).unwrap();
    let old_json = fs::read(dir.join("report.json")).unwrap();
    fx.sql().execute("UPDATE tapes SET name = 'PUB-T3-NEW' WHERE id = 3", []).unwrap();
    // report.json is renamed first (hit 1); killed before index.html's rename (hit 2).
    let out = fx.command(&["report", "--html", "site"]).env("TAPEOP_FAULT", "report-before-rename:2").output().unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", describe(&out));
    assert_eq!(fs::read(dir.join("index.html")).unwrap(), old, "the old page is untouched");
    assert_ne!(fs::read(dir.join("report.json")).unwrap(), old_json, "report.json was already replaced");
    // The new page waited, whole, beside it in DIR (the same filesystem: the rename is atomic).
    let temps: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".index.html.tmp-"))
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    let waiting = fs::read_to_string(&temps[0]).unwrap();
    assert!(waiting.contains("PUB-T3-NEW") && waiting.ends_with("</html>\n"));
    // The next run replaces the page.
    run_ok(&fx, &["report", "--html", "site"]);
    assert!(fs::read_to_string(dir.join("index.html")).unwrap().contains("PUB-T3-NEW"));
}

// ---- the library ----

const MTX_STATUS: &str = "  Storage Changer /dev/sg5:2 Drives, 4 Slots ( 1 Import/Export )
Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = A00001L9
Data Transfer Element 1:Empty
      Storage Element 1:Empty
      Storage Element 2:Full :VolumeTag=A00002L9
      Storage Element 3:Full :VolumeTag=CLN001L1
      Storage Element 4 IMPORT/EXPORT:Full :VolumeTag=<b>X1
";

/// A world with a [changer] run by a fake mtx (`status.txt` is its
/// status; a file `fail` makes it fail with that text), drives A and B,
/// and tapes T1 (A00001L9, online) and T2 (A00002L9).
fn library_world() -> support::world::World {
    use std::os::unix::fs::PermissionsExt;
    let w = support::world::World::new();
    let root = w.root().display().to_string();
    let mtx = w.root().join("mtx");
    fs::write(
        &mtx,
        format!(
            "#!/bin/sh\nif [ -f '{root}/fail' ]; then cat '{root}/fail' >&2; exit 1; fi\n\
             [ \"$3\" = status ] && cat '{root}/status.txt'\nexit 0\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&mtx, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(w.root().join("status.txt"), MTX_STATUS).unwrap();
    let conf = format!(
        "[default]\ndatabase_file = tape.sqlite\nssh_command =\n\n[changer]\ndevice = /dev/sg5\ncommand = {}\n\n\
         [drive.A]\ndevice = /dev/nst0\nchanger_index = 0\n\n[drive.B]\ndevice = /dev/nst1\nchanger_index = 1\n",
        mtx.display()
    );
    fs::write(w.root().join("tape.conf"), conf).unwrap();
    w.run(&["open_tape", "T1", "--serial", "A00001L9", "--online", "-y"], 0);
    w.run(&["open_tape", "T2", "--serial", "A00002L9", "--offline", "-y"], 0);
    fs::create_dir(w.root().join("site")).unwrap();
    w
}

#[test]
fn the_library_shows_each_drive_and_slot_as_inventory_does() {
    let w = library_world();
    w.run(&["report", "--html", "site"], 0);
    let doc: Value = serde_json::from_slice(&fs::read(w.root().join("site/report.json")).unwrap()).unwrap();
    let inventory: Value = serde_json::from_slice(&w.run(&["--json", "inventory"], 0).stdout).unwrap();
    let lib = &doc["library"];
    assert_eq!(lib["changer"], "/dev/sg5");
    assert_eq!(lib["error"], Value::Null);
    for (kind, key) in [("drives", "drives"), ("slots", "slots")] {
        let ours = lib[kind].as_array().unwrap();
        let theirs = inventory[key].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{kind}");
        for (o, t) in ours.iter().zip(theirs) {
            assert_eq!((&o["barcode"], &o["holds"]), (&t["barcode"], &t["holds"]), "{kind}");
            assert_eq!(o["tape"], t["tape"]["name"], "{kind}");
        }
    }
    let labels: Vec<&str> = lib["drives"].as_array().unwrap().iter().map(|d| d["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Drive A (element 0)", "Drive B (element 1)"]);
    assert_eq!(lib["drives"][0]["what"], "tape T1 (open, online, from slot 1)");
    assert_eq!(lib["slots"][3]["label"], "Slot 4 (import/export)");
    let page = fs::read_to_string(w.root().join("site/index.html")).unwrap();
    assert!(page.contains("<code>A00002L9</code>") && page.contains("cleaning cartridge"), "{page}");
    assert!(page.contains("<code>&lt;b&gt;X1</code>") && !page.contains("<b>X1"), "a barcode is text");
}

#[test]
fn a_changer_that_cannot_be_read_is_one_line_on_the_page() {
    let w = library_world();
    fs::write(w.root().join("fail"), "mtx: cannot open /dev/sg5: <no such device>\n").unwrap();
    let out = w.run(&["report", "--html", "site"], 0);
    assert!(support::world::stdout(&out).starts_with("Wrote site/index.html"), "{}", describe(&out));
    let doc: Value = serde_json::from_slice(&fs::read(w.root().join("site/report.json")).unwrap()).unwrap();
    let error = doc["library"]["error"].as_str().unwrap();
    assert!(error.contains("cannot open /dev/sg5: <no such device>"), "{error}");
    assert_eq!(doc["library"]["drives"], serde_json::json!([]));
    let page = fs::read_to_string(w.root().join("site/index.html")).unwrap();
    let line = page.lines().find(|l| l.contains("The changer could not be read")).unwrap();
    assert!(line.contains("&lt;no such device&gt;"), "{line}");
    assert!(doc["tapes"].as_array().unwrap().len() == 2, "the rest of the page is there");
}

// ---- tape_batch.bash --html ----

/// A world with three small targets imported and assigned to online tape T1.
fn batch_world() -> support::world::World {
    let w = support::world::World::new();
    let mut targets = Vec::new();
    for name in ["a", "b", "c"] {
        let t = w.data().join(name);
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("f"), name.repeat(1000)).unwrap();
        targets.push(t);
    }
    let list = w.list("list.txt", &targets);
    w.run(&[std::ffi::OsStr::new("-y"), std::ffi::OsStr::new("import"), list.as_os_str()], 0);
    w.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
    w.run(&["-y", "assign"], 0);
    w
}

fn batch(w: &support::world::World, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tape_batch.bash");
    Command::new("bash")
        .arg(script)
        .args(args)
        .current_dir(w.root())
        .env("TAPEOP", env!("CARGO_BIN_EXE_tapeop"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn tape_batch_refreshes_the_page_after_each_job() {
    let w = batch_world();
    fs::create_dir(w.root().join("site")).unwrap();
    let conf = w.root().join("tape.conf").display().to_string();
    let out = batch(&w, &["archive", "--html", "site", "-c", &conf]);
    assert_eq!(out.status.code(), Some(40), "{}", describe(&out));
    let doc: Value = serde_json::from_slice(&fs::read(w.root().join("site/report.json")).unwrap()).unwrap();
    assert_eq!(doc["tapes"][0]["recorded"]["count"], 3, "the page after the last job: {doc}");
    let out = batch(&w, &["confirm", "--html=site"]);
    assert_eq!(out.status.code(), Some(40), "{}", describe(&out));
    let doc: Value = serde_json::from_slice(&fs::read(w.root().join("site/report.json")).unwrap()).unwrap();
    assert_eq!(doc["tapes"][0]["confirmed"]["count"], 3);
    let log = fs::read_to_string(w.root().join("backup.log")).unwrap();
    assert!(!log.contains("status page"), "{log}");
}

#[test]
fn tape_batch_logs_a_page_it_cannot_write_and_goes_on() {
    let w = batch_world();
    let out = batch(&w, &["archive", "--html", "nowhere"]);
    assert_eq!(out.status.code(), Some(40), "the batch ran to its end: {}", describe(&out));
    let log = fs::read_to_string(w.root().join("backup.log")).unwrap();
    assert_eq!(log.matches("Marking record as archived.").count(), 3, "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("the status page in nowhere was not refreshed")).collect();
    assert_eq!(lines.len(), 4, "one line after each job (3 archives and the last run): {log}");
    assert!(lines[0].contains("nowhere does not exist"), "{log}");
}
