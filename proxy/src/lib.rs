//! popgate: a transparent, TLS-inspecting POP3 proxy for Linux gateways.
//!
//! The POP3 core in [`pop3`] is sans-IO; everything that touches sockets, files, signals
//! or the clock lives in the other modules of this crate.

pub mod pop3;
