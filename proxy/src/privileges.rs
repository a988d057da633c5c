//! Privileges (SPEC §3, §4): started as root, popgate binds its listeners and then runs as
//! `user`/`group`, keeping only CAP_NET_ADMIN (transparent sockets, marks) and
//! CAP_NET_BIND_SERVICE (binding ports below 1024 again on reload); every thread then runs
//! with `no_new_privs` and a capability bounding set of at most those two.
//!
//! Capabilities, `no_new_privs` and the bounding set are per thread, and a new thread copies
//! its creator's. So the process-wide part is done by [`confine_process`] on the main thread
//! before the tokio runtime spawns any thread (every thread inherits it), and each runtime
//! thread runs [`confine_runtime_thread`] as it starts. Then:
//! - **root switching user** ([`Plan::SwitchFromRoot`]): [`drop_to`], on the main thread
//!   after the listeners are bound, changes the uid of every thread (glibc broadcasts
//!   `setuid`); only the calling thread keeps the two capabilities (`PR_SET_KEEPCAPS` is per
//!   thread), every worker ends up with none. The workers keep root's capabilities until
//!   then: each performs its own `setuid` in glibc's broadcast, which needs CAP_SETUID.
//! - **started as another user with capabilities** ([`Plan::KeepCapabilities`], e.g.
//!   systemd's `AmbientCapabilities`): the runtime threads drop every capability as they
//!   start; the main thread (which binds listeners on reload) keeps the two.
//!
//! Either way, upstream sockets that need CAP_NET_ADMIN are made on one helper thread
//! spawned by the main thread while it holds them ([`crate::net::privileged`]).

use anyhow::{bail, Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Group, Uid, User};
use tracing::info;

/// The capabilities kept after the switch.
pub const KEPT: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_BIND_SERVICE];

/// How this process holds its privileges; decided once, before any thread exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Root switching to `user`/`group` once the listeners are bound.
    SwitchFromRoot,
    /// Another user holding some of [`KEPT`] (and nothing to switch to): only the main
    /// thread and the socket helper keep them.
    KeepCapabilities,
    /// Nothing to change: root staying root (`"user": "root"`), or a user without any
    /// capability.
    Unchanged,
}

/// A `user`/`group` pair resolved on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    uid: Uid,
    gid: Gid,
}

impl Account {
    /// The user id.
    pub fn uid(self) -> u32 {
        self.uid.as_raw()
    }

    /// The group id.
    pub fn gid(self) -> u32 {
        self.gid.as_raw()
    }
}

/// What `run` will do with privileges for `user`: switch when started as root (unless the
/// user is root itself), else keep what it was started with.
pub fn plan(user: &str) -> Plan {
    if Uid::effective().is_root() {
        if user == "root" {
            Plan::Unchanged
        } else {
            Plan::SwitchFromRoot
        }
    } else if KEPT
        .iter()
        .any(|cap| caps::has_cap(None, CapSet::Permitted, *cap).unwrap_or(false))
    {
        Plan::KeepCapabilities
    } else {
        Plan::Unchanged
    }
}

/// Looks `user` and `group` up in the system's account databases.
///
/// # Errors
/// Every missing account (one line each, naming `popgate.json` and the field), or a
/// lookup failure.
pub fn account(user: &str, group: &str) -> Result<Account> {
    let mut problems = Vec::new();
    let uid = match User::from_name(user).context("looking up the user")? {
        Some(account) => Some(account.uid),
        None => {
            problems.push(format!(
                "popgate.json: .user: no user {user:?} on this system (popgate switches to it \
                 when started as root)"
            ));
            None
        }
    };
    let gid = match Group::from_name(group).context("looking up the group")? {
        Some(account) => Some(account.gid),
        None => {
            problems.push(format!(
                "popgate.json: .group: no group {group:?} on this system (popgate switches to \
                 it when started as root)"
            ));
            None
        }
    };
    match (uid, gid) {
        (Some(uid), Some(gid)) => Ok(Account { uid, gid }),
        _ => bail!("{}", problems.join("\n")),
    }
}

/// The process-wide part, on the main thread before any other thread exists: for
/// [`Plan::SwitchFromRoot`], checks that the account exists (so a typo fails before any
/// port is bound), then sets `no_new_privs` and limits the bounding set to [`KEPT`]; for
/// [`Plan::KeepCapabilities`], the same (the bounding set only when allowed to) plus
/// dropping every other capability, and starts the socket helper.
///
/// # Errors
/// A missing account, or a `prctl`/`capset` failure.
pub fn confine_process(plan: Plan, user: &str, group: &str) -> Result<()> {
    match plan {
        Plan::Unchanged => return Ok(()),
        Plan::SwitchFromRoot => {
            account(user, group)?;
        }
        Plan::KeepCapabilities => {}
    }
    set_no_new_privs()?;
    limit_bounding_set()?;
    caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
    if plan == Plan::KeepCapabilities {
        let kept = kept_set();
        let permitted = caps::read(None, CapSet::Permitted).context("reading capabilities")?;
        let kept: CapsHashSet = permitted.intersection(&kept).copied().collect();
        caps::set(None, CapSet::Effective, &kept).context("limiting effective capabilities")?;
        caps::set(None, CapSet::Permitted, &kept).context("limiting permitted capabilities")?;
        caps::clear(None, CapSet::Inheritable).context("clearing inheritable capabilities")?;
        crate::net::privileged::start().context("starting the privileged socket thread")?;
    }
    Ok(())
}

/// Run by every tokio thread as it starts (`on_thread_start`). With
/// [`Plan::KeepCapabilities`] the thread gives up every capability; a thread that cannot
/// is not allowed to run (the process aborts: failing open would leave CAP_NET_ADMIN on a
/// thread that parses peer data).
pub fn confine_runtime_thread(plan: Plan) {
    if plan != Plan::KeepCapabilities {
        // Root switching: the uid change takes the capabilities (see the file doc).
        return;
    }
    let dropped = [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ]
    .into_iter()
    .try_for_each(|set| caps::clear(None, set));
    if let Err(err) = dropped {
        eprintln!("popgate: a runtime thread could not drop its capabilities: {err}");
        std::process::abort();
    }
}

/// Runs `start` on a short-lived thread without capabilities, for code that spawns
/// long-lived threads of its own (the inotify watcher): they copy their creator's
/// capabilities, and must not inherit the main thread's.
///
/// As root nothing is dropped here: the later switch takes every thread's capabilities,
/// and a thread left as uid 0 without CAP_SETUID would make glibc's `setuid` broadcast
/// fail (and abort the process).
pub fn on_unprivileged_thread<T: Send>(start: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            if !Uid::effective().is_root() {
                confine_runtime_thread(Plan::KeepCapabilities);
            }
            start()
        });
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Switches to `user`/`group` when [`plan`] says so; otherwise does nothing.
///
/// # Errors
/// The user or group does not exist, or the switch failed.
pub fn drop_to(user: &str, group: &str) -> Result<()> {
    if plan(user) != Plan::SwitchFromRoot {
        return Ok(());
    }
    let Account { uid, gid } = account(user, group)?;
    // Normally done by `confine_process` already; repeated in case the configuration
    // changed in between (it is idempotent, and this thread still has CAP_SETPCAP).
    set_no_new_privs()?;
    limit_bounding_set()?;
    // SAFETY: prctl with PR_SET_KEEPCAPS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_KEEPCAPS): {}",
            std::io::Error::last_os_error()
        );
    }
    nix::unistd::setgroups(&[gid]).context("setgroups")?;
    nix::unistd::setgid(gid).context("setgid")?;
    nix::unistd::setuid(uid).context("setuid")?;
    let kept = kept_set();
    caps::set(None, CapSet::Permitted, &kept).context("limiting permitted capabilities")?;
    caps::set(None, CapSet::Effective, &kept).context("raising kept capabilities")?;
    caps::clear(None, CapSet::Inheritable).context("clearing inheritable capabilities")?;
    crate::net::privileged::start().context("starting the privileged socket thread")?;
    info!(user, group, "dropped privileges");
    Ok(())
}

fn kept_set() -> CapsHashSet {
    KEPT.into_iter().collect()
}

fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Removes every capability but [`KEPT`] from the bounding set. Needs CAP_SETPCAP; without
/// it (a non-root start) whoever started popgate set the bounding set (systemd's
/// `CapabilityBoundingSet`), and nothing is changed.
fn limit_bounding_set() -> Result<()> {
    if !caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        return Ok(());
    }
    let bounding = caps::read(None, CapSet::Bounding).context("reading the bounding set")?;
    for cap in bounding.difference(&kept_set()) {
        caps::drop(None, CapSet::Bounding, *cap)
            .with_context(|| format!("dropping {cap} from the bounding set"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_accounts_are_each_named_with_their_field() {
        let err = account("popgate-no-such-user", "popgate-no-such-group").unwrap_err();
        assert_eq!(
            err.to_string(),
            "popgate.json: .user: no user \"popgate-no-such-user\" on this system (popgate \
             switches to it when started as root)\npopgate.json: .group: no group \
             \"popgate-no-such-group\" on this system (popgate switches to it when started \
             as root)"
        );
        assert!(account("root", "root").is_ok());
    }

    #[test]
    fn root_staying_root_changes_nothing() {
        if Uid::effective().is_root() {
            assert_eq!(plan("root"), Plan::Unchanged);
            assert_eq!(plan("nobody"), Plan::SwitchFromRoot);
        }
    }
}
