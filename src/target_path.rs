//! Target paths as bytes (a data host's names need not be UTF-8): the
//! normal form of an absolute directory given to `import` or `restore`, and
//! the path of a file inside a target.

use anyhow::{Context, Result, bail};

/// Normalise an absolute path: no `.`, `..`, repeated or trailing slashes.
pub fn normalise(path: &[u8]) -> Result<Vec<u8>> {
    if !path.starts_with(b"/") {
        bail!("not an absolute path: targets are absolute directories on the data host");
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop().context("'..' climbs above /")?;
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        bail!("/ itself cannot be a target");
    }
    Ok(parts.iter().flat_map(|p| [&b"/"[..], p]).flatten().copied().collect())
}

/// `target/name`, with exactly one `/` between them.
pub fn join_path(target: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = target.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_paths() {
        assert_eq!(normalise(b"/a//b/./c/").unwrap(), b"/a/b/c");
        assert_eq!(normalise(b"/a/b/../c").unwrap(), b"/a/c");
        assert!(normalise(b"a/b").is_err());
        assert!(normalise(b"/..").is_err());
        assert!(normalise(b"/").is_err());
    }
}
