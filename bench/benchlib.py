"""Plumbing for bench/run.py: private daemons, a JSON-RPC client, statistics, tables."""

import hashlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CACHE = os.path.expanduser("~/.cache/aside-bench")


def now_ns():
    """CLOCK_MONOTONIC in nanoseconds: the clock the exit-stamp helper writes."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def note(msg):
    """Progress on stderr, so stdout holds only the report."""
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


class Bin:
    """One aside binary under test: `label` is "baseline" or "candidate"."""

    def __init__(self, label, path):
        self.label = label
        self.path = path


class Home:
    """A temporary ASIDE_HOME with its own daemon, run by one aside binary."""

    def __init__(self, binary, config=""):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="ab-", dir="/tmp")
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(config)
        self.env = dict(os.environ, ASIDE_HOME=self.dir)
        self.env.pop("ASIDE_OWNER", None)
        self.pid = None

    def aside(self, *args, check=True, capture=True):
        return subprocess.run([self.bin.path, *args], env=self.env, check=check,
                              capture_output=capture, text=True)

    def start(self):
        self.aside("daemon", "start")
        status = json.loads(self.aside("daemon", "status", "--json").stdout)
        self.pid = status["pid"]
        return self

    def stop(self):
        self.aside("daemon", "stop", check=False)

    def rpc(self, owner=None):
        return Rpc(os.path.join(self.dir, "aside.sock"), owner)

    def memory(self):
        """The daemon's (VmRSS, VmHWM) in MiB."""
        return proc_memory(self.pid)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def proc_memory(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    kib = lambda k: int(fields[k].split()[0]) / 1024
    return kib("VmRSS"), kib("VmHWM")


class RpcError(Exception):
    def __init__(self, error):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")


INVALID_PARAMS = -32602


class Rpc:
    """A JSON-RPC connection that can pipeline requests. Event notifications that arrive
    while waiting for a reply are kept in `events` as (arrival ns, event)."""

    def __init__(self, path, owner=None):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next = 1
        self.events = []
        self.last_ns = 0  # when the last reply's line was read
        if owner is not None:
            version = self.call("daemon.status", {})["protocol_version"]
            self.call("hello", {"protocol_version": version, "owner": owner})

    def send(self, method, params):
        i = self.next
        self.next += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                                      "params": params}).encode() + b"\n")
        return i

    def _read(self):
        line = self.file.readline()
        t = now_ns()
        if not line:
            raise ConnectionError("the daemon closed the connection")
        return t, json.loads(line)

    def recv(self):
        while True:
            t, msg = self._read()
            if "id" in msg:
                self.last_ns = t
                if "error" in msg:
                    raise RpcError(msg["error"])
                return msg["result"]
            if msg.get("method") == "event":
                self.events.append((t, msg["params"]["event"]))

    def call(self, method, params):
        self.send(method, params)
        return self.recv()

    def wait_event(self, pred):
        """The arrival time (ns) of the first event matching `pred`, kept or still to come.
        Kept events that do not match are dropped."""
        while True:
            for i, (t, ev) in enumerate(self.events):
                if pred(ev):
                    del self.events[:i + 1]
                    return t
            self.events.clear()
            t, msg = self._read()
            if msg.get("method") == "event":
                self.events.append((t, msg["params"]["event"]))

    def close(self):
        self.file.close()
        self.sock.close()


def supports_ack(rpc):
    """Whether the daemon takes acknowledgements of notices (newer than the baseline)."""
    try:
        rpc.call("notifications.take", {"ack": []})
        return True
    except RpcError as e:
        if e.code == INVALID_PARAMS:
            return False
        raise


def drain_notices(rpc):
    """Takes every pending notice of the connection's owner and acknowledges it (with the
    next take), so none is left pending. A binary from before acknowledged notices refuses
    the `ack` field: its take removed them already."""
    ack = []
    while True:
        try:
            got = rpc.call("notifications.take", {"ack": ack} if ack else {})["notifications"]
        except RpcError as e:
            if e.code == INVALID_PARAMS:
                return
            raise
        if not got:
            return
        ack = [n["seq"] for n in got]


def bg(argv, cwd="/tmp"):
    return {"kind": "shell", "command": {"argv": argv}, "mode": "background", "cwd": cwd}


def wait_all(rpc, ids):
    while True:
        r = rpc.call("task.wait", {"ids": ids, "timeout_ms": 600000})
        if r["done"]:
            return r["tasks"]


def timed(fn, *a, **kw):
    t = time.perf_counter()
    fn(*a, **kw)
    return time.perf_counter() - t


# ---------------------------------------------------------------- statistics and output

def median(xs):
    return statistics.median(xs)


def pct(xs, p):
    """The p-th percentile, nearest rank."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ms(secs):
    return f"{secs * 1000:.2f} ms" if secs < 10 else f"{secs:.1f} s"


def secs(x):
    return f"{x:.2f} s"


def mib(x):
    return f"{x:.1f} MiB"


def alternate(bins, rounds, fn):
    """Calls fn(item, round) for each item (a binary, a home: anything with a label)
    `rounds` times, reversing the order every round so none always goes first. Returns
    {label: [results in round order]}."""
    out = {b.label: [] for b in bins}
    for r in range(rounds):
        for b in (bins if r % 2 == 0 else bins[::-1]):
            out[b.label].append(fn(b, r))
    return out


def split(total, parts):
    """`total` samples as `parts` nearly equal blocks."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Table:
    """A markdown table: figure, baseline, candidate, target, met (baseline/candidate)."""

    def __init__(self, title):
        self.title = title
        self.rows = []
        self.notes = []

    def row(self, figure, base="", cand="", target="", met=None):
        """`met` is None (no target) or a pair of booleans/None for the two columns."""
        if met is not None:
            yn = lambda m: "-" if m is None else ("yes" if m else "NO")
            met = f"{yn(met[0])} / {yn(met[1])}"
        self.rows.append((figure, base, cand, target, met or ""))

    def note(self, text):
        self.notes.append(text)

    def print(self):
        head = ("figure", "baseline", "candidate", "target", "met (b / c)")
        rows = [head] + self.rows
        w = [max(len(r[i]) for r in rows) for i in range(5)]
        fmt = lambda r: "| " + " | ".join(
            (c.ljust(w[i]) if i in (0, 3, 4) else c.rjust(w[i])) for i, c in enumerate(r)) + " |"
        print(f"\n{self.title}\n")
        print(fmt(head))
        print("| " + " | ".join(("-" * w[i] if i in (0, 3, 4) else "-" * (w[i] - 1) + ":")
                                for i in range(5)) + " |")
        for r in self.rows:
            print(fmt(r))
        for n in self.notes:
            print(f"\n{n}")
        sys.stdout.flush()


# ---------------------------------------------------------------- the exit-stamp helper

EXIT_STAMP_C = r"""
/* Writes CLOCK_MONOTONIC (ns) to argv[1], then exits at once: the stamp is taken after the
   file is open, so only one write() separates it from _exit(). */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) _exit(2);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) _exit(3);
    char buf[32];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    _exit(write(fd, buf, n) == n ? 0 : 4);
}
"""


def exit_stamp_helper():
    """Builds (once, into the cache) the static helper that stamps its own exit."""
    tag = hashlib.sha256(EXIT_STAMP_C.encode()).hexdigest()[:10]
    path = os.path.join(CACHE, f"exit-stamp-{tag}")
    if os.path.exists(path):
        return path
    os.makedirs(CACHE, exist_ok=True)
    src = path + ".c"
    with open(src, "w") as f:
        f.write(EXIT_STAMP_C)
    for flags in (["-static"], []):  # static if the C library allows it
        r = subprocess.run(["gcc", "-O2", *flags, "-o", path + ".tmp", src],
                           capture_output=True, text=True)
        if r.returncode == 0:
            os.replace(path + ".tmp", path)
            return path
    raise RuntimeError(f"gcc could not build {src}: {r.stderr}")


# ---------------------------------------------------------------- the run's header

def header(bins):
    """Date (UTC), each binary's path, version and the git commit of the tree it sits in
    (the candidate's tree is normally this one), nproc and the load average."""
    def out(cmd, cwd=None):
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"aside benchmarks, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    for b in bins:
        d = os.path.dirname(b.path)
        top = out(["git", "rev-parse", "--show-toplevel"], d)
        tree = "not in a git tree"
        if top:
            rev = out(["git", "rev-parse", "--short", "HEAD"], top)
            dirty = out(["git", "status", "--porcelain", "--untracked-files=no"], top)
            tree = f"tree {top} at {rev}{' with uncommitted changes' if dirty else ''}"
        st = os.stat(b.path)
        built = time.strftime("%Y-%m-%d %H:%M", time.gmtime(st.st_mtime))
        print(f"{b.label:<9}: {b.path}\n           {out([b.path, '--version']) or '?'},"
              f" built {built} UTC, {tree}")
    print(f"machine: nproc {out(['nproc'])}, load average {load} (1, 5, 15 min)")
