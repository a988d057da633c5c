//! Login attempts as the log sees them: who (when visible), how, and how it ended. Never the
//! credential: the SASL PLAIN/LOGIN responses are decoded only to find the user name, and the
//! decoded bytes are wiped before they are dropped.
//!
//! The session emits [`Event::Login`](crate::Event::Login) with a [`LoginAttempt`] when the
//! server answers a `PASS`, `APOP` or `AUTH mechanism` (or policy refuses one). No I/O here.

use std::fmt;

/// One completed login attempt (issue 14's log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The user name: from `USER`, `APOP`, or a SASL PLAIN (authorization identity when
    /// given, else authentication identity) or LOGIN response; `None` when not visible
    /// (other SASL mechanisms, or a response that did not decode).
    pub user: Option<String>,
    /// How the client logged in.
    pub mechanism: LoginMechanism,
    /// How it ended.
    pub result: LoginResult,
    /// The server's RESP-CODE (RFC 2449 §8), e.g. `AUTH` or `SYS/TEMP`, without brackets.
    pub resp_code: Option<String>,
}

/// The login method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMechanism {
    /// `USER` / `PASS`.
    User,
    /// `APOP`.
    Apop,
    /// `AUTH` with this SASL mechanism, upper-cased.
    Sasl(String),
}

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// The server said `+OK`.
    Ok,
    /// The server said `-ERR` (or the client cancelled the SASL exchange).
    Failed,
    /// popgate refused it by policy before the server saw it.
    RefusedByPolicy,
}

/// `USER`, `APOP`, `SASL:PLAIN`: the form for log fields.
impl fmt::Display for LoginMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginMechanism::User => f.write_str("USER"),
            LoginMechanism::Apop => f.write_str("APOP"),
            LoginMechanism::Sasl(name) => write!(f, "SASL:{name}"),
        }
    }
}

/// `ok`, `failed`, `refused_by_policy`: the form for log fields and metric labels.
impl fmt::Display for LoginResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::RefusedByPolicy => "refused_by_policy",
        })
    }
}

/// The user name in a SASL response of `mechanism` (the `response`-th client response,
/// counting the initial response as 0), when that mechanism shows one there.
pub(crate) fn sasl_user(mechanism: &str, response: u32, line: &[u8]) -> Option<String> {
    match (mechanism, response) {
        ("PLAIN", 0) => {
            let mut decoded = decode_base64(line)?;
            let user = plain_user(&decoded);
            decoded.fill(0);
            user
        }
        ("LOGIN", 0) => {
            let mut decoded = decode_base64(line)?;
            let user = printable(&decoded);
            decoded.fill(0);
            user
        }
        _ => None,
    }
}

/// `authzid NUL authcid NUL passwd` (RFC 4616): the authorization identity when given, else
/// the authentication identity. The password is never looked at.
fn plain_user(decoded: &[u8]) -> Option<String> {
    let mut parts = decoded.splitn(3, |&b| b == 0);
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    parts.next()?;
    printable(if authzid.is_empty() { authcid } else { authzid })
}

/// A user name fit for a log field: printable UTF-8 without control characters, bounded.
fn printable(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    (!text.is_empty() && text.len() <= 256 && !text.chars().any(char::is_control))
        .then(|| text.to_owned())
}

/// Standard base64 (RFC 4648 §4), padding optional, surrounding whitespace and line ending
/// ignored. `None` on anything else.
fn decode_base64(line: &[u8]) -> Option<Vec<u8>> {
    let text = line.trim_ascii();
    let text = text
        .strip_suffix(b"==")
        .or(text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &byte in text {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_response_gives_the_user_never_the_password() {
        // "\0alice\0secret"
        assert_eq!(
            sasl_user("PLAIN", 0, b"AGFsaWNlAHNlY3JldA==\r\n").as_deref(),
            Some("alice")
        );
        // "admin\0alice\0secret": the mailbox being accessed
        assert_eq!(
            sasl_user("PLAIN", 0, b"YWRtaW4AYWxpY2UAc2VjcmV0").as_deref(),
            Some("admin")
        );
        assert_eq!(sasl_user("PLAIN", 0, b"not base64!"), None);
        assert_eq!(sasl_user("PLAIN", 0, b"*\r\n"), None);
        assert_eq!(sasl_user("PLAIN", 1, b"AGFsaWNlAHNlY3JldA=="), None);
    }

    #[test]
    fn login_first_response_is_the_user() {
        assert_eq!(sasl_user("LOGIN", 0, b"Ym9i\r\n").as_deref(), Some("bob"));
        assert_eq!(sasl_user("LOGIN", 1, b"c2VjcmV0\r\n"), None);
        assert_eq!(sasl_user("CRAM-MD5", 0, b"Ym9i\r\n"), None);
    }

    #[test]
    fn labels_for_the_log() {
        assert_eq!(
            LoginMechanism::Sasl("PLAIN".into()).to_string(),
            "SASL:PLAIN"
        );
        assert_eq!(LoginMechanism::User.to_string(), "USER");
        assert_eq!(
            LoginResult::RefusedByPolicy.to_string(),
            "refused_by_policy"
        );
    }
}
