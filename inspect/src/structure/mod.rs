//! MIME structure from a strict, line-based RFC 2046 reader, and the other readings a mail
//! client could take of the same bytes (SPEC §4, "Inspection must see what the client will
//! see").
//!
//! [`read`] splits a message under one [`Reading`]:
//! * [`Split::Strict`]: a delimiter is `--boundary` at the start of a line (after LF),
//!   followed by optional blanks and a line break, or by `--` (close). An enclosing
//!   multipart's delimiter ends an inner part (Python's `email` does the same).
//! * [`Split::Universal`]: as strict, but a bare CR also ends a line (Python's universal
//!   newlines).
//! * [`Split::Lenient`]: mail-parser's way: `--boundary` anywhere in a line is a delimiter
//!   of the innermost multipart, whatever follows; an inner multipart runs to its own close
//!   delimiter, past enclosing boundaries.
//!
//! and [`FieldChoice`] decides which of repeated `Content-*` fields counts. The strict,
//! first-field reading reports every [`Ambiguity`] it meets; only then are the other
//! readings judged too (`inspection.rs`). A missing final boundary or a missing epilogue is
//! normal mail, not damage. Parts are listed in document order with the byte range `strip`
//! replaces (see `walk::Target`). No I/O here.

mod header;
mod split;

use std::fmt;

pub(crate) use header::EntityHeader;
pub(crate) use split::{has_stray_line, read, HeaderCache};

use crate::carrier::TnefError;

/// How a reader splits lines and multiparts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// RFC 2046: delimiters at a line start (after LF), rest of the line blank.
    Strict,
    /// As strict, with a bare CR ending a line too.
    Universal,
    /// `--boundary` anywhere in a line (mail-parser 0.11).
    Lenient,
}

/// Which of repeated `Content-Type` / `Content-Disposition` / `Content-Transfer-Encoding`
/// fields (and repeated `boundary` parameters) a reader takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldChoice {
    /// The first one.
    First,
    /// The last one.
    Last,
}

/// Where a reader ends a header block that holds a line which is no field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrayLine {
    /// At that line: the body starts there (Python's `email`, whose field names are
    /// printable ASCII).
    EndsHeader,
    /// At the first line without a colon: any line with one is a field, whatever its name
    /// holds (a plain line reader that still starts the body at a line that is no field).
    EndsHeaderWithoutColon,
    /// At the blank line: the line is skipped or taken as a field (a plain line reader,
    /// mail-parser). The lenient split always reads so.
    Skipped,
}

/// Which lines of a header block a reader takes for its `Content-Type` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldNames {
    /// mail-parser's: it also reads names a line reader does not (fuzz finding:
    /// `Con\rtent-Type:` counted as a Content-Type field ahead of the real one).
    Parser,
    /// A line reader's: the text before the colon is `Content-Type`, blanks aside.
    Line,
}

/// One way of reading a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// How lines and multiparts are split.
    pub split: Split,
    /// Which repeated field counts.
    pub fields: FieldChoice,
    /// Where a header with a stray line ends.
    pub stray: StrayLine,
    /// Which lines are Content-Type fields.
    pub names: FieldNames,
}

impl Reading {
    /// The reading popgate takes first: strict split, first field wins.
    pub(crate) const STRICT: Reading = Reading {
        split: Split::Strict,
        fields: FieldChoice::First,
        stray: StrayLine::EndsHeader,
        names: FieldNames::Parser,
    };

    /// The other readings judged when the strict one met an ambiguity.
    pub(crate) const OTHERS: [Reading; 10] = [
        Reading {
            split: Split::Strict,
            fields: FieldChoice::Last,
            stray: StrayLine::EndsHeader,
            names: FieldNames::Parser,
        },
        Reading {
            split: Split::Universal,
            fields: FieldChoice::First,
            stray: StrayLine::EndsHeader,
            names: FieldNames::Parser,
        },
        Reading {
            split: Split::Universal,
            fields: FieldChoice::Last,
            stray: StrayLine::EndsHeader,
            names: FieldNames::Parser,
        },
        Reading {
            split: Split::Lenient,
            fields: FieldChoice::First,
            stray: StrayLine::Skipped,
            names: FieldNames::Parser,
        },
        Reading {
            split: Split::Lenient,
            fields: FieldChoice::Last,
            stray: StrayLine::Skipped,
            names: FieldNames::Parser,
        },
        // A plain line reader: strict split, but a stray header line does not end the
        // header (fuzz finding: the strict and the lenient reading each missed a part it
        // sees).
        Reading {
            split: Split::Strict,
            fields: FieldChoice::First,
            stray: StrayLine::Skipped,
            names: FieldNames::Parser,
        },
        // A plain line reader that takes `Cont\xff~ent-Type: x` for a field and starts
        // the body at the next line without a colon (fuzz finding: Python starts it at the
        // first, mail-parser reads on to the blank line, and both missed a uuencoded file
        // after it).
        Reading {
            split: Split::Strict,
            fields: FieldChoice::First,
            stray: StrayLine::EndsHeaderWithoutColon,
            names: FieldNames::Parser,
        },
        // Line readers that know a Content-Type field only by its exact name, first or last
        // wins (fuzz finding: mail-parser read `Con\rtent-Type:` as the first Content-Type,
        // a line reader took the next one, a multipart holding a TNEF file).
        Reading {
            split: Split::Strict,
            fields: FieldChoice::First,
            stray: StrayLine::EndsHeaderWithoutColon,
            names: FieldNames::Line,
        },
        Reading {
            split: Split::Strict,
            fields: FieldChoice::First,
            stray: StrayLine::Skipped,
            names: FieldNames::Line,
        },
        Reading {
            split: Split::Strict,
            fields: FieldChoice::Last,
            stray: StrayLine::Skipped,
            names: FieldNames::Line,
        },
    ];
}

/// Something two real readers could read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ambiguity {
    /// `--boundary` inside a line.
    MidLineDelimiter,
    /// `--boundary` at a line start but followed by other text on the line.
    BoundaryWithText,
    /// A bare CR next to a delimiter or in a header block.
    BareCr,
    /// An inner multipart without its close delimiter, ended by an enclosing delimiter.
    UnclosedInnerMultipart,
    /// A header block line that is no field: the body starts there for some readers.
    StrayHeaderLine,
    /// A boundary that is a prefix of another open one (or the other way round).
    BoundaryPrefix,
    /// A close delimiter before the first part.
    CloseInPreamble,
    /// Two fields of this name in one entity whose first and last values disagree.
    DuplicateField(&'static str),
    /// The `boundary` parameter repeated with different values.
    RepeatedBoundary,
    /// A Content-Type field mail-parser reads and a line reader does not, or the other
    /// way round.
    UnclearFieldName,
}

impl fmt::Display for Ambiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ambiguity::MidLineDelimiter => f.write_str("a boundary delimiter inside a line"),
            Ambiguity::BoundaryWithText => {
                f.write_str("a boundary delimiter followed by other text on its line")
            }
            Ambiguity::BareCr => f.write_str("a bare CR as a line break"),
            Ambiguity::UnclosedInnerMultipart => {
                f.write_str("an inner multipart without its close delimiter")
            }
            Ambiguity::StrayHeaderLine => f.write_str("a header line that is no field"),
            Ambiguity::BoundaryPrefix => {
                f.write_str("a boundary that is a prefix of another open boundary")
            }
            Ambiguity::CloseInPreamble => f.write_str("a close delimiter before the first part"),
            Ambiguity::DuplicateField(name) => {
                write!(f, "two {name} fields that disagree in one entity")
            }
            Ambiguity::UnclearFieldName => {
                f.write_str("a Content-Type field only some readers recognise")
            }
            Ambiguity::RepeatedBoundary => {
                f.write_str("a boundary parameter repeated with different values")
            }
        }
    }
}

/// The byte range `strip` replaces for a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// One MIME entity as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// Lowercase `type/subtype`.
    pub content_type: String,
    /// Every file name the entity declares or carries, normalised (see `names.rs`).
    pub file_names: Vec<String>,
    /// A multipart or a nested message: its contents are parts of their own.
    pub is_container: bool,
    /// What `strip` replaces for this part.
    pub target: Target,
}

/// Why a message counts as unparseable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// No bytes at all.
    NoHeaders,
    /// The first bytes are not header fields (no `name:` line).
    NotAMessage,
    /// Nested deeper than [`split::MAX_DEPTH`].
    TooDeep,
    /// More entities than [`split::MAX_ENTITIES`].
    TooManyParts,
    /// A multipart without a boundary parameter.
    MultipartWithoutBoundary,
    /// A boundary readers take differently: white space at its start or in a run, control
    /// characters, an encoded word.
    UnclearBoundary,
    /// A TNEF attachment whose contents cannot be listed.
    Tnef(TnefError),
    /// A base64 body with bytes outside the alphabet: readers decode it differently (or
    /// not at all), so no scanner sees what the client will.
    BadBase64 {
        /// Lowercase `type/subtype` of the part.
        content_type: String,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::NoHeaders => f.write_str("message is empty"),
            Damage::NotAMessage => f.write_str("message does not start with header fields"),
            Damage::TooDeep => f.write_str("MIME structure is nested too deep"),
            Damage::TooManyParts => f.write_str("message has too many MIME parts"),
            Damage::MultipartWithoutBoundary => f.write_str("a multipart has no boundary"),
            Damage::UnclearBoundary => {
                f.write_str("a multipart boundary has white space or control characters that readers treat differently")
            }
            Damage::Tnef(error) => write!(f, "a TNEF attachment cannot be read: {error}"),
            Damage::BadBase64 { content_type } => {
                write!(
                    f,
                    "a part of type {content_type} is truncated or badly encoded"
                )
            }
        }
    }
}

/// A message as one reading sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Structure {
    /// Every entity in document order, nested messages included.
    pub parts: Vec<Part>,
    /// The first sign of damage, if any.
    pub damage: Option<Damage>,
    /// What another reader could read differently (reported by the strict readings).
    pub ambiguity: Vec<Ambiguity>,
}
