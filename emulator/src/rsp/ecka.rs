//! Elliptic-curve key agreement of the profile download (SGP.22 v2.5 §2.6.5.1, §3.1.3 and
//! Annex G; ECKA-DH as BSI TR-03111 §4.3.1 defines it): the eUICC (in PrepareDownload) and the
//! SM-DP+ (in the bound profile package) each make a one-time key pair on the curve of the
//! DPpb certificate; the shared secret ShS is the x-coordinate of `otSK · otPK(peer)`.
//!
//! Arithmetic is RustCrypto's (`p256` ECDH; `bp256` point multiplication), except for a key
//! pair that is made and used at once ([`agree_once`], the SM-DP+'s side): on P-256 that is
//! ring's `agreement` by default (see [`crate::rsp::ecdsa::P256Backend`]). The eUICC keeps its
//! key pair from PrepareDownload until the package arrives, which ring's one-time keys cannot
//! do, so [`OneTimeKeyPair`] stays RustCrypto's.

use super::ecdsa::{p256_backend, P256Backend};
use super::{Curve, FIELD_LEN, UNCOMPRESSED_POINT_LEN};
use bp256::r1::BrainpoolP256r1;
use rand::{CryptoRng, RngCore};
use thiserror::Error;

/// First byte of an uncompressed SEC 1 point.
const UNCOMPRESSED_POINT_PREFIX: u8 = 0x04;
/// How many random scalars to draw before giving up on a broken RNG (each draw is below the
/// brainpoolP256r1 order with probability ≈ 0.66, so 128 failures in a row do not happen).
const MAX_SCALAR_DRAWS: usize = 128;

/// Why a key agreement step failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EckaError {
    #[error("ECKA: peer key is not an uncompressed {curve} point on the curve (04‖X‖Y, 65 bytes)")]
    BadPeerKey { curve: Curve },
    #[error("ECKA: private scalar is not in [1, n-1] for {curve}")]
    BadScalar { curve: Curve },
    #[error("ECKA: the random source gave no usable scalar for {curve}")]
    RandomSourceExhausted { curve: Curve },
}

/// The ECKA shared secret ShS: the 32-byte x-coordinate of the ECDH point.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret([u8; FIELD_LEN]);

impl SharedSecret {
    pub fn as_bytes(&self) -> &[u8; FIELD_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// A one-time key pair (otSK/otPK) for one download session.
#[derive(Clone)]
pub struct OneTimeKeyPair {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    /// With its public point, computed once (it is a scalar multiplication).
    P256(p256::SecretKey, [u8; UNCOMPRESSED_POINT_LEN]),
    Bp256(bp256::r1::SecretKey),
}

fn p256_pair(sk: p256::SecretKey) -> Inner {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    let mut point = [0u8; UNCOMPRESSED_POINT_LEN];
    point
        .iter_mut()
        .zip(sk.public_key().to_encoded_point(false).as_bytes())
        .for_each(|(d, s)| *d = *s);
    Inner::P256(sk, point)
}

impl std::fmt::Debug for OneTimeKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OneTimeKeyPair({}, {})",
            self.curve(),
            hex::encode_upper(self.public_key())
        )
    }
}

impl OneTimeKeyPair {
    /// Draws a fresh key pair on `curve`.
    pub fn generate<R: RngCore + CryptoRng>(curve: Curve, rng: &mut R) -> Result<Self, EckaError> {
        match curve {
            Curve::NistP256 => Ok(Self {
                inner: p256_pair(p256::SecretKey::random(rng)),
            }),
            // bp256 draws from the rand_core 0.10 traits; ours are 0.6, so draw bytes here and
            // keep those that are a valid scalar (rejection sampling, FIPS 186-5 §A.3.2).
            Curve::BrainpoolP256r1 => {
                for _ in 0..MAX_SCALAR_DRAWS {
                    let mut d = [0u8; FIELD_LEN];
                    rng.fill_bytes(&mut d);
                    if let Ok(sk) = bp256::r1::SecretKey::from_slice(&d) {
                        return Ok(Self {
                            inner: Inner::Bp256(sk),
                        });
                    }
                }
                Err(EckaError::RandomSourceExhausted { curve })
            }
        }
    }

    /// A key pair from a known 32-byte big-endian scalar (test vectors, replays).
    pub fn from_scalar(curve: Curve, d: &[u8]) -> Result<Self, EckaError> {
        let bad = EckaError::BadScalar { curve };
        if d.len() != FIELD_LEN {
            return Err(bad);
        }
        let inner = match curve {
            Curve::NistP256 => p256_pair(p256::SecretKey::from_slice(d).map_err(|_| bad)?),
            Curve::BrainpoolP256r1 => {
                Inner::Bp256(bp256::r1::SecretKey::from_slice(d).map_err(|_| bad)?)
            }
        };
        Ok(Self { inner })
    }

    pub fn curve(&self) -> Curve {
        match self.inner {
            Inner::P256(..) => Curve::NistP256,
            Inner::Bp256(_) => Curve::BrainpoolP256r1,
        }
    }

    /// otPK as an uncompressed point `04‖X‖Y` (what goes into `5F49`).
    pub fn public_key(&self) -> [u8; UNCOMPRESSED_POINT_LEN] {
        let mut out = [0u8; UNCOMPRESSED_POINT_LEN];
        match &self.inner {
            Inner::P256(_, point) => out = *point,
            Inner::Bp256(sk) => {
                let point = sk.public_key().to_sec1_bytes();
                out.iter_mut().zip(point.iter()).for_each(|(d, s)| *d = *s);
            }
        }
        out
    }

    /// ShS = x-coordinate of `otSK · peer` (BSI TR-03111 §4.3.1 ECKA-DH); `peer` must be an
    /// uncompressed point on this key pair's curve (not the identity).
    pub fn shared_secret(&self, peer: &[u8]) -> Result<SharedSecret, EckaError> {
        let bad = EckaError::BadPeerKey {
            curve: self.curve(),
        };
        if peer.len() != UNCOMPRESSED_POINT_LEN || peer.first() != Some(&UNCOMPRESSED_POINT_PREFIX)
        {
            return Err(bad);
        }
        let mut out = [0u8; FIELD_LEN];
        match &self.inner {
            Inner::P256(sk, _) => {
                let pk = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| bad)?;
                let shared = p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
                out.iter_mut()
                    .zip(shared.raw_secret_bytes())
                    .for_each(|(d, s)| *d = *s);
            }
            Inner::Bp256(sk) => {
                use bp256::elliptic_curve::point::AffineCoordinates as _;
                let pk = bp256::elliptic_curve::PublicKey::<BrainpoolP256r1>::from_sec1_bytes(peer)
                    .map_err(|_| bad)?;
                // ECDH by hand: bp256 does not enable elliptic-curve's `ecdh` module. The
                // product is never the identity (prime order group, non-zero scalar, valid
                // point), and its affine x is ShS.
                let product = (pk.to_projective() * *sk.to_nonzero_scalar()).to_affine();
                out.iter_mut().zip(product.x()).for_each(|(d, s)| *d = s);
            }
        }
        Ok(SharedSecret(out))
    }
}

/// A one-time key pair on `curve` made and used at once with `peer` (the SM-DP+ in the bound
/// profile package, SGP.22 §3.1.3.2): returns otPK (`04‖X‖Y`) and ShS. Uses the process's
/// [`p256_backend`].
pub fn agree_once<R: RngCore + CryptoRng>(
    curve: Curve,
    peer: &[u8],
    rng: &mut R,
) -> Result<([u8; UNCOMPRESSED_POINT_LEN], SharedSecret), EckaError> {
    agree_once_with(p256_backend(), curve, peer, rng)
}

/// [`agree_once`] with `backend` on P-256. With ring the private key comes from the operating
/// system's random source, not `rng` (ring makes one-time keys only that way, and they cannot
/// be used twice or copied).
pub fn agree_once_with<R: RngCore + CryptoRng>(
    backend: P256Backend,
    curve: Curve,
    peer: &[u8],
    rng: &mut R,
) -> Result<([u8; UNCOMPRESSED_POINT_LEN], SharedSecret), EckaError> {
    if curve == Curve::NistP256 && backend == P256Backend::Ring {
        return ring_agree_once(peer);
    }
    let key = OneTimeKeyPair::generate(curve, rng)?;
    let shs = key.shared_secret(peer)?;
    Ok((key.public_key(), shs))
}

fn ring_agree_once(peer: &[u8]) -> Result<([u8; UNCOMPRESSED_POINT_LEN], SharedSecret), EckaError> {
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
    let curve = Curve::NistP256;
    let bad = EckaError::BadPeerKey { curve };
    if peer.len() != UNCOMPRESSED_POINT_LEN || peer.first() != Some(&UNCOMPRESSED_POINT_PREFIX) {
        return Err(bad);
    }
    let rng = ring::rand::SystemRandom::new();
    let sk = EphemeralPrivateKey::generate(&ECDH_P256, &rng)
        .map_err(|_| EckaError::RandomSourceExhausted { curve })?;
    let mut public = [0u8; UNCOMPRESSED_POINT_LEN];
    let pk = sk
        .compute_public_key()
        .map_err(|_| EckaError::RandomSourceExhausted { curve })?;
    if pk.as_ref().len() != UNCOMPRESSED_POINT_LEN {
        return Err(EckaError::RandomSourceExhausted { curve });
    }
    public.copy_from_slice(pk.as_ref());
    // ring's ECDH output for P-256 is the x-coordinate, as ECKA-DH defines ShS.
    let shs = agree_ephemeral(sk, &UnparsedPublicKey::new(&ECDH_P256, peer), |x| {
        let mut out = [0u8; FIELD_LEN];
        if x.len() == FIELD_LEN {
            out.copy_from_slice(x);
            Some(SharedSecret(out))
        } else {
            None
        }
    })
    .ok()
    .flatten()
    .ok_or(bad)?;
    Ok((public, shs))
}

#[cfg(test)]
mod tests {
    use super::super::kdf::derive_session_keys;
    use super::super::vectors::{self, hex};
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn matches_pyca_ecdh_and_session_key_vectors() {
        let v = vectors::load("session_keys");
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 6);
        for case in cases {
            let curve = vectors::curve(&case["curve"]);
            let euicc = OneTimeKeyPair::from_scalar(curve, &hex(&case["euicc_ot_sk"])).unwrap();
            let smdp = OneTimeKeyPair::from_scalar(curve, &hex(&case["smdp_ot_sk"])).unwrap();
            assert_eq!(euicc.public_key().to_vec(), hex(&case["euicc_ot_pk"]));
            assert_eq!(smdp.public_key().to_vec(), hex(&case["smdp_ot_pk"]));
            let shs = euicc.shared_secret(&smdp.public_key()).unwrap();
            assert_eq!(shs.as_bytes().to_vec(), hex(&case["shs"]));
            assert_eq!(smdp.shared_secret(&euicc.public_key()).unwrap(), shs);
            let eid: [u8; 16] = hex(&case["eid"]).try_into().unwrap();
            let keys =
                derive_session_keys(shs.as_bytes(), 0x88, 0x10, &hex(&case["host_id"]), &eid)
                    .unwrap();
            assert_eq!(keys.initial_mcv.to_vec(), hex(&case["initial_mcv"]));
            assert_eq!(keys.s_enc.to_vec(), hex(&case["s_enc"]));
            assert_eq!(keys.s_mac.to_vec(), hex(&case["s_mac"]));
        }
    }

    #[test]
    fn generated_key_pairs_agree_on_every_curve() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for curve in Curve::ALL {
            let a = OneTimeKeyPair::generate(curve, &mut rng).unwrap();
            let b = OneTimeKeyPair::generate(curve, &mut rng).unwrap();
            assert_eq!(a.curve(), curve);
            assert_ne!(a.public_key(), b.public_key());
            assert_eq!(
                a.shared_secret(&b.public_key()).unwrap(),
                b.shared_secret(&a.public_key()).unwrap()
            );
        }
    }

    #[test]
    fn rejects_a_peer_key_from_the_other_curve() {
        let nist = OneTimeKeyPair::from_scalar(Curve::NistP256, &[5; 32]).unwrap();
        let brp = OneTimeKeyPair::from_scalar(Curve::BrainpoolP256r1, &[5; 32]).unwrap();
        assert_eq!(
            nist.shared_secret(&brp.public_key()),
            Err(EckaError::BadPeerKey {
                curve: Curve::NistP256
            })
        );
        assert_eq!(
            brp.shared_secret(&nist.public_key()),
            Err(EckaError::BadPeerKey {
                curve: Curve::BrainpoolP256r1
            })
        );
    }

    #[test]
    fn rejects_compressed_or_short_peer_keys() {
        let a = OneTimeKeyPair::from_scalar(Curve::NistP256, &[5; 32]).unwrap();
        let b = OneTimeKeyPair::from_scalar(Curve::NistP256, &[6; 32])
            .unwrap()
            .public_key();
        let bad = Err(EckaError::BadPeerKey {
            curve: Curve::NistP256,
        });
        let mut compressed = b[..33].to_vec();
        compressed[0] = 0x02 | (b[64] & 1);
        assert_eq!(a.shared_secret(&compressed), bad);
        assert_eq!(a.shared_secret(&b[..64]), bad);
    }

    #[test]
    fn rejects_scalars_of_zero_or_wrong_length() {
        assert!(OneTimeKeyPair::from_scalar(Curve::NistP256, &[0; 32]).is_err());
        assert!(OneTimeKeyPair::from_scalar(Curve::BrainpoolP256r1, &[0xFF; 32]).is_err());
        assert!(OneTimeKeyPair::from_scalar(Curve::NistP256, &[1; 24]).is_err());
    }

    proptest! {
        #[test]
        fn shared_secret_never_panics_on_arbitrary_peer_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            for curve in Curve::ALL {
                let a = OneTimeKeyPair::from_scalar(curve, &[9; 32]).unwrap();
                let mut point = bytes.clone();
                if let Some(first) = point.first_mut() { *first = 0x04; }
                let _ = a.shared_secret(&point);
                let _ = a.shared_secret(&bytes);
            }
        }
    }

    #[rstest::rstest]
    fn a_one_time_agreement_gives_the_peer_the_same_secret(
        #[values(Curve::NistP256, Curve::BrainpoolP256r1)] curve: Curve,
        #[values(P256Backend::Ring, P256Backend::RustCrypto)] backend: P256Backend,
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let euicc = OneTimeKeyPair::generate(curve, &mut rng).unwrap();
        let (smdp_pk, shs) =
            agree_once_with(backend, curve, &euicc.public_key(), &mut rng).unwrap();
        assert_eq!(euicc.shared_secret(&smdp_pk).unwrap(), shs);
        let mut off_curve = euicc.public_key();
        off_curve[64] ^= 1;
        assert_eq!(
            agree_once_with(backend, curve, &off_curve, &mut rng),
            Err(EckaError::BadPeerKey { curve })
        );
        assert!(agree_once_with(backend, curve, &off_curve[..33], &mut rng).is_err());
    }
}
