//! EAP-AKA key derivation and message authentication (RFC 4187 §7, §10.15).
//!
//! - MK = SHA1(Identity | IK | CK), the identity as the peer sent it (no NUL terminator).
//! - The pseudo-random function of FIPS 186-2 change notice 1 with `b = 160` and the SHA-1
//!   based G function (RFC 4186 Appendix B, used unchanged by RFC 4187 §7), keyed with MK,
//!   gives 160 bytes: K_encr (16) | K_aut (16) | MSK (64) | EMSK (64).
//! - AT_MAC = the first 16 bytes of HMAC-SHA1(K_aut, packet with the MAC value zeroed | extra).
//!
//! The PRF is written by hand (no crate implements this legacy generator); its G function is
//! the SHA-1 compression function from the `sha1` crate, applied once with the standard
//! initial value, without padding, as FIPS 186-2 Appendix 3.3 specifies.

use hmac::{Hmac, Mac as _};
use sha1::{Digest as _, Sha1};

/// SHA-1's initial chaining value (FIPS 180-2 §5.3.1), the `t` of FIPS 186-2 Appendix 3.3.
const SHA1_IV: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];
/// K_encr | K_aut | MSK | EMSK.
const KEY_MATERIAL_LEN: usize = 16 + 16 + 64 + 64;

/// The keys of one full authentication (RFC 4187 §7).
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub mk: [u8; 20],
    pub k_encr: [u8; 16],
    pub k_aut: [u8; 16],
    pub msk: [u8; 64],
    pub emsk: [u8; 64],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of logs and transcripts.
        f.write_str("Keys { .. }")
    }
}

/// MK = SHA1(Identity | IK | CK) (RFC 4187 §7).
pub fn master_key(identity: &[u8], ik: &[u8; 16], ck: &[u8; 16]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(identity);
    h.update(ik);
    h.update(ck);
    h.finalize().into()
}

/// G(t, c) of FIPS 186-2 Appendix 3.3: one SHA-1 compression of `c` padded with zeros to a
/// 512-bit block, starting from `t` = the SHA-1 IV; the result is the 160-bit state.
fn g(xval: &[u8; 20]) -> [u8; 20] {
    let mut block = [0u8; 64];
    block[..20].copy_from_slice(xval);
    let mut state = SHA1_IV;
    sha1::compress(&mut state, &[block.into()]);
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// `(a + b + extra) mod 2^160`, big-endian.
fn add160(a: &[u8; 20], b: &[u8; 20], extra: u8) -> [u8; 20] {
    let mut out = [0u8; 20];
    let mut carry = u16::from(extra);
    for i in (0..20).rev() {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = (sum & 0xFF) as u8;
        carry = sum >> 8;
    }
    out
}

/// The FIPS 186-2 (change notice 1) generator of RFC 4186 Appendix B: `len` bytes from `xkey`
/// (XSEED_j = 0, two G outputs per round).
pub fn fips186_2_prf(xkey: &[u8; 20], len: usize) -> Vec<u8> {
    let mut xkey = *xkey;
    let mut out = Vec::with_capacity(len + 40);
    while out.len() < len {
        for _ in 0..2 {
            // XVAL = (XKEY + XSEED_j) mod 2^b with XSEED_j = 0.
            let w = g(&xkey);
            // XKEY = (1 + XKEY + w_i) mod 2^b.
            xkey = add160(&xkey, &w, 1);
            out.extend_from_slice(&w);
        }
    }
    out.truncate(len);
    out
}

/// K_encr, K_aut, MSK and EMSK from the identity and the USIM's IK and CK (RFC 4187 §7).
pub fn derive(identity: &[u8], ik: &[u8; 16], ck: &[u8; 16]) -> Keys {
    let mk = master_key(identity, ik, ck);
    let material = fips186_2_prf(&mk, KEY_MATERIAL_LEN);
    let mut keys = Keys {
        mk,
        k_encr: [0; 16],
        k_aut: [0; 16],
        msk: [0; 64],
        emsk: [0; 64],
    };
    keys.k_encr.copy_from_slice(&material[..16]);
    keys.k_aut.copy_from_slice(&material[16..32]);
    keys.msk.copy_from_slice(&material[32..96]);
    keys.emsk.copy_from_slice(&material[96..160]);
    keys
}

/// AT_MAC's value: HMAC-SHA1-128 with K_aut over the packet (MAC zeroed) and `extra`
/// (RFC 4187 §10.15; empty for AKA-Challenge requests and responses).
pub fn mac(k_aut: &[u8; 16], packet_with_zero_mac: &[u8], extra: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    // HMAC takes keys of any length: new_from_slice cannot fail here.
    if let Ok(mut h) = Hmac::<Sha1>::new_from_slice(k_aut) {
        h.update(packet_with_zero_mac);
        h.update(extra);
        let full = h.finalize().into_bytes();
        out.copy_from_slice(&full[..16]);
    }
    out
}

/// Compares two MACs without an early exit.
pub fn mac_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s.replace(' ', "")).unwrap().try_into().unwrap()
    }

    #[test]
    fn addition_wraps_at_160_bits() {
        let max = [0xFF; 20];
        assert_eq!(add160(&max, &[0; 20], 1), [0; 20]);
        let mut one = [0; 20];
        one[19] = 1;
        let mut two = [0; 20];
        two[19] = 2;
        assert_eq!(add160(&one, &[0; 20], 1), two);
    }

    #[test]
    fn a_different_mac_is_detected_anywhere() {
        let a = [7u8; 16];
        for i in 0..16 {
            let mut b = a;
            b[i] ^= 1;
            assert!(!mac_eq(&a, &b));
        }
        assert!(mac_eq(&a, &a));
    }

    #[test]
    fn keys_stay_out_of_debug_output() {
        let k = derive(b"0001", &h("00000000000000000000000000000000"), &[0; 16]);
        assert_eq!(format!("{k:?}"), "Keys { .. }");
    }
}
