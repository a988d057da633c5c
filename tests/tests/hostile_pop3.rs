//! Hostile POP3 peers through the real binary (SPEC §5; issues 12 and 13): a server that
//! frames a message so a lenient client would end it early, a client that floods pipelined
//! commands without reading its replies, a client that half-closes after `DELE`/`QUIT`.
//! Only a scripted fake server does these things, so no other peer is needed.

use std::io::{ErrorKind, Read, Write};
use std::thread;
use std::time::Duration;

use popgate_tests::diff::escape;
use popgate_tests::popgate::{spec_rules_action, RELAY_ACTION};
use popgate_tests::{ConfigDir, FakeServer, Pop3Client, Popgate, Reply, Script};
use serde_json::{json, Value};

/// How long a test waits for popgate to end a broken session.
const SESSION_END: Duration = Duration::from_secs(20);

/// The three framings of issue 12 a lenient reader takes for an early terminator, the
/// violation kind popgate logs for each, and a message that is fine.
const HOSTILE: [(&str, &[u8], &str); 3] = [
    (
        "dot CR X",
        b"+OK\r\nSubject: a\r\n\r\nbody\r\n.\rX\r\nsmuggled\r\n.\r\n",
        "\"reason_kind\":\"dot_cr_without_lf\"",
    ),
    (
        "LF-only dot line",
        b"+OK\r\nSubject: a\r\n\r\nbody\r\n.\nsmuggled\r\n.\r\n",
        "\"reason_kind\":\"lf_only_terminator\"",
    ),
    (
        "CR-separated dot",
        b"+OK\r\nSubject: a\r\n\r\nbody\r\n...\r.\r\nsmuggled\r\n.\r\n",
        "\"reason_kind\":\"dot_after_bare_cr\"",
    ),
];
const GOOD: &[u8] = b"+OK\r\nSubject: fine\r\n\r\nhello\r\n..dot\r\n.\r\n";

/// popgate in front of a fake server; `action` replaces the relay action when given.
fn relay_to_fake(script: Script, action: Option<Value>) -> (FakeServer, Popgate) {
    let server = FakeServer::start(script).unwrap();
    // Without an action of its own the relay must not inspect at all, so bodies stream
    // through the core (`unparseable` defaults to quarantine, which would inspect).
    let mut config =
        ConfigDir::relay(server.addr()).set(RELAY_ACTION, "/unparseable", json!("allow"));
    if let Some(action) = action {
        config = config.json(RELAY_ACTION, action);
    }
    let popgate = Popgate::start(config).unwrap();
    (server, popgate)
}

/// An action whose inspection needs the whole message (a deny rule), so RETR bodies are
/// collected and a refused one can still be answered with `-ERR`.
fn collecting_action() -> Value {
    json!({
        "name": "Relay",
        "authentication": { "require_tls": false },
        "file_names": { "default": "allow",
            "rules": [ { "match": "*.exe", "action": "deny" } ] },
        "tls": { "action": "allow", "profile": "TLS-Client.Standard" }
    })
}

/// Where a lenient reader sees the first multi-line response in `bytes` end: lines split on
/// LF (and, with `cr_ends_lines`, on a bare CR), a CR before LF dropped, the first `.` line
/// after the status line is the terminator.
fn lenient_terminator(bytes: &[u8], cr_ends_lines: bool) -> Option<usize> {
    let mut start = 0;
    let mut first = true;
    for i in 0..bytes.len() {
        let ends = bytes[i] == b'\n'
            || (cr_ends_lines && bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if !ends {
            continue;
        }
        let mut line = &bytes[start..i];
        if bytes[i] == b'\n' {
            line = line.strip_suffix(b"\r").unwrap_or(line);
        }
        if !first && line == b"." {
            return Some(i + 1);
        }
        first = false;
        start = i + 1;
    }
    None
}

#[test]
fn lenient_terminators_from_the_server_never_reach_the_client() {
    // No inspection (the core's scanner), streamed inspection, whole-message inspection.
    let actions = [None, Some(spec_rules_action()), Some(collecting_action())];
    for (mode, action) in actions.into_iter().enumerate() {
        let collecting = mode == 2;
        let mut script = Script::default().on("RETR 9", Reply::Send(GOOD.to_vec()));
        for (i, (_, reply, _)) in HOSTILE.iter().enumerate() {
            script = script.on(&format!("RETR {}", i + 1), Reply::Send(reply.to_vec()));
        }
        let (_server, popgate) = relay_to_fake(script, action);
        for (i, (name, _, violation)) in HOSTILE.iter().enumerate() {
            let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
            client.login("alice", "secret").unwrap();
            client
                .send(format!("RETR {}\r\n", i + 1).as_bytes())
                .unwrap();
            let got = client.expect_close(SESSION_END).unwrap();
            let shown = escape(&got);
            assert_eq!(lenient_terminator(&got, false), None, "{name}: {shown}");
            assert_eq!(lenient_terminator(&got, true), None, "{name}: {shown}");
            assert!(!shown.contains("smuggled"), "{name}: {shown}");
            if collecting {
                assert_eq!(
                    shown,
                    escape(b"-ERR [SYS/TEMP] invalid response from server\r\n"),
                    "{name}"
                );
            } else {
                // Streamed (the +OK went out, perhaps some body, never an ending) or, when
                // nothing had gone out yet (the inspecting stream holds a short message),
                // refused.
                assert!(
                    got.starts_with(b"+OK\r\n")
                        || got == b"-ERR [SYS/TEMP] invalid response from server\r\n",
                    "{name} (mode {mode}): {shown}"
                );
            }
            // The next session on the same popgate works.
            let mut next = Pop3Client::connect(popgate.pop3_addr()).unwrap();
            next.login("alice", "secret").unwrap();
            assert_eq!(escape(&next.retr_raw(9).unwrap()), escape(GOOD), "{name}");
            popgate
                .wait_for_log(violation, SESSION_END)
                .unwrap_or_else(|e| panic!("{name}: violation not logged: {e}"));
        }
    }
}

/// The inspecting stream has judged and sent a large first part when the bad line comes:
/// the session ends without an ending, so a lenient client keeps no message at all.
#[test]
fn a_lenient_terminator_after_streamed_parts_ends_the_session() {
    let mut reply = b"+OK\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
        --B\r\nContent-Type: text/plain\r\n\r\n"
        .to_vec();
    for _ in 0..8192 {
        reply.extend_from_slice(b"first part, a line of forty-odd bytes\r\n");
    }
    reply.extend_from_slice(
        b"--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n.\rX\r\nsmuggled\r\n.\r\n",
    );
    let script = Script::default()
        .on("RETR 1", Reply::Send(reply))
        .on("RETR 9", Reply::Send(GOOD.to_vec()));
    let (_server, popgate) = relay_to_fake(script, Some(spec_rules_action()));
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client.login("alice", "secret").unwrap();
    client.send(b"RETR 1\r\n").unwrap();
    let got = client.expect_close(SESSION_END).unwrap();
    let head = escape(&got[..got.len().min(200)]);
    assert!(got.starts_with(b"+OK\r\n"), "{head}");
    assert!(got.len() > 100_000, "the first part streamed: {head}");
    assert_eq!(lenient_terminator(&got, false), None, "{head}");
    assert_eq!(lenient_terminator(&got, true), None, "{head}");
    assert!(!escape(&got).contains("smuggled"));
    popgate
        .wait_for_log("\"reason_kind\":\"dot_cr_without_lf\"", SESSION_END)
        .unwrap();
    let mut next = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    next.login("alice", "secret").unwrap();
    assert_eq!(escape(&next.retr_raw(9).unwrap()), escape(GOOD));
}

#[test]
fn pipelined_dele_quit_then_half_close_reaches_the_server() {
    let script = Script::default()
        .on("DELE 1", Reply::send("+OK message 1 deleted\r\n"))
        .on("QUIT", Reply::SendAndClose(b"+OK bye\r\n".to_vec()));
    let (server, popgate) = relay_to_fake(script, None);
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client.login("alice", "secret").unwrap();
    client.send(b"DELE 1\r\nQUIT\r\n").unwrap();
    client.shutdown_write().unwrap();
    let got = client.expect_close(SESSION_END).unwrap();
    assert_eq!(
        escape(&got),
        escape(b"+OK message 1 deleted\r\n+OK bye\r\n")
    );
    let received = server.received();
    assert!(
        received.iter().any(|line| line == b"QUIT"),
        "the server never saw QUIT: {received:?}"
    );
}

/// What one flood cost popgate.
struct FloodCost {
    peak_above_idle_kib: u64,
    cpu_seconds: f64,
    pushed_back: bool,
}

/// Sends `total` bytes of pipelined `USER` lines (which the action refuses, so every one is
/// answered by popgate itself) without reading, until popgate stops reading; then reads all
/// the replies while sending the rest.
fn flood(popgate: &Popgate, total: usize) -> FloodCost {
    const LINE: &[u8] = b"USER flood\r\n";
    let lines = total / LINE.len();
    let total = lines * LINE.len();
    let client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    let idle_kib = popgate.rss_kib().unwrap();
    popgate.reset_peak_rss().unwrap();
    let cpu_before = popgate.cpu_seconds().unwrap();
    let mut stream = client.stream_clone().unwrap();
    // A write that makes no progress for this long means popgate stopped reading.
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let chunk = LINE.repeat(8192);
    let mut sent = 0;
    let mut pushed_back = false;
    while sent < total {
        let offset = sent % chunk.len();
        let end = chunk.len().min(offset + (total - sent));
        match stream.write(&chunk[offset..end]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                pushed_back = true;
                break;
            }
            Err(e) => panic!("flood write failed after {sent} bytes: {e}"),
        }
    }
    let peak_blocked_kib = popgate.peak_rss_kib().unwrap();
    // Now read every reply while the rest is written.
    stream.set_write_timeout(None).unwrap();
    let writer = thread::spawn(move || {
        while sent < total {
            let offset = sent % chunk.len();
            let end = chunk.len().min(offset + (total - sent));
            sent += stream.write(&chunk[offset..end]).unwrap();
        }
    });
    let reply = b"-ERR [AUTH] login method not permitted by policy\r\n";
    let mut remaining = lines * reply.len();
    let mut buf = vec![0u8; 256 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    client.set_read_timeout(SESSION_END).unwrap();
    let mut reader = client.stream_clone().unwrap();
    while remaining > 0 {
        let n = reader.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "popgate closed with {remaining} reply bytes outstanding"
        );
        assert!(n <= remaining, "more replies than lines");
        // Every reply is the same line: check the stream is a repetition of it.
        tail.extend_from_slice(&buf[..n]);
        let whole = tail.len() / reply.len() * reply.len();
        assert!(
            tail[..whole].chunks(reply.len()).all(|c| c == reply),
            "unexpected reply: {}",
            escape(&tail[..whole.min(200)])
        );
        tail.drain(..whole);
        remaining -= n;
    }
    writer.join().unwrap();
    let cpu_seconds = popgate.cpu_seconds().unwrap() - cpu_before;
    let peak_kib = popgate.peak_rss_kib().unwrap().max(peak_blocked_kib);
    FloodCost {
        peak_above_idle_kib: peak_kib.saturating_sub(idle_kib),
        cpu_seconds,
        pushed_back,
    }
}

#[test]
fn pipelined_user_flood_keeps_memory_bounded_and_cpu_linear() {
    let mut action = collecting_action();
    action["authentication"]["allow"] = json!(["SASL:PLAIN"]);
    // At info level, as deployed: debug logs every command line.
    let server = FakeServer::start(Script::default()).unwrap();
    let config = ConfigDir::relay(server.addr())
        .json(RELAY_ACTION, action)
        .set("popgate.json", "/log/level", json!("info"));
    let popgate = Popgate::start(config).unwrap();
    let small = flood(&popgate, 3 << 20);
    let big = flood(&popgate, 30 << 20);
    println!(
        "USER flood: 3 MiB {:.2} CPU-s, peak +{} KiB; 30 MiB {:.2} CPU-s, peak +{} KiB",
        small.cpu_seconds, small.peak_above_idle_kib, big.cpu_seconds, big.peak_above_idle_kib
    );
    assert!(
        big.pushed_back,
        "popgate read 30 MiB without its replies being read"
    );
    assert!(
        big.peak_above_idle_kib < 32 * 1024,
        "peak RSS {} KiB above idle",
        big.peak_above_idle_kib
    );
    // Linear: ten times the input costs about ten times the CPU (quadratic would be ~100).
    assert!(
        big.cpu_seconds < 25.0 * small.cpu_seconds.max(0.05),
        "30 MiB took {:.2} CPU-s, 3 MiB {:.2}",
        big.cpu_seconds,
        small.cpu_seconds
    );
}

/// A client that pipelines commands before the greeting and before logging in (the abuse
/// bench's flooder) is answered by popgate itself: the server never sees those lines, the
/// early bytes wait for the greeting instead of ending the session, and another client is
/// served meanwhile.
#[test]
fn a_pre_login_flood_is_answered_by_popgate_and_never_reaches_the_server() {
    const LINES: usize = 16 * 1024;
    let (server, popgate) = relay_to_fake(Script::default(), None);
    let connections_before = server.connections();
    let mut flooder = std::net::TcpStream::connect(popgate.pop3_addr()).unwrap();
    flooder.set_read_timeout(Some(SESSION_END)).unwrap();
    let mut writer = flooder.try_clone().unwrap();
    let sending = thread::spawn(move || writer.write_all(&b"NOOP\r\n".repeat(LINES)));

    let mut bystander = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    bystander.login("alice", "secret").unwrap();
    assert!(bystander.command("NOOP").unwrap().starts_with(b"+OK"));

    let greeting = b"+OK fake POP3 server ready\r\n";
    let reply = b"-ERR command not valid before login\r\n";
    let mut want = greeting.to_vec();
    want.extend_from_slice(&reply.repeat(LINES));
    let mut got = vec![0u8; want.len()];
    flooder
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("the flooder's replies stopped: {e}"));
    assert!(got == want, "unexpected replies: {}", escape(&got[..200]));
    sending.join().unwrap().unwrap();
    flooder.write_all(b"QUIT\r\n").unwrap();
    let mut bye = Vec::new();
    let _ = flooder.read_to_end(&mut bye);
    assert!(bye.starts_with(b"+OK"), "QUIT: {}", escape(&bye));

    let received = server.received();
    let noops = received.iter().filter(|l| l.as_slice() == b"NOOP").count();
    assert_eq!(
        noops, 1,
        "only the logged-in bystander's NOOP: {received:?}"
    );
    assert_eq!(
        server.connections() - connections_before,
        2,
        "one upstream connection per client"
    );
}

#[test]
fn tab_separated_pass_is_never_logged() {
    let (server, popgate) = relay_to_fake(Script::default(), None);
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client
        .send(b"USER alice\r\nPASS\tTabbed-Secret-42\r\n")
        .unwrap();
    assert_eq!(client.read_line().unwrap(), b"+OK\r\n");
    // The fake server's own parser splits on SP only; what it answers does not matter.
    client.read_line().unwrap();
    client.quit();
    popgate.wait_for_log("session closed", SESSION_END).unwrap();
    // The relay logs at debug level: every command line is logged, PASS redacted.
    let log = popgate.log_text();
    assert!(log.contains("PASS <redacted>"), "{log}");
    assert!(!log.contains("Tabbed-Secret-42"), "{log}");
    assert!(server
        .received()
        .iter()
        .any(|line| line == b"PASS\tTabbed-Secret-42"));
}
