//! Pools and copies. A tape belongs to a pool (`tapeop_tape_pool`; a tape
//! without a row, or in a catalogue older than schema version 3, is in pool
//! `default`). With `copy_pools` set in tape.conf a target needs one copy —
//! a backups row that is not failed — on a tape of each listed pool; without
//! it, one backup on any tape (the legacy rule, which is the single-pool
//! special case). Every question "which pools does this target still lack a
//! copy in?" is answered from the SQL built here.

use anyhow::{Result, bail};
use rusqlite::{OptionalExtension, params};

use super::{Catalog, Tape, check_tape_name};

/// The pool of a tape nobody put in one.
pub const DEFAULT_POOL: &str = "default";

/// Refuse a pool name that breaks the tape name rules (one line naming the fix).
pub fn check_pool_name(pool: &str) -> Result<()> {
    if check_tape_name(pool).is_err() {
        bail!(
            "pool name {pool:?} is not allowed: use 1 to {} of the characters A-Z a-z 0-9 . _ - \
             (not starting with '.' or '-'), e.g. offsite",
            super::TAPE_NAME_MAX
        );
    }
    Ok(())
}

/// `'text'` as an SQL string literal (pool names are checked, but quote anyway).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Catalog {
    /// Set the pools of which every target needs a copy (tape.conf's
    /// `copy_pools`); empty: one copy anywhere, as the old tool.
    pub fn set_copy_pools(&self, pools: &[String]) {
        *self.copy_pools.borrow_mut() = pools.to_vec();
    }

    /// The pools of which every target needs a copy; empty without `copy_pools`.
    pub fn copy_pools(&self) -> Vec<String> {
        self.copy_pools.borrow().clone()
    }

    /// Whether `copy_pools` is set (several copies, counted per pool).
    pub fn counts_pools(&self) -> bool {
        !self.copy_pools.borrow().is_empty()
    }

    /// Whether the pool table exists (schema version 3).
    fn has_pools(&self) -> Result<bool> {
        self.has_version(3)
    }

    /// The pool of `tape`.
    pub fn tape_pool(&self, tape: &Tape) -> Result<String> {
        if !self.has_pools()? {
            return Ok(DEFAULT_POOL.to_string());
        }
        let pool: Option<String> = self
            .conn
            .query_row("SELECT pool FROM tapeop_tape_pool WHERE tape_id = ?1", [tape.id], |r| r.get(0))
            .optional()?;
        Ok(pool.unwrap_or_else(|| DEFAULT_POOL.to_string()))
    }

    /// Put `tape` in `pool` (pool `default` keeps no row).
    pub fn set_tape_pool(&self, tape: &Tape, pool: &str) -> Result<()> {
        self.writable()?;
        if pool == DEFAULT_POOL {
            self.conn.execute("DELETE FROM tapeop_tape_pool WHERE tape_id = ?1", [tape.id])?;
        } else {
            self.conn.execute(
                "INSERT INTO tapeop_tape_pool (tape_id, pool) VALUES (?1, ?2)
                 ON CONFLICT(tape_id) DO UPDATE SET pool = excluded.pool",
                params![tape.id, pool],
            )?;
        }
        Ok(())
    }

    /// Whether some tape is in a pool other than `default`.
    pub fn has_pooled_tapes(&self) -> Result<bool> {
        if !self.has_pools()? {
            return Ok(false);
        }
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM tapeop_tape_pool WHERE pool != ?1)",
            [DEFAULT_POOL],
            |r| r.get(0),
        )?)
    }

    /// The pool whose copy `tape` takes: None without `copy_pools` (any
    /// target without a backup); an error when `copy_pools` does not list its pool.
    pub fn copy_pool_of(&self, tape: &Tape) -> Result<Option<String>> {
        if !self.counts_pools() {
            return Ok(None);
        }
        let pool = self.tape_pool(tape)?;
        if !self.copy_pools.borrow().contains(&pool) {
            bail!(
                "tape \"{}\" is in pool {pool}, which copy_pools in tape.conf does not list ({}): add the pool \
                 there, or use a tape of a listed pool (open_tape NAME --pool POOL)",
                tape.name,
                self.copy_pools().join(" ")
            );
        }
        Ok(Some(pool))
    }

    /// SQL `FROM ... WHERE ...` over the backups `b` that count as a copy in
    /// `pool` (None: any backup, the legacy rule): not failed, on a tape of
    /// that pool. Append `AND ...` to narrow it.
    pub(super) fn copies_in(&self, pool: Option<&str>) -> Result<String> {
        let live = "COALESCE(b.status, '') != 'failed'";
        Ok(match pool {
            None => format!("FROM backups b WHERE {live}"),
            Some(p) if self.has_pools()? => format!(
                "FROM backups b LEFT JOIN tapeop_tape_pool p ON p.tape_id = b.tape_id \
                 WHERE {live} AND COALESCE(p.pool, {}) = {}",
                literal(DEFAULT_POOL),
                literal(p)
            ),
            Some(p) if p == DEFAULT_POOL => format!("FROM backups b WHERE {live}"),
            Some(_) => format!("FROM backups b WHERE {live} AND 0"),
        })
    }

    /// SQL condition on target id column `target`: it lacks a copy in
    /// `pool` (None: it has no backup at all).
    pub(super) fn lacks_copy_in(&self, target: &str, pool: Option<&str>) -> Result<String> {
        Ok(format!("{target} NOT IN (SELECT b.target_id {} AND b.target_id IS NOT NULL)", self.copies_in(pool)?))
    }

    /// SQL condition on target id column `target`: it lacks a copy in some
    /// pool that `copy_pools` lists (without it: it has no backup).
    pub(super) fn lacks_some_copy(&self, target: &str) -> Result<String> {
        let pools = self.copy_pools();
        if pools.is_empty() {
            return self.lacks_copy_in(target, None);
        }
        let each = pools.iter().map(|p| self.lacks_copy_in(target, Some(p))).collect::<Result<Vec<_>>>()?;
        Ok(format!("({})", each.join(" OR ")))
    }

    /// The pools of `copy_pools` in which target `target_id` has no copy
    /// (recorded, confirmed or still assigned); empty without `copy_pools`.
    pub fn lacking_pools(&self, target_id: i64) -> Result<Vec<String>> {
        let mut lacking = Vec::new();
        for pool in self.copy_pools() {
            let sql = format!("SELECT EXISTS (SELECT 1 {} AND b.target_id = ?1)", self.copies_in(Some(&pool))?);
            let has: bool = self.conn.query_row(&sql, [target_id], |r| r.get(0))?;
            if !has {
                lacking.push(pool);
            }
        }
        Ok(lacking)
    }

    /// The pools of `copy_pools` in which target `target_id` has no
    /// confirmed copy.
    pub fn unconfirmed_pools(&self, target_id: i64) -> Result<Vec<String>> {
        let mut lacking = Vec::new();
        for pool in self.copy_pools() {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 {} AND b.target_id = ?1 AND b.status = 'confirmed')",
                self.copies_in(Some(&pool))?
            );
            let has: bool = self.conn.query_row(&sql, [target_id], |r| r.get(0))?;
            if !has {
                lacking.push(pool);
            }
        }
        Ok(lacking)
    }
}

/// A target short of a confirmed copy in some pool of `copy_pools`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortOfCopies {
    /// The target's id.
    pub target_id: i64,
    /// Target name.
    pub target: Vec<u8>,
    /// The pools with no confirmed copy of it, in `copy_pools` order.
    pub pools: Vec<String>,
}

impl Catalog {
    /// With `copy_pools`: the scanned targets short of a confirmed copy in
    /// some listed pool, by name (none without `copy_pools`).
    pub fn each_short_of_copies(&self, mut each: impl FnMut(ShortOfCopies) -> Result<()>) -> Result<()> {
        let pools = self.copy_pools();
        if pools.is_empty() {
            return Ok(());
        }
        let mut lacks = Vec::new();
        for pool in &pools {
            lacks.push(format!(
                "t.id NOT IN (SELECT b.target_id {} AND b.status = 'confirmed' AND b.target_id IS NOT NULL)",
                self.copies_in(Some(pool))?
            ));
        }
        let sql = format!(
            "SELECT t.id, t.name FROM targets t WHERE t.scanned = 1 AND ({}) ORDER BY t.name",
            lacks.join(" OR ")
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let target_id: i64 = r.get(0)?;
            let target = super::name_bytes(r.get_ref(1)?);
            each(ShortOfCopies { target_id, pools: self.unconfirmed_pools(target_id)?, target })?;
        }
        Ok(())
    }
}

/// One copy of a target: a backup that is not failed, with its tape's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCopy {
    /// Tape name.
    pub tape: String,
    /// The tape's pool.
    pub pool: String,
    /// Tape file (none while assigned).
    pub file_number: Option<crate::tape_file::TapeFile>,
    /// The backup's status.
    pub status: super::BackupStatus,
}

impl Catalog {
    /// Every copy of target `target_id` (its backups that are not failed), by id.
    pub fn target_copies(&self, target_id: i64) -> Result<Vec<TargetCopy>> {
        let (join, pool) = if self.has_pools()? {
            ("LEFT JOIN tapeop_tape_pool p ON p.tape_id = b.tape_id", "p.pool")
        } else {
            ("", "NULL")
        };
        let sql = format!(
            "SELECT COALESCE(tp.name, '?'), COALESCE({pool}, {}), b.file_number, COALESCE(b.status, '') FROM backups b
             LEFT JOIN tapes tp ON tp.id = b.tape_id {join}
             WHERE b.target_id = ?1 AND COALESCE(b.status, '') != 'failed' ORDER BY b.id",
            literal(DEFAULT_POOL)
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([target_id], |r| {
            Ok(TargetCopy {
                tape: r.get(0)?,
                pool: r.get(1)?,
                file_number: super::file_number::tape_file_at(r, 2)?,
                status: super::BackupStatus::parse(&r.get::<_, String>(3)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The pool of the tape named `name` (`default` for an unknown name).
    pub fn pool_of_tape_named(&self, name: &str) -> Result<String> {
        match self.tape_by_name(name)? {
            Some(t) => self.tape_pool(&t),
            None => Ok(DEFAULT_POOL.to_string()),
        }
    }
}

impl Catalog {
    /// Where a target's current copy for `tape`'s pool is (with
    /// `copy_pools`; without it, its current backup anywhere, as
    /// [`Catalog::current_backup`]): `(tape, file number, status)`, or None.
    pub fn current_copy(&self, target_id: i64, tape: &Tape) -> Result<Option<super::CurrentBackup>> {
        let Some(pool) = self.copy_pool_of(tape).ok().flatten() else { return self.current_backup(target_id) };
        let sql = format!(
            "SELECT COALESCE((SELECT name FROM tapes WHERE id = b.tape_id), '?'), b.file_number, COALESCE(b.status, '?')
             {} AND b.target_id = ?1 ORDER BY b.id DESC LIMIT 1",
            self.copies_in(Some(&pool))?
        );
        Ok(self
            .conn
            .query_row(&sql, [target_id], |r| {
                Ok((
                    r.get(0)?,
                    super::file_number::tape_file_at(r, 1)?,
                    super::BackupStatus::parse(&r.get::<_, String>(2)?),
                ))
            })
            .optional()?)
    }
}
