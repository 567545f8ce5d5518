//! One handler per request method.

use std::sync::Arc;
use std::time::Duration;

use aside_core::EngineError;
use aside_protocol::rpc::*;
use aside_protocol::{CancelReason, OutputChunk, StartMode, PROTOCOL_VERSION};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::connection::{err, Conn};
use crate::Shared;

type Reply = Result<Value, RpcError>;

fn ok<T: Serialize>(v: T) -> Reply {
    serde_json::to_value(v).map_err(|e| err(code::INTERNAL, e.to_string()))
}

fn engine_err(e: EngineError) -> RpcError {
    let code = match &e {
        EngineError::UnknownTask(_) => code::UNKNOWN_TASK,
        EngineError::AlreadyEnded { .. } => code::INVALID_STATE,
        EngineError::BadSpec(_) | EngineError::TooManyTasks { .. } => code::BAD_SPEC,
        EngineError::NotRetained { .. } => code::NOT_RETAINED,
        EngineError::Store(_) | EngineError::Output(_) => code::STORAGE,
        EngineError::ShuttingDown => code::SHUTTING_DOWN,
        EngineError::Setup(_) => code::INTERNAL,
    };
    err(code, e.to_string())
}

fn major(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

pub(crate) fn hello(conn: &Conn, p: HelloParams) -> Reply {
    if major(&p.protocol_version) != major(PROTOCOL_VERSION) {
        return Err(err(
            code::VERSION_MISMATCH,
            format!(
                "this daemon speaks protocol {PROTOCOL_VERSION}, the client {}; restart the daemon with the same aside version (aside daemon stop)",
                p.protocol_version
            ),
        ));
    }
    if let Some(owner) = p.owner {
        if owner.is_empty() || owner.len() > 256 {
            return Err(err(code::INVALID_PARAMS, "an owner is 1 to 256 characters"));
        }
        *conn.owner.lock().unwrap_or_else(|p| p.into_inner()) = owner;
    }
    ok(HelloResult {
        protocol_version: PROTOCOL_VERSION.into(),
        daemon_version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
    })
}

pub(crate) async fn handle(shared: &Arc<Shared>, conn: &Arc<Conn>, request: Request) -> Reply {
    let engine = &shared.engine;
    match request {
        Request::Hello(p) => hello(conn, p),
        Request::DaemonStatus(_) => {
            let (queued, running) = engine.counts();
            ok(DaemonStatus {
                pid: std::process::id(),
                socket: shared.paths.socket().display().to_string(),
                home: shared.paths.home.display().to_string(),
                version: env!("CARGO_PKG_VERSION").into(),
                protocol_version: PROTOCOL_VERSION.into(),
                started_at: engine.started_at(),
                queued,
                running,
            })
        }
        Request::DaemonShutdown(_) => {
            let _ = shared.shutdown.send(true);
            ok(Empty {})
        }
        Request::Start(p) => {
            let foreground = p.spec.mode == StartMode::Foreground;
            let started = engine
                .start(&conn.owner(), p.spec)
                .await
                .map_err(engine_err)?;
            if foreground && !started.deduplicated {
                conn.foreground
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(started.task.id);
            }
            ok(StartResult {
                task: started.task,
                deduplicated: started.deduplicated,
            })
        }
        Request::Get(p) => ok(engine.get(p.id).map_err(engine_err)?),
        Request::List(p) => {
            let page = engine
                .list(&aside_core::ListQuery {
                    all: p.all,
                    owner: None,
                    cursor: p.cursor,
                    order: match p.order {
                        ListOrder::OldestFirst => aside_core::Order::OldestFirst,
                        ListOrder::NewestFirst => aside_core::Order::NewestFirst,
                    },
                    limit: p.limit.map_or(1000, |l| l as usize),
                })
                .map_err(engine_err)?;
            ok(ListResult {
                tasks: page.tasks,
                next_cursor: page.next_cursor,
            })
        }
        Request::Read(p) => {
            let max = usize::try_from(p.max_bytes).unwrap_or(usize::MAX);
            let wait = p.wait_ms.map(Duration::from_millis);
            let r = engine
                .read(p.id, p.after, max, wait, p.foreground)
                .await
                .map_err(engine_err)?;
            let next = r.offset + r.data.len() as u64;
            let task = (r.task.is_terminal() || r.task.detached).then_some(r.task.clone());
            ok(ReadResult {
                offset: r.offset,
                chunk: OutputChunk::encode(&r.data),
                next,
                total: r.total,
                eof: r.eof,
                detached: r.task.detached,
                task,
            })
        }
        Request::Wait(p) => {
            let timeout = p.timeout_ms.map(Duration::from_millis);
            let (tasks, done) = engine.wait(&p.ids, timeout).await.map_err(engine_err)?;
            ok(WaitResult { tasks, done })
        }
        Request::Stop(p) => {
            let reason = CancelReason::UserStop { message: p.message };
            let tasks = engine
                .stop(&p.ids, &conn.owner(), reason)
                .await
                .map_err(engine_err)?;
            ok(ListResult {
                tasks,
                next_cursor: None,
            })
        }
        Request::Detach(p) => ok(engine.detach(p.id).map_err(engine_err)?),
        Request::Clean(p) => {
            let removed = engine
                .clean(p.older_than_ms.map(Duration::from_millis))
                .await
                .map_err(engine_err)?;
            ok(CleanResult { removed })
        }
        Request::Subscribe(p) => {
            let (backlog, rx, latest) = engine.subscribe(p.after).map_err(engine_err)?;
            let conn = conn.clone();
            let engine = engine.clone();
            let after = p.after.unwrap_or(latest);
            tokio::spawn(forward_events(engine, conn, backlog, rx, after));
            ok(SubscribeResult { latest_seq: latest })
        }
        Request::TakeNotifications(_) => ok(NotificationsResult {
            notifications: engine
                .take_notifications(&conn.owner())
                .await
                .map_err(engine_err)?,
        }),
        Request::ToolsList(p) => ok(crate::tools::list(shared, p)?),
        Request::ToolsCall(p) => ok(crate::tools::call(shared, conn, *p).await?),
        Request::ToolsCancel(p) => ok(crate::tools::cancel(conn, p)?),
    }
}

/// Sends the backlog, then live events, each once and in order, until the client goes.
async fn forward_events(
    engine: aside_core::Engine,
    conn: Arc<Conn>,
    backlog: Vec<aside_protocol::Event>,
    mut rx: tokio::sync::broadcast::Receiver<aside_protocol::Event>,
    mut last: u64,
) {
    // Give the subscribe response a head start so it arrives before the first event.
    tokio::task::yield_now().await;
    let send = |conn: Arc<Conn>, event: aside_protocol::Event| async move {
        let params = serde_json::to_value(EventMessage { event }).unwrap_or(Value::Null);
        conn.notify("event", params).await
    };
    for event in backlog {
        last = last.max(event.seq);
        if !send(conn.clone(), event).await {
            return;
        }
    }
    let mut closed = conn.closed.subscribe();
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
                let Ok(missed) = engine.events_after(last, 100_000) else {
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
