//! Side-by-side throughput and latency benchmarks (DEVELOPERS targets), in one run, reported
//! as ratios because the machine is shared and noisy.
//!
//! Targets measured, each over TLS from a blocking rustls client in this process (parts 2e
//! and 2f: from Python's poplib, a real mail client, `proxy/real_clients.rs`):
//! * `direct`   — Dovecot's pop3s listener (TLS 1.3);
//! * `popgate`  — popgate in front of Dovecot's pop3s: outbound policy (minted certificates),
//!   TLS on both legs, `tls.action: inspect` with SPEC §4's example strip rules, upstream
//!   trust through `trust.ca_files` = Dovecot's test CA;
//! * `popgate-norules` — the same without content rules and with `unparseable: allow` (bodies
//!   stream uninspected): the relay's own cost;
//! * `sslsplit` — `sslsplit ssl` in front of the same pop3s listener (TLS terminated both
//!   ways, forged certificates from the same CA as popgate's Proxy Authority, no logs);
//! * `minimal-relay` — tokio-rustls both ways and `copy_bidirectional`, in this process
//!   (`proxy/minimal_relay.rs`): the floor of any TLS-terminating relay here;
//! * `popgate-before` (only with `BENCH_POPGATE_BEFORE=/path/to/popgate`) — another popgate
//!   binary with popgate's configuration, to compare builds in one run; several, oldest
//!   first, as `BENCH_POPGATE_BEFORE=label=/path,label=/path` (targets `popgate-<label>`).
//!
//! Rounds are interleaved (direct, popgate, popgate-norules, sslsplit, minimal-relay,
//! direct, ...) so that load from
//! other users of the machine spreads over every target; each figure is the median of its
//! rounds. Run:
//!
//! ```text
//! cargo build --release -p popgate
//! POPGATE_BIN=$PWD/target/release/popgate cargo bench -p popgate-tests --bench proxy
//! ```
//!
//! `BENCH_ONLY=bulk,small,medium,clients,rate,cold,held` picks parts;
//! `BENCH_TARGETS=direct,popgate` limits parts 1–3 to those targets (`direct` is always kept:
//! ratios need it), for profiling; `BENCH_SMALL_ROUNDS` sets the rounds of parts 2 (default
//! 9); `BENCH_HELD=N` sets the number of held sessions per target (default 5000) and
//! `BENCH_HELD_ROUNDS` their rounds (default 1); `BENCH_RATE_CLIENTS` the concurrent clients
//! of the session-rate part (default 2); `BENCH_LOG_LEVEL` popgate's log level (default
//! `info`, to measure logging's cost); `BENCH_GATEWAY_CPU=1` runs the proxies on a CPU of
//! their own, as on a gateway (`proxy/placement.rs`); `BENCH_CLIENT_RESUMPTION=1` lets the
//! client resume TLS sessions (every target alike; by default it never does). Needs root
//! (Dovecot's maildir), dovecot, openssl and sslsplit.
//!
//! The held-sessions part (5) opens the sessions against direct Dovecot, a fresh popgate and
//! sslsplit in turn, each from the same client threads, then sends `RETR 1` on all of a
//! target's sessions at once and reports the set-up rate and the p50/p99/max latency of the
//! answers, each as a ratio to direct.

use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use popgate_tests::corpus::Message;
use popgate_tests::popgate::{standard_tls_profile, RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::process::ChildGuard;
use popgate_tests::{
    free_port, wait_for_accept, ConfigDir, Corpus, Dovecot, DovecotOptions, Popgate,
};
#[path = "proxy/builds.rs"]
mod builds;
#[path = "proxy/cpu_use.rs"]
mod cpu_use;
#[path = "proxy/held.rs"]
mod held;
#[path = "proxy/minimal_relay.rs"]
mod minimal_relay;
#[path = "proxy/placement.rs"]
mod placement;
#[path = "proxy/real_clients.rs"]
mod real_clients;

use builds::{is_other_build, other_builds};
use cpu_use::CpuUse;
use held::{bench_held, HeldTarget};
use minimal_relay::MinimalRelay;
use placement::CpuSource;
use real_clients::bench_poplib;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::json;

/// Rounds of the 20 MiB RETR per target.
const BULK_ROUNDS: usize = 9;
/// Rounds of the many-small-RETRs session per target.
const SMALL_ROUNDS: usize = 9;
/// Small messages in the mailbox (numbers 1..=SMALL_COUNT; the attachment messages and the
/// big one follow).
const SMALL_COUNT: usize = 200;
/// Messages with a ~100 KiB attachment (numbers SMALL_COUNT+1..=SMALL_COUNT+MEDIUM_COUNT):
/// issue 16's "200 × 100 KiB RETR in one session".
const MEDIUM_COUNT: usize = 200;
/// Size each attachment message reaches at least.
const MEDIUM_SIZE: usize = 100 * 1024;
/// Size each small message reaches at least.
const SMALL_SIZE: usize = 4 * 1024;
/// Sessions per round of the session-rate test, and concurrent clients.
const RATE_SESSIONS: usize = 300;
/// Default concurrent clients of the session-rate test (`BENCH_RATE_CLIENTS`).
const RATE_CLIENTS: usize = 2;
const RATE_ROUNDS: usize = 5;
/// Fresh popgate starts for the cold first-session latency.
const COLD_STARTS: usize = 7;
/// Threads opening the held sessions.
const HELD_OPENERS: usize = 4;
/// Socket read/write timeout of every client.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    if let Err(e) = run() {
        eprintln!("benchmark failed: {e:#}");
        std::process::exit(1);
    }
}

fn target_wanted(name: &str) -> bool {
    std::env::var("BENCH_TARGETS").map_or(true, |v| v.split(',').any(|t| t.trim() == name))
}

fn only(part: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |v| v.split(',').any(|p| p.trim() == part))
}

fn run() -> Result<()> {
    let nofile = raise_nofile()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut report = String::new();
    let _ = writeln!(report, "machine: {}", machine());
    let _ = writeln!(
        report,
        "RLIMIT_NOFILE (inherited by popgate and Dovecot): {nofile}"
    );
    let popgate_bin = popgate_tests::popgate::popgate_bin()?;
    let _ = writeln!(report, "popgate binary: {}", popgate_bin.display());
    println!("{report}");

    let corpus = bench_corpus();
    let big_no = corpus.len();
    if placement::gateway_cpu() {
        placement::pin_to_endpoint_cpus();
        println!("proxies on the last CPU, the client and Dovecot on the others");
    }
    let dovecot = Dovecot::start(
        &corpus.messages,
        DovecotOptions {
            extra_config: DOVECOT_LIMITS.into(),
            ..DovecotOptions::default()
        },
    )?;
    let config = popgate_config(&dovecot)?;
    let popgate = Popgate::start(config.clone())?;
    let proxy_ca = config
        .raw_file("pki/ca.crt")
        .context("no pki/ca.crt")?
        .to_vec();
    // The same popgate configuration without content rules: TLS both legs, certificates
    // minted, bodies streamed uninspected (the relay's own cost). `unparseable` must be
    // `allow` too: its default (quarantine) is a verdict that inspects every message.
    let relay = Popgate::start(
        fresh_port(&config)
            .remove(RELAY_ACTION, "/content_types")
            .remove(RELAY_ACTION, "/file_names")
            .remove(RELAY_ACTION, "/headers")
            .set(RELAY_ACTION, "/unparseable", json!("allow")),
    )?;
    let sslsplit = Sslsplit::start(&config, dovecot.pop3s_addr())?;
    // Earlier popgate builds with the same configuration, for "no figure worse than
    // before" in one run.
    let builds = other_builds();
    let before = builds
        .iter()
        .map(|(name, binary)| Ok((*name, Popgate::start_binary(fresh_port(&config), binary)?)))
        .collect::<Result<Vec<_>>>()?;
    println!("popgate pid {} (for perf record -p)", popgate.pid());
    println!("popgate-norules pid {}", relay.pid());

    let dovecot_ca = fs::read(dovecot.ca_cert())?;
    let pki = dovecot.pki().context("Dovecot runs without SSL")?;
    let minimal = MinimalRelay::start(
        dovecot.pop3s_addr(),
        &dovecot_ca,
        &fs::read(&pki.server_cert)?,
        &fs::read(&pki.server_key)?,
    )?;
    let targets = [
        Target::new("direct", dovecot.pop3s_addr(), &dovecot_ca)?,
        Target::new("popgate", popgate.pop3s_addr(), &proxy_ca)?.with_pid(popgate.pid()),
        Target::new("popgate-norules", relay.pop3s_addr(), &proxy_ca)?.with_pid(relay.pid()),
        Target::new("sslsplit", sslsplit.addr, &proxy_ca)?.with_pid(sslsplit.child.pid()),
        Target::new("minimal-relay", minimal.addr, &dovecot_ca)?
            .with_proxy(CpuSource::Threads(minimal.threads.clone())),
    ];
    let before_targets = before
        .iter()
        .map(|(name, b)| Ok(Target::new(name, b.pop3s_addr(), &proxy_ca)?.with_pid(b.pid())))
        .collect::<Result<Vec<_>>>()?;
    let account = (dovecot.user().to_owned(), dovecot.password().to_owned());
    // Parts 1–3 run on these; the held part picks its own below.
    let picked: Vec<Target> = targets
        .iter()
        .chain(&before_targets)
        .filter(|t| t.name == "direct" || target_wanted(t.name))
        .cloned()
        .collect();

    // Warm-up: one session per target (mints popgate's and sslsplit's leaves, warms Dovecot's
    // index), and the negotiated TLS parameters for the report.
    for t in &picked {
        let (mut s, _) = Session::open(t)?;
        s.login(&account)?;
        let got = s.retr(1)?;
        ensure!(
            got.body == corpus.messages[0].bytes,
            "{}: message 1 differs",
            t.name
        );
        println!("{:15} TLS {}", t.name, s.tls_params());
        s.quit();
    }

    let mut results = Results::default();
    if only("bulk") {
        bench_bulk(
            &picked,
            &account,
            &corpus.messages[big_no - 1],
            big_no,
            dovecot.pid(),
            &mut results,
        )?;
    }
    let small = Batch {
        label: ("2", "2b"),
        first: 1,
        messages: &corpus.messages[..SMALL_COUNT],
        what: format!("~{} KiB text", SMALL_SIZE / 1024),
    };
    let medium = Batch {
        label: ("2c", "2d"),
        first: SMALL_COUNT + 1,
        messages: &corpus.messages[SMALL_COUNT..SMALL_COUNT + MEDIUM_COUNT],
        what: format!("~{} KiB with a base64 attachment", MEDIUM_SIZE / 1024),
    };
    if only("small") {
        bench_small(&picked, &account, &small, dovecot.pid(), &mut results)?;
    }
    if only("medium") {
        bench_small(&picked, &account, &medium, dovecot.pid(), &mut results)?;
    }
    if only("clients") {
        bench_poplib(&picked, &account, &small, "2e", &mut results)?;
        bench_poplib(&picked, &account, &medium, "2f", &mut results)?;
    }
    if only("rate") {
        bench_rate(&picked, &account, &mut results)?;
    }
    drop(relay);
    if only("cold") {
        bench_cold(&config, &targets[0], &proxy_ca, &account, &mut results)?;
    }
    if only("held") {
        let n = env_or("BENCH_HELD", 5000);
        // A fresh popgate, so that its RSS growth is the held sessions' alone.
        let held_popgate = Popgate::start(fresh_port(&config))?;
        println!(
            "held popgate pid {} (for perf record -p)",
            held_popgate.pid()
        );
        let held_target = Target::new("popgate", held_popgate.pop3s_addr(), &proxy_ca)?
            .with_pid(held_popgate.pid());
        // One session first: the minted leaf and lazily built state are not per-session costs.
        let (s, _) = Session::open(&held_target)?;
        s.quit();
        // The earlier builds too, when given: fresh ones, as above.
        let held_before = builds
            .iter()
            .map(|(name, binary)| {
                let p = Popgate::start_binary(fresh_port(&config), binary)?;
                let t = Target::new(name, p.pop3s_addr(), &proxy_ca)?.with_pid(p.pid());
                Session::open(&t)?.0.quit();
                Ok((p, t))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut held = vec![
            HeldTarget {
                target: &targets[0],
                popgate: None,
            },
            HeldTarget {
                target: &held_target,
                popgate: Some(&held_popgate),
            },
            HeldTarget {
                target: &targets[3],
                popgate: None,
            },
            // The floor of any TLS-terminating relay under the same burst.
            HeldTarget {
                target: &targets[4],
                popgate: None,
            },
        ];
        for (p, t) in &held_before {
            held.push(HeldTarget {
                target: t,
                popgate: Some(p),
            });
        }
        bench_held(
            &held,
            &account,
            &corpus.messages[0].bytes,
            n,
            &mut results,
            &|| dovecot.log_text(),
        )?;
    }
    drop(sslsplit);
    println!("\n==== summary ====\n{}", results.text);
    let rss = popgate.peak_rss_kib().unwrap_or(0);
    println!("popgate peak RSS over the whole run: {rss} KiB");
    Ok(())
}

/// Dovecot limits high enough for thousands of sessions from one user and one address.
/// Logins are served by a few long-lived pop3-login processes (`service_count = 0`); every
/// logged-in session still has its own pop3 process. A login process also carries the TLS of
/// every session it accepted, so its default 256 MB `vsz_limit` ran out (OpenSSL `malloc()`
/// failed, `Out of memory`) about halfway through 5,000 sessions and reset the rest.
const DOVECOT_LIMITS: &str = "\
default_process_limit = 6000
default_client_limit = 20000
mail_max_userip_connections = 10000
service pop3-login {
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = 10000
  vsz_limit = 2G
}
service pop3 {
  process_limit = 6000
}
";

/// 200 messages of about 4 KiB (no line starts with a dot, so RETR bytes equal the
/// message) followed by the 20 MiB message.
fn bench_corpus() -> Corpus {
    let mut messages = Vec::new();
    for i in 1..=SMALL_COUNT {
        let mut bytes = format!(
            "Message-ID: <bench-{i}@popgate.test>\r\n\
             Date: Mon, 6 Jan 2025 11:00:00 +0000\r\n\
             From: Sender <sender@example.org>\r\n\
             To: Alice <alice@example.net>\r\n\
             Subject: Small message {i}\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        )
        .into_bytes();
        let mut line = 0;
        while bytes.len() < SMALL_SIZE {
            line += 1;
            let _ = write!(
                VecWriter(&mut bytes),
                "Line {line:03} of message {i:03}: the quick brown fox jumps over the lazy dog.\r\n"
            );
        }
        messages.push(Message {
            name: format!("bench-{i:03}.eml"),
            bytes,
        });
    }
    for i in 1..=MEDIUM_COUNT {
        messages.push(medium_message(i));
    }
    messages.push(Corpus::big_message());
    Corpus::of(messages)
}

/// A short text part and a base64 attachment, about [`MEDIUM_SIZE`] in all: what most mail
/// with an attachment looks like.
fn medium_message(i: usize) -> Message {
    let mut bytes = format!(
        "Message-ID: <bench-att-{i}@popgate.test>\r\n\
         Date: Mon, 6 Jan 2025 11:00:00 +0000\r\n\
         From: Sender <sender@example.org>\r\n\
         To: Alice <alice@example.net>\r\n\
         Subject: Report {i}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"att{i}\"\r\n\r\n\
         --att{i}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         The report is attached.\r\n\r\n\
         --att{i}\r\nContent-Type: application/pdf; name=\"report-{i}.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"report-{i}.pdf\"\r\n\r\n"
    )
    .into_bytes();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
    while bytes.len() < MEDIUM_SIZE {
        let chunk: Vec<u8> = (0..57)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        popgate_tests::corpus::base64_encode_into(&chunk, &mut bytes);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("--att{i}--\r\n").as_bytes());
    Message {
        name: format!("bench-att-{i:03}.eml"),
        bytes,
    }
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The outbound inspecting configuration: implicit TLS only, upstream Dovecot's pop3s,
/// certificates minted by a Proxy Authority from `popgate ca init`, SPEC's example rules.
fn popgate_config(dovecot: &Dovecot) -> Result<ConfigDir> {
    let pki = dovecot.pki().context("dovecot without TLS")?;
    let mut profile = standard_tls_profile();
    profile["trust"]["ca_files"] = json!(["pki/upstream-ca.crt"]);
    ConfigDir::relay(dovecot.pop3_addr())
        .set(
            "popgate.json",
            "/log",
            json!({ "format": "json", "level": env_or("BENCH_LOG_LEVEL", "info".to_owned()) }),
        )
        .set(
            "popgate.json",
            "/limits",
            json!({ "max_connections": 20000, "max_connections_per_client": 20000,
                    "handshake_timeout_s": 60 }),
        )
        .json(
            RELAY_POLICY,
            json!({
                "name": "bench-out",
                "enabled": true,
                "order": 10,
                "direction": "outbound",
                "from": ["any"],
                "to": ["any"],
                "tls_support": "required",
                "ports": { "pop3s": free_port() },
                "upstream": { "host": "127.0.0.1", "pop3": dovecot.pop3_addr().port(),
                              "pop3s": dovecot.pop3s_addr().port() },
                "proxy_action": "POP3-Client.Standard"
            }),
        )
        .json(
            RELAY_ACTION,
            json!({
                "name": "POP3-Client.Standard",
                "content_types": { "default": "allow",
                    "rules": [ { "match": "application/x-msdownload", "action": "strip" } ] },
                "file_names": { "default": "allow",
                    "rules": [ { "match": "*.exe", "action": "strip" },
                               { "match": "*.scr", "action": "strip" } ] },
                "headers": { "rules": [ { "match": "X-Spam-Flag: YES", "action": "tag" } ] },
                "tls": { "action": "inspect", "profile": "TLS-Client.Standard" }
            }),
        )
        .json(STANDARD_PROFILE, profile)
        .raw("pki/upstream-ca.crt", fs::read(&pki.ca_cert)?)
        .with_proxy_authority()
}

// ---------------------------------------------------------------------------------------
// sslsplit

struct Sslsplit {
    child: ChildGuard,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Sslsplit {
    fn start(config: &ConfigDir, upstream: SocketAddr) -> Result<Sslsplit> {
        let dir = tempfile::tempdir()?;
        let cert = dir.path().join("ca.crt");
        let key = dir.path().join("ca.key");
        fs::write(&cert, config.raw_file("pki/ca.crt").context("ca.crt")?)?;
        fs::write(&key, config.raw_file("pki/ca.key").context("ca.key")?)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = fs::File::create(dir.path().join("sslsplit.log"))?;
        let child = ChildGuard::spawn(
            std::process::Command::new("sslsplit")
                .args(["-u", "root", "-k"])
                .arg(&key)
                .arg("-c")
                .arg(&cert)
                .args(["ssl", "127.0.0.1", &addr.port().to_string()])
                .args(["127.0.0.1", &upstream.port().to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
            "sslsplit",
        )?;
        wait_for_accept(addr, Duration::from_secs(10)).with_context(|| {
            fs::read_to_string(dir.path().join("sslsplit.log")).unwrap_or_default()
        })?;
        Ok(Sslsplit {
            child,
            _dir: dir,
            addr,
        })
    }
}

// ---------------------------------------------------------------------------------------
// client

#[derive(Clone)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    /// The CA the target's certificate chains to, for clients run as subprocesses.
    ca_pem: Arc<[u8]>,
    /// The proxy serving this target, when there is one: its CPU time is reported per
    /// message, a figure the machine's other load barely moves.
    proxy: Option<CpuSource>,
}

impl Target {
    fn new(name: &'static str, addr: SocketAddr, ca_pem: &[u8]) -> Result<Target> {
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
            roots.add(cert?)?;
        }
        let mut tls = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // By default every session is a full handshake: no resumption on any target (the
        // client of a crowd of distinct users). `BENCH_CLIENT_RESUMPTION=1`: rustls's default
        // in-memory resumption, again for every target alike.
        if std::env::var("BENCH_CLIENT_RESUMPTION").map_or(true, |v| v != "1") {
            tls.resumption = rustls::client::Resumption::disabled();
        }
        Ok(Target {
            name,
            addr,
            tls: Arc::new(tls),
            ca_pem: ca_pem.into(),
            proxy: None,
        })
    }

    fn with_pid(self, pid: u32) -> Target {
        self.with_proxy(CpuSource::Process(pid))
    }

    fn with_proxy(mut self, proxy: CpuSource) -> Target {
        if placement::gateway_cpu() {
            proxy.pin_to_gateway_cpu();
        }
        self.proxy = Some(proxy);
        self
    }

    /// CPU time the target's proxy has used so far (every thread's, from schedstat).
    fn cpu(&self) -> Option<Duration> {
        self.proxy.as_ref()?.cpu()
    }
}

struct Retr {
    body: Vec<u8>,
    ttfb: Duration,
    total: Duration,
}

struct Session {
    tls: StreamOwned<ClientConnection, TcpStream>,
    pending: Vec<u8>,
    chunk: Box<[u8]>,
}

impl Session {
    /// Connects, handshakes and reads the greeting; returns the session and the time from
    /// the start of the TCP connect to the complete greeting line.
    fn open(target: &Target) -> Result<(Session, Duration)> {
        let t0 = Instant::now();
        let tcp = TcpStream::connect_timeout(&target.addr, Duration::from_secs(30))
            .with_context(|| format!("{}: connecting to {}", target.name, target.addr))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let name = ServerName::try_from("localhost")?;
        let conn = ClientConnection::new(target.tls.clone(), name)?;
        let mut session = Session {
            tls: StreamOwned::new(conn, tcp),
            pending: Vec::new(),
            chunk: vec![0; 256 * 1024].into_boxed_slice(),
        };
        let greeting = session
            .read_line()
            .with_context(|| format!("{}: greeting", target.name))?;
        let elapsed = t0.elapsed();
        ensure!(
            greeting.starts_with(b"+OK"),
            "{}: greeting {:?}",
            target.name,
            lossy(&greeting)
        );
        Ok((session, elapsed))
    }

    fn tls_params(&self) -> String {
        format!(
            "{:?} {:?}",
            self.tls.conn.protocol_version(),
            self.tls.conn.negotiated_cipher_suite().map(|s| s.suite())
        )
    }

    fn fill(&mut self) -> Result<usize> {
        loop {
            match self.tls.read(&mut self.chunk) {
                Ok(0) => bail!("connection closed"),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn read_line(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(i) = memchr::memmem::find(&self.pending, b"\r\n") {
                let rest = self.pending.split_off(i + 2);
                return Ok(std::mem::replace(&mut self.pending, rest));
            }
            let n = self.fill()?;
            self.pending.extend_from_slice(&self.chunk[..n]);
        }
    }

    fn send(&mut self, command: &str) -> Result<()> {
        self.tls.write_all(command.as_bytes())?;
        self.tls.write_all(b"\r\n")?;
        self.tls.flush()?;
        Ok(())
    }

    fn command(&mut self, command: &str) -> Result<Vec<u8>> {
        self.send(command)?;
        let line = self.read_line()?;
        ensure!(line.starts_with(b"+OK"), "{command}: {:?}", lossy(&line));
        Ok(line)
    }

    fn login(&mut self, (user, password): &(String, String)) -> Result<()> {
        self.command(&format!("USER {user}"))?;
        self.command(&format!("PASS {password}"))?;
        Ok(())
    }

    /// RETR `n`: the message (status line and terminator removed; no line of the bench
    /// corpus starts with a dot), time to the first response byte and to the terminator.
    fn retr(&mut self, n: usize) -> Result<Retr> {
        ensure!(self.pending.is_empty(), "unread bytes before RETR");
        let mut out = Vec::with_capacity(64 * 1024);
        let t0 = Instant::now();
        self.send(&format!("RETR {n}"))?;
        let first = self.fill()?;
        let ttfb = t0.elapsed();
        out.extend_from_slice(&self.chunk[..first]);
        if out.starts_with(b"-ERR") {
            bail!("RETR {n}: {:?}", lossy(&out));
        }
        while !out.ends_with(b"\r\n.\r\n") {
            let k = self.fill()?;
            out.extend_from_slice(&self.chunk[..k]);
        }
        let total = t0.elapsed();
        let status_end = memchr::memmem::find(&out, b"\r\n").context("no status line")? + 2;
        ensure!(
            out.starts_with(b"+OK"),
            "RETR {n}: {:?}",
            lossy(&out[..status_end])
        );
        out.truncate(out.len() - 3);
        out.drain(..status_end);
        Ok(Retr {
            body: out,
            ttfb,
            total,
        })
    }

    /// Reads one multi-line response (status line to terminator) from the pipelined stream
    /// and returns the message as in [`Session::retr`].
    fn read_multiline(&mut self) -> Result<Vec<u8>> {
        let mut from = 0;
        loop {
            if self.pending.starts_with(b"-ERR") {
                bail!("{:?}", lossy(&self.pending));
            }
            if let Some(i) = memchr::memmem::find(&self.pending[from..], b"\r\n.\r\n") {
                let end = from + i + 5;
                let rest = self.pending.split_off(end);
                let mut out = std::mem::replace(&mut self.pending, rest);
                let status_end = memchr::memmem::find(&out, b"\r\n").context("no status line")? + 2;
                out.truncate(out.len() - 3);
                out.drain(..status_end);
                return Ok(out);
            }
            from = self.pending.len().saturating_sub(4);
            let n = self.fill()?;
            self.pending.extend_from_slice(&self.chunk[..n]);
        }
    }

    /// On a non-blocking socket: the next multi-line response if it is complete with what
    /// can be read now, `None` if more must arrive first.
    fn try_multiline(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = memchr::memmem::find(&self.pending, b"\r\n.\r\n") {
                let rest = self.pending.split_off(i + 5);
                let mut out = std::mem::replace(&mut self.pending, rest);
                ensure!(out.starts_with(b"+OK"), "{:?}", lossy(&out));
                let status_end = memchr::memmem::find(&out, b"\r\n").context("no status line")? + 2;
                out.truncate(out.len() - 3);
                out.drain(..status_end);
                return Ok(Some(out));
            }
            match self.tls.read(&mut self.chunk) {
                Ok(0) => bail!("connection closed"),
                Ok(n) => self.pending.extend_from_slice(&self.chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn quit(mut self) {
        let _ = self.command("QUIT");
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

// ---------------------------------------------------------------------------------------
// statistics and report

#[derive(Default)]
struct Results {
    text: String,
}

impl Results {
    fn line(&mut self, line: String) {
        println!("{line}");
        self.text.push_str(&line);
        self.text.push('\n');
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median of the per-round ratios `values[i][r] / values[base][r]` (paired within a round, so
/// load that hits a whole round cancels out).
fn paired_ratio(values: &[Vec<f64>], i: usize, base: usize) -> f64 {
    median(
        values[i]
            .iter()
            .zip(&values[base])
            .map(|(x, b)| x / b)
            .collect(),
    )
}

/// One line per target: median, [min..max], paired ratio against `direct`; then popgate's
/// paired ratios against the relay without rules (issue 12: rules cost at most 5 %) and
/// against each earlier build, and each earlier build's against the ones before it.
fn report_rates(results: &mut Results, targets: &[Target], values: &[Vec<f64>], unit: &str) {
    for (i, t) in targets.iter().enumerate() {
        results.line(format!(
            "  {:15} {:8.1} {unit} {:>18}  ratio/direct {:.2}",
            t.name,
            median(values[i].clone()),
            spread(&values[i]),
            paired_ratio(values, i, 0),
        ));
    }
    let index = |name: &str| targets.iter().position(|t| t.name == name);
    let Some(popgate) = index("popgate") else {
        return;
    };
    let builds: Vec<usize> = (0..targets.len())
        .filter(|&i| is_other_build(targets[i].name))
        .collect();
    let mut pairs: Vec<(usize, usize)> = index("popgate-norules")
        .map(|b| (popgate, b))
        .into_iter()
        .collect();
    for (k, &b) in builds.iter().enumerate() {
        pairs.push((popgate, b));
        pairs.extend(builds[k + 1..].iter().map(|&later| (later, b)));
    }
    for (x, b) in pairs {
        results.line(format!(
            "  {} / {}: {:.2} (median of per-round ratios)",
            targets[x].name,
            targets[b].name,
            paired_ratio(values, x, b)
        ));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("[{min:.1}..{max:.1}]")
}

// ---------------------------------------------------------------------------------------
// 1. bulk RETR of the 20 MiB message (+ TTFB)

fn bench_bulk(
    targets: &[Target],
    account: &(String, String),
    big: &Message,
    big_no: usize,
    server: u32,
    results: &mut Results,
) -> Result<()> {
    let size = big.bytes.len() as f64;
    let mut mibps = vec![Vec::new(); targets.len()];
    let mut ttfb = vec![Vec::new(); targets.len()];
    let mut total = vec![Vec::new(); targets.len()];
    let mut cpu = CpuUse::new(targets, server);
    for _ in 0..BULK_ROUNDS {
        for (i, t) in targets.iter().enumerate() {
            let (mut s, _) = Session::open(t)?;
            s.login(account)?;
            let r = cpu.measure(targets, i, size / 1048576.0, || s.retr(big_no))?;
            ensure!(
                r.body == big.bytes,
                "{}: the 20 MiB message differs",
                t.name
            );
            s.quit();
            mibps[i].push(size / r.total.as_secs_f64() / (1024.0 * 1024.0));
            ttfb[i].push(ms(r.ttfb));
            total[i].push(ms(r.total));
        }
    }
    results.line(format!(
        "\n[1] RETR of the {:.1} MiB message, median of {BULK_ROUNDS} (one session each)",
        size / 1048576.0
    ));
    report_rates(results, targets, &mibps, "MiB/s");
    cpu.report(results, targets, "MiB");
    results
        .line("  time to first byte of the RETR response / total time (median [min..max]):".into());
    for (i, t) in targets.iter().enumerate() {
        results.line(format!(
            "  {:15} TTFB {:7.1} ms {:>16}  total {:7.1} ms {:>16}",
            t.name,
            median(ttfb[i].clone()),
            spread(&ttfb[i]),
            median(total[i].clone()),
            spread(&total[i]),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. many small RETRs in one session

/// Messages fetched one after another in one session.
struct Batch<'a> {
    /// Report labels of the sequential and the pipelined figure.
    label: (&'static str, &'static str),
    /// The number of the first message.
    first: usize,
    messages: &'a [Message],
    /// What the messages are, for the report.
    what: String,
}

fn bench_small(
    targets: &[Target],
    account: &(String, String),
    batch: &Batch<'_>,
    server: u32,
    results: &mut Results,
) -> Result<()> {
    let messages = batch.messages;
    let numbers = batch.first..batch.first + messages.len();
    let mut per_s = vec![Vec::new(); targets.len()];
    let mut piped = vec![Vec::new(); targets.len()];
    let rounds = env_or("BENCH_SMALL_ROUNDS", SMALL_ROUNDS);
    let (mut seq_cpu, mut piped_cpu) = (CpuUse::new(targets, server), CpuUse::new(targets, server));
    let count = messages.len() as f64;
    for _ in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            let (mut s, _) = Session::open(t)?;
            s.login(account)?;
            let elapsed = seq_cpu.measure(targets, i, count, || {
                let t0 = Instant::now();
                for (n, m) in numbers.clone().zip(messages) {
                    let r = s.retr(n)?;
                    ensure!(r.body == m.bytes, "{}: message {n} differs", t.name);
                }
                Ok(t0.elapsed())
            })?;
            s.quit();
            per_s[i].push(count / elapsed.as_secs_f64());

            // The same RETRs pipelined (RFC 2449 PIPELINING): every command in one write.
            let (mut s, _) = Session::open(t)?;
            s.login(account)?;
            let elapsed = piped_cpu.measure(targets, i, count, || {
                let t0 = Instant::now();
                let commands: String = numbers.clone().map(|n| format!("RETR {n}\r\n")).collect();
                s.tls.write_all(commands.as_bytes())?;
                s.tls.flush()?;
                for (n, m) in numbers.clone().zip(messages) {
                    let body = s.read_multiline()?;
                    ensure!(body == m.bytes, "{}: pipelined message {n} differs", t.name);
                }
                Ok(t0.elapsed())
            })?;
            s.quit();
            piped[i].push(count / elapsed.as_secs_f64());
        }
    }
    results.line(format!(
        "\n[{}] {} RETRs of {} in one session (sequential, not pipelined), median of {rounds}",
        batch.label.0,
        messages.len(),
        batch.what
    ));
    report_rates(results, targets, &per_s, "msg/s");
    seq_cpu.report(results, targets, "message");
    results.line(format!(
        "\n[{}] the same {} RETRs pipelined (all commands in one write), median of {rounds}",
        batch.label.1,
        messages.len()
    ));
    report_rates(results, targets, &piped, "msg/s");
    piped_cpu.report(results, targets, "message");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. new sessions per second

/// One short session; whether its TLS handshake resumed an earlier session.
fn one_session(t: &Target, account: &(String, String)) -> Result<bool> {
    let (mut s, _) = Session::open(t)?;
    s.login(account)?;
    s.command("STAT")?;
    let resumed = s.tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    s.command("QUIT")?;
    Ok(resumed)
}

fn bench_rate(targets: &[Target], account: &(String, String), results: &mut Results) -> Result<()> {
    let clients = env_or("BENCH_RATE_CLIENTS", RATE_CLIENTS);
    let resumed: Vec<std::sync::atomic::AtomicUsize> =
        targets.iter().map(|_| Default::default()).collect();
    let resumed = &resumed;
    let mut rate = vec![Vec::new(); targets.len()];
    for _ in 0..RATE_ROUNDS {
        for (i, t) in targets.iter().enumerate() {
            let t0 = Instant::now();
            thread::scope(|scope| -> Result<()> {
                let workers: Vec<_> = (0..clients)
                    .map(|_| {
                        scope.spawn(|| -> Result<()> {
                            for _ in 0..RATE_SESSIONS / clients {
                                if one_session(t, account)? {
                                    resumed[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for w in workers {
                    w.join().expect("rate worker panicked")?;
                }
                Ok(())
            })?;
            let done = RATE_SESSIONS / clients * clients;
            rate[i].push(done as f64 / t0.elapsed().as_secs_f64());
        }
    }
    results.line(format!(
        "\n[3] new sessions/s (connect, TLS handshake, greeting, USER/PASS, STAT, QUIT), \
         {RATE_SESSIONS} sessions by {clients} concurrent clients, median of {RATE_ROUNDS}"
    ));
    report_rates(results, targets, &rate, "sessions/s");
    let shares: Vec<String> = targets
        .iter()
        .zip(resumed)
        .map(|(t, n)| {
            let n = n.load(std::sync::atomic::Ordering::Relaxed);
            format!(
                "{} {n}/{}",
                t.name,
                RATE_SESSIONS / clients * clients * RATE_ROUNDS
            )
        })
        .collect();
    results.line(format!(
        "  client handshakes resumed: {}",
        shares.join(", ")
    ));
    Ok(())
}

/// `config` on a new pop3s port, for another popgate beside the running one.
fn fresh_port(config: &ConfigDir) -> ConfigDir {
    config
        .clone()
        .set(RELAY_POLICY, "/ports/pop3s", json!(free_port()))
}

// ---------------------------------------------------------------------------------------
// 4. first session on a cold popgate

fn bench_cold(
    config: &ConfigDir,
    direct: &Target,
    proxy_ca: &[u8],
    account: &(String, String),
    results: &mut Results,
) -> Result<()> {
    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut direct_ms = Vec::new();
    for _ in 0..COLD_STARTS {
        // A direct session right before, as the baseline of this start.
        let (s, d) = Session::open(direct)?;
        s.quit();
        direct_ms.push(ms(d));
        let cold = Popgate::start(fresh_port(config))?;
        let target = Target::new("popgate-cold", cold.pop3s_addr(), proxy_ca)?;
        let (mut s, d1) = Session::open(&target)?;
        s.login(account)?;
        s.quit();
        let (s, d2) = Session::open(&target)?;
        s.quit();
        first.push(ms(d1));
        second.push(ms(d2));
    }
    let d = median(direct_ms.clone());
    let f = median(first.clone());
    let w = median(second.clone());
    results.line(format!(
        "\n[4] connect-to-greeting latency, {COLD_STARTS} fresh popgate starts (median)"
    ));
    results.line(format!(
        "  direct                        {d:6.2} ms {}",
        spread(&direct_ms)
    ));
    results.line(format!(
        "  popgate 1st session (mints)   {f:6.2} ms {}  added {:+.2} ms ({:.2}x)",
        spread(&first),
        f - d,
        f / d
    ));
    results.line(format!(
        "  popgate 2nd session (cached)  {w:6.2} ms {}  added {:+.2} ms ({:.2}x)",
        spread(&second),
        w - d,
        w / d
    ));
    Ok(())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How many processes are called `name`, and their proportional set sizes (shared pages
/// split between the processes sharing them) summed, in KiB.
fn processes_named(name: &str) -> (usize, u64) {
    let Ok(dir) = fs::read_dir("/proc") else {
        return (0, 0);
    };
    let mut count = 0;
    let mut rss = 0;
    for entry in dir.filter_map(Result::ok) {
        if !fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == name) {
            continue;
        }
        count += 1;
        let rollup = fs::read_to_string(entry.path().join("smaps_rollup")).unwrap_or_default();
        rss += rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (count, rss)
}

// ---------------------------------------------------------------------------------------
// environment

fn raise_nofile() -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let mem = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    format!("{cpus} CPUs, {model}, {mem}")
}
