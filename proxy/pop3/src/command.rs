//! Client command lines (RFC 1939 §3, RFC 2449, RFC 2595, RFC 5034).
//!
//! A command is parsed only far enough to decide what the proxy must do with it: which
//! response shape to expect, whether policy allows it, and what may be logged. The original
//! line is kept so an allowed command reaches the server byte-for-byte. No I/O here.

use std::fmt;

/// The command verbs the session treats specially; everything else is [`Verb::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `USER name`: starts a USER/PASS login; the name may be logged.
    User,
    /// `PASS secret`: never logged.
    Pass,
    /// `APOP name digest`: single-command login; the digest is never logged.
    Apop,
    /// `AUTH [mechanism [initial-response]]` (RFC 5034): starts a SASL exchange.
    Auth,
    /// `STLS` (RFC 2595).
    Stls,
    /// `CAPA` (RFC 2449): multi-line, rewritten by the proxy.
    Capa,
    /// `LIST [n]`: multi-line without an argument.
    List,
    /// `UIDL [n]`: multi-line without an argument.
    Uidl,
    /// `RETR n`: multi-line, the message.
    Retr,
    /// `TOP n lines`: multi-line, headers and the first lines of the body.
    Top,
    /// `QUIT`: enters UPDATE on success.
    Quit,
    /// `NOOP`.
    Noop,
    /// `STAT`, `DELE`, `RSET`, `LAST` and unknown extensions: one status line.
    Other,
}

/// A parsed client command line.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    verb: Verb,
    /// The whole line as the client sent it, including its line ending.
    raw: Vec<u8>,
    /// Byte range of the arguments within `raw` (after the blanks that follow the verb,
    /// before the line end).
    args: std::ops::Range<usize>,
}

impl Command {
    /// Parses one complete line (ending in `\n`).
    ///
    /// Parsed as leniently as any server reads it: blanks (SP or HTAB, any number) before
    /// the verb and between arguments, so `PASS<TAB>secret` is a `PASS` (classified by
    /// policy, never logged) whatever server is behind.
    ///
    /// Never fails: an unknown or empty verb is [`Verb::Other`], which the server answers.
    pub fn parse(line: &[u8]) -> Command {
        let body_end = line_body_len(line);
        let body = &line[..body_end];
        let verb_start = body
            .iter()
            .position(|&b| !is_blank(b))
            .unwrap_or(body.len());
        let verb_end = body[verb_start..]
            .iter()
            .position(|&b| is_blank(b))
            .map_or(body.len(), |n| verb_start + n);
        let verb = classify(&body[verb_start..verb_end]);
        let args_start = body[verb_end..]
            .iter()
            .position(|&b| !is_blank(b))
            .map_or(body_end, |n| verb_end + n);
        Command {
            verb,
            raw: line.to_vec(),
            args: args_start..body_end,
        }
    }

    /// Which command this is.
    pub fn verb(&self) -> Verb {
        self.verb
    }

    /// The line exactly as received, line ending included.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The argument bytes (everything after the verb and the blanks after it).
    pub fn args(&self) -> &[u8] {
        &self.raw[self.args.clone()]
    }

    /// The first argument, if any.
    pub fn first_arg(&self) -> Option<&[u8]> {
        self.args()
            .split(|&b| is_blank(b))
            .find(|part| !part.is_empty())
    }

    /// The leading arguments that are decimal numbers (message number, TOP line count).
    pub fn numeric_args(&self) -> Vec<u32> {
        self.args()
            .split(|&b| is_blank(b))
            .filter(|part| !part.is_empty())
            .map_while(|part| std::str::from_utf8(part).ok()?.parse().ok())
            .collect()
    }

    /// The SASL mechanism named by `AUTH`, upper-cased.
    pub fn sasl_mechanism(&self) -> Option<String> {
        match self.verb {
            Verb::Auth => self
                .first_arg()
                .map(|m| String::from_utf8_lossy(m).to_ascii_uppercase()),
            _ => None,
        }
    }

    /// The SASL initial response of `AUTH mechanism response` (RFC 5034 §4), if any.
    pub fn sasl_initial_response(&self) -> Option<&[u8]> {
        match self.verb {
            Verb::Auth => self
                .args()
                .split(|&b| is_blank(b))
                .filter(|part| !part.is_empty())
                .nth(1),
            _ => None,
        }
    }

    /// The user name a login command names, when it names one in clear (USER, APOP).
    pub fn user_name(&self) -> Option<String> {
        match self.verb {
            Verb::User | Verb::Apop => self
                .first_arg()
                .map(|name| String::from_utf8_lossy(name).into_owned()),
            _ => None,
        }
    }

    /// Whether the server answers this command with a multi-line response when it says `+OK`.
    pub fn is_multiline_on_ok(&self) -> bool {
        match self.verb {
            Verb::Capa | Verb::Retr | Verb::Top => true,
            Verb::List | Verb::Uidl => self.first_arg().is_none(),
            // A bare AUTH lists the server's mechanisms (a widespread pre-RFC 5034 habit).
            Verb::Auth => self.first_arg().is_none(),
            _ => false,
        }
    }

    /// Whether a server may accept this command before login (RFC 1939 AUTHORIZATION
    /// state, RFC 2449, 2595, 5034, 6856): the login commands, `CAPA`, `STLS`, `QUIT`,
    /// `UTF8` and `LANG`. Everything else (`NOOP`, `STAT`, `RETR`, unknown verbs) can only
    /// be refused there, so the proxy refuses it itself and a client that floods them
    /// costs the server nothing (and cannot pass `XCLIENT` to a server that trusts the
    /// gateway's address).
    pub fn is_valid_before_login(&self) -> bool {
        match self.verb {
            Verb::User | Verb::Pass | Verb::Apop | Verb::Auth | Verb::Capa | Verb::Stls => true,
            Verb::Quit => true,
            Verb::Other => {
                let verb = self.raw[..self.args.start]
                    .split(|&b| is_blank(b) || b == b'\r' || b == b'\n')
                    .find(|part| !part.is_empty())
                    .unwrap_or_default();
                verb.eq_ignore_ascii_case(b"UTF8") || verb.eq_ignore_ascii_case(b"LANG")
            }
            _ => false,
        }
    }

    /// Whether the line carries a credential and must never be logged in full.
    pub fn carries_secret(&self) -> bool {
        matches!(self.verb, Verb::Pass | Verb::Apop | Verb::Auth)
    }
}

/// Redacts credentials: `PASS`, `APOP` and `AUTH` show only their verb and mechanism.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Command").field(&self.redacted()).finish()
    }
}

/// The command line for logs, credentials redacted (`PASS <redacted>`).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Command {
    /// The line without its ending; the arguments of PASS, APOP and AUTH redacted.
    fn redacted(&self) -> String {
        match self.verb {
            Verb::Pass => "PASS <redacted>".to_string(),
            Verb::Apop => format!("APOP {} <redacted>", self.user_name().unwrap_or_default()),
            Verb::Auth => format!(
                "AUTH {} <redacted>",
                self.sasl_mechanism().unwrap_or_default()
            ),
            _ => String::from_utf8_lossy(&self.raw[..line_body_len(&self.raw)]).into_owned(),
        }
    }
}

/// SP or HTAB: what servers accept between a verb and its arguments.
pub(crate) fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Length of a line without its `\r\n` or `\n` ending.
pub(crate) fn line_body_len(line: &[u8]) -> usize {
    let mut end = line.len();
    if end > 0 && line[end - 1] == b'\n' {
        end -= 1;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

fn classify(verb: &[u8]) -> Verb {
    const VERBS: [(&[u8], Verb); 12] = [
        (b"USER", Verb::User),
        (b"PASS", Verb::Pass),
        (b"APOP", Verb::Apop),
        (b"AUTH", Verb::Auth),
        (b"STLS", Verb::Stls),
        (b"CAPA", Verb::Capa),
        (b"LIST", Verb::List),
        (b"UIDL", Verb::Uidl),
        (b"RETR", Verb::Retr),
        (b"TOP", Verb::Top),
        (b"QUIT", Verb::Quit),
        (b"NOOP", Verb::Noop),
    ];
    VERBS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(verb))
        .map_or(Verb::Other, |&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_authorization_commands_are_valid_before_login() {
        for line in [
            "USER a\r\n",
            "pass x\r\n",
            "AUTH\r\n",
            "capa\r\n",
            "STLS\r\n",
            "QUIT\r\n",
        ] {
            assert!(
                Command::parse(line.as_bytes()).is_valid_before_login(),
                "{line}"
            );
        }
        for line in ["UTF8\r\n", " lang\tde\r\n", "APOP a b\r\n"] {
            assert!(
                Command::parse(line.as_bytes()).is_valid_before_login(),
                "{line}"
            );
        }
        for line in [
            "NOOP\r\n",
            "STAT\r\n",
            "RETR 1\r\n",
            "XCLIENT ADDR=1.2.3.4\r\n",
            "\r\n",
            "UTF8X\r\n",
        ] {
            assert!(
                !Command::parse(line.as_bytes()).is_valid_before_login(),
                "{line:?}"
            );
        }
    }

    #[test]
    fn verbs_are_case_insensitive_and_args_split() {
        let cmd = Command::parse(b"retr 12\r\n");
        assert_eq!(cmd.verb(), Verb::Retr);
        assert_eq!(cmd.args(), b"12");
        assert_eq!(cmd.raw(), b"retr 12\r\n");
        assert!(cmd.is_multiline_on_ok());
    }

    #[test]
    fn list_and_uidl_are_multiline_only_without_argument() {
        assert!(Command::parse(b"LIST\r\n").is_multiline_on_ok());
        assert!(!Command::parse(b"LIST 1\r\n").is_multiline_on_ok());
        assert!(Command::parse(b"UIDL\r\n").is_multiline_on_ok());
        assert!(!Command::parse(b"UIDL 3\r\n").is_multiline_on_ok());
        assert!(!Command::parse(b"STAT\r\n").is_multiline_on_ok());
        assert!(Command::parse(b"AUTH\r\n").is_multiline_on_ok());
        assert!(!Command::parse(b"AUTH PLAIN\r\n").is_multiline_on_ok());
    }

    #[test]
    fn debug_redacts_credentials() {
        let pass = format!("{:?}", Command::parse(b"PASS hunter2\r\n"));
        assert!(!pass.contains("hunter2"), "{pass}");
        let apop = format!("{:?}", Command::parse(b"APOP alice c4c9334bac560ecc\r\n"));
        assert!(
            apop.contains("alice") && !apop.contains("c4c9334bac560ecc"),
            "{apop}"
        );
        let auth = format!(
            "{:?}",
            Command::parse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        );
        assert!(
            auth.contains("PLAIN") && !auth.contains("AGFsaWNl"),
            "{auth}"
        );
        let user = format!("{:?}", Command::parse(b"USER alice\r\n"));
        assert!(user.contains("USER alice"), "{user}");
    }

    #[test]
    fn user_and_mechanism_are_extracted() {
        assert_eq!(
            Command::parse(b"USER alice\r\n").user_name().as_deref(),
            Some("alice")
        );
        assert_eq!(
            Command::parse(b"auth plain\r\n")
                .sasl_mechanism()
                .as_deref(),
            Some("PLAIN")
        );
        assert_eq!(Command::parse(b"\r\n").verb(), Verb::Other);
    }

    #[test]
    fn blanks_split_like_servers_read_them() {
        let pass = Command::parse(b"PASS\tsecret\r\n");
        assert_eq!(pass.verb(), Verb::Pass);
        assert_eq!(pass.args(), b"secret");
        assert!(!format!("{pass:?}").contains("secret"));
        let user = Command::parse(b" \tUSER \t alice\r\n");
        assert_eq!(user.verb(), Verb::User);
        assert_eq!(user.user_name().as_deref(), Some("alice"));
        let top = Command::parse(b"TOP\t3 \t 10\r\n");
        assert_eq!(top.numeric_args(), vec![3, 10]);
        let auth = Command::parse(b"AUTH\tPLAIN\t\tAGFsaWNlAHNlY3JldA==\r\n");
        assert_eq!(auth.sasl_mechanism().as_deref(), Some("PLAIN"));
        assert_eq!(
            auth.sasl_initial_response(),
            Some(&b"AGFsaWNlAHNlY3JldA=="[..])
        );
        assert!(Command::parse(b"LIST \r\n").is_multiline_on_ok());
    }
}
