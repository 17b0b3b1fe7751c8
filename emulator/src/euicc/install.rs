//! Profile installation: the unprotected profile package (TCA eUICC Profile Package v2.x,
//! decoded by [`crate::saip`]) becomes the card content of the profile — its file system
//! (MF, DFs, ADFs and EFs with their content, SFIs, life cycle and EF.ARR references), its
//! PINs and PUKs, and the USIM's authentication algorithm from `akaParameter`.
//!
//! Supported: Milenage (default constants) and the 3GPP XOR test algorithm. TUAK, and
//! Milenage with non-default rotation/XOR constants, make the installation fail with
//! `installFailedDueToPEProcessingError` (SGP.22 v2.5 §5.7.6 ErrorReason 12). BER-TLV EFs are
//! left out: the card's file system has no BER-TLV structure.

use super::{EuiccState, ProfileContent};
use crate::aka::{AkaAlgorithm, SqnStore};
use crate::fs::{self, ArrRef, FileBody, FileSystem, LifeCycle, NodeId};
use crate::pin::{Pin, PinStore, Puk};
use crate::rsp::es10::{
    ErrorReason, Iccid, NotificationConfiguration, NotificationEvents, ProfileClass,
    StoreMetadataRequest,
};
use crate::saip::{self, FileKind, SaipFile};
use crate::ts_31_102::UsimState;
use std::collections::HashMap;

const FID_MF: u16 = 0x3F00;
/// EF.ARR of the MF and of DFs/ADFs (TS 102 221 §13.4, TS 31.102 §4.2.?).
const FID_ARR_MF: u16 = 0x2F06;
const FID_ARR_DF: u16 = 0x6F06;
/// RID + application code of a USIM AID (TS 101 220 Annex E, TS 31.102 §4.1).
const USIM_AID_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02];
/// LCSI values meaning "operational, deactivated" (TS 102 221 Table 11.6).
const LCSI_DEACTIVATED: [u8; 2] = [0x04, 0x06];
/// The Milenage constants the card implements (TS 35.206 §4.1), as SAIP defaults them.
const MILENAGE_ROTATION: [u8; 5] = [0x40, 0x00, 0x20, 0x40, 0x60];

/// The outcome of decoding a package: the content and the header's ICCID.
#[derive(Debug)]
pub struct Installed {
    pub iccid: Iccid,
    pub content: ProfileContent,
}

/// Builds the profile's card content; the error is the ErrorReason to report.
pub fn build(upp: &[u8]) -> Result<Installed, ErrorReason> {
    let pkg = saip::decode(upp).map_err(|_| ErrorReason::InstallFailedDueToPeProcessingError)?;
    let iccid = Iccid(pkg.header.ef_iccid);
    let mf_arr = pkg
        .files
        .iter()
        .find(|f| f.path == [FID_MF])
        .and_then(|f| arr_ref(f, None))
        .unwrap_or(ArrRef {
            arr_fid: FID_ARR_MF,
            record: 1,
        });
    let mut fs = FileSystem::new(mf_arr);
    let mut ids: HashMap<Vec<u16>, NodeId> = HashMap::new();
    ids.insert(vec![FID_MF], FileSystem::MF);
    for f in &pkg.files {
        if f.path == [FID_MF] {
            continue;
        }
        let (parent, parent_path): (NodeId, &[u16]) = match &f.kind {
            FileKind::Adf { .. } => (FileSystem::MF, &[FID_MF]),
            _ => {
                let pp = f
                    .path
                    .get(..f.path.len().saturating_sub(1))
                    .unwrap_or_default();
                match ids.get(pp) {
                    Some(id) => (*id, pp),
                    // A file whose directory was not created: nothing to attach it to.
                    None => continue,
                }
            }
        };
        let inherited = fs.node(parent).map(|n| n.arr).unwrap_or(mf_arr);
        let arr = arr_ref(f, Some(parent_path)).unwrap_or(inherited);
        let Some(mut node) = node_of(f, arr) else {
            continue;
        };
        if LCSI_DEACTIVATED.contains(&f.lcsi) {
            node.life_cycle = LifeCycle::Deactivated;
        }
        match fs.add(parent, node) {
            Ok(id) => {
                ids.insert(f.path.clone(), id);
            }
            // SAIP may name a file twice (template default, then explicit): first one wins.
            Err(fs::FsError::DuplicateFid { .. }) => {}
            Err(_) => return Err(ErrorReason::InstallFailedDueToPeProcessingError),
        }
    }
    let pins = pins(&pkg);
    let usim = usim(&pkg)?;
    Ok(Installed {
        iccid,
        content: ProfileContent {
            fs,
            pins,
            usim,
            ota: crate::ota::keys::from_saip(&pkg),
        },
    })
}

/// A profile the card comes with (a card definition's `[[euicc.preinstalled]]`): the
/// metadata an SM-DP+ would have sent in StoreMetadata, and whether it starts enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    pub service_provider_name: String,
    pub profile_name: String,
    pub class: ProfileClass,
    /// Where its notifications go (every event), if anywhere.
    pub notification_address: Option<String>,
    pub enabled: bool,
}

/// Installs a profile package as the factory does: the same SAIP decoding and content
/// building as a download ([`build`]), the same checks as StoreMetadata (ICCID not yet on
/// the eUICC, room for one more profile; SGP.22 §5.7.6), the same [`EuiccState::add_profile`].
/// No notification is left: nothing was downloaded from anywhere. Returns the ISD-P AID.
pub fn preinstall(
    state: &mut EuiccState,
    upp: &[u8],
    preload: &Preload,
) -> Result<Vec<u8>, ErrorReason> {
    let installed = build(upp)?;
    if state.profiles.iter().any(|p| p.iccid == installed.iccid) {
        return Err(ErrorReason::InstallFailedDueToIccidAlreadyExistsOnEuicc);
    }
    if state.profiles.len() >= state.config.max_profiles {
        return Err(ErrorReason::InstallFailedDueToInsufficientMemoryForProfile);
    }
    if preload.enabled && state.enabled_profile().is_some() {
        // SGP.22 §2.4.4: at most one enabled profile.
        return Err(ErrorReason::IncorrectInputValues);
    }
    let metadata = StoreMetadataRequest {
        iccid: installed.iccid,
        service_provider_name: preload.service_provider_name.clone(),
        profile_name: preload.profile_name.clone(),
        icon_type: None,
        icon: None,
        profile_class: Some(preload.class),
        notification_configuration: preload.notification_address.as_ref().map(|a| {
            vec![NotificationConfiguration {
                events: NotificationEvents::ALL,
                address: a.clone(),
            }]
        }),
        profile_owner: None,
        ppr: None,
    };
    let aid = state.add_profile(installed, Some(&metadata), None);
    if preload.enabled {
        if let Some(p) = state.profiles.last_mut() {
            p.enabled = true;
        }
    }
    Ok(aid)
}

/// The node for one SAIP file (`None` for what this card cannot hold).
fn node_of(f: &SaipFile, arr: ArrRef) -> Option<fs::FileNode> {
    let fid = f.fid();
    let mut node = match &f.kind {
        FileKind::Df => fs::df(fid, None, arr),
        FileKind::Adf { aid } => fs::df(fid, Some(aid.clone()), arr),
        FileKind::Transparent { size } => {
            let mut content = f.content.clone();
            content.resize(*size, 0xFF);
            fs::ef(fid, f.sfi, arr, FileBody::Transparent(content))
        }
        FileKind::LinearFixed {
            record_len,
            records,
        } => fs::ef(
            fid,
            f.sfi,
            arr,
            FileBody::LinearFixed {
                record_len: *record_len,
                records: records_of(&f.content, *record_len, *records),
            },
        ),
        FileKind::Cyclic {
            record_len,
            records,
        } => fs::ef(
            fid,
            f.sfi,
            arr,
            FileBody::Cyclic {
                record_len: *record_len,
                records: records_of(&f.content, *record_len, *records),
            },
        ),
        FileKind::BerTlv { .. } => return None,
    };
    node.sfi = if f.kind.is_ef() { f.sfi } else { None };
    Some(node)
}

fn records_of(content: &[u8], record_len: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut r = content
                .get(i * record_len..)
                .map(|rest| rest.iter().take(record_len).copied().collect::<Vec<u8>>())
                .unwrap_or_default();
            r.resize(record_len, 0xFF);
            r
        })
        .collect()
}

/// TS 102 221 §11.1.1.4.7.3 referenced format ('8B'): record only (EF.ARR of the file's
/// directory), FID + record, or FID + (SEID, record) pairs (the first record is taken).
fn arr_ref(f: &SaipFile, parent_path: Option<&[u16]>) -> Option<ArrRef> {
    let v = f.security_attributes.as_deref()?;
    let under_mf =
        parent_path.is_none_or(|p| p == [FID_MF]) && !matches!(f.kind, FileKind::Adf { .. });
    match *v {
        [record] => Some(ArrRef {
            arr_fid: if under_mf { FID_ARR_MF } else { FID_ARR_DF },
            record,
        }),
        [hi, lo, record] => Some(ArrRef {
            arr_fid: u16::from_be_bytes([hi, lo]),
            record,
        }),
        [hi, lo, _seid, record, ..] => Some(ArrRef {
            arr_fid: u16::from_be_bytes([hi, lo]),
            record,
        }),
        _ => None,
    }
}

/// PINs and PUKs (SAIP §8.4): one store per profile, first definition of a key reference wins.
fn pins(pkg: &saip::ProfilePackage) -> PinStore {
    let mut store = PinStore::default();
    for p in &pkg.pins {
        if store.get(p.key_reference).is_some() {
            continue;
        }
        let puk = p.unblocking_reference.and_then(|r| {
            pkg.puks.iter().find(|k| k.key_reference == r).map(|k| Puk {
                value: k.value,
                max_attempts: k.max_attempts,
                attempts_left: k.retries_left,
            })
        });
        // ADM keys (0A–0E, 8A–8E) cannot be disabled (TS 102 221 §9.5.2).
        let adm = matches!(p.key_reference & 0x7F, 0x0A..=0x0E);
        store.insert(
            p.key_reference,
            Pin {
                value: p.value,
                max_attempts: p.max_attempts,
                attempts_left: p.retries_left,
                enabled: p.enabled(),
                can_disable: !adm,
                puk,
            },
        );
    }
    store
}

/// The USIM's algorithm from the akaParameter of its ADF (or the first one).
fn usim(pkg: &saip::ProfilePackage) -> Result<Option<UsimState>, ErrorReason> {
    let usim_path = pkg.files.iter().find_map(|f| match &f.kind {
        FileKind::Adf { aid } if aid.starts_with(&USIM_AID_PREFIX) => Some(f.path.clone()),
        _ => None,
    });
    let Some(usim_path) = usim_path else {
        return Ok(None);
    };
    let Some(aka) = pkg
        .aka
        .iter()
        .find(|a| a.context == usim_path && a.algorithm.is_some())
        .or_else(|| pkg.aka.iter().find(|a| a.algorithm.is_some()))
    else {
        return Ok(None);
    };
    let key = |v: &Option<Vec<u8>>| -> Result<[u8; 16], ErrorReason> {
        v.as_deref()
            .and_then(|k| k.try_into().ok())
            .ok_or(ErrorReason::InstallFailedDueToPeProcessingError)
    };
    let algorithm = match aka.algorithm {
        Some(saip::AkaAlgorithm::Milenage) => {
            if aka.rotation_constants != MILENAGE_ROTATION {
                return Err(ErrorReason::InstallFailedDueToPeProcessingError);
            }
            AkaAlgorithm::Milenage {
                k: key(&aka.k)?,
                opc: key(&aka.opc)?,
            }
        }
        Some(saip::AkaAlgorithm::UsimTestAlgorithm) => AkaAlgorithm::XorTest { k: key(&aka.k)? },
        _ => return Err(ErrorReason::InstallFailedDueToPeProcessingError),
    };
    Ok(Some(UsimState {
        algorithm,
        sqn: SqnStore::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_cut_and_padded_to_the_declared_shape() {
        let r = records_of(&[1, 2, 3, 4, 5], 2, 4);
        assert_eq!(
            r,
            vec![vec![1, 2], vec![3, 4], vec![5, 0xFF], vec![0xFF, 0xFF]]
        );
    }

    #[test]
    fn a_ts48_package_becomes_mf_usim_pins_and_xor_keys() {
        let der = include_bytes!("../../../vectors/profiles/TS48V1-A-UNIQUE.der");
        let installed = build(der).unwrap();
        assert_eq!(installed.iccid.digits(), "8949449999999990023");
        let fs = &installed.content.fs;
        let usim = fs.adfs_matching(&USIM_AID_PREFIX).next().expect("ADF.USIM");
        let imsi = fs
            .child_by_fid(usim, 0x6F07)
            .and_then(|n| fs.node(n))
            .unwrap();
        assert_eq!(
            imsi.body,
            FileBody::Transparent(hex::decode("080910101032540636").unwrap())
        );
        assert!(installed.content.pins.get(0x01).is_some_and(|p| !p.enabled));
        assert!(installed
            .content
            .pins
            .get(0x0A)
            .is_some_and(|p| !p.can_disable));
        let usim_state = installed.content.usim.unwrap();
        assert_eq!(
            usim_state.algorithm,
            AkaAlgorithm::XorTest {
                k: core::array::from_fn(|i| i as u8)
            }
        );
    }

    #[test]
    fn garbage_is_a_pe_processing_error() {
        assert_eq!(
            build(&[0x30, 0x00]).unwrap_err(),
            ErrorReason::InstallFailedDueToPeProcessingError
        );
    }
}
