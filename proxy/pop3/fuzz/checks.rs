//! The properties the fuzz targets check, shared with the corpus replay test
//! (`proxy/pop3/tests/fuzz_corpus.rs`), so `./tests/run.sh` re-checks every corpus entry.
//!
//! - [`body_framing`]: popgate's body scanner against two lenient readers (split on LF with
//!   a CR before it dropped; also split on a bare CR). No byte sequence may give them a
//!   different message end unless popgate refuses it, and the bytes popgate hands out
//!   before refusing contain no end for either reader.
//! - [`session`]: the session core driven from both sides with arbitrary interleavings
//!   (bytes in any chunking, EOFs, partial writes, timeouts, TLS upgrades, inspection
//!   verdicts, idle-memory releases). No panic; what waits for either side stays within
//!   the bound plus one input; every line beginning with `.` that reaches the client is
//!   dot-stuffed or the `.` CRLF terminator after a CRLF, so no reader ends a message where
//!   popgate did not.

use std::time::{Duration, Instant};

use popgate_pop3::body::{BodyScanner, Scanned};
use popgate_pop3::capa::AuthPolicy;
use popgate_pop3::{
    ClientStls, Delivery, Event, Session, SessionConfig, Side, UpstreamStls, Violation, MAX_UNSENT,
};

/// Feeds `body` to a scanner in `chunk`-sized reads, re-feeding held bytes like the session.
/// Returns the outcome and how many bytes were handed out.
pub fn feed(body: &[u8], chunk: usize) -> (Result<Option<usize>, Violation>, usize) {
    let mut scanner = BodyScanner::new(1000);
    let mut handed = 0;
    let mut buffered: Vec<u8> = Vec::new();
    for piece in body.chunks(chunk.max(1)) {
        buffered.extend_from_slice(piece);
        match scanner.scan(&buffered) {
            Ok(Scanned::End(n)) => return (Ok(Some(handed + n)), handed + n),
            Ok(Scanned::Body(n)) => {
                handed += n;
                buffered.drain(..n);
            }
            Err(violation) => return (Err(violation), handed),
        }
    }
    (Ok(None), handed)
}

/// Where a lenient reader sees a body that starts at `bytes[0]` end: lines split on LF (a CR
/// before it dropped) and, with `cr_ends_lines`, on a CR not followed by LF (a CR at the
/// very end counts: an eager reader does not wait); the first `.` line is the terminator.
pub fn lenient_end(bytes: &[u8], cr_ends_lines: bool) -> Option<usize> {
    let mut start = 0;
    for i in 0..bytes.len() {
        let ends = bytes[i] == b'\n'
            || (cr_ends_lines && bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if !ends {
            continue;
        }
        let mut line = &bytes[start..i];
        if bytes[i] == b'\n' {
            line = line.strip_suffix(b"\r").unwrap_or(line);
        }
        if line == b"." {
            return Some(i + 1);
        }
        start = i + 1;
    }
    None
}

/// `data[0]` picks the read size, the rest is a multi-line body.
pub fn body_framing(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let (outcome, handed) = feed(body, chunk);
    // The same answer whatever the read size.
    assert_eq!(
        feed(body, body.len().max(1)).0,
        outcome,
        "chunking changed the answer"
    );
    match outcome {
        Ok(Some(end)) => {
            assert_eq!(lenient_end(body, false), Some(end), "LF reader disagrees");
            assert_eq!(lenient_end(body, true), Some(end), "CR reader disagrees");
        }
        Ok(None) | Err(_) => {
            let out = &body[..handed];
            assert_eq!(lenient_end(out, false), None, "LF reader saw an end");
            assert_eq!(lenient_end(out, true), None, "CR reader saw an end");
        }
    }
}

/// Pieces the session target strings together, so it reaches deep states quickly.
const TOKENS: [&[u8]; 32] = [
    b"+OK\r\n",
    b"-ERR [AUTH] no\r\n",
    b"+ \r\n",
    b".\r\n",
    b"..\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b".",
    b"a",
    b"RETR 1\r\n",
    b"TOP 1 2\r\n",
    b"LIST\r\n",
    b"CAPA\r\n",
    b"STLS\r\n",
    b"USER alice\r\n",
    b"PASS\tsecret\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    b"AUTH\r\n",
    b"*\r\n",
    b"QUIT\r\n",
    b"DELE 1\r\n",
    b"NOOP\r\n",
    b"+OK fake ready <1.2@x>\r\n",
    b"+OK\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\n.\r\n",
    b"+OK 3 octets\r\nabc\r\n.\r\n",
    b"+OK\r\nx\r\n.\rX\r\n",
    b"+OK\r\nx\r\n.\n",
    b"+OK\r\nx\r.\r\n",
    b"\x16\x03\x01",
    b"USER x\r\n",
];

/// Reads the fuzz input a byte at a time.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// A token, or up to 64 raw input bytes.
    fn piece(&mut self) -> Option<Vec<u8>> {
        let selector = self.byte()?;
        let token = TOKENS[usize::from(selector) % TOKENS.len()];
        match selector {
            0..=159 => return Some(token.to_vec()),
            // A flood: the same piece 40 times, now and then 400 times (cheap enough to
            // keep the executions per second up, long enough to pipeline past the limits).
            160..=187 => return Some(token.repeat(40)),
            188..=191 => return Some(token.repeat(400)),
            _ => {}
        }
        let len = usize::from(self.byte()? % 64) + 1;
        let len = len.min(self.0.len());
        let (raw, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(raw.to_vec())
    }
}

/// The config the first input byte selects.
fn config(bits: u8) -> SessionConfig {
    SessionConfig {
        client_stls: [
            ClientStls::Terminate,
            ClientStls::Tunnel,
            ClientStls::Refuse,
            ClientStls::TerminateOverTls,
        ][usize::from(bits >> 1 & 3)],
        upstream_stls: [
            UpstreamStls::Never,
            UpstreamStls::Opportunistic,
            UpstreamStls::Mandatory,
            UpstreamStls::WithClient,
        ][usize::from(bits >> 3 & 3)],
        ..SessionConfig::default()
    }
    .with_rules(|r| {
        r.inspect_messages = bits & 1 != 0;
        r.auth = AuthPolicy {
            user: bits & 0x20 == 0,
            ..AuthPolicy::allow_all()
        };
        r.commands_require_tls = bits & 0x40 != 0;
        r.max_inspected_size = if bits & 0x80 != 0 { 64 } else { u64::MAX };
    })
}

/// The most either output may exceed the bound by: one input (a read, a delivery).
const SLACK: usize = 64 * 1024;

/// Drives one session from both sides as `data` says; see the module doc for the checks.
/// The same steps run twice, with and without the idle-memory releases `data` asks for:
/// releasing frees only empty buffers, so both runs must send every peer the same bytes.
pub fn session(data: &[u8]) {
    let Some(released) = drive_session(data, true) else {
        return;
    };
    let kept = drive_session(data, false).expect("the same input");
    assert!(
        released.to_server == kept.to_server,
        "releasing idle memory changed what the server got"
    );
    assert!(
        released.to_client == kept.to_client,
        "releasing idle memory changed what the client got"
    );
    assert_eq!(
        released.tunneled, kept.tunneled,
        "releasing idle memory changed the mode"
    );
    if !released.tunneled {
        check_client_stream(&released.to_client);
    }
}

/// What one run of [`drive_session`] sent each peer.
#[derive(Default)]
struct Sent {
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    /// The session became a tunnel: its bytes after that are not POP3.
    tunneled: bool,
}

impl Sent {
    /// Sends `side` the first `n` bytes the session has for it, as a driver's write does.
    fn take(&mut self, session: &mut Session, side: Side, n: usize, now: Instant) {
        let peer = match side {
            Side::Client => &mut self.to_client,
            Side::Server => &mut self.to_server,
        };
        peer.extend_from_slice(&session.output(side)[..n]);
        session.advance_output(side, n, now);
    }
}

/// One run of [`session`]'s steps; `releases` says whether the steps that ask for an
/// idle-memory release make one. `None` for an empty input.
fn drive_session(data: &[u8], releases: bool) -> Option<Sent> {
    let mut input = Input(data);
    let bits = input.byte()?;
    // The fake clock's epoch: time moves only by hand below.
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let mut session = Session::new(config(bits), now);
    let mut sent = Sent::default();
    let mut message: Vec<u8> = Vec::new();
    let (mut verdict_due, mut oversize_due, mut tls_due) = (false, false, None);
    while let Some(op) = input.byte() {
        if session.is_finished() {
            break;
        }
        match op % 9 {
            0..=2 => {
                let side = if op % 9 == 0 {
                    Side::Client
                } else {
                    Side::Server
                };
                let Some(piece) = input.piece() else { break };
                if session.wants_read(side) {
                    session.handle_bytes(side, &piece, now);
                }
            }
            3 => {
                let n = usize::from(input.byte().unwrap_or(0)) * 1024 + 1;
                let n = n.min(session.output(Side::Client).len());
                sent.take(&mut session, Side::Client, n, now);
            }
            4 => {
                let n = session.output(Side::Server).len();
                sent.take(&mut session, Side::Server, n, now);
            }
            5 => {
                let side = if op & 0x10 == 0 {
                    Side::Client
                } else {
                    Side::Server
                };
                if session.wants_read(side) || side == Side::Server {
                    session.handle_eof(side, now);
                }
            }
            6 => {
                now += Duration::from_secs(u64::from(input.byte().unwrap_or(0)) * 10);
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    session.handle_timeout(now);
                }
            }
            7 => {
                if let Some(side) = tls_due.take() {
                    let n = session.output(side).len();
                    sent.take(&mut session, side, n, now);
                    session.tls_established(side, now);
                }
            }
            _ => {
                let choice = input.byte().unwrap_or(0);
                if oversize_due {
                    oversize_due = false;
                    if choice & 1 == 0 {
                        session.oversize_pass(&message, now);
                    } else {
                        session.oversize_discard(now);
                    }
                } else if verdict_due && choice & 2 != 0 && session.refetch() {
                    // The server sends it again; its bytes replace what was collected.
                    verdict_due = false;
                    message.clear();
                } else if verdict_due {
                    verdict_due = false;
                    let delivery = if choice & 1 == 0 && message.len() <= 4096 {
                        Delivery::Body(std::mem::take(&mut message))
                    } else {
                        Delivery::TempFail("held".into())
                    };
                    session.deliver_message(delivery, now);
                } else if choice & 4 != 0 {
                    session.reserve_refetch();
                }
            }
        }
        // The driver frees empty buffers whenever it waits; doing so at any point between
        // two steps, even with events still queued, must lose nothing.
        if releases && op & 0x80 != 0 {
            session.release_idle_memory();
        }
        while let Some(event) = session.poll_event() {
            match event {
                Event::StartTls(side) => tls_due = Some(side),
                // Opaque from here on: what was sent so far is compared, not framed.
                Event::Tunnel => {
                    sent.tunneled = true;
                    return Some(sent);
                }
                Event::MessageStart { .. } => message.clear(),
                Event::MessageData(bytes) => message.extend_from_slice(&bytes),
                Event::MessageEnd => verdict_due = true,
                Event::MessageOversize => oversize_due = true,
                Event::MessageRefetchRefused => verdict_due = true,
                Event::Close(_) | Event::LoggedIn { .. } | Event::Login(_) => {}
            }
        }
        for side in [Side::Client, Side::Server] {
            assert!(
                session.unsent(side) <= MAX_UNSENT + SLACK,
                "{side:?} output {} bytes",
                session.unsent(side)
            );
        }
    }
    // What is still waiting was never written: no advance, which could make more.
    sent.to_client
        .extend_from_slice(session.output(Side::Client));
    sent.to_server
        .extend_from_slice(session.output(Side::Server));
    Some(sent)
}

/// Every line the client received that begins with `.` (lines split on LF or a bare CR, a
/// CR at the very end counting as one) is dot-stuffed, or is `.` CRLF after a CRLF.
pub fn check_client_stream(bytes: &[u8]) {
    let mut start = 0;
    let mut after_crlf = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let crlf = b == b'\r' && bytes.get(i + 1) == Some(&b'\n');
        if b != b'\n' && b != b'\r' {
            i += 1;
            continue;
        }
        let line = &bytes[start..i];
        if line.first() == Some(&b'.') && !line.starts_with(b"..") {
            assert!(
                line == b"." && crlf && after_crlf,
                "ambiguous dot line at {start}: {:?}",
                String::from_utf8_lossy(
                    &bytes[start.saturating_sub(400)..(i + 2).min(bytes.len())]
                )
            );
        }
        let end = if crlf { i + 2 } else { i + 1 };
        after_crlf = crlf;
        start = end;
        i = end;
    }
}
