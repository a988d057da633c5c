//! Byte-exact comparison with a readable failure message.
//!
//! `assert_eq!` on two 20 MiB vectors prints 40 MiB of `Debug` output; [`assert_bytes_eq`]
//! prints the lengths, the first differing offset and a short escaped window around it.

/// Bytes shown on each side of the first difference.
const WINDOW: usize = 80;

/// Panics unless `actual == expected`, describing where they first differ.
///
/// # Panics
/// When the two differ.
#[track_caller]
pub fn assert_bytes_eq(actual: &[u8], expected: &[u8], what: &str) {
    if let Some(description) = difference(actual, expected) {
        panic!("{what}: bytes differ: {description}");
    }
}

/// `None` when equal, else a description of the first difference.
pub fn difference(actual: &[u8], expected: &[u8]) -> Option<String> {
    if actual == expected {
        return None;
    }
    let offset = actual
        .iter()
        .zip(expected)
        .take_while(|(a, e)| a == e)
        .count();
    let start = offset.saturating_sub(WINDOW);
    let window =
        |bytes: &[u8]| escape(&bytes[start.min(bytes.len())..(offset + WINDOW).min(bytes.len())]);
    Some(format!(
        "actual {} bytes, expected {} bytes, first difference at offset {offset}\n  \
         actual:   {}\n  expected: {}",
        actual.len(),
        expected.len(),
        window(actual),
        window(expected)
    ))
}

/// Bytes as an ASCII string with `\r`, `\n` and non-printables escaped.
pub fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}
