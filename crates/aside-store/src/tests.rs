use aside_protocol::{EventKind, ShellCommand, StartMode, TaskKind, TaskState, Timestamp};

use super::*;

fn record(id: u64, state: TaskState) -> TaskRecord {
    TaskRecord {
        id: TaskId::new(id).unwrap(),
        kind: TaskKind::Shell {
            command: ShellCommand::Argv(vec!["true".into()]),
        },
        name: None,
        owner: "cli".into(),
        group: None,
        cwd: "/".into(),
        dedupe_key: None,
        mode: StartMode::Background,
        detached: true,
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
            .apply(&[
                Op::PutTask {
                    record: &rec,
                    spec: Some(&spec),
                },
                Op::Event(&ev),
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
            .apply(&[
                Op::PutTask {
                    record: &done,
                    spec: None,
                },
                Op::Notify {
                    seq: 1,
                    owner: "cli",
                    task: done.id,
                },
            ])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let (tasks, damaged) = store.load_tasks().unwrap();
    assert!(damaged.is_empty());
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].record.state.name(), "succeeded");
    assert_eq!(tasks[0].spec, spec);
    assert_eq!(store.last_task_id().unwrap(), 1);
    assert_eq!(store.events_after(0, 10).unwrap().len(), 1);
    assert!(store.take_notifications("someone-else").unwrap().is_empty());
    let n = store.take_notifications("cli").unwrap();
    assert_eq!(n.len(), 1);
    assert!(
        store.take_notifications("cli").unwrap().is_empty(),
        "delivered twice"
    );
}

#[test]
fn ids_are_not_reused_after_removal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let spec = TaskSpec::shell(ShellCommand::Script("true".into()));
    let rec = record(7, TaskState::Queued);
    store
        .apply(&[Op::PutTask {
            record: &rec,
            spec: Some(&spec),
        }])
        .unwrap();
    store.apply(&[Op::Remove(rec.id)]).unwrap();
    assert!(store.load_tasks().unwrap().0.is_empty());
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
    assert!(matches!(err, StoreError::NewerFormat(..)), "{err}");
}
