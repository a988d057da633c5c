//! Outbound certificates (SPEC §1, §4 `invalid_certificate`): the client of an outbound
//! policy is shown a leaf minted on the fly by the Proxy Authority (`pki/ca.*`, made by
//! `popgate ca init`) mirroring the upstream certificate; an invalid upstream certificate is
//! mirrored with the untrusted CA (`mirror-untrusted`) or refused (`block`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use popgate_tests::clients;
use popgate_tests::popgate::{RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::strict_x509;
use popgate_tests::tls_probe::{
    certificate_text, tls_probe, verifies_against, ProbeMode, ProbeVersions,
};
use popgate_tests::{
    assert_bytes_eq, require_peers, ClientTls, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer,
    Popgate,
};
use serde_json::json;

const SESSION_END: Duration = Duration::from_secs(20);

/// An outbound policy terminating TLS in front of Dovecot; the upstream certificate is
/// trusted through `trust.ca_files` when `trust_upstream`, else only system roots are.
fn outbound(dovecot: &Dovecot, trust_upstream: bool, invalid_certificate: &str) -> ConfigDir {
    let upstream = json!({
        "host": "127.0.0.1",
        "pop3": dovecot.pop3_addr().port(),
        "pop3s": dovecot.pop3s_addr().port(),
    });
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .tls_support(RELAY_POLICY, "enabled")
        .with_proxy_authority()
        .unwrap()
        .set(RELAY_POLICY, "/direction", json!("outbound"))
        .set(RELAY_POLICY, "/upstream", upstream)
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(
            STANDARD_PROFILE,
            "/invalid_certificate",
            json!(invalid_certificate),
        );
    if !trust_upstream {
        return config;
    }
    config
        .raw("pki/upstream-ca.crt", fs::read(dovecot.ca_cert()).unwrap())
        .set(
            STANDARD_PROFILE,
            "/trust/ca_files",
            json!(["pki/upstream-ca.crt"]),
        )
}

/// Writes a PKI file of `config` where a client can read it.
fn client_file(config: &ConfigDir, file: &str, dir: &Path) -> PathBuf {
    let path = dir.join(file.replace('/', "_"));
    fs::write(&path, config.raw_file(file).unwrap()).unwrap();
    path
}

#[test]
fn outbound_client_gets_a_leaf_minted_by_the_proxy_authority_mirroring_the_upstream() {
    require_peers!(
        Peer::Dovecot,
        Peer::Openssl,
        Peer::Curl,
        Peer::Python3,
        Peer::PythonCryptography
    );
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = outbound(&dovecot, true, "mirror-untrusted");
    let files = tempfile::tempdir().unwrap();
    let ca = client_file(&config, "pki/ca.crt", files.path());
    let popgate = Popgate::start(config).unwrap();
    let account = dovecot.account();

    for (tls, addr) in [
        (ClientTls::Implicit(ca.clone()), popgate.pop3s_addr()),
        (ClientTls::Stls(ca.clone()), popgate.pop3_addr()),
    ] {
        for (i, message) in corpus.messages.iter().enumerate() {
            let got = clients::curl_retr(&account.at(addr), &tls, i + 1).unwrap();
            assert_bytes_eq(&got, &message.bytes, &format!("{tls:?} {}", message.name));
        }
    }
    for (mode, addr) in [
        (ProbeMode::Implicit, popgate.pop3s_addr()),
        (ProbeMode::Stls, popgate.pop3_addr()),
    ] {
        let probe = tls_probe(addr, mode, &ca, ProbeVersions::Default, &["NOOP"]).unwrap();
        assert!(probe.handshake_ok(), "{mode:?}: {probe:?}");
        let leaf = probe.peer_cert_pem.unwrap();
        // SPEC §4: minted leaves are valid DER (strict parsers refuse `cA FALSE`).
        let strict = strict_x509::check(leaf.as_bytes()).unwrap();
        assert_eq!(strict, ["ok certificate CN=localhost"], "{mode:?}");
        let text = certificate_text(&leaf).unwrap();
        // Dovecot's test certificate: localhost, 127.0.0.1, ::1.
        assert!(
            text.contains("DNS:localhost")
                && text.contains("IP Address:127.0.0.1")
                && text.contains("IP Address:0:0:0:0:0:0:0:1"),
            "{mode:?}: {text}"
        );
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(verifies_against(&leaf, &ca).unwrap(), "{mode:?}: {text}");
        assert!(
            !verifies_against(&leaf, dovecot.ca_cert()).unwrap(),
            "not the upstream's own certificate"
        );
    }
    let log = popgate.log_text();
    assert!(log.contains(r#""server_certificate":"valid""#), "{log}");
    assert!(log.contains(r#""server_subject":"CN=localhost""#), "{log}");
}

#[test]
fn invalid_upstream_certificate_is_mirrored_with_the_untrusted_ca() {
    require_peers!(
        Peer::Dovecot,
        Peer::Openssl,
        Peer::Curl,
        Peer::Python3,
        Peer::PythonCryptography
    );
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = outbound(&dovecot, false, "mirror-untrusted");
    let files = tempfile::tempdir().unwrap();
    let ca = client_file(&config, "pki/ca.crt", files.path());
    let untrusted = client_file(&config, "pki/untrusted-ca.crt", files.path());
    let popgate = Popgate::start(config).unwrap();

    let curl = clients::curl_output(
        &dovecot.account().at(popgate.pop3s_addr()),
        &ClientTls::Implicit(ca.clone()),
        "1",
    )
    .unwrap();
    // 60: peer certificate cannot be authenticated with known CA certificates.
    assert_eq!(curl.status.code(), Some(60), "{curl:?}");

    let probe = tls_probe(
        popgate.pop3s_addr(),
        ProbeMode::Implicit,
        &ca,
        ProbeVersions::Default,
        &[],
    )
    .unwrap();
    let failure = probe.handshake.clone().unwrap_or_default();
    assert!(failure.contains("CERTIFICATE_VERIFY_FAILED"), "{probe:?}");

    // The same client trusting the untrusted CA sees the mirrored names.
    let probe = tls_probe(
        popgate.pop3s_addr(),
        ProbeMode::Implicit,
        &untrusted,
        ProbeVersions::Default,
        &["NOOP"],
    )
    .unwrap();
    assert!(probe.handshake_ok(), "{probe:?}");
    let leaf = probe.peer_cert_pem.unwrap();
    assert_eq!(
        strict_x509::check(leaf.as_bytes()).unwrap(),
        ["ok certificate CN=localhost"]
    );
    let text = certificate_text(&leaf).unwrap();
    assert!(text.contains("DNS:localhost"), "{text}");
    popgate.wait_for_log("invalid: ", SESSION_END).unwrap();
}

#[test]
fn invalid_upstream_certificate_with_block_is_refused_and_logged() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = outbound(&dovecot, false, "block");
    let files = tempfile::tempdir().unwrap();
    let ca = client_file(&config, "pki/ca.crt", files.path());
    let popgate = Popgate::start(config).unwrap();
    let probe = tls_probe(
        popgate.pop3s_addr(),
        ProbeMode::Implicit,
        &ca,
        ProbeVersions::Default,
        &["USER alice"],
    )
    .unwrap();
    let greeting = probe.greeting.clone().unwrap_or_default();
    assert!(greeting.starts_with("-ERR [SYS/PERM]"), "{probe:?}");
    popgate
        .wait_for_log("upstream certificate refused: invalid", SESSION_END)
        .unwrap();
}

#[test]
fn plaintext_server_leg_gets_an_untrusted_leaf_minted_for_the_upstream_host() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = outbound(&dovecot, true, "mirror-untrusted").set(
        STANDARD_PROFILE,
        "/upstream_tls",
        json!("none"),
    );
    let files = tempfile::tempdir().unwrap();
    let ca = client_file(&config, "pki/ca.crt", files.path());
    // SPEC §4: a plaintext server leg never gets a Proxy Authority certificate; with
    // `mirror-untrusted` the untrusted CA signs the leaf (see also trust_downgrade.rs).
    let untrusted = client_file(&config, "pki/untrusted-ca.crt", files.path());
    let popgate = Popgate::start(config).unwrap();
    let probe = tls_probe(
        popgate.pop3s_addr(),
        ProbeMode::Implicit,
        &untrusted,
        ProbeVersions::Default,
        &["USER alice", "PASS secret", "STAT"],
    )
    .unwrap();
    assert!(probe.handshake_ok(), "{probe:?}");
    assert!(
        probe.responses.iter().all(|r| r.starts_with("+OK")),
        "{probe:?}"
    );
    let leaf = probe.peer_cert_pem.unwrap();
    assert!(
        !verifies_against(&leaf, &ca).unwrap(),
        "signed by the Proxy Authority"
    );
    let text = certificate_text(&leaf).unwrap();
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    assert!(!text.contains("DNS:localhost"), "{text}");
    popgate
        .wait_for_log(r#""server_tls":"none""#, SESSION_END)
        .unwrap();
}

/// One implicit-TLS session with rustls's default (resuming) client: greeting, QUIT; how
/// the handshake went.
fn resuming_session(
    addr: std::net::SocketAddr,
    tls: &std::sync::Arc<rustls::ClientConfig>,
) -> rustls::HandshakeKind {
    use std::io::{BufRead, BufReader, Write};
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(SESSION_END)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
    let mut stream = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let mut line = String::new();
    stream.read_line(&mut line).unwrap();
    assert!(line.starts_with("+OK"), "greeting {line:?}");
    stream.get_mut().write_all(b"QUIT\r\n").unwrap();
    line.clear();
    stream.read_line(&mut line).unwrap();
    assert!(line.starts_with("+OK"), "QUIT answered {line:?}");
    stream.get_ref().conn.handshake_kind().unwrap()
}

#[test]
fn a_returning_client_resumes_its_tls_session_after_its_last_session_ended() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let config = outbound(&dovecot, true, "mirror-untrusted");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut config.raw_file("pki/ca.crt").unwrap()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let popgate = Popgate::start(config).unwrap();
    let closed = || popgate.log_text().matches("\"session closed\"").count();
    let before = closed();

    assert_eq!(
        resuming_session(popgate.pop3s_addr(), &tls),
        rustls::HandshakeKind::Full
    );
    // No session of popgate's is left that uses the minted leaf's configuration.
    popgate_tests::wait_until("the first session's end", SESSION_END, || {
        Ok(closed() > before)
    })
    .unwrap();
    assert_eq!(
        resuming_session(popgate.pop3s_addr(), &tls),
        rustls::HandshakeKind::Resumed,
        "{}",
        popgate.log_text()
    );
}
