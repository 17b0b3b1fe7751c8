//! The AKA procedure of 3GPP TS 33.102 (clause numbers as in Rel-17, unchanged since the
//! early releases), for both ends:
//!
//! - the USIM (§6.3.3): verify MAC, then SQN freshness with the SEQ/IND array of Annex C.2,
//!   answer RES/CK/IK (+ Kc), or a synchronisation failure carrying AUTS;
//! - the USIM in a GSM context (§6.8.1.2): SRES = c2(RES), Kc = c3(CK, IK);
//! - the HE/AuC (§6.3.2, §6.3.5): authentication vectors, and recovery of SQN_MS from AUTS.
//!
//! Sequence numbers follow Annex C.1: SQN (48 bits) = SEQ || IND, IND being the low
//! [`SqnStore::ind_bits`] bits (5 by default, i.e. an array of 32 entries as in SAIP's
//! `sqnInit`). Δ and L are optional (`None` by default); a profile loader can set them from
//! SAIP `sqnDelta`/`sqnAgeLimit` and the array from `sqnInit` ([`SqnStore::from_seq_ms`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    mac_eq, sqn_from_bytes, sqn_to_bytes, xor, AkaAlgorithm, AUTN_LEN, AUTS_LEN, RAND_LEN, SQN_LEN,
    SQN_MAX,
};

/// TS 33.102 §6.3.3: "The AMF used to calculate MAC-S assumes a dummy value of all zeros".
pub const RESYNC_AMF: [u8; 2] = [0, 0];

/// What the USIM answers to a successful 3G-context authentication (TS 31.102 §7.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkaSuccess {
    pub res: Vec<u8>,
    pub ck: [u8; 16],
    pub ik: [u8; 16],
    /// Kc = c3(CK, IK) (TS 33.102 §6.8.1.2); the card sends it only when GSM access
    /// (service n°27) is available.
    pub kc: [u8; 8],
}

/// Why the USIM refused an AUTN (TS 33.102 §6.3.3), or the AuC refused an AUTS (§6.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AkaFailure {
    /// The MAC in AUTN (or MAC-S in AUTS) is not the one K, RAND, SQN and AMF give: the
    /// network is not genuine, or card and network hold different keys. The card answers
    /// `98 62`.
    #[error("MAC in AUTN differs from XMAC computed from K, RAND, SQN and AMF (TS 33.102 §6.3.3); check K/OPc on both sides")]
    MacFailure,
    /// The MAC is right but SQN is not acceptable (replayed, too old, or too far ahead):
    /// the card answers `DC 0E` AUTS so that the AuC can resynchronise (§6.3.5).
    #[error(
        "SQN in AUTN is not fresh (TS 33.102 Annex C.2); resynchronise with AUTS {}",
        hex::encode(auts)
    )]
    SyncFailure { auts: [u8; AUTS_LEN] },
}

/// An authentication vector (quintet, plus Kc for GSM interworking) as the HE/AuC generates
/// it (TS 33.102 §6.3.2, §6.8.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthVector {
    pub rand: [u8; RAND_LEN],
    pub xres: Vec<u8>,
    pub ck: [u8; 16],
    pub ik: [u8; 16],
    pub autn: [u8; AUTN_LEN],
    pub kc: [u8; 8],
}

/// Errors of the USIM's sequence-number store: bad configuration, or an SQN it does not
/// accept (TS 33.102 Annex C.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SqnStoreError {
    #[error("IND length {ind_bits} bits is outside 0..={max} (TS 33.102 Annex C.1.1)", max = SqnStore::MAX_IND_BITS)]
    IndBitsOutOfRange { ind_bits: u8 },
    #[error("SEQ_MS array has {got} entries, expected 2^IND = {expected}")]
    WrongArrayLength { expected: usize, got: usize },
    #[error("SEQ_MS({index}) = {seq:#x} does not fit the {bits} SEQ bits")]
    SeqTooLarge { index: usize, seq: u64, bits: u8 },
    #[error("SEQ {seq:#x} with IND {ind} is not above SEQ_MS({ind}) = {seq_ms:#x} (Annex C.2.2): replay")]
    NotFresh { seq: u64, ind: usize, seq_ms: u64 },
    #[error("SEQ {seq:#x} is more than delta {delta:#x} above the highest SEQ_MS {highest:#x} (Annex C.2.1)")]
    TooFarAhead { seq: u64, highest: u64, delta: u64 },
    #[error("SEQ {seq:#x} is not within age limit L {limit:#x} below the highest SEQ_MS {highest:#x} (Annex C.2.2)")]
    TooOld { seq: u64, highest: u64, limit: u64 },
}

/// The USIM's record of accepted sequence numbers (TS 33.102 Annex C.2): one SEQ_MS per IND
/// value, all zero initially, plus the optional limits Δ (C.2.1) and L (C.2.2).
///
/// Invariants (kept by every constructor, including deserialisation): the array has exactly
/// 2^`ind_bits` entries and each entry fits in the 48 − `ind_bits` SEQ bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SqnStoreRepr", into = "SqnStoreRepr")]
pub struct SqnStore {
    ind_bits: u8,
    seq_ms: Vec<u64>,
    delta: Option<u64>,
    age_limit: Option<u64>,
}

/// Serialised form of [`SqnStore`], validated on the way in.
#[derive(Serialize, Deserialize)]
struct SqnStoreRepr {
    ind_bits: u8,
    seq_ms: Vec<u64>,
    #[serde(default)]
    delta: Option<u64>,
    #[serde(default)]
    age_limit: Option<u64>,
}

impl TryFrom<SqnStoreRepr> for SqnStore {
    type Error = SqnStoreError;
    fn try_from(r: SqnStoreRepr) -> Result<Self, Self::Error> {
        Ok(SqnStore::from_seq_ms(r.ind_bits, r.seq_ms)?
            .with_delta(r.delta)
            .with_age_limit(r.age_limit))
    }
}

impl From<SqnStore> for SqnStoreRepr {
    fn from(s: SqnStore) -> Self {
        SqnStoreRepr {
            ind_bits: s.ind_bits,
            seq_ms: s.seq_ms,
            delta: s.delta,
            age_limit: s.age_limit,
        }
    }
}

impl Default for SqnStore {
    /// 5 IND bits (32 entries, as SAIP `sqnInit`), all zero, no Δ and no L.
    fn default() -> Self {
        SqnStore {
            ind_bits: Self::DEFAULT_IND_BITS,
            seq_ms: vec![0; 1 << Self::DEFAULT_IND_BITS],
            delta: None,
            age_limit: None,
        }
    }
}

impl SqnStore {
    /// IND length used by [`SqnStore::default`]: 5 bits, a = 32 array entries, the usual
    /// choice and the size of the `sqnInit` array in a SAIP profile's `akaParameter`.
    pub const DEFAULT_IND_BITS: u8 = 5;
    /// Largest IND length accepted (an array of 1024 entries).
    pub const MAX_IND_BITS: u8 = 10;

    /// An empty store (all SEQ_MS(i) = 0) with `ind_bits` bits of IND.
    pub fn new(ind_bits: u8) -> Result<Self, SqnStoreError> {
        if ind_bits > Self::MAX_IND_BITS {
            return Err(SqnStoreError::IndBitsOutOfRange { ind_bits });
        }
        Ok(SqnStore {
            ind_bits,
            seq_ms: vec![0; 1 << ind_bits],
            delta: None,
            age_limit: None,
        })
    }

    /// A store with given SEQ_MS(0..a−1), e.g. a profile's initial values.
    pub fn from_seq_ms(ind_bits: u8, seq_ms: Vec<u64>) -> Result<Self, SqnStoreError> {
        let mut store = Self::new(ind_bits)?;
        if seq_ms.len() != store.seq_ms.len() {
            return Err(SqnStoreError::WrongArrayLength {
                expected: store.seq_ms.len(),
                got: seq_ms.len(),
            });
        }
        let max_seq = store.max_seq();
        if let Some((index, &seq)) = seq_ms.iter().enumerate().find(|(_, &s)| s > max_seq) {
            return Err(SqnStoreError::SeqTooLarge {
                index,
                seq,
                bits: 48 - ind_bits,
            });
        }
        store.seq_ms = seq_ms;
        Ok(store)
    }

    /// Sets Δ: accept SQN only if SEQ − SEQ_MS ≤ Δ (Annex C.2.1). `None` disables the check.
    pub fn with_delta(mut self, delta: Option<u64>) -> Self {
        self.delta = delta;
        self
    }

    /// Sets the age limit L: accept SQN only if SEQ_MS − SEQ < L (Annex C.2.2). `None`
    /// disables the check.
    pub fn with_age_limit(mut self, age_limit: Option<u64>) -> Self {
        self.age_limit = age_limit;
        self
    }

    pub fn ind_bits(&self) -> u8 {
        self.ind_bits
    }

    /// SEQ_MS(0), …, SEQ_MS(a−1).
    pub fn seq_ms(&self) -> &[u64] {
        &self.seq_ms
    }

    pub fn delta(&self) -> Option<u64> {
        self.delta
    }

    pub fn age_limit(&self) -> Option<u64> {
        self.age_limit
    }

    /// Splits SQN into (SEQ, IND) (Annex C.1.1).
    pub fn split(&self, sqn: u64) -> (u64, usize) {
        let sqn = sqn & SQN_MAX;
        let ind_mask = (1u64 << self.ind_bits) - 1;
        // IND < 2^MAX_IND_BITS, so the narrowing cannot lose bits.
        (sqn >> self.ind_bits, (sqn & ind_mask) as usize)
    }

    /// SQN_MS: "the highest previously accepted sequence number anywhere in the array"
    /// (Annex C.2.2), i.e. SEQ_MS(i) || i for the largest such value; 0 before any.
    pub fn highest_sqn(&self) -> u64 {
        self.seq_ms
            .iter()
            .enumerate()
            .filter(|(_, &seq)| seq > 0)
            .map(|(ind, &seq)| (seq << self.ind_bits) | ind as u64)
            .max()
            .unwrap_or(0)
    }

    /// Whether the USIM would accept `sqn` now (Annex C.2.1, C.2.2), without storing it.
    pub fn check(&self, sqn: u64) -> Result<(), SqnStoreError> {
        let (seq, ind) = self.split(sqn);
        let highest = self.highest_sqn() >> self.ind_bits;
        if let Some(delta) = self.delta {
            if seq > highest && seq - highest > delta {
                return Err(SqnStoreError::TooFarAhead {
                    seq,
                    highest,
                    delta,
                });
            }
        }
        if let Some(limit) = self.age_limit {
            if highest >= seq && highest - seq >= limit {
                return Err(SqnStoreError::TooOld {
                    seq,
                    highest,
                    limit,
                });
            }
        }
        let seq_ms = self.seq_ms.get(ind).copied().unwrap_or(u64::MAX);
        if seq > seq_ms {
            Ok(())
        } else {
            Err(SqnStoreError::NotFresh { seq, ind, seq_ms })
        }
    }

    /// Checks `sqn` and, if fresh, records it: SEQ_MS(IND) := SEQ (Annex C.2.2).
    pub fn accept(&mut self, sqn: u64) -> Result<(), SqnStoreError> {
        self.check(sqn)?;
        let (seq, ind) = self.split(sqn);
        if let Some(slot) = self.seq_ms.get_mut(ind) {
            *slot = seq;
        }
        Ok(())
    }

    fn max_seq(&self) -> u64 {
        SQN_MAX >> self.ind_bits
    }
}

/// The SQN an AuC uses next for a given IND: SEQ of `previous` plus one (Annex C.3.2), with
/// IND `ind` (only its low `ind_bits` bits). Typical use: after [`resynchronise`] returned
/// SQN_MS, `next_sqn(sqn_ms, ind, 5)`.
pub fn next_sqn(previous: u64, ind: u64, ind_bits: u8) -> u64 {
    let ind_bits = ind_bits.min(SqnStore::MAX_IND_BITS);
    let ind_mask = (1u64 << ind_bits) - 1;
    let seq = ((previous & SQN_MAX) >> ind_bits).wrapping_add(1);
    ((seq << ind_bits) | (ind & ind_mask)) & SQN_MAX
}

/// The USIM's side of AKA in the 3G security context (TS 33.102 §6.3.3; TS 31.102 §7.1.2.1,
/// P2 = '81').
///
/// Order as the spec gives it: compute AK and recover SQN, check MAC (failure: nothing
/// stored, [`AkaFailure::MacFailure`]), then check SQN against `sqn` (failure:
/// [`AkaFailure::SyncFailure`] with AUTS over SQN_MS and the received RAND). Only on success
/// is `sqn` updated.
pub fn authenticate_3g(
    alg: &AkaAlgorithm,
    sqn: &mut SqnStore,
    rand: &[u8; RAND_LEN],
    autn: &[u8; AUTN_LEN],
) -> Result<AkaSuccess, AkaFailure> {
    let (conc, amf, mac) = split_autn(autn);
    let out = alg.f2345(rand);
    let sqn_bytes = xor(&conc, &out.ak);
    let xmac = alg.f1(rand, &sqn_bytes, &amf);
    if !mac_eq(&xmac, &mac) {
        return Err(AkaFailure::MacFailure);
    }
    if sqn.accept(sqn_from_bytes(&sqn_bytes)).is_err() {
        return Err(AkaFailure::SyncFailure {
            auts: auts(alg, rand, sqn.highest_sqn()),
        });
    }
    Ok(AkaSuccess {
        kc: c3(&out.ck, &out.ik),
        res: out.res,
        ck: out.ck,
        ik: out.ik,
    })
}

/// The USIM's side of AKA in the GSM security context (TS 31.102 §7.1.2.1, P2 = '80'):
/// RES, CK and IK are computed as in 3G and converted, SRES = c2(RES), Kc = c3(CK, IK)
/// (TS 33.102 §6.8.1.2). No AUTN, so no MAC or SQN check. The AuC computes the same values
/// for a GSM triplet.
pub fn authenticate_gsm(alg: &AkaAlgorithm, rand: &[u8; RAND_LEN]) -> ([u8; 4], [u8; 8]) {
    let out = alg.f2345(rand);
    (c2(&out.res), c3(&out.ck, &out.ik))
}

/// Conversion function c2 (TS 33.102 §6.8.1.2): SRES = XRES*1 ⊕ XRES*2 ⊕ XRES*3 ⊕ XRES*4,
/// where XRES* is RES padded with zero bits to 128 bits and XRES*i its 32-bit words.
pub fn c2(res: &[u8]) -> [u8; 4] {
    let mut sres = [0u8; 4];
    for (i, b) in res.iter().take(16).enumerate() {
        if let Some(s) = sres.get_mut(i % 4) {
            *s ^= b;
        }
    }
    sres
}

/// Conversion function c3 (TS 33.102 §6.8.1.2): Kc = CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2, the 64-bit halves.
pub fn c3(ck: &[u8; 16], ik: &[u8; 16]) -> [u8; 8] {
    let mut kc = [0u8; 8];
    for (i, k) in kc.iter_mut().enumerate() {
        *k = ck[i] ^ ck[i + 8] ^ ik[i] ^ ik[i + 8];
    }
    kc
}

/// The HE/AuC's authentication vector for SQN `sqn` (low 48 bits used), AMF and RAND
/// (TS 33.102 §6.3.2): AUTN = SQN ⊕ AK || AMF || MAC with MAC = f1(SQN || RAND || AMF).
pub fn generate_vector(
    alg: &AkaAlgorithm,
    sqn: u64,
    amf: [u8; 2],
    rand: &[u8; RAND_LEN],
) -> AuthVector {
    let sqn_bytes = sqn_to_bytes(sqn);
    let out = alg.f2345(rand);
    let mac = alg.f1(rand, &sqn_bytes, &amf);
    let mut autn = [0u8; AUTN_LEN];
    autn[..SQN_LEN].copy_from_slice(&xor(&sqn_bytes, &out.ak));
    autn[SQN_LEN..SQN_LEN + 2].copy_from_slice(&amf);
    autn[SQN_LEN + 2..].copy_from_slice(&mac);
    AuthVector {
        rand: *rand,
        kc: c3(&out.ck, &out.ik),
        xres: out.res,
        ck: out.ck,
        ik: out.ik,
        autn,
    }
}

/// The HE/AuC's handling of a synchronisation failure (TS 33.102 §6.3.5): recovers
/// SQN_MS = Conc(SQN_MS) ⊕ f5*(RAND) from AUTS and verifies MAC-S = f1*(SQN_MS || RAND ||
/// AMF*) over the RAND of the challenge the card refused. Whether to reset SQN_HE is the
/// AuC's decision; use [`next_sqn`] for the next vector.
pub fn resynchronise(
    alg: &AkaAlgorithm,
    rand: &[u8; RAND_LEN],
    auts: &[u8; AUTS_LEN],
) -> Result<u64, AkaFailure> {
    let mut conc = [0u8; SQN_LEN];
    conc.copy_from_slice(&auts[..SQN_LEN]);
    let mut mac_s = [0u8; 8];
    mac_s.copy_from_slice(&auts[SQN_LEN..]);
    let sqn_ms = xor(&conc, &alg.f5_star(rand));
    if !mac_eq(&alg.f1_star(rand, &sqn_ms, &RESYNC_AMF), &mac_s) {
        return Err(AkaFailure::MacFailure);
    }
    Ok(sqn_from_bytes(&sqn_ms))
}

/// AUTS = SQN_MS ⊕ f5*(RAND) || f1*(SQN_MS || RAND || AMF*) (TS 33.102 §6.3.3).
fn auts(alg: &AkaAlgorithm, rand: &[u8; RAND_LEN], sqn_ms: u64) -> [u8; AUTS_LEN] {
    let sqn_bytes = sqn_to_bytes(sqn_ms);
    let mut out = [0u8; AUTS_LEN];
    out[..SQN_LEN].copy_from_slice(&xor(&sqn_bytes, &alg.f5_star(rand)));
    out[SQN_LEN..].copy_from_slice(&alg.f1_star(rand, &sqn_bytes, &RESYNC_AMF));
    out
}

/// AUTN → (SQN ⊕ AK, AMF, MAC).
fn split_autn(autn: &[u8; AUTN_LEN]) -> ([u8; SQN_LEN], [u8; 2], [u8; 8]) {
    let mut conc = [0u8; SQN_LEN];
    let mut amf = [0u8; 2];
    let mut mac = [0u8; 8];
    conc.copy_from_slice(&autn[..SQN_LEN]);
    amf.copy_from_slice(&autn[SQN_LEN..SQN_LEN + 2]);
    mac.copy_from_slice(&autn[SQN_LEN + 2..]);
    (conc, amf, mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aka::ts_35_206::tests::ts35208_set;
    use proptest::prelude::*;
    use rstest::rstest;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s.replace(' ', "")).unwrap().try_into().unwrap()
    }

    fn xor_test_card() -> AkaAlgorithm {
        AkaAlgorithm::XorTest {
            k: h("00010203 04050607 08090a0b 0c0d0e0f"),
        }
    }

    fn milenage_set1() -> AkaAlgorithm {
        let v = ts35208_set(1);
        AkaAlgorithm::Milenage { k: v.k, opc: v.opc }
    }

    // Hand-derived from TS 34.108 §8.1.2 (see ts_34_108 tests): K = 000102…0f,
    // RAND = 23553cbe…bf35, SQN = 000000000020 (SEQ 1, IND 0), AMF = 8000.
    const XOR_RAND: &str = "23553cbe 9637a89d 218ae64d ae47bf35";
    const XOR_AUTN: &str = "bd9232ae9a09 8000 23543ebd92122e9a";

    #[test]
    fn xor_test_card_answers_hand_derived_res_ck_ik_kc() {
        let mut store = SqnStore::default();
        let ok = authenticate_3g(&xor_test_card(), &mut store, &h(XOR_RAND), &h(XOR_AUTN)).unwrap();
        assert_eq!(hex::encode(&ok.res), "23543ebd9232ae9a2983ec46a24ab13a");
        assert_eq!(ok.ck, h::<16>("543ebd92 32ae9a29 83ec46a2 4ab13a23"));
        assert_eq!(ok.ik, h::<16>("3ebd9232 ae9a2983 ec46a24a b13a2354"));
        assert_eq!(ok.kc, h::<8>("0529cb48 67bfaadd"));
        assert_eq!(store.highest_sqn(), 0x20);
    }

    #[test]
    fn xor_test_network_builds_hand_derived_autn() {
        let v = generate_vector(&xor_test_card(), 0x20, [0x80, 0x00], &h(XOR_RAND));
        assert_eq!(v.autn, h::<16>(XOR_AUTN));
        assert_eq!(hex::encode(&v.xres), "23543ebd9232ae9a2983ec46a24ab13a");
        assert_eq!(v.kc, h::<8>("0529cb48 67bfaadd"));
    }

    #[test]
    fn xor_test_card_answers_replay_with_hand_derived_auts() {
        let alg = xor_test_card();
        let mut store = SqnStore::default();
        authenticate_3g(&alg, &mut store, &h(XOR_RAND), &h(XOR_AUTN)).unwrap();
        let err = authenticate_3g(&alg, &mut store, &h(XOR_RAND), &h(XOR_AUTN)).unwrap_err();
        // SQN_MS = 000000000020; AK = bd9232ae9a29; MAC-S = XDOUT[0..8] ⊕ (SQN_MS || 0000).
        assert_eq!(
            err,
            AkaFailure::SyncFailure {
                auts: h("bd9232ae9a09 23543ebd9212ae9a")
            }
        );
    }

    #[test]
    fn xor_test_gsm_context_gives_hand_derived_sres_and_kc() {
        // SRES = c2(RES) = 23543ebd ⊕ 9232ae9a ⊕ 2983ec46 ⊕ a24ab13a.
        let (sres, kc) = authenticate_gsm(&xor_test_card(), &h(XOR_RAND));
        assert_eq!(sres, h::<4>("3aafcd5b"));
        assert_eq!(kc, h::<8>("0529cb48 67bfaadd"));
    }

    #[rstest]
    fn milenage_card_accepts_ts_35_208_challenge(#[values(1, 2, 3, 4, 5, 6)] set: u32) {
        let v = ts35208_set(set);
        let alg = AkaAlgorithm::Milenage { k: v.k, opc: v.opc };
        // AUTN = SQN ⊕ AK || AMF || MAC-A, from the published f5 and f1 outputs.
        let mut autn = [0u8; 16];
        autn[..6].copy_from_slice(&xor(&v.sqn, &v.f5));
        autn[6..8].copy_from_slice(&v.amf);
        autn[8..].copy_from_slice(&v.f1);
        let mut store = SqnStore::default();
        let ok = authenticate_3g(&alg, &mut store, &v.rand, &autn).unwrap();
        assert_eq!(ok.res, v.f2);
        assert_eq!(ok.ck, v.f3);
        assert_eq!(ok.ik, v.f4);
        assert_eq!(store.highest_sqn(), sqn_from_bytes(&v.sqn));
        let vector = generate_vector(&alg, sqn_from_bytes(&v.sqn), v.amf, &v.rand);
        assert_eq!(vector.autn, autn);
    }

    /// One row of `vectors/milenage/ts55205_gsm_sets1-6.csv`.
    fn ts55205_row(set: u32) -> (AkaAlgorithm, [u8; 16], [u8; 4], [u8; 8]) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vectors/milenage/ts55205_gsm_sets1-6.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let row: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[0] == set.to_string())
            .unwrap();
        let alg = AkaAlgorithm::Milenage {
            k: h(row[1]),
            opc: h(row[3]),
        };
        (alg, h(row[2]), h(row[4]), h(row[6]))
    }

    #[rstest]
    fn milenage_gsm_context_matches_ts_55_205(#[values(1, 2, 3, 4, 5, 6)] set: u32) {
        let (alg, rand, sres1, kc) = ts55205_row(set);
        assert_eq!(authenticate_gsm(&alg, &rand), (sres1, kc), "set {set}");
    }

    #[rstest]
    #[case::milenage(milenage_set1())]
    #[case::xor_test(xor_test_card())]
    fn network_vector_is_accepted_by_card(#[case] alg: AkaAlgorithm) {
        let mut store = SqnStore::default();
        let rand = h("0f0e0d0c 0b0a0908 07060504 03020100");
        for (i, sqn) in [0x20u64, 0x41, 0x42, 0x60].into_iter().enumerate() {
            let v = generate_vector(&alg, sqn, [0x80, 0x00], &rand);
            let ok = authenticate_3g(&alg, &mut store, &v.rand, &v.autn)
                .unwrap_or_else(|e| panic!("vector {i} (SQN {sqn:#x}) refused: {e}"));
            assert_eq!(ok.res, v.xres);
            assert_eq!((ok.ck, ok.ik, ok.kc), (v.ck, v.ik, v.kc));
        }
        assert_eq!(store.highest_sqn(), 0x60);
    }

    #[rstest]
    #[case::milenage(milenage_set1())]
    #[case::xor_test(xor_test_card())]
    fn replayed_autn_yields_auts_that_resynchronises_to_card_sqn(#[case] alg: AkaAlgorithm) {
        let mut store = SqnStore::default();
        let first = generate_vector(&alg, 0x1234_5620, [0x80, 0x00], &[0x11; 16]);
        authenticate_3g(&alg, &mut store, &first.rand, &first.autn).unwrap();
        let before = store.clone();

        let replay_rand = [0x22; 16];
        let stale = generate_vector(&alg, 0x20, [0x80, 0x00], &replay_rand);
        let err = authenticate_3g(&alg, &mut store, &stale.rand, &stale.autn).unwrap_err();
        let AkaFailure::SyncFailure { auts } = err else {
            panic!("expected a synchronisation failure, got {err:?}");
        };
        assert_eq!(store, before, "a refused SQN must not change the store");
        let sqn_ms = resynchronise(&alg, &replay_rand, &auts).unwrap();
        assert_eq!(sqn_ms, 0x1234_5620);

        // The network continues above SQN_MS and the card accepts again.
        let fresh = generate_vector(&alg, next_sqn(sqn_ms, 0, 5), [0x80, 0x00], &[0x33; 16]);
        authenticate_3g(&alg, &mut store, &fresh.rand, &fresh.autn).unwrap();
    }

    #[rstest]
    #[case::milenage(milenage_set1())]
    #[case::xor_test(xor_test_card())]
    fn rejects_autn_with_wrong_mac(#[case] alg: AkaAlgorithm) {
        let mut store = SqnStore::default();
        let mut v = generate_vector(&alg, 0x40, [0x80, 0x00], &[0x5a; 16]);
        v.autn[15] ^= 0x01;
        let before = store.clone();
        assert_eq!(
            authenticate_3g(&alg, &mut store, &v.rand, &v.autn),
            Err(AkaFailure::MacFailure)
        );
        assert_eq!(store, before);
    }

    #[rstest]
    #[case::milenage(milenage_set1())]
    #[case::xor_test(xor_test_card())]
    fn rejects_vector_of_another_subscriber(#[case] alg: AkaAlgorithm) {
        let other = AkaAlgorithm::Milenage {
            k: [0x77; 16],
            opc: [0x88; 16],
        };
        let v = generate_vector(&other, 0x40, [0x80, 0x00], &[0x5a; 16]);
        assert_eq!(
            authenticate_3g(&alg, &mut SqnStore::default(), &v.rand, &v.autn),
            Err(AkaFailure::MacFailure)
        );
    }

    #[test]
    fn auc_rejects_auts_with_wrong_mac_s() {
        let alg = xor_test_card();
        let mut auts: [u8; 14] = h("bd9232ae9a09 23543ebd9212ae9a");
        assert_eq!(resynchronise(&alg, &h(XOR_RAND), &auts), Ok(0x20));
        auts[13] ^= 0x40;
        assert_eq!(
            resynchronise(&alg, &h(XOR_RAND), &auts),
            Err(AkaFailure::MacFailure)
        );
    }

    #[test]
    fn ind_array_accepts_out_of_order_vectors_with_different_ind() {
        // Annex C.2.2 with 5 IND bits: SQN = SEQ << 5 | IND.
        let mut store = SqnStore::default();
        store.accept(5 << 5 | 1).unwrap();
        store.accept(3 << 5 | 2).unwrap();
        assert_eq!(
            store.accept(3 << 5 | 1),
            Err(SqnStoreError::NotFresh {
                seq: 3,
                ind: 1,
                seq_ms: 5
            })
        );
        assert_eq!(
            store.accept(5 << 5 | 1).unwrap_err().to_string(),
            "SEQ 0x5 with IND 1 is not above SEQ_MS(1) = 0x5 (Annex C.2.2): replay"
        );
        assert_eq!(store.highest_sqn(), 5 << 5 | 1);
        assert_eq!(store.seq_ms()[..3], [0, 5, 3]);
    }

    #[test]
    fn delta_refuses_too_large_jump() {
        let mut store = SqnStore::default().with_delta(Some(100));
        store.accept(100 << 5).unwrap();
        assert_eq!(
            store.accept(201 << 5),
            Err(SqnStoreError::TooFarAhead {
                seq: 201,
                highest: 100,
                delta: 100
            })
        );
        store.accept(200 << 5).unwrap();
    }

    #[test]
    fn age_limit_refuses_old_seq_even_on_unused_ind() {
        let mut store = SqnStore::default().with_age_limit(Some(10));
        store.accept(50 << 5).unwrap();
        assert_eq!(
            store.accept(40 << 5 | 3),
            Err(SqnStoreError::TooOld {
                seq: 40,
                highest: 50,
                limit: 10
            })
        );
        store.accept(41 << 5 | 3).unwrap();
    }

    #[test]
    fn sqn_store_survives_json_round_trip() {
        let mut store = SqnStore::new(2).unwrap().with_delta(Some(1 << 28));
        store.accept(7 << 2 | 3).unwrap();
        let json = serde_json::to_string(&store).unwrap();
        assert_eq!(
            json,
            r#"{"ind_bits":2,"seq_ms":[0,0,0,7],"delta":268435456,"age_limit":null}"#
        );
        assert_eq!(serde_json::from_str::<SqnStore>(&json).unwrap(), store);
    }

    #[rstest]
    #[case::array_too_short(
        r#"{"ind_bits":2,"seq_ms":[0,0,0]}"#,
        "SEQ_MS array has 3 entries, expected 2^IND = 4"
    )]
    #[case::ind_too_long(
        r#"{"ind_bits":11,"seq_ms":[]}"#,
        "IND length 11 bits is outside 0..=10"
    )]
    #[case::seq_too_large(
        r#"{"ind_bits":0,"seq_ms":[281474976710656]}"#,
        "does not fit the 48 SEQ bits"
    )]
    fn refuses_inconsistent_persisted_store(#[case] json: &str, #[case] message: &str) {
        let err = serde_json::from_str::<SqnStore>(json).unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
    }

    #[test]
    fn c2_pads_short_res_with_zeros() {
        assert_eq!(c2(&h::<8>("a54211d5 e3ba50bf")), h::<4>("46f8416a"));
        assert_eq!(c2(&h::<4>("01020304")), h::<4>("01020304"));
        assert_eq!(c2(&[]), [0; 4]);
    }

    #[test]
    fn next_sqn_increments_seq_and_sets_ind() {
        assert_eq!(next_sqn(5 << 5 | 7, 2, 5), 6 << 5 | 2);
        assert_eq!(next_sqn(0, 0, 5), 1 << 5);
        assert_eq!(next_sqn(SQN_MAX, 0, 5), 0, "SEQ wraps within 48 bits");
    }

    proptest! {
        // Model of Annex C.2.2 without Δ/L: a plain array of highest SEQ per IND.
        #[test]
        fn store_accepts_exactly_fresh_seq_and_never_decreases(
            sqns in proptest::collection::vec(0u64..(1u64 << 12), 1..60),
        ) {
            let mut store = SqnStore::default();
            let mut model = [0u64; 32];
            let mut accepted = std::collections::HashSet::new();
            for sqn in sqns {
                let before = store.seq_ms().to_vec();
                let (seq, ind) = (sqn >> 5, (sqn & 31) as usize);
                let result = store.accept(sqn);
                prop_assert_eq!(result.is_ok(), seq > model[ind]);
                if result.is_ok() {
                    model[ind] = seq;
                    prop_assert!(accepted.insert(sqn), "SQN {:#x} accepted twice", sqn);
                }
                prop_assert_eq!(store.seq_ms(), &model[..]);
                for (b, a) in before.iter().zip(store.seq_ms()) {
                    prop_assert!(a >= b);
                }
                for old in &accepted {
                    prop_assert!(store.check(*old).is_err());
                }
            }
        }

        #[test]
        fn card_auts_always_resynchronises_to_its_highest_sqn(
            k in any::<[u8; 16]>(), opc in any::<[u8; 16]>(), rand in any::<[u8; 16]>(),
            sqn in 1u64..=SQN_MAX, use_xor in any::<bool>(),
        ) {
            let alg = if use_xor { AkaAlgorithm::XorTest { k } } else { AkaAlgorithm::Milenage { k, opc } };
            let mut store = SqnStore::default();
            let v = generate_vector(&alg, sqn, [0x80, 0x00], &rand);
            let first = authenticate_3g(&alg, &mut store, &v.rand, &v.autn);
            if (sqn >> 5) == 0 {
                // SEQ 0 is never fresh: the card asks to resynchronise from SQN_MS = 0.
                let refused = matches!(first, Err(AkaFailure::SyncFailure { .. }));
                prop_assert!(refused, "SEQ 0 accepted: {:?}", first);
            } else {
                prop_assert!(first.is_ok());
            }
            let Err(AkaFailure::SyncFailure { auts }) = authenticate_3g(&alg, &mut store, &v.rand, &v.autn) else {
                return Err(TestCaseError::fail("replay was not refused with AUTS"));
            };
            prop_assert_eq!(resynchronise(&alg, &rand, &auts), Ok(store.highest_sqn()));
        }
    }
}
