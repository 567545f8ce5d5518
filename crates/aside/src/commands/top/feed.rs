//! What the dashboard asks the daemon, off its drawing loop: the first listing, the records
//! of tasks it learns of from events, output sizes for rates, a task's output as it comes,
//! and the actions its keys take. Answers come back as [`News`] on one channel.

use std::sync::Arc;
use std::time::Instant;

use aside_client::Client;
use aside_protocol::rpc::{
    method, Empty, IdParams, IdsParams, ListOrder, ListParams, ReadParams, SlotsStatus,
    StartParams, StopParams, SubscribeParams,
};
use aside_protocol::{StartMode, TaskId, TaskRecord};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// Records asked for per page of the first listing.
const PAGE: u32 = 2000;
/// Bytes asked for per read of a task's output.
const READ_BYTES: u64 = 256 << 10;
/// Output shown when a task's output pane opens: its last bytes.
const LOG_TAIL: u64 = 64 << 10;
/// How long one read waits for more output (the pane closes it sooner).
const READ_WAIT_MS: u64 = 30_000;

pub enum News {
    /// A record asked for because an event named an unknown task (`None`: it is gone).
    Fetched(TaskId, Option<Box<TaskRecord>>),
    /// Output sizes of running tasks, for their rates.
    Sampled(Vec<(TaskId, u64, Instant)>),
    /// A line for the status bar: what an action did, or why it failed.
    Said(String),
    /// A task restarted as this new one.
    Restarted(TaskId),
    /// Output of the task whose pane is open.
    Output(TaskId, Vec<u8>),
    /// That task's output is all read: how it ended, or why reading stopped.
    OutputEnd(TaskId, String),
    /// The slot limits in force.
    Limits(SlotsStatus),
}

pub type Tx = UnboundedSender<News>;

/// Subscribes to events, then lists every stored task: the events that follow the
/// subscription (they wait in the client) bring the listing up to date, whatever happened
/// while it was read.
pub async fn load(client: &Client) -> anyhow::Result<Vec<TaskRecord>> {
    client
        .request::<method::EventsSubscribe>(SubscribeParams { after: None })
        .await?;
    let mut tasks = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .request::<method::TaskList>(ListParams {
                all: true,
                limit: Some(PAGE),
                cursor,
                order: ListOrder::OldestFirst,
            })
            .await?;
        tasks.extend(page.tasks);
        cursor = page.next_cursor;
        if cursor.is_none() {
            return Ok(tasks);
        }
    }
}

/// The record of a task an event named before the dashboard knew it.
pub fn fetch(client: &Arc<Client>, id: TaskId, tx: &Tx) {
    let (client, tx) = (client.clone(), tx.clone());
    tokio::spawn(async move {
        let rec = client
            .request::<method::TaskGet>(IdParams { id })
            .await
            .ok()
            .map(Box::new);
        let _ = tx.send(News::Fetched(id, rec));
    });
}

/// The slot limits in force (`daemon.status`). They change only by `aside slots`, which no
/// event tells of: asked for when the dashboard opens and now and then after.
pub fn limits(client: &Arc<Client>, tx: &Tx) {
    let (client, tx) = (client.clone(), tx.clone());
    tokio::spawn(async move {
        if let Ok(s) = client.request::<method::DaemonStatus>(Empty {}).await {
            let _ = tx.send(News::Limits(s.slots));
        }
    });
}

/// Output sizes of running tasks. Events carry no output sizes, and the task list is not
/// polled: only the running rows on screen (a screenful at most) are asked for, about once a
/// second, which is what their rates need.
pub fn sample(client: &Arc<Client>, ids: Vec<TaskId>, tx: &Tx) -> JoinHandle<()> {
    let (client, tx) = (client.clone(), tx.clone());
    tokio::spawn(async move {
        let mut sizes = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(t) = client.request::<method::TaskGet>(IdParams { id }).await {
                sizes.push((id, t.output_bytes, Instant::now()));
            }
        }
        let _ = tx.send(News::Sampled(sizes));
    })
}

/// Follows a task's output from near its end, on a connection of its own, until the task
/// ends or the returned handle is aborted (the pane closed).
pub fn follow(client: &Arc<Client>, id: TaskId, tx: &Tx) -> JoinHandle<()> {
    let (client, tx) = (client.clone(), tx.clone());
    tokio::spawn(async move {
        let why = match read_on(&client, id, &tx).await {
            Ok(why) => why,
            Err(e) => format!("reading stopped: {e}"),
        };
        let _ = tx.send(News::OutputEnd(id, why));
    })
}

async fn read_on(client: &Client, id: TaskId, tx: &Tx) -> anyhow::Result<String> {
    // Its own connection, so that long reads wait beside the dashboard's other requests.
    let mut conn = client.reconnect().await?;
    let t: TaskRecord = conn.request::<method::TaskGet>(IdParams { id }).await?;
    let mut after = t.output_bytes.saturating_sub(LOG_TAIL);
    loop {
        let read = conn
            .request::<method::TaskRead>(ReadParams {
                wait_ms: Some(READ_WAIT_MS),
                plain: true,
                ..ReadParams::new(id, after, READ_BYTES)
            })
            .await;
        let r = match read {
            Ok(r) => r,
            Err(e) if Client::broke(&e) => {
                conn = conn.reconnect().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let data = r.chunk.decode()?;
        if !data.is_empty() && tx.send(News::Output(id, data)).is_err() {
            return Ok(String::new());
        }
        after = r.next;
        if r.eof {
            let end = r.task.map(|t| t.state.describe());
            return Ok(format!("task {id} {}", end.as_deref().unwrap_or("ended")));
        }
    }
}

/// What a key asks of a task.
#[derive(Debug, Clone, Copy)]
pub enum Act {
    Stop,
    Detach,
    Pause,
    Resume,
    Restart,
}

/// Does `act` to task `id`; what came of it is said on the status bar.
pub fn act(client: &Arc<Client>, act: Act, id: TaskId, tx: &Tx) {
    let (client, tx) = (client.clone(), tx.clone());
    tokio::spawn(async move {
        let said = match run_act(&client, act, id, &tx).await {
            Ok(said) => said,
            Err(e) => format!("task {id}: {e}"),
        };
        let _ = tx.send(News::Said(said));
    });
}

async fn run_act(client: &Client, act: Act, id: TaskId, tx: &Tx) -> anyhow::Result<String> {
    let ids = vec![id];
    Ok(match act {
        Act::Stop => {
            let r = client
                .request::<method::TaskStop>(StopParams { ids, message: None })
                .await?;
            let state = r.tasks.first().map(|t| t.state.describe());
            format!("task {id} {}", state.as_deref().unwrap_or("stopped"))
        }
        Act::Detach => {
            client
                .request::<method::TaskDetach>(IdParams { id })
                .await?;
            format!("task {id} runs in the background")
        }
        Act::Pause => {
            client
                .request::<method::TaskPause>(IdsParams { ids })
                .await?;
            format!("task {id} paused")
        }
        Act::Resume => {
            client
                .request::<method::TaskResume>(IdsParams { ids })
                .await?;
            format!("task {id} resumed")
        }
        Act::Restart => {
            // As `aside restart` does it, in the background.
            let (mut spec, _) = crate::commands::restart::spec_again(client, id, &[]).await?;
            spec.mode = StartMode::Background;
            let started = client
                .request::<method::TaskStart>(StartParams { spec })
                .await?;
            let new = started.task.id;
            let _ = tx.send(News::Restarted(new));
            match started.deduplicated {
                true => format!("task {new} holds that dedupe key already: nothing was started"),
                false => format!("task {id} restarted as task {new}"),
            }
        }
    })
}
