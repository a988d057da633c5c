//! The Proxy Server certificate shown to inbound clients: generated and signed by the Proxy
//! Authority (`popgate cert server --generate`), or imported and checked (`--import`).
//!
//! PEM in, PEM out; the caller writes `pki/server.crt` and `pki/server.key`.

use std::net::IpAddr;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use time::OffsetDateTime;

use crate::{cert_info, extension, key, pem_bundle, serial, validity, Authority, CaError, KeyType};

/// Generates an ECDSA P-256 server certificate for `sans` (DNS names or IP addresses),
/// signed by `authority`, valid from an hour before `now` for `days` (clipped to the
/// authority's validity). Returns `(cert_pem, key_pem)`; `cert_pem` holds the leaf, then the
/// Proxy Authority and any certificates above it.
///
/// The subject is `CN=` the first name.
///
/// # Errors
/// [`CaError::NoSubjectAltNames`], [`CaError::InvalidSubjectAltName`],
/// [`CaError::DaysOutOfRange`], [`CaError::Expired`] if the authority has expired,
/// signing errors.
pub fn generate(
    authority: &Authority,
    sans: &[String],
    days: u32,
    now: OffsetDateTime,
) -> Result<(String, String), CaError> {
    let first = sans.first().ok_or(CaError::NoSubjectAltNames)?;
    let (not_before, not_after) = validity::window(now, days)?;
    if now > authority.not_after() {
        return Err(CaError::Expired {
            not_after: authority.not_after(),
        });
    }
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans
        .iter()
        .map(|name| san_of(name))
        .collect::<Result<_, _>>()?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, first.trim());
    params.not_before = not_before.max(authority.not_before());
    params.not_after = not_after.min(authority.not_after());
    params.serial_number = Some(serial::random_serial().ok_or(CaError::RandomUnavailable)?);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyType::EcdsaP256.generate()?;
    // rcgen's own BasicConstraints and KeyUsage are not valid DER (see `extension`).
    params.is_ca = IsCa::NoCa;
    params.custom_extensions = vec![
        extension::end_entity_basic_constraints(),
        extension::key_usage(&[KeyUsagePurpose::DigitalSignature]),
        extension::subject_key_identifier(&key.public_key_der()),
    ];
    let cert = params
        .signed_by(&key, authority.issuer(), authority.key())
        .map_err(CaError::Signing)?;
    let mut chain = vec![cert.der().clone(), authority.cert_der().clone()];
    chain.extend(authority.chain_above().iter().cloned());
    Ok((pem_bundle::chain_pem(&chain), key.serialize_pem()))
}

/// Checks an imported server certificate and key: both parse, the key is the certificate's,
/// and the certificate is valid at `now`. The chain after the first certificate is not
/// verified (clients do that).
///
/// # Errors
/// Key and certificate parse errors, [`CaError::KeyMismatch`], [`CaError::Expired`],
/// [`CaError::NotYetValid`].
pub fn check_pair(cert_pem: &[u8], key_pem: &[u8], now: OffsetDateTime) -> Result<(), CaError> {
    let key = key::key_pair_from_pem(key_pem)?;
    let chain = pem_bundle::certificates_from_pem(cert_pem)?;
    let first = chain.first().ok_or(CaError::NoCertificate)?;
    let cert = cert_info::parse_certificate(first).map_err(CaError::CertificateUnparseable)?;
    if !key::matches(cert.public_key(), &key) {
        return Err(CaError::KeyMismatch);
    }
    validity::check_current(&cert, now)
}

fn san_of(name: &str) -> Result<SanType, CaError> {
    let name = name.trim();
    let invalid = || CaError::InvalidSubjectAltName(name.to_owned());
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    if !cert_info::is_host_name(name) {
        return Err(invalid());
    }
    Ok(SanType::DnsName(name.try_into().map_err(|_| invalid())?))
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use x509_parser::extensions::GeneralName;

    use super::*;
    use crate::authority::tests::{now, test_authority};
    use crate::split_combined_pem;

    #[test]
    fn generated_certificate_names_its_sans_and_passes_check_pair() {
        let authority = test_authority();
        let sans = vec!["pop.example.com".to_owned(), "10.1.1.5".to_owned()];
        let (cert_pem, key_pem) = generate(&authority, &sans, 365, now()).unwrap();
        check_pair(cert_pem.as_bytes(), key_pem.as_bytes(), now()).unwrap();
        let chain = pem_bundle::certificates_from_pem(cert_pem.as_bytes()).unwrap();
        assert_eq!(chain.len(), 2);
        let cert = cert_info::parse_certificate(&chain[0]).unwrap();
        let names = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert_eq!(names[0], GeneralName::DNSName("pop.example.com"));
        assert_eq!(names[1], GeneralName::IPAddress(&[10, 1, 1, 5]));
        assert!(!cert.is_ca());
        crate::strict_der::check(&chain[0]).unwrap();
        let usage = cert.key_usage().unwrap().unwrap();
        assert!(usage.critical && usage.value.digital_signature());
        assert!(!usage.value.key_cert_sign());
    }

    #[test]
    fn bad_names_are_refused() {
        let authority = test_authority();
        let err = generate(&authority, &[], 365, now()).unwrap_err();
        assert!(matches!(err, CaError::NoSubjectAltNames));
        let err = generate(&authority, &["not a host".to_owned()], 365, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "subject alternative name \"not a host\" is neither a DNS name nor an IP address"
        );
    }

    #[test]
    fn check_pair_refuses_other_key_and_expiry() {
        let authority = test_authority();
        let sans = vec!["pop.example.com".to_owned()];
        let (cert_pem, _) = generate(&authority, &sans, 30, now()).unwrap();
        let (_, other_key) = generate(&authority, &sans, 30, now()).unwrap();
        let err = check_pair(cert_pem.as_bytes(), other_key.as_bytes(), now()).unwrap_err();
        assert!(matches!(err, CaError::KeyMismatch), "{err:?}");

        let (cert_pem, key_pem) = generate(&authority, &sans, 30, now()).unwrap();
        let later = now() + Duration::days(31);
        let err = check_pair(cert_pem.as_bytes(), key_pem.as_bytes(), later).unwrap_err();
        assert!(matches!(err, CaError::Expired { .. }), "{err:?}");
    }

    #[test]
    fn combined_server_pem_splits_and_checks() {
        let authority = test_authority();
        let (cert_pem, key_pem) =
            generate(&authority, &["pop.example.com".to_owned()], 30, now()).unwrap();
        let combined = format!("{cert_pem}\n{key_pem}");
        let (cert_pem, key_pem) = split_combined_pem(combined.as_bytes()).unwrap();
        check_pair(cert_pem.as_bytes(), key_pem.as_bytes(), now()).unwrap();
        assert_eq!(
            pem_bundle::certificates_from_pem(cert_pem.as_bytes())
                .unwrap()
                .len(),
            2
        );
    }
}
