//! Prometheus metrics (SPEC §7, STYLE §6): one process-wide registry and the small typed
//! functions the rest of popgate calls to count things.
//!
//! ```text
//! popgate_connections_total{result}                 metrics::connection(ConnectionResult::..)
//! popgate_sessions_active                           metrics::session_started() -> guard
//! popgate_messages_total{verdict}                   metrics::message("allow")
//! popgate_bytes_total{direction}                    metrics::bytes(Direction::.., n)
//! popgate_tls_handshake_failures_total{side,reason} metrics::tls_failure(side, reason)
//! popgate_certificates_minted_total                 metrics::minted(n) / certificate_source
//! popgate_certificate_cache_hits_total              metrics::cache_hit() / certificate_source
//! popgate_inspection_seconds                        metrics::inspection(duration)
//! popgate_config_reloads_total{result}              metrics::reload(ok)
//! ```
//!
//! Every label value is a closed enum (`labels.rs`): never an address or a user. Every
//! labelled series exists from the start at 0, so `rate()` and alerts see it before the first
//! event. Counting is a relaxed atomic add, cheap enough for the byte pump.
//!
//! The `/metrics` endpoint itself (a small HTTP/1.1 responder, no hyper) is in `http.rs`;
//! [`serve`] starts it on `metrics.listen`.

mod admin;
mod http;
mod labels;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use http::{serve, MetricsServer};
pub use labels::{
    ConnectionResult, Direction, MessageVerdict, ReloadResult, TlsFailureReason, TlsSide,
};
use labels::{DirectionLabel, ReloadLabel, ResultLabel, TlsFailureLabels, VerdictLabel};

/// Upper bounds (seconds) of `popgate_inspection_seconds`: a MIME walk takes milliseconds, a
/// clamd scan of a large message seconds, and `antivirus.timeout_s` defaults to 30.
pub const INSPECTION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `Content-Type` of the exposition: OpenMetrics text (Prometheus negotiates it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counts of the certificate cache, read at scrape time. Implement it for
/// `popgate_ca::CertCache` (its `minted()` and `hits()`) and hand the cache to
/// [`certificate_source`].
pub trait CertificateCounts: Send + Sync {
    /// Leaves minted so far.
    fn minted(&self) -> u64;
    /// Leaves served from the cache so far.
    fn hits(&self) -> u64;
}

/// Counts a connection by how it ended up; call exactly once per accepted socket.
pub fn connection(result: ConnectionResult) {
    global().connection(result);
}

/// Counts a session as active until the returned guard is dropped.
#[must_use = "the session counts as active only while the guard lives"]
pub fn session_started() -> SessionGuard {
    global().session_started()
}

/// Counts `n` bytes read from one peer.
pub fn bytes(direction: Direction, n: u64) {
    global().bytes(direction, n);
}

/// Counts an inspected message by its verdict's name (`Verdict::as_str()`); a name outside
/// the known set counts as `other`.
pub fn message(verdict: &str) {
    global().message(MessageVerdict::from_name(verdict));
}

/// Counts a failed TLS handshake (or a refused certificate) on one leg.
pub fn tls_failure(side: impl Into<TlsSide>, reason: TlsFailureReason) {
    global().tls_failure(side.into(), reason);
}

/// Counts `n` freshly minted leaf certificates.
pub fn minted(n: u64) {
    global().minted.inc_by(n);
}

/// Counts a leaf certificate served from the cache.
pub fn cache_hit() {
    global().cache_hits.inc();
}

/// Reads the certificate cache's own counters at each scrape (added to [`minted`] and
/// [`cache_hit`]). A later call replaces the source; counts never go backwards.
pub fn certificate_source(source: Arc<dyn CertificateCounts>) {
    global().certificate_source(source);
}

/// Records how long one message's inspection took.
pub fn inspection(duration: Duration) {
    global().inspection.observe(duration.as_secs_f64());
}

/// Counts a configuration reload, applied (`ok`) or rejected.
pub fn reload(ok: bool) {
    global().reload(if ok {
        ReloadResult::Ok
    } else {
        ReloadResult::Failed
    });
}

/// Sets `popgate_config_generation`.
pub fn config_generation(generation: u64) {
    global().admin.config_generation(generation);
}

/// Sets `popgate_certificate_expiry_timestamp_seconds{role}` (Unix seconds).
pub fn certificate_expiry(role: &'static str, not_after: i64) {
    global().admin.certificate_expiry(role, not_after);
}

/// Counts a session of `policy` ending as `result` (`popgate_policy_sessions_total`).
pub fn policy_session(policy: &str, result: &'static str) {
    global().admin.policy_session(policy, result);
}

/// Sets `popgate_quarantine_bytes` and `popgate_spool_bytes`.
pub fn state_bytes(quarantine: u64, spool: u64) {
    global().admin.state_bytes(quarantine, spool);
}

/// Reads the `notAfter` of the certificates in `dir/pki/` into
/// `popgate_certificate_expiry_timestamp_seconds{role}` (roles `proxy_authority`,
/// `untrusted_ca`, `proxy_server`; a missing or unreadable file sets nothing).
pub fn certificate_expiry_from(dir: &std::path::Path) {
    let now = time::OffsetDateTime::now_utc();
    for (role, file) in [
        ("proxy_authority", "pki/ca.crt"),
        ("untrusted_ca", "pki/untrusted-ca.crt"),
        ("proxy_server", "pki/server.crt"),
    ] {
        let info = std::fs::read(dir.join(file))
            .ok()
            .and_then(|pem| popgate_ca::CertInfo::from_pem(&pem, now).ok());
        if let Some(info) = info {
            certificate_expiry(role, info.not_after.unix_timestamp());
        }
    }
}

/// Counts a log line dropped because the writer fell behind.
pub fn log_line_dropped() {
    global().admin.log_line_dropped();
}

/// Sets `popgate_quarantine_bytes`.
pub fn quarantine_bytes(bytes: u64) {
    global().admin.quarantine_bytes(bytes);
}

/// Counts a login attempt (`popgate_logins_total{result}`: `ok`, `failed`,
/// `refused_by_policy`).
pub fn login(result: &'static str) {
    global().admin.login(result);
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Keeps `popgate_sessions_active` one higher while it lives.
#[derive(Debug)]
pub struct SessionGuard {
    gauge: Gauge,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// A registry with popgate's metrics. The process uses [`global`]; tests make their own.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: Family<ResultLabel, Counter>,
    sessions_active: Gauge,
    messages: Family<VerdictLabel, Counter>,
    bytes: Family<DirectionLabel, Counter>,
    tls_failures: Family<TlsFailureLabels, Counter>,
    minted: Counter,
    cache_hits: Counter,
    inspection: Histogram,
    reloads: Family<ReloadLabel, Counter>,
    certificates: Mutex<Option<SourceState>>,
    /// SPEC §7's administrator metrics (`admin.rs`).
    admin: admin::AdminMetrics,
}

/// A certificate source and what of it has already been added to the counters.
struct SourceState {
    source: Arc<dyn CertificateCounts>,
    minted: u64,
    hits: u64,
}

impl std::fmt::Debug for SourceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceState")
            .field("minted", &self.minted)
            .field("hits", &self.hits)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, with every labelled series at 0.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            connections: Family::default(),
            sessions_active: Gauge::default(),
            messages: Family::default(),
            bytes: Family::default(),
            tls_failures: Family::default(),
            minted: Counter::default(),
            cache_hits: Counter::default(),
            inspection: Histogram::new(INSPECTION_BUCKETS),
            reloads: Family::default(),
            certificates: Mutex::new(None),
            admin: admin::AdminMetrics::default(),
        };
        metrics.precreate_series();
        metrics.register()
    }

    /// Counts a connection by how it ended up.
    pub fn connection(&self, result: ConnectionResult) {
        self.connections
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts a session as active until the guard is dropped.
    pub fn session_started(&self) -> SessionGuard {
        self.sessions_active.inc();
        SessionGuard {
            gauge: self.sessions_active.clone(),
        }
    }

    /// Counts `n` bytes in `direction`.
    pub fn bytes(&self, direction: Direction, n: u64) {
        if n > 0 {
            self.bytes
                .get_or_create(&DirectionLabel { direction })
                .inc_by(n);
        }
    }

    /// Counts an inspected message.
    pub fn message(&self, verdict: MessageVerdict) {
        self.messages.get_or_create(&VerdictLabel { verdict }).inc();
    }

    /// Counts a failed TLS handshake.
    pub fn tls_failure(&self, side: TlsSide, reason: TlsFailureReason) {
        self.tls_failures
            .get_or_create(&TlsFailureLabels { side, reason })
            .inc();
    }

    /// Counts a reload.
    pub fn reload(&self, result: ReloadResult) {
        self.reloads.get_or_create(&ReloadLabel { result }).inc();
    }

    /// Counts `n` minted leaves.
    pub fn minted(&self, n: u64) {
        self.minted.inc_by(n);
    }

    /// Counts a cache hit.
    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    /// Records one inspection's duration.
    pub fn inspection(&self, duration: Duration) {
        self.inspection.observe(duration.as_secs_f64());
    }

    /// Reads `source` at each scrape from now on; what it counted before this call is
    /// not added (it happened before we looked).
    pub fn certificate_source(&self, source: Arc<dyn CertificateCounts>) {
        let mut slot = self
            .certificates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(old) = slot.as_mut() {
            self.absorb(old);
        }
        *slot = Some(SourceState {
            minted: source.minted(),
            hits: source.hits(),
            source,
        });
    }

    /// The OpenMetrics text exposition, certificate source read first.
    pub fn encode(&self) -> String {
        if let Some(state) = self
            .certificates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_mut()
        {
            self.absorb(state);
        }
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; the encoder only propagates the writer's errors.
        if text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Adds what `state`'s source counted since the last look. A source that went
    /// backwards (it was reset) counts from zero again, so the counters stay monotonic.
    fn absorb(&self, state: &mut SourceState) {
        let (minted, hits) = (state.source.minted(), state.source.hits());
        let since = |now: u64, seen: u64| if now >= seen { now - seen } else { now };
        self.minted.inc_by(since(minted, state.minted));
        self.cache_hits.inc_by(since(hits, state.hits));
        state.minted = minted;
        state.hits = hits;
    }

    fn precreate_series(&self) {
        // `get_or_create` returns a read guard; dropping it at once is all we want.
        for result in ConnectionResult::ALL {
            drop(self.connections.get_or_create(&ResultLabel { result }));
        }
        for verdict in MessageVerdict::ALL {
            drop(self.messages.get_or_create(&VerdictLabel { verdict }));
        }
        for direction in Direction::ALL {
            drop(self.bytes.get_or_create(&DirectionLabel { direction }));
        }
        for side in TlsSide::ALL {
            for reason in TlsFailureReason::ALL {
                let labels = TlsFailureLabels { side, reason };
                drop(self.tls_failures.get_or_create(&labels));
            }
        }
        for result in ReloadResult::ALL {
            drop(self.reloads.get_or_create(&ReloadLabel { result }));
        }
    }

    /// Registers the metrics under their SPEC names; the encoder appends `_total` to
    /// counters, so they are registered without it.
    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "popgate_connections",
            "Connections accepted from the kernel, by how each ended up",
            self.connections.clone(),
        );
        r.register(
            "popgate_sessions_active",
            "Connections being handled now",
            self.sessions_active.clone(),
        );
        r.register(
            "popgate_messages",
            "Messages inspected, by verdict",
            self.messages.clone(),
        );
        r.register(
            "popgate_bytes",
            "Bytes read from clients and servers",
            self.bytes.clone(),
        );
        r.register(
            "popgate_tls_handshake_failures",
            "TLS handshakes that failed or ended in a refused certificate, by leg and reason",
            self.tls_failures.clone(),
        );
        r.register(
            "popgate_certificates_minted",
            "Leaf certificates minted by the Proxy Authority",
            self.minted.clone(),
        );
        r.register(
            "popgate_certificate_cache_hits",
            "Leaf certificates served from the cache",
            self.cache_hits.clone(),
        );
        r.register(
            "popgate_inspection_seconds",
            "Time spent inspecting one message",
            self.inspection.clone(),
        );
        r.register(
            "popgate_config_reloads",
            "Configuration reloads, applied or rejected",
            self.reloads.clone(),
        );
        self.admin.register(r);
        self
    }
}

#[cfg(test)]
mod tests;
