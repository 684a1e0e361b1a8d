//! Proving a tar stream against the catalogue: the `Checker` that compares
//! the members of a tape file's tar stream with the catalogue's files of its
//! target (md5, symlink target, type), and lists every mismatch, missing file
//! and unexpected member. Used while archiving (the in-flight check), by
//! `confirm` and by `scan_tape`.

use std::collections::HashMap;

use anyhow::Result;

use crate::catalog::{Backup, Catalog, show};
use crate::tarstream::{self, Member, MemberKind};

#[derive(Debug, Clone)]
struct Expected {
    md5: String,
    link: Option<Vec<u8>>,
    seen: bool,
}

/// Compares tar members with what the catalogue holds for one target.
pub struct Checker {
    prefix: Vec<u8>,
    expected: HashMap<Vec<u8>, Expected>,
    /// Every difference found, one line each.
    pub problems: Vec<String>,
    /// Regular files whose md5 matched.
    pub matched: u64,
    /// Regular files whose content was deliberately not hashed (a paced
    /// in-flight check), and their bytes: left for `confirm`.
    pub unhashed: u64,
    /// Bytes of the `unhashed` files.
    pub unhashed_bytes: u64,
}

impl Checker {
    /// Load the catalogue's files of `backup`'s target.
    pub fn for_backup(cat: &Catalog, backup: &Backup) -> Result<Checker> {
        let mut expected = HashMap::new();
        cat.each_file(backup.target_id, |f| {
            expected.insert(f.name, Expected { md5: f.md5, link: f.link_target, seen: false });
            Ok(())
        })?;
        let prefix = backup.target.strip_prefix(b"/").unwrap_or(&backup.target).to_vec();
        Ok(Checker { prefix, expected, problems: Vec::new(), matched: 0, unhashed: 0, unhashed_bytes: 0 })
    }

    /// Check one member of the stream.
    pub fn check(&mut self, m: &Member) {
        let Some(rel) = tarstream::strip_prefix(&m.name, &self.prefix) else {
            self.problems.push(format!("unexpected member outside the target: {}", show(&m.name)));
            return;
        };
        if rel.is_empty() {
            return;
        }
        let Some(exp) = self.expected.get_mut(rel) else {
            if !matches!(m.kind, MemberKind::Directory | MemberKind::Other(_)) {
                self.problems.push(format!("on tape but not in the catalogue: {}", show(rel)));
            }
            return;
        };
        exp.seen = true;
        let problem = compare(exp, m);
        match problem {
            Some(p) => self.problems.push(format!("{p}: {}", show(rel))),
            None if m.unhashed => {
                self.unhashed += 1;
                self.unhashed_bytes += m.size;
            }
            None if matches!(m.kind, MemberKind::File | MemberKind::HardLink) => self.matched += 1,
            None => {}
        }
    }

    /// After the stream: every catalogued file the stream lacked is a problem.
    pub fn finish(&mut self) {
        let mut missing: Vec<&Vec<u8>> = self.expected.iter().filter(|(_, e)| !e.seen).map(|(n, _)| n).collect();
        missing.sort();
        for name in missing {
            self.problems.push(format!("in the catalogue but not on tape: {}", show(name)));
        }
    }
}

fn compare(exp: &Expected, m: &Member) -> Option<String> {
    match (exp.md5.as_str(), m.kind) {
        ("symlink", MemberKind::Symlink) => match (&exp.link, &m.link_target) {
            (Some(want), Some(got)) if want != got => {
                Some(format!("symlink points to {} instead of {}", show(got), show(want)))
            }
            _ => None,
        },
        ("directory", MemberKind::Directory) => None,
        ("symlink" | "directory", MemberKind::File | MemberKind::HardLink) if m.unhashed => {
            Some(format!("wrong type on tape (catalogue says {})", exp.md5))
        }
        (_, MemberKind::File | MemberKind::HardLink) if m.unhashed => None,
        (_, MemberKind::File | MemberKind::HardLink) => match m.md5_hex() {
            Some(got) if got == exp.md5 => None,
            Some(got) => Some(format!("md5 mismatch (catalogue {}, tape {got})", exp.md5)),
            None => Some("hard link to a member not on tape".into()),
        },
        (want, _) => Some(format!("wrong type on tape (catalogue says {want})")),
    }
}
