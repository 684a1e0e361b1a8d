//! A private OpenSSH server for integration tests. `Sshd::start()` makes a
//! temp dir with its own host and client ed25519 keys, an authorized_keys and
//! an sshd_config listening on 127.0.0.1 at a free port, runs
//! `/usr/sbin/sshd -D -e -E LOG -f CONFIG`, and returns once a real ssh login
//! has succeeded. `ssh_command()` is the value for the config's `ssh_command`
//! key; `connections()` counts logins since start (from "Accepted publickey"
//! lines in the log); `stop()` (and drop) kills the server and every session
//! it started, like a host going away. Missing OpenSSH binaries make `start`
//! panic: these tests never skip silently.
//!
//! Use it from an integration test with `mod support;` and `use support::sshd;`.

#![allow(dead_code)]

use std::fs;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SSHD: &str = "/usr/sbin/sshd";
const MISSING: &str = "sshd tests need openssh-server: apt-get install openssh-server";
/// How long `start` may take for sshd to listen and accept a first login.
const READY_DEADLINE: Duration = Duration::from_secs(20);
/// Pause between readiness probes (a bounded poll, not a synchronising sleep).
const POLL_PAUSE: Duration = Duration::from_millis(25);
/// How many free ports `start` tries if sshd loses a race for one.
const PORT_ATTEMPTS: usize = 5;
/// Marker sshd logs (LogLevel VERBOSE or lower) for each key login.
const ACCEPTED: &str = "Accepted publickey";

/// A running private sshd; killed (with its sessions) on drop.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    baseline: usize,
}

impl Sshd {
    /// Starts a server and waits until an ssh login succeeds. Panics if
    /// OpenSSH is missing or the server does not come up in time.
    pub fn start() -> Sshd {
        require_openssh();
        ensure_privsep_dir();
        let dir = tempfile::Builder::new().prefix("sshd-test-").tempdir().unwrap();
        make_keys(dir.path());
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match Sshd::launch(&dir, port) {
                Ok(child) => return Sshd::ready(dir, child, port),
                Err(why) => failures.push(why),
            }
        }
        panic!("sshd did not start after {PORT_ATTEMPTS} ports:\n{}", failures.join("\n"));
    }

    /// The `ssh_command` config value that logs in to this server as root.
    pub fn ssh_command(&self) -> String {
        let key = self.dir.path().join("client_ed25519");
        let key = shell_words::quote(key.to_str().expect("temp dir path is UTF-8"));
        format!(
            "ssh -F /dev/null -p {} -i {key} -o IdentitiesOnly=yes \
             -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=10 root@127.0.0.1",
            self.port
        )
    }

    /// `ssh_command()` split into words, ready for `Command::new(&v[0]).args(&v[1..])`.
    pub fn ssh_words(&self) -> Vec<String> {
        shell_words::split(&self.ssh_command()).unwrap()
    }

    /// Runs `script` on the server over a fresh ssh connection.
    pub fn ssh(&self, script: &str) -> Output {
        let words = self.ssh_words();
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]).arg(script).stdin(Stdio::null());
        cmd.output().expect("cannot run ssh")
    }

    /// Logins accepted since `start` returned (its readiness probe excluded).
    pub fn connections(&self) -> usize {
        count_accepted(&self.log_text()) - self.baseline
    }

    /// The port sshd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temp dir (keys, config, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// sshd's log so far (`-E` file), for diagnostics.
    pub fn log_text(&self) -> String {
        read_lossy(&self.dir.path().join("sshd.log"))
    }

    /// True until `stop` (or a crash) ends the server.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Kills the server and every session process under it, like the host
    /// going away: open connections drop, new ones are refused. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        // Frozen, the listener can fork no new sessions while we kill them.
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGSTOP);
        for _ in 0..5 {
            let tree = descendants(pid);
            if tree.is_empty() {
                break;
            }
            tree.into_iter().for_each(sigkill);
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Writes the config for `port` and spawns sshd; `Err` if it dies early
    /// (typically because the port was taken meanwhile).
    fn launch(dir: &tempfile::TempDir, port: u16) -> Result<Child, String> {
        let config = dir.path().join("sshd_config");
        fs::write(&config, sshd_config(dir.path(), port)).unwrap();
        let log = dir.path().join("sshd.log");
        let _ = fs::remove_file(&log);
        let stderr = fs::File::create(dir.path().join("sshd.stderr")).unwrap();
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-E"])
            .arg(&log)
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e}; {MISSING}"));
        match wait_listening(&mut child, port) {
            Ok(()) => Ok(child),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("port {port}: {why}\n{}", diagnostics(dir.path())))
            }
        }
    }

    /// Wraps a listening sshd and waits for a first successful login.
    fn ready(dir: tempfile::TempDir, child: Child, port: u16) -> Sshd {
        let mut sshd = Sshd { dir, port, child: Some(child), baseline: 0 };
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let out = sshd.ssh("true");
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline || !sshd.is_running() {
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                panic!("ssh login to test sshd failed: {stderr}\n{}", diagnostics(sshd.dir()));
            }
            thread::sleep(POLL_PAUSE);
        }
        sshd.baseline = count_accepted(&sshd.log_text());
        sshd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Panics with the install hint unless sshd, ssh-keygen and ssh exist.
fn require_openssh() {
    assert!(Path::new(SSHD).exists(), "{SSHD} not found. {MISSING}");
    for tool in ["ssh-keygen", "ssh"] {
        match Command::new(tool).arg("-V").output() {
            Err(e) if e.kind() == ErrorKind::NotFound => panic!("{tool} not found. {MISSING}"),
            Err(e) => panic!("cannot run {tool}: {e}. {MISSING}"),
            Ok(_) => {}
        }
    }
}

/// sshd refuses to start without its privilege-separation directory.
fn ensure_privsep_dir() {
    let dir = Path::new("/run/sshd");
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Creates the host key, the client key and authorized_keys in `dir`.
fn make_keys(dir: &Path) {
    for name in ["host_ed25519", "client_ed25519"] {
        let status = Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-t", "ed25519", "-C", name, "-f"])
            .arg(dir.join(name))
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run ssh-keygen: {e}. {MISSING}"));
        assert!(status.success(), "ssh-keygen failed for {name}: {status}");
    }
    fs::copy(dir.join("client_ed25519.pub"), dir.join("authorized_keys")).unwrap();
}

/// A port that was free a moment ago (bind port 0, read it, release it).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let p = |name: &str| format!("\"{}\"", dir.join(name).display());
    let mut config = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host}\n\
         AuthorizedKeysFile {auth}\n\
         PidFile {pid}\n\
         PermitRootLogin yes\n\
         StrictModes no\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         UseDNS no\n\
         PrintMotd no\n\
         LogLevel VERBOSE\n\
         AcceptEnv none\n\
         MaxStartups 200\n\
         MaxSessions 200\n",
        host = p("host_ed25519"),
        auth = p("authorized_keys"),
        pid = p("sshd.pid"),
    );
    if has_source_penalties() {
        // OpenSSH >= 9.8 would otherwise refuse 127.0.0.1 after the dropped
        // or failed connections that tests provoke on purpose.
        config.push_str("PerSourcePenalties no\n");
    }
    config
}

/// Whether this sshd knows `PerSourcePenalties` (OpenSSH 9.8 and later).
fn has_source_penalties() -> bool {
    let out = Command::new(SSHD).arg("-V").output().expect(MISSING);
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let version = text.split("OpenSSH_").nth(1).unwrap_or("");
    let mut nums = version.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    (major, minor) >= (9, 8)
}

/// Polls until `port` accepts a TCP connection; `Err` if sshd exits first or
/// the deadline passes.
fn wait_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("sshd exited early ({status})"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("sshd did not listen in time".to_string());
        }
        thread::sleep(POLL_PAUSE);
    }
}

fn count_accepted(log: &str) -> usize {
    log.lines().filter(|l| l.contains(ACCEPTED)).count()
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

fn diagnostics(dir: &Path) -> String {
    let log = read_lossy(&dir.join("sshd.log"));
    let stderr = read_lossy(&dir.join("sshd.stderr"));
    format!("--- sshd log ---\n{log}--- sshd stderr ---\n{stderr}")
}

/// Live (non-zombie) processes below `root`, found through /proc.
fn descendants(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, _) in table.iter().filter(|(_, ppid)| *ppid == parent) {
            found.push(pid);
            frontier.push(pid);
        }
    }
    found
}

/// (pid, parent pid) of every live process.
fn process_table() -> Vec<(u32, u32)> {
    let entries = fs::read_dir("/proc").expect("/proc is needed to stop sshd sessions");
    let pids = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok());
    pids.filter_map(|pid| Some((pid, live_parent(pid)?))).collect()
}

/// The parent of `pid` from /proc/PID/stat, or `None` if gone or a zombie.
fn live_parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    (state != "Z").then_some(ppid)
}

fn sigkill(pid: u32) {
    // The pid may already be gone; that is the goal anyway.
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}
