//! One handler per method: the daemon's side of [`Handlers`]. Each takes its method's params
//! and returns its method's result, as `aside_protocol::rpc` defines them.

use std::time::Duration;

use base64::Engine as _;

use aside_core::{ListQuery, Order};

use crate::{engine_err, Shutdown};
use aside_protocol::rpc::*;
use aside_protocol::{
    CancelReason, Event, OutputChunk, StartMode, TaskRecord, TaskSpec, PROTOCOL_VERSION,
};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::connection::{Call, Conn};

/// Reads up to this size are answered without waiting for the client to read earlier ones.
const SMALL_READ: usize = 64 << 10;

/// Records one catch-up from the store returns at most, for a subscriber that fell behind.
const CATCH_UP: usize = 100_000;

/// The longest free-text message kept with a task (a stop's message, a cancel's reason).
const MAX_MESSAGE: usize = 4096;
/// The longest name or id a client picks (a tool's name, a call id).
const MAX_ID: usize = 256;

/// Refuses a string field longer than `max` bytes: what a client sends is bounded.
fn at_most(what: &str, text: &str, max: usize) -> Result<(), RpcError> {
    if text.len() > max {
        return Err(RpcError::new(
            ErrorCode::InvalidParams,
            format!(
                "the {what} is {} bytes, more than the limit of {max}",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn check_ack(seqs: &[u64]) -> Result<(), RpcError> {
    if seqs.len() > MAX_ACK {
        return Err(RpcError::new(
            ErrorCode::InvalidParams,
            format!("at most {MAX_ACK} notices can be acknowledged at once"),
        ));
    }
    Ok(())
}

/// A large answer is read only once the client has taken the previous ones, one at a time
/// per connection: however many it asks for without reading, the daemon holds at most one
/// of them beyond what is queued. Any waiting is done before the turn is taken.
async fn large_read_turn(conn: &Conn) -> Result<tokio::sync::MutexGuard<'_, ()>, RpcError> {
    let turn = conn.large_reads.lock().await;
    if !conn.room().await {
        return Err(RpcError::new(ErrorCode::Internal, "the client went away"));
    }
    Ok(turn)
}

fn major(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

impl Handlers for Call {
    async fn hello(&self, p: HelloParams) -> Result<HelloResult, RpcError> {
        if major(&p.protocol_version) != major(PROTOCOL_VERSION) {
            return Err(RpcError::new(
                ErrorCode::VersionMismatch,
                format!(
                    "this daemon speaks protocol {PROTOCOL_VERSION}, the client {}; restart the daemon with the same aside version (aside daemon stop)",
                    p.protocol_version
                ),
            ));
        }
        if let Some(owner) = p.owner {
            if owner.is_empty() || owner.len() > 256 {
                return Err(RpcError::new(
                    ErrorCode::InvalidParams,
                    "an owner is 1 to 256 characters",
                ));
            }
            *self.conn.owner.lock().unwrap_or_else(|p| p.into_inner()) = owner;
        }
        Ok(HelloResult {
            protocol_version: PROTOCOL_VERSION.into(),
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
        })
    }

    async fn daemon_status(&self, _: Empty) -> Result<DaemonStatusResult, RpcError> {
        let engine = &self.shared.engine;
        let (queued, running) = engine.counts();
        Ok(DaemonStatusResult {
            pid: std::process::id(),
            socket: self.shared.paths.socket().display().to_string(),
            home: self.shared.paths.home.display().to_string(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol_version: PROTOCOL_VERSION.into(),
            started_at: engine.started_at(),
            queued,
            running,
            slots: engine.slots(),
        })
    }

    async fn slots_set(&self, p: SlotsParams) -> Result<SlotsStatus, RpcError> {
        self.shared
            .engine
            .set_slots(p.group.as_deref(), p.limit)
            .await
            .map_err(engine_err)
    }

    async fn daemon_shutdown(&self, p: ShutdownParams) -> Result<Empty, RpcError> {
        let how = if p.keep_tasks {
            Shutdown::KeepTasks
        } else {
            Shutdown::StopTasks
        };
        let _ = self.shared.shutdown.send(Some(how));
        Ok(Empty {})
    }

    async fn task_start(&self, p: StartParams) -> Result<StartResult, RpcError> {
        let foreground = p.spec.mode == StartMode::Foreground;
        let started = self
            .shared
            .engine
            .start(&self.conn.owner(), p.spec)
            .await
            .map_err(engine_err)?;
        if foreground && !started.deduplicated {
            self.conn
                .foreground
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(started.task.id);
        }
        Ok(StartResult {
            task: started.task,
            deduplicated: started.deduplicated,
        })
    }

    async fn task_get(&self, p: IdParams) -> Result<TaskRecord, RpcError> {
        self.shared.engine.get(p.id).map_err(engine_err)
    }

    async fn task_list(&self, p: ListParams) -> Result<ListResult, RpcError> {
        let query = ListQuery {
            all: p.all,
            owner: None,
            cursor: p.cursor,
            order: match p.order {
                ListOrder::OldestFirst => Order::OldestFirst,
                ListOrder::NewestFirst => Order::NewestFirst,
            },
            limit: p.limit.map_or(ListQuery::default().limit, |l| l as usize),
        };
        let page = self.shared.engine.list(&query).map_err(engine_err)?;
        Ok(ListResult {
            tasks: page.tasks,
            next_cursor: page.next_cursor,
        })
    }

    async fn task_read(&self, p: ReadParams) -> Result<ReadResult, RpcError> {
        if p.foreground && self.shared.engine.attend(p.id) {
            // Its foreground caller, back on a new connection (after a daemon restart):
            // this connection going away stops the task again.
            self.conn
                .foreground
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(p.id);
        }
        let max = usize::try_from(p.max_bytes).unwrap_or(usize::MAX);
        let wait = p.wait_ms.map(Duration::from_millis);
        let engine = &self.shared.engine;
        let pattern = match p.until.as_deref() {
            Some(until) => Some(aside_core::Pattern::new(until).map_err(|e| engine_err(e.into()))?),
            None => None,
        };
        let (mut r, matched) = match &pattern {
            Some(pattern) => {
                let wait = wait.unwrap_or(Duration::from_millis(UNTIL_WAIT_MS));
                if max <= SMALL_READ {
                    let u = engine.read_until(p.id, p.after, pattern, wait, max).await;
                    let u = u.map_err(engine_err)?;
                    (u.read, u.matched)
                } else {
                    // The scan first, outside the turn; then the bytes, as below.
                    let u = engine.read_until(p.id, p.after, pattern, wait, 1).await;
                    let u = u.map_err(engine_err)?;
                    let _turn = large_read_turn(&self.conn).await?;
                    let r = engine.read_up_to(p.id, p.after, u.read.next, max).await;
                    (r.map_err(engine_err)?, u.matched)
                }
            }
            None => {
                let read = |max, wait| async move {
                    if p.plain {
                        engine
                            .read_plain(p.id, p.after, max, wait, p.foreground)
                            .await
                    } else {
                        engine.read(p.id, p.after, max, wait, p.foreground).await
                    }
                };
                if max <= SMALL_READ {
                    (read(max, wait).await.map_err(engine_err)?, None)
                } else {
                    // The long-poll, if any, waits first, outside the turn (a plain one
                    // also for the rest of a sequence it would hold back).
                    if wait.is_some() {
                        let probe = if p.plain { SMALL_READ } else { 1 };
                        read(probe, wait).await.map_err(engine_err)?;
                    }
                    let _turn = large_read_turn(&self.conn).await?;
                    (read(max, None).await.map_err(engine_err)?, None)
                }
            }
        };
        if p.plain && pattern.is_some() {
            // It ends at a match or short of an unfinished sequence: nothing is cut.
            r.data = aside_core::ansi::strip(&r.data);
        }
        let detached = r.task.detached;
        let task = (r.task.is_terminal() || detached).then_some(r.task);
        let screen = match p.screen {
            Some(format) => Some(engine.screen(p.id, format).map_err(engine_err)?),
            None => None,
        };
        Ok(ReadResult {
            offset: r.offset,
            chunk: OutputChunk::encode(&r.data),
            next: r.next,
            total: r.total,
            eof: r.eof,
            detached,
            task,
            matched,
            screen,
        })
    }

    async fn task_write(&self, p: WriteParams) -> Result<WriteResult, RpcError> {
        let data = base64::engine::general_purpose::STANDARD
            .decode(&p.data)
            .map_err(|e| {
                RpcError::new(ErrorCode::InvalidParams, format!("data is not base64: {e}"))
            })?;
        let written = self
            .shared
            .engine
            .write(p.id, &data, p.eof)
            .map_err(engine_err)?;
        Ok(WriteResult { written })
    }

    async fn task_signal(&self, p: SignalParams) -> Result<TaskRecord, RpcError> {
        self.shared
            .engine
            .signal(p.id, p.signal)
            .map_err(engine_err)
    }

    async fn task_wait(&self, p: WaitParams) -> Result<WaitResult, RpcError> {
        let timeout = p.timeout_ms.map(Duration::from_millis);
        let (tasks, done) = self
            .shared
            .engine
            .wait(&p.ids, timeout)
            .await
            .map_err(engine_err)?;
        Ok(WaitResult { tasks, done })
    }

    async fn task_stop(&self, p: StopParams) -> Result<StopResult, RpcError> {
        if let Some(m) = &p.message {
            at_most("stop message", m, MAX_MESSAGE)?;
        }
        let reason = CancelReason::UserStop { message: p.message };
        let tasks = self
            .shared
            .engine
            .stop(&p.ids, &self.conn.owner(), reason)
            .await
            .map_err(engine_err)?;
        Ok(StopResult { tasks })
    }

    async fn task_detach(&self, p: IdParams) -> Result<TaskRecord, RpcError> {
        self.shared.engine.detach(p.id).map_err(engine_err)
    }

    async fn task_pause(&self, p: IdsParams) -> Result<TasksResult, RpcError> {
        let tasks = self
            .shared
            .engine
            .set_paused(&p.ids, true)
            .map_err(engine_err)?;
        Ok(TasksResult { tasks })
    }

    async fn task_resume(&self, p: IdsParams) -> Result<TasksResult, RpcError> {
        let tasks = self
            .shared
            .engine
            .set_paused(&p.ids, false)
            .map_err(engine_err)?;
        Ok(TasksResult { tasks })
    }

    async fn task_spec(&self, p: IdParams) -> Result<TaskSpec, RpcError> {
        self.shared.engine.spec(p.id).map_err(engine_err)
    }

    async fn task_clean(&self, p: CleanParams) -> Result<CleanResult, RpcError> {
        let removed = self
            .shared
            .engine
            .clean(p.older_than_ms.map(Duration::from_millis))
            .await
            .map_err(engine_err)?;
        Ok(CleanResult { removed })
    }

    async fn events_subscribe(&self, p: SubscribeParams) -> Result<SubscribeResult, RpcError> {
        let engine = self.shared.engine.clone();
        let (backlog, rx, latest) = engine.subscribe(p.after).map_err(engine_err)?;
        let after = p.after.unwrap_or(latest);
        // The stream starts once this answer is queued: the answer comes first.
        self.after_reply(Box::pin(forward_events(
            engine,
            self.conn.clone(),
            backlog,
            rx,
            after,
        )));
        Ok(SubscribeResult { latest_seq: latest })
    }

    async fn notifications_take(&self, p: TakeParams) -> Result<NotificationsResult, RpcError> {
        check_ack(&p.ack)?;
        let notifications = self
            .conn
            .notices
            .take(&self.conn.owner(), &p.ack)
            .await
            .map_err(engine_err)?;
        Ok(NotificationsResult { notifications })
    }

    async fn notifications_ack(&self, p: AckParams) -> Result<Empty, RpcError> {
        check_ack(&p.seqs)?;
        self.conn
            .notices
            .ack(&self.conn.owner(), &p.seqs)
            .await
            .map_err(engine_err)?;
        Ok(Empty {})
    }

    async fn tools_list(&self, p: ToolsListParams) -> Result<ToolsListResult, RpcError> {
        crate::tools::list(&self.shared, p)
    }

    async fn tools_call(&self, p: ToolCallParams) -> Result<ToolCallResult, RpcError> {
        at_most("tool name", &p.name, MAX_ID)?;
        if let Some(id) = &p.call_id {
            at_most("call id", id, MAX_ID)?;
        }
        crate::tools::call(&self.shared, &self.conn, p).await
    }

    async fn tools_cancel(&self, p: ToolCancelParams) -> Result<Empty, RpcError> {
        at_most("call id", &p.call_id, MAX_ID)?;
        if let Some(r) = &p.reason {
            at_most("reason", r, MAX_MESSAGE)?;
        }
        crate::tools::cancel(&self.conn, p)
    }

    async fn tools_task_get(&self, p: HandleParams) -> Result<ToolTask, RpcError> {
        at_most("handle", &p.handle, MAX_ID)?;
        crate::handles::get(&self.shared, &self.conn, p).await
    }

    async fn tools_task_cancel(&self, p: HandleCancelParams) -> Result<Empty, RpcError> {
        at_most("handle", &p.handle, MAX_ID)?;
        if let Some(r) = &p.reason {
            at_most("reason", r, MAX_MESSAGE)?;
        }
        crate::handles::cancel(&self.shared, &self.conn, p).await
    }
}

/// Sends the backlog, then live events, each once and in order, until the client goes.
async fn forward_events(
    engine: aside_core::Engine,
    conn: std::sync::Arc<Conn>,
    backlog: Vec<Event>,
    mut rx: broadcast::Receiver<Event>,
    mut last: u64,
) {
    let send = |conn: std::sync::Arc<Conn>, event: Event| async move {
        conn.notify(EVENT_NOTIFICATION, &EventMessage { event })
            .await
    };
    for event in backlog {
        last = last.max(event.seq);
        if !send(conn.clone(), event).await {
            return;
        }
    }
    let mut closed = conn.closed();
    loop {
        let received = tokio::select! {
            r = rx.recv() => r,
            _ = closed.wait_for(|c| *c) => return,
        };
        match received {
            Ok(event) if event.seq <= last => {}
            Ok(event) => {
                last = event.seq;
                if !send(conn.clone(), event).await {
                    return;
                }
            }
            Err(RecvError::Lagged(_)) => {
                // Fell behind the live stream: catch up from the store.
                let Ok(missed) = engine.events_after(last, CATCH_UP) else {
                    return;
                };
                for event in missed {
                    last = event.seq;
                    if !send(conn.clone(), event).await {
                        return;
                    }
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}
