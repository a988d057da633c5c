//! Loopback ports chosen at run time, and bounded waits on conditions.
//!
//! Tests never hard-code a port: [`free_port`] asks the kernel for one and remembers it for
//! the life of the test process, so two helpers in parallel tests never get the same number.
//! Waiting is done by polling a condition under a deadline ([`wait_until`]), never by
//! sleeping a guessed amount of time.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How often [`wait_until`] re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Returns a TCP port on 127.0.0.1 that was free a moment ago and that no other caller in
/// this process has been handed.
///
/// # Panics
/// When the kernel refuses to bind an ephemeral loopback port (the machine is broken).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local_addr of a bound socket")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Polls `condition` until it returns `Ok(true)`, an error, or `timeout` passes.
///
/// # Errors
/// The condition's own error, or a timeout error naming `what`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Waits until a TCP connect to `addr` succeeds.
///
/// # Errors
/// When nothing accepts on `addr` within `timeout`.
pub fn wait_for_accept(addr: SocketAddr, timeout: Duration) -> Result<()> {
    wait_until(&format!("{addr} to accept connections"), timeout, || {
        Ok(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
    })
}
