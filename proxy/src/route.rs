//! From a selected policy to a [`Route`]: the real server, TLS on each leg and the POP3
//! core's configuration. Pure decisions over the prepared configuration; no I/O.
//!
//! The TLS matrix (SPEC §2, §4): the listener kind says how the client arrives (`pop3`
//! plaintext with optional STLS, `pop3s` implicit TLS); the action's `tls.action` says
//! whether popgate terminates TLS (`inspect`), passes it through (`allow`) or refuses it
//! (`drop`); the profile's `upstream_tls` and `force_encrypt` say what happens toward the
//! server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use popgate_policy::{
    Direction, Interception, InvalidCertificate, Policy, PortKind, TlsActionKind, TlsSupport,
    UpstreamPorts, UpstreamTls,
};
use rustls::pki_types::ServerName;
use tokio::sync::watch;

use crate::config::inspection_plan::InspectionPlan;
use crate::config::prepared::{min_version, Prepared};
use crate::net::upstream::ConnectOptions;
use crate::pop3::capa::AuthPolicy;
use crate::pop3::{ClientStls, SessionConfig, UpstreamStls};
use crate::shared::SessionShared;
use crate::tls::legs::{ClientCert, ClientLeg, Fallback, ServerLeg, TlsLegs};

/// Everything decided about a connection before its session starts.
#[derive(Debug, Clone)]
pub struct Route {
    /// The policy that handles the connection.
    pub policy: Arc<str>,
    /// Its proxy action.
    pub action: Arc<str>,
    /// The real server.
    pub upstream_host: String,
    /// The real server's port.
    pub upstream_port: u16,
    /// Socket options for the upstream connection.
    pub connect: ConnectOptions,
    /// Bounds the connect, the greeting and each TLS handshake.
    pub handshake_timeout: Duration,
    /// The POP3 core's configuration.
    pub session: SessionConfig,
    /// TLS on either leg.
    pub tls: TlsLegs,
    /// Content inspection, when the action can change a message.
    pub inspection: Option<Arc<InspectionPlan>>,
    /// The connection as accepted, to plan it again under a reloaded configuration.
    pub accepted: Accepted,
    /// What the sessions of the process share (hold-downs, spool, inspection admission).
    pub shared: Arc<SessionShared>,
    /// Reloads to follow at the next command (SPEC §4); `None` keeps the settings above.
    pub live: Option<watch::Receiver<Arc<Prepared>>>,
}

/// What to do with an accepted connection.
#[derive(Debug)]
pub enum Plan {
    /// Run a POP3 session.
    Session(Box<Route>),
    /// Copy bytes opaquely to the server (`tls.action: allow` on the pop3s port).
    Opaque {
        /// The real server.
        host: String,
        /// Its port.
        port: u16,
        /// Socket options.
        connect: ConnectOptions,
        /// The action's `general.idle_timeout_s`: silence for this long ends the tunnel.
        idle_timeout: std::time::Duration,
    },
    /// Refuse: the text is for the client (plaintext only) and the log.
    Refuse(String),
}

/// The connection as accepted.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// The client's address.
    pub client: SocketAddr,
    /// Where the client meant to go (the listener's address without interception).
    pub original_dst: SocketAddr,
    /// The kind of listener it arrived on.
    pub kind: PortKind,
}

/// Plans the session of `accepted` under `policy`.
pub fn plan(
    prepared: &Prepared,
    policy: &Policy,
    accepted: Accepted,
    shared: &Arc<SessionShared>,
) -> Plan {
    plan_with_names(prepared, policy, accepted, shared, &[])
}

/// Plans the session of `accepted` under `policy`; `confirmed_names` are the server names
/// known to belong to the original destination (a confirmed SNI, domains resolving to it),
/// which `force_encrypt` domain entries match (SPEC §4).
pub fn plan_with_names(
    prepared: &Prepared,
    policy: &Policy,
    accepted: Accepted,
    shared: &Arc<SessionShared>,
    confirmed_names: &[String],
) -> Plan {
    let global = prepared.config.global();
    let action = policy.action();
    let tls_action = action.tls().action();
    let (host, port) = upstream_target(policy, accepted, global.interception());
    let connect = ConnectOptions {
        mark: global.upstream_socket_mark(),
        source: global.spoof_client_address().then_some(accepted.client),
    };
    if accepted.kind == PortKind::Pop3s {
        match tls_action {
            TlsActionKind::Allow => {
                return Plan::Opaque {
                    host,
                    port,
                    connect,
                    idle_timeout: action.idle_timeout(),
                }
            }
            TlsActionKind::Drop => return Plan::Refuse("TLS refused by policy".into()),
            TlsActionKind::Inspect => {}
        }
    }
    let profile = action.tls().profile();
    let Some(profile_tls) = prepared.profile(profile.name()) else {
        return Plan::Refuse(format!("TLS profile {} is not loaded", profile.name()));
    };
    let min = min_version(profile);

    let client_stls = match (policy.tls_support(), tls_action) {
        (_, TlsActionKind::Drop) => ClientStls::Refuse,
        (_, TlsActionKind::Allow) => ClientStls::Tunnel,
        (TlsSupport::Disabled, TlsActionKind::Inspect) => ClientStls::Refuse,
        (_, TlsActionKind::Inspect) => ClientStls::Terminate,
    };
    let terminates = accepted.kind == PortKind::Pop3s || client_stls == ClientStls::Terminate;
    let client_leg = if terminates {
        match client_certificate(prepared, policy, min) {
            Ok(cert) => Some(ClientLeg {
                cert,
                implicit: accepted.kind == PortKind::Pop3s,
            }),
            Err(text) => return Plan::Refuse(text),
        }
    } else {
        None
    };

    let server_ip = accepted.original_dst.ip();
    let mut names = Vec::with_capacity(confirmed_names.len() + 1);
    names.push(host.clone());
    names.extend_from_slice(confirmed_names);
    let forced = profile.forces_encryption(server_ip, &names);
    let mode = if forced {
        UpstreamTls::Mandatory
    } else {
        profile.upstream_tls()
    };
    let (server_implicit, upstream_stls) = match (accepted.kind, mode) {
        (PortKind::Pop3s, UpstreamTls::None) => (false, UpstreamStls::Never),
        (PortKind::Pop3s, _) => (true, UpstreamStls::Never),
        (PortKind::Pop3, UpstreamTls::Match) if client_stls == ClientStls::Terminate => {
            (false, UpstreamStls::WithClient)
        }
        (PortKind::Pop3, UpstreamTls::Match | UpstreamTls::None) => (false, UpstreamStls::Never),
        (PortKind::Pop3, UpstreamTls::Opportunistic) => (false, UpstreamStls::Opportunistic),
        (PortKind::Pop3, UpstreamTls::Mandatory) => (false, UpstreamStls::Mandatory),
    };
    // `upstream_tls: none` for an implicit-TLS client: plaintext to the server's pop3 port.
    let port = if accepted.kind == PortKind::Pop3s && !server_implicit {
        plain_port(policy)
    } else {
        port
    };
    let server_leg = (server_implicit || upstream_stls != UpstreamStls::Never).then(|| ServerLeg {
        config: profile_tls.client_config.clone(),
        name: server_name(&host),
        implicit: server_implicit,
        validator: profile_tls.validator.clone(),
        block_invalid: policy.direction() == Direction::Inbound
            || profile.invalid_certificate() == InvalidCertificate::Block,
        mandatory: mode == UpstreamTls::Mandatory,
        fallback: (mode == UpstreamTls::Opportunistic).then(|| Fallback {
            holddown: profile.tls_failure_holddown(),
            plain_port: plain_port(policy),
        }),
    });

    let inspection = prepared.inspection(policy.name());
    let auth = action.authentication();
    let session = SessionConfig {
        max_body_line: action.max_line_length() as usize,
        idle_timeout: action.idle_timeout(),
        greeting_timeout: global.limits().handshake_timeout(),
        client_stls,
        commands_require_tls: policy.starttls_on_pop3() && accepted.kind == PortKind::Pop3,
        login_requires_tls: auth.require_tls() || profile.requires_client_tls(accepted.client.ip()),
        auth: AuthPolicy {
            user: auth.allows_user(),
            apop: auth.allows_apop(),
            sasl: sasl_allow_list(auth.allow()),
        },
        upstream_stls,
        inspect_messages: inspection.is_some(),
        max_inspected_size: inspection
            .as_ref()
            .map_or(u64::MAX, |plan| plan.max_message_size()),
        ..SessionConfig::default()
    };
    Plan::Session(Box::new(Route {
        policy: Arc::from(policy.name()),
        action: Arc::from(action.name()),
        upstream_host: host,
        upstream_port: port,
        connect,
        handshake_timeout: global.limits().handshake_timeout(),
        session,
        tls: TlsLegs {
            client: client_leg,
            server: server_leg,
        },
        inspection,
        accepted,
        shared: shared.clone(),
        live: None,
    }))
}

/// The real server: the policy's `upstream` wins, else the original destination.
fn upstream_target(
    policy: &Policy,
    accepted: Accepted,
    interception: Interception,
) -> (String, u16) {
    match policy.upstream() {
        Some(upstream) => (upstream.host().to_owned(), upstream.port_for(accepted.kind)),
        None => {
            // Only reachable in tproxy/redirect mode (`none` requires an upstream).
            let _ = interception;
            (
                accepted.original_dst.ip().to_string(),
                accepted.original_dst.port(),
            )
        }
    }
}

/// The server's plaintext port for a pop3s client whose server leg is plaintext.
fn plain_port(policy: &Policy) -> u16 {
    match policy.upstream().map(|u| u.ports()) {
        Some(UpstreamPorts::PerKind { pop3, .. }) => pop3,
        Some(UpstreamPorts::Single(single)) => single,
        None => 110,
    }
}

/// `invalid_certificate: block` for the policy's profile: a client whose server leg is not
/// validated TLS is refused rather than shown an untrusted-CA certificate.
fn block_unvalidated(policy: &Policy) -> bool {
    policy.action().tls().profile().invalid_certificate() == InvalidCertificate::Block
}

fn client_certificate(
    prepared: &Prepared,
    policy: &Policy,
    min: crate::tls::config::MinVersion,
) -> Result<ClientCert, String> {
    match policy.direction() {
        Direction::Inbound => match &prepared.proxy_server {
            Some(cert) => Ok(ClientCert::Static(cert.config(min))),
            None => Err(format!(
                "policy {} terminates TLS but pki/server.crt is missing \
                 (popgate cert server --generate)",
                policy.name()
            )),
        },
        Direction::Outbound => match &prepared.minting {
            Some(minting) => Ok(ClientCert::Minted {
                minting: minting.clone(),
                min,
                block_unvalidated: block_unvalidated(policy),
            }),
            None => Err(format!(
                "outbound policy {} terminates TLS but pki/ca.crt is missing (popgate ca init)",
                policy.name()
            )),
        },
    }
}

/// SNI and certificate name toward the server: a DNS name, or an IP address.
fn server_name(host: &str) -> ServerName<'static> {
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    match trimmed.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(trimmed.to_owned())
            .unwrap_or_else(|_| ServerName::IpAddress(IpAddr::from([0, 0, 0, 0]).into())),
    }
}

fn sasl_allow_list(allow: &[popgate_policy::AuthMethod]) -> Option<Vec<String>> {
    use popgate_policy::AuthMethod;
    if allow.iter().any(|m| matches!(m, AuthMethod::AnySasl)) {
        return None;
    }
    Some(
        allow
            .iter()
            .filter_map(|m| match m {
                AuthMethod::Sasl(name) => Some(name.clone()),
                _ => None,
            })
            .collect(),
    )
}
