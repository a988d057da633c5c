//! popgate's configuration model: JSON parsing, validation, and policy selection.
//!
//! The caller (the `proxy` crate) reads the files of the configuration directory and hands
//! their bytes over as [`Sources`]; [`Config::from_sources`] returns an immutable, checked
//! [`Config`] or every [`ConfigError`] found, each naming file and JSON path. The model is
//! what SPEC §2–§4 describe: global settings, policies, proxy actions, TLS profiles.
//! [`Config::select`] picks the policy for a connection, and [`set_enabled`] rewrites a
//! policy file's `enabled` flag for `popgate policy enable|disable`.
//!
//! No I/O happens here: no files, sockets, or clock.

#![warn(missing_docs)]

mod action;
mod address;
mod check;
mod config;
pub mod defaults;
mod enable;
mod endpoint;
mod error;
mod global;
mod pattern;
mod policy;
pub mod raw;
mod salvage;
mod select;
mod template;
mod tls_profile;

pub use action::{Antivirus, AuthMethod, Authentication, ProxyAction, TlsAction};
pub use address::{AddressMatcher, BadAddress};
pub use config::{Config, Source, Sources};
pub use enable::{set_enabled, EnableError};
pub use endpoint::{Clamd, Upstream, UpstreamPorts};
pub use error::{ConfigError, ConfigErrorKind, RefTarget};
pub use global::{Global, Limits, State};
pub use pattern::{ContentTypePattern, Glob, HeaderPattern, Pattern, Rule, RuleSet};
pub use policy::{Policy, PortKind, Ports};
pub use raw::{
    CertificateValidation, Direction, Interception, InvalidCertificate, LogFormat, LogLevel,
    MinTlsVersion, OnError, Oversize, TlsActionKind, TlsSupport, UpstreamTls, Verdict,
};
pub use select::ConnectionFacts;
pub use template::{DenyContext, DenyMessage};
pub use tls_profile::TlsProfile;
