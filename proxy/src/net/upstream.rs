//! Connecting to the real server: name resolution, the upstream mark, an optional
//! transparent source address, and a deadline on the whole attempt.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

/// How the upstream socket is made.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `SO_MARK`, so the gateway's rules exempt popgate's own traffic from interception.
    pub mark: Option<u32>,
    /// Leave from this address with `IP_TRANSPARENT` (TPROXY `spoof_client_address`).
    pub source: Option<SocketAddr>,
}

/// Connects to `host:port`, trying each resolved address in turn, within `timeout`.
///
/// Cancel safety: safe (nothing is kept between attempts).
///
/// # Errors
/// Resolution failure, every address refused, or the deadline passed (`TimedOut`).
pub async fn connect(
    host: &str,
    port: u16,
    options: &ConnectOptions,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let attempt = async {
        let mut last_err = io::Error::new(io::ErrorKind::NotFound, "no address for host");
        for addr in tokio::net::lookup_host((host, port)).await? {
            match connect_addr(addr, options).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last_err = err,
            }
        }
        Err(last_err)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

async fn connect_addr(addr: SocketAddr, options: &ConnectOptions) -> io::Result<TcpStream> {
    let options = options.clone();
    // SO_MARK and IP_TRANSPARENT need CAP_NET_ADMIN, which after a privilege drop only the
    // helper thread of `privileged` still has.
    let socket = if options.mark.is_some() || options.source.is_some() {
        super::privileged::run(move || upstream_socket(addr, &options)).await?
    } else {
        upstream_socket(addr, &options)?
    };
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    socket.connect(addr).await
}

/// A non-blocking TCP socket for a connection to `addr`: marked, and bound to the spoofed
/// source address when one is asked for (and of the same family as `addr`).
fn upstream_socket(addr: SocketAddr, options: &ConnectOptions) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(mark) = options.mark {
        socket.set_mark(mark)?;
    }
    if let Some(source) = options.source {
        if source.is_ipv4() == addr.is_ipv4() {
            set_transparent(&socket, source)?;
            socket.bind(&SocketAddr::new(source.ip(), 0).into())?;
        }
    }
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Sets `IP_TRANSPARENT` or `IPV6_TRANSPARENT` to match the address family.
pub fn set_transparent(socket: &Socket, addr: SocketAddr) -> io::Result<()> {
    if addr.is_ipv4() {
        socket.set_ip_transparent_v4(true)
    } else {
        socket.set_ip_transparent_v6(true)
    }
}
