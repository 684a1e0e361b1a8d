//! Reading a tar stream as it comes off a tape: this module owns parsing one GNU/PAX tar stream
//! (via the `tar` crate) into [`Member`]s, md5-ing every regular member's content while it
//! streams past (never buffering a whole member), resolving hard links to the md5 of the member
//! they point at, insisting on a proper end-of-archive marker followed only by zero padding, and
//! reading the input to its end so a writer feeding it through a pipe never sees EPIPE. It also
//! owns the member-name rules a restore needs ([`classify_name`], [`link_escapes`],
//! [`strip_prefix`]) and [`ChannelReader`], which lets an archiver tee the blocks it writes to
//! tape into this parser on another thread. Errors carry the member and stream byte offset at
//! which the stream broke; no input makes this module panic.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;

use anyhow::{Context, Result, bail};
use md5::{Digest, Md5};

/// Size of the chunks member content is read and hashed in (and of the internal read buffer).
const CHUNK: usize = 1 << 20;

/// Size of one tar block.
const BLOCK: u64 = 512;

/// What kind of filesystem object a tar member describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A regular file (also contiguous and GNU sparse files) whose content is in the stream.
    File,
    /// A hard link to a member stored earlier in the stream.
    HardLink,
    /// A symbolic link.
    Symlink,
    /// A directory.
    Directory,
    /// Anything else (fifo `6`, char device `3`, block device `4`, unknown), by its type byte.
    Other(u8),
}

/// One member of a tar stream as seen by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Raw member name bytes as in the archive (GNU long names and PAX `path` resolved).
    pub name: Vec<u8>,
    /// What the member is.
    pub kind: MemberKind,
    /// Content size for a file; for a resolved hard link the size of the member it links to;
    /// otherwise the size in the header (normally 0).
    pub size: u64,
    /// md5 of the content for a [`MemberKind::File`]; for a [`MemberKind::HardLink`] the md5 of
    /// the member it links to, if that member was seen earlier in the stream; else `None`.
    pub md5: Option<[u8; 16]>,
    /// Symlink target, or the member name a hard link points to.
    pub link_target: Option<Vec<u8>>,
    /// Permission bits from the header.
    pub mode: u32,
    /// Modification time, seconds since the epoch (PAX `mtime` integer part when present).
    pub mtime: u64,
    /// Numeric owner id.
    pub uid: u64,
    /// Numeric group id.
    pub gid: u64,
    /// A regular file (or a hard link to one) whose content was deliberately not hashed: a
    /// paced scan ([`Pace::behind`]) fell behind its writer and left it to a later check.
    pub unhashed: bool,
}

impl Member {
    /// The md5 as 32 lowercase hex digits, if the member has one.
    pub fn md5_hex(&self) -> Option<String> {
        self.md5.map(|d| hex(&d))
    }
}

/// Totals of one [`scan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Members reported to the callback.
    pub members: u64,
    /// Total content bytes of regular-file members (what was md5-ed).
    pub bytes: u64,
    /// Bytes consumed from the reader, trailing padding included (the whole input).
    pub stream_bytes: u64,
}

/// Whether a member name is safe to extract below a destination directory.
#[allow(dead_code)] // for the restore command, which is not written yet
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSafety {
    /// A relative name without `..` components: safe.
    Relative,
    /// Starts with `/`: unsafe.
    Absolute,
    /// Has a `..` component: unsafe.
    DotDot,
}

#[allow(dead_code)] // for the restore command, which is not written yet
impl NameSafety {
    /// True for [`NameSafety::Relative`].
    pub fn is_safe(self) -> bool {
        self == NameSafety::Relative
    }
}

/// Parses the tar stream in `reader`, md5-ing each regular member's content in 1 MiB chunks, and
/// calls `on_member` for each member in stream order.
///
/// A hard link gets the md5 and size of the earlier member it names. After the end-of-archive
/// marker the rest of the input is read to its end and must be zeros. A truncated or corrupt
/// stream, a missing end marker, or non-zero data after it is an error naming the member and
/// stream byte offset; an error from `on_member` is returned with the member named. On any error
/// the input is left undrained (pass `&mut reader` to drain it yourself). Reads go through an
/// internal 1 MiB buffer, so a tape device with blocks of up to 1 MiB can be passed directly.
pub fn scan<R: Read>(reader: R, mut on_member: impl FnMut(Member) -> Result<()>) -> Result<ScanSummary> {
    let mut buf = vec![0u8; CHUNK];
    let mut links = LinkTable::default();
    let mut summary = ScanSummary::default();
    summary.stream_bytes = walk(reader, |mut member, content| {
        match member.kind {
            MemberKind::File => {
                let digest = hash_content(content, member.size, &mut buf)?;
                member.md5 = Some(digest);
                links.remember(&member.name, Some(digest), member.size);
                summary.bytes = summary.bytes.saturating_add(member.size);
            }
            MemberKind::HardLink => links.resolve(&mut member),
            _ => {}
        }
        summary.members += 1;
        on_member(member).context("member callback failed")
    })?;
    Ok(summary)
}

/// Classifies a member name: absolute (leading `/`), containing a `..` component, or relative.
#[allow(dead_code)] // for the restore command, which is not written yet
pub fn classify_name(name: &[u8]) -> NameSafety {
    if name.first() == Some(&b'/') {
        NameSafety::Absolute
    } else if name.split(|&b| b == b'/').any(|c| c == b"..") {
        NameSafety::DotDot
    } else {
        NameSafety::Relative
    }
}

/// True if the symlink `member_name -> target` points outside the root that `member_name` is
/// relative to: an absolute target, or `..` steps that walk above that root at any point.
///
/// To check against a restore destination, pass the name relative to it (see [`strip_prefix`]).
/// A member name that itself walks above its root (see [`classify_name`]) also counts as escaping.
#[allow(dead_code)] // for the restore command, which is not written yet
pub fn link_escapes(member_name: &[u8], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') || member_name.first() == Some(&b'/') {
        return true;
    }
    let parent = match member_name.iter().rposition(|&b| b == b'/') {
        Some(i) => member_name.get(..i).unwrap_or_default(),
        None => &[],
    };
    let Some(depth) = walk_depth(0, parent) else {
        return true;
    };
    walk_depth(depth, target).is_none()
}

/// Returns `name` relative to the directory `prefix`, or `None` if `name` is not inside it.
///
/// `mnt/data/t00/sub/f.dat` with prefix `mnt/data/t00` gives `sub/f.dat`; the directory itself
/// (`mnt/data/t00` or `mnt/data/t00/`) gives `Some(b"")`. Trailing `/`s are dropped from the
/// result and from `prefix`, and leading `/`s from `prefix` (GNU tar strips them from names), so
/// an absolute target path can be passed as is. An empty prefix matches every name.
pub fn strip_prefix<'a>(name: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let prefix = trim_end_slashes(trim_start_slashes(prefix));
    let rest = if prefix.is_empty() {
        name
    } else {
        let rest = name.strip_prefix(prefix)?;
        match rest.first() {
            None => rest,
            Some(b'/') => rest.get(1..).unwrap_or_default(),
            Some(_) => return None,
        }
    };
    Some(trim_end_slashes(rest))
}

/// A [`Read`] over byte blocks arriving on a channel; reads return 0 once the sender hangs up.
///
/// Lets an archiver tee each block it writes to tape into [`scan`] running on another thread.
pub struct ChannelReader {
    rx: Receiver<Arc<Vec<u8>>>,
    block: Arc<Vec<u8>>,
    offset: usize,
    queued: Option<Arc<AtomicUsize>>,
}

impl ChannelReader {
    /// Wraps the receiving end of a block channel.
    pub fn new(rx: Receiver<Arc<Vec<u8>>>) -> Self {
        ChannelReader { rx, block: Arc::new(Vec::new()), offset: 0, queued: None }
    }

    /// Like [`ChannelReader::new`], and decrements `queued` for each block
    /// taken off the channel (the sender increments it for each block sent),
    /// so the sender can see how far behind this reader is.
    pub fn counted(rx: Receiver<Arc<Vec<u8>>>, queued: Arc<AtomicUsize>) -> Self {
        ChannelReader { queued: Some(queued), ..ChannelReader::new(rx) }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.offset >= self.block.len() {
            match self.rx.recv() {
                Ok(block) => {
                    self.block = block;
                    self.offset = 0;
                    if let Some(q) = &self.queued {
                        q.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Err(_) => return Ok(0),
            }
        }
        let mut rest = self.block.get(self.offset..).unwrap_or_default();
        let n = rest.read(buf)?;
        self.offset += n;
        Ok(n)
    }
}

/// Remembers md5 and size of regular members by name so later hard links can be resolved.
/// Keys are md5s of the names, bounding memory on streams with millions of members.
#[derive(Default)]
struct LinkTable {
    seen: HashMap<[u8; 16], (Option<[u8; 16]>, u64)>,
}

impl LinkTable {
    /// Records the content digest (`None`: not hashed) and size of the member `name`.
    fn remember(&mut self, name: &[u8], digest: Option<[u8; 16]>, size: u64) {
        self.seen.insert(Md5::digest(name).into(), (digest, size));
    }

    /// Fills in md5 and size of a hard link whose target was seen; records the link too.
    fn resolve(&mut self, member: &mut Member) {
        let Some(target) = &member.link_target else {
            return;
        };
        let Some(&(digest, size)) = self.seen.get(&<[u8; 16]>::from(Md5::digest(target))) else {
            return;
        };
        member.md5 = digest;
        member.unhashed = digest.is_none();
        member.size = size;
        self.remember(&member.name, digest, size);
    }
}

/// Progress of the raw input shared between [`Counted`] and the parser that owns it.
#[derive(Default)]
struct Tally {
    /// Bytes consumed so far.
    pos: Cell<u64>,
    /// Whether the input has reported end of file.
    eof: Cell<bool>,
}

/// Counts the bytes read through it, notes end of file, and retries interrupted reads.
struct Counted<R> {
    inner: R,
    tally: Rc<Tally>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(n) => {
                    if n == 0 && !buf.is_empty() {
                        self.tally.eof.set(true);
                    }
                    let pos = self.tally.pos.get().saturating_add(n as u64);
                    self.tally.pos.set(pos);
                    return Ok(n);
                }
            }
        }
    }
}

/// Where in the stream the parser is, for error messages.
struct Place<'t> {
    tally: &'t Tally,
    /// Members seen so far.
    count: u64,
    /// Name of the last member seen.
    last: Vec<u8>,
}

impl Place<'_> {
    /// Offset of the 512-byte block holding the last byte read (where a bad header starts).
    fn block(&self) -> u64 {
        self.tally.pos.get().saturating_sub(1) / BLOCK * BLOCK
    }
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes into the stream, ", self.tally.pos.get())?;
        match self.count {
            0 => write!(f, "before the first member"),
            n => write!(f, "after member #{n} `{}`", self.last.escape_ascii()),
        }
    }
}

/// The parsing loop shared by [`scan`] and a future restore: calls `visit` with each member's
/// header facts (md5 unset) and a reader over its content, checks the end-of-archive marker and
/// drains the zero padding after it. Returns the number of bytes read from `reader`.
pub fn walk<R: Read>(reader: R, mut visit: impl FnMut(Member, &mut dyn Read) -> Result<()>) -> Result<u64> {
    let tally = Rc::new(Tally::default());
    let input = Counted { inner: BufReader::with_capacity(CHUNK, reader), tally: tally.clone() };
    let mut archive = tar::Archive::new(input);
    let mut place = Place { tally: &tally, count: 0, last: Vec::new() };
    let entries = archive.entries().context("cannot start reading the tar stream")?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            let (block, e) = (place.block(), printable(&e));
            anyhow::anyhow!("corrupt tar stream: {e} (block at stream byte offset {block}; {place})")
        })?;
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        let start = entry.raw_header_position();
        let member = header_member(&mut entry)
            .with_context(|| format!("bad tar header at stream byte offset {start} ({place})"))?;
        place.count += 1;
        place.last.clone_from(&member.name);
        visit(member, &mut entry).with_context(|| {
            let (count, name, pos) = (place.count, place.last.escape_ascii(), tally.pos.get());
            format!("tar member #{count} `{name}` (header at stream byte offset {start}, {pos} bytes read)")
        })?;
    }
    if tally.eof.get() {
        bail!("tar stream ended without an end-of-archive marker (truncated?): {place}");
    }
    let mut input = archive.into_inner();
    drain_zeros(&mut input, tally.pos.get())?;
    Ok(tally.pos.get())
}

/// Reads `input` to its end, failing if any byte is not zero. `marker_end` is the offset just
/// past the end-of-archive marker, for the error message.
fn drain_zeros(input: &mut impl Read, marker_end: u64) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut offset = marker_end;
    loop {
        let n = input
            .read(&mut buf)
            .with_context(|| format!("read error at stream byte offset {offset}, after the end-of-archive marker"))?;
        let data = buf.get(..n).unwrap_or_default();
        if let Some(i) = data.iter().position(|&b| b != 0) {
            let at = offset.saturating_add(i as u64);
            bail!(
                "non-zero data at stream byte offset {at} after the end-of-archive marker \
                 (which ends at byte {marker_end}): damaged or concatenated tar stream"
            );
        }
        if n == 0 {
            return Ok(());
        }
        offset = offset.saturating_add(n as u64);
    }
}

/// Builds a [`Member`] (md5 unset) from an entry's header and extensions.
fn header_member<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Member> {
    let pax_mtime = pax_facts(entry)?;
    let name = entry.path_bytes().into_owned();
    let header = entry.header();
    let kind = kind_of(header.entry_type(), &name);
    let link_target = match kind {
        MemberKind::HardLink | MemberKind::Symlink => entry.link_name_bytes().map(|c| c.into_owned()),
        _ => None,
    };
    Ok(Member {
        kind,
        size: entry.size(),
        md5: None,
        link_target,
        mode: header.mode().map_err(tar_error)?,
        mtime: match pax_mtime {
            Some(t) => t,
            None => header.mtime().map_err(tar_error)?,
        },
        uid: header.uid().map_err(tar_error)?,
        gid: header.gid().map_err(tar_error)?,
        name,
        unhashed: false,
    })
}

/// Reads the member's PAX records: returns the integer part of `mtime` if present, and refuses
/// PAX-format sparse members (whose content the `tar` crate would hand over still encoded).
fn pax_facts<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<u64>> {
    let Some(records) = entry.pax_extensions().map_err(tar_error)? else {
        return Ok(None);
    };
    let mut mtime = None;
    for record in records {
        let record = record.map_err(tar_error)?;
        let key = record.key_bytes();
        if key.starts_with(b"GNU.sparse.") {
            bail!("PAX sparse members are not supported");
        }
        if key == b"mtime" {
            mtime = parse_pax_seconds(record.value_bytes());
        }
    }
    Ok(mtime)
}

/// Parses the whole-second part of a PAX time like `1577836800.123`; `None` if negative or bad.
fn parse_pax_seconds(value: &[u8]) -> Option<u64> {
    let secs = value.split(|&b| b == b'.').next()?;
    std::str::from_utf8(secs).ok()?.parse().ok()
}

/// Maps a tar entry type to a [`MemberKind`] (old-style `\0` entries ending in `/` are dirs).
fn kind_of(entry_type: tar::EntryType, name: &[u8]) -> MemberKind {
    match entry_type.as_byte() {
        b'\0' if name.ends_with(b"/") => MemberKind::Directory,
        b'0' | b'\0' | b'7' | b'S' => MemberKind::File,
        b'1' => MemberKind::HardLink,
        b'2' => MemberKind::Symlink,
        b'5' => MemberKind::Directory,
        other => MemberKind::Other(other),
    }
}

/// md5s `content` in chunks of `buf`'s size; fails unless exactly `size` bytes arrive.
fn hash_content(content: &mut dyn Read, size: u64, buf: &mut [u8]) -> Result<[u8; 16]> {
    let mut hasher = Md5::new();
    let mut got = 0u64;
    loop {
        let n = match content.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context(format!("read error after {got} of {size} bytes")),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        got = got.saturating_add(n as u64);
    }
    if got != size {
        bail!("content truncated: the stream ended after {got} of {size} bytes");
    }
    Ok(hasher.finalize().into())
}

/// Depth after walking the `/`-separated `path` from `depth`, or `None` if it goes below 0.
#[allow(dead_code)] // used by link_escapes only
fn walk_depth(mut depth: u64, path: &[u8]) -> Option<u64> {
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => depth = depth.checked_sub(1)?,
            _ => depth = depth.saturating_add(1),
        }
    }
    Some(depth)
}

/// `bytes` without leading `/`s.
fn trim_start_slashes(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// `bytes` without trailing `/`s.
fn trim_end_slashes(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// An error from the `tar` crate with its message made [`printable`].
fn tar_error(e: io::Error) -> anyhow::Error {
    anyhow::anyhow!(printable(&e))
}

/// The text of `e` with control characters escaped, cut to 200 characters: the `tar` crate
/// quotes raw header bytes in its messages, which may be binary garbage.
fn printable(e: &io::Error) -> String {
    let text = e.to_string();
    let mut out = String::new();
    for c in text.chars().take(200) {
        out.extend(c.escape_debug().filter(|_| c.is_control()));
        if !c.is_control() {
            out.push(c);
        }
    }
    if text.chars().nth(200).is_some() {
        out.push_str("...");
    }
    out
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Members at least this large are hashed on a worker thread; smaller ones
/// are hashed where they are parsed (a hand-off would cost more than md5).
const PARALLEL_MIN: u64 = 256 * 1024;

/// Work for a hashing thread.
enum Job {
    Start(u64, Member),
    Chunk(u64, Vec<u8>),
    /// The member's last chunk was sent (`true`), or the rest is left unhashed (`false`).
    End(u64, bool),
}

/// How [`scan_paced`] shares the work: hashing threads, how far the parser may read ahead of
/// them, and when it may leave content unhashed.
#[derive(Clone, Copy)]
pub struct Pace<'a> {
    /// Hashing threads; below 2 (and no `behind`) the stream is hashed on one thread by [`scan`].
    pub workers: usize,
    /// 1 MiB chunks queued per hashing thread: the read-ahead that lets the next large member
    /// start hashing while the last one is still being hashed (memory: workers x this MiB).
    pub queue_chunks: usize,
    /// Asked before each chunk is hashed, with `true` before a member's first chunk: `true`
    /// back means the reader is holding up whatever feeds it, and the rest of that member is
    /// left unhashed ([`Member::unhashed`]). (Asking a stricter question before a member's
    /// first chunk than in its middle saves started members from being abandoned.)
    pub behind: Option<&'a (dyn Fn(bool) -> bool + Sync)>,
}

impl Pace<'_> {
    /// Every member hashed on `workers` threads with a small read-ahead (8 MiB each).
    pub fn hash_all(workers: usize) -> Pace<'static> {
        Pace { workers, queue_chunks: 8, behind: None }
    }

    fn is_behind(&self, starting: bool) -> bool {
        self.behind.is_some_and(|f| f(starting))
    }
}

/// Like [`scan`], but hashes large members on `workers` threads while the
/// stream is parsed, so several members' md5 run at once; `on_member` is
/// still called in stream order, on the calling thread.
pub fn scan_parallel<R: Read + Send>(
    reader: R,
    workers: usize,
    on_member: impl FnMut(Member) -> Result<()>,
) -> Result<ScanSummary> {
    scan_paced(reader, Pace::hash_all(workers), on_member)
}

/// [`scan_parallel`] with the read-ahead and the licence to skip hashing
/// set by `pace`.
pub fn scan_paced<R: Read + Send>(
    reader: R,
    pace: Pace<'_>,
    mut on_member: impl FnMut(Member) -> Result<()>,
) -> Result<ScanSummary> {
    if pace.workers < 2 && pace.behind.is_none() {
        return scan(reader, on_member);
    }
    std::thread::scope(|s| {
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(u64, Member)>(4096);
        let mut jobs = Vec::with_capacity(pace.workers.max(1));
        for _ in 0..pace.workers.max(1) {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(pace.queue_chunks.max(1));
            let done = done_tx.clone();
            s.spawn(move || hash_jobs(&rx, &done));
            jobs.push(tx);
        }
        let parser = s.spawn(move || dispatch(reader, &jobs, &done_tx, pace));
        let collected = collect_in_order(&done_rx, &mut on_member);
        drop(done_rx);
        let parsed = parser.join().map_err(|_| anyhow::anyhow!("tar parser thread panicked"))?;
        let stream_bytes = parsed?;
        let (members, bytes) = collected?;
        Ok(ScanSummary { members, bytes, stream_bytes })
    })
}

/// Parse the stream, hash small members here and hand large ones out.
fn dispatch<R: Read>(
    reader: R,
    jobs: &[std::sync::mpsc::SyncSender<Job>],
    done: &std::sync::mpsc::SyncSender<(u64, Member)>,
    pace: Pace<'_>,
) -> Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut seq = 0u64;
    walk(reader, |mut member, content| {
        seq += 1;
        if member.kind == MemberKind::File && member.size >= PARALLEL_MIN {
            let worker = &jobs[(seq as usize) % jobs.len()];
            return hand_out(worker, seq, member, content, &pace);
        }
        if member.kind == MemberKind::File {
            if pace.is_behind(true) {
                member.unhashed = true;
            } else {
                member.md5 = Some(hash_content(content, member.size, &mut buf)?);
            }
        }
        done.send((seq, member)).map_err(|_| anyhow::anyhow!("the member checker stopped"))
    })
}

/// Send a member's content to a hashing thread chunk by chunk, or stop
/// sending (the rest is then skipped by the parser) once `pace` is behind.
fn hand_out(
    worker: &std::sync::mpsc::SyncSender<Job>,
    seq: u64,
    member: Member,
    content: &mut dyn Read,
    pace: &Pace<'_>,
) -> Result<()> {
    let size = member.size;
    let stopped = || anyhow::anyhow!("the hashing threads stopped");
    worker.send(Job::Start(seq, member)).map_err(|_| stopped())?;
    let mut got = 0u64;
    while got < size {
        if pace.is_behind(got == 0) {
            return worker.send(Job::End(seq, false)).map_err(|_| stopped());
        }
        let want = (size - got).min(CHUNK as u64);
        let mut chunk = Vec::with_capacity(want as usize);
        content
            .take(want)
            .read_to_end(&mut chunk)
            .with_context(|| format!("read error after {got} of {size} bytes"))?;
        if chunk.len() as u64 != want {
            bail!("content truncated: the stream ended after {} of {size} bytes", got + chunk.len() as u64);
        }
        got += want;
        worker.send(Job::Chunk(seq, chunk)).map_err(|_| stopped())?;
    }
    worker.send(Job::End(seq, true)).map_err(|_| stopped())
}

fn hash_jobs(rx: &Receiver<Job>, done: &std::sync::mpsc::SyncSender<(u64, Member)>) {
    let mut open: HashMap<u64, (Member, Md5)> = HashMap::new();
    for job in rx.iter() {
        match job {
            Job::Start(seq, member) => {
                open.insert(seq, (member, Md5::new()));
            }
            Job::Chunk(seq, bytes) => {
                if let Some((_, h)) = open.get_mut(&seq) {
                    h.update(&bytes);
                }
            }
            Job::End(seq, complete) => {
                if let Some((mut member, h)) = open.remove(&seq) {
                    if complete {
                        member.md5 = Some(h.finalize().into());
                    } else {
                        member.unhashed = true;
                    }
                    if done.send((seq, member)).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Hand members to `on_member` in stream order, resolving hard links.
fn collect_in_order(
    done: &Receiver<(u64, Member)>,
    on_member: &mut impl FnMut(Member) -> Result<()>,
) -> Result<(u64, u64)> {
    let mut waiting = std::collections::BTreeMap::new();
    let (mut next, mut members, mut bytes) = (1u64, 0u64, 0u64);
    let mut links = LinkTable::default();
    for (seq, member) in done.iter() {
        waiting.insert(seq, member);
        while let Some(mut member) = waiting.remove(&next) {
            next += 1;
            match member.kind {
                MemberKind::File => {
                    links.remember(&member.name, member.md5, member.size);
                    bytes = bytes.saturating_add(member.size);
                }
                MemberKind::HardLink => links.resolve(&mut member),
                _ => {}
            }
            members += 1;
            let name = member.name.escape_ascii().to_string();
            on_member(member).with_context(|| format!("member callback failed at `{name}`"))?;
        }
    }
    Ok((members, bytes))
}

/// Hashing threads worth running: the machine's cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    /// Deterministic pseudo-random bytes (xorshift), for content and garbage.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    fn path_of(dir: &Path, name: &[u8]) -> PathBuf {
        dir.join(OsStr::from_bytes(name))
    }

    /// `tar -c --format=FORMAT -f - -C dir what...` to memory, with real GNU tar.
    fn gnu_tar(dir: &Path, format: &str, what: &[&str]) -> Vec<u8> {
        let out = Command::new("tar")
            .arg("-c")
            .arg(format!("--format={format}"))
            .args(["-f", "-", "-C"])
            .arg(dir)
            .args(what)
            .stderr(Stdio::inherit())
            .output()
            .expect("run tar");
        assert!(out.status.success(), "tar failed");
        out.stdout
    }

    /// md5 of a file as printed by the real `md5sum`.
    fn md5sum(path: &Path) -> String {
        let out =
            Command::new("md5sum").stdin(fs::File::open(path).expect("open for md5sum")).output().expect("run md5sum");
        String::from_utf8(out.stdout).expect("utf8")[..32].to_string()
    }

    fn scan_all(input: &[u8]) -> Result<(Vec<Member>, ScanSummary)> {
        let mut members = Vec::new();
        let summary = scan(input, |m| {
            members.push(m);
            Ok(())
        })?;
        Ok((members, summary))
    }

    fn err_text(input: &[u8]) -> String {
        match scan_all(input) {
            Ok((m, _)) => panic!("expected an error, got {} members", m.len()),
            Err(e) => format!("{e:#}"),
        }
    }

    fn find<'a>(members: &'a [Member], name: &[u8]) -> &'a Member {
        members.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no member `{}`", name.escape_ascii()))
    }

    const LONG_DIR: &str = "a_directory_name_that_is_long_enough_to_matter_0123456789";
    const LONG_FILE: &str = "and_a_file_name_that_pushes_the_whole_member_name_well_past_one_hundred_bytes.dat";

    /// Builds `root/src` with every kind of member the scanner must handle.
    fn build_tree(root: &Path) -> PathBuf {
        let src = root.join("src");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        fs::create_dir_all(src.join(LONG_DIR)).unwrap();
        fs::create_dir(src.join("emptydir")).unwrap();
        fs::write(src.join("regular.dat"), rng.bytes(3 * CHUNK + 123)).unwrap();
        fs::write(src.join("empty.dat"), b"").unwrap();
        fs::write(src.join(LONG_DIR).join(LONG_FILE), b"deep and long\n").unwrap();
        fs::write(path_of(&src, b"bad\xffname"), b"not utf-8 named\n").unwrap();
        fs::write(path_of(&src, b"new\nline.txt"), b"newline named\n").unwrap();
        fs::write(src.join("hard_a"), rng.bytes(5000)).unwrap();
        fs::hard_link(src.join("hard_a"), src.join("hard_b")).unwrap();
        std::os::unix::fs::symlink("regular.dat", src.join("link")).unwrap();
        std::os::unix::fs::symlink("x".repeat(150), src.join("longlink")).unwrap();
        let fifo = Command::new("mkfifo").arg(src.join("fifo")).status().unwrap();
        assert!(fifo.success());
        src
    }

    fn check_tree_archive(src: &Path, archive: &[u8]) {
        let (members, summary) = scan_all(archive).expect("scan");
        assert_eq!(summary.members, members.len() as u64);
        assert_eq!(summary.stream_bytes, archive.len() as u64);
        let file = |rel: &[u8], size: u64| {
            let m = find(&members, &[b"src/", rel].concat());
            assert_eq!(m.kind, MemberKind::File, "{}", rel.escape_ascii());
            assert_eq!(m.size, size);
            assert_eq!(m.md5_hex().unwrap(), md5sum(&path_of(src, rel)));
            assert_eq!(m.link_target, None);
        };
        file(b"regular.dat", 3 * CHUNK as u64 + 123);
        file(b"empty.dat", 0);
        file(format!("{LONG_DIR}/{LONG_FILE}").as_bytes(), 14);
        file(b"bad\xffname", 16);
        file(b"new\nline.txt", 14);
        assert!(format!("src/{LONG_DIR}/{LONG_FILE}").len() > 100);

        let regular = find(&members, b"src/regular.dat");
        assert_eq!(regular.mode, 0o644);
        let meta = fs::metadata(src.join("regular.dat")).unwrap();
        assert_eq!(regular.mtime, std::os::unix::fs::MetadataExt::mtime(&meta) as u64);
        assert_eq!(regular.uid, u64::from(std::os::unix::fs::MetadataExt::uid(&meta)));

        let link = find(&members, b"src/link");
        assert_eq!((link.kind, link.md5), (MemberKind::Symlink, None));
        assert_eq!(link.link_target.as_deref(), Some(&b"regular.dat"[..]));
        let long = find(&members, b"src/longlink");
        assert_eq!(long.link_target, Some(vec![b'x'; 150]));

        let (a, b) = (find(&members, b"src/hard_a"), find(&members, b"src/hard_b"));
        let (first, second) = if a.kind == MemberKind::File { (a, b) } else { (b, a) };
        assert_eq!((first.kind, second.kind), (MemberKind::File, MemberKind::HardLink));
        assert_eq!(second.link_target.as_deref(), Some(&first.name[..]));
        assert_eq!(second.md5_hex().unwrap(), md5sum(&src.join("hard_a")));
        assert_eq!(second.size, 5000);

        assert_eq!(find(&members, b"src/emptydir/").kind, MemberKind::Directory);
        assert_eq!(find(&members, b"src/").kind, MemberKind::Directory);
        assert_eq!(find(&members, b"src/fifo").kind, MemberKind::Other(b'6'));
        assert_eq!(members.len(), 13, "{members:#?}");
        assert_eq!(summary.bytes, 3 * CHUNK as u64 + 123 + 14 + 16 + 14 + 5000);
    }

    #[test]
    fn gnu_and_pax_archives_scan_to_the_right_members() {
        let tmp = tempfile::tempdir().unwrap();
        let src = build_tree(tmp.path());
        for format in ["gnu", "pax"] {
            let archive = gnu_tar(tmp.path(), format, &["src"]);
            check_tree_archive(&src, &archive);
        }
    }

    /// `dir/hole`: 100 KiB hole then 4 bytes of data; returns its md5 per `md5sum`.
    fn sparse_file(dir: &Path) -> String {
        let path = dir.join("hole");
        let file = fs::File::create(&path).unwrap();
        file.set_len(100 * 1024).unwrap();
        drop(file);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b"data").unwrap();
        md5sum(&path)
    }

    #[test]
    fn gnu_sparse_member_hashes_the_expanded_content() {
        let tmp = tempfile::tempdir().unwrap();
        let want = sparse_file(tmp.path());
        let out = Command::new("tar")
            .args(["-c", "--sparse", "--format=gnu", "-f", "-", "-C"])
            .arg(tmp.path())
            .arg("hole")
            .output()
            .unwrap();
        let (members, summary) = scan_all(&out.stdout).unwrap();
        assert_eq!(members[0].kind, MemberKind::File);
        assert_eq!(members[0].size, 100 * 1024 + 4);
        assert_eq!(members[0].md5_hex().unwrap(), want);
        assert_eq!(summary.bytes, 100 * 1024 + 4);
    }

    #[test]
    fn pax_sparse_member_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        sparse_file(tmp.path());
        let out = Command::new("tar")
            .args(["-c", "--sparse", "--format=pax", "-f", "-", "-C"])
            .arg(tmp.path())
            .arg("hole")
            .output()
            .unwrap();
        let err = err_text(&out.stdout);
        assert!(err.contains("PAX sparse members are not supported"), "{err}");
    }

    /// A small archive of `a.txt` (100 bytes) and `b.txt` (600 bytes) and its directory.
    fn small_archive(tmp: &Path) -> Vec<u8> {
        let dir = tmp.join("small");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("a.txt"), vec![b'a'; 100]).unwrap();
        fs::write(dir.join("b.txt"), vec![b'b'; 600]).unwrap();
        gnu_tar(&dir, "gnu", &["a.txt", "b.txt"])
    }

    #[test]
    fn truncated_content_names_the_member() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("big.dat"), Rng(7).bytes(2 * CHUNK)).unwrap();
        let archive = gnu_tar(tmp.path(), "gnu", &["big.dat"]);
        let err = err_text(&archive[..512 + CHUNK + 100]);
        assert!(err.contains("member #1 `big.dat`"), "{err}");
        assert!(err.contains("truncated"), "{err}");
        assert!(err.contains(&format!("after {} of {} bytes", CHUNK + 100, 2 * CHUNK)), "{err}");
    }

    #[test]
    fn truncated_header_names_previous_member_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = small_archive(tmp.path());
        let err = err_text(&archive[..1024 + 100]);
        assert!(err.contains("after member #1 `a.txt`"), "{err}");
        assert!(err.contains("offset 1024"), "{err}");
        assert!(err.contains("1124 bytes into the stream"), "{err}");
    }

    #[test]
    fn missing_end_marker_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = small_archive(tmp.path());
        let err = err_text(&archive[..1024 + 512 + 1024]);
        assert!(err.contains("without an end-of-archive marker"), "{err}");
        assert!(err.contains("`b.txt`"), "{err}");
        assert!(err_text(b"").contains("before the first member"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut rng = Rng(42);
        for len in [1, 100, 511, 512, 513, 10240, 100_000] {
            let err = err_text(&rng.bytes(len));
            assert!(err.contains("tar"), "{err}");
        }
        assert!(err_text(&[0xff; 4096]).contains("corrupt tar stream"));
        assert!(err_text(b"hello world\n").contains("corrupt tar stream"));
    }

    #[test]
    fn trailing_zero_padding_is_read_to_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = small_archive(tmp.path());
        archive.resize(archive.len().next_multiple_of(256 * 1024), 0);
        let (members, summary) = scan_all(&archive).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(summary.stream_bytes, 256 * 1024);
        assert_eq!(summary.bytes, 700);
        let (none, summary) = scan_all(&[0; 10240]).unwrap();
        assert_eq!((none.len(), summary.stream_bytes), (0, 10240));
    }

    #[test]
    fn data_after_the_end_marker_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = small_archive(tmp.path());
        let at = archive.len() - 10;
        archive[at] = 1;
        let err = err_text(&archive);
        assert!(err.contains(&format!("non-zero data at stream byte offset {at}")), "{err}");
    }

    #[test]
    fn callback_error_is_returned_with_the_member() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = small_archive(tmp.path());
        let err = scan(&archive[..], |m| if m.name == b"b.txt" { bail!("stop here") } else { Ok(()) }).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("member #2 `b.txt`") && err.contains("stop here"), "{err}");
    }

    /// Rewrites the checksum of the 512-byte header at `block`.
    fn fix_checksum(block: &mut [u8]) {
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn mutated_headers_never_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        fs::create_dir_all(dir.join("d")).unwrap();
        fs::write(dir.join("d/f.txt"), b"x".repeat(700)).unwrap();
        std::os::unix::fs::symlink("f.txt", dir.join("d/l")).unwrap();
        fs::hard_link(dir.join("d/f.txt"), dir.join("d/h")).unwrap();
        fs::write(dir.join("d").join("n".repeat(120)), b"long").unwrap();
        let mut rng = Rng(1234);
        let interesting = [0u8, b'/', b'.', b'0', b'7', b'L', b'x', b'S', b'5', b'1', 0x80, 0xff];
        for format in ["gnu", "pax"] {
            let archive = gnu_tar(&dir, format, &["d"]);
            let headers: Vec<usize> =
                (0..archive.len() / 512).map(|i| i * 512).filter(|&o| &archive[o + 257..o + 262] == b"ustar").collect();
            for _ in 0..3000 {
                let mut a = archive.clone();
                let h = headers[rng.below(headers.len())];
                for _ in 0..1 + rng.below(3) {
                    let value = match rng.below(3) {
                        0 => interesting[rng.below(interesting.len())],
                        1 => b'0' + rng.below(8) as u8,
                        _ => rng.next() as u8,
                    };
                    a[h + rng.below(512)] = value;
                }
                fix_checksum(&mut a[h..h + 512]);
                let _ = scan_all(&a);
                let _ = scan_all(&a[..rng.below(a.len())]);
            }
        }
    }

    #[test]
    fn name_classification() {
        assert_eq!(classify_name(b"mnt/data/f"), NameSafety::Relative);
        assert_eq!(classify_name(b"a/..b/c.."), NameSafety::Relative);
        assert_eq!(classify_name(b"./a/"), NameSafety::Relative);
        assert_eq!(classify_name(b"/etc/passwd"), NameSafety::Absolute);
        assert_eq!(classify_name(b"/a/../b"), NameSafety::Absolute);
        assert_eq!(classify_name(b".."), NameSafety::DotDot);
        assert_eq!(classify_name(b"a/../b"), NameSafety::DotDot);
        assert_eq!(classify_name(b"a/b/.."), NameSafety::DotDot);
        assert_eq!(classify_name(b"../x"), NameSafety::DotDot);
        assert!(classify_name(b"a").is_safe() && !classify_name(b"a/..").is_safe());
    }

    #[test]
    fn link_escape_checks() {
        assert!(!link_escapes(b"t/sub/l", b"f.dat"));
        assert!(!link_escapes(b"t/sub/l", b"../f.dat"));
        assert!(!link_escapes(b"t/sub/l", b"../../f.dat"));
        assert!(!link_escapes(b"t/sub/l", b"./../x/./../y"));
        assert!(link_escapes(b"t/sub/l", b"../../../f.dat"));
        assert!(link_escapes(b"t/sub/l", b"../../../t/f.dat"));
        assert!(link_escapes(b"t/sub/l", b"/etc/passwd"));
        assert!(link_escapes(b"l", b".."));
        assert!(!link_escapes(b"l", b"."));
        assert!(!link_escapes(b"t//sub/l", b"../../x"));
        assert!(!link_escapes(b"t/../l", b"x"));
        assert!(link_escapes(b"../l", b"x"));
        assert!(link_escapes(b"/abs/l", b"x"));
    }

    #[test]
    fn prefix_stripping() {
        let p = b"mnt/data/t00";
        assert_eq!(strip_prefix(b"mnt/data/t00/sub/f.dat", p), Some(&b"sub/f.dat"[..]));
        assert_eq!(strip_prefix(b"mnt/data/t00/sub/", p), Some(&b"sub"[..]));
        assert_eq!(strip_prefix(b"mnt/data/t00/", p), Some(&b""[..]));
        assert_eq!(strip_prefix(b"mnt/data/t00", p), Some(&b""[..]));
        assert_eq!(strip_prefix(b"mnt/data/t001/f", p), None);
        assert_eq!(strip_prefix(b"mnt/data", p), None);
        assert_eq!(strip_prefix(b"other/f", p), None);
        assert_eq!(strip_prefix(b"mnt/data/t00/f", b"/mnt/data/t00/"), Some(&b"f"[..]));
        assert_eq!(strip_prefix(b"a/b", b""), Some(&b"a/b"[..]));
        assert_eq!(strip_prefix(b"mnt/data/t00/x\xff\ny", p), Some(&b"x\xff\ny"[..]));
    }

    #[test]
    fn md5_hex_is_lowercase() {
        let mut m = Member {
            name: b"n".to_vec(),
            kind: MemberKind::File,
            size: 0,
            md5: None,
            link_target: None,
            mode: 0,
            mtime: 0,
            uid: 0,
            gid: 0,
            unhashed: false,
        };
        assert_eq!(m.md5_hex(), None);
        m.md5 = Some(Md5::digest(b"").into());
        assert_eq!(m.md5_hex().unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn channel_reader_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = small_archive(tmp.path());
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(2);
        let blocks = archive.clone();
        let sender = std::thread::spawn(move || {
            let mut rest = &blocks[..];
            for size in [1usize, 511, 0, 512, 3000, 7].into_iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (block, tail) = rest.split_at(size.min(rest.len()));
                tx.send(Arc::new(block.to_vec())).unwrap();
                rest = tail;
            }
        });
        let mut reader = ChannelReader::new(rx);
        let mut copy = Vec::new();
        let mut buf = [0u8; 100];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            copy.extend_from_slice(&buf[..n]);
        }
        sender.join().unwrap();
        assert_eq!(copy, archive);
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn scan_through_a_channel_on_another_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = small_archive(tmp.path());
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(4);
        let parser = std::thread::spawn(move || scan_all_owned(ChannelReader::new(rx)));
        for block in archive.chunks(1024) {
            tx.send(Arc::new(block.to_vec())).unwrap();
        }
        drop(tx);
        let (members, summary) = parser.join().unwrap().unwrap();
        assert_eq!(members, scan_all(&archive).unwrap().0);
        assert_eq!(summary.stream_bytes, archive.len() as u64);
    }

    fn scan_all_owned(reader: impl Read) -> Result<(Vec<Member>, ScanSummary)> {
        let mut members = Vec::new();
        let summary = scan(reader, |m| {
            members.push(m);
            Ok(())
        })?;
        Ok((members, summary))
    }

    /// The read-only legacy fixture, wherever this checkout sits relative to `shared/`.
    fn legacy_fixture() -> Option<PathBuf> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        [
            manifest.join("../shared/fixtures/legacy-public"),
            manifest.join("shared/fixtures/legacy-public"),
            PathBuf::from("/work/shared/fixtures/legacy-public"),
        ]
        .into_iter()
        .find(|p| p.join("emu/PUB-T1/file00000.tar").is_file())
    }

    /// Splits the inside of an SQL `VALUES(...)` into fields, unquoting `'...'` strings.
    fn sql_fields(inner: &str) -> Vec<String> {
        let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('\'', true) if chars.peek() == Some(&'\'') => {
                    chars.next();
                    cur.push('\'');
                }
                ('\'', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        fields
    }

    /// Rows of `table` in the fixture's `db_dump.sql`.
    fn sql_rows(dump: &str, table: &str) -> Vec<Vec<String>> {
        let head = format!("INSERT INTO {table} VALUES(");
        dump.lines().filter_map(|l| l.strip_prefix(&head)?.strip_suffix(");")).map(sql_fields).collect()
    }

    #[test]
    fn legacy_fixture_tapes_match_the_legacy_database() {
        let root = legacy_fixture().expect("legacy fixture not found: ../shared/fixtures/legacy-public must exist");
        let dump = fs::read_to_string(root.join("db_dump.sql")).unwrap();
        let tapes = sql_rows(&dump, "tapes");
        let targets = sql_rows(&dump, "targets");
        let files = sql_rows(&dump, "files");
        let mut checked = 0;
        for backup in sql_rows(&dump, "backups") {
            let (target_id, tape_id, fnum) = (&backup[1], &backup[2], &backup[3]);
            if fnum.starts_with('-') {
                continue;
            }
            let tape = &tapes.iter().find(|t| &t[0] == tape_id).unwrap()[1];
            let target = &targets.iter().find(|t| &t[0] == target_id).unwrap()[1];
            let fnum: u32 = fnum.parse().unwrap();
            let path = root.join(format!("emu/{tape}/file{fnum:05}.tar"));
            let (members, summary) = scan_all_owned(fs::File::open(&path).unwrap()).unwrap();
            assert_eq!(summary.stream_bytes, fs::metadata(&path).unwrap().len());
            let mut expected: HashMap<&[u8], &str> =
                files.iter().filter(|f| &f[1] == target_id).map(|f| (f[2].as_bytes(), f[3].as_str())).collect();
            for m in &members {
                let rel = strip_prefix(&m.name, target.as_bytes()).expect("inside target");
                assert_eq!((m.uid, m.gid, m.mtime), (0, 0, 1_577_836_800));
                let want = match m.kind {
                    MemberKind::Directory => continue,
                    MemberKind::Symlink => "symlink".to_string(),
                    _ => m.md5_hex().unwrap(),
                };
                let got = expected.remove(rel);
                assert_eq!(got, Some(want.as_str()), "{}: {}", path.display(), m.name.escape_ascii());
                checked += 1;
            }
            assert!(expected.is_empty(), "{}: not in tar: {expected:?}", path.display());
        }
        assert_eq!(checked, (2 + 2 + 4) + (2 + 1 + 2 + 2 + 2 + 250 + 250));
    }

    #[test]
    fn legacy_fixture_emptyfile_tape_file() {
        let root = legacy_fixture().expect("legacy fixture not found: ../shared/fixtures/legacy-public must exist");
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("file00000.tar");
        fs::copy(root.join("emu/PUB-T1/file00000.tar"), &copy).unwrap();
        let (members, summary) = scan_all_owned(fs::File::open(&copy).unwrap()).unwrap();
        let dir = "mnt/act6/actpol/data/season4/edge/e_emptyfile/";
        let names: Vec<_> = members.iter().map(|m| m.name.clone()).collect();
        let want = [dir.to_string(), format!("{dir}empty.dat"), format!("{dir}plain.txt")];
        assert_eq!(names, want.map(String::into_bytes));
        let plain = find(&members, format!("{dir}plain.txt").as_bytes());
        assert_eq!(plain.md5_hex().unwrap(), "e9ac2d1cf882bde0bd644df7427f1219");
        assert_eq!((plain.size, plain.mode), (1500, 0o644));
        let empty = find(&members, format!("{dir}empty.dat").as_bytes());
        assert_eq!(empty.md5_hex().unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(find(&members, dir.as_bytes()).kind, MemberKind::Directory);
        assert_eq!((summary.members, summary.bytes, summary.stream_bytes), (3, 1500, 10240));
    }

    #[test]
    fn parallel_scan_matches_serial_scan_in_order() {
        let mut b = tar::Builder::new(Vec::new());
        let sizes = [0usize, 10, 300_000, 2_000_003, 5000, 1_048_579, 700_000];
        for (i, size) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*size).map(|k| (k * 31 + i) as u8).collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(*size as u64);
            h.set_mode(0o644);
            h.set_mtime(1);
            h.set_uid(0);
            h.set_gid(0);
            h.set_cksum();
            b.append_data(&mut h, format!("t/f{i}"), data.as_slice()).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_link(&mut h, "t/hard", "t/f3").unwrap();
        let bytes = b.into_inner().unwrap();
        let mut serial = Vec::new();
        let s1 = scan(bytes.as_slice(), |m| {
            serial.push(m);
            Ok(())
        })
        .unwrap();
        for workers in [2, 3, 5] {
            let mut par = Vec::new();
            let s2 = scan_parallel(bytes.as_slice(), workers, |m| {
                par.push(m);
                Ok(())
            })
            .unwrap();
            assert_eq!(par, serial, "{workers} workers");
            assert_eq!(s2, s1);
        }
        assert_eq!(serial.last().unwrap().md5, serial[3].md5, "the hard link gets its target's md5");
        paced_scans_skip_only_what_they_are_told_to(&bytes, &serial);
    }

    /// A scan that is always behind hashes nothing (hard link included) but
    /// still yields every member; one that falls behind after each first
    /// chunk abandons exactly the members of more than one chunk (and the
    /// hard link to one); a deep read-ahead never behind changes nothing.
    fn paced_scans_skip_only_what_they_are_told_to(bytes: &[u8], serial: &[Member]) {
        let always = |_: bool| true;
        let mut skipped = Vec::new();
        let pace = Pace { behind: Some(&always), ..Pace::hash_all(1) };
        scan_paced(bytes, pace, |m| {
            skipped.push(m);
            Ok(())
        })
        .unwrap();
        assert_eq!(skipped.len(), serial.len());
        for (got, want) in skipped.iter().zip(serial) {
            assert_eq!(got.name, want.name);
            let file = matches!(want.kind, MemberKind::File | MemberKind::HardLink);
            assert_eq!((got.unhashed, got.md5.is_some()), (file, !file && want.md5.is_some()), "{:?}", got.name);
        }
        let after_start = |starting: bool| !starting;
        let mut some = Vec::new();
        scan_paced(bytes, Pace { behind: Some(&after_start), ..Pace::hash_all(2) }, |m| {
            some.push(m);
            Ok(())
        })
        .unwrap();
        let abandoned: Vec<&[u8]> = some.iter().filter(|m| m.unhashed).map(|m| m.name.as_slice()).collect();
        assert_eq!(abandoned, [&b"t/f3"[..], b"t/f5", b"t/hard"], "members of more than one chunk are abandoned");
        for (got, want) in some.iter().zip(serial).filter(|(m, _)| !m.unhashed) {
            assert_eq!(got, want);
        }
        let never = |_: bool| false;
        let mut all = Vec::new();
        scan_paced(bytes, Pace { workers: 2, queue_chunks: 64, behind: Some(&never) }, |m| {
            all.push(m);
            Ok(())
        })
        .unwrap();
        assert_eq!(all, serial);
    }

    #[test]
    fn parallel_scan_reports_a_truncated_stream() {
        let mut b = tar::Builder::new(Vec::new());
        let data = vec![7u8; 3_000_000];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, "big", data.as_slice()).unwrap();
        let bytes = b.into_inner().unwrap();
        let cut = &bytes[..1_500_000];
        assert!(scan_parallel(cut, 2, |_| Ok(())).is_err());
    }
}
