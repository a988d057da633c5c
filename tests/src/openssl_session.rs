//! A long-lived implicit-TLS POP3 session through `openssl s_client -quiet`, for tests that
//! keep a POP3S session open while something else happens (a reload, a shutdown).
//!
//! `-quiet` turns off s_client's interactive commands (a line starting with `R` would
//! otherwise renegotiate), so commands pass as they are. A reader thread forwards stdout
//! line by line, which gives every read a deadline.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::diff::escape;

/// How long a read waits for a line.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// An implicit-TLS POP3 session; the `openssl` process is killed on drop.
#[derive(Debug)]
pub struct TlsSession {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Vec<u8>>,
    greeting: Vec<u8>,
}

impl TlsSession {
    /// Connects to `addr` with implicit TLS, verifying the server against `ca` (the chain
    /// only: the name is not checked), and reads the greeting.
    ///
    /// # Errors
    /// When `openssl` cannot start, the handshake fails or no greeting arrives.
    pub fn connect(addr: SocketAddr, ca: &Path) -> Result<TlsSession> {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
            .arg(addr.to_string())
            .arg("-CAfile")
            .arg(ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting openssl s_client")?;
        let stdin = child.stdin.take().context("s_client stdin")?;
        let stdout = child.stdout.take().context("s_client stdout")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut session = TlsSession {
            child,
            stdin,
            lines,
            greeting: Vec::new(),
        };
        session.greeting = session
            .read_line()
            .context("reading the greeting over TLS")?;
        Ok(session)
    }

    /// The greeting line, CRLF included.
    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    /// Sends `command` + CRLF and reads the single-line response.
    ///
    /// # Errors
    /// Write failure, or no line within the deadline.
    pub fn command(&mut self, command: &str) -> Result<Vec<u8>> {
        self.stdin
            .write_all(format!("{command}\r\n").as_bytes())
            .context("writing to s_client")?;
        self.stdin.flush()?;
        self.read_line()
    }

    /// Sends `command` and fails unless the answer starts with `+OK`.
    ///
    /// # Errors
    /// As [`TlsSession::command`], or a `-ERR`.
    pub fn expect_ok(&mut self, command: &str) -> Result<Vec<u8>> {
        let response = self.command(command)?;
        if !response.starts_with(b"+OK") {
            bail!(
                "{:?} answered {}",
                command.split(' ').next().unwrap_or(command),
                escape(&response)
            );
        }
        Ok(response)
    }

    /// `RETR n`: the exact response bytes, status line to terminator.
    ///
    /// # Errors
    /// A `-ERR`, or no terminator within the deadline.
    pub fn retr_raw(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut response = self.expect_ok(&format!("RETR {n}"))?;
        loop {
            let line = self.read_line()?;
            response.extend_from_slice(&line);
            if line == b".\r\n" {
                return Ok(response);
            }
        }
    }

    /// Reads one line, CRLF included.
    ///
    /// # Errors
    /// When none arrives within 30 s or s_client ended.
    pub fn read_line(&mut self) -> Result<Vec<u8>> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        match self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => bail!("no line within {LINE_TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => bail!("the TLS session ended"),
        }
    }
}

impl Drop for TlsSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
