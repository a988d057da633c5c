//! `popgate policy test --from ADDR --to ADDR [--port P] [--sni NAME]` (SPEC §6): the dry
//! run of one connection against the configuration on disk.
//!
//! A thin adapter over the daemon's own code, so it cannot disagree with it: the policy is
//! chosen by `Config::select` (what `runtime/accept.rs` calls) and the session is planned
//! by `route::plan` (what the daemon runs), on the configuration as `popgate run` would
//! prepare it. Only the explanation of skipped policies is computed here, from the same
//! predicates (`enabled`, `listens_on`, `from`/`to` matching), and it is checked against
//! the selection. What cannot be known without connecting is said so: the server's
//! certificate decides between the Proxy Authority and the untrusted CA at run time.
//!
//! `--port` is an original destination port (default 110); it is the pop3s kind when an
//! enabled policy listens there as pop3s. `--sni` is used on pop3s ports only, as by the
//! daemon. Exit 1 when no policy matches. JSON: `{matched, policy, action, tls_profile,
//! tls_support, client_tls, server_tls, upstream, certificate: {issuer, names},
//! skipped: [{policy, reason}]}` plus `refused` (why a matched policy refuses it, or null).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use popgate_policy::{Config, ConnectionFacts, Policy, PortKind};
use serde::Serialize;

use super::table::{key_values, print_json};
use crate::route::{self, Accepted, Plan};
use crate::tls::legs::{ClientCert, TlsLegs};

/// The arguments of `policy test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The client's address.
    #[arg(long, value_name = "ADDR")]
    from: IpAddr,
    /// The original destination (the server the client asked for).
    #[arg(long, value_name = "ADDR")]
    to: IpAddr,
    /// The original destination port.
    #[arg(long, value_name = "P", default_value_t = 110)]
    port: u16,
    /// The SNI the client sends (pop3s ports).
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
}

/// `policy test --json`.
#[derive(Debug, Serialize)]
struct DryRun {
    matched: bool,
    policy: Option<String>,
    action: Option<String>,
    tls_profile: Option<String>,
    tls_support: Option<String>,
    client_tls: Option<String>,
    server_tls: Option<String>,
    upstream: Option<String>,
    certificate: Certificate,
    skipped: Vec<Skipped>,
    refused: Option<String>,
}

/// The certificate the client would be shown.
#[derive(Debug, Default, Serialize)]
struct Certificate {
    /// `proxy-authority`, `untrusted-ca`, `proxy-server`, or null (no TLS toward the client).
    issuer: Option<&'static str>,
    /// The names on it.
    names: Vec<String>,
}

/// A policy tried before the one that matched.
#[derive(Debug, Serialize)]
struct Skipped {
    policy: String,
    reason: String,
}

/// Runs `policy test`.
///
/// # Errors
/// The configuration cannot be loaded or prepared.
pub fn execute(dir: &Path, args: &TestArgs, json: bool) -> Result<ExitCode> {
    let prepared = crate::runtime::load(dir).context("loading the configuration")?;
    let config = &prepared.config;
    let kind = port_kind(config, args.port);
    let names: Vec<String> = match kind {
        PortKind::Pop3s => args.sni.iter().cloned().collect(),
        PortKind::Pop3 => Vec::new(),
    };
    let facts = ConnectionFacts {
        client: args.from,
        server: args.to,
        port: args.port,
        port_kind: kind,
        server_names: &names,
    };
    let selected = config.select(&facts);
    let skipped = skipped(config, &facts, selected);
    let mut run = DryRun {
        matched: selected.is_some(),
        policy: None,
        action: None,
        tls_profile: None,
        tls_support: None,
        client_tls: None,
        server_tls: None,
        upstream: None,
        certificate: Certificate::default(),
        skipped,
        refused: None,
    };
    if let Some(policy) = selected {
        describe(&prepared, policy, args, kind, &names, &mut run);
    }
    if json {
        print_json(&run)?;
    } else {
        print_text(&run, args, kind);
    }
    Ok(if run.matched {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// pop3s when an enabled policy listens on `port` as pop3s, else pop3.
fn port_kind(config: &Config, port: u16) -> PortKind {
    let pop3s = config
        .enabled_policies()
        .any(|p| p.listens_on(PortKind::Pop3s, port));
    if pop3s {
        PortKind::Pop3s
    } else {
        PortKind::Pop3
    }
}

/// Every policy tried before the selected one (all of them when none matched), by order.
fn skipped(
    config: &Config,
    facts: &ConnectionFacts<'_>,
    selected: Option<&Policy>,
) -> Vec<Skipped> {
    let mut policies: Vec<&Policy> = config.policies().iter().collect();
    policies.sort_by_key(|p| p.order());
    let mut skipped = Vec::new();
    for policy in policies {
        if selected.is_some_and(|s| s.name() == policy.name()) {
            break;
        }
        let reason = if !policy.enabled() {
            "disabled".to_owned()
        } else if !policy.listens_on(facts.port_kind, facts.port) {
            format!("does not listen on {} port {}", facts.port_kind, facts.port)
        } else if !policy.from().iter().any(|m| m.matches_ip(facts.client)) {
            format!("client {} is not in from", facts.client)
        } else if !policy.matches_addresses(facts.client, facts.server, facts.server_names) {
            format!("server {} is not in to", facts.server)
        } else {
            // The selection and these predicates disagree: say so rather than guess.
            "not selected (same order as the selected policy)".to_owned()
        };
        skipped.push(Skipped {
            policy: policy.name().to_owned(),
            reason,
        });
    }
    skipped
}

/// Fills in what the daemon's route plan decides for `policy`.
fn describe(
    prepared: &crate::config::prepared::Prepared,
    policy: &Policy,
    args: &TestArgs,
    kind: PortKind,
    names: &[String],
    run: &mut DryRun,
) {
    let action = policy.action();
    run.policy = Some(policy.name().to_owned());
    run.action = Some(action.name().to_owned());
    run.tls_profile = Some(action.tls().profile().name().to_owned());
    run.tls_support = Some(policy.tls_support().as_str().to_owned());
    let accepted = Accepted {
        client: SocketAddr::new(args.from, 0),
        original_dst: SocketAddr::new(args.to, args.port),
        kind,
    };
    let global = prepared.config.global();
    // A throwaway: planning never touches the spool.
    let shared = crate::shared::SessionShared::new(global.state_dir(), global.spool_max_bytes());
    match route::plan(prepared, policy, accepted, &shared) {
        Plan::Session(route) => {
            run.upstream = Some(format!("{}:{}", route.upstream_host, route.upstream_port));
            let (client, server, certificate) =
                legs(prepared, &route.tls, &route.upstream_host, names);
            run.client_tls = Some(client);
            run.server_tls = Some(server);
            run.certificate = certificate;
        }
        Plan::Opaque { host, port, .. } => {
            run.upstream = Some(format!("{host}:{port}"));
            run.client_tls = Some("passthrough (uninspected)".to_owned());
            run.server_tls = Some("passthrough (uninspected)".to_owned());
        }
        Plan::Refuse(text) => run.refused = Some(text),
    }
}

/// The TLS of each leg and the certificate the client is shown.
fn legs(
    prepared: &crate::config::prepared::Prepared,
    tls: &TlsLegs,
    host: &str,
    names: &[String],
) -> (String, String, Certificate) {
    let server = match &tls.server {
        None => "none".to_owned(),
        Some(leg) => {
            let how = if leg.implicit { "implicit" } else { "stls" };
            let when = if leg.mandatory {
                ", mandatory"
            } else if leg.fallback.is_some() {
                ", opportunistic"
            } else {
                ""
            };
            format!("{how}{when}")
        }
    };
    let Some(client) = &tls.client else {
        return ("none".to_owned(), server, Certificate::default());
    };
    let client_tls = if client.implicit { "implicit" } else { "stls" }.to_owned();
    let certificate = match &client.cert {
        ClientCert::Static(_) => Certificate {
            issuer: Some("proxy-server"),
            names: proxy_server_names(&prepared.dir),
        },
        ClientCert::Minted {
            block_unvalidated, ..
        } => {
            // Minted for the server's names; by the Proxy Authority only when the server
            // leg is TLS and its certificate validates (known only when connecting).
            let issuer = match (&tls.server, block_unvalidated) {
                (Some(_), _) => Some("proxy-authority"),
                (None, false) => Some("untrusted-ca"),
                (None, true) => None,
            };
            let named = names.first().map_or(host, String::as_str);
            Certificate {
                issuer,
                names: vec![named.to_owned()],
            }
        }
    };
    (client_tls, server, certificate)
}

/// The subjectAltNames of `pki/server.crt`.
fn proxy_server_names(dir: &Path) -> Vec<String> {
    std::fs::read(dir.join("pki/server.crt"))
        .ok()
        .and_then(|pem| popgate_ca::CertInfo::from_pem(&pem, time::OffsetDateTime::now_utc()).ok())
        .map(|info| info.sans)
        .unwrap_or_default()
}

fn print_text(run: &DryRun, args: &TestArgs, kind: PortKind) {
    for skipped in &run.skipped {
        println!("skipped {}: {}", skipped.policy, skipped.reason);
    }
    let Some(policy) = &run.policy else {
        println!(
            "no policy matches {} -> {} port {} ({kind}): the connection is refused",
            args.from, args.to, args.port
        );
        return;
    };
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let certificate = match run.certificate.issuer {
        Some(issuer) => format!("{issuer} ({})", run.certificate.names.join(", ")),
        None => "none".to_owned(),
    };
    print!(
        "{}",
        key_values(&[
            ("policy", policy.clone()),
            ("action", or_dash(&run.action)),
            ("tls profile", or_dash(&run.tls_profile)),
            ("tls support", or_dash(&run.tls_support)),
            ("client tls", or_dash(&run.client_tls)),
            ("server tls", or_dash(&run.server_tls)),
            ("upstream", or_dash(&run.upstream)),
            ("certificate", certificate),
            ("refused", or_dash(&run.refused)),
        ])
    );
}
