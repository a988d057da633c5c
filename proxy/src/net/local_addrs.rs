//! The gateway's own addresses, for the routing-loop check (SPEC §3: a connection whose
//! original destination is popgate itself is refused).
//!
//! Asking the kernel (`getifaddrs`, a netlink dump) on every accepted connection costs a
//! syscall round per connection that a flood of connections multiplies (issue 13). The set
//! is cached instead and read again only when it may be stale in the way that matters:
//! an address not in the cache is looked up again if the cache is older than
//! [`REFRESH_ON_MISS`] (a newly added address is seen within that time; a flood of
//! connections to foreign addresses, the normal case in `tproxy` mode, costs at most one
//! dump per interval), and any answer is refreshed after [`MAX_AGE`] (a removed address stops
//! counting as local within that time).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// An address missing from a cache at least this old triggers a new dump.
const REFRESH_ON_MISS: Duration = Duration::from_secs(1);
/// A cache this old is dumped again whatever the answer.
const MAX_AGE: Duration = Duration::from_secs(30);

/// Where the addresses come from (the system, or a test's list).
type Source = Box<dyn Fn() -> HashSet<IpAddr> + Send + Sync>;

/// A cached set of the local interface addresses.
pub struct LocalAddresses {
    source: Source,
    cache: Mutex<Option<Snapshot>>,
}

struct Snapshot {
    addresses: HashSet<IpAddr>,
    taken: Instant,
}

impl std::fmt::Debug for LocalAddresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAddresses").finish_non_exhaustive()
    }
}

impl Default for LocalAddresses {
    fn default() -> Self {
        LocalAddresses::with_source(Box::new(system_addresses))
    }
}

impl LocalAddresses {
    /// A cache over `source`.
    fn with_source(source: Source) -> LocalAddresses {
        LocalAddresses {
            source,
            cache: Mutex::new(None),
        }
    }

    /// Whether `ip` is one of this host's addresses (loopback always is). `now` is the
    /// caller's clock reading.
    pub fn contains(&self, ip: IpAddr, now: Instant) -> bool {
        if ip.is_loopback() {
            return true;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = |snapshot: &Snapshot, limit: Duration| {
            now.saturating_duration_since(snapshot.taken) < limit
        };
        if let Some(snapshot) = cache.as_ref().filter(|s| fresh(s, MAX_AGE)) {
            let found = snapshot.addresses.contains(&ip);
            if found || fresh(snapshot, REFRESH_ON_MISS) {
                return found;
            }
        }
        let addresses = (self.source)();
        let found = addresses.contains(&ip);
        *cache = Some(Snapshot {
            addresses,
            taken: now,
        });
        found
    }
}

/// Every address of every interface.
fn system_addresses() -> HashSet<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return HashSet::new();
    };
    addrs
        .filter_map(|ifaddr| {
            let addr = ifaddr.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn counting(list: Arc<Mutex<Vec<IpAddr>>>, dumps: Arc<AtomicUsize>) -> LocalAddresses {
        LocalAddresses::with_source(Box::new(move || {
            dumps.fetch_add(1, Ordering::Relaxed);
            list.lock().unwrap().iter().copied().collect()
        }))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_flood_of_foreign_destinations_dumps_once_per_interval() {
        let list = Arc::new(Mutex::new(vec![ip("192.0.2.1")]));
        let dumps = Arc::new(AtomicUsize::new(0));
        let local = counting(list, dumps.clone());
        let start = Instant::now();
        for i in 0..10_000u32 {
            let at = start + Duration::from_micros(u64::from(i) * 50); // 0.5 s in all
            assert!(!local.contains(ip("198.51.100.7"), at));
            assert!(local.contains(ip("192.0.2.1"), at));
        }
        assert_eq!(dumps.load(Ordering::Relaxed), 1);
        assert!(local.contains(ip("127.0.0.1"), start));
        assert!(local.contains(ip("::1"), start));
    }

    #[test]
    fn added_and_removed_addresses_are_seen_within_the_bounds() {
        let list = Arc::new(Mutex::new(vec![ip("192.0.2.1")]));
        let dumps = Arc::new(AtomicUsize::new(0));
        let local = counting(list.clone(), dumps.clone());
        let start = Instant::now();
        assert!(!local.contains(ip("192.0.2.2"), start));
        list.lock().unwrap().push(ip("192.0.2.2"));
        // Within a second of the last dump the cache answers.
        assert!(!local.contains(ip("192.0.2.2"), start + Duration::from_millis(500)));
        assert!(local.contains(ip("192.0.2.2"), start + REFRESH_ON_MISS));
        list.lock().unwrap().retain(|a| *a != ip("192.0.2.1"));
        let later = start + REFRESH_ON_MISS;
        assert!(local.contains(ip("192.0.2.1"), later + Duration::from_secs(10)));
        assert!(!local.contains(ip("192.0.2.1"), later + MAX_AGE));
        assert_eq!(dumps.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_system_lists_loopback() {
        assert!(system_addresses().contains(&ip("127.0.0.1")));
    }
}
