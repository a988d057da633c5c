//! A scripted, deliberately broken POP3 server for what Dovecot never does.
//!
//! Use it only for hostile or broken replies (overlong lines, missing terminators, garbage,
//! silence, a close mid-RETR, bytes injected after `+OK` to STLS); everything a correct
//! server does is tested against Dovecot. Every accepted connection runs the script from the
//! start on its own thread. A [`Script`] is a greeting and rules `(command prefix → Reply)`:
//! for each command line the first unused rule whose prefix matches (ASCII case-insensitive)
//! is used once. Commands no rule matches get a plausible default: `CAPA` a small list,
//! `USER`/`PASS`/`NOOP`/`RSET` `+OK`, `STAT` `+OK 0 0`, `QUIT` `+OK` and a close, anything
//! else `-ERR`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::Result;

/// How often connection threads look at the stop flag while blocked on a read.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Bound on one write, so a client that stops reading cannot wedge the server's drop.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest command line the fake server buffers before it gives up on the connection.
const MAX_COMMAND: usize = 64 * 1024;

/// What the server does in response to a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes and carry on.
    Send(Vec<u8>),
    /// Send these bytes, then close the connection.
    SendAndClose(Vec<u8>),
    /// Close the connection without a word.
    Close,
    /// Never answer anything again, but keep the connection open.
    Silence,
}

impl Reply {
    /// [`Reply::Send`] of a string.
    pub fn send(text: &str) -> Reply {
        Reply::Send(text.as_bytes().to_vec())
    }
}

/// The greeting and the rules a [`FakeServer`] follows.
#[derive(Clone, Debug)]
pub struct Script {
    greeting: Option<Vec<u8>>,
    rules: Vec<(String, Reply)>,
}

impl Default for Script {
    fn default() -> Self {
        Script::new("+OK fake POP3 server ready\r\n")
    }
}

impl Script {
    /// A script that greets with `greeting` (sent exactly, so include the CRLF).
    pub fn new(greeting: impl AsRef<[u8]>) -> Script {
        Script {
            greeting: Some(greeting.as_ref().to_vec()),
            rules: Vec::new(),
        }
    }

    /// A server that accepts and then never says anything.
    pub fn silent() -> Script {
        Script {
            greeting: None,
            rules: Vec::new(),
        }
    }

    /// Adds a rule: the next command starting with `prefix` gets `reply` (once).
    #[must_use]
    pub fn on(mut self, prefix: &str, reply: Reply) -> Script {
        self.rules.push((prefix.to_ascii_uppercase(), reply));
        self
    }
}

/// A running fake server on 127.0.0.1; stops its threads on drop.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
    connection_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    connections: Arc<AtomicUsize>,
}

impl FakeServer {
    /// Binds 127.0.0.1:0 and serves `script` to every connection.
    ///
    /// # Errors
    /// When binding fails.
    pub fn start(script: Script) -> Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connection_threads = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let accept_thread = {
            let (stop, threads) = (stop.clone(), connection_threads.clone());
            let (received, connections) = (received.clone(), connections.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (script, stop, received) = (script.clone(), stop.clone(), received.clone());
                    let handle = thread::spawn(move || serve(stream, script, &stop, &received));
                    threads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(handle);
                }
            })
        };
        Ok(FakeServer {
            addr,
            stop,
            accept_thread: Some(accept_thread),
            connection_threads,
            received,
            connections,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every command line received so far (CRLF stripped), all connections in arrival order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
        let threads: Vec<_> = self
            .connection_threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for handle in threads {
            let _ = handle.join();
        }
    }
}

fn serve(mut stream: TcpStream, script: Script, stop: &AtomicBool, received: &Mutex<Vec<Vec<u8>>>) {
    if stop.load(Ordering::SeqCst)
        || stream.set_read_timeout(Some(STOP_CHECK)).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    if let Some(greeting) = &script.greeting {
        if stream.write_all(greeting).is_err() {
            return;
        }
    }
    let mut silent = script.greeting.is_none();
    let mut rules: Vec<Option<(String, Reply)>> = script.rules.into_iter().map(Some).collect();
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=end).collect();
            let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
            let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
            received
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
            if silent {
                continue;
            }
            let reply = take_rule(&mut rules, &line).unwrap_or_else(|| default_reply(&line));
            let ok = match reply {
                Reply::Send(bytes) => stream.write_all(&bytes).is_ok(),
                Reply::SendAndClose(bytes) => {
                    let _ = stream.write_all(&bytes);
                    false
                }
                Reply::Close => false,
                Reply::Silence => {
                    silent = true;
                    true
                }
            };
            if !ok {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
        if pending.len() > MAX_COMMAND {
            return;
        }
    }
}

fn take_rule(rules: &mut [Option<(String, Reply)>], line: &[u8]) -> Option<Reply> {
    let upper = line.to_ascii_uppercase();
    let slot = rules.iter_mut().find(|r| {
        r.as_ref()
            .is_some_and(|(prefix, _)| upper.starts_with(prefix.as_bytes()))
    })?;
    slot.take().map(|(_, reply)| reply)
}

fn default_reply(line: &[u8]) -> Reply {
    let upper = line.to_ascii_uppercase();
    let verb = upper.split(|&b| b == b' ').next().unwrap_or_default();
    match verb {
        b"CAPA" => Reply::send("+OK capability list follows\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n"),
        b"USER" | b"PASS" | b"NOOP" | b"RSET" => Reply::send("+OK\r\n"),
        b"STAT" => Reply::send("+OK 0 0\r\n"),
        b"QUIT" => Reply::SendAndClose(b"+OK bye\r\n".to_vec()),
        _ => Reply::send("-ERR unknown command\r\n"),
    }
}
