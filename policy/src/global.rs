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
use crate::raw::{Interception, LogFormat, LogLevel, RawGlobal, RawLimits};

/// Checked global settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    interception: Interception,
    bind_addresses: Vec<IpAddr>,
    upstream_mark: u32,
    spoof_client_address: bool,
    user: String,
    group: String,
    log_format: LogFormat,
    log_level: LogLevel,
    metrics_listen: Option<SocketAddr>,
    limits: Limits,
    state_dir: PathBuf,
    spool_max_bytes: u64,
}

/// Checked `limits`: connection caps and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_connections: u32,
    max_connections_per_client: u32,
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
            spoof_client_address: d::SPOOF_CLIENT_ADDRESS,
            user: d::USER.to_owned(),
            group: d::GROUP.to_owned(),
            log_format: d::LOG_FORMAT,
            log_level: d::LOG_LEVEL,
            metrics_listen: None,
            limits: Limits::default(),
            state_dir: PathBuf::from(d::STATE_DIR),
            spool_max_bytes: d::SPOOL_MAX_BYTES,
        }
    }
}

impl Default for Limits {
    /// SPEC §4's limits.
    fn default() -> Self {
        Self {
            max_connections: d::MAX_CONNECTIONS,
            max_connections_per_client: d::MAX_CONNECTIONS_PER_CLIENT,
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

    /// Where popgate keeps its state: `spool/` and `quarantine/` (SPEC §4).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Bytes the spool (`state_dir/spool`) may hold at once; a body that would pass it is
    /// withheld with `-ERR [SYS/TEMP]` and stays on the server.
    pub fn spool_max_bytes(&self) -> u64 {
        self.spool_max_bytes
    }

    /// Checks a parsed `popgate.json`, recording every problem.
    pub(crate) fn check(raw: RawGlobal, ck: &mut Checker<'_>) -> Self {
        let mut g = Self::default();
        if let Some(i) = raw.interception {
            g.interception = i;
        }
        if let Some(addresses) = raw.bind_addresses {
            g.bind_addresses = bind_addresses(ck, &addresses);
        }
        if let Some(mark) = raw.upstream_mark {
            if mark == 0 && g.interception != Interception::None {
                ck.error(".upstream_mark", ConfigErrorKind::ZeroMark);
            }
            g.upstream_mark = mark;
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
        if let Some(dir) = raw.state_dir {
            if Path::new(&dir).is_absolute() {
                g.state_dir = PathBuf::from(dir);
            } else {
                ck.error(".state_dir", ConfigErrorKind::RelativePath { value: dir });
            }
        }
        if let Some(max) = raw.spool.and_then(|s| s.max_bytes) {
            g.spool_max_bytes = max;
        }
        if let Some(limits) = raw.limits {
            g.limits = Limits::check(limits, ck);
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

impl Limits {
    /// Checks `limits`, each absent field keeping its SPEC default.
    fn check(limits: RawLimits, ck: &mut Checker<'_>) -> Limits {
        let mut l = Limits::default();
        if let Some(v) = limits.max_connections {
            l.max_connections = ck.range(".limits.max_connections", v, 1, d::MAX_CONNECTIONS_LIMIT);
        }
        if let Some(v) = limits.max_connections_per_client {
            let path = ".limits.max_connections_per_client";
            l.max_connections_per_client = ck.range(path, v, 1, l.max_connections);
        }
        let secs = |ck: &mut Checker<'_>, path: &str, v: Option<u64>, min, default| {
            v.map_or(default, |s| {
                Duration::from_secs(ck.range(path, s, min, d::MAX_TIMEOUT_S))
            })
        };
        let path = ".limits.handshake_timeout_s";
        l.handshake_timeout = secs(ck, path, limits.handshake_timeout_s, 1, l.handshake_timeout);
        let path = ".limits.idle_timeout_s";
        l.idle_timeout = secs(ck, path, limits.idle_timeout_s, 1, l.idle_timeout);
        let path = ".limits.shutdown_grace_s";
        l.shutdown_grace = secs(ck, path, limits.shutdown_grace_s, 0, l.shutdown_grace);
        l
    }
}

/// `bind_addresses`: a non-empty list of IP addresses.
fn bind_addresses(ck: &mut Checker<'_>, addresses: &[String]) -> Vec<IpAddr> {
    if addresses.is_empty() {
        ck.error(".bind_addresses", ConfigErrorKind::EmptyList);
    }
    addresses
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
        .collect()
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
