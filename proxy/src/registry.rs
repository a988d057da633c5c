//! The registry of live sessions, for `popgate sessions` and `popgate sessions kill` (SPEC §6).
//!
//! Cheap on the data path: a session owns one [`SessionEntry`] behind an `Arc`; byte and
//! message counters are relaxed atomics, and the few text fields (policy, user, TLS) are
//! written once or twice per session under a lock nobody holds for long. The registry's own
//! map is locked only when a session starts or ends and when the control socket lists it.
//!
//! The entry of the session a task serves is reachable through a task-local
//! ([`current`]), so the relay's hooks are one line each and need no new parameters.
//! Nothing here does I/O; the control socket (`control/`) reads [`Registry::snapshot`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;

tokio::task_local! {
    static CURRENT: Arc<SessionEntry>;
}

/// Every live session of the daemon.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u64, Arc<SessionEntry>>>,
}

/// Where a session is in its life, for the `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionState {
    /// Choosing a policy, connecting upstream, TLS handshakes.
    Setup = 0,
    /// Greeted, not logged in yet.
    Authorization = 1,
    /// Logged in.
    Transaction = 2,
    /// An inspected message is being judged.
    Inspecting = 3,
    /// An opaque tunnel (`tls.action: allow`).
    Tunnel = 4,
    /// Ending (flushing the last bytes).
    Closing = 5,
}

impl SessionState {
    /// The stable word shown in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Setup => "setup",
            SessionState::Authorization => "authorization",
            SessionState::Transaction => "transaction",
            SessionState::Inspecting => "inspecting",
            SessionState::Tunnel => "tunnel",
            SessionState::Closing => "closing",
        }
    }

    fn from_u8(value: u8) -> SessionState {
        match value {
            1 => SessionState::Authorization,
            2 => SessionState::Transaction,
            3 => SessionState::Inspecting,
            4 => SessionState::Tunnel,
            5 => SessionState::Closing,
            _ => SessionState::Setup,
        }
    }
}

/// One live session: fixed facts, relaxed counters, and a kill switch.
#[derive(Debug)]
pub struct SessionEntry {
    id: u64,
    client: SocketAddr,
    original_dst: SocketAddr,
    started: Instant,
    state: AtomicU8,
    bytes_from_client: AtomicU64,
    bytes_from_server: AtomicU64,
    messages: AtomicU64,
    text: Mutex<Texts>,
    /// Turns true once when the administrator ends the session; every waiter sees it.
    kill: watch::Sender<bool>,
}

/// Fields set a few times per session.
#[derive(Debug, Default)]
struct Texts {
    policy: String,
    action: String,
    user: String,
    client_tls: String,
    server_tls: String,
    verdicts: BTreeMap<String, u64>,
}

/// A session as `popgate sessions --json` shows it (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionView {
    /// The id `sessions kill` takes (the `id` of the session's log span).
    pub id: u64,
    /// The client's address and port.
    pub client: String,
    /// The original destination (the listener without interception).
    pub original_destination: String,
    /// The policy, once chosen.
    pub policy: String,
    /// Its proxy action.
    pub action: String,
    /// The logged-in user, once known.
    pub user: String,
    /// `setup`, `authorization`, `transaction`, `inspecting`, `tunnel`, `closing`.
    pub state: String,
    /// TLS of the client leg (`none`, or version and cipher).
    pub client_tls: String,
    /// TLS of the server leg.
    pub server_tls: String,
    /// Bytes read from the client.
    pub bytes_from_client: u64,
    /// Bytes read from the server.
    pub bytes_from_server: u64,
    /// Messages relayed, with the count per verdict of those inspected.
    pub messages: MessagesView,
    /// Seconds since the connection was accepted.
    pub age_s: u64,
}

/// The `messages` of a [`SessionView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MessagesView {
    /// RETR and TOP bodies relayed.
    pub total: u64,
    /// Count per verdict (`allow`, `strip`, ...) of the inspected ones.
    pub verdicts: BTreeMap<String, u64>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Registers a new session; it leaves the registry when the returned guard is dropped.
    pub fn register(
        self: &Arc<Registry>,
        id: u64,
        client: SocketAddr,
        original_dst: SocketAddr,
    ) -> Registered {
        let entry = Arc::new(SessionEntry {
            id,
            client,
            original_dst,
            started: Instant::now(),
            state: AtomicU8::new(SessionState::Setup as u8),
            bytes_from_client: AtomicU64::new(0),
            bytes_from_server: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            text: Mutex::new(Texts::default()),
            kill: watch::Sender::new(false),
        });
        self.map().insert(id, entry.clone());
        Registered {
            registry: self.clone(),
            entry,
        }
    }

    /// Every live session, oldest first.
    pub fn snapshot(&self) -> Vec<SessionView> {
        let entries: Vec<Arc<SessionEntry>> = self.map().values().cloned().collect();
        let now = Instant::now();
        let mut views: Vec<SessionView> = entries.iter().map(|e| e.view(now)).collect();
        views.sort_by_key(|v| v.id);
        views
    }

    /// Asks session `id` to end; `false` when there is no such session.
    pub fn kill(&self, id: u64) -> bool {
        let Some(entry) = self.map().get(&id).cloned() else {
            return false;
        };
        entry.kill.send_replace(true);
        true
    }

    /// How many sessions are registered.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u64, Arc<SessionEntry>>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A session's place in the registry; dropping it removes the session.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<Registry>,
    entry: Arc<SessionEntry>,
}

impl Registered {
    /// The session's entry.
    pub fn entry(&self) -> &Arc<SessionEntry> {
        &self.entry
    }

    /// Runs `task` with this entry as the task's [`current`] session; the session leaves
    /// the registry when `task` ends or is dropped.
    pub fn scope<F: Future>(self, task: F) -> impl Future<Output = F::Output> {
        let entry = self.entry.clone();
        async move {
            let _registered = self;
            CURRENT.scope(entry, task).await
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.map().remove(&self.entry.id);
    }
}

impl SessionEntry {
    /// Records the chosen policy and action.
    pub fn set_policy(&self, policy: &str, action: &str) {
        let mut text = self.texts();
        policy.clone_into(&mut text.policy);
        action.clone_into(&mut text.action);
    }

    /// Records the logged-in user.
    pub fn set_user(&self, user: &str) {
        user.clone_into(&mut self.texts().user);
    }

    /// The logged-in user, or empty.
    pub fn user(&self) -> String {
        self.texts().user.clone()
    }

    /// A login succeeded: the user is known and the session is in TRANSACTION state.
    pub fn logged_in(&self, user: &str) {
        self.set_user(user);
        self.set_state(SessionState::Transaction);
    }

    /// Records the TLS of both legs (`none` or version and cipher).
    pub fn set_tls(&self, client: &str, server: &str) {
        let mut text = self.texts();
        client.clone_into(&mut text.client_tls);
        server.clone_into(&mut text.server_tls);
    }

    /// Moves the session to `state`.
    pub fn set_state(&self, state: SessionState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Counts bytes read from the client (`true`) or the server.
    pub fn add_bytes(&self, from_client: bool, n: u64) {
        let counter = if from_client {
            &self.bytes_from_client
        } else {
            &self.bytes_from_server
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the number of RETR and TOP bodies relayed so far (the core counts them).
    pub fn set_messages(&self, n: u64) {
        self.messages.store(n, Ordering::Relaxed);
    }

    /// Counts an inspected message's verdict.
    pub fn add_verdict(&self, verdict: &str) {
        let verdicts = &mut self.texts().verdicts;
        // Allocates a key only for a session's first message of each verdict.
        match verdicts.get_mut(verdict) {
            Some(count) => *count += 1,
            None => {
                verdicts.insert(verdict.to_owned(), 1);
            }
        }
    }

    /// Whether the administrator asked this session to end.
    pub fn is_killed(&self) -> bool {
        *self.kill.borrow()
    }

    /// Completes when the administrator asks this session to end (at once if it has).
    ///
    /// Cancel safety: safe; the request is a state, not an event, so no waiter misses it.
    pub async fn killed(&self) {
        let mut receiver = self.kill.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let _ = receiver.wait_for(|killed| *killed).await;
    }

    fn texts(&self) -> MutexGuard<'_, Texts> {
        self.text
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn view(&self, now: Instant) -> SessionView {
        let text = self.texts();
        let or_none = |s: &str| if s.is_empty() { "none" } else { s }.to_owned();
        SessionView {
            id: self.id,
            client: self.client.to_string(),
            original_destination: self.original_dst.to_string(),
            policy: text.policy.clone(),
            action: text.action.clone(),
            user: text.user.clone(),
            state: SessionState::from_u8(self.state.load(Ordering::Relaxed))
                .as_str()
                .to_owned(),
            client_tls: or_none(&text.client_tls),
            server_tls: or_none(&text.server_tls),
            bytes_from_client: self.bytes_from_client.load(Ordering::Relaxed),
            bytes_from_server: self.bytes_from_server.load(Ordering::Relaxed),
            messages: MessagesView {
                total: self.messages.load(Ordering::Relaxed),
                verdicts: text.verdicts.clone(),
            },
            age_s: now.saturating_duration_since(self.started).as_secs(),
        }
    }
}

/// Runs `f` on the entry of the session this task serves, if it is registered.
pub fn with_current(f: impl FnOnce(&SessionEntry)) {
    let _ = CURRENT.try_with(|entry| f(entry));
}

/// The entry of the session this task serves, if it is registered.
pub fn current() -> Option<Arc<SessionEntry>> {
    CURRENT.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_session_is_listed_while_registered_and_counts_its_traffic() {
        let registry = Registry::new();
        let registered = registry.register(7, addr(40000), addr(110));
        let entry = registered.entry();
        entry.set_policy("out", "Standard");
        entry.set_user("alice");
        entry.set_state(SessionState::Transaction);
        entry.add_bytes(true, 10);
        entry.add_bytes(false, 300);
        entry.set_messages(3);
        entry.add_verdict("allow");
        entry.add_verdict("strip");
        entry.add_verdict("allow");
        let views = registry.snapshot();
        assert_eq!(views.len(), 1);
        let view = &views[0];
        assert_eq!(view.id, 7);
        assert_eq!(view.client, "127.0.0.1:40000");
        assert_eq!(view.original_destination, "127.0.0.1:110");
        assert_eq!((view.policy.as_str(), view.user.as_str()), ("out", "alice"));
        assert_eq!(view.state, "transaction");
        assert_eq!((view.bytes_from_client, view.bytes_from_server), (10, 300));
        assert_eq!(view.messages.total, 3);
        assert_eq!(view.messages.verdicts["allow"], 2);
        assert_eq!(view.client_tls, "none");
        drop(registered);
        assert!(registry.snapshot().is_empty());
    }

    #[tokio::test]
    async fn kill_reaches_only_that_session_even_before_it_waits() {
        let registry = Registry::new();
        let one = registry.register(1, addr(1), addr(110));
        let two = registry.register(2, addr(2), addr(110));
        let waiting = two.entry().clone();
        let waiter = tokio::spawn(async move { waiting.killed().await });
        assert!(registry.kill(2));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(!registry.kill(3), "unknown ids are reported");
        tokio::time::timeout(std::time::Duration::from_secs(5), two.entry().killed())
            .await
            .unwrap();
        assert!(!one.entry().is_killed());
    }

    #[tokio::test]
    async fn the_task_local_entry_is_reachable_inside_the_scope_only() {
        let registry = Registry::new();
        let registered = registry.register(5, addr(1), addr(110));
        let inside = registry.clone();
        let seen = registered
            .scope(async move {
                with_current(|e| e.add_bytes(true, 4));
                inside.snapshot()[0].bytes_from_client
            })
            .await;
        assert_eq!(seen, 4);
        assert!(current().is_none());
        assert!(registry.is_empty(), "the session leaves when its task ends");
    }
}
