//! The inspection seam: what the client receives for a RETR or TOP body.
//!
//! The pump collects the body; this decides the [`Delivery`].

use std::time::Instant;

use crate::pop3::{Delivery, Session};

/// A complete RETR/TOP body from the server, dot-stuffed, terminator line included.
#[derive(Debug)]
pub struct CollectedMessage {
    /// The message number the client asked for.
    pub number: u32,
    /// TOP rather than RETR.
    pub partial: bool,
    /// The bytes as the server sent them.
    pub raw: Vec<u8>,
}

/// Decides what the client gets for `message` and hands it to the core.
///
/// Cancel safety: not cancel safe (the core waits for exactly one delivery).
pub async fn deliver(session: &mut Session, message: CollectedMessage) {
    session.deliver_message(Delivery::Body(message.raw), Instant::now());
}
