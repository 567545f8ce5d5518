use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{TaskId, TaskRecord, TaskState, Timestamp};

/// One step in a task's life, numbered in the order the engine recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Increases by one for every event of a state directory; resume after it.
    pub seq: u64,
    pub at: Timestamp,
    pub task_id: TaskId,
    /// Whether the task is in the background when the event happens.
    pub detached: bool,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Queued,
    Started {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    Detached {
        cause: DetachCause,
    },
    Finished {
        outcome: TaskState,
    },
    Removed,
    /// An agent made progress (a model turn, a tool call).
    Progress {
        progress: crate::AgentProgress,
    },
    /// The task's processes were stopped (`task.pause`).
    Paused,
    /// The task's processes were continued (`task.resume`).
    Resumed,
}

/// Why a foreground task went to the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DetachCause {
    /// Someone asked (`aside detach`, Ctrl+Z).
    Request,
    /// The foreground caller's wait budget ran out.
    WaitBudget,
    /// The daemon restarted and the foreground caller did not come back for the task.
    CallerGone,
}

/// A message to a task's owner that a background task ended. Delivered once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Notification {
    pub seq: u64,
    pub owner: String,
    pub task: TaskRecord,
}
