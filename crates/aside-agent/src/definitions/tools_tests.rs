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
