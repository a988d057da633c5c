//! `Policy`: the checked `policies/NAME.json`: which connections (ports, client and server
//! addresses) get which proxy action, and how TLS is offered to the client.
//!
//! Choosing the policy for a connection is in `select.rs`; rules spanning several policies
//! (duplicate orders, a port used as both kinds) are in `config.rs`.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::action::ProxyAction;
use crate::address::{any_matches_host, any_matches_ip, AddressMatcher};
use crate::check::{Checker, Side};
use crate::defaults as d;
use crate::endpoint::Upstream;
use crate::error::{ConfigErrorKind, RefTarget};
use crate::raw::{Direction, Interception, RawPolicy, RawUpstream, TlsActionKind, TlsSupport};

/// The two kinds of POP3 listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortKind {
    /// Plaintext POP3, with or without STLS (normally 110).
    Pop3,
    /// Implicit TLS (normally 995).
    Pop3s,
}

/// A policy's port numbers (original destination ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pop3: u16,
    pop3s: u16,
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    file: String,
    enabled: bool,
    order: u32,
    direction: Direction,
    from: Vec<AddressMatcher>,
    to: Vec<AddressMatcher>,
    tls_support: TlsSupport,
    ports: Ports,
    upstream: Option<Upstream>,
    starttls_on_pop3: bool,
    action: Arc<ProxyAction>,
}

/// How a policy's `proxy_action` name resolved.
pub(crate) enum ActionLookup {
    /// Defined.
    Found(Arc<ProxyAction>),
    /// Defined by a file that failed to parse: already reported.
    Broken,
    /// Not defined anywhere.
    Missing,
}

impl PortKind {
    /// `pop3` or `pop3s`, as in the `ports` object.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pop3 => "pop3",
            Self::Pop3s => "pop3s",
        }
    }
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Ports {
    /// The plaintext / STLS port.
    pub fn pop3(&self) -> u16 {
        self.pop3
    }

    /// The implicit TLS port.
    pub fn pop3s(&self) -> u16 {
        self.pop3s
    }

    /// The port of `kind`.
    pub fn port(&self, kind: PortKind) -> u16 {
        match kind {
            PortKind::Pop3 => self.pop3,
            PortKind::Pop3s => self.pop3s,
        }
    }
}

impl Policy {
    /// The policy's name (what the CLI uses).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The defining file, relative to the config directory.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the policy takes part in selection.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Precedence: lower first; unique among enabled policies.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Which certificate the client is shown.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Client address entries (never domains).
    pub fn from(&self) -> &[AddressMatcher] {
        &self.from
    }

    /// Server address and name entries.
    pub fn to(&self) -> &[AddressMatcher] {
        &self.to
    }

    /// The TLS support mode.
    pub fn tls_support(&self) -> TlsSupport {
        self.tls_support
    }

    /// Port numbers of both kinds (only those of [`Self::listeners`] are used).
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// The explicit server, if any; it wins over the original destination.
    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_ref()
    }

    /// With `required`: also listen on the pop3 port, refusing all but `CAPA`, `STLS`,
    /// `QUIT`, `NOOP` until TLS is up.
    pub fn starttls_on_pop3(&self) -> bool {
        self.starttls_on_pop3
    }

    /// The proxy action applied.
    pub fn action(&self) -> &Arc<ProxyAction> {
        &self.action
    }

    /// The listeners this policy needs: `disabled` → pop3; `enabled` → pop3 and pop3s;
    /// `required` → pop3s, plus pop3 with `starttls_on_pop3`.
    pub fn listeners(&self) -> Vec<(PortKind, u16)> {
        let pop3 = (PortKind::Pop3, self.ports.pop3);
        let pop3s = (PortKind::Pop3s, self.ports.pop3s);
        match self.tls_support {
            TlsSupport::Disabled => vec![pop3],
            TlsSupport::Enabled => vec![pop3, pop3s],
            TlsSupport::Required if self.starttls_on_pop3 => vec![pop3, pop3s],
            TlsSupport::Required => vec![pop3s],
        }
    }

    /// True when the policy listens on port `port` as `kind`.
    pub fn listens_on(&self, kind: PortKind, port: u16) -> bool {
        self.listeners().contains(&(kind, port))
    }

    /// True when `from` matches the client and `to` matches the server's address or one of
    /// its names (SNI, certificate names).
    pub fn matches_addresses(&self, client: IpAddr, server: IpAddr, names: &[String]) -> bool {
        any_matches_ip(&self.from, client) && any_matches_host(&self.to, server, names)
    }

    /// Checks a parsed policy file, recording every problem. `lookup` resolves action names.
    pub(crate) fn check(
        raw: RawPolicy,
        ck: &mut Checker<'_>,
        interception: Interception,
        lookup: &dyn Fn(&str) -> ActionLookup,
    ) -> Self {
        ck.name(".name", &raw.name);
        let tls_support = raw.tls_support.unwrap_or(d::TLS_SUPPORT);
        let raw_ports = raw.ports.unwrap_or_default();
        let port = |ck: &mut Checker<'_>, path, value: Option<u16>, default| {
            value.map_or(default, |v| ck.range(path, v, 1, u16::MAX))
        };
        let ports = Ports {
            pop3: port(ck, ".ports.pop3", raw_ports.pop3, d::POP3_PORT),
            pop3s: port(ck, ".ports.pop3s", raw_ports.pop3s, d::POP3S_PORT),
        };
        let starttls_on_pop3 = raw.starttls_on_pop3.unwrap_or(d::STARTTLS_ON_POP3);
        if starttls_on_pop3 && tls_support != TlsSupport::Required {
            ck.error(
                ".starttls_on_pop3",
                ConfigErrorKind::StarttlsNeedsRequired { tls_support },
            );
        }
        let both_kinds = tls_support == TlsSupport::Enabled || starttls_on_pop3;
        if both_kinds && ports.pop3 == ports.pop3s {
            ck.error(".ports", ConfigErrorKind::SamePorts { port: ports.pop3 });
        }

        let upstream = raw.upstream.as_ref().and_then(|raw_upstream| {
            let parsed = Upstream::from_raw(raw_upstream);
            if parsed.is_none() {
                let value = match raw_upstream {
                    RawUpstream::Text(text) => text.clone(),
                    RawUpstream::Ports(object) => object.host.clone(),
                };
                ck.error(".upstream", ConfigErrorKind::BadUpstream { value });
            }
            parsed
        });
        if raw.upstream.is_none() && interception == Interception::None {
            ck.error(".upstream", ConfigErrorKind::MissingUpstream);
        }

        let action = match lookup(&raw.proxy_action) {
            ActionLookup::Found(action) => {
                let inspects = action.tls().action() == TlsActionKind::Inspect;
                if inspects && tls_support == TlsSupport::Disabled {
                    let kind = ConfigErrorKind::InspectWithTlsDisabled {
                        action: action.name().to_owned(),
                    };
                    ck.error(".tls_support", kind);
                }
                action
            }
            ActionLookup::Broken => Arc::new(ProxyAction::placeholder()),
            ActionLookup::Missing => {
                let kind = ConfigErrorKind::UnknownReference {
                    target: RefTarget::ProxyAction,
                    name: raw.proxy_action.clone(),
                };
                ck.error(".proxy_action", kind);
                Arc::new(ProxyAction::placeholder())
            }
        };

        Self {
            name: raw.name,
            file: ck.file().to_owned(),
            enabled: raw.enabled.unwrap_or(d::ENABLED),
            order: raw.order,
            direction: raw.direction.unwrap_or(d::DIRECTION),
            from: ck.matchers(".from", &raw.from, Side::Client, true),
            to: ck.matchers(".to", &raw.to, Side::Server, true),
            tls_support,
            ports,
            upstream,
            starttls_on_pop3,
            action,
        }
    }
}
