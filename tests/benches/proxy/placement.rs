//! Where a proxy runs and how its CPU time is read.
//!
//! By default every process shares every vCPU: the client, Dovecot and the proxy compete,
//! which no gateway does (its clients and servers are other machines). With
//! `BENCH_GATEWAY_CPU=1` the proxies run on the last CPU and everything else on the others
//! (the bench pins itself there before it starts Dovecot, which inherits it), so that a
//! proxy's cost shows as a gateway would pay it: on a CPU of its own.

use std::fs;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether `BENCH_GATEWAY_CPU=1` asked for the proxies on a CPU of their own.
pub(crate) fn gateway_cpu() -> bool {
    std::env::var("BENCH_GATEWAY_CPU").is_ok_and(|v| v == "1")
}

/// What to read a proxy's CPU time from.
#[derive(Clone, Debug)]
pub(crate) enum CpuSource {
    /// A process and its children (sslsplit forks a worker).
    Process(u32),
    /// Threads of this process (the minimal relay's runtime).
    Threads(Arc<Mutex<Vec<libc::pid_t>>>),
}

impl CpuSource {
    pub(crate) fn cpu(&self) -> Option<Duration> {
        match self {
            CpuSource::Process(pid) => family_cpu(*pid),
            CpuSource::Threads(tids) => {
                Some(threads_cpu("self", tids.lock().ok()?.iter().copied()))
            }
        }
    }

    /// Moves the proxy to the last CPU (every thread: those it starts later inherit it).
    pub(crate) fn pin_to_gateway_cpu(&self) {
        let tids: Vec<libc::pid_t> = match self {
            CpuSource::Process(pid) => family(*pid)
                .into_iter()
                .flat_map(|p| tasks(p).unwrap_or_default())
                .collect(),
            CpuSource::Threads(tids) => tids.lock().map(|t| t.clone()).unwrap_or_default(),
        };
        for tid in tids {
            pin(tid, &[last_cpu()]);
        }
    }
}

/// Pins the calling thread to the last CPU: the minimal relay's runtime threads call it as
/// they start, when [`gateway_cpu`].
pub(crate) fn pin_this_thread_to_gateway_cpu() {
    pin(0, &[last_cpu()]);
}

/// Pins this process's every thread to every CPU but the last; Dovecot and the proxies,
/// started later, inherit it (the proxies are moved by [`CpuSource::pin_to_gateway_cpu`]).
pub(crate) fn pin_to_endpoint_cpus() {
    let cpus: Vec<usize> = (0..last_cpu()).collect();
    for tid in tasks(std::process::id()).unwrap_or_default() {
        pin(tid, &cpus);
    }
}

/// The machine's last online CPU (not this process's: its mask may already be narrowed).
fn last_cpu() -> usize {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1) - 1
}

fn pin(tid: libc::pid_t, cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPU time of `pid` and of every process whose parent it is, summed over their threads.
pub(crate) fn family_cpu(pid: u32) -> Option<Duration> {
    let mut total = task_cpu(pid)?;
    for child in family(pid).into_iter().filter(|&p| p != pid) {
        total += task_cpu(child).unwrap_or_default();
    }
    Some(total)
}

/// `pid` and the processes whose parent it is.
fn family(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let Ok(entries) = fs::read_dir("/proc") else {
        return all;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if child != pid && parent(child) == Some(pid) {
            all.push(child);
        }
    }
    all
}

fn tasks(pid: u32) -> Option<Vec<libc::pid_t>> {
    Some(
        fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
            .filter_map(|t| t.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// Every thread's CPU time of process `pid`.
fn task_cpu(pid: u32) -> Option<Duration> {
    Some(threads_cpu(pid, tasks(pid)?))
}

/// The CPU time of threads `tids` of process `pid` (`self` for this one).
fn threads_cpu(
    pid: impl std::fmt::Display,
    tids: impl IntoIterator<Item = libc::pid_t>,
) -> Duration {
    tids.into_iter()
        .filter_map(|tid| schedstat(format!("/proc/{pid}/task/{tid}/schedstat")))
        .sum()
}

/// The calling thread's CPU time so far.
pub(crate) fn thread_cpu() -> Option<Duration> {
    schedstat("/proc/thread-self/schedstat")
}

fn schedstat(path: impl AsRef<std::path::Path>) -> Option<Duration> {
    let stat = fs::read_to_string(path).ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The parent of `pid` (field 4 of `/proc/PID/stat`, after the parenthesised name).
fn parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}
