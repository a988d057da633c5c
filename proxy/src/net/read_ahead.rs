//! Larger socket reads under rustls on the server leg.
//!
//! rustls asks its transport for at most 4 KiB per read, so a 16 KiB TLS record from the
//! server costs five `recv(2)` calls (a 4.1 KiB message two). Under the server leg's TLS
//! this reads up to [`READ_AHEAD`] bytes at once into a buffer shared by the runtime thread
//! and hands rustls the rest from memory on its next reads. What rustls has not yet taken
//! is kept per session only until it is taken: a session waiting for its server holds no
//! buffer, so idle memory does not grow.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes asked of the socket per read: two full TLS records.
pub const READ_AHEAD: usize = 32 * 1024;

thread_local! {
    /// Where every read-ahead on this runtime thread lands first; only the part the caller
    /// does not take at once is copied out, into the session's own [`ReadAhead`].
    static LANDING: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_AHEAD].into_boxed_slice());
}

/// A transport that reads ahead of its caller; writes pass straight through.
#[derive(Debug)]
pub struct ReadAhead<T> {
    inner: T,
    /// Read from `inner`, not yet given to the caller; empty (no allocation) when drained.
    ahead: Vec<u8>,
    /// How much of `ahead` the caller has taken.
    taken: usize,
}

impl<T> ReadAhead<T> {
    /// Wraps a transport that has nothing buffered anywhere else.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            ahead: Vec::new(),
            taken: 0,
        }
    }

    /// The transport, for addresses and socket options.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Gives the caller what was read ahead; frees the buffer once it is all taken.
    fn give(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.ahead.len() - self.taken);
        buf.put_slice(&self.ahead[self.taken..self.taken + n]);
        self.taken += n;
        if self.taken == self.ahead.len() {
            self.ahead = Vec::new();
            self.taken = 0;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadAhead<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.taken < this.ahead.len() {
            this.give(buf);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_AHEAD {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        LANDING.with_borrow_mut(|landing| {
            let mut landed = ReadBuf::new(&mut landing[..]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut landed) {
                Poll::Ready(Ok(())) => {
                    let data = landed.filled();
                    let now = data.len().min(buf.remaining());
                    buf.put_slice(&data[..now]);
                    this.ahead.extend_from_slice(&data[now..]);
                    Poll::Ready(Ok(()))
                }
                other => other,
            }
        })
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadAhead<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads `want` bytes in reads of at most `size`, as rustls does, counting the reads
    /// that reached the transport.
    async fn read_in_steps(
        reader: &mut ReadAhead<tokio::io::DuplexStream>,
        size: usize,
        want: usize,
    ) -> Vec<u8> {
        let mut got = Vec::new();
        let mut step = vec![0u8; size];
        while got.len() < want {
            let n = reader.read(&mut step).await.expect("read");
            assert_ne!(n, 0, "early end after {} bytes", got.len());
            got.extend_from_slice(&step[..n]);
        }
        got
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn small_reads_get_every_byte_in_order_and_the_buffer_is_freed() {
        let (mut far, near) = tokio::io::duplex(256 * 1024);
        let mut reader = ReadAhead::new(near);
        let sent = pattern(100_000);
        far.write_all(&sent).await.unwrap();
        let got = read_in_steps(&mut reader, 4096, sent.len()).await;
        assert_eq!(got, sent);
        assert_eq!(
            reader.ahead.capacity(),
            0,
            "a drained read-ahead holds no memory"
        );
    }

    #[tokio::test]
    async fn one_transport_read_serves_several_small_reads() {
        let (mut far, near) = tokio::io::duplex(256 * 1024);
        let mut reader = ReadAhead::new(near);
        far.write_all(&pattern(16 * 1024)).await.unwrap();
        let mut step = [0u8; 4096];
        assert_eq!(reader.read(&mut step).await.unwrap(), 4096);
        assert_eq!(
            reader.ahead.len() - reader.taken,
            12 * 1024,
            "the rest was read ahead"
        );
        drop(far);
        // The peer is gone, yet the bytes read ahead still come before the end.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, pattern(16 * 1024)[4096..]);
    }

    #[tokio::test]
    async fn a_server_sending_more_than_is_read_cannot_grow_the_buffer() {
        let (mut far, near) = tokio::io::duplex(2 << 20);
        let mut reader = ReadAhead::new(near);
        let sent = pattern(1 << 20);
        far.write_all(&sent).await.unwrap();
        let mut got = Vec::with_capacity(sent.len());
        let mut step = [0u8; 1];
        while got.len() < sent.len() {
            assert_eq!(reader.read(&mut step).await.unwrap(), 1);
            got.push(step[0]);
            assert!(
                reader.ahead.len() < READ_AHEAD,
                "read ahead {} bytes: more than one transport read",
                reader.ahead.len()
            );
        }
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (mut far, near) = tokio::io::duplex(1024);
        let mut writer = ReadAhead::new(near);
        writer.write_all(b"RETR 1\r\n").await.unwrap();
        writer.flush().await.unwrap();
        let mut got = [0u8; 8];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"RETR 1\r\n");
    }
}
