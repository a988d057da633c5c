//! Setting up the server leg of a session: the upstream connection, implicit TLS toward the
//! server, and the opportunistic fallback (SPEC §4): a failed handshake is retried once on a
//! new connection, then the session goes on in plaintext and TLS toward that server is held
//! down for `tls_failure_holddown_s`.
//!
//! The greeting is held until the server leg is settled, so the client never sees a retry.
//! A failure during the POP3 core's own STLS (before the greeting) is reported by the driver
//! (`drive.rs`) through [`Attempts::handshake_failed`]; implicit TLS failures are
//! handled here.

use std::time::Instant;

use tokio::net::TcpStream;
use tracing::{info, warn};

use super::session_end::SessionEnd;
use crate::net::conn::Conn;
use crate::net::upstream;
use crate::route::Route;
use crate::tls::legs::{TlsFailure, TlsSummary, UpstreamCert};

/// TLS facts a session gathers on the way: for the client's certificate and the summary.
#[derive(Debug, Default)]
pub struct TlsState {
    /// Versions, ciphers, the upstream certificate's judgement, SNI.
    pub summary: TlsSummary,
    /// The upstream's certificate, until the client's certificate has been chosen.
    pub upstream_cert: Option<UpstreamCert>,
}

/// Where the server leg stands across connection attempts.
#[derive(Debug)]
pub struct Attempts {
    /// Handshakes that failed so far.
    failures: u32,
    /// TLS toward the server is given up for this session (fallback or hold-down).
    plaintext: bool,
}

impl Attempts {
    /// The first attempt: plaintext right away when the server is held down.
    pub fn new(route: &Route, now: Instant) -> Attempts {
        let held = route
            .tls
            .server
            .as_ref()
            .is_some_and(|leg| leg.fallback.is_some())
            && route
                .shared
                .holddown
                .held_until(&holddown_key(route), now)
                .is_some();
        if held {
            info!(server = %route.upstream_host,
                "upstream TLS held down after earlier failures; plaintext toward the server");
        }
        Attempts {
            failures: 0,
            plaintext: held,
        }
    }

    /// Whether this attempt gives up TLS toward the server.
    pub fn plaintext(&self) -> bool {
        self.plaintext
    }

    /// A server handshake failed: whether to try again on a new connection (the route is
    /// opportunistic and the failure was the handshake itself). The second failure switches
    /// to plaintext and holds TLS down for the server.
    pub fn handshake_failed(&mut self, route: &Route, failure: &TlsFailure, now: Instant) -> bool {
        let Some(fallback) = route.tls.server.as_ref().and_then(|leg| leg.fallback) else {
            return false;
        };
        if !failure.is_handshake() || self.plaintext {
            return false;
        }
        self.failures += 1;
        if self.failures == 1 {
            info!(server = %route.upstream_host, reason = %failure,
                "upstream TLS failed; retrying on a new connection");
        } else {
            self.plaintext = true;
            route
                .shared
                .holddown
                .hold_down(&holddown_key(route), now, fallback.holddown);
            warn!(server = %route.upstream_host, reason = %failure,
                holddown_s = fallback.holddown.as_secs(),
                "upstream TLS failed twice; continuing in plaintext and holding TLS down");
        }
        true
    }
}

/// Connects to the server and, for an implicit-TLS leg, runs the handshake (and its
/// fallback). `sni` is the client's, naming a server the route knows only by address.
///
/// Cancel safety: not cancel safe (a half-done handshake leaves the leg unusable).
pub async fn connect(
    route: &Route,
    attempts: &mut Attempts,
    sni: Option<&str>,
    tls: &mut TlsState,
) -> Result<Conn, SessionEnd> {
    loop {
        let implicit = route.tls.server_is_implicit() && !attempts.plaintext();
        let port = match route.tls.server.as_ref().and_then(|leg| leg.fallback) {
            Some(fallback) if attempts.plaintext() && route.tls.server_is_implicit() => {
                fallback.plain_port
            }
            _ => route.upstream_port,
        };
        let tcp = connect_tcp(route, port)
            .await
            .map_err(SessionEnd::Upstream)?;
        let mut server = Conn::Plain(tcp);
        if !implicit {
            return Ok(server);
        }
        match route
            .tls
            .upgrade_server(&mut server, sni, route.handshake_timeout, &mut tls.summary)
            .await
        {
            Ok(cert) => {
                tls.upstream_cert = Some(cert);
                return Ok(server);
            }
            Err(failure) => {
                if !attempts.handshake_failed(route, &failure, Instant::now()) {
                    return Err(SessionEnd::Tls(failure));
                }
                tls.forget_server();
            }
        }
    }
}

impl TlsState {
    /// The server leg is being set up again: what an earlier attempt learnt no longer holds.
    pub fn forget_server(&mut self) {
        self.upstream_cert = None;
        self.summary.server = Default::default();
        self.summary.server_certificate = Default::default();
        self.summary.server_subject = None;
    }
}

async fn connect_tcp(route: &Route, port: u16) -> std::io::Result<TcpStream> {
    let result = upstream::connect(
        &route.upstream_host,
        port,
        &route.connect,
        route.handshake_timeout,
    )
    .await;
    if let Err(err) = &result {
        info!(error = %err, host = %route.upstream_host, port, "upstream connect failed");
    }
    result
}

/// Hold-downs are per server (host and the port the route connects to).
fn holddown_key(route: &Route) -> String {
    format!("{}:{}", route.upstream_host, route.upstream_port)
}
