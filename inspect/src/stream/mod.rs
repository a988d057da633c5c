//! Streaming inspection: forward a message to the client while it arrives.
//!
//! [`StreamInspector`] gives the same bytes and verdict as [`crate::inspect`] for rule sets in
//! which no part or header verdict can need the whole message (only `allow`/`strip` for
//! parts, `allow`/`tag` for header rules, no antivirus). It holds back only what is not
//! decided yet: the top-level header block (a `tag` rewrites the Subject), each part's header
//! block (its content type and file names decide a `strip`), and the few bytes at the end of
//! a chunk that might start a boundary delimiter. A stripped part's replacement is emitted as
//! soon as its header block is complete, and its body is skipped up to the next delimiter.
//!
//! The walk follows the strict reader of `structure` on a deliberately small subset: a
//! delimiter is `--boundary` at a line start followed by a line break, or `--` and a line
//! break. Anything outside the subset switches to *hold*: nothing more is emitted and
//! [`StreamInspector::finish`] runs the batch [`crate::inspect`] on the whole message,
//! emitting what follows the bytes already sent, or reports [`Diverged`] when those bytes are
//! not a prefix of the batch output. That covers every ambiguity the batch judges under
//! several readings (a `--boundary` not at a line start or followed by anything else,
//! another open multipart's boundary inside a part, repeated `Content-*` fields that
//! disagree, boundaries that prefix each other, a close delimiter before the first part),
//! carriers (a TNEF part, a `begin` line or uuencoded file in a text part), damage when
//! `unparseable` is not `allow` (a header that is no header, a base64 body with foreign
//! bytes), a stripped container, deeper or transfer-encoded nested messages,
//! multipart/digest, huge header blocks, deep nesting, and an unfinished structure at the
//! end. A message/rfc822 part without transfer encoding, one level deep, is followed in
//! place: its nested header is held with the part's header, and its single part or
//! multipart ends at the enclosing boundary.
//!
//! No I/O and no clock here; the caller reads the server, unstuffs, restuffs and writes.

use std::sync::Arc;

use memchr::memmem;

use begin_line::BeginLine;

use crate::carrier;
use crate::decode::TransferEncoding;
use crate::inspection::{self, fill, part_decision, Output, Tally};
use crate::parsed;
use crate::rewrite::{self, eol_of, replacement_part, Plan};
use crate::rules::Rules;
use crate::structure::{
    has_stray_line, Damage, EntityHeader, FieldChoice, FieldNames, Part, Target,
};
use crate::verdict::Decision;
use popgate_policy::Verdict;

use framing::{find_delimiter, header_block_len, Found};

mod begin_line;
mod framing;
mod rules;

pub use rules::StreamRules;

/// The longest header block (top-level or of one part) held before giving up streaming.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// The deepest multipart nesting followed while streaming.
const MAX_DEPTH: usize = 32;

/// The most closed multiparts whose boundaries the stream watches for; past it the batch
/// walk decides. Every step looks for each of them in its pending bytes, so without a
/// bound a message of many small multiparts costs time quadratic in its size (a 3.5 MB
/// message of 16,000 took minutes).
const MAX_CLOSED: usize = 64;

/// What a streamed message came to (the same as [`crate::Inspection`] without the output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutcome {
    /// The strongest verdict that applied.
    pub verdict: Verdict,
    /// The rule that decided, e.g. `file_names: *.exe`, or `none`.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
    /// Why readers could split the message differently, when the batch result decided an
    /// ambiguous message (see [`crate::Inspection::ambiguity`]).
    pub ambiguity: Option<String>,
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
    rules: Arc<Rules>,
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
    /// The delimiters (`--boundary`) of the multiparts that closed, at most [`MAX_CLOSED`]:
    /// the batch walk still notes them inside a line after their close (an epilogue), so
    /// the stream holds on them there.
    closed: Vec<Vec<u8>>,
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
    /// Why the message is unparseable (`unparseable: allow` lets it pass; the outcome names
    /// the rule, as the batch result does).
    damaged: Option<String>,
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
    /// For a text part: its transfer encoding and body so far. A uuencoded file in it is a
    /// carrier (see `carrier`); found at the part's end, it makes the inspector hold.
    text: Option<(TransferEncoding, Vec<u8>)>,
    /// For a base64 body, its content type: bytes outside the alphabet make the message
    /// unparseable (as in the batch walk).
    base64: Option<String>,
    /// The line break that ends the part's header block: when a stripped part's body is
    /// empty it belongs to the delimiter, which follows the replacement.
    block_eol: &'static [u8],
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
    /// message (see [`StreamRules::new`]). A caller that inspects many messages under the
    /// same rules builds the [`StreamRules`] once instead.
    pub fn new(rules: &Rules, scanning: bool, quarantine_id: &str) -> Option<StreamInspector> {
        StreamRules::new(rules, scanning).map(|rules| rules.inspector(quarantine_id))
    }

    /// Feeds the next bytes of the unstuffed message (any chunk size) and appends to `out`
    /// the bytes that may be sent to the client now.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.consumed += data.len();
        match self.state {
            State::Hold | State::Swallow => return,
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
        if whole.len() == self.consumed && self.decided_at_end() {
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
        if self.decided_at_end() {
            let pending = std::mem::take(&mut self.pending);
            self.emit_original(self.pending_start, &pending, out);
            return Ok(self.outcome());
        }
        Err(self)
    }

    /// Whether the stream decided the message itself: it ended after its structure did, or
    /// it is a single part whose last bytes (still pending) carry no file.
    fn decided_at_end(&mut self) -> bool {
        match &mut self.state {
            State::Trailer => true,
            State::Scan(scan) if self.boundaries.is_empty() => {
                note_base64(&mut scan.base64, &self.pending, &mut self.damaged);
                let mut text = scan.text.take();
                let clean = collect_text(&mut text, &self.pending)
                    && !text.is_some_and(|(encoding, body)| carries_files(encoding, &body));
                clean && !self.damage_decides()
            }
            _ => false,
        }
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
            ambiguity: batch.ambiguity,
        })
    }

    fn outcome(mut self) -> StreamOutcome {
        // Document order, as the batch walk meets the parts.
        for (_, decision) in std::mem::take(&mut self.decisions) {
            self.tally.record(decision);
        }
        if let Some(reason) = self.damaged.take() {
            if self.tally.strongest.verdict == Verdict::Allow {
                self.tally.strongest.rule = "unparseable".to_owned();
                self.tally.strongest.reason = reason;
            }
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
            ambiguity: None,
        }
    }

    fn step(&mut self, out: &mut Vec<u8>) -> Step {
        match self.state {
            State::Header(_) => self.header_step(out),
            State::Scan(_) => self.scan_step(out),
            State::Trailer => {
                if self.closed_boundary_in_pending() {
                    self.hold();
                    return Step::Progress;
                }
                // Keep what a closed delimiter split across chunks could need.
                let keep = self.closed.iter().map(|d| d.len() - 1).max().unwrap_or(1);
                let emit = self.pending.len().saturating_sub(keep);
                if emit > 0 {
                    let bytes: Vec<u8> = self.pending.drain(..emit).collect();
                    self.emit_original(self.pending_start, &bytes, out);
                    self.pending_start += emit;
                }
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
        let header = EntityHeader::analyse(block);
        if !header.has_fields {
            return None;
        }
        let (shape, part, body) = describe_analysed(block, header)?;
        if matches!(shape, Shape::Message) {
            // A top-level message/rfc822 is rare; the batch walk reads it.
            return None;
        }
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
            // A single-part message: its body is checked as it passes (base64, carriers).
            Shape::Leaf => {
                self.state = State::Scan(Scan {
                    region_start: block.len(),
                    region_at_line_start: true,
                    strip: None,
                    preamble: false,
                    nested: false,
                    text: body.text.then(|| (body.encoding, Vec::new())),
                    base64: (body.encoding == TransferEncoding::Base64)
                        .then(|| body.content_type.clone()),
                    block_eol: b"",
                })
            }
            Shape::Multipart(boundary) => self.open(boundary, block.len(), 0)?,
            Shape::Message => return None, // held above
        }
        Some(())
    }

    /// Decides the header block of a part inside a multipart; `None` means hold.
    fn decide_part(&mut self, start: usize, block: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let owner = self.owners.last().copied().unwrap_or(0);
        let (shape, part, body) = if is_blank_line(block) {
            let part = Part {
                content_type: "text/plain".to_owned(),
                file_names: Vec::new(),
                is_container: false,
                target: Target::Root,
            };
            let body = Body {
                encoding: TransferEncoding::Identity,
                content_type: "text/plain".to_owned(),
                text: true,
            };
            (Shape::Leaf, part, body)
        } else {
            // A delimiter inside the block, at a line start or not: hold (see
            // `has_delimiter`).
            if self.boundaries.iter().any(|b| has_delimiter(block, b)) {
                return None;
            }
            parsed_block(block)?;
            describe(block)?
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
                self.leaf(owner, start, block, decision, body, false, out);
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
        if self.boundaries.iter().any(|b| has_delimiter(block, b)) {
            return None;
        }
        parsed_block(block)?;
        let (shape, part, body) = describe(block)?;
        let decision = part_decision(&self.rules, &part);
        self.nested_messages += 1;
        let owner = self.nested_messages;
        match shape {
            Shape::Leaf => {
                if decision.is_none() {
                    self.emit_original(outer, outer_block, out);
                }
                self.leaf(owner, outer, block, decision, body, true, out);
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
        body: Body,
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
            text: (body.text && strip.is_none()).then(|| (body.encoding, Vec::new())),
            base64: (body.encoding == TransferEncoding::Base64).then(|| body.content_type.clone()),
            block_eol: if block.ends_with(b"\r\n") {
                b"\r\n"
            } else {
                b"\n"
            },
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
            text: None,
            base64: None,
            block_eol: b"",
        });
        Some(())
    }

    /// Looks for the innermost boundary in `pending`, emitting or skipping what precedes it.
    fn scan_step(&mut self, out: &mut Vec<u8>) -> Step {
        let State::Scan(scan) = &self.state else {
            return Step::Wait;
        };
        let skipping = scan.strip.is_some();
        if self.closed_boundary_in_pending() {
            self.hold();
            return Step::Progress;
        }
        let longest = self
            .boundaries
            .iter()
            .map(Vec::len)
            .chain(self.closed.iter().map(|d| d.len() - 2))
            .max()
            .unwrap_or(0);
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
                    // Taken out rather than drained into a copy: this runs for every chunk.
                    let mut pending = std::mem::take(&mut self.pending);
                    let bytes = &pending[..drain];
                    let mut hold = false;
                    if let State::Scan(scan) = &mut self.state {
                        note_base64(&mut scan.base64, bytes, &mut self.damaged);
                        hold = !collect_text(&mut scan.text, bytes);
                    }
                    if hold || self.damage_decides() {
                        self.hold();
                        return Step::Progress;
                    }
                    if !skipping {
                        self.emit_original(self.pending_start, bytes, out);
                    }
                    pending.drain(..drain);
                    self.pending = pending;
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
        let mut base64 = scan.base64.clone();
        note_base64(&mut base64, &self.pending[..at], &mut self.damaged);
        let mut text = scan.text.clone();
        let carries = !collect_text(&mut text, &self.pending[..at])
            || text.is_some_and(|(encoding, body)| carries_files(encoding, &body));
        // A nested message's part ends differently when the delimiter opens its body.
        let nested_edge = scan.nested && absolute == scan.region_start;
        if !at_line_start || carries || nested_edge || self.damage_decides() {
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
            // A close delimiter counts only with a line break after it (the strict reader's
            // rule); at the very end of the message the batch walk decides.
            (Some(b'-'), Some(b'-')) if !scan.preamble => {
                match (self.pending.get(after + 2), self.pending.get(after + 3)) {
                    (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => (after + 2, true),
                    (None, _) | (Some(b'\r'), None) => {
                        self.state = State::Scan(scan);
                        return Step::Wait;
                    }
                    _ => {
                        self.hold();
                        return Step::Progress;
                    }
                }
            }
            _ => {
                self.hold();
                return Step::Progress;
            }
        };
        let from = match scan.strip {
            // The part ends before the line break that precedes the delimiter (RFC 2046);
            // when the delimiter opens the body, that is the header block's last one.
            Some(_) if absolute == scan.region_start => {
                self.emit_new(scan.block_eol.to_vec(), out);
                at
            }
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
        if let Some(boundary) = self.boundaries.pop() {
            if self.closed.len() >= MAX_CLOSED {
                self.hold();
                return Step::Progress;
            }
            self.closed.push([b"--", &boundary[..]].concat());
        }
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
                text: None,
                base64: None,
                block_eol: b"",
            })
        };
        Step::Progress
    }

    /// Whether the delimiter of a closed multipart occurs in `pending`.
    fn closed_boundary_in_pending(&self) -> bool {
        self.closed
            .iter()
            .any(|delimiter| memmem::find(&self.pending, delimiter).is_some())
    }

    /// Whether damage was seen and `unparseable` is not `allow`: the batch result decides
    /// (the caller ends the session if bytes already went out; the retry is judged whole).
    fn damage_decides(&self) -> bool {
        self.damaged.is_some() && self.rules.unparseable != Verdict::Allow
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

/// What the streaming walk makes of a part's header block, or `None` when it does not
/// follow it: repeated fields that disagree (the batch walk judges every reading), a TNEF
/// carrier, a digest, a multipart without boundary, a transfer-encoded nested message.
/// The third value is the body's transfer encoding and whether the part is text (its body
/// may carry uuencoded files).
fn describe(block: &[u8]) -> Option<(Shape, Part, Body)> {
    describe_analysed(block, EntityHeader::analyse(block))
}

/// [`describe`] with the block's header already analysed (one mail-parser pass, not two).
fn describe_analysed(block: &[u8], header: EntityHeader) -> Option<(Shape, Part, Body)> {
    // A bare CR ends a line for some readers: the batch walk judges both readings.
    let bare_cr = memchr::memchr_iter(b'\r', block).any(|i| block.get(i + 1) != Some(&b'\n'));
    if bare_cr || !header.ambiguity.is_empty() || has_stray_line(block) {
        return None;
    }
    let view = header.view(FieldChoice::First, FieldNames::Parser, "text/plain");
    if header.declares_tnef || carrier::is_tnef(&view.content_type, &header.names) {
        return None;
    }
    let identity = view.encoding == TransferEncoding::Identity;
    let shape = match view.content_type.as_str() {
        "multipart/digest" => return None,
        mime if mime.starts_with("multipart/") => {
            if header.unclear_boundary {
                return None;
            }
            Shape::Multipart(view.boundary.clone()?.into_bytes())
        }
        "message/rfc822" | "message/global" if identity => Shape::Message,
        "message/rfc822" | "message/global" => return None,
        _ => Shape::Leaf,
    };
    let body = Body {
        encoding: view.encoding,
        content_type: view.content_type.clone(),
        text: matches!(shape, Shape::Leaf) && carrier::may_hold_uuencode(&view.content_type),
    };
    let part = Part {
        is_container: !matches!(shape, Shape::Leaf),
        content_type: view.content_type,
        file_names: header.names,
        target: Target::Root,
    };
    Some((shape, part, body))
}

/// How a leaf's body is checked while it passes.
#[derive(Debug, Clone)]
struct Body {
    encoding: TransferEncoding,
    content_type: String,
    /// A text part: uuencoded files in it are carriers.
    text: bool,
}

/// Whether `--boundary` occurs anywhere in `block`. At a line start the strict reader ends
/// the part there, which a header block scan cannot see; inside a line it is an ambiguity
/// the batch judges in mail-parser's reading too (`X:--boundary` in a part's header).
fn has_delimiter(block: &[u8], boundary: &[u8]) -> bool {
    let mut needle = b"--".to_vec();
    needle.extend_from_slice(boundary);
    memmem::find(block, &needle).is_some()
}

/// Notes a base64 body with bytes outside the alphabet (once per part).
fn note_base64(content_type: &mut Option<String>, bytes: &[u8], damaged: &mut Option<String>) {
    if content_type.is_some() && !crate::decode::is_clean_base64(bytes) {
        if let Some(content_type) = content_type.take() {
            let damage = Damage::BadBase64 { content_type };
            damaged.get_or_insert_with(|| damage.to_string());
        }
    }
}

/// The most body bytes of a transfer-encoded text part kept for the carrier check.
const MAX_TEXT: usize = 4 * 1024 * 1024;

/// Adds `bytes` of a text part's body to `text`; `false` means hold: a line starting with
/// `begin` after nothing but white space (a possible uuencoded file), or an encoded body
/// too large to keep.
fn collect_text(text: &mut Option<(TransferEncoding, Vec<u8>)>, bytes: &[u8]) -> bool {
    let Some((encoding, kept)) = text else {
        return true;
    };
    if *encoding != TransferEncoding::Identity {
        kept.extend_from_slice(bytes);
        return kept.len() <= MAX_TEXT;
    }
    // Identity: the two bytes of `BeginLine` carry across chunks.
    let mut line = BeginLine::from_bytes(kept);
    let found = line.feed(bytes);
    kept.clear();
    kept.extend_from_slice(&line.to_bytes());
    !found
}

/// Whether a transfer-encoded text body carries a uuencoded file.
fn carries_files(encoding: TransferEncoding, body: &[u8]) -> bool {
    encoding != TransferEncoding::Identity
        && !carrier::uuencode_names(&encoding.decode(body)).is_empty()
}

/// Parses a complete header block (ending with its blank line) with mail-parser, and checks
/// that mail-parser ends the block exactly where the streaming walk does.
fn parsed_block(block: &[u8]) -> Option<parsed::Parsed<'_>> {
    let parsed = parsed::parse(block).ok()?;
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
    let probed = parsed::parse(&probe).ok()?;
    let root = probed.parts.first()?;
    let ends_here = root.offset_header == 0
        && root.offset_body as usize == block.len()
        && !root.is_encoding_problem;
    ends_here.then_some(parsed)
}

fn strip_text(rules: &Rules, decision: &Decision) -> String {
    let name = decision.filename.as_deref().unwrap_or("(none)");
    fill(rules, name, &decision.reason)
}

fn is_blank_line(block: &[u8]) -> bool {
    block == b"\n" || block == b"\r\n"
}
