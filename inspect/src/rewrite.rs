//! Byte-exact rewriting for `strip` and `tag`.
//!
//! A rewrite is a list of edits (replace `start..end` of the original with new bytes)
//! applied in one pass; every byte outside the edited ranges is copied unchanged.
//!
//! * `strip` of a part replaces the part's range (its header and body between the boundary
//!   lines, see `walk.rs`) with a text/plain part whose quoted-printable body carries the
//!   filled `deny_message`. The boundary lines and the CRLF before each stay as they were.
//! * `strip` of the top-level part (a single-part message that is itself the offending file)
//!   cannot keep a boundary: it removes the `Content-*` header fields, keeps every other
//!   field verbatim, adds the text/plain `Content-*` fields (and `MIME-Version` if missing)
//!   and replaces everything after the header fields with the text.
//! * `tag` inserts `spam_tag` before the first Subject's value. Before an RFC 2047
//!   encoded-word it adds the white space RFC 2047 §5 requires; a non-ASCII tag is written as
//!   its own UTF-8 encoded-word. A message without Subject gets one at the end of its header.
//!   A Subject that already starts with the tag is left alone.
//!
//! New lines use the line ending of the input (CRLF unless its first line ends in a bare LF).
//! No I/O here.

use mail_parser::{Header, HeaderName};

use crate::encoding::{encoded_word, quoted_printable};
use crate::structure::Target;

/// What to change in a message that is neither allowed as is nor denied.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Parts to replace, each with the text its replacement carries.
    pub strips: Vec<(Target, String)>,
    /// The spam tag to put before the Subject, when the message is tagged.
    pub tag: Option<String>,
}

/// The line ending the input uses: CRLF unless its first line ends in a bare LF.
pub(crate) fn eol_of(raw: &[u8]) -> &'static str {
    match raw.iter().position(|&b| b == b'\n') {
        Some(i) if i == 0 || raw[i - 1] != b'\r' => "\n",
        _ => "\r\n",
    }
}

/// The original with `plan` applied. `headers` are the top-level header fields of `raw`.
pub(crate) fn apply(raw: &[u8], headers: &[Header<'_>], plan: &Plan) -> Vec<u8> {
    let eol = eol_of(raw);
    let mut edits: Vec<Edit> = Vec::new();
    if let Some(tag) = plan.tag.as_deref() {
        edits.extend(tag_edit(raw, headers, tag, eol));
    }
    match plan
        .strips
        .iter()
        .find(|(target, _)| *target == Target::Root)
    {
        Some((_, text)) => edits.extend(root_strip_edits(raw, headers, text, eol)),
        None => {
            for (start, end, text) in outermost(&plan.strips) {
                let mut bytes = replacement_part(text, eol);
                // A part cut off by the end of the message (no closing boundary) has no
                // line break after it; the replacement ends its last line itself.
                if end >= raw.len() {
                    bytes.extend_from_slice(eol.as_bytes());
                }
                edits.push(Edit { start, end, bytes });
            }
        }
    }
    apply_edits(raw, edits)
}

/// The stripped ranges with those inside another stripped range dropped (a stripped
/// message/rfc822 takes its stripped attachments with it). Ranges that overlap without
/// nesting cannot come from one MIME tree; they are merged so nothing of either survives.
fn outermost(strips: &[(Target, String)]) -> Vec<(usize, usize, &str)> {
    let mut ranges: Vec<(usize, usize, &str)> = strips
        .iter()
        .filter_map(|(target, text)| match *target {
            Target::Range { start, end } => Some((start, end, text.as_str())),
            Target::Root => None,
        })
        .collect();
    // Longest first among equal starts, so the enclosing range comes before its contents.
    ranges.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
    let mut kept: Vec<(usize, usize, &str)> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match kept.last_mut() {
            Some(last) if range.0 < last.1 => last.1 = last.1.max(range.1),
            _ => kept.push(range),
        }
    }
    kept
}

/// Replace `start..end` of the original with `bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    start: usize,
    end: usize,
    bytes: Vec<u8>,
}

fn apply_edits(raw: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    edits.sort_by_key(|edit| (edit.start, edit.end));
    let added: usize = edits.iter().map(|edit| edit.bytes.len()).sum();
    let mut out = Vec::with_capacity(raw.len() + added);
    let mut cursor = 0;
    for edit in edits {
        let start = edit.start.min(raw.len());
        if start > cursor {
            out.extend_from_slice(&raw[cursor..start]);
        }
        out.extend_from_slice(&edit.bytes);
        // Overlapping ranges (nested parts both stripped) are covered by the union: an
        // inner edit never lets bytes of an outer stripped range through.
        cursor = cursor.max(edit.end.min(raw.len()));
    }
    out.extend_from_slice(&raw[cursor.min(raw.len())..]);
    out
}

/// The text/plain part that takes a stripped part's place (no final line break: the CRLF
/// before the next boundary line is still there).
pub(crate) fn replacement_part(text: &str, eol: &str) -> Vec<u8> {
    let mut part = Vec::with_capacity(160 + text.len());
    for line in [
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "Content-Disposition: inline",
        "",
    ] {
        part.extend_from_slice(line.as_bytes());
        part.extend_from_slice(eol.as_bytes());
    }
    part.extend_from_slice(&quoted_printable(text, eol));
    part
}

fn root_strip_edits(raw: &[u8], headers: &[Header<'_>], text: &str, eol: &str) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut has_mime_version = false;
    for header in headers {
        has_mime_version |= header.name == HeaderName::MimeVersion;
        let is_content = header.name().len() >= 8
            && header.name().as_bytes()[..8].eq_ignore_ascii_case(b"content-");
        if let (true, Some((start, end))) = (is_content, field_range(raw, header)) {
            edits.push(Edit {
                start,
                end,
                bytes: Vec::new(),
            });
        }
    }
    let end = header_end(raw, headers);
    let mut bytes = Vec::with_capacity(200 + text.len());
    if needs_eol_before(raw, end) {
        bytes.extend_from_slice(eol.as_bytes());
    }
    if !has_mime_version {
        bytes.extend_from_slice(b"MIME-Version: 1.0");
        bytes.extend_from_slice(eol.as_bytes());
    }
    bytes.extend_from_slice(&replacement_part(text, eol));
    bytes.extend_from_slice(eol.as_bytes());
    edits.push(Edit {
        start: end,
        end: raw.len(),
        bytes,
    });
    edits
}

fn tag_edit(raw: &[u8], headers: &[Header<'_>], tag: &str, eol: &str) -> Option<Edit> {
    let clean: String = tag.chars().filter(|c| !c.is_control()).collect();
    if clean.trim().is_empty() {
        return None;
    }
    let encoded = !clean.is_ascii();
    let word = if encoded {
        encoded_word(&clean)
    } else {
        clean.clone()
    };
    let Some(subject) = headers.iter().find(|h| h.name == HeaderName::Subject) else {
        let at = header_end(raw, headers);
        let mut bytes = Vec::new();
        if needs_eol_before(raw, at) {
            bytes.extend_from_slice(eol.as_bytes());
        }
        bytes.extend_from_slice(b"Subject: ");
        bytes.extend_from_slice(
            if encoded {
                word.as_str()
            } else {
                clean.trim_end()
            }
            .as_bytes(),
        );
        bytes.extend_from_slice(eol.as_bytes());
        return Some(Edit {
            start: at,
            end: at,
            bytes,
        });
    };
    let (start, end) = (subject.offset_start as usize, subject.offset_end as usize);
    let value = raw.get(start..end)?;
    let blanks = value
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let rest = &value[blanks..];
    let mut bytes = Vec::new();
    if rest.is_empty() || rest[0] == b'\r' || rest[0] == b'\n' {
        if blanks == 0 {
            bytes.push(b' ');
        }
        bytes.extend_from_slice(
            if encoded {
                word.as_str()
            } else {
                clean.trim_end()
            }
            .as_bytes(),
        );
    } else {
        let already =
            rest.len() >= clean.len() && rest[..clean.len()].eq_ignore_ascii_case(clean.as_bytes());
        if already {
            return None;
        }
        bytes.extend_from_slice(word.as_bytes());
        let ends_blank = word.ends_with([' ', '\t']);
        if encoded || (!ends_blank && rest.starts_with(b"=?")) {
            bytes.push(b' ');
        }
    }
    let at = start + blanks;
    Some(Edit {
        start: at,
        end: at,
        bytes,
    })
}

/// `offset_field..offset_end` of a header field (name, value, line ending), if sane.
fn field_range(raw: &[u8], header: &Header<'_>) -> Option<(usize, usize)> {
    let (start, end) = (header.offset_field as usize, header.offset_end as usize);
    (start <= end && end <= raw.len()).then_some((start, end))
}

/// Where a new header field goes: after the last field of the top-level header.
fn header_end(raw: &[u8], headers: &[Header<'_>]) -> usize {
    headers
        .iter()
        .filter_map(|h| field_range(raw, h))
        .map(|(_, end)| end)
        .max()
        .unwrap_or(0)
}

fn needs_eol_before(raw: &[u8], at: usize) -> bool {
    at > 0 && raw.get(at - 1) != Some(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsed;

    fn tagged(raw: &[u8], tag: &str) -> String {
        let message = parsed::parse(raw).expect("parses");
        let plan = Plan {
            strips: Vec::new(),
            tag: Some(tag.to_owned()),
        };
        String::from_utf8(apply(raw, message.root_part().headers(), &plan)).expect("utf-8")
    }

    #[test]
    fn tag_prefixes_plain_subject() {
        assert_eq!(
            tagged(b"Subject: hello\r\nFrom: a\r\n\r\nbody\r\n", "[SPAM] "),
            "Subject: [SPAM] hello\r\nFrom: a\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn tag_before_encoded_word_keeps_it_valid() {
        assert_eq!(
            tagged(b"Subject: =?utf-8?q?h=C3=A9?=\r\n\r\nb", "[SPAM] "),
            "Subject: [SPAM] =?utf-8?q?h=C3=A9?=\r\n\r\nb"
        );
        assert_eq!(
            tagged(b"Subject: =?utf-8?q?h=C3=A9?=\r\n\r\nb", "[SPAM]"),
            "Subject: [SPAM] =?utf-8?q?h=C3=A9?=\r\n\r\nb"
        );
    }

    #[test]
    fn non_ascii_tag_is_an_encoded_word() {
        assert_eq!(
            tagged(b"Subject: hi\n\nb", "[SPÄM] "),
            "Subject: =?utf-8?B?W1NQw4RNXSA=?= hi\n\nb"
        );
    }

    #[test]
    fn missing_or_empty_subject_gets_one() {
        assert_eq!(
            tagged(b"From: a\r\nTo: b\r\n\r\nbody", "[SPAM] "),
            "From: a\r\nTo: b\r\nSubject: [SPAM]\r\n\r\nbody"
        );
        assert_eq!(
            tagged(b"Subject:\r\n\r\nx", "[SPAM] "),
            "Subject: [SPAM]\r\n\r\nx"
        );
        assert_eq!(
            tagged(b"From: a", "[SPAM] "),
            "From: a\r\nSubject: [SPAM]\r\n"
        );
    }

    #[test]
    fn already_tagged_subject_is_left_alone() {
        assert_eq!(
            tagged(b"Subject: [spam] x\r\n\r\n", "[SPAM] "),
            "Subject: [spam] x\r\n\r\n"
        );
    }

    #[test]
    fn overlapping_edits_cover_the_union() {
        let raw = b"0123456789";
        let edits = vec![
            Edit {
                start: 2,
                end: 8,
                bytes: b"A".to_vec(),
            },
            Edit {
                start: 4,
                end: 9,
                bytes: b"B".to_vec(),
            },
        ];
        assert_eq!(apply_edits(raw, edits), b"01AB9");
    }

    #[test]
    fn nested_strips_keep_the_outermost() {
        let text = String::from("t");
        let strips = vec![
            (Target::Range { start: 4, end: 6 }, text.clone()),
            (Target::Range { start: 2, end: 8 }, text.clone()),
            (Target::Range { start: 2, end: 3 }, text.clone()),
            (Target::Range { start: 10, end: 12 }, text.clone()),
        ];
        let kept: Vec<(usize, usize)> = outermost(&strips).iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(kept, [(2, 8), (10, 12)]);
    }

    #[test]
    fn eol_follows_the_first_line() {
        assert_eq!(eol_of(b"a\nb\r\n"), "\n");
        assert_eq!(eol_of(b"a\r\nb\n"), "\r\n");
        assert_eq!(eol_of(b"a"), "\r\n");
    }
}
