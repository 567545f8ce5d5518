use super::*;

fn wildcard_match(pattern: &str, name: &str) -> bool {
    wildcard(pattern).is_some_and(|matcher| matcher.is_match(name))
}

#[test]
fn wildcards() {
    assert!(wildcard_match("*", "bash"));
    assert!(wildcard_match("task_*", "task_list"));
    assert!(!wildcard_match("task_*", "task"));
    assert!(wildcard_match("*a*t*", "task_output"));
    assert!(wildcard_match("gr?p", "grep"));
    assert!(!wildcard_match("gr?p", "grepp"));
}

#[test]
fn only_star_and_question_mark_are_wildcards() {
    assert!(wildcard_match("task**", "task_list"));
    assert!(!wildcard_match("{bash,read}", "bash"));
    assert!(!wildcard_match("[bt]ash", "bash"));
    assert!(wildcard_match("[bt]as?", "[bt]ash"));
}

#[test]
fn host_tool_names() {
    assert_eq!(gemini_tool("run_shell_command"), Some(&[Tool::Bash][..]));
    assert_eq!(
        gemini_tool("Replace"),
        Some(&[Tool::Edit][..]),
        "case is ignored"
    );
    assert_eq!(
        gemini_tool("task_output"),
        Some(&[Tool::TaskOutput][..]),
        "aside's own"
    );
    assert_eq!(gemini_tool("Bash"), Some(&[Tool::Bash][..]));
    assert_eq!(gemini_tool("web_fetch"), None);
    assert_eq!(
        gemini_tool("MultiEdit"),
        None,
        "Claude's names are not Gemini's"
    );
    assert_eq!(
        codex_tool("apply_patch"),
        Some(&[Tool::Edit, Tool::Write][..])
    );
    assert_eq!(codex_tool("shell"), Some(&[Tool::Bash][..]));
    assert_eq!(
        codex_tool("run_shell_command"),
        None,
        "Gemini's names are not Codex's"
    );
}

#[test]
fn host_names_are_deduplicated_and_unknown_ones_recorded_once() {
    let names: Vec<String> = [
        "apply_patch",
        "write_file",
        "write",
        "nope",
        "shell",
        "nope",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    let mut unknown = Vec::new();
    let tools = map_host_tools(&names, codex_tool, &mut unknown);
    assert_eq!(tools, [Tool::Edit, Tool::Write, Tool::Bash]);
    assert_eq!(unknown, ["write_file", "nope"]);
}
