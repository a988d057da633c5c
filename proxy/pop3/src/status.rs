//! Server status lines: `+OK`, `-ERR` and the SASL continuation `+ ` (RFC 1939 §3, RFC 5034).
//!
//! No I/O here; the session feeds complete lines.

/// What a server status line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `+OK ...`: success; a multi-line body may follow.
    Ok,
    /// `-ERR ...`: failure; never followed by a body.
    Err,
    /// `+` alone or `+ base64`: a SASL challenge, the exchange goes on (RFC 5034 §4).
    Continue,
}

impl Status {
    /// Classifies a complete line, or `None` when it is not a POP3 status line at all.
    pub fn parse(line: &[u8]) -> Option<Status> {
        let body = &line[..super::command::line_body_len(line)];
        if starts_with_ignore_case(body, b"+OK") && is_word_end(body, 3) {
            Some(Status::Ok)
        } else if starts_with_ignore_case(body, b"-ERR") && is_word_end(body, 4) {
            Some(Status::Err)
        } else if body.first() == Some(&b'+') && is_word_end(body, 1) {
            Some(Status::Continue)
        } else {
            None
        }
    }
}

/// The RESP-CODE of a status line (RFC 2449 §8): `-ERR [AUTH] bad` gives `AUTH`. Only a
/// well-formed code is returned (letters, digits, `/` and `-`, at most 64 octets), so it is
/// safe in a log field.
pub fn resp_code(line: &[u8]) -> Option<&str> {
    let body = &line[..super::command::line_body_len(line)];
    let space = body.iter().position(|&b| b == b' ')?;
    let rest = body[space + 1..].strip_prefix(b"[")?;
    let end = rest.iter().position(|&b| b == b']')?;
    let code = &rest[..end];
    let valid = !code.is_empty()
        && code.len() <= 64
        && code
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'/' || b == b'-');
    if valid {
        std::str::from_utf8(code).ok()
    } else {
        None
    }
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The status keyword must end the line or be followed by a space.
fn is_word_end(body: &[u8], at: usize) -> bool {
    body.len() == at || body[at] == b' '
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_status_lines() {
        let cases: [(&[u8], Option<Status>); 9] = [
            (b"+OK\r\n", Some(Status::Ok)),
            (b"+OK 2 320\r\n", Some(Status::Ok)),
            (b"-ERR [AUTH] nope\r\n", Some(Status::Err)),
            (b"-ERR\r\n", Some(Status::Err)),
            (b"+ \r\n", Some(Status::Continue)),
            (b"+\r\n", Some(Status::Continue)),
            (b"+ VXNlcm5hbWU6\r\n", Some(Status::Continue)),
            (b"+OKAY\r\n", None),
            (b"hello\r\n", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                Status::parse(line),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn resp_codes_are_extracted_when_well_formed() {
        assert_eq!(resp_code(b"-ERR [AUTH] bad\r\n"), Some("AUTH"));
        assert_eq!(resp_code(b"-ERR [SYS/TEMP] later\r\n"), Some("SYS/TEMP"));
        assert_eq!(resp_code(b"+OK [IN-USE]\r\n"), Some("IN-USE"));
        assert_eq!(resp_code(b"-ERR no code\r\n"), None);
        assert_eq!(resp_code(b"-ERR [a b] x\r\n"), None);
        assert_eq!(resp_code(b"-ERR [AUTH\r\n"), None);
    }
}
