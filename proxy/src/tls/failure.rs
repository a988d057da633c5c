//! Why TLS on a leg failed, as a type: the session's close reason, its log fields and the
//! `popgate_tls_handshake_failures_total{side,reason}` label all derive from it, so a
//! handshake timeout is counted and logged as a timeout, never as a protocol violation.

use std::io;

use super::verify::ValidationResult;
use crate::metrics::TlsFailureReason;
use crate::pop3::Side;

/// A handshake that failed, or a TLS result that was refused, on one leg.
#[derive(Debug, thiserror::Error)]
#[error("TLS toward the {} failed: {reason}", side_name(*.side))]
pub struct TlsFailure {
    /// The leg.
    pub side: Side,
    /// What went wrong.
    pub reason: TlsFailureKind,
    /// The underlying error (socket or rustls), when there is one.
    #[source]
    pub source: Option<io::Error>,
}

/// What went wrong with TLS on a leg.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsFailureKind {
    /// `limits.handshake_timeout_s` passed.
    #[error("the handshake timed out")]
    Timeout,
    /// The handshake itself failed (garbage, no common version, the peer closed, ...).
    #[error("the handshake failed ({})", .0.as_str())]
    Handshake(TlsFailureReason),
    /// The server's certificate was refused (`invalid_certificate: block`, inbound).
    #[error("upstream certificate refused: {0}")]
    CertificateRefused(ValidationResult),
    /// The server completed a handshake without a certificate.
    #[error("the server presented no certificate")]
    NoServerCertificate,
    /// popgate has no certificate to show the client.
    #[error("no certificate for the client: {0}")]
    NoClientCertificate(String),
    /// An outbound client would be shown a certificate for a server leg that is not
    /// validated TLS, and `invalid_certificate` is `block`.
    #[error(
        "the server leg is not TLS and invalid_certificate is block: no certificate for the client"
    )]
    UnvalidatedServerLeg,
    /// The route has no TLS for this leg.
    #[error("no TLS is configured on this leg")]
    NotConfigured,
    /// The leg is TLS already (STLS twice) or in the middle of an upgrade.
    #[error("the leg is not plaintext")]
    NotPlaintext,
}

impl TlsFailure {
    /// A failure without an underlying error.
    pub fn new(side: Side, reason: TlsFailureKind) -> TlsFailure {
        TlsFailure {
            side,
            reason,
            source: None,
        }
    }

    /// Whether the handshake itself failed (a retry on a new connection could help), as
    /// opposed to a result popgate refused.
    pub fn is_handshake(&self) -> bool {
        matches!(
            self.reason,
            TlsFailureKind::Timeout | TlsFailureKind::Handshake(_)
        )
    }

    /// A stable snake_case word for logs and labels.
    pub fn kind(&self) -> &'static str {
        match self.reason {
            TlsFailureKind::Timeout => "tls_handshake_timeout",
            TlsFailureKind::Handshake(_) => "tls_handshake_failed",
            _ => "tls_refused",
        }
    }

    /// The metric label of the failure.
    pub fn metric_reason(&self) -> TlsFailureReason {
        match self.reason {
            TlsFailureKind::Timeout => TlsFailureReason::Timeout,
            TlsFailureKind::Handshake(reason) => reason,
            TlsFailureKind::CertificateRefused(_)
            | TlsFailureKind::NoServerCertificate
            | TlsFailureKind::NoClientCertificate(_)
            | TlsFailureKind::UnvalidatedServerLeg => TlsFailureReason::Certificate,
            TlsFailureKind::NotConfigured | TlsFailureKind::NotPlaintext => TlsFailureReason::Other,
        }
    }
}

/// `client` or `server`, for log text.
pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Server => "server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_its_own_kind_and_label() {
        let timeout = TlsFailure::new(Side::Client, TlsFailureKind::Timeout);
        assert!(timeout.is_handshake());
        assert_eq!(timeout.kind(), "tls_handshake_timeout");
        assert_eq!(timeout.metric_reason(), TlsFailureReason::Timeout);
        assert_eq!(
            timeout.to_string(),
            "TLS toward the client failed: the handshake timed out"
        );
        let refused = TlsFailure::new(Side::Server, TlsFailureKind::NoServerCertificate);
        assert!(!refused.is_handshake());
        assert_eq!(refused.kind(), "tls_refused");
        let version = TlsFailure::new(
            Side::Server,
            TlsFailureKind::Handshake(TlsFailureReason::ProtocolVersion),
        );
        assert_eq!(version.kind(), "tls_handshake_failed");
        assert_eq!(
            version.to_string(),
            "TLS toward the server failed: the handshake failed (protocol_version)"
        );
    }
}
