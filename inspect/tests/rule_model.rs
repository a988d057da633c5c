//! One rule model: rules reach inspection exactly as `policy` checked them.
//!
//! Before, the relay handed `inspect` the rules' text and `inspect` re-parsed it with its
//! own glob: a content-type rule `" application/x-msdownload"` passed `check` (trimmed
//! there) but never fired (untrimmed in `inspect`). Now both sides use the same compiled
//! pattern, so what `check` accepts is what matches.

use popgate_inspect::{inspect, Output, Rules, Verdict};
use popgate_policy::{Config, Source, Sources};

/// The rules of a configuration whose only action is `action_json`.
fn rules_of(action_json: &str) -> Rules {
    let sources = Sources {
        global: None,
        policies: vec![Source::new(
            "policies/p.json",
            r#"{"name": "p", "order": 1, "from": ["any"], "to": ["any"], "proxy_action": "a"}"#,
        )],
        actions: vec![Source::new("actions/a.json", action_json)],
        tls_profiles: Vec::new(),
    };
    let config = match Config::from_sources(&sources) {
        Ok(config) => config,
        Err(errors) => panic!("{errors:?}"),
    };
    let policy = config.policy("p").expect("policy p");
    Rules::for_action(policy.name(), policy.action())
}

const EXE_BY_TYPE: &[u8] = b"From: a@b\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/x-msdownload\r\n\r\nMZ\r\n--B--\r\n";

#[test]
fn content_type_rule_with_leading_space_fires() {
    let rules = rules_of(
        r#"{"name": "a", "content_types": {"rules": [{"match": " application/x-msdownload", "action": "strip"}]}}"#,
    );
    let result = inspect(EXE_BY_TYPE, &rules, None, "q");
    assert_eq!(result.verdict, Verdict::Strip, "{result:?}");
    let Output::Rewritten(bytes) = result.output else {
        panic!("not rewritten");
    };
    assert!(!String::from_utf8_lossy(&bytes).contains("application/x-msdownload"));
}

#[test]
fn checked_rules_carry_policy_names_defaults_and_template() {
    let rules = rules_of(
        r#"{"name": "a", "file_names": {"rules": [{"match": "*.EXE", "action": "deny"}]},
            "deny_message": "{filename} blocked by {policy}/{action}"}"#,
    );
    assert_eq!((rules.policy.as_str(), rules.action.as_str()), ("p", "a"));
    // SPEC §4: `unparseable` defaults to `quarantine`.
    assert_eq!(rules.unparseable, Verdict::Quarantine);
    let message = b"From: a@b\r\nContent-Type: application/octet-stream; name=\"x.exe\"\r\n\r\nMZ";
    let result = inspect(message, &rules, None, "q");
    assert_eq!(
        (result.verdict, result.rule.as_str()),
        (Verdict::Deny, "file_names: *.EXE")
    );
    let Output::Rewritten(bytes) = result.output else {
        panic!("not rewritten");
    };
    assert!(String::from_utf8_lossy(&bytes).contains("x.exe blocked by p/a"));
}

#[test]
fn header_rules_match_with_the_policy_pattern() {
    let rules = rules_of(
        r#"{"name": "a", "headers": {"rules": [{"match": "X-Spam-Flag: YES", "action": "tag"}]}}"#,
    );
    let message = b"From: a@b\r\nX-Spam-Flag: yes\r\nSubject: hi\r\n\r\nbody\r\n";
    let result = inspect(message, &rules, None, "q");
    assert_eq!(
        (result.verdict, result.rule.as_str()),
        (Verdict::Tag, "headers: X-Spam-Flag: YES")
    );
}

#[test]
fn header_rules_match_any_spelling_of_the_field_name_and_only_that_field() {
    let rules = rules_of(
        r#"{"name": "a", "headers": {"rules": [{"match": "X-Spam-Flag: YES", "action": "tag"}]}}"#,
    );
    for message in [
        &b"From: a@b\r\nx-spam-flag: YES\r\n\r\nbody\r\n"[..],
        b"From: a@b\r\nX-SPAM-FLAG:\r\n YES\r\n\r\nbody\r\n",
    ] {
        let result = inspect(message, &rules, None, "q");
        assert_eq!(
            result.verdict,
            Verdict::Tag,
            "{:?}",
            String::from_utf8_lossy(message)
        );
    }
    // The value alone, under another field's name, is no match.
    let other = b"From: a@b\r\nX-Spam-Flags: YES\r\nSubject: X-Spam-Flag: YES\r\n\r\nbody\r\n";
    assert_eq!(inspect(other, &rules, None, "q").verdict, Verdict::Allow);
}
