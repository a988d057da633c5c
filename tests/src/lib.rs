//! Test harness for popgate's integration tests: the one place for setup helpers.
//!
//! Integration tests in `tests/tests/*.rs` run real peers on loopback ports chosen at run
//! time: Dovecot ([`Dovecot`]), popgate itself ([`Popgate`], configured through
//! [`ConfigDir`]), real clients ([`clients`]: Python poplib, curl, fetchmail), a raw
//! byte-exact client ([`Pop3Client`]) and a scripted hostile server ([`FakeServer`]) for what
//! no real server does. Every process and thread a helper starts is stopped when its guard is
//! dropped.
//!
//! A test states the peers it needs first with [`require_peers!`]: under `CI=true` a missing
//! peer fails the test and names the peer; elsewhere the test is skipped with a loud message
//! on stderr.
//!
//! Nothing here synchronises with `sleep`: helpers wait for a condition (a port accepting,
//! a greeting, a log line, a process exit) under a bounded deadline ([`wait_until`]).

#![warn(missing_docs)]

pub mod admin_cli;
pub mod clamd;
pub mod clients;
pub mod corpus;
pub mod diff;
pub mod dovecot;
pub mod fake_server;
pub mod live_config;
pub mod netns;
pub mod openssl_session;
pub mod peers;
pub mod pki;
pub mod pop3_client;
pub mod popgate;
pub mod ports;
pub mod process;
pub mod sasl;
pub mod skip;
pub mod strict_x509;
pub mod threads;
pub mod tls_probe;

pub use clients::{Account, ClientTls};
pub use corpus::{Corpus, Message};
pub use diff::assert_bytes_eq;
pub use dovecot::{Dovecot, DovecotOptions};
pub use fake_server::{FakeServer, Reply, Script};
pub use peers::Peer;
pub use pki::TestPki;
pub use pop3_client::Pop3Client;
pub use popgate::{ConfigDir, Popgate};
pub use ports::{free_port, wait_for_accept, wait_until};
