"""Tasks that outlive the daemon: what their supervisors cost, and how fast a new daemon
adopts them (bench/run.py parts `supervisors` and `adopt`).

supervisors  memory of aside's processes with N sleeping background tasks: PSS of the
             daemon plus every task supervisor (/proc/PID/smaps_rollup), at most 128 MiB
             in total for 1,000 tasks (the peer runs its tasks in the daemon itself)
adopt        a daemon killed with N tasks running: time from starting the next daemon to
             its first answer, which comes after every running task is adopted (at most
             1 s for 1,000); the peer marks them lost and kills them in that time
"""

import os
import signal
import subprocess
import time

from benchlib import Home, Table, bg, mib, note


def pss_kib(pid):
    """The process's proportional set size in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """The children of every thread of `pid`."""
    kids = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return kids


def is_shim(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "aside-shim"
    except OSError:
        return False


def supervisors_of(daemon_pid):
    """aside's processes beside the daemon: the keeper (a child of the daemon) and the task
    supervisors it forked (its children); for a binary whose supervisors are the daemon's
    own children, those."""
    out = []
    for pid in children(daemon_pid):
        if is_shim(pid):
            out.append(pid)
            out += [c for c in children(pid) if is_shim(c)]
    return out


def sleepers_home(b, n):
    """A started home of binary `b` with room for `n` running tasks."""
    return Home(b, f"max_running = {n + 10}\nretention = \"none\"\n").start()


def start_sleepers(home, n):
    rpc = home.rpc()
    for _ in range(n):
        rpc.send("task.start", bg(["sleep", "600"]))
    ids = [rpc.recv()["task"]["id"] for _ in range(n)]
    deadline = time.time() + 120
    while rpc.call("daemon.status", {})["running"] < n and time.time() < deadline:
        time.sleep(0.1)
    return rpc, ids


def part_supervisors(bins, n):
    res = {}
    for b in bins:
        note(f"supervisors: {n} sleeping tasks for the {b.label}")
        home = sleepers_home(b, n)
        try:
            rpc, ids = start_sleepers(home, n)
            running = rpc.call("daemon.status", {})["running"]
            time.sleep(1)
            shims = supervisors_of(home.pid)
            daemon = pss_kib(home.pid)
            supervised = sum(pss_kib(p) for p in shims)
            res[b.label] = (running, len(shims), daemon / 1024, supervised / 1024)
            rpc.call("task.stop", {"ids": ids})
        finally:
            home.close()
    b, c = (bi.label for bi in bins)
    t = Table(f"10. aside's memory (PSS) with {n} sleeping background tasks")
    t.row("tasks running when measured", str(res[b][0]), str(res[c][0]))
    t.row("keeper and supervisor processes", str(res[b][1]), str(res[c][1]))
    t.row("daemon PSS", mib(res[b][2]), mib(res[c][2]))
    t.row("keeper's and supervisors' PSS, all", mib(res[b][3]), mib(res[c][3]))
    per = lambda r: f"{r[3] * 1024 / r[1]:.0f} KiB" if r[1] else "-"
    t.row("PSS per process", per(res[b]), per(res[c]), "about 100 KiB")
    total = lambda r: r[2] + r[3]
    t.row("daemon and supervisors, total", mib(total(res[b])), mib(total(res[c])),
          "<= 128 MiB", (total(res[b]) <= 128, total(res[c]) <= 128))
    t.print()


def part_adopt(bins, n):
    res = {}
    for b in bins:
        note(f"adopt: {n} running tasks for the {b.label}")
        home = sleepers_home(b, n)
        try:
            rpc, ids = start_sleepers(home, n)
            rpc.close()
            os.kill(home.pid, signal.SIGKILL)
            time.sleep(0.5)
            t0 = time.perf_counter()
            home.aside("daemon", "start")
            first = time.perf_counter() - t0
            status = home.rpc().call("daemon.status", {})
            home.pid = status["pid"]
            res[b.label] = (first, status["running"])
            home.rpc().call("task.stop", {"ids": ids})
        finally:
            home.close()
    b, c = (bi.label for bi in bins)
    t = Table(f"11. a new daemon after kill -9 with {n} running tasks")
    t.row("tasks running after the restart", str(res[b][1]), str(res[c][1]), str(n),
          (res[b][1] == n, res[c][1] == n))
    t.row("`aside daemon start` to its answer", f"{res[b][0] * 1000:.0f} ms",
          f"{res[c][0] * 1000:.0f} ms", "<= 1 s", (res[b][0] <= 1, res[c][0] <= 1))
    t.note("`aside daemon start` returns once the new daemon answers, which it does only"
           " after it has opened its state: adopted every running task (or, in a binary"
           " without supervisors, marked them lost and killed them).")
    t.print()
