//! The evasion corpus (`inspect/tests/evasion/*.eml`, issue 12) through the real relay: real
//! Dovecot serves every case, Python's poplib fetches it directly and through popgate with
//! the SPEC example rules (`unparseable` at its default, quarantine), and real MIME readers
//! (Python `email`, ripmime, munpack, reformime) and the tests' own line-based reference
//! reader judge what the client received. A hostile case passes when no reader finds a
//! forbidden file in it (a denied or quarantined message is a notice with no such part);
//! a control must arrive byte for byte as Dovecot serves it.
//!
//! The inspect crate's own test judges popgate's in-process verdicts on the same files; this
//! one proves the relay delivers those verdicts to a real client, after Dovecot's own
//! handling of odd line endings.

use std::fs;
use std::path::Path;
use std::time::Duration;

use popgate_tests::clients::{poplib_fetch, ClientTls, PoplibAuth};
use popgate_tests::corpus::Message;
use popgate_tests::popgate::{spec_rules_action, RELAY_ACTION};
use popgate_tests::{
    assert_bytes_eq, require_peers, ConfigDir, Dovecot, DovecotOptions, Peer, Popgate,
};
use serde_json::Value;

#[path = "../../inspect/tests/corpus_files/mod.rs"]
mod corpus_files;
#[path = "../../inspect/tests/real_readers/mod.rs"]
mod real_readers;
#[path = "../../inspect/tests/reference/mod.rs"]
mod reference;

use real_readers::{is_forbidden_name, real_readers};

/// How popgate logs a stream that diverged after bytes went out.
const DIVERGED: &str = "the stream diverged from the batch result";
/// How long a test waits for a line to reach popgate's log.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// Every case of the corpus, in file-name order (Dovecot's message order).
fn corpus() -> Vec<Message> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inspect/tests/evasion");
    corpus_files::eml_files(&dir)
        .into_iter()
        .map(|path| Message {
            name: path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned(),
            bytes: fs::read(&path).expect("read case"),
        })
        .collect()
}

/// The forbidden names or types every real reader reports in `file`.
fn forbidden_for_real_readers(file: &Path, work: &Path, index: usize) -> Vec<String> {
    real_readers(file, work, index)
        .into_iter()
        .flat_map(|(reader, found)| {
            found
                .into_iter()
                .filter(|n| is_forbidden_name(n))
                .map(move |n| format!("{reader}: {n:?}"))
        })
        .collect()
}

/// Every case through popgate with poplib, polling again after a session popgate ended.
///
/// A message whose streamed inspection diverged from the whole-message answer after bytes
/// went out ends its session without a terminator, so the client never has it (SPEC §4);
/// popgate remembers it and inspects it whole on the next poll, as a mail client's next
/// poll would find. Each such end must be that case, and each case ends at most one poll.
fn fetch_like_a_polling_client(dovecot: &Dovecot, popgate: &Popgate, cases: usize) -> Vec<Vec<u8>> {
    let account = dovecot.account().at(popgate.pop3_addr());
    for poll in 1..=cases + 1 {
        match poplib_fetch(&account, &ClientTls::None, PoplibAuth::UserPass) {
            Ok(messages) => return messages,
            Err(error) => {
                // The warning reaches the log from popgate's writer thread, after poplib saw
                // the session end.
                let waited = popgate.wait_for_log_count(DIVERGED, poll, LOG_WAIT);
                let log = popgate.log_text();
                assert!(
                    waited.is_ok() && log.matches(DIVERGED).count() == poll,
                    "poll {poll} ended for another reason: {error:#}\npopgate's log:\n{log}"
                );
            }
        }
    }
    panic!("poplib did not get every case in {} polls", cases + 1);
}

/// The message numbers whose streamed inspection diverged, from popgate's JSON log.
fn diverged_numbers(log: &str) -> Vec<usize> {
    log.lines()
        .filter(|line| line.contains(DIVERGED))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| line["number"].as_u64())
        .map(|n| usize::try_from(n).expect("message number"))
        .collect()
}

#[test]
fn real_readers_find_nothing_forbidden_in_what_poplib_fetched_through_popgate() {
    let readers = [Peer::Python3, Peer::Ripmime, Peer::Munpack, Peer::Reformime];
    assert_eq!(readers.map(Peer::program), real_readers::PROGRAMS);
    require_peers!(
        Peer::Dovecot,
        Peer::Python3,
        Peer::Ripmime,
        Peer::Munpack,
        Peer::Reformime
    );
    let messages = corpus();
    let dovecot = Dovecot::start(&messages, DovecotOptions::plaintext_only()).unwrap();
    let config = ConfigDir::relay(dovecot.pop3_addr()).json(RELAY_ACTION, spec_rules_action());
    let popgate = Popgate::start(config).unwrap();

    let direct = poplib_fetch(&dovecot.account(), &ClientTls::None, PoplibAuth::UserPass)
        .expect("poplib fetches every case from Dovecot");
    let through = fetch_like_a_polling_client(&dovecot, &popgate, messages.len());
    assert_eq!(direct.len(), messages.len(), "Dovecot serves every case");
    assert_eq!(through.len(), messages.len(), "popgate lists every case");

    let work = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    let (mut hostile, mut seen_in_input, mut changed) = (0, 0, 0);
    for (index, message) in messages.iter().enumerate() {
        let name = &message.name;
        let (served, received) = (&direct[index], &through[index]);
        if name.starts_with("control_") {
            assert_bytes_eq(received, served, name);
            continue;
        }
        hostile += 1;
        changed += usize::from(received != served);
        // The readers are not blind: they see the forbidden file in what Dovecot serves.
        let raw = work.path().join(format!("{index}.served.eml"));
        fs::write(&raw, served).expect("write served");
        if !forbidden_for_real_readers(&raw, work.path(), index + 10_000).is_empty() {
            seen_in_input += 1;
        }
        let file = work.path().join(format!("{index}.received.eml"));
        fs::write(&file, received).expect("write received");
        let mut found = forbidden_for_real_readers(&file, work.path(), index);
        found.extend(
            reference::forbidden(received)
                .into_iter()
                .map(|n| format!("reference: {n:?}")),
        );
        if !found.is_empty() {
            failures.push(format!("{name}: {}", found.join(", ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Unambiguous mail streams without a second poll.
    let log = popgate.log_text();
    let diverged = diverged_numbers(&log);
    eprintln!("cases whose first poll ended: {diverged:?}");
    for number in diverged {
        let name = &messages[number - 1].name;
        assert!(!name.starts_with("control_"), "control {name} diverged");
    }
    assert!(hostile >= 40, "only {hostile} hostile cases");
    assert!(
        seen_in_input * 4 >= hostile * 3,
        "real readers saw a forbidden file in only {seen_in_input} of {hostile} served cases"
    );
    assert!(
        changed == hostile,
        "popgate delivered {} hostile cases unchanged",
        hostile - changed
    );
    // Hostile structure is logged with its reason, so an administrator can tell it from
    // broken mail; ambiguous cases went to quarantine (the SPEC default for `unparseable`).
    for needle in ["\"verdict\":\"quarantine\"", "\"ambiguous\":\""] {
        popgate.wait_for_log(needle, LOG_WAIT).unwrap();
    }
    let quarantined = fs::read_dir(popgate.state_dir().join("quarantine"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0);
    assert!(quarantined > 0, "no case was quarantined");
}
