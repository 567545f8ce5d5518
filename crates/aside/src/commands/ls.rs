//! `aside ls`: live tasks, plus finished ones whose end you have not seen; `--all` pages
//! through every stored task, so history of any length is listed without being held.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use aside_client::Client;
use aside_protocol::rpc::{
    method, AckParams, ListOrder, ListParams, ListResult, NotificationsResult, TakeParams,
};
use aside_protocol::{TaskId, TaskRecord};

use crate::cli::LsArgs;
use crate::connect::Context;
use crate::render;
use crate::stdout::StdoutError;
use crate::task_filter::TaskFilter;

/// Records asked for per page.
const PAGE: u32 = 500;

pub async fn run(ctx: &Context, a: LsArgs) -> anyhow::Result<i32> {
    let client = ctx.client().await?;
    // Showing a finished task here is how its notification reaches a person. It is held for
    // this connection and acknowledged only once the listing is written: a listing that
    // cannot be written (a closed or full stdout) leaves it for the next one, and so does
    // one whose filters left the task out.
    let notes: NotificationsResult = client
        .request::<method::NotificationsTake>(TakeParams::default())
        .await?;
    let held: Vec<(u64, TaskId)> = notes
        .notifications
        .iter()
        .map(|n| (n.seq, n.task.id))
        .collect();
    let unseen: BTreeMap<TaskId, TaskRecord> = notes
        .notifications
        .into_iter()
        .map(|n| (n.task.id, n.task))
        .collect();
    let filter = TaskFilter {
        states: a.states.clone(),
        groups: a.groups.clone(),
        labels: a.labels.clone(),
    };
    let mut out = Output::new(a.json, &filter, std::io::stdout().lock());
    if a.all {
        list_all(&client, &a, &unseen, &mut out).await?;
    } else {
        // Live tasks, and the unseen ones among them in id order.
        let mut rows: BTreeMap<TaskId, TaskRecord> = unseen.clone();
        let mut cursor = None;
        loop {
            let page = page(&client, false, cursor, ListOrder::OldestFirst, PAGE).await?;
            rows.extend(page.tasks.into_iter().map(|t| (t.id, t)));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        for t in rows.values() {
            out.row(t, unseen.contains_key(&t.id))?;
        }
    }
    let shown = out.finish(a.all)?;
    let seqs: Vec<u64> = held
        .iter()
        .filter(|(_, id)| shown.contains(id))
        .map(|(seq, _)| *seq)
        .collect();
    if !seqs.is_empty() {
        if let Err(e) = client
            .request::<method::NotificationsAck>(AckParams { seqs })
            .await
        {
            // The listing is out; these tasks are marked again next time.
            eprintln!("aside: could not mark the ended tasks as seen: {e}");
        }
    }
    Ok(0)
}

/// Every stored task, oldest first, a page at a time; with `--limit`, the newest N.
async fn list_all(
    client: &Client,
    a: &LsArgs,
    unseen: &BTreeMap<TaskId, TaskRecord>,
    out: &mut Output<'_, impl Write>,
) -> anyhow::Result<()> {
    if let Some(limit) = a.limit {
        let mut newest = Vec::new();
        let mut cursor = None;
        while newest.len() < limit {
            // With filters, a page holds fewer rows that count: ask for whole pages.
            let want = match out.filter.is_active() {
                true => PAGE,
                false => (limit - newest.len()).min(PAGE as usize) as u32,
            };
            let page = page(client, true, cursor, ListOrder::NewestFirst, want).await?;
            let left = limit - newest.len();
            newest.extend(
                page.tasks
                    .into_iter()
                    .filter(|t| out.filter.lets(t))
                    .take(left),
            );
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        for t in newest.iter().rev() {
            out.row(t, unseen.contains_key(&t.id))?;
        }
        return Ok(());
    }
    let mut cursor = None;
    loop {
        let page = page(client, true, cursor, ListOrder::OldestFirst, PAGE).await?;
        for t in &page.tasks {
            out.row(t, unseen.contains_key(&t.id))?;
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            return Ok(());
        }
    }
}

async fn page(
    client: &Client,
    all: bool,
    cursor: Option<TaskId>,
    order: ListOrder,
    limit: u32,
) -> anyhow::Result<ListResult> {
    let params = ListParams {
        all,
        limit: Some(limit),
        cursor,
        order,
    };
    Ok(client.request::<method::TaskList>(params).await?)
}

/// Rows as they come: a table for people, or one JSON array.
struct Output<'a, W: Write> {
    json: bool,
    filter: &'a TaskFilter,
    w: W,
    rows: usize,
    /// The unseen tasks listed: only their notifications are acknowledged.
    shown: BTreeSet<TaskId>,
}

impl<'a, W: Write> Output<'a, W> {
    fn new(json: bool, filter: &'a TaskFilter, w: W) -> Self {
        Self {
            json,
            filter,
            w,
            rows: 0,
            shown: BTreeSet::new(),
        }
    }

    /// Writes the task's row, if the filters let it through.
    fn row(&mut self, t: &TaskRecord, unseen: bool) -> anyhow::Result<()> {
        if !self.filter.lets(t) {
            return Ok(());
        }
        if self.json {
            self.w
                .write_all(if self.rows == 0 { b"[\n" } else { b",\n" })
                .map_err(StdoutError)?;
            let mut v = serde_json::to_value(t)?;
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("unseen".into(), serde_json::Value::Bool(unseen));
            }
            serde_json::to_writer_pretty(&mut self.w, &v).map_err(StdoutError::from)?;
        } else {
            if self.rows == 0 {
                self.w
                    .write_all(render::table_header().as_bytes())
                    .map_err(StdoutError)?;
            }
            self.w
                .write_all(render::table_row(t, unseen).as_bytes())
                .map_err(StdoutError)?;
        }
        self.rows += 1;
        if unseen {
            self.shown.insert(t.id);
        }
        Ok(())
    }

    /// Ends the listing; returns the unseen tasks it showed, once it is written.
    fn finish(mut self, all: bool) -> anyhow::Result<BTreeSet<TaskId>> {
        let empty = match (all, self.filter.is_active()) {
            (true, false) => "no tasks",
            (false, false) => "no tasks running (aside ls --all shows finished ones)",
            (true, true) => "no tasks match",
            (false, true) => "no tasks match (aside ls --all looks through finished ones too)",
        };
        match (self.json, self.rows) {
            (true, 0) => self.w.write_all(b"[]\n").map_err(StdoutError)?,
            (true, _) => self.w.write_all(b"\n]\n").map_err(StdoutError)?,
            (false, 0) => writeln!(self.w, "{empty}").map_err(StdoutError)?,
            (false, _) if !self.shown.is_empty() => self
                .w
                .write_all(render::UNSEEN_NOTE.as_bytes())
                .map_err(StdoutError)?,
            (false, _) => {}
        }
        self.w.flush().map_err(StdoutError)?;
        Ok(self.shown)
    }
}
