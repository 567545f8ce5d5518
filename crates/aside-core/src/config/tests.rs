use std::time::Duration;

use aside_protocol::format_duration;

use super::*;

fn err(text: &str) -> String {
    Config::parse(text).unwrap_err().to_string()
}

#[test]
fn defaults_round_trip_through_describe() {
    let text = Config::default().describe();
    let parsed = Config::parse(&text).unwrap();
    assert_eq!(parsed, Config::default());
}

#[test]
fn bad_values_are_refused_with_the_key() {
    assert!(err("max_running = 0").contains("max_running"));
    assert!(err("[groups]\nbuild = 0").contains("build"));
    assert!(err("wait = \"soon\"").contains("wait"));
    assert!(err("timeout = \"1000000000h\"").contains("10 years"));
    assert!(Config::parse("wiat = \"1s\"").is_err());
    let c = Config::parse("timeout = \"none\"\nwait = \"30s\"\n[groups]\nbuild = 2").unwrap();
    assert_eq!(c.wait, Some(Duration::from_secs(30)));
    assert_eq!(c.group_limit("build"), Some(2));
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_limit("none").unwrap(), None);
    assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(fmt_size(64 << 10), "64KiB");
    assert!(parse_size("99999999999999GiB").is_err());
}

/// A setting the file sets, in the file's syntax, with a value it must refuse.
const BAD: &[(&str, &str)] = &[
    ("max_running = 0", "max_running"),
    ("max_running = -1", "max_running"),
    ("max_running = \"8\"", "max_running"),
    ("wait = \"soon\"", "wait"),
    ("timeout = \"100y\"", "timeout"),
    ("timeout = 5", "timeout"),
    ("kill_grace = \"none\"", "kill_grace"),
    ("drain = \"2 fortnights\"", "drain"),
    ("output_cap = \"1 gallon\"", "output_cap"),
    ("spill = \"lots\"", "spill"),
    ("tail = 65536", "tail"),
    ("retained_memory = \"99999999999TiB\"", "retained_memory"),
    ("retention = \"forever\"", "retention"),
    ("[agent]\nmodel = 4", "agent.model"),
    ("[agent]\nprovider = \"nowhere\"", "agent.provider"),
    ("[agent]\nbase_url = true", "agent.base_url"),
    ("[agent]\nmax_running = 0", "agent.max_running"),
    ("detach_key = \"Up\"", "detach_key"),
    ("on_end = 5", "on_end"),
    ("[agent]\nmax_depth = -1", "agent.max_depth"),
    ("[agent]\nmax_turns = 0", "agent.max_turns"),
    ("[agent]\nstall = \"a while\"", "agent.stall"),
    ("[agent]\nwait = \"11y\"", "agent.wait"),
    ("[agent]\nsettle = \"none\"", "agent.settle"),
    ("[agent]\ntool_output = 999", "agent.tool_output"),
    ("[agent]\nstop_children = \"yes\"", "agent.stop_children"),
    ("[agent]\nretries = 1.5", "agent.retries"),
    ("[providers.p]\napi_key_env = \"K\"", "providers.p"),
    ("[providers.p]\nbase_url = 1", "providers.p.base_url"),
    ("[providers.\"a b\"]\nbase_url = \"http://x\"", "providers"),
    ("[groups]\nbuild = 0", "groups.\"build\""),
    ("[groups]\nbuild = \"2\"", "groups.build"),
    ("[groups]\n\"a b\" = 2", "groups"),
];

#[test]
fn every_key_is_refused_by_name_on_a_bad_value() {
    for (text, key) in BAD {
        let e = Config::parse(text).unwrap_err();
        assert_eq!(e.key(), Some(*key), "{text:?}: {e}");
        assert!(
            e.to_string().starts_with(&format!("{key}: ")),
            "{text:?}: {e}"
        );
    }
    // Every key of the defaults is in the list above.
    let described = Config::default().describe();
    for line in described.lines().filter(|l| !l.starts_with(['#', '['])) {
        let key = line.split(" = ").next().unwrap();
        assert!(
            BAD.iter()
                .any(|(text, _)| text.contains(&format!("{key} = "))),
            "no bad value tried for {key}"
        );
    }
}

#[test]
fn unknown_keys_are_refused() {
    for (text, unknown) in [
        ("wiat = \"1s\"", "wiat"),
        ("keyless_urls = [\"http://x\"]", "keyless_urls"),
        ("[agent]\nmodle = \"m\"", "modle"),
        (
            "[providers.p]\nbase_url = \"u\"\napi_key = \"sk\"",
            "api_key",
        ),
        ("[agents]\nmax_running = 1", "agents"),
    ] {
        assert!(err(text).contains(unknown), "{text:?}: {}", err(text));
    }
    assert!(matches!(
        Config::parse("max_running = ").unwrap_err(),
        ConfigError::Toml { key: None, .. }
    ));
}

#[test]
fn errors_say_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[groups]\nbuild = 0\n").unwrap();
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
    assert!(e.contains("\"build\"") && e.contains("at least 1"), "{e}");
    assert_eq!(
        Config::load(&dir.path().join("absent.toml")).unwrap(),
        Config::default()
    );
}

#[test]
fn a_full_config_round_trips_through_describe() {
    let text = "max_running = 3\nwait = \"none\"\ntimeout = \"1h30m\"\nkill_grace = \"1500ms\"\n\
                output_cap = \"1000\"\ntail = \"1MB\"\n\
                [agent]\nmodel = \"m\"\nprovider = \"my.local\"\nstall = \"none\"\nsettle = \"0s\"\n\
                [providers.\"my.local\"]\nbase_url = \"http://localhost:11434/v1\"\napi_key_env = \"K\"\n\
                [providers.other]\nbase_url = \"http://x\"\napi_key_file = \"/k\"\n\
                [groups]\nbuild = 2\n\"a.b\" = 1\n";
    let c = Config::parse(text).unwrap();
    assert_eq!(c.timeout, Some(Duration::from_secs(5400)));
    assert_eq!(c.output_cap, 1000);
    assert_eq!(c.tail, 1_000_000);
    assert_eq!(c.agent.provider.as_deref(), Some("my.local"));
    let described = c.describe();
    assert!(described.contains("timeout = \"1h30m\""), "{described}");
    assert!(described.contains("output_cap = \"1000B\""), "{described}");
    assert!(
        described.contains("[providers.\"my.local\"]"),
        "{described}"
    );
    assert_eq!(Config::parse(&described).unwrap(), c, "{described}");
}

#[test]
fn describe_prints_every_setting_with_a_comment() {
    let d = Config::default().describe();
    for needle in [
        "max_running = 16 ",
        "wait = \"2m\" ",
        "timeout = \"none\" ",
        "kill_grace = \"5s\" ",
        "drain = \"2s\" ",
        "output_cap = \"1GiB\" ",
        "spill = \"1MiB\" ",
        "tail = \"64KiB\" ",
        "retained_memory = \"16MiB\" ",
        "retention = \"7d\" ",
        "\n[agent] ",
        "model = \"\" ",
        "provider = \"\" ",
        "base_url = \"https://api.openai.com/v1\" ",
        "max_depth = 1 ",
        "max_turns = 50 ",
        "stall = \"10m\" ",
        "settle = \"10m\" ",
        "tool_output = 30000 ",
        "stop_children = true ",
        "retries = 4 ",
        "\n# [providers.NAME] base_url",
        "\n[groups] ",
    ] {
        assert!(d.contains(needle), "{needle:?} missing from\n{d}");
    }
    for line in d.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains(" # "), "no comment: {line:?}");
        assert!(!line.contains('`'), "markdown in {line:?}");
    }
    // Values come before sections, [agent] before the providers hint and [groups].
    let at = |s: &str| d.find(s).unwrap();
    assert!(at("retention") < at("[agent]"));
    assert!(at("[agent]") < at("# [providers.NAME]"));
    assert!(at("# [providers.NAME]") < at("[groups]"));
}

#[test]
fn sizes_round_trip() {
    for n in [
        0,
        1,
        1000,
        1023,
        1024,
        64 << 10,
        (1 << 20) + 1,
        1 << 30,
        3 << 40,
        u64::MAX,
    ] {
        let text = Size(n).to_string();
        assert_eq!(text.parse::<Size>().unwrap(), Size(n), "{text}");
        assert_eq!(parse_size(&fmt_size(n)).unwrap(), n);
    }
    assert_eq!(Size(1 << 30).to_string(), "1GiB");
    assert_eq!(Size(100).to_string(), "100B");
    assert_eq!(parse_size(" 2 kib ").unwrap(), 2048);
    assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
    assert!(matches!(parse_size("MiB"), Err(SizeError::NotASize { .. })));
    assert!(matches!(
        parse_size("1 gallon"),
        Err(SizeError::UnknownUnit { .. })
    ));
    assert!(matches!(
        parse_size("99999999999TiB"),
        Err(SizeError::TooLarge { .. })
    ));
}

#[test]
fn durations_round_trip() {
    for d in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(1500),
        Duration::from_secs(59),
        Duration::from_secs(5400),
        Duration::from_secs(7 * 86_400 + 1),
        Duration::from_nanos(1_000_001),
        MAX_DURATION,
    ] {
        assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        assert_eq!(parse_limit(&format_limit(Some(d))).unwrap(), Some(d));
    }
    assert_eq!(parse_limit(&format_limit(None)).unwrap(), None);
    assert_eq!(parse_limit(" None ").unwrap(), None);
    assert_eq!(parse_duration(" 30s ").unwrap(), Duration::from_secs(30));
    assert!(matches!(
        parse_duration("soon"),
        Err(DurationError::Invalid { .. })
    ));
    assert_eq!(
        parse_duration("11y"),
        Err(DurationError::TooLong {
            input: "11y".into()
        })
    );
    assert!(parse_duration(&format_duration(MAX_DURATION + Duration::from_secs(1))).is_err());
}

#[test]
fn names() {
    assert!(validate_group("build.release-1_x").is_ok());
    let e = validate_group("a b").unwrap_err();
    assert_eq!(e.name, "a b");
    assert!(e
        .to_string()
        .starts_with("group \"a b\": names are 1 to 64"));
    assert!(validate_group("").is_err());
    assert!(validate_group(&"x".repeat(65)).is_err());
}

#[test]
fn validate_checks_a_config_built_in_code() {
    let c = Config {
        timeout: Some(MAX_DURATION * 2),
        ..Config::default()
    };
    assert_eq!(c.validate().unwrap_err().key(), Some("timeout"));
    let mut c = Config::default();
    c.agent.provider = Some("p".into());
    assert_eq!(c.validate().unwrap_err().key(), Some("agent.provider"));
    c.providers.insert(
        "p".into(),
        Provider {
            base_url: "http://p".into(),
            api_key_env: None,
            api_key_file: None,
        },
    );
    assert!(c.validate().is_ok());
}

fn user() -> Config {
    Config::parse(
        "max_running = 4\n[groups]\nbuild = 2\n\
         [agent]\nmodel = \"m\"\nprovider = \"p\"\nmax_running = 3\nretries = 2\n\
         [providers.p]\nbase_url = \"http://good\"\napi_key_env = \"KEY\"\n",
    )
    .unwrap()
}

#[test]
fn a_project_sets_only_the_agent_keys_it_names() {
    let base = user();
    let c = base
        .with_project("[agent]\nmax_turns = 7\nstall = \"none\"\n")
        .unwrap();
    let mut expected = base.clone();
    expected.agent.max_turns = 7;
    expected.agent.stall = None;
    assert_eq!(c, expected);
    // An empty file changes nothing.
    assert_eq!(base.with_project("").unwrap(), base);
}

#[test]
fn a_project_keeps_the_daemons_slots_and_keys() {
    let base = user();
    let c = base
        .with_project(
            "[agent]\nmax_running = 50\nbase_url = \"http://evil\"\n\
             [providers.p]\nbase_url = \"http://evil2\"\napi_key_env = \"KEY\"\n\
             [providers.q]\nbase_url = \"http://q\"\napi_key_file = \"/etc/key\"\n",
        )
        .unwrap();
    assert_eq!(c.agent.max_running, 3);
    assert_eq!(c.agent.base_url, "http://evil");
    assert_eq!(c.providers["p"].base_url, "http://evil2");
    assert_eq!(c.providers["p"].api_key_env, None);
    assert_eq!(c.providers["q"].api_key_file, None);
    assert_eq!(
        c.keyless_urls
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["http://evil", "http://evil2", "http://q"]
    );
    // Top-level settings stay the daemon's.
    assert_eq!(c.max_running, 4);
    assert_eq!(c.groups, base.groups);
}

#[test]
fn a_blank_project_value_leaves_the_daemons() {
    let base = user();
    let c = base
        .with_project("[agent]\nmodel = \"\"\nprovider = \" \"\n")
        .unwrap();
    assert_eq!(c.agent.model.as_deref(), Some("m"));
    assert_eq!(c.agent.provider.as_deref(), Some("p"));
}

#[test]
fn a_project_is_refused_by_key() {
    let base = user();
    for (text, key) in [
        ("[agent]\nmax_running = 0", Some("agent.max_running")),
        ("[agent]\nmax_turns = 0", Some("agent.max_turns")),
        ("[agent]\nstall = \"soon\"", Some("agent.stall")),
        ("[agent]\nprovider = \"nowhere\"", Some("agent.provider")),
        ("[agent]\nmodle = \"m\"", Some("agent.modle")),
        ("[providers.\"a b\"]\nbase_url = \"u\"", Some("providers")),
    ] {
        let e = base.with_project(text).unwrap_err();
        assert_eq!(e.key(), key, "{text:?}: {e}");
    }
    // Slots and groups are the daemon's: a project may not even name them.
    for text in ["max_running = 2", "[groups]\nbuild = 9", "wait = \"1s\""] {
        assert!(base.with_project(text).is_err(), "{text:?}");
    }
}
