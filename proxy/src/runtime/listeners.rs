//! The set of listening sockets, kept equal to what the enabled policies need: a reload
//! binds new ports and closes dropped ones without touching established sessions.
//!
//! A change happens in two steps so a reload stays atomic: [`Listeners::prepare`] binds
//! every new socket and touches nothing else (any failure drops what it bound, and the
//! running configuration stays); [`Listeners::apply`] then starts accepting on the new
//! sockets and closes the ones no longer wanted. Session tasks are independent of the accept
//! tasks, so closing a listener never ends a session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, Error};
use popgate_policy::{Config, Interception, PortKind};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use super::accept::accept_loop;
use super::Shared;
use crate::net::listener;

/// Listening sockets by address, each with its accept task.
#[derive(Debug, Default)]
pub struct Listeners {
    running: HashMap<SocketAddr, Running>,
}

/// One listening socket and the task accepting on it.
#[derive(Debug)]
struct Running {
    kind: PortKind,
    // Shared with the accept task, so a kind change can restart the task on the same socket
    // (binding the port again while it listens would fail).
    socket: Arc<TcpListener>,
    task: JoinHandle<()>,
}

/// What [`Listeners::apply`] will change: the new sockets are already bound.
#[derive(Debug, Default)]
pub struct Change {
    bound: Vec<(SocketAddr, PortKind, Arc<TcpListener>)>,
    rekind: Vec<(SocketAddr, PortKind)>,
    close: Vec<SocketAddr>,
}

impl Listeners {
    /// Binds the sockets `config` needs that are not bound yet, without accepting on them.
    ///
    /// # Errors
    /// One error per address that could not be bound (port taken, missing capability); the
    /// sockets bound meanwhile are closed again.
    pub fn prepare(&self, config: &Config) -> Result<Change, Vec<Error>> {
        let global = config.global();
        let transparent = global.interception() == Interception::Tproxy;
        let mut wanted = HashMap::new();
        for (kind, port) in config.listen_ports() {
            for ip in global.bind_addresses() {
                wanted.insert(SocketAddr::new(*ip, port), kind);
            }
        }
        let mut change = Change::default();
        let mut errors = Vec::new();
        for (addr, running) in &self.running {
            match wanted.get(addr) {
                None => change.close.push(*addr),
                Some(kind) if *kind != running.kind => change.rekind.push((*addr, *kind)),
                Some(_) => {}
            }
        }
        for (addr, kind) in wanted {
            if self.running.contains_key(&addr) {
                continue;
            }
            match listener::bind(addr, transparent) {
                Ok(socket) => change.bound.push((addr, kind, Arc::new(socket))),
                Err(err) => errors.push(anyhow!("binding {addr} ({}): {err}", kind.as_str())),
            }
        }
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(errors)
        }
    }

    /// Starts accepting on the sockets `change` bound, restarts the accept tasks whose port
    /// kind changed, and closes the listeners no longer wanted. Returns once the closed
    /// sockets are really closed (a connect to them is refused).
    ///
    /// Cancel safety: not cancel safe (a cancelled call leaves listeners half updated).
    pub async fn apply(&mut self, change: Change, shared: &Arc<Shared>) {
        for addr in change.close {
            if let Some(running) = self.running.remove(&addr) {
                let kind = running.kind;
                drop(running.stop().await);
                info!(%addr, kind = kind.as_str(), "listener closed");
            }
        }
        for (addr, kind) in change.rekind {
            if let Some(running) = self.running.remove(&addr) {
                let socket = running.stop().await;
                info!(%addr, kind = kind.as_str(), "listener changed kind");
                self.start(addr, kind, socket, shared);
            }
        }
        // Known as popgate's own before the first accept, so a connection that arrives at
        // once is still recognised as a routing loop.
        let mut own = self.addresses();
        own.extend(change.bound.iter().map(|(addr, _, _)| *addr));
        *shared
            .own_listeners
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = own;
        for (addr, kind, socket) in change.bound {
            info!(%addr, kind = kind.as_str(), "listening");
            self.start(addr, kind, socket, shared);
        }
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self.running.keys().copied().collect();
        addrs.sort();
        addrs
    }

    /// Stops accepting everywhere and closes every listening socket (sessions go on).
    ///
    /// Cancel safety: every accept task is aborted before the first await, so a cancelled
    /// call still stops accepting; the sockets then close a moment later.
    pub async fn close_all(&mut self) {
        let all: Vec<(SocketAddr, Running)> = self.running.drain().collect();
        for (_, running) in &all {
            running.task.abort();
        }
        for (addr, running) in all {
            drop(running.stop().await);
            info!(%addr, "listener closed");
        }
    }

    fn start(
        &mut self,
        addr: SocketAddr,
        kind: PortKind,
        socket: Arc<TcpListener>,
        shared: &Arc<Shared>,
    ) {
        let task = tokio::spawn(accept_loop(socket.clone(), kind, shared.clone()));
        self.running.insert(addr, Running { kind, socket, task });
    }
}

impl Running {
    /// Aborts the accept task and waits until it is gone, so the only reference to the
    /// socket left is the one returned: dropping it closes the socket.
    async fn stop(self) -> Arc<TcpListener> {
        self.task.abort();
        // Cancelled, or an accept loop that ended by itself: either way the task is gone.
        let _ = self.task.await;
        self.socket
    }
}
