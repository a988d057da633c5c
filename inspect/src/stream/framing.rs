//! Framing for the streaming inspector: where a header block ends and where the next
//! `--boundary` starts, on bytes as they arrive.
//!
//! Plain byte scans (`memchr` over the buffer) with no per-byte state machine; the
//! inspector in `mod.rs` decides what the findings mean. No I/O here.

/// The length of the header block at the start of `bytes` including its blank line (up to
/// the first empty line, `\n` or `\r\n` alone), or where to resume looking once more bytes
/// arrived (`from` is a previous resume point; 0 at first).
pub(super) fn header_block_len(bytes: &[u8], from: usize) -> Result<usize, usize> {
    if from == 0 {
        match bytes {
            [] | [b'\r'] => return Err(0),
            [b'\n', ..] => return Ok(1),
            [b'\r', b'\n', ..] => return Ok(2),
            _ => {}
        }
    }
    let mut from = from;
    while let Some(offset) = bytes.get(from..).and_then(|b| memchr::memchr(b'\n', b)) {
        let newline = from + offset;
        match bytes.get(newline + 1..) {
            Some([b'\n', ..]) => return Ok(newline + 2),
            Some([b'\r', b'\n', ..]) => return Ok(newline + 3),
            Some([] | [b'\r']) | None => return Err(newline),
            _ => from = newline + 1,
        }
    }
    Err(bytes.len())
}

/// What the scan for `--boundary` found.
pub(super) enum Found {
    /// The innermost boundary, starting at this index (the first `-`).
    Current(usize),
    /// The boundary of an enclosing multipart: mail-parser ignores it, a mail client may not.
    Other,
    /// No boundary; `undecided` is where a `--` starts that more bytes could make one.
    Nothing { undecided: Option<usize> },
}

/// Finds the first `--` followed by one of `boundaries` (innermost last) in `bytes`.
pub(super) fn find_delimiter(bytes: &[u8], boundaries: &[Vec<u8>]) -> Found {
    let mut from = 0;
    // memchr: a base64 body has no `-` at all, and this runs over every streamed byte.
    while let Some(offset) = memchr::memchr(b'-', &bytes[from..]) {
        let dash = from + offset;
        match bytes.get(dash + 1) {
            None => {
                return Found::Nothing {
                    undecided: Some(dash),
                }
            }
            Some(b'-') => {}
            Some(_) => {
                from = dash + 2;
                continue;
            }
        }
        let rest = &bytes[dash + 2..];
        let mut undecided = false;
        for (index, boundary) in boundaries.iter().enumerate().rev() {
            if rest.starts_with(boundary) {
                return if index + 1 == boundaries.len() {
                    Found::Current(dash)
                } else {
                    Found::Other
                };
            }
            undecided |= rest.len() < boundary.len() && boundary.starts_with(rest);
        }
        if undecided {
            return Found::Nothing {
                undecided: Some(dash),
            };
        }
        from = dash + 1;
    }
    Found::Nothing { undecided: None }
}
