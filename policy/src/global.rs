//! `Global`: the checked `popgate.json` (interception, listeners, privileges, logging,
//! metrics, limits).
//!
//! A missing `popgate.json` is the same as `{}`: every field has a SPEC default
//! (see `defaults.rs`). Cross-file rules that need the global settings (`interception:
//! none` needs an `upstream`) are checked in `config.rs`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::Checker;
use crate::defaults as d;
use crate::error::ConfigErrorKind;
use crate::raw::{Interception, LogFormat, LogLevel, RawGlobal};

/// Checked global settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    interception: Interception,
    bind_addresses: Vec<IpAddr>,
    upstream_mark: u32,
    /// `upstream_mark` appears in `popgate.json` with interception `none` (then it applies).
    upstream_mark_explicit: bool,
    spoof_client_address: bool,
    user: String,
    group: String,
    log_format: LogFormat,
    log_level: LogLevel,
    metrics_listen: Option<SocketAddr>,
    limits: Limits,
    state: State,
}

/// Checked `state_dir`, `quarantine`, `spool` and `control`: where popgate keeps what it
/// writes, its bounds, and the socket the CLI asks the daemon through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    state_dir: PathBuf,
    quarantine_max_bytes: u64,
    quarantine_max_age: Duration,
    spool_max_bytes: u64,
    control_socket: PathBuf,
    control_group: String,
}

impl Default for State {
    /// SPEC §4's state settings.
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(d::STATE_DIR),
            quarantine_max_bytes: d::QUARANTINE_MAX_BYTES,
            quarantine_max_age: days(d::QUARANTINE_MAX_AGE_DAYS),
            spool_max_bytes: d::SPOOL_MAX_BYTES,
            control_socket: PathBuf::from(d::CONTROL_SOCKET),
            control_group: d::CONTROL_GROUP.to_owned(),
        }
    }
}

impl State {
    /// The directory holding `quarantine/` and `spool/`.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `state_dir/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.state_dir.join("quarantine")
    }

    /// `state_dir/spool`.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }

    /// Total size of the quarantined originals.
    pub fn quarantine_max_bytes(&self) -> u64 {
        self.quarantine_max_bytes
    }

    /// Originals older than this are removed.
    pub fn quarantine_max_age(&self) -> Duration {
        self.quarantine_max_age
    }

    /// Total size of the spool.
    pub fn spool_max_bytes(&self) -> u64 {
        self.spool_max_bytes
    }

    /// The control socket's path.
    pub fn control_socket(&self) -> &Path {
        &self.control_socket
    }

    /// The group owning the control socket.
    pub fn control_group(&self) -> &str {
        &self.control_group
    }

    fn check(raw: &RawGlobal, ck: &mut Checker<'_>) -> Self {
        let mut s = Self::default();
        if let Some(dir) = &raw.state_dir {
            s.state_dir = absolute(ck, ".state_dir", dir, d::STATE_DIR);
        }
        if let Some(q) = &raw.quarantine {
            if let Some(v) = q.max_bytes {
                s.quarantine_max_bytes = ck.range(".quarantine.max_bytes", v, 1, u64::MAX);
            }
            if let Some(v) = q.max_age_days {
                s.quarantine_max_age = days(ck.range(".quarantine.max_age_days", v, 1, 36_500));
            }
        }
        if let Some(v) = raw.spool.as_ref().and_then(|s| s.max_bytes) {
            s.spool_max_bytes = ck.range(".spool.max_bytes", v, 1, u64::MAX);
        }
        if let Some(control) = &raw.control {
            if let Some(socket) = &control.socket {
                s.control_socket = absolute(ck, ".control.socket", socket, d::CONTROL_SOCKET);
            }
            s.control_group = account(
                ck,
                ".control.group",
                control.group.clone(),
                d::CONTROL_GROUP,
            );
        }
        s
    }
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

/// A path that must be absolute (the daemon's working directory is not the admin's).
fn absolute(ck: &mut Checker<'_>, path: &str, value: &str, default: &str) -> PathBuf {
    let candidate = PathBuf::from(value);
    if candidate.is_absolute() {
        candidate
    } else {
        ck.error(
            path,
            ConfigErrorKind::RelativePath {
                value: value.to_owned(),
            },
        );
        PathBuf::from(default)
    }
}

/// Checked `limits`: connection caps and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_connections: u32,
    max_connections_per_client: u32,
    client_ipv6_prefix: u8,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    shutdown_grace: Duration,
}

impl Default for Global {
    /// The settings of an empty (or absent) `popgate.json`.
    fn default() -> Self {
        Self {
            interception: d::INTERCEPTION,
            bind_addresses: d::BIND_ADDRESSES.to_vec(),
            upstream_mark: d::UPSTREAM_MARK,
            upstream_mark_explicit: false,
            spoof_client_address: d::SPOOF_CLIENT_ADDRESS,
            user: d::USER.to_owned(),
            group: d::GROUP.to_owned(),
            log_format: d::LOG_FORMAT,
            log_level: d::LOG_LEVEL,
            metrics_listen: None,
            limits: Limits::default(),
            state: State::default(),
        }
    }
}

impl Default for Limits {
    /// SPEC §4's limits.
    fn default() -> Self {
        Self {
            max_connections: d::MAX_CONNECTIONS,
            max_connections_per_client: d::MAX_CONNECTIONS_PER_CLIENT,
            client_ipv6_prefix: d::CLIENT_IPV6_PREFIX,
            handshake_timeout: d::HANDSHAKE_TIMEOUT,
            idle_timeout: d::IDLE_TIMEOUT,
            shutdown_grace: d::SHUTDOWN_GRACE,
        }
    }
}

impl Global {
    /// How connections reach popgate.
    pub fn interception(&self) -> Interception {
        self.interception
    }

    /// Addresses the listeners bind (`::` with `IPV6_V6ONLY`).
    pub fn bind_addresses(&self) -> &[IpAddr] {
        &self.bind_addresses
    }

    /// `SO_MARK` for upstream sockets; 0 (only with interception `none`) means "set none".
    pub fn upstream_mark(&self) -> u32 {
        self.upstream_mark
    }

    /// The `SO_MARK` upstream sockets carry, if any: `upstream_mark` (default 0x2) in
    /// `tproxy`/`redirect` mode; with `none` only a mark set explicitly in `popgate.json`
    /// (an explicit proxy usually needs none, but an administrator who sets one means it).
    /// 0 means no mark.
    pub fn upstream_socket_mark(&self) -> Option<u32> {
        let applies = self.interception != Interception::None || self.upstream_mark_explicit;
        (applies && self.upstream_mark != 0).then_some(self.upstream_mark)
    }

    /// Upstream connections leave from the client's address (only with `tproxy`).
    pub fn spoof_client_address(&self) -> bool {
        self.spoof_client_address
    }

    /// User to run as after binding, when started as root.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Group to run as after binding, when started as root.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Log line format.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// Minimum log level.
    pub fn log_level(&self) -> LogLevel {
        self.log_level
    }

    /// Where `/metrics` listens; `None` means no metrics endpoint.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics_listen
    }

    /// Connection caps and timeouts.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// State directory, quarantine and spool bounds, control socket.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Where popgate keeps its state: `spool/` and `quarantine/` (SPEC §4).
    pub fn state_dir(&self) -> &Path {
        self.state.state_dir()
    }

    /// Bytes the spool (`state_dir/spool`) may hold at once; a body that would pass it is
    /// withheld with `-ERR [SYS/TEMP]` and stays on the server.
    pub fn spool_max_bytes(&self) -> u64 {
        self.state.spool_max_bytes()
    }

    /// Checks a parsed `popgate.json`, recording every problem.
    pub(crate) fn check(raw: RawGlobal, ck: &mut Checker<'_>) -> Self {
        let mut g = Self {
            state: State::check(&raw, ck),
            ..Self::default()
        };
        if let Some(i) = raw.interception {
            g.interception = i;
        }
        if let Some(addresses) = raw.bind_addresses {
            if addresses.is_empty() {
                ck.error(".bind_addresses", ConfigErrorKind::EmptyList);
            }
            g.bind_addresses = addresses
                .iter()
                .enumerate()
                .filter_map(|(i, text)| {
                    let parsed = text.trim().parse::<IpAddr>().ok();
                    if parsed.is_none() {
                        let kind = ConfigErrorKind::BadIpAddress {
                            value: text.clone(),
                        };
                        ck.error(format!(".bind_addresses[{i}]"), kind);
                    }
                    parsed
                })
                .collect();
        }
        if let Some(mark) = raw.upstream_mark {
            if mark == 0 && g.interception != Interception::None {
                ck.error(".upstream_mark", ConfigErrorKind::ZeroMark);
            }
            g.upstream_mark = mark;
            // Only `none` tells an explicit mark from the default; recording it only there
            // keeps a file that spells out the defaults equal to the defaults.
            g.upstream_mark_explicit = g.interception == Interception::None;
        }
        if let Some(spoof) = raw.spoof_client_address {
            if spoof && g.interception != Interception::Tproxy {
                let kind = ConfigErrorKind::SpoofNeedsTproxy {
                    interception: g.interception,
                };
                ck.error(".spoof_client_address", kind);
            }
            g.spoof_client_address = spoof;
        }
        g.user = account(ck, ".user", raw.user, d::USER);
        g.group = account(ck, ".group", raw.group, d::GROUP);
        if let Some(log) = raw.log {
            g.log_format = log.format.unwrap_or(d::LOG_FORMAT);
            g.log_level = log.level.unwrap_or(d::LOG_LEVEL);
        }
        if let Some(listen) = raw.metrics.and_then(|m| m.listen) {
            match listen.trim().parse::<SocketAddr>() {
                Ok(addr) => g.metrics_listen = Some(addr),
                Err(_) => ck.error(
                    ".metrics.listen",
                    ConfigErrorKind::BadSocketAddress { value: listen },
                ),
            }
        }
        if let Some(limits) = raw.limits {
            let l = &mut g.limits;
            if let Some(v) = limits.max_connections {
                l.max_connections =
                    ck.range(".limits.max_connections", v, 1, d::MAX_CONNECTIONS_LIMIT);
            }
            if let Some(v) = limits.max_connections_per_client {
                let path = ".limits.max_connections_per_client";
                l.max_connections_per_client = ck.range(path, v, 1, l.max_connections);
            }
            if let Some(v) = limits.client_ipv6_prefix {
                l.client_ipv6_prefix = ck.range(".limits.client_ipv6_prefix", v, 0, 128);
            }
            let secs = |ck: &mut Checker<'_>, path: &str, v: Option<u64>, min, default| {
                v.map_or(default, |s| {
                    Duration::from_secs(ck.range(path, s, min, d::MAX_TIMEOUT_S))
                })
            };
            let path = ".limits.handshake_timeout_s";
            l.handshake_timeout =
                secs(ck, path, limits.handshake_timeout_s, 1, l.handshake_timeout);
            let path = ".limits.idle_timeout_s";
            l.idle_timeout = secs(ck, path, limits.idle_timeout_s, 1, l.idle_timeout);
            let path = ".limits.shutdown_grace_s";
            l.shutdown_grace = secs(ck, path, limits.shutdown_grace_s, 0, l.shutdown_grace);
        }
        g
    }
}

impl Limits {
    /// Concurrent sessions in total.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Concurrent sessions per client address.
    pub fn max_connections_per_client(&self) -> u32 {
        self.max_connections_per_client
    }

    /// IPv6 clients are counted per prefix of this many bits for
    /// `max_connections_per_client` (IPv4 clients per address).
    pub fn client_ipv6_prefix(&self) -> u8 {
        self.client_ipv6_prefix
    }

    /// Bounds the upstream connect, the greeting and each TLS handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Default silent-peer timeout (an action's `general.idle_timeout_s` overrides it).
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Drain time after `SIGTERM`.
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }
}

/// A user or group name: the default when absent, never empty.
fn account(ck: &mut Checker<'_>, path: &str, value: Option<String>, default: &str) -> String {
    match value {
        Some(name) if name.trim().is_empty() => {
            ck.error(path, ConfigErrorKind::Empty);
            default.to_owned()
        }
        Some(name) => name,
        None => default.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Source, Sources};
    use crate::raw::Interception;

    fn global(json: &str) -> Result<super::Global, Vec<String>> {
        let sources = Sources {
            global: Some(Source::new("popgate.json", json)),
            policies: Vec::new(),
            actions: Vec::new(),
            tls_profiles: Vec::new(),
        };
        Config::from_sources(&sources)
            .map(|c| c.global().clone())
            .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn client_ipv6_prefix_defaults_to_64_and_takes_0_to_128() {
        let g = global("{}").unwrap();
        assert_eq!(g.limits().client_ipv6_prefix(), 64);
        for ok in [0u8, 48, 128] {
            let json = format!(r#"{{"limits": {{"client_ipv6_prefix": {ok}}}}}"#);
            assert_eq!(global(&json).unwrap().limits().client_ipv6_prefix(), ok);
        }
        assert_eq!(
            global(r#"{"limits": {"client_ipv6_prefix": 129}}"#).unwrap_err(),
            ["popgate.json: .limits.client_ipv6_prefix: 129 is out of range 0 to 128"]
        );
        assert!(global(r#"{"limits": {"client_ipv6_prefix": -1}}"#).is_err());
    }

    #[test]
    fn upstream_mark_applies_with_none_only_when_explicit() {
        let none = |extra: &str| {
            let g = global(&format!(r#"{{"interception": "none"{extra}}}"#)).unwrap();
            assert_eq!(g.interception(), Interception::None);
            g.upstream_socket_mark()
        };
        assert_eq!(none(""), None);
        assert_eq!(none(r#", "upstream_mark": 7"#), Some(7));
        assert_eq!(none(r#", "upstream_mark": 2"#), Some(2));
        assert_eq!(none(r#", "upstream_mark": 0"#), None);
        for mode in ["tproxy", "redirect"] {
            let g = global(&format!(r#"{{"interception": "{mode}"}}"#)).unwrap();
            assert_eq!(g.upstream_socket_mark(), Some(2), "{mode}");
            let g = global(&format!(
                r#"{{"interception": "{mode}", "upstream_mark": 9}}"#
            ));
            assert_eq!(g.unwrap().upstream_socket_mark(), Some(9), "{mode}");
        }
    }
}
