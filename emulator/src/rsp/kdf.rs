//! Key derivation of the bound profile package session (SGP.22 v2.5 §2.6.5.2 and Annex G):
//! the ANSI X9.63 KDF (as BSI TR-03111 §4.3.3 and SEC 1 v2 §3.6.1 define it) with SHA-256
//! over the ECKA shared secret, and the split of its output into the initial MAC chaining
//! value, S-ENC and S-MAC.
//!
//! The X9.63 KDF is written here by hand: it is one loop over SHA-256, and the only RustCrypto
//! crate for it (`ansi-x963-kdf`) is a release candidate on a newer `digest` generation.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Key type of the control reference template (`A6 { 80 … }`, GP Amendment F §6.5.2.3): AES.
pub const KEY_TYPE_AES: u8 = 0x88;
/// Key length of the control reference template (`A6 { 81 … }`): 16 bytes (AES-128).
pub const KEY_LENGTH_AES128: u8 = 0x10;
/// Length of the EID (SGP.02 / SGP.22: 32 digits, 16 bytes).
pub const EID_LEN: usize = 16;
/// Longest hostId the control reference template allows (`OctetTo16`, SGP.22 §5.5.1).
pub const MAX_HOST_ID_LEN: usize = 16;
/// Length of each session key and of the initial MAC chaining value.
pub const SESSION_KEY_LEN: usize = 16;

/// Why session keys could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KdfError {
    #[error("KDF: key type {found:#04x} is not supported, expected AES ({KEY_TYPE_AES:#04x})")]
    UnsupportedKeyType { found: u8 },
    #[error(
        "KDF: key length {found:#04x} is not supported, expected 16 bytes ({KEY_LENGTH_AES128:#04x})"
    )]
    UnsupportedKeyLength { found: u8 },
    #[error("KDF: hostId is {found} bytes, expected at most {MAX_HOST_ID_LEN}")]
    HostIdTooLong { found: usize },
    #[error("KDF: {requested} output bytes asked for, more than a 32-bit counter can give")]
    OutputTooLong { requested: usize },
}

/// ANSI X9.63 KDF with SHA-256: `K_i = SHA-256(Z ‖ counter_i (32-bit BE, from 1) ‖ SharedInfo)`,
/// output = leftmost `out.len()` bytes of `K_1 ‖ K_2 ‖ …` (SEC 1 v2 §3.6.1).
pub fn x963_kdf_sha256(z: &[u8], shared_info: &[u8], out: &mut [u8]) -> Result<(), KdfError> {
    let blocks = out.len().div_ceil(32);
    // SEC 1 §3.6.1 step 2: keydatalen must be below hashlen × (2^32 − 1).
    if u32::try_from(blocks).is_err() {
        return Err(KdfError::OutputTooLong {
            requested: out.len(),
        });
    }
    let requested = out.len();
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let counter = u32::try_from(i + 1).map_err(|_| KdfError::OutputTooLong { requested })?;
        let block = Sha256::new()
            .chain_update(z)
            .chain_update(counter.to_be_bytes())
            .chain_update(shared_info)
            .finalize();
        chunk.iter_mut().zip(block).for_each(|(d, s)| *d = s);
    }
    Ok(())
}

/// The three 16-byte values one key agreement yields (SGP.22 §2.6.5.2): the initial MAC
/// chaining value, S-ENC and S-MAC. Also the shape of the replacement keys of
/// `ReplaceSessionKeysRequest` (PPK-ENC, PPK-MAC, initial MCV; SGP.22 §5.5.4).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub initial_mcv: [u8; SESSION_KEY_LEN],
    pub s_enc: [u8; SESSION_KEY_LEN],
    pub s_mac: [u8; SESSION_KEY_LEN],
}

impl std::fmt::Debug for SessionKeys {
    // Keys stay out of logs: tracing a session must not print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

/// SharedInfo of SGP.22 Annex G: `keyType ‖ keyLength ‖ len(hostId) ‖ hostId ‖ len(EID) ‖ EID`,
/// each length one byte (the BER length of a value of at most 16 bytes).
pub fn session_shared_info(
    key_type: u8,
    key_len: u8,
    host_id: &[u8],
    eid: &[u8; EID_LEN],
) -> Result<Vec<u8>, KdfError> {
    if host_id.len() > MAX_HOST_ID_LEN {
        return Err(KdfError::HostIdTooLong {
            found: host_id.len(),
        });
    }
    let mut info = Vec::with_capacity(4 + host_id.len() + EID_LEN);
    info.push(key_type);
    info.push(key_len);
    crate::tlv::push_length(&mut info, host_id.len());
    info.extend_from_slice(host_id);
    crate::tlv::push_length(&mut info, EID_LEN);
    info.extend_from_slice(eid);
    Ok(info)
}

/// Derives the session keys from the shared secret `ShS` (SGP.22 §2.6.5.2, Annex G): X9.63 KDF
/// with SHA-256 over `shs` and [`session_shared_info`], 48 bytes cut into initial MCV ‖ S-ENC ‖
/// S-MAC. Only AES-128 (key type `0x88`, length `0x10`) exists in SGP.22 v2.5.
pub fn derive_session_keys(
    shs: &[u8],
    key_type: u8,
    key_len: u8,
    host_id: &[u8],
    eid: &[u8; EID_LEN],
) -> Result<SessionKeys, KdfError> {
    if key_type != KEY_TYPE_AES {
        return Err(KdfError::UnsupportedKeyType { found: key_type });
    }
    if key_len != KEY_LENGTH_AES128 {
        return Err(KdfError::UnsupportedKeyLength { found: key_len });
    }
    let info = session_shared_info(key_type, key_len, host_id, eid)?;
    let mut out = [0u8; 3 * SESSION_KEY_LEN];
    x963_kdf_sha256(shs, &info, &mut out)?;
    let mut keys = SessionKeys {
        initial_mcv: [0; SESSION_KEY_LEN],
        s_enc: [0; SESSION_KEY_LEN],
        s_mac: [0; SESSION_KEY_LEN],
    };
    let (mcv, rest) = out.split_at(SESSION_KEY_LEN);
    let (enc, mac) = rest.split_at(SESSION_KEY_LEN);
    keys.initial_mcv.copy_from_slice(mcv);
    keys.s_enc.copy_from_slice(enc);
    keys.s_mac.copy_from_slice(mac);
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// Reads `vectors/rsp-crypto/ansx963_2001_sha256.txt` (NIST CAVP, see README there):
    /// (Z, SharedInfo, key_data) triples.
    fn cavp_vectors() -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let text = include_str!("../../../vectors/rsp-crypto/ansx963_2001_sha256.txt");
        let mut out = Vec::new();
        let (mut z, mut info) = (None, None);
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("Z = ") {
                z = Some(h(v));
            } else if let Some(v) = line.strip_prefix("SharedInfo =") {
                info = Some(h(v.trim()));
            } else if let Some(v) = line.strip_prefix("key_data = ") {
                out.push((z.take().unwrap(), info.take().unwrap(), h(v)));
            }
        }
        out
    }

    #[test]
    fn matches_every_nist_cavp_x963_sha256_vector() {
        let vectors = cavp_vectors();
        assert_eq!(
            vectors.len(),
            20,
            "the file holds 2 groups of 10 SHA-256 vectors"
        );
        for (z, info, expected) in vectors {
            let mut out = vec![0u8; expected.len()];
            x963_kdf_sha256(&z, &info, &mut out).unwrap();
            assert_eq!(hex::encode(&out), hex::encode(&expected));
        }
    }

    #[rstest]
    #[case::empty_host_id("", "88 10 00 10 89049032123451234512345678901235")]
    #[case::sixteen_byte_host_id(
        "000102030405060708090A0B0C0D0E0F",
        "88 10 10 000102030405060708090A0B0C0D0E0F 10 89049032123451234512345678901235"
    )]
    fn builds_shared_info_as_annex_g_says(#[case] host_id: &str, #[case] expected: &str) {
        let eid: [u8; 16] = h("89049032123451234512345678901235").try_into().unwrap();
        let info = session_shared_info(0x88, 0x10, &h(host_id), &eid).unwrap();
        assert_eq!(hex::encode_upper(info), expected.replace(' ', ""));
    }

    #[test]
    fn rejects_host_id_longer_than_sixteen_bytes() {
        let eid = [0u8; 16];
        assert_eq!(
            derive_session_keys(&[1; 32], 0x88, 0x10, &[0; 17], &eid),
            Err(KdfError::HostIdTooLong { found: 17 })
        );
    }

    #[rstest]
    #[case::des_key_type(0x80, 0x10, KdfError::UnsupportedKeyType { found: 0x80 })]
    #[case::aes_256_length(0x88, 0x20, KdfError::UnsupportedKeyLength { found: 0x20 })]
    fn rejects_key_parameters_other_than_aes_128(
        #[case] key_type: u8,
        #[case] key_len: u8,
        #[case] err: KdfError,
    ) {
        assert_eq!(
            derive_session_keys(&[1; 32], key_type, key_len, b"h", &[0; 16]),
            Err(err)
        );
    }

    #[test]
    fn session_keys_are_the_kdf_output_in_mcv_enc_mac_order() {
        let eid = [0x89; 16];
        let keys = derive_session_keys(&[7; 32], 0x88, 0x10, b"host", &eid).unwrap();
        let mut out = [0u8; 48];
        x963_kdf_sha256(
            &[7; 32],
            &session_shared_info(0x88, 0x10, b"host", &eid).unwrap(),
            &mut out,
        )
        .unwrap();
        assert_eq!(keys.initial_mcv, out[..16]);
        assert_eq!(keys.s_enc, out[16..32]);
        assert_eq!(keys.s_mac, out[32..]);
        assert_eq!(format!("{keys:?}"), "SessionKeys { .. }");
    }
}
