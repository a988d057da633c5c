//! Where an intercepted client meant to go (SPEC §3).
//!
//! TPROXY keeps the original destination as the accepted socket's local address; NAT
//! REDIRECT rewrites it, and netfilter keeps the original for `SO_ORIGINAL_DST`
//! (`IP6T_SO_ORIGINAL_DST` for IPv6), which socket2 reads for us.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use socket2::SockRef;

/// The pre-NAT destination of a redirected connection.
///
/// # Errors
/// The connection was not NATed (`ENOENT`), or the socket is not TCP over IP.
pub fn redirected(socket: &impl AsFd, local: SocketAddr) -> io::Result<SocketAddr> {
    let socket = SockRef::from(socket);
    let original = if local.is_ipv4() {
        socket.original_dst_v4()?
    } else {
        socket.original_dst_v6()?
    };
    original
        .as_socket()
        .ok_or_else(|| io::Error::other("the original destination is not an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_was_not_redirected_has_no_original_destination() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // Without a NAT entry the kernel answers ENOENT (or the option is unknown when
        // the nf_conntrack module is not loaded): an error, never a made-up address.
        assert!(redirected(&accepted, addr).is_err());
    }
}
