//! `TlsProfile`: the checked `tls-profiles/NAME.json` (versions, upstream TLS, certificate
//! validation, trust, per-address TLS requirements).
//!
//! A built-in profile named `TLS-Client.Standard` with SPEC §4's example values exists so
//! that an action without `tls` works out of the box; a file defining that name replaces
//! it. CA files stay as written: resolving relative paths against the config directory and
//! reading them is I/O, which `proxy` does.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::address::{any_matches_host, any_matches_ip, AddressMatcher};
use crate::check::{Checker, Side};
use crate::defaults as d;
use crate::error::ConfigErrorKind;
use crate::raw::{
    CertificateValidation, InvalidCertificate, MinTlsVersion, RawTlsProfile, UpstreamTls,
};

/// A checked TLS profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProfile {
    name: String,
    file: Option<String>,
    min_version: MinTlsVersion,
    upstream_tls: UpstreamTls,
    certificate_validation: CertificateValidation,
    invalid_certificate: InvalidCertificate,
    system_roots: bool,
    ca_files: Vec<PathBuf>,
    force_encrypt: Vec<AddressMatcher>,
    require_client_tls: Vec<AddressMatcher>,
    require_client_tls_except: Vec<AddressMatcher>,
    tls_failure_holddown: Duration,
}

impl TlsProfile {
    /// The profile used when an action names none (or names [`d::TLS_PROFILE`] and no file
    /// defines it): SPEC §4's example values.
    pub fn builtin() -> Self {
        Self {
            name: d::TLS_PROFILE.to_owned(),
            file: None,
            min_version: d::MIN_VERSION,
            upstream_tls: d::UPSTREAM_TLS,
            certificate_validation: d::CERTIFICATE_VALIDATION,
            invalid_certificate: d::INVALID_CERTIFICATE,
            system_roots: d::SYSTEM_ROOTS,
            ca_files: Vec::new(),
            force_encrypt: Vec::new(),
            require_client_tls: Vec::new(),
            require_client_tls_except: Vec::new(),
            tls_failure_holddown: d::TLS_FAILURE_HOLDDOWN,
        }
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The defining file (relative to the config directory); `None` for the built-in one.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// Lowest TLS version on both legs.
    pub fn min_version(&self) -> MinTlsVersion {
        self.min_version
    }

    /// When popgate uses TLS toward the server.
    pub fn upstream_tls(&self) -> UpstreamTls {
        self.upstream_tls
    }

    /// How the server's certificate is checked.
    pub fn certificate_validation(&self) -> CertificateValidation {
        self.certificate_validation
    }

    /// What happens when the server's certificate fails validation.
    pub fn invalid_certificate(&self) -> InvalidCertificate {
        self.invalid_certificate
    }

    /// Whether the platform's root store is trusted.
    pub fn system_roots(&self) -> bool {
        self.system_roots
    }

    /// Extra PEM trust files as written; relative ones are relative to the config directory.
    pub fn ca_files(&self) -> &[PathBuf] {
        &self.ca_files
    }

    /// Servers (IP, CIDR, wildcard or domain) for which upstream TLS is mandatory.
    pub fn force_encrypt(&self) -> &[AddressMatcher] {
        &self.force_encrypt
    }

    /// Clients that must use TLS before logging in.
    pub fn require_client_tls(&self) -> &[AddressMatcher] {
        &self.require_client_tls
    }

    /// Clients exempted from [`Self::require_client_tls`].
    pub fn require_client_tls_except(&self) -> &[AddressMatcher] {
        &self.require_client_tls_except
    }

    /// How long a server whose TLS failed twice is contacted in plaintext.
    pub fn tls_failure_holddown(&self) -> Duration {
        self.tls_failure_holddown
    }

    /// True when upstream TLS is mandatory for this server whatever `upstream_tls` says
    /// (its address or any of its names is in `force_encrypt`).
    pub fn forces_encryption(&self, server: IpAddr, server_names: &[String]) -> bool {
        any_matches_host(&self.force_encrypt, server, server_names)
    }

    /// True when this client may not log in without TLS: it is listed in
    /// `require_client_tls` and not in `require_client_tls_except`.
    pub fn requires_client_tls(&self, client: IpAddr) -> bool {
        any_matches_ip(&self.require_client_tls, client)
            && !any_matches_ip(&self.require_client_tls_except, client)
    }

    /// Checks a parsed profile file, recording every problem.
    pub(crate) fn check(raw: RawTlsProfile, ck: &mut Checker<'_>) -> Self {
        ck.name(".name", &raw.name);
        let mut p = Self::builtin();
        p.name = raw.name;
        p.file = Some(ck.file().to_owned());
        p.min_version = raw.min_version.unwrap_or(p.min_version);
        p.upstream_tls = raw.upstream_tls.unwrap_or(p.upstream_tls);
        p.certificate_validation = raw
            .certificate_validation
            .unwrap_or(p.certificate_validation);
        p.invalid_certificate = raw.invalid_certificate.unwrap_or(p.invalid_certificate);
        if let Some(trust) = raw.trust {
            p.system_roots = trust.system_roots.unwrap_or(p.system_roots);
            for (i, file) in trust.ca_files.unwrap_or_default().into_iter().enumerate() {
                if file.trim().is_empty() {
                    ck.error(format!(".trust.ca_files[{i}]"), ConfigErrorKind::Empty);
                }
                p.ca_files.push(Path::new(&file).to_path_buf());
            }
        }
        let validating = p.certificate_validation != CertificateValidation::None;
        if validating && !p.system_roots && p.ca_files.is_empty() {
            let kind = ConfigErrorKind::NoTrustAnchors {
                validation: p.certificate_validation,
            };
            ck.error(".trust", kind);
        }
        let list = |ck: &mut Checker<'_>, path, entries: Option<Vec<String>>, side| {
            ck.matchers(path, &entries.unwrap_or_default(), side, false)
        };
        p.force_encrypt = list(ck, ".force_encrypt", raw.force_encrypt, Side::Server);
        p.require_client_tls = list(
            ck,
            ".require_client_tls",
            raw.require_client_tls,
            Side::Client,
        );
        p.require_client_tls_except = list(
            ck,
            ".require_client_tls_except",
            raw.require_client_tls_except,
            Side::Client,
        );
        if let Some(s) = raw.tls_failure_holddown_s {
            let s = ck.range(".tls_failure_holddown_s", s, 0, d::MAX_HOLDDOWN_S);
            p.tls_failure_holddown = Duration::from_secs(s);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::parse_json;

    fn check(json: &str) -> (TlsProfile, Vec<String>) {
        let raw: RawTlsProfile = parse_json("tls-profiles/t.json", json.as_bytes()).unwrap();
        let mut errors = Vec::new();
        let p = TlsProfile::check(raw, &mut Checker::new("tls-profiles/t.json", &mut errors));
        (p, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn minimal_profile_takes_builtin_values() {
        let (p, errors) = check(r#"{"name": "T"}"#);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p.name(), "T");
        assert_eq!(p.file(), Some("tls-profiles/t.json"));
        assert_eq!(p.min_version(), MinTlsVersion::Tls12);
        assert_eq!(p.upstream_tls(), UpstreamTls::Match);
        assert_eq!(p.tls_failure_holddown(), Duration::from_secs(300));
        assert!(p.system_roots());
    }

    #[test]
    fn client_tls_requirement_honours_exceptions() {
        let (p, errors) = check(
            r#"{"name": "T", "require_client_tls": ["10.0.0.0/8", "2001:db8::/32"],
                "require_client_tls_except": ["10.1.*.*"]}"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(p.requires_client_tls("10.2.0.1".parse().unwrap()));
        assert!(!p.requires_client_tls("10.1.0.1".parse().unwrap()));
        assert!(!p.requires_client_tls("192.168.0.1".parse().unwrap()));
        assert!(p.requires_client_tls("2001:db8::7".parse().unwrap()));
    }

    #[test]
    fn force_encrypt_matches_names_and_addresses() {
        let (p, _) = check(r#"{"name": "T", "force_encrypt": ["example.com", "207.219.44.0/24"]}"#);
        let ip = "1.2.3.4".parse().unwrap();
        assert!(p.forces_encryption(ip, &["EXAMPLE.COM".to_owned()]));
        assert!(p.forces_encryption("207.219.44.9".parse().unwrap(), &[]));
        assert!(!p.forces_encryption(ip, &["pop.example.com".to_owned()]));
    }

    #[test]
    fn no_trust_anchors_is_an_error() {
        let (_, errors) = check(r#"{"name": "T", "trust": {"system_roots": false}}"#);
        assert_eq!(
            errors,
            [
                "tls-profiles/t.json: .trust: certificate_validation \"full\" needs \
              trust.system_roots or trust.ca_files"
            ]
        );
        let (_, errors) = check(
            r#"{"name": "T", "certificate_validation": "none", "trust": {"system_roots": false}}"#,
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn client_lists_refuse_domains() {
        let (_, errors) =
            check(r#"{"name": "T", "require_client_tls": ["10.0.0.1", "example.com"]}"#);
        assert_eq!(
            errors,
            ["tls-profiles/t.json: .require_client_tls[1]: a domain never matches a client address"]
        );
    }
}
