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
pub mod es10;
pub mod kdf;
pub mod scp03t;

pub use download::{hash_cc, signature_field, InitialiseSecureChannel, ReplaceSessionKeys};
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

/// The vectors of `vectors/rsp-crypto/` (see the README there for provenance).
#[cfg(test)]
pub(crate) mod vectors {
    use serde_json::Value;

    pub fn load(name: &str) -> Value {
        let text = match name {
            "session_keys" => include_str!("../../../vectors/rsp-crypto/session_keys.json"),
            "scp03t" => include_str!("../../../vectors/rsp-crypto/scp03t.json"),
            "ecdsa" => include_str!("../../../vectors/rsp-crypto/ecdsa.json"),
            "download" => include_str!("../../../vectors/rsp-crypto/download.json"),
            other => panic!("no vector file {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    /// The bytes of a hex string field.
    pub fn hex(v: &Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    pub fn curve(v: &Value) -> super::Curve {
        match v.as_str().unwrap() {
            "NistP256" => super::Curve::NistP256,
            "BrainpoolP256r1" => super::Curve::BrainpoolP256r1,
            other => panic!("unknown curve {other}"),
        }
    }

    pub const SK_DPAUTH_NIST: &str =
        include_str!("../../../vectors/rsp-crypto/sgp26/SK_S_SM_DPauth_ECDSA_NIST.pem");
    pub const SK_DPAUTH_BRP: &str =
        include_str!("../../../vectors/rsp-crypto/sgp26/SK_S_SM_DPauth_ECDSA_BRP.pem");
    pub const SK_DPAUTH_NIST_PKCS8: &str =
        include_str!("../../../vectors/rsp-crypto/sgp26/SK_S_SM_DPauth_ECDSA_NIST.pkcs8.pem");
    pub const SK_DPAUTH_BRP_PKCS8: &str =
        include_str!("../../../vectors/rsp-crypto/sgp26/SK_S_SM_DPauth_ECDSA_BRP.pkcs8.pem");
    pub const SK_DPPB_NIST: &str =
        include_str!("../../../vectors/rsp-crypto/sgp26/SK_S_SM_DPpb_ECDSA_NIST.pem");
    pub const CERT_DPAUTH_NIST: &[u8] =
        include_bytes!("../../../vectors/rsp-crypto/sgp26/CERT_S_SM_DPauth_ECDSA_NIST.der");
    pub const CERT_DPAUTH_BRP: &[u8] =
        include_bytes!("../../../vectors/rsp-crypto/sgp26/CERT_S_SM_DPauth_ECDSA_BRP.der");
    pub const CERT_DPPB_NIST: &[u8] =
        include_bytes!("../../../vectors/rsp-crypto/sgp26/CERT_S_SM_DPpb_ECDSA_NIST.der");
    pub const CERT_CI_NIST: &[u8] =
        include_bytes!("../../../vectors/rsp-crypto/sgp26/CERT_CI_ECDSA_NIST.der");
    pub const CERT_CI_BRP: &[u8] =
        include_bytes!("../../../vectors/rsp-crypto/sgp26/CERT_CI_ECDSA_BRP.der");
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

#[cfg(test)]
mod end_to_end {
    //! One download's cryptography as the SM-DP+ and the eUICC each do it, only through the
    //! public API: one-time keys, BF23 signed and checked, keys derived on both sides,
    //! segments written, replaced keys, segments read.
    use super::download::{build_initialise_secure_channel, InitialiseSecureChannel};
    use super::scp03t::{
        TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, TAG_LOAD_PROFILE_ELEMENTS, TAG_STORE_METADATA,
    };
    use super::vectors::{CERT_DPPB_NIST, SK_DPPB_NIST};
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn smdp_and_euicc_agree_on_a_whole_bound_profile_package() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        let eid = [
            0x89, 0x04, 0x90, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34,
        ];
        let tx = [0xA5; 16];
        let dp_pb = SigningKey::from_pem(SK_DPPB_NIST).unwrap();

        // eUICC, PrepareDownload: otPK.EUICC.ECKA on the DPpb curve.
        let euicc_ot = OneTimeKeyPair::generate(dp_pb.curve(), &mut rng).unwrap();
        // SM-DP+: its own one-time key, BF23, keys.
        let smdp_ot = OneTimeKeyPair::generate(dp_pb.curve(), &mut rng).unwrap();
        let bf23 = build_initialise_secure_channel(
            &tx,
            b"host",
            &smdp_ot.public_key(),
            &euicc_ot.public_key(),
            &dp_pb,
        );
        let smdp_shs = smdp_ot.shared_secret(&euicc_ot.public_key()).unwrap();
        let smdp_keys =
            derive_session_keys(smdp_shs.as_bytes(), 0x88, 0x10, b"host", &eid).unwrap();
        let ppk = SessionKeys {
            initial_mcv: [1; 16],
            s_enc: [2; 16],
            s_mac: [3; 16],
        };
        let upp = vec![0x5Au8; 2500];
        let mut writer = BspWriter::new(&smdp_keys);
        let a0 = writer
            .protect(TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, &[0xBF, 0x24, 0x00])
            .unwrap();
        let a1 = writer.protect(TAG_STORE_METADATA, b"metadata").unwrap();
        let rsk = ReplaceSessionKeys { keys: ppk.clone() }.to_der();
        let a2 = writer
            .protect(TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, &rsk)
            .unwrap();
        writer.replace_session_keys(&ppk);
        let a3 = writer
            .protect_chunked(TAG_LOAD_PROFILE_ELEMENTS, &upp)
            .unwrap();

        // eUICC: check BF23 with the DPpb certificate's key, derive, read.
        let isc = InitialiseSecureChannel::parse(&bf23).unwrap();
        let dp_pb_cert = VerifyingKey::from_certificate_der(CERT_DPPB_NIST).unwrap();
        dp_pb_cert
            .verify(&isc.signature_input(&euicc_ot.public_key()), isc.smdp_sign)
            .unwrap();
        let shs = euicc_ot.shared_secret(isc.smdp_otpk).unwrap();
        assert_eq!(shs, smdp_shs);
        let keys =
            derive_session_keys(shs.as_bytes(), isc.key_type, isc.key_len, isc.host_id, &eid)
                .unwrap();
        let mut reader = BspReader::new(&keys);
        assert_eq!(
            reader.open_expecting(0x87, &a0).unwrap(),
            [0xBF, 0x24, 0x00]
        );
        assert_eq!(reader.open_expecting(0x88, &a1).unwrap(), b"metadata");
        let replaced =
            ReplaceSessionKeys::from_der(&reader.open_expecting(0x87, &a2).unwrap()).unwrap();
        reader.replace_session_keys(&replaced.keys);
        let mut got = Vec::new();
        for segment in &a3 {
            got.extend(reader.open_expecting(0x86, segment).unwrap());
        }
        assert_eq!(got, upp);
        assert_eq!(a3.len(), 3);
    }
}
