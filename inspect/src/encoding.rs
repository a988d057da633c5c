//! The transfer encodings this crate writes: quoted-printable bodies and base64 encoded-words.
//!
//! Replacement text carries attacker-chosen file names and is inserted between the boundary
//! lines of someone else's multipart, so the body is quoted-printable with `-` always encoded
//! (no line of ours can ever look like `--boundary`), `.` encoded at the start of a line (no
//! dot-stuffing surprises), trailing white space encoded and lines kept under 76 characters
//! (RFC 2045 §6.7). No I/O here.

/// Encodes `text` as a quoted-printable body; each `\n` in `text` becomes a hard line break
/// written as `eol`, and `\r` is dropped. The result has no final line break.
pub(crate) fn quoted_printable(text: &str, eol: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8 + 16);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.extend_from_slice(eol.as_bytes());
        }
        encode_line(line.as_bytes(), eol, &mut out);
    }
    out
}

/// `text` as one RFC 2047 encoded-word in UTF-8 and base64: `=?utf-8?B?...?=`.
pub(crate) fn encoded_word(text: &str) -> String {
    let mut word = String::from("=?utf-8?B?");
    base64_into(text.as_bytes(), &mut word);
    word.push_str("?=");
    word
}

/// Longest encoded line before a soft break, leaving room for the `=` (RFC 2045: 76).
const MAX_LINE: usize = 75;

fn encode_line(line: &[u8], eol: &str, out: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut column = 0;
    for (index, &byte) in line.iter().enumerate() {
        if byte == b'\r' {
            continue;
        }
        let is_last = index + 1 == line.len();
        let mut literal = match byte {
            b'=' | b'-' => false,
            b'.' => column != 0,
            b' ' | b'\t' => !is_last,
            0x21..=0x7e => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        if column + width > MAX_LINE {
            out.push(b'=');
            out.extend_from_slice(eol.as_bytes());
            column = 0;
            // A dot that now starts a line must be encoded after all.
            literal &= byte != b'.';
        }
        if literal {
            out.push(byte);
            column += 1;
        } else {
            out.push(b'=');
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
            column += 3;
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_into(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> shift) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(text: &str) -> String {
        String::from_utf8(quoted_printable(text, "\r\n")).expect("ascii")
    }

    #[test]
    fn plain_text_stays_readable() {
        assert_eq!(
            qp("The attachment was removed."),
            "The attachment was removed."
        );
    }

    #[test]
    fn dashes_equals_and_leading_dots_are_encoded() {
        assert_eq!(qp("--XX--"), "=2D=2DXX=2D=2D");
        assert_eq!(qp("a=b"), "a=3Db");
        assert_eq!(qp(".x.y\n.z"), "=2Ex.y\r\n=2Ez");
    }

    #[test]
    fn non_ascii_and_controls_are_encoded() {
        assert_eq!(qp("é\u{7}"), "=C3=A9=07");
    }

    #[test]
    fn trailing_space_is_encoded_and_lines_are_short() {
        assert_eq!(qp("a \nb"), "a=20\r\nb");
        let long = qp(&"x".repeat(200));
        assert!(long.split("\r\n").all(|line| line.len() <= 76), "{long}");
        assert_eq!(long.replace("=\r\n", ""), "x".repeat(200));
    }

    #[test]
    fn encoded_word_is_base64() {
        assert_eq!(encoded_word("[SPÄM] "), "=?utf-8?B?W1NQw4RNXSA=?=");
        assert_eq!(encoded_word("ab"), "=?utf-8?B?YWI=?=");
        assert_eq!(encoded_word("abc"), "=?utf-8?B?YWJj?=");
    }
}
