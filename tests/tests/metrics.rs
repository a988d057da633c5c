//! Prometheus metrics (SPEC §7): `/metrics` on `metrics.listen` parses as exposition text
//! (every sample line through `prometheus-parse`), carries every SPEC family, and its
//! counters move exactly with the traffic sent: sessions, bytes, verdicts, refusals by
//! reason, TLS failures by leg and reason, reloads.
//!
//! Every assertion is a difference between a scrape taken once popgate is idle and one taken
//! after the traffic, so that a counter's starting value never matters.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use popgate_tests::diff::escape;
use popgate_tests::popgate::{RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::tls_probe::{tls_probe, ProbeMode, ProbeVersions};
use popgate_tests::{
    free_port, require_peers, wait_for_accept, wait_until, ConfigDir, Corpus, Dovecot,
    DovecotOptions, Peer, Pop3Client, Popgate,
};
use prometheus_parse::{LineInfo, Scrape, Value};
use serde_json::json;

/// How long a condition on the metrics may take to become true.
const SETTLE: Duration = Duration::from_secs(20);

/// The metric families of SPEC §7, as they appear in `# TYPE` lines (counters without
/// `_total`, which OpenMetrics puts on the samples only).
const FAMILIES: [(&str, &str); 9] = [
    ("popgate_connections", "counter"),
    ("popgate_sessions_active", "gauge"),
    ("popgate_messages", "counter"),
    ("popgate_bytes", "counter"),
    ("popgate_tls_handshake_failures", "counter"),
    ("popgate_certificates_minted", "counter"),
    ("popgate_certificate_cache_hits", "counter"),
    ("popgate_inspection_seconds", "histogram"),
    ("popgate_config_reloads", "counter"),
];

#[test]
fn sessions_bytes_and_verdicts_are_counted_exactly() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let metrics = free_addr();
    // One rule that matches exactly one corpus message, so two verdicts are in play.
    let config = with_metrics(ConfigDir::relay(dovecot.pop3_addr()), metrics)
        .set(
            RELAY_ACTION,
            "/content_types",
            json!({ "default": "allow", "rules": [] }),
        )
        .set(RELAY_ACTION, "/headers", json!({ "rules": [] }))
        .set(
            RELAY_ACTION,
            "/file_names",
            json!({ "default": "allow",
                    "rules": [ { "match": "invoice.exe", "action": "strip" } ] }),
        );
    let popgate = Popgate::start(config).unwrap();
    wait_for_accept(metrics, SETTLE).unwrap();
    let before = settled(metrics, 0);
    assert_eq!(
        before.value("popgate_messages_total", &[("verdict", "allow")]),
        0.0
    );

    const SESSIONS: usize = 3;
    let stripped = corpus
        .messages
        .iter()
        .filter(|m| m.name == "05-exe-attachment.eml")
        .count();
    assert_eq!(stripped, 1, "the corpus lost 05-exe-attachment.eml");
    let mut retrieved = 0;
    let mut body_bytes = 0;
    for _ in 0..SESSIONS {
        let mut client = Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr())).unwrap();
        for n in 1..=corpus.len() {
            body_bytes += client.retr_raw(n).unwrap().len();
            retrieved += 1;
        }
        let quit = client.quit().unwrap_or_default();
        assert!(quit.starts_with(b"+OK"), "QUIT: {}", escape(&quit));
    }

    let after = settled(metrics, SESSIONS);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(
        delta("popgate_connections_total", &[("result", "accepted")]),
        SESSIONS as f64,
        "{}",
        after.text
    );
    for result in [
        "no_policy",
        "limit",
        "loop",
        "upstream_unavailable",
        "tls_refused",
    ] {
        assert_eq!(
            delta("popgate_connections_total", &[("result", result)]),
            0.0,
            "{result}"
        );
    }
    assert_eq!(after.value("popgate_sessions_active", &[]), 0.0);
    assert_eq!(
        delta("popgate_messages_total", &[("verdict", "strip")]),
        (SESSIONS * stripped) as f64,
        "{}",
        after.text
    );
    assert_eq!(
        delta("popgate_messages_total", &[("verdict", "allow")]),
        (retrieved - SESSIONS * stripped) as f64,
        "{}",
        after.text
    );
    for verdict in ["deny", "quarantine", "tag", "tempfail"] {
        assert_eq!(
            delta("popgate_messages_total", &[("verdict", verdict)]),
            0.0,
            "{verdict}"
        );
    }
    assert_eq!(
        delta("popgate_inspection_seconds_count", &[]),
        retrieved as f64,
        "{}",
        after.text
    );
    // What popgate read from Dovecot includes every RETR body as Dovecot sent it.
    let from_server = delta("popgate_bytes_total", &[("direction", "server_to_client")]);
    assert!(
        from_server >= body_bytes as f64,
        "{from_server} < {body_bytes}"
    );
    let from_client = delta("popgate_bytes_total", &[("direction", "client_to_server")]);
    let retr_lines = retrieved * "RETR 1\r\n".len();
    assert!(
        from_client >= retr_lines as f64,
        "{from_client} < {retr_lines}"
    );
    let buckets = after.histogram("popgate_inspection_seconds");
    assert_eq!(
        buckets.last(),
        Some(&(
            f64::INFINITY,
            after.value("popgate_inspection_seconds_count", &[])
        ))
    );
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    drop(popgate);
}

#[test]
fn refusals_are_counted_by_reason_and_reloads_by_result() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    // Upstream unavailable: nothing listens on the upstream port.
    let metrics = free_addr();
    let dead_upstream = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut popgate =
        Popgate::start(with_metrics(ConfigDir::relay(dead_upstream), metrics)).unwrap();
    wait_for_accept(metrics, SETTLE).unwrap();
    let before = settled(metrics, 0);
    let reply = refused_reply(popgate.pop3_addr());
    assert!(reply.starts_with(b"-ERR [SYS/TEMP]"), "{}", escape(&reply));
    let after = settled(metrics, 1);
    assert_eq!(
        after.value(
            "popgate_connections_total",
            &[("result", "upstream_unavailable")]
        ) - before.value(
            "popgate_connections_total",
            &[("result", "upstream_unavailable")]
        ),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(
        after.value("popgate_connections_total", &[("result", "accepted")]),
        0.0,
        "{}",
        after.text
    );

    // SIGHUP with an unchanged directory: one applied reload. A broken file: rejected.
    popgate.signal(libc::SIGHUP).unwrap();
    wait_for(metrics, "one applied reload", |m| {
        m.value("popgate_config_reloads_total", &[("result", "ok")]) == 1.0
    });
    fs::write(popgate.config_dir().join(RELAY_POLICY), b"{ not json").unwrap();
    popgate.signal(libc::SIGHUP).unwrap();
    let rejected = wait_for(metrics, "a rejected reload", |m| {
        m.value("popgate_config_reloads_total", &[("result", "failed")]) >= 1.0
    });
    assert_eq!(
        rejected.value("popgate_config_reloads_total", &[("result", "ok")]),
        1.0
    );
    drop(popgate);

    // No policy: the only policy admits a client address that is not ours.
    let dovecot = Dovecot::start(&Corpus::small().messages, DovecotOptions::default()).unwrap();
    let metrics = free_addr();
    let config = with_metrics(ConfigDir::relay(dovecot.pop3_addr()), metrics).set(
        RELAY_POLICY,
        "/from",
        json!(["192.0.2.1"]),
    );
    let popgate = Popgate::start(config).unwrap();
    wait_for_accept(metrics, SETTLE).unwrap();
    let before = settled(metrics, 0);
    let reply = refused_reply(popgate.pop3_addr());
    assert!(reply.starts_with(b"-ERR [SYS/PERM]"), "{}", escape(&reply));
    let after = settled(metrics, 1);
    assert_eq!(
        after.value("popgate_connections_total", &[("result", "no_policy")])
            - before.value("popgate_connections_total", &[("result", "no_policy")]),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(
        after.value("popgate_connections_total", &[("result", "accepted")]),
        0.0
    );
}

#[test]
fn tls_1_1_client_counts_as_client_protocol_version_failure() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let dovecot = Dovecot::start(&Corpus::small().messages, DovecotOptions::default()).unwrap();
    let pki = dovecot.pki().unwrap();
    let metrics = free_addr();
    let upstream = json!({ "host": "127.0.0.1", "pop3": dovecot.pop3_addr().port(),
                           "pop3s": dovecot.pop3s_addr().port() });
    let config = with_metrics(ConfigDir::relay(dovecot.pop3_addr()), metrics)
        .tls_support(RELAY_POLICY, "required")
        .with_pki(pki)
        .unwrap()
        .raw("pki/upstream-ca.crt", fs::read(&pki.ca_cert).unwrap())
        .set(RELAY_POLICY, "/upstream", upstream)
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(
            STANDARD_PROFILE,
            "/trust/ca_files",
            json!(["pki/upstream-ca.crt"]),
        );
    let popgate = Popgate::start(config).unwrap();
    wait_for_accept(metrics, SETTLE).unwrap();
    let before = settled(metrics, 0);
    let probe = tls_probe(
        popgate.pop3s_addr(),
        ProbeMode::Implicit,
        dovecot.ca_cert(),
        ProbeVersions::UpToTls11,
        &["STAT"],
    )
    .unwrap();
    assert!(!probe.handshake_ok(), "TLS 1.1 accepted: {probe:?}");
    let after = settled(metrics, 1);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let failures = [("side", "client"), ("reason", "protocol_version")];
    assert_eq!(
        delta("popgate_tls_handshake_failures_total", &failures),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(
        delta("popgate_connections_total", &[("result", "tls_refused")]),
        1.0,
        "{}",
        after.text
    );
    for reason in ["timeout", "certificate", "protocol_version", "other"] {
        let labels = [("side", "server"), ("reason", reason)];
        assert_eq!(
            delta("popgate_tls_handshake_failures_total", &labels),
            0.0,
            "{reason}"
        );
    }
}

#[test]
fn only_get_and_head_of_metrics_are_served() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let dovecot = Dovecot::start(&Corpus::small().messages, DovecotOptions::default()).unwrap();
    let metrics = free_addr();
    let _popgate =
        Popgate::start(with_metrics(ConfigDir::relay(dovecot.pop3_addr()), metrics)).unwrap();
    wait_for_accept(metrics, SETTLE).unwrap();
    let (status, _, body) = http(metrics, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found", "{body}");
    let (status, _, _) = http(
        metrics,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, headers, body) = http(metrics, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("connection: close"), "{headers}");
    assert_eq!(body, "");
    // A full scrape passes the same strict checks as the other tests.
    let exposition = settled(metrics, 0);
    assert_eq!(exposition.value("popgate_sessions_active", &[]), 0.0);
}

/// `config` with `metrics.listen` at `addr`.
fn with_metrics(config: ConfigDir, addr: SocketAddr) -> ConfigDir {
    config.set(
        "popgate.json",
        "/metrics",
        json!({ "listen": addr.to_string() }),
    )
}

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Connects, reads what popgate says until it closes.
fn refused_reply(addr: SocketAddr) -> Vec<u8> {
    let mut client = Pop3Client::connect_silent(addr).unwrap();
    client.expect_close(SETTLE).unwrap()
}

/// Waits until popgate is idle (no active session) and has counted at least
/// `connections` connections, and returns that scrape.
fn settled(addr: SocketAddr, connections: usize) -> Exposition {
    wait_for(
        addr,
        &format!("{connections} connections counted, none active"),
        |m| {
            m.sum("popgate_connections_total") >= connections as f64
                && m.value("popgate_sessions_active", &[]) == 0.0
        },
    )
}

/// Scrapes until `condition` holds (bounded by [`SETTLE`]); returns the scrape that held.
fn wait_for(addr: SocketAddr, what: &str, condition: impl Fn(&Exposition) -> bool) -> Exposition {
    let mut last = None;
    let waited = wait_until(what, SETTLE, || {
        let exposition = scrape(addr);
        let held = condition(&exposition);
        last = Some(exposition);
        Ok(held)
    });
    let last = last.expect("scraped at least once");
    if let Err(err) = waited {
        panic!("{err:#}; last scrape:\n{}", last.text);
    }
    last
}

/// One `/metrics` scrape, checked strictly.
struct Exposition {
    text: String,
    scrape: Scrape,
}

/// `GET /metrics`: status, `Content-Type`, every line a HELP/TYPE comment or a sample the
/// parser accepts, `# EOF` last, each SPEC family typed as SPEC says.
fn scrape(addr: SocketAddr) -> Exposition {
    let (status, headers, text) = http(addr, "GET /metrics HTTP/1.1\r\nHost: popgate\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    assert!(
        headers.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{headers}"
    );
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    let mut types = BTreeMap::new();
    for line in text.lines().filter(|l| *l != "# EOF") {
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } => {}
            LineInfo::Type {
                metric_name,
                metric_alias,
                sample_type,
            } => {
                let name = metric_alias.unwrap_or(metric_name);
                types.insert(name, format!("{sample_type:?}").to_lowercase());
            }
            LineInfo::Sample {
                metric_name, value, ..
            } => {
                assert!(metric_name.starts_with("popgate_"), "{line}");
                assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
            }
            other => panic!("unparseable line {line:?} ({other:?}) in\n{text}"),
        }
    }
    for (family, kind) in FAMILIES {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family} in\n{text}"
        );
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    for sample in &scrape.samples {
        for label in ["client", "server_address", "user", "addr", "ip"] {
            assert!(
                sample.labels.get(label).is_none(),
                "unbounded label {label}: {sample:?}"
            );
        }
    }
    Exposition { text, scrape }
}

impl Exposition {
    /// The value of the one sample `name{labels}` (exactly these labels).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self
            .scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels_equal(&s.labels, labels))
            .filter_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
            .collect();
        match matching[..] {
            [v] => v,
            _ => panic!(
                "{} samples {name}{labels:?} in\n{}",
                matching.len(),
                self.text
            ),
        }
    }

    /// The sum over every label set of `name`.
    fn sum(&self, name: &str) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
            .sum()
    }

    /// The `(le, cumulative count)` buckets of histogram `name`, by bound.
    fn histogram(&self, name: &str) -> Vec<(f64, f64)> {
        let sample = self
            .scrape
            .samples
            .iter()
            .find(|s| s.metric == name && matches!(s.value, Value::Histogram(_)))
            .unwrap_or_else(|| panic!("no histogram {name} in\n{}", self.text));
        let Value::Histogram(buckets) = &sample.value else {
            unreachable!()
        };
        let mut buckets: Vec<(f64, f64)> = buckets.iter().map(|b| (b.less_than, b.count)).collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

fn labels_equal(have: &prometheus_parse::Labels, want: &[(&str, &str)]) -> bool {
    have.len() == want.len() && want.iter().all(|(k, v)| have.get(k) == Some(*v))
}

/// One HTTP/1.1 exchange: (status line, lower-cased headers, body). The server closes.
fn http(addr: SocketAddr, request: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, SETTLE).unwrap();
    stream.set_read_timeout(Some(SETTLE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    if let Some(length) = headers.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length: ")
            .map(str::to_owned)
    }) {
        if !request.starts_with("HEAD ") {
            assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{response}");
        }
    }
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}
