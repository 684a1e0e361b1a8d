//! A small rig for end-to-end tests on the virtual st drive: a World (temp
//! working directory with `data/`), the FUSE drive of vst.rs holding
//! `tapes/A.tap`, optionally a private sshd as the data host, and the
//! `vst::serial()` guard for the whole test (`use support::vst_rig;`).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use super::sshd::Sshd;
use super::vst::{self, VirtualDrive, VstOptions};
use super::world::{World, stderr, stdout};

/// The drive, the data host and the working directory; fields drop in
/// order (drive unmounted, sshd stopped, directory removed, guard released).
pub struct Rig {
    /// The virtual drive.
    pub drive: VirtualDrive,
    /// The data host, when the data is read over ssh.
    pub sshd: Option<Sshd>,
    /// The working directory.
    pub w: World,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    /// A rig with a blank `tapes/A.tap` loaded; `ssh` starts a private sshd.
    pub fn new(ssh: bool) -> Rig {
        Rig::with_options(ssh, |_| VstOptions::default())
    }

    /// Like [`Rig::new`], with the drive's options made from the world's
    /// root (e.g. a `sysfs` directory inside it).
    pub fn with_options(ssh: bool, opts: impl FnOnce(&Path) -> VstOptions) -> Rig {
        let serial = vst::serial();
        assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: these tests need FUSE");
        let sshd = ssh.then(Sshd::start);
        let w = World::new();
        fs::create_dir_all(w.root().join("tapes")).unwrap();
        let opts = opts(w.root());
        let drive = VirtualDrive::mount(&w.root().join("tapes/A.tap"), opts).expect("mounting");
        let rig = Rig { drive, sshd, w, _serial: serial };
        rig.conf("");
        rig
    }

    /// tape.conf: the drive's nst0, the data host, and `extra` lines.
    pub fn conf(&self, extra: &str) {
        let ssh = self.sshd.as_ref().map(Sshd::ssh_command).unwrap_or_default();
        self.conf_ssh(&ssh, extra);
    }

    /// tape.conf with this `ssh_command`.
    pub fn conf_ssh(&self, ssh: &str, extra: &str) {
        let text = format!(
            "[default]\ndatabase_file = tape.sqlite\ntape_device = {}\nssh_command = {ssh}\n{extra}\n",
            self.drive.device_path().display()
        );
        fs::write(self.w.root().join("tape.conf"), text).unwrap();
    }

    /// `root/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.w.root().join(name)
    }

    /// `tapeop ARGS`, which must exit `code`; stdout and stderr joined.
    pub fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.w.run(args, code);
        stdout(&out) + &stderr(&out)
    }

    /// A target `data/NAME` with two files, `sub/data.bin` of `size` bytes.
    pub fn target(&self, name: &str, size: usize) -> PathBuf {
        let dir = self.w.data().join(name);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("readme.txt"), format!("target {name}\n")).unwrap();
        let body: Vec<u8> = (0..size).map(|i| (i * 7 + name.len()) as u8).collect();
        fs::write(dir.join("sub/data.bin"), body).unwrap();
        dir
    }

    /// Import `targets` (list `list.txt`), open tape T1 online, assign.
    pub fn prepare(&self, targets: &[PathBuf]) {
        let list = self.w.list("list.txt", targets);
        self.run(&["-y", "import", list.to_str().unwrap()], 0);
        self.run(&["open_tape", "T1", "--serial", "S1", "--online", "-y"], 0);
        self.run(&["-y", "assign"], 0);
    }

    /// The bytes of a tape image.
    pub fn image(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(&format!("tapes/{name}"))).unwrap()
    }

    /// Record data of each tape file of the tape in the drive.
    pub fn files(&self) -> Vec<Vec<Vec<u8>>> {
        self.drive.files().expect("reading the image")
    }

    /// Swap in the cartridge `tapes/NAME` (blank if new).
    pub fn load(&self, name: &str) {
        self.drive.change_tape(&self.path(&format!("tapes/{name}")), &VstOptions::default()).expect("changing tape");
    }

    /// One integer from SQL on the catalogue.
    pub fn count(&self, sql: &str) -> i64 {
        self.w.count(sql)
    }

    /// `--json check`: exit code and document.
    pub fn check(&self) -> (i32, serde_json::Value) {
        let out = self.w.output(&["--json", "check"]);
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 1, "check exited {code}: {}", stderr(&out));
        (code, serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out))))
    }
}

/// How many findings `check` reported under `key`.
pub fn found(doc: &serde_json::Value, key: &str) -> i64 {
    doc["conditions"][key]["count"].as_i64().unwrap_or_else(|| panic!("no condition {key}: {doc}"))
}

/// Panic unless `text` contains `part`.
pub fn assert_has(text: &str, part: &str) {
    assert!(text.contains(part), "expected {part:?} in:\n{text}");
}
