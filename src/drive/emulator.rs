//! The old tool's tape emulator: a directory where tape file N is the file
//! `fileNNNNN.tar`. It behaves like a tape: writing file N discards every
//! file after N, and an optional capacity makes it run out of space like a
//! drive at early warning, so tape-full can be rehearsed without a drive.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Access, Drive, DriveError, DriveStatus};

/// An emulated tape in a directory.
pub struct Emulator {
    dir: PathBuf,
    access: Access,
    capacity: Option<u64>,
    block_size: usize,
    current: u64,
    reader: Option<File>,
    writer: Option<File>,
    used: u64,
}

/// The file that holds tape file `n` in `dir`.
pub fn file_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("file{n:05}.tar"))
}

impl Emulator {
    /// Open the emulator directory (it must exist).
    pub fn open(dir: &Path, access: Access, capacity: Option<u64>, block_size: usize) -> Result<Emulator> {
        if !dir.is_dir() {
            bail!(
                "emulator_dir {} is not a directory: create it (mkdir -p) or fix emulator_dir in tape.conf",
                dir.display()
            );
        }
        Ok(Emulator {
            dir: dir.to_path_buf(),
            access,
            capacity,
            block_size,
            current: 0,
            reader: None,
            writer: None,
            used: 0,
        })
    }

    fn files(&self) -> u64 {
        let mut n = 0;
        while file_path(&self.dir, n).exists() {
            n += 1;
        }
        n
    }

    fn bytes_before(&self, n: u64) -> Result<u64> {
        let mut total = 0;
        for i in 0..n {
            total += fs::metadata(file_path(&self.dir, i))?.len();
        }
        Ok(total)
    }
}

impl Drive for Emulator {
    fn name(&self) -> String {
        format!("emulated tape {}", self.dir.display())
    }

    fn status(&mut self) -> Result<DriveStatus> {
        let files = self.files();
        Ok(DriveStatus {
            loaded: true,
            write_protected: false,
            file_number: Some(self.current),
            block_number: None,
            block_size: None,
            bot: self.current == 0,
            eof: false,
            eod: self.current >= files,
            eot: false,
            cleaning_requested: false,
        })
    }

    fn seek_file(&mut self, n: u64) -> Result<()> {
        self.writer = None;
        let path = file_path(&self.dir, n);
        let file = File::open(&path).with_context(|| {
            format!(
                "cannot position {} at file {n}: {} does not exist (end of data is file {})",
                self.name(),
                path.display(),
                self.files()
            )
        })?;
        self.reader = Some(file);
        self.current = n;
        Ok(())
    }

    fn begin_write(&mut self, n: u64) -> Result<()> {
        if self.access != Access::Write {
            bail!("{} was opened read-only", self.name());
        }
        let files = self.files();
        if n > files {
            bail!("cannot write file {n} of {}: the tape holds only {files} files (end of data)", self.name());
        }
        for i in (n + 1..files).rev() {
            fs::remove_file(file_path(&self.dir, i))?;
        }
        self.used = self.bytes_before(n)?;
        let path = file_path(&self.dir, n);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.reader = None;
        self.writer = Some(file);
        self.current = n;
        Ok(())
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        if self.capacity.is_some_and(|cap| self.used >= cap) {
            return Err(DriveError::EndOfMedium.into());
        }
        let n = self.current;
        if crate::fault::fires("drive-eio") {
            bail!("writing tape file {n} of {}: Input/output error (os error 5) (injected)", self.dir.display());
        }
        let w = self.writer.as_mut().context("write without begin_write")?;
        w.write_all(data).with_context(|| format!("writing tape file {n} of emulated tape"))?;
        self.used += data.len() as u64;
        Ok(())
    }

    fn write_filemark(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.sync_all().context("flushing the emulated tape file")?;
            self.current += 1;
        }
        Ok(())
    }

    fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        if crate::fault::fires("drive-read-eio") {
            bail!(
                "reading tape file {} of {}: Input/output error (os error 5) (injected)",
                self.current,
                self.dir.display()
            );
        }
        let Some(r) = self.reader.as_mut() else { return Ok(0) };
        buf.resize(self.block_size.max(64 * 1024), 0);
        let mut filled = 0;
        while filled < buf.len() {
            let k = r.read(&mut buf[filled..]).with_context(|| format!("reading tape file {}", self.current))?;
            if k == 0 {
                break;
            }
            filled += k;
        }
        if filled == 0 {
            self.reader = None;
            self.current += 1;
        }
        Ok(filled)
    }

    fn count_files(&mut self) -> Result<u64> {
        Ok(self.files())
    }
}
