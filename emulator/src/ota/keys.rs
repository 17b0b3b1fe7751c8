//! The card's OTA keys (persistent): its keysets, each with the minimum security level the
//! remote applications demand of packets using it and the replay counter of TS 102 225 §5.1.1,
//! which is checked and kept per keyset.

use super::ts_102_225::{Checksum, CipherAlgorithm, CounterMode, Keyset, MacAlgorithm, Spi, Tar};
use crate::saip::{PeKind, ProfilePackage};
use crate::tlv::{self, Tlv};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The least protection a command packet must have (the minimum security level of TS 102 226
/// §8.2.1.3.2.4 for the remote applications): a checksum at least as strong (none < RC < CC
/// < DS), ciphering if asked, and a counter mode at least as strict (none < available <
/// higher < one higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityLevel {
    pub checksum: Checksum,
    pub ciphering: bool,
    pub counter: CounterMode,
}

/// Why a security level text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("security level {0:?}: expected words joined by '+': one of none, rc, cc, ds; optionally ciphering; optionally counter, counter-higher or counter-one-higher (e.g. \"cc+ciphering\")")]
pub struct SecurityLevelError(pub String);

impl SecurityLevel {
    /// Cryptographic checksum and ciphering, any counter mode: what the public sample
    /// keysets are used with.
    pub const CC_CIPHERED: Self = Self {
        checksum: Checksum::Cc,
        ciphering: true,
        counter: CounterMode::None,
    };

    /// Whether a packet with `spi` meets this level.
    pub fn satisfied_by(&self, spi: &Spi) -> bool {
        spi.checksum >= self.checksum
            && (spi.ciphering || !self.ciphering)
            && spi.counter >= self.counter
    }

    /// The minimum security level byte of TS 102 226 §8.2.1.3.2.4, coded as the first byte of
    /// an SPI (as SAIP RFM elements carry it).
    pub fn from_spi_byte(msl: u8) -> Self {
        let spi = Spi::decode([msl, 0]).unwrap_or(Spi {
            counter: CounterMode::None,
            ciphering: true,
            checksum: Checksum::Cc,
            por: super::ts_102_225::PorRequest::None,
            por_checksum: Checksum::None,
            por_ciphered: false,
            por_via_submit: false,
        });
        Self {
            checksum: spi.checksum,
            ciphering: spi.ciphering,
            counter: spi.counter,
        }
    }

    /// Reads `cc+ciphering+counter-higher` and the like.
    pub fn parse(text: &str) -> Result<Self, SecurityLevelError> {
        let bad = || SecurityLevelError(text.into());
        let mut level = Self {
            checksum: Checksum::None,
            ciphering: false,
            counter: CounterMode::None,
        };
        for word in text.split('+').map(str::trim) {
            match word {
                "none" => level.checksum = Checksum::None,
                "rc" => level.checksum = Checksum::Rc,
                "cc" => level.checksum = Checksum::Cc,
                "ds" => level.checksum = Checksum::Ds,
                "ciphering" => level.ciphering = true,
                "counter" => level.counter = CounterMode::Available,
                "counter-higher" => level.counter = CounterMode::Higher,
                "counter-one-higher" => level.counter = CounterMode::OneHigher,
                _ => return Err(bad()),
            }
        }
        Ok(level)
    }
}

impl std::fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checksum = match self.checksum {
            Checksum::None => "none",
            Checksum::Rc => "rc",
            Checksum::Cc => "cc",
            Checksum::Ds => "ds",
        };
        write!(f, "{checksum}")?;
        if self.ciphering {
            write!(f, "+ciphering")?;
        }
        match self.counter {
            CounterMode::None => Ok(()),
            CounterMode::Available => write!(f, "+counter"),
            CounterMode::Higher => write!(f, "+counter-higher"),
            CounterMode::OneHigher => write!(f, "+counter-one-higher"),
        }
    }
}

/// One keyset as the card holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardKeyset {
    pub keys: Keyset,
    pub min_security_level: SecurityLevel,
    /// The highest counter accepted so far (TS 102 225 §5.1.1 CNTR).
    pub counter: u64,
}

/// The card's OTA keysets, and the TARs its RFM applications answer to besides their
/// standard ones (a profile's RFM instances name their own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtaKeys {
    pub keysets: Vec<CardKeyset>,
    /// Extra TARs of UICC RFM.
    #[serde(default)]
    pub uicc_rfm_tars: Vec<Tar>,
    /// Extra TARs of USIM RFM.
    #[serde(default)]
    pub usim_rfm_tars: Vec<Tar>,
}

impl OtaKeys {
    /// The keyset a packet with `kic`/`kid` uses: the one whose KID index matches, else the one
    /// whose KIc index matches.
    pub fn position(&self, kic: u8, kid: u8) -> Option<usize> {
        let (kic_index, kid_index) = (kic >> 4, kid >> 4);
        self.keysets
            .iter()
            .position(|k| k.keys.kid_index == kid_index)
            .or_else(|| {
                self.keysets
                    .iter()
                    .position(|k| k.keys.kic_index == kic_index)
            })
    }

    /// The ciphering key KIc names (by index).
    pub fn kic(&self, kic: u8) -> Option<&Keyset> {
        self.keysets
            .iter()
            .map(|k| &k.keys)
            .find(|k| k.kic_index == kic >> 4)
    }

    /// The checksum key KID names (by index).
    pub fn kid(&self, kid: u8) -> Option<&Keyset> {
        self.keysets
            .iter()
            .map(|k| &k.keys)
            .find(|k| k.kid_index == kid >> 4)
    }
}

// ---------------------------------------------------------------------------------------
// From a SAIP profile package (SIMalliance eUICC Profile Package v2.x §8.6–8.7)

/// PE-SecurityDomain: `keyList` [2].
const TAG_SD_KEY_LIST: u32 = 0xA2;
/// KeyObject fields: keyIdentifier [2], keyVersionNumber [3], keyCompontents SEQUENCE.
const TAG_KEY_IDENTIFIER: u32 = 0x82;
const TAG_KEY_VERSION: u32 = 0x83;
const TAG_SEQUENCE: u32 = 0x30;
/// Key component: keyType [0], keyData [6].
const TAG_KEY_TYPE: u32 = 0x80;
const TAG_KEY_DATA: u32 = 0x86;
/// GlobalPlatform key types (GP Card Specification Table 11-16): DES (triple DES with a 16
/// or 24-byte key), triple DES in CBC mode, AES.
const KEY_TYPE_DES: u8 = 0x80;
const KEY_TYPE_3DES_CBC: u8 = 0x82;
const KEY_TYPE_AES: u8 = 0x88;
/// Key identifiers of an SCP80 keyset (ETSI TS 102 225 §5.1.2: KIc, KID).
const KEY_ID_KIC: u8 = 0x01;
const KEY_ID_KID: u8 = 0x02;
/// PE-RFM: tarList [0] (within the RFM element, after the header), minimumSecurityLevel [1],
/// adfRFMAccess [4] (present for an ADF's RFM, e.g. the USIM's).
const TAG_RFM_TAR_LIST: u32 = 0xA0;
const TAG_RFM_MSL: u32 = 0x81;
const TAG_RFM_ADF_ACCESS: u32 = 0x30;

/// The SCP80 keysets of a profile's security domains (key version numbers 1–15 with a KIc
/// and a KID), with the minimum security level and the TARs of its RFM elements.
pub fn from_saip(pkg: &ProfilePackage) -> OtaKeys {
    let mut uicc_rfm_tars = Vec::new();
    let mut usim_rfm_tars = Vec::new();
    let mut level = None;
    for rfm in pkg.elements_of(PeKind::Rfm) {
        let Some(body) = element_body(&rfm.raw) else {
            continue;
        };
        let mut tars = Vec::new();
        let mut adf = false;
        for item in tlv::TlvIter::new(body).map_while(Result::ok) {
            match item.tag {
                TAG_RFM_TAR_LIST => tars.extend(
                    item.children()
                        .map_while(Result::ok)
                        .filter_map(|t| <[u8; 3]>::try_from(t.value).ok()),
                ),
                TAG_RFM_MSL => {
                    if let [msl] = item.value {
                        level.get_or_insert(SecurityLevel::from_spi_byte(*msl));
                    }
                }
                TAG_RFM_ADF_ACCESS => adf = true,
                _ => {}
            }
        }
        if adf {
            usim_rfm_tars.extend(tars);
        } else {
            uicc_rfm_tars.extend(tars);
        }
    }
    let level = level.unwrap_or(SecurityLevel::CC_CIPHERED);
    let mut keysets = Vec::new();
    for kvn in 1..=15u8 {
        let key = |id| {
            pkg.elements_of(PeKind::SecurityDomain)
                .filter_map(|sd| element_body(&sd.raw))
                .flat_map(key_objects)
                .find(|k| k.version == kvn && k.id == id)
        };
        let (Some(kic), Some(kid)) = (key(KEY_ID_KIC), key(KEY_ID_KID)) else {
            continue;
        };
        let Some((kic_algorithm, kid_algorithm)) = algorithms(kic.key_type, kic.data.len())
            .zip(algorithms(kid.key_type, kid.data.len()))
            .map(|((c, _), (_, m))| (c, m))
        else {
            continue;
        };
        let keys = Keyset {
            kic_index: kvn,
            kic_algorithm,
            kic: kic.data,
            kid_index: kvn,
            kid_algorithm,
            kid: kid.data,
        };
        if keys.check().is_ok() {
            keysets.push(CardKeyset {
                keys,
                min_security_level: level,
                counter: 0,
            });
        }
    }
    OtaKeys {
        keysets,
        uicc_rfm_tars,
        usim_rfm_tars,
    }
}

/// One key of a security domain's key list.
struct KeyObject {
    id: u8,
    version: u8,
    key_type: u8,
    data: Vec<u8>,
}

/// The content of a profile element (the elements inside its outer tag).
fn element_body(raw: &[u8]) -> Option<&[u8]> {
    tlv::parse_one(raw).ok().map(|t| t.value)
}

/// The KeyObjects of a PE-SecurityDomain's key list.
fn key_objects(sd: &[u8]) -> Vec<KeyObject> {
    tlv::TlvIter::new(sd)
        .map_while(Result::ok)
        .filter(|t| t.tag == TAG_SD_KEY_LIST)
        .flat_map(|list| list.children().map_while(Result::ok).collect::<Vec<_>>())
        .filter_map(|k| key_object(&k))
        .collect()
}

fn key_object(k: &Tlv<'_>) -> Option<KeyObject> {
    let byte = |tag| k.find(tag).and_then(|t| t.value.first().copied());
    let component = k
        .find(TAG_SEQUENCE)?
        .children()
        .map_while(Result::ok)
        .next()?;
    Some(KeyObject {
        id: byte(TAG_KEY_IDENTIFIER)?,
        version: byte(TAG_KEY_VERSION)?,
        key_type: component.find(TAG_KEY_TYPE)?.value.first().copied()?,
        data: component.find(TAG_KEY_DATA)?.value.to_vec(),
    })
}

/// The SCP80 algorithms a GlobalPlatform key type and length stand for.
fn algorithms(key_type: u8, len: usize) -> Option<(CipherAlgorithm, MacAlgorithm)> {
    match (key_type, len) {
        (KEY_TYPE_DES | KEY_TYPE_3DES_CBC, 16) => Some((
            CipherAlgorithm::TripleDesCbc2,
            MacAlgorithm::TripleDesCbcMac2,
        )),
        (KEY_TYPE_DES | KEY_TYPE_3DES_CBC, 24) => Some((
            CipherAlgorithm::TripleDesCbc3,
            MacAlgorithm::TripleDesCbcMac3,
        )),
        (KEY_TYPE_AES, 16 | 24 | 32) => Some((CipherAlgorithm::AesCbc, MacAlgorithm::AesCmac)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ts48(name: &str) -> ProfilePackage {
        let path = format!(
            "{}/../vectors/profiles/{name}.der",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::saip::decode(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn a_ts48_profile_brings_its_3des_and_aes_scp80_keysets_msl_and_rfm_tars() {
        let keys = from_saip(&ts48("TS48V1-A-UNIQUE"));
        let sets: Vec<(u8, CipherAlgorithm, String, MacAlgorithm, String)> = keys
            .keysets
            .iter()
            .map(|k| {
                (
                    k.keys.kic_index,
                    k.keys.kic_algorithm,
                    hex::encode(&k.keys.kic),
                    k.keys.kid_algorithm,
                    hex::encode(&k.keys.kid),
                )
            })
            .collect();
        assert_eq!(
            sets,
            [
                (
                    1,
                    CipherAlgorithm::TripleDesCbc2,
                    "66778899aabbccdd1122334455eeff10".into(),
                    MacAlgorithm::TripleDesCbcMac2,
                    "112233445566778899aabbccddeeff10".into()
                ),
                (
                    2,
                    CipherAlgorithm::AesCbc,
                    "66778899aabbccdd1122334455eeff10".into(),
                    MacAlgorithm::AesCmac,
                    "112233445566778899aabbccddeeff10".into()
                ),
            ]
        );
        assert_eq!(
            keys.keysets[0].min_security_level,
            SecurityLevel::CC_CIPHERED
        );
        assert_eq!(keys.uicc_rfm_tars, [[0xB0, 0x01, 0x20]]);
        assert_eq!(
            keys.usim_rfm_tars,
            [[0xB0, 0x01, 0x40], [0xB0, 0x01, 0x41], [0xB0, 0x01, 0x42]]
        );
    }

    #[test]
    fn a_msl_byte_reads_as_the_first_byte_of_an_spi() {
        assert_eq!(
            SecurityLevel::from_spi_byte(0x06),
            SecurityLevel::CC_CIPHERED
        );
        assert_eq!(
            SecurityLevel::from_spi_byte(0x02).to_string(),
            "cc",
            "TS.48 v4 profiles ask a CC only"
        );
        assert_eq!(
            SecurityLevel::from_spi_byte(0x16).to_string(),
            "cc+ciphering+counter-higher"
        );
    }
}
