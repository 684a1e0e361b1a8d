//! The catalogue's side of tape labels: the catalogue's own id (made once,
//! when tapeop first upgraded it, and written into every label), the label
//! recorded for each tape it labelled, and the history that tells whether the
//! last label or archive attempt on a tape was left unfinished.

use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, params};

use super::Catalog;
use super::file_number::tape_file_at;
use crate::tape_file::TapeFile;

/// Labels: the catalogue id, recorded labels, unfinished attempts.
impl Catalog {
    /// The catalogue's id (made once, when tapeop first upgraded it).
    pub fn catalogue_id(&self) -> Result<String> {
        self.conn()
            .query_row("SELECT value FROM tapeop_meta WHERE key = 'catalogue_id'", [], |r| r.get(0))
            .context("the catalogue has no id (tapeop_meta)")
    }

    /// The label (catalogue id) tapeop recorded for tape `tape_id`, if it
    /// labelled it (None on a legacy catalogue).
    pub fn recorded_label(&self, tape_id: i64) -> Result<Option<String>> {
        if !self.has_totals()? {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row("SELECT label FROM tapeop_tape_info WHERE tape_id = ?1", [tape_id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten())
    }

    /// Record that tape `tape_id` carries the label of catalogue `catalogue`.
    pub fn record_label(&self, tape_id: i64, catalogue: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO tapeop_tape_info (tape_id, label) VALUES (?1, ?2) ON CONFLICT(tape_id) DO UPDATE SET label = excluded.label",
            params![tape_id, catalogue],
        )?;
        Ok(())
    }

    /// Whether the last label attempt on `tape` did not end `ok`.
    pub fn last_label_failed(&self, tape: &str) -> Result<bool> {
        let outcome: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT outcome FROM tapeop_history WHERE kind = 'label' AND tape = ?1 ORDER BY id DESC LIMIT 1",
                [tape],
                |r| r.get(0),
            )
            .optional()?;
        Ok(matches!(outcome, Some(o) if o.as_deref() != Some("ok")))
    }

    /// Whether the last archive attempt on `tape` was at file `n` and did
    /// not end `ok` (false on a legacy catalogue).
    pub fn last_archive_failed_at(&self, tape: &str, n: TapeFile) -> Result<bool> {
        if !self.has_totals()? {
            return Ok(false);
        }
        let last: Option<(Option<TapeFile>, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT file_number, outcome FROM tapeop_history WHERE kind = 'archive' AND tape = ?1 ORDER BY id DESC LIMIT 1",
                [tape],
                |r| Ok((tape_file_at(r, 0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(matches!(last, Some((Some(at), outcome)) if at == n && outcome.as_deref() != Some("ok")))
    }
}
