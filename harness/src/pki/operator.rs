//! The operator's side of ES2+ (GSMA SGP.22 v2.5 §5.3): ES2+ runs over mutually
//! authenticated TLS between the operator's business support system (BOSS) and the SM-DP+.
//! The operator's client certificate is not part of the GSMA RSP PKI (no CI, no RSP role
//! OIDs): an SM-DP+ trusts the CAs of the operators it serves, agreed bilaterally. This module
//! writes and loads a test operator CA and one BOSS client certificate issued by it, NIST
//! P-256 only (TLS: rustls has no brainpool), next to the SGP.26 layout:
//!
//! ```text
//! Operator/CERT_OPERATOR_CA_NIST.der  .pem   SK_OPERATOR_CA_NIST.pem
//! Operator/CERT_BOSS_CLIENT_NIST.der  .pem   SK_BOSS_CLIENT_NIST.pem
//! ```
//!
//! Profiles (RFC 5280): the CA is self-signed with basicConstraints cA (critical, pathLen 0),
//! keyUsage keyCertSign + cRLSign (critical) and SKI; the client has AKI, SKI, keyUsage
//! digitalSignature (critical) and extendedKeyUsage id-kp-clientAuth — what a TLS server's
//! client-certificate verification (rustls-webpki) checks.

use std::path::{Path, PathBuf};

use der::pem::LineEnding;
use der::Decode;
use p256::pkcs8::EncodePrivateKey as _;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsages};
use x509_cert::Certificate;

use super::profiles::{self, Attr, CertRequest};
use super::{random_serial, validity, write_file, Curve, KeyPair, PkiError, PkiValidity};
use crate::defaults::Files;

/// Directory of the operator files inside a PKI directory.
pub const OPERATOR_DIR: &str = "Operator";
const CA_STEM: &str = "OPERATOR_CA";
const CLIENT_STEM: &str = "BOSS_CLIENT";
/// The test operator's organisation.
pub const TEST_OPERATOR_ORGANIZATION: &str = "simlab Test Operator";

fn cert(stem: &str, ext: &str) -> PathBuf {
    Path::new(OPERATOR_DIR).join(format!("CERT_{stem}_NIST.{ext}"))
}

fn key(stem: &str) -> PathBuf {
    Path::new(OPERATOR_DIR).join(format!("SK_{stem}_NIST.pem"))
}

/// Relative path of the operator CA certificate (DER): what the SM-DP+ trusts on ES2+.
pub fn ca_cert_path() -> PathBuf {
    cert(CA_STEM, "der")
}

/// Relative path of the BOSS client certificate (DER).
pub fn client_cert_path() -> PathBuf {
    cert(CLIENT_STEM, "der")
}

/// Relative path of the BOSS client private key (SEC1 PEM, as every key of the PKI).
pub fn client_key_path() -> PathBuf {
    key(CLIENT_STEM)
}

/// Writes a new operator CA and BOSS client certificate with keys into `out`; returns the
/// files written, relative to `out`.
pub fn generate(out: &Path, v: &PkiValidity) -> Result<Vec<PathBuf>, PkiError> {
    let mut files = Vec::new();
    let ca_key = KeyPair::generate(Curve::Nist)?;
    let ca_spki = ca_key.spki()?;
    let ca_ski = profiles::key_identifier(&ca_spki);
    let ca_name = profiles::name(&[
        Attr::C("IT"),
        Attr::O(TEST_OPERATOR_ORGANIZATION),
        Attr::Cn("simlab Test Operator CA"),
    ])?;
    let ca = profiles::issue(
        CertRequest {
            serial: random_serial(),
            issuer: ca_name.clone(),
            subject: ca_name.clone(),
            validity: validity(v.not_before, v.ca_days)?,
            spki: ca_spki,
            extensions: vec![
                profiles::ski_ext(&ca_ski)?,
                profiles::ext(
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(0),
                    },
                    true,
                )?,
                profiles::key_usage_ext(KeyUsages::KeyCertSign | KeyUsages::CRLSign)?,
            ],
        },
        &ca_key,
    )?;
    let client_key = KeyPair::generate(Curve::Nist)?;
    let client_spki = client_key.spki()?;
    let client_ski = profiles::key_identifier(&client_spki);
    let client = profiles::issue(
        CertRequest {
            serial: random_serial(),
            issuer: ca_name,
            subject: profiles::name(&[
                Attr::C("IT"),
                Attr::O(TEST_OPERATOR_ORGANIZATION),
                Attr::Cn("simlab BOSS"),
            ])?,
            validity: validity(v.not_before, v.end_entity_days)?,
            spki: client_spki,
            extensions: vec![
                profiles::aki_ext(&ca_ski)?,
                profiles::ski_ext(&client_ski)?,
                profiles::key_usage_ext(KeyUsages::DigitalSignature.into())?,
                profiles::ext(
                    &ExtendedKeyUsage(vec![profiles::oid::ID_KP_CLIENT_AUTH]),
                    false,
                )?,
            ],
        },
        &ca_key,
    )?;
    for (stem, der, key_pair) in [(CA_STEM, &ca, &ca_key), (CLIENT_STEM, &client, &client_key)] {
        write_file(out, &cert(stem, "der"), der, &mut files)?;
        let pem = der::pem::encode_string("CERTIFICATE", LineEnding::LF, der)?;
        write_file(out, &cert(stem, "pem"), pem.as_bytes(), &mut files)?;
        write_file(
            out,
            &key(stem),
            key_pair.to_sec1_pem()?.as_bytes(),
            &mut files,
        )?;
    }
    Ok(files)
}

fn read(dir: &Files, rel: &Path) -> Result<Vec<u8>, PkiError> {
    dir.read(rel).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => PkiError::Missing {
            what: format!(
                "operator {} (ES2+ mutual TLS; `simlab pki generate` writes one)",
                if rel.extension().is_some_and(|e| e == "pem") {
                    "key"
                } else {
                    "certificate"
                }
            ),
            path: dir.location(rel),
        },
        _ => PkiError::Io {
            action: "reading",
            path: dir.location(rel),
            source,
        },
    })
}

/// The operator CA certificate (DER) of the PKI `dir` (a directory, or the built-in test
/// PKI): what the SM-DP+ trusts on ES2+.
pub fn load_ca(dir: impl Into<Files>) -> Result<Vec<u8>, PkiError> {
    let dir = dir.into();
    let der = read(&dir, &ca_cert_path())?;
    Certificate::from_der(&der).map_err(|e| PkiError::BadCertificate {
        path: dir.location(ca_cert_path()),
        reason: format!("not a DER X.509 certificate: {e}"),
    })?;
    Ok(der)
}

/// A TLS client identity of the operator: the BOSS certificate and its private key.
#[derive(Debug, Clone)]
pub struct OperatorIdentity {
    /// The client certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key as PKCS#8 DER (what TLS libraries take).
    pub key_pkcs8_der: Vec<u8>,
}

impl OperatorIdentity {
    /// Loads the BOSS client certificate and key of the PKI `dir` (a directory, or the
    /// built-in test PKI).
    pub fn load(dir: impl Into<Files>) -> Result<Self, PkiError> {
        let dir = dir.into();
        let cert_der = read(&dir, &client_cert_path())?;
        let pem = read(&dir, &client_key_path())?;
        let key = KeyPair::from_sec1_pem(&String::from_utf8_lossy(&pem), Curve::Nist)?;
        let cert = Certificate::from_der(&cert_der)?;
        if cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            != key.public_point().as_slice()
        {
            return Err(PkiError::BadCertificate {
                path: dir.location(client_cert_path()),
                reason: format!(
                    "private key {} does not belong to this certificate",
                    client_key_path().display()
                ),
            });
        }
        let secret = p256::SecretKey::from_slice(&key.scalar()).map_err(|e| PkiError::BadKey {
            curve: Curve::Nist,
            reason: e.to_string(),
        })?;
        let pkcs8 = secret.to_pkcs8_der().map_err(|e| PkiError::BadKey {
            curve: Curve::Nist,
            reason: e.to_string(),
        })?;
        Ok(Self {
            cert_der,
            key_pkcs8_der: pkcs8.as_bytes().to_vec(),
        })
    }
}
