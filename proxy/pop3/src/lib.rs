//! popgate's POP3 core, sans-IO: the codec pieces and the session state machine.
//!
//! Nothing here touches a socket, a file or the clock (this crate has no tokio and no socket
//! crate, and `clippy.toml` bans the std APIs that would); `popgate::relay` drives it.
//! RFC 1939, 2449 (CAPA, PIPELINING, RESP-CODES), 2595 (STLS) and 5034 (SASL).
//!
//! [`Session`]'s type doc states the calling contract. What a driver wires beyond bytes:
//!
//! - **Why a session ended**: [`Event::Close`] carries a [`CloseReason`];
//!   [`CloseReason::ProtocolViolation`] names the side and a [`Violation`], whose
//!   [`Violation::kind`] is a bounded snake_case label for log fields and metrics (and
//!   [`CloseReason::kind`] one for every ending). `Display` on both is the log's human text.
//! - **Login results for the log** (issue 14): [`Event::Login`] with a [`LoginAttempt`] is
//!   emitted once per attempt when the server answers `PASS`, `APOP` or `AUTH mechanism`,
//!   or when policy refuses one (`USER`/`APOP`/`AUTH`; the `PASS` after a refused `USER` is
//!   not another attempt):
//!   `user` (from `USER`, `APOP`, or the SASL PLAIN/LOGIN response; `None` when not
//!   visible), `mechanism` (`Display`: `USER`, `APOP`, `SASL:PLAIN`, ...), `result`
//!   (`Display`: `ok`, `failed`, `refused_by_policy`) and the server's `resp_code`
//!   (`AUTH`, `SYS/TEMP`, ...; `AUTH` for a policy refusal). It never carries a credential.
//!   A success is also followed by [`Event::LoggedIn`], as before.
//! - **Backpressure** (SPEC §5): read a side only while [`Session::wants_read`]; it is
//!   false while more than [`MAX_UNSENT`] bytes wait for either side
//!   ([`Session::unsent`]), popgate's own replies included.
//! - **Half-close**: after the client's EOF the session goes on until the replies to what
//!   it sent are relayed ([`Session::client_finished_sending`]); `wants_read(Client)` is
//!   then false, so a driver that follows `wants_read` needs nothing more.
//! - **Framing**: a message whose end a lenient client could see elsewhere ends the session
//!   with a framing [`Violation`] ([`Violation::is_framing`]) and no terminator for it.

#![warn(missing_docs)]

pub mod body;
pub mod capa;
pub mod command;
mod input;
pub mod login;
pub mod session;
pub mod status;
pub mod violation;

pub use login::{LoginAttempt, LoginMechanism, LoginResult};
pub use session::MAX_UNSENT;
pub use session::{
    ClientStls, CloseReason, Delivery, Event, Pop3State, Session, SessionConfig, SessionStats,
    Side, UpstreamStls,
};
pub use violation::Violation;
