//! The external programs tests run, and what happens when one is missing.
//!
//! Under `CI=true` a missing peer is a test failure naming the peer: CI must run everything.
//! Elsewhere the test returns early after a loud `SKIPPED` line on stderr, never silently.
//! `tests/run.sh` installs every peer.

use std::env;
use std::path::{Path, PathBuf};

/// An external program a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Dovecot's master binary (`dovecot-core`; POP3 needs `dovecot-pop3d`).
    Dovecot,
    /// The `openssl` CLI, used to make test certificates and APOP digests.
    Openssl,
    /// curl with POP3 support.
    Curl,
    /// Python 3 with `poplib` and `ssl`.
    Python3,
    /// Python 3 with the `cryptography` package (`python3-cryptography`): a strict DER
    /// parser for certificates.
    PythonCryptography,
    /// fetchmail.
    Fetchmail,
    /// clamd (`clamav-daemon`).
    Clamd,
    /// ripmime, a MIME attachment extractor (`ripmime`): one of the real readers that judge
    /// the evasion corpus after popgate.
    Ripmime,
    /// munpack (`mpack`), another such reader.
    Munpack,
    /// reformime (`maildrop`), another such reader.
    Reformime,
}

impl Peer {
    /// The program's file name.
    pub fn program(self) -> &'static str {
        match self {
            Peer::Dovecot => "dovecot",
            Peer::Openssl => "openssl",
            Peer::Curl => "curl",
            Peer::Python3 | Peer::PythonCryptography => "python3",
            Peer::Fetchmail => "fetchmail",
            Peer::Clamd => "clamd",
            Peer::Ripmime => "ripmime",
            Peer::Munpack => "munpack",
            Peer::Reformime => "reformime",
        }
    }

    /// Where the program is, searching `PATH` and then the sbin directories (which a
    /// non-root `PATH` may lack).
    pub fn path(self) -> Option<PathBuf> {
        let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
        let path_dirs = env::var_os("PATH").map(|p| env::split_paths(&p).collect::<Vec<_>>());
        path_dirs
            .unwrap_or_default()
            .into_iter()
            .chain(extra)
            .map(|dir| dir.join(self.program()))
            .find(|candidate| is_executable(candidate))
    }

    /// Whether the Debian package providing `dovecot-pop3d` is present too.
    fn extra_present(self) -> bool {
        match self {
            Peer::Dovecot => Path::new("/usr/lib/dovecot/pop3").exists(),
            Peer::PythonCryptography => std::process::Command::new("python3")
                .args(["-c", "import cryptography.x509"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success()),
            _ => true,
        }
    }
}

/// Whether `CI=true` is set.
pub fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true")
}

/// True when every peer is present. When one is missing: panics under `CI=true`, else prints
/// a `SKIPPED` line on stderr and returns false. Use [`require_peers!`](crate::require_peers).
///
/// # Panics
/// Under `CI=true`, when a peer is missing.
pub fn available(peers: &[Peer]) -> bool {
    let missing: Vec<&str> = peers
        .iter()
        .filter(|p| p.path().is_none() || !p.extra_present())
        .map(|p| match p {
            Peer::PythonCryptography => "python3-cryptography",
            other => other.program(),
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    crate::skip::present_or_skip(
        false,
        &format!(
            "missing peer(s): {} (install them with tests/run.sh)",
            missing.join(", ")
        ),
    )
}

/// Returns from the calling test when a peer is missing outside CI; fails it under CI.
///
/// ```no_run
/// use popgate_tests::{require_peers, Peer};
///
/// fn curl_downloads_through_popgate() {
///     require_peers!(Peer::Dovecot, Peer::Curl);
///     // ... the test proper
/// }
/// ```
#[macro_export]
macro_rules! require_peers {
    ($($peer:expr),+ $(,)?) => {
        if !$crate::peers::available(&[$($peer),+]) {
            return;
        }
    };
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
