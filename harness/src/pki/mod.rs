//! A test RSP PKI (GSMA SGP.22 v2.5 §4.5.2 certificate profiles, GSMA SGP.26 directory layout
//! and file names): CI → EUM → eUICC and CI → SM-DP+ (DPauth, DPpb, DPtls), generated or
//! loaded from disk so that the emulated card and the SM-DP+ can share one PKI — or join the
//! real SGP.26 one (whose CI, EUM and eUICC keys are not public).
//!
//! Layout written by [`generate`] (per curve, suffix `NIST` or `BRP`):
//!
//! ```text
//! CertificateIssuer/CERT_CI_ECDSA_NIST.der  .pem   SK_CI_ECDSA_NIST.pem
//! EUM/CERT_EUM_ECDSA_NIST.der                      SK_EUM_ECDSA_NIST.pem
//! eUICC/CERT_EUICC_ECDSA_NIST.der                  SK_EUICC_ECDSA_NIST.pem
//! DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der           SK_S_SM_DPauth_ECDSA_NIST.pem  PK_…
//! DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der               SK_S_SM_DPpb_ECDSA_NIST.pem    PK_…
//! DPtls/CERT_S_SM_DP_TLS_NIST.der  .pem            SK_S_SM_DP_TLS_NIST.pem        PK_…
//! ```
//!
//! All private keys are TEST keys, written in the clear.

pub mod cli;
pub mod eid;
pub mod keys;
pub mod operator;
pub mod profiles;

#[cfg(test)]
mod tests;

use crate::defaults::Files;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use der::pem::LineEnding;
use der::Decode;
use rand_core::{OsRng, RngCore};
use thiserror::Error;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::time::Validity;
use x509_cert::Certificate;

pub use eid::{complete_eid, eid_check_digits, validate_eid, EidError};
pub use keys::KeyPair;
pub use operator::OperatorIdentity;
pub use profiles::Role;

use profiles::{CertRequest, ProfileParams};

/// Default SM-DP+ host: SGP.26 DPtls SAN / SGP.23 #TEST_DP_ADDRESS1.
pub const DEFAULT_SMDP_HOST: &str = "testsmdpplus1.example.com";
/// Default EID: the SGP.26 test eUICC's (EUM prefix 89049032, check digits 35).
pub const DEFAULT_EID: &str = "89049032123451234512345678901235";
/// Default EID prefix in the EUM name constraints (SGP.26: 89049032).
pub const DEFAULT_EUM_EID_PREFIX: &str = "89049032";
/// Default validity of CA certificates (SGP.26 CI: 35 years).
pub const DEFAULT_CA_DAYS: u32 = 35 * 365;
/// Default validity of SM-DP+ certificates (SGP.26 DPauth/DPpb: 10 years).
pub const DEFAULT_END_ENTITY_DAYS: u32 = 10 * 365;
/// Serial numbers: 8 random bytes, first bit clear (RFC 5280 §4.1.2.2: positive, ≤ 20 bytes).
const SERIAL_LEN: usize = 8;
/// Clears the sign bit of the first serial byte.
const SERIAL_POSITIVE_MASK: u8 = 0x7F;
/// Sets a low bit of the first byte so that DER needs no leading zero byte and no byte is lost.
const SERIAL_NONZERO_BIT: u8 = 0x01;
const SECONDS_PER_DAY: u64 = 86_400;

/// Elliptic curve of a certificate set (the two curves of SGP.22 v2.5 / SGP.26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Curve {
    /// NIST P-256; file suffix `NIST`.
    #[default]
    Nist,
    /// brainpoolP256r1; file suffix `BRP`.
    Brainpool,
}

impl Curve {
    /// File-name suffix SGP.26 uses for the curve.
    pub fn suffix(self) -> &'static str {
        match self {
            Curve::Nist => "NIST",
            Curve::Brainpool => "BRP",
        }
    }
}

/// The curves named by the CLI's `--curve nist|brainpool|both` (also `brp`, any case).
pub fn curves_from_arg(arg: &str) -> Result<Vec<Curve>, PkiError> {
    match arg.to_ascii_lowercase().as_str() {
        "nist" | "p256" | "p-256" => Ok(vec![Curve::Nist]),
        "brainpool" | "brp" | "bp256" => Ok(vec![Curve::Brainpool]),
        "both" => Ok(vec![Curve::Nist, Curve::Brainpool]),
        other => Err(PkiError::BadCurve(other.to_owned())),
    }
}

impl std::fmt::Display for PkiSummary {
    /// One line per curve, for the CLI.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "test PKI in {} (EID {}, SM-DP+ host {}; private keys are TEST keys)",
            self.out.display(),
            self.eid,
            self.smdp_host
        )?;
        for set in &self.sets {
            writeln!(
                f,
                "  {}: CI SKI {} ({} files)",
                set.curve.suffix(),
                hex::encode_upper(&set.ci_ski),
                set.files.len()
            )?;
        }
        if !self.operator.is_empty() {
            writeln!(
                f,
                "  operator CA + BOSS client and server certificates for ES2+ mutual TLS ({} files in {}/)",
                self.operator.len(),
                operator::OPERATOR_DIR
            )?;
        }
        Ok(())
    }
}

/// Validity periods. The eUICC certificate never expires (99991231235959Z, see
/// [`profiles::NO_EXPIRY`]).
#[derive(Debug, Clone, Copy)]
pub struct PkiValidity {
    /// notBefore of every certificate (rounded down to whole seconds).
    pub not_before: SystemTime,
    /// Days the CI and EUM certificates are valid.
    pub ca_days: u32,
    /// Days the SM-DP+ certificates are valid.
    pub end_entity_days: u32,
}

impl Default for PkiValidity {
    fn default() -> Self {
        Self {
            // A day back, so that peers with slightly slow clocks accept fresh sets.
            not_before: SystemTime::now() - Duration::from_secs(SECONDS_PER_DAY),
            ca_days: DEFAULT_CA_DAYS,
            end_entity_days: DEFAULT_END_ENTITY_DAYS,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct PkiOptions {
    /// Curves to generate a set for (one independent CI per curve).
    pub curves: Vec<Curve>,
    /// SM-DP+ host name for the DPtls certificate (CN and SAN dNSName).
    pub smdp_host: String,
    /// The eUICC's EID (32 digits with valid SGP.29 check digits).
    pub eid: String,
    /// EID prefix the EUM certificate permits (must be a prefix of `eid`).
    pub eum_eid_prefix: String,
    /// Validity periods.
    pub validity: PkiValidity,
}

impl Default for PkiOptions {
    fn default() -> Self {
        Self {
            curves: vec![Curve::Nist],
            smdp_host: DEFAULT_SMDP_HOST.into(),
            eid: DEFAULT_EID.into(),
            eum_eid_prefix: DEFAULT_EUM_EID_PREFIX.into(),
            validity: PkiValidity::default(),
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct PkiSummary {
    /// The output directory.
    pub out: PathBuf,
    /// The EID in the eUICC certificate.
    pub eid: String,
    /// The SM-DP+ host in the DPtls certificate.
    pub smdp_host: String,
    /// One entry per generated curve.
    pub sets: Vec<CurveSet>,
    /// The operator CA and BOSS client and server files for ES2+ mutual TLS ([`operator`]).
    pub operator: Vec<PathBuf>,
}

/// One generated curve.
#[derive(Debug, Clone)]
pub struct CurveSet {
    /// The curve.
    pub curve: Curve,
    /// CI SubjectKeyIdentifier (what EUICCInfo1 lists and euiccCiPKIdToBeUsed names).
    pub ci_ski: Vec<u8>,
    /// Every file written, relative to `out`.
    pub files: Vec<PathBuf>,
}

/// Errors of this module.
#[derive(Debug, Error)]
pub enum PkiError {
    /// The EID option is invalid.
    #[error("invalid EID: {0}")]
    Eid(#[from] EidError),
    /// The EUM EID prefix is empty, not decimal, or does not start the EID.
    #[error("EUM EID prefix {prefix:?} is unusable: {reason}")]
    BadPrefix {
        /// The prefix given.
        prefix: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The curve argument is not one of nist, brainpool, both.
    #[error("unknown curve {0:?}: expected nist, brainpool or both")]
    BadCurve(String),
    /// Nothing to generate.
    #[error("no curve selected: ask for nist, brainpool or both")]
    NoCurve,
    /// The SM-DP+ host is not an IA5 (ASCII) DNS name.
    #[error("SM-DP+ host {0:?} is not an ASCII DNS name")]
    BadHost(String),
    /// The curve or feature cannot be done with the crates built in.
    #[error("{curve:?} unsupported: {what}")]
    Unsupported {
        /// The curve asked for.
        curve: Curve,
        /// What cannot be done.
        what: String,
    },
    /// The validity options make no sense.
    #[error("bad validity: {0}")]
    BadValidity(String),
    /// A private key could not be used.
    #[error("bad {curve:?} private key: {reason}")]
    BadKey {
        /// The curve expected.
        curve: Curve,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// "reading" or "writing".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file that this layout requires is missing.
    #[error("missing {what}: expected {path}")]
    Missing {
        /// Which certificate or key.
        what: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// ASN.1 DER encoding or decoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// A certificate is not what its place in the layout says.
    #[error("{path}: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<der::pem::Error> for PkiError {
    // pem-rfc7468 errors do not implement std::error::Error; der wraps them.
    fn from(e: der::pem::Error) -> Self {
        PkiError::Der(e.into())
    }
}

/// File and directory names of one role (SGP.26 names).
#[derive(Debug, Clone, Copy)]
struct Layout {
    dir: &'static str,
    /// Certificate stem, before `_<SUFFIX>.der`.
    cert: &'static str,
    /// Private key stem, before `_<SUFFIX>.pem`.
    key: &'static str,
    /// Public key stem (SGP.26 writes PK_ files for the SM-DP+ keys only).
    public: Option<&'static str>,
    /// Also write the certificate as PEM (SGP.26 does for CI and DPtls).
    cert_pem: bool,
}

fn layout(role: Role) -> Layout {
    match role {
        Role::Ci => Layout {
            dir: "CertificateIssuer",
            cert: "CERT_CI_ECDSA",
            key: "SK_CI_ECDSA",
            public: None,
            cert_pem: true,
        },
        Role::Eum => Layout {
            dir: "EUM",
            cert: "CERT_EUM_ECDSA",
            key: "SK_EUM_ECDSA",
            public: None,
            cert_pem: false,
        },
        Role::Euicc => Layout {
            dir: "eUICC",
            cert: "CERT_EUICC_ECDSA",
            key: "SK_EUICC_ECDSA",
            public: None,
            cert_pem: false,
        },
        Role::DpAuth => Layout {
            dir: "DPauth",
            cert: "CERT_S_SM_DPauth_ECDSA",
            key: "SK_S_SM_DPauth_ECDSA",
            public: Some("PK_S_SM_DPauth_ECDSA"),
            cert_pem: false,
        },
        Role::DpPb => Layout {
            dir: "DPpb",
            cert: "CERT_S_SM_DPpb_ECDSA",
            key: "SK_S_SM_DPpb_ECDSA",
            public: Some("PK_S_SM_DPpb_ECDSA"),
            cert_pem: false,
        },
        Role::DpTls => Layout {
            dir: "DPtls",
            cert: "CERT_S_SM_DP_TLS",
            key: "SK_S_SM_DP_TLS",
            public: Some("PK_S_SM_DP_TLS"),
            cert_pem: true,
        },
    }
}

/// Relative path of the DER certificate of `role` on `curve` (e.g.
/// `DPtls/CERT_S_SM_DP_TLS_NIST.der`).
pub fn cert_path(role: Role, curve: Curve) -> PathBuf {
    let l = layout(role);
    Path::new(l.dir).join(format!("{}_{}.der", l.cert, curve.suffix()))
}

/// Relative path of the private key file of `role` on `curve`.
pub fn key_path(role: Role, curve: Curve) -> PathBuf {
    let l = layout(role);
    Path::new(l.dir).join(format!("{}_{}.pem", l.key, curve.suffix()))
}

pub(crate) fn write_file(
    out: &Path,
    rel: &Path,
    bytes: &[u8],
    files: &mut Vec<PathBuf>,
) -> Result<(), PkiError> {
    let path = out.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| PkiError::Io {
            action: "creating",
            path: parent.to_owned(),
            source,
        })?;
    }
    fs::write(&path, bytes).map_err(|source| PkiError::Io {
        action: "writing",
        path: path.clone(),
        source,
    })?;
    files.push(rel.to_owned());
    Ok(())
}

fn check_options(opts: &PkiOptions) -> Result<(), PkiError> {
    if opts.curves.is_empty() {
        return Err(PkiError::NoCurve);
    }
    validate_eid(&opts.eid)?;
    let prefix = &opts.eum_eid_prefix;
    let reason = if prefix.is_empty() {
        Some("it is empty".to_owned())
    } else if !prefix.chars().all(|c| c.is_ascii_digit()) {
        Some("only decimal digits are allowed".to_owned())
    } else if !opts.eid.starts_with(prefix.as_str()) {
        // SGP.22 v2.5 §4.5.2.1.0 (EUM/eUICC profiles): the EID must start with the EUM's
        // permitted prefix.
        Some(format!("EID {} does not start with it", opts.eid))
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(PkiError::BadPrefix {
            prefix: prefix.clone(),
            reason,
        });
    }
    let host_ok = !opts.smdp_host.is_empty()
        && opts
            .smdp_host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !host_ok {
        return Err(PkiError::BadHost(opts.smdp_host.clone()));
    }
    Ok(())
}

pub(crate) fn random_serial() -> Vec<u8> {
    let mut serial = vec![0u8; SERIAL_LEN];
    OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & SERIAL_POSITIVE_MASK) | SERIAL_NONZERO_BIT;
    serial
}

pub(crate) fn validity(from: SystemTime, days: u32) -> Result<Validity, PkiError> {
    let until = from + Duration::from_secs(u64::from(days) * SECONDS_PER_DAY);
    Ok(Validity {
        not_before: profiles::rfc5280_time(from)?,
        not_after: profiles::rfc5280_time(until)?,
    })
}

/// One issued certificate with its key.
struct Issued {
    key: KeyPair,
    ski: Vec<u8>,
    subject: x509_cert::name::Name,
}

fn generate_curve(out: &Path, opts: &PkiOptions, curve: Curve) -> Result<CurveSet, PkiError> {
    let params = ProfileParams {
        eid: &opts.eid,
        eum_eid_prefix: &opts.eum_eid_prefix,
        smdp_host: &opts.smdp_host,
    };
    let v = &opts.validity;
    let mut files = Vec::new();
    let mut ci: Option<Issued> = None;
    let mut eum: Option<Issued> = None;
    for role in Role::ALL {
        let key = KeyPair::generate(curve)?;
        let spki = key.spki()?;
        let ski = profiles::key_identifier(&spki);
        let subject = profiles::subject(role, &params)?;
        let issuer = match profiles::issuer_role(role) {
            Role::Eum => eum.as_ref(),
            _ => ci.as_ref(),
        };
        // The CI is self-issued: its own name, SKI and key.
        let (issuer_name, issuer_ski, issuer_key) = match issuer {
            Some(i) if role != Role::Ci => (i.subject.clone(), i.ski.clone(), &i.key),
            _ => (subject.clone(), ski.clone(), &key),
        };
        let days = match role {
            Role::Ci | Role::Eum => Some(v.ca_days),
            Role::Euicc => None,
            Role::DpAuth | Role::DpPb | Role::DpTls => Some(v.end_entity_days),
        };
        let validity = match days {
            Some(days) => validity(v.not_before, days)?,
            None => Validity {
                not_before: profiles::rfc5280_time(v.not_before)?,
                not_after: profiles::NO_EXPIRY,
            },
        };
        let req = CertRequest {
            serial: random_serial(),
            issuer: issuer_name,
            subject: subject.clone(),
            validity,
            spki,
            extensions: profiles::extensions(role, &params, &ski, &issuer_ski)?,
        };
        let der = profiles::issue(req, issuer_key)?;

        let l = layout(role);
        let suffix = curve.suffix();
        write_file(out, &cert_path(role, curve), &der, &mut files)?;
        if l.cert_pem {
            let pem = der::pem::encode_string("CERTIFICATE", LineEnding::LF, &der)?;
            let rel = Path::new(l.dir).join(format!("{}_{suffix}.pem", l.cert));
            write_file(out, &rel, pem.as_bytes(), &mut files)?;
        }
        write_file(
            out,
            &key_path(role, curve),
            key.to_sec1_pem()?.as_bytes(),
            &mut files,
        )?;
        if let Some(public) = l.public {
            let rel = Path::new(l.dir).join(format!("{public}_{suffix}.pem"));
            write_file(out, &rel, key.public_key_pem()?.as_bytes(), &mut files)?;
        }

        let issued = Issued { key, ski, subject };
        match role {
            Role::Ci => ci = Some(issued),
            Role::Eum => eum = Some(issued),
            _ => {}
        }
    }
    let ci_ski = ci.map(|c| c.ski).unwrap_or_default();
    Ok(CurveSet {
        curve,
        ci_ski,
        files,
    })
}

/// Generates a fresh test PKI per requested curve into `out` (SGP.26 layout, see the module
/// docs). Existing files of the same names are overwritten.
pub fn generate(out: &Path, opts: &PkiOptions) -> Result<PkiSummary, PkiError> {
    check_options(opts)?;
    // Each curve once, in the order asked.
    let mut curves: Vec<Curve> = Vec::new();
    for c in &opts.curves {
        if !curves.contains(c) {
            curves.push(*c);
        }
    }
    let sets = curves
        .into_iter()
        .map(|curve| generate_curve(out, opts, curve))
        .collect::<Result<Vec<_>, _>>()?;
    let operator = operator::generate(out, &opts.validity)?;
    Ok(PkiSummary {
        out: out.to_owned(),
        eid: opts.eid.clone(),
        smdp_host: opts.smdp_host.clone(),
        sets,
        operator,
    })
}

/// A certificate (DER) with its private key when the directory has one.
#[derive(Debug, Clone)]
pub struct CertAndKey {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, if present.
    pub key: Option<KeyPair>,
}

impl CertAndKey {
    /// The private scalar (32 bytes big-endian), if the key is present.
    pub fn secret_scalar(&self) -> Option<Vec<u8>> {
        self.key.as_ref().map(KeyPair::scalar)
    }

    /// The certificate's SubjectKeyIdentifier, if it has one.
    pub fn subject_key_id(&self) -> Result<Option<Vec<u8>>, PkiError> {
        let cert = Certificate::from_der(&self.cert_der)?;
        Ok(cert
            .tbs_certificate
            .get::<SubjectKeyIdentifier>()?
            .map(|(_, ski)| ski.0.as_bytes().to_vec()))
    }
}

/// A PKI read from a directory in the SGP.26 layout, for one curve.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The curve of this set.
    pub curve: Curve,
    /// Where it was read from (a directory, or the built-in test PKI).
    pub source: Files,
    /// CI certificate (always present); its key only in generated sets.
    pub ci: CertAndKey,
    /// EUM certificate and key (absent in the public SGP.26 files).
    pub eum: Option<CertAndKey>,
    /// eUICC certificate and key (absent in the public SGP.26 files).
    pub euicc: Option<CertAndKey>,
    /// SM-DP+ authentication certificate and key.
    pub dp_auth: CertAndKey,
    /// SM-DP+ profile binding certificate and key.
    pub dp_pb: CertAndKey,
    /// SM-DP+ TLS certificate and key.
    pub dp_tls: CertAndKey,
}

fn read_optional(dir: &Files, rel: &Path) -> Result<Option<Vec<u8>>, PkiError> {
    dir.read_optional(rel).map_err(|source| PkiError::Io {
        action: "reading",
        path: dir.location(rel),
        source,
    })
}

fn load_role(dir: &Files, role: Role, curve: Curve) -> Result<Option<CertAndKey>, PkiError> {
    let rel = cert_path(role, curve);
    let Some(cert_der) = read_optional(dir, &rel)? else {
        return Ok(None);
    };
    let path = dir.location(&rel);
    let cert = Certificate::from_der(&cert_der).map_err(|e| PkiError::BadCertificate {
        path: path.clone(),
        reason: format!("not a DER X.509 certificate: {e}"),
    })?;
    // SGP.22 v2.5 §4.5.2.1.0: the role is told by the certificatePolicies OID.
    let policies = cert
        .tbs_certificate
        .get::<x509_cert::ext::pkix::CertificatePolicies>()?
        .map(|(_, p)| p.0)
        .unwrap_or_default();
    if !policies
        .iter()
        .any(|p| p.policy_identifier == role.policy_oid())
    {
        return Err(PkiError::BadCertificate {
            path,
            reason: format!(
                "expected certificate policy {} for {role:?}, found {:?}",
                role.policy_oid(),
                policies
                    .iter()
                    .map(|p| p.policy_identifier.to_string())
                    .collect::<Vec<_>>()
            ),
        });
    }
    let key = match read_optional(dir, &key_path(role, curve))? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            Some(KeyPair::from_sec1_pem(&text, curve)?)
        }
        None => None,
    };
    if let Some(key) = &key {
        if cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            != key.public_point().as_slice()
        {
            return Err(PkiError::BadCertificate {
                path,
                reason: format!(
                    "private key {} does not belong to this certificate",
                    key_path(role, curve).display()
                ),
            });
        }
    }
    Ok(Some(CertAndKey { cert_der, key }))
}

impl Pki {
    /// Reads the `curve` set of a directory in the SGP.26 layout. CI, DPauth, DPpb and DPtls
    /// certificates are required; EUM/eUICC and every private key are optional.
    pub fn load(dir: &Path, curve: Curve) -> Result<Pki, PkiError> {
        Self::load_from(&Files::from(dir), curve)
    }

    /// [`Pki::load`] from a directory on disk or the built-in test PKI
    /// ([`crate::defaults::Files::pki`]).
    pub fn load_from(dir: &Files, curve: Curve) -> Result<Pki, PkiError> {
        let required = |role: Role| -> Result<CertAndKey, PkiError> {
            load_role(dir, role, curve)?.ok_or_else(|| PkiError::Missing {
                what: format!("{role:?} certificate"),
                path: dir.location(cert_path(role, curve)),
            })
        };
        Ok(Pki {
            curve,
            source: dir.clone(),
            ci: required(Role::Ci)?,
            eum: load_role(dir, Role::Eum, curve)?,
            euicc: load_role(dir, Role::Euicc, curve)?,
            dp_auth: required(Role::DpAuth)?,
            dp_pb: required(Role::DpPb)?,
            dp_tls: required(Role::DpTls)?,
        })
    }

    /// The CI SubjectKeyIdentifier (the CI PKID of SGP.22 EUICCInfo1).
    pub fn ci_ski(&self) -> Result<Vec<u8>, PkiError> {
        self.ci
            .subject_key_id()?
            .ok_or_else(|| PkiError::BadCertificate {
                path: self.source.location(cert_path(Role::Ci, self.curve)),
                reason: "CI certificate has no SubjectKeyIdentifier".into(),
            })
    }

    /// Issues another eUICC certificate and key for `eid` under this set's EUM (whose key
    /// must be present), with the same profile as the generated one: for tests and load
    /// generators that need many distinct eUICCs of one PKI.
    pub fn issue_euicc(&self, eid: &str) -> Result<CertAndKey, PkiError> {
        validate_eid(eid)?;
        let missing = |what: &str| PkiError::Missing {
            what: what.into(),
            path: key_path(Role::Eum, self.curve),
        };
        let eum = self
            .eum
            .as_ref()
            .ok_or_else(|| missing("EUM certificate"))?;
        let eum_key = eum.key.as_ref().ok_or_else(|| missing("EUM private key"))?;
        let eum_cert = Certificate::from_der(&eum.cert_der)?;
        let eum_ski = eum.subject_key_id()?.unwrap_or_default();
        let key = KeyPair::generate(self.curve)?;
        let spki = key.spki()?;
        let ski = profiles::key_identifier(&spki);
        let params = ProfileParams {
            eid,
            eum_eid_prefix: "",
            smdp_host: "",
        };
        let req = CertRequest {
            serial: random_serial(),
            issuer: eum_cert.tbs_certificate.subject.clone(),
            subject: profiles::subject(Role::Euicc, &params)?,
            validity: Validity {
                not_before: eum_cert.tbs_certificate.validity.not_before,
                not_after: profiles::NO_EXPIRY,
            },
            spki,
            extensions: profiles::extensions(Role::Euicc, &params, &ski, &eum_ski)?,
        };
        Ok(CertAndKey {
            cert_der: profiles::issue(req, eum_key)?,
            key: Some(key),
        })
    }

    /// The EID in the eUICC certificate's subject serialNumber, if there is an eUICC.
    pub fn eid(&self) -> Result<Option<String>, PkiError> {
        let Some(euicc) = &self.euicc else {
            return Ok(None);
        };
        let cert = Certificate::from_der(&euicc.cert_der)?;
        Ok(profiles::attr_value(
            &cert.tbs_certificate.subject,
            profiles::oid::AT_SERIAL_NUMBER,
        ))
    }
}
