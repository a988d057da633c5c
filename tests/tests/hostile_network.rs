//! Hostile peers on the network side (SPEC §5 "every buffer bounded", issue 13): stalled
//! ClientHellos cost no CPU while popgate waits for their SNI, and opaque tunnels (pop3s
//! with `tls.action: allow`, STLS passed through) end after the action's idle timeout and
//! carry TCP keepalive on both sockets. Each test then checks another session still works.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use popgate_tests::popgate::{RELAY_ACTION, RELAY_POLICY};
use popgate_tests::process::run_ok;
use popgate_tests::{clients, require_peers, ClientTls, ConfigDir, Corpus, Dovecot, Peer, Popgate};
use popgate_tests::{wait_until, DovecotOptions, Pop3Client};
use serde_json::json;

/// The action's idle timeout in the tunnel tests.
const IDLE_S: u64 = 2;

/// popgate passing TLS through (`tls.action: allow`) to Dovecot on both ports, with an
/// explicit short idle timeout.
fn pass_through(dovecot: &Dovecot) -> ConfigDir {
    let upstream = json!({ "host": "127.0.0.1", "pop3": dovecot.pop3_addr().port(),
                           "pop3s": dovecot.pop3s_addr().port() });
    ConfigDir::relay(dovecot.pop3_addr())
        .tls_support(RELAY_POLICY, "enabled")
        .set(RELAY_POLICY, "/upstream", upstream)
        .set(RELAY_ACTION, "/general/idle_timeout_s", json!(IDLE_S))
        .set("popgate.json", "/limits/handshake_timeout_s", json!(60))
}

/// Half of a real ClientHello (rustls's, naming `pop.example.net`).
fn half_client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("pop.example.net").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello.truncate(hello.len() / 2);
    hello
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / per_second
}

#[test]
fn sixty_stalled_client_hellos_use_almost_no_cpu() {
    require_peers!(Peer::Dovecot, Peer::Curl);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let popgate = Popgate::start(pass_through(&dovecot)).unwrap();
    let half = half_client_hello();
    let stalled: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut tcp = TcpStream::connect(popgate.pop3s_addr()).unwrap();
            tcp.write_all(&half).unwrap();
            tcp
        })
        .collect();
    // Let every connection be accepted and peeked once, then measure a quiet window.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        std::thread::park_timeout(settle - Instant::now());
    }
    let window = Duration::from_secs(4);
    let before = cpu_seconds(popgate.pid());
    let started = Instant::now();
    let end = started + window;
    while Instant::now() < end {
        std::thread::park_timeout(end - Instant::now());
    }
    let used = cpu_seconds(popgate.pid()) - before;
    let share = used / started.elapsed().as_secs_f64();
    assert!(
        share < 0.02,
        "60 stalled ClientHellos used {:.1} % of a core",
        share * 100.0
    );
    // Another client is served meanwhile (pop3s through the tunnel, to Dovecot's TLS).
    let account = dovecot.account().at(popgate.pop3s_addr());
    let tls = ClientTls::Implicit(dovecot.ca_cert().to_path_buf());
    let got = clients::curl_retr(&account, &tls, 1).unwrap();
    assert_eq!(got, corpus.messages[0].bytes);
    drop(stalled);
}

/// A Python TLS client (implicit or STLS) that reads the greeting, says `ready`, then stays
/// silent and reports how long until popgate closes the connection.
const SILENT_CLIENT: &str = r#"
import socket, ssl, sys, time
mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raw = socket.create_connection(("127.0.0.1", port), timeout=60)
ctx = ssl.create_default_context(cafile=ca)
if mode == "stls":
    f = raw.makefile("rb"); f.readline(); raw.sendall(b"STLS\r\n"); f.readline()
tls = ctx.wrap_socket(raw, server_hostname="localhost")
f = tls.makefile("rb")
if mode == "ssl":
    f.readline()
else:
    tls.sendall(b"NOOP\r\n"); f.readline()
print("ready", flush=True)
start = time.monotonic()
try:
    data = tls.recv(1)
except (OSError, ssl.SSLError):
    data = b""
print("closed %.3f %r" % (time.monotonic() - start, data), flush=True)
"#;

/// Runs [`SILENT_CLIENT`]; returns the keepalive timers `ss` showed on popgate's sockets
/// while the tunnel was up, and the seconds of silence until popgate closed it.
fn silent_tunnel(
    mode: &str,
    listen: SocketAddr,
    dovecot: &Dovecot,
    upstream: u16,
) -> (String, f64) {
    let mut child = Command::new("python3")
        .args(["-c", SILENT_CLIENT, mode, &listen.port().to_string()])
        .arg(dovecot.ca_cert())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert_eq!(ready, "ready");
    // popgate's two sockets: the accepted one (source port = listener) and the upstream one
    // (destination port = Dovecot's).
    // `ss` shows one timer per socket: a retransmission in flight hides the keepalive one
    // for a moment, so look again (briefly) until both show.
    let filter = format!("( sport = :{} or dport = :{} )", listen.port(), upstream);
    let mut ss = String::new();
    let _ = wait_until(
        "keepalive timers on both sockets",
        Duration::from_secs(1),
        || {
            let out = run_ok(
                Command::new("ss").args(["-tnoH", "state", "established", &filter]),
                Duration::from_secs(10),
            )?;
            ss = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(ss.lines().filter(|l| l.contains("keepalive")).count() >= 2)
        },
    );
    let closed = lines.next().unwrap().unwrap();
    let _ = child.wait();
    let seconds: f64 = closed
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{closed}"));
    (ss, seconds)
}

#[test]
fn opaque_tunnels_end_after_the_idle_timeout_and_keep_alive() {
    require_peers!(Peer::Dovecot, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let popgate = Popgate::start(pass_through(&dovecot)).unwrap();
    for (mode, listen, upstream) in [
        ("ssl", popgate.pop3s_addr(), dovecot.pop3s_addr().port()),
        ("stls", popgate.pop3_addr(), dovecot.pop3_addr().port()),
    ] {
        let (ss, seconds) = silent_tunnel(mode, listen, &dovecot, upstream);
        let keepalive_lines = ss.lines().filter(|l| l.contains("keepalive")).count();
        assert_eq!(
            keepalive_lines, 2,
            "{mode}: both of popgate's sockets: {ss}"
        );
        assert!(
            (IDLE_S as f64 - 0.5..IDLE_S as f64 + 5.0).contains(&seconds),
            "{mode}: closed after {seconds} s of silence, idle timeout {IDLE_S} s"
        );
    }
    popgate
        .wait_for_log("opaque tunnel idle; closed", Duration::from_secs(10))
        .unwrap();
    let mut client = Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr())).unwrap();
    assert!(client.command("STAT").unwrap().starts_with(b"+OK"));
}
