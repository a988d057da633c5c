//! The control protocol, version 1: the client sends one JSON object on one line and reads
//! one JSON object on one line back; then the connection closes.
//!
//! ```text
//! → {"v":1,"command":"status"}
//! ← {"v":1,"ok":true,"result":{"pid":42,...}}
//! → {"v":1,"command":"kill","id":7}
//! ← {"v":1,"ok":false,"error":{"kind":"unknown_session","message":"no session 7"}}
//! ```
//! A daemon answers a request of a version it does not speak with `unsupported_version`,
//! so an older CLI talking to a newer daemon (or the reverse) fails with a clear message.
//! No I/O here.

use serde::{Deserialize, Serialize};

use crate::registry::SessionView;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Longest request or response line accepted (a session list of 20,000 sessions fits).
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version ([`VERSION`]).
    pub v: u32,
    /// What is asked.
    #[serde(flatten)]
    pub command: Command,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// The daemon's [`StatusView`].
    Status,
    /// Every live session.
    Sessions,
    /// End session `id`.
    Kill {
        /// The session id.
        id: u64,
    },
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version ([`VERSION`]).
    pub v: u32,
    /// Whether the command succeeded.
    pub ok: bool,
    /// The answer when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why not, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A failed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable snake_case word: `unknown_session`, `bad_request`, `unsupported_version`.
    pub kind: String,
    /// For people.
    pub message: String,
}

/// `popgate status --json` (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// The daemon's process id.
    pub pid: u32,
    /// The daemon's version.
    pub version: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// Configurations put in force, the first included; a rejected reload leaves it.
    pub generation: u64,
    /// The last load or reload.
    pub last_reload: ReloadView,
    /// The listening addresses.
    pub listeners: Vec<String>,
    /// Live sessions.
    pub sessions_active: u64,
    /// Bytes held in `state_dir/quarantine`.
    pub quarantine_bytes: u64,
    /// Bytes held in `state_dir/spool`.
    pub spool_bytes: u64,
}

/// The last load or reload of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadView {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// `ok` (put in force) or `rejected` (the running configuration stayed).
    pub result: String,
    /// What started it: `start`, `SIGHUP`, `file change`.
    pub trigger: String,
    /// Every error of a rejected reload, each naming its file and JSON path.
    pub errors: Vec<String>,
}

/// The answer to [`Command::Sessions`].
pub type SessionsView = Vec<SessionView>;

impl Response {
    /// A successful answer.
    pub fn ok(result: serde_json::Value) -> Response {
        Response {
            v: VERSION,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failed command.
    pub fn error(kind: &str, message: impl Into<String>) -> Response {
        Response {
            v: VERSION,
            ok: false,
            result: None,
            error: Some(ErrorBody {
                kind: kind.to_owned(),
                message: message.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_flat_json_object() {
        let kill = Request {
            v: VERSION,
            command: Command::Kill { id: 7 },
        };
        let text = serde_json::to_string(&kill).unwrap();
        assert_eq!(text, r#"{"v":1,"command":"kill","id":7}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), kill);
        let status: Request = serde_json::from_str(r#"{"v":1,"command":"status"}"#).unwrap();
        assert_eq!(status.command, Command::Status);
    }

    #[test]
    fn an_error_carries_a_stable_kind() {
        let text =
            serde_json::to_string(&Response::error("unknown_session", "no session 9")).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"ok":false,"error":{"kind":"unknown_session","message":"no session 9"}}"#
        );
    }
}
