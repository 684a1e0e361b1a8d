//! A synthetic catalogue for the benchmark `examples/bench_catalog.rs`
//! only: tapes, targets and backups in the mix of a catalogue in use, made
//! with plain SQL in one transaction (the benchmark then stores the file rows
//! through import's own insert path). Nothing in tapeop calls it; it is
//! `#[doc(hidden)] pub` so that the SQL stays under src/catalog/.

use anyhow::Result;
use rusqlite::{Connection, params};

use super::Catalog;

/// Where the tapes of the synthetic catalogue stand.
struct Layout {
    /// Targets per data tape.
    per_tape: u64,
    /// Tapes `0..closed` are closed, everything on them confirmed.
    closed: u64,
    /// The online tape's index (confirmed, recorded and assigned backups).
    online: u64,
}

impl Layout {
    /// The status of the backup at position `pos` of tape `tape`.
    fn status(&self, tape: u64, pos: u64) -> &'static str {
        let per = self.per_tape;
        if tape < self.closed || (tape < self.online && pos < per * 4 / 5) || pos < per * 2 / 5 {
            "confirmed"
        } else if tape < self.online || pos < per * 3 / 5 {
            "recorded"
        } else {
            "assigned"
        }
    }
}

impl Catalog {
    /// For the benchmark: `tapes` tapes (the last one empty), `targets`
    /// unscanned targets, 1 % of them unassigned and the rest backed up in
    /// order across the tapes (see the benchmark's text), `bytes_of(t)` the
    /// tape bytes of target index `t`. Returns the target ids and the online
    /// tape's name.
    #[doc(hidden)]
    pub fn bench_rows(&self, tapes: u64, targets: u64, bytes_of: impl Fn(u64) -> u64) -> Result<(Vec<i64>, String)> {
        let tx = self.conn.unchecked_transaction()?;
        let target_ids = bench_targets(&tx, targets)?;
        let on_tape = targets - (targets / 100).max(1).min(targets);
        let data_tapes = (tapes - 1).max(1); // the last tape stays empty
        let layout = Layout {
            per_tape: on_tape.div_ceil(data_tapes).max(1),
            closed: data_tapes * 9 / 10,
            online: data_tapes - 1,
        };
        let tape_ids = bench_tapes(&tx, tapes, &layout)?;
        bench_backups(&tx, &target_ids[..on_tape as usize], &tape_ids, &layout, bytes_of)?;
        tx.commit()?;
        Ok((target_ids, format!("T{:04}", layout.online + 1)))
    }

    /// For the benchmark: checkpoint the WAL into the main file (so the
    /// file's size is the catalogue's) and count the `files` rows.
    #[doc(hidden)]
    pub fn bench_checkpoint_and_count(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(self.conn.query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0))?)
    }
}

fn bench_targets(tx: &Connection, targets: u64) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(targets as usize);
    let mut ins = tx.prepare("INSERT INTO targets (name, scanned) VALUES (?1, 0)")?;
    for t in 0..targets {
        let name = format!("/data/season{}/night{:05}/field{:02}", t / 10_000 + 1, t / 10, t % 10);
        ins.execute([name])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}

fn bench_tapes(tx: &Connection, tapes: u64, layout: &Layout) -> Result<Vec<i64>> {
    let mut tape_ins = tx.prepare("INSERT INTO tapes (name, serial, status, online) VALUES (?1, ?2, ?3, ?4)")?;
    let mut info_ins =
        tx.prepare("INSERT INTO tapeop_tape_info (tape_id, capacity_bytes, full, label) VALUES (?1, ?2, 0, NULL)")?;
    let mut ids = Vec::new();
    for i in 0..tapes {
        let status = if i < layout.closed { "closed" } else { "open" };
        let online = i64::from(i == layout.online);
        tape_ins.execute(params![format!("T{:04}", i + 1), format!("SN{:06}", i + 1), status, online])?;
        let id = tx.last_insert_rowid();
        info_ins.execute(params![id, 18i64 << 40])?;
        ids.push(id);
    }
    Ok(ids)
}

fn bench_backups(
    tx: &Connection,
    targets: &[i64],
    tapes: &[i64],
    layout: &Layout,
    bytes_of: impl Fn(u64) -> u64,
) -> Result<()> {
    let mut b_ins =
        tx.prepare("INSERT INTO backups (target_id, tape_id, file_number, status) VALUES (?1, ?2, ?3, ?4)")?;
    let mut bi_ins = tx.prepare(
        "INSERT INTO tapeop_backup_info (backup_id, bytes, block_size, written_at, confirmed_at)
         VALUES (?1, ?2, 262144, '2026-01-01 00:00:00 UTC', ?3)",
    )?;
    for (t, target) in (0u64..).zip(targets) {
        let (tape, pos) = (t / layout.per_tape, t % layout.per_tape);
        let status = layout.status(tape, pos);
        let fnum = if status == "assigned" { -1 } else { pos as i64 + 1 };
        b_ins.execute(params![target, tapes[tape as usize], fnum, status])?;
        if status != "assigned" {
            let confirmed = (status == "confirmed").then_some("2026-01-02 03:04:05 UTC");
            bi_ins.execute(params![tx.last_insert_rowid(), bytes_of(t) as i64, confirmed])?;
        }
    }
    Ok(())
}
