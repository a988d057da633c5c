//! The administrator's metrics of SPEC §7: which configuration is in force, when the
//! certificates expire, how each policy's sessions end, how full the state directories are,
//! how logins go.
//!
//! ```text
//! popgate_config_generation                             metrics::config_generation(n)
//! popgate_certificate_expiry_timestamp_seconds{role}    metrics::certificate_expiry(role, t)
//! popgate_policy_sessions_total{policy,result}          metrics::policy_session(policy, result)
//! popgate_quarantine_bytes, popgate_spool_bytes         metrics::state_bytes(q, s)
//! popgate_logins_total{result}                          metrics::login(ok)
//! popgate_build_info{version}                           always 1
//! popgate_log_lines_dropped_total                       metrics::log_line_dropped()
//! ```
//! Policy names are bounded by the configuration; roles and results are closed sets.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A label set of owned (name, value) pairs.
type Labels = Vec<(String, String)>;

/// The metrics of this file, registered with the others.
#[derive(Debug, Default)]
pub struct AdminMetrics {
    generation: Gauge,
    certificate_expiry: Family<Labels, Gauge>,
    policy_sessions: Family<Labels, Counter>,
    quarantine_bytes: Gauge,
    spool_bytes: Gauge,
    logins: Family<Labels, Counter>,
    build_info: Family<Labels, Gauge>,
    log_lines_dropped: Counter,
}

/// How a login ended, for `popgate_logins_total{result}` (`LoginResult`'s words).
pub const LOGIN_RESULTS: [&str; 3] = ["ok", "failed", "refused_by_policy"];

impl AdminMetrics {
    /// Sets the configuration generation in force.
    pub fn config_generation(&self, generation: u64) {
        self.generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// Sets the `notAfter` (Unix seconds) of the certificate playing `role`.
    pub fn certificate_expiry(&self, role: &'static str, not_after: i64) {
        self.certificate_expiry
            .get_or_create(&vec![("role".to_owned(), role.to_owned())])
            .set(not_after);
    }

    /// Counts a session of `policy` that ended as `result`.
    pub fn policy_session(&self, policy: &str, result: &'static str) {
        let labels = vec![
            ("policy".to_owned(), policy.to_owned()),
            ("result".to_owned(), result.to_owned()),
        ];
        self.policy_sessions.get_or_create(&labels).inc();
    }

    /// Sets the bytes held by the quarantine and the spool.
    pub fn state_bytes(&self, quarantine: u64, spool: u64) {
        self.quarantine_bytes
            .set(i64::try_from(quarantine).unwrap_or(i64::MAX));
        self.spool_bytes
            .set(i64::try_from(spool).unwrap_or(i64::MAX));
    }

    /// Counts a log line dropped because the log writer fell behind.
    pub fn log_line_dropped(&self) {
        self.log_lines_dropped.inc();
    }

    /// Sets the bytes held by the quarantine.
    pub fn quarantine_bytes(&self, bytes: u64) {
        self.quarantine_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Counts a login attempt by how it ended (one of [`LOGIN_RESULTS`]).
    pub fn login(&self, result: &'static str) {
        self.logins
            .get_or_create(&vec![("result".to_owned(), result.to_owned())])
            .inc();
    }

    /// Registers every metric under its SPEC name (`_total` is appended to counters).
    pub fn register(&self, r: &mut Registry) {
        for result in LOGIN_RESULTS {
            drop(
                self.logins
                    .get_or_create(&vec![("result".to_owned(), result.to_owned())]),
            );
        }
        self.build_info
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        r.register(
            "popgate_build_info",
            "Always 1; the label names the running version",
            self.build_info.clone(),
        );
        r.register(
            "popgate_config_generation",
            "Configurations put in force since start (a rejected reload leaves it)",
            self.generation.clone(),
        );
        r.register(
            "popgate_certificate_expiry_timestamp_seconds",
            "notAfter of each certificate popgate presents or signs with, by role",
            self.certificate_expiry.clone(),
        );
        r.register(
            "popgate_policy_sessions",
            "Sessions per policy, by how they ended",
            self.policy_sessions.clone(),
        );
        r.register(
            "popgate_quarantine_bytes",
            "Bytes held in the quarantine",
            self.quarantine_bytes.clone(),
        );
        r.register(
            "popgate_spool_bytes",
            "Bytes held in the spool",
            self.spool_bytes.clone(),
        );
        r.register(
            "popgate_log_lines_dropped",
            "Log lines dropped because the log writer fell behind",
            self.log_lines_dropped.clone(),
        );
        r.register(
            "popgate_logins",
            "Logins the server answered, by result",
            self.logins.clone(),
        );
    }
}
