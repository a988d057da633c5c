//! The hourly purge of quarantined originals older than `quarantine.max_age_days`
//! (SPEC §4): a store purges before writing, but a quiet quarantine must not keep old mail
//! forever. The bounds are read at each round, so a reload that shortens the age applies at
//! the next one.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::quarantine::Quarantine;

/// How often the quarantine is swept.
const EVERY: Duration = Duration::from_secs(3600);

/// Sweeps now and then every hour, with the settings `state` returns at that moment. The
/// task ends when the runtime does.
pub fn spawn(state: impl Fn() -> popgate_policy::State + Send + Sync + 'static) {
    let state = Arc::new(state);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            ticks.tick().await;
            let settings = state();
            let quarantine = Quarantine::new(&settings);
            let max_age = settings.quarantine_max_age();
            let swept =
                tokio::task::spawn_blocking(move || quarantine.purge(max_age, SystemTime::now()))
                    .await;
            match swept {
                Ok(Ok(purged)) if !purged.is_empty() => {
                    info!(purged = purged.len(), "old quarantined messages removed");
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => warn!(error = %err, "quarantine purge failed"),
                Err(err) => warn!(error = %err, "quarantine purge task failed"),
            }
        }
    });
}
