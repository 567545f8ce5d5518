//! How a supervisor ends its task: stopping it (SIGTERM, the grace, SIGKILL), deciding its
//! end, and keeping that end for a daemon that is not there (the status file), then
//! sweeping up what the task left.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{now_ms, say, Shim, Stop, KILL_WAIT, STOP_TICK};
use crate::wire::{self, Cause, End, Exit};

impl Shim {
    /// The task's stop, if any, is over (or was given up on).
    pub(super) fn stopped(&self) -> bool {
        match &self.stop {
            None => true,
            Some(s) => s.killing.is_some_and(|k| k.elapsed() >= KILL_WAIT) || !self.tree.alive(),
        }
    }

    pub(super) fn decide_end(&mut self) -> End {
        let (exit, ended_at_ms) = self.exit.unwrap_or((Exit::Signal(libc::SIGKILL), now_ms()));
        let end = End {
            exit,
            ended_at_ms,
            total: self.log.total,
            cause: self.cause.clone(),
        };
        self.end = Some(end.clone());
        end
    }

    /// The output cannot be kept: the task is stopped, for that reason.
    pub(super) fn fail(&mut self, cause: Cause) {
        self.pipe = None;
        self.cause.get_or_insert(cause);
        self.begin_stop(Duration::from_millis(self.launch.grace_ms));
    }

    pub(super) fn begin_stop(&mut self, grace: Duration) {
        if self.stop.is_some() {
            return;
        }
        self.tree.signal(Signal::SIGTERM);
        self.wake();
        self.stop = Some(Stop {
            kill_at: Instant::now() + grace,
            killing: None,
        });
    }

    pub(super) fn timers(&mut self) {
        let now = Instant::now();
        if self.drain_until.is_some_and(|t| now >= t) && self.pipe.is_some() {
            // Descendants still hold the output after the first process exited: stop reading.
            self.pipe = None;
        }
        if let Some(s) = self.stop.as_mut().filter(|_| self.end.is_none()) {
            if now >= s.kill_at {
                s.killing.get_or_insert(now);
                self.tree.signal(Signal::SIGKILL);
            }
            self.reap_children();
        }
    }

    /// No daemon to tell the end to: it goes to the status file, for the next daemon, and the
    /// supervisor finishes (`Some` exit code). Where it cannot be written (a full disk) the
    /// supervisor stays, with the end in memory, for the next daemon to connect (`None`).
    pub(super) fn park_end(&mut self) -> Option<i32> {
        let end = self.end.as_ref()?;
        match write_status(&self.launch.status, end) {
            Ok(()) => Some(self.finish()),
            Err(e) => {
                say(&format!(
                    "aside-shim: task {}: cannot keep its end ({e}); waiting for a daemon",
                    self.launch.task
                ));
                None
            }
        }
    }

    /// The end is told or kept, and what the task left is stopped: the supervisor is done
    /// with it. Its socket stays, for the next task, only where there may be one (a reusable
    /// end a daemon acknowledged: no daemon looks for a task whose end it recorded). Any
    /// other goes first: a daemon that starts during the stop (it may last the grace) finds
    /// the status file, not a socket that nobody answers.
    pub(super) fn finish(&mut self) -> i32 {
        if !(self.reusable && self.conn.is_some()) {
            self.socket = None;
        }
        drop(self.pipe.take());
        self.sweep();
        0
    }

    /// What the task left running goes too: SIGTERM, the grace, SIGKILL. The group stays,
    /// for the supervisor's next task (see `idle::Group`).
    pub(super) fn sweep(&mut self) {
        self.reap_children();
        // A reusable end said the supervisor had no child left: with no process of the tree
        // to come back to it, nothing is left to stop.
        if self.reusable || !self.tree.alive() {
            return;
        }
        self.tree.signal(Signal::SIGTERM);
        self.wake();
        let kill_at = Instant::now() + Duration::from_millis(self.launch.grace_ms);
        let give_up = kill_at + KILL_WAIT;
        loop {
            std::thread::sleep(STOP_TICK);
            self.reap_children();
            if !self.tree.alive() || Instant::now() >= give_up {
                break;
            }
            if Instant::now() >= kill_at {
                self.tree.signal(Signal::SIGKILL);
            }
        }
    }
}

/// Written whole or not at all: a new name, then renamed over.
fn write_status(path: &str, end: &End) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, wire::line(end))?;
    std::fs::rename(&tmp, path)
}
