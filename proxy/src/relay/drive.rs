//! Driving one session's POP3 core over its two legs: run the pump, and do what it stops
//! for (a TLS upgrade, a tunnel, a reload, the steps of a downloaded message) until the
//! session ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info};

use super::message_job::{Finish, MessageJob};
use super::pump::{flush_side, Interrupt, Pump};
use super::server_leg::Attempts;
use super::session_end::SessionEnd;
use super::session_task::{refuse_client, Summary};
use super::tunnel::{self, Copied, TunnelEnd};
use crate::config::inspection_plan::InspectionPlan;
use crate::config::prepared::Prepared;
use crate::metrics::{self, Direction};
use crate::net::conn::Conn;
use crate::pop3::{CloseReason, Session, Side};
use crate::registry::SessionState;
use crate::route::{self, Plan, Route};
use crate::tls::legs::TlsFailure;

/// How a run of the core ended short of the session's end.
pub struct RetryServer;

/// One session's legs and state, for the length of a drive.
pub struct Driver<'a> {
    /// The POP3 core.
    pub session: &'a mut Session,
    /// The client leg.
    pub client: &'a mut Conn,
    /// The server leg.
    pub server: &'a mut Conn,
    /// The connection's route.
    pub route: &'a Route,
    /// The summary line's figures.
    pub summary: &'a mut Summary,
    /// Where the server leg's TLS stands.
    pub attempts: &'a mut Attempts,
}

impl Driver<'_> {
    /// Runs the session to its end, or until the server leg must be set up again (the
    /// opportunistic retry before the greeting).
    ///
    /// Cancel safety: not cancel safe.
    pub async fn drive(mut self) -> Result<SessionEnd, RetryServer> {
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut job: Option<MessageJob> = None;
        let mut inspection = self.route.inspection.clone();
        let mut live = self.route.live.clone();
        let entry = crate::registry::current();
        // One waiter for the whole session, not one per run of the pump (a run ends at
        // every message's start and end).
        let killed = killed(entry.as_deref());
        tokio::pin!(killed);
        let mut kill_answered = false;
        publish_tls(self.summary, self.session);
        loop {
            let mut pump = Pump {
                session: &mut *self.session,
                client: &mut *self.client,
                server: &mut *self.server,
                timer: timer.as_mut(),
                bytes: &mut self.summary.bytes,
                job: job.as_mut(),
                reload: live.as_ref(),
            };
            let interrupt = tokio::select! {
                interrupt = pump.run() => interrupt,
                () = &mut killed, if !kill_answered => {
                    // The core answers the client and closes; the next run drains that.
                    kill_answered = true;
                    self.session.end_by_administrator();
                    continue;
                }
            };
            match interrupt {
                Interrupt::Ended(end) => return Ok(end),
                Interrupt::StartTls(side) => {
                    if let Err(end) = Box::pin(self.start_tls(side)).await {
                        return self.tls_failed(end).await;
                    }
                    publish_tls(self.summary, self.session);
                }
                Interrupt::Tunnel => {
                    crate::registry::with_current(|e| e.set_state(SessionState::Tunnel));
                    return Ok(Box::pin(self.tunnel()).await);
                }
                Interrupt::Reconfigure => {
                    if let Some(live) = &mut live {
                        follow_reload(self.route, self.session, &mut inspection, live);
                    }
                }
                Interrupt::MessageStart { number, top_lines } => {
                    let user = self.session.stats().user.as_deref().unwrap_or("");
                    let (plan, shared) = (inspection.clone(), self.route.shared.clone());
                    job = Some(MessageJob::start(plan, shared, user, number, top_lines));
                }
                Interrupt::Spill => {
                    if let Some(job) = job.as_mut() {
                        job.spill(self.session).await;
                    }
                }
                Interrupt::RefetchRefused => {
                    if let Some(refused) = job.take() {
                        let verdict = refused.refetch_refused(self.session);
                        self.count_verdict(verdict);
                    }
                }
                Interrupt::Oversize => match job.as_mut() {
                    Some(job) => Box::pin(job.oversize(self.session)).await,
                    None => self.session.oversize_discard(Instant::now()),
                },
                Interrupt::MessageEnd => {
                    if let Some(ended) = job.take() {
                        crate::registry::with_current(|e| e.set_state(SessionState::Inspecting));
                        match ended.finish(self.session).await {
                            Finish::Delivered(verdict) => self.count_verdict(verdict),
                            Finish::Refetching(again) => job = Some(*again),
                        }
                    }
                }
            }
        }
    }

    /// A message's verdict, for the registry and the session summary.
    fn count_verdict(&mut self, verdict: &'static str) {
        crate::registry::with_current(|e| {
            e.add_verdict(verdict);
            e.set_state(SessionState::Transaction);
        });
        *self.summary.verdicts.0.entry(verdict).or_default() += 1;
    }

    /// Flushes what the core has for `side`, then runs its TLS handshake.
    ///
    /// Cancel safety: not cancel safe.
    async fn start_tls(&mut self, side: Side) -> Result<(), SessionEnd> {
        if self.session.is_finished() {
            // The core closed right behind its STLS (bytes injected after the server's
            // +OK): no handshake; the next run drains the close.
            return Ok(());
        }
        let conn = match side {
            Side::Client => &mut *self.client,
            Side::Server => &mut *self.server,
        };
        flush_side(self.session, conn, side)
            .await
            .map_err(|err| SessionEnd::io(side, err))?;
        let timeout = self.route.handshake_timeout;
        let tls = &mut self.summary.tls;
        match side {
            Side::Client => {
                let upstream = tls.upstream_cert.take();
                let host = &self.route.upstream_host;
                self.route
                    .tls
                    .upgrade_client(
                        self.client,
                        upstream.as_ref(),
                        host,
                        timeout,
                        &mut tls.summary,
                    )
                    .await?;
            }
            Side::Server => {
                let sni = tls.summary.client_sni.clone();
                let cert = self
                    .route
                    .tls
                    .upgrade_server(self.server, sni.as_deref(), timeout, &mut tls.summary)
                    .await?;
                tls.upstream_cert = Some(cert);
            }
        }
        self.session.tls_established(side, Instant::now());
        Ok(())
    }

    /// A TLS upgrade failed. Toward the server before the greeting on an opportunistic
    /// route: set the server leg up again. Otherwise the client, waiting for its greeting
    /// or for the answer to its STLS, gets an `-ERR` line when the server leg failed.
    async fn tls_failed(&mut self, end: SessionEnd) -> Result<SessionEnd, RetryServer> {
        let SessionEnd::Tls(failure) = end else {
            return Ok(end);
        };
        info!(result = failure.kind(), reason = %failure, "TLS failed");
        if failure.side == Side::Client {
            return Ok(SessionEnd::Tls(failure));
        }
        let now = Instant::now();
        if !self.session.greeted() && self.attempts.handshake_failed(self.route, &failure, now) {
            return Err(RetryServer);
        }
        refuse_client(self.client, server_refusal_text(self.route, &failure)).await;
        Ok(SessionEnd::Tls(failure))
    }

    /// Copies bytes opaquely after a passed-through STLS (`tls.action: allow`), under the
    /// action's idle timeout, with TCP keepalive on both sockets (SPEC §5).
    async fn tunnel(&mut self) -> SessionEnd {
        if let Err(err) = flush_side(self.session, self.client, Side::Client).await {
            return SessionEnd::io(Side::Client, err);
        }
        for conn in [&*self.client, &*self.server] {
            if let Some(tcp) = conn.tcp() {
                tunnel::keepalive(tcp);
            }
        }
        let idle = self.route.session.rules.idle_timeout;
        let mut copied = Copied::default();
        let end = tunnel::copy(self.client, self.server, idle, &mut copied).await;
        metrics::bytes(Direction::ClientToServer, copied.from_client);
        metrics::bytes(Direction::ServerToClient, copied.from_server);
        self.summary.bytes.from_client += copied.from_client;
        self.summary.bytes.from_server += copied.from_server;
        match end {
            TunnelEnd::Finished => SessionEnd::Core(CloseReason::Finished),
            TunnelEnd::Idle => {
                info!(
                    idle_timeout_s = idle.as_secs(),
                    "opaque tunnel idle; closed"
                );
                SessionEnd::Core(CloseReason::TimedOut(Side::Client))
            }
            TunnelEnd::Failed(err) => SessionEnd::io(Side::Client, err),
        }
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

/// The client's `-ERR` text for a server leg that failed with `failure`.
pub fn server_refusal_text(route: &Route, failure: &TlsFailure) -> &'static str {
    match &route.tls.server {
        Some(leg) => leg.refusal_text(failure),
        None => "[SYS/TEMP] TLS to the mail server failed",
    }
}

/// Applies a reloaded configuration to an open session, for its next command (SPEC §4):
/// its policy's login rules, limits and inspection, replaced whole. The legs (upstream,
/// TLS) stay as they were set up; a message being downloaded keeps the plan it started
/// under. A session whose policy was disabled or removed keeps its settings and finishes
/// normally.
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
    // Replaced whole: a rule added to `SessionRules` follows reloads without a line here.
    session.follow(replanned.session.rules.clone());
    inspection.clone_from(&replanned.inspection);
    tracing::Span::current().record("action", policy.action().name());
    info!("session follows the reloaded configuration");
}
