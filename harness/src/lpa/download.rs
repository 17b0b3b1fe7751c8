//! Profile download (SGP.22 §3.1.3): the LPA relays between the eUICC (ES10b) and the
//! SM-DP+ (ES9+). Signed structures are relayed as the exact bytes received; the LPA itself
//! only adds ctxParams1 (matching ID, device info) and the hashed confirmation code.
//!
//! On any failure after AuthenticateServer the LPA sends CancelSession to the eUICC and
//! relays its signed answer to the SM-DP+ (§3.1.3.4), so neither side keeps a session.

use super::es10::{Es10Client, LpaError};
use super::ActivationCode;
use crate::es9p::client::Es9pClient;
use crate::es9p::{
    AuthenticateClientRequest, CancelSessionRequest, Es9Plus, GetBoundProfilePackageRequest,
    HandleNotificationRequest, InitiateAuthenticationRequest,
};
use crate::transport::Transport;
use simlab_emulator::rsp::download::hash_cc;
use simlab_emulator::rsp::es10::{self, Der, Encoded};
use simlab_emulator::tlv;

/// What the device tells the SM-DP+ about itself (SGP.22 §4.2 DeviceInfo).
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Type Allocation Code, 4 bytes (the first 8 digits of the IMEI).
    pub tac: [u8; 4],
    pub imei: Option<Vec<u8>>,
}

impl Default for DeviceInfo {
    fn default() -> Self {
        // The TAC widely used LPAs send by default (docs/clients.md).
        Self {
            tac: [0x35, 0x29, 0x06, 0x11],
            imei: None,
        }
    }
}

/// The outcome of a download.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Downloaded {
    pub iccid: Option<String>,
    pub transaction_id: String,
    /// Sequence number of the install notification the eUICC queued (sent and removed).
    pub notification_seq: u64,
}

/// One step of a download, for transcripts.
pub type Log<'a> = &'a mut dyn FnMut(&str);

fn value_of(field: &[u8], what: &str) -> Result<Vec<u8>, LpaError> {
    tlv::parse_one(field)
        .map(|t| t.value.to_vec())
        .map_err(|e| LpaError::Other(format!("{what} from the SM-DP+ is not one TLV: {e}")))
}

/// Downloads and installs the profile `ac` names, over HTTPS. `roots` are the certificates
/// the LPA trusts for the SM-DP+'s TLS (the CI of its DPtls certificate).
pub fn download<T: Transport>(
    es10c: &mut Es10Client<T>,
    ac: &ActivationCode,
    confirmation_code: Option<&str>,
    roots: &[Vec<u8>],
    device: &DeviceInfo,
    log: Log<'_>,
) -> Result<Downloaded, LpaError> {
    let es9 = Es9pClient::new(&ac.smdp_address, roots)?;
    download_via(es10c, &es9, ac, confirmation_code, device, log)
}

/// The same download through any ES9+ implementation (an HTTPS client, or an SM-DP+ in
/// this process for benchmarks).
pub fn download_via<T: Transport>(
    es10c: &mut Es10Client<T>,
    es9: &dyn Es9Plus,
    ac: &ActivationCode,
    confirmation_code: Option<&str>,
    device: &DeviceInfo,
    log: Log<'_>,
) -> Result<Downloaded, LpaError> {
    if ac.confirmation_code_required && confirmation_code.is_none() {
        return Err(LpaError::Other(
            "this activation code requires a confirmation code: give --confirmation-code".into(),
        ));
    }

    // §3.1.3.1 step 1–7: challenge and info, then InitiateAuthentication.
    let challenge = es10c.challenge()?;
    let info1 = es10c.euicc_info1()?;
    log("ES10b.GetEUICCChallenge, GetEUICCInfo1");
    let init = es9.initiate_authentication(&InitiateAuthenticationRequest {
        header: None,
        euicc_challenge: challenge.to_vec(),
        euicc_info1: info1,
        smdp_address: ac.smdp_address.clone(),
    })?;
    log("ES9+.InitiateAuthentication");
    let transaction_id = init.transaction_id.clone();

    // §3.1.3.1 step 8–10: AuthenticateServer with our ctxParams1.
    let ctx = es10::CtxParams1 {
        matching_id: Some(ac.matching_id.clone()),
        device_info: es10::DeviceInfo {
            tac: device.tac.to_vec(),
            device_capabilities: Vec::new(),
            imei: device.imei.clone(),
        },
    };
    let auth_req = es10::AuthenticateServerRequest {
        server_signed1: Encoded::from_der(&init.server_signed1).map_err(|e| LpaError::Decode {
            function: "serverSigned1",
            source: e,
        })?,
        server_signature1: value_of(&init.server_signature1, "serverSignature1")?,
        euicc_ci_pkid_to_be_used: value_of(&init.euicc_ci_pkid_to_be_used, "euiccCiPKIdToBeUsed")?,
        server_certificate: init.server_certificate.clone(),
        ctx_params1: Encoded::new(ctx),
    };
    let auth_resp = es10c.raw(&auth_req.to_der())?;
    log("ES10b.AuthenticateServer");

    // From here on, a failure cancels the session on both sides.
    let result =
        (|| -> Result<Downloaded, LpaError> {
            if let Ok(es10::AuthenticateServerResponse::Error { code, .. }) =
                es10::AuthenticateServerResponse::from_der(&auth_resp)
            {
                return Err(LpaError::Result {
                    function: "AuthenticateServer",
                    result: format!("{code:?}"),
                });
            }
            let client = es9.authenticate_client(&AuthenticateClientRequest {
                header: None,
                transaction_id: transaction_id.clone(),
                authenticate_server_response: auth_resp.clone(),
            })?;
            log("ES9+.AuthenticateClient");

            let smdp_signed2: Encoded<es10::SmdpSigned2> = Encoded::from_der(&client.smdp_signed2)
                .map_err(|e| LpaError::Decode {
                    function: "smdpSigned2",
                    source: e,
                })?;
            // §3.1.3.2: ccRequiredFlag asks the end user for the confirmation code; without
            // one the eUICC could only refuse PrepareDownload with an undefined error.
            if smdp_signed2.value.cc_required && confirmation_code.is_none() {
                return Err(LpaError::ConfirmationCodeRequired);
            }
            let prep = es10::PrepareDownloadRequest {
                smdp_signed2,
                smdp_signature2: value_of(&client.smdp_signature2, "smdpSignature2")?,
                hash_cc: confirmation_code.map(|cc| hash_cc(cc.as_bytes(), &transaction_id)),
                smdp_certificate: client.smdp_certificate.clone(),
            };
            let prep_resp = es10c.raw(&prep.to_der())?;
            log("ES10b.PrepareDownload");
            if let Ok(es10::PrepareDownloadResponse::Error { code, .. }) =
                es10::PrepareDownloadResponse::from_der(&prep_resp)
            {
                return Err(LpaError::Result {
                    function: "PrepareDownload",
                    result: format!("{code:?}"),
                });
            }
            let bpp_resp = es9.get_bound_profile_package(&GetBoundProfilePackageRequest {
                header: None,
                transaction_id: transaction_id.clone(),
                prepare_download_response: prep_resp,
            })?;
            log("ES9+.GetBoundProfilePackage");

            // §5.7.6: the package goes to the eUICC as separate ES10 commands, as LPAs send it.
            let bpp = es10::BoundProfilePackage::from_der(&bpp_resp.bound_profile_package)
                .map_err(|e| LpaError::Decode {
                    function: "BoundProfilePackage",
                    source: e,
                })?;
            let mut pir = Vec::new();
            for command in bpp.lpa_commands() {
                let answer = es10c.raw(&command)?;
                if !answer.is_empty() {
                    pir = answer;
                    break;
                }
            }
            log("ES10b.LoadBoundProfilePackage");
            let result =
                es10::ProfileInstallationResult::from_der(&pir).map_err(|e| LpaError::Decode {
                    function: "ProfileInstallationResult",
                    source: e,
                })?;
            let seq = result.data.value.notification_metadata.seq_number;
            let iccid = result
                .data
                .value
                .notification_metadata
                .iccid
                .as_ref()
                .map(es10::Iccid::digits);

            // §3.1.3.3: the installation result goes to the SM-DP+, then leaves the eUICC's list.
            es9.handle_notification(&HandleNotificationRequest {
                header: None,
                pending_notification: pir.clone(),
            })?;
            es10c.remove_notification(seq)?;
            log("ES9+.HandleNotification, ES10b.RemoveNotificationFromList");
            if let es10::FinalResult::Error {
                bpp_command_id,
                error_reason,
                ..
            } = &result.data.value.final_result
            {
                return Err(LpaError::Result {
                    function: "LoadBoundProfilePackage",
                    result: format!("{error_reason:?} at {bpp_command_id:?}"),
                });
            }
            Ok(Downloaded {
                iccid,
                transaction_id: hex::encode_upper(&transaction_id),
                notification_seq: seq,
            })
        })();

    if let Err(e) = &result {
        // A package whose result was already delivered needs no cancel; anything else does.
        if !matches!(
            e,
            LpaError::Result {
                function: "LoadBoundProfilePackage",
                ..
            }
        ) {
            cancel(es10c, es9, &transaction_id, log);
        }
    }
    result
}

/// §3.1.3.4: CancelSession on the eUICC, its signed answer relayed to the SM-DP+. The reason
/// is "postponed": the failure was not the user's refusal, so the order stays available for
/// another attempt (endUserRejection would end it, §5.6.5). Failures here are only logged:
/// the download already failed for a reason the caller reports.
fn cancel<T: Transport>(
    es10c: &mut Es10Client<T>,
    es9: &dyn Es9Plus,
    transaction_id: &[u8],
    log: Log<'_>,
) {
    match es10c.cancel_session(transaction_id, es10::CancelSessionReason::Postponed) {
        Ok(answer) => {
            let sent = es9.cancel_session(&CancelSessionRequest {
                header: None,
                transaction_id: transaction_id.to_vec(),
                cancel_session_response: answer,
            });
            log(&format!(
                "ES10b.CancelSession, ES9+.CancelSession ({})",
                if sent.is_ok() { "ok" } else { "refused" }
            ));
        }
        Err(e) => log(&format!("ES10b.CancelSession failed: {e}")),
    }
}

/// Sends every pending notification to its SM-DP+ and removes those delivered (§3.5).
pub fn process_notifications<T: Transport>(
    es10c: &mut Es10Client<T>,
    roots: &[Vec<u8>],
    log: Log<'_>,
) -> Result<usize, LpaError> {
    let mut sent = 0;
    for n in es10c.list_notifications()? {
        let pending = es10c.retrieve_notification(n.seq_number)?;
        let es9 = Es9pClient::new(&n.notification_address, roots)?;
        es9.handle_notification(&HandleNotificationRequest {
            header: None,
            pending_notification: pending,
        })?;
        es10c.remove_notification(n.seq_number)?;
        log(&format!(
            "notification {} ({:?}) sent to {}",
            n.seq_number, n.operation, n.notification_address
        ));
        sent += 1;
    }
    Ok(sent)
}
