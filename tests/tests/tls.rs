//! TLS on both legs (SPEC §2, §4 tls-profiles, §5 STLS): real clients over STLS and implicit
//! TLS through popgate to Dovecot, the `tls_support` modes, CAPA rewriting, login refused
//! without TLS, upstream `mandatory`/`opportunistic` (with the hold-down), TLS 1.1 refused,
//! and the STARTTLS plaintext-injection class on both sides.
//!
//! The policy is inbound: clients see the Proxy Server certificate (`pki/server.crt`, here
//! Dovecot's own certificate, signed by its test CA, which the clients trust).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use popgate_tests::clients::{self, PoplibAuth, Retention};
use popgate_tests::diff::escape;
use popgate_tests::popgate::{popgate_cli, RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::tls_probe::{tls_probe, ProbeMode, ProbeVersions};
use popgate_tests::{
    assert_bytes_eq, require_peers, ClientTls, ConfigDir, Corpus, Dovecot, DovecotOptions,
    FakeServer, Peer, Pop3Client, Popgate, Reply, Script,
};
use serde_json::json;

/// How long a test waits for popgate to log something or end a session.
const SESSION_END: Duration = Duration::from_secs(20);

/// popgate terminating TLS (`inspect`) in front of Dovecot, policy in `mode`, upstream
/// `match`, upstream certificates trusted through `trust.ca_files` (Dovecot's test CA).
fn tls_config(dovecot: &Dovecot, mode: &str) -> ConfigDir {
    let pki = dovecot.pki().unwrap();
    let mut upstream = json!({ "host": "127.0.0.1", "pop3": dovecot.pop3_addr().port() });
    if mode != "disabled" {
        upstream["pop3s"] = json!(dovecot.pop3s_addr().port());
    }
    ConfigDir::relay(dovecot.pop3_addr())
        .tls_support(RELAY_POLICY, mode)
        .with_pki(pki)
        .unwrap()
        .raw("pki/upstream-ca.crt", fs::read(&pki.ca_cert).unwrap())
        .set(RELAY_POLICY, "/upstream", upstream)
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(
            STANDARD_PROFILE,
            "/trust/ca_files",
            json!(["pki/upstream-ca.crt"]),
        )
}

fn start(corpus: &Corpus, mode: &str) -> (Dovecot, Popgate, PathBuf) {
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let popgate = Popgate::start(tls_config(&dovecot, mode)).unwrap();
    let ca = dovecot.ca_cert().to_path_buf();
    (dovecot, popgate, ca)
}

#[test]
fn curl_over_stls_and_pop3s_retrieves_every_message_byte_identical() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Curl);
    let corpus = Corpus::with_big();
    let (dovecot, popgate, ca) = start(&corpus, "enabled");
    let account = dovecot.account();
    for (tls, addr) in [
        (ClientTls::Stls(ca.clone()), popgate.pop3_addr()),
        (ClientTls::Implicit(ca.clone()), popgate.pop3s_addr()),
    ] {
        for (i, message) in corpus.messages.iter().enumerate() {
            let got = clients::curl_retr(&account.at(addr), &tls, i + 1).unwrap();
            assert_bytes_eq(&got, &message.bytes, &format!("{tls:?} {}", message.name));
        }
    }
    // Both legs TLS in the summary line, with the upstream certificate judged valid.
    popgate
        .wait_for_log(r#""server_certificate":"valid""#, SESSION_END)
        .unwrap();
    let log = popgate.log_text();
    assert!(log.contains(r#""client_tls":"TLSv1_3/TLS13_"#), "{log}");
    assert!(log.contains(r#""server_tls":"TLSv1_3/TLS13_"#), "{log}");
}

#[test]
fn poplib_stls_and_pop3_ssl_retrieve_every_message_byte_identical() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let (dovecot, popgate, ca) = start(&corpus, "enabled");
    let account = dovecot.account();
    for (tls, addr) in [
        (ClientTls::Stls(ca.clone()), popgate.pop3_addr()),
        (ClientTls::Implicit(ca.clone()), popgate.pop3s_addr()),
    ] {
        let got = clients::poplib_fetch(&account.at(addr), &tls, PoplibAuth::UserPass).unwrap();
        assert_eq!(got.len(), corpus.len(), "{tls:?}");
        for (got, message) in got.iter().zip(&corpus.messages) {
            assert_bytes_eq(got, &message.bytes, &format!("{tls:?} {}", message.name));
        }
    }
}

#[test]
fn fetchmail_with_stls_and_with_ssl_retrieves_every_message_byte_identical() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Fetchmail);
    let corpus = Corpus::small();
    let (dovecot, popgate, ca) = start(&corpus, "enabled");
    let account = dovecot.account();
    for (tls, addr) in [
        (ClientTls::Stls(ca.clone()), popgate.pop3_addr()),
        (ClientTls::Implicit(ca.clone()), popgate.pop3s_addr()),
    ] {
        let got = clients::fetchmail_fetch(&account.at(addr), &tls, Retention::Keep).unwrap();
        assert_eq!(got.len(), corpus.len(), "{tls:?}");
        for (got, message) in got.iter().zip(&corpus.messages) {
            assert_bytes_eq(got, &message.bytes, &format!("{tls:?} {}", message.name));
        }
    }
}

#[test]
fn capa_offers_stls_before_tls_and_drops_it_once_tls_is_up() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let (dovecot, popgate, ca) = start(&corpus, "enabled");
    let mut plain = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    let capa = plain.multiline_command("CAPA").unwrap();
    assert!(
        capa.windows(6).any(|w| w == b"\r\nSTLS"),
        "{}",
        escape(&capa)
    );
    plain.quit();

    for (mode, addr) in [
        (ProbeMode::Stls, popgate.pop3_addr()),
        (ProbeMode::Implicit, popgate.pop3s_addr()),
    ] {
        let probe = tls_probe(addr, mode, &ca, ProbeVersions::Default, &["CAPA", "STLS"]).unwrap();
        assert!(probe.handshake_ok(), "{mode:?}: {probe:?}");
        let capa = &probe.responses[0];
        assert!(
            capa.starts_with("+OK") && capa.contains("\r\nUSER\r\n"),
            "{capa:?}"
        );
        assert!(
            !capa.contains("STLS"),
            "{mode:?}: CAPA after TLS offers STLS: {capa:?}"
        );
        assert!(probe.responses[1].starts_with("-ERR"), "{probe:?}");
    }
    drop(dovecot);
}

#[test]
fn forbidden_sasl_mechanism_is_absent_from_capa_and_refused() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = tls_config(&dovecot, "enabled").set(
        RELAY_ACTION,
        "/authentication/allow",
        json!(["USER", "SASL:PLAIN"]),
    );
    let popgate = Popgate::start(config).unwrap();
    let probe = tls_probe(
        popgate.pop3s_addr(),
        ProbeMode::Implicit,
        dovecot.ca_cert(),
        ProbeVersions::Default,
        &["CAPA", "AUTH LOGIN", "AUTH"],
    )
    .unwrap();
    assert!(probe.handshake_ok(), "{probe:?}");
    let capa = &probe.responses[0];
    let sasl = capa
        .lines()
        .find(|l| l.starts_with("SASL"))
        .unwrap_or_default();
    assert_eq!(sasl, "SASL PLAIN", "{capa:?}");
    assert!(
        probe.responses[1].starts_with("-ERR [AUTH]"),
        "{:?}",
        probe.responses[1]
    );
    let listed = &probe.responses[2];
    assert!(
        listed.contains("PLAIN") && !listed.contains("LOGIN"),
        "{listed:?}"
    );
}

#[test]
fn require_tls_refuses_plaintext_login_and_allows_it_after_stls() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = tls_config(&dovecot, "enabled").set(
        RELAY_ACTION,
        "/authentication/require_tls",
        json!(true),
    );
    let popgate = Popgate::start(config).unwrap();
    let mut plain = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    let user = plain.command("USER alice").unwrap();
    assert!(user.starts_with(b"-ERR [AUTH]"), "{}", escape(&user));
    plain.quit();
    let probe = tls_probe(
        popgate.pop3_addr(),
        ProbeMode::Stls,
        dovecot.ca_cert(),
        ProbeVersions::Default,
        &["USER alice", "PASS secret", "STAT"],
    )
    .unwrap();
    assert!(
        probe.responses.iter().all(|r| r.starts_with("+OK")),
        "{probe:?}"
    );
}

#[test]
fn profile_require_client_tls_lists_clients_and_except_exempts_them() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let listed = tls_config(&dovecot, "enabled").set(
        STANDARD_PROFILE,
        "/require_client_tls",
        json!(["127.0.0.0/8"]),
    );
    let popgate = Popgate::start(listed.clone()).unwrap();
    let mut plain = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    let user = plain.command("USER alice").unwrap();
    assert!(user.starts_with(b"-ERR [AUTH]"), "{}", escape(&user));
    drop(popgate);

    let exempted = listed.set(
        STANDARD_PROFILE,
        "/require_client_tls_except",
        json!(["127.0.0.1"]),
    );
    let popgate = Popgate::start(exempted).unwrap();
    Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr())).unwrap();
}

#[test]
fn required_serves_pop3s_only() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Curl);
    let corpus = Corpus::small();
    let (dovecot, popgate, ca) = start(&corpus, "required");
    let got = clients::curl_retr(
        &dovecot.account().at(popgate.pop3s_addr()),
        &ClientTls::Implicit(ca),
        1,
    )
    .unwrap();
    assert_bytes_eq(&got, &corpus.messages[0].bytes, "RETR 1 over pop3s");
    let log = popgate.log_text();
    assert!(log.contains(r#""kind":"pop3s""#), "{log}");
    assert!(
        !log.contains(r#""kind":"pop3""#),
        "a pop3 listener was bound: {log}"
    );
}

#[test]
fn starttls_on_pop3_refuses_user_before_stls() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = tls_config(&dovecot, "required")
        .set(RELAY_POLICY, "/starttls_on_pop3", json!(true))
        .set(
            RELAY_POLICY,
            "/ports/pop3",
            json!(popgate_tests::free_port()),
        );
    let popgate = Popgate::start(config).unwrap();
    let mut plain = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    let user = plain.command("USER alice").unwrap();
    assert_eq!(user, b"-ERR [AUTH] TLS required\r\n");
    let capa = plain.multiline_command("CAPA").unwrap();
    assert!(capa.starts_with(b"+OK"), "{}", escape(&capa));
    plain.quit();
    let probe = tls_probe(
        popgate.pop3_addr(),
        ProbeMode::Stls,
        dovecot.ca_cert(),
        ProbeVersions::Default,
        &["USER alice", "PASS secret", "STAT"],
    )
    .unwrap();
    assert!(
        probe.responses.iter().all(|r| r.starts_with("+OK")),
        "{probe:?}"
    );
}

#[test]
fn disabled_binds_no_pop3s_and_check_rejects_inspect() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = tls_config(&dovecot, "disabled");
    let dir = tempfile::tempdir().unwrap();
    config.write(dir.path()).unwrap();
    let check = popgate_cli([
        std::ffi::OsStr::new("check"),
        std::ffi::OsStr::new("--config"),
        dir.path().as_os_str(),
    ])
    .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr).into_owned()
        + &String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("inspect") && stderr.contains("disabled"),
        "{stderr}"
    );

    let allowed = config.set(RELAY_ACTION, "/tls/action", json!("allow"));
    let popgate = Popgate::start(allowed).unwrap();
    let log = popgate.log_text();
    assert!(
        !log.contains(r#""kind":"pop3s""#),
        "a pop3s listener was bound: {log}"
    );
    Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr())).unwrap();
}

#[test]
fn mandatory_upstream_tls_to_a_plaintext_server_is_refused_with_sys_perm() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::plaintext_only()).unwrap();
    let config = ConfigDir::relay(dovecot.pop3_addr()).set(
        STANDARD_PROFILE,
        "/upstream_tls",
        json!("mandatory"),
    );
    let popgate = Popgate::start(config).unwrap();
    let mut client = Pop3Client::connect_silent(popgate.pop3_addr()).unwrap();
    let reply = client.expect_close(SESSION_END).unwrap();
    assert!(reply.starts_with(b"-ERR [SYS/PERM]"), "{}", escape(&reply));
    popgate
        .wait_for_log("TLS to the server is required", SESSION_END)
        .unwrap();
}

#[test]
fn force_encrypt_makes_upstream_tls_mandatory() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::plaintext_only()).unwrap();
    let config = ConfigDir::relay(dovecot.pop3_addr()).set(
        STANDARD_PROFILE,
        "/force_encrypt",
        json!(["127.0.0.0/8"]),
    );
    let popgate = Popgate::start(config).unwrap();
    let mut client = Pop3Client::connect_silent(popgate.pop3_addr()).unwrap();
    let reply = client.expect_close(SESSION_END).unwrap();
    assert!(reply.starts_with(b"-ERR [SYS/PERM]"), "{}", escape(&reply));
}

#[test]
fn opportunistic_handshake_failure_retries_then_plaintext_then_holds_tls_down() {
    require_peers!(Peer::Openssl);
    // Offers STLS and says +OK, then closes instead of doing TLS.
    let script = Script::default()
        .on("CAPA", Reply::send("+OK\r\nSTLS\r\nUSER\r\nUIDL\r\n.\r\n"))
        .on("STLS", Reply::SendAndClose(b"+OK begin TLS\r\n".to_vec()));
    let server = FakeServer::start(script).unwrap();
    let config = ConfigDir::relay(server.addr())
        .set(STANDARD_PROFILE, "/upstream_tls", json!("opportunistic"))
        .set(STANDARD_PROFILE, "/tls_failure_holddown_s", json!(300));
    let popgate = Popgate::start(config).unwrap();
    let stls_count = || {
        server
            .received()
            .iter()
            .filter(|l| l.eq_ignore_ascii_case(b"STLS"))
            .count()
    };
    let (connections, stls) = (server.connections(), stls_count());
    assert_eq!(stls, 0);

    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    assert_eq!(client.greeting(), b"+OK fake POP3 server ready\r\n");
    client.login("alice", "secret").unwrap();
    assert_eq!(client.command("STAT").unwrap(), b"+OK 0 0\r\n");
    client.quit();
    assert_eq!(
        server.connections() - connections,
        3,
        "TLS, TLS again, then plaintext"
    );
    assert_eq!(stls_count(), 2);
    popgate
        .wait_for_log("retrying on a new connection", SESSION_END)
        .unwrap();
    popgate
        .wait_for_log("holding TLS down", SESSION_END)
        .unwrap();

    // Within the hold-down: plaintext at once, no STLS tried.
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client.login("alice", "secret").unwrap();
    assert_eq!(client.command("STAT").unwrap(), b"+OK 0 0\r\n");
    client.quit();
    assert_eq!(server.connections() - connections, 4);
    assert_eq!(stls_count(), 2, "STLS tried during the hold-down");
    popgate
        .wait_for_log("upstream TLS held down", SESSION_END)
        .unwrap();
}

#[test]
fn client_limited_to_tls_1_1_is_refused_on_pop3s_and_on_stls() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let (_dovecot, popgate, ca) = start(&corpus, "enabled");
    for (mode, addr) in [
        (ProbeMode::Implicit, popgate.pop3s_addr()),
        (ProbeMode::Stls, popgate.pop3_addr()),
    ] {
        let probe = tls_probe(addr, mode, &ca, ProbeVersions::UpToTls11, &["STAT"]).unwrap();
        assert!(
            !probe.handshake_ok(),
            "{mode:?}: TLS 1.1 accepted: {probe:?}"
        );
        assert!(probe.handshake.is_some(), "{mode:?}: {probe:?}");
        assert!(probe.responses.is_empty(), "{probe:?}");
    }
    popgate
        .wait_for_log("the handshake failed", SESSION_END)
        .unwrap();
    let log = popgate.log_text();
    let failures = log
        .lines()
        .filter(|l| {
            l.contains("\"message\":\"TLS failed\"")
                && l.contains("TLS toward the client failed: the handshake failed")
        })
        .count();
    assert!(failures >= 2, "{log}");
}

#[test]
fn commands_pipelined_after_stls_never_reach_the_server() {
    require_peers!(Peer::Openssl);
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = popgate_tests::TestPki::generate(pki_dir.path()).unwrap();
    let server = FakeServer::start(
        Script::default().on("CAPA", Reply::send("+OK\r\nSTLS\r\nUSER\r\n.\r\n")),
    )
    .unwrap();
    let config = ConfigDir::relay(server.addr())
        .tls_support(RELAY_POLICY, "enabled")
        .with_pki(&pki)
        .unwrap()
        .set(RELAY_ACTION, "/tls/action", json!("inspect"));
    let popgate = Popgate::start(config).unwrap();
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client.send(b"STLS\r\nUSER x\r\n").unwrap();
    let rest = client.expect_close(SESSION_END).unwrap();
    assert!(
        !rest.starts_with(b"+OK"),
        "STLS accepted: {}",
        escape(&rest)
    );
    popgate
        .wait_for_log("commands pipelined after STLS", SESSION_END)
        .unwrap();
    let received = server.received();
    assert!(
        !received
            .iter()
            .any(|l| l.starts_with(b"USER") || l.starts_with(b"STLS")),
        "the server got {received:?}"
    );
}

#[test]
fn server_bytes_injected_after_stls_ok_end_the_session() {
    require_peers!(Peer::Openssl);
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = popgate_tests::TestPki::generate(pki_dir.path()).unwrap();
    let server = FakeServer::start(
        Script::default()
            .on("CAPA", Reply::send("+OK\r\nSTLS\r\nUSER\r\n.\r\n"))
            .on("STLS", Reply::send("+OK\r\n+OK injected\r\n")),
    )
    .unwrap();
    let config = ConfigDir::relay(server.addr())
        .tls_support(RELAY_POLICY, "enabled")
        .with_pki(&pki)
        .unwrap()
        .set(RELAY_ACTION, "/tls/action", json!("inspect"));
    let popgate = Popgate::start(config).unwrap();
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    client.send(b"STLS\r\n").unwrap();
    let rest = client.expect_close(SESSION_END).unwrap();
    assert!(
        !rest.windows(8).any(|w| w == b"injected") && !rest.starts_with(b"+OK"),
        "{}",
        escape(&rest)
    );
    popgate
        .wait_for_log("bytes after +OK to STLS before the handshake", SESSION_END)
        .unwrap();
}
