"""The dashboard (bench/run.py part `top`); the peer is htop, measured in the same run under
the same tmux (the baseline binary has no dashboard).

top   with 10,000 finished tasks stored: the time from opening `aside top` in a tmux window
      until its first frame with rows shows (capture-pane polled through one control-mode
      client), median of several runs, at most 500 ms; and the CPU time it uses over 10 s
      idle (from /proc/PID/stat), at most 1 % of a core. htop: the time until its first frame
      with process rows, and its CPU over the same 10 s.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

from benchlib import Home, Table, bg, median, note
from terminal import TmuxControl

IDLE_SECONDS = 10
FIRST_FRAME_LIMIT = 5.0


def cpu_seconds(pid):
    """User and system CPU time of a process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(home, n):
    """`n` tasks of `true`, started through one connection (pipelined), all ended."""
    rpc = home.rpc()
    batch = 500
    for start in range(0, n, batch):
        count = min(batch, n - start)
        for _ in range(count):
            rpc.send("task.start", bg(["true"]))
        for _ in range(count):
            rpc.recv()
    deadline = time.time() + 600
    while time.time() < deadline:
        s = rpc.call("daemon.status", {})
        if s["running"] == 0 and s["queued"] == 0:
            break
        time.sleep(0.5)
    rpc.close()


class Screen:
    """A tmux server of our own with an idle window, so that opening a program's window
    times that program, not the server's start."""

    def __init__(self):
        self.sock = f"aside-bench-top-{os.getpid()}"
        subprocess.run(["tmux", "-L", self.sock, "new-session", "-d", "-s", "b", "-x", "160",
                        "-y", "48", "sleep 100000"], check=True)
        self.c = TmuxControl(self.sock, "b")
        self.n = 0

    def first_frame(self, command, ready):
        """Opens `command` in a new window (160x48); the seconds until `ready(screen)` and the
        window's process id."""
        self.n += 1
        name = f"w{self.n}"
        t0 = time.perf_counter()
        self.c.cmd(f"new-window -d -n {name} \"exec {command}\"")
        while True:
            if ready(self.c.cmd(f"capture-pane -p -t {name}")):
                elapsed = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > FIRST_FRAME_LIMIT:
                raise RuntimeError(f"{command}: no frame after {FIRST_FRAME_LIMIT} s:\n"
                                   + self.c.cmd(f"capture-pane -p -t {name}"))
        pid = int(self.c.cmd(f"display-message -p -t {name} '#{{pane_pid}}'").strip())
        return name, elapsed, pid

    def close_window(self, name, pid):
        self.c.cmd(f"send-keys -t {name} q")
        deadline = time.time() + 5
        while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
            time.sleep(0.05)
        self.c.cmd(f"kill-window -t {name}")

    def close(self):
        self.c.close()
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


ROW = re.compile(r"^\s*\d+\s+\S+")


def top_ready(screen):
    # A task's row: its id, its kind, then its state.
    return any(ROW.match(l) and " succeeded " in l for l in screen.splitlines())


def htop_ready(screen):
    lines = screen.splitlines()
    header = [i for i, l in enumerate(lines) if "PID" in l and "Command" in l]
    return bool(header) and any(ROW.match(l) for l in lines[header[0] + 1:])


def measure(screen, command, ready, runs, idle_pid_extra=None):
    """Median time to the first frame over `runs` openings; then, in one more window left
    alone, the CPU it used over IDLE_SECONDS (and that of `idle_pid_extra`, if given)."""
    times = []
    for _ in range(runs):
        name, elapsed, pid = screen.first_frame(command, ready)
        times.append(elapsed)
        screen.close_window(name, pid)
    name, _, pid = screen.first_frame(command, ready)
    time.sleep(1)  # past its first refreshes
    before = cpu_seconds(pid)
    extra = cpu_seconds(idle_pid_extra) if idle_pid_extra else None
    time.sleep(IDLE_SECONDS)
    used = cpu_seconds(pid) - before
    extra_used = cpu_seconds(idle_pid_extra) - extra if idle_pid_extra else None
    screen.close_window(name, pid)
    return times, used, extra_used


def part_top(bins, records, runs):
    cand = bins[1]
    if shutil.which("htop") is None:
        raise RuntimeError("htop is the peer of this part: apt-get install -y htop")
    note(f"top: {records} tasks of `true` into a fresh home")
    home = Home(cand, "max_running = 16\n").start()
    htop_home = tempfile.mkdtemp(prefix="ab-htop-", dir="/tmp")
    screen = Screen()
    try:
        t0 = time.perf_counter()
        fill(home, records)
        note(f"top: {records} tasks ended in {time.perf_counter() - t0:.0f} s;"
             f" opening aside top {runs} times, then htop")
        env = f"env ASIDE_HOME={home.dir} TERM=xterm-256color"
        top_times, top_cpu, daemon_cpu = measure(
            screen, f"{env} {cand.path} top", top_ready, runs, idle_pid_extra=home.pid)
        htop_times, htop_cpu, _ = measure(
            screen, f"env HOME={htop_home} TERM=xterm-256color htop", htop_ready, runs)
    finally:
        screen.close()
        home.close()
        shutil.rmtree(htop_home, ignore_errors=True)
    version = subprocess.run(["htop", "--version"], capture_output=True,
                             text=True).stdout.split("\n")[0]
    first = median(top_times)
    idle = top_cpu / IDLE_SECONDS * 100
    t = Table(f"14. the dashboard, `aside top`, with {records} finished tasks stored "
              f"(a 160x48 tmux window; {runs} openings)")
    t.row("aside top: opened -> first frame with rows, median (ms)", "-",
          f"{first * 1000:.0f}", "<= 500 ms", (None, first <= 0.5))
    t.row("aside top: slowest of the runs (ms)", "-", f"{max(top_times) * 1000:.0f}")
    t.row(f"aside top: CPU over {IDLE_SECONDS} s idle (% of a core)", "-", f"{idle:.2f}",
          "<= 1 %", (None, idle <= 1))
    t.row(f"the daemon: CPU over the same {IDLE_SECONDS} s (% of a core)", "-",
          f"{daemon_cpu / IDLE_SECONDS * 100:.2f}")
    t.row(f"{version} (peer, same run): opened -> first frame with process rows, median"
          " (ms)", "-", f"{median(htop_times) * 1000:.0f}")
    t.row(f"htop: CPU over {IDLE_SECONDS} s idle (% of a core)", "-",
          f"{htop_cpu / IDLE_SECONDS * 100:.2f}")
    t.note("The baseline has no dashboard. A first frame is the first screen capture-pane "
           "shows with a task's row (aside top: one task.list page after another, then the "
           "first draw) or a process row under htop's header (htop reads /proc: the machine's "
           "processes, not 10,000 records). Idle: aside top is woken once a second to redraw "
           "ages; htop refreshes every 1.5 s by default.")
    t.print()
