//! The engine in-process, with real processes: slot accounting on every terminal path,
//! dedupe, what stays in memory, and a slow store that must not stall anyone.

use std::future::Future;
use std::time::{Duration, Instant};

use aside_protocol::{
    CancelReason, EventKind, Limit, ShellCommand, StartMode, TaskId, TaskKind, TaskSpec, TaskState,
};

use super::*;
use crate::config::Config;
use aside_store::Order;

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn engine(dir: &tempfile::TempDir, config: &str) -> Engine {
    Engine::open(dir.path().to_path_buf(), Config::parse(config).unwrap()).unwrap()
}

fn bg(script: &str) -> TaskSpec {
    let mut spec = TaskSpec::shell(ShellCommand::Script(script.into()));
    spec.mode = StartMode::Background;
    spec.cwd = Some("/".into());
    spec
}

fn fg(script: &str) -> TaskSpec {
    let mut spec = bg(script);
    spec.mode = StartMode::Foreground;
    spec.wait = Some(Limit::NONE);
    spec
}

async fn ended(e: &Engine, id: TaskId) -> TaskState {
    let (records, all) = e.wait(&[id], Some(Duration::from_secs(30))).await.unwrap();
    assert!(all, "task {id} did not end: {records:?}");
    records[0].state.clone()
}

/// Queued and running counts, once the engine has settled what it is doing.
async fn settled_counts(e: &Engine, want: (usize, usize)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while e.counts() != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(e.counts(), want);
}

#[test]
fn slots_come_back_on_every_terminal_path() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "max_running = 1");
        // A command that cannot start.
        let mut missing = bg("unused");
        missing.kind = TaskKind::Shell {
            command: ShellCommand::Argv(vec!["aside-test-no-such-command".into()]),
            input: aside_protocol::Input::None,
        };
        let t = e.start("t", missing).await.unwrap().task;
        let state = ended(&e, t.id).await;
        assert!(matches!(state, TaskState::Failed { .. }), "{state:?}");
        settled_counts(&e, (0, 0)).await;

        // Running, with another queued behind it, stopped while queued: it never started.
        let running = e.start("t", bg("sleep 30")).await.unwrap().task;
        let queued = e.start("t", bg("true")).await.unwrap().task;
        settled_counts(&e, (1, 1)).await;
        let stop = CancelReason::UserStop { message: None };
        let stopped = e.stop(&[queued.id], "t", stop.clone()).await.unwrap();
        assert!(
            matches!(
                stopped[0].state,
                TaskState::Cancelled {
                    started_at: None,
                    ..
                }
            ),
            "{stopped:?}"
        );
        settled_counts(&e, (0, 1)).await;
        e.stop(&[running.id], "t", stop).await.unwrap();
        settled_counts(&e, (0, 0)).await;

        // A timeout, a failing exit, a success: each gives its slot back.
        let mut timed = bg("sleep 30");
        timed.timeout = Some(Limit::Millis(100));
        let t = e.start("t", timed).await.unwrap().task;
        assert!(matches!(ended(&e, t.id).await, TaskState::TimedOut { .. }));
        let t = e.start("t", bg("exit 3")).await.unwrap().task;
        assert_eq!(ended(&e, t.id).await.exit_code(), Some(3));
        let t = e.start("t", bg("true")).await.unwrap().task;
        assert_eq!(ended(&e, t.id).await.name(), "succeeded");
        settled_counts(&e, (0, 0)).await;
        e.shutdown().await;
    });
}

#[test]
fn dedupe_returns_the_live_task_and_frees_its_key_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "");
        let keyed = |script: &str| {
            let mut s = bg(script);
            s.dedupe_key = Some("k".into());
            s
        };
        let first = e.start("t", keyed("sleep 30")).await.unwrap();
        assert!(!first.deduplicated);
        let again = e.start("t", keyed("echo other")).await.unwrap();
        assert!(again.deduplicated);
        assert_eq!(again.task.id, first.task.id);
        e.stop(&[first.task.id], "t", CancelReason::Shutdown)
            .await
            .unwrap();
        let fresh = e.start("t", keyed("true")).await.unwrap();
        assert!(!fresh.deduplicated, "the key is free once its task ended");
        assert_ne!(fresh.task.id, first.task.id);
        e.shutdown().await;
    });
}

#[test]
fn finished_tasks_leave_memory_and_are_read_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "");
        let t = e.start("t", bg("echo stored")).await.unwrap().task;
        assert_eq!(ended(&e, t.id).await.name(), "succeeded");
        assert!(
            !e.lock().tasks.contains_key(&t.id),
            "a finished background task is not held in memory"
        );
        assert_eq!(e.get(t.id).unwrap().state.name(), "succeeded");
        let out = e.read(t.id, 0, 100, None, false).await.unwrap();
        assert_eq!(out.data, b"stored\n");
        assert!(out.eof);
        let all = e
            .list(&ListQuery {
                all: true,
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(all.tasks.len(), 1);
        assert!(e.list(&ListQuery::default()).unwrap().tasks.is_empty());
        assert!(matches!(
            e.get(TaskId::new(999).unwrap()),
            Err(EngineError::UnknownTask(_))
        ));
        e.shutdown().await;
    });
}

#[test]
fn listings_page_through_history_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "");
        let mut ids = Vec::new();
        for _ in 0..5 {
            let t = e.start("t", bg("true")).await.unwrap().task;
            ended(&e, t.id).await;
            ids.push(t.id);
        }
        let mut q = ListQuery {
            all: true,
            limit: 2,
            ..ListQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = e.list(&q).unwrap();
            seen.extend(page.tasks.iter().map(|t| t.id));
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        let newest = e
            .list(&ListQuery {
                all: true,
                order: Order::NewestFirst,
                limit: 2,
                ..ListQuery::default()
            })
            .unwrap();
        let got: Vec<TaskId> = newest.tasks.iter().map(|t| t.id).collect();
        assert_eq!(got, [ids[4], ids[3]]);
        assert_eq!(newest.next_cursor, Some(ids[3]));
        e.shutdown().await;
    });
}

#[test]
fn foreground_output_kept_in_memory_is_evicted_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "retained_memory = \"10B\"");
        let first = e.start("t", fg("printf 123456")).await.unwrap().task;
        ended(&e, first.id).await;
        let out = e.read(first.id, 0, 100, None, false).await.unwrap();
        assert_eq!(out.data, b"123456", "kept in memory, no log");
        assert!(out.task.log_path.is_none());
        let second = e.start("t", fg("printf abcdef")).await.unwrap().task;
        ended(&e, second.id).await;
        assert!(matches!(
            e.read(first.id, 0, 100, None, false).await,
            Err(EngineError::NotRetained { .. })
        ));
        let out = e.read(second.id, 0, 100, None, false).await.unwrap();
        assert_eq!(out.data, b"abcdef");
        // Asked to keep it, the output goes to a log and stays readable from there.
        let log = e.keep_log(second.id).unwrap().expect("a log");
        assert_eq!(std::fs::read(&log).unwrap(), b"abcdef");
        e.flush().await.unwrap();
        assert_eq!(
            e.get(second.id).unwrap().log_path.as_deref(),
            Some(log.as_str())
        );
        e.shutdown().await;
    });
}

#[test]
fn an_end_is_announced_once_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = Engine::builder(dir.path().to_path_buf(), Config::default())
            .commit_delay(Duration::from_millis(100))
            .open()
            .unwrap();
        let (_, mut events, _) = e.subscribe(None).unwrap();
        let t = e.start("t", bg("true")).await.unwrap().task;
        loop {
            let ev = events.recv().await.unwrap();
            if let EventKind::Finished { outcome } = &ev.kind {
                assert_eq!(outcome.name(), "succeeded");
                // Whoever hears of it finds it ended, in memory and on disk.
                assert_eq!(e.get(t.id).unwrap().state.name(), "succeeded");
                let stored = e.inner.store.get_task(t.id).unwrap().unwrap();
                assert_eq!(stored.state.name(), "succeeded");
                assert!(e.events_after(ev.seq - 1, 1).unwrap()[0] == ev);
                break;
            }
        }
        e.shutdown().await;
    });
}

#[test]
fn a_slow_store_does_not_stall_reads_of_other_tasks() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let delay = Duration::from_secs(2);
        let e = Engine::builder(dir.path().to_path_buf(), Config::default())
            .commit_delay(delay)
            .open()
            .unwrap();
        let a = e.start("t", bg("echo ready; sleep 30")).await.unwrap().task;
        // Wait for its output, then keep the store busy with other tasks' starts.
        e.read(a.id, 0, 100, Some(Duration::from_secs(30)), false)
            .await
            .unwrap();
        let mut pending = Vec::new();
        for _ in 0..5 {
            let e = e.clone();
            pending.push(tokio::spawn(async move { e.start("t", bg("true")).await }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            pending.iter().all(|p| !p.is_finished()),
            "the starts wait for the slow store"
        );
        let t0 = Instant::now();
        let got = e.get(a.id).unwrap();
        let read = e.read(a.id, 0, 100, None, false).await.unwrap();
        let took = t0.elapsed();
        assert_eq!(got.state.name(), "running");
        assert_eq!(read.data, b"ready\n");
        // The store holds each commit 2 s; answers that waited for it would take that long.
        assert!(
            took < delay / 2,
            "get and read of another task waited {took:?} for the store"
        );
        for p in pending {
            p.await.unwrap().unwrap();
        }
        e.stop(&[a.id], "t", CancelReason::Shutdown).await.unwrap();
        e.shutdown().await;
    });
}

#[test]
fn parallel_spawn_failures_each_end_failed_with_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "max_running = 64");
        // Commands that exit at once keep the reaper busy while others fail to exec: std
        // waits for a child whose exec failed itself, and must find it unreaped.
        let mut starts = Vec::new();
        for n in 0..120 {
            let e = e.clone();
            starts.push(tokio::spawn(async move {
                let mut spec = bg("true");
                // A whole environment, as the CLI sends: std then forks itself rather than
                // using posix_spawn, and reaps a child whose exec failed on its own.
                spec.env = Some(std::env::vars().collect());
                if n % 2 == 0 {
                    spec.kind = TaskKind::Shell {
                        command: ShellCommand::Argv(vec![format!("aside-test-missing-{n}")]),
                        input: aside_protocol::Input::None,
                    };
                }
                (n, e.start("t", spec).await.unwrap().task.id)
            }));
        }
        for s in starts {
            let (n, id) = s.await.unwrap();
            match ended(&e, id).await {
                TaskState::Failed {
                    failure: aside_protocol::Failure::Spawn { not_found, .. },
                    ..
                } if n % 2 == 0 => assert!(not_found),
                TaskState::Succeeded { .. } if n % 2 == 1 => {}
                other => panic!("task {id} ({n}): {other:?}"),
            }
        }
        settled_counts(&e, (0, 0)).await;
        e.shutdown().await;
    });
}

#[test]
fn the_environment_is_not_kept_once_the_task_has_started() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "");
        let (_, mut events, _) = e.subscribe(None).unwrap();
        let mut with_env = bg("sleep 30");
        with_env.env = Some([("SECRET".to_string(), "s3cret".to_string())].into());
        with_env.env_extra = [("TOKEN".to_string(), "t0ken".to_string())].into();
        let a = e.start("t", with_env).await.unwrap().task.id;
        let plain = bg("sleep 30");
        let b = e.start("t", plain.clone()).await.unwrap().task.id;
        // Events are published once their write is durable.
        let mut started = 0;
        while started < 2 {
            if let EventKind::Started { .. } = events.recv().await.unwrap().kind {
                started += 1;
            }
        }
        let (live, _) = e.inner.store.load_live_tasks().unwrap();
        let spec = |id| &live.iter().find(|t| t.record.id == id).unwrap().spec;
        assert_eq!(spec(a).env, None);
        assert!(spec(a).env_extra.is_empty(), "{:?}", spec(a).env_extra);
        assert_eq!(spec(a).kind, plain.kind);
        assert_eq!(
            spec(b),
            &plain,
            "a spec with no environment is kept as it came"
        );
        e.stop(&[a, b], "t", CancelReason::Shutdown).await.unwrap();
        e.shutdown().await;
    });
}

#[test]
fn a_notice_is_held_for_its_consumer_until_acknowledged_and_freed_if_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "");
        let t = e.start("me", bg("true")).await.unwrap();
        ended(&e, t.task.id).await;
        let a = e.notice_consumer();
        let b = e.notice_consumer();
        let taken = a.take("me", &[]).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].task.id, t.task.id);
        // Held for `a`: not handed to `b` (nor to `a` twice), and another owner cannot
        // acknowledge it away.
        assert!(b.take("me", &[]).await.unwrap().is_empty());
        assert!(a.take("me", &[]).await.unwrap().is_empty());
        b.ack("someone-else", &[taken[0].seq]).await.unwrap();
        // `a` goes away without acknowledging (a crash, a broken pipe): it comes back.
        drop(a);
        let again = b.take("me", &[]).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].seq, taken[0].seq);
        // Acknowledged with the next take: gone for everyone.
        assert!(b.take("me", &[again[0].seq]).await.unwrap().is_empty());
        assert!(e
            .notice_consumer()
            .take("me", &[])
            .await
            .unwrap()
            .is_empty());
        assert!(!e.has_notifications("me"));
    });
}

#[test]
fn the_owner_acknowledges_a_notice_another_of_its_consumers_still_holds() {
    // A client that handled a notice on a connection it lost acknowledges it on the next,
    // before the daemon has dropped the old one: final, not handed out again.
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let e = engine(&dir, "");
        let t = e.start("me", bg("true")).await.unwrap();
        ended(&e, t.task.id).await;
        let old = e.notice_consumer();
        let taken = old.take("me", &[]).await.unwrap();
        assert_eq!(taken.len(), 1);
        let new = e.notice_consumer();
        assert!(new.take("me", &[taken[0].seq]).await.unwrap().is_empty());
        drop(old);
        assert!(new.take("me", &[]).await.unwrap().is_empty());
        assert!(!e.has_notifications("me"));
    });
}

#[test]
fn a_notice_taken_before_a_restart_is_acknowledged_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let seq = block_on(async {
        let e = engine(&dir, "");
        let t = e.start("me", bg("true")).await.unwrap();
        ended(&e, t.task.id).await;
        let taken = e.notice_consumer().take("me", &[]).await.unwrap();
        assert_eq!(taken.len(), 1);
        e.shutdown().await;
        taken[0].seq
    });
    block_on(async {
        let e = engine(&dir, "");
        let c = e.notice_consumer();
        // Unacknowledged when the daemon went: pending again, until the owner's ack arrives.
        let pending = c.take("me", &[]).await.unwrap();
        assert_eq!(pending.iter().map(|n| n.seq).collect::<Vec<_>>(), vec![seq]);
        drop(c);
        assert!(e
            .notice_consumer()
            .take("me", &[seq])
            .await
            .unwrap()
            .is_empty());
    });
}

#[test]
fn a_handle_finds_its_task_across_a_restart_and_its_end_is_not_announced() {
    let dir = tempfile::tempdir().unwrap();
    let (running, done, handles) = block_on(async {
        let e = engine(&dir, "");
        // One given a handle while it runs, one after it ended (its notice is dropped).
        let running = e.start("me", bg("sleep 0.2")).await.unwrap().task.id;
        let done = e.start("me", bg("true")).await.unwrap().task.id;
        ended(&e, done).await;
        let h1 = e.issue_handle(running).await.unwrap();
        let h2 = e.issue_handle(done).await.unwrap();
        assert_ne!(h1.handle, h2.handle);
        assert!(h1.handle.len() > 30, "unguessable: {}", h1.handle);
        ended(&e, running).await;
        assert!(
            !e.has_notifications("me"),
            "a task with a handle is not announced"
        );
        assert!(matches!(
            e.issue_handle(TaskId::new(999).unwrap()).await,
            Err(EngineError::UnknownTask(_))
        ));
        e.shutdown().await;
        (running, done, [h1, h2])
    });
    block_on(async {
        let e = engine(&dir, "");
        assert_eq!(
            e.task_of_handle(&handles[0].handle).unwrap(),
            Some(handles[0].clone())
        );
        assert_eq!(
            e.task_of_handle(&handles[1].handle)
                .unwrap()
                .map(|h| h.task),
            Some(done)
        );
        assert_eq!(e.task_of_handle("1-00").unwrap(), None);
        let _ = running;
        e.shutdown().await;
    });
}

#[test]
fn a_handle_that_cannot_be_stored_leaves_the_task_announced() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut b = Engine::builder(dir.path().to_path_buf(), Config::parse("").unwrap());
        b.store.full_disk = full.clone();
        let e = b.open().unwrap();
        let t = e.start("me", bg("sleep 0.2")).await.unwrap().task.id;
        full.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(e.issue_handle(t).await.is_err());
        full.store(false, std::sync::atomic::Ordering::SeqCst);
        ended(&e, t).await;
        assert!(
            e.has_notifications("me"),
            "its end is announced as any other's"
        );
        e.shutdown().await;
    });
}
