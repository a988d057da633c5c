//! popgate's POP3 core, sans-IO: the codec pieces and the session state machine.
//!
//! Nothing here touches a socket, a file or the clock (this crate has no tokio and no socket
//! crate, and `clippy.toml` bans the std APIs that would); `popgate::relay` drives it.
//! RFC 1939, 2449 (CAPA, PIPELINING, RESP-CODES), 2595 (STLS) and 5034 (SASL).

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
    ClientStls, CloseReason, Delivery, Event, Pop3State, Session, SessionConfig, SessionRules,
    SessionStats, Side, UpstreamStls,
};
pub use violation::Violation;
