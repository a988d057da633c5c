//! Packaging (`packaging/`, `[package.metadata.deb]` in proxy/Cargo.toml): the systemd unit
//! passes `systemd-analyze verify`, and the Debian package builds with `cargo deb`, installs
//! with `dpkg -i` on this machine (user `popgate`, private pki/ and
//! /var/lib/popgate/{quarantine,spool}/, the example configuration as conffiles), validates
//! with `popgate check` (also as the service user), runs under the unit's privilege model,
//! and goes away again with `dpkg -r` and `--purge`.
//!
//! Tools: `systemd-analyze` (package `systemd`), `cargo-deb` (`cargo install cargo-deb
//! --locked`), `dpkg`, `setpriv`/`runuser` (util-linux); `tests/run.sh` installs the first
//! two. As with peers, a missing tool skips the test loudly, or fails it under `CI=true`.
//!
//! The package test changes the machine: it needs root, and it purges an installed
//! `popgate` package first (a leftover of an interrupted run) and after itself. It refuses
//! to touch an `/etc/popgate` that no package owns.

use std::env;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use popgate_tests::peers::in_ci;
use popgate_tests::popgate::popgate_bin;
use popgate_tests::process::{run_ok, run_with_timeout, ChildGuard};
use popgate_tests::{free_port, wait_for_accept, ConfigDir, Popgate};
use serde_json::{json, Value};

/// `cargo deb` builds popgate in release mode: minutes on a cold target directory.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
/// dpkg, systemd-analyze, popgate check.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long popgate gets to bind its listeners.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The package's conffiles: the example configuration of SPEC §4.
const CONFFILES: [&str; 5] = [
    "/etc/popgate/popgate.json",
    "/etc/popgate/policies/pop3-outbound.json",
    "/etc/popgate/policies/pop3-inbound.json",
    "/etc/popgate/actions/pop3-client-standard.json",
    "/etc/popgate/tls-profiles/tls-client-standard.json",
];

#[test]
fn unit_file_passes_systemd_analyze_verify_and_security_review() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let unit = fs::read_to_string(packaging_dir().join("popgate.service")).unwrap();
    for line in [
        "Type=exec",
        "User=popgate",
        "ExecStart=/usr/bin/popgate run --config /etc/popgate",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadOnlyPaths=/etc/popgate",
        "StateDirectory=popgate",
        "RuntimeDirectory=popgate",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=45",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "popgate.service lacks {line:?}"
        );
    }
    // verify insists that ExecStart's program exists: check a copy that runs the popgate
    // built for these tests (the installed unit is verified as is by the package test).
    let binary = popgate_bin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("popgate.service");
    fs::write(
        &copy,
        unit.replace("/usr/bin/popgate", binary.to_str().unwrap()),
    )
    .unwrap();
    verify_unit(&analyze, &copy);

    let output = run_ok(
        Command::new(&analyze)
            .args(["security", "--offline=yes"])
            .arg(&copy),
        TOOL_TIMEOUT,
    )
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for popgate.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in\n{report}"));
    assert!(
        exposure <= 2.5,
        "exposure {exposure} (want <= 2.5):\n{report}"
    );
}

#[test]
fn deb_builds_installs_checks_runs_and_purges() {
    let Some(cargo_deb) = tool("cargo-deb") else {
        return;
    };
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let (Some(_), Some(_), Some(_)) = (tool("dpkg"), tool("setpriv"), tool("runuser")) else {
        return;
    };
    if !is_root() {
        let message = "deb_builds_installs_checks_runs_and_purges: needs root (dpkg -i)";
        assert!(!in_ci(), "CI=true and {message}");
        eprintln!("SKIPPED {message}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let deb = build_deb(&cargo_deb, out.path());
    let contents = String::from_utf8(
        run_ok(
            Command::new("dpkg-deb").arg("--contents").arg(&deb),
            TOOL_TIMEOUT,
        )
        .unwrap()
        .stdout,
    )
    .unwrap();
    for path in [
        "./usr/bin/popgate",
        "./lib/systemd/system/popgate.service",
        "./usr/share/doc/popgate/README.Debian",
        "./usr/share/popgate/nftables/popgate-tproxy.nft",
        "./usr/share/popgate/iptables/popgate-tproxy.sh",
        "./usr/share/man/man8/popgate.8",
        "./usr/share/man/man8/popgate-quarantine.8",
        "./usr/share/man/man5/popgate.json.5",
        "./usr/share/bash-completion/completions/popgate",
        "./usr/share/zsh/vendor-completions/_popgate",
        "./usr/share/fish/vendor_completions.d/popgate.fish",
    ] {
        assert!(
            contents.contains(path),
            "{path} missing from the package:\n{contents}"
        );
    }

    let installed = Installed::install(&deb);
    let conffiles = dpkg_query("${Conffiles}");
    for file in CONFFILES {
        assert!(
            conffiles.contains(file),
            "{file} is not a conffile: {conffiles}"
        );
    }
    assert_example_configuration();
    let uid = account_id("passwd", "popgate");
    let gid = account_id("group", "popgate");
    for dir in [
        "/etc/popgate/pki",
        "/var/lib/popgate/quarantine",
        "/var/lib/popgate/spool",
    ] {
        let meta = fs::metadata(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700, "{dir}");
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{dir} owner");
    }

    run_ok(
        Command::new("/usr/bin/popgate").args(["check", "--config", "/etc/popgate"]),
        TOOL_TIMEOUT,
    )
    .unwrap();
    // The service user can read the whole configuration it is shipped with.
    run_ok(
        Command::new("runuser").args([
            "-u",
            "popgate",
            "--",
            "/usr/bin/popgate",
            "check",
            "--config",
            "/etc/popgate",
        ]),
        TOOL_TIMEOUT,
    )
    .unwrap();
    verify_unit(&analyze, Path::new("/lib/systemd/system/popgate.service"));
    runs_under_the_units_privileges();

    installed.remove();
    assert!(
        !Path::new("/usr/bin/popgate").exists(),
        "binary left after dpkg -r"
    );
    assert!(
        Path::new(CONFFILES[0]).exists(),
        "dpkg -r must keep the configuration until purge"
    );
    assert_eq!(dpkg_query("${db:Status-Abbrev}").trim(), "rc");
    installed.purge();
    assert!(
        !Path::new("/etc/popgate").exists(),
        "/etc/popgate left after purge"
    );
    assert!(!Path::new("/lib/systemd/system/popgate.service").exists());
    let status = Command::new("dpkg")
        .args(["-s", "popgate"])
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "popgate still known to dpkg after purge"
    );
}

/// The installed package, purged on drop if the test did not get that far.
struct Installed {
    purged: bool,
}

impl Installed {
    fn install(deb: &Path) -> Installed {
        if Path::new("/etc/popgate").exists() && !dpkg_owns("/etc/popgate") {
            panic!("/etc/popgate exists and no package owns it; not overwriting it");
        }
        // A leftover of an interrupted run.
        purge_package();
        let installed = Installed { purged: false };
        run_ok(Command::new("dpkg").arg("-i").arg(deb), TOOL_TIMEOUT).unwrap();
        installed
    }

    fn remove(&self) {
        run_ok(Command::new("dpkg").args(["-r", "popgate"]), TOOL_TIMEOUT).unwrap();
    }

    fn purge(mut self) {
        run_ok(
            Command::new("dpkg").args(["--purge", "popgate"]),
            TOOL_TIMEOUT,
        )
        .unwrap();
        self.purged = true;
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            purge_package();
        }
    }
}

fn purge_package() {
    let _ = run_with_timeout(
        Command::new("dpkg").args(["--purge", "popgate"]),
        TOOL_TIMEOUT,
    );
}

/// `cargo deb -p popgate` into `out`; returns the .deb.
fn build_deb(cargo_deb: &Path, out: &Path) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["deb", "-p", "popgate", "--output"])
        .arg(out)
        .current_dir(workspace_dir());
    // `cargo deb` finds its subcommand next to cargo-deb's own directory.
    let tool_dir = cargo_deb.parent().unwrap().to_path_buf();
    let path = env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(tool_dir).chain(env::split_paths(&path));
    command.env("PATH", env::join_paths(paths).unwrap());
    // Package-specific variables of this test binary must not leak into the nested build.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_CRATE_")
            || key.starts_with("CARGO_BIN_")
            || key == "CARGO_MANIFEST_DIR"
            || key == "CARGO_MANIFEST_PATH"
            || key == "CARGO_PRIMARY_PACKAGE"
        {
            command.env_remove(key);
        }
    }
    run_ok(&mut command, BUILD_TIMEOUT).unwrap();
    let debs: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "cargo deb wrote {debs:?}");
    debs.into_iter().next().unwrap()
}

/// The shipped example: both policies disabled and sharing one action, which uses the one
/// shipped TLS profile; no comment fields (SPEC: unknown fields are errors).
fn assert_example_configuration() {
    let read = |file: &str| -> Value {
        serde_json::from_slice(&fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}")))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let outbound = read("/etc/popgate/policies/pop3-outbound.json");
    let inbound = read("/etc/popgate/policies/pop3-inbound.json");
    let action = read("/etc/popgate/actions/pop3-client-standard.json");
    let profile = read("/etc/popgate/tls-profiles/tls-client-standard.json");
    assert_eq!(outbound["direction"], json!("outbound"));
    assert_eq!(inbound["direction"], json!("inbound"));
    for policy in [&outbound, &inbound] {
        assert_eq!(policy["enabled"], json!(false), "{policy}");
        assert_eq!(policy["proxy_action"], action["name"], "{policy}");
    }
    assert_eq!(action["tls"]["profile"], profile["name"]);
    for file in CONFFILES {
        let text = fs::read_to_string(file).unwrap();
        assert!(!text.contains("comment"), "{file} carries a comment field");
    }
}

/// Starts the installed popgate the way the unit does (user `popgate`, only the ambient
/// capabilities CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, no new privileges) on a copy of the
/// shipped configuration with the outbound policy enabled on two ports below 1024, and
/// waits for its listeners and its metrics endpoint.
fn runs_under_the_units_privileges() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config");
    copy_tree(Path::new("/etc/popgate"), &config);
    let pop3 = free_privileged_port(&[]);
    let pop3s = free_privileged_port(&[pop3]);
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    edit_json(&config.join("popgate.json"), |global| {
        global["bind_addresses"] = json!(["127.0.0.1"]);
        global["metrics"] = json!({ "listen": metrics.to_string() });
    });
    edit_json(&config.join("policies/pop3-outbound.json"), |policy| {
        policy["enabled"] = json!(true);
        policy["ports"] = json!({ "pop3": pop3, "pop3s": pop3s });
    });
    // The enabled outbound policy inspects TLS: popgate refuses to run without its CAs.
    run_ok(
        Command::new("/usr/bin/popgate")
            .args(["ca", "init", "--config"])
            .arg(&config),
        TOOL_TIMEOUT,
    )
    .unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "popgate:popgate"])
            .arg(&config),
        TOOL_TIMEOUT,
    )
    .unwrap();
    let log = fs::File::create(dir.path().join("popgate.log")).unwrap();
    let mut child = ChildGuard::spawn(
        Command::new("setpriv")
            .args([
                "--reuid=popgate",
                "--regid=popgate",
                "--init-groups",
                "--inh-caps=-all,+net_admin,+net_bind_service",
                "--ambient-caps=-all,+net_admin,+net_bind_service",
                "--bounding-set=-all,+net_admin,+net_bind_service",
                "--no-new-privs",
                "/usr/bin/popgate",
                "run",
                "--config",
            ])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
        "popgate (as the service user)",
    )
    .unwrap();
    let log_text = || fs::read_to_string(dir.path().join("popgate.log")).unwrap_or_default();
    for addr in [
        SocketAddr::from(([127, 0, 0, 1], pop3)),
        SocketAddr::from(([127, 0, 0, 1], pop3s)),
        metrics,
    ] {
        if let Err(err) = wait_for_accept(addr, READY_TIMEOUT) {
            panic!("{err:#}; exited: {:?}\n{}", child.exited(), log_text());
        }
    }
    let status = fs::read_to_string(format!("/proc/{}/status", child.pid())).unwrap();
    let uid = account_id("passwd", "popgate");
    assert!(
        status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&uid.to_string())),
        "not running as popgate:\n{status}"
    );
    // CAP_NET_BIND_SERVICE (10) and CAP_NET_ADMIN (12) on the binding threads only,
    // no_new_privs and that bounding set on every thread.
    popgate_tests::threads::assert_confined(child.pid(), uid)
        .unwrap_or_else(|err| panic!("{err:#}\n{}", log_text()));
    let exit = child.terminate(Duration::from_secs(40)).unwrap();
    assert!(
        exit.success(),
        "popgate exited with {exit} after SIGTERM:\n{}",
        log_text()
    );
}

/// A port below 1024 on 127.0.0.1 that is free now and not in `taken`.
fn free_privileged_port(taken: &[u16]) -> u16 {
    (900..1024)
        .rev()
        .filter(|p| !taken.contains(p))
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("no free port below 1024 on 127.0.0.1")
}

fn verify_unit(analyze: &Path, unit: &Path) {
    let output =
        run_with_timeout(Command::new(analyze).arg("verify").arg(unit), TOOL_TIMEOUT).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "systemd-analyze verify {}: {stderr}",
        unit.display()
    );
    // Unknown or misspelt directives are only warnings: none are allowed.
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify {}:\n{stderr}",
        unit.display()
    );
}

fn dpkg_query(format: &str) -> String {
    let output: Output = run_ok(
        Command::new("dpkg-query").args(["--showformat", format, "-W", "popgate"]),
        TOOL_TIMEOUT,
    )
    .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn dpkg_owns(path: &str) -> bool {
    Command::new("dpkg")
        .args(["-S", path])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The numeric id of `name` in the `passwd` or `group` database.
fn account_id(database: &str, name: &str) -> u32 {
    let output = run_ok(Command::new("getent").args([database, name]), TOOL_TIMEOUT)
        .unwrap_or_else(|e| panic!("{database} entry {name}: {e:#}"));
    String::from_utf8_lossy(&output.stdout)
        .split(':')
        .nth(2)
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("malformed {database} entry for {name}"))
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut value);
    fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Where a tool is (`PATH`, the sbin directories, cargo's bin directory); when missing,
/// fails the test under `CI=true` and otherwise skips it with a `SKIPPED` line.
fn tool(name: &str) -> Option<PathBuf> {
    let cargo_bin = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    let path = env::var_os("PATH").unwrap_or_default();
    let found = env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .chain(cargo_bin)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    if found.is_none() {
        let test = std::thread::current()
            .name()
            .unwrap_or("packaging")
            .to_owned();
        let message = format!("{test}: missing tool {name} (install it with tests/run.sh)");
        assert!(!in_ci(), "CI=true and {message}");
        eprintln!("SKIPPED {message}");
    }
    found
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn packaging_dir() -> PathBuf {
    workspace_dir().join("packaging")
}

/// Opens one session (its upstream refuses, so it ends at once) and makes popgate reload,
/// so that threads made on demand exist before their privileges are read.
fn exercise(
    addr: SocketAddr,
    hangup: impl FnOnce(),
    reloaded: impl Fn() -> bool,
    log: impl Fn() -> String,
) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    hangup();
    if let Err(err) =
        popgate_tests::wait_until("popgate to reload", READY_TIMEOUT, || Ok(reloaded()))
    {
        panic!("{err:#}\n{}", log());
    }
}

#[test]
fn started_as_root_every_thread_ends_with_no_new_privs_and_two_capabilities_at_most() {
    if !is_root() {
        assert!(!in_ci(), "CI=true: this test needs root");
        eprintln!("SKIPPED: needs root");
        return;
    }
    let config = ConfigDir::relay("127.0.0.1:1")
        .set("popgate.json", "/user", json!("nobody"))
        .set("popgate.json", "/group", json!("nogroup"));
    let mut popgate = Popgate::start(config).unwrap();
    popgate
        .wait_for_log("dropped privileges", READY_TIMEOUT)
        .unwrap();
    let pid = popgate.pid();
    let addr = popgate.pop3_addr();
    exercise(
        addr,
        || {
            // SAFETY: kill has no memory preconditions; pid is our child.
            unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGHUP) };
        },
        || {
            let log = popgate.log_text();
            assert!(!log.contains("rejected"), "{log}");
            log.contains("configuration reloaded")
        },
        || popgate.log_text(),
    );
    let threads =
        popgate_tests::threads::assert_confined(pid, account_id("passwd", "nobody")).unwrap();
    assert!(
        threads.iter().any(|t| t.name == "popgate-caps"),
        "{threads:#?}"
    );
    popgate.stop().unwrap();
}

#[test]
fn as_the_service_user_only_the_binding_threads_keep_the_units_capabilities() {
    if !is_root() {
        assert!(!in_ci(), "CI=true: this test needs root");
        eprintln!("SKIPPED: needs root");
        return;
    }
    let Some(setpriv) = tool("setpriv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let config_dir = dir.path().join("config");
    let config = ConfigDir::relay("127.0.0.1:1");
    config.write(&config_dir).unwrap();
    let port = config
        .value(popgate_tests::popgate::RELAY_POLICY, "/ports/pop3")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap();
    let log_path = dir.path().join("popgate.log");
    let log = fs::File::create(&log_path).unwrap();
    // What packaging/popgate.service gives the process (User=, AmbientCapabilities=,
    // CapabilityBoundingSet=, NoNewPrivileges=), with `nobody` for the service user.
    let mut child = ChildGuard::spawn(
        Command::new(setpriv)
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--inh-caps=-all,+net_admin,+net_bind_service",
                "--ambient-caps=-all,+net_admin,+net_bind_service",
                "--bounding-set=-all,+net_admin,+net_bind_service",
                "--no-new-privs",
            ])
            .arg(popgate_bin().unwrap())
            .arg("run")
            .arg("--config")
            .arg(&config_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
        "popgate (as the service user)",
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log_text = || fs::read_to_string(&log_path).unwrap_or_default();
    if let Err(err) = wait_for_accept(addr, READY_TIMEOUT) {
        panic!("{err:#}; exited: {:?}\n{}", child.exited(), log_text());
    }
    let pid = child.pid();
    exercise(
        addr,
        || {
            // SAFETY: kill has no memory preconditions; pid is our child.
            unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGHUP) };
        },
        || log_text().contains("configuration reloaded"),
        log_text,
    );
    popgate_tests::threads::assert_confined(pid, account_id("passwd", "nobody"))
        .unwrap_or_else(|err| panic!("{err:#}\n{}", log_text()));
    let exit = child.terminate(Duration::from_secs(40)).unwrap();
    assert!(exit.success(), "{exit}:\n{}", log_text());
}
