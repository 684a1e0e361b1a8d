//! A simulated tape library for tests: virtual st drives (vst.rs, mounted
//! empty) and storage slots holding SIMH cartridge images, moved by the
//! stand-in changer `tests/support/mtx-sim`, which speaks mtx's command line
//! and output. [`Library`] owns the drives and the changer's state
//! directory (its "device"; the layout is documented at the top of mtx-sim),
//! runs mtx-sim, reads the state back, writes the tape.conf sections for
//! tapeop, and drives mtx-sim's fault injection (`fail-next`, `hold-load`).
//!
//! Cleaning cartridges carry barcodes starting `CLN` (mtx-sim recognises
//! them by that): loaded into a drive, they clean (clearing its cleaning
//! request) and leave the drive ejected at once (it never comes ready;
//! `unload` takes them back).
//!
//! A test using a library holds `vst::serial()` itself (the library does not
//! take it, so a test can hold it across other rigs too).
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::vst::{VirtualDrive, VstOptions};

/// One cartridge for a storage slot.
#[derive(Debug, Clone, Default)]
pub struct Cartridge {
    /// Its barcode (volume tag), if it has a label.
    pub barcode: Option<String>,
    /// Early-warning capacity in bytes; `None` never fills.
    pub capacity: Option<u64>,
    /// A cleaning cartridge (its barcode must start `CLN`).
    pub cleaning: bool,
}

impl Cartridge {
    /// A data cartridge with this barcode and no capacity limit.
    pub fn labelled(barcode: &str) -> Cartridge {
        Cartridge { barcode: Some(barcode.to_string()), capacity: None, cleaning: false }
    }

    /// A cleaning cartridge with this barcode (starting `CLN`).
    pub fn cleaning(barcode: &str) -> Cartridge {
        Cartridge { barcode: Some(barcode.to_string()), capacity: None, cleaning: true }
    }
}

/// The drives, the slots and the changer's state directory.
pub struct Library {
    drives: Vec<VirtualDrive>,
    state: PathBuf,
    cartridges: PathBuf,
    slots: usize,
}

impl Library {
    /// `drives` empty virtual drives (mounted under `dir/mnt/driveN`), the
    /// `cartridges` in storage slots 1.. in order, `ie` empty import/export
    /// slots after them; blank images under `dir/cartridges/<barcode or
    /// slotN>.tap`; the state directory is `dir/library`.
    pub fn new(dir: &Path, drives: usize, cartridges: &[Cartridge], ie: usize) -> Library {
        Self::with_slots(dir, drives, cartridges, cartridges.len(), ie)
    }

    /// As [`Library::new`] with `slots` storage slots (at least as many as
    /// cartridges; the rest empty).
    pub fn with_slots(dir: &Path, drives: usize, cartridges: &[Cartridge], slots: usize, ie: usize) -> Library {
        Self::new_with(dir, drives, cartridges, slots, ie, VstOptions::default())
    }

    /// As [`Library::with_slots`] with every drive mounted with `opts` (its
    /// transfer limits and speed, e.g. `write_rate` for a benchmark; the
    /// cartridge fields of `opts` do not apply to an empty drive).
    pub fn new_with(
        dir: &Path,
        drives: usize,
        cartridges: &[Cartridge],
        slots: usize,
        ie: usize,
        opts: VstOptions,
    ) -> Library {
        assert!(slots >= cartridges.len(), "{slots} slots cannot hold {} cartridges", cartridges.len());
        let state = dir.join("library");
        let images = dir.join("cartridges");
        for sub in [state.join("drives"), state.join("slots"), images.clone()] {
            fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("creating {}: {e}", sub.display()));
        }
        let layout = format!("drives={drives}\nslots={slots}\nie={ie}\n");
        fs::write(state.join("layout"), layout).unwrap();
        let mut mounted = Vec::new();
        for i in 0..drives {
            let mnt = dir.join("mnt").join(format!("drive{i}"));
            fs::create_dir_all(&mnt).unwrap();
            // Each drive keeps its own st statistics (st0, st1, ...) when asked.
            let opts = VstOptions { st_number: i as u32, ..opts.clone() };
            let drive = VirtualDrive::mount_empty_at(&mnt, opts)
                .unwrap_or_else(|e| panic!("mounting library drive {i}: {e:#}"));
            fs::write(
                state.join("drives").join(i.to_string()),
                format!("control={}\n", drive.control_path().display()),
            )
            .unwrap();
            mounted.push(drive);
        }
        for n in 1..=slots + ie {
            let line = cartridges.get(n - 1).filter(|_| n <= slots).map(|c| slot_line(&images, n, c));
            fs::write(state.join("slots").join(n.to_string()), line.unwrap_or_default()).unwrap();
        }
        Library { drives: mounted, state, cartridges: images, slots }
    }

    /// The state directory, for `[changer] device =`.
    pub fn device(&self) -> PathBuf {
        self.state.clone()
    }

    /// Absolute path of tests/support/mtx-sim.
    pub fn command() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mtx-sim")
    }

    /// How many drives the library has.
    #[allow(dead_code)]
    pub fn drive_count(&self) -> usize {
        self.drives.len()
    }

    /// Drive `i` (mtx's Data Transfer Element `i`).
    pub fn drive(&self, i: usize) -> &VirtualDrive {
        &self.drives[i]
    }

    /// The image of the cartridge with this barcode (or `slotN` for one
    /// without a barcode).
    pub fn image(&self, barcode: &str) -> PathBuf {
        self.cartridges.join(format!("{barcode}.tap"))
    }

    /// Run `mtx-sim -f DEVICE args...`.
    pub fn mtx(&self, args: &[&str]) -> Output {
        Command::new(Self::command())
            .arg("-f")
            .arg(&self.state)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", Self::command().display()))
    }

    /// `mtx status` output; panics unless it succeeds.
    pub fn status_text(&self) -> String {
        let out = self.mtx(&["status"]);
        assert!(out.status.success(), "mtx-sim status failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The barcode of the cartridge in drive `i` by the changer's state (the
    /// image's stem, `slotN`, for one without a barcode).
    pub fn in_drive(&self, i: usize) -> Option<String> {
        let text = fs::read_to_string(self.state.join("drives").join(i.to_string())).unwrap();
        let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::to_string);
        let image = field("image=")?;
        Some(field("barcode=").filter(|b| b != "-").unwrap_or_else(|| stem(&image)))
    }

    /// The barcode of the cartridge in storage slot `slot` (1-based; the
    /// import/export slots follow the storage slots), by the state.
    pub fn in_slot(&self, slot: usize) -> Option<String> {
        let text = fs::read_to_string(self.state.join("slots").join(slot.to_string())).unwrap();
        let mut words = text.split_whitespace();
        let image = words.next()?;
        Some(words.next().filter(|b| *b != "-").map_or_else(|| stem(image), str::to_string))
    }

    /// tape.conf sections: `[changer]` (device, command) and one
    /// `[drive.X]` per drive (A, B, C...; device, changer_index).
    pub fn conf_sections(&self) -> String {
        let mut text =
            format!("[changer]\ndevice = {}\ncommand = {}\n", self.state.display(), Self::command().display());
        for (i, drive) in self.drives.iter().enumerate() {
            let name = char::from(b'A' + i as u8);
            text += &format!("[drive.{name}]\ndevice = {}\nchanger_index = {i}\n", drive.device_path().display());
        }
        text
    }

    /// Storage slots (without the import/export slots).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The lines mtx-sim logged, one per invocation (`ARGS -> ok|failed`).
    pub fn log(&self) -> Vec<String> {
        let text = fs::read_to_string(self.state.join("log")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// Fault injection: the next `command` (load, unload, transfer, status)
    /// that reaches the robot fails as mtx reports a failed move, with the
    /// state unchanged.
    pub fn fail_next(&self, command: &str) {
        fs::write(self.state.join("fail-next"), format!("{command}\n")).unwrap();
    }

    /// Fault injection: the next load holds after switching the medium and
    /// before recording the move, until the writer from
    /// [`Library::wait_load_held`] is dropped.
    pub fn hold_next_load(&self) {
        let fifo = self.state.join("hold-load");
        let done = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(done.success(), "mkfifo {} failed", fifo.display());
    }

    /// Block until a load is held (see [`Library::hold_next_load`]); drop
    /// the returned file to let it finish. Blocks for ever if no load
    /// reaches the hold (one refused before moving anything does not).
    pub fn wait_load_held(&self) -> File {
        let fifo = self.state.join("hold-load");
        OpenOptions::new().write(true).open(&fifo).unwrap_or_else(|e| panic!("opening {}: {e}", fifo.display()))
    }

    /// Block until no mtx-sim invocation is running (takes its lock).
    pub fn wait_idle(&self) {
        let lock = self.state.join("lock");
        let done = Command::new("flock").arg(&lock).arg("true").status().unwrap();
        assert!(done.success(), "flock {} failed", lock.display());
    }
}

/// The slot file line for cartridge `c` in slot `n`; creates its blank image.
fn slot_line(images: &Path, n: usize, c: &Cartridge) -> String {
    let name = c.barcode.clone().unwrap_or_else(|| format!("slot{n}"));
    let cln = name.starts_with("CLN") && c.barcode.is_some();
    assert_eq!(c.cleaning, cln, "cartridge {name}: cleaning cartridges, and only they, have barcodes starting CLN");
    let image = images.join(format!("{name}.tap"));
    File::create(&image).unwrap_or_else(|e| panic!("creating {}: {e}", image.display()));
    let capacity = c.capacity.map_or("-".to_string(), |b| b.to_string());
    format!("{} {} {capacity}\n", image.display(), c.barcode.as_deref().unwrap_or("-"))
}

fn stem(image: &str) -> String {
    Path::new(image).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
