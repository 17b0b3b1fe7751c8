//! The file system a SAIP package creates: template PEs (SAIP §8.3.2–8.3.4, `File`, `Fcp`,
//! Annex A templates) and `PE-GenericFileManagement` (§8.3.5). The FCP fields follow
//! TS 102 222 §6.3 (CREATE FILE) and TS 102 221 §11.1.1.4; fill patterns TS 102 222 §6.3.2.

use crate::tlv::Tlv;

use super::templates::{self, Base, Fill, Shape, TemplateFile};
use super::{context_number, PeKind};

/// `templateID OBJECT IDENTIFIER` is field [1] of every template PE.
pub(super) const TAG_TEMPLATE_ID: u32 = 0x81;

// File ::= SEQUENCE OF CHOICE { doNotCreate, fileDescriptor, fillFileOffset, fillFileContent }
const TAG_DO_NOT_CREATE: u32 = 0x80;
const TAG_FILE_DESCRIPTOR: u32 = 0xA1;
const TAG_FILL_FILE_OFFSET: u32 = 0x82;
pub(super) const TAG_FILL_FILE_CONTENT: u32 = 0x83;

// Fcp (explicit tags, TS 102 222 §6.3).
const TAG_EF_FILE_SIZE: u32 = 0x80;
const TAG_FILE_DESCRIPTOR_BYTE: u32 = 0x82;
const TAG_FILE_ID: u32 = 0x83;
const TAG_DF_NAME: u32 = 0x84;
const TAG_PROPRIETARY: u32 = 0xA5;
const TAG_SHORT_EF_ID: u32 = 0x88;
const TAG_LCSI: u32 = 0x8A;
const TAG_SECURITY_ATTRIBUTES: u32 = 0x8B;
const TAG_PIN_STATUS_TEMPLATE: u32 = 0xC6;
const TAG_LINK_PATH: u32 = 0xC7;
// ProprietaryInfo.
const TAG_SPECIAL_FILE_INFORMATION: u32 = 0xC0;
const TAG_FILL_PATTERN: u32 = 0xC1;
const TAG_REPEAT_PATTERN: u32 = 0xC2;
const TAG_MAXIMUM_FILE_SIZE: u32 = 0x86;

// PE-GenericFileManagement: fileManagementCMD [1] SEQUENCE OF FileManagement, whose CHOICE
// alternatives carry explicit tags, so no automatic tagging there (X.680 §29.3).
const TAG_FILE_MANAGEMENT_CMD: u32 = 0xA1;
const TAG_GFM_FILE_PATH: u32 = 0x80;
const TAG_GFM_CREATE_FCP: u32 = 0x62;
const TAG_GFM_FILL_OFFSET: u32 = 0x02;
const TAG_GFM_FILL_CONTENT: u32 = 0x81;

/// TS 102 221 §8.2: the MF's FID.
pub const FID_MF: u16 = 0x3F00;
/// TS 102 221 §11.1.1.4.3 file descriptor byte: bits b6–b4 '111' with b1 '0' is a DF, with
/// b1 '1' a BER-TLV EF; otherwise b3–b1 give the EF structure. Bit b7 is "shareable".
const FD_SHAREABLE: u8 = 0x40;
const FD_DF: u8 = 0x38;
const FD_BER_TLV: u8 = 0x39;
const FD_STRUCTURE_MASK: u8 = 0x07;
const FD_TRANSPARENT: u8 = 0x01;
const FD_LINEAR_FIXED: u8 = 0x02;
const FD_CYCLIC: u8 = 0x06;
/// TS 102 221 §11.1.1.4.3: record length is one byte of meaning (coded on 2), transparent EFs
/// address 15 bits of offset; anything larger is refused rather than allocated.
const MAX_RECORD_LEN: usize = 255;
const MAX_RECORDS: usize = 254;
const MAX_EF_SIZE: usize = 0xFFFF;
/// Temporary FIDs handed to ADFs whose PE gives none (only for placing files).
const SYNTHETIC_ADF_FID: u16 = 0x7FF0;
const UNUSED: u8 = 0xFF;

/// What a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A DF (the MF is the DF with path `[3F00]`).
    Df,
    /// An ADF; its path is its temporary FID from the package.
    Adf {
        aid: Vec<u8>,
    },
    Transparent {
        size: usize,
    },
    LinearFixed {
        record_len: usize,
        records: usize,
    },
    Cyclic {
        record_len: usize,
        records: usize,
    },
    /// A BER-TLV EF (TS 102 221 §11.3); content is the concatenated TLV objects.
    BerTlv {
        max_size: Option<usize>,
    },
}

impl FileKind {
    pub fn is_ef(&self) -> bool {
        !matches!(self, Self::Df | Self::Adf { .. })
    }

    /// Short text for summaries (`transparent 9`, `linear fixed 1x24`).
    pub fn describe(&self) -> String {
        match self {
            Self::Df => "DF".into(),
            Self::Adf { aid } => format!("ADF {}", hex::encode(aid)),
            Self::Transparent { size } => format!("transparent {size}"),
            Self::LinearFixed {
                record_len,
                records,
            } => {
                format!("linear fixed {records}x{record_len}")
            }
            Self::Cyclic {
                record_len,
                records,
            } => format!("cyclic {records}x{record_len}"),
            Self::BerTlv { max_size } => match max_size {
                Some(m) => format!("BER-TLV max {m}"),
                None => "BER-TLV".into(),
            },
        }
    }
}

/// One file the package creates, in neutral form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaipFile {
    /// FIDs from the MF (`[3F00, 7F10, 6F3A]`), or from an ADF's temporary FID
    /// (`[7FD0, 6F07]`): an ADF is its own root.
    pub path: Vec<u16>,
    /// The AID of the ADF the path starts at, `None` under the MF.
    pub adf_aid: Option<Vec<u8>>,
    pub kind: FileKind,
    /// Short file identifier (TS 102 221 §8.3), `None` when the file has none.
    pub sfi: Option<u8>,
    /// The initial content: template default or fill pattern, then the PE's fill content.
    /// Records of record EFs are concatenated.
    pub content: Vec<u8>,
    /// The template's name (`EF.IMSI`), when the template or the FID tells it.
    pub name: Option<&'static str>,
    /// `securityAttributesReferenced` ('8B': EF.ARR FID + record, or record only).
    pub security_attributes: Option<Vec<u8>>,
    /// Life cycle status integer ('8A'); SAIP default '05' (operational, activated).
    pub lcsi: u8,
    /// `pinStatusTemplateDO` ('C6') of DFs/ADFs.
    pub pin_status_template: Option<Vec<u8>>,
    /// `specialFileInformation` ('C0'), e.g. '80' high update activity.
    pub special_file_information: Option<u8>,
    /// The path this file is linked to ('C7'), FIDs as in `path`.
    pub link_path: Option<Vec<u16>>,
    /// Index of the PE that created the file.
    pub pe_index: usize,
    /// Created from a "created by default" template although the PE did not list it.
    pub implicit: bool,
}

impl SaipFile {
    /// The file's own FID (the last path element).
    pub fn fid(&self) -> u16 {
        self.path.last().copied().unwrap_or(FID_MF)
    }

    /// The records of a record EF (one element for other files).
    pub fn records(&self) -> std::slice::Chunks<'_, u8> {
        match self.kind {
            FileKind::LinearFixed { record_len, .. } | FileKind::Cyclic { record_len, .. }
                if record_len > 0 =>
            {
                self.content.chunks(record_len)
            }
            _ => self.content.chunks(self.content.len().max(1)),
        }
    }
}

pub(super) fn path_text(path: &[u16]) -> String {
    path.iter()
        .map(|f| format!("{f:04X}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// ShortEFID when present: empty (no SFI) or a value. Absent, the template / FID rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SfiSpec {
    None,
    Value(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// TS 102 222: the pattern, then its last byte repeated to the end.
    Fill(Vec<u8>),
    /// TS 102 222: the pattern repeated.
    Repeat(Vec<u8>),
    Template(Fill),
}

#[derive(Debug, Default)]
struct Fcp {
    descriptor: Option<Vec<u8>>,
    fid: Option<u16>,
    df_name: Option<Vec<u8>>,
    lcsi: Option<u8>,
    security_attributes: Option<Vec<u8>>,
    size: Option<Vec<u8>>,
    pin_status_template: Option<Vec<u8>>,
    sfi: Option<SfiSpec>,
    special: Option<u8>,
    pattern: Option<Pattern>,
    max_size: Option<Vec<u8>>,
    link_path: Option<Vec<u8>>,
}

fn parse_fcp(t: &Tlv<'_>) -> Fcp {
    let mut f = Fcp::default();
    for c in t.children().map_while(Result::ok) {
        match c.tag {
            TAG_FILE_DESCRIPTOR_BYTE => f.descriptor = Some(c.value.to_vec()),
            TAG_FILE_ID => f.fid = <[u8; 2]>::try_from(c.value).ok().map(u16::from_be_bytes),
            TAG_DF_NAME => f.df_name = Some(c.value.to_vec()),
            TAG_LCSI => f.lcsi = c.value.first().copied(),
            TAG_SECURITY_ATTRIBUTES => f.security_attributes = Some(c.value.to_vec()),
            TAG_EF_FILE_SIZE => f.size = Some(c.value.to_vec()),
            TAG_PIN_STATUS_TEMPLATE => f.pin_status_template = Some(c.value.to_vec()),
            TAG_SHORT_EF_ID => {
                // SAIP: "coded from bits b8 to b4" (TS 102 221 §11.1.1.4.8).
                f.sfi = Some(
                    c.value
                        .first()
                        .map_or(SfiSpec::None, |b| SfiSpec::Value(b >> 3)),
                );
            }
            TAG_PROPRIETARY => {
                for p in c.children().map_while(Result::ok) {
                    match p.tag {
                        TAG_SPECIAL_FILE_INFORMATION => f.special = p.value.first().copied(),
                        TAG_FILL_PATTERN if !p.value.is_empty() => {
                            f.pattern = Some(Pattern::Fill(p.value.to_vec()))
                        }
                        TAG_REPEAT_PATTERN if !p.value.is_empty() => {
                            f.pattern = Some(Pattern::Repeat(p.value.to_vec()));
                        }
                        TAG_MAXIMUM_FILE_SIZE => f.max_size = Some(p.value.to_vec()),
                        _ => {}
                    }
                }
            }
            TAG_LINK_PATH => f.link_path = Some(c.value.to_vec()),
            _ => {}
        }
    }
    f
}

fn be_usize(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 4 {
        return None;
    }
    Some(v.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
}

fn fids(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EfType {
    Transparent,
    LinearFixed,
    Cyclic,
    BerTlv,
}

/// What a file resolves to after merging FCP and template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Mf,
    Df { depth: Option<u8> },
    Adf,
    Ef(EfType),
}

fn from_descriptor(d: &[u8]) -> Option<Resolved> {
    let fd = d.first()? & !FD_SHAREABLE;
    Some(match fd {
        FD_DF => Resolved::Df { depth: None },
        FD_BER_TLV => Resolved::Ef(EfType::BerTlv),
        _ => match fd & FD_STRUCTURE_MASK {
            FD_TRANSPARENT => Resolved::Ef(EfType::Transparent),
            FD_LINEAR_FIXED => Resolved::Ef(EfType::LinearFixed),
            FD_CYCLIC => Resolved::Ef(EfType::Cyclic),
            _ => return None,
        },
    })
}

fn from_shape(s: Shape) -> Resolved {
    match s {
        Shape::Mf => Resolved::Mf,
        Shape::Df { depth } => Resolved::Df { depth: Some(depth) },
        Shape::Adf => Resolved::Adf,
        Shape::Transparent { .. } => Resolved::Ef(EfType::Transparent),
        Shape::LinearFixed { .. } => Resolved::Ef(EfType::LinearFixed),
        Shape::Cyclic { .. } => Resolved::Ef(EfType::Cyclic),
        Shape::BerTlv => Resolved::Ef(EfType::BerTlv),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FillOp {
    Offset(usize),
    Content(Vec<u8>),
}

/// Builds the file list while walking the PEs in order.
#[derive(Debug, Default)]
pub(super) struct Builder {
    files: Vec<SaipFile>,
    pub(super) warnings: Vec<String>,
    /// (temporary FID, AID) of the ADFs created so far.
    adfs: Vec<(u16, Vec<u8>)>,
    last_usim: Option<Vec<u16>>,
    last_isim: Option<Vec<u16>>,
    last_csim: Option<Vec<u16>>,
    /// The directory the last file-system PE worked in.
    current: Vec<u16>,
}

/// The per-PE placement state.
struct Placement {
    /// Where a depth-0 DF of the PE goes.
    parent: Vec<u16>,
    /// The PE's own directory once known.
    base: Option<Vec<u16>>,
    /// Where EFs go now.
    dir: Vec<u16>,
}

impl Builder {
    /// The directory PIN and AKA PEs refer to.
    pub(super) fn context(&self) -> &[u16] {
        if self.current.is_empty() {
            &[FID_MF]
        } else {
            &self.current
        }
    }

    pub(super) fn finish(mut self) -> (Vec<SaipFile>, Vec<String>) {
        self.resolve_links();
        (self.files, self.warnings)
    }

    /// Linked EFs ('C7', TS 102 222 §6.3; SAIP `linkPath`) share structure and content with
    /// their target: copy them so the list is self-contained (`link_path` says it is shared).
    fn resolve_links(&mut self) {
        for i in 0..self.files.len() {
            let Some(link) = self.files.get(i).and_then(|f| f.link_path.clone()) else {
                continue;
            };
            // SAIP: an empty linkPath turns a template link file into an independent file.
            if link.is_empty() {
                continue;
            }
            let target = self.resolve_path(&link);
            let found = self
                .files
                .iter()
                .find(|f| f.path == target && f.kind.is_ef())
                .map(|t| (t.kind.clone(), t.content.clone()));
            match (found, self.files.get_mut(i)) {
                (Some((kind, content)), Some(f)) => {
                    f.kind = kind;
                    f.content = content;
                }
                (None, Some(f)) => {
                    let msg = format!(
                        "{} links to {}, which the package does not create",
                        path_text(&f.path),
                        path_text(&target)
                    );
                    self.warnings.push(msg);
                }
                _ => {}
            }
        }
    }

    fn adf_aid(&self, path: &[u16]) -> Option<Vec<u8>> {
        let first = *path.first()?;
        self.adfs
            .iter()
            .find(|(fid, _)| *fid == first)
            .map(|(_, aid)| aid.clone())
    }

    fn naa_dir(&mut self, which: Option<Vec<u16>>, pe_index: usize, naa: &str) -> Vec<u16> {
        which.unwrap_or_else(|| {
            self.warnings.push(format!("PE #{pe_index}: no {naa} ADF before it; placing its files in the current directory"));
            self.context().to_vec()
        })
    }

    pub(super) fn template_pe(
        &mut self,
        pe_index: usize,
        kind: PeKind,
        pe: &Tlv<'_>,
        template_oid: &str,
    ) {
        let layout = templates::layout(kind);
        let (parent, base) = match layout.base {
            Base::Mf | Base::AdfRoot => (Vec::new(), None),
            Base::UnderMf => (vec![FID_MF], None),
            Base::InUsim => {
                let d = self.naa_dir(self.last_usim.clone(), pe_index, "USIM");
                (d.clone(), Some(d))
            }
            Base::InIsim => {
                let d = self.naa_dir(self.last_isim.clone(), pe_index, "ISIM");
                (d.clone(), Some(d))
            }
            Base::InCsim => {
                let d = self.naa_dir(self.last_csim.clone(), pe_index, "CSIM");
                (d.clone(), Some(d))
            }
            Base::UnderUsim => (self.naa_dir(self.last_usim.clone(), pe_index, "USIM"), None),
            Base::Current => (self.context().to_vec(), None),
        };
        let dir = base.clone().unwrap_or_else(|| parent.clone());
        let mut place = Placement { parent, base, dir };
        let mut listed = Vec::new();
        for child in pe.children() {
            let child = match child {
                Ok(c) => c,
                Err(e) => {
                    self.warnings
                        .push(format!("PE #{pe_index} {}: {e}", kind.name()));
                    break;
                }
            };
            let Some(n) = context_number(child.tag).filter(|n| *n >= 2) else {
                continue;
            };
            listed.push(n);
            let tf = layout.file(n);
            self.template_file(pe_index, kind, &child, tf, template_oid, &mut place);
        }
        if layout.created_by_default {
            for tf in layout.files.iter().filter(|tf| !listed.contains(&tf.tag)) {
                self.implicit_file(pe_index, tf, template_oid, &place);
            }
        }
        let own = place.base.clone().unwrap_or(place.dir);
        match kind {
            PeKind::Usim => self.last_usim = Some(own.clone()),
            PeKind::Isim => self.last_isim = Some(own.clone()),
            PeKind::Csim => self.last_csim = Some(own.clone()),
            _ => {}
        }
        if !own.is_empty() {
            self.current = own;
        }
    }

    fn template_file(
        &mut self,
        pe_index: usize,
        kind: PeKind,
        t: &Tlv<'_>,
        tf: Option<&'static TemplateFile>,
        template_oid: &str,
        place: &mut Placement,
    ) {
        let what = || {
            format!(
                "PE #{pe_index} {} field [{}]",
                kind.name(),
                context_number(t.tag).unwrap_or(0)
            )
        };
        let mut fcp = None;
        let mut ops = Vec::new();
        let mut do_not_create = false;
        for item in t.children() {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    self.warnings.push(format!("{}: {e}", what()));
                    break;
                }
            };
            match item.tag {
                TAG_DO_NOT_CREATE => do_not_create = true,
                TAG_FILE_DESCRIPTOR if fcp.is_none() => fcp = Some(parse_fcp(&item)),
                TAG_FILL_FILE_OFFSET => {
                    match super::elements::uint(item.value).and_then(|v| usize::try_from(v).ok()) {
                        Some(n) => ops.push(FillOp::Offset(n)),
                        None => self
                            .warnings
                            .push(format!("{}: bad fillFileOffset", what())),
                    }
                }
                TAG_FILL_FILE_CONTENT => ops.push(FillOp::Content(item.value.to_vec())),
                _ => {}
            }
        }
        // SAIP `doNotCreate`: "no effect for the creation of files in the MF".
        if do_not_create && kind != PeKind::Mf {
            return;
        }
        let fcp = fcp.unwrap_or_default();
        let Some(resolved) = resolve(&fcp, tf) else {
            self.warnings.push(format!(
                "{}: neither an FCP file descriptor nor a template entry",
                what()
            ));
            return;
        };
        let fid = fcp.fid.or(tf.and_then(|t| t.fid));
        let name = tf.map(|t| t.name);
        let path = match resolved {
            Resolved::Mf => {
                let p = vec![FID_MF];
                place.base = Some(p.clone());
                place.dir = p.clone();
                p
            }
            Resolved::Adf => {
                let fid = fid.unwrap_or(SYNTHETIC_ADF_FID + self.adfs.len() as u16);
                let p = vec![fid];
                self.adfs
                    .push((fid, fcp.df_name.clone().unwrap_or_default()));
                place.base = Some(p.clone());
                place.dir = p.clone();
                p
            }
            Resolved::Df { depth } => {
                let Some(fid) = fid else {
                    self.warnings
                        .push(format!("{}: DF without a file ID", what()));
                    return;
                };
                let depth = depth.unwrap_or(u8::from(place.base.is_some()));
                let mut p = match (&place.base, depth) {
                    (Some(b), 1..) => b.clone(),
                    _ => place.parent.clone(),
                };
                p.push(fid);
                if depth == 0 || place.base.is_none() {
                    place.base = Some(p.clone());
                }
                place.dir = p.clone();
                p
            }
            Resolved::Ef(_) => {
                let Some(fid) = fid else {
                    self.warnings.push(format!(
                        "{}: EF without a file ID (template leaves it open)",
                        what()
                    ));
                    return;
                };
                let mut p = place.dir.clone();
                p.push(fid);
                p
            }
        };
        let file = self.make_file(
            pe_index,
            &fcp,
            tf,
            template_oid,
            resolved,
            path,
            name,
            &ops,
            SfiRule::Template,
        );
        if let Some(f) = file {
            self.push(f);
        }
    }

    fn implicit_file(
        &mut self,
        pe_index: usize,
        tf: &'static TemplateFile,
        template_oid: &str,
        place: &Placement,
    ) {
        // Only EFs the template fully defines (FID and size) can be created without the PE.
        let (Some(fid), Resolved::Ef(_)) = (tf.fid, from_shape(tf.shape)) else {
            return;
        };
        let sized = match tf.shape {
            Shape::Transparent { size } => size.is_some(),
            Shape::LinearFixed {
                records,
                record_len,
            }
            | Shape::Cyclic {
                records,
                record_len,
            } => records.is_some() && record_len.is_some(),
            _ => false,
        };
        if !sized {
            return;
        }
        let mut path = place.dir.clone();
        path.push(fid);
        let file = self.make_file(
            pe_index,
            &Fcp::default(),
            Some(tf),
            template_oid,
            from_shape(tf.shape),
            path,
            Some(tf.name),
            &[],
            SfiRule::Template,
        );
        if let Some(mut f) = file {
            f.implicit = true;
            self.push(f);
        }
    }

    fn push(&mut self, f: SaipFile) {
        if let Some(old) = self.files.iter_mut().find(|o| o.path == f.path) {
            self.warnings.push(format!(
                "file {} created twice; the later definition wins",
                path_text(&f.path)
            ));
            *old = f;
        } else {
            self.files.push(f);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn make_file(
        &mut self,
        pe_index: usize,
        fcp: &Fcp,
        tf: Option<&'static TemplateFile>,
        template_oid: &str,
        resolved: Resolved,
        path: Vec<u16>,
        name: Option<&'static str>,
        ops: &[FillOp],
        sfi_rule: SfiRule,
    ) -> Option<SaipFile> {
        let where_ = path_text(&path);
        let kind = match resolved {
            Resolved::Mf | Resolved::Df { .. } => FileKind::Df,
            Resolved::Adf => FileKind::Adf {
                aid: fcp.df_name.clone().unwrap_or_default(),
            },
            Resolved::Ef(ef) => self.ef_kind(ef, fcp, tf, template_oid, ops, &where_)?,
        };
        let sfi = match (kind.is_ef(), fcp.sfi) {
            (false, _) => None,
            (true, Some(SfiSpec::Value(v))) => Some(v),
            (true, Some(SfiSpec::None)) => None,
            (true, None) => match sfi_rule {
                SfiRule::Template => tf.and_then(|t| t.sfi),
                // TS 102 222 §6.3: without tag '88' the SFI is the 5 low bits of the FID.
                SfiRule::FromFid => path.last().map(|f| (f & 0x1F) as u8),
            },
        };
        let pattern = fcp
            .pattern
            .clone()
            .or_else(|| tf.and_then(|t| t.default).map(Pattern::Template));
        let content = initial_content(&kind, pattern.as_ref());
        let adf_aid = self.adf_aid(&path);
        let name = name
            .or_else(|| well_known_name(&path))
            .or_else(|| naa_ef_name(&path, adf_aid.as_deref()));
        let mut file = SaipFile {
            path,
            adf_aid,
            kind,
            sfi,
            content,
            name,
            security_attributes: fcp.security_attributes.clone(),
            lcsi: fcp.lcsi.unwrap_or(LCSI_OPERATIONAL_ACTIVATED),
            pin_status_template: fcp.pin_status_template.clone(),
            special_file_information: fcp.special,
            link_path: fcp.link_path.as_deref().map(fids),
            pe_index,
            implicit: false,
        };
        let mut cursor = 0;
        for op in ops {
            self.apply(&mut file, &mut cursor, op);
        }
        Some(file)
    }

    fn ef_kind(
        &mut self,
        ef: EfType,
        fcp: &Fcp,
        tf: Option<&'static TemplateFile>,
        template_oid: &str,
        ops: &[FillOp],
        where_: &str,
    ) -> Option<FileKind> {
        let fcp_size = match fcp.size.as_deref() {
            Some(v) => match be_usize(v) {
                Some(s) => Some(s),
                None => {
                    self.warnings
                        .push(format!("{where_}: efFileSize of {} bytes ignored", v.len()));
                    None
                }
            },
            None => None,
        };
        let shape = tf.map(|t| t.shape);
        let content_len: usize = ops.iter().fold(0, |acc, op| match op {
            FillOp::Offset(n) => acc.saturating_add(*n),
            FillOp::Content(c) => acc.saturating_add(c.len()),
        });
        let kind = match ef {
            EfType::BerTlv => {
                let max = fcp.max_size.as_deref().and_then(be_usize).or(fcp_size);
                FileKind::BerTlv { max_size: max }
            }
            EfType::Transparent => {
                let tpl = match shape {
                    Some(Shape::Transparent { size }) => tf
                        .and_then(|t| templates::size_override(template_oid, t))
                        .or(size)
                        .map(usize::from),
                    _ => None,
                };
                let size = match fcp_size.or(tpl) {
                    Some(s) => s,
                    None => {
                        // Linked files take their size from the target (resolved at the end).
                        if fcp.link_path.is_none() {
                            self.warnings.push(format!(
                                "{where_}: no efFileSize and no template size; sized to its fill content ({content_len})"
                            ));
                        }
                        content_len
                    }
                };
                if size > MAX_EF_SIZE {
                    self.warnings.push(format!(
                        "{where_}: size {size} exceeds {MAX_EF_SIZE}; file skipped"
                    ));
                    return None;
                }
                FileKind::Transparent { size }
            }
            EfType::LinearFixed | EfType::Cyclic => {
                let (tpl_records, tpl_len) = match shape {
                    Some(
                        Shape::LinearFixed {
                            records,
                            record_len,
                        }
                        | Shape::Cyclic {
                            records,
                            record_len,
                        },
                    ) => (records.map(usize::from), record_len.map(usize::from)),
                    _ => (None, None),
                };
                // TS 102 221 §11.1.1.4.3: bytes 3–4 of the descriptor are the record length.
                let fcp_len = fcp
                    .descriptor
                    .as_deref()
                    .and_then(|d| d.get(2..4))
                    .and_then(be_usize);
                let Some(record_len) = fcp_len
                    .or(tpl_len)
                    .filter(|l| (1..=MAX_RECORD_LEN).contains(l))
                else {
                    self.warnings.push(format!(
                        "{where_}: record EF without a usable record length; file skipped"
                    ));
                    return None;
                };
                let records = match fcp_size {
                    Some(s) => s / record_len,
                    None => tpl_records.unwrap_or_else(|| content_len.div_ceil(record_len).max(1)),
                };
                if records == 0 || records > MAX_RECORDS {
                    self.warnings.push(format!(
                        "{where_}: {records} records is not 1..{MAX_RECORDS}; file skipped"
                    ));
                    return None;
                }
                if ef == EfType::Cyclic {
                    FileKind::Cyclic {
                        record_len,
                        records,
                    }
                } else {
                    FileKind::LinearFixed {
                        record_len,
                        records,
                    }
                }
            }
        };
        Some(kind)
    }

    fn apply(&mut self, file: &mut SaipFile, cursor: &mut usize, op: &FillOp) {
        match op {
            FillOp::Offset(n) => *cursor = cursor.saturating_add(*n),
            FillOp::Content(c) => {
                if let FileKind::BerTlv { .. } = file.kind {
                    file.content.extend_from_slice(c);
                    return;
                }
                let end = cursor.saturating_add(c.len());
                if end > file.content.len() {
                    self.warnings.push(format!(
                        "{}: fill content ends at byte {end}, after the file's {} bytes; excess ignored",
                        path_text(&file.path),
                        file.content.len()
                    ));
                }
                let start = (*cursor).min(file.content.len());
                let stop = end.min(file.content.len());
                if let (Some(dst), Some(src)) =
                    (file.content.get_mut(start..stop), c.get(..stop - start))
                {
                    dst.copy_from_slice(src);
                }
                *cursor = end;
            }
        }
    }

    /// PE-GenericFileManagement (SAIP §8.3.5): `filePath` selects a DF (FIDs from the MF,
    /// ADFs by temporary FID; empty = MF) or an existing EF; `createFCP` creates a file in the
    /// selected DF; fill commands write into the last created or selected EF.
    pub(super) fn generic_file_management(&mut self, pe_index: usize, pe: &Tlv<'_>) {
        let Some(cmds) = pe.find(TAG_FILE_MANAGEMENT_CMD) else {
            self.warnings.push(format!(
                "PE #{pe_index} genericFileManagement: no fileManagementCMD"
            ));
            return;
        };
        for fm in cmds.children().map_while(Result::ok) {
            let mut dir = vec![FID_MF];
            let mut target: Option<usize> = None;
            let mut cursor = 0usize;
            for item in fm.children() {
                let item = match item {
                    Ok(i) => i,
                    Err(e) => {
                        self.warnings
                            .push(format!("PE #{pe_index} genericFileManagement: {e}"));
                        break;
                    }
                };
                match item.tag {
                    TAG_GFM_FILE_PATH => {
                        let p = self.resolve_path(&fids(item.value));
                        target = self
                            .files
                            .iter()
                            .position(|f| f.path == p && f.kind.is_ef());
                        cursor = 0;
                        dir = match target {
                            Some(_) => p[..p.len().saturating_sub(1)].to_vec(),
                            None => p,
                        };
                    }
                    TAG_GFM_CREATE_FCP => {
                        target = self.gfm_create(pe_index, &item, &dir);
                        cursor = 0;
                    }
                    TAG_GFM_FILL_OFFSET | TAG_GFM_FILL_CONTENT => {
                        let op = if item.tag == TAG_GFM_FILL_CONTENT {
                            FillOp::Content(item.value.to_vec())
                        } else {
                            match super::elements::uint(item.value)
                                .and_then(|v| usize::try_from(v).ok())
                            {
                                Some(n) => FillOp::Offset(n),
                                None => continue,
                            }
                        };
                        let Some(i) = target else {
                            self.warnings.push(format!(
                                "PE #{pe_index} genericFileManagement: fill without a file"
                            ));
                            continue;
                        };
                        if let Some(mut f) = self.files.get(i).cloned() {
                            self.apply(&mut f, &mut cursor, &op);
                            if let Some(slot) = self.files.get_mut(i) {
                                *slot = f;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn resolve_path(&self, p: &[u16]) -> Vec<u16> {
        match p.first() {
            None => vec![FID_MF],
            Some(&FID_MF) => p.to_vec(),
            Some(first) if self.adfs.iter().any(|(fid, _)| fid == first) => p.to_vec(),
            Some(_) => std::iter::once(FID_MF).chain(p.iter().copied()).collect(),
        }
    }

    fn gfm_create(&mut self, pe_index: usize, t: &Tlv<'_>, dir: &[u16]) -> Option<usize> {
        let fcp = parse_fcp(t);
        let resolved = match fcp.descriptor.as_deref().and_then(from_descriptor) {
            Some(Resolved::Df { .. }) if fcp.df_name.is_some() => Resolved::Adf,
            Some(r) => r,
            None => {
                self.warnings.push(format!(
                    "PE #{pe_index} genericFileManagement: createFCP without a file descriptor"
                ));
                return None;
            }
        };
        let Some(fid) = fcp.fid else {
            self.warnings.push(format!(
                "PE #{pe_index} genericFileManagement: createFCP without a file ID"
            ));
            return None;
        };
        let path = if resolved == Resolved::Adf {
            self.adfs
                .push((fid, fcp.df_name.clone().unwrap_or_default()));
            vec![fid]
        } else {
            let mut p = dir.to_vec();
            p.push(fid);
            p
        };
        let name = well_known_name(&path);
        let f = self.make_file(
            pe_index,
            &fcp,
            None,
            "",
            resolved,
            path,
            name,
            &[],
            SfiRule::FromFid,
        )?;
        let path = f.path.clone();
        self.push(f);
        self.files.iter().position(|x| x.path == path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SfiRule {
    Template,
    FromFid,
}

/// TS 102 221 §11.1.1.4.9: LCSI '05' = operational state, activated (SAIP default).
const LCSI_OPERATIONAL_ACTIVATED: u8 = 0x05;

fn resolve(fcp: &Fcp, tf: Option<&TemplateFile>) -> Option<Resolved> {
    let from_fcp = fcp.descriptor.as_deref().and_then(from_descriptor);
    let from_tpl = tf.map(|t| from_shape(t.shape));
    let r = match (from_fcp, from_tpl) {
        // The template knows MF/ADF/depth; the FCP only says "a DF".
        (
            Some(Resolved::Df { .. }) | None,
            Some(t @ (Resolved::Mf | Resolved::Adf | Resolved::Df { .. })),
        ) => t,
        (Some(f), _) => f,
        (None, Some(t)) => t,
        (None, None) if fcp.df_name.is_some() => Resolved::Adf,
        (None, None) if fcp.pin_status_template.is_some() => Resolved::Df { depth: None },
        (None, None) if fcp.size.is_some() => Resolved::Ef(EfType::Transparent),
        (None, None) => return None,
    };
    Some(match r {
        Resolved::Df { .. } if fcp.df_name.is_some() => Resolved::Adf,
        other => other,
    })
}

/// Names for files created by GenericFileManagement, from their place in the tree.
fn well_known_name(path: &[u16]) -> Option<&'static str> {
    Some(match path {
        [FID_MF, 0x2F00] => "EF.DIR",
        [FID_MF, 0x2FE2] => "EF.ICCID",
        [FID_MF, 0x2F05] => "EF.PL",
        [FID_MF, 0x2F06] => "EF.ARR",
        [FID_MF, 0x7F10] => "DF.TELECOM",
        [FID_MF, 0x7F20] => "DF.GSM",
        // DF.TELECOM EFs of TS 51.011 §10.5 (often links to the USIM's files).
        [FID_MF, 0x7F10, fid] => match fid {
            0x6F3A => "EF.ADN",
            0x6F3B => "EF.FDN",
            0x6F3C => "EF.SMS",
            0x6F3D => "EF.CCP",
            0x6F40 => "EF.MSISDN",
            0x6F42 => "EF.SMSP",
            0x6F43 => "EF.SMSS",
            0x6F44 => "EF.LND",
            0x6F47 => "EF.SMSR",
            0x6F49 => "EF.SDN",
            0x6F4A => "EF.EXT1",
            0x6F4B => "EF.EXT2",
            0x6F4C => "EF.EXT3",
            0x6F4D => "EF.BDN",
            0x6F4E => "EF.EXT4",
            _ => return None,
        },
        _ => return None,
    })
}

/// TS 101 220 Annex E: 3GPP application AIDs are RID 'A000000087' + application code
/// ('1002' USIM, '1004' ISIM).
const AID_USIM_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02];
const AID_ISIM_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04];

/// Names of EFs created directly in a USIM/ISIM ADF by GenericFileManagement, from the
/// templates of that NAA.
fn naa_ef_name(path: &[u16], adf_aid: Option<&[u8]>) -> Option<&'static str> {
    let [_, fid] = path else { return None };
    let aid = adf_aid?;
    let kinds: &[PeKind] = if aid.starts_with(&AID_USIM_PREFIX) {
        &[PeKind::Usim, PeKind::OptUsim]
    } else if aid.starts_with(&AID_ISIM_PREFIX) {
        &[PeKind::Isim, PeKind::OptIsim]
    } else {
        return None;
    };
    kinds
        .iter()
        .flat_map(|k| templates::layout(*k).files)
        .find(|f| f.fid == Some(*fid))
        .map(|f| f.name)
}

fn initial_content(kind: &FileKind, pattern: Option<&Pattern>) -> Vec<u8> {
    let (unit, count) = match kind {
        FileKind::Transparent { size } => (*size, 1),
        FileKind::LinearFixed {
            record_len,
            records,
        }
        | FileKind::Cyclic {
            record_len,
            records,
        } => (*record_len, *records),
        _ => return Vec::new(),
    };
    let one = match pattern {
        None => vec![UNUSED; unit],
        Some(Pattern::Fill(p)) => {
            let last = p.last().copied().unwrap_or(UNUSED);
            let mut v: Vec<u8> = p.iter().copied().take(unit).collect();
            v.resize(unit, last);
            v
        }
        Some(Pattern::Repeat(p)) => p.iter().copied().cycle().take(unit).collect(),
        Some(Pattern::Template(f)) => {
            let mut v: Vec<u8> = if f.fill.is_empty() {
                vec![UNUSED; unit]
            } else {
                f.fill.iter().copied().cycle().take(unit).collect()
            };
            let tail_at = unit.saturating_sub(f.tail.len());
            for (d, s) in v.iter_mut().skip(tail_at).zip(f.tail) {
                *d = *s;
            }
            for (d, s) in v.iter_mut().zip(f.head) {
                *d = *s;
            }
            v
        }
    };
    one.repeat(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::transparent_fill_pattern(FileKind::Transparent { size: 5 }, Some(Pattern::Fill(vec![0x65, 0x6E, 0xFF])), "656EFFFFFF")]
    #[case::repeat_pattern(FileKind::Transparent { size: 5 }, Some(Pattern::Repeat(vec![0x00, 0x01])), "0001000100")]
    #[case::keys_default(FileKind::Transparent { size: 4 }, Some(Pattern::Template(Fill { head: &[0x07], fill: &[0xFF], tail: &[] })), "07FFFFFF")]
    #[case::record_tail(FileKind::LinearFixed { record_len: 3, records: 2 }, Some(Pattern::Template(Fill { head: &[], fill: &[0xFF], tail: &[0x07] })), "FFFF07FFFF07")]
    #[case::no_pattern(FileKind::Cyclic { record_len: 2, records: 2 }, None, "FFFFFFFF")]
    fn fills_initial_content_per_ts_102_222(
        #[case] kind: FileKind,
        #[case] p: Option<Pattern>,
        #[case] want: &str,
    ) {
        assert_eq!(hex::encode_upper(initial_content(&kind, p.as_ref())), want);
    }

    #[rstest]
    #[case::df("78 21", Some(Resolved::Df { depth: None }))]
    #[case::transparent("41 21", Some(Resolved::Ef(EfType::Transparent)))]
    #[case::linear_fixed("42 21 00 1C", Some(Resolved::Ef(EfType::LinearFixed)))]
    #[case::cyclic("46 21 00 1A", Some(Resolved::Ef(EfType::Cyclic)))]
    #[case::ber_tlv("79 21", Some(Resolved::Ef(EfType::BerTlv)))]
    #[case::unknown("45 21", None)]
    fn reads_file_descriptor_byte(#[case] d: &str, #[case] want: Option<Resolved>) {
        assert_eq!(
            from_descriptor(&hex::decode(d.replace(' ', "")).unwrap()),
            want
        );
    }
}
