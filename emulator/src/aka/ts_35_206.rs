//! MILENAGE, the example algorithm set for f1, f1*, f2, f3, f4, f5 and f5* (3GPP TS 35.206
//! §4), checked against the design conformance test data of TS 35.208 (sets 1–6 in
//! `vectors/milenage/`).
//!
//! The arithmetic is the `milenage` crate's (0.3, RustCrypto `aes` underneath); it reproduces
//! OPc, f1, f1*, f2, f3, f4, f5 and f5* of all six TS 35.208 sets (tests below), so nothing is
//! written by hand here except the thin, stateless wrapper: the crate's type caches its last
//! outputs and takes `&mut self`, which this module hides.

use milenage::Milenage;

use super::{F2345, RAND_LEN, SQN_LEN};

/// OPc = OP ⊕ E\[OP\]K (TS 35.206 §4.1).
pub fn opc_from_op(k: &[u8; 16], op: &[u8; 16]) -> [u8; 16] {
    *Milenage::new_with_op(*k, *op).opc()
}

/// f1: MAC-A, the first 64 bits of OUT1 (TS 35.206 §4.1).
pub fn f1(
    k: &[u8; 16],
    opc: &[u8; 16],
    rand: &[u8; RAND_LEN],
    sqn: &[u8; SQN_LEN],
    amf: &[u8; 2],
) -> [u8; 8] {
    Milenage::new_with_opc(*k, *opc).f1(rand, sqn, amf)
}

/// f1*: MAC-S, the last 64 bits of OUT1 (TS 35.206 §4.1).
pub fn f1_star(
    k: &[u8; 16],
    opc: &[u8; 16],
    rand: &[u8; RAND_LEN],
    sqn: &[u8; SQN_LEN],
    amf: &[u8; 2],
) -> [u8; 8] {
    Milenage::new_with_opc(*k, *opc).f1star(rand, sqn, amf)
}

/// f2 (RES, 64 bits), f3 (CK), f4 (IK) and f5 (AK) from OUT2…OUT4 (TS 35.206 §4.1).
pub fn f2345(k: &[u8; 16], opc: &[u8; 16], rand: &[u8; RAND_LEN]) -> F2345 {
    let (res, ck, ik, ak) = Milenage::new_with_opc(*k, *opc).f2345(rand);
    F2345 {
        res: res.to_vec(),
        ck,
        ik,
        ak,
    }
}

/// f5*: the resynchronisation anonymity key from OUT5 (TS 35.206 §4.1).
pub fn f5_star(k: &[u8; 16], opc: &[u8; 16], rand: &[u8; RAND_LEN]) -> [u8; SQN_LEN] {
    Milenage::new_with_opc(*k, *opc).f5star(rand)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rstest::rstest;

    /// One row of `vectors/milenage/ts35208_sets1-6.csv`.
    #[derive(Debug)]
    pub(crate) struct Ts35208Set {
        pub k: [u8; 16],
        pub rand: [u8; 16],
        pub sqn: [u8; 6],
        pub amf: [u8; 2],
        pub op: [u8; 16],
        pub opc: [u8; 16],
        pub f1: [u8; 8],
        pub f1_star: [u8; 8],
        pub f2: [u8; 8],
        pub f5: [u8; 6],
        pub f3: [u8; 16],
        pub f4: [u8; 16],
        pub f5_star: [u8; 6],
    }

    fn arr<const N: usize>(hex_text: &str) -> [u8; N] {
        hex::decode(hex_text).unwrap().try_into().unwrap()
    }

    /// Reads set `n` (1–6) of TS 35.208 from the vectors directory at test time.
    pub(crate) fn ts35208_set(n: u32) -> Ts35208Set {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vectors/milenage/ts35208_sets1-6.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(
            header[..14],
            [
                "set", "K", "RAND", "SQN", "AMF", "OP", "OPc", "f1", "f1star", "f2", "f5", "f3",
                "f4", "f5star"
            ]
        );
        let row = lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[0] == n.to_string())
            .unwrap();
        Ts35208Set {
            k: arr(row[1]),
            rand: arr(row[2]),
            sqn: arr(row[3]),
            amf: arr(row[4]),
            op: arr(row[5]),
            opc: arr(row[6]),
            f1: arr(row[7]),
            f1_star: arr(row[8]),
            f2: arr(row[9]),
            f5: arr(row[10]),
            f3: arr(row[11]),
            f4: arr(row[12]),
            f5_star: arr(row[13]),
        }
    }

    #[rstest]
    fn reproduces_ts_35_208_test_set(#[values(1, 2, 3, 4, 5, 6)] set: u32) {
        let v = ts35208_set(set);
        assert_eq!(opc_from_op(&v.k, &v.op), v.opc, "OPc, set {set}");
        assert_eq!(
            f1(&v.k, &v.opc, &v.rand, &v.sqn, &v.amf),
            v.f1,
            "f1, set {set}"
        );
        assert_eq!(
            f1_star(&v.k, &v.opc, &v.rand, &v.sqn, &v.amf),
            v.f1_star,
            "f1*, set {set}"
        );
        let out = f2345(&v.k, &v.opc, &v.rand);
        assert_eq!(out.res, v.f2, "f2, set {set}");
        assert_eq!(out.ck, v.f3, "f3, set {set}");
        assert_eq!(out.ik, v.f4, "f4, set {set}");
        assert_eq!(out.ak, v.f5, "f5, set {set}");
        assert_eq!(f5_star(&v.k, &v.opc, &v.rand), v.f5_star, "f5*, set {set}");
    }
}
