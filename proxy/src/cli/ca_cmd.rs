//! `popgate ca init|import|csr|install|export` (SPEC §6): the Proxy Authority that signs
//! the certificates clients are shown, and the untrusted CA that `mirror-untrusted` uses.
//!
//! Everything is checked in memory before the first byte is written, and every file is
//! replaced atomically, so a refused command changes nothing. Keys are written 0600.
//! - `init` refuses to replace any of `pki/ca.*`, `pki/untrusted-ca.*` without `--force`
//!   (clients trusting the old authority would stop trusting popgate).
//! - `import` refuses to replace `pki/ca.*` without `--force`, like `init`; `install`
//!   replaces them (it completes the request `csr` started, itself guarded by `--force`).
//!   Both create the untrusted CA when it is missing, since `run` needs both.
//! - `csr` refuses to replace a pending key or an earlier request without `--force`: the
//!   organisation may still be signing it.
//! - `install` pairs the signed certificate with `pki/pending-ca.key`, refuses a certificate
//!   for another key, and removes the pending key once it is `pki/ca.key`.
//!
//! Key generation (slow for RSA) runs right here; this is a CLI, blocking is fine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use popgate_ca::{csr, Authority, KeyType};
use time::OffsetDateTime;

use super::pki_files::{
    self as pki, Pki, CA_CERT, CA_KEY, PENDING_KEY, UNTRUSTED_CERT, UNTRUSTED_KEY,
};
use super::{files, ConfigArg};

/// The Proxy Authority's subject unless `--subject` says otherwise.
pub const DEFAULT_SUBJECT: &str = "CN=popgate Proxy Authority";
/// The untrusted CA's subject.
pub const UNTRUSTED_SUBJECT: &str = "CN=popgate untrusted CA";
/// Validity of generated CAs, in days, unless `--days` says otherwise (ten years).
pub const DEFAULT_DAYS: u32 = 3650;
/// What replacing the Proxy Authority means, for the `--force` refusals.
const NEW_AUTHORITY: &str = "clients must then trust the new Proxy Authority";
/// The files `ca csr` writes into `--out`.
const REQUEST_FILE: &str = "request.pem";
const PRIVATE_KEY_FILE: &str = "privkey.pem";

/// `popgate ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the Proxy Authority (pki/ca.crt, pki/ca.key) and the untrusted CA
    /// (pki/untrusted-ca.crt, pki/untrusted-ca.key).
    Init {
        /// Key type of both CAs.
        #[arg(long, value_enum, default_value_t = KeyTypeArg::EcdsaP256)]
        key_type: KeyTypeArg,
        /// Subject of the Proxy Authority (RFC 4514: "CN=Example Proxy CA,O=Example Ltd,C=GB").
        #[arg(long, value_name = "DN", default_value = DEFAULT_SUBJECT)]
        subject: String,
        /// Validity in days.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_DAYS)]
        days: u32,
        /// Replace existing CA files.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Import an existing CA certificate and key as the Proxy Authority.
    Import {
        /// The CA certificate (PEM or DER, optionally followed by the chain above it); alone,
        /// a single PEM holding both the certificate and its key.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// The CA's private key (unencrypted PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Replace an existing Proxy Authority (pki/ca.crt, pki/ca.key).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Create a key and a certificate signing request for a Proxy Authority that the
    /// organisation's CA signs; install the answer with `popgate ca install`.
    Csr {
        /// Subject of the requested CA certificate (RFC 4514).
        #[arg(long, value_name = "DN")]
        subject: String,
        /// Where request.pem and privkey.pem go.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Key type of the request.
        #[arg(long, value_enum, default_value_t = KeyTypeArg::EcdsaP256)]
        key_type: KeyTypeArg,
        /// Replace a pending request (and request.pem/privkey.pem in DIR).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Install the certificate the organisation's CA issued for `popgate ca csr`'s request.
    Install {
        /// The signed CA certificate, optionally followed by its chain.
        #[arg(long, value_name = "SIGNED.pem")]
        cert: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print the Proxy Authority's certificate, for clients to trust.
    Export {
        /// Binary DER instead of PEM.
        #[arg(long)]
        der: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// `--key-type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyTypeArg {
    /// ECDSA P-256 (fast, the default).
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// RSA 2048 bits (for old clients).
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA 3072 bits.
    #[value(name = "rsa-3072")]
    Rsa3072,
}

impl From<KeyTypeArg> for KeyType {
    fn from(arg: KeyTypeArg) -> Self {
        match arg {
            KeyTypeArg::EcdsaP256 => KeyType::EcdsaP256,
            KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
            KeyTypeArg::Rsa3072 => KeyType::Rsa3072,
        }
    }
}

/// Runs a `ca` command.
///
/// # Errors
/// Anything refused or failed, naming the file concerned; nothing is written then.
pub fn execute(command: CaCommand) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    match command {
        CaCommand::Init {
            key_type,
            subject,
            days,
            force,
            config,
        } => init(
            &Pki::new(&config.dir),
            key_type.into(),
            &subject,
            days,
            force,
            now,
        ),
        CaCommand::Import {
            cert,
            key,
            force,
            config,
        } => import(&Pki::new(&config.dir), &cert, key.as_deref(), force, now),
        CaCommand::Csr {
            subject,
            out,
            key_type,
            force,
            config,
        } => request(
            &Pki::new(&config.dir),
            &subject,
            &out,
            key_type.into(),
            force,
        ),
        CaCommand::Install { cert, config } => install(&Pki::new(&config.dir), &cert, now),
        CaCommand::Export { der, config } => export(&Pki::new(&config.dir), der),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn init(
    pki: &Pki,
    key_type: KeyType,
    subject: &str,
    days: u32,
    force: bool,
    now: OffsetDateTime,
) -> Result<()> {
    pki.refuse_to_replace(
        &[CA_CERT, CA_KEY, UNTRUSTED_CERT, UNTRUSTED_KEY],
        force,
        NEW_AUTHORITY,
    )?;
    let ca = Authority::generate(key_type, subject, days, now)
        .with_context(|| format!("generating the Proxy Authority {subject:?}"))?;
    let untrusted = Authority::generate(key_type, UNTRUSTED_SUBJECT, days, now)
        .context("generating the untrusted CA")?;
    pki.write_pair(CA_CERT, &ca.cert_pem, CA_KEY, &ca.key_pem)?;
    pki.write_pair(
        UNTRUSTED_CERT,
        &untrusted.cert_pem,
        UNTRUSTED_KEY,
        &untrusted.key_pem,
    )?;
    println!(
        "Proxy Authority: {}\n  {}",
        pki.path(CA_CERT).display(),
        pki::describe(ca.cert_pem.as_bytes(), now)
    );
    println!(
        "untrusted CA:    {}\n  {}",
        pki.path(UNTRUSTED_CERT).display(),
        pki::describe(untrusted.cert_pem.as_bytes(), now)
    );
    println!("Clients must trust the Proxy Authority: `popgate ca export` prints it.");
    Ok(())
}

fn import(
    pki: &Pki,
    cert_path: &Path,
    key_path: Option<&Path>,
    force: bool,
    now: OffsetDateTime,
) -> Result<()> {
    let cert_input = files::read(cert_path)?;
    let (cert_pem, key_pem, key_path) = match key_path {
        Some(key_path) => (cert_input, files::read(key_path)?, key_path),
        None => {
            let (cert, key) = popgate_ca::split_combined_pem(&cert_input).with_context(|| {
                format!(
                    "{}: expected the CA certificate and its key in one PEM (or give --key \
                     FILE)",
                    cert_path.display()
                )
            })?;
            (cert.into_bytes(), key.into_bytes(), cert_path)
        }
    };
    // The input is judged first: a broken file is worth knowing about before `--force`.
    pki::authority(cert_path, &cert_pem, key_path, &key_pem, now)?;
    pki.refuse_to_replace(&[CA_CERT, CA_KEY], force, NEW_AUTHORITY)?;
    install_authority(pki, cert_path, &cert_pem, key_path, &key_pem, now)
}

fn request(pki: &Pki, subject: &str, out: &Path, key_type: KeyType, force: bool) -> Result<()> {
    let pending = pki.path(PENDING_KEY);
    let request_path = out.join(REQUEST_FILE);
    let key_path = out.join(PRIVATE_KEY_FILE);
    let existing: Vec<String> = [&pending, &request_path, &key_path]
        .into_iter()
        .filter(|path| files::exists(path))
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() && !force {
        bail!(
            "{} already exist{}: an earlier request may still be waiting for its certificate; \
             nothing was changed (--force replaces {})",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" }
        );
    }
    let csr = csr::request(subject, key_type)
        .with_context(|| format!("creating a request for {subject:?}"))?;
    pki.create()?;
    files::create_private_dir(out)?;
    files::write_atomic(&pending, csr.key_pem.as_bytes(), files::KEY_MODE)?;
    files::write_atomic(&key_path, csr.key_pem.as_bytes(), files::KEY_MODE)?;
    files::write_atomic(&request_path, csr.request_pem.as_bytes(), files::CERT_MODE)?;
    println!("request:     {}", request_path.display());
    println!(
        "private key: {} (also kept as {})",
        key_path.display(),
        pending.display()
    );
    println!(
        "Have your CA sign the request as a CA certificate (basicConstraints CA:TRUE, \
         keyUsage keyCertSign), then run `popgate ca install --cert SIGNED.pem`."
    );
    Ok(())
}

fn install(pki: &Pki, cert_path: &Path, now: OffsetDateTime) -> Result<()> {
    let pending = pki.path(PENDING_KEY);
    if !files::exists(&pending) {
        bail!(
            "no pending request: {} does not exist (run `popgate ca csr` first); nothing was \
             changed",
            pending.display()
        );
    }
    let signed = files::read(cert_path)?;
    let key = files::read(&pending)?;
    pki::private_key(&pending, &key)?;
    pki::certificates(cert_path, &signed)?;
    let (cert_pem, key_pem) = csr::pair(&signed, &key).map_err(|err| match err {
        popgate_ca::CaError::KeyMismatch => anyhow::anyhow!(
            "{} certifies another key, not the pending request's ({}); nothing was changed",
            cert_path.display(),
            pending.display()
        ),
        other => pki::cert_error(other, cert_path, &pending, "the Proxy Authority"),
    })?;
    install_authority(
        pki,
        cert_path,
        cert_pem.as_bytes(),
        &pending,
        key_pem.as_bytes(),
        now,
    )?;
    files::remove_if_present(&pending)
}

/// Checks a CA pair, then writes it as `pki/ca.*` (normalised: PEM chain, PKCS#8 key) and
/// creates the untrusted CA if there is none.
fn install_authority(
    pki: &Pki,
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
    now: OffsetDateTime,
) -> Result<()> {
    let authority = pki::authority(cert_path, cert, key_path, key, now)?;
    let key_pem = pki::private_key(key_path, key)?.serialize_pem();
    let mut chain = vec![authority.cert_der().as_ref().to_vec()];
    chain.extend(
        authority
            .chain_above()
            .iter()
            .map(|der| der.as_ref().to_vec()),
    );
    let cert_pem = pki::chain_pem(&chain);
    let untrusted = if files::exists(&pki.path(UNTRUSTED_CERT)) {
        None
    } else {
        let key_type = key_type_of(&authority);
        Some(
            Authority::generate(key_type, UNTRUSTED_SUBJECT, DEFAULT_DAYS, now)
                .context("generating the untrusted CA")?,
        )
    };
    pki.write_pair(CA_CERT, &cert_pem, CA_KEY, &key_pem)?;
    println!(
        "Proxy Authority: {}\n  {}",
        pki.path(CA_CERT).display(),
        pki::describe(cert_pem.as_bytes(), now)
    );
    if let Some(untrusted) = untrusted {
        pki.write_pair(
            UNTRUSTED_CERT,
            &untrusted.cert_pem,
            UNTRUSTED_KEY,
            &untrusted.key_pem,
        )?;
        println!(
            "untrusted CA:    {} (created)",
            pki.path(UNTRUSTED_CERT).display()
        );
    }
    Ok(())
}

/// The untrusted CA gets the Proxy Authority's kind of key, so that a client sees the same
/// kind of certificate either way; ECDSA when it is something `ca init` cannot make.
fn key_type_of(authority: &Authority) -> KeyType {
    let now = OffsetDateTime::now_utc();
    match popgate_ca::CertInfo::from_der(authority.cert_der(), now) {
        Ok(info) => info.key_type.parse().unwrap_or_default(),
        Err(_) => KeyType::default(),
    }
}

fn export(pki: &Pki, der: bool) -> Result<()> {
    let path = pki.path(CA_CERT);
    if !files::exists(&path) {
        bail!(
            "no Proxy Authority: {} does not exist (create one with `popgate ca init`)",
            path.display()
        );
    }
    let certs = pki::certificates(&path, &files::read(&path)?)?;
    // `certificates` never returns an empty list.
    let first = certs.into_iter().next().unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    let bytes = if der {
        first
    } else {
        pki::chain_pem(&[first]).into_bytes()
    };
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn init_refuses_to_replace_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        init(&pki, KeyType::EcdsaP256, DEFAULT_SUBJECT, 30, false, now()).unwrap();
        let before = std::fs::read(pki.path(CA_KEY)).unwrap();
        let err = init(&pki, KeyType::EcdsaP256, DEFAULT_SUBJECT, 30, false, now()).unwrap_err();
        assert!(format!("{err:#}").contains("already exist"), "{err:#}");
        assert_eq!(std::fs::read(pki.path(CA_KEY)).unwrap(), before);
        init(&pki, KeyType::EcdsaP256, DEFAULT_SUBJECT, 30, true, now()).unwrap();
        assert_ne!(std::fs::read(pki.path(CA_KEY)).unwrap(), before);
    }

    #[test]
    fn init_needs_an_existing_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(&dir.path().join("missing"));
        let err = init(&pki, KeyType::EcdsaP256, DEFAULT_SUBJECT, 30, false, now()).unwrap_err();
        assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    }

    #[test]
    fn bad_subject_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let err = init(&pki, KeyType::EcdsaP256, "XX=oops", 30, false, now()).unwrap_err();
        assert!(format!("{err:#}").contains("XX=oops"), "{err:#}");
        assert!(!pki.path(CA_CERT).exists());
    }

    #[test]
    fn import_fills_in_a_missing_untrusted_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let ca = Authority::generate(KeyType::EcdsaP256, "CN=Org", 30, now()).unwrap();
        let combined = dir.path().join("combined.pem");
        std::fs::write(&combined, format!("{}{}", ca.key_pem, ca.cert_pem)).unwrap();
        import(&pki, &combined, None, false, now()).unwrap();
        assert!(pki.path(UNTRUSTED_KEY).exists());
        let authority = pki.authority(now()).unwrap();
        assert_eq!(authority.cert_pem(), ca.cert_pem);
    }
}
