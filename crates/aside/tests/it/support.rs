//! The harness: one private state directory (and daemon) per test, the real `aside` binary,
//! deadlines instead of sleeps, and a guard that leaves no process of the test behind.
//!
//! Every CLI started here carries the environment variable [`MARKER_VAR`] with a value unique
//! to the test. The CLI hands its environment to the daemon it launches and to every task,
//! so the marker finds exactly this test's processes in /proc, and nobody else's.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_aside");
pub const MARKER_VAR: &str = "ASIDE_IT_MARKER";
/// The longest any single CLI call may take before the test gives up on it.
pub const CLI_DEADLINE: Duration = Duration::from_secs(90);
/// How long a condition that should become true soon may take on a loaded machine.
pub const SOON: Duration = Duration::from_secs(20);

/// What a finished CLI call left.
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 4000;
        let stdout = String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(SHOWN)]);
        f.debug_struct("Out")
            .field("code", &self.code)
            .field("stdout", &stdout)
            .field("stdout_bytes", &self.stdout.len())
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl Out {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?}\nstderr: {}",
                self.text(),
                self.stderr
            )
        })
    }
}

/// One test's aside: a temporary ASIDE_HOME, HOME and XDG directories, and the daemon the
/// CLI starts there. Dropping it stops that daemon and kills whatever the test left running.
pub struct Aside {
    /// ASIDE_HOME, also HOME and the tasks' working directory.
    pub home: PathBuf,
    pub marker: String,
    /// A daemon the test started itself (see [`Aside::spawn_daemon`]).
    own_daemon: Mutex<Option<Child>>,
    /// A small file system mounted on the home (see [`Aside::on_small_disk`]).
    mounted: bool,
    // Dropped last, after the guard has stopped everything.
    _dir: tempfile::TempDir,
}

impl Aside {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // Short: the socket path must stay under 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("as.")
            .tempdir_in("/tmp")
            .expect("temporary directory");
        let home = dir.path().to_path_buf();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let marker = format!(
            "aside-it-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        Self {
            home,
            marker,
            own_daemon: Mutex::new(None),
            mounted: false,
            _dir: dir,
        }
    }

    /// A home on a tmpfs of `mib` MiB of its own, to fill; None where mounting is not
    /// allowed (not root).
    pub fn on_small_disk(mib: u32) -> Option<Self> {
        let mut a = Self::new();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&a.home)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        a.mounted = ok;
        ok.then_some(a)
    }

    /// A fresh environment whose daemon will read `config` as its config.toml.
    pub fn with_config(config: &str) -> Self {
        let a = Self::new();
        a.write_config(config);
        a
    }

    pub fn write_config(&self, config: &str) {
        std::fs::write(self.home.join("config.toml"), config).expect("write config.toml");
    }

    /// A path inside the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.home.join(name)
    }

    pub fn socket(&self) -> PathBuf {
        self.home.join("aside.sock")
    }

    pub fn log_file(&self, id: &str) -> PathBuf {
        self.home.join("logs").join(format!("{id}.log"))
    }

    /// `aside ARGS` with this test's environment (and nothing inherited but PATH).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(&self.home)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("ASIDE_HOME", &self.home)
            .env("XDG_STATE_HOME", self.home.join("xdg-state"))
            .env("XDG_CONFIG_HOME", self.home.join("xdg-config"))
            .env("XDG_RUNTIME_DIR", &self.home)
            .env("LC_ALL", "C")
            .env(MARKER_VAR, &self.marker)
            .stdin(Stdio::null());
        c
    }

    /// Runs `aside ARGS` to its end (at most [`CLI_DEADLINE`]).
    pub fn run(&self, args: &[&str]) -> Out {
        self.spawn(args).finish()
    }

    /// Runs `aside ARGS` and expects exit code 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, 0, "aside {args:?} failed: {out:?}");
        out
    }

    /// Runs `aside ARGS` and reads its stdout as JSON, whatever the exit code.
    pub fn json(&self, args: &[&str]) -> Value {
        self.run(args).json()
    }

    /// Starts `aside ARGS` in the background, capturing its output as it comes.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        self.spawn_cmd(self.cmd(args), args)
    }

    pub fn spawn_cmd(&self, mut cmd: Command, what: &[&str]) -> Spawned {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn aside");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().expect("stdout"), stdout.clone()),
            pump(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Spawned {
            child,
            stdout,
            stderr,
            readers,
            what: what.join(" "),
        }
    }

    /// `aside run --bg -- sh -c SCRIPT`: the new task's id.
    pub fn bg(&self, script: &str) -> String {
        self.bg_with(&[], script)
    }

    /// `aside run --bg FLAGS -- sh -c SCRIPT`: the new task's id.
    pub fn bg_with(&self, flags: &[&str], script: &str) -> String {
        let mut args = vec!["run", "--bg"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let out = self.ok(&args);
        let id = out.text().trim().to_string();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "run --bg printed {:?}, not an id",
            out.text()
        );
        id
    }

    /// The task's record (`aside info ID --json`).
    pub fn info(&self, id: &str) -> Value {
        let out = self.run(&["info", id, "--json"]);
        assert_eq!(
            out.code,
            0,
            "aside info {id}: {out:?}; daemon.log ends:\n{}",
            self.daemon_log_tail()
        );
        out.json()
    }

    /// The last lines of the daemon's log, to show with a failure.
    pub fn daemon_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.home.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn state(&self, id: &str) -> String {
        self.info(id)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits for the task to end (`aside wait ID --json`) and returns its record.
    pub fn wait_end(&self, id: &str) -> Value {
        let out = self.run(&["wait", id, "--timeout", "60s", "--json"]);
        assert_ne!(out.code, 148, "task {id} still runs after 60 s: {out:?}");
        let v = out.json();
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_else(|| panic!("wait --json printed {v}"))
    }

    /// The task's whole output (`aside logs ID`), as bytes.
    pub fn logs(&self, id: &str) -> Vec<u8> {
        let out = self.run(&["logs", id]);
        assert_eq!(out.code, 0, "aside logs {id}: {out:?}");
        out.stdout
    }

    /// `aside ls --all --json`, as the list of records.
    pub fn list_all(&self) -> Vec<Value> {
        let out = self.ok(&["ls", "--all", "--json"]);
        out.json().as_array().cloned().unwrap_or_default()
    }

    /// Waits until `aside ls --json` shows `count` live tasks; returns them.
    pub fn wait_live(&self, count: usize) -> Vec<Value> {
        let mut last = Vec::new();
        let found = eventually(SOON, || {
            last = self
                .ok(&["ls", "--json"])
                .json()
                .as_array()
                .cloned()
                .unwrap_or_default();
            last.iter().filter(|t| is_live(t)).count() == count
        });
        assert!(found, "expected {count} live tasks, ls shows {last:?}");
        last.into_iter().filter(is_live).collect()
    }

    /// Waits until the task is in `state`.
    pub fn wait_state(&self, id: &str, state: &str) -> Value {
        let mut last = Value::Null;
        let found = eventually(SOON, || {
            last = self.info(id);
            last["state"] == state
        });
        assert!(found, "task {id} never became {state}: {last}");
        last
    }

    /// The pid of the daemon serving this directory, if one answers.
    pub fn daemon_pid(&self) -> Option<i32> {
        let out = self
            .spawn(&["daemon", "status", "--json"])
            .finish_within(Duration::from_secs(20))?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (out.code == 0)
            .then(|| v["pid"].as_i64())
            .flatten()
            .map(|p| p as i32)
    }

    /// Kills the daemon with SIGKILL and waits until it is gone; its pid.
    pub fn kill_daemon(&self) -> i32 {
        let daemon = self.daemon_pid().expect("daemon pid");
        kill(daemon, libc::SIGKILL);
        assert_all_dead(&[daemon], SOON, "the killed daemon");
        daemon
    }

    /// The pid of the supervisor of a running task: the parent of its first process.
    pub fn supervisor_of(&self, id: &str) -> i32 {
        let pid = self.info(id)["pid"]
            .as_i64()
            .expect("a running task has a pid") as i32;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the task runs");
        let after = stat.rsplit_once(')').expect("a stat line").1;
        after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a parent pid")
    }

    /// A shell loop that returns once the file `name` exists in the test's directory: a gate
    /// the test opens with [`Aside::open`], so tasks wait on the test, not on the clock.
    pub fn gate(&self, name: &str) -> String {
        let p = self.path(name);
        format!("while [ ! -e '{}' ]; do sleep 0.05; done", p.display())
    }

    pub fn open(&self, name: &str) {
        std::fs::write(self.path(name), b"").expect("open gate");
    }

    /// Waits for a pid file the task writes (`echo $$ > FILE`) and returns the pid.
    pub fn read_pid(&self, name: &str) -> i32 {
        let p = self.path(name);
        let mut pid = None;
        let found = eventually(SOON, || {
            pid = std::fs::read_to_string(&p)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            pid.is_some()
        });
        assert!(found, "the task never wrote its pid to {}", p.display());
        pid.unwrap_or_default()
    }

    /// Writes an executable shell script into the test's directory; returns its path.
    pub fn script(&self, name: &str, body: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
        p.display().to_string()
    }

    /// Live (non-zombie) processes that carry this test's marker: its CLIs, its daemon and
    /// every process of its tasks.
    pub fn marked_pids(&self) -> Vec<i32> {
        let needle = format!("{MARKER_VAR}={}", self.marker);
        let me = std::process::id() as i32;
        let mut found = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if pid == me || is_dead(pid) {
                continue;
            }
            let has = std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false);
            if has && !is_dead(pid) {
                found.push(pid);
            }
        }
        found
    }

    /// Live daemon processes (`aside daemon run`) of this test.
    pub fn daemon_processes(&self) -> Vec<i32> {
        self.marked_pids()
            .into_iter()
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.windows(2).any(|w| w[0] == b"daemon" && w[1] == b"run")
            })
            .collect()
    }

    /// Starts the daemon directly in `sh -c "PREFIX; exec aside daemon run"` (to give it
    /// limits of its own) and waits until its socket answers.
    pub fn spawn_daemon(&self, prefix: &str) {
        self.spawn_daemon_wrapped(&[], prefix);
    }

    /// [`Aside::spawn_daemon`] under a wrapper command: `WRAPPER... sh -c "PREFIX; exec aside
    /// daemon run"` (to give it a namespace of its own).
    pub fn spawn_daemon_wrapped(&self, wrapper: &[&str], prefix: &str) {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("sh");
                c
            }
            None => Command::new("sh"),
        };
        cmd.arg("-c")
            .arg(format!(
                "{prefix}; exec \"$0\" daemon run 2>>\"$ASIDE_HOME/own-daemon.log\""
            ))
            .arg(BIN);
        // Same environment as a CLI call.
        let template = self.cmd(&[]);
        cmd.env_clear().current_dir(&self.home).stdin(Stdio::null());
        for (k, v) in template.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let child = cmd.spawn().expect("spawn the daemon");
        *self.own_daemon.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let up = eventually(SOON, || UnixStream::connect(self.socket()).is_ok());
        assert!(
            up,
            "the daemon started by the test never answered: {}",
            std::fs::read_to_string(self.path("own-daemon.log")).unwrap_or_default()
        );
    }

    /// Opens a raw JSON-RPC connection to the daemon (which must be running).
    pub fn wire(&self) -> Wire {
        Wire::connect(&self.socket())
    }

    fn teardown(&self) -> Vec<(i32, String)> {
        let daemon = self.daemon_pid().or_else(|| {
            std::fs::read_to_string(self.home.join("daemon.lock"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        });
        let stopped = self
            .spawn(&["daemon", "stop"])
            .finish_within(Duration::from_secs(60))
            .is_some_and(|o| o.code == 0);
        if !stopped {
            if let Some(pid) = daemon.filter(|p| *p > 1 && !is_dead(*p)) {
                kill(pid, libc::SIGKILL);
            }
        }
        if let Some(mut child) = self
            .own_daemon
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            if wait_child(&mut child, Duration::from_secs(30)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        remove_task_cgroups(&self.home);
        // Whatever still carries the marker outlived its test: note it, then kill it.
        let mut left = Vec::new();
        eventually(Duration::from_secs(5), || {
            left = self.marked_pids();
            left.is_empty()
        });
        let described = left
            .iter()
            .map(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                    .unwrap_or_default();
                (*pid, cmd)
            })
            .collect();
        for pid in left {
            kill(pid, libc::SIGKILL);
        }
        described
    }
}

impl Default for Aside {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        let leftovers = self.teardown();
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.home).status();
        }
        if !leftovers.is_empty() && !std::thread::panicking() {
            panic!("processes outlived the test (now killed): {leftovers:?}");
        }
    }
}

fn is_live(t: &Value) -> bool {
    matches!(t["state"].as_str(), Some("queued" | "running"))
}

fn pump(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// A CLI running in the background, its output collected as it arrives.
pub struct Spawned {
    pub child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    what: String,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Its stdout so far.
    pub fn stdout_now(&self) -> Vec<u8> {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Waits until its stdout contains `needle`.
    pub fn wait_stdout(&self, needle: &[u8]) {
        let found = eventually(SOON, || {
            self.stdout_now().windows(needle.len()).any(|w| w == needle)
        });
        assert!(
            found,
            "aside {} never printed {:?}; stdout {:?}, stderr {:?}",
            self.what,
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&self.stdout_now()),
            self.stderr_now()
        );
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn signal(&self, sig: i32) {
        kill(self.pid(), sig);
    }

    /// Waits for the end, at most [`CLI_DEADLINE`]; panics past it.
    pub fn finish(self) -> Out {
        let what = self.what.clone();
        self.finish_within(CLI_DEADLINE)
            .unwrap_or_else(|| panic!("aside {what} did not end within {CLI_DEADLINE:?}"))
    }

    /// Waits for the end, at most `limit`; kills the process and returns `None` past it.
    pub fn finish_within(mut self, limit: Duration) -> Option<Out> {
        let status = wait_child(&mut self.child, limit);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The pipes close when the CLI exits, unless something it started holds them: then
        // take what arrived rather than hang.
        let readers: Vec<_> = self.readers.drain(..).collect();
        let closed = eventually(Duration::from_secs(10), || {
            readers.iter().all(|r| r.is_finished())
        });
        if closed {
            for r in readers {
                let _ = r.join();
            }
        } else {
            eprintln!(
                "aside {}: its output pipes stayed open after it exited",
                self.what
            );
        }
        let status = status?;
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap_or_else(|p| p.into_inner()));
        let stderr =
            String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner()))
                .into_owned();
        Some(Out {
            code,
            stdout,
            stderr,
        })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `f` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(10);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Gone, or a zombie (the container's pid 1 does not reap).
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let zombie = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
                .unwrap_or(true);
            // A killed process's first thread is a zombie while its other threads still
            // exit, with its descriptors (its socket, its lock) still open.
            let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|d| d.count())
                .unwrap_or(0);
            zombie && threads <= 1
        }
    }
}

/// Sends a signal to one process the test started.
pub fn kill(pid: i32, sig: i32) {
    assert!(pid > 1, "refusing to signal pid {pid}");
    // SAFETY: kill takes plain integers.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Asserts that none of `pids` is alive, waiting up to `limit` for them to go.
pub fn assert_all_dead(pids: &[i32], limit: Duration, what: &str) {
    let gone = eventually(limit, || pids.iter().all(|p| is_dead(*p)));
    let alive: Vec<i32> = pids.iter().copied().filter(|p| !is_dead(*p)).collect();
    assert!(
        gone,
        "{what}: processes still alive after {limit:?}: {alive:?} (of {pids:?})"
    );
}

/// A raw JSON-RPC connection: newline-delimited JSON on the daemon's socket.
pub struct Wire {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Wire {
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
        stream.set_read_timeout(Some(SOON)).expect("read timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Self {
            writer: stream,
            reader,
            next_id: 1000,
        }
    }

    /// Sends bytes as they are, followed by a newline.
    pub fn send_line(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the daemon");
        self.writer.write_all(b"\n").expect("write to the daemon");
    }

    pub fn send(&mut self, v: &Value) {
        self.send_line(&serde_json::to_vec(v).expect("encode"));
    }

    /// The next message from the daemon (response or notification).
    pub fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("read from the daemon");
        assert!(n > 0, "the daemon closed the connection");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the daemon sent bad JSON ({e}): {line:?}"))
    }

    /// The next response (skipping notifications).
    pub fn response(&mut self) -> Value {
        loop {
            let v = self.recv();
            if v.get("method").is_none() {
                return v;
            }
        }
    }

    /// Sends a request and returns its whole response (`result` or `error`).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let v = self.response();
            if v["id"] == id {
                return v;
            }
        }
    }

    /// Sends a request and returns its result, failing on an error.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let v = self.request(method, params);
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"].clone()
    }

    pub fn hello(&mut self) -> Value {
        self.call("hello", json!({"protocol_version": "1.0"}))
    }

    pub fn writer(&mut self) -> &mut UnixStream {
        &mut self.writer
    }
}

/// Removes the (empty) task cgroups a daemon killed by the test left: only a running daemon
/// removes them, and no daemon of this home runs again.
fn remove_task_cgroups(home: &Path) {
    let Ok(line) = std::fs::read_to_string(home.join("cgroup")) else {
        return;
    };
    let dir = PathBuf::from(line.trim_end());
    let ours = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("aside-"));
    if !ours {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("task-") || name.starts_with("sup-") {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(&dir);
}

/// `aside mcp` run from `cmd` with its stdin and stdout piped, for an MCP client: the runtime
/// (a worker thread keeps the client's I/O going while the test blocks elsewhere), the child
/// (killed when dropped), and its stdout and stdin.
pub fn spawn_mcp(
    cmd: Command,
) -> (
    tokio::runtime::Runtime,
    tokio::process::Child,
    tokio::process::ChildStdout,
    tokio::process::ChildStdin,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child = rt.block_on(async { cmd.spawn() }).expect("spawn aside mcp");
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take().expect("stdin");
    (rt, child, stdout, stdin)
}

/// Waits until supervisor `pid` is idle between two tasks: its task's things are gone (no
/// signalfd is open). The daemon puts it back with the idle ones right after its Ack, which
/// may come a moment after that: a short pause covers it.
pub fn until_idle(pid: i32) {
    assert!(
        eventually(SOON, || std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .all(|e| !std::fs::read_link(e.path())
                .is_ok_and(|l| l.to_string_lossy().contains("signalfd")))),
        "supervisor {pid} never went idle"
    );
    std::thread::sleep(Duration::from_millis(200));
}
