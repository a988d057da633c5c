//! A scripted TLS POP3 client (`tests/clients/pop3_tls_probe.py`, Python's `ssl`) for what
//! the whole-mailbox clients cannot show: the certificate popgate presents, CAPA after TLS,
//! single commands' exact responses, and a client limited to TLS 1.1. Plus `openssl`
//! helpers to look at and verify the certificate it received.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::clients::CLIENT_TIMEOUT;
use crate::process::{run_ok, run_with_timeout};

/// How the probe starts TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeMode {
    /// Implicit TLS (the pop3s port).
    Implicit,
    /// Plaintext, then `STLS`.
    Stls,
}

/// Which TLS versions the probe offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeVersions {
    /// Python's defaults (TLS 1.2 and 1.3).
    Default,
    /// TLS 1.0 and 1.1 only: popgate must refuse the handshake.
    UpToTls11,
}

/// What the probe saw.
#[derive(Clone, Debug, Default)]
pub struct TlsProbe {
    /// The greeting line (before STLS, or after the implicit handshake).
    pub greeting: Option<String>,
    /// The answer to `STLS`.
    pub stls: Option<String>,
    /// `"ok"`, or the handshake error.
    pub handshake: Option<String>,
    /// The negotiated version (`TLSv1.3`).
    pub tls_version: Option<String>,
    /// The server's end-entity certificate (PEM).
    pub peer_cert_pem: Option<String>,
    /// Each command's response, in order.
    pub responses: Vec<String>,
}

impl TlsProbe {
    /// Whether the handshake completed and the certificate verified against the CA file.
    pub fn handshake_ok(&self) -> bool {
        self.handshake.as_deref() == Some("ok")
    }
}

/// Connects to `addr`, starts TLS trusting `ca_file`, and sends `commands`.
///
/// # Errors
/// When the script cannot run or prints no JSON.
pub fn tls_probe(
    addr: SocketAddr,
    mode: ProbeMode,
    ca_file: &Path,
    versions: ProbeVersions,
    commands: &[&str],
) -> Result<TlsProbe> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/pop3_tls_probe.py");
    let output = run_ok(
        Command::new("python3")
            .arg(script)
            .arg(match mode {
                ProbeMode::Implicit => "ssl",
                ProbeMode::Stls => "stls",
            })
            .args([addr.ip().to_string(), addr.port().to_string()])
            .arg(ca_file)
            .arg(match versions {
                ProbeVersions::Default => "default",
                ProbeVersions::UpToTls11 => "1.1",
            })
            .args(commands),
        CLIENT_TIMEOUT,
    )?;
    let json: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("probe output {:?}", String::from_utf8_lossy(&output.stdout)))?;
    let text = |key: &str| json[key].as_str().map(str::to_owned);
    Ok(TlsProbe {
        greeting: text("greeting"),
        stls: text("stls"),
        handshake: text("handshake"),
        tls_version: text("tls_version"),
        peer_cert_pem: text("peer_cert_pem"),
        responses: json["responses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `openssl x509 -noout -text` of a PEM certificate.
///
/// # Errors
/// When openssl fails.
pub fn certificate_text(pem: &str) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cert.pem");
    fs::write(&file, pem)?;
    let output = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&file),
        CLIENT_TIMEOUT,
    )?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether `openssl verify -CAfile ca_file` accepts the PEM certificate.
///
/// # Errors
/// When openssl cannot run.
pub fn verifies_against(pem: &str, ca_file: &Path) -> Result<bool> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cert.pem");
    fs::write(&file, pem)?;
    let output = run_with_timeout(
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(ca_file)
            .arg(&file),
        CLIENT_TIMEOUT,
    )?;
    if !output.status.success() && output.stdout.is_empty() && output.stderr.is_empty() {
        bail!("openssl verify printed nothing");
    }
    Ok(output.status.success())
}
