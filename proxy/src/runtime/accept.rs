//! Accepting connections: original destination, loop check, limits, policy selection, and
//! the session task spawned inside its span.
//!
//! Each connection is decided on the configuration snapshot current when it is accepted;
//! the session follows later reloads of its own policy at its next command (see `reload` in
//! `mod.rs`). Session
//! tasks do not belong to the accept task, so closing a listener leaves them running; only
//! the end of the shutdown grace period (`Shared::closing`) ends them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use popgate_policy::{Interception, PortKind};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{field, info, info_span, warn, Instrument};

use super::limits::Refusal;
use super::names::{self, Selection};
use super::Shared;
use crate::config::prepared::Prepared;
use crate::metrics::{self, ConnectionResult};
use crate::net::{original_dst, sni_peek};
use crate::relay::session_task;
use crate::route::{self, Accepted, Plan};

/// Accepts on `listener` until the task is aborted.
///
/// Cancel safety: safe; an accepted connection is handed to its own task at once.
pub async fn accept_loop(listener: Arc<TcpListener>, kind: PortKind, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, client)) => handle(&shared, stream, client, kind),
            Err(err) => {
                // EMFILE and friends: back off briefly rather than spin.
                warn!(error = %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn handle(shared: &Arc<Shared>, stream: TcpStream, client: SocketAddr, kind: PortKind) {
    let _ = stream.set_nodelay(true);
    let id = shared.next_id();
    let prepared = shared.current();
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let interception = prepared.config.global().interception();
    let original_dst = match interception {
        Interception::Redirect => original_dst::redirected(&stream, local).unwrap_or(local),
        Interception::Tproxy | Interception::None => local,
    };
    let span = info_span!(
        "session",
        id,
        client = %client,
        orig_dst = %original_dst,
        policy = field::Empty,
        action = field::Empty,
        user = field::Empty,
    );
    let accepted = Accepted {
        client,
        original_dst,
        kind,
    };
    if interception != Interception::None && shared.is_own_listener(original_dst) {
        let _enter = span.enter();
        info!("routing loop: original destination is popgate itself; refused");
        refuse_now(
            stream,
            accepted,
            ConnectionResult::Loop,
            "[SYS/PERM] routing loop",
        );
        return;
    }
    let permit = match shared.limits.admit(client.ip()) {
        Ok(permit) => permit,
        Err(refusal) => {
            let _enter = span.enter();
            let limit = match refusal {
                Refusal::Total => "max_connections",
                Refusal::PerClient => "max_connections_per_client",
            };
            info!(limit, "connection limit reached; refused");
            let text = "[SYS/TEMP] too many connections, try again later";
            refuse_now(stream, accepted, ConnectionResult::Limit, text);
            return;
        }
    };
    let connection = Connection {
        stream,
        accepted,
        prepared,
        live: shared.follow(),
        shared: Arc::clone(shared),
    };
    let mut closing = shared.closing.subscribe();
    let registered = shared.registry.register(id, client, original_dst);
    let entry = registered.entry().clone();
    let task = async move {
        let _active = metrics::session_started();
        tokio::select! {
            () = connection.serve() => {}
            _ = closing.wait_for(|closing| *closing) => {
                info!("session closed: shutdown grace period over");
            }
            // The relay answers a kill itself (an -ERR, then the close); this ends a session
            // still setting up, or one that does not finish in time.
            () = async { entry.killed().await; tokio::time::sleep(KILL_GRACE).await } => {
                info!("session closed: ended by the administrator");
            }
        }
        drop(permit);
    };
    tokio::spawn(registered.scope(task).instrument(span));
}

/// How long a killed session gets to tell its client before its task is dropped.
const KILL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Refuses a connection before any policy is looked at (`-ERR` where a greeting is
/// possible), counting it as `result`.
fn refuse_now(stream: TcpStream, accepted: Accepted, result: ConnectionResult, text: &'static str) {
    metrics::connection(result);
    let plaintext = accepted.kind == PortKind::Pop3;
    tokio::spawn(session_task::refuse(stream, text, plaintext));
}

/// An admitted connection, with the configuration snapshot it is decided on.
struct Connection {
    stream: TcpStream,
    accepted: Accepted,
    prepared: Arc<Prepared>,
    live: watch::Receiver<Arc<Prepared>>,
    shared: Arc<Shared>,
}

impl Connection {
    /// Selects the policy, plans the route and serves it (or refuses).
    async fn serve(self) {
        let Connection {
            stream,
            accepted,
            prepared,
            live,
            shared,
        } = self;
        let plaintext = accepted.kind == PortKind::Pop3;
        let timeout = prepared.config.global().limits().handshake_timeout();
        let sni = client_sni(&stream, accepted.kind, timeout).await;
        let sessions = &shared.sessions;
        let memory = (&shared.dns, &shared.sni_proofs);
        let selected = names::select(&prepared, memory, sessions, accepted, sni, timeout).await;
        let Some(Selection { policy, names }) = selected else {
            info!("no policy matches the connection; refused");
            metrics::connection(ConnectionResult::NoPolicy);
            session_task::refuse(stream, "[SYS/PERM] connection refused by policy", plaintext)
                .await;
            return;
        };
        let span = tracing::Span::current();
        span.record("policy", policy.name());
        span.record("action", policy.action().name());
        crate::registry::with_current(|e| e.set_policy(policy.name(), policy.action().name()));
        match route::plan_with_names(&prepared, policy, accepted, sessions, &names) {
            Plan::Session(mut route) => {
                route.live = Some(live);
                session_task::serve(stream, *route).await
            }
            Plan::Opaque {
                host,
                port,
                connect,
                idle_timeout,
            } => {
                let timeout = prepared.config.global().limits().handshake_timeout();
                crate::registry::with_current(|e| {
                    e.set_state(crate::registry::SessionState::Tunnel);
                    e.set_tls("passthrough", "passthrough");
                });
                session_task::opaque(stream, &host, port, &connect, timeout, idle_timeout).await
            }
            Plan::Refuse(text) => {
                info!(reason = %text, "session refused");
                metrics::connection(ConnectionResult::PolicyRefused);
                session_task::refuse(stream, "[SYS/PERM] connection refused by policy", plaintext)
                    .await;
            }
        }
    }
}

/// Domain entries in `to` match the client's SNI once confirmed, or the original
/// destination's DNS names (SPEC §4); only implicit-TLS clients send an SNI before a policy
/// must be chosen.
async fn client_sni(stream: &TcpStream, kind: PortKind, timeout: Duration) -> Option<String> {
    match kind {
        PortKind::Pop3s => sni_peek::peek_sni(stream, timeout).await,
        PortKind::Pop3 => None,
    }
}
