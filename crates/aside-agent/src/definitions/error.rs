//! What can be wrong with a definition file. The `Display` text is the message of the
//! [`Warning`](super::Warning) that names the file, so it says what to fix.

use std::fmt;
use std::io;
use std::str::Utf8Error;

use serde_yaml_ng::Value;

/// What a valid agent name is.
const NAME_RULE: &str =
    "a name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/// Why a definition file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("cannot read the file: {0}")]
    Read(#[source] io::Error),
    #[error("the file is not valid UTF-8")]
    NotUtf8(#[source] Utf8Error),
    #[error(
        "no YAML frontmatter: an agent file must start with a `---` line, then the fields, then \
         another `---` line"
    )]
    NoFrontmatter,
    #[error("the frontmatter has no closing `---` line")]
    UnclosedFrontmatter,
    #[error("invalid YAML in the frontmatter: {0}")]
    Yaml(#[source] serde_yaml_ng::Error),
    #[error("the frontmatter must be a mapping of fields, not {found}")]
    NotAMapping { found: Found },
    /// A Codex agent file that does not parse; the text says where and why.
    #[error("invalid TOML: {0}")]
    Toml(String),
    /// Gemini CLI's `kind: remote`: an agent reached over the Agent2Agent protocol.
    #[error("a remote (Agent2Agent) agent: aside runs only agents it can run itself")]
    RemoteAgent,
    #[error("invalid agent name {name:?}: {}", NAME_RULE)]
    BadName { name: String },
    #[error(
        "invalid agent name {name:?} (taken from the file name; set `name` in the file): {}",
        NAME_RULE
    )]
    BadFileName { name: String },
    #[error("the file name is not valid UTF-8; set `name` in the file")]
    FileNameNotUtf8,
    /// `key` is the spelling the file used (`maxTurns`, `maxSteps`, ...), or `tools.NAME` for
    /// one entry of opencode's tool map.
    #[error("`{key}` {problem}")]
    Field {
        key: String,
        #[source]
        problem: FieldError,
    },
}

/// What is wrong with one field's value. [`DefinitionError::Field`] adds the field's name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    #[error("must be a string, got {0}")]
    NotText(Found),
    #[error("must be a positive integer, got {0}")]
    NotPositiveInteger(Found),
    #[error("must be true or false, got {0}")]
    NotBool(Found),
    /// A setting with a fixed set of values; `expected` lists them.
    #[error("must be {expected}, got {found}")]
    NotOneOf {
        expected: &'static str,
        found: Found,
    },
    #[error("must be a comma-separated string or a list of tool names, got {0}")]
    NotToolNames(Found),
    #[error("item {index} must be a tool name, got {found}")]
    NotToolName { index: usize, found: Found },
    #[error("keys must be tool names, got {0}")]
    NotToolKey(Found),
    /// One entry of opencode's tool map (`tools: {write: nope}`), reported as `tools.write`.
    #[error("`{tool}` {problem}")]
    ToolEntry {
        tool: String,
        problem: Box<FieldError>,
    },
    #[error("must be a command line string or a list of arguments, got {0}")]
    NotCommand(Found),
    #[error("item {index} must be a string, got {found}")]
    NotArgument { index: usize, found: Found },
    #[error("has an unclosed quote or a trailing backslash")]
    UnclosedQuote,
    #[error("is empty")]
    EmptyCommand,
    #[error("has an empty program name")]
    EmptyProgram,
}

impl FieldError {
    /// This problem as the error of the field spelled `key`.
    pub(super) fn at(self, key: &str) -> DefinitionError {
        match self {
            FieldError::ToolEntry { tool, problem } => problem.at(&format!("{key}.{tool}")),
            problem => DefinitionError::Field {
                key: key.to_string(),
                problem,
            },
        }
    }
}

/// A YAML value that was not what a field needs, shown in messages as written (scalars) or by
/// kind (containers).
#[derive(Debug, Clone, PartialEq)]
pub struct Found(pub Value);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Value::Null => f.write_str("nothing"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Sequence(_) => f.write_str("a list"),
            Value::Mapping(_) => f.write_str("a mapping"),
            Value::Tagged(tagged) => write!(f, "a value tagged {}", tagged.tag),
        }
    }
}
