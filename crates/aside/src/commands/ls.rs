//! `aside ls`: live tasks, plus finished ones whose end you have not seen.

use std::collections::BTreeMap;

use aside_protocol::rpc::{Empty, ListParams, ListResult, NotificationsResult};
use serde_json::Value;

use crate::cli::LsArgs;
use crate::connect::Context;
use crate::render;

pub async fn run(ctx: &Context, a: LsArgs) -> anyhow::Result<i32> {
    let client = ctx.client().await?;
    // Showing a finished task here is how its notification reaches a person: taken once.
    let notes: NotificationsResult = client.call("notifications.take", Empty {}).await?;
    let list: ListResult = client.call("task.list", ListParams { all: a.all }).await?;
    let mut tasks: BTreeMap<_, _> = list.tasks.into_iter().map(|t| (t.id, (t, false))).collect();
    for n in notes.notifications {
        let id = n.task.id;
        tasks.entry(id).or_insert((n.task, true)).1 = true;
    }
    let tasks: Vec<_> = tasks.into_values().collect();
    if a.json {
        let rows: Vec<Value> = tasks
            .iter()
            .map(|(t, unseen)| {
                let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("unseen".into(), Value::Bool(*unseen));
                }
                v
            })
            .collect();
        render::print_json(&rows)?;
    } else if tasks.is_empty() {
        println!(
            "no tasks{}",
            if a.all {
                ""
            } else {
                " running (aside ls --all shows finished ones)"
            }
        );
    } else {
        print!("{}", render::table(&tasks));
    }
    Ok(0)
}
