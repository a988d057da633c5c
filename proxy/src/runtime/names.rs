//! Choosing a connection's policy by server *names* without letting a client pick a weaker
//! policy by lying (SPEC §4 policies, issue 13 "domain entries fail open").
//!
//! A name counts only when it is confirmed to belong to the original destination:
//! - a domain a policy (or a `force_encrypt` list) names, when the original destination is
//!   one of its DNS addresses (`tproxy`/`redirect` only: with `none` the "destination" is
//!   popgate's own listener), which also lets domain entries match on port 110;
//! - the client's SNI, when the original destination is one of its DNS addresses
//!   (`tproxy`/`redirect`), or when the server the SNI's policy would connect to proves the
//!   name: its certificate chains to the profile's trust anchors and is valid for it,
//!   whatever `certificate_validation` says. That costs one TLS handshake with the server,
//!   made only when the SNI would change the policy chosen, and its answer is remembered
//!   for a minute.
//!
//! An unconfirmed SNI is ignored (and logged); the connection is matched on addresses and
//! confirmed names alone. DNS answers come from [`DnsCache`] (60 s lifetime, documented
//! there); the servers' answers from [`SniProofs`] (the same lifetime, emptied at reloads). No POP3 here; `accept.rs` calls [`select`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use popgate_policy::{AddressMatcher, ConnectionFacts, Interception, Policy};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use tracing::{debug, info};

use super::sni_proofs::{ProofKey, SniProofs};
use crate::config::prepared::Prepared;
use crate::net::dns_cache::DnsCache;
use crate::net::upstream::{self, ConnectOptions};
use crate::route::{self, Accepted, Plan};
use crate::shared::SessionShared;
use crate::tls::verify::UpstreamValidator;

/// The policy chosen and the server names confirmed for the connection.
#[derive(Debug)]
pub struct Selection<'p> {
    /// The first matching policy.
    pub policy: &'p Policy,
    /// Names confirmed to belong to the original destination (for `force_encrypt`).
    pub names: Vec<String>,
}

/// Chooses the policy of `accepted`, whose client sent `sni` (if any), matching names only
/// once confirmed. `timeout` bounds each DNS lookup and the certificate check.
///
/// Cancel safety: safe (nothing is kept but cached DNS answers).
pub async fn select<'p>(
    prepared: &'p Prepared,
    (dns, proofs): (&DnsCache, &SniProofs),
    sessions: &Arc<SessionShared>,
    accepted: Accepted,
    sni: Option<String>,
    timeout: Duration,
) -> Option<Selection<'p>> {
    let config = &prepared.config;
    let transparent = config.global().interception() != Interception::None;
    let dst = accepted.original_dst;
    let mut names = Vec::new();
    if transparent {
        for domain in config.listener_domains(accepted.kind, dst.port()) {
            if dns.resolves_to(domain, dst.ip(), timeout).await {
                names.push(domain.to_owned());
            }
        }
    }
    let mut unconfirmed = None;
    // An SNI equal to a domain already confirmed by DNS needs nothing more.
    if let Some(sni) = sni.filter(|sni| !names.contains(sni)) {
        if transparent && dns.resolves_to(&sni, dst.ip(), timeout).await {
            debug!(sni = %sni, "SNI confirmed by DNS");
            names.push(sni);
        } else {
            unconfirmed = Some(sni);
        }
    }
    let mut chosen = config.select(&facts(accepted, &names));
    if let Some(sni) = unconfirmed {
        let mut claimed_names = names.clone();
        claimed_names.push(sni.clone());
        let claimed = config
            .select(&facts(accepted, &claimed_names))
            .filter(|claimed| chosen.map(Policy::name) != Some(claimed.name()));
        if let Some(claimed) = claimed {
            let target = (claimed, accepted);
            if certificate_proves(prepared, sessions, proofs, target, &sni, timeout).await {
                debug!(sni = %sni, "SNI confirmed by the server's certificate");
                chosen = Some(claimed);
                names = claimed_names;
            } else {
                info!(sni = %sni, claimed_policy = claimed.name(),
                    "SNI not confirmed by DNS or the server's certificate; ignored");
            }
        }
    }
    let policy = chosen?;
    if transparent {
        let profile = policy.action().tls().profile();
        for domain in profile
            .force_encrypt()
            .iter()
            .filter_map(AddressMatcher::domain)
        {
            if !names.iter().any(|n| n == domain)
                && dns.resolves_to(domain, dst.ip(), timeout).await
            {
                names.push(domain.to_owned());
            }
        }
    }
    Some(Selection { policy, names })
}

/// What selection looks at: addresses, the listener, and the confirmed names.
fn facts(accepted: Accepted, names: &[String]) -> ConnectionFacts<'_> {
    ConnectionFacts {
        client: accepted.client.ip(),
        server: accepted.original_dst.ip(),
        // Policy ports are original destination ports (SPEC §3).
        port: accepted.original_dst.port(),
        port_kind: accepted.kind,
        server_names: names,
    }
}

/// Whether the server `policy` would send this connection to proves `sni` with its
/// certificate (a TLS handshake toward its implicit-TLS port, judged by the profile's trust
/// anchors with the name checked).
async fn certificate_proves(
    prepared: &Prepared,
    sessions: &Arc<SessionShared>,
    proofs: &SniProofs,
    (policy, accepted): (&Policy, Accepted),
    sni: &str,
    timeout: Duration,
) -> bool {
    let Ok(name) = ServerName::try_from(sni.to_owned()) else {
        return false;
    };
    let Some(target) = tls_target(prepared, sessions, policy, accepted) else {
        return false;
    };
    let key = ProofKey {
        profile: policy.action().tls().profile().name().to_owned(),
        server: (target.host.clone(), target.port),
        sni: sni.to_owned(),
    };
    if let Some(proved) = proofs.get(&key, Instant::now()) {
        debug!(
            sni,
            proved, "SNI answer remembered; no handshake with the server"
        );
        return proved;
    }
    let proved = handshake_proves(target, name, timeout).await;
    proofs.insert(key, proved, Instant::now());
    proved
}

/// Asks the server for its certificate and judges it for `name`.
async fn handshake_proves(target: TlsTarget, name: ServerName<'static>, timeout: Duration) -> bool {
    let attempt = async {
        let tcp = upstream::connect(&target.host, target.port, &target.connect, timeout)
            .await
            .ok()?;
        let tls = TlsConnector::from(target.config)
            .connect(name.clone(), tcp)
            .await
            .ok()?;
        let chain = tls.get_ref().1.peer_certificates()?;
        Some(target.validator.proves_name(chain, &name))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Where and how to reach the server a policy would use over TLS.
struct TlsTarget {
    host: String,
    port: u16,
    connect: ConnectOptions,
    config: Arc<ClientConfig>,
    validator: Arc<UpstreamValidator>,
}

fn tls_target(
    prepared: &Prepared,
    sessions: &Arc<SessionShared>,
    policy: &Policy,
    accepted: Accepted,
) -> Option<TlsTarget> {
    let profile = prepared.profile(policy.action().tls().profile().name())?;
    let (host, port, connect) = match route::plan(prepared, policy, accepted, sessions) {
        Plan::Session(route) => {
            // Only an implicit-TLS server leg can be asked for its certificate up front.
            route.tls.server.as_ref().filter(|leg| leg.implicit)?;
            (route.upstream_host, route.upstream_port, route.connect)
        }
        Plan::Opaque {
            host,
            port,
            connect,
            ..
        } => (host, port, connect),
        Plan::Refuse(_) => return None,
    };
    Some(TlsTarget {
        host,
        port,
        connect,
        config: profile.client_config.clone(),
        validator: profile.validator.clone(),
    })
}
