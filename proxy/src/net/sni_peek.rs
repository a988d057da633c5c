//! Reading the SNI of an implicit-TLS client before choosing its policy, without consuming
//! a byte: policies may name servers by domain (`"to": ["*.example.com"]`), and a policy
//! whose action passes TLS through (`tls.action: allow`) must still forward the ClientHello
//! untouched. The bytes are peeked (`MSG_PEEK`) and parsed by rustls's `Acceptor`.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest ClientHello looked at: one maximal TLS record and its header.
const MAX_PEEK: usize = 16 * 1024 + 5;

/// Pause between peeks while a ClientHello is still arriving (it may span TCP segments:
/// post-quantum key shares make it larger than one Ethernet frame).
const REPEEK_PAUSE: Duration = Duration::from_millis(2);

/// The server name the client asks for, if it sends one within `timeout`.
///
/// Cancel safety: safe (nothing is consumed).
pub async fn peek_sni(stream: &TcpStream, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_PEEK];
    let mut seen = 0;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if n > seen {
            seen = n;
            let mut acceptor = rustls::server::Acceptor::default();
            acceptor.read_tls(&mut &buf[..n]).ok()?;
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    return accepted
                        .client_hello()
                        .server_name()
                        .map(str::to_ascii_lowercase)
                }
                Ok(None) if n < MAX_PEEK => {}
                // Not TLS, or a ClientHello larger than we look at: no name.
                _ => return None,
            }
        }
        tokio::time::sleep_until((Instant::now() + REPEEK_PAUSE).min(deadline)).await;
        if Instant::now() >= deadline {
            return None;
        }
    }
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
}
