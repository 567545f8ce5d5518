use aside_protocol::{EventKind, ShellCommand, StartMode, TaskKind, TaskState, Timestamp};

use std::time::Duration;

use super::*;

fn record(id: u64, state: TaskState) -> TaskRecord {
    TaskRecord {
        id: TaskId::new(id).unwrap(),
        kind: TaskKind::Shell {
            command: ShellCommand::Argv(vec!["true".into()]),
            input: aside_protocol::Input::None,
        },
        name: None,
        owner: "cli".into(),
        group: None,
        cwd: "/".into(),
        dedupe_key: None,
        mode: StartMode::Background,
        detached: true,
        paused: false,
        labels: Default::default(),
        after: Vec::new(),
        timeout_ms: None,
        created_at: Timestamp::from_unix_ms(1),
        state,
        output_bytes: 0,
        log_path: None,
        progress: None,
        answer: None,
    }
}

#[test]
fn records_events_and_notifications_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TaskSpec::shell(ShellCommand::Argv(vec!["true".into()]));
    {
        let store = Store::open(dir.path()).unwrap();
        let rec = record(1, TaskState::Queued);
        let ev = Event {
            seq: 1,
            at: Timestamp::now(),
            task_id: rec.id,
            detached: true,
            kind: EventKind::Queued,
        };
        store
            .apply(vec![
                Op::PutTask {
                    record: Box::new(rec.clone()),
                    spec: Some(Box::new(spec.clone())),
                },
                Op::Event(ev),
            ])
            .unwrap();
        let done = record(
            1,
            TaskState::Succeeded {
                started_at: Timestamp::from_unix_ms(2),
                ended_at: Timestamp::from_unix_ms(3),
                exit_code: Some(0),
            },
        );
        store
            .apply(vec![
                Op::PutTask {
                    record: Box::new(done.clone()),
                    spec: None,
                },
                Op::Notify {
                    seq: 1,
                    owner: "cli".into(),
                    task: done.id,
                },
            ])
            .unwrap();
        // A second task, still queued when the store closes.
        store
            .apply(vec![Op::PutTask {
                record: Box::new(record(2, TaskState::Queued)),
                spec: Some(Box::new(spec.clone())),
            }])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let finished = store.get_task(TaskId::new(1).unwrap()).unwrap().unwrap();
    assert_eq!(finished.state.name(), "succeeded");
    // Only live tasks are loaded when the store opens; finished ones stay on disk.
    let (tasks, damaged) = store.load_live_tasks().unwrap();
    assert!(damaged.is_empty());
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].record.state.name(), "queued");
    assert_eq!(tasks[0].spec, spec);
    // A finished task's spec stays readable: what starting it again takes.
    let one = TaskId::new(1).unwrap();
    assert_eq!(store.get_spec(one).unwrap(), Some(spec.clone()));
    assert_eq!(store.get_spec(TaskId::new(9).unwrap()).unwrap(), None);
    assert_eq!(store.last_task_id().unwrap(), 2);
    assert_eq!(store.events_after(0, 10).unwrap().len(), 1);
    assert!(store
        .pending_notifications("someone-else", 10)
        .unwrap()
        .is_empty());
    let n = store.pending_notifications("cli", 10).unwrap();
    assert_eq!(n.len(), 1);
    // Pending until acknowledged, and only by its own owner.
    assert_eq!(store.pending_notifications("cli", 10).unwrap().len(), 1);
    store
        .apply(vec![Op::AckNotifications {
            owner: "someone-else".into(),
            seqs: vec![n[0].seq],
        }])
        .unwrap();
    assert_eq!(store.pending_notifications("cli", 10).unwrap().len(), 1);
    store
        .apply(vec![Op::AckNotifications {
            owner: "cli".into(),
            seqs: vec![n[0].seq],
        }])
        .unwrap();
    assert!(store.pending_notifications("cli", 10).unwrap().is_empty());
}

#[test]
fn ids_are_not_reused_after_removal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let spec = TaskSpec::shell(ShellCommand::Script("true".into()));
    let rec = record(7, TaskState::Queued);
    store
        .apply(vec![Op::PutTask {
            record: Box::new(rec.clone()),
            spec: Some(Box::new(spec)),
        }])
        .unwrap();
    store.apply(vec![Op::Remove(rec.id)]).unwrap();
    assert!(store.load_live_tasks().unwrap().0.is_empty());
    assert!(store.get_task(rec.id).unwrap().is_none());
    assert_eq!(store.last_task_id().unwrap(), 7);
}

#[test]
fn newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("aside.db")).unwrap();
    conn.pragma_update(None, "user_version", FORMAT_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::NewerFormat { .. }), "{err}");
}

fn finished(id: u64, ended_ms: u64) -> TaskRecord {
    record(
        id,
        TaskState::Succeeded {
            started_at: Timestamp::from_unix_ms(1),
            ended_at: Timestamp::from_unix_ms(ended_ms),
            exit_code: Some(0),
        },
    )
}

fn put(record: TaskRecord) -> Op {
    Op::PutTask {
        record: Box::new(record),
        spec: Some(Box::new(TaskSpec::shell(ShellCommand::Script(
            "true".into(),
        )))),
    }
}

fn event(seq: u64, task: u64) -> Op {
    Op::Event(Event {
        seq,
        at: Timestamp::now(),
        task_id: TaskId::new(task).unwrap(),
        detached: true,
        kind: EventKind::Queued,
    })
}

/// A store on a slow disk (made on purpose): writes submitted together wait together and
/// share one commit.
fn slow_store(dir: &std::path::Path) -> Store {
    Store::open_with(
        dir,
        StoreOptions {
            commit_delay: Duration::from_millis(50),
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Submits the numbered writes at once and returns each one's number and whether it was
/// committed, in the order the answers came.
fn submit_together(store: &Store, writes: Vec<(u64, Vec<Op>)>) -> Vec<(u64, bool)> {
    let count = writes.len();
    let (tx, rx) = std::sync::mpsc::channel();
    for (n, ops) in writes {
        let tx = tx.clone();
        store.submit(
            ops,
            Some(Box::new(move |r| {
                tx.send((n, r.is_ok())).unwrap();
            })),
        );
    }
    (0..count).map(|_| rx.recv().unwrap()).collect()
}

#[test]
fn a_failing_write_fails_alone_while_its_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = slow_store(dir.path());
    store
        .apply(vec![put(finished(1, 10)), event(1, 1)])
        .unwrap();
    let answers = submit_together(
        &store,
        vec![
            (2, vec![put(finished(2, 20)), event(2, 2)]),
            // Event 1 exists already: this write breaks a constraint.
            (3, vec![put(finished(3, 30)), event(1, 3)]),
            (4, vec![put(finished(4, 40)), event(3, 4)]),
        ],
    );
    assert_eq!(answers, [(2, true), (3, false), (4, true)], "in order");
    let id = |n| TaskId::new(n).unwrap();
    assert!(store.get_task(id(2)).unwrap().is_some());
    assert!(
        store.get_task(id(3)).unwrap().is_none(),
        "the failed write left nothing behind"
    );
    assert!(store.get_task(id(4)).unwrap().is_some());
    assert_eq!(store.events_after(0, 10).unwrap().len(), 3);
}

/// A removal keeps the highest seq ever handed out even when a removal before it, in the same
/// commit, failed: the mark that write made went with it.
#[test]
fn a_removal_after_a_failed_one_in_its_group_keeps_the_highest_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = slow_store(dir.path());
    store
        .apply(vec![
            put(finished(1, 10)),
            event(5, 1),
            put(finished(2, 20)),
            event(9, 2),
        ])
        .unwrap();
    let id = |n| TaskId::new(n).unwrap();
    let answers = submit_together(
        &store,
        vec![
            // Event 9 exists: this removal fails, and leaves task 1 as it was.
            (1, vec![Op::Remove(id(1)), event(9, 3)]),
            // Task 2 holds the highest event.
            (2, vec![Op::Remove(id(2))]),
        ],
    );
    assert_eq!(answers, [(1, false), (2, true)]);
    assert!(store.get_task(id(1)).unwrap().is_some());
    assert_eq!(
        store.last_event_seq().unwrap(),
        9,
        "seq 9 is never handed out again"
    );
    drop(store);
    assert_eq!(
        Store::open(dir.path()).unwrap().last_event_seq().unwrap(),
        9
    );
}

#[test]
fn pending_notifications_are_read_in_seq_order_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut ops = Vec::new();
    for n in 1..=3 {
        ops.push(put(finished(n, 10)));
        ops.push(Op::Notify {
            seq: 10 - n,
            owner: "cli".into(),
            task: TaskId::new(n).unwrap(),
        });
    }
    store.apply(ops).unwrap();
    let seqs: Vec<u64> = store
        .pending_notifications("cli", 2)
        .unwrap()
        .iter()
        .map(|n| n.seq)
        .collect();
    assert_eq!(seqs, vec![7, 8]);
    assert!(store.has_notifications("cli").unwrap());
}

#[test]
fn pages_run_both_ways_and_expiry_finds_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .apply((1..=10).map(|n| put(finished(n, n * 100))).collect())
        .unwrap();
    store
        .apply(vec![put(record(11, TaskState::Queued))])
        .unwrap();
    let ids = |page: Vec<TaskRecord>| page.iter().map(|t| t.id.get()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_page(None, Order::OldestFirst, None, 3).unwrap()),
        [1, 2, 3]
    );
    let cursor = TaskId::new(3);
    assert_eq!(
        ids(store
            .list_page(cursor, Order::OldestFirst, None, 3)
            .unwrap()),
        [4, 5, 6]
    );
    assert_eq!(
        ids(store.list_page(None, Order::NewestFirst, None, 3).unwrap()),
        [11, 10, 9]
    );
    let cursor = TaskId::new(9);
    assert_eq!(
        ids(store
            .list_page(cursor, Order::NewestFirst, None, 2)
            .unwrap()),
        [8, 7]
    );
    let expired: Vec<u64> = store
        .ended_before(300, 100)
        .unwrap()
        .iter()
        .map(|id| id.get())
        .collect();
    assert_eq!(expired, [1, 2, 3], "the queued task has not ended");
    assert_eq!(store.ended_before(u64::MAX, 100).unwrap().len(), 10);
    assert_eq!(store.load_live_tasks().unwrap().0.len(), 1);
    assert!(store
        .list_page(None, Order::OldestFirst, Some("nobody"), 10)
        .unwrap()
        .is_empty());
}

#[test]
fn the_wal_is_copied_back_off_the_commit_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let db = dir.path().join("aside.db");
    let before = std::fs::metadata(&db).unwrap().len();
    for n in 1..=300 {
        store.apply(vec![put(finished(n, n))]).unwrap();
    }
    // Commits never checkpoint themselves; the checkpoint thread does, within its period.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&db).unwrap().len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached the database file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Another connection holding the write lock for a moment (the checkpointer emptying the
/// WAL does) makes a write wait, not fail: a deferred transaction that read first was
/// refused at once with "database is locked".
#[test]
fn a_write_waits_for_the_write_lock_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.apply(vec![put(finished(1, 10))]).unwrap();
    let other = rusqlite::Connection::open(schema::db_path(dir.path())).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
    });
    // A removal reads the high-water marks, then deletes.
    std::thread::sleep(Duration::from_millis(50));
    let removed = store.apply(vec![Op::Remove(TaskId::new(1).unwrap())]);
    holder.join().unwrap();
    removed.unwrap();
    assert!(store.get_task(TaskId::new(1).unwrap()).unwrap().is_none());
}

#[test]
fn state_changes_a_full_disk_refuses_are_kept_and_committed_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            full_disk: full.clone(),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    full.store(true, std::sync::atomic::Ordering::Release);
    let (tx, rx) = std::sync::mpsc::channel();
    store.submit(
        vec![put(finished(1, 10))],
        Some(Box::new(move |r| tx.send(r).unwrap())),
    );
    // A write that can be refused is refused, saying why.
    let refused = store.apply(vec![put(finished(2, 20))]).unwrap_err();
    assert!(refused.is_out_of_space(), "{refused}");
    assert!(refused.to_string().contains("no space left"), "{refused}");
    // The state change is neither answered nor dropped while the disk is full...
    assert!(rx.recv_timeout(Duration::from_millis(1200)).is_err());
    assert!(store.get_task(TaskId::new(1).unwrap()).unwrap().is_none());
    // ...and is committed once there is room, without being submitted again.
    full.store(false, std::sync::atomic::Ordering::Release);
    rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert!(store.get_task(TaskId::new(1).unwrap()).unwrap().is_some());
    assert!(store.get_task(TaskId::new(2).unwrap()).unwrap().is_none());
}

#[test]
fn a_handle_names_its_task_across_a_reopen_and_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let id = TaskId::new(1).unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        s.apply(vec![
            put(record(1, TaskState::Queued)),
            Op::AddHandle {
                handle: "h-1".into(),
                task: id,
                created_ms: 42,
            },
        ])
        .unwrap();
        assert!(s.has_handle(id).unwrap());
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.task_of_handle("h-1").unwrap(), Some((id, 42)));
    assert_eq!(s.task_of_handle("h-2").unwrap(), None);
    s.apply(vec![Op::Remove(id)]).unwrap();
    assert_eq!(s.task_of_handle("h-1").unwrap(), None);
    assert!(!s.has_handle(id).unwrap());
}

#[test]
fn settings_are_kept_replaced_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.setting("slots").unwrap(), None);
    for value in ["{\"global\":3}", "{\"global\":4}"] {
        store
            .apply(vec![Op::PutSetting {
                key: "slots",
                value: Some(value.into()),
            }])
            .unwrap();
    }
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.setting("slots").unwrap().as_deref(),
        Some("{\"global\":4}")
    );
    store
        .apply(vec![Op::PutSetting {
            key: "slots",
            value: None,
        }])
        .unwrap();
    assert_eq!(store.setting("slots").unwrap(), None);
}
