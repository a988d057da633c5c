//! The CLI's end of the control socket: one request, one response, blocking, bounded.
//!
//! The socket's path comes from `popgate.json` → `control.socket`, read on its own so that
//! `popgate status` still answers while the rest of the directory is being edited (a
//! configuration the daemon would reject is exactly when the administrator asks).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Command, Request, Response, MAX_LINE, VERSION};

/// How long the daemon gets to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nobody answers on the socket (exit code 3).
    #[error("the daemon is not reachable on {path}")]
    Unreachable {
        /// The socket.
        path: PathBuf,
        /// The connect failure.
        #[source]
        source: io::Error,
    },
    /// The daemon answered that the command failed.
    #[error("{message}")]
    Refused {
        /// Its stable kind (`unknown_session`, ...).
        kind: String,
        /// For people.
        message: String,
    },
    /// The answer was cut short or is not the protocol.
    #[error("the daemon's answer is not understood")]
    Protocol(#[source] io::Error),
}

/// The control socket named by `DIR/popgate.json`, or the default.
pub fn socket_path(config_dir: &Path) -> PathBuf {
    let configured = std::fs::read(config_dir.join("popgate.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|json| {
            json.pointer("/control/socket")
                .and_then(serde_json::Value::as_str)
                .map(PathBuf::from)
        });
    configured.unwrap_or_else(|| popgate_policy::State::default().control_socket().to_owned())
}

/// Sends `command` to the daemon on `socket` and returns its result.
///
/// # Errors
/// See [`ControlError`].
pub fn ask(socket: &Path, command: Command) -> Result<serde_json::Value, ControlError> {
    let unreachable = |source| ControlError::Unreachable {
        path: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
        .map_err(ControlError::Protocol)?;
    let request = Request {
        v: VERSION,
        command,
    };
    let mut line = serde_json::to_vec(&request).map_err(|e| ControlError::Protocol(e.into()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(ControlError::Protocol)?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_LINE as u64))
        .read_line(&mut answer)
        .map_err(ControlError::Protocol)?;
    let response: Response =
        serde_json::from_str(answer.trim_end()).map_err(|e| ControlError::Protocol(e.into()))?;
    match (response.ok, response.result, response.error) {
        (true, Some(result), _) => Ok(result),
        (false, _, Some(error)) => Err(ControlError::Refused {
            kind: error.kind,
            message: error.message,
        }),
        _ => Err(ControlError::Protocol(io::Error::other(
            "neither result nor error",
        ))),
    }
}
