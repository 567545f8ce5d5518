use std::path::PathBuf;

use super::*;

const PATH: &str = "/p/.codex/agents/sample.toml";

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
fn the_documented_example_loads_and_warns_of_reasoning_effort() {
    let (def, warnings) = load(
        "name = \"scaffolder\"\n\
         description = \"Fast implementation agent for boilerplate.\"\n\
         model = \"gpt-5.4-mini\"\n\
         model_reasoning_effort = \"medium\"\n\n\
         developer_instructions = \"\"\"\n\
         Implement scoped, straightforward tasks quickly.\n\
         Keep changes small.\n\
         \"\"\"\n",
    );
    assert_eq!(def.name, "scaffolder");
    assert_eq!(
        def.description,
        "Fast implementation agent for boilerplate."
    );
    assert_eq!(def.model.as_deref(), Some("gpt-5.4-mini"));
    assert_eq!(
        def.prompt,
        "Implement scoped, straightforward tasks quickly.\nKeep changes small."
    );
    assert_eq!(def.tools, None);
    assert!(def.disallowed_tools.is_empty());
    assert_eq!(def.max_turns, None);
    assert!(!def.background);
    assert_eq!(def.command, None);
    assert_eq!(def.source, Source::File(PathBuf::from(PATH)));
    assert_eq!(
        warnings,
        ["agent \"scaffolder\": ignoring `model_reasoning_effort`, which aside does not honour"]
    );
}

#[test]
fn a_read_only_sandbox_leaves_only_the_tools_that_change_nothing() {
    let (def, warnings) =
        load("sandbox_mode = \"read-only\"\ndeveloper_instructions = \"Look.\"\n");
    assert_eq!(
        def.effective_tools(),
        tools(&["read", "glob", "grep", "task_output", "task_list"])
    );
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn a_workspace_write_sandbox_is_warned_about_and_full_access_is_not() {
    let (def, warnings) = load("name = \"w\"\nsandbox_mode = \"workspace-write\"\n");
    assert_eq!(def.effective_tools(), Tool::ALL);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("not enforcing `sandbox_mode = \"workspace-write\"`"),
        "{warnings:?}"
    );
    let (def, warnings) = load("sandbox_mode = \"danger-full-access\"\n");
    assert_eq!(def.effective_tools(), Tool::ALL);
    assert!(warnings.is_empty(), "{warnings:?}");
    let err = refused("sandbox_mode = \"locked\"\n");
    assert!(
        err.contains("`sandbox_mode` must be \"read-only\", \"workspace-write\" or \"danger-full-access\", got \"locked\""),
        "{err}"
    );
}

#[test]
fn a_tools_list_is_read_in_codex_tool_names() {
    let (def, warnings) = load(
        "name = \"t\"\ntools = [\"shell\", \"apply_patch\", \"read_file\", \"list_dir\", \
         \"grep_files\", \"spawn_agent\", \"web_search\", \"view_image\"]\n",
    );
    assert_eq!(
        def.tools,
        Some(tools(&[
            "bash", "edit", "write", "read", "glob", "grep", "task"
        ]))
    );
    assert_eq!(
        warnings,
        ["agent \"t\": ignoring tools aside does not have: web_search, view_image"]
    );
    let (def, _) = load("tools = \"exec_command, read_file\"\n");
    assert_eq!(def.tools, Some(tools(&["bash", "read"])));
}

#[test]
fn codex_tools_table_is_a_field_aside_does_not_honour() {
    let (def, warnings) = load("name = \"t\"\n[tools]\nweb_search = true\nview_image = false\n");
    assert_eq!(def.tools, None);
    assert_eq!(
        warnings,
        ["agent \"t\": ignoring `tools`, which aside does not honour"]
    );
}

#[test]
fn instructions_come_before_developer_instructions() {
    let (def, _) =
        load("developer_instructions = \"  Then this.  \"\ninstructions = \"First this.\"\n");
    assert_eq!(def.prompt, "First this.\n\nThen this.");
    let (def, _) = load("instructions = \"Only this.\"\n");
    assert_eq!(def.prompt, "Only this.");
    let (def, _) = load("name = \"bare\"\n");
    assert_eq!(def.prompt, "", "the session's default prompt then applies");
}

#[test]
fn every_other_key_is_warned_about_once_in_file_order() {
    let (def, warnings) = load(
        "nickname_candidates = [\"Atlas\", \"Delta\"]\napproval_policy = \"never\"\n\
         description = \"d\"\n[mcp_servers.docs]\ncommand = \"node\"\n\
         [mcp_servers.other]\nurl = \"http://127.0.0.1:9\"\n",
    );
    assert_eq!(def.name, "sample", "the name defaults to the file stem");
    assert_eq!(def.description, "d");
    let fields: Vec<&str> = warnings
        .iter()
        .map(|w| w.split('`').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        ["nickname_candidates", "approval_policy", "mcp_servers"],
        "{warnings:?}"
    );
}

#[test]
fn bad_files_say_what_and_where() {
    let err = refused("name = \"x\"\ndescription = \"unclosed\n");
    assert!(err.starts_with("invalid TOML: line 2, column "), "{err}");
    let err = refused("\u{feff}name = [\"x\"]\n");
    assert!(err.contains("`name` must be a string"), "{err}");
    let err = refused("name = \"bad name\"\n");
    assert!(err.contains("invalid agent name \"bad name\""), "{err}");
    let err = refused("developer_instructions = [\"a\"]\n");
    assert!(
        err.contains("`developer_instructions` must be a string"),
        "{err}"
    );
}
