//! Certificate checks of the SM-DP+ (SGP.22 v2.5 §5.6.3 AuthenticateClient, §4.5.2 certificate
//! profiles): the eUICC certificate chains to the agreed CI through its EUM, by signature and
//! validity, and the EID falls under the EUM's permitted EID prefix.
//!
//! Not an RFC 5280 path validation: SGP.22 reads the EUM name constraint as an EID prefix, which
//! RFC 5280 verifiers reject (see `vectors/pki/README.md`), so the chain is checked here by
//! signature, validity period, certificate policy and [`crate::pki::profiles::eum_permits`].
//! The X.509 extension readers (AuthorityKeyIdentifier, role policy) are the eUICC's own,
//! [`simlab_emulator::euicc::cert`]; the trusted CI is its [`TrustedCi`].

use super::super::es9p::{codes, StatusCode};
use crate::pki::eid::EID_DIGITS;
use crate::pki::profiles;
use der::Decode as _;
pub use simlab_emulator::euicc::cert::TrustedCi;
use simlab_emulator::euicc::cert::{self, CertError, Role};
use simlab_emulator::rsp::ecdsa::{CertificateParts, VerifyingKey};
use simlab_emulator::rsp::es10::EID_LEN;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;
use thiserror::Error;
use x509_cert::Certificate;

/// Why the eUICC's certificates were refused, with the status code of SGP.22 §5.6.3.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("the EUM certificate is issued by CI key {found}, expected the agreed CI {expected}")]
    CiUnknown { expected: String, found: String },
    #[error("EUM certificate refused: {0}")]
    EumInvalid(String),
    #[error("EUM certificate expired")]
    EumExpired,
    #[error("eUICC certificate refused: {0}")]
    EuiccInvalid(String),
    #[error("eUICC certificate expired")]
    EuiccExpired,
}

impl ChainError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            ChainError::CiUnknown { .. } => codes::CI_PUBLIC_KEY_UNKNOWN,
            ChainError::EumInvalid(_) => codes::EUM_CERTIFICATE_INVALID,
            ChainError::EumExpired => codes::EUM_CERTIFICATE_EXPIRED,
            ChainError::EuiccInvalid(_) => codes::EUICC_CERTIFICATE_INVALID,
            ChainError::EuiccExpired => codes::EUICC_CERTIFICATE_EXPIRED,
        }
    }
}

/// What a verified eUICC chain yields.
#[derive(Debug, Clone)]
pub struct VerifiedEuicc {
    /// EID digits from the eUICC certificate subject serialNumber.
    pub eid: String,
    /// The same EID as 16 bytes (for the session key derivation, SGP.22 Annex G).
    pub eid_bytes: [u8; EID_LEN],
    /// PK.EUICC.SIG.
    pub key: VerifyingKey,
}

/// Checks CERT.EUICC → CERT.EUM → `ci` (SGP.22 §5.6.3 steps "verify the eUICC certificate
/// chain"): the EUM's AuthorityKeyIdentifier is the CI's SKI, each signature verifies over the
/// received TBSCertificate bytes, both are valid at `now`, carry their role's certificate policy,
/// and the EUM permits the EID.
pub fn verify_euicc_chain(
    euicc_der: &[u8],
    eum_der: &[u8],
    ci: &TrustedCi,
    now: SystemTime,
) -> Result<VerifiedEuicc, ChainError> {
    let eum = verify_eum(eum_der, ci)?;
    verify_euicc(euicc_der, &eum, now)
}

/// An EUM certificate whose CI signature, issuer and role policy verified (its validity
/// period is checked on every use).
#[derive(Debug)]
struct VerifiedEum {
    cert: Certificate,
    key: VerifyingKey,
}

/// Everything about CERT.EUM that does not depend on the time.
fn verify_eum(eum_der: &[u8], ci: &TrustedCi) -> Result<VerifiedEum, ChainError> {
    let eum = Certificate::from_der(eum_der)
        .map_err(|e| ChainError::EumInvalid(format!("not a DER certificate: {e}")))?;
    let aki = cert::authority_key_id(eum_der)
        .map_err(|e| ChainError::EumInvalid(e.to_string()))?
        .unwrap_or_default();
    if aki != ci.ski {
        return Err(ChainError::CiUnknown {
            expected: hex::encode_upper(&ci.ski),
            found: hex::encode_upper(&aki),
        });
    }
    let eum_parts =
        CertificateParts::parse(eum_der).map_err(|e| ChainError::EumInvalid(e.to_string()))?;
    ci.key
        .verify_der(eum_parts.tbs, eum_parts.signature)
        .map_err(|e| ChainError::EumInvalid(format!("CI signature: {e}")))?;
    check_policy(eum_der, Role::Eum).map_err(ChainError::EumInvalid)?;
    let key = VerifyingKey::from_spki_der(eum_parts.spki)
        .map_err(|e| ChainError::EumInvalid(e.to_string()))?;
    Ok(VerifiedEum { cert: eum, key })
}

/// The rest of the chain: the EUM valid at `now`, then CERT.EUICC under it.
fn verify_euicc(
    euicc_der: &[u8],
    eum: &VerifiedEum,
    now: SystemTime,
) -> Result<VerifiedEuicc, ChainError> {
    if !valid_at(&eum.cert, now) {
        return Err(ChainError::EumExpired);
    }
    let euicc = Certificate::from_der(euicc_der)
        .map_err(|e| ChainError::EuiccInvalid(format!("not a DER certificate: {e}")))?;
    let euicc_parts =
        CertificateParts::parse(euicc_der).map_err(|e| ChainError::EuiccInvalid(e.to_string()))?;
    eum.key
        .verify_der(euicc_parts.tbs, euicc_parts.signature)
        .map_err(|e| ChainError::EuiccInvalid(format!("EUM signature: {e}")))?;
    check_policy(euicc_der, Role::Euicc).map_err(ChainError::EuiccInvalid)?;
    if !valid_at(&euicc, now) {
        return Err(ChainError::EuiccExpired);
    }
    let permitted = profiles::eum_permits(&eum.cert, &euicc.tbs_certificate.subject)
        .map_err(|e| ChainError::EuiccInvalid(e.to_string()))?;
    if !permitted {
        return Err(ChainError::EuiccInvalid(
            "the EUM's name constraints do not permit this EID".into(),
        ));
    }
    let eid = profiles::attr_value(
        &euicc.tbs_certificate.subject,
        profiles::oid::AT_SERIAL_NUMBER,
    )
    .ok_or_else(|| ChainError::EuiccInvalid("subject has no serialNumber (EID)".into()))?;
    let eid_bytes = eid_to_bytes(&eid)
        .ok_or_else(|| ChainError::EuiccInvalid(format!("EID {eid:?} is not 32 digits")))?;
    let key = VerifyingKey::from_spki_der(euicc_parts.spki)
        .map_err(|e| ChainError::EuiccInvalid(e.to_string()))?;
    Ok(VerifiedEuicc {
        eid,
        eid_bytes,
        key,
    })
}

/// The SM-DP+'s trusted CI with the EUM certificates that verified under it: every eUICC of a
/// manufacturer sends the same CERT.EUM, and parsing it and checking the CI's signature on it
/// again was one of the five signature verifications of each download. Keyed by the exact DER
/// bytes, so only a byte-identical certificate is reused; refused ones are not kept. Holds at
/// most [`EumCache::ENTRIES`] (then starts over).
#[derive(Debug)]
pub struct EumCache {
    ci: TrustedCi,
    verified: Mutex<HashMap<Vec<u8>, Arc<VerifiedEum>>>,
}

impl EumCache {
    /// More EUMs than any test or operator fleet uses; a bound against a client sending
    /// endless different (CI-signed) certificates is all this is for.
    pub const ENTRIES: usize = 64;

    pub fn new(ci: TrustedCi) -> Self {
        Self {
            ci,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The CI the chains must end at.
    pub fn ci(&self) -> &TrustedCi {
        &self.ci
    }

    /// [`verify_euicc_chain`] to this CI, with CERT.EUM checked once per process.
    pub fn verify_euicc_chain(
        &self,
        euicc_der: &[u8],
        eum_der: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedEuicc, ChainError> {
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(eum_der)
            .cloned();
        let eum = match cached {
            Some(eum) => eum,
            None => {
                let eum = Arc::new(verify_eum(eum_der, &self.ci)?);
                let mut map = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                if map.len() >= Self::ENTRIES {
                    map.clear();
                }
                map.insert(eum_der.to_vec(), Arc::clone(&eum));
                eum
            }
        };
        verify_euicc(euicc_der, &eum, now)
    }

    /// EUM certificates held.
    pub fn len(&self) -> usize {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The 16 bytes of a 32-digit EID (each pair of digits one byte, SGP.22 `Octet16` eidValue).
pub fn eid_to_bytes(eid: &str) -> Option<[u8; EID_LEN]> {
    if eid.len() != EID_DIGITS || !eid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    hex::decode(eid).ok()?.try_into().ok()
}

fn valid_at(cert: &Certificate, now: SystemTime) -> bool {
    let v = &cert.tbs_certificate.validity;
    v.not_before.to_system_time() <= now && now <= v.not_after.to_system_time()
}

/// The certificate carries the SGP.22 policy of `role` (§4.5.2.1, `id-rspRole-*`).
fn check_policy(der: &[u8], role: Role) -> Result<(), String> {
    match cert::has_role(der, role) {
        Ok(true) => Ok(()),
        Ok(false) => Err(CertError::WrongRole(role).to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{Curve, Pki};
    use std::path::Path;

    fn pki() -> Pki {
        Pki::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pki"),
            Curve::Nist,
        )
        .unwrap()
    }

    fn ci(pki: &Pki) -> TrustedCi {
        TrustedCi::from_certificate(&pki.ci.cert_der).unwrap()
    }

    #[test]
    fn accepts_the_shipped_euicc_chain_and_reads_its_eid() {
        let pki = pki();
        let v = verify_euicc_chain(
            &pki.euicc.as_ref().unwrap().cert_der,
            &pki.eum.as_ref().unwrap().cert_der,
            &ci(&pki),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(v.eid, "89049032123451234512345678901235");
        assert_eq!(v.eid_bytes[0], 0x89);
    }

    #[test]
    fn rejects_an_euicc_certificate_with_a_flipped_signature_bit() {
        let pki = pki();
        let mut euicc = pki.euicc.as_ref().unwrap().cert_der.clone();
        let last = euicc.len() - 5;
        euicc[last] ^= 1;
        let err = verify_euicc_chain(
            &euicc,
            &pki.eum.as_ref().unwrap().cert_der,
            &ci(&pki),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), codes::EUICC_CERTIFICATE_INVALID);
    }

    #[test]
    fn rejects_a_chain_of_another_ci_as_ci_unknown() {
        let nist = pki();
        let brp = Pki::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pki"),
            Curve::Brainpool,
        )
        .unwrap();
        let err = verify_euicc_chain(
            &brp.euicc.as_ref().unwrap().cert_der,
            &brp.eum.as_ref().unwrap().cert_der,
            &ci(&nist),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), codes::CI_PUBLIC_KEY_UNKNOWN);
    }

    #[test]
    fn the_cache_checks_each_eum_once_and_still_refuses_what_the_chain_refuses() {
        let pki = pki();
        let euicc = &pki.euicc.as_ref().unwrap().cert_der;
        let eum = &pki.eum.as_ref().unwrap().cert_der;
        let cache = EumCache::new(ci(&pki));
        let now = SystemTime::now();
        for _ in 0..3 {
            let v = cache.verify_euicc_chain(euicc, eum, now).unwrap();
            assert_eq!(v.eid, "89049032123451234512345678901235");
        }
        assert_eq!(cache.len(), 1);
        // A cached EUM is still checked for validity at the time of use.
        let later = now + std::time::Duration::from_secs(200 * 365 * 86_400);
        assert_eq!(
            cache.verify_euicc_chain(euicc, eum, later).unwrap_err(),
            verify_euicc_chain(euicc, eum, &ci(&pki), later).unwrap_err()
        );
        // The eUICC certificate is checked every time, under the cached EUM too.
        let mut bad = euicc.clone();
        let last = bad.len() - 5;
        bad[last] ^= 1;
        let err = cache.verify_euicc_chain(&bad, eum, now).unwrap_err();
        assert_eq!(err.status_code(), codes::EUICC_CERTIFICATE_INVALID);
        // An EUM whose CI signature fails is refused and not kept.
        let mut bad_eum = eum.clone();
        let last = bad_eum.len() - 5;
        bad_eum[last] ^= 1;
        let err = cache.verify_euicc_chain(euicc, &bad_eum, now).unwrap_err();
        assert_eq!(err.status_code(), codes::EUM_CERTIFICATE_INVALID);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn rejects_an_eum_certificate_used_as_euicc_certificate() {
        let pki = pki();
        let eum = &pki.eum.as_ref().unwrap().cert_der;
        let err = verify_euicc_chain(eum, eum, &ci(&pki), SystemTime::now()).unwrap_err();
        assert_eq!(err.status_code(), codes::EUICC_CERTIFICATE_INVALID);
    }
}
