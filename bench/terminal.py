"""Terminals (bench/run.py parts `keys` and `terminals`); the peer is tmux, measured in the
same run (the baseline binary has no terminals).

keys       a key written to a task's terminal -> its echo visible in a screen read, median
           at most 5 ms: `cat` on a terminal (the terminal echoes), one JSON-RPC connection
           (`task.write`, then `task.read` with the screen until the key shows). tmux:
           `send-keys`, then `capture-pane` until it shows, through one control-mode client
           (no process per command)
terminals  100 idle terminal tasks (`cat` waiting for input): PSS of aside's processes
           (daemon, keeper, supervisors) at most 32 MiB; tmux: its server with 100 windows
"""

import base64
import os
import shutil
import subprocess
import tempfile
import time

from benchlib import Home, Table, median, mib, note, pct
from outlive import pss_kib, supervisors_of

KEYS = "abcdefghijklmnopqrstuvwxyz"


def pty_spec(argv, cols=80, rows=24):
    return {"kind": "shell", "command": {"argv": argv}, "mode": "background", "cwd": "/tmp",
            "input": {"pty": {"cols": cols, "rows": rows}}}


def shows(text_rows, row, col, ch):
    lines = text_rows.split("\n")
    return row < len(lines) and len(lines[row]) > col and lines[row][col] == ch


def aside_keys(b, samples):
    home = Home(b, "retention = \"none\"\n").start()
    try:
        rpc = home.rpc()
        tid = rpc.call("task.start", pty_spec(["cat"]))["task"]["id"]
        screen = lambda: rpc.call("task.read", {"id": tid, "after": 0, "max_bytes": 1,
                                                "screen": "text"})["screen"]
        deadline = time.time() + 10
        while screen()["offset"] == 0 and time.time() < deadline:
            rpc.call("task.write", {"id": tid, "data": base64.b64encode(b"\r").decode()})
            time.sleep(0.2)
        out = []
        for i in range(samples):
            if i % 50 == 0:  # a fresh line now and then: cat echoes it back, the cursor is at 0
                rpc.call("task.write", {"id": tid, "data": base64.b64encode(b"\r").decode()})
                time.sleep(0.02)
            s = screen()
            row, col = s["cursor_row"], s["cursor_col"]
            ch = KEYS[i % len(KEYS)]
            t0 = time.perf_counter()
            rpc.call("task.write", {"id": tid, "data": base64.b64encode(ch.encode()).decode()})
            while True:
                s = screen()
                if shows(s["text"], row, col, ch):
                    break
                if time.perf_counter() - t0 > 5:
                    raise RuntimeError(f"key {ch!r} never showed: {s}")
            out.append(time.perf_counter() - t0)
        rpc.call("task.stop", {"ids": [tid]})
        return out
    finally:
        home.close()


class TmuxControl:
    """One tmux control-mode client on a server of our own: a command per line, its output
    between %begin and %end."""

    def __init__(self, socket, session):
        self.p = subprocess.Popen(["tmux", "-L", socket, "-C", "attach", "-t", session],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
        # The answer to the attach itself comes first.
        while not self.p.stdout.readline().startswith(("%end", "%error")):
            pass

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = []
        inside = False
        while True:
            l = self.p.stdout.readline()
            if not l:
                raise RuntimeError("tmux control client went away")
            if l.startswith("%begin"):
                inside = True
                continue
            if l.startswith("%end") or l.startswith("%error"):
                if inside:
                    return "\n".join(out)
                continue
            if inside:
                out.append(l.rstrip("\n"))

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(timeout=10)


def tmux_server(sock, windows, command):
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", "b", "-x", "80", "-y", "24",
                    command], check=True)
    for _ in range(windows - 1):
        subprocess.run(["tmux", "-L", sock, "new-window", "-d", "-t", "b:", command], check=True)


def tmux_pid(sock):
    out = subprocess.run(["tmux", "-L", sock, "display-message", "-p", "#{pid}"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def tmux_keys(samples):
    sock = f"aside-bench-{os.getpid()}"
    tmux_server(sock, 1, "cat")
    c = TmuxControl(sock, "b")
    try:
        cursor = lambda: tuple(int(x) for x in c.cmd(
            "display-message -p -t b '#{cursor_y} #{cursor_x}'").split())
        out = []
        for i in range(samples):
            if i % 50 == 0:
                c.cmd("send-keys -t b Enter")
                time.sleep(0.02)
            row, col = cursor()
            ch = KEYS[i % len(KEYS)]
            t0 = time.perf_counter()
            c.cmd(f"send-keys -t b -l {ch}")
            while True:
                if shows(c.cmd("capture-pane -p -t b"), row, col, ch):
                    break
                if time.perf_counter() - t0 > 5:
                    raise RuntimeError(f"tmux: key {ch!r} never showed")
            out.append(time.perf_counter() - t0)
        return out
    finally:
        c.close()
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def part_keys(bins, samples):
    cand = bins[1]
    note(f"keys: {samples} keys to cat on a terminal, aside then tmux")
    a = aside_keys(cand, samples)
    t = tmux_keys(samples)
    tb = Table(f"12. a key written to a terminal task -> its echo in a screen read "
               f"({samples} keys; ms)")
    tb.row("aside: `task.write`, then `task.read` with the screen until it shows, median",
           "-", f"{median(a) * 1000:.2f}", "<= 5 ms", (None, median(a) <= 0.005))
    tb.row("aside: p90", "-", f"{pct(a, 90) * 1000:.2f}")
    tb.row("tmux (peer, same run): `send-keys`, then `capture-pane` until it shows, median",
           "-", f"{median(t) * 1000:.2f}")
    tb.row("tmux: p90", "-", f"{pct(t, 90) * 1000:.2f}")
    tb.note("The baseline has no terminals. Both poll the screen as fast as one client can "
            "ask: aside over one JSON-RPC connection, tmux over one control-mode client.")
    tb.print()


def part_terminals(bins, n):
    cand = bins[1]
    note(f"terminals: {n} idle terminal tasks, then tmux with {n} windows")
    home = Home(cand, f"max_running = {n + 10}\nretention = \"none\"\n").start()
    try:
        rpc = home.rpc()
        for _ in range(n):
            rpc.send("task.start", pty_spec(["cat"]))
        ids = [rpc.recv()["task"]["id"] for _ in range(n)]
        deadline = time.time() + 60
        while rpc.call("daemon.status", {})["running"] < n and time.time() < deadline:
            time.sleep(0.1)
        running = rpc.call("daemon.status", {})["running"]
        time.sleep(1)
        shims = supervisors_of(home.pid)
        daemon = pss_kib(home.pid) / 1024
        supervised = sum(pss_kib(p) for p in shims) / 1024
        rpc.call("task.stop", {"ids": ids})
    finally:
        home.close()
    sock = f"aside-bench-{os.getpid()}-idle"
    tmux_server(sock, n, "cat")
    try:
        time.sleep(1)
        tmux = pss_kib(tmux_pid(sock)) / 1024
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    t = Table(f"13. {n} idle terminal tasks (`cat` on a terminal): memory (PSS)")
    t.row("terminal tasks running when measured", "-", str(running))
    t.row("daemon", "-", mib(daemon))
    t.row(f"keeper and supervisors ({len(shims)} processes)", "-", mib(supervised))
    total = daemon + supervised
    t.row("aside's processes, total", "-", mib(total), "<= 32 MiB", (None, total <= 32))
    t.row(f"tmux server with {n} windows (peer, same run)", "-", mib(tmux))
    t.note("The programs themselves (`cat`) are counted on neither side.")
    t.print()
