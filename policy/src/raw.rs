//! Serde mirror of the JSON files of SPEC §4, field for field.
//!
//! These types exist only to be deserialized: every struct denies unknown fields and every
//! optional field is an `Option`, so "absent" stays distinguishable from "set to the
//! default". Defaults, cross-references and value checks live in the checked model
//! (`config.rs` and the files it calls); nothing here validates beyond JSON types and enum
//! spellings. The enums are shared with the checked model because their spelling *is*
//! their meaning.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// `popgate.json`: global settings; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobal {
    /// How connections reach popgate (SPEC §3).
    pub interception: Option<Interception>,
    /// Listener addresses, e.g. `["0.0.0.0", "::"]`.
    pub bind_addresses: Option<Vec<String>>,
    /// `SO_MARK` on upstream sockets.
    pub upstream_mark: Option<u32>,
    /// Upstream connections leave from the client's address (tproxy only).
    pub spoof_client_address: Option<bool>,
    /// User to drop to when started as root.
    pub user: Option<String>,
    /// Group to drop to when started as root.
    pub group: Option<String>,
    /// Log output settings.
    pub log: Option<RawLog>,
    /// Prometheus endpoint settings.
    pub metrics: Option<RawMetrics>,
    /// Connection limits and timeouts.
    pub limits: Option<RawLimits>,
    /// Where the quarantine and the spool live.
    pub state_dir: Option<String>,
    /// Bounds of the quarantine.
    pub quarantine: Option<RawQuarantine>,
    /// Bounds of the spool.
    pub spool: Option<RawSpool>,
    /// The control socket the CLI talks to.
    pub control: Option<RawControl>,
}

/// `popgate.json` → `quarantine`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// Total size of the quarantined originals.
    pub max_bytes: Option<u64>,
    /// Originals older than this many days are removed.
    pub max_age_days: Option<u32>,
}

/// `popgate.json` → `spool`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    /// Total size of the bodies spooled for inspection.
    pub max_bytes: Option<u64>,
}

/// `popgate.json` → `control`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    /// Path of the Unix socket.
    pub socket: Option<String>,
    /// Group owning the socket (mode 0660).
    pub group: Option<String>,
}

/// `popgate.json` → `log`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `json` or `text`.
    pub format: Option<LogFormat>,
    /// Minimum level logged.
    pub level: Option<LogLevel>,
}

/// `popgate.json` → `metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `IP:port` of the `/metrics` listener.
    pub listen: Option<String>,
}

/// `popgate.json` → `limits`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Concurrent sessions in total.
    pub max_connections: Option<u32>,
    /// Concurrent sessions per client address.
    pub max_connections_per_client: Option<u32>,
    /// IPv6 clients are counted per prefix of this length (0..=128).
    pub client_ipv6_prefix: Option<u8>,
    /// Upstream connect, greeting and each TLS handshake, in seconds.
    pub handshake_timeout_s: Option<u64>,
    /// Default silent-peer timeout, in seconds.
    pub idle_timeout_s: Option<u64>,
    /// Drain time after `SIGTERM`, in seconds.
    pub shutdown_grace_s: Option<u64>,
}

/// `policies/NAME.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// The policy's name (what the CLI uses).
    pub name: String,
    /// Whether the policy takes part in selection.
    pub enabled: Option<bool>,
    /// Precedence: lower orders are tried first.
    pub order: u32,
    /// Which certificate the client is shown.
    pub direction: Option<Direction>,
    /// Client address entries.
    pub from: Vec<String>,
    /// Server address or name entries.
    pub to: Vec<String>,
    /// Which ports listen and whether popgate terminates TLS.
    pub tls_support: Option<TlsSupport>,
    /// Port numbers for both kinds.
    pub ports: Option<RawPorts>,
    /// Explicit server; `null` and absent both mean "none".
    #[serde(default)]
    pub upstream: Option<RawUpstream>,
    /// Also listen on the pop3 port but demand STLS (SPEC §2 extension).
    pub starttls_on_pop3: Option<bool>,
    /// Name of the proxy action applied.
    pub proxy_action: String,
}

/// A policy's `ports` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPorts {
    /// Plaintext / STLS port.
    pub pop3: Option<u16>,
    /// Implicit TLS port.
    pub pop3s: Option<u16>,
}

/// A policy's `upstream`: `"host"`, `"host:port"` or `{"host", "pop3", "pop3s"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawUpstream {
    /// The string form, parsed later (`host`, `host:port`, `[v6]:port`).
    Text(String),
    /// The object form.
    Ports(RawUpstreamPorts),
}

/// The object form of `upstream`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamPorts {
    /// Server host name or IP address.
    pub host: String,
    /// Server port for clients of the pop3 port.
    pub pop3: Option<u16>,
    /// Server port for clients of the pop3s port.
    pub pop3s: Option<u16>,
}

/// `actions/NAME.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    /// The action's name, referenced by policies.
    pub name: String,
    /// Timeouts and size limits.
    pub general: Option<RawGeneral>,
    /// Which login methods clients may use.
    pub authentication: Option<RawAuthentication>,
    /// Content-Type rules.
    pub content_types: Option<RawRuleSet>,
    /// Attachment file-name rules.
    pub file_names: Option<RawRuleSet>,
    /// Header rules.
    pub headers: Option<RawHeaderRules>,
    /// clamd scanning.
    pub antivirus: Option<RawAntivirus>,
    /// Verdict for messages the MIME parser cannot read.
    pub unparseable: Option<Verdict>,
    /// Subject prefix for `tag`.
    pub spam_tag: Option<String>,
    /// Text replacing stripped or denied content.
    pub deny_message: Option<String>,
    /// What to do with TLS.
    pub tls: Option<RawTls>,
}

/// An action's `general` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeneral {
    /// Silent-peer timeout once the session is up, in seconds.
    pub idle_timeout_s: Option<u64>,
    /// Longest line accepted from either peer, terminator included.
    pub max_line_length: Option<u32>,
    /// Largest message inspected, in bytes.
    pub max_message_size: Option<u64>,
    /// What happens to messages above `max_message_size`.
    pub oversize: Option<Oversize>,
}

/// An action's `authentication` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthentication {
    /// `USER`, `APOP`, `SASL:NAME` or `SASL:*`.
    pub allow: Option<Vec<String>>,
    /// Refuse login without TLS for every client.
    pub require_tls: Option<bool>,
}

/// `content_types` and `file_names`: a default verdict and ordered rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleSet {
    /// Verdict when no rule matches.
    pub default: Option<Verdict>,
    /// Rules, first match wins.
    pub rules: Option<Vec<RawRule>>,
}

/// `headers`: ordered rules only (a message without a matching header passes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderRules {
    /// Rules, first match wins.
    pub rules: Option<Vec<RawRule>>,
}

/// One `{ "match": ..., "action": ... }` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Pattern, whose syntax depends on the rule set.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Verdict when the pattern matches.
    pub action: Verdict,
}

/// An action's `antivirus` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAntivirus {
    /// Whether messages are sent to clamd.
    pub enabled: Option<bool>,
    /// `unix:/path` or `tcp:host:port`.
    pub clamd: Option<String>,
    /// Scan timeout, in seconds.
    pub timeout_s: Option<u64>,
    /// Verdict for an infected message.
    pub on_virus: Option<Verdict>,
    /// What happens when scanning fails.
    pub on_error: Option<OnError>,
}

/// An action's `tls` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// `inspect`, `allow` or `drop`.
    pub action: Option<TlsActionKind>,
    /// Name of the TLS profile.
    pub profile: Option<String>,
}

/// `tls-profiles/NAME.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsProfile {
    /// The profile's name, referenced by actions.
    pub name: String,
    /// Lowest TLS version on both legs.
    pub min_version: Option<MinTlsVersion>,
    /// When popgate uses TLS toward the server.
    pub upstream_tls: Option<UpstreamTls>,
    /// How the server's certificate is checked.
    pub certificate_validation: Option<CertificateValidation>,
    /// What happens when it fails the check.
    pub invalid_certificate: Option<InvalidCertificate>,
    /// Trust anchors.
    pub trust: Option<RawTrust>,
    /// Servers for which upstream TLS is mandatory.
    pub force_encrypt: Option<Vec<String>>,
    /// Clients that must use TLS before logging in.
    pub require_client_tls: Option<Vec<String>>,
    /// Clients exempted from `require_client_tls`.
    pub require_client_tls_except: Option<Vec<String>>,
    /// How long a server's failed TLS is held down, in seconds.
    pub tls_failure_holddown_s: Option<u64>,
}

/// A profile's `trust` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrust {
    /// Trust the platform's root store.
    pub system_roots: Option<bool>,
    /// Extra PEM files, relative to the config directory.
    pub ca_files: Option<Vec<String>>,
}

/// Generates a plain enum with its serde spelling, `as_str` and `Display`, so the JSON
/// spelling, error messages and CLI output can never disagree.
macro_rules! spelled_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// The JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spelled_enum!(
    /// How connections reach popgate (SPEC §3).
    Interception {
        /// `IP_TRANSPARENT` listeners; the local address is the original destination.
        Tproxy = "tproxy",
        /// NAT redirect; the original destination comes from `SO_ORIGINAL_DST`.
        Redirect = "redirect",
        /// Explicit proxy; policies name their `upstream`.
        None = "none",
    }
);

spelled_enum!(
    /// Which certificate the client is shown (not matched against the connection).
    Direction {
        /// External clients, an internal server: the static Proxy Server certificate.
        Inbound = "inbound",
        /// Internal clients, external servers: a certificate minted by the Proxy Authority.
        Outbound = "outbound",
    }
);

spelled_enum!(
    /// A policy's TLS support mode (SPEC §2).
    TlsSupport {
        /// Plaintext POP3 only, on the pop3 port.
        Disabled = "disabled",
        /// pop3 with STLS offered, and pop3s.
        Enabled = "enabled",
        /// pop3s only (plus pop3 demanding STLS with `starttls_on_pop3`).
        Required = "required",
    }
);

/// An inspection verdict (SPEC §4, "Verdicts"), configured in an action or reached by
/// inspection.
///
/// The order is the *strength* order, explicit in [`Verdict::strength`]: `Allow < Tag <
/// Strip < Deny < Quarantine < Tempfail`. When several rules fire, the strongest verdict
/// decides; `strip` and `tag` below a `deny` apply together. `Tempfail` cannot be written
/// in a configuration (antivirus `on_error: tempfail` leads to it): nothing is delivered
/// now and the message stays on the server, so it never loses mail and ranks above all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Verdict {
    /// The message passes byte for byte.
    #[serde(rename = "allow")]
    Allow,
    /// The offending MIME part is replaced by a text part.
    #[serde(rename = "strip")]
    Strip,
    /// The whole message is replaced.
    #[serde(rename = "deny")]
    Deny,
    /// As `deny`, and the original is kept in `quarantine/`.
    #[serde(rename = "quarantine")]
    Quarantine,
    /// `spam_tag` is prefixed to the Subject.
    #[serde(rename = "tag")]
    Tag,
    /// Nothing is delivered now; the client gets `-ERR [SYS/TEMP]` and retries later.
    #[serde(skip)]
    Tempfail,
}

impl Verdict {
    /// The JSON spelling (also the log and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Strip => "strip",
            Verdict::Deny => "deny",
            Verdict::Quarantine => "quarantine",
            Verdict::Tag => "tag",
            Verdict::Tempfail => "tempfail",
        }
    }

    /// The strength rank: allow 0, tag 1, strip 2, deny 3, quarantine 4, tempfail 5.
    pub fn strength(self) -> u8 {
        match self {
            Verdict::Allow => 0,
            Verdict::Tag => 1,
            Verdict::Strip => 2,
            Verdict::Deny => 3,
            Verdict::Quarantine => 4,
            Verdict::Tempfail => 5,
        }
    }

    /// The verdict as it applies to a whole message rather than to one part: a message-level
    /// rule (header, `unparseable`, antivirus) has no part to strip, so `strip` is `deny`.
    pub fn for_message(self) -> Verdict {
        match self {
            Verdict::Strip => Verdict::Deny,
            other => other,
        }
    }
}

impl PartialOrd for Verdict {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Verdict {
    /// By [`Verdict::strength`].
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.strength().cmp(&other.strength())
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

spelled_enum!(
    /// Treatment of messages larger than `max_message_size`.
    Oversize {
        /// Passed uninspected and logged.
        Allow = "allow",
        /// Denied.
        Deny = "deny",
    }
);

spelled_enum!(
    /// Treatment of a message the scanner could not judge.
    OnError {
        /// Passed.
        Allow = "allow",
        /// Denied.
        Deny = "deny",
        /// `-ERR [SYS/TEMP]`; the message stays on the server for a retry.
        Tempfail = "tempfail",
    }
);

spelled_enum!(
    /// What a proxy action does with TLS.
    TlsActionKind {
        /// Terminate, inspect, re-encrypt.
        Inspect = "inspect",
        /// Opaque pass-through, uninspected.
        Allow = "allow",
        /// Refuse.
        Drop = "drop",
    }
);

spelled_enum!(
    /// When popgate uses TLS toward the server.
    UpstreamTls {
        /// Exactly when the client used TLS.
        Match = "match",
        /// Whenever the server offers STLS.
        Opportunistic = "opportunistic",
        /// Always; no TLS means no session.
        Mandatory = "mandatory",
        /// Never.
        None = "none",
    }
);

spelled_enum!(
    /// How the server's certificate is checked.
    CertificateValidation {
        /// Chain to trusted roots and name.
        Full = "full",
        /// Chain only, names ignored.
        ChainOnly = "chain-only",
        /// No check.
        None = "none",
    }
);

spelled_enum!(
    /// What happens when the server's certificate fails validation.
    InvalidCertificate {
        /// Mint the client's certificate with the untrusted CA.
        MirrorUntrusted = "mirror-untrusted",
        /// Refuse the session.
        Block = "block",
    }
);

spelled_enum!(
    /// Lowest TLS version accepted on either leg (never below 1.2).
    MinTlsVersion {
        /// TLS 1.2.
        Tls12 = "1.2",
        /// TLS 1.3.
        Tls13 = "1.3",
    }
);

spelled_enum!(
    /// Log line format.
    LogFormat {
        /// One JSON object per line.
        Json = "json",
        /// Human-readable text.
        Text = "text",
    }
);

spelled_enum!(
    /// Minimum log level.
    LogLevel {
        /// Everything.
        Trace = "trace",
        /// Debugging detail.
        Debug = "debug",
        /// Normal operation.
        Info = "info",
        /// Degraded service.
        Warn = "warn",
        /// Operator needed.
        Error = "error",
    }
);

impl<'de> Deserialize<'de> for RawUpstream {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Hand-written instead of `#[serde(untagged)]`: untagged enums lose the inner error
        // ("data did not match any variant"), and the path to a bad field of the object.
        struct UpstreamVisitor;

        impl<'de> Visitor<'de> for UpstreamVisitor {
            type Value = RawUpstream;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, \"host\", \"host:port\" or {\"host\", \"pop3\", \"pop3s\"}")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawUpstream, E> {
                Ok(RawUpstream::Text(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawUpstream, A::Error> {
                let ports =
                    RawUpstreamPorts::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawUpstream::Ports(ports))
            }
        }

        deserializer.deserialize_any(UpstreamVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_strength_order_matches_the_spec() {
        let ordered = [
            Verdict::Allow,
            Verdict::Tag,
            Verdict::Strip,
            Verdict::Deny,
            Verdict::Quarantine,
            Verdict::Tempfail,
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(Verdict::Strip.for_message(), Verdict::Deny);
        assert_eq!(Verdict::Tag.for_message(), Verdict::Tag);
    }

    #[test]
    fn tempfail_cannot_be_configured() {
        let parsed: Result<Verdict, _> = serde_json::from_str("\"tempfail\"");
        assert!(parsed.is_err());
        let parsed: Result<Verdict, _> = serde_json::from_str("\"tag\"");
        assert_eq!(parsed.ok(), Some(Verdict::Tag));
    }
}
