//! ES10c (SGP.22 v2.5 §5.7.15–§5.7.21): GetProfilesInfo, EnableProfile, DisableProfile,
//! DeleteProfile, eUICCMemoryReset, GetEID, SetNickname.
//!
//! State rules (§2.4.x, §3.2): at most one profile is enabled; only a disabled profile can be
//! enabled or deleted; only the enabled one can be disabled. Profile policy rules (§2.9.1):
//! PPR1 forbids disabling (and so enabling another profile in its place), PPR2 forbids
//! deletion, PPR3 deletes the profile once it is disabled. Notifications follow each
//! operation the profile's metadata asks for. The card content switches at the next reset
//! (see the module documentation of [`super`]).

use super::{notifications, EuiccState};
use crate::rsp::es10::*;
use crate::status::StatusWord;

/// GetProfilesInfo (§5.7.15): all profiles or those matching the search criteria, with the
/// fields of the tag list (all fields without one).
pub fn get_profiles_info(state: &EuiccState, bytes: &[u8]) -> ProfileInfoListResponse {
    let Ok(req) = ProfileInfoListRequest::from_der(bytes) else {
        return ProfileInfoListResponse::Error(ProfileInfoListError::IncorrectInputValues);
    };
    let tags = match req.tag_list.as_deref().map(split_tags) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            return ProfileInfoListResponse::Error(ProfileInfoListError::IncorrectInputValues)
        }
    };
    let list = state
        .profiles
        .iter()
        .filter(|p| match &req.search {
            None => true,
            Some(ProfileSearch::Iccid(i)) => p.iccid == *i,
            Some(ProfileSearch::IsdpAid(a)) => p.isdp_aid == *a,
            Some(ProfileSearch::ProfileClass(c)) => p.class() == *c,
        })
        .map(|p| {
            let want = |tag: u32| tags.as_ref().is_none_or(|t| t.contains(&tag));
            ProfileInfo {
                iccid: want(TAG_ICCID).then_some(p.iccid),
                isdp_aid: want(TAG_ISDP_AID).then(|| p.isdp_aid.clone()),
                state: want(TAG_PROFILE_STATE).then_some(if p.enabled {
                    ProfileState::Enabled
                } else {
                    ProfileState::Disabled
                }),
                nickname: p.nickname.clone().filter(|_| want(TAG_NICKNAME)),
                service_provider_name: want(TAG_SERVICE_PROVIDER_NAME)
                    .then(|| p.service_provider_name.clone()),
                profile_name: want(TAG_PROFILE_NAME).then(|| p.profile_name.clone()),
                icon_type: p
                    .icon_type
                    .map(IconType::from_code)
                    .filter(|_| want(TAG_ICON_TYPE)),
                icon: p.icon.clone().filter(|_| want(TAG_ICON)),
                profile_class: want(TAG_PROFILE_CLASS).then(|| p.class()),
                notification_configuration: (want(TAG_NOTIFICATION_CONFIGURATION)
                    && !p.notification_configuration.is_empty())
                .then(|| {
                    p.notification_configuration
                        .iter()
                        .map(|c| NotificationConfiguration {
                            events: NotificationEvents {
                                install: c.install,
                                enable: c.enable,
                                disable: c.disable,
                                delete: c.delete,
                            },
                            address: c.address.clone(),
                        })
                        .collect()
                }),
                profile_owner: p.profile_owner.clone().filter(|_| want(TAG_PROFILE_OWNER)),
                dp_proprietary_data: p
                    .dp_proprietary_data
                    .clone()
                    .filter(|_| want(TAG_DP_PROPRIETARY_DATA)),
                ppr: (want(TAG_PPR_IDS) && p.ppr.any()).then_some(p.ppr),
            }
        })
        .collect();
    ProfileInfoListResponse::Ok(list)
}

/// The tags of a tag list (BER tags back to back); `None` if one is cut short.
fn split_tags(list: &[u8]) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&first) = list.get(i) {
        let mut tag = u32::from(first);
        i += 1;
        if first & 0x1F == 0x1F {
            loop {
                let b = *list.get(i)?;
                tag = (tag << 8) | u32::from(b);
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        out.push(tag);
    }
    Some(out)
}

/// Disables profile `index` (state, notification, PPR3 deletion).
fn disable_at(state: &mut EuiccState, index: usize) {
    let Some(p) = state.profiles.get_mut(index) else {
        return;
    };
    p.enabled = false;
    let profile = p.clone();
    // A failed signature only loses the notification; the operation itself stands.
    let _ = notifications::profile_event(state, &profile, NotificationEvent::Disable);
    if profile.ppr.ppr3 {
        state.profiles.remove(index);
        let _ = notifications::profile_event(state, &profile, NotificationEvent::Delete);
    }
}

/// EnableProfile (§5.7.16).
pub fn enable_profile(state: &mut EuiccState, req: &EnableProfileRequest) -> EnableProfileResponse {
    let result = (|| {
        let Some(target) = state.profile_index(&req.id) else {
            return EnableProfileResult::IccidOrAidNotFound;
        };
        let Some(t) = state.profiles.get(target) else {
            return EnableProfileResult::IccidOrAidNotFound;
        };
        if t.enabled {
            return EnableProfileResult::ProfileNotInDisabledState;
        }
        let target_iccid = t.iccid;
        if let Some(current) = state.profiles.iter().position(|p| p.enabled) {
            if state.profiles.get(current).is_some_and(|p| p.ppr.ppr1) {
                return EnableProfileResult::DisallowedByPolicy;
            }
            disable_at(state, current);
        }
        // PPR3 may have removed the old profile: find the target again.
        let Some(p) = state.profiles.iter_mut().find(|p| p.iccid == target_iccid) else {
            return EnableProfileResult::UndefinedError;
        };
        p.enabled = true;
        let profile = p.clone();
        let _ = notifications::profile_event(state, &profile, NotificationEvent::Enable);
        EnableProfileResult::Ok
    })();
    EnableProfileResponse { result }
}

/// DisableProfile (§5.7.17).
pub fn disable_profile(
    state: &mut EuiccState,
    req: &DisableProfileRequest,
) -> DisableProfileResponse {
    let result = match state.profile_index(&req.id) {
        None => DisableProfileResult::IccidOrAidNotFound,
        Some(i) => match state.profiles.get(i) {
            Some(p) if !p.enabled => DisableProfileResult::ProfileNotInEnabledState,
            Some(p) if p.ppr.ppr1 => DisableProfileResult::DisallowedByPolicy,
            Some(_) => {
                disable_at(state, i);
                DisableProfileResult::Ok
            }
            None => DisableProfileResult::IccidOrAidNotFound,
        },
    };
    DisableProfileResponse { result }
}

/// DeleteProfile (§5.7.18).
pub fn delete_profile(state: &mut EuiccState, req: &DeleteProfileRequest) -> DeleteProfileResponse {
    let result = match state.profile_index(&req.id) {
        None => DeleteProfileResult::IccidOrAidNotFound,
        Some(i) => match state.profiles.get(i).cloned() {
            Some(p) if p.enabled => DeleteProfileResult::ProfileNotInDisabledState,
            Some(p) if p.ppr.ppr2 => DeleteProfileResult::DisallowedByPolicy,
            Some(p) => {
                state.profiles.remove(i);
                let _ = notifications::profile_event(state, &p, NotificationEvent::Delete);
                DeleteProfileResult::Ok
            }
            None => DeleteProfileResult::IccidOrAidNotFound,
        },
    };
    DeleteProfileResponse { result }
}

/// eUICCMemoryReset (§5.7.19): deletes the profiles of the classes asked for (enabled ones
/// and policy rules included, no notifications), and/or restores the default SM-DP+ address.
pub fn memory_reset(
    state: &mut EuiccState,
    req: &EuiccMemoryResetRequest,
) -> EuiccMemoryResetResponse {
    let before = state.profiles.len();
    state.profiles.retain(|p| {
        let class = p.class();
        !((req.delete_operational_profiles && class == ProfileClass::Operational)
            || (req.delete_field_loaded_test_profiles && class == ProfileClass::Test))
    });
    let mut changed = state.profiles.len() != before;
    if req.reset_default_smdp_address
        && state.config.default_dp_address != state.config.factory_dp_address
    {
        state.config.default_dp_address = state.config.factory_dp_address.clone();
        changed = true;
    }
    EuiccMemoryResetResponse {
        result: if changed {
            EuiccMemoryResetResult::Ok
        } else {
            EuiccMemoryResetResult::NothingToDelete
        },
    }
}

/// GetEID (§5.7.20): the tag list must ask for the EID ('5A').
pub fn get_eid(state: &EuiccState, req: &GetEuiccDataRequest) -> Result<Vec<u8>, StatusWord> {
    if !req.tag_list.contains(&0x5A) {
        return Err(StatusWord::ReferencedDataNotFound);
    }
    Ok(GetEuiccDataResponse {
        eid: state.identity.eid,
    }
    .to_der())
}

/// SetNickname (§5.7.21).
pub fn set_nickname(state: &mut EuiccState, req: &SetNicknameRequest) -> SetNicknameResponse {
    let result = if req.nickname.len() > 64 {
        SetNicknameResult::UndefinedError
    } else if let Some(p) = state.profiles.iter_mut().find(|p| p.iccid == req.iccid) {
        p.nickname = (!req.nickname.is_empty()).then(|| req.nickname.clone());
        SetNicknameResult::Ok
    } else {
        SetNicknameResult::IccidNotFound
    };
    SetNicknameResponse { result }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tag_lists_into_ber_tags() {
        assert_eq!(
            split_tags(&[0x5A, 0x9F, 0x70, 0x90]),
            Some(vec![0x5A, 0x9F70, 0x90])
        );
        assert_eq!(split_tags(&[0x5A, 0x9F]), None);
        assert_eq!(split_tags(&[]), Some(vec![]));
    }
}
