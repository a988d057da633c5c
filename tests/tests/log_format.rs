//! Log lines as machines read them (SPEC §7): every JSON line parses and carries a syslog
//! `priority`; every text line is logfmt; no field value is a Rust `Debug` rendering;
//! durations have at most three decimals; lists are JSON arrays; the session's close reason
//! is a snake_case kind plus human text.

use std::time::Duration;

use popgate_tests::popgate::RELAY_ACTION;
use popgate_tests::{
    require_peers, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer, Pop3Client, Popgate,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// Runs sessions that end in several ways and returns popgate's log (and checks the
/// login and per-policy metrics those sessions leave).
fn logged_sessions(format: &str) -> String {
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::plaintext_only()).unwrap();
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], popgate_tests::free_port()));
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .set(
            RELAY_ACTION,
            "/file_names",
            json!({ "default": "allow", "rules": [ { "match": "*.exe", "action": "strip" } ] }),
        )
        .set(
            "popgate.json",
            "/log",
            json!({ "format": format, "level": "debug" }),
        )
        .set(
            "popgate.json",
            "/metrics",
            json!({ "listen": metrics.to_string() }),
        );
    let mut popgate = Popgate::start(config).unwrap();
    let account = dovecot.account().at(popgate.pop3_addr());
    let mut client = Pop3Client::logged_in(&account).unwrap();
    client
        .retr(corpus.number_of("05-exe-attachment.eml"))
        .unwrap();
    client.quit();
    // Ends without QUIT.
    let dropped = Pop3Client::logged_in(&account).unwrap();
    drop(dropped);
    // A failed login.
    let mut wrong = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    wrong.login(dovecot.user(), "not-the-password").unwrap_err();
    drop(wrong);
    popgate.wait_for_log("popgate running", WAIT).unwrap();
    popgate.signal(libc::SIGHUP).unwrap();
    popgate
        .wait_for_log("configuration reloaded", WAIT)
        .unwrap();
    let exposition = scrape(metrics);
    for sample in [
        "popgate_logins_total{result=\"ok\"} 2",
        "popgate_logins_total{result=\"failed\"} 1",
        "popgate_logins_total{result=\"refused_by_policy\"} 0",
        "popgate_policy_sessions_total{policy=\"relay\",result=\"finished\"}",
    ] {
        assert!(
            exposition.contains(sample),
            "{sample} missing:\n{exposition}"
        );
    }
    popgate.stop().unwrap();
    popgate.log_text()
}

/// Fields whose values popgate chooses (names of policies, actions or users may be
/// CamelCase words; these never are).
const OWN_WORDS: [&str; 7] = [
    "reason", "result", "side", "error", "verdict", "state", "limit",
];

/// Whether `value` looks like a Rust `Debug` rendering: `Variant(..)`, `Struct { .. }`,
/// or, for a field popgate fills itself, a bare CamelCase word (`Finished`).
fn is_debug_rendering(key: &str, value: &str) -> bool {
    let camel_word = OWN_WORDS.contains(&key)
        && value.starts_with(|c: char| c.is_ascii_uppercase())
        && value.len() > 1
        && value.chars().all(|c| c.is_ascii_alphanumeric())
        && value.chars().skip(1).any(|c| c.is_ascii_lowercase());
    let variant = value
        .find('(')
        .is_some_and(|i| i > 1 && value[..i].chars().all(|c| c.is_ascii_alphanumeric()))
        && value.starts_with(|c: char| c.is_ascii_uppercase());
    let structure = value.contains(" { ") && value.ends_with(" }");
    camel_word || variant || structure
}

fn check_value(key: &str, value: &str, line: &str) {
    assert!(
        !is_debug_rendering(key, value),
        "{key}={value:?} is a Debug rendering in {line}"
    );
    if key.ends_with("_ms") {
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            decimals <= 3,
            "{key}={value} has more than three decimals: {line}"
        );
    }
}

fn walk_json(key: &str, value: &Value, line: &str) {
    match value {
        Value::String(s) => check_value(key, s, line),
        Value::Number(n) => check_value(key, &n.to_string(), line),
        Value::Object(map) => map.iter().for_each(|(k, v)| walk_json(k, v, line)),
        Value::Array(items) => items.iter().for_each(|v| walk_json(key, v, line)),
        _ => {}
    }
}

#[test]
fn json_lines_have_a_priority_arrays_and_no_debug_renderings() {
    require_peers!(Peer::Dovecot);
    let log = logged_sessions("json");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "{log}");
    for (line, text) in lines.iter().zip(log.lines()) {
        let priority = line["priority"]
            .as_u64()
            .unwrap_or_else(|| panic!("no priority: {text}"));
        let expected = match line["level"].as_str().unwrap() {
            "ERROR" => 3,
            "WARN" => 4,
            "INFO" => 6,
            _ => 7,
        };
        assert_eq!(priority, expected, "{text}");
        walk_json("", line, text);
    }
    let running = lines
        .iter()
        .find(|l| l["message"] == "popgate running")
        .expect("a start line");
    assert!(
        running["listeners"].is_array(),
        "listeners is an array: {running}"
    );
    let closed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "session closed")
        .collect();
    assert!(closed.len() >= 3, "{log}");
    for line in &closed {
        let result = line["result"].as_str().unwrap();
        assert!(
            result.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "result is a snake_case kind: {line}"
        );
        assert!(line["reason"].is_string(), "{line}");
        let kind = line["reason_kind"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        assert!(
            kind.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "reason_kind is snake_case: {line}"
        );
    }
    let failed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "login failed")
        .collect();
    assert_eq!(failed.len(), 1, "one line per failed login: {log}");
    assert_eq!(failed[0]["mechanism"], "USER");
    assert_eq!(failed[0]["result"], "failed");
    assert!(
        failed[0]["user"].is_string() && failed[0]["reply_code"].is_string(),
        "{log}"
    );
    assert!(
        !log.contains("not-the-password"),
        "a credential reached the log"
    );
}

/// Splits one logfmt line into pairs, undoing the quoting; panics on malformed input.
fn parse_logfmt(line: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .unwrap_or_else(|| panic!("no '=' in {rest:?} of {line}"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad key {key:?} in {line}"
        );
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i + 1,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, c)) => value.push(c),
                        None => panic!("dangling escape in {line}"),
                    },
                    Some((_, c)) => {
                        assert!(!c.is_control(), "raw control character in {line}");
                        value.push(c);
                    }
                    None => panic!("unterminated quote in {line}"),
                }
            };
            (value, &quoted[end..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let value = &after[..end];
            assert!(!value.contains('"'), "unquoted quote in {line}");
            (value.to_owned(), &after[end..])
        };
        pairs.push((key.to_owned(), value));
        rest = after.strip_prefix(' ').unwrap_or(after);
        assert!(!rest.starts_with(' '), "double space in {line}");
    }
    pairs
}

#[test]
fn text_lines_are_logfmt_without_debug_renderings() {
    require_peers!(Peer::Dovecot);
    let log = logged_sessions("text");
    let mut closed = 0;
    for line in log.lines() {
        let pairs = parse_logfmt(line);
        assert_eq!(pairs[0].0, "ts", "{line}");
        assert_eq!(pairs[1].0, "level", "{line}");
        assert_eq!(pairs[2].0, "msg", "{line}");
        for (key, value) in &pairs[3..] {
            check_value(key, value, line);
        }
        if pairs[2].1 == "session closed" {
            closed += 1;
            let reason = pairs.iter().find(|(k, _)| k == "reason");
            assert!(reason.is_some(), "{line}");
        }
    }
    assert!(closed >= 3, "{log}");
    assert!(log.contains("msg=\"session closed\""), "{log}");
}

/// The `/metrics` text.
fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: popgate\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
