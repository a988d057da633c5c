//! The short message that replaces a denied or quarantined one.
//!
//! It keeps the original's `From`, `To`, `Date` and `Message-ID` fields verbatim (so the
//! client files it where the original would have gone), says in its Subject that the
//! message was removed (the original Subject follows, verbatim), and carries the filled
//! `deny_message` as a quoted-printable text/plain body, followed by the quarantine id when
//! the original was kept. Only the header block of the original is read, so it can be built
//! for an oversize message from its first bytes alone.
//!
//! No clock is read here: a message without `Date` gets none (clients then show the
//! server's arrival time). A message without `From` gets a placeholder sender, because
//! RFC 5322 requires one. No I/O here.

use mail_parser::{Header, HeaderName};

use crate::encoding::quoted_printable;
use crate::parsed;
use crate::rewrite::eol_of;

/// The Subject prefix of every replacement message.
pub const SUBJECT_PREFIX: &str = "[popgate] message removed";

/// The sender written when the original has no `From` field.
pub const PLACEHOLDER_FROM: &str = "popgate <MAILER-DAEMON@popgate.invalid>";

/// Builds the replacement for a denied or quarantined message.
///
/// `original` is the unstuffed message, or just its first bytes (the header block is all
/// that is read). `text` is the already filled `deny_message`; `quarantine_id`, when given,
/// is named in the body. The result is unstuffed and uses the original's line ending.
pub fn deny_replacement(original: &[u8], text: &str, quarantine_id: Option<&str>) -> Vec<u8> {
    let parsed = parsed::parse_headers(original);
    let headers = parsed
        .as_ref()
        .map(|m| m.root_part().headers())
        .unwrap_or_default();
    build(original, headers, text, quarantine_id)
}

/// As [`deny_replacement`] with the header fields already parsed.
pub(crate) fn build(
    original: &[u8],
    headers: &[Header<'_>],
    text: &str,
    quarantine_id: Option<&str>,
) -> Vec<u8> {
    let eol = eol_of(original).as_bytes();
    let mut out = Vec::with_capacity(512 + text.len());
    let mut has_from = false;
    for wanted in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::Date,
        HeaderName::MessageId,
    ] {
        let Some(field) = headers.iter().find(|h| h.name == wanted) else {
            continue;
        };
        let Some(bytes) = original
            .get(field.offset_field as usize..field.offset_end as usize)
            .filter(|bytes| !has_bare_cr(bytes))
        else {
            continue;
        };
        has_from |= wanted == HeaderName::From;
        push_line(&mut out, bytes, eol);
    }
    if !has_from {
        push_line(
            &mut out,
            format!("From: {PLACEHOLDER_FROM}").as_bytes(),
            eol,
        );
    }
    out.extend_from_slice(b"Subject: ");
    out.extend_from_slice(SUBJECT_PREFIX.as_bytes());
    let subject = headers
        .iter()
        .find(|h| h.name == HeaderName::Subject)
        .and_then(|h| original.get(h.offset_start as usize..h.offset_end as usize))
        .filter(|bytes| !has_bare_cr(bytes))
        .map(trim)
        .unwrap_or_default();
    if !subject.is_empty() {
        out.extend_from_slice(b": ");
        out.extend_from_slice(subject);
    }
    out.extend_from_slice(eol);
    for line in [
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
    ] {
        push_line(&mut out, line.as_bytes(), eol);
    }
    let mut body = text.to_owned();
    if let Some(id) = quarantine_id {
        body.push_str("\n\nThe original message was quarantined under the id ");
        body.push_str(id);
        body.push('.');
    }
    let eol_text = if eol == b"\n" { "\n" } else { "\r\n" };
    out.extend_from_slice(&quoted_printable(&body, eol_text));
    out.extend_from_slice(eol);
    out
}

/// Whether `bytes` has a CR not followed by LF: a reader that ends lines there (Python's
/// `email`) would see more fields, or a whole message, inside such a field; it is dropped.
fn has_bare_cr(bytes: &[u8]) -> bool {
    let trimmed = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    trimmed
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && trimmed.get(i + 1) != Some(&b'\n'))
}

/// `bytes` without its line ending, then `eol`.
fn push_line(out: &mut Vec<u8>, bytes: &[u8], eol: &[u8]) {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    out.extend_from_slice(bytes);
    out.extend_from_slice(eol);
}

/// A raw header value without the white space around it (inner folding stays).
fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_identity_fields_and_names_the_quarantine_id() {
        let original = b"Received: x\r\nFrom: A <a@example.com>\r\nTo: b@example.com\r\nSubject: Invoice\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@x>\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
        let out = deny_replacement(original, "Removed: evil.exe", Some("q-42"));
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "From: A <a@example.com>\r\nTo: b@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@x>\r\nSubject: [popgate] message removed: Invoice\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nRemoved: evil.exe\r\n\r\nThe original message was quarantined under the id q=2D42.\r\n"
        );
    }

    #[test]
    fn missing_fields_and_bare_lf() {
        let out = deny_replacement(b"X: y\n\nbody", "gone", None);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            format!("From: {PLACEHOLDER_FROM}\nSubject: [popgate] message removed\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\ngone\n")
        );
    }

    #[test]
    fn garbage_still_gets_a_message() {
        let out = deny_replacement(b"", "gone", None);
        assert!(out.starts_with(b"From: "));
        assert!(out.ends_with(b"\r\n\r\ngone\r\n"));
    }
}
