//! Card definitions as data (`vectors/cards/*.toml`): identity, USIM keys, PINs and optional
//! file contents. [`CardDefinition::build`] turns one into the card's initial state; every
//! problem is reported with the field it concerns and what was expected.

use crate::aka::{AkaAlgorithm, SqnStore};
use crate::fs::{self, ArrRef, FileBody, FileSystem, FsError};
use crate::pin::{self, Pin, PinStore, Puk};
use crate::ts_31_102::{self, rules, UsimFiles, UsimState};
use crate::uicc::{CardState, DEFAULT_ATR};
use serde::Deserialize;
use thiserror::Error;

/// A card definition file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardDefinition {
    pub card: CardSection,
    pub usim: UsimSection,
    #[serde(default)]
    pub pins: PinSection,
    #[serde(default, rename = "file")]
    pub files: Vec<FileOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSection {
    /// Free text shown in logs.
    #[serde(default)]
    pub name: String,
    /// ATR in hex; the default offers T=0 and T=1.
    pub atr: Option<String>,
    /// ICCID digits (18–20), as printed on the card.
    pub iccid: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsimSection {
    /// USIM AID in hex; starts with the 3GPP RID and USIM code `A0000000871002`.
    #[serde(default = "default_usim_aid")]
    pub aid: String,
    pub imsi: String,
    pub msisdn: Option<String>,
    pub spn: Option<String>,
    #[serde(default = "default_mnc_length")]
    pub mnc_length: u8,
    pub aka: AkaSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AkaSection {
    /// `milenage` or `xor` (3GPP TS 34.108 §8.1.2 test algorithm).
    pub algorithm: String,
    pub k: String,
    pub opc: Option<String>,
    pub op: Option<String>,
    /// Highest SQN already used by the network (the card accepts anything above it).
    #[serde(default)]
    pub sqn: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinSection {
    #[serde(default = "default_pin1")]
    pub pin1: String,
    #[serde(default = "yes")]
    pub pin1_enabled: bool,
    #[serde(default = "default_puk1")]
    pub puk1: String,
    #[serde(default = "default_pin2")]
    pub pin2: String,
    #[serde(default = "default_puk2")]
    pub puk2: String,
    #[serde(default = "default_adm1")]
    pub adm1: String,
}

impl Default for PinSection {
    fn default() -> Self {
        Self {
            pin1: default_pin1(),
            pin1_enabled: true,
            puk1: default_puk1(),
            pin2: default_pin2(),
            puk2: default_puk2(),
            adm1: default_adm1(),
        }
    }
}

/// Replaces the content of one file: `content` for a transparent EF, `records` for a
/// record EF (each record in hex, exactly the record length).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOverride {
    /// FIDs from the MF, e.g. `3F00/2F05` or `ADF/6F46` (`ADF` = the USIM).
    pub path: String,
    pub content: Option<String>,
    pub records: Option<Vec<String>>,
}

fn default_usim_aid() -> String {
    // GSMA TS.48's USIM AID: 3GPP RID, USIM app code, country 'FF49', provider 'FF0589'.
    "A0000000871002FF49FF0589".into()
}
fn default_mnc_length() -> u8 {
    2
}
fn default_pin1() -> String {
    "0000".into()
}
fn default_puk1() -> String {
    "11111111".into()
}
fn default_pin2() -> String {
    "9999".into()
}
fn default_puk2() -> String {
    "22222222".into()
}
fn default_adm1() -> String {
    "55555555".into()
}
fn yes() -> bool {
    true
}

/// What is wrong with a card definition.
#[derive(Debug, Error)]
pub enum DefinitionError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("card definition is not valid TOML or has an unknown/missing field: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("field `{field}`: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
    #[error("file override `{path}`: {problem}")]
    File { path: String, problem: String },
    #[error("building the file system: {0}")]
    Fs(#[from] FsError),
}

fn field(field: &'static str, problem: impl Into<String>) -> DefinitionError {
    DefinitionError::Field {
        field,
        problem: problem.into(),
    }
}

fn hex_field<const N: usize>(name: &'static str, value: &str) -> Result<[u8; N], DefinitionError> {
    let bytes = hex::decode(value.replace(' ', "")).map_err(|e| {
        field(
            name,
            format!("expected {N} bytes of hex, got {value:?} ({e})"),
        )
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        field(
            name,
            format!("expected {N} bytes of hex, got {} bytes", b.len()),
        )
    })
}

/// PIN retry limits (TS 102 221 leaves them to the issuer; these are the usual ones).
const PIN_ATTEMPTS: u8 = 3;
const PUK_ATTEMPTS: u8 = 10;
const ADM_ATTEMPTS: u8 = 10;

/// USIM services marked available in EF.UST: 19 SPN, 21 MSISDN, 27 GSM access.
const DEFAULT_SERVICES: &[usize] = &[19, 21, ts_31_102::SERVICE_GSM_ACCESS];

/// EF.ICCID, EF.DIR, EF.PL and EF.ARR at the MF (TS 102 221 §13).
const FID_DIR: u16 = 0x2F00;
const FID_ICCID: u16 = 0x2FE2;
const FID_PL: u16 = 0x2F05;
const FID_ARR_MF: u16 = 0x2F06;
const DIR_RECORD_LEN: usize = 0x20;

impl CardDefinition {
    /// Parses a definition from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, DefinitionError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads and parses a definition file.
    pub fn load(path: &std::path::Path) -> Result<Self, DefinitionError> {
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The ATR and initial state this definition describes.
    pub fn build(&self) -> Result<(Vec<u8>, CardState), DefinitionError> {
        let atr = match &self.card.atr {
            Some(a) => hex::decode(a.replace(' ', ""))
                .map_err(|e| field("card.atr", format!("expected hex ({e})")))?,
            None => DEFAULT_ATR.to_vec(),
        };
        if !(2..=33).contains(&atr.len())
            || atr.first() != Some(&0x3B) && atr.first() != Some(&0x3F)
        {
            return Err(field(
                "card.atr",
                "expected 2 to 33 bytes starting with TS = 3B or 3F",
            ));
        }
        let iccid = &self.card.iccid;
        if !(18..=20).contains(&iccid.len()) || !iccid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field(
                "card.iccid",
                format!("expected 18 to 20 digits, got {iccid:?}"),
            ));
        }
        let usim = &self.usim;
        let aid =
            hex::decode(&usim.aid).map_err(|e| field("usim.aid", format!("expected hex ({e})")))?;
        if !(5..=16).contains(&aid.len()) {
            return Err(field(
                "usim.aid",
                format!("expected 5 to 16 bytes, got {}", aid.len()),
            ));
        }
        if ts_31_102::encode_imsi(&usim.imsi).is_none() {
            return Err(field(
                "usim.imsi",
                format!("expected 6 to 15 digits, got {:?}", usim.imsi),
            ));
        }
        if let Some(m) = &usim.msisdn {
            if ts_31_102::encode_msisdn_record(m).is_none() {
                return Err(field(
                    "usim.msisdn",
                    format!("expected up to 20 digits with an optional leading +, got {m:?}"),
                ));
            }
        }
        if !(2..=3).contains(&usim.mnc_length) {
            return Err(field("usim.mnc_length", "expected 2 or 3"));
        }

        let mut fs = FileSystem::new(ArrRef {
            arr_fid: FID_ARR_MF,
            record: rules::READ_ALWAYS,
        });
        self.build_mf_files(&mut fs, &aid)?;
        ts_31_102::build_usim(
            &mut fs,
            &UsimFiles {
                aid: &aid,
                imsi: &usim.imsi,
                msisdn: usim.msisdn.as_deref(),
                spn: usim.spn.as_deref(),
                mnc_length: usim.mnc_length,
                services: DEFAULT_SERVICES,
            },
        )?;
        for o in &self.files {
            apply_override(&mut fs, o)?;
        }
        let state = CardState {
            fs,
            pins: self.pins()?,
            usim: Some(self.usim_state()?),
        };
        Ok((atr, state))
    }

    fn build_mf_files(&self, fs: &mut FileSystem, aid: &[u8]) -> Result<(), DefinitionError> {
        let at = |record| ArrRef {
            arr_fid: FID_ARR_MF,
            record,
        };
        let arr = FileBody::LinearFixed {
            record_len: rules::RECORD_LEN,
            records: rules::records(),
        };
        fs.add(
            FileSystem::MF,
            fs::ef(FID_ARR_MF, Some(0x06), at(rules::READ_ALWAYS), arr),
        )?;
        // EF.DIR record (TS 102 221 §13.1): application template '61' with AID '4F' and label '50'.
        let template = [
            crate::tlv::encode(0x4F, aid),
            crate::tlv::encode(0x50, b"USIM"),
        ]
        .concat();
        let mut record = crate::tlv::encode(0x61, &template);
        record.resize(DIR_RECORD_LEN, 0xFF);
        let dir = FileBody::LinearFixed {
            record_len: DIR_RECORD_LEN,
            records: vec![record, vec![0xFF; DIR_RECORD_LEN]],
        };
        fs.add(
            FileSystem::MF,
            fs::ef(FID_DIR, Some(0x1E), at(rules::READ_ALWAYS), dir),
        )?;
        let iccid = ts_31_102::encode_swapped_bcd(&self.card.iccid, 10)
            .ok_or_else(|| field("card.iccid", "not BCD"))?;
        fs.add(
            FileSystem::MF,
            fs::ef(
                FID_ICCID,
                Some(0x02),
                at(rules::READ_ALWAYS),
                FileBody::Transparent(iccid),
            ),
        )?;
        // EF.PL (§13.3): preferred languages, two bytes each, here English.
        let mut pl = b"en".to_vec();
        pl.resize(10, 0xFF);
        fs.add(
            FileSystem::MF,
            fs::ef(
                FID_PL,
                Some(0x05),
                at(rules::READ_ALWAYS),
                FileBody::Transparent(pl),
            ),
        )?;
        Ok(())
    }

    fn pins(&self) -> Result<PinStore, DefinitionError> {
        let p = &self.pins;
        let digits = |name: &'static str, v: &str| {
            pin::pad(v).map_err(|_| field(name, format!("expected 4 to 8 digits, got {v:?}")))
        };
        let puk = |name, v: &str| -> Result<Option<Puk>, DefinitionError> {
            Ok(Some(Puk {
                value: digits(name, v)?,
                max_attempts: PUK_ATTEMPTS,
                attempts_left: PUK_ATTEMPTS,
            }))
        };
        let mut store = PinStore::default();
        let user = |value, enabled, puk| Pin {
            value,
            max_attempts: PIN_ATTEMPTS,
            attempts_left: PIN_ATTEMPTS,
            enabled,
            can_disable: true,
            puk,
        };
        store.insert(
            pin::KEY_PIN1,
            user(
                digits("pins.pin1", &p.pin1)?,
                p.pin1_enabled,
                puk("pins.puk1", &p.puk1)?,
            ),
        );
        store.insert(
            pin::KEY_PIN2,
            user(
                digits("pins.pin2", &p.pin2)?,
                true,
                puk("pins.puk2", &p.puk2)?,
            ),
        );
        store.insert(
            pin::KEY_ADM1,
            Pin {
                value: digits("pins.adm1", &p.adm1)?,
                max_attempts: ADM_ATTEMPTS,
                attempts_left: ADM_ATTEMPTS,
                enabled: true,
                can_disable: false,
                puk: None,
            },
        );
        Ok(store)
    }

    fn usim_state(&self) -> Result<UsimState, DefinitionError> {
        let aka = &self.usim.aka;
        let k = hex_field::<16>("usim.aka.k", &aka.k)?;
        let algorithm = match aka.algorithm.as_str() {
            "milenage" => match (&aka.opc, &aka.op) {
                (Some(opc), None) => AkaAlgorithm::Milenage {
                    k,
                    opc: hex_field("usim.aka.opc", opc)?,
                },
                (None, Some(op)) => {
                    AkaAlgorithm::milenage_from_op(k, hex_field("usim.aka.op", op)?)
                }
                _ => {
                    return Err(field(
                        "usim.aka",
                        "milenage needs exactly one of `opc` or `op`",
                    ))
                }
            },
            "xor" => AkaAlgorithm::XorTest { k },
            other => {
                return Err(field(
                    "usim.aka.algorithm",
                    format!("expected \"milenage\" or \"xor\", got {other:?}"),
                ))
            }
        };
        let mut sqn = SqnStore::default();
        if aka.sqn > 0 {
            sqn.accept(aka.sqn)
                .map_err(|e| field("usim.aka.sqn", e.to_string()))?;
        }
        Ok(UsimState { algorithm, sqn })
    }
}

fn apply_override(fs: &mut FileSystem, o: &FileOverride) -> Result<(), DefinitionError> {
    let bad = |problem: String| DefinitionError::File {
        path: o.path.clone(),
        problem,
    };
    let id = fs.find_path(&o.path).map_err(|e| bad(e.to_string()))?;
    let node = fs.node_mut(id).ok_or_else(|| bad("no such file".into()))?;
    match (&mut node.body, &o.content, &o.records) {
        (FileBody::Transparent(data), Some(hex_text), None) => {
            let new = hex::decode(hex_text.replace(' ', ""))
                .map_err(|e| bad(format!("content is not hex ({e})")))?;
            if new.len() != data.len() {
                return Err(bad(format!(
                    "content is {} bytes, the file is {} bytes",
                    new.len(),
                    data.len()
                )));
            }
            *data = new;
        }
        (
            FileBody::LinearFixed {
                record_len,
                records,
            }
            | FileBody::Cyclic {
                record_len,
                records,
            },
            None,
            Some(list),
        ) => {
            let mut new = Vec::new();
            for (i, r) in list.iter().enumerate() {
                let rec = hex::decode(r.replace(' ', ""))
                    .map_err(|e| bad(format!("record {} is not hex ({e})", i + 1)))?;
                if rec.len() != *record_len {
                    return Err(bad(format!(
                        "record {} is {} bytes, records are {record_len} bytes",
                        i + 1,
                        rec.len()
                    )));
                }
                new.push(rec);
            }
            if new.is_empty() {
                return Err(bad("records is empty".into()));
            }
            *records = new;
        }
        (FileBody::Df { .. }, _, _) => return Err(bad("is a DF; only EFs have content".into())),
        _ => {
            return Err(bad(
                "give `content` for a transparent EF or `records` for a record EF".into(),
            ))
        }
    }
    Ok(())
}
