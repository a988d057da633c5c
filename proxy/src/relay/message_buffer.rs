//! A message body being collected for inspection: in memory while small, then in a
//! private unlinked temporary file, so a slow download of a large message costs a session
//! little memory while it arrives.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes kept in memory before the body moves to a temporary file.
pub const SPILL_THRESHOLD: usize = 256 * 1024;

/// The collected bytes of one message.
#[derive(Debug, Default)]
pub struct MessageBuffer {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
    /// The first write error; the message is then withheld, never delivered truncated.
    failed: Option<io::ErrorKind>,
}

impl MessageBuffer {
    /// Appends a chunk, spilling to disk past [`SPILL_THRESHOLD`].
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.len += chunk.len() as u64;
        if let Err(err) = self.write(chunk) {
            self.failed = Some(err.kind());
        }
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            return file.write_all(chunk);
        }
        if self.memory.len() + chunk.len() <= SPILL_THRESHOLD {
            self.memory.extend_from_slice(chunk);
            return Ok(());
        }
        // O_TMPFILE where available: never visible by name, gone when closed.
        let mut file = tempfile::tempfile()?;
        file.write_all(&self.memory)?;
        file.write_all(chunk)?;
        self.memory = Vec::new();
        self.file = Some(file);
        Ok(())
    }

    /// Bytes collected so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body in memory, for parsing.
    ///
    /// # Errors
    /// A write failed while collecting, or the temporary file cannot be read back.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "collecting the message failed"));
        }
        match self.file {
            None => Ok(self.memory),
            Some(mut file) => {
                let mut bytes = Vec::with_capacity(self.len as usize);
                file.seek(SeekFrom::Start(0))?;
                file.read_to_end(&mut bytes)?;
                Ok(bytes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_stays_in_memory_and_large_round_trips_through_a_file() {
        let mut small = MessageBuffer::default();
        small.push(b"hello ");
        small.push(b"world");
        assert!(small.file.is_none());
        assert_eq!(small.into_bytes().unwrap(), b"hello world");

        let chunk: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let mut large = MessageBuffer::default();
        for _ in 0..5 {
            large.push(&chunk);
        }
        assert!(large.file.is_some());
        assert!(large.memory.is_empty());
        assert_eq!(large.len(), 500_000);
        assert_eq!(large.into_bytes().unwrap(), chunk.repeat(5));
    }
}
