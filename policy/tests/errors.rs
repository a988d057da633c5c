//! One exact-message test per `ConfigErrorKind`, and the "report everything" contract.

use popgate_policy::{Config, ConfigErrorKind, Source, Sources};

const ACTION: &str = r#"{"name": "A"}"#;

fn policy(extra: &str) -> String {
    format!(
        r#"{{"name": "P", "order": 1, "from": ["any"], "to": ["any"], "proxy_action": "A"{extra}}}"#
    )
}

fn sources() -> Sources {
    Sources {
        global: None,
        policies: vec![Source::new("policies/p.json", policy(""))],
        actions: vec![Source::new("actions/a.json", ACTION)],
        tls_profiles: Vec::new(),
    }
}

fn errors(sources: &Sources) -> Vec<String> {
    match Config::from_sources(sources) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn with_global(json: &str) -> Vec<String> {
    let mut s = sources();
    s.global = Some(Source::new("popgate.json", json));
    errors(&s)
}

fn with_policy(extra: &str) -> Vec<String> {
    let mut s = sources();
    s.policies = vec![Source::new("policies/p.json", policy(extra))];
    errors(&s)
}

fn with_policy_json(json: &str) -> Vec<String> {
    let mut s = sources();
    s.policies = vec![Source::new("policies/p.json", json)];
    errors(&s)
}

fn with_action(json: &str) -> Vec<String> {
    let mut s = sources();
    s.actions = vec![Source::new("actions/a.json", json)];
    errors(&s)
}

fn with_profile(json: &str) -> Vec<String> {
    let mut s = sources();
    s.tls_profiles = vec![Source::new("tls-profiles/t.json", json)];
    errors(&s)
}

#[test]
fn valid_baseline_has_no_errors() {
    assert_eq!(errors(&sources()), Vec::<String>::new());
}

#[test]
fn syntax() {
    assert_eq!(
        with_global("{\n  \"user\": \"x\",\n"),
        ["popgate.json: .: invalid JSON at line 3 column 0: EOF while parsing a value"]
    );
    assert_eq!(
        with_global(r#"{"user": "x"} trailing"#),
        ["popgate.json: .: invalid JSON at line 1 column 15: trailing characters"]
    );
}

#[test]
fn unknown_field() {
    assert_eq!(
        with_policy(r#", "frobnicate": 1"#),
        ["policies/p.json: .frobnicate: unknown field"]
    );
    assert_eq!(
        with_global(r#"{"limits": {"max_conections": 5}}"#),
        ["popgate.json: .limits.max_conections: unknown field"]
    );
}

#[test]
fn missing_field() {
    assert_eq!(
        with_policy_json(r#"{"name": "P", "from": ["any"], "to": ["any"], "proxy_action": "A"}"#),
        ["policies/p.json: .order: missing required field"]
    );
    assert_eq!(
        with_action(r#"{"name": "A", "content_types": {"rules": [{"action": "deny"}]}}"#),
        ["actions/a.json: .content_types.rules[0].match: missing required field"]
    );
}

#[test]
fn duplicate_field() {
    assert_eq!(
        with_policy(r#", "order": 2"#),
        ["policies/p.json: .order: duplicate field"]
    );
}

#[test]
fn unknown_variant() {
    assert_eq!(
        with_policy(r#", "tls_support": "yes""#),
        [
            r#"policies/p.json: .tls_support: unknown variant "yes", expected one of disabled, enabled, required"#
        ]
    );
    assert_eq!(
        with_profile(r#"{"name": "T", "min_version": "1.1"}"#),
        [r#"tls-profiles/t.json: .min_version: unknown variant "1.1", expected one of 1.2, 1.3"#]
    );
}

#[test]
fn parse() {
    assert_eq!(
        with_policy(r#", "ports": {"pop3": 70000}"#),
        ["policies/p.json: .ports.pop3: invalid value: integer `70000`, expected u16"]
    );
    assert_eq!(
        with_policy_json(
            r#"{"name": "P", "order": 1, "from": ["any", 3], "to": ["any"], "proxy_action": "A"}"#
        ),
        ["policies/p.json: .from[1]: invalid type: integer `3`, expected a string"]
    );
}

#[test]
fn unknown_reference() {
    let mut s = sources();
    s.policies = vec![Source::new(
        "policies/p.json",
        policy("").replace("\"A\"", "\"Nope\""),
    )];
    assert_eq!(
        errors(&s),
        [r#"policies/p.json: .proxy_action: no proxy action named "Nope""#]
    );
    assert_eq!(
        with_action(r#"{"name": "A", "tls": {"profile": "Strict"}}"#),
        [r#"actions/a.json: .tls.profile: no TLS profile named "Strict""#]
    );
}

#[test]
fn duplicate_name() {
    let mut s = sources();
    s.actions.push(Source::new("actions/b.json", ACTION));
    assert_eq!(
        errors(&s),
        [r#"actions/b.json: .name: duplicate name "A", also defined in actions/a.json"#]
    );
}

#[test]
fn duplicate_order() {
    let mut s = sources();
    let other = policy(r#", "ports": {"pop3": 1110, "pop3s": 1995}"#).replace("\"P\"", "\"Q\"");
    s.policies
        .push(Source::new("policies/q.json", other.clone()));
    assert_eq!(
        errors(&s),
        [
            r#"policies/q.json: .order: order 1 is also used by enabled policy "P" (policies/p.json)"#
        ]
    );
    // Disabled policies may share an order.
    let disabled = other.replace("\"order\"", "\"enabled\": false, \"order\"");
    s.policies[1] = Source::new("policies/q.json", disabled);
    assert_eq!(errors(&s), Vec::<String>::new());
}

#[test]
fn inspect_with_tls_disabled() {
    assert_eq!(
        with_policy(r#", "tls_support": "disabled""#),
        [
            r#"policies/p.json: .tls_support: tls_support "disabled" cannot inspect TLS, but proxy action "A" has tls.action "inspect""#
        ]
    );
    let mut s = sources();
    s.policies = vec![Source::new(
        "policies/p.json",
        policy(r#", "tls_support": "disabled""#),
    )];
    s.actions = vec![Source::new(
        "actions/a.json",
        r#"{"name": "A", "tls": {"action": "allow"}}"#,
    )];
    assert_eq!(errors(&s), Vec::<String>::new());
}

#[test]
fn bad_address() {
    let json = r#"{"name": "P", "order": 1, "from": ["10.0.0.0/8", "any", "10.0.0.300"], "to": ["any"], "proxy_action": "A"}"#;
    assert_eq!(
        with_policy_json(json),
        ["policies/p.json: .from[2]: not an address, CIDR, wildcard or domain"]
    );
}

#[test]
fn domain_for_client() {
    let json = r#"{"name": "P", "order": 1, "from": ["example.com"], "to": ["example.com"], "proxy_action": "A"}"#;
    assert_eq!(
        with_policy_json(json),
        ["policies/p.json: .from[0]: a domain never matches a client address"]
    );
}

#[test]
fn empty_list() {
    let json = r#"{"name": "P", "order": 1, "from": ["any"], "to": [], "proxy_action": "A"}"#;
    assert_eq!(
        with_policy_json(json),
        ["policies/p.json: .to: an empty list matches nothing"]
    );
    assert_eq!(
        with_global(r#"{"bind_addresses": []}"#),
        ["popgate.json: .bind_addresses: an empty list matches nothing"]
    );
}

#[test]
fn missing_upstream() {
    assert_eq!(
        with_global(r#"{"interception": "none"}"#),
        [r#"policies/p.json: .upstream: interception "none" needs an upstream"#]
    );
    let mut s = sources();
    s.global = Some(Source::new("popgate.json", r#"{"interception": "none"}"#));
    s.policies = vec![Source::new(
        "policies/p.json",
        policy(r#", "upstream": "10.1.1.5""#),
    )];
    assert_eq!(errors(&s), Vec::<String>::new());
}

#[test]
fn spoof_needs_tproxy() {
    assert_eq!(
        with_global(r#"{"interception": "redirect", "spoof_client_address": true}"#),
        [
            r#"popgate.json: .spoof_client_address: spoof_client_address needs interception "tproxy", not "redirect""#
        ]
    );
    assert_eq!(
        with_global(r#"{"spoof_client_address": true}"#),
        Vec::<String>::new()
    );
}

#[test]
fn starttls_needs_required() {
    assert_eq!(
        with_policy(r#", "starttls_on_pop3": true"#),
        [
            r#"policies/p.json: .starttls_on_pop3: starttls_on_pop3 applies only to tls_support "required", not "enabled""#
        ]
    );
    assert_eq!(
        with_policy(r#", "tls_support": "required", "starttls_on_pop3": true"#),
        Vec::<String>::new()
    );
}

#[test]
fn port_conflict() {
    let mut s = sources();
    let other = policy(r#", "order": 2, "tls_support": "required", "ports": {"pop3s": 110}"#)
        .replace("\"P\"", "\"Q\"")
        .replace(r#""order": 1, "#, "");
    s.policies.push(Source::new("policies/q.json", other));
    assert_eq!(
        errors(&s),
        [
            r#"policies/q.json: .ports.pop3s: port 110 is the pop3 port of enabled policy "P" (policies/p.json); one port cannot serve both kinds"#
        ]
    );
}

#[test]
fn same_ports() {
    assert_eq!(
        with_policy(r#", "ports": {"pop3": 995}"#),
        ["policies/p.json: .ports: pop3 and pop3s are both port 995"]
    );
}

#[test]
fn out_of_range() {
    assert_eq!(
        with_action(r#"{"name": "A", "general": {"max_line_length": 998}}"#),
        ["actions/a.json: .general.max_line_length: 998 is out of range 1000 to 1048576"]
    );
    assert_eq!(
        with_global(r#"{"limits": {"handshake_timeout_s": 0}}"#),
        ["popgate.json: .limits.handshake_timeout_s: 0 is out of range 1 to 86400"]
    );
    assert_eq!(
        with_policy(r#", "ports": {"pop3": 0}"#),
        ["policies/p.json: .ports.pop3: 0 is out of range 1 to 65535"]
    );
}

#[test]
fn zero_mark() {
    assert_eq!(
        with_global(r#"{"upstream_mark": 0}"#),
        [
            r#"popgate.json: .upstream_mark: 0 leaves upstream sockets unmarked; allowed only with interception "none""#
        ]
    );
}

#[test]
fn bad_upstream() {
    assert_eq!(
        with_policy(r#", "upstream": "host:0""#),
        [r#"policies/p.json: .upstream: "host:0" is not host, host:port or [IPv6]:port"#]
    );
    assert_eq!(
        with_policy(r#", "upstream": {"host": "h", "port": 110}"#),
        ["policies/p.json: .upstream.port: unknown field"]
    );
}

#[test]
fn bad_clamd() {
    assert_eq!(
        with_action(r#"{"name": "A", "antivirus": {"clamd": "tcp:localhost"}}"#),
        [
            r#"actions/a.json: .antivirus.clamd: "tcp:localhost" is not unix:/absolute/path or tcp:host:port"#
        ]
    );
}

#[test]
fn bad_ip_and_socket_address() {
    assert_eq!(
        with_global(r#"{"bind_addresses": ["0.0.0.0", "localhost"]}"#),
        [r#"popgate.json: .bind_addresses[1]: "localhost" is not an IP address"#]
    );
    assert_eq!(
        with_global(r#"{"metrics": {"listen": "9464"}}"#),
        [r#"popgate.json: .metrics.listen: "9464" is not IP:port"#]
    );
}

#[test]
fn bad_auth_mechanism() {
    assert_eq!(
        with_action(r#"{"name": "A", "authentication": {"allow": ["USER", "PLAIN"]}}"#),
        [
            r#"actions/a.json: .authentication.allow[1]: unknown mechanism "PLAIN", expected USER, APOP, SASL:NAME or SASL:*"#
        ]
    );
}

#[test]
fn bad_patterns() {
    assert_eq!(
        with_action(
            r#"{"name": "A", "content_types": {"rules": [{"match": "exe", "action": "deny"}]}}"#
        ),
        [r#"actions/a.json: .content_types.rules[0].match: "exe" is not type/subtype or type/*"#]
    );
    assert_eq!(
        with_action(r#"{"name": "A", "file_names": {"rules": [{"match": "", "action": "deny"}]}}"#),
        [r#"actions/a.json: .file_names.rules[0].match: "" is not a file-name pattern"#]
    );
    assert_eq!(
        with_action(
            r#"{"name": "A", "headers": {"rules": [{"match": "X-Spam-Flag", "action": "tag"}]}}"#
        ),
        [
            r#"actions/a.json: .headers.rules[0].match: "X-Spam-Flag" is not "Name: value" (use "Name: *" for any value)"#
        ]
    );
}

#[test]
fn bad_name() {
    assert_eq!(
        with_action(r#"{"name": " A"}"#)[0],
        "actions/a.json: .name: a name must be 1 to 128 characters, without control characters or outer spaces"
    );
}

#[test]
fn verdict_not_allowed() {
    assert_eq!(
        with_action(r#"{"name": "A", "antivirus": {"on_virus": "tag"}}"#),
        [
            r#"actions/a.json: .antivirus.on_virus: verdict "tag" is not allowed here, expected one of deny, quarantine, strip"#
        ]
    );
    assert_eq!(
        with_action(
            r#"{"name": "A", "headers": {"rules": [{"match": "X-A: 1", "action": "strip"}]}}"#
        ),
        [
            r#"actions/a.json: .headers.rules[0].action: verdict "strip" is not allowed here, expected one of allow, deny, quarantine, tag"#
        ]
    );
}

#[test]
fn control_character() {
    assert_eq!(
        with_action(r#"{"name": "A", "spam_tag": "[SPAM]\r\nBcc: x"}"#),
        ["actions/a.json: .spam_tag: must not contain control characters"]
    );
}

#[test]
fn placeholders() {
    assert_eq!(
        with_action(r#"{"name": "A", "deny_message": "Removed by {polcy}"}"#),
        ["actions/a.json: .deny_message: unknown placeholder {polcy}, expected {filename}, {policy}, {action} or {reason}"]
    );
    assert_eq!(
        with_action(r#"{"name": "A", "deny_message": "Removed by {policy"}"#),
        [r#"actions/a.json: .deny_message: unclosed "{""#]
    );
}

#[test]
fn no_trust_anchors() {
    assert_eq!(
        with_profile(
            r#"{"name": "T", "certificate_validation": "chain-only", "trust": {"system_roots": false}}"#
        ),
        [
            r#"tls-profiles/t.json: .trust: certificate_validation "chain-only" needs trust.system_roots or trust.ca_files"#
        ]
    );
}

#[test]
fn empty() {
    assert_eq!(
        with_global(r#"{"user": ""}"#),
        ["popgate.json: .user: must not be empty"]
    );
    assert_eq!(
        with_global(r#"{"state_dir": "var/lib/popgate"}"#),
        ["popgate.json: .state_dir: \"var/lib/popgate\" is not an absolute path"]
    );
    assert_eq!(
        with_profile(r#"{"name": "T", "trust": {"ca_files": [""]}}"#),
        ["tls-profiles/t.json: .trust.ca_files[0]: must not be empty"]
    );
}

#[test]
fn every_file_is_checked_and_every_error_reported() {
    let s = Sources {
        global: Some(Source::new("popgate.json", r#"{"interception": "nat"}"#)),
        policies: vec![
            Source::new("policies/b.json", policy(r#", "tls_support": "yes""#)),
            Source::new("policies/a.json", policy(r#", "frobnicate": true"#)),
            Source::new(
                "policies/c.json",
                r#"{"name": "C", "order": 3, "from": ["10.0.0.*", "bad"], "to": ["any"], "proxy_action": "Broken"}"#,
            ),
        ],
        actions: vec![
            Source::new("actions/a.json", ACTION),
            Source::new(
                "actions/broken.json",
                r#"{"name": "Broken", "unparseable": "maybe"}"#,
            ),
        ],
        tls_profiles: vec![Source::new("tls-profiles/t.json", "not json")],
    };
    assert_eq!(
        errors(&s),
        [
            r#"popgate.json: .interception: unknown variant "nat", expected one of tproxy, redirect, none"#,
            "tls-profiles/t.json: .: invalid JSON at line 1 column 2: expected ident",
            r#"actions/broken.json: .unparseable: unknown variant "maybe", expected one of allow, strip, deny, quarantine, tag"#,
            "policies/a.json: .frobnicate: unknown field",
            r#"policies/b.json: .tls_support: unknown variant "yes", expected one of disabled, enabled, required"#,
            // The reference to the broken action is not reported a second time.
            "policies/c.json: .from[1]: not an address, CIDR, wildcard or domain",
        ]
    );
}

#[test]
fn errors_carry_typed_kinds() {
    let mut s = sources();
    s.policies = vec![Source::new(
        "policies/p.json",
        policy(r#", "tls_support": "yes""#),
    )];
    let errs = Config::from_sources(&s).unwrap_err();
    assert_eq!(errs[0].file, "policies/p.json");
    assert_eq!(errs[0].path, ".tls_support");
    assert_eq!(
        errs[0].kind,
        ConfigErrorKind::UnknownVariant {
            found: "yes".into(),
            expected: vec!["disabled".into(), "enabled".into(), "required".into()],
        }
    );
}

#[test]
fn state_paths_must_be_absolute() {
    assert_eq!(
        with_global(r#"{"state_dir": "state", "control": {"socket": "c.sock"}}"#),
        [
            "popgate.json: .state_dir: \"state\" is not an absolute path",
            "popgate.json: .control.socket: \"c.sock\" is not an absolute path",
        ]
    );
    assert_eq!(
        with_global(r#"{"quarantine": {"max_age_days": 0}}"#),
        ["popgate.json: .quarantine.max_age_days: 0 is out of range 1 to 36500"]
    );
}

#[test]
fn every_error_of_one_file_is_reported_not_only_serdes_first() {
    // Two schema errors and a semantic one in the same file; the starttls rule depends on
    // the (invalid, hence unknown) tls_support and is not guessed at.
    let json = r#"{"name": "P", "order": 1, "from": ["any", "not an address"], "to": ["any"],
        "proxy_action": "A", "frobnicate": true, "tls_support": "yes",
        "starttls_on_pop3": true}"#;
    assert_eq!(
        with_policy_json(json),
        [
            "policies/p.json: .frobnicate: unknown field",
            r#"policies/p.json: .tls_support: unknown variant "yes", expected one of disabled, enabled, required"#,
            "policies/p.json: .from[1]: not an address, CIDR, wildcard or domain",
        ]
    );
    // Same in an action and in popgate.json (after serde's first error, the order is the
    // order in which the rest is found, not always the file's).
    assert_eq!(
        with_action(r#"{"name": "A", "spam_tag": 5, "unparseable": "maybe", "extra": 1}"#),
        [
            r#"actions/a.json: .spam_tag: invalid type: integer `5`, expected a string"#,
            "actions/a.json: .extra: unknown field",
            r#"actions/a.json: .unparseable: unknown variant "maybe", expected one of allow, strip, deny, quarantine, tag"#,
        ]
    );
    assert_eq!(
        with_global(
            r#"{"interception": "nat", "log": {"format": "xml"}, "bind_addresses": ["x"]}"#
        ),
        [
            r#"popgate.json: .interception: unknown variant "nat", expected one of tproxy, redirect, none"#,
            r#"popgate.json: .log.format: unknown variant "xml", expected one of json, text"#,
            r#"popgate.json: .bind_addresses[0]: "x" is not an IP address"#,
        ]
    );
}
