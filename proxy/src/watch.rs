//! Watching the configuration directory, so an administrator's edit (or `policy disable`)
//! takes effect without a signal. Bursts of events (editors write temp files, then rename)
//! coalesce into one reload after a short quiet period.

use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::warn;

/// How long the directory must be quiet before a burst counts as one change.
const QUIET: Duration = Duration::from_millis(250);

/// Reports changes below a directory.
pub struct DirWatcher {
    events: mpsc::UnboundedReceiver<()>,
    // Kept alive for as long as changes are wanted.
    _watcher: Option<notify::RecommendedWatcher>,
}

impl DirWatcher {
    /// Watches `dir` recursively; on failure (no inotify) it logs and never reports.
    pub fn start(dir: &Path) -> DirWatcher {
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
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
            events,
            _watcher: watcher,
        }
    }

    /// Waits for the next burst of changes to end.
    ///
    /// Cancel safety: safe; a burst interrupted by cancellation is reported next time.
    pub async fn changed(&mut self) -> Option<()> {
        self.events.recv().await?;
        loop {
            match tokio::time::timeout(QUIET, self.events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) | Err(_) => return Some(()),
            }
        }
    }
}
