//! The second fetch of an inspected message (`Session::reserve_refetch`, `Session::refetch`).

use super::*;

fn inspecting() -> Harness {
    let config = SessionConfig::default().with_rules(|r| {
        r.inspect_messages = true;
    });
    Harness::logged_in(config)
}

fn data(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageData(bytes) => Some(bytes.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

#[test]
fn the_second_fetch_reaches_only_the_driver_and_commands_wait_for_it() {
    let mut h = inspecting();
    h.client(b"RETR 3\r\n");
    assert_eq!(h.take_server(), b"RETR 3\r\n");
    h.server(b"+OK 20 octets\r\nSubject: a\r\n\r\nfirst\r\n");
    assert!(h.session.reserve_refetch());
    h.session.deliver_partial(b"Subject: a\r\n", h.now);
    // Sent while the message arrives: it must not reach the server before the second fetch.
    h.client(b"DELE 3\r\n");
    h.server(b".\r\n");
    assert_eq!(h.take_server(), b"");
    assert_eq!(h.events.last(), Some(&Event::MessageEnd));
    h.events.clear();

    assert!(h.session.refetch());
    h.drain();
    assert_eq!(h.take_server(), b"RETR 3\r\n");
    h.server(b"+OK 20 octets\r\nSubject: a\r\n\r\nfirst\r\n.\r\n");
    assert_eq!(data(&h.events), b"Subject: a\r\n\r\nfirst\r\n.\r\n");
    assert_eq!(h.events.last(), Some(&Event::MessageEnd));
    assert_eq!(text(&h.take_client()), "+OK 20 octets\r\nSubject: a\r\n");

    h.session
        .deliver_message(Delivery::Body(b"\r\nfirst\r\n.\r\n".to_vec()), h.now);
    h.drain();
    assert_eq!(text(&h.take_client()), "\r\nfirst\r\n.\r\n");
    // Delivered: the waiting command goes on.
    assert_eq!(h.take_server(), b"DELE 3\r\n");
    h.server(b"+OK deleted\r\n");
    assert_eq!(text(&h.take_client()), "+OK deleted\r\n");
}

#[test]
fn no_second_fetch_behind_a_pipelined_command() {
    let mut h = inspecting();
    h.client(b"RETR 1\r\nSTAT\r\n");
    h.server(b"+OK\r\nSubject: a\r\n");
    assert!(!h.session.reserve_refetch());
    h.server(b"\r\nb\r\n.\r\n");
    assert!(!h.session.refetch());
    assert_eq!(h.take_server(), b"RETR 1\r\nSTAT\r\n");
}

#[test]
fn no_second_fetch_for_a_top_or_outside_a_message() {
    let mut h = inspecting();
    assert!(!h.session.reserve_refetch());
    h.client(b"TOP 1 2\r\n");
    h.server(b"+OK\r\nSubject: a\r\n");
    assert!(!h.session.reserve_refetch());
}

#[test]
fn a_refused_second_fetch_is_reported_and_the_message_withheld() {
    let mut h = inspecting();
    h.client(b"RETR 2\r\n");
    h.server(b"+OK\r\nSubject: a\r\n");
    assert!(h.session.reserve_refetch());
    h.server(b"\r\nb\r\n.\r\n");
    h.events.clear();
    assert!(h.session.refetch());
    h.drain();
    h.server(b"-ERR no such message\r\n");
    assert_eq!(h.events, vec![Event::MessageRefetchRefused]);
    h.session
        .deliver_message(Delivery::TempFail("held".into()), h.now);
    h.drain();
    assert_eq!(text(&h.take_client()), "-ERR [SYS/TEMP] held\r\n");
    h.client(b"NOOP\r\n");
    assert_eq!(h.take_server(), b"RETR 2\r\nRETR 2\r\nNOOP\r\n");
}

#[test]
fn the_second_fetch_is_framed_as_strictly_as_the_first() {
    let mut h = inspecting();
    h.client(b"RETR 2\r\n");
    h.server(b"+OK\r\nSubject: a\r\n");
    assert!(h.session.reserve_refetch());
    h.session.deliver_partial(b"Subject: a\r\n", h.now);
    h.server(b"\r\nb\r\n.\r\n");
    assert!(h.session.refetch());
    h.drain();
    h.take_client();
    // `.` CR X: a lenient reader's terminator; nothing more reaches anyone.
    h.server(b"+OK\r\nSubject: a\r\n.\rX\r\n.\r\n");
    assert!(matches!(
        h.closed_for(),
        Some(CloseReason::ProtocolViolation(Side::Server, _))
    ));
    assert_eq!(h.take_client(), b"");
}
