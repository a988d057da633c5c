//! Connection limits (SPEC §4 `limits`): a total cap and a per-client cap, both released
//! when a session's permit is dropped. A client is an IPv4 address (IPv4-mapped IPv6
//! included) or an IPv6 prefix of `client_ipv6_prefix` bits: one subscriber gets a whole
//! /64, so counting IPv6 per address would give it unlimited sessions.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Counts sessions, overall and per client address.
#[derive(Debug)]
pub struct ConnectionLimits {
    // Atomics so a reload can change them; sessions already admitted are never ended.
    max_total: AtomicUsize,
    max_per_client: AtomicU32,
    ipv6_prefix: AtomicU8,
    active: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, u32>>,
    /// Signalled whenever a session ends (for the shutdown drain).
    ended: Notify,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_connections` reached.
    Total,
    /// `limits.max_connections_per_client` reached for this address.
    PerClient,
}

/// One admitted session; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<ConnectionLimits>,
    /// The client key it was counted under (kept: a reload may change the prefix).
    client: IpAddr,
}

impl ConnectionLimits {
    /// Limits of `max_total` sessions and `max_per_client` per client (IPv6 clients keyed
    /// by their `ipv6_prefix`-bit prefix).
    pub fn new(max_total: usize, max_per_client: u32, ipv6_prefix: u8) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            max_total: AtomicUsize::new(max_total),
            max_per_client: AtomicU32::new(max_per_client),
            ipv6_prefix: AtomicU8::new(ipv6_prefix),
            active: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
            ended: Notify::new(),
        })
    }

    /// Admits a session from `client`, or says which limit refuses it.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Permit, Refusal> {
        let client = client_key(client, self.ipv6_prefix.load(Ordering::Relaxed));
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.active.load(Ordering::Relaxed) >= self.max_total.load(Ordering::Relaxed) {
            return Err(Refusal::Total);
        }
        let count = per_client.entry(client).or_insert(0);
        if *count >= self.max_per_client.load(Ordering::Relaxed) {
            return Err(Refusal::PerClient);
        }
        *count += 1;
        self.active.fetch_add(1, Ordering::Relaxed);
        Ok(Permit {
            limits: self.clone(),
            client,
        })
    }

    /// New caps (a reload): they apply to the next admission; running sessions stay even
    /// when they are now over a cap.
    pub fn set_maximums(&self, max_total: usize, max_per_client: u32, ipv6_prefix: u8) {
        self.max_total.store(max_total, Ordering::Relaxed);
        self.max_per_client.store(max_per_client, Ordering::Relaxed);
        self.ipv6_prefix.store(ipv6_prefix, Ordering::Relaxed);
    }

    /// Sessions running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Waits until no session is running.
    ///
    /// Cancel safety: safe.
    pub async fn drained(&self) {
        loop {
            let ended = self.ended.notified();
            if self.active() == 0 {
                return;
            }
            ended.await;
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut per_client = self
            .limits
            .per_client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&self.client);
            }
        }
        self.limits.active.fetch_sub(1, Ordering::Relaxed);
        self.limits.ended.notify_waiters();
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 address with all but
/// the first `prefix` bits cleared.
fn client_key(client: IpAddr, prefix: u8) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u32::from(prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

/// Raises the soft open-file limit to the hard one: every session holds two sockets, and
/// the common soft limit of 1,024 would stop popgate near 500 sessions while
/// `limits.max_connections` allows 20,000. Returns the soft limit in force.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_and_total_limits_hold_and_release() {
        let limits = ConnectionLimits::new(3, 2, 64);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = limits.admit(a).unwrap();
        let _p2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), Refusal::PerClient);
        let _p3 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).unwrap_err(), Refusal::Total);
        drop(p1);
        assert_eq!(limits.active(), 2);
        assert!(limits.admit(a).is_ok());
    }

    #[test]
    fn new_maximums_apply_to_the_next_admission_only() {
        let limits = ConnectionLimits::new(10, 2, 64);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let _p1 = limits.admit(a).unwrap();
        let _p2 = limits.admit(a).unwrap();
        limits.set_maximums(10, 1, 64);
        assert_eq!(limits.active(), 2);
        assert_eq!(limits.admit(a).unwrap_err(), Refusal::PerClient);
        limits.set_maximums(2, 5, 64);
        assert_eq!(limits.admit(a).unwrap_err(), Refusal::Total);
        limits.set_maximums(3, 5, 64);
        assert!(limits.admit(a).is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_per_prefix() {
        let limits = ConnectionLimits::new(100, 2, 64);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = limits.admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = limits.admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:abcd::1")).unwrap_err(),
            Refusal::PerClient,
            "same /64"
        );
        assert!(limits.admit(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        // IPv4-mapped addresses count as the IPv4 client.
        let _c = limits.admit(ip("10.0.0.1")).unwrap();
        let _d = limits.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(
            limits.admit(ip("10.0.0.1")).unwrap_err(),
            Refusal::PerClient
        );
    }

    #[test]
    fn client_key_masks_to_the_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let v6 = ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
        assert_eq!(client_key(v6, 128), v6);
        assert_eq!(client_key(v6, 64), ip("2001:db8:aaaa:bbbb::"));
        assert_eq!(client_key(v6, 48), ip("2001:db8:aaaa::"));
        assert_eq!(client_key(v6, 0), ip("::"));
        assert_eq!(client_key(ip("192.0.2.7"), 0), ip("192.0.2.7"));
    }

    #[test]
    fn a_reload_changing_the_prefix_releases_under_the_old_key() {
        let limits = ConnectionLimits::new(100, 1, 64);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let permit = limits.admit(a).unwrap();
        limits.set_maximums(100, 1, 128);
        drop(permit);
        assert_eq!(limits.active(), 0);
        assert!(limits.per_client.lock().unwrap().is_empty());
    }
}
