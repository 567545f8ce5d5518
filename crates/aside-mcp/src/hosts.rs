//! The snippets `aside mcp --print-config` prints: how each coding agent registers aside.

/// The coding agents `aside mcp --print-config` has a snippet for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostClient {
    Claude,
    Codex,
    Opencode,
    Cursor,
    Gemini,
}

#[derive(Debug, thiserror::Error)]
#[error("no snippet for {0:?}; choose claude, codex, opencode, cursor or gemini")]
pub struct UnknownClient(pub String);

impl std::str::FromStr for HostClient {
    type Err = UnknownClient;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "claude" | "claude-code" => HostClient::Claude,
            "codex" => HostClient::Codex,
            "opencode" => HostClient::Opencode,
            "cursor" => HostClient::Cursor,
            "gemini" | "gemini-cli" => HostClient::Gemini,
            other => return Err(UnknownClient(other.to_string())),
        })
    }
}

impl HostClient {
    /// The snippet that registers `aside mcp` with this client, with what each client needs
    /// besides to run aside's tools headless (checked by tests/hosts/run.sh).
    pub fn snippet(self) -> &'static str {
        match self {
            HostClient::Claude => {
                r#"claude mcp add aside -- aside mcp
# claude -p asks no one: allow aside's tools with claude --allowedTools mcp__aside -p PROMPT"#
            }
            HostClient::Codex => {
                r#"[mcp_servers.aside]
command = "aside"
args = ["mcp"]
# Codex passes MCP servers only a few variables (HOME, PATH, ...): add those aside needs.
env_vars = ["ASIDE_HOME"]
# Run aside's tools without asking each time (codex exec refuses them otherwise).
default_tools_approval_mode = "approve""#
            }
            HostClient::Opencode => {
                r#"{
  "$schema": "https://opencode.ai/config.json",
  "mcp": {
    "aside": {
      "command": [
        "aside",
        "mcp"
      ],
      "enabled": true,
      "type": "local"
    }
  }
}"#
            }
            HostClient::Cursor => {
                r#"{
  "mcpServers": {
    "aside": {
      "args": [
        "mcp"
      ],
      "command": "aside"
    }
  }
}"#
            }
            // Without "trust", Gemini CLI asks before each call, and in headless mode, with
            // no one to ask, it drops the server's tools without a word.
            HostClient::Gemini => {
                r#"{
  "mcpServers": {
    "aside": {
      "args": [
        "mcp"
      ],
      "command": "aside",
      "trust": true
    }
  }
}"#
            }
        }
    }

    /// Where the snippet goes.
    pub fn place(self) -> &'static str {
        match self {
            HostClient::Opencode => "opencode.json (project) or ~/.config/opencode/opencode.json",
            HostClient::Cursor => ".cursor/mcp.json (project) or ~/.cursor/mcp.json",
            HostClient::Gemini => ".gemini/settings.json (project) or ~/.gemini/settings.json",
            HostClient::Codex => "~/.codex/config.toml",
            HostClient::Claude => "a shell",
        }
    }

    /// What else the client needs that no snippet can say, if anything.
    pub fn note(self) -> Option<&'static str> {
        match self {
            HostClient::Gemini => Some(
                "Gemini CLI works only in a trusted folder (gemini -p exits with 55 elsewhere): \
                 trust it when asked, or add it to ~/.gemini/trustedFolders.json",
            ),
            _ => None,
        }
    }
}
