//! One downloaded message, from its first body byte to what the client gets: the per-session
//! owner of the collected body, the stream, the oversize state, the inspection plan the
//! message started under, and the verdict.
//!
//! The pump only moves bytes: it hands each body chunk to [`MessageJob::push`] and stops
//! when the job wants its memory spilled or the core reports the body's end or its
//! oversize; the driver then calls the matching async method here. The plan is fixed when
//! the message starts: a reload in the middle of a download (which may remove inspection)
//! applies to the next message, never to half of this one.

use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use super::inspection::{self, Collected};
use super::message_buffer::{self, MessageBuffer};
use super::streaming::{Ending, NeedsWhole, Streaming};
use crate::config::inspection_plan::InspectionPlan;
use crate::pop3::Session;
use crate::shared::SessionShared;

/// A RETR/TOP body on its way from the server to the client.
#[derive(Debug)]
pub struct MessageJob {
    number: u32,
    top_lines: Option<u32>,
    plan: Option<Arc<InspectionPlan>>,
    shared: Arc<SessionShared>,
    /// The bytes as the server sent them (dot-stuffed, terminator included).
    body: MessageBuffer,
    /// Set when the message streams to the client as it arrives.
    stream: Option<Box<Streaming>>,
    /// The streamed body is not kept: the server will be asked for it again if the stream
    /// needs it whole ([`Session::reserve_refetch`]).
    released: bool,
    /// The stream that needs the whole message, while the server sends it again.
    refetching: Option<Box<NeedsWhole>>,
    /// Only the first `max_message_size` bytes were kept; the rest is discarded.
    oversize: bool,
}

impl MessageJob {
    /// A job for message `number` of `user` (`top_lines` for a TOP), judged under `plan`.
    ///
    /// A RETR streams when the plan allows it and the message did not diverge before; its
    /// body is then kept only as the stream's fallback, and only up to `max_message_size`
    /// (past it, a fallback gives up; see [`inspection::judge_streamed`]). Past the spill
    /// threshold it is not kept at all when the server can be asked for it again
    /// ([`MessageJob::spill`]).
    pub fn start(
        plan: Option<Arc<InspectionPlan>>,
        shared: Arc<SessionShared>,
        user: &str,
        number: u32,
        top_lines: Option<u32>,
    ) -> MessageJob {
        let stream = match (&plan, top_lines) {
            (Some(plan), None) => plan
                .stream_inspector()
                .and_then(|inspector| Streaming::start(inspector, &shared.diverged, user, number)),
            _ => None,
        };
        let cap = match (&plan, &stream) {
            (Some(plan), Some(_)) => plan.rules().max_message_size,
            _ => u64::MAX,
        };
        MessageJob {
            number,
            top_lines,
            plan,
            shared,
            body: MessageBuffer::new(cap),
            stream,
            released: false,
            refetching: None,
            oversize: false,
        }
    }

    /// The server's next body bytes; a streamed message's decided part goes to the client.
    pub fn push(&mut self, chunk: Vec<u8>, session: &mut Session) {
        if self.refetching.is_some() {
            self.body.push(chunk);
            return;
        }
        if let Some(stream) = self.stream.as_mut() {
            let wire = stream.push(&chunk);
            session.deliver_partial(wire, Instant::now());
        }
        // Kept in full too (moved, not copied) unless released: a stream that cannot decide
        // alone needs it.
        if !self.released {
            self.body.push(chunk);
        }
    }

    /// Whether [`MessageJob::spill`] should run before more bytes are pushed.
    pub fn wants_spill(&self) -> bool {
        self.body.wants_spill()
    }

    /// Frees the collected bytes in memory: a streamed body is released when the server
    /// can be asked for it again, anything else moves to the spool off the runtime threads.
    ///
    /// Cancel safety: not cancel safe.
    pub async fn spill(&mut self, session: &mut Session) {
        let first_pass = self.stream.is_some() && self.refetching.is_none();
        if first_pass && !self.released && session.reserve_refetch() {
            // Writing every streamed byte to disk for the rare stream that cannot decide
            // alone cost a fifth of a bulk RETR's CPU (BENCHMARKS.md).
            self.released = true;
            self.body = MessageBuffer::new(0);
            return;
        }
        self.body.spill(&self.shared.spool).await;
    }

    /// The core reported that the body passed `max_message_size`: pass it uninspected
    /// (`oversize: allow`) or keep reading it to replace it (`deny`). The plan decides, the
    /// one this message started under.
    ///
    /// Cancel safety: not cancel safe.
    pub async fn oversize(&mut self, session: &mut Session) {
        let passes = self.plan.as_ref().is_some_and(|p| p.passes_oversize());
        if passes {
            let body = std::mem::replace(&mut self.body, MessageBuffer::new(0));
            // Bounded by `max_message_size`, read back on the blocking pool.
            if let Ok(bytes) = message_buffer::read_back(body).await {
                info!(number = self.number, "oversize message passed uninspected");
                session.oversize_pass(&bytes, Instant::now());
                self.oversize = false;
                return;
            }
        }
        // Denied (or the collected part was lost): the rest is read and dropped, and the
        // replacement is built from what was kept.
        self.oversize = true;
        session.oversize_discard(Instant::now());
    }

    /// The body is complete: judges it and hands the core its delivery, or, for a
    /// released stream that needs the whole message, has the server send it again.
    ///
    /// Cancel safety: not cancel safe (the core waits for exactly one delivery).
    pub async fn finish(mut self, session: &mut Session) -> Finish {
        self.body.settle().await;
        let ending = match (self.refetching.take(), self.stream.take()) {
            (Some(pending), _) => Some(Ending::NeedsWhole(*pending)),
            (None, Some(stream)) => Some(stream.finish()),
            (None, None) => None,
        };
        let ending = match ending {
            Some(Ending::NeedsWhole(pending)) if self.released => {
                self.released = false;
                if session.refetch() {
                    info!(
                        number = self.number,
                        "streamed message needs a whole inspection; fetching it again"
                    );
                    self.refetching = Some(Box::new(pending));
                    self.body = MessageBuffer::new(
                        self.plan
                            .as_ref()
                            .map_or(u64::MAX, |p| p.rules().max_message_size),
                    );
                    return Finish::Refetching(Box::new(self));
                }
                // The session is closing: nothing to judge with.
                pending.abandon(&self.shared.diverged);
                return Finish::Delivered(self.withhold(session));
            }
            other => other,
        };
        let MessageJob {
            number,
            top_lines,
            plan,
            shared,
            body,
            oversize,
            ..
        } = self;
        // Boxed: a rare, large future must not size every idle session's task.
        let judged = match ending {
            Some(ending) => {
                Box::pin(inspection::judge_streamed(&shared, ending, body, number)).await
            }
            None => {
                let collected = Collected {
                    number,
                    top_lines,
                    body,
                    oversize,
                };
                Box::pin(inspection::judge_collected(
                    &shared,
                    plan.as_ref(),
                    collected,
                ))
                .await
            }
        };
        session.deliver_message(judged.delivery, Instant::now());
        Finish::Delivered(judged.label)
    }

    /// The server refused to send the message again ([`Event::MessageRefetchRefused`]):
    /// it cannot be judged, so it is withheld and its retry inspected whole.
    ///
    /// [`Event::MessageRefetchRefused`]: crate::pop3::Event::MessageRefetchRefused
    pub fn refetch_refused(mut self, session: &mut Session) -> &'static str {
        if let Some(pending) = self.refetching.take() {
            pending.abandon(&self.shared.diverged);
        }
        self.withhold(session)
    }

    fn withhold(&self, session: &mut Session) -> &'static str {
        tracing::warn!(
            number = self.number,
            "streamed inspection could not finish; session ended"
        );
        let judged = inspection::Judged::tempfail();
        session.deliver_message(judged.delivery, Instant::now());
        judged.label
    }
}

/// What [`MessageJob::finish`] did.
#[derive(Debug)]
pub enum Finish {
    /// The client has its delivery: the verdict's label for the session summary.
    Delivered(&'static str),
    /// The server sends the message again; the job goes on with its bytes.
    Refetching(Box<MessageJob>),
}
