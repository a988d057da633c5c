//! POP3 dot-stuffing (RFC 1939 §3) done incrementally, for inspection that streams a message
//! while it arrives: [`Unstuffer`] turns the server's chunks into message bytes and stops at
//! the terminator line; [`Restuffer`] turns message bytes back into wire bytes.
//!
//! Lines start at the beginning and after CRLF, exactly as `popgate_inspect`'s batch
//! `unstuff`/`restuff_into`, so streaming and collecting give the same bytes.

/// Removes dot-stuffing from a multi-line body fed in chunks of any size.
#[derive(Debug, Default)]
pub struct Unstuffer {
    at: Position,
}

/// Where the previous byte left the line being read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// The next byte starts a line.
    #[default]
    LineStart,
    /// Inside a line; `after_cr` says the previous byte was CR.
    InLine { after_cr: bool },
    /// The line began with `.`: a stuffed line or the terminator, not known yet.
    Dot,
    /// The line is `.` CR so far.
    DotCr,
    /// The terminator line was read (`.` CRLF: the core refuses a `.` LF line as a framing
    /// violation, so a `.` LF never reaches this unstuffer as a terminator).
    Done,
}

impl Unstuffer {
    /// Appends the message bytes of `chunk` to `out`; stops at the terminator line.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < chunk.len() {
            let byte = chunk[i];
            self.at = match self.at {
                Position::Done => return,
                Position::LineStart if byte == b'.' => Position::Dot,
                Position::LineStart | Position::InLine { after_cr: false } => {
                    // Copy at once up to the next LF a dot follows (the only place a line
                    // can start with one), or to the chunk's end: most bodies have none.
                    let end = memchr::memmem::find(&chunk[i..], b"\n.")
                        .map_or_else(|| chunk.len(), |p| i + p + 1);
                    out.extend_from_slice(&chunk[i..end]);
                    // A line ends at CRLF; the CR is in this same run (the state had none).
                    let ended = end - i >= 2 && chunk[end - 2] == b'\r' && chunk[end - 1] == b'\n';
                    i = end;
                    self.at = if ended {
                        Position::LineStart
                    } else {
                        Position::InLine {
                            after_cr: chunk[end - 1] == b'\r',
                        }
                    };
                    continue;
                }
                Position::InLine { after_cr: true } => {
                    out.push(byte);
                    if byte == b'\n' {
                        Position::LineStart
                    } else {
                        Position::InLine {
                            after_cr: byte == b'\r',
                        }
                    }
                }
                Position::Dot => match byte {
                    b'\r' => Position::DotCr,
                    b'\n' => Position::Done,
                    // A stuffed line: the dot goes, this byte is the line's first.
                    _ => {
                        out.push(byte);
                        Position::InLine { after_cr: false }
                    }
                },
                Position::DotCr => match byte {
                    b'\n' => Position::Done,
                    _ => {
                        out.push(b'\r');
                        out.push(byte);
                        Position::InLine {
                            after_cr: byte == b'\r',
                        }
                    }
                },
            };
            i += 1;
        }
    }

    /// The message bytes of `chunk`: `chunk` itself when it cannot hold a stuffed dot or
    /// the terminator (the common case: no copy), else unstuffed into `scratch`.
    pub fn unstuff<'a>(&mut self, chunk: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        let plain_start = match self.at {
            Position::LineStart => chunk.first() != Some(&b'.'),
            Position::InLine { after_cr: false } => true,
            _ => false,
        };
        if let (true, Some(&last)) = (plain_start, chunk.last()) {
            if memchr::memmem::find(chunk, b"\n.").is_none() {
                let ended = chunk.len() >= 2 && chunk.ends_with(b"\r\n");
                self.at = if ended {
                    Position::LineStart
                } else {
                    Position::InLine {
                        after_cr: last == b'\r',
                    }
                };
                return chunk;
            }
        }
        scratch.clear();
        self.push(chunk, scratch);
        scratch
    }

    /// Whether the terminator line has been seen.
    pub fn is_done(&self) -> bool {
        self.at == Position::Done
    }
}

/// Adds dot-stuffing to message bytes fed in chunks of any size.
#[derive(Debug, Default)]
pub struct Restuffer {
    after_cr: bool,
    mid_line: bool,
}

impl Restuffer {
    /// Appends the wire form of `message` to `out`.
    pub fn push(&mut self, message: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = message.last() else {
            return;
        };
        out.reserve(message.len() + 8);
        if !self.mid_line && message[0] == b'.' {
            out.push(b'.');
        }
        // Only a line start can need a dot: look at each LF a dot follows.
        let mut copied = 0;
        for lf in memchr::memmem::find_iter(message, b"\n.") {
            let crlf = if lf == 0 {
                self.after_cr
            } else {
                message[lf - 1] == b'\r'
            };
            let next = lf + 1;
            if crlf {
                out.extend_from_slice(&message[copied..next]);
                out.push(b'.');
                copied = next;
            }
        }
        out.extend_from_slice(&message[copied..]);
        self.note_end(message, last);
    }

    /// The wire form of `message`: `message` itself when no line in it starts with a dot
    /// (no copy), else restuffed into `scratch`.
    pub fn restuff<'a>(&mut self, message: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        let Some(&last) = message.last() else {
            return message;
        };
        let dot_first = !self.mid_line && message[0] == b'.';
        if dot_first || memchr::memmem::find(message, b"\n.").is_some() {
            scratch.clear();
            self.push(message, scratch);
            return scratch;
        }
        self.note_end(message, last);
        message
    }

    /// Remembers where `message` (ending with `last`) left the line: the next chunk's
    /// first byte starts a line only after a CRLF.
    fn note_end(&mut self, message: &[u8], last: u8) {
        let end = message.len() - 1;
        let ends_crlf = last == b'\n'
            && if end == 0 {
                self.after_cr
            } else {
                message[end - 1] == b'\r'
            };
        self.mid_line = !ends_crlf;
        self.after_cr = last == b'\r';
    }

    /// Ends the body: CRLF if the message did not end with one, then the terminator.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.mid_line {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn unstuff_in(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut u = Unstuffer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            u.push(chunk, &mut out);
        }
        (out, u.is_done())
    }

    #[test]
    fn unstuffs_and_stops_at_the_terminator() {
        let wire: &[u8] = b"a\r\n..b\r\n.\r\n";
        for split in 0..=wire.len() {
            let (out, done) = unstuff_in(&[&wire[..split], &wire[split..]]);
            assert_eq!(out, b"a\r\n.b\r\n", "split at {split}");
            assert!(done);
        }
    }

    #[test]
    fn restuff_inverts_unstuff() {
        let message: &[u8] = b".x\r\n..\r\nplain\r\n.";
        let mut wire = Vec::new();
        let mut r = Restuffer::default();
        r.push(&message[..3], &mut wire);
        r.push(&message[3..], &mut wire);
        r.finish(&mut wire);
        assert_eq!(wire, b"..x\r\n...\r\nplain\r\n..\r\n.\r\n");
        let (back, done) = unstuff_in(&[&wire]);
        assert!(done);
        assert_eq!(back, b".x\r\n..\r\nplain\r\n.\r\n");
    }

    proptest! {
        #[test]
        fn streaming_matches_the_batch_functions(
            message in proptest::collection::vec(prop_oneof![
                Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a')
            ], 0..300),
            cut in 1usize..40,
        ) {
            let mut batch = Vec::new();
            popgate_inspect::restuff_into(&message, &mut batch);
            let mut streamed = Vec::new();
            let mut r = Restuffer::default();
            for piece in message.chunks(cut) {
                r.push(piece, &mut streamed);
            }
            r.finish(&mut streamed);
            prop_assert_eq!(&streamed, &batch);
            let (mut borrowed, mut scratch) = (Vec::new(), Vec::new());
            let mut r = Restuffer::default();
            for piece in message.chunks(cut) {
                borrowed.extend_from_slice(r.restuff(piece, &mut scratch));
            }
            r.finish(&mut borrowed);
            prop_assert_eq!(&borrowed, &batch);

            let body = &batch[..batch.len() - 3];
            let want = popgate_inspect::unstuff(body);
            let mut u = Unstuffer::default();
            let mut got = Vec::new();
            for piece in batch.chunks(cut) {
                u.push(piece, &mut got);
            }
            prop_assert!(u.is_done());
            prop_assert_eq!(&got, &want);

            // The borrowing form gives the same bytes.
            let mut u = Unstuffer::default();
            let (mut got, mut scratch) = (Vec::new(), Vec::new());
            for piece in batch.chunks(cut) {
                got.extend_from_slice(u.unstuff(piece, &mut scratch));
            }
            prop_assert!(u.is_done());
            prop_assert_eq!(got, want);
        }
    }
}
