//! Child processes for tests: guards that stop them on drop, and one-shot commands with a
//! deadline.
//!
//! A daemon (Dovecot, popgate, clamd) lives in a [`ChildGuard`]: dropping it sends SIGTERM,
//! waits a bounded time for the exit, then SIGKILLs. A client (curl, fetchmail, poplib) runs
//! through [`run_with_timeout`], which kills it when its deadline passes.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::ports::wait_until;

/// How long a guard waits after SIGTERM before it SIGKILLs.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A running child process that is stopped when the guard is dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: String,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawns `command`; `name` appears in error messages.
    ///
    /// # Errors
    /// When the program cannot be started.
    ///
    /// The child also gets SIGTERM from the kernel when the spawning thread dies
    /// (`PR_SET_PDEATHSIG`), so a test binary killed by a CI timeout leaves no daemon behind;
    /// keep the guard on the thread that spawned it.
    pub fn spawn(command: &mut Command, name: &str) -> Result<ChildGuard> {
        // SAFETY: the closure runs between fork and exec and calls only prctl(2), which is
        // async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(ChildGuard {
            child,
            name: name.to_owned(),
            status: None,
        })
    }

    /// The child's piped standard output, once (for a process whose output is its
    /// interface, like `popgate demo`).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended, without waiting.
    ///
    /// # Errors
    /// When waiting on the child fails.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .with_context(|| format!("polling {}", self.name))?;
        }
        Ok(self.status)
    }

    /// Sends `signal` (a `libc::SIG*` number) to the process.
    ///
    /// # Errors
    /// When the process has already been reaped or `kill(2)` fails.
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        if self.exited()?.is_some() {
            bail!("{} has already exited", self.name);
        }
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("signalling {}", self.name));
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit by itself.
    ///
    /// # Errors
    /// When it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let name = self.name.clone();
        wait_until(&format!("{name} to exit"), timeout, || {
            Ok(self.exited()?.is_some())
        })?;
        self.status.ok_or_else(|| anyhow!("{name}: no exit status"))
    }

    /// SIGTERM, then wait up to `grace` for the exit.
    ///
    /// # Errors
    /// When the process does not exit within `grace` (it is then SIGKILLed).
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exited()? {
            return Ok(status);
        }
        self.signal(libc::SIGTERM)?;
        match self.wait_exit(grace) {
            Ok(status) => Ok(status),
            Err(e) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(e)
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.terminate(TERM_GRACE).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `command` to completion with stdout and stderr captured, killing it after `timeout`.
///
/// # Errors
/// When the program cannot start or is still running at the deadline (the error carries
/// what it printed so far).
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let description = format!("{command:?}");
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {description}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let waited = wait_until(&description, timeout, || Ok(child.try_wait()?.is_some()));
    if waited.is_err() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {description}"))?;
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if let Err(e) = waited {
        bail!(
            "{e}; killed it. stdout: {} stderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Like [`run_with_timeout`], and fails unless the exit status is success.
///
/// # Errors
/// As [`run_with_timeout`], or a non-zero exit (with the captured output).
pub fn run_ok(command: &mut Command, timeout: Duration) -> Result<Output> {
    let description = format!("{command:?}");
    let output = run_with_timeout(command, timeout)?;
    if !output.status.success() {
        bail!(
            "{description} failed with {}: stdout: {} stderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
