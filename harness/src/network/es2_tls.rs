//! TLS of the BOSS's ES2+ endpoint, where the SM-DP+ calls ES2+.HandleDownloadProgressInfo
//! (GSMA SGP.22 v2.5 §5.3.5). ES2+ is mutually authenticated TLS in both directions (SGP.22
//! §2.6.6): here the BOSS is the server and authenticates with the operator's TLS server
//! certificate (`Operator/CERT_BOSS_SERVER_NIST`, [`crate::pki::operator`]); the SM-DP+ is the
//! client and authenticates with its CERT.DP.TLS, which SGP.22 §4.5.2.1.0.3 gives the
//! extendedKeyUsage clientAuth for exactly this.
//!
//! A client is accepted only when its certificate chains to the SM-DP+'s TLS root (the GSMA
//! CI that issued CERT.DP.TLS; for an SM-DP+ elsewhere, the root given for it) AND carries the
//! certificate policy id-rspRole-dp-tls (SGP.22 §4.5.2.1: 2.23.146.1.2.1.3): other
//! certificates under the same CI — an SM-DS's TLS certificate, say — are not SM-DP+s. Both
//! checks happen in the TLS handshake, so a refused client never reaches the route.

use crate::defaults::Files;
use crate::pki::profiles::oid::ID_RSP_ROLE_DP_TLS;
use crate::pki::OperatorIdentity;
use anyhow::Context as _;
use der::Decode as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;
use x509_cert::ext::pkix::CertificatePolicies;
use x509_cert::Certificate;

/// Whether `cert_der` is an SM-DP+ TLS certificate: its certificatePolicies name
/// id-rspRole-dp-tls (SGP.22 §4.5.2.1.0.3).
pub fn is_smdp_tls_certificate(cert_der: &[u8]) -> bool {
    let Ok(cert) = Certificate::from_der(cert_der) else {
        return false;
    };
    matches!(
        cert.tbs_certificate.get::<CertificatePolicies>(),
        Ok(Some((_, policies))) if policies.0.iter().any(|p| p.policy_identifier == ID_RSP_ROLE_DP_TLS)
    )
}

/// rustls' WebPKI client verification (chain to the roots, validity, EKU clientAuth) followed
/// by the SM-DP+ role check.
#[derive(Debug)]
struct SmdpClientVerifier {
    chain: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for SmdpClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        if !is_smdp_tls_certificate(end_entity) {
            tracing::warn!(
                "ES2+ endpoint: refused a client certificate without the SM-DP+ TLS role \
                 (id-rspRole-dp-tls)"
            );
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The server configuration of the BOSS's ES2+ endpoint: the operator's TLS server
/// certificate of the PKI `pki`, and a client certificate required that chains to
/// `smdp_root` (DER) and is an SM-DP+ TLS certificate.
pub fn server_config(pki: &Files, smdp_root: &[u8]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(smdp_root.to_vec()))
        .context("the SM-DP+'s TLS root is not usable as a trust anchor")?;
    let chain = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .context("ES2+ endpoint: client certificate verifier")?;
    let identity = OperatorIdentity::load_server(pki.clone())
        .context("the BOSS's ES2+ endpoint certificate (Operator/ of the PKI)")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8_der));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(SmdpClientVerifier { chain }))
        .with_single_cert(vec![CertificateDer::from(identity.cert_der)], key)
        .context("ES2+ endpoint: TLS certificate and key")?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{cert_path, Curve, Role};
    use rstest::rstest;

    #[rstest]
    #[case::dp_tls(Role::DpTls, true)]
    #[case::dp_auth(Role::DpAuth, false)]
    #[case::dp_pb(Role::DpPb, false)]
    #[case::ci(Role::Ci, false)]
    fn only_the_smdp_tls_certificate_has_the_smdp_tls_role(#[case] role: Role, #[case] is: bool) {
        let der = Files::pki().read(cert_path(role, Curve::Nist)).unwrap();
        assert_eq!(is_smdp_tls_certificate(&der), is);
    }

    #[test]
    fn neither_an_operator_certificate_nor_garbage_is_an_smdp() {
        let boss = OperatorIdentity::load(Files::pki()).unwrap();
        assert!(!is_smdp_tls_certificate(&boss.cert_der));
        assert!(!is_smdp_tls_certificate(b"not a certificate"));
    }

    #[test]
    fn the_built_in_pki_makes_an_endpoint_configuration() {
        let ci = Files::pki().read(cert_path(Role::Ci, Curve::Nist)).unwrap();
        server_config(&Files::pki(), &ci).unwrap();
        let e = server_config(&Files::pki(), b"junk").unwrap_err();
        assert!(format!("{e:#}").contains("trust anchor"), "{e:#}");
    }
}
