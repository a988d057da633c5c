//! Finding the end of a multi-line response body (RFC 1939 §3) without changing a byte, and
//! refusing every body whose end a lenient reader could see elsewhere (SPEC §5).
//!
//! The scanner is fed the body as it arrives, in chunks of any size, and says where the
//! terminating `.` CRLF line ends. It copies nothing: the caller forwards the very bytes it
//! fed, up to the count the scanner returns.
//!
//! Every client must see the boundaries popgate sees. Lenient readers split lines on LF and
//! drop a CR before it (JavaMail, Python's poplib), or also take a bare CR as a line end.
//! So a line that begins with `.` (after LF, or after a bare CR) must be the terminator
//! `.` CRLF (only after LF) or be dot-stuffed (`..`); anything else is a server protocol
//! violation and the message must not be completed for the client. And since a reader that
//! takes CR as a line end would act on `.` CR before the next byte arrives, a `.` CR at a
//! line start is never handed out until the byte after it shows it is the terminator.
//!
//! The terminator must also follow a CRLF (or open the body): popgate's inspection and its
//! streaming re-stuffing read lines as ending at CRLF, like `popgate_inspect`; a `.` CRLF
//! after a line ended by LF alone is a terminator to a lenient client but not to them, so
//! it is refused rather than read two ways (real servers send CRLF throughout).

use crate::Violation;

/// Streaming terminator search with a per-line length limit and the framing rules above.
#[derive(Debug, Clone)]
pub struct BodyScanner {
    state: State,
    /// Bytes of the current line seen so far, line ending included.
    line_len: usize,
    /// Longest line accepted, line ending excluded.
    max_line: usize,
    /// The current line follows a line ended by LF alone.
    after_bare_lf: bool,
}

/// What [`BodyScanner::scan`] found in a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// The first `n` bytes are body and may be forwarded. When `n` is less than the chunk,
    /// the rest (a CR after a line-start `.`) must be fed again, with the bytes that follow.
    Body(usize),
    /// The terminator ends at `data[n - 1]`; the bytes after it belong to the next response.
    End(usize),
}

/// One step of [`BodyScanner::scan`].
enum Step {
    /// Go on at this index.
    At(usize),
    /// The terminator ended just before this index.
    End(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after LF, or the status line).
    LineStart,
    /// The line began with `.`.
    Dot,
    /// The line is `.` followed by CR.
    DotCr,
    /// Inside a line.
    InLine,
    /// Inside a line, right after a CR: LF ends the line, anything else makes it a bare CR.
    Cr,
    /// A bare CR was followed by `.`: only `..` is allowed there.
    CrDot,
}

impl BodyScanner {
    /// A scanner positioned at the start of a body, right after the `+OK` line.
    pub fn new(max_line: usize) -> BodyScanner {
        BodyScanner {
            state: State::LineStart,
            line_len: 0,
            max_line,
            after_bare_lf: false,
        }
    }

    /// Scans the next chunk of the body.
    ///
    /// # Errors
    /// A [`Violation`] when a line exceeds the limit ([`Violation::BodyLineTooLong`]) or a
    /// line beginning with `.` is neither the terminator nor dot-stuffed. The response cannot
    /// be delimited safely: the session must end without passing a terminator on.
    pub fn scan(&mut self, data: &[u8]) -> Result<Scanned, Violation> {
        let mut i = 0;
        while i < data.len() {
            match self.step(data, i)? {
                Step::At(next) => i = next,
                Step::End(end) => return Ok(Scanned::End(end)),
            }
        }
        if self.state == State::DotCr {
            // `.` CR at a line start: a CR-as-line-end reader would take it for the
            // terminator, so it waits for the LF that makes it one (or the byte that
            // makes it a violation). The `.` went out already or goes out now; hold the CR.
            self.state = State::Dot;
            self.line_len = 1;
            return Ok(Scanned::Body(data.len() - 1));
        }
        Ok(Scanned::Body(data.len()))
    }

    /// Moves the state on from `data[i]`: where to go on, or where the terminator ended.
    fn step(&mut self, data: &[u8], i: usize) -> Result<Step, Violation> {
        let byte = data[i];
        match (self.state, byte) {
            (State::LineStart, b'.') => self.enter(State::Dot, 1, i + 1),
            (State::LineStart, _) => self.enter(State::InLine, 0, i),
            (State::Dot, b'.') | (State::CrDot, b'.') => self.advance(State::InLine, i),
            (State::Dot, b'\r') => self.advance(State::DotCr, i),
            (State::Dot, b'\n') => Err(Violation::LfOnlyTerminator),
            (State::Dot, _) => Err(Violation::UnstuffedDotLine),
            (State::DotCr, b'\n') if self.after_bare_lf => Err(Violation::TerminatorAfterBareLf),
            (State::DotCr, b'\n') => {
                self.state = State::LineStart;
                self.line_len = 0;
                Ok(Step::End(i + 1))
            }
            (State::DotCr, _) => Err(Violation::DotCrWithoutLf),
            (State::CrDot, _) => Err(Violation::DotAfterBareCr),
            (State::InLine, _) => self.in_line(data, i),
            (State::Cr, b'\n') => {
                self.after_bare_lf = false;
                self.counted(State::LineStart, i)
            }
            (State::Cr, b'.') => self.counted(State::CrDot, i),
            (State::Cr, b'\r') => self.counted(State::Cr, i),
            // The CR was a bare one; the byte is the line's next.
            (State::Cr, _) => self.enter(State::InLine, self.line_len, i),
        }
    }

    /// Inside a line: jumps to its end (or the chunk's) in one search.
    fn in_line(&mut self, data: &[u8], i: usize) -> Result<Step, Violation> {
        let Some(offset) = memchr::memchr2(b'\n', b'\r', &data[i..]) else {
            self.line_len += data.len() - i;
            self.check_line_len()?;
            return Ok(Step::At(data.len()));
        };
        let at = i + offset;
        if data[at] == b'\r' && data.get(at + 1) == Some(&b'\n') {
            // The common case, CRLF, in one step.
            self.line_len += offset + 2;
            self.check_line_len()?;
            self.after_bare_lf = false;
            return self.enter(State::LineStart, self.line_len, at + 2);
        }
        self.line_len += offset + 1;
        self.check_line_len()?;
        // memchr2 stops at a CR first, so an LF found here has none before it (a CRLF split
        // across chunks goes through `State::Cr`).
        if data[at] == b'\n' {
            self.after_bare_lf = true;
            return self.enter(State::LineStart, self.line_len, at + 1);
        }
        self.enter(State::Cr, self.line_len, at + 1)
    }

    /// Enters `state` with `line_len` bytes of the line seen; goes on at `next`.
    fn enter(&mut self, state: State, line_len: usize, next: usize) -> Result<Step, Violation> {
        self.state = state;
        self.line_len = line_len;
        Ok(Step::At(next))
    }

    /// Enters `state`, the byte at `i` counted in the line (no limit check).
    fn advance(&mut self, state: State, i: usize) -> Result<Step, Violation> {
        self.enter(state, self.line_len + 1, i + 1)
    }

    /// As [`BodyScanner::advance`], with the line's limit checked.
    fn counted(&mut self, state: State, i: usize) -> Result<Step, Violation> {
        self.line_len += 1;
        self.check_line_len()?;
        self.enter(state, self.line_len, i + 1)
    }

    fn check_line_len(&self) -> Result<(), Violation> {
        // The limit is on the line's content; allow for its CRLF.
        if self.line_len > self.max_line + 2 {
            Err(Violation::BodyLineTooLong {
                limit: self.max_line,
            })
        } else {
            Ok(())
        }
    }
}

/// Whether `body` is exactly one well-framed multi-line body: it ends with the terminator,
/// the only one, and no reader could end it elsewhere. No line-length limit applies.
pub fn is_whole_body(body: &[u8]) -> bool {
    let mut scanner = BodyScanner::new(usize::MAX / 4);
    scanner.scan(body) == Ok(Scanned::End(body.len()))
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

    /// Feeds `body` in chunks as the session does (held bytes are fed again with the next
    /// chunk); returns where the terminator ends and how many bytes were handed out.
    fn feed(body: &[u8], chunk: usize) -> (Found, usize) {
        let mut scanner = BodyScanner::new(100);
        let mut handed = 0;
        let mut buffered: Vec<u8> = Vec::new();
        for piece in body.chunks(chunk.max(1)) {
            buffered.extend_from_slice(piece);
            match scanner.scan(&buffered) {
                Ok(Scanned::End(n)) => return (Ok(Some(handed + n)), handed + n),
                Ok(Scanned::Body(n)) => {
                    handed += n;
                    buffered.drain(..n);
                }
                Err(violation) => return (Err(violation), handed),
            }
        }
        (Ok(None), handed)
    }

    type Found = Result<Option<usize>, Violation>;

    fn end_of(body: &[u8], chunk: usize) -> Found {
        feed(body, chunk).0
    }

    #[test]
    fn finds_terminator_in_every_chunk_size() {
        let cases: [(&[u8], Found); 22] = [
            (b"a\n..b\r\n.\r\n", Ok(Some(10))),
            (b"a\n.\r\n", Err(Violation::TerminatorAfterBareLf)),
            (b"\n.\r\n", Err(Violation::TerminatorAfterBareLf)),
            (b".\r\n", Ok(Some(3))),
            (b"a\r\n.\r\nNEXT", Ok(Some(6))),
            (b"..\r\n.\r\n", Ok(Some(7))),
            (b"..\r\n", Ok(None)),
            (b"a.\r\n", Ok(None)),
            (b"x\r\n.\r", Ok(None)),
            (b"line\r\n.\r\n.\r\n", Ok(Some(9))),
            (b"a\rb\r\n.\r\n", Ok(Some(8))),
            (b"a\r..b\r\n.\r\n", Ok(Some(10))),
            (b"a\r\r\n.\r\n", Ok(Some(7))),
            // SPEC §5: what a lenient reader could take for a terminator is refused.
            (b"a\n.\n", Err(Violation::LfOnlyTerminator)),
            (b"x\r\n.x\r\n.\r\n+OK", Err(Violation::UnstuffedDotLine)),
            (b"x\r\n. \r\n.\r\n", Err(Violation::UnstuffedDotLine)),
            (b"x\r\n.\rX\r\n.\r\n", Err(Violation::DotCrWithoutLf)),
            (b"x\r\n.\r\r\n.\r\n", Err(Violation::DotCrWithoutLf)),
            (b"x\r.\r\n.\r\n", Err(Violation::DotAfterBareCr)),
            (b"...\r.\r\n", Err(Violation::DotAfterBareCr)),
            (b"x\r.\n", Err(Violation::DotAfterBareCr)),
            (b"x\r\r.y\r\n", Err(Violation::DotAfterBareCr)),
        ];
        for (body, want) in cases {
            for chunk in 1..=body.len() {
                assert_eq!(
                    end_of(body, chunk),
                    want,
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn dot_cr_is_held_until_the_next_byte() {
        let mut scanner = BodyScanner::new(100);
        assert_eq!(scanner.scan(b"a\r\n.\r"), Ok(Scanned::Body(4)));
        assert_eq!(scanner.scan(b"\r"), Ok(Scanned::Body(0)));
        assert_eq!(scanner.scan(b"\rX"), Err(Violation::DotCrWithoutLf));
        let mut scanner = BodyScanner::new(100);
        assert_eq!(scanner.scan(b"a\r\n."), Ok(Scanned::Body(4)));
        assert_eq!(scanner.scan(b"\r"), Ok(Scanned::Body(0)));
        assert_eq!(scanner.scan(b"\r\n"), Ok(Scanned::End(2)));
    }

    #[test]
    fn whole_body_is_exactly_one_framed_body() {
        assert!(is_whole_body(b"a\r\n..b\r\n.\r\n"));
        assert!(is_whole_body(b".\r\n"));
        assert!(!is_whole_body(b"a\n.\r\n"));
        assert!(!is_whole_body(b"a\r\n.\r\nb\r\n.\r\n"));
        assert!(!is_whole_body(b"a\r\n"));
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
        assert_eq!(
            end_of(&long, 7),
            Err(Violation::BodyLineTooLong { limit: 100 })
        );
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

        #[test]
        fn handed_bytes_never_end_in_dot_cr_at_a_line_start(
            body in proptest::collection::vec(prop_oneof![
                Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a')
            ], 0..200),
            chunk in 1usize..50,
        ) {
            let (result, handed) = feed(&body, chunk);
            if !matches!(result, Ok(Some(_))) {
                let out = &body[..handed];
                let at_line_start = out.len() == 2 || out.len() > 2 && out[out.len() - 3] == b'\n';
                prop_assert!(!(out.ends_with(b".\r") && at_line_start), "{:?}", out);
            }
        }
    }
}
