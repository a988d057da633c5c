//! The Proxy Authority: a CA certificate with its key, able to sign minted leaves and the
//! Proxy Server certificate.
//!
//! `popgate ca init` calls [`Authority::generate`] twice (the Proxy Authority and the untrusted
//! CA used for `mirror-untrusted`; only the subject differs). `popgate run` and `ca import`
//! call [`Authority::from_pem`], which refuses anything that would mint certificates clients
//! cannot verify. Reading and writing `pki/` is the caller's job.

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::{dn, extension, key, pem_bundle, serial, validity, CaError, Fingerprint, KeyType};

/// A CA that can issue certificates: its certificate, any chain above it, and its key.
///
/// Build with [`Authority::from_pem`]; share as `Arc<Authority>`.
pub struct Authority {
    cert_der: CertificateDer<'static>,
    /// Certificates above ours (when an organisation CA signed our CSR), sent after it.
    chain_above: Vec<CertificateDer<'static>>,
    key: KeyPair,
    /// rcgen's view of our certificate, used as the issuer when signing. Its subject encoding
    /// was checked to equal `cert_der`'s byte for byte, so issued certificates chain to it.
    issuer: Certificate,
    id: Fingerprint,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

/// A freshly generated CA, as PEM for the caller to write to `pki/`.
#[derive(Clone)]
pub struct GeneratedAuthority {
    /// The self-signed CA certificate.
    pub cert_pem: String,
    /// Its PKCS#8 private key (write with mode 0600).
    pub key_pem: String,
}

impl Authority {
    /// Generates a self-signed CA: basic constraints CA with path length 0, key usage
    /// keyCertSign and cRLSign, a random serial, valid from an hour before `now` for `days`.
    ///
    /// `subject` is an RFC 4514 DN such as `CN=Example Proxy CA,O=Example Ltd,C=GB`; the
    /// untrusted CA is the same call with e.g. `CN=popgate untrusted CA`. RSA key types take
    /// a while: run on a blocking thread.
    ///
    /// # Errors
    /// [`CaError::Dn`], [`CaError::DaysOutOfRange`], key generation or signing errors.
    pub fn generate(
        key_type: KeyType,
        subject: &str,
        days: u32,
        now: OffsetDateTime,
    ) -> Result<GeneratedAuthority, CaError> {
        let distinguished_name = dn::parse_dn(subject)?;
        let (not_before, not_after) = validity::window(now, days)?;
        let key = key_type.generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name;
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(serial::random_serial().ok_or(CaError::RandomUnavailable)?);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        // Not `params.key_usages`: rcgen pads the bit string (see `extension`).
        params.custom_extensions = vec![extension::key_usage(&[
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ])];
        let cert = params.self_signed(&key).map_err(CaError::Signing)?;
        Ok(GeneratedAuthority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Loads a CA from its certificate and key (PEM, or DER for either).
    ///
    /// `cert_pem` may hold a chain: the first certificate is the CA, the rest (up to the
    /// organisation's root) are sent after it in every minted chain.
    ///
    /// # Errors
    /// [`CaError::EncryptedKey`] and the other key errors; [`CaError::NoCertificate`],
    /// [`CaError::CertificateUnparseable`]; [`CaError::KeyMismatch`]; [`CaError::NotACa`];
    /// [`CaError::CaCannotSign`]; [`CaError::Expired`] / [`CaError::NotYetValid`] at `now`;
    /// [`CaError::UnsupportedCaSubject`].
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        now: OffsetDateTime,
    ) -> Result<Authority, CaError> {
        let key = key::key_pair_from_pem(key_pem)?;
        let mut certs = pem_bundle::certificates_from_pem(cert_pem)?.into_iter();
        let cert_der = certs.next().ok_or(CaError::NoCertificate)?;
        let chain_above = certs.collect();
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| CaError::CertificateUnparseable(e.into()))?;
        if !key::matches(cert.public_key(), &key) {
            return Err(CaError::KeyMismatch);
        }
        check_is_ca(&cert)?;
        validity::check_current(&cert, now)?;
        let issuer = issuer_for(&cert_der, &cert, &key)?;
        Ok(Authority {
            id: Fingerprint::of(&cert_der),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            cert_der,
            chain_above,
            key,
            issuer,
        })
    }

    /// Identifies this CA: the SHA-256 fingerprint of its certificate.
    pub fn id(&self) -> Fingerprint {
        self.id
    }

    /// The CA certificate (`popgate ca export --der`).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate as PEM (`popgate ca export`).
    pub fn cert_pem(&self) -> String {
        pem_bundle::certificate_pem(&self.cert_der)
    }

    /// Certificates above this CA, when it is subordinate to an organisation CA.
    pub fn chain_above(&self) -> &[CertificateDer<'static>] {
        &self.chain_above
    }

    /// Start of the CA's validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the CA's validity; minted leaves never outlive it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    pub(crate) fn issuer(&self) -> &Certificate {
        &self.issuer
    }

    pub(crate) fn key(&self) -> &KeyPair {
        &self.key
    }
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material in Debug output.
        f.debug_struct("Authority")
            .field("id", &self.id)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Refuses certificates that clients would not accept as an issuer.
pub(crate) fn check_is_ca(cert: &X509Certificate<'_>) -> Result<(), CaError> {
    let is_ca = cert
        .basic_constraints()
        .map_err(CaError::CertificateUnparseable)?
        .is_some_and(|constraints| constraints.value.ca);
    if !is_ca {
        return Err(CaError::NotACa);
    }
    let key_usage = cert.key_usage().map_err(CaError::CertificateUnparseable)?;
    if key_usage.is_some_and(|usage| !usage.value.key_cert_sign()) {
        return Err(CaError::CaCannotSign);
    }
    Ok(())
}

/// rcgen's issuer for `cert`, checked to write the exact subject bytes of `cert` as the
/// issuer of what it signs (clients such as webpki compare names byte for byte).
fn issuer_for(
    cert_der: &CertificateDer<'_>,
    cert: &X509Certificate<'_>,
    key: &KeyPair,
) -> Result<Certificate, CaError> {
    let params =
        CertificateParams::from_ca_cert_der(cert_der).map_err(|_| CaError::UnsupportedCaSubject)?;
    // Self-signing again only gives rcgen its `Certificate`; this copy is never published.
    let issuer = params.self_signed(key).map_err(CaError::Signing)?;
    let (_, reissued) = X509Certificate::from_der(issuer.der())
        .map_err(|e| CaError::CertificateUnparseable(e.into()))?;
    if reissued.subject().as_raw() != cert.subject().as_raw() {
        return Err(CaError::UnsupportedCaSubject);
    }
    Ok(issuer)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use time::Duration;

    use super::*;

    pub(crate) fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
    }

    /// One ECDSA test CA per run.
    pub(crate) fn test_ca() -> &'static GeneratedAuthority {
        static CA: OnceLock<GeneratedAuthority> = OnceLock::new();
        CA.get_or_init(|| {
            Authority::generate(
                KeyType::EcdsaP256,
                "CN=Test Proxy CA,O=Example Ltd,C=GB",
                3650,
                now(),
            )
            .unwrap()
        })
    }

    pub(crate) fn test_authority() -> Authority {
        let ca = test_ca();
        Authority::from_pem(ca.cert_pem.as_bytes(), ca.key_pem.as_bytes(), now()).unwrap()
    }

    fn load(cert_pem: &str, key_pem: &str) -> Result<Authority, CaError> {
        Authority::from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), now())
    }

    #[test]
    fn generated_ca_round_trips_through_from_pem() {
        let ca = test_ca();
        let authority = load(&ca.cert_pem, &ca.key_pem).unwrap();
        assert_eq!(authority.cert_pem(), ca.cert_pem);
        assert_eq!(authority.not_before(), now() - Duration::hours(1));
        assert_eq!(authority.not_after(), now() + Duration::days(3650));
        let (_, cert) = X509Certificate::from_der(authority.cert_der()).unwrap();
        let constraints = cert.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
        let usage = cert.key_usage().unwrap().unwrap().value;
        assert!(usage.key_cert_sign() && usage.crl_sign() && !usage.digital_signature());
        crate::strict_der::check(authority.cert_der()).unwrap();
        assert_eq!(
            dn::format_dn(cert.subject()),
            "CN=Test Proxy CA,O=Example Ltd,C=GB"
        );
    }

    #[test]
    fn two_generated_cas_have_different_serials() {
        let other = Authority::generate(KeyType::EcdsaP256, "CN=Test Proxy CA", 1, now()).unwrap();
        let serial = |pem: &str| {
            let der = pem_bundle::certificates_from_pem(pem.as_bytes())
                .unwrap()
                .remove(0);
            X509Certificate::from_der(&der)
                .unwrap()
                .1
                .raw_serial()
                .to_vec()
        };
        assert_ne!(serial(&other.cert_pem), serial(&test_ca().cert_pem));
    }

    #[test]
    fn mismatched_key_is_refused() {
        let other_key = KeyType::EcdsaP256.generate().unwrap().serialize_pem();
        let err = load(&test_ca().cert_pem, &other_key).unwrap_err();
        assert!(matches!(err, CaError::KeyMismatch), "{err:?}");
    }

    #[test]
    fn non_ca_certificate_is_refused() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let leaf = CertificateParams::new(vec!["mail.example.com".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let err = load(&leaf.pem(), &key.serialize_pem()).unwrap_err();
        assert!(matches!(err, CaError::NotACa), "{err:?}");
        assert_eq!(
            err.to_string(),
            "certificate is not a CA (no basic constraint CA:true)"
        );
    }

    #[test]
    fn ca_without_key_cert_sign_is_refused() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).unwrap();
        let err = load(&cert.pem(), &key.serialize_pem()).unwrap_err();
        assert!(matches!(err, CaError::CaCannotSign), "{err:?}");
    }

    #[test]
    fn expired_ca_is_refused() {
        let old = Authority::generate(
            KeyType::EcdsaP256,
            "CN=Old CA",
            1,
            now() - Duration::days(10),
        )
        .unwrap();
        let err = load(&old.cert_pem, &old.key_pem).unwrap_err();
        assert!(matches!(err, CaError::Expired { .. }), "{err:?}");
    }

    #[test]
    fn future_ca_is_refused() {
        let future = Authority::generate(
            KeyType::EcdsaP256,
            "CN=Future CA",
            1,
            now() + Duration::days(10),
        )
        .unwrap();
        let err = load(&future.cert_pem, &future.key_pem).unwrap_err();
        assert!(matches!(err, CaError::NotYetValid { .. }), "{err:?}");
    }

    #[test]
    fn encrypted_key_is_refused() {
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = load(&test_ca().cert_pem, encrypted).unwrap_err();
        assert_eq!(err.to_string(), "encrypted private keys are not supported");
    }

    #[test]
    fn garbage_certificate_is_refused() {
        let junk = pem::encode(&pem::Pem::new(
            "CERTIFICATE",
            b"\x30\x03\x02\x01\x00".to_vec(),
        ));
        let err = load(&junk, &test_ca().key_pem).unwrap_err();
        assert!(matches!(err, CaError::CertificateUnparseable(_)), "{err:?}");
        let err = load("no pem here", &test_ca().key_pem).unwrap_err();
        assert!(matches!(err, CaError::NoCertificate), "{err:?}");
    }

    #[test]
    fn combined_pem_loads_after_splitting() {
        let ca = test_ca();
        let combined = format!("{}{}", ca.key_pem, ca.cert_pem);
        let (cert_pem, key_pem) = pem_bundle::split_combined_pem(combined.as_bytes()).unwrap();
        assert_eq!(cert_pem, ca.cert_pem);
        assert_eq!(key_pem, ca.key_pem);
        load(&cert_pem, &key_pem).unwrap();
    }

    #[test]
    fn der_certificate_is_accepted() {
        let ca = test_ca();
        let der = pem_bundle::certificates_from_pem(ca.cert_pem.as_bytes())
            .unwrap()
            .remove(0);
        Authority::from_pem(&der, ca.key_pem.as_bytes(), now()).unwrap();
    }

    #[test]
    fn rsa_ca_round_trips() {
        let ca = rsa_test_ca();
        let authority = load(&ca.cert_pem, &ca.key_pem).unwrap();
        assert_eq!(authority.key().algorithm(), &rcgen::PKCS_RSA_SHA256);
    }

    /// A CA made by OpenSSL 3 (`openssl ecparam -genkey` SEC1 key with its EC PARAMETERS
    /// block, `openssl req -x509`, UTF8String and PrintableString names), valid 2026-2126.
    pub(crate) const OPENSSL_CA_KEY: &str = "\
-----BEGIN EC PARAMETERS-----\n\
BggqhkjOPQMBBw==\n\
-----END EC PARAMETERS-----\n\
-----BEGIN EC PRIVATE KEY-----\n\
MHcCAQEEIGwp0qi2ie2HD3UlYPCCoKBBasUh4flgzi5HBMyp5o73oAoGCCqGSM49\n\
AwEHoUQDQgAEz96C1tvIEMvqs3/wIziOKL39JVdScwCTxSVBt6Z85S7ZyFHZIo/d\n\
+1o3xlaq9N3Uxv/g6dV91GxMRXwQaTuzuQ==\n\
-----END EC PRIVATE KEY-----\n\
";
    pub(crate) const OPENSSL_CA_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIB7jCCAZWgAwIBAgICEjQwCgYIKoZIzj0EAwIwXDELMAkGA1UEBhMCR0IxEDAO\n\
BgNVBAgMB0VuZ2xhbmQxFDASBgNVBAoMC0V4YW1wbGUgTHRkMQswCQYDVQQLDAJJ\n\
VDEYMBYGA1UEAwwPT3BlblNTTCBUZXN0IENBMCAXDTI2MTEyMzE1MjQxNVoYDzIx\n\
MjYxMDMwMTUyNDE1WjBcMQswCQYDVQQGEwJHQjEQMA4GA1UECAwHRW5nbGFuZDEU\n\
MBIGA1UECgwLRXhhbXBsZSBMdGQxCzAJBgNVBAsMAklUMRgwFgYDVQQDDA9PcGVu\n\
U1NMIFRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATP3oLW28gQy+qz\n\
f/AjOI4ovf0lV1JzAJPFJUG3pnzlLtnIUdkij937WjfGVqr03dTG/+Dp1X3UbExF\n\
fBBpO7O5o0UwQzASBgNVHRMBAf8ECDAGAQH/AgEAMA4GA1UdDwEB/wQEAwIBBjAd\n\
BgNVHQ4EFgQUlQwRr8CNsg9fH8qxX26FIbsZaIcwCgYIKoZIzj0EAwIDRwAwRAIg\n\
YJeVz0wSk+smk4zUWBRSVr/Y5hgpdqtcOsA6n+QR9lUCIBD+8tj0aGgEvz7kZGn6\n\
+R4J+Cmlyu6DkfNT04KcDFJy\n\
-----END CERTIFICATE-----\n\
";

    pub(crate) fn openssl_ca_now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap() // 2030
    }

    #[test]
    fn openssl_ca_with_sec1_key_loads() {
        let authority = Authority::from_pem(
            OPENSSL_CA_CERT.as_bytes(),
            OPENSSL_CA_KEY.as_bytes(),
            openssl_ca_now(),
        )
        .unwrap();
        assert_eq!(authority.key().algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
    }

    /// An RSA-2048 CA over the shared test RSA key (generated once per run).
    pub(crate) fn rsa_test_ca() -> &'static GeneratedAuthority {
        static CA: OnceLock<GeneratedAuthority> = OnceLock::new();
        CA.get_or_init(|| {
            let key = key::key_pair_from_pem(key::tests::rsa_2048_pem().as_bytes()).unwrap();
            let mut params = CertificateParams::default();
            params.distinguished_name = dn::parse_dn("CN=RSA Test CA").unwrap();
            params.not_before = now() - Duration::days(1);
            params.not_after = now() + Duration::days(365);
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = params.self_signed(&key).unwrap();
            GeneratedAuthority {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            }
        })
    }
}
