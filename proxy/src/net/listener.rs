//! Listening sockets: one per bind address and port, IPv6 ones `V6ONLY` so `0.0.0.0` and
//! `::` coexist, transparent ones for TPROXY.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use super::upstream::set_transparent;

/// Pending connections the kernel may queue per listener.
const BACKLOG: i32 = 1024;

/// Binds a listener on `addr`.
///
/// # Errors
/// The bind or a socket option failed (e.g. the port is taken, or transparency needs
/// CAP_NET_ADMIN).
pub fn bind(addr: SocketAddr, transparent: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if transparent {
        set_transparent(&socket, addr)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}
