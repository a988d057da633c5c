//! popgate under test: a configuration directory builder and a process guard.
//!
//! [`ConfigDir`] holds the JSON files of SPEC §4 as `serde_json::Value`s keyed by their path
//! in the directory (`popgate.json`, `policies/relay.json`, ...), plus raw files (PKI).
//! [`ConfigDir::relay`] is the standard plaintext relay in front of one upstream; tests
//! change it with [`ConfigDir::set`] (JSON pointer) or add whole files.
//! [`Popgate::start`] writes the directory, runs `popgate run --config DIR` with stdout and
//! stderr captured to a log file, and waits until every listener accepts.
//!
//! The binary is `$POPGATE_BIN`, else `<workspace>/target/debug/popgate`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::pki::TestPki;
use crate::ports::{free_port, wait_until};
use crate::process::{run_with_timeout, ChildGuard};

/// The standard relay policy's file.
pub const RELAY_POLICY: &str = "policies/relay.json";
/// The standard relay action's file.
pub const RELAY_ACTION: &str = "actions/relay.json";
/// The standard TLS profile's file.
pub const STANDARD_PROFILE: &str = "tls-profiles/standard.json";

/// How long popgate gets to bind its listeners.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// What popgate logs once every listener is bound and the privileges are dropped.
const RUNNING: &str = "popgate running";
/// How long `popgate stop` waits after SIGTERM (above the configured drain grace).
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
/// Deadline of a CLI command such as `popgate check`.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// A popgate configuration directory, built in memory and written by [`ConfigDir::write`].
#[derive(Clone, Debug, Default)]
pub struct ConfigDir {
    json: BTreeMap<String, Value>,
    raw: BTreeMap<String, Vec<u8>>,
    /// The account the key files are given to, as an administrator does for the `user`
    /// popgate runs as (`None`: they stay with whoever writes them).
    key_owner: Option<String>,
}

impl ConfigDir {
    /// An empty directory (no `popgate.json`).
    pub fn empty() -> ConfigDir {
        ConfigDir::default()
    }

    /// The standard relay: explicit proxy (`interception: none`) on 127.0.0.1, policy
    /// `relay` (`tls_support: disabled`, a free `pop3` port) in front of `upstream`
    /// (`"host:port"`), action `Relay` (TLS `allow`, no TLS required for login), profile
    /// `TLS-Client.Standard`; JSON logs at debug level.
    pub fn relay(upstream: impl ToString) -> ConfigDir {
        ConfigDir::empty()
            .json(
                "popgate.json",
                json!({
                    "interception": "none",
                    "bind_addresses": ["127.0.0.1"],
                    "user": "root",
                    "group": "root",
                    "log": { "format": "json", "level": "debug" }
                }),
            )
            .json(
                RELAY_POLICY,
                json!({
                    "name": "relay",
                    "enabled": true,
                    "order": 10,
                    "direction": "inbound",
                    "from": ["any"],
                    "to": ["any"],
                    "tls_support": "disabled",
                    "ports": { "pop3": free_port() },
                    "upstream": upstream.to_string(),
                    "proxy_action": "Relay"
                }),
            )
            .json(
                RELAY_ACTION,
                json!({
                    "name": "Relay",
                    "authentication": { "require_tls": false },
                    "tls": { "action": "allow", "profile": "TLS-Client.Standard" }
                }),
            )
            .json(STANDARD_PROFILE, standard_tls_profile())
    }

    /// Gives the key files to `user` when written (`chown`), as an administrator does so that
    /// popgate, once it runs as `user`, can still read them on a reload.
    #[must_use]
    pub fn keys_owned_by(mut self, user: &str) -> ConfigDir {
        self.key_owner = Some(user.to_owned());
        self
    }

    /// Points `state_dir` (spool, quarantine) at `dir` unless the configuration sets it or
    /// makes `popgate.json` something else than an object: tests never write to
    /// `/var/lib/popgate`.
    #[must_use]
    pub fn with_state_dir(mut self, dir: &Path) -> ConfigDir {
        if self.raw.contains_key("popgate.json") {
            return self;
        }
        let global = self
            .json
            .entry("popgate.json".to_owned())
            .or_insert_with(|| json!({}));
        if let Some(object) = global.as_object_mut() {
            object
                .entry("state_dir")
                .or_insert_with(|| json!(dir.to_string_lossy()));
        }
        self
    }

    /// Sets a whole JSON file (`file` is relative to the directory).
    #[must_use]
    pub fn json(mut self, file: &str, value: Value) -> ConfigDir {
        self.json.insert(file.to_owned(), value);
        self
    }

    /// Sets a raw file (PEM, or deliberately broken JSON).
    #[must_use]
    pub fn raw(mut self, file: &str, bytes: impl Into<Vec<u8>>) -> ConfigDir {
        self.raw.insert(file.to_owned(), bytes.into());
        self
    }

    /// Sets the value at JSON `pointer` (`/ports/pop3s`) in `file`, creating objects on the
    /// way.
    ///
    /// # Panics
    /// When `file` does not exist or the pointer crosses a non-object.
    #[must_use]
    pub fn set(mut self, file: &str, pointer: &str, value: Value) -> ConfigDir {
        let mut node = self
            .json
            .get_mut(file)
            .unwrap_or_else(|| panic!("no file {file}"));
        let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        let (last, path) = keys.split_last().expect("empty JSON pointer");
        for key in path {
            node = node
                .as_object_mut()
                .unwrap_or_else(|| panic!("{file}: {pointer} crosses a non-object"))
                .entry(*key)
                .or_insert_with(|| json!({}));
        }
        node.as_object_mut()
            .unwrap_or_else(|| panic!("{file}: {pointer} crosses a non-object"))
            .insert((*last).to_owned(), value);
        self
    }

    /// Removes the value at JSON `pointer` in `file` (no-op when absent).
    #[must_use]
    pub fn remove(mut self, file: &str, pointer: &str) -> ConfigDir {
        let (parent, last) = pointer
            .rsplit_once('/')
            .expect("JSON pointer starts with /");
        if let Some(Value::Object(map)) =
            self.json.get_mut(file).and_then(|v| v.pointer_mut(parent))
        {
            map.remove(last);
        }
        self
    }

    /// Moves `from` to `to` (e.g. to test error messages that name the file).
    ///
    /// # Panics
    /// When `from` does not exist.
    #[must_use]
    pub fn rename(mut self, from: &str, to: &str) -> ConfigDir {
        let value = self
            .json
            .remove(from)
            .unwrap_or_else(|| panic!("no file {from}"));
        self.json.insert(to.to_owned(), value);
        self
    }

    /// Sets a policy's TLS support mode and gives it the ports the mode listens on (a free
    /// `pop3s` port for `enabled`/`required`; `required` drops `pop3`).
    #[must_use]
    pub fn tls_support(self, policy_file: &str, mode: &str) -> ConfigDir {
        let existing = |key: &str| {
            self.value(policy_file, &format!("/ports/{key}"))
                .and_then(Value::as_u64)
        };
        let pop3 = existing("pop3").unwrap_or_else(|| free_port().into());
        let pop3s = existing("pop3s").unwrap_or_else(|| free_port().into());
        let ports = match mode {
            "disabled" => json!({ "pop3": pop3 }),
            "required" => json!({ "pop3s": pop3s }),
            _ => json!({ "pop3": pop3, "pop3s": pop3s }),
        };
        self.set(policy_file, "/tls_support", json!(mode))
            .set(policy_file, "/ports", ports)
    }

    /// Copies a PKI into `pki/` as the Proxy Authority (`ca.*`) and Proxy Server
    /// (`server.*`) files, with an untrusted CA (`untrusted-ca.*`, made by `popgate ca
    /// init`) for the `mirror-untrusted` profiles that popgate refuses to run without.
    ///
    /// # Errors
    /// When a PKI file cannot be read, or `popgate ca init` fails.
    pub fn with_pki(self, pki: &TestPki) -> Result<ConfigDir> {
        let read = |p: &Path| fs::read(p).with_context(|| format!("reading {}", p.display()));
        let mut config = self
            .raw("pki/ca.crt", read(&pki.ca_cert)?)
            .raw("pki/ca.key", read(&pki.ca_key)?)
            .raw("pki/server.crt", read(&pki.server_cert)?)
            .raw("pki/server.key", read(&pki.server_key)?);
        for (file, bytes) in ca_init_files()? {
            if file.starts_with("pki/untrusted-ca.") {
                config = config.raw(&file, bytes);
            }
        }
        Ok(config)
    }

    /// Adds a Proxy Authority and an untrusted CA made by `popgate ca init` (the `ca` crate),
    /// as `pki/ca.*` and `pki/untrusted-ca.*` (replacing a [`ConfigDir::with_pki`] CA).
    ///
    /// # Errors
    /// When `popgate ca init` fails or its files cannot be read.
    pub fn with_proxy_authority(mut self) -> Result<ConfigDir> {
        for (file, bytes) in ca_init_files()? {
            self = self.raw(&file, bytes);
        }
        Ok(self)
    }

    /// Adds an empty `popgate.json` when there is none.
    #[must_use]
    pub fn ensure_global(mut self) -> ConfigDir {
        self.json
            .entry("popgate.json".to_owned())
            .or_insert_with(|| json!({}));
        self
    }

    /// A raw file set with [`ConfigDir::raw`] (a PKI file, for a client to trust).
    pub fn raw_file(&self, file: &str) -> Option<&[u8]> {
        self.raw.get(file).map(Vec::as_slice)
    }

    /// The value at `pointer` in `file`.
    pub fn value(&self, file: &str, pointer: &str) -> Option<&Value> {
        self.json.get(file)?.pointer(pointer)
    }

    /// Addresses popgate will listen on: every enabled policy's ports on every bind address.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let binds: Vec<IpAddr> = self
            .value("popgate.json", "/bind_addresses")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
            .unwrap_or_else(|| vec![IpAddr::from([127, 0, 0, 1])]);
        let mut addrs = Vec::new();
        for (file, policy) in &self.json {
            if !file.starts_with("policies/") || policy["enabled"] == json!(false) {
                continue;
            }
            let ports = policy["ports"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values());
            for port in ports
                .filter_map(Value::as_u64)
                .filter_map(|p| u16::try_from(p).ok())
            {
                addrs.extend(binds.iter().map(|ip| SocketAddr::new(*ip, port)));
            }
        }
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// Writes every file under `dir` (keys get mode 0600).
    ///
    /// # Errors
    /// I/O failures.
    pub fn write(&self, dir: &Path) -> Result<()> {
        for sub in ["policies", "actions", "tls-profiles"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let files = self
            .json
            .iter()
            .map(|(f, v)| (f, serde_json::to_vec_pretty(v)));
        for (file, bytes) in files {
            write_file(&dir.join(file), &bytes?)?;
        }
        for (file, bytes) in &self.raw {
            let path = dir.join(file);
            write_file(&path, bytes)?;
            if file.ends_with(".key") {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
                if let Some(owner) = &self.key_owner {
                    let status = std::process::Command::new("chown")
                        .arg(owner)
                        .arg(&path)
                        .status()?;
                    anyhow::ensure!(status.success(), "chown {owner} {}", path.display());
                }
            }
        }
        Ok(())
    }
}

/// The TLS profile of SPEC §4, trusting the system roots only.
pub fn standard_tls_profile() -> Value {
    json!({
        "name": "TLS-Client.Standard",
        "min_version": "1.2",
        "upstream_tls": "match",
        "certificate_validation": "full",
        "invalid_certificate": "mirror-untrusted",
        "trust": { "system_roots": true, "ca_files": [] },
        "force_encrypt": [],
        "require_client_tls": [],
        "require_client_tls_except": [],
        "tls_failure_holddown_s": 300
    })
}

/// The relay action (`Relay`) with the SPEC §4 example content rules: `application/x-msdownload`,
/// `*.exe` and `*.scr` stripped, `X-Spam-Flag: YES` tagged, `unparseable` at its default
/// (quarantine). Streamable: no rule needs the whole message.
pub fn spec_rules_action() -> Value {
    json!({
        "name": "Relay",
        "authentication": { "require_tls": false },
        "content_types": { "default": "allow",
            "rules": [ { "match": "application/x-msdownload", "action": "strip" } ] },
        "file_names": { "default": "allow",
            "rules": [ { "match": "*.exe", "action": "strip" }, { "match": "*.scr", "action": "strip" } ] },
        "headers": { "rules": [ { "match": "X-Spam-Flag: YES", "action": "tag" } ] },
        "tls": { "action": "allow", "profile": "TLS-Client.Standard" }
    })
}

/// A running `popgate run`; SIGTERMed (then SIGKILLed) on drop.
#[derive(Debug)]
pub struct Popgate {
    // Field order matters: the process stops before its directory is removed.
    child: ChildGuard,
    dir: TempDir,
    config: ConfigDir,
}

impl Popgate {
    /// Writes `config` to a temp dir, starts `popgate run --config DIR` and waits until every
    /// listener of [`ConfigDir::listen_addrs`] accepts: until popgate logs that it runs, so
    /// that no connection of the harness's own is counted as a session; or, when the log
    /// level hides that line, until a connect to each listener succeeds.
    ///
    /// # Errors
    /// Missing binary, or popgate exiting or not listening within 10 s (with its log).
    pub fn start(config: ConfigDir) -> Result<Popgate> {
        Popgate::start_with(config, None)
    }

    /// Like [`Popgate::start`], inside network namespace `netns` (`ip netns exec`); the
    /// readiness connects are made from inside it too.
    ///
    /// # Errors
    /// As [`Popgate::start`].
    pub fn start_in_netns(config: ConfigDir, netns: &str) -> Result<Popgate> {
        Popgate::start_with(config, Some(netns))
    }

    /// Like [`Popgate::start`] with another binary than [`popgate_bin`] (benches compare
    /// builds). A build that rejects the temporary `state_dir` and control socket as
    /// unknown fields (an earlier one) is started without them; any other build gets them,
    /// so that it never writes to the system's `/var/lib/popgate` (a spool left there as
    /// root broke the packaging test's ownership check).
    ///
    /// # Errors
    /// As [`Popgate::start`].
    pub fn start_binary(config: ConfigDir, binary: &Path) -> Result<Popgate> {
        match Popgate::launch(config.clone(), None, binary.to_owned(), true) {
            Err(err) if format!("{err:#}").contains("unknown field") => {
                Popgate::launch(config, None, binary.to_owned(), false)
            }
            started => started,
        }
    }

    fn start_with(config: ConfigDir, netns: Option<&str>) -> Result<Popgate> {
        Popgate::launch(config, netns, popgate_bin()?, true)
    }

    fn launch(
        config: ConfigDir,
        netns: Option<&str>,
        binary: PathBuf,
        runtime_dirs: bool,
    ) -> Result<Popgate> {
        let dir = tempfile::Builder::new().prefix("popgate-run-").tempdir()?;
        // Traversable by anyone, so that a popgate switching to an unprivileged `user`
        // still reaches its configuration (the files themselves keep their modes).
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711))?;
        }
        let config_dir = dir.path().join("config");
        let mut config = config;
        if runtime_dirs {
            config = config.with_state_dir(&dir.path().join("state"));
            // Each daemon its own control socket, unless the test set one: tests run in
            // parallel, and the default is a system path.
            if config.value("popgate.json", "/control/socket").is_none() {
                let socket = dir.path().join("control.sock");
                config =
                    config
                        .ensure_global()
                        .set("popgate.json", "/control/socket", json!(socket));
            }
        }
        config.write(&config_dir)?;
        let log = fs::File::create(dir.path().join("popgate.log"))?;
        let child = ChildGuard::spawn(
            crate::netns::netns_command(netns, binary)
                .arg("run")
                .arg("--config")
                .arg(&config_dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
            "popgate",
        )?;
        let mut popgate = Popgate { child, dir, config };
        let addrs = popgate.config.listen_addrs();
        if addrs.is_empty() {
            bail!("the configuration enables no listener");
        }
        // A connect probe would be a session of its own, still running (and connecting
        // upstream) when the test starts counting; the log line comes after every listener
        // is bound, so nothing connects when popgate logs at info.
        let says_running = popgate.logs_running();
        let ready = wait_until("popgate to accept on every listener", READY_TIMEOUT, || {
            if let Some(status) = popgate.child.exited()? {
                bail!("popgate exited early with {status}");
            }
            if says_running {
                return Ok(popgate.log_text().contains(RUNNING));
            }
            Ok(addrs
                .iter()
                .all(|a| crate::netns::tcp_connect(netns, *a, Duration::from_millis(200)).is_ok()))
        });
        if let Err(e) = ready {
            bail!(
                "{e:#}\n--- popgate log ---\n{}--- end of popgate log ---",
                popgate.log_text()
            );
        }
        Ok(popgate)
    }

    /// Whether the configured log level lets popgate's [`RUNNING`] line through (`RUST_LOG`,
    /// which popgate obeys before its configuration, might not).
    fn logs_running(&self) -> bool {
        if std::env::var_os("RUST_LOG").is_some() {
            return false;
        }
        let level = self
            .config
            .value("popgate.json", "/log/level")
            .and_then(Value::as_str)
            .unwrap_or("info");
        matches!(level, "info" | "debug" | "trace")
    }

    /// The `pop3` listener of the standard relay policy.
    pub fn pop3_addr(&self) -> SocketAddr {
        self.listener(RELAY_POLICY, "pop3")
    }

    /// The `pop3s` listener of the standard relay policy.
    pub fn pop3s_addr(&self) -> SocketAddr {
        self.listener(RELAY_POLICY, "pop3s")
    }

    /// The listener for `ports.<key>` of `policy_file` on the first bind address.
    ///
    /// # Panics
    /// When the policy has no such port.
    pub fn listener(&self, policy_file: &str, key: &str) -> SocketAddr {
        let port = self
            .config
            .value(policy_file, &format!("/ports/{key}"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("{policy_file} has no ports.{key}"));
        let ip = self
            .config
            .value("popgate.json", "/bind_addresses/0")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        SocketAddr::new(ip, port)
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &ConfigDir {
        &self.config
    }

    /// The configuration directory on disk (edit files here to test reloads).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Everything popgate printed so far (stdout and stderr).
    pub fn log_text(&self) -> String {
        let bytes = fs::read(self.dir.path().join("popgate.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the log contains `needle`.
    ///
    /// # Errors
    /// When it does not within `timeout` (the error carries the log).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_for_log_count(needle, 1, timeout)
    }

    /// Waits until the log contains `needle` at least `count` times: lines reach the log
    /// from popgate's writer thread, after the client may already have seen the event.
    ///
    /// # Errors
    /// When it does not within `timeout` (the error carries the log).
    pub fn wait_for_log_count(&self, needle: &str, count: usize, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("{count} × {needle:?} in popgate's log"),
            timeout,
            || Ok(self.log_text().matches(needle).count() >= count),
        )
        .map_err(|e| anyhow::anyhow!("{e:#}\n--- popgate log ---\n{}", self.log_text()))
    }

    /// The control socket this daemon serves (`popgate.json` → `control.socket`).
    pub fn control_socket(&self) -> PathBuf {
        self.config
            .value("popgate.json", "/control/socket")
            .and_then(Value::as_str)
            .map_or_else(|| self.dir.path().join("control.sock"), PathBuf::from)
    }

    /// The state directory (`popgate.json` → `state_dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.config
            .value("popgate.json", "/state_dir")
            .and_then(Value::as_str)
            .map_or_else(|| self.dir.path().join("state"), PathBuf::from)
    }

    /// Runs `popgate ARGS --config DIR` against this daemon's directory.
    ///
    /// # Errors
    /// Missing binary or a run past the deadline.
    pub fn cli<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        all.push("--config".into());
        all.push(self.config_dir().into());
        popgate_cli(all)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Current resident set size (VmRSS) in KiB.
    ///
    /// # Errors
    /// When `/proc/PID/status` cannot be read.
    pub fn rss_kib(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmRSS")
    }

    /// Peak resident set size (VmHWM) in KiB.
    ///
    /// # Errors
    /// When `/proc/PID/status` cannot be read.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmHWM")
    }

    /// CPU time (user + system) popgate has used so far, in seconds (`/proc/PID/stat`).
    ///
    /// # Errors
    /// When `/proc/PID/stat` cannot be read or parsed.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the parenthesised command name; utime and stime are fields 14, 15.
        let after_name = stat.rsplit_once(')').context("malformed stat")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields.get(11).context("no utime")?.parse::<u64>()?
            + fields.get(12).context("no stime")?.parse::<u64>()?;
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Ok(ticks as f64 / per_second.max(1) as f64)
    }

    /// Resets the peak (VmHWM) to the current RSS (`echo 5 > /proc/PID/clear_refs`), so a
    /// later [`Popgate::peak_rss_kib`] measures only what happens after this call.
    ///
    /// # Errors
    /// When the write fails (needs the same user as popgate, or root).
    pub fn reset_peak_rss(&self) -> Result<()> {
        let path = format!("/proc/{}/clear_refs", self.pid());
        fs::write(&path, "5").with_context(|| format!("writing {path}"))
    }

    /// Sends a signal (`libc::SIGHUP`, ...).
    ///
    /// # Errors
    /// When popgate has exited.
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        self.child.signal(signal)
    }

    /// Whether popgate has exited, and how.
    ///
    /// # Errors
    /// When polling the process fails.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child.exited()
    }

    /// SIGTERM and wait for the exit (the log is complete afterwards).
    ///
    /// # Errors
    /// When popgate does not exit within the drain grace plus a margin.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.child.terminate(STOP_TIMEOUT)
    }
}

/// The popgate binary: `$POPGATE_BIN`, else `<workspace>/target/debug/popgate`.
///
/// # Errors
/// When the file does not exist (with a hint to build it).
pub fn popgate_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("POPGATE_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .context("tests/ has no parent directory")?;
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace.join("target"), PathBuf::from);
            target.join("debug").join("popgate")
        }
    };
    if !path.is_file() {
        bail!(
            "popgate binary not found at {} (build it with `cargo build -p popgate`, or set \
             POPGATE_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// The four files `popgate ca init` writes, as `(pki/NAME, bytes)`.
fn ca_init_files() -> Result<Vec<(String, Vec<u8>)>> {
    let dir = tempfile::tempdir()?;
    let output = popgate_cli([
        OsStr::new("ca"),
        OsStr::new("init"),
        OsStr::new("--config"),
        dir.path().as_os_str(),
    ])?;
    if !output.status.success() {
        bail!(
            "popgate ca init failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    ["ca.crt", "ca.key", "untrusted-ca.crt", "untrusted-ca.key"]
        .into_iter()
        .map(|file| {
            let path = dir.path().join("pki").join(file);
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok((format!("pki/{file}"), bytes))
        })
        .collect()
}

/// Runs a popgate CLI command (`["check", "--config", DIR]`) to completion.
///
/// # Errors
/// Missing binary or a run past the deadline.
pub fn popgate_cli<I, S>(args: I) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_with_timeout(Command::new(popgate_bin()?).args(args), CLI_TIMEOUT)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    let value = line
        .split_whitespace()
        .nth(1)
        .context("malformed status line")?;
    Ok(value.parse()?)
}
