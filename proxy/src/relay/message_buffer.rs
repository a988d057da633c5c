//! A message body being collected for inspection: in memory while small, then in the
//! spool (`state_dir/spool`, see `crate::spool`), so a slow download of a large message
//! costs a session little memory while it arrives.
//!
//! `push` only appends to memory (it runs inside the pump's poll); once
//! [`SPILL_THRESHOLD`] bytes wait, the owner moves them to the spool with [`spill`], which
//! starts the write on the blocking pool and returns: the session reads on while it runs.
//! One write is in flight at a time; while it runs, new bytes wait in memory, and the
//! session stops reading for it only when [`MAX_WAITING`] bytes wait (a slow disk), so at
//! most twice that is in memory. [`settle`] waits for it before the body is judged.
//! Reading a spooled body back is blocking too and happens only under the inspection
//! semaphore ([`MessageBuffer::into_bytes`]).
//!
//! [`spill`]: MessageBuffer::spill
//! [`settle`]: MessageBuffer::settle

use std::io;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::spool::{Spool, SpoolError, SpoolFile};

/// Bytes kept in memory before they move to the spool.
pub const SPILL_THRESHOLD: usize = 256 * 1024;

/// Bytes that may wait in memory while a spill is in flight: past them the session waits
/// for the write. Waiting at every threshold instead stalled a bulk RETR whenever the
/// blocking pool was slower than the server (bulk 0.89x of the synchronous writes before,
/// BENCHMARKS.md).
pub const MAX_WAITING: usize = 4 * SPILL_THRESHOLD;

/// Chunks smaller than this are copied onto the previous one instead of kept alone.
const MIN_CHUNK: usize = 4 * 1024;

/// Why a collected body cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Writing to (or reading from) the spool failed, or its quota is reached.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// More than the buffer's cap arrived (the body is needed whole no more).
    #[error("the body passed {cap} bytes and was not kept")]
    OverCap {
        /// The cap.
        cap: u64,
    },
    /// The blocking task did not finish.
    #[error("spool task failed: {0}")]
    Task(String),
}

/// The collected bytes of one message.
#[derive(Debug)]
pub struct MessageBuffer {
    /// Not yet spilled: the chunks as they came (moved in, never copied).
    memory: Vec<Vec<u8>>,
    /// Bytes in `memory`.
    memory_len: usize,
    file: Option<SpoolFile>,
    /// The spill in flight; it gives the file back.
    writing: Option<JoinHandle<Result<SpoolFile, SpoolError>>>,
    len: u64,
    /// Past this many bytes the body is not kept (`u64::MAX`: always kept).
    cap: u64,
    /// The first failure; the body is then not usable (the message is withheld, never
    /// delivered truncated).
    failed: Option<CollectError>,
}

impl MessageBuffer {
    /// An empty buffer that keeps at most `cap` bytes.
    pub fn new(cap: u64) -> MessageBuffer {
        MessageBuffer {
            memory: Vec::new(),
            memory_len: 0,
            file: None,
            writing: None,
            len: 0,
            cap,
            failed: None,
        }
    }

    /// Keeps a chunk (moved, not copied); see [`MessageBuffer::wants_spill`].
    pub fn push(&mut self, chunk: Vec<u8>) {
        self.len += chunk.len() as u64;
        if self.failed.is_some() {
            return;
        }
        if self.len > self.cap {
            self.fail(CollectError::OverCap { cap: self.cap });
            return;
        }
        self.memory_len += chunk.len();
        match self.memory.last_mut() {
            // Small chunks join the last one: a server sending tiny records must not cost a
            // vector each.
            Some(last) if chunk.len() < MIN_CHUNK => last.extend_from_slice(&chunk),
            _ => self.memory.push(chunk),
        }
    }

    fn fail(&mut self, error: CollectError) {
        self.memory = Vec::new();
        self.memory_len = 0;
        self.file = None;
        self.writing = None;
        self.failed = Some(error);
    }

    /// Whether to call [`MessageBuffer::spill`] now: a threshold of bytes waits and the
    /// previous write is done, or [`MAX_WAITING`] bytes wait (the spill then waits for it).
    pub fn wants_spill(&self) -> bool {
        let writing = self
            .writing
            .as_ref()
            .is_some_and(|write| !write.is_finished());
        self.failed.is_none()
            && self.memory_len >= SPILL_THRESHOLD
            && (!writing || self.memory_len >= MAX_WAITING)
    }

    /// Moves the bytes in memory to the spool, off the runtime threads: waits for the
    /// previous spill, then starts this one and returns without waiting for it.
    ///
    /// Cancel safety: not cancel safe (the bytes in flight are lost; the body is then
    /// marked failed by the next call).
    pub async fn spill(&mut self, spool: &Arc<Spool>) {
        self.settle().await;
        if self.failed.is_some() {
            return;
        }
        let pending = std::mem::take(&mut self.memory);
        self.memory_len = 0;
        let file = self.file.take();
        let spool = spool.clone();
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(file) => file,
                None => SpoolFile::create(&spool)?,
            };
            for chunk in &pending {
                file.append(chunk)?;
            }
            Ok::<_, SpoolError>(file)
        }));
    }

    /// Waits for the spill in flight, if any; call it before the body is judged.
    ///
    /// Cancel safety: not cancel safe (as [`MessageBuffer::spill`]).
    pub async fn settle(&mut self) {
        let Some(writing) = self.writing.take() else {
            return;
        };
        match writing.await {
            Ok(Ok(file)) => self.file = Some(file),
            Ok(Err(err)) => self.fail(err.into()),
            Err(err) => self.fail(CollectError::Task(err.to_string())),
        }
    }

    /// Bytes pushed so far (kept or not).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the body is whole so far (no spool failure, under the cap); a spill still
    /// in flight is known only after [`MessageBuffer::settle`].
    pub fn is_usable(&self) -> bool {
        self.failed.is_none()
    }

    /// Whether reading the body back needs the blocking pool (part of it is spooled).
    pub fn is_spooled(&self) -> bool {
        self.file.is_some() || self.writing.is_some()
    }

    /// The whole body in memory, for parsing. Blocking when spooled: call it on the
    /// blocking pool, under the inspection semaphore.
    ///
    /// # Errors
    /// Collecting failed, or the spool file cannot be read back.
    pub fn into_bytes(self) -> Result<Vec<u8>, CollectError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.writing.is_some() {
            return Err(CollectError::Task("a spill is still in flight".into()));
        }
        let mut memory = self.memory;
        if self.file.is_none() && memory.len() == 1 {
            return Ok(memory.pop().unwrap_or_default());
        }
        let mut bytes = Vec::with_capacity(self.len as usize);
        if let Some(mut file) = self.file {
            file.read_all(&mut bytes)?;
        }
        for chunk in &memory {
            bytes.extend_from_slice(chunk);
        }
        Ok(bytes)
    }
}

/// Reads `buffer` back on the blocking pool when it is spooled, inline when in memory.
///
/// # Errors
/// As [`MessageBuffer::into_bytes`].
pub async fn read_back(mut buffer: MessageBuffer) -> Result<Vec<u8>, CollectError> {
    buffer.settle().await;
    if !buffer.is_spooled() {
        return buffer.into_bytes();
    }
    tokio::task::spawn_blocking(move || buffer.into_bytes())
        .await
        .map_err(|err| CollectError::Task(err.to_string()))?
}

impl From<CollectError> for io::Error {
    fn from(err: CollectError) -> io::Error {
        io::Error::other(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_stays_in_memory_and_large_round_trips_through_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), u64::MAX);
        let mut small = MessageBuffer::new(u64::MAX);
        small.push(b"hello ".to_vec());
        small.push(b"world".to_vec());
        assert!(!small.wants_spill());
        assert_eq!(read_back(small).await.unwrap(), b"hello world");

        let chunk: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let mut large = MessageBuffer::new(u64::MAX);
        for _ in 0..5 {
            large.push(chunk.clone());
            if large.wants_spill() {
                large.spill(&spool).await;
            }
        }
        large.settle().await;
        assert!(large.is_spooled());
        assert!(large.memory_len < SPILL_THRESHOLD);
        assert_eq!(large.len(), 500_000);
        assert_eq!(spool.used(), 300_000, "what was spilled counts");
        assert_eq!(read_back(large).await.unwrap(), chunk.repeat(5));
        assert_eq!(spool.used(), 0);
    }

    #[tokio::test]
    async fn bytes_wait_in_memory_while_a_spill_is_in_flight_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), u64::MAX);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let mut buffer = MessageBuffer::new(u64::MAX);
        let in_flight = spool.clone();
        buffer.writing = Some(tokio::task::spawn_blocking(move || {
            let _ = hold.recv();
            SpoolFile::create(&in_flight)
        }));
        let chunk = vec![b'x'; SPILL_THRESHOLD];
        for _ in 1..MAX_WAITING / SPILL_THRESHOLD {
            buffer.push(chunk.clone());
            assert!(
                !buffer.wants_spill(),
                "the session reads on during the write"
            );
        }
        buffer.push(chunk.clone());
        assert!(
            buffer.wants_spill(),
            "MAX_WAITING bytes wait: time to wait for it"
        );
        release.send(()).unwrap();
        buffer.spill(&spool).await;
        buffer.settle().await;
        assert!(buffer.is_usable());
        assert_eq!(spool.used(), MAX_WAITING as u64);
        assert_eq!(read_back(buffer).await.unwrap(), chunk.repeat(4));
    }

    #[test]
    fn tiny_chunks_join_instead_of_costing_a_vector_each() {
        let mut buffer = MessageBuffer::new(u64::MAX);
        buffer.push(vec![b'x'; MIN_CHUNK]);
        for _ in 0..10_000 {
            buffer.push(vec![b'y']);
        }
        assert_eq!(buffer.memory.len(), 1, "a hostile server's 1-byte records");
        assert_eq!(buffer.memory_len, MIN_CHUNK + 10_000);
        buffer.push(vec![b'z'; MIN_CHUNK]);
        assert_eq!(buffer.memory.len(), 2);
    }

    #[tokio::test]
    async fn a_full_spool_or_the_cap_makes_the_body_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), 1000);
        let mut buffer = MessageBuffer::new(u64::MAX);
        buffer.push(vec![b'x'; SPILL_THRESHOLD]);
        buffer.spill(&spool).await;
        buffer.settle().await;
        assert!(!buffer.is_usable());
        assert!(matches!(
            buffer.into_bytes(),
            Err(CollectError::Spool(SpoolError::Full { .. }))
        ));

        let mut capped = MessageBuffer::new(10);
        capped.push(b"12345".to_vec());
        capped.push(b"678901".to_vec());
        assert!(matches!(
            capped.into_bytes(),
            Err(CollectError::OverCap { cap: 10 })
        ));
    }
}
