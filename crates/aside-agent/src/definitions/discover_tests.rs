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
        user_config: None,
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
    };
    let dirs: Vec<_> = search_dirs(&roots)
        .into_iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dirs,
        [
            "/h/.claude/agents",
            "/c/opencode/agent",
            "/c/opencode/agents",
            "/c/aside/agents",
            "/p/.claude/agents",
            "/p/.opencode/agent",
            "/p/.opencode/agents",
            "/p/.aside/agents",
        ]
    );
}
