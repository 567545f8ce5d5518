//! The wire types of aside, shared by the engine, the daemon and every client.
//!
//! Everything a client and the daemon exchange is defined here, so the JSON Schema that
//! `aside schema` prints is generated from the same types the code uses.

mod event;
mod id;
pub mod keys;
pub mod rpc;
mod task;
mod terminal;
mod time;
mod tool;

pub use event::{DetachCause, Event, EventKind, Notification};
pub use id::{InvalidId, TaskId};
pub use task::{
    valid_session_id, AgentProgress, CancelReason, Failure, Limit, OutputChunk, ShellCommand,
    StartMode, TaskKind, TaskRecord, TaskSpec, TaskState,
};
pub use terminal::{Input, Match, Screen, ScreenFormat, TaskSignal, TermSize};
pub use time::{format_duration, Timestamp};
pub use tool::{Tool, UnknownTool};

/// Version of the JSON-RPC protocol. A client and a daemon whose major versions differ refuse
/// to talk; minor versions only add optional fields and methods.
pub const PROTOCOL_VERSION: &str = "1.1";

/// The file a daemon leaves beside its socket when it was stopped on purpose (not restarted):
/// a client that lost its connection then waits for a daemon instead of starting one, so a
/// follower does not undo the stop. The next daemon removes it.
pub const STOPPED_FILE: &str = "stopped";

/// The JSON Schema of the whole protocol (requests, results, events and records).
pub fn schema() -> serde_json::Value {
    let schema = schemars::schema_for!(rpc::Protocol);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
