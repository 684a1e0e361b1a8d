//! The `mtx status` parser: the header, one `Data Transfer Element` line per
//! drive and one `Storage Element` line per slot, as mtx prints them
//! (`Status()` in mtx.c):
//!
//! ```text
//!   Storage Changer /dev/sg5:2 Drives, 6 Slots ( 1 Import/Export )
//! Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = A00001L9
//! Data Transfer Element 1:Full (Unknown Storage Element Loaded):VolumeTag = A00002L9
//!       Storage Element 1:Empty
//!       Storage Element 2:Full :VolumeTag=A00003L9:AlternateVolumeTag=X
//!       ...
//!       Storage Element 6 IMPORT/EXPORT:Empty
//! ```
//!
//! The header's slot count includes the import/export slots, and every
//! element it announces is listed (fewer is an error: incomplete output).
//! Volume tags come padded with spaces (trimmed here); a drive or slot may
//! have none. This module owns that text format and the lookups over it.

use anyhow::{Context, Result, bail};

/// What `mtx status` reports: every drive and every slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryStatus {
    /// The drives (Data Transfer Elements), in mtx's order.
    pub drives: Vec<DriveElement>,
    /// The storage and import/export slots, in mtx's order.
    pub slots: Vec<SlotElement>,
}

/// A drive as `mtx status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveElement {
    /// Its Data Transfer Element number (from 0).
    pub index: u32,
    /// It holds a cartridge.
    pub full: bool,
    /// The slot the cartridge came from (None: empty, or unknown to the changer).
    pub source_slot: Option<u32>,
    /// The cartridge's barcode, trimmed (None: empty, or no barcode).
    pub barcode: Option<String>,
}

/// A slot as `mtx status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotElement {
    /// Its Storage Element number (from 1).
    pub number: u32,
    /// An import/export slot (mail slot), not a storage slot.
    pub import_export: bool,
    /// It holds a cartridge.
    pub full: bool,
    /// The cartridge's barcode, trimmed (None: empty, or no barcode).
    pub barcode: Option<String>,
}

/// Where a cartridge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// In the drive with this element number.
    Drive(u32),
    /// In the slot with this number.
    Slot(u32),
}

impl LibraryStatus {
    /// Parse what `mtx status` printed. Lines before the `Storage Changer`
    /// header (mtx's sense reports and warnings) are passed over; after it,
    /// a line that is neither a drive nor a slot is an error naming it.
    pub fn parse(text: &str) -> Result<LibraryStatus> {
        let mut status = LibraryStatus { drives: Vec::new(), slots: Vec::new() };
        let mut header = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if let Some(rest) = line.strip_prefix("Storage Changer ") {
                header = Some(counts(rest).with_context(|| bad_line(n, line))?);
            } else if line.is_empty() || header.is_none() {
                continue;
            } else if let Some(rest) = line.strip_prefix("Data Transfer Element ") {
                status.drives.push(drive(rest).with_context(|| bad_line(n, line))?);
            } else if let Some(rest) = line.strip_prefix("Storage Element ") {
                status.slots.push(slot(rest).with_context(|| bad_line(n, line))?);
            } else {
                bail!("{}: it is neither a drive nor a slot", bad_line(n, line));
            }
        }
        let Some((drives, slots, ie)) = header else {
            bail!("mtx status printed no \"Storage Changer\" header line: is the changer device an mtx changer?");
        };
        let listed_ie = status.slots.iter().filter(|s| s.import_export).count();
        if (status.drives.len(), status.slots.len(), listed_ie) != (drives, slots, ie) {
            bail!(
                "mtx status announced {drives} drives, {slots} slots ({ie} import/export) but listed {}, {} ({listed_ie}): \
                 its output is incomplete",
                status.drives.len(),
                status.slots.len()
            );
        }
        Ok(status)
    }

    /// Where the cartridge with this barcode is, if in the library.
    pub fn locate(&self, barcode: &str) -> Option<Location> {
        let barcode = barcode.trim();
        let has = |b: &Option<String>| b.as_deref() == Some(barcode);
        if let Some(d) = self.drives.iter().find(|d| has(&d.barcode)) {
            return Some(Location::Drive(d.index));
        }
        self.slots.iter().find(|s| has(&s.barcode)).map(|s| Location::Slot(s.number))
    }

    /// The drive with this element number.
    pub fn drive(&self, index: u32) -> Option<&DriveElement> {
        self.drives.iter().find(|d| d.index == index)
    }

    /// An empty storage (not import/export) slot, for a cartridge whose source slot is unknown.
    pub fn free_slot(&self) -> Option<u32> {
        self.slots.iter().find(|s| !s.full && !s.import_export).map(|s| s.number)
    }
}

/// Cleaning cartridges: barcodes starting with "CLN".
pub fn is_cleaning(barcode: &str) -> bool {
    barcode.trim().starts_with("CLN")
}

fn bad_line(n: usize, line: &str) -> String {
    format!("mtx status line {}, {line:?}, is not in mtx's format", n + 1)
}

/// The header after `Storage Changer `: `/dev/sg5:2 Drives, 24 Slots ( 1 Import/Export )`
/// gives (drives, slots, import/export slots); mtx counts the import/export
/// slots among the slots.
fn counts(rest: &str) -> Result<(usize, usize, usize)> {
    let (_, tail) = rest.rsplit_once(':').context("no ':' after the changer device")?;
    let words: Vec<&str> = tail.split_whitespace().collect();
    match words[..] {
        [d, "Drives,", s, "Slots", "(", ie, "Import/Export", ")"] => {
            Ok((number(d)? as usize, number(s)? as usize, number(ie)? as usize))
        }
        _ => bail!("it does not say how many drives and slots there are"),
    }
}

/// `0:Full (Storage Element 3 Loaded):VolumeTag = X`, `1:Empty`, ...
fn drive(rest: &str) -> Result<DriveElement> {
    let (index, rest) = rest.split_once(':').context("no ':' after the drive number")?;
    let index = number(index)?;
    let mut fields = rest.split(':');
    let state = fields.next().unwrap_or_default().trim();
    let (full, source_slot) = match state {
        "Empty" => (false, None),
        "Full" | "Full (Unknown Storage Element Loaded)" => (true, None),
        loaded => {
            let slot = loaded
                .strip_prefix("Full (Storage Element ")
                .and_then(|s| s.strip_suffix(" Loaded)"))
                .context("the drive is neither Empty nor Full")?;
            (true, Some(number(slot)?))
        }
    };
    Ok(DriveElement { index, full, source_slot, barcode: volume_tag(fields)? })
}

/// `3:Full :VolumeTag=X`, `8:Empty`, `9 IMPORT/EXPORT:Empty`, ...
fn slot(rest: &str) -> Result<SlotElement> {
    let (name, rest) = rest.split_once(':').context("no ':' after the slot number")?;
    let (number_text, import_export) = match name.trim().strip_suffix("IMPORT/EXPORT") {
        Some(n) => (n, true),
        None => (name, false),
    };
    let mut fields = rest.split(':');
    let full = match fields.next().unwrap_or_default().trim() {
        "Full" => true,
        "Empty" => false,
        _ => bail!("the slot is neither Empty nor Full"),
    };
    Ok(SlotElement { number: number(number_text)?, import_export, full, barcode: volume_tag(fields)? })
}

/// The primary volume tag among `VolumeTag = X` / `AlternateVolumeTag=Y` fields, trimmed.
fn volume_tag<'a>(fields: impl Iterator<Item = &'a str>) -> Result<Option<String>> {
    let mut tag = None;
    for field in fields {
        let (key, value) = field.split_once('=').with_context(|| format!("{:?} is not KEY=VALUE", field.trim()))?;
        match key.trim() {
            "VolumeTag" => tag = Some(value.trim().to_string()).filter(|t| !t.is_empty()),
            "AlternateVolumeTag" => {}
            other => bail!("unknown field {other:?}"),
        }
    }
    Ok(tag)
}

fn number(text: &str) -> Result<u32> {
    text.trim().parse().map_err(|_| anyhow::anyhow!("{:?} is not an element number", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(index: u32, source_slot: Option<u32>, barcode: Option<&str>) -> DriveElement {
        DriveElement {
            index,
            full: barcode.is_some() || source_slot.is_some(),
            source_slot,
            barcode: barcode.map(String::from),
        }
    }

    fn s(number: u32, import_export: bool, barcode: Option<&str>) -> SlotElement {
        SlotElement { number, import_export, full: barcode.is_some(), barcode: barcode.map(String::from) }
    }

    #[test]
    fn a_library_of_two_drives_with_an_import_export_slot_and_a_cleaning_cartridge() {
        let st = LibraryStatus::parse(include_str!("samples/two_drives_ie_cleaning.txt")).unwrap();
        assert_eq!(st.drives, vec![d(0, Some(8), Some("042142L9")), d(1, Some(8), Some("HER002L9"))]);
        assert_eq!(st.slots.len(), 24);
        assert_eq!(st.slots[0], s(1, false, Some("HER006L9")));
        assert_eq!(st.slots[7], s(8, false, None));
        assert_eq!(st.slots[23], s(24, true, Some("HER003L9")));
        assert_eq!(st.locate("HER002L9"), Some(Location::Drive(1)));
        assert_eq!(st.locate("HER003L9"), Some(Location::Slot(24)));
        assert_eq!(st.locate("CLN003L1"), Some(Location::Slot(12)));
        assert_eq!(st.locate("NOPE"), None);
        assert_eq!(st.free_slot(), Some(8));
        assert!(is_cleaning("CLN003L1") && !is_cleaning("HER003L9"));
    }

    #[test]
    fn padded_volume_tags_are_trimmed() {
        let st = LibraryStatus::parse(include_str!("samples/one_drive_padded_tags.txt")).unwrap();
        assert_eq!(st.drives, vec![d(0, Some(24), Some("AAK787L9"))]);
        assert_eq!(st.slots[1], s(2, false, Some("CLN670L1")));
        assert_eq!(st.slots[23], s(24, false, None));
        assert_eq!(st.locate("AAK792L9"), Some(Location::Slot(21)));
        assert_eq!(st.drive(0).and_then(|d| d.barcode.as_deref()), Some("AAK787L9"));
        assert_eq!(st.drive(1), None);
    }

    #[test]
    fn mtx_sense_reports_before_the_header_are_passed_over() {
        let st = LibraryStatus::parse(include_str!("samples/autoloader_sense_before_header.txt")).unwrap();
        assert_eq!(st.drives, vec![d(0, None, None)]);
        assert!(!st.drives[0].full);
        assert_eq!(st.slots.len(), 7);
        assert_eq!(st.slots[6], s(7, false, Some("000218L5")));
        assert_eq!(st.free_slot(), None, "every slot is full");
    }

    #[test]
    fn empty_drives_and_an_empty_import_export_slot() {
        let st = LibraryStatus::parse(include_str!("samples/mhvtl_empty_drives_ie.txt")).unwrap();
        assert_eq!(st.drives, vec![d(0, None, None), d(1, None, None)]);
        assert_eq!(st.slots[8], s(9, true, None));
        assert_eq!(st.free_slot(), Some(6));
    }

    #[test]
    fn unknown_source_no_barcode_and_alternate_tags() {
        let text = "  Storage Changer /dev/sg5:3 Drives, 4 Slots ( 1 Import/Export )\n\
            Data Transfer Element 0:Full (Unknown Storage Element Loaded):VolumeTag = A00001L9      \n\
            Data Transfer Element 1:Full (Storage Element 2 Loaded)\n\
            Data Transfer Element 2:Full (Storage Element 1 Loaded):VolumeTag = A00002L9:AlternateVolumeTag = ALT1\n\
            \x20     Storage Element 1:Empty\n\
            \x20     Storage Element 2:Empty\n\
            \x20     Storage Element 3 IMPORT/EXPORT:Full :VolumeTag=A00003L9   :AlternateVolumeTag=X\n\
            \x20     Storage Element 4:Full \n";
        let st = LibraryStatus::parse(text).unwrap();
        assert_eq!(st.drives, vec![d(0, None, Some("A00001L9")), d(1, Some(2), None), d(2, Some(1), Some("A00002L9"))]);
        assert!(st.drives[0].full);
        assert_eq!(st.slots[2], s(3, true, Some("A00003L9")));
        assert_eq!(st.slots[3], SlotElement { number: 4, import_export: false, full: true, barcode: None });
        assert_eq!(st.free_slot(), Some(1));
        assert_eq!(st.locate("A00003L9"), Some(Location::Slot(3)));
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let head = "  Storage Changer /dev/sg5:1 Drives, 1 Slots ( 0 Import/Export )\n";
        for (body, want) in [
            (
                "Data Transfer Element 0:Loaded\n",
                "mtx status line 2, \"Data Transfer Element 0:Loaded\", is not in mtx's format: the drive is neither Empty nor Full",
            ),
            (
                "Storage Element x:Empty\n",
                "mtx status line 2, \"Storage Element x:Empty\", is not in mtx's format: \"x\" is not an element number",
            ),
            (
                "Storage Element 1:Full :Barcode=X\n",
                "mtx status line 2, \"Storage Element 1:Full :Barcode=X\", is not in mtx's format: unknown field \"Barcode\"",
            ),
            (
                "\nsomething else\n",
                "mtx status line 3, \"something else\", is not in mtx's format: it is neither a drive nor a slot",
            ),
        ] {
            let err = LibraryStatus::parse(&format!("{head}{body}")).unwrap_err();
            assert_eq!(format!("{err:#}"), want);
        }
        let err = LibraryStatus::parse(head).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "mtx status announced 1 drives, 1 slots (0 import/export) but listed 0, 0 (0): its output is incomplete"
        );
        let err = LibraryStatus::parse("  Storage Changer /dev/sg5:1 Drive\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "mtx status line 1, \"Storage Changer /dev/sg5:1 Drive\", is not in mtx's format: it does not say how many \
             drives and slots there are"
        );
        let err = LibraryStatus::parse("cannot open SCSI device '/dev/sg5'\n").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "mtx status printed no \"Storage Changer\" header line: is the changer device an mtx changer?"
        );
    }
}
