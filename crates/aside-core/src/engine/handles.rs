//! Handles: unguessable bearer names for tasks whose holder fetches their end itself, such as
//! the task ids an MCP client polls. A handle is stored before it is handed out, so whoever
//! holds it (any client, after a restart of either side) finds its task; it goes when the
//! task's record goes. A task with a handle makes no notification when it ends: its holder
//! learns the end by asking, and being told twice would repeat it.

use std::io::Read;

use aside_protocol::{TaskId, Timestamp};
use aside_store::Op;

use super::{Engine, EngineError};

/// Random bytes in a handle: enough that nobody guesses or enumerates one.
const HANDLE_BYTES: usize = 16;

/// A handle given out for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub handle: String,
    pub task: TaskId,
    pub created_at: Timestamp,
}

impl Engine {
    /// Gives out a handle for `id`; it is durable before this returns. From then on the task's
    /// end makes no notification, and one already made is dropped. When the handle cannot be
    /// stored, nothing changes: the task is announced as any other.
    pub async fn issue_handle(&self, id: TaskId) -> Result<Handle, EngineError> {
        let handle = format!(
            "{id}-{}",
            random_hex(HANDLE_BYTES).map_err(EngineError::Setup)?
        );
        let created_at = Timestamp::now();
        let in_memory = self.lock().tasks.contains_key(&id);
        if !in_memory && self.inner.store.get_task(id)?.is_none() {
            return Err(EngineError::UnknownTask(id));
        }
        let done = {
            let mut st = self.lock();
            self.persist_waiting(
                &mut st,
                vec![Op::AddHandle {
                    handle: handle.clone(),
                    task: id,
                    created_ms: created_at.unix_ms(),
                }],
                Vec::new(),
            )
        };
        done.await?;
        // Decided under the lock that also decides the task's end: either the end sees this,
        // or the task is over already and its notice is dropped below.
        let ended = match self.lock().tasks.get_mut(&id) {
            Some(t) if !t.is_over() => {
                t.quiet = true;
                false
            }
            _ => true,
        };
        if ended {
            self.discard_notification(id).await;
        }
        Ok(Handle {
            handle,
            task: id,
            created_at,
        })
    }

    /// The task a handle names, with the handle's creation time; `None` for a handle never
    /// given out here. A handle goes with its task's record, so its task is there (but for
    /// one an older build removed: reading it then says the task is unknown).
    pub fn task_of_handle(&self, handle: &str) -> Result<Option<Handle>, EngineError> {
        let Some((task, ms)) = self.inner.store.task_of_handle(handle)? else {
            return Ok(None);
        };
        Ok(Some(Handle {
            handle: handle.to_string(),
            task,
            created_at: Timestamp::from_unix_ms(ms),
        }))
    }
}

fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
