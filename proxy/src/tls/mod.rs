//! TLS for both legs: configurations, upstream certificate judgement, and the handshakes.

pub mod config;
pub mod legs;
pub mod verify;
