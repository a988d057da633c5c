//! The files of `DIR/pki/` (SPEC §4) as the `ca` and `cert` commands see them: their
//! names, loading them with errors that name the file, and writing them (keys 0600,
//! certificates 0644, the directory 0700 when new, all atomic).
//!
//! Certificate and key checks themselves are `popgate_ca`'s; this file decides which file
//! an error is about.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use popgate_ca::{Authority, CaError, KeyPair};
use time::OffsetDateTime;

use super::files;

/// The Proxy Authority's certificate (chain).
pub const CA_CERT: &str = "ca.crt";
/// The Proxy Authority's key.
pub const CA_KEY: &str = "ca.key";
/// The untrusted CA's certificate (SPEC §4 `mirror-untrusted`).
pub const UNTRUSTED_CERT: &str = "untrusted-ca.crt";
/// The untrusted CA's key.
pub const UNTRUSTED_KEY: &str = "untrusted-ca.key";
/// The Proxy Server certificate (chain) shown to inbound clients.
pub const SERVER_CERT: &str = "server.crt";
/// The Proxy Server key.
pub const SERVER_KEY: &str = "server.key";
/// The key of a `ca csr` request waiting for `ca install`.
pub const PENDING_KEY: &str = "pending-ca.key";

/// `DIR/pki`.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// The PKI directory of the configuration directory `config_dir`.
    pub fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.join("pki"),
        }
    }

    /// The path of `file` (one of the constants above).
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Creates `pki/` (0700) when missing. The configuration directory itself must exist:
    /// a mistyped `--config` should fail, not grow a new tree.
    ///
    /// # Errors
    /// A missing configuration directory, or I/O errors.
    pub fn create(&self) -> Result<()> {
        if let Some(config_dir) = self.dir.parent() {
            if !config_dir.is_dir() {
                bail!(
                    "configuration directory {} does not exist",
                    config_dir.display()
                );
            }
        }
        files::create_private_dir(&self.dir)
    }

    /// Loads the Proxy Authority from `ca.crt` and `ca.key`.
    ///
    /// # Errors
    /// A missing CA (with the command that makes one), or any problem with either file,
    /// naming it.
    pub fn authority(&self, now: OffsetDateTime) -> Result<Authority> {
        let cert_path = self.path(CA_CERT);
        let key_path = self.path(CA_KEY);
        if !files::exists(&cert_path) {
            bail!(
                "no Proxy Authority: {} does not exist (create one with `popgate ca init`, or \
                 `popgate ca import` / `popgate ca csr` + `popgate ca install`)",
                cert_path.display()
            );
        }
        let cert = files::read(&cert_path)?;
        let key = files::read(&key_path)?;
        authority(&cert_path, &cert, &key_path, &key, now)
    }

    /// Refuses, unless `force`, when any of `files` exists: the administrator replaces keys
    /// and certificates only on purpose (`--force`). `consequence` says what replacing them
    /// means for clients. Nothing is written either way.
    ///
    /// # Errors
    /// `"pki/ca.crt, pki/ca.key already exist; nothing was changed (--force replaces them,
    /// and ...)"`, naming every existing file.
    pub fn refuse_to_replace(&self, files: &[&str], force: bool, consequence: &str) -> Result<()> {
        let existing: Vec<String> = files
            .iter()
            .map(|file| self.path(file))
            .filter(|path| files::exists(path))
            .map(|path| path.display().to_string())
            .collect();
        if existing.is_empty() || force {
            return Ok(());
        }
        bail!(
            "{} already exist{}; nothing was changed (--force replaces {}, and {consequence})",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" },
        )
    }

    /// Writes a key (0600) and then its certificate (0644), creating `pki/` if needed.
    ///
    /// # Errors
    /// I/O errors, naming the file; a failed key write leaves the certificate untouched.
    pub fn write_pair(&self, cert: &str, cert_pem: &str, key: &str, key_pem: &str) -> Result<()> {
        self.create()?;
        files::write_atomic(&self.path(key), key_pem.as_bytes(), files::KEY_MODE)?;
        files::write_atomic(&self.path(cert), cert_pem.as_bytes(), files::CERT_MODE)
    }
}

/// Checks that `cert` and `key` form a usable CA at `now`.
///
/// # Errors
/// Naming the key file for key problems (corrupt, encrypted, several keys), the certificate
/// file for certificate problems (unparseable, not a CA, cannot sign, expired), and both for
/// a mismatch.
pub fn authority(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
    now: OffsetDateTime,
) -> Result<Authority> {
    private_key(key_path, key)?;
    certificates(cert_path, cert)?;
    Authority::from_pem(cert, key, now).map_err(|err| cert_error(err, cert_path, key_path, "a CA"))
}

/// Parses a private key.
///
/// # Errors
/// Corrupt, encrypted or missing keys, naming `path`.
pub fn private_key(path: &Path, pem: &[u8]) -> Result<KeyPair> {
    popgate_ca::key_pair_from_pem(pem)
        .with_context(|| format!("{}: unusable private key", path.display()))
}

/// Parses the certificates of a PEM (or DER) file, first one first.
///
/// # Errors
/// No certificate, or one that does not parse, naming `path`.
pub fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let ders = popgate_ca::certificates_from_pem(pem)
        .with_context(|| format!("{}: unusable certificate", path.display()))?;
    let ders: Vec<Vec<u8>> = ders.iter().map(|der| der.as_ref().to_vec()).collect();
    if ders.is_empty() {
        bail!("{}: no certificate found", path.display());
    }
    Ok(ders)
}

/// Turns a certificate check's error into one naming the file it is about. `what` is what
/// the certificate was meant to be ("a CA", "the Proxy Server certificate").
pub fn cert_error(err: CaError, cert_path: &Path, key_path: &Path, what: &str) -> anyhow::Error {
    match err {
        CaError::KeyMismatch => anyhow!(
            "{} does not match the private key {}",
            cert_path.display(),
            key_path.display()
        ),
        CaError::EncryptedKey
        | CaError::NoPrivateKey
        | CaError::SeveralPrivateKeys
        | CaError::KeyUnparseable => {
            anyhow::Error::new(err).context(format!("{}: unusable private key", key_path.display()))
        }
        other => anyhow::Error::new(other)
            .context(format!("{}: not usable as {what}", cert_path.display())),
    }
}

/// PEM (LF line endings) of DER certificates, in order.
pub fn chain_pem(ders: &[Vec<u8>]) -> String {
    let blocks: Vec<pem::Pem> = ders
        .iter()
        .map(|der| pem::Pem::new("CERTIFICATE", der.clone()))
        .collect();
    pem::encode_many_config(
        &blocks,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// A summary line for a certificate: subject, key type, expiry date.
pub fn describe(cert_pem: &[u8], now: OffsetDateTime) -> String {
    match popgate_ca::CertInfo::from_pem(cert_pem, now) {
        Ok(info) => format!(
            "{} ({}, valid until {}, SHA-256 {})",
            info.subject,
            info.key_type,
            info.not_after.date(),
            info.fingerprint_sha256
        ),
        Err(err) => format!("(unreadable: {err})"),
    }
}

#[cfg(test)]
mod tests {
    use popgate_ca::KeyType;

    use super::*;

    fn generated(subject: &str) -> (String, String) {
        let ca = Authority::generate(KeyType::EcdsaP256, subject, 30, OffsetDateTime::now_utc())
            .unwrap();
        (ca.cert_pem, ca.key_pem)
    }

    #[test]
    fn mismatched_pair_names_both_files() {
        let (cert, _) = generated("CN=one");
        let (_, key) = generated("CN=two");
        let err = authority(
            Path::new("/c/ca.crt"),
            cert.as_bytes(),
            Path::new("/c/ca.key"),
            key.as_bytes(),
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "/c/ca.crt does not match the private key /c/ca.key"
        );
    }

    #[test]
    fn corrupt_key_names_the_key_file() {
        let (cert, _) = generated("CN=one");
        let err = authority(
            Path::new("/c/ca.crt"),
            cert.as_bytes(),
            Path::new("/c/ca.key"),
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").starts_with("/c/ca.key: unusable private key: "),
            "{err:#}"
        );
    }

    #[test]
    fn expired_ca_names_the_certificate() {
        let (cert, key) = generated("CN=one");
        let later = OffsetDateTime::now_utc() + time::Duration::days(40);
        let err = authority(
            Path::new("/c/ca.crt"),
            cert.as_bytes(),
            Path::new("/c/ca.key"),
            key.as_bytes(),
            later,
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.starts_with("/c/ca.crt: not usable as a CA: certificate expired at "),
            "{text}"
        );
    }

    #[test]
    fn chain_pem_round_trips() {
        let (cert, _) = generated("CN=one");
        let ders = certificates(Path::new("x"), cert.as_bytes()).unwrap();
        assert_eq!(chain_pem(&ders), cert);
    }
}
