//! Lenient transfer decoding (base64, quoted-printable) for what inspection looks into:
//! nested messages, uuencode carriers in text parts, TNEF attachments, encoded words.
//!
//! Lenient on purpose: characters outside the base64 alphabet are skipped (a mail client
//! decodes "base64 with junk" the same way), and a broken `=XX` escape is kept as it is.
//! No I/O here.

/// Decodes base64, skipping anything outside the alphabet and stopping at `=` padding
/// only when the group is complete.
pub(crate) fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &byte in input {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Whether `body` holds only base64 alphabet, padding and white space.
///
/// Branch-free per byte, with a byte accumulator per 128-byte chunk, so the compiler
/// vectorises it: it runs over every base64 body, streamed or not, and must cost far less
/// than the copy.
pub(crate) fn is_clean_base64(body: &[u8]) -> bool {
    body.chunks(128).all(|chunk| {
        let mut bad = 0u8;
        for &b in chunk {
            let alpha = (b | 0x20).wrapping_sub(b'a') < 26;
            let digit = b.wrapping_sub(b'0') < 10;
            let other = (b == b'+')
                | (b == b'/')
                | (b == b'=')
                | (b == b'\r')
                | (b == b'\n')
                | (b == b' ')
                | (b == b'\t');
            bad |= u8::from(!(alpha | digit | other));
        }
        bad == 0
    })
}

/// Decodes quoted-printable: `=XX` escapes and soft line breaks (`=` at a line end).
pub(crate) fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let hex = |b: u8| char::from(b).to_digit(16);
    while i < input.len() {
        if input[i] != b'=' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        match (input.get(i + 1).copied(), input.get(i + 2).copied()) {
            (Some(b'\n'), _) => i += 2,
            (Some(b'\r'), Some(b'\n')) => i += 3,
            (Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

/// A part's transfer encoding, as far as decoding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferEncoding {
    /// None, 7bit, 8bit, binary or anything unknown: the bytes are the content.
    Identity,
    /// base64.
    Base64,
    /// quoted-printable.
    QuotedPrintable,
}

impl TransferEncoding {
    /// The encoding named by a Content-Transfer-Encoding value.
    pub(crate) fn from_value(value: &str) -> TransferEncoding {
        let value = value.trim();
        if value.eq_ignore_ascii_case("base64") {
            TransferEncoding::Base64
        } else if value.eq_ignore_ascii_case("quoted-printable") {
            TransferEncoding::QuotedPrintable
        } else {
            TransferEncoding::Identity
        }
    }

    /// The decoded content of `body`.
    pub(crate) fn decode<'a>(self, body: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        match self {
            TransferEncoding::Identity => std::borrow::Cow::Borrowed(body),
            TransferEncoding::Base64 => std::borrow::Cow::Owned(base64(body)),
            TransferEncoding::QuotedPrintable => std::borrow::Cow::Owned(quoted_printable(body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_junk() {
        assert_eq!(base64(b"TVqQ"), b"MZ\x90");
        assert_eq!(base64(b"T!V*q\r\nQ"), b"MZ\x90");
        assert_eq!(base64(b"aGk="), b"hi");
    }

    #[test]
    fn clean_base64_is_recognised() {
        assert!(is_clean_base64(b"TVqQ+/==\r\n aGk=\t"));
        for bad in [
            &b"TVqQ!"[..],
            b"a@b",
            b"a[b",
            b"a`b",
            b"a{b",
            b"\xc1",
            b"a:b",
            b"-",
        ] {
            assert!(!is_clean_base64(bad), "{bad:?}");
        }
        let mut long = vec![b'A'; 1000];
        assert!(is_clean_base64(&long));
        long[777] = b'*';
        assert!(!is_clean_base64(&long));
    }

    #[test]
    fn quoted_printable_escapes_and_soft_breaks() {
        assert_eq!(quoted_printable(b"a=3Db=\r\nc=\nd=zz"), b"a=bcd=zz");
    }
}
