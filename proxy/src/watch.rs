//! Watching the configuration directory, so an administrator's edit (or `popgate policy
//! disable`) takes effect without a signal.
//!
//! Bursts of events (editors write a temporary file, then rename it; a script writes twenty
//! policies) coalesce into one reload: [`DirWatcher::changed`] reports once the directory
//! has been quiet for [`QUIET`], or [`MAX_DELAY`] after the first event of a burst that does
//! not end. Events are not queued: the watcher thread only raises a flag, so a flood costs no
//! memory. Changes under `quarantine/` (written by popgate itself) are ignored.
//!
//! Reading and validating the directory is the caller's job (`runtime::reload`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::warn;

/// How long the directory must be quiet before a burst counts as one change.
pub const QUIET: Duration = Duration::from_millis(250);

/// The longest a change waits for the directory to become quiet.
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// Sub-directory of the configuration directory whose changes never trigger a reload.
const IGNORED: &str = "quarantine";

/// Reports changes below a directory.
pub struct DirWatcher {
    changed: Arc<Notify>,
    /// A burst has started but was not reported yet (a cancelled `changed` call).
    pending: bool,
    // Kept alive for as long as changes are wanted.
    _watcher: Option<notify::RecommendedWatcher>,
}

impl DirWatcher {
    /// Watches `dir` recursively; on failure (no inotify) it logs and never reports.
    pub fn start(dir: &Path) -> DirWatcher {
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        let roots = [dir.to_owned(), dir.canonicalize().unwrap_or(dir.to_owned())];
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let relevant = match event {
                Ok(event) => !event.kind.is_access() && concerns_config(&roots, &event.paths),
                // An overflow or similar: something may have changed.
                Err(_) => true,
            };
            if relevant {
                notify.notify_one();
            }
        })
        .and_then(|mut watcher| {
            watcher.watch(dir, RecursiveMode::Recursive)?;
            Ok(watcher)
        });
        let watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                warn!(error = %err, dir = %dir.display(),
                    "cannot watch the configuration directory; reload with SIGHUP");
                None
            }
        };
        DirWatcher {
            changed,
            pending: false,
            _watcher: watcher,
        }
    }

    /// Waits for the next burst of changes to end.
    ///
    /// Cancel safety: safe; a burst interrupted by cancellation is reported by the next call.
    pub async fn changed(&mut self) {
        if !self.pending {
            self.changed.notified().await;
            self.pending = true;
        }
        let deadline = Instant::now() + MAX_DELAY;
        loop {
            let quiet_end = (Instant::now() + QUIET).min(deadline);
            match tokio::time::timeout_at(quiet_end, self.changed.notified()).await {
                Ok(()) if Instant::now() < deadline => continue,
                Ok(()) | Err(_) => break,
            }
        }
        self.pending = false;
    }
}

/// Whether an event on `paths` may change the configuration (an event without paths may).
fn concerns_config(roots: &[PathBuf], paths: &[PathBuf]) -> bool {
    paths.is_empty()
        || paths.iter().any(|path| {
            !roots.iter().any(|root| {
                path.strip_prefix(root)
                    .is_ok_and(|relative| relative.starts_with(IGNORED))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_writes_do_not_concern_the_configuration() {
        let roots = [PathBuf::from("/etc/popgate")];
        let p = |s: &str| vec![PathBuf::from(s)];
        assert!(!concerns_config(
            &roots,
            &p("/etc/popgate/quarantine/x.eml")
        ));
        assert!(concerns_config(
            &roots,
            &p("/etc/popgate/policies/out.json")
        ));
        assert!(concerns_config(&roots, &p("/etc/popgate/pki/server.crt")));
        assert!(concerns_config(&roots, &p("/etc/popgate/quarantine.json")));
        assert!(concerns_config(&roots, &[]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_reported_once_after_the_quiet_period() {
        let dir = tempfile::tempdir().unwrap();
        let mut watcher = DirWatcher::start(dir.path());
        let started = Instant::now();
        for _ in 0..20 {
            watcher.changed.notify_one();
        }
        watcher.changed().await;
        assert_eq!(started.elapsed(), QUIET);
        // Nothing more is pending: a second call waits for a new event.
        let again = tokio::time::timeout(Duration::from_secs(60), watcher.changed()).await;
        assert!(again.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_that_never_ends_is_reported_after_the_max_delay() {
        let dir = tempfile::tempdir().unwrap();
        let mut watcher = DirWatcher::start(dir.path());
        let notify = watcher.changed.clone();
        let noise = tokio::spawn(async move {
            loop {
                notify.notify_one();
                tokio::time::sleep(QUIET / 2).await;
            }
        });
        let started = Instant::now();
        watcher.changed().await;
        let waited = started.elapsed();
        noise.abort();
        assert!(
            waited >= MAX_DELAY && waited < MAX_DELAY + QUIET,
            "{waited:?}"
        );
    }
}
