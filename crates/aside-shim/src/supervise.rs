//! The supervisor's one loop: output in, exit status, the daemon's requests, a new daemon
//! connecting, and the timers of a stop.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use base64::Engine as _;

use crate::conn::{Conn, Incoming};
use crate::env::{BaseEnv, TaskEnv};
use crate::input::{self, Flushed, InputEnd};
use crate::listen::Listen;
use crate::log::{Log, Written};
use crate::spawn::{self, Spawned};
use crate::tree::{self, Tree};
use crate::wire::{Cause, End, Exit, FromShim, Launch, ToShim, LAUNCH, VERSION};

mod end;
mod launch;

pub(crate) use launch::serve;

/// Bytes of output moved before looking at anything else.
const PUMP_BUDGET: usize = 4 << 20;
const READ_CHUNK: usize = 64 << 10;
/// After SIGKILL, how long a stop waits for the tree to be gone before it gives up on it (a
/// process in uninterruptible sleep dies only when it wakes).
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often a stop looks again at what is left.
const STOP_TICK: Duration = Duration::from_millis(10);

/// A stop under way.
struct Stop {
    kill_at: Instant,
    /// SIGKILL was sent first at this moment.
    killing: Option<Instant>,
}

struct Shim {
    launch: Launch,
    tree: Tree,
    /// The task's first process, until it is reaped.
    child: Option<Pid>,
    exit: Option<(Exit, u64)>,
    pipe: Option<OwnedFd>,
    drain_until: Option<Instant>,
    stop: Option<Stop>,
    cause: Option<Cause>,
    log: Log,
    conn: Option<Conn>,
    /// Where a new daemon finds it; once the end is told, kept under the task's name for the
    /// next task, or gone.
    socket: Option<Listen>,
    signals: SignalFd,
    /// Output total last told to the connected daemon.
    reported: u64,
    /// The task's input, while it has one.
    input: Option<InputEnd>,
    /// Input done last told to the connected daemon.
    reported_input: u64,
    /// Input done through an input end now closed, or sent when there was none.
    input_gone: u64,
    end: Option<End>,
    /// Its processes were stopped (Pause) and not continued since.
    paused: bool,
    /// Its end, as told, said it can serve another task.
    reusable: bool,
    /// A daemon other than the one that launched it connected: it serves no other task.
    adopted: bool,
}

impl Shim {
    /// Starts the task. The error is the answer to send.
    fn new(l: Launch, kept: Option<Listen>, base: &BaseEnv) -> Result<Self, FromShim> {
        let fail = |error: String| FromShim::SpawnFailed {
            error,
            not_found: false,
        };
        if l.version != LAUNCH {
            return Err(fail(launch::other_shape(l.version)));
        }
        set_up_once().map_err(|e| fail(format!("blocking SIGCHLD: {e}")))?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| fail(format!("signalfd: {e}")))?;
        let log = Log::open(&l.logs, &l.log, l.cap, l.reserve)
            .map_err(|e| fail(format!("{}: {e}", l.logs)))?;
        // Bound before the command runs: a task that cannot be adopted does not start.
        let socket = match kept.and_then(|k| k.move_to(&l.socket)) {
            Some(s) => s,
            None => Listen::bind(&l.socket)
                .map_err(|e| fail(format!("cannot listen on {}: {e}", l.socket)))?,
        };
        let env = TaskEnv { base, own: &l.own };
        let Spawned { pid, output, input } = spawn::spawn(&l, env)?;
        let cgroup = l.cgroup.clone();
        let tag = env.get(tree::TAG_VAR).map(str::to_string);
        Ok(Self {
            tree: Tree {
                pgid: pid,
                cgroup,
                tag,
            },
            child: Some(Pid::from_raw(pid)),
            exit: None,
            pipe: Some(output),
            input,
            reported_input: 0,
            input_gone: 0,
            drain_until: None,
            stop: None,
            cause: None,
            log,
            conn: None,
            socket: Some(socket),
            signals,
            reported: 0,
            end: None,
            paused: false,
            reusable: false,
            adopted: false,
            launch: l,
        })
    }

    fn run(&mut self) -> i32 {
        // The task may have ended while its start had SIGCHLD unblocked (see `spawn`), its
        // signal not queued on the signalfd.
        self.reap_children();
        loop {
            if self.end.is_none() && self.exit.is_some() && self.pipe.is_none() && self.stopped() {
                let end = self.decide_end();
                match &mut self.conn {
                    Some(c) => {
                        // Nothing it could start is left (it is the subreaper of the tree),
                        // so nothing is left after the Ack either.
                        self.reusable = !self.adopted && crate::tree::childless();
                        c.send(&FromShim::Exited {
                            end,
                            reusable: self.reusable,
                        })
                    }
                    None => {
                        if let Some(code) = self.park_end() {
                            return code;
                        }
                    }
                }
            }
            let done = self.input_done();
            if let Some(c) = &mut self.conn {
                if self.log.total > self.reported && c.send_total(self.log.total) {
                    self.reported = self.log.total;
                }
                if done > self.reported_input && c.send_done(done) {
                    self.reported_input = done;
                }
                if !c.flush() {
                    // What the daemon said before it went (a stop, when it gave up waiting for
                    // this start) still counts.
                    if let Some(code) = self.read_daemon() {
                        return code;
                    }
                    self.conn = None;
                    if let Some(code) = self.park_end() {
                        return code;
                    }
                }
            }
            let timeout = self.timeout();
            let (pipe_ev, sig_ev, conn_ev, listen_ev, input_ev) = {
                let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
                let listen_at = self.socket.as_ref().map(|s| {
                    fds.push(PollFd::new(s.listener().as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let conn_at = self.conn.as_ref().map(|c| {
                    let mut flags = PollFlags::POLLIN;
                    if c.wants_write() {
                        flags |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(c.stream.as_fd(), flags));
                    fds.len() - 1
                });
                let pipe_at = self.pipe.as_ref().map(|p| {
                    fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let input_at = self.input.as_ref().filter(|i| i.wants_write()).map(|i| {
                    fds.push(PollFd::new(i.fd(), PollFlags::POLLOUT));
                    fds.len() - 1
                });
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        say(&format!("aside-shim: poll: {e}"));
                        std::thread::sleep(STOP_TICK);
                    }
                }
                let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
                (
                    pipe_at.is_some_and(ready),
                    ready(0),
                    conn_at.is_some_and(ready),
                    listen_at.is_some_and(ready),
                    input_at.is_some_and(ready),
                )
            };
            if input_ev {
                self.write_input();
            }
            if pipe_ev {
                self.pump();
            }
            if sig_ev {
                self.reap();
            }
            if conn_ev {
                if let Some(code) = self.read_daemon() {
                    return code;
                }
            }
            if listen_ev {
                self.accept();
            }
            self.timers();
        }
    }

    fn timeout(&self) -> PollTimeout {
        let now = Instant::now();
        let mut next: Option<Duration> = None;
        let mut at = |t: Instant| {
            let d = t.saturating_duration_since(now);
            next = Some(next.map_or(d, |n| n.min(d)));
        };
        if let (Some(t), Some(_)) = (self.drain_until, &self.pipe) {
            at(t);
        }
        if let Some(s) = &self.stop {
            at(now + STOP_TICK);
            if s.killing.is_none() {
                at(s.kill_at);
            }
        }
        match next {
            None => PollTimeout::NONE,
            Some(d) => {
                PollTimeout::try_from(d.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn pump(&mut self) {
        // One buffer for the supervisor's life: a 64 KiB allocation freed at every wake-up
        // made the allocator consolidate its free lists each time.
        thread_local! {
            static CHUNK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        CHUNK.with_borrow_mut(|buf| {
            if buf.is_empty() {
                // Zeroed by the allocator (fresh pages): only what reads fill is touched.
                *buf = vec![0u8; READ_CHUNK];
            }
            self.pump_with(buf);
        });
    }

    fn pump_with(&mut self, buf: &mut [u8]) {
        let Some(pipe) = &self.pipe else { return };
        let mut moved = 0;
        loop {
            match nix::unistd::read(pipe, buf) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => match self.log.write(&buf[..n]) {
                    Ok(Written::All) => {
                        moved += n;
                        if moved >= PUMP_BUDGET {
                            return;
                        }
                    }
                    Ok(Written::Cap) => {
                        let total = self.log.total;
                        self.fail(Cause::OutputCap { total });
                        return;
                    }
                    Err(error) => {
                        self.fail(Cause::Capture { error });
                        return;
                    }
                },
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => {}
                // A terminal whose other side every process closed: its end of output.
                Err(nix::errno::Errno::EIO) if self.launch.input.is_pty() => {
                    self.pipe = None;
                    return;
                }
                Err(e) => {
                    self.fail(Cause::Capture {
                        error: format!("reading the output: {e}"),
                    });
                    return;
                }
            }
        }
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        self.reap_children();
    }

    fn reap_children(&mut self) {
        loop {
            let (pid, exit) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if Some(pid) == self.child {
                self.child = None;
                self.exit = Some((exit, now_ms()));
                self.drain_until =
                    Some(Instant::now() + Duration::from_millis(self.launch.drain_ms));
            }
        }
    }

    /// Handles what the daemon sent; `Some(code)` once the supervisor is done.
    fn read_daemon(&mut self) -> Option<i32> {
        let Some(c) = &mut self.conn else { return None };
        let msgs = match c.read() {
            Incoming::Messages(m) => m,
            Incoming::Closed => {
                self.conn = None;
                return self.park_end();
            }
        };
        for msg in msgs {
            match msg {
                ToShim::Stop { grace_ms, reason } => {
                    self.cause.get_or_insert(Cause::Stopped { reason });
                    self.begin_stop(Duration::from_millis(grace_ms));
                }
                ToShim::Ack if self.end.is_some() => return Some(self.finish()),
                // Early (the end is not told yet): whatever came behind it is read now.
                ToShim::Ack if self.conn.as_ref().is_some_and(Conn::has_line) => {
                    return self.read_daemon()
                }
                ToShim::Ack => {}
                ToShim::Write { data } => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap_or_default();
                    match &mut self.input {
                        Some(i) => i.push(&bytes),
                        // No input (any more): counted as done, so the daemon's count agrees.
                        None => self.input_gone += bytes.len() as u64,
                    }
                    self.write_input();
                }
                ToShim::CloseInput => {
                    if let Some(i) = &mut self.input {
                        i.close_when_written();
                    }
                    self.write_input();
                }
                ToShim::Signal { signal } => {
                    input::signal(self.input.as_ref(), self.tree.pgid, signal)
                }
                ToShim::Resize { cols, rows } => {
                    if let Some(i) = &self.input {
                        i.resize(cols, rows);
                    }
                }
                // A tree being stopped is not paused: it must act on its SIGTERM.
                ToShim::Pause if self.stop.is_some() => {}
                ToShim::Pause => self.pause(true),
                ToShim::Resume => self.pause(false),
            }
        }
        None
    }

    /// Stops or continues the whole tree, a terminal's foreground job included.
    fn pause(&mut self, paused: bool) {
        let job = self.input.as_ref().and_then(InputEnd::foreground);
        self.tree.pause(job, paused);
        self.paused = paused;
    }

    /// SIGTERM does not wake a stopped process; SIGCONT lets it act on it (every process a
    /// pause reached, when the task is paused).
    fn wake(&mut self) {
        match self.paused {
            true => self.pause(false),
            false => self.tree.signal(Signal::SIGCONT),
        }
    }

    /// Bytes of input written to the task, or dropped.
    fn input_done(&self) -> u64 {
        self.input_gone + self.input.as_ref().map_or(0, |i| i.done)
    }

    /// Hands the task what it takes of its input now; closes the input when it is done.
    fn write_input(&mut self) {
        let Some(i) = &mut self.input else { return };
        if let Flushed::Closed = i.flush() {
            // The count of what was done is kept: the daemon is told it.
            self.input_gone += i.done;
            self.input = None;
        }
    }

    /// A new daemon: it replaces the old one's connection, if any.
    fn accept(&mut self) {
        let Some(Ok((stream, _))) = self.socket.as_ref().map(|s| s.listener().accept()) else {
            return;
        };
        // One daemon at a time: a new one comes only once the last one's connection closed
        // (a daemon's end closes it before its lock lets the next one start), and this loop
        // sees that close before the new connection. Anyone else is turned away.
        if !same_user(&stream) || self.conn.is_some() {
            return;
        }
        let Ok(mut conn) = Conn::new(stream) else {
            return;
        };
        conn.send(&FromShim::Hello {
            version: VERSION,
            task: self.launch.task,
            pid: self.tree.pgid as u32,
            total: self.log.total,
            cgroup: self.tree.cgroup.clone(),
            size: self.input.as_ref().and_then(InputEnd::size),
            input_done: self.input_done(),
            paused: self.paused,
        });
        self.adopted = true;
        self.reported = self.log.total;
        // A new daemon counts input from here.
        self.reported_input = self.input_done();
        if let Some(end) = &self.end {
            // It ended and its end could not be kept on disk: this daemon gets it now.
            // A daemon that adopts a supervisor gives it no other task.
            self.reusable = false;
            conn.send(&FromShim::Exited {
                end: end.clone(),
                reusable: false,
            });
        }
        self.conn = Some(conn);
    }
}

/// A line on stderr (the daemon's log). Never fails: a full disk must not stop a supervisor
/// before it has cleaned up.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn same_user(stream: &UnixStream) -> bool {
    nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .is_ok_and(|c| c.uid() == nix::unistd::getuid().as_raw())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a supervisor sets up for itself before its first task, and keeps for the next ones.
fn set_up_once() -> nix::Result<()> {
    static DONE: std::sync::OnceLock<nix::Result<()>> = std::sync::OnceLock::new();
    *DONE.get_or_init(|| {
        // Its own session: nothing sent to the daemon's group or terminal reaches it.
        let _ = nix::unistd::setsid();
        become_subreaper();
        // SIGCHLD is read from a signalfd. A log write past a file-size limit must fail with
        // EFBIG (and fail the task), not kill the supervisor. Blocked, not ignored: the
        // task's processes start with nothing blocked and the defaults.
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGXFSZ);
        mask.thread_block()
    })
}

/// Orphans of the task come back here, not to init.
fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        say(&format!(
            "aside-shim: could not become a child subreaper: {}",
            std::io::Error::last_os_error()
        ));
    }
}
