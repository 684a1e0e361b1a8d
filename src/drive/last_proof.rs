//! The drive's memory of the last tape tapeop proved or wrote in it: which
//! tape (name, serial, catalogue), where the head was when tapeop let go of
//! the drive (file and block number as st counts them, and the drive's own
//! absolute position from `MTIOCPOS`), the tape's end of data when known,
//! and when. This module owns that record, kept in a small state file beside
//! the drive's lock file (`/run/lock/tapeop…nst0.state`), and the test that
//! lets a later run trust it: the drive must report exactly that position.
//!
//! Why a file beside the lock and not the catalogue: the record describes a
//! drive, not a catalogue (two catalogues may share a drive, and `restore`
//! or `confirm --no-db-update` must record a proof through a catalogue they
//! cannot write); only the holder of the drive lock reads and writes it; and
//! `/run` is emptied at boot, when the st driver forgets its position too.
//!
//! A run takes the record when it starts using the drive (reads and
//! deletes it), so a run that dies leaves none behind and the next run
//! proves the tape in full; it writes a new one when it is done.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{Drive, DriveSpec};

/// What tapeop last proved about the tape in a drive, and where it left the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastProof {
    /// Tape name (as the catalogue and the label say).
    pub tape: String,
    /// The tape's serial ("" if none).
    pub serial: String,
    /// The catalogue's id.
    pub catalogue: String,
    /// Tape file number of the head.
    pub file: u64,
    /// Block number of the head inside that file.
    pub block: u64,
    /// The drive's absolute logical position (`MTIOCPOS`).
    pub position: u64,
    /// The drive reported end of data (`GMT_EOD`) there.
    pub at_eod: bool,
    /// The tape's end of data (its number of tape files), when known.
    pub end_of_data: Option<u64>,
    /// The command that recorded it.
    pub command: String,
    /// When it was recorded.
    pub time: String,
}

/// The drive's head as it reports it: file, block and absolute position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Tape file number.
    pub file: u64,
    /// Block number inside the file.
    pub block: u64,
    /// Absolute logical position (`MTIOCPOS`).
    pub position: u64,
    /// The drive reports end of data (`GMT_EOD`): set by spacing to it, not
    /// by writing, so a head moved there by hand does not pass for one
    /// tapeop left after writing.
    pub at_eod: bool,
}

/// Where the drive says its head is, when it knows all three numbers
/// (st after a spacing it cannot count, or the emulator, does not).
pub fn head(drive: &mut dyn Drive) -> Option<Head> {
    let status = drive.status().ok()?;
    let position = drive.absolute_position().ok()??;
    Some(Head { file: status.file_number?, block: status.block_number?, position, at_eod: status.eod })
}

impl LastProof {
    /// Where the head was left.
    pub fn head(&self) -> Head {
        Head { file: self.file, block: self.block, position: self.position, at_eod: self.at_eod }
    }

    /// Whether the drive's head is exactly where this record left it, away
    /// from the beginning of the tape. A load puts a cartridge at the
    /// beginning of the tape and st restarts its counters there, so a head
    /// found elsewhere, at the same file, block and absolute position, has
    /// not been through a load since (a record made at the beginning of
    /// the tape is never trusted).
    pub fn still_here(&self, now: Option<Head>) -> bool {
        self.position > 0 && now == Some(self.head())
    }

    fn text(&self) -> String {
        let eod = self.end_of_data.map_or("unknown".to_string(), |e| e.to_string());
        format!(
            "tapeop last proof v1\ntape: {}\nserial: {}\ncatalogue: {}\nfile: {}\nblock: {}\nposition: {}\nat_eod: {}\nend_of_data: {eod}\ncommand: {}\ntime: {}\n",
            self.tape,
            self.serial,
            self.catalogue,
            self.file,
            self.block,
            self.position,
            if self.at_eod { "yes" } else { "no" },
            self.command,
            self.time
        )
    }

    fn parse(text: &str) -> Option<LastProof> {
        if !text.starts_with("tapeop last proof v1\n") {
            return None;
        }
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
        let number = |k: &str| field(k).and_then(|v| v.parse::<u64>().ok());
        Some(LastProof {
            tape: field("tape:")?,
            serial: field("serial:")?,
            catalogue: field("catalogue:")?,
            file: number("file:")?,
            block: number("block:")?,
            position: number("position:")?,
            at_eod: field("at_eod:")? == "yes",
            end_of_data: number("end_of_data:"),
            command: field("command:")?,
            time: field("time:")?,
        })
    }
}

/// The state file of a drive: its lock file with `.state` for `.lock`.
pub fn state_path(spec: &DriveSpec) -> PathBuf {
    super::drive_lock_path(spec).with_extension("state")
}

/// The record for the drive, if there is a readable one (for reports).
pub fn read(spec: &DriveSpec) -> Option<LastProof> {
    std::fs::read_to_string(state_path(spec)).ok().and_then(|t| LastProof::parse(&t))
}

/// Take the record: read it and delete it, so that it is trusted by one
/// run at most and a run that dies leaves none.
pub fn take(spec: &DriveSpec) -> Option<LastProof> {
    let last = read(spec);
    forget(spec);
    last
}

/// Delete the record (before the tape is written, or when the head's
/// whereabouts stop being known).
pub fn forget(spec: &DriveSpec) {
    let _ = std::fs::remove_file(state_path(spec));
}

/// Write the record (to a temporary file renamed over the old one).
pub fn write(spec: &DriveSpec, last: &LastProof) -> Result<()> {
    let path = state_path(spec);
    let tmp = path.with_extension("state.new");
    std::fs::write(&tmp, last.text()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LastProof {
        LastProof {
            tape: "T1".into(),
            serial: "S 1".into(),
            catalogue: "abc".into(),
            file: 3,
            block: 0,
            position: 17,
            at_eod: false,
            end_of_data: Some(3),
            command: "archive".into(),
            time: "2026-01-01 00:00:00".into(),
        }
    }

    #[test]
    fn text_round_trips_and_only_the_exact_head_is_trusted() {
        let last = sample();
        assert_eq!(LastProof::parse(&last.text()), Some(last.clone()));
        let unknown = LastProof { end_of_data: None, ..last.clone() };
        assert_eq!(LastProof::parse(&unknown.text()), Some(unknown));
        assert_eq!(LastProof::parse("something else\n"), None);
        assert!(last.still_here(Some(Head { file: 3, block: 0, position: 17, at_eod: false })));
        assert!(!last.still_here(Some(Head { file: 3, block: 0, position: 18, at_eod: false })));
        assert!(!last.still_here(Some(Head { file: 0, block: 0, position: 0, at_eod: false })));
        assert!(!last.still_here(None));
        assert!(!last.still_here(Some(Head { file: 3, block: 0, position: 17, at_eod: true })));
        let at_bot = LastProof { file: 0, position: 0, ..last };
        assert!(!at_bot.still_here(Some(Head { file: 0, block: 0, position: 0, at_eod: false })));
    }
}
