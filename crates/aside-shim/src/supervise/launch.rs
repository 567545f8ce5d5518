//! A task's launch, read and served: the supervisor's work for one task, from its launch
//! to what it keeps for the next one.

use crate::conn::Conn;
use crate::env::BaseEnv;
use crate::listen::Listen;
use crate::wire::{Base, FromShim, Launch, LAUNCH};

use super::Shim;

/// What a supervisor has after a task.
pub(crate) struct Served {
    /// The process's exit code.
    pub code: i32,
    /// Its socket, kept for another task when it could be.
    pub socket: Option<Listen>,
    /// The connection of the daemon that acknowledged the end, when one did.
    pub conn: Option<Conn>,
    /// The cgroup the launch named: the supervisor's, for its next task too.
    pub group: Option<String>,
    /// Its end said it can serve another task: nothing of this one was left.
    pub reusable: bool,
}

/// Runs one task's supervisor: `launch` is the task, `conn` the connection to the daemon it
/// came on, `socket` the one it kept from its last task, if any, and `base` the environment
/// it keeps for its tasks (a launch may give another).
pub(crate) fn serve(
    launch: &[u8],
    mut conn: Conn,
    socket: Option<Listen>,
    base: &mut Option<BaseEnv>,
) -> Served {
    let mut launch: Launch = match read_launch(launch) {
        Ok(l) => l,
        Err(error) => {
            conn.send(&FromShim::SpawnFailed {
                error,
                not_found: false,
            });
            answer_now(&mut conn);
            return Served::failed(None);
        }
    };
    let group = launch.cgroup.clone();
    if let Base::Given(vars) = std::mem::replace(&mut launch.base, Base::Kept) {
        *base = Some(BaseEnv::new(vars));
    }
    let started = match base {
        Some(base) => Shim::new(launch, socket, base),
        None => Err(FromShim::SpawnFailed {
            error: "the task's supervisor was sent no environment".into(),
            not_found: false,
        }),
    };
    match started {
        Ok(mut shim) => {
            conn.send(&FromShim::Started {
                pid: shim.tree.pgid as u32,
            });
            shim.conn = Some(conn);
            let code = shim.run();
            Served {
                code,
                socket: shim.socket.take(),
                conn: shim.conn.take(),
                group,
                reusable: shim.reusable,
            }
        }
        Err(failed) => {
            conn.send(&failed);
            answer_now(&mut conn);
            Served::failed(group)
        }
    }
}

impl Served {
    pub(super) fn failed(group: Option<String>) -> Self {
        Self {
            code: 1,
            socket: None,
            conn: None,
            group,
            reusable: false,
        }
    }
}

/// The launch, or why it cannot be read: one of another shape says so by its version.
fn read_launch(bytes: &[u8]) -> Result<Launch, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        #[derive(serde::Deserialize)]
        struct Shape {
            version: u32,
        }
        match serde_json::from_slice::<Shape>(bytes) {
            Ok(Shape { version }) if version != LAUNCH => other_shape(version),
            _ => format!("the task's supervisor cannot read its launch: {e}"),
        }
    })
}

/// Sends what is queued before the supervisor exits: the daemon waits for this answer.
fn answer_now(conn: &mut Conn) {
    let _ = conn.flush_all();
}

/// Why a launch of another shape is refused.
pub(super) fn other_shape(version: u32) -> String {
    format!(
        "the supervisor takes launches of shape {LAUNCH}, the daemon sent {version}: \
         reinstall aside"
    )
}
