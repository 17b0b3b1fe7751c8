//! ECDSA with SHA-256 as SGP.22 v2.5 §2.6.5 uses it: signatures inside the ES8+/ES10 ASN.1
//! messages are raw `r‖s` (64 bytes, BSI TR-03111 §5.2.2 "plain" format, carried as
//! `5F37 40 ‖ sig`); signatures inside X.509 certificates are DER `ECDSA-Sig-Value`
//! (RFC 5480 §2.2 / RFC 3279 §2.2.3). Public keys are uncompressed points `04‖X‖Y`
//! (SEC 1 v2 §2.3.3); private keys load from SEC 1 (`EC PRIVATE KEY`, optionally preceded by
//! `EC PARAMETERS`, as the SGP.26 files are) or PKCS#8 (`PRIVATE KEY`) PEM.
//!
//! Verification accepts any valid signature, including high-S ones other implementations
//! produce.
//!
//! Two implementations do the arithmetic ([`P256Backend`]): on NIST P-256, `ring` by default
//! (`ECDSA_P256_SHA256_FIXED` is exactly SGP.22's raw `r‖s`; about 5× faster, see
//! docs/performance.md), or RustCrypto's `p256`; brainpoolP256r1 is always RustCrypto's
//! (`bp256`, which ring does not have). RustCrypto signs deterministically (RFC 6979), ring with
//! hedged random nonces; both give signatures any verifier accepts. Keys, DER codecs and
//! certificates are RustCrypto's; the only hand-written part is walking the few DER structures
//! that name the curve (SEC 1 / PKCS#8 private keys, SubjectPublicKeyInfo, certificates) with
//! [`crate::tlv`], so a key is routed to the right curve before a typed decoder sees it.

use super::{Curve, FIELD_LEN, OID_EC_PUBLIC_KEY, UNCOMPRESSED_POINT_LEN};
use crate::tlv::{self, Tlv, TlvError};
use bp256::r1::BrainpoolP256r1;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// Which implementation does ECDSA and one-time ECDH on NIST P-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum P256Backend {
    /// `ring` (BoringSSL's P-256 code): the default.
    #[default]
    Ring,
    /// RustCrypto `p256` (pure Rust, deterministic RFC 6979 signatures).
    RustCrypto,
}

impl P256Backend {
    pub const ALL: [P256Backend; 2] = [P256Backend::Ring, P256Backend::RustCrypto];
}

impl std::fmt::Display for P256Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            P256Backend::Ring => "ring",
            P256Backend::RustCrypto => "RustCrypto",
        })
    }
}

/// The process-wide P-256 backend (0 = ring, 1 = RustCrypto). Only benchmarks change it, to
/// measure both in one run; tests pick one per call (`sign_with`, `verify_with`).
static P256_BACKEND: AtomicU8 = AtomicU8::new(0);

/// Sets the backend [`SigningKey::sign`], [`VerifyingKey::verify`] and
/// [`crate::rsp::ecka::agree_once`] use on P-256.
pub fn set_p256_backend(backend: P256Backend) {
    let v = match backend {
        P256Backend::Ring => 0,
        P256Backend::RustCrypto => 1,
    };
    P256_BACKEND.store(v, Ordering::Relaxed);
}

/// The current P-256 backend.
pub fn p256_backend() -> P256Backend {
    match P256_BACKEND.load(Ordering::Relaxed) {
        0 => P256Backend::Ring,
        _ => P256Backend::RustCrypto,
    }
}

/// A raw ECDSA signature `r‖s`, each 32 bytes big-endian (BSI TR-03111 §5.2.2).
pub type RawSignature = [u8; RAW_SIGNATURE_LEN];
/// Length of a raw signature on a 256-bit curve.
pub const RAW_SIGNATURE_LEN: usize = 2 * FIELD_LEN;

/// DER universal tags used when walking keys and certificates (X.690 §8).
const TAG_INTEGER: u32 = 0x02;
const TAG_BIT_STRING: u32 = 0x03;
const TAG_OCTET_STRING: u32 = 0x04;
const TAG_OID: u32 = 0x06;
const TAG_SEQUENCE: u32 = 0x30;
/// `[0] ECParameters` inside a SEC 1 `ECPrivateKey` (SEC 1 v2 §C.4).
const TAG_EC_PRIVATE_KEY_PARAMETERS: u32 = 0xA0;
/// `[0] EXPLICIT Version` at the start of an X.509 `TBSCertificate` (RFC 5280 §4.1).
const TAG_TBS_VERSION: u32 = 0xA0;
/// First byte of an uncompressed SEC 1 point.
const UNCOMPRESSED_POINT_PREFIX: u8 = 0x04;

/// PEM labels (RFC 7468 §10, §13; SEC 1 v2 §C.4 as OpenSSL writes it).
const PEM_LABEL_EC_PARAMETERS: &str = "EC PARAMETERS";
const PEM_LABEL_EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
const PEM_LABEL_PKCS8: &str = "PRIVATE KEY";

/// Why a key, certificate or signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EcdsaError {
    #[error("ECDSA: curve OID {oid} is not supported, expected NIST P-256 or brainpoolP256r1")]
    UnsupportedCurve { oid: String },
    #[error("ECDSA: the key does not name its curve (no EC PARAMETERS block, no [0] parameters)")]
    MissingCurve,
    #[error("ECDSA: PEM text could not be decoded: {0}")]
    Pem(String),
    #[error("ECDSA: no EC PRIVATE KEY or PRIVATE KEY block in the PEM text")]
    NoPrivateKey,
    #[error("ECDSA: EC PARAMETERS names {params} but the key names {key}")]
    CurveConflict { params: Curve, key: Curve },
    #[error("ECDSA: private key is not a valid {curve} key: {reason}")]
    BadPrivateKey { curve: Curve, reason: String },
    #[error("ECDSA: public key is not a valid uncompressed {curve} point (04‖X‖Y, 65 bytes)")]
    BadPublicKey { curve: Curve },
    #[error("ECDSA: raw signature is {found} bytes, expected {RAW_SIGNATURE_LEN} (r‖s)")]
    BadSignatureLength { found: usize },
    #[error("ECDSA: not a DER ECDSA-Sig-Value with r and s in range for {curve}")]
    BadDerSignature { curve: Curve },
    #[error("ECDSA: signature does not verify")]
    InvalidSignature,
    #[error("ECDSA: {what} is not well-formed DER: expected {expected}")]
    Malformed {
        what: &'static str,
        expected: &'static str,
    },
    #[error("ECDSA: {what} is not BER-TLV: {source}")]
    Tlv {
        what: &'static str,
        source: TlvError,
    },
}

type P256Signature = p256::ecdsa::Signature;
type Bp256Signature = ecdsa_bp256::Signature<BrainpoolP256r1>;

/// A private signing key on one of the SGP.22 curves.
#[derive(Clone)]
pub struct SigningKey {
    inner: SigningInner,
}

#[derive(Clone)]
enum SigningInner {
    /// The same key for both backends (ring's key pair is not `Clone`: shared).
    P256(p256::ecdsa::SigningKey, Arc<ring::signature::EcdsaKeyPair>),
    Bp256(ecdsa_bp256::SigningKey<BrainpoolP256r1>),
}

/// ring's key pair for a RustCrypto P-256 key: private scalar and public point.
fn ring_key_pair(
    k: &p256::ecdsa::SigningKey,
) -> Result<Arc<ring::signature::EcdsaKeyPair>, EcdsaError> {
    let point = k.verifying_key().to_encoded_point(false);
    ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &k.to_bytes(),
        point.as_bytes(),
        &ring::rand::SystemRandom::new(),
    )
    .map(Arc::new)
    .map_err(|e| EcdsaError::BadPrivateKey {
        curve: Curve::NistP256,
        reason: format!("ring refused it: {e}"),
    })
}

fn p256_signing(k: p256::ecdsa::SigningKey) -> Result<SigningInner, EcdsaError> {
    let pair = ring_key_pair(&k)?;
    Ok(SigningInner::P256(k, pair))
}

impl std::fmt::Debug for SigningKey {
    // Private scalars stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.curve())
    }
}

impl SigningKey {
    /// A key from its 32-byte big-endian private scalar `d` (1 ≤ d < n).
    pub fn from_scalar(curve: Curve, d: &[u8]) -> Result<Self, EcdsaError> {
        let bad = |reason: &str| EcdsaError::BadPrivateKey {
            curve,
            reason: reason.to_owned(),
        };
        if d.len() != FIELD_LEN {
            return Err(bad("the scalar must be 32 bytes"));
        }
        let inner = match curve {
            Curve::NistP256 => p256_signing(
                p256::ecdsa::SigningKey::from_slice(d).map_err(|_| bad("scalar out of range"))?,
            )?,
            Curve::BrainpoolP256r1 => SigningInner::Bp256(
                ecdsa_bp256::SigningKey::from_slice(d).map_err(|_| bad("scalar out of range"))?,
            ),
        };
        Ok(Self { inner })
    }

    /// Loads a private key from PEM: SEC 1 `EC PRIVATE KEY` (an `EC PARAMETERS` block before it
    /// names the curve when the key itself does not, as in the SGP.26 `SK_*.pem` files) or
    /// PKCS#8 `PRIVATE KEY`. Blocks with other labels are ignored.
    pub fn from_pem(pem: &str) -> Result<Self, EcdsaError> {
        let mut params_curve = None;
        for block in pem_blocks(pem) {
            let (label, der) = p256::pkcs8::der::pem::decode_vec(block.as_bytes())
                .map_err(|e| EcdsaError::Pem(e.to_string()))?;
            match label {
                PEM_LABEL_EC_PARAMETERS => {
                    let oid = expect(
                        parse_whole(&der, "EC PARAMETERS")?,
                        TAG_OID,
                        "EC PARAMETERS",
                    )?;
                    params_curve = Some(curve_of(oid.value)?);
                }
                PEM_LABEL_EC_PRIVATE_KEY => return Self::from_sec1_der(&der, params_curve),
                PEM_LABEL_PKCS8 => return Self::from_pkcs8_der(&der),
                _ => {}
            }
        }
        Err(EcdsaError::NoPrivateKey)
    }

    /// Loads a SEC 1 `ECPrivateKey` (SEC 1 v2 §C.4). `curve` is what a separate
    /// `EC PARAMETERS` said, if anything; the key's own `[0]` parameters win but must agree.
    pub fn from_sec1_der(der: &[u8], curve: Option<Curve>) -> Result<Self, EcdsaError> {
        const WHAT: &str = "EC PRIVATE KEY";
        let key = expect(parse_whole(der, WHAT)?, TAG_SEQUENCE, WHAT)?;
        let own = match key.find(TAG_EC_PRIVATE_KEY_PARAMETERS) {
            Some(params) => {
                let oid = expect(parse_whole(params.value, WHAT)?, TAG_OID, WHAT)?;
                Some(curve_of(oid.value)?)
            }
            None => None,
        };
        let curve = match (own, curve) {
            (Some(key), Some(params)) if key != params => {
                return Err(EcdsaError::CurveConflict { params, key })
            }
            (Some(c), _) | (None, Some(c)) => c,
            (None, None) => return Err(EcdsaError::MissingCurve),
        };
        let bad = |e: String| EcdsaError::BadPrivateKey { curve, reason: e };
        let inner = match curve {
            Curve::NistP256 => {
                let sk = p256::SecretKey::from_sec1_der(der).map_err(|e| bad(e.to_string()))?;
                p256_signing(p256::ecdsa::SigningKey::from(sk))?
            }
            Curve::BrainpoolP256r1 => {
                let sk =
                    bp256::r1::SecretKey::from_sec1_der(der).map_err(|e| bad(e.to_string()))?;
                SigningInner::Bp256(ecdsa_bp256::SigningKey::from(sk))
            }
        };
        Ok(Self { inner })
    }

    /// Loads a PKCS#8 `PrivateKeyInfo` (RFC 5208 §5, RFC 5915 §2) for an EC key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, EcdsaError> {
        const WHAT: &str = "PKCS#8 PrivateKeyInfo";
        let info = expect(parse_whole(der, WHAT)?, TAG_SEQUENCE, WHAT)?;
        let algorithm = info
            .children()
            .map_while(Result::ok)
            .find(|t| t.tag == TAG_SEQUENCE)
            .ok_or(EcdsaError::Malformed {
                what: WHAT,
                expected: "an AlgorithmIdentifier",
            })?;
        let curve = ec_algorithm_curve(algorithm, WHAT)?;
        let bad = |e: String| EcdsaError::BadPrivateKey { curve, reason: e };
        let inner = match curve {
            Curve::NistP256 => {
                use p256::pkcs8::DecodePrivateKey as _;
                p256_signing(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?,
                )?
            }
            Curve::BrainpoolP256r1 => {
                use bp256::pkcs8::DecodePrivateKey as _;
                SigningInner::Bp256(
                    ecdsa_bp256::SigningKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?,
                )
            }
        };
        Ok(Self { inner })
    }

    /// The curve the key lives on.
    pub fn curve(&self) -> Curve {
        match self.inner {
            SigningInner::P256(..) => Curve::NistP256,
            SigningInner::Bp256(_) => Curve::BrainpoolP256r1,
        }
    }

    /// Signs SHA-256(`msg`) and returns raw `r‖s`, with the process's [`p256_backend`].
    pub fn sign(&self, msg: &[u8]) -> RawSignature {
        self.sign_with(p256_backend(), msg)
    }

    /// Signs SHA-256(`msg`) with `backend` on P-256 (brainpool: always RustCrypto): raw
    /// `r‖s`, deterministic (RFC 6979) with RustCrypto, hedged random nonces with ring.
    pub fn sign_with(&self, backend: P256Backend, msg: &[u8]) -> RawSignature {
        let mut out = [0u8; RAW_SIGNATURE_LEN];
        match &self.inner {
            SigningInner::P256(k, pair) => {
                let ring_sig = match backend {
                    P256Backend::Ring => pair.sign(&ring::rand::SystemRandom::new(), msg).ok(),
                    P256Backend::RustCrypto => None,
                };
                match ring_sig {
                    Some(sig) if sig.as_ref().len() == RAW_SIGNATURE_LEN => {
                        out.copy_from_slice(sig.as_ref());
                    }
                    // ring fails only when the OS gives no randomness: sign deterministically.
                    _ => {
                        let sig: P256Signature = p256::ecdsa::signature::Signer::sign(k, msg);
                        out.copy_from_slice(&sig.to_bytes());
                    }
                }
            }
            SigningInner::Bp256(k) => {
                let sig: Bp256Signature = ecdsa_bp256::signature::Signer::sign(k, msg);
                out.copy_from_slice(&sig.to_bytes());
            }
        }
        out
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let inner = match &self.inner {
            SigningInner::P256(k, _) => p256_verifying(*k.verifying_key()),
            SigningInner::Bp256(k) => VerifyingInner::Bp256(*k.verifying_key()),
        };
        VerifyingKey { inner }
    }
}

/// A public key on one of the SGP.22 curves.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    inner: VerifyingInner,
}

#[derive(Clone, PartialEq, Eq)]
enum VerifyingInner {
    /// With its uncompressed point, which ring takes as the key.
    P256(p256::ecdsa::VerifyingKey, [u8; UNCOMPRESSED_POINT_LEN]),
    Bp256(ecdsa_bp256::VerifyingKey<BrainpoolP256r1>),
}

fn p256_verifying(k: p256::ecdsa::VerifyingKey) -> VerifyingInner {
    let mut point = [0u8; UNCOMPRESSED_POINT_LEN];
    point
        .iter_mut()
        .zip(k.to_encoded_point(false).as_bytes())
        .for_each(|(d, s)| *d = *s);
    VerifyingInner::P256(k, point)
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerifyingKey({}, {})",
            self.curve(),
            hex::encode_upper(self.to_uncompressed())
        )
    }
}

impl VerifyingKey {
    /// A key from an uncompressed point `04‖X‖Y` (65 bytes) on `curve`; the point must lie on
    /// the curve.
    pub fn from_uncompressed(curve: Curve, point: &[u8]) -> Result<Self, EcdsaError> {
        let bad = EcdsaError::BadPublicKey { curve };
        if point.len() != UNCOMPRESSED_POINT_LEN
            || point.first() != Some(&UNCOMPRESSED_POINT_PREFIX)
        {
            return Err(bad);
        }
        let inner = match curve {
            Curve::NistP256 => {
                p256_verifying(p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad)?)
            }
            Curve::BrainpoolP256r1 => VerifyingInner::Bp256(
                ecdsa_bp256::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad)?,
            ),
        };
        Ok(Self { inner })
    }

    /// A key from a DER `SubjectPublicKeyInfo` (RFC 5480 §2) with `id-ecPublicKey` and a named
    /// curve.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, EcdsaError> {
        const WHAT: &str = "SubjectPublicKeyInfo";
        let spki = expect(parse_whole(spki, WHAT)?, TAG_SEQUENCE, WHAT)?;
        let mut children = spki.children();
        let algorithm = next_child(&mut children, TAG_SEQUENCE, WHAT)?;
        let curve = ec_algorithm_curve(algorithm, WHAT)?;
        let bits = next_child(&mut children, TAG_BIT_STRING, WHAT)?;
        // X.690 §8.6.2: the first content byte counts unused bits; a point uses whole bytes.
        match bits.value.split_first() {
            Some((0, point)) => Self::from_uncompressed(curve, point),
            _ => Err(EcdsaError::Malformed {
                what: WHAT,
                expected: "a BIT STRING of whole bytes",
            }),
        }
    }

    /// The subject public key of a DER X.509 certificate (RFC 5280 §4.1).
    pub fn from_certificate_der(cert: &[u8]) -> Result<Self, EcdsaError> {
        Self::from_spki_der(CertificateParts::parse(cert)?.spki)
    }

    /// The curve the key lives on.
    pub fn curve(&self) -> Curve {
        match self.inner {
            VerifyingInner::P256(..) => Curve::NistP256,
            VerifyingInner::Bp256(_) => Curve::BrainpoolP256r1,
        }
    }

    /// The uncompressed point `04‖X‖Y`.
    pub fn to_uncompressed(&self) -> [u8; UNCOMPRESSED_POINT_LEN] {
        let mut out = [0u8; UNCOMPRESSED_POINT_LEN];
        match &self.inner {
            VerifyingInner::P256(_, point) => out = *point,
            VerifyingInner::Bp256(k) => {
                let point = k.to_sec1_point(false);
                out.iter_mut()
                    .zip(point.as_bytes())
                    .for_each(|(d, s)| *d = *s);
            }
        }
        out
    }

    /// Verifies a raw `r‖s` signature over SHA-256(`msg`), with the process's
    /// [`p256_backend`].
    pub fn verify(&self, msg: &[u8], raw: &[u8]) -> Result<(), EcdsaError> {
        self.verify_with(p256_backend(), msg, raw)
    }

    /// Verifies a raw `r‖s` signature over SHA-256(`msg`) with `backend` on P-256
    /// (brainpool: always RustCrypto).
    pub fn verify_with(
        &self,
        backend: P256Backend,
        msg: &[u8],
        raw: &[u8],
    ) -> Result<(), EcdsaError> {
        if raw.len() != RAW_SIGNATURE_LEN {
            return Err(EcdsaError::BadSignatureLength { found: raw.len() });
        }
        // r or s of zero or ≥ n cannot be a valid signature: same answer as a wrong one.
        let ok = match &self.inner {
            VerifyingInner::P256(_, point) if backend == P256Backend::Ring => {
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    point,
                )
                .verify(msg, raw)
                .is_ok()
            }
            VerifyingInner::P256(k, _) => P256Signature::from_slice(raw)
                .is_ok_and(|s| p256::ecdsa::signature::Verifier::verify(k, msg, &s).is_ok()),
            VerifyingInner::Bp256(k) => Bp256Signature::from_slice(raw)
                .is_ok_and(|s| ecdsa_bp256::signature::Verifier::verify(k, msg, &s).is_ok()),
        };
        ok.then_some(()).ok_or(EcdsaError::InvalidSignature)
    }

    /// Verifies a DER `ECDSA-Sig-Value` over SHA-256(`msg`) (certificate signatures).
    pub fn verify_der(&self, msg: &[u8], der: &[u8]) -> Result<(), EcdsaError> {
        let raw = der_to_raw(self.curve(), der)?;
        self.verify(msg, &raw)
    }
}

/// Converts raw `r‖s` into DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`
/// (RFC 3279 §2.2.3), as X.509 carries it.
pub fn raw_to_der(curve: Curve, raw: &[u8]) -> Result<Vec<u8>, EcdsaError> {
    if raw.len() != RAW_SIGNATURE_LEN {
        return Err(EcdsaError::BadSignatureLength { found: raw.len() });
    }
    let bad = EcdsaError::BadDerSignature { curve };
    match curve {
        Curve::NistP256 => Ok(P256Signature::from_slice(raw)
            .map_err(|_| bad)?
            .to_der()
            .as_bytes()
            .to_vec()),
        Curve::BrainpoolP256r1 => Ok(Bp256Signature::from_slice(raw)
            .map_err(|_| bad)?
            .to_der()
            .as_bytes()
            .to_vec()),
    }
}

/// Converts DER `ECDSA-Sig-Value` into raw `r‖s` (each left-padded to 32 bytes).
pub fn der_to_raw(curve: Curve, der: &[u8]) -> Result<RawSignature, EcdsaError> {
    let bad = EcdsaError::BadDerSignature { curve };
    let mut out = [0u8; RAW_SIGNATURE_LEN];
    match curve {
        Curve::NistP256 => {
            out.copy_from_slice(&P256Signature::from_der(der).map_err(|_| bad)?.to_bytes())
        }
        Curve::BrainpoolP256r1 => {
            out.copy_from_slice(&Bp256Signature::from_der(der).map_err(|_| bad)?.to_bytes())
        }
    }
    Ok(out)
}

/// The pieces of a DER X.509 certificate (RFC 5280 §4.1) that signature checks need, as the
/// exact bytes of the input (signatures are over the received `tbsCertificate` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateParts<'a> {
    /// The whole `TBSCertificate` element (tag, length, value): what the issuer signed.
    pub tbs: &'a [u8],
    /// The whole `SubjectPublicKeyInfo` element.
    pub spki: &'a [u8],
    /// The `signatureAlgorithm` element.
    pub signature_algorithm: &'a [u8],
    /// The DER `ECDSA-Sig-Value` inside `signatureValue` (BIT STRING contents after the
    /// unused-bits byte).
    pub signature: &'a [u8],
}

impl<'a> CertificateParts<'a> {
    /// Splits a DER certificate; checks structure only, not validity or signatures.
    pub fn parse(cert: &'a [u8]) -> Result<Self, EcdsaError> {
        const WHAT: &str = "certificate";
        let cert = expect(parse_whole(cert, WHAT)?, TAG_SEQUENCE, WHAT)?;
        let mut children = cert.children();
        let tbs = next_child(&mut children, TAG_SEQUENCE, WHAT)?;
        let algorithm = next_child(&mut children, TAG_SEQUENCE, WHAT)?;
        let bits = next_child(&mut children, TAG_BIT_STRING, WHAT)?;
        let signature = match bits.value.split_first() {
            Some((0, sig)) => sig,
            _ => {
                return Err(EcdsaError::Malformed {
                    what: WHAT,
                    expected: "a whole-byte BIT STRING",
                })
            }
        };
        // TBSCertificate: [0] version (optional), serialNumber, signature, issuer, validity,
        // subject, subjectPublicKeyInfo, ...
        let mut fields = tbs.children().map_while(Result::ok).peekable();
        if fields.peek().is_some_and(|t| t.tag == TAG_TBS_VERSION) {
            fields.next();
        }
        let spki =
            fields
                .nth(5)
                .filter(|t| t.tag == TAG_SEQUENCE)
                .ok_or(EcdsaError::Malformed {
                    what: WHAT,
                    expected: "a subjectPublicKeyInfo",
                })?;
        Ok(Self {
            tbs: tbs.raw,
            spki: spki.raw,
            signature_algorithm: algorithm.raw,
            signature,
        })
    }
}

/// Splits PEM text into its `-----BEGIN …-----` … `-----END …-----` blocks.
fn pem_blocks(pem: &str) -> impl Iterator<Item = &str> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let mut rest = pem;
    std::iter::from_fn(move || {
        let start = rest.find(BEGIN)?;
        let after_start = rest.get(start..)?;
        let end_marker = after_start.find(END)?;
        // The END line runs to its closing dashes.
        let tail = after_start.get(end_marker + END.len()..)?;
        let close = tail.find("-----")? + "-----".len();
        let len = end_marker + END.len() + close;
        let block = after_start.get(..len)?;
        rest = after_start.get(len..)?;
        Some(block)
    })
}

fn parse_whole<'a>(der: &'a [u8], what: &'static str) -> Result<Tlv<'a>, EcdsaError> {
    tlv::parse_one(der).map_err(|source| EcdsaError::Tlv { what, source })
}

fn expect<'a>(t: Tlv<'a>, tag: u32, what: &'static str) -> Result<Tlv<'a>, EcdsaError> {
    if t.tag == tag {
        Ok(t)
    } else {
        Err(EcdsaError::Malformed {
            what,
            expected: expected_name(tag),
        })
    }
}

fn next_child<'a>(
    children: &mut tlv::TlvIter<'a>,
    tag: u32,
    what: &'static str,
) -> Result<Tlv<'a>, EcdsaError> {
    match children.next() {
        Some(Ok(t)) => expect(t, tag, what),
        Some(Err(source)) => Err(EcdsaError::Tlv { what, source }),
        None => Err(EcdsaError::Malformed {
            what,
            expected: expected_name(tag),
        }),
    }
}

fn expected_name(tag: u32) -> &'static str {
    match tag {
        TAG_INTEGER => "an INTEGER",
        TAG_BIT_STRING => "a BIT STRING",
        TAG_OCTET_STRING => "an OCTET STRING",
        TAG_OID => "an OBJECT IDENTIFIER",
        TAG_SEQUENCE => "a SEQUENCE",
        _ => "another element",
    }
}

fn curve_of(oid: &[u8]) -> Result<Curve, EcdsaError> {
    Curve::from_oid(oid).ok_or_else(|| EcdsaError::UnsupportedCurve {
        oid: hex::encode_upper(oid),
    })
}

/// `AlgorithmIdentifier { id-ecPublicKey, namedCurve }` (RFC 5480 §2.1.1) → the curve.
fn ec_algorithm_curve(algorithm: Tlv<'_>, what: &'static str) -> Result<Curve, EcdsaError> {
    let mut children = algorithm.children();
    let kind = next_child(&mut children, TAG_OID, what)?;
    if kind.value != OID_EC_PUBLIC_KEY {
        return Err(EcdsaError::Malformed {
            what,
            expected: "algorithm id-ecPublicKey",
        });
    }
    let named = next_child(&mut children, TAG_OID, what)?;
    curve_of(named.value)
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{self, *};
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[rstest]
    #[case::nist_sec1_with_ec_parameters(SK_DPAUTH_NIST, CERT_DPAUTH_NIST, Curve::NistP256)]
    #[case::brainpool_sec1_with_ec_parameters(
        SK_DPAUTH_BRP,
        CERT_DPAUTH_BRP,
        Curve::BrainpoolP256r1
    )]
    #[case::nist_pkcs8(SK_DPAUTH_NIST_PKCS8, CERT_DPAUTH_NIST, Curve::NistP256)]
    #[case::brainpool_pkcs8(SK_DPAUTH_BRP_PKCS8, CERT_DPAUTH_BRP, Curve::BrainpoolP256r1)]
    #[case::dppb_nist(SK_DPPB_NIST, CERT_DPPB_NIST, Curve::NistP256)]
    fn sgp26_private_key_matches_its_certificate(
        #[case] pem: &str,
        #[case] cert: &[u8],
        #[case] curve: Curve,
    ) {
        let key = SigningKey::from_pem(pem).unwrap();
        assert_eq!(key.curve(), curve);
        let from_cert = VerifyingKey::from_certificate_der(cert).unwrap();
        assert_eq!(key.verifying_key(), from_cert);
        let sig = key.sign(b"AuthenticateServer");
        from_cert.verify(b"AuthenticateServer", &sig).unwrap();
    }

    #[test]
    fn sgp26_dpauth_public_key_is_the_one_openssl_prints() {
        // `openssl x509 -inform der -in CERT_S_SM_DPauth_ECDSA_NIST.der -noout -pubkey`, the
        // BIT STRING of the SPKI; same as the publicKey [1] of SK_S_SM_DPauth_ECDSA_NIST.pem.
        let expected = h(concat!(
            "04 ",
            "4DFED4F4694791BF1695CEA0307A35B418019695387BB75B7D2447B6B5209F04 ",
            "45AE4E5E521CD13888D75FE07C8580222AE20DBAAC1D77CD76304993421BD739"
        ));
        let key = VerifyingKey::from_certificate_der(CERT_DPAUTH_NIST).unwrap();
        assert_eq!(key.to_uncompressed().to_vec(), expected);
    }

    #[rstest]
    #[case::nist(CERT_CI_NIST, CERT_DPAUTH_NIST)]
    #[case::brainpool(CERT_CI_BRP, CERT_DPAUTH_BRP)]
    fn sgp26_dpauth_certificate_is_signed_by_the_test_ci(#[case] ci: &[u8], #[case] dpauth: &[u8]) {
        let ci_key = VerifyingKey::from_certificate_der(ci).unwrap();
        let parts = CertificateParts::parse(dpauth).unwrap();
        ci_key.verify_der(parts.tbs, parts.signature).unwrap();
        let mut tampered = parts.tbs.to_vec();
        tampered[20] ^= 1;
        assert_eq!(
            ci_key.verify_der(&tampered, parts.signature),
            Err(EcdsaError::InvalidSignature)
        );
    }

    #[rstest]
    fn verifies_signatures_made_by_pyca_cryptography_in_raw_and_der_form(
        #[values(P256Backend::Ring, P256Backend::RustCrypto)] backend: P256Backend,
    ) {
        let v = vectors::load("ecdsa");
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 6);
        for case in cases {
            let curve = vectors::curve(&case["curve"]);
            let (msg, raw, der) = (hex(&case["msg"]), hex(&case["raw"]), hex(&case["der"]));
            let key = SigningKey::from_scalar(curve, &hex(&case["sk"])).unwrap();
            let public = VerifyingKey::from_uncompressed(curve, &hex(&case["pk"])).unwrap();
            assert_eq!(key.verifying_key(), public);
            public.verify_with(backend, &msg, &raw).unwrap();
            public
                .verify_with(backend, &msg, &der_to_raw(curve, &der).unwrap())
                .unwrap();
            assert_eq!(der_to_raw(curve, &der).unwrap().to_vec(), raw);
            assert_eq!(raw_to_der(curve, &raw).unwrap(), der);
            assert_eq!(
                public.verify_with(backend, b"other message", &raw),
                Err(EcdsaError::InvalidSignature)
            );
            // A signature this backend makes verifies with the other one and with the vector's
            // public key.
            let mine = key.sign_with(backend, &msg);
            for other in P256Backend::ALL {
                public.verify_with(other, &msg, &mine).unwrap();
            }
        }
    }

    #[rstest]
    fn signs_and_verifies_on_every_curve(
        #[values(Curve::NistP256, Curve::BrainpoolP256r1)] curve: Curve,
        #[values(P256Backend::Ring, P256Backend::RustCrypto)] backend: P256Backend,
    ) {
        let key = SigningKey::from_scalar(curve, &[0x11; 32]).unwrap();
        let sig = key.sign_with(backend, b"euiccSigned1");
        let deterministic = curve == Curve::BrainpoolP256r1 || backend == P256Backend::RustCrypto;
        assert_eq!(
            sig == key.sign_with(backend, b"euiccSigned1"),
            deterministic,
            "RFC 6979 (RustCrypto) is deterministic, ring's hedged nonces are not"
        );
        let public = key.verifying_key();
        public.verify_with(backend, b"euiccSigned1", &sig).unwrap();
        let again = VerifyingKey::from_uncompressed(curve, &public.to_uncompressed()).unwrap();
        again.verify_with(backend, b"euiccSigned1", &sig).unwrap();
        let mut bad = sig;
        bad[40] ^= 0x80;
        assert_eq!(
            public.verify_with(backend, b"euiccSigned1", &bad),
            Err(EcdsaError::InvalidSignature)
        );
        let der = raw_to_der(curve, &sig).unwrap();
        assert_eq!(der_to_raw(curve, &der).unwrap(), sig);
    }

    #[rstest]
    fn accepts_high_s_signatures(
        #[values(P256Backend::Ring, P256Backend::RustCrypto)] backend: P256Backend,
    ) {
        // (r, n − s) is as valid as (r, s); peers do not all normalise s.
        let key = SigningKey::from_scalar(Curve::NistP256, &[0x22; 32]).unwrap();
        let sig = P256Signature::from_slice(&key.sign(b"msg")).unwrap();
        let (r, s) = sig.split_scalars();
        let flipped = P256Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        assert_ne!(flipped.to_bytes(), sig.to_bytes());
        key.verifying_key()
            .verify_with(backend, b"msg", &flipped.to_bytes())
            .unwrap();
    }

    #[rstest]
    #[case::too_short(63)]
    #[case::der_sized(70)]
    fn rejects_raw_signatures_of_the_wrong_length(#[case] len: usize) {
        let key = SigningKey::from_scalar(Curve::NistP256, &[0x22; 32])
            .unwrap()
            .verifying_key();
        assert_eq!(
            key.verify(b"m", &vec![1; len]),
            Err(EcdsaError::BadSignatureLength { found: len })
        );
    }

    #[rstest]
    fn rejects_zero_r_and_s_as_invalid(
        #[values(P256Backend::Ring, P256Backend::RustCrypto)] backend: P256Backend,
    ) {
        let key = SigningKey::from_scalar(Curve::NistP256, &[0x22; 32])
            .unwrap()
            .verifying_key();
        assert_eq!(
            key.verify_with(backend, b"m", &[0; 64]),
            Err(EcdsaError::InvalidSignature)
        );
        // r = n (the group order) is out of range too.
        let mut n_and_one = h("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
        n_and_one.extend([0; 31]);
        n_and_one.push(1);
        assert_eq!(
            key.verify_with(backend, b"m", &n_and_one),
            Err(EcdsaError::InvalidSignature)
        );
        assert!(matches!(
            raw_to_der(Curve::NistP256, &[0; 64]),
            Err(EcdsaError::BadDerSignature { .. })
        ));
    }

    #[rstest]
    #[case::point_off_the_curve(|p: &mut Vec<u8>| p[64] ^= 1)]
    #[case::compressed_prefix(|p: &mut Vec<u8>| p[0] = 0x02)]
    #[case::truncated(|p: &mut Vec<u8>| { p.pop(); })]
    fn rejects_bad_public_keys(
        #[values(Curve::NistP256, Curve::BrainpoolP256r1)] curve: Curve,
        #[case] spoil: fn(&mut Vec<u8>),
    ) {
        let mut point = SigningKey::from_scalar(curve, &[0x33; 32])
            .unwrap()
            .verifying_key()
            .to_uncompressed()
            .to_vec();
        spoil(&mut point);
        assert_eq!(
            VerifyingKey::from_uncompressed(curve, &point),
            Err(EcdsaError::BadPublicKey { curve })
        );
    }

    #[test]
    fn a_nist_point_is_not_a_brainpool_point() {
        let nist = SigningKey::from_scalar(Curve::NistP256, &[0x33; 32])
            .unwrap()
            .verifying_key();
        assert!(
            VerifyingKey::from_uncompressed(Curve::BrainpoolP256r1, &nist.to_uncompressed())
                .is_err()
        );
    }

    #[test]
    fn rejects_pem_without_a_private_key() {
        let params_only = SK_DPAUTH_NIST
            .split("-----BEGIN EC PRIVATE KEY")
            .next()
            .unwrap();
        assert_eq!(
            SigningKey::from_pem(params_only).unwrap_err(),
            EcdsaError::NoPrivateKey
        );
        assert_eq!(
            SigningKey::from_pem("").unwrap_err(),
            EcdsaError::NoPrivateKey
        );
    }

    #[test]
    fn rejects_ec_parameters_that_contradict_the_key() {
        let brp_params = SK_DPAUTH_BRP
            .split("-----BEGIN EC PRIVATE KEY")
            .next()
            .unwrap();
        let nist_key = &SK_DPAUTH_NIST[SK_DPAUTH_NIST.find("-----BEGIN EC PRIVATE KEY").unwrap()..];
        let mixed = format!("{brp_params}{nist_key}");
        assert_eq!(
            SigningKey::from_pem(&mixed).unwrap_err(),
            EcdsaError::CurveConflict {
                params: Curve::BrainpoolP256r1,
                key: Curve::NistP256
            }
        );
    }

    #[test]
    fn rejects_scalars_out_of_range() {
        assert!(SigningKey::from_scalar(Curve::NistP256, &[0; 32]).is_err());
        assert!(SigningKey::from_scalar(Curve::BrainpoolP256r1, &[0xFF; 32]).is_err());
        assert!(SigningKey::from_scalar(Curve::NistP256, &[1; 31]).is_err());
    }

    #[test]
    fn debug_output_hides_private_keys() {
        let key = SigningKey::from_pem(SK_DPAUTH_NIST).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(NIST P-256)");
    }

    #[test]
    fn certificate_parts_are_the_exact_input_bytes() {
        let parts = CertificateParts::parse(CERT_DPAUTH_NIST).unwrap();
        // The TBSCertificate starts right after the outer SEQUENCE header (30 82 LL LL).
        assert_eq!(parts.tbs, &CERT_DPAUTH_NIST[4..4 + parts.tbs.len()]);
        assert_eq!(parts.spki[0], 0x30);
        assert_eq!(parts.signature[0], 0x30);
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = CertificateParts::parse(&bytes);
            let _ = VerifyingKey::from_spki_der(&bytes);
            let _ = SigningKey::from_sec1_der(&bytes, Some(Curve::NistP256));
            let _ = SigningKey::from_pkcs8_der(&bytes);
            for curve in Curve::ALL {
                let _ = der_to_raw(curve, &bytes);
                let _ = VerifyingKey::from_uncompressed(curve, &bytes);
            }
        }

        #[test]
        fn raw_and_der_convert_both_ways(r in 1u8..=0x7F, s in any::<[u8; 32]>(), lead in 0usize..32) {
            // r with `lead` leading zero bytes exercises DER's minimal INTEGER encoding.
            let mut raw = [0u8; 64];
            raw[lead] = r;
            raw[32..].copy_from_slice(&s);
            raw[32] &= 0x7F;
            prop_assume!(raw[32..].iter().any(|b| *b != 0));
            for curve in Curve::ALL {
                let der = raw_to_der(curve, &raw).unwrap();
                prop_assert_eq!(der_to_raw(curve, &der).unwrap(), raw);
            }
        }
    }
}
