//! The label values of popgate's metrics (SPEC §7): closed enums, so no address, user name or
//! peer-chosen string can ever become a label, and every series can be created up front.
//!
//! No I/O and no registry here; see `mod.rs` for the metrics and `http.rs` for `/metrics`.

use std::fmt::Write as _;
use std::io;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// How a connection ended up: `popgate_connections_total{result}`. Each connection counts
/// exactly once, so the results add up to the connections accepted by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionResult {
    /// A session was set up: policy matched, server reached, handshakes done.
    Accepted,
    /// No enabled policy matches the connection.
    NoPolicy,
    /// `limits.max_connections` or `max_connections_per_client` reached.
    Limit,
    /// The original destination is popgate itself (routing loop).
    Loop,
    /// The real server could not be reached (connect failed or timed out).
    UpstreamUnavailable,
    /// A TLS handshake failed or a certificate was refused before the session began.
    TlsRefused,
    /// The matching policy's action refuses the connection (e.g. `tls.action: drop`).
    PolicyRefused,
}

impl ConnectionResult {
    /// Every value, for creating the series up front.
    pub const ALL: [ConnectionResult; 7] = [
        ConnectionResult::Accepted,
        ConnectionResult::NoPolicy,
        ConnectionResult::Limit,
        ConnectionResult::Loop,
        ConnectionResult::UpstreamUnavailable,
        ConnectionResult::TlsRefused,
        ConnectionResult::PolicyRefused,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionResult::Accepted => "accepted",
            ConnectionResult::NoPolicy => "no_policy",
            ConnectionResult::Limit => "limit",
            ConnectionResult::Loop => "loop",
            ConnectionResult::UpstreamUnavailable => "upstream_unavailable",
            ConnectionResult::TlsRefused => "tls_refused",
            ConnectionResult::PolicyRefused => "policy_refused",
        }
    }
}

/// The verdict on one inspected message: `popgate_messages_total{verdict}`; the names of
/// `popgate_inspect::Verdict::as_str`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageVerdict {
    /// Passed byte for byte.
    Allow,
    /// Subject tagged.
    Tag,
    /// A MIME part replaced.
    Strip,
    /// The whole message replaced.
    Deny,
    /// Replaced and the original kept in `quarantine/`.
    Quarantine,
    /// Not delivered now (`-ERR [SYS/TEMP]`), left on the server.
    Tempfail,
    /// A verdict name this list does not know (kept bounded rather than echoed).
    Other,
}

impl MessageVerdict {
    /// Every value, for creating the series up front.
    pub const ALL: [MessageVerdict; 7] = [
        MessageVerdict::Allow,
        MessageVerdict::Tag,
        MessageVerdict::Strip,
        MessageVerdict::Deny,
        MessageVerdict::Quarantine,
        MessageVerdict::Tempfail,
        MessageVerdict::Other,
    ];

    /// The verdict named `name` (case-insensitive); [`MessageVerdict::Other`] when unknown.
    pub fn from_name(name: &str) -> MessageVerdict {
        MessageVerdict::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(name))
            .unwrap_or(MessageVerdict::Other)
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageVerdict::Allow => "allow",
            MessageVerdict::Tag => "tag",
            MessageVerdict::Strip => "strip",
            MessageVerdict::Deny => "deny",
            MessageVerdict::Quarantine => "quarantine",
            MessageVerdict::Tempfail => "tempfail",
            MessageVerdict::Other => "other",
        }
    }
}

/// Which way bytes went: `popgate_bytes_total{direction}`. Counted as received from each
/// peer (what popgate read), before any rewriting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Read from the client, bound for the server.
    ClientToServer,
    /// Read from the server, bound for the client.
    ServerToClient,
}

impl Direction {
    /// Every value, for creating the series up front.
    pub const ALL: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
        }
    }
}

/// The leg of a failed TLS handshake: `side` of `popgate_tls_handshake_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsSide {
    /// popgate as TLS server toward the mail client.
    Client,
    /// popgate as TLS client toward the mail server.
    Server,
}

impl TlsSide {
    /// Every value, for creating the series up front.
    pub const ALL: [TlsSide; 2] = [TlsSide::Client, TlsSide::Server];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsSide::Client => "client",
            TlsSide::Server => "server",
        }
    }
}

impl From<crate::pop3::Side> for TlsSide {
    fn from(side: crate::pop3::Side) -> TlsSide {
        match side {
            crate::pop3::Side::Client => TlsSide::Client,
            crate::pop3::Side::Server => TlsSide::Server,
        }
    }
}

/// Why a TLS handshake failed, in a bounded set: `reason` of
/// `popgate_tls_handshake_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsFailureReason {
    /// `limits.handshake_timeout_s` passed.
    Timeout,
    /// No protocol version in common (e.g. a TLS 1.0 peer), or the peer said so.
    ProtocolVersion,
    /// A certificate was refused, by popgate (`invalid_certificate: block`) or by the peer.
    Certificate,
    /// Anything else: garbage instead of TLS, a peer closing mid-handshake, no cipher in
    /// common, ...
    Other,
}

impl TlsFailureReason {
    /// Every value, for creating the series up front.
    pub const ALL: [TlsFailureReason; 4] = [
        TlsFailureReason::Timeout,
        TlsFailureReason::ProtocolVersion,
        TlsFailureReason::Certificate,
        TlsFailureReason::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsFailureReason::Timeout => "timeout",
            TlsFailureReason::ProtocolVersion => "protocol_version",
            TlsFailureReason::Certificate => "certificate",
            TlsFailureReason::Other => "other",
        }
    }

    /// Classifies the error a tokio-rustls handshake future returned (a `rustls::Error`
    /// wrapped in an `io::Error`, or a socket error).
    pub fn of_io_error(err: &io::Error) -> TlsFailureReason {
        if err.kind() == io::ErrorKind::TimedOut {
            return TlsFailureReason::Timeout;
        }
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map_or(TlsFailureReason::Other, TlsFailureReason::of_rustls)
    }

    /// Classifies a rustls error.
    pub fn of_rustls(err: &rustls::Error) -> TlsFailureReason {
        use rustls::{AlertDescription as A, PeerIncompatible as P};
        match err {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_) => TlsFailureReason::Certificate,
            rustls::Error::PeerIncompatible(
                P::ServerDoesNotSupportTls12Or13
                | P::ServerTlsVersionIsDisabledByOurConfig
                | P::SupportedVersionsExtensionRequired
                | P::Tls12NotOffered
                | P::Tls12NotOfferedOrEnabled
                // What a TLS 1.0/1.1-only ClientHello ends in: those versions have no
                // signature_algorithms extension, and rustls checks it first.
                | P::SignatureAlgorithmsExtensionRequired,
            ) => TlsFailureReason::ProtocolVersion,
            rustls::Error::AlertReceived(alert) => match alert {
                A::ProtocolVersion => TlsFailureReason::ProtocolVersion,
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::CertificateRequired
                | A::NoCertificate => TlsFailureReason::Certificate,
                _ => TlsFailureReason::Other,
            },
            _ => TlsFailureReason::Other,
        }
    }
}

/// Whether a configuration reload was applied: `popgate_config_reloads_total{result}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReloadResult {
    /// The new configuration is running.
    Ok,
    /// It was rejected; the previous one keeps running.
    Failed,
}

impl ReloadResult {
    /// Every value, for creating the series up front.
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Ok, ReloadResult::Failed];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Failed => "failed",
        }
    }
}

macro_rules! label_value {
    ($($ty:ty),+) => {$(
        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    )+};
}
label_value!(
    ConnectionResult,
    MessageVerdict,
    Direction,
    TlsSide,
    TlsFailureReason,
    ReloadResult
);

/// `{result}` of `popgate_connections_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ResultLabel {
    pub result: ConnectionResult,
}

/// `{verdict}` of `popgate_messages_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct VerdictLabel {
    pub verdict: MessageVerdict,
}

/// `{direction}` of `popgate_bytes_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct DirectionLabel {
    pub direction: Direction,
}

/// `{side,reason}` of `popgate_tls_handshake_failures_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct TlsFailureLabels {
    pub side: TlsSide,
    pub reason: TlsFailureReason,
}

/// `{result}` of `popgate_config_reloads_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ReloadLabel {
    pub result: ReloadResult,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_names_map_to_bounded_values() {
        assert_eq!(MessageVerdict::from_name("allow"), MessageVerdict::Allow);
        assert_eq!(
            MessageVerdict::from_name("QUARANTINE"),
            MessageVerdict::Quarantine
        );
        assert_eq!(
            MessageVerdict::from_name("tempfail"),
            MessageVerdict::Tempfail
        );
        assert_eq!(MessageVerdict::from_name("10.0.0.1"), MessageVerdict::Other);
        assert_eq!(MessageVerdict::from_name(""), MessageVerdict::Other);
    }

    #[test]
    fn rustls_errors_fall_into_the_four_reasons() {
        use rustls::{AlertDescription, CertificateError, PeerIncompatible};
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                TlsFailureReason::Certificate,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                TlsFailureReason::Certificate,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                TlsFailureReason::ProtocolVersion,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::Tls12NotOfferedOrEnabled),
                TlsFailureReason::ProtocolVersion,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
                TlsFailureReason::Other,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                TlsFailureReason::Other,
            ),
            (rustls::Error::DecryptError, TlsFailureReason::Other),
        ];
        for (err, want) in cases {
            assert_eq!(TlsFailureReason::of_rustls(&err), want, "{err:?}");
            // tokio-rustls hands rustls errors back inside an io::Error.
            let wrapped = io::Error::new(io::ErrorKind::InvalidData, err);
            assert_eq!(TlsFailureReason::of_io_error(&wrapped), want);
        }
    }

    #[test]
    fn socket_errors_are_timeout_or_other() {
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(
            TlsFailureReason::of_io_error(&timed_out),
            TlsFailureReason::Timeout
        );
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(TlsFailureReason::of_io_error(&eof), TlsFailureReason::Other);
    }
}
