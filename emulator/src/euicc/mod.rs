//! The eUICC of GSMA SGP.22 v2.5: the ISD-R (§2.2.1) reached over ES10a/b/c (§5.7) with
//! STORE DATA, the ECASD (§2.2.2) holding its credentials, profiles in ISD-Ps with their
//! metadata and policy rules (§2.4, §2.9), notifications (§3.5) and the profile download
//! session (§3.1.3).
//!
//! One module per interface: [`isd_r`] (selection, STORE DATA segmentation, dispatch on the
//! ES10 tag), [`es10a`], [`es10b`], [`es10c`], [`download`] (the session state machine and the
//! bound profile package), [`install`] (SAIP → card content), [`notifications`], [`cert`].
//!
//! Persistent state is [`EuiccState`] (inside [`crate::state::CardState`]); the download session
//! and STORE DATA reassembly are volatile ([`isd_r::EuiccSession`]), lost on reset as on a real
//! card. The ISD-R and the ECASD are hosted through the card's one application interface
//! ([`crate::app::Application`], implemented in [`isd_r`]).
//!
//! Profile switching uses REFRESH semantics (§3.2.1, ETSI TS 102 223 REFRESH "UICC reset"):
//! EnableProfile/DisableProfile/DeleteProfile change the profile states at once (visible in
//! GetProfilesInfo), and the card's telecom content (MF, EF.ICCID, USIM, AUTHENTICATE) follows
//! at the next reset or power-on — whatever the refreshFlag says, since this card sends no
//! proactive REFRESH. Until then the previous content stays usable, as on a phone that has
//! not yet restarted the modem.

pub mod cert;
pub mod download;
pub mod es10a;
pub mod es10b;
pub mod es10c;
pub mod install;
pub mod isd_r;
pub mod notifications;

use crate::aka::UsimState;
use crate::fs::FileSystem;
use crate::ota::keys::OtaKeys;
use crate::pin::PinStore;
use crate::rsp::ecdsa::{RawSignature, SigningKey};
use crate::rsp::es10::{
    Iccid, IconType, NotificationConfiguration, OperatorId, PprIds, ProfileClass,
    ProfilePolicyAuthorisationRule, StoreMetadataRequest,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// ISD-R AID (SGP.22 §2.2.1).
pub const ISD_R_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00,
];
/// ECASD AID (SGP.22 §2.2.2).
pub const ECASD_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x02, 0x00,
];
/// ISD-P AIDs are allocated as `A0000005591010FFFFFFFF89 00 00 1x 00` (SGP.22 §2.2.3 leaves
/// them to the EUM; this is the common pattern).
const ISD_P_AID_PREFIX: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89,
];

/// Problems building an eUICC from its configuration.
#[derive(Debug, Error)]
pub enum EuiccError {
    #[error("eUICC private key: {0}")]
    Key(String),
    #[error("eUICC certificate {which}: {problem}")]
    Certificate {
        which: &'static str,
        problem: String,
    },
}

/// The eUICC's identity (ECASD content, SGP.22 §2.2.2): EID, its certificate and key, the EUM
/// certificate and the trusted CI certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub eid: [u8; 16],
    pub euicc_certificate: Vec<u8>,
    /// SK.EUICC.ECDSA as PEM (SEC 1 or PKCS#8).
    pub euicc_private_key_pem: String,
    pub eum_certificate: Vec<u8>,
    pub ci_certificates: Vec<Vec<u8>>,
    /// SK.EUICC.ECDSA parsed once (parsing derives the public key: a scalar multiplication
    /// per signature otherwise). Not part of the state: rebuilt from the PEM after loading.
    #[serde(skip)]
    pub key_cache: KeyCache,
}

/// A lazily parsed signing key; it never makes two identities unequal.
#[derive(Debug, Clone, Default)]
pub struct KeyCache(std::sync::OnceLock<SigningKey>);

impl PartialEq for KeyCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for KeyCache {}

impl Identity {
    pub fn signing_key(&self) -> Result<SigningKey, EuiccError> {
        if let Some(key) = self.key_cache.0.get() {
            return Ok(key.clone());
        }
        let key = SigningKey::from_pem(&self.euicc_private_key_pem)
            .map_err(|e| EuiccError::Key(e.to_string()))?;
        Ok(self.key_cache.0.get_or_init(|| key).clone())
    }

    /// The trusted CIs (the ones whose certificate parses).
    pub fn trusted_cis(&self) -> Vec<cert::TrustedCi> {
        self.ci_certificates
            .iter()
            .filter_map(|c| cert::TrustedCi::from_certificate(c).ok())
            .collect()
    }

    /// Checks the configuration: the key signs, the certificates parse, every CI has a SKI.
    pub fn check(&self) -> Result<(), EuiccError> {
        let key = self.signing_key()?;
        let cert_key =
            crate::rsp::ecdsa::VerifyingKey::from_certificate_der(&self.euicc_certificate)
                .map_err(|e| EuiccError::Certificate {
                    which: "eUICC",
                    problem: e.to_string(),
                })?;
        if cert_key.to_uncompressed() != key.verifying_key().to_uncompressed() {
            return Err(EuiccError::Certificate {
                which: "eUICC",
                problem: "its public key does not match the private key".into(),
            });
        }
        crate::rsp::ecdsa::CertificateParts::parse(&self.eum_certificate).map_err(|e| {
            EuiccError::Certificate {
                which: "EUM",
                problem: e.to_string(),
            }
        })?;
        for c in &self.ci_certificates {
            cert::TrustedCi::from_certificate(c).map_err(|e| EuiccError::Certificate {
                which: "CI",
                problem: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// What GetEUICCInfo2 reports besides the CI lists (SGP.22 §5.7.8), and addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EuiccConfig {
    pub isd_r_aid: Vec<u8>,
    pub ecasd_aid: Vec<u8>,
    pub default_dp_address: Option<String>,
    /// The address a memory reset with resetDefaultSmdpAddress restores.
    pub factory_dp_address: Option<String>,
    pub root_ds_address: String,
    pub svn: [u8; 3],
    pub profile_version: [u8; 3],
    pub firmware_version: [u8; 3],
    pub ext_card_resource: Vec<u8>,
    pub uicc_capability: Vec<u8>,
    pub rsp_capability: Vec<u8>,
    pub javacard_version: Option<[u8; 3]>,
    pub globalplatform_version: Option<[u8; 3]>,
    pub euicc_category: Option<u64>,
    pub pp_version: [u8; 3],
    pub sas_accreditation_number: String,
    pub max_profiles: usize,
    /// The Rules Authorisation Table (SGP.22 §2.9.2.2).
    pub rat: Vec<ProfilePolicyAuthorisationRule>,
}

impl Default for EuiccConfig {
    fn default() -> Self {
        Self {
            isd_r_aid: ISD_R_AID.to_vec(),
            ecasd_aid: ECASD_AID.to_vec(),
            default_dp_address: None,
            factory_dp_address: None,
            root_ds_address: "lpa.ds.gsma.com".into(),
            svn: [2, 5, 0],
            profile_version: [2, 3, 1],
            firmware_version: [1, 0, 0],
            // ETSI TS 102 226 §8.2.1.3.2: '81' installed apps, '82' free NV memory, '83' free RAM.
            ext_card_resource: vec![
                0x81, 0x01, 0x00, 0x82, 0x04, 0x00, 0x04, 0x00, 0x00, 0x83, 0x02, 0x20, 0x00,
            ],
            // UICCCapability (DER content): usimSupport(1), isimSupport(2), akaMilenage(4).
            uicc_capability: vec![0x03, 0x68],
            // RspCapability: additionalProfile, testProfileSupport (bits 0 and 3).
            rsp_capability: vec![0x04, 0x90],
            javacard_version: None,
            globalplatform_version: Some([2, 3, 1]),
            euicc_category: Some(1),
            pp_version: [0, 0, 1],
            sas_accreditation_number: "SIMLAB-TEST-0000".into(),
            max_profiles: 8,
            rat: vec![ProfilePolicyAuthorisationRule {
                ppr_ids: PprIds {
                    update_control: false,
                    ppr1: true,
                    ppr2: true,
                    ppr3: false,
                },
                // SGP.22 §2.9.2.2: 'E' digits in mccMnc are wildcards.
                allowed_operators: vec![OperatorId {
                    mcc_mnc: vec![0xEE, 0xEE, 0xEE],
                    gid1: None,
                    gid2: None,
                }],
                consent_required: false,
            }],
        }
    }
}

/// The telecom content a profile brings (or the eUICC's own, with no profile enabled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileContent {
    pub fs: FileSystem,
    pub pins: PinStore,
    pub usim: Option<UsimState>,
    /// The profile's OTA keysets (SCP80, from its security domain's key list).
    #[serde(default)]
    pub ota: OtaKeys,
}

/// One installed profile (its ISD-P with metadata, SGP.22 §2.4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub iccid: Iccid,
    pub isdp_aid: Vec<u8>,
    pub enabled: bool,
    pub nickname: Option<String>,
    pub service_provider_name: String,
    pub profile_name: String,
    pub icon_type: Option<u64>,
    pub icon: Option<Vec<u8>>,
    pub class: u64,
    pub notification_configuration: Vec<NotificationConfig>,
    pub profile_owner: Option<OperatorId>,
    pub ppr: PprIds,
    pub dp_proprietary_data: Option<Vec<u8>>,
    pub content: ProfileContent,
}

impl Profile {
    pub fn class(&self) -> ProfileClass {
        ProfileClass::from_code(self.class)
    }
}

/// `NotificationConfigurationInformation` in a serialisable form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationConfig {
    pub install: bool,
    pub enable: bool,
    pub disable: bool,
    pub delete: bool,
    pub address: String,
}

impl From<&NotificationConfiguration> for NotificationConfig {
    fn from(c: &NotificationConfiguration) -> Self {
        Self {
            install: c.events.install,
            enable: c.events.enable,
            disable: c.events.disable,
            delete: c.events.delete,
            address: c.address.clone(),
        }
    }
}

/// One pending notification: its sequence number, event, address and the signed DER
/// (`PendingNotification`) as RetrieveNotificationsList returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredNotification {
    pub seq_number: u64,
    /// NotificationEvent bit number (0 install … 3 delete).
    pub event: u8,
    pub address: String,
    pub iccid: Option<Iccid>,
    pub der: Vec<u8>,
}

/// Everything the eUICC keeps across power cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EuiccState {
    pub identity: Identity,
    pub config: EuiccConfig,
    pub profiles: Vec<Profile>,
    pub notifications: Vec<StoredNotification>,
    /// Last sequence number given to a notification.
    pub last_seq_number: u64,
    /// Counter for ISD-P AIDs.
    pub isdp_counter: u32,
    /// The profile whose content is the card's live content (`None`: the eUICC's own MF).
    pub active: Option<Iccid>,
    /// The content presented with no profile enabled (MF without applications).
    pub base: ProfileContent,
}

impl EuiccState {
    pub fn new(identity: Identity, config: EuiccConfig, base: ProfileContent) -> Self {
        Self {
            identity,
            config,
            profiles: Vec::new(),
            notifications: Vec::new(),
            last_seq_number: 0,
            isdp_counter: 0,
            active: None,
            base,
        }
    }

    pub fn enabled_profile(&self) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.enabled)
    }

    pub fn profile_index(&self, id: &crate::rsp::es10::ProfileIdentifier) -> Option<usize> {
        use crate::rsp::es10::ProfileIdentifier as Id;
        self.profiles.iter().position(|p| match id {
            Id::Iccid(i) => p.iccid == *i,
            Id::IsdpAid(a) => p.isdp_aid == *a,
        })
    }

    /// A fresh ISD-P AID.
    fn next_isdp_aid(&mut self) -> Vec<u8> {
        loop {
            self.isdp_counter = self.isdp_counter.wrapping_add(1);
            let n = self.isdp_counter;
            let mut aid = ISD_P_AID_PREFIX.to_vec();
            aid.extend_from_slice(&[
                0x00,
                0x00,
                0x10u8.wrapping_add((n & 0x0F) as u8),
                (n >> 4) as u8,
            ]);
            if !self.profiles.iter().any(|p| p.isdp_aid == aid) {
                return aid;
            }
        }
    }

    /// Adds an installed profile (disabled) with its metadata (SGP.22 §2.4.4, §5.7.6);
    /// returns its new ISD-P AID. The caller has checked the metadata (ICCID unique, class,
    /// policy rules) and the free room.
    pub fn add_profile(
        &mut self,
        installed: install::Installed,
        metadata: Option<&StoreMetadataRequest>,
        dp_proprietary_data: Option<Vec<u8>>,
    ) -> Vec<u8> {
        let aid = self.next_isdp_aid();
        let m = metadata;
        self.profiles.push(Profile {
            iccid: installed.iccid,
            isdp_aid: aid.clone(),
            enabled: false,
            nickname: None,
            service_provider_name: m
                .map(|m| m.service_provider_name.clone())
                .unwrap_or_default(),
            profile_name: m.map(|m| m.profile_name.clone()).unwrap_or_default(),
            icon_type: m.and_then(|m| m.icon_type).map(IconType::code),
            icon: m.and_then(|m| m.icon.clone()),
            class: m
                .and_then(|m| m.profile_class)
                .unwrap_or(ProfileClass::Operational)
                .code(),
            notification_configuration: m
                .and_then(|m| m.notification_configuration.as_ref())
                .map(|list| list.iter().map(NotificationConfig::from).collect())
                .unwrap_or_default(),
            profile_owner: m.and_then(|m| m.profile_owner.clone()),
            ppr: m.and_then(|m| m.ppr).unwrap_or_default(),
            dp_proprietary_data,
            content: installed.content,
        });
        aid
    }

    /// Signs with SK.EUICC.ECDSA.
    pub fn sign(&self, msg: &[u8]) -> Result<RawSignature, EuiccError> {
        Ok(self.identity.signing_key()?.sign(msg))
    }
}

/// Applies a pending profile change to the card's live content (the REFRESH of the module
/// documentation): `live` goes back to its owner and the enabled profile's content (or the
/// eUICC's own, with none enabled) takes its place. Returns whether anything changed (and so
/// must be saved).
pub fn refresh(euicc: &mut EuiccState, live: &mut ProfileContent) -> bool {
    let target = euicc.enabled_profile().map(|p| p.iccid);
    if target == euicc.active {
        return false;
    }
    let incoming = match target {
        Some(iccid) => euicc
            .profiles
            .iter()
            .find(|p| p.iccid == iccid)
            .map(|p| p.content.clone()),
        None => None,
    }
    .unwrap_or_else(|| euicc.base.clone());
    let outgoing = std::mem::replace(live, incoming);
    // The outgoing content goes back to its owner (a deleted profile's is dropped).
    match euicc.active {
        None => euicc.base = outgoing,
        Some(iccid) => {
            if let Some(p) = euicc.profiles.iter_mut().find(|p| p.iccid == iccid) {
                p.content = outgoing;
            }
        }
    }
    euicc.active = target;
    true
}
