//! One task per client connection: connect upstream, set up TLS where the route says so,
//! run the byte pump, act on its interrupts, and log one summary line at the end.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::conn::Conn;
use super::inspection::{self, CollectedMessage};
use super::pump::{flush_side, ByteCounts, Interrupt, MessageInProgress, Pump};
use crate::net::upstream::{self, ConnectOptions};
use crate::pop3::{CloseReason, Session, SessionConfig, Side};
use crate::tls::legs::{TlsLegs, TlsSummary};

/// Everything decided about a connection before its session starts.
#[derive(Debug, Clone)]
pub struct Route {
    /// The policy that handles the connection.
    pub policy: Arc<str>,
    /// Its proxy action.
    pub action: Arc<str>,
    /// The real server.
    pub upstream_host: String,
    /// The real server's port.
    pub upstream_port: u16,
    /// Socket options for the upstream connection.
    pub connect: ConnectOptions,
    /// Bounds the connect, the greeting and each TLS handshake.
    pub handshake_timeout: Duration,
    /// The POP3 core's configuration.
    pub session: SessionConfig,
    /// TLS on either leg.
    pub tls: TlsLegs,
}

/// How long the last bytes to the client may take once the session is over.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Serves one client connection to its end.
///
/// Cancel safety: dropping the future closes both connections; nothing else is left.
pub async fn serve(client: TcpStream, route: Route) {
    let started = Instant::now();
    let mut summary = Summary::default();
    let reason = match run(client, &route, &mut summary).await {
        Ok(reason) => reason,
        Err(failure) => failure.reason,
    };
    let (level_info, result) = classify(&reason);
    let duration_ms = started.elapsed().as_millis() as u64;
    if level_info {
        info!(
            result,
            reason = ?reason,
            duration_ms,
            bytes_from_client = summary.bytes.from_client,
            bytes_from_server = summary.bytes.from_server,
            commands = summary.commands,
            messages = summary.messages,
            client_tls = %summary.tls.client,
            server_tls = %summary.tls.server,
            server_certificate = %summary.tls.server_certificate,
            "session closed"
        );
    } else {
        warn!(
            result,
            reason = ?reason,
            duration_ms,
            bytes_from_client = summary.bytes.from_client,
            bytes_from_server = summary.bytes.from_server,
            "session closed"
        );
    }
}

/// The figures of the summary line.
#[derive(Debug, Default)]
struct Summary {
    bytes: ByteCounts,
    commands: u64,
    messages: u64,
    tls: TlsSummary,
}

/// A session that ended before or outside the core.
struct Failure {
    reason: CloseReason,
}

fn classify(reason: &CloseReason) -> (bool, &'static str) {
    match reason {
        CloseReason::Finished => (true, "finished"),
        CloseReason::PeerClosed(_) => (true, "peer_closed"),
        CloseReason::TimedOut(_) => (true, "timed_out"),
        CloseReason::ProtocolViolation(..) => (true, "protocol_violation"),
        CloseReason::Refused(_) => (true, "refused"),
    }
}

async fn run(
    client: TcpStream,
    route: &Route,
    summary: &mut Summary,
) -> Result<CloseReason, Failure> {
    let mut client = Conn::Plain(client);
    let server = match upstream::connect(
        &route.upstream_host,
        route.upstream_port,
        &route.connect,
        route.handshake_timeout,
    )
    .await
    {
        Ok(server) => server,
        Err(err) => {
            info!(error = %err, host = %route.upstream_host, port = route.upstream_port,
                "upstream connect failed");
            refuse_client(&mut client, route, "[SYS/TEMP] mail server unavailable").await;
            return Err(Failure {
                reason: CloseReason::PeerClosed(Side::Server),
            });
        }
    };
    let mut server = Conn::Plain(server);
    let mut session_config = route.session.clone();
    if let Err(err) = route
        .tls
        .implicit(
            &mut client,
            &mut server,
            route.handshake_timeout,
            &mut summary.tls,
        )
        .await
    {
        info!(side = ?err.side, reason = %err.message, "TLS handshake failed");
        if err.side == Side::Server && !client.is_tls() {
            refuse_client(
                &mut client,
                route,
                "[SYS/TEMP] TLS to the mail server failed",
            )
            .await;
        }
        return Err(Failure {
            reason: CloseReason::Refused(err.message),
        });
    }
    session_config.client_tls = client.is_tls();
    let mut session = Session::new(session_config, Instant::now());
    if server.is_tls() {
        session.set_server_tls();
    }
    let reason = drive(&mut session, &mut client, &mut server, route, summary).await;
    summary.commands = session.stats().commands;
    summary.messages = session.stats().messages;
    if flush_with_deadline(&mut session, &mut client)
        .await
        .is_err()
    {
        debug!("client did not take the last bytes");
    }
    let _ = client.shutdown().await;
    Ok(reason)
}

async fn drive(
    session: &mut Session,
    client: &mut Conn,
    server: &mut Conn,
    route: &Route,
    summary: &mut Summary,
) -> CloseReason {
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut message = MessageInProgress::default();
    loop {
        let interrupt = Pump {
            session: &mut *session,
            client: &mut *client,
            server: &mut *server,
            timer: timer.as_mut(),
            bytes: &mut summary.bytes,
            message: &mut message,
        }
        .run()
        .await;
        match interrupt {
            Interrupt::Closed(reason) => return reason,
            Interrupt::Io(side, err) => return io_reason(side, &err),
            Interrupt::StartTls(side) => {
                let conn = match side {
                    Side::Client => &mut *client,
                    Side::Server => &mut *server,
                };
                if let Err(err) = flush_side(session, conn, side).await {
                    return io_reason(side, &err);
                }
                let upgraded = match side {
                    Side::Client => {
                        route
                            .tls
                            .upgrade_client(client, route.handshake_timeout, &mut summary.tls)
                            .await
                    }
                    Side::Server => {
                        route
                            .tls
                            .upgrade_server(server, route.handshake_timeout, &mut summary.tls)
                            .await
                    }
                };
                if let Err(err) = upgraded {
                    info!(side = ?err.side, reason = %err.message, "TLS handshake failed");
                    return CloseReason::ProtocolViolation(side, err.message);
                }
                session.tls_established(side, Instant::now());
            }
            Interrupt::Tunnel => return tunnel(session, client, server, summary).await,
            Interrupt::Message {
                number,
                partial,
                raw,
            } => {
                let message = CollectedMessage {
                    number,
                    partial,
                    raw,
                };
                inspection::deliver(session, message).await;
            }
        }
    }
}

/// Copies bytes opaquely after a passed-through STLS (`tls.action: allow`).
async fn tunnel(
    session: &mut Session,
    client: &mut Conn,
    server: &mut Conn,
    summary: &mut Summary,
) -> CloseReason {
    if let Err(err) = flush_side(session, client, Side::Client).await {
        return io_reason(Side::Client, &err);
    }
    match tokio::io::copy_bidirectional(client, server).await {
        Ok((up, down)) => {
            summary.bytes.from_client += up;
            summary.bytes.from_server += down;
            CloseReason::Finished
        }
        Err(err) => io_reason(Side::Client, &err),
    }
}

fn io_reason(side: Side, err: &io::Error) -> CloseReason {
    debug!(?side, error = %err, "socket error");
    match err.kind() {
        io::ErrorKind::TimedOut => CloseReason::TimedOut(side),
        _ => CloseReason::PeerClosed(side),
    }
}

async fn flush_with_deadline(session: &mut Session, client: &mut Conn) -> io::Result<()> {
    tokio::time::timeout(FINAL_FLUSH, flush_side(session, client, Side::Client))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Answers a client the session could not be set up for, where a reply is possible.
async fn refuse_client(client: &mut Conn, route: &Route, text: &str) {
    if route.tls.client_is_implicit() && !client.is_tls() {
        // An implicit-TLS client cannot read plaintext; closing is the only answer.
        return;
    }
    let line = format!("-ERR {text}\r\n");
    let _ = tokio::time::timeout(FINAL_FLUSH, client.write_all(line.as_bytes())).await;
    let _ = client.shutdown().await;
}

/// Refuses a connection no policy accepts (`-ERR` where a greeting is possible).
pub async fn refuse(mut client: TcpStream, text: &str, plaintext: bool) {
    if plaintext {
        let line = format!("-ERR {text}\r\n");
        let _ = tokio::time::timeout(FINAL_FLUSH, client.write_all(line.as_bytes())).await;
    }
    let _ = client.shutdown().await;
}

/// The addresses of an accepted connection, for the session span.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    /// The client.
    pub client: SocketAddr,
    /// The original destination (or the listener's address without interception).
    pub original_dst: SocketAddr,
}

/// Copies bytes opaquely between the client and the server (`tls.action: allow` on the
/// pop3s port: TLS passes through uninspected).
///
/// Cancel safety: dropping it closes both connections.
pub async fn opaque(
    mut client: TcpStream,
    host: &str,
    port: u16,
    connect: &ConnectOptions,
    timeout: Duration,
) {
    let mut server = match upstream::connect(host, port, connect, timeout).await {
        Ok(server) => server,
        Err(err) => {
            info!(error = %err, host, port, "upstream connect failed");
            return;
        }
    };
    let result = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    let (from_client, from_server) = result.unwrap_or_default();
    info!(
        result = "finished",
        bytes_from_client = from_client,
        bytes_from_server = from_server,
        "opaque session closed"
    );
}
