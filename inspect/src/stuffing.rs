//! POP3 dot-stuffing (RFC 1939 §3) for message bodies.
//!
//! A multi-line response carries each line that starts with `.` with one more `.` in front,
//! and ends with `.\r\n`. Inspection works on the unstuffed message; a rewritten message is
//! stuffed again before it goes to the client. A message that passes is forwarded as the
//! server sent it and never goes through here.
//!
//! Lines begin at the start and after each `\r\n` only, exactly as the `proxy` core frames
//! responses (its terminator is `\r\n.\r\n`). A bare `\n` does not begin a line here, so
//! [`restuff_into`] is the exact inverse of [`unstuff`]; treating a bare `\n` differently in
//! the two directions would change bytes of messages that contain one. No I/O here.

use std::borrow::Cow;

/// `raw` (a multi-line body without its terminating `.\r\n`) with one leading `.` removed
/// from every line that starts with `.`.
pub fn unstuff(raw: &[u8]) -> Vec<u8> {
    unstuff_cow(raw).into_owned()
}

/// As [`unstuff`], borrowing `raw` when no line starts with `.` (the common case).
pub fn unstuff_cow(raw: &[u8]) -> Cow<'_, [u8]> {
    let mut starts = line_starts(raw)
        .filter(|&i| raw.get(i) == Some(&b'.'))
        .peekable();
    if starts.peek().is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut cursor = 0;
    for dot in starts {
        out.extend_from_slice(&raw[cursor..dot]);
        cursor = dot + 1;
    }
    out.extend_from_slice(&raw[cursor..]);
    Cow::Owned(out)
}

/// Appends `msg` dot-stuffed to `out`, then `.\r\n`; a `msg` that does not end in `\r\n`
/// (and is not empty) gets one first, so the terminator stands on its own line.
pub fn restuff_into(msg: &[u8], out: &mut Vec<u8>) {
    out.reserve(msg.len() + msg.len() / 64 + 5);
    let mut cursor = 0;
    for start in line_starts(msg).filter(|&i| msg.get(i) == Some(&b'.')) {
        out.extend_from_slice(&msg[cursor..start]);
        out.push(b'.');
        cursor = start;
    }
    out.extend_from_slice(&msg[cursor..]);
    if !msg.is_empty() && !msg.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// Offsets where lines begin: 0 and after every `\r\n`.
fn line_starts(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut next = Some(0);
    std::iter::from_fn(move || {
        let start = next?;
        // Scan for the next LF preceded by CR; `position` on bytes vectorises well.
        let mut from = start;
        next = loop {
            match bytes
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            {
                Some(i) if from + i > 0 && bytes[from + i - 1] == b'\r' => {
                    break Some(from + i + 1)
                }
                Some(i) => from += i + 1,
                None => break None,
            }
        };
        Some(start)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn restuff(msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        restuff_into(msg, &mut out);
        out
    }

    #[test]
    fn table() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"a\r\n", b"a\r\n"),
            (b"..a\r\n", b".a\r\n"),
            (b"x\r\n..\r\n...\r\n", b"x\r\n.\r\n..\r\n"),
            (b"x\n..y\r\n", b"x\n..y\r\n"),
            (b"", b""),
            (b"a.\r\n.", b"a.\r\n"),
        ];
        for (raw, unstuffed) in cases {
            assert_eq!(unstuff(raw), unstuffed, "{raw:?}");
        }
    }

    #[test]
    fn unstuff_borrows_when_nothing_changes() {
        assert!(matches!(unstuff_cow(b"a\r\nb.c\r\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn restuff_terminates() {
        assert_eq!(restuff(b".a\r\nb"), b"..a\r\nb\r\n.\r\n");
        assert_eq!(restuff(b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(restuff(b""), b".\r\n");
        assert_eq!(restuff(b"a\r\n.\r\n"), b"a\r\n..\r\n.\r\n");
    }

    /// A canonical stuffed body: CRLF lines, none of which begins with a single `.`.
    fn canonical() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..20)),
            0..20,
        )
        .prop_map(|lines| {
            let mut body = Vec::new();
            for (dotted, mut line) in lines {
                line.retain(|&b| b != b'\r' && b != b'\n');
                if dotted {
                    line.insert(0, b'.');
                }
                if line.first() == Some(&b'.') {
                    body.push(b'.');
                }
                body.extend_from_slice(&line);
                body.extend_from_slice(b"\r\n");
            }
            body
        })
    }

    proptest! {
        #[test]
        fn restuff_inverts_unstuff(stuffed in canonical()) {
            let mut expected = stuffed.clone();
            expected.extend_from_slice(b".\r\n");
            prop_assert_eq!(restuff(&unstuff(&stuffed)), expected);
        }

        #[test]
        fn unstuff_inverts_restuff(msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let stuffed = restuff(&msg);
            let body = &stuffed[..stuffed.len() - 3];
            let mut expected = msg.clone();
            if !msg.is_empty() && !msg.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(unstuff(body), expected);
        }
    }
}
