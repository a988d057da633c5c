//! `ConfigError`: one problem in one file at one JSON path.
//!
//! Every error names the file (relative to the config directory) and the JSON path, so
//! `popgate check` can print `policies/out.json: .from[2]: not an address, CIDR, wildcard or
//! domain` and an administrator can go straight to the line. Kinds carry typed data; the
//! wording lives only in the `#[error]` attributes. Serde's messages are translated here
//! into the same kinds, so a JSON typo and a failed cross-check read alike.

use std::fmt;

use thiserror::Error;

use crate::policy::PortKind;
use crate::raw::{CertificateValidation, Interception, TlsSupport, Verdict};

/// A configuration problem, located by file and JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}: {path}: {kind}")]
pub struct ConfigError {
    /// File name relative to the config directory, e.g. `policies/out.json`.
    pub file: String,
    /// JSON path inside the file: `.` for the root, else like `.from[2]`, `.general.oversize`.
    pub path: String,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

/// What is wrong at a [`ConfigError`]'s location.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The bytes are not JSON (or end early).
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description, without its position suffix.
        message: String,
    },
    /// A field this file type does not have (the path ends with it).
    #[error("unknown field")]
    UnknownField,
    /// A required field is absent (the path ends with it).
    #[error("missing required field")]
    MissingField,
    /// A field appears twice in one object (the path ends with it).
    #[error("duplicate field")]
    DuplicateField,
    /// An enum value spelled in a way the field does not accept.
    #[error("unknown variant \"{found}\", expected one of {}", .expected.join(", "))]
    UnknownVariant {
        /// The spelling found.
        found: String,
        /// The accepted spellings.
        expected: Vec<String>,
    },
    /// Any other JSON-level mismatch (wrong type, number out of the type's range).
    #[error("{0}")]
    Parse(String),
    /// A name that no file of the referenced kind defines.
    #[error("no {target} named \"{name}\"")]
    UnknownReference {
        /// What kind of object was referenced.
        target: RefTarget,
        /// The name referenced.
        name: String,
    },
    /// Two files of one kind define the same name.
    #[error("duplicate name \"{name}\", also defined in {other_file}")]
    DuplicateName {
        /// The name.
        name: String,
        /// The file that defined it first.
        other_file: String,
    },
    /// Two enabled policies share an `order`, so precedence would be arbitrary.
    #[error("order {order} is also used by enabled policy \"{other_policy}\" ({other_file})")]
    DuplicateOrder {
        /// The order value.
        order: u32,
        /// The other policy's name.
        other_policy: String,
        /// The other policy's file.
        other_file: String,
    },
    /// `tls_support: disabled` with an action whose TLS action is `inspect`.
    #[error(
        "tls_support \"disabled\" cannot inspect TLS, but proxy action \"{action}\" has \
         tls.action \"inspect\""
    )]
    InspectWithTlsDisabled {
        /// The action's name.
        action: String,
    },
    /// An address list entry that parses as nothing.
    #[error("not an address, CIDR, wildcard or domain")]
    BadAddress,
    /// A domain in a client address list: clients have no names, so it would never match.
    #[error("a domain never matches a client address")]
    DomainForClient,
    /// An address list that matches nothing.
    #[error("an empty list matches nothing")]
    EmptyList,
    /// `interception: none` and a policy without `upstream`.
    #[error("interception \"none\" needs an upstream")]
    MissingUpstream,
    /// `spoof_client_address` with an interception that cannot honour it.
    #[error("spoof_client_address needs interception \"tproxy\", not \"{interception}\"")]
    SpoofNeedsTproxy {
        /// The configured interception.
        interception: Interception,
    },
    /// `starttls_on_pop3: true` with a mode other than `required`.
    #[error("starttls_on_pop3 applies only to tls_support \"required\", not \"{tls_support}\"")]
    StarttlsNeedsRequired {
        /// The policy's mode.
        tls_support: TlsSupport,
    },
    /// One port number used as pop3 by one enabled policy and pop3s by another.
    #[error(
        "port {port} is the {other_kind} port of enabled policy \"{other_policy}\" \
         ({other_file}); one port cannot serve both kinds"
    )]
    PortConflict {
        /// The port number.
        port: u16,
        /// How the other policy uses it.
        other_kind: PortKind,
        /// The other policy's name.
        other_policy: String,
        /// The other policy's file.
        other_file: String,
    },
    /// A policy's pop3 and pop3s ports are equal.
    #[error("pop3 and pop3s are both port {port}")]
    SamePorts {
        /// The port number.
        port: u16,
    },
    /// A number outside its accepted range.
    #[error("{value} is out of range {min} to {max}")]
    OutOfRange {
        /// The value found.
        value: u64,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// `upstream_mark: 0` where upstream sockets must be distinguishable.
    #[error("0 leaves upstream sockets unmarked; allowed only with interception \"none\"")]
    ZeroMark,
    /// An `upstream` string that is not a host, `host:port` or `[IPv6]:port`.
    #[error("\"{value}\" is not host, host:port or [IPv6]:port")]
    BadUpstream {
        /// The value found.
        value: String,
    },
    /// A `clamd` endpoint in neither accepted form.
    #[error("\"{value}\" is not unix:/absolute/path or tcp:host:port")]
    BadClamd {
        /// The value found.
        value: String,
    },
    /// Not an IP address.
    #[error("\"{value}\" is not an IP address")]
    BadIpAddress {
        /// The value found.
        value: String,
    },
    /// Not an `IP:port` socket address.
    #[error("\"{value}\" is not IP:port")]
    BadSocketAddress {
        /// The value found.
        value: String,
    },
    /// An authentication method popgate does not know.
    #[error("unknown mechanism \"{value}\", expected USER, APOP, SASL:NAME or SASL:*")]
    BadAuthMechanism {
        /// The value found.
        value: String,
    },
    /// A content-type pattern that is neither `type/subtype` nor `type/*`.
    #[error("\"{value}\" is not type/subtype or type/*")]
    BadContentType {
        /// The value found.
        value: String,
    },
    /// An empty file-name pattern, or one with a path separator or control character.
    #[error("\"{value}\" is not a file-name pattern")]
    BadFileNamePattern {
        /// The value found.
        value: String,
    },
    /// A header rule not shaped `Name: value`.
    #[error("\"{value}\" is not \"Name: value\" (use \"Name: *\" for any value)")]
    BadHeaderRule {
        /// The value found.
        value: String,
    },
    /// A name that is empty, too long, padded with spaces or contains control characters.
    #[error("a name must be 1 to 128 characters, without control characters or outer spaces")]
    BadName,
    /// A verdict that makes no sense at this place.
    #[error("verdict \"{verdict}\" is not allowed here, expected one of {}", list(.allowed))]
    VerdictNotAllowed {
        /// The verdict found.
        verdict: Verdict,
        /// The verdicts accepted here.
        allowed: Vec<Verdict>,
    },
    /// Text that ends up in a header or reply contains a control character.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// A `{name}` placeholder that is not substituted.
    #[error("unknown placeholder {{{name}}}, expected {{filename}}, {{policy}}, {{action}} or {{reason}}")]
    UnknownPlaceholder {
        /// The name between the braces.
        name: String,
    },
    /// A `{` without its `}`.
    #[error("unclosed \"{{\"")]
    UnclosedPlaceholder,
    /// A validating profile with nothing to validate against.
    #[error("certificate_validation \"{validation}\" needs trust.system_roots or trust.ca_files")]
    NoTrustAnchors {
        /// The profile's validation mode.
        validation: CertificateValidation,
    },
    /// A string that must not be empty.
    #[error("must not be empty")]
    Empty,
    /// A path that must be absolute.
    #[error("\"{value}\" is not an absolute path")]
    RelativePath {
        /// The path as written.
        value: String,
    },
}

/// What an [`ConfigErrorKind::UnknownReference`] pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefTarget {
    /// `policies/*.json` → `proxy_action`.
    ProxyAction,
    /// `actions/*.json` → `tls.profile`.
    TlsProfile,
}

impl fmt::Display for RefTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ProxyAction => "proxy action",
            Self::TlsProfile => "TLS profile",
        })
    }
}

impl ConfigErrorKind {
    /// Whether this error is about how a field relates to other fields (or other files),
    /// rather than about the field's own value. When a file's invalid fields are left out
    /// to find its remaining errors (`salvage`), they read as their defaults, so only
    /// errors about a value itself can be trusted.
    pub(crate) fn depends_on_other_fields(&self) -> bool {
        matches!(
            self,
            Self::InspectWithTlsDisabled { .. }
                | Self::MissingUpstream
                | Self::SpoofNeedsTproxy { .. }
                | Self::StarttlsNeedsRequired { .. }
                | Self::PortConflict { .. }
                | Self::SamePorts { .. }
                | Self::ZeroMark
                | Self::NoTrustAnchors { .. }
                | Self::DuplicateName { .. }
                | Self::DuplicateOrder { .. }
        )
    }
}

impl ConfigError {
    /// Builds an error for `file` at `path`.
    pub(crate) fn new(file: &str, path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        Self {
            file: file.to_owned(),
            path: path.into(),
            kind,
        }
    }

    /// Translates a serde error (with the path where it happened) into our kinds.
    pub(crate) fn from_serde(
        file: &str,
        err: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let mut path = json_path(err.path());
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return Self::new(file, path, syntax_kind(&inner));
        }
        let message = strip_position(&inner);
        let kind = if message.starts_with("unknown field `") {
            ConfigErrorKind::UnknownField
        } else if let Some(field) = quoted_after(&message, "missing field `") {
            push_field(&mut path, &field);
            ConfigErrorKind::MissingField
        } else if let Some(field) = quoted_after(&message, "duplicate field `") {
            push_field(&mut path, &field);
            ConfigErrorKind::DuplicateField
        } else if let Some(found) = quoted_after(&message, "unknown variant `") {
            let expected = message
                .split_once("expected")
                .map(|(_, rest)| backticked(rest))
                .unwrap_or_default();
            ConfigErrorKind::UnknownVariant { found, expected }
        } else {
            ConfigErrorKind::Parse(message)
        };
        Self::new(file, path, kind)
    }

    /// The error for bytes after the top-level value (`{...} junk`).
    pub(crate) fn trailing(file: &str, err: &serde_json::Error) -> Self {
        Self::new(file, ".", syntax_kind(err))
    }
}

/// Renders a serde path as `.a.b[2]`, and the root as `.`.
fn json_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_field(&mut out, key),
            Segment::Enum { variant } => push_field(&mut out, variant),
            // A key serde had not read yet (syntax errors): the position says where.
            Segment::Unknown => {}
        }
    }
    // The root is `.`; a path starting at an array element reads `.[0]`.
    if !out.starts_with('.') {
        out.insert(0, '.');
    }
    out
}

/// Appends `.field` to a path, treating the root `.` as empty.
pub(crate) fn push_field(path: &mut String, field: &str) {
    if path == "." {
        path.clear();
    }
    path.push('.');
    path.push_str(field);
}

fn syntax_kind(err: &serde_json::Error) -> ConfigErrorKind {
    ConfigErrorKind::Syntax {
        line: err.line(),
        column: err.column(),
        message: strip_position(err),
    }
}

/// serde_json appends " at line L column C"; our errors carry the position separately.
fn strip_position(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

/// The backticked word right after `prefix`, if `message` starts with it.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(word, _)| word.to_owned())
}

/// Every backticked word of `text`, in order.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn list(verdicts: &[Verdict]) -> String {
    let names: Vec<&str> = verdicts.iter().map(|v| v.as_str()).collect();
    names.join(", ")
}
