//! One entity's header block: its content type, transfer encoding, boundary and every file
//! name it declares, read for both field readings (first field wins, last field wins).
//!
//! mail-parser parses the fields (RFC 2047/2231 decoding, quoting, comments). Where an
//! entity repeats `Content-Type`, `Content-Disposition` or `Content-Transfer-Encoding` (or
//! a `boundary` parameter) and the first and last disagree, readers differ (SPEC §4): the
//! header reports that as an [`Ambiguity`] and [`EntityHeader::view`] answers for either
//! reading. Names come from every field regardless, decoded by mail-parser and by
//! `parameters::raw_parameter_names` (every reader's split), then normalised as a client
//! saves them. No I/O here.

use std::panic::{self, AssertUnwindSafe};
use std::sync::LazyLock;

use mail_parser::{HeaderName, HeaderValue, MessageParser};

use super::{Ambiguity, FieldChoice, FieldNames};
use crate::decode::TransferEncoding;
use crate::names;

/// The parser for MIME fields, built once (a parser is a table of field parsers).
static MIME_PARSER: LazyLock<MessageParser> =
    LazyLock::new(|| MessageParser::new().with_mime_headers());

/// What one entity's header block says.
#[derive(Debug, Clone, Default)]
pub(crate) struct EntityHeader {
    /// Each Content-Type field in order: lowercase `type/subtype` (`None`: unusable value)
    /// and its `boundary` parameters in order.
    types: Vec<(Option<String>, Vec<String>)>,
    /// The same as a line reader finds them: lines whose name is `Content-Type`.
    line_types: Vec<(Option<String>, Vec<String>)>,
    /// Each Content-Transfer-Encoding value in order.
    encodings: Vec<TransferEncoding>,
    /// Every declared file name, normalised, from every field.
    pub names: Vec<String>,
    /// Disagreements between the first and the last of a repeated field.
    pub ambiguity: Vec<Ambiguity>,
    /// Whether the block has at least one well-formed `name:` field.
    pub has_fields: bool,
    /// Whether a Content-Type field names TNEF in its raw text, even one mail-parser cannot
    /// read (fuzz finding: `application/vnd&ms-tnef` reads as text/plain here but opens as
    /// TNEF in a reader that keys on the raw type).
    pub declares_tnef: bool,
    /// Whether a `boundary` parameter is one readers take differently (see
    /// [`is_plain_boundary`]): the structure is then unclear and judged as damage.
    pub unclear_boundary: bool,
}

/// The header as one reading sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    /// Lowercase `type/subtype` (the default type when absent or unusable).
    pub content_type: String,
    /// The multipart boundary, if any.
    pub boundary: Option<String>,
    /// The transfer encoding.
    pub encoding: TransferEncoding,
}

impl EntityHeader {
    /// Reads a header block (the fields and, if present, the blank line after them).
    pub(crate) fn analyse(block: &[u8]) -> EntityHeader {
        let mut header = EntityHeader::default();
        if block.is_empty() || block == b"\n" || block == b"\r\n" {
            return header;
        }
        if !block.ends_with(b"\n") {
            // A message that ends inside its last field (fuzz finding): a line reader takes
            // that field as it is, mail-parser drops it. POP3 framing ends it with CRLF for
            // the client anyway.
            let mut ended = block.to_vec();
            ended.extend_from_slice(b"\r\n");
            return EntityHeader::analyse(&ended);
        }
        let parsed = panic::catch_unwind(AssertUnwindSafe(|| MIME_PARSER.parse_headers(block)));
        let Ok(Some(message)) = parsed else {
            return header;
        };
        let Some(root) = message.parts.first() else {
            return header;
        };
        let mut dispositions: Vec<Option<String>> = Vec::new();
        for field in &root.headers {
            let raw = block
                .get(field.offset_start as usize..field.offset_end as usize)
                .unwrap_or_default();
            let colon = (field.offset_start as usize)
                .checked_sub(1)
                .and_then(|i| block.get(i))
                == Some(&b':');
            header.has_fields |= colon
                && !field.name().is_empty()
                && field
                    .name()
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b':');
            let (wanted, is_type) = match field.name {
                HeaderName::ContentType => ("name", true),
                HeaderName::ContentDisposition => ("filename", false),
                HeaderName::ContentTransferEncoding => {
                    let value = match &field.value {
                        HeaderValue::Text(text) => text.to_string(),
                        _ => unfold(raw),
                    };
                    header.encodings.push(TransferEncoding::from_value(&value));
                    continue;
                }
                _ => continue,
            };
            // Only the fields read here are unfolded: most of a header block is not.
            let raw_text = unfold(raw);
            if is_type {
                let declared = raw_text.split(';').next().unwrap_or_default();
                header.declares_tnef |= declared.to_ascii_lowercase().contains("tnef");
            }
            for declared in crate::parameters::raw_parameter_names(&raw_text, wanted) {
                names::add_client_names(&declared, &mut header.names);
            }
            let HeaderValue::ContentType(ct) = &field.value else {
                if is_type {
                    header.types.push((None, Vec::new()));
                } else {
                    dispositions.push(None);
                }
                continue;
            };
            let mut boundaries = Vec::new();
            for attribute in ct.attributes().unwrap_or_default() {
                let base = attribute.name.split('*').next().unwrap_or_default();
                if base.eq_ignore_ascii_case(wanted) {
                    names::add_client_names(&attribute.value, &mut header.names);
                } else if is_type && base.eq_ignore_ascii_case("boundary") {
                    // RFC 2046 ends a boundary with a non-space; an unterminated quote left
                    // `"L ` as `L ` for mail-parser while line readers trim it (fuzz finding).
                    let boundary = attribute.value.trim_end();
                    header.unclear_boundary |=
                        !is_plain_boundary(boundary) || has_encoded_boundary(&raw_text);
                    boundaries.push(boundary.to_string());
                }
            }
            let kind = ct.ctype().trim().to_ascii_lowercase();
            if is_type {
                // Without a subtype from mail-parser the raw type counts: `multipart/` (fuzz
                // finding) and `multipart/(mixed; boundary=...` (fuzz finding: mail-parser
                // took the rest for an unterminated comment and found neither subtype nor
                // boundary) are multiparts for a reader that splits the text at `/` and
                // `;`, as Python's `email` and a line reader do; their raw boundary counts.
                let raw_type = raw_text.split(';').next().unwrap_or_default().trim();
                let mime = match ct.subtype() {
                    Some(sub) => Some(format!("{kind}/{}", sub.trim().to_ascii_lowercase())),
                    None => Some(raw_type.to_ascii_lowercase()),
                };
                if ct.subtype().is_none() && boundaries.is_empty() {
                    let unclear;
                    (boundaries, unclear) = raw_boundaries(&raw_text);
                    header.unclear_boundary |= unclear;
                }
                header
                    .types
                    .push((mime.filter(|m| valid_mime(m)), boundaries));
            } else {
                dispositions.push(Some(kind));
            }
        }
        header.note_disagreements(&dispositions);
        header.add_unparsed_fields(block, true);
        if header.line_types.len() != header.types.len() {
            header.ambiguity.push(Ambiguity::UnclearFieldName);
        }
        header
    }

    /// Reads every `Content-Type` / `Content-Disposition` line of `block` as a plain line
    /// reader does (any line with a colon is a field, folded lines joined), so a field
    /// mail-parser stops short of still counts (fuzz findings: a line with control
    /// characters in its name ended mail-parser's fields, not a line reader's). Its names
    /// join the header's; with `types`, its Content-Type fields are the line reader's
    /// (see [`FieldNames::Line`]) and, when mail-parser found none at all, the header's too.
    pub(crate) fn add_unparsed_fields(&mut self, block: &[u8], types: bool) {
        let take_types = types && self.types.is_empty();
        // A field and its folded lines are adjacent in the block: one range each.
        let mut fields: Vec<std::ops::Range<usize>> = Vec::new();
        let mut at = 0;
        for line in block.split_inclusive(|&b| b == b'\n') {
            let end = at + line.len();
            match (line.first(), fields.last_mut()) {
                (Some(b' ' | b'\t'), Some(field)) => field.end = end,
                _ => fields.push(at..end),
            }
            at = end;
        }
        for range in fields {
            let field = &block[range];
            let Some(colon) = memchr::memchr(b':', field) else {
                continue;
            };
            let name = String::from_utf8_lossy(&field[..colon]);
            let wanted = match name.trim() {
                n if n.eq_ignore_ascii_case("content-type") => "name",
                n if n.eq_ignore_ascii_case("content-disposition") => "filename",
                _ => continue,
            };
            let value = unfold(&field[colon + 1..]);
            if wanted == "name" {
                let declared = value.split(';').next().unwrap_or_default();
                let mime = declared.trim().to_ascii_lowercase();
                self.declares_tnef |= mime.contains("tnef");
                if types {
                    let (boundaries, unclear) = raw_boundaries(&value);
                    self.unclear_boundary |= unclear;
                    let field = (Some(mime).filter(|m| valid_mime(m)), boundaries);
                    if take_types {
                        self.types.push(field.clone());
                    }
                    self.line_types.push(field);
                }
            }
            for declared in crate::parameters::raw_parameter_names(&value, wanted) {
                names::add_client_names(&declared, &mut self.names);
            }
        }
    }

    /// The header as read by `choice` among the fields `names` recognises; `default_type`
    /// applies without a usable Content-Type (`text/plain`, or `message/rfc822` inside a
    /// multipart/digest).
    pub(crate) fn view(&self, choice: FieldChoice, names: FieldNames, default_type: &str) -> View {
        let pick = |len: usize| match choice {
            FieldChoice::First => 0,
            FieldChoice::Last => len.saturating_sub(1),
        };
        let types = match names {
            FieldNames::Parser => &self.types,
            FieldNames::Line => &self.line_types,
        };
        let (content_type, boundary) = match types.get(pick(types.len())) {
            Some((Some(mime), boundaries)) => {
                let boundary = boundaries.get(pick(boundaries.len())).cloned();
                (mime.clone(), boundary)
            }
            // An unusable Content-Type reads as text/plain (RFC 2045 §5.2).
            Some((None, _)) => ("text/plain".to_owned(), None),
            None => (default_type.to_owned(), None),
        };
        let encoding = self
            .encodings
            .get(pick(self.encodings.len()))
            .copied()
            .unwrap_or(TransferEncoding::Identity);
        View {
            content_type,
            boundary,
            encoding,
        }
    }

    fn note_disagreements(&mut self, dispositions: &[Option<String>]) {
        if self.types.first() != self.types.last() {
            let mimes_differ = self.types.first().map(|t| &t.0) != self.types.last().map(|t| &t.0);
            self.ambiguity.push(if mimes_differ {
                Ambiguity::DuplicateField("Content-Type")
            } else {
                Ambiguity::RepeatedBoundary
            });
        }
        if self.types.iter().any(|(_, b)| b.first() != b.last()) {
            self.ambiguity.push(Ambiguity::RepeatedBoundary);
        }
        if dispositions.first() != dispositions.last() {
            self.ambiguity
                .push(Ambiguity::DuplicateField("Content-Disposition"));
        }
        if self.encodings.first() != self.encodings.last() {
            self.ambiguity
                .push(Ambiguity::DuplicateField("Content-Transfer-Encoding"));
        }
    }
}

/// The field value with folding line breaks removed.
fn unfold(raw: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(raw).into_owned();
    text.retain(|c| c != '\r' && c != '\n');
    text
}

/// Whether `mime` reads as `type/subtype`. Deliberately loose, like Python's `email`: only
/// a missing `/` or major type makes it unusable (`multipart/` is a multipart). A reader
/// that takes `multipart/mix\u{e4}` for a multipart must not meet a stricter popgate that
/// calls it text.
fn valid_mime(mime: &str) -> bool {
    mime.split_once('/')
        .is_some_and(|(kind, _)| !kind.is_empty())
}

/// Whether every reader takes `boundary` as the same delimiter. RFC 2046 allows spaces
/// inside a boundary, but readers that trim it, split it at white space or decode encoded
/// words in it disagree about a leading space, a run of spaces, a control character
/// (vertical tab, form feed, tab) or an `=?…?=` (fuzz finding: `"\x0binner"` was `inner`
/// for a line reader, so the part after `--inner` went unjudged). No mailer writes such a
/// boundary.
fn is_plain_boundary(boundary: &str) -> bool {
    let starts_plain = boundary.chars().next().is_some_and(|c| !c.is_whitespace());
    // RFC 2046 boundaries are ASCII; other bytes compare equal for a reader that decodes
    // lines lossily (fuzz finding: `boundary=\xde` and a `--\x8f` line both read as U+FFFD).
    let plain_chars = boundary.chars().all(|c| c.is_ascii() && !c.is_control());
    starts_plain && plain_chars && !boundary.contains("  ") && !has_encoded_word(boundary)
}

/// The `boundary` parameters of a raw Content-Type value as a line reader reads them
/// (trailing white space is not part of one), and whether one of them is unclear.
fn raw_boundaries(value: &str) -> (Vec<String>, bool) {
    let boundaries: Vec<String> = crate::parameters::raw_parameter_names(value, "boundary")
        .into_iter()
        .map(|b| b.trim_end().to_owned())
        .collect();
    let unclear = has_encoded_boundary(value) || boundaries.iter().any(|b| !is_plain_boundary(b));
    (boundaries, unclear)
}

/// Whether an encoded word follows a `boundary` key in a raw Content-Type value:
/// mail-parser decodes it, a reader that does not splits at the raw text.
fn has_encoded_boundary(raw: &str) -> bool {
    raw.to_ascii_lowercase()
        .find("boundary")
        .is_some_and(|at| has_encoded_word(&raw[at..]))
}

fn has_encoded_word(text: &str) -> bool {
    text.find("=?")
        .is_some_and(|at| text[at + 2..].contains("?="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_type_name_only_mail_parser_reads_is_ambiguous() {
        let block = b"Con\rtent-Type:\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n";
        let header = EntityHeader::analyse(block);
        assert!(
            header.ambiguity.contains(&Ambiguity::UnclearFieldName),
            "{header:?}"
        );
        let line = header.view(FieldChoice::First, FieldNames::Line, "text/plain");
        assert_eq!(line.content_type, "multipart/mixed");
        assert_eq!(line.boundary.as_deref(), Some("X"));
        let plain = EntityHeader::analyse(b"Content-Type: text/plain\r\n\r\n");
        assert!(plain.ambiguity.is_empty());
    }

    #[test]
    fn a_type_mail_parser_cannot_split_is_read_from_its_text() {
        let block = b"Content-Type: multipart/(mixed; boundary=\"XYZ\"\r\n\r\n";
        let view =
            EntityHeader::analyse(block).view(FieldChoice::First, FieldNames::Parser, "text/plain");
        assert_eq!(view.content_type, "multipart/(mixed");
        assert_eq!(view.boundary.as_deref(), Some("XYZ"));
    }

    #[test]
    fn duplicate_content_type_gives_two_views() {
        let block =
            b"Content-Type: multipart/mixed; boundary=A\r\nContent-Type: text/plain\r\n\r\n";
        let header = EntityHeader::analyse(block);
        assert_eq!(
            header.ambiguity,
            [Ambiguity::DuplicateField("Content-Type")]
        );
        let first = header.view(FieldChoice::First, FieldNames::Parser, "text/plain");
        assert_eq!(first.content_type, "multipart/mixed");
        assert_eq!(first.boundary.as_deref(), Some("A"));
        assert_eq!(
            header
                .view(FieldChoice::Last, FieldNames::Parser, "text/plain")
                .content_type,
            "text/plain"
        );
    }

    #[test]
    fn names_from_every_field_are_normalised() {
        let block = b"Content-Type: application/octet-stream; name=\"b.exe\"\r\nContent-Disposition: attachment; filename=\"a.txt\"\r\nContent-Disposition: inline; filename*=utf-8''evil.exe%00.txt\r\nContent-Disposition: x; filename=\"c.scr\t\"\r\n\r\n";
        let header = EntityHeader::analyse(block);
        for name in ["b.exe", "a.txt", "evil.exe", "c.scr"] {
            assert!(
                header.names.iter().any(|n| n == name),
                "{name} in {:?}",
                header.names
            );
        }
        assert!(header
            .ambiguity
            .contains(&Ambiguity::DuplicateField("Content-Disposition")));
    }

    #[test]
    fn plain_header_is_unambiguous() {
        let block =
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
        let header = EntityHeader::analyse(block);
        assert!(header.ambiguity.is_empty());
        assert!(header.has_fields);
        let view = header.view(FieldChoice::First, FieldNames::Parser, "text/plain");
        assert_eq!(view.encoding, TransferEncoding::Base64);
    }
}
