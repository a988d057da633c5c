//! TLS handshakes on a session's legs: implicit TLS at connect time and STLS upgrades,
//! each under the handshake deadline, each judged before any POP3 byte flows.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::verify::{UpstreamValidator, ValidationResult};
use crate::pop3::Side;
use crate::relay::conn::Conn;

/// TLS toward the client.
#[derive(Debug, Clone)]
pub struct ClientLeg {
    /// The certificate the client is shown, and the versions offered.
    pub config: Arc<ServerConfig>,
    /// TLS from the first byte (the `pop3s` port) rather than after STLS.
    pub implicit: bool,
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
    /// An invalid certificate ends the session (`invalid_certificate: block`).
    pub block_invalid: bool,
}

/// TLS plans for both legs of a route.
#[derive(Debug, Clone, Default)]
pub struct TlsLegs {
    /// TLS toward the client, if the route terminates it.
    pub client: Option<ClientLeg>,
    /// TLS toward the server, if the route uses it.
    pub server: Option<ServerLeg>,
}

/// A handshake that failed or a certificate that was refused.
#[derive(Debug, Clone)]
pub struct TlsFailure {
    /// The leg.
    pub side: Side,
    /// For the log.
    pub message: String,
}

/// TLS facts for the session summary.
#[derive(Debug, Default, Clone)]
pub struct TlsSummary {
    /// Client leg: version and cipher, or `none`.
    pub client: Negotiated,
    /// Server leg: version and cipher, or `none`.
    pub server: Negotiated,
    /// The upstream certificate's validation result, when the server leg is TLS.
    pub server_certificate: Judged,
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

    /// Runs the implicit-TLS handshakes: the server's first (its certificate decides the
    /// client's, for outbound minting), then the client's.
    ///
    /// Cancel safety: not cancel safe (a half-done handshake leaves a leg unusable).
    pub async fn implicit(
        &self,
        client: &mut Conn,
        server: &mut Conn,
        timeout: Duration,
        summary: &mut TlsSummary,
    ) -> Result<(), TlsFailure> {
        if self.server.as_ref().is_some_and(|leg| leg.implicit) {
            self.upgrade_server(server, timeout, summary).await?;
        }
        if self.client_is_implicit() {
            self.upgrade_client(client, timeout, summary).await?;
        }
        Ok(())
    }

    /// Terminates the client's TLS on `conn`.
    ///
    /// Cancel safety: not cancel safe.
    pub async fn upgrade_client(
        &self,
        conn: &mut Conn,
        timeout: Duration,
        summary: &mut TlsSummary,
    ) -> Result<(), TlsFailure> {
        let fail = |message: String| TlsFailure {
            side: Side::Client,
            message,
        };
        let leg = self
            .client
            .as_ref()
            .ok_or_else(|| fail("no TLS configured toward the client".into()))?;
        let tcp = conn.take_plain().map_err(|e| fail(e.to_string()))?;
        let accept = TlsAcceptor::from(leg.config.clone()).accept(tcp);
        let tls = tokio::time::timeout(timeout, accept)
            .await
            .map_err(|_| fail("handshake timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        summary.client = negotiated(tls.get_ref().1);
        *conn = Conn::TlsServer(Box::new(tls));
        Ok(())
    }

    /// Starts TLS toward the server on `conn` and judges its certificate.
    ///
    /// Cancel safety: not cancel safe.
    pub async fn upgrade_server(
        &self,
        conn: &mut Conn,
        timeout: Duration,
        summary: &mut TlsSummary,
    ) -> Result<(), TlsFailure> {
        let fail = |message: String| TlsFailure {
            side: Side::Server,
            message,
        };
        let leg = self
            .server
            .as_ref()
            .ok_or_else(|| fail("no TLS configured toward the server".into()))?;
        let tcp = conn.take_plain().map_err(|e| fail(e.to_string()))?;
        let connect = TlsConnector::from(leg.config.clone()).connect(leg.name.clone(), tcp);
        let tls = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| fail("handshake timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let state = tls.get_ref().1;
        let chain = state.peer_certificates().unwrap_or_default();
        let judged = leg.validator.judge(chain, &leg.name);
        summary.server = negotiated(state);
        summary.server_certificate = Judged(Some(judged.clone()));
        if leg.block_invalid && !judged.is_acceptable() {
            return Err(fail(format!("upstream certificate refused: {judged}")));
        }
        *conn = Conn::TlsClient(Box::new(tls));
        Ok(())
    }
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
