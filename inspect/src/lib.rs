//! MIME inspection for popgate: verdicts, byte-exact rewriting, POP3 dot-stuffing and the
//! clamd wire format.
//!
//! This crate does no I/O (no files, sockets or clock). The `proxy` crate:
//! 1. collects a RETR/TOP response and unstuffs it with [`unstuff_cow`];
//! 2. if antivirus is enabled, streams it to clamd with [`instream_request`] and reads the
//!    reply through [`parse_reply`] (or reports a [`ScanError`] for a timeout or a failed
//!    connect);
//! 3. calls [`inspect`] with the action's [`Rules`];
//! 4. forwards the original bytes on [`Output::Original`], stuffs and sends a
//!    [`Output::Rewritten`] message with [`restuff_into`] (writing the original to
//!    `quarantine/` first for [`Verdict::Quarantine`]), or answers `-ERR [SYS/TEMP]` on
//!    [`Output::Withhold`].
//!
//! For rules where no verdict needs the whole message, [`StreamInspector`] replaces steps 3
//! and 4 while the message arrives: it says which (unstuffed) bytes may be sent already and
//! gives the same bytes and verdict as [`inspect`] in the end, or [`Diverged`] for a
//! malformed message whose early bytes turned out wrong (the caller then ends the session
//! without a terminator, so the message stays on the server).
//!
//! Verdict semantics are in spec §4 ("Verdicts"); the rules' evaluation order is described
//! on [`Rules`] and [`Verdict`]. The rule types (patterns, rule lists, [`Verdict`], the
//! [`DenyMessage`] template) are the `popgate-policy` crate's checked types, re-exported.
//! MIME structure comes from a strict RFC 2046 reader; ambiguous messages are judged under
//! every reading (SPEC §4, "Inspection must see what the client will see").

#![warn(missing_docs)]

mod carrier;
mod clamd;
mod decode;
mod encoding;
mod inspection;
mod names;
mod parameters;
mod parsed;
mod replacement;
mod rewrite;
mod rules;
mod stream;
mod structure;
mod stuffing;
mod verdict;

pub use clamd::{
    instream_bytes, instream_request, parse_reply, Piece, ScanError, ScanResult,
    DEFAULT_CHUNK_SIZE, INSTREAM_COMMAND,
};
pub use inspection::{inspect, Inspection, Output};
pub use popgate_policy::{
    ContentTypePattern, DenyMessage, Glob, HeaderPattern, Oversize, Rule, RuleSet, Verdict,
};
pub use replacement::{deny_replacement, PLACEHOLDER_FROM, SUBJECT_PREFIX};
pub use rules::{AntivirusRules, Rules};
pub use stream::{Diverged, StreamInspector, StreamOutcome, StreamRules};
pub use stuffing::{restuff_into, unstuff, unstuff_cow};
pub use verdict::Decision;
