//! A checked configuration together with what it needs at run time that is costly to build:
//! rustls configurations, trust stores and certificates. Built once per (re)load, never
//! per connection, and swapped whole so every connection sees one consistent snapshot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use popgate_policy::{CertificateValidation, Config, MinTlsVersion, TlsProfile};
use rustls::{ClientConfig, ServerConfig};

use super::inspection_plan::InspectionPlan;
use super::pki_needs::{PkiNeeds, PkiRole};
use crate::tls::config::{self as tls_config, MinVersion};
use crate::tls::minting::Minting;
use crate::tls::verify::{UpstreamValidator, Validation};

/// TLS material of one TLS profile.
#[derive(Debug)]
pub struct ProfileTls {
    /// Toward servers: versions, chain checks deferred to `validator`.
    pub client_config: Arc<ClientConfig>,
    /// Judges upstream chains.
    pub validator: Arc<UpstreamValidator>,
}

/// A configuration ready to serve connections.
#[derive(Debug)]
pub struct Prepared {
    /// The checked configuration.
    pub config: Config,
    /// The configuration directory (for `pki/` and relative CA files).
    pub dir: PathBuf,
    /// Per TLS profile name.
    pub profiles: HashMap<String, ProfileTls>,
    /// The Proxy Server certificate for inbound policies, per minimum version.
    pub proxy_server: Option<ProxyServerCert>,
    /// The Proxy Authority (and untrusted CA) minting outbound policies' certificates.
    pub minting: Option<Arc<Minting>>,
    /// Each policy's inspection plan (`None`: its action cannot change a message).
    inspections: HashMap<String, Option<Arc<InspectionPlan>>>,
}

/// The static Proxy Server certificate as rustls server configurations.
#[derive(Debug)]
pub struct ProxyServerCert {
    tls12: Arc<ServerConfig>,
    tls13: Arc<ServerConfig>,
}

impl ProxyServerCert {
    /// The configuration for a profile's minimum version.
    pub fn config(&self, min: MinVersion) -> Arc<ServerConfig> {
        match min {
            MinVersion::Tls12 => self.tls12.clone(),
            MinVersion::Tls13 => self.tls13.clone(),
        }
    }
}

impl Prepared {
    /// Builds the run-time material for `config` read from `dir`.
    ///
    /// # Errors
    /// A CA file of a profile cannot be used, or a `pki/` file an enabled policy needs is
    /// missing or unusable (every such file, one per line; see `pki_needs`).
    pub fn new(config: Config, dir: &Path) -> Result<Prepared> {
        let mut profiles = HashMap::new();
        for profile in config.tls_profiles() {
            let tls = profile_tls(profile, dir)
                .with_context(|| format!("TLS profile {}", profile.name()))?;
            profiles.insert(profile.name().to_owned(), tls);
        }
        let quarantine = crate::state::quarantine::Quarantine::new(config.global().state());
        let inspections = config
            .policies()
            .iter()
            .map(|policy| {
                let plan = InspectionPlan::for_policy(policy, quarantine.clone());
                (policy.name().to_owned(), plan)
            })
            .collect();
        // Keys are read only when an enabled policy needs them, and a needed one that is
        // missing or unusable rejects the configuration (as `popgate check` does).
        let needs = PkiNeeds::of(&config);
        let problems = needs.check(dir, time::OffsetDateTime::now_utc());
        if !problems.is_empty() {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}", lines.join("\n"));
        }
        let proxy_server = if needs.needs(PkiRole::ProxyServer) {
            proxy_server_cert(dir)?
        } else {
            None
        };
        let minting = if needs.needs(PkiRole::ProxyAuthority) {
            Minting::load(dir, needs.needs(PkiRole::UntrustedCa))?.map(Arc::new)
        } else {
            None
        };
        Ok(Prepared {
            inspections,
            proxy_server,
            minting,
            config,
            dir: dir.to_owned(),
            profiles,
        })
    }

    /// The inspection plan of the policy named `name`.
    pub fn inspection(&self, name: &str) -> Option<Arc<InspectionPlan>> {
        self.inspections.get(name).cloned().flatten()
    }

    /// The material of the profile named `name` (every profile of the config has one).
    pub fn profile(&self, name: &str) -> Option<&ProfileTls> {
        self.profiles.get(name)
    }
}

/// The TLS version floor of a profile, as rustls sees it.
pub fn min_version(profile: &TlsProfile) -> MinVersion {
    match profile.min_version() {
        MinTlsVersion::Tls13 => MinVersion::Tls13,
        MinTlsVersion::Tls12 => MinVersion::Tls12,
    }
}

fn profile_tls(profile: &TlsProfile, dir: &Path) -> Result<ProfileTls> {
    let ca_files: Vec<PathBuf> = profile.ca_files().iter().map(|f| dir.join(f)).collect();
    let roots = tls_config::roots(profile.system_roots(), &ca_files)?;
    let validation = match profile.certificate_validation() {
        CertificateValidation::Full => Validation::Full,
        CertificateValidation::ChainOnly => Validation::ChainOnly,
        CertificateValidation::None => Validation::None,
    };
    let validator = if roots.is_empty() {
        // Only possible with validation `none` (the policy crate refuses the others):
        // every chain is then "unchecked".
        UpstreamValidator::unchecked()
    } else {
        UpstreamValidator::new(roots, validation, tls_config::provider())
            .context("building the certificate verifier")?
    };
    Ok(ProfileTls {
        client_config: tls_config::client_config(min_version(profile))?,
        validator: Arc::new(validator),
    })
}

fn proxy_server_cert(dir: &Path) -> Result<Option<ProxyServerCert>> {
    let cert = dir.join("pki/server.crt");
    let key = dir.join("pki/server.key");
    if !cert.exists() {
        return Ok(None);
    }
    let chain = tls_config::read_certs(&cert)?;
    let key = tls_config::read_key(&key)?;
    Ok(Some(ProxyServerCert {
        tls12: tls_config::server_config(chain.clone(), key.clone_key(), MinVersion::Tls12)?,
        tls13: tls_config::server_config(chain, key, MinVersion::Tls13)?,
    }))
}
