use std::path::PathBuf;

use super::*;
use crate::definitions::Tool;

const PATH: &str = "/p/.gemini/agents/sample.md";

fn load(text: &str) -> (AgentDef, Vec<String>) {
    let (def, warnings) = parse(Path::new(PATH), text).unwrap();
    for warning in &warnings {
        assert_eq!(warning.path, PathBuf::from(PATH));
    }
    (def, warnings.into_iter().map(|w| w.message).collect())
}

fn refused(text: &str) -> String {
    parse(Path::new(PATH), text).unwrap_err().to_string()
}

/// Tools by their wire names, so expectations read like the files they test.
fn tools(names: &[&str]) -> Vec<Tool> {
    names.iter().map(|name| name.parse().unwrap()).collect()
}

#[test]
fn the_documented_example_loads_and_warns_of_temperature() {
    let (def, warnings) = load(
        "---\nname: security-auditor\ndescription: Specialized in finding security \
         vulnerabilities in code.\nkind: local\ntools:\n  - read_file\n  - grep_search\n\
         model: gemini-3-flash-preview\ntemperature: 0.2\nmax_turns: 10\n---\n\n\
         You are a ruthless Security Auditor.\n\nFocus on SQL injection.\n",
    );
    assert_eq!(def.name, "security-auditor");
    assert_eq!(
        def.description,
        "Specialized in finding security vulnerabilities in code."
    );
    assert_eq!(def.tools, Some(tools(&["read", "grep"])));
    assert!(def.disallowed_tools.is_empty());
    assert_eq!(def.model.as_deref(), Some("gemini-3-flash-preview"));
    assert_eq!(def.max_turns, Some(10));
    assert_eq!(
        def.prompt,
        "You are a ruthless Security Auditor.\n\nFocus on SQL injection."
    );
    assert_eq!(def.source, Source::File(PathBuf::from(PATH)));
    assert_eq!(
        warnings,
        ["agent \"security-auditor\": ignoring `temperature`, which aside does not honour"]
    );
}

#[test]
fn every_gemini_tool_name_maps_and_unknown_ones_are_named() {
    let (def, warnings) = load(
        "---\nname: all\ntools: [run_shell_command, read_file, read_many_files, write_file, \
         replace, glob, list_directory, grep_search, search_file_content, web_fetch, \
         google_web_search, \"mcp_*\", web_fetch]\n---\n",
    );
    assert_eq!(
        def.tools,
        Some(tools(&["bash", "read", "write", "edit", "glob", "grep"]))
    );
    assert_eq!(
        warnings,
        ["agent \"all\": ignoring tools aside does not have: web_fetch, google_web_search, mcp_*"]
    );
}

#[test]
fn star_is_every_tool_and_an_empty_list_is_none() {
    let (def, warnings) = load("---\ntools: [\"*\", \"mcp_*\"]\n---\n");
    assert_eq!(def.tools, None);
    assert!(warnings.is_empty(), "{warnings:?}");
    let (def, _) = load("---\ntools: []\n---\n");
    assert_eq!(def.tools, Some(vec![]));
    let (def, _) = load("---\ndescription: no list\n---\n");
    assert_eq!(
        def.tools, None,
        "no list inherits every tool, as in Gemini CLI"
    );
}

#[test]
fn each_field_aside_does_not_honour_is_warned_about_in_file_order() {
    let (def, warnings) = load(
        "---\nname: helper\ndisplay_name: Helper\ntimeout_mins: 5\nmodel: inherit\n\
         mcp_servers:\n  docs:\n    command: node\ncolor: blue\nempty:\n---\nHelp.\n",
    );
    assert_eq!(def.model, None, "`inherit` is the configured model");
    let fields: Vec<&str> = warnings
        .iter()
        .map(|w| w.split('`').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        ["display_name", "timeout_mins", "mcp_servers", "color"],
        "{warnings:?}"
    );
    assert!(warnings
        .iter()
        .all(|w| w.starts_with("agent \"helper\": ignoring `")));
}

#[test]
fn claude_fields_are_not_honoured_in_a_gemini_file() {
    let (def, warnings) = load(
        "---\nname: runner\nbackground: true\ncommand: rm -rf /\nmaxTurns: 3\n\
         disallowedTools: Bash\n---\n",
    );
    assert!(!def.background);
    assert_eq!(def.command, None);
    assert_eq!(def.max_turns, None);
    assert!(def.disallowed_tools.is_empty());
    assert_eq!(warnings.len(), 4, "{warnings:?}");
}

#[test]
fn remote_agents_are_refused() {
    let remote = "a remote (Agent2Agent) agent";
    assert!(refused(
        "---\nname: far\nkind: remote\nagent_card_url: https://example.com/card\n---\n"
    )
    .contains(remote));
    assert!(
        refused("---\nname: far\nagent_card_url: https://example.com/card\n---\n").contains(remote)
    );
    assert!(
        refused("---\n- name: a\n  agent_card_url: https://example.com/a\n---\n").contains(remote)
    );
    let err = refused("---\nkind: sideways\n---\n");
    assert!(
        err.contains("`kind` must be \"local\" or \"remote\""),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_field() {
    let err = refused("---\nmax_turns: 0\n---\n");
    assert!(
        err.contains("`max_turns` must be a positive integer"),
        "{err}"
    );
    let err = refused("---\ntools: {read_file: true}\n---\n");
    assert!(err.contains("`tools`"), "{err}");
    let err = refused("---\nname: bad name\n---\n");
    assert!(err.contains("invalid agent name"), "{err}");
    assert!(refused("no frontmatter").contains("no YAML frontmatter"));
}
