//! What the daemon knows about itself for `popgate status`: when it started, which
//! configuration generation is in force, how the last (re)load went, what it listens on and
//! where its state lives.
//!
//! Written by the runtime at start and at each reload (a few lines there), read by the
//! control server. Sizes of the quarantine and spool are measured when asked, not tracked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use super::protocol::{ReloadView, StatusView};

/// The daemon's record of itself.
#[derive(Debug)]
pub struct DaemonStatus {
    started: Instant,
    generation: AtomicU64,
    record: Mutex<Record>,
}

#[derive(Debug)]
struct Record {
    last_reload: ReloadView,
    listeners: Vec<String>,
    quarantine_dir: PathBuf,
    spool_dir: PathBuf,
    /// The process's spool: its files are unlinked, so its use is counted, not measured.
    spool: Option<Arc<crate::spool::Spool>>,
}

impl DaemonStatus {
    /// The status of a daemon that has just put its first configuration in force.
    pub fn started(state: &popgate_policy::State) -> DaemonStatus {
        crate::metrics::config_generation(1);
        crate::metrics::state_bytes(
            crate::state::dir_bytes(&state.quarantine_dir()),
            crate::state::dir_bytes(&state.spool_dir()),
        );
        DaemonStatus {
            started: Instant::now(),
            generation: AtomicU64::new(1),
            record: Mutex::new(Record {
                last_reload: reload_view("start", "ok", Vec::new()),
                listeners: Vec::new(),
                quarantine_dir: state.quarantine_dir(),
                spool_dir: state.spool_dir(),
                spool: None,
            }),
        }
    }

    /// A new configuration is in force: the generation moves on.
    pub fn applied(&self, trigger: &str, state: &popgate_policy::State) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        crate::metrics::config_generation(generation);
        let mut record = self.record();
        record.last_reload = reload_view(trigger, "ok", Vec::new());
        record.quarantine_dir = state.quarantine_dir();
        record.spool_dir = state.spool_dir();
    }

    /// A reload was rejected: the running configuration (and generation) stays.
    pub fn rejected(&self, trigger: &str, errors: Vec<String>) {
        self.record().last_reload = reload_view(trigger, "rejected", errors);
    }

    /// The spool whose use `spool_bytes` reports.
    pub fn set_spool(&self, spool: Arc<crate::spool::Spool>) {
        self.record().spool = Some(spool);
    }

    /// The listeners now bound.
    pub fn set_listeners(&self, listeners: &[SocketAddr]) {
        self.record().listeners = listeners.iter().map(ToString::to_string).collect();
    }

    /// The configuration generation in force.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The status view; reads the sizes of the state directories (blocking file system
    /// access: call it off the async threads).
    pub fn view(&self, sessions_active: u64) -> StatusView {
        let (last_reload, listeners, quarantine_dir, spool_dir, spool) = {
            let record = self.record();
            (
                record.last_reload.clone(),
                record.listeners.clone(),
                record.quarantine_dir.clone(),
                record.spool_dir.clone(),
                record.spool.clone(),
            )
        };
        let quarantine_bytes = crate::state::dir_bytes(&quarantine_dir);
        let spool_bytes = match spool {
            Some(spool) => spool.used(),
            None => crate::state::dir_bytes(&spool_dir),
        };
        crate::metrics::state_bytes(quarantine_bytes, spool_bytes);
        StatusView {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: self.started.elapsed().as_secs(),
            generation: self.generation(),
            last_reload,
            listeners,
            sessions_active,
            quarantine_bytes,
            spool_bytes,
        }
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        self.record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn reload_view(trigger: &str, result: &str, errors: Vec<String>) -> ReloadView {
    ReloadView {
        at: crate::state::rfc3339(SystemTime::now()),
        result: result.to_owned(),
        trigger: trigger.to_owned(),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_reload_keeps_the_generation_and_shows_its_errors() {
        let state = popgate_policy::State::default();
        let status = DaemonStatus::started(&state);
        assert_eq!(status.generation(), 1);
        status.applied("SIGHUP", &state);
        assert_eq!(status.generation(), 2);
        status.rejected("file change", vec!["policies/a.json: .order: bad".into()]);
        let view = status.view(0);
        assert_eq!(view.generation, 2);
        assert_eq!(view.last_reload.result, "rejected");
        assert_eq!(view.last_reload.trigger, "file change");
        assert_eq!(view.last_reload.errors, ["policies/a.json: .order: bad"]);
    }
}
