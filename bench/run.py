#!/usr/bin/env python3
"""aside benchmarks: a baseline binary and a candidate binary, measured in the same run, each
figure printed as a table (figure, baseline, candidate, target).

    python3 bench/run.py                      # every part; builds target/release/aside first
    python3 bench/run.py --quick              # smoke run: fewer samples, 10k records at most
    python3 bench/run.py --only submit,notify # selected parts (names below)
    python3 bench/run.py --no-build --aside PATH --baseline PATH

The baseline is ~/.cache/aside-bench/aside-baseline unless --baseline names another; the
candidate is this tree's target/release/aside, built first unless --no-build or --aside.
Each part runs private daemons in temporary ASIDE_HOMEs and stops them with
`aside daemon stop`. Progress goes to stderr, the report (markdown tables) to stdout. A full
run took 12 minutes on the project's 2-core VM with other work on it (load 4), most of it
in the submit part filling two stores with 100k records each; --quick takes 2 minutes;
--skip-pueue saves about half a minute.

Parts and targets (the candidate should meet each):
  throughput  1,000 `true` through 2 slots: aside over one connection at least 0.6x the
              speed of `xargs -P 2`, and at least 20x pueue's tasks/s (200 through pueue)
  foreground  `aside run -- true` at most 3 ms over `sh -c true`
              (These two are the targets of tasks that outlive the daemon, each under a
              supervisor of its own; before supervisors they were 0.8x and 2 ms.)
  gigabyte    1 GiB to stdout through aside at most 1.25x a plain redirect
  sleepers    daemon peak RSS at most 64 MiB with 1,000 sleeping background tasks
  agents      task call -> child's first model request; RSS with 100 agents (no target)
  submit      task.start round trip and `aside run --bg` with 0, 10k, 100k finished records
              stored, and after a daemon restart: each within 10 % of a fresh 0-record
              home of the same binary, measured alongside
  listing     100k records stored: `aside ls` and `task.list` at most 50 ms; `ls --all
              --json` and the daemon's RSS around it; paged listing where supported
  notify      a task's exit -> the owner's `finished` event, and -> `notifications.take`
              seeing it: p99 at most 10 ms
  mcp         through `aside mcp` as a host speaks it (bench/mcp_tasks.py): a background
              `bash` call -> its task handle, at most 5 ms median; the task's exit ->
              `tasks/get` reporting it terminal, p99 at most 10 ms (peer: the text answer
              and the logging notification of a server without the Tasks extension)
  supervisors aside's memory (PSS of the daemon and every task supervisor) with 1,000
              sleeping tasks: at most 128 MiB in total (bench/outlive.py)
  adopt       a new daemon after kill -9 with 1,000 running tasks: all adopted in at most
              1 s (bench/outlive.py)
  keys        a key written to a terminal task -> its echo in a screen read, at most 5 ms
              median; peer: tmux (bench/terminal.py)
  terminals   100 idle terminal tasks: aside's processes at most 32 MiB PSS in total; peer:
              a tmux server with 100 windows (bench/terminal.py)
  top         `aside top` with 10,000 finished tasks: its first frame with rows in at most
              500 ms (median), at most 1 % of a core while idle; peer: htop (bench/top.py)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    CACHE, INVALID_PARAMS, Bin, Home, RpcError, Table, alternate, bg, drain_notices,
    exit_stamp_helper, supports_ack, header,
    median, mib, ms, note, pct, secs, sh, split, timed, wait_all)

from mcp_tasks import part_mcp  # noqa: E402
from outlive import part_adopt, part_supervisors  # noqa: E402
from terminal import part_keys, part_terminals  # noqa: E402
from top import part_top  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUEUE_ROOT = os.path.join(CACHE, "pueue")
PARTS = ["throughput", "foreground", "gigabyte", "sleepers", "agents", "submit", "listing",
         "notify", "mcp", "supervisors", "adopt", "keys", "terminals", "top"]


class Settings:
    """Sample counts; --quick makes each smaller."""

    def __init__(self, quick, tasks, pueue_tasks=None):
        q = self.quick = quick
        self.tasks = tasks if tasks else (200 if q else 1000)  # throughput
        self.pueue_tasks = pueue_tasks if pueue_tasks else (100 if q else 200)
        self.rounds = 2 if q else 3                  # throughput and foreground rounds
        self.fg_runs = 30 if q else 100              # foreground samples per round
        self.gib_reps = 1 if q else 3
        self.sleepers = 200 if q else 1000
        self.agent_runs, self.agent_sessions = (10, 20) if q else (50, 100)
        self.sizes = [0, 1_000, 10_000] if q else [0, 10_000, 100_000]
        self.rpc_samples = 200 if q else 1000        # task.start round trips per size
        self.cli_samples = 30 if q else 100          # `aside run --bg` per size
        self.env_samples = 50 if q else 200          # task.start with an env per size
        self.restarts = 2 if q else 3
        self.list_samples = 6 if q else 20
        self.notify_samples = 100 if q else 200
        self.mcp_samples = 200 if q else 1000        # background calls through aside mcp
        self.blocks = 4 if q else 8                  # alternation blocks within a figure


def ratio_met(x, ref, limit=1.10):
    return None if ref is None or ref == 0 else x <= ref * limit


# ---------------------------------------------------------------- 1. throughput

def part_throughput(bins, s, skip_pueue):
    """N trivial commands (`true`) through 2 slots, start to last exit, against `xargs -P 2`
    (and pueue, once, on --pueue-tasks: rates compared). aside is driven two ways: one
    JSON-RPC connection (task.start pipelined, then task.wait), and one CLI process per task
    (`aside run --bg -- true`, then `aside wait`). Rounds alternate baseline and candidate,
    each in a fresh home with max_running = 2; xargs runs at the start of every round;
    medians over the rounds."""
    n = s.tasks
    xargs = []

    def one(b, r):
        if len(xargs) == r:  # the first binary of this round
            xargs.append(timed(sh, f"seq {n} | xargs -P 2 -I{{}} true"))
        home = Home(b, "max_running = 2\nretention = \"none\"\n").start()
        try:
            rpc = home.rpc()
            t = time.perf_counter()
            for _ in range(n):
                rpc.send("task.start", bg(["true"]))
            ids = [rpc.recv()["task"]["id"] for _ in range(n)]
            tasks = wait_all(rpc, ids)
            conn = time.perf_counter() - t
            assert all(x["state"] == "succeeded" for x in tasks), "a task failed"
            t = time.perf_counter()
            ids = [home.aside("run", "--bg", "--", "true").stdout.strip() for _ in range(n)]
            home.aside("wait", *ids)
            cli = time.perf_counter() - t
            return conn, cli
        finally:
            home.close()

    note(f"throughput: {s.rounds} rounds of {n} tasks per binary")
    res = alternate(bins, s.rounds, one)
    pn = s.pueue_tasks
    pueue = None if skip_pueue else pueue_run(pn, install=not s.quick)
    x = median(xargs)
    t = Table(f"1. {n} trivial commands (`true`) through 2 slots (median of {s.rounds} rounds;"
              " seconds, then tasks/s)")
    t.row(f"`seq {n} \\| xargs -P 2 -I{{}} true` (same run)", secs(x), secs(x), "")
    conn = {k: median(c for c, _ in v) for k, v in res.items()}
    cli = {k: median(c for _, c in v) for k, v in res.items()}
    b, c = (bi.label for bi in bins)
    rate = lambda d: f"{d:.2f} s, {n / d:.0f}/s"
    t.row("aside, one connection (task.start pipelined, task.wait)", rate(conn[b]), rate(conn[c]))
    t.row("aside, one CLI process per task (`run --bg`, `wait`)", rate(cli[b]), rate(cli[c]))
    # The speed against xargs round by round (the machine's load moves between rounds).
    vs = {k: median(xargs[r] / v[r][0] for r in range(s.rounds)) for k, v in res.items()}
    t.row("one connection / xargs (speed; median of the rounds' ratios)", f"{vs[b]:.2f}x",
          f"{vs[c]:.2f}x", ">= 0.6x", (vs[b] >= 0.6, vs[c] >= 0.6))
    if pueue is not None:
        # pueue runs once, often on fewer tasks (about 0.17 s each): compare rates.
        speed = {k: (n / conn[k]) / (pn / pueue) for k in (b, c)}
        t.row(f"pueue, {pn} tasks (`pueue add` per task, parallel 2), once",
              f"{pueue:.2f} s, {pn / pueue:.1f}/s", f"{pueue:.2f} s, {pn / pueue:.1f}/s")
        t.row("one connection / pueue (tasks/s)", f"{speed[b]:.0f}x", f"{speed[c]:.0f}x",
              ">= 20x", (speed[b] >= 20, speed[c] >= 20))
    t.note("Per round (one connection): " + "; ".join(
        f"{k} " + ", ".join(f"{c:.2f}" for c, _ in v) for k, v in res.items())
        + "; xargs " + ", ".join(f"{v:.2f}" for v in xargs) + " s.")
    t.print()


def pueue_bin(name, install):
    path = os.path.join(PUEUE_ROOT, "bin", name)
    if not os.path.exists(path):
        if not install:
            return None
        note(f"installing pueue into {PUEUE_ROOT} (once)...")
        sh(f"cargo install pueue --locked --root {PUEUE_ROOT}")
    return path


def pueue_run(n, install=True):
    pueue, pueued = pueue_bin("pueue", install), pueue_bin("pueued", install)
    if pueue is None or pueued is None:
        note("pueue is not installed; skipped (a full run installs it)")
        return None
    note(f"pueue: {n} tasks")
    d = tempfile.mkdtemp(prefix="pq-", dir="/tmp")
    cfg = os.path.join(d, "pueue.yml")
    with open(cfg, "w") as f:
        f.write(f"shared:\n  pueue_directory: {d}\n  runtime_directory: {d}\n")
    daemon = subprocess.Popen([pueued, "-c", cfg], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if subprocess.run([pueue, "-c", cfg, "status"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        sh(f"{pueue} -c {cfg} parallel 2", capture_output=True)
        t = time.perf_counter()
        for _ in range(n):
            subprocess.run([pueue, "-c", cfg, "add", "--", "true"], check=True,
                           capture_output=True)
        sh(f"{pueue} -c {cfg} wait", capture_output=True)
        return time.perf_counter() - t
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- 2. foreground

def part_foreground(bins, s):
    """Wall time of a foreground `aside run -- true` against `sh -c true`, the two
    interleaved sample by sample. One home per binary, 20 warm-ups each; rounds of
    `fg_runs` samples alternate baseline and candidate; medians over all samples."""
    homes = {b.label: Home(b).start() for b in bins}
    try:
        def sample(argv, env):
            t = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - t

        for b in bins:
            for _ in range(20):
                sample([b.path, "run", "--", "true"], homes[b.label].env)

        def one(b, r):
            env = homes[b.label].env
            a, p = [], []
            for _ in range(s.fg_runs):
                a.append(sample([b.path, "run", "--", "true"], env))
                p.append(sample(["sh", "-c", "true"], env))
            return a, p

        note(f"foreground: {s.rounds} rounds of {s.fg_runs} per binary")
        res = alternate(bins, s.rounds, one)
    finally:
        for h in homes.values():
            h.close()
    n = s.rounds * s.fg_runs
    t = Table(f"2. foreground `aside run -- true` against `sh -c true` (median of {n},"
              f" {s.rounds} alternating rounds, after 20 warm-ups)")
    fig = {}
    for k, v in res.items():
        a = median(x for r in v for x in r[0])
        p = median(x for r in v for x in r[1])
        per_round = [median(r[0]) - median(r[1]) for r in v]
        fig[k] = (a, p, per_round)
    b, c = (bi.label for bi in bins)
    t.row("`aside run -- true`", ms(fig[b][0]), ms(fig[c][0]))
    t.row("`sh -c true` (interleaved with it)", ms(fig[b][1]), ms(fig[c][1]))
    t.row("added by aside", ms(fig[b][0] - fig[b][1]), ms(fig[c][0] - fig[c][1]), "<= 3 ms",
          tuple(fig[k][0] - fig[k][1] <= 0.003 for k in (b, c)))
    t.row("added, per round", " ".join(f"{x * 1000:.2f}" for x in fig[b][2]),
          " ".join(f"{x * 1000:.2f}" for x in fig[c][2]))
    t.print()


# ---------------------------------------------------------------- 3. gigabyte

def part_gigabyte(bins, s):
    """1 GiB from `head -c 1GiB /dev/zero`: a plain redirect to a file against the same as
    a background aside task (to its log file), task.start to task.wait. Repetitions
    alternate redirect, baseline, candidate; best of each."""
    size = 1 << 30
    homes = {b.label: Home(b, "retention = \"none\"\n").start() for b in bins}
    plain, via = [], {b.label: [] for b in bins}
    try:
        rpcs = {k: h.rpc() for k, h in homes.items()}
        out = os.path.join(homes[bins[0].label].dir, "redirect.out")
        for r in range(s.gib_reps):
            note(f"gigabyte: repetition {r + 1} of {s.gib_reps}")
            plain.append(timed(sh, f"head -c {size} /dev/zero > {out}"))
            os.remove(out)
            for b in (bins if r % 2 == 0 else bins[::-1]):
                rpc = rpcs[b.label]
                t = time.perf_counter()
                task = rpc.call("task.start", bg(["head", "-c", str(size), "/dev/zero"]))["task"]
                done = wait_all(rpc, [task["id"]])[0]
                via[b.label].append(time.perf_counter() - t)
                assert done["state"] == "succeeded" and done["output_bytes"] == size, done
                rpc.call("task.clean", {})
    finally:
        for h in homes.values():
            h.close()
    p = min(plain)
    b, c = (bi.label for bi in bins)
    t = Table(f"3. 1 GiB to stdout (best of {s.gib_reps})")
    t.row("`head -c 1GiB /dev/zero > file`", secs(p), secs(p))
    t.row("the same as `aside run --bg` (log file), start to end", secs(min(via[b])),
          secs(min(via[c])))
    t.row("ratio to the redirect", f"{min(via[b]) / p:.2f}", f"{min(via[c]) / p:.2f}",
          "<= 1.25", (min(via[b]) / p <= 1.25, min(via[c]) / p <= 1.25))
    t.print()


# ---------------------------------------------------------------- 4. sleepers

def part_sleepers(bins, s):
    """Daemon memory (VmHWM, VmRSS) with N background `sleep 600` running at once, a second
    after the last started; one binary after the other, each in its own home."""
    n = s.sleepers
    res = {}
    for b in bins:
        note(f"sleepers: {n} for the {b.label}")
        home = Home(b, f"max_running = {n + 10}\nretention = \"none\"\n").start()
        try:
            rpc = home.rpc()
            for _ in range(n):
                rpc.send("task.start", bg(["sleep", "600"]))
            ids = [rpc.recv()["task"]["id"] for _ in range(n)]
            deadline = time.time() + 60
            while rpc.call("daemon.status", {})["running"] < n and time.time() < deadline:
                time.sleep(0.1)
            running = rpc.call("daemon.status", {})["running"]
            time.sleep(1)
            cur, hwm = home.memory()
            rpc.call("task.stop", {"ids": ids})
            res[b.label] = (running, hwm, cur)
        finally:
            home.close()
    b, c = (bi.label for bi in bins)
    t = Table(f"4. daemon memory with {n} sleeping background tasks")
    t.row("tasks running when measured", str(res[b][0]), str(res[c][0]))
    t.row("peak RSS (VmHWM)", mib(res[b][1]), mib(res[c][1]), "<= 64 MiB",
          (res[b][1] <= 64, res[c][1] <= 64))
    t.row("current RSS (VmRSS)", mib(res[b][2]), mib(res[c][2]))
    t.print()


# ---------------------------------------------------------------- 5. agents

class ModelServer:
    """A scripted OpenAI-compatible server on loopback. A prompt starting with "parent"
    gets one `task` tool call, then a final answer; "idle" requests hang (an agent waiting
    on its model); everything else is answered at once. It records when each child's first
    request arrives and when the parent's tool call was fully sent."""

    def __init__(self):
        import http.server
        import threading
        server = self
        self.tool_call_sent = None
        self.child_seen = None
        self.idle = 0
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def sse(self, chunks):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for c in chunks:
                    self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                msgs = body["messages"]
                prompt = next(m["content"] for m in msgs if m["role"] == "user")
                done = lambda text: {"choices": [{"index": 0, "delta": {"content": text},
                                                  "finish_reason": "stop"}]}
                if prompt.startswith("parent"):
                    if any(m["role"] != "system" and m["role"] != "user" for m in msgs):
                        return self.sse([done("parent done")])
                    call = {"index": 0, "id": "c1", "type": "function", "function": {
                        "name": "task", "arguments": json.dumps(
                            {"subagent_type": "general", "prompt": "child",
                             "run_in_background": True})}}
                    self.sse([{"choices": [{"index": 0, "delta": {"tool_calls": [call]},
                                            "finish_reason": "tool_calls"}]}])
                    server.tool_call_sent = time.perf_counter()
                elif prompt == "child":
                    if server.child_seen is None:
                        server.child_seen = time.perf_counter()
                    self.sse([done("child done")])
                elif prompt.startswith("idle"):
                    server.idle += 1
                    server.release.wait(120)
                    self.sse([done("idle done")])
                else:
                    self.sse([done("ok")])

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # agents stopped at the end hang up mid-answer; that is expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()


def agent_spec(prompt, background=True):
    return {"kind": "agent", "agent": "general", "prompt": prompt, "cwd": "/tmp",
            "mode": "background" if background else "foreground"}


def agent_figures(b, runs, sessions):
    """Time from a parent's task call to its child's first model request (median of
    `runs`), and daemon RSS with `sessions` agents waiting on their model."""
    server = ModelServer()
    config = (f"retention = \"none\"\nmax_running = {sessions + 10}\n"
              f"[agent]\nbase_url = \"{server.url}\"\n"
              f"model = \"bench\"\nmax_running = {sessions + 10}\n")
    home = Home(b, config).start()
    try:
        rpc = home.rpc()
        gaps = []
        for i in range(runs):
            server.tool_call_sent = server.child_seen = None
            task = rpc.call("task.start", agent_spec(f"parent {i}"))["task"]
            wait_all(rpc, [task["id"]])
            deadline = time.time() + 30
            while server.child_seen is None and time.time() < deadline:
                time.sleep(0.001)
            gaps.append(server.child_seen - server.tool_call_sent)
        for i in range(sessions):
            rpc.send("task.start", agent_spec(f"idle {i}"))
        ids = [rpc.recv()["task"]["id"] for _ in range(sessions)]
        deadline = time.time() + 60
        while server.idle < sessions and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        cur, hwm = home.memory()
        idle = server.idle
        rpc.call("task.stop", {"ids": ids})
        return median(gaps), idle, hwm, cur
    finally:
        server.close()
        home.close()


def part_agents(bins, s):
    """Agents against a scripted OpenAI-compatible server on loopback: a parent's `task`
    tool call fully sent -> the child's first model request (median), and daemon RSS with
    many agent sessions waiting on their model. One binary after the other."""
    res = {}
    for b in bins:
        note(f"agents: the {b.label}")
        res[b.label] = agent_figures(b, s.agent_runs, s.agent_sessions)
    b, c = (bi.label for bi in bins)
    t = Table("5. agents (scripted model server on loopback)")
    t.row(f"task call sent -> child's first model request (median of {s.agent_runs})",
          ms(res[b][0]), ms(res[c][0]))
    t.row("agent sessions waiting on their model", str(res[b][1]), str(res[c][1]))
    t.row("daemon peak RSS (VmHWM) with them", mib(res[b][2]), mib(res[c][2]))
    t.row("daemon current RSS (VmRSS)", mib(res[b][3]), mib(res[c][3]))
    t.print()


# ---------------------------------------------------------------- stored history

class History:
    """A home whose store grows with finished records, kept for the submit and listing
    parts: one per binary, filled once, grown 0 -> 10k -> 100k. Config: max_running = 16,
    retention = "none". `count` is every task ever started in it (none is removed)."""

    CONFIG = "max_running = 16\nretention = \"none\"\n"
    CHUNK = 1000

    def __init__(self, b, label=None):
        self.bin = b
        self.label = label or b.label
        self.home = Home(b, self.CONFIG).start()
        self.rpc = self.home.rpc()
        self.count = 0

    def grow_to(self, n):
        """Adds finished `true` tasks until `n` are stored: task.start pipelined a chunk at a
        time over one connection, then task.wait on the chunk, then notifications.take (as a
        user who has looked: no notification backlog builds up). Returns (added, seconds)."""
        t = time.perf_counter()
        added = 0
        while self.count < n:
            k = min(self.CHUNK, n - self.count)
            for _ in range(k):
                self.rpc.send("task.start", bg(["true"], cwd="/"))
            ids = [self.rpc.recv()["task"]["id"] for _ in range(k)]
            self.count += k
            added += k
            tasks = wait_all(self.rpc, ids)
            assert all(x["state"] == "succeeded" for x in tasks), "a fill task failed"
            drain_notices(self.rpc)
        return added, time.perf_counter() - t

    def rpc_starts(self, n, env=None):
        """`n` task.start round trips of a background `true` over the one connection: send
        the request, read its reply. Untimed between samples: task.wait until the task
        has finished, so every sample finds no task running. With `env`, the spec carries
        that whole environment, as `aside run` sends its own."""
        spec = bg(["true"], cwd="/")
        if env is not None:
            spec["env"] = env
        out = []
        for _ in range(n):
            t = time.perf_counter()
            task = self.rpc.call("task.start", spec)["task"]
            out.append(time.perf_counter() - t)
            self.count += 1
            wait_all(self.rpc, [task["id"]])
        return out

    def cli_starts(self, n):
        """`n` wall times of `aside run --bg -- true`; between samples, untimed, task.wait
        until that task has finished."""
        out = []
        argv = [self.bin.path, "run", "--bg", "--", "true"]
        for _ in range(n):
            t = time.perf_counter()
            r = subprocess.run(argv, env=self.home.env, check=True, capture_output=True,
                               text=True)
            out.append(time.perf_counter() - t)
            self.count += 1
            wait_all(self.rpc, [int(r.stdout.strip())])
        return out

    def restart(self):
        """`aside daemon stop`, then `aside daemon start` (which returns once the new
        daemon answers). Returns (stop seconds, start seconds)."""
        self.rpc.close()
        stop = timed(self.home.aside, "daemon", "stop")
        start = timed(self.home.aside, "daemon", "start")
        self.home.pid = json.loads(self.home.aside("daemon", "status", "--json").stdout)["pid"]
        self.rpc = self.home.rpc()
        return stop, start

    def close(self):
        self.rpc.close()
        self.home.close()


class Histories:
    """The History of each binary, made when a part first needs it."""

    def __init__(self, bins):
        self.bins = bins
        self.h = {}

    def get(self):
        for b in self.bins:
            if b.label not in self.h:
                self.h[b.label] = History(b)
        return self.h

    def grow_to(self, n):
        """Grows each binary's store to n records; returns {label: (added, seconds)}."""
        out = {}
        for b in self.bins:
            h = self.get()[b.label]
            if h.count < n:
                note(f"filling the {b.label}'s store: {h.count} -> {n} records")
            out[b.label] = h.grow_to(n)
        return out

    def close(self):
        for h in self.h.values():
            h.close()
        self.h = {}


# ---------------------------------------------------------------- 6. submit

def part_submit(bins, s, hist):
    """Cost of starting a task with 0, 10k and 100k finished records stored (one store per
    binary, grown in place; see History). At each size: the task.start round trip over one
    connection (median and p99; each sample's task finishes before the next, untimed), the
    same with the spec carrying this script's environment as `env` (as `aside run` sends
    its own: the CLI figure's cost is not all the connection's), and the wall time of `aside run --bg -- true` (median; the same); then daemon restarts
    (`aside daemon stop`, `aside daemon start`, timed): the CLI figure again right after the
    first, and the start time (median of the restarts). Beside each grown store a fresh
    0-record home of the same binary is measured the same way, in blocks that alternate the
    four homes, so a change of machine load between sizes does not pass for a cost of
    history. Target: each figure within 10 % of the fresh home's measured alongside."""
    b, c = (bi.label for bi in bins)
    t = Table(f"6. submit cost vs stored history ({s.rpc_samples} task.start round trips,"
              f" {s.env_samples} with an env, {s.cli_samples} `aside run --bg -- true`,"
              f" {s.restarts} restarts per home and size)")
    for size in s.sizes:
        grown = hist.grow_to(size)
        h = hist.get()
        homes = [h[b], h[c]]
        if size:
            homes += [History(bi, f"{bi.label} fresh") for bi in bins]
        try:
            fig = submit_figures(homes, s, size)
        finally:
            for x in homes[2:]:
                x.close()
        ref = {k: fig[f"{k} fresh"] if size else None for k in (b, c)}

        def row(name, key, target=True):
            cells, met = [], []
            for k in (b, c):
                v = fig[k][key]
                r = ref[k] and ref[k][key]
                cells.append(ms(v) + (f" ({v / r:.2f}x of {ms(r)})" if r else ""))
                met.append(ratio_met(v, r) if r else None)
            t.row(f"{size:,} records: {name}", *cells,
                  "<= 1.10x of a fresh home" if target and size else "",
                  tuple(met) if target and size else None)

        if size:
            t.row(f"{size:,} records: filling to it (info)",
                  *(f"{grown[k][1]:.1f} s, {grown[k][0] / grown[k][1]:.0f}/s" if grown[k][0]
                    else "-" for k in (b, c)))
        t.row(f"{size:,} records: stored when measured (info)",
              *(f"{fig[k]['stored']:,}" for k in (b, c)))
        row("task.start round trip, median", "rpc")
        row("task.start round trip, p99", "p99", target=False)
        row(f"task.start with an env ({len(os.environ)} variables), median", "env")
        row("`aside run --bg -- true`, median", "cli")
        row("`aside daemon start`, median", "start")
        row("`aside daemon stop`, median (info)", "stop", target=False)
        row("`aside run --bg -- true` right after a restart", "after")
    t.note("In parentheses: the ratio to the same binary's fresh 0-record home, measured in"
           " the same blocks. The records stored are the fill plus every task the samples"
           " started, all finished. Each sample's task is waited for, untimed, before the next"
           " sample.")
    t.print()


def submit_figures(homes, s, size):
    """The submit figures of each History in `homes`, measured in blocks alternating them:
    {label: {"stored", "rpc", "p99", "cli", "after", "start", "stop"}}."""
    stored = {x.label: x.count for x in homes}
    for x in homes:
        drain_notices(x.rpc)
    note(f"submit at {size} records: {s.rpc_samples} + {s.env_samples} task.start,"
         f" {s.cli_samples} CLI in {len(homes)} homes")
    rpc = _blocks(homes, s.blocks, s.rpc_samples, lambda x, n: x.rpc_starts(n))
    env = _blocks(homes, s.blocks, s.env_samples,
                  lambda x, n: x.rpc_starts(n, env=dict(os.environ)))
    cli = _blocks(homes, s.blocks, s.cli_samples, lambda x, n: x.cli_starts(n))
    note(f"submit at {size} records: {s.restarts} restarts")
    after, starts, stops = {}, {}, {}
    for r in range(s.restarts):
        for x in (homes if r % 2 == 0 else homes[::-1]):
            stop, start = x.restart()
            stops.setdefault(x.label, []).append(stop)
            starts.setdefault(x.label, []).append(start)
            if r == 0:
                after[x.label] = median(x.cli_starts(s.cli_samples))
    return {k: {"stored": stored[k], "rpc": median(sum(rpc[k], [])),
                "p99": pct(sum(rpc[k], []), 99), "env": median(sum(env[k], [])),
                "cli": median(sum(cli[k], [])),
                "after": after[k], "start": median(starts[k]), "stop": median(stops[k])}
            for k in stored}


def _blocks(bins, blocks, total, fn):
    """`total` samples per binary (or home) as `blocks` blocks alternating them; fn(bin, n)
    returns a list of n samples. Returns {label: [block results]}."""
    sizes = split(total, blocks)
    return alternate(bins, blocks, lambda bi, r: fn(bi, sizes[r]))


# ---------------------------------------------------------------- 7. listing

def paging_support(b):
    """Whether a binary pages listings, tried in a scratch home with 3 finished tasks:
    task.list {"all": true, "limit": 1} refused with invalid params, or answered with more
    than one task (the param ignored), means no; so does `aside ls --all --limit 1` failing.
    Returns (task.list pages, the CLI pages)."""
    home = Home(b, "retention = \"none\"\n").start()
    try:
        rpc = home.rpc()
        wait_all(rpc, [rpc.call("task.start", bg(["true"]))["task"]["id"] for _ in range(3)])
        try:
            api = len(rpc.call("task.list", {"all": True, "limit": 1})["tasks"]) <= 1
        except RpcError as e:
            if e.code != INVALID_PARAMS:
                raise
            api = False
        rpc.close()
        cli = home.aside("ls", "--all", "--limit", "1", check=False).returncode == 0
        return api, cli
    finally:
        home.close()


def part_listing(bins, s, hist):
    """Listing with the largest store of the submit part (100k records; --quick 10k). First
    one `aside ls` delivers the pending notifications (the submit samples' tasks), so the
    measured calls show no backlog. Then, in blocks alternating baseline and candidate:
    `aside ls` (live tasks only: none), the task.list round trip with params {}, and
    `aside ls --all --json` to /dev/null (stopped early past 45 s per binary, at least 3
    samples), with the daemon's VmRSS/VmHWM read before the first and after the last.
    Where a binary pages (see paging_support): task.list {"all": true, "limit": 50}, the
    second page from its next_cursor, and `aside ls --all --limit 50`. Medians."""
    size = s.sizes[-1]
    hist.grow_to(size)
    h = hist.get()
    b, c = (bi.label for bi in bins)
    n = s.list_samples
    first, mem_before, mem_after, paging = {}, {}, {}, {}
    for bi in bins:
        x = h[bi.label]
        t0 = time.perf_counter()
        r = x.home.aside("ls")
        rows = sum(1 for line in r.stdout.splitlines() if line[:1].isdigit())
        first[bi.label] = (time.perf_counter() - t0, rows)
        api, cli = paging_support(bi)
        cursor = None
        if api:
            cursor = x.rpc.call("task.list", {"all": True, "limit": 50}).get("next_cursor")
        paging[bi.label] = {"p1": api, "p2": api and cursor is not None, "cli": cli,
                            "cursor": cursor}

    spent = {}

    def cli_runs(bi, k, *args, budget=None):
        env = h[bi.label].home.env
        out = []
        for _ in range(k):
            used, count = spent.get(bi.label, (0, 0))
            if budget is not None and used >= budget and count >= 3:
                break
            t0 = time.perf_counter()
            subprocess.run([bi.path, *args], env=env, check=True, stdout=subprocess.DEVNULL)
            out.append(time.perf_counter() - t0)
            spent[bi.label] = (used + out[-1], count + 1)
        return out

    def rpc_runs(bi, k, params):
        rpc = h[bi.label].rpc
        out = []
        for _ in range(k):
            t0 = time.perf_counter()
            rpc.call("task.list", params)
            out.append(time.perf_counter() - t0)
        return out

    def figure(fn):
        """{label: (median, samples)} over blocks alternating the binaries."""
        res = {k: sum(v, []) for k, v in _blocks(bins, s.blocks, n, fn).items()}
        return {k: (median(v), len(v)) if v else (None, 0) for k, v in res.items()}

    note(f"listing at {size} records: ls, task.list")
    ls = figure(lambda bi, k: cli_runs(bi, k, "ls"))
    tl = figure(lambda bi, k: rpc_runs(bi, k, {}))
    note(f"listing at {size} records: ls --all --json")
    for bi in bins:
        mem_before[bi.label] = h[bi.label].home.memory()
    lsall = figure(lambda bi, k: cli_runs(bi, k, "ls", "--all", "--json", budget=45))
    for bi in bins:
        mem_after[bi.label] = h[bi.label].home.memory()
    paged = {}
    if any(p["p1"] or p["cli"] for p in paging.values()):
        note(f"listing at {size} records: paged")
        only = lambda key, fn: figure(lambda bi, k: fn(bi, k) if paging[bi.label][key] else [])
        paged["p1"] = only("p1", lambda bi, k: rpc_runs(bi, k, {"all": True, "limit": 50}))
        paged["p2"] = only("p2", lambda bi, k: rpc_runs(
            bi, k, {"all": True, "limit": 50, "cursor": paging[bi.label]["cursor"]}))
        paged["cli"] = only("cli", lambda bi, k: cli_runs(bi, k, "ls", "--all", "--limit", "50"))

    t = Table(f"7. listing with {size:,} finished records stored (medians of {n} unless said)")
    t.row("records stored", *(f"{h[k].count:,}" for k in (b, c)))
    t.row("first `aside ls`, delivering the backlog (info; rows)",
          *(f"{ms(first[k][0])}; {first[k][1]}" for k in (b, c)))
    t.row("`aside ls` (live tasks only, no backlog)", ms(ls[b][0]), ms(ls[c][0]), "<= 50 ms",
          (ls[b][0] <= 0.05, ls[c][0] <= 0.05))
    t.row("task.list {} round trip", ms(tl[b][0]), ms(tl[c][0]), "<= 50 ms",
          (tl[b][0] <= 0.05, tl[c][0] <= 0.05))
    t.row("`aside ls --all --json > /dev/null` (samples)",
          *(f"{ms(lsall[k][0])} ({lsall[k][1]})" for k in (b, c)))
    t.row("daemon VmRSS before / after it", *(f"{mem_before[k][0]:.1f} / {mem_after[k][0]:.1f}"
                                             f" MiB" for k in (b, c)))
    t.row("daemon VmHWM before / after it", *(f"{mem_before[k][1]:.1f} / {mem_after[k][1]:.1f}"
                                             f" MiB" for k in (b, c)))
    yes = lambda v: "yes" if v else "no"
    t.row("pages: task.list {all, limit} / `ls --all --limit`",
          *(f"{yes(paging[k]['p1'])} / {yes(paging[k]['cli'])}" for k in (b, c)))
    if paged:
        cell = lambda key, k: ms(paged[key][k][0]) if paging[k][key] else "-"
        t.row("task.list {all, limit: 50}, first page", cell("p1", b), cell("p1", c))
        t.row("task.list {all, limit: 50, cursor}, second page", cell("p2", b), cell("p2", c))
        t.row("`aside ls --all --limit 50`", cell("cli", b), cell("cli", c))
    t.note("The first `aside ls` takes the notifications of the tasks the submit samples"
           " started (owner cli), so the measured `aside ls` shows none.")
    t.print()


# ---------------------------------------------------------------- 8. notify

def part_notify(bins, s):
    """A background task's exit -> its owner hearing of it, one task at a time. The task is
    a static C helper (built with gcc into the cache) that reads CLOCK_MONOTONIC and writes
    it to a file, then calls _exit: the stamp precedes the real exit by one write() (a few
    microseconds, an over-estimate of the latency). Two figures, in blocks alternating
    baseline and candidate, each in a fresh home: (a) a connection subscribed with
    events.subscribe {} starts the task and reads until its `finished` event, stamped when
    its line is read; (b) one connection starts the task, a second with the same owner
    polls notifications.take in a tight loop until it carries the task. p50 and p99."""
    helper = exit_stamp_helper()
    stamps = tempfile.mkdtemp(prefix="ab-stamps-",
                              dir="/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")
    homes = {b.label: Home(b, "retention = \"none\"\n").start() for b in bins}
    seq = [0]

    def stamp_task():
        seq[0] += 1
        path = os.path.join(stamps, str(seq[0]))
        return path, bg([helper, path])

    def read_stamp(path):
        with open(path) as f:
            v = int(f.read())
        os.remove(path)
        return v

    def events(bi, k):
        rpc = homes[bi.label].rpc(owner="bench-events")
        rpc.call("events.subscribe", {})
        out = []
        try:
            for _ in range(k):
                path, spec = stamp_task()
                tid = rpc.call("task.start", spec)["task"]["id"]
                seen = rpc.wait_event(lambda e: e["task_id"] == tid and e["event"] == "finished")
                out.append((seen - read_stamp(path)) / 1e9)
            drain_notices(rpc)
        finally:
            rpc.close()
        return out

    def polled(bi, k):
        starter = homes[bi.label].rpc(owner="bench-poll")
        poller = homes[bi.label].rpc(owner="bench-poll")
        out = []
        # A client of acknowledged notices acks what it was handed with its next take.
        acks = supports_ack(poller)
        ack = []
        try:
            for _ in range(k):
                path, spec = stamp_task()
                tid = starter.call("task.start", spec)["task"]["id"]
                while True:
                    r = poller.call("notifications.take", {"ack": ack} if ack else {})
                    ack = [n["seq"] for n in r["notifications"]] if acks else []
                    if any(n["task"]["id"] == tid for n in r["notifications"]):
                        seen = poller.last_ns
                        break
                out.append((seen - read_stamp(path)) / 1e9)
        finally:
            starter.close()
            poller.close()
        return out

    try:
        note(f"notify: {s.notify_samples} samples per binary and method")
        ev = {k: sum(v, []) for k, v in _blocks(bins, s.blocks, s.notify_samples, events).items()}
        po = {k: sum(v, []) for k, v in _blocks(bins, s.blocks, s.notify_samples, polled).items()}
    finally:
        for x in homes.values():
            x.close()
        shutil.rmtree(stamps, ignore_errors=True)
    b, c = (bi.label for bi in bins)
    n = s.notify_samples
    t = Table(f"8. a task's exit -> its owner notified ({n} samples each, one task at a time)")
    for name, d in (("`finished` event at a subscriber", ev),
                    ("`notifications.take` polled in a tight loop", po)):
        t.row(f"exit -> {name}, p50", ms(median(d[b])), ms(median(d[c])))
        t.row(f"exit -> {name}, p99", ms(pct(d[b], 99)), ms(pct(d[c], 99)), "<= 10 ms",
              (pct(d[b], 99) <= 0.010, pct(d[c], 99) <= 0.010))
    t.note("The exit instant is the helper's CLOCK_MONOTONIC stamp, taken one write() before"
           " _exit (an over-estimate by microseconds); the arrival is when the reply or event"
           " line is read by this script. The poller spins on a core, so on a busy 2-core"
           " machine the scheduler preempting it adds to its tail.")
    t.print()


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="parts: " + ", ".join(PARTS))
    ap.add_argument("--only", help="comma-separated parts to run (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: fewer samples, 10k records at most instead of 100k")
    ap.add_argument("--aside", help="the candidate binary (default: this tree's"
                    " target/release/aside; not built when given)")
    ap.add_argument("--baseline", default=os.path.join(CACHE, "aside-baseline"),
                    help="the baseline binary (default: %(default)s)")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run cargo build --release first")
    ap.add_argument("--tasks", type=int, help="tasks in the throughput part (default 1000,"
                    " --quick 200)")
    ap.add_argument("--skip-pueue", action="store_true", help="do not measure pueue")
    ap.add_argument("--pueue-tasks", type=int, help="tasks through pueue (default 200;"
                    " about 0.17 s each; its rate is compared)")
    ap.add_argument("--only-agents", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    parts = PARTS
    if args.only_agents:
        parts = ["agents"]
    if args.only:
        parts = [p.strip() for p in args.only.split(",") if p.strip()]
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            ap.error(f"unknown part(s) {', '.join(unknown)}; parts: {', '.join(PARTS)}")
    candidate = args.aside or os.path.join(ROOT, "target", "release", "aside")
    if not args.aside and not args.no_build:
        note("cargo build --release -p aside")
        subprocess.run(["cargo", "build", "--release", "-p", "aside", "--manifest-path",
                        os.path.join(ROOT, "Cargo.toml")], check=True, stdout=sys.stderr)
    for label, path in (("baseline", args.baseline), ("candidate", candidate)):
        if not os.access(path, os.X_OK):
            sys.exit(f"no {label} binary at {path}" + (
                " (build main with `cargo build --release -p aside` and copy"
                " target/release/aside there, or pass --baseline PATH)"
                if label == "baseline" else ""))
    bins = [Bin("baseline", os.path.abspath(args.baseline)),
            Bin("candidate", os.path.abspath(candidate))]
    s = Settings(args.quick, args.tasks, args.pueue_tasks)

    header(bins)
    print(f"parts: {', '.join(parts)}{' (--quick)' if args.quick else ''}")
    started = time.perf_counter()
    hist = Histories(bins)
    try:
        for p in PARTS:
            if p not in parts:
                continue
            t0 = time.perf_counter()
            try:
                run_part(p, bins, s, args, hist)
            except Exception as e:  # report it and go on with the other parts
                traceback.print_exc()
                print(f"\n{p}: FAILED ({type(e).__name__}: {e}); see stderr")
            note(f"{p}: {time.perf_counter() - t0:.0f} s")
            later = [q for q in PARTS[PARTS.index(p) + 1:] if q in parts]
            if not {"submit", "listing"} & set(later):
                hist.close()  # the big stores are not needed any more
    finally:
        hist.close()
    print(f"\ntotal time: {time.perf_counter() - started:.0f} s")


def run_part(p, bins, s, args, hist):
    {
        "throughput": lambda: part_throughput(bins, s, args.skip_pueue),
        "foreground": lambda: part_foreground(bins, s),
        "gigabyte": lambda: part_gigabyte(bins, s),
        "sleepers": lambda: part_sleepers(bins, s),
        "agents": lambda: part_agents(bins, s),
        "submit": lambda: part_submit(bins, s, hist),
        "listing": lambda: part_listing(bins, s, hist),
        "notify": lambda: part_notify(bins, s),
        "mcp": lambda: part_mcp(bins, s.mcp_samples),
        "supervisors": lambda: part_supervisors(bins, s.sleepers),
        "adopt": lambda: part_adopt(bins, s.sleepers),
        "keys": lambda: part_keys(bins, 100 if s.quick else 1000),
        "terminals": lambda: part_terminals(bins, 100),
        "top": lambda: part_top(bins, 1000 if s.quick else 10000, 3 if s.quick else 7),
    }[p]()


if __name__ == "__main__":
    main()
