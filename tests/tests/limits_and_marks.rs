//! Per-client limits and upstream socket marks through the real binary (SPEC §3, §4; issue
//! 13): `max_connections_per_client` counts an IPv6 client by its `client_ipv6_prefix`
//! (a /64 is one client, so rotating addresses inside it gains nothing), and an explicitly
//! configured `upstream_mark` is set on upstream sockets with `interception: none` too,
//! while the default mark stays for tproxy/redirect only.

use std::process::Command;
use std::time::Duration;

use popgate_tests::netns::{Feature, Topology, GATEWAY_LAN_V6};
use popgate_tests::process::run_ok;
use popgate_tests::{
    require_netns, require_peers, ConfigDir, FakeServer, Peer, Pop3Client, Popgate, Script,
};
use serde_json::{json, Value};

/// Opens one connection from each source address in turn (keeping them all open) and
/// prints the first line each got, as a JSON array.
const CLIENTS: &str = r#"
import json, socket, sys
port = int(sys.argv[1]); target = sys.argv[2]
held, lines = [], []
for source in sys.argv[3:]:
    s = socket.socket(socket.AF_INET6)
    s.settimeout(20)
    s.bind((source, 0))
    s.connect((target, port))
    lines.append(s.makefile("rb").readline().decode("latin-1"))
    held.append(s)
print(json.dumps(lines))
"#;

#[test]
fn ipv6_clients_in_one_prefix_share_their_connection_limit() {
    require_netns!(Feature::Root, Feature::Ip);
    require_peers!(Peer::Python3);
    let topology = Topology::create().unwrap();
    // A second address in the client's /64, and one in another /64 routed to it.
    let client = &topology.client;
    client
        .run(
            "ip",
            &["-6", "addr", "add", "fd00:1::3/64", "dev", "eth0", "nodad"],
        )
        .unwrap();
    client
        .run(
            "ip",
            &[
                "-6",
                "addr",
                "add",
                "fd00:1:0:1::2/64",
                "dev",
                "eth0",
                "nodad",
            ],
        )
        .unwrap();
    topology
        .gateway
        .run(
            "ip",
            &[
                "-6",
                "route",
                "add",
                "fd00:1:0:1::/64",
                "via",
                "fd00:1::2",
                "dev",
                "lan0",
            ],
        )
        .unwrap();
    let server = topology
        .gateway
        .enter(|| FakeServer::start(Script::default()))
        .unwrap()
        .unwrap();
    let config = ConfigDir::relay(server.addr())
        .set(
            "popgate.json",
            "/bind_addresses",
            json!([GATEWAY_LAN_V6.to_string()]),
        )
        .set(
            "popgate.json",
            "/limits",
            json!({ "max_connections_per_client": 1 }),
        );
    let port = config
        .value("policies/relay.json", "/ports/pop3")
        .and_then(Value::as_u64)
        .unwrap();
    let popgate = Popgate::start_in_netns(config, topology.gateway.name()).unwrap();
    let out = run_ok(
        client.command("python3").args([
            "-c",
            CLIENTS,
            &port.to_string(),
            &GATEWAY_LAN_V6.to_string(),
            "fd00:1::2",
            "fd00:1::3",
            "fd00:1:0:1::2",
        ]),
        Duration::from_secs(20),
    )
    .unwrap();
    let lines: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lines[0], "+OK fake POP3 server ready\r\n", "{lines:?}");
    assert!(
        lines[1].starts_with("-ERR [SYS/TEMP] too many connections"),
        "same /64 as the first: {lines:?}"
    );
    assert_eq!(
        lines[2], "+OK fake POP3 server ready\r\n",
        "another /64: {lines:?}"
    );
    drop(popgate);
    // The server wakes its accept loop with a connection of its own: from its namespace.
    topology.gateway.enter(move || drop(server)).unwrap();
}

/// The `fwmark:` `ss -e` shows on popgate's connection to `server`, while a client session
/// holds it open.
fn upstream_fwmark(config: ConfigDir, server: &FakeServer) -> Option<String> {
    let popgate = Popgate::start(config).unwrap();
    let client = Pop3Client::connect(popgate.pop3_addr()).unwrap();
    assert_eq!(client.greeting(), b"+OK fake POP3 server ready\r\n");
    let filter = format!("dport = :{}", server.addr().port());
    let out = run_ok(
        Command::new("ss").args(["-tneH", "state", "established", &filter]),
        Duration::from_secs(10),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one upstream connection: {text}");
    let mark = lines[0]
        .split_whitespace()
        .find_map(|field| field.strip_prefix("fwmark:"))
        .map(str::to_owned);
    drop(client);
    mark
}

#[test]
fn explicit_upstream_mark_applies_without_interception() {
    let server = FakeServer::start(Script::default()).unwrap();
    let explicit = ConfigDir::relay(server.addr()).set("popgate.json", "/upstream_mark", json!(7));
    assert_eq!(upstream_fwmark(explicit, &server).as_deref(), Some("0x7"));
    // Without an explicit mark, `none` keeps its old behaviour: no mark at all.
    let default = ConfigDir::relay(server.addr());
    assert_eq!(upstream_fwmark(default, &server), None);
}
