//! Upstream certificate validation, done after the handshake and before any POP3 byte.
//!
//! rustls is given a verifier that checks the handshake signature but accepts any chain;
//! the chain is then judged here against the profile's `certificate_validation`, so an
//! invalid certificate can be refused (`block`) or mirrored to the client with the
//! untrusted CA (`mirror-untrusted`) instead of simply failing the handshake.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::valid_chains::ValidChains;

/// The profile's `certificate_validation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Chain to a trusted root and the name must match.
    Full,
    /// Chain to a trusted root; any name.
    ChainOnly,
    /// Anything (the result is still recorded).
    None,
}

/// What validation found, for the session summary and the policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationResult {
    /// Valid under the profile's rules.
    Valid,
    /// Not checked (`none`); `detail` is what a full check would have said.
    Unchecked {
        /// The full check's outcome.
        detail: String,
    },
    /// Invalid: the reason.
    Invalid(String),
}

impl ValidationResult {
    /// Whether the session may go on as if the certificate were trusted.
    pub fn is_acceptable(&self) -> bool {
        !matches!(self, ValidationResult::Invalid(_))
    }
}

impl fmt::Display for ValidationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationResult::Valid => f.write_str("valid"),
            ValidationResult::Unchecked { detail } => write!(f, "unchecked ({detail})"),
            ValidationResult::Invalid(reason) => write!(f, "invalid: {reason}"),
        }
    }
}

/// Judges upstream chains against a root store.
#[derive(Debug)]
pub struct UpstreamValidator {
    /// `None` when there are no trust anchors at all (only allowed with validation `none`).
    webpki: Option<Arc<WebPkiServerVerifier>>,
    validation: Validation,
    /// Chains found valid before: judged once per server, not once per session.
    valid: ValidChains,
}

impl UpstreamValidator {
    /// A validator over `roots`.
    ///
    /// # Errors
    /// The root store is empty or unusable.
    pub fn new(
        roots: RootCertStore,
        validation: Validation,
        provider: Arc<CryptoProvider>,
    ) -> Result<UpstreamValidator, rustls::client::VerifierBuilderError> {
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(UpstreamValidator {
            webpki: Some(webpki),
            validation,
            valid: ValidChains::default(),
        })
    }

    /// A validator without trust anchors: every chain is recorded as unchecked.
    pub fn unchecked() -> UpstreamValidator {
        UpstreamValidator {
            webpki: None,
            validation: Validation::None,
            valid: ValidChains::default(),
        }
    }

    /// Judges the chain the server presented for `name`.
    pub fn judge(&self, chain: &[CertificateDer<'_>], name: &ServerName<'_>) -> ValidationResult {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return ValidationResult::Invalid("no certificate".into());
        };
        let Some(webpki) = &self.webpki else {
            return ValidationResult::Unchecked {
                detail: "no trust anchors configured".into(),
            };
        };
        let full = self
            .valid
            .verify(webpki, leaf, intermediates, name, UnixTime::now());
        match (self.validation, full) {
            (_, Ok(_)) => ValidationResult::Valid,
            (Validation::None, Err(err)) => ValidationResult::Unchecked {
                detail: err.to_string(),
            },
            (Validation::ChainOnly, Err(rustls::Error::InvalidCertificate(cert_err)))
                if is_name_error(&cert_err) =>
            {
                ValidationResult::Valid
            }
            (_, Err(err)) => ValidationResult::Invalid(err.to_string()),
        }
    }
}

impl UpstreamValidator {
    /// Whether the chain proves `name` whatever the profile's `certificate_validation`: it
    /// chains to a trusted root and the leaf is valid for the name. This is how a name a
    /// client chose (SNI) is confirmed before it may select a policy (SPEC §4).
    pub fn proves_name(&self, chain: &[CertificateDer<'_>], name: &ServerName<'_>) -> bool {
        let (Some(webpki), Some((leaf, intermediates))) = (&self.webpki, chain.split_first())
        else {
            return false;
        };
        self.valid
            .verify(webpki, leaf, intermediates, name, UnixTime::now())
            .is_ok()
    }
}

fn is_name_error(err: &rustls::CertificateError) -> bool {
    matches!(
        err,
        rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. }
    )
}

/// The verifier rustls runs during the handshake: signatures checked, chain deferred.
#[derive(Debug)]
pub struct DeferredChainVerifier {
    provider: Arc<CryptoProvider>,
}

impl DeferredChainVerifier {
    /// A verifier using `provider`'s signature algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> DeferredChainVerifier {
        DeferredChainVerifier { provider }
    }
}

impl ServerCertVerifier for DeferredChainVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Judged by `UpstreamValidator` right after the handshake, before any POP3 byte.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
