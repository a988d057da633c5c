//! DNS addresses of the domains policies name, for matching a connection by its original
//! destination (SPEC §4: a domain entry matches when the original destination is one of
//! the domain's DNS addresses; a client's SNI counts when the destination is among its
//! addresses).
//!
//! Resolution is the system resolver's (`getaddrinfo`, through `tokio::net::lookup_host`),
//! so `/etc/hosts`, nsswitch and the local caching resolver apply as for any other program
//! on the gateway. `getaddrinfo` reports no TTL, so answers are kept for a fixed
//! [`ANSWER_LIFETIME`] of 60 s: short enough that a moved server is followed within a
//! minute, long enough that a flood of connections costs one lookup per name per minute.
//! Failed lookups are kept as "no address" for [`FAILURE_LIFETIME`] so an unresolvable name
//! cannot be made to cost a lookup per connection. At most [`MAX_NAMES`] names are kept;
//! past that the oldest answers are dropped. Every lookup is bounded by the caller's
//! deadline; a lookup that times out counts as "no address" (fail closed: the name does
//! not match).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::debug;

/// How long a successful answer is used.
pub const ANSWER_LIFETIME: Duration = Duration::from_secs(60);
/// How long a failed lookup is remembered.
pub const FAILURE_LIFETIME: Duration = Duration::from_secs(10);
/// Names kept at most.
const MAX_NAMES: usize = 4096;

/// Cached DNS answers, shared by every accept.
#[derive(Debug, Default)]
pub struct DnsCache {
    answers: Mutex<HashMap<String, Answer>>,
}

#[derive(Debug, Clone)]
struct Answer {
    addresses: Arc<HashSet<IpAddr>>,
    expires: Instant,
}

impl DnsCache {
    /// Whether `ip` is one of `name`'s addresses, looked up within `timeout` when not
    /// cached. IPv4-mapped IPv6 addresses compare as IPv4.
    ///
    /// Cancel safety: safe (an abandoned lookup caches nothing).
    pub async fn resolves_to(&self, name: &str, ip: IpAddr, timeout: Duration) -> bool {
        let ip = canonical(ip);
        self.addresses(name, timeout).await.contains(&ip)
    }

    /// `name`'s addresses (empty when it does not resolve in time).
    ///
    /// Cancel safety: safe.
    pub async fn addresses(&self, name: &str, timeout: Duration) -> Arc<HashSet<IpAddr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let now = Instant::now();
        if let Some(answer) = self.cached(&name, now) {
            return answer;
        }
        let lookup = tokio::net::lookup_host((name.as_str(), 0));
        let (addresses, lifetime) = match tokio::time::timeout(timeout, lookup).await {
            Ok(Ok(found)) => {
                let set: HashSet<IpAddr> = found.map(|a| canonical(a.ip())).collect();
                (set, ANSWER_LIFETIME)
            }
            Ok(Err(err)) => {
                debug!(name = %name, error = %err, "DNS lookup failed");
                (HashSet::new(), FAILURE_LIFETIME)
            }
            Err(_) => {
                debug!(name = %name, "DNS lookup timed out");
                (HashSet::new(), FAILURE_LIFETIME)
            }
        };
        let addresses = Arc::new(addresses);
        self.store(name, addresses.clone(), now + lifetime);
        addresses
    }

    fn cached(&self, name: &str, now: Instant) -> Option<Arc<HashSet<IpAddr>>> {
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers
            .get(name)
            .filter(|answer| answer.expires > now)
            .map(|answer| answer.addresses.clone())
    }

    fn store(&self, name: String, addresses: Arc<HashSet<IpAddr>>, expires: Instant) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.len() >= MAX_NAMES && !answers.contains_key(&name) {
            let now = Instant::now();
            answers.retain(|_, answer| answer.expires > now);
            if answers.len() >= MAX_NAMES {
                if let Some(oldest) = answers
                    .iter()
                    .min_by_key(|(_, answer)| answer.expires)
                    .map(|(name, _)| name.clone())
                {
                    answers.remove(&oldest);
                }
            }
        }
        answers.insert(name, Answer { addresses, expires });
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn localhost_resolves_to_loopback_and_is_cached() {
        let cache = DnsCache::default();
        assert!(
            cache
                .resolves_to("localhost", "127.0.0.1".parse().unwrap(), WAIT)
                .await
        );
        assert!(
            cache
                .resolves_to("LOCALHOST.", "::ffff:127.0.0.1".parse().unwrap(), WAIT)
                .await
        );
        assert!(
            !cache
                .resolves_to("localhost", "192.0.2.1".parse().unwrap(), WAIT)
                .await
        );
        assert_eq!(cache.answers.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unresolvable_name_matches_nothing() {
        let cache = DnsCache::default();
        let ip = "127.0.0.1".parse().unwrap();
        assert!(!cache.resolves_to("no-such-host.invalid", ip, WAIT).await);
        let answers = cache.answers.lock().unwrap();
        let answer = &answers["no-such-host.invalid"];
        assert!(answer.addresses.is_empty());
        assert!(answer.expires <= Instant::now() + FAILURE_LIFETIME);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = DnsCache::default();
        let later = Instant::now() + ANSWER_LIFETIME;
        for i in 0..MAX_NAMES + 10 {
            cache.store(format!("n{i}.example"), Arc::default(), later);
        }
        assert_eq!(cache.answers.lock().unwrap().len(), MAX_NAMES);
    }
}
