//! X.509 extensions written by hand where rcgen 0.13's encoding is not valid DER.
//!
//! DER (X.690 §11.5) forbids encoding a field whose value equals its DEFAULT, and strict
//! parsers (Python `cryptography`, rust-asn1, Go) refuse certificates that do:
//! - rcgen's `IsCa::ExplicitNoCa` writes BasicConstraints as `SEQUENCE { BOOLEAN FALSE }`,
//!   but `cA` is `BOOLEAN DEFAULT FALSE`: an end entity's BasicConstraints is the empty
//!   `SEQUENCE {}`. [`end_entity_basic_constraints`] writes that, and rcgen is then told
//!   `IsCa::NoCa` (which also drops its subjectKeyIdentifier, so
//!   [`subject_key_identifier`] puts one back).
//! - rcgen writes KeyUsage as a 9-bit BIT STRING whatever bits are set; KeyUsage is a named
//!   bit list, whose DER form has no trailing zero bits (X.690 §11.2.2). [`key_usage`]
//!   writes the minimal form.
//!
//! An extension's `critical` flag is itself `BOOLEAN DEFAULT FALSE`; rcgen omits it when
//! false, and so does [`CustomExtension`]. The unit tests of every file that builds a
//! certificate run it through `strict_der` (test-only), which rejects each of these.
//! No I/O here.

use rcgen::{CustomExtension, KeyUsagePurpose};

/// id-ce-basicConstraints (RFC 5280 §4.2.1.9).
const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
/// id-ce-keyUsage (RFC 5280 §4.2.1.3).
const KEY_USAGE: &[u64] = &[2, 5, 29, 15];
/// id-ce-subjectKeyIdentifier (RFC 5280 §4.2.1.2).
const SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];

/// BasicConstraints of an end entity: `cA` left at its DEFAULT FALSE, i.e. an empty
/// SEQUENCE, marked critical as rcgen did before (webpki and OpenSSL accept both).
pub(crate) fn end_entity_basic_constraints() -> CustomExtension {
    let mut extension = CustomExtension::from_oid_content(BASIC_CONSTRAINTS, vec![0x30, 0x00]);
    extension.set_criticality(true);
    extension
}

/// BasicConstraints of a CA certificate signing request: `SEQUENCE { BOOLEAN TRUE,
/// INTEGER path_len }`, critical (rcgen refuses `is_ca` in requests).
pub(crate) fn ca_basic_constraints(path_len: u8) -> CustomExtension {
    let mut content = vec![0x30, 0x00, 0x01, 0x01, 0xff];
    content.extend(der_small_integer(path_len));
    content[1] = u8::try_from(content.len() - 2).unwrap_or(0);
    let mut extension = CustomExtension::from_oid_content(BASIC_CONSTRAINTS, content);
    extension.set_criticality(true);
    extension
}

/// KeyUsage with `usages` set, as a minimal named-bit-list BIT STRING, critical (RFC 5280
/// §4.2.1.3: "conforming CAs SHOULD mark this extension as critical").
pub(crate) fn key_usage(usages: &[KeyUsagePurpose]) -> CustomExtension {
    let bits: u16 = usages.iter().fold(0, |bits, usage| bits | bit_of(*usage));
    let mut extension = CustomExtension::from_oid_content(KEY_USAGE, named_bit_string(bits));
    extension.set_criticality(true);
    extension
}

/// subjectKeyIdentifier: the first 20 bytes of SHA-256 over the SubjectPublicKeyInfo
/// (RFC 7093 §2 method 1 style, the same value rcgen derives for CA certificates).
pub(crate) fn subject_key_identifier(subject_public_key_info: &[u8]) -> CustomExtension {
    let digest = ring::digest::digest(&ring::digest::SHA256, subject_public_key_info);
    let mut content = vec![0x04, 20];
    content.extend_from_slice(&digest.as_ref()[..20]);
    CustomExtension::from_oid_content(SUBJECT_KEY_IDENTIFIER, content)
}

/// The bit of `usage` with bit 0 (digitalSignature) as the most significant bit of the
/// first byte, as a BIT STRING carries it.
fn bit_of(usage: KeyUsagePurpose) -> u16 {
    let position = match usage {
        KeyUsagePurpose::DigitalSignature => 0,
        KeyUsagePurpose::ContentCommitment => 1,
        KeyUsagePurpose::KeyEncipherment => 2,
        KeyUsagePurpose::DataEncipherment => 3,
        KeyUsagePurpose::KeyAgreement => 4,
        KeyUsagePurpose::KeyCertSign => 5,
        KeyUsagePurpose::CrlSign => 6,
        KeyUsagePurpose::EncipherOnly => 7,
        KeyUsagePurpose::DecipherOnly => 8,
    };
    0x8000 >> position
}

/// DER of a named bit list BIT STRING holding `bits` (MSB first): trailing zero bits
/// removed, the unused-bits count saying how many of the last byte's low bits are padding.
fn named_bit_string(bits: u16) -> Vec<u8> {
    if bits == 0 {
        return vec![0x03, 0x01, 0x00];
    }
    let [high, low] = bits.to_be_bytes();
    let (bytes, last) = if low == 0 {
        (vec![high], high)
    } else {
        (vec![high, low], low)
    };
    // `last` is non-zero, so trailing_zeros is at most 7.
    let unused = u8::try_from(last.trailing_zeros()).unwrap_or(0);
    let mut der = vec![0x03, u8::try_from(bytes.len() + 1).unwrap_or(0), unused];
    der.extend(bytes);
    der
}

/// DER INTEGER of a small non-negative number (a leading zero keeps it positive).
fn der_small_integer(value: u8) -> Vec<u8> {
    if value & 0x80 == 0 {
        vec![0x02, 0x01, value]
    } else {
        vec![0x02, 0x02, 0x00, value]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_bit_strings_are_minimal() {
        let der = |usages: &[KeyUsagePurpose]| key_usage(usages).content().to_vec();
        // digitalSignature only: one byte 0x80, seven padding bits.
        assert_eq!(
            der(&[KeyUsagePurpose::DigitalSignature]),
            [0x03, 0x02, 0x07, 0x80]
        );
        // digitalSignature + keyEncipherment: 0xa0, five padding bits.
        assert_eq!(
            der(&[
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment
            ]),
            [0x03, 0x02, 0x05, 0xa0]
        );
        // keyCertSign + cRLSign: 0x06, one padding bit.
        assert_eq!(
            der(&[KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]),
            [0x03, 0x02, 0x01, 0x06]
        );
        // decipherOnly needs the second byte.
        assert_eq!(
            der(&[KeyUsagePurpose::DecipherOnly]),
            [0x03, 0x03, 0x07, 0x00, 0x80]
        );
        assert!(key_usage(&[]).criticality());
    }

    #[test]
    fn basic_constraints_leave_defaults_out() {
        let end_entity = end_entity_basic_constraints();
        assert_eq!(end_entity.content(), [0x30, 0x00]);
        assert!(end_entity.criticality());
        assert_eq!(
            ca_basic_constraints(0).content(),
            [0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]
        );
        assert_eq!(
            ca_basic_constraints(200).content(),
            [0x30, 0x07, 0x01, 0x01, 0xff, 0x02, 0x02, 0x00, 0xc8]
        );
    }

    #[test]
    fn subject_key_identifier_is_an_octet_string_of_twenty_bytes() {
        let ski = subject_key_identifier(b"spki");
        assert_eq!(&ski.content()[..2], [0x04, 20]);
        assert_eq!(ski.content().len(), 22);
        assert!(!ski.criticality());
    }
}
