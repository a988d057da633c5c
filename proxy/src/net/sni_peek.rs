//! Reading the SNI of an implicit-TLS client before choosing its policy, without consuming
//! a byte: policies may name servers by domain (`"to": ["*.example.com"]`), and a policy
//! whose action passes TLS through (`tls.action: allow`) must still forward the ClientHello
//! untouched. The bytes are peeked (`MSG_PEEK`) into one capped buffer and parsed by
//! rustls's `Acceptor`; they stay in the socket, so the session's own handshake (or the
//! opaque tunnel) reads them again from the kernel: the "replay" costs nothing.
//!
//! A stalled ClientHello must cost nothing while it waits (issue 13: re-peeking every 2 ms
//! cost 60 stalled connections a tenth of a core). Peeked bytes keep a socket readable, so
//! when a peek finds no new bytes the readiness tokio cached is cleared and the task sleeps
//! until the kernel reports *new* bytes (tokio's epoll registration is
//! edge-triggered; the peek runs inside `try_io`, which clears only the readiness seen
//! before it, so no wake-up is lost). The records are parsed only once the TLS record headers say they are
//! complete, so a client dribbling one byte at a time does not make us parse each prefix.

use std::io;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest ClientHello looked at: one maximal TLS record and its header.
const MAX_PEEK: usize = 16 * 1024 + 5;

/// TLS record header: type, version, 16-bit length.
const RECORD_HEADER: usize = 5;

/// The server name the client asks for, if it sends one within `timeout`.
///
/// Cancel safety: safe (nothing is consumed).
pub async fn peek_sni(stream: &TcpStream, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_PEEK];
    let mut seen = 0;
    loop {
        let ready = tokio::time::timeout_at(deadline, stream.ready(Interest::READABLE))
            .await
            .ok()?
            .ok()?;
        // The peek runs inside `try_io`: when it finds nothing new, the readiness observed
        // *before* it is cleared, so bytes arriving meanwhile still wake us.
        let peeked = stream.try_io(Interest::READABLE, || {
            let n = peek_now(stream, &mut buf)?;
            if n == seen && n != 0 {
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            Ok(n)
        });
        let n = match peeked {
            Ok(0) => return None,
            Ok(n) => n,
            // Nothing new, and the client has shut its side: the ClientHello stays partial.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock && ready.is_read_closed() => {
                return None
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        };
        seen = n;
        match parse(&buf[..n]) {
            Parsed::Name(name) => return name,
            Parsed::NeedMore if n < MAX_PEEK => {}
            // Not TLS, or a ClientHello larger than we look at: no name.
            Parsed::NeedMore | Parsed::NotTls => return None,
        }
    }
}

/// One non-blocking `MSG_PEEK` of what the socket holds.
fn peek_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    recv(
        stream.as_raw_fd(),
        buf,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)
}

/// What the bytes so far say.
enum Parsed {
    /// A whole ClientHello, with its server name if any.
    Name(Option<String>),
    /// Records are still incomplete.
    NeedMore,
    /// Not a TLS handshake.
    NotTls,
}

fn parse(bytes: &[u8]) -> Parsed {
    if !records_complete(bytes) {
        return Parsed::NeedMore;
    }
    let mut acceptor = rustls::server::Acceptor::default();
    if acceptor.read_tls(&mut &bytes[..]).is_err() {
        return Parsed::NotTls;
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Parsed::Name(
            accepted
                .client_hello()
                .server_name()
                .map(str::to_ascii_lowercase),
        ),
        Ok(None) => Parsed::NeedMore,
        Err(_) => Parsed::NotTls,
    }
}

/// Whether `bytes` end on a TLS record boundary (or cannot be TLS at all, which the parser
/// then says). A first byte other than a handshake record is "complete": rustls refuses it.
fn records_complete(bytes: &[u8]) -> bool {
    const HANDSHAKE: u8 = 0x16;
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + RECORD_HEADER) else {
            return bytes[at] != HANDSHAKE;
        };
        if header[0] != HANDSHAKE {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        at += RECORD_HEADER + len;
    }
    at == bytes.len()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn sni_is_read_without_consuming_the_hello() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("Pop.Example.net").unwrap();
            let _ = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await;
        });
        let (mut stream, _) = listener.accept().await.unwrap();
        let sni = peek_sni(&stream, Duration::from_secs(5)).await;
        assert_eq!(sni.as_deref(), Some("pop.example.net"));
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(first[0], 0x16, "the ClientHello is still there to read");
        drop(stream);
        let _ = client.await;
    }

    #[tokio::test]
    async fn plaintext_gives_no_name() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(b"USER alice\r\n").await.unwrap();
            tcp
        });
        let (stream, _) = listener.accept().await.unwrap();
        assert_eq!(peek_sni(&stream, Duration::from_secs(5)).await, None);
        drop(client.await);
    }

    #[test]
    fn records_complete_follows_record_lengths() {
        assert!(!records_complete(&[0x16, 3, 1]));
        assert!(!records_complete(&[0x16, 3, 1, 0, 4, 1, 2]));
        assert!(records_complete(&[0x16, 3, 1, 0, 2, 1, 2]));
        assert!(!records_complete(&[0x16, 3, 1, 0, 2, 1, 2, 0x16]));
        assert!(records_complete(b"USER alice\r\n"));
    }

    #[tokio::test]
    async fn a_hello_arriving_in_pieces_is_read_once_complete() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hello = client_hello("pop.example.net");
        let (first, rest) = hello.split_at(hello.len() / 2);
        let (first, rest) = (first.to_vec(), rest.to_vec());
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let client = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&first).await.unwrap();
            wait.await.unwrap();
            tcp.write_all(&rest).await.unwrap();
            tcp
        });
        let (stream, _) = listener.accept().await.unwrap();
        let peek = peek_sni(&stream, Duration::from_secs(5));
        tokio::pin!(peek);
        // Half a ClientHello: no answer yet.
        tokio::select! {
            _ = &mut peek => panic!("answered on half a ClientHello"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        go.send(()).unwrap();
        assert_eq!(peek.await.as_deref(), Some("pop.example.net"));
        drop(client.await);
    }

    /// A ClientHello rustls would send for `name`.
    fn client_hello(name: &str) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }
}
