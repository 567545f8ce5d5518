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
    /// The snippet that registers `aside mcp` with this client.
    pub fn snippet(self) -> &'static str {
        match self {
            HostClient::Claude => "claude mcp add aside -- aside mcp",
            HostClient::Codex => "[mcp_servers.aside]\ncommand = \"aside\"\nargs = [\"mcp\"]",
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
            HostClient::Cursor | HostClient::Gemini => {
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
}
