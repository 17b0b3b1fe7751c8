//! `simlab lpa chip-info`: the EID, the configured addresses and EUICCInfo2 (SGP.22 v2.5
//! §5.7.8) decoded field by field — versions, free memory (ExtCardResource, §5.7.8), the
//! UICC and RSP capability bit strings named as SGP.22's ASN.1 names them, the CI public key
//! IDs, the Protection Profile version and the SAS accreditation number.

use serde::Serialize;
use simlab_emulator::rsp::es10::EuiccInfo2;
use simlab_emulator::tlv;
use std::fmt::Write as _;

/// `UICCCapability` bit names (SGP.22 §5.7.8, ASN.1 module), bit 0 first.
const UICC_CAPABILITIES: &[&str] = &[
    "contactlessSupport",
    "usimSupport",
    "isimSupport",
    "csimSupport",
    "akaMilenage",
    "akaCave",
    "akaTuak128",
    "akaTuak256",
    "rfu1",
    "rfu2",
    "gbaAuthenUsim",
    "gbaAuthenISim",
    "mbmsAuthenUsim",
    "eapClient",
    "javacard",
    "multos",
    "multipleUsimSupport",
    "multipleIsimSupport",
    "multipleCsimSupport",
    "berTlvFileSupport",
    "dfLinkSupport",
    "catTp",
    "getIdentity",
    "profile-a-x25519",
    "profile-b-p256",
    "suciCalculatorApi",
    "dns-resolution",
    "scp11ac",
    "scp11c-authorization-mechanism",
    "s16mode",
    "eaka",
];

/// `RspCapability` bit names (SGP.22 §5.7.8), bit 0 first.
const RSP_CAPABILITIES: &[&str] = &[
    "additionalProfile",
    "crlSupport",
    "rpmSupport",
    "testProfileSupport",
    "deviceInfoExtensibilitySupport",
    "serviceSpecificDataSupport",
];

/// `euiccCategory` (SGP.22 §5.7.8).
fn category(c: u64) -> String {
    match c {
        0 => "other".into(),
        1 => "basicEuicc".into(),
        2 => "mediumEuicc".into(),
        3 => "contactlessEuicc".into(),
        n => format!("unknown ({n})"),
    }
}

/// The names of the bits set in a DER BIT STRING value (first byte: unused bits).
fn named_bits(value: &[u8], names: &[&str]) -> Vec<String> {
    let Some((_, bits)) = value.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, byte) in bits.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                let n = i * 8 + b;
                out.push(
                    names
                        .get(n)
                        .map_or_else(|| format!("bit{n}"), |s| (*s).to_owned()),
                );
            }
        }
    }
    out
}

fn version(v: [u8; 3]) -> String {
    format!("{}.{}.{}", v[0], v[1], v[2])
}

/// `ExtCardResource` (SGP.22 §5.7.8): `81` installed applications, `82` free non-volatile
/// memory, `83` free volatile memory, each an unsigned integer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtCardResource {
    pub installed_applications: Option<u64>,
    pub free_non_volatile_memory: Option<u64>,
    pub free_volatile_memory: Option<u64>,
}

fn ext_card_resource(value: &[u8]) -> ExtCardResource {
    let mut out = ExtCardResource::default();
    for item in tlv::TlvIter::new(value).flatten() {
        let n = item
            .value
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        match item.tag {
            0x81 => out.installed_applications = Some(n),
            0x82 => out.free_non_volatile_memory = Some(n),
            0x83 => out.free_volatile_memory = Some(n),
            _ => {}
        }
    }
    out
}

/// What `chip-info` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChipInfo {
    pub eid: String,
    pub default_dp_address: Option<String>,
    pub root_ds_address: String,
    pub euicc_info2: EuiccInfo2Summary,
}

/// EUICCInfo2, decoded; JSON keys are the ASN.1 field names of SGP.22 §5.7.8.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EuiccInfo2Summary {
    pub profile_version: String,
    /// SGP.22 version the eUICC implements (`svn`).
    pub svn: String,
    pub euicc_firmware_ver: String,
    pub ext_card_resource: ExtCardResource,
    pub uicc_capability: Vec<String>,
    pub javacard_version: Option<String>,
    pub globalplatform_version: Option<String>,
    pub rsp_capability: Vec<String>,
    #[serde(rename = "euiccCiPKIdListForVerification")]
    pub euicc_ci_pkid_list_for_verification: Vec<String>,
    #[serde(rename = "euiccCiPKIdListForSigning")]
    pub euicc_ci_pkid_list_for_signing: Vec<String>,
    pub euicc_category: Option<String>,
    pub forbidden_profile_policy_rules: Option<Vec<String>>,
    pub pp_version: String,
    /// SGP.22's ASN.1 spells it `sasAcreditationNumber`; JSON keeps that name, as LPAs do.
    #[serde(rename = "sasAcreditationNumber")]
    pub sas_accreditation_number: String,
    /// The whole EUICCInfo2, hex (BF22…).
    pub raw: String,
}

impl EuiccInfo2Summary {
    pub fn new(info: &EuiccInfo2, raw: &[u8]) -> Self {
        let pkids = |l: &[Vec<u8>]| l.iter().map(hex::encode_upper).collect();
        Self {
            profile_version: version(info.profile_version),
            svn: version(info.svn),
            euicc_firmware_ver: version(info.firmware_version),
            ext_card_resource: ext_card_resource(&info.ext_card_resource),
            uicc_capability: named_bits(&info.uicc_capability, UICC_CAPABILITIES),
            javacard_version: info.javacard_version.map(version),
            globalplatform_version: info.globalplatform_version.map(version),
            rsp_capability: named_bits(&info.rsp_capability, RSP_CAPABILITIES),
            euicc_ci_pkid_list_for_verification: pkids(&info.ci_pkid_verification),
            euicc_ci_pkid_list_for_signing: pkids(&info.ci_pkid_signing),
            euicc_category: info.euicc_category.map(category),
            forbidden_profile_policy_rules: info.forbidden_ppr.map(|p| {
                [
                    (p.update_control, "pprUpdateControl"),
                    (p.ppr1, "ppr1"),
                    (p.ppr2, "ppr2"),
                    (p.ppr3, "ppr3"),
                ]
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, n)| (*n).to_owned())
                .collect()
            }),
            pp_version: version(info.pp_version),
            sas_accreditation_number: info.sas_accreditation_number.clone(),
            raw: hex::encode_upper(raw),
        }
    }
}

impl ChipInfo {
    /// Text for people, one field a line.
    pub fn text(&self) -> String {
        let i = &self.euicc_info2;
        let mem = |v: Option<u64>| v.map_or("-".to_owned(), |n| n.to_string());
        let list = |l: &[String]| {
            if l.is_empty() {
                "-".to_owned()
            } else {
                l.join(", ")
            }
        };
        let mut t = String::new();
        let _ = writeln!(t, "EID                      {}", self.eid);
        let _ = writeln!(
            t,
            "default SM-DP+           {}",
            self.default_dp_address.as_deref().unwrap_or("-")
        );
        let _ = writeln!(t, "root SM-DS               {}", self.root_ds_address);
        let _ = writeln!(t, "SGP.22 version (SVN)     {}", i.svn);
        let _ = writeln!(t, "firmware                 {}", i.euicc_firmware_ver);
        let _ = writeln!(t, "profile version          {}", i.profile_version);
        let _ = writeln!(
            t,
            "free memory              {} bytes non-volatile, {} bytes volatile; {} applications installed",
            mem(i.ext_card_resource.free_non_volatile_memory),
            mem(i.ext_card_resource.free_volatile_memory),
            mem(i.ext_card_resource.installed_applications)
        );
        let _ = writeln!(t, "UICC capabilities        {}", list(&i.uicc_capability));
        let _ = writeln!(t, "RSP capabilities         {}", list(&i.rsp_capability));
        let _ = writeln!(
            t,
            "CI PKIds (verification)  {}",
            list(&i.euicc_ci_pkid_list_for_verification)
        );
        let _ = writeln!(
            t,
            "CI PKIds (signing)       {}",
            list(&i.euicc_ci_pkid_list_for_signing)
        );
        if let Some(c) = &i.euicc_category {
            let _ = writeln!(t, "eUICC category           {c}");
        }
        if let Some(p) = &i.forbidden_profile_policy_rules {
            let _ = writeln!(t, "forbidden PPRs           {}", list(p));
        }
        let _ = writeln!(t, "PP version               {}", i.pp_version);
        let _ = write!(
            t,
            "SAS accreditation        {}",
            if i.sas_accreditation_number.is_empty() {
                "-"
            } else {
                &i.sas_accreditation_number
            }
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_strings_name_their_bits_in_asn1_order() {
        // 3 unused bits; byte 0 = 0100 1000 → bits 1 (usimSupport) and 4 (akaMilenage);
        // byte 2 = 0001 0000 → bit 19 (berTlvFileSupport).
        assert_eq!(
            named_bits(&[0x03, 0x48, 0x00, 0x10], UICC_CAPABILITIES),
            ["usimSupport", "akaMilenage", "berTlvFileSupport"]
        );
        assert_eq!(
            named_bits(&[0x02, 0x90], RSP_CAPABILITIES),
            ["additionalProfile", "testProfileSupport"]
        );
        assert!(named_bits(&[], RSP_CAPABILITIES).is_empty());
    }

    #[test]
    fn ext_card_resource_reads_memory_and_applications() {
        let value = hex::decode("810100 8203 01E240 8302 0400".replace(' ', "")).unwrap();
        assert_eq!(
            ext_card_resource(&value),
            ExtCardResource {
                installed_applications: Some(0),
                free_non_volatile_memory: Some(123_456),
                free_volatile_memory: Some(1024),
            }
        );
    }
}
