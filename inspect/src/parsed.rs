//! mail-parser glue: parsing a message or a header block once, panic-proof, with the
//! parser configuration this crate uses.
//!
//! MIME *structure* does not come from here (see `structure`): mail-parser finds
//! `--boundary` anywhere in a line, which a strict client does not. It stays for what it
//! is good at: header fields (RFC 2047 encoded words, RFC 2231 parameters, Subject text)
//! for header rules, tagging and the replacement message. No I/O here.

use std::panic::{self, AssertUnwindSafe};
use std::sync::LazyLock;

use mail_parser::{HeaderName, Message, MessageParser, PartType};

/// Why mail-parser gave nothing back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseFailure {
    /// No header field at all.
    NoHeaders,
    /// mail-parser panicked on these bytes.
    Panicked,
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
pub(crate) fn parse(raw: &[u8]) -> Result<Parsed<'_>, ParseFailure> {
    let parser = parser();
    match panic::catch_unwind(AssertUnwindSafe(|| parser.parse(raw))) {
        Ok(Some(message)) => Ok(Parsed(message)),
        Ok(None) => Err(ParseFailure::NoHeaders),
        Err(_) => Err(ParseFailure::Panicked),
    }
}

/// Parses only the header block of `raw` (enough for the deny replacement).
pub(crate) fn parse_headers(raw: &[u8]) -> Option<Parsed<'_>> {
    let parser = parser();
    let parsed = panic::catch_unwind(AssertUnwindSafe(|| parser.parse_headers(raw)));
    parsed.ok().flatten().map(Parsed)
}

/// Built once: a parser is a table of field parsers, and building it for every header
/// block cost as much as parsing a small message's fields (issue 16).
fn parser() -> &'static MessageParser {
    static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
        MessageParser::new()
            .with_mime_headers()
            .header_text(HeaderName::Subject)
            .default_header_raw()
    });
    &PARSER
}
