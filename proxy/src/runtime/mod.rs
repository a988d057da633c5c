//! The running daemon: the current configuration snapshot, the listeners that match it,
//! reloads (SIGHUP, directory changes) and the SIGTERM drain.

mod accept;
pub mod limits;
mod listeners;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::config::dir;
use crate::config::prepared::Prepared;
use limits::ConnectionLimits;
use listeners::Listeners;

/// State every accept loop and session shares.
#[derive(Debug)]
pub struct Shared {
    dir: PathBuf,
    current: RwLock<Arc<Prepared>>,
    /// Session admission.
    pub limits: Arc<ConnectionLimits>,
    own_listeners: RwLock<Vec<SocketAddr>>,
    next_id: AtomicU64,
}

impl Shared {
    /// The configuration snapshot for a new decision; never held across an await.
    pub fn current(&self) -> Arc<Prepared> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
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
                    || (listener.ip().is_unspecified() && is_local_address(addr.ip())))
        })
    }
}

/// Loads and prepares the configuration in `dir`.
///
/// # Errors
/// Every configuration error, or unusable certificate material.
pub fn load(dir: &Path) -> Result<Prepared> {
    let config = dir::load(dir).map_err(|err| anyhow::anyhow!("{err}"))?;
    Prepared::new(config, dir)
}

/// Runs the proxy until SIGTERM/SIGINT and the drain that follows.
///
/// # Errors
/// The initial configuration is invalid or a listener cannot be bound.
pub async fn run(
    dir: PathBuf,
    ready: Option<tokio::sync::oneshot::Sender<Vec<SocketAddr>>>,
) -> Result<()> {
    let prepared = load(&dir)?;
    let global = prepared.config.global().clone();
    crate::logging::init(global.log_format(), global.log_level());
    let limits = global.limits();
    let shared = Arc::new(Shared {
        dir: dir.clone(),
        current: RwLock::new(Arc::new(prepared)),
        limits: ConnectionLimits::new(
            limits.max_connections() as usize,
            limits.max_connections_per_client(),
        ),
        own_listeners: RwLock::new(Vec::new()),
        next_id: AtomicU64::new(1),
    });
    let mut listeners = Listeners::default();
    listeners.sync(&shared).context("binding listeners")?;
    crate::privileges::drop_to(global.user(), global.group())?;
    info!(listeners = ?listeners.addresses(), "popgate running");
    if let Some(ready) = ready {
        let _ = ready.send(listeners.addresses());
    }

    let mut hangup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut changes = crate::watch::DirWatcher::start(&dir);
    loop {
        tokio::select! {
            _ = hangup.recv() => reload(&shared, &mut listeners, "SIGHUP"),
            Some(()) = changes.changed() => reload(&shared, &mut listeners, "file change"),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    listeners.close_all();
    let grace = shared.current().config.global().limits().shutdown_grace();
    info!(
        active = shared.limits.active(),
        grace_s = grace.as_secs(),
        "draining sessions"
    );
    if tokio::time::timeout(grace, shared.limits.drained())
        .await
        .is_err()
    {
        warn!(
            active = shared.limits.active(),
            "grace period over; closing remaining sessions"
        );
    }
    info!("popgate stopped");
    Ok(())
}

/// Validates the new configuration and swaps it in, or keeps the running one.
fn reload(shared: &Arc<Shared>, listeners: &mut Listeners, trigger: &str) {
    match load(&shared.dir) {
        Ok(prepared) => {
            *shared
                .current
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(prepared);
            match listeners.sync(shared) {
                Ok(()) => {
                    info!(trigger, listeners = ?listeners.addresses(), "configuration reloaded")
                }
                Err(err) => {
                    error!(trigger, error = %format!("{err:#}"), "configuration reloaded, but a listener failed")
                }
            }
        }
        Err(err) => {
            for line in format!("{err:#}").lines() {
                error!(
                    trigger,
                    error = line,
                    "configuration rejected; keeping the running one"
                );
            }
        }
    }
}

fn is_local_address(ip: std::net::IpAddr) -> bool {
    if ip.is_loopback() {
        return true;
    }
    nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs.into_iter().any(|ifaddr| {
                ifaddr.address.is_some_and(|addr| {
                    addr.as_sockaddr_in()
                        .is_some_and(|v4| std::net::IpAddr::V4(v4.ip()) == ip)
                        || addr
                            .as_sockaddr_in6()
                            .is_some_and(|v6| std::net::IpAddr::V6(v6.ip()) == ip)
                })
            })
        })
        .unwrap_or(false)
}
