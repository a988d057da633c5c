//! Upstream chains already found valid, so that the sessions after the first to a server
//! skip webpki's path building and signature checks (7 % of session set-up in the issue 16
//! profile: every session judged the same chain again).
//!
//! Only a valid result is kept, for at most [`KEPT_FOR`] and never past the earliest
//! `notAfter` among the presented certificates (webpki checked `notBefore` when it judged).
//! The key is the exact chain bytes and the server name, so a different certificate, an
//! added intermediate or another name is judged afresh. The cache belongs to one
//! [`super::verify::UpstreamValidator`], which a reload replaces with its trust store: a
//! removed root is never vouched for by an old entry. The handshake signature is checked by
//! rustls in every session, so a replayed chain without its key gets nowhere.

use std::collections::HashMap;
use std::sync::Mutex;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// How long a valid judgement is kept at most.
pub const KEPT_FOR: u64 = 300;
/// Entries kept at most; past it, expired ones are swept, then all if still full.
const MAX_ENTRIES: usize = 1024;

/// Chains (with their server name) found valid, and until when (Unix seconds).
#[derive(Debug, Default)]
pub struct ValidChains {
    entries: Mutex<HashMap<Vec<u8>, u64>>,
}

impl ValidChains {
    /// webpki's judgement of `leaf` and `intermediates` for `name` at `now`, from the cache
    /// when the same chain was found valid for the same name before.
    pub fn verify(
        &self,
        webpki: &WebPkiServerVerifier,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let key = key(leaf, intermediates, name);
        let seconds = now.as_secs();
        if self.lock().get(&key).is_some_and(|until| seconds < *until) {
            return Ok(());
        }
        webpki.verify_server_cert(leaf, intermediates, name, &[], now)?;
        if let Some(not_after) = earliest_not_after(leaf, intermediates) {
            let until = not_after.min(seconds.saturating_add(KEPT_FOR));
            let mut entries = self.lock();
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, until| seconds < *until);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, until);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, u64>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The name, then each certificate with its length: no two chains share a key.
fn key(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    name: &ServerName<'_>,
) -> Vec<u8> {
    let name = name.to_str();
    let size =
        name.len() + 1 + leaf.len() + intermediates.iter().map(|c| c.len() + 4).sum::<usize>() + 4;
    let mut key = Vec::with_capacity(size);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    for cert in std::iter::once(leaf).chain(intermediates) {
        let len = u32::try_from(cert.len()).unwrap_or(u32::MAX);
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(cert);
    }
    key
}

/// The earliest `notAfter` of the presented certificates (Unix seconds); `None` when one
/// cannot be read, and then nothing is kept.
fn earliest_not_after(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Option<u64> {
    let now = time::OffsetDateTime::now_utc();
    std::iter::once(leaf)
        .chain(intermediates)
        .map(|cert| {
            let info = popgate_ca::CertInfo::from_der(cert, now).ok()?;
            u64::try_from(info.not_after.unix_timestamp()).ok()
        })
        .try_fold(u64::MAX, |earliest, not_after| {
            Some(earliest.min(not_after?))
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use popgate_ca::{generate_leaf_key, Authority, KeyType, MintedCert, Minter};
    use rustls::RootCertStore;
    use time::OffsetDateTime;

    use super::*;

    /// A verifier trusting a fresh CA, and a leaf for `pop.example` signed by it.
    fn trusted_leaf() -> (Arc<WebPkiServerVerifier>, MintedCert) {
        let now = OffsetDateTime::now_utc();
        let generated = Authority::generate(KeyType::EcdsaP256, "CN=test CA", 30, now).unwrap();
        let authority = Authority::from_pem(
            generated.cert_pem.as_bytes(),
            generated.key_pem.as_bytes(),
            now,
        )
        .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(authority.cert_der().clone()).unwrap();
        let minter = Minter::new(Arc::new(authority), generate_leaf_key().unwrap());
        let leaf = minter.mint_for_host("pop.example", now).unwrap();
        (verifier(roots), leaf)
    }

    fn verifier(roots: RootCertStore) -> Arc<WebPkiServerVerifier> {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crate::tls::config::provider())
            .build()
            .unwrap()
    }

    fn at(seconds: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(seconds))
    }

    fn name(text: &str) -> ServerName<'static> {
        ServerName::try_from(text.to_owned()).unwrap()
    }

    /// A chain for `pop.example`, a verifier that trusts it, one that does not (a result
    /// it returns `Ok` for came from the cache), and an empty cache.
    struct Fixture {
        trusting: Arc<WebPkiServerVerifier>,
        distrusting: Arc<WebPkiServerVerifier>,
        minted: MintedCert,
        chains: ValidChains,
        pop: ServerName<'static>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let (trusting, minted) = trusted_leaf();
            let (distrusting, _) = trusted_leaf();
            Fixture {
                trusting,
                distrusting,
                minted,
                chains: ValidChains::default(),
                pop: name("pop.example"),
            }
        }

        /// The cache's answer for the whole chain.
        fn verify(&self, trusted: bool, name: &ServerName<'_>, now: u64) -> bool {
            let (leaf, rest) = self.minted.chain().split_first().unwrap();
            let verifier = if trusted {
                &self.trusting
            } else {
                &self.distrusting
            };
            self.chains
                .verify(verifier, leaf, rest, name, at(now))
                .is_ok()
        }
    }

    #[test]
    fn a_valid_chain_is_kept_for_its_name_and_judged_again_after_the_time_kept() {
        let f = Fixture::new();
        let now = UnixTime::now().as_secs();
        assert!(
            !f.verify(false, &f.pop, now),
            "the distrusting verifier trusts"
        );
        assert!(f.verify(true, &f.pop, now));
        assert!(f.verify(false, &f.pop, now + 1), "not kept");
        assert!(
            !f.verify(false, &f.pop, now + KEPT_FOR),
            "kept past {KEPT_FOR} s"
        );
        assert!(!f.verify(false, &name("imap.example"), now + 1));
        let (leaf, rest) = f.minted.chain().split_first().unwrap();
        assert!(!rest.is_empty());
        let shortened = f
            .chains
            .verify(&f.distrusting, leaf, &[], &f.pop, at(now + 1));
        assert!(shortened.is_err());
    }

    #[test]
    fn an_invalid_chain_is_never_kept() {
        let f = Fixture::new();
        let now = UnixTime::now().as_secs();
        assert!(!f.verify(false, &f.pop, now));
        assert!(f.chains.lock().is_empty());
    }

    #[test]
    fn nothing_is_kept_past_the_earliest_not_after() {
        let f = Fixture::new();
        let not_after = u64::try_from(f.minted.not_after().unix_timestamp()).unwrap();
        assert!(f.verify(true, &f.pop, not_after - KEPT_FOR / 2));
        assert!(f.verify(false, &f.pop, not_after - 1));
        assert!(!f.verify(false, &f.pop, not_after));
        assert!(!f.verify(true, &f.pop, not_after + 1));
    }
}
