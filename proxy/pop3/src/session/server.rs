//! Server input: the greeting, status lines matched to pending commands, multi-line bodies,
//! and the proxy's own CAPA/STLS exchange with the server.
//!
//! Bodies are scanned in place and forwarded unchanged; only CAPA (and a bare AUTH's
//! mechanism list) are collected and rewritten, and inspected messages go to the driver.

use super::{
    BodyMode, ClientState, CloseReason, Event, Forwarded, Internal, Pending, Pop3State,
    ServerState, Session, Side, UpstreamStls, MAX_CAPA_BODY, MAX_UNSENT,
};
use crate::body::{self, BodyScanner, Scanned};
use crate::capa::{self, Capabilities};
use crate::command::{line_body_len, Verb};
use crate::login::{LoginAttempt, LoginMechanism, LoginResult};
use crate::status::{resp_code, Status};
use crate::Violation;

impl Session {
    pub(super) fn handle_server_bytes(&mut self, data: &[u8]) {
        if self.server_in.is_empty() {
            let used = self.process_server(data);
            if !self.closing {
                self.server_in.extend_from_slice(&data[used..]);
            }
        } else {
            self.server_in.extend_from_slice(data);
            self.resume_server_input();
        }
    }

    /// Processes buffered server bytes again (after a pause for backpressure or a verdict).
    pub(super) fn resume_server_input(&mut self) {
        if self.server_in.is_empty() || self.closing {
            return;
        }
        let mut buf = std::mem::take(&mut self.server_in);
        let used = self.process_server(&buf);
        buf.drain(..used);
        if !self.closing {
            self.server_in = buf;
        }
    }

    /// Consumes as much of `input` as the state allows; returns how much was consumed.
    fn process_server(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() && !self.closing {
            let rest = &input[i..];
            match &mut self.server_state {
                ServerState::Greeting | ServerState::StatusLine => {
                    if self.to_client.len() >= MAX_UNSENT {
                        return i;
                    }
                    if matches!(self.server_state, ServerState::Greeting) && rest[0] == 0x16 {
                        self.fail_client("[SYS/TEMP] invalid greeting from server");
                        self.violation(Side::Server, Violation::TlsRecordOnPlaintext);
                        continue;
                    }
                    let limit = self.config.max_status_line;
                    match memchr::memchr(b'\n', rest) {
                        Some(end) if end < limit => {
                            i += end + 1;
                            self.handle_status_line(&rest[..=end]);
                        }
                        None if rest.len() <= limit => return i,
                        _ => {
                            self.fail_client("[SYS/TEMP] invalid response from server");
                            self.violation(Side::Server, Violation::StatusLineTooLong { limit });
                        }
                    }
                }
                ServerState::Body(_, BodyMode::OversizeHold) => return i,
                ServerState::Body(scanner, _) => {
                    if self.to_client.len() >= MAX_UNSENT {
                        return i;
                    }
                    match scanner.scan(rest) {
                        Ok(Scanned::Body(n)) => {
                            i += n;
                            if n > 0 {
                                self.body_bytes(&rest[..n], false);
                            }
                            if n < rest.len() {
                                // A `.` CR at a line start waits for the byte after it.
                                return i;
                            }
                        }
                        Ok(Scanned::End(end)) => {
                            i += end;
                            self.body_bytes(&rest[..end], true);
                        }
                        Err(violation) => {
                            // The message ends here for nobody: no terminator goes out (the
                            // -ERR too only when nothing of the response went out yet).
                            let text = match violation {
                                Violation::BodyLineTooLong { .. } => {
                                    "[SYS/TEMP] response from server too long"
                                }
                                _ => "[SYS/TEMP] invalid response from server",
                            };
                            self.fail_client(text);
                            self.violation(Side::Server, violation);
                        }
                    }
                }
                ServerState::AwaitingVerdict => return i,
                ServerState::AwaitingTls | ServerState::Tunnel => {
                    self.violation(Side::Server, Violation::ServerDataBeforeHandshake);
                }
            }
        }
        i
    }

    fn handle_status_line(&mut self, line: &[u8]) {
        if matches!(self.server_state, ServerState::Greeting) {
            self.handle_greeting(line);
            return;
        }
        if line[..line_body_len(line)].contains(&b'\r') {
            // A client that takes CR as a line end would read two lines here.
            self.fail_client("[SYS/TEMP] invalid response from server");
            self.violation(Side::Server, Violation::BareCr);
            return;
        }
        let Some(status) = Status::parse(line) else {
            self.fail_client("[SYS/TEMP] invalid response from server");
            self.violation(Side::Server, Violation::NotAStatusLine);
            return;
        };
        match self.pending.front() {
            None => {
                // SPEC §5: a status line nobody asked for would answer the client's next
                // command (response smuggling). Even Dovecot's "-ERR Disconnected for
                // inactivity." is not passed on: the session ends with our own -ERR.
                self.fail_client("[SYS/TEMP] invalid response from server");
                self.violation(Side::Server, Violation::UnsolicitedStatus);
            }
            Some(Pending::Forwarded(forwarded)) => {
                let forwarded = Forwarded { ..*forwarded };
                self.forwarded_response(forwarded, status, line);
            }
            Some(Pending::Internal(internal)) => {
                let internal = *internal;
                self.internal_response(internal, status, line);
            }
            Some(Pending::Refetch) => self.refetch_status(status),
            Some(Pending::Local(_) | Pending::ClientStls) => {
                self.fail_client("[SYS/TEMP] internal error");
                self.violation(Side::Server, Violation::UnsolicitedStatus);
            }
        }
    }

    fn handle_greeting(&mut self, line: &[u8]) {
        match Status::parse(line) {
            Some(Status::Ok) => {
                self.server_state = ServerState::StatusLine;
                let upstream_first = matches!(
                    self.config.upstream_stls,
                    UpstreamStls::Opportunistic | UpstreamStls::Mandatory
                );
                if upstream_first && !self.server_tls {
                    // The greeting (and its APOP timestamp) waits until the server leg is set.
                    self.held_greeting = Some(line.to_vec());
                    self.send_internal(Internal::Capa);
                } else {
                    self.to_client.extend_from_slice(line);
                    self.greeted = true;
                    self.process_client_input();
                }
            }
            Some(Status::Err) => {
                self.to_client.extend_from_slice(line);
                self.close(CloseReason::Refused("server greeted with -ERR".into()));
            }
            _ => {
                self.fail_client("[SYS/TEMP] invalid greeting from server");
                self.violation(Side::Server, Violation::InvalidGreeting);
            }
        }
    }

    fn forwarded_response(&mut self, forwarded: Forwarded, status: Status, line: &[u8]) {
        let verb = forwarded.verb;
        match status {
            Status::Continue => match (verb, self.client_state) {
                (Verb::Auth, ClientState::Sasl { client_turn: false }) => {
                    self.to_client.extend_from_slice(line);
                    self.client_state = ClientState::Sasl { client_turn: true };
                    self.process_client_input();
                }
                (Verb::Auth, ClientState::Sasl { client_turn: true }) => {
                    self.fail_client("[SYS/TEMP] invalid response from server");
                    self.violation(Side::Server, Violation::RepeatedSaslContinuation);
                }
                _ => {
                    self.fail_client("[SYS/TEMP] invalid response from server");
                    self.violation(Side::Server, Violation::ContinuationOutsideSasl);
                }
            },
            Status::Err => {
                self.to_client.extend_from_slice(line);
                if matches!(verb, Verb::Auth | Verb::Stls) {
                    self.client_state = ClientState::Commands;
                }
                self.login_result(verb, LoginResult::Failed, line);
                self.response_done();
            }
            Status::Ok if forwarded.multiline_on_ok => self.start_body(forwarded, line),
            Status::Ok => {
                self.to_client.extend_from_slice(line);
                self.single_line_ok(verb, line);
            }
        }
    }

    /// Emits [`Event::Login`] when `verb`'s response completes a login attempt.
    fn login_result(&mut self, verb: Verb, result: LoginResult, line: &[u8]) {
        let completes = match verb {
            Verb::Pass | Verb::Apop => true,
            // A bare AUTH (mechanism list) is no attempt.
            Verb::Auth => matches!(self.login_mechanism, Some(LoginMechanism::Sasl(_))),
            _ => false,
        };
        if !completes {
            return;
        }
        let Some(mechanism) = self.login_mechanism.take() else {
            return;
        };
        self.events.push_back(Event::Login(LoginAttempt {
            user: self.user_candidate.clone(),
            mechanism,
            result,
            resp_code: resp_code(line).map(str::to_owned),
        }));
    }

    fn single_line_ok(&mut self, verb: Verb, line: &[u8]) {
        match verb {
            Verb::Pass | Verb::Apop | Verb::Auth => {
                self.login_result(verb, LoginResult::Ok, line);
                self.state = Pop3State::Transaction;
                self.client_state = ClientState::Commands;
                self.stats.user = self.user_candidate.clone();
                self.events.push_back(Event::LoggedIn {
                    user: self.user_candidate.clone(),
                });
            }
            Verb::Quit => {
                if self.state == Pop3State::Transaction {
                    self.state = Pop3State::Update;
                }
                self.pending.pop_front();
                self.close(CloseReason::Finished);
                return;
            }
            Verb::Stls => {
                // Passed through uninspected (`tls.action: allow`): the rest is opaque.
                self.pending.pop_front();
                self.client_state = ClientState::Tunnel;
                self.server_state = ServerState::Tunnel;
                self.events.push_back(Event::Tunnel);
                return;
            }
            _ => {}
        }
        self.response_done();
    }

    fn start_body(&mut self, forwarded: Forwarded, line: &[u8]) {
        let scanner = BodyScanner::new(self.config.rules.max_body_line);
        let mode = match forwarded.verb {
            Verb::Capa | Verb::Auth => {
                self.held_status = Some(line.to_vec());
                BodyMode::Capa(Vec::new())
            }
            Verb::Retr | Verb::Top if self.config.rules.inspect_messages => {
                self.stats.messages += 1;
                self.held_status = Some(line.to_vec());
                self.events.push_back(Event::MessageStart {
                    number: forwarded.number.unwrap_or(0),
                    top_lines: forwarded.top_lines,
                });
                BodyMode::Inspect { size: 0 }
            }
            verb => {
                if matches!(verb, Verb::Retr | Verb::Top) {
                    self.stats.messages += 1;
                }
                self.to_client.extend_from_slice(line);
                BodyMode::Stream
            }
        };
        self.server_state = ServerState::Body(scanner, mode);
    }

    fn body_bytes(&mut self, bytes: &[u8], done: bool) {
        let ServerState::Body(_, mode) = &mut self.server_state else {
            return;
        };
        match mode {
            BodyMode::Stream => {
                self.to_client.extend_from_slice(bytes);
                if done {
                    self.server_state = ServerState::StatusLine;
                    self.response_done();
                }
            }
            BodyMode::Inspect { size } => {
                *size += bytes.len() as u64;
                let oversize = !done && *size > self.config.rules.max_inspected_size;
                self.events.push_back(Event::MessageData(bytes.to_vec()));
                if done {
                    self.server_state = ServerState::AwaitingVerdict;
                    self.events.push_back(Event::MessageEnd);
                } else if oversize {
                    *mode = BodyMode::OversizeHold;
                    self.events.push_back(Event::MessageOversize);
                }
            }
            BodyMode::Discard => {
                if done {
                    self.server_state = ServerState::AwaitingVerdict;
                    self.events.push_back(Event::MessageEnd);
                }
            }
            BodyMode::OversizeHold => {}
            BodyMode::Refetch => self.refetch_bytes(bytes, done),
            BodyMode::Capa(collected) => {
                collected.extend_from_slice(bytes);
                if collected.len() > MAX_CAPA_BODY {
                    self.fail_client("[SYS/TEMP] invalid response from server");
                    self.violation(Side::Server, Violation::CapabilityListTooLong);
                } else if done {
                    let body = std::mem::take(collected);
                    self.server_state = ServerState::StatusLine;
                    self.collected_body(body);
                }
            }
        }
    }

    /// A CAPA (or bare AUTH) body is complete, terminator included.
    fn collected_body(&mut self, mut body: Vec<u8>) {
        let kept = body::without_terminator(&body).len();
        body.truncate(kept);
        let status = self.held_status.take().unwrap_or_default();
        match self.pending.front() {
            Some(Pending::Internal(Internal::Capa)) => {
                self.server_caps = Some(Capabilities::parse(&body));
                self.pending.pop_front();
                self.after_internal_capa();
            }
            Some(Pending::Forwarded(Forwarded {
                verb: Verb::Capa, ..
            })) => {
                self.server_caps = Some(Capabilities::parse(&body));
                let offer_stls = self.offers_stls();
                let rewritten = capa::rewrite(&body, offer_stls, &self.config.rules.auth);
                self.emit_rewritten(&status, &rewritten);
            }
            _ => {
                // A bare AUTH: one mechanism per line.
                let auth = &self.config.rules.auth;
                let kept: Vec<u8> = body
                    .split_inclusive(|&b| b == b'\n')
                    .filter(|l| auth.allows_sasl(&String::from_utf8_lossy(&l[..line_body_len(l)])))
                    .flatten()
                    .copied()
                    .collect();
                self.emit_rewritten(&status, &kept);
            }
        }
    }

    /// Sends a rewritten CAPA (or mechanism list): every line re-ended with CRLF, so that
    /// removing a line can never leave our terminator after a line ended by LF alone (which
    /// a lenient client would read differently; found by the `session` fuzz target).
    fn emit_rewritten(&mut self, status: &[u8], body: &[u8]) {
        self.to_client.extend_from_slice(status);
        for line in body.split_inclusive(|&b| b == b'\n') {
            self.to_client
                .extend_from_slice(&line[..line_body_len(line)]);
            self.to_client.extend_from_slice(b"\r\n");
        }
        self.to_client.extend_from_slice(b".\r\n");
        self.response_done();
    }

    /// Whether the client is offered STLS now.
    fn offers_stls(&self) -> bool {
        !self.client_tls
            && self.state == Pop3State::Authorization
            && match self.config.client_stls {
                super::ClientStls::Terminate => true,
                super::ClientStls::Tunnel => {
                    self.server_caps.as_ref().is_some_and(|caps| caps.stls)
                }
                super::ClientStls::Refuse => false,
                super::ClientStls::TerminateOverTls => self.server_tls_available(),
            }
    }

    fn internal_response(&mut self, internal: Internal, status: Status, line: &[u8]) {
        match (internal, status) {
            (Internal::Capa, Status::Ok) => {
                self.held_status = Some(line.to_vec());
                let scanner = BodyScanner::new(self.config.max_status_line);
                self.server_state = ServerState::Body(scanner, BodyMode::Capa(Vec::new()));
            }
            (Internal::Capa, Status::Err) => {
                self.server_caps = Some(Capabilities::default());
                self.pending.pop_front();
                self.after_internal_capa();
            }
            (Internal::Stls, Status::Ok) => {
                self.pending.pop_front();
                self.server_state = ServerState::AwaitingTls;
                self.events.push_back(Event::StartTls(Side::Server));
            }
            (Internal::Stls, Status::Err) => {
                self.pending.pop_front();
                self.upstream_stls_refused(line);
            }
            (_, Status::Continue) => {
                self.fail_client("[SYS/TEMP] invalid response from server");
                self.violation(Side::Server, Violation::ContinuationOutsideSasl);
            }
        }
    }

    /// Decides the next setup step once the server's capabilities are known.
    fn after_internal_capa(&mut self) {
        if self.greeted {
            // After an STLS made on the client's behalf: its `+OK` is next in the queue.
            self.flush_front();
            return;
        }
        let offers_stls = self.server_caps.as_ref().is_some_and(|caps| caps.stls);
        if self.server_tls {
            self.release_greeting();
        } else if offers_stls {
            self.send_internal(Internal::Stls);
        } else if self.config.upstream_stls == UpstreamStls::Mandatory {
            self.refuse_session("[SYS/PERM] TLS to the server is required but not offered");
        } else {
            self.release_greeting();
        }
    }

    fn upstream_stls_refused(&mut self, line: &[u8]) {
        if !self.greeted {
            if self.config.upstream_stls == UpstreamStls::Mandatory {
                self.refuse_session("[SYS/PERM] TLS to the server is required but was refused");
            } else {
                self.release_greeting();
            }
            return;
        }
        // `match`: the client asked for TLS and the server refused; mirror the refusal.
        if let Some(Pending::ClientStls) = self.pending.front() {
            self.pending.pop_front();
            self.pending.push_front(Pending::Local(line.to_vec()));
            self.client_state = ClientState::Commands;
        }
        self.flush_front();
        self.process_client_input();
    }

    fn refuse_session(&mut self, text: &str) {
        self.fail_client(text);
        self.close(CloseReason::Refused(text.to_string()));
    }

    fn release_greeting(&mut self) {
        if let Some(greeting) = self.held_greeting.take() {
            self.to_client.extend_from_slice(&greeting);
        }
        self.greeted = true;
        self.process_client_input();
    }

    /// The response at the front of the queue is complete.
    pub(super) fn response_done(&mut self) {
        self.pending.pop_front();
        self.flush_front();
        self.process_client_input();
    }

    pub(super) fn server_closed(&mut self) {
        if self.state == Pop3State::Update || self.pending.is_empty() && self.greeted {
            let reason = if self.state == Pop3State::Update {
                CloseReason::Finished
            } else {
                CloseReason::PeerClosed(Side::Server)
            };
            self.close(reason);
            return;
        }
        self.fail_client("[SYS/TEMP] server closed the connection");
        self.close(CloseReason::PeerClosed(Side::Server));
    }
}
