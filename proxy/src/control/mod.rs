//! The control socket (SPEC §4 `control`, §6 `status`, `sessions`): how the CLI asks the
//! running daemon what it is doing.
//!
//! `protocol.rs` is the wire format (one JSON object per line, versioned), `status.rs` the
//! daemon's record of itself (generation, last reload, listeners), `server.rs` the socket
//! the daemon serves (bound before the privilege drop), `client.rs` what the CLI commands
//! call. The session registry it reports on lives in `crate::registry`.

pub mod client;
pub mod protocol;
pub mod server;
pub mod status;

pub use status::DaemonStatus;
