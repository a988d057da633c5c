//! What the sessions of one process share, built once by `runtime` and handed to every
//! session through its [`Route`](crate::route::Route): no process-wide statics on the data
//! path (the metrics registry and the privileged socket helper excepted), so tests and a
//! second daemon in one process get their own.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;

use crate::spool::Spool;
use crate::tls::holddown::HoldDown;
use crate::tls::minting::MintingState;

/// Large parses at once on the blocking pool: keeps memory bounded when many sessions
/// download big messages together.
const INSPECTIONS: usize = 4;

/// State shared by every session of the process, kept across reloads.
#[derive(Debug)]
pub struct SessionShared {
    /// The opportunistic-TLS hold-down table.
    pub holddown: HoldDown,
    /// Messages whose streamed inspection diverged: their next retrieval is inspected whole.
    pub diverged: DivergedSet,
    /// Admission to whole-message inspection (parse, scan, read-back of spooled bodies).
    pub inspections: Semaphore,
    /// The spool and its quota.
    pub spool: Arc<Spool>,
    /// The leaf key, the minted-certificate cache and its configurations.
    pub minting: Arc<MintingState>,
    next_quarantine: AtomicU64,
}

impl SessionShared {
    /// Shared state whose spool lives in `state_dir/spool` under `spool_max_bytes`, with
    /// the daemon's `minting` state (also used by every configuration load).
    pub fn new(
        state_dir: &Path,
        spool_max_bytes: u64,
        minting: Arc<MintingState>,
    ) -> Arc<SessionShared> {
        Arc::new(SessionShared {
            holddown: HoldDown::default(),
            diverged: DivergedSet::default(),
            inspections: Semaphore::new(INSPECTIONS),
            spool: Spool::new(state_dir.join("spool"), spool_max_bytes),
            next_quarantine: AtomicU64::new(1),
            minting,
        })
    }

    /// A quarantine id unique within the process (with the time and pid: across restarts).
    /// `_`, not `-`: the replacement text is quoted-printable, which encodes `-`.
    pub fn quarantine_id(&self, unix_seconds: u64) -> String {
        let n = self.next_quarantine.fetch_add(1, Ordering::Relaxed);
        format!("{unix_seconds}_{}_{n}", std::process::id())
    }
}

/// Messages (user, number) whose stream diverged from the batch result. Bounded: past
/// [`DivergedSet::MAX`] it starts over (a forgotten message is streamed once more, and
/// diverges safely again).
#[derive(Debug, Default)]
pub struct DivergedSet {
    set: Mutex<HashSet<(String, u32)>>,
}

impl DivergedSet {
    /// Entries kept at most.
    pub const MAX: usize = 4096;

    /// Whether message `number` of `user` diverged before.
    pub fn contains(&self, user: &str, number: u32) -> bool {
        let set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        set.contains(&(user.to_owned(), number))
    }

    /// Remembers that message `number` of `user` diverged.
    pub fn insert(&self, user: &str, number: u32) {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        if set.len() >= Self::MAX {
            set.clear();
        }
        set.insert((user.to_owned(), number));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverged_messages_are_remembered_per_user_and_bounded() {
        let set = DivergedSet::default();
        set.insert("alice", 3);
        assert!(set.contains("alice", 3));
        assert!(!set.contains("bob", 3));
        for n in 0..DivergedSet::MAX as u32 {
            set.insert("carol", n);
        }
        assert!(!set.contains("alice", 3), "the set starts over when full");
    }

    #[test]
    fn quarantine_ids_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SessionShared::new(dir.path(), 1, Arc::default());
        assert_ne!(shared.quarantine_id(5), shared.quarantine_id(5));
    }
}
