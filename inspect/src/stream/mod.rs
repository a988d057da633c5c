//! Streaming inspection: forward a message to the client while it arrives.
//!
//! [`StreamInspector`] gives the same bytes and verdict as [`crate::inspect`] for rule sets in
//! which no verdict can need the whole message (only `allow`/`strip` for parts, `allow`/`tag`
//! for header rules, `unparseable: allow`, no antivirus). It holds back only what is not
//! decided yet: the top-level header block (a `tag` rewrites the Subject), each part's header
//! block (its content type and file names decide a `strip`), and the few bytes at the end of
//! a chunk that might start a boundary delimiter. A stripped part's replacement is emitted as
//! soon as its header block is complete, and its body is skipped up to the next delimiter.
//!
//! The walk mirrors mail-parser 0.11 (see `walk.rs`) on a deliberately small subset: header
//! blocks are parsed by mail-parser itself, and a part's body ends at the first
//! `--boundary` of its multipart, wherever it stands. A message/rfc822 part without transfer
//! encoding, one level deep, is followed the way mail-parser reads it in place: its nested
//! header is held with the part's header, its single part or multipart ends at the enclosing
//! boundary, and its decisions rank after the enclosing message's parts (the batch walk's
//! order). Anything outside the subset (a delimiter not at a line start or followed by
//! anything but a line break or `--`, another open multipart's boundary inside a part, a
//! stripped container, deeper or transfer-encoded nested messages, multipart/digest, a
//! sparse quoted-printable body, huge header blocks, deep nesting, an unfinished structure
//! at the end) switches to *hold*: nothing more is emitted and [`StreamInspector::finish`]
//! runs the batch [`crate::inspect`] on the whole message, emitting what follows the bytes
//! already sent, or reports [`Diverged`] when those bytes are not a prefix of the batch
//! output.
//!
//! No I/O and no clock here; the caller reads the server, unstuffs, restuffs and writes.

use mail_parser::{HeaderName, MessagePart, MimeHeaders};

use crate::inspection::{self, fill, part_decision, Output, Tally};
use crate::rewrite::{self, eol_of, replacement_part, Plan};
use crate::rules::Rules;
use crate::verdict::{Decision, Verdict};
use crate::walk::{self, Part, Target};

use framing::{count_qp, find_delimiter, header_block_len, Found};

mod framing;

/// The longest header block (top-level or of one part) held before giving up streaming.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// The deepest multipart nesting followed while streaming.
const MAX_DEPTH: usize = 32;

/// What a streamed message came to (the same as [`crate::Inspection`] without the output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutcome {
    /// The strongest verdict that applied.
    pub verdict: Verdict,
    /// The rule that decided, e.g. `file_names: *.exe`, or `none`.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
}

/// The bytes already sent are not a prefix of what the message should have become.
///
/// Only malformed or hostile messages get here. The caller ends the session without the
/// terminator, so the client discards the partial message and it stays on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("streamed bytes diverged from the inspection result")]
pub struct Diverged;

/// Inspects one unstuffed message as it arrives and says which bytes may be sent already.
///
/// Calling contract: [`StreamInspector::new`] once per message (it returns `None` when the
/// rules could need the whole message: use [`crate::inspect`] then); [`StreamInspector::push`]
/// with each chunk of the unstuffed message in order, sending what it appends to `out`; then
/// [`StreamInspector::finish`] with the complete message, sending what it appends and then
/// the terminator, or ending the session without a terminator on [`Diverged`].
/// Everything sent, in order, equals what [`crate::inspect`] would have returned for the
/// message ([`Output::Original`]: the message itself). Never panics on any input.
#[derive(Debug)]
pub struct StreamInspector {
    rules: Rules,
    quarantine_id: String,
    tally: Tally,
    state: State,
    /// Bytes received and not yet emitted or skipped; they start at `pending_start`.
    pending: Vec<u8>,
    pending_start: usize,
    /// Bytes received so far.
    consumed: usize,
    /// Where the search for the end of the header block in `pending` resumes.
    header_from: usize,
    /// The boundaries of the open multiparts, innermost last.
    boundaries: Vec<Vec<u8>>,
    /// For each open multipart, which message its parts belong to (0: the top level, `k`:
    /// the `k`th nested message/rfc822 in document order).
    owners: Vec<usize>,
    /// Nested messages met so far.
    nested_messages: usize,
    /// Part decisions with the message they belong to: the batch walk visits a nested
    /// message's parts after all parts of the enclosing message, and ties keep the first.
    decisions: Vec<(usize, Decision)>,
    /// The line ending of the message (known once the first line is complete).
    eol: &'static str,
    /// What was emitted, as original ranges and new bytes (no copy of the message).
    emitted: Vec<Segment>,
}

#[derive(Debug)]
enum State {
    /// Collecting a header block that starts at `pending_start`.
    Header(HeaderKind),
    /// Looking for the innermost boundary in a preamble, a part body or an epilogue.
    Scan(Scan),
    /// Everything that follows passes unchanged.
    Trailer,
    /// Everything that follows was replaced already (a stripped top-level part); `finish`
    /// confirms with the batch walk.
    Swallow,
    /// Not sure the batch walk agrees: emit nothing more, decide in `finish`.
    Hold,
}

#[derive(Debug)]
enum HeaderKind {
    /// The message's own header.
    Top,
    /// A part of the innermost multipart.
    Part,
    /// The header of a message/rfc822 part's message; the part's own header block starts at
    /// `start` and is held until this one is decided.
    Nested { start: usize, block: Vec<u8> },
}

#[derive(Debug)]
struct Scan {
    /// Where the scanned region starts (body start, or just after a closing delimiter).
    region_start: usize,
    /// Whether `region_start` is at the start of a line.
    region_at_line_start: bool,
    /// The first byte of the part being skipped because it is stripped.
    strip: Option<usize>,
    /// Whether this is a multipart's preamble (mail-parser reads no close delimiter there).
    preamble: bool,
    /// Whether this is the body of a nested message's single part (mail-parser ends it
    /// differently when the delimiter opens the body).
    nested: bool,
    /// For a quoted-printable part: how many bytes that decode to something were seen, until
    /// [`framing::QP_ENOUGH`]. mail-parser 0.11's decoder subtracts with overflow when such a body
    /// decodes to almost nothing before the delimiter (a panic in builds with overflow
    /// checks, after which the batch sees an unparseable message); such parts are held.
    qp_seen: Option<u8>,
}

#[derive(Debug)]
enum Segment {
    Original { start: usize, end: usize },
    New(Vec<u8>),
}

/// What one step of the state machine did.
enum Step {
    /// The state changed or bytes were consumed; try again.
    Progress,
    /// More input is needed.
    Wait,
}

impl StreamInspector {
    /// A streaming inspector for `rules`, or `None` when a verdict could need the whole
    /// message: antivirus on (`scanning`), a `content_types`/`file_names` verdict (rule or
    /// default) other than `allow`/`strip`, a `headers` verdict other than `allow`/`tag`, or
    /// `unparseable` other than `allow`. Oversize is the caller's business: the size limit
    /// is not applied here.
    pub fn new(rules: &Rules, scanning: bool, quarantine_id: &str) -> Option<StreamInspector> {
        let part_ok = |v: &Verdict| matches!(v, Verdict::Allow | Verdict::Strip);
        let streamable = !scanning
            && rules.unparseable == Verdict::Allow
            && part_ok(&rules.content_types.default)
            && rules.content_types.rules.iter().all(|(_, v)| part_ok(v))
            && part_ok(&rules.file_names.default)
            && rules.file_names.rules.iter().all(|(_, v)| part_ok(v))
            && rules
                .headers
                .iter()
                .all(|h| matches!(h.verdict, Verdict::Allow | Verdict::Tag));
        streamable.then(|| StreamInspector {
            rules: Rules {
                max_message_size: u64::MAX,
                ..rules.clone()
            },
            quarantine_id: quarantine_id.to_owned(),
            tally: Tally::new(),
            state: State::Header(HeaderKind::Top),
            pending: Vec::new(),
            pending_start: 0,
            consumed: 0,
            header_from: 0,
            boundaries: Vec::new(),
            owners: Vec::new(),
            nested_messages: 0,
            decisions: Vec::new(),
            eol: "\r\n",
            emitted: Vec::new(),
        })
    }

    /// Feeds the next bytes of the unstuffed message (any chunk size) and appends to `out`
    /// the bytes that may be sent to the client now.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let start = self.consumed;
        self.consumed += data.len();
        match self.state {
            State::Hold | State::Swallow => return,
            State::Trailer if self.pending.is_empty() => {
                self.pending_start = self.consumed;
                self.emit_original(start, data, out);
                return;
            }
            _ => {}
        }
        self.pending.extend_from_slice(data);
        while let Step::Progress = self.step(out) {}
    }

    /// Whether the inspector stopped forwarding because it is not sure the batch walk sees
    /// the message the same way; `finish` then decides with [`crate::inspect`].
    pub fn holding(&self) -> bool {
        matches!(self.state, State::Hold)
    }

    /// Ends the message: `whole` is the complete unstuffed message (everything pushed).
    /// Appends the rest of what the client gets to `out` and returns the outcome.
    ///
    /// # Errors
    ///
    /// [`Diverged`] when the bytes already emitted are not a prefix of the correct output.
    pub fn finish(mut self, whole: &[u8], out: &mut Vec<u8>) -> Result<StreamOutcome, Diverged> {
        // Only a message that ended after its structure did is decided by the stream. Every
        // other state goes to the batch walk, and so does `Swallow`: a top-level strip was
        // emitted from the header block alone, so the batch confirms the rest (rare, and
        // the body is dropped anyway).
        if whole.len() == self.consumed && matches!(self.state, State::Trailer) {
            let pending = std::mem::take(&mut self.pending);
            self.emit_original(self.pending_start, &pending, out);
            return Ok(self.outcome());
        }
        self.finish_batch(whole, out)
    }

    /// Finishes without the whole message when the stream decided everything itself (the
    /// message ended after its structure did); gives the inspector back when [`finish`]
    /// needs the whole message. The caller promises it pushed the whole message.
    ///
    /// [`finish`]: StreamInspector::finish
    pub fn finish_streamed(
        mut self: Box<Self>,
        out: &mut Vec<u8>,
    ) -> Result<StreamOutcome, Box<StreamInspector>> {
        if matches!(self.state, State::Trailer) {
            let pending = std::mem::take(&mut self.pending);
            self.emit_original(self.pending_start, &pending, out);
            return Ok(self.outcome());
        }
        Err(self)
    }

    /// The hold path: the batch result, minus what was already emitted.
    fn finish_batch(self, whole: &[u8], out: &mut Vec<u8>) -> Result<StreamOutcome, Diverged> {
        let batch = inspection::inspect(whole, &self.rules, None, &self.quarantine_id);
        let expected: &[u8] = match &batch.output {
            Output::Original => whole,
            Output::Rewritten(bytes) => bytes,
            Output::Withhold => return Err(Diverged),
        };
        let mut at = 0;
        for segment in &self.emitted {
            let bytes = match segment {
                Segment::Original { start, end } => whole.get(*start..*end).ok_or(Diverged)?,
                Segment::New(bytes) => bytes,
            };
            if expected.get(at..at + bytes.len()) != Some(bytes) {
                return Err(Diverged);
            }
            at += bytes.len();
        }
        out.extend_from_slice(&expected[at..]);
        Ok(StreamOutcome {
            verdict: batch.verdict,
            rule: batch.rule,
            reason: batch.reason,
        })
    }

    fn outcome(mut self) -> StreamOutcome {
        // The batch walk's order: the top-level parts, then each nested message's parts.
        self.decisions.sort_by_key(|(owner, _)| *owner);
        for (_, decision) in std::mem::take(&mut self.decisions) {
            self.tally.record(decision);
        }
        let Decision {
            verdict,
            rule,
            reason,
            ..
        } = self.tally.strongest;
        StreamOutcome {
            verdict,
            rule,
            reason,
        }
    }

    fn step(&mut self, out: &mut Vec<u8>) -> Step {
        match self.state {
            State::Header(_) => self.header_step(out),
            State::Scan(_) => self.scan_step(out),
            State::Trailer => {
                let pending = std::mem::take(&mut self.pending);
                self.emit_original(self.pending_start, &pending, out);
                self.pending_start += pending.len();
                Step::Wait
            }
            State::Swallow | State::Hold => {
                self.pending = Vec::new();
                Step::Wait
            }
        }
    }

    /// Looks for the end of the header block in `pending` and decides it once complete.
    fn header_step(&mut self, out: &mut Vec<u8>) -> Step {
        let len = match header_block_len(&self.pending, self.header_from) {
            Ok(len) => len,
            Err(resume) => {
                self.header_from = resume;
                if self.pending.len() > MAX_HEADER_BLOCK {
                    self.hold();
                }
                return Step::Wait;
            }
        };
        self.header_from = 0;
        let start = self.pending_start;
        let block: Vec<u8> = self.pending.drain(..len).collect();
        self.pending_start += len;
        let kind = std::mem::replace(&mut self.state, State::Hold);
        let decided = match kind {
            State::Header(HeaderKind::Top) => self.decide_top(&block, out),
            State::Header(HeaderKind::Part) => self.decide_part(start, &block, out),
            State::Header(HeaderKind::Nested {
                start: outer,
                block: outer_block,
            }) => self.decide_nested(outer, &outer_block, start, &block, out),
            _ => None,
        };
        if decided.is_none() {
            self.hold();
        }
        Step::Progress
    }

    /// Decides the top-level header block; `None` means hold.
    fn decide_top(&mut self, block: &[u8], out: &mut Vec<u8>) -> Option<()> {
        self.eol = eol_of(block);
        let parsed = parsed_block(block)?;
        let root = parsed.parts.first()?;
        let headers = root.headers();
        if headers.is_empty() {
            return None;
        }
        self.tally.headers(&self.rules, block, headers);
        let shape = shape_of(root)?;
        if matches!(shape, Shape::Message) {
            // mail-parser reads a top-level message/rfc822 without a boundary to end it.
            return None;
        }
        let part = Part {
            content_type: walk::content_type_of(root),
            file_names: walk::file_names_of(root),
            is_container: matches!(shape, Shape::Multipart(_)),
            target: Target::Root,
        };
        let tag = self.tally.tagged.then(|| self.rules.spam_tag.clone());
        let decision = part_decision(&self.rules, &part);
        if let Some(decision) = decision {
            // Only `strip` gets here (see `new`): the whole body is replaced from the header
            // block alone, exactly as `rewrite::apply` does for the root.
            let text = strip_text(&self.rules, &decision);
            let plan = Plan {
                strips: vec![(Target::Root, text)],
                tag,
            };
            self.tally.record(decision);
            self.emit_new(rewrite::apply(block, headers, &plan), out);
            self.state = State::Swallow;
            return Some(());
        }
        match tag {
            Some(tag) => {
                let plan = Plan {
                    strips: Vec::new(),
                    tag: Some(tag),
                };
                self.emit_new(rewrite::apply(block, headers, &plan), out);
            }
            None => self.emit_original(0, block, out),
        }
        match shape {
            Shape::Leaf => self.state = State::Trailer,
            Shape::Multipart(boundary) => self.open(boundary, block.len(), 0)?,
            Shape::Message => return None, // held above
        }
        Some(())
    }

    /// Decides the header block of a part inside a multipart; `None` means hold.
    fn decide_part(&mut self, start: usize, block: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let owner = self.owners.last().copied().unwrap_or(0);
        let (shape, part, qp) = if is_blank_line(block) {
            let part = Part {
                content_type: "text/plain".to_owned(),
                file_names: Vec::new(),
                is_container: false,
                target: Target::Root,
            };
            (Shape::Leaf, part, false)
        } else {
            let parsed = parsed_block(block)?;
            let root = parsed.parts.first()?;
            let shape = shape_of(root)?;
            let part = Part {
                content_type: walk::content_type_of(root),
                file_names: walk::file_names_of(root),
                is_container: !matches!(shape, Shape::Leaf),
                target: Target::Root,
            };
            (shape, part, !plain_transfer_encoding(root))
        };
        let decision = part_decision(&self.rules, &part);
        match shape {
            // A stripped container takes its parts with it; rare enough to hold.
            Shape::Multipart(_) | Shape::Message if decision.is_some() => None,
            Shape::Multipart(boundary) => {
                self.emit_original(start, block, out);
                self.open(boundary, start + block.len(), owner)
            }
            // One level of nesting; its header is held until the nested one is decided.
            Shape::Message if owner == 0 => {
                self.state = State::Header(HeaderKind::Nested {
                    start,
                    block: block.to_vec(),
                });
                Some(())
            }
            Shape::Message => None,
            Shape::Leaf => {
                self.leaf(owner, start, block, decision, qp, false, out);
                Some(())
            }
        }
    }

    /// Decides the header of a nested message (`block` at `start`) inside the message/rfc822
    /// part whose own header `outer_block` starts at `outer`; `None` means hold.
    ///
    /// mail-parser reads the nested message in place with the enclosing multipart's boundary,
    /// so its single part or its multipart ends where a part of the enclosing multipart would.
    /// Its first part stands for the whole message/rfc822 part when stripped.
    fn decide_nested(
        &mut self,
        outer: usize,
        outer_block: &[u8],
        start: usize,
        block: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<()> {
        if is_blank_line(block) || outer + outer_block.len() != start {
            return None;
        }
        let parsed = parsed_block(block)?;
        let root = parsed.parts.first()?;
        let shape = shape_of(root)?;
        let part = Part {
            content_type: walk::content_type_of(root),
            file_names: walk::file_names_of(root),
            is_container: !matches!(shape, Shape::Leaf),
            target: Target::Root,
        };
        let qp = !plain_transfer_encoding(root);
        let decision = part_decision(&self.rules, &part);
        self.nested_messages += 1;
        let owner = self.nested_messages;
        match shape {
            Shape::Leaf => {
                if decision.is_none() {
                    self.emit_original(outer, outer_block, out);
                }
                self.leaf(owner, outer, block, decision, qp, true, out);
                Some(())
            }
            Shape::Multipart(boundary) if decision.is_none() => {
                self.emit_original(outer, outer_block, out);
                self.emit_original(start, block, out);
                self.open(boundary, start + block.len(), owner)
            }
            Shape::Multipart(_) | Shape::Message => None,
        }
    }

    /// Emits a leaf part's header block (or the replacement of the part starting at `start`,
    /// when stripped) and scans its body, which starts right after `block`.
    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &mut self,
        owner: usize,
        start: usize,
        block: &[u8],
        decision: Option<Decision>,
        qp: bool,
        nested: bool,
        out: &mut Vec<u8>,
    ) {
        let body_start = self.pending_start;
        let strip = match decision {
            Some(decision) => {
                let text = strip_text(&self.rules, &decision);
                self.emit_new(replacement_part(&text, self.eol), out);
                self.decisions.push((owner, decision));
                Some(start)
            }
            None => {
                self.emit_original(body_start - block.len(), block, out);
                None
            }
        };
        self.state = State::Scan(Scan {
            region_start: body_start,
            region_at_line_start: true,
            strip,
            preamble: false,
            nested,
            qp_seen: qp.then_some(0),
        });
    }

    /// Enters a multipart of message `owner` whose preamble starts at `body_start`.
    fn open(&mut self, boundary: Vec<u8>, body_start: usize, owner: usize) -> Option<()> {
        let clash = self
            .boundaries
            .iter()
            .any(|b| b.starts_with(&boundary) || boundary.starts_with(b));
        if clash || self.boundaries.len() >= MAX_DEPTH {
            return None;
        }
        self.boundaries.push(boundary);
        self.owners.push(owner);
        self.state = State::Scan(Scan {
            region_start: body_start,
            region_at_line_start: true,
            strip: None,
            preamble: true,
            nested: false,
            qp_seen: None,
        });
        Some(())
    }

    /// Looks for the innermost boundary in `pending`, emitting or skipping what precedes it.
    fn scan_step(&mut self, out: &mut Vec<u8>) -> Step {
        let State::Scan(scan) = &self.state else {
            return Step::Wait;
        };
        let skipping = scan.strip.is_some();
        let longest = self.boundaries.iter().map(Vec::len).max().unwrap_or(0);
        match find_delimiter(&self.pending, &self.boundaries) {
            Found::Other => {
                self.hold();
                Step::Progress
            }
            Found::Nothing { undecided } => {
                // Keep what a later delimiter (with the line break before it) could need.
                let keep_from = self.pending.len().saturating_sub(longest + 4);
                let drain = undecided.map_or(keep_from, |u| u.saturating_sub(2).min(keep_from));
                if drain > 0 {
                    let bytes: Vec<u8> = self.pending.drain(..drain).collect();
                    if let State::Scan(scan) = &mut self.state {
                        count_qp(&mut scan.qp_seen, &bytes);
                    }
                    if !skipping {
                        self.emit_original(self.pending_start, &bytes, out);
                    }
                    self.pending_start += drain;
                }
                Step::Wait
            }
            Found::Current(at) => self.delimiter(at, out),
        }
    }

    /// Handles the innermost boundary found at `pending[at..]` (`at` is the first `-`).
    fn delimiter(&mut self, at: usize, out: &mut Vec<u8>) -> Step {
        let State::Scan(scan) = std::mem::replace(&mut self.state, State::Hold) else {
            return Step::Wait;
        };
        let boundary_len = self.boundaries.last().map_or(0, Vec::len);
        let absolute = self.pending_start + at;
        // `at` below 3 only happens before anything of the region was drained (see
        // `scan_step`), so `at == 0` is the region start.
        let at_line_start = if at == 0 {
            absolute == scan.region_start && scan.region_at_line_start
        } else {
            self.pending[at - 1] == b'\n'
        };
        let mut qp_seen = scan.qp_seen;
        count_qp(&mut qp_seen, &self.pending[..at]);
        // A nested message's part ends differently when the delimiter opens its body.
        let nested_edge = scan.nested && absolute == scan.region_start;
        if !at_line_start || qp_seen.is_some() || nested_edge {
            self.hold();
            return Step::Progress;
        }
        let after = at + 2 + boundary_len;
        let (next, closes) = match (self.pending.get(after), self.pending.get(after + 1)) {
            (None, _) | (Some(b'\r' | b'-'), None) => {
                self.state = State::Scan(scan);
                return Step::Wait;
            }
            (Some(b'\n'), _) => (after + 1, false),
            (Some(b'\r'), Some(b'\n')) => (after + 2, false),
            (Some(b'-'), Some(b'-')) if !scan.preamble => (after + 2, true),
            _ => {
                self.hold();
                return Step::Progress;
            }
        };
        let from = match scan.strip {
            // mail-parser: the part ends before the line break that precedes the delimiter,
            // or at the body start when the delimiter opens the body.
            Some(_) if absolute == scan.region_start => at,
            Some(_) if at >= 2 && self.pending[at - 2] == b'\r' => at - 2,
            Some(_) => at - 1,
            None => 0,
        };
        let bytes: Vec<u8> = self.pending.drain(..next).collect();
        self.emit_original(self.pending_start + from, &bytes[from..], out);
        self.pending_start += next;
        if !closes {
            self.state = State::Header(HeaderKind::Part);
            return Step::Progress;
        }
        self.boundaries.pop();
        self.owners.pop();
        self.state = if self.boundaries.is_empty() {
            State::Trailer
        } else {
            State::Scan(Scan {
                region_start: self.pending_start,
                region_at_line_start: false,
                strip: None,
                preamble: false,
                nested: false,
                qp_seen: None,
            })
        };
        Step::Progress
    }

    fn hold(&mut self) {
        self.state = State::Hold;
        self.pending = Vec::new();
    }

    fn emit_original(&mut self, start: usize, bytes: &[u8], out: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        out.extend_from_slice(bytes);
        let end = start + bytes.len();
        match self.emitted.last_mut() {
            Some(Segment::Original { end: last, .. }) if *last == start => *last = end,
            _ => self.emitted.push(Segment::Original { start, end }),
        }
    }

    fn emit_new(&mut self, bytes: Vec<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(&bytes);
        self.emitted.push(Segment::New(bytes));
    }
}

/// How the streaming walk treats a part, from its header fields.
enum Shape {
    /// Contents passed or replaced as one piece.
    Leaf,
    /// A multipart with this boundary.
    Multipart(Vec<u8>),
    /// A message/rfc822 (or message/global) that mail-parser parses in place.
    Message,
}

/// The shape of a part, or `None` when the streaming walk does not follow it (nested
/// messages, digests, missing boundaries, unusual spelling of the type).
fn shape_of(part: &MessagePart<'_>) -> Option<Shape> {
    let Some(content_type) = part.content_type() else {
        return Some(Shape::Leaf);
    };
    let ctype = content_type.ctype();
    let subtype = content_type.subtype().unwrap_or("");
    if ctype.eq_ignore_ascii_case("message") {
        let nested = ["rfc822", "global"]
            .iter()
            .any(|s| subtype.eq_ignore_ascii_case(s));
        if !nested {
            return Some(Shape::Leaf);
        }
        // Exactly as mail-parser spells it, without a transfer encoding: parsed in place.
        let exact = ctype == "message" && (subtype == "rfc822" || subtype == "global");
        let in_place = plain_transfer_encoding(part)
            && part
                .content_transfer_encoding()
                .is_none_or(|e| !e.trim().eq_ignore_ascii_case("base64"));
        return (exact && in_place).then_some(Shape::Message);
    }
    if !ctype.eq_ignore_ascii_case("multipart") {
        return Some(Shape::Leaf);
    }
    if ctype != "multipart" || subtype.eq_ignore_ascii_case("digest") {
        return None;
    }
    match content_type.attribute("boundary") {
        Some(boundary) if !boundary.is_empty() => {
            Some(Shape::Multipart(boundary.as_bytes().to_vec()))
        }
        _ => None,
    }
}

/// Parses a complete header block (ending with its blank line) with mail-parser, and checks
/// that mail-parser ends the block exactly where the streaming walk does.
fn parsed_block(block: &[u8]) -> Option<walk::Parsed<'_>> {
    let parsed = walk::parse(block).ok()?;
    let root = parsed.parts.first()?;
    if root.offset_header != 0 || root.offset_body as usize != block.len() {
        return None;
    }
    if !root.is_encoding_problem {
        return Some(parsed);
    }
    // Flagged either because a field value ran into the blank line (mail-parser then saw no
    // end of the block), or because a message/rfc822 block has no nested message yet. A
    // nested header after the block tells them apart: only in the second case does the
    // block still end here, now without the flag.
    let mut probe = block.to_vec();
    probe.extend_from_slice(b"X-Probe: 1\r\n\r\n");
    let probed = walk::parse(&probe).ok()?;
    let root = probed.parts.first()?;
    let ends_here = root.offset_header == 0
        && root.offset_body as usize == block.len()
        && !root.is_encoding_problem;
    ends_here.then_some(parsed)
}

/// Whether mail-parser reads the body as is or as base64 (no transfer encoding field, or
/// 7bit, 8bit, binary or base64); anything else may be quoted-printable.
fn plain_transfer_encoding(part: &MessagePart<'_>) -> bool {
    let declared = part
        .headers()
        .iter()
        .any(|h| h.name == HeaderName::ContentTransferEncoding);
    match part.content_transfer_encoding() {
        None => !declared,
        Some(encoding) => ["7bit", "8bit", "binary", "base64"]
            .iter()
            .any(|e| encoding.trim().eq_ignore_ascii_case(e)),
    }
}

fn strip_text(rules: &Rules, decision: &Decision) -> String {
    let name = decision.filename.as_deref().unwrap_or("(none)");
    fill(rules, name, &decision.reason)
}

fn is_blank_line(block: &[u8]) -> bool {
    block == b"\n" || block == b"\r\n"
}
