//! Plaintext relay (`tls_support: disabled`, `interception: none`): popgate between real
//! clients and Dovecot must be invisible byte for byte, keep credentials out of its log,
//! and survive hostile peers on either side without affecting other sessions (SPEC §5).

use std::ffi::OsStr;
use std::io::Write;
use std::thread;
use std::time::Duration;

use popgate_tests::clients::{self, PoplibAuth, Retention};
use popgate_tests::corpus::base64;
use popgate_tests::diff::escape;
use popgate_tests::pki::apop_digest;
use popgate_tests::pop3_client::{body_lines, unstuff};
use popgate_tests::popgate::{popgate_cli, RELAY_ACTION, RELAY_POLICY};
use popgate_tests::sasl::{plain_blob, secret_forms};
use popgate_tests::{
    assert_bytes_eq, require_peers, ClientTls, ConfigDir, Corpus, Dovecot, DovecotOptions,
    FakeServer, Peer, Pop3Client, Popgate, Reply, Script,
};
use serde_json::json;

/// How long a test waits for popgate to end a broken session.
const SESSION_END: Duration = Duration::from_secs(20);

fn relay_to_dovecot(corpus: &Corpus) -> (Dovecot, Popgate) {
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let popgate = Popgate::start(ConfigDir::relay(dovecot.pop3_addr())).unwrap();
    (dovecot, popgate)
}

/// popgate in front of a fake server, with a short idle timeout so a silent server ends the
/// session quickly.
fn relay_to_fake(script: Script) -> (FakeServer, Popgate) {
    let server = FakeServer::start(script).unwrap();
    let config = ConfigDir::relay(server.addr())
        .set(RELAY_ACTION, "/general/idle_timeout_s", json!(2))
        .set("popgate.json", "/limits/handshake_timeout_s", json!(5));
    let popgate = Popgate::start(config).unwrap();
    (server, popgate)
}

#[test]
fn retr_of_every_corpus_message_is_byte_identical_to_direct() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let corpus = Corpus::with_big();
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let account = dovecot.account();

    let mut direct = Pop3Client::logged_in(&account).unwrap();
    let expected: Vec<Vec<u8>> = (1..=corpus.len())
        .map(|n| direct.retr_raw(n).unwrap())
        .collect();
    direct.quit();

    let mut proxied = Pop3Client::logged_in(&account.at(popgate.pop3_addr())).unwrap();
    for (i, message) in corpus.messages.iter().enumerate() {
        let got = proxied.retr_raw(i + 1).unwrap();
        assert_bytes_eq(
            &got,
            &expected[i],
            &format!("RETR {} ({})", i + 1, message.name),
        );
        assert_bytes_eq(&unstuff(&got).unwrap(), &message.bytes, &message.name);
    }
    let quit = proxied.quit().unwrap_or_default();
    assert!(quit.starts_with(b"+OK"), "QUIT: {}", escape(&quit));
}

#[test]
fn pipelined_capa_stat_list_uidl_retr_get_five_responses_in_order() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let corpus = Corpus::small();
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let pipelined = |addr| {
        let mut client = Pop3Client::logged_in(&dovecot.account().at(addr)).unwrap();
        client
            .send(b"CAPA\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\n")
            .unwrap();
        let capa = client.read_multiline().unwrap();
        let stat = client.read_line().unwrap();
        let list = client.read_multiline().unwrap();
        let uidl = client.read_multiline().unwrap();
        let retr = client.read_multiline().unwrap();
        [capa, stat, list, uidl, retr]
    };
    let direct = pipelined(dovecot.pop3_addr());
    let proxied = pipelined(popgate.pop3_addr());

    for (name, response) in ["CAPA", "STAT", "LIST", "UIDL", "RETR"].iter().zip(&direct) {
        assert!(
            response.starts_with(b"+OK"),
            "direct {name}: {}",
            escape(response)
        );
    }
    let capabilities = |capa: &[u8]| -> Vec<Vec<u8>> {
        body_lines(capa)
            .into_iter()
            .filter(|l| !l.starts_with(b"STLS") && !l.starts_with(b"SASL"))
            .collect()
    };
    assert!(
        proxied[0].starts_with(b"+OK"),
        "CAPA: {}",
        escape(&proxied[0])
    );
    assert_eq!(
        capabilities(&proxied[0]),
        capabilities(&direct[0]),
        "CAPA beyond STLS/SASL"
    );
    for (i, name) in [(1, "STAT"), (2, "LIST"), (3, "UIDL"), (4, "RETR 1")] {
        assert_bytes_eq(&proxied[i], &direct[i], name);
    }
    assert_bytes_eq(
        &unstuff(&proxied[4]).unwrap(),
        &corpus.messages[0].bytes,
        "RETR 1 message",
    );
}

#[test]
fn apop_login_works_through_popgate() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let direct = Pop3Client::connect(dovecot.pop3_addr()).unwrap();
    let mut proxied = Pop3Client::connect(popgate.pop3_addr()).unwrap();

    // The greeting passes unchanged, so it has Dovecot's form with a fresh timestamp.
    let without_timestamp = |client: &Pop3Client| {
        let greeting = String::from_utf8_lossy(client.greeting()).into_owned();
        let timestamp = client
            .apop_timestamp()
            .unwrap_or_else(|| panic!("no timestamp: {greeting}"));
        assert!(timestamp.contains('@'), "timestamp {timestamp}");
        greeting.replace(&timestamp, "<TIMESTAMP>")
    };
    assert_eq!(without_timestamp(&proxied), without_timestamp(&direct));

    proxied
        .apop_login(dovecot.user(), dovecot.password())
        .unwrap();
    assert_bytes_eq(
        &proxied.retr(1).unwrap(),
        &corpus.messages[0].bytes,
        "RETR 1 after APOP",
    );

    let account = dovecot.account().at(popgate.pop3_addr());
    let fetched = clients::poplib_fetch(&account, &ClientTls::None, PoplibAuth::Apop).unwrap();
    assert_eq!(fetched.len(), corpus.len());
    for (got, message) in fetched.iter().zip(&corpus.messages) {
        assert_bytes_eq(
            got,
            &message.bytes,
            &format!("poplib APOP {}", message.name),
        );
    }
}

#[test]
fn fetchmail_retrieves_every_message_through_popgate() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Fetchmail);
    let corpus = Corpus::small();
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let account = dovecot.account().at(popgate.pop3_addr());

    let kept = clients::fetchmail_fetch(&account, &ClientTls::None, Retention::Keep).unwrap();
    assert_eq!(kept.len(), corpus.len());
    for (got, message) in kept.iter().zip(&corpus.messages) {
        assert_bytes_eq(
            got,
            &message.bytes,
            &format!("fetchmail keep {}", message.name),
        );
    }

    let flushed = clients::fetchmail_fetch(&account, &ClientTls::None, Retention::Delete).unwrap();
    assert_eq!(flushed.len(), corpus.len());
    let mut direct = Pop3Client::logged_in(&dovecot.account()).unwrap();
    assert_eq!(
        direct.command("STAT").unwrap(),
        b"+OK 0 0\r\n",
        "DELE through popgate"
    );
}

#[test]
fn curl_retrieves_message_through_popgate() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Curl);
    let corpus = Corpus::small();
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let direct = dovecot.account();
    let proxied = direct.at(popgate.pop3_addr());
    for (i, message) in corpus.messages.iter().enumerate() {
        let got = clients::curl_retr(&proxied, &ClientTls::None, i + 1).unwrap();
        assert_bytes_eq(&got, &message.bytes, &format!("curl {}", message.name));
    }
    let list = clients::curl_list(&proxied, &ClientTls::None).unwrap();
    assert_bytes_eq(
        &list,
        &clients::curl_list(&direct, &ClientTls::None).unwrap(),
        "curl LIST",
    );
}

#[test]
fn poplib_retrieves_every_message_byte_identical() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::with_big();
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let account = dovecot.account().at(popgate.pop3_addr());
    let fetched = clients::poplib_fetch(&account, &ClientTls::None, PoplibAuth::UserPass).unwrap();
    assert_eq!(fetched.len(), corpus.len());
    for (got, message) in fetched.iter().zip(&corpus.messages) {
        assert_bytes_eq(got, &message.bytes, &format!("poplib {}", message.name));
    }
}

#[test]
fn password_never_appears_in_popgate_log() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let password = "Pw-7f3c9-Zq!x";
    let wrong = "Wr0ng-81d2-Kv";
    let corpus = Corpus::small();
    let dovecot =
        Dovecot::start(&corpus.messages, DovecotOptions::with_password(password)).unwrap();
    let mut popgate = Popgate::start(ConfigDir::relay(dovecot.pop3_addr())).unwrap();
    let account = dovecot.account().at(popgate.pop3_addr());
    let user = account.user.clone();

    let mut user_pass = Pop3Client::logged_in(&account).unwrap();
    assert!(user_pass.command("STAT").unwrap().starts_with(b"+OK"));
    user_pass.quit();

    let mut bad = Pop3Client::connect(account.addr).unwrap();
    bad.expect_ok(&format!("USER {user}")).unwrap();
    assert!(bad
        .command(&format!("PASS {wrong}"))
        .unwrap()
        .starts_with(b"-ERR"));
    bad.quit();

    let mut apop = Pop3Client::connect(account.addr).unwrap();
    let digest = apop_digest(&apop.apop_timestamp().unwrap(), password).unwrap();
    apop.expect_ok(&format!("APOP {user} {digest}")).unwrap();
    apop.quit();

    let blob = plain_blob(&user, password);
    let mut sasl_ir = Pop3Client::connect(account.addr).unwrap();
    sasl_ir.expect_ok(&format!("AUTH PLAIN {blob}")).unwrap();
    sasl_ir.quit();

    let mut sasl = Pop3Client::connect(account.addr).unwrap();
    assert!(sasl.command("AUTH PLAIN").unwrap().starts_with(b"+ "));
    sasl.expect_ok(&blob).unwrap();
    sasl.quit();

    let mut login = Pop3Client::connect(account.addr).unwrap();
    assert!(login.command("AUTH LOGIN").unwrap().starts_with(b"+ "));
    assert!(login
        .command(&base64(user.as_bytes()))
        .unwrap()
        .starts_with(b"+ "));
    login.expect_ok(&base64(password.as_bytes())).unwrap();
    login.quit();

    // Stopping flushes every log line of the sessions above.
    popgate.stop().unwrap();
    let log = popgate.log_text();
    assert!(
        !log.trim().is_empty(),
        "popgate logged nothing at debug level"
    );
    let mut forbidden = secret_forms(password);
    forbidden.extend(secret_forms(wrong));
    forbidden.extend([digest, blob]);
    for secret in forbidden {
        assert!(
            !log.contains(&secret),
            "popgate's log contains {secret:?}:\n{log}"
        );
    }
}

#[test]
fn server_overlong_status_line_gives_client_err() {
    let mut overlong = b"+OK ".to_vec();
    overlong.extend(std::iter::repeat_n(b'x', 100_000));
    overlong.extend_from_slice(b"\r\n");
    let (_server, popgate) = relay_to_fake(Script::default().on("STAT", Reply::Send(overlong)));
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client.login("alice", "secret").unwrap();
    client.send(b"STAT\r\n").unwrap();
    let response = client.read_line().unwrap();
    assert!(
        response.starts_with(b"-ERR"),
        "STAT answered {} bytes: {}",
        response.len(),
        escape(&response[..response.len().min(100)])
    );
    let (rest, _) = client.read_until_close(SESSION_END);
    assert!(
        !rest.windows(64).any(|w| w.iter().all(|&b| b == b'x')),
        "overlong line leaked"
    );
}

#[test]
fn multiline_without_terminator_never_reaches_client_as_complete() {
    let script = Script::default()
        // Connection 1: the server closes at a line boundary, terminator missing.
        .on(
            "LIST",
            Reply::SendAndClose(b"+OK 2 messages\r\n1 120\r\n2 340\r\n".to_vec()),
        )
        // Connection 2: the server goes quiet without the terminator.
        .on(
            "RETR 1",
            Reply::Send(b"+OK 120 octets\r\nSubject: x\r\n\r\nbody\r\n".to_vec()),
        );
    let (_server, popgate) = relay_to_fake(script);
    for command in ["LIST", "RETR 1"] {
        let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
        client.login("alice", "secret").unwrap();
        client.send(format!("{command}\r\n").as_bytes()).unwrap();
        let received = client.expect_close(SESSION_END).unwrap();
        assert!(
            !received.windows(5).any(|w| w == b"\r\n.\r\n") && !received.starts_with(b".\r\n"),
            "{command}: the client saw a terminated response: {}",
            escape(&received)
        );
    }
}

#[test]
fn server_closing_mid_retr_never_sends_terminator() {
    let partial =
        b"+OK 5000 octets\r\nSubject: cut\r\n\r\nfirst line\r\nthis line is cut in the mi";
    let (_server, popgate) =
        relay_to_fake(Script::default().on("RETR 1", Reply::SendAndClose(partial.to_vec())));
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client.login("alice", "secret").unwrap();
    client.send(b"RETR 1\r\n").unwrap();
    let received = client.expect_close(SESSION_END).unwrap();
    assert!(
        received.starts_with(b"+OK") || received.starts_with(b"-ERR") || received.is_empty(),
        "{}",
        escape(&received)
    );
    assert!(
        !received.windows(5).any(|w| w == b"\r\n.\r\n"),
        "a truncated message reached the client as complete: {}",
        escape(&received)
    );
}

/// Runs `misbehave` on a fresh connection through popgate while another session is logged in,
/// then checks that session and a new one still retrieve message 1 exactly.
fn other_sessions_survive(misbehave: impl FnOnce(&Popgate)) {
    let corpus = Corpus::small();
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let account = dovecot.account().at(popgate.pop3_addr());
    let mut bystander = Pop3Client::logged_in(&account).unwrap();
    misbehave(&popgate);
    let expected = &corpus.messages[0].bytes;
    assert_bytes_eq(
        &bystander.retr(1).unwrap(),
        expected,
        "concurrent session RETR 1",
    );
    let mut fresh = Pop3Client::logged_in(&account).unwrap();
    assert_bytes_eq(&fresh.retr(1).unwrap(), expected, "new session RETR 1");
}

#[test]
fn client_megabyte_without_crlf_gets_err_and_other_sessions_live() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    other_sessions_survive(|popgate| {
        let mut attacker = Pop3Client::connect(popgate.pop3_addr()).unwrap();
        let mut stream = attacker.stream_clone().unwrap();
        // popgate may stop reading (and close) long before the megabyte is sent.
        let writer = thread::spawn(move || {
            let chunk = [b'A'; 64 * 1024];
            for _ in 0..16 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let response = attacker.read_line().unwrap();
        assert!(
            response.starts_with(b"-ERR"),
            "answered {}",
            escape(&response[..response.len().min(100)])
        );
        drop(attacker);
        writer.join().unwrap();
    });
}

#[test]
fn binary_garbage_ends_only_that_session() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    other_sessions_survive(|popgate| {
        let mut attacker = Pop3Client::connect(popgate.pop3_addr()).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut garbage = vec![0u8, 0xff, 0xfe, 0x1b];
        garbage.extend((0..4096).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[5]
        }));
        garbage.extend_from_slice(b"\r\n");
        let _ = attacker.send(&garbage);
        let received = attacker.expect_close(SESSION_END).unwrap();
        for line in received.split_inclusive(|&b| b == b'\n') {
            assert!(
                line.starts_with(b"-ERR"),
                "garbage answered with {}",
                escape(line)
            );
        }
    });
}

#[test]
fn tls_client_hello_on_plaintext_port_ends_session() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    other_sessions_survive(|popgate| {
        // A TLS client speaks first, without waiting for a greeting.
        let mut tls_client = Pop3Client::connect_silent(popgate.pop3_addr()).unwrap();
        tls_client.send(&client_hello("localhost")).unwrap();
        let received = tls_client.expect_close(SESSION_END).unwrap();
        let mut lines = received.split_inclusive(|&b| b == b'\n').peekable();
        // The server's greeting may arrive before popgate recognises the handshake.
        lines.next_if(|l| l.starts_with(b"+OK"));
        for line in lines {
            assert!(
                line.starts_with(b"-ERR"),
                "ClientHello answered with {}",
                escape(line)
            );
        }
    });
}

#[test]
fn check_reports_unknown_field_with_file_and_path() {
    let config = ConfigDir::relay("127.0.0.1:110")
        .rename(RELAY_POLICY, "policies/x.json")
        .set("policies/x.json", "/frobnicate", json!(1));
    let dir = tempfile::tempdir().unwrap();
    config.write(dir.path()).unwrap();
    let output = popgate_cli([
        OsStr::new("check"),
        OsStr::new("--config"),
        dir.path().as_os_str(),
    ])
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "popgate check: {text}");
    assert!(text.contains("policies/x.json"), "no file name in: {text}");
    assert!(text.contains(".frobnicate"), "no JSON path in: {text}");
}

#[test]
fn relaying_20mib_message_keeps_peak_rss_under_8mib_above_idle() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let corpus = Corpus::of(vec![Corpus::big_message()]);
    let (dovecot, popgate) = relay_to_dovecot(&corpus);
    let mut client = Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr())).unwrap();
    assert!(client.command("STAT").unwrap().starts_with(b"+OK 1 "));
    let idle_kib = popgate.rss_kib().unwrap();
    popgate.reset_peak_rss().unwrap();
    let message = client.retr(1).unwrap();
    let peak_kib = popgate.peak_rss_kib().unwrap();
    println!(
        "popgate RSS idle after login: {idle_kib} KiB; peak while relaying 20 MiB: {peak_kib} KiB"
    );
    assert_bytes_eq(&message, &corpus.messages[0].bytes, "20 MiB message");
    assert!(
        peak_kib.saturating_sub(idle_kib) < 8 * 1024,
        "peak RSS {peak_kib} KiB is {} KiB above idle {idle_kib} KiB",
        peak_kib.saturating_sub(idle_kib)
    );
}

/// A minimal TLS 1.2 ClientHello record with SNI `server_name`.
fn client_hello(server_name: &str) -> Vec<u8> {
    let name = server_name.as_bytes();
    let u16be = |n: usize| u16::try_from(n).unwrap().to_be_bytes();
    let mut sni = Vec::new();
    sni.extend_from_slice(&u16be(name.len() + 3));
    sni.push(0);
    sni.extend_from_slice(&u16be(name.len()));
    sni.extend_from_slice(name);
    let mut extensions = vec![0, 0];
    extensions.extend_from_slice(&u16be(sni.len()));
    extensions.extend_from_slice(&sni);
    let mut body = vec![3, 3];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    body.push(0);
    body.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0xc0, 0x2b, 1, 0]);
    body.extend_from_slice(&u16be(extensions.len()));
    body.extend_from_slice(&extensions);
    let mut handshake = vec![1, 0];
    handshake.extend_from_slice(&u16be(body.len()));
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&u16be(handshake.len()));
    record.extend_from_slice(&handshake);
    record
}
