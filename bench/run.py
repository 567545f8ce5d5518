#!/usr/bin/env python3
"""aside benchmarks. Each figure is printed beside its peer, both measured in this run.

    python3 bench/run.py            # everything (builds release aside, installs pueue once)
    python3 bench/run.py --skip-pueue

Targets (from the project's issue): throughput at least half of `xargs -P 2` and at least
20 times pueue's; at most 5 ms added to a foreground run; 1 GiB of output at most 1.25 times
a plain redirect; daemon peak RSS at most 64 MiB with 1,000 sleeping background tasks.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASIDE = os.path.join(ROOT, "target", "release", "aside")
CACHE = os.path.expanduser("~/.cache/aside-bench")
PUEUE_ROOT = os.path.join(CACHE, "pueue")


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


class Home:
    """A temporary ASIDE_HOME with its own daemon."""

    def __init__(self, config=""):
        self.dir = tempfile.mkdtemp(prefix="ab-", dir="/tmp")
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(config)
        self.env = dict(os.environ, ASIDE_HOME=self.dir)

    def aside(self, *args, check=True, capture=True):
        return subprocess.run([ASIDE, *args], env=self.env, check=check,
                              capture_output=capture, text=True)

    def start(self):
        self.aside("daemon", "start")
        status = json.loads(self.aside("daemon", "status", "--json").stdout)
        self.pid = status["pid"]
        return self

    def rpc(self):
        return Rpc(os.path.join(self.dir, "aside.sock"))

    def close(self):
        self.aside("daemon", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Rpc:
    """A JSON-RPC connection that can pipeline requests."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next = 1

    def send(self, method, params):
        i = self.next
        self.next += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                                      "params": params}).encode() + b"\n")
        return i

    def recv(self):
        while True:
            msg = json.loads(self.file.readline())
            if "id" in msg:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def call(self, method, params):
        self.send(method, params)
        return self.recv()


def bg(argv):
    return {"kind": "shell", "command": {"argv": argv}, "mode": "background", "cwd": "/tmp"}


def wait_all(rpc, ids):
    while True:
        r = rpc.call("task.wait", {"ids": ids, "timeout_ms": 600000})
        if r["done"]:
            return r["tasks"]


def throughput(n, skip_pueue):
    rows = {}
    t = time.perf_counter()
    sh(f"seq {n} | xargs -P 2 -I{{}} true")
    rows["xargs -P 2"] = time.perf_counter() - t

    home = Home("max_running = 2\nretention = \"none\"\n").start()
    try:
        rpc = home.rpc()
        t = time.perf_counter()
        for _ in range(n):
            rpc.send("task.start", bg(["true"]))
        ids = [rpc.recv()["task"]["id"] for _ in range(n)]
        tasks = wait_all(rpc, ids)
        rows["aside, one connection (JSON-RPC)"] = time.perf_counter() - t
        assert all(x["state"] == "succeeded" for x in tasks), "a task failed"

        t = time.perf_counter()
        ids = [home.aside("run", "--bg", "--", "true").stdout.strip() for _ in range(n)]
        home.aside("wait", *ids)
        rows["aside, one CLI process per task"] = time.perf_counter() - t
    finally:
        home.close()

    if not skip_pueue:
        rows["pueue"] = pueue_run(n)
    return rows


def pueue_bin(name):
    path = os.path.join(PUEUE_ROOT, "bin", name)
    if not os.path.exists(path):
        print(f"installing pueue into {PUEUE_ROOT} (once)...", file=sys.stderr)
        sh(f"cargo install pueue --locked --root {PUEUE_ROOT}")
    return path


def pueue_run(n):
    pueue, pueued = pueue_bin("pueue"), pueue_bin("pueued")
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


def latency(runs):
    home = Home().start()
    try:
        def sample(argv, env):
            t = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - t

        for _ in range(20):  # warm up caches and the daemon
            sample([ASIDE, "run", "--", "true"], home.env)
        a, s = [], []
        for _ in range(runs):
            a.append(sample([ASIDE, "run", "--", "true"], home.env))
            s.append(sample(["sh", "-c", "true"], home.env))
        return statistics.median(a), statistics.median(s)
    finally:
        home.close()


def gigabyte(reps):
    size = 1 << 30
    home = Home("retention = \"none\"\n").start()
    out = os.path.join(home.dir, "redirect.out")
    try:
        rpc = home.rpc()
        plain, via = [], []
        for _ in range(reps):
            t = time.perf_counter()
            sh(f"head -c {size} /dev/zero > {out}")
            plain.append(time.perf_counter() - t)
            os.remove(out)

            t = time.perf_counter()
            task = rpc.call("task.start", bg(["head", "-c", str(size), "/dev/zero"]))["task"]
            done = wait_all(rpc, [task["id"]])[0]
            via.append(time.perf_counter() - t)
            assert done["state"] == "succeeded" and done["output_bytes"] == size, done
            rpc.call("task.clean", {})
        return min(plain), min(via)
    finally:
        home.close()


def rss(n):
    home = Home(f"max_running = {n + 10}\nretention = \"none\"\n").start()
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
        with open(f"/proc/{home.pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        hwm = int(fields["VmHWM"].split()[0]) / 1024
        cur = int(fields["VmRSS"].split()[0]) / 1024
        rpc.call("task.stop", {"ids": ids})
        return running, hwm, cur
    finally:
        home.close()


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


def agent_figures(runs, sessions):
    """Time from a parent's task call to its child's first model request (median of
    `runs`), and daemon RSS with `sessions` agents waiting on their model."""
    server = ModelServer()
    config = (f"retention = \"none\"\nmax_running = {sessions + 10}\n"
              f"[agent]\nbase_url = \"{server.url}\"\n"
              f"model = \"bench\"\nmax_running = {sessions + 10}\n")
    home = Home(config).start()
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
        with open(f"/proc/{home.pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        hwm = int(fields["VmHWM"].split()[0]) / 1024
        cur = int(fields["VmRSS"].split()[0]) / 1024
        idle = server.idle
        rpc.call("task.stop", {"ids": ids})
        return statistics.median(gaps), idle, hwm, cur
    finally:
        server.close()
        home.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--skip-pueue", action="store_true")
    ap.add_argument("--only-agents", action="store_true")
    args = ap.parse_args()
    sh(f"cargo build --release -p aside --manifest-path {ROOT}/Cargo.toml", capture_output=True)

    print(f"aside benchmarks, {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores\n")

    if args.only_agents:
        return agents_report()

    n = args.tasks
    rows = throughput(n, args.skip_pueue)
    print(f"1. {n} trivial commands (`true`) through 2 slots")
    for name, secs in rows.items():
        print(f"   {name:<36} {secs:7.2f} s  {n / secs:8.0f} tasks/s")
    xargs = n / rows["xargs -P 2"]
    best = max(n / s for k, s in rows.items() if k.startswith("aside"))
    print(f"   best aside / xargs: {best / xargs:.2f} (target >= 0.5)")
    if "pueue" in rows:
        print(f"   best aside / pueue: {best / (n / rows['pueue']):.1f} (target >= 20)")

    a, s = latency(200)
    print("\n2. foreground `aside run -- true` against `sh -c true` (median of 200)")
    print(f"   aside run -- true   {a * 1000:6.2f} ms")
    print(f"   sh -c true          {s * 1000:6.2f} ms")
    print(f"   added: {(a - s) * 1000:.2f} ms (target <= 5 ms)")

    plain, via = gigabyte(3)
    print("\n3. 1 GiB to stdout (best of 3)")
    print(f"   head -c 1GiB /dev/zero > file        {plain:6.2f} s")
    print(f"   aside run --bg (log file), to end    {via:6.2f} s")
    print(f"   ratio: {via / plain:.2f} (target <= 1.25)")

    running, hwm, cur = rss(1000)
    print(f"\n4. daemon memory with {running} sleeping background tasks")
    print(f"   peak RSS (VmHWM) {hwm:6.1f} MiB, current {cur:6.1f} MiB (target <= 64 MiB)")
    agents_report()


def agents_report():
    gap, idle, hwm, cur = agent_figures(50, 100)
    print("\n5. agents (scripted model server on loopback)")
    print(f"   parent's task call sent -> child's first model request: {gap * 1000:.2f} ms"
          " (median of 50)")
    print(f"   daemon with {idle} agent sessions waiting on their model: peak RSS (VmHWM)"
          f" {hwm:.1f} MiB, current {cur:.1f} MiB")


if __name__ == "__main__":
    main()
