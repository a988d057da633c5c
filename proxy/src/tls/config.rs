//! Building rustls configurations: one crypto provider (ring), TLS 1.2 and 1.3 only, and
//! certificate material read from the files an administrator manages.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::verify::DeferredChainVerifier;

/// The lowest TLS version a profile accepts; there is nothing below 1.2 to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// The one crypto provider of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

static TLS12_AND_UP: [&SupportedProtocolVersion; 2] = [&TLS13, &TLS12];
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&TLS13];

fn versions(min: MinVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min {
        MinVersion::Tls12 => &TLS12_AND_UP,
        MinVersion::Tls13 => &TLS13_ONLY,
    }
}

/// A TLS server configuration presenting `chain` (leaf first) with `key`.
///
/// # Errors
/// The key does not match the certificate or is of an unsupported type.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    min: MinVersion,
) -> Result<Arc<ServerConfig>> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(min))
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("pairing certificate and key")?;
    Ok(Arc::new(config))
}

/// A TLS server configuration whose certificate `resolver` chooses (minted leaves).
///
/// # Errors
/// Only if the provider cannot do the requested versions.
pub fn server_config_with_resolver(
    resolver: Arc<dyn ResolvesServerCert>,
    min: MinVersion,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(min))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    Ok(Arc::new(config))
}

/// A TLS client configuration whose chain checks are deferred to `UpstreamValidator`.
///
/// # Errors
/// Only if the provider cannot do the requested versions.
pub fn client_config(min: MinVersion) -> Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(min))
        .context("choosing TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(DeferredChainVerifier::new(provider())))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Trusted roots: the system store and/or PEM files.
///
/// # Errors
/// A CA file that cannot be read or holds no certificate.
pub fn roots(system: bool, ca_files: &[impl AsRef<Path>]) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    if system {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // The system store holds the odd certificate webpki rejects; skip those.
            let _ = store.add(cert);
        }
    }
    for file in ca_files {
        let file = file.as_ref();
        let certs = read_certs(file)?;
        for cert in certs {
            store
                .add(cert)
                .with_context(|| format!("{}: not a usable CA certificate", file.display()))?;
        }
    }
    Ok(store)
}

/// Reads every certificate of a PEM file.
///
/// # Errors
/// Unreadable file, bad PEM, or no certificate in it.
pub fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(file)
        .with_context(|| format!("reading {}", file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: bad PEM", file.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no certificate in it",
        file.display()
    );
    Ok(certs)
}

/// Reads the private key of a PEM file.
///
/// # Errors
/// Unreadable file or no supported key in it.
pub fn read_key(file: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(file)
        .with_context(|| format!("{}: no usable private key", file.display()))
}
