//! A tape's catalogue file: the last tape file of a closed or full tape,
//! holding a manifest, a snapshot of this catalogue and a README (written
//! by `crate::tape_catalogue`). This module owns its row in
//! `tapeop_tape_catalog` (schema version 3; an older catalogue has none)
//! and the consistent snapshot of the whole catalogue (`VACUUM INTO`).

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::OptionalExtension;

use super::Catalog;
use super::file_number::tape_file_at;
use crate::tape_file::TapeFile;

/// The catalogue file written on a tape, as the catalogue records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapeCatalogueFile {
    /// Its tape file number (the tape's last).
    pub file_number: TapeFile,
    /// Bytes written (whole records).
    pub bytes: u64,
    /// md5 of those bytes.
    pub md5: String,
    /// When it was written.
    pub written: String,
}

impl Catalog {
    /// The catalogue file written on tape `tape_id`, if any (none on a
    /// catalogue older than schema version 3).
    pub fn tape_catalogue_file(&self, tape_id: i64) -> Result<Option<TapeCatalogueFile>> {
        if !self.has_version(3)? {
            return Ok(None);
        }
        let row = self
            .conn()
            .query_row(
                "SELECT file_number, bytes, md5, written FROM tapeop_tape_catalog WHERE tape_id = ?1",
                [tape_id],
                |r| Ok((tape_file_at(r, 0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)),
            )
            .optional()?;
        Ok(row.and_then(|(n, bytes, md5, written)| {
            n.map(|file_number| TapeCatalogueFile { file_number, bytes: bytes.max(0) as u64, md5, written })
        }))
    }

    /// Record that tape `tape_id` ends with its catalogue file `file`.
    pub fn record_tape_catalogue_file(&self, tape_id: i64, file: &TapeCatalogueFile) -> Result<()> {
        self.writable()?;
        self.conn().execute(
            "INSERT OR REPLACE INTO tapeop_tape_catalog (tape_id, file_number, bytes, md5, written)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![tape_id, file.file_number, file.bytes as i64, file.md5, file.written],
        )?;
        Ok(())
    }

    /// Write a consistent copy of the whole catalogue to `to` (a new file).
    pub fn snapshot_into(&self, to: &Path) -> Result<()> {
        let target = to.to_str().with_context(|| format!("snapshot path {} is not UTF-8", to.display()))?;
        self.conn()
            .execute("VACUUM INTO ?1", [target])
            .with_context(|| format!("taking a snapshot of the catalogue into {}", to.display()))?;
        Ok(())
    }
}
