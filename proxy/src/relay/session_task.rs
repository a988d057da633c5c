//! One task per client connection: read an implicit-TLS client's ClientHello, set up the
//! server leg (and the client's TLS once the upstream certificate is known), drive the
//! session (`drive.rs`), and log one summary line at the end.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info};

use super::drive::{server_refusal_text, Driver, RetryServer};
use super::pump::{flush_side, ByteCounts};
use super::server_leg::{self, Attempts, TlsState};
use super::session_end::SessionEnd;
use crate::metrics::{self, ConnectionResult};
use crate::net::conn::Conn;
use crate::pop3::{Session, Side, UpstreamStls};
use crate::route::Route;
use crate::tls::legs::{ClientHello, Purpose};

pub use super::opaque::{opaque, refuse};

/// How long the last bytes to the client may take once the session is over.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Serves one client connection to its end.
///
/// Cancel safety: dropping the future closes both connections; nothing else is left.
pub async fn serve(client: TcpStream, route: Route) {
    let started = Instant::now();
    let mut summary = Summary::default();
    let end = run(client, &route, &mut summary).await;
    metrics::policy_session(&route.policy, end.result());
    let duration_ms = started.elapsed().as_millis() as u64;
    info!(
        result = end.result(),
        reason_kind = end.kind(),
        reason = %end,
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
pub struct Summary {
    /// Bytes read from each peer.
    pub bytes: ByteCounts,
    /// Commands seen.
    pub commands: u64,
    /// Messages retrieved.
    pub messages: u64,
    /// Inspection verdicts.
    pub verdicts: VerdictTally,
    /// TLS facts of both legs.
    pub tls: TlsState,
}

/// Inspection verdicts of a session, shown as `allow=2,strip=1` (or `none`).
#[derive(Debug, Default)]
pub struct VerdictTally(pub std::collections::BTreeMap<&'static str, u32>);

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

/// Sets the legs up and drives the session; retries the server leg when the driver asks.
async fn run(client: TcpStream, route: &Route, summary: &mut Summary) -> SessionEnd {
    let mut client = Conn::Plain(client);
    // An implicit-TLS client's ClientHello first: its SNI may name the server.
    let mut hello = match Box::pin(read_hello(&mut client, route)).await {
        Ok(hello) => hello,
        Err(end) => return end,
    };
    let sni = hello.as_ref().and_then(|h| h.sni.clone());
    let mut attempts = Attempts::new(route, Instant::now());
    let mut early_client_input = Vec::new();
    let mut counted = false;
    loop {
        let connect = server_leg::connect(route, &mut attempts, sni.as_deref(), &mut summary.tls);
        let mut server = match Box::pin(connect).await {
            Ok(server) => server,
            Err(end) => {
                return Box::pin(setup_failed(&mut client, hello, route, summary, end)).await
            }
        };
        if let Some(hello) = hello.take() {
            client = match Box::pin(finish_client(hello, route, summary, Purpose::Session)).await {
                Ok(client) => client,
                Err(end) => {
                    metrics::connection(ConnectionResult::TlsRefused);
                    return end;
                }
            };
        }
        if !counted {
            // Once per connection, even when the server leg is set up again (retry).
            metrics::connection(ConnectionResult::Accepted);
            counted = true;
        }
        let mut session = new_session(route, &client, &server, &attempts);
        session.handle_bytes(
            Side::Client,
            &std::mem::take(&mut early_client_input),
            Instant::now(),
        );
        let driver = Driver {
            session: &mut session,
            client: &mut client,
            server: &mut server,
            route,
            summary,
            attempts: &mut attempts,
        };
        let end = match driver.drive().await {
            Ok(end) => end,
            Err(RetryServer) => {
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
        return end;
    }
}

/// The POP3 core for one server connection, with the legs as they were set up.
fn new_session(route: &Route, client: &Conn, server: &Conn, attempts: &Attempts) -> Session {
    let mut config = route.session.clone();
    config.client_tls = client.is_tls();
    if attempts.plaintext() {
        config.upstream_stls = UpstreamStls::Never;
    }
    let mut session = Session::new(config, Instant::now());
    if server.is_tls() {
        session.set_server_tls();
    }
    session
}

/// An implicit-TLS client's ClientHello, read before the server leg exists.
async fn read_hello(client: &mut Conn, route: &Route) -> Result<Option<ClientHello>, SessionEnd> {
    if !route.tls.client_is_implicit() {
        return Ok(None);
    }
    let tcp = client
        .take_plain()
        .map_err(|err| SessionEnd::io(Side::Client, err))?;
    match route
        .tls
        .read_client_hello(tcp, route.handshake_timeout)
        .await
    {
        Ok(read) => Ok(Some(read)),
        Err(failure) => {
            metrics::connection(ConnectionResult::TlsRefused);
            info!(result = failure.kind(), reason = %failure, "TLS failed");
            Err(failure.into())
        }
    }
}

/// Completes an implicit-TLS client's handshake once the server leg is set up.
async fn finish_client(
    hello: ClientHello,
    route: &Route,
    summary: &mut Summary,
    purpose: Purpose,
) -> Result<Conn, SessionEnd> {
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
        .map_err(|failure| {
            info!(result = failure.kind(), reason = %failure, "TLS failed");
            failure.into()
        })
}

/// The server leg could not be set up: tell the client where a reply is possible. An
/// implicit-TLS client whose ClientHello is waiting gets its handshake finished first, so it
/// can read the `-ERR` ([`Purpose::RefusalOnly`]: nothing else crosses that connection).
async fn setup_failed(
    client: &mut Conn,
    hello: Option<ClientHello>,
    route: &Route,
    summary: &mut Summary,
    end: SessionEnd,
) -> SessionEnd {
    let text = match &end {
        SessionEnd::Tls(failure) => {
            metrics::connection(ConnectionResult::TlsRefused);
            info!(result = failure.kind(), reason = %failure, "server TLS failed");
            server_refusal_text(route, failure)
        }
        _ => {
            metrics::connection(ConnectionResult::UpstreamUnavailable);
            "[SYS/TEMP] mail server unavailable"
        }
    };
    if let Some(hello) = hello {
        summary.tls.upstream_cert = None;
        match finish_client(hello, route, summary, Purpose::RefusalOnly).await {
            Ok(conn) => *client = conn,
            Err(_) => return end,
        }
    }
    refuse_client(client, text).await;
    end
}

async fn flush_with_deadline(session: &mut Session, client: &mut Conn) -> io::Result<()> {
    tokio::time::timeout(FINAL_FLUSH, flush_side(session, client, Side::Client))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Answers a client the session could not be set up for, where a reply is possible.
pub(super) async fn refuse_client(client: &mut Conn, text: &str) {
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
