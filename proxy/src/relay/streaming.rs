//! Inspection that streams: a RETR body goes to the client as it arrives, each part as soon
//! as its verdict is known (`popgate_inspect::StreamInspector`), instead of after the whole
//! message was collected and parsed.
//!
//! Used only when no verdict can need the whole message (antivirus off, no deny or
//! quarantine rule, `unparseable: allow`, `oversize: allow`); the inspector falls back to
//! the batch result when unsure, and a message it cannot finish consistently is never
//! completed for the client (no terminator: it stays on the server) and is remembered, so
//! the client's retry is inspected whole instead.

use std::collections::HashSet;
use std::sync::Mutex;

use popgate_inspect::{StreamInspector, StreamOutcome};

use super::stuffing_stream::{Restuffer, Unstuffer};

/// Unstuffed header bytes kept for the log's Message-ID.
const HEAD_KEPT: usize = 8 * 1024;

/// One message being streamed.
#[derive(Debug)]
pub struct Streaming {
    inspector: Box<StreamInspector>,
    unstuffer: Unstuffer,
    restuffer: Restuffer,
    /// Scratch buffers reused chunk after chunk.
    message: Vec<u8>,
    decided: Vec<u8>,
    wire: Vec<u8>,
    /// The start of the message, for the log.
    head: Vec<u8>,
    /// Unstuffed bytes pushed so far.
    size: usize,
    key: DivergenceKey,
}

/// What a finished stream gives the client, and the outcome for the log.
#[derive(Debug)]
pub struct Finished {
    /// The rest of the body, dot-stuffed, terminator included.
    pub wire: Vec<u8>,
    /// Verdict, rule and reason.
    pub outcome: StreamOutcome,
    /// The message's size, unstuffed.
    pub size: usize,
    /// Its Message-ID, when the header carries one.
    pub message_id: String,
}

/// Identifies a message across sessions well enough to stop streaming it after it diverged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DivergenceKey {
    user: String,
    number: u32,
}

/// Messages whose stream diverged; their next retrieval is inspected whole. Bounded.
static DIVERGED: Mutex<Option<HashSet<DivergenceKey>>> = Mutex::new(None);
const MAX_DIVERGED: usize = 4096;

impl Streaming {
    /// Starts streaming message `number` of `user`, unless it diverged before.
    pub fn start(inspector: StreamInspector, user: &str, number: u32) -> Option<Box<Streaming>> {
        let key = DivergenceKey {
            user: user.to_owned(),
            number,
        };
        let diverged = DIVERGED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .is_some_and(|set| set.contains(&key));
        (!diverged).then(|| {
            Box::new(Streaming {
                inspector: Box::new(inspector),
                unstuffer: Unstuffer::default(),
                restuffer: Restuffer::default(),
                message: Vec::new(),
                decided: Vec::new(),
                wire: Vec::new(),
                head: Vec::new(),
                size: 0,
                key,
            })
        })
    }

    /// Feeds the server's next bytes (dot-stuffed); returns the wire bytes the client may
    /// have now.
    pub fn push(&mut self, chunk: &[u8]) -> &[u8] {
        self.message.clear();
        self.unstuffer.push(chunk, &mut self.message);
        self.size += self.message.len();
        if self.head.len() < HEAD_KEPT {
            let room = HEAD_KEPT - self.head.len();
            self.head
                .extend_from_slice(&self.message[..room.min(self.message.len())]);
        }
        self.decided.clear();
        self.inspector.push(&self.message, &mut self.decided);
        self.wire.clear();
        self.restuffer.push(&self.decided, &mut self.wire);
        &self.wire
    }

    /// Ends the stream. `whole` is asked for (the complete unstuffed message) only when the
    /// inspector could not decide alone.
    ///
    /// # Errors
    /// The stream diverged from the batch result (the message is remembered), or `whole`
    /// failed.
    pub fn finish(
        self,
        whole: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> Result<Finished, FinishError> {
        let Streaming {
            inspector,
            mut restuffer,
            head,
            size,
            key,
            ..
        } = self;
        let mut decided = Vec::new();
        let outcome = match inspector.finish_streamed(&mut decided) {
            Ok(outcome) => outcome,
            Err(inspector) => {
                let whole = whole().map_err(FinishError::Io)?;
                inspector.finish(&whole, &mut decided).map_err(|_| {
                    remember(key);
                    FinishError::Diverged
                })?
            }
        };
        let mut wire = Vec::with_capacity(decided.len() + 8);
        restuffer.push(&decided, &mut wire);
        restuffer.finish(&mut wire);
        Ok(Finished {
            wire,
            outcome,
            size,
            message_id: super::inspection::message_id(&head),
        })
    }
}

/// Why a stream could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// What was sent is not a prefix of the correct result.
    #[error("the streamed bytes diverged from the inspected result")]
    Diverged,
    /// The collected message could not be read back.
    #[error("reading the collected message back")]
    Io(#[source] std::io::Error),
}

fn remember(key: DivergenceKey) {
    let mut guard = DIVERGED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let set = guard.get_or_insert_with(HashSet::new);
    if set.len() >= MAX_DIVERGED {
        set.clear();
    }
    set.insert(key);
}
