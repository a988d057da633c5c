//! No plaintext made to look secure (SPEC §4 tls-profiles, last bullets; issue 13): an
//! outbound client is shown a Proxy Authority certificate only over a validated TLS server
//! leg. A server whose TLS an attacker breaks twice (opportunistic fallback, then the
//! hold-down) or `upstream_tls: none` gets the client what `invalid_certificate` says: a
//! certificate from the untrusted CA, or no TLS at all. And `upstream_tls: mandatory`
//! toward a plaintext-only server on the implicit-TLS port is `[SYS/PERM]`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use popgate_tests::popgate::{RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::tls_probe::{tls_probe, verifies_against, ProbeMode, ProbeVersions, TlsProbe};
use popgate_tests::{
    require_peers, ConfigDir, Corpus, Dovecot, DovecotOptions, FakeServer, Peer, Pop3Client,
    Popgate, Reply, Script, TestPki,
};
use serde_json::json;

const SESSION_END: Duration = Duration::from_secs(20);

/// A server that offers STLS and says `+OK` to it, then closes: every TLS attempt toward it
/// breaks, as an attacker on the path would make it. Its implicit-TLS "port" is the same
/// plaintext port, so an implicit handshake breaks too.
fn tls_breaking_server() -> FakeServer {
    let mut script =
        Script::default().on("CAPA", Reply::send("+OK\r\nSTLS\r\nUSER\r\nUIDL\r\n.\r\n"));
    for _ in 0..8 {
        script = script.on("STLS", Reply::SendAndClose(b"+OK begin TLS\r\n".to_vec()));
    }
    FakeServer::start(script).unwrap()
}

/// An outbound policy terminating TLS on both ports, relaying to `upstream` (`host:port`).
fn outbound(upstream: impl ToString, upstream_tls: &str, invalid_certificate: &str) -> ConfigDir {
    ConfigDir::relay(upstream)
        .tls_support(RELAY_POLICY, "enabled")
        .with_proxy_authority()
        .unwrap()
        .set(RELAY_POLICY, "/direction", json!("outbound"))
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(STANDARD_PROFILE, "/upstream_tls", json!(upstream_tls))
        .set(
            STANDARD_PROFILE,
            "/invalid_certificate",
            json!(invalid_certificate),
        )
}

/// Writes a PKI file of `config` where a client can read it.
fn client_file(config: &ConfigDir, file: &str, dir: &Path) -> PathBuf {
    let path = dir.join(file.replace('/', "_"));
    fs::write(&path, config.raw_file(file).unwrap()).unwrap();
    path
}

fn probe(popgate: &Popgate, mode: ProbeMode, ca: &Path) -> TlsProbe {
    let addr = match mode {
        ProbeMode::Implicit => popgate.pop3s_addr(),
        ProbeMode::Stls => popgate.pop3_addr(),
    };
    let login_then_stat = ["USER alice", "PASS secret", "STAT"];
    tls_probe(addr, mode, ca, ProbeVersions::Default, &login_then_stat).unwrap()
}

/// The client trusting the Proxy Authority fails its handshake; trusting the untrusted CA
/// instead it gets through, and the leaf it saw does not verify against `pki/ca.crt`.
fn assert_untrusted_certificate(popgate: &Popgate, mode: ProbeMode, ca: &Path, untrusted: &Path) {
    let trusting_authority = probe(popgate, mode, ca);
    assert!(
        !trusting_authority.handshake_ok(),
        "{mode:?}: plaintext server leg shown with a Proxy Authority certificate: \
         {trusting_authority:?}"
    );
    assert!(
        trusting_authority
            .handshake
            .as_deref()
            .is_some_and(|h| h.contains("CERTIFICATE_VERIFY_FAILED")),
        "{mode:?}: {trusting_authority:?}"
    );
    let trusting_untrusted = probe(popgate, mode, untrusted);
    assert!(
        trusting_untrusted.handshake_ok(),
        "{mode:?}: {trusting_untrusted:?}"
    );
    assert_eq!(
        trusting_untrusted.responses,
        ["+OK\r\n", "+OK\r\n", "+OK 0 0\r\n"],
        "{mode:?}: the session itself still works"
    );
    let leaf = trusting_untrusted.peer_cert_pem.unwrap();
    assert!(!verifies_against(&leaf, ca).unwrap(), "{mode:?}");
    assert!(verifies_against(&leaf, untrusted).unwrap(), "{mode:?}");
}

#[test]
fn opportunistic_fallback_never_shows_a_proxy_authority_certificate() {
    require_peers!(Peer::Openssl, Peer::Python3);
    let server = tls_breaking_server();
    let config = outbound(server.addr(), "opportunistic", "mirror-untrusted");
    let files = tempfile::tempdir().unwrap();
    let ca = client_file(&config, "pki/ca.crt", files.path());
    let untrusted = client_file(&config, "pki/untrusted-ca.crt", files.path());
    let popgate = Popgate::start(config).unwrap();

    // Implicit TLS first: two broken handshakes, then plaintext and the hold-down.
    assert_untrusted_certificate(&popgate, ProbeMode::Implicit, &ca, &untrusted);
    popgate
        .wait_for_log("upstream TLS failed twice", SESSION_END)
        .unwrap();
    // Within the hold-down, over STLS: still never the Proxy Authority.
    assert_untrusted_certificate(&popgate, ProbeMode::Stls, &ca, &untrusted);
    popgate
        .wait_for_log("upstream TLS held down", SESSION_END)
        .unwrap();
}

#[test]
fn upstream_tls_none_never_shows_a_proxy_authority_certificate() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = outbound(dovecot.pop3_addr(), "none", "mirror-untrusted");
    let files = tempfile::tempdir().unwrap();
    let ca = client_file(&config, "pki/ca.crt", files.path());
    let untrusted = client_file(&config, "pki/untrusted-ca.crt", files.path());
    let popgate = Popgate::start(config).unwrap();
    for mode in [ProbeMode::Implicit, ProbeMode::Stls] {
        let trusting_authority = probe(&popgate, mode, &ca);
        assert!(!trusting_authority.handshake_ok(), "{trusting_authority:?}");
        let trusting_untrusted = tls_probe(
            match mode {
                ProbeMode::Implicit => popgate.pop3s_addr(),
                ProbeMode::Stls => popgate.pop3_addr(),
            },
            mode,
            &untrusted,
            ProbeVersions::Default,
            &[
                &format!("USER {}", dovecot.user()),
                &format!("PASS {}", dovecot.password()),
                "STAT",
            ],
        )
        .unwrap();
        assert!(trusting_untrusted.handshake_ok(), "{trusting_untrusted:?}");
        assert!(
            trusting_untrusted.responses[2].starts_with("+OK"),
            "{trusting_untrusted:?}"
        );
        let leaf = trusting_untrusted.peer_cert_pem.unwrap();
        assert!(!verifies_against(&leaf, &ca).unwrap(), "{mode:?}");
    }
}

#[test]
fn upstream_tls_none_with_block_refuses_the_clients_tls() {
    require_peers!(Peer::Openssl, Peer::Python3);
    let server = tls_breaking_server();
    let config = outbound(server.addr(), "none", "block");
    let files = tempfile::tempdir().unwrap();
    let ca = client_file(&config, "pki/ca.crt", files.path());
    let untrusted = client_file(&config, "pki/untrusted-ca.crt", files.path());
    let popgate = Popgate::start(config).unwrap();
    for mode in [ProbeMode::Implicit, ProbeMode::Stls] {
        for trusted in [&ca, &untrusted] {
            let seen = probe(&popgate, mode, trusted);
            assert!(!seen.handshake_ok(), "{mode:?}: {seen:?}");
            assert_eq!(seen.peer_cert_pem, None, "{mode:?}: {seen:?}");
        }
    }
    popgate
        .wait_for_log("invalid_certificate is block", SESSION_END)
        .unwrap();
    // On the plain port the client hears it before any handshake: STLS is neither offered
    // nor answered `+OK`.
    let mut client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    let capa = client.multiline_command("CAPA").unwrap();
    assert!(!String::from_utf8_lossy(&capa).contains("STLS"), "{capa:?}");
    let reply = client.command("STLS").unwrap();
    assert!(
        reply.starts_with(b"-ERR STLS not available"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[test]
fn mandatory_upstream_tls_on_the_implicit_port_to_a_plaintext_server_is_sys_perm() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::plaintext_only()).unwrap();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(pki_dir.path()).unwrap();
    // Inbound: the client sees the Proxy Server certificate (Dovecot's test PKI), so it can
    // finish its handshake and read the refusal. The "pop3s" server port is plaintext.
    let upstream = json!({ "host": "127.0.0.1", "pop3": dovecot.pop3_addr().port(),
                           "pop3s": dovecot.pop3_addr().port() });
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .tls_support(RELAY_POLICY, "required")
        .with_pki(&pki)
        .unwrap()
        .set(RELAY_POLICY, "/upstream", upstream)
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(STANDARD_PROFILE, "/upstream_tls", json!("mandatory"));
    let popgate = Popgate::start(config).unwrap();
    let seen = tls_probe(
        popgate.pop3s_addr(),
        ProbeMode::Implicit,
        &pki.ca_cert,
        ProbeVersions::Default,
        &[],
    )
    .unwrap();
    assert!(seen.handshake_ok(), "{seen:?}");
    let greeting = seen.greeting.unwrap_or_default();
    assert!(greeting.starts_with("-ERR [SYS/PERM]"), "{greeting:?}");
}
