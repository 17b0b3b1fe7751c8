//! The operator's side of ES2+ (GSMA SGP.22 v2.5 §5.3): ES2+ runs over mutually
//! authenticated TLS between the operator's business support system (BOSS) and the SM-DP+.
//! The operator's client certificate is not part of the GSMA RSP PKI (no CI, no RSP role
//! OIDs): an SM-DP+ trusts the CAs of the operators it serves, agreed bilaterally. This module
//! writes and loads a test operator CA and two BOSS certificates issued by it, NIST P-256 only
//! (TLS: rustls has no brainpool), next to the SGP.26 layout:
//!
//! ```text
//! Operator/CERT_OPERATOR_CA_NIST.der  .pem   SK_OPERATOR_CA_NIST.pem
//! Operator/CERT_BOSS_CLIENT_NIST.der  .pem   SK_BOSS_CLIENT_NIST.pem   BOSS → SM-DP+ (client)
//! Operator/CERT_BOSS_SERVER_NIST.der  .pem   SK_BOSS_SERVER_NIST.pem   SM-DP+ → BOSS (server)
//! ```
//!
//! ES2+ runs both ways: the BOSS calls the SM-DP+'s functions (client certificate), and the
//! SM-DP+ calls the BOSS's HandleDownloadProgressInfo (SGP.22 §5.3.5), where the BOSS is the
//! TLS server and authenticates with the server certificate while the SM-DP+ presents its
//! CERT.DP.TLS (which carries clientAuth, SGP.22 §4.5.2.1.0.3).
//!
//! Profiles (RFC 5280): the CA is self-signed with basicConstraints cA (critical, pathLen 0),
//! keyUsage keyCertSign + cRLSign (critical) and SKI; the client has AKI, SKI, keyUsage
//! digitalSignature (critical) and extendedKeyUsage id-kp-clientAuth — what a TLS server's
//! client-certificate verification (rustls-webpki) checks; the server the same with
//! id-kp-serverAuth and a subjectAltName naming loopback (`DNS:localhost`, `IP:127.0.0.1`,
//! `IP:::1`), the names a TLS client checks (RFC 6125).

use std::path::{Path, PathBuf};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use der::asn1::Ia5String;
use der::pem::LineEnding;
use der::Decode;
use p256::pkcs8::EncodePrivateKey as _;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsages};
use x509_cert::Certificate;

use super::profiles::{self, Attr, CertRequest};
use super::{random_serial, validity, write_file, Curve, KeyPair, PkiError, PkiValidity};
use crate::defaults::Files;

/// Directory of the operator files inside a PKI directory.
pub const OPERATOR_DIR: &str = "Operator";
const CA_STEM: &str = "OPERATOR_CA";
const CLIENT_STEM: &str = "BOSS_CLIENT";
const SERVER_STEM: &str = "BOSS_SERVER";
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

/// Relative path of the BOSS TLS server certificate (DER): what the SM-DP+ sees when it sends
/// HandleDownloadProgressInfo.
pub fn server_cert_path() -> PathBuf {
    cert(SERVER_STEM, "der")
}

/// Relative path of the BOSS TLS server private key (SEC1 PEM).
pub fn server_key_path() -> PathBuf {
    key(SERVER_STEM)
}

/// Writes a new operator CA with the BOSS client and server certificates and keys into `out`;
/// returns the files written, relative to `out`.
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
            issuer: ca_name.clone(),
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
        write_issued(out, stem, der, key_pair, &mut files)?;
    }
    let (server, server_key) = issue_server(&ca_name, &ca_ski, &ca_key, v)?;
    write_issued(out, SERVER_STEM, &server, &server_key, &mut files)?;
    Ok(files)
}

fn write_issued(
    out: &Path,
    stem: &str,
    der: &[u8],
    key_pair: &KeyPair,
    files: &mut Vec<PathBuf>,
) -> Result<(), PkiError> {
    write_file(out, &cert(stem, "der"), der, files)?;
    let pem = der::pem::encode_string("CERTIFICATE", LineEnding::LF, der)?;
    write_file(out, &cert(stem, "pem"), pem.as_bytes(), files)?;
    write_file(out, &key(stem), key_pair.to_sec1_pem()?.as_bytes(), files)
}

/// Issues the BOSS TLS server certificate under the operator CA (`ca_name`, `ca_ski`,
/// `ca_key`): EKU id-kp-serverAuth, SAN for loopback.
fn issue_server(
    ca_name: &x509_cert::name::Name,
    ca_ski: &[u8],
    ca_key: &KeyPair,
    v: &PkiValidity,
) -> Result<(Vec<u8>, KeyPair), PkiError> {
    let server_key = KeyPair::generate(Curve::Nist)?;
    let spki = server_key.spki()?;
    let ski = profiles::key_identifier(&spki);
    let names = vec![
        GeneralName::DnsName(Ia5String::new("localhost")?),
        GeneralName::from(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        GeneralName::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    let der = profiles::issue(
        CertRequest {
            serial: random_serial(),
            issuer: ca_name.clone(),
            subject: profiles::name(&[
                Attr::C("IT"),
                Attr::O(TEST_OPERATOR_ORGANIZATION),
                Attr::Cn("simlab BOSS ES2+ endpoint"),
            ])?,
            validity: validity(v.not_before, v.end_entity_days)?,
            spki,
            extensions: vec![
                profiles::aki_ext(ca_ski)?,
                profiles::ski_ext(&ski)?,
                profiles::key_usage_ext(KeyUsages::DigitalSignature.into())?,
                profiles::ext(
                    &ExtendedKeyUsage(vec![profiles::oid::ID_KP_SERVER_AUTH]),
                    false,
                )?,
                profiles::san_ext(names, &[])?,
            ],
        },
        ca_key,
    )?;
    Ok((der, server_key))
}

/// Adds the BOSS TLS server certificate and key to the operator files of `out`, issued by the
/// operator CA already there (its certificate and `SK_OPERATOR_CA_NIST.pem`), leaving the CA
/// and the client certificate as they are; returns the files written.
pub fn generate_server(out: &Path, v: &PkiValidity) -> Result<Vec<PathBuf>, PkiError> {
    let dir = Files::from(out);
    let ca = Certificate::from_der(&load_ca(dir.clone())?)?;
    let pem = read(&dir, &key(CA_STEM))?;
    let ca_key = KeyPair::from_sec1_pem(&String::from_utf8_lossy(&pem), Curve::Nist)?;
    let ca_ski = profiles::key_identifier(&ca.tbs_certificate.subject_public_key_info);
    let (server, server_key) = issue_server(&ca.tbs_certificate.subject, &ca_ski, &ca_key, v)?;
    let mut files = Vec::new();
    write_issued(out, SERVER_STEM, &server, &server_key, &mut files)?;
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
        Self::load_stem(dir.into(), CLIENT_STEM)
    }

    /// Loads the BOSS TLS server certificate and key of the PKI `dir`: the identity of the
    /// BOSS's HandleDownloadProgressInfo endpoint.
    pub fn load_server(dir: impl Into<Files>) -> Result<Self, PkiError> {
        Self::load_stem(dir.into(), SERVER_STEM)
    }

    fn load_stem(dir: Files, stem: &str) -> Result<Self, PkiError> {
        let (cert_path, key_path) = (cert(stem, "der"), key(stem));
        let cert_der = read(&dir, &cert_path)?;
        let pem = read(&dir, &key_path)?;
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
                path: dir.location(&cert_path),
                reason: format!(
                    "private key {} does not belong to this certificate",
                    key_path.display()
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
