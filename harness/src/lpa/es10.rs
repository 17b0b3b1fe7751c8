//! ES10a/b/c client (SGP.22 §5.7): typed requests to the ISD-R over any transport, using the
//! same message types the card decodes (`simlab_emulator::rsp::es10`).

use super::isd_r::{IsdR, IsdRError};
use crate::transport::Transport;
use simlab_emulator::rsp::es10::{self, Der};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LpaError {
    #[error(transparent)]
    IsdR(#[from] IsdRError),
    #[error("the eUICC's answer to {function} is not what SGP.22 defines: {source}")]
    Decode {
        function: &'static str,
        source: es10::Es10Error,
    },
    #[error("{function}: the eUICC answered {result}")]
    Result {
        function: &'static str,
        result: String,
    },
    #[error("ES9+ {0}")]
    Es9p(#[from] crate::es9p::client::Es9pError),
    #[error(
        "the SM-DP+ requires a confirmation code for this order (ccRequiredFlag): pass \
         --confirmation-code CODE"
    )]
    ConfirmationCodeRequired,
    #[error("{0}")]
    Other(String),
}

/// A profile as `list` shows it; JSON keys are SGP.22's ProfileInfo names (§5.7.15).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSummary {
    pub iccid: String,
    /// ISD-P AID, hex.
    pub isdp_aid: Option<String>,
    #[serde(rename = "profileState")]
    pub state: String,
    #[serde(rename = "profileNickname")]
    pub nickname: Option<String>,
    #[serde(rename = "serviceProviderName")]
    pub service_provider: Option<String>,
    #[serde(rename = "profileName")]
    pub name: Option<String>,
    #[serde(rename = "profileClass")]
    pub class: Option<String>,
}

/// ES10 functions over an open ISD-R channel.
#[derive(Debug)]
pub struct Es10Client<T: Transport> {
    isd_r: IsdR<T>,
}

fn decode<R: Der>(function: &'static str, bytes: &[u8]) -> Result<R, LpaError> {
    R::from_der(bytes).map_err(|source| LpaError::Decode { function, source })
}

fn iccid(digits: &str) -> Result<es10::Iccid, LpaError> {
    es10::Iccid::from_digits(digits)
        .ok_or_else(|| LpaError::Other(format!("{digits:?} is not an ICCID (18 to 20 digits)")))
}

impl<T: Transport> Es10Client<T> {
    /// Opens a logical channel and selects the ISD-R.
    pub fn open(transport: T) -> Result<Self, LpaError> {
        Ok(Self {
            isd_r: IsdR::open(transport)?,
        })
    }

    /// Closes the channel; gives the transport back.
    pub fn close(self) -> T {
        self.isd_r.close()
    }

    /// Sends a request, returns the raw answer.
    pub fn raw(&mut self, request: &[u8]) -> Result<Vec<u8>, LpaError> {
        Ok(self.isd_r.es10(request)?)
    }

    fn call<R: Der>(&mut self, function: &'static str, request: &impl Der) -> Result<R, LpaError> {
        let answer = self.raw(&request.to_der())?;
        decode(function, &answer)
    }

    /// ES10c.GetEID (§5.7.20).
    pub fn eid(&mut self) -> Result<String, LpaError> {
        let req = es10::GetEuiccDataRequest {
            tag_list: vec![0x5A],
        };
        let r: es10::GetEuiccDataResponse = self.call("GetEID", &req)?;
        Ok(hex::encode_upper(r.eid))
    }

    /// ES10b.GetEUICCInfo1 (§5.7.8), raw DER (it is relayed to the SM-DP+ as received).
    pub fn euicc_info1(&mut self) -> Result<Vec<u8>, LpaError> {
        self.raw(&es10::GetEuiccInfo1Request.to_der())
    }

    /// ES10b.GetEUICCInfo2 (§5.7.8), raw DER.
    pub fn euicc_info2(&mut self) -> Result<Vec<u8>, LpaError> {
        self.raw(&es10::GetEuiccInfo2Request.to_der())
    }

    /// ES10b.GetEUICCChallenge (§5.7.7).
    pub fn challenge(&mut self) -> Result<[u8; 16], LpaError> {
        let r: es10::GetEuiccChallengeResponse =
            self.call("GetEUICCChallenge", &es10::GetEuiccChallengeRequest)?;
        Ok(r.challenge)
    }

    /// ES10a.GetEuiccConfiguredAddresses (§5.7.3).
    pub fn configured_addresses(
        &mut self,
    ) -> Result<es10::EuiccConfiguredAddressesResponse, LpaError> {
        self.call(
            "GetEuiccConfiguredAddresses",
            &es10::EuiccConfiguredAddressesRequest,
        )
    }

    /// ES10a.SetDefaultDpAddress (§5.7.4).
    pub fn set_default_dp(&mut self, address: &str) -> Result<(), LpaError> {
        let req = es10::SetDefaultDpAddressRequest {
            address: address.to_string(),
        };
        let r: es10::SetDefaultDpAddressResponse = self.call("SetDefaultDpAddress", &req)?;
        check(
            "SetDefaultDpAddress",
            r.result == es10::SetDefaultDpAddressResult::Ok,
            r.result,
        )
    }

    /// ES10c.GetProfilesInfo (§5.7.15).
    pub fn profiles(&mut self) -> Result<Vec<ProfileSummary>, LpaError> {
        let req = es10::ProfileInfoListRequest {
            search: None,
            tag_list: None,
        };
        match self.call("GetProfilesInfo", &req)? {
            es10::ProfileInfoListResponse::Ok(list) => Ok(list.iter().map(summary).collect()),
            es10::ProfileInfoListResponse::Error(e) => Err(result("GetProfilesInfo", e)),
        }
    }

    /// ES10c.EnableProfile (§5.7.16), with refresh as an LPA in a device asks for it.
    pub fn enable(&mut self, iccid_digits: &str) -> Result<(), LpaError> {
        let req = es10::EnableProfileRequest {
            id: es10::ProfileIdentifier::Iccid(iccid(iccid_digits)?),
            refresh: true,
        };
        let r: es10::EnableProfileResponse = self.call("EnableProfile", &req)?;
        check(
            "EnableProfile",
            r.result == es10::EnableProfileResult::Ok,
            r.result,
        )
    }

    /// ES10c.DisableProfile (§5.7.17).
    pub fn disable(&mut self, iccid_digits: &str) -> Result<(), LpaError> {
        let req = es10::DisableProfileRequest {
            id: es10::ProfileIdentifier::Iccid(iccid(iccid_digits)?),
            refresh: true,
        };
        let r: es10::DisableProfileResponse = self.call("DisableProfile", &req)?;
        check(
            "DisableProfile",
            r.result == es10::DisableProfileResult::Ok,
            r.result,
        )
    }

    /// ES10c.DeleteProfile (§5.7.18).
    pub fn delete(&mut self, iccid_digits: &str) -> Result<(), LpaError> {
        let req = es10::DeleteProfileRequest {
            id: es10::ProfileIdentifier::Iccid(iccid(iccid_digits)?),
        };
        let r: es10::DeleteProfileResponse = self.call("DeleteProfile", &req)?;
        check(
            "DeleteProfile",
            r.result == es10::DeleteProfileResult::Ok,
            r.result,
        )
    }

    /// ES10c.SetNickname (§5.7.21).
    pub fn set_nickname(&mut self, iccid_digits: &str, nickname: &str) -> Result<(), LpaError> {
        let req = es10::SetNicknameRequest {
            iccid: iccid(iccid_digits)?,
            nickname: nickname.to_string(),
        };
        let r: es10::SetNicknameResponse = self.call("SetNickname", &req)?;
        check(
            "SetNickname",
            r.result == es10::SetNicknameResult::Ok,
            r.result,
        )
    }

    /// ES10c.eUICCMemoryReset (§5.7.19) of operational profiles.
    pub fn memory_reset(&mut self) -> Result<(), LpaError> {
        let req = es10::EuiccMemoryResetRequest {
            delete_operational_profiles: true,
            delete_field_loaded_test_profiles: true,
            reset_default_smdp_address: false,
        };
        let r: es10::EuiccMemoryResetResponse = self.call("eUICCMemoryReset", &req)?;
        let ok = matches!(
            r.result,
            es10::EuiccMemoryResetResult::Ok | es10::EuiccMemoryResetResult::NothingToDelete
        );
        check("eUICCMemoryReset", ok, r.result)
    }

    /// ES10b.ListNotification (§5.7.9).
    pub fn list_notifications(&mut self) -> Result<Vec<es10::NotificationMetadata>, LpaError> {
        match self.call(
            "ListNotification",
            &es10::ListNotificationRequest { operation: None },
        )? {
            es10::ListNotificationResponse::Ok(list) => Ok(list),
            es10::ListNotificationResponse::Error(e) => Err(result("ListNotification", e)),
        }
    }

    /// ES10b.RetrieveNotificationsList (§5.7.10) of one notification, as raw PendingNotification DER.
    pub fn retrieve_notification(&mut self, seq: u64) -> Result<Vec<u8>, LpaError> {
        let req = es10::RetrieveNotificationsListRequest {
            search: Some(es10::NotificationSearch::SeqNumber(seq)),
        };
        match self.call("RetrieveNotificationsList", &req)? {
            es10::RetrieveNotificationsListResponse::Ok(list) => list
                .first()
                .map(Der::to_der)
                .ok_or_else(|| LpaError::Other(format!("notification {seq} not in the list"))),
            es10::RetrieveNotificationsListResponse::Error(e) => {
                Err(result("RetrieveNotificationsList", e))
            }
        }
    }

    /// ES10b.RemoveNotificationFromList (§5.7.11).
    pub fn remove_notification(&mut self, seq: u64) -> Result<(), LpaError> {
        let r: es10::NotificationSentResponse = self.call(
            "RemoveNotificationFromList",
            &es10::NotificationSentRequest { seq_number: seq },
        )?;
        check(
            "RemoveNotificationFromList",
            r.result == es10::NotificationSentResult::Ok,
            r.result,
        )
    }

    /// ES10b.CancelSession (§5.7.14), raw answer (relayed to the SM-DP+).
    pub fn cancel_session(
        &mut self,
        transaction_id: &[u8],
        reason: es10::CancelSessionReason,
    ) -> Result<Vec<u8>, LpaError> {
        let req = es10::CancelSessionRequest {
            transaction_id: transaction_id.to_vec(),
            reason,
        };
        self.raw(&req.to_der())
    }
}

fn result(function: &'static str, r: impl std::fmt::Debug) -> LpaError {
    LpaError::Result {
        function,
        result: format!("{r:?}"),
    }
}

fn check(function: &'static str, ok: bool, r: impl std::fmt::Debug) -> Result<(), LpaError> {
    if ok {
        Ok(())
    } else {
        Err(result(function, r))
    }
}

fn summary(p: &es10::ProfileInfo) -> ProfileSummary {
    ProfileSummary {
        iccid: p
            .iccid
            .as_ref()
            .map(es10::Iccid::digits)
            .unwrap_or_default(),
        isdp_aid: p.isdp_aid.as_ref().map(hex::encode_upper),
        state: p
            .state
            .map(|s| format!("{s:?}").to_lowercase())
            .unwrap_or_default(),
        nickname: p.nickname.clone(),
        service_provider: p.service_provider_name.clone(),
        name: p.profile_name.clone(),
        class: p.profile_class.map(|c| format!("{c:?}").to_lowercase()),
    }
}
