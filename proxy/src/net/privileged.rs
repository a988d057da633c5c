//! Socket set-up that needs capabilities, done on a thread that still has them.
//!
//! Capabilities belong to threads. When popgate drops root ([`crate::privileges`]), glibc
//! applies the new uid to every thread, but only the thread that asked keeps CAP_NET_ADMIN
//! (`PR_SET_KEEPCAPS` and `capset` act on the calling thread alone); tokio's worker threads,
//! which run the sessions, end up with none. Setting `SO_MARK` or `IP_TRANSPARENT` on an
//! upstream socket from a worker would then fail with `EPERM`.
//!
//! [`start`] is called on the capable thread right after the drop and spawns one helper
//! thread, which inherits that thread's capabilities. [`run`] hands it a job (make a socket,
//! set the options) and awaits the result. Without a drop (root kept, or started as
//! another user) there is no helper and jobs run inline on the caller's thread.

use std::io;
use std::sync::mpsc;
use std::sync::OnceLock;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

static HELPER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

/// Spawns the helper thread; it inherits the calling thread's capabilities. Later calls do
/// nothing.
///
/// # Errors
/// The thread could not be spawned.
pub fn start() -> io::Result<()> {
    if HELPER.get().is_some() {
        return Ok(());
    }
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("popgate-caps".into())
        .spawn(move || {
            // Ends when the sender is gone, i.e. never while the process runs.
            while let Ok(job) = queue.recv() {
                job();
            }
        })?;
    // A concurrent `start` may have won; its helper serves, ours exits with its queue.
    let _ = HELPER.set(jobs);
    Ok(())
}

/// Runs `job` on the helper thread when there is one, else right here.
///
/// Cancel safety: safe; a job whose caller went away still runs, and its result is
/// dropped (a socket is closed).
///
/// # Errors
/// The job's own error, or `Other` when the helper thread is gone.
pub async fn run<T, F>(job: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let Some(helper) = HELPER.get() else {
        return job();
    };
    let (reply, result) = oneshot::channel();
    let boxed: Job = Box::new(move || {
        let _ = reply.send(job());
    });
    if helper.send(boxed).is_err() {
        return Err(io::Error::other("privileged socket thread is gone"));
    }
    result
        .await
        .map_err(|_| io::Error::other("privileged socket thread dropped the job"))?
}
