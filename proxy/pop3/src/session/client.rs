//! Client input: command lines, SASL lines, policy checks and the client's STLS.
//!
//! Commands are forwarded as soon as they are complete (RFC 2449 PIPELINING); replies the
//! proxy makes itself wait in [`Pending`] order so pipelined answers never overtake.

use tracing::debug;

use super::{
    ClientState, ClientStls, CloseReason, Event, Forwarded, Internal, Pending, Pop3State, Session,
    Side, UpstreamStls, MAX_PENDING,
};
use crate::command::{is_blank, line_body_len, Command, Verb};
use crate::login::{sasl_user, LoginAttempt, LoginMechanism, LoginResult};
use crate::Violation;

impl Session {
    pub(super) fn handle_client_bytes(&mut self, data: &[u8]) {
        match self.client_state {
            ClientState::AwaitingTls => {
                // RFC 2595 §4 and the "NO STARTTLS" injection class: nothing may follow STLS.
                self.violation(Side::Client, Violation::ClientDataBeforeHandshake);
                return;
            }
            ClientState::Tunnel => return,
            ClientState::Commands | ClientState::Sasl { .. } => {}
        }
        if self.client_eof {
            return;
        }
        if let Some(byte) = data.iter().copied().find(|&b| is_forbidden(b)) {
            let violation = if self.client_in.is_empty() && data.first() == Some(&0x16) {
                Violation::TlsRecordOnPlaintext
            } else {
                Violation::ForbiddenByte { byte }
            };
            self.fail_client("[SYS/PERM] invalid command, closing connection");
            self.violation(Side::Client, violation);
            return;
        }
        self.client_in.extend(data);
        self.process_client_input();
    }

    /// Handles every complete line buffered from the client, as far as the state and the
    /// output bounds allow; after the client's EOF, ends the session once all is answered.
    pub(super) fn process_client_input(&mut self) {
        if !self.greeted {
            // Kept until the greeting; past MAX_EARLY_CLIENT_BYTES the client is not read
            // (`wants_read`), so a client that floods early waits instead of reconnecting.
            return;
        }
        if self.refetch_reserved.is_some() {
            // The server's next response must be the second fetch's: commands wait.
            return;
        }
        while !self.closing && !self.client_in.is_empty() {
            match self.client_state {
                ClientState::Commands | ClientState::Sasl { client_turn: true } => {}
                // The server's turn in a SASL exchange: the line waits for its answer.
                ClientState::Sasl { client_turn: false } => break,
                ClientState::AwaitingTls => {
                    self.violation(Side::Client, Violation::ClientDataBeforeHandshake);
                    return;
                }
                ClientState::Tunnel => return,
            }
            if self.pending.len() >= MAX_PENDING || self.output_full() {
                return;
            }
            let limit = self.line_limit();
            let Some(end) = memchr::memchr(b'\n', self.client_in.as_slice()) else {
                if self.client_in.len() > limit {
                    self.fail_client("[SYS/PERM] command line too long, closing connection");
                    self.violation(Side::Client, Violation::CommandLineTooLong { limit });
                }
                break;
            };
            if end + 1 > limit {
                self.fail_client("[SYS/PERM] command line too long, closing connection");
                self.violation(Side::Client, Violation::CommandLineTooLong { limit });
                return;
            }
            let line = self.client_in.as_slice()[..=end].to_vec();
            self.client_in.consume(end + 1);
            if line[..line_body_len(&line)].contains(&b'\r') {
                // A server that takes CR as a line end would read two commands here.
                self.fail_client("[SYS/PERM] invalid command, closing connection");
                self.violation(Side::Client, Violation::BareCr);
                return;
            }
            if matches!(self.client_state, ClientState::Sasl { .. }) {
                self.sasl_response(&line);
            } else {
                self.handle_command(Command::parse(&line));
            }
        }
        if self.client_eof && !self.closing && self.pending.is_empty() && !self.has_client_line() {
            // Everything the client sent before closing is answered (a trailing partial
            // line was never a command).
            self.close(CloseReason::Finished);
        }
    }

    fn has_client_line(&self) -> bool {
        memchr::memchr(b'\n', self.client_in.as_slice()).is_some()
    }

    /// A client line inside a SASL exchange: a credential, forwarded and never logged. A `*`
    /// cancels the exchange (RFC 5034 §4); the server's `-ERR` to it ends it.
    fn sasl_response(&mut self, line: &[u8]) {
        self.to_server.extend_from_slice(line);
        self.client_state = ClientState::Sasl { client_turn: false };
        if let Some(LoginMechanism::Sasl(mechanism)) = &self.login_mechanism {
            if let Some(user) = sasl_user(mechanism, self.sasl_responses, line) {
                self.user_candidate = Some(user);
            }
        }
        self.sasl_responses += 1;
    }

    fn line_limit(&self) -> usize {
        let input = self.client_in.as_slice();
        let verb_at = input
            .iter()
            .position(|&b| !is_blank(b))
            .unwrap_or(input.len());
        let starts_auth = input.len() >= verb_at + 5
            && input[verb_at..verb_at + 4].eq_ignore_ascii_case(b"AUTH")
            && is_blank(input[verb_at + 4]);
        if matches!(self.client_state, ClientState::Sasl { .. }) || starts_auth {
            self.config.max_sasl_line
        } else {
            self.config.max_command_line
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        self.stats.commands += 1;
        debug!(command = %cmd, "client command");
        let verb = cmd.verb();
        if self.config.rules.commands_require_tls
            && !self.client_tls
            && !matches!(verb, Verb::Capa | Verb::Stls | Verb::Quit | Verb::Noop)
        {
            self.reply_local("-ERR [AUTH] TLS required\r\n");
            return;
        }
        if self.state == Pop3State::Authorization
            && !cmd.is_valid_before_login()
            && !self.login_pending()
        {
            self.reply_local("-ERR command not valid before login\r\n");
            return;
        }
        match verb {
            Verb::Stls => self.handle_client_stls(cmd),
            Verb::User | Verb::Pass | Verb::Apop | Verb::Auth
                if self.state == Pop3State::Authorization =>
            {
                match self.login_refusal(&cmd) {
                    Some(reply) => {
                        // One attempt per refused login (a refused USER's PASS is not another).
                        if let Some(mechanism) =
                            login_mechanism(&cmd).filter(|_| verb != Verb::Pass)
                        {
                            self.events.push_back(Event::Login(LoginAttempt {
                                user: cmd.user_name().or_else(|| self.user_candidate.clone()),
                                mechanism,
                                result: LoginResult::RefusedByPolicy,
                                resp_code: Some("AUTH".into()),
                            }));
                        }
                        self.reply_local(&reply);
                    }
                    None => self.forward(cmd),
                }
            }
            _ => self.forward(cmd),
        }
    }

    /// Whether a forwarded login command still waits for its answer: a command pipelined
    /// behind it may be meant for the TRANSACTION state it opens.
    fn login_pending(&self) -> bool {
        self.pending.iter().any(|pending| {
            matches!(pending, Pending::Forwarded(f)
                if matches!(f.verb, Verb::User | Verb::Pass | Verb::Apop | Verb::Auth))
        })
    }

    /// Why policy refuses this login command, as the `-ERR` line to send, if it does.
    fn login_refusal(&self, cmd: &Command) -> Option<String> {
        if self.config.rules.login_requires_tls && !self.client_tls {
            return Some("-ERR [AUTH] TLS required before login\r\n".into());
        }
        let auth = &self.config.rules.auth;
        let allowed = match cmd.verb() {
            Verb::User | Verb::Pass => auth.user,
            Verb::Apop => auth.apop,
            // A bare AUTH only lists mechanisms; the list is filtered on the way back.
            Verb::Auth => cmd
                .sasl_mechanism()
                .is_none_or(|mechanism| auth.allows_sasl(&mechanism)),
            _ => true,
        };
        (!allowed).then(|| "-ERR [AUTH] login method not permitted by policy\r\n".into())
    }

    fn handle_client_stls(&mut self, cmd: Command) {
        if self.client_tls {
            self.reply_local("-ERR TLS is already active\r\n");
            return;
        }
        if self.state != Pop3State::Authorization {
            self.reply_local("-ERR STLS is only allowed before login\r\n");
            return;
        }
        let stls = match self.config.client_stls {
            ClientStls::TerminateOverTls if !self.server_tls_available() => ClientStls::Refuse,
            ClientStls::TerminateOverTls => ClientStls::Terminate,
            other => other,
        };
        match stls {
            ClientStls::Refuse if self.config.client_stls == ClientStls::TerminateOverTls => self
                .reply_local("-ERR STLS not available: the mail server connection is not TLS\r\n"),
            ClientStls::Refuse => self.reply_local("-ERR STLS not available\r\n"),
            ClientStls::Tunnel | ClientStls::Terminate
                if !self.client_in.is_empty() || self.client_eof =>
            {
                self.violation(Side::Client, Violation::PipelinedAfterStls);
            }
            ClientStls::Tunnel => {
                self.forward(cmd);
                self.client_state = ClientState::AwaitingTls;
            }
            ClientStls::Terminate | ClientStls::TerminateOverTls => {
                self.client_state = ClientState::AwaitingTls;
                if self.config.upstream_stls == UpstreamStls::WithClient && !self.server_tls {
                    self.send_internal(Internal::Stls);
                }
                self.pending.push_back(Pending::ClientStls);
                self.flush_front();
            }
        }
    }

    /// Whether the server leg is TLS, or becomes TLS with the client's STLS.
    pub(super) fn server_tls_available(&self) -> bool {
        self.server_tls || self.config.upstream_stls == UpstreamStls::WithClient
    }

    fn forward(&mut self, cmd: Command) {
        let verb = cmd.verb();
        if let Some(name) = cmd.user_name() {
            self.user_candidate = Some(name);
        }
        if let Some(mechanism) = login_mechanism(&cmd) {
            self.login_mechanism = Some(mechanism);
        }
        let numbers = cmd.numeric_args();
        let number = match verb {
            Verb::Retr | Verb::Top => numbers.first().copied(),
            _ => None,
        };
        let top_lines = match verb {
            Verb::Top if self.config.rules.inspect_messages => numbers.get(1).copied(),
            _ => None,
        };
        match (top_lines, number) {
            // Inspected TOP: fetch the whole message; the driver cuts the inspected result.
            (Some(_), Some(n)) => self
                .to_server
                .extend_from_slice(format!("RETR {n}\r\n").as_bytes()),
            _ => self.to_server.extend_from_slice(cmd.raw()),
        }
        self.pending.push_back(Pending::Forwarded(Forwarded {
            verb,
            multiline_on_ok: cmd.is_multiline_on_ok(),
            number,
            top_lines: top_lines.filter(|_| number.is_some()),
        }));
        if let Some(mechanism) = cmd.sasl_mechanism() {
            self.client_state = ClientState::Sasl { client_turn: false };
            self.sasl_responses = 0;
            if let Some(initial) = cmd.sasl_initial_response() {
                if let Some(user) = sasl_user(&mechanism, 0, initial) {
                    self.user_candidate = Some(user);
                }
                self.sasl_responses = 1;
            }
        }
    }

    /// Queues a reply made by the proxy; it goes out once earlier responses have.
    pub(super) fn reply_local(&mut self, line: &str) {
        self.pending
            .push_back(Pending::Local(line.as_bytes().to_vec()));
        self.flush_front();
    }

    /// Sends every proxy-made reply that has reached the front of the queue.
    pub(super) fn flush_front(&mut self) {
        loop {
            match self.pending.front() {
                Some(Pending::Local(_)) => {
                    if let Some(Pending::Local(bytes)) = self.pending.pop_front() {
                        self.to_client.extend_from_slice(&bytes);
                    }
                }
                Some(Pending::ClientStls) => {
                    self.pending.pop_front();
                    self.to_client
                        .extend_from_slice(b"+OK Begin TLS negotiation now\r\n");
                    self.events.push_back(Event::StartTls(Side::Client));
                }
                _ => return,
            }
        }
    }

    /// Ends the session for a peer that broke the protocol.
    pub(super) fn violation(&mut self, side: Side, violation: Violation) {
        let side_name = match side {
            Side::Client => "client",
            Side::Server => "server",
        };
        debug!(
            side = side_name,
            violation = violation.kind(),
            "protocol violation"
        );
        self.close(CloseReason::ProtocolViolation(side, violation));
    }
}

/// The login method a command starts, if it starts one (`USER` is completed by `PASS`).
pub(super) fn login_mechanism(cmd: &Command) -> Option<LoginMechanism> {
    match cmd.verb() {
        Verb::User | Verb::Pass => Some(LoginMechanism::User),
        Verb::Apop => Some(LoginMechanism::Apop),
        Verb::Auth => cmd.sasl_mechanism().map(LoginMechanism::Sasl),
        _ => None,
    }
}

/// Bytes no POP3 command or SASL line contains (RFC 1939 §3: printable ASCII, CRLF).
fn is_forbidden(byte: u8) -> bool {
    matches!(byte, 0x00..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f)
}
