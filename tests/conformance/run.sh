#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) against `aside mcp`.
#
#   tests/conformance/run.sh                  # the released suite: protocol 2025-11-25
#   tests/conformance/run.sh --next           # the alpha suite: protocol 2026-07-28 and Tasks
#   tests/conformance/run.sh --aside PATH     # this binary (default: cargo build, target/debug/aside)
#   tests/conformance/run.sh --scenario NAME  # only NAME, applicable or not (repeatable)
#   --cache DIR (default ~/.cache/aside-conformance), --keep (keep results and logs)
#
# The suite speaks Streamable HTTP only and `aside mcp` speaks stdio, so supergateway bridges
# them: one `aside mcp` per MCP session on the 2025 wire, one per request on the 2026-07-28
# wire. Node 22 (the suite needs it), both suites and supergateway are installed with npm
# into a cache directory on first use. Everything runs against a temporary ASIDE_HOME with a
# daemon this script starts and stops; the bridge listens on 127.0.0.1 only.
#
# Exit status: 0 when every scenario run passed, 1 when one failed, 2 on a setup error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# Pinned: the tables in README.md and not-counted.txt were made against these.
SUITE_CURRENT=0.1.16
SUITE_NEXT=0.2.0-alpha.12
GATEWAY=4.0.0
NODE_VERSION=22.23.5

# Scenarios of the released suite that apply to what `aside mcp` declares (tools, logging).
# `conformance list --server` names the others; none of them applies:
#   completion-complete                        aside declares no completions capability
#   tools-call-simple-text, -image, -audio, -embedded-resource, -mixed-content, -error,
#   -with-logging, -with-progress, -sampling, -elicitation, json-schema-2020-12,
#   elicitation-sep1034-defaults, elicitation-sep1330-enums
#                                              each calls a fixture tool by a fixed name
#                                              (test_simple_text, test_error_handling, ...)
#                                              that only the suite's reference server has;
#                                              against aside the call only reaches its
#                                              unknown-tool path (and tools-call-simple-text
#                                              and tools-call-error pass by accident while
#                                              that path answers with an isError result)
#   server-sse-polling, server-sse-multiple-streams, dns-rebinding-protection
#                                              test the Streamable HTTP transport, which here
#                                              is supergateway's, not aside's (stdio only)
#   resources-*, prompts-*                     aside offers no resources and no prompts
CURRENT_SCENARIOS=(server-initialize ping tools-list logging-set-level)

# Scenarios of the alpha suite for protocol 2026-07-28 and the Tasks extension
# (io.modelcontextprotocol/tasks) that can judge aside. Checks inside them that cannot (a
# fixture tool, the bridge's HTTP layer, prompts/resources) are listed in not-counted.txt.
#   server-stateless        the 2026-07-28 lifecycle: server/discover, per-request _meta,
#                           removed methods answered -32601
#   tools-list              adds tool-name format and a stable order
#   caching                 ttlMs/cacheScope on tools/list (its prompts/resources checks are
#                           not counted)
#   input-required-result-unsupported-methods
#                           no input_required result on tools/list
#   tasks-capability-negotiation
#                           the extension under capabilities.extensions; tasks/* refused with
#                           -32021 to a client that did not declare it
#   tasks-dispatch-and-envelope
#                           tasks/result and tasks/list answered -32601; tasks/get of an
#                           unknown id answered -32602
# Not run (`conformance list --server`):
#   server-initialize, ping, logging-set-level, tools-call-with-logging, server-sse-polling,
#   server-session-lifecycle, resources-subscribe/-unsubscribe
#                           not part of 2026-07-28 (server-stateless checks that initialize,
#                           ping and logging/setLevel are gone)
#   tasks-lifecycle, tasks-wire-fields, tasks-request-state-removal, tasks-mrtr-input,
#   tasks-mrtr-composition, tasks-required-task-error, tasks-request-headers
#                           every check drives a fixture tool (greet, slow_compute,
#                           failing_job, protocol_error_job, confirm_delete, multi_input,
#                           test_tool_with_task) or, for one header check, the bridge; they
#                           can judge aside only if it offered those tools
#   tasks-status-notifications
#                           the suite skips it itself (its harness awaits a rewrite)
#   input-required-result-* (the rest), tools-call-*, json-schema-2020-12,
#   completion-complete     fixture tools and prompts; aside never asks the client for input
#   server-sse-multiple-streams, dns-rebinding-protection, http-header-validation,
#   http-custom-header-server-validation
#                           the HTTP transport: supergateway's
#   resources-*, prompts-*, sep-2164-resource-not-found, sep-2640-skills-*
#                           aside offers no resources, prompts or skills
NEXT_SCENARIOS=(server-stateless tools-list caching input-required-result-unsupported-methods
  tasks-capability-negotiation tasks-dispatch-and-envelope)
NEXT_PROTOCOL=2026-07-28

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

aside=""
next=0
keep=0
only=()
cache=${ASIDE_CONFORMANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aside-conformance}
while [[ $# -gt 0 ]]; do
  case $1 in
    --aside) aside=${2:?--aside needs a path}; shift 2 ;;
    --next) next=1; shift ;;
    --scenario) only+=("${2:?--scenario needs a name}"); shift 2 ;;
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "run.sh: $*" >&2; exit 2; }
started=$SECONDS

# --- the aside binary ------------------------------------------------------------------
if [[ -z $aside ]]; then
  target=${CARGO_TARGET_DIR:-$root/target}
  [[ $target = /* ]] || target=$root/$target
  echo "building aside (cargo build -p aside)" >&2
  (cd "$root" && cargo build -q -p aside) || die "cargo build failed"
  aside=$target/debug/aside
fi
[[ -x $aside ]] || die "no executable aside at $aside"
aside=$(cd "$(dirname "$aside")" && pwd)/$(basename "$aside")

# --- tools, installed once into the cache ----------------------------------------------
command -v npm >/dev/null || die "npm is needed to install the suite (apt-get install npm)"
mkdir -p "$cache"
# One installer at a time: two runs sharing the cache must not both write one directory.
exec 9>"$cache/.lock"
flock 9

# npm_install DIR SPEC: installs SPEC into $cache/DIR unless a finished install is there.
npm_install() {
  local dir=$cache/$1
  [[ -e $dir/.complete ]] && return 0
  echo "installing $2 into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$2" >&2 ||
    die "npm install $2 failed"
  touch "$dir/.complete"
}

node_is_22() { "$1" -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' 2>/dev/null; }
if command -v node >/dev/null && node_is_22 node; then
  node=$(command -v node)
else
  # The platform package ships the binary itself (no install script, no download).
  case $(uname -m) in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no Node.js package for $(uname -m)" ;;
  esac
  npm_install "node-$NODE_VERSION" "node-linux-$arch@$NODE_VERSION"
  node=$cache/node-$NODE_VERSION/node_modules/node-linux-$arch/bin/node
fi
node_is_22 "$node" || die "$node is not Node.js 22 or newer"

if ((next)); then suite_version=$SUITE_NEXT; else suite_version=$SUITE_CURRENT; fi
npm_install "conformance-$suite_version" "@modelcontextprotocol/conformance@$suite_version"
npm_install "supergateway-$GATEWAY" "supergateway@$GATEWAY"
flock -u 9
exec 9>&-
suite=$cache/conformance-$suite_version/node_modules/@modelcontextprotocol/conformance/dist/index.js
gateway=$cache/supergateway-$GATEWAY/node_modules/supergateway/dist/index.js

# --- which scenarios ---------------------------------------------------------------------
if ((${#only[@]})); then
  scenarios=("${only[@]}")
elif ((next)); then
  scenarios=("${NEXT_SCENARIOS[@]}")
else
  scenarios=("${CURRENT_SCENARIOS[@]}")
fi
# The suite's own list, "  - NAME [TAGS]": a name it does not know is an error here rather
# than a scenario it silently skips.
listing=$("$node" "$suite" list --server) || die "the suite could not list its scenarios"
declare -A tags=()
while read -r dash name tag; do
  [[ $dash = - ]] && tags[$name]=$tag
done <<<"$listing"
for s in "${scenarios[@]}"; do
  [[ -n ${tags[$s]:-} ]] || die "suite $suite_version has no server scenario '$s'"
done

# --- a private aside and the bridge --------------------------------------------------------
work=$(mktemp -d /tmp/aside-conf.XXXXXX) # short: the daemon's socket path has a length limit
mkdir -p "$work/home" "$work/results" "$work/logs"
# Every process started below carries this in its environment (the CLI hands its environment
# to the daemon and to tasks), so the last sweep finds exactly them and nothing else.
marker="aside-conformance-$$-$RANDOM$RANDOM"
run_env=(env "ASIDE_HOME=$work/home" "ASIDE_CONFORMANCE_RUN=$marker")
daemon_pid=""
gateway_pid=""
status=2

# shellcheck disable=SC2317 # called by the trap
cleanup() {
  set +e
  if [[ -n $gateway_pid ]]; then
    # On SIGTERM supergateway stops the `aside mcp` it spawned, each in its own group.
    kill -TERM "$gateway_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$gateway_pid" 2>/dev/null
  fi
  if [[ -n $daemon_pid ]]; then
    timeout 70 "${run_env[@]}" "$aside" daemon stop >/dev/null 2>&1
    kill -0 "$daemon_pid" 2>/dev/null && kill -KILL "$daemon_pid" 2>/dev/null
  fi
  local p
  for p in /proc/[0-9]*; do
    grep -qsz "^ASIDE_CONFORMANCE_RUN=$marker\$" "$p/environ" && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  if ((keep || status != 0)); then
    echo "results and logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out=$(cd "$work" && "${run_env[@]}" "$aside" daemon start) || die "aside daemon start failed"
daemon_pid=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' <<<"$out")

port=$("$node" -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
quoted_aside="'${aside//\'/\'\\\'\'}'" # supergateway runs its --stdio command with sh -c
(
  cd "$work"
  exec "${run_env[@]}" setsid "$node" --require "$here/listen-loopback.cjs" "$gateway" \
    --stdio "exec $quoted_aside mcp" --outputTransport streamableHttp --stateful \
    --port "$port" --logLevel info
) >"$work/logs/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 300); do
  kill -0 "$gateway_pid" 2>/dev/null || { tail -20 "$work/logs/gateway.log" >&2; die "supergateway exited"; }
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "supergateway did not listen on port $port"
url=http://127.0.0.1:$port/mcp

# --- the scenarios ---------------------------------------------------------------------
# 0.1.16 has no --spec-version: its client asks for 2025-11-25 in initialize.
if ((next)); then protocol=$NEXT_PROTOCOL; else protocol=2025-11-25; fi
echo "conformance $suite_version (protocol $protocol) against $("$aside" --version), through supergateway $GATEWAY"
pairs=()
for s in "${scenarios[@]}"; do
  args=(server --url "$url" --scenario "$s" -o "$work/results/$s")
  # Only for scenarios on that revision: given a version, the suite skips the others (the
  # extension scenarios among them, which are not on the spec timeline).
  if ((next)) && [[ ${tags[$s]} = *"$NEXT_PROTOCOL"* ]]; then
    args+=(--spec-version "$NEXT_PROTOCOL")
  fi
  timeout -k 5 180 "$node" "$suite" "${args[@]}" >"$work/logs/$s.log" 2>&1 || true
  pairs+=("$s=$work/results/$s")
done

set +e
"$node" "$here/summarize.mjs" "$here/not-counted.txt" "${pairs[@]}"
status=$?
set -e
echo "took $((SECONDS - started)) s" >&2
exit "$status"
