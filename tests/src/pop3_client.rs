//! A raw, blocking POP3 client that returns the exact bytes it receives.
//!
//! Tests compare these bytes between a session through popgate and one straight to the
//! server, so nothing here parses more than it must: a response is the status line and, for
//! multi-line responses, every byte up to and including the `.CRLF` terminator, dot-stuffing
//! intact. [`unstuff`] turns a RETR response back into the message.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::diff::escape;

/// Default read and write timeout of a client socket.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest line [`Pop3Client::read_line`] accepts before it gives up (1 MiB).
pub const MAX_LINE: usize = 1024 * 1024;

/// How a [`Pop3Client::read_until_close`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The peer closed the connection (FIN).
    Closed,
    /// The peer reset the connection.
    Reset,
    /// Nothing arrived before the deadline and the connection is still open.
    TimedOut,
}

/// A blocking POP3 connection.
#[derive(Debug)]
pub struct Pop3Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    greeting: Vec<u8>,
}

impl Pop3Client {
    /// Connects and reads the greeting line.
    ///
    /// # Errors
    /// Connect failure, timeout, or a connection closed before a full greeting line.
    pub fn connect(addr: SocketAddr) -> Result<Pop3Client> {
        let mut client = Pop3Client::connect_silent(addr)?;
        client.greeting = client.read_line().context("reading the greeting")?;
        Ok(client)
    }

    /// Connects, reads the greeting and logs in with `USER`/`PASS`.
    ///
    /// # Errors
    /// As [`Pop3Client::connect`] and [`Pop3Client::login`].
    pub fn logged_in(account: &crate::clients::Account) -> Result<Pop3Client> {
        let mut client = Pop3Client::connect(account.addr)?;
        client.login(&account.user, &account.password)?;
        Ok(client)
    }

    /// Connects without reading anything (for clients that speak first, like a TLS client).
    ///
    /// # Errors
    /// Connect failure.
    pub fn connect_silent(addr: SocketAddr) -> Result<Pop3Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Pop3Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            greeting: Vec::new(),
        })
    }

    /// The raw greeting line, CRLF included (empty after [`Pop3Client::connect_silent`]).
    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    /// The APOP timestamp (`<...>`) of the greeting, if it has one.
    pub fn apop_timestamp(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.greeting);
        let start = text.find('<')?;
        let end = start + text[start..].find('>')?;
        Some(text[start..=end].to_owned())
    }

    /// Sets the read timeout for the following reads.
    ///
    /// # Errors
    /// As `TcpStream::set_read_timeout`.
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.writer.set_read_timeout(Some(timeout))?)
    }

    /// Writes `bytes` as they are.
    ///
    /// # Errors
    /// Write failure.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .context("writing to the POP3 peer")?;
        Ok(())
    }

    /// Sends `command` + CRLF and reads the single-line response.
    ///
    /// # Errors
    /// Write or read failure.
    pub fn command(&mut self, command: &str) -> Result<Vec<u8>> {
        self.send(format!("{command}\r\n").as_bytes())?;
        self.read_line()
    }

    /// Sends `command` + CRLF and reads a multi-line response (see
    /// [`Pop3Client::read_multiline`]).
    ///
    /// # Errors
    /// Write or read failure.
    pub fn multiline_command(&mut self, command: &str) -> Result<Vec<u8>> {
        self.send(format!("{command}\r\n").as_bytes())?;
        self.read_multiline()
    }

    /// Sends `command` + CRLF and fails unless the response starts with `+OK`.
    ///
    /// # Errors
    /// I/O failure or a `-ERR` response.
    pub fn expect_ok(&mut self, command: &str) -> Result<Vec<u8>> {
        let response = self.command(command)?;
        ensure!(
            response.starts_with(b"+OK"),
            "{:?} answered {}",
            command.split(' ').next().unwrap_or(command),
            escape(&response)
        );
        Ok(response)
    }

    /// `USER` + `PASS`.
    ///
    /// # Errors
    /// I/O failure or a rejected login.
    pub fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.expect_ok(&format!("USER {user}"))?;
        self.expect_ok(&format!("PASS {password}"))?;
        Ok(())
    }

    /// `APOP user digest` using the greeting's timestamp.
    ///
    /// # Errors
    /// No timestamp in the greeting, I/O failure or a rejected login.
    pub fn apop_login(&mut self, user: &str, password: &str) -> Result<()> {
        let timestamp = self
            .apop_timestamp()
            .context("the greeting has no APOP timestamp")?;
        let digest = crate::pki::apop_digest(&timestamp, password)?;
        self.expect_ok(&format!("APOP {user} {digest}"))?;
        Ok(())
    }

    /// `RETR n`, returning the exact response bytes (status line to terminator).
    ///
    /// # Errors
    /// I/O failure or a `-ERR`.
    pub fn retr_raw(&mut self, n: usize) -> Result<Vec<u8>> {
        let response = self.multiline_command(&format!("RETR {n}"))?;
        ensure!(
            response.starts_with(b"+OK"),
            "RETR {n}: {}",
            escape(first_line(&response))
        );
        Ok(response)
    }

    /// `RETR n`, returning the message itself (see [`unstuff`]).
    ///
    /// # Errors
    /// As [`Pop3Client::retr_raw`].
    pub fn retr(&mut self, n: usize) -> Result<Vec<u8>> {
        unstuff(&self.retr_raw(n)?)
    }

    /// Reads one line, CRLF included (a final line without CRLF is an error).
    ///
    /// # Errors
    /// Timeout, close before CRLF, or a line over [`MAX_LINE`].
    pub fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            bail!("connection closed while waiting for a line");
        }
        if !line.ends_with(b"\n") {
            bail!(
                "no complete line ({} bytes: {})",
                line.len(),
                escape(&line[..line.len().min(200)])
            );
        }
        Ok(line)
    }

    /// Reads a response that is multi-line when positive: the status line and, after `+OK`,
    /// every line up to and including `.CRLF`. A `-ERR` is returned alone.
    ///
    /// # Errors
    /// Timeout, close before the terminator, or an overlong line.
    pub fn read_multiline(&mut self) -> Result<Vec<u8>> {
        let mut response = self.read_line()?;
        if !response.starts_with(b"+OK") {
            return Ok(response);
        }
        self.read_body_into(&mut response)?;
        Ok(response)
    }

    /// Reads the body of a multi-line response whose status line was read already: every
    /// line up to and including `.CRLF`.
    ///
    /// # Errors
    /// Timeout, close before the terminator, or an overlong line.
    pub fn read_body(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        self.read_body_into(&mut body)?;
        Ok(body)
    }

    fn read_body_into(&mut self, response: &mut Vec<u8>) -> Result<()> {
        loop {
            let start = response.len();
            let n = (&mut self.reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', response)?;
            ensure!(
                n > 0 && response.ends_with(b"\n"),
                "multi-line response ended without terminator after {} bytes",
                response.len()
            );
            if &response[start..] == b".\r\n" {
                return Ok(());
            }
        }
    }

    /// Reads everything until the peer closes, resets, or stays silent for `quiet`.
    /// Never fails: what arrived and how it ended are the result.
    pub fn read_until_close(&mut self, quiet: Duration) -> (Vec<u8>, Ending) {
        let _ = self.set_read_timeout(quiet);
        let mut received = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return (received, Ending::Closed),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return (received, Ending::TimedOut)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (received, Ending::Reset),
            }
        }
    }

    /// Waits up to `timeout` for the peer to close (returns what arrived meanwhile).
    ///
    /// # Errors
    /// When the connection is still open at the deadline.
    pub fn expect_close(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            ensure!(
                !left.is_zero(),
                "peer still open after {timeout:?}; got {}",
                escape(&received)
            );
            let (bytes, ending) = self.read_until_close(left);
            received.extend_from_slice(&bytes);
            if ending != Ending::TimedOut {
                return Ok(received);
            }
        }
    }

    /// Another handle on the socket, e.g. to write from one thread while reading in another.
    ///
    /// # Errors
    /// As `TcpStream::try_clone`.
    pub fn stream_clone(&self) -> Result<TcpStream> {
        Ok(self.writer.try_clone()?)
    }

    /// Half-closes the write side (the peer sees EOF).
    ///
    /// # Errors
    /// As `TcpStream::shutdown`.
    pub fn shutdown_write(&self) -> Result<()> {
        Ok(self.writer.shutdown(Shutdown::Write)?)
    }

    /// `QUIT` and read its response (ignoring failures: the peer may already be gone).
    pub fn quit(mut self) -> Option<Vec<u8>> {
        self.command("QUIT").ok()
    }
}

/// The message carried by a positive multi-line response: the status line and terminator
/// removed, dot-stuffing undone (RFC 1939 §3).
///
/// # Errors
/// When `response` is not a complete positive multi-line response.
pub fn unstuff(response: &[u8]) -> Result<Vec<u8>> {
    ensure!(
        response.starts_with(b"+OK"),
        "not a positive response: {}",
        escape(first_line(response))
    );
    ensure!(
        response.ends_with(b"\r\n.\r\n"),
        "response lacks the terminator"
    );
    let status_end = response
        .windows(2)
        .position(|w| w == b"\r\n")
        .context("no status line")?
        + 2;
    let body = &response[status_end..response.len() - 3];
    let mut message = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        message.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Ok(message)
}

/// The lines of a multi-line response between status line and terminator, CRLF stripped.
pub fn body_lines(response: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = response
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect();
    // Drop the status line, the terminator "." and the empty piece after the last LF.
    lines.pop();
    if lines.last().is_some_and(|l| l == b".") {
        lines.pop();
    }
    if !lines.is_empty() {
        lines.remove(0);
    }
    lines
}

/// The first line of `bytes` (all of it if there is no LF).
pub fn first_line(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => &bytes[..=i],
        None => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuff_removes_status_terminator_and_one_leading_dot() {
        let response = b"+OK 20 octets\r\nA\r\n..\r\n...x\r\n.y\r\n.\r\n";
        assert_eq!(unstuff(response).unwrap(), b"A\r\n.\r\n..x\r\ny\r\n");
    }

    #[test]
    fn unstuff_rejects_a_response_without_terminator() {
        assert!(unstuff(b"+OK\r\nA\r\n").is_err());
    }

    #[test]
    fn body_lines_drops_status_and_terminator() {
        let lines = body_lines(b"+OK\r\nUSER\r\nSTLS\r\n.\r\n");
        assert_eq!(lines, vec![b"USER".to_vec(), b"STLS".to_vec()]);
    }
}
