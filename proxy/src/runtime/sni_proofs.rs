//! Remembered answers to "does this server's certificate prove this SNI?" (see
//! `names.rs`): the check costs a TLS handshake with the server, and without a memory every
//! connection that claims a name would cost one more (a client could make popgate
//! handshake with a server as often as it connects). Answers, yes and no, are kept for
//! [`PROOF_LIFETIME`] and forgotten at every reload (trust anchors may have changed).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an answer is trusted: as long as a DNS answer (`net/dns_cache.rs`).
pub const PROOF_LIFETIME: Duration = Duration::from_secs(60);

/// Answers kept at most; the cache is emptied when full (a flood of made-up names).
const MAX_PROOFS: usize = 4096;

/// What was asked: the TLS profile judging, the server, and the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProofKey {
    /// The profile whose trust anchors judged the certificate.
    pub profile: String,
    /// The server's host and port.
    pub server: (String, u16),
    /// The client's SNI.
    pub sni: String,
}

/// The answers.
#[derive(Debug, Default)]
pub struct SniProofs {
    answers: Mutex<HashMap<ProofKey, (bool, Instant)>>,
}

impl SniProofs {
    /// The answer for `key` if one younger than [`PROOF_LIFETIME`] is kept.
    pub fn get(&self, key: &ProofKey, now: Instant) -> Option<bool> {
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers
            .get(key)
            .filter(|(_, at)| now.saturating_duration_since(*at) < PROOF_LIFETIME)
            .map(|(proved, _)| *proved)
    }

    /// Keeps the answer for `key`.
    pub fn insert(&self, key: ProofKey, proved: bool, now: Instant) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.len() >= MAX_PROOFS {
            answers.clear();
        }
        answers.insert(key, (proved, now));
    }

    /// Forgets every answer (a reload).
    pub fn clear(&self) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sni: &str) -> ProofKey {
        ProofKey {
            profile: "p".into(),
            server: ("mail.example.net".into(), 995),
            sni: sni.into(),
        }
    }

    #[test]
    fn answers_are_kept_for_their_lifetime_and_forgotten_on_clear() {
        let proofs = SniProofs::default();
        let now = Instant::now();
        assert_eq!(proofs.get(&key("a"), now), None);
        proofs.insert(key("a"), true, now);
        proofs.insert(key("b"), false, now);
        assert_eq!(
            proofs.get(&key("a"), now + Duration::from_secs(59)),
            Some(true)
        );
        assert_eq!(proofs.get(&key("b"), now), Some(false));
        assert_eq!(proofs.get(&key("a"), now + PROOF_LIFETIME), None);
        proofs.clear();
        assert_eq!(proofs.get(&key("b"), now), None);
    }

    #[test]
    fn made_up_names_cannot_grow_the_memory_past_its_bound() {
        let proofs = SniProofs::default();
        let now = Instant::now();
        for n in 0..MAX_PROOFS + 10 {
            proofs.insert(key(&format!("n{n}.example")), false, now);
        }
        let kept = proofs.answers.lock().unwrap().len();
        assert!(kept <= MAX_PROOFS, "{kept}");
    }
}
