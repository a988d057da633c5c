//! The test messages: RFC 5322 bytes with CRLF line endings.
//!
//! The small messages are committed as `tests/corpus/*.eml` (byte-exact; `.gitattributes`
//! keeps git from touching their line endings) and are ordered by file name, which is the
//! order Dovecot numbers them in. The 20 MiB message is generated deterministically at run
//! time ([`Corpus::big_message`]) so it is never committed.

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

/// File name of the generated large message.
pub const BIG_MESSAGE_NAME: &str = "99-big-20mib.eml";

/// Size the generated large message reaches at least: 20 MiB.
pub const BIG_MESSAGE_MIN_SIZE: usize = 20 * 1024 * 1024;

/// One message of the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The corpus file name, e.g. `03-dot-lines.eml`.
    pub name: String,
    /// The exact RFC 5322 bytes (CRLF line endings, ending in CRLF).
    pub bytes: Vec<u8>,
}

/// An ordered list of messages: message N (1-based) on the POP3 server is `messages[N-1]`.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// The messages in mailbox order.
    pub messages: Vec<Message>,
}

impl Corpus {
    /// The committed messages in `tests/corpus/`, sorted by file name.
    ///
    /// # Panics
    /// When the corpus directory cannot be read or is empty.
    pub fn small() -> Corpus {
        let dir = corpus_dir();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| {
                entry
                    .expect("corpus dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into()
            })
            .filter(|name: &String| name.ends_with(".eml"))
            .collect();
        names.sort();
        assert!(!names.is_empty(), "no .eml files in {}", dir.display());
        let messages = names
            .into_iter()
            .map(|name| {
                let bytes = fs::read(dir.join(&name)).expect("reading corpus message");
                Message { name, bytes }
            })
            .collect();
        Corpus { messages }
    }

    /// [`Corpus::small`] followed by the 20 MiB message.
    pub fn with_big() -> Corpus {
        let mut corpus = Corpus::small();
        corpus.messages.push(Corpus::big_message());
        corpus
    }

    /// A corpus of the given messages, in this order.
    pub fn of(messages: Vec<Message>) -> Corpus {
        Corpus { messages }
    }

    /// The committed message called `name` (e.g. `"05-exe-attachment.eml"`).
    ///
    /// # Panics
    /// When there is no such file.
    pub fn message(name: &str) -> Message {
        let path = corpus_dir().join(name);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Message {
            name: name.to_owned(),
            bytes,
        }
    }

    /// The 20 MiB message: text part plus a base64 attachment of pseudo-random bytes from a
    /// fixed seed, identical on every run. Generated once per test process.
    pub fn big_message() -> Message {
        static BIG: OnceLock<Vec<u8>> = OnceLock::new();
        let bytes = BIG.get_or_init(generate_big_message).clone();
        Message {
            name: BIG_MESSAGE_NAME.to_owned(),
            bytes,
        }
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are no messages.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Position (1-based POP3 message number) of the message called `name`.
    ///
    /// # Panics
    /// When the corpus has no such message.
    pub fn number_of(&self, name: &str) -> usize {
        1 + self
            .messages
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("no message {name} in the corpus"))
    }
}

/// `tests/corpus/`.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn generate_big_message() -> Vec<u8> {
    let mut out = Vec::with_capacity(BIG_MESSAGE_MIN_SIZE + 4096);
    out.extend_from_slice(
        b"Message-ID: <corpus-99-big@popgate.test>\r\n\
          Date: Mon, 6 Jan 2025 11:00:00 +0000\r\n\
          From: Sender <sender@example.org>\r\n\
          To: Alice <alice@example.net>\r\n\
          Subject: Large message with a 20 MiB attachment\r\n\
          MIME-Version: 1.0\r\n\
          Content-Type: multipart/mixed; boundary=\"big99\"\r\n\
          \r\n\
          --big99\r\n\
          Content-Type: text/plain; charset=us-ascii\r\n\
          \r\n\
          The attachment is large.\r\n\
          \r\n\
          --big99\r\n\
          Content-Type: application/octet-stream; name=\"archive.bin\"\r\n\
          Content-Transfer-Encoding: base64\r\n\
          Content-Disposition: attachment; filename=\"archive.bin\"\r\n\
          \r\n",
    );
    let mut rng = XorShift(0x0005_eed0_fb16_ba55);
    // 57 raw bytes encode to one 76-character base64 line.
    while out.len() < BIG_MESSAGE_MIN_SIZE {
        let chunk: Vec<u8> = (0..57).map(|_| rng.next_byte()).collect();
        base64_encode_into(&chunk, &mut out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n--big99--\r\n");
    out
}

struct XorShift(u64);

impl XorShift {
    fn next_byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.to_le_bytes()[3]
    }
}

/// Standard base64 (RFC 4648, with padding) of `input`, appended to `out`.
pub fn base64_encode_into(input: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| ALPHABET[((n >> shift) & 63) as usize];
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { b'=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { b'=' });
    }
}

/// Standard base64 of `input` as a string.
pub fn base64(input: &[u8]) -> String {
    let mut out = Vec::new();
    base64_encode_into(input, &mut out);
    String::from_utf8(out).expect("base64 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_corpus_message_uses_crlf_only_and_ends_with_crlf() {
        let corpus = Corpus::with_big();
        assert!(corpus.len() >= 9, "corpus has {} messages", corpus.len());
        for message in &corpus.messages {
            let bytes = &message.bytes;
            assert!(
                bytes.ends_with(b"\r\n"),
                "{} does not end with CRLF",
                message.name
            );
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'\n' {
                    assert!(
                        i > 0 && bytes[i - 1] == b'\r',
                        "{}: bare LF at {i}",
                        message.name
                    );
                }
                if b == b'\r' {
                    assert_eq!(
                        bytes.get(i + 1),
                        Some(&b'\n'),
                        "{}: bare CR at {i}",
                        message.name
                    );
                }
            }
        }
    }

    #[test]
    fn big_message_is_deterministic_and_at_least_20_mib() {
        let big = generate_big_message();
        assert!(big.len() >= BIG_MESSAGE_MIN_SIZE);
        assert_eq!(big, Corpus::big_message().bytes);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input), expected);
        }
    }
}
