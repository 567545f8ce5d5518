//! Every method of the protocol, each in one place: its wire name, the name of its handler,
//! its params and its result. Adding a method is one line here and one handler in the
//! daemon (the compiler asks for it).

use std::future::Future;

use schemars::JsonSchema;
use serde_json::value::RawValue;

use super::types::*;
use super::{ErrorCode, Method, RpcError};
use crate::{TaskRecord, TaskSpec};

macro_rules! methods {
    ($(
        $(#[doc = $doc:literal])*
        $marker:ident = $name:literal, $handler:ident: $params:ty => $result:ty;
    )*) => {
        /// One marker type per method, for [`Method`]: `client.request::<method::TaskGet>(..)`.
        pub mod method {
            use super::*;
            $(
                $(#[doc = $doc])*
                #[derive(Debug)]
                pub enum $marker {}

                impl Method for $marker {
                    const NAME: &'static str = $name;
                    type Params = $params;
                    type Result = $result;
                }
            )*
        }

        /// A request, parsed: which method, with its params.
        #[derive(Debug, JsonSchema)]
        #[serde(tag = "method", content = "params")]
        // One per request line, moved once: boxing the larger params buys nothing.
        #[allow(clippy::large_enum_variant)]
        pub enum Request {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $name)]
                $marker($params),
            )*
        }

        /// What serves the protocol: one handler per method.
        pub trait Handlers {
            $(
                $(#[doc = $doc])*
                fn $handler(
                    &self,
                    params: $params,
                ) -> impl Future<Output = Result<$result, RpcError>> + Send;
            )*
        }

        impl Request {
            /// Every method's name.
            pub const METHODS: &'static [&'static str] = &[$($name),*];

            /// Parses `params` (absent or null mean `{}`) as the params of `method`.
            pub fn parse(method: &str, params: Option<&RawValue>) -> Result<Self, RpcError> {
                let text = params.map_or("{}", |p| p.get());
                let bad = |e: serde_json::Error| {
                    RpcError::new(
                        ErrorCode::InvalidParams,
                        format!("invalid params for {method}: {e}"),
                    )
                };
                match method {
                    $($name => serde_json::from_str(text).map(Request::$marker).map_err(bad),)*
                    _ => Err(RpcError::new(
                        ErrorCode::MethodNotFound,
                        format!("unknown method {method:?}"),
                    )),
                }
            }

            pub fn method(&self) -> &'static str {
                match self {
                    $(Request::$marker(_) => $name,)*
                }
            }

            /// Runs the request's handler and serializes its result.
            pub async fn dispatch<H: Handlers + Sync>(
                self,
                handlers: &H,
            ) -> Result<Box<RawValue>, RpcError> {
                match self {
                    $(Request::$marker(p) => to_raw(handlers.$handler(p).await?),)*
                }
            }
        }

        /// Each method's result, under the method's name: for the schema.
        #[derive(JsonSchema)]
        #[serde(tag = "method", content = "result")]
        #[allow(dead_code, clippy::large_enum_variant)]
        pub enum Results {
            $(
                #[serde(rename = $name)]
                $marker($result),
            )*
        }
    };
}

fn to_raw<T: serde::Serialize>(result: T) -> Result<Box<RawValue>, RpcError> {
    serde_json::value::to_raw_value(&result).map_err(|e| {
        RpcError::new(
            ErrorCode::Internal,
            format!("cannot encode the result: {e}"),
        )
    })
}

methods! {
    /// Must be the first request on a connection.
    Hello = "hello", hello: HelloParams => HelloResult;
    /// The daemon's pid, socket, version and task counts.
    DaemonStatus = "daemon.status", daemon_status: Empty => DaemonStatusResult;
    /// Stops running tasks (cancelled, reason shutdown) and exits; with `keep_tasks`, leaves
    /// them running for the next daemon to adopt.
    DaemonShutdown = "daemon.shutdown", daemon_shutdown: ShutdownParams => Empty;
    /// Changes the global or a group's slot limit at runtime, durably; answers with the
    /// limits in force.
    SlotsSet = "slots.set", slots_set: SlotsParams => SlotsStatus;
    /// Starts a task; answers once it is recorded.
    TaskStart = "task.start", task_start: StartParams => StartResult;
    /// A task's record.
    TaskGet = "task.get", task_get: IdParams => TaskRecord;
    /// A page of tasks: live ones, or every stored one with `all`.
    TaskList = "task.list", task_list: ListParams => ListResult;
    /// Output by byte offset, with an optional long-poll.
    TaskRead = "task.read", task_read: ReadParams => ReadResult;
    /// Waits (at most 10 minutes) until the tasks end.
    TaskWait = "task.wait", task_wait: WaitParams => WaitResult;
    /// Stops tasks with their process trees; answers with their terminal records.
    TaskStop = "task.stop", task_stop: StopParams => StopResult;
    /// Writes bytes to a running task's input (a pipe or its terminal).
    TaskWrite = "task.write", task_write: WriteParams => WriteResult;
    /// Sends a signal to a running task's processes; WINCH resizes its terminal.
    TaskSignal = "task.signal", task_signal: SignalParams => TaskRecord;
    /// Moves a running foreground task to the background.
    TaskDetach = "task.detach", task_detach: IdParams => TaskRecord;
    /// Stops (SIGSTOP) every process of running shell tasks; answers with their records,
    /// `paused` set. Pausing a paused task changes nothing.
    TaskPause = "task.pause", task_pause: IdsParams => TasksResult;
    /// Continues (SIGCONT) every process of paused tasks; answers with their records.
    /// Resuming a task that is not paused changes nothing.
    TaskResume = "task.resume", task_resume: IdsParams => TasksResult;
    /// The spec a task was started from, without its environment (kept only until it
    /// starts): what starting it again takes.
    TaskSpecGet = "task.spec", task_spec: IdParams => TaskSpec;
    /// Removes finished tasks and their logs.
    TaskClean = "task.clean", task_clean: CleanParams => CleanResult;
    /// Subscribes to lifecycle events: then `event` notifications carrying an [`Event`](crate::Event).
    EventsSubscribe = "events.subscribe", events_subscribe: SubscribeParams => SubscribeResult;
    /// Acknowledges `ack`, then hands out this connection's owner's pending notifications,
    /// held for this connection until acknowledged (here or by `notifications.ack`).
    NotificationsTake = "notifications.take", notifications_take: TakeParams => NotificationsResult;
    /// Acknowledges notices the owner has handled: they are removed, durably, before the answer.
    NotificationsAck = "notifications.ack", notifications_ack: AckParams => Empty;
    /// The agent tool registry's tools, with descriptions from the effective settings.
    ToolsList = "tools.list", tools_list: ToolsListParams => ToolsListResult;
    /// Calls a tool for this connection's owner; the result ends with the owner's pending
    /// notifications.
    ToolsCall = "tools.call", tools_call: ToolCallParams => ToolCallResult;
    /// Cancels a running `tools.call`: a task it waits on in the foreground is stopped with
    /// the reason.
    ToolsCancel = "tools.cancel", tools_cancel: ToolCancelParams => Empty;
    /// Where the task of a handle a `tools.call` gave out is; once it ended, the tool result.
    ToolsTaskGet = "tools.task_get", tools_task_get: HandleParams => ToolTask;
    /// Stops the task of a handle with its whole tree.
    ToolsTaskCancel = "tools.task_cancel", tools_task_cancel: HandleCancelParams => Empty;
}
