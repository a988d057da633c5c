//! Network namespaces for interception tests: a client — gateway — server [`Topology`],
//! commands and TCP connections inside a namespace, and the shipped firewall rules
//! (`packaging/nftables`, `packaging/iptables`) loaded into the gateway.
//!
//! ```text
//!  client (eth0)  ──veth──  (lan0) gateway (wan0)  ──veth──  (eth0) server
//!  10.1.0.2                 10.1.0.1      10.2.0.1                  10.2.0.2
//!  fd00:1::2                fd00:1::1     fd00:2::1                 fd00:2::2
//! ```
//!
//! Namespace names are unique per test run (`popgate-PID-N-role`), so tests run in
//! parallel; interface names and addresses are the same in every topology because each
//! lives in its own namespaces. Dropping the [`Topology`] deletes the namespaces, which
//! removes their interfaces, routes and rules; drop the daemons started inside first
//! (declare the topology before them). Namespaces left behind by a test process that was
//! killed are removed by the next [`Topology::create`].
//!
//! Daemons run under `ip netns exec` (see `DovecotOptions::placement` and
//! `Popgate::start_in_netns`). Short-lived work (clients, readiness connects) runs on a
//! thread that joined the namespace ([`Netns::enter`]): sockets it opens and processes it
//! spawns belong to that namespace, whatever thread uses them afterwards.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::ports::wait_until;
use crate::process::run_ok;

/// Deadline of one `ip`/`nft`/`iptables` command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Where `ip netns add` keeps the namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Prefix of every namespace a topology creates.
const NAME_PREFIX: &str = "popgate-";

/// The gateway's interface toward the client: the intercepted one (`LAN_IF`).
pub const LAN_IF: &str = "lan0";
/// The gateway's interface toward the server (`RETURN_IF` for spoofed upstreams).
pub const WAN_IF: &str = "wan0";
/// The client's IPv4 address.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
/// The gateway's IPv4 address on the client's side.
pub const GATEWAY_LAN_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// The gateway's IPv4 address on the server's side.
pub const GATEWAY_WAN_V4: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
/// The server's IPv4 address.
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
/// The client's IPv6 address.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2);
/// The gateway's IPv6 address on the client's side.
pub const GATEWAY_LAN_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1);
/// The gateway's IPv6 address on the server's side.
pub const GATEWAY_WAN_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 1);
/// The server's IPv6 address.
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 2);

/// IPv4 or IPv6: which addresses of the topology a test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The client's address.
    pub fn client(self) -> IpAddr {
        self.pick(CLIENT_V4, CLIENT_V6)
    }

    /// The gateway's address on the client's (intercepted) side.
    pub fn gateway_lan(self) -> IpAddr {
        self.pick(GATEWAY_LAN_V4, GATEWAY_LAN_V6)
    }

    /// The gateway's address on the server's side.
    pub fn gateway_wan(self) -> IpAddr {
        self.pick(GATEWAY_WAN_V4, GATEWAY_WAN_V6)
    }

    /// The server's address.
    pub fn server(self) -> IpAddr {
        self.pick(SERVER_V4, SERVER_V6)
    }

    fn pick(self, v4: Ipv4Addr, v6: Ipv6Addr) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(v4),
            Family::V6 => IpAddr::V6(v6),
        }
    }
}

/// What interception tests need from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Root (creating namespaces, loading rules).
    Root,
    /// iproute2's `ip`.
    Ip,
    /// `nft`.
    Nft,
    /// `iptables` and `ip6tables`.
    Iptables,
}

impl Feature {
    fn missing(self) -> Option<&'static str> {
        let present = match self {
            Feature::Root => crate::skip::is_root(),
            Feature::Ip => program("ip").is_some(),
            Feature::Nft => program("nft").is_some(),
            Feature::Iptables => program("iptables").is_some() && program("ip6tables").is_some(),
        };
        (!present).then_some(match self {
            Feature::Root => "root (network namespaces)",
            Feature::Ip => "ip (iproute2)",
            Feature::Nft => "nft (nftables)",
            Feature::Iptables => "iptables/ip6tables",
        })
    }
}

/// True when every feature is present. When one is missing: panics under `CI=true` naming
/// it, else prints a `SKIPPED` line on stderr and returns false. Use
/// [`require_netns!`](crate::require_netns).
///
/// # Panics
/// Under `CI=true`, when a feature is missing.
pub fn available(features: &[Feature]) -> bool {
    let missing: Vec<&str> = features.iter().filter_map(|f| f.missing()).collect();
    if missing.is_empty() {
        return true;
    }
    crate::skip::present_or_skip(
        false,
        &format!(
            "missing feature(s) for interception tests: {}",
            missing.join(", ")
        ),
    )
}

/// Returns from the calling test when a namespace feature is missing outside CI; fails it
/// under CI.
///
/// ```no_run
/// use popgate_tests::netns::Feature;
/// use popgate_tests::require_netns;
///
/// fn tproxy_redirects_the_client() {
///     require_netns!(Feature::Root, Feature::Ip, Feature::Nft);
///     // ... the test proper
/// }
/// ```
#[macro_export]
macro_rules! require_netns {
    ($($feature:expr),+ $(,)?) => {
        if !$crate::netns::available(&[$($feature),+]) {
            return;
        }
    };
}

/// A network namespace created by a [`Topology`].
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program`: add arguments and run it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        netns_command(Some(&self.name), program)
    }

    /// Runs `program args...` inside the namespace and fails unless it succeeds.
    ///
    /// # Errors
    /// A failure or a run past the deadline (with the output).
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        run_ok(self.command(program).args(args), COMMAND_TIMEOUT)
    }

    /// Runs `f` on a thread that joined this namespace and returns its result: sockets `f`
    /// opens and processes it spawns live in the namespace.
    ///
    /// # Errors
    /// When joining the namespace fails. A panic in `f` is resumed on the caller.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        enter(&self.name, f)
    }

    /// Connects to `addr` from inside the namespace.
    ///
    /// # Errors
    /// Joining the namespace failed, or the connect did (refused, timed out).
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
        tcp_connect(Some(&self.name), addr, timeout)
            .with_context(|| format!("connecting to {addr}"))
    }

    /// Loads an nftables file as it is, with the value of each `define NAME = ...` line in
    /// `defines` replaced (every name must be defined by the file).
    ///
    /// # Errors
    /// A name the file does not define, or `nft` failing (with its message).
    pub fn load_nft(&self, file: &Path, defines: &[(&str, &str)]) -> Result<()> {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let text = substitute_defines(&text, defines)
            .with_context(|| format!("substituting the settings of {}", file.display()))?;
        let mut command = self.command("nft");
        command.args(["-f", "-"]);
        run_with_stdin(&mut command, text.as_bytes())
            .with_context(|| format!("loading {}", file.display()))
    }

    /// Runs a shell rule script as it is (`sh FILE ARGS`) with settings in the environment.
    ///
    /// # Errors
    /// The script failing (with its output).
    pub fn run_script(&self, file: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
        let mut command = self.command("sh");
        command.arg(file).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        run_ok(&mut command, COMMAND_TIMEOUT)
            .map(drop)
            .with_context(|| format!("running {}", file.display()))
    }
}

/// Three namespaces, client — gateway — server, joined by veth pairs with IPv4 and IPv6
/// addresses (module docs). The gateway forwards; the client and the server route through
/// it. Deleted on drop.
#[derive(Debug)]
pub struct Topology {
    /// Where the clients run.
    pub client: Netns,
    /// Where popgate and the firewall rules run.
    pub gateway: Netns,
    /// Where the mail server runs.
    pub server: Netns,
}

impl Topology {
    /// Creates the namespaces, links, addresses, routes and the gateway's forwarding.
    ///
    /// # Errors
    /// Any `ip`/`sysctl` command failing (the half-built topology is removed).
    pub fn create() -> Result<Topology> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        remove_stale();
        let tag = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut topology = Topology {
            client: Netns {
                name: String::new(),
            },
            gateway: Netns {
                name: String::new(),
            },
            server: Netns {
                name: String::new(),
            },
        };
        // Fill the names one by one, so a failure removes exactly what was added.
        for (netns, role) in [
            (&mut topology.client, "client"),
            (&mut topology.gateway, "gateway"),
            (&mut topology.server, "server"),
        ] {
            let name = format!("{tag}-{role}");
            ip(&["netns", "add", &name])?;
            netns.name = name;
        }
        topology.wire()?;
        Ok(topology)
    }

    fn wire(&self) -> Result<()> {
        let (c, g, s) = (self.client.name(), self.gateway.name(), self.server.name());
        ip(&[
            "-n", g, "link", "add", LAN_IF, "type", "veth", "peer", "name", "eth0", "netns", c,
        ])?;
        ip(&[
            "-n", g, "link", "add", WAN_IF, "type", "veth", "peer", "name", "eth0", "netns", s,
        ])?;
        let addresses = [
            (
                g,
                LAN_IF,
                GATEWAY_LAN_V4.to_string(),
                GATEWAY_LAN_V6.to_string(),
            ),
            (
                g,
                WAN_IF,
                GATEWAY_WAN_V4.to_string(),
                GATEWAY_WAN_V6.to_string(),
            ),
            (c, "eth0", CLIENT_V4.to_string(), CLIENT_V6.to_string()),
            (s, "eth0", SERVER_V4.to_string(), SERVER_V6.to_string()),
        ];
        for (netns, dev, v4, v6) in &addresses {
            ip(&["-n", netns, "addr", "add", &format!("{v4}/24"), "dev", dev])?;
            // nodad: usable at once, no duplicate address detection to wait for.
            ip(&[
                "-n",
                netns,
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ])?;
            ip(&["-n", netns, "link", "set", dev, "up"])?;
        }
        for netns in [c, g, s] {
            ip(&["-n", netns, "link", "set", "lo", "up"])?;
        }
        for (netns, v4, v6) in [
            (c, GATEWAY_LAN_V4, GATEWAY_LAN_V6),
            (s, GATEWAY_WAN_V4, GATEWAY_WAN_V6),
        ] {
            ip(&[
                "-n",
                netns,
                "route",
                "add",
                "default",
                "via",
                &v4.to_string(),
            ])?;
            ip(&[
                "-n",
                netns,
                "-6",
                "route",
                "add",
                "default",
                "via",
                &v6.to_string(),
            ])?;
        }
        self.gateway.run(
            "sysctl",
            &[
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        Ok(())
    }

    /// The nftables rule file `packaging/nftables/NAME`.
    pub fn nft_file(name: &str) -> PathBuf {
        packaging_dir().join("nftables").join(name)
    }

    /// The iptables rule script `packaging/iptables/NAME`.
    pub fn iptables_file(name: &str) -> PathBuf {
        packaging_dir().join("iptables").join(name)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for netns in [&self.client, &self.gateway, &self.server] {
            if !netns.name.is_empty() {
                let _ = ip(&["netns", "del", &netns.name]);
            }
        }
    }
}

/// Connects to `addr` from namespace `netns` (`None`: this process's namespace).
///
/// # Errors
/// Joining the namespace failed, or the connect did.
pub fn tcp_connect(
    netns: Option<&str>,
    addr: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    match netns {
        None => TcpStream::connect_timeout(&addr, timeout),
        Some(name) => enter(name, || TcpStream::connect_timeout(&addr, timeout))
            .map_err(|e| io::Error::other(format!("{e:#}")))?,
    }
}

/// Waits until a TCP connect to `addr` from namespace `netns` succeeds.
///
/// # Errors
/// When nothing accepts on `addr` within `timeout`.
pub fn wait_for_accept_in(netns: Option<&str>, addr: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    wait_until(&format!("{addr} to accept connections"), timeout, || {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        Ok(tcp_connect(netns, addr, left.min(Duration::from_millis(200))).is_ok())
    })
}

/// `ip netns exec NAME program` for `Some(NAME)`, else plain `program`.
pub fn netns_command(netns: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    match netns {
        None => Command::new(program),
        Some(name) => {
            let mut command = Command::new(program_or("ip"));
            command.args(["netns", "exec", name]).arg(program);
            command
        }
    }
}

/// The repository's `packaging/` directory.
pub fn packaging_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("packaging"), |w| w.join("packaging"))
}

fn enter<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let path = Path::new(NETNS_DIR).join(name);
    let file = fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    std::thread::scope(|scope| {
        let joined = scope
            .spawn(|| {
                // SAFETY: setns(2) on a descriptor we own; it changes only this thread's
                // network namespace, and the thread ends with the scope.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(f())
            })
            .join();
        match joined {
            Ok(result) => result.with_context(|| format!("joining network namespace {name}")),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn ip(args: &[&str]) -> Result<Output> {
    run_ok(Command::new(program_or("ip")).args(args), COMMAND_TIMEOUT)
}

/// Replaces the value of each `define NAME = value` line named in `defines`.
fn substitute_defines(text: &str, defines: &[(&str, &str)]) -> Result<String> {
    let mut found = vec![false; defines.len()];
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let defined = line
            .strip_prefix("define ")
            .and_then(|rest| rest.split_once('='))
            .map(|(name, _)| name.trim());
        match defined.and_then(|name| defines.iter().position(|(n, _)| *n == name)) {
            Some(i) => {
                if found[i] {
                    bail!("{} is defined twice", defines[i].0);
                }
                found[i] = true;
                out.push_str(&format!("define {} = {}", defines[i].0, defines[i].1));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    if let Some(i) = found.iter().position(|f| !f) {
        bail!("the file does not define {}", defines[i].0);
    }
    Ok(out)
}

fn run_with_stdin(command: &mut Command, input: &[u8]) -> Result<()> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let description = format!("{command:?}");
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {description}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .with_context(|| format!("writing to {description}"))?;
    }
    let waited = wait_until(&description, COMMAND_TIMEOUT, || {
        Ok(child.try_wait()?.is_some())
    });
    if waited.is_err() {
        let _ = child.kill();
    }
    let output = child.wait_with_output()?;
    waited?;
    if !output.status.success() {
        bail!(
            "{description} failed with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Deletes `popgate-PID-*` namespaces whose test process no longer exists.
fn remove_stale() {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

fn program(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    path_dirs
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn program_or(name: &str) -> PathBuf {
    program(name).unwrap_or_else(|| PathBuf::from(name))
}

/// Where a daemon of the harness runs when not on loopback: a namespace, its addresses
/// (also the names its test certificate carries) and fixed ports.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The namespace (`ip netns exec`).
    pub netns: String,
    /// The addresses it serves; the first is the one readiness checks connect to.
    pub addresses: Vec<IpAddr>,
    /// The plaintext/STLS port.
    pub pop3_port: u16,
    /// The implicit-TLS port.
    pub pop3s_port: u16,
}

impl Placement {
    /// The server namespace of `topology`, on the server's IPv4 and IPv6 addresses and the
    /// standard ports 110 and 995.
    pub fn server(topology: &Topology) -> Placement {
        Placement {
            netns: topology.server.name().to_owned(),
            addresses: vec![IpAddr::V4(SERVER_V4), IpAddr::V6(SERVER_V6)],
            pop3_port: 110,
            pop3s_port: 995,
        }
    }

    /// `subjectAltName` entries for a test certificate: `localhost` and every address.
    pub fn sans(&self) -> Vec<String> {
        std::iter::once("DNS:localhost".to_owned())
            .chain(self.addresses.iter().map(|ip| format!("IP:{ip}")))
            .collect()
    }
}
