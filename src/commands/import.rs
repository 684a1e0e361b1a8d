//! `import LISTFILE`: reads the list of target directories, creates their
//! catalogue rows with parent links (so every file belongs to exactly one
//! target, whichever order parents and children arrive in), and scans each
//! target on the data host with ONE remote command that streams a
//! NUL-separated record per entry (type, bytes, KiB, link, name) followed by
//! md5 sums computed in parallel there. Each target's scan commits on its
//! own, so an interrupted import resumes where it stopped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::catalog::{Catalog, ImportTarget, Mode, is_under, show};
use crate::config::Config;
use crate::exit_codes::{Exit, ExitCode};
use crate::prompt::Prompter;
use crate::remote::{Remote, quote};
use crate::stop;
use crate::target_path::{join_path, normalise};

/// Options of `import`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Accept targets that already have a backup; carry on an interrupted import.
    pub retry: bool,
    /// Mark targets scanned without listing their files.
    pub no_scan: bool,
    /// Scan again listed targets that are scanned but not yet on tape.
    pub rescan: bool,
}

/// Run `import`.
pub fn run(config: &Config, prompter: &Prompter, list: &Path, opts: Options) -> Result<ExitCode> {
    let paths = read_list(list)?;
    // A new catalogue is created only once the question is answered.
    let existing =
        if config.database_file.exists() { Some(Catalog::open(&config.database_file, Mode::Create)?) } else { None };
    if existing.as_ref().map(Catalog::online_tape).transpose()?.flatten().is_none() {
        println!("No tape marked as active.");
    }
    println!("Reading file {}...\n", list.display());
    println!(
        "You have proposed to import {} targets from {}. They will not yet be assigned to a specific tape.\n",
        paths.len(),
        list.display()
    );
    prompter.proceed("Do you wish to proceed?")?;
    let cat = match existing {
        Some(cat) => cat,
        None => Catalog::open(&config.database_file, Mode::Create)?,
    };
    cat.writable()?;
    println!("Creating target entries...");
    create_targets(&cat, &paths, opts.retry || opts.rescan)?;
    crate::fault::point("import-after-targets");
    if opts.no_scan {
        mark_scanned_blind(&cat, &paths)?;
        return Ok(ExitCode::Success);
    }
    println!("Scanning targets on remote filesystem...");
    scan_pending(&cat, config, &paths, opts.rescan)
}

/// Read and check the list: absolute paths, normalised, no duplicates.
pub fn read_list(list: &Path) -> Result<Vec<Vec<u8>>> {
    let data = std::fs::read(list).with_context(|| format!("cannot read list file {}", list.display()))?;
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, raw) in data.split(|&c| c == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let n = i + 1;
        let path = normalise(line).with_context(|| format!("{} line {n}: {:?}", list.display(), show(line)))?;
        if let Some(first) = seen.insert(path.clone(), n) {
            bail!("{} line {n}: {} is listed twice (first on line {first}); remove one", list.display(), show(&path));
        }
        out.push(path);
    }
    if out.is_empty() {
        bail!("list file {} names no directories (one absolute path per line)", list.display());
    }
    Ok(out)
}

/// Create the new targets and fix every parent link, in one transaction.
fn create_targets(cat: &Catalog, paths: &[Vec<u8>], retry: bool) -> Result<()> {
    let existing = cat.import_targets()?;
    let by_name: HashMap<&[u8], &ImportTarget> = existing.iter().map(|t| (t.name.as_slice(), t)).collect();
    for p in paths {
        if let Some(t) = by_name.get(p.as_slice())
            && cat.has_backup(t.id)?
            && !retry
        {
            bail!("target {} is already in the catalogue with a backup; pass --retry to carry on an import", show(p));
        }
        check_not_inside_written(p, &existing)?;
    }
    let new: Vec<&[u8]> = paths.iter().map(Vec::as_slice).filter(|p| !by_name.contains_key(p)).collect();
    cat.add_import_targets(&new)
}

fn check_not_inside_written(p: &[u8], existing: &[ImportTarget]) -> Result<()> {
    for t in existing.iter().filter(|t| t.written && t.name != p) {
        if is_under(p, &t.name) && t.scanned {
            let nearer = existing.iter().any(|o| is_under(p, &o.name) && is_under(&o.name, &t.name));
            if !nearer {
                bail!(
                    "{} lies inside target {}, which is already on tape with its files: it is archived there; import refused",
                    show(p),
                    show(&t.name)
                );
            }
        }
    }
    Ok(())
}

fn mark_scanned_blind(cat: &Catalog, paths: &[Vec<u8>]) -> Result<()> {
    cat.mark_scanned_blind(paths)?;
    println!(
        "Marked {} targets scanned without listing their files (--no-scan): they cannot be confirmed.",
        paths.len()
    );
    Ok(())
}

fn scan_pending(cat: &Catalog, config: &Config, paths: &[Vec<u8>], rescan: bool) -> Result<ExitCode> {
    let remote = Remote::new(&config.ssh_command)?;
    let mut failed = Vec::new();
    let mut pending: Vec<(i64, Vec<u8>)> = Vec::new();
    for p in paths {
        let t = cat.import_target(p)?;
        if !t.scanned || (rescan && !t.written) {
            pending.push((t.id, t.name));
        } else if rescan {
            eprintln!("tapeop: {} is already on tape; not rescanned", show(p));
        }
    }
    for (id, name) in pending {
        stop::check()?;
        if let Err(e) = scan_one(cat, &remote, config, id, &name) {
            eprintln!("tapeop: scan of target {} failed: {e:#}", show(&name));
            failed.push(name);
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::Success);
    }
    Err(Exit::error(
        ExitCode::Failure,
        format!(
            "{} of the targets could not be scanned and stay unscanned; fix the cause and run import --retry",
            failed.len()
        ),
    ))
}

/// One entry of a target as the data host listed it.
pub use crate::catalog::ScanEntry as Entry;

fn scan_one(cat: &Catalog, remote: &Remote, config: &Config, id: i64, name: &[u8]) -> Result<()> {
    let children = cat.child_targets(id)?;
    println!("{} Getting files and checksums for target:", crate::catalog::now_text());
    println!("{} (excluding {} sub-targets) ...", show(name), children.len());
    let script = scan_script(name, &children, config.scan_jobs);
    let mut child = remote.spawn(&script)?;
    let entries = parse_scan(&mut child);
    let finished = child.finish();
    let entries = match (entries, finished) {
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(())) => return Err(e),
        (Ok(v), Ok(())) => v,
    };
    let (kept, skipped): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| matches!(e.kind, b'f' | b'l' | b'd'));
    for s in &skipped {
        eprintln!(
            "tapeop: skipped {} {} (not a file, link or directory)",
            kind_name(s.kind),
            show(&join_path(name, &s.name))
        );
    }
    println!(" ... adding {} files to local database.\n", kept.len());
    store(cat, id, &kept).with_context(|| format!("storing the scan of {}", show(name)))
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        b'p' => "fifo",
        b's' => "socket",
        b'b' => "block device",
        b'c' => "character device",
        _ => "special file",
    }
}

/// Escape glob characters for find's -path.
fn glob_escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &c in bytes {
        if matches!(c, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

/// The one remote command that lists and checksums a target.
pub fn scan_script(target: &[u8], children: &[Vec<u8>], jobs: Option<u32>) -> Vec<u8> {
    let fmt = "'%y\\0%s\\0%k\\0%l\\0%p\\0'";
    let mut prune = Vec::new();
    for c in children {
        let mut rel = b"./".to_vec();
        rel.extend_from_slice(&c[target.len() + 1..]);
        if !prune.is_empty() {
            prune.extend_from_slice(b" -o");
        }
        prune.extend_from_slice(b" -path ");
        prune.extend_from_slice(&quote(&glob_escape(&rel)));
    }
    let prune = if prune.is_empty() { Vec::new() } else { [b"\\(".as_slice(), &prune, b" \\) -prune -o"].concat() };
    let jobs = jobs.map_or("$(nproc 2>/dev/null || echo 1)".to_string(), |j| j.max(1).to_string());
    let mut s = Vec::new();
    let q = quote(target);
    s.extend_from_slice(b"export LC_ALL=C\nif [ ! -d ");
    s.extend_from_slice(&q);
    s.extend_from_slice(b" ]; then if [ -e ");
    s.extend_from_slice(&q);
    s.extend_from_slice(b" ]; then printf '%s: not a directory (an import list names directories)\\n' ");
    s.extend_from_slice(&q);
    s.extend_from_slice(b" >&2; else printf '%s: No such file or directory\\n' ");
    s.extend_from_slice(&q);
    s.extend_from_slice(b" >&2; fi; exit 2; fi\ncd -- ");
    s.extend_from_slice(&q);
    s.extend_from_slice(b" || exit 2\ntmp=$(mktemp -d) || exit 2\ntrap 'rm -rf -- \"$tmp\"' EXIT\nfind . ");
    s.extend_from_slice(&prune);
    s.extend_from_slice(
        format!(
        " ! -type d -printf {fmt} -type f -fprint0 \"$tmp/list\" -o -type d -empty ! -path . -printf {fmt} || exit 3
printf 'E\\0'
[ -s \"$tmp/list\" ] || exit 0
split -n r/{jobs} -t '\\0' \"$tmp/list\" \"$tmp/part.\" || exit 4
for p in \"$tmp\"/part.*; do
  [ -s \"$p\" ] || continue
  ( xargs -0r md5sum -z -- < \"$p\" > \"$p.md5\" || : > \"$p.err\" ) &
done
wait
for e in \"$tmp\"/part.*.err; do [ -e \"$e\" ] && exit 5; done
cat \"$tmp\"/part.*.md5
")
        .as_bytes(),
    );
    s
}

/// Parse the scan stream: listing records, `E`, then md5sum -z lines.
pub fn parse_scan(reader: &mut dyn Read) -> Result<Vec<Entry>> {
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let mut entries = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    loop {
        let kind = field(&mut r)?.context("scan output ended before its end marker")?;
        if kind == b"E" {
            break;
        }
        let size = number(&field_req(&mut r)?)?;
        let kb = number(&field_req(&mut r)?)? as i64;
        let link = field_req(&mut r)?;
        let name = strip_dot(field_req(&mut r)?);
        let k = *kind.first().context("empty type in scan output")?;
        let md5 = match k {
            b'l' => "symlink".to_string(),
            b'd' => "directory".to_string(),
            _ => String::new(),
        };
        let kb = if k == b'f' { kb } else { 0 };
        index.insert(name.clone(), entries.len());
        entries.push(Entry { kind: k, size: if k == b'f' { size } else { 0 }, kb, link, name, md5 });
    }
    while let Some(line) = field(&mut r)? {
        let (md5, name) = split_md5_line(&line)?;
        let i = *index.get(&name).with_context(|| format!("md5 for {} which the listing lacks", show(&name)))?;
        entries[i].md5 = md5;
    }
    if let Some(e) = entries.iter().find(|e| e.kind == b'f' && e.md5.is_empty()) {
        bail!("no md5 for {} (did it vanish during the scan?)", show(&e.name));
    }
    Ok(entries)
}

fn field(r: &mut impl BufRead) -> Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = r.read_until(0, &mut buf).context("reading the scan stream")?;
    if n == 0 {
        return Ok(None);
    }
    if buf.pop() != Some(0) {
        bail!("scan output was cut short (connection dropped?)");
    }
    Ok(Some(buf))
}

fn field_req(r: &mut impl BufRead) -> Result<Vec<u8>> {
    field(r)?.context("scan output was cut short in the middle of a record")
}

fn number(b: &[u8]) -> Result<u64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad number {:?} in scan output", show(b)))
}

fn strip_dot(mut name: Vec<u8>) -> Vec<u8> {
    if name.starts_with(b"./") {
        name.drain(..2);
    }
    name
}

fn split_md5_line(line: &[u8]) -> Result<(String, Vec<u8>)> {
    if line.len() < 35 || &line[32..34] != b"  " {
        bail!("bad md5sum line {:?}", show(line));
    }
    let md5 = std::str::from_utf8(&line[..32])?.to_string();
    Ok((md5, strip_dot(line[34..].to_vec())))
}

/// Replace a target's file rows with a scan, and mark it scanned.
pub fn store(cat: &Catalog, target_id: i64, entries: &[Entry]) -> Result<()> {
    cat.store_scan(target_id, entries)?;
    crate::fault::point("import-after-scan");
    println!("Adding files to target {}", show(&cat.target(target_id)?.name));
    Ok(())
}

/// Scan target `id` (named `name`) again and replace its file rows, as
/// `import --rescan` does (for `requeue --rescan`).
pub fn rescan_target(cat: &Catalog, config: &Config, id: i64, name: &[u8]) -> Result<()> {
    let remote = Remote::new(&config.ssh_command)?;
    scan_one(cat, &remote, config, id, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scan_stream() {
        let mut s = Vec::new();
        s.extend_from_slice(
            b"f\x003\x004\x00\x00./a b\x00l\x000\x000\x00x\x00./ln\x00d\x004096\x004\x00\x00./e\x00E\x00",
        );
        s.extend_from_slice(b"0123456789abcdef0123456789abcdef  ./a b\x00");
        let e = parse_scan(&mut s.as_slice()).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].md5, "0123456789abcdef0123456789abcdef");
        assert_eq!((e[0].size, e[0].kb), (3, 4));
        assert_eq!(e[1].md5, "symlink");
        assert_eq!(e[1].link, b"x");
        assert_eq!(e[2].md5, "directory");
    }

    #[test]
    fn truncated_scan_is_an_error() {
        let s = b"f\x003\x004\x00\x00./a".to_vec();
        assert!(parse_scan(&mut s.as_slice()).is_err());
    }
}
