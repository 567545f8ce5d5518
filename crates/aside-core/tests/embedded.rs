//! The engine used in-process, without the daemon: the library front harness builders use.
// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use aside_core::{AgentRunner, Config, Engine, Launch, RunFuture};
use aside_protocol::{
    CancelReason, Failure, ShellCommand, StartMode, TaskKind, TaskSpec, TaskState,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn background(command: &str) -> TaskSpec {
    let mut spec = TaskSpec::shell(ShellCommand::Script(command.into()));
    spec.mode = StartMode::Background;
    spec.cwd = Some("/".into());
    spec
}

fn agent(prompt: &str) -> TaskSpec {
    let mut spec = background("unused");
    spec.kind = TaskKind::Agent {
        agent: "general".into(),
        prompt: prompt.into(),
        session_id: None,
        depth: 0,
    };
    spec
}

/// A runner whose work panics.
struct Panicking;

impl AgentRunner for Panicking {
    fn launch(&self, _task: Launch) -> Result<RunFuture, Failure> {
        Ok(Box::pin(async { panic!("the runner broke") }))
    }
}

#[test]
fn an_embedded_engine_runs_shell_tasks_and_a_panicking_runner_still_ends_its_task() {
    let dir = tempfile::tempdir().expect("dir");
    runtime().block_on(async {
        let engine = Engine::open_with(
            dir.path().to_path_buf(),
            Config::default(),
            Some(Arc::new(Panicking)),
        )
        .expect("open");

        let shell = engine
            .start("lib", background("echo embedded"))
            .await
            .expect("start");
        let (done, all) = engine
            .wait(&[shell.task.id], Some(Duration::from_secs(30)))
            .await
            .expect("wait");
        assert!(all);
        assert!(
            matches!(done[0].state, TaskState::Succeeded { .. }),
            "{done:?}"
        );
        let out = engine
            .read(shell.task.id, 0, 1024, None, false)
            .await
            .expect("read");
        assert_eq!(out.data, b"embedded\n");

        let broken = engine
            .start("lib", agent("anything"))
            .await
            .expect("start agent");
        let (done, _) = engine
            .wait(&[broken.task.id], Some(Duration::from_secs(30)))
            .await
            .expect("wait");
        match &done[0].state {
            TaskState::Failed {
                failure: Failure::Worker { error },
                ..
            } => assert!(error.contains("runner failed"), "{error}"),
            other => panic!("a panicking runner must end its task failed: {other:?}"),
        }
        // The owner hears of both, once.
        let consumer = engine.notice_consumer();
        let notes = consumer.take("lib", &[]).await.expect("notes");
        assert_eq!(notes.len(), 2);
        let seqs: Vec<u64> = notes.iter().map(|n| n.seq).collect();
        assert!(consumer.take("lib", &seqs).await.expect("notes").is_empty());
        engine.shutdown().await;
    });
}

#[test]
fn an_engine_without_an_agent_runtime_fails_agent_tasks_clearly() {
    let dir = tempfile::tempdir().expect("dir");
    runtime().block_on(async {
        let engine = Engine::open(dir.path().to_path_buf(), Config::default()).expect("open");
        let t = engine.start("lib", agent("hello")).await.expect("start");
        let (done, _) = engine
            .wait(&[t.task.id], Some(Duration::from_secs(30)))
            .await
            .expect("wait");
        match &done[0].state {
            TaskState::Failed {
                failure: Failure::Agent { error },
                ..
            } => assert!(error.contains("no agent runtime"), "{error}"),
            other => panic!("{other:?}"),
        }
        let stopped = engine
            .stop(
                &[t.task.id],
                "lib",
                CancelReason::UserStop { message: None },
            )
            .await
            .expect("stop");
        assert_eq!(
            stopped[0].state, done[0].state,
            "stopping a finished task changes nothing"
        );
        engine.shutdown().await;
    });
}

/// A runner that panics while starting its task, before any future exists.
struct PanicsOnLaunch;

impl AgentRunner for PanicsOnLaunch {
    fn launch(&self, _task: Launch) -> Result<RunFuture, Failure> {
        panic!("the runner broke while starting")
    }
}

#[test]
fn a_runner_that_panics_while_starting_ends_its_task_failed_and_frees_its_slot() {
    let dir = tempfile::tempdir().expect("dir");
    runtime().block_on(async {
        let config = Config::parse("max_running = 1").expect("config");
        let engine = Engine::open_with(
            dir.path().to_path_buf(),
            config,
            Some(Arc::new(PanicsOnLaunch)),
        )
        .expect("open");
        let broken = engine.start("lib", agent("anything")).await.expect("start");
        // Queued behind it for the only slot: it runs only if the slot came back.
        let after = engine
            .start("lib", background("true"))
            .await
            .expect("start");
        let (done, all) = engine
            .wait(
                &[broken.task.id, after.task.id],
                Some(Duration::from_secs(30)),
            )
            .await
            .expect("wait");
        assert!(all, "{done:?}");
        match &done[0].state {
            TaskState::Failed {
                failure: Failure::Worker { error },
                ..
            } => assert!(error.contains("panicked"), "{error}"),
            other => panic!("a runner that panics on start must end its task failed: {other:?}"),
        }
        assert!(
            matches!(done[1].state, TaskState::Succeeded { .. }),
            "{done:?}"
        );
        assert_eq!(engine.counts(), (0, 0));
        engine.shutdown().await;
    });
}
