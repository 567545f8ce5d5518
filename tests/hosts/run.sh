#!/usr/bin/env bash
# Checks aside's MCP recipes against the real coding agents (hosts), each run headless
# against a scripted model on loopback (model_server.py); claude-tasks runs Claude Code's
# interactive CLI under a pty instead, following aside's tasks by MCP Tasks (interactive.sh).
#
#   tests/hosts/run.sh HOST...      HOST: opencode, codex, gemini, claude, or all;
#                                   or claude-tasks (interactive.sh: needs tmux)
#
# Each host is installed from npm, at the version hosts.sh pins, under $ASIDE_HOSTS_CACHE
# (default ${XDG_CACHE_HOME:-~/.cache}/aside-hosts), then run in a scratch directory with its
# own HOME, XDG directories, TMPDIR and ASIDE_HOME: nothing of yours is read or written, and
# no variable of yours reaches it. aside is registered with exactly what
# `aside mcp --print-config HOST` prints. Where `unshare -rn` works (user namespaces), each
# run has a network namespace with only loopback in it; every host is also pointed at a
# proxy that refuses and records any request meant for elsewhere, and a recorded one fails
# the check.
#
#   ASIDE_BIN=PATH          the aside binary to check (default: cargo build -p aside, debug)
#   ASIDE_HOSTS_KEEP=1      keep the scratch directories (a failed run's is always kept)
#   ASIDE_HOSTS_NETNS=0     no network namespace (the proxy still records)
#   ASIDE_HOSTS_TIMEOUT=S   the most one host may run (default 300)
#   ASIDE_HOSTS_WAIT_START=S, ASIDE_HOSTS_WAIT_TURN=S   claude-tasks: the most it waits for
#                           the host's prompt (default 60) and for each model turn (30)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=hosts.sh
. "$HERE/hosts.sh"

CACHE=${ASIDE_HOSTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aside-hosts}
FINAL_TEXT="All done: the background task ended and the foreground call printed fg-ok."

say() { printf '%s\n' "$*"; }
fail() {
    printf 'FAIL%s: %s\n' "${HOST:+ $HOST}" "$*" >&2
    exit 1
}
usage() {
    say "usage: $0 HOST...   (HOST: ${HOSTS[*]}, or all; ${EXTRA_HOSTS[*]})" >&2
    exit 2
}

prefix_of() { local p; p=$(host_package "$1"); echo "$CACHE/${p//\//+}"; }
bin_of() { echo "$(prefix_of "$1")/node_modules/.bin/$(host_bin "$1")"; }

# Installs HOST from npm unless its prefix is complete; says how long it took.
install_host() {
    local pkg prefix t0=$SECONDS
    pkg=$(host_package "$1")
    prefix=$(prefix_of "$1")
    if [ -e "$prefix/.complete" ]; then
        say "$1: $pkg already installed in $prefix"
        return
    fi
    rm -rf "$prefix"
    mkdir -p "$prefix/xdg"
    # Install scripts may run the host (opencode's does): its XDG directories are the
    # prefix's, not yours. npm itself keeps your npm configuration and cache.
    XDG_CONFIG_HOME="$prefix/xdg/config" XDG_DATA_HOME="$prefix/xdg/data" \
        XDG_CACHE_HOME="$prefix/xdg/cache" XDG_STATE_HOME="$prefix/xdg/state" \
        npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "$pkg" \
        > "$prefix/npm.log" 2>&1 || {
        cat "$prefix/npm.log" >&2
        HOST=$1 fail "npm install $pkg failed"
    }
    [ -x "$(bin_of "$1")" ] || HOST=$1 fail "npm installed $pkg but $(bin_of "$1") is missing"
    touch "$prefix/.complete"
    say "$1: installed $pkg in $((SECONDS - t0))s"
}

# Runs the host binary with the scratch environment only.
host_env() { env -i "${BASE_ENV[@]}" "${HOST_ENV[@]}" "$HOST_BIN" "$@"; }
aside_env() { env -i "${BASE_ENV[@]}" "$ASIDE_BIN" "$@"; }

cleanup() {
    local rc=$?
    set +e
    declare -F tasks_cleanup > /dev/null && tasks_cleanup
    if [ -n "${SERVER:-}" ]; then
        kill "$SERVER" 2> /dev/null
        wait "$SERVER" 2> /dev/null
    fi
    # Only with the scratch ASIDE_HOME in place: never the daemon of your own.
    [ ${#BASE_ENV[@]} -gt 0 ] && aside_env daemon stop > /dev/null 2>&1
    if [ $rc -ne 0 ] || [ "${ASIDE_HOSTS_KEEP:-0}" = 1 ]; then
        say "$HOST: scratch directory kept: $RUN" >&2
    else
        rm -rf "$RUN"
    fi
    exit $rc
}

# One host, end to end: the part run.sh runs inside the network namespace. SCENARIO is what
# the scripted model plays (model_server.py --scenario).
check_host() {
    HOST=$1
    local scenario=${2:-recipe} name=$1
    [ "$scenario" = recipe ] || name=$1-$scenario
    HOST_BIN=$(bin_of "$HOST")
    RUN=$(mktemp -d "${TMPDIR:-/tmp}/aside-host-$name.XXXXXX")
    H=$RUN/home P=$RUN/project AH=$RUN/aside-home M=$RUN/model
    mkdir -p "$H" "$P" "$AH" "$M" "$RUN/bin" "$RUN/tmp"
    BASE_ENV=()
    trap cleanup EXIT
    ln -s "$ASIDE_BIN" "$RUN/bin/aside"
    env -i PATH="$PATH" HOME="$H" git -C "$P" init -q

    MARKER="aside-bg-$$-$RANDOM"
    [ "$scenario" = recipe ] || MARKER="TASKS-MARKER-$$-$RANDOM"
    python3 "$HERE/model_server.py" --wire "$(host_wire "$HOST")" --state "$M" \
        --marker "$MARKER" --project "$P" --scenario "$scenario" 2> "$M/server.err" &
    SERVER=$!
    for _ in $(seq 100); do [ -s "$M/ports" ] && break; sleep 0.1; done
    [ -s "$M/ports" ] || fail "the scripted model server did not start: $(cat "$M/server.err")"
    read -r model_port proxy_port < "$M/ports"
    MODEL_URL=http://127.0.0.1:$model_port
    local proxy=http://127.0.0.1:$proxy_port loopback=127.0.0.1,localhost,::1
    BASE_ENV=(PATH="$RUN/bin:$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin"
        HOME="$H" XDG_CONFIG_HOME="$H/.config" XDG_DATA_HOME="$H/.local/share"
        XDG_CACHE_HOME="$H/.cache" XDG_STATE_HOME="$H/.local/state" TMPDIR="$RUN/tmp"
        LANG=C.UTF-8 TERM=dumb ASIDE_HOME="$AH"
        HTTP_PROXY="$proxy" HTTPS_PROXY="$proxy" ALL_PROXY="$proxy" http_proxy="$proxy"
        https_proxy="$proxy" all_proxy="$proxy" NO_PROXY="$loopback" no_proxy="$loopback")

    SNIPPET=$("$ASIDE_BIN" mcp --print-config "$(host_bin "$HOST")" 2> /dev/null) ||
        fail "aside mcp --print-config $(host_bin "$HOST") failed"
    HOST_ENV=()
    HOST_CMD=()
    "setup_$HOST"
    say "$HOST: $(host_env --version 2> /dev/null | head -n 1) ($(host_package "$HOST")), $NET"
    if [ "$scenario" != recipe ]; then
        # shellcheck source=interactive.sh
        . "$HERE/interactive.sh"
        say "$HOST: $scenario"
        drive_tasks "$scenario"
        verdict_tasks "$scenario"
        return
    fi

    local t0=$SECONDS rc=0
    (cd "$P" && timeout -k 10 "${ASIDE_HOSTS_TIMEOUT:-300}" env -i "${BASE_ENV[@]}" \
        "${HOST_ENV[@]}" "$HOST_BIN" "${HOST_CMD[@]}" < /dev/null > "$RUN/host.out" \
        2> "$RUN/host.err") || rc=$?
    say "$HOST: the headless run took $((SECONDS - t0))s (exit code $rc)"
    local daemon
    daemon=$(aside_env daemon status --json 2> /dev/null || true)
    verdict "$rc" "$daemon"
}

# What the model server saw, what the host printed, and what aside recorded.
verdict() {
    local rc=$1 daemon=$2
    python3 - "$M" "$RUN" "$MARKER" "$FINAL_TEXT" "$rc" "$daemon" "$HOST" \
        3< <(aside_env ls --all --json 2>&1) <<'EOF'
import json, os, sys
m, run, marker, final, rc, daemon, host = sys.argv[1:8]
problems = []
def tail(path, n=30):
    try:
        return "".join(open(path, errors="replace").readlines()[-n:])
    except OSError:
        return ""
report = json.load(open(os.path.join(m, "report.json")))
for name, c in report["checks"].items():
    print(f"  {'ok  ' if c['ok'] else 'FAIL'} {name}")
    if not c["ok"]:
        problems.append(f"{name}; the tool result was:\n{c['detail']}")
if report["bash_tool"] is None:
    offered = ", ".join(report["tools_offered"]) or "nothing (no request offered a tool)"
    problems.append(f"the host offered no aside bash tool; it offered: {offered}")
elif not report["final_sent"]:
    problems.append(f"the script did not get to its end ({report['main_requests']} main "
                    f"requests, {len(report['results'])} tool results back)")
out = open(os.path.join(run, "host.out"), errors="replace").read()
if rc != "0":
    problems.append(f"the host exited with {rc}")
elif final not in out:
    problems.append("the host did not print the model's final answer")
egress = [json.loads(l)["target"] for l in open(os.path.join(m, "egress.jsonl"))] \
    if os.path.exists(os.path.join(m, "egress.jsonl")) else []
print(f"  {'FAIL' if egress else 'ok  '} no request meant for beyond loopback"
      + (f": {sorted(set(egress))}" if egress else ""))
if egress:
    problems.append(f"the host tried to reach {sorted(set(egress))} (refused)")
try:
    written = open(os.path.join(run, "project", "bg-marker.txt")).read().strip()
except OSError:
    written = None
print(f"  {'ok  ' if written == marker else 'FAIL'} the background command wrote its marker")
if written != marker:
    problems.append(f"bg-marker.txt holds {written!r}, not {marker!r}")
raw = os.fdopen(3).read()
try:
    tasks = json.loads(raw)
except ValueError:
    tasks = []
    problems.append(f"aside ls --all --json did not answer JSON: {raw[:500]}")
bg_id = report.get("bg_task_id")
for what, pick in (("background", lambda t: t["id"] == bg_id),
                   ("foreground", lambda t: t.get("command", {}).get("script") == "sleep 2; echo fg-ok")):
    found = [t for t in tasks if pick(t)]
    state = found[0]["state"] if found else "missing"
    print(f"  {'ok  ' if state == 'succeeded' else 'FAIL'} aside ls: the {what} task "
          f"{found[0]['id'] if found else ''} ended {state}")
    if state != "succeeded":
        why = ""
        if what == "background" and state in ("lost", "cancelled", "running", "failed"):
            why = (" (if the host stopped aside's process tree on exit, as opencode does, "
                   "it took the daemon that `aside mcp` started, and the daemon's tasks, "
                   "with it)")
        problems.append(f"the {what} task ended {state}, not succeeded{why}")
try:
    alive = json.loads(daemon).get("alive")
except ValueError:
    alive = None
print(f"  note aside's daemon after the host exited: {'running' if alive else 'gone'}")
print(f"  note {report['main_requests']} main and {report['side_requests']} side requests "
      f"to the scripted model")
if problems:
    print(f"FAIL {host}:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    print(f"--- the host's stdout (tail)\n{tail(os.path.join(run, 'host.out'))}"
          f"--- the host's stderr (tail)\n{tail(os.path.join(run, 'host.err'))}",
          file=sys.stderr)
    sys.exit(1)
EOF
}

# Whether a network namespace with only loopback can be had here.
netns_works() {
    [ "${ASIDE_HOSTS_NETNS:-1}" != 0 ] && command -v unshare > /dev/null &&
        command -v ip > /dev/null && unshare -rn ip link set lo up 2> /dev/null
}

main() {
    [ $# -ge 1 ] || usage
    local hosts=() a
    for a; do
        case $a in
            all) hosts+=("${HOSTS[@]}") ;;
            opencode | codex | gemini | claude) hosts+=("$a") ;;
            claude-tasks)
                hosts+=("$a")
                command -v tmux > /dev/null || fail "tmux is needed for $a and not found"
                ;;
            *) usage ;;
        esac
    done
    for a in node npm python3 git timeout; do
        command -v "$a" > /dev/null || fail "$a is needed and not found"
    done
    if [ -z "${ASIDE_BIN:-}" ]; then
        (cd "$REPO" && cargo build -q -p aside --locked) || fail "cargo build -p aside failed"
        ASIDE_BIN=$(cd "$REPO" && cargo metadata -q --format-version 1 --no-deps |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/aside
    fi
    [ -x "$ASIDE_BIN" ] || fail "no aside binary at $ASIDE_BIN"
    ASIDE_BIN=$(cd "$(dirname "$ASIDE_BIN")" && pwd)/$(basename "$ASIDE_BIN")
    export ASIDE_BIN
    local inner=()
    if netns_works; then
        export NET="network: a namespace with loopback only"
        inner=(unshare -rn sh -c 'ip link set lo up && exec "$@"' sh)
    else
        export NET="network: shared (no namespace: unshare -rn unavailable or off)"
    fi
    say "aside: $ASIDE_BIN ($("$ASIDE_BIN" --version))"
    local failed=() t0 t1 t2 times=() r s
    for a in "${hosts[@]}"; do
        t0=$SECONDS
        install_host "$a"
        t1=$SECONDS
        r=PASS
        for s in $(scenarios_of "$a"); do
            "${inner[@]}" bash "$0" --check "$a" "$s" || r=FAIL
        done
        [ $r = PASS ] || failed+=("$a")
        t2=$SECONDS
        times+=("$a: $r (install $((t1 - t0))s, check $((t2 - t1))s)")
        say "== $a: $r in $((t2 - t0))s"
    done
    say "== summary"
    printf '  %s\n' "${times[@]}"
    [ ${#failed[@]} -eq 0 ] || fail "failed: ${failed[*]}"
    say "all passed"
}

# What the scripted model plays with HOST: one check each.
scenarios_of() {
    case $1 in
        claude-tasks) echo tasks-wake tasks-stop ;;
        *) echo recipe ;;
    esac
}

if [ "${1:-}" = --check ]; then
    check_host "$2" "${3:-}"
else
    main "$@"
fi
