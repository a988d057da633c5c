//! The ways a peer can break POP3, one variant each (in the spirit of rustls's
//! `PeerMisbehaved`): typed for tests, a human text for the log, a stable snake_case label
//! for log fields and metric labels.
//!
//! Which side misbehaved is carried beside it, in
//! [`CloseReason::ProtocolViolation`](crate::CloseReason::ProtocolViolation). No I/O here.

/// How a peer broke the protocol; the session ends (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    // --- either side -------------------------------------------------------------------
    /// A TLS handshake record where plaintext POP3 was expected (wrong port or client).
    #[error("TLS handshake on a plaintext POP3 connection")]
    TlsRecordOnPlaintext,
    /// A carriage return not followed by LF inside a command or status line: a server or
    /// client that treats CR as a line end would see two lines where popgate sees one.
    #[error("bare CR inside a line")]
    BareCr,
    /// The TLS handshake with this peer failed (reported by the driver).
    #[error("TLS handshake failed")]
    TlsHandshakeFailed,

    // --- the client --------------------------------------------------------------------
    /// A command line (or SASL line) longer than the limit.
    #[error("command line longer than {limit} octets")]
    CommandLineTooLong {
        /// The limit, line ending included.
        limit: usize,
    },
    /// A control byte no POP3 command contains (RFC 1939 §3).
    #[error("control byte {byte:#04x} where a command was expected")]
    ForbiddenByte {
        /// The first such byte.
        byte: u8,
    },
    /// Commands in the same bytes as `STLS`: they would be read as if sent over TLS
    /// (the plaintext injection class of the "NO STARTTLS" study).
    #[error("commands pipelined after STLS")]
    PipelinedAfterStls,
    /// Bytes from the client after `STLS` was accepted and before its TLS handshake.
    #[error("bytes after STLS before the TLS handshake")]
    ClientDataBeforeHandshake,

    // --- the server --------------------------------------------------------------------
    /// The greeting is neither `+OK` nor `-ERR`.
    #[error("invalid greeting")]
    InvalidGreeting,
    /// A status line longer than the limit (RFC 2449 §4: 512).
    #[error("status line longer than {limit} octets")]
    StatusLineTooLong {
        /// The limit, line ending included.
        limit: usize,
    },
    /// A line where a status line was expected that is not `+OK`, `-ERR` or `+`.
    #[error("not a status line")]
    NotAStatusLine,
    /// A status line with no command outstanding: it would answer a command the client
    /// sends later (response smuggling).
    #[error("status line with no command outstanding")]
    UnsolicitedStatus,
    /// A SASL continuation (`+`) to a command that is not in a SASL exchange.
    #[error("SASL continuation outside a SASL exchange")]
    ContinuationOutsideSasl,
    /// A second SASL continuation before the client answered the first.
    #[error("SASL continuation while the client's answer is outstanding")]
    RepeatedSaslContinuation,
    /// A line inside a multi-line response longer than the limit (`max_line_length`).
    #[error("multi-line response line longer than {limit} octets")]
    BodyLineTooLong {
        /// The limit, line ending excluded.
        limit: usize,
    },
    /// `.` LF inside a multi-line response: lenient readers end the message there, popgate's
    /// terminator is `.` CRLF (SPEC §5).
    #[error("terminator line ended by LF alone")]
    LfOnlyTerminator,
    /// `.` CR followed by something other than LF: a reader that takes CR as a line end
    /// sees a terminator.
    #[error("`.` CR not followed by LF in a multi-line response")]
    DotCrWithoutLf,
    /// `.` CRLF right after a line ended by LF alone: a terminator to a lenient client, a body
    /// line to popgate's CRLF-based inspection.
    #[error("terminator after a line ended by LF alone")]
    TerminatorAfterBareLf,
    /// A line beginning with `.` that is neither the terminator nor dot-stuffed (`..`).
    #[error("line beginning with `.` not dot-stuffed")]
    UnstuffedDotLine,
    /// A bare CR followed by `.` not dot-stuffed: a reader that takes CR as a line end sees
    /// a line beginning with `.` that popgate reads inside another line.
    #[error("`.` after a bare CR not dot-stuffed")]
    DotAfterBareCr,
    /// Bytes from the server after its `+OK` to STLS and before the TLS handshake.
    #[error("bytes after +OK to STLS before the handshake")]
    ServerDataBeforeHandshake,
    /// A CAPA (or bare AUTH) response too long to be a capability list.
    #[error("capability list too long")]
    CapabilityListTooLong,
}

impl Violation {
    /// A stable snake_case label for log fields and metric labels (bounded: one per variant).
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::TlsRecordOnPlaintext => "tls_record_on_plaintext",
            Violation::BareCr => "bare_cr",
            Violation::TlsHandshakeFailed => "tls_handshake_failed",
            Violation::CommandLineTooLong { .. } => "command_line_too_long",
            Violation::ForbiddenByte { .. } => "forbidden_byte",
            Violation::PipelinedAfterStls => "pipelined_after_stls",
            Violation::ClientDataBeforeHandshake => "client_data_before_handshake",
            Violation::InvalidGreeting => "invalid_greeting",
            Violation::StatusLineTooLong { .. } => "status_line_too_long",
            Violation::NotAStatusLine => "not_a_status_line",
            Violation::UnsolicitedStatus => "unsolicited_status",
            Violation::ContinuationOutsideSasl => "continuation_outside_sasl",
            Violation::RepeatedSaslContinuation => "repeated_sasl_continuation",
            Violation::BodyLineTooLong { .. } => "body_line_too_long",
            Violation::LfOnlyTerminator => "lf_only_terminator",
            Violation::DotCrWithoutLf => "dot_cr_without_lf",
            Violation::TerminatorAfterBareLf => "terminator_after_bare_lf",
            Violation::UnstuffedDotLine => "unstuffed_dot_line",
            Violation::DotAfterBareCr => "dot_after_bare_cr",
            Violation::ServerDataBeforeHandshake => "server_data_before_handshake",
            Violation::CapabilityListTooLong => "capability_list_too_long",
        }
    }

    /// Whether this violation is about message framing: a lenient client could have seen a
    /// different message boundary than popgate (SPEC §5).
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            Violation::LfOnlyTerminator
                | Violation::DotCrWithoutLf
                | Violation::TerminatorAfterBareLf
                | Violation::UnstuffedDotLine
                | Violation::DotAfterBareCr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_snake_case_and_distinct() {
        let all = [
            Violation::TlsRecordOnPlaintext,
            Violation::BareCr,
            Violation::TlsHandshakeFailed,
            Violation::CommandLineTooLong { limit: 255 },
            Violation::ForbiddenByte { byte: 0 },
            Violation::PipelinedAfterStls,
            Violation::ClientDataBeforeHandshake,
            Violation::InvalidGreeting,
            Violation::StatusLineTooLong { limit: 512 },
            Violation::NotAStatusLine,
            Violation::UnsolicitedStatus,
            Violation::ContinuationOutsideSasl,
            Violation::RepeatedSaslContinuation,
            Violation::BodyLineTooLong { limit: 1 },
            Violation::LfOnlyTerminator,
            Violation::DotCrWithoutLf,
            Violation::TerminatorAfterBareLf,
            Violation::UnstuffedDotLine,
            Violation::DotAfterBareCr,
            Violation::ServerDataBeforeHandshake,
            Violation::CapabilityListTooLong,
        ];
        let mut kinds: Vec<&str> = all.iter().map(Violation::kind).collect();
        for kind in &kinds {
            assert!(
                kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{kind}"
            );
        }
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), all.len());
    }

    #[test]
    fn display_is_human_text_with_data() {
        assert_eq!(
            Violation::ForbiddenByte { byte: 0x16 }.to_string(),
            "control byte 0x16 where a command was expected"
        );
        assert_eq!(
            Violation::StatusLineTooLong { limit: 512 }.to_string(),
            "status line longer than 512 octets"
        );
    }
}
