//! The minted-certificate cache: a bounded LRU from (upstream certificate, authority) to the
//! leaf minted for it, with single-flight minting.
//!
//! Many sessions to the same server arrive together (a mail client polling several accounts,
//! a fleet waking up); the first request mints and the others wait for its result instead of
//! minting the same leaf again. Threads only: no async runtime is assumed. A mint takes well
//! under a millisecond with an ECDSA authority and about a millisecond or two with RSA, so
//! blocking a runtime thread while waiting for it is acceptable.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use lru::LruCache;
use time::OffsetDateTime;

use crate::{Fingerprint, MintError, MintedCert, Minter};

/// What a cache entry is for: the upstream certificate and the authority that signs for it
/// (the Proxy Authority and the untrusted CA mint different leaves for the same server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// SHA-256 of the upstream end-entity certificate's DER.
    pub upstream: Fingerprint,
    /// The signing authority's [`id`](crate::Authority::id).
    pub authority: Fingerprint,
}

/// A slot is filled once, by whichever caller got there first; the others wait on it.
type Slot = OnceLock<Result<Arc<MintedCert>, MintError>>;

/// A bounded, thread-safe LRU of minted leaves with single-flight minting.
///
/// Contract: one cache per process, shared by reference or `Arc`; call
/// [`CertCache::get_or_mint`] from any thread; export [`CertCache::minted`] and
/// [`CertCache::hits`] as `popgate_certificates_minted_total` and
/// `popgate_certificate_cache_hits_total`.
pub struct CertCache {
    slots: Mutex<LruCache<CacheKey, Arc<Slot>>>,
    minted: AtomicU64,
    hits: AtomicU64,
}

impl CertCache {
    /// An empty cache holding at most `capacity` leaves.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            slots: Mutex::new(LruCache::new(capacity)),
            minted: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// The leaf for `upstream_cert_der` signed by `minter`'s authority: from the cache, from a
    /// mint already under way in another thread, or minted now.
    ///
    /// A cached leaf that has expired since it was minted (see [`MintedCert::is_stale`]) is
    /// minted again. Failures are not cached: the next call tries again.
    ///
    /// # Errors
    /// Whatever [`Minter::mint`] returned, to the minting caller and to every caller that
    /// waited for it.
    pub fn get_or_mint(
        &self,
        minter: &Minter,
        upstream_cert_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<Arc<MintedCert>, MintError> {
        let key = CacheKey {
            upstream: Fingerprint::of(upstream_cert_der),
            authority: minter.authority_id(),
        };
        self.get_or_insert_with(key, now, || minter.mint(upstream_cert_der, now))
    }

    /// The leaf for the bare `host` signed by `minter`'s authority ([`Minter::mint_for_host`]),
    /// cached like [`CertCache::get_or_mint`] under a key no certificate's DER can collide with.
    ///
    /// # Errors
    /// Whatever [`Minter::mint_for_host`] returned.
    pub fn get_or_mint_for_host(
        &self,
        minter: &Minter,
        host: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<MintedCert>, MintError> {
        // A DER certificate starts with 0x30; this prefix never does.
        let key = CacheKey {
            upstream: Fingerprint::of(format!("host:{host}").as_bytes()),
            authority: minter.authority_id(),
        };
        self.get_or_insert_with(key, now, || minter.mint_for_host(host, now))
    }

    fn get_or_insert_with(
        &self,
        key: CacheKey,
        now: OffsetDateTime,
        mint: impl FnOnce() -> Result<MintedCert, MintError>,
    ) -> Result<Arc<MintedCert>, MintError> {
        let slot = self.slot_for(key, now);
        let mut minted_here = false;
        let result = slot.get_or_init(|| {
            minted_here = true;
            mint().map(Arc::new)
        });
        match (result, minted_here) {
            (Ok(_), true) => {
                self.minted.fetch_add(1, Ordering::Relaxed);
            }
            (Ok(_), false) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
            }
            (Err(_), true) => self.forget(key, &slot),
            (Err(_), false) => {}
        }
        result.clone()
    }

    /// Leaves minted so far (cache misses that succeeded).
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// Requests answered without minting (from the cache or a concurrent mint).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Entries held, including mints under way.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops every entry (counters keep counting).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The slot for `key`: the cached one unless it failed or went stale, else a new, empty
    /// one. The lock is held only for this lookup, never while minting.
    fn slot_for(&self, key: CacheKey, now: OffsetDateTime) -> Arc<Slot> {
        let mut slots = self.lock();
        if let Some(slot) = slots.get(&key) {
            let usable = match slot.get() {
                None => true, // being minted: wait for it
                Some(Ok(minted)) => !minted.is_stale(now),
                Some(Err(_)) => false,
            };
            if usable {
                return Arc::clone(slot);
            }
        }
        let slot = Arc::new(Slot::new());
        slots.put(key, Arc::clone(&slot));
        slot
    }

    /// Removes `key` if it still maps to `slot` (a newer slot may have replaced it).
    fn forget(&self, key: CacheKey, slot: &Arc<Slot>) {
        let mut slots = self.lock();
        if slots
            .peek(&key)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            slots.pop(&key);
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<CacheKey, Arc<Slot>>> {
        // Nothing panics while the lock is held (map operations only), and every entry is
        // valid on its own, so a poisoned lock still guards a consistent map.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for CertCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertCache")
            .field("len", &self.len())
            .field("minted", &self.minted())
            .field("hits", &self.hits())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::thread;

    use rcgen::{CertificateParams, DnType, KeyPair};
    use time::Duration;

    use super::*;
    use crate::authority::tests::now;
    use crate::mint::tests::minter;

    fn upstream(name: &str, days: i64) -> Vec<u8> {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = now() - Duration::days(1);
        params.not_after = now() + Duration::days(days);
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn cache(capacity: usize) -> CertCache {
        CertCache::new(NonZeroUsize::new(capacity).unwrap())
    }

    #[test]
    fn second_request_is_a_hit_with_the_same_leaf() {
        let (cache, minter) = (cache(8), minter());
        let der = upstream("pop.example.net", 30);
        let first = cache.get_or_mint(&minter, &der, now()).unwrap();
        let second = cache.get_or_mint(&minter, &der, now()).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!((cache.minted(), cache.hits(), cache.len()), (1, 1, 1));
    }

    #[test]
    fn concurrent_first_requests_mint_once() {
        const THREADS: usize = 16;
        let (cache, minter) = (cache(8), minter());
        let der = upstream("pop.example.net", 30);
        let barrier = Barrier::new(THREADS);
        let leaves: Vec<Arc<MintedCert>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        cache.get_or_mint(&minter, &der, now()).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(cache.minted(), 1);
        assert_eq!(cache.hits(), THREADS as u64 - 1);
        assert!(leaves.iter().all(|leaf| Arc::ptr_eq(leaf, &leaves[0])));
    }

    #[test]
    fn least_recently_used_entry_is_evicted_at_capacity() {
        let (cache, minter) = (cache(2), minter());
        let (a, b, c) = (
            upstream("a.example", 30),
            upstream("b.example", 30),
            upstream("c.example", 30),
        );
        cache.get_or_mint(&minter, &a, now()).unwrap();
        cache.get_or_mint(&minter, &b, now()).unwrap();
        cache.get_or_mint(&minter, &a, now()).unwrap(); // a is now the most recent
        cache.get_or_mint(&minter, &c, now()).unwrap(); // evicts b
        assert_eq!(cache.len(), 2);
        cache.get_or_mint(&minter, &a, now()).unwrap();
        assert_eq!((cache.minted(), cache.hits()), (3, 2));
        cache.get_or_mint(&minter, &b, now()).unwrap();
        assert_eq!(cache.minted(), 4);
    }

    #[test]
    fn leaf_that_expired_while_cached_is_minted_again() {
        let (cache, minter) = (cache(8), minter());
        let der = upstream("short.example", 2);
        let first = cache.get_or_mint(&minter, &der, now()).unwrap();
        let later = now() + Duration::days(3);
        let second = cache.get_or_mint(&minter, &der, later).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!((cache.minted(), cache.hits()), (2, 0));
        // Minted already expired: kept, since minting again would give the same leaf.
        let third = cache.get_or_mint(&minter, &der, later).unwrap();
        assert!(Arc::ptr_eq(&second, &third));
    }

    #[test]
    fn host_leaves_are_cached_per_host() {
        let (cache, minter) = (cache(8), minter());
        let a = cache
            .get_or_mint_for_host(&minter, "a.example", now())
            .unwrap();
        let again = cache
            .get_or_mint_for_host(&minter, "a.example", now())
            .unwrap();
        let b = cache
            .get_or_mint_for_host(&minter, "b.example", now())
            .unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!((cache.minted(), cache.hits()), (2, 1));
    }

    #[test]
    fn failures_are_not_cached() {
        let (cache, minter) = (cache(8), minter());
        for _ in 0..2 {
            let err = cache.get_or_mint(&minter, b"garbage", now()).unwrap_err();
            assert!(matches!(err, MintError::UpstreamUnparseable(_)));
        }
        assert!(cache.is_empty());
        assert_eq!((cache.minted(), cache.hits()), (0, 0));
    }

    #[test]
    fn authorities_get_separate_entries() {
        let cache = cache(8);
        let der = upstream("pop.example.net", 30);
        let trusted = minter();
        let untrusted_ca = crate::Authority::generate(
            crate::KeyType::EcdsaP256,
            "CN=popgate untrusted CA",
            365,
            now(),
        )
        .unwrap();
        let untrusted = Minter::new(
            Arc::new(
                crate::Authority::from_pem(
                    untrusted_ca.cert_pem.as_bytes(),
                    untrusted_ca.key_pem.as_bytes(),
                    now(),
                )
                .unwrap(),
            ),
            crate::generate_leaf_key().unwrap(),
        );
        let a = cache.get_or_mint(&trusted, &der, now()).unwrap();
        let b = cache.get_or_mint(&untrusted, &der, now()).unwrap();
        assert_ne!(a.chain()[1], b.chain()[1]);
        assert_eq!((cache.minted(), cache.len()), (2, 2));
    }
}
