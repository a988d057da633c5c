//! The errors this crate returns at its boundary.
//!
//! [`CaError`] covers the administrative side (generating, importing and checking keys and
//! certificates); [`MintError`] covers minting on the hot path and is `Clone` so that every
//! waiter of a single-flight mint gets the same answer; [`DnError`] says what is wrong with a
//! distinguished-name string. Messages are lowercase and do not repeat their source.

use std::sync::Arc;

use time::OffsetDateTime;
use x509_parser::error::X509Error;

/// Why a key or certificate could not be generated, imported or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A key type name other than `ecdsa-p256`, `rsa-2048` or `rsa-3072`.
    #[error("unknown key type {0:?}, expected one of ecdsa-p256, rsa-2048, rsa-3072")]
    UnknownKeyType(String),
    /// A subject string that is not an RFC 4514 distinguished name we support.
    #[error("invalid distinguished name")]
    Dn(#[from] DnError),
    /// The input is not well-formed PEM.
    #[error("malformed PEM")]
    Pem(#[source] pem::PemError),
    /// The input holds no certificate.
    #[error("no certificate found")]
    NoCertificate,
    /// The input holds no private key.
    #[error("no private key found")]
    NoPrivateKey,
    /// The input holds more than one private key, so which one is meant is unclear.
    #[error("more than one private key found")]
    SeveralPrivateKeys,
    /// The private key is password-protected.
    #[error("encrypted private keys are not supported")]
    EncryptedKey,
    /// The private key does not parse, or is of a kind ring cannot sign with.
    #[error("private key does not parse or is not ECDSA P-256/P-384, Ed25519 or RSA")]
    KeyUnparseable,
    /// RSA key generation failed.
    #[error("RSA key generation failed")]
    RsaKeyGeneration(#[source] rsa::Error),
    /// The certificate is not valid DER X.509.
    #[error("certificate does not parse")]
    CertificateUnparseable(#[source] X509Error),
    /// The certificate's public key is not the private key's.
    #[error("certificate does not match the private key")]
    KeyMismatch,
    /// The certificate has no basic constraint `CA:true`.
    #[error("certificate is not a CA (no basic constraint CA:true)")]
    NotACa,
    /// The CA certificate's key usage lacks `keyCertSign`.
    #[error("CA certificate's key usage does not allow signing certificates")]
    CaCannotSign,
    /// The CA subject cannot be re-encoded byte for byte (multi-valued or repeated attributes,
    /// unusual string types), so certificates it issued would not chain to it.
    #[error("CA subject name uses an encoding the minting code cannot reproduce")]
    UnsupportedCaSubject,
    /// The certificate's validity ended before `now`.
    #[error("certificate expired at {not_after}")]
    Expired {
        /// End of the certificate's validity.
        not_after: OffsetDateTime,
    },
    /// The certificate's validity starts after `now`.
    #[error("certificate is not valid before {not_before}")]
    NotYetValid {
        /// Start of the certificate's validity.
        not_before: OffsetDateTime,
    },
    /// A validity period of zero days or longer than [`MAX_DAYS`](crate::MAX_DAYS).
    #[error("validity of {days} days is out of range 1..={max}", max = crate::MAX_DAYS)]
    DaysOutOfRange {
        /// The rejected number of days.
        days: u32,
    },
    /// A server certificate was requested without any name.
    #[error("no subject alternative name given")]
    NoSubjectAltNames,
    /// A subject alternative name that is neither a DNS name nor an IP address.
    #[error("subject alternative name {0:?} is neither a DNS name nor an IP address")]
    InvalidSubjectAltName(String),
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    RandomUnavailable,
    /// rcgen refused to build or sign the certificate or request.
    #[error("building the certificate failed")]
    Signing(#[source] rcgen::Error),
}

/// Why an upstream certificate could not be mirrored.
///
/// Clone, so that every thread waiting on the same single-flight mint gets the error too.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// The upstream certificate is not valid DER X.509 (a peer's garbage, not our bug).
    #[error("upstream certificate does not parse")]
    UpstreamUnparseable(#[source] X509Error),
    /// The upstream certificate has neither a usable subject alternative name nor a common
    /// name, so a mirror would name nothing.
    #[error("upstream certificate names no host")]
    NoNames,
    /// The upstream certificate's validity ends before it starts.
    #[error("upstream certificate's validity ends before it starts")]
    UpstreamValidityInverted,
    /// The authority's own certificate has expired.
    #[error("authority expired at {not_after}")]
    AuthorityExpired {
        /// End of the authority's validity.
        not_after: OffsetDateTime,
    },
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    RandomUnavailable,
    /// rcgen refused to build or sign the certificate.
    #[error("signing the minted certificate failed")]
    Signing(#[source] Arc<rcgen::Error>),
}

/// What is wrong with an RFC 4514 distinguished-name string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnError {
    /// Nothing but white space.
    #[error("empty distinguished name")]
    Empty,
    /// An attribute without `=` (RDN numbers count from 1, left to right).
    #[error("RDN {rdn}: expected TYPE=value")]
    MissingEquals {
        /// Position of the RDN in the string.
        rdn: usize,
    },
    /// An attribute type we do not know.
    #[error("unknown attribute type {0:?}")]
    UnknownAttribute(String),
    /// `TYPE=` with nothing after it.
    #[error("attribute {0} has an empty value")]
    EmptyValue(String),
    /// The same attribute type twice.
    #[error("attribute {0} appears more than once")]
    Duplicate(String),
    /// An unescaped `+` (multi-valued RDNs are not supported).
    #[error("multi-valued RDNs ('+') are not supported; escape a literal + as \\+")]
    MultiValued,
    /// A `#`-prefixed BER value, which we do not accept as input.
    #[error("hex-encoded (#) values are not supported")]
    HexValue,
    /// A `\` at the end, or followed by neither a special character nor two hex digits.
    #[error("invalid escape at byte {position}")]
    BadEscape {
        /// Byte offset of the backslash.
        position: usize,
    },
    /// Escaped bytes that do not form UTF-8.
    #[error("attribute {0} is not valid UTF-8 after unescaping")]
    NotUtf8(String),
    /// A country that is not two ASCII letters.
    #[error("country must be a two-letter code, got {0:?}")]
    BadCountry(String),
    /// A value that must be ASCII (emailAddress, DC, serialNumber) and is not.
    #[error("attribute {0} must be ASCII")]
    NotAscii(String),
    /// A value longer than RFC 5280's upper bound for its type.
    #[error("attribute {attribute} is longer than {max} characters")]
    TooLong {
        /// The attribute's short name.
        attribute: String,
        /// RFC 5280's upper bound.
        max: usize,
    },
}
