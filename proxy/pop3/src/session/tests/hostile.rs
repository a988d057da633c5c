//! Hostile peers: framing a lenient client could read differently, smuggling through SASL
//! and unsolicited replies, half-closes, floods. Each test names the exact violation.

use super::*;
use crate::login::{LoginAttempt, LoginMechanism, LoginResult};

/// Where a lenient reader sees the first multi-line response in `bytes` end: lines split on
/// LF (and, with `cr_ends_lines`, on a bare CR too), a CR before LF dropped, the first `.`
/// line after the status line is the terminator. `None` when it sees no terminator.
fn lenient_terminator(bytes: &[u8], cr_ends_lines: bool) -> Option<usize> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let end_here = bytes[i] == b'\n'
            || (cr_ends_lines && bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if end_here {
            let mut line = &bytes[start..i];
            if bytes[i] == b'\n' {
                line = line.strip_suffix(b"\r").unwrap_or(line);
            }
            lines.push((line, i + 1));
            start = i + 1;
        }
        i += 1;
    }
    lines
        .iter()
        .skip(1)
        .find(|(line, _)| *line == b".")
        .map(|&(_, end)| end)
}

/// The hostile bodies of SPEC §5 and issue 12, with the violation each must give.
const FRAMING: [(&[u8], Violation); 7] = [
    (
        b"a\n.\r\nsmuggled\r\n.\r\n",
        Violation::TerminatorAfterBareLf,
    ),
    (b"a\r\n.\rX\r\nsmuggled\r\n.\r\n", Violation::DotCrWithoutLf),
    (b"a\r\n.\nsmuggled\r\n.\r\n", Violation::LfOnlyTerminator),
    (
        b"a\r\n...\r.\r\nsmuggled\r\n.\r\n",
        Violation::DotAfterBareCr,
    ),
    (b"a\r.\r\nsmuggled\r\n.\r\n", Violation::DotAfterBareCr),
    (b"a\r\n.x\r\n.\r\n", Violation::UnstuffedDotLine),
    (b"a\r\n.\r\r\nsmuggled\r\n.\r\n", Violation::DotCrWithoutLf),
];

#[test]
fn streamed_message_with_a_lenient_terminator_never_gets_one() {
    for (body, violation) in FRAMING {
        for chunk in 1..=body.len() {
            let mut h = Harness::logged_in(SessionConfig::default());
            h.client(b"RETR 1\r\n");
            h.server(b"+OK\r\n");
            for piece in body.chunks(chunk) {
                h.server(piece);
            }
            let got = h.take_client();
            let shown = text(&got);
            assert_eq!(lenient_terminator(&got, false), None, "{shown:?} / {chunk}");
            assert_eq!(lenient_terminator(&got, true), None, "{shown:?} / {chunk}");
            assert!(!shown.contains("smuggled"), "{shown:?}");
            assert_eq!(
                h.closed_for(),
                Some(&CloseReason::ProtocolViolation(Side::Server, violation)),
                "{shown:?} / {chunk}"
            );
        }
    }
}

#[test]
fn inspected_message_with_a_lenient_terminator_gets_err_and_nothing_else() {
    for (body, violation) in FRAMING {
        let mut h = Harness::logged_in(SessionConfig::default().with_rules(|r| {
            r.inspect_messages = true;
        }));
        h.client(b"RETR 1\r\n");
        let mut reply = b"+OK\r\n".to_vec();
        reply.extend_from_slice(body);
        h.server(&reply);
        assert_eq!(
            text(&h.take_client()),
            "-ERR [SYS/TEMP] invalid response from server\r\n"
        );
        assert!(!h.events.contains(&Event::MessageEnd));
        assert_eq!(
            h.closed_for(),
            Some(&CloseReason::ProtocolViolation(Side::Server, violation))
        );
    }
}

#[test]
fn dot_cr_at_a_line_start_is_held_until_its_lf() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"RETR 1\r\nNOOP\r\n");
    h.server(b"+OK\r\nbody\r\n.\r");
    assert_eq!(h.take_client(), b"+OK\r\nbody\r\n.");
    h.server(b"\n+OK noop\r\n");
    assert_eq!(h.take_client(), b"\r\n+OK noop\r\n");
    assert_eq!(h.closed_for(), None);
}

#[test]
fn lines_pipelined_inside_a_sasl_exchange_are_classified_after_it() {
    let mut h = Harness::greeted(SessionConfig::default().with_rules(|r| {
        r.auth = AuthPolicy {
            user: false,
            ..AuthPolicy::allow_all()
        };
    }));
    h.client(b"AUTH PLAIN\r\n*\r\nUSER u\r\nPASS p\r\n");
    assert_eq!(h.take_server(), b"AUTH PLAIN\r\n", "nothing rides along");
    h.server(b"+ \r\n");
    assert_eq!(h.take_server(), b"*\r\n", "one response per continuation");
    h.server(b"-ERR [AUTH] cancelled\r\n");
    assert_eq!(h.take_server(), b"", "USER and PASS never reach the server");
    assert_eq!(
        text(&h.take_client()),
        "+ \r\n-ERR [AUTH] cancelled\r\n\
         -ERR [AUTH] login method not permitted by policy\r\n\
         -ERR [AUTH] login method not permitted by policy\r\n"
    );
    assert_eq!(h.session.pop3_state(), Pop3State::Authorization);
}

#[test]
fn a_second_continuation_before_the_answer_is_a_violation() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"AUTH LOGIN\r\n");
    h.server(b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n");
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Server,
            Violation::RepeatedSaslContinuation
        ))
    );
}

#[test]
fn continuation_to_a_bare_auth_is_a_violation() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"AUTH\r\n");
    h.server(b"+ \r\n");
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Server,
            Violation::ContinuationOutsideSasl
        ))
    );
}

#[test]
fn unsolicited_status_line_is_a_violation() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.server(b"+OK answer to a command you will send\r\n");
    assert_eq!(
        text(&h.take_client()),
        "-ERR [SYS/TEMP] invalid response from server\r\n"
    );
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Server,
            Violation::UnsolicitedStatus
        ))
    );
}

#[test]
fn tab_separated_pass_is_a_pass() {
    let mut h = Harness::greeted(SessionConfig::default().with_rules(|r| {
        r.auth = AuthPolicy {
            user: false,
            ..AuthPolicy::allow_all()
        };
    }));
    h.client(b"PASS\tsecret\r\n USER\tbob\r\n");
    assert_eq!(h.take_server(), b"");
    assert_eq!(
        text(&h.take_client()),
        "-ERR [AUTH] login method not permitted by policy\r\n".repeat(2)
    );
}

#[test]
fn bare_cr_in_a_line_is_a_violation_on_either_side() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"NOOP\rDELE 1\r\n");
    assert_eq!(h.take_server(), b"");
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Client,
            Violation::BareCr
        ))
    );
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"RETR 1\r\n");
    h.server(b"+OK\r.\r\n");
    assert_eq!(
        text(&h.take_client()),
        "-ERR [SYS/TEMP] invalid response from server\r\n"
    );
    assert_eq!(
        h.closed_for(),
        Some(&CloseReason::ProtocolViolation(
            Side::Server,
            Violation::BareCr
        ))
    );
}

#[test]
fn half_close_after_pipelined_dele_quit_waits_for_the_replies() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"DELE 1\r\nQUIT\r\n");
    h.session.handle_eof(Side::Client, h.now);
    h.drain();
    assert_eq!(h.take_server(), b"DELE 1\r\nQUIT\r\n");
    assert!(!h.session.is_finished());
    assert!(h.session.client_finished_sending());
    assert!(!h.session.wants_read(Side::Client));
    assert!(h.session.wants_read(Side::Server));
    h.server(b"+OK deleted\r\n+OK bye\r\n");
    assert_eq!(h.take_client(), b"+OK deleted\r\n+OK bye\r\n");
    assert_eq!(h.closed_for(), Some(&CloseReason::Finished));
}

#[test]
fn half_close_with_nothing_outstanding_finishes_and_drops_a_partial_line() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"NOOP\r\nDELE");
    h.session.handle_eof(Side::Client, h.now);
    h.drain();
    assert_eq!(h.closed_for(), None);
    h.server(b"+OK\r\n");
    assert_eq!(h.take_server(), b"NOOP\r\n");
    assert_eq!(h.closed_for(), Some(&CloseReason::Finished));
}

#[test]
fn own_replies_stop_client_reads_at_the_bound() {
    // Refused USER lines, and STLS repeated over TLS: every line gets popgate's own -ERR.
    let refused_user = SessionConfig::default().with_rules(|r| {
        r.auth = AuthPolicy {
            user: false,
            ..AuthPolicy::allow_all()
        };
    });
    let over_tls = SessionConfig {
        client_tls: true,
        client_stls: ClientStls::Terminate,
        ..SessionConfig::default()
    };
    for (config, line, reply) in [
        (
            refused_user,
            &b"USER x\r\n"[..],
            "-ERR [AUTH] login method not permitted by policy\r\n",
        ),
        (over_tls, b"STLS\r\n", "-ERR TLS is already active\r\n"),
    ] {
        let mut h = Harness::greeted(config);
        let (session, now) = (&mut h.session, h.now);
        let flood = line.repeat(4096);
        let mut fed = 0;
        // The client never reads: the driver feeds only while the core wants to read.
        while session.wants_read(Side::Client) && fed < 64 {
            session.handle_bytes(Side::Client, &flood, now);
            fed += 1;
        }
        assert!(fed < 64, "reading stopped");
        assert!(session.unsent(Side::Client) <= MAX_UNSENT + reply.len());
        assert!(session.unsent(Side::Client) >= MAX_UNSENT);
        assert!(session.output(Side::Client).starts_with(reply.as_bytes()));
        assert_eq!(session.output(Side::Server), b"", "nothing forwarded");
        // Writing some out lets the buffered lines be answered again.
        session.advance_output(Side::Client, MAX_UNSENT, now);
        assert!(session.unsent(Side::Client) > 0);
        assert!(session.unsent(Side::Client) <= MAX_UNSENT + reply.len());
    }
}

#[test]
fn login_attempts_are_reported_without_credentials() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"USER alice\r\nPASS wrong\r\n");
    h.server(b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n");
    h.client(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    h.server(b"+OK Logged in.\r\n");
    let logins: Vec<&LoginAttempt> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Login(attempt) => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(
        logins,
        [
            &LoginAttempt {
                user: Some("alice".into()),
                mechanism: LoginMechanism::User,
                result: LoginResult::Failed,
                resp_code: Some("AUTH".into()),
            },
            &LoginAttempt {
                user: Some("alice".into()),
                mechanism: LoginMechanism::Sasl("PLAIN".into()),
                result: LoginResult::Ok,
                resp_code: None,
            },
        ]
    );
    let shown = format!("{:?}", h.events);
    assert!(
        !shown.contains("wrong") && !shown.contains("secret"),
        "{shown}"
    );
}

#[test]
fn sasl_login_user_comes_from_the_first_response() {
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"AUTH LOGIN\r\n");
    h.server(b"+ VXNlcm5hbWU6\r\n");
    h.client(b"Ym9i\r\n");
    h.server(b"+ UGFzc3dvcmQ6\r\n");
    h.client(b"c2VjcmV0\r\n");
    h.server(b"+OK\r\n");
    assert!(h.events.contains(&Event::LoggedIn {
        user: Some("bob".into())
    }));
}

#[test]
fn refused_login_is_reported_once() {
    let mut h = Harness::greeted(SessionConfig::default().with_rules(|r| {
        r.login_requires_tls = true;
    }));
    h.client(b"USER carol\r\nPASS x\r\n");
    let logins: Vec<&Event> = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Login(_)))
        .collect();
    assert_eq!(
        logins,
        [&Event::Login(LoginAttempt {
            user: Some("carol".into()),
            mechanism: LoginMechanism::User,
            result: LoginResult::RefusedByPolicy,
            resp_code: Some("AUTH".into()),
        })]
    );
}

#[test]
fn client_closing_before_the_greeting_ends_the_session_at_once() {
    let mut h = Harness::new(SessionConfig {
        upstream_stls: UpstreamStls::Opportunistic,
        ..SessionConfig::default()
    });
    h.session.handle_eof(Side::Client, h.now);
    h.drain();
    assert_eq!(h.closed_for(), Some(&CloseReason::Finished));
    h.server(GREETING);
    assert_eq!(
        h.take_server(),
        b"",
        "no upstream STLS for a client that left"
    );
}

#[test]
fn rewritten_capa_never_ends_a_bare_lf_line_with_the_terminator() {
    // Removing STLS (not offered here) used to leave `X\n` right before our `.` CRLF.
    let mut h = Harness::greeted(SessionConfig::default());
    h.client(b"CAPA\r\n");
    h.server(b"+OK\r\nX-ODD\nSTLS\r\n.\r\n");
    assert_eq!(text(&h.take_client()), "+OK\r\nX-ODD\r\n.\r\n");
}

#[test]
fn a_delivered_body_that_is_not_one_framed_body_is_withheld() {
    for body in [
        &b"x\n.\r\n"[..],
        b"a\r\n.\r\nsmuggled\r\n.\r\n",
        b"no end\r\n",
    ] {
        let mut h = Harness::logged_in(SessionConfig::default().with_rules(|r| {
            r.inspect_messages = true;
        }));
        h.client(b"RETR 1\r\n");
        h.server(b"+OK\r\nx\r\n.\r\n");
        h.session
            .deliver_message(Delivery::Body(body.to_vec()), h.now);
        h.drain();
        assert_eq!(
            text(&h.take_client()),
            "-ERR [SYS/TEMP] message withheld, try again later\r\n"
        );
        assert!(!h.session.is_finished());
    }
}
