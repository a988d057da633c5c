//! The control socket against a running daemon with real Dovecot (SPEC §6 `status`,
//! `sessions`, `sessions kill`): generation and reload results, live sessions, killing
//! exactly one, and the exit codes scripts rely on (1 unknown id, 3 unreachable).

use std::time::Duration;

use popgate_tests::live_config::write_json;
use popgate_tests::popgate::popgate_cli;
use popgate_tests::{require_peers, wait_until, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer};
use popgate_tests::{Pop3Client, Popgate};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn json_of(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn status(popgate: &Popgate) -> Value {
    json_of(&popgate.cli(["status", "--json"]).unwrap())
}

fn sessions(popgate: &Popgate) -> Vec<Value> {
    let value = json_of(&popgate.cli(["sessions", "--json"]).unwrap());
    value.as_array().unwrap().clone()
}

fn local_port(client: &Pop3Client) -> String {
    client
        .stream_clone()
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

#[test]
fn status_counts_generations_and_shows_a_rejected_reloads_errors() {
    require_peers!(Peer::Dovecot);
    let dovecot = Dovecot::start(&Corpus::small().messages, DovecotOptions::default()).unwrap();
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], popgate_tests::free_port()));
    let config = ConfigDir::relay(dovecot.pop3_addr()).set(
        "popgate.json",
        "/metrics",
        json!({ "listen": metrics.to_string() }),
    );
    let mut popgate = Popgate::start(config).unwrap();
    let first = status(&popgate);
    assert_eq!(first["pid"], popgate.pid());
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(first["generation"], 1);
    assert_eq!(first["last_reload"]["result"], "ok");
    assert_eq!(first["listeners"], json!([popgate.pop3_addr().to_string()]));
    assert_eq!(first["sessions_active"], 0);
    assert_eq!(first["quarantine_bytes"], 0);

    // The SIGHUP handler is installed once the daemon says it runs; before, SIGHUP kills.
    popgate.wait_for_log("popgate running", WAIT).unwrap();
    popgate.signal(libc::SIGHUP).unwrap();
    wait_until("generation 2", WAIT, || {
        Ok(status(&popgate)["generation"] == 2)
    })
    .unwrap();

    write_json(
        &popgate.config_dir(),
        "policies/broken.json",
        &json!({ "name": "broken", "order": "first" }),
    )
    .unwrap();
    wait_until("a rejected reload", WAIT, || {
        Ok(status(&popgate)["last_reload"]["result"] == "rejected")
    })
    .unwrap();
    let rejected = status(&popgate);
    assert_eq!(rejected["generation"], 2, "a rejected reload leaves it");
    let errors = rejected["last_reload"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e
            .as_str()
            .unwrap()
            .starts_with("policies/broken.json: .order:")),
        "{rejected:#}"
    );
    let exposition = scrape(metrics);
    assert!(
        exposition.contains("\npopgate_config_generation 2\n"),
        "{exposition}"
    );
    assert!(
        exposition.contains("popgate_config_reloads_total{result=\"failed\"} 1"),
        "{exposition}"
    );
    let text = popgate.cli(["status"]).unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("generation") && text.contains("rejected"),
        "{text}"
    );
}

#[test]
fn sessions_lists_logged_in_sessions_and_kill_ends_only_that_one() {
    require_peers!(Peer::Dovecot);
    let dovecot = Dovecot::start(&Corpus::small().messages, DovecotOptions::default()).unwrap();
    let popgate = Popgate::start(ConfigDir::relay(dovecot.pop3_addr())).unwrap();
    let account = dovecot.account().at(popgate.pop3_addr());
    let mut victim = Pop3Client::logged_in(&account).unwrap();
    let mut bystander = Pop3Client::logged_in(&account).unwrap();
    victim.retr(1).unwrap();
    let (victim_addr, bystander_addr) = (local_port(&victim), local_port(&bystander));

    // Both sessions are listed once the registry has seen their logins.
    wait_until("two sessions", WAIT, || Ok(sessions(&popgate).len() == 2)).unwrap();
    let listed = sessions(&popgate);
    let find = |addr: &str| listed.iter().find(|s| s["client"] == addr).unwrap().clone();
    let session = find(&victim_addr);
    assert_eq!(session["policy"], "relay");
    assert_eq!(session["action"], "Relay");
    assert_eq!(session["user"], dovecot.user());
    assert_eq!(session["state"], "transaction");
    assert_eq!(
        session["original_destination"],
        popgate.pop3_addr().to_string()
    );
    assert_eq!(session["client_tls"], "none");
    assert_eq!(session["messages"]["total"], 1);
    assert!(
        session["bytes_from_server"].as_u64().unwrap() > 100,
        "{session:#}"
    );
    for key in ["server_tls", "bytes_from_client", "age_s", "id"] {
        assert!(session.get(key).is_some(), "{key} missing: {session:#}");
    }
    let filtered = popgate
        .cli(["sessions", "--json", "--user", "nobody-else"])
        .unwrap();
    assert_eq!(json_of(&filtered), json!([]));
    let table = popgate.cli(["sessions"]).unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains(&victim_addr));

    let id = session["id"].to_string();
    let killed = popgate.cli(["sessions", "kill", &id]).unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let ending = victim.expect_close(WAIT).unwrap();
    assert_eq!(
        ending,
        b"-ERR [SYS/TEMP] session ended by the administrator\r\n",
        "{}",
        String::from_utf8_lossy(&ending)
    );
    assert_eq!(bystander.command("NOOP").unwrap(), b"+OK\r\n");
    wait_until("the killed session to leave the list", WAIT, || {
        Ok(sessions(&popgate).len() == 1)
    })
    .unwrap();
    assert_eq!(sessions(&popgate)[0]["client"], bystander_addr.as_str());

    let unknown = popgate.cli(["sessions", "kill", "999999"]).unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr).trim(),
        "popgate: no session 999999"
    );
}

#[test]
fn status_and_sessions_exit_3_when_the_daemon_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody-home.sock");
    for command in [&["status"][..], &["sessions"], &["sessions", "kill", "1"]] {
        let mut args: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
        args.extend(["--socket".into(), socket.display().to_string()]);
        let output = popgate_cli(&args).unwrap();
        assert_eq!(output.status.code(), Some(3), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with(&format!(
                "popgate: the daemon is not reachable on {}",
                socket.display()
            )),
            "{stderr}"
        );
    }
}

/// The `/metrics` text (a bare HTTP/1.1 GET; the daemon closes after answering).
fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: popgate\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
