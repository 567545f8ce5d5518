//! What the engine and a task's supervisor say to each other: one JSON object per line on a
//! Unix socket. At the start that socket is one end of a socket pair the engine handed the
//! keeper with the launch (see `keeper`); after a daemon restart the new daemon connects to
//! the supervisor's own socket.
//!
//! ```text
//! engine → keeper Launch (one packet, the control socket attached)
//! engine → shim   Stop, Write, CloseInput, Signal, Resize, Pause, Resume and Ack;
//!                 a Launch line after the Ack of an end that said `reusable`
//! shim → engine   Started or SpawnFailed; Hello (to a daemon that connects); Output;
//!                 Input; Exited
//! ```
//!
//! Messages and fields added since version 1 are optional, so that a daemon adopts the
//! supervisors an older one started (it sends them only what they know). A daemon gives a
//! supervisor it adopted no other task.
//!
//! An `Exited` is repeated to every daemon until one acknowledges it (`Ack`, sent once the
//! end is durable); with no daemon there, the end goes to the status file instead.

use serde::{Deserialize, Serialize};

/// Bumped when a message changes shape: a daemon adopts only supervisors it can speak to.
/// Version 2 added input (Write, CloseInput), signals and resizes; version 3 pausing (Pause,
/// Resume, and `paused` in Hello).
pub const VERSION: u32 = 3;
/// The oldest supervisor a daemon adopts: it is sent only Stop and Ack.
pub const OLDEST: u32 = 1;
/// The first version that takes signals, input and resizes.
pub const SIGNALS: u32 = 2;
/// The first version that pauses.
pub const PAUSE: u32 = 3;
/// The shape of a [`Launch`], which a supervisor must know exactly: launches go only to
/// supervisors of the daemon's own install (its keeper's children), and one of another shape
/// is refused, not half read. Kept apart from [`VERSION`], which decides adoption. Shape 4
/// sent the environment's bulk once per supervisor ([`Base`]).
pub const LAUNCH: u32 = 4;

/// Bytes of input one `Write` carries at most (base64 in the message).
pub const MAX_WRITE: usize = 64 << 10;

/// The task to run, and where its supervisor keeps what outlives the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Launch {
    /// The launch's shape: [`LAUNCH`].
    pub version: u32,
    pub task: u64,
    /// The program, already found in the task's PATH, and its arguments.
    pub program: String,
    pub args: Vec<String>,
    /// The task's environment is its base with its own variables (`own`: its id, its tag,
    /// the extra ones it asked for, `TERM` on a terminal) set over it.
    pub base: Base,
    pub own: Vec<(String, String)>,
    pub cwd: String,
    /// The task's cgroup, where it has one: its first process is born in it.
    pub cgroup: Option<String>,
    /// The supervisor's own cgroup (the daemon's), where the task has one: the supervisor
    /// steps into the task's group to start its first process there, then back out here.
    #[serde(default)]
    pub home_cgroup: Option<String>,
    /// The logs folder and the log's name in it.
    pub logs: String,
    pub log: String,
    /// The supervisor's socket and status file (in the state directory's private `run`).
    pub socket: String,
    pub status: String,
    /// Bytes of output kept at most; past it the task is stopped.
    pub cap: u64,
    /// Free space left on the log's disk below which no more output is written.
    pub reserve: u64,
    /// After the first process exits, how long its descendants may still hold the output.
    pub drain_ms: u64,
    /// Between SIGTERM and SIGKILL for what a task leaves behind.
    pub grace_ms: u64,
    /// The task's standard input.
    #[serde(default)]
    pub input: Input,
}

/// The bulk of a task's environment: the daemon's own, or the one its caller brought. A
/// supervisor keeps it from one task to the next, so it is sent only when it differs from
/// the one the supervisor has (2.5 KB of JSON in every launch, for a usual shell's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    Given(Vec<(String, String)>),
    /// The one the supervisor's last task had.
    Kept,
}

/// What the task reads as its standard input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    #[default]
    None,
    /// A pipe the supervisor writes what the daemon sends into.
    Pipe,
    /// A pseudo-terminal of this size for stdin, stdout and stderr, the task's controlling
    /// terminal (the task's first process leads a session of its own).
    Pty { cols: u16, rows: u16 },
}

impl Input {
    pub fn is_pty(&self) -> bool {
        matches!(self, Input::Pty { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromShim {
    /// The task's first process runs (its pid is its process group).
    Started { pid: u32 },
    /// The task's process could not be started; the supervisor exits.
    SpawnFailed { error: String, not_found: bool },
    /// The first line to a daemon that connected to the socket.
    Hello {
        version: u32,
        task: u64,
        pid: u32,
        total: u64,
        /// The task's cgroup folder, where it has one.
        cgroup: Option<String>,
        /// A terminal task's size now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<(u16, u16)>,
        /// Bytes of input written to the task so far (or dropped).
        #[serde(default)]
        input_done: u64,
        /// The task is paused: its processes were stopped and not continued since.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        paused: bool,
    },
    /// Bytes of output in the log so far.
    Output { total: u64 },
    /// Bytes of input written to the task so far (or dropped: the task closed its input).
    Input { done: u64 },
    Exited {
        end: End,
        /// Nothing of the task is left: once the end is acknowledged the supervisor is as it
        /// was before it, and the line after the `Ack` may be a launch (a whole [`Launch`],
        /// on one line).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reusable: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToShim {
    /// Stop the whole tree: SIGTERM, then SIGKILL after the grace. `reason` is the engine's
    /// own, kept and handed back in the end.
    Stop { grace_ms: u64, reason: String },
    /// The end is recorded: the supervisor may go.
    Ack,
    /// Bytes for the task's input, base64.
    Write { data: String },
    /// Close the task's input once what was written is through (a pipe's end of file).
    CloseInput,
    /// A signal to the task: to its terminal's foreground process group, else to its own.
    Signal { signal: i32 },
    /// A terminal task's new size.
    Resize { cols: u16, rows: u16 },
    /// Stop every process of the task (SIGSTOP) until Resume.
    Pause,
    /// Continue every process of the task (SIGCONT).
    Resume,
}

/// How the task ended, as the supervisor saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub exit: Exit,
    /// Milliseconds since the Unix epoch.
    pub ended_at_ms: u64,
    pub total: u64,
    /// Why it was stopped, when it was.
    pub cause: Option<Cause>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Cause {
    OutputCap {
        total: u64,
    },
    Capture {
        error: String,
    },
    /// Stopped by the engine, for the reason it gave.
    Stopped {
        reason: String,
    },
}

/// One message as a line.
pub fn line<T: Serialize>(msg: &T) -> Vec<u8> {
    // These types hold only strings and numbers: serializing them cannot fail.
    let mut out = serde_json::to_vec(msg).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_each_and_read_back() {
        let end = End {
            exit: Exit::Signal(15),
            ended_at_ms: 5,
            total: 3,
            cause: Some(Cause::Stopped {
                reason: "{\"x\":\"a\\nb\"}".into(),
            }),
        };
        let bytes = line(&FromShim::Exited {
            end: end.clone(),
            reusable: false,
        });
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
        let back: FromShim = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            back,
            FromShim::Exited {
                end,
                reusable: false
            }
        );
    }

    #[test]
    fn a_hello_without_paused_is_one_of_a_task_running() {
        let old = br#"{"type":"hello","version":2,"task":4,"pid":9,"total":0,"cgroup":null}"#;
        match serde_json::from_slice::<FromShim>(old).unwrap() {
            FromShim::Hello { paused, .. } => assert!(!paused),
            other => panic!("{other:?}"),
        }
        let bytes = line(&ToShim::Pause);
        assert_eq!(bytes, b"{\"type\":\"pause\"}\n");
    }
}
