//! SAIP profile packages: the TCA (ex-SIMalliance) "eUICC Profile Package: Interoperable Format
//! Technical Specification" v2.1 – v2.3.1 (ASN.1 module `PEDefinitions`, v3.3.1 as shipped by
//! pySim is a superset). A package is a sequence of DER `ProfileElement`s (§8.1): the header,
//! file-system PEs built from templates (§8.3, Annex A / §9), PIN/PUK (§8.4), AKA (§8.5),
//! security domains, RFM and applications (§8.6–8.8) and the end PE.
//!
//! [`decode`] turns a package into what a card needs to become that profile: header values, a
//! neutral file list (template defaults + FCPs + fill content applied), PINs, PUKs and AKA
//! parameters, while keeping every PE's exact DER so the SM-DP+ can re-emit it.
//! [`personalise`] rewrites ICCID, IMSI, K/OPc and MSISDN in a package.
//!
//! Tags: `ProfileElement` is an automatically tagged CHOICE, so each PE is a context-specific
//! constructed element `[n]` (`A0`…`BE`, then `BF1F`…); fields inside PEs are automatically
//! tagged `[0]`, `[1]`, … as well (X.680 §25.3 / §29.3, AUTOMATIC TAGS).

mod digits;
mod elements;
mod fs;
mod personalise;
mod templates;

#[cfg(test)]
mod ts48_tests;

use std::fmt::Write as _;

use thiserror::Error;

use crate::tlv::{self, TlvError, TlvIter};

pub use digits::{
    decode_bcd, decode_bcd_swapped, decode_iccid_ef, decode_imsi, decode_msisdn_record, encode_bcd,
    encode_bcd_swapped, encode_iccid_ef, encode_iccid_header, encode_imsi, encode_msisdn_record,
    luhn_check_digit, EF_IMSI_LEN, ICCID_LEN,
};
pub use elements::{
    AkaAlgorithm, AkaMapping, AkaParameter, MandatoryService, PinCode, PinShare, ProfileHeader,
    PukCode,
};
pub use fs::{FileKind, SaipFile};
pub use personalise::{personalise, Personalisation};

/// Why a profile package could not be read or rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaipError {
    #[error("SAIP: the profile package is empty; expected a DER ProfileHeader (tag A0) first")]
    Empty,
    #[error("SAIP: ProfileElement #{index} at byte {offset} is not DER: {source}")]
    Tlv {
        index: usize,
        offset: usize,
        source: TlvError,
    },
    #[error("SAIP: the first ProfileElement must be the header (tag A0), found tag {found:X}")]
    HeaderNotFirst { found: u32 },
    #[error("SAIP: ProfileHeader.{field} is missing or malformed: {reason}")]
    Header { field: &'static str, reason: String },
    #[error("SAIP: {what}: {reason}")]
    BadDigits { what: &'static str, reason: String },
    #[error("SAIP personalise: the package has no {0} to rewrite")]
    Missing(&'static str),
    #[error("SAIP personalise: {0}")]
    Rewrite(String),
}

/// The PE types of the `ProfileElement` CHOICE, by context tag number (PEDefinitions v3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeKind {
    Header,
    GenericFileManagement,
    PinCodes,
    PukCodes,
    AkaParameter,
    CdmaParameter,
    SecurityDomain,
    Rfm,
    Application,
    NonStandard,
    End,
    Mf,
    Cd,
    Telecom,
    Usim,
    OptUsim,
    Isim,
    OptIsim,
    Phonebook,
    GsmAccess,
    Csim,
    OptCsim,
    Eap,
    Df5gs,
    DfSaip,
    DfSnpn,
    Df5gProse,
    Iot,
    OptIot,
    /// Any other tag (rfu1..rfu5, later extensions, or a tag that is not context-specific).
    Unknown(u32),
}

impl PeKind {
    /// The PE type of a top-level element's tag.
    pub fn from_tag(tag: u32) -> Self {
        use PeKind::*;
        let Some(n) = context_constructed_number(tag) else {
            return Unknown(tag);
        };
        match n {
            0 => Header,
            1 => GenericFileManagement,
            2 => PinCodes,
            3 => PukCodes,
            4 => AkaParameter,
            5 => CdmaParameter,
            6 => SecurityDomain,
            7 => Rfm,
            8 => Application,
            9 => NonStandard,
            10 => End,
            16 => Mf,
            17 => Cd,
            18 => Telecom,
            19 => Usim,
            20 => OptUsim,
            21 => Isim,
            22 => OptIsim,
            23 => Phonebook,
            24 => GsmAccess,
            25 => Csim,
            26 => OptCsim,
            27 => Eap,
            28 => Df5gs,
            29 => DfSaip,
            30 => DfSnpn,
            31 => Df5gProse,
            32 => Iot,
            33 => OptIot,
            _ => Unknown(tag),
        }
    }

    /// The ASN.1 identifier of the CHOICE alternative (`opt-usim`, `akaParameter`, …).
    pub fn name(self) -> &'static str {
        use PeKind::*;
        match self {
            Header => "header",
            GenericFileManagement => "genericFileManagement",
            PinCodes => "pinCodes",
            PukCodes => "pukCodes",
            AkaParameter => "akaParameter",
            CdmaParameter => "cdmaParameter",
            SecurityDomain => "securityDomain",
            Rfm => "rfm",
            Application => "application",
            NonStandard => "nonStandard",
            End => "end",
            Mf => "mf",
            Cd => "cd",
            Telecom => "telecom",
            Usim => "usim",
            OptUsim => "opt-usim",
            Isim => "isim",
            OptIsim => "opt-isim",
            Phonebook => "phonebook",
            GsmAccess => "gsm-access",
            Csim => "csim",
            OptCsim => "opt-csim",
            Eap => "eap",
            Df5gs => "df-5gs",
            DfSaip => "df-saip",
            DfSnpn => "df-snpn",
            Df5gProse => "df-5gprose",
            Iot => "iot",
            OptIot => "opt-iot",
            Unknown(_) => "unknown",
        }
    }

    /// PEs that create files from a template (`mf` … `opt-iot`).
    pub fn is_template(self) -> bool {
        use PeKind::*;
        matches!(
            self,
            Mf | Cd
                | Telecom
                | Usim
                | OptUsim
                | Isim
                | OptIsim
                | Phonebook
                | GsmAccess
                | Csim
                | OptCsim
                | Eap
                | Df5gs
                | DfSaip
                | DfSnpn
                | Df5gProse
                | Iot
                | OptIot
        )
    }
}

/// The number of a context-specific tag `[n]` (class bits 10), as the BER-TLV walker
/// returns it (`A3` → 3, `BF1F` → 31). Constructed or primitive alike.
pub(crate) fn context_number(tag: u32) -> Option<u32> {
    match tag {
        0x80..=0xBE if tag & 0x1F != 0x1F => Some(tag & 0x1F),
        // X.690 §8.1.2.4: high tag numbers < 128 take one subsequent byte.
        0x9F1F..=0x9F7F | 0xBF1F..=0xBF7F => Some(tag & 0x7F),
        _ => None,
    }
}

fn context_constructed_number(tag: u32) -> Option<u32> {
    let first = if tag > 0xFF { tag >> 8 } else { tag };
    if first & 0x20 == 0 {
        return None;
    }
    context_number(tag)
}

/// One ProfileElement, in package order, with its exact DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileElement {
    pub kind: PeKind,
    /// The element's tag as read (e.g. `0xB3` for `usim`).
    pub tag: u32,
    /// `PEHeader.identification` (absent for the ProfileHeader, or when malformed).
    pub identification: Option<u16>,
    /// `PEHeader.mandated`: support of this PE is mandatory.
    pub mandated: bool,
    /// The template OID (dotted) of file-system PEs.
    pub template_id: Option<String>,
    /// The complete DER of the element (tag, length, value).
    pub raw: Vec<u8>,
}

/// A decoded profile package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePackage {
    pub header: ProfileHeader,
    /// Every PE in order, raw DER kept: concatenating `raw` gives the package back.
    pub elements: Vec<ProfileElement>,
    /// The files the package creates, in creation order.
    pub files: Vec<SaipFile>,
    pub pins: Vec<PinCode>,
    /// `pinCodes` PEs that share the PINs of another DF/ADF (the `filePath` alternative).
    pub pin_shares: Vec<PinShare>,
    pub puks: Vec<PukCode>,
    pub aka: Vec<AkaParameter>,
    /// Parts that could not be understood; the rest of the package was still read.
    pub warnings: Vec<String>,
}

/// Reads a profile package. Fails only when the PE sequence itself is not DER or the header is
/// unusable; anything unknown inside a PE is kept (raw) and reported in `warnings`.
pub fn decode(der: &[u8]) -> Result<ProfilePackage, SaipError> {
    let raws = split_elements(der)?;
    let first = raws.first().ok_or(SaipError::Empty)?;
    if PeKind::from_tag(first.tag) != PeKind::Header {
        return Err(SaipError::HeaderNotFirst { found: first.tag });
    }
    let header = elements::parse_header(first)?;

    let mut elements = Vec::with_capacity(raws.len());
    let mut builder = fs::Builder::default();
    let mut pins = Vec::new();
    let mut pin_shares = Vec::new();
    let mut puks = Vec::new();
    let mut aka = Vec::new();
    for (index, pe) in raws.iter().enumerate() {
        let kind = PeKind::from_tag(pe.tag);
        let (identification, mandated) = elements::pe_header(pe);
        let template_id = if kind.is_template() {
            pe.find(fs::TAG_TEMPLATE_ID)
                .and_then(|t| oid_to_string(t.value))
        } else {
            None
        };
        match kind {
            _ if kind.is_template() => {
                builder.template_pe(index, kind, pe, template_id.as_deref().unwrap_or(""))
            }
            PeKind::GenericFileManagement => builder.generic_file_management(index, pe),
            PeKind::PinCodes => {
                let context = builder.context().to_vec();
                elements::parse_pins(
                    index,
                    pe,
                    &context,
                    &mut pins,
                    &mut pin_shares,
                    &mut builder.warnings,
                );
            }
            PeKind::PukCodes => elements::parse_puks(index, pe, &mut puks, &mut builder.warnings),
            PeKind::AkaParameter => match elements::parse_aka(index, pe, builder.context()) {
                Ok(a) => aka.push(a),
                Err(w) => builder.warnings.push(w),
            },
            _ => {}
        }
        elements.push(ProfileElement {
            kind,
            tag: pe.tag,
            identification,
            mandated,
            template_id,
            raw: pe.raw.to_vec(),
        });
    }
    let (files, warnings) = builder.finish();
    Ok(ProfilePackage {
        header,
        elements,
        files,
        pins,
        pin_shares,
        puks,
        aka,
        warnings,
    })
}

pub(crate) fn split_elements(der: &[u8]) -> Result<Vec<tlv::Tlv<'_>>, SaipError> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (index, item) in TlvIter::new(der).enumerate() {
        let t = item.map_err(|source| SaipError::Tlv {
            index,
            offset,
            source,
        })?;
        offset += t.raw.len();
        out.push(t);
    }
    Ok(out)
}

/// Dotted form of a DER OBJECT IDENTIFIER value (X.690 §8.19).
pub(crate) fn oid_to_string(value: &[u8]) -> Option<String> {
    let mut arcs = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in value.iter().enumerate() {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (a, b) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                arcs.push(a);
                arcs.push(b);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i + 1 == value.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

impl ProfilePackage {
    /// The file at `path` (FIDs from the MF, or from an ADF's temporary FID).
    pub fn file(&self, path: &[u16]) -> Option<&SaipFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// The first EF called `name` (e.g. `"EF.IMSI"`) inside the ADF with `aid`, or under the
    /// MF when `aid` is `None`.
    pub fn file_named(&self, adf_aid: Option<&[u8]>, name: &str) -> Option<&SaipFile> {
        self.files
            .iter()
            .find(|f| f.name == Some(name) && f.adf_aid.as_deref() == adf_aid)
    }

    /// The ADFs the package creates, in order.
    pub fn adfs(&self) -> impl Iterator<Item = &SaipFile> {
        self.files
            .iter()
            .filter(|f| matches!(f.kind, FileKind::Adf { .. }))
    }

    /// The PEs of one type, raw DER kept (e.g. security domains, applications, RFM).
    pub fn elements_of(&self, kind: PeKind) -> impl Iterator<Item = &ProfileElement> {
        self.elements.iter().filter(move |e| e.kind == kind)
    }

    /// The IMSI of the first USIM (from its EF.IMSI), if any.
    pub fn imsi(&self) -> Option<String> {
        let adf = self.adfs().find(|f| f.name == Some("ADF.USIM"))?;
        let FileKind::Adf { aid } = &adf.kind else {
            return None;
        };
        decode_imsi(&self.file_named(Some(aid), "EF.IMSI")?.content).ok()
    }

    /// The MSISDN of the first USIM (first record of EF.MSISDN), if set.
    pub fn msisdn(&self) -> Option<String> {
        let adf = self.adfs().find(|f| f.name == Some("ADF.USIM"))?;
        let FileKind::Adf { aid } = &adf.kind else {
            return None;
        };
        let ef = self.file_named(Some(aid), "EF.MSISDN")?;
        let rec = ef.records().next()?;
        decode_msisdn_record(rec).ok().flatten()
    }

    /// A readable, stable summary: header, PE list, file tree with FIDs and sizes, credentials.
    pub fn summary(&self) -> String {
        let h = &self.header;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "SAIP {}.{} profileType {:?} ICCID {}",
            h.major_version,
            h.minor_version,
            h.profile_type.as_deref().unwrap_or("-"),
            h.iccid
        );
        let services: Vec<_> = h.mandatory_services.iter().map(|m| m.name()).collect();
        let _ = writeln!(s, "mandatory services: {}", services.join(" "));
        let _ = writeln!(s, "mandatory GFSTE: {}", h.mandatory_gfste.join(" "));
        let pes: Vec<_> = self.elements.iter().map(|e| e.kind.name()).collect();
        let _ = writeln!(s, "PEs ({}): {}", pes.len(), pes.join(" "));
        let _ = writeln!(s, "files ({}):", self.files.len());
        for f in &self.files {
            let path: Vec<_> = f.path.iter().map(|x| format!("{x:04X}")).collect();
            let sfi = f.sfi.map_or("--".to_string(), |v| format!("{v:02X}"));
            let _ = writeln!(
                s,
                "  {:<20} {:<22} sfi {} {}{}",
                path.join("/"),
                f.name.unwrap_or("?"),
                sfi,
                f.kind.describe(),
                if f.implicit {
                    " (template default)"
                } else {
                    ""
                }
            );
        }
        for p in &self.pins {
            let _ = writeln!(
                s,
                "PIN {:02X} {:?} attributes {:02X} ({}) attempts {}/{} unblock {} in {}",
                p.key_reference,
                p.value_text(),
                p.attributes,
                if p.enabled() { "enabled" } else { "disabled" },
                p.retries_left,
                p.max_attempts,
                p.unblocking_reference
                    .map_or("--".to_string(), |r| format!("{r:02X}")),
                fs::path_text(&p.context)
            );
        }
        for p in &self.puks {
            let _ = writeln!(
                s,
                "PUK {:02X} {:?} attempts {}/{}",
                p.key_reference,
                p.value_text(),
                p.retries_left,
                p.max_attempts
            );
        }
        for a in &self.aka {
            let _ = writeln!(
                s,
                "AKA {} in {} K {} OPc {}",
                a.algorithm.map_or("mapping", |x| x.name()),
                fs::path_text(&a.context),
                a.k.as_deref().map_or("-".to_string(), hex::encode),
                a.opc.as_deref().map_or("-".to_string(), hex::encode)
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::header(0xA0, PeKind::Header)]
    #[case::usim(0xB3, PeKind::Usim)]
    #[case::df_5gs(0xBC, PeKind::Df5gs)]
    #[case::df_5gprose(0xBF1F, PeKind::Df5gProse)]
    #[case::iot(0xBF20, PeKind::Iot)]
    #[case::primitive_is_unknown(0x80, PeKind::Unknown(0x80))]
    #[case::universal_is_unknown(0x30, PeKind::Unknown(0x30))]
    fn maps_choice_tags_to_pe_kinds(#[case] tag: u32, #[case] kind: PeKind) {
        assert_eq!(PeKind::from_tag(tag), kind);
    }

    #[rstest]
    #[case::saip_mf("67 81 0F 01 02 01", Some("2.23.143.1.2.1"))]
    #[case::usim_v2("67 81 0F 01 02 04 02", Some("2.23.143.1.2.4.2"))]
    #[case::truncated("67 81", None)]
    #[case::empty("", None)]
    fn reads_object_identifiers(#[case] hex_in: &str, #[case] dotted: Option<&str>) {
        let v = hex::decode(hex_in.replace(' ', "")).unwrap();
        assert_eq!(oid_to_string(&v).as_deref(), dotted);
    }

    #[rstest]
    #[case::empty(&[], SaipError::Empty)]
    #[case::not_header(&[0xB0, 0x00], SaipError::HeaderNotFirst { found: 0xB0 })]
    fn rejects_packages_without_header(#[case] der: &[u8], #[case] err: SaipError) {
        assert_eq!(decode(der).unwrap_err(), err);
    }
}
