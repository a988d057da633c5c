//! Every default and every accepted range, in one place, equal to SPEC §4.
//!
//! The checked model reads these when a JSON field is absent; the CLI may print them. When
//! SPEC names a value it is quoted here; where SPEC is silent the comment says why the
//! value was chosen.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::raw::{
    CertificateValidation, Direction, Interception, InvalidCertificate, LogFormat, LogLevel,
    MinTlsVersion, OnError, Oversize, TlsActionKind, TlsSupport, UpstreamTls, Verdict,
};

// ---- popgate.json -------------------------------------------------------------------------

/// SPEC §3: transparent interception with TPROXY.
pub const INTERCEPTION: Interception = Interception::Tproxy;
/// SPEC §4: both wildcard addresses (`::` is bound with `IPV6_V6ONLY`).
pub const BIND_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
];
/// SPEC §3: `SO_MARK` 0x2 on upstream sockets (the TPROXY divert mark is 0x1).
pub const UPSTREAM_MARK: u32 = 0x2;
/// SPEC §4: upstream connections leave from the gateway's own address.
pub const SPOOF_CLIENT_ADDRESS: bool = false;
/// SPEC §4: unprivileged user after binding.
pub const USER: &str = "popgate";
/// SPEC §4: unprivileged group after binding.
pub const GROUP: &str = "popgate";
/// SPEC §4: JSON log lines.
pub const LOG_FORMAT: LogFormat = LogFormat::Json;
/// SPEC §4: `info` and above.
pub const LOG_LEVEL: LogLevel = LogLevel::Info;
/// SPEC §4: 20000 concurrent sessions.
pub const MAX_CONNECTIONS: u32 = 20_000;
/// SPEC §4: 64 concurrent sessions per client address.
pub const MAX_CONNECTIONS_PER_CLIENT: u32 = 64;
/// SPEC §4: IPv6 clients counted per /64 (one subscriber's LAN is one client).
pub const CLIENT_IPV6_PREFIX: u8 = 64;
/// SPEC §4: 15 s for upstream connect, greeting and each TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// SPEC §4: 600 s, RFC 1939's ten-minute autologout timer.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// SPEC §4: 30 s to drain sessions after `SIGTERM`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// SPEC §4: state (quarantine, spool) outside the configuration directory.
pub const STATE_DIR: &str = "/var/lib/popgate";
/// SPEC §4: 1 GiB of quarantined originals.
pub const QUARANTINE_MAX_BYTES: u64 = 1_073_741_824;
/// SPEC §4: originals are kept 30 days.
pub const QUARANTINE_MAX_AGE_DAYS: u32 = 30;
/// SPEC §4: 1 GiB of spooled bodies.
pub const SPOOL_MAX_BYTES: u64 = 1_073_741_824;
/// SPEC §4: the control socket.
pub const CONTROL_SOCKET: &str = "/run/popgate/control.sock";
/// SPEC §4: the group that may use the control socket.
pub const CONTROL_GROUP: &str = "popgate";

// ---- policies/NAME.json -------------------------------------------------------------------

/// SPEC is silent: a policy file without `enabled` is enabled, as writing it suggests.
pub const ENABLED: bool = true;
/// SPEC is silent: `outbound`, the common case of protecting internal clients.
pub const DIRECTION: Direction = Direction::Outbound;
/// SPEC §2: `enabled` is the default mode.
pub const TLS_SUPPORT: TlsSupport = TlsSupport::Enabled;
/// SPEC §2: plaintext / STLS port.
pub const POP3_PORT: u16 = 110;
/// SPEC §2: implicit TLS port.
pub const POP3S_PORT: u16 = 995;
/// SPEC §2: the extension is off unless asked for.
pub const STARTTLS_ON_POP3: bool = false;

// ---- actions/NAME.json --------------------------------------------------------------------

/// SPEC §4 example: 8192 bytes per line.
pub const MAX_LINE_LENGTH: u32 = 8192;
/// SPEC §4 example: 32 MiB.
pub const MAX_MESSAGE_SIZE: u64 = 33_554_432;
/// SPEC §4 example: oversize messages pass uninspected (and are logged).
pub const OVERSIZE: Oversize = Oversize::Allow;
/// SPEC is silent: with no `authentication.allow`, every method popgate knows
/// (`USER`, `APOP`, `SASL:*`), as a plain POP3 server would offer.
pub const AUTHENTICATION_ALLOW: [&str; 3] = ["USER", "APOP", "SASL:*"];
/// SPEC is silent: login without TLS is allowed unless asked otherwise.
pub const REQUIRE_TLS: bool = false;
/// SPEC §4 example: content types pass unless a rule says otherwise.
pub const CONTENT_TYPES_DEFAULT: Verdict = Verdict::Allow;
/// SPEC §4 example: file names pass unless a rule says otherwise.
pub const FILE_NAMES_DEFAULT: Verdict = Verdict::Allow;
/// SPEC §4 example: antivirus is off until clamd is configured.
pub const ANTIVIRUS_ENABLED: bool = false;
/// SPEC §4 example: Debian's clamd socket.
pub const CLAMD: &str = "unix:/run/clamav/clamd.ctl";
/// SPEC §4 example: 30 s per scan.
pub const ANTIVIRUS_TIMEOUT: Duration = Duration::from_secs(30);
/// SPEC §4 example: an infected message is denied.
pub const ON_VIRUS: Verdict = Verdict::Deny;
/// SPEC §4 example: a failed scan is a temporary failure, so no mail is lost.
pub const ON_ERROR: OnError = OnError::Tempfail;
/// SPEC §4: a message that cannot be judged at all is quarantined (kept, not delivered),
/// since a parser's failure is what a hostile sender aims for. The SPEC example action sets
/// `allow` explicitly.
pub const UNPARSEABLE: Verdict = Verdict::Quarantine;
/// SPEC §4 example.
pub const SPAM_TAG: &str = "[SPAM] ";
/// SPEC §4 example.
pub const DENY_MESSAGE: &str = "The attachment {filename} was removed by {policy}: {reason}.";
/// SPEC is silent: without `tls`, an action inspects, the point of popgate.
pub const TLS_ACTION: TlsActionKind = TlsActionKind::Inspect;
/// SPEC is silent: without `tls.profile`, the profile of this name. A built-in one with the
/// SPEC example's values exists unless a file defines this name.
pub const TLS_PROFILE: &str = "TLS-Client.Standard";

// ---- tls-profiles/NAME.json ---------------------------------------------------------------

/// SPEC §4 example: TLS 1.2 (nothing older is ever spoken).
pub const MIN_VERSION: MinTlsVersion = MinTlsVersion::Tls12;
/// SPEC §4 example: TLS toward the server exactly when the client used it.
pub const UPSTREAM_TLS: UpstreamTls = UpstreamTls::Match;
/// SPEC §4 example: chain and name are checked.
pub const CERTIFICATE_VALIDATION: CertificateValidation = CertificateValidation::Full;
/// SPEC §4 example: the client sees the failure it would have seen without popgate.
pub const INVALID_CERTIFICATE: InvalidCertificate = InvalidCertificate::MirrorUntrusted;
/// SPEC §4 example: the platform's roots are trusted.
pub const SYSTEM_ROOTS: bool = true;
/// SPEC §4 example: 300 s.
pub const TLS_FAILURE_HOLDDOWN: Duration = Duration::from_secs(300);

// ---- accepted ranges ----------------------------------------------------------------------

/// RFC 5322 §2.1.1: 998 characters plus CRLF must always fit.
pub const MIN_LINE_LENGTH: u32 = 1000;
/// A line longer than 1 MiB is an attack, not mail.
pub const MAX_LINE_LENGTH_LIMIT: u32 = 1 << 20;
/// Inspection buffers the message; 4 GiB bounds that.
pub const MAX_MESSAGE_SIZE_LIMIT: u64 = 1 << 32;
/// Upper bound for `max_connections` (and so for the per-client limit).
pub const MAX_CONNECTIONS_LIMIT: u32 = 1_000_000;
/// Upper bound for every timeout, in seconds: one day.
pub const MAX_TIMEOUT_S: u64 = 86_400;
/// Upper bound for `tls_failure_holddown_s`: one week.
pub const MAX_HOLDDOWN_S: u64 = 604_800;
