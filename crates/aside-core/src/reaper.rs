//! Child processes: spawning them and collecting their exit status.
//!
//! The engine makes its process a child subreaper, so descendants whose parent exits
//! (including ones that called setsid() to leave their process group) are re-parented to
//! it instead of init; then it can find and kill them when their task ends. A subreaper must
//! reap every child, so one SIGCHLD handler calls `waitpid(-1)` and hands each status to
//! whoever registered that pid. Spawning holds the registry lock until the pid is registered,
//! and reaping holds it too, so the two never race: a status for a pid nobody registered
//! belongs to an orphan and is simply reaped.
//!
//! The same thread sweeps up after tasks that ended by themselves: whatever they left
//! running (their process group, their cgroup, or orphans re-parented here) is found in
//! batches, one look at `/proc` for many tasks, and stopped.
//!
//! An orphan re-parented here is a task's, but which task's is lost with its parent when it
//! carries no tag. It can only be one that was running when it started: one older than every
//! process this reaper started and has not reaped is a *stray*, left by a task that has
//! ended, and is killed with the leftovers of any task.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cgroup::TaskCgroup;
use crate::proctree;

/// How long a sweep waits for more ended tasks to join it: under load one look at `/proc`
/// serves many tasks; idle, leftovers live this much longer.
const SWEEP_BATCH: Duration = Duration::from_millis(20);

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

pub struct Reaper {
    waiters: Mutex<HashMap<i32, Waiter>>,
    /// The program of task supervisors: one that comes back to this process (its keeper
    /// died) holds a running task, and is never a stray.
    spared: Mutex<Option<std::path::PathBuf>>,
    leftovers: mpsc::UnboundedSender<Leftover>,
    /// Leftovers queued or being stopped: a shutdown waits for none to be left.
    sweeping: watch::Sender<usize>,
}

/// A process this reaper started and has not reaped.
struct Waiter {
    exit: oneshot::Sender<Exit>,
    /// When it started, in clock ticks since boot (0 if unknown: then nothing is a stray).
    start: u64,
}

/// A child of this process that it did not start, older than every one it started that
/// still runs: an orphan of a task that has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stray {
    pid: i32,
    start: u64,
}

/// A task whose process ended by itself, to be swept for what it left behind.
pub(crate) struct Leftover {
    pub tree: Arc<proctree::Tree>,
    pub grace: Duration,
}

/// One reaper per process: two would each `waitpid(-1)` and steal the other's children.
static REAPER: Mutex<Option<Arc<Reaper>>> = Mutex::new(None);

impl Reaper {
    /// The process's reaper, started on first use: this process becomes the subreaper of its
    /// descendants, and a thread of its own reaps them, so no caller's runtime has to outlive
    /// another's.
    pub fn start() -> std::io::Result<Arc<Self>> {
        let mut slot = REAPER.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        become_subreaper();
        let (leftovers, swept) = mpsc::unbounded_channel();
        let reaper = Arc::new(Self {
            waiters: Mutex::new(HashMap::new()),
            spared: Mutex::new(None),
            leftovers,
            sweeping: watch::Sender::new(0),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let r = reaper.clone();
        std::thread::Builder::new()
            .name("aside-reaper".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let kind = tokio::signal::unix::SignalKind::child();
                    let mut sigchld = match tokio::signal::unix::signal(kind) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::spawn(sweep(r.clone(), swept));
                    loop {
                        r.reap_all();
                        if sigchld.recv().await.is_none() {
                            return;
                        }
                    }
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the reaper thread ended at once"))??;
        *slot = Some(reaper.clone());
        Ok(reaper)
    }

    fn waiters(&self) -> MutexGuard<'_, HashMap<i32, Waiter>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `cmd`, in `cgroup` if there is one, and returns its pid and a receiver for its
    /// exit.
    pub(crate) fn spawn(
        &self,
        cmd: &mut Command,
        cgroup: Option<&mut TaskCgroup>,
    ) -> std::io::Result<(u32, oneshot::Receiver<Exit>)> {
        // Held across the spawn also because the daemon steps into the cgroup for it: no
        // other spawn may happen meanwhile, or its process would be born there too.
        let mut waiters = self.waiters();
        let child = match cgroup {
            Some(g) => g.spawn_in(|| cmd.spawn()),
            None => cmd.spawn(),
        }?;
        let pid = child.id();
        // The Child is dropped without waiting: the SIGCHLD handler reaps it.
        drop(child);
        let (exit, rx) = oneshot::channel();
        // Not reaped before the lock is released: its /proc entry is there to read.
        let start = proctree::stat(pid as i32).map_or(0, |s| s.start);
        waiters.insert(pid as i32, Waiter { exit, start });
        Ok((pid, rx))
    }

    /// Processes running `program` (task supervisors) are never strays.
    pub(crate) fn spare(&self, program: std::path::PathBuf) {
        *self.spared.lock().unwrap_or_else(|p| p.into_inner()) = Some(program);
    }

    fn is_spared(&self, pid: i32) -> bool {
        let spared = self.spared.lock().unwrap_or_else(|p| p.into_inner());
        spared.as_deref().is_some_and(|program| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == program)
        })
    }

    /// Whether `pid` is a process this reaper started and has not reaped yet: a task's own
    /// process, as opposed to an orphan re-parented here.
    pub fn started(&self, pid: i32) -> bool {
        self.waiters().contains_key(&pid)
    }

    /// The strays now: children of this process that it did not start (orphans re-parented
    /// here), older than every process it started and has not reaped. Every process of a
    /// task started no earlier than its first one, so no running task can own these. Those
    /// it may not signal (another user's, as a setuid program) are left out: waiting for
    /// them would hold up every stop.
    pub(crate) fn strays(&self) -> BTreeSet<Stray> {
        let waiters = self.waiters();
        let oldest = waiters.values().map(|w| w.start).min().unwrap_or(u64::MAX);
        let me = std::process::id() as i32;
        proctree::children()
            .into_iter()
            .filter(|pid| !waiters.contains_key(pid))
            .filter_map(|pid| {
                let stat = proctree::stat(pid)?;
                (stat.ppid == me && stat.start < oldest).then_some(Stray {
                    pid,
                    start: stat.start,
                })
            })
            .filter(|s| kill(Pid::from_raw(s.pid), None).is_ok())
            .filter(|s| !self.is_spared(s.pid))
            .collect()
    }

    /// Sends `sig` to each of `strays` that is still the same child of this process. The
    /// registry's lock keeps children from being reaped meanwhile, so a pid checked under
    /// it cannot have been reused.
    pub(crate) fn signal_strays(&self, strays: &BTreeSet<Stray>, sig: Signal) {
        if strays.is_empty() {
            return;
        }
        let _reaping = self.waiters();
        let me = std::process::id() as i32;
        for s in strays {
            if proctree::stat(s.pid).is_some_and(|now| now.ppid == me && now.start == s.start) {
                let _ = kill(Pid::from_raw(s.pid), sig);
            }
        }
    }

    /// Queues a sweep for what `leftover`'s task left running.
    pub(crate) fn sweep(&self, leftover: Leftover) {
        self.sweeping.send_modify(|n| *n += 1);
        // Fails only once the reaper's thread is gone, and then nothing is swept anyway.
        if self.leftovers.send(leftover).is_err() {
            self.swept_one();
        }
    }

    fn swept_one(&self) {
        self.sweeping.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Returns once every leftover queued so far is stopped (and its cgroup removed): a
    /// process that exits before would leave them.
    pub(crate) async fn swept(&self) {
        let _ = self.sweeping.subscribe().wait_for(|n| *n == 0).await;
    }

    fn reap_all(&self) {
        // Holding the registry while reaping keeps this from racing a spawn: when exec fails,
        // std waits for that child itself, and would panic if it had been reaped here first.
        let mut waiters = self.waiters();
        loop {
            let (pid, exit) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if let Some(w) = waiters.remove(&pid.as_raw()) {
                let _ = w.exit.send(exit);
            }
        }
    }
}

/// Takes ended tasks in batches; stops what each left (its process group, its cgroup, its
/// tagged orphans) and the strays.
async fn sweep(reaper: Arc<Reaper>, mut ended: mpsc::UnboundedReceiver<Leftover>) {
    while let Some(first) = ended.recv().await {
        tokio::time::sleep(SWEEP_BATCH).await;
        let mut batch = vec![first];
        while let Ok(more) = ended.try_recv() {
            batch.push(more);
        }
        let tags: BTreeSet<&str> = batch.iter().map(|l| l.tree.tag.as_str()).collect();
        let orphaned = proctree::tagged_orphans(&tags, |pid| reaper.started(pid));
        // Any stop takes the strays with it: one is enough.
        let mut strays = !reaper.strays().is_empty();
        for l in batch {
            let left = l.tree.running() || orphaned.contains(&l.tree.tag);
            if left || strays {
                strays = false;
                let reaper = reaper.clone();
                tokio::spawn(async move {
                    proctree::terminate(&l.tree, &reaper, l.grace).await;
                    drop(l);
                    reaper.swept_one();
                });
            } else {
                // Dropping the tree removes its (empty) cgroup.
                drop(l);
                reaper.swept_one();
            }
        }
    }
}

/// Makes this process the subreaper of its descendants (Linux): orphans are re-parented to
/// it, so their task's end can find and stop them. Elsewhere their tag finds them instead.
#[cfg(target_os = "linux")]
fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::warn!(
            "could not become a child subreaper ({}); escaped descendants are still found by their tag",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn become_subreaper() {}
