//! Backpressure: a client that asks without reading costs the daemon a bounded amount of
//! memory, is no longer read itself, and slows nobody else; oversized fields are refused.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// The daemon's resident memory, in MiB.
fn rss_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// Writes `line` over and over on a fresh connection without reading a byte, until `total`
/// are written or the daemon has stopped reading for a second; returns how many went out and
/// the daemon's highest RSS seen meanwhile.
fn flood(a: &Aside, pid: i32, line: &[u8], total: usize) -> (usize, f64) {
    let mut s = std::os::unix::net::UnixStream::connect(a.socket()).expect("connect");
    s.set_nonblocking(true).expect("nonblocking");
    let mut sent = 0;
    let mut peak = rss_mib(pid);
    let mut pending: &[u8] = &[];
    let mut blocked_since: Option<Instant> = None;
    while sent < total {
        if pending.is_empty() {
            pending = line;
        }
        match s.write(pending) {
            Ok(n) => {
                pending = &pending[n..];
                if pending.is_empty() {
                    sent += 1;
                }
                blocked_since = None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(1) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the daemon dropped a client that still wrote: {e}"),
        }
        if sent % 1000 == 0 {
            peak = peak.max(rss_mib(pid));
        }
    }
    // What the daemon does with what it has read so far.
    for _ in 0..50 {
        peak = peak.max(rss_mib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Others are still answered while this client owes its replies.
    let mut w = a.wire();
    let t = Instant::now();
    w.call("daemon.status", json!({}));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "another client waited {:?}",
        t.elapsed()
    );
    drop(s);
    (sent, peak)
}

#[test]
fn a_client_that_never_reads_its_replies_is_no_longer_read() {
    let a = Aside::new();
    a.ok(&["ls"]);
    let pid = a.daemon_pid().expect("daemon");
    let idle = rss_mib(pid);
    let line = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n";
    let total = 300_000;
    let (sent, peak) = flood(&a, pid, line, total);
    assert!(
        sent < total,
        "the daemon read all {total} requests of a client that read no reply"
    );
    assert!(
        peak - idle <= 64.0,
        "the daemon grew from {idle:.1} to {peak:.1} MiB for one client"
    );
}

#[test]
fn large_reads_asked_for_without_reading_are_held_one_at_a_time() {
    let a = Aside::new();
    let id = a.bg("head -c 4194304 /dev/urandom");
    a.wait_end(&id);
    let pid = a.daemon_pid().expect("daemon");
    let idle = rss_mib(pid);
    let line = format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": 1, "method": "task.read",
               "params": {"id": id, "after": 0, "max_bytes": 4194304}})
    );
    let (_, peak) = flood(&a, pid, line.as_bytes(), 500);
    assert!(
        peak - idle <= 64.0,
        "the daemon grew from {idle:.1} to {peak:.1} MiB for one client"
    );
}

#[test]
fn oversized_fields_are_refused_with_their_limit() {
    let a = Aside::new();
    a.ok(&["ls"]);
    let mut w = a.wire();
    w.hello();
    let r = w.request(
        "task.start",
        json!({"kind": "shell", "command": {"argv": ["true"]}, "name": "n".repeat(300)}),
    );
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("name") && msg.contains("256"), "{r}");
    let r = w.request(
        "task.stop",
        json!({"ids": ["1"], "message": "m".repeat(5000)}),
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("4096")),
        "{r}"
    );
    // Nothing was started.
    assert!(a.list_all().is_empty());
}
