//! A connection that may change from plaintext to TLS in the middle of a session (STLS).
//!
//! The driver needs one type per leg that stays the same across the upgrade, so both legs
//! are a [`Conn`]; the upgrade takes the TCP stream out and puts the TLS stream back.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::read_ahead::ReadAhead;

/// One leg of a session: plaintext TCP, or TLS on top of it, either role.
#[derive(Debug)]
pub enum Conn {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS terminated by the proxy (the client leg).
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS initiated by the proxy (the server leg), reading ahead of rustls: bodies come
    /// this way.
    TlsClient(Box<tokio_rustls::client::TlsStream<ReadAhead<TcpStream>>>),
    /// Transient state during an upgrade; every operation fails.
    Upgrading,
}

impl Conn {
    /// Takes the plaintext stream out for a TLS handshake.
    ///
    /// # Errors
    /// When the leg is TLS already (STLS twice) or mid-upgrade.
    pub fn take_plain(&mut self) -> io::Result<TcpStream> {
        match std::mem::replace(self, Conn::Upgrading) {
            Conn::Plain(tcp) => Ok(tcp),
            other => {
                *self = other;
                Err(io::Error::other("connection is not plaintext"))
            }
        }
    }

    /// The underlying TCP stream, for addresses and socket options.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Conn::Plain(tcp) => Some(tcp),
            Conn::TlsServer(tls) => Some(tls.get_ref().0),
            Conn::TlsClient(tls) => Some(tls.get_ref().0.get_ref()),
            Conn::Upgrading => None,
        }
    }

    /// Whether the leg is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::TlsServer(_) | Conn::TlsClient(_))
    }
}

fn upgrading() -> io::Error {
    io::Error::other("connection used during a TLS upgrade")
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::TlsServer(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::TlsServer(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::TlsServer(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::TlsServer(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Upgrading => Poll::Ready(Ok(())),
        }
    }
}
