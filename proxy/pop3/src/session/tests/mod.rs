//! Session tests: two scripted peers in memory and a fake clock.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

mod hostile;
mod memory;
mod refetch;

const GREETING: &[u8] = b"+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us>\r\n";
const CAPA: &[u8] =
    b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";

/// A session plus what each side has received so far.
struct Harness {
    session: Session,
    now: Instant,
    client_got: Vec<u8>,
    server_got: Vec<u8>,
    events: Vec<Event>,
}

impl Harness {
    fn new(config: SessionConfig) -> Harness {
        // The fake clock's epoch: the one real reading, then time only moves by hand.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Harness {
            session: Session::new(config, now),
            now,
            client_got: Vec::new(),
            server_got: Vec::new(),
            events: Vec::new(),
        }
    }

    fn greeted(config: SessionConfig) -> Harness {
        let mut h = Harness::new(config);
        h.server(GREETING);
        assert_eq!(h.take_client(), GREETING);
        h
    }

    /// Greeted and logged in with USER/PASS: TRANSACTION commands reach the server.
    fn logged_in(config: SessionConfig) -> Harness {
        let mut h = Harness::greeted(config);
        h.client(b"USER u\r\nPASS p\r\n");
        h.server(b"+OK\r\n+OK logged in\r\n");
        assert_eq!(h.session.pop3_state(), Pop3State::Transaction);
        h.take_client();
        h.take_server();
        h.events.clear();
        h
    }

    fn client(&mut self, bytes: &[u8]) {
        self.session.handle_bytes(Side::Client, bytes, self.now);
        self.drain();
    }

    fn server(&mut self, bytes: &[u8]) {
        self.session.handle_bytes(Side::Server, bytes, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.events.push(event);
        }
        for side in [Side::Client, Side::Server] {
            let out = self.session.output(side).to_vec();
            match side {
                Side::Client => self.client_got.extend_from_slice(&out),
                Side::Server => self.server_got.extend_from_slice(&out),
            }
            self.session.advance_output(side, out.len(), self.now);
        }
        while let Some(event) = self.session.poll_event() {
            self.events.push(event);
        }
    }

    fn take_client(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.client_got)
    }

    fn take_server(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.server_got)
    }

    fn closed_for(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Close(reason) => Some(reason),
            _ => None,
        })
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn greeting_passes_unchanged_and_commands_are_forwarded() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"USER alice\r\n");
    assert_eq!(h.take_server(), b"USER alice\r\n");
    h.server(b"+OK\r\n");
    h.client(b"PASS secret\r\n");
    assert_eq!(h.take_server(), b"PASS secret\r\n");
    h.server(b"+OK Logged in.\r\n");
    assert_eq!(h.take_client(), b"+OK\r\n+OK Logged in.\r\n");
    assert_eq!(h.session.pop3_state(), Pop3State::Transaction);
    assert!(h.events.contains(&Event::LoggedIn {
        user: Some("alice".into())
    }));
}

#[test]
fn pipelined_commands_get_responses_in_order() {
    let mut h = Harness::logged_in(SessionConfig {
        client_stls: ClientStls::Refuse,
        ..SessionConfig::default()
    });
    h.client(b"CAPA\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\n");
    assert_eq!(
        h.take_server(),
        b"CAPA\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\n"
    );
    let responses: &[u8] =
        b"+OK 1 5\r\n+OK\r\n1 5\r\n.\r\n+OK\r\n1 abc\r\n.\r\n+OK 5 octets\r\nhi\r\n..\r\n.\r\n";
    let mut all = CAPA.to_vec();
    all.extend_from_slice(responses);
    h.server(&all);
    let got = h.take_client();
    let capa_without_stls = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";
    let mut want = capa_without_stls.to_vec();
    want.extend_from_slice(responses);
    assert_eq!(text(&got), text(&want));
}

#[test]
fn local_refusals_keep_pipelined_order() {
    let config = SessionConfig::default().with_rules(|r| {
        r.auth = AuthPolicy {
            user: false,
            ..AuthPolicy::allow_all()
        };
    });
    let mut h = Harness::greeted(config);
    h.client(b"CAPA\r\nUSER bob\r\nCAPA\r\n");
    assert_eq!(h.take_server(), b"CAPA\r\nCAPA\r\n");
    assert_eq!(h.take_client(), b"");
    h.server(b"+OK one\r\n.\r\n");
    assert_eq!(
        text(&h.take_client()),
        "+OK one\r\n.\r\n-ERR [AUTH] login method not permitted by policy\r\n"
    );
    h.server(b"+OK two\r\n.\r\n");
    assert_eq!(h.take_client(), b"+OK two\r\n.\r\n");
}

#[test]
fn commands_only_valid_after_login_are_refused_locally_before_it() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(&b"NOOP\r\n".repeat(3));
    assert_eq!(h.take_server(), b"", "the server never sees them");
    assert_eq!(
        text(&h.take_client()),
        "-ERR command not valid before login\r\n".repeat(3)
    );
    // Pipelined behind a login, they are the server's to answer.
    h.client(b"USER a\r\nPASS b\r\nSTAT\r\n");
    assert_eq!(h.take_server(), b"USER a\r\nPASS b\r\nSTAT\r\n");
    h.server(b"+OK\r\n+OK\r\n+OK 0 0\r\n");
    assert_eq!(h.take_client(), b"+OK\r\n+OK\r\n+OK 0 0\r\n");
}

#[test]
fn message_bytes_pass_unchanged_in_any_split() {
    let body: &[u8] = b"+OK 40 octets\r\nFrom: a\r\n\r\n..leading dot\r\n..\r\nx.\r\n.\r\n";
    for chunk in 1..body.len() {
        let mut h = Harness::logged_in(SessionConfig::default());
        h.client(b"RETR 1\r\nNOOP\r\n");
        for piece in body.chunks(chunk) {
            h.server(piece);
        }
        h.server(b"+OK noop\r\n");
        let mut want = body.to_vec();
        want.extend_from_slice(b"+OK noop\r\n");
        assert_eq!(text(&h.take_client()), text(&want), "chunk {chunk}");
    }
}

#[test]
fn truncated_message_never_gets_a_terminator() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"RETR 1\r\n");
    h.server(b"+OK\r\nline one\r\nline two");
    h.session.handle_eof(Side::Server, h.now);
    h.drain();
    let got = h.take_client();
    assert_eq!(got, b"+OK\r\nline one\r\nline two");
    assert_eq!(h.closed_for(), Some(&CloseReason::PeerClosed(Side::Server)));
}

#[test]
fn overlong_body_line_closes_without_terminator() {
    let mut h = Harness::logged_in(SessionConfig::default().with_rules(|r| {
        r.max_body_line = 100;
    }));
    h.client(b"RETR 1\r\n");
    let mut reply = b"+OK\r\n".to_vec();
    reply.extend(std::iter::repeat_n(b'a', 500));
    reply.extend_from_slice(b"\r\n.\r\n");
    h.server(&reply);
    let got = h.take_client();
    assert!(!got.ends_with(b".\r\n"), "{}", text(&got));
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Server,
            Violation::BodyLineTooLong { limit: 100 }
        ))
    );
}

#[test]
fn overlong_status_line_gets_err() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"STAT\r\n");
    let mut reply = b"+OK ".to_vec();
    reply.extend(std::iter::repeat_n(b'x', 600));
    h.server(&reply);
    assert!(text(&h.take_client()).starts_with("-ERR [SYS/TEMP]"));
    assert!(h.session.is_finished());
}

#[test]
fn client_garbage_and_tls_hello_end_the_session_with_err() {
    for (garbage, violation) in [
        (
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            Violation::TlsRecordOnPlaintext,
        ),
        (b"\x00\xff\x01binary", Violation::ForbiddenByte { byte: 0 }),
    ] {
        let mut h = Harness::greeted(SessionConfig::default());
        h.client(garbage);
        assert!(text(&h.take_client()).starts_with("-ERR [SYS/PERM]"));
        assert_eq!(h.take_server(), b"");
        assert!(h.session.is_finished());
        assert_eq!(
            h.closed_for(),
            Some(&CloseReason::ProtocolViolation(Side::Client, violation))
        );
    }
}

#[test]
fn megabyte_without_newline_is_refused() {
    let mut h = Harness::greeted(SessionConfig::default());
    let blob = vec![b'a'; 1 << 20];
    for piece in blob.chunks(64 * 1024) {
        h.client(piece);
        if h.session.is_finished() {
            break;
        }
    }
    assert!(text(&h.take_client()).starts_with("-ERR [SYS/PERM] command line too long"));
    assert_eq!(h.take_server(), b"");
}

#[test]
fn capa_offers_stls_when_terminating_and_not_after_tls() {
    let config = SessionConfig {
        client_stls: ClientStls::Terminate,
        ..SessionConfig::default()
    };
    let mut h = Harness::greeted(config);
    h.client(b"CAPA\r\n");
    h.server(CAPA);
    assert!(text(&h.take_client()).contains("\r\nSTLS\r\n"));
    h.client(b"STLS\r\n");
    assert_eq!(h.take_server(), b"CAPA\r\n");
    assert_eq!(h.take_client(), b"+OK Begin TLS negotiation now\r\n");
    assert!(h.events.contains(&Event::StartTls(Side::Client)));
    h.session.tls_established(Side::Client, h.now);
    h.client(b"CAPA\r\n");
    h.server(CAPA);
    let capa = text(&h.take_client());
    assert!(!capa.contains("STLS"), "{capa}");
}

#[test]
fn stls_that_needs_a_tls_server_leg_is_refused_over_a_plaintext_one() {
    let config = SessionConfig {
        client_stls: ClientStls::TerminateOverTls,
        upstream_stls: UpstreamStls::Never,
        ..SessionConfig::default()
    };
    let mut h = Harness::greeted(config);
    h.client(b"CAPA\r\n");
    h.server(CAPA);
    let capa = text(&h.take_client());
    assert!(!capa.contains("STLS"), "not offered: {capa}");
    h.client(b"STLS\r\n");
    assert!(text(&h.take_client()).starts_with("-ERR STLS not available"));
    assert_eq!(h.take_server(), b"CAPA\r\n", "STLS is answered here");
    assert!(!h.events.contains(&Event::StartTls(Side::Client)));

    // With the server's STLS started alongside the client's, the client's STLS goes on.
    let config = SessionConfig {
        client_stls: ClientStls::TerminateOverTls,
        upstream_stls: UpstreamStls::WithClient,
        ..SessionConfig::default()
    };
    let mut h = Harness::greeted(config);
    h.client(b"STLS\r\n");
    assert_eq!(h.take_server(), b"STLS\r\n");
}

#[test]
fn commands_pipelined_after_stls_are_an_injection() {
    let config = SessionConfig {
        client_stls: ClientStls::Terminate,
        ..SessionConfig::default()
    };
    let mut h = Harness::greeted(config);
    h.client(b"STLS\r\nUSER x\r\n");
    assert_eq!(h.take_server(), b"", "USER must never reach the server");
    assert!(!h.events.contains(&Event::StartTls(Side::Client)));
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Client,
            Violation::PipelinedAfterStls
        ))
    );
}

#[test]
fn server_bytes_after_stls_ok_are_an_injection() {
    let config = SessionConfig {
        upstream_stls: UpstreamStls::Mandatory,
        ..SessionConfig::default()
    };
    let mut h = Harness::new(config);
    h.server(GREETING);
    assert_eq!(h.take_client(), b"", "greeting waits for upstream TLS");
    assert_eq!(h.take_server(), b"CAPA\r\n");
    h.server(CAPA);
    assert_eq!(h.take_server(), b"STLS\r\n");
    h.server(b"+OK\r\n+OK injected\r\n");
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Server,
            Violation::ServerDataBeforeHandshake
        ))
    );
}

#[test]
fn upstream_stls_then_greeting_released() {
    let config = SessionConfig {
        upstream_stls: UpstreamStls::Opportunistic,
        ..SessionConfig::default()
    };
    let mut h = Harness::new(config);
    h.server(GREETING);
    h.server(CAPA);
    h.server(b"+OK Begin TLS\r\n");
    assert!(h.events.contains(&Event::StartTls(Side::Server)));
    assert!(!h.session.wants_read(Side::Server));
    h.session.tls_established(Side::Server, h.now);
    h.drain();
    assert_eq!(h.take_server(), b"CAPA\r\nSTLS\r\nCAPA\r\n");
    h.server(b"+OK\r\nUSER\r\n.\r\n");
    assert_eq!(h.take_client(), GREETING);
    assert!(!h.session.server_capabilities().unwrap().stls);
}

#[test]
fn client_bytes_before_the_greeting_can_move_to_a_retry_session() {
    let config = SessionConfig {
        upstream_stls: UpstreamStls::Opportunistic,
        ..SessionConfig::default()
    };
    let mut h = Harness::new(config.clone());
    h.client(b"CAPA\r\n");
    h.server(GREETING);
    h.server(CAPA);
    h.server(b"+OK Begin TLS\r\n");
    assert!(h.events.contains(&Event::StartTls(Side::Server)));
    assert!(!h.session.greeted());
    // The handshake failed: a new session on a new connection gets the client's bytes.
    let early = h.session.take_early_client_input();
    assert_eq!(early, b"CAPA\r\n");
    let mut retry = Harness::new(SessionConfig {
        upstream_stls: UpstreamStls::Never,
        ..config
    });
    retry.client(&early);
    retry.server(GREETING);
    assert_eq!(retry.take_client(), GREETING);
    assert_eq!(retry.take_server(), b"CAPA\r\n");
    assert!(retry.session.greeted());
    assert!(retry.session.take_early_client_input().is_empty());
}

#[test]
fn mandatory_upstream_tls_without_stls_is_refused() {
    let config = SessionConfig {
        upstream_stls: UpstreamStls::Mandatory,
        ..SessionConfig::default()
    };
    let mut h = Harness::new(config);
    h.server(GREETING);
    h.server(b"+OK\r\nUSER\r\n.\r\n");
    assert!(text(&h.take_client()).starts_with("-ERR [SYS/PERM]"));
    assert!(matches!(h.closed_for(), Some(CloseReason::Refused(_))));
}

#[test]
fn opportunistic_without_stls_continues_in_plaintext() {
    let config = SessionConfig {
        upstream_stls: UpstreamStls::Opportunistic,
        ..SessionConfig::default()
    };
    let mut h = Harness::new(config);
    h.server(GREETING);
    h.server(b"-ERR no CAPA here\r\n");
    assert_eq!(h.take_client(), GREETING);
    assert!(!h.session.is_finished());
}

#[test]
fn client_stls_with_match_does_server_stls_first() {
    let config = SessionConfig {
        client_stls: ClientStls::Terminate,
        upstream_stls: UpstreamStls::WithClient,
        ..SessionConfig::default()
    };
    let mut h = Harness::greeted(config);
    h.client(b"STLS\r\n");
    assert_eq!(h.take_server(), b"STLS\r\n");
    assert_eq!(h.take_client(), b"");
    h.server(b"+OK\r\n");
    assert!(h.events.contains(&Event::StartTls(Side::Server)));
    h.session.tls_established(Side::Server, h.now);
    h.drain();
    assert_eq!(h.take_server(), b"CAPA\r\n");
    h.server(b"+OK\r\nUSER\r\n.\r\n");
    assert_eq!(h.take_client(), b"+OK Begin TLS negotiation now\r\n");
    assert!(h.events.contains(&Event::StartTls(Side::Client)));
}

#[test]
fn client_stls_with_match_mirrors_server_refusal() {
    let config = SessionConfig {
        client_stls: ClientStls::Terminate,
        upstream_stls: UpstreamStls::WithClient,
        ..SessionConfig::default()
    };
    let mut h = Harness::greeted(config);
    h.client(b"STLS\r\n");
    h.server(b"-ERR TLS not configured\r\n");
    assert_eq!(h.take_client(), b"-ERR TLS not configured\r\n");
    h.client(b"CAPA\r\n");
    assert_eq!(h.take_server(), b"STLS\r\nCAPA\r\n");
}

#[test]
fn tunnelled_stls_becomes_opaque() {
    let config = SessionConfig {
        client_stls: ClientStls::Tunnel,
        ..SessionConfig::default()
    };
    let mut h = Harness::greeted(config);
    h.client(b"STLS\r\n");
    assert_eq!(h.take_server(), b"STLS\r\n");
    h.server(b"+OK Begin TLS\r\n");
    assert_eq!(h.take_client(), b"+OK Begin TLS\r\n");
    assert!(h.events.contains(&Event::Tunnel));
    assert!(!h.session.wants_read(Side::Client));
}

#[test]
fn starttls_on_pop3_refuses_commands_before_tls() {
    let config = SessionConfig {
        client_stls: ClientStls::Terminate,
        ..SessionConfig::default()
    }
    .with_rules(|r| {
        r.commands_require_tls = true;
    });
    let mut h = Harness::greeted(config);
    h.client(b"USER alice\r\n");
    assert_eq!(h.take_client(), b"-ERR [AUTH] TLS required\r\n");
    h.client(b"CAPA\r\n");
    assert_eq!(h.take_server(), b"CAPA\r\n");
}

#[test]
fn login_requires_tls_refuses_plaintext_login() {
    let config = SessionConfig::default().with_rules(|r| {
        r.login_requires_tls = true;
    });
    let mut h = Harness::greeted(config);
    h.client(b"USER alice\r\nPASS secret\r\n");
    assert_eq!(h.take_server(), b"");
    assert_eq!(
        text(&h.take_client()),
        "-ERR [AUTH] TLS required before login\r\n-ERR [AUTH] TLS required before login\r\n"
    );
}

#[test]
fn followed_rules_replace_the_old_ones_whole_at_the_next_command() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"CAPA\r\n");
    assert_eq!(h.take_server(), b"CAPA\r\n");
    h.server(b"+OK\r\n.\r\n");
    h.take_client();
    let stricter = SessionConfig::default().with_rules(|r| r.login_requires_tls = true);
    h.session.follow(stricter.rules.clone());
    h.client(b"USER alice\r\n");
    assert_eq!(h.take_server(), b"", "the reloaded rule applies");
    assert_eq!(
        text(&h.take_client()),
        "-ERR [AUTH] TLS required before login\r\n"
    );
}

#[test]
fn sasl_exchange_forwards_continuations_and_lines() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"AUTH PLAIN\r\n");
    h.server(b"+ \r\n");
    assert_eq!(h.take_client(), b"+ \r\n");
    h.client(b"AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(h.take_server(), b"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n");
    h.server(b"+OK Logged in.\r\n");
    assert_eq!(h.session.pop3_state(), Pop3State::Transaction);
    h.client(b"STAT\r\n");
    assert_eq!(h.take_server(), b"STAT\r\n");
}

#[test]
fn forbidden_sasl_mechanism_is_refused_and_hidden() {
    let config = SessionConfig::default().with_rules(|r| {
        r.auth = AuthPolicy {
            sasl: Some(vec!["PLAIN".into()]),
            ..AuthPolicy::allow_all()
        };
    });
    let mut h = Harness::greeted(config);
    h.client(b"AUTH LOGIN\r\n");
    assert!(text(&h.take_client()).starts_with("-ERR [AUTH]"));
    h.client(b"AUTH\r\n");
    h.server(b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
    assert_eq!(h.take_client(), b"+OK\r\nPLAIN\r\n.\r\n");
}

#[test]
fn quit_in_transaction_enters_update_and_finishes() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"USER a\r\nPASS b\r\nQUIT\r\n");
    h.server(b"+OK\r\n+OK\r\n+OK Logging out, messages deleted.\r\n");
    assert_eq!(h.session.pop3_state(), Pop3State::Update);
    assert_eq!(h.closed_for(), Some(&CloseReason::Finished));
}

#[test]
fn inspected_message_waits_for_delivery_and_keeps_order() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"RETR 3\r\nNOOP\r\n");
    h.server(b"+OK 9 octets\r\nSubject: x\r\n.\r\n+OK noop\r\n");
    assert_eq!(h.take_client(), b"");
    assert!(h.events.contains(&Event::MessageStart {
        number: 3,
        top_lines: None
    }));
    assert!(h.events.contains(&Event::MessageEnd));
    let data: Vec<u8> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MessageData(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(data, b"Subject: x\r\n.\r\n");
    h.session
        .deliver_message(Delivery::Body(b"Subject: y\r\n.\r\n".to_vec()), h.now);
    h.drain();
    assert_eq!(
        text(&h.take_client()),
        "+OK 9 octets\r\nSubject: y\r\n.\r\n+OK noop\r\n"
    );
}

#[test]
fn tempfail_delivery_answers_err_and_continues() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"RETR 1\r\n");
    h.server(b"+OK\r\nx\r\n.\r\n");
    h.session
        .deliver_message(Delivery::TempFail("scanner unavailable".into()), h.now);
    h.drain();
    assert_eq!(h.take_client(), b"-ERR [SYS/TEMP] scanner unavailable\r\n");
}

#[test]
fn silent_server_times_out_with_err() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"STAT\r\n");
    let deadline = h.session.poll_timeout().unwrap();
    assert_eq!(deadline, h.now + Duration::from_secs(600));
    h.session.handle_timeout(deadline);
    h.drain();
    assert!(text(&h.take_client()).starts_with("-ERR [SYS/TEMP]"));
    assert_eq!(h.closed_for(), Some(&CloseReason::TimedOut(Side::Server)));
}

#[test]
fn missing_greeting_times_out() {
    let mut h = Harness::new(SessionConfig::default());
    let deadline = h.session.poll_timeout().unwrap();
    assert_eq!(deadline, h.now + Duration::from_secs(15));
    h.session.handle_timeout(deadline);
    h.drain();
    assert!(text(&h.take_client()).starts_with("-ERR [SYS/TEMP]"));
}

/// Feeds the same conversation in the given chunk sizes and returns what each side got.
fn run_split(client_chunk: usize, server_chunk: usize) -> (Vec<u8>, Vec<u8>, usize) {
    let mut h = Harness::new(SessionConfig::default());
    let server_script: &[u8] = b"+OK hi\r\n+OK\r\n+OK\r\n+OK 2 10\r\n+OK\r\n1 5\r\n2 5\r\n.\r\n+OK\r\n..a\r\n\r\n.\r\n+OK bye\r\n";
    let client_script: &[u8] = b"USER a\r\nPASS b\r\nSTAT\r\nLIST\r\nTOP 1 0\r\nQUIT\r\n";
    for piece in server_script[..8].chunks(server_chunk) {
        h.server(piece);
    }
    for piece in client_script.chunks(client_chunk) {
        h.client(piece);
    }
    for piece in server_script[8..].chunks(server_chunk) {
        h.server(piece);
    }
    let events = h.events.len();
    (h.take_client(), h.take_server(), events)
}

proptest! {
    #[test]
    fn any_split_gives_the_same_bytes_and_events(c in 1usize..40, s in 1usize..40) {
        prop_assert_eq!(run_split(c, s), run_split(1000, 1000));
    }
}

#[test]
fn inspected_top_is_fetched_as_retr() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"TOP 2 5\r\n");
    assert_eq!(h.take_server(), b"RETR 2\r\n");
    h.server(b"+OK\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
    assert!(h.events.contains(&Event::MessageStart {
        number: 2,
        top_lines: Some(5)
    }));
    assert!(h.events.contains(&Event::MessageEnd));
}

#[test]
fn oversize_message_pauses_then_passes_the_rest() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
        r.max_inspected_size = 10;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"RETR 1\r\n");
    h.server(b"+OK\r\n0123456789abcdef\r\n");
    assert!(h.events.contains(&Event::MessageOversize));
    assert!(!h.session.wants_read(Side::Server));
    h.server(b"more\r\n.\r\n");
    assert_eq!(h.take_client(), b"");
    h.session.oversize_pass(b"0123456789abcdef\r\n", h.now);
    h.drain();
    assert_eq!(
        text(&h.take_client()),
        "+OK\r\n0123456789abcdef\r\nmore\r\n.\r\n"
    );
}

#[test]
fn oversize_message_discarded_then_replaced() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
        r.max_inspected_size = 4;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"RETR 1\r\nNOOP\r\n");
    h.server(b"+OK\r\nlong line\r\n");
    h.session.oversize_discard(h.now);
    h.server(b"rest\r\n.\r\n+OK noop\r\n");
    h.drain();
    assert!(h.events.contains(&Event::MessageEnd));
    h.session
        .deliver_message(Delivery::Body(b"Subject: denied\r\n.\r\n".to_vec()), h.now);
    h.drain();
    assert_eq!(
        text(&h.take_client()),
        "+OK\r\nSubject: denied\r\n.\r\n+OK noop\r\n"
    );
}

#[test]
fn partial_delivery_streams_decided_bytes_and_completes_in_order() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"RETR 1\r\nNOOP\r\n");
    h.server(b"+OK 30 octets\r\nSubject: x\r\n\r\n");
    h.session.deliver_partial(b"Subject: x\r\n\r\n", h.now);
    h.drain();
    assert_eq!(
        text(&h.take_client()),
        "+OK 30 octets\r\nSubject: x\r\n\r\n"
    );
    h.server(b"body\r\n.\r\n+OK noop\r\n");
    assert_eq!(h.take_client(), b"", "the rest waits for the verdict");
    h.session
        .deliver_message(Delivery::Body(b"body\r\n.\r\n".to_vec()), h.now);
    h.drain();
    assert_eq!(text(&h.take_client()), "body\r\n.\r\n+OK noop\r\n");
}

#[test]
fn tempfail_after_partial_delivery_ends_the_session_without_terminator() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"RETR 1\r\n");
    h.server(b"+OK\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
    h.session.deliver_partial(b"Subject: x\r\n", h.now);
    h.session
        .deliver_message(Delivery::TempFail("scanner failed".into()), h.now);
    h.drain();
    let got = h.take_client();
    assert_eq!(text(&got), "+OK\r\nSubject: x\r\n");
    assert!(matches!(h.closed_for(), Some(CloseReason::Refused(_))));
}

#[test]
fn server_closing_inside_a_partially_delivered_message_adds_nothing() {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
    });
    let mut h = Harness::logged_in(config);
    h.client(b"RETR 1\r\n");
    h.server(b"+OK\r\nSubject: x\r\n\r\nfirst line\r\n");
    h.session.deliver_partial(b"Subject: x\r\n\r\n", h.now);
    h.session.handle_eof(Side::Server, h.now);
    h.drain();
    assert_eq!(
        text(&h.take_client()),
        "+OK\r\nSubject: x\r\n\r\n",
        "no -ERR inside the body, no terminator"
    );
    assert_eq!(h.closed_for(), Some(&CloseReason::PeerClosed(Side::Server)));
}
