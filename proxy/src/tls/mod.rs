//! TLS for both legs: configurations, upstream certificate judgement, minted client
//! certificates, the opportunistic hold-down, and the handshakes.

pub mod config;
pub mod failure;
pub mod holddown;
pub mod legs;
pub mod minting;
mod valid_chains;
pub mod verify;
