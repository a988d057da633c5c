//! `GET /metrics`: a deliberately tiny HTTP/1.1 responder on tokio (no hyper).
//!
//! One request per connection, answered with `Connection: close`. The request head is
//! bounded ([`MAX_HEAD`]) and must arrive within [`REQUEST_TIMEOUT`]; the body, if any, is
//! never read. At most [`MAX_CONNECTIONS`] scrapes are served at once; further connections
//! wait in the kernel's backlog. `GET` and `HEAD` of `/metrics` (any query string) get the
//! exposition; other paths 404, other methods 405, anything unparseable 400.
//!
//! [`respond`] is the whole protocol as a pure function (request head in, response bytes
//! out); the rest only moves bytes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::{Metrics, CONTENT_TYPE};

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head, and then to take the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served concurrently.
pub const MAX_CONNECTIONS: usize = 8;
/// Bytes discarded after the response before the connection is closed regardless.
const LINGER_BYTES: usize = 64 * 1024;

/// Binds `addr` and serves the process-wide metrics on it until the task is aborted.
///
/// Call it before dropping privileges if the port is below 1024. The bind happens before
/// this returns, so a busy or invalid address is reported at start-up.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(addr: SocketAddr) -> io::Result<JoinHandle<()>> {
    let server = MetricsServer::bind(addr, super::global()).await?;
    info!(listen = %server.local_addr(), "metrics endpoint listening");
    Ok(server.spawn())
}

/// A bound `/metrics` listener, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    local: SocketAddr,
    metrics: &'static Metrics,
    request_timeout: Duration,
}

impl MetricsServer {
    /// Binds `addr` for `metrics`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(addr: SocketAddr, metrics: &'static Metrics) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok(MetricsServer {
            listener,
            local,
            metrics,
            request_timeout: REQUEST_TIMEOUT,
        })
    }

    /// The bound address (the real port when `addr` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves on a new task until it is aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.accept_loop())
    }

    async fn accept_loop(self) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return; // never closed
            };
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    let (metrics, timeout) = (self.metrics, self.request_timeout);
                    tokio::spawn(async move {
                        if let Err(err) = handle(stream, metrics, timeout).await {
                            debug!(%peer, error = %err, "metrics request failed");
                        }
                        drop(slot);
                    });
                }
                Err(err) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    warn!(error = %err, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Reads one request head, answers it, closes.
async fn handle(mut stream: TcpStream, metrics: &Metrics, timeout: Duration) -> io::Result<()> {
    let response = match tokio::time::timeout(timeout, read_head(&mut stream)).await {
        Ok(Ok(Head::Complete(head))) => respond(&head, metrics),
        Ok(Ok(Head::TooLarge)) => status_only(431, "Request Header Fields Too Large"),
        Ok(Ok(Head::Closed)) => return Ok(()),
        Ok(Err(err)) => return Err(err),
        Err(_) => status_only(408, "Request Timeout"),
    };
    tokio::time::timeout(timeout, async {
        stream.write_all(&response).await?;
        stream.shutdown().await?;
        linger(&mut stream).await
    })
    .await
    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Reads and discards what the client still sends (an unread body, the rest of an
/// oversized head) until it closes, so closing our end does not reset the connection
/// before the client has read the response.
async fn linger(stream: &mut TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 1024];
    let mut left = LINGER_BYTES;
    while left > 0 {
        let n = stream.read(&mut sink).await?;
        if n == 0 {
            break;
        }
        left = left.saturating_sub(n);
    }
    Ok(())
}

/// What arrived of a request head.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Everything up to and including the blank line.
    Complete(Vec<u8>),
    /// [`MAX_HEAD`] bytes without the blank line.
    TooLarge,
    /// The peer closed before the head was complete.
    Closed,
}

/// Reads until the blank line that ends the head.
///
/// Cancel safety: not cancel safe (bytes read so far are lost); run it under a timeout only.
async fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_blank_line(&head[searched_from..]) {
            head.truncate(searched_from + end);
            return Ok(Head::Complete(head));
        }
        if head.len() >= MAX_HEAD {
            return Ok(Head::TooLarge);
        }
    }
}

/// The end offset (exclusive) of the first `\r\n\r\n` (or bare `\n\n`) in `bytes`.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The complete response to a request head.
pub(super) fn respond(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return status_only(400, "Bad Request");
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return status_only(400, "Bad Request");
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return status_only(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return status_only(400, "Bad Request");
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let with_body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => {
            return response(
                405,
                "Method Not Allowed",
                &[("Allow", "GET, HEAD")],
                "text/plain; charset=utf-8",
                b"method not allowed\n",
                true,
            )
        }
    };
    if path != "/metrics" {
        return response(
            404,
            "Not Found",
            &[],
            "text/plain; charset=utf-8",
            b"not found; try /metrics\n",
            with_body,
        );
    }
    let body = metrics.encode();
    response(200, "OK", &[], CONTENT_TYPE, body.as_bytes(), with_body)
}

fn status_only(code: u16, reason: &str) -> Vec<u8> {
    let body = format!("{}\n", reason.to_ascii_lowercase());
    response(
        code,
        reason,
        &[],
        "text/plain; charset=utf-8",
        body.as_bytes(),
        true,
    )
}

/// A `Connection: close` response; `Content-Length` is the body's even for HEAD.
fn response(
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    if with_body {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn split(response: &[u8]) -> (String, String) {
        let text = text(response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), body.to_owned())
    }

    #[test]
    fn get_metrics_returns_the_exposition_with_exact_headers() {
        let metrics = Metrics::new();
        let body = metrics.encode();
        let got = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &metrics);
        let expected = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(text(&got), expected);
    }

    #[test]
    fn query_string_and_http_1_0_are_accepted() {
        let metrics = Metrics::new();
        let got = respond(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n", &metrics);
        assert!(
            text(&got).starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            text(&got)
        );
    }

    #[test]
    fn head_gets_headers_only() {
        let metrics = Metrics::new();
        let (head, body) = split(&respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", &metrics));
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let length = metrics.encode().len();
        assert!(
            head.contains(&format!("\r\nContent-Length: {length}\r\n")),
            "{head}"
        );
        assert_eq!(body, "");
    }

    #[test]
    fn other_paths_are_404() {
        let metrics = Metrics::new();
        for path in ["/", "/metrics/", "/metricsx", "/favicon.ico"] {
            let request = format!("GET {path} HTTP/1.1\r\n\r\n");
            let got = respond(request.as_bytes(), &metrics);
            assert_eq!(
                text(&got),
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 24\r\nConnection: close\r\n\r\nnot found; try /metrics\n",
                "{path}"
            );
        }
    }

    #[test]
    fn other_methods_are_405_with_allow() {
        let metrics = Metrics::new();
        let got = respond(
            b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            &metrics,
        );
        assert_eq!(
            text(&got),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 19\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n\
             method not allowed\n"
        );
    }

    #[test]
    fn malformed_request_lines_are_400() {
        let metrics = Metrics::new();
        for request in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"GET /m\xffetrics HTTP/1.1\r\n\r\n",
        ] {
            let got = respond(request, &metrics);
            assert!(
                text(&got).starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{:?} -> {}",
                String::from_utf8_lossy(request),
                text(&got)
            );
        }
    }

    #[test]
    fn blank_line_is_found_across_line_endings() {
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\n\nbody"), Some(16));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(request).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        response
    }

    #[tokio::test]
    async fn served_over_tcp_in_pieces_then_closed() {
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        metrics.connection(super::super::ConnectionResult::Accepted);
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), metrics)
            .await
            .unwrap();
        let addr = server.local_addr();
        let task = server.spawn();

        // The head in two writes: the responder must wait for the blank line.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /metrics HT").await.unwrap();
        client.flush().await.unwrap();
        client
            .write_all(b"TP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        let (head, body) = split(&response);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.ends_with("\r\nConnection: close"), "{head}");
        assert!(
            body.contains("popgate_connections_total{result=\"accepted\"} 1\n"),
            "{body}"
        );

        let not_found = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(text(&not_found).starts_with("HTTP/1.1 404 Not Found\r\n"));
        task.abort();
    }

    #[tokio::test]
    async fn oversized_head_is_refused_with_431() {
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), metrics)
            .await
            .unwrap();
        let addr = server.local_addr();
        let task = server.spawn();
        let mut request = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
        request.resize(MAX_HEAD + 100, b'a');
        let got = exchange(addr, &request).await;
        assert!(
            text(&got).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{}",
            text(&got)
        );
        task.abort();
    }

    #[tokio::test]
    async fn silent_client_gets_408_after_the_timeout() {
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let mut server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), metrics)
            .await
            .unwrap();
        server.request_timeout = Duration::from_millis(200);
        let addr = server.local_addr();
        let task = server.spawn();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        assert!(
            text(&response).starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{}",
            text(&response)
        );
        task.abort();
    }

    #[tokio::test]
    async fn bind_failure_is_reported_at_once() {
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = MetricsServer::bind(taken.local_addr().unwrap(), metrics)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
