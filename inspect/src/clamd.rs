//! The clamd `INSTREAM` wire format, sans I/O.
//!
//! The `proxy` crate opens the clamd socket (`unix:` or `tcp:`), writes the pieces of
//! [`instream_request`] in order, reads until clamd closes the connection or sends `\0`, and
//! hands the bytes to [`parse_reply`]. Timeouts and connection failures are the caller's:
//! it reports them as [`ScanResult::Failed`] with the matching [`ScanError`].
//!
//! Request (clamd(8), "INSTREAM"): `zINSTREAM\0`, then chunks each preceded by its length
//! as a 4-byte big-endian unsigned integer, then a zero length. With the `z` prefix the
//! reply ends in `\0`: `stream: OK`, `stream: <name> FOUND`, or `<text> ERROR` (for example
//! `INSTREAM size limit exceeded. ERROR`).

use thiserror::Error;

/// The command that starts a scan of streamed data (null-terminated form).
pub const INSTREAM_COMMAND: &[u8] = b"zINSTREAM\0";

/// A chunk size that suits clamd's defaults (`StreamMaxLength` is checked per stream).
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;

/// The antivirus outcome for one message, as [`crate::inspect`] consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanResult {
    /// No virus found.
    Clean,
    /// A virus was found; the signature name as clamd reported it.
    Virus(String),
    /// No answer could be had; `antivirus.on_error` decides.
    Failed(ScanError),
}

/// Why a scan gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanError {
    /// clamd refused the stream as larger than its `StreamMaxLength`.
    #[error("message exceeds the scanner's stream size limit")]
    SizeLimitExceeded,
    /// clamd answered with an error line.
    #[error("scanner error: {0}")]
    Reported(String),
    /// The reply was empty or not in clamd's format.
    #[error("scanner reply not understood")]
    Malformed,
    /// The scanner could not be reached (the caller's connect failed).
    #[error("scanner unreachable: {0}")]
    Unreachable(std::io::ErrorKind),
    /// The scanner did not answer within `antivirus.timeout_s`.
    #[error("scanner timed out")]
    TimedOut,
}

/// One piece of an `INSTREAM` request; write `piece.as_ref()` for each, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// `zINSTREAM\0`.
    Command,
    /// A chunk length, or the final zero length.
    Length([u8; 4]),
    /// A chunk of the message.
    Chunk(&'a [u8]),
}

impl AsRef<[u8]> for Piece<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Piece::Command => INSTREAM_COMMAND,
            Piece::Length(bytes) => bytes,
            Piece::Chunk(chunk) => chunk,
        }
    }
}

/// The pieces of an `INSTREAM` request for `message`, without copying it.
///
/// `chunk_size` is clamped to `1..=u32::MAX`. An empty message is sent as the command and
/// the terminating zero length alone.
pub fn instream_request(message: &[u8], chunk_size: usize) -> impl Iterator<Item = Piece<'_>> {
    let chunk_size = chunk_size.clamp(1, u32::MAX as usize);
    let chunks = message.chunks(chunk_size).flat_map(|chunk| {
        // `chunk.len() <= chunk_size <= u32::MAX` by the clamp above.
        let length = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        [Piece::Length(length.to_be_bytes()), Piece::Chunk(chunk)]
    });
    std::iter::once(Piece::Command)
        .chain(chunks)
        .chain(std::iter::once(Piece::Length([0; 4])))
}

/// The whole `INSTREAM` request in one buffer (copies the message; prefer
/// [`instream_request`] for large messages).
pub fn instream_bytes(message: &[u8], chunk_size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / chunk_size.max(1) * 4 + 20);
    for piece in instream_request(message, chunk_size) {
        out.extend_from_slice(piece.as_ref());
    }
    out
}

/// Interprets clamd's reply to `INSTREAM`.
///
/// Accepts the reply with or without its terminating `\0` or newline, and with an
/// `IDSESSION` request-number prefix (`3: stream: OK`). Anything else is
/// [`ScanError::Malformed`]; this never panics.
pub fn parse_reply(reply: &[u8]) -> ScanResult {
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    let Ok(text) = std::str::from_utf8(&reply[..end]) else {
        return ScanResult::Failed(ScanError::Malformed);
    };
    let text = text.trim();
    let text = strip_session_prefix(text);
    if let Some(error) = text.strip_suffix(" ERROR") {
        let error = error.trim();
        return ScanResult::Failed(if error.starts_with("INSTREAM size limit exceeded") {
            ScanError::SizeLimitExceeded
        } else {
            ScanError::Reported(error.chars().take(200).collect())
        });
    }
    let Some(result) = text.strip_prefix("stream:") else {
        return ScanResult::Failed(ScanError::Malformed);
    };
    let result = result.trim();
    if result == "OK" {
        return ScanResult::Clean;
    }
    match result.strip_suffix(" FOUND").map(str::trim) {
        Some(name) if !name.is_empty() => ScanResult::Virus(name.chars().take(200).collect()),
        _ => ScanResult::Failed(ScanError::Malformed),
    }
}

fn strip_session_prefix(text: &str) -> &str {
    match text.split_once(": ") {
        Some((number, rest))
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frames_chunks_big_endian() {
        let bytes = instream_bytes(b"hello world", 4);
        let mut expected = b"zINSTREAM\0".to_vec();
        for chunk in [&b"hell"[..], b"o wo", b"rld"] {
            expected.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            expected.extend_from_slice(chunk);
        }
        expected.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn empty_message_and_zero_chunk_size() {
        assert_eq!(instream_bytes(b"", 0), b"zINSTREAM\0\0\0\0\0");
        assert_eq!(
            instream_bytes(b"ab", 0),
            b"zINSTREAM\0\0\0\0\x01a\0\0\0\x01b\0\0\0\0"
        );
    }

    #[test]
    fn pieces_borrow_the_message() {
        let message = vec![7u8; 10];
        let chunks: Vec<&[u8]> = instream_request(&message, 8)
            .filter_map(|p| match p {
                Piece::Chunk(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(chunks[0].as_ptr(), message.as_ptr());
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [8, 2]);
    }

    #[test]
    fn replies() {
        let cases: [(&[u8], ScanResult); 9] = [
            (b"stream: OK\0", ScanResult::Clean),
            (b"stream: OK\n", ScanResult::Clean),
            (b"1: stream: OK\0", ScanResult::Clean),
            (
                b"stream: Eicar-Signature FOUND\0",
                ScanResult::Virus("Eicar-Signature".into()),
            ),
            (
                b"stream: Win.Test.EICAR_HDB-1 FOUND\n",
                ScanResult::Virus("Win.Test.EICAR_HDB-1".into()),
            ),
            (
                b"INSTREAM size limit exceeded. ERROR\0",
                ScanResult::Failed(ScanError::SizeLimitExceeded),
            ),
            (
                b"stream: Can't allocate memory ERROR\0",
                ScanResult::Failed(ScanError::Reported("stream: Can't allocate memory".into())),
            ),
            (b"", ScanResult::Failed(ScanError::Malformed)),
            (
                b"\xff\xfe garbage",
                ScanResult::Failed(ScanError::Malformed),
            ),
        ];
        for (reply, expected) in cases {
            assert_eq!(parse_reply(reply), expected, "{reply:?}");
        }
        assert_eq!(
            parse_reply(b"stream:  FOUND"),
            ScanResult::Failed(ScanError::Malformed)
        );
    }
}
