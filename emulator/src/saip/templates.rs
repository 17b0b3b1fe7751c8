//! The file-structure templates of the TCA eUICC Profile Package specification (v2.3.1 Annex A /
//! §9, "File Structure Templates Definition"), transcribed as facts: for each file-system PE, the
//! ASN.1 field (by its automatic context tag number) → FID, structure, size, SFI, default content.
//!
//! The ASN.1 field order of a PE (PE_Definitions) fixes the layout; the template OID only
//! refines sizes (e.g. EF.UST 14 → 17 bytes in `2.4.2`), so the tables are keyed by PE type.
//! A profile's own FCP (`fileDescriptor`) always wins over these values; they fill the gaps
//! (TS.48 profiles omit e.g. the size of EF.IMSI and the MF's FID). FIDs follow TS 102 221,
//! TS 31.102 and TS 31.103; files whose FID the template leaves open ("any of a range", e.g.
//! the phonebook's EF.ADN) have none here and need one in the PE.

use super::PeKind;

/// How the template shapes a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// The MF itself (`3F00`).
    Mf,
    /// A DF; depth 0 is the PE's own directory, depth 1 a child of it.
    Df {
        depth: u8,
    },
    /// An ADF; its FID is the temporary file ID from the PE.
    Adf,
    Transparent {
        size: Option<u16>,
    },
    LinearFixed {
        records: Option<u8>,
        record_len: Option<u8>,
    },
    Cyclic {
        records: Option<u8>,
        record_len: Option<u8>,
    },
    BerTlv,
}

/// A default content "head, then `fill` repeated, then tail", applied to the whole file of a
/// transparent EF and to each record of a record EF (Annex A writes it as e.g. `07FF...FF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fill {
    pub head: &'static [u8],
    pub fill: &'static [u8],
    pub tail: &'static [u8],
}

#[derive(Debug, Clone, Copy)]
pub(super) struct TemplateFile {
    /// The context tag number of the PE field (e.g. 3 for `ef-imsi` `[3]` in PE-USIM).
    pub tag: u32,
    pub name: &'static str,
    pub fid: Option<u16>,
    pub shape: Shape,
    pub sfi: Option<u8>,
    pub default: Option<Fill>,
}

/// Where the PE's files hang in the file tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    /// The PE's first file is the MF.
    Mf,
    /// The PE's first file is a DF directly under the MF.
    UnderMf,
    /// The PE's first file is an ADF (its own root).
    AdfRoot,
    /// EFs directly in the ADF of the last USIM / ISIM / CSIM PE.
    InUsim,
    InIsim,
    InCsim,
    /// The PE's first file is a DF under the ADF of the last USIM PE.
    UnderUsim,
    /// Whatever directory the previous file-system PE left current.
    Current,
}

#[derive(Debug)]
pub(super) struct Layout {
    pub base: Base,
    /// "Created by default" templates (MF, ADF USIM, ADF ISIM): files of the template that the
    /// PE does not list are still created with their default values (SAIP §8.3.2).
    pub created_by_default: bool,
    pub files: &'static [TemplateFile],
}

impl Layout {
    pub(super) fn file(&self, tag: u32) -> Option<&'static TemplateFile> {
        self.files.iter().find(|f| f.tag == tag)
    }
}

const FF: Option<Fill> = Some(Fill {
    head: &[],
    fill: &[0xFF],
    tail: &[],
});
const ZERO: Option<Fill> = Some(Fill {
    head: &[],
    fill: &[0x00],
    tail: &[],
});
/// TS 31.102 §4.2.5: an unused PLMN/access-technology entry is `FFFFFF 0000`.
const PLMN_WACT: Option<Fill> = Some(Fill {
    head: &[],
    fill: &[0xFF, 0xFF, 0xFF, 0x00, 0x00],
    tail: &[],
});
const fn head(head: &'static [u8]) -> Option<Fill> {
    Some(Fill {
        head,
        fill: &[0xFF],
        tail: &[],
    })
}
const fn tail(tail: &'static [u8]) -> Option<Fill> {
    Some(Fill {
        head: &[],
        fill: &[0xFF],
        tail,
    })
}
const NO: Option<u8> = None;
const fn s(sfi: u8) -> Option<u8> {
    Some(sfi)
}

const fn tr(
    tag: u32,
    name: &'static str,
    fid: u16,
    size: u16,
    sfi: Option<u8>,
    default: Option<Fill>,
) -> TemplateFile {
    TemplateFile {
        tag,
        name,
        fid: Some(fid),
        shape: Shape::Transparent { size: Some(size) },
        sfi,
        default,
    }
}
/// Transparent EF whose size the PE must give.
const fn trv(
    tag: u32,
    name: &'static str,
    fid: Option<u16>,
    sfi: Option<u8>,
    default: Option<Fill>,
) -> TemplateFile {
    TemplateFile {
        tag,
        name,
        fid,
        shape: Shape::Transparent { size: None },
        sfi,
        default,
    }
}
const fn lf(
    tag: u32,
    name: &'static str,
    fid: Option<u16>,
    records: Option<u8>,
    record_len: Option<u8>,
    sfi: Option<u8>,
    default: Option<Fill>,
) -> TemplateFile {
    TemplateFile {
        tag,
        name,
        fid,
        shape: Shape::LinearFixed {
            records,
            record_len,
        },
        sfi,
        default,
    }
}
const fn cy(
    tag: u32,
    name: &'static str,
    fid: u16,
    records: Option<u8>,
    record_len: u8,
    sfi: Option<u8>,
    default: Option<Fill>,
) -> TemplateFile {
    TemplateFile {
        tag,
        name,
        fid: Some(fid),
        shape: Shape::Cyclic {
            records,
            record_len: Some(record_len),
        },
        sfi,
        default,
    }
}
const fn bt(tag: u32, name: &'static str, fid: u16, sfi: Option<u8>) -> TemplateFile {
    TemplateFile {
        tag,
        name,
        fid: Some(fid),
        shape: Shape::BerTlv,
        sfi,
        default: None,
    }
}
const fn df(tag: u32, name: &'static str, fid: Option<u16>, depth: u8) -> TemplateFile {
    TemplateFile {
        tag,
        name,
        fid,
        shape: Shape::Df { depth },
        sfi: None,
        default: None,
    }
}
const fn adf(tag: u32, name: &'static str) -> TemplateFile {
    TemplateFile {
        tag,
        name,
        fid: None,
        shape: Shape::Adf,
        sfi: None,
        default: None,
    }
}
const fn f(fid: u16) -> Option<u16> {
    Some(fid)
}
const fn n(v: u8) -> Option<u8> {
    Some(v)
}

/// SAIP §9.2, PE-MF (OID 2.23.143.1.2.1). SFIs per TS 102 221 §13.
static MF: [TemplateFile; 6] = [
    TemplateFile {
        tag: 2,
        name: "MF",
        fid: Some(0x3F00),
        shape: Shape::Mf,
        sfi: None,
        default: None,
    },
    tr(3, "EF.PL", 0x2F05, 2, s(0x05), FF),
    tr(4, "EF.ICCID", 0x2FE2, 10, s(0x02), None),
    lf(5, "EF.DIR", f(0x2F00), None, None, s(0x1E), None),
    lf(6, "EF.ARR", f(0x2F06), None, None, s(0x06), None),
    tr(7, "EF.UMPC", 0x2F08, 5, s(0x08), None),
];

/// SAIP §9.3, PE-CD (2.2).
static CD: [TemplateFile; 3] = [
    df(2, "DF.CD", f(0x7F11), 0),
    trv(3, "EF.LAUNCHPAD", f(0x6F01), NO, None),
    trv(4, "EF.ICON", None, NO, None),
];

/// The phonebook EFs (SAIP §9.4 / §9.5.3, TS 31.102 §4.4.2), starting at context tag `$t`.
macro_rules! phonebook_efs {
    ($t:expr) => {
        [
            lf($t, "EF.PBR", f(0x4F30), None, None, NO, None),
            lf($t + 1, "EF.EXT1", None, None, n(13), NO, head(&[0x00])),
            lf($t + 2, "EF.AAS", None, None, None, NO, FF),
            lf($t + 3, "EF.GAS", None, None, None, NO, FF),
            tr($t + 4, "EF.PSC", 0x4F22, 4, NO, ZERO),
            tr($t + 5, "EF.CC", 0x4F23, 2, NO, ZERO),
            tr($t + 6, "EF.PUID", 0x4F24, 2, NO, ZERO),
            lf($t + 7, "EF.IAP", None, None, None, NO, FF),
            lf($t + 8, "EF.ADN", None, None, None, NO, FF),
            lf($t + 9, "EF.PBC", None, None, n(2), NO, ZERO),
            lf($t + 10, "EF.ANR", None, None, None, NO, FF),
            lf($t + 11, "EF.PURI", None, None, None, NO, None),
            lf($t + 12, "EF.EMAIL", None, None, None, NO, FF),
            lf($t + 13, "EF.SNE", None, None, None, NO, FF),
            lf($t + 14, "EF.UID", None, None, n(2), NO, ZERO),
            lf($t + 15, "EF.GRP", None, None, None, NO, ZERO),
            lf($t + 16, "EF.CCP1", None, None, None, NO, FF),
        ]
    };
}

/// SAIP §9.4, PE-TELECOM (2.3, 2.3.2): DF.TELECOM and its sub-DFs (TS 31.102 §4.4).
static TELECOM: [TemplateFile; 46] = {
    let pb = phonebook_efs!(16);
    [
        df(2, "DF.TELECOM", f(0x7F10), 0),
        lf(3, "EF.ARR", f(0x6F06), None, None, NO, None),
        lf(4, "EF.RMA", f(0x6F53), None, None, NO, None),
        tr(5, "EF.SUME", 0x6F54, 22, NO, None),
        lf(6, "EF.ICE_DN", f(0x6FE0), n(50), n(24), NO, FF),
        lf(7, "EF.ICE_FF", f(0x6FE1), None, None, NO, FF),
        lf(8, "EF.PSISMSC", f(0x6FE5), None, None, NO, None),
        df(9, "DF.GRAPHICS", f(0x5F50), 1),
        lf(10, "EF.IMG", f(0x4F20), None, None, NO, head(&[0x00])),
        trv(11, "EF.IIDF", None, NO, FF),
        TemplateFile {
            tag: 12,
            name: "EF.ICE_GRAPHICS",
            fid: Some(0x4F21),
            shape: Shape::BerTlv,
            sfi: NO,
            default: None,
        },
        trv(13, "EF.LAUNCH_SCWS", f(0x4F01), NO, None),
        trv(14, "EF.ICON", None, NO, None),
        df(15, "DF.PHONEBOOK", f(0x5F3A), 1),
        pb[0],
        pb[1],
        pb[2],
        pb[3],
        pb[4],
        pb[5],
        pb[6],
        pb[7],
        pb[8],
        pb[9],
        pb[10],
        pb[11],
        pb[12],
        pb[13],
        pb[14],
        pb[15],
        pb[16],
        df(33, "DF.MULTIMEDIA", f(0x5F3B), 1),
        bt(34, "EF.MML", 0x4F47, NO),
        bt(35, "EF.MMDF", 0x4F48, NO),
        df(36, "DF.MMSS", f(0x5F3C), 1),
        trv(37, "EF.MLPL", f(0x4F20), s(0x01), None),
        trv(38, "EF.MSPL", f(0x4F21), s(0x02), None),
        tr(39, "EF.MMSSMODE", 0x4F22, 1, s(0x03), None),
        df(40, "DF.MCS", f(0x5F3D), 1),
        trv(41, "EF.MST", f(0x4F01), s(0x01), None),
        bt(42, "EF.MCS_CONFIG", 0x4F02, s(0x02)),
        df(43, "DF.V2X", f(0x5F3E), 1),
        trv(44, "EF.VST", f(0x4F01), s(0x01), None),
        bt(45, "EF.V2X_CONFIG", 0x4F02, s(0x02)),
        trv(46, "EF.V2XP_PC5", f(0x4F03), NO, None),
        trv(47, "EF.V2XP_Uu", f(0x4F04), NO, None),
    ]
};

/// SAIP §9.5.1, PE-USIM (2.4, 2.4.2), TS 31.102 §4.2. EF.UST is 14 bytes in 2.4, 17 in 2.4.2.
static USIM: [TemplateFile; 24] = [
    adf(2, "ADF.USIM"),
    tr(3, "EF.IMSI", 0x6F07, 9, s(0x07), None),
    lf(4, "EF.ARR", f(0x6F06), None, None, s(0x17), None),
    tr(5, "EF.Keys", 0x6F08, 33, s(0x08), head(&[0x07])),
    tr(6, "EF.KeysPS", 0x6F09, 33, s(0x09), head(&[0x07])),
    tr(7, "EF.HPPLMN", 0x6F31, 1, s(0x12), head(&[0x0A])),
    tr(8, "EF.UST", 0x6F38, 14, s(0x04), None),
    lf(9, "EF.FDN", f(0x6F3B), n(20), n(26), NO, FF),
    lf(10, "EF.SMS", f(0x6F3C), n(10), n(176), NO, head(&[0x00])),
    lf(11, "EF.SMSP", f(0x6F42), n(1), n(38), NO, FF),
    tr(12, "EF.SMSS", 0x6F43, 2, NO, FF),
    tr(13, "EF.SPN", 0x6F46, 17, NO, None),
    tr(14, "EF.EST", 0x6F56, 1, s(0x05), None),
    tr(
        15,
        "EF.START-HFN",
        0x6F5B,
        6,
        s(0x0F),
        head(&[0xF0, 0x00, 0x00, 0xF0, 0x00, 0x00]),
    ),
    tr(16, "EF.THRESHOLD", 0x6F5C, 3, s(0x10), FF),
    tr(
        17,
        "EF.PSLOCI",
        0x6F73,
        14,
        s(0x0C),
        tail(&[0x00, 0x00, 0xFF, 0x01]),
    ),
    tr(18, "EF.ACC", 0x6F78, 2, s(0x06), None),
    tr(19, "EF.FPLMN", 0x6F7B, 12, s(0x0D), FF),
    tr(
        20,
        "EF.LOCI",
        0x6F7E,
        11,
        s(0x0B),
        tail(&[0x00, 0x00, 0xFF, 0x01]),
    ),
    tr(
        21,
        "EF.AD",
        0x6FAD,
        4,
        s(0x03),
        head(&[0x00, 0x00, 0x00, 0x02]),
    ),
    lf(22, "EF.ECC", f(0x6FB7), n(1), n(4), s(0x01), None),
    tr(23, "EF.NETPAR", 0x6FC4, 128, NO, FF),
    tr(
        24,
        "EF.EPSLOCI",
        0x6FE3,
        18,
        s(0x1E),
        tail(&[0x00, 0x00, 0x01]),
    ),
    lf(25, "EF.EPSNSC", f(0x6FE4), n(1), n(80), s(0x18), FF),
];

/// SAIP §9.5.2, PE-OPT-USIM (2.5, 2.5.2, 2.5.3), TS 31.102 §4.2: EFs in ADF.USIM.
static OPT_USIM: [TemplateFile; 86] = [
    tr(2, "EF.LI", 0x6F05, 6, s(0x02), FF),
    tr(3, "EF.ACMmax", 0x6F37, 3, NO, ZERO),
    cy(4, "EF.ACM", 0x6F39, n(1), 3, NO, ZERO),
    tr(5, "EF.GID1", 0x6F3E, 8, NO, None),
    tr(6, "EF.GID2", 0x6F3F, 8, NO, None),
    lf(7, "EF.MSISDN", f(0x6F40), n(1), n(24), NO, FF),
    tr(
        8,
        "EF.PUCT",
        0x6F41,
        5,
        NO,
        head(&[0xFF, 0xFF, 0xFF, 0x00, 0x00]),
    ),
    tr(9, "EF.CBMI", 0x6F45, 10, NO, FF),
    tr(10, "EF.CBMID", 0x6F48, 10, s(0x0E), FF),
    lf(11, "EF.SDN", f(0x6F49), n(10), n(24), NO, FF),
    lf(12, "EF.EXT2", f(0x6F4B), n(10), n(13), NO, head(&[0x00])),
    lf(13, "EF.EXT3", f(0x6F4C), n(10), n(13), NO, head(&[0x00])),
    tr(14, "EF.CBMIR", 0x6F50, 20, NO, FF),
    tr(15, "EF.PLMNwAcT", 0x6F60, 40, s(0x0A), PLMN_WACT),
    tr(16, "EF.OPLMNwAcT", 0x6F61, 40, s(0x11), PLMN_WACT),
    tr(17, "EF.HPLMNwAcT", 0x6F62, 5, s(0x13), PLMN_WACT),
    tr(18, "EF.DCK", 0x6F2C, 16, NO, FF),
    tr(19, "EF.CNL", 0x6F32, 30, NO, FF),
    lf(20, "EF.SMSR", f(0x6F47), n(10), n(30), NO, head(&[0x00])),
    lf(21, "EF.BDN", f(0x6F4D), n(10), n(25), NO, FF),
    lf(22, "EF.EXT5", f(0x6F4E), n(10), n(13), NO, head(&[0x00])),
    lf(23, "EF.CCP2", f(0x6F4F), n(5), n(15), s(0x16), FF),
    lf(24, "EF.EXT4", f(0x6F55), n(10), n(13), NO, head(&[0x00])),
    tr(25, "EF.ACL", 0x6F57, 101, NO, head(&[0x00])),
    lf(26, "EF.CMI", f(0x6F58), n(10), n(11), NO, FF),
    cy(
        27,
        "EF.ICI",
        0x6F80,
        n(20),
        38,
        s(0x14),
        tail(&[0x00, 0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF]),
    ),
    cy(
        28,
        "EF.OCI",
        0x6F81,
        n(20),
        37,
        s(0x15),
        tail(&[0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF]),
    ),
    cy(29, "EF.ICT", 0x6F82, n(1), 3, NO, ZERO),
    cy(30, "EF.OCT", 0x6F83, n(1), 3, NO, ZERO),
    tr(31, "EF.VGCS", 0x6FB1, 20, NO, None),
    tr(32, "EF.VGCSS", 0x6FB2, 7, NO, None),
    tr(33, "EF.VBS", 0x6FB3, 20, NO, None),
    tr(34, "EF.VBSS", 0x6FB4, 7, NO, None),
    tr(35, "EF.eMLPP", 0x6FB5, 2, NO, None),
    tr(36, "EF.AaeM", 0x6FB6, 1, NO, ZERO),
    tr(37, "EF.HiddenKey", 0x6FC3, 4, NO, FF),
    lf(38, "EF.PNN", f(0x6FC5), n(10), n(16), s(0x19), None),
    lf(39, "EF.OPL", f(0x6FC6), n(5), n(8), s(0x1A), None),
    lf(40, "EF.MBDN", f(0x6FC7), n(3), n(24), NO, None),
    lf(41, "EF.EXT6", f(0x6FC8), n(10), n(13), NO, head(&[0x00])),
    lf(42, "EF.MBI", f(0x6FC9), n(10), n(5), NO, None),
    lf(43, "EF.MWIS", f(0x6FCA), n(10), n(6), NO, ZERO),
    lf(
        44,
        "EF.CFIS",
        f(0x6FCB),
        n(10),
        n(16),
        NO,
        head(&[0x01, 0x00]),
    ),
    lf(45, "EF.EXT7", f(0x6FCC), n(10), n(13), NO, head(&[0x00])),
    tr(46, "EF.SPDI", 0x6FCD, 17, s(0x1B), None),
    lf(
        47,
        "EF.MMSN",
        f(0x6FCE),
        n(10),
        n(6),
        NO,
        head(&[0x00, 0x00, 0x00]),
    ),
    lf(48, "EF.EXT8", f(0x6FCF), n(10), n(13), NO, head(&[0x00])),
    tr(49, "EF.MMSICP", 0x6FD0, 100, NO, FF),
    lf(50, "EF.MMSUP", f(0x6FD1), None, None, NO, FF),
    tr(51, "EF.MMSUCP", 0x6FD2, 100, NO, FF),
    lf(52, "EF.NIA", f(0x6FD3), n(5), n(11), NO, FF),
    trv(53, "EF.VGCSCA", f(0x6FD4), NO, ZERO),
    trv(54, "EF.VBSCA", f(0x6FD5), NO, ZERO),
    trv(55, "EF.GBABP", f(0x6FD6), NO, FF),
    lf(56, "EF.MSK", f(0x6FD7), None, None, NO, FF),
    lf(57, "EF.MUK", f(0x6FD8), None, None, NO, FF),
    tr(58, "EF.EHPLMN", 0x6FD9, 15, s(0x1D), FF),
    lf(59, "EF.GBANL", f(0x6FDA), None, None, NO, FF),
    tr(60, "EF.EHPLMNPI", 0x6FDB, 1, NO, ZERO),
    tr(61, "EF.LRPLMNSI", 0x6FDC, 1, NO, ZERO),
    lf(62, "EF.NAFKCA", f(0x6FDD), None, None, NO, FF),
    trv(63, "EF.SPNI", f(0x6FDE), NO, head(&[0x00])),
    lf(64, "EF.PNNI", f(0x6FDF), None, None, NO, head(&[0x00])),
    lf(65, "EF.NCP-IP", f(0x6FE2), None, None, NO, None),
    tr(66, "EF.UFC", 0x6FE6, 30, NO, None),
    tr(67, "EF.NASCONFIG", 0x6FE8, 18, NO, None),
    lf(68, "EF.UICCIARI", f(0x6FE7), None, None, NO, None),
    trv(69, "EF.PWS", f(0x6FEC), NO, None),
    lf(70, "EF.FDNURI", f(0x6FED), None, None, NO, FF),
    lf(71, "EF.BDNURI", f(0x6FEE), None, None, NO, FF),
    lf(72, "EF.SDNURI", f(0x6FEF), None, None, NO, FF),
    lf(73, "EF.IAL", f(0x6FF0), None, None, NO, FF),
    TemplateFile {
        tag: 74,
        name: "EF.IPS",
        fid: Some(0x6FF1),
        shape: Shape::Cyclic {
            records: None,
            record_len: Some(4),
        },
        sfi: NO,
        default: FF,
    },
    lf(75, "EF.IPD", f(0x6FF2), None, None, NO, FF),
    trv(76, "EF.EPDGID", f(0x6FF3), NO, None),
    trv(77, "EF.EPDGSELECTION", f(0x6FF4), NO, None),
    trv(78, "EF.EPDGIDEM", f(0x6FF5), NO, None),
    trv(79, "EF.EPDGSELECTIONEM", f(0x6FF6), NO, None),
    tr(80, "EF.FromPreferred", 0x6FF7, 1, NO, ZERO),
    bt(81, "EF.IMSConfigData", 0x6FF8, NO),
    tr(82, "EF.3GPPPSDATAOFF", 0x6FF9, 4, NO, None),
    lf(
        83,
        "EF.3GPPPSDATAOFFservicelist",
        f(0x6FFA),
        None,
        None,
        NO,
        None,
    ),
    bt(84, "EF.XCAPConfigData", 0x6FFC, NO),
    trv(85, "EF.EARFCNList", f(0x6FFD), NO, None),
    TemplateFile {
        tag: 86,
        name: "EF.MuDMiDConfigData",
        fid: None,
        shape: Shape::BerTlv,
        sfi: NO,
        default: None,
    },
    TemplateFile {
        tag: 87,
        name: "EF.eAKA",
        fid: None,
        shape: Shape::Transparent { size: None },
        sfi: NO,
        default: None,
    },
];

/// SAIP §9.5.3, PE-PHONEBOOK (2.6): DF.PHONEBOOK in ADF.USIM.
static PHONEBOOK: [TemplateFile; 18] = {
    let pb = phonebook_efs!(3);
    [
        df(2, "DF.PHONEBOOK", f(0x5F3A), 0),
        pb[0],
        pb[1],
        pb[2],
        pb[3],
        pb[4],
        pb[5],
        pb[6],
        pb[7],
        pb[8],
        pb[9],
        pb[10],
        pb[11],
        pb[12],
        pb[13],
        pb[14],
        pb[15],
        pb[16],
    ]
};

/// SAIP §9.5.4, PE-GSM-ACCESS (2.7): DF.GSM-ACCESS in ADF.USIM (TS 31.102 §4.4.3).
static GSM_ACCESS: [TemplateFile; 5] = [
    df(2, "DF.GSM-ACCESS", f(0x5F3B), 0),
    tr(3, "EF.Kc", 0x4F20, 9, s(0x01), tail(&[0x07])),
    tr(4, "EF.KcGPRS", 0x4F52, 9, s(0x02), tail(&[0x07])),
    tr(5, "EF.CPBCCH", 0x4F63, 10, NO, FF),
    tr(6, "EF.InvScan", 0x4F64, 1, NO, ZERO),
];

/// SAIP §9.5.11, PE-DF-5GS (2.13.x): DF.5GS in ADF.USIM (TS 31.102 §4.4.11).
static DF_5GS: [TemplateFile; 13] = [
    df(2, "DF.5GS", f(0x5FC0), 0),
    tr(
        3,
        "EF.5GS3GPPLOCI",
        0x4F01,
        20,
        s(0x01),
        tail(&[0x00, 0x00, 0x00, 0x01]),
    ),
    tr(
        4,
        "EF.5GSN3GPPLOCI",
        0x4F02,
        20,
        s(0x02),
        tail(&[0x00, 0x00, 0x00, 0x01]),
    ),
    lf(5, "EF.5GS3GPPNSC", f(0x4F03), n(1), n(57), s(0x03), FF),
    lf(6, "EF.5GSN3GPPNSC", f(0x4F04), n(1), n(57), s(0x04), FF),
    tr(7, "EF.5GAUTHKEYS", 0x4F05, 110, s(0x05), None),
    tr(8, "EF.UAC_AIC", 0x4F06, 4, s(0x06), None),
    trv(9, "EF.SUCI_Calc_Info", f(0x4F07), s(0x07), FF),
    lf(10, "EF.OPL5G", f(0x4F08), None, n(10), s(0x08), FF),
    trv(11, "EF.SUPI_NAI", f(0x4F09), s(0x09), None),
    tr(
        12,
        "EF.Routing_Indicator",
        0x4F0A,
        4,
        s(0x0A),
        head(&[0xF0]),
    ),
    bt(13, "EF.URSP", 0x4F0B, NO),
    tr(14, "EF.TN3GPPSNN", 0x4F0C, 1, s(0x0C), ZERO),
];

/// SAIP §9.5.12, PE-DF-SAIP (2.14): DF.SAIP in ADF.USIM (TS 31.102 §4.4.13).
static DF_SAIP: [TemplateFile; 2] = [
    df(2, "DF.SAIP", f(0x5FD0), 0),
    trv(3, "EF.SUCI_Calc_Info_USIM", f(0x4F01), NO, FF),
];

/// SAIP §9.6.1, PE-ISIM (2.8), TS 31.103 §4.2.
static ISIM: [TemplateFile; 7] = [
    adf(2, "ADF.ISIM"),
    trv(3, "EF.IMPI", f(0x6F02), s(0x02), None),
    lf(4, "EF.IMPU", f(0x6F04), n(1), None, s(0x04), None),
    trv(5, "EF.DOMAIN", f(0x6F03), s(0x05), None),
    tr(6, "EF.IST", 0x6F07, 14, s(0x07), None),
    tr(7, "EF.AD", 0x6FAD, 3, s(0x03), ZERO),
    lf(8, "EF.ARR", f(0x6F06), None, None, s(0x06), None),
];

/// SAIP §9.6.2, PE-OPT-ISIM (2.9, 2.9.2), TS 31.103 §4.2: EFs in ADF.ISIM.
static OPT_ISIM: [TemplateFile; 14] = [
    lf(2, "EF.P-CSCF", f(0x6F09), n(1), None, NO, None),
    lf(3, "EF.SMS", f(0x6F3C), n(10), n(176), NO, head(&[0x00])),
    lf(4, "EF.SMSP", f(0x6F42), n(1), n(38), NO, FF),
    tr(5, "EF.SMSS", 0x6F43, 2, NO, FF),
    lf(6, "EF.SMSR", f(0x6F47), n(10), n(30), NO, head(&[0x00])),
    trv(7, "EF.GBABP", f(0x6FD5), NO, FF),
    lf(8, "EF.GBANL", f(0x6FD7), None, None, NO, FF),
    lf(9, "EF.NAFKCA", f(0x6FDD), None, None, NO, FF),
    lf(10, "EF.UICCIARI", f(0x6FE7), None, None, NO, None),
    tr(11, "EF.FromPreferred", 0x6FF7, 1, NO, ZERO),
    bt(12, "EF.IMSConfigData", 0x6FF8, NO),
    bt(13, "EF.XCAPConfigData", 0x6FFC, NO),
    lf(14, "EF.WebRTCURI", f(0x6FFA), None, None, NO, None),
    TemplateFile {
        tag: 15,
        name: "EF.MuDMiDConfigData",
        fid: None,
        shape: Shape::BerTlv,
        sfi: NO,
        default: None,
    },
];

/// SAIP §9.7, PE-CSIM (2.10): only the ADF is transcribed; its EFs carry their FCPs.
static CSIM: [TemplateFile; 1] = [adf(2, "ADF.CSIM")];

/// SAIP §9.8, PE-EAP (2.12): DF.EAP, FID chosen by the PE.
static EAP: [TemplateFile; 8] = [
    df(2, "DF.EAP", None, 0),
    trv(3, "EF.EAPKEYS", f(0x4F01), NO, None),
    tr(4, "EF.EAPSTATUS", 0x4F02, 1, NO, ZERO),
    trv(5, "EF.PUId", f(0x4F03), NO, None),
    trv(6, "EF.Ps", f(0x4F04), NO, FF),
    trv(7, "EF.CurID", f(0x4F20), NO, FF),
    trv(8, "EF.RelID", f(0x4F21), NO, None),
    trv(9, "EF.Realm", f(0x4F22), NO, None),
];

static L_MF: Layout = Layout {
    base: Base::Mf,
    created_by_default: true,
    files: &MF,
};
static L_CD: Layout = Layout {
    base: Base::UnderMf,
    created_by_default: false,
    files: &CD,
};
static L_TELECOM: Layout = Layout {
    base: Base::UnderMf,
    created_by_default: false,
    files: &TELECOM,
};
static L_USIM: Layout = Layout {
    base: Base::AdfRoot,
    created_by_default: true,
    files: &USIM,
};
static L_OPT_USIM: Layout = Layout {
    base: Base::InUsim,
    created_by_default: false,
    files: &OPT_USIM,
};
static L_PHONEBOOK: Layout = Layout {
    base: Base::UnderUsim,
    created_by_default: false,
    files: &PHONEBOOK,
};
static L_GSM_ACCESS: Layout = Layout {
    base: Base::UnderUsim,
    created_by_default: false,
    files: &GSM_ACCESS,
};
static L_DF_5GS: Layout = Layout {
    base: Base::UnderUsim,
    created_by_default: false,
    files: &DF_5GS,
};
static L_DF_SAIP: Layout = Layout {
    base: Base::UnderUsim,
    created_by_default: false,
    files: &DF_SAIP,
};
static L_ISIM: Layout = Layout {
    base: Base::AdfRoot,
    created_by_default: true,
    files: &ISIM,
};
static L_OPT_ISIM: Layout = Layout {
    base: Base::InIsim,
    created_by_default: false,
    files: &OPT_ISIM,
};
static L_CSIM: Layout = Layout {
    base: Base::AdfRoot,
    created_by_default: false,
    files: &CSIM,
};
static L_OPT_CSIM: Layout = Layout {
    base: Base::InCsim,
    created_by_default: false,
    files: &[],
};
static L_EAP: Layout = Layout {
    base: Base::Current,
    created_by_default: false,
    files: &EAP,
};
static L_UNDER_USIM: Layout = Layout {
    base: Base::UnderUsim,
    created_by_default: false,
    files: &[],
};
static L_UNKNOWN: Layout = Layout {
    base: Base::Current,
    created_by_default: false,
    files: &[],
};

/// The layout of a file-system PE; PE types without a transcribed template get an empty table
/// (their files are placed from their FCPs alone).
pub(super) fn layout(kind: PeKind) -> &'static Layout {
    match kind {
        PeKind::Mf => &L_MF,
        PeKind::Cd => &L_CD,
        PeKind::Telecom => &L_TELECOM,
        PeKind::Usim => &L_USIM,
        PeKind::OptUsim => &L_OPT_USIM,
        PeKind::Phonebook => &L_PHONEBOOK,
        PeKind::GsmAccess => &L_GSM_ACCESS,
        PeKind::Df5gs => &L_DF_5GS,
        PeKind::DfSaip => &L_DF_SAIP,
        PeKind::Isim => &L_ISIM,
        PeKind::OptIsim => &L_OPT_ISIM,
        PeKind::Csim => &L_CSIM,
        PeKind::OptCsim => &L_OPT_CSIM,
        PeKind::Eap => &L_EAP,
        PeKind::DfSnpn | PeKind::Df5gProse => &L_UNDER_USIM,
        _ => &L_UNKNOWN,
    }
}

/// Size refinements by template OID (dotted), e.g. EF.UST grew to 17 bytes in USIM 2.4.2.
pub(super) fn size_override(template_oid: &str, tf: &TemplateFile) -> Option<u16> {
    match (template_oid, tf.name) {
        ("2.23.143.1.2.4.2", "EF.UST") => Some(17),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_tags_are_unique_and_ascending() {
        for l in [
            &L_MF,
            &L_CD,
            &L_TELECOM,
            &L_USIM,
            &L_OPT_USIM,
            &L_PHONEBOOK,
            &L_GSM_ACCESS,
            &L_DF_5GS,
            &L_ISIM,
            &L_OPT_ISIM,
            &L_EAP,
        ] {
            for w in l.files.windows(2) {
                assert!(w[0].tag < w[1].tag, "{} then {}", w[0].name, w[1].name);
            }
        }
    }

    #[test]
    fn usim_template_knows_ef_imsi_and_opt_usim_knows_ef_msisdn() {
        let imsi = L_USIM.file(3).unwrap();
        assert_eq!(
            (imsi.name, imsi.fid, imsi.sfi),
            ("EF.IMSI", Some(0x6F07), Some(0x07))
        );
        let msisdn = L_OPT_USIM.file(7).unwrap();
        assert_eq!(
            msisdn.shape,
            Shape::LinearFixed {
                records: Some(1),
                record_len: Some(24)
            }
        );
        assert_eq!(L_TELECOM.file(20).unwrap().name, "EF.PSC");
        assert_eq!(L_PHONEBOOK.file(7).unwrap().name, "EF.PSC");
    }
}
