//! popgate's certificate authority: the Proxy Authority and untrusted CA, the Proxy Server
//! certificate, CSRs, and minting leaves that mirror upstream servers' certificates, with a
//! bounded single-flight cache of minted leaves.
//!
//! No I/O: PEM or DER bytes in, PEM strings or DER out, and the time is always the caller's
//! `now`. Reading and writing `pki/` (and its 0600 modes), the clock, and TLS belong to the
//! `proxy` crate. ring makes every signature; the `rsa` crate only generates RSA keys.
//!
//! Typical use:
//! - `ca init`: [`Authority::generate`] (twice: Proxy Authority and untrusted CA).
//! - `ca import`, `run`: [`Authority::from_pem`] (with [`split_combined_pem`] for a single file).
//! - `ca csr` / `ca install`: [`csr::request`] / [`csr::pair`].
//! - `cert server`: [`server_cert::generate`] / [`server_cert::check_pair`].
//! - `cert show`: [`CertInfo::from_pem`].
//! - sessions: one [`Minter`] per authority with one [`generate_leaf_key`] key, one
//!   [`CertCache`], then [`CertCache::get_or_mint`] per outbound TLS session.

#![warn(missing_docs)]

mod authority;
mod cert_cache;
mod cert_info;
pub mod csr;
mod dn;
mod error;
mod extension;
mod fingerprint;
mod key;
mod mint;
mod pem_bundle;
mod serial;
pub mod server_cert;
#[cfg(test)]
mod strict_der;
mod validity;

pub use authority::{Authority, GeneratedAuthority};
pub use cert_cache::{CacheKey, CertCache};
pub use cert_info::{CertInfo, EXPIRY_WARNING_DAYS};
pub use csr::Csr;
pub use dn::{format_dn, parse_dn};
pub use error::{CaError, DnError, MintError};
pub use fingerprint::Fingerprint;
pub use key::{generate_leaf_key, key_pair_from_pem, KeyType};
pub use mint::{MintedCert, Minter, HOST_LEAF_DAYS};
pub use pem_bundle::{certificates_from_pem, private_key_from_pem, split_combined_pem};
pub use validity::MAX_DAYS;

/// rcgen's key pair, re-exported so callers need not depend on rcgen to hold the leaf key.
pub use rcgen::KeyPair;
