//! The set of listening sockets, kept equal to what the enabled policies need: a reload
//! binds new ports and closes dropped ones without touching established sessions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use popgate_policy::{Interception, PortKind};
use tokio::task::JoinHandle;
use tracing::info;

use super::accept::accept_loop;
use super::Shared;
use crate::net::listener;

/// Listening sockets by address, each with its accept task.
#[derive(Debug, Default)]
pub struct Listeners {
    running: HashMap<SocketAddr, (PortKind, JoinHandle<()>)>,
}

impl Listeners {
    /// Binds what the current configuration needs and closes what it no longer does.
    ///
    /// # Errors
    /// A new listener could not be bound; the others are still updated.
    pub fn sync(&mut self, shared: &Arc<Shared>) -> Result<()> {
        let prepared = shared.current();
        let global = prepared.config.global();
        let transparent = global.interception() == Interception::Tproxy;
        let mut wanted = HashMap::new();
        for (kind, port) in prepared.config.listen_ports() {
            for ip in global.bind_addresses() {
                wanted.insert(SocketAddr::new(*ip, port), kind);
            }
        }
        self.running.retain(|addr, (kind, task)| {
            let keep = wanted.get(addr) == Some(kind);
            if !keep {
                task.abort();
                info!(%addr, "listener closed");
            }
            keep
        });
        let mut first_error = None;
        for (addr, kind) in wanted {
            if self.running.contains_key(&addr) {
                continue;
            }
            match listener::bind(addr, transparent).with_context(|| format!("binding {addr}")) {
                Ok(socket) => {
                    let addr = socket.local_addr().unwrap_or(addr);
                    info!(%addr, kind = kind.as_str(), "listening");
                    let task = tokio::spawn(accept_loop(socket, kind, shared.clone()));
                    self.running.insert(addr, (kind, task));
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        *shared
            .own_listeners
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = self.addresses();
        first_error.map_or(Ok(()), Err)
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self.running.keys().copied().collect();
        addrs.sort();
        addrs
    }

    /// Stops accepting everywhere (sessions go on).
    pub fn close_all(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}
