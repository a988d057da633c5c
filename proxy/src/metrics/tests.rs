//! The exposition's exact text: names, label sets, histogram buckets, the certificate source.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// The sample lines (no comments) of `metrics`' exposition starting with `prefix`.
fn samples(metrics: &Metrics, prefix: &str) -> Vec<String> {
    metrics
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn fresh_registry_shows_every_series_at_zero() {
    let text = Metrics::new().encode();
    let expected = "\
# HELP popgate_connections Connections accepted from the kernel, by how each ended up.
# TYPE popgate_connections counter
popgate_connections_total{result=\"accepted\"} 0
popgate_connections_total{result=\"no_policy\"} 0
popgate_connections_total{result=\"limit\"} 0
popgate_connections_total{result=\"loop\"} 0
popgate_connections_total{result=\"upstream_unavailable\"} 0
popgate_connections_total{result=\"tls_refused\"} 0
popgate_connections_total{result=\"policy_refused\"} 0
# HELP popgate_sessions_active Connections being handled now.
# TYPE popgate_sessions_active gauge
popgate_sessions_active 0
";
    // Family series come out in hash order; compare as sets per family.
    let got: std::collections::BTreeSet<&str> = text.lines().collect();
    for line in expected.lines() {
        assert!(got.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    for family in [
        "popgate_messages_total{verdict=",
        "popgate_bytes_total{direction=",
        "popgate_tls_handshake_failures_total{",
        "popgate_config_reloads_total{result=",
    ] {
        assert!(
            text.lines()
                .filter(|l| l.starts_with(family))
                .all(|l| l.ends_with(" 0")),
            "{family} not all zero in\n{text}"
        );
    }
    assert_eq!(samples(&Metrics::new(), "popgate_messages_total").len(), 7);
    assert_eq!(
        samples(&Metrics::new(), "popgate_tls_handshake_failures_total").len(),
        8
    );
    assert!(
        text.contains("\npopgate_certificates_minted_total 0\n"),
        "{text}"
    );
    assert!(
        text.contains("\npopgate_certificate_cache_hits_total 0\n"),
        "{text}"
    );
}

#[test]
fn every_spec_name_is_typed_once() {
    // Families labelled by configuration (policy, certificate role) appear with their
    // first series.
    let text = Metrics::new().encode();
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    assert_eq!(
        types,
        [
            "# TYPE popgate_connections counter",
            "# TYPE popgate_sessions_active gauge",
            "# TYPE popgate_messages counter",
            "# TYPE popgate_bytes counter",
            "# TYPE popgate_tls_handshake_failures counter",
            "# TYPE popgate_certificates_minted counter",
            "# TYPE popgate_certificate_cache_hits counter",
            "# TYPE popgate_inspection_seconds histogram",
            "# TYPE popgate_config_reloads counter",
            "# TYPE popgate_build_info gauge",
            "# TYPE popgate_config_generation gauge",
            "# TYPE popgate_quarantine_bytes gauge",
            "# TYPE popgate_spool_bytes gauge",
            "# TYPE popgate_log_lines_dropped counter",
            "# TYPE popgate_logins counter",
        ]
    );
}

#[test]
fn counters_carry_their_bounded_labels() {
    let metrics = Metrics::new();
    metrics.connection(ConnectionResult::Accepted);
    metrics.connection(ConnectionResult::Accepted);
    metrics.connection(ConnectionResult::UpstreamUnavailable);
    metrics.message(MessageVerdict::from_name("allow"));
    metrics.message(MessageVerdict::from_name("strip"));
    metrics.message(MessageVerdict::from_name("user@example.com"));
    metrics.bytes(Direction::ClientToServer, 10);
    metrics.bytes(Direction::ServerToClient, 5000);
    metrics.bytes(Direction::ServerToClient, 0);
    metrics.tls_failure(TlsSide::Server, TlsFailureReason::Certificate);
    metrics.tls_failure(crate::pop3::Side::Client.into(), TlsFailureReason::Timeout);
    metrics.reload(ReloadResult::Failed);
    let text = metrics.encode();
    for line in [
        "popgate_connections_total{result=\"accepted\"} 2",
        "popgate_connections_total{result=\"upstream_unavailable\"} 1",
        "popgate_connections_total{result=\"limit\"} 0",
        "popgate_messages_total{verdict=\"allow\"} 1",
        "popgate_messages_total{verdict=\"strip\"} 1",
        "popgate_messages_total{verdict=\"other\"} 1",
        "popgate_bytes_total{direction=\"client_to_server\"} 10",
        "popgate_bytes_total{direction=\"server_to_client\"} 5000",
        "popgate_tls_handshake_failures_total{side=\"server\",reason=\"certificate\"} 1",
        "popgate_tls_handshake_failures_total{side=\"client\",reason=\"timeout\"} 1",
        "popgate_tls_handshake_failures_total{side=\"client\",reason=\"certificate\"} 0",
        "popgate_config_reloads_total{result=\"failed\"} 1",
        "popgate_config_reloads_total{result=\"ok\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("example.com"), "{text}");
}

#[test]
fn session_guard_counts_while_it_lives() {
    let metrics = Metrics::new();
    let first = metrics.session_started();
    let second = metrics.session_started();
    assert_eq!(
        samples(&metrics, "popgate_sessions_active"),
        ["popgate_sessions_active 2"]
    );
    drop(first);
    assert_eq!(
        samples(&metrics, "popgate_sessions_active"),
        ["popgate_sessions_active 1"]
    );
    drop(second);
    assert_eq!(
        samples(&metrics, "popgate_sessions_active"),
        ["popgate_sessions_active 0"]
    );
}

#[test]
fn inspection_histogram_has_cumulative_buckets_sum_and_count() {
    let metrics = Metrics::new();
    metrics.inspection(Duration::from_micros(500)); // 0.0005 s: first bucket
    metrics.inspection(Duration::from_millis(20)); // 0.02 s: le=0.025
    metrics.inspection(Duration::from_secs(60)); // past the last bound: +Inf only
    let got = samples(&metrics, "popgate_inspection_seconds");
    let expected = [
        "popgate_inspection_seconds_sum 60.0205",
        "popgate_inspection_seconds_count 3",
        "popgate_inspection_seconds_bucket{le=\"0.001\"} 1",
        "popgate_inspection_seconds_bucket{le=\"0.0025\"} 1",
        "popgate_inspection_seconds_bucket{le=\"0.005\"} 1",
        "popgate_inspection_seconds_bucket{le=\"0.01\"} 1",
        "popgate_inspection_seconds_bucket{le=\"0.025\"} 2",
        "popgate_inspection_seconds_bucket{le=\"0.05\"} 2",
        "popgate_inspection_seconds_bucket{le=\"0.1\"} 2",
        "popgate_inspection_seconds_bucket{le=\"0.25\"} 2",
        "popgate_inspection_seconds_bucket{le=\"0.5\"} 2",
        "popgate_inspection_seconds_bucket{le=\"1.0\"} 2",
        "popgate_inspection_seconds_bucket{le=\"2.5\"} 2",
        "popgate_inspection_seconds_bucket{le=\"5.0\"} 2",
        "popgate_inspection_seconds_bucket{le=\"10.0\"} 2",
        "popgate_inspection_seconds_bucket{le=\"30.0\"} 2",
        "popgate_inspection_seconds_bucket{le=\"+Inf\"} 3",
    ];
    assert_eq!(got, expected);
}

#[derive(Default)]
struct FakeCache {
    minted: AtomicU64,
    hits: AtomicU64,
}

impl CertificateCounts for FakeCache {
    fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }
    fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

#[test]
fn certificate_source_is_read_at_scrape_time_and_stays_monotonic() {
    let metrics = Metrics::new();
    let cache = Arc::new(FakeCache::default());
    cache.minted.store(4, Ordering::Relaxed); // before registration: not ours to count
    metrics.certificate_source(cache.clone());
    cache.minted.store(7, Ordering::Relaxed);
    cache.hits.store(2, Ordering::Relaxed);
    metrics.minted(1); // counted directly, added to the source's
    metrics.cache_hit();
    assert_eq!(
        samples(&metrics, "popgate_certificate"),
        [
            "popgate_certificates_minted_total 4",
            "popgate_certificate_cache_hits_total 3"
        ]
    );
    // A replacement cache starting from zero adds to, never resets, the counters.
    cache.minted.store(8, Ordering::Relaxed);
    let fresh = Arc::new(FakeCache::default());
    metrics.certificate_source(fresh.clone());
    fresh.hits.store(5, Ordering::Relaxed);
    assert_eq!(
        samples(&metrics, "popgate_certificate"),
        [
            "popgate_certificates_minted_total 5",
            "popgate_certificate_cache_hits_total 8"
        ]
    );
    // A source that goes backwards (reset) counts from zero again.
    fresh.hits.store(1, Ordering::Relaxed);
    assert_eq!(
        samples(&metrics, "popgate_certificate_cache_hits"),
        ["popgate_certificate_cache_hits_total 9"]
    );
}

#[test]
fn global_functions_reach_the_global_registry() {
    // Only increments: other tests in this process may use the global too.
    let before = samples(global(), "popgate_config_reloads_total{result=\"ok\"}");
    reload(true);
    let after = samples(global(), "popgate_config_reloads_total{result=\"ok\"}");
    let count = |v: &[String]| -> u64 { v[0].rsplit(' ').next().unwrap().parse().unwrap() };
    assert_eq!(count(&after), count(&before) + 1);
}
