//! A tiny strict DER walker for the tests: every certificate and request this crate writes
//! must pass it (SPEC §4: "certificates popgate writes or mints are valid DER").
//!
//! It checks the generic DER rules a lenient BER reader lets through (definite, minimal
//! lengths; BOOLEAN is 0x00 or 0xFF; minimal INTEGERs; BIT STRING padding) and the X.509
//! rules strict parsers such as Python `cryptography` enforce: no DEFAULT value encoded,
//! i.e. no `critical FALSE` in an Extension and no `cA FALSE` in BasicConstraints, and
//! KeyUsage as a minimal named bit list. Test-only; the Python test in `tests/` is the
//! independent second reader.

/// DER encoding of the OID 2.5.29.19 (basicConstraints) without tag and length.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// DER encoding of the OID 2.5.29.15 (keyUsage) without tag and length.
const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const CONSTRUCTED: u8 = 0x20;

/// One tag-length-value.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Checks `der` (one complete value: a certificate or a request).
pub(crate) fn check(der: &[u8]) -> Result<(), String> {
    let (tlv, rest) = parse(der)?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the outer value", rest.len()));
    }
    walk(&tlv)
}

fn walk(tlv: &Tlv<'_>) -> Result<(), String> {
    match tlv.tag {
        BOOLEAN => match tlv.content {
            [0x00] | [0xff] => Ok(()),
            other => Err(format!("BOOLEAN with content {other:02x?}")),
        },
        INTEGER => check_integer(tlv.content),
        BIT_STRING => check_bit_string(tlv.content),
        tag if tag & CONSTRUCTED != 0 => {
            let children = children(tlv.content)?;
            for child in &children {
                walk(child)?;
            }
            if tag == SEQUENCE {
                check_extension(&children)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// When `children` has the shape of an Extension (OID, [BOOLEAN], OCTET STRING): the
/// criticality is absent or TRUE, and the value is itself valid DER.
fn check_extension(children: &[Tlv<'_>]) -> Result<(), String> {
    let (oid, value) = match children {
        [oid, flag, value]
            if oid.tag == OID && flag.tag == BOOLEAN && value.tag == OCTET_STRING =>
        {
            if flag.content != [0xff] {
                return Err(format!(
                    "extension {:02x?} encodes its DEFAULT criticality FALSE",
                    oid.content
                ));
            }
            (oid, value)
        }
        [oid, value] if oid.tag == OID && value.tag == OCTET_STRING => (oid, value),
        _ => return Ok(()),
    };
    let inner = check(value.content)
        .map_err(|err| format!("extension {:02x?}: {err}", oid.content))
        .and_then(|()| parse(value.content).map(|(tlv, _)| tlv))?;
    if oid.content == BASIC_CONSTRAINTS {
        if inner.tag != SEQUENCE {
            return Err("basicConstraints is not a SEQUENCE".into());
        }
        if let Some(first) = children_of(&inner)?.first() {
            if first.tag == BOOLEAN && first.content != [0xff] {
                return Err("basicConstraints encodes its DEFAULT cA FALSE".into());
            }
        }
    } else if oid.content == KEY_USAGE {
        if inner.tag != BIT_STRING {
            return Err("keyUsage is not a BIT STRING".into());
        }
        if let [_, .., 0] = inner.content {
            return Err("keyUsage named bit list has a trailing zero byte".into());
        }
        if let [unused, .., last] = inner.content {
            if u32::from(*unused) != last.trailing_zeros() {
                return Err("keyUsage named bit list keeps trailing zero bits".into());
            }
        }
    }
    Ok(())
}

fn check_integer(content: &[u8]) -> Result<(), String> {
    match content {
        [] => Err("empty INTEGER".into()),
        [0x00, next, ..] if next & 0x80 == 0 => Err("INTEGER with a redundant 0x00".into()),
        [0xff, next, ..] if next & 0x80 != 0 => Err("INTEGER with a redundant 0xff".into()),
        _ => Ok(()),
    }
}

fn check_bit_string(content: &[u8]) -> Result<(), String> {
    match content {
        [] => Err("empty BIT STRING".into()),
        [0] => Ok(()),
        [_] => Err("BIT STRING without bytes claims unused bits".into()),
        [unused, .., last] => {
            if *unused > 7 {
                return Err(format!("BIT STRING with {unused} unused bits"));
            }
            if last & ((1u8 << unused) - 1) != 0 {
                return Err("BIT STRING padding bits are not zero".into());
            }
            Ok(())
        }
    }
}

fn children_of<'a>(tlv: &Tlv<'a>) -> Result<Vec<Tlv<'a>>, String> {
    children(tlv.content)
}

fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = parse(content)?;
        out.push(tlv);
        content = rest;
    }
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let [tag, first, rest @ ..] = bytes else {
        return Err("truncated value".into());
    };
    if tag & 0x1f == 0x1f {
        return Err("high tag numbers are not used in certificates".into());
    }
    let (len, rest) = match *first {
        short if short < 0x80 => (usize::from(short), rest),
        0x80 => return Err("indefinite length".into()),
        long => {
            let count = usize::from(long & 0x7f);
            if count > 4 || rest.len() < count {
                return Err("bad long length".into());
            }
            let (len_bytes, rest) = rest.split_at(count);
            if len_bytes[0] == 0 {
                return Err("length with a leading zero byte".into());
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |len, byte| (len << 8) | usize::from(*byte));
            if len < 0x80 {
                return Err("long form for a short length".into());
            }
            (len, rest)
        }
    };
    if rest.len() < len {
        return Err("value runs past its container".into());
    }
    let (content, rest) = rest.split_at(len);
    Ok((Tlv { tag: *tag, content }, rest))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, IsCa, KeyPair, KeyUsagePurpose};

    use super::*;

    fn self_signed(params: CertificateParams) -> Vec<u8> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn rejects_rcgens_explicit_ca_false() {
        let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.is_ca = IsCa::ExplicitNoCa;
        let err = check(&self_signed(params)).unwrap_err();
        assert_eq!(err, "basicConstraints encodes its DEFAULT cA FALSE");
    }

    #[test]
    fn rejects_rcgens_padded_key_usage() {
        let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let err = check(&self_signed(params)).unwrap_err();
        assert_eq!(err, "keyUsage named bit list has a trailing zero byte");
    }

    #[test]
    fn rejects_an_encoded_false_criticality_and_bad_booleans() {
        // Extension { OID 2.5.29.19, BOOLEAN FALSE, OCTET STRING { SEQUENCE {} } }
        let extension = [
            0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0x00, 0x04, 0x02, 0x30, 0x00,
        ];
        let err = check(&extension).unwrap_err();
        assert!(err.contains("DEFAULT criticality FALSE"), "{err}");
        assert!(check(&[0x01, 0x01, 0x01]).is_err());
        assert!(check(&[0x30, 0x80, 0x00, 0x00]).is_err());
        assert!(check(&[0x02, 0x02, 0x00, 0x01]).is_err());
    }

    #[test]
    fn accepts_a_plain_end_entity() {
        let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.is_ca = IsCa::NoCa;
        params.custom_extensions = vec![crate::extension::end_entity_basic_constraints()];
        check(&self_signed(params)).unwrap();
    }
}
