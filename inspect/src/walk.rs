//! Parsing a message once with mail-parser and walking every MIME part.
//!
//! The walk visits each part of the message and of every nested message/rfc822 (inline or
//! transfer-encoded) in document order, and records for each part its content type, every
//! file name it declares and the byte range that `strip` would replace. It also notes
//! *damage*: signs that the parser could not see the whole structure, which makes the
//! message `unparseable` (a rule might otherwise be missed).
//!
//! mail-parser 0.11 facts this module relies on (pinned by the tests below):
//! * `offset_header..offset_end` of a part inside a multipart is exactly the part's header
//!   and body between its boundary lines: it starts after the CRLF that ends the boundary
//!   line and stops before the CRLF that precedes the next boundary line (that CRLF belongs
//!   to the delimiter, RFC 2046 §5.1.1). The root part ends at the end of the message.
//! * A message/rfc822 part without a transfer encoding is parsed in place: its nested parts
//!   carry offsets into the outer message. With base64 or quoted-printable it is decoded
//!   first, so nested offsets point into the decoded copy and only the whole enclosing part
//!   can be replaced.
//! * RFC 2231 parameters (continuations, charset) and RFC 2047 encoded words inside
//!   `filename`/`name` are decoded into the plain attribute value.
//!
//! No I/O here.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use mail_parser::{
    Encoding, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

/// The byte range `strip` replaces for a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The top-level message itself: strip keeps the non-`Content-*` header fields and
    /// replaces the rest (see `rewrite.rs`).
    Root,
    /// `start..end` of the original message bytes.
    Range {
        /// First byte of the part's headers.
        start: usize,
        /// One past the last byte of its body.
        end: usize,
    },
}

/// One MIME part as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// Lowercase `type/subtype`; `text/plain` when the part has no usable Content-Type.
    pub content_type: String,
    /// Every file name from Content-Disposition `filename` and Content-Type `name`, decoded.
    pub file_names: Vec<String>,
    /// A multipart or a parsed nested message: its contents are parts of their own.
    pub is_container: bool,
    /// What `strip` replaces for this part.
    pub target: Target,
}

/// Why a message counts as unparseable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// No header field at all.
    NoHeaders,
    /// The first bytes are not header fields (no `name:` line).
    NotAMessage,
    /// mail-parser panicked on these bytes.
    ParserPanicked,
    /// A nested message could not be parsed (or is nested too deep in encodings).
    NestedUnreadable,
    /// A part is truncated, lacks its closing boundary or has a broken transfer encoding.
    BrokenPart {
        /// Lowercase `type/subtype` of the part.
        content_type: String,
    },
    /// The parser reported offsets outside the message.
    BadOffsets,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::NoHeaders => f.write_str("message has no header"),
            Damage::NotAMessage => f.write_str("message does not start with header fields"),
            Damage::ParserPanicked => f.write_str("MIME parser failed"),
            Damage::NestedUnreadable => f.write_str("a nested message could not be parsed"),
            Damage::BrokenPart { content_type } => {
                write!(
                    f,
                    "a part of type {content_type} is truncated or badly encoded"
                )
            }
            Damage::BadOffsets => f.write_str("MIME structure is inconsistent"),
        }
    }
}

/// The result of one walk.
#[derive(Debug)]
pub(crate) struct Walk {
    /// Every part in document order, nested messages included.
    pub parts: Vec<Part>,
    /// The first sign of damage, if any.
    pub damage: Option<Damage>,
}

/// A parsed message that is dropped without recursion.
///
/// mail-parser nests a message/rfc822 part's message inside the part, and the derived
/// `Drop` recurses once per level: a 10,000-deep nesting (300 KiB of input) overflows a
/// 2 MiB thread stack. This wrapper takes nested messages apart with a heap stack instead.
pub(crate) struct Parsed<'x>(Message<'x>);

impl<'x> std::ops::Deref for Parsed<'x> {
    type Target = Message<'x>;

    fn deref(&self) -> &Message<'x> {
        &self.0
    }
}

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        let mut pending = vec![std::mem::take(&mut self.0)];
        while let Some(mut message) = pending.pop() {
            for part in &mut message.parts {
                if matches!(part.body, PartType::Message(_)) {
                    if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                        pending.push(inner);
                    }
                }
            }
        }
    }
}

/// Parses `raw` with the parser configuration this crate uses.
///
/// mail-parser promises never to panic; a panic is still caught here because these bytes
/// come from the network and one hostile message must not take the session task down.
pub(crate) fn parse(raw: &[u8]) -> Result<Parsed<'_>, Damage> {
    let parser = parser();
    match panic::catch_unwind(AssertUnwindSafe(|| parser.parse(raw))) {
        Ok(Some(message)) => Ok(Parsed(message)),
        Ok(None) => Err(Damage::NoHeaders),
        Err(_) => Err(Damage::ParserPanicked),
    }
}

/// Parses only the header block of `raw` (enough for the deny replacement).
pub(crate) fn parse_headers(raw: &[u8]) -> Option<Parsed<'_>> {
    let parser = parser();
    let parsed = panic::catch_unwind(AssertUnwindSafe(|| parser.parse_headers(raw)));
    parsed.ok().flatten().map(Parsed)
}

/// Walks every part of `message`, whose raw bytes are `raw` (the same slice it was parsed
/// from).
pub(crate) fn walk(message: &Message<'_>, raw: &[u8]) -> Walk {
    let mut walk = Walk {
        parts: Vec::new(),
        damage: None,
    };
    if !has_real_header(message, raw) {
        walk.damage = Some(Damage::NotAMessage);
    }
    // An explicit stack instead of recursion: nesting depth is chosen by the sender.
    let mut stack: Vec<(&Message<'_>, Origin)> = vec![(message, Origin::Top)];
    while let Some((current, origin)) = stack.pop() {
        let mut nested: Vec<(&Message<'_>, Origin)> = Vec::new();
        for (index, part) in current.parts.iter().enumerate() {
            let target = target_of(part, index, origin, raw).unwrap_or_else(|| {
                note(&mut walk.damage, Damage::BadOffsets);
                Target::Root
            });
            let content_type = content_type_of(part);
            if part.is_encoding_problem && !is_headers_only_root(part, index, origin) {
                let damage = if content_type.starts_with("message/") {
                    Damage::NestedUnreadable
                } else {
                    Damage::BrokenPart {
                        content_type: content_type.clone(),
                    }
                };
                note(&mut walk.damage, damage);
            }
            let is_container = match &part.body {
                PartType::Multipart(_) => true,
                PartType::Message(inner) => {
                    let inner_origin = match (origin, part.encoding) {
                        (Origin::Encoded(_), _) => Origin::Encoded(target),
                        (_, Encoding::None) => Origin::Inline(target),
                        _ => Origin::Encoded(target),
                    };
                    nested.push((inner, inner_origin));
                    true
                }
                _ => false,
            };
            walk.parts.push(Part {
                file_names: file_names_of(part),
                content_type,
                is_container,
                target,
            });
        }
        // Reverse so that nested messages come out in document order.
        stack.extend(nested.into_iter().rev());
    }
    walk
}

/// Where a message sits, which decides how its parts' offsets can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The message being inspected.
    Top,
    /// A message/rfc822 parsed in place: offsets are into the top-level bytes; its root
    /// part is replaced by replacing the enclosing part.
    Inline(Target),
    /// A transfer-encoded message/rfc822: offsets are into a decoded copy, so any part of
    /// it is replaced by replacing the enclosing part.
    Encoded(Target),
}

fn parser() -> MessageParser {
    MessageParser::new()
        .with_mime_headers()
        .header_text(HeaderName::Subject)
        .default_header_raw()
}

fn note(damage: &mut Option<Damage>, found: Damage) {
    if damage.is_none() {
        *damage = Some(found);
    }
}

fn target_of(part: &MessagePart<'_>, index: usize, origin: Origin, raw: &[u8]) -> Option<Target> {
    let own = || {
        let (start, end) = (part.offset_header as usize, part.offset_end as usize);
        (start <= end && end <= raw.len()).then_some(Target::Range { start, end })
    };
    match origin {
        Origin::Top if index == 0 => Some(Target::Root),
        Origin::Top => own(),
        Origin::Inline(enclosing) if index == 0 => Some(enclosing),
        Origin::Inline(_) => own(),
        Origin::Encoded(enclosing) => Some(enclosing),
    }
}

/// mail-parser flags a root made of header fields only (no blank line, no body) as an
/// encoding problem; such a message hides nothing.
fn is_headers_only_root(part: &MessagePart<'_>, index: usize, origin: Origin) -> bool {
    index == 0 && origin == Origin::Top && part.offset_body == part.offset_end
}

/// Whether the root has at least one well-formed `name:` field (mail-parser also accepts a
/// first line without a colon as a field name, which is how garbage gets "parsed").
fn has_real_header(message: &Message<'_>, raw: &[u8]) -> bool {
    message.root_part().headers.iter().any(|header| {
        let colon = (header.offset_start as usize)
            .checked_sub(1)
            .and_then(|i| raw.get(i));
        let name_ok = !header.name().is_empty()
            && header
                .name()
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':');
        colon == Some(&b':') && name_ok
    })
}

pub(crate) fn content_type_of(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            let mut text = ct.ctype().to_ascii_lowercase();
            text.push('/');
            text.push_str(&ct.subtype().unwrap_or("").to_ascii_lowercase());
            text
        }
        None => "text/plain".to_owned(),
    }
}

/// Every file name the part declares, decoded; a name with trailing dots or spaces also
/// appears trimmed, because Windows drops them (`evil.exe.` opens as `evil.exe`).
pub(crate) fn file_names_of(part: &MessagePart<'_>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let sources = [
        (part.content_disposition(), "filename"),
        (part.content_type(), "name"),
    ];
    for (header, wanted) in sources {
        let Some(attributes) = header.and_then(|h| h.attributes()) else {
            continue;
        };
        for attribute in attributes {
            // RFC 2231 leftovers (`filename*`, `filename*0*`) count as the same parameter.
            let base = attribute.name.split('*').next().unwrap_or("");
            if !base.eq_ignore_ascii_case(wanted) {
                continue;
            }
            let value = attribute.value.as_ref();
            let trimmed = value.trim_end_matches(['.', ' ']);
            for name in [value, trimmed] {
                if !name.is_empty() && !names.iter().any(|known| known == name) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk_of(raw: &[u8]) -> Walk {
        let message = parse(raw).expect("parses");
        walk(&message, raw)
    }

    const NESTED: &[u8] = b"From: a@b\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8''%65vil;\r\n filename*1=\".e\";\r\n filename*2=xe\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQ\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=YY\r\n\r\n--YY\r\nContent-Type: application/x-foo; name=\"=?utf-8?b?c2NyZWVuLnNjcg==?=\"\r\n\r\nabc\r\n--YY--\r\n\r\n--XX--\r\nepilogue\r\n";

    fn range_text(raw: &[u8], target: Target) -> &[u8] {
        match target {
            Target::Range { start, end } => &raw[start..end],
            Target::Root => raw,
        }
    }

    #[test]
    fn part_ranges_sit_between_boundary_lines() {
        let walk = walk_of(NESTED);
        assert_eq!(walk.damage, None);
        let types: Vec<&str> = walk.parts.iter().map(|p| p.content_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "multipart/mixed",
                "text/plain",
                "application/octet-stream",
                "message/rfc822",
                "multipart/mixed",
                "application/x-foo"
            ]
        );
        assert_eq!(
            range_text(NESTED, walk.parts[1].target),
            b"Content-Type: text/plain\r\n\r\nhello"
        );
        let exe = range_text(NESTED, walk.parts[2].target);
        assert!(exe.starts_with(b"Content-Type: application/octet-stream\r\n"));
        assert!(exe.ends_with(b"\r\n\r\nTVqQ"));
        // The nested root maps to the whole message/rfc822 part.
        assert_eq!(walk.parts[4].target, walk.parts[3].target);
        let scr = range_text(NESTED, walk.parts[5].target);
        assert!(
            scr.starts_with(b"Content-Type: application/x-foo"),
            "{scr:?}"
        );
        assert!(scr.ends_with(b"\r\n\r\nabc"));
    }

    #[test]
    fn rfc2231_continuations_and_rfc2047_names_are_decoded() {
        let walk = walk_of(NESTED);
        assert_eq!(walk.parts[2].file_names, ["evil.exe"]);
        assert_eq!(walk.parts[5].file_names, ["screen.scr"]);
    }

    #[test]
    fn every_declared_name_counts() {
        let raw = b"Subject: x\r\nContent-Type: application/octet-stream; name=\"b.exe\"\r\nContent-Disposition: attachment; filename=\"a.txt\"; filename=\"c.scr. \"\r\n\r\nx";
        let walk = walk_of(raw);
        assert_eq!(
            walk.parts[0].file_names,
            ["a.txt", "c.scr. ", "c.scr", "b.exe"]
        );
    }

    #[test]
    fn encoded_nested_message_maps_to_enclosing_part() {
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nQ29udGVudC1UeXBlOiBhcHBsaWNhdGlvbi9mb287IG5hbWU9ZXZpbC5leGUNCg0KYWJj\r\n--Q--\r\n";
        let walk = walk_of(raw);
        assert_eq!(walk.damage, None);
        let last = walk.parts.last().expect("parts");
        assert_eq!(last.file_names, ["evil.exe"]);
        assert_eq!(last.target, walk.parts[1].target);
    }

    #[test]
    fn missing_closing_boundary_is_damage() {
        let raw = b"Subject: x\nContent-Type: multipart/mixed; boundary=Q\n\n--Q\nContent-Type: text/plain\n\nunterminated";
        let walk = walk_of(raw);
        assert!(
            matches!(walk.damage, Some(Damage::BrokenPart { .. })),
            "{:?}",
            walk.damage
        );
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert_eq!(
            walk_of(b"garbage without colon").damage,
            Some(Damage::NotAMessage)
        );
        assert_eq!(parse(b"").err(), Some(Damage::NoHeaders));
    }

    #[test]
    fn header_only_message_is_fine() {
        assert_eq!(walk_of(b"Subject: only headers").damage, None);
    }
}
