//! Building rustls configurations: one crypto provider (ring), TLS 1.2 and 1.3 only, and
//! certificate material read from the files an administrator manages.
//!
//! Session resumption is on for both legs, because under a crowd the full handshakes are
//! what limits how fast sessions are set up (BENCHMARKS.md, "Where the time goes under a
//! crowd"):
//! * toward clients, every server configuration has its own session-ticket key
//!   ([`rustls::crypto::ring::Ticketer`]: ChaCha20-Poly1305, a new key every 6 hours, the
//!   previous one still accepted, so a ticket lives at most 12 hours). One key per
//!   configuration, never shared, so a ticket only resumes a session that was shown the
//!   same certificate: a client that was shown a leaf of the Proxy Authority can never
//!   resume into a session whose upstream certificate now calls for the untrusted CA;
//! * toward servers, each TLS profile's one client configuration remembers the tickets
//!   servers send ([`UPSTREAM_RESUMPTION_NAMES`] server names), and the chain a resumed
//!   session carries over is judged again by `UpstreamValidator` like a new one.
//!
//! The cost: a ticket key is process memory; whoever reads it can decrypt the tickets sent
//! under it, and with TLS 1.2 a ticket carries the session's master secret, so recorded
//! TLS 1.2 sessions lose forward secrecy until the key is rotated out (12 hours at most).
//! TLS 1.3 resumption in rustls always runs a fresh (EC)DHE exchange (`psk_dhe_ke`), so
//! TLS 1.3 traffic keeps forward secrecy.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::client::Resumption;
use rustls::crypto::ring::Ticketer;
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

/// Server names whose resumption tickets a profile's client configuration keeps (rustls
/// keeps up to 8 TLS 1.3 tickets per name, with the server's chain: a few KiB per name).
pub const UPSTREAM_RESUMPTION_NAMES: usize = 1024;

/// TLS 1.3 tickets sent after each full handshake toward a client: two let a client open
/// two sessions in parallel and resume both.
pub const TLS13_TICKETS: usize = 2;

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
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(min))
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("pairing certificate and key")?;
    with_tickets(&mut config).context("making a session-ticket key")?;
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
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(min))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    with_tickets(&mut config)?;
    Ok(Arc::new(config))
}

/// Stateless resumption toward clients: a session-ticket key of this configuration's own
/// (see the module documentation for why it is never shared).
fn with_tickets(config: &mut ServerConfig) -> Result<(), rustls::Error> {
    config.ticketer = Ticketer::new()?;
    config.send_tls13_tickets = TLS13_TICKETS;
    Ok(())
}

/// A TLS client configuration whose chain checks are deferred to `UpstreamValidator`, with
/// session resumption; build it once per profile and share it, since its session cache is
/// what lets later sessions resume.
///
/// # Errors
/// Only if the provider cannot do the requested versions.
pub fn client_config(min: MinVersion) -> Result<Arc<ClientConfig>> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(min))
        .context("choosing TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(DeferredChainVerifier::new(provider())))
        .with_no_client_auth();
    config.resumption = Resumption::in_memory_sessions(UPSTREAM_RESUMPTION_NAMES);
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

#[cfg(test)]
mod tests {
    use rustls::{ClientConnection, HandshakeKind, ServerConnection};
    use time::OffsetDateTime;

    use super::*;

    /// A throwaway certificate and key (a self-signed CA serves: popgate's own client
    /// configuration leaves chain checks to `UpstreamValidator`, it only checks the
    /// handshake signature).
    fn identity() -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let generated = popgate_ca::Authority::generate(
            popgate_ca::KeyType::EcdsaP256,
            "CN=resumption test",
            1,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let chain = CertificateDer::pem_slice_iter(generated.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(generated.key_pem.as_bytes()).unwrap();
        (chain, key)
    }

    fn feed<D>(to: &mut rustls::ConnectionCommon<D>, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            to.read_tls(&mut bytes).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    /// One in-memory session from `client` to `server`, including the tickets the server
    /// sends after the handshake; how the client's handshake went.
    fn session(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> HandshakeKind {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut c = ClientConnection::new(client.clone(), name).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        for _ in 0..8 {
            let mut bytes = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut bytes).unwrap();
            }
            feed(&mut s, &bytes);
            bytes.clear();
            while s.wants_write() {
                s.write_tls(&mut bytes).unwrap();
            }
            feed(&mut c, &bytes);
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        c.handshake_kind().unwrap()
    }

    #[test]
    fn a_second_session_resumes_on_both_legs_configurations() {
        let (chain, key) = identity();
        let server = server_config(chain, key, MinVersion::Tls13).unwrap();
        let client = client_config(MinVersion::Tls12).unwrap();
        assert_eq!(session(&client, &server), HandshakeKind::Full);
        assert_eq!(session(&client, &server), HandshakeKind::Resumed);
        assert_eq!(session(&client, &server), HandshakeKind::Resumed);
    }

    #[test]
    fn a_ticket_never_resumes_on_another_configuration() {
        // The same certificate, built twice (as for two minted leaves, or before and after
        // a reload): each configuration has its own ticket key.
        let (chain, key) = identity();
        let first = server_config(chain.clone(), key.clone_key(), MinVersion::Tls13).unwrap();
        let second = server_config(chain, key, MinVersion::Tls13).unwrap();
        let (resumer, mover) = (
            client_config(MinVersion::Tls12).unwrap(),
            client_config(MinVersion::Tls12).unwrap(),
        );
        assert_eq!(session(&resumer, &first), HandshakeKind::Full);
        assert_eq!(session(&mover, &first), HandshakeKind::Full);
        // Both now hold tickets of `first`: they resume there, not elsewhere.
        assert_eq!(session(&resumer, &first), HandshakeKind::Resumed);
        assert_eq!(session(&mover, &second), HandshakeKind::Full);
    }

    #[test]
    fn a_client_resumes_after_more_sessions_than_a_session_cache_would_hold() {
        // rustls's default stateful cache keeps 256 sessions; tickets keep nothing.
        let (chain, key) = identity();
        let server = server_config(chain, key, MinVersion::Tls13).unwrap();
        let first = client_config(MinVersion::Tls12).unwrap();
        assert_eq!(session(&first, &server), HandshakeKind::Full);
        for _ in 0..300 {
            let other = client_config(MinVersion::Tls12).unwrap();
            session(&other, &server);
        }
        assert_eq!(session(&first, &server), HandshakeKind::Resumed);
    }

    #[test]
    fn minted_configurations_send_tickets_too() {
        #[derive(Debug)]
        struct One(Arc<rustls::sign::CertifiedKey>);
        impl ResolvesServerCert for One {
            fn resolve(
                &self,
                _: rustls::server::ClientHello<'_>,
            ) -> Option<Arc<rustls::sign::CertifiedKey>> {
                Some(self.0.clone())
            }
        }
        let (chain, key) = identity();
        let signing = provider().key_provider.load_private_key(key).unwrap();
        let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signing));
        let server =
            server_config_with_resolver(Arc::new(One(certified)), MinVersion::Tls12).unwrap();
        let client = client_config(MinVersion::Tls12).unwrap();
        assert_eq!(session(&client, &server), HandshakeKind::Full);
        assert_eq!(session(&client, &server), HandshakeKind::Resumed);
    }
}
