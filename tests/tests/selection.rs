//! Policy selection by the client's SNI (SPEC §4: domain entries in `to` match the SNI once
//! it is confirmed): two policies share one pop3s port and differ only by server name. With
//! `interception: none` a name is confirmed by the server's certificate (Dovecot's test
//! certificate names `localhost`); a name the server cannot prove is ignored, however well
//! it matches a policy (issue 13: domain entries fail closed).

use std::process::Command;
use std::time::Duration;

use popgate_tests::popgate::{RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::process::run_with_timeout;
use popgate_tests::{
    assert_bytes_eq, require_peers, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer, Popgate,
    TestPki,
};
use serde_json::json;

fn curl_pop3s_with_sni(name: &str, port: u16, user: &str, password: &str) -> std::process::Output {
    run_with_timeout(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "20", "--insecure"])
            .arg("--resolve")
            .arg(format!("{name}:{port}:127.0.0.1"))
            .arg("--user")
            .arg(format!("{user}:{password}"))
            .arg(format!("pop3s://{name}:{port}/1")),
        Duration::from_secs(30),
    )
    .unwrap()
}

#[test]
fn sni_chooses_between_policies_on_one_pop3s_port() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Curl);
    let corpus = Corpus::small();
    // Dovecot shows a certificate for pop.mail.example (a later ssl_cert wins).
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = &TestPki::generate_for(
        pki_dir.path(),
        "pop.mail.example",
        &["DNS:pop.mail.example"],
    )
    .unwrap();
    let options = DovecotOptions {
        extra_config: format!(
            "ssl_cert = <{}\nssl_key = <{}\n",
            pki.server_cert.display(),
            pki.server_key.display()
        ),
        ..DovecotOptions::default()
    };
    let dovecot = Dovecot::start(&corpus.messages, options).unwrap();
    let upstream = json!({ "host": "127.0.0.1", "pop3": dovecot.pop3_addr().port(),
                           "pop3s": dovecot.pop3s_addr().port() });
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .tls_support(RELAY_POLICY, "required")
        .with_pki(pki)
        .unwrap()
        .raw("pki/upstream-ca.crt", std::fs::read(&pki.ca_cert).unwrap())
        .set(RELAY_POLICY, "/upstream", upstream.clone())
        .set(
            RELAY_POLICY,
            "/to",
            json!(["pop.mail.example", "*.other.example"]),
        )
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(
            STANDARD_PROFILE,
            "/trust/ca_files",
            json!(["pki/upstream-ca.crt"]),
        )
        // Even with chain-only validation of the server leg, a name selects a policy only
        // when the certificate is valid for it.
        .set(
            STANDARD_PROFILE,
            "/certificate_validation",
            json!("chain-only"),
        );
    let port = config
        .value(RELAY_POLICY, "/ports/pop3s")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("relay policy has a pop3s port"));
    // A second policy on the same port for every other name, whose action drops TLS.
    let config = config
        .json(
            "policies/others.json",
            json!({ "name": "others", "enabled": true, "order": 20, "direction": "inbound",
                    "from": ["any"], "to": ["any"], "tls_support": "required",
                    "ports": { "pop3s": port }, "upstream": upstream,
                    "proxy_action": "Dropper" }),
        )
        .json(
            "actions/dropper.json",
            json!({ "name": "Dropper", "tls": { "action": "drop" } }),
        );
    let popgate = Popgate::start(config).unwrap();
    let port = port as u16;

    let served = curl_pop3s_with_sni("pop.mail.example", port, dovecot.user(), dovecot.password());
    assert!(
        served.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&served.stderr),
        popgate.log_text()
    );
    assert_bytes_eq(
        &served.stdout,
        &corpus.messages[0].bytes,
        "message 1 via the domain policy",
    );
    // The server's answer is remembered: the next connection claiming the name costs no
    // handshake with the server (one per connection would let clients make popgate
    // handshake at will).
    let again = curl_pop3s_with_sni("pop.mail.example", port, dovecot.user(), dovecot.password());
    assert!(again.status.success(), "{}", popgate.log_text());
    popgate
        .wait_for_log("SNI answer remembered", Duration::from_secs(10))
        .unwrap();

    // A name matching the domain policy that the server's certificate does not prove: a
    // client lying to pick a policy. Ignored: the connection is matched on addresses alone.
    let lied = curl_pop3s_with_sni(
        "pop.other.example",
        port,
        dovecot.user(),
        dovecot.password(),
    );
    assert!(
        !lied.status.success(),
        "an unconfirmed SNI picked the policy"
    );
    popgate
        .wait_for_log("SNI not confirmed", Duration::from_secs(10))
        .unwrap();

    let refused = curl_pop3s_with_sni(
        "pop.elsewhere.test",
        port,
        dovecot.user(),
        dovecot.password(),
    );
    assert!(!refused.status.success(), "the other policy drops TLS");
    popgate
        .wait_for_log("\"policy\":\"others\"", Duration::from_secs(10))
        .unwrap();
    let log = popgate.log_text();
    assert!(log.contains("\"policy\":\"relay\""), "{log}");
}
