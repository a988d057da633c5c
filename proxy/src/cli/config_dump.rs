//! `popgate config dump` (SPEC §6): the effective configuration, every default filled in,
//! like `nginx -T`: what `popgate run` would put in force, not what the files say.
//!
//! Built from the checked model (`popgate_policy::Config`) through its accessors, so a
//! default changed in `policy/src/defaults.rs` shows here without a second copy. The JSON
//! uses the file format's field names and spellings (a dump can be read back field by
//! field); durations are in `_s`. Built-in TLS profiles appear like the others. An invalid
//! directory prints every error and exits 1.
//!
//! Shape: `{global, policies, actions, tls_profiles}`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use popgate_policy::{
    AddressMatcher, AuthMethod, Config, Global, Policy, ProxyAction, RuleSet, TlsProfile,
    UpstreamPorts,
};
use serde_json::{json, Value};

use super::table::print_json;

/// Runs `popgate config dump`; the output is always JSON.
///
/// # Errors
/// Output failures; an invalid directory is exit 1 with every error on stderr.
pub fn execute(dir: &Path) -> Result<ExitCode> {
    let config = match crate::config::dir::load(dir) {
        Ok(config) => config,
        Err(err) => {
            for line in err.lines() {
                eprintln!("{line}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    print_json(&dump(&config))?;
    Ok(ExitCode::SUCCESS)
}

/// The effective configuration as JSON.
pub fn dump(config: &Config) -> Value {
    json!({
        "global": global(config.global()),
        "policies": config.policies().iter().map(policy).collect::<Vec<_>>(),
        "actions": config.actions().iter().map(|a| action(a)).collect::<Vec<_>>(),
        "tls_profiles": config.tls_profiles().iter().map(|p| profile(p)).collect::<Vec<_>>(),
    })
}

fn global(g: &Global) -> Value {
    let limits = g.limits();
    let state = g.state();
    json!({
        "interception": g.interception().as_str(),
        "bind_addresses": g.bind_addresses().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "upstream_mark": g.upstream_mark(),
        "spoof_client_address": g.spoof_client_address(),
        "user": g.user(),
        "group": g.group(),
        "log": { "format": g.log_format().as_str(), "level": g.log_level().as_str() },
        "metrics": { "listen": g.metrics_listen().map(|a| a.to_string()) },
        "limits": {
            "max_connections": limits.max_connections(),
            "max_connections_per_client": limits.max_connections_per_client(),
            "handshake_timeout_s": limits.handshake_timeout().as_secs(),
            "idle_timeout_s": limits.idle_timeout().as_secs(),
            "shutdown_grace_s": limits.shutdown_grace().as_secs(),
        },
        "state_dir": state.state_dir(),
        "quarantine": {
            "max_bytes": state.quarantine_max_bytes(),
            "max_age_days": state.quarantine_max_age().as_secs() / 86_400,
        },
        "spool": { "max_bytes": state.spool_max_bytes() },
        "control": { "socket": state.control_socket(), "group": state.control_group() },
    })
}

fn policy(p: &Policy) -> Value {
    let upstream = p.upstream().map(|u| match u.ports() {
        UpstreamPorts::PerKind { pop3, pop3s } => {
            json!({ "host": u.host(), "pop3": pop3, "pop3s": pop3s })
        }
        UpstreamPorts::Single(port) => json!({ "host": u.host(), "port": port }),
    });
    json!({
        "name": p.name(),
        "file": p.file(),
        "enabled": p.enabled(),
        "order": p.order(),
        "direction": p.direction().as_str(),
        "from": addresses(p.from()),
        "to": addresses(p.to()),
        "tls_support": p.tls_support().as_str(),
        "ports": { "pop3": p.ports().pop3(), "pop3s": p.ports().pop3s() },
        "upstream": upstream,
        "starttls_on_pop3": p.starttls_on_pop3(),
        "proxy_action": p.action().name(),
    })
}

fn action(a: &ProxyAction) -> Value {
    let auth = a.authentication();
    let av = a.antivirus();
    json!({
        "name": a.name(),
        "file": a.file(),
        "general": {
            "idle_timeout_s": a.idle_timeout().as_secs(),
            "max_line_length": a.max_line_length(),
            "max_message_size": a.max_message_size(),
            "oversize": a.oversize().as_str(),
        },
        "authentication": {
            "allow": auth.allow().iter().map(auth_method).collect::<Vec<_>>(),
            "require_tls": auth.require_tls(),
        },
        "content_types": rules(a.content_types()),
        "file_names": rules(a.file_names()),
        "headers": rules(a.headers()),
        "antivirus": {
            "enabled": av.enabled(),
            "clamd": av.clamd().to_string(),
            "timeout_s": av.timeout().as_secs(),
            "on_virus": av.on_virus().as_str(),
            "on_error": av.on_error().as_str(),
        },
        "unparseable": a.unparseable().as_str(),
        "spam_tag": a.spam_tag(),
        "deny_message": a.deny_message().as_str(),
        "tls": { "action": a.tls().action().as_str(), "profile": a.tls().profile().name() },
    })
}

fn profile(p: &TlsProfile) -> Value {
    json!({
        "name": p.name(),
        "file": p.file(),
        "min_version": p.min_version().as_str(),
        "upstream_tls": p.upstream_tls().as_str(),
        "certificate_validation": p.certificate_validation().as_str(),
        "invalid_certificate": p.invalid_certificate().as_str(),
        "trust": { "system_roots": p.system_roots(), "ca_files": p.ca_files() },
        "force_encrypt": addresses(p.force_encrypt()),
        "require_client_tls": addresses(p.require_client_tls()),
        "require_client_tls_except": addresses(p.require_client_tls_except()),
        "tls_failure_holddown_s": p.tls_failure_holddown().as_secs(),
    })
}

fn addresses(list: &[AddressMatcher]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn rules<P: popgate_policy::Pattern>(set: &RuleSet<P>) -> Value {
    json!({
        "default": set.default_verdict().as_str(),
        "rules": set.rules().iter().map(|r| json!({
            "match": r.text(),
            "action": r.verdict().as_str(),
        })).collect::<Vec<_>>(),
    })
}

fn auth_method(method: &AuthMethod) -> String {
    match method {
        AuthMethod::User => "USER".to_owned(),
        AuthMethod::Apop => "APOP".to_owned(),
        AuthMethod::AnySasl => "SASL:*".to_owned(),
        AuthMethod::Sasl(name) => format!("SASL:{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popgate_policy::{Source, Sources};

    #[test]
    fn an_empty_directory_dumps_the_spec_defaults() {
        let sources = Sources {
            global: None,
            policies: vec![Source::new(
                "policies/p.json",
                r#"{"name": "P", "order": 1, "from": ["any"], "to": ["any"], "proxy_action": "A"}"#,
            )],
            actions: vec![Source::new("actions/a.json", r#"{"name": "A"}"#)],
            tls_profiles: Vec::new(),
        };
        let config = Config::from_sources(&sources).unwrap();
        let dumped = dump(&config);
        let keys: Vec<&String> = dumped.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["global", "policies", "actions", "tls_profiles"]);
        let g = &dumped["global"];
        assert_eq!(g["interception"], "tproxy");
        assert_eq!(g["bind_addresses"], json!(["0.0.0.0", "::"]));
        assert_eq!(g["limits"]["idle_timeout_s"], 600);
        assert_eq!(g["state_dir"], "/var/lib/popgate");
        assert_eq!(g["quarantine"]["max_age_days"], 30);
        assert_eq!(g["control"]["socket"], "/run/popgate/control.sock");
        let p = &dumped["policies"][0];
        assert_eq!(p["tls_support"], "enabled");
        assert_eq!(p["ports"], json!({"pop3": 110, "pop3s": 995}));
        assert_eq!(p["direction"], "outbound");
        let a = &dumped["actions"][0];
        assert_eq!(a["general"]["max_message_size"], 33_554_432);
        assert_eq!(a["tls"]["profile"], "TLS-Client.Standard");
        let builtin = dumped["tls_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "TLS-Client.Standard")
            .expect("the built-in profile is dumped");
        assert_eq!(builtin["min_version"], "1.2");
    }
}
