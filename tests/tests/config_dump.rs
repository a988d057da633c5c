//! `popgate config dump` (the effective configuration, defaults filled in) and
//! `popgate completions` (SPEC §6), as an administrator runs them.

use std::process::Command;
use std::time::Duration;

use popgate_tests::popgate::{popgate_bin, popgate_cli};
use popgate_tests::process::run_with_timeout;
use popgate_tests::ConfigDir;
use serde_json::{json, Value};

#[test]
fn config_dump_shows_the_effective_configuration_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    ConfigDir::relay("127.0.0.1:1110")
        .write(dir.path())
        .unwrap();
    let output = popgate_cli(["config", "dump", "--config", dir.path().to_str().unwrap()]).unwrap();
    assert!(output.status.success(), "{output:?}");
    let dump: Value = serde_json::from_slice(&output.stdout).unwrap();
    let keys: Vec<&String> = dump.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["global", "policies", "actions", "tls_profiles"]);
    assert_eq!(dump["global"]["interception"], "none");
    assert_eq!(
        dump["global"]["limits"]["shutdown_grace_s"], 30,
        "a default filled in"
    );
    assert_eq!(dump["global"]["quarantine"]["max_bytes"], 1_073_741_824u64);
    let policy = &dump["policies"][0];
    assert_eq!(policy["name"], "relay");
    assert_eq!(
        policy["upstream"],
        json!({ "host": "127.0.0.1", "port": 1110 })
    );
    assert_eq!(dump["actions"][0]["general"]["max_line_length"], 8192);
    assert_eq!(dump["tls_profiles"][0]["name"], "TLS-Client.Standard");
}

#[test]
fn config_dump_of_an_invalid_directory_prints_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    ConfigDir::relay("127.0.0.1:1110")
        .set("policies/relay.json", "/tls_support", json!("yes"))
        .set("actions/relay.json", "/spam_tag", json!(5))
        .write(dir.path())
        .unwrap();
    let output = popgate_cli(["config", "dump", "--config", dir.path().to_str().unwrap()]).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("policies/relay.json: .tls_support:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("actions/relay.json: .spam_tag:"),
        "{stderr}"
    );
}

#[test]
fn bash_completions_load_and_complete_the_commands() {
    let script = format!(
        "source <('{}' completions bash) && complete -p popgate",
        popgate_bin().unwrap().display()
    );
    let output = run_with_timeout(
        Command::new("bash").args(["-c", &script]),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("popgate"));
    for shell in ["zsh", "fish"] {
        let output = popgate_cli(["completions", shell]).unwrap();
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stdout).contains("quarantine"));
    }
    let bad = popgate_cli(["completions", "tcsh"]).unwrap();
    assert_eq!(bad.status.code(), Some(2), "a usage error");
}
