//! Strict DER checks of the certificates popgate writes (SPEC §4: "certificates popgate
//! writes or mints are valid DER"), with an independent strict parser: Python
//! `cryptography` (`tests/clients/strict_x509.py`), which refuses an encoded DEFAULT such
//! as `cA FALSE` in BasicConstraints, as real strict clients do.
//!
//! Needs [`Peer::Python3`](crate::Peer::Python3) with `cryptography`
//! ([`Peer::PythonCryptography`](crate::Peer::PythonCryptography)).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// A certificate made by an rcgen 0.13 `IsCa::ExplicitNoCa` leaf (popgate before the fix):
/// BasicConstraints `SEQUENCE { BOOLEAN FALSE }`, which the checker must refuse.
pub fn known_bad_certificate() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clients/explicit-ca-false.pem"
    ))
}

/// Parses every certificate and request in `pem` (PEM, or one DER certificate) strictly.
/// Returns the checker's lines (`ok certificate CN=...`), one per object.
///
/// # Errors
/// An object the strict parser refuses (the error names it and the parser's reason), or
/// the checker could not run.
pub fn check(pem: &[u8]) -> Result<Vec<String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/strict_x509.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting python3 strict_x509.py")?;
    // The checker reads all of stdin before writing, so writing first cannot deadlock.
    child
        .stdin
        .take()
        .context("python3 stdin")?
        .write_all(pem)
        .context("writing to strict_x509.py")?;
    let output = child
        .wait_with_output()
        .context("waiting for strict_x509.py")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    if !output.status.success() {
        bail!(
            "strict DER parser refused: {}{}",
            lines.join("; "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(lines)
}

/// Reads `file` and checks it with [`check`].
///
/// # Errors
/// As [`check`], naming the file.
pub fn check_file(file: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    check(&bytes).with_context(|| file.display().to_string())
}
