//! How a launch reaches a supervisor: sent to an idle one on its own connection, or handed
//! to the keeper (started on the first launch, and again if it went) to fork a new one. A
//! supervisor whose end said it is reusable joins the idle ones once that end is
//! acknowledged.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aside_protocol::Failure;
use aside_shim::idle::{IDLE_FOR, MAX_IDLE};
use aside_shim::keeper::MAX_LAUNCH;
use nix::errno::Errno;
use nix::sys::socket::{
    sendmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessage, MsgFlags, SockFlag,
    SockType,
};

use super::{spawn_failure, Supervisors, ANSWER_WAIT};
use crate::cgroup::{Cgroups, TaskCgroup};
use crate::reaper::Reaper;
use crate::shell::Env;

/// An idle supervisor this close to the end of its wait is not sent a launch.
const IDLE_MARGIN: Duration = Duration::from_millis(500);

/// A supervisor whose end said it can serve another task, once that end is acknowledged: its
/// connection, since when it waits, the group it keeps, empty, for its next task, and the
/// base environment it keeps.
pub(super) struct Resting {
    stream: UnixStream,
    since: Instant,
    /// Dropped with the supervisor: removed if still there (the supervisor removes it too as
    /// it exits; whichever comes first does).
    group: Option<TaskCgroup>,
    base: Env,
}

/// What a supervisor that may serve another task is put back with once its end is
/// acknowledged: where idle ones are kept, and the base environment it has.
pub(super) struct Reuse {
    pub supervisors: Arc<Supervisors>,
    pub base: Env,
}

impl Reuse {
    pub(super) fn rest(self, stream: UnixStream, group: Option<TaskCgroup>) {
        self.supervisors.rest(stream, group, self.base);
    }
}

impl Supervisors {
    /// Sends a launch to the newest idle supervisor: its connection, and the group its task
    /// starts in, once one took it. `line_for` writes the launch for a group (the one the
    /// supervisor kept, or a new one when it kept none), and for a supervisor that has the
    /// task's base environment `base` or not. One that let its wait end, or went, refuses it
    /// (the send fails) and the next is tried.
    pub(super) fn hand_to_idle(
        &self,
        cgroups: Option<&Arc<Cgroups>>,
        base: &Env,
        line_for: &mut dyn FnMut(Option<&TaskCgroup>, bool) -> Vec<u8>,
    ) -> Option<(UnixStream, Option<TaskCgroup>)> {
        loop {
            let r = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            // Close to the end of its wait: likely to refuse, and not worth the try.
            if !fresh(r.since) {
                continue;
            }
            let group = r
                .group
                .or_else(|| cgroups.and_then(|c| c.create_for_supervisor()));
            // The daemon's own environment is one value; one a caller brought is compared.
            let has_base = Arc::ptr_eq(&r.base, base) || r.base == *base;
            if send_all(&r.stream, &line_for(group.as_ref(), has_base)).is_ok() {
                return Some((r.stream, group));
            }
        }
    }

    /// A supervisor whose reusable end was just acknowledged: kept for the next launch, with
    /// its group and the base environment it has.
    fn rest(&self, stream: UnixStream, group: Option<TaskCgroup>, base: Env) {
        // A launch larger than the socket's buffer waits for the supervisor to read it; one
        // that stopped reading (stopped by a signal) is given up on, as a keeper would be.
        let blocking = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(ANSWER_WAIT)));
        if blocking.is_err() {
            return;
        }
        // Those near the end of their wait, and the longest idle past the most kept, go: their
        // connections close and they exit (their groups are removed outside the lock).
        let gone: Vec<Resting> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut gone: Vec<Resting> = idle.extract_if(.., |r| !fresh(r.since)).collect();
            if idle.len() >= MAX_IDLE {
                gone.push(idle.remove(0));
            }
            idle.push(Resting {
                stream,
                since: Instant::now(),
                group,
                base,
            });
            gone
        };
        drop(gone);
    }

    /// Lets every idle supervisor go (the engine is stopping): they exit, and their groups
    /// are removed.
    pub(crate) fn dismiss_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        drop(idle);
    }

    /// Has the keeper fork a new supervisor for the launch: the engine's end of its socket.
    pub(super) fn hand_to_new(
        &self,
        reaper: &Reaper,
        launch: &[u8],
    ) -> Result<UnixStream, Failure> {
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| spawn_failure(format!("cannot create a socket pair: {e}"), false))?;
        self.send_to_keeper(reaper, launch, theirs.as_raw_fd())
            .map_err(|e| {
                spawn_failure(
                    format!(
                        "cannot start the task's supervisor ({}): {e}",
                        self.program.display()
                    ),
                    false,
                )
            })?;
        Ok(ours)
    }

    /// Gives the keeper a launch and the supervisor's end of its socket; starts the keeper
    /// first when there is none (or the one there was is gone).
    fn send_to_keeper(
        &self,
        reaper: &Reaper,
        launch: &[u8],
        control: RawFd,
    ) -> std::io::Result<()> {
        let mut keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            let sock = match keeper.take() {
                Some(s) => s,
                None => self.start_keeper(reaper)?,
            };
            let sent = sendmsg::<()>(
                sock.as_raw_fd(),
                &[IoSlice::new(launch)],
                &[ControlMessage::ScmRights(&[control])],
                MsgFlags::MSG_NOSIGNAL,
                None,
            );
            match sent {
                Ok(_) => {
                    *keeper = Some(sock);
                    return Ok(());
                }
                // Gone: another is started once.
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) if attempt == 0 => {
                    tracing::warn!("the supervisors' keeper is gone: starting another");
                }
                Err(e) => {
                    *keeper = Some(sock);
                    return Err(e.into());
                }
            }
        }
        Err(std::io::Error::other(
            "the supervisors' keeper keeps going away",
        ))
    }

    fn start_keeper(&self, reaper: &Reaper) -> std::io::Result<OwnedFd> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        // Room for a launch with a large environment; a keeper that stops reading is given
        // up on rather than waited for.
        let _ = setsockopt(&ours, sockopt::SndBuf, &(MAX_LAUNCH * 2));
        let _ = setsockopt(
            &ours,
            sockopt::SendTimeout,
            &nix::sys::time::TimeVal::new(ANSWER_WAIT.as_secs() as i64, 0),
        );
        let _ = setsockopt(&theirs, sockopt::RcvBuf, &(MAX_LAUNCH * 2));
        let mut cmd = Command::new(&self.program);
        cmd.arg("keeper")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .current_dir("/");
        reaper.spawn(&mut cmd, None)?;
        Ok(ours)
    }
}

/// An idle supervisor that said so at `since` is still waiting, with time to spare.
fn fresh(since: Instant) -> bool {
    since.elapsed() + IDLE_MARGIN < IDLE_FOR
}

/// The supervisor's connection whole again, for its next launch once its end is
/// acknowledged; `None` when it said anything after its end (it says nothing until a launch).
pub(super) fn reunite(
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
) -> Option<UnixStream> {
    let read = lines.into_inner();
    if !read.buffer().is_empty() {
        return None;
    }
    read.into_inner().reunite(write).ok()?.into_std().ok()
}

/// Writes all of `bytes`, or fails; never raises SIGPIPE.
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::sys::socket::send(stream.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
