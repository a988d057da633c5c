//! Policy selection by the client's SNI (SPEC §4: domain entries in `to` match the SNI):
//! two policies share one pop3s port and differ only by server name.

use std::process::Command;
use std::time::Duration;

use popgate_tests::popgate::{RELAY_ACTION, RELAY_POLICY, STANDARD_PROFILE};
use popgate_tests::process::run_with_timeout;
use popgate_tests::{
    assert_bytes_eq, require_peers, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer, Popgate,
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
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let pki = dovecot.pki().unwrap();
    let upstream = json!({ "host": "127.0.0.1", "pop3": dovecot.pop3_addr().port(),
                           "pop3s": dovecot.pop3s_addr().port() });
    let config = ConfigDir::relay(dovecot.pop3_addr())
        .tls_support(RELAY_POLICY, "required")
        .with_pki(pki)
        .unwrap()
        .raw("pki/upstream-ca.crt", std::fs::read(&pki.ca_cert).unwrap())
        .set(RELAY_POLICY, "/upstream", upstream.clone())
        .set(RELAY_POLICY, "/to", json!(["*.mail.example"]))
        .set(RELAY_ACTION, "/tls/action", json!("inspect"))
        .set(
            STANDARD_PROFILE,
            "/trust/ca_files",
            json!(["pki/upstream-ca.crt"]),
        )
        // The SNI names the server when the upstream is an address, and Dovecot's test
        // certificate does not carry these made-up names: check the chain only.
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
