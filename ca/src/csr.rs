//! Certificate signing requests for a Proxy Authority signed by the organisation's own CA.
//!
//! `popgate ca csr` calls [`request`] and writes `request.pem` and the pending key;
//! `popgate ca install` calls [`pair`] with the certificate the organisation returned. The
//! request asks for a CA with path length 0 and keyCertSign/cRLSign; the signing CA decides
//! what it grants, so [`pair`] checks the answer. No I/O here.

use rcgen::{CertificateParams, KeyUsagePurpose};

use crate::{cert_info, dn, extension, key, pem_bundle, CaError, KeyType};

/// A certificate signing request and the key that must wait for its answer.
#[derive(Clone)]
pub struct Csr {
    /// PKCS#10 request (`-----BEGIN CERTIFICATE REQUEST-----`).
    pub request_pem: String,
    /// The pending PKCS#8 private key (write with mode 0600).
    pub key_pem: String,
}

/// Builds a request for a CA certificate with subject `subject` (RFC 4514) and a new key.
///
/// # Errors
/// [`CaError::Dn`], key generation errors, [`CaError::Signing`].
pub fn request(subject: &str, key_type: KeyType) -> Result<Csr, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn::parse_dn(subject)?;
    // rcgen refuses `is_ca` in requests and pads KeyUsage, so both are written by hand.
    params.custom_extensions = vec![
        extension::key_usage(&[KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]),
        extension::ca_basic_constraints(0),
    ];
    let key = key_type.generate()?;
    let request = params.serialize_request(&key).map_err(CaError::Signing)?;
    Ok(Csr {
        request_pem: request.pem().map_err(CaError::Signing)?,
        key_pem: key.serialize_pem(),
    })
}

/// Pairs the signed certificate (PEM or DER, possibly followed by its chain) with the
/// pending key, returning `(cert_pem, key_pem)` ready to become `pki/ca.crt` and `pki/ca.key`.
///
/// # Errors
/// [`CaError::KeyMismatch`] if the certificate is not for the pending key;
/// [`CaError::NotACa`] / [`CaError::CaCannotSign`] if the organisation issued something that
/// cannot sign; certificate and key parse errors.
pub fn pair(signed_cert_pem: &[u8], pending_key_pem: &[u8]) -> Result<(String, String), CaError> {
    let key = key::key_pair_from_pem(pending_key_pem)?;
    let chain = pem_bundle::certificates_from_pem(signed_cert_pem)?;
    let first = chain.first().ok_or(CaError::NoCertificate)?;
    let cert = cert_info::parse_certificate(first).map_err(CaError::CertificateUnparseable)?;
    if !key::matches(cert.public_key(), &key) {
        return Err(CaError::KeyMismatch);
    }
    crate::authority::check_is_ca(&cert)?;
    Ok((pem_bundle::chain_pem(&chain), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, IsCa};
    use time::Duration;
    use x509_parser::prelude::FromDer;

    use super::*;
    use crate::authority::tests::{now, test_authority};
    use crate::Authority;

    /// Plays the organisation CA: signs a CA certificate for the request's key and subject
    /// with the test authority, returning it followed by the test authority.
    fn sign(request_pem: &str) -> String {
        use x509_parser::certification_request::X509CertificationRequest;
        let authority = test_authority();
        let der = pem::parse(request_pem).unwrap().into_contents();
        let (_, request) = X509CertificationRequest::from_der(&der).unwrap();
        request.verify_signature().unwrap();
        let info = &request.certification_request_info;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn::parse_dn(&dn::format_dn(&info.subject)).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now() - Duration::days(1);
        params.not_after = now() + Duration::days(100);
        let cert = params
            .signed_by(&public_key, authority.issuer(), authority.key())
            .unwrap();
        format!("{}{}", cert.pem(), authority.cert_pem())
    }

    #[test]
    fn request_asks_for_a_ca_with_the_given_subject() {
        let csr = request("CN=Example Proxy CA,O=Example Ltd,C=GB", KeyType::EcdsaP256).unwrap();
        let der = pem::parse(&csr.request_pem).unwrap().into_contents();
        crate::strict_der::check(&der).unwrap();
        let (_, parsed) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        assert_eq!(
            dn::format_dn(&parsed.certification_request_info.subject),
            "CN=Example Proxy CA,O=Example Ltd,C=GB"
        );
        let asks_for_ca = parsed
            .requested_extensions()
            .into_iter()
            .flatten()
            .any(|ext| {
                matches!(
                    ext,
                    x509_parser::extensions::ParsedExtension::BasicConstraints(bc) if bc.ca
                )
            });
        assert!(asks_for_ca);
        assert!(csr.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn signed_answer_pairs_with_the_pending_key_and_loads() {
        let csr = request("CN=Sub CA", KeyType::EcdsaP256).unwrap();
        let signed = sign(&csr.request_pem);
        let (cert_pem, key_pem) = pair(signed.as_bytes(), csr.key_pem.as_bytes()).unwrap();
        let authority =
            Authority::from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), now()).unwrap();
        assert_eq!(authority.chain_above().len(), 1);
    }

    #[test]
    fn pair_refuses_a_certificate_for_another_key() {
        let csr = request("CN=Sub CA", KeyType::EcdsaP256).unwrap();
        let other = request("CN=Sub CA", KeyType::EcdsaP256).unwrap();
        let signed = sign(&other.request_pem);
        let err = pair(signed.as_bytes(), csr.key_pem.as_bytes()).unwrap_err();
        assert!(matches!(err, CaError::KeyMismatch), "{err:?}");
        assert_eq!(
            err.to_string(),
            "certificate does not match the private key"
        );
    }
}
