//! UMTS/EPS/5G authentication and key agreement (AKA), shared by the card and the network.
//!
//! - [`ts_35_206`]: the MILENAGE example algorithm set (3GPP TS 35.206, f1…f5*).
//! - [`ts_34_108`]: the XOR test algorithm of test USIMs (3GPP TS 34.108 §8.1.2), used by
//!   the GSMA TS.48 generic test profiles (SAIP algorithmID 3, K `000102…0e0f`).
//! - [`ts_33_102`]: the AKA procedure itself (3GPP TS 33.102 §6.3, Annex C): sequence-number
//!   management on the USIM, AUTS, resynchronisation at the AuC, the GSM conversion functions
//!   c2/c3 (§6.8.1.2) and authentication-vector generation.
//! - [`ts_31_102`]: the data of the USIM AUTHENTICATE command and its answers (3GPP TS 31.102
//!   §7.1.2.1), and [`ts_31_102::execute`] which runs one on the card side.
//!
//! Everything here is a pure function of its inputs; the only state is [`SqnStore`], which the
//! card persists (it is serde-serialisable).

pub mod ts_31_102;
pub mod ts_33_102;
pub mod ts_34_108;
pub mod ts_35_206;

use serde::{Deserialize, Serialize};

pub use ts_33_102::{
    authenticate_3g, authenticate_gsm, c2, c3, generate_vector, resynchronise, AkaFailure,
    AkaSuccess, AuthVector, SqnStore, SqnStoreError,
};

/// RAND: the 128-bit random challenge (TS 33.102 §6.3.2).
pub const RAND_LEN: usize = 16;
/// AUTN = SQN ⊕ AK || AMF || MAC (TS 33.102 §6.3.2): 48 + 16 + 64 bits.
pub const AUTN_LEN: usize = 16;
/// AUTS = SQN_MS ⊕ AK || MAC-S (TS 33.102 §6.3.3): 48 + 64 bits.
pub const AUTS_LEN: usize = 14;
/// SQN, AK: 48 bits (TS 33.102 §6.3.2, §6.3.7).
pub const SQN_LEN: usize = 6;
/// Largest 48-bit sequence number.
pub const SQN_MAX: u64 = (1 << 48) - 1;

/// The USIM's persistent authentication state: its algorithm and keys, and the sequence
/// numbers it has accepted (TS 33.102 Annex C).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsimState {
    pub algorithm: AkaAlgorithm,
    pub sqn: SqnStore,
}

/// A subscriber's authentication algorithm and its secrets, as the USIM and the AuC hold them.
///
/// Keys serialise as hex strings so that card configurations stay readable
/// (`{"Milenage": {"k": "4652…", "opc": "cd63…"}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AkaAlgorithm {
    /// MILENAGE (TS 35.206) with the subscriber key K and the operator variant OPc. Use
    /// [`AkaAlgorithm::milenage_from_op`] when the operator gives OP instead of OPc.
    Milenage {
        #[serde(with = "hex_bytes")]
        k: [u8; 16],
        #[serde(with = "hex_bytes")]
        opc: [u8; 16],
    },
    /// The XOR test algorithm of TS 34.108 §8.1.2 with the subscriber key K.
    XorTest {
        #[serde(with = "hex_bytes")]
        k: [u8; 16],
    },
}

/// The outputs of f2, f3, f4 and f5 for one RAND (TS 33.102 §6.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct F2345 {
    /// RES/XRES: 8 bytes for MILENAGE, 16 for the XOR test algorithm.
    pub res: Vec<u8>,
    pub ck: [u8; 16],
    pub ik: [u8; 16],
    pub ak: [u8; SQN_LEN],
}

impl AkaAlgorithm {
    /// MILENAGE from K and OP: OPc = OP ⊕ E\[OP\]K (TS 35.206 §4.1).
    pub fn milenage_from_op(k: [u8; 16], op: [u8; 16]) -> Self {
        AkaAlgorithm::Milenage {
            k,
            opc: ts_35_206::opc_from_op(&k, &op),
        }
    }

    /// f1: the network authentication code MAC-A (and the USIM's XMAC-A).
    pub fn f1(&self, rand: &[u8; RAND_LEN], sqn: &[u8; SQN_LEN], amf: &[u8; 2]) -> [u8; 8] {
        match self {
            AkaAlgorithm::Milenage { k, opc } => ts_35_206::f1(k, opc, rand, sqn, amf),
            AkaAlgorithm::XorTest { k } => ts_34_108::f1(k, rand, sqn, amf),
        }
    }

    /// f1*: the resynchronisation authentication code MAC-S.
    pub fn f1_star(&self, rand: &[u8; RAND_LEN], sqn: &[u8; SQN_LEN], amf: &[u8; 2]) -> [u8; 8] {
        match self {
            AkaAlgorithm::Milenage { k, opc } => ts_35_206::f1_star(k, opc, rand, sqn, amf),
            AkaAlgorithm::XorTest { k } => ts_34_108::f1_star(k, rand, sqn, amf),
        }
    }

    /// f2, f3, f4, f5: RES, CK, IK and AK.
    pub fn f2345(&self, rand: &[u8; RAND_LEN]) -> F2345 {
        match self {
            AkaAlgorithm::Milenage { k, opc } => ts_35_206::f2345(k, opc, rand),
            AkaAlgorithm::XorTest { k } => ts_34_108::f2345(k, rand),
        }
    }

    /// f5*: the anonymity key AK used to conceal SQN_MS in AUTS.
    pub fn f5_star(&self, rand: &[u8; RAND_LEN]) -> [u8; SQN_LEN] {
        match self {
            AkaAlgorithm::Milenage { k, opc } => ts_35_206::f5_star(k, opc, rand),
            AkaAlgorithm::XorTest { k } => ts_34_108::f5_star(k, rand),
        }
    }
}

/// The 48-bit big-endian encoding of a sequence number (only the low 48 bits are kept).
pub fn sqn_to_bytes(sqn: u64) -> [u8; SQN_LEN] {
    let be = (sqn & SQN_MAX).to_be_bytes();
    let mut out = [0u8; SQN_LEN];
    out.copy_from_slice(&be[2..]);
    out
}

/// The number a 48-bit big-endian sequence number encodes.
pub fn sqn_from_bytes(bytes: &[u8; SQN_LEN]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// `a ⊕ b`, byte by byte.
pub(crate) fn xor<const N: usize>(a: &[u8; N], b: &[u8; N]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b.iter())) {
        *o = x ^ y;
    }
    out
}

/// Compares two MACs without an early exit: the time taken does not tell how many leading
/// bytes were right.
pub(crate) fn mac_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Serde for fixed-size byte arrays as hex strings.
mod hex_bytes {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text.trim()).map_err(D::Error::custom)?;
        let len = bytes.len();
        bytes
            .try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes of hex, got {len}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqn_bytes_round_trip_keeps_48_bits() {
        assert_eq!(
            sqn_to_bytes(0x0000_ff9b_b4d0_b607),
            [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07]
        );
        assert_eq!(
            sqn_from_bytes(&[0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07]),
            0xff9b_b4d0_b607
        );
        assert_eq!(sqn_to_bytes(0xabcd_0000_0000_0001), [0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn algorithm_serialises_keys_as_hex() {
        let alg = AkaAlgorithm::XorTest {
            k: *b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
        };
        let json = serde_json::to_string(&alg).unwrap();
        assert_eq!(
            json,
            r#"{"XorTest":{"k":"000102030405060708090a0b0c0d0e0f"}}"#
        );
        assert_eq!(serde_json::from_str::<AkaAlgorithm>(&json).unwrap(), alg);
    }

    #[test]
    fn rejects_key_of_wrong_length_in_configuration() {
        let err = serde_json::from_str::<AkaAlgorithm>(r#"{"XorTest":{"k":"0001"}}"#).unwrap_err();
        assert!(
            err.to_string().contains("expected 16 bytes of hex, got 2"),
            "{err}"
        );
    }

    #[test]
    fn mac_comparison_detects_any_difference() {
        let a = [1, 2, 3, 4, 5, 6, 7, 8];
        assert!(mac_eq(&a, &a));
        for i in 0..8 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!mac_eq(&a, &b));
        }
    }
}
