//! The non-file PEs a card needs: `ProfileHeader` (SAIP §8.1.1), `PEHeader`, `PE-PINCodes`
//! (§8.4.1), `PE-PUKCodes` (§8.4.2) and `PE-AKAParameter` (§8.5.1), with the field tags of
//! PEDefinitions (AUTOMATIC TAGS: field n of a SEQUENCE is `[n]`).

use crate::tlv::Tlv;

use super::digits::{decode_bcd, encode_iccid_ef, ICCID_LEN};
use super::{oid_to_string, SaipError};

// PEHeader ::= SEQUENCE { mandated NULL OPTIONAL, identification UInt15 }
pub(super) const TAG_PE_HEADER: u32 = 0xA0;
const TAG_MANDATED: u32 = 0x80;
const TAG_IDENTIFICATION: u32 = 0x81;

// ProfileHeader fields.
const TAG_MAJOR_VERSION: u32 = 0x80;
const TAG_MINOR_VERSION: u32 = 0x81;
const TAG_PROFILE_TYPE: u32 = 0x82;
pub(super) const TAG_HEADER_ICCID: u32 = 0x83;
const TAG_POL: u32 = 0x84;
const TAG_MANDATORY_SERVICES: u32 = 0xA5;
const TAG_MANDATORY_GFSTE: u32 = 0xA6;
const TAG_MANDATORY_AIDS: u32 = 0xA8;
const TAG_OID: u32 = 0x06;
const TAG_SEQUENCE: u32 = 0x30;
const TAG_OCTET_STRING: u32 = 0x04;

// PE-PINCodes / PE-PUKCodes: the list sits in field [1].
const TAG_CODES: u32 = 0xA1;
const TAG_PIN_CONFIG_LIST: u32 = 0xA0;
const TAG_PIN_FILE_PATH: u32 = 0x81;
// PINConfiguration / PUKConfiguration fields.
const TAG_KEY_REFERENCE: u32 = 0x80;
const TAG_CODE_VALUE: u32 = 0x81;
const TAG_UNBLOCKING_REFERENCE: u32 = 0x82;
const TAG_PIN_ATTRIBUTES: u32 = 0x83;
const TAG_PIN_ATTEMPTS: u32 = 0x84;
const TAG_PUK_ATTEMPTS: u32 = 0x82;
/// PINConfiguration defaults: pinAttributes 7, maxNumOfAttemps-retryNumLeft 51 ('33': 3 of 3).
const DEFAULT_PIN_ATTRIBUTES: u8 = 7;
const DEFAULT_PIN_ATTEMPTS: u8 = 0x33;
/// PUKConfiguration default 170 ('AA': 10 of 10).
const DEFAULT_PUK_ATTEMPTS: u8 = 0xAA;
/// pinAttributes b1: the PIN is enabled (verification required). TS.48 ships PIN1 with '06'
/// (disabled) and PIN2/ADM with '03'; the ASN.1 default '07' is enabled.
const PIN_ATTRIBUTE_ENABLED: u8 = 0x01;

// PE-AKAParameter fields.
pub(super) const TAG_ALGO_CONFIGURATION: u32 = 0xA1;
const TAG_MAPPING_PARAMETER: u32 = 0xA0;
pub(super) const TAG_ALGO_PARAMETER: u32 = 0xA1;
const TAG_SQN_OPTIONS: u32 = 0x82;
const TAG_SQN_DELTA: u32 = 0x83;
const TAG_SQN_AGE_LIMIT: u32 = 0x84;
const TAG_SQN_INIT: u32 = 0xA5;
// AlgoParameter fields.
const TAG_ALGORITHM_ID: u32 = 0x80;
const TAG_ALGORITHM_OPTIONS: u32 = 0x81;
pub(super) const TAG_KEY: u32 = 0x82;
pub(super) const TAG_OPC: u32 = 0x83;
const TAG_ROTATION_CONSTANTS: u32 = 0x84;
const TAG_XORING_CONSTANTS: u32 = 0x85;
const TAG_AUTH_COUNTER_MAX: u32 = 0x86;
const TAG_NUMBER_OF_KECCAK: u32 = 0x87;
// MappingParameter fields.
const TAG_MAPPING_OPTIONS: u32 = 0x80;
const TAG_MAPPING_SOURCE: u32 = 0x81;

/// AlgoParameter defaults (PEDefinitions; TS 35.206 §4.1 for the Milenage constants).
const DEFAULT_ROTATION_CONSTANTS: [u8; 5] = [0x40, 0x00, 0x20, 0x40, 0x60];
const DEFAULT_SQN_OPTIONS: u8 = 0x02;
const DEFAULT_SQN_DELTA: [u8; 6] = [0x00, 0x00, 0x10, 0x00, 0x00, 0x00];
const DEFAULT_SQN_AGE_LIMIT: [u8; 6] = DEFAULT_SQN_DELTA;
const SQN_INIT_COUNT: usize = 32;
const SQN_LEN: usize = 6;

/// The ServicesList NULLs by context tag number (PEDefinitions v3.3.1 order).
const SERVICE_NAMES: [&str; 30] = [
    "contactless",
    "usim",
    "isim",
    "csim",
    "milenage",
    "tuak128",
    "cave",
    "gba-usim",
    "gba-isim",
    "mbms",
    "eap",
    "javacard",
    "multos",
    "multiple-usim",
    "multiple-isim",
    "multiple-csim",
    "tuak256",
    "usim-test-algorithm",
    "ber-tlv",
    "dfLink",
    "cat-tp",
    "get-identity",
    "profile-a-x25519",
    "profile-b-p256",
    "suciCalculatorApi",
    "dns-resolution",
    "scp11ac",
    "scp11c-authorization-mechanism",
    "s16mode",
    "eaka",
];

/// One entry of `eUICC-Mandatory-services`, by its ServicesList tag number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MandatoryService(pub u32);

impl MandatoryService {
    /// The ServicesList identifier (`usim`, `usim-test-algorithm`, …) or `unknown`.
    pub fn name(self) -> &'static str {
        usize::try_from(self.0)
            .ok()
            .and_then(|i| SERVICE_NAMES.get(i))
            .copied()
            .unwrap_or("unknown")
    }
}

/// `ProfileHeader` (SAIP §8.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileHeader {
    pub major_version: u8,
    pub minor_version: u8,
    pub profile_type: Option<String>,
    /// The ICCID digits (header form is plain BCD, 'F'-padded).
    pub iccid: String,
    /// The 10 header bytes as sent.
    pub iccid_bcd: [u8; ICCID_LEN],
    /// The same ICCID as EF.ICCID stores it (nibble-swapped, TS 102 221 §13.2).
    pub ef_iccid: [u8; ICCID_LEN],
    pub pol: Option<Vec<u8>>,
    pub mandatory_services: Vec<MandatoryService>,
    /// `eUICC-Mandatory-GFSTEList`, dotted OIDs.
    pub mandatory_gfste: Vec<String>,
    /// `eUICC-Mandatory-AIDs`: (AID, version) pairs.
    pub mandatory_aids: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One `PINConfiguration` (SAIP §8.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinCode {
    /// Index of the `pinCodes` PE in the package.
    pub pe_index: usize,
    /// The DF/ADF the PINs belong to: the directory of the file-system PE before them.
    pub context: Vec<u16>,
    /// PINKeyReferenceValue: 01..08 global PINs, 0A..0E / 8A..8E ADM, 81..88 local PINs.
    pub key_reference: u8,
    /// 8 bytes, 'FF'-padded (TS 102 221 §9.5.1).
    pub value: [u8; 8],
    pub unblocking_reference: Option<u8>,
    pub attributes: u8,
    pub max_attempts: u8,
    pub retries_left: u8,
}

impl PinCode {
    /// pinAttributes b1 (see [`PIN_ATTRIBUTE_ENABLED`]).
    pub fn enabled(&self) -> bool {
        self.attributes & PIN_ATTRIBUTE_ENABLED != 0
    }

    /// The value without 'FF' padding, as text when printable (`"0000"`).
    pub fn value_text(&self) -> String {
        code_text(&self.value)
    }
}

/// A `pinCodes` PE whose PINs are those of another DF/ADF (`filePath` alternative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinShare {
    pub pe_index: usize,
    pub context: Vec<u16>,
    /// The path of the DF/ADF whose PINs apply (FIDs, ADFs by temporary FID).
    pub shared_with: Vec<u16>,
}

/// One `PUKConfiguration` (SAIP §8.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PukCode {
    pub pe_index: usize,
    pub key_reference: u8,
    pub value: [u8; 8],
    pub max_attempts: u8,
    pub retries_left: u8,
}

impl PukCode {
    pub fn value_text(&self) -> String {
        code_text(&self.value)
    }
}

fn code_text(v: &[u8]) -> String {
    let used: Vec<u8> = v.iter().copied().take_while(|b| *b != 0xFF).collect();
    if used.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(&used).into_owned()
    } else {
        hex::encode(used)
    }
}

/// `AlgoParameter.algorithmID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AkaAlgorithm {
    /// 1: Milenage (TS 35.206).
    Milenage,
    /// 2: TUAK (TS 35.231).
    Tuak,
    /// 3: the USIM test algorithm, XOR (TS 34.108 §8.1.2).
    UsimTestAlgorithm,
    Other(u8),
}

impl AkaAlgorithm {
    pub fn from_id(id: u8) -> Self {
        match id {
            1 => Self::Milenage,
            2 => Self::Tuak,
            3 => Self::UsimTestAlgorithm,
            x => Self::Other(x),
        }
    }

    pub fn id(self) -> u8 {
        match self {
            Self::Milenage => 1,
            Self::Tuak => 2,
            Self::UsimTestAlgorithm => 3,
            Self::Other(x) => x,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Milenage => "milenage",
            Self::Tuak => "tuak",
            Self::UsimTestAlgorithm => "usim-test-algorithm",
            Self::Other(_) => "other",
        }
    }
}

/// `MappingParameter`: the NAA reuses the algorithm of another application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkaMapping {
    pub options: Vec<u8>,
    pub source_aid: Vec<u8>,
}

/// `PE-AKAParameter` (SAIP §8.5.1), defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkaParameter {
    pub pe_index: usize,
    /// The ADF the parameters belong to (the directory of the file-system PE before them).
    pub context: Vec<u16>,
    /// `None` when the PE maps to another application's algorithm.
    pub algorithm: Option<AkaAlgorithm>,
    pub algorithm_options: Option<u8>,
    pub k: Option<Vec<u8>>,
    /// OPc (Milenage) / TOPc (TUAK); ignored by the test algorithm.
    pub opc: Option<Vec<u8>>,
    pub rotation_constants: Vec<u8>,
    pub xoring_constants: Vec<u8>,
    pub auth_counter_max: Option<Vec<u8>>,
    pub number_of_keccak: u8,
    pub mapping: Option<AkaMapping>,
    pub sqn_options: u8,
    pub sqn_delta: Vec<u8>,
    pub sqn_age_limit: Vec<u8>,
    pub sqn_init: Vec<Vec<u8>>,
    /// The PE's DER.
    pub raw: Vec<u8>,
}

/// The Milenage XOR constants c1..c5 (TS 35.206 §4.1): c1 = 0, c2 = 1, c3 = 2, c4 = 4, c5 = 8.
fn default_xoring_constants() -> Vec<u8> {
    let mut v = vec![0u8; 80];
    for (i, last) in [(1usize, 1u8), (2, 2), (3, 4), (4, 8)] {
        v[i * 16 + 15] = last;
    }
    v
}

/// An unsigned DER INTEGER value (at most 8 bytes; a leading 00 is allowed).
pub(super) fn uint(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 9 || (value.len() == 9 && value[0] != 0) {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn uint_u8(value: &[u8]) -> Option<u8> {
    uint(value).and_then(|v| u8::try_from(v).ok())
}

/// `PEHeader` of a PE: (identification, mandated).
pub(super) fn pe_header(pe: &Tlv<'_>) -> (Option<u16>, bool) {
    let Some(h) = pe.find(TAG_PE_HEADER) else {
        return (None, false);
    };
    let id = h
        .find(TAG_IDENTIFICATION)
        .and_then(|t| uint(t.value))
        .and_then(|v| u16::try_from(v).ok());
    (id, h.find(TAG_MANDATED).is_some())
}

pub(super) fn parse_header(pe: &Tlv<'_>) -> Result<ProfileHeader, SaipError> {
    let field = |tag: u32, name: &'static str| {
        pe.find(tag).ok_or(SaipError::Header {
            field: name,
            reason: "absent".into(),
        })
    };
    let version = |tag: u32, name: &'static str| -> Result<u8, SaipError> {
        uint_u8(field(tag, name)?.value).ok_or(SaipError::Header {
            field: name,
            reason: "not a UInt8".into(),
        })
    };
    let major_version = version(TAG_MAJOR_VERSION, "major-version")?;
    let minor_version = version(TAG_MINOR_VERSION, "minor-version")?;
    let iccid_bcd: [u8; ICCID_LEN] =
        field(TAG_HEADER_ICCID, "iccid")?
            .value
            .try_into()
            .map_err(|_| SaipError::Header {
                field: "iccid",
                reason: format!("expected {ICCID_LEN} bytes"),
            })?;
    let iccid = decode_bcd(&iccid_bcd, "ICCID").map_err(|e| SaipError::Header {
        field: "iccid",
        reason: e.to_string(),
    })?;
    let ef_iccid = encode_iccid_ef(&iccid).map_err(|e| SaipError::Header {
        field: "iccid",
        reason: e.to_string(),
    })?;
    let profile_type = pe
        .find(TAG_PROFILE_TYPE)
        .map(|t| String::from_utf8_lossy(t.value).into_owned());
    let mandatory_services = pe
        .find(TAG_MANDATORY_SERVICES)
        .map(|l| {
            l.children()
                .map_while(Result::ok)
                .filter_map(|t| super::context_number(t.tag))
                .map(MandatoryService)
                .collect()
        })
        .unwrap_or_default();
    let mandatory_gfste = pe
        .find(TAG_MANDATORY_GFSTE)
        .map(|l| {
            l.children()
                .map_while(Result::ok)
                .filter(|t| t.tag == TAG_OID)
                .filter_map(|t| oid_to_string(t.value))
                .collect()
        })
        .unwrap_or_default();
    let mandatory_aids = pe
        .find(TAG_MANDATORY_AIDS)
        .map(|l| {
            l.children()
                .map_while(Result::ok)
                .filter(|t| t.tag == TAG_SEQUENCE)
                .filter_map(|t| Some((t.find(0x80)?.value.to_vec(), t.find(0x81)?.value.to_vec())))
                .collect()
        })
        .unwrap_or_default();
    Ok(ProfileHeader {
        major_version,
        minor_version,
        profile_type,
        iccid,
        iccid_bcd,
        ef_iccid,
        pol: pe.find(TAG_POL).map(|t| t.value.to_vec()),
        mandatory_services,
        mandatory_gfste,
        mandatory_aids,
    })
}

fn code_value(t: Option<Tlv<'_>>) -> Option<[u8; 8]> {
    t.and_then(|t| t.value.try_into().ok())
}

fn attempts(byte: u8) -> (u8, u8) {
    // "max Number of Attempts is encoded in the high nibble … Number of retry left … low nibble".
    (byte >> 4, byte & 0x0F)
}

pub(super) fn parse_pins(
    pe_index: usize,
    pe: &Tlv<'_>,
    context: &[u16],
    pins: &mut Vec<PinCode>,
    shares: &mut Vec<PinShare>,
    warnings: &mut Vec<String>,
) {
    let Some(codes) = pe.find(TAG_CODES) else {
        warnings.push(format!("PE #{pe_index} pinCodes: no pinCodes field"));
        return;
    };
    if let Some(path) = codes.find(TAG_PIN_FILE_PATH) {
        let shared_with = path
            .value
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        shares.push(PinShare {
            pe_index,
            context: context.to_vec(),
            shared_with,
        });
        return;
    }
    let Some(list) = codes.find(TAG_PIN_CONFIG_LIST) else {
        warnings.push(format!(
            "PE #{pe_index} pinCodes: neither pinconfig nor filePath"
        ));
        return;
    };
    for cfg in list.children().map_while(Result::ok) {
        let key = cfg.find(TAG_KEY_REFERENCE).and_then(|t| uint_u8(t.value));
        let value = code_value(cfg.find(TAG_CODE_VALUE));
        let (Some(key_reference), Some(value)) = (key, value) else {
            warnings.push(format!(
                "PE #{pe_index} pinCodes: PINConfiguration without keyReference or 8-byte pinValue"
            ));
            continue;
        };
        let tries = cfg
            .find(TAG_PIN_ATTEMPTS)
            .and_then(|t| uint_u8(t.value))
            .unwrap_or(DEFAULT_PIN_ATTEMPTS);
        let (max_attempts, retries_left) = attempts(tries);
        pins.push(PinCode {
            pe_index,
            context: context.to_vec(),
            key_reference,
            value,
            unblocking_reference: cfg
                .find(TAG_UNBLOCKING_REFERENCE)
                .and_then(|t| uint_u8(t.value)),
            attributes: cfg
                .find(TAG_PIN_ATTRIBUTES)
                .and_then(|t| uint_u8(t.value))
                .unwrap_or(DEFAULT_PIN_ATTRIBUTES),
            max_attempts,
            retries_left,
        });
    }
}

pub(super) fn parse_puks(
    pe_index: usize,
    pe: &Tlv<'_>,
    puks: &mut Vec<PukCode>,
    warnings: &mut Vec<String>,
) {
    let Some(list) = pe.find(TAG_CODES) else {
        warnings.push(format!("PE #{pe_index} pukCodes: no pukCodes field"));
        return;
    };
    for cfg in list.children().map_while(Result::ok) {
        let key = cfg.find(TAG_KEY_REFERENCE).and_then(|t| uint_u8(t.value));
        let value = code_value(cfg.find(TAG_CODE_VALUE));
        let (Some(key_reference), Some(value)) = (key, value) else {
            warnings.push(format!(
                "PE #{pe_index} pukCodes: PUKConfiguration without keyReference or 8-byte pukValue"
            ));
            continue;
        };
        let tries = cfg
            .find(TAG_PUK_ATTEMPTS)
            .and_then(|t| uint_u8(t.value))
            .unwrap_or(DEFAULT_PUK_ATTEMPTS);
        let (max_attempts, retries_left) = attempts(tries);
        puks.push(PukCode {
            pe_index,
            key_reference,
            value,
            max_attempts,
            retries_left,
        });
    }
}

pub(super) fn parse_aka(
    pe_index: usize,
    pe: &Tlv<'_>,
    context: &[u16],
) -> Result<AkaParameter, String> {
    let config = pe
        .find(TAG_ALGO_CONFIGURATION)
        .ok_or_else(|| format!("PE #{pe_index} akaParameter: no algoConfiguration"))?;
    let bytes = |t: Option<Tlv<'_>>| t.map(|t| t.value.to_vec());
    let mut aka = AkaParameter {
        pe_index,
        context: context.to_vec(),
        algorithm: None,
        algorithm_options: None,
        k: None,
        opc: None,
        rotation_constants: DEFAULT_ROTATION_CONSTANTS.to_vec(),
        xoring_constants: default_xoring_constants(),
        auth_counter_max: None,
        number_of_keccak: 1,
        mapping: None,
        sqn_options: pe
            .find(TAG_SQN_OPTIONS)
            .and_then(|t| t.value.first().copied())
            .unwrap_or(DEFAULT_SQN_OPTIONS),
        sqn_delta: bytes(pe.find(TAG_SQN_DELTA)).unwrap_or(DEFAULT_SQN_DELTA.to_vec()),
        sqn_age_limit: bytes(pe.find(TAG_SQN_AGE_LIMIT)).unwrap_or(DEFAULT_SQN_AGE_LIMIT.to_vec()),
        sqn_init: pe
            .find(TAG_SQN_INIT)
            .map(|l| {
                l.children()
                    .map_while(Result::ok)
                    .filter(|t| t.tag == TAG_OCTET_STRING)
                    .map(|t| t.value.to_vec())
                    .collect()
            })
            .unwrap_or_else(|| vec![vec![0; SQN_LEN]; SQN_INIT_COUNT]),
        raw: pe.raw.to_vec(),
    };
    if let Some(p) = config.find(TAG_ALGO_PARAMETER) {
        let id = p
            .find(TAG_ALGORITHM_ID)
            .and_then(|t| uint_u8(t.value))
            .ok_or_else(|| {
                format!("PE #{pe_index} akaParameter: algoParameter without algorithmID")
            })?;
        aka.algorithm = Some(AkaAlgorithm::from_id(id));
        aka.algorithm_options = p
            .find(TAG_ALGORITHM_OPTIONS)
            .and_then(|t| t.value.first().copied());
        aka.k = bytes(p.find(TAG_KEY));
        aka.opc = bytes(p.find(TAG_OPC));
        if let Some(r) = p.find(TAG_ROTATION_CONSTANTS) {
            aka.rotation_constants = r.value.to_vec();
        }
        if let Some(x) = p.find(TAG_XORING_CONSTANTS) {
            aka.xoring_constants = x.value.to_vec();
        }
        aka.auth_counter_max = bytes(p.find(TAG_AUTH_COUNTER_MAX));
        if let Some(n) = p.find(TAG_NUMBER_OF_KECCAK).and_then(|t| uint_u8(t.value)) {
            aka.number_of_keccak = n;
        }
    } else if let Some(m) = config.find(TAG_MAPPING_PARAMETER) {
        aka.mapping = Some(AkaMapping {
            options: bytes(m.find(TAG_MAPPING_OPTIONS)).unwrap_or_default(),
            source_aid: bytes(m.find(TAG_MAPPING_SOURCE)).unwrap_or_default(),
        });
    } else {
        return Err(format!(
            "PE #{pe_index} akaParameter: algoConfiguration is neither mapping nor algoParameter"
        ));
    }
    Ok(aka)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::parse_one;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn reads_pin_configuration_with_defaults() {
        // pinCodes PE: PEHeader {mandated, id 2}, [1] { pinconfig [0] { PIN1 …, ADM1 with defaults } }
        let cfg1 = h("30 13 800101 8108 30303030FFFFFFFF 820101 830106");
        let cfg2 = h("30 0D 80010A 8108 3535353535353535");
        let codes = crate::tlv::encode(0xA1, &crate::tlv::encode(0xA0, &[cfg1, cfg2].concat()));
        let der = crate::tlv::encode(0xA2, &[h("A0 05 8000 810102"), codes].concat());
        let t = parse_one(&der).unwrap();
        let (mut pins, mut shares, mut warnings) = (vec![], vec![], vec![]);
        parse_pins(3, &t, &[0x3F00], &mut pins, &mut shares, &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(pins.len(), 2);
        assert_eq!(
            (
                pins[0].key_reference,
                pins[0].value_text().as_str(),
                pins[0].enabled()
            ),
            (1, "0000", false)
        );
        assert_eq!(pins[0].unblocking_reference, Some(1));
        assert_eq!(
            (
                pins[1].key_reference,
                pins[1].attributes,
                pins[1].max_attempts,
                pins[1].retries_left
            ),
            (0x0A, 7, 3, 3)
        );
        assert!(pins[1].enabled());
        assert_eq!(pe_header(&t), (Some(2), true));
    }

    #[test]
    fn default_xoring_constants_end_in_powers_of_two() {
        let x = default_xoring_constants();
        assert_eq!((x[15], x[31], x[47], x[63], x[79]), (0, 1, 2, 4, 8));
    }

    #[test]
    fn reads_unsigned_integers_with_leading_zero() {
        assert_eq!(uint(&[0x00, 0x81]), Some(0x81));
        assert_eq!(uint_u8(&[0x01, 0x00]), None);
        assert_eq!(uint(&[]), None);
    }
}
