//! ECDSA key pairs for the RSP test PKI: generation, signing (ECDSA with SHA-256, DER
//! signature as X.509 wants it, RFC 5758 §3.2), SubjectPublicKeyInfo (RFC 5480 §2) and SEC1
//! private key files (SEC 1 v2 §C.4 `ECPrivateKey`, PEM label "EC PRIVATE KEY" as in the GSMA
//! SGP.26 key files, preceded by an "EC PARAMETERS" block like those files).
//!
//! SGP.22 v2.5 certificates use NIST P-256 or brainpoolP256r1 (the two SGP.26 sets); both are 256-bit curves whose
//! private scalar is 32 bytes and whose uncompressed point is 65 bytes.

use der::asn1::{Any, BitString, ObjectIdentifier};
use der::pem::LineEnding;
use der::{Decode, Encode};
use p256::ecdsa::signature::Signer;
use rand_core::OsRng;
use sec1::{EcParameters, EcPrivateKey};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::{Curve, PkiError};

/// RFC 5480 §2.1.1: id-ecPublicKey.
pub const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// RFC 5480 §2.1.1.1: secp256r1 (NIST P-256, "prime256v1").
pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// RFC 5639 §4.1: brainpoolP256r1.
pub const BRAINPOOL_P256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.7");
/// RFC 5758 §3.2: ecdsa-with-SHA256 (parameters absent).
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// PEM label of a SEC1 private key (RFC 7468 has none; this is OpenSSL's, used by SGP.26).
pub const SEC1_PEM_LABEL: &str = "EC PRIVATE KEY";
/// PEM label of the named-curve block OpenSSL's `ecparam -genkey` writes first.
pub const EC_PARAMETERS_PEM_LABEL: &str = "EC PARAMETERS";
/// RFC 7468 §13: SubjectPublicKeyInfo.
pub const PUBLIC_KEY_PEM_LABEL: &str = "PUBLIC KEY";
/// Both supported curves have 32-byte private scalars.
pub const SCALAR_LEN: usize = 32;

impl Curve {
    /// The namedCurve OID (RFC 5480 / RFC 5639).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::Nist => SECP256R1,
            Curve::Brainpool => BRAINPOOL_P256R1,
        }
    }

    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        [Curve::Nist, Curve::Brainpool]
            .into_iter()
            .find(|c| c.oid() == oid)
    }
}

/// A private key of one of the SGP.22 curves.
#[derive(Clone)]
pub enum KeyPair {
    /// NIST P-256.
    Nist(p256::ecdsa::SigningKey),
    /// brainpoolP256r1.
    Brainpool(bp::SigningKey),
}

impl std::fmt::Debug for KeyPair {
    // Never print the private scalar.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyPair({:?}, pub {})",
            self.curve(),
            hex::encode(self.public_point())
        )
    }
}

impl KeyPair {
    /// A fresh random key (operating-system RNG).
    pub fn generate(curve: Curve) -> Result<Self, PkiError> {
        match curve {
            Curve::Nist => Ok(KeyPair::Nist(p256::ecdsa::SigningKey::random(&mut OsRng))),
            Curve::Brainpool => Ok(KeyPair::Brainpool(bp::SigningKey::generate()?)),
        }
    }

    /// The key whose private scalar is `scalar` (32 bytes, big-endian).
    pub fn from_scalar(curve: Curve, scalar: &[u8]) -> Result<Self, PkiError> {
        match curve {
            Curve::Nist => p256::ecdsa::SigningKey::from_slice(scalar)
                .map(KeyPair::Nist)
                .map_err(|_| PkiError::BadKey {
                    curve,
                    reason: format!(
                        "private scalar of {} bytes is not a valid P-256 key",
                        scalar.len()
                    ),
                }),
            Curve::Brainpool => Ok(KeyPair::Brainpool(bp::SigningKey::from_scalar(scalar)?)),
        }
    }

    /// Which curve.
    pub fn curve(&self) -> Curve {
        match self {
            KeyPair::Nist(_) => Curve::Nist,
            KeyPair::Brainpool(_) => Curve::Brainpool,
        }
    }

    /// The private scalar, 32 bytes big-endian.
    pub fn scalar(&self) -> Vec<u8> {
        match self {
            KeyPair::Nist(k) => k.to_bytes().to_vec(),
            KeyPair::Brainpool(k) => k.scalar(),
        }
    }

    /// The public key as an uncompressed SEC1 point `04 ‖ X ‖ Y` (65 bytes).
    pub fn public_point(&self) -> Vec<u8> {
        match self {
            KeyPair::Nist(k) => k
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            KeyPair::Brainpool(k) => k.public_point(),
        }
    }

    /// ECDSA with SHA-256 over `message`, DER-encoded `Ecdsa-Sig-Value` (RFC 5758 §3.2).
    pub fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        match self {
            KeyPair::Nist(k) => {
                let signature: p256::ecdsa::Signature = k.sign(message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            KeyPair::Brainpool(k) => k.sign_der(message),
        }
    }

    /// The RFC 5480 SubjectPublicKeyInfo (id-ecPublicKey with the namedCurve parameter).
    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
        Ok(SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&self.curve().oid())?),
            },
            subject_public_key: BitString::from_bytes(&self.public_point())?,
        })
    }

    /// The private key as SGP.26 writes it: an "EC PARAMETERS" PEM block (namedCurve OID)
    /// followed by an "EC PRIVATE KEY" block (SEC1 `ECPrivateKey` with parameters and
    /// public key).
    pub fn to_sec1_pem(&self) -> Result<String, PkiError> {
        let scalar = self.scalar();
        let point = self.public_point();
        let params = EcParameters::NamedCurve(self.curve().oid());
        let key = EcPrivateKey {
            private_key: &scalar,
            parameters: Some(params),
            public_key: Some(&point),
        };
        let params_pem =
            der::pem::encode_string(EC_PARAMETERS_PEM_LABEL, LineEnding::LF, &params.to_der()?)?;
        let key_pem = der::pem::encode_string(SEC1_PEM_LABEL, LineEnding::LF, &key.to_der()?)?;
        Ok(format!("{params_pem}{key_pem}"))
    }

    /// The public key as a "PUBLIC KEY" (SubjectPublicKeyInfo) PEM block, like SGP.26 PK_ files.
    pub fn public_key_pem(&self) -> Result<String, PkiError> {
        Ok(der::pem::encode_string(
            PUBLIC_KEY_PEM_LABEL,
            LineEnding::LF,
            &self.spki()?.to_der()?,
        )?)
    }

    /// Reads a SEC1 private key PEM file (possibly with an "EC PARAMETERS" block before it, as
    /// in SGP.26). The curve comes from the key's own parameters, else from `expected`.
    pub fn from_sec1_pem(text: &str, expected: Curve) -> Result<Self, PkiError> {
        let block = pem_block(text, SEC1_PEM_LABEL).ok_or_else(|| PkiError::BadKey {
            curve: expected,
            reason: format!("no -----BEGIN {SEC1_PEM_LABEL}----- block found"),
        })?;
        let (_, der_bytes) = der::pem::decode_vec(block.as_bytes())?;
        let key = EcPrivateKey::from_der(&der_bytes)?;
        let curve = match key.parameters.and_then(|p| p.named_curve()) {
            Some(oid) => Curve::from_oid(oid).ok_or_else(|| PkiError::BadKey {
                curve: expected,
                reason: format!("unsupported named curve {oid}"),
            })?,
            None => expected,
        };
        if curve != expected {
            return Err(PkiError::BadKey {
                curve: expected,
                reason: format!("key file is for {curve:?}, expected {expected:?}"),
            });
        }
        let pair = Self::from_scalar(curve, key.private_key)?;
        if let Some(stored) = key.public_key {
            if stored != pair.public_point().as_slice() {
                return Err(PkiError::BadKey {
                    curve,
                    reason: "stored public key does not match the private scalar".into(),
                });
            }
        }
        Ok(pair)
    }
}

/// Cuts the PEM block with `label` out of a text holding several blocks.
pub(crate) fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

/// brainpoolP256r1 ECDSA through RustCrypto `bp256` 0.14 (its arithmetic and ECDSA with
/// RFC 6979 nonces; `ecdsa` 0.17, a different major version from the P-256 stack, which is
/// why this backend is kept apart behind [`KeyPair`]).
pub mod bp {
    use bp256::r1::BrainpoolP256r1;
    use ecdsa_bp256::signature::Signer;
    use rand_core::{OsRng, RngCore};

    use super::{Curve, PkiError, SCALAR_LEN};

    /// Random scalars are drawn by rejection: about a third of 32-byte strings exceed the
    /// brainpoolP256r1 group order (it starts A9FB…), so allow many draws before giving up.
    const MAX_DRAWS: usize = 128;

    /// A brainpoolP256r1 private key.
    #[derive(Clone)]
    pub struct SigningKey(ecdsa_bp256::SigningKey<BrainpoolP256r1>);

    impl std::fmt::Debug for SigningKey {
        // Never print the private scalar.
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "bp256::SigningKey(pub {})",
                hex::encode(self.public_point())
            )
        }
    }

    fn bad(reason: impl Into<String>) -> PkiError {
        PkiError::BadKey {
            curve: Curve::Brainpool,
            reason: reason.into(),
        }
    }

    impl SigningKey {
        pub(crate) fn generate() -> Result<Self, PkiError> {
            // Rejection sampling from the OS RNG keeps the key uniform in [1, n-1] without a
            // second rand_core version in this crate.
            let mut bytes = [0u8; SCALAR_LEN];
            for _ in 0..MAX_DRAWS {
                OsRng.fill_bytes(&mut bytes);
                if let Ok(key) = ecdsa_bp256::SigningKey::from_slice(&bytes) {
                    return Ok(SigningKey(key));
                }
            }
            Err(bad("no valid scalar drawn from the OS RNG"))
        }

        pub(crate) fn from_scalar(scalar: &[u8]) -> Result<Self, PkiError> {
            ecdsa_bp256::SigningKey::from_slice(scalar)
                .map(SigningKey)
                .map_err(|_| {
                    bad(format!(
                        "private scalar of {} bytes is not a valid brainpoolP256r1 key",
                        scalar.len()
                    ))
                })
        }

        pub(crate) fn scalar(&self) -> Vec<u8> {
            self.0.to_bytes().to_vec()
        }

        pub(crate) fn public_point(&self) -> Vec<u8> {
            self.0
                .verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec()
        }

        pub(crate) fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
            let signature: ecdsa_bp256::Signature<BrainpoolP256r1> = self
                .0
                .try_sign(message)
                .map_err(|e| bad(format!("signing failed: {e}")))?;
            Ok(signature.to_der().as_bytes().to_vec())
        }
    }
}
