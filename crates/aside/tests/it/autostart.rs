//! The daemon a client starts on demand is detached from that client: not its child nor any
//! descendant, in a session of its own, in `/`, holding none of the client's descriptors. A
//! host that kills its MCP server's whole process tree when it exits (as opencode does)
//! leaves the daemon and its background tasks running.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

use crate::support::*;

/// `aside mcp` in `cwd`, driven by rmcp's client; with `extra`, the write end of a pipe of the
/// test's as an inherited descriptor (fd 3), as a host may leave one open by mistake.
struct Host {
    rt: tokio::runtime::Runtime,
    service: Option<RunningService<RoleClient, ()>>,
    child: tokio::process::Child,
    pid: i32,
}

impl Host {
    fn start(a: &Aside, cwd: &Path, extra: Option<&std::io::PipeWriter>) -> Self {
        let mut cmd = a.cmd(&["mcp"]);
        cmd.current_dir(cwd);
        if let Some(fd) = extra.map(AsRawFd::as_raw_fd) {
            // SAFETY: dup2 is async-signal-safe; the copy it makes as fd 3 has no
            // close-on-exec flag, so `aside mcp` inherits it.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let (rt, child, stdout, stdin) = spawn_mcp(cmd);
        let service = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(30), ().serve((stdout, stdin))).await
            })
            .expect("initialize within 30 s")
            .expect("initialize");
        let pid = child.id().expect("pid") as i32;
        Self {
            rt,
            service: Some(service),
            child,
            pid,
        }
    }

    fn call(&self, name: &str, args: Value) -> CallToolResult {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        let params = CallToolRequestParams::new(name.to_string()).with_arguments(args);
        let service = self.service.as_ref().expect("connected");
        self.rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), service.call_tool(params)).await
            })
            .expect("tools/call within 60 s")
            .expect("tools/call")
    }

    /// Starts `command` as a background task; its id.
    fn background(&self, command: &str) -> String {
        let r = self.call(
            "bash",
            json!({"command": command, "run_in_background": true}),
        );
        let text: String = r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        assert_ne!(r.is_error, Some(true), "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix("task_id: "))
            .unwrap_or_else(|| panic!("no task_id in {text}"))
            .to_string()
    }

    /// What opencode does when it exits: SIGTERM to the server and to every descendant of it
    /// (children of children), found in /proc, until none is left.
    fn exit_killing_the_tree(mut self) -> Vec<i32> {
        let mut killed = Vec::new();
        let deadline = Instant::now() + SOON;
        loop {
            let tree: Vec<i32> = std::iter::once(self.pid)
                .chain(descendants(self.pid))
                .filter(|p| !is_dead(*p))
                .collect();
            if tree.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in tree {
                kill(pid, libc::SIGTERM);
                if !killed.contains(&pid) {
                    killed.push(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let child = &mut self.child;
        let _ = self
            .rt
            .block_on(async { tokio::time::timeout(SOON, child.wait()).await });
        drop(self.service.take());
        killed
    }

    /// A host that closes the connection and lets the server exit on its own.
    fn close(mut self) {
        if let Some(s) = self.service.take() {
            let _ = self.rt.block_on(s.cancel());
        }
        let child = &mut self.child;
        let _ = self
            .rt
            .block_on(async { tokio::time::timeout(SOON, child.wait()).await });
    }
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, session, ...
fn stat(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn ppid(pid: i32) -> i32 {
    stat(pid).and_then(|f| f.get(1)?.parse().ok()).unwrap_or(0)
}

fn session(pid: i32) -> i32 {
    stat(pid).and_then(|f| f.get(3)?.parse().ok()).unwrap_or(0)
}

/// Every live descendant of `root`, by walking the parent links of all of /proc.
fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        children.entry(ppid(pid)).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for c in children.get(&p).cloned().unwrap_or_default() {
            found.push(c);
            todo.push(c);
        }
    }
    found
}

fn link(path: String) -> PathBuf {
    std::fs::read_link(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The name /proc gives a descriptor of this pipe (`pipe:[INODE]`).
fn pipe_name(end: &std::io::PipeReader) -> PathBuf {
    link(format!("/proc/self/fd/{}", end.as_raw_fd()))
}

/// Waits up to `limit` for the pipe to report end of file: every write end closed.
fn sees_eof(reader: std::io::PipeReader, limit: Duration) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut buf = Vec::new();
        let _ = tx.send(reader.read_to_end(&mut buf).is_ok());
    });
    rx.recv_timeout(limit).unwrap_or(false)
}

/// The daemon serving the test's directory, once it answers.
fn the_daemon(a: &Aside) -> i32 {
    let mut pid = None;
    assert!(
        eventually(SOON, || {
            pid = a.daemon_pid();
            pid.is_some()
        }),
        "no daemon answers"
    );
    pid.unwrap_or_default()
}

#[test]
fn a_host_that_kills_its_mcp_servers_process_tree_leaves_the_daemon_and_tasks_running() {
    let a = Aside::new();
    let project = a.path("project");
    std::fs::create_dir(&project).expect("mkdir");
    assert!(a.daemon_processes().is_empty(), "a daemon runs already");
    let host = Host::start(&a, &project, None);
    let id = host.background("sleep 3; pwd; echo done");
    let daemon = the_daemon(&a);
    let killed = host.exit_killing_the_tree();
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    assert!(
        !killed.contains(&daemon),
        "the daemon {daemon} was in the server's tree: {killed:?}"
    );
    let output = String::from_utf8_lossy(&a.logs(&id)).into_owned();
    assert_eq!(output, format!("{}\ndone\n", project.display()));
    assert_eq!(a.daemon_pid(), Some(daemon), "the daemon was replaced");
}

#[test]
fn the_daemon_a_client_starts_is_detached_from_it() {
    let a = Aside::new();
    let project = a.path("project");
    std::fs::create_dir(&project).expect("mkdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let host = Host::start(&a, &project, Some(&writer));
    drop(writer);
    // The server starts the daemon for its first call.
    let id = host.background("pwd");
    let daemon = the_daemon(&a);

    assert_ne!(ppid(daemon), host.pid, "the daemon is the server's child");
    assert!(
        !descendants(host.pid).contains(&daemon),
        "the daemon descends from the server"
    );
    assert_ne!(session(daemon), session(host.pid), "the server's session");
    assert_ne!(
        session(daemon),
        session(std::process::id() as i32),
        "the test's session"
    );
    assert_eq!(link(format!("/proc/{daemon}/cwd")), Path::new("/"));
    assert_eq!(link(format!("/proc/{daemon}/fd/0")), Path::new("/dev/null"));
    let log = a.path("daemon.log");
    assert_eq!(link(format!("/proc/{daemon}/fd/1")), log);
    assert_eq!(link(format!("/proc/{daemon}/fd/2")), log);
    let pipe = pipe_name(&reader);
    let fds: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{daemon}/fd"))
        .expect("the daemon's descriptors")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect();
    assert!(
        !fds.contains(&pipe),
        "the daemon holds the server's fd 3: {fds:?}"
    );

    // The daemon's own directory is not its tasks': they run where their client is.
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    assert_eq!(
        String::from_utf8_lossy(&a.logs(&id)),
        format!("{}\n", project.display())
    );
    let mut cli = a.cmd(&["run", "--", "pwd"]);
    cli.current_dir(&project);
    let out = a.spawn_cmd(cli, &["run"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.text(), format!("{}\n", project.display()));

    // Once the server is gone nothing holds the write end: the daemon did not inherit it.
    host.close();
    assert!(
        sees_eof(reader, SOON),
        "the pipe stayed open after the server exited: something it started holds it"
    );
    assert_eq!(a.daemon_pid(), Some(daemon));
}

#[test]
fn many_clients_starting_at_once_share_one_detached_daemon() {
    let a = Aside::new();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let clis: Vec<_> = (0..6)
        .map(|_| {
            let mut cmd = a.cmd(&["daemon", "start"]);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                cmd.output().expect("run aside")
            })
        })
        .collect();
    let said: Vec<String> = clis
        .into_iter()
        .map(|h| {
            let o = h.join().expect("thread");
            assert!(o.status.success(), "{o:?}");
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
        .collect();
    let daemon = the_daemon(&a);
    for s in &said {
        assert_eq!(s, &format!("daemon running (pid {daemon})"));
    }
    let mut seen = Vec::new();
    let one = eventually(SOON, || {
        seen = a.daemon_processes();
        seen == vec![daemon]
    });
    assert!(one, "daemon processes {seen:?}, expected only {daemon}");
    assert_eq!(link(format!("/proc/{daemon}/cwd")), Path::new("/"));
}

#[test]
fn a_daemon_that_cannot_start_is_reported_at_once_with_its_log() {
    let a = Aside::with_config("max_running = 0\n");
    let started = Instant::now();
    let out = a.run(&["daemon", "start"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("did not start")
            && out.stderr.contains("max_running")
            && out
                .stderr
                .contains(&a.path("daemon.log").display().to_string()),
        "{:?}",
        out.stderr
    );
    // Told when it exits, not when the wait for its socket runs out.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(a.daemon_processes().is_empty());
}

#[test]
fn a_relative_state_directory_is_the_same_for_the_daemon_in_its_root_directory() {
    let a = Aside::new();
    let parent = a.home.parent().expect("parent").to_path_buf();
    let name = a.home.file_name().expect("name").to_os_string();
    let mut cli = a.cmd(&["run", "--", "pwd"]);
    cli.current_dir(&parent).env("ASIDE_HOME", &name);
    let out = a.spawn_cmd(cli, &["run"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.text(), format!("{}\n", parent.display()));
    // The daemon serves the test's directory, named absolutely.
    let daemon = the_daemon(&a);
    assert_eq!(link(format!("/proc/{daemon}/cwd")), Path::new("/"));
}

/// A daemon that dies as a client connects (its socket still took the connection, as a
/// killed daemon's does while its last threads exit) is no error: the client reaches the
/// next daemon, starting one.
#[test]
fn a_client_whose_daemon_dies_as_it_connects_reaches_the_next_one() {
    let a = Aside::new();
    // The dying daemon: its socket takes connections and answers none, then closes.
    let dying = std::os::unix::net::UnixListener::bind(a.home.join("aside.sock")).unwrap();
    let client = a.spawn(&["ls"]);
    std::thread::sleep(Duration::from_millis(300));
    drop(dying);
    let out = client
        .finish_within(Duration::from_secs(30))
        .expect("ls ends");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(a.daemon_pid().is_some(), "a daemon was started");
}
