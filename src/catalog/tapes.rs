//! Tapes: their rows, creating, activating and closing them, and the rules
//! for tape names.

use anyhow::{Context, Result, bail};
use rusqlite::{OptionalExtension, params};

use super::Catalog;

/// A tape row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tape {
    /// Row id.
    pub id: i64,
    /// Name, e.g. `PUB-T1`.
    pub name: String,
    /// Serial number ("" when not set).
    pub serial: String,
    /// `open`, `closed` or `garbage` (see [`TapeStatus`]).
    pub status: TapeStatus,
    /// Whether it is the online (active) tape.
    pub online: bool,
}

/// A tape's status. The catalogue keeps it as the old tool's text in
/// `tapes.status`; it is parsed here and nowhere else. `Full` is never
/// stored there: it is tapeop's mark on an open tape (`tapeop_tape_info.full`),
/// shown in its place. A string neither tool writes (another program's, or a
/// NULL read as "") is kept verbatim as `Other`, shown as it is and treated
/// as not open: reading a catalogue never fails on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapeStatus {
    /// `open`: takes new targets and is written to.
    Open,
    /// `full`: an open tape that reached its end (shown, not stored).
    Full,
    /// `closed`: nothing more is written to it.
    Closed,
    /// `garbage`: the old tool's mark of a tape not to be used.
    Garbage,
    /// Any other string, kept as it was read.
    Other(String),
}

impl TapeStatus {
    /// The status as read from `tapes.status`.
    pub fn parse(s: &str) -> TapeStatus {
        match s {
            "open" => TapeStatus::Open,
            "full" => TapeStatus::Full,
            "closed" => TapeStatus::Closed,
            "garbage" => TapeStatus::Garbage,
            other => TapeStatus::Other(other.to_string()),
        }
    }

    /// The status as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            TapeStatus::Open => "open",
            TapeStatus::Full => "full",
            TapeStatus::Closed => "closed",
            TapeStatus::Garbage => "garbage",
            TapeStatus::Other(s) => s,
        }
    }
}

impl std::fmt::Display for TapeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Catalog {
    // ---- tapes ----

    fn tape_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tape> {
        Ok(Tape {
            id: r.get(0)?,
            name: r.get(1)?,
            serial: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            status: TapeStatus::parse(&r.get::<_, Option<String>>(3)?.unwrap_or_default()),
            online: r.get::<_, i64>(4)? != 0,
        })
    }

    /// Every tape, by id.
    pub fn tapes(&self) -> Result<Vec<Tape>> {
        let mut stmt = self.conn.prepare("SELECT id, name, serial, status, online FROM tapes ORDER BY id")?;
        let rows = stmt.query_map([], Self::tape_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The tape named `name`, if any.
    pub fn tape_by_name(&self, name: &str) -> Result<Option<Tape>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, serial, status, online FROM tapes WHERE name = ?1",
                [name],
                Self::tape_from_row,
            )
            .optional()?)
    }

    /// The tape whose serial is exactly `serial` (in a library, its barcode), if any.
    pub fn tape_by_serial(&self, serial: &str) -> Result<Option<Tape>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, serial, status, online FROM tapes WHERE serial = ?1",
                [serial],
                Self::tape_from_row,
            )
            .optional()?)
    }

    /// The tape named `name`, or an error that says how to list them.
    pub fn require_tape(&self, name: &str) -> Result<Tape> {
        self.tape_by_name(name)?
            .with_context(|| format!("no tape named {name:?} in the catalogue (tapeop tapes lists them)"))
    }

    /// The online tape, if one is.
    pub fn online_tape(&self) -> Result<Option<Tape>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, serial, status, online FROM tapes WHERE online = 1 ORDER BY id LIMIT 1",
                [],
                Self::tape_from_row,
            )
            .optional()?)
    }

    /// The named tape, or the online one when `name` is None.
    pub fn tape_or_online(&self, name: Option<&str>) -> Result<Tape> {
        match name {
            Some(n) => self.require_tape(n),
            None => self
                .online_tape()?
                .context("no tape is online: name the tape, or bring one online with tapeop activate_tape NAME"),
        }
    }

    /// Create an `open` tape; `online` makes it the only online tape.
    pub fn create_tape(&self, name: &str, serial: Option<&str>, online: bool) -> Result<Tape> {
        self.writable()?;
        if let Some(t) = self.tape_by_name(name)? {
            bail!("a tape named {name:?} already exists (id {}, {})", t.id, t.status);
        }
        if let Some(s) = serial {
            self.check_serial_free(s)?;
        }
        let tx = self.conn.unchecked_transaction()?;
        if online {
            tx.execute("UPDATE tapes SET online = 0 WHERE online != 0", [])?;
        }
        tx.execute(
            "INSERT INTO tapes (name, serial, status, online) VALUES (?1, ?2, 'open', ?3)",
            params![name, serial, online as i64],
        )?;
        tx.commit()?;
        self.require_tape(name)
    }

    /// Refuse a serial number that another tape has.
    pub fn check_serial_free(&self, serial: &str) -> Result<()> {
        let other: Option<String> =
            self.conn.query_row("SELECT name FROM tapes WHERE serial = ?1", [serial], |r| r.get(0)).optional()?;
        if let Some(other) = other {
            bail!("serial number {serial:?} already belongs to tape {other:?}");
        }
        Ok(())
    }

    /// Make `tape` the only online tape.
    pub fn activate_tape(&self, tape: &Tape) -> Result<()> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("UPDATE tapes SET online = 0 WHERE online != 0", [])?;
        tx.execute("UPDATE tapes SET online = 1 WHERE id = ?1", [tape.id])?;
        tx.commit()?;
        Ok(())
    }

    /// Close a tape: its assigned backups are dissociated, it goes offline
    /// and its status becomes `closed`. Returns how many were dissociated.
    pub fn close_tape(&self, tape: &Tape) -> Result<usize> {
        self.writable()?;
        let tx = self.conn.unchecked_transaction()?;
        let n = tx.execute("DELETE FROM backups WHERE tape_id = ?1 AND status IN ('assigned', 'new')", [tape.id])?;
        tx.execute("UPDATE tapes SET status = 'closed', online = 0 WHERE id = ?1", [tape.id])?;
        crate::fault::point("close-before-commit");
        tx.commit()?;
        Ok(n)
    }
}

/// The longest tape name `open_tape` and `scan_tape --record-as` accept.
pub const TAPE_NAME_MAX: usize = 64;

/// Whether `b` may appear in a tape name: `A-Z a-z 0-9 . _ -`.
fn tape_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Refuse a tape name that could not safely become part of a file name:
/// only `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`, at most
/// [`TAPE_NAME_MAX`] characters. Every name the old tool's manual shows
/// (`T0001`, `PUB-T1`) passes.
pub fn check_tape_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= TAPE_NAME_MAX
        && b.iter().all(|&c| tape_name_byte(c))
        && !matches!(b.first(), Some(b'.' | b'-'));
    if !ok {
        bail!(
            "tape name {name:?} is not allowed: use 1 to {TAPE_NAME_MAX} of the characters A-Z a-z 0-9 . _ - \
             (not starting with '.' or '-'), e.g. T0001"
        );
    }
    Ok(())
}

/// A tape name as it may be used inside a file name: unchanged when
/// [`check_tape_name`] accepts it; otherwise (a name another program put in
/// the catalogue) every byte outside `A-Z a-z 0-9 . _ -`, and a leading `.`
/// or `-`, becomes `%XX`. The result never contains `/`, is never `.` or
/// `..`, and distinct names stay distinct.
pub fn tape_name_for_path(name: &str) -> String {
    if check_tape_name(name).is_ok() {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len() * 3);
    for (i, &c) in name.as_bytes().iter().enumerate() {
        if tape_name_byte(c) && !(i == 0 && matches!(c, b'.' | b'-')) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_statuses_round_trip_and_keep_unknown_strings() {
        for s in ["open", "full", "closed", "garbage", "", "lost"] {
            assert_eq!(TapeStatus::parse(s).as_str(), s);
        }
        assert_eq!(TapeStatus::parse("lost"), TapeStatus::Other("lost".into()));
        assert_eq!(format!("[{:<8}]", TapeStatus::Closed), "[closed  ]");
    }

    #[test]
    fn tape_names() {
        for ok in ["T0001", "PUB-T1", "LTO9_0001.a", "x"] {
            assert!(check_tape_name(ok).is_ok(), "{ok}");
            assert_eq!(tape_name_for_path(ok), ok);
        }
        let long = "T".repeat(TAPE_NAME_MAX + 1);
        for bad in ["", "../../escaped", "x/y", ".hidden", "-rf", "a b", "caf\u{e9}", "..", long.as_str()] {
            assert!(check_tape_name(bad).is_err(), "{bad}");
        }
        assert_eq!(tape_name_for_path("../../escaped"), "%2E.%2F..%2Fescaped");
        assert_eq!(tape_name_for_path("x/y"), "x%2Fy");
        assert_eq!(tape_name_for_path(".."), "%2E.");
        assert_eq!(tape_name_for_path(""), "%");
        assert_eq!(tape_name_for_path("a%2Fb"), "a%252Fb");
    }
}
