//! The privileges of every thread of a process, from `/proc/PID/task/*/status` (SPEC §3:
//! after the switch, every thread runs with `no_new_privs` and a bounding set of at most
//! CAP_NET_ADMIN and CAP_NET_BIND_SERVICE; only the threads that bind listeners and make
//! marked upstream sockets hold them).

use std::fs;

use anyhow::{bail, Context, Result};

/// CAP_NET_BIND_SERVICE (10) and CAP_NET_ADMIN (12).
pub const NET_CAPS: u64 = (1 << 10) | (1 << 12);

/// The threads that keep [`NET_CAPS`] effective: the main thread (binds listeners on
/// reload) and popgate's privileged socket helper.
pub const PRIVILEGED_THREADS: [&str; 2] = ["popgate", "popgate-caps"];

/// One thread's identity and privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStatus {
    /// Thread id.
    pub tid: u32,
    /// `comm` (at most 15 bytes of the thread's name).
    pub name: String,
    /// Real uid.
    pub uid: u32,
    /// `NoNewPrivs`.
    pub no_new_privs: bool,
    /// `CapInh`, `CapPrm`, `CapEff`, `CapBnd`, `CapAmb`.
    pub inheritable: u64,
    /// Permitted capabilities.
    pub permitted: u64,
    /// Effective capabilities.
    pub effective: u64,
    /// Bounding set.
    pub bounding: u64,
    /// Ambient capabilities.
    pub ambient: u64,
}

/// Every thread of process `pid`.
///
/// # Errors
/// When `/proc/PID/task` cannot be read or a status lacks a field.
pub fn threads(pid: u32) -> Result<Vec<ThreadStatus>> {
    let mut threads = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = entry?.path();
        let status = fs::read_to_string(path.join("status"))
            .with_context(|| format!("reading {}/status", path.display()))?;
        let field = |name: &str| -> Result<&str> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
                .with_context(|| format!("{name} missing in {}", path.display()))
        };
        let hex = |name: &str| -> Result<u64> { Ok(u64::from_str_radix(field(name)?, 16)?) };
        threads.push(ThreadStatus {
            tid: field("Pid:")?.parse()?,
            name: field("Name:")?.to_owned(),
            uid: field("Uid:")?
                .split_whitespace()
                .next()
                .context("empty Uid")?
                .parse()?,
            no_new_privs: field("NoNewPrivs:")? == "1",
            inheritable: hex("CapInh:")?,
            permitted: hex("CapPrm:")?,
            effective: hex("CapEff:")?,
            bounding: hex("CapBnd:")?,
            ambient: hex("CapAmb:")?,
        });
    }
    Ok(threads)
}

/// Checks SPEC §3's rule on every thread of `pid`: uid `uid`, `no_new_privs`, bounding set
/// [`NET_CAPS`], no ambient or inheritable capabilities, [`NET_CAPS`] effective on the
/// [`PRIVILEGED_THREADS`] and nothing on any other thread (at least one tokio worker must
/// be among them). Returns the threads seen.
///
/// # Errors
/// Every thread breaking the rule, with its status.
pub fn assert_confined(pid: u32, uid: u32) -> Result<Vec<ThreadStatus>> {
    let threads = threads(pid)?;
    let mut wrong = Vec::new();
    for thread in &threads {
        let privileged = PRIVILEGED_THREADS.contains(&thread.name.as_str());
        let caps = if privileged { NET_CAPS } else { 0 };
        let ok = thread.uid == uid
            && thread.no_new_privs
            && thread.bounding == NET_CAPS
            && thread.ambient == 0
            && thread.inheritable == 0
            && thread.effective == caps
            && thread.permitted == caps;
        if !ok {
            wrong.push(format!("{thread:?}"));
        }
    }
    if !threads.iter().any(|t| t.name.starts_with("tokio-")) {
        bail!("no tokio worker among {threads:#?}");
    }
    if !wrong.is_empty() {
        bail!(
            "threads breaking the privilege rule (want uid {uid}, NoNewPrivs 1, CapBnd \
             {NET_CAPS:#x}, CapEff {NET_CAPS:#x} only on {PRIVILEGED_THREADS:?}):\n{}",
            wrong.join("\n")
        );
    }
    Ok(threads)
}
