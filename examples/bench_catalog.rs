//! Benchmark of the catalogue at archive scale:
//!
//! ```text
//! cargo run --release --example bench_catalog -- DB_PATH [> /dev/null]
//! FILES=2000000 TARGETS=5000 cargo run --release --example bench_catalog -- /dev/shm/cat.sqlite
//! ```
//!
//! Builds a synthetic catalogue at `DB_PATH` (replacing any file there):
//! `TAPES` tapes (default 100), `TARGETS` targets (default 50,000) and
//! `FILES` file rows (default 20,000,000) spread evenly over the targets.
//! Tapes, targets and backups are made with plain SQL in one transaction; the
//! file rows go through tapeop's own insert path, `tapeop::commands::import::store`,
//! once per target (its own transaction, the per-row triggers that keep
//! `tapeop_target_totals`, the name index), exactly as `tapeop import` stores
//! a scan. Only the `store` calls are timed.
//!
//! The mix is that of a catalogue in use: the first 90 % of the tapes closed
//! with everything confirmed, then open tapes with confirmed and recorded
//! tape files, the online tape with confirmed, recorded and assigned ones,
//! one empty tape, and 1 % of the targets still unassigned. Each target has
//! a README, a calibration file, a symlink and data files whose names sort
//! into a pseudo-random place of the name index (as real night directories
//! do relative to each other).
//!
//! `store` prints one line per target on standard output; the results go to
//! standard error, the last line being machine-readable:
//! `RESULT files=N targets=N tapes=N seconds=S files_per_s=R db_bytes=B bytes_per_file=X where_is=NAME online=TAPE`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rusqlite::params;
use tapeop::catalog::{Catalog, Mode};
use tapeop::commands::import::{Entry, store};

fn env_number(key: &str, default: u64) -> Result<u64> {
    match std::env::var(key) {
        Ok(v) => v.replace('_', "").parse().with_context(|| format!("{key}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// splitmix64: cheap, deterministic pseudo-random numbers.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The directory part that places a target's data files in the name index.
fn night_key(target: u64) -> String {
    format!("{:08x}", mix(target) as u32)
}

/// The name of data file `k` of `target`.
fn data_name(target: u64, k: u64) -> String {
    format!("raw/{}/img_{k:05}.fits", night_key(target))
}

/// The entries of one target, as `import` would have scanned them.
fn entries(target: u64, count: u64) -> Vec<Entry> {
    let mut out = Vec::with_capacity(count as usize);
    for k in 0..count {
        let r = mix(target << 24 ^ k);
        let (kind, name, md5, link) = match k {
            0 => (b'f', "README.txt".to_string(), None, Vec::new()),
            1 => (b'f', "calib/bias.fits".to_string(), None, Vec::new()),
            2 => (b'l', "latest".to_string(), Some("symlink".to_string()), data_name(target, 3).into_bytes()),
            _ => (b'f', data_name(target, k), None, Vec::new()),
        };
        let kb = if kind == b'f' { (r % 200_000 + 1) as i64 } else { 0 };
        let size = if kind == b'f' { kb as u64 * 1024 - r % 1024 } else { 0 };
        let md5 = md5.unwrap_or_else(|| format!("{:016x}{:016x}", mix(r), mix(r ^ 1)));
        out.push(Entry { kind, size, kb, link, name: name.into_bytes(), md5 });
    }
    out
}

/// Tapes, targets and backups (and tapeop's tape/backup side rows).
fn make_rows(cat: &Catalog, tapes: u64, targets: u64) -> Result<(Vec<i64>, String)> {
    let tx = cat.conn().unchecked_transaction()?;
    let mut target_ids = Vec::with_capacity(targets as usize);
    {
        let mut ins = tx.prepare("INSERT INTO targets (name, scanned) VALUES (?1, 0)")?;
        for t in 0..targets {
            let name = format!("/data/season{}/night{:05}/field{:02}", t / 10_000 + 1, t / 10, t % 10);
            ins.execute([name])?;
            target_ids.push(tx.last_insert_rowid());
        }
    }
    let unassigned = (targets / 100).max(1).min(targets);
    let on_tape = targets - unassigned;
    let data_tapes = (tapes - 1).max(1); // the last tape stays empty
    let per_tape = on_tape.div_ceil(data_tapes).max(1);
    let closed = data_tapes * 9 / 10;
    let online = data_tapes - 1;
    let mut online_name = String::new();
    {
        let mut tape_ins = tx.prepare("INSERT INTO tapes (name, serial, status, online) VALUES (?1, ?2, ?3, ?4)")?;
        let mut info_ins =
            tx.prepare("INSERT INTO tapeop_tape_info (tape_id, capacity_bytes, full, label) VALUES (?1, ?2, 0, NULL)")?;
        let mut tape_ids = Vec::new();
        for i in 0..tapes {
            let name = format!("T{:04}", i + 1);
            let status = if i < closed { "closed" } else { "open" };
            let is_online = i == online;
            if is_online {
                online_name = name.clone();
            }
            tape_ins.execute(params![name, format!("SN{:06}", i + 1), status, is_online as i64])?;
            let id = tx.last_insert_rowid();
            info_ins.execute(params![id, 18i64 << 40])?;
            tape_ids.push(id);
        }
        let mut b_ins =
            tx.prepare("INSERT INTO backups (target_id, tape_id, file_number, status) VALUES (?1, ?2, ?3, ?4)")?;
        let mut bi_ins = tx.prepare(
            "INSERT INTO tapeop_backup_info (backup_id, bytes, block_size, written_at, confirmed_at) VALUES (?1, ?2, 262144, ?3, ?4)",
        )?;
        for t in 0..on_tape {
            let tape = t / per_tape;
            let pos = t % per_tape;
            let status = if tape < closed {
                "confirmed"
            } else if tape < online {
                if pos < per_tape * 4 / 5 { "confirmed" } else { "recorded" }
            } else if pos < per_tape * 2 / 5 {
                "confirmed"
            } else if pos < per_tape * 3 / 5 {
                "recorded"
            } else {
                "assigned"
            };
            let fnum = if status == "assigned" { -1 } else { pos as i64 + 1 };
            b_ins.execute(params![target_ids[t as usize], tape_ids[tape as usize], fnum, status])?;
            if status != "assigned" {
                let confirmed = (status == "confirmed").then_some("2026-01-02 03:04:05 UTC");
                bi_ins.execute(params![
                    tx.last_insert_rowid(),
                    (mix(t) % (400u64 << 30)) as i64,
                    "2026-01-01 00:00:00 UTC",
                    confirmed
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok((target_ids, online_name))
}

fn main() -> Result<()> {
    let db = PathBuf::from(std::env::args().nth(1).context(
        "usage: bench_catalog DB_PATH   (env FILES, default 20000000; TARGETS, default 50000; TAPES, default 100)",
    )?);
    let files = env_number("FILES", 20_000_000)?;
    let targets = env_number("TARGETS", 50_000)?;
    let tapes = env_number("TAPES", 100)?;
    if targets == 0 || tapes < 2 || files < targets * 3 {
        bail!("need TARGETS >= 1, TAPES >= 2 and FILES >= 3 * TARGETS");
    }
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(&p);
    }
    let cat = Catalog::open(&db, Mode::Create)?;
    cat.writable()?;
    let (target_ids, online) = make_rows(&cat, tapes, targets)?;
    eprintln!(
        "bench_catalog: {tapes} tapes, {targets} targets; storing {files} file rows through tapeop::commands::import::store ..."
    );

    let mut stored = Duration::ZERO;
    let (mut done, mut last_report) = (0u64, Instant::now());
    for (t, id) in target_ids.iter().enumerate() {
        let t = t as u64;
        let count = files / targets + u64::from(t < files % targets);
        let batch = entries(t, count);
        let started = Instant::now();
        store(&cat, *id, &batch)?;
        stored += started.elapsed();
        done += count;
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("bench_catalog: {done} rows, {:.0} files/s so far", done as f64 / stored.as_secs_f64());
            last_report = Instant::now();
        }
    }
    let seconds = stored.as_secs_f64();
    cat.conn().query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let rows: i64 = cat.conn().query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0))?;
    if rows as u64 != files {
        bail!("expected {files} file rows, the catalogue holds {rows}");
    }
    drop(cat);
    let mut bytes = std::fs::metadata(&db)?.len();
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    bytes += std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let mid = targets / 2;
    let needle = data_name(mid, (files / targets).min(100) - 1);
    eprintln!(
        "bench_catalog: {files} file rows in {seconds:.1} s of store(): {:.0} files/s; catalogue {bytes} bytes = {:.1} bytes per file row",
        files as f64 / seconds,
        bytes as f64 / files as f64
    );
    eprintln!(
        "RESULT files={files} targets={targets} tapes={tapes} seconds={seconds:.3} files_per_s={:.0} db_bytes={bytes} bytes_per_file={:.1} where_is={needle} online={online}",
        files as f64 / seconds,
        bytes as f64 / files as f64
    );
    Ok(())
}
