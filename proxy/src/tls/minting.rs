//! Outbound client certificates: leaves minted by the Proxy Authority (`pki/ca.*`), or by the
//! untrusted CA (`pki/untrusted-ca.*`) when the upstream certificate is invalid, as rustls
//! server configurations.
//!
//! Process-wide, surviving reloads: one leaf key (and the rustls signing key built from it
//! once), one [`CertCache`] of minted leaves, and a table of the rustls configurations built
//! for them, so concurrent sessions to the same server share one configuration instead of
//! each holding a copy of the chain. Per configuration (re)load: a [`Minting`] with the
//! authorities read from `pki/`. The minting itself (rcgen, ring) is `popgate-ca`'s.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::{Context, Result};
use popgate_ca::{Authority, CertCache, Fingerprint, KeyPair, MintError, MintedCert, Minter};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::ServerConfig;
use time::OffsetDateTime;

use super::config::{self as tls_config, MinVersion};

/// Minted leaves kept in the process-wide cache.
const CACHE_CAPACITY: usize = 4096;
/// Above this many entries, configurations no session uses are dropped from the table.
const CONFIGS_SWEEP_AT: usize = 1024;

/// The authorities of one configuration, ready to mint.
pub struct Minting {
    trusted: Minter,
    untrusted: Option<Minter>,
}

/// What the client's certificate must look like.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// Mirror the upstream server's end-entity certificate; `trusted` says whether it passed
    /// validation (else it is mirrored with the untrusted CA).
    Mirror {
        /// The upstream's end-entity certificate.
        upstream: &'a CertificateDer<'static>,
        /// It passed the profile's validation.
        trusted: bool,
    },
    /// No upstream certificate to mirror: a leaf naming only this host. `trusted` is false
    /// when the server leg is not validated TLS (plaintext, fallback, hold-down): then the
    /// untrusted CA signs it, so plaintext never looks secure to the client (SPEC §4).
    Host {
        /// The name the leaf carries.
        name: &'a str,
        /// The server leg is TLS and its certificate passed validation.
        trusted: bool,
    },
}

/// Why no certificate could be made for the client.
#[derive(Debug, thiserror::Error)]
pub enum MintFailure {
    /// The upstream certificate is invalid (or there is no validated server leg) and there
    /// is no untrusted CA to sign the client's certificate with.
    #[error("the server leg is not validated TLS and pki/untrusted-ca.crt is missing")]
    NoUntrustedCa,
    /// The CA crate refused.
    #[error("minting failed")]
    Mint(#[from] MintError),
    /// rustls refused the key (our bug).
    #[error("building the TLS configuration failed")]
    Config(#[source] rustls::Error),
}

impl Minting {
    /// Reads `pki/ca.crt` + `pki/ca.key` and, when `with_untrusted` (a policy mirrors
    /// invalid certificates) and present, `pki/untrusted-ca.crt` + `pki/untrusted-ca.key`
    /// under `dir`; `None` without a Proxy Authority.
    ///
    /// # Errors
    /// Unreadable or unusable CA material, or no leaf key could be made.
    pub fn load(dir: &Path, with_untrusted: bool) -> Result<Option<Minting>> {
        let Some(trusted) = authority(dir, "ca")? else {
            return Ok(None);
        };
        let untrusted = if with_untrusted {
            authority(dir, "untrusted-ca")?
        } else {
            None
        };
        let process = process()?;
        let minter = |authority| -> Result<Minter> {
            let key = KeyPair::try_from(process.leaf_key.secret_pkcs8_der())
                .context("loading the leaf key")?;
            Ok(Minter::new(Arc::new(authority), key))
        };
        Ok(Some(Minting {
            trusted: minter(trusted)?,
            untrusted: untrusted.map(minter).transpose()?,
        }))
    }

    /// The server configuration showing the client a certificate for `subject`: from the
    /// process-wide cache when another session already needed it.
    ///
    /// Blocks for one CA signature on a miss (well under a millisecond with ECDSA, a couple
    /// with RSA; see `popgate_ca::CertCache`).
    ///
    /// # Errors
    /// [`MintFailure`].
    pub fn server_config(
        &self,
        subject: Subject<'_>,
        min: MinVersion,
    ) -> Result<Arc<ServerConfig>, MintFailure> {
        let process = process_ready();
        let now = OffsetDateTime::now_utc();
        let minted = match subject {
            Subject::Mirror { upstream, trusted } => {
                let minter = if trusted {
                    &self.trusted
                } else {
                    self.untrusted.as_ref().ok_or(MintFailure::NoUntrustedCa)?
                };
                process.cache.get_or_mint(minter, upstream, now)?
            }
            Subject::Host { name, trusted } => {
                let minter = if trusted {
                    &self.trusted
                } else {
                    self.untrusted.as_ref().ok_or(MintFailure::NoUntrustedCa)?
                };
                process.cache.get_or_mint_for_host(minter, name, now)?
            }
        };
        process.config_for(&minted, min)
    }
}

impl fmt::Debug for Minting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minting")
            .field("trusted", &self.trusted)
            .field("untrusted", &self.untrusted)
            .finish()
    }
}

/// What every configuration of the process shares.
struct Process {
    leaf_key: PrivatePkcs8KeyDer<'static>,
    signing_key: Arc<dyn SigningKey>,
    cache: CertCache,
    /// Configurations built for minted leaves, by leaf fingerprint and version floor. Held
    /// past their last session, because each carries the session-ticket key its clients
    /// resume with; swept of unused ones above `CONFIGS_SWEEP_AT` entries (a few KiB each).
    configs: Mutex<HashMap<(Fingerprint, MinVersion), Arc<ServerConfig>>>,
}

static PROCESS: OnceLock<Process> = OnceLock::new();

/// The certificate cache's counters, read by the metrics exporter at each scrape.
#[derive(Debug)]
pub struct CacheCounts;

impl crate::metrics::CertificateCounts for CacheCounts {
    fn minted(&self) -> u64 {
        PROCESS.get().map_or(0, |p| p.cache.minted())
    }

    fn hits(&self) -> u64 {
        PROCESS.get().map_or(0, |p| p.cache.hits())
    }
}

fn process() -> Result<&'static Process> {
    if let Some(process) = PROCESS.get() {
        return Ok(process);
    }
    let key = popgate_ca::generate_leaf_key().context("generating the leaf key")?;
    let leaf_key = PrivatePkcs8KeyDer::from(key.serialize_der());
    let signing_key = tls_config::provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(leaf_key.clone_key()))
        .context("loading the leaf key into rustls")?;
    let capacity = NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN);
    // A racing first caller may have set it meanwhile; either key is as good.
    Ok(PROCESS.get_or_init(|| Process {
        leaf_key,
        signing_key,
        cache: CertCache::new(capacity),
        configs: Mutex::new(HashMap::new()),
    }))
}

fn process_ready() -> &'static Process {
    // A `Minting` exists only after `process()` succeeded (`Minting::load`).
    PROCESS
        .get()
        .unwrap_or_else(|| unreachable!("Minting built without the process state"))
}

impl Process {
    fn config_for(
        &self,
        minted: &MintedCert,
        min: MinVersion,
    ) -> Result<Arc<ServerConfig>, MintFailure> {
        let key = (Fingerprint::of(minted.leaf()), min);
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = configs.get(&key) {
            return Ok(config.clone());
        }
        let certified = CertifiedKey::new(minted.chain().to_vec(), self.signing_key.clone());
        let config =
            tls_config::server_config_with_resolver(Arc::new(Fixed(Arc::new(certified))), min)
                .map_err(MintFailure::Config)?;
        if configs.len() >= CONFIGS_SWEEP_AT {
            configs.retain(|_, config| Arc::strong_count(config) > 1);
        }
        configs.insert(key, config.clone());
        Ok(config)
    }
}

/// Always the same certificate (one configuration per minted leaf).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn authority(dir: &Path, stem: &str) -> Result<Option<Authority>> {
    let cert = dir.join(format!("pki/{stem}.crt"));
    let key = dir.join(format!("pki/{stem}.key"));
    if !cert.exists() {
        return Ok(None);
    }
    let cert_pem = std::fs::read(&cert).with_context(|| format!("reading pki/{stem}.crt"))?;
    let key_pem = std::fs::read(&key).with_context(|| format!("reading pki/{stem}.key"))?;
    let authority = Authority::from_pem(&cert_pem, &key_pem, OffsetDateTime::now_utc())
        .with_context(|| format!("pki/{stem}.crt"))?;
    Ok(Some(authority))
}
