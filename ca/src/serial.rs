//! Random certificate serial numbers.
//!
//! Every certificate this crate issues gets 16 fresh random bytes: minted leaves share one key,
//! so a serial derived from the key (rcgen's default) would repeat, and browsers reject two
//! certificates with the same issuer and serial.

use rcgen::SerialNumber;

/// Serial length in bytes: 126 bits of entropy, well under RFC 5280's 20-byte limit.
const SERIAL_LEN: usize = 16;

/// Returns a positive 16-byte serial number, or `None` if the system RNG failed.
pub(crate) fn random_serial() -> Option<SerialNumber> {
    let mut bytes = [0u8; SERIAL_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    // Clear the sign bit so the INTEGER is positive, set the next one so it keeps all 16
    // bytes (no leading zero octet is stripped, and the length is fixed).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Some(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_sixteen_bytes_and_differ() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_eq!(a.len(), SERIAL_LEN);
        assert_eq!(a[0] & 0xc0, 0x40);
        assert_ne!(a, b);
    }
}
