//! The operator reports: `status`, `tapes`, `unassigned`, `tape_detail`,
//! `where_is`, `backup_info` and `dump_manifest`. This module owns their
//! layout (the old tool's columns and figures, GB = size_kb / 1e6) and
//! streams rows from the catalogue straight to the output, so reports stay
//! instant on catalogues of tens of millions of files.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::params;

use crate::catalog::{Backup, Catalog, Tape, name_bytes, name_value, show};

fn no_json_yet(json: bool) -> Result<()> {
    if json {
        anyhow::bail!("--json is not available for this report yet");
    }
    Ok(())
}

/// `log`: the history of archive, confirm and restore attempts.
pub fn log(cat: &Catalog, tape: Option<&str>, limit: u32, json: bool, out: &mut dyn Write) -> Result<()> {
    no_json_yet(json)?;
    let _ = (cat, tape, limit, out);
    anyhow::bail!("log is not available yet")
}

fn gb(size_kb: i64) -> f64 {
    size_kb as f64 / 1e6
}

/// `status [TAPE]`: per-status counts and sizes, unassigned count, layout.
pub fn status(cat: &Catalog, tape: &Tape, json: bool, out: &mut dyn Write) -> Result<()> {
    no_json_yet(json)?;
    writeln!(out, "\nWork on \"{}\"", tape.name)?;
    let mut total = 0;
    for status in ["confirmed", "recorded", "assigned"] {
        let t = cat.tape_tally(tape.id, status)?;
        total += t.size_kb;
        writeln!(out, "   type {status:<20}: {:6} ({:9.3} GB)", t.count, gb(t.size_kb))?;
    }
    writeln!(out, "   total usage: {:.3} GB", gb(total))?;
    let un = cat.unassigned_tally()?;
    writeln!(out, "\nThere are {} unassigned targets.\n", un.count)?;
    writeln!(out, "Current layout of work on tape \"{}\":", tape.name)?;
    let mut err = Ok(());
    cat.layout(tape.id, |a, b, s| {
        if err.is_ok() {
            err = writeln!(out, "{a:8} - {b:5} : {s}");
        }
    })?;
    err?;
    writeln!(out)?;
    Ok(())
}

/// `tapes [-v]`: one row per tape.
pub fn tapes(cat: &Catalog, verbose: bool, json: bool, out: &mut dyn Write) -> Result<()> {
    no_json_yet(json)?;
    let un = cat.unassigned_tally()?;
    writeln!(out, "\nThere are {} unassigned targets.  (Use \"unassigned\" to see size.)\n", un.count)?;
    writeln!(out, "All tapes in database:")?;
    let tapes = cat.tapes()?;
    let nw = tapes.iter().map(|t| t.name.len()).max().unwrap_or(0).max(4);
    let sw = tapes.iter().map(|t| t.serial.len() + 1).max().unwrap_or(0).max(12);
    let mut header = format!("{:<nw$} {:<4} {:<sw$} {:>4} {:<10}", "Name", "ON", "SerialNo", "ID", "Status");
    if verbose {
        header.push_str(&format!(" {:>10}", "WroteGB"));
    }
    writeln!(out, "{header}\n{}", "-".repeat(header.len()))?;
    for t in &tapes {
        let on = if t.online { "*" } else { "." };
        let status = display_status(cat, t)?;
        write!(out, "{:<nw$} {on:<4} {:<sw$} {:>4} {status:<10}", t.name, t.serial, t.id)?;
        if verbose {
            write!(out, " {:10.3}", gb(cat.tape_written_kb(t.id)?))?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    Ok(())
}

/// A tape's status as shown: `full` is tapeop's mark on an open tape.
pub fn display_status(cat: &Catalog, tape: &Tape) -> Result<String> {
    if tape.status == "open" && cat.has_totals()? {
        let full: Option<i64> = cat
            .conn()
            .query_row("SELECT full FROM tapeop_tape_info WHERE tape_id = ?1", [tape.id], |r| r.get(0))
            .ok();
        if full == Some(1) {
            return Ok("full".into());
        }
    }
    Ok(tape.status.clone())
}

/// `unassigned`: count and size of the targets waiting for a tape.
pub fn unassigned(cat: &Catalog, json: bool, out: &mut dyn Write) -> Result<()> {
    no_json_yet(json)?;
    let un = cat.unassigned_tally()?;
    writeln!(out, "There are {} unassigned targets ({:.3} GB).\n", un.count, gb(un.size_kb))?;
    Ok(())
}

/// `tape_detail [TAPE] [FILE_NUMBER] [-v]`: the written backups of a tape,
/// with one line per file when verbose.
pub fn tape_detail(
    cat: &Catalog,
    tape: &Tape,
    file_number: Option<i64>,
    verbose: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    no_json_yet(json)?;
    writeln!(out, "# Tape name=\"{}\" serial=\"{}\"", tape.name, tape.serial)?;
    writeln!(out, "#FNum {:<12} {:>10} Target_name", "Status", "Size_GB")?;
    for b in cat.written_backups(tape.id, file_number)? {
        writeln!(out, "{:5} {:<12} {:10.3} {}", b.file_number, b.status, gb(b.size_kb), show(&b.target))?;
        if verbose {
            cat.each_file(b.target_id, |f| {
                writeln!(out, "file {} {:10.6} {}", f.md5, gb(f.size_kb), show(&f.name))?;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// `where_is NAME`: every backup that holds a file of that relative name.
pub fn where_is(cat: &Catalog, name: &[u8], json: bool, out: &mut dyn Write) -> Result<()> {
    no_json_yet(json)?;
    writeln!(out, "#tape_name  Fnum status     md5sum                           filename")?;
    let mut stmt = cat.conn().prepare(
        "SELECT tp.name, b.file_number, b.status, f.md5sum, t.name, f.name
         FROM files f JOIN targets t ON t.id = f.target_id
         JOIN backups b ON b.target_id = f.target_id JOIN tapes tp ON tp.id = b.tape_id
         WHERE f.name = ?1 ORDER BY b.id",
    )?;
    let mut rows = stmt.query(params![name_value(name)])?;
    while let Some(r) = rows.next()? {
        let tape: String = r.get(0)?;
        let fnum: i64 = r.get::<_, Option<i64>>(1)?.unwrap_or(-1);
        let status: String = r.get::<_, Option<String>>(2)?.unwrap_or_default();
        let md5: String = r.get::<_, Option<String>>(3)?.unwrap_or_default();
        let path = join_path(&name_bytes(r.get_ref(4)?), &name_bytes(r.get_ref(5)?));
        writeln!(out, "{tape} {fnum:5} {status:<10} {md5} {}", show(&path))?;
    }
    Ok(())
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

/// `backup_info [FILE_NUMBER]`: what the catalogue knows of one tape file
/// of the online tape (or of every backup of it).
pub fn backup_info(cat: &Catalog, tape: &Tape, backups: &[Backup], json: bool, out: &mut dyn Write) -> Result<()> {
    no_json_yet(json)?;
    writeln!(out, "Tape \"{}\" (serial \"{}\", id {}, {})", tape.name, tape.serial, tape.id, display_status(cat, tape)?)?;
    for b in backups {
        let target = cat.target(b.target_id)?;
        writeln!(out, "\nFile number:   {}", b.file_number)?;
        writeln!(out, "Target:        {}", show(&target.name))?;
        writeln!(out, "Status:        {}", b.status)?;
        writeln!(out, "Files:         {}", b.file_count)?;
        writeln!(out, "Size:          {:.3} GB ({} KiB by du)", gb(b.size_kb), b.size_kb)?;
        if let Some(bytes) = exact_bytes(cat, b.target_id)? {
            writeln!(out, "Bytes:         {bytes}")?;
        }
        let parent = match target.parent_id {
            Some(p) => show(&cat.target(p)?.name),
            None => "(none)".into(),
        };
        writeln!(out, "Parent:        {parent}")?;
        for child in cat.child_targets(b.target_id)? {
            writeln!(out, "Child target:  {}", show(&child))?;
        }
        write_backup_extra(cat, b.id, out)?;
    }
    Ok(())
}

fn exact_bytes(cat: &Catalog, target_id: i64) -> Result<Option<i64>> {
    if !cat.has_totals()? {
        return Ok(None);
    }
    Ok(cat.conn().query_row(
        "SELECT SUM(i.size_bytes) FROM files f JOIN tapeop_file_info i ON i.file_id = f.id WHERE f.target_id = ?1",
        [target_id],
        |r| r.get(0),
    )?)
}

fn write_backup_extra(cat: &Catalog, backup_id: i64, out: &mut dyn Write) -> Result<()> {
    if !cat.has_totals()? {
        return Ok(());
    }
    let row = cat.conn().query_row(
        "SELECT bytes, block_size, written_at, confirmed_at FROM tapeop_backup_info WHERE backup_id = ?1",
        [backup_id],
        |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?)),
    );
    if let Ok((bytes, block, written, confirmed)) = row {
        if let Some(b) = bytes {
            writeln!(out, "Tape bytes:    {b} (block size {})", block.unwrap_or(0))?;
        }
        if let Some(w) = written {
            writeln!(out, "Written:       {w}")?;
        }
        if let Some(c) = confirmed {
            writeln!(out, "Confirmed:     {c}")?;
        }
    }
    Ok(())
}

/// `dump_manifest [DIR]`: one `md5sum -c` manifest per written tape file,
/// named `TAPE-fileNNNNN.md5`, plus `INDEX.txt`. Returns how many manifests.
pub fn dump_manifest(cat: &Catalog, dir: &Path) -> Result<usize> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create manifest directory {}", dir.display()))?;
    let index_path = dir.join("INDEX.txt");
    let mut index = std::io::BufWriter::new(
        fs::File::create(&index_path).with_context(|| format!("cannot write {}", index_path.display()))?,
    );
    writeln!(index, "#tape file_number status manifest target")?;
    let mut count = 0;
    for tape in cat.tapes()? {
        for b in cat.written_backups(tape.id, None)? {
            let file_name = format!("{}-file{:05}.md5", tape.name, b.file_number);
            write_manifest(cat, &b, &dir.join(&file_name))?;
            writeln!(index, "{} {} {} {} {}", tape.name, b.file_number, b.status, file_name, show(&b.target))?;
            count += 1;
        }
    }
    index.flush()?;
    Ok(count)
}

fn write_manifest(cat: &Catalog, b: &Backup, path: &Path) -> Result<()> {
    let mut out = std::io::BufWriter::new(
        fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    let prefix = b.target.strip_prefix(b"/").unwrap_or(&b.target).to_vec();
    cat.each_file(b.target_id, |f| {
        if f.md5.len() == 32 {
            out.write_all(&md5sum_line(&f.md5, &join_path(&prefix, &f.name)))?;
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(())
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
