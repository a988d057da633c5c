//! What `popgate cert show` prints about a certificate, and the X.509 reading shared by the
//! rest of the crate (parsing, host-name checks).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::{dn, key, pem_bundle, CaError, Fingerprint};

/// A summary of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject, RFC 4514 (`CN=Example Proxy CA,O=Example Ltd,C=GB`).
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// DNS names as written, IP addresses in their usual text form; other kinds are left out.
    pub sans: Vec<String>,
    /// `ecdsa-p256`, `ecdsa-p384`, `rsa-2048`, `rsa-3072`, `ed25519`, ... (dotted OID when
    /// unknown).
    pub key_type: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whole days from `now` to `not_after`; negative once expired.
    pub days_left: i64,
    /// Whether basic constraints say CA:true.
    pub is_ca: bool,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
}

/// Days under which `popgate cert show` warns about expiry.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

impl CertInfo {
    /// Summarises the first certificate in `input` (PEM or DER) as seen at `now`.
    ///
    /// # Errors
    /// [`CaError::NoCertificate`], [`CaError::Pem`], [`CaError::CertificateUnparseable`].
    pub fn from_pem(input: &[u8], now: OffsetDateTime) -> Result<CertInfo, CaError> {
        let chain = pem_bundle::certificates_from_pem(input)?;
        let first = chain.first().ok_or(CaError::NoCertificate)?;
        Self::from_der(first, now)
    }

    /// Summarises one DER certificate as seen at `now`.
    ///
    /// # Errors
    /// [`CaError::CertificateUnparseable`].
    pub fn from_der(der: &[u8], now: OffsetDateTime) -> Result<CertInfo, CaError> {
        let cert = parse_certificate(der).map_err(CaError::CertificateUnparseable)?;
        let not_after = cert.validity().not_after.to_datetime();
        let sans = cert
            .subject_alternative_name()
            .map_err(CaError::CertificateUnparseable)?
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(name_text)
                    .collect()
            })
            .unwrap_or_default();
        Ok(CertInfo {
            subject: dn::format_dn(cert.subject()),
            issuer: dn::format_dn(cert.issuer()),
            sans,
            key_type: key::key_type_name(cert.public_key()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after,
            days_left: (not_after - now).whole_days(),
            is_ca: cert.is_ca(),
            fingerprint_sha256: Fingerprint::of(der).to_string(),
        })
    }

    /// `not_after` as RFC 3339 (`2035-06-15T12:00:00Z`), for `--json` output.
    pub fn not_after_rfc3339(&self) -> String {
        // X.509 times have four-digit years and a UTC offset, which RFC 3339 always formats;
        // the fallback is unreachable in practice and still not a panic.
        self.not_after
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.not_after.unix_timestamp().to_string())
    }

    /// Whether the certificate expires within [`EXPIRY_WARNING_DAYS`] (or has expired).
    pub fn expires_soon(&self) -> bool {
        self.days_left < EXPIRY_WARNING_DAYS
    }
}

/// Parses one DER certificate; trailing bytes are ignored.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, X509Error> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(X509Error::from)
}

/// Whether `name` is a DNS host name a certificate may carry: dot-separated labels of 1-63
/// letters, digits, `-` or `_` (not starting or ending with `-`), at most 253 characters, an
/// optional trailing dot, and optionally `*.` in front.
pub(crate) fn is_host_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn name_text(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
        _ => None,
    }
}

/// An IP address SAN's octets as an address (4 or 16 bytes; anything else is malformed).
pub(crate) fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::authority::tests::{now, rsa_test_ca, test_authority, test_ca};
    use crate::server_cert;

    #[test]
    fn ca_info_shows_subject_key_type_and_days_left() {
        let info = CertInfo::from_pem(test_ca().cert_pem.as_bytes(), now()).unwrap();
        assert_eq!(info.subject, "CN=Test Proxy CA,O=Example Ltd,C=GB");
        assert_eq!(info.issuer, info.subject);
        assert_eq!(info.key_type, "ecdsa-p256");
        assert!(info.is_ca);
        assert_eq!(info.days_left, 3650);
        assert!(!info.expires_soon());
        assert!(info.sans.is_empty());
        assert_eq!(info.fingerprint_sha256, test_authority().id().to_string());
        assert_eq!(info.not_after_rfc3339(), "2035-06-13T15:06:40Z");
    }

    #[test]
    fn rsa_key_type_is_named_with_its_size() {
        let info = CertInfo::from_pem(rsa_test_ca().cert_pem.as_bytes(), now()).unwrap();
        assert_eq!(info.key_type, "rsa-2048");
    }

    #[test]
    fn server_info_lists_names_and_warns_near_expiry() {
        let sans = vec!["pop.example.com".to_owned(), "::1".to_owned()];
        let (cert_pem, _) = server_cert::generate(&test_authority(), &sans, 20, now()).unwrap();
        let info = CertInfo::from_pem(cert_pem.as_bytes(), now()).unwrap();
        assert_eq!(info.sans, sans);
        assert_eq!(info.subject, "CN=pop.example.com");
        assert!(!info.is_ca);
        assert!(info.expires_soon());
        let later = CertInfo::from_pem(cert_pem.as_bytes(), now() + Duration::days(25)).unwrap();
        assert_eq!(later.days_left, -5);
    }

    #[test]
    fn host_names_are_recognised() {
        for good in [
            "example.com",
            "*.example.com",
            "a-b.c_d.example.",
            "localhost",
            "x",
        ] {
            assert!(is_host_name(good), "{good}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        for bad in [
            "",
            "*",
            "a..b",
            "-a.com",
            "a-.com",
            "a b",
            "ex\u{e4}mple.com",
            "*.*.a",
            &long_label,
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
