//! The `md5sum -c` manifest of a tape file: one line per file of a backup,
//! named as `tar -x` of its tape file creates them, escaped the way md5sum
//! escapes. `dump_manifest` writes them to files; the catalogue file at the
//! end of a closed or full tape carries them (`catalogue_file`).

use std::io::Write;

use anyhow::Result;

use crate::catalog::{Backup, Catalog};
use crate::target_path::join_path;

/// The `md5sum -c` lines of backup `b`'s files, named as `tar -x` of its
/// tape file creates them.
pub fn manifest_lines(cat: &Catalog, b: &Backup, out: &mut dyn Write) -> Result<()> {
    let prefix = b.target.strip_prefix(b"/").unwrap_or(&b.target).to_vec();
    cat.each_file(b.target_id, |f| {
        if f.md5.len() == 32 {
            out.write_all(&md5sum_line(&f.md5, &join_path(&prefix, &f.name)))?;
        }
        Ok(())
    })
}

/// One `md5sum -c` line, escaping `\` and newline the way md5sum does.
pub fn md5sum_line(md5: &str, path: &[u8]) -> Vec<u8> {
    let needs = path.iter().any(|&c| c == b'\\' || c == b'\n' || c == b'\r');
    let mut line = Vec::with_capacity(path.len() + 40);
    if needs {
        line.push(b'\\');
    }
    line.extend_from_slice(md5.as_bytes());
    line.extend_from_slice(b"  ");
    for &c in path {
        match c {
            b'\\' if needs => line.extend_from_slice(b"\\\\"),
            b'\n' if needs => line.extend_from_slice(b"\\n"),
            b'\r' if needs => line.extend_from_slice(b"\\r"),
            _ => line.push(c),
        }
    }
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5sum_escapes_backslash_and_newline_as_md5sum_does() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(md5sum_line(md5, b"a/b c"), format!("{md5}  a/b c\n").into_bytes());
        assert_eq!(md5sum_line(md5, b"a\\b\nc"), format!("\\{md5}  a\\\\b\\nc\n").into_bytes());
    }
}
