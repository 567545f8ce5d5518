"""Part `mcp`: background work through `aside mcp`, as a host speaks to it over stdio.

Each binary gets a fresh home and one `aside mcp` process, driven by this script as a host
would (newline-delimited JSON-RPC on its stdin and stdout). A binary whose server declares
the Tasks extension (`io.modelcontextprotocol/tasks`) is spoken to at protocol 2026-07-28
(`server/discover`, capabilities declared per request, as Claude Code does); otherwise with
`initialize` at 2025-11-25.

1. A `bash` call with `run_in_background` -> its answer read: a task handle where the
   extension is there, the text with the task id otherwise (the peer).
2. The task's exit -> the host learns it: with the extension, `tasks/get` polled (a
   millisecond between answer and next poll) until it reports the task terminal; without, the `notifications/message` the server
   logs when a background task ends (the peer). The exit instant is the exit-stamp helper's
   CLOCK_MONOTONIC stamp, one write() before its _exit.
"""

import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time

from benchlib import Home, Table, exit_stamp_helper, median, ms, note, now_ns, pct

TASKS = "io.modelcontextprotocol/tasks"
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "aside-bench", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}},
}


class McpProc:
    """One `aside mcp` process and the host side of its stdio."""

    def __init__(self, home, cwd):
        self.p = subprocess.Popen([home.bin.path, "mcp"], env=home.env, cwd=cwd,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.next_id = 0
        self.tasks = False
        self.messages = []   # notifications/message texts, with the time each was read

    def send(self, obj):
        self.p.stdin.write(json.dumps(obj).encode() + b"\n")
        self.p.stdin.flush()

    def line(self, timeout=30):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                raise TimeoutError("aside mcp said nothing")
            chunk = os.read(self.p.stdout.fileno(), 1 << 16)
            if not chunk:
                raise EOFError("aside mcp closed its stdout")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw), now_ns()

    def request(self, method, params):
        self.next_id += 1
        rid = self.next_id
        if self.tasks:
            params = dict(params, _meta=META)
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            msg, at = self.line()
            if msg.get("id") == rid and "method" not in msg:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"], at
            if msg.get("method") == "notifications/message":
                self.messages.append((msg["params"].get("data"), at))

    def discover(self):
        """`server/discover` at 2026-07-28: True when the server has the extension."""
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": "server/discover",
                   "params": {"_meta": META}})
        msg, _ = self.line()
        caps = msg.get("result", {}).get("capabilities", {})
        self.tasks = "error" not in msg and TASKS in caps.get("extensions", {})
        return self.tasks

    def initialize(self):
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "aside-bench", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})


    def wait_message(self, pred, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, (data, at) in enumerate(self.messages):
                if pred(data):
                    del self.messages[i]
                    return at
            msg, at = self.line(max(0.01, deadline - time.monotonic()))
            if msg.get("method") == "notifications/message":
                self.messages.append((msg["params"].get("data"), at))

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()



def connect(home, cwd):
    """A host session: 2026-07-28 with the extension where the server has it; otherwise a
    fresh process spoken to with `initialize`."""
    m = McpProc(home, cwd)
    if m.discover():
        return m
    m.close()
    m = McpProc(home, cwd)
    m.initialize()
    return m


POLL_GAP = 0.001


def task_id_of(result):
    text = "\n".join(c.get("text", "") for c in result.get("content", []))
    for line in text.splitlines():
        if line.startswith("task_id: "):
            return line[len("task_id: "):]
    raise RuntimeError(f"no task_id in {text!r}")


def part_mcp(bins, samples):
    helper = exit_stamp_helper()
    stamps = tempfile.mkdtemp(prefix="ab-stamps-",
                              dir="/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")
    homes = {b.label: Home(b, "retention = \"none\"\n").start() for b in bins}
    procs = {}
    answer, ended, kinds = {}, {}, {}
    try:
        for b in bins:
            m = connect(homes[b.label], stamps)
            procs[b.label] = m
            kinds[b.label] = "task handle" if m.tasks else "text"
        note(f"mcp: {samples} background calls per binary, alternating")
        seq = 0
        for i in range(samples):
            for b in (bins if i % 2 == 0 else bins[::-1]):
                m = procs[b.label]
                seq += 1
                stamp = os.path.join(stamps, str(seq))
                args = {"command": f"{helper} {stamp}", "run_in_background": True}
                t0 = now_ns()
                result, at = m.request("tools/call", {"name": "bash", "arguments": args})
                answer.setdefault(b.label, []).append((at - t0) / 1e9)
                if result.get("resultType") == "task":
                    handle = result["taskId"]
                    while True:
                        got, at = m.request("tasks/get", {"taskId": handle})
                        if got["status"] in ("completed", "failed", "cancelled"):
                            break
                        # A millisecond between polls: a spinning poller would take one of
                        # the two cores from the daemon it measures.
                        time.sleep(POLL_GAP)
                else:
                    tid = task_id_of(result)
                    at = m.wait_message(lambda d, tid=tid: isinstance(d, str)
                                        and d.startswith(f"task {tid} "))
                with open(stamp) as f:
                    exited = int(f.read())
                os.remove(stamp)
                ended.setdefault(b.label, []).append((at - exited) / 1e9)
    finally:
        for m in procs.values():
            m.close()
        for h in homes.values():
            h.close()
        shutil.rmtree(stamps, ignore_errors=True)
    b, c = (bi.label for bi in bins)
    t = Table(f"9. background work through `aside mcp` ({samples} calls each; baseline: "
              f"{kinds[b]}, candidate: {kinds[c]})")
    t.row("`bash` run_in_background -> answer read, p50", ms(median(answer[b])),
          ms(median(answer[c])), "<= 5 ms (task handle)",
          (None if kinds[b] != "task handle" else median(answer[b]) <= 0.005,
           None if kinds[c] != "task handle" else median(answer[c]) <= 0.005))
    t.row("`bash` run_in_background -> answer read, p99", ms(pct(answer[b], 99)),
          ms(pct(answer[c], 99)))
    t.row("exit -> host knows it ended, p50", ms(median(ended[b])), ms(median(ended[c])))
    t.row("exit -> host knows it ended, p99", ms(pct(ended[b], 99)), ms(pct(ended[c], 99)),
          "<= 10 ms (tasks/get)",
          (None if kinds[b] != "task handle" else pct(ended[b], 99) <= 0.010,
           None if kinds[c] != "task handle" else pct(ended[c], 99) <= 0.010))
    t.note("With the extension the host knows the end from `tasks/get`, polled with 1 ms"
           " between an answer and the next poll; without it, from the logging notification the"
           " server sends when a background task ends. A host polls every pollIntervalMs"
           " (aside says 1000 ms), so what a model waits for is this plus up to a second.")
    t.print()
