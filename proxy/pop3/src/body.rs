//! Finding the end of a multi-line response body (RFC 1939 §3) without changing a byte.
//!
//! The scanner is fed the body as it arrives, in chunks of any size, and says where the
//! terminating `.` line ends. It copies nothing: the caller forwards the very bytes it fed.
//!
//! Lines end at LF, with or without a CR before it, and the terminator is a line holding a
//! single `.`. Real servers always send CRLF; accepting a bare LF as a line end too means
//! the proxy can never believe a message goes on where a lenient client (Python's poplib
//! splits on LF) believes it ended, so a server cannot smuggle bytes past the proxy that a
//! client would read as a new response.

/// Streaming terminator search with a per-line length limit.
#[derive(Debug, Clone)]
pub struct BodyScanner {
    state: State,
    /// Bytes of the current line seen so far, line ending included.
    line_len: usize,
    /// Longest line accepted, line ending excluded.
    max_line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    /// The line began with `.`.
    Dot,
    /// The line is `.` followed by CR.
    DotCr,
    InLine,
}

/// A body line longer than the configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("multi-line response line longer than {limit} octets")]
pub struct LineTooLong {
    /// The limit that was exceeded.
    pub limit: usize,
}

impl BodyScanner {
    /// A scanner positioned at the start of a body, right after the `+OK` line.
    pub fn new(max_line: usize) -> BodyScanner {
        BodyScanner {
            state: State::LineStart,
            line_len: 0,
            max_line,
        }
    }

    /// Scans the next chunk of the body.
    ///
    /// Returns `Ok(Some(n))` when the terminator ends at `data[n - 1]` (the bytes after it
    /// belong to the next response), `Ok(None)` when all of `data` is body.
    ///
    /// # Errors
    /// [`LineTooLong`] when a line exceeds the limit; the response cannot be delimited safely
    /// and the session must end without passing a terminator on.
    pub fn scan(&mut self, data: &[u8]) -> Result<Option<usize>, LineTooLong> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::LineStart => {
                    if data[i] == b'.' {
                        self.state = State::Dot;
                        self.line_len = 1;
                        i += 1;
                    } else {
                        self.state = State::InLine;
                        self.line_len = 0;
                    }
                }
                State::Dot => match data[i] {
                    b'\r' => {
                        self.state = State::DotCr;
                        self.line_len = 2;
                        i += 1;
                    }
                    b'\n' => return Ok(Some(self.finish(i + 1))),
                    _ => self.state = State::InLine,
                },
                State::DotCr => match data[i] {
                    b'\n' => return Ok(Some(self.finish(i + 1))),
                    _ => self.state = State::InLine,
                },
                State::InLine => match memchr::memchr(b'\n', &data[i..]) {
                    Some(offset) => {
                        self.line_len += offset + 1;
                        self.check_line_len()?;
                        self.state = State::LineStart;
                        self.line_len = 0;
                        i += offset + 1;
                    }
                    None => {
                        self.line_len += data.len() - i;
                        self.check_line_len()?;
                        i = data.len();
                    }
                },
            }
        }
        Ok(None)
    }

    fn finish(&mut self, end: usize) -> usize {
        self.state = State::LineStart;
        self.line_len = 0;
        end
    }

    fn check_line_len(&self) -> Result<(), LineTooLong> {
        // The limit is on the line's content; allow for its CRLF.
        if self.line_len > self.max_line + 2 {
            Err(LineTooLong {
                limit: self.max_line,
            })
        } else {
            Ok(())
        }
    }
}

/// A complete multi-line body (as [`BodyScanner`] delimited it) without its terminator line.
pub fn without_terminator(body: &[u8]) -> &[u8] {
    let without_lf = body.len().saturating_sub(1);
    match memchr::memrchr(b'\n', &body[..without_lf]) {
        Some(pos) => &body[..=pos],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn end_of(body: &[u8], chunk: usize) -> Result<Option<usize>, LineTooLong> {
        let mut scanner = BodyScanner::new(100);
        let mut offset = 0;
        for piece in body.chunks(chunk.max(1)) {
            if let Some(n) = scanner.scan(piece)? {
                return Ok(Some(offset + n));
            }
            offset += piece.len();
        }
        Ok(None)
    }

    #[test]
    fn finds_terminator_in_every_chunk_size() {
        let cases: [(&[u8], Option<usize>); 9] = [
            (b".\r\n", Some(3)),
            (b"a\r\n.\r\nNEXT", Some(6)),
            (b"..\r\n.\r\n", Some(7)),
            (b"..\r\n", None),
            (b"a.\r\n", None),
            (b"x\r\n.\r", None),
            (b"x\r\n.x\r\n.\r\n+OK", Some(10)),
            (b"a\n.\n", Some(4)),
            (b"line\r\n.\r\n.\r\n", Some(9)),
        ];
        for (body, want) in cases {
            for chunk in 1..=body.len() {
                assert_eq!(
                    end_of(body, chunk),
                    Ok(want),
                    "{} in chunks of {chunk}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn without_terminator_drops_only_the_last_line() {
        assert_eq!(without_terminator(b"a\r\n..b\r\n.\r\n"), b"a\r\n..b\r\n");
        assert_eq!(without_terminator(b"a\n.\n"), b"a\n");
        assert_eq!(without_terminator(b".\r\n"), b"");
    }

    #[test]
    fn overlong_line_is_refused_even_without_newline() {
        let long = vec![b'a'; 103];
        assert_eq!(end_of(&long, 7), Err(LineTooLong { limit: 100 }));
        let mut ok = vec![b'a'; 100];
        ok.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(end_of(&ok, 9), Ok(Some(ok.len())));
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_answer(
            body in proptest::collection::vec(prop_oneof![
                Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a')
            ], 0..200),
            chunk in 1usize..50,
        ) {
            prop_assert_eq!(end_of(&body, chunk), end_of(&body, body.len().max(1)));
        }
    }
}
