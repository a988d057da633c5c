//! Test certificates made with the `openssl` CLI: a CA and a server certificate it signs.
//!
//! The server certificate names `localhost`, `127.0.0.1` and `::1`, so clients can verify
//! it whether they connect by name or by address (fetchmail ignores IP SANs: use
//! `sslcommonname "localhost"` with it). Keys are ECDSA P-256 (fast to generate).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::run_ok;

const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// Paths of a generated CA and server certificate with their keys (PEM).
#[derive(Clone, Debug)]
pub struct TestPki {
    /// The CA certificate clients trust.
    pub ca_cert: PathBuf,
    /// The CA private key.
    pub ca_key: PathBuf,
    /// The server certificate, signed by the CA.
    pub server_cert: PathBuf,
    /// The server private key (PKCS#8).
    pub server_key: PathBuf,
}

impl TestPki {
    /// Generates a CA and a server certificate for `localhost`, `127.0.0.1`, `::1` in `dir`.
    ///
    /// # Errors
    /// When `openssl` is missing or fails.
    pub fn generate(dir: &Path) -> Result<TestPki> {
        TestPki::generate_for(
            dir,
            "localhost",
            &["DNS:localhost", "IP:127.0.0.1", "IP:::1"],
        )
    }

    /// Generates a CA and a server certificate with common name `cn` and the given
    /// subjectAltName entries (`DNS:name`, `IP:addr`) in `dir`.
    ///
    /// # Errors
    /// When `openssl` is missing or fails.
    pub fn generate_for(dir: &Path, cn: &str, sans: &[&str]) -> Result<TestPki> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pki = TestPki {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        };
        let csr = dir.join("server.csr");
        let ext = dir.join("server.ext");
        fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
                sans.join(",")
            ),
        )?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run_ok(
            Command::new("openssl")
                .args(["req", "-x509"])
                .args(ec)
                .arg("-keyout")
                .arg(&pki.ca_key)
                .arg("-out")
                .arg(&pki.ca_cert)
                .args([
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=popgate test CA/O=popgate tests",
                ])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
            OPENSSL_TIMEOUT,
        )?;
        run_ok(
            Command::new("openssl")
                .arg("req")
                .args(ec)
                .arg("-keyout")
                .arg(&pki.server_key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", &format!("/CN={cn}")]),
            OPENSSL_TIMEOUT,
        )?;
        run_ok(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "3650", "-set_serial", "2"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&pki.ca_cert)
                .arg("-CAkey")
                .arg(&pki.ca_key)
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&pki.server_cert),
            OPENSSL_TIMEOUT,
        )?;
        Ok(pki)
    }
}

/// The APOP digest (RFC 1939 §7): lowercase hex MD5 of `timestamp` followed by `secret`,
/// computed with `openssl dgst -md5`.
///
/// # Errors
/// When `openssl` fails.
pub fn apop_digest(timestamp: &str, secret: &str) -> Result<String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("openssl")
        .args(["dgst", "-md5", "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting openssl dgst")?;
    child
        .stdin
        .take()
        .context("openssl stdin")?
        .write_all(format!("{timestamp}{secret}").as_bytes())?;
    let output = child.wait_with_output()?;
    anyhow::ensure!(output.status.success(), "openssl dgst failed: {output:?}");
    let text = String::from_utf8(output.stdout)?;
    let digest = text
        .split_whitespace()
        .next()
        .context("empty openssl dgst output")?;
    anyhow::ensure!(
        digest.len() == 32,
        "unexpected openssl dgst output {text:?}"
    );
    Ok(digest.to_owned())
}
