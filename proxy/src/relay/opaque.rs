//! Connections that never reach the POP3 core: refusals before a session starts, and
//! opaque copies (`tls.action: allow` on the pop3s port: TLS passes through uninspected).

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::info;

use super::tunnel::{self, Copied, TunnelEnd};
use crate::metrics::{self, ConnectionResult, Direction};
use crate::net::upstream::{self, ConnectOptions};

/// How long a refusal's `-ERR` line may take.
const REFUSAL_WRITE: Duration = Duration::from_secs(5);

/// Refuses a connection no policy accepts (`-ERR` where a greeting is possible).
pub async fn refuse(mut client: TcpStream, text: &str, plaintext: bool) {
    if plaintext {
        let line = format!("-ERR {text}\r\n");
        let _ = tokio::time::timeout(REFUSAL_WRITE, client.write_all(line.as_bytes())).await;
    }
    let _ = client.shutdown().await;
}

/// Copies bytes opaquely between the client and the server, under the action's `idle`
/// timeout, with TCP keepalive on both sockets (SPEC §5).
///
/// Cancel safety: dropping it closes both connections.
pub async fn opaque(
    mut client: TcpStream,
    host: &str,
    port: u16,
    connect: &ConnectOptions,
    timeout: Duration,
    idle: Duration,
) {
    let mut server = match upstream::connect(host, port, connect, timeout).await {
        Ok(server) => server,
        Err(err) => {
            metrics::connection(ConnectionResult::UpstreamUnavailable);
            info!(error = %err, host, port, "upstream connect failed");
            return;
        }
    };
    metrics::connection(ConnectionResult::Accepted);
    tunnel::keepalive(&client);
    tunnel::keepalive(&server);
    let mut copied = Copied::default();
    let end = tunnel::copy(&mut client, &mut server, idle, &mut copied).await;
    metrics::bytes(Direction::ClientToServer, copied.from_client);
    metrics::bytes(Direction::ServerToClient, copied.from_server);
    let result = match end {
        TunnelEnd::Finished => "finished",
        TunnelEnd::Idle => "timed_out",
        TunnelEnd::Failed(_) => "peer_closed",
    };
    info!(
        result,
        idle_timeout_s = idle.as_secs(),
        bytes_from_client = copied.from_client,
        bytes_from_server = copied.from_server,
        "opaque session closed"
    );
}
