//! Child processes: spawning them and collecting their exit status.
//!
//! The engine makes its process a child subreaper, so descendants whose parent exits
//! (including ones that called setsid() to leave their process group) are re-parented to
//! it instead of init; then it can find and kill them when their task ends. A subreaper must
//! reap every child, so one SIGCHLD handler calls `waitpid(-1)` and hands each status to
//! whoever registered that pid. Spawning holds the registry lock until the pid is registered,
//! and reaping holds it too, so the two never race: a status for a pid nobody registered
//! belongs to an orphan and is simply reaped.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::oneshot;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

pub struct Reaper {
    waiters: Mutex<HashMap<i32, oneshot::Sender<Exit>>>,
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
        let reaper = Arc::new(Self {
            waiters: Mutex::new(HashMap::new()),
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

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<i32, oneshot::Sender<Exit>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `cmd` and returns its pid and a receiver for its exit.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<(u32, oneshot::Receiver<Exit>)> {
        let mut waiters = self.waiters();
        let child = cmd.spawn()?;
        let pid = child.id();
        // The Child is dropped without waiting: the SIGCHLD handler reaps it.
        drop(child);
        let (tx, rx) = oneshot::channel();
        waiters.insert(pid as i32, tx);
        Ok((pid, rx))
    }

    /// Whether `pid` is a process this reaper started and has not reaped yet: a task's own
    /// process, as opposed to an orphan re-parented here.
    pub fn started(&self, pid: i32) -> bool {
        self.waiters().contains_key(&pid)
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
            if let Some(tx) = waiters.remove(&pid.as_raw()) {
                let _ = tx.send(exit);
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
