# shellcheck shell=bash disable=SC2034  # sourced by run.sh, which uses what this sets
# What each host needs for the checks in run.sh: its npm package (the version checked), its
# wire, and its setup: the model pointed at the scripted server, telemetry and updates off,
# and aside registered with exactly what `aside mcp --print-config HOST` prints.
#
# Sourced by run.sh. A setup function runs in the scratch directory's environment ($H is the
# host's HOME, $P the project, $MODEL_URL the scripted server, $SNIPPET the printed config)
# and fills HOST_ENV (extra variables) and HOST_CMD (the headless command after the binary;
# for claude-tasks, the interactive one).

HOSTS=(opencode codex gemini claude)
# Claude Code's interactive CLI under a pty, following aside's tasks by MCP Tasks (run.sh
# drives it with interactive.sh): it needs tmux, so it is not one of `all`.
EXTRA_HOSTS=(claude-tasks)

host_package() {
    case $1 in
        opencode) echo opencode-ai@1.18.33 ;;
        codex) echo @openai/codex@0.169.0 ;;
        gemini) echo @google/gemini-cli@0.61.0 ;;
        claude) echo @anthropic-ai/claude-code@2.1.197 ;;
        claude-tasks) echo @anthropic-ai/claude-code@2.1.332 ;;
        *) return 1 ;;
    esac
}

host_wire() {
    case $1 in
        opencode) echo openai-chat ;;
        codex) echo responses ;;
        gemini) echo gemini ;;
        claude | claude-tasks) echo anthropic ;;
    esac
}

# The command npm installs for HOST, which is also its recipe in `aside mcp --print-config`.
host_bin() {
    case $1 in
        claude-tasks) echo claude ;;
        *) echo "$1" ;;
    esac
}

PROMPT="Start a background task that writes the marker, then run a foreground command."

# opencode: an OpenAI-compatible provider in the user's config, the snippet as the project's
# opencode.json.
setup_opencode() {
    mkdir -p "$H/.config/opencode"
    cat > "$H/.config/opencode/opencode.json" <<EOF
{
  "provider": {
    "scripted": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "scripted",
      "options": {"baseURL": "$MODEL_URL/v1", "apiKey": "scripted"},
      "models": {"scripted": {"name": "scripted"}}
    }
  },
  "model": "scripted/scripted",
  "small_model": "scripted/scripted",
  "autoupdate": false,
  "share": "disabled"
}
EOF
    # opencode installs @opencode-ai/plugin from npm into each config directory at start
    # unless a lock file already lists it; this one says it is there.
    mkdir -p "$H/.config/opencode/node_modules"
    echo '{"dependencies": {"@opencode-ai/plugin": "*"}}' > "$H/.config/opencode/package.json"
    echo '{"lockfileVersion": 3, "packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}}}' \
        > "$H/.config/opencode/package-lock.json"
    printf '%s\n' "$SNIPPET" > "$P/opencode.json"
    HOST_ENV=(OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_MODELS_FETCH=1
        OPENCODE_DISABLE_SHARE=1 OPENCODE_DISABLE_LSP_DOWNLOAD=1
        OPENCODE_DISABLE_DEFAULT_PLUGINS=1)
    HOST_CMD=(run "$PROMPT")
}

# Codex: a custom provider (Codex takes only the Responses wire for those), plugins, apps and
# analytics off, and the snippet appended to config.toml.
setup_codex() {
    mkdir -p "$H/.codex"
    cat > "$H/.codex/config.toml" <<EOF
model = "scripted"
model_provider = "scripted"
check_for_update_on_startup = false

[model_providers.scripted]
name = "scripted"
base_url = "$MODEL_URL/v1"
wire_api = "responses"

[analytics]
enabled = false

[features]
plugins = false
apps = false

EOF
    printf '%s\n' "$SNIPPET" >> "$H/.codex/config.toml"
    HOST_ENV=(CODEX_HOME="$H/.codex")
    HOST_CMD=(exec "$PROMPT")
}

# Gemini CLI: an API key (any) with the base URL overridden, the project folder trusted,
# usage statistics and updates off, and the snippet as the project's .gemini/settings.json.
setup_gemini() {
    mkdir -p "$H/.gemini" "$P/.gemini"
    cat > "$H/.gemini/settings.json" <<EOF
{
  "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": true}},
  "privacy": {"usageStatisticsEnabled": false},
  "telemetry": {"enabled": false},
  "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false}
}
EOF
    printf '{"%s": "TRUST_FOLDER"}\n' "$P" > "$H/.gemini/trustedFolders.json"
    printf '%s\n' "$SNIPPET" > "$P/.gemini/settings.json"
    HOST_ENV=(GEMINI_API_KEY=scripted GOOGLE_GEMINI_BASE_URL="$MODEL_URL")
    HOST_CMD=(-p "$PROMPT")
}

# Claude Code: ANTHROPIC_BASE_URL and a key (any), nonessential traffic off, the snippet's
# command run in the project, and its note's --allowedTools on the headless command.
setup_claude() {
    HOST_ENV=(ANTHROPIC_BASE_URL="$MODEL_URL" ANTHROPIC_API_KEY=scripted
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1
        DISABLE_ERROR_REPORTING=1)
    claude_register
    HOST_CMD=(--allowedTools mcp__aside -p "$PROMPT")
}

# Runs the snippet's `claude mcp add ...` in the project.
claude_register() {
    local line words
    while IFS= read -r line; do
        case $line in
            '#'* | '') ;;
            claude\ *)
                read -ra words <<< "$line"
                (cd "$P" && host_env "${words[@]:1}" > "$RUN/claude-mcp-add.txt" 2>&1) ||
                    fail "the snippet's command failed: $line ($(cat "$RUN/claude-mcp-add.txt"))" ;;
            *) fail "unexpected line in the claude snippet: $line" ;;
        esac
    done <<< "$SNIPPET"
    grep -q -- '--allowedTools mcp__aside' <<< "$SNIPPET" ||
        fail "the claude snippet does not say --allowedTools mcp__aside"
}

# Claude Code's interactive CLI: as above, plus what its first start would ask in dialogs
# (onboarding done, the key approved, the project trusted), all tools in every request
# (ENABLE_TOOL_SEARCH=false: otherwise MCP tools are deferred behind a ToolSearch call) and
# the official plugin marketplace not installed from GitHub at start.
setup_claude-tasks() {
    local key=scripted-key-for-the-host-checks version
    version=$(host_package claude-tasks)
    HOST_ENV=(ANTHROPIC_BASE_URL="$MODEL_URL" ANTHROPIC_API_KEY="$key" TERM=xterm-256color
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1
        DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL=1
        ENABLE_TOOL_SEARCH=false)
    # Claude Code approves a key by its last 20 characters.
    cat > "$H/.claude.json" <<EOF
{
  "hasCompletedOnboarding": true,
  "lastOnboardingVersion": "${version##*@}",
  "theme": "dark",
  "customApiKeyResponses": {"approved": ["${key: -20}"], "rejected": []},
  "projects": {"$P": {"hasTrustDialogAccepted": true}}
}
EOF
    claude_register
    HOST_CMD=(--allowedTools mcp__aside)
}
