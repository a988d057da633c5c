//! Distinguished names as RFC 4514 strings: parsing `--subject` values into rcgen names, and
//! printing certificate names for `popgate cert show`.
//!
//! RFC 4514 lists RDNs last-first: `CN=Example Proxy CA,O=Example Ltd,C=GB` is encoded as
//! C, O, CN. Parsing reverses the string's order and printing reverses the certificate's, so
//! the two round-trip.

use rcgen::{DistinguishedName, DnType, DnValue};
use x509_parser::x509::X509Name;

use crate::DnError;

/// Parses an RFC 4514 distinguished name such as `CN=Example Proxy CA,O=Example Ltd,C=GB`.
///
/// Attribute types (case-insensitive): `CN`, `O`, `OU`, `C`, `L`, `ST`, `STREET`, `DC`,
/// `serialNumber`, `emailAddress` (also `E`). Values may escape special characters (`\,`,
/// `\+`, `\\`, `\"`, ...) or bytes (`\2C`); white space around types and values is dropped
/// unless escaped. Each type may appear once.
///
/// # Errors
/// A [`DnError`] naming what is wrong.
pub fn parse_dn(input: &str) -> Result<DistinguishedName, DnError> {
    let rdns = split_rdns(input)?;
    let mut seen: Vec<&'static str> = Vec::new();
    let mut parsed = Vec::with_capacity(rdns.len());
    for (index, (attribute_type, value)) in rdns.into_iter().enumerate() {
        let attribute = Attribute::from_name(&attribute_type, index + 1)?;
        if seen.contains(&attribute.short_name) {
            return Err(DnError::Duplicate(attribute.short_name.to_owned()));
        }
        seen.push(attribute.short_name);
        parsed.push((attribute.dn_type(), attribute.value(value)?));
    }
    let mut dn = DistinguishedName::new();
    for (dn_type, value) in parsed.into_iter().rev() {
        dn.push(dn_type, value);
    }
    Ok(dn)
}

/// Prints a certificate name in RFC 4514 form, most specific RDN first.
///
/// Unknown attribute types print as dotted OIDs; values that are not strings print as `#` and
/// the hex of their bytes.
pub fn format_dn(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    let short_name = Attribute::ALL
                        .iter()
                        .find(|known| known.oid_string() == oid)
                        .map_or(oid, |known| known.short_name.to_owned());
                    let value = match attribute.as_str() {
                        Ok(text) => escape_value(text),
                        Err(_) => hex_value(attribute.attr_value().data),
                    };
                    format!("{short_name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// How an attribute's value is encoded.
#[derive(Clone, Copy)]
enum Encoding {
    Utf8,
    Printable,
    Ia5,
    Country,
}

struct Attribute {
    short_name: &'static str,
    oid: &'static [u64],
    encoding: Encoding,
    /// RFC 5280 appendix A upper bound, in characters.
    max_len: usize,
}

impl Attribute {
    const ALL: &'static [Attribute] = &[
        Attribute::new("CN", &[2, 5, 4, 3], Encoding::Utf8, 64),
        Attribute::new("O", &[2, 5, 4, 10], Encoding::Utf8, 64),
        Attribute::new("OU", &[2, 5, 4, 11], Encoding::Utf8, 64),
        Attribute::new("C", &[2, 5, 4, 6], Encoding::Country, 2),
        Attribute::new("L", &[2, 5, 4, 7], Encoding::Utf8, 128),
        Attribute::new("ST", &[2, 5, 4, 8], Encoding::Utf8, 128),
        Attribute::new("STREET", &[2, 5, 4, 9], Encoding::Utf8, 128),
        Attribute::new("serialNumber", &[2, 5, 4, 5], Encoding::Printable, 64),
        Attribute::new(
            "DC",
            &[0, 9, 2342, 19_200_300, 100, 1, 25],
            Encoding::Ia5,
            63,
        ),
        Attribute::new(
            "emailAddress",
            &[1, 2, 840, 113_549, 1, 9, 1],
            Encoding::Ia5,
            255,
        ),
    ];

    const fn new(
        short_name: &'static str,
        oid: &'static [u64],
        encoding: Encoding,
        max_len: usize,
    ) -> Self {
        Self {
            short_name,
            oid,
            encoding,
            max_len,
        }
    }

    fn from_name(name: &str, rdn: usize) -> Result<&'static Attribute, DnError> {
        if name.is_empty() {
            return Err(DnError::MissingEquals { rdn });
        }
        let name = if name.eq_ignore_ascii_case("E") {
            "emailAddress"
        } else {
            name
        };
        Self::ALL
            .iter()
            .find(|known| known.short_name.eq_ignore_ascii_case(name))
            .ok_or_else(|| DnError::UnknownAttribute(name.to_owned()))
    }

    fn oid_string(&self) -> String {
        self.oid
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }

    fn dn_type(&self) -> DnType {
        match self.short_name {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            _ => DnType::CustomDnType(self.oid.to_vec()),
        }
    }

    fn value(&self, value: String) -> Result<DnValue, DnError> {
        let name = || self.short_name.to_owned();
        if value.is_empty() {
            return Err(DnError::EmptyValue(name()));
        }
        if value.chars().count() > self.max_len && !matches!(self.encoding, Encoding::Country) {
            return Err(DnError::TooLong {
                attribute: name(),
                max: self.max_len,
            });
        }
        Ok(match self.encoding {
            Encoding::Utf8 => DnValue::Utf8String(value),
            Encoding::Country => {
                if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(DnError::BadCountry(value));
                }
                let upper = value.to_ascii_uppercase();
                // Two ASCII letters are always a valid PrintableString.
                DnValue::PrintableString(
                    upper
                        .try_into()
                        .map_err(|_| DnError::BadCountry(value.clone()))?,
                )
            }
            Encoding::Printable => {
                DnValue::PrintableString(value.try_into().map_err(|_| DnError::NotAscii(name()))?)
            }
            Encoding::Ia5 => {
                DnValue::Ia5String(value.try_into().map_err(|_| DnError::NotAscii(name()))?)
            }
        })
    }
}

/// Splits `input` into `(type, unescaped value)` pairs in string order.
fn split_rdns(input: &str) -> Result<Vec<(String, String)>, DnError> {
    if input.trim().is_empty() {
        return Err(DnError::Empty);
    }
    let bytes = input.as_bytes();
    let mut rdns = Vec::new();
    let mut position = 0;
    while position <= bytes.len() {
        let rdn = rdns.len() + 1;
        let equals = bytes[position..]
            .iter()
            .position(|&b| b == b'=')
            .map(|offset| position + offset)
            .ok_or(DnError::MissingEquals { rdn })?;
        let attribute_type = input[position..equals].trim();
        if attribute_type.contains([',', '+', '\\']) {
            return Err(DnError::MissingEquals { rdn });
        }
        let (value, end) = read_value(bytes, equals + 1, attribute_type)?;
        rdns.push((attribute_type.to_owned(), value));
        // `end` is the separating comma, or the end of the input.
        position = end + 1;
    }
    Ok(rdns)
}

/// Reads one value starting at `start`; returns it unescaped with the index of the comma that
/// ends it (or `bytes.len()`).
fn read_value(bytes: &[u8], start: usize, attribute: &str) -> Result<(String, usize), DnError> {
    let mut value: Vec<u8> = Vec::new();
    // Length of `value` up to its last escaped or non-space byte: trailing spaces are cut
    // unless escaped.
    let mut kept = 0;
    let mut index = start;
    while index < bytes.len() {
        match bytes[index] {
            b',' => break,
            b'+' => return Err(DnError::MultiValued),
            b'#' if value.is_empty() => return Err(DnError::HexValue),
            b' ' if value.is_empty() => {}
            b'\\' => {
                let (byte, consumed) = unescape(bytes, index)?;
                value.push(byte);
                kept = value.len();
                index += consumed;
                continue;
            }
            other => {
                value.push(other);
                if other != b' ' {
                    kept = value.len();
                }
            }
        }
        index += 1;
    }
    value.truncate(kept);
    let value = String::from_utf8(value).map_err(|_| DnError::NotUtf8(attribute.to_owned()))?;
    Ok((value, index))
}

/// The byte an escape at `index` stands for, and how many input bytes it took.
fn unescape(bytes: &[u8], index: usize) -> Result<(u8, usize), DnError> {
    let bad = DnError::BadEscape { position: index };
    let next = *bytes.get(index + 1).ok_or(bad.clone())?;
    if b" \"#+,;<=>\\".contains(&next) {
        return Ok((next, 2));
    }
    let high = hex_digit(next).ok_or(bad.clone())?;
    let low = bytes
        .get(index + 2)
        .copied()
        .and_then(hex_digit)
        .ok_or(bad)?;
    Ok((high << 4 | low, 3))
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn escape_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (index, ch) in text.chars().enumerate() {
        let special = matches!(ch, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (index == 0 && matches!(ch, '#' | ' '))
            || (index == last && ch == ' ');
        if ch == '\0' {
            out.push_str("\\00");
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn hex_value(data: &[u8]) -> String {
    let mut out = String::from("#");
    for byte in data {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::FromDer;

    use super::*;

    fn entries(dn: &DistinguishedName) -> Vec<(DnType, String)> {
        dn.iter()
            .map(|(ty, value)| {
                let text = match value {
                    DnValue::Utf8String(s) => s.clone(),
                    DnValue::PrintableString(s) => s.as_str().to_owned(),
                    DnValue::Ia5String(s) => s.as_str().to_owned(),
                    other => format!("{other:?}"),
                };
                (ty.clone(), text)
            })
            .collect()
    }

    #[test]
    fn rdns_are_encoded_last_first() {
        let dn = parse_dn("CN=Example Proxy CA,O=Example Ltd,C=GB").unwrap();
        assert_eq!(
            entries(&dn),
            [
                (DnType::CountryName, "GB".to_owned()),
                (DnType::OrganizationName, "Example Ltd".to_owned()),
                (DnType::CommonName, "Example Proxy CA".to_owned()),
            ]
        );
    }

    #[test]
    fn escapes_and_spaces_follow_rfc_4514() {
        let dn = parse_dn(r"cn = Smith\, John , o=Caf\C3\A9\ ,OU=a\+b,emailAddress=a@b.example")
            .unwrap();
        let got = entries(&dn);
        assert_eq!(got[0].1, "a@b.example");
        assert_eq!(got[1].1, "a+b");
        assert_eq!(got[2].1, "Café ");
        assert_eq!(got[3], (DnType::CommonName, "Smith, John".to_owned()));
    }

    #[test]
    fn malformed_names_get_precise_errors() {
        let cases: &[(&str, DnError)] = &[
            ("", DnError::Empty),
            ("CN", DnError::MissingEquals { rdn: 1 }),
            ("CN=a,O", DnError::MissingEquals { rdn: 2 }),
            ("CN=a,", DnError::MissingEquals { rdn: 2 }),
            ("XX=a", DnError::UnknownAttribute("XX".into())),
            ("CN=", DnError::EmptyValue("CN".into())),
            ("CN=a,cn=b", DnError::Duplicate("CN".into())),
            ("CN=a+O=b", DnError::MultiValued),
            ("CN=#0403", DnError::HexValue),
            (r"CN=a\", DnError::BadEscape { position: 4 }),
            (r"CN=a\zz", DnError::BadEscape { position: 4 }),
            (r"CN=\FF", DnError::NotUtf8("CN".into())),
            ("C=GBR", DnError::BadCountry("GBR".into())),
            ("DC=ex\u{e4}mple", DnError::NotAscii("DC".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_dn(input).as_ref().err(), Some(expected), "{input:?}");
        }
        let long = format!("CN={}", "x".repeat(65));
        assert_eq!(
            parse_dn(&long).unwrap_err().to_string(),
            "attribute CN is longer than 64 characters"
        );
    }

    #[test]
    fn parsed_names_print_back_the_same() {
        let input = r"CN=Proxy\, Inc.,OU=IT,O=Example Ltd,L=London,ST=England,C=GB";
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = parse_dn(input).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert.der()).unwrap();
        assert_eq!(format_dn(parsed.subject()), input);
    }

    #[test]
    fn printing_escapes_leading_hash_and_trailing_space() {
        assert_eq!(escape_value("#a b "), r"\#a b\ ");
        assert_eq!(escape_value("a;b<c>\"d\\"), r#"a\;b\<c\>\"d\\"#);
    }
}
