//! The demo's mail client: logs in through popgate (STLS or implicit TLS), trusting only
//! the Proxy Authority, and fetches every message.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How the client reaches popgate.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Plaintext connection upgraded with STLS.
    Stls,
    /// TLS from the first byte.
    Implicit,
}

/// What one fetch brought back.
pub struct Fetched {
    /// The messages as received, unstuffed.
    pub messages: Vec<Vec<u8>>,
    /// The certificate popgate presented: its subject and issuer.
    pub certificate: String,
}

/// Fetches every message from `addr`.
///
/// # Errors
/// Any protocol, TLS or certificate failure, with what was expected.
pub async fn fetch(addr: SocketAddr, mode: Mode, tls: Arc<ClientConfig>) -> Result<Fetched> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let connector = TlsConnector::from(tls);
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = match mode {
        Mode::Implicit => connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?,
        Mode::Stls => {
            let mut plain = BufReader::new(tcp);
            expect_ok(&mut plain).await.context("greeting")?;
            plain.write_all(b"STLS\r\n").await?;
            expect_ok(&mut plain).await.context("STLS")?;
            connector
                .connect(name, plain.into_inner())
                .await
                .context("TLS handshake after STLS")?
        }
    };
    let certificate = describe_peer(stream.get_ref().1);
    let mut stream = BufReader::new(stream);
    if let Mode::Implicit = mode {
        expect_ok(&mut stream).await.context("greeting")?;
    }
    command(&mut stream, "USER demo").await?;
    command(&mut stream, "PASS demo").await?;
    let stat = command(&mut stream, "STAT").await?;
    let count: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .context("STAT count")?;
    let mut messages = Vec::new();
    for n in 1..=count {
        command(&mut stream, &format!("RETR {n}")).await?;
        messages.push(read_body(&mut stream).await?);
    }
    command(&mut stream, "QUIT").await?;
    Ok(Fetched {
        messages,
        certificate,
    })
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    line: &str,
) -> Result<String> {
    stream.write_all(format!("{line}\r\n").as_bytes()).await?;
    let verb = line.split(' ').next().unwrap_or(line);
    expect_ok(stream).await.with_context(|| verb.to_owned())
}

async fn expect_ok<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Result<String> {
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    if !line.starts_with("+OK") {
        bail!("expected +OK, got {:?}", line.trim_end());
    }
    Ok(line)
}

async fn read_body<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            bail!("connection closed inside a message");
        }
        if line == b".\r\n" {
            return Ok(body);
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        body.extend_from_slice(unstuffed);
    }
}

fn describe_peer(state: &rustls::ClientConnection) -> String {
    let Some(leaf) = state.peer_certificates().and_then(|c| c.first()) else {
        return "no certificate".into();
    };
    let now = time::OffsetDateTime::now_utc();
    match popgate_ca::CertInfo::from_der(leaf, now) {
        Ok(info) => format!(
            "subject {}, names {}, issued by {}",
            info.subject,
            info.sans.join(" "),
            info.issuer
        ),
        Err(err) => format!("unreadable certificate: {err}"),
    }
}
