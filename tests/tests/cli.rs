//! The administrator commands of SPEC §6 run as a user would: `popgate policy`, `action`,
//! `ca` and `cert` against configuration directories on disk. Exit codes: 0 ok, 1 invalid
//! configuration / not found / refused, 2 usage.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use popgate_tests::admin_cli::{
    file_mode, popgate_admin, sign_ca_request, GUEST_POLICY, INBOUND_POLICY, OUT_POLICY,
};
use popgate_tests::{require_peers, ConfigDir, Peer, TestPki};
use serde_json::{json, Value};
use tempfile::TempDir;

fn written(config: &ConfigDir) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("popgate-cli-")
        .tempdir()
        .unwrap();
    config.write(dir.path()).unwrap();
    dir
}

/// Every file under `dir`, with its bytes, for "nothing changed" checks.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.display().to_string(), fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn action_show_lists_every_policy_using_it_with_tls_support() {
    let dir = written(&ConfigDir::shared_action());
    let run = popgate_admin(
        dir.path(),
        &["action", "show", "POP3-Client.Standard", "--json"],
    );
    run.assert_code(0);
    assert_eq!(
        run.json(),
        json!({
            "name": "POP3-Client.Standard",
            "tls_profile": "TLS-Client.Standard",
            "policies": [
                { "name": "POP3-proxy-out", "enabled": true, "tls_support": "enabled" },
                { "name": "guest", "enabled": false, "tls_support": "required" }
            ]
        })
    );
    let human = popgate_admin(dir.path(), &["action", "show", "POP3-Client.Standard"]);
    human.assert_code(0);
    assert!(
        human
            .stdout
            .contains("  POP3-proxy-out  yes      enabled\n"),
        "{human:#?}"
    );
    assert!(
        human
            .stdout
            .contains("  guest           no       required\n"),
        "{human:#?}"
    );
}

#[test]
fn action_list_json_names_the_policies_of_each_action() {
    let dir = written(&ConfigDir::shared_action());
    let run = popgate_admin(dir.path(), &["action", "list", "--json"]);
    run.assert_code(0);
    assert_eq!(
        run.json(),
        json!([
            { "name": "POP3-Client.Standard", "file": "actions/standard.json",
              "tls_action": "inspect", "tls_profile": "TLS-Client.Standard",
              "policies": ["POP3-proxy-out", "guest"] },
            { "name": "Relay", "file": "actions/relay.json", "tls_action": "allow",
              "tls_profile": "TLS-Client.Standard", "policies": ["inbound-mx"] }
        ])
    );
}

#[test]
fn action_show_unknown_name_exits_1_naming_known_actions() {
    let dir = written(&ConfigDir::shared_action());
    let run = popgate_admin(dir.path(), &["action", "show", "Nope"]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("no proxy action named \"Nope\"; known actions: POP3-Client.Standard, Relay"),
        "{run:#?}"
    );
}

#[test]
fn policy_list_json_has_the_spec_fields_in_order() {
    let dir = written(&ConfigDir::shared_action());
    let run = popgate_admin(dir.path(), &["policy", "list", "--json"]);
    run.assert_code(0);
    assert_eq!(
        run.json(),
        json!([
            { "name": "POP3-proxy-out", "file": "policies/out.json", "enabled": true,
              "order": 10, "direction": "outbound", "tls_support": "enabled",
              "proxy_action": "POP3-Client.Standard" },
            { "name": "guest", "file": "policies/guest.json", "enabled": false, "order": 20,
              "direction": "outbound", "tls_support": "required",
              "proxy_action": "POP3-Client.Standard" },
            { "name": "inbound-mx", "file": "policies/inbound.json", "enabled": true,
              "order": 30, "direction": "inbound", "tls_support": "disabled",
              "proxy_action": "Relay" }
        ])
    );
    let human = popgate_admin(dir.path(), &["policy", "list"]);
    human.assert_code(0);
    let lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{human:#?}");
    assert!(
        lines[0].starts_with("ORDER  NAME            ENABLED"),
        "{human:#?}"
    );
    assert!(
        lines[2].starts_with("20     guest           no "),
        "{human:#?}"
    );
}

#[test]
fn policy_show_json_describes_one_policy() {
    let dir = written(&ConfigDir::shared_action());
    let run = popgate_admin(dir.path(), &["policy", "show", "guest", "--json"]);
    run.assert_code(0);
    assert_eq!(
        run.json(),
        json!({
            "name": "guest", "file": "policies/guest.json", "enabled": false, "order": 20,
            "direction": "outbound", "tls_support": "required", "starttls_on_pop3": false,
            "ports": { "pop3": 110, "pop3s": 1995 }, "from": ["172.16.0.0/12"],
            "to": ["any"], "upstream": null, "proxy_action": "POP3-Client.Standard",
            "tls_action": "inspect", "tls_profile": "TLS-Client.Standard"
        })
    );
}

#[test]
fn policy_disable_and_enable_change_only_the_enabled_value() {
    let dir = written(&ConfigDir::shared_action());
    let file = dir.path().join(OUT_POLICY);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let original = fs::read_to_string(&file).unwrap();
    let others = [GUEST_POLICY, INBOUND_POLICY].map(|f| fs::read(dir.path().join(f)).unwrap());
    assert_eq!(original.matches("\"enabled\": true").count(), 1);

    let run = popgate_admin(dir.path(), &["policy", "disable", "POP3-proxy-out"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "policy POP3-proxy-out disabled (policies/out.json)\n"
    );
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        original.replace("\"enabled\": true", "\"enabled\": false")
    );
    assert_eq!(file_mode(&file), 0o640);
    let listed = popgate_admin(dir.path(), &["policy", "list", "--json"]);
    assert_eq!(listed.assert_code(0).json()[0]["enabled"], json!(false));

    let again = popgate_admin(dir.path(), &["policy", "disable", "POP3-proxy-out"]);
    again.assert_code(0);
    assert!(again.stdout.contains("already disabled"), "{again:#?}");

    popgate_admin(dir.path(), &["policy", "enable", "POP3-proxy-out"]).assert_code(0);
    assert_eq!(fs::read_to_string(&file).unwrap(), original);
    assert_eq!(file_mode(&file), 0o640);
    for (name, before) in [GUEST_POLICY, INBOUND_POLICY].iter().zip(&others) {
        assert_eq!(&fs::read(dir.path().join(name)).unwrap(), before, "{name}");
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "temporary files left: {leftovers:?}");
}

#[test]
fn policy_enable_inserts_a_missing_enabled_field() {
    let dir = written(&ConfigDir::shared_action());
    let file = dir.path().join(INBOUND_POLICY);
    let original = fs::read_to_string(&file).unwrap();
    assert!(!original.contains("\"enabled\""));
    popgate_admin(dir.path(), &["policy", "disable", "inbound-mx"]).assert_code(0);
    let changed = fs::read_to_string(&file).unwrap();
    assert_eq!(
        changed,
        original.replacen("{\n  ", "{\n  \"enabled\": false,\n  ", 1)
    );
}

#[test]
fn policy_commands_with_unknown_names_exit_1_naming_known_policies() {
    let dir = written(&ConfigDir::shared_action());
    let before = snapshot(dir.path());
    for command in ["enable", "disable", "show"] {
        let run = popgate_admin(dir.path(), &["policy", command, "nope"]);
        run.assert_code(1);
        assert!(
            run.stderr.contains(
                "no policy named \"nope\"; known policies: POP3-proxy-out, guest, inbound-mx"
            ),
            "{command}: {run:#?}"
        );
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn usage_errors_exit_2() {
    let dir = written(&ConfigDir::shared_action());
    popgate_admin(dir.path(), &["policy", "enable"]).assert_code(2);
    popgate_admin(dir.path(), &["policy", "frobnicate"]).assert_code(2);
    popgate_admin(dir.path(), &["ca", "init", "--key-type", "dsa-512"]).assert_code(2);
    popgate_admin(dir.path(), &["cert", "server"]).assert_code(2);
    popgate_admin(dir.path(), &["cert", "server", "--generate"]).assert_code(2);
}

#[test]
fn broken_policy_file_is_reported_and_the_others_still_listed_and_toggled() {
    let config = ConfigDir::shared_action().raw("policies/zz-broken.json", "{ \"name\": ");
    let dir = written(&config);
    let run = popgate_admin(dir.path(), &["policy", "list", "--json"]);
    run.assert_code(1);
    let names: Vec<Value> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("POP3-proxy-out"), json!("guest"), json!("inbound-mx")]
    );
    assert!(run.stderr.contains("policies/zz-broken.json: "), "{run:#?}");

    let human = popgate_admin(dir.path(), &["policy", "list"]);
    human.assert_code(1);
    assert_eq!(human.stdout.lines().count(), 4, "{human:#?}");

    let shown = popgate_admin(dir.path(), &["action", "show", "Relay", "--json"]);
    shown.assert_code(1);
    assert_eq!(shown.json()["policies"][0]["name"], json!("inbound-mx"));

    let toggled = popgate_admin(dir.path(), &["policy", "disable", "guest"]);
    toggled.assert_code(0);
    assert!(
        toggled.stderr.contains("policies/zz-broken.json"),
        "the warning names the broken file: {toggled:#?}"
    );
    assert_eq!(
        fs::read(dir.path().join("policies/zz-broken.json")).unwrap(),
        b"{ \"name\": "
    );
    let unknown = popgate_admin(dir.path(), &["policy", "enable", "nope"]);
    unknown.assert_code(1);
    assert!(
        unknown
            .stderr
            .contains("policies/zz-broken.json (not valid JSON"),
        "{unknown:#?}"
    );
}

#[test]
fn ca_init_writes_private_keys_and_refuses_to_overwrite_without_force() {
    let dir = written(&ConfigDir::empty());
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    let pki = dir.path().join("pki");
    assert_eq!(file_mode(&pki), 0o700);
    for key in ["ca.key", "untrusted-ca.key"] {
        assert_eq!(file_mode(&pki.join(key)), 0o600, "{key}");
    }
    for cert in ["ca.crt", "untrusted-ca.crt"] {
        assert_eq!(file_mode(&pki.join(cert)), 0o644, "{cert}");
    }
    let before = snapshot(dir.path());

    let refused = popgate_admin(dir.path(), &["ca", "init", "--subject", "CN=Other"]);
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("ca.crt") && refused.stderr.contains("--force"),
        "{refused:#?}"
    );
    assert_eq!(snapshot(dir.path()), before);

    let forced = popgate_admin(
        dir.path(),
        &[
            "ca",
            "init",
            "--force",
            "--subject",
            "CN=Example Proxy CA,O=Example Ltd,C=GB",
            "--days",
            "400",
        ],
    );
    forced.assert_code(0);
    assert_ne!(snapshot(dir.path()), before);
    let shown = popgate_admin(dir.path(), &["cert", "show", "--json"]);
    let certs = shown.assert_code(0).json();
    assert_eq!(certs[0]["role"], json!("ca"));
    assert_eq!(
        certs[0]["subject"],
        json!("CN=Example Proxy CA,O=Example Ltd,C=GB")
    );
    assert_eq!(certs[0]["days_left"], json!(399));
    assert_eq!(certs[1]["role"], json!("untrusted"));
    assert_eq!(certs[1]["subject"], json!("CN=popgate untrusted CA"));
}

#[test]
fn ca_export_prints_the_authority_as_pem_and_der() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    popgate_admin(dir.path(), &["ca", "init", "--subject", "CN=Export Test"]).assert_code(0);
    let pem = popgate_admin(dir.path(), &["ca", "export"]);
    pem.assert_code(0);
    assert_eq!(
        pem.stdout,
        fs::read_to_string(dir.path().join("pki/ca.crt")).unwrap()
    );
    let der = popgate_admin(dir.path(), &["ca", "export", "--der"]);
    der.assert_code(0);
    let der_file = dir.path().join("ca.der");
    fs::write(&der_file, &der.stdout_bytes).unwrap();
    let subject = Command::new("openssl")
        .args(["x509", "-inform", "der", "-noout", "-subject", "-in"])
        .arg(&der_file)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&subject.stdout).trim(),
        "subject=CN = Export Test"
    );
}

#[test]
fn ca_csr_signed_by_an_external_ca_installs_and_shows() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("request");
    let run = popgate_admin(
        dir.path(),
        &[
            "ca",
            "csr",
            "--subject",
            "CN=Example Proxy CA,O=Example Ltd,C=GB",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    run.assert_code(0);
    assert_eq!(file_mode(&out.join("privkey.pem")), 0o600);
    assert_eq!(file_mode(&dir.path().join("pki/pending-ca.key")), 0o600);
    assert_eq!(
        fs::read(out.join("privkey.pem")).unwrap(),
        fs::read(dir.path().join("pki/pending-ca.key")).unwrap()
    );
    let again = popgate_admin(
        dir.path(),
        &[
            "ca",
            "csr",
            "--subject",
            "CN=x",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    again.assert_code(1);
    assert!(again.stderr.contains("pending-ca.key"), "{again:#?}");

    let org = TestPki::generate(&work.path().join("org")).unwrap();
    let signed = work.path().join("signed.pem");
    sign_ca_request(&org, &out.join("request.pem"), &signed).unwrap();
    let installed = popgate_admin(
        dir.path(),
        &["ca", "install", "--cert", signed.to_str().unwrap()],
    );
    installed.assert_code(0);
    let pki = dir.path().join("pki");
    assert_eq!(file_mode(&pki.join("ca.key")), 0o600);
    assert!(!pki.join("pending-ca.key").exists());
    assert!(pki.join("untrusted-ca.key").exists());

    let shown = popgate_admin(dir.path(), &["cert", "show", "--json"]);
    let certs = shown.assert_code(0).json();
    assert_eq!(certs[0]["role"], json!("ca"));
    assert_eq!(
        certs[0]["subject"],
        json!("CN=Example Proxy CA,O=Example Ltd,C=GB")
    );
    assert_eq!(certs[0]["key_type"], json!("ecdsa-p256"));

    // The installed authority signs a server certificate that chains to the organisation CA.
    popgate_admin(
        dir.path(),
        &["cert", "server", "--generate", "--san", "mail.example.com"],
    )
    .assert_code(0);
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&org.ca_cert)
        .arg("-untrusted")
        .arg(pki.join("ca.crt"))
        .arg(pki.join("server.crt"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

#[test]
fn ca_install_refuses_a_certificate_for_another_key_and_changes_nothing() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    let work = tempfile::tempdir().unwrap();
    popgate_admin(
        dir.path(),
        &[
            "ca",
            "csr",
            "--subject",
            "CN=Mine",
            "--out",
            work.path().to_str().unwrap(),
        ],
    )
    .assert_code(0);
    // A request for a different key, signed as a CA by the organisation.
    let other = tempfile::tempdir().unwrap();
    let other_config = written(&ConfigDir::empty());
    popgate_admin(
        other_config.path(),
        &[
            "ca",
            "csr",
            "--subject",
            "CN=Theirs",
            "--out",
            other.path().to_str().unwrap(),
        ],
    )
    .assert_code(0);
    let org = TestPki::generate(&work.path().join("org")).unwrap();
    let signed = work.path().join("signed.pem");
    sign_ca_request(&org, &other.path().join("request.pem"), &signed).unwrap();

    let before = snapshot(dir.path());
    let run = popgate_admin(
        dir.path(),
        &["ca", "install", "--cert", signed.to_str().unwrap()],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "{} certifies another key, not the pending request's",
            signed.display()
        )),
        "{run:#?}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn cert_server_generate_then_cert_show_lists_every_role() {
    let dir = written(&ConfigDir::empty());
    let no_ca = popgate_admin(
        dir.path(),
        &["cert", "server", "--generate", "--san", "localhost"],
    );
    no_ca.assert_code(1);
    assert!(no_ca.stderr.contains("no Proxy Authority"), "{no_ca:#?}");

    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    popgate_admin(
        dir.path(),
        &[
            "cert",
            "server",
            "--generate",
            "--san",
            "localhost,127.0.0.1",
        ],
    )
    .assert_code(0);
    assert_eq!(file_mode(&dir.path().join("pki/server.key")), 0o600);
    let run = popgate_admin(dir.path(), &["cert", "show", "--json"]);
    run.assert_code(0);
    let certs = run.json();
    let certs = certs.as_array().unwrap();
    let roles: Vec<&str> = certs.iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["ca", "server", "untrusted"]);
    let server = &certs[1];
    assert_eq!(server["subject"], json!("CN=localhost"));
    assert_eq!(server["sans"], json!(["localhost", "127.0.0.1"]));
    assert_eq!(server["key_type"], json!("ecdsa-p256"));
    assert_eq!(server["days_left"], json!(824));
    assert!(server["not_after"].as_str().unwrap().ends_with('Z'));
    for cert in certs {
        let keys: Vec<&str> = cert
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "role",
                "subject",
                "sans",
                "key_type",
                "not_after",
                "days_left"
            ]
        );
    }
    let human = popgate_admin(dir.path(), &["cert", "show"]);
    human.assert_code(0);
    assert!(human.stdout.contains("localhost,127.0.0.1"), "{human:#?}");
    assert!(!human.stderr.contains("warning"), "{human:#?}");
}

#[test]
fn cert_show_warns_about_a_certificate_expiring_within_30_days() {
    let dir = written(&ConfigDir::empty());
    popgate_admin(dir.path(), &["ca", "init", "--days", "10"]).assert_code(0);
    let run = popgate_admin(dir.path(), &["cert", "show"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("warning: the ca certificate ")
            && run.stderr.contains("expires in 9 days"),
        "{run:#?}"
    );
}

#[test]
fn cert_server_import_of_a_combined_pem() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    let work = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(work.path()).unwrap();
    let combined = work.path().join("server.pem");
    let mut bytes = fs::read(&pki.server_cert).unwrap();
    bytes.extend(fs::read(&pki.server_key).unwrap());
    fs::write(&combined, bytes).unwrap();
    popgate_admin(
        dir.path(),
        &["cert", "server", "--import", combined.to_str().unwrap()],
    )
    .assert_code(0);
    assert_eq!(file_mode(&dir.path().join("pki/server.key")), 0o600);
    let certs = popgate_admin(dir.path(), &["cert", "show", "--json"])
        .assert_code(0)
        .json();
    assert_eq!(certs[0]["role"], json!("server"));
    assert_eq!(certs[0]["sans"], json!(["localhost", "127.0.0.1", "::1"]));

    // A key that is not the certificate's is refused, naming both files.
    let other = TestPki::generate(&work.path().join("other")).unwrap();
    let before = snapshot(dir.path());
    let run = popgate_admin(
        dir.path(),
        &[
            "cert",
            "server",
            "--import",
            pki.server_cert.to_str().unwrap(),
            "--key",
            other.server_key.to_str().unwrap(),
        ],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "{} does not match the private key {}",
            pki.server_cert.display(),
            other.server_key.display()
        )),
        "{run:#?}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn ca_import_of_a_combined_pem_becomes_the_proxy_authority() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    let work = tempfile::tempdir().unwrap();
    let org = TestPki::generate(work.path()).unwrap();
    let combined = work.path().join("ca-combined.pem");
    let mut bytes = fs::read(&org.ca_key).unwrap();
    bytes.extend(fs::read(&org.ca_cert).unwrap());
    fs::write(&combined, bytes).unwrap();
    let run = popgate_admin(
        dir.path(),
        &["ca", "import", "--cert", combined.to_str().unwrap()],
    );
    run.assert_code(0);
    assert_eq!(file_mode(&dir.path().join("pki/ca.key")), 0o600);
    let certs = popgate_admin(dir.path(), &["cert", "show", "--json"])
        .assert_code(0)
        .json();
    assert_eq!(certs[0]["role"], json!("ca"));
    assert_eq!(
        certs[0]["subject"],
        json!("O=popgate tests,CN=popgate test CA")
    );
    assert_eq!(certs[1]["role"], json!("untrusted"));

    // A server certificate (not a CA) is refused as a Proxy Authority.
    let refused = popgate_admin(
        dir.path(),
        &[
            "ca",
            "import",
            "--cert",
            org.server_cert.to_str().unwrap(),
            "--key",
            org.server_key.to_str().unwrap(),
        ],
    );
    refused.assert_code(1);
    assert!(
        refused.stderr.contains(&format!(
            "{}: not usable as a CA: certificate is not a CA",
            org.server_cert.display()
        )),
        "{refused:#?}"
    );
}

#[test]
fn corrupt_keys_are_reported_naming_the_file_and_nothing_is_written() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    let work = tempfile::tempdir().unwrap();
    let org = TestPki::generate(work.path()).unwrap();
    let corrupt = work.path().join("corrupt.key");
    fs::write(
        &corrupt,
        // A PKCS#8 P-256 key cut short after its header.
        "-----BEGIN PRIVATE KEY-----\n\
         MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n\
         -----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let run = popgate_admin(
        dir.path(),
        &[
            "ca",
            "import",
            "--cert",
            org.ca_cert.to_str().unwrap(),
            "--key",
            corrupt.to_str().unwrap(),
        ],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "popgate: {}: unusable private key: ",
            corrupt.display()
        )),
        "{run:#?}"
    );
    assert!(!dir.path().join("pki/ca.crt").exists());

    // A damaged pki/ca.key: commands needing the authority name it and write nothing.
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    let ca_key = dir.path().join("pki/ca.key");
    fs::write(&ca_key, "not a key\n").unwrap();
    let before = snapshot(dir.path());
    let run = popgate_admin(
        dir.path(),
        &["cert", "server", "--generate", "--san", "localhost"],
    );
    run.assert_code(1);
    assert!(
        run.stderr
            .contains(&format!("{}: unusable private key: ", ca_key.display())),
        "{run:#?}"
    );
    assert_eq!(snapshot(dir.path()), before);

    // A damaged certificate: `cert show` names it and still shows the others.
    let server_crt = dir.path().join("pki/server.crt");
    fs::write(
        &server_crt,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let run = popgate_admin(dir.path(), &["cert", "show", "--json"]);
    run.assert_code(1);
    let roles: Vec<Value> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].clone())
        .collect();
    assert_eq!(roles, [json!("ca"), json!("untrusted")]);
    assert!(
        run.stderr.contains(&format!(
            "popgate: {}: unusable certificate: ",
            server_crt.display()
        )),
        "{run:#?}"
    );
}

#[test]
fn every_certificate_popgate_writes_is_strict_der() {
    require_peers!(Peer::Python3, Peer::PythonCryptography);
    use popgate_tests::strict_x509;
    // The checker itself refuses what popgate wrote before the fix.
    let err = strict_x509::check_file(strict_x509::known_bad_certificate()).unwrap_err();
    assert!(format!("{err:#}").contains("EncodedDefault"), "{err:#}");

    let dir = written(&ConfigDir::empty());
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    popgate_admin(
        dir.path(),
        &[
            "cert",
            "server",
            "--generate",
            "--san",
            "pop.example.com,10.1.1.5",
        ],
    )
    .assert_code(0);
    let out = dir.path().join("csr");
    popgate_admin(
        dir.path(),
        &[
            "ca",
            "csr",
            "--subject",
            "CN=Sub CA",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .assert_code(0);
    let rsa = written(&ConfigDir::empty());
    popgate_admin(rsa.path(), &["ca", "init", "--key-type", "rsa-2048"]).assert_code(0);

    for (file, objects) in [
        (dir.path().join("pki/ca.crt"), 1),
        (dir.path().join("pki/untrusted-ca.crt"), 1),
        // The leaf and the Proxy Authority after it.
        (dir.path().join("pki/server.crt"), 2),
        (out.join("request.pem"), 1),
        (rsa.path().join("pki/ca.crt"), 1),
        (rsa.path().join("pki/untrusted-ca.crt"), 1),
    ] {
        let lines = strict_x509::check_file(&file).unwrap();
        assert_eq!(lines.len(), objects, "{}: {lines:?}", file.display());
        assert!(lines.iter().all(|l| l.starts_with("ok ")), "{lines:?}");
    }
}

#[test]
fn ca_import_refuses_to_replace_the_proxy_authority_without_force() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    let before = snapshot(dir.path());
    let work = tempfile::tempdir().unwrap();
    let org = TestPki::generate(work.path()).unwrap();
    let args = [
        "ca",
        "import",
        "--cert",
        org.ca_cert.to_str().unwrap(),
        "--key",
        org.ca_key.to_str().unwrap(),
    ];
    let refused = popgate_admin(dir.path(), &args);
    refused.assert_code(1);
    let pki = dir.path().join("pki");
    assert_eq!(
        refused.stderr,
        format!(
            "popgate: {}, {} already exist; nothing was changed (--force replaces them, and \
             clients must then trust the new Proxy Authority)\n",
            pki.join("ca.crt").display(),
            pki.join("ca.key").display()
        )
    );
    assert_eq!(snapshot(dir.path()), before);

    let mut forced = args.to_vec();
    forced.push("--force");
    popgate_admin(dir.path(), &forced).assert_code(0);
    assert_eq!(
        fs::read(pki.join("ca.crt")).unwrap(),
        fs::read(&org.ca_cert).unwrap()
    );
}

#[test]
fn cert_server_refuses_to_replace_the_server_certificate_without_force() {
    require_peers!(Peer::Openssl);
    let dir = written(&ConfigDir::empty());
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    let generate = ["cert", "server", "--generate", "--san", "localhost"];
    popgate_admin(dir.path(), &generate).assert_code(0);
    let before = snapshot(dir.path());
    let pki = dir.path().join("pki");
    let expected = format!(
        "popgate: {}, {} already exist; nothing was changed (--force replaces them, and \
         inbound clients are then shown the new certificate)\n",
        pki.join("server.crt").display(),
        pki.join("server.key").display()
    );

    let refused = popgate_admin(dir.path(), &generate);
    refused.assert_code(1);
    assert_eq!(refused.stderr, expected);
    assert_eq!(snapshot(dir.path()), before);

    let work = tempfile::tempdir().unwrap();
    let other = TestPki::generate(work.path()).unwrap();
    let import = [
        "cert",
        "server",
        "--import",
        other.server_cert.to_str().unwrap(),
        "--key",
        other.server_key.to_str().unwrap(),
    ];
    let refused = popgate_admin(dir.path(), &import);
    refused.assert_code(1);
    assert_eq!(refused.stderr, expected);
    assert_eq!(snapshot(dir.path()), before);

    let mut forced = import.to_vec();
    forced.push("--force");
    popgate_admin(dir.path(), &forced).assert_code(0);
    assert_eq!(
        fs::read(pki.join("server.crt")).unwrap(),
        fs::read(&other.server_cert).unwrap()
    );
    let mut forced = generate.to_vec();
    forced.push("--force");
    popgate_admin(dir.path(), &forced).assert_code(0);
    assert_ne!(
        fs::read(pki.join("server.crt")).unwrap(),
        fs::read(&other.server_cert).unwrap()
    );
}

/// [`ConfigDir::shared_action`] run as root (no account switch), with an inbound policy
/// inspecting TLS too: it needs `pki/ca.*`, `pki/untrusted-ca.*` and `pki/server.*`.
fn needs_every_pki_file() -> ConfigDir {
    ConfigDir::shared_action()
        .json("popgate.json", json!({ "user": "root", "group": "root" }))
        .set(INBOUND_POLICY, "/enabled", json!(true))
        .set(INBOUND_POLICY, "/tls_support", json!("enabled"))
        .set(
            INBOUND_POLICY,
            "/ports",
            json!({ "pop3": 2110, "pop3s": 2995 }),
        )
        .set(
            INBOUND_POLICY,
            "/proxy_action",
            json!("POP3-Client.Standard"),
        )
}

#[test]
fn check_fails_when_the_directory_does_not_exist() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("etc-popgate");
    let run = popgate_admin(&missing, &["check"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        format!(
            "{}: configuration directory does not exist\n",
            missing.display()
        )
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn check_names_every_pki_file_an_enabled_policy_needs() {
    let dir = written(&needs_every_pki_file());
    let run = popgate_admin(dir.path(), &["check"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "pki/ca.crt: does not exist (create it with `popgate ca init`); needed by policy \
         \"POP3-proxy-out\" (outbound TLS inspection)\n\
         pki/untrusted-ca.crt: does not exist (create it with `popgate ca init`); needed by \
         policy \"POP3-proxy-out\" (invalid_certificate: mirror-untrusted)\n\
         pki/server.crt: does not exist (create it with `popgate cert server --generate --san \
         NAME`); needed by policy \"inbound-mx\" (inbound TLS inspection)\n"
    );
    // `run` refuses the same configuration, naming the same files.
    let run_refused = popgate_admin(dir.path(), &["run"]);
    run_refused.assert_code(1);
    assert!(
        run_refused
            .stderr
            .contains("pki/server.crt: does not exist"),
        "{run_refused:#?}"
    );

    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    popgate_admin(
        dir.path(),
        &["cert", "server", "--generate", "--san", "localhost"],
    )
    .assert_code(0);
    let valid = popgate_admin(dir.path(), &["check"]);
    valid.assert_code(0);
    assert_eq!(
        valid.stdout,
        format!("{}: configuration is valid\n", dir.path().display())
    );

    // A key that is not the certificate's.
    let pki = dir.path().join("pki");
    fs::copy(pki.join("untrusted-ca.key"), pki.join("ca.key")).unwrap();
    let run = popgate_admin(dir.path(), &["check"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "pki/ca.crt: does not match the private key pki/ca.key; needed by policy \
         \"POP3-proxy-out\" (outbound TLS inspection)\n"
    );

    // Without an enabled policy needing them, broken keys are not read at all.
    let dir = written(
        &needs_every_pki_file()
            .set(OUT_POLICY, "/enabled", json!(false))
            .set(INBOUND_POLICY, "/enabled", json!(false))
            .raw("pki/ca.crt", "garbage")
            .raw("pki/server.key", "garbage"),
    );
    popgate_admin(dir.path(), &["check"]).assert_code(0);
}

#[test]
fn check_reports_an_unreadable_key_as_the_checking_user() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true needs root"
        );
        eprintln!("SKIPPED: needs root to run check as nobody");
        return;
    }
    let dir = written(&needs_every_pki_file().set(INBOUND_POLICY, "/enabled", json!(false)));
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    // Everything readable by others except the keys (0600, root's).
    for path in [dir.path().to_path_buf(), dir.path().join("pki")] {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(popgate_tests::popgate::popgate_bin().unwrap())
        .args(["check", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        "pki/ca.key: cannot be read: Permission denied (os error 13); needed by policy \
         \"POP3-proxy-out\" (outbound TLS inspection)\n\
         pki/untrusted-ca.key: cannot be read: Permission denied (os error 13); needed by \
         policy \"POP3-proxy-out\" (invalid_certificate: mirror-untrusted)\n"
    );
}

#[test]
fn check_reports_a_user_and_group_that_do_not_exist() {
    let dir = written(
        &ConfigDir::shared_action()
            .set(OUT_POLICY, "/enabled", json!(false))
            .json(
                "popgate.json",
                json!({ "user": "popgate-no-such-user", "group": "popgate-no-such-group" }),
            ),
    );
    let run = popgate_admin(dir.path(), &["check"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "popgate.json: .user: no user \"popgate-no-such-user\" on this system (popgate \
         switches to it when started as root)\n\
         popgate.json: .group: no group \"popgate-no-such-group\" on this system (popgate \
         switches to it when started as root)\n"
    );
}

#[test]
fn check_ignores_editor_files_and_reports_every_error_of_a_file() {
    let config = ConfigDir::shared_action()
        .json("popgate.json", json!({ "user": "root", "group": "root" }))
        .set(OUT_POLICY, "/enabled", json!(false))
        .raw("policies/.#out.json", "{ half-written")
        .raw("policies/out.json~", "{ backup")
        .raw("policies/.out.json.swp", "\u{0}binary");
    let dir = written(&config);
    popgate_admin(dir.path(), &["check"]).assert_code(0);

    let dir = written(
        &config
            .set(
                GUEST_POLICY,
                "/from",
                json!(["10.0.0.0/33", "any", "not an address"]),
            )
            .set(GUEST_POLICY, "/ports", json!({ "pop3s": 0 }))
            .set(GUEST_POLICY, "/proxy_action", json!("Missing")),
    );
    let run = popgate_admin(dir.path(), &["check"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "policies/guest.json: .ports.pop3s: 0 is out of range 1 to 65535\n\
         policies/guest.json: .proxy_action: no proxy action named \"Missing\"\n\
         policies/guest.json: .from[0]: not an address, CIDR, wildcard or domain\n\
         policies/guest.json: .from[2]: not an address, CIDR, wildcard or domain\n"
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn check_as_root_also_reads_the_configuration_as_the_service_user() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true needs root"
        );
        eprintln!("SKIPPED: needs root to switch to nobody");
        return;
    }
    let dir = written(
        &needs_every_pki_file()
            .set(INBOUND_POLICY, "/enabled", json!(false))
            .json(
                "popgate.json",
                json!({ "user": "nobody", "group": "nogroup" }),
            ),
    );
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    popgate_admin(dir.path(), &["ca", "init"]).assert_code(0);
    fs::set_permissions(dir.path().join("pki"), fs::Permissions::from_mode(0o755)).unwrap();
    // Root reads every key; `run` would switch to nobody, which cannot (0600, root's).
    let run = popgate_admin(dir.path(), &["check"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr,
        "as user nobody: pki/ca.key: cannot be read: Permission denied (os error 13); needed \
         by policy \"POP3-proxy-out\" (outbound TLS inspection)\n\
         as user nobody: pki/untrusted-ca.key: cannot be read: Permission denied (os error \
         13); needed by policy \"POP3-proxy-out\" (invalid_certificate: mirror-untrusted)\n"
    );
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let uid = String::from_utf8_lossy(&nobody.stdout).trim().to_owned();
    let chown = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:nogroup"))
        .arg(dir.path().join("pki"))
        .status()
        .unwrap();
    assert!(chown.success());
    popgate_admin(dir.path(), &["check"]).assert_code(0);
}
