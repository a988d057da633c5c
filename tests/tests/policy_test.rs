//! `popgate policy test` (SPEC §6) agrees with what the running daemon does for the same
//! connections: the same policy for a matching connection (seen in `popgate sessions`),
//! refusal when none matches (the client's `-ERR`), and the skipped policies explained.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use popgate_tests::popgate::RELAY_POLICY;
use popgate_tests::{
    free_port, require_peers, wait_until, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer,
    Pop3Client, Popgate,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// The relay, a LAN-only policy before it on the same port, a disabled one before both,
/// and a LAN-only policy alone on its own port.
fn config(dovecot: &Dovecot) -> (ConfigDir, u16, u16) {
    let base = ConfigDir::relay(dovecot.pop3_addr());
    let relay = base.value(RELAY_POLICY, "").cloned().unwrap();
    let port = relay["ports"]["pop3"].as_u64().unwrap() as u16;
    let lan_port = free_port();
    let variant = |name: &str, order: u32, enabled: bool, from: Value, port: u16| {
        let mut policy = relay.clone();
        policy["name"] = json!(name);
        policy["order"] = json!(order);
        policy["enabled"] = json!(enabled);
        policy["from"] = from;
        policy["ports"] = json!({ "pop3": port });
        policy
    };
    let config = base
        .json(
            "policies/off.json",
            variant("off", 1, false, json!(["any"]), port),
        )
        .json(
            "policies/lan.json",
            variant("lan-only", 5, true, json!(["10.0.0.0/8"]), port),
        )
        .json(
            "policies/lan-port.json",
            variant("lan-port", 30, true, json!(["10.0.0.0/8"]), lan_port),
        );
    (config, port, lan_port)
}

fn dry_run(popgate: &Popgate, port: u16) -> (Option<i32>, Value) {
    let output = popgate
        .cli([
            "policy",
            "test",
            "--from",
            "127.0.0.1",
            "--to",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--json",
        ])
        .unwrap();
    let value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    (output.status.code(), value)
}

#[test]
fn policy_test_agrees_with_the_daemon_for_the_same_connections() {
    require_peers!(Peer::Dovecot);
    let dovecot = Dovecot::start(&Corpus::small().messages, DovecotOptions::default()).unwrap();
    let (config, port, lan_port) = config(&dovecot);
    let popgate = Popgate::start(config).unwrap();

    let (code, run) = dry_run(&popgate, port);
    assert_eq!(code, Some(0), "{run:#}");
    assert_eq!(run["matched"], true);
    assert_eq!(run["policy"], "relay");
    assert_eq!(run["action"], "Relay");
    assert_eq!(run["tls_profile"], "TLS-Client.Standard");
    assert_eq!(run["tls_support"], "disabled");
    assert_eq!(run["client_tls"], "none");
    assert_eq!(run["server_tls"], "none");
    assert_eq!(run["upstream"], dovecot.pop3_addr().to_string());
    assert_eq!(run["certificate"], json!({ "issuer": null, "names": [] }));
    assert_eq!(
        run["skipped"],
        json!([
            { "policy": "off", "reason": "disabled" },
            { "policy": "lan-only", "reason": "client 127.0.0.1 is not in from" },
        ])
    );
    // The daemon, same connection: the session runs under the same policy.
    let account = dovecot.account().at(local(port));
    let mut client = Pop3Client::logged_in(&account).unwrap();
    assert_eq!(client.command("NOOP").unwrap(), b"+OK\r\n");
    wait_until("the session in the registry", WAIT, || {
        let output = popgate.cli(["sessions", "--json", "--user", dovecot.user()])?;
        let sessions: Value = serde_json::from_slice(&output.stdout)?;
        Ok(sessions
            .as_array()
            .is_some_and(|s| s.len() == 1 && s[0]["policy"] == run["policy"]))
    })
    .unwrap();

    let (code, none) = dry_run(&popgate, lan_port);
    assert_eq!(code, Some(1), "no policy matches: {none:#}");
    assert_eq!(none["matched"], false);
    assert_eq!(none["policy"], Value::Null);
    let skipped = none["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["policy"] == "lan-port" && s["reason"] == "client 127.0.0.1 is not in from"),
        "{none:#}"
    );
    // The daemon, same connection: refused.
    let mut refused = TcpStream::connect(local(lan_port)).unwrap();
    refused.set_read_timeout(Some(WAIT)).unwrap();
    let mut reply = String::new();
    refused.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "-ERR [SYS/PERM] connection refused by policy\r\n");

    let text = popgate
        .cli([
            "policy",
            "test",
            "--from",
            "127.0.0.1",
            "--to",
            "127.0.0.1",
            "--port",
            &lan_port.to_string(),
        ])
        .unwrap();
    assert_eq!(text.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("no policy matches"),
        "{text:?}"
    );
}

/// 127.0.0.1 on `port`.
fn local(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}
