//! Credentials as they travel on the wire, for tests that check they never reach a log.
//!
//! A password can show up in a log as itself, inside an `AUTH PLAIN` blob, or base64-encoded
//! at any byte alignment. [`secret_forms`] lists strings that any such occurrence contains.

use crate::corpus::base64;

/// The `AUTH PLAIN` initial response for `user`/`password` (RFC 4616, empty authzid).
pub fn plain_blob(user: &str, password: &str) -> String {
    base64(format!("\0{user}\0{password}").as_bytes())
}

/// Strings at least one of which appears in any text that contains `secret` in the clear or
/// base64-encoded at any of the three byte alignments.
pub fn secret_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    for offset in 0..3usize {
        let mut input = vec![0u8; offset];
        input.extend_from_slice(secret.as_bytes());
        let encoded = base64(&input);
        // Keep only the characters whose 6 bits all come from the secret.
        let first = (offset * 8).div_ceil(6);
        let end = (offset + secret.len()) * 8 / 6;
        if end > first {
            forms.push(encoded[first..end].to_owned());
        }
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_forms_are_found_in_every_alignment() {
        let secret = "Pw-7f3c9-Zq!x";
        let forms = secret_forms(secret);
        for prefix in ["", "a", "ab", "\0alice\0"] {
            let encoded = base64(format!("{prefix}{secret}tail").as_bytes());
            assert!(
                forms.iter().any(|f| encoded.contains(f.as_str())),
                "{prefix:?} {encoded}"
            );
        }
        assert!(forms.iter().all(|f| f.len() >= secret.len()), "{forms:?}");
    }
}
