use std::path::PathBuf;

use super::*;
use crate::definitions::Tool;

fn parse_ok(text: &str) -> AgentDef {
    parse(Path::new("/agents/sample.md"), text).unwrap()
}

fn parse_err(text: &str) -> String {
    parse(Path::new("/agents/sample.md"), text)
        .unwrap_err()
        .to_string()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Tools by their wire names, so expectations read like the files they test.
fn tools(names: &[&str]) -> Vec<Tool> {
    names.iter().map(|name| name.parse().unwrap()).collect()
}

#[test]
fn claude_format_with_comma_separated_tools() {
    let def = parse_ok(
        "---\nname: code-reviewer\ndescription: Reviews code for quality.\n\
         tools: Read, Grep, Glob, Bash\nmodel: sonnet\ncolor: blue\n---\n\n\
         You are a senior code reviewer.\n\nBe thorough.\n\n",
    );
    assert_eq!(def.name, "code-reviewer");
    assert_eq!(def.description, "Reviews code for quality.");
    assert_eq!(def.tools, Some(tools(&["read", "grep", "glob", "bash"])));
    assert!(def.disallowed_tools.is_empty());
    assert_eq!(def.model, None);
    assert_eq!(def.max_turns, None);
    assert!(!def.background);
    assert_eq!(def.command, None);
    assert_eq!(
        def.prompt,
        "You are a senior code reviewer.\n\nBe thorough."
    );
    assert_eq!(def.source, Source::File(PathBuf::from("/agents/sample.md")));
}

#[test]
fn list_tools_are_mapped_and_deduplicated() {
    let def = parse_ok(
        "---\ntools:\n  - read\n  - MultiEdit\n  - Edit\n  - LS\n  - Agent\n  - BashOutput\n  \
         - KillShell\n  - TaskList\n  - task_stop\n---\nbody\n",
    );
    assert_eq!(def.name, "sample", "the name defaults to the file stem");
    assert_eq!(def.description, "", "a missing description is not an error");
    assert_eq!(
        def.tools,
        Some(tools(&[
            "read",
            "edit",
            "glob",
            "task",
            "task_output",
            "task_stop",
            "task_list"
        ]))
    );
}

#[test]
fn star_and_empty_tools() {
    assert_eq!(parse_ok("---\ntools: \"*\"\n---\n").tools, None);
    assert_eq!(parse_ok("---\ntools:\n---\n").tools, None, "empty = absent");
    assert_eq!(parse_ok("---\ntools: []\n---\n").tools, Some(vec![]));
}

#[test]
fn opencode_tool_map_and_max_steps() {
    let def = parse_ok(
        "---\ndescription: Writes docs\nmode: subagent\nmodel: anthropic/claude-sonnet-4\n\
         temperature: 0.1\nmaxSteps: 12\ntools:\n  write: false\n  bash: false\n  \
         read: true\n  webfetch: false\n---\nWrite docs.\n",
    );
    assert_eq!(def.tools, None, "the map form does not restrict");
    assert_eq!(def.disallowed_tools, tools(&["bash", "write"]));
    assert_eq!(def.max_turns, Some(12));
    assert_eq!(def.model.as_deref(), Some("anthropic/claude-sonnet-4"));
    assert!(def.allows_tool(Tool::Read));
    assert!(!def.allows_tool(Tool::Bash));
}

#[test]
fn opencode_tool_map_wildcards_apply_in_order() {
    let def = parse_ok("---\ntools:\n  \"*\": false\n  read: true\n  Grep: true\n---\n");
    assert_eq!(def.effective_tools(), tools(&["read", "grep"]));
    let def = parse_ok("---\ntools:\n  \"task_*\": false\n---\n");
    assert_eq!(
        def.disallowed_tools,
        tools(&["task_output", "task_input", "task_list", "task_stop"])
    );
}

#[test]
fn primary_mode_agents_still_load() {
    let def = parse_ok("---\nmode: primary\n---\nbody");
    assert_eq!(def.name, "sample");
}

#[test]
fn unknown_fields_are_ignored() {
    let def = parse_ok(
        "---\nname: x\ncolor: red\npermission:\n  edit: deny\nhooks: [1, 2]\n\
         skills: {a: b}\n---\nbody",
    );
    assert_eq!(def.name, "x");
    assert_eq!(def.prompt, "body");
}

#[test]
fn disallowed_tools_as_string_or_list() {
    let def = parse_ok("---\ndisallowedTools: Write, Edit, WebFetch\n---\n");
    assert_eq!(def.disallowed_tools, tools(&["write", "edit"]));
    let def = parse_ok("---\ndisallowed_tools: [Bash, KillBash]\n---\n");
    assert_eq!(def.disallowed_tools, tools(&["bash", "task_stop"]));
    assert_eq!(
        def.effective_tools(),
        tools(&[
            "read",
            "write",
            "edit",
            "glob",
            "grep",
            "task",
            "task_output",
            "task_input",
            "task_list"
        ])
    );
}

#[test]
fn unmapped_tool_names_warn_and_the_agent_loads() {
    let path = Path::new("/p/.claude/agents/web.md");
    let (def, warnings) = parse_with_warnings(
        path,
        "---\ntools: Read, WebFetch, mcp__github__search, NotebookEdit, Bash(git:*), read\n---\n",
    )
    .unwrap();
    assert_eq!(def.tools, Some(tools(&["read"])));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].path, path);
    let message = &warnings[0].message;
    for name in [
        "WebFetch",
        "mcp__github__search",
        "NotebookEdit",
        "Bash(git:*)",
    ] {
        assert!(message.contains(name), "{message}");
    }
    let (_, warnings) = parse_with_warnings(path, "---\ntools: Read\n---\n").unwrap();
    assert!(warnings.is_empty());
}

#[test]
fn model_aliases_mean_the_default_model() {
    for alias in ["inherit", "sonnet", "opus", "haiku", "Opus", "''"] {
        let def = parse_ok(&format!("---\nmodel: {alias}\n---\n"));
        assert_eq!(def.model, None, "{alias}");
    }
    let def = parse_ok("---\nmodel: qwen2.5-coder:32b\n---\n");
    assert_eq!(def.model.as_deref(), Some("qwen2.5-coder:32b"));
}

#[test]
fn max_turns_must_be_a_positive_integer() {
    assert_eq!(parse_ok("---\nmaxTurns: 5\n---\n").max_turns, Some(5));
    assert_eq!(parse_ok("---\nmax_turns: 7\n---\n").max_turns, Some(7));
    for bad in ["0", "-3", "2.5", "ten", "[1]", "99999999999"] {
        let err = parse_err(&format!("---\nmaxTurns: {bad}\n---\n"));
        assert!(
            err.contains("`maxTurns` must be a positive integer"),
            "{err}"
        );
    }
    let err = parse_err("---\nmaxSteps: 0\n---\n");
    assert!(err.contains("`maxSteps`"), "{err}");
}

#[test]
fn background_flag() {
    assert!(parse_ok("---\nbackground: true\n---\n").background);
    assert!(!parse_ok("---\nbackground: false\n---\n").background);
    let err = parse_err("---\nbackground: sometimes\n---\n");
    assert!(err.contains("`background` must be true or false"), "{err}");
}

#[test]
fn command_string_is_split_like_a_shell() {
    let def =
        parse_ok("---\ncommand: codex exec --model 'o4 mini' \"--flag=a b\" plain\n---\nunused");
    assert_eq!(
        def.command,
        Some(strings(&[
            "codex",
            "exec",
            "--model",
            "o4 mini",
            "--flag=a b",
            "plain"
        ]))
    );
    let err = parse_err("---\ncommand: \"codex 'unclosed\"\n---\n");
    assert!(err.contains("`command`"), "{err}");
}

#[test]
fn command_list() {
    let def = parse_ok("---\ncommand: [gemini, -p, \"with space\"]\n---\n");
    assert_eq!(def.command, Some(strings(&["gemini", "-p", "with space"])));
    for empty in ["[]", "\"\"", "\"   \"", "[\"\"]"] {
        let err = parse_err(&format!("---\ncommand: {empty}\n---\n"));
        assert!(err.contains("`command`"), "{empty}: {err}");
    }
    let err = parse_err("---\ncommand: [a, [b]]\n---\n");
    assert!(err.contains("`command` item 2"), "{err}");
}

#[test]
fn missing_or_unclosed_frontmatter() {
    assert!(parse_err("# Just markdown\n\nname: x\n").contains("no YAML frontmatter"));
    assert!(parse_err("").contains("no YAML frontmatter"));
    assert!(parse_err("---\nname: x\nbody").contains("no closing `---`"));
    // A byte-order mark and CRLF line endings are fine.
    let def = parse_ok("\u{feff}---\r\nname: crlf\r\n---\r\nbody\r\n");
    assert_eq!(def.name, "crlf");
    assert_eq!(def.prompt, "body");
}

#[test]
fn bad_names() {
    for bad in ["-dash", "has space", "slash/y", "ünï", &"a".repeat(65)] {
        let err = parse_err(&format!("---\nname: \"{bad}\"\n---\n"));
        assert!(err.contains("invalid agent name"), "{bad}: {err}");
    }
    assert_eq!(
        parse_ok(&format!("---\nname: {}\n---\n", "a".repeat(64)))
            .name
            .len(),
        64
    );
    assert_eq!(parse_ok("---\nname: A1.b_c-d\n---\n").name, "A1.b_c-d");
    let err = parse(Path::new("/x/my agent.md"), "---\n---\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("taken from the file name"), "{err}");
    let err = parse_err("---\nname: [a]\n---\n");
    assert!(err.contains("`name` must be a string"), "{err}");
}

#[test]
fn wrong_types_name_the_field() {
    let err = parse_err("---\ntools: 5\n---\n");
    assert!(err.contains("`tools`"), "{err}");
    let err = parse_err("---\ntools: [Read, {a: b}]\n---\n");
    assert!(err.contains("`tools` item 2"), "{err}");
    let err = parse_err("---\ntools:\n  write: nope\n---\n");
    assert!(err.contains("`tools.write` must be true or false"), "{err}");
    let err = parse_err("---\ndescription: [a]\n---\n");
    assert!(err.contains("`description`"), "{err}");
    let err = parse_err("---\n- a\n- b\n---\n");
    assert!(err.contains("must be a mapping"), "{err}");
}

#[test]
fn bad_yaml_reports_the_file_line() {
    let err = parse_err("---\nname: x\ntools: [Read\n---\n");
    assert!(err.contains("invalid YAML"), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn claude_style_descriptions_with_colons_load() {
    // As Claude Code's own agent generator writes them: not valid YAML, loaded anyway.
    let def = parse_ok(
        "---\nname: reviewer\ndescription: Use this agent after writing code. Examples:\\n\
         <example>Context: the user wrote code. user: \"review it\" assistant: \"on it\"\
         </example>\ntools: Read, Grep\nbackground: true\n---\nReview.\n",
    );
    assert!(def.description.starts_with("Use this agent"));
    assert!(def.description.contains("user: \"review it\""));
    assert_eq!(def.tools, Some(tools(&["read", "grep"])));
    assert!(def.background, "other fields keep their types");
}
