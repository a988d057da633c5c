//! Opaque tunnels: bytes copied both ways without a look inside (`tls.action: allow` on the
//! pop3s port, and STLS passed through). SPEC §5: they follow the action's idle timeout and
//! set TCP keepalive on both sockets, so a silent or vanished peer cannot hold its slot (and
//! its per-client permit) for ever.
//!
//! `tokio::io::copy_bidirectional` has no notion of silence, hence this small copy loop: one
//! bounded buffer per direction, a half-close passed on as a write shutdown, and a deadline
//! pushed back by every byte that moves either way. No POP3 here; see `session_task.rs`.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Bytes read from one side before they are written to the other.
const CHUNK: usize = 16 * 1024;

/// Keepalive: first probe after this much silence on the wire.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Keepalive: between probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Keepalive: unanswered probes before the kernel gives the connection up.
const KEEPALIVE_RETRIES: u32 = 4;

/// How a tunnel ended.
#[derive(Debug)]
pub enum TunnelEnd {
    /// Both sides closed.
    Finished,
    /// No byte moved either way for the idle timeout.
    Idle,
    /// A socket failed.
    Failed(io::Error),
}

/// Bytes copied each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// From the client to the server.
    pub from_client: u64,
    /// From the server to the client.
    pub from_server: u64,
}

/// Turns TCP keepalive on for `stream` (errors are ignored: keepalive is a safety net, the
/// idle timeout is the bound).
pub fn keepalive(stream: &TcpStream) {
    let params = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = SockRef::from(stream).set_tcp_keepalive(&params);
}

/// Copies both ways until both sides are closed, a socket fails, or nothing moves for
/// `idle`. The deadline also bounds a write the other side does not take.
///
/// Cancel safety: dropping it loses bytes in flight; both streams stay usable only for
/// closing.
pub async fn copy<C, S>(
    client: &mut C,
    server: &mut S,
    idle: Duration,
    copied: &mut Copied,
) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut up = vec![0u8; CHUNK];
    let mut down = vec![0u8; CHUNK];
    let (mut client_open, mut server_open) = (true, true);
    let mut deadline = Instant::now() + idle;
    while client_open || server_open {
        let (side, read) = tokio::select! {
            read = client.read(&mut up), if client_open => (Side::Client, read),
            read = server.read(&mut down), if server_open => (Side::Server, read),
            () = tokio::time::sleep_until(deadline) => return TunnelEnd::Idle,
        };
        let n = match read {
            Ok(n) => n,
            Err(err) => return TunnelEnd::Failed(err),
        };
        let result = match (side, n) {
            (Side::Client, 0) => {
                client_open = false;
                tokio::time::timeout_at(deadline, server.shutdown()).await
            }
            (Side::Server, 0) => {
                server_open = false;
                tokio::time::timeout_at(deadline, client.shutdown()).await
            }
            (Side::Client, n) => {
                copied.from_client += n as u64;
                deadline = Instant::now() + idle;
                let write = async {
                    server.write_all(&up[..n]).await?;
                    server.flush().await
                };
                tokio::time::timeout_at(deadline, write).await
            }
            (Side::Server, n) => {
                copied.from_server += n as u64;
                deadline = Instant::now() + idle;
                let write = async {
                    client.write_all(&down[..n]).await?;
                    client.flush().await
                };
                tokio::time::timeout_at(deadline, write).await
            }
        };
        match result {
            Err(_) => return TunnelEnd::Idle,
            // A shutdown on a socket the peer already reset is not worth ending the other
            // direction for; a failed write is.
            Ok(Err(_)) if n == 0 => {}
            Ok(Err(err)) => return TunnelEnd::Failed(err),
            Ok(Ok(())) => {}
        }
    }
    TunnelEnd::Finished
}

enum Side {
    Client,
    Server,
}

#[cfg(test)]
mod tests {
    use tokio::io::duplex;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_ends_the_tunnel_after_the_idle_timeout() {
        let (mut client, _client_peer) = duplex(64);
        let (mut server, _server_peer) = duplex(64);
        let mut copied = Copied::default();
        let started = Instant::now();
        let end = copy(
            &mut client,
            &mut server,
            Duration::from_secs(30),
            &mut copied,
        )
        .await;
        assert!(matches!(end, TunnelEnd::Idle), "{end:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_pushes_the_deadline_back_and_both_closes_finish() {
        let (mut client, mut client_peer) = duplex(64);
        let (mut server, mut server_peer) = duplex(64);
        let peers = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                client_peer.write_all(b"ping").await.unwrap();
                let mut got = [0u8; 4];
                server_peer.read_exact(&mut got).await.unwrap();
                assert_eq!(&got, b"ping");
                server_peer.write_all(b"pong!").await.unwrap();
                let mut got = [0u8; 5];
                client_peer.read_exact(&mut got).await.unwrap();
                assert_eq!(&got, b"pong!");
            }
            client_peer.shutdown().await.unwrap();
            server_peer.shutdown().await.unwrap();
            (client_peer, server_peer)
        });
        let mut copied = Copied::default();
        let end = copy(
            &mut client,
            &mut server,
            Duration::from_secs(30),
            &mut copied,
        )
        .await;
        assert!(matches!(end, TunnelEnd::Finished), "{end:?}");
        assert_eq!(
            copied,
            Copied {
                from_client: 12,
                from_server: 15
            }
        );
        drop(peers.await.unwrap());
    }
}
