//! Fetching an inspected message a second time, on the server leg only: how a streamed
//! message whose copy was not kept can still be judged whole.
//!
//! Streaming inspection sends the client each part as soon as its verdict is known. Now and
//! then the stream cannot decide alone (damage, an ambiguity) and the batch walk needs the
//! whole message. Keeping a copy of every large streamed body for that rare case costs a
//! spool write per byte (a fifth of a bulk RETR's CPU, BENCHMARKS.md), so the driver may
//! instead reserve a second fetch while the body arrives ([`Session::reserve_refetch`]).
//! While one is reserved no client command is forwarded, so the server's next response is
//! the one to the proxy's own `RETR n` ([`Session::refetch`]); its body reaches the driver
//! as [`Event::MessageData`] and [`Event::MessageEnd`] again and the client sees nothing of
//! it. The usual [`Session::deliver_message`] follows.

use super::{BodyMode, Event, Pending, ServerState, Session, Side};
use crate::body::BodyScanner;
use crate::command::Verb;
use crate::status::Status;
use crate::Violation;

impl Session {
    /// Reserves a second fetch of the message being inspected, so its body need not be
    /// kept. Possible only while no later command has been forwarded to the server (their
    /// responses would come first); once reserved, the client's next commands wait until
    /// the message is delivered. Returns whether it was reserved.
    pub fn reserve_refetch(&mut self) -> bool {
        let inspecting = matches!(
            self.server_state,
            ServerState::Body(_, BodyMode::Inspect { .. })
        );
        let number = match self.pending.front() {
            Some(Pending::Forwarded(forwarded))
                if forwarded.verb == Verb::Retr && forwarded.top_lines.is_none() =>
            {
                forwarded.number
            }
            _ => None,
        };
        match number {
            Some(number) if inspecting && self.pending.len() == 1 && !self.closing => {
                self.refetch_reserved = Some(number);
                true
            }
            _ => false,
        }
    }

    /// After [`Event::MessageEnd`] of a message whose second fetch was reserved: asks the
    /// server for it again instead of delivering. Returns `false` (nothing changed: deliver
    /// as usual) when no fetch was reserved or the session is not waiting for a verdict.
    pub fn refetch(&mut self) -> bool {
        let Some(number) = self.refetch_reserved else {
            return false;
        };
        if !matches!(self.server_state, ServerState::AwaitingVerdict) || self.closing {
            return false;
        }
        self.to_server
            .extend_from_slice(format!("RETR {number}\r\n").as_bytes());
        // Ahead of the client's RETR, whose answer is still owed: nothing else is queued.
        self.pending.push_front(Pending::Refetch);
        self.server_state = ServerState::StatusLine;
        self.resume_server_input();
        true
    }

    /// The server's status line to the second fetch.
    pub(super) fn refetch_status(&mut self, status: Status) {
        match status {
            Status::Ok => {
                let scanner = BodyScanner::new(self.config.rules.max_body_line);
                self.server_state = ServerState::Body(scanner, BodyMode::Refetch);
            }
            // Deleted by another session meanwhile, say: the driver withholds it.
            Status::Err => {
                self.pending.pop_front();
                self.server_state = ServerState::AwaitingVerdict;
                self.events.push_back(Event::MessageRefetchRefused);
            }
            Status::Continue => {
                self.fail_client("[SYS/TEMP] invalid response from server");
                self.violation(Side::Server, Violation::ContinuationOutsideSasl);
            }
        }
    }

    /// Bytes of the second fetch's body, for the driver only.
    pub(super) fn refetch_bytes(&mut self, bytes: &[u8], done: bool) {
        self.events.push_back(Event::MessageData(bytes.to_vec()));
        if done {
            self.pending.pop_front();
            self.server_state = ServerState::AwaitingVerdict;
            self.events.push_back(Event::MessageEnd);
        }
    }
}
