//! The streaming check for a possible uuencoded file in a plain text part: a line whose
//! first bytes other than white space spell `begin`.
//!
//! It runs over every byte of every streamed text body, so it jumps from line break to line
//! break with `memchr` and looks at bytes one by one only at line starts. The state that
//! crosses chunks is two bytes, kept in the text buffer the caller already holds.

/// Where the current line stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BeginLine {
    /// Nothing but white space since the last line break (any byte from 0x80 may be part
    /// of a Unicode space: taken as one, which can only make the stream hold where the
    /// batch walk then decides).
    blank: bool,
    /// How much of `begin` follows that white space (5: found).
    matched: u8,
}

const BEGIN: &[u8; 5] = b"begin";

impl BeginLine {
    /// At the start of a body.
    pub(super) const START: BeginLine = BeginLine {
        blank: true,
        matched: 0,
    };

    /// The state kept in two bytes (see [`BeginLine::to_bytes`]); anything else is a start.
    pub(super) fn from_bytes(bytes: &[u8]) -> BeginLine {
        match bytes {
            [blank, matched] => BeginLine {
                blank: *blank == 1,
                matched: (*matched).min(5),
            },
            _ => BeginLine::START,
        }
    }

    pub(super) fn to_bytes(self) -> [u8; 2] {
        [u8::from(self.blank), self.matched]
    }

    /// Reads `bytes`; `true` once a `begin` line start was seen (it stays seen).
    pub(super) fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut i = 0;
        while i < bytes.len() {
            if self.matched == 5 {
                return true;
            }
            if self.matched > 0 {
                if bytes[i] == BEGIN[usize::from(self.matched)] {
                    self.matched += 1;
                    i += 1;
                    continue;
                }
                // Not `begin`: the line is taken; this byte is read again below (a line
                // break starts a new line).
                self.matched = 0;
                self.blank = false;
            }
            if !self.blank {
                match memchr::memchr2(b'\n', b'\r', &bytes[i..]) {
                    Some(at) => {
                        i += at + 1;
                        self.blank = true;
                    }
                    None => return false,
                }
                continue;
            }
            match bytes[i] {
                b'\n' | b'\r' | b' ' | b'\t' | 0x0b | 0x0c | 0x80..=0xff => {}
                b'b' => self.matched = 1,
                _ => self.blank = false,
            }
            i += 1;
        }
        self.matched == 5
    }
}

#[cfg(test)]
mod tests {
    use super::BeginLine;

    /// The rule read one byte at a time, as it was first written: the oracle.
    fn bytewise(state: &mut (bool, usize), bytes: &[u8]) -> bool {
        let (blank, matched) = state;
        for &byte in bytes {
            if *matched == 5 {
                return true;
            }
            if *matched > 0 {
                if byte == b"begin"[*matched] {
                    *matched += 1;
                    continue;
                }
                *matched = 0;
                *blank = false;
            }
            match byte {
                b'\n' | b'\r' => *blank = true,
                b' ' | b'\t' | 0x0b | 0x0c | 0x80..=0xff => {}
                b'b' if *blank => *matched = 1,
                _ => *blank = false,
            }
        }
        *matched == 5
    }

    fn fast(bytes: &[u8], split: usize) -> (bool, BeginLine) {
        let mut state = BeginLine::START;
        let (a, b) = bytes.split_at(split);
        let found = state.feed(a);
        let mut kept = BeginLine::from_bytes(&state.to_bytes());
        (found | kept.feed(b), kept)
    }

    #[test]
    fn agrees_with_the_bytewise_rule_at_every_split() {
        // Bytes that matter to the rule, and one that does not.
        let alphabet = b"begin \t\r\n\x0b\xa0xB";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut oracle = (true, 0);
            let expected = bytewise(&mut oracle, &bytes);
            for split in 0..=bytes.len() {
                let (found, state) = fast(&bytes, split);
                assert_eq!(
                    found,
                    expected,
                    "{:?} split at {split}",
                    bytes.escape_ascii().to_string()
                );
                if !found {
                    assert_eq!(
                        (state.blank, usize::from(state.matched)),
                        oracle,
                        "{:?}",
                        bytes.escape_ascii().to_string()
                    );
                }
            }
        }
    }

    #[test]
    fn finds_indented_and_split_begin_lines() {
        assert!(fast(b"text\r\n  \tbegin 644 evil.exe\r\n", 9).0);
        assert!(fast(b"begin", 2).0);
        assert!(!fast(b"text begin 644 evil.exe\r\n", 7).0);
        assert!(!fast(b"text\r\n.begin\r\n", 8).0);
    }
}
