//! Which `pki/` files the enabled policies need, and whether they are usable (SPEC §4, §6).
//!
//! One answer for `popgate check`, `run` and every reload, so that `check` says exactly
//! what a run would refuse, and so that keys no enabled policy needs are never read (a
//! reload after the privilege drop must not fail on a key nobody uses):
//! - an enabled outbound policy whose action inspects TLS (`tls.action: inspect`, TLS
//!   not `disabled`) needs the Proxy Authority, `pki/ca.crt` + `pki/ca.key`, and when its
//!   profile says `invalid_certificate: mirror-untrusted`, also `pki/untrusted-ca.*`;
//! - an enabled inbound policy that inspects TLS needs the Proxy Server certificate,
//!   `pki/server.crt` + `pki/server.key`.
//!
//! Opaque (`allow`) and refused (`drop`) TLS needs no certificate. Reading the files is the
//! only I/O; the certificate checks are `popgate_ca`'s.

use std::fmt;
use std::io;
use std::path::Path;

use popgate_ca::{server_cert, Authority, CaError};
use popgate_policy::{Config, Direction, InvalidCertificate, TlsActionKind, TlsSupport};
use time::OffsetDateTime;

/// A certificate and key pair in `pki/` that some policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkiRole {
    /// `pki/ca.*`: signs leaves for outbound clients.
    ProxyAuthority,
    /// `pki/untrusted-ca.*`: signs mirrors of invalid upstream certificates.
    UntrustedCa,
    /// `pki/server.*`: shown to inbound clients.
    ProxyServer,
}

impl PkiRole {
    const ALL: [PkiRole; 3] = [
        PkiRole::ProxyAuthority,
        PkiRole::UntrustedCa,
        PkiRole::ProxyServer,
    ];

    /// The certificate file, relative to the configuration directory.
    pub fn cert_file(self) -> &'static str {
        match self {
            PkiRole::ProxyAuthority => "pki/ca.crt",
            PkiRole::UntrustedCa => "pki/untrusted-ca.crt",
            PkiRole::ProxyServer => "pki/server.crt",
        }
    }

    /// The key file, relative to the configuration directory.
    pub fn key_file(self) -> &'static str {
        match self {
            PkiRole::ProxyAuthority => "pki/ca.key",
            PkiRole::UntrustedCa => "pki/untrusted-ca.key",
            PkiRole::ProxyServer => "pki/server.key",
        }
    }

    /// Why a policy needs it.
    fn purpose(self) -> &'static str {
        match self {
            PkiRole::ProxyAuthority => "outbound TLS inspection",
            PkiRole::UntrustedCa => "invalid_certificate: mirror-untrusted",
            PkiRole::ProxyServer => "inbound TLS inspection",
        }
    }

    /// The command that makes the files.
    fn remedy(self) -> &'static str {
        match self {
            PkiRole::ProxyAuthority | PkiRole::UntrustedCa => "popgate ca init",
            PkiRole::ProxyServer => "popgate cert server --generate --san NAME",
        }
    }
}

/// The PKI files the enabled policies of one configuration need, with the policies
/// needing each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiNeeds {
    authority: Vec<String>,
    untrusted: Vec<String>,
    server: Vec<String>,
}

/// A needed PKI file that is missing or unusable. `Display` is one line for `popgate
/// check` and the reload log: `FILE: problem; needed by policy "NAME" (purpose)`.
#[derive(Debug, thiserror::Error)]
pub enum PkiProblem {
    /// The file is not there.
    #[error("{file}: does not exist (create it with `{remedy}`); {needed_by}", remedy = .needed_by.role.remedy())]
    Missing {
        /// Relative to the configuration directory.
        file: &'static str,
        /// Who needs it.
        needed_by: NeededBy,
    },
    /// The file exists but cannot be read (permissions, I/O).
    #[error("{file}: cannot be read: {error}; {needed_by}")]
    Unreadable {
        /// Relative to the configuration directory.
        file: &'static str,
        /// Why.
        error: io::Error,
        /// Who needs it.
        needed_by: NeededBy,
    },
    /// The certificate is not for the key beside it.
    #[error("{cert}: does not match the private key {key}; {needed_by}")]
    KeyMismatch {
        /// The certificate file.
        cert: &'static str,
        /// The key file.
        key: &'static str,
        /// Who needs them.
        needed_by: NeededBy,
    },
    /// The key cannot be used (corrupt, encrypted, several keys).
    #[error("{file}: unusable private key: {error}; {needed_by}")]
    UnusableKey {
        /// The key file.
        file: &'static str,
        /// Why.
        error: CaError,
        /// Who needs it.
        needed_by: NeededBy,
    },
    /// The certificate cannot be used (unparseable, not a CA, expired, ...).
    #[error("{file}: unusable certificate: {error}; {needed_by}")]
    UnusableCertificate {
        /// The certificate file.
        file: &'static str,
        /// Why.
        error: CaError,
        /// Who needs it.
        needed_by: NeededBy,
    },
}

/// The enabled policies needing a PKI pair, and for what. `Display`: `needed by policy
/// "out" (outbound TLS inspection)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededBy {
    /// The pair.
    pub role: PkiRole,
    /// The policies' names.
    pub policies: Vec<String>,
}

impl fmt::Display for NeededBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .policies
            .iter()
            .map(|name| format!("{name:?}"))
            .collect();
        write!(
            f,
            "needed by polic{} {} ({})",
            if names.len() == 1 { "y" } else { "ies" },
            names.join(", "),
            self.role.purpose()
        )
    }
}

impl PkiNeeds {
    /// What the enabled policies of `config` need.
    pub fn of(config: &Config) -> PkiNeeds {
        let mut needs = PkiNeeds::default();
        for policy in config.enabled_policies() {
            let tls = policy.action().tls();
            if policy.tls_support() == TlsSupport::Disabled
                || tls.action() != TlsActionKind::Inspect
            {
                continue;
            }
            let name = policy.name().to_owned();
            match policy.direction() {
                Direction::Inbound => needs.server.push(name),
                Direction::Outbound => {
                    if tls.profile().invalid_certificate() == InvalidCertificate::MirrorUntrusted {
                        needs.untrusted.push(name.clone());
                    }
                    needs.authority.push(name);
                }
            }
        }
        needs
    }

    /// Whether some enabled policy needs `role`.
    pub fn needs(&self, role: PkiRole) -> bool {
        !self.policies(role).is_empty()
    }

    fn policies(&self, role: PkiRole) -> &[String] {
        match role {
            PkiRole::ProxyAuthority => &self.authority,
            PkiRole::UntrustedCa => &self.untrusted,
            PkiRole::ProxyServer => &self.server,
        }
    }

    /// Checks every needed pair under `dir` at `now`: both files readable, the key the
    /// certificate's, a CA able to sign (for the authorities), valid now. Every problem is
    /// returned, in role order.
    pub fn check(&self, dir: &Path, now: OffsetDateTime) -> Vec<PkiProblem> {
        PkiRole::ALL
            .into_iter()
            .filter(|role| self.needs(*role))
            .filter_map(|role| self.check_role(role, dir, now))
            .collect()
    }

    fn check_role(&self, role: PkiRole, dir: &Path, now: OffsetDateTime) -> Option<PkiProblem> {
        let needed_by = || NeededBy {
            role,
            policies: self.policies(role).to_vec(),
        };
        let read = |file: &'static str| {
            std::fs::read(dir.join(file)).map_err(|error| match error.kind() {
                io::ErrorKind::NotFound => PkiProblem::Missing {
                    file,
                    needed_by: needed_by(),
                },
                _ => PkiProblem::Unreadable {
                    file,
                    error,
                    needed_by: needed_by(),
                },
            })
        };
        let cert = match read(role.cert_file()) {
            Ok(cert) => cert,
            Err(problem) => return Some(problem),
        };
        let key = match read(role.key_file()) {
            Ok(key) => key,
            Err(problem) => return Some(problem),
        };
        let checked = match role {
            PkiRole::ProxyAuthority | PkiRole::UntrustedCa => {
                Authority::from_pem(&cert, &key, now).map(|_| ())
            }
            PkiRole::ProxyServer => server_cert::check_pair(&cert, &key, now),
        };
        Some(match checked.err()? {
            CaError::KeyMismatch => PkiProblem::KeyMismatch {
                cert: role.cert_file(),
                key: role.key_file(),
                needed_by: needed_by(),
            },
            error @ (CaError::EncryptedKey
            | CaError::NoPrivateKey
            | CaError::SeveralPrivateKeys
            | CaError::KeyUnparseable) => PkiProblem::UnusableKey {
                file: role.key_file(),
                error,
                needed_by: needed_by(),
            },
            error => PkiProblem::UnusableCertificate {
                file: role.cert_file(),
                error,
                needed_by: needed_by(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use popgate_ca::KeyType;
    use popgate_policy::{Source, Sources};

    use super::*;

    fn config(policies: &[(&str, &str, &str)], invalid_certificate: &str) -> Config {
        let sources = Sources {
            global: Some(Source::new("popgate.json", r#"{"interception": "tproxy"}"#)),
            policies: policies
                .iter()
                .enumerate()
                .map(|(i, (name, direction, tls_action))| {
                    Source::new(
                        format!("policies/{name}.json"),
                        format!(
                            r#"{{"name": "{name}", "order": {i}, "direction": "{direction}",
                               "from": ["any"], "to": ["any"], "proxy_action": "{tls_action}",
                               "ports": {{"pop3": {}, "pop3s": {}}}}}"#,
                            1000 + 2 * i,
                            1001 + 2 * i
                        ),
                    )
                })
                .collect(),
            actions: ["inspect", "allow"]
                .iter()
                .map(|kind| {
                    Source::new(
                        format!("actions/{kind}.json"),
                        format!(
                            r#"{{"name": "{kind}", "tls": {{"action": "{kind}", "profile": "P"}}}}"#
                        ),
                    )
                })
                .collect(),
            tls_profiles: vec![Source::new(
                "tls-profiles/p.json",
                format!(r#"{{"name": "P", "invalid_certificate": "{invalid_certificate}"}}"#),
            )],
        };
        Config::from_sources(&sources).unwrap()
    }

    #[test]
    fn only_inspecting_policies_need_certificates() {
        let needs = PkiNeeds::of(&config(
            &[
                ("out", "outbound", "inspect"),
                ("tunnel", "inbound", "allow"),
            ],
            "block",
        ));
        assert!(needs.needs(PkiRole::ProxyAuthority));
        assert!(!needs.needs(PkiRole::UntrustedCa));
        assert!(!needs.needs(PkiRole::ProxyServer));

        let needs = PkiNeeds::of(&config(
            &[("out", "outbound", "inspect"), ("in", "inbound", "inspect")],
            "mirror-untrusted",
        ));
        assert!(needs.needs(PkiRole::UntrustedCa) && needs.needs(PkiRole::ProxyServer));
        assert_eq!(
            PkiNeeds::of(&config(&[("tunnel", "outbound", "allow")], "block")),
            PkiNeeds::default()
        );
    }

    #[test]
    fn every_missing_or_mismatched_file_is_named_with_its_policies() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let needs = PkiNeeds::of(&config(
            &[
                ("out", "outbound", "inspect"),
                ("out2", "outbound", "inspect"),
                ("in", "inbound", "inspect"),
            ],
            "mirror-untrusted",
        ));
        let lines = |problems: Vec<PkiProblem>| -> Vec<String> {
            problems.iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            lines(needs.check(dir.path(), now)),
            [
                "pki/ca.crt: does not exist (create it with `popgate ca init`); needed by \
                 policies \"out\", \"out2\" (outbound TLS inspection)",
                "pki/untrusted-ca.crt: does not exist (create it with `popgate ca init`); \
                 needed by policies \"out\", \"out2\" (invalid_certificate: mirror-untrusted)",
                "pki/server.crt: does not exist (create it with `popgate cert server \
                 --generate --san NAME`); needed by policy \"in\" (inbound TLS inspection)",
            ]
        );

        std::fs::create_dir(dir.path().join("pki")).unwrap();
        let one = Authority::generate(KeyType::EcdsaP256, "CN=one", 30, now).unwrap();
        let two = Authority::generate(KeyType::EcdsaP256, "CN=two", 30, now).unwrap();
        let write = |file: &str, text: &str| std::fs::write(dir.path().join(file), text).unwrap();
        write("pki/ca.crt", &one.cert_pem);
        write("pki/ca.key", &two.key_pem);
        write("pki/untrusted-ca.crt", &two.cert_pem);
        write("pki/untrusted-ca.key", "not a key");
        let authority =
            Authority::from_pem(one.cert_pem.as_bytes(), one.key_pem.as_bytes(), now).unwrap();
        let (server_pem, _) =
            server_cert::generate(&authority, &["pop.example".to_owned()], 30, now).unwrap();
        write("pki/server.crt", &server_pem);
        write("pki/server.key", &one.key_pem);
        let problems = lines(needs.check(dir.path(), now));
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert_eq!(
            problems[0],
            "pki/ca.crt: does not match the private key pki/ca.key; needed by policies \
             \"out\", \"out2\" (outbound TLS inspection)"
        );
        assert!(
            problems[1].starts_with("pki/untrusted-ca.key: unusable private key: "),
            "{problems:#?}"
        );
        assert_eq!(
            problems[2],
            "pki/server.crt: does not match the private key pki/server.key; needed by policy \
             \"in\" (inbound TLS inspection)"
        );
    }
}
