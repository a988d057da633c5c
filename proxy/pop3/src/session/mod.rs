//! The POP3 session core: one client, one server, every byte between them accounted for.
//!
//! # Calling contract
//! The core does no I/O and reads no clock (the quinn-proto split). A driver owns the two
//! sockets and, for every event on them, calls one `handle_*` method, then drains all work:
//!
//! 1. input: [`Session::handle_bytes`] (bytes read from a side), [`Session::handle_eof`],
//!    [`Session::handle_timeout`] (when [`Session::poll_timeout`] has passed),
//!    [`Session::tls_established`] (after a [`Event::StartTls`] handshake completed),
//!    [`Session::deliver_message`] (after [`Event::MessageEnd`]);
//! 2. output: [`Session::poll_event`] until `None`, then write [`Session::output`] for each
//!    side and report what was written with [`Session::advance_output`];
//! 3. read a side only while [`Session::wants_read`] says so (backpressure: no more than
//!    256 KiB wait for either side, popgate's own replies included, SPEC §5; no bytes may
//!    be read from a side whose TLS handshake is pending: those belong to rustls; and none
//!    from a client that closed its sending half, while the core still relays the replies
//!    to what it sent, see [`Session::client_finished_sending`]);
//! 4. stop when [`Session::is_finished`]: flush what is left for the client, then close both.
//!
//! The core forwards the server's bytes unchanged unless the proxy action says otherwise
//! (CAPA rewriting, inspection verdicts). It never guesses TLS from bytes: STLS is a state.

mod client;
mod refetch;
mod server;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::body::{is_whole_body, BodyScanner};
use super::capa::{AuthPolicy, Capabilities};
use super::command::Verb;
use crate::input::InputBuffer;
use crate::login::{LoginAttempt, LoginMechanism};
use crate::Violation;

/// One of the two peers of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The mail client.
    Client,
    /// The real POP3 server.
    Server,
}

/// How a client's `STLS` is answered (SPEC §2 and the action's `tls.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStls {
    /// The proxy terminates TLS itself and inspects (`inspect`).
    Terminate,
    /// The command goes to the server and the session becomes an opaque tunnel (`allow`).
    Tunnel,
    /// Refused with `-ERR` and not offered in CAPA (`drop`, or not possible here).
    Refuse,
    /// As [`ClientStls::Terminate`] while the server leg is TLS (or starts it with the
    /// client's STLS); refused and not offered while it is plaintext. For outbound
    /// sessions under `invalid_certificate: block`, whose client handshake would be refused
    /// over a plaintext server leg: the client hears `-ERR` instead of a `+OK` followed by
    /// a failed handshake (SPEC §4).
    TerminateOverTls,
}

/// Whether the proxy starts TLS toward the server with STLS on its own (SPEC §4 upstream_tls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamStls {
    /// Never (the server leg is already TLS, or plaintext is wanted).
    Never,
    /// Right after the greeting when the server offers it; plaintext otherwise.
    Opportunistic,
    /// Right after the greeting; a server without STLS ends the session.
    Mandatory,
    /// When the client asks for STLS, before answering it (`match`).
    WithClient,
}

/// The limits and policy a session runs under; built by the proxy from the checked config.
///
/// Two parts: what belongs to this connection (line limits, the greeting deadline, the
/// TLS plan of its legs) and the [`SessionRules`] that follow a reload, replaced whole by
/// [`Session::follow`] so no setting can be forgotten when the configuration changes.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Longest client command line, CRLF included (RFC 2449 §4: 255).
    pub max_command_line: usize,
    /// Longest SASL line (AUTH with an initial response, or a SASL reply); XOAUTH2 tokens
    /// are far longer than 255 octets.
    pub max_sasl_line: usize,
    /// Longest server status line, CRLF included (RFC 2449 §4: 512).
    pub max_status_line: usize,
    /// The server must greet (and any upstream STLS must finish) within this.
    pub greeting_timeout: Duration,
    /// The client leg is TLS already (implicit TLS port).
    pub client_tls: bool,
    /// What a client STLS gets.
    pub client_stls: ClientStls,
    /// When the proxy starts TLS toward the server itself.
    pub upstream_stls: UpstreamStls,
    /// The policy's rules: follow reloads.
    pub rules: Arc<SessionRules>,
}

/// The part of a session's configuration that follows reloads (SPEC §4): the policy's
/// login rules, limits and inspection, for commands and responses not yet started.
#[derive(Debug, Clone)]
pub struct SessionRules {
    /// Longest line within a multi-line response, line ending excluded (`max_line_length`).
    pub max_body_line: usize,
    /// A silent peer is dropped after this long once the session is up.
    pub idle_timeout: Duration,
    /// Only CAPA, STLS, NOOP and QUIT are accepted before the client leg is TLS
    /// (`starttls_on_pop3` on a `required` policy).
    pub commands_require_tls: bool,
    /// Logins are refused while the client leg is plaintext.
    pub login_requires_tls: bool,
    /// Which login methods are allowed.
    pub auth: AuthPolicy,
    /// Hand RETR and TOP bodies to the driver for inspection instead of streaming them.
    /// A TOP is then fetched from the server as RETR, so the driver can inspect the whole
    /// message and cut the result down: a TOP never shows what RETR would strip.
    pub inspect_messages: bool,
    /// An inspected body larger than this pauses with [`Event::MessageOversize`].
    pub max_inspected_size: u64,
}

impl Default for SessionConfig {
    /// The RFC limits and the default [`SessionRules`].
    fn default() -> SessionConfig {
        SessionConfig {
            max_command_line: 255,
            max_sasl_line: 16 * 1024,
            max_status_line: 512,
            greeting_timeout: Duration::from_secs(15),
            client_tls: false,
            client_stls: ClientStls::Refuse,
            upstream_stls: UpstreamStls::Never,
            rules: Arc::new(SessionRules::default()),
        }
    }
}

impl Default for SessionRules {
    /// A 10-minute idle timeout (RFC 1939 §3) and no policy restrictions.
    fn default() -> SessionRules {
        SessionRules {
            max_body_line: 8192,
            idle_timeout: Duration::from_secs(600),
            commands_require_tls: false,
            login_requires_tls: false,
            auth: AuthPolicy::allow_all(),
            inspect_messages: false,
            max_inspected_size: u64::MAX,
        }
    }
}

impl SessionConfig {
    /// This configuration with its rules changed by `change` (for building one).
    #[must_use]
    pub fn with_rules(mut self, change: impl FnOnce(&mut SessionRules)) -> SessionConfig {
        change(Arc::make_mut(&mut self.rules));
        self
    }
}

/// Work the driver must do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Flush [`Session::output`] for this side, then run a TLS handshake on it and call
    /// [`Session::tls_established`].
    StartTls(Side),
    /// Flush both outputs, then copy bytes opaquely both ways: the session is no longer
    /// POP3 (a client STLS passed through uninspected).
    Tunnel,
    /// A login succeeded; `user` is the clear-text user name when the method shows one.
    LoggedIn {
        /// The user name from USER, APOP or a SASL PLAIN/LOGIN response.
        user: Option<String>,
    },
    /// A login attempt completed (succeeded, failed, or refused by policy): for the log.
    /// A success is followed by [`Event::LoggedIn`]. Never carries the credential.
    Login(LoginAttempt),
    /// A RETR or TOP body begins; it arrives in [`Event::MessageData`] chunks, dot-stuffed as
    /// the server sent them; the last chunk ends with the terminator line (`.` CRLF).
    MessageStart {
        /// The message number the client asked for.
        number: u32,
        /// For a TOP, the number of body lines the client asked for.
        top_lines: Option<u32>,
    },
    /// The next bytes of the message being inspected.
    MessageData(Vec<u8>),
    /// The message is complete; answer with [`Session::deliver_message`].
    MessageEnd,
    /// The message being inspected passed `max_inspected_size`; the server is not read
    /// until the driver calls [`Session::oversize_pass`] or [`Session::oversize_discard`].
    MessageOversize,
    /// The server refused the second fetch of [`Session::refetch`]; answer with
    /// [`Session::deliver_message`] (the message cannot be judged: withhold it).
    MessageRefetchRefused,
    /// The session is over; flush what is left for the client and close both sides.
    Close(CloseReason),
}

/// Why a session ended: each differs in log level and metric label (STYLE §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// QUIT completed, or a peer closed when nothing was outstanding.
    Finished,
    /// A peer closed while a response or command was outstanding.
    PeerClosed(Side),
    /// A peer was silent for too long.
    TimedOut(Side),
    /// A peer broke the protocol.
    ProtocolViolation(Side, Violation),
    /// The session was refused by policy (e.g. mandatory upstream TLS unavailable).
    Refused(String),
}

impl CloseReason {
    /// A bounded snake_case label for log fields and metrics: the way the session ended,
    /// with the violation's own kind for a protocol violation.
    pub fn kind(&self) -> &'static str {
        match self {
            CloseReason::Finished => "finished",
            CloseReason::PeerClosed(_) => "peer_closed",
            CloseReason::TimedOut(_) => "timed_out",
            CloseReason::ProtocolViolation(_, violation) => violation.kind(),
            CloseReason::Refused(_) => "refused",
        }
    }
}

/// Human text for the log: `server broke the protocol: not a status line`.
impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = |side: &Side| match side {
            Side::Client => "client",
            Side::Server => "server",
        };
        match self {
            CloseReason::Finished => f.write_str("finished"),
            CloseReason::PeerClosed(side) => write!(f, "{} closed the connection", who(side)),
            CloseReason::TimedOut(side) => write!(f, "{} timed out", who(side)),
            CloseReason::ProtocolViolation(side, violation) => {
                write!(f, "{} broke the protocol: {violation}", who(side))
            }
            CloseReason::Refused(text) => write!(f, "refused: {text}"),
        }
    }
}

/// What the driver sends the client for an inspected message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The `+OK` line the server sent, then this body: dot-stuffed, terminator included.
    /// A whole body that is not framed as exactly one body (SPEC §5) is withheld with
    /// `-ERR [SYS/TEMP]` instead.
    Body(Vec<u8>),
    /// `-ERR [SYS/TEMP] text`: the message stays on the server for a later retry.
    TempFail(String),
}

/// The POP3 protocol state (RFC 1939 §3), for logs and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop3State {
    /// Before a successful login.
    Authorization,
    /// Logged in.
    Transaction,
    /// QUIT accepted after login: the server commits deletions.
    Update,
}

/// Counters the driver reports in the session summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Client commands handled.
    pub commands: u64,
    /// RETR and TOP bodies passed or inspected.
    pub messages: u64,
    /// The logged-in user name, when known.
    pub user: Option<String>,
}

/// One POP3 session between a client and a server; see the module doc for the contract.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: Pop3State,
    client_state: ClientState,
    server_state: ServerState,
    /// Responses still owed to the client, oldest first.
    pending: VecDeque<Pending>,
    client_in: InputBuffer,
    server_in: Vec<u8>,
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    events: VecDeque<Event>,
    /// The greeting, held until the server leg is set up (upstream STLS).
    held_greeting: Option<Vec<u8>>,
    /// The `+OK` line of a response whose body is collected (CAPA) or inspected.
    held_status: Option<Vec<u8>>,
    /// Part of the inspected message went out already ([`Session::deliver_partial`]).
    partially_delivered: bool,
    /// The message being inspected may be fetched again ([`Session::reserve_refetch`]):
    /// its number. Client commands wait until it is delivered.
    refetch_reserved: Option<u32>,
    /// Client commands are processed only once the client has the greeting.
    greeted: bool,
    server_tls: bool,
    client_tls: bool,
    server_caps: Option<Capabilities>,
    user_candidate: Option<String>,
    /// The login method of the attempt in progress (set when its command is forwarded).
    login_mechanism: Option<LoginMechanism>,
    /// SASL responses the client sent in the current exchange (initial response included).
    sasl_responses: u32,
    /// The client closed its sending half: what it sent is relayed and answered, then the
    /// session ends (a pipelined `DELE`/`QUIT` must reach the server).
    client_eof: bool,
    stats: SessionStats,
    started: Instant,
    last_activity: Instant,
    closing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Commands,
    /// Between AUTH and its final response: lines are SASL data, not commands. The exchange
    /// is lock-step (RFC 5034 §4): the client may send one line per server continuation,
    /// and lines sent while it is the server's turn wait unread, so they are classified by
    /// what the server's answer makes them (a response, or a command after the exchange).
    Sasl {
        /// The server sent a continuation the client has not answered yet.
        client_turn: bool,
    },
    /// After STLS was accepted and before the handshake: any byte is an injection.
    AwaitingTls,
    Tunnel,
}

#[derive(Debug)]
enum ServerState {
    Greeting,
    StatusLine,
    Body(BodyScanner, BodyMode),
    /// An inspected message is complete; waiting for [`Session::deliver_message`].
    AwaitingVerdict,
    /// After the server's `+OK` to our STLS: any byte is an injection.
    AwaitingTls,
    Tunnel,
}

#[derive(Debug)]
enum BodyMode {
    Stream,
    /// A CAPA body, collected to be rewritten (forwarded) or learnt from (internal).
    Capa(Vec<u8>),
    /// Handed to the driver as events; `size` counts what was handed over.
    Inspect {
        size: u64,
    },
    /// Oversize: waiting for the driver's decision.
    OversizeHold,
    /// Oversize and refused: scanned to its end, nothing forwarded.
    Discard,
    /// The second fetch of an inspected message: handed to the driver only.
    Refetch,
}

/// A response the client (or the proxy itself) is owed.
#[derive(Debug)]
enum Pending {
    /// A client command the server will answer; the answer goes to the client.
    Forwarded(Forwarded),
    /// A reply produced by the proxy, sent when it reaches the front (keeps pipelined order).
    Local(Vec<u8>),
    /// The client's STLS was accepted: at the front, `+OK` and the client handshake.
    ClientStls,
    /// A command the proxy sent on its own; the answer is consumed here.
    Internal(Internal),
    /// `RETR n` again, for the driver's inspection only ([`Session::refetch`]).
    Refetch,
}

#[derive(Debug, Clone, Copy)]
struct Forwarded {
    verb: Verb,
    multiline_on_ok: bool,
    number: Option<u32>,
    /// For a TOP sent to the server as RETR: the body lines the client asked for.
    top_lines: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Internal {
    /// CAPA to learn the server's capabilities (before STLS, and again after it).
    Capa,
    Stls,
}

/// Client bytes buffered before the greeting, or while a TLS setup is pending.
const MAX_EARLY_CLIENT_BYTES: usize = 4096;
/// Stop reading a side while this much output for the other side is unsent (SPEC §5).
pub const MAX_UNSENT: usize = 256 * 1024;
/// Pipelined commands accepted before the proxy stops reading the client.
const MAX_PENDING: usize = 256;
/// A CAPA body larger than this is not a capability list.
const MAX_CAPA_BODY: usize = 16 * 1024;

impl Session {
    /// A session whose server connection has just been made.
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        let client_tls = config.client_tls;
        Session {
            config,
            state: Pop3State::Authorization,
            client_state: ClientState::Commands,
            server_state: ServerState::Greeting,
            pending: VecDeque::new(),
            client_in: InputBuffer::default(),
            server_in: Vec::new(),
            to_client: Vec::new(),
            to_server: Vec::new(),
            events: VecDeque::new(),
            held_greeting: None,
            held_status: None,
            partially_delivered: false,
            refetch_reserved: None,
            greeted: false,
            server_tls: false,
            client_tls,
            server_caps: None,
            user_candidate: None,
            login_mechanism: None,
            sasl_responses: 0,
            client_eof: false,
            stats: SessionStats::default(),
            started: now,
            last_activity: now,
            closing: false,
        }
    }

    /// Replaces the rules (a reload): they apply to commands and responses not yet started.
    /// The per-connection part (limits, the TLS plan of the legs) stays.
    pub fn follow(&mut self, rules: Arc<SessionRules>) {
        self.config.rules = rules;
    }

    /// Marks the server leg as TLS from the start (implicit TLS toward the server).
    pub fn set_server_tls(&mut self) {
        self.server_tls = true;
    }

    /// Feeds bytes read from `side`.
    pub fn handle_bytes(&mut self, side: Side, data: &[u8], now: Instant) {
        if self.closing || data.is_empty() {
            return;
        }
        self.last_activity = now;
        match side {
            Side::Client => self.handle_client_bytes(data),
            Side::Server => self.handle_server_bytes(data),
        }
    }

    /// The peer on `side` closed its half of the connection.
    pub fn handle_eof(&mut self, side: Side, now: Instant) {
        self.last_activity = now;
        if self.closing {
            return;
        }
        match side {
            Side::Client => {
                // A half-close is how many clients end a pipelined `DELE n`/`QUIT`: what was
                // sent is forwarded and its replies relayed before the session ends (without
                // QUIT the server does not enter UPDATE: nothing is deleted).
                self.client_eof = true;
                if !self.greeted {
                    // Nothing was answered yet, and nothing will be asked of the server.
                    let reason = if self.pending.is_empty() {
                        CloseReason::Finished
                    } else {
                        CloseReason::PeerClosed(Side::Client)
                    };
                    self.close(reason);
                } else if matches!(
                    self.client_state,
                    ClientState::AwaitingTls | ClientState::Tunnel
                ) {
                    self.close(CloseReason::PeerClosed(Side::Client));
                } else {
                    self.process_client_input();
                }
            }
            Side::Server => self.server_closed(),
        }
    }

    /// The TLS handshake requested by [`Event::StartTls`] completed on `side`.
    pub fn tls_established(&mut self, side: Side, now: Instant) {
        self.last_activity = now;
        match side {
            Side::Client => {
                self.client_tls = true;
                self.client_state = ClientState::Commands;
                self.process_client_input();
            }
            Side::Server => {
                self.server_tls = true;
                self.server_state = ServerState::StatusLine;
                // RFC 2595 §4: what was learnt before TLS may have been forged; ask again.
                self.server_caps = None;
                // Nothing can be outstanding ahead of it: STLS needed an empty queue, so it
                // goes first, before the client's own pending `+OK` to STLS.
                self.to_server.extend_from_slice(b"CAPA\r\n");
                self.pending.push_front(Pending::Internal(Internal::Capa));
            }
        }
    }

    /// Sends the client the first bytes of an inspected message before it is complete:
    /// the seam for inspection that streams parts already decided. The held `+OK` goes out
    /// with the first call; [`Session::deliver_message`] completes the body later. Once
    /// something was sent, the message can no longer be withheld: a later
    /// [`Delivery::TempFail`] ends the session without a terminator instead.
    pub fn deliver_partial(&mut self, bytes: &[u8], now: Instant) {
        self.last_activity = now;
        let inspecting = matches!(
            self.server_state,
            ServerState::AwaitingVerdict | ServerState::Body(_, BodyMode::Inspect { .. })
        );
        if !inspecting || bytes.is_empty() {
            return;
        }
        if let Some(status) = self.held_status.take() {
            self.to_client.extend_from_slice(&status);
        }
        self.partially_delivered = true;
        self.to_client.extend_from_slice(bytes);
    }

    /// The driver's answer to [`Event::MessageEnd`].
    pub fn deliver_message(&mut self, delivery: Delivery, now: Instant) {
        self.last_activity = now;
        if !matches!(self.server_state, ServerState::AwaitingVerdict) {
            return;
        }
        let status_line = self.held_status.take().unwrap_or_default();
        let partial = std::mem::take(&mut self.partially_delivered);
        self.refetch_reserved = None;
        // The driver's body (re-stuffed after inspection) is held to the same framing rule
        // as the server's: one body, ended by the one terminator every reader agrees on.
        // A whole body only: after a partial delivery the rest cannot be judged alone.
        let delivery = match delivery {
            Delivery::Body(body) if !partial && !is_whole_body(&body) => {
                tracing::warn!("inspected message not framed as one body; withheld");
                Delivery::TempFail("message withheld, try again later".into())
            }
            other => other,
        };
        match delivery {
            Delivery::Body(body) => {
                self.to_client.extend_from_slice(&status_line);
                self.to_client.extend_from_slice(&body);
            }
            Delivery::TempFail(_) if partial => {
                // Part of the body is out: only a missing terminator tells the client.
                self.close(CloseReason::Refused(
                    "message withheld after partial delivery".into(),
                ));
                return;
            }
            Delivery::TempFail(text) => {
                self.to_client
                    .extend_from_slice(format!("-ERR [SYS/TEMP] {text}\r\n").as_bytes());
            }
        }
        self.server_state = ServerState::StatusLine;
        self.response_done();
        self.resume_server_input();
    }

    /// After [`Event::MessageOversize`]: send the client the held `+OK`, then `collected`
    /// (the body bytes so far, as handed over), and stream the rest uninspected.
    pub fn oversize_pass(&mut self, collected: &[u8], now: Instant) {
        self.last_activity = now;
        if let ServerState::Body(_, mode @ BodyMode::OversizeHold) = &mut self.server_state {
            *mode = BodyMode::Stream;
            let status = self.held_status.take().unwrap_or_default();
            self.to_client.extend_from_slice(&status);
            self.to_client.extend_from_slice(collected);
            self.resume_server_input();
        }
    }

    /// After [`Event::MessageOversize`]: read the rest of the body without forwarding it;
    /// [`Event::MessageEnd`] follows and the driver delivers a replacement.
    pub fn oversize_discard(&mut self, now: Instant) {
        self.last_activity = now;
        if let ServerState::Body(_, mode @ BodyMode::OversizeHold) = &mut self.server_state {
            *mode = BodyMode::Discard;
            self.resume_server_input();
        }
    }

    /// The next thing the driver must do, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes waiting to be written to `side`.
    pub fn output(&self, side: Side) -> &[u8] {
        match side {
            Side::Client => &self.to_client,
            Side::Server => &self.to_server,
        }
    }

    /// Frees the capacity of every buffer that holds nothing. The driver calls it when the
    /// session is about to wait for its peers: while it works, buffers keep their capacity
    /// from one read to the next; once it waits, a session that has downloaded a message
    /// should cost no more than one that has not (memory per idle session is a target).
    pub fn release_idle_memory(&mut self) {
        fn release(buf: &mut Vec<u8>) {
            if buf.is_empty() && buf.capacity() > 0 {
                *buf = Vec::new();
            }
        }
        release(&mut self.to_client);
        release(&mut self.to_server);
        release(&mut self.server_in);
        self.client_in.release_if_empty();
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.pending.is_empty() {
            self.pending = VecDeque::new();
        }
    }

    /// `n` bytes of [`Session::output`] for `side` were written.
    pub fn advance_output(&mut self, side: Side, n: usize, now: Instant) {
        if n > 0 {
            self.last_activity = now;
        }
        let buf = match side {
            Side::Client => &mut self.to_client,
            Side::Server => &mut self.to_server,
        };
        buf.drain(..n.min(buf.len()));
        // An idle session keeps no large buffers (memory per idle session is a target).
        if buf.is_empty() && buf.capacity() > 16 * 1024 {
            *buf = Vec::new();
        }
        if side == Side::Client && self.to_client.len() < MAX_UNSENT {
            self.resume_server_input();
        }
        if !self.output_full() {
            self.process_client_input();
        }
    }

    /// The client closed its sending half and the core is still relaying the replies to
    /// what it sent: the driver must keep writing to the client and reading the server
    /// (and not read the client) until [`Session::is_finished`].
    pub fn client_finished_sending(&self) -> bool {
        self.client_eof && !self.closing
    }

    /// Whether the driver should read from `side` now.
    pub fn wants_read(&self, side: Side) -> bool {
        if self.closing {
            return false;
        }
        match side {
            Side::Client => {
                !matches!(self.client_state, ClientState::Tunnel)
                    && !self.client_eof
                    && !self.output_full()
                    && self.pending.len() < MAX_PENDING
                    && self.client_in.len() <= self.config.max_sasl_line
                    && (self.greeted || self.client_in.len() < MAX_EARLY_CLIENT_BYTES)
            }
            Side::Server => {
                !matches!(
                    self.server_state,
                    ServerState::AwaitingVerdict
                        | ServerState::AwaitingTls
                        | ServerState::Tunnel
                        | ServerState::Body(_, BodyMode::OversizeHold)
                ) && self.to_client.len() < MAX_UNSENT
            }
        }
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closing {
            return None;
        }
        let idle = self.last_activity + self.config.rules.idle_timeout;
        if self.setting_up() {
            Some(idle.min(self.started + self.config.greeting_timeout))
        } else {
            Some(idle)
        }
    }

    /// The clock reached [`Session::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closing {
            return;
        }
        if self.setting_up() && now >= self.started + self.config.greeting_timeout {
            self.fail_client("[SYS/TEMP] server did not respond in time");
            self.close(CloseReason::TimedOut(Side::Server));
        } else if now >= self.last_activity + self.config.rules.idle_timeout {
            let silent = if self.pending.is_empty() {
                Side::Client
            } else {
                Side::Server
            };
            self.fail_client("[SYS/TEMP] idle timeout, closing connection");
            self.close(CloseReason::TimedOut(silent));
        }
    }

    /// The administrator ended the session (`popgate sessions kill`): the client gets
    /// `-ERR [SYS/TEMP] session ended by the administrator` unless a response is half
    /// delivered (an `-ERR` there would corrupt it), and the session closes.
    pub fn end_by_administrator(&mut self) {
        self.fail_client("[SYS/TEMP] session ended by the administrator");
        self.close(CloseReason::Refused(
            "ended by the administrator".to_owned(),
        ));
    }

    /// Whether the session is over; flush [`Session::output`] for the client, then close.
    pub fn is_finished(&self) -> bool {
        self.closing
    }

    /// The POP3 state.
    pub fn pop3_state(&self) -> Pop3State {
        self.state
    }

    /// Counters for the session summary.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The server's capabilities as last learnt (forgotten when TLS starts).
    pub fn server_capabilities(&self) -> Option<&Capabilities> {
        self.server_caps.as_ref()
    }

    /// Whether the client has been greeted (the server leg is set up).
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    /// Before the greeting: takes the client bytes buffered so far, for a new session on a
    /// new server connection (the opportunistic-TLS retry); nothing once greeted.
    pub fn take_early_client_input(&mut self) -> Vec<u8> {
        if self.greeted {
            return Vec::new();
        }
        self.client_in.take()
    }

    /// Bytes waiting to be written to `side` (SPEC §5 bounds them: a side is not read while
    /// more than 256 KiB wait for either side).
    pub fn unsent(&self, side: Side) -> usize {
        self.output(side).len()
    }

    /// Whether either output has reached the bound: client lines are not processed (their
    /// replies, forwarded or made here, would pile up) until the driver writes some out.
    fn output_full(&self) -> bool {
        self.to_client.len() >= MAX_UNSENT || self.to_server.len() >= MAX_UNSENT
    }

    /// Whether the greeting or an upstream TLS setup is still outstanding.
    fn setting_up(&self) -> bool {
        !self.greeted
    }

    /// Sends `-ERR text` to the client unless that could corrupt a response in progress.
    fn fail_client(&mut self, text: &str) {
        if !self.mid_response_to_client() && self.client_state != ClientState::Tunnel {
            self.to_client
                .extend_from_slice(format!("-ERR {text}\r\n").as_bytes());
        }
    }

    /// Whether part of a multi-line response has already gone to the client.
    fn mid_response_to_client(&self) -> bool {
        matches!(self.server_state, ServerState::Body(_, BodyMode::Stream))
            || self.partially_delivered
    }

    fn close(&mut self, reason: CloseReason) {
        if !self.closing {
            self.closing = true;
            self.to_server.clear();
            self.events.push_back(Event::Close(reason));
        }
    }

    fn send_internal(&mut self, command: Internal) {
        let line: &[u8] = match command {
            Internal::Capa => b"CAPA\r\n",
            Internal::Stls => b"STLS\r\n",
        };
        self.to_server.extend_from_slice(line);
        self.pending.push_back(Pending::Internal(command));
    }
}
