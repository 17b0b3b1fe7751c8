//! Remote SIM Provisioning cryptography shared by the eUICC, the SM-DP+ and the LPA:
//! GSMA SGP.22 v2.5 §2.6 (security overview), §2.6.5 (ECKA and key derivation, Annex G),
//! §2.5 / §2.6.6 (bound profile package protection, "SCP03t", later renamed BSP), §5.5 (ES8+
//! data the SM-DP+ signs) and §5.7 (ES10b data the eUICC signs).
//!
//! One module per concern:
//! - [`ecdsa`]: ECDSA with SHA-256, raw `r‖s` signatures (BSI TR-03111) and X.509 DER, keys
//!   from PEM, public keys from certificates;
//! - [`ecka`]: one-time key pairs and the ECDH shared secret `ShS`;
//! - [`kdf`]: ANSI X9.63 KDF and the SGP.22 session keys;
//! - [`scp03t`]: segment protection of the bound profile package (writer and reader);
//! - [`download`]: small pieces of the download protocol (hashCc, the `BF23` signature input,
//!   `ReplaceSessionKeysRequest`).
//!
//! Pure logic: no I/O. Randomness comes in as a parameter.

pub mod download;
pub mod ecdsa;
pub mod ecka;
pub mod kdf;
pub mod scp03t;

pub use download::{hash_cc, InitialiseSecureChannel, ReplaceSessionKeys};
pub use ecdsa::{RawSignature, SigningKey, VerifyingKey};
pub use ecka::{OneTimeKeyPair, SharedSecret};
pub use kdf::{derive_session_keys, SessionKeys};
pub use scp03t::{BspReader, BspWriter};

/// DER value (without tag and length) of the object identifier of NIST P-256
/// (`prime256v1`, 1.2.840.10045.3.1.7, RFC 5480 §2.1.1.1).
pub const OID_NIST_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER value of the object identifier of brainpoolP256r1 (1.3.36.3.3.2.8.1.1.7, RFC 5639 §4.1).
pub const OID_BRAINPOOL_P256R1: &[u8] = &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07];
/// DER value of `id-ecPublicKey` (1.2.840.10045.2.1, RFC 5480 §2.1.1).
pub const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

/// Length of one coordinate or scalar on the 256-bit curves SGP.22 uses.
pub const FIELD_LEN: usize = 32;
/// Length of an uncompressed public key `04‖X‖Y` (SEC 1 v2 §2.3.3).
pub const UNCOMPRESSED_POINT_LEN: usize = 1 + 2 * FIELD_LEN;

/// The elliptic curves of SGP.22 v2.5 §2.6.5 (and SGP.26 test certificates): a key, a
/// certificate and a one-time key pair each live on exactly one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1), RustCrypto `p256`.
    NistP256,
    /// brainpoolP256r1, RustCrypto `bp256`.
    BrainpoolP256r1,
}

impl Curve {
    /// Every curve this module knows, in a fixed order (handy for tests and tables).
    pub const ALL: [Curve; 2] = [Curve::NistP256, Curve::BrainpoolP256r1];

    /// The DER value (no tag or length) of the curve's named-curve object identifier.
    pub const fn oid(self) -> &'static [u8] {
        match self {
            Curve::NistP256 => OID_NIST_P256,
            Curve::BrainpoolP256r1 => OID_BRAINPOOL_P256R1,
        }
    }

    /// The curve named by a DER object identifier value, if it is one of ours.
    pub fn from_oid(oid: &[u8]) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.oid() == oid)
    }
}

impl std::fmt::Display for Curve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Curve::NistP256 => "NIST P-256",
            Curve::BrainpoolP256r1 => "brainpoolP256r1",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_round_trip_through_their_oids() {
        for curve in Curve::ALL {
            assert_eq!(Curve::from_oid(curve.oid()), Some(curve));
        }
        assert_eq!(Curve::from_oid(OID_EC_PUBLIC_KEY), None);
    }
}
