//! Minting: a leaf certificate that mirrors an upstream server's certificate, signed by the
//! Proxy Authority (or the untrusted CA), for the client side of an outbound session.
//!
//! The hot path. All leaves of a process share one ECDSA P-256 key, so a mint costs one parse
//! of the upstream certificate and one CA signature. Caching is [`CertCache`]'s job; TLS is
//! the proxy's (it turns [`MintedCert`] into a rustls certified key).
//!
//! [`CertCache`]: crate::CertCache

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::cert_info::{ip_from_bytes, is_host_name, parse_certificate};
use crate::{extension, serial, Authority, Fingerprint, MintError};

/// RFC 5280's upper bound for a common name, in characters.
const MAX_COMMON_NAME_CHARS: usize = 64;

/// Validity of a leaf minted for a bare host name ([`Minter::mint_for_host`]), in days.
pub const HOST_LEAF_DAYS: i64 = 7;

/// Mints leaves signed by one authority with one shared leaf key.
///
/// Contract: build once per authority (at start and on reload), share by reference or `Arc`,
/// call [`Minter::mint`] from any thread.
pub struct Minter {
    authority: Arc<Authority>,
    leaf_key: KeyPair,
    leaf_key_der: Arc<PrivatePkcs8KeyDer<'static>>,
    /// The extensions every leaf carries, built once (rcgen's own BasicConstraints and
    /// KeyUsage are not valid DER, see `extension`): BasicConstraints without `cA`,
    /// KeyUsage (keyEncipherment only for an RSA leaf key: RSA key exchange), and the shared
    /// key's subjectKeyIdentifier.
    leaf_extensions: Vec<CustomExtension>,
}

/// A minted leaf with everything a TLS server config needs.
#[derive(Debug)]
pub struct MintedCert {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivatePkcs8KeyDer<'static>>,
    not_after: OffsetDateTime,
    minted_at: OffsetDateTime,
}

impl Minter {
    /// A minter for `authority`, using `leaf_key` (from
    /// [`generate_leaf_key`](crate::generate_leaf_key)) for every leaf.
    pub fn new(authority: Arc<Authority>, leaf_key: KeyPair) -> Self {
        let leaf_key_der = Arc::new(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let is_rsa = [
            &rcgen::PKCS_RSA_SHA256,
            &rcgen::PKCS_RSA_SHA384,
            &rcgen::PKCS_RSA_SHA512,
        ]
        .contains(&leaf_key.algorithm());
        let mut leaf_key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if is_rsa {
            leaf_key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        let leaf_extensions = vec![
            extension::end_entity_basic_constraints(),
            extension::key_usage(&leaf_key_usages),
            extension::subject_key_identifier(&leaf_key.public_key_der()),
        ];
        Self {
            authority,
            leaf_key,
            leaf_key_der,
            leaf_extensions,
        }
    }

    /// The authority that signs this minter's leaves.
    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
    }

    /// The shared leaf key, for building the TLS signing key once per process.
    pub fn leaf_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.leaf_key_der.clone_key())
    }

    /// Mints a leaf mirroring `upstream_cert_der` (the server's end-entity certificate).
    ///
    /// The leaf carries the upstream's DNS and IP subject alternative names as they are
    /// (wildcards included) and its common name (cut to 64 characters). Without SANs, a common
    /// name that is a host name or IP address becomes the only SAN. Validity mirrors the
    /// upstream's, clamped into the authority's: an expired upstream certificate gives an
    /// expired leaf, so the client sees the failure it would have seen. Key usage
    /// digitalSignature (plus keyEncipherment for an RSA leaf key), EKU serverAuth, CA:false,
    /// a random serial, and the authority's key identifier.
    ///
    /// # Errors
    /// [`MintError::UpstreamUnparseable`] for garbage, [`MintError::NoNames`],
    /// [`MintError::AuthorityExpired`] at `now`, [`MintError::UpstreamValidityInverted`],
    /// [`MintError::Signing`]. Never panics on upstream bytes.
    pub fn mint(
        &self,
        upstream_cert_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<MintedCert, MintError> {
        let authority = &self.authority;
        if now > authority.not_after() {
            return Err(MintError::AuthorityExpired {
                not_after: authority.not_after(),
            });
        }
        let upstream =
            parse_certificate(upstream_cert_der).map_err(MintError::UpstreamUnparseable)?;
        let names = Names::of(&upstream)?;
        let (not_before, not_after) = mirrored_validity(&upstream, authority)?;
        self.sign(names, not_before, not_after, now)
    }

    /// Mints a leaf naming only `host` (a DNS name or an IP address), valid from an hour
    /// before `now` for [`HOST_LEAF_DAYS`] days (clamped into the authority's validity).
    ///
    /// For a client TLS leg with no upstream certificate to mirror (the server leg is
    /// plaintext): the client is shown the name it asked for, signed by the authority.
    ///
    /// # Errors
    /// [`MintError::NoNames`] when `host` is neither a host name nor an IP address,
    /// [`MintError::AuthorityExpired`] at `now`, [`MintError::Signing`].
    pub fn mint_for_host(&self, host: &str, now: OffsetDateTime) -> Result<MintedCert, MintError> {
        let authority = &self.authority;
        if now > authority.not_after() {
            return Err(MintError::AuthorityExpired {
                not_after: authority.not_after(),
            });
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let san = san_from_common_name(host).ok_or(MintError::NoNames)?;
        let names = Names {
            common_name: san_text(&san),
            sans: vec![san],
        };
        let clamp =
            |time: OffsetDateTime| time.clamp(authority.not_before(), authority.not_after());
        let not_before = clamp(now - time::Duration::hours(1));
        let not_after = clamp(now + time::Duration::days(HOST_LEAF_DAYS));
        self.sign(names, not_before, not_after, now)
    }

    fn sign(
        &self,
        names: Names,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<MintedCert, MintError> {
        let authority = &self.authority;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, names.common_name);
        params.subject_alt_names = names.sans;
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(serial::random_serial().ok_or(MintError::RandomUnavailable)?);
        params.is_ca = IsCa::NoCa;
        params.custom_extensions = self.leaf_extensions.clone();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf = params
            .signed_by(&self.leaf_key, authority.issuer(), authority.key())
            .map_err(|e| MintError::Signing(Arc::new(e)))?;

        let mut chain = Vec::with_capacity(2 + authority.chain_above().len());
        chain.push(CertificateDer::from(leaf));
        chain.push(authority.cert_der().clone());
        chain.extend(authority.chain_above().iter().cloned());
        Ok(MintedCert {
            chain,
            key: self.leaf_key_der.clone(),
            not_after,
            minted_at: now,
        })
    }

    pub(crate) fn authority_id(&self) -> Fingerprint {
        self.authority.id()
    }
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material in Debug output.
        f.debug_struct("Minter")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl MintedCert {
    /// The chain to present: the leaf, the authority, then any certificates above it.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The minted leaf alone.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // `mint` always puts the leaf first.
        &self.chain[0]
    }

    /// The leaf's private key (the process-wide leaf key).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// End of the leaf's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether the leaf has expired since it was minted, so a cache should mint again. A leaf
    /// minted already expired (mirroring an expired upstream certificate) is never stale:
    /// minting again would give the same answer.
    pub fn is_stale(&self, now: OffsetDateTime) -> bool {
        now > self.not_after && self.not_after >= self.minted_at
    }
}

/// The names a leaf carries.
struct Names {
    common_name: String,
    sans: Vec<SanType>,
}

impl Names {
    fn of(upstream: &X509Certificate<'_>) -> Result<Names, MintError> {
        let common_name = upstream
            .subject()
            .iter_common_name()
            .find_map(|attribute| attribute.as_str().ok())
            .map(str::trim)
            .filter(|name| !name.is_empty());
        // A duplicated or broken SAN extension is the peer's fault: refuse, never guess.
        let mut sans: Vec<SanType> = match upstream
            .subject_alternative_name()
            .map_err(MintError::UpstreamUnparseable)?
        {
            Some(extension) => extension
                .value
                .general_names
                .iter()
                .filter_map(mirror_san)
                .collect(),
            None => Vec::new(),
        };
        if sans.is_empty() {
            sans.extend(common_name.and_then(san_from_common_name));
        }
        let common_name = match common_name {
            Some(name) => name.chars().take(MAX_COMMON_NAME_CHARS).collect(),
            // An empty subject would need a critical SAN extension; name the first SAN
            // instead.
            None => sans.first().map(san_text).ok_or(MintError::NoNames)?,
        };
        Ok(Names { common_name, sans })
    }
}

/// The upstream validity clamped into the authority's, so a leaf never outlives its issuer.
/// An upstream period wholly before (or after) the authority's collapses onto the authority's
/// first (or last) second: the leaf is then expired (or not yet valid) like the original.
fn mirrored_validity(
    upstream: &X509Certificate<'_>,
    authority: &Authority,
) -> Result<(OffsetDateTime, OffsetDateTime), MintError> {
    let upstream_start = upstream.validity().not_before.to_datetime();
    let upstream_end = upstream.validity().not_after.to_datetime();
    if upstream_start > upstream_end {
        return Err(MintError::UpstreamValidityInverted);
    }
    let clamp = |time: OffsetDateTime| time.clamp(authority.not_before(), authority.not_after());
    Ok((clamp(upstream_start), clamp(upstream_end)))
}

/// The upstream SAN as ours, for DNS names (ASCII, as IA5String requires) and IP addresses.
fn mirror_san(name: &GeneralName<'_>) -> Option<SanType> {
    match name {
        GeneralName::DNSName(dns) => dns.to_string().try_into().ok().map(SanType::DnsName),
        GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(SanType::IpAddress),
        _ => None,
    }
}

fn san_from_common_name(name: &str) -> Option<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(SanType::IpAddress(ip));
    }
    if is_host_name(name) {
        return name.to_owned().try_into().ok().map(SanType::DnsName);
    }
    None
}

fn san_text(san: &SanType) -> String {
    match san {
        SanType::DnsName(dns) => dns.as_str().chars().take(MAX_COMMON_NAME_CHARS).collect(),
        SanType::IpAddress(ip) => ip.to_string(),
        // `mirror_san` and `san_from_common_name` only produce the two kinds above.
        _ => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::Ipv4Addr;

    use rcgen::{BasicConstraints, KeyPair};
    use time::Duration;
    use x509_parser::prelude::FromDer;

    use super::*;
    use crate::authority::tests::{now, rsa_test_ca, test_authority};
    use crate::{generate_leaf_key, CertInfo};

    /// A self-signed "upstream" certificate with the given CN and SANs.
    pub(crate) fn upstream(common_name: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        upstream_valid(
            common_name,
            sans,
            now() - Duration::days(30),
            now() + Duration::days(60),
        )
    }

    fn upstream_valid(
        common_name: Option<&str>,
        sans: Vec<SanType>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(name) = common_name {
            params.distinguished_name.push(DnType::CommonName, name);
        }
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Upstream Inc");
        params.subject_alt_names = sans;
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.to_owned().try_into().unwrap())
    }

    pub(crate) fn minter() -> Minter {
        Minter::new(Arc::new(test_authority()), generate_leaf_key().unwrap())
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        X509Certificate::from_der(der).unwrap().1
    }

    #[test]
    fn leaf_minted_for_a_host_names_only_that_host() {
        let minter = minter();
        for (host, san) in [
            ("pop.example.net", "pop.example.net"),
            ("192.0.2.9", "192.0.2.9"),
            ("[2001:db8::2]", "2001:db8::2"),
        ] {
            let minted = minter.mint_for_host(host, now()).unwrap();
            let ca = parse(minter.authority().cert_der());
            parse(minted.leaf())
                .verify_signature(Some(ca.public_key()))
                .unwrap();
            let info = CertInfo::from_der(minted.leaf(), now()).unwrap();
            assert_eq!(info.sans, [san]);
            assert_eq!(info.subject, format!("CN={san}"));
            assert_eq!(info.not_after, now() + Duration::days(HOST_LEAF_DAYS));
        }
        assert!(matches!(
            minter.mint_for_host("not a host", now()),
            Err(MintError::NoNames)
        ));
    }

    #[test]
    fn minted_leaves_are_strict_der_and_keep_their_extensions() {
        let minter = minter();
        let minted = minter
            .mint(
                &upstream(Some("pop.example.net"), vec![dns("pop.example.net")]),
                now(),
            )
            .unwrap();
        let host = minter.mint_for_host("192.0.2.9", now()).unwrap();
        for leaf in [minted.leaf(), host.leaf()] {
            crate::strict_der::check(leaf).unwrap();
            let parsed = parse(leaf);
            let constraints = parsed.basic_constraints().unwrap().unwrap();
            assert!(constraints.critical && !constraints.value.ca);
            assert!(parsed.key_usage().unwrap().unwrap().critical);
            let ski = parsed.extensions().iter().find(|ext| {
                ext.oid == x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER
            });
            assert!(ski.is_some(), "leaf without subjectKeyIdentifier");
        }
    }

    #[test]
    fn minted_leaf_is_signed_by_the_ca_and_mirrors_the_names() {
        let minter = minter();
        let sans = vec![
            dns("pop.example.net"),
            dns("*.example.net"),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
            SanType::IpAddress("2001:db8::1".parse().unwrap()),
        ];
        let minted = minter
            .mint(&upstream(Some("pop.example.net"), sans), now())
            .unwrap();
        assert_eq!(minted.chain().len(), 2);
        assert_eq!(&minted.chain()[1], minter.authority().cert_der());
        let ca = parse(minter.authority().cert_der());
        let leaf = parse(minted.leaf());
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());

        let info = CertInfo::from_der(minted.leaf(), now()).unwrap();
        assert_eq!(info.subject, "CN=pop.example.net");
        assert_eq!(
            info.sans,
            [
                "pop.example.net",
                "*.example.net",
                "203.0.113.7",
                "2001:db8::1"
            ]
        );
        assert!(!info.is_ca);
        assert_eq!(info.not_after, now() + Duration::days(60));
        // Clipped to the authority's start.
        assert_eq!(info.not_before, minter.authority().not_before());

        let usage = leaf.key_usage().unwrap().unwrap().value;
        assert!(usage.digital_signature() && !usage.key_encipherment() && !usage.key_cert_sign());
        assert!(
            leaf.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        let aki = leaf
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => None,
            });
        let ski = ca
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(id.0.to_vec())
                }
                _ => None,
            });
        assert_eq!(aki, ski);
        assert!(aki.is_some());
    }

    #[test]
    fn every_mint_gets_a_new_serial_and_shares_the_key() {
        let minter = minter();
        let der = upstream(Some("pop.example.net"), vec![dns("pop.example.net")]);
        let a = minter.mint(&der, now()).unwrap();
        let b = minter.mint(&der, now()).unwrap();
        assert_ne!(parse(a.leaf()).raw_serial(), parse(b.leaf()).raw_serial());
        assert_eq!(a.key_der().secret_der(), b.key_der().secret_der());
        assert_eq!(a.key_der().secret_der(), minter.leaf_key_der().secret_der());
    }

    /// One row of the odd-names table: what upstream carries, what the leaf must carry.
    struct NameCase<'a> {
        cn: Option<&'a str>,
        sans: Vec<SanType>,
        subject: String,
        minted_sans: Vec<&'a str>,
    }

    fn case<'a>(
        cn: Option<&'a str>,
        sans: Vec<SanType>,
        subject: &str,
        minted_sans: Vec<&'a str>,
    ) -> NameCase<'a> {
        let subject = subject.to_owned();
        NameCase {
            cn,
            sans,
            subject,
            minted_sans,
        }
    }

    #[test]
    fn odd_upstream_names_mint_predictably() {
        let long_cn = "a".repeat(70);
        let long_host = format!("{}.example.com", "b".repeat(60));
        let ip = |text: &str| SanType::IpAddress(text.parse().unwrap());
        let pop = || vec![dns("pop.example.com")];
        let cases = [
            // Wildcards stay as they are.
            case(
                Some("*.example.com"),
                vec![dns("*.example.com")],
                "CN=*.example.com",
                vec!["*.example.com"],
            ),
            // IP-only, no CN: the CN names the address.
            case(
                None,
                vec![ip("192.0.2.1")],
                "CN=192.0.2.1",
                vec!["192.0.2.1"],
            ),
            // No SAN: a host-name or IP CN becomes the SAN.
            case(
                Some("legacy.example.com"),
                vec![],
                "CN=legacy.example.com",
                vec!["legacy.example.com"],
            ),
            case(Some("192.0.2.9"), vec![], "CN=192.0.2.9", vec!["192.0.2.9"]),
            // No SAN and a CN that is no host name: mirrored, without SAN.
            case(
                Some("Example Mail Server"),
                vec![],
                "CN=Example Mail Server",
                vec![],
            ),
            // Long CN: cut to 64 characters, SANs kept.
            case(
                Some(&long_cn),
                pop(),
                &format!("CN={}", &long_cn[..64]),
                vec!["pop.example.com"],
            ),
            // No CN and a long SAN: the CN is the SAN cut to 64 characters.
            case(
                None,
                vec![dns(&long_host)],
                &format!("CN={}", &long_host[..64]),
                vec![&long_host],
            ),
            // Special characters in the CN survive.
            case(Some("x, y"), pop(), r"CN=x\, y", vec!["pop.example.com"]),
        ];
        let minter = minter();
        for NameCase {
            cn,
            sans,
            subject,
            minted_sans,
        } in cases
        {
            let minted = minter.mint(&upstream(cn, sans), now()).unwrap();
            let info = CertInfo::from_der(minted.leaf(), now()).unwrap();
            assert_eq!(info.subject, subject, "{cn:?}");
            assert_eq!(info.sans, minted_sans, "{cn:?}");
        }
    }

    #[test]
    fn upstream_without_any_name_is_refused() {
        let err = minter().mint(&upstream(None, vec![]), now()).unwrap_err();
        assert!(matches!(err, MintError::NoNames), "{err:?}");
    }

    #[test]
    fn upstream_garbage_is_a_typed_error() {
        let minter = minter();
        let good = upstream(Some("pop.example.net"), vec![dns("pop.example.net")]);
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0x30], b"hello".to_vec(), vec![0xff; 300]];
        // Every prefix and a flipped byte at every position of a real certificate.
        inputs.extend((0..good.len()).step_by(7).map(|len| good[..len].to_vec()));
        inputs.extend((0..good.len()).step_by(5).map(|i| {
            let mut bad = good.clone();
            bad[i] ^= 0x55;
            bad
        }));
        for input in inputs {
            // Any answer but a panic; the truncations must fail.
            let _ = minter.mint(&input, now());
        }
        for len in [0, 1, 10, good.len() / 2, good.len() - 1] {
            assert!(matches!(
                minter.mint(&good[..len], now()),
                Err(MintError::UpstreamUnparseable(_))
            ));
        }
    }

    #[test]
    fn expired_upstream_gives_an_expired_leaf() {
        let minter = minter();
        // Expired before the authority existed: collapses onto the authority's first second.
        let der = upstream_valid(
            Some("old.example.net"),
            vec![dns("old.example.net")],
            now() - Duration::days(100),
            now() - Duration::days(2),
        );
        let minted = minter.mint(&der, now()).unwrap();
        assert_eq!(minted.not_after(), minter.authority().not_before());
        assert!(minted.not_after() < now());
        assert!(!minted.is_stale(now()));
    }

    #[test]
    fn upstream_valid_only_after_the_authority_gives_a_not_yet_valid_leaf() {
        let minter = minter();
        let der = upstream_valid(
            Some("future.example.net"),
            vec![dns("future.example.net")],
            now() + Duration::days(5000),
            now() + Duration::days(6000),
        );
        let minted = minter.mint(&der, now()).unwrap();
        let info = CertInfo::from_der(minted.leaf(), now()).unwrap();
        assert_eq!(info.not_before, minter.authority().not_after());
        assert_eq!(info.not_after, minter.authority().not_after());
    }

    #[test]
    fn upstream_with_inverted_validity_is_refused() {
        let der = upstream_valid(
            Some("odd.example.net"),
            vec![],
            now() + Duration::days(1),
            now() - Duration::days(1),
        );
        let err = minter().mint(&der, now()).unwrap_err();
        assert!(
            matches!(err, MintError::UpstreamValidityInverted),
            "{err:?}"
        );
    }

    #[test]
    fn expired_authority_refuses_to_mint() {
        let minter = minter();
        let der = upstream(Some("pop.example.net"), vec![]);
        let later = minter.authority().not_after() + Duration::seconds(1);
        let err = minter.mint(&der, later).unwrap_err();
        assert!(matches!(err, MintError::AuthorityExpired { .. }), "{err:?}");
    }

    #[test]
    fn rsa_authority_mints_verifiable_leaves() {
        let ca = rsa_test_ca();
        let authority =
            Authority::from_pem(ca.cert_pem.as_bytes(), ca.key_pem.as_bytes(), now()).unwrap();
        let minter = Minter::new(Arc::new(authority), generate_leaf_key().unwrap());
        let minted = minter
            .mint(
                &upstream(Some("pop.example.net"), vec![dns("pop.example.net")]),
                now(),
            )
            .unwrap();
        let ca = parse(minter.authority().cert_der());
        parse(minted.leaf())
            .verify_signature(Some(ca.public_key()))
            .unwrap();
    }

    #[test]
    fn openssl_made_ca_mints_leaves_that_chain_byte_for_byte() {
        use crate::authority::tests::{openssl_ca_now, OPENSSL_CA_CERT, OPENSSL_CA_KEY};
        let now = openssl_ca_now();
        let authority =
            Authority::from_pem(OPENSSL_CA_CERT.as_bytes(), OPENSSL_CA_KEY.as_bytes(), now)
                .unwrap();
        let minter = Minter::new(Arc::new(authority), generate_leaf_key().unwrap());
        let der = upstream_valid(
            Some("pop.example.net"),
            vec![dns("pop.example.net")],
            now - Duration::days(1),
            now + Duration::days(1),
        );
        let minted = minter.mint(&der, now).unwrap();
        let ca = parse(minter.authority().cert_der());
        let leaf = parse(minted.leaf());
        assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
        leaf.verify_signature(Some(ca.public_key())).unwrap();
    }

    #[test]
    fn unconstrained_ca_with_chain_is_sent_whole() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = now() - Duration::days(1);
        params.not_after = now() + Duration::days(10);
        let ca = params.self_signed(&key).unwrap();
        let root_pem = crate::authority::tests::test_ca().cert_pem.clone();
        let cert_pem = format!("{}{}", ca.pem(), root_pem);
        let authority =
            Authority::from_pem(cert_pem.as_bytes(), key.serialize_pem().as_bytes(), now())
                .unwrap();
        let minter = Minter::new(Arc::new(authority), generate_leaf_key().unwrap());
        let minted = minter
            .mint(&upstream(Some("a.example"), vec![]), now())
            .unwrap();
        assert_eq!(minted.chain().len(), 3);
        // Clipped to the authority's end.
        assert_eq!(minted.not_after(), now() + Duration::days(10));
    }
}
