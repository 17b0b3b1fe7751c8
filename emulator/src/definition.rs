//! Card definitions as data (`vectors/cards/*.toml`): identity, USIM keys, PINs and optional
//! file contents. [`CardDefinition::build`] turns one into the card's initial state; every
//! problem is reported with the field it concerns and what was expected.
//!
//! An `[euicc]` section makes the card an SGP.22 eUICC (identity files relative to the TOML
//! file's directory); it then has no `[usim]`: its USIM comes from the enabled profile.

use crate::aka::{AkaAlgorithm, SqnStore};
use crate::euicc::{EuiccConfig, EuiccState, Identity, ProfileContent};
use crate::fs::{self, ArrRef, FileBody, FileSystem, FsError};
use crate::ota::keys::{CardKeyset, OtaKeys, SecurityLevel};
use crate::ota::ts_102_225::{CipherAlgorithm, Keyset, MacAlgorithm, COUNTER_MAX};
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
    /// The USIM of a plain UICC (an eUICC takes it from its enabled profile).
    pub usim: Option<UsimSection>,
    #[serde(default)]
    pub pins: PinSection,
    #[serde(default, rename = "file")]
    pub files: Vec<FileOverride>,
    pub euicc: Option<EuiccSection>,
    /// OTA keysets (`[[ota.keyset]]`, ETSI TS 102 225).
    #[serde(default)]
    pub ota: OtaSection,
    /// Where relative file paths start (the TOML file's directory), set by [`Self::load`].
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
    /// Files built into the program: when set, relative paths (joined to `base_dir`) are
    /// looked up here instead of on disk. The `simlab` binary uses it for its built-in cards.
    #[serde(skip)]
    pub built_in_files: Option<BuiltInFiles>,
}

/// A lookup of files built into the program by path (see [`CardDefinition::built_in_files`]).
pub type BuiltInFiles = fn(&std::path::Path) -> Option<&'static [u8]>;

/// The eUICC's identity and configuration (SGP.22 v2.5 §2.2.2, §5.7.8). File paths are
/// relative to the card definition's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EuiccSection {
    /// 32 digits (SGP.29), check digits included.
    pub eid: String,
    /// CERT.EUICC.ECDSA (DER).
    pub certificate: String,
    /// SK.EUICC.ECDSA (PEM, SEC 1 or PKCS#8).
    pub private_key: String,
    /// CERT.EUM.ECDSA (DER).
    pub eum_certificate: String,
    /// Trusted CI certificates (DER); their SKIs are the CI PKIDs of EUICCInfo1/2.
    pub ci_certificates: Vec<String>,
    pub default_smdp_address: Option<String>,
    pub root_smds_address: Option<String>,
    /// ISD-R AID in hex (default A0000005591010FFFFFFFF8900000100).
    pub isd_r_aid: Option<String>,
    pub ecasd_aid: Option<String>,
    /// Versions as "major.minor.revision".
    pub svn: Option<String>,
    pub profile_version: Option<String>,
    pub firmware_version: Option<String>,
    pub sas_accreditation_number: Option<String>,
    pub max_profiles: Option<usize>,
    /// Profiles the card comes with, installed when the card is built (see [`Preinstalled`]).
    #[serde(default)]
    pub preinstalled: Vec<Preinstalled>,
}

/// `[[euicc.preinstalled]]`: a profile package (SAIP DER, path relative to the definition)
/// installed through the card's own installation path (`euicc::install::preinstall`: the
/// same decoding, content building and metadata checks as a download), e.g. the TS.48 test
/// profile SGP.23 test cases start from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preinstalled {
    pub package: String,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub service_provider_name: String,
    #[serde(default)]
    pub profile_name: String,
    /// `operational` (default), `test` or `provisioning` (SGP.22 §2.4.4.1).
    pub class: Option<String>,
    /// Where the profile's notifications go (every event); none when absent.
    pub notification_address: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSection {
    /// Free text shown in logs.
    #[serde(default)]
    pub name: String,
    /// ATR in hex; the default (`uicc::DEFAULT_ATR`) offers T=0 only, as real UICCs do.
    pub atr: Option<String>,
    /// ICCID digits (18–20), as printed on the card. Required for a UICC; an eUICC without
    /// one has no EF.ICCID while no profile is enabled.
    pub iccid: Option<String>,
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
    /// A saved state (`--state` directory) that is not this card's.
    #[error("the state directory holds {found}, but the card definition describes {expected}: use another state directory, or the definition that made it")]
    StateMismatch { expected: String, found: String },
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

/// A PUK is 8 digits (ETSI TS 102 221 §9.5.1: "the UNBLOCK PIN … 8 digits").
const PUK_DIGITS: usize = 8;
/// EF.SPN: one display-condition byte, then the name in 16 bytes (3GPP TS 31.102 §4.2.12).
const SPN_MAX: usize = 16;
/// An FQDN is at most 255 bytes (RFC 1035 §2.3.4); SGP.22 addresses are FQDNs.
const FQDN_MAX: usize = 255;
/// sasAcreditationNumber is `UTF8String (SIZE(0..64))` (SGP.22 v2.5 §5.7.8 EUICCInfo2).
const SAS_MAX: usize = 64;
/// ISD-P AIDs are numbered in 12 bits here (`EuiccState::next_isdp_aid`): at most 4096
/// profiles can have distinct AIDs.
const MAX_PROFILES: usize = 4096;

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

/// The service provider name fits EF.SPN as it is encoded (3GPP TS 31.102 §4.2.12: 16 bytes,
/// here letters, digits and spaces of the GSM default alphabet): refused rather than cut.
fn check_spn(spn: &str) -> Result<(), DefinitionError> {
    if spn.len() > SPN_MAX {
        return Err(field(
            "usim.spn",
            format!(
                "expected at most {SPN_MAX} characters (EF.SPN holds 16 bytes), got {}",
                spn.chars().count()
            ),
        ));
    }
    if let Some(c) = spn
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == ' '))
    {
        return Err(field(
            "usim.spn",
            format!("{c:?} cannot be written to EF.SPN: use letters, digits and spaces"),
        ));
    }
    Ok(())
}

/// An SM-DP+ / SM-DS address: an FQDN (SGP.22 §4.1), optionally with `:port`.
fn check_fqdn(name: &'static str, address: &str) -> Result<(), DefinitionError> {
    if address.is_empty() || address.len() > FQDN_MAX {
        return Err(field(
            name,
            format!(
                "expected a host name of 1 to {FQDN_MAX} bytes, got {} bytes",
                address.len()
            ),
        ));
    }
    if let Some(c) = address
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_' | '[' | ']')))
    {
        return Err(field(
            name,
            format!("{c:?} is not allowed in a host name ({address:?})"),
        ));
    }
    Ok(())
}

impl CardDefinition {
    /// Checks that `saved` (a card's state directory) was made from a definition of this
    /// kind: a UICC's state with an eUICC definition, an eUICC's with a UICC definition, or
    /// another eUICC's (another EID), is refused here by name instead of failing later
    /// (e.g. `6A86` on the first ES10 command).
    pub fn check_saved_state(&self, saved: &CardState) -> Result<(), DefinitionError> {
        let eid = |e: &[u8; 16]| hex::encode(e);
        let describe = |state: &CardState| match &state.euicc {
            Some(e) => format!("an eUICC (EID {})", eid(&e.identity.eid)),
            None => "a UICC".to_owned(),
        };
        let expected = match &self.euicc {
            Some(e) => format!("an eUICC (EID {})", e.eid.to_ascii_lowercase()),
            None => "a UICC".to_owned(),
        };
        let found = describe(saved);
        if found == expected {
            return Ok(());
        }
        Err(DefinitionError::StateMismatch { expected, found })
    }

    /// Parses a definition from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, DefinitionError> {
        let def: Self = toml::from_str(text)?;
        if def.usim.is_none() && def.euicc.is_none() {
            return Err(field(
                "usim",
                "missing: a UICC needs a [usim] section (an eUICC an [euicc] section)",
            ));
        }
        Ok(def)
    }

    /// Reads and parses a definition file; relative paths in it start at its directory.
    pub fn load(path: &std::path::Path) -> Result<Self, DefinitionError> {
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut def = Self::from_toml(&text)?;
        def.base_dir = path.parent().map(std::path::Path::to_path_buf);
        Ok(def)
    }

    fn read_file(&self, field_name: &'static str, rel: &str) -> Result<Vec<u8>, DefinitionError> {
        let path = match &self.base_dir {
            Some(dir) => dir.join(rel),
            None => std::path::PathBuf::from(rel),
        };
        if let Some(lookup) = self.built_in_files {
            return lookup(&path).map(<[u8]>::to_vec).ok_or_else(|| {
                field(
                    field_name,
                    format!("{} is not among the built-in files", path.display()),
                )
            });
        }
        std::fs::read(&path)
            .map_err(|e| field(field_name, format!("cannot read {}: {e}", path.display())))
    }

    /// The eUICC part of the state, from the `[euicc]` section.
    fn euicc_state(
        &self,
        e: &EuiccSection,
        base: ProfileContent,
    ) -> Result<EuiccState, DefinitionError> {
        let eid = hex_field::<16>("euicc.eid", &e.eid)?;
        if !eid_check_digits_ok(&e.eid) {
            return Err(field(
                "euicc.eid",
                format!("{:?} fails the ISO 7064 MOD 97-10 check (SGP.29)", e.eid),
            ));
        }
        let key = String::from_utf8(self.read_file("euicc.private_key", &e.private_key)?)
            .map_err(|_| field("euicc.private_key", "expected PEM text"))?;
        let mut ci_certificates = Vec::new();
        for c in &e.ci_certificates {
            ci_certificates.push(self.read_file("euicc.ci_certificates", c)?);
        }
        if ci_certificates.is_empty() {
            return Err(field(
                "euicc.ci_certificates",
                "expected at least one CI certificate",
            ));
        }
        let identity = Identity {
            eid,
            euicc_certificate: self.read_file("euicc.certificate", &e.certificate)?,
            euicc_private_key_pem: key,
            eum_certificate: self.read_file("euicc.eum_certificate", &e.eum_certificate)?,
            ci_certificates,
            key_cache: Default::default(),
        };
        identity
            .check()
            .map_err(|err| field("euicc", err.to_string()))?;
        let mut config = EuiccConfig::default();
        let aid = |name: &'static str,
                   v: &Option<String>,
                   default: Vec<u8>|
         -> Result<Vec<u8>, DefinitionError> {
            match v {
                None => Ok(default),
                Some(h) => {
                    let a = hex::decode(h)
                        .map_err(|err| field(name, format!("expected hex ({err})")))?;
                    if (5..=16).contains(&a.len()) {
                        Ok(a)
                    } else {
                        Err(field(name, "expected 5 to 16 bytes"))
                    }
                }
            }
        };
        config.isd_r_aid = aid("euicc.isd_r_aid", &e.isd_r_aid, config.isd_r_aid.clone())?;
        config.ecasd_aid = aid("euicc.ecasd_aid", &e.ecasd_aid, config.ecasd_aid.clone())?;
        for (name, address) in [
            ("euicc.default_smdp_address", &e.default_smdp_address),
            ("euicc.root_smds_address", &e.root_smds_address),
        ] {
            if let Some(a) = address {
                check_fqdn(name, a)?;
            }
        }
        config.default_dp_address = e.default_smdp_address.clone();
        config.factory_dp_address = e.default_smdp_address.clone();
        if let Some(ds) = &e.root_smds_address {
            config.root_ds_address = ds.clone();
        }
        let version = |name: &'static str,
                       v: &Option<String>,
                       default: [u8; 3]|
         -> Result<[u8; 3], DefinitionError> {
            let Some(text) = v else { return Ok(default) };
            let parts: Vec<u8> = text.split('.').filter_map(|p| p.parse().ok()).collect();
            parts
                .try_into()
                .map_err(|_| field(name, format!("expected major.minor.revision, got {text:?}")))
        };
        config.svn = version("euicc.svn", &e.svn, config.svn)?;
        config.profile_version = version(
            "euicc.profile_version",
            &e.profile_version,
            config.profile_version,
        )?;
        config.firmware_version = version(
            "euicc.firmware_version",
            &e.firmware_version,
            config.firmware_version,
        )?;
        if let Some(sas) = &e.sas_accreditation_number {
            if sas.len() > SAS_MAX {
                return Err(field(
                    "euicc.sas_accreditation_number",
                    format!("expected at most {SAS_MAX} bytes, got {}", sas.len()),
                ));
            }
            config.sas_accreditation_number = sas.clone();
        }
        if let Some(m) = e.max_profiles {
            if !(1..=MAX_PROFILES).contains(&m) {
                return Err(field(
                    "euicc.max_profiles",
                    format!("expected 1 to {MAX_PROFILES} profiles, got {m}"),
                ));
            }
            config.max_profiles = m;
        }
        let mut state = EuiccState::new(identity, config, base);
        self.preinstall(&mut state, &e.preinstalled)?;
        Ok(state)
    }

    fn preinstall(
        &self,
        state: &mut EuiccState,
        list: &[Preinstalled],
    ) -> Result<(), DefinitionError> {
        use crate::rsp::es10::ProfileClass;
        const FIELD: &str = "euicc.preinstalled";
        if list.iter().filter(|p| p.enabled).count() > 1 {
            return Err(field(
                FIELD,
                "at most one profile can be enabled (SGP.22 §2.4.4)",
            ));
        }
        for p in list {
            let class = match p.class.as_deref() {
                None | Some("operational") => ProfileClass::Operational,
                Some("test") => ProfileClass::Test,
                Some("provisioning") => ProfileClass::Provisioning,
                Some(other) => {
                    return Err(field(
                        FIELD,
                        format!("class {other:?}: expected operational, test or provisioning"),
                    ))
                }
            };
            let upp = self.read_file(FIELD, &p.package)?;
            let preload = crate::euicc::install::Preload {
                service_provider_name: p.service_provider_name.clone(),
                profile_name: p.profile_name.clone(),
                class,
                notification_address: p.notification_address.clone(),
                enabled: p.enabled,
            };
            crate::euicc::install::preinstall(state, &upp, &preload).map_err(|reason| {
                field(FIELD, format!("{} does not install: {reason:?}", p.package))
            })?;
        }
        Ok(())
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
        if let Some(iccid) = &self.card.iccid {
            if !(18..=20).contains(&iccid.len()) || !iccid.bytes().all(|b| b.is_ascii_digit()) {
                return Err(field(
                    "card.iccid",
                    format!("expected 18 to 20 digits, got {iccid:?}"),
                ));
            }
        }
        match (&self.euicc, &self.usim, &self.card.iccid) {
            (Some(e), None, _) => return self.build_euicc(atr, e),
            (Some(_), Some(_), _) => {
                return Err(field(
                    "usim",
                    "an eUICC has no [usim] section: its USIM comes from the enabled profile",
                ))
            }
            (None, None, _) => return Err(field("usim", "a UICC needs a [usim] section")),
            (None, _, None) => return Err(field("card.iccid", "a UICC needs an ICCID")),
            (None, Some(_), Some(_)) => {}
        }
        let Some(usim) = &self.usim else {
            return Err(field("usim", "a UICC needs a [usim] section"));
        };
        let aid =
            hex::decode(&usim.aid).map_err(|e| field("usim.aid", format!("expected hex ({e})")))?;
        if !(5..=16).contains(&aid.len()) {
            return Err(field(
                "usim.aid",
                format!("expected 5 to 16 bytes, got {}", aid.len()),
            ));
        }
        if crate::saip::encode_imsi(&usim.imsi).is_err() {
            return Err(field(
                "usim.imsi",
                format!("expected 6 to 15 digits, got {:?}", usim.imsi),
            ));
        }
        if let Some(m) = &usim.msisdn {
            if crate::saip::encode_msisdn_record(m, ts_31_102::MSISDN_RECORD_LEN).is_err() {
                return Err(field(
                    "usim.msisdn",
                    format!("expected up to 20 digits with an optional leading +, got {m:?}"),
                ));
            }
        }
        if !(2..=3).contains(&usim.mnc_length) {
            return Err(field("usim.mnc_length", "expected 2 or 3"));
        }
        if let Some(spn) = &usim.spn {
            check_spn(spn)?;
        }

        let mut fs = FileSystem::new(ArrRef {
            arr_fid: FID_ARR_MF,
            record: rules::READ_ALWAYS,
        });
        self.build_mf_files(&mut fs, Some(&aid))?;
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
            usim: Some(self.usim_state(usim)?),
            ota: self.ota.keys()?,
            euicc: None,
        };
        Ok((atr, state))
    }

    /// An eUICC with no profile: the MF files (EF.DIR listing no application) and PINs as
    /// the content shown while no profile is enabled, and the eUICC identity.
    fn build_euicc(
        &self,
        atr: Vec<u8>,
        e: &EuiccSection,
    ) -> Result<(Vec<u8>, CardState), DefinitionError> {
        let mut fs = FileSystem::new(ArrRef {
            arr_fid: FID_ARR_MF,
            record: rules::READ_ALWAYS,
        });
        self.build_mf_files(&mut fs, None)?;
        for o in &self.files {
            apply_override(&mut fs, o)?;
        }
        let pins = self.pins()?;
        let ota = self.ota.keys()?;
        let base = ProfileContent {
            fs: fs.clone(),
            pins: pins.clone(),
            usim: None,
            ota: ota.clone(),
        };
        let state = CardState {
            fs,
            pins,
            usim: None,
            ota,
            euicc: Some(Box::new(self.euicc_state(e, base)?)),
        };
        Ok((atr, state))
    }

    fn build_mf_files(
        &self,
        fs: &mut FileSystem,
        aid: Option<&[u8]>,
    ) -> Result<(), DefinitionError> {
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
        let record = match aid {
            Some(aid) => {
                let template = [
                    crate::tlv::encode(0x4F, aid),
                    crate::tlv::encode(0x50, b"USIM"),
                ]
                .concat();
                let mut record = crate::tlv::encode(0x61, &template);
                record.resize(DIR_RECORD_LEN, 0xFF);
                record
            }
            None => vec![0xFF; DIR_RECORD_LEN],
        };
        let dir = FileBody::LinearFixed {
            record_len: DIR_RECORD_LEN,
            records: vec![record, vec![0xFF; DIR_RECORD_LEN]],
        };
        fs.add(
            FileSystem::MF,
            fs::ef(FID_DIR, Some(0x1E), at(rules::READ_ALWAYS), dir),
        )?;
        if let Some(iccid) = &self.card.iccid {
            let iccid = crate::saip::encode_iccid_ef(iccid)
                .map_err(|e| field("card.iccid", e.to_string()))?
                .to_vec();
            fs.add(
                FileSystem::MF,
                fs::ef(
                    FID_ICCID,
                    Some(0x02),
                    at(rules::READ_ALWAYS),
                    FileBody::Transparent(iccid),
                ),
            )?;
        }
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
            if v.len() != PUK_DIGITS || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(field(
                    name,
                    format!("expected {PUK_DIGITS} digits (a PUK is 8 digits), got {v:?}"),
                ));
            }
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

    fn usim_state(&self, usim: &UsimSection) -> Result<UsimState, DefinitionError> {
        let aka = &usim.aka;
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

/// The `[ota]` section: the card's OTA keysets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtaSection {
    #[serde(default, rename = "keyset")]
    pub keysets: Vec<KeysetSection>,
}

/// One `[[ota.keyset]]`: KIc and KID with their key index (1–15), algorithm and key (hex),
/// and the minimum security level the remote applications demand of packets using it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysetSection {
    pub kic_index: u8,
    /// `3des-cbc2`, `3des-cbc3` or `aes-cbc`.
    pub kic_algorithm: String,
    pub kic: String,
    pub kid_index: u8,
    /// `3des-cbc-mac2`, `3des-cbc-mac3` or `aes-cmac`.
    pub kid_algorithm: String,
    pub kid: String,
    /// E.g. `cc+ciphering` (the default) or `cc+ciphering+counter-higher`.
    pub min_security_level: Option<String>,
    /// The counter value the card starts from (the highest already used).
    #[serde(default)]
    pub counter: u64,
}

impl OtaSection {
    /// The keysets as the card holds them (a sender uses their `keys`).
    pub fn keys(&self) -> Result<OtaKeys, DefinitionError> {
        let mut keysets = Vec::new();
        for k in &self.keysets {
            let kic_algorithm = match k.kic_algorithm.as_str() {
                "3des-cbc2" => CipherAlgorithm::TripleDesCbc2,
                "3des-cbc3" => CipherAlgorithm::TripleDesCbc3,
                "aes-cbc" => CipherAlgorithm::AesCbc,
                other => {
                    return Err(field(
                        "ota.keyset.kic_algorithm",
                        format!(
                            "expected \"3des-cbc2\", \"3des-cbc3\" or \"aes-cbc\", got {other:?}"
                        ),
                    ))
                }
            };
            let kid_algorithm = match k.kid_algorithm.as_str() {
                "3des-cbc-mac2" => MacAlgorithm::TripleDesCbcMac2,
                "3des-cbc-mac3" => MacAlgorithm::TripleDesCbcMac3,
                "aes-cmac" => MacAlgorithm::AesCmac,
                other => {
                    return Err(field(
                        "ota.keyset.kid_algorithm",
                        format!(
                            "expected \"3des-cbc-mac2\", \"3des-cbc-mac3\" or \"aes-cmac\", got {other:?}"
                        ),
                    ))
                }
            };
            let key = |name: &'static str, v: &str| {
                hex::decode(v.replace(' ', ""))
                    .map_err(|e| field(name, format!("expected hex ({e})")))
            };
            let keys = Keyset {
                kic_index: k.kic_index,
                kic_algorithm,
                kic: key("ota.keyset.kic", &k.kic)?,
                kid_index: k.kid_index,
                kid_algorithm,
                kid: key("ota.keyset.kid", &k.kid)?,
            };
            keys.check()
                .map_err(|e| field("ota.keyset", e.to_string()))?;
            let min_security_level = match &k.min_security_level {
                Some(text) => SecurityLevel::parse(text)
                    .map_err(|e| field("ota.keyset.min_security_level", e.to_string()))?,
                None => SecurityLevel::CC_CIPHERED,
            };
            if k.counter > COUNTER_MAX {
                return Err(field(
                    "ota.keyset.counter",
                    "expected at most 2^40 - 1 (five bytes)",
                ));
            }
            if keysets
                .iter()
                .any(|c: &CardKeyset| c.keys.kid_index == keys.kid_index)
            {
                return Err(field(
                    "ota.keyset.kid_index",
                    format!("{} is used by two keysets", keys.kid_index),
                ));
            }
            keysets.push(CardKeyset {
                keys,
                min_security_level,
                counter: k.counter,
            });
        }
        Ok(OtaKeys {
            keysets,
            ..OtaKeys::default()
        })
    }
}

/// SGP.29 EID check: the 32 digits read as a number are 1 modulo 97 (ISO 7064 MOD 97-10).
fn eid_check_digits_ok(eid: &str) -> bool {
    eid.len() == 32
        && eid.bytes().all(|b| b.is_ascii_digit())
        && eid
            .bytes()
            .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97)
            == 1
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
