//! TLS handshakes on a session's legs: implicit TLS at connect time and STLS upgrades,
//! each under the handshake deadline, each judged before any POP3 byte flows.
//!
//! The client's handshake is split in two: its ClientHello is read first (SNI, for the log
//! and as the server's name when the upstream is only an address), then the certificate it
//! is shown is chosen, which for an outbound policy needs the upstream certificate: so the
//! server's handshake happens in between. The order of the steps is the driver's
//! (`relay/session_task.rs`); this module does each step.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::StartHandshake;
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};
use tracing::{debug, info};

use super::config::MinVersion;
pub use super::failure::{TlsFailure, TlsFailureKind};
use super::minting::{Minting, Subject};
use super::verify::{UpstreamValidator, ValidationResult};
use crate::metrics::{self, TlsFailureReason};
use crate::net::conn::Conn;
use crate::net::read_ahead::ReadAhead;
use crate::pop3::Side;

/// TLS toward the client.
#[derive(Debug, Clone)]
pub struct ClientLeg {
    /// The certificate the client is shown.
    pub cert: ClientCert,
    /// TLS from the first byte (the `pop3s` port) rather than after STLS.
    pub implicit: bool,
}

/// Which certificate the client is shown (SPEC §1, `direction`).
#[derive(Debug, Clone)]
pub enum ClientCert {
    /// Inbound: the Proxy Server certificate (`pki/server.*`).
    Static(Arc<ServerConfig>),
    /// Outbound: a leaf minted by the Proxy Authority mirroring the upstream certificate (by
    /// the untrusted CA when that certificate is invalid). Without an upstream certificate
    /// (plaintext server leg) the leaf names the client's SNI, else the upstream host, and
    /// `invalid_certificate` applies as to an invalid certificate: the untrusted CA signs
    /// it, or the client's handshake is refused (SPEC §4: plaintext never looks secure).
    Minted {
        /// The authorities of the configuration.
        minting: Arc<Minting>,
        /// The profile's version floor.
        min: MinVersion,
        /// `invalid_certificate: block`: refuse the client's TLS rather than mint with the
        /// untrusted CA when the server leg is not validated TLS.
        block_unvalidated: bool,
    },
}

/// TLS toward the server.
#[derive(Debug, Clone)]
pub struct ServerLeg {
    /// Versions offered; chain checks deferred to `validator`.
    pub config: Arc<ClientConfig>,
    /// SNI and the name the certificate must carry.
    pub name: ServerName<'static>,
    /// TLS from the first byte (the server's `pop3s` port) rather than after STLS.
    pub implicit: bool,
    /// Judges the chain once the handshake is done.
    pub validator: Arc<UpstreamValidator>,
    /// An invalid certificate ends the session (`invalid_certificate: block`, or an inbound
    /// policy, whose Proxy Server certificate cannot mirror a failure).
    pub block_invalid: bool,
    /// `upstream_tls: opportunistic`: a failed handshake is retried once on a new
    /// connection, then the session goes on in plaintext and TLS is held down.
    pub fallback: Option<Fallback>,
    /// `upstream_tls: mandatory` (or `force_encrypt`): no TLS, no session.
    pub mandatory: bool,
}

/// How an opportunistic server leg falls back to plaintext.
#[derive(Debug, Clone, Copy)]
pub struct Fallback {
    /// `tls_failure_holddown_s`.
    pub holddown: Duration,
    /// The server's plaintext port, for an implicit-TLS leg that falls back.
    pub plain_port: u16,
}

impl ServerLeg {
    /// The `-ERR` text for a client whose server leg could not be set up because of
    /// `failure`. A handshake that failed without timing out on a leg that TLS is mandatory
    /// for will not get better by retrying: `[SYS/PERM]` (SPEC §4 `upstream_tls`).
    pub fn refusal_text(&self, failure: &TlsFailure) -> &'static str {
        match failure.reason {
            TlsFailureKind::Timeout => "[SYS/TEMP] TLS to the mail server failed",
            TlsFailureKind::Handshake(_) if self.mandatory => {
                "[SYS/PERM] TLS to the mail server is required but failed"
            }
            TlsFailureKind::Handshake(_) => "[SYS/TEMP] TLS to the mail server failed",
            _ => "[SYS/PERM] the mail server's certificate was refused",
        }
    }
}

/// TLS plans for both legs of a route.
#[derive(Debug, Clone, Default)]
pub struct TlsLegs {
    /// TLS toward the client, if the route terminates it.
    pub client: Option<ClientLeg>,
    /// TLS toward the server, if the route uses it.
    pub server: Option<ServerLeg>,
}

/// The upstream's end-entity certificate and its judgement, for the client's certificate.
#[derive(Debug, Clone)]
pub struct UpstreamCert {
    /// The server's end-entity certificate.
    pub leaf: CertificateDer<'static>,
    /// It passed the profile's validation (or validation is `none`).
    pub trusted: bool,
}

/// What the client's TLS connection will carry, for the choice of its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A POP3 session: credentials and mail may cross it.
    Session,
    /// One `-ERR` line explaining why there is no session, then the close; nothing the
    /// client sends is read. Shown with the Proxy Authority so the client can read why.
    RefusalOnly,
}

/// A client's ClientHello, read; the handshake goes on with [`TlsLegs::finish_client`].
pub struct ClientHello {
    start: StartHandshake<TcpStream>,
    /// The server name the client asked for (SNI), if any.
    pub sni: Option<String>,
}

impl fmt::Debug for ClientHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHello")
            .field("sni", &self.sni)
            .finish()
    }
}

/// TLS facts for the session summary.
#[derive(Debug, Default, Clone)]
pub struct TlsSummary {
    /// Client leg: version and cipher, or `none`.
    pub client: Negotiated,
    /// The SNI the client sent.
    pub client_sni: Option<String>,
    /// Server leg: version and cipher, or `none`.
    pub server: Negotiated,
    /// The upstream certificate's validation result, when the server leg is TLS.
    pub server_certificate: Judged,
    /// The upstream certificate's subject.
    pub server_subject: Option<String>,
}

/// A leg's negotiated version and cipher suite.
#[derive(Debug, Default, Clone)]
pub struct Negotiated(Option<String>);

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("none"))
    }
}

/// The upstream certificate's judgement, if there was one.
#[derive(Debug, Default, Clone)]
pub struct Judged(Option<ValidationResult>);

impl fmt::Display for Judged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(result) => result.fmt(f),
            None => f.write_str("none"),
        }
    }
}

impl TlsLegs {
    /// Whether the client expects TLS from its first byte.
    pub fn client_is_implicit(&self) -> bool {
        self.client.as_ref().is_some_and(|leg| leg.implicit)
    }

    /// Whether the server leg is TLS from its first byte.
    pub fn server_is_implicit(&self) -> bool {
        self.server.as_ref().is_some_and(|leg| leg.implicit)
    }

    /// Reads the client's ClientHello from `tcp`.
    ///
    /// Cancel safety: not cancel safe (bytes read are lost).
    pub async fn read_client_hello(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> Result<ClientHello, TlsFailure> {
        let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
        let start = within(timeout, Side::Client, acceptor).await?;
        let sni = start.client_hello().server_name().map(str::to_owned);
        Ok(ClientHello { start, sni })
    }

    /// Completes the client's handshake with the certificate the route shows for `upstream`
    /// (`host` names the server when there is neither an upstream certificate nor SNI).
    /// `purpose` says whether the connection will carry a session or only a refusal.
    ///
    /// Cancel safety: not cancel safe.
    pub async fn finish_client(
        &self,
        hello: ClientHello,
        upstream: Option<&UpstreamCert>,
        host: &str,
        timeout: Duration,
        summary: &mut TlsSummary,
        purpose: Purpose,
    ) -> Result<Conn, TlsFailure> {
        let leg = self
            .client
            .as_ref()
            .ok_or_else(|| TlsFailure::new(Side::Client, TlsFailureKind::NotConfigured))?;
        summary.client_sni.clone_from(&hello.sni);
        let config = choose_certificate(&leg.cert, upstream, hello.sni.as_deref(), host, purpose)?;
        let accept = hello.start.into_stream(config);
        let tls = within(timeout, Side::Client, accept).await?;
        summary.client = negotiated(tls.get_ref().1);
        info!(sni = hello.sni.as_deref().unwrap_or(""), tls = %summary.client,
            "client TLS established");
        Ok(Conn::TlsServer(Box::new(tls)))
    }

    /// Terminates the client's TLS on `conn` after its STLS.
    ///
    /// Cancel safety: not cancel safe.
    pub async fn upgrade_client(
        &self,
        conn: &mut Conn,
        upstream: Option<&UpstreamCert>,
        host: &str,
        timeout: Duration,
        summary: &mut TlsSummary,
    ) -> Result<(), TlsFailure> {
        let tcp = conn
            .take_plain()
            .map_err(|_| TlsFailure::new(Side::Client, TlsFailureKind::NotPlaintext))?;
        let hello = self.read_client_hello(tcp, timeout).await?;
        *conn = self
            .finish_client(hello, upstream, host, timeout, summary, Purpose::Session)
            .await?;
        Ok(())
    }

    /// Starts TLS toward the server on `conn` and judges its certificate. `sni` (the
    /// client's) names the server when the route only knows its address.
    ///
    /// Cancel safety: not cancel safe.
    pub async fn upgrade_server(
        &self,
        conn: &mut Conn,
        sni: Option<&str>,
        timeout: Duration,
        summary: &mut TlsSummary,
    ) -> Result<UpstreamCert, TlsFailure> {
        let refused = |reason: TlsFailureKind| TlsFailure::new(Side::Server, reason);
        let leg = self
            .server
            .as_ref()
            .ok_or_else(|| refused(TlsFailureKind::NotConfigured))?;
        let tcp = conn
            .take_plain()
            .map_err(|_| refused(TlsFailureKind::NotPlaintext))?;
        let name = match (&leg.name, sni.map(|s| ServerName::try_from(s.to_owned()))) {
            (ServerName::IpAddress(_), Some(Ok(named))) => named,
            (name, _) => name.clone(),
        };
        let connect =
            TlsConnector::from(leg.config.clone()).connect(name.clone(), ReadAhead::new(tcp));
        let tls = within(timeout, Side::Server, connect).await?;
        let state = tls.get_ref().1;
        let chain = state.peer_certificates().unwrap_or_default();
        let judged = leg.validator.judge(chain, &name);
        summary.server = negotiated(state);
        summary.server_certificate = Judged(Some(judged.clone()));
        summary.server_subject = chain.first().and_then(|leaf| subject(leaf));
        info!(tls = %summary.server, certificate = %judged,
            subject = summary.server_subject.as_deref().unwrap_or(""), "server TLS established");
        if leg.block_invalid && !judged.is_acceptable() {
            metrics::tls_failure(Side::Server, TlsFailureReason::Certificate);
            return Err(refused(TlsFailureKind::CertificateRefused(judged)));
        }
        let leaf = chain
            .first()
            .cloned()
            .ok_or_else(|| refused(TlsFailureKind::NoServerCertificate))?;
        *conn = Conn::TlsClient(Box::new(tls));
        Ok(UpstreamCert {
            leaf,
            trusted: judged.is_acceptable(),
        })
    }
}

/// The server configuration showing the client the certificate the route calls for.
fn choose_certificate(
    cert: &ClientCert,
    upstream: Option<&UpstreamCert>,
    sni: Option<&str>,
    host: &str,
    purpose: Purpose,
) -> Result<Arc<ServerConfig>, TlsFailure> {
    let (minting, min, block_unvalidated) = match cert {
        ClientCert::Static(config) => return Ok(config.clone()),
        ClientCert::Minted {
            minting,
            min,
            block_unvalidated,
        } => (minting, *min, *block_unvalidated),
    };
    let subject = match upstream {
        Some(upstream) => Subject::Mirror {
            upstream: &upstream.leaf,
            trusted: upstream.trusted,
        },
        // Carries nothing but the refusal: no trust is lent to plaintext.
        None if purpose == Purpose::RefusalOnly => Subject::Host {
            name: sni.unwrap_or(host),
            trusted: true,
        },
        None if block_unvalidated => {
            metrics::tls_failure(Side::Client, TlsFailureReason::Certificate);
            return Err(TlsFailure::new(
                Side::Client,
                TlsFailureKind::UnvalidatedServerLeg,
            ));
        }
        // No validated TLS toward the server: never the Proxy Authority (SPEC §4).
        None => Subject::Host {
            name: sni.unwrap_or(host),
            trusted: false,
        },
    };
    let minted = minting.server_config(subject, min);
    // An upstream certificate that names nothing mintable: name the host instead, with the
    // authority its judgement calls for.
    let minted = match (minted, upstream) {
        (Err(err), Some(up)) if up.trusted => {
            debug!(error = %err, "mirroring failed; minting for the host name");
            let name = sni.unwrap_or(host);
            minting.server_config(
                Subject::Host {
                    name,
                    trusted: true,
                },
                min,
            )
        }
        (result, _) => result,
    };
    minted.map_err(|err| {
        metrics::tls_failure(Side::Client, TlsFailureReason::Certificate);
        TlsFailure::new(
            Side::Client,
            TlsFailureKind::NoClientCertificate(err.to_string()),
        )
    })
}

/// Runs one handshake step of `side` under the handshake deadline, classifying failures.
async fn within<T>(
    timeout: Duration,
    side: Side,
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, TlsFailure> {
    let failure = match tokio::time::timeout(timeout, step).await {
        Ok(Ok(value)) => return Ok(value),
        Err(_) => TlsFailure::new(side, TlsFailureKind::Timeout),
        Ok(Err(err)) => {
            let reason = match TlsFailureReason::of_io_error(&err) {
                TlsFailureReason::Timeout => TlsFailureKind::Timeout,
                other => TlsFailureKind::Handshake(other),
            };
            TlsFailure {
                side,
                reason,
                source: Some(err),
            }
        }
    };
    metrics::tls_failure(side, failure.metric_reason());
    Err(failure)
}

fn subject(leaf: &CertificateDer<'_>) -> Option<String> {
    popgate_ca::CertInfo::from_der(leaf, time::OffsetDateTime::now_utc())
        .ok()
        .map(|info| info.subject)
}

fn negotiated<D>(state: &rustls::ConnectionCommon<D>) -> Negotiated {
    let version = state
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let cipher = state
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    Negotiated(Some(format!("{version}/{cipher}")))
}
