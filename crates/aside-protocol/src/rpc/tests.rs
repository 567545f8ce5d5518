use super::*;
use serde_json::value::RawValue;

#[test]
fn every_method_parses_by_its_name_and_nothing_else_does() {
    for m in Request::METHODS {
        let parsed = Request::parse(m, None);
        if let Err(e) = &parsed {
            assert_eq!(e.code, ErrorCode::InvalidParams, "{m}: {e}");
        }
        if let Ok(r) = parsed {
            assert_eq!(r.method(), *m);
        }
    }
    let e = Request::parse("task.explode", None).unwrap_err();
    assert_eq!(e.code, ErrorCode::MethodNotFound);
}

#[test]
fn schema_mentions_every_method_and_its_result() {
    let s = crate::schema().to_string();
    for m in Request::METHODS {
        assert!(s.contains(&format!("\"{m}\"")), "{m} missing from schema");
    }
    assert!(s.contains("StartResult") && s.contains("ReadResult"));
}

#[test]
fn the_envelope_tells_absent_ids_from_null_ones() {
    let notification: Envelope<'_> =
        serde_json::from_str(r#"{"jsonrpc":"2.0","method":"x","params":{"a":1}}"#).unwrap();
    assert!(notification.id.is_none());
    assert_eq!(notification.params.map(|p| p.get()), Some(r#"{"a":1}"#));
    let null_id: Envelope<'_> = serde_json::from_str(r#"{"id":null,"method":"x"}"#).unwrap();
    assert_eq!(null_id.id, Some(serde_json::Value::Null));
    for (line, code) in [
        ("[1]", ErrorCode::InvalidRequest),
        ("42", ErrorCode::InvalidRequest),
        ("{\"id\":", ErrorCode::ParseError),
        ("nonsense", ErrorCode::ParseError),
    ] {
        assert_eq!(Envelope::parse(line).unwrap_err().code, code, "{line}");
    }
}

#[test]
fn error_codes_keep_their_numbers() {
    for n in [-32700, -32600, -32601, -32602, -32603, -32001, -32007, 42] {
        assert_eq!(ErrorCode::from_number(n).number(), n);
    }
    let e: RpcError = serde_json::from_str(r#"{"code":-32001,"message":"no"}"#).unwrap();
    assert_eq!(e.code, ErrorCode::UnknownTask);
    assert_eq!(serde_json::to_value(&e).unwrap()["code"], -32001);
}

/// `TaskSpec::FIELDS`, which `task.start` checks keys against, names every property the
/// spec's schema has, in any of its kinds, and nothing else.
#[test]
fn the_spec_fields_checked_on_start_are_the_schemas() {
    fn properties(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            out.extend(props.keys().cloned());
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for branch in v.get(key).and_then(|b| b.as_array()).into_iter().flatten() {
                properties(branch, out);
            }
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(crate::TaskSpec)).unwrap();
    let mut found = std::collections::BTreeSet::new();
    properties(&schema, &mut found);
    let listed: std::collections::BTreeSet<String> = crate::TaskSpec::FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, listed);
}

#[test]
fn start_params_refuse_unknown_fields_and_name_the_right_one() {
    let ok = Request::parse(
        "task.start",
        RawValue::from_string(
            r#"{"kind":"shell","command":{"argv":["true"]},"dedupe_key":"d"}"#.into(),
        )
        .ok()
        .as_deref(),
    );
    assert!(ok.is_ok(), "{ok:?}");
    let e = Request::parse(
        "task.start",
        RawValue::from_string(
            r#"{"kind":"shell","command":{"argv":["true"]},"dedupe":"d"}"#.into(),
        )
        .ok()
        .as_deref(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    assert!(
        e.message.contains("`dedupe`") && e.message.contains("dedupe_key"),
        "{e}"
    );
}
