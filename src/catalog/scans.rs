//! What `import` writes: the targets an import list names (created, linked
//! to their nearest ancestor target, refused inside a target already on
//! tape), and the file rows of a scan of the data host, which replace a
//! target's rows in one transaction (bulk inserts of consecutive ids, then
//! each row's exact size and link target in `tapeop_file_info`).

use anyhow::{Context, Result, bail};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, params};

use super::{Catalog, ParentFiles, name_bytes, name_value};

/// A target as `import` weighs it against an import list.
pub struct ImportTarget {
    /// Row id.
    pub id: i64,
    /// Absolute path on the data host.
    pub name: Vec<u8>,
    /// Whether its files have been listed.
    pub scanned: bool,
    /// Whether a recorded or confirmed backup holds it.
    pub written: bool,
}

/// One entry of a target as the data host listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    /// find's type letter: f, l, d, p, s, b, c.
    pub kind: u8,
    /// Length in bytes.
    pub size: u64,
    /// Allocated KiB (what du prints).
    pub kb: i64,
    /// Symlink target.
    pub link: Vec<u8>,
    /// Name relative to the target.
    pub name: Vec<u8>,
    /// md5 (32 hex), `symlink` or `directory`.
    pub md5: String,
}

/// Whether path `child` lies strictly below path `parent`.
pub fn is_under(child: &[u8], parent: &[u8]) -> bool {
    child.len() > parent.len() && child.starts_with(parent) && child[parent.len()] == b'/'
}

/// File rows written per INSERT statement: one statement per row would
/// cost a statement run and an update of the AUTOINCREMENT counter each.
const ROWS_PER_INSERT: usize = 256;

impl Catalog {
    /// Every target, with whether it is scanned and already on tape.
    pub fn import_targets(&self) -> Result<Vec<ImportTarget>> {
        let mut stmt = self.conn().prepare(
            "SELECT t.id, t.name, COALESCE(t.scanned, 0),
                    EXISTS (SELECT 1 FROM backups b WHERE b.target_id = t.id AND b.status IN ('recorded','confirmed'))
             FROM targets t",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ImportTarget {
                id: r.get(0)?,
                name: name_bytes(r.get_ref(1)?),
                scanned: r.get::<_, i64>(2)? != 0,
                written: r.get::<_, i64>(3)? != 0,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether target `id` has a backup of any status.
    pub fn has_backup(&self, id: i64) -> Result<bool> {
        Ok(self.conn().query_row("SELECT EXISTS (SELECT 1 FROM backups WHERE target_id = ?1)", [id], |r| r.get(0))?)
    }

    /// In one transaction: insert `names` as unscanned targets, then set
    /// every target's parent to its nearest ancestor target and drop the
    /// file rows a parent holds under a child target
    /// ([`ParentFiles::Exclude`]).
    pub fn add_import_targets(&self, names: &[&[u8]]) -> Result<()> {
        self.add_linked_targets(names, false, ParentFiles::Exclude)?;
        Ok(())
    }

    /// Mark the targets named `names` scanned without listing their files
    /// (`import --no-scan`); scanned targets are left alone.
    pub fn mark_scanned_blind(&self, names: &[Vec<u8>]) -> Result<()> {
        let tx = self.conn().unchecked_transaction()?;
        for name in names {
            tx.execute(
                "UPDATE targets SET scanned = 1 WHERE name = ?1 AND COALESCE(scanned, 0) = 0",
                [name_value(name)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The target named `name`, with whether it is scanned and on tape.
    pub fn import_target(&self, name: &[u8]) -> Result<ImportTarget> {
        Ok(self.conn().query_row(
            "SELECT t.id, COALESCE(t.scanned, 0), EXISTS (SELECT 1 FROM backups b WHERE b.target_id = t.id
                 AND b.status IN ('recorded','confirmed')) FROM targets t WHERE t.name = ?1",
            [name_value(name)],
            |r| {
                Ok(ImportTarget {
                    id: r.get(0)?,
                    name: name.to_vec(),
                    scanned: r.get::<_, i64>(1)? != 0,
                    written: r.get(2)?,
                })
            },
        )?)
    }

    /// Replace the file rows of target `target_id` with `entries`, keep its
    /// totals, and mark it scanned, in one transaction.
    pub fn store_scan(&self, target_id: i64, entries: &[ScanEntry]) -> Result<()> {
        let tx = self.conn().unchecked_transaction()?;
        Catalog::begin_bulk(&tx)?;
        tx.prepare_cached("DELETE FROM tapeop_file_info WHERE file_id IN (SELECT id FROM files WHERE target_id = ?1)")?
            .execute([target_id])?;
        tx.prepare_cached("DELETE FROM files WHERE target_id = ?1")?.execute([target_id])?;
        let mut sorted: Vec<&ScanEntry> = entries.iter().collect();
        sorted.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut rest = sorted.as_slice();
        while !rest.is_empty() {
            // Whole batches, then powers of two: a few statement shapes, all cached.
            let n = if rest.len() >= ROWS_PER_INSERT { ROWS_PER_INSERT } else { 1 << rest.len().ilog2() };
            let (rows, tail) = rest.split_at(n);
            insert_rows(&tx, target_id, rows)?;
            rest = tail;
        }
        let kb: i64 = entries.iter().map(|e| e.kb).sum();
        Catalog::end_bulk_counted(&tx, target_id, entries.len() as i64, kb)?;
        tx.prepare_cached("UPDATE targets SET scanned = 1 WHERE id = ?1")?.execute([target_id])?;
        crate::fault::point("import-before-commit");
        tx.commit()?;
        Ok(())
    }
}

/// A name as TEXT when it is UTF-8, else as BLOB, without copying it.
fn name_ref(bytes: &[u8]) -> ToSqlOutput<'_> {
    match std::str::from_utf8(bytes) {
        Ok(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Err(_) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
    }
}

/// `INSERT INTO table (columns) VALUES (?, ...), ...` for `rows` rows.
fn multi_insert(head: &str, columns: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(","));
    format!("{head} VALUES {}", vec![one; rows].join(","))
}

/// Insert `rows` (sorted by name) into `files` with one statement, then
/// their exact sizes and link targets into `tapeop_file_info` with another.
/// The new ids are consecutive: the write transaction excludes every other
/// writer and AUTOINCREMENT gives each row the next id.
fn insert_rows(tx: &Connection, target_id: i64, rows: &[&ScanEntry]) -> Result<()> {
    let sql = multi_insert("INSERT INTO files (target_id, name, md5sum, size_kb)", 4, rows.len());
    let names: Vec<_> = rows.iter().map(|e| name_ref(&e.name)).collect();
    let mut values: Vec<&dyn ToSql> = Vec::with_capacity(rows.len() * 4);
    for (e, name) in rows.iter().zip(&names) {
        values.extend([&target_id as &dyn ToSql, name, &e.md5, &e.kb]);
    }
    tx.prepare_cached(&sql)?.execute(values.as_slice())?;
    let first = tx.last_insert_rowid() - rows.len() as i64 + 1;
    let first_name = names.first().context("no rows to insert")?;
    let got: i64 = tx
        .prepare_cached("SELECT id FROM files WHERE target_id = ?1 AND name = ?2")?
        .query_row(params![target_id, first_name], |r| r.get(0))?;
    if got != first {
        bail!(
            "file ids of target {target_id} are not consecutive ({got}, expected {first}); nothing of this scan was stored"
        );
    }
    let ids: Vec<i64> = (first..first + rows.len() as i64).collect();
    let facts: Vec<(i64, Option<&[u8]>)> =
        rows.iter().map(|e| (e.size as i64, (e.kind == b'l').then_some(e.link.as_slice()))).collect();
    let sql = multi_insert("INSERT INTO tapeop_file_info (file_id, size_bytes, link_target)", 3, rows.len());
    let mut values: Vec<&dyn ToSql> = Vec::with_capacity(rows.len() * 3);
    for (id, (size, link)) in ids.iter().zip(&facts) {
        values.extend([id as &dyn ToSql, size, link]);
    }
    tx.prepare_cached(&sql)?.execute(values.as_slice())?;
    Ok(())
}
