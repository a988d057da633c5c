//! The byte pump: moves bytes between the two legs and the POP3 core until the core asks
//! for something that needs async work of its own (a TLS handshake, a tunnel, an
//! inspection, the end).
//!
//! No POP3 knowledge here. Reads go through one buffer per runtime thread, borrowed only
//! for one poll, so a session waiting for its peers holds no read buffer at all (memory per
//! idle session is one of our targets); writes go straight from the core's output buffers.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Sleep;
use tracing::info;

use super::message_job::MessageJob;
use super::session_end::SessionEnd;
use crate::config::prepared::Prepared;
use crate::metrics::{self, Direction};
use crate::net::conn::Conn;
use crate::pop3::{Event, Session, Side};

/// Bytes read per poll from one leg. TLS records are at most 16 KiB of plaintext.
const READ_CHUNK: usize = 32 * 1024;

thread_local! {
    /// The read buffer of every session polled on this runtime thread: one per thread, not
    /// per session (an idle session holds none), and initialised once, not zeroed for every
    /// read as a buffer on the stack would be (4 % of a bulk RETR's CPU). A poll never
    /// nests inside another on one thread, so the borrow is never contended.
    static READ_BUFFER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

/// Why the pump stopped.
#[derive(Debug)]
pub enum Interrupt {
    /// Flush output to `side`, run the TLS handshake, then [`Session::tls_established`].
    StartTls(Side),
    /// Flush, then copy bytes opaquely.
    Tunnel,
    /// A RETR/TOP body starts: the driver sets up its [`MessageJob`].
    MessageStart {
        /// The message number.
        number: u32,
        /// For a TOP: the body lines asked for.
        top_lines: Option<u32>,
    },
    /// The message job's memory is full: [`MessageJob::spill`] before reading on.
    Spill,
    /// The body is complete (dot-stuffed, terminator line included): [`MessageJob::finish`].
    MessageEnd,
    /// The body being collected passed the action's `max_message_size`:
    /// [`MessageJob::oversize`].
    Oversize,
    /// The server refused to send the message again: [`MessageJob::refetch_refused`].
    RefetchRefused,
    /// A reload happened: apply it before the next command is read (SPEC §4).
    Reconfigure,
    /// The session is over (the core closed it, or a socket failed).
    Ended(SessionEnd),
}

/// Byte counters for the session summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct ByteCounts {
    /// Read from the client.
    pub from_client: u64,
    /// Read from the server.
    pub from_server: u64,
}

/// Everything the pump borrows for one run.
pub struct Pump<'a> {
    /// The POP3 core.
    pub session: &'a mut Session,
    /// The client leg.
    pub client: &'a mut Conn,
    /// The server leg.
    pub server: &'a mut Conn,
    /// The core's deadline, re-armed as it moves.
    pub timer: Pin<&'a mut Sleep>,
    /// Counters.
    pub bytes: &'a mut ByteCounts,
    /// The message being downloaded, if any: body chunks go to it.
    pub job: Option<&'a mut MessageJob>,
    /// Reloads the session follows: a newer configuration interrupts before the next read.
    pub reload: Option<&'a watch::Receiver<Arc<Prepared>>>,
}

impl Pump<'_> {
    /// Runs until the core needs something else done.
    ///
    /// Cancel safety: safe; every byte read is handed to the core before the poll returns.
    pub async fn run(&mut self) -> Interrupt {
        let mut dirty = [false, false];
        poll_fn(|cx| self.poll(cx, &mut dirty)).await
    }

    fn poll(&mut self, cx: &mut Context<'_>, dirty: &mut [bool; 2]) -> Poll<Interrupt> {
        loop {
            if let Some(interrupt) = self.drain_events() {
                return Poll::Ready(interrupt);
            }
            if self
                .reload
                .is_some_and(|r| r.has_changed().unwrap_or(false))
            {
                return Poll::Ready(Interrupt::Reconfigure);
            }
            let mut progress = false;
            for side in [Side::Client, Side::Server] {
                match self.poll_write_side(cx, side, dirty) {
                    Ok(moved) => progress |= moved,
                    Err(err) => return Poll::Ready(Interrupt::Ended(SessionEnd::io(side, err))),
                }
            }
            for side in [Side::Client, Side::Server] {
                if !self.session.wants_read(side) {
                    continue;
                }
                match self.poll_read_side(cx, side) {
                    Ok(moved) => progress |= moved,
                    Err(err) => return Poll::Ready(Interrupt::Ended(SessionEnd::io(side, err))),
                }
            }
            progress |= self.poll_timer(cx);
            if !progress {
                // Waiting for a peer: buffers that hold nothing go, so a session idle after
                // a download costs what it did before one (37.8 against 30.5 KiB, issue 16).
                self.session.release_idle_memory();
                return Poll::Pending;
            }
        }
    }

    fn drain_events(&mut self) -> Option<Interrupt> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::StartTls(side) => return Some(Interrupt::StartTls(side)),
                Event::Tunnel => return Some(Interrupt::Tunnel),
                Event::Close(reason) => return Some(Interrupt::Ended(SessionEnd::Core(reason))),
                Event::LoggedIn { user } => {
                    let user = user.as_deref().unwrap_or("");
                    tracing::Span::current().record("user", user);
                    crate::registry::with_current(|e| e.logged_in(user));
                    info!(user, "login succeeded");
                }
                // The success is logged from `LoggedIn` above.
                Event::Login(attempt) => super::login_log::record(&attempt),
                Event::MessageStart { number, top_lines } => {
                    return Some(Interrupt::MessageStart { number, top_lines });
                }
                Event::MessageData(chunk) => {
                    if let Some(job) = self.job.as_deref_mut() {
                        job.push(chunk, self.session);
                        if job.wants_spill() {
                            return Some(Interrupt::Spill);
                        }
                    }
                }
                Event::MessageEnd => return Some(Interrupt::MessageEnd),
                Event::MessageOversize => return Some(Interrupt::Oversize),
                Event::MessageRefetchRefused => return Some(Interrupt::RefetchRefused),
            }
        }
        None
    }

    fn conn(&mut self, side: Side) -> &mut Conn {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }

    /// Writes what the core has for `side`; flushes TLS records once the output is empty.
    fn poll_write_side(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
        dirty: &mut [bool; 2],
    ) -> io::Result<bool> {
        let index = side as usize;
        let mut progress = false;
        while !self.session.output(side).is_empty() {
            let (session, conn) = match side {
                Side::Client => (&mut *self.session, &mut *self.client),
                Side::Server => (&mut *self.session, &mut *self.server),
            };
            match Pin::new(conn).poll_write(cx, session.output(side)) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    session.advance_output(side, n, Instant::now());
                    dirty[index] = true;
                    progress = true;
                }
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Pending => return Ok(progress),
            }
        }
        if dirty[index] {
            match Pin::new(self.conn(side)).poll_flush(cx) {
                Poll::Ready(Ok(())) => dirty[index] = false,
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Pending => {}
            }
        }
        Ok(progress)
    }

    fn poll_read_side(&mut self, cx: &mut Context<'_>, side: Side) -> io::Result<bool> {
        READ_BUFFER.with_borrow_mut(|chunk| self.read_into(cx, side, &mut chunk[..]))
    }

    fn read_into(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
        chunk: &mut [u8],
    ) -> io::Result<bool> {
        let mut buf = ReadBuf::new(chunk);
        match Pin::new(self.conn(side)).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let now = Instant::now();
                let data = buf.filled();
                if data.is_empty() {
                    self.session.handle_eof(side, now);
                } else {
                    let n = data.len() as u64;
                    crate::registry::with_current(|e| e.add_bytes(side == Side::Client, n));
                    match side {
                        Side::Client => {
                            self.bytes.from_client += data.len() as u64;
                            metrics::bytes(Direction::ClientToServer, data.len() as u64);
                        }
                        Side::Server => {
                            self.bytes.from_server += data.len() as u64;
                            metrics::bytes(Direction::ServerToClient, data.len() as u64);
                        }
                    }
                    self.session.handle_bytes(side, data, now);
                    let messages = self.session.stats().messages;
                    crate::registry::with_current(|e| e.set_messages(messages));
                }
                Ok(true)
            }
            Poll::Ready(Err(err)) => Err(err),
            Poll::Pending => Ok(false),
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.session.poll_timeout() else {
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.session.handle_timeout(Instant::now());
            return true;
        }
        false
    }
}

/// Writes everything the core has for `side`, then flushes.
///
/// Cancel safety: not cancel safe (partial writes); call it outside `select!`.
pub async fn flush_side(session: &mut Session, conn: &mut Conn, side: Side) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    while !session.output(side).is_empty() {
        let n = conn.write(session.output(side)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        session.advance_output(side, n, Instant::now());
    }
    conn.flush().await
}
