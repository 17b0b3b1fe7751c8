//! The XOR test algorithm of test USIMs (3GPP TS 34.108 §8.1.2, Rel-15 text), the algorithm of the
//! GSMA TS.48 generic eUICC test profiles (SAIP `algorithmID` 3, "usim-test-algorithm").
//!
//! Written by hand: no crate implements it, and it is a handful of XORs and byte rotations.
//!
//! §8.1.2.1, bit 0 being the most significant bit of the first byte:
//! - XDOUT = K ⊕ RAND (128 bits);
//! - RES = f2(XDOUT, n) = XDOUT\[0..n-1\];
//! - CK = f3(XDOUT) = XDOUT rotated left by 8 bits; IK = f4(XDOUT) = rotated left by 16 bits;
//! - AK = f5(XDOUT) = XDOUT\[24..71\];
//! - CDOUT = SQN || AMF (64 bits); MAC = f1(XDOUT, CDOUT) = XDOUT\[0..63\] ⊕ CDOUT.
//!
//! §8.1.2.2: for resynchronisation f1* and f5* are the same functions as f1 and f5; MAC-S is
//! computed over SQN_MS || AMF* where AMF* is all zeros (the same dummy AMF TS 33.102 §6.3.3
//! prescribes for every algorithm).
//!
//! Not modelled: §8.1.2 describes a test USIM that takes SQN from each AUTN and starts
//! resynchronisation only when AMF carries a special "AMF RESYNCH" value. simlab's card applies
//! the normal SQN freshness check of TS 33.102 Annex C to every algorithm instead (see
//! [`super::ts_33_102`]), so a resynchronisation is provoked by replaying or by an old SQN.
//!
//! RES length n: §8.1.2.1 lets RES be any prefix of XDOUT. This implementation returns the
//! whole XDOUT (n = 128, [`XOR_RES_LEN`] = 16 bytes), as osmocom libosmogsm's `auth_xor.c` does
//! for the test cards it serves; the AuC side of this crate uses the same function, so card and
//! network always agree. TS.48 profiles carry no RES length for this algorithm (their
//! `algorithmOptions` is `02`). If a real test system expects 64-bit RES, this constant is the
//! one place to change.

use super::{F2345, RAND_LEN, SQN_LEN};

/// Length of RES produced by the XOR test algorithm (see module doc).
pub const XOR_RES_LEN: usize = 16;

/// XDOUT = K ⊕ RAND (TS 34.108 §8.1.2.1 step 1).
pub fn xdout(k: &[u8; 16], rand: &[u8; RAND_LEN]) -> [u8; 16] {
    super::xor(k, rand)
}

/// f1: MAC-A/XMAC-A = XDOUT\[0..63\] ⊕ (SQN || AMF) (TS 34.108 §8.1.2.1 steps 3–4).
pub fn f1(k: &[u8; 16], rand: &[u8; RAND_LEN], sqn: &[u8; SQN_LEN], amf: &[u8; 2]) -> [u8; 8] {
    let x = xdout(k, rand);
    let mut cdout = [0u8; 8];
    cdout[..SQN_LEN].copy_from_slice(sqn);
    cdout[SQN_LEN..].copy_from_slice(amf);
    let mut mac = [0u8; 8];
    for (m, (a, b)) in mac.iter_mut().zip(x.iter().zip(cdout.iter())) {
        *m = a ^ b;
    }
    mac
}

/// f1*: MAC-S, the same function as f1 (TS 34.108 §8.1.2.2). The caller passes AMF* = 0000
/// as TS 33.102 §6.3.3 requires; it is a parameter so that the function mirrors f1.
pub fn f1_star(k: &[u8; 16], rand: &[u8; RAND_LEN], sqn: &[u8; SQN_LEN], amf: &[u8; 2]) -> [u8; 8] {
    f1(k, rand, sqn, amf)
}

/// f2…f5 (TS 34.108 §8.1.2.1 step 2).
pub fn f2345(k: &[u8; 16], rand: &[u8; RAND_LEN]) -> F2345 {
    let x = xdout(k, rand);
    // CK = XDOUT[bits 8..127, 0..7], IK = XDOUT[bits 16..127, 0..15]: byte rotations.
    let mut ck = x;
    ck.rotate_left(1);
    let mut ik = x;
    ik.rotate_left(2);
    F2345 {
        res: x[..XOR_RES_LEN].to_vec(),
        ck,
        ik,
        ak: ak_of(&x),
    }
}

/// f5*: identical to f5 in the test algorithm (TS 34.108 §8.1.2.2).
pub fn f5_star(k: &[u8; 16], rand: &[u8; RAND_LEN]) -> [u8; SQN_LEN] {
    ak_of(&xdout(k, rand))
}

/// AK = XDOUT[bits 24..71], i.e. bytes 3..9.
fn ak_of(x: &[u8; 16]) -> [u8; SQN_LEN] {
    let mut ak = [0u8; SQN_LEN];
    ak.copy_from_slice(&x[3..3 + SQN_LEN]);
    ak
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s.replace(' ', "")).unwrap().try_into().unwrap()
    }

    // Known answers derived BY HAND from the TS 34.108 §8.1.2 definition (no published vector
    // exists): K = 000102…0e0f (the TS.48 test-profile key), RAND = 23553cbe…bf35 (the RAND of
    // TS 35.208 set 1, chosen only because it has no structure that makes c3 collapse to 0).
    //   XDOUT = K ⊕ RAND = 23543ebd 9232ae9a 2983ec46 a24ab13a
    const K: &str = "00010203 04050607 08090a0b 0c0d0e0f";
    const RAND: &str = "23553cbe 9637a89d 218ae64d ae47bf35";

    #[test]
    fn derives_res_ck_ik_ak_from_xdout_by_rotation() {
        let out = f2345(&h(K), &h(RAND));
        assert_eq!(hex::encode(&out.res), "23543ebd9232ae9a2983ec46a24ab13a");
        assert_eq!(out.ck, h::<16>("543ebd92 32ae9a29 83ec46a2 4ab13a23"));
        assert_eq!(out.ik, h::<16>("3ebd9232 ae9a2983 ec46a24a b13a2354"));
        assert_eq!(out.ak, h::<6>("bd9232ae9a29"));
    }

    #[test]
    fn computes_mac_as_xdout_xor_sqn_and_amf() {
        // CDOUT = 000000000020 || 8000; XDOUT[0..8] = 23543ebd9232ae9a.
        let mac = f1(&h(K), &h(RAND), &h("000000000020"), &h("8000"));
        assert_eq!(mac, h::<8>("23543ebd 92122e9a"));
    }

    #[test]
    fn resync_functions_equal_f1_and_f5() {
        let (k, rand) = (h(K), h(RAND));
        let sqn = h("000000000020");
        assert_eq!(
            f1_star(&k, &rand, &sqn, &[0, 0]),
            h::<8>("23543ebd 9212ae9a")
        );
        assert_eq!(f5_star(&k, &rand), f2345(&k, &rand).ak);
    }
}
