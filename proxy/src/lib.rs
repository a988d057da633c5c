//! popgate: a transparent, TLS-inspecting POP3 proxy for Linux gateways.
//!
//! The POP3 core in [`pop3`] (the `popgate-pop3` crate, re-exported here) is sans-IO;
//! everything that touches sockets, files, signals or the clock lives in the other modules
//! of this crate.

pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod files;
pub mod log_direct;
pub mod log_line;
mod log_text;
pub mod log_writer;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod privileges;
pub mod registry;
pub mod relay;
pub mod route;
pub mod runtime;
pub mod shared;
pub mod spool;
pub mod state;
pub mod tls;
pub mod watch;

pub use popgate_pop3 as pop3;
