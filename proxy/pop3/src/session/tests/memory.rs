//! What a session keeps while it waits: an idle session must cost as little after a
//! download as before it (BENCHMARKS.md: 32 KiB per idle TLS session, issue 16).

use super::*;

/// Every buffer of the core that can grow with traffic, in bytes of capacity.
fn capacities(session: &Session) -> [usize; 6] {
    [
        session.to_client.capacity(),
        session.to_server.capacity(),
        session.server_in.capacity(),
        session.client_in.capacity(),
        session.events.capacity(),
        session.pending.capacity(),
    ]
}

fn message(size: usize) -> Vec<u8> {
    let mut body = format!("+OK {size} octets\r\n").into_bytes();
    while body.len() < size {
        body.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog, line after line.\r\n",
        );
    }
    body.extend_from_slice(b".\r\n");
    body
}

#[test]
fn a_session_waiting_after_a_download_keeps_no_buffer() {
    let mut h = Harness::logged_in(SessionConfig::default());
    // A pipelined burst of commands and a few KiB of answer grow every buffer.
    h.client(b"NOOP\r\nSTAT\r\nRETR 1\r\n");
    assert_eq!(h.take_server(), b"NOOP\r\nSTAT\r\nRETR 1\r\n");
    let mut answers = b"+OK\r\n+OK 1 4000\r\n".to_vec();
    answers.extend_from_slice(&message(4000));
    for piece in answers.chunks(700) {
        h.server(piece);
    }
    assert!(h.take_client().ends_with(b".\r\n"));
    assert!(capacities(&h.session).iter().any(|&c| c > 0));
    h.session.release_idle_memory();
    assert_eq!(capacities(&h.session), [0; 6]);
    // And the session goes on as before.
    h.client(b"STAT\r\n");
    assert_eq!(h.take_server(), b"STAT\r\n");
    h.server(b"+OK 1 4000\r\n");
    assert_eq!(h.take_client(), b"+OK 1 4000\r\n");
}

#[test]
fn releasing_keeps_every_byte_still_waiting() {
    let mut h = Harness::logged_in(SessionConfig::default());
    h.client(b"RETR 1\r\n");
    h.take_server();
    let answer = message(3000);
    // Half an answer read, nothing written to the client yet: all of it must survive.
    h.session.handle_bytes(Side::Server, &answer[..1500], h.now);
    let waiting = h.session.output(Side::Client).to_vec();
    assert!(!waiting.is_empty());
    h.session.release_idle_memory();
    assert_eq!(h.session.output(Side::Client), &waiting[..]);
    h.drain();
    h.server(&answer[1500..]);
    assert_eq!(h.take_client(), answer);
}
