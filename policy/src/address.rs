//! `AddressMatcher`: one entry of a `from`, `to`, `force_encrypt` or `require_client_tls`
//! list.
//!
//! Entries are `any`, an IP address, a CIDR, a DMail-style IPv4 wildcard (`10.0.0.*`), or a
//! domain (`example.com`, `*.example.com`). Matching is split into addresses and names
//! because the caller knows different things at different times: the client and server
//! addresses always, the server's names (SNI, certificate) only sometimes. IPv4-mapped IPv6
//! addresses (`::ffff:10.0.0.1`, what a dual-stack `::` listener reports for IPv4 peers) are
//! treated as the IPv4 address on both sides, so one entry covers both socket families.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use thiserror::Error;

/// One parsed address-list entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressMatcher(Entry);

/// The entry does not parse (the message is the one `popgate check` prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not an address, CIDR, wildcard or domain")]
pub struct BadAddress;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Entry {
    Any,
    /// A single address is a /32 or /128 network; mapped IPv6 is stored as IPv4.
    Net(IpNet),
    /// IPv4 octets, `None` for `*`.
    Wildcard([Option<u8>; 4]),
    /// Lowercase, no trailing dot; matches exactly this name.
    Domain(String),
    /// Lowercase suffix without `*.`; matches strict subdomains only.
    SubDomains(String),
}

impl AddressMatcher {
    /// Parses one entry. Case and a trailing dot on domains do not matter; host bits of a
    /// CIDR are cleared (`10.1.2.3/8` means `10.0.0.0/8`, as iptables reads it).
    ///
    /// # Errors
    /// [`BadAddress`] when the text is none of the accepted forms.
    pub fn parse(text: &str) -> Result<Self, BadAddress> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("any") {
            return Ok(Self(Entry::Any));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self(Entry::Net(canonical_net(IpNet::from(ip)))));
        }
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Self(Entry::Net(canonical_net(net.trunc()))));
        }
        if let Some(octets) = parse_wildcard(text) {
            return Ok(Self(Entry::Wildcard(octets)));
        }
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        if let Some(suffix) = lower.strip_prefix("*.") {
            if is_domain(suffix) {
                return Ok(Self(Entry::SubDomains(suffix.to_owned())));
            }
        } else if is_domain(&lower) {
            return Ok(Self(Entry::Domain(lower)));
        }
        Err(BadAddress)
    }

    /// True when the entry matches this IP address. Domain entries never do.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        match &self.0 {
            Entry::Any => true,
            Entry::Net(net) => net.contains(&ip),
            Entry::Wildcard(octets) => match ip {
                IpAddr::V4(v4) => octets
                    .iter()
                    .zip(v4.octets())
                    .all(|(want, got)| want.is_none_or(|w| w == got)),
                IpAddr::V6(_) => false,
            },
            Entry::Domain(_) | Entry::SubDomains(_) => false,
        }
    }

    /// True when the entry matches this host name (SNI or a certificate name); case and a
    /// trailing dot do not matter. `example.com` matches only itself, `*.example.com` any
    /// name below it but not `example.com`; `any` matches every name; address entries none.
    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        match &self.0 {
            Entry::Any => true,
            Entry::Domain(domain) => name.eq_ignore_ascii_case(domain),
            Entry::SubDomains(suffix) => {
                // Compared as bytes: the suffix is ASCII, and a non-ASCII name simply fails.
                let (name, suffix) = (name.as_bytes(), suffix.as_bytes());
                let split = name.len().wrapping_sub(suffix.len() + 1);
                name.len() > suffix.len() + 1
                    && name[split] == b'.'
                    && name[split + 1..].eq_ignore_ascii_case(suffix)
            }
            Entry::Net(_) | Entry::Wildcard(_) => false,
        }
    }

    /// True for `any`.
    pub fn is_any(&self) -> bool {
        matches!(self.0, Entry::Any)
    }

    /// The name of an exact domain entry (`example.com`, lowercase): the only kind whose
    /// DNS addresses can be looked up to match a connection that brings no name (SPEC §4).
    /// `None` for `*.example.com` and for address entries.
    pub fn domain(&self) -> Option<&str> {
        match &self.0 {
            Entry::Domain(domain) => Some(domain),
            _ => None,
        }
    }

    /// True for `example.com` and `*.example.com` entries (which only names can match).
    pub fn is_domain(&self) -> bool {
        matches!(self.0, Entry::Domain(_) | Entry::SubDomains(_))
    }
}

impl FromStr for AddressMatcher {
    type Err = BadAddress;

    fn from_str(text: &str) -> Result<Self, BadAddress> {
        Self::parse(text)
    }
}

impl fmt::Display for AddressMatcher {
    /// The canonical spelling, which parses back to an equal matcher.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Entry::Any => f.write_str("any"),
            Entry::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Entry::Net(net) => write!(f, "{net}"),
            Entry::Wildcard(octets) => {
                for (i, octet) in octets.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    match octet {
                        Some(o) => write!(f, "{o}")?,
                        None => f.write_str("*")?,
                    }
                }
                Ok(())
            }
            Entry::Domain(domain) => f.write_str(domain),
            Entry::SubDomains(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// True when any entry of `list` matches the address.
pub fn any_matches_ip(list: &[AddressMatcher], ip: IpAddr) -> bool {
    list.iter().any(|m| m.matches_ip(ip))
}

/// True when any entry of `list` matches the address or one of the names.
pub fn any_matches_host(list: &[AddressMatcher], ip: IpAddr, names: &[String]) -> bool {
    list.iter()
        .any(|m| m.matches_ip(ip) || names.iter().any(|n| m.matches_name(n)))
}

/// IPv4-mapped IPv6 becomes IPv4, so `::ffff:10.0.0.1` and `10.0.0.1` are one address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A network inside `::ffff:0:0/96` becomes the IPv4 network it maps.
fn canonical_net(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else { return net };
    const MAPPED_PREFIX: u8 = 96;
    let mapped_base = Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), MAPPED_PREFIX);
    match (mapped_base, v6.addr().to_ipv4_mapped()) {
        (Ok(base), Some(v4)) if v6.prefix_len() >= MAPPED_PREFIX && base.contains(&v6) => {
            Ipv4Net::new(v4, v6.prefix_len() - MAPPED_PREFIX).map_or(net, |n| IpNet::V4(n.trunc()))
        }
        _ => net,
    }
}

/// `a.b.c.d` where each part is a decimal octet or `*`, with at least one `*`.
fn parse_wildcard(text: &str) -> Option<[Option<u8>; 4]> {
    let mut octets = [None; 4];
    let mut parts = text.split('.');
    for slot in &mut octets {
        let part = parts.next()?;
        *slot = match part {
            "*" => None,
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(digits.parse::<u8>().ok()?)
            }
            _ => return None,
        };
    }
    let has_star = octets.iter().any(Option::is_none);
    (parts.next().is_none() && has_star).then_some(octets)
}

/// A DNS name with at least two labels whose last label has a letter (so a mistyped IP
/// address or range is not silently read as a name, and a lone word like `ayn` is not a
/// domain).
fn is_domain(name: &str) -> bool {
    const MAX_NAME: usize = 253;
    const MAX_LABEL: usize = 63;
    if name.is_empty() || name.len() > MAX_NAME {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const V4_ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    fn m(text: &str) -> AddressMatcher {
        AddressMatcher::parse(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ip_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("any", "10.0.0.1", true),
            ("any", "2001:db8::1", true),
            ("ANY", "10.0.0.1", true),
            ("10.0.0.1", "10.0.0.1", true),
            ("10.0.0.1", "10.0.0.2", false),
            ("10.0.0.0/8", "10.255.0.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.1.2.3/8", "10.9.9.9", true),
            ("192.168.1.*", "192.168.1.77", true),
            ("192.168.1.*", "192.168.2.77", false),
            ("192.168.*.*", "192.168.2.77", true),
            ("10.*.0.1", "10.200.0.1", true),
            ("10.*.0.1", "10.200.0.2", false),
            ("192.168.1.*", "2001:db8::1", false),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("2001:db8::1", "2001:db8::1", true),
            ("::1", "::1", true),
            ("::1", "127.0.0.1", false),
            // IPv4-mapped IPv6, as a dual-stack listener reports IPv4 peers.
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("192.168.1.*", "::ffff:192.168.1.9", true),
            ("10.0.0.1", "::ffff:10.0.0.1", true),
            ("::ffff:10.0.0.1", "10.0.0.1", true),
            ("::ffff:10.0.0.0/104", "10.3.3.3", true),
            ("::ffff:10.0.0.0/104", "11.3.3.3", false),
            ("example.com", "10.0.0.1", false),
            ("*.example.com", "10.0.0.1", false),
        ];
        for (entry, addr, want) in cases {
            assert_eq!(m(entry).matches_ip(ip(addr)), *want, "{entry} vs {addr}");
        }
    }

    #[test]
    fn name_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("example.com", "example.com", true),
            ("example.com", "EXAMPLE.com.", true),
            ("example.com.", "example.com", true),
            ("Example.COM", "example.com", true),
            ("example.com", "pop.example.com", false),
            ("example.com", "badexample.com", false),
            ("*.example.com", "pop.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "POP.Example.Com.", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "badexample.com", false),
            ("*.example.com", ".example.com", false),
            ("*.example.com", "pop.example.com.evil.net", false),
            ("any", "whatever.net", true),
            ("10.0.0.1", "10.0.0.1", false),
            ("10.0.0.0/8", "example.com", false),
        ];
        for (entry, name, want) in cases {
            assert_eq!(m(entry).matches_name(name), *want, "{entry} vs {name}");
        }
    }

    #[test]
    fn bad_entries_are_rejected() {
        for text in [
            "",
            "*",
            "10.0.0",
            "10.0.0.256",
            "10.0.0.*.1",
            "10.0.*",
            "300.*.*.*",
            "10.0.0.0/33",
            "2001:db8::/129",
            "exa mple.com",
            "-bad.com",
            "ayn",
            "*.",
            "*.*.com",
            "10.0.0.1-5",
            "1.2.3.4.5",
            "example..com",
            "*example.com",
        ] {
            assert_eq!(AddressMatcher::parse(text), Err(BadAddress), "{text:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "any",
            "10.0.0.1",
            "10.0.0.0/8",
            "192.168.*.*",
            "2001:db8::/32",
            "::1",
            "example.com",
            "*.example.com",
        ] {
            let matcher = m(text);
            assert_eq!(matcher.to_string(), text);
            assert_eq!(m(&matcher.to_string()), matcher);
        }
        assert_eq!(m("::ffff:10.0.0.1").to_string(), "10.0.0.1");
        assert_eq!(m("Example.COM.").to_string(), "example.com");
    }

    #[test]
    fn wildcard_matches_nothing_ipv6_and_unspecified_is_exact() {
        assert!(!m("*.*.*.*").matches_ip(ip("::1")));
        assert!(m("*.*.*.*").matches_ip(IpAddr::V4(V4_ANY)));
        assert!(m("0.0.0.0").matches_ip(IpAddr::V4(V4_ANY)));
        assert!(!m("0.0.0.0").matches_ip(ip("1.2.3.4")));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            if let Ok(matcher) = AddressMatcher::parse(&text) {
                proptest::prop_assert_eq!(AddressMatcher::parse(&matcher.to_string()), Ok(matcher));
            }
        }

        #[test]
        fn matches_name_never_panics(name in "\\PC{0,40}") {
            let _ = m("*.example.com").matches_name(&name);
            let _ = m("example.com").matches_name(&name);
        }
    }
}
