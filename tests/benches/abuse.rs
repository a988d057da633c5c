//! Abuse bench (issue 13): normal sessions fetching mail through popgate while abusers run,
//! side by side with the same sessions without abuse, in one run.
//!
//! Abusers: `ABUSE_SLOWLORIS` (default 1,000) connections on the pop3 port that send one
//! byte of a command line every second; `ABUSE_FLOODERS` (50) connections that pipeline
//! `NOOP` lines as fast as the socket takes them and never read; `ABUSE_TUNNELS` (200)
//! pop3s connections on a pass-through policy (`tls.action: allow`) whose ClientHello was
//! answered and which then say nothing (idle opaque tunnels). Normal sessions: plaintext
//! `USER`/`PASS`/`RETR 1`/`QUIT` against Dovecot, one after another, `NORMAL_SESSIONS`
//! (default 200) per phase. Figures: p50/p99 session latency of each phase, popgate's RSS
//! at the end of the abuse phase and its CPU share during each phase.
//!
//! `ABUSE_DIRECT=1` sends sessions and abusers to Dovecot directly (the baseline).
//!
//! ```text
//! cargo build --release -p popgate
//! POPGATE_BIN=$PWD/target/release/popgate cargo bench -p popgate-tests --bench abuse
//! ```

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use popgate_tests::popgate::RELAY_ACTION;
use popgate_tests::{free_port, ConfigDir, Corpus, Dovecot, DovecotOptions, Popgate};
use serde_json::json;

/// Dovecot limits for thousands of connections from one address (as in `proxy.rs`).
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

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    raise_open_files();
    let slowloris = env("ABUSE_SLOWLORIS", 1000);
    let flooders = env("ABUSE_FLOODERS", 50);
    let tunnels = env("ABUSE_TUNNELS", 200);
    let sessions = env("NORMAL_SESSIONS", 200);
    let corpus = Corpus::small();
    // Limits high enough that Dovecot, which sees one connection per abuser too, is not
    // what the bench measures.
    let options = DovecotOptions {
        extra_config: DOVECOT_LIMITS.into(),
        ..DovecotOptions::default()
    };
    let dovecot = Dovecot::start(&corpus.messages, options)?;
    let tunnel_port = free_port();
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .set(
            "popgate.json",
            "/limits",
            json!({ "max_connections": 20000, "max_connections_per_client": 20000 }),
        )
        .set(RELAY_ACTION, "/general/idle_timeout_s", json!(600))
        .json(
            "policies/tunnel.json",
            json!({ "name": "tunnel", "enabled": true, "order": 20, "direction": "inbound",
                    "from": ["any"], "to": ["any"], "tls_support": "required",
                    "ports": { "pop3s": tunnel_port },
                    "upstream": format!("127.0.0.1:{}", dovecot.pop3s_addr().port()),
                    "proxy_action": "Relay" }),
        );
    let popgate = Popgate::start(config)?;
    // `ABUSE_DIRECT=1`: sessions and abusers go to Dovecot itself (no tunnels): the baseline
    // that tells popgate's share of a degradation from the server's.
    let direct = env("ABUSE_DIRECT", 0) == 1;
    let pop3 = if direct {
        dovecot.pop3_addr()
    } else {
        popgate.pop3_addr()
    };
    let tunnels = if direct { 0 } else { tunnels };
    let tunnel_addr = SocketAddr::from(([127, 0, 0, 1], tunnel_port));
    let account = (dovecot.user().to_owned(), dovecot.password().to_owned());

    let quiet = phase(&popgate, sessions, pop3, &account)?;

    let held_tunnels = open_tunnels(tunnel_addr, tunnels)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut abusers = Vec::new();
    abusers.push(spawn_slowloris(pop3, slowloris, stop.clone()));
    for _ in 0..flooders {
        abusers.push(spawn_flooder(pop3, stop.clone()));
    }
    // Let the abuse reach its steady state before measuring.
    thread::park_timeout(Duration::from_secs(3));
    let abused = phase(&popgate, sessions, pop3, &account)?;
    let rss_kib = rss_kib(popgate.pid())?;
    stop.store(true, Ordering::SeqCst);
    drop(held_tunnels);
    for abuser in abusers {
        let _ = abuser.join();
    }

    let target = if direct {
        "Dovecot directly"
    } else {
        "popgate"
    };
    println!("abuse bench: {sessions} normal sessions per phase, through {target}");
    println!(
        "abusers: {slowloris} slowloris, {flooders} pipelining flooders, {tunnels} idle tunnels"
    );
    println!("phase        p50 ms   p99 ms   popgate CPU share   failed");
    for (name, p) in [("quiet", &quiet), ("abused", &abused)] {
        println!(
            "{name:<10} {:>8.2} {:>8.2}   {:>5.1} %             {}",
            p.p50_ms,
            p.p99_ms,
            p.cpu_share * 100.0,
            p.failed
        );
    }
    println!(
        "p99 ratio abused/quiet: {:.2}",
        abused.p99_ms / quiet.p99_ms
    );
    println!(
        "popgate RSS under abuse: {:.1} MiB",
        rss_kib as f64 / 1024.0
    );
    Ok(())
}

struct Phase {
    p50_ms: f64,
    p99_ms: f64,
    cpu_share: f64,
    failed: usize,
}

/// Each abuser holds a socket: lift the soft descriptor limit to the hard one.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn phase(
    popgate: &Popgate,
    n: usize,
    addr: SocketAddr,
    account: &(String, String),
) -> Result<Phase> {
    let cpu_before = cpu_seconds(popgate.pid())?;
    let started = Instant::now();
    let mut times = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let t = Instant::now();
        match normal_session(addr, account) {
            Ok(()) => times.push(t.elapsed().as_secs_f64() * 1000.0),
            Err(err) => {
                failed += 1;
                eprintln!("normal session failed: {err:#}");
            }
        }
    }
    anyhow::ensure!(!times.is_empty(), "every normal session failed");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(popgate.pid())? - cpu_before;
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Ok(Phase {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        cpu_share: cpu / wall,
        failed,
    })
}

fn normal_session(addr: SocketAddr, (user, password): &(String, String)) -> Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut expect_ok = |reader: &mut BufReader<TcpStream>| -> Result<()> {
        line.clear();
        reader.read_line(&mut line)?;
        anyhow::ensure!(line.starts_with("+OK"), "unexpected reply {line:?}");
        Ok(())
    };
    expect_ok(&mut reader)?;
    writer.write_all(format!("USER {user}\r\n").as_bytes())?;
    expect_ok(&mut reader)?;
    writer.write_all(format!("PASS {password}\r\n").as_bytes())?;
    expect_ok(&mut reader)?;
    writer.write_all(b"RETR 1\r\n")?;
    expect_ok(&mut reader)?;
    let mut body = String::new();
    loop {
        body.clear();
        if reader.read_line(&mut body)? == 0 || body == ".\r\n" {
            break;
        }
    }
    writer.write_all(b"QUIT\r\n")?;
    expect_ok(&mut reader)?;
    Ok(())
}

/// `count` connections that each send one byte of `USER x` per second, never a line end.
fn spawn_slowloris(
    addr: SocketAddr,
    count: usize,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut conns: Vec<TcpStream> = (0..count)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        while !stop.load(Ordering::SeqCst) {
            conns.retain_mut(|c| c.write_all(b"U").is_ok());
            thread::park_timeout(Duration::from_secs(1));
        }
    })
}

/// One connection pipelining `NOOP` lines without ever reading.
fn spawn_flooder(addr: SocketAddr, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let burst = b"NOOP\r\n".repeat(1024);
        while !stop.load(Ordering::SeqCst) {
            let Ok(mut conn) = TcpStream::connect(addr) else {
                thread::park_timeout(Duration::from_millis(100));
                continue;
            };
            let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
            while !stop.load(Ordering::SeqCst) {
                match conn.write(&burst) {
                    Ok(_) => {}
                    // A full socket (popgate stopped reading): try again.
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    // Closed (the server gave up on the garbage): flood anew.
                    Err(_) => break,
                }
            }
        }
    })
}

/// `count` pop3s connections through the pass-through policy: a ClientHello is sent, the
/// server's answer read once, then nothing more.
fn open_tunnels(addr: SocketAddr, count: usize) -> Result<Vec<TcpStream>> {
    let hello = client_hello();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut conn = TcpStream::connect(addr).context("tunnel connect")?;
        conn.write_all(&hello)?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut first = [0u8; 5];
        conn.read_exact(&mut first)
            .context("tunnel: no ServerHello")?;
        held.push(conn);
    }
    Ok(held)
}

fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| {
        b.with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    })
    .unwrap_or_else(|e| panic!("rustls config: {e}"));
    let name = rustls::pki_types::ServerName::try_from("localhost")
        .unwrap_or_else(|e| panic!("server name: {e}"));
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .unwrap_or_else(|e| panic!("rustls client: {e}"));
    let mut out = Vec::new();
    let _ = conn.write_tls(&mut out);
    out
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').context("stat")? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks as f64 / per_second)
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}
