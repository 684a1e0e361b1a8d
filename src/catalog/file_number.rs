//! Tape file number columns (`backups.file_number`,
//! `tapeop_history.file_number`): the one place where the legacy column, an
//! integer with `-1` (or NULL) for "no tape file yet", becomes an
//! `Option<TapeFile>` and back. The old tool reads the column, so an
//! assigned backup keeps its `-1` there; nothing outside this module sees
//! it, except where a report prints the old tool's `-1`
//! (`legacy_file_number`) and where a report shows a damaged or logged row
//! verbatim (`StoredFileNumber`).

use rusqlite::Row;
use rusqlite::types::{ToSql, ToSqlOutput};

use crate::tape_file::TapeFile;

/// What the legacy column holds for "no tape file yet" (an assigned
/// backup): the old tool's `-1`.
pub(crate) const NO_TAPE_FILE: i64 = -1;

/// The tape file of a file number column: none for NULL or a negative
/// number (the old tool's `-1`).
pub(crate) fn tape_file_at(r: &Row<'_>, column: usize) -> rusqlite::Result<Option<TapeFile>> {
    Ok(r.get::<_, Option<i64>>(column)?.and_then(|n| u64::try_from(n).ok()).map(TapeFile::new))
}

/// A tape file as the legacy column holds it and the old tool prints it:
/// its number, or `-1` for none.
pub fn legacy_file_number(n: Option<TapeFile>) -> i64 {
    n.map_or(NO_TAPE_FILE, |n| i64::try_from(n.get()).unwrap_or(i64::MAX))
}

impl ToSql for TapeFile {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let n = i64::try_from(self.get()).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(ToSqlOutput::from(n))
    }
}

/// A file number column exactly as stored (NULL, or any integer, the old
/// tool's `-1` included), for reports that show a row verbatim: the history
/// log, backups whose tape or target row is missing, and a file number
/// claimed twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFileNumber(Option<i64>);

impl StoredFileNumber {
    /// The column at `column` of a row.
    pub(crate) fn at(r: &Row<'_>, column: usize) -> rusqlite::Result<StoredFileNumber> {
        Ok(StoredFileNumber(r.get(column)?))
    }

    /// The value as stored (None for NULL).
    pub fn as_stored(self) -> Option<i64> {
        self.0
    }

    /// The value as the old tool shows it: NULL as `-1`.
    pub fn shown(self) -> i64 {
        self.0.unwrap_or(legacy_file_number(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn read(sql: &str) -> (Option<TapeFile>, StoredFileNumber) {
        let c = Connection::open_in_memory().unwrap();
        c.query_row(sql, [], |r| Ok((tape_file_at(r, 0)?, StoredFileNumber::at(r, 0)?))).unwrap()
    }

    #[test]
    fn the_legacy_column_has_no_tape_file_for_null_or_negative() {
        assert_eq!(read("SELECT 7"), (Some(TapeFile::new(7)), StoredFileNumber(Some(7))));
        assert_eq!(read("SELECT -1").0, None);
        assert_eq!(read("SELECT NULL").0, None);
        assert_eq!((read("SELECT NULL").1.shown(), read("SELECT -1").1.as_stored()), (-1, Some(-1)));
        assert_eq!((legacy_file_number(None), legacy_file_number(Some(TapeFile::new(3)))), (-1, 3));
    }

    #[test]
    fn a_tape_file_is_written_as_its_number() {
        let c = Connection::open_in_memory().unwrap();
        let n: i64 = c.query_row("SELECT ?1 + 1", [TapeFile::new(41)], |r| r.get(0)).unwrap();
        assert_eq!(n, 42);
    }
}
