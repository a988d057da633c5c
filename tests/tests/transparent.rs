//! Transparent interception (SPEC §3) in network namespaces: a client, a gateway running
//! popgate with the shipped firewall rules (`packaging/nftables`, `packaging/iptables`,
//! loaded as they are with their settings substituted), and Dovecot on the server. The
//! client addresses the SERVER; the rules hand the connection to popgate, which relays it
//! to the original destination (the policy names no `upstream`).
//!
//! TLS: the client trusts only the Proxy Server certificate's CA (popgate's), so a
//! successful STLS or POP3S fetch proves popgate terminated TLS; popgate trusts Dovecot's
//! CA for the server leg.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use popgate_tests::clients::{self, PoplibAuth};
use popgate_tests::netns::{Family, Feature, Placement, Topology, LAN_IF, WAN_IF};
use popgate_tests::popgate::standard_tls_profile;
use popgate_tests::{
    assert_bytes_eq, require_netns, require_peers, Account, ClientTls, ConfigDir, Corpus, Dovecot,
    DovecotOptions, Peer, Popgate, TestPki,
};
use serde_json::json;
use tempfile::TempDir;

/// How long popgate gets to log a decision about a connection.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// The interception mode in `popgate.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Tproxy,
    Redirect,
}

/// Which shipped rule files steer the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rules {
    Nftables,
    Iptables,
}

/// A running interception set-up. Field order is drop order: popgate and Dovecot stop
/// before the namespaces go.
struct Gateway {
    popgate: Popgate,
    dovecot: Dovecot,
    /// The Proxy Server certificate's CA, which clients trust.
    proxy_ca: std::path::PathBuf,
    _pki_dir: TempDir,
    _hosts: Option<NetnsEtc>,
    topology: Topology,
}

/// `/etc/netns/NAME/`: files `ip netns exec NAME` mounts over `/etc`; removed on drop.
struct NetnsEtc(std::path::PathBuf);

impl NetnsEtc {
    fn hosts(netns: &str, text: &str) -> NetnsEtc {
        let dir = std::path::Path::new("/etc/netns").join(netns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), text).unwrap();
        NetnsEtc(dir)
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Gateway {
    /// Topology, Dovecot in the server namespace, `rules` for `mode` in the gateway, popgate
    /// in the gateway configured by [`intercepting_config`] and then `tweak`.
    fn start(mode: Mode, rules: Rules, tweak: impl FnOnce(ConfigDir) -> ConfigDir) -> Gateway {
        Gateway::start_with_hosts(mode, rules, None, tweak)
    }

    /// Like [`Gateway::start`]; with `hosts`, popgate's `/etc/hosts` is that text
    /// (`ip netns exec` mounts `/etc/netns/NAME/hosts` over it; the host's file is untouched).
    fn start_with_hosts(
        mode: Mode,
        rules: Rules,
        hosts: Option<&str>,
        tweak: impl FnOnce(ConfigDir) -> ConfigDir,
    ) -> Gateway {
        let topology = Topology::create().unwrap();
        let hosts_dir = hosts.map(|text| NetnsEtc::hosts(topology.gateway.name(), text));
        let corpus = Corpus::small();
        let dovecot = Dovecot::start(
            &corpus.messages,
            DovecotOptions {
                placement: Some(Placement::server(&topology)),
                ..DovecotOptions::default()
            },
        )
        .unwrap();
        let pki_dir = tempfile::tempdir().unwrap();
        let sans = Placement::server(&topology).sans();
        let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
        let proxy_pki = TestPki::generate_for(pki_dir.path(), "localhost", &sans).unwrap();
        load_rules(&topology, mode, rules);
        let config = tweak(intercepting_config(mode, &dovecot, &proxy_pki));
        let popgate = Popgate::start_in_netns(config, topology.gateway.name()).unwrap();
        Gateway {
            popgate,
            dovecot,
            proxy_ca: proxy_pki.ca_cert,
            _pki_dir: pki_dir,
            _hosts: hosts_dir,
            topology,
        }
    }

    /// The mailbox account at the server's `port` for `family`: what a client believes it
    /// talks to.
    fn account(&self, family: Family, port: u16) -> Account {
        self.dovecot
            .account()
            .at(SocketAddr::new(family.server(), port))
    }

    /// Fetches every message with poplib from the client namespace, and checks them
    /// against the corpus.
    fn fetch_all_with_poplib(&self, family: Family, port: u16, tls: &ClientTls) {
        let account = self.account(family, port);
        let got = self
            .topology
            .client
            .enter(|| clients::poplib_fetch(&account, tls, PoplibAuth::UserPass))
            .unwrap()
            .unwrap_or_else(|e| {
                panic!("poplib {tls:?} to {}: {e:#}\n{}", account.addr, self.logs())
            });
        let corpus = Corpus::small();
        assert_eq!(got.len(), corpus.len(), "message count via {tls:?}");
        for (got, message) in got.iter().zip(&corpus.messages) {
            assert_bytes_eq(
                got,
                &message.bytes,
                &format!("{} via {tls:?}", message.name),
            );
        }
    }

    /// `curl pop3s://SERVER:995/1` from the client namespace, checked against the corpus.
    fn retr_first_with_curl(&self, family: Family) {
        let account = self.account(family, 995);
        let tls = ClientTls::Implicit(self.proxy_ca.clone());
        let got = self
            .topology
            .client
            .enter(|| clients::curl_retr(&account, &tls, 1))
            .unwrap()
            .unwrap_or_else(|e| panic!("curl pop3s to {}: {e:#}\n{}", account.addr, self.logs()));
        assert_bytes_eq(
            &got,
            &Corpus::small().messages[0].bytes,
            "RETR 1 via curl pop3s",
        );
    }

    /// Connects from the client namespace to `addr` and returns everything popgate sends
    /// until it closes the connection.
    fn read_until_close(&self, addr: SocketAddr) -> String {
        let mut stream = self
            .topology
            .client
            .connect(addr, Duration::from_secs(10))
            .unwrap();
        stream.set_read_timeout(Some(LOG_WAIT)).unwrap();
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("reading from {addr} until close: {e}\n{}", self.logs()));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits for a popgate log line holding every one of `needles`.
    fn wait_for_log_line(&self, needles: &[&str]) {
        let found =
            popgate_tests::wait_until(&format!("a log line with {needles:?}"), LOG_WAIT, || {
                Ok(self
                    .popgate
                    .log_text()
                    .lines()
                    .any(|line| needles.iter().all(|n| line.contains(n))))
            });
        if let Err(e) = found {
            panic!("{e:#}\n{}", self.logs());
        }
    }

    /// Dovecot's log lines of successful logins.
    fn dovecot_logins(&self) -> Vec<String> {
        self.dovecot
            .log_text()
            .lines()
            .filter(|l| l.contains("Login: user=<"))
            .map(str::to_owned)
            .collect()
    }

    fn logs(&self) -> String {
        format!(
            "--- popgate log ---\n{}--- dovecot log ---\n{}---",
            self.popgate.log_text(),
            self.dovecot.log_text()
        )
    }
}

/// Settings of the rule files for this topology.
fn load_rules(topology: &Topology, mode: Mode, rules: Rules) {
    let gateway = &topology.gateway;
    let lan = format!("\"{LAN_IF}\"");
    match (rules, mode) {
        (Rules::Nftables, Mode::Tproxy) => {
            gateway
                .load_nft(
                    &Topology::nft_file("popgate-tproxy.nft"),
                    &[("LAN_IF", &lan)],
                )
                .unwrap();
            // RETURN_IF: the spoofed upstream's replies come back on the server's side.
            gateway
                .run_script(
                    &Topology::nft_file("popgate-tproxy-routing.sh"),
                    &["up"],
                    &[("LAN_IF", LAN_IF), ("RETURN_IF", WAN_IF)],
                )
                .unwrap();
        }
        (Rules::Nftables, Mode::Redirect) => gateway
            .load_nft(
                &Topology::nft_file("popgate-redirect.nft"),
                &[("LAN_IF", &lan)],
            )
            .unwrap(),
        (Rules::Iptables, Mode::Tproxy) => gateway
            .run_script(
                &Topology::iptables_file("popgate-tproxy.sh"),
                &["up"],
                &[("LAN_IF", LAN_IF), ("RETURN_IF", WAN_IF)],
            )
            .unwrap(),
        (Rules::Iptables, Mode::Redirect) => gateway
            .run_script(
                &Topology::iptables_file("popgate-redirect.sh"),
                &["up"],
                &[("LAN_IF", LAN_IF)],
            )
            .unwrap(),
    }
}

/// popgate on 0.0.0.0 and :: in `mode`; one inbound policy for every client on 110
/// (plaintext and STLS) and 995 (implicit TLS), without `upstream`, so the original
/// destination is the server; TLS inspected with the Proxy Server certificate
/// (`proxy_pki`), the server leg trusting Dovecot's CA.
fn intercepting_config(mode: Mode, dovecot: &Dovecot, proxy_pki: &TestPki) -> ConfigDir {
    let interception = match mode {
        Mode::Tproxy => "tproxy",
        Mode::Redirect => "redirect",
    };
    let mut profile = standard_tls_profile();
    profile["trust"] = json!({
        "system_roots": false,
        "ca_files": [dovecot.ca_cert().display().to_string()],
    });
    ConfigDir::empty()
        .json(
            "popgate.json",
            json!({
                "interception": interception,
                "bind_addresses": ["0.0.0.0", "::"],
                "user": "root",
                "group": "root",
                "log": { "format": "json", "level": "debug" }
            }),
        )
        .json(
            "policies/intercept.json",
            json!({
                "name": "intercept",
                "enabled": true,
                "order": 10,
                "direction": "inbound",
                "from": ["any"],
                "to": ["any"],
                "tls_support": "enabled",
                "ports": { "pop3": 110, "pop3s": 995 },
                "proxy_action": "Intercept"
            }),
        )
        .json(
            "actions/intercept.json",
            json!({
                "name": "Intercept",
                "authentication": { "require_tls": false },
                "tls": { "action": "inspect", "profile": "TLS-Client.Standard" }
            }),
        )
        .json("tls-profiles/standard.json", profile)
        .with_pki(proxy_pki)
        .unwrap()
}

fn spoofing(config: ConfigDir) -> ConfigDir {
    config.set("popgate.json", "/spoof_client_address", json!(true))
}

/// `"10.2.0.2:110"` / `"[fd00:2::2]:110"`, as popgate logs an original destination.
fn endpoint(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

/// `"10.1.0.2:"` / `"[fd00:1::2]:"`: the client's address as popgate logs it, any port.
fn client_prefix(family: Family) -> String {
    endpoint(family.client(), 0)
        .trim_end_matches('0')
        .to_owned()
}

/// The whole client experience for one family: plaintext, STLS and POP3S fetches to the
/// server's address, each relayed by popgate to the original destination.
fn fetches_through_popgate(gateway: &Gateway, family: Family) {
    gateway.fetch_all_with_poplib(family, 110, &ClientTls::None);
    gateway.fetch_all_with_poplib(family, 110, &ClientTls::Stls(gateway.proxy_ca.clone()));
    gateway.fetch_all_with_poplib(family, 995, &ClientTls::Implicit(gateway.proxy_ca.clone()));
    gateway.retr_first_with_curl(family);
    for port in [110, 995] {
        gateway.wait_for_log_line(&[
            &endpoint(family.server(), port),
            &client_prefix(family),
            "intercept",
        ]);
    }
}

/// Dovecot saw `count` logins, half from the client's IPv4 and half from its IPv6 address
/// (`rip=`), none from the gateway's.
fn assert_every_login_from_the_client(gateway: &Gateway, count: usize) {
    let logins = gateway.dovecot_logins();
    assert_eq!(logins.len(), count, "{logins:#?}\n{}", gateway.logs());
    for family in [Family::V4, Family::V6] {
        let rip = format!("rip={},", family.client());
        let from = logins.iter().filter(|l| l.contains(&rip)).count();
        assert_eq!(from, count / 2, "logins with {rip}: {logins:#?}");
    }
}

fn check_interception(mode: Mode, rules: Rules) {
    let gateway = Gateway::start(mode, rules, |c| c);
    for family in [Family::V4, Family::V6] {
        fetches_through_popgate(&gateway, family);
    }
    // Without spoofing the server sees the gateway's own address: per family, poplib
    // plaintext, STLS and POP3S, and curl POP3S.
    let logins = gateway.dovecot_logins();
    assert_eq!(logins.len(), 8, "{logins:#?}\n{}", gateway.logs());
    for family in [Family::V4, Family::V6] {
        let rip = format!("rip={},", family.gateway_wan());
        let from = logins.iter().filter(|l| l.contains(&rip)).count();
        assert_eq!(from, 4, "logins with {rip}: {logins:#?}");
    }
}

macro_rules! needs {
    (nftables) => {
        require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3, Peer::Curl);
        require_netns!(Feature::Root, Feature::Ip, Feature::Nft);
    };
    (iptables) => {
        require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3, Peer::Curl);
        require_netns!(Feature::Root, Feature::Ip, Feature::Iptables);
    };
}

#[test]
fn tproxy_nftables_relays_plain_stls_and_pop3s_to_the_original_destination_v4_and_v6() {
    needs!(nftables);
    check_interception(Mode::Tproxy, Rules::Nftables);
}

#[test]
fn redirect_nftables_relays_plain_stls_and_pop3s_to_the_original_destination_v4_and_v6() {
    needs!(nftables);
    check_interception(Mode::Redirect, Rules::Nftables);
}

#[test]
fn tproxy_iptables_relays_plain_stls_and_pop3s_to_the_original_destination_v4_and_v6() {
    needs!(iptables);
    check_interception(Mode::Tproxy, Rules::Iptables);
}

#[test]
fn redirect_iptables_relays_plain_stls_and_pop3s_to_the_original_destination_v4_and_v6() {
    needs!(iptables);
    check_interception(Mode::Redirect, Rules::Iptables);
}

#[test]
fn tproxy_spoof_client_address_shows_the_server_the_clients_own_address_v4_and_v6() {
    needs!(nftables);
    let gateway = Gateway::start(Mode::Tproxy, Rules::Nftables, spoofing);
    for family in [Family::V4, Family::V6] {
        gateway.fetch_all_with_poplib(family, 110, &ClientTls::Stls(gateway.proxy_ca.clone()));
        gateway.fetch_all_with_poplib(family, 995, &ClientTls::Implicit(gateway.proxy_ca.clone()));
    }
    assert_every_login_from_the_client(&gateway, 4);
}

#[test]
fn iptables_tproxy_spoof_client_address_shows_the_server_the_clients_own_address() {
    needs!(iptables);
    let gateway = Gateway::start(Mode::Tproxy, Rules::Iptables, spoofing);
    for family in [Family::V4, Family::V6] {
        gateway.fetch_all_with_poplib(family, 995, &ClientTls::Implicit(gateway.proxy_ca.clone()));
        assert_logins_from_last(&gateway, family.client());
    }
}

/// The newest Dovecot login came from `expected`.
fn assert_logins_from_last(gateway: &Gateway, expected: IpAddr) {
    let logins = gateway.dovecot_logins();
    let last = logins
        .last()
        .unwrap_or_else(|| panic!("no logins\n{}", gateway.logs()));
    assert!(
        last.contains(&format!("rip={expected},")),
        "login not from {expected}: {last}"
    );
}

#[test]
fn tproxy_keeps_transparency_after_dropping_to_nobody() {
    needs!(nftables);
    let gateway = Gateway::start(Mode::Tproxy, Rules::Nftables, |config| {
        spoofing(config)
            .set("popgate.json", "/user", json!("nobody"))
            .set("popgate.json", "/group", json!("nogroup"))
            .keys_owned_by("nobody")
    });
    gateway.wait_for_log_line(&["dropped privileges", "nobody"]);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", gateway.popgate.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|uid| uid == "65534"),
        "{uid_line}"
    );
    for family in [Family::V4, Family::V6] {
        gateway.fetch_all_with_poplib(family, 110, &ClientTls::Stls(gateway.proxy_ca.clone()));
        gateway.fetch_all_with_poplib(family, 995, &ClientTls::Implicit(gateway.proxy_ca.clone()));
    }
    // Spoofing needs IP_TRANSPARENT and every upstream socket SO_MARK: both need the
    // CAP_NET_ADMIN popgate kept.
    assert_every_login_from_the_client(&gateway, 4);
}

fn check_loop_refused(mode: Mode) {
    let gateway = Gateway::start(mode, Rules::Nftables, |c| c);
    for family in [Family::V4, Family::V6] {
        let own = SocketAddr::new(family.gateway_lan(), 110);
        let got = gateway.read_until_close(own);
        assert_eq!(
            got, "-ERR [SYS/PERM] routing loop\r\n",
            "connecting to {own}"
        );
        gateway.wait_for_log_line(&["routing loop", &client_prefix(family)]);
    }
    assert!(
        gateway.dovecot_logins().is_empty(),
        "a loop reached the server"
    );
}

#[test]
fn tproxy_connection_to_the_gateway_itself_is_refused_as_a_routing_loop() {
    needs!(nftables);
    check_loop_refused(Mode::Tproxy);
}

#[test]
fn redirect_connection_to_the_gateway_itself_is_refused_as_a_routing_loop() {
    needs!(nftables);
    check_loop_refused(Mode::Redirect);
}

/// The administrator steers port 2110 to popgate's POP3 listener, but no policy lists port
/// 2110 (policy ports are original destination ports): refused and logged, never relayed.
fn check_unlisted_port_refused(mode: Mode) {
    let gateway = Gateway::start(mode, Rules::Nftables, |c| c);
    let extra = match mode {
        Mode::Tproxy => [
            "add",
            "rule",
            "inet",
            "popgate_tproxy",
            "prerouting",
            "iifname",
            LAN_IF,
            "tcp",
            "dport",
            "2110",
            "tproxy",
            "to",
            ":110",
            "meta",
            "mark",
            "set",
            "1",
            "accept",
        ]
        .as_slice(),
        Mode::Redirect => [
            "add",
            "rule",
            "inet",
            "popgate_redirect",
            "prerouting",
            "iifname",
            LAN_IF,
            "tcp",
            "dport",
            "2110",
            "redirect",
            "to",
            ":110",
        ]
        .as_slice(),
    };
    gateway.topology.gateway.run("nft", extra).unwrap();
    for family in [Family::V4, Family::V6] {
        let target = SocketAddr::new(family.server(), 2110);
        let got = gateway.read_until_close(target);
        assert_eq!(
            got, "-ERR [SYS/PERM] connection refused by policy\r\n",
            "to {target}"
        );
        gateway.wait_for_log_line(&["no policy matches", &endpoint(family.server(), 2110)]);
    }
    assert!(gateway.dovecot_logins().is_empty());
}

#[test]
fn tproxy_connection_to_a_port_no_policy_lists_is_refused_and_logged() {
    needs!(nftables);
    check_unlisted_port_refused(Mode::Tproxy);
}

#[test]
fn redirect_connection_to_a_port_no_policy_lists_is_refused_and_logged() {
    needs!(nftables);
    check_unlisted_port_refused(Mode::Redirect);
}

/// popgate serves only 110 (`tls_support: disabled`) while the rules intercept 995 too: a
/// POP3S connection finds no listener and must be reset, not forwarded to the server
/// uninspected (the TPROXY rules fail closed; REDIRECT does by itself).
fn check_port_without_listener_fails_closed(mode: Mode) {
    let gateway = Gateway::start(mode, Rules::Nftables, |config| {
        config
            .set("policies/intercept.json", "/tls_support", json!("disabled"))
            .set("policies/intercept.json", "/ports", json!({ "pop3": 110 }))
            .set("actions/intercept.json", "/tls/action", json!("allow"))
    });
    for family in [Family::V4, Family::V6] {
        let target = SocketAddr::new(family.server(), 995);
        let connected = gateway
            .topology
            .client
            .connect(target, Duration::from_secs(10));
        let err = connected.expect_err("POP3S reached the server past popgate");
        let refused = err
            .chain()
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        assert!(refused, "expected a reset for {target}: {err:#}");
    }
    if mode == Mode::Tproxy {
        let listing = gateway
            .topology
            .gateway
            .run(
                "nft",
                &["list", "chain", "inet", "popgate_tproxy", "forward"],
            )
            .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
        assert!(
            !listing.contains("counter packets 0 "),
            "reject rule never hit: {listing}"
        );
    }
    // Plaintext still goes through popgate.
    gateway.fetch_all_with_poplib(Family::V4, 110, &ClientTls::None);
    assert!(gateway
        .dovecot
        .log_text()
        .lines()
        .all(|l| !l.contains(":995")));
}

#[test]
fn tproxy_rules_reset_an_intercepted_port_popgate_does_not_listen_on() {
    needs!(nftables);
    check_port_without_listener_fails_closed(Mode::Tproxy);
}

#[test]
fn redirect_rules_reset_an_intercepted_port_popgate_does_not_listen_on() {
    needs!(nftables);
    check_port_without_listener_fails_closed(Mode::Redirect);
}

/// The rule files can be loaded again over themselves (an administrator re-running them),
/// and `down` / `delete table` leave nothing behind: no chains, no policy-routing rules.
#[test]
fn rule_files_reload_idempotently_and_unload_completely() {
    needs!(iptables);
    require_netns!(Feature::Nft);
    let topology = Topology::create().unwrap();
    let gateway = &topology.gateway;
    let lan = format!("\"{LAN_IF}\"");
    let env = [("LAN_IF", LAN_IF), ("RETURN_IF", WAN_IF)];
    for _ in 0..2 {
        for file in ["popgate-tproxy.nft", "popgate-redirect.nft"] {
            gateway
                .load_nft(&Topology::nft_file(file), &[("LAN_IF", &lan)])
                .unwrap();
        }
        let routing = Topology::nft_file("popgate-tproxy-routing.sh");
        gateway.run_script(&routing, &["up"], &env).unwrap();
        for script in ["popgate-tproxy.sh", "popgate-redirect.sh"] {
            let file = Topology::iptables_file(script);
            gateway.run_script(&file, &["up"], &env).unwrap();
        }
    }
    let rules = |family: &str| {
        let out = gateway.run("ip", &[family, "rule", "show"]).unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for family in ["-4", "-6"] {
        let listed = rules(family);
        for interface in [LAN_IF, WAN_IF] {
            let rule = format!("fwmark 0x1 iif {interface} lookup 100");
            assert_eq!(listed.matches(&rule).count(), 1, "{family}: {listed}");
        }
    }

    gateway
        .run("nft", &["delete", "table", "inet", "popgate_tproxy"])
        .unwrap();
    gateway
        .run("nft", &["delete", "table", "inet", "popgate_redirect"])
        .unwrap();
    for script in ["popgate-tproxy.sh", "popgate-redirect.sh"] {
        let file = Topology::iptables_file(script);
        gateway.run_script(&file, &["down"], &env).unwrap();
    }
    let ruleset = gateway.run("nft", &["list", "ruleset"]).unwrap();
    let ruleset = String::from_utf8_lossy(&ruleset.stdout).into_owned();
    assert!(!ruleset.contains("popgate"), "left behind: {ruleset}");
    assert!(
        !ruleset.contains("tproxy") && !ruleset.contains("redirect"),
        "{ruleset}"
    );
    for family in ["-4", "-6"] {
        let listed = rules(family);
        assert!(!listed.contains("fwmark"), "{family}: {listed}");
        let table = gateway
            .run("ip", &[family, "route", "show", "table", "100"])
            .unwrap();
        assert!(
            table.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&table.stdout)
        );
    }
}

/// Names the gateway resolves (its own hosts file): the server's name, and a decoy that
/// belongs elsewhere.
const DOMAIN_HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n\
    10.2.0.2 pop.mail.example\nfd00:2::2 pop.mail.example\n10.9.9.9 pop.decoy.example\n";

/// `curl pop3s://NAME:995/` from the client namespace with the SNI `name`, `name` resolving
/// to the server's IPv4 address (any outcome: only popgate's choice of policy matters).
fn curl_pop3s_sni(gateway: &Gateway, name: &str) {
    let account = gateway.account(Family::V4, 995);
    let _ = gateway.topology.client.enter(|| {
        popgate_tests::process::run_with_timeout(
            std::process::Command::new("curl")
                .args(["--silent", "--insecure", "--max-time", "10", "--resolve"])
                .arg(format!("{name}:995:{}", account.addr.ip()))
                .arg("--user")
                .arg(format!("{}:{}", account.user, account.password))
                .arg(format!("pop3s://{name}:995/")),
            Duration::from_secs(20),
        )
    });
}

#[test]
fn redirect_domain_entries_match_by_dns_and_an_unconfirmed_sni_is_ignored() {
    require_netns!(Feature::Root, Feature::Ip, Feature::Nft);
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Curl, Peer::Python3);
    let policy = |name: &str, order: u32, to: &str| {
        json!({ "name": name, "enabled": true, "order": order, "direction": "inbound",
                "from": ["any"], "to": [to], "tls_support": "enabled",
                "ports": { "pop3": 110, "pop3s": 995 }, "proxy_action": "Intercept" })
    };
    let gateway = Gateway::start_with_hosts(
        Mode::Redirect,
        Rules::Nftables,
        Some(DOMAIN_HOSTS),
        |config| {
            config
                .json(
                    "policies/by-domain.json",
                    policy("by-domain", 5, "pop.mail.example"),
                )
                .json(
                    "policies/decoy.json",
                    policy("decoy", 3, "pop.decoy.example"),
                )
                // `force_encrypt` domains match by DNS too: TLS toward the server although
                // the profile says none.
                .set("tls-profiles/standard.json", "/upstream_tls", json!("none"))
                .set(
                    "tls-profiles/standard.json",
                    "/force_encrypt",
                    json!(["pop.mail.example"]),
                )
        },
    );
    // Port 110, no SNI: the domain entry matches because 10.2.0.2 is pop.mail.example.
    gateway.fetch_all_with_poplib(Family::V4, 110, &ClientTls::None);
    gateway.wait_for_log_line(&["session closed", "10.2.0.2:110", r#""policy":"by-domain""#]);
    let plaintext_upstream = gateway.popgate.log_text().lines().any(|l| {
        l.contains("session closed")
            && l.contains(r#""policy":"by-domain""#)
            && l.contains(r#""server_tls":"none""#)
    });
    assert!(
        !plaintext_upstream,
        "force_encrypt by DNS ignored\n{}",
        gateway.logs()
    );
    // The client claims the decoy's name: neither DNS nor the server's certificate confirm
    // it, so it is ignored and the connection is matched on its destination.
    curl_pop3s_sni(&gateway, "pop.decoy.example");
    gateway.wait_for_log_line(&[
        "SNI not confirmed",
        "pop.decoy.example",
        r#""claimed_policy":"decoy""#,
    ]);
    gateway.wait_for_log_line(&[
        "session closed",
        r#""client_sni":"pop.decoy.example""#,
        r#""policy":"by-domain""#,
    ]);
    assert!(
        !gateway.popgate.log_text().contains(r#""policy":"decoy""#),
        "the decoy policy was chosen\n{}",
        gateway.logs()
    );
}
