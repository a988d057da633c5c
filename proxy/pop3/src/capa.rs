//! CAPA responses (RFC 2449 §5): what the server offers, and the list the client is shown.
//!
//! The client's list is the server's with `STLS` added or removed according to what the
//! proxy will do, and with the login methods the proxy action forbids taken out, so a
//! well-behaved client never tries what would be refused. No I/O here.

use super::command::line_body_len;

/// Which login methods the proxy action allows (SPEC §4 `authentication.allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    /// `USER`/`PASS`.
    pub user: bool,
    /// `APOP`.
    pub apop: bool,
    /// Allowed SASL mechanisms, upper-case; `None` allows every mechanism.
    pub sasl: Option<Vec<String>>,
}

impl AuthPolicy {
    /// Every login method allowed.
    pub fn allow_all() -> AuthPolicy {
        AuthPolicy {
            user: true,
            apop: true,
            sasl: None,
        }
    }

    /// Whether the SASL mechanism (any case) is allowed.
    pub fn allows_sasl(&self, mechanism: &str) -> bool {
        match &self.sasl {
            None => true,
            Some(list) => list.iter().any(|m| m.eq_ignore_ascii_case(mechanism)),
        }
    }
}

/// What a server's CAPA response said, as far as the proxy cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The server offers `STLS`.
    pub stls: bool,
    /// The SASL mechanisms offered, upper-case.
    pub sasl: Vec<String>,
}

impl Capabilities {
    /// Reads a CAPA body (the lines after `+OK`, terminator excluded).
    pub fn parse(body: &[u8]) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in lines(body) {
            let text = String::from_utf8_lossy(&line[..line_body_len(line)]).into_owned();
            let mut words = text.split_ascii_whitespace();
            match words.next().map(str::to_ascii_uppercase).as_deref() {
                Some("STLS") => caps.stls = true,
                Some("SASL") => caps.sasl = words.map(str::to_ascii_uppercase).collect(),
                _ => {}
            }
        }
        caps
    }
}

/// Rewrites a CAPA body for the client.
///
/// `offer_stls` says whether the proxy accepts `STLS` from this client now: it is added when
/// the server lacks it and removed when the proxy will not honour it.
pub fn rewrite(body: &[u8], offer_stls: bool, auth: &AuthPolicy) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    let mut stls_written = false;
    for line in lines(body) {
        let content = &line[..line_body_len(line)];
        let keyword = content
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match keyword.as_slice() {
            b"STLS" => {
                if offer_stls && !stls_written {
                    out.extend_from_slice(line);
                    stls_written = true;
                }
            }
            b"USER" if !auth.user => {}
            b"SASL" => {
                let text = String::from_utf8_lossy(content);
                let kept: Vec<&str> = text
                    .split_ascii_whitespace()
                    .skip(1)
                    .filter(|m| auth.allows_sasl(m))
                    .collect();
                if !kept.is_empty() {
                    out.extend_from_slice(format!("SASL {}\r\n", kept.join(" ")).as_bytes());
                }
            }
            _ => out.extend_from_slice(line),
        }
    }
    if offer_stls && !stls_written {
        out.extend_from_slice(b"STLS\r\n");
    }
    out
}

/// Splits a body into its lines, each with its line ending.
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split_inclusive(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOVECOT: &[u8] =
        b"CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n";

    #[test]
    fn parses_stls_and_sasl() {
        let caps = Capabilities::parse(DOVECOT);
        assert!(caps.stls);
        assert_eq!(caps.sasl, ["PLAIN", "LOGIN"]);
    }

    #[test]
    fn stls_removed_when_not_offered() {
        let out = rewrite(DOVECOT, false, &AuthPolicy::allow_all());
        assert_eq!(
            out,
            b"CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n"
        );
    }

    #[test]
    fn stls_added_when_server_lacks_it() {
        let out = rewrite(b"TOP\r\nUSER\r\n", true, &AuthPolicy::allow_all());
        assert_eq!(out, b"TOP\r\nUSER\r\nSTLS\r\n");
    }

    #[test]
    fn unchanged_when_nothing_to_do() {
        assert_eq!(rewrite(DOVECOT, true, &AuthPolicy::allow_all()), DOVECOT);
    }

    #[test]
    fn forbidden_logins_are_removed() {
        let auth = AuthPolicy {
            user: false,
            apop: true,
            sasl: Some(vec!["PLAIN".into()]),
        };
        let out = rewrite(DOVECOT, true, &auth);
        assert_eq!(
            out,
            b"CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nSASL PLAIN\r\n"
        );
        let none = AuthPolicy {
            sasl: Some(vec![]),
            ..auth
        };
        assert!(!String::from_utf8_lossy(&rewrite(DOVECOT, true, &none)).contains("SASL"));
    }
}
