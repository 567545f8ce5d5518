#!/usr/bin/env python3
"""The verdict of a claude-tasks scenario (interactive.sh), from the scripted model's report,
the log of what `aside mcp` read and wrote, and `aside ls --all --json` (on fd 3).

  tasks_verdict.py SCENARIO STATE_DIR RUN_DIR MARKER HOST 3< <(aside ls --all --json)

Prints one line a check and notes quoting what the host told the model; exits 1 when a check
failed."""

import glob
import json
import os
import sys

EXTENSION = "io.modelcontextprotocol/tasks"
CANCEL_REASON = "cancelled by the MCP client"


def mcp_log(run):
    """(request, response) pairs of every `aside mcp` the host started, in order."""
    pairs = []
    for path in sorted(glob.glob(os.path.join(run, "mcp", "*.in"))):
        out = {}
        for line in open(path[:-3] + ".out", errors="replace"):
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if "id" in m and "method" not in m:
                out[json.dumps(m["id"])] = m
        for line in open(path, errors="replace"):
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if "method" in m:
                pairs.append((m, out.get(json.dumps(m.get("id")))))
    return pairs


def main():
    scenario, state, run, marker, host = sys.argv[1:6]
    report = json.load(open(os.path.join(state, "report.json")))
    raw = os.fdopen(3).read()
    try:
        tasks = json.loads(raw)
    except ValueError:
        tasks = None
    pairs = mcp_log(run)
    calls = [(q, a) for q, a in pairs if q["method"] == "tools/call"]
    gets = [(q, a) for q, a in pairs if q["method"] == "tasks/get"]
    cancels = [(q, a) for q, a in pairs if q["method"] == "tasks/cancel"]
    created = (calls[0][1] or {}).get("result") or {} if calls else {}
    handle = created.get("taskId")
    problems = []

    def check(name, ok, detail=""):
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        if not ok:
            problems.append(f"{name}: {detail}" if detail else name)

    def note(name, text):
        print(f"  note {name}:")
        for line in str(text).splitlines() or [""]:
            print(f"       | {line}")

    check("one tools/call reached aside", len(calls) == 1,
          f"{len(calls)}: {[q['params'].get('arguments') for q, _ in calls]}")
    declared = [EXTENSION in (((q.get("params") or {}).get("_meta") or {})
                              .get("io.modelcontextprotocol/clientCapabilities") or {})
                .get("extensions", {}) for q, _ in calls]
    check(f"the host declared {EXTENSION} on it", declared and all(declared))
    check("aside answered it with a task (resultType task, status working)",
          created.get("resultType") == "task" and created.get("status") == "working",
          json.dumps(calls[0][1] if calls else None)[:600])
    check("the model got the host's result for the call", report.get("task_result"),
          json.dumps(report.get("results"))[:600])
    if tasks is None:
        check("aside ls --all --json", False, raw[:500])
        tasks = []
    check("aside ls: exactly one task", len(tasks) == 1,
          json.dumps([(t["id"], t["command"]) for t in tasks]))
    task = tasks[0] if tasks else {}
    for name, c in report["checks"].items():
        check(name, c["ok"], c["detail"][:1500])

    if scenario == "tasks-wake":
        done = [a for q, a in gets if q["params"].get("taskId") == handle
                and ((a or {}).get("result") or {}).get("status") == "completed"]
        result = json.dumps(((done[0].get("result") or {}).get("result")) if done else None)
        check("the host polled tasks/get until it answered completed, with the output",
              done and marker in result,
              f"{len(gets)} tasks/get, the last: {json.dumps(gets[-1] if gets else None)[:600]}")
        woken = report.get("woken") or ""
        check("a third model request, started by the host, carried the marker",
              report["main_requests"] >= 3 and marker in woken, woken[:1500])
        check("aside ls: the task succeeded", task.get("state") == "succeeded",
              json.dumps(task)[:600])
    else:
        stop = report.get("stop_tool") or {}
        check("the host offered the model its stop tool for background tasks",
              stop.get("name"), ", ".join(report.get("tools_offered") or []))
        ok = [a for q, a in cancels if q["params"].get("taskId") == handle
              and a is not None and "error" not in a]
        check("the host sent tasks/cancel for the task, answered without error", ok,
              json.dumps(cancels)[:800])
        reason = (task.get("reason") or {}).get("message")
        check(f"aside ls: the task ended cancelled, \"{CANCEL_REASON}\"",
              task.get("state") == "cancelled" and reason == CANCEL_REASON,
              json.dumps(task)[:600])

    egress_path = os.path.join(state, "egress.jsonl")
    egress = sorted({json.loads(line)["target"] for line in open(egress_path)}) \
        if os.path.exists(egress_path) else []
    check("no request meant for beyond loopback", not egress, f"refused: {egress}")

    note("what the host told the model of the call", report.get("task_result"))
    if scenario == "tasks-wake":
        at = report.get("answered_at") or []
        if len(at) >= 3:
            print(f"  note the host woke the model {at[2] - at[0]:.1f}s after the call "
                  f"(the command takes 2s; {len(gets)} tasks/get)")
        note("what the host added to the model's conversation by itself",
             report.get("woken"))
    else:
        note(f"the stop tool ({stop.get('name')}) returned to the model",
             report.get("stop_result"))
        print(f"  note tasks/cancel sent {len(cancels)} time(s), tasks/get {len(gets)}")
    if report.get("later"):
        note("model requests after the script's end", json.dumps(report["later"])[:1500])
    try:
        shown = [line for line in open(os.path.join(run, "screen.txt"), errors="replace")
                 if line.lstrip().startswith(("●", "⎿", "❯"))]
    except OSError:
        shown = []
    note("the screen's transcript", "".join(shown).rstrip())
    if problems:
        print(f"FAIL {host} {scenario}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
