//! The daemon's end of the control socket: bound before the privilege drop (mode 0660,
//! group `control.group`, owner the service user), then one short task per connection:
//! read one request line, answer one response line, close.
//!
//! A socket that cannot be bound is logged as an error and the daemon runs on without it
//! (the proxy matters more than its dashboard); a path where another live daemon answers is
//! left alone. Requests are bounded in size and time so a stuck client holds nothing.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::protocol::{Command, Request, Response, VERSION};
use super::DaemonStatus;
use crate::registry::Registry;

/// How long a client may take to send its request and read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request line (requests are tiny).
const MAX_REQUEST: u64 = 4096;

/// The running control socket; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        // After the privilege drop this may fail; the next start removes a stale socket.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `state.control_socket()` and serves it; `None` (logged) when it cannot be bound.
/// `owner` is the user the daemon will run as (the socket's owner when started as root).
pub fn start(
    state: &popgate_policy::State,
    owner: &str,
    registry: Arc<Registry>,
    status: Arc<DaemonStatus>,
) -> Option<ControlServer> {
    let path = state.control_socket().to_owned();
    match bind(&path, owner, state.control_group()) {
        Ok(listener) => {
            info!(socket = %path.display(), "control socket ready");
            let task = tokio::spawn(accept_loop(listener, registry, status));
            Some(ControlServer { path, task })
        }
        Err(err) => {
            error!(
                socket = %path.display(),
                error = %err,
                "control socket unavailable; status and sessions will not answer"
            );
            None
        }
    }
}

fn bind(path: &Path, owner: &str, group: &str) -> io::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another popgate answers on this socket",
            ));
        }
        // A stale socket of a daemon that is gone.
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if nix::unistd::geteuid().is_root() {
        let uid = nix::unistd::User::from_name(owner)
            .ok()
            .flatten()
            .map(|u| u.uid);
        let gid = nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .map(|g| g.gid);
        if gid.is_none() {
            warn!(
                group,
                "control.group does not exist; the socket stays root's"
            );
        }
        nix::unistd::chown(path, uid, gid).map_err(io::Error::from)?;
    }
    Ok(listener)
}

async fn accept_loop(listener: UnixListener, registry: Arc<Registry>, status: Arc<DaemonStatus>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (registry, status) = (registry.clone(), status.clone());
                tokio::spawn(async move {
                    let served =
                        tokio::time::timeout(REQUEST_TIMEOUT, serve(stream, &registry, &status))
                            .await;
                    if !matches!(served, Ok(Ok(()))) {
                        debug!("control client went away or timed out");
                    }
                });
            }
            Err(err) => {
                error!(error = %err, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers one request.
///
/// Cancel safety: dropping it closes the connection; nothing else is left.
async fn serve(
    stream: UnixStream,
    registry: &Arc<Registry>,
    status: &Arc<DaemonStatus>,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let response = answer(&line, registry, status).await;
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

async fn answer(line: &str, registry: &Arc<Registry>, status: &Arc<DaemonStatus>) -> Response {
    let request: Request = match serde_json::from_str(line.trim_end()) {
        Ok(request) => request,
        Err(err) => {
            let version = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("v").and_then(serde_json::Value::as_u64));
            return match version {
                Some(v) if v != u64::from(VERSION) => Response::error(
                    "unsupported_version",
                    format!("this daemon speaks control protocol version {VERSION}, not {v}"),
                ),
                _ => Response::error("bad_request", err.to_string()),
            };
        }
    };
    if request.v != VERSION {
        return Response::error(
            "unsupported_version",
            format!(
                "this daemon speaks control protocol version {VERSION}, not {}",
                request.v
            ),
        );
    }
    match request.command {
        Command::Status => {
            let (registry, status) = (registry.clone(), status.clone());
            // Measuring the state directories reads the file system.
            let view =
                tokio::task::spawn_blocking(move || status.view(registry.len() as u64)).await;
            match view {
                Ok(view) => Response::ok(serde_json::to_value(view).unwrap_or_default()),
                Err(err) => Response::error("internal", err.to_string()),
            }
        }
        Command::Sessions => {
            Response::ok(serde_json::to_value(registry.snapshot()).unwrap_or_default())
        }
        Command::Kill { id } => {
            if registry.kill(id) {
                info!(session = id, "session ended by the administrator");
                Response::ok(serde_json::json!({ "killed": id }))
            } else {
                Response::error("unknown_session", format!("no session {id}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_status_sessions_and_kill_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/control.sock");
        let global = serde_json::json!({
            "state_dir": dir.path().join("state"),
            "control": { "socket": socket }
        });
        let sources = popgate_policy::Sources {
            global: Some(popgate_policy::Source::new(
                "popgate.json",
                global.to_string(),
            )),
            policies: Vec::new(),
            actions: Vec::new(),
            tls_profiles: Vec::new(),
        };
        let config = popgate_policy::Config::from_sources(&sources).unwrap();
        let state = config.global().state().clone();
        let registry = Registry::new();
        let status = Arc::new(DaemonStatus::started(&state));
        let _server = start(&state, "root", registry.clone(), status).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let _live = registry.register(
            3,
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:110".parse().unwrap(),
        );
        let ask = |command| {
            let socket = socket.clone();
            tokio::task::spawn_blocking(move || super::super::client::ask(&socket, command))
        };
        let status = ask(Command::Status).await.unwrap().unwrap();
        assert_eq!(status["generation"], 1);
        assert_eq!(status["sessions_active"], 1);
        let sessions = ask(Command::Sessions).await.unwrap().unwrap();
        assert_eq!(sessions[0]["id"], 3);
        let unknown = ask(Command::Kill { id: 4 }).await.unwrap().unwrap_err();
        assert_eq!(unknown.to_string(), "no session 4");
        ask(Command::Kill { id: 3 }).await.unwrap().unwrap();
        assert!(_live.entry().is_killed());
    }
}
