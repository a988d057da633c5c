//! The running daemon: the current configuration snapshot, the listeners that match it,
//! reloads (SIGHUP, directory changes) and the SIGTERM drain.
//!
//! Reload (SPEC §4): the directory is loaded and checked whole, every new listener is bound,
//! and only then is the new snapshot swapped in and the unneeded listeners closed; any
//! failure logs every error and changes nothing. New connections use the new snapshot;
//! established sessions apply their own policy's new login rules, limits and inspection at
//! their next command, and keep their legs (see `reload`). Limits and timeouts follow the reload; `interception`, `user`/`group`, `log`
//! and `metrics.listen` are read at start only (a change is logged as a warning).
//!
//! Shutdown (SIGTERM/SIGINT): the listeners close at once (new connections are refused by
//! the kernel), sessions get `limits.shutdown_grace_s` to end, then the remaining ones are
//! closed and `run` returns (exit 0). A second signal cuts the grace period short.

mod accept;
pub mod limits;
mod listeners;
mod names;
mod sni_proofs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use popgate_policy::Global;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::dir;
use crate::config::prepared::Prepared;
use crate::shared::SessionShared;
use crate::tls::minting::{CacheCounts, MintingState};
use limits::ConnectionLimits;
use listeners::Listeners;

/// State every accept loop and session shares.
#[derive(Debug)]
pub struct Shared {
    dir: PathBuf,
    /// The configuration in force; sessions subscribe to apply a reload at their next
    /// command.
    current: watch::Sender<Arc<Prepared>>,
    /// Session admission.
    pub limits: Arc<ConnectionLimits>,
    own_listeners: RwLock<Vec<SocketAddr>>,
    /// The gateway's addresses, cached for the loop check.
    local_addresses: crate::net::local_addrs::LocalAddresses,
    /// DNS answers for domain entries and SNI confirmation.
    dns: crate::net::dns_cache::DnsCache,
    /// Servers' answers to SNI confirmation, forgotten at every reload.
    sni_proofs: sni_proofs::SniProofs,
    next_id: AtomicU64,
    /// Turns true when the shutdown grace is over: every session task ends.
    closing: watch::Sender<bool>,
    /// Live sessions, for the control socket.
    pub registry: Arc<crate::registry::Registry>,
    /// Generation, last reload and listeners, for `popgate status`.
    pub status: Arc<crate::control::DaemonStatus>,
    /// What every session shares, handed down through each route.
    pub sessions: Arc<SessionShared>,
}

impl Shared {
    /// The configuration snapshot for a new decision; never held across an await.
    pub fn current(&self) -> Arc<Prepared> {
        self.current.borrow().clone()
    }

    /// Follows reloads: a session applies the new configuration at its next command.
    pub fn follow(&self) -> watch::Receiver<Arc<Prepared>> {
        self.current.subscribe()
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `addr` is one of popgate's own listening sockets (a routing loop).
    fn is_own_listener(&self, addr: SocketAddr) -> bool {
        let own = self
            .own_listeners
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        own.iter().any(|listener| {
            listener.port() == addr.port()
                && (listener.ip() == addr.ip()
                    || (listener.ip().is_unspecified()
                        && self
                            .local_addresses
                            .contains(addr.ip(), std::time::Instant::now())))
        })
    }
}

/// Why a configuration could not be loaded: the typed errors of the directory, or the
/// run-time material (certificates, trust stores) that could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Unreadable files, or every validation error (each with its file and JSON path).
    #[error(transparent)]
    Config(#[from] dir::LoadError),
    /// Certificate material or a profile's CA files cannot be used.
    #[error(transparent)]
    Prepare(#[from] anyhow::Error),
}

impl LoadError {
    /// Every error as its own line, for the reload log.
    pub fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Config(err) => err.lines(),
            LoadError::Prepare(err) => format!("{err:#}").lines().map(str::to_owned).collect(),
        }
    }
}

/// Loads and prepares the configuration in `dir`. Blocking (it reads files): at start-up,
/// or on the blocking pool.
///
/// # Errors
/// Every configuration error, or unusable certificate material.
pub fn load(dir: &Path, minting: &Arc<MintingState>) -> Result<Prepared, LoadError> {
    let config = dir::load(dir)?;
    Ok(Prepared::new(config, dir, minting)?)
}

/// Runs the proxy until SIGTERM/SIGINT and the drain that follows.
///
/// Must run on the thread that calls `block_on` (not in a spawned task): privileges are
/// dropped here, and the capabilities kept for binding ports on reload are per thread.
///
/// # Errors
/// The initial configuration is invalid or a listener cannot be bound.
pub async fn run(
    dir: PathBuf,
    ready: Option<tokio::sync::oneshot::Sender<Vec<SocketAddr>>>,
) -> Result<()> {
    // First: a SIGHUP (`systemctl reload`) during start-up must queue a reload, not take
    // the default action and end the process.
    let mut hangup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let minting = Arc::<MintingState>::default();
    let prepared = load(&dir, &minting)?;
    let global = prepared.config.global().clone();
    crate::logging::init(
        global.log_format(),
        global.log_level(),
        crate::privileges::plan(global.user()),
    );
    warn_on_low_open_file_limit(&global);
    // Before the listeners: once a client can connect, an edit must not be missed. Before
    // the privilege drop: an inotify watch, once made, outlives the rights it needed.
    // Its thread must not inherit this thread's capabilities (see `privileges`).
    let mut changes =
        crate::privileges::on_unprivileged_thread(|| crate::watch::DirWatcher::start(&dir));
    let mut listeners = Listeners::default();
    let change = listeners
        .prepare(&prepared.config)
        .map_err(|errors| joined(&errors))
        .context("binding listeners")?;
    let limits = global.limits();
    let shared = Arc::new(Shared {
        dir: dir.clone(),
        current: watch::Sender::new(Arc::new(prepared)),
        limits: ConnectionLimits::new(
            limits.max_connections() as usize,
            limits.max_connections_per_client(),
            limits.client_ipv6_prefix(),
        ),
        own_listeners: RwLock::new(Vec::new()),
        local_addresses: Default::default(),
        dns: Default::default(),
        sni_proofs: Default::default(),
        next_id: AtomicU64::new(1),
        closing: watch::Sender::new(false),
        registry: crate::registry::Registry::new(),
        status: Arc::new(crate::control::DaemonStatus::started(global.state())),
        sessions: SessionShared::new(global.state_dir(), global.spool_max_bytes(), minting),
    });
    shared.status.set_spool(shared.sessions.spool.clone());
    let settings = shared.clone();
    crate::state::purge::spawn(move || settings.current().config.global().state().clone());
    // Before the privilege drop: the socket's directory may be root's (/run/popgate).
    // Before the listeners: once a client can connect, `popgate status` answers.
    let _control = crate::control::server::start(
        global.state(),
        global.user(),
        shared.registry.clone(),
        shared.status.clone(),
    );
    listeners.apply(change, &shared).await;
    shared.status.set_listeners(&listeners.addresses());
    crate::metrics::certificate_source(Arc::new(CacheCounts(shared.sessions.minting.clone())));
    crate::metrics::certificate_expiry_from(&dir);
    // Bound before the privilege drop (the address may be a low port); kept for the life of
    // the process: a reload does not move it.
    let _metrics = match global.metrics_listen() {
        Some(addr) => Some(
            crate::metrics::serve(addr)
                .await
                .with_context(|| format!("binding metrics.listen {addr}"))?,
        ),
        None => None,
    };
    drop_privileges(&global, &dir, &shared.sessions.minting)?;
    info!(listeners = %crate::log_line::list(&listeners.addresses()), "popgate running");
    if let Some(ready) = ready {
        let _ = ready.send(listeners.addresses());
    }
    loop {
        tokio::select! {
            _ = hangup.recv() => reload(&shared, &mut listeners, "SIGHUP").await,
            () = changes.changed() => reload(&shared, &mut listeners, "file change").await,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    listeners.close_all().await;
    drain(&shared, &mut terminate, &mut interrupt).await;
    info!("popgate stopped");
    Ok(())
}

/// Warns when the open-file limit cannot hold two sockets per allowed connection.
fn warn_on_low_open_file_limit(global: &Global) {
    let open_files = limits::raise_open_file_limit();
    let wanted = 2 * u64::from(global.limits().max_connections()) + 64;
    if open_files < wanted {
        warn!(
            open_files,
            max_connections = global.limits().max_connections(),
            "the open-file limit is below two sockets per allowed connection"
        );
    }
}

/// Drops to `user`/`group`; when switching from root, checks that the configuration can
/// still be read as a reload would read it.
fn drop_privileges(global: &Global, dir: &Path, minting: &Arc<MintingState>) -> Result<()> {
    let switching =
        crate::privileges::plan(global.user()) == crate::privileges::Plan::SwitchFromRoot;
    crate::privileges::drop_to(global.user(), global.group())?;
    if switching {
        // Every reload reads the directory as this user: refuse to start now rather than
        // reject every later reload (SPEC §4).
        load(dir, minting).with_context(|| {
            format!(
                "running as user {}, the configuration cannot be read as a reload would read \
                 it; make {} and the keys enabled policies need readable by that user",
                global.user(),
                dir.display()
            )
        })?;
    }
    Ok(())
}

/// The SIGTERM drain: sessions get `limits.shutdown_grace_s` (or until a second signal),
/// then the remaining ones are closed.
async fn drain(shared: &Shared, terminate: &mut Signal, interrupt: &mut Signal) {
    let grace = shared.current().config.global().limits().shutdown_grace();
    info!(
        active = shared.limits.active(),
        grace_s = grace.as_secs(),
        "stopped accepting; draining sessions"
    );
    let cut_short = tokio::select! {
        _ = shared.limits.drained() => None,
        _ = tokio::time::sleep(grace) => Some("grace period over"),
        _ = terminate.recv() => Some("second signal"),
        _ = interrupt.recv() => Some("second signal"),
    };
    if let Some(why) = cut_short {
        warn!(
            active = shared.limits.active(),
            why, "closing the remaining sessions"
        );
        shared.closing.send_replace(true);
        // Every session task ends at its next poll; this only waits for the tasks to run.
        let _ = tokio::time::timeout(SESSION_CLOSE, shared.limits.drained()).await;
    }
}

/// How long closed sessions get to release their resources before the process exits.
const SESSION_CLOSE: Duration = Duration::from_secs(2);

/// Validates the new configuration and swaps it in, or keeps the running one.
///
/// What a reload changes: new connections are admitted, selected and routed under the new
/// configuration, and the listeners become the union of what the enabled policies need.
/// An established session applies its policy's new action settings (login rules, limits,
/// inspection) at its next command (SPEC §4); its legs (upstream, TLS) stay as they were set
/// up. When its policy is disabled or removed it keeps its settings and finishes: a client
/// in the middle of downloading its mail is never cut off by an administrator's edit
/// (SPEC §2: "without dropping established sessions").
///
/// Atomic: the configuration must load, prepare and get every new listener bound, or nothing
/// changes and every error is logged (each naming its file and JSON path).
async fn reload(shared: &Arc<Shared>, listeners: &mut Listeners, trigger: &str) {
    let rejected = |error: &str| {
        error!(
            trigger,
            error, "configuration rejected; keeping the running one"
        )
    };
    let dir = shared.dir.clone();
    let minting = shared.sessions.minting.clone();
    let loaded = tokio::task::spawn_blocking(move || load(&dir, &minting))
        .await
        .unwrap_or_else(|err| Err(LoadError::Prepare(anyhow::anyhow!("loading task: {err}"))));
    let prepared = match loaded {
        Ok(prepared) => prepared,
        Err(err) => {
            let errors = err.lines();
            errors.iter().for_each(|line| rejected(line));
            shared.status.rejected(trigger, errors);
            crate::metrics::reload(false);
            return;
        }
    };
    let change = match listeners.prepare(&prepared.config) {
        Ok(change) => change,
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(|err| format!("{err:#}")).collect();
            errors.iter().for_each(|line| rejected(line));
            shared.status.rejected(trigger, errors);
            crate::metrics::reload(false);
            return;
        }
    };
    let enabled = prepared.config.enabled_policies().count();
    let changed = restart_only_changes(shared.current().config.global(), prepared.config.global());
    if !changed.is_empty() {
        warn!(
            trigger,
            settings = %crate::log_line::list(&changed),
            "these settings take effect at the next restart"
        );
    }
    shared
        .sessions
        .spool
        .set_max_bytes(prepared.config.global().spool_max_bytes());
    let limits = prepared.config.global().limits();
    shared.limits.set_maximums(
        limits.max_connections() as usize,
        limits.max_connections_per_client(),
        limits.client_ipv6_prefix(),
    );
    shared
        .status
        .applied(trigger, prepared.config.global().state());
    crate::metrics::certificate_expiry_from(&shared.dir);
    shared.sni_proofs.clear();
    shared.current.send_replace(Arc::new(prepared));
    listeners.apply(change, shared).await;
    shared.status.set_listeners(&listeners.addresses());
    info!(
        trigger,
        enabled_policies = enabled,
        listeners = %crate::log_line::list(&listeners.addresses()),
        "configuration reloaded"
    );
    crate::metrics::reload(true);
}

/// Settings read once at start; a reload that changes them only warns.
fn restart_only_changes(old: &Global, new: &Global) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.interception() != new.interception() {
        // Listeners keep their transparency; accept already follows the new mode.
        changed.push("interception");
    }
    if old.user() != new.user() || old.group() != new.group() {
        changed.push("user/group");
    }
    if old.log_format() != new.log_format() || old.log_level() != new.log_level() {
        changed.push("log");
    }
    if old.metrics_listen() != new.metrics_listen() {
        changed.push("metrics.listen");
    }
    if old.state_dir() != new.state_dir() {
        changed.push("state_dir");
    }
    let (old_state, new_state) = (old.state(), new.state());
    if old_state.control_socket() != new_state.control_socket()
        || old_state.control_group() != new_state.control_group()
    {
        changed.push("control");
    }
    changed
}

fn joined(errors: &[anyhow::Error]) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
    anyhow::anyhow!("{}", lines.join("\n"))
}
