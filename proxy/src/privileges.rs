//! Dropping root after the listeners are bound (SPEC §3, §4): run as `user`/`group`,
//! keeping only CAP_NET_ADMIN (transparent sockets, marks) and CAP_NET_BIND_SERVICE
//! (binding ports below 1024 again on reload).
//!
//! Capabilities are per thread: the thread calling [`drop_to`] (the one running the main
//! loop, which also binds listeners on reload) keeps them; every other thread that exists
//! at that moment (tokio's workers) loses them with the uid change. Upstream sockets that
//! need CAP_NET_ADMIN are therefore made on a helper thread spawned here, after the drop
//! ([`crate::net::privileged`]).

use anyhow::{bail, Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Group, Uid, User};
use tracing::info;

/// Switches to `user`/`group` when running as root; as any other user, stays that user.
///
/// # Errors
/// The user or group does not exist, or the switch failed.
pub fn drop_to(user: &str, group: &str) -> Result<()> {
    if !Uid::effective().is_root() || user == "root" {
        return Ok(());
    }
    let account = User::from_name(user)
        .context("looking up the user")?
        .with_context(|| format!("user {user} does not exist (set \"user\" in popgate.json)"))?;
    let gid = Group::from_name(group)
        .context("looking up the group")?
        .with_context(|| format!("group {group} does not exist (set \"group\" in popgate.json)"))?
        .gid;
    // SAFETY: prctl with PR_SET_KEEPCAPS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_KEEPCAPS): {}",
            std::io::Error::last_os_error()
        );
    }
    nix::unistd::setgroups(&[gid]).context("setgroups")?;
    nix::unistd::setgid(gid).context("setgid")?;
    nix::unistd::setuid(account.uid).context("setuid")?;
    let kept: CapsHashSet = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_BIND_SERVICE]
        .into_iter()
        .collect();
    caps::set(None, CapSet::Permitted, &kept).context("limiting permitted capabilities")?;
    caps::set(None, CapSet::Effective, &kept).context("raising kept capabilities")?;
    caps::clear(None, CapSet::Inheritable).context("clearing inheritable capabilities")?;
    crate::net::privileged::start().context("starting the privileged socket thread")?;
    info!(user, group, "dropped privileges");
    Ok(())
}
