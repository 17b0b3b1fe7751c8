//! The certificate checks the eUICC makes (SGP.22 v2.5 §4.5.2 certificate profiles, §5.7.13
//! and §5.7.5 "verify that the certificate is valid"): a server certificate must be signed by
//! the CI it names (its AuthorityKeyIdentifier is that CI's SubjectKeyIdentifier), carry the
//! role policy of its use, and its key must be on a supported curve. Also reads the SM-DP+
//! OID (SubjectAltName registeredID, §4.5.2.x) that notifications and CancelSession carry.
//!
//! A card has no clock: validity periods are not checked (SGP.22 §4.5.2.0 lets the eUICC
//! skip them). Only the walking of X.509 structures is written here (over [`crate::tlv`]);
//! signatures are RustCrypto's via [`crate::rsp::ecdsa`].

use crate::rsp::ecdsa::{CertificateParts, VerifyingKey};
use crate::tlv::{self, Tlv};
use thiserror::Error;

/// X.509 extension OIDs (RFC 5280 §4.2.1), DER values.
const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1D, 0x0E];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1D, 0x23];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];
const OID_CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1D, 0x20];
/// `id-rspRole` arc 2.23.146.1.2.1 (SGP.22 §4.5.2.1): roles are one more arc.
const OID_RSP_ROLE_PREFIX: &[u8] = &[0x67, 0x81, 0x12, 0x01, 0x02, 0x01];

const TAG_SEQUENCE: u32 = 0x30;
const TAG_OID: u32 = 0x06;
const TAG_OCTET_STRING: u32 = 0x04;
const TAG_BOOLEAN: u32 = 0x01;
/// `[3] EXPLICIT Extensions` in TBSCertificate.
const TAG_EXTENSIONS: u32 = 0xA3;
/// `keyIdentifier [0]` in AuthorityKeyIdentifier.
const TAG_AKI_KEY_ID: u32 = 0x80;
/// `registeredID [8]` in GeneralName.
const TAG_GENERAL_NAME_RID: u32 = 0x88;

/// SGP.22 roles (`id-rspRole-*`, last arc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ci = 0,
    Euicc = 1,
    Eum = 2,
    DpTls = 3,
    DpAuth = 4,
    DpPb = 5,
}

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertError {
    #[error("certificate is not well-formed X.509 DER: {0}")]
    Malformed(String),
    #[error("certificate key is on an unsupported curve: {0}")]
    UnsupportedCurve(String),
    #[error("certificate is not signed by the CI it names")]
    NotSignedByCi,
    #[error("certificate names no trusted CI as its issuer")]
    UnknownCi,
    #[error("certificate lacks the SGP.22 role policy {0:?}")]
    WrongRole(Role),
}

/// One extension: the OID value and the extnValue content.
type Extension = (Vec<u8>, Vec<u8>);

/// The extensions of a certificate.
fn extensions(cert: &[u8]) -> Result<Vec<Extension>, CertError> {
    let parts = CertificateParts::parse(cert).map_err(|e| CertError::Malformed(e.to_string()))?;
    let tbs = tlv::parse_one(parts.tbs).map_err(|e| CertError::Malformed(e.to_string()))?;
    let Some(ext) = tbs.find(TAG_EXTENSIONS) else {
        return Ok(Vec::new());
    };
    let list = ext
        .find(TAG_SEQUENCE)
        .ok_or_else(|| CertError::Malformed("extensions without SEQUENCE".into()))?;
    let mut out = Vec::new();
    for e in list.children() {
        let e = e.map_err(|e| CertError::Malformed(e.to_string()))?;
        let oid = e
            .find(TAG_OID)
            .map(|t| t.value.to_vec())
            .unwrap_or_default();
        let value = e
            .children()
            .map_while(Result::ok)
            .filter(|t| t.tag != TAG_BOOLEAN)
            .find(|t| t.tag == TAG_OCTET_STRING)
            .map(|t| t.value.to_vec())
            .unwrap_or_default();
        out.push((oid, value));
    }
    Ok(out)
}

fn extension(cert: &[u8], oid: &[u8]) -> Result<Option<Vec<u8>>, CertError> {
    Ok(extensions(cert)?
        .into_iter()
        .find(|(o, _)| o == oid)
        .map(|(_, v)| v))
}

/// The SubjectKeyIdentifier of a certificate (the CI PKID for a CI certificate).
pub fn subject_key_id(cert: &[u8]) -> Result<Option<Vec<u8>>, CertError> {
    let Some(v) = extension(cert, OID_SUBJECT_KEY_ID)? else {
        return Ok(None);
    };
    let t = tlv::parse_one(&v).map_err(|e| CertError::Malformed(e.to_string()))?;
    Ok(Some(t.value.to_vec()))
}

/// The keyIdentifier of the AuthorityKeyIdentifier extension.
pub fn authority_key_id(cert: &[u8]) -> Result<Option<Vec<u8>>, CertError> {
    let Some(v) = extension(cert, OID_AUTHORITY_KEY_ID)? else {
        return Ok(None);
    };
    let t = tlv::parse_one(&v).map_err(|e| CertError::Malformed(e.to_string()))?;
    Ok(t.find(TAG_AKI_KEY_ID).map(|k| k.value.to_vec()))
}

/// The SM-DP+ OID: the `registeredID` in SubjectAltName (content of the OID), if any.
pub fn registered_id(cert: &[u8]) -> Result<Option<Vec<u8>>, CertError> {
    let Some(v) = extension(cert, OID_SUBJECT_ALT_NAME)? else {
        return Ok(None);
    };
    let t = tlv::parse_one(&v).map_err(|e| CertError::Malformed(e.to_string()))?;
    Ok(t.find(TAG_GENERAL_NAME_RID).map(|r| r.value.to_vec()))
}

/// Whether the certificatePolicies extension names the role `id-rspRole-<role>`.
pub fn has_role(cert: &[u8], role: Role) -> Result<bool, CertError> {
    let Some(v) = extension(cert, OID_CERTIFICATE_POLICIES)? else {
        return Ok(false);
    };
    let want = [OID_RSP_ROLE_PREFIX, &[role as u8]].concat();
    let t = tlv::parse_one(&v).map_err(|e| CertError::Malformed(e.to_string()))?;
    Ok(t.children()
        .map_while(Result::ok)
        .filter_map(|p: Tlv<'_>| p.find(TAG_OID))
        .any(|oid| oid.value == want.as_slice()))
}

/// A trusted CI: its certificate, SKI and key.
#[derive(Debug, Clone)]
pub struct TrustedCi {
    pub ski: Vec<u8>,
    pub key: VerifyingKey,
}

impl TrustedCi {
    pub fn from_certificate(cert: &[u8]) -> Result<Self, CertError> {
        let key = VerifyingKey::from_certificate_der(cert)
            .map_err(|e| CertError::UnsupportedCurve(e.to_string()))?;
        let ski = subject_key_id(cert)?
            .ok_or_else(|| CertError::Malformed("CI certificate without SKI".into()))?;
        Ok(Self { ski, key })
    }
}

/// Checks a server certificate (DPauth, DPpb) against the CI `ci`: AKI names the CI, the
/// CI signed it, the role policy is there; returns the certificate's key.
pub fn verify_server_certificate(
    cert: &[u8],
    ci: &TrustedCi,
    role: Role,
) -> Result<VerifyingKey, CertError> {
    let parts = CertificateParts::parse(cert).map_err(|e| CertError::Malformed(e.to_string()))?;
    if authority_key_id(cert)?.as_deref() != Some(ci.ski.as_slice()) {
        return Err(CertError::UnknownCi);
    }
    ci.key
        .verify_der(parts.tbs, parts.signature)
        .map_err(|_| CertError::NotSignedByCi)?;
    if !has_role(cert, role)? {
        return Err(CertError::WrongRole(role));
    }
    VerifyingKey::from_spki_der(parts.spki).map_err(|e| CertError::UnsupportedCurve(e.to_string()))
}

/// Verifies a CRL (`CertificateList`, RFC 5280 §5.1: same outer shape as a certificate)
/// against the trusted CIs. `Ok(true)` when one of them signed it.
pub fn crl_signed_by(crl: &[u8], cis: &[TrustedCi]) -> Result<bool, CertError> {
    let outer = tlv::parse_one(crl).map_err(|e| CertError::Malformed(e.to_string()))?;
    let mut items = outer.children();
    let tbs = items
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| CertError::Malformed("CRL without tbsCertList".into()))?;
    let _alg = items.next();
    let sig = items
        .next()
        .and_then(Result::ok)
        .and_then(|b| b.value.split_first().map(|(_, s)| s.to_vec()))
        .ok_or_else(|| CertError::Malformed("CRL without signature".into()))?;
    Ok(cis
        .iter()
        .any(|ci| ci.key.verify_der(tbs.raw, &sig).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CI: &[u8] =
        include_bytes!("../../../vectors/pki/CertificateIssuer/CERT_CI_ECDSA_NIST.der");
    const CI_BRP: &[u8] =
        include_bytes!("../../../vectors/pki/CertificateIssuer/CERT_CI_ECDSA_BRP.der");
    const DPAUTH: &[u8] =
        include_bytes!("../../../vectors/pki/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der");
    const DPPB: &[u8] = include_bytes!("../../../vectors/pki/DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der");

    #[test]
    fn reads_the_ci_ski_the_pki_readme_lists() {
        let ski = subject_key_id(CI).unwrap().unwrap();
        assert_eq!(
            hex::encode_upper(ski),
            "5C8F0655528F281818D00DE739B14DCAC7D6DAEE"
        );
    }

    #[test]
    fn server_certificates_chain_to_their_ci_with_their_role() {
        let ci = TrustedCi::from_certificate(CI).unwrap();
        verify_server_certificate(DPAUTH, &ci, Role::DpAuth).unwrap();
        verify_server_certificate(DPPB, &ci, Role::DpPb).unwrap();
        assert_eq!(
            verify_server_certificate(DPAUTH, &ci, Role::DpPb).unwrap_err(),
            CertError::WrongRole(Role::DpPb)
        );
        let other = TrustedCi::from_certificate(CI_BRP).unwrap();
        assert_eq!(
            verify_server_certificate(DPAUTH, &other, Role::DpAuth).unwrap_err(),
            CertError::UnknownCi
        );
        // Same SKI claimed, other key: the signature does not verify.
        let forged = TrustedCi {
            ski: ci.ski.clone(),
            key: other.key,
        };
        assert_eq!(
            verify_server_certificate(DPAUTH, &forged, Role::DpAuth).unwrap_err(),
            CertError::NotSignedByCi
        );
    }

    #[test]
    fn the_smdp_oid_is_the_registered_id() {
        // vectors/pki/README.md: SAN RID 2.999.10 for the SM-DP+ certificates.
        assert_eq!(registered_id(DPAUTH).unwrap(), Some(vec![0x88, 0x37, 0x0A]));
    }
}
