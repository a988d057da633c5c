//! Inspection that streams: a RETR body goes to the client as it arrives, each part as soon
//! as its verdict is known (`popgate_inspect::StreamInspector`), instead of after the whole
//! message was collected and parsed.
//!
//! Used only when no rule's verdict can need the whole message (antivirus off, no deny or
//! quarantine rule, `oversize: allow`); whatever `unparseable` says, the inspector holds
//! back on damage or ambiguity and the batch result decides, and a message it cannot
//! finish consistently is never
//! completed for the client (no terminator: it stays on the server) and is remembered, so
//! the client's retry is inspected whole instead.

use popgate_inspect::{StreamInspector, StreamOutcome};

use super::stuffing_stream::{Restuffer, Unstuffer};
use crate::shared::DivergedSet;

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
    user: String,
    number: u32,
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

impl Streaming {
    /// Starts streaming message `number` of `user`, unless it diverged before.
    pub fn start(
        inspector: StreamInspector,
        diverged: &DivergedSet,
        user: &str,
        number: u32,
    ) -> Option<Box<Streaming>> {
        (!diverged.contains(user, number)).then(|| {
            Box::new(Streaming {
                inspector: Box::new(inspector),
                unstuffer: Unstuffer::default(),
                restuffer: Restuffer::default(),
                message: Vec::new(),
                decided: Vec::new(),
                wire: Vec::new(),
                head: Vec::new(),
                size: 0,
                user: user.to_owned(),
                number,
            })
        })
    }

    /// Feeds the server's next bytes (dot-stuffed); returns the wire bytes the client may
    /// have now.
    pub fn push(&mut self, chunk: &[u8]) -> &[u8] {
        // Borrowed when the chunk holds no stuffed line (most do): no copy.
        let message = self.unstuffer.unstuff(chunk, &mut self.message);
        self.size += message.len();
        if self.head.len() < HEAD_KEPT {
            let room = HEAD_KEPT - self.head.len();
            self.head
                .extend_from_slice(&message[..room.min(message.len())]);
        }
        self.decided.clear();
        self.inspector.push(message, &mut self.decided);
        self.restuffer.restuff(&self.decided, &mut self.wire)
    }

    /// Ends the stream: done when the inspector decided alone, else it needs the whole
    /// message ([`NeedsWhole::finish`]).
    pub fn finish(self) -> Ending {
        let Streaming {
            inspector,
            restuffer,
            head,
            size,
            user,
            number,
            ..
        } = self;
        let mut decided = Vec::new();
        match inspector.finish_streamed(&mut decided) {
            Ok(outcome) => Ending::Done(finished(restuffer, decided, outcome, size, &head)),
            Err(inspector) => Ending::NeedsWhole(NeedsWhole {
                inspector,
                restuffer,
                head,
                size,
                user,
                number,
            }),
        }
    }
}

/// How a stream ends.
#[derive(Debug)]
pub enum Ending {
    /// Decided by the stream alone.
    Done(Finished),
    /// The batch result decides: the whole message is needed.
    NeedsWhole(NeedsWhole),
}

/// A stream waiting for the whole message (its inspector was holding).
#[derive(Debug)]
pub struct NeedsWhole {
    inspector: Box<StreamInspector>,
    restuffer: Restuffer,
    head: Vec<u8>,
    size: usize,
    user: String,
    number: u32,
}

impl NeedsWhole {
    /// Finishes with `whole`, the complete unstuffed message. CPU-bound: call it on the
    /// blocking pool for large messages.
    ///
    /// # Errors
    /// What was sent is not a prefix of the batch result; the message is remembered in
    /// `diverged` so its next retrieval is inspected whole.
    pub fn finish(self, whole: &[u8], diverged: &DivergedSet) -> Result<Finished, FinishError> {
        let mut decided = Vec::new();
        match self.inspector.finish(whole, &mut decided) {
            Ok(outcome) => Ok(finished(
                self.restuffer,
                decided,
                outcome,
                self.size,
                &self.head,
            )),
            Err(_) => {
                diverged.insert(&self.user, self.number);
                Err(FinishError::Diverged)
            }
        }
    }

    /// The whole message is not available (spool full, over `max_message_size`): the
    /// message is remembered as if it diverged, so its retry is collected whole and the
    /// action's oversize rule applies to it.
    pub fn abandon(self, diverged: &DivergedSet) {
        diverged.insert(&self.user, self.number);
    }
}

fn finished(
    mut restuffer: Restuffer,
    decided: Vec<u8>,
    outcome: StreamOutcome,
    size: usize,
    head: &[u8],
) -> Finished {
    let mut wire = Vec::with_capacity(decided.len() + 8);
    restuffer.push(&decided, &mut wire);
    restuffer.finish(&mut wire);
    Finished {
        wire,
        outcome,
        size,
        message_id: super::inspection::message_id(head),
    }
}

/// Why a stream could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// What was sent is not a prefix of the correct result.
    #[error("the stream diverged from the batch result")]
    Diverged,
    /// The whole message, needed to decide, is not available.
    #[error("the whole message is not available: {0}")]
    Collect(#[from] super::message_buffer::CollectError),
}
