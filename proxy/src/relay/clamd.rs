//! The clamd client: INSTREAM over a Unix or TCP socket under one deadline. The wire format
//! (framing, replies) is `popgate_inspect`'s; only the socket lives here.

use std::io;
use std::time::Duration;

use popgate_inspect::{ScanError, ScanResult};
use popgate_policy::Clamd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Longest reply accepted from clamd.
const MAX_REPLY: u64 = 4096;

/// Scans `message` (unstuffed RFC 5322 bytes) with clamd.
///
/// Cancel safety: safe (the connection is dropped).
pub async fn scan(clamd: &Clamd, message: &[u8], timeout: Duration) -> ScanResult {
    let exchange = async {
        match clamd {
            Clamd::Unix(path) => exchange(UnixStream::connect(path).await?, message).await,
            Clamd::Tcp { host, port } => {
                exchange(TcpStream::connect((host.as_str(), *port)).await?, message).await
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(reply)) => popgate_inspect::parse_reply(&reply),
        Ok(Err(err)) => ScanResult::Failed(ScanError::Unreachable(err.kind())),
        Err(_) => ScanResult::Failed(ScanError::TimedOut),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    message: &[u8],
) -> io::Result<Vec<u8>> {
    for piece in popgate_inspect::instream_request(message, popgate_inspect::DEFAULT_CHUNK_SIZE) {
        stream.write_all(piece.as_ref()).await?;
    }
    stream.flush().await?;
    let mut reply = Vec::new();
    stream.take(MAX_REPLY).read_to_end(&mut reply).await?;
    Ok(reply)
}
