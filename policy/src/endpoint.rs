//! Network endpoints named in the configuration: a policy's `upstream` server and an
//! action's `clamd` scanner.
//!
//! Both accept `host:port` with IPv6 in brackets (`[2001:db8::1]:110`). Hosts are kept as
//! text (an IP address or a DNS name): resolving them is I/O and belongs to `proxy`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::defaults as d;
use crate::policy::PortKind;
use crate::raw::RawUpstream;

/// The server a policy sends its connections to, instead of the original destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    host: String,
    ports: UpstreamPorts,
}

/// Which server port a client's connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamPorts {
    /// `"host"` or the object form: the port follows the kind the client used.
    PerKind {
        /// Server port for clients of the pop3 port.
        pop3: u16,
        /// Server port for clients of the pop3s port.
        pop3s: u16,
    },
    /// `"host:port"`: one port for every client. Implicit TLS toward it for clients of the
    /// pop3s port when the server leg is TLS; plaintext or STLS for pop3 clients.
    Single(u16),
}

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clamd {
    /// `unix:/path`: a Unix stream socket (always absolute).
    Unix(PathBuf),
    /// `tcp:host:port`.
    Tcp {
        /// IP address or DNS name.
        host: String,
        /// TCP port, never 0.
        port: u16,
    },
}

impl Upstream {
    /// The server's host name or IP address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How the server port is chosen.
    pub fn ports(&self) -> UpstreamPorts {
        self.ports
    }

    /// The server port for a client that connected to a port of `kind`.
    pub fn port_for(&self, kind: PortKind) -> u16 {
        match (self.ports, kind) {
            (UpstreamPorts::PerKind { pop3, .. }, PortKind::Pop3) => pop3,
            (UpstreamPorts::PerKind { pop3s, .. }, PortKind::Pop3s) => pop3s,
            (UpstreamPorts::Single(port), _) => port,
        }
    }

    /// Parses the raw form; `None` when the host or a port is invalid (the caller reports
    /// the error, since it knows the JSON path).
    pub(crate) fn from_raw(raw: &RawUpstream) -> Option<Self> {
        match raw {
            RawUpstream::Text(text) => {
                let (host, port) = split_host_port(text.trim())?;
                let ports = match port {
                    Some(port) => UpstreamPorts::Single(port),
                    None => UpstreamPorts::PerKind {
                        pop3: d::POP3_PORT,
                        pop3s: d::POP3S_PORT,
                    },
                };
                Some(Self { host, ports })
            }
            RawUpstream::Ports(object) => {
                let (host, port) = split_host_port(object.host.trim())?;
                let pop3 = object.pop3.unwrap_or(d::POP3_PORT);
                let pop3s = object.pop3s.unwrap_or(d::POP3S_PORT);
                // A port belongs in `pop3`/`pop3s` here, not in `host`.
                if port.is_some() || pop3 == 0 || pop3s == 0 {
                    return None;
                }
                let ports = UpstreamPorts::PerKind { pop3, pop3s };
                Some(Self { host, ports })
            }
        }
    }
}

impl fmt::Display for Upstream {
    /// `host` (with its two ports) or `host:port`, IPv6 bracketed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = bracketed(&self.host);
        match self.ports {
            UpstreamPorts::PerKind { pop3, pop3s } => {
                write!(f, "{host} (pop3 {pop3}, pop3s {pop3s})")
            }
            UpstreamPorts::Single(port) => write!(f, "{host}:{port}"),
        }
    }
}

impl Clamd {
    /// Parses `unix:/path` or `tcp:host:port`; `None` otherwise.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            return path.is_absolute().then_some(Self::Unix(path));
        }
        let rest = text.strip_prefix("tcp:")?;
        match split_host_port(rest)? {
            (host, Some(port)) => Some(Self::Tcp { host, port }),
            (_, None) => None,
        }
    }
}

impl fmt::Display for Clamd {
    /// The configuration spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp { host, port } => write!(f, "tcp:{}:{port}", bracketed(host)),
        }
    }
}

/// Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. The port, when
/// present, must be 1..=65535; the host must be an IP address or a DNS name.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return Some((inside.to_owned(), optional_port(port)?));
    } else if text.parse::<IpAddr>().is_ok() {
        return Some((text.to_owned(), None));
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if !is_host(host) {
        return None;
    }
    Some((host.to_owned(), optional_port(port)?))
}

/// `Some(None)` without a port, `Some(Some(p))` for a valid one, `None` for a bad one.
fn optional_port(port: Option<&str>) -> Option<Option<u16>> {
    match port {
        None => Some(None),
        Some(text) => parse_port(text).map(Some),
    }
}

fn parse_port(text: &str) -> Option<u16> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(port) => Some(port),
    }
}

/// An IPv4 address or a DNS name (one label allowed: `localhost`, `mailserver`).
fn is_host(host: &str) -> bool {
    const MAX_NAME: usize = 253;
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawUpstreamPorts;

    fn text(s: &str) -> Option<Upstream> {
        Upstream::from_raw(&RawUpstream::Text(s.to_owned()))
    }

    #[test]
    fn upstream_text_forms() {
        let u = text("pop.example.net").unwrap();
        assert_eq!(u.host(), "pop.example.net");
        assert_eq!(u.port_for(PortKind::Pop3), 110);
        assert_eq!(u.port_for(PortKind::Pop3s), 995);

        let u = text("10.1.1.5:1110").unwrap();
        assert_eq!(
            (u.host(), u.ports()),
            ("10.1.1.5", UpstreamPorts::Single(1110))
        );
        assert_eq!(u.port_for(PortKind::Pop3s), 1110);

        let u = text("[::1]:110").unwrap();
        assert_eq!((u.host(), u.ports()), ("::1", UpstreamPorts::Single(110)));
        assert_eq!(u.to_string(), "[::1]:110");

        let u = text("2001:db8::5").unwrap();
        assert_eq!(u.host(), "2001:db8::5");
        assert_eq!(u.port_for(PortKind::Pop3), 110);

        let u = text("[2001:db8::5]").unwrap();
        assert_eq!(u.host(), "2001:db8::5");
        assert_eq!(text("localhost").unwrap().host(), "localhost");
    }

    #[test]
    fn upstream_text_rejects_garbage() {
        for bad in [
            "",
            ":110",
            "host:",
            "host:0",
            "host:70000",
            "host:port",
            "[::1",
            "[::1]110",
            "[nothost]:110",
            "a b",
            "host:1:2",
            "10.0.0.256",
            "-host",
        ] {
            assert_eq!(text(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn upstream_object_form() {
        let raw = RawUpstream::Ports(RawUpstreamPorts {
            host: "h".into(),
            pop3: Some(1110),
            pop3s: None,
        });
        let u = Upstream::from_raw(&raw).unwrap();
        assert_eq!(
            u.ports(),
            UpstreamPorts::PerKind {
                pop3: 1110,
                pop3s: 995
            }
        );
        let raw = RawUpstream::Ports(RawUpstreamPorts {
            host: "h:110".into(),
            pop3: None,
            pop3s: None,
        });
        assert_eq!(Upstream::from_raw(&raw), None);
    }

    #[test]
    fn clamd_forms() {
        assert_eq!(
            Clamd::parse("unix:/run/clamav/clamd.ctl"),
            Some(Clamd::Unix("/run/clamav/clamd.ctl".into()))
        );
        assert_eq!(
            Clamd::parse("tcp:127.0.0.1:3310"),
            Some(Clamd::Tcp {
                host: "127.0.0.1".into(),
                port: 3310
            })
        );
        assert_eq!(
            Clamd::parse("tcp:[::1]:3310"),
            Some(Clamd::Tcp {
                host: "::1".into(),
                port: 3310
            })
        );
        for bad in [
            "unix:relative",
            "tcp:host",
            "tcp::3310",
            "udp:h:1",
            "/run/clamd",
            "",
        ] {
            assert_eq!(Clamd::parse(bad), None, "{bad:?}");
        }
        let c = Clamd::parse("tcp:[::1]:3310").unwrap();
        assert_eq!(c.to_string(), "tcp:[::1]:3310");
    }
}
