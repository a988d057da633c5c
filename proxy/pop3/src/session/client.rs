//! Client input: command lines, SASL lines, policy checks and the client's STLS.
//!
//! Commands are forwarded as soon as they are complete (RFC 2449 PIPELINING); replies the
//! proxy makes itself wait in [`Pending`] order so pipelined answers never overtake.

use tracing::debug;

use super::{
    ClientState, ClientStls, CloseReason, Event, Forwarded, Internal, Pending, Pop3State, Session,
    Side, UpstreamStls, MAX_EARLY_CLIENT_BYTES, MAX_PENDING,
};
use crate::command::{Command, Verb};

impl Session {
    pub(super) fn handle_client_bytes(&mut self, data: &[u8]) {
        match self.client_state {
            ClientState::AwaitingTls => {
                // RFC 2595 §4 and the "NO STARTTLS" injection class: nothing may follow STLS.
                self.violation(Side::Client, "bytes after STLS before the TLS handshake");
                return;
            }
            ClientState::Tunnel => return,
            ClientState::Commands | ClientState::Sasl => {}
        }
        if let Some(byte) = data.iter().copied().find(|&b| is_forbidden(b)) {
            let what = if self.client_in.is_empty() && data.first() == Some(&0x16) {
                "TLS handshake on a plaintext POP3 connection"
            } else {
                "binary data where a command was expected"
            };
            debug!(byte, "client sent a forbidden byte");
            self.fail_client("[SYS/PERM] invalid command, closing connection");
            self.violation(Side::Client, what);
            return;
        }
        self.client_in.extend_from_slice(data);
        self.process_client_input();
    }

    /// Handles every complete line buffered from the client, as far as the state allows.
    pub(super) fn process_client_input(&mut self) {
        if !self.greeted {
            if self.client_in.len() > MAX_EARLY_CLIENT_BYTES {
                self.violation(Side::Client, "too many bytes before the greeting");
            }
            return;
        }
        while !self.closing && !self.client_in.is_empty() {
            match self.client_state {
                ClientState::Commands | ClientState::Sasl => {}
                ClientState::AwaitingTls => {
                    self.violation(Side::Client, "bytes after STLS before the TLS handshake");
                    return;
                }
                ClientState::Tunnel => return,
            }
            if self.pending.len() >= MAX_PENDING {
                return;
            }
            let limit = self.line_limit();
            let Some(end) = memchr::memchr(b'\n', &self.client_in) else {
                if self.client_in.len() > limit {
                    self.fail_client("[SYS/PERM] command line too long, closing connection");
                    self.violation(Side::Client, "command line too long");
                }
                return;
            };
            if end + 1 > limit {
                self.fail_client("[SYS/PERM] command line too long, closing connection");
                self.violation(Side::Client, "command line too long");
                return;
            }
            let line: Vec<u8> = self.client_in.drain(..=end).collect();
            if self.client_state == ClientState::Sasl {
                // A SASL reply: a credential, forwarded and never logged.
                self.to_server.extend_from_slice(&line);
            } else {
                self.handle_command(Command::parse(&line));
            }
        }
    }

    fn line_limit(&self) -> usize {
        let starts_auth =
            self.client_in.len() >= 5 && self.client_in[..5].eq_ignore_ascii_case(b"AUTH ");
        if self.client_state == ClientState::Sasl || starts_auth {
            self.config.max_sasl_line
        } else {
            self.config.max_command_line
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        self.stats.commands += 1;
        debug!(command = ?cmd, "client command");
        let verb = cmd.verb();
        if self.config.commands_require_tls
            && !self.client_tls
            && !matches!(verb, Verb::Capa | Verb::Stls | Verb::Quit | Verb::Noop)
        {
            self.reply_local("-ERR [AUTH] TLS required\r\n");
            return;
        }
        match verb {
            Verb::Stls => self.handle_client_stls(cmd),
            Verb::User | Verb::Pass | Verb::Apop | Verb::Auth
                if self.state == Pop3State::Authorization =>
            {
                match self.login_refusal(&cmd) {
                    Some(reply) => self.reply_local(&reply),
                    None => self.forward(cmd),
                }
            }
            _ => self.forward(cmd),
        }
    }

    /// Why policy refuses this login command, as the `-ERR` line to send, if it does.
    fn login_refusal(&self, cmd: &Command) -> Option<String> {
        if self.config.login_requires_tls && !self.client_tls {
            return Some("-ERR [AUTH] TLS required before login\r\n".into());
        }
        let auth = &self.config.auth;
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
        match self.config.client_stls {
            ClientStls::Refuse => self.reply_local("-ERR STLS not available\r\n"),
            ClientStls::Tunnel | ClientStls::Terminate if !self.client_in.is_empty() => {
                self.violation(Side::Client, "commands pipelined after STLS");
            }
            ClientStls::Tunnel => {
                self.forward(cmd);
                self.client_state = ClientState::AwaitingTls;
            }
            ClientStls::Terminate => {
                self.client_state = ClientState::AwaitingTls;
                if self.config.upstream_stls == UpstreamStls::WithClient && !self.server_tls {
                    self.send_internal(Internal::Stls);
                }
                self.pending.push_back(Pending::ClientStls);
                self.flush_front();
            }
        }
    }

    fn forward(&mut self, cmd: Command) {
        let verb = cmd.verb();
        if let Some(name) = cmd.user_name() {
            self.user_candidate = Some(name);
        }
        let numbers = cmd.numeric_args();
        let number = match verb {
            Verb::Retr | Verb::Top => numbers.first().copied(),
            _ => None,
        };
        let top_lines = match verb {
            Verb::Top if self.config.inspect_messages => numbers.get(1).copied(),
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
        if verb == Verb::Auth && cmd.sasl_mechanism().is_some() {
            self.client_state = ClientState::Sasl;
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
    pub(super) fn violation(&mut self, side: Side, what: &str) {
        self.close(CloseReason::ProtocolViolation(side, what.to_string()));
    }
}

/// Bytes no POP3 command or SASL line contains (RFC 1939 §3: printable ASCII, CRLF).
fn is_forbidden(byte: u8) -> bool {
    matches!(byte, 0x00..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f)
}
