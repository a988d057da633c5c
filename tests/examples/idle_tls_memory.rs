//! Benchmark: popgate's resident memory per idle intercepted TLS session.
//!
//! Dovecot (process limits raised) behind popgate (inbound policy, `tls.action: inspect`,
//! implicit TLS on both legs); `tests/clients/idle_tls_sessions.py` opens N pop3s sessions
//! through popgate, logs each in and leaves them idle. popgate's VmRSS is read after a
//! warm-up session and again with the N sessions up; the difference over N is the figure
//! recorded in BENCHMARKS.md ("Idle TLS session memory").
//!
//! Run (as root, release popgate):
//!
//! ```text
//! cargo build --release -p popgate
//! POPGATE_BIN=target/release/popgate cargo run --release -p popgate-tests --example idle_tls_memory -- 1000
//! ```
//!
//! With a message number after the count (`-- 1000 2`), each session first downloads that
//! message of `tests/corpus` and then idles: what a session keeps after a download.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use popgate_tests::popgate::{RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::{ConfigDir, Corpus, Dovecot, DovecotOptions, Popgate};
use serde_json::json;

/// How long opening and logging in every session may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> Result<()> {
    let sessions: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1000);
    let retr: Option<u32> = std::env::args().nth(2).map(|n| n.parse()).transpose()?;
    let corpus = Corpus::small();
    let limit = sessions * 2 + 100;
    let dovecot = Dovecot::start(
        &corpus.messages,
        DovecotOptions {
            extra_config: format!(
                "default_process_limit = {limit}\n\
                 default_client_limit = {limit}\n\
                 default_vsz_limit = 0\n\
                 service pop3-login {{\n  service_count = 0\n  process_min_avail = 4\n  \
                 client_limit = {limit}\n}}\n\
                 protocol pop3 {{\n  mail_max_userip_connections = {limit}\n}}\n"
            ),
            ..DovecotOptions::default()
        },
    )?;
    let pki = dovecot.pki().context("no PKI")?;
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .tls_support(RELAY_POLICY, "enabled")
        .with_pki(pki)?
        .raw("pki/upstream-ca.crt", fs::read(&pki.ca_cert)?)
        .set(
            RELAY_POLICY,
            "/upstream",
            json!({
                "host": "127.0.0.1",
                "pop3": dovecot.pop3_addr().port(),
                "pop3s": dovecot.pop3s_addr().port(),
            }),
        )
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(
            STANDARD_PROFILE,
            "/trust/ca_files",
            json!(["pki/upstream-ca.crt"]),
        )
        .set("popgate.json", "/log/level", json!("info"))
        .set(
            "popgate.json",
            "/limits/max_connections_per_client",
            json!(limit),
        );
    let popgate = Popgate::start(config)?;
    let addr = popgate.pop3s_addr();
    let ca = dovecot.ca_cert();

    // Warm-up: one-time allocations (runtime threads, TLS configurations, caches).
    drop(open_idle(10, addr, ca, &dovecot, retr)?);
    let before = popgate.rss_kib()?;
    let idle = open_idle(sessions, addr, ca, &dovecot, retr)?;
    let after = popgate.rss_kib()?;
    drop(idle);
    let per_session = (after.saturating_sub(before)) as f64 / sessions as f64;
    match retr {
        Some(number) => println!("sessions:            {sessions} (each after RETR {number})"),
        None => println!("sessions:            {sessions}"),
    }
    println!("popgate RSS before:  {before} KiB");
    println!("popgate RSS after:   {after} KiB");
    println!("per idle session:    {per_session:.1} KiB");
    Ok(())
}

/// N logged-in idle sessions; they close when the guard is dropped.
struct Idle(std::process::Child);

impl Drop for Idle {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn open_idle(
    n: usize,
    addr: std::net::SocketAddr,
    ca: &Path,
    dovecot: &Dovecot,
    retr: Option<u32>,
) -> Result<Idle> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/idle_tls_sessions.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(n.to_string())
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(ca)
        .args([dovecot.user(), dovecot.password()])
        .args(retr.map(|n| n.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting idle_tls_sessions.py")?;
    let stdout = child.stdout.take().context("stdout")?;
    let guard = Idle(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(SETUP_TIMEOUT)
        .context("sessions not ready in time")?;
    if line.trim() != format!("READY {n}") {
        bail!("idle_tls_sessions.py: {line:?}");
    }
    Ok(guard)
}
