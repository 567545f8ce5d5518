# shellcheck shell=bash
# The claude-tasks check: Claude Code's interactive CLI, under a pty (tmux on a socket of its
# own), following aside's background tasks by MCP Tasks. Sourced by run.sh, whose check_host
# has set up the scratch directory, the scripted model (--scenario tasks-wake or tasks-stop)
# and the host ($HOST_BIN, BASE_ENV, HOST_ENV, HOST_CMD).
#
#   tasks-wake  the user types a prompt; the model starts `sleep 2; echo MARKER` with
#               run_in_background, then ends its turn. With no more input, Claude Code must
#               poll tasks/get, see the task completed, and start a model turn by itself
#               that carries the marker; aside must have seen one tools/call only.
#   tasks-stop  the model starts `sleep 600` in the background, then calls the host's own
#               stop tool; the aside task must end cancelled "by the MCP client".

TASKS_PROMPT="Run the marker command in the background and tell me when it ends."
TMUX_SOCKET=aside-claude-tasks-$$
WAIT_START=${ASIDE_HOSTS_WAIT_START:-60}
WAIT_TURN=${ASIDE_HOSTS_WAIT_TURN:-30}

# The socket lives in the scratch directory (tmux leaves it behind after kill-server), and
# no tmux configuration of yours is read.
tm() { env -u TMUX TMUX_TMPDIR="$RUN" tmux -L "$TMUX_SOCKET" -f "$RUN/tmux.conf" "$@"; }
screen() {
    tm capture-pane -p -J -t host -S - 2> /dev/null | sed -e 's/[[:space:]]*$//' -e '/^$/d'
}

# `aside` on the host's PATH logs what each `aside mcp` reads and writes (JSON-RPC, one
# message a line) to $RUN/mcp/PID.in and .out; the recipe's command is unchanged.
logging_aside() {
    mkdir -p "$RUN/mcp"
    rm -f "$RUN/bin/aside"
    # shellcheck disable=SC2016  # $1, $@ and $$ are the wrapper's own
    {
        echo '#!/bin/sh'
        printf '[ "$1" = mcp ] || exec %q "$@"\n' "$ASIDE_BIN"
        printf 'tee -a %q/$$.in | %q "$@" | tee -a %q/$$.out\n' "$RUN/mcp" "$ASIDE_BIN" "$RUN/mcp"
    } > "$RUN/bin/aside"
    chmod +x "$RUN/bin/aside"
}

tasks_cleanup() { [ -n "${TMUX_STARTED:-}" ] && tm kill-server 2> /dev/null; }

# Fails with what was on the screen and what the model and aside saw.
tasks_fail() {
    {
        echo "--- the screen"
        screen | tail -n 40
        echo "--- the scripted model's report (what it answered, and the host's tool results)"
        python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r.get(k) for k in ("main_requests", "side_requests", "answered",
      "bash_tool", "results", "checks", "woken", "later")}, indent=1)[:4000])' "$M/report.json"
        echo "--- what aside mcp was asked"
        cat "$RUN"/mcp/*.in 2> /dev/null | python3 -c 'import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    p = m.get("params") or {}
    print(" ", m.get("id"), m.get("method"),
          json.dumps(p.get("arguments") or p.get("taskId") or "")[:200])'
    } >&2
    fail "$@"
}

# Waits up to $1 seconds for the command after $2 to succeed; $2 says what is awaited. The
# host's exit ends the wait at once (the pane stays, with its last screen).
wait_for() {
    local limit=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    until "$@"; do
        [ "$(tm display-message -p -t host '#{pane_dead}' 2> /dev/null)" != 1 ] ||
            tasks_fail "the host exited while waiting for $what"
        [ $SECONDS -lt $deadline ] || tasks_fail "waited ${limit}s for $what"
        sleep 0.2
    done
}

host_ready() { screen | grep -q '❯' && grep -qs '"tools":\[' "$RUN"/mcp/*.out; }
answered() {
    python3 -c 'import json, sys
sys.exit(len(json.load(open(sys.argv[1]))["answered"]) < int(sys.argv[2]))' "$M/report.json" "$1"
}
on_screen() { screen | grep -qF -- "$1"; }
task_ended() {
    aside_env ls --all --json 2> /dev/null | python3 -c 'import json, sys
sys.exit(not any(t["state"] not in ("queued", "running") for t in json.load(sys.stdin)))'
}

# Drives one scenario: starts the host in tmux, types the prompt, follows the script.
drive_tasks() {
    local scenario=$1 t0 t1
    logging_aside
    printf 'set -g remain-on-exit on\nset -g history-limit 5000\n' > "$RUN/tmux.conf"
    {
        echo '#!/bin/sh'
        printf 'cd %q && exec env -i' "$P"
        printf ' %q' "${BASE_ENV[@]}" "${HOST_ENV[@]}" "$HOST_BIN" "${HOST_CMD[@]}"
        echo
    } > "$RUN/host.sh"
    chmod +x "$RUN/host.sh"
    TMUX_STARTED=1
    tm new-session -d -s host -x 160 -y 50 "$RUN/host.sh" || fail "tmux could not start the host"
    t0=$SECONDS
    wait_for "$WAIT_START" "Claude Code's prompt, with aside's tools listed" host_ready
    t1=$SECONDS
    say "$HOST: ready for input after $((t1 - t0))s"
    tm send-keys -t host -l "$TASKS_PROMPT"
    sleep 0.5
    tm send-keys -t host Enter
    wait_for "$WAIT_TURN" "the model's first turn (the background call) and its second" answered 2
    if [ "$scenario" = tasks-wake ]; then
        say "$HOST: the model ended its turn; waiting for the host to wake it"
        wait_for "$WAIT_TURN" "a third model request, started by the host on its own" answered 3
        wait_for 10 "the model's last answer on the screen" on_screen "$(last_answer)"
    else
        wait_for "$WAIT_TURN" "the model's answer after the stop tool's result" answered 3
        wait_for 15 "the aside task to end after the stop" task_ended
    fi
    say "$HOST: the scenario took $((SECONDS - t1))s from the first keystroke"
    screen > "$RUN/screen.txt"
    tm kill-server 2> /dev/null
    TMUX_STARTED=
}

last_answer() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["answered"][-1])' \
        "$M/report.json"
}

# What the model server, aside mcp's log and aside's store say about the scenario.
verdict_tasks() {
    local scenario=$1
    python3 "$HERE/tasks_verdict.py" "$scenario" "$M" "$RUN" "$MARKER" "$HOST" \
        3< <(aside_env ls --all --json 2>&1)
}
