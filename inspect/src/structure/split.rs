//! The splitter behind [`read`]: one recursive walk over entities, with the multipart
//! scan of the chosen [`Split`]. Recursion depth is bounded by [`MAX_DEPTH`] and the work
//! by [`MAX_ENTITIES`]; past either the message is damaged (unparseable). No I/O here.

use std::collections::HashMap;

use memchr::memmem;

use super::{Ambiguity, Damage, EntityHeader, Part, Reading, Split, StrayLine, Structure, Target};
use crate::carrier;
use crate::decode::TransferEncoding;
use crate::names;

/// The deepest nesting of multiparts and messages followed.
pub(crate) const MAX_DEPTH: usize = 64;

/// The most entities read in one message.
pub(crate) const MAX_ENTITIES: usize = 100_000;

/// Header blocks already analysed, by their bytes: every reading of one message meets the
/// same blocks, and [`EntityHeader::analyse`] (a mail-parser pass) depends on nothing else.
pub(crate) type HeaderCache = HashMap<Vec<u8>, EntityHeader>;

/// Splits `raw` (an unstuffed RFC 5322 message) under `reading`; `headers` carries the
/// analysed header blocks from one reading of the message to the next.
pub(crate) fn read(raw: &[u8], reading: Reading, headers: &mut HeaderCache) -> Structure {
    let mut splitter = Splitter {
        reading,
        headers,
        parts: Vec::new(),
        aliases: Vec::new(),
        damage: None,
        ambiguity: Vec::new(),
    };
    if raw.is_empty() {
        splitter.damage = Some(Damage::NoHeaders);
    } else {
        let ctx = Ctx {
            default_type: "text/plain",
            depth: 0,
            alias: None,
            root_alias: None,
            open: Vec::new(),
            parent: None,
            cut: false,
        };
        let has_fields = splitter.entity(raw, 0, raw.len(), Target::Root, &ctx);
        if !has_fields {
            splitter.note_damage(Damage::NotAMessage);
        }
    }
    // Nested roots and everything inside a transfer-encoded message take the target of
    // the part that holds them; parents come first, so one pass resolves chains.
    for (child, parent) in std::mem::take(&mut splitter.aliases) {
        if let Some(target) = splitter.parts.get(parent).map(|p| p.target) {
            if let Some(part) = splitter.parts.get_mut(child) {
                part.target = target;
            }
        }
    }
    Structure {
        parts: splitter.parts,
        damage: splitter.damage,
        ambiguity: splitter.ambiguity,
    }
}

struct Splitter<'c> {
    reading: Reading,
    headers: &'c mut HeaderCache,
    parts: Vec<Part>,
    /// `(part, holder)`: the part's target is the holder's.
    aliases: Vec<(usize, usize)>,
    damage: Option<Damage>,
    ambiguity: Vec<Ambiguity>,
}

/// Where an entity sits.
#[derive(Clone)]
struct Ctx<'a> {
    /// The type of an entity without a usable Content-Type.
    default_type: &'static str,
    depth: usize,
    /// The part whose target every entity here takes (inside a decoded message).
    alias: Option<usize>,
    /// The part whose target this entity alone takes (a nested message's root).
    root_alias: Option<usize>,
    /// Boundaries of the enclosing multiparts in this buffer, innermost last.
    open: Vec<&'a [u8]>,
    /// The enclosing multipart's boundary (the lenient split ends leaves at it).
    parent: Option<&'a [u8]>,
    /// Whether the entity's range was ended by an enclosing delimiter.
    cut: bool,
}

/// A delimiter line found by the strict scan.
struct Delimiter {
    /// The first `-`.
    at: usize,
    /// The first byte after the line.
    after: usize,
    close: bool,
}

impl Splitter<'_> {
    /// Reads the entity in `buf[start..end]`; returns whether its header has a real field.
    /// For the lenient split the entity may end earlier: see [`Splitter::lenient_entity`].
    fn entity(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        target: Target,
        ctx: &Ctx<'_>,
    ) -> bool {
        self.entity_until(buf, start, end, target, ctx).0
    }

    /// As [`Splitter::entity`], also returning where the entity ended.
    fn entity_until(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        target: Target,
        ctx: &Ctx<'_>,
    ) -> (bool, usize) {
        if ctx.depth > MAX_DEPTH {
            self.note_damage(Damage::TooDeep);
            return (true, end);
        }
        if self.parts.len() >= MAX_ENTITIES {
            self.note_damage(Damage::TooManyParts);
            return (true, end);
        }
        let cr_lines = self.reading.split == Split::Universal;
        let (body_start, stray_line) = match (self.reading.split, self.reading.stray) {
            (Split::Lenient, _) => (header_end(buf, start, end, false), false),
            (_, StrayLine::Skipped) => (header_end(buf, start, end, cr_lines), false),
            (_, StrayLine::EndsHeader) => header_end_strict(buf, start, end, cr_lines, true),
            (_, StrayLine::EndsHeaderWithoutColon) => {
                header_end_strict(buf, start, end, cr_lines, false)
            }
        };
        if stray_line {
            // Python's email starts the body at a line that is no field; mail-parser reads
            // on to the blank line.
            self.note(Ambiguity::StrayHeaderLine);
        }
        let block = &buf[start..body_start];
        let bare_cr = has_bare_cr(block);
        if bare_cr {
            // Python's email ends lines at a bare CR too: its header block ends elsewhere.
            self.note(Ambiguity::BareCr);
        }
        let mut header = if bare_cr && cr_lines {
            // mail-parser reads fields line by line on LF: give it the lines this reading sees.
            let lines: Vec<u8> = block
                .iter()
                .enumerate()
                .map(|(i, &b)| match (b, block.get(i + 1)) {
                    (b'\r', Some(b'\n')) => b'\r',
                    (b'\r', _) => b'\n',
                    _ => b,
                })
                .collect();
            self.analysed(&lines)
        } else {
            self.analysed(block)
        };
        if stray_line {
            // A plain line reader takes every line with a colon for a field, up to the blank
            // line: the names it finds past the stray line count too (fuzz finding).
            let full = header_end(buf, start, end, cr_lines);
            header.add_unparsed_fields(&buf[start..full], false);
        }
        if self.reading == Reading::STRICT {
            for ambiguity in &header.ambiguity {
                self.note(*ambiguity);
            }
        }
        let view = header.view(self.reading.fields, self.reading.names, ctx.default_type);
        let index = self.parts.len();
        if let Some(holder) = ctx.alias.or(ctx.root_alias) {
            self.aliases.push((index, holder));
        }
        let is_multipart = view.content_type.starts_with("multipart/");
        let is_message = matches!(
            view.content_type.as_str(),
            "message/rfc822" | "message/global"
        );
        self.parts.push(Part {
            content_type: view.content_type.clone(),
            file_names: header.names.clone(),
            is_container: is_multipart || is_message,
            target,
        });
        let inner = Ctx {
            depth: ctx.depth + 1,
            root_alias: None,
            ..ctx.clone()
        };
        let entity_end = match (&view.boundary, is_multipart, is_message) {
            (Some(boundary), true, _) => {
                if header.unclear_boundary {
                    self.note_damage(Damage::UnclearBoundary);
                }
                let default_type = if view.content_type == "multipart/digest" {
                    "message/rfc822"
                } else {
                    "text/plain"
                };
                let inner = Ctx {
                    default_type,
                    ..inner
                };
                self.multipart(buf, body_start, end, boundary.as_bytes(), &inner)
            }
            (None, true, _) => {
                self.note_damage(Damage::MultipartWithoutBoundary);
                self.leaf_end(buf, body_start, end, ctx)
            }
            (_, _, true) if view.encoding == TransferEncoding::Identity => {
                // Parsed in place: the nested root is replaced with the enclosing part.
                let nested = Ctx {
                    default_type: "text/plain",
                    root_alias: Some(index),
                    ..inner
                };
                self.entity_until(buf, body_start, end, target, &nested).1
            }
            (_, _, true) => {
                let leaf_end = self.leaf_end(buf, body_start, end, ctx);
                // Bytes outside the alphabet make decoders disagree about the nested
                // message as much as about a leaf (fuzz finding).
                self.note_bad_base64(&view, &buf[body_start..leaf_end]);
                let decoded = view
                    .encoding
                    .decode(&buf[body_start..leaf_end])
                    .into_owned();
                let nested = Ctx {
                    default_type: "text/plain",
                    depth: ctx.depth + 1,
                    alias: Some(ctx.alias.unwrap_or(index)),
                    root_alias: None,
                    open: Vec::new(),
                    parent: None,
                    cut: false,
                };
                // RFC 2046 allows no transfer encoding on a message/rfc822; a reader that
                // does not take this one for a message (ripmime) scans its decoded body as
                // text, header lines included (fuzz finding: a multipart/digest part, its
                // type the default, a line without a colon before its quoted-printable
                // field). Its uuencoded files are the part's.
                for name in carrier::uuencode_names(&decoded) {
                    names::add_client_names(&name, &mut self.parts[index].file_names);
                }
                if !decoded.is_empty() {
                    self.entity(&decoded, 0, decoded.len(), target, &nested);
                }
                leaf_end
            }
            _ => {
                let leaf_end = self.leaf_end(buf, body_start, end, ctx);
                let body = &buf[body_start..leaf_end];
                self.note_bad_base64(&view, body);
                self.carriers(index, body, view.encoding, header.declares_tnef);
                leaf_end
            }
        };
        (header.has_fields, entity_end)
    }

    /// Notes a base64 body with bytes outside the alphabet as damage.
    fn note_bad_base64(&mut self, view: &super::header::View, body: &[u8]) {
        if view.encoding == TransferEncoding::Base64 && !crate::decode::is_clean_base64(body) {
            self.note_damage(Damage::BadBase64 {
                content_type: view.content_type.clone(),
            });
        }
    }

    /// Where a leaf that starts its body at `body_start` ends.
    fn leaf_end(&self, buf: &[u8], body_start: usize, end: usize, ctx: &Ctx<'_>) -> usize {
        match (self.reading.split, ctx.parent) {
            (Split::Lenient, Some(parent)) => {
                match find_dash_boundary(&buf[body_start..end], parent) {
                    Some(hit) => end_before(buf, body_start + hit, body_start, false),
                    None => end,
                }
            }
            _ => end,
        }
    }

    /// Adds the names of files carried in a leaf's body (uuencode, TNEF).
    fn carriers(&mut self, index: usize, body: &[u8], encoding: TransferEncoding, tnef: bool) {
        let Some(part) = self.parts.get(index) else {
            return;
        };
        let tnef = tnef || carrier::is_tnef(&part.content_type, &part.file_names);
        let uuencode = carrier::may_hold_uuencode(&part.content_type);
        if !tnef && !uuencode {
            return;
        }
        // Without a `begin`, a text part carries nothing, unless it is TNEF as well (its
        // type unusable, hence text, but named TNEF: fuzz finding).
        let uuencode = uuencode
            && (encoding != TransferEncoding::Identity || memmem::find(body, b"begin").is_some());
        if !tnef && !uuencode {
            return;
        }
        let content = encoding.decode(body);
        let mut carried = Vec::new();
        if uuencode {
            carried.extend(carrier::uuencode_names(&content));
        }
        if tnef {
            match carrier::tnef_names(&content) {
                Ok(found) => carried.extend(found),
                Err(error) => self.note_damage(Damage::Tnef(error)),
            }
        }
        if let Some(part) = self.parts.get_mut(index) {
            for name in carried {
                names::add_client_names(&name, &mut part.file_names);
            }
        }
    }

    /// Reads a multipart body `buf[body_start..end]`; returns where the multipart ended.
    fn multipart(
        &mut self,
        buf: &[u8],
        body_start: usize,
        end: usize,
        boundary: &[u8],
        ctx: &Ctx<'_>,
    ) -> usize {
        let clash = ctx
            .open
            .iter()
            .any(|open| open.starts_with(boundary) || boundary.starts_with(open));
        if clash {
            self.note(Ambiguity::BoundaryPrefix);
        }
        match self.reading.split {
            Split::Strict | Split::Universal => {
                self.strict_multipart(buf, body_start, end, boundary, ctx)
            }
            Split::Lenient => self.lenient_multipart(buf, body_start, end, boundary, ctx),
        }
    }

    fn strict_multipart(
        &mut self,
        buf: &[u8],
        body_start: usize,
        end: usize,
        boundary: &[u8],
        ctx: &Ctx<'_>,
    ) -> usize {
        let cr_lines = self.reading.split == Split::Universal;
        let delimiters = self.strict_delimiters(buf, body_start, end, boundary, cr_lines);
        let mut open = ctx.open.clone();
        open.push(boundary);
        match delimiters.first() {
            None => return end,
            Some(first) if first.close => {
                // Python's email ends the multipart here; mail-parser reads on.
                self.note(Ambiguity::CloseInPreamble);
                return end;
            }
            Some(_) => {}
        }
        let mut closed = false;
        for (i, delimiter) in delimiters.iter().enumerate() {
            if delimiter.close {
                closed = true;
                break;
            }
            let start = delimiter.after;
            let (part_end, cut) = match delimiters.get(i + 1) {
                Some(next) => (end_before(buf, next.at, start, cr_lines), true),
                None => (end, ctx.cut),
            };
            let part_ctx = Ctx {
                open: open.clone(),
                parent: Some(boundary),
                cut,
                root_alias: None,
                ..ctx.clone()
            };
            self.entity(
                buf,
                start,
                part_end,
                Target::Range {
                    start,
                    end: part_end,
                },
                &part_ctx,
            );
        }
        if !closed && ctx.cut {
            // mail-parser reads past the enclosing delimiter up to this one's close.
            self.note(Ambiguity::UnclosedInnerMultipart);
        }
        end
    }

    /// The strict delimiter lines of `boundary` in `buf[start..end]`, noting every
    /// `--boundary` that is not one.
    fn strict_delimiters(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        boundary: &[u8],
        cr_lines: bool,
    ) -> Vec<Delimiter> {
        let mut needle = Vec::with_capacity(boundary.len() + 2);
        needle.extend_from_slice(b"--");
        needle.extend_from_slice(boundary);
        let mut found = Vec::new();
        for hit in memmem::find_iter(&buf[start..end], &needle) {
            let at = start + hit;
            let before = (at > start).then(|| buf[at - 1]);
            let line_start = match before {
                None | Some(b'\n') => true,
                Some(b'\r') if cr_lines => true,
                Some(b'\r') => {
                    self.note(Ambiguity::BareCr);
                    continue;
                }
                Some(_) => {
                    self.note(Ambiguity::MidLineDelimiter);
                    continue;
                }
            };
            debug_assert!(line_start);
            let mut pos = at + needle.len();
            let close = buf[pos..end].starts_with(b"--");
            if close {
                pos += 2;
            }
            while pos < end && matches!(buf[pos], b' ' | b'\t') {
                pos += 1;
            }
            let rest = &buf[pos..end];
            let after = if rest.is_empty() {
                end
            } else if rest.starts_with(b"\r\n") {
                pos + 2
            } else if rest.starts_with(b"\n") || (cr_lines && rest.starts_with(b"\r")) {
                pos + 1
            } else {
                self.note(if rest.starts_with(b"\r") {
                    Ambiguity::BareCr
                } else {
                    Ambiguity::BoundaryWithText
                });
                continue;
            };
            found.push(Delimiter { at, after, close });
        }
        found
    }

    /// mail-parser's reading: `--boundary` anywhere; returns where the multipart ended
    /// (after its close delimiter's line, or `end`).
    fn lenient_multipart(
        &mut self,
        buf: &[u8],
        body_start: usize,
        end: usize,
        boundary: &[u8],
        ctx: &Ctx<'_>,
    ) -> usize {
        let mut from = body_start;
        let mut first = true;
        loop {
            let Some(hit) = find_dash_boundary(&buf[from..end], boundary) else {
                return end;
            };
            let at = from + hit;
            let after_boundary = at + 2 + boundary.len();
            let close = buf[after_boundary..end].starts_with(b"--");
            if close && first {
                // mail-parser reads no close delimiter in the preamble.
                from = after_boundary;
                continue;
            }
            let line_end = memchr::memchr(b'\n', &buf[after_boundary..end])
                .map_or(end, |i| after_boundary + i + 1);
            if close {
                return line_end;
            }
            first = false;
            let start = line_end;
            let index = self.parts.len();
            let part_ctx = Ctx {
                parent: Some(boundary),
                root_alias: None,
                ..ctx.clone()
            };
            let placeholder = Target::Range { start, end: start };
            let (_, consumed) = self.entity_until(buf, start, end, placeholder, &part_ctx);
            let next = find_dash_boundary(&buf[consumed..end], boundary).map(|i| consumed + i);
            let part_end = next.map_or(end, |n| end_before(buf, n, start, false));
            if let Some(part) = self.parts.get_mut(index) {
                part.target = Target::Range {
                    start,
                    end: part_end,
                };
            }
            match next {
                Some(n) => from = n,
                None => return end,
            }
        }
    }

    fn note(&mut self, ambiguity: Ambiguity) {
        if self.reading == Reading::STRICT && !self.ambiguity.contains(&ambiguity) {
            self.ambiguity.push(ambiguity);
        }
    }

    /// The block's header, analysed once per message.
    fn analysed(&mut self, block: &[u8]) -> EntityHeader {
        if let Some(header) = self.headers.get(block) {
            return header.clone();
        }
        let header = EntityHeader::analyse(block);
        self.headers.insert(block.to_vec(), header.clone());
        header
    }

    fn note_damage(&mut self, damage: Damage) {
        if self.damage.is_none() {
            self.damage = Some(damage);
        }
    }
}

/// Whether `bytes` has a CR that is not followed by LF.
fn has_bare_cr(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\r', bytes).any(|i| bytes.get(i + 1) != Some(&b'\n'))
}

/// The first `--boundary` in `bytes`.
fn find_dash_boundary(bytes: &[u8], boundary: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(hit) = memmem::find(&bytes[from..], b"--") {
        let at = from + hit;
        if bytes[at + 2..].starts_with(boundary) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Where a part ends before the delimiter at `at`: the line break before it belongs to
/// the delimiter (RFC 2046 §5.1.1), but never before `min`.
fn end_before(buf: &[u8], at: usize, min: usize, cr_lines: bool) -> usize {
    if at <= min {
        return min;
    }
    match buf[at - 1] {
        b'\n' if at - 1 > min && buf[at - 2] == b'\r' => at - 2,
        b'\n' => at - 1,
        b'\r' if cr_lines => at - 1,
        _ => at,
    }
}

/// Whether a complete header block has a line that is no field (see
/// [`header_end_strict`]): strict and lenient readers end it at different places.
pub(crate) fn has_stray_line(block: &[u8]) -> bool {
    header_end_strict(block, 0, block.len(), false, true).1
}

/// Where the header block starting at `start` ends for a strict reader: after its blank
/// line, or at the first line that is neither a field (`name:`, the name printable ASCII
/// when `strict_names`), a continuation (leading blank) nor an mbox `From ` line (the body
/// starts there; `true` then).
fn header_end_strict(
    buf: &[u8],
    start: usize,
    end: usize,
    cr_lines: bool,
    strict_names: bool,
) -> (usize, bool) {
    let blank = header_end(buf, start, end, cr_lines);
    let mut line_start = start;
    while line_start < blank {
        let line = &buf[line_start..blank];
        let eol = if cr_lines {
            memchr::memchr2(b'\n', b'\r', line)
        } else {
            memchr::memchr(b'\n', line)
        };
        let len = eol.map_or(line.len(), |i| i + 1);
        let text = &line[..len];
        let content = text
            .strip_suffix(b"\n")
            .unwrap_or(text)
            .strip_suffix(b"\r")
            .unwrap_or(text.strip_suffix(b"\n").unwrap_or(text));
        let field = content.starts_with(b"From ")
            || content.first().is_some_and(|&b| b == b' ' || b == b'\t')
            || memchr::memchr(b':', content).is_some_and(|colon| {
                !strict_names || content[..colon].iter().all(|&b| (33..=126).contains(&b))
            });
        if content.is_empty() {
            break;
        }
        if !field {
            return (line_start, true);
        }
        line_start += len;
    }
    (blank, false)
}

/// Where the header block starting at `start` ends: after its blank line, or at `end`.
fn header_end(buf: &[u8], start: usize, end: usize, cr_lines: bool) -> usize {
    let mut line_start = start;
    let mut i = start;
    while i < end {
        let eol_len = match buf[i] {
            b'\n' => 1,
            b'\r' if buf.get(i + 1) == Some(&b'\n') && i + 1 < end => 2,
            b'\r' if cr_lines => 1,
            _ => {
                i += 1;
                continue;
            }
        };
        if i == line_start {
            return i + eol_len;
        }
        i += eol_len;
        line_start = i;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::super::{FieldChoice, FieldNames};
    use super::*;

    fn strict(raw: &[u8]) -> Structure {
        read(raw, Reading::STRICT, &mut HeaderCache::new())
    }

    fn types(s: &Structure) -> Vec<&str> {
        s.parts.iter().map(|p| p.content_type.as_str()).collect()
    }

    fn text(raw: &[u8], target: Target) -> &[u8] {
        match target {
            Target::Range { start, end } => &raw[start..end],
            Target::Root => raw,
        }
    }

    const NESTED: &[u8] = b"From: a@b\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8''%65vil;\r\n filename*1=\".e\";\r\n filename*2=xe\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQ\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=YY\r\n\r\n--YY\r\nContent-Type: application/x-foo; name=\"=?utf-8?b?c2NyZWVuLnNjcg==?=\"\r\n\r\nabc\r\n--YY--\r\n\r\n--XX--\r\nepilogue\r\n";

    #[test]
    fn names_past_a_stray_header_line_count() {
        let raw = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
            Conten\x01pe: x\r\nContent-Disposition: attachment; filename=\"evil.exe\"\r\n\r\n\
            MZ\r\n--b--\r\n";
        let s = strict(raw);
        assert!(s.ambiguity.contains(&Ambiguity::StrayHeaderLine));
        assert_eq!(s.parts[1].file_names, ["evil.exe"]);
    }

    #[test]
    fn part_ranges_sit_between_delimiter_lines() {
        let s = strict(NESTED);
        assert_eq!((s.damage.clone(), s.ambiguity.clone()), (None, vec![]));
        assert_eq!(
            types(&s),
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
            text(NESTED, s.parts[1].target),
            b"Content-Type: text/plain\r\n\r\nhello"
        );
        let exe = text(NESTED, s.parts[2].target);
        assert!(exe.ends_with(b"\r\n\r\nTVqQ"));
        assert_eq!(s.parts[2].file_names, ["evil.exe"]);
        assert_eq!(s.parts[4].target, s.parts[3].target);
        assert_eq!(s.parts[5].file_names, ["screen.scr"]);
        assert!(text(NESTED, s.parts[5].target).ends_with(b"\r\n\r\nabc"));
    }

    #[test]
    fn mid_line_boundary_is_text_and_ambiguous() {
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=XYZ\r\n\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\nxx--XYZ--\r\n--XYZ\r\nContent-Type: application/octet-stream; name=evil.exe\r\n\r\nMZ\r\n--XYZ--\r\n";
        let s = strict(raw);
        assert_eq!(types(&s).len(), 3);
        assert_eq!(s.parts[2].file_names, ["evil.exe"]);
        assert_eq!(s.ambiguity, [Ambiguity::MidLineDelimiter]);
        let lenient = read(
            raw,
            Reading {
                split: Split::Lenient,
                fields: FieldChoice::First,
                stray: StrayLine::Skipped,
                names: FieldNames::Parser,
            },
            &mut HeaderCache::new(),
        );
        assert_eq!(types(&lenient).len(), 2, "{lenient:?}");
    }

    #[test]
    fn a_boundary_readers_trim_differently_is_damage() {
        for boundary in [
            "\x0binner",
            " inner",
            "in\tner",
            "in  ner",
            "=?utf-8?q?inner?=",
        ] {
            let raw = format!("Subject: x\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--inner\r\nContent-Type: application/x-foo; name=evil.exe\r\n\r\nMZ\r\n--inner--\r\n");
            let s = strict(raw.as_bytes());
            assert_eq!(s.damage, Some(Damage::UnclearBoundary), "{boundary:?}");
        }
        // Non-ASCII: a reader that decodes lines lossily takes `\xde` and `\x8f` both for
        // U+FFFD (fuzz finding).
        let raw = b"Content-Type: multipart/mixed; boundary=\xde\r\n\r\n--\x8f\r\nContent-Type: x/y; name=a.scr\r\n\r\nMZ\r\n";
        assert_eq!(strict(raw).damage, Some(Damage::UnclearBoundary));
        for boundary in ["----=_Part_1", "a b", "=?x"] {
            let block = format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n");
            let header = EntityHeader::analyse(block.as_bytes());
            assert!(!header.unclear_boundary, "{boundary:?}");
        }
    }

    #[test]
    fn a_field_name_with_foreign_bytes_is_a_field_for_a_plain_line_reader() {
        // Python starts the body at `Cont\xff~ent-Type`, mail-parser reads past the
        // colonless line to the blank one; a plain line reader decodes the QP body after it.
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=XYZ\r\n\r\n--XYZ\r\nCont\xff~ent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\xff\nHere:\r\n=62egin 644 evil.scr\r\nM35J0\r\n`\r\nend\r\n\r\n--XYZ--\r\n";
        let line_reader = Reading {
            split: Split::Strict,
            fields: FieldChoice::First,
            stray: StrayLine::EndsHeaderWithoutColon,
            names: FieldNames::Parser,
        };
        let s = read(raw, line_reader, &mut HeaderCache::new());
        assert_eq!(s.parts[1].file_names, ["evil.scr"], "{s:?}");
        assert!(strict(raw).parts[1].file_names.is_empty());
    }

    #[test]
    fn a_content_type_name_only_mail_parser_reads_is_judged_by_a_line_reader_too() {
        // mail-parser counts `Con\rtent-Type:` as the first Content-Type (empty: text); a
        // line reader knows no such field and takes the multipart after it.
        let raw = b"m:\nCon\rtent-Type:\nContent-Type:multipart/;boundary=XYZ\nContent-Type:\n\n--XYZ\nContent-Type: application/octet-stream; name=evil.exe\n\nMZ\n--XYZ--\n";
        let s = strict(raw);
        assert_eq!(s.ambiguity, [Ambiguity::StrayHeaderLine], "{s:?}");
        assert_eq!(
            types(&s).len(),
            1,
            "the strict reading sees one text entity"
        );
        let line_reader = Reading {
            split: Split::Strict,
            fields: FieldChoice::First,
            stray: StrayLine::EndsHeaderWithoutColon,
            names: FieldNames::Line,
        };
        let s = read(raw, line_reader, &mut HeaderCache::new());
        assert_eq!(s.parts[0].content_type, "multipart/", "{s:?}");
        assert_eq!(s.parts[1].file_names, ["evil.exe"]);
    }

    #[test]
    fn missing_final_boundary_is_normal() {
        let raw = b"Subject: x\nContent-Type: multipart/mixed; boundary=Q\n\n--Q\nContent-Type: text/plain\n\nunterminated";
        let s = strict(raw);
        assert_eq!((s.damage.clone(), s.ambiguity.clone()), (None, vec![]));
        assert_eq!(
            text(raw, s.parts[1].target),
            b"Content-Type: text/plain\n\nunterminated"
        );
    }

    #[test]
    fn encoded_nested_message_maps_to_enclosing_part() {
        let raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nQ29udGVudC1UeXBlOiBhcHBsaWNhdGlvbi9mb287IG5hbWU9ZXZpbC5leGUNCg0KYWJj\r\n--Q--\r\n";
        let s = strict(raw);
        let last = s.parts.last().expect("parts");
        assert_eq!(last.file_names, ["evil.exe"]);
        assert_eq!(last.target, s.parts[1].target);
    }

    #[test]
    fn encoded_nested_message_carries_the_uuencoded_files_of_its_text() {
        // A digest part's default type with a quoted-printable body after a stray line: the
        // decoded body has no header field, so no reading finds a body in it (fuzz finding;
        // ripmime saves evil.scr).
        let raw = b"Content-Type: multipart/digest; boundary=D\n\n--D\na\nContent-Transfer-Encoding: quoted-printable\n\n=62egin 644 evil.scr\n(35H@:&5L;&\\ \n`\nend\n--D--\n";
        let skipped = Reading {
            stray: StrayLine::Skipped,
            ..Reading::STRICT
        };
        let s = read(raw, skipped, &mut HeaderCache::new());
        assert_eq!(s.parts[1].content_type, "message/rfc822");
        assert_eq!(s.parts[1].file_names, ["evil.scr"]);
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert_eq!(
            strict(b"garbage without colon").damage,
            Some(Damage::NotAMessage)
        );
        assert_eq!(strict(b"").damage, Some(Damage::NoHeaders));
        assert_eq!(strict(b"Subject: only headers").damage, None);
    }

    #[test]
    fn header_end_handles_line_endings() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody", 0, 13, false), 8);
        assert_eq!(header_end(b"A: b\n\nbody", 0, 10, false), 6);
        assert_eq!(header_end(b"\r\nbody", 0, 6, false), 2);
        assert_eq!(header_end(b"A: b\r\rbody", 0, 10, false), 10);
        assert_eq!(header_end(b"A: b\r\rbody", 0, 10, true), 6);
    }
}
#[cfg(test)]
mod fuzz_findings {
    //! Regression tests for what fuzzing found (`inspect/fuzz`).
    use super::*;

    #[test]
    fn non_ascii_multipart_subtype_is_still_a_multipart() {
        let raw = b"Subject: x\r\nContent-Type: multipart/mixe\xe4; boundary=XYZ\r\n\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XYZ\r\nContent-Type: application/octet-stream; name=evil.exe\r\n\r\nMZ\r\n--XYZ--\r\n";
        let s = read(raw, Reading::STRICT, &mut HeaderCache::new());
        assert_eq!(s.parts.len(), 3, "{s:?}");
        assert_eq!(s.parts[2].file_names, ["evil.exe"]);
    }
}
