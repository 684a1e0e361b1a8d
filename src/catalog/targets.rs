//! Targets and their files: target rows, streaming file rows, removing a
//! target, and the per-target totals kept beside the `files` table.

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Catalog, name_bytes, name_value, show};

/// The `tapeop_meta` key of the totals' high-water mark.
const TOTALS_MARK: &str = "totals_file_id";

/// One catalogued file of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Name relative to the target (raw bytes).
    pub name: Vec<u8>,
    /// 32 hex digits, `symlink`, or `directory`.
    pub md5: String,
    /// `du` size in KiB (as the old tool stored it).
    pub size_kb: i64,
    /// Exact size in bytes, when tapeop scanned it.
    pub size_bytes: Option<i64>,
    /// Symlink target, when tapeop scanned it.
    pub link_target: Option<Vec<u8>>,
}

/// A target row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Row id.
    pub id: i64,
    /// Absolute directory on the data host (raw bytes).
    pub name: Vec<u8>,
    /// Whether its files were scanned.
    pub scanned: bool,
    /// Nearest ancestor target.
    pub parent_id: Option<i64>,
}

impl Catalog {
    // ---- bulk file writes ----

    /// The totals' high-water mark: every `files` row up to this id is
    /// counted in `tapeop_target_totals`.
    fn totals_mark(conn: &Connection) -> Result<i64> {
        let mark: Option<String> = conn
            .prepare_cached("SELECT value FROM tapeop_meta WHERE key = ?1")?
            .query_row([TOTALS_MARK], |r| r.get(0))
            .optional()?;
        Ok(mark.and_then(|m| m.parse().ok()).unwrap_or(0))
    }

    fn max_file_id(conn: &Connection) -> Result<i64> {
        Ok(conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM files")?.query_row([], |r| r.get(0))?)
    }

    fn set_totals_mark(conn: &Connection, id: i64) -> Result<()> {
        conn.prepare_cached("INSERT OR REPLACE INTO tapeop_meta (key, value) VALUES (?1, ?2)")?
            .execute(params![TOTALS_MARK, id.to_string()])?;
        Ok(())
    }

    /// Fold `files` rows above the high-water mark (inserted by another
    /// program, such as the old tool) into the totals, inside `conn`'s
    /// open transaction.
    pub fn fold_new_files(conn: &Connection) -> Result<()> {
        let (mark, max) = (Self::totals_mark(conn)?, Self::max_file_id(conn)?);
        if max <= mark {
            return Ok(());
        }
        conn.execute(
            "INSERT OR IGNORE INTO tapeop_target_totals (target_id) SELECT DISTINCT target_id FROM files WHERE id > ?1",
            [mark],
        )?;
        conn.execute(
            "UPDATE tapeop_target_totals AS t SET file_count = t.file_count + n.c, size_kb = t.size_kb + n.kb
             FROM (SELECT target_id, COUNT(*) AS c, COALESCE(SUM(size_kb), 0) AS kb FROM files WHERE id > ?1 GROUP BY target_id) AS n
             WHERE t.target_id = n.target_id",
            [mark],
        )?;
        Self::set_totals_mark(conn, max)
    }

    /// Start a bulk write of file rows inside the open transaction of
    /// `tx`: bring the totals up to date, so that `end_bulk` may move the
    /// high-water mark past the rows this write adds.
    pub fn begin_bulk(tx: &Connection) -> Result<()> {
        Self::fold_new_files(tx)
    }

    /// End a bulk write: recompute the totals of `targets` in one aggregate
    /// each and move the high-water mark past the new rows (still inside
    /// the transaction, which holds the write lock, so no other program's
    /// rows can be among them).
    pub fn end_bulk(tx: &Connection, targets: &[i64]) -> Result<()> {
        for t in targets {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO tapeop_target_totals (target_id, file_count, size_kb)
                 SELECT ?1, COUNT(*), COALESCE(SUM(size_kb), 0) FROM files WHERE target_id = ?1",
            )?
            .execute([t])?;
        }
        Self::set_totals_mark(tx, Self::max_file_id(tx)?)
    }

    /// End a bulk write that replaced every file row of `target` and knows
    /// their count and KiB: set its totals so (no aggregate over the rows)
    /// and move the high-water mark past the new rows, as [`Catalog::end_bulk`].
    pub fn end_bulk_counted(tx: &Connection, target: i64, files: i64, kb: i64) -> Result<()> {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO tapeop_target_totals (target_id, file_count, size_kb) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![target, files, kb])?;
        Self::set_totals_mark(tx, Self::max_file_id(tx)?)
    }

    /// The SQL of a derived table `(target_id, file_count, size_kb)` of
    /// per-target totals: the kept totals when they are up to date, else
    /// those plus the rows another program inserted since tapeop last wrote.
    pub fn totals_table(&self) -> Result<&'static str> {
        if !self.has_totals()? {
            return Ok(
                "(SELECT target_id, COUNT(*) AS file_count, SUM(size_kb) AS size_kb FROM files GROUP BY target_id)",
            );
        }
        if self.user_version()? < 2 || Self::max_file_id(&self.conn)? <= Self::totals_mark(&self.conn)? {
            return Ok("tapeop_target_totals");
        }
        Ok("(SELECT target_id, SUM(file_count) AS file_count, SUM(size_kb) AS size_kb FROM (
               SELECT target_id, file_count, size_kb FROM tapeop_target_totals
               UNION ALL SELECT target_id, 1, COALESCE(size_kb, 0) FROM files
                 WHERE id > (SELECT CAST(value AS INTEGER) FROM tapeop_meta WHERE key = 'totals_file_id'))
             GROUP BY target_id)")
    }

    // ---- targets and files ----

    /// The target row with `id`.
    pub fn target(&self, id: i64) -> Result<Target> {
        self.conn
            .prepare_cached("SELECT id, name, scanned, parent_id FROM targets WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(Target {
                    id: r.get(0)?,
                    name: name_bytes(r.get_ref(1)?),
                    scanned: r.get::<_, Option<i64>>(2)?.unwrap_or(0) != 0,
                    parent_id: r.get(3)?,
                })
            })
            .with_context(|| format!("target id {id} is missing from the catalogue"))
    }

    /// Names of the direct child targets of a target.
    pub fn child_targets(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self.conn.prepare("SELECT name FROM targets WHERE parent_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([id], |r| Ok(name_bytes(r.get_ref(0)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stream the files of a target, by name.
    pub fn each_file(&self, target_id: i64, mut each: impl FnMut(FileRow) -> Result<()>) -> Result<()> {
        let info = self.has_totals()?;
        let sql = if info {
            "SELECT f.name, f.md5sum, f.size_kb, i.size_bytes, i.link_target FROM files f
             LEFT JOIN tapeop_file_info i ON i.file_id = f.id WHERE f.target_id = ?1 ORDER BY f.name"
        } else {
            "SELECT name, md5sum, size_kb, NULL, NULL FROM files WHERE target_id = ?1 ORDER BY name"
        };
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([target_id])?;
        while let Some(r) = rows.next()? {
            each(FileRow {
                name: name_bytes(r.get_ref(0)?),
                md5: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                size_kb: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                size_bytes: r.get(3)?,
                link_target: r.get_ref(4)?.as_bytes_or_null()?.map(<[u8]>::to_vec),
            })?;
        }
        Ok(())
    }

    /// The target named `name`, if any.
    pub fn target_by_name(&self, name: &[u8]) -> Result<Option<Target>> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM targets WHERE name = ?1", [name_value(name)], |r| r.get(0))
            .optional()?;
        id.map(|id| self.target(id)).transpose()
    }

    /// Remove a target that was never written to tape: its files, its
    /// assigned backup (if any) and its row; its child targets take its
    /// parent. Refuses a target with any tape file. Returns the number of
    /// file rows removed.
    pub fn remove_target(&self, target: &Target) -> Result<i64> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let written: i64 = tx.query_row(
            "SELECT COUNT(*) FROM backups WHERE target_id = ?1 AND status NOT IN ('assigned', 'new')",
            [target.id],
            |r| r.get(0),
        )?;
        if written > 0 {
            bail!("target {} has a tape file; nothing was removed", show(&target.name));
        }
        tx.execute("DELETE FROM backups WHERE target_id = ?1", [target.id])?;
        tx.execute(
            "DELETE FROM tapeop_file_info WHERE file_id IN (SELECT id FROM files WHERE target_id = ?1)",
            [target.id],
        )?;
        let files = tx.execute("DELETE FROM files WHERE target_id = ?1", [target.id])?;
        tx.execute("DELETE FROM tapeop_target_totals WHERE target_id = ?1", [target.id])?;
        tx.execute("UPDATE targets SET parent_id = ?2 WHERE parent_id = ?1", params![target.id, target.parent_id])?;
        tx.execute("DELETE FROM targets WHERE id = ?1", [target.id])?;
        tx.commit()?;
        Ok(files as i64)
    }
}
