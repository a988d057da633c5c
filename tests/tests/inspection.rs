//! Content inspection through popgate against real Dovecot and a real clamd: strip, deny,
//! quarantine, tag, antivirus, TOP consistency and byte-identical passes.

use std::time::Duration;

use popgate_tests::clamd::{Clamd, EICAR};
use popgate_tests::clients::{self, ClientTls, Retention};
use popgate_tests::corpus::{base64, Message};
use popgate_tests::popgate::{spec_rules_action, RELAY_ACTION};
use popgate_tests::{
    assert_bytes_eq, require_peers, ConfigDir, Corpus, Dovecot, DovecotOptions, Peer, Pop3Client,
    Popgate,
};
use serde_json::{json, Value};

struct Setup {
    dovecot: Dovecot,
    popgate: Popgate,
}

impl Setup {
    fn start(messages: &[Message], action: Value) -> Setup {
        let dovecot = Dovecot::start(messages, DovecotOptions::plaintext_only()).unwrap();
        let config = ConfigDir::relay(dovecot.pop3_addr()).json(RELAY_ACTION, action);
        let popgate = Popgate::start(config).unwrap();
        Setup { dovecot, popgate }
    }

    fn through(&self) -> Pop3Client {
        Pop3Client::logged_in(&self.dovecot.account().at(self.popgate.pop3_addr())).unwrap()
    }

    fn direct(&self) -> Pop3Client {
        Pop3Client::logged_in(&self.dovecot.account()).unwrap()
    }
}

/// Index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that `got` equals `original` except that the part starting at `part_start`
/// (right after its boundary line) and ending before `part_end` was replaced.
fn assert_only_part_replaced(original: &[u8], got: &[u8], part_start: usize, part_end: usize) {
    assert_bytes_eq(
        &got[..part_start],
        &original[..part_start],
        "bytes before the part",
    );
    let tail = &original[part_end..];
    assert_bytes_eq(&got[got.len() - tail.len()..], tail, "bytes after the part");
}

#[test]
fn exe_attachment_is_stripped_and_every_other_byte_kept() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let setup = Setup::start(&corpus.messages, spec_rules_action());
    let n = corpus.number_of("05-exe-attachment.eml");
    let original = setup.direct().retr(n).unwrap();
    let got = setup.through().retr(n).unwrap();

    let part_start = find(
        &original,
        b"--b05\r\nContent-Type: application/x-msdownload",
    ) + 7;
    let part_end = find(&original, b"\r\n--b05--");
    assert_only_part_replaced(&original, &got, part_start, part_end);
    let middle = &got[part_start..got.len() - (original.len() - part_end)];
    assert!(
        contains(middle, b"text/plain"),
        "{}",
        String::from_utf8_lossy(middle)
    );
    assert!(
        !contains(&got, b"TVqQAAMAAAAEAAAA"),
        "executable bytes must be gone"
    );
    // The verdict line is written by popgate's log thread: it may land just after the
    // client has the message.
    setup
        .popgate
        .wait_for_log("message inspected", Duration::from_secs(10))
        .unwrap();
    let log = setup.popgate.log_text();
    // The SPEC rules need no whole message: the body streamed while it arrived.
    assert!(log.contains("\"streamed\":true"), "{log}");
    assert!(
        log.contains("message inspected") && log.contains("\"verdict\":\"strip\""),
        "{log}"
    );
}

/// A message larger than the memory a body keeps before it spills, whose last part the
/// stream cannot judge alone (two Content-Type fields): the kept body is read back from the
/// spool, the batch result strips the part, and every byte the stream already sent stands.
/// A message the stream cannot finish alone: 3 MiB of text (streamed, well past the spill
/// threshold), then a part with two Content-Types (an ambiguity: the batch walk decides).
fn long_then_ambiguous() -> Message {
    let mut text = String::new();
    while text.len() < 3 * 1024 * 1024 {
        text.push_str("A line of the long text part, well over the spill threshold.\r\n");
    }
    let bytes = format!(
        "From: a@example.org\r\nTo: b@example.net\r\nSubject: long\r\n\
         Message-ID: <spilled@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"s1\"\r\n\r\n\
         --s1\r\nContent-Type: text/plain\r\n\r\n{text}\
         --s1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Type: application/x-msdownload; name=\"evil.exe\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--s1--\r\n"
    )
    .into_bytes();
    Message {
        name: "spilled.eml".into(),
        bytes,
    }
}

/// `got` is the message of `long_then_ambiguous` with only the executable part replaced,
/// judged whole and logged as a streamed strip.
fn assert_stripped_whole(setup: &Setup, original: &[u8], got: &[u8]) {
    let part_start = find(original, b"--s1\r\nContent-Type: application/octet-stream") + 6;
    let part_end = find(original, b"\r\n--s1--");
    assert_only_part_replaced(original, got, part_start, part_end);
    assert!(
        !contains(got, b"TVqQAAMAAAAEAAAA"),
        "executable bytes must be gone"
    );
    setup
        .popgate
        .wait_for_log("message inspected", Duration::from_secs(10))
        .unwrap();
    let log = setup.popgate.log_text();
    assert!(
        log.contains("\"verdict\":\"strip\"") && log.contains("\"streamed\":true"),
        "{log}"
    );
    assert!(!log.contains("could not finish"), "{log}");
}

/// popgate with the SPEC rules before Dovecot serving `long_then_ambiguous`, and that
/// message as a direct RETR returns it.
fn long_message_setup() -> (Setup, Vec<u8>) {
    let message = long_then_ambiguous();
    let setup = Setup::start(std::slice::from_ref(&message), spec_rules_action());
    let original = setup.direct().retr(1).unwrap();
    (setup, original)
}

/// Whether popgate asked the server for a message a second time.
fn fetched_again(setup: &Setup) -> bool {
    setup.popgate.log_text().contains("fetching it again")
}

/// The STAT answer of a one-message mailbox.
fn assert_stat_of_one(stat: &[u8]) {
    assert!(
        stat.starts_with(b"+OK 1 "),
        "{}",
        String::from_utf8_lossy(stat)
    );
}

#[test]
fn a_spilled_stream_falls_back_to_the_whole_message() {
    require_peers!(Peer::Dovecot);
    let (setup, original) = long_message_setup();
    let got = setup.through().retr(1).unwrap();
    assert_stripped_whole(&setup, &original, &got);
    // Nothing of the streamed body was kept: the server was asked for it again.
    assert!(fetched_again(&setup), "{}", setup.popgate.log_text());
}

#[test]
fn a_command_sent_during_a_refetched_download_is_answered_after_it() {
    require_peers!(Peer::Dovecot);
    let (setup, original) = long_message_setup();
    let mut client = setup.through();
    client.send(b"RETR 1\r\n").unwrap();
    let mut response = client.read_line().unwrap();
    assert!(response.starts_with(b"+OK"), "{response:?}");
    // Past the spill threshold popgate has released its copy; a command sent now waits
    // until the message is delivered (the server's next answer is to the second RETR).
    while response.len() < 600 * 1024 {
        response.extend(client.read_line().unwrap());
    }
    client.send(b"STAT\r\n").unwrap();
    response.extend(client.read_body().unwrap());
    assert_stat_of_one(&client.read_line().unwrap());
    let got = popgate_tests::pop3_client::unstuff(&response).unwrap();
    assert_stripped_whole(&setup, &original, &got);
    assert!(fetched_again(&setup));
}

#[test]
fn a_pipelined_download_keeps_its_copy_instead_of_refetching() {
    require_peers!(Peer::Dovecot);
    let (setup, original) = long_message_setup();
    let mut client = setup.through();
    // Both commands reach the server before the body: its next response is STAT's.
    client.send(b"RETR 1\r\nSTAT\r\n").unwrap();
    let response = client.read_multiline().unwrap();
    assert_stat_of_one(&client.read_line().unwrap());
    let got = popgate_tests::pop3_client::unstuff(&response).unwrap();
    assert_stripped_whole(&setup, &original, &got);
    assert!(!fetched_again(&setup));
}

#[test]
fn real_clients_get_a_refetched_message_judged_whole() {
    require_peers!(Peer::Dovecot, Peer::Curl, Peer::Fetchmail);
    let (setup, original) = long_message_setup();
    let account = setup.dovecot.account().at(setup.popgate.pop3_addr());
    let got = clients::curl_retr(&account, &ClientTls::None, 1).unwrap();
    assert_stripped_whole(&setup, &original, &got);
    // fetchmail deletes what it was given: the DELE follows the judged delivery.
    let fetched = clients::fetchmail_fetch(&account, &ClientTls::None, Retention::Delete).unwrap();
    assert_eq!(fetched.len(), 1);
    assert_stripped_whole(&setup, &original, &fetched[0]);
    setup
        .popgate
        .wait_for_log_count("fetching it again", 2, Duration::from_secs(10))
        .unwrap();
    let stat = setup.direct().command("STAT").unwrap();
    assert!(
        stat.starts_with(b"+OK 0 "),
        "{}",
        String::from_utf8_lossy(&stat)
    );
}

#[test]
fn rfc2231_encoded_exe_name_is_stripped() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let setup = Setup::start(&corpus.messages, spec_rules_action());
    let n = corpus.number_of("06-rfc2231-filename.eml");
    let original = setup.direct().retr(n).unwrap();
    let got = setup.through().retr(n).unwrap();
    assert_ne!(got, original);
    let name_at = find(&original, b"filename*");
    let part_start = original[..name_at]
        .windows(2)
        .rposition(|w| w == b"--")
        .map(|p| p + original[p..].iter().position(|&b| b == b'\n').unwrap() + 1)
        .unwrap();
    assert_bytes_eq(
        &got[..part_start],
        &original[..part_start],
        "bytes before the part",
    );
    assert!(
        !contains(&got, b"filename*0"),
        "the encoded part must be gone"
    );
}

#[test]
fn scr_inside_nested_message_is_stripped() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let setup = Setup::start(&corpus.messages, spec_rules_action());
    let n = corpus.number_of("07-nested-rfc822-scr.eml");
    let original = setup.direct().retr(n).unwrap();
    let got = setup.through().retr(n).unwrap();
    assert_ne!(got, original);
    assert!(contains(&original, b".scr"));
    let scr_header = find(&original, b".scr");
    assert_bytes_eq(
        &got[..scr_header.saturating_sub(300)],
        &original[..scr_header.saturating_sub(300)],
        "outer bytes before the nested part",
    );
    assert!(
        contains(&got, b"message/rfc822"),
        "the nested message itself stays"
    );
}

#[test]
fn clean_messages_and_the_20mib_message_pass_byte_identical() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::with_big();
    let setup = Setup::start(&corpus.messages, spec_rules_action());
    let mut direct = setup.direct();
    let mut through = setup.through();
    for name in [
        "01-plain.eml",
        "02-multipart-attachments.eml",
        "03-dot-lines.eml",
        "04-8bit.eml",
    ] {
        let n = corpus.number_of(name);
        assert_bytes_eq(
            &through.retr_raw(n).unwrap(),
            &direct.retr_raw(n).unwrap(),
            name,
        );
    }
    let big = corpus.messages.len();
    assert_bytes_eq(
        &through.retr_raw(big).unwrap(),
        &direct.retr_raw(big).unwrap(),
        "20 MiB message",
    );
}

#[test]
fn spam_flag_gets_the_subject_tag() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let setup = Setup::start(&corpus.messages, spec_rules_action());
    let n = corpus.number_of("08-spam-flag.eml");
    let got = setup.through().retr(n).unwrap();
    let text = String::from_utf8_lossy(&got);
    let subject = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("subject:"))
        .unwrap();
    assert!(
        subject["Subject:".len()..]
            .trim_start()
            .starts_with("[SPAM] "),
        "{subject}"
    );
}

#[test]
fn deny_replaces_the_whole_message_keeping_its_identity() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let mut action = spec_rules_action();
    action["file_names"]["rules"][0]["action"] = json!("deny");
    let setup = Setup::start(&corpus.messages, action);
    let n = corpus.number_of("05-exe-attachment.eml");
    let got = setup.through().retr(n).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("Message-ID: <corpus-5@popgate.test>"),
        "{text}"
    );
    assert!(text.contains("From: Sender <sender@example.org>"), "{text}");
    assert!(!contains(&got, b"TVqQAAMAAAAEAAAA"));
    assert!(
        got.len() < 4096,
        "a short replacement, got {} bytes",
        got.len()
    );
}

#[test]
fn quarantine_keeps_the_original_bytes_under_the_named_id() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let mut action = spec_rules_action();
    action["file_names"]["rules"][0]["action"] = json!("quarantine");
    let setup = Setup::start(&corpus.messages, action);
    let n = corpus.number_of("05-exe-attachment.eml");
    let got = setup.through().retr(n).unwrap();
    let quarantine = setup.popgate.state_dir().join("quarantine");
    let files: Vec<_> = std::fs::read_dir(&quarantine)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].with_extension("json").is_file(),
        "metadata beside it"
    );
    let id = files[0].file_stem().unwrap().to_string_lossy().into_owned();
    assert!(
        contains(&got, id.as_bytes()),
        "the replacement names quarantine id {id}"
    );
    let stored = std::fs::read(&files[0]).unwrap();
    assert_bytes_eq(
        &stored,
        &corpus.messages[n - 1].bytes,
        "quarantined original",
    );
}

#[test]
fn top_is_consistent_with_retr() {
    require_peers!(Peer::Dovecot);
    let corpus = Corpus::small();
    let setup = Setup::start(&corpus.messages, spec_rules_action());
    let n = corpus.number_of("05-exe-attachment.eml");
    let mut client = setup.through();
    let retr = client.retr(n).unwrap();
    let top_all = client
        .multiline_command(&format!("TOP {n} 100000"))
        .unwrap();
    let top_all = popgate_tests::pop3_client::unstuff(&top_all).unwrap();
    assert_bytes_eq(&top_all, &retr, "TOP with every line equals RETR");
    let top0 = client.multiline_command(&format!("TOP {n} 0")).unwrap();
    let top0 = popgate_tests::pop3_client::unstuff(&top0).unwrap();
    let header_end = find(&retr, b"\r\n\r\n") + 4;
    assert_bytes_eq(&top0, &retr[..header_end], "TOP 0 gives RETR's headers");
}

fn eicar_message() -> Message {
    let bytes = format!(
        "From: a@example.org\r\nTo: alice@example.net\r\nSubject: test\r\n\
         Message-ID: <eicar@popgate.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"e\"\r\n\r\n--e\r\n\
         Content-Type: text/plain\r\n\r\nsee attachment\r\n--e\r\n\
         Content-Type: application/octet-stream; name=\"eicar.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--e--\r\n",
        base64(EICAR.as_bytes())
    );
    Message {
        name: "eicar.eml".into(),
        bytes: bytes.into_bytes(),
    }
}

fn antivirus_action(clamd: &Clamd) -> Value {
    let mut action = spec_rules_action();
    action["antivirus"] = json!({
        "enabled": true,
        "clamd": format!("unix:{}", clamd.socket().display()),
        "timeout_s": 10,
        "on_virus": "deny",
        "on_error": "tempfail"
    });
    action
}

#[test]
fn eicar_is_denied_by_real_clamd() {
    require_peers!(Peer::Dovecot, Peer::Clamd);
    let clamd = Clamd::start().unwrap();
    let messages = vec![Corpus::message("01-plain.eml"), eicar_message()];
    let setup = Setup::start(&messages, antivirus_action(&clamd));
    let mut client = setup.through();
    let clean = client.retr(1).unwrap();
    assert_bytes_eq(&clean, &messages[0].bytes, "clean message passes");
    let got = client.retr(2).unwrap();
    assert!(
        !contains(&got, base64(EICAR.as_bytes()).as_bytes()),
        "virus removed"
    );
    assert!(
        contains(&got, b"<eicar@popgate.test>"),
        "the replacement keeps Message-ID"
    );
    // The verdict line is queued before the reply; the writer thread may still be on it.
    setup
        .popgate
        .wait_for_log("\"verdict\":\"deny\"", std::time::Duration::from_secs(10))
        .unwrap();
}

#[test]
fn clamd_down_tempfails_and_the_message_stays_on_the_server() {
    require_peers!(Peer::Dovecot, Peer::Clamd);
    let mut clamd = Clamd::start().unwrap();
    let messages = vec![eicar_message()];
    let setup = Setup::start(&messages, antivirus_action(&clamd));
    clamd.stop().unwrap();
    let mut client = setup.through();
    client.send(b"RETR 1\r\n").unwrap();
    let line = client.read_line().unwrap();
    assert!(
        line.starts_with(b"-ERR [SYS/TEMP]"),
        "{}",
        String::from_utf8_lossy(&line)
    );
    client.send(b"QUIT\r\n").unwrap();
    let _ = client.expect_close(Duration::from_secs(5));
    let mut direct = setup.direct();
    assert_bytes_eq(
        &direct.retr(1).unwrap(),
        &messages[0].bytes,
        "still on the server",
    );
}
