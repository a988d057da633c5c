//! popgate's JSON log as a SIEM reads it: every line parses, and the session summary and
//! per-message lines carry the fields README.md documents.

use std::time::Duration;

use popgate_tests::popgate::RELAY_ACTION;
use popgate_tests::{
    require_peers, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer, Pop3Client, Popgate,
};
use serde_json::{json, Value};

/// The session summary's fields (README "Logs").
const SUMMARY_FIELDS: [&str; 14] = [
    "result",
    "reason",
    "duration_ms",
    "bytes_from_client",
    "bytes_from_server",
    "commands",
    "messages",
    "verdicts",
    "client_tls",
    "server_tls",
    "server_certificate",
    "server_subject",
    "policy",
    "user",
];

/// The per-message line's fields (README "Logs").
const MESSAGE_FIELDS: [&str; 6] = [
    "number",
    "size",
    "message_id",
    "verdict",
    "rule",
    "inspection_ms",
];

/// A field of the event itself or of its session span.
fn field<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line.get(name)
        .or_else(|| line.get("span").and_then(|span| span.get(name)))
}

#[test]
fn json_log_lines_parse_and_carry_the_documented_fields() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::plaintext_only()).unwrap();
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .set(
            RELAY_ACTION,
            "/file_names",
            json!({ "default": "allow", "rules": [ { "match": "*.exe", "action": "strip" } ] }),
        )
        .set("popgate.json", "/log/level", json!("info"));
    let popgate = Popgate::start(config).unwrap();
    let mut client = Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr())).unwrap();
    client.retr(corpus.number_of("01-plain.eml")).unwrap();
    client
        .retr(corpus.number_of("05-exe-attachment.eml"))
        .unwrap();
    client.quit();
    // Lines reach the log from popgate's writer thread; wait for the session's last.
    popgate
        .wait_for_log("\"verdicts\":\"allow=1,strip=1\"", Duration::from_secs(10))
        .unwrap();

    let log = popgate.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let by_message = |text: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l.get("message").and_then(Value::as_str) == Some(text))
            .collect()
    };

    let summaries: Vec<&Value> = by_message("session closed")
        .into_iter()
        .filter(|l| field(l, "commands") != Some(&json!(0)))
        .collect();
    assert_eq!(summaries.len(), 1, "{log}");
    let summary = summaries[0];
    for name in SUMMARY_FIELDS {
        assert!(
            field(summary, name).is_some(),
            "summary lacks {name}: {summary}"
        );
    }
    assert_eq!(field(summary, "result"), Some(&json!("finished")));
    assert_eq!(field(summary, "messages"), Some(&json!(2)));
    assert_eq!(field(summary, "verdicts"), Some(&json!("allow=1,strip=1")));
    assert_eq!(field(summary, "user"), Some(&json!(dovecot.user())));
    assert_eq!(field(summary, "policy"), Some(&json!("relay")));

    let inspected = by_message("message inspected");
    assert_eq!(inspected.len(), 2, "{log}");
    for line in &inspected {
        for name in MESSAGE_FIELDS {
            assert!(
                field(line, name).is_some(),
                "message line lacks {name}: {line}"
            );
        }
    }
    assert_eq!(
        field(inspected[1], "message_id"),
        Some(&json!("<corpus-5@popgate.test>"))
    );
    assert!(
        !log.contains(dovecot.password()),
        "the password never reaches the log"
    );
}
