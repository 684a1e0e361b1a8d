//! The rig of the tape-library tests: a World whose tape.conf names a
//! simulated library (library.rs) of two drives, data cartridges
//! A00001L9.. with room for four of the 300 KiB targets it imports, and the
//! queries the tests assert with (backups, tape states, slots, images, the
//! catalogue as text). Holds `vst::serial()` for its whole life.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::MutexGuard;

use super::datatree::pseudo_random;
use super::library::{Cartridge, Library};
use super::vst;
use super::world::{World, stderr, stdout};

const KIB: u64 = 1024;
/// Four of the 300 KiB targets below fit on a tape, five do not.
pub const CAPACITY: u64 = 2600 * KIB;

/// A world with a library: catalogue, data and tape.conf in `w`.
pub struct LibRig {
    /// The simulated library.
    pub lib: Library,
    /// The working directory.
    pub w: World,
    _serial: MutexGuard<'static, ()>,
}

impl LibRig {
    /// Two drives; data cartridges A00001L9.. in slots 1..=`data` (each
    /// with room for four targets), the cleaning cartridge CLN001L1 in the
    /// next slot, then `free` empty slots.
    pub fn new(data: usize, free: usize) -> LibRig {
        let serial = vst::serial();
        assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: these tests need FUSE");
        let w = World::new();
        let mut carts: Vec<Cartridge> =
            (1..=data).map(|i| Cartridge { capacity: Some(CAPACITY), ..Cartridge::labelled(&barcode(i)) }).collect();
        carts.push(Cartridge::cleaning("CLN001L1"));
        let lib = Library::with_slots(&w.root().join("lib"), 2, &carts, data + 1 + free, 0);
        let r = LibRig { lib, w, _serial: serial };
        r.conf("");
        r
    }

    /// tape.conf for the library with this `ssh_command`.
    pub fn conf(&self, ssh: &str) {
        self.conf_with(ssh, &format!("tape_capacity = {CAPACITY}\n"));
    }

    /// tape.conf for the library with this `ssh_command` and `extra` lines
    /// under `[default]` (no tape_capacity unless given there).
    pub fn conf_with(&self, ssh: &str, extra: &str) {
        let conf = format!(
            "[default]\ndatabase_file = tape.sqlite\nssh_command = {ssh}\nblock_size = 64K\n{extra}\n{}",
            self.lib.conf_sections()
        );
        fs::write(self.w.root().join("tape.conf"), conf).unwrap();
    }

    /// `count` targets t00.. of one 300 KiB file each, imported.
    pub fn targets(&self, count: usize) -> Vec<PathBuf> {
        let targets: Vec<PathBuf> = (0..count)
            .map(|i| {
                let dir = self.w.data().join(format!("t{i:02}"));
                fs::create_dir_all(&dir).unwrap();
                fs::write(dir.join("data.bin"), pseudo_random(300 * 1024 + i)).unwrap();
                dir
            })
            .collect();
        let list = self.w.list("list", &targets);
        self.w.run(&[OsStr::new("-y"), OsStr::new("import"), list.as_os_str()], 0);
        targets
    }

    pub fn open_tapes(&self, which: std::ops::RangeInclusive<usize>) {
        for i in which {
            self.w.run(&["-y", "open_tape", &format!("T{i}"), "--serial", &barcode(i), "--offline"], 0);
        }
    }

    pub fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    /// A run that may be killed: stdout and stderr piped.
    pub fn spawn(&self, args: &[&str], fault: Option<&str>) -> Child {
        let mut c = self.w.command(args);
        if let Some(f) = fault {
            c.env("TAPEOP_FAULT", f);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// (tape, file number, status) of every backup, by tape and file.
    pub fn backups(&self) -> Vec<(String, i64, String)> {
        let conn = self.w.sql();
        let mut stmt = conn
            .prepare(
                "SELECT tp.name, b.file_number, b.status FROM backups b JOIN tapes tp ON tp.id = b.tape_id
                 ORDER BY tp.name, b.file_number",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    /// Each tape's status as `tapes` shows it (`full`: tapeop's mark on an open tape).
    pub fn tape_states(&self) -> Vec<(String, String)> {
        let out = self.w.run(&["--json", "tapes"], 0);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .or_else(|| v["tapes"].as_array())
            .unwrap()
            .iter()
            .map(|t| {
                let full = t["full"].as_bool().unwrap() && t["status"] == "open";
                let status = if full { "full" } else { t["status"].as_str().unwrap() };
                (t["name"].as_str().unwrap().to_string(), status.to_string())
            })
            .collect()
    }

    /// The storage slot holding `barcode`.
    pub fn slot_of(&self, barcode: &str) -> usize {
        (1..=self.lib.slots()).find(|&s| self.lib.in_slot(s).as_deref() == Some(barcode)).unwrap_or_else(|| {
            panic!("{barcode} is in no slot:\n{}", self.lib.status_text());
        })
    }

    /// Every cartridge image's length and hash, by file name (to compare).
    pub fn images(&self) -> Vec<(String, u64, u64)> {
        use std::hash::{Hash, Hasher};
        let mut out: Vec<(String, u64, u64)> = fs::read_dir(self.w.root().join("lib/cartridges"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let bytes = fs::read(&p).unwrap();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                (p.file_name().unwrap().to_string_lossy().into_owned(), bytes.len() as u64, h.finish())
            })
            .collect();
        out.sort();
        out
    }

    /// The catalogue's backups, history and tapes, as one comparable text.
    pub fn catalogue(&self) -> String {
        let conn = self.w.sql();
        let mut text = String::new();
        for sql in [
            "SELECT id, target_id, tape_id, file_number, status FROM backups ORDER BY id",
            "SELECT id, kind, tape, file_number, outcome FROM tapeop_history ORDER BY id",
            "SELECT id, name, serial, status, online FROM tapes ORDER BY id",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let cells = (0..n).map(|i| match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                        other => format!("{other:?}"),
                    });
                    Ok(cells.collect::<Vec<_>>().join("|"))
                })
                .unwrap();
            for row in rows {
                text += &row.unwrap();
                text.push('\n');
            }
        }
        text
    }

    /// Empty the slot file of storage slot `n`: an operator took the
    /// cartridge out of the library.
    pub fn take_out(&self, n: usize) {
        fs::write(self.lib.device().join(format!("slots/{n}")), "").unwrap();
    }
}

/// The barcode of data cartridge `i`.
pub fn barcode(i: usize) -> String {
    format!("A{i:05}L9")
}
