//! What `popgate policy` and `popgate action` show: every policy and proxy action of a
//! configuration directory, read even when the configuration is invalid.
//!
//! A valid directory is described from the checked [`Config`], so the commands show exactly
//! what `popgate run` would use (defaults applied, names resolved). An invalid one still
//! gets described, from each file that parses on its own (with the same defaults), and the
//! errors come with it: an administrator fixing a typo in one policy can still list the
//! others. Output formats are the commands' business.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use popgate_policy::raw::{RawAction, RawPolicy, RawUpstream};
use popgate_policy::{defaults as d, Config, Source};

use crate::config::dir;

/// Every policy and action found, and what is wrong with the directory.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// By `order`, then name.
    pub policies: Vec<PolicyEntry>,
    /// By name.
    pub actions: Vec<ActionEntry>,
    /// Every configuration error, one line each; empty when the directory is valid.
    pub errors: Vec<String>,
}

/// One policy, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntry {
    /// The `name` field (what the command line uses).
    pub name: String,
    /// Relative to the configuration directory: `policies/out.json`.
    pub file: String,
    /// Whether it takes part in selection.
    pub enabled: bool,
    /// Precedence: lower first.
    pub order: u32,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `disabled`, `enabled` or `required`.
    pub tls_support: String,
    /// Whether the pop3 port demands STLS.
    pub starttls_on_pop3: bool,
    /// The `pop3` port.
    pub pop3_port: u16,
    /// The `pop3s` port.
    pub pop3s_port: u16,
    /// Client address entries, as written.
    pub from: Vec<String>,
    /// Server address entries, as written.
    pub to: Vec<String>,
    /// The explicit server, if any.
    pub upstream: Option<String>,
    /// Name of the proxy action.
    pub proxy_action: String,
}

/// One proxy action: what the action commands print about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEntry {
    /// The `name` field.
    pub name: String,
    /// Relative to the configuration directory: `actions/std.json`.
    pub file: String,
    /// `inspect`, `allow` or `drop`.
    pub tls_action: String,
    /// Name of the TLS profile.
    pub tls_profile: String,
}

impl Catalog {
    /// Reads the configuration directory `dir`.
    ///
    /// # Errors
    /// Only files or directories that exist but cannot be read; invalid content ends up in
    /// [`Catalog::errors`].
    pub fn read(dir: &Path) -> Result<Catalog> {
        let sources = dir::read_sources(dir)?;
        Ok(match Config::from_sources(&sources) {
            Ok(config) => Catalog::from_config(&config),
            Err(errors) => Catalog {
                policies: lenient_policies(&sources.policies),
                actions: lenient_actions(&sources.actions),
                errors: errors.iter().map(ToString::to_string).collect(),
            },
        })
    }

    /// Describes a checked configuration.
    pub fn from_config(config: &Config) -> Catalog {
        let policies = config
            .policies()
            .iter()
            .map(|p| PolicyEntry {
                name: p.name().to_owned(),
                file: p.file().to_owned(),
                enabled: p.enabled(),
                order: p.order(),
                direction: p.direction().as_str().to_owned(),
                tls_support: p.tls_support().as_str().to_owned(),
                starttls_on_pop3: p.starttls_on_pop3(),
                pop3_port: p.ports().pop3(),
                pop3s_port: p.ports().pop3s(),
                from: p.from().iter().map(ToString::to_string).collect(),
                to: p.to().iter().map(ToString::to_string).collect(),
                upstream: p.upstream().map(ToString::to_string),
                proxy_action: p.action().name().to_owned(),
            })
            .collect();
        let actions = config
            .actions()
            .iter()
            .map(|a| ActionEntry {
                name: a.name().to_owned(),
                file: a.file().to_owned(),
                tls_action: a.tls().action().as_str().to_owned(),
                tls_profile: a.tls().profile().name().to_owned(),
            })
            .collect();
        Catalog {
            policies,
            actions,
            errors: Vec::new(),
        }
    }

    /// The policy named `name` (the first, should an invalid directory hold two).
    pub fn policy(&self, name: &str) -> Option<&PolicyEntry> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&ActionEntry> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// Every policy using the action named `name`, by `order`.
    pub fn policies_using(&self, action: &str) -> Vec<&PolicyEntry> {
        self.policies
            .iter()
            .filter(|p| p.proxy_action == action)
            .collect()
    }

    /// Whether the directory is a valid configuration.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// 0 for a valid directory, 1 for an invalid one (whatever was printed).
    pub fn exit_code(&self) -> ExitCode {
        if self.is_valid() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Prints every error on stderr, then a line saying the listing may be incomplete.
    pub fn report_errors(&self) {
        if self.is_valid() {
            return;
        }
        for error in &self.errors {
            eprintln!("{error}");
        }
        eprintln!(
            "popgate: the configuration is invalid ({} error{}); showing what could be read",
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        );
    }
}

/// A sorted, comma-separated list of names for "not found" messages, or `(none)`.
pub fn known_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// Policies of files that parse on their own; the others are among the errors already.
fn lenient_policies(sources: &[Source]) -> Vec<PolicyEntry> {
    let mut policies: Vec<PolicyEntry> = sources
        .iter()
        .filter_map(|src| {
            let raw: RawPolicy = serde_json::from_slice(&src.bytes).ok()?;
            let ports = raw.ports.unwrap_or_default();
            Some(PolicyEntry {
                name: raw.name,
                file: src.file.clone(),
                enabled: raw.enabled.unwrap_or(d::ENABLED),
                order: raw.order,
                direction: raw.direction.unwrap_or(d::DIRECTION).as_str().to_owned(),
                tls_support: raw
                    .tls_support
                    .unwrap_or(d::TLS_SUPPORT)
                    .as_str()
                    .to_owned(),
                starttls_on_pop3: raw.starttls_on_pop3.unwrap_or(d::STARTTLS_ON_POP3),
                pop3_port: ports.pop3.unwrap_or(d::POP3_PORT),
                pop3s_port: ports.pop3s.unwrap_or(d::POP3S_PORT),
                from: raw.from,
                to: raw.to,
                upstream: raw.upstream.as_ref().map(upstream_text),
                proxy_action: raw.proxy_action,
            })
        })
        .collect();
    policies.sort_by(|a, b| (a.order, &a.name, &a.file).cmp(&(b.order, &b.name, &b.file)));
    policies
}

fn lenient_actions(sources: &[Source]) -> Vec<ActionEntry> {
    let mut actions: Vec<ActionEntry> = sources
        .iter()
        .filter_map(|src| {
            let raw: RawAction = serde_json::from_slice(&src.bytes).ok()?;
            let tls = raw.tls.unwrap_or_default();
            Some(ActionEntry {
                name: raw.name,
                file: src.file.clone(),
                tls_action: tls.action.unwrap_or(d::TLS_ACTION).as_str().to_owned(),
                tls_profile: tls.profile.unwrap_or_else(|| d::TLS_PROFILE.to_owned()),
            })
        })
        .collect();
    actions.sort_by(|a, b| (&a.name, &a.file).cmp(&(&b.name, &b.file)));
    actions
}

fn upstream_text(raw: &RawUpstream) -> String {
    match raw {
        RawUpstream::Text(text) => text.clone(),
        RawUpstream::Ports(object) => {
            let ports: Vec<String> = [("pop3", object.pop3), ("pop3s", object.pop3s)]
                .into_iter()
                .filter_map(|(kind, port)| Some(format!("{kind} {}", port?)))
                .collect();
            if ports.is_empty() {
                object.host.clone()
            } else {
                format!("{} ({})", object.host, ports.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use popgate_policy::Sources;

    use super::*;

    fn policy(name: &str, order: u32, action: &str) -> String {
        format!(
            r#"{{"name": "{name}", "order": {order}, "from": ["any"], "to": ["any"],
                "tls_support": "disabled", "upstream": "192.0.2.1:110",
                "ports": {{"pop3": {}}}, "proxy_action": "{action}"}}"#,
            1000 + order
        )
    }

    fn action(name: &str) -> String {
        format!(r#"{{"name": "{name}", "tls": {{"action": "allow"}}}}"#)
    }

    fn sources(policies: &[(&str, String)], actions: &[(&str, String)]) -> Sources {
        let src = |(file, text): &(&str, String)| Source::new(*file, text.as_bytes().to_vec());
        Sources {
            global: Some(Source::new(
                "popgate.json",
                br#"{"interception": "none"}"#.to_vec(),
            )),
            policies: policies.iter().map(src).collect(),
            actions: actions.iter().map(src).collect(),
            tls_profiles: Vec::new(),
        }
    }

    #[test]
    fn valid_config_is_described_from_the_checked_model() {
        let sources = sources(
            &[
                ("policies/b.json", policy("b", 20, "A")),
                ("policies/a.json", policy("a", 10, "A")),
            ],
            &[("actions/a.json", action("A"))],
        );
        let config = Config::from_sources(&sources).unwrap();
        let catalog = Catalog::from_config(&config);
        let names: Vec<&str> = catalog.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = catalog.policy("a").unwrap();
        assert_eq!(a.file, "policies/a.json");
        assert!(a.enabled);
        assert_eq!(a.direction, "outbound");
        assert_eq!(a.tls_support, "disabled");
        assert_eq!(a.upstream.as_deref(), Some("192.0.2.1:110"));
        assert_eq!(catalog.policies_using("A").len(), 2);
        let act = catalog.action("A").unwrap();
        assert_eq!(act.tls_action, "allow");
        assert_eq!(act.tls_profile, "TLS-Client.Standard");
        assert!(catalog.is_valid());
    }

    #[test]
    fn lenient_listing_skips_only_unparseable_files() {
        let sources = sources(
            &[
                ("policies/a.json", policy("a", 10, "Missing")),
                ("policies/broken.json", "{ not json".to_owned()),
                ("policies/c.json", policy("c", 5, "A")),
            ],
            &[("actions/a.json", action("A"))],
        );
        let errors = Config::from_sources(&sources).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let policies = lenient_policies(&sources.policies);
        let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["c", "a"]);
        assert_eq!(lenient_actions(&sources.actions)[0].tls_action, "allow");
    }

    #[test]
    fn known_names_are_sorted_and_deduplicated() {
        assert_eq!(known_names(["b", "a", "b"].into_iter()), "a, b");
        assert_eq!(known_names(std::iter::empty()), "(none)");
    }

    #[test]
    fn object_upstream_is_shown_with_its_ports() {
        let raw = RawUpstream::Ports(popgate_policy::raw::RawUpstreamPorts {
            host: "mail.example.com".to_owned(),
            pop3: Some(110),
            pop3s: None,
        });
        assert_eq!(upstream_text(&raw), "mail.example.com (pop3 110)");
    }
}
