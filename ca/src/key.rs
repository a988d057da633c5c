//! Private keys: the key types `popgate ca init` offers, generation, loading, and matching a
//! key to a certificate.
//!
//! ring signs everything but cannot generate RSA keys, so RSA generation uses the RustCrypto
//! `rsa` crate to produce a PKCS#8 document that ring then loads. ring also loads only PKCS#8,
//! so PKCS#1 and SEC1 keys (`openssl genrsa`, `openssl ecparam -genkey`) are re-wrapped as
//! PKCS#8 first. RSA generation takes a second or more: callers on an async runtime run it on
//! a blocking thread.

use std::fmt;
use std::str::FromStr;

use rcgen::KeyPair;
use rsa::pkcs8::EncodePrivateKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::{pem_bundle, CaError};

/// The key types a Proxy Authority or server certificate can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256 (the default).
    #[default]
    EcdsaP256,
    /// RSA, 2048-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    Rsa2048,
    /// RSA, 3072-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    Rsa3072,
}

impl KeyType {
    /// The name used on the command line: `ecdsa-p256`, `rsa-2048` or `rsa-3072`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
        }
    }

    /// Generates a fresh key of this type.
    ///
    /// `key.serialize_pem()` gives its PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). RSA takes
    /// from a fraction of a second (release) to many seconds (debug builds).
    ///
    /// # Errors
    /// [`CaError::RsaKeyGeneration`], or [`CaError::Signing`] if ring refuses the new key.
    pub fn generate(self) -> Result<KeyPair, CaError> {
        match self {
            Self::EcdsaP256 => {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Signing)
            }
            Self::Rsa2048 => generate_rsa(2048),
            Self::Rsa3072 => generate_rsa(3072),
        }
    }
}

impl FromStr for KeyType {
    type Err = CaError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "ecdsa-p256" => Ok(Self::EcdsaP256),
            "rsa-2048" => Ok(Self::Rsa2048),
            "rsa-3072" => Ok(Self::Rsa3072),
            other => Err(CaError::UnknownKeyType(other.to_owned())),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Generates the ECDSA P-256 key every minted leaf certificate of this process shares.
///
/// Call once at start and hand it to [`Minter::new`](crate::Minter::new): one key means the
/// TLS layer builds one signing key, and minting costs one CA signature.
///
/// # Errors
/// [`CaError::Signing`] if ring fails to generate the key.
pub fn generate_leaf_key() -> Result<KeyPair, CaError> {
    KeyType::EcdsaP256.generate()
}

/// Loads a private key from PEM (or DER) bytes.
///
/// # Errors
/// [`CaError::EncryptedKey`], [`CaError::NoPrivateKey`], [`CaError::SeveralPrivateKeys`],
/// [`CaError::Pem`], or [`CaError::KeyUnparseable`] when ring rejects the key.
pub fn key_pair_from_pem(input: &[u8]) -> Result<KeyPair, CaError> {
    key_pair_from_der(&pem_bundle::private_key_from_pem(input)?)
}

/// Loads a private key, converting PKCS#1 and SEC1 to the PKCS#8 that ring reads.
pub(crate) fn key_pair_from_der(key: &PrivateKeyDer<'_>) -> Result<KeyPair, CaError> {
    match key {
        PrivateKeyDer::Pkcs8(pkcs8) => pkcs8_key_pair(pkcs8.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(pkcs1) => {
            pkcs8_key_pair(&wrap_pkcs8(RSA_ALGORITHM, pkcs1.secret_pkcs1_der()))
        }
        PrivateKeyDer::Sec1(sec1) => {
            // SEC1 may omit its curve, so try each curve ring supports; ring checks that the
            // key length and any curve named inside agree.
            [P256_ALGORITHM, P384_ALGORITHM]
                .iter()
                .find_map(|algorithm| {
                    pkcs8_key_pair(&wrap_pkcs8(algorithm, sec1.secret_sec1_der())).ok()
                })
                .ok_or(CaError::KeyUnparseable)
        }
        _ => Err(CaError::KeyUnparseable),
    }
}

/// Whether `spki` (from a certificate) is the public half of `key`.
pub(crate) fn matches(spki: &SubjectPublicKeyInfo<'_>, key: &KeyPair) -> bool {
    // Both sides are the raw key: the uncompressed EC point, or the DER RSAPublicKey (DER is
    // canonical, so equal keys have equal bytes).
    spki.subject_public_key.data.as_ref() == key.public_key_raw()
}

/// The key type name `popgate cert show` prints: `ecdsa-p256`, `rsa-2048`, `ed25519`, ...
/// Unknown algorithms print as their dotted OID.
pub(crate) fn key_type_name(spki: &SubjectPublicKeyInfo<'_>) -> String {
    match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("rsa-{}", modulus_bits(rsa.modulus)),
            _ => "rsa".to_owned(),
        },
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|parameters| parameters.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ecdsa-p256",
                Some("1.3.132.0.34") => "ecdsa-p384",
                Some("1.3.132.0.35") => "ecdsa-p521",
                _ => "ecdsa",
            }
            .to_owned()
        }
        "1.3.101.112" => "ed25519".to_owned(),
        other => other.to_owned(),
    }
}

/// DER AlgorithmIdentifier contents (without the SEQUENCE header) for PKCS#8 wrapping.
const RSA_ALGORITHM: &[u8] = &[
    // rsaEncryption, NULL parameters
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
const P256_ALGORITHM: &[u8] = &[
    // id-ecPublicKey, prime256v1
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07,
];
const P384_ALGORITHM: &[u8] = &[
    // id-ecPublicKey, secp384r1
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
];

fn generate_rsa(bits: usize) -> Result<KeyPair, CaError> {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .map_err(CaError::RsaKeyGeneration)?;
    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(|e| CaError::RsaKeyGeneration(rsa::Error::Pkcs8(e)))?;
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(CaError::Signing)
}

fn pkcs8_key_pair(pkcs8: &[u8]) -> Result<KeyPair, CaError> {
    // rcgen tries each algorithm ring supports; RSA keys get PKCS#1 v1.5 with SHA-256.
    KeyPair::try_from(pkcs8).map_err(|_| CaError::KeyUnparseable)
}

/// PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, OCTET STRING key }
fn wrap_pkcs8(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(der_tlv(0x30, algorithm));
    body.extend(der_tlv(0x04, key));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn modulus_bits(modulus: &[u8]) -> usize {
    let significant: Vec<_> = modulus.iter().skip_while(|&&b| b == 0).collect();
    match significant.first() {
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// One RSA-2048 key per test run: generation in a debug build is slow.
    pub(crate) fn rsa_2048_pem() -> &'static str {
        static KEY: OnceLock<String> = OnceLock::new();
        KEY.get_or_init(|| KeyType::Rsa2048.generate().unwrap().serialize_pem())
    }

    #[test]
    fn key_types_parse_and_print_their_cli_names() {
        for name in ["ecdsa-p256", "rsa-2048", "rsa-3072"] {
            assert_eq!(name.parse::<KeyType>().unwrap().to_string(), name);
        }
        let err = "rsa-1024".parse::<KeyType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key type \"rsa-1024\", expected one of ecdsa-p256, rsa-2048, rsa-3072"
        );
    }

    #[test]
    fn generated_ecdsa_key_round_trips_through_pkcs8_pem() {
        let key = generate_leaf_key().unwrap();
        let pem = key.serialize_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let loaded = key_pair_from_pem(pem.as_bytes()).unwrap();
        assert_eq!(loaded.public_key_raw(), key.public_key_raw());
    }

    #[test]
    fn generated_rsa_key_loads_and_signs_with_sha256() {
        let loaded = key_pair_from_pem(rsa_2048_pem().as_bytes()).unwrap();
        assert_eq!(loaded.algorithm(), &rcgen::PKCS_RSA_SHA256);
    }

    #[test]
    fn pkcs1_rsa_key_is_rewrapped_for_ring() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let pkcs8 = key_pair_from_pem(rsa_2048_pem().as_bytes())
            .unwrap()
            .serialize_der();
        let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8)
            .unwrap()
            .to_pkcs1_der()
            .unwrap();
        let pem = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", pkcs1.as_bytes()));
        let loaded = key_pair_from_pem(pem.as_bytes()).unwrap();
        assert_eq!(loaded.serialize_der(), pkcs8);
    }

    #[test]
    fn sec1_ec_key_is_rewrapped_for_ring() {
        let key = generate_leaf_key().unwrap();
        // ring's P-256 PKCS#8 is SEQUENCE(81 87) { 02 01 00, SEQUENCE(13) {..19 bytes..},
        // OCTET STRING(6d) { SEC1 ECPrivateKey without the curve } }: the SEC1 starts at 29.
        let pkcs8 = key.serialize_der();
        assert_eq!(pkcs8[27..29], [0x04, 0x6d]);
        let sec1 = &pkcs8[29..];
        let sec1_pem = pem::encode(&pem::Pem::new("EC PRIVATE KEY", sec1));
        let loaded = key_pair_from_pem(sec1_pem.as_bytes()).unwrap();
        assert_eq!(loaded.public_key_raw(), key.public_key_raw());
    }

    #[test]
    fn encrypted_keys_are_refused_by_name() {
        let pkcs8 =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n\
                      -----END RSA PRIVATE KEY-----\n";
        for input in [pkcs8, legacy] {
            let err = key_pair_from_pem(input.as_bytes()).unwrap_err();
            assert!(matches!(err, CaError::EncryptedKey), "{err:?}");
            assert_eq!(err.to_string(), "encrypted private keys are not supported");
        }
    }

    #[test]
    fn garbage_keys_are_refused() {
        let junk = pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            vec![0x30, 0x03, 0x02, 0x01, 0x00],
        ));
        assert!(matches!(
            key_pair_from_pem(junk.as_bytes()),
            Err(CaError::KeyUnparseable)
        ));
        assert!(matches!(
            key_pair_from_pem(b"hello"),
            Err(CaError::NoPrivateKey)
        ));
    }

    #[test]
    fn modulus_bits_ignore_the_sign_octet() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(modulus_bits(&[0x01, 0x00]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
