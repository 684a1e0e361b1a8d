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
//! Tapes, targets and backups are made with plain SQL in one transaction
//! (`Catalog::bench_rows`, under src/catalog/, for this benchmark only); the
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
    let (target_ids, online) = cat.bench_rows(tapes, targets, |t| mix(t) % (400u64 << 30))?;
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
    let rows = cat.bench_checkpoint_and_count()?;
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
