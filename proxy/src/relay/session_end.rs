//! How a session ended: one type for every way out of the driver (the POP3 core closing
//! it, a socket failing, TLS failing on a leg, the server unreachable). The summary line's
//! `result` is [`SessionEnd::kind`], a stable snake_case word, and its `reason` is the
//! Display text (SPEC §7: never a `Debug` rendering).

use std::io;

use crate::pop3::{CloseReason, Side};
use crate::tls::failure::{side_name, TlsFailure};

/// Why a session is over.
#[derive(Debug, thiserror::Error)]
pub enum SessionEnd {
    /// The POP3 core ended the session.
    #[error("{0}")]
    Core(CloseReason),
    /// A socket failed or timed out.
    #[error("the {} connection failed: {source}", side_name(*.side))]
    Io {
        /// The leg.
        side: Side,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// TLS failed, or its result was refused, on a leg.
    #[error(transparent)]
    Tls(#[from] TlsFailure),
    /// The mail server could not be reached.
    #[error("the mail server is unavailable: {0}")]
    Upstream(#[source] io::Error),
}

impl SessionEnd {
    /// The summary's `result`: a bounded snake_case word for the way the session ended
    /// (every protocol violation is `protocol_violation`; [`SessionEnd::kind`] names it).
    pub fn result(&self) -> &'static str {
        match self {
            SessionEnd::Core(CloseReason::ProtocolViolation(..)) => "protocol_violation",
            _ => self.kind(),
        }
    }

    /// The summary's `reason_kind`: a stable snake_case word for the precise reason (the
    /// violation's own kind for a protocol violation).
    pub fn kind(&self) -> &'static str {
        match self {
            SessionEnd::Core(reason) => reason.kind(),
            SessionEnd::Io { source, .. } if source.kind() == io::ErrorKind::TimedOut => {
                "timed_out"
            }
            SessionEnd::Io { .. } => "peer_closed",
            SessionEnd::Tls(failure) => failure.kind(),
            SessionEnd::Upstream(_) => "upstream_unavailable",
        }
    }

    /// A socket error on `side`.
    pub fn io(side: Side, source: io::Error) -> SessionEnd {
        SessionEnd::Io { side, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::failure::TlsFailureKind;

    #[test]
    fn kinds_are_stable_words_and_texts_are_not_debug_renderings() {
        let cases = [
            (SessionEnd::Core(CloseReason::Finished), "finished"),
            (
                SessionEnd::Core(CloseReason::PeerClosed(Side::Server)),
                "peer_closed",
            ),
            (
                SessionEnd::io(Side::Client, io::ErrorKind::TimedOut.into()),
                "timed_out",
            ),
            (
                SessionEnd::Tls(TlsFailure::new(Side::Client, TlsFailureKind::Timeout)),
                "tls_handshake_timeout",
            ),
            (
                SessionEnd::Upstream(io::ErrorKind::ConnectionRefused.into()),
                "upstream_unavailable",
            ),
        ];
        for (end, kind) in cases {
            assert_eq!(end.kind(), kind);
            let text = end.to_string();
            assert!(!text.contains("Side::") && !text.contains('('), "{text}");
        }
    }
}
