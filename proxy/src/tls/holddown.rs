//! The opportunistic-TLS hold-down (SPEC §4 `tls_failure_holddown_s`): a server whose TLS
//! handshake failed on two connections in a row is contacted in plaintext until its
//! hold-down ends, then TLS is tried again.
//!
//! One table per process (in the sessions' shared state), kept across reloads; bounded.
//! The caller passes the time (this module reads no clock).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Servers held down at most; beyond it the entry ending soonest makes room.
const MAX_ENTRIES: usize = 4096;

/// The hold-down table: server → end of its hold-down.
#[derive(Debug, Default)]
pub struct HoldDown {
    table: Mutex<HashMap<String, Instant>>,
}

impl HoldDown {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.table
            .lock()
            // Only inserts and lookups happen under the lock: a poisoned map is still whole.
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// When the hold-down of `server` ends, if it is held down at `now`.
    pub fn held_until(&self, server: &str, now: Instant) -> Option<Instant> {
        let mut table = self.table();
        match table.get(server) {
            Some(&until) if until > now => Some(until),
            Some(_) => {
                table.remove(server);
                None
            }
            None => None,
        }
    }

    /// Holds TLS toward `server` down for `duration` from `now`.
    pub fn hold_down(&self, server: &str, now: Instant, duration: Duration) {
        let mut table = self.table();
        if table.len() >= MAX_ENTRIES && !table.contains_key(server) {
            table.retain(|_, until| *until > now);
            if table.len() >= MAX_ENTRIES {
                let soonest = table
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(k, _)| k.clone());
                if let Some(key) = soonest {
                    table.remove(&key);
                }
            }
        }
        table.insert(server.to_owned(), now + duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_is_held_down_until_the_duration_ends() {
        let now = Instant::now();
        let holddown = HoldDown::default();
        let server = "holddown-test.example:110";
        assert_eq!(holddown.held_until(server, now), None);
        holddown.hold_down(server, now, Duration::from_secs(300));
        let until = now + Duration::from_secs(300);
        assert_eq!(
            holddown.held_until(server, now + Duration::from_secs(299)),
            Some(until)
        );
        assert_eq!(holddown.held_until(server, until), None);
        assert_eq!(
            holddown.held_until(server, now),
            None,
            "an ended hold-down is forgotten"
        );
    }
}
