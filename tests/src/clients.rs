//! Real POP3 clients run as subprocesses: Python poplib, curl and fetchmail.
//!
//! Each helper takes an [`Account`] (address, user, password) and a [`ClientTls`] mode, runs
//! the client under a deadline and returns the messages it retrieved as bytes. What the
//! clients do to the bytes:
//! - poplib: lines without CRLF, dot-stuffing undone; `tests/clients/poplib_fetch.py` writes
//!   each line back with CRLF, which restores the message exactly.
//! - curl: `pop3://host:port/N` prints message N exactly (dot-stuffing undone).
//! - fetchmail: hands each message to an MDA that writes one file per message. With
//!   `set invisible` (no Received: header; it is a global option, not a poll option),
//!   `no rewrite`, `no stripcr` and `no mimedecode` the file holds the message exactly.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process::{run_ok, run_with_timeout};

/// Deadline for one client run (the 20 MiB message included).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and as whom a client logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The POP3 (or POP3S) address to connect to.
    pub addr: SocketAddr,
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Account {
    /// An account at `addr`.
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> Account {
        Account {
            addr,
            user: user.into(),
            password: password.into(),
        }
    }

    /// The same credentials at another address (e.g. popgate's listener).
    pub fn at(&self, addr: SocketAddr) -> Account {
        Account {
            addr,
            ..self.clone()
        }
    }
}

/// How a client secures its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTls {
    /// Plaintext POP3, no STLS.
    None,
    /// Plaintext POP3 upgraded with `STLS`, verifying the server against this CA file.
    Stls(PathBuf),
    /// Implicit TLS (POP3S), verifying the server against this CA file.
    Implicit(PathBuf),
}

/// How poplib logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoplibAuth {
    /// `USER` + `PASS`.
    UserPass,
    /// `APOP` with the greeting's timestamp.
    Apop,
}

/// Retrieves every message with Python's poplib; returns them in mailbox order.
///
/// # Errors
/// When the script fails or times out (its stderr is in the error).
pub fn poplib_fetch(account: &Account, tls: &ClientTls, auth: PoplibAuth) -> Result<Vec<Vec<u8>>> {
    let out = tempfile::tempdir()?;
    let (mode, cafile) = match tls {
        ClientTls::None => ("plain", "-".to_owned()),
        ClientTls::Stls(ca) => ("stls", ca.display().to_string()),
        ClientTls::Implicit(ca) => ("ssl", ca.display().to_string()),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/poplib_fetch.py");
    let output = run_ok(
        Command::new("python3")
            .arg(script)
            .args([
                mode,
                &account.addr.ip().to_string(),
                &account.addr.port().to_string(),
            ])
            .args([&account.user, &account.password, &cafile])
            .arg(out.path())
            .arg(match auth {
                PoplibAuth::UserPass => "user",
                PoplibAuth::Apop => "apop",
            }),
        CLIENT_TIMEOUT,
    )?;
    let count: usize = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("poplib_fetch.py did not print a count")?;
    (1..=count)
        .map(|n| fs::read(out.path().join(format!("{n}.eml"))).context("reading poplib output"))
        .collect()
}

/// `curl pop3[s]://ADDR/N`: message `n` as curl prints it.
///
/// # Errors
/// When curl fails or times out.
pub fn curl_retr(account: &Account, tls: &ClientTls, n: usize) -> Result<Vec<u8>> {
    Ok(run_ok(
        &mut curl_command(account, tls, &n.to_string()),
        CLIENT_TIMEOUT,
    )?
    .stdout)
}

/// `curl pop3[s]://ADDR/`: the LIST output as curl prints it.
///
/// # Errors
/// When curl fails or times out.
pub fn curl_list(account: &Account, tls: &ClientTls) -> Result<Vec<u8>> {
    Ok(run_ok(&mut curl_command(account, tls, ""), CLIENT_TIMEOUT)?.stdout)
}

/// Runs curl for `pop3[s]://ADDR/PATH` and returns its output whatever the exit status
/// (for tests that expect curl to fail).
///
/// # Errors
/// When curl cannot start or times out.
pub fn curl_output(account: &Account, tls: &ClientTls, path: &str) -> Result<Output> {
    run_with_timeout(&mut curl_command(account, tls, path), CLIENT_TIMEOUT)
}

fn curl_command(account: &Account, tls: &ClientTls, path: &str) -> Command {
    let scheme = if matches!(tls, ClientTls::Implicit(_)) {
        "pop3s"
    } else {
        "pop3"
    };
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--max-time", "110"])
        .arg("--user")
        .arg(format!("{}:{}", account.user, account.password))
        .arg(format!("{scheme}://{}/{path}", account.addr));
    match tls {
        ClientTls::None => {}
        ClientTls::Stls(ca) => {
            command.arg("--ssl-reqd").arg("--cacert").arg(ca);
        }
        ClientTls::Implicit(ca) => {
            command.arg("--cacert").arg(ca);
        }
    }
    command
}

/// Whether fetchmail leaves the messages on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// `keep`: retrieve and leave on the server.
    Keep,
    /// `no keep`: retrieve and delete (`flush` of old messages too).
    Delete,
}

/// One-shot fetchmail (`fetchall`, `no rewrite`, `invisible`, `no stripcr`); each message
/// goes to an MDA that writes one file. Returns the messages in delivery order.
///
/// # Errors
/// When fetchmail exits with anything but 0 (mail retrieved) or 1 (no mail).
pub fn fetchmail_fetch(
    account: &Account,
    tls: &ClientTls,
    retention: Retention,
) -> Result<Vec<Vec<u8>>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    fs::create_dir(&out)?;
    let mda = dir.path().join("mda.sh");
    fs::write(
        &mda,
        format!(
            "#!/bin/sh\nn=$(ls '{o}' | wc -l)\ncat > '{o}'/$(printf %05d $((n + 1))).eml\n",
            o = out.display()
        ),
    )?;
    fs::set_permissions(&mda, fs::Permissions::from_mode(0o755))?;
    let tls_options = match tls {
        ClientTls::None => "sslproto ''".to_owned(),
        ClientTls::Stls(ca) | ClientTls::Implicit(ca) => format!(
            "{}sslproto 'tls1.2+' sslcertck sslcertfile '{}' sslcommonname 'localhost'",
            if matches!(tls, ClientTls::Implicit(_)) {
                "ssl "
            } else {
                ""
            },
            ca.display()
        ),
    };
    let rc = dir.path().join("fetchmailrc");
    fs::write(
        &rc,
        format!(
            "set no syslog\n\
             set invisible\n\
             poll {ip} with proto POP3 service {port} auth password timeout 60\n\
             \x20 user '{user}' there with password '{password}' is 'root' here\n\
             \x20 {keep} fetchall no rewrite no stripcr no mimedecode\n\
             \x20 mda '{mda}'\n\
             \x20 {tls_options}\n",
            ip = account.addr.ip(),
            port = account.addr.port(),
            user = account.user,
            password = account.password,
            keep = match retention {
                Retention::Keep => "keep",
                Retention::Delete => "no keep flush",
            },
            mda = mda.display(),
        ),
    )?;
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600))?;
    let output = run_with_timeout(
        Command::new("fetchmail")
            .env("FETCHMAILHOME", dir.path())
            .env("HOME", dir.path())
            .arg("--nodetach")
            .arg("-f")
            .arg(&rc)
            .arg("--idfile")
            .arg(dir.path().join("fetchids")),
        CLIENT_TIMEOUT,
    )?;
    if !matches!(output.status.code(), Some(0 | 1)) {
        bail!(
            "fetchmail failed with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut names: Vec<PathBuf> = fs::read_dir(&out)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    names
        .into_iter()
        .map(|p| fs::read(&p).with_context(|| format!("reading {}", p.display())))
        .collect()
}
