use super::*;
use crate::definitions::{Source, Tool};

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(file);
    fs::write(&path, text).unwrap();
    path
}

/// Tools by their wire names, so expectations read like the files they test.
fn tools(names: &[&str]) -> Vec<Tool> {
    names.iter().map(|name| name.parse().unwrap()).collect()
}

#[test]
fn builtins_are_general_and_explore() {
    let catalog = discover(&Roots::default());
    let names: Vec<_> = catalog.agents().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["explore", "general"]);
    let general = catalog.get("general").unwrap();
    assert_eq!(general.tools, None);
    assert_eq!(general.source, Source::Builtin);
    assert!(!general.prompt.is_empty());
    let explore = catalog.get("explore").unwrap();
    assert_eq!(
        explore.effective_tools(),
        tools(&["read", "glob", "grep", "task_output", "task_list"])
    );
    assert!(explore.prompt.contains("cannot modify"));
    assert!(catalog.warnings().is_empty());
}

#[test]
fn project_overrides_user_overrides_builtin() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let config = tmp.path().join("config");
    let project = tmp.path().join("project");
    write(
        &home.join(".claude/agents"),
        "general.md",
        "---\ndescription: user general\n---\nuser",
    );
    write(
        &home.join(".claude/agents"),
        "helper.md",
        "---\ndescription: user helper\n---\nuser",
    );
    write(
        &config.join("aside/agents"),
        "helper.md",
        "---\ndescription: aside helper\n---\nuser",
    );
    write(
        &config.join("opencode/agent"),
        "oc.md",
        "---\ndescription: opencode\n---\n",
    );
    write(
        &project.join(".claude/agents"),
        "helper.md",
        "---\ndescription: claude project helper\n---\n",
    );
    let winner = write(
        &project.join(".aside/agents"),
        "helper2.md",
        "---\nname: helper\ndescription: aside project helper\n---\n",
    );
    write(
        &project.join(".opencode/agents"),
        "explore.md",
        "---\ndescription: project explore\n---\n",
    );
    // Not agents: wrong extension, hidden, in a subdirectory.
    write(&project.join(".aside/agents"), "notes.txt", "---\n---\n");
    write(&project.join(".aside/agents"), ".#helper.md", "junk");
    write(&project.join(".aside/agents/sub"), "deep.md", "---\n---\n");

    let catalog = discover(&Roots {
        project: Some(project),
        user_home: Some(home),
        user_config: Some(config),
        ..Roots::default()
    });
    assert!(catalog.warnings().is_empty(), "{:?}", catalog.warnings());
    let names: Vec<_> = catalog.agents().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["explore", "general", "helper", "oc"]);
    assert_eq!(catalog.get("general").unwrap().description, "user general");
    assert_eq!(
        catalog.get("explore").unwrap().description,
        "project explore"
    );
    let helper = catalog.get("helper").unwrap();
    assert_eq!(helper.description, "aside project helper");
    assert_eq!(helper.source, Source::File(winner));
}

#[test]
fn broken_file_warns_with_its_path_and_siblings_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".claude/agents");
    let broken = write(&dir, "a-broken.md", "---\nname: [unclosed\n---\nbody");
    let plain = write(&dir, "b-plain.md", "just a prompt, no frontmatter");
    let bad_turns = write(&dir, "c-turns.md", "---\nmaxTurns: -1\n---\n");
    let binary = dir.join("d-binary.md");
    fs::write(&binary, [b'-', b'-', b'-', b'\n', 0xff, 0xfe]).unwrap();
    write(&dir, "e-good.md", "---\ndescription: fine\n---\nok");

    let catalog = discover(&Roots {
        project: Some(tmp.path().to_path_buf()),
        ..Roots::default()
    });
    assert_eq!(catalog.get("e-good").unwrap().description, "fine");
    let warned: Vec<_> = catalog.warnings().iter().map(|w| w.path.clone()).collect();
    assert_eq!(warned, [broken, plain, bad_turns, binary]);
    let messages: Vec<_> = catalog
        .warnings()
        .iter()
        .map(|w| w.message.as_str())
        .collect();
    assert!(messages[0].contains("invalid YAML"), "{}", messages[0]);
    assert!(
        messages[1].contains("no YAML frontmatter"),
        "{}",
        messages[1]
    );
    assert!(messages[2].contains("maxTurns"), "{}", messages[2]);
    assert!(messages[3].contains("UTF-8"), "{}", messages[3]);
    for name in ["a-broken", "b-plain", "c-turns", "d-binary"] {
        assert!(catalog.get(name).is_none(), "{name}");
    }
}

#[test]
fn a_broken_override_keeps_the_earlier_definition() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let project = tmp.path().join("project");
    write(
        &home.join(".claude/agents"),
        "helper.md",
        "---\ndescription: user\n---\n",
    );
    write(
        &project.join(".claude/agents"),
        "helper.md",
        "---\ndescription: project\nbackground: maybe\n---\n",
    );
    let catalog = discover(&Roots {
        project: Some(project),
        user_home: Some(home),
        ..Roots::default()
    });
    assert_eq!(catalog.get("helper").unwrap().description, "user");
    assert_eq!(catalog.warnings().len(), 1);
}

#[test]
fn catalog_serializes_as_documented() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        &tmp.path().join(".aside/agents"),
        "x.md",
        "---\ntools: Read, WebSearch\n---\nhi",
    );
    let catalog = discover(&Roots {
        project: Some(tmp.path().to_path_buf()),
        ..Roots::default()
    });
    let json = serde_json::to_value(&catalog).unwrap();
    let agents = json["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    assert_eq!(agents[0]["name"], "explore");
    assert_eq!(agents[0]["source"], "builtin");
    assert_eq!(agents[2]["source"]["file"], path.to_string_lossy().as_ref());
    assert_eq!(agents[2]["tools"], serde_json::json!(["read"]));
    assert_eq!(json["warnings"][0]["path"], path.to_string_lossy().as_ref());
}

#[test]
fn search_dirs_order() {
    let roots = Roots {
        project: Some(PathBuf::from("/p")),
        user_home: Some(PathBuf::from("/h")),
        user_config: Some(PathBuf::from("/c")),
        gemini_home: Some(PathBuf::from("/g")),
        codex_home: Some(PathBuf::from("/x")),
    };
    let dirs: Vec<_> = search_dirs(&roots)
        .into_iter()
        .map(|(d, format)| (d.to_string_lossy().into_owned(), format))
        .collect();
    let claude = Format::Claude;
    assert_eq!(
        dirs,
        [
            ("/g/.gemini/agents".to_string(), Format::Gemini),
            ("/x/agents".to_string(), Format::Codex),
            ("/h/.claude/agents".to_string(), claude),
            ("/c/opencode/agent".to_string(), claude),
            ("/c/opencode/agents".to_string(), claude),
            ("/c/aside/agents".to_string(), claude),
            ("/p/.gemini/agents".to_string(), Format::Gemini),
            ("/p/.codex/agents".to_string(), Format::Codex),
            ("/p/.claude/agents".to_string(), claude),
            ("/p/.opencode/agent".to_string(), claude),
            ("/p/.opencode/agents".to_string(), claude),
            ("/p/.aside/agents".to_string(), claude),
        ]
    );
}

#[test]
fn gemini_and_codex_agents_load_from_project_and_user_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let gemini_home = tmp.path().join("gemini-home");
    let codex_home = tmp.path().join("codex-home");
    let project = tmp.path().join("project");
    let user_gemini = write(
        &gemini_home.join(".gemini/agents"),
        "mine.md",
        "---\nname: mine\ndescription: user gemini\ntools: [read_file]\n---\nMine.",
    );
    write(
        &codex_home.join("agents"),
        "shared.toml",
        "name = \"shared\"\ndescription = \"user codex\"\n",
    );
    write(
        &project.join(".gemini/agents"),
        "shared.md",
        "---\nname: shared\ndescription: project gemini\n---\n",
    );
    let project_codex = write(
        &project.join(".codex/agents"),
        "reviewer.toml",
        "name = \"reviewer\"\ndescription = \"project codex\"\nsandbox_mode = \"read-only\"\n\
         model_reasoning_effort = \"high\"\ndeveloper_instructions = \"Review.\"\n",
    );
    // Not agents: another format's extension, Gemini CLI's skipped `_` files, hidden files,
    // subdirectories.
    write(
        &project.join(".gemini/agents"),
        "_template.md",
        "---\nname: template\n---\n",
    );
    write(
        &project.join(".gemini/agents"),
        "wrong.toml",
        "name = \"wrong1\"\n",
    );
    write(
        &project.join(".codex/agents"),
        "wrong.md",
        "---\nname: wrong2\n---\n",
    );
    write(
        &project.join(".codex/agents"),
        ".hidden.toml",
        "name = \"wrong3\"\n",
    );
    write(
        &project.join(".codex/agents/sub"),
        "deep.toml",
        "name = \"wrong4\"\n",
    );
    write(
        &project.join(".claude/agents"),
        "wrong.toml",
        "name = \"wrong5\"\n",
    );

    let catalog = discover(&Roots {
        project: Some(project),
        gemini_home: Some(gemini_home),
        codex_home: Some(codex_home),
        ..Roots::default()
    });
    let names: Vec<_> = catalog.agents().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["explore", "general", "mine", "reviewer", "shared"]);
    let mine = catalog.get("mine").unwrap();
    assert_eq!(mine.tools, Some(tools(&["read"])));
    assert_eq!(mine.prompt, "Mine.");
    assert_eq!(mine.source, Source::File(user_gemini));
    assert_eq!(
        catalog.get("shared").unwrap().description,
        "project gemini",
        "a project's agent replaces a user's, whatever the formats"
    );
    let reviewer = catalog.get("reviewer").unwrap();
    assert_eq!(reviewer.prompt, "Review.");
    assert_eq!(
        reviewer.effective_tools(),
        tools(&["read", "glob", "grep", "task_output", "task_list"])
    );
    assert_eq!(reviewer.source, Source::File(project_codex.clone()));
    let warnings: Vec<_> = catalog
        .warnings()
        .iter()
        .map(|w| (w.path.clone(), w.message.as_str()))
        .collect();
    assert_eq!(
        warnings,
        [(
            project_codex,
            "agent \"reviewer\": ignoring `model_reasoning_effort`, which aside does not honour"
        )]
    );
}

#[test]
fn within_one_level_aside_beats_opencode_beats_claude_beats_codex_beats_gemini() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path();
    let gemini = "---\nname: a\ndescription: gemini\n---\n";
    let codex = "name = \"a\"\ndescription = \"codex\"\n";
    let claude = "---\nname: a\ndescription: claude\n---\n";
    write(&project.join(".gemini/agents"), "a.md", gemini);
    let roots = Roots {
        project: Some(project.to_path_buf()),
        ..Roots::default()
    };
    let described = |roots: &Roots| discover(roots).get("a").unwrap().description.clone();
    assert_eq!(described(&roots), "gemini");
    write(&project.join(".codex/agents"), "a.toml", codex);
    assert_eq!(described(&roots), "codex");
    write(&project.join(".claude/agents"), "a.md", claude);
    assert_eq!(described(&roots), "claude");
    write(
        &project.join(".opencode/agent"),
        "a.md",
        "---\ndescription: opencode\n---\n",
    );
    assert_eq!(described(&roots), "opencode");
    write(
        &project.join(".aside/agents"),
        "a.md",
        "---\ndescription: aside\n---\n",
    );
    assert_eq!(described(&roots), "aside");
}

#[test]
fn broken_gemini_and_codex_files_warn_and_keep_the_earlier_definition() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let project = tmp.path().join("project");
    write(
        &home.join(".claude/agents"),
        "helper.md",
        "---\ndescription: user\n---\n",
    );
    let remote = write(
        &project.join(".gemini/agents"),
        "helper.md",
        "---\nname: helper\nkind: remote\nagent_card_url: https://example.com/card\n---\n",
    );
    let broken = write(
        &project.join(".codex/agents"),
        "helper.toml",
        "name = \"helper\"\ndescription = \n",
    );
    let catalog = discover(&Roots {
        project: Some(project),
        user_home: Some(home),
        ..Roots::default()
    });
    assert_eq!(catalog.get("helper").unwrap().description, "user");
    let warned: Vec<_> = catalog.warnings().iter().map(|w| w.path.clone()).collect();
    assert_eq!(warned, [remote, broken]);
    assert!(catalog.warnings()[0].message.contains("remote"));
    assert!(catalog.warnings()[1]
        .message
        .contains("invalid TOML: line 2"));
}
