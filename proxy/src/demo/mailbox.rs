//! The demo mailbox: a deliberately tiny POP3 server for `popgate demo` only.
//!
//! It serves a fixed set of messages to any login, on a plaintext port offering STLS and
//! on an implicit-TLS port. It is not a mail server and is never used outside the demo.

use std::sync::Arc;

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A running demo mailbox.
pub struct Mailbox {
    /// Plaintext port (STLS offered).
    pub pop3: u16,
    /// Implicit-TLS port.
    pub pop3s: u16,
}

impl Mailbox {
    /// Starts serving `messages` (CRLF, unstuffed) with `tls` on 127.0.0.1.
    ///
    /// # Errors
    /// Binding the listeners failed.
    pub async fn start(messages: Arc<Vec<Vec<u8>>>, tls: TlsAcceptor) -> Result<Mailbox> {
        let plain = TcpListener::bind("127.0.0.1:0").await?;
        let implicit = TcpListener::bind("127.0.0.1:0").await?;
        let mailbox = Mailbox {
            pop3: plain.local_addr()?.port(),
            pop3s: implicit.local_addr()?.port(),
        };
        tokio::spawn(accept(plain, messages.clone(), tls.clone(), false));
        tokio::spawn(accept(implicit, messages, tls, true));
        Ok(mailbox)
    }
}

async fn accept(
    listener: TcpListener,
    messages: Arc<Vec<Vec<u8>>>,
    tls: TlsAcceptor,
    implicit: bool,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let messages = messages.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = serve(stream, messages, tls, implicit).await;
        });
    }
}

async fn serve(
    stream: TcpStream,
    messages: Arc<Vec<Vec<u8>>>,
    tls: TlsAcceptor,
    implicit: bool,
) -> std::io::Result<()> {
    // Replies are written whole; without NODELAY the next one waits for a delayed ACK.
    stream.set_nodelay(true)?;
    if implicit {
        let stream = tls.accept(stream).await?;
        return converse(stream, &messages, true, true).await.map(|_| ());
    }
    let mut stream = stream;
    if converse(&mut stream, &messages, false, true).await? == After::Stls {
        let stream = tls.accept(stream).await?;
        // RFC 2595: no new greeting after STLS.
        converse(stream, &messages, true, false).await?;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum After {
    Quit,
    Stls,
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    messages: &[Vec<u8>],
    tls: bool,
    greet: bool,
) -> std::io::Result<After> {
    let mut stream = BufReader::new(stream);
    if greet {
        stream
            // No APOP timestamp: the demo accepts any password, so it cannot check an APOP
            // digest, and a client that sees a timestamp (curl) logs in with APOP.
            .write_all(b"+OK popgate demo mailbox ready\r\n")
            .await?;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(After::Quit);
        }
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let arg = words.next().and_then(|n| n.parse::<usize>().ok());
        let reply = match (verb.as_str(), arg) {
            ("CAPA", _) => {
                let stls = if tls { "" } else { "STLS\r\n" };
                format!("+OK\r\nUSER\r\nUIDL\r\nTOP\r\nPIPELINING\r\n{stls}.\r\n").into_bytes()
            }
            ("STLS", _) if !tls => {
                stream.write_all(b"+OK begin TLS\r\n").await?;
                stream.flush().await?;
                return Ok(After::Stls);
            }
            ("USER" | "PASS" | "NOOP" | "RSET" | "DELE", _) => b"+OK\r\n".to_vec(),
            ("STAT", _) => {
                let total: usize = messages.iter().map(Vec::len).sum();
                format!("+OK {} {total}\r\n", messages.len()).into_bytes()
            }
            ("LIST" | "UIDL", None) => {
                let mut out = b"+OK\r\n".to_vec();
                for (i, m) in messages.iter().enumerate() {
                    let value = if verb == "LIST" {
                        m.len().to_string()
                    } else {
                        format!("demo-{}", i + 1)
                    };
                    out.extend_from_slice(format!("{} {value}\r\n", i + 1).as_bytes());
                }
                out.extend_from_slice(b".\r\n");
                out
            }
            ("RETR", Some(n)) if (1..=messages.len()).contains(&n) => {
                let mut out = format!("+OK {} octets\r\n", messages[n - 1].len()).into_bytes();
                popgate_inspect::restuff_into(&messages[n - 1], &mut out);
                out
            }
            ("QUIT", _) => {
                stream.write_all(b"+OK bye\r\n").await?;
                return Ok(After::Quit);
            }
            _ => b"-ERR not in the demo\r\n".to_vec(),
        };
        stream.write_all(&reply).await?;
    }
}
