//! One task per client connection: connect upstream, set up TLS where the route says so,
//! run the byte pump, act on its interrupts, and log one summary line at the end.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info};

use super::message_job::MessageJob;
use super::pump::{flush_side, ByteCounts, Interrupt, Pump};
use super::server_leg::{self, Attempts, SetupError, TlsState};
use super::tunnel::{self, Copied, TunnelEnd};
use crate::config::inspection_plan::InspectionPlan;
use crate::config::prepared::Prepared;
use crate::metrics::{self, ConnectionResult, Direction};
use crate::net::conn::Conn;
use crate::net::upstream::{self, ConnectOptions};
use crate::pop3::{CloseReason, Session, Side, UpstreamStls, Violation};
use crate::registry::SessionState;
use crate::route::{self, Plan, Route};
use crate::tls::legs::{ClientHello, FailureKind, Purpose, TlsFailure};

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
    let result = result_label(&reason);
    metrics::policy_session(&route.policy, result);
    let duration_ms = started.elapsed().as_millis() as u64;
    info!(
        result,
        reason_kind = reason.kind(),
        reason = %reason,
        duration_ms,
        bytes_from_client = summary.bytes.from_client,
        bytes_from_server = summary.bytes.from_server,
        commands = summary.commands,
        messages = summary.messages,
        verdicts = %summary.verdicts,
        client_tls = %summary.tls.summary.client,
        client_sni = summary.tls.summary.client_sni.as_deref().unwrap_or(""),
        server_tls = %summary.tls.summary.server,
        server_certificate = %summary.tls.summary.server_certificate,
        server_subject = summary.tls.summary.server_subject.as_deref().unwrap_or(""),
        "session closed"
    );
}

/// The figures of the summary line.
#[derive(Debug, Default)]
struct Summary {
    bytes: ByteCounts,
    commands: u64,
    messages: u64,
    verdicts: VerdictTally,
    tls: TlsState,
}

/// A session that ended before or outside the core.
struct Failure {
    reason: CloseReason,
}

/// The summary's `result`: a bounded label for the way the session ended.
fn result_label(reason: &CloseReason) -> &'static str {
    match reason {
        CloseReason::Finished => "finished",
        CloseReason::PeerClosed(_) => "peer_closed",
        CloseReason::TimedOut(_) => "timed_out",
        CloseReason::ProtocolViolation(..) => "protocol_violation",
        CloseReason::Refused(_) => "refused",
    }
}

/// Inspection verdicts of a session, shown as `allow=2,strip=1` (or `none`).
#[derive(Debug, Default)]
struct VerdictTally(std::collections::BTreeMap<&'static str, u32>);

impl std::fmt::Display for VerdictTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, (verdict, count)) in self.0.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma}{verdict}={count}")?;
        }
        Ok(())
    }
}

async fn run(
    client: TcpStream,
    route: &Route,
    summary: &mut Summary,
) -> Result<CloseReason, Failure> {
    let mut client = Conn::Plain(client);
    // An implicit-TLS client's ClientHello first: its SNI may name the server.
    let mut hello = None;
    if route.tls.client_is_implicit() {
        let tcp = client.take_plain().map_err(|_| Failure {
            reason: CloseReason::PeerClosed(Side::Client),
        })?;
        match Box::pin(route.tls.read_client_hello(tcp, route.handshake_timeout)).await {
            Ok(read) => hello = Some(read),
            Err(err) => {
                metrics::connection(ConnectionResult::TlsRefused);
                return Err(tls_failed(err));
            }
        }
    }
    let sni = hello.as_ref().and_then(|h| h.sni.clone());
    let mut attempts = Attempts::new(route, Instant::now());
    let mut early_client_input = Vec::new();
    let mut counted = false;
    loop {
        let mut server = match Box::pin(server_leg::connect(
            route,
            &mut attempts,
            sni.as_deref(),
            &mut summary.tls,
        ))
        .await
        {
            Ok(server) => server,
            Err(err) => {
                let failed = setup_failed(&mut client, hello, route, summary, err);
                return Err(Box::pin(failed).await);
            }
        };
        if let Some(hello) = hello.take() {
            client = match Box::pin(finish_client(hello, route, summary, Purpose::Session)).await {
                Ok(client) => client,
                Err(failure) => {
                    metrics::connection(ConnectionResult::TlsRefused);
                    return Err(failure);
                }
            };
        }
        let mut session_config = route.session.clone();
        session_config.client_tls = client.is_tls();
        if attempts.plaintext() {
            session_config.upstream_stls = UpstreamStls::Never;
        }
        if !counted {
            // Once per connection, even when the server leg is set up again (retry).
            metrics::connection(ConnectionResult::Accepted);
            counted = true;
        }
        let now = Instant::now();
        let mut session = Session::new(session_config, now);
        if server.is_tls() {
            session.set_server_tls();
        }
        session.handle_bytes(Side::Client, &std::mem::take(&mut early_client_input), now);
        let driven = drive(
            &mut session,
            &mut client,
            &mut server,
            route,
            summary,
            &mut attempts,
        )
        .await;
        let reason = match driven {
            Driven::Closed(reason) => reason,
            Driven::RetryServer => {
                // Invisible to the client: it has no greeting yet. Its early bytes move on.
                early_client_input = session.take_early_client_input();
                summary.tls.forget_server();
                continue;
            }
        };
        summary.commands = session.stats().commands;
        summary.messages = session.stats().messages;
        if Box::pin(flush_with_deadline(&mut session, &mut client))
            .await
            .is_err()
        {
            debug!("client did not take the last bytes");
        }
        let _ = client.shutdown().await;
        return Ok(reason);
    }
}

/// Completes an implicit-TLS client's handshake once the server leg is set up.
async fn finish_client(
    hello: ClientHello,
    route: &Route,
    summary: &mut Summary,
    purpose: Purpose,
) -> Result<Conn, Failure> {
    let upstream = summary.tls.upstream_cert.take();
    route
        .tls
        .finish_client(
            hello,
            upstream.as_ref(),
            &route.upstream_host,
            route.handshake_timeout,
            &mut summary.tls.summary,
            purpose,
        )
        .await
        .map_err(tls_failed)
}

/// The server leg could not be set up: tell the client where a reply is possible. An
/// implicit-TLS client whose ClientHello is waiting gets its handshake finished first, so it
/// can read the `-ERR` ([`Purpose::RefusalOnly`]: nothing else crosses that connection).
async fn setup_failed(
    client: &mut Conn,
    hello: Option<ClientHello>,
    route: &Route,
    summary: &mut Summary,
    err: SetupError,
) -> Failure {
    metrics::connection(match err {
        SetupError::Connect(_) => ConnectionResult::UpstreamUnavailable,
        SetupError::Tls(_) => ConnectionResult::TlsRefused,
    });
    let (text, reason) = match err {
        SetupError::Connect(_) => (
            "[SYS/TEMP] mail server unavailable",
            CloseReason::PeerClosed(Side::Server),
        ),
        SetupError::Tls(failure) => {
            info!(side = side_name(failure.side), reason = %failure.message, "server TLS failed");
            let text = server_refusal_text(route, &failure);
            (text, CloseReason::Refused(failure.message))
        }
    };
    if let Some(hello) = hello {
        summary.tls.upstream_cert = None;
        match finish_client(hello, route, summary, Purpose::RefusalOnly).await {
            Ok(conn) => *client = conn,
            Err(_) => return Failure { reason },
        }
    }
    refuse_client(client, text).await;
    Failure { reason }
}

fn tls_failed(err: TlsFailure) -> Failure {
    info!(side = side_name(err.side), reason = %err.message, "TLS failed");
    let reason = match err.kind {
        FailureKind::Handshake => {
            CloseReason::ProtocolViolation(err.side, Violation::TlsHandshakeFailed)
        }
        FailureKind::Refused => CloseReason::Refused(err.message),
    };
    Failure { reason }
}

/// How a run of the core ended.
enum Driven {
    /// The session is over.
    Closed(CloseReason),
    /// The server's TLS handshake failed before the greeting, on an opportunistic route:
    /// set the server leg up again on a new connection.
    RetryServer,
}

async fn drive(
    session: &mut Session,
    client: &mut Conn,
    server: &mut Conn,
    route: &Route,
    summary: &mut Summary,
    attempts: &mut Attempts,
) -> Driven {
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut job: Option<MessageJob> = None;
    let mut inspection = route.inspection.clone();
    let mut live = route.live.clone();
    let entry = crate::registry::current();
    let mut kill_answered = false;
    publish_tls(summary, session);
    loop {
        let mut pump = Pump {
            session: &mut *session,
            client: &mut *client,
            server: &mut *server,
            timer: timer.as_mut(),
            bytes: &mut summary.bytes,
            job: job.as_mut(),
            reload: live.as_ref(),
        };
        let interrupt = tokio::select! {
            interrupt = pump.run() => interrupt,
            () = killed(entry.as_deref()), if !kill_answered => {
                // The core answers the client and closes; the next run drains that.
                kill_answered = true;
                session.end_by_administrator();
                continue;
            }
        };
        match interrupt {
            Interrupt::Closed(reason) => return Driven::Closed(reason),
            Interrupt::Io(side, err) => return Driven::Closed(io_reason(side, &err)),
            Interrupt::StartTls(side) => {
                if session.is_finished() {
                    // The core closed right behind its STLS (bytes injected after the
                    // server's +OK): no handshake; the next run drains the close.
                    continue;
                }
                if let Err(stop) =
                    Box::pin(start_tls(side, session, client, server, route, summary)).await
                {
                    return match stop {
                        Stop::Closed(reason) => Driven::Closed(reason),
                        Stop::ServerHandshake(failure) => {
                            let before_greeting = !session.greeted();
                            if before_greeting
                                && attempts.handshake_failed(route, &failure, Instant::now())
                            {
                                return Driven::RetryServer;
                            }
                            Box::pin(server_tls_failed(client, route, failure)).await
                        }
                    };
                }
                session.tls_established(side, Instant::now());
                publish_tls(summary, session);
            }
            Interrupt::Tunnel => {
                crate::registry::with_current(|e| e.set_state(SessionState::Tunnel));
                let idle = route.session.idle_timeout;
                let tunneled = tunnel(session, client, server, summary, idle);
                return Driven::Closed(Box::pin(tunneled).await);
            }
            Interrupt::Reconfigure => {
                if let Some(live) = &mut live {
                    follow_reload(route, session, &mut inspection, live);
                }
            }
            Interrupt::MessageStart { number, top_lines } => {
                let user = session.stats().user.as_deref().unwrap_or("");
                let plan = inspection.clone();
                job = Some(MessageJob::start(
                    plan,
                    route.shared.clone(),
                    user,
                    number,
                    top_lines,
                ));
            }
            Interrupt::Spill => {
                if let Some(job) = job.as_mut() {
                    job.spill().await;
                }
            }
            Interrupt::Oversize => match job.as_mut() {
                Some(job) => Box::pin(job.oversize(session)).await,
                None => session.oversize_discard(Instant::now()),
            },
            Interrupt::MessageEnd => {
                if let Some(job) = job.take() {
                    crate::registry::with_current(|e| e.set_state(SessionState::Inspecting));
                    let verdict = job.finish(session).await;
                    crate::registry::with_current(|e| {
                        e.add_verdict(verdict);
                        e.set_state(SessionState::Transaction);
                    });
                    *summary.verdicts.0.entry(verdict).or_default() += 1;
                }
            }
        }
    }
}

/// A leg's name for log fields.
fn side_name(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Server => "server",
    }
}

/// Completes when the administrator ends this session; never without a registry entry.
///
/// Cancel safety: safe.
async fn killed(entry: Option<&crate::registry::SessionEntry>) {
    match entry {
        Some(entry) => entry.killed().await,
        None => std::future::pending().await,
    }
}

/// Shows the legs' TLS and the POP3 state in the session registry.
fn publish_tls(summary: &Summary, session: &Session) {
    crate::registry::with_current(|e| {
        let tls = &summary.tls.summary;
        e.set_tls(&tls.client.to_string(), &tls.server.to_string());
        if session.pop3_state() == crate::pop3::Pop3State::Authorization {
            e.set_state(SessionState::Authorization);
        }
    });
}

/// Why a TLS upgrade stopped the session.
enum Stop {
    Closed(CloseReason),
    /// The server's handshake (or its certificate) failed.
    ServerHandshake(TlsFailure),
}

/// Flushes what the core has for `side`, then runs its TLS handshake.
///
/// Cancel safety: not cancel safe.
async fn start_tls(
    side: Side,
    session: &mut Session,
    client: &mut Conn,
    server: &mut Conn,
    route: &Route,
    summary: &mut Summary,
) -> Result<(), Stop> {
    let conn = match side {
        Side::Client => &mut *client,
        Side::Server => &mut *server,
    };
    if let Err(err) = flush_side(session, conn, side).await {
        return Err(Stop::Closed(io_reason(side, &err)));
    }
    let timeout = route.handshake_timeout;
    match side {
        Side::Client => {
            let upstream = summary.tls.upstream_cert.take();
            let sni_host = &route.upstream_host;
            route
                .tls
                .upgrade_client(
                    client,
                    upstream.as_ref(),
                    sni_host,
                    timeout,
                    &mut summary.tls.summary,
                )
                .await
                .map_err(|err| Stop::Closed(tls_failed(err).reason))
        }
        Side::Server => {
            let sni = summary.tls.summary.client_sni.clone();
            let cert = route
                .tls
                .upgrade_server(server, sni.as_deref(), timeout, &mut summary.tls.summary)
                .await
                .map_err(Stop::ServerHandshake)?;
            summary.tls.upstream_cert = Some(cert);
            Ok(())
        }
    }
}

/// TLS toward the server failed for good: the client, waiting for its greeting or for the
/// answer to its STLS, gets an `-ERR` line.
async fn server_tls_failed(client: &mut Conn, route: &Route, failure: TlsFailure) -> Driven {
    info!(reason = %failure.message, "server TLS failed");
    let text = server_refusal_text(route, &failure);
    refuse_client(client, text).await;
    Driven::Closed(CloseReason::Refused(failure.message))
}

/// The client's `-ERR` text for a server leg that failed with `failure`.
fn server_refusal_text(route: &Route, failure: &TlsFailure) -> &'static str {
    match &route.tls.server {
        Some(leg) => leg.refusal_text(failure),
        None => "[SYS/TEMP] TLS to the mail server failed",
    }
}

/// Applies a reloaded configuration to an open session, for its next command (SPEC §4):
/// its policy's login rules, limits and inspection. The legs (upstream, TLS) stay as they
/// were set up. A session whose policy was disabled or removed keeps its settings and
/// finishes normally.
fn follow_reload(
    route: &Route,
    session: &mut Session,
    inspection: &mut Option<Arc<InspectionPlan>>,
    live: &mut watch::Receiver<Arc<Prepared>>,
) {
    let prepared = live.borrow_and_update().clone();
    let Some(policy) = prepared
        .config
        .policy(&route.policy)
        .filter(|p| p.enabled())
    else {
        debug!("policy disabled or removed by the reload; the session keeps its settings");
        return;
    };
    let Plan::Session(replanned) = route::plan(&prepared, policy, route.accepted, &route.shared)
    else {
        debug!("the reloaded policy no longer runs sessions here; settings kept");
        return;
    };
    let new = &replanned.session;
    session.reconfigure(|config| {
        config.auth = new.auth.clone();
        config.login_requires_tls = new.login_requires_tls;
        config.commands_require_tls = new.commands_require_tls;
        config.inspect_messages = new.inspect_messages;
        config.max_inspected_size = new.max_inspected_size;
        config.max_body_line = new.max_body_line;
        config.idle_timeout = new.idle_timeout;
    });
    inspection.clone_from(&replanned.inspection);
    tracing::Span::current().record("action", policy.action().name());
    info!("session follows the reloaded configuration");
}

/// Copies bytes opaquely after a passed-through STLS (`tls.action: allow`), under the
/// action's idle timeout, with TCP keepalive on both sockets (SPEC §5).
async fn tunnel(
    session: &mut Session,
    client: &mut Conn,
    server: &mut Conn,
    summary: &mut Summary,
    idle: Duration,
) -> CloseReason {
    if let Err(err) = flush_side(session, client, Side::Client).await {
        return io_reason(Side::Client, &err);
    }
    for conn in [&*client, &*server] {
        if let Some(tcp) = conn.tcp() {
            tunnel::keepalive(tcp);
        }
    }
    let mut copied = Copied::default();
    let end = tunnel::copy(client, server, idle, &mut copied).await;
    metrics::bytes(Direction::ClientToServer, copied.from_client);
    metrics::bytes(Direction::ServerToClient, copied.from_server);
    summary.bytes.from_client += copied.from_client;
    summary.bytes.from_server += copied.from_server;
    match end {
        TunnelEnd::Finished => CloseReason::Finished,
        TunnelEnd::Idle => {
            info!(
                idle_timeout_s = idle.as_secs(),
                "opaque tunnel idle; closed"
            );
            CloseReason::TimedOut(Side::Client)
        }
        TunnelEnd::Failed(err) => io_reason(Side::Client, &err),
    }
}

fn io_reason(side: Side, err: &io::Error) -> CloseReason {
    debug!(side = side_name(side), error = %err, "socket error");
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
async fn refuse_client(client: &mut Conn, text: &str) {
    if matches!(client, Conn::Upgrading) {
        // An implicit-TLS client without a finished handshake cannot read a reply.
        return;
    }
    let line = format!("-ERR {text}\r\n");
    let _ = tokio::time::timeout(FINAL_FLUSH, async {
        client.write_all(line.as_bytes()).await?;
        client.flush().await
    })
    .await;
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
/// pop3s port: TLS passes through uninspected), under the action's `idle` timeout, with TCP
/// keepalive on both sockets (SPEC §5).
///
/// Cancel safety: dropping it closes both connections.
pub async fn opaque(
    mut client: TcpStream,
    host: &str,
    port: u16,
    connect: &ConnectOptions,
    timeout: Duration,
    idle: Duration,
) {
    let mut server = match upstream::connect(host, port, connect, timeout).await {
        Ok(server) => server,
        Err(err) => {
            metrics::connection(ConnectionResult::UpstreamUnavailable);
            info!(error = %err, host, port, "upstream connect failed");
            return;
        }
    };
    metrics::connection(ConnectionResult::Accepted);
    tunnel::keepalive(&client);
    tunnel::keepalive(&server);
    let mut copied = Copied::default();
    let end = tunnel::copy(&mut client, &mut server, idle, &mut copied).await;
    metrics::bytes(Direction::ClientToServer, copied.from_client);
    metrics::bytes(Direction::ServerToClient, copied.from_server);
    let result = match end {
        TunnelEnd::Finished => "finished",
        TunnelEnd::Idle => "timed_out",
        TunnelEnd::Failed(_) => "peer_closed",
    };
    info!(
        result,
        idle_timeout_s = idle.as_secs(),
        bytes_from_client = copied.from_client,
        bytes_from_server = copied.from_server,
        "opaque session closed"
    );
}
