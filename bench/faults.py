#!/usr/bin/env python3
"""aside under faults: notices delivered exactly once across kill -9, client crashes and
broken pipes, and the daemon's memory under a client that floods it.

    python3 bench/faults.py                    # both parts; builds target/release/aside first
    python3 bench/faults.py --only notices --trials 3
    python3 bench/faults.py --no-build --aside PATH
    python3 bench/faults.py --baseline ~/.cache/aside-bench/aside-baseline   # side by side

Unix sockets and loopback only; every daemon runs in a temporary ASIDE_HOME and is stopped
(or killed, by its pid) before the script ends. Exits 1 when a check fails.

notices  Each trial: a fresh daemon, `--tasks` background tasks (short sleeps) for `--owners`
         owners, each owner on its own connection taking its notices in a loop and
         acknowledging what it handled with its next take. Meanwhile the daemon is killed with
         SIGKILL at random moments (`--kills` per trial) and started again; owners reconnect
         and resend their unacknowledged seqs. Owners also crash on purpose: one in ten takes
         is dropped unhandled with its connection (a client crash), one in twenty is sent and
         the connection closed before the answer is read (a broken pipe). At the end every
         task stored is compared with what its owner handled: duplicates / missing /
         misrouted must be 0 / 0 / 0.
flood    One client pipelines `daemon.status` requests without reading a single reply while a
         second client asks `daemon.status` every 50 ms; reports the daemon's RSS before, its
         peak during the flood, after it, the second client's worst latency, and whether the
         flooding client was stopped (its writes blocked or its connection dropped). Target:
         peak at most 64 MiB above idle, the other client answered within 100 ms.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Bin, Home, Rpc, RpcError, note, proc_memory  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Daemon:
    """A home whose daemon can be killed and started again."""

    def __init__(self, binary):
        self.home = Home(Bin("candidate", binary), "retention = \"none\"\n")
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            self.home.start()

    def kill(self):
        with self.lock:
            if self.home.pid:
                try:
                    os.kill(self.home.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                # Gone once its pid no longer answers (it is not our child: poll).
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        os.kill(self.home.pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.005)
                self.home.pid = None

    def rpc(self, owner):
        return self.home.rpc(owner)

    def close(self):
        self.home.close()


class Owner(threading.Thread):
    """One owner: takes its notices, handles them (records the task ids), and acknowledges
    them with its next take. Keeps its unacknowledged seqs across every failure."""

    def __init__(self, daemon, name, rng, stop, legacy=False):
        super().__init__(daemon=True)
        self.d, self.name, self.rng, self.stop = daemon, name, rng, stop
        # A daemon from before acknowledgements: takes carry no ack (take removed notices).
        self.legacy = legacy
        self.handled = []        # task ids, in the order handled (repeats are duplicates)
        self.wrong = []          # (task id, its owner) handed to this owner but not its own
        self.to_ack = []
        self.crashes = self.pipes = self.reconnects = 0
        self.error = None

    def take_params(self):
        return {} if self.legacy else {"ack": self.to_ack}

    def connect(self):
        while not self.stop.is_set():
            try:
                return self.d.rpc(self.name)
            except (OSError, ConnectionError, RpcError, ValueError):
                time.sleep(0.01)
        return None

    def run(self):
        try:
            self.loop()
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = repr(e)

    def loop(self):
        rpc = None
        while True:
            done = self.stop.is_set()
            if rpc is None:
                rpc = self.connect()
                if rpc is None:
                    return
            roll = self.rng.random()
            try:
                if roll < 0.05 and not done:
                    # A broken pipe: the take is sent, the answer never read.
                    rpc.send("notifications.take", self.take_params())
                    rpc.close()
                    rpc = None
                    self.pipes += 1
                    continue
                got = rpc.call("notifications.take", self.take_params())["notifications"]
            except (OSError, ConnectionError, ValueError, RpcError):
                rpc = None
                self.reconnects += 1
                continue
            # The ack went through with that take.
            self.to_ack = []
            if got and roll < 0.15 and not done:
                # A client crash: what it was handed is dropped unhandled.
                rpc.close()
                rpc = None
                self.crashes += 1
                continue
            for n in got:
                task = n["task"]
                if task["owner"] != self.name or n["owner"] != self.name:
                    self.wrong.append((task["id"], task["owner"]))
                self.handled.append(task["id"])
                self.to_ack.append(n["seq"])
            if done and not got and not self.to_ack:
                rpc.close()
                return
            if not got:
                time.sleep(0.005)


def all_tasks(d):
    rpc = d.rpc("faults-check")
    out, cursor = [], None
    try:
        while True:
            params = {"all": True, "limit": 10000}
            if cursor is not None:
                params["cursor"] = cursor
            page = rpc.call("task.list", params)
            out.extend(page["tasks"])
            cursor = page.get("next_cursor")
            if cursor is None:
                return out
    finally:
        rpc.close()


def submit(d, owners, tasks, rng):
    """Starts the tasks, round-robin over owners, each on a connection as its owner."""
    conns = {o: d.rpc(o) for o in owners}
    try:
        for i in range(tasks):
            o = owners[i % len(owners)]
            pause = f"{rng.choice([0, 0.01, 0.02, 0.05, 0.1, 0.2])}"
            conns[o].call("task.start", {"kind": "shell", "command": {"argv": ["sleep", pause]},
                                         "mode": "background", "cwd": "/tmp"})
    finally:
        for c in conns.values():
            c.close()


def settled(d):
    """True once no task is queued or running."""
    try:
        rpc = d.rpc("faults-check")
    except (OSError, ConnectionError, RpcError, ValueError):
        return False
    try:
        s = rpc.call("daemon.status", {})
        return s["queued"] == 0 and s["running"] == 0
    except (OSError, ConnectionError, RpcError, ValueError):
        return False
    finally:
        rpc.close()


def trial(binary, n, args, rng, legacy=False):
    d = Daemon(binary)
    owners = [f"owner-{k}" for k in range(args.owners)]
    stop = threading.Event()
    threads = []
    try:
        d.start()
        submit(d, owners, args.tasks, rng)
        threads = [Owner(d, o, random.Random(rng.random()), stop, legacy) for o in owners]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        # Kills at random moments while tasks end and owners take and acknowledge.
        for at in sorted(rng.uniform(0.05, args.window) for _ in range(args.kills)):
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            d.kill()
            time.sleep(rng.uniform(0, 0.2))
            d.start()
        deadline = time.monotonic() + 120
        while not settled(d) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The counts say nothing runs; a last end may still be on its way to the disk.
        records = all_tasks(d)
        while any(r["state"] in ("queued", "running") for r in records) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
            records = all_tasks(d)
        stop.set()
        for t in threads:
            t.join(60)
        records = all_tasks(d)
    finally:
        stop.set()
        d.close()
    expected = {}
    for r in records:
        if r["state"] in ("queued", "running"):
            raise SystemExit(f"trial {n}: task {r['id']} still {r['state']} at the end")
        expected[r["id"]] = r["owner"]
    handled = {}
    duplicates = misrouted = 0
    for t in threads:
        if t.error:
            raise SystemExit(f"trial {n}: owner {t.name} failed: {t.error}")
        misrouted += len(t.wrong)
        for tid in t.handled:
            if tid in handled:
                duplicates += 1
            handled[tid] = t.name
    missing = sum(1 for tid in expected if tid not in handled)
    misrouted += sum(1 for tid, o in handled.items() if expected.get(tid, o) != o)
    return {
        "tasks": len(expected), "duplicates": duplicates, "missing": missing,
        "misrouted": misrouted, "crashes": sum(t.crashes for t in threads),
        "pipes": sum(t.pipes for t in threads),
        "reconnects": sum(t.reconnects for t in threads),
    }


def part_notices(binary, args, label="", legacy=False):
    rng = random.Random(args.seed)
    print(f"## Notices under faults{label} ({args.trials} trials, {args.tasks} tasks, "
          f"{args.owners} owners, {args.kills} kill -9 each, seed {args.seed})\n")
    print("| trial | tasks | duplicates | missing | misrouted | client crashes | broken pipes "
          "| reconnects | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for n in range(1, args.trials + 1):
        t0 = time.monotonic()
        r = trial(binary, n, args, rng, legacy)
        secs = time.monotonic() - t0
        print(f"| {n} | {r['tasks']} | {r['duplicates']} | {r['missing']} | {r['misrouted']} "
              f"| {r['crashes']} | {r['pipes']} | {r['reconnects']} | {secs:.1f} |", flush=True)
        bad += r["duplicates"] + r["missing"] + r["misrouted"]
    print()
    return bad == 0


def part_flood(binary, args, label=""):
    d = Daemon(binary)
    try:
        d.start()
        pid = d.home.pid
        time.sleep(0.5)
        idle = proc_memory(pid)[0]
        peak = idle
        latencies = []
        stop = threading.Event()

        def other():
            rpc = d.rpc("faults-other")
            try:
                while not stop.is_set():
                    t = time.monotonic()
                    rpc.call("daemon.status", {})
                    latencies.append(time.monotonic() - t)
                    time.sleep(0.05)
            finally:
                rpc.close()

        watcher = threading.Thread(target=other, daemon=True)
        watcher.start()
        flood = socket.socket(socket.AF_UNIX)
        flood.connect(os.path.join(d.home.dir, "aside.sock"))
        flood.setblocking(False)
        line = b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}\n'
        burst = line * 4096
        sent = 0
        pending = b""
        blocked_for = 0.0
        dropped = False
        t_end = time.monotonic() + args.flood_seconds
        while time.monotonic() < t_end:
            if not pending:
                pending = burst
            try:
                k = flood.send(pending)
                sent += k
                pending = pending[k:]
            except BlockingIOError:
                time.sleep(0.01)
                blocked_for += 0.01
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            peak = max(peak, proc_memory(pid)[0])
        requests = sent // len(line)
        stop.set()
        watcher.join(10)
        during = proc_memory(pid)[0]
        flood.close()
        time.sleep(2)
        after = proc_memory(pid)[0]
        worst = max(latencies) if latencies else float("nan")
        print(f"## Flood{label}: one client pipelines `daemon.status` for "
              f"{args.flood_seconds} s without reading\n")
        print("| figure | value | target |")
        print("|---|---|---|")
        print(f"| requests written by the flooding client | {requests:,} | |")
        print(f"| its writes blocked (daemon stopped reading), seconds | {blocked_for:.1f} | |")
        print(f"| its connection dropped by the daemon | {'yes' if dropped else 'no'} | |")
        print(f"| daemon RSS idle | {idle:.1f} MiB | |")
        print(f"| daemon RSS peak during the flood (sampled) | {peak:.1f} MiB "
              f"(+{peak - idle:.1f}) | <= +64 MiB |")
        print(f"| daemon RSS with the flood still connected | {during:.1f} MiB | |")
        print(f"| daemon RSS 2 s after it hung up | {after:.1f} MiB | |")
        print(f"| other client's `daemon.status`, worst of {len(latencies)} | "
              f"{worst * 1000:.1f} ms | <= 100 ms |")
        print()
        return peak - idle <= 64 and worst <= 0.100
    finally:
        d.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aside", help="the binary (default: target/release/aside, built first)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", choices=["notices", "flood"])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--owners", type=int, default=10)
    ap.add_argument("--kills", type=int, default=2, help="kill -9 of the daemon per trial")
    ap.add_argument("--window", type=float, default=3.0,
                    help="seconds after the owners start within which the kills fall")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--flood-seconds", type=float, default=10.0)
    ap.add_argument("--baseline", help="also measure this binary (an aside from before "
                    "acknowledged notices: its owners take without acking), for comparison; "
                    "its figures do not decide the exit code")
    args = ap.parse_args()
    binary = args.aside or os.path.join(ROOT, "target", "release", "aside")
    if not args.aside and not args.no_build:
        note("building target/release/aside")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "aside"], cwd=ROOT, check=True)
    ok = True
    if args.only in (None, "notices"):
        ok &= part_notices(binary, args)
        if args.baseline:
            part_notices(args.baseline, args, " — baseline", legacy=True)
    if args.only in (None, "flood"):
        ok &= part_flood(binary, args)
        if args.baseline:
            part_flood(args.baseline, args, " — baseline")
    print("all checks held" if ok else "A CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
