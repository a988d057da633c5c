//! Every JSON example of SPEC §4, verbatim, parses and checks to the values it shows.

use std::net::IpAddr;
use std::time::Duration;

use popgate_policy::*;

const GLOBAL: &str = r#"{
  "interception": "tproxy",
  "bind_addresses": ["0.0.0.0", "::"],
  "upstream_mark": 2,
  "spoof_client_address": false,
  "user": "popgate", "group": "popgate",
  "log": { "format": "json", "level": "info" },
  "metrics": { "listen": "127.0.0.1:9464" },
  "limits": { "max_connections": 20000, "max_connections_per_client": 64,
              "client_ipv6_prefix": 64,
              "handshake_timeout_s": 15, "idle_timeout_s": 600, "shutdown_grace_s": 30 },
  "state_dir": "/var/lib/popgate",
  "quarantine": { "max_bytes": 1073741824, "max_age_days": 30 },
  "spool": { "max_bytes": 1073741824 },
  "control": { "socket": "/run/popgate/control.sock", "group": "popgate" }
}"#;

const POLICY: &str = r#"{
  "name": "POP3-proxy-out",
  "enabled": true,
  "order": 10,
  "direction": "outbound",
  "from": ["10.0.0.0/8", "192.168.1.*"],
  "to": ["any"],
  "tls_support": "enabled",
  "ports": { "pop3": 110, "pop3s": 995 },
  "upstream": null,
  "proxy_action": "POP3-Client.Standard"
}"#;

const ACTION: &str = r#"{
  "name": "POP3-Client.Standard",
  "general": { "idle_timeout_s": 600, "max_line_length": 8192,
               "max_message_size": 33554432, "oversize": "allow" },
  "authentication": { "allow": ["USER", "APOP", "SASL:PLAIN", "SASL:LOGIN", "SASL:CRAM-MD5", "SASL:XOAUTH2"],
                      "require_tls": true },
  "content_types": { "default": "allow",
                     "rules": [ { "match": "application/x-msdownload", "action": "strip" } ] },
  "file_names":    { "default": "allow",
                     "rules": [ { "match": "*.exe", "action": "strip" }, { "match": "*.scr", "action": "strip" } ] },
  "headers":       { "rules": [ { "match": "X-Spam-Flag: YES", "action": "tag" } ] },
  "antivirus":     { "enabled": false, "clamd": "unix:/run/clamav/clamd.ctl",
                     "timeout_s": 30, "on_virus": "deny", "on_error": "tempfail" },
  "unparseable": "allow",
  "spam_tag": "[SPAM] ",
  "deny_message": "The attachment {filename} was removed by {policy}: {reason}.",
  "tls": { "action": "inspect", "profile": "TLS-Client.Standard" }
}"#;

const PROFILE: &str = r#"{
  "name": "TLS-Client.Standard",
  "min_version": "1.2",
  "upstream_tls": "match",
  "certificate_validation": "full",
  "invalid_certificate": "mirror-untrusted",
  "trust": { "system_roots": true, "ca_files": [] },
  "force_encrypt": ["example.com", "204.10.243.26", "207.219.44.0/24"],
  "require_client_tls": [],
  "require_client_tls_except": [],
  "tls_failure_holddown_s": 300
}"#;

fn spec_sources() -> Sources {
    Sources {
        global: Some(Source::new("popgate.json", GLOBAL)),
        policies: vec![Source::new("policies/out.json", POLICY)],
        actions: vec![Source::new("actions/standard.json", ACTION)],
        tls_profiles: vec![Source::new("tls-profiles/standard.json", PROFILE)],
    }
}

fn load(sources: &Sources) -> Config {
    match Config::from_sources(sources) {
        Ok(config) => config,
        Err(errors) => panic!(
            "{}",
            errors.iter().map(|e| format!("{e}\n")).collect::<String>()
        ),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn global_example_parses_to_its_values() {
    let config = load(&spec_sources());
    let g = config.global();
    assert_eq!(g.interception(), Interception::Tproxy);
    assert_eq!(g.bind_addresses(), [ip("0.0.0.0"), ip("::")]);
    assert_eq!(g.upstream_mark(), 2);
    assert!(!g.spoof_client_address());
    assert_eq!((g.user(), g.group()), ("popgate", "popgate"));
    assert_eq!(
        (g.log_format(), g.log_level()),
        (LogFormat::Json, LogLevel::Info)
    );
    assert_eq!(g.metrics_listen(), Some("127.0.0.1:9464".parse().unwrap()));
    let l = g.limits();
    assert_eq!(
        (l.max_connections(), l.max_connections_per_client()),
        (20000, 64)
    );
    assert_eq!(l.client_ipv6_prefix(), 64);
    assert_eq!(l.handshake_timeout(), Duration::from_secs(15));
    assert_eq!(l.idle_timeout(), Duration::from_secs(600));
    assert_eq!(l.shutdown_grace(), Duration::from_secs(30));
    let state = g.state();
    assert_eq!(state.state_dir(), std::path::Path::new("/var/lib/popgate"));
    assert_eq!(
        state.quarantine_dir(),
        std::path::Path::new("/var/lib/popgate/quarantine")
    );
    assert_eq!(state.quarantine_max_bytes(), 1 << 30);
    assert_eq!(state.quarantine_max_age(), Duration::from_secs(30 * 86_400));
    assert_eq!(state.spool_max_bytes(), 1 << 30);
    assert_eq!(
        state.control_socket(),
        std::path::Path::new("/run/popgate/control.sock")
    );
    assert_eq!(state.control_group(), "popgate");
    assert_eq!(g.state_dir(), std::path::Path::new("/var/lib/popgate"));
    assert_eq!(g.spool_max_bytes(), 1 << 30);
}

#[test]
fn global_example_equals_the_defaults() {
    let config = load(&spec_sources());
    let mut expected = Global::default();
    // The example sets a metrics listener; the default has none.
    assert_eq!(expected.metrics_listen(), None);
    let without_metrics = GLOBAL.replace(r#""metrics": { "listen": "127.0.0.1:9464" },"#, "");
    let mut sources = spec_sources();
    sources.global = Some(Source::new("popgate.json", without_metrics));
    let plain = load(&sources);
    assert_eq!(plain.global(), &expected);
    expected = config.global().clone();
    assert_ne!(plain.global(), &expected);
}

#[test]
fn policy_example_parses_to_its_values() {
    let config = load(&spec_sources());
    let p = config.policy("POP3-proxy-out").unwrap();
    assert_eq!(p.file(), "policies/out.json");
    assert!(p.enabled());
    assert_eq!(p.order(), 10);
    assert_eq!(p.direction(), Direction::Outbound);
    let from: Vec<String> = p.from().iter().map(ToString::to_string).collect();
    assert_eq!(from, ["10.0.0.0/8", "192.168.1.*"]);
    assert!(p.to()[0].is_any());
    assert_eq!(p.tls_support(), TlsSupport::Enabled);
    assert_eq!((p.ports().pop3(), p.ports().pop3s()), (110, 995));
    assert_eq!(p.upstream(), None);
    assert!(!p.starttls_on_pop3());
    assert_eq!(p.action().name(), "POP3-Client.Standard");
    let listeners: Vec<_> = config.listen_ports().into_iter().collect();
    assert_eq!(listeners, [(PortKind::Pop3, 110), (PortKind::Pop3s, 995)]);
}

#[test]
fn action_example_parses_to_its_values() {
    let config = load(&spec_sources());
    let a = config.action("POP3-Client.Standard").unwrap();
    assert_eq!(a.file(), "actions/standard.json");
    assert_eq!(a.idle_timeout(), Duration::from_secs(600));
    assert_eq!(
        (a.max_line_length(), a.max_message_size()),
        (8192, 33_554_432)
    );
    assert_eq!(a.oversize(), Oversize::Allow);
    let auth = a.authentication();
    assert!(auth.require_tls());
    assert!(auth.allows_user() && auth.allows_apop());
    assert!(auth.allows_sasl("plain") && auth.allows_sasl("CRAM-MD5"));
    assert!(!auth.allows_sasl("GSSAPI"));
    assert_eq!(
        a.content_types().verdict_for("application/x-msdownload"),
        Verdict::Strip
    );
    assert_eq!(a.content_types().verdict_for("text/plain"), Verdict::Allow);
    assert_eq!(a.file_names().verdict_for("Setup.EXE"), Verdict::Strip);
    assert_eq!(
        a.file_names().first_match("x.scr").map(Rule::text),
        Some("*.scr")
    );
    assert_eq!(a.file_names().verdict_for("notes.txt"), Verdict::Allow);
    assert_eq!(
        a.headers().verdict_for(("x-spam-flag", "yes")),
        Verdict::Tag
    );
    assert_eq!(
        a.headers().verdict_for(("x-spam-flag", "no")),
        Verdict::Allow
    );
    let av = a.antivirus();
    assert!(!av.enabled());
    assert_eq!(av.clamd(), &Clamd::Unix("/run/clamav/clamd.ctl".into()));
    assert_eq!(av.timeout(), Duration::from_secs(30));
    assert_eq!(
        (av.on_virus(), av.on_error()),
        (Verdict::Deny, OnError::Tempfail)
    );
    assert_eq!(a.unparseable(), Verdict::Allow);
    assert_eq!(a.spam_tag(), "[SPAM] ");
    let ctx = DenyContext {
        filename: "a.exe",
        policy: "P",
        action: "A",
        reason: "r",
    };
    assert_eq!(
        a.deny_message().render(&ctx),
        "The attachment a.exe was removed by P: r."
    );
    assert_eq!(a.tls().action(), TlsActionKind::Inspect);
    assert_eq!(a.tls().profile().file(), Some("tls-profiles/standard.json"));
    let users: Vec<&str> = config
        .policies_using_action(a.name())
        .iter()
        .map(|p| p.name())
        .collect();
    assert_eq!(users, ["POP3-proxy-out"]);
}

#[test]
fn profile_example_parses_to_its_values() {
    let config = load(&spec_sources());
    let p = config.tls_profile("TLS-Client.Standard").unwrap();
    assert_eq!(p.min_version(), MinTlsVersion::Tls12);
    assert_eq!(p.upstream_tls(), UpstreamTls::Match);
    assert_eq!(p.certificate_validation(), CertificateValidation::Full);
    assert_eq!(p.invalid_certificate(), InvalidCertificate::MirrorUntrusted);
    assert!(p.system_roots());
    assert!(p.ca_files().is_empty());
    assert!(p.forces_encryption(ip("204.10.243.26"), &[]));
    assert!(p.forces_encryption(ip("207.219.44.200"), &[]));
    assert!(p.forces_encryption(ip("1.1.1.1"), &["example.com".to_owned()]));
    assert!(!p.forces_encryption(ip("1.1.1.1"), &["example.net".to_owned()]));
    assert!(!p.requires_client_tls(ip("10.0.0.1")));
    assert_eq!(p.tls_failure_holddown(), Duration::from_secs(300));
    // The file replaces the built-in profile of the same name instead of clashing with it.
    assert_eq!(config.tls_profiles().len(), 1);
}

#[test]
fn spec_defaults_fill_a_minimal_configuration() {
    let sources = Sources {
        global: None,
        policies: vec![Source::new(
            "policies/p.json",
            r#"{"name": "p", "order": 1, "from": ["any"], "to": ["any"], "proxy_action": "a"}"#,
        )],
        actions: vec![Source::new("actions/a.json", r#"{"name": "a"}"#)],
        tls_profiles: Vec::new(),
    };
    let config = load(&sources);
    assert_eq!(config.global(), &Global::default());
    let p = config.policy("p").unwrap();
    assert!(p.enabled());
    assert_eq!(
        (p.direction(), p.tls_support()),
        (Direction::Outbound, TlsSupport::Enabled)
    );
    let a = p.action();
    assert_eq!(a.idle_timeout(), Duration::from_secs(600));
    assert_eq!(a.max_line_length(), 8192);
    assert_eq!(
        a.authentication().allow(),
        [AuthMethod::User, AuthMethod::Apop, AuthMethod::AnySasl]
    );
    assert!(!a.authentication().require_tls());
    // SPEC §4: `unparseable` defaults to `quarantine`.
    assert_eq!(a.unparseable(), Verdict::Quarantine);
    assert_eq!(a.tls().action(), TlsActionKind::Inspect);
    assert_eq!(a.tls().profile().as_ref(), &TlsProfile::builtin());
    assert_eq!(a.tls().profile().file(), None);
}

#[test]
fn action_idle_timeout_defaults_to_the_global_limit() {
    let mut sources = spec_sources();
    sources.global = Some(Source::new(
        "popgate.json",
        r#"{"limits": {"idle_timeout_s": 1200}}"#,
    ));
    sources.actions = vec![Source::new(
        "actions/a.json",
        r#"{"name": "POP3-Client.Standard"}"#,
    )];
    let config = load(&sources);
    let a = config.action("POP3-Client.Standard").unwrap();
    assert_eq!(a.idle_timeout(), Duration::from_secs(1200));
}

#[test]
fn upstream_forms_parse() {
    let cases = [
        (r#""pop.example.net""#, "pop.example.net", 110, 995),
        (r#""10.1.1.5:1110""#, "10.1.1.5", 1110, 1110),
        (r#""[::1]:110""#, "::1", 110, 110),
        (r#"{"host": "h", "pop3": 110, "pop3s": 995}"#, "h", 110, 995),
        (r#"{"host": "h", "pop3s": 1995}"#, "h", 110, 1995),
    ];
    for (json, host, pop3, pop3s) in cases {
        let mut sources = spec_sources();
        sources.global = Some(Source::new("popgate.json", r#"{"interception": "none"}"#));
        let policy = POLICY.replace(r#""upstream": null"#, &format!(r#""upstream": {json}"#));
        sources.policies = vec![Source::new("policies/out.json", policy)];
        let config = load(&sources);
        let u = config.policies()[0].upstream().unwrap();
        assert_eq!(u.host(), host, "{json}");
        assert_eq!(u.port_for(PortKind::Pop3), pop3, "{json}");
        assert_eq!(u.port_for(PortKind::Pop3s), pop3s, "{json}");
    }
}

#[test]
fn an_empty_directory_is_a_valid_configuration() {
    let config = load(&Sources::default());
    assert!(config.policies().is_empty());
    assert!(config.listen_ports().is_empty());
    assert_eq!(config.tls_profiles().len(), 1);
    assert_eq!(Config::default().global(), config.global());
}
