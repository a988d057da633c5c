//! PEM in and out: certificates, private keys, and DMail-style files holding both.
//!
//! Inputs are bytes the caller read (PEM, or a single DER object where noted); outputs are PEM
//! strings the caller writes. Encrypted keys are recognised here so that they fail with
//! [`CaError::EncryptedKey`] rather than "no key found". No I/O happens here.

use pem::{EncodeConfig, LineEnding, Pem};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use crate::CaError;

const CERTIFICATE: &str = "CERTIFICATE";
const PKCS8_KEY: &str = "PRIVATE KEY";
const PKCS1_KEY: &str = "RSA PRIVATE KEY";
const SEC1_KEY: &str = "EC PRIVATE KEY";
const ENCRYPTED_PKCS8_KEY: &str = "ENCRYPTED PRIVATE KEY";

/// Every certificate in `input`, in order.
///
/// `input` is PEM (other blocks, such as keys, are skipped) or a single DER certificate. The
/// DER is not parsed here.
///
/// # Errors
/// [`CaError::Pem`] for broken PEM, [`CaError::NoCertificate`] when there is none.
pub fn certificates_from_pem(input: &[u8]) -> Result<Vec<CertificateDer<'static>>, CaError> {
    if !looks_like_pem(input) {
        return match input.first() {
            // A DER SEQUENCE: take it as one certificate and let the X.509 parser judge it.
            Some(0x30) => Ok(vec![CertificateDer::from(input.to_vec())]),
            _ => Err(CaError::NoCertificate),
        };
    }
    let certs: Vec<_> = parse(input)?
        .into_iter()
        .filter(|block| block.tag() == CERTIFICATE)
        .map(|block| CertificateDer::from(block.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(CaError::NoCertificate);
    }
    Ok(certs)
}

/// The one private key in `input`: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or
/// SEC1 (`EC PRIVATE KEY`) PEM, or a single DER key.
///
/// # Errors
/// [`CaError::EncryptedKey`] for `ENCRYPTED PRIVATE KEY` or a legacy `Proc-Type: 4,ENCRYPTED`
/// block, [`CaError::NoPrivateKey`], [`CaError::SeveralPrivateKeys`], [`CaError::Pem`].
pub fn private_key_from_pem(input: &[u8]) -> Result<PrivateKeyDer<'static>, CaError> {
    if !looks_like_pem(input) {
        return PrivateKeyDer::try_from(input.to_vec()).map_err(|_| CaError::NoPrivateKey);
    }
    let block = single_key_block(parse(input)?)?;
    let is_pkcs1 = block.tag() == PKCS1_KEY;
    let is_sec1 = block.tag() == SEC1_KEY;
    let der = block.into_contents();
    Ok(if is_pkcs1 {
        PrivatePkcs1KeyDer::from(der).into()
    } else if is_sec1 {
        PrivateSec1KeyDer::from(der).into()
    } else {
        PrivatePkcs8KeyDer::from(der).into()
    })
}

/// Splits a single PEM holding a certificate (chain) and its private key, such as DMail's
/// `server.pem`, into `(cert_pem, key_pem)`.
///
/// Certificates keep their order; the key keeps its PEM label. Other blocks are dropped.
///
/// # Errors
/// [`CaError::NoCertificate`], [`CaError::NoPrivateKey`], [`CaError::SeveralPrivateKeys`],
/// [`CaError::EncryptedKey`], [`CaError::Pem`].
pub fn split_combined_pem(input: &[u8]) -> Result<(String, String), CaError> {
    let blocks = parse(input)?;
    let certs: Vec<Pem> = blocks
        .iter()
        .filter(|block| block.tag() == CERTIFICATE)
        .map(|block| Pem::new(CERTIFICATE, block.contents()))
        .collect();
    let key = single_key_block(blocks)?;
    if certs.is_empty() {
        return Err(CaError::NoCertificate);
    }
    Ok((
        encode_many(&certs),
        encode(&Pem::new(key.tag(), key.contents())),
    ))
}

/// PEM of one DER certificate.
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    encode(&Pem::new(CERTIFICATE, der))
}

/// PEM of a chain of DER certificates, in order.
pub(crate) fn chain_pem(ders: &[CertificateDer<'_>]) -> String {
    let blocks: Vec<Pem> = ders
        .iter()
        .map(|der| Pem::new(CERTIFICATE, der.as_ref()))
        .collect();
    encode_many(&blocks)
}

/// PEM with Unix line endings, as rcgen writes it and as files on the gateway expect.
fn encode(block: &Pem) -> String {
    pem::encode_config(block, EncodeConfig::new().set_line_ending(LineEnding::LF))
}

fn encode_many(blocks: &[Pem]) -> String {
    pem::encode_many_config(blocks, EncodeConfig::new().set_line_ending(LineEnding::LF))
}

fn looks_like_pem(input: &[u8]) -> bool {
    input.windows(11).any(|window| window == b"-----BEGIN ")
}

fn parse(input: &[u8]) -> Result<Vec<Pem>, CaError> {
    pem::parse_many(input).map_err(CaError::Pem)
}

/// The only private-key block of `blocks`, refusing encrypted ones.
fn single_key_block(blocks: Vec<Pem>) -> Result<Pem, CaError> {
    let mut keys = blocks.into_iter().filter(|block| {
        matches!(
            block.tag(),
            PKCS8_KEY | PKCS1_KEY | SEC1_KEY | ENCRYPTED_PKCS8_KEY
        )
    });
    let key = keys.next().ok_or(CaError::NoPrivateKey)?;
    let legacy_encrypted = key
        .headers()
        .get("Proc-Type")
        .is_some_and(|value| value.contains("ENCRYPTED"));
    if key.tag() == ENCRYPTED_PKCS8_KEY || legacy_encrypted {
        return Err(CaError::EncryptedKey);
    }
    if keys.next().is_some() {
        return Err(CaError::SeveralPrivateKeys);
    }
    Ok(key)
}
