//! `aside slots [GROUP] [N|default]`: the slot limits in force, and changing them at runtime.

use aside_protocol::rpc::{method, DaemonStatusResult, Empty, SlotsParams, SlotsStatus};

use crate::cli::SlotsArgs;
use crate::connect::Context;
use crate::render;
use crate::stdout::outln;

/// What the arguments ask for.
enum Ask {
    Show {
        group: Option<String>,
    },
    Set {
        group: Option<String>,
        limit: Option<u32>,
    },
}

fn parse(args: &[String]) -> anyhow::Result<Ask> {
    let limit = |s: &str| -> anyhow::Result<Option<u32>> {
        match s {
            "default" => Ok(None),
            n => n
                .parse::<u32>()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{n:?} is not a number of slots (or default)")),
        }
    };
    Ok(match args {
        [] => Ask::Show { group: None },
        [one] if one == "default" || one.parse::<u32>().is_ok() => Ask::Set {
            group: None,
            limit: limit(one)?,
        },
        [group] => Ask::Show {
            group: Some(group.clone()),
        },
        [group, n] => Ask::Set {
            group: Some(group.clone()),
            limit: limit(n)?,
        },
        _ => anyhow::bail!("aside slots takes at most a group and a number"),
    })
}

pub async fn run(ctx: &Context, a: SlotsArgs) -> anyhow::Result<i32> {
    let ask = parse(&a.args)?;
    let client = ctx.client().await?;
    let (status, group) = match ask {
        Ask::Show { group } => {
            let s: DaemonStatusResult = client.request::<method::DaemonStatus>(Empty {}).await?;
            (s.slots, group)
        }
        Ask::Set { group, limit } => {
            let params = SlotsParams {
                group: group.clone(),
                limit,
            };
            (client.request::<method::SlotsSet>(params).await?, group)
        }
    };
    if a.json {
        render::print_json(&status)?;
    } else {
        print(&status, group.as_deref(), "")?;
    }
    Ok(0)
}

/// The limits as lines (each after `indent`): all of them, or one group's.
pub fn print(s: &SlotsStatus, only: Option<&str>, indent: &str) -> anyhow::Result<()> {
    let changed = |c: bool| if c { " (set with aside slots)" } else { "" };
    if only.is_none() {
        outln!(
            "{indent}all: {} running of {}{}",
            s.running,
            s.limit,
            changed(s.changed)
        )?;
    }
    let mut shown = false;
    for g in s
        .groups
        .iter()
        .filter(|g| only.is_none_or(|o| o == g.group))
    {
        let limit = g
            .limit
            .map_or_else(|| "no limit of its own".to_string(), |n| format!("of {n}"));
        outln!(
            "{indent}{}: {} running {limit}, {} queued{}",
            g.group,
            g.running,
            g.queued,
            changed(g.changed)
        )?;
        shown = true;
    }
    if let (Some(group), false) = (only, shown) {
        outln!("{indent}{group}: no limit of its own, nothing running or queued")?;
    }
    Ok(())
}
