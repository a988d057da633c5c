//! The quarantine you can manage (SPEC §4 bounds, §6 `popgate quarantine`), against a
//! running daemon with real Dovecot: metadata beside each original, export byte-identical
//! to the message on Dovecot, delete, purge, unknown ids, and a full quarantine that
//! withholds the message (`-ERR [SYS/TEMP]`) instead of losing it.

use std::os::unix::fs::PermissionsExt;

use popgate_tests::popgate::RELAY_ACTION;
use popgate_tests::{
    assert_bytes_eq, require_peers, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer, Pop3Client,
    Popgate,
};
use serde_json::{json, Value};

const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The relay action quarantining `.exe` attachments.
fn quarantining_action() -> Value {
    json!({
        "name": "Relay",
        "authentication": { "require_tls": false },
        "file_names": { "default": "allow",
            "rules": [ { "match": "*.exe", "action": "quarantine" } ] },
        "tls": { "action": "allow", "profile": "TLS-Client.Standard" }
    })
}

fn start(corpus: &Corpus, config: impl FnOnce(ConfigDir) -> ConfigDir) -> (Dovecot, Popgate) {
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::plaintext_only()).unwrap();
    let relay = ConfigDir::relay(dovecot.pop3_addr()).json(RELAY_ACTION, quarantining_action());
    let popgate = Popgate::start(config(relay)).unwrap();
    (dovecot, popgate)
}

fn ok_json(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_quarantined_message_is_listed_shown_exported_byte_for_byte_and_deleted() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let (dovecot, popgate) = start(&corpus, |c| c);
    let n = corpus.number_of("05-exe-attachment.eml");
    let replaced = Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr()))
        .unwrap()
        .retr(n)
        .unwrap();
    let on_dovecot = Pop3Client::logged_in(&dovecot.account())
        .unwrap()
        .retr(n)
        .unwrap();

    let list = ok_json(&popgate.cli(["quarantine", "list", "--json"]).unwrap());
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list:#}");
    let entry = &entries[0];
    let keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "received_at",
            "policy",
            "action",
            "user",
            "rule",
            "reason",
            "size",
            "message_id"
        ]
    );
    let id = entry["id"].as_str().unwrap().to_owned();
    assert!(
        String::from_utf8_lossy(&replaced).contains(&id),
        "the replacement names {id}"
    );
    assert_eq!(entry["policy"], "relay");
    assert_eq!(entry["action"], "Relay");
    assert_eq!(entry["user"], dovecot.user());
    assert_eq!(entry["size"], on_dovecot.len());
    assert!(
        entry["rule"].as_str().unwrap().contains("*.exe"),
        "{entry:#}"
    );
    assert!(
        entry["message_id"].as_str().unwrap().starts_with('<'),
        "{entry:#}"
    );
    assert!(entry["received_at"].as_str().unwrap().ends_with('Z'));

    let shown = ok_json(&popgate.cli(["quarantine", "show", &id, "--json"]).unwrap());
    assert_eq!(&shown, entry);
    let table = popgate.cli(["quarantine", "show", &id]).unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("reason"));

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("original.eml");
    let exported = popgate
        .cli(["quarantine", "export", &id, "--out", file.to_str().unwrap()])
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    assert_bytes_eq(&std::fs::read(&file).unwrap(), &on_dovecot, "export --out");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let to_stdout = popgate.cli(["quarantine", "export", &id]).unwrap();
    assert_bytes_eq(&to_stdout.stdout, &on_dovecot, "export to stdout");

    let deleted = popgate.cli(["quarantine", "delete", &id]).unwrap();
    assert!(deleted.status.success(), "{deleted:?}");
    assert_eq!(
        ok_json(&popgate.cli(["quarantine", "list", "--json"]).unwrap()),
        json!([])
    );
    let again = popgate.cli(["quarantine", "delete", &id]).unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        format!("popgate: no quarantined message {id}")
    );
}

#[test]
fn purge_removes_old_entries_only() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let (dovecot, popgate) = start(&corpus, |c| c);
    let n = corpus.number_of("05-exe-attachment.eml");
    Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr()))
        .unwrap()
        .retr(n)
        .unwrap();
    let kept = ok_json(
        &popgate
            .cli(["quarantine", "purge", "--older-than", "1", "--json"])
            .unwrap(),
    );
    assert_eq!(kept, json!({ "purged": [] }));
    let purged = ok_json(
        &popgate
            .cli(["quarantine", "purge", "--older-than", "0", "--json"])
            .unwrap(),
    );
    assert_eq!(purged["purged"].as_array().unwrap().len(), 1, "{purged:#}");
    assert_eq!(
        ok_json(&popgate.cli(["quarantine", "list", "--json"]).unwrap()),
        json!([])
    );
}

#[test]
fn a_full_quarantine_withholds_the_message_and_loses_nothing() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let (dovecot, popgate) = start(&corpus, |c| {
        c.set("popgate.json", "/quarantine/max_bytes", json!(100))
    });
    let n = corpus.number_of("05-exe-attachment.eml");
    let mut client = Pop3Client::logged_in(&dovecot.account().at(popgate.pop3_addr())).unwrap();
    let reply = client.command(&format!("RETR {n}")).unwrap();
    assert!(
        reply.starts_with(b"-ERR [SYS/TEMP]"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(
        client.command("NOOP").unwrap(),
        b"+OK\r\n",
        "the session goes on"
    );
    drop(client);
    assert_eq!(
        ok_json(&popgate.cli(["quarantine", "list", "--json"]).unwrap()),
        json!([])
    );
    let still_there = Pop3Client::logged_in(&dovecot.account())
        .unwrap()
        .retr(n)
        .unwrap();
    assert_bytes_eq(
        &still_there,
        &corpus.messages[n - 1].bytes,
        "the message on the server",
    );
}

#[test]
fn originals_older_than_max_age_days_are_purged_by_the_daemon() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let state = tempfile::tempdir().unwrap();
    let quarantine = state.path().join("quarantine");
    std::fs::create_dir_all(&quarantine).unwrap();
    for (id, age) in [("old_1_1", "3 days ago"), ("new_1_2", "1 hour ago")] {
        let meta = json!({
            "id": id, "received_at": "2026-11-29T00:00:00Z", "policy": "relay",
            "action": "Relay", "user": "alice", "rule": "file_names: *.exe",
            "reason": "x", "size": 4, "message_id": ""
        });
        std::fs::write(quarantine.join(format!("{id}.json")), meta.to_string()).unwrap();
        let eml = quarantine.join(format!("{id}.eml"));
        std::fs::write(&eml, b"x\r\n\r\n").unwrap();
        let touched = std::process::Command::new("touch")
            .args(["-d", age])
            .arg(&eml)
            .status()
            .unwrap();
        assert!(touched.success());
    }
    let state_dir = state.path().to_str().unwrap().to_owned();
    let (_dovecot, popgate) = start(&corpus, |c| {
        c.set("popgate.json", "/state_dir", json!(state_dir)).set(
            "popgate.json",
            "/quarantine/max_age_days",
            json!(2),
        )
    });
    popgate_tests::wait_until("the old original to be purged", WAIT, || {
        Ok(!quarantine.join("old_1_1.eml").exists())
    })
    .unwrap();
    let left = ok_json(&popgate.cli(["quarantine", "list", "--json"]).unwrap());
    assert_eq!(left.as_array().unwrap().len(), 1, "{left:#}");
    assert_eq!(left[0]["id"], "new_1_2");
}
