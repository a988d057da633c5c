//! Policy selection: which enabled policy handles a connection.
//!
//! The first enabled policy by `order` whose listener (port kind and number) and addresses
//! match wins; no match means the connection is refused (a firewall denies by default).
//! Candidates are indexed per listener when the `Config` is built, so the cost of a lookup
//! grows with the policies sharing that listener, not with every policy.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::address::AddressMatcher;
use crate::config::Config;
use crate::policy::{Policy, PortKind};

/// What popgate knows about a connection when it picks a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionFacts<'a> {
    /// The client's address (IPv4-mapped IPv6 counts as IPv4).
    pub client: IpAddr,
    /// The original destination (or the local address, with interception `none`).
    pub server: IpAddr,
    /// The local port the client connected to.
    pub port: u16,
    /// The kind of that listener.
    pub port_kind: PortKind,
    /// SNI and the upstream certificate's names, when known; may be empty.
    pub server_names: &'a [String],
}

/// For each listener, the indices (into the order-sorted policies) of the enabled policies
/// listening there, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SelectIndex {
    by_listener: HashMap<(PortKind, u16), Vec<usize>>,
}

impl SelectIndex {
    /// Indexes `policies`, which must already be sorted by order.
    pub(crate) fn build(policies: &[Policy]) -> Self {
        let mut by_listener: HashMap<(PortKind, u16), Vec<usize>> = HashMap::new();
        for (i, policy) in policies.iter().enumerate().filter(|(_, p)| p.enabled()) {
            for listener in policy.listeners() {
                by_listener.entry(listener).or_default().push(i);
            }
        }
        Self { by_listener }
    }
}

impl Config {
    /// The exact domains named in `to` by the enabled policies of a listener, each once:
    /// the names whose DNS addresses are looked up so that a connection without a (trusted)
    /// name can match them by its original destination (SPEC §4 policies).
    pub fn listener_domains(&self, port_kind: PortKind, port: u16) -> Vec<&str> {
        let Some(candidates) = self.index().by_listener.get(&(port_kind, port)) else {
            return Vec::new();
        };
        let policies = self.policies();
        let mut domains: Vec<&str> = candidates
            .iter()
            .filter_map(|&i| policies.get(i))
            .flat_map(|p| p.to().iter().filter_map(AddressMatcher::domain))
            .collect();
        domains.sort_unstable();
        domains.dedup();
        domains
    }

    /// The policy handling this connection, or `None` (refuse it).
    ///
    /// Domain entries in `to` can only match when `server_names` is filled; a caller that
    /// learns names later (SNI) selects again with them.
    pub fn select(&self, facts: &ConnectionFacts<'_>) -> Option<&Policy> {
        let candidates = self
            .index()
            .by_listener
            .get(&(facts.port_kind, facts.port))?;
        let policies = self.policies();
        candidates
            .iter()
            .filter_map(|&i| policies.get(i))
            .find(|p| p.matches_addresses(facts.client, facts.server, facts.server_names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, Sources};

    const ACTION: &str = r#"{"name": "A"}"#;
    const PASS_TLS: &str = r#"{"name": "B", "tls": {"action": "allow"}}"#;

    fn config(policies: &[&str]) -> Config {
        let sources = Sources {
            global: None,
            policies: policies
                .iter()
                .enumerate()
                .map(|(i, text)| Source::new(format!("policies/p{i}.json"), text.as_bytes()))
                .collect(),
            actions: vec![
                Source::new("actions/a.json", ACTION),
                Source::new("actions/b.json", PASS_TLS),
            ],
            tls_profiles: Vec::new(),
        };
        match Config::from_sources(&sources) {
            Ok(config) => config,
            Err(errors) => panic!("{errors:#?}"),
        }
    }

    fn policy(name: &str, order: u32, from: &str, to: &str, extra: &str) -> String {
        // The plaintext-only policy needs an action that does not inspect TLS.
        let action = if extra.contains("disabled") { "B" } else { "A" };
        format!(
            r#"{{"name": "{name}", "order": {order}, "from": [{from}], "to": [{to}],
                "proxy_action": "{action}"{extra}}}"#
        )
    }

    fn pick<'c>(
        config: &'c Config,
        client: &str,
        server: &str,
        kind: PortKind,
        port: u16,
        names: &[String],
    ) -> Option<&'c str> {
        let facts = ConnectionFacts {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            port,
            port_kind: kind,
            server_names: names,
        };
        config.select(&facts).map(Policy::name)
    }

    #[test]
    fn selection_table() {
        let c = config(&[
            &policy(
                "lan-v4",
                10,
                r#""10.0.0.0/8", "192.168.1.*""#,
                r#""any""#,
                "",
            ),
            &policy("lan-v6", 20, r#""2001:db8:1::/48""#, r#""any""#, ""),
            &policy(
                "to-example",
                5,
                r#""any""#,
                r#""*.example.com", "203.0.113.7""#,
                "",
            ),
            &policy("off", 1, r#""any""#, r#""any""#, r#", "enabled": false"#),
            &policy(
                "plain-only",
                30,
                r#""172.16.*.*""#,
                r#""any""#,
                r#", "tls_support": "disabled""#,
            ),
        ]);
        let none: &[String] = &[];
        let pop = &["pop.example.com".to_owned()];
        use PortKind::{Pop3, Pop3s};
        // (client, server, kind, port, server names, expected policy)
        type Case<'a> = (
            &'a str,
            &'a str,
            PortKind,
            u16,
            &'a [String],
            Option<&'a str>,
        );
        let cases: &[Case<'_>] = &[
            ("10.1.2.3", "198.51.100.1", Pop3, 110, none, Some("lan-v4")),
            ("10.1.2.3", "198.51.100.1", Pop3s, 995, none, Some("lan-v4")),
            (
                "::ffff:10.1.2.3",
                "198.51.100.1",
                Pop3s,
                995,
                none,
                Some("lan-v4"),
            ),
            (
                "192.168.1.9",
                "198.51.100.1",
                Pop3,
                110,
                none,
                Some("lan-v4"),
            ),
            ("192.168.2.9", "198.51.100.1", Pop3, 110, none, None),
            (
                "2001:db8:1::9",
                "2001:db8:ff::1",
                Pop3s,
                995,
                none,
                Some("lan-v6"),
            ),
            ("2001:db8:2::9", "2001:db8:ff::1", Pop3s, 995, none, None),
            // Lower order wins when names or the address match it.
            (
                "10.1.2.3",
                "198.51.100.1",
                Pop3s,
                995,
                pop,
                Some("to-example"),
            ),
            (
                "10.1.2.3",
                "203.0.113.7",
                Pop3,
                110,
                none,
                Some("to-example"),
            ),
            (
                "2001:db8:1::9",
                "2001:db8:ff::1",
                Pop3s,
                995,
                pop,
                Some("to-example"),
            ),
            // Wrong port number or kind for every policy.
            ("10.1.2.3", "198.51.100.1", Pop3, 995, none, None),
            ("10.1.2.3", "198.51.100.1", Pop3s, 110, none, None),
            ("10.1.2.3", "198.51.100.1", Pop3, 2110, none, None),
            // tls_support disabled listens on pop3 only.
            (
                "172.16.0.1",
                "198.51.100.1",
                Pop3,
                110,
                none,
                Some("plain-only"),
            ),
            ("172.16.0.1", "198.51.100.1", Pop3s, 995, none, None),
        ];
        for (client, server, kind, port, names, want) in cases {
            let got = pick(&c, client, server, *kind, *port, names);
            assert_eq!(got, *want, "{client} -> {server} {kind}:{port} {names:?}");
        }
    }

    #[test]
    fn listener_domains_lists_exact_domains_of_that_listener_once() {
        let c = config(&[
            &policy(
                "a",
                10,
                r#""any""#,
                r#""pop.example.com", "*.example.net", "10.0.0.1""#,
                "",
            ),
            &policy(
                "b",
                20,
                r#""any""#,
                r#""pop.example.com", "mail.example.org""#,
                "",
            ),
            &policy(
                "c",
                30,
                r#""any""#,
                r#""other.example""#,
                r#", "ports": {"pop3": 1110, "pop3s": 1995}"#,
            ),
            &policy(
                "off",
                5,
                r#""any""#,
                r#""off.example""#,
                r#", "enabled": false"#,
            ),
        ]);
        assert_eq!(
            c.listener_domains(PortKind::Pop3, 110),
            ["mail.example.org", "pop.example.com"]
        );
        assert_eq!(c.listener_domains(PortKind::Pop3s, 1995), ["other.example"]);
        assert!(c.listener_domains(PortKind::Pop3, 9).is_empty());
    }

    #[test]
    fn custom_ports_and_required_mode() {
        let c = config(&[
            &policy(
                "custom",
                10,
                r#""any""#,
                r#""any""#,
                r#", "ports": {"pop3": 1110, "pop3s": 1995}"#,
            ),
            &policy(
                "req",
                20,
                r#""any""#,
                r#""any""#,
                r#", "tls_support": "required", "ports": {"pop3": 2110, "pop3s": 2995}"#,
            ),
            &policy(
                "req-stls",
                30,
                r#""any""#,
                r#""any""#,
                r#", "tls_support": "required", "starttls_on_pop3": true, "ports": {"pop3": 3110, "pop3s": 3995}"#,
            ),
        ]);
        let none: &[String] = &[];
        use PortKind::{Pop3, Pop3s};
        assert_eq!(
            pick(&c, "10.0.0.1", "10.0.0.2", Pop3, 1110, none),
            Some("custom")
        );
        assert_eq!(
            pick(&c, "10.0.0.1", "10.0.0.2", Pop3s, 1995, none),
            Some("custom")
        );
        assert_eq!(pick(&c, "10.0.0.1", "10.0.0.2", Pop3, 110, none), None);
        assert_eq!(pick(&c, "10.0.0.1", "10.0.0.2", Pop3, 2110, none), None);
        assert_eq!(
            pick(&c, "10.0.0.1", "10.0.0.2", Pop3s, 2995, none),
            Some("req")
        );
        assert_eq!(
            pick(&c, "10.0.0.1", "10.0.0.2", Pop3, 3110, none),
            Some("req-stls")
        );
        let ports: Vec<(PortKind, u16)> = c.listen_ports().into_iter().collect();
        assert_eq!(
            ports,
            [
                (Pop3, 1110),
                (Pop3, 3110),
                (Pop3s, 1995),
                (Pop3s, 2995),
                (Pop3s, 3995)
            ]
        );
    }

    #[test]
    fn unrelated_policies_are_not_candidates() {
        let many: Vec<String> = (0..50)
            .map(|i| {
                let extra = format!(
                    r#", "ports": {{"pop3": {}, "pop3s": {}}}"#,
                    2000 + i,
                    3000 + i
                );
                policy(&format!("p{i}"), i, r#""any""#, r#""any""#, &extra)
            })
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let c = config(&refs);
        let candidates = &c.index().by_listener[&(PortKind::Pop3, 2007)];
        assert_eq!(candidates.len(), 1);
        assert_eq!(
            pick(&c, "10.0.0.1", "10.0.0.2", PortKind::Pop3, 2007, &[]),
            Some("p7")
        );
    }
}
