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
}
