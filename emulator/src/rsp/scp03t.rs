//! Segment protection of the bound profile package: SCP03t (SGP.22 v2.5 §2.5.4 and §2.6.6,
//! built on GlobalPlatform Amendment D SCP03 §6.2.4–§6.2.6; renamed "BSP" in SGP.22 v3).
//!
//! Every segment is one TLV `tag ‖ L ‖ payload ‖ MAC(8)`:
//! - encrypted segments (`86` LoadProfileElements, `87` ConfigureISDP / ReplaceSessionKeys):
//!   payload = AES-128-CBC(S-ENC, IV, data ‖ `80 00…`), padding to a 16-byte multiple that
//!   always adds at least one byte; IV = AES-ECB(S-ENC, block counter as 16-byte big-endian);
//! - MAC-only segments (`88` StoreMetadata): payload = data;
//! - MAC = CMAC-AES-128(S-MAC, MCV ‖ tag ‖ L ‖ payload) with `L` = BER length of
//!   `len(payload) + 8`; the full 16-byte CMAC is the next MCV, its first 8 bytes are sent.
//!
//! The block counter starts at 1, counts every segment (MAC-only ones too), and restarts at 1
//! with the keys of a ReplaceSessionKeysRequest (SGP.22 §2.5.4 step on `A2`).
//!
//! Section numbers are v2.5's as far as known here; SGP.22 v3.0 (which pySim cites) has the
//! same text in §2.5.3 (segment size), §2.6.4.2 (key derivation) and §2.6.4.4 (padding).
//!
//! [`BspWriter`] is the SM-DP+ side, [`BspReader`] the eUICC side (the LPA only forwards).
//! A reader rejects a segment without changing its state, so the caller decides to abort.

use super::kdf::{SessionKeys, SESSION_KEY_LEN};
use crate::tlv::{self, TlvError};
use aes::cipher::{
    block_padding::Iso7816, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit,
};
use aes::Aes128;
use cmac::{Cmac, Mac};
use thiserror::Error;

/// `sequenceOf86`: LoadProfileElements segments, encrypted + MAC (SGP.22 §2.5.4, §5.5).
pub const TAG_LOAD_PROFILE_ELEMENTS: u8 = 0x86;
/// `firstSequenceOf87` (ConfigureISDP) and `secondSequenceOf87` (ReplaceSessionKeys):
/// encrypted + MAC.
pub const TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS: u8 = 0x87;
/// `sequenceOf88`: StoreMetadata segments, MAC only.
pub const TAG_STORE_METADATA: u8 = 0x88;

/// Bytes of the CMAC sent in each segment (SCP03 S8 mode).
pub const MAC_LEN: usize = 8;
/// AES block length.
pub const BLOCK_LEN: usize = 16;
/// Largest segment, tag, length and MAC included (SGP.22 v3.0 §2.5.3, same in v2.x: 1020
/// bytes). Readers accept larger ones: one open-source SM-DP+ sends 1036-byte `86` segments.
pub const MAX_SEGMENT_LEN: usize = 1020;
/// Largest data per encrypted segment so the segment fits [`MAX_SEGMENT_LEN`]:
/// 1 (tag) + 3 (`82 xx xx`) + 1008 (63 blocks, padding included) + 8 (MAC).
pub const MAX_ENCRYPTED_CHUNK_LEN: usize = 1007;
/// Largest data per MAC-only segment: 1 + 3 + 1008 + 8 = 1020.
pub const MAX_MAC_ONLY_CHUNK_LEN: usize = 1008;

/// Why a segment could not be produced or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BspError {
    #[error("SCP03t: segment ended early (needs tag, length and an {MAC_LEN}-byte MAC)")]
    Truncated,
    #[error("SCP03t: segment is not one BER-TLV: {0}")]
    Malformed(TlvError),
    #[error("SCP03t: {extra} bytes after the segment TLV")]
    TrailingBytes { extra: usize },
    #[error("SCP03t: segment tag {found:#x}, expected {expected:#04x}")]
    UnexpectedTag { expected: u8, found: u32 },
    #[error("SCP03t: segment tag {found:#x} is none of 86, 87, 88")]
    UnknownTag { found: u32 },
    #[error("SCP03t: tag {tag:#04x} cannot be a segment tag (it must be one byte)")]
    BadTag { tag: u8 },
    #[error("SCP03t: MAC does not match (wrong keys, wrong order or altered segment)")]
    MacMismatch,
    #[error("SCP03t: ciphertext is {len} bytes, expected a non-zero multiple of {BLOCK_LEN}")]
    BadCiphertextLength { len: usize },
    #[error("SCP03t: decrypted data does not end in 80 00… padding")]
    BadPadding,
    #[error("SCP03t: block counter exhausted")]
    CounterExhausted,
}

/// How a segment tag is protected (SGP.22 §2.5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    EncryptAndMac,
    MacOnly,
}

impl Protection {
    /// The protection SGP.22 gives a segment tag, if it is one.
    pub fn of_tag(tag: u8) -> Option<Protection> {
        match tag {
            TAG_LOAD_PROFILE_ELEMENTS | TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS => {
                Some(Protection::EncryptAndMac)
            }
            TAG_STORE_METADATA => Some(Protection::MacOnly),
            _ => None,
        }
    }

    /// The largest data per segment so segments stay within [`MAX_SEGMENT_LEN`].
    pub fn max_chunk_len(self) -> usize {
        match self {
            Protection::EncryptAndMac => MAX_ENCRYPTED_CHUNK_LEN,
            Protection::MacOnly => MAX_MAC_ONLY_CHUNK_LEN,
        }
    }
}

/// Keys, MAC chaining value and block counter of one direction of the channel.
#[derive(Clone)]
struct Channel {
    s_enc: [u8; SESSION_KEY_LEN],
    s_mac: [u8; SESSION_KEY_LEN],
    mcv: [u8; BLOCK_LEN],
    counter: u128,
}

impl Channel {
    fn new(keys: &SessionKeys) -> Self {
        Self {
            s_enc: keys.s_enc,
            s_mac: keys.s_mac,
            mcv: keys.initial_mcv,
            counter: 1,
        }
    }

    /// SGP.22 §2.6.6 (GP SCP03 §6.2.6): ICV = AES-ECB(S-ENC, counter left-padded to a block).
    fn icv(&self) -> [u8; BLOCK_LEN] {
        let mut block = self.counter.to_be_bytes().into();
        Aes128::new(&self.s_enc.into()).encrypt_block(&mut block);
        block.into()
    }

    /// Full CMAC over MCV ‖ header (tag and final length) ‖ payload.
    fn cmac(&self, header: &[u8], payload: &[u8]) -> [u8; BLOCK_LEN] {
        let mut mac = <Cmac<Aes128> as KeyInit>::new(&self.s_mac.into());
        mac.update(&self.mcv);
        mac.update(header);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    fn next_counter(&self) -> Result<u128, BspError> {
        self.counter
            .checked_add(1)
            .ok_or(BspError::CounterExhausted)
    }
}

/// Produces protected segments (SM-DP+ side).
#[derive(Clone)]
pub struct BspWriter {
    channel: Channel,
}

impl std::fmt::Debug for BspWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BspWriter {{ counter: {} }}", self.channel.counter)
    }
}

impl BspWriter {
    /// A writer with fresh session keys: MCV = initial MCV, counter 1.
    pub fn new(keys: &SessionKeys) -> Self {
        Self {
            channel: Channel::new(keys),
        }
    }

    /// Switches to the keys of a ReplaceSessionKeysRequest (PPK-ENC, PPK-MAC, their initial
    /// MCV); the counter restarts at 1. Call after producing the `A2` segment.
    pub fn replace_session_keys(&mut self, keys: &SessionKeys) {
        self.channel = Channel::new(keys);
    }

    /// The block counter the next segment will use.
    pub fn counter(&self) -> u128 {
        self.channel.counter
    }

    /// The MAC chaining value the next segment will use.
    pub fn mcv(&self) -> [u8; BLOCK_LEN] {
        self.channel.mcv
    }

    /// One encrypted + MACed segment `tag ‖ L ‖ AES-CBC(data ‖ pad) ‖ MAC`.
    pub fn encrypt_and_mac(&mut self, tag: u8, data: &[u8]) -> Result<Vec<u8>, BspError> {
        check_tag(tag)?;
        let next = self.channel.next_counter()?;
        let icv = self.channel.icv();
        let mut buf = vec![0u8; (data.len() / BLOCK_LEN + 1) * BLOCK_LEN];
        buf.get_mut(..data.len())
            .ok_or(BspError::Truncated)?
            .copy_from_slice(data);
        let len = cbc::Encryptor::<Aes128>::new(&self.channel.s_enc.into(), &icv.into())
            .encrypt_padded_mut::<Iso7816>(&mut buf, data.len())
            // Cannot happen: the buffer has room for a whole block of padding.
            .map_err(|_| BspError::BadCiphertextLength { len: data.len() })?
            .len();
        buf.truncate(len);
        let segment = self.seal(tag, &buf);
        self.channel.counter = next;
        Ok(segment)
    }

    /// One MAC-only segment `tag ‖ L ‖ data ‖ MAC`; it still uses up a counter value.
    pub fn mac_only(&mut self, tag: u8, data: &[u8]) -> Result<Vec<u8>, BspError> {
        check_tag(tag)?;
        let next = self.channel.next_counter()?;
        let segment = self.seal(tag, data);
        self.channel.counter = next;
        Ok(segment)
    }

    /// One segment protected as SGP.22 says for `tag` (`86`/`87` encrypted, `88` MAC only).
    pub fn protect(&mut self, tag: u8, data: &[u8]) -> Result<Vec<u8>, BspError> {
        match Protection::of_tag(tag) {
            Some(Protection::EncryptAndMac) => self.encrypt_and_mac(tag, data),
            Some(Protection::MacOnly) => self.mac_only(tag, data),
            None => Err(BspError::UnknownTag {
                found: u32::from(tag),
            }),
        }
    }

    /// Cuts `data` into chunks so every segment fits [`MAX_SEGMENT_LEN`] and protects each
    /// (at least one segment, even for empty data). The chunks are not aligned to anything
    /// inside `data` (SGP.22 §2.5.4: profile elements may span segments).
    pub fn protect_chunked(&mut self, tag: u8, data: &[u8]) -> Result<Vec<Vec<u8>>, BspError> {
        let protection = Protection::of_tag(tag).ok_or(BspError::UnknownTag {
            found: u32::from(tag),
        })?;
        if data.is_empty() {
            return Ok(vec![self.protect(tag, data)?]);
        }
        data.chunks(protection.max_chunk_len())
            .map(|c| self.protect(tag, c))
            .collect()
    }

    /// Adds tag, length and MAC around `payload` and advances the MCV.
    fn seal(&mut self, tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut segment = Vec::with_capacity(payload.len() + 4 + MAC_LEN);
        segment.push(tag);
        tlv::push_length(&mut segment, payload.len() + MAC_LEN);
        let full = self.channel.cmac(&segment, payload);
        segment.extend_from_slice(payload);
        segment.extend_from_slice(full.get(..MAC_LEN).unwrap_or(&full));
        self.channel.mcv = full;
        segment
    }
}

/// One verified (and, for `86`/`87`, decrypted) segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub tag: u8,
    pub data: Vec<u8>,
}

/// Verifies and opens protected segments in order (eUICC side).
#[derive(Clone)]
pub struct BspReader {
    channel: Channel,
}

impl std::fmt::Debug for BspReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BspReader {{ counter: {} }}", self.channel.counter)
    }
}

impl BspReader {
    /// A reader with fresh session keys: MCV = initial MCV, counter 1.
    pub fn new(keys: &SessionKeys) -> Self {
        Self {
            channel: Channel::new(keys),
        }
    }

    /// Switches to the keys a ReplaceSessionKeysRequest carried; the counter restarts at 1.
    pub fn replace_session_keys(&mut self, keys: &SessionKeys) {
        self.channel = Channel::new(keys);
    }

    /// The block counter the next segment must have used.
    pub fn counter(&self) -> u128 {
        self.channel.counter
    }

    /// Verifies one segment and returns its data; protection follows the tag (`86`/`87`
    /// decrypted, `88` MAC only). On error the reader's state is unchanged.
    pub fn open(&mut self, segment: &[u8]) -> Result<Opened, BspError> {
        let (tlv, rest) = tlv::parse(segment).map_err(tlv_error)?;
        if !rest.is_empty() {
            return Err(BspError::TrailingBytes { extra: rest.len() });
        }
        let tag = u8::try_from(tlv.tag).map_err(|_| BspError::UnknownTag { found: tlv.tag })?;
        let protection = Protection::of_tag(tag).ok_or(BspError::UnknownTag { found: tlv.tag })?;
        let mac_at = tlv
            .value
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(BspError::Truncated)?;
        let (payload, mac) = tlv.value.split_at(mac_at);
        let header = segment
            .get(..segment.len() - tlv.value.len())
            .ok_or(BspError::Truncated)?;
        let next = self.channel.next_counter()?;
        let full = self.channel.cmac(header, payload);
        if !constant_time_eq(full.get(..MAC_LEN).unwrap_or(&full), mac) {
            return Err(BspError::MacMismatch);
        }
        let data = match protection {
            Protection::MacOnly => payload.to_vec(),
            Protection::EncryptAndMac => self.decrypt(payload)?,
        };
        self.channel.mcv = full;
        self.channel.counter = next;
        Ok(Opened { tag, data })
    }

    /// Like [`open`](Self::open) but the segment must carry `tag` (e.g. `87` inside `A0`).
    pub fn open_expecting(&mut self, tag: u8, segment: &[u8]) -> Result<Vec<u8>, BspError> {
        let (found, _) = tlv::parse(segment).map_err(tlv_error)?;
        if found.tag != u32::from(tag) {
            return Err(BspError::UnexpectedTag {
                expected: tag,
                found: found.tag,
            });
        }
        Ok(self.open(segment)?.data)
    }

    fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, BspError> {
        if ciphertext.is_empty() || ciphertext.len() % BLOCK_LEN != 0 {
            return Err(BspError::BadCiphertextLength {
                len: ciphertext.len(),
            });
        }
        let mut buf = ciphertext.to_vec();
        let icv = self.channel.icv();
        let len = cbc::Decryptor::<Aes128>::new(&self.channel.s_enc.into(), &icv.into())
            .decrypt_padded_mut::<Iso7816>(&mut buf)
            .map_err(|_| BspError::BadPadding)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// A segment tag must be a one-byte tag (low five bits not all set, X.690 §8.1.2.2).
fn check_tag(tag: u8) -> Result<(), BspError> {
    if tag & 0x1F == 0x1F {
        Err(BspError::BadTag { tag })
    } else {
        Ok(())
    }
}

fn tlv_error(e: TlvError) -> BspError {
    match e {
        TlvError::Truncated => BspError::Truncated,
        other => BspError::Malformed(other),
    }
}

/// Compares MACs without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{self, hex};
    use super::*;
    use aes::cipher::block_padding::NoPadding;
    use proptest::prelude::*;
    use rstest::rstest;

    fn keys(enc: u8, mac: u8, mcv: u8) -> SessionKeys {
        SessionKeys {
            initial_mcv: [mcv; 16],
            s_enc: [enc; 16],
            s_mac: [mac; 16],
        }
    }

    fn key16(v: &serde_json::Value) -> [u8; 16] {
        hex(v).try_into().unwrap()
    }

    /// The pyca sequence: session keys, then (after the `A2` segment) the PPKs.
    fn vector_keys() -> (serde_json::Value, SessionKeys, SessionKeys) {
        let v = vectors::load("scp03t");
        let session = SessionKeys {
            initial_mcv: key16(&v["initial_mcv"]),
            s_enc: key16(&v["s_enc"]),
            s_mac: key16(&v["s_mac"]),
        };
        let ppk = SessionKeys {
            initial_mcv: key16(&v["ppk_initial_mcv"]),
            s_enc: key16(&v["ppk_enc"]),
            s_mac: key16(&v["ppk_mac"]),
        };
        (v, session, ppk)
    }

    #[test]
    fn writer_reproduces_the_pyca_segment_sequence() {
        let (v, session, ppk) = vector_keys();
        let mut writer = BspWriter::new(&session);
        let mut checked = 0;
        for seg in v["segments"].as_array().unwrap() {
            if seg["replace_session_keys"].as_bool() == Some(true) {
                writer.replace_session_keys(&ppk);
                continue;
            }
            assert_eq!(
                writer.counter(),
                u128::from(seg["counter"].as_u64().unwrap())
            );
            assert_eq!(writer.mcv().to_vec(), hex(&seg["mcv_in"]));
            let tag = u8::from_str_radix(seg["tag"].as_str().unwrap(), 16).unwrap();
            let wire = match seg["protection"].as_str().unwrap() {
                "encrypt" => writer.encrypt_and_mac(tag, &hex(&seg["data"])).unwrap(),
                _ => writer.mac_only(tag, &hex(&seg["data"])).unwrap(),
            };
            assert_eq!(hex::encode_upper(wire), seg["wire"].as_str().unwrap());
            checked += 1;
        }
        assert_eq!(checked, 7);
    }

    #[test]
    fn reader_opens_the_pyca_segment_sequence() {
        let (v, session, ppk) = vector_keys();
        let mut reader = BspReader::new(&session);
        for seg in v["segments"].as_array().unwrap() {
            if seg["replace_session_keys"].as_bool() == Some(true) {
                reader.replace_session_keys(&ppk);
                continue;
            }
            assert_eq!(
                reader.counter(),
                u128::from(seg["counter"].as_u64().unwrap())
            );
            let opened = reader.open(&hex(&seg["wire"])).unwrap();
            assert_eq!(format!("{:02X}", opened.tag), seg["tag"].as_str().unwrap());
            assert_eq!(opened.data, hex(&seg["data"]));
        }
    }

    #[test]
    fn segments_after_replace_session_keys_need_the_new_keys() {
        let (v, session, _) = vector_keys();
        let segs: Vec<Vec<u8>> = v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["wire"].is_string())
            .map(|s| hex(&s["wire"]))
            .collect();
        let mut reader = BspReader::new(&session);
        for seg in &segs[..3] {
            reader.open(seg).unwrap();
        }
        assert_eq!(reader.open(&segs[3]), Err(BspError::MacMismatch));
    }

    #[rstest]
    #[case::empty(0, "one whole padding block")]
    #[case::one_byte(1, "")]
    #[case::fifteen_bytes(15, "")]
    #[case::one_block(16, "a whole padding block more")]
    fn padding_always_adds_at_least_one_byte(#[case] len: usize, #[case] _why: &str) {
        let mut writer = BspWriter::new(&keys(1, 2, 3));
        let segment = writer.encrypt_and_mac(0x86, &vec![0xAB; len]).unwrap();
        let ciphertext_len = (len / 16 + 1) * 16;
        assert_eq!(segment.len(), 2 + ciphertext_len + MAC_LEN);
        assert_eq!(usize::from(segment[1]), ciphertext_len + MAC_LEN);
        let mut reader = BspReader::new(&keys(1, 2, 3));
        assert_eq!(reader.open(&segment).unwrap().data, vec![0xAB; len]);
    }

    #[test]
    fn mac_only_segments_use_up_a_counter_value() {
        let mut a = BspWriter::new(&keys(1, 2, 3));
        a.mac_only(0x88, b"meta").unwrap();
        assert_eq!(a.counter(), 2);
        // Same chaining, no MAC-only segment counted: the IV differs, so the ciphertext does.
        let mut b = BspWriter::new(&keys(1, 2, 3));
        b.channel.mcv = a.mcv();
        let sa = a.encrypt_and_mac(0x86, b"profile").unwrap();
        let sb = b.encrypt_and_mac(0x86, b"profile").unwrap();
        assert_ne!(sa[2..18], sb[2..18]);
    }

    #[test]
    fn chunks_fill_segments_up_to_1020_bytes() {
        let data = vec![0x11u8; 3000];
        for (tag, full_chunks) in [(0x86, 2), (0x88, 2)] {
            let mut writer = BspWriter::new(&keys(1, 2, 3));
            let segments = writer.protect_chunked(tag, &data).unwrap();
            assert_eq!(segments.len(), 3);
            for s in &segments[..full_chunks] {
                assert_eq!(s.len(), MAX_SEGMENT_LEN);
            }
            let mut reader = BspReader::new(&keys(1, 2, 3));
            let joined: Vec<u8> = segments
                .iter()
                .flat_map(|s| reader.open_expecting(tag, s).unwrap())
                .collect();
            assert_eq!(joined, data);
        }
        let mut writer = BspWriter::new(&keys(1, 2, 3));
        assert_eq!(writer.protect_chunked(0x87, &[]).unwrap().len(), 1);
    }

    /// A segment sealed with a correct MAC around an arbitrary payload: tests what the reader
    /// does after the MAC check passes.
    fn sealed(tag: u8, payload: &[u8], encrypt_raw: bool) -> Vec<u8> {
        let mut writer = BspWriter::new(&keys(1, 2, 3));
        let mut body = payload.to_vec();
        if encrypt_raw {
            let icv = writer.channel.icv();
            let len = body.len();
            cbc::Encryptor::<Aes128>::new(&[1; 16].into(), &icv.into())
                .encrypt_padded_mut::<NoPadding>(&mut body, len)
                .unwrap();
        }
        writer.seal(tag, &body)
    }

    #[rstest]
    #[case::no_80_marker(sealed(0x86, b"sixteen bytes!!!", true), BspError::BadPadding)]
    #[case::all_zero_block(sealed(0x86, &[0; 16], true), BspError::BadPadding)]
    #[case::ciphertext_not_whole_blocks(sealed(0x86, &[0; 15], false), BspError::BadCiphertextLength { len: 15 })]
    #[case::empty_ciphertext(sealed(0x87, &[], false), BspError::BadCiphertextLength { len: 0 })]
    #[case::unknown_tag(sealed(0x89, b"x", false), BspError::UnknownTag { found: 0x89 })]
    #[case::mac_cut_short(vec![0x88, 0x03, 1, 2, 3], BspError::Truncated)]
    #[case::value_cut_short(vec![0x88, 0x10, 1, 2, 3], BspError::Truncated)]
    #[case::indefinite_length(vec![0x88, 0x80, 0, 0], BspError::Malformed(TlvError::BadLength))]
    #[case::trailing_bytes([sealed(0x88, b"x", false), vec![0]].concat(), BspError::TrailingBytes { extra: 1 })]
    #[case::empty(vec![], BspError::Truncated)]
    fn rejects_bad_segments(#[case] segment: Vec<u8>, #[case] err: BspError) {
        let mut reader = BspReader::new(&keys(1, 2, 3));
        assert_eq!(reader.open(&segment), Err(err));
        assert_eq!(
            reader.counter(),
            1,
            "a rejected segment leaves the reader as it was"
        );
    }

    #[test]
    fn bad_padding_is_only_reported_after_the_mac_check() {
        let mut segment = sealed(0x86, b"sixteen bytes!!!", true);
        segment[5] ^= 1;
        assert_eq!(
            BspReader::new(&keys(1, 2, 3)).open(&segment),
            Err(BspError::MacMismatch)
        );
    }

    #[test]
    fn rejects_segments_out_of_order_and_keeps_state_after_an_error() {
        let mut writer = BspWriter::new(&keys(4, 5, 6));
        let first = writer.protect(0x87, b"ConfigureISDP").unwrap();
        let second = writer.protect(0x88, b"StoreMetadata").unwrap();
        let mut reader = BspReader::new(&keys(4, 5, 6));
        assert_eq!(reader.open(&second), Err(BspError::MacMismatch));
        assert_eq!(reader.open(&first).unwrap().data, b"ConfigureISDP");
        assert_eq!(reader.open(&first), Err(BspError::MacMismatch), "no replay");
        assert_eq!(reader.open(&second).unwrap().data, b"StoreMetadata");
    }

    #[test]
    fn open_expecting_rejects_another_tag_before_touching_state() {
        let segment = BspWriter::new(&keys(1, 2, 3))
            .protect(0x88, b"meta")
            .unwrap();
        let mut reader = BspReader::new(&keys(1, 2, 3));
        assert_eq!(
            reader.open_expecting(0x87, &segment),
            Err(BspError::UnexpectedTag {
                expected: 0x87,
                found: 0x88
            })
        );
        assert_eq!(reader.open_expecting(0x88, &segment).unwrap(), b"meta");
    }

    #[rstest]
    #[case::multi_byte_tag(0x9F)]
    #[case::bf_class(0xBF)]
    fn writer_refuses_tags_that_are_not_one_byte(#[case] tag: u8) {
        let mut writer = BspWriter::new(&keys(1, 2, 3));
        assert_eq!(writer.mac_only(tag, b""), Err(BspError::BadTag { tag }));
        assert_eq!(
            writer.encrypt_and_mac(tag, b""),
            Err(BspError::BadTag { tag })
        );
        assert_eq!(writer.counter(), 1);
    }

    fn step() -> impl Strategy<Value = (u8, Vec<u8>)> {
        (
            prop_oneof![Just(0x86u8), Just(0x87), Just(0x88)],
            proptest::collection::vec(any::<u8>(), 0..300),
        )
    }

    fn write_all(steps: &[(u8, Vec<u8>)], replace_at: Option<usize>) -> Vec<Vec<u8>> {
        let mut writer = BspWriter::new(&keys(7, 8, 9));
        steps
            .iter()
            .enumerate()
            .map(|(i, (tag, data))| {
                if replace_at == Some(i) {
                    writer.replace_session_keys(&keys(10, 11, 12));
                }
                writer.protect(*tag, data).unwrap()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn reader_recovers_what_the_writer_protected(
            steps in proptest::collection::vec(step(), 1..8),
            replace in proptest::option::of(0usize..8),
        ) {
            let segments = write_all(&steps, replace);
            let mut reader = BspReader::new(&keys(7, 8, 9));
            for (i, ((tag, data), segment)) in steps.iter().zip(&segments).enumerate() {
                if replace == Some(i) {
                    reader.replace_session_keys(&keys(10, 11, 12));
                }
                let opened = reader.open(segment).unwrap();
                prop_assert_eq!(opened.tag, *tag);
                prop_assert_eq!(&opened.data, data);
            }
        }

        #[test]
        fn any_single_bit_flip_is_rejected(
            steps in proptest::collection::vec(step(), 1..5),
            which in any::<prop::sample::Index>(),
            bit in any::<prop::sample::Index>(),
        ) {
            let mut segments = write_all(&steps, None);
            let target = which.index(segments.len());
            let bit = bit.index(segments[target].len() * 8);
            segments[target][bit / 8] ^= 1 << (bit % 8);
            let mut reader = BspReader::new(&keys(7, 8, 9));
            for segment in &segments[..target] {
                reader.open(segment).unwrap();
            }
            prop_assert!(reader.open(&segments[target]).is_err());
        }

        #[test]
        fn reader_never_panics_on_arbitrary_bytes(
            segments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..4),
        ) {
            let mut reader = BspReader::new(&keys(1, 2, 3));
            for segment in &segments {
                let _ = reader.open(segment);
                let _ = reader.open_expecting(0x86, segment);
            }
        }

        #[test]
        fn reader_never_panics_on_well_framed_garbage(
            tag in prop_oneof![Just(0x86u8), Just(0x87), Just(0x88)],
            value in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            // Right tag and length, random contents: always a MAC mismatch, never a panic.
            let segment = tlv::encode(u32::from(tag), &value);
            let result = BspReader::new(&keys(1, 2, 3)).open(&segment);
            prop_assert!(result.is_err());
        }
    }
}
