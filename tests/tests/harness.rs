//! The harness checks itself against real peers: Dovecot serves the corpus exactly, every
//! client helper retrieves it, TLS works with the generated PKI, and the fake server follows
//! its script. These pass without popgate; when one fails, fix the harness before reading
//! anything into a popgate test failure.

use std::time::Duration;

use popgate_tests::clients::{self, PoplibAuth, Retention};
use popgate_tests::pop3_client::{body_lines, Ending};
use popgate_tests::{
    assert_bytes_eq, require_peers, ClientTls, ConfigDir, Corpus, Dovecot, DovecotOptions,
    FakeServer, Peer, Pop3Client, Reply, Script,
};
use serde_json::json;

#[test]
fn dovecot_serves_corpus_directly() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3, Peer::Curl);
    let corpus = Corpus::with_big();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let account = dovecot.account();

    let mut raw = Pop3Client::connect(dovecot.pop3_addr()).unwrap();
    raw.login(dovecot.user(), dovecot.password()).unwrap();
    let stat = raw.command("STAT").unwrap();
    assert!(
        stat.starts_with(format!("+OK {} ", corpus.len()).as_bytes()),
        "STAT {stat:?}"
    );
    for (i, message) in corpus.messages.iter().enumerate() {
        assert_bytes_eq(
            &raw.retr(i + 1).unwrap(),
            &message.bytes,
            &format!("raw {}", message.name),
        );
    }
    raw.quit();

    let fetched = clients::poplib_fetch(&account, &ClientTls::None, PoplibAuth::UserPass).unwrap();
    assert_eq!(fetched.len(), corpus.len());
    for (got, message) in fetched.iter().zip(&corpus.messages) {
        assert_bytes_eq(got, &message.bytes, &format!("poplib {}", message.name));
    }

    for (i, message) in corpus
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.bytes.len() < 1 << 20)
    {
        let got = clients::curl_retr(&account, &ClientTls::None, i + 1).unwrap();
        assert_bytes_eq(&got, &message.bytes, &format!("curl {}", message.name));
    }
}

#[test]
fn dot_stuffing_on_the_wire_matches_rfc1939() {
    require_peers!(Peer::Dovecot, Peer::Openssl);
    let message = Corpus::message("03-dot-lines.eml");
    let dovecot =
        Dovecot::start(std::slice::from_ref(&message), DovecotOptions::default()).unwrap();
    let mut raw = Pop3Client::connect(dovecot.pop3_addr()).unwrap();
    raw.login(dovecot.user(), dovecot.password()).unwrap();
    let response = raw.retr_raw(1).unwrap();
    let text = String::from_utf8(response).unwrap();
    assert!(
        text.contains("\r\n..\r\nThe next line is two dots:\r\n...\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\n....three leading dots\r\n"), "{text}");
    assert!(text.ends_with("last line\r\n.\r\n"), "{text}");
}

#[test]
fn dovecot_serves_tls_directly_with_generated_pki() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3, Peer::Curl);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let ca = dovecot.ca_cert().to_path_buf();
    let plain = dovecot.account();
    let implicit = plain.at(dovecot.pop3s_addr());
    for (account, tls) in [
        (&plain, ClientTls::Stls(ca.clone())),
        (&implicit, ClientTls::Implicit(ca.clone())),
    ] {
        let fetched = clients::poplib_fetch(account, &tls, PoplibAuth::UserPass).unwrap();
        assert_eq!(fetched.len(), corpus.len(), "{tls:?}");
        for (got, message) in fetched.iter().zip(&corpus.messages) {
            assert_bytes_eq(
                got,
                &message.bytes,
                &format!("poplib {tls:?} {}", message.name),
            );
        }
        let got = clients::curl_retr(account, &tls, 2).unwrap();
        assert_bytes_eq(&got, &corpus.messages[1].bytes, &format!("curl {tls:?}"));
    }
}

#[test]
fn plaintext_only_dovecot_offers_no_stls() {
    require_peers!(Peer::Dovecot);
    let dovecot =
        Dovecot::start(&Corpus::small().messages, DovecotOptions::plaintext_only()).unwrap();
    let mut raw = Pop3Client::connect(dovecot.pop3_addr()).unwrap();
    let capa = raw.multiline_command("CAPA").unwrap();
    let lines = body_lines(&capa);
    assert!(lines.iter().any(|l| l == b"USER"), "{lines:?}");
    assert!(!lines.iter().any(|l| l == b"STLS"), "{lines:?}");
}

#[test]
fn dovecot_greets_with_apop_timestamp_and_accepts_apop() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Python3);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let mut raw = Pop3Client::connect(dovecot.pop3_addr()).unwrap();
    let timestamp = raw
        .apop_timestamp()
        .expect("APOP timestamp in the greeting");
    assert!(timestamp.contains('@'), "{timestamp}");
    raw.apop_login(dovecot.user(), dovecot.password()).unwrap();
    assert_bytes_eq(
        &raw.retr(1).unwrap(),
        &corpus.messages[0].bytes,
        "RETR after APOP",
    );

    let mut wrong = Pop3Client::connect(dovecot.pop3_addr()).unwrap();
    assert!(wrong
        .apop_login(dovecot.user(), "not-the-password")
        .is_err());

    let fetched =
        clients::poplib_fetch(&dovecot.account(), &ClientTls::None, PoplibAuth::Apop).unwrap();
    assert_eq!(fetched.len(), corpus.len());
}

#[test]
fn fetchmail_retrieves_directly_from_dovecot() {
    require_peers!(Peer::Dovecot, Peer::Openssl, Peer::Fetchmail);
    let corpus = Corpus::small();
    let dovecot = Dovecot::start(&corpus.messages, DovecotOptions::default()).unwrap();
    let account = dovecot.account();
    let plain = clients::fetchmail_fetch(&account, &ClientTls::None, Retention::Keep).unwrap();
    assert_eq!(plain.len(), corpus.len());
    for (got, message) in plain.iter().zip(&corpus.messages) {
        assert_bytes_eq(got, &message.bytes, &format!("fetchmail {}", message.name));
    }
    let stls = ClientTls::Stls(dovecot.ca_cert().to_path_buf());
    let secured = clients::fetchmail_fetch(&account, &stls, Retention::Keep).unwrap();
    assert_eq!(secured.len(), corpus.len());

    let deleted = clients::fetchmail_fetch(&account, &ClientTls::None, Retention::Delete).unwrap();
    assert_eq!(deleted.len(), corpus.len());
    let mut raw = Pop3Client::connect(dovecot.pop3_addr()).unwrap();
    raw.login(dovecot.user(), dovecot.password()).unwrap();
    assert_eq!(raw.command("STAT").unwrap(), b"+OK 0 0\r\n");
}

#[test]
fn fake_server_follows_its_script_and_defaults() {
    let server = FakeServer::start(
        Script::new("+OK hello <1.2@fake>\r\n")
            .on("RETR 1", Reply::SendAndClose(b"+OK\r\npartial".to_vec()))
            .on("LIST", Reply::send("+OK\r\n1 10\r\n.\r\n")),
    )
    .unwrap();
    let mut client = Pop3Client::connect(server.addr()).unwrap();
    assert_eq!(client.greeting(), b"+OK hello <1.2@fake>\r\n");
    assert_eq!(client.apop_timestamp().as_deref(), Some("<1.2@fake>"));
    client.login("u", "p").unwrap();
    assert_eq!(
        client.multiline_command("LIST").unwrap(),
        b"+OK\r\n1 10\r\n.\r\n"
    );
    assert_eq!(
        client.multiline_command("LIST").unwrap(),
        b"-ERR unknown command\r\n"
    );
    client.send(b"RETR 1\r\n").unwrap();
    let (bytes, ending) = client.read_until_close(Duration::from_secs(10));
    assert_eq!(
        (bytes.as_slice(), ending),
        (&b"+OK\r\npartial"[..], Ending::Closed)
    );
    assert_eq!(
        server.received(),
        [&b"USER u"[..], b"PASS p", b"LIST", b"LIST", b"RETR 1"]
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn silent_fake_server_sends_nothing() {
    let server = FakeServer::start(Script::silent()).unwrap();
    let mut client = Pop3Client::connect_silent(server.addr()).unwrap();
    client.send(b"CAPA\r\n").unwrap();
    let (bytes, ending) = client.read_until_close(Duration::from_millis(300));
    assert_eq!((bytes, ending), (Vec::new(), Ending::TimedOut));
}

#[test]
fn relay_config_lists_its_listener_and_writes_spec_files() {
    let config = ConfigDir::relay("127.0.0.1:1110")
        .set("policies/relay.json", "/general/idle_timeout_s", json!(2))
        .tls_support("policies/relay.json", "enabled");
    let addrs = config.listen_addrs();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    let dir = tempfile::tempdir().unwrap();
    config.write(dir.path()).unwrap();
    let policy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("policies/relay.json")).unwrap())
            .unwrap();
    assert_eq!(policy["upstream"], json!("127.0.0.1:1110"));
    assert_eq!(policy["tls_support"], json!("enabled"));
    assert_eq!(policy["general"]["idle_timeout_s"], json!(2));
    for file in [
        "popgate.json",
        "actions/relay.json",
        "tls-profiles/standard.json",
    ] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
}
