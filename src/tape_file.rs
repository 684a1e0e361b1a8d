//! The number of a tape file: which file of a tape, counted from 0 (the
//! label) at the beginning of the tape, as the drive counts filemarks. It
//! has no "none" value: a backup not written yet has `Option<TapeFile>`
//! `None`. The catalogue's legacy column (`-1` for none) is converted in
//! `catalog::file_number` and nowhere else.

use std::fmt;

/// A tape file number (0 is the label, 1 the first target's tar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TapeFile(u64);

impl TapeFile {
    /// Tape file 0: the label, at the beginning of the tape.
    pub const LABEL: TapeFile = TapeFile(0);

    /// Tape file `n`.
    pub const fn new(n: u64) -> TapeFile {
        TapeFile(n)
    }

    /// The number, as the drive counts it.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The tape file before this one (none before the label).
    pub const fn prev(self) -> Option<TapeFile> {
        match self.0.checked_sub(1) {
            Some(n) => Some(TapeFile(n)),
            None => None,
        }
    }

    /// The tape file after this one.
    pub const fn next(self) -> TapeFile {
        TapeFile(self.0 + 1)
    }
}

impl fmt::Display for TapeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::TapeFile;

    #[test]
    fn counts_and_shows_like_a_number() {
        assert_eq!(TapeFile::LABEL.next(), TapeFile::new(1));
        assert_eq!(TapeFile::new(41).next().get(), 42);
        assert_eq!((TapeFile::new(5).prev(), TapeFile::LABEL.prev()), (Some(TapeFile::new(4)), None));
        assert!(TapeFile::new(2) < TapeFile::new(10));
        assert_eq!(
            format!("{:5}|{:<3}|{:05}", TapeFile::new(7), TapeFile::new(8), TapeFile::new(9)),
            "    7|8  |00009"
        );
    }
}
