//! The administrator commands of SPEC §6 (`policy`, `action`, `ca`, `cert`) as tests run
//! them: one call that runs a command against a configuration directory and keeps its exit
//! code and output as text, a configuration with two policies sharing one action, and the
//! organisation CA's side of `ca csr` (signing the request with the `openssl` CLI).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::pki::TestPki;
use crate::popgate::{popgate_cli, ConfigDir};
use crate::process::run_ok;

const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// File of the first policy of [`ConfigDir::shared_action`].
pub const OUT_POLICY: &str = "policies/out.json";
/// File of the second policy using the same action.
pub const GUEST_POLICY: &str = "policies/guest.json";
/// File of the policy using the other action.
pub const INBOUND_POLICY: &str = "policies/inbound.json";

/// What a finished command returned.
#[derive(Debug, Clone)]
pub struct CliRun {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, raw.
    pub stdout_bytes: Vec<u8>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CliRun {
    fn from_output(output: Output) -> CliRun {
        CliRun {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            stdout_bytes: output.stdout,
        }
    }

    /// Standard output parsed as JSON.
    ///
    /// # Panics
    /// When it is not JSON (the message shows both outputs).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code, showing both outputs when it differs.
    ///
    /// # Panics
    /// When the exit code is not `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &CliRun {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:#?}");
        self
    }
}

/// Runs `popgate ARGS --config DIR`.
///
/// # Panics
/// When the binary is missing or the command hangs (a test failure either way).
pub fn popgate_admin(dir: &Path, args: &[&str]) -> CliRun {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.push("--config".as_ref());
    all.push(dir.as_os_str());
    CliRun::from_output(popgate_cli(all).expect("running popgate"))
}

impl ConfigDir {
    /// Three policies: `POP3-proxy-out` (order 10, `enabled`) and `guest` (order 20,
    /// disabled, `required`) share action `POP3-Client.Standard`; `inbound-mx` (order 30,
    /// `disabled`) uses action `Relay`. Transparent interception (no upstreams needed),
    /// fixed ports (nothing listens: only the CLI reads this directory).
    pub fn shared_action() -> ConfigDir {
        ConfigDir::empty()
            .json(
                OUT_POLICY,
                json!({
                    "name": "POP3-proxy-out",
                    "enabled": true,
                    "order": 10,
                    "direction": "outbound",
                    "from": ["10.0.0.0/8", "192.168.1.*"],
                    "to": ["any"],
                    "tls_support": "enabled",
                    "ports": { "pop3": 110, "pop3s": 995 },
                    "upstream": null,
                    "proxy_action": "POP3-Client.Standard"
                }),
            )
            .json(
                GUEST_POLICY,
                json!({
                    "name": "guest",
                    "enabled": false,
                    "order": 20,
                    "direction": "outbound",
                    "from": ["172.16.0.0/12"],
                    "to": ["any"],
                    "tls_support": "required",
                    "ports": { "pop3s": 1995 },
                    "proxy_action": "POP3-Client.Standard"
                }),
            )
            .json(
                INBOUND_POLICY,
                json!({
                    "name": "inbound-mx",
                    "order": 30,
                    "direction": "inbound",
                    "from": ["any"],
                    "to": ["192.0.2.25"],
                    "tls_support": "disabled",
                    "ports": { "pop3": 2110 },
                    "proxy_action": "Relay"
                }),
            )
            .json(
                "actions/standard.json",
                json!({
                    "name": "POP3-Client.Standard",
                    "tls": { "action": "inspect", "profile": "TLS-Client.Standard" }
                }),
            )
            .json(
                "actions/relay.json",
                json!({ "name": "Relay", "tls": { "action": "allow" } }),
            )
    }
}

/// Plays the organisation CA of `ca csr`: signs `request` with `org`'s CA as a CA
/// certificate (basicConstraints CA:TRUE, keyUsage keyCertSign) and writes it to `out`.
///
/// # Errors
/// When `openssl` fails.
pub fn sign_ca_request(org: &TestPki, request: &Path, out: &Path) -> Result<()> {
    let ext = out.with_extension("ext");
    fs::write(
        &ext,
        "basicConstraints=critical,CA:TRUE,pathlen:0\n\
         keyUsage=critical,keyCertSign,cRLSign\n",
    )
    .with_context(|| format!("writing {}", ext.display()))?;
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "365", "-set_serial", "7"])
            .arg("-in")
            .arg(request)
            .arg("-CA")
            .arg(&org.ca_cert)
            .arg("-CAkey")
            .arg(&org.ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(out),
        OPENSSL_TIMEOUT,
    )?;
    Ok(())
}

/// The permission bits of `path`.
///
/// # Panics
/// When `path` does not exist.
pub fn file_mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}
