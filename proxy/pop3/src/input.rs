//! A read buffer consumed from the front without shifting: command lines are taken one at a
//! time from a buffer that may hold thousands of pipelined ones, and moving the rest down
//! after each would make a flood quadratic (SPEC §5: every buffer bounded, in time too).
//!
//! The consumed prefix is skipped with an offset and dropped only when it is at least half
//! the buffer, so each byte is moved at most a bounded number of times. No I/O here.

/// Bytes read from a peer and not yet handled.
#[derive(Debug, Default)]
pub(crate) struct InputBuffer {
    data: Vec<u8>,
    /// Bytes of `data` already consumed.
    start: usize,
}

/// An empty buffer keeps no more capacity than this (memory per idle session).
const KEPT_CAPACITY: usize = 16 * 1024;

impl InputBuffer {
    /// The unconsumed bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.data[self.start..]
    }

    /// How many bytes are unconsumed.
    pub(crate) fn len(&self) -> usize {
        self.data.len() - self.start
    }

    /// Whether nothing is unconsumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends bytes read from the peer.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    /// Marks the first `n` unconsumed bytes as handled.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.clear();
        }
    }

    /// Takes every unconsumed byte out.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let rest = self.as_slice().to_vec();
        self.clear();
        rest
    }

    /// The bytes held, consumed or not, and room for more.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Frees the capacity when nothing is unconsumed.
    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.data = Vec::new();
            self.start = 0;
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.start = 0;
        if self.data.capacity() > KEPT_CAPACITY {
            self.data = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_from_the_front_and_compacts() {
        let mut buf = InputBuffer::default();
        buf.extend(b"USER a\r\nUSER b\r\n");
        buf.consume(8);
        assert_eq!(buf.as_slice(), b"USER b\r\n");
        buf.extend(b"QUIT\r\n");
        assert_eq!(buf.as_slice(), b"USER b\r\nQUIT\r\n");
        assert_eq!(buf.start, 0, "compacted once half was consumed");
        buf.consume(8);
        assert_eq!(buf.take(), b"QUIT\r\n");
        assert!(buf.is_empty());
    }
}
