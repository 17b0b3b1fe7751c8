//! Per-subscription personalisation of a SAIP package (what an SM-DP+ does before binding a
//! profile, SGP.22 §3.1.1 "profile generation"): the header ICCID (SAIP §8.1.1), EF.ICCID
//! (TS 102 221 §13.2), EF.IMSI (TS 31.102 §4.2.2), K/OPc of `PE-AKAParameter` (SAIP §8.5.1)
//! and EF.MSISDN (TS 31.102 §4.2.26). Every other byte of the package is kept; lengths of the
//! rewritten elements and their parents are re-encoded.

use crate::tlv::{self, TlvError};

use super::digits::{encode_iccid_ef, encode_iccid_header, encode_imsi, encode_msisdn_record};
use super::elements::{
    TAG_ALGO_CONFIGURATION, TAG_ALGO_PARAMETER, TAG_HEADER_ICCID, TAG_KEY, TAG_OPC,
};
use super::fs::{FileKind, TAG_FILL_FILE_CONTENT};
use super::{decode, split_elements, PeKind, SaipError};

/// `ef-iccid` is field [4] of PE-MF, `ef-imsi` field [3] of PE-USIM, `ef-msisdn` field [7] of
/// PE-OPT-USIM (PEDefinitions, AUTOMATIC TAGS).
const TAG_MF_EF_ICCID: u32 = 0xA4;
const TAG_USIM_EF_IMSI: u32 = 0xA3;
const TAG_OPT_USIM_EF_MSISDN: u32 = 0xA7;
/// `File` items that write content: fillFileOffset [2] and fillFileContent [3].
const TAG_FILL_FILE_OFFSET: u32 = 0x82;

/// The subscription values to write into a package.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Personalisation {
    /// ICCID digits (with Luhn digit), 1..20 digits.
    pub iccid: String,
    pub imsi: Option<String>,
    pub k: Option<[u8; 16]>,
    pub opc: Option<[u8; 16]>,
    /// Digits, optionally with a leading '+' (international).
    pub msisdn: Option<String>,
}

/// Returns the package with the values of `p` written in. Fails when the package cannot be
/// decoded or lacks a place for a requested value (e.g. no `opt-usim` PE with EF.MSISDN).
pub fn personalise(der: &[u8], p: &Personalisation) -> Result<Vec<u8>, SaipError> {
    let pkg = decode(der)?;
    let header_iccid = encode_iccid_header(&p.iccid)?;
    let ef_iccid = encode_iccid_ef(&p.iccid)?;
    let imsi = p.imsi.as_deref().map(encode_imsi).transpose()?;
    let msisdn = match &p.msisdn {
        None => None,
        Some(m) => {
            let ef = pkg
                .files
                .iter()
                .find(|f| {
                    f.name == Some("EF.MSISDN")
                        && pkg
                            .elements
                            .get(f.pe_index)
                            .is_some_and(|e| e.kind == PeKind::OptUsim)
                })
                .ok_or(SaipError::Missing("EF.MSISDN in an opt-usim PE"))?;
            let FileKind::LinearFixed { record_len, .. } = ef.kind else {
                return Err(SaipError::Rewrite(format!(
                    "EF.MSISDN is {}, expected linear fixed",
                    ef.kind.describe()
                )));
            };
            Some(encode_msisdn_record(m, record_len)?)
        }
    };

    let mut wrote = Wrote::default();
    let mut out = Vec::with_capacity(der.len() + 64);
    for pe in split_elements(der)? {
        let kind = PeKind::from_tag(pe.tag);
        let new = match kind {
            PeKind::Header => {
                wrote.header = true;
                rewrite(pe.raw, &[TAG_HEADER_ICCID], &mut |_| {
                    Ok(tlv::encode(TAG_HEADER_ICCID, &header_iccid))
                })?
                .ok_or(SaipError::Missing("ProfileHeader.iccid"))?
            }
            PeKind::Mf => {
                wrote.ef_iccid = true;
                rewrite(pe.raw, &[TAG_MF_EF_ICCID], &mut |f| {
                    replace_fill(f, &ef_iccid)
                })?
                .ok_or(SaipError::Missing("ef-iccid in the mf PE"))?
            }
            PeKind::Usim if imsi.is_some() => {
                wrote.imsi = true;
                let v = imsi.as_ref().map(|v| v.to_vec()).unwrap_or_default();
                rewrite(pe.raw, &[TAG_USIM_EF_IMSI], &mut |f| replace_fill(f, &v))?
                    .ok_or(SaipError::Missing("ef-imsi in the usim PE"))?
            }
            PeKind::OptUsim if msisdn.is_some() => {
                let v = msisdn.clone().unwrap_or_default();
                match rewrite(pe.raw, &[TAG_OPT_USIM_EF_MSISDN], &mut |f| {
                    replace_fill(f, &v)
                })? {
                    Some(n) => {
                        wrote.msisdn = true;
                        n
                    }
                    None => pe.raw.to_vec(),
                }
            }
            PeKind::AkaParameter if p.k.is_some() || p.opc.is_some() => {
                let algo = [TAG_ALGO_CONFIGURATION, TAG_ALGO_PARAMETER];
                if pe
                    .find(TAG_ALGO_CONFIGURATION)
                    .and_then(|c| c.find(TAG_ALGO_PARAMETER))
                    .is_none()
                {
                    // A mappingParameter PE reuses another NAA's algorithm: nothing to write.
                    pe.raw.to_vec()
                } else {
                    let mut raw = pe.raw.to_vec();
                    for (tag, value) in [(TAG_KEY, p.k), (TAG_OPC, p.opc)] {
                        let Some(v) = value else { continue };
                        let path = [algo[0], algo[1], tag];
                        raw = rewrite(&raw, &path, &mut |_| Ok(tlv::encode(tag, &v)))?.ok_or(
                            SaipError::Missing(if tag == TAG_KEY {
                                "algoParameter.key"
                            } else {
                                "algoParameter.opc"
                            }),
                        )?;
                    }
                    wrote.aka = true;
                    raw
                }
            }
            _ => pe.raw.to_vec(),
        };
        out.extend_from_slice(&new);
    }
    if !wrote.header {
        return Err(SaipError::Missing("ProfileHeader"));
    }
    if !wrote.ef_iccid {
        return Err(SaipError::Missing("mf PE (EF.ICCID)"));
    }
    if imsi.is_some() && !wrote.imsi {
        return Err(SaipError::Missing("usim PE (EF.IMSI)"));
    }
    if msisdn.is_some() && !wrote.msisdn {
        return Err(SaipError::Missing("ef-msisdn in an opt-usim PE"));
    }
    if (p.k.is_some() || p.opc.is_some()) && !wrote.aka {
        return Err(SaipError::Missing("akaParameter PE with algoParameter"));
    }
    // The result must read back; a failure here is a bug in the rewrite, not in the input.
    decode(&out)?;
    Ok(out)
}

#[derive(Debug, Default)]
struct Wrote {
    header: bool,
    ef_iccid: bool,
    imsi: bool,
    msisdn: bool,
    aka: bool,
}

fn tlv_err(e: TlvError) -> SaipError {
    SaipError::Rewrite(e.to_string())
}

/// Produces the new encoding of an element from its old one.
type Rewriter<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, SaipError> + 'a;

/// Rebuilds the element `raw` with its descendant at `path` (first child with each tag)
/// replaced by `f(old raw)`; `None` when the path does not exist.
fn rewrite(raw: &[u8], path: &[u32], f: &mut Rewriter<'_>) -> Result<Option<Vec<u8>>, SaipError> {
    let Some((&first, rest)) = path.split_first() else {
        return f(raw).map(Some);
    };
    let t = tlv::parse_one(raw).map_err(tlv_err)?;
    let mut value = Vec::with_capacity(t.value.len() + 16);
    let mut found = false;
    for c in t.children() {
        let c = c.map_err(tlv_err)?;
        if !found && c.tag == first {
            match rewrite(c.raw, rest, f)? {
                Some(n) => value.extend_from_slice(&n),
                None => return Ok(None),
            }
            found = true;
        } else {
            value.extend_from_slice(c.raw);
        }
    }
    Ok(found.then(|| tlv::encode(t.tag, &value)))
}

/// A `File` with its fill commands replaced by one `fillFileContent` at offset 0; the FCP
/// and `doNotCreate` items stay.
fn replace_fill(file_raw: &[u8], content: &[u8]) -> Result<Vec<u8>, SaipError> {
    let t = tlv::parse_one(file_raw).map_err(tlv_err)?;
    let mut value = Vec::with_capacity(t.value.len() + content.len() + 4);
    for c in t.children() {
        let c = c.map_err(tlv_err)?;
        if c.tag != TAG_FILL_FILE_CONTENT && c.tag != TAG_FILL_FILE_OFFSET {
            value.extend_from_slice(c.raw);
        }
    }
    value.extend_from_slice(&tlv::encode(TAG_FILL_FILE_CONTENT, content));
    Ok(tlv::encode(t.tag, &value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn rewrite_re_encodes_parent_lengths() {
        // B3 { A0 {81 01 05}, A3 { A1 {83 02 6F07}, 83 01 AA } }
        let pe = h("B3 10 A0 03 810105 A3 09 A1 04 83026F07 8301AA");
        let new = rewrite(&pe, &[0xA3], &mut |f| replace_fill(f, &[1, 2, 3]))
            .unwrap()
            .unwrap();
        assert_eq!(
            hex::encode_upper(new),
            "B3 12 A0 03 810105 A3 0B A1 04 83026F07 83 03 010203".replace(' ', "")
        );
    }

    #[test]
    fn rewrite_reports_absent_path() {
        let pe = h("B3 05 A0 03 810105");
        assert_eq!(
            rewrite(&pe, &[0xA3], &mut |f| Ok(f.to_vec())).unwrap(),
            None
        );
    }
}
