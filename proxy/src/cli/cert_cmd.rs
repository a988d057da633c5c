//! `popgate cert server --generate|--import` and `popgate cert show` (SPEC §6).
//!
//! `cert server` writes the Proxy Server certificate inbound clients are shown
//! (`pki/server.crt`, `pki/server.key`): `--generate` signs a new one with the Proxy
//! Authority, `--import` checks an existing pair (separate files, or one PEM holding both).
//! Both check everything before writing, refuse to replace an existing pair without
//! `--force` (like `ca init`), replace the files atomically, and keep the key 0600.
//!
//! `cert show` summarises `pki/ca.crt`, `pki/server.crt` and `pki/untrusted-ca.crt` (those
//! that exist). A file that cannot be read is reported on stderr, the others are still
//! shown, and the exit code is 1. Certificates expiring within 30 days get a warning on
//! stderr. JSON: `[{role, subject, sans, key_type, not_after, days_left}]` with `role` one
//! of `ca`, `server`, `untrusted` and `not_after` in RFC 3339.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgGroup, Subcommand};
use popgate_ca::{server_cert, CertInfo};
use serde::Serialize;
use time::OffsetDateTime;

use super::pki_files::{self as pki, Pki, CA_CERT, SERVER_CERT, SERVER_KEY, UNTRUSTED_CERT};
use super::table::{print_json, JsonArg, Table};
use super::{files, ConfigArg};

/// Validity of a generated server certificate unless `--days` says otherwise: 825 days,
/// the longest some clients (Apple's) accept for TLS server certificates.
pub const DEFAULT_SERVER_DAYS: u32 = 825;

/// `popgate cert ...`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create (--generate) or import (--import) the Proxy Server certificate shown to
    /// inbound clients: pki/server.crt and pki/server.key.
    #[command(group(ArgGroup::new("source").required(true).args(["generate", "import"])))]
    Server {
        /// Generate a key and a certificate signed by the Proxy Authority.
        #[arg(long, requires = "san")]
        generate: bool,
        /// The names clients connect to (DNS names or IP addresses); the first is also the
        /// common name.
        #[arg(
            long,
            value_name = "NAME[,NAME..]",
            value_delimiter = ',',
            requires = "generate"
        )]
        san: Vec<String>,
        /// Validity of the generated certificate in days (default 825; clipped to the Proxy
        /// Authority's).
        #[arg(long, value_name = "N", requires = "generate")]
        days: Option<u32>,
        /// Import this certificate (PEM or DER, with its chain); alone, a single PEM holding
        /// the certificate and its key.
        #[arg(long, value_name = "FILE")]
        import: Option<PathBuf>,
        /// The imported certificate's private key.
        #[arg(long, value_name = "FILE", requires = "import")]
        key: Option<PathBuf>,
        /// Replace an existing Proxy Server certificate and key.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Subjects, names and expiry of the Proxy Authority, server and untrusted CA
    /// certificates (warns when one expires within 30 days).
    Show {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
}

/// Runs a `cert` command.
///
/// # Errors
/// Anything refused or failed, naming the file concerned; nothing is written then.
pub fn execute(command: CertCommand) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    match command {
        CertCommand::Server {
            san,
            days,
            import,
            key,
            force,
            config,
            ..
        } => {
            let pki = Pki::new(&config.dir);
            match import {
                Some(cert) => import_pair(&pki, &cert, key.as_deref(), force, now)?,
                None => generate(&pki, &san, days.unwrap_or(DEFAULT_SERVER_DAYS), force, now)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        CertCommand::Show { config, output } => show(&Pki::new(&config.dir), output.json, now),
    }
}

/// An element of `cert show --json` (SPEC §6).
#[derive(Debug, Serialize)]
struct CertRow {
    role: &'static str,
    subject: String,
    sans: Vec<String>,
    key_type: String,
    not_after: String,
    days_left: i64,
}

/// The certificates `cert show` looks at, in order: role and file.
const ROLES: [(&str, &str); 3] = [
    ("ca", CA_CERT),
    ("server", SERVER_CERT),
    ("untrusted", UNTRUSTED_CERT),
];

/// What replacing the Proxy Server certificate means, for the `--force` refusal.
const NEW_SERVER_CERT: &str = "inbound clients are then shown the new certificate";

fn generate(pki: &Pki, sans: &[String], days: u32, force: bool, now: OffsetDateTime) -> Result<()> {
    let authority = pki.authority(now)?;
    let (cert_pem, key_pem) = server_cert::generate(&authority, sans, days, now)
        .context("generating the Proxy Server certificate")?;
    pki.refuse_to_replace(&[SERVER_CERT, SERVER_KEY], force, NEW_SERVER_CERT)?;
    pki.write_pair(SERVER_CERT, &cert_pem, SERVER_KEY, &key_pem)?;
    println!(
        "Proxy Server certificate: {}\n  {}",
        pki.path(SERVER_CERT).display(),
        pki::describe(cert_pem.as_bytes(), now)
    );
    Ok(())
}

fn import_pair(
    pki: &Pki,
    cert_path: &Path,
    key_path: Option<&Path>,
    force: bool,
    now: OffsetDateTime,
) -> Result<()> {
    let cert_input = files::read(cert_path)?;
    let (cert, key, key_path) = match key_path {
        Some(key_path) => (cert_input, files::read(key_path)?, key_path),
        None => {
            let (cert, key) = popgate_ca::split_combined_pem(&cert_input).with_context(|| {
                format!(
                    "{}: expected the certificate and its key in one PEM (or give --key FILE)",
                    cert_path.display()
                )
            })?;
            (cert.into_bytes(), key.into_bytes(), cert_path)
        }
    };
    let key_pair = pki::private_key(key_path, &key)?;
    let chain = pki::certificates(cert_path, &cert)?;
    server_cert::check_pair(&cert, &key, now)
        .map_err(|err| pki::cert_error(err, cert_path, key_path, "the Proxy Server certificate"))?;
    pki.refuse_to_replace(&[SERVER_CERT, SERVER_KEY], force, NEW_SERVER_CERT)?;
    let cert_pem = pki::chain_pem(&chain);
    pki.write_pair(
        SERVER_CERT,
        &cert_pem,
        SERVER_KEY,
        &key_pair.serialize_pem(),
    )?;
    println!(
        "Proxy Server certificate: {}\n  {}",
        pki.path(SERVER_CERT).display(),
        pki::describe(cert_pem.as_bytes(), now)
    );
    Ok(())
}

fn show(pki: &Pki, json: bool, now: OffsetDateTime) -> Result<ExitCode> {
    let mut rows = Vec::new();
    let mut failed = false;
    for (role, file) in ROLES {
        let path = pki.path(file);
        match read_info(&path, now) {
            Ok(Some(info)) => rows.push((role, path, info)),
            Ok(None) => {}
            Err(err) => {
                eprintln!("popgate: {err:#}");
                failed = true;
            }
        }
    }
    if json {
        let json_rows: Vec<CertRow> = rows
            .iter()
            .map(|(role, _, info)| CertRow {
                role,
                subject: info.subject.clone(),
                sans: info.sans.clone(),
                key_type: info.key_type.clone(),
                not_after: info.not_after_rfc3339(),
                days_left: info.days_left,
            })
            .collect();
        print_json(&json_rows)?;
    } else if rows.is_empty() {
        println!(
            "no certificates in {} (create them with `popgate ca init` and `popgate cert \
             server`)",
            pki.path("").display()
        );
    } else {
        print!("{}", cert_table(&rows).render());
    }
    for (role, path, info) in &rows {
        if let Some(warning) = expiry_warning(role, path, info, now) {
            eprintln!("{warning}");
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn read_info(path: &Path, now: OffsetDateTime) -> Result<Option<CertInfo>> {
    let Some(bytes) = files::read_optional(path)? else {
        return Ok(None);
    };
    CertInfo::from_pem(&bytes, now)
        .map(Some)
        .with_context(|| format!("{}: unusable certificate", path.display()))
}

fn cert_table(rows: &[(&str, PathBuf, CertInfo)]) -> Table {
    let mut table = Table::new([
        "ROLE",
        "SUBJECT",
        "NAMES",
        "KEY TYPE",
        "EXPIRES",
        "DAYS LEFT",
    ]);
    for (role, _, info) in rows {
        let names = if info.sans.is_empty() {
            "-".to_owned()
        } else {
            info.sans.join(",")
        };
        table.row([
            (*role).to_owned(),
            info.subject.clone(),
            names,
            info.key_type.clone(),
            info.not_after.date().to_string(),
            info.days_left.to_string(),
        ]);
    }
    table
}

fn expiry_warning(role: &str, path: &Path, info: &CertInfo, now: OffsetDateTime) -> Option<String> {
    if !info.expires_soon() {
        return None;
    }
    let when = if info.not_after <= now {
        format!("expired on {}", info.not_after.date())
    } else {
        format!(
            "expires in {} day{} ({})",
            info.days_left,
            if info.days_left == 1 { "" } else { "s" },
            info.not_after.date()
        )
    };
    Some(format!(
        "warning: the {role} certificate {} {when}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use popgate_ca::{Authority, KeyType};
    use time::Duration;

    use super::*;

    fn info_at(days: u32, issued: OffsetDateTime, now: OffsetDateTime) -> CertInfo {
        let ca = Authority::generate(KeyType::EcdsaP256, "CN=t", days, issued).unwrap();
        CertInfo::from_pem(ca.cert_pem.as_bytes(), now).unwrap()
    }

    #[test]
    fn warns_under_thirty_days_only() {
        let now = OffsetDateTime::now_utc();
        let path = Path::new("/p/ca.crt");
        assert_eq!(
            expiry_warning("ca", path, &info_at(365, now, now), now),
            None
        );
        let soon = expiry_warning("ca", path, &info_at(10, now, now), now).unwrap();
        assert!(
            // 9 days and 23 hours-odd: the window starts at the whole second.
            soon.starts_with("warning: the ca certificate /p/ca.crt expires in 9 days ("),
            "{soon}"
        );
        let info = info_at(1, now - Duration::days(3), now);
        let expired = expiry_warning("server", path, &info, now).unwrap();
        assert!(expired.contains("expired on"), "{expired}");
    }

    #[test]
    fn generate_needs_a_proxy_authority() {
        let dir = tempfile::tempdir().unwrap();
        let err = generate(
            &Pki::new(dir.path()),
            &["localhost".to_owned()],
            30,
            false,
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").starts_with("no Proxy Authority: "),
            "{err:#}"
        );
    }
}
