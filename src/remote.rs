//! Running shell scripts on the data host. The config's `ssh_command` is split
//! into words once ([`Remote::new`]); an empty value means the data is local
//! and scripts run under `sh -c SCRIPT`, otherwise the words are a command
//! prefix (normally `ssh … user@host`, but any local prefix such as `sh -c`
//! works the same way) and the whole script is appended as one final argument
//! for the remote login shell to run, exactly as the old tool did. Scripts are
//! bytes, not strings, because paths need not be UTF-8; [`quote`] makes any
//! byte string a single POSIX shell word. [`Remote::spawn`] streams the
//! child's stdout through [`std::io::Read`] while a thread drains its stderr
//! into a bounded tail, and [`RemoteChild::finish`] turns a non-zero exit or a
//! death by signal (including ssh's exit 255 when the connection drops) into a
//! [`CommandFailed`] error carrying that stderr. The remote login shell must be
//! POSIX-compatible (sh, dash, bash, zsh…), since the quoting targets it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

/// How many bytes of a child's stderr are kept (the most recent ones).
pub const STDERR_KEEP: usize = 64 * 1024;

/// How long `finish` waits, after the child exited, for its stderr to reach
/// end of file. A lingering grandchild (an ssh ControlPersist master, a
/// backgrounded job) may hold stderr open forever; past this we stop waiting
/// and report what was captured.
const STDERR_GRACE: Duration = Duration::from_secs(2);

/// Where scripts run: locally under `sh -c`, or through a command prefix
/// such as `ssh -p 22 root@host` that gets the script as its last argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    prefix: Vec<String>,
}

impl Remote {
    /// Builds a `Remote` from the config's `ssh_command` value, split with
    /// POSIX shell rules. An empty (or all-blank) value means local.
    pub fn new(ssh_command: &str) -> Result<Remote> {
        let prefix = shell_words::split(ssh_command)
            .with_context(|| format!("config key ssh_command: cannot split {ssh_command:?} into words"))?;
        Ok(Remote { prefix })
    }

    /// True when scripts run on this machine under `sh -c`.
    pub fn is_local(&self) -> bool {
        self.prefix.is_empty()
    }

    /// The program that will be started: `sh` when local, else the first word.
    pub fn program(&self) -> &str {
        self.prefix.first().map_or("sh", String::as_str)
    }

    /// The unstarted command for `script`, for callers that need their own
    /// stdio setup (for example a restore feeding the remote's stdin).
    pub fn command(&self, script: &[u8]) -> Command {
        let script = OsString::from_vec(script.to_vec());
        let mut cmd = Command::new(self.program());
        match self.prefix.split_first() {
            None => cmd.arg("-c"),
            Some((_, args)) => cmd.args(args),
        };
        cmd.arg(script);
        cmd
    }

    /// Starts `script` with stdin null, stdout piped for reading and stderr
    /// drained on a thread. Read the child to end of file, then call
    /// [`RemoteChild::finish`]. The child runs in its own process group, so
    /// an operator's Ctrl-C reaches tapeop (which finishes the job) and not
    /// the data stream.
    pub fn spawn(&self, script: &[u8]) -> Result<RemoteChild> {
        let mut cmd = self.command(script);
        cmd.process_group(0);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().with_context(|| format!("cannot start `{}` (from ssh_command)", self.program()))?;
        if let Some(out) = &child.stdout {
            // A 1 MiB pipe (the unprivileged maximum) instead of 64 KiB: the
            // source's 256 KiB records then pass in one write each. Best effort.
            let _ = nix::fcntl::fcntl(out, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        }
        RemoteChild::start(child)
    }

    /// Runs `script` to completion and returns its whole stdout; meant for
    /// small outputs. Fails like [`RemoteChild::finish`].
    pub fn run(&self, script: &[u8]) -> Result<Vec<u8>> {
        let mut child = self.spawn(script)?;
        let mut out = Vec::new();
        let read = child.read_to_end(&mut out);
        child.finish()?;
        read.context("reading the remote command's output")?;
        Ok(out)
    }
}

/// Bytes asked for the pipe from the remote command (`F_SETPIPE_SZ`).
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Quotes `bytes` as one POSIX shell word, byte-exact, with shlex's quoter
/// (bare when nothing needs quoting, else single or double quotes). A NUL,
/// which no argument or path can hold, passes through as it is, and the
/// command then fails to start.
pub fn quote(bytes: &[u8]) -> Vec<u8> {
    // With NUL allowed the quoter has no error left; an empty word would
    // only make the command fail, never run something else.
    shlex::bytes::Quoter::new().allow_nul(true).quote(bytes).map(|w| w.into_owned()).unwrap_or_default()
}

/// A remote command that exited non-zero or died by a signal. It travels
/// inside `anyhow::Error`; `downcast_ref::<CommandFailed>()` gets it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailed {
    /// The exit code, when the child exited (ssh uses 255 for a lost link).
    pub code: Option<i32>,
    /// The signal number, when the child was killed by one.
    pub signal: Option<i32>,
    /// The last [`STDERR_KEEP`] bytes of stderr, lossily decoded and trimmed.
    pub stderr: String,
}

impl CommandFailed {
    fn from_status(status: ExitStatus, stderr: String) -> CommandFailed {
        CommandFailed { code: status.code(), signal: status.signal(), stderr }
    }

    fn status_text(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("killed by {}", signal_name(sig)),
            (None, None) => "unknown status".to_string(),
        }
    }
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote command failed ({})", self.status_text())?;
        if self.stderr.is_empty() { write!(f, " with no error output") } else { write!(f, ": {}", self.stderr) }
    }
}

impl std::error::Error for CommandFailed {}

fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

/// The most recent bytes of a child's stderr.
#[derive(Debug, Default)]
struct Tail {
    bytes: VecDeque<u8>,
    dropped: bool,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(STDERR_KEEP);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.dropped = true;
        }
    }

    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let text = String::from_utf8_lossy(&[a, b].concat()).trim().to_string();
        if self.dropped { format!("[earlier stderr dropped] {text}") } else { text }
    }
}

fn lock(tail: &Mutex<Tail>) -> MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads `stderr` to end of file into `tail`. `_done` is dropped on return,
/// which tells the receiver the drain is over.
fn drain(mut stderr: ChildStderr, tail: Arc<Mutex<Tail>>, _done: mpsc::Sender<()>) {
    let mut buf = [0u8; 8192];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => lock(&tail).push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// A started script: read its stdout through [`Read`], then call
/// [`finish`](RemoteChild::finish). Dropping it unfinished kills and reaps
/// the child.
#[derive(Debug)]
pub struct RemoteChild {
    child: Child,
    stdout: Option<ChildStdout>,
    tail: Arc<Mutex<Tail>>,
    drained: mpsc::Receiver<()>,
    status: Option<ExitStatus>,
}

impl RemoteChild {
    fn start(mut child: Child) -> Result<RemoteChild> {
        let stdout = child.stdout.take();
        let stderr = child.stderr.take().context("child stderr was not piped")?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        let (done, drained) = mpsc::channel();
        let shared = Arc::clone(&tail);
        let started = thread::Builder::new().name("remote-stderr".into()).spawn(move || drain(stderr, shared, done));
        let mut rc = RemoteChild { child, stdout, tail, drained, status: None };
        if let Err(e) = started {
            rc.kill()?;
            return Err(e).context("cannot start the stderr reader thread");
        }
        Ok(rc)
    }

    /// The child's process id (of the local program, e.g. `ssh`).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The stderr captured so far (the last [`STDERR_KEEP`] bytes), trimmed.
    /// It may lag behind the child (the drain runs on a thread); the error
    /// from `finish` carries the complete tail.
    pub fn stderr_text(&self) -> String {
        lock(&self.tail).text()
    }

    /// Abandons the stream: closes stdout, kills the child with SIGKILL
    /// (unless it already exited) and reaps it. A later `finish` reports the
    /// kill as an error unless the child had exited cleanly before.
    pub fn kill(&mut self) -> Result<()> {
        self.stdout = None;
        if self.status.is_none() {
            // Fails only if the child is already reaped, which `status` rules out.
            let _ = self.child.kill();
            self.reap()?;
        }
        Ok(())
    }

    /// Closes stdout, waits for the child and its stderr, and fails with a
    /// [`CommandFailed`] on a non-zero exit or a death by signal. Call it
    /// after reading stdout to end of file: closing it early makes a child
    /// that is still writing die of SIGPIPE.
    pub fn finish(mut self) -> Result<()> {
        self.stdout = None;
        let status = self.reap()?;
        if status.success() {
            return Ok(());
        }
        // Disconnected (drain ended) or timed out: either way, stop waiting.
        let _ = self.drained.recv_timeout(STDERR_GRACE);
        Err(CommandFailed::from_status(status, self.stderr_text()).into())
    }

    fn reap(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.child.wait().context("waiting for the remote command")?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Read for RemoteChild {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stdout.as_mut() {
            Some(stdout) => stdout.read(buf),
            None => Ok(0),
        }
    }
}

impl Drop for RemoteChild {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn quote_shapes() {
        assert_eq!(quote(b""), b"''");
        assert_eq!(quote(b"plain/name.txt"), b"plain/name.txt");
        assert_eq!(quote(b"a b"), b"'a b'");
        assert_eq!(quote(b"it's"), b"\"it's\"");
        assert_eq!(quote(b"bad\xffname"), b"'bad\xffname'");
    }

    #[test]
    fn bad_quoting_names_the_key() {
        let err = Remote::new("ssh 'unterminated").unwrap_err();
        assert!(format!("{err:#}").contains("ssh_command"), "{err:#}");
    }

    #[test]
    fn empty_is_local_and_words_are_a_prefix() {
        assert!(Remote::new("").unwrap().is_local());
        let remote = Remote::new("ssh -p '2 2' host").unwrap();
        assert!(!remote.is_local());
        let cmd = remote.command(b"echo 'a b'; ls");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(cmd.get_program(), "ssh");
        assert_eq!(args, ["-p", "2 2", "host", "echo 'a b'; ls"]);
    }

    #[test]
    fn failure_carries_exit_code_and_stderr() {
        let remote = Remote::new("").unwrap();
        let script = b"echo 'tar: /x: Cannot open: No such file or directory' >&2; exit 2";
        let err = remote.run(script).unwrap_err();
        assert_eq!(err.to_string(), "remote command failed (exit 2): tar: /x: Cannot open: No such file or directory");
        let failed = err.downcast_ref::<CommandFailed>().unwrap();
        assert_eq!((failed.code, failed.signal), (Some(2), None));
    }

    #[test]
    fn failure_without_stderr_and_death_by_signal() {
        let remote = Remote::new("sh -c").unwrap();
        let err = remote.run(b"exit 255").unwrap_err();
        assert_eq!(err.to_string(), "remote command failed (exit 255) with no error output");
        let err = remote.run(b"echo dying >&2; kill -9 $$").unwrap_err();
        assert_eq!(err.to_string(), "remote command failed (killed by SIGKILL): dying");
        assert_eq!(err.downcast_ref::<CommandFailed>().unwrap().signal, Some(9));
    }

    #[test]
    fn missing_program_is_a_start_error() {
        let remote = Remote::new("/nonexistent/ssh host").unwrap();
        let err = remote.spawn(b"true").unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/ssh"), "{err:#}");
    }

    #[test]
    fn stderr_keeps_only_the_tail() {
        let remote = Remote::new("").unwrap();
        let script = b"head -c 300000 /dev/zero | tr '\\0' a >&2; echo END >&2; exit 1";
        let err = remote.run(script).unwrap_err();
        let failed = err.downcast_ref::<CommandFailed>().unwrap();
        assert!(failed.stderr.ends_with("END"));
        assert!(failed.stderr.starts_with("[earlier stderr dropped]"));
        assert!(failed.stderr.len() <= STDERR_KEEP + 64);
    }

    /// Runs `f` on a thread and fails (instead of hanging) past `limit`.
    fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(f()));
        rx.recv_timeout(limit).expect("test deadlocked or timed out")
    }

    fn count_to_eof(r: &mut impl Read) -> u64 {
        io::copy(r, &mut io::sink()).unwrap()
    }

    #[test]
    fn large_stdout_with_large_stderr_streams() {
        let (n, err) = within(Duration::from_secs(120), || {
            let remote = Remote::new("sh -c").unwrap();
            let script = b"(yes 'stderr noise' | head -c 20000000 >&2) & \
                           head -c 50000000 /dev/zero; wait; echo LAST >&2; exit 3";
            let mut child = remote.spawn(script).unwrap();
            let n = count_to_eof(&mut child);
            (n, child.finish().unwrap_err())
        });
        assert_eq!(n, 50_000_000);
        let failed = err.downcast_ref::<CommandFailed>().unwrap();
        let tail = &failed.stderr[failed.stderr.len() - 40..];
        assert!(failed.stderr.ends_with("LAST"), "{tail:?}");
        assert!(failed.stderr.contains("stderr noise\nstderr noise"), "{tail:?}");
        assert!(failed.stderr.len() <= STDERR_KEEP + 64);
        assert_eq!(failed.code, Some(3));
    }

    #[test]
    fn kill_abandons_an_endless_stream() {
        let mut child = Remote::new("").unwrap().spawn(b"yes").unwrap();
        let mut buf = [0u8; 4096];
        child.read_exact(&mut buf).unwrap();
        let start = Instant::now();
        child.kill().unwrap();
        assert_eq!(child.read(&mut buf).unwrap(), 0);
        assert!(child.finish().is_err());
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn drop_reaps_an_unfinished_child() {
        let child = Remote::new("").unwrap().spawn(b"exec sleep 1000").unwrap();
        let pid = child.id();
        drop(child);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn lingering_grandchild_does_not_block_finish() {
        let (ok, failed) = within(Duration::from_secs(60), || {
            let remote = Remote::new("").unwrap();
            // The background sleeps keep stderr open after sh exits.
            let ok = remote.run(b"echo ok; exec >/dev/null; sleep 20 & exit 0");
            let failed = remote.run(b"echo bad >&2; exec >/dev/null; sleep 20 & exit 4");
            (ok.unwrap(), failed.unwrap_err().to_string())
        });
        assert_eq!(ok, b"ok\n");
        assert_eq!(failed, "remote command failed (exit 4): bad");
    }
}
