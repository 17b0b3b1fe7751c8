//! The FCP template returned by SELECT and STATUS (ETSI TS 102 221 §11.1.1.3).

use crate::fs::{FileBody, FileNode, FileSystem, LifeCycle, NodeId};
use crate::pin::PinStore;
use crate::tlv;

/// FCP template.
pub const TAG_FCP: u32 = 0x62;
/// File descriptor (§11.1.1.4.3).
pub const TAG_FILE_DESCRIPTOR: u32 = 0x82;
/// File identifier.
pub const TAG_FILE_ID: u32 = 0x83;
/// DF name (AID) of an ADF.
pub const TAG_DF_NAME: u32 = 0x84;
/// Proprietary information (MF: UICC characteristics).
pub const TAG_PROPRIETARY: u32 = 0xA5;
/// Life cycle status integer.
pub const TAG_LIFE_CYCLE: u32 = 0x8A;
/// Security attributes, referenced to expanded format (EF.ARR FID + record).
pub const TAG_SECURITY_REFERENCED: u32 = 0x8B;
/// PIN status template DO (§9.5.2).
pub const TAG_PIN_STATUS: u32 = 0xC6;
/// File size of an EF.
pub const TAG_FILE_SIZE: u32 = 0x80;
/// Total file size of a DF.
pub const TAG_TOTAL_SIZE: u32 = 0x81;
/// Short file identifier.
pub const TAG_SFI: u32 = 0x88;

/// File descriptor byte: shareable DF (§11.1.1.4.3 Table 11.5).
const DESC_DF: u8 = 0x78;
const DESC_TRANSPARENT: u8 = 0x41;
const DESC_LINEAR_FIXED: u8 = 0x42;
const DESC_CYCLIC: u8 = 0x46;
/// Data coding byte, always '21' for a UICC.
const DATA_CODING: u8 = 0x21;
/// UICC characteristics (§11.1.1.4.6.1): clock stop allowed, supply voltage classes.
const UICC_CHARACTERISTICS: u8 = 0x71;

/// Encodes the FCP of file `id`; the PIN status template lists `pins` for DFs.
pub fn encode(fs: &FileSystem, id: NodeId, pins: &PinStore) -> Vec<u8> {
    let Some(node) = fs.node(id) else {
        return Vec::new();
    };
    let mut body = Vec::with_capacity(48);
    body.extend(tlv::encode(TAG_FILE_DESCRIPTOR, &descriptor(node)));
    body.extend(tlv::encode(TAG_FILE_ID, &node.fid.to_be_bytes()));
    if let Some(aid) = node.aid() {
        body.extend(tlv::encode(TAG_DF_NAME, aid));
    }
    if id == FileSystem::MF {
        body.extend(tlv::encode(
            TAG_PROPRIETARY,
            &tlv::encode(0x80, &[UICC_CHARACTERISTICS]),
        ));
    }
    let lcs = match node.life_cycle {
        LifeCycle::Activated => 0x05,
        LifeCycle::Deactivated => 0x04,
    };
    body.extend(tlv::encode(TAG_LIFE_CYCLE, &[lcs]));
    let [hi, lo] = node.arr.arr_fid.to_be_bytes();
    body.extend(tlv::encode(
        TAG_SECURITY_REFERENCED,
        &[hi, lo, node.arr.record],
    ));
    let size = u16::try_from(fs.size_of(id))
        .unwrap_or(u16::MAX)
        .to_be_bytes();
    if node.is_df() {
        body.extend(tlv::encode(TAG_PIN_STATUS, &pin_status_template(pins)));
        body.extend(tlv::encode(TAG_TOTAL_SIZE, &size));
    } else {
        body.extend(tlv::encode(TAG_FILE_SIZE, &size));
        // '88 00' says "no SFI"; an absent tag would mean "SFI = low 5 bits of the FID".
        let sfi = node.sfi.map(|s| vec![s << 3]).unwrap_or_default();
        body.extend(tlv::encode(TAG_SFI, &sfi));
    }
    tlv::encode(TAG_FCP, &body)
}

fn descriptor(node: &FileNode) -> Vec<u8> {
    match &node.body {
        FileBody::Df { .. } => vec![DESC_DF, DATA_CODING],
        FileBody::Transparent(_) => vec![DESC_TRANSPARENT, DATA_CODING],
        FileBody::LinearFixed {
            record_len,
            records,
        } => record_descriptor(DESC_LINEAR_FIXED, *record_len, records.len()),
        FileBody::Cyclic {
            record_len,
            records,
        } => record_descriptor(DESC_CYCLIC, *record_len, records.len()),
    }
}

fn record_descriptor(kind: u8, record_len: usize, count: usize) -> Vec<u8> {
    let [hi, lo] = u16::try_from(record_len).unwrap_or(u16::MAX).to_be_bytes();
    vec![
        kind,
        DATA_CODING,
        hi,
        lo,
        u8::try_from(count).unwrap_or(u8::MAX),
    ]
}

/// §9.5.2: PS_DO bitmap (bit 8 = first key listed) then each key reference.
fn pin_status_template(pins: &PinStore) -> Vec<u8> {
    let keys: Vec<(u8, bool)> = pins.iter().take(8).map(|(k, p)| (k, p.enabled)).collect();
    let ps_do = keys.iter().enumerate().fold(
        0u8,
        |acc, (i, (_, enabled))| if *enabled { acc | (0x80 >> i) } else { acc },
    );
    let mut out = tlv::encode(0x90, &[ps_do]);
    for (key, _) in keys {
        out.extend(tlv::encode(0x83, &[key]));
    }
    out
}

/// What a client reads back from an FCP (used by tests and the harness).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FcpSummary {
    pub fid: Option<u16>,
    pub descriptor: Vec<u8>,
    pub aid: Option<Vec<u8>>,
    pub size: Option<usize>,
    pub life_cycle: Option<u8>,
    pub sfi: Option<Option<u8>>,
}

/// Reads the fields of an FCP template.
pub fn decode(bytes: &[u8]) -> Result<FcpSummary, tlv::TlvError> {
    let fcp = tlv::parse_one(bytes)?;
    let mut out = FcpSummary::default();
    for item in fcp.children() {
        let item = item?;
        let be = |v: &[u8]| v.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        match item.tag {
            TAG_FILE_ID => out.fid = u16::try_from(be(item.value)).ok(),
            TAG_FILE_DESCRIPTOR => out.descriptor = item.value.to_vec(),
            TAG_DF_NAME => out.aid = Some(item.value.to_vec()),
            TAG_FILE_SIZE | TAG_TOTAL_SIZE => out.size = Some(be(item.value)),
            TAG_LIFE_CYCLE => out.life_cycle = item.value.first().copied(),
            TAG_SFI => out.sfi = Some(item.value.first().map(|s| s >> 3)),
            _ => {}
        }
    }
    Ok(out)
}
