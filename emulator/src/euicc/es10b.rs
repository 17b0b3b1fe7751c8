//! ES10b (SGP.22 v2.5 §5.7.5–§5.7.14, §5.7.22): eUICC information, the challenge, mutual
//! authentication with the SM-DP+ (AuthenticateServer), PrepareDownload, CancelSession,
//! notification lists, the RAT and LoadCRL. LoadBoundProfilePackage is in [`super::download`].
//!
//! Each check the spec asks for answers with the spec's error code, and any failure in the
//! session functions ends the session (§3.1.3: the LPA then starts over or cancels).

use super::cert::{self, CertError, Role, TrustedCi};
use super::download::{Authenticated, DownloadState, Prepared};
use super::notifications;
use super::EuiccState;
use crate::rsp::download::signature_field;
use crate::rsp::ecka::OneTimeKeyPair;
use crate::rsp::es10::*;
use rand::{CryptoRng, RngCore};

/// GetEUICCInfo1 (§5.7.8).
pub fn euicc_info1(state: &EuiccState) -> EuiccInfo1 {
    let pkids = ci_pkids(state);
    EuiccInfo1 {
        svn: state.config.svn,
        ci_pkid_verification: pkids.clone(),
        ci_pkid_signing: pkids,
    }
}

fn ci_pkids(state: &EuiccState) -> Vec<Vec<u8>> {
    state
        .identity
        .trusted_cis()
        .into_iter()
        .map(|c| c.ski)
        .collect()
}

/// GetEUICCInfo2 (§5.7.8).
pub fn euicc_info2(state: &EuiccState) -> EuiccInfo2 {
    let c = &state.config;
    let pkids = ci_pkids(state);
    EuiccInfo2 {
        profile_version: c.profile_version,
        svn: c.svn,
        firmware_version: c.firmware_version,
        ext_card_resource: c.ext_card_resource.clone(),
        uicc_capability: c.uicc_capability.clone(),
        javacard_version: c.javacard_version,
        globalplatform_version: c.globalplatform_version,
        rsp_capability: c.rsp_capability.clone(),
        ci_pkid_verification: pkids.clone(),
        ci_pkid_signing: pkids,
        euicc_category: c.euicc_category,
        forbidden_ppr: None,
        pp_version: c.pp_version,
        sas_accreditation_number: c.sas_accreditation_number.clone(),
        extra: Vec::new(),
    }
}

/// GetEUICCChallenge (§5.7.7): a fresh challenge starts a new session.
pub fn get_challenge<R: RngCore + CryptoRng>(session: &mut DownloadState, rng: &mut R) -> Vec<u8> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    rng.fill_bytes(&mut challenge);
    *session = DownloadState::Challenged { challenge };
    GetEuiccChallengeResponse { challenge }.to_der()
}

/// The CI named by `pkid`, if trusted.
fn trusted_ci(state: &EuiccState, pkid: &[u8]) -> Option<TrustedCi> {
    state
        .identity
        .trusted_cis()
        .into_iter()
        .find(|c| c.ski == pkid)
}

fn auth_cert_error(e: &CertError) -> AuthenticateErrorCode {
    match e {
        CertError::UnsupportedCurve(_) => AuthenticateErrorCode::UnsupportedCurve,
        CertError::WrongRole(_) => AuthenticateErrorCode::InvalidOid,
        _ => AuthenticateErrorCode::InvalidCertificate,
    }
}

/// AuthenticateServer (§5.7.13). Checks, in the spec's order: a session (challenge) exists;
/// the CI to use is one of ours; CERT.DPauth.ECDSA chains to it (AKI, signature, role);
/// serverSignature1 over the received serverSigned1 bytes; euiccChallenge is ours. Then signs
/// euiccSigned1 (the received ctxParams1 bytes copied as they came).
pub fn authenticate_server(
    state: &EuiccState,
    session: &mut DownloadState,
    req: &AuthenticateServerRequest,
) -> AuthenticateServerResponse {
    let signed = &req.server_signed1.value;
    let fail = |session: &mut DownloadState, code| {
        *session = DownloadState::Idle;
        AuthenticateServerResponse::Error {
            transaction_id: signed.transaction_id.clone(),
            code,
        }
    };
    let DownloadState::Challenged { challenge } = *session else {
        return fail(session, AuthenticateErrorCode::NoSessionContext);
    };
    let Some(ci) = trusted_ci(state, &req.euicc_ci_pkid_to_be_used) else {
        return fail(session, AuthenticateErrorCode::CiPkUnknown);
    };
    let dp_auth = match cert::verify_server_certificate(&req.server_certificate, &ci, Role::DpAuth)
    {
        Ok(k) => k,
        Err(e) => return fail(session, auth_cert_error(&e)),
    };
    if dp_auth
        .verify(req.server_signed1.raw(), &req.server_signature1)
        .is_err()
    {
        return fail(session, AuthenticateErrorCode::InvalidSignature);
    }
    if signed.euicc_challenge != challenge {
        return fail(session, AuthenticateErrorCode::EuiccChallengeMismatch);
    }
    let euicc_signed1 = Encoded::new(EuiccSigned1 {
        transaction_id: signed.transaction_id.clone(),
        server_address: signed.server_address.clone(),
        server_challenge: signed.server_challenge,
        euicc_info2: Encoded::new(euicc_info2(state)),
        ctx_params1: req.ctx_params1.clone(),
    });
    let Ok(signature) = state.sign(euicc_signed1.raw()) else {
        return fail(session, AuthenticateErrorCode::UndefinedError);
    };
    *session = DownloadState::Authenticated(Box::new(Authenticated {
        transaction_id: signed.transaction_id.clone(),
        server_address: signed.server_address.clone(),
        ci_pkid: ci.ski,
        euicc_signature1: signature.to_vec(),
        smdp_oid: cert::registered_id(&req.server_certificate).ok().flatten(),
    }));
    AuthenticateServerResponse::Ok {
        euicc_signed1,
        euicc_signature1: signature.to_vec(),
        euicc_certificate: state.identity.euicc_certificate.clone(),
        eum_certificate: state.identity.eum_certificate.clone(),
    }
}

/// PrepareDownload (§5.7.5). Checks: an authenticated session; CERT.DPpb.ECDSA chains to the
/// session's CI; smdpSignature2 over (smdpSigned2 ‖ `5F37 40` euiccSignature1); the
/// transactionId is the session's; a required confirmation code came (hashCc). Then makes the
/// one-time key pair on the DPpb curve and signs euiccSigned2 ‖ smdpSignature2 field.
///
/// A missing hashCc while ccRequiredFlag is set has no dedicated DownloadErrorCode in v2.5;
/// the card answers undefinedError (the SM-DP+ would refuse the download anyway).
pub fn prepare_download<R: RngCore + CryptoRng>(
    state: &EuiccState,
    session: &mut DownloadState,
    rng: &mut R,
    req: &PrepareDownloadRequest,
) -> PrepareDownloadResponse {
    let signed = &req.smdp_signed2.value;
    let fail = |session: &mut DownloadState, code| {
        *session = DownloadState::Idle;
        PrepareDownloadResponse::Error {
            transaction_id: signed.transaction_id.clone(),
            code,
        }
    };
    let DownloadState::Authenticated(auth) = std::mem::take(session) else {
        return fail(session, DownloadErrorCode::NoSessionContext);
    };
    let Some(ci) = trusted_ci(state, &auth.ci_pkid) else {
        return fail(session, DownloadErrorCode::InvalidCertificate);
    };
    let dp_pb = match cert::verify_server_certificate(&req.smdp_certificate, &ci, Role::DpPb) {
        Ok(k) => k,
        Err(CertError::UnsupportedCurve(_)) => {
            return fail(session, DownloadErrorCode::UnsupportedCurve)
        }
        Err(_) => return fail(session, DownloadErrorCode::InvalidCertificate),
    };
    let signed_input = [
        req.smdp_signed2.raw(),
        &signature_field(&auth.euicc_signature1),
    ]
    .concat();
    if dp_pb.verify(&signed_input, &req.smdp_signature2).is_err() {
        return fail(session, DownloadErrorCode::InvalidSignature);
    }
    if signed.transaction_id != auth.transaction_id {
        return fail(session, DownloadErrorCode::InvalidTransactionId);
    }
    if signed.cc_required && req.hash_cc.is_none() {
        return fail(session, DownloadErrorCode::UndefinedError);
    }
    let Ok(otk) = OneTimeKeyPair::generate(dp_pb.curve(), rng) else {
        return fail(session, DownloadErrorCode::UndefinedError);
    };
    let euicc_signed2 = Encoded::new(EuiccSigned2 {
        transaction_id: auth.transaction_id.clone(),
        euicc_otpk: otk.public_key().to_vec(),
        hash_cc: req.hash_cc,
    });
    let input = [euicc_signed2.raw(), &signature_field(&req.smdp_signature2)].concat();
    let Ok(signature) = state.sign(&input) else {
        return fail(session, DownloadErrorCode::UndefinedError);
    };
    let smdp_oid = cert::registered_id(&req.smdp_certificate)
        .ok()
        .flatten()
        .or_else(|| auth.smdp_oid.clone());
    *session = DownloadState::Prepared(Box::new(Prepared {
        auth: *auth,
        otk,
        dp_pb,
        smdp_oid,
    }));
    PrepareDownloadResponse::Ok {
        euicc_signed2,
        euicc_signature2: signature.to_vec(),
    }
}

/// CancelSession (§5.7.14): the transactionId must be the ongoing session's; the answer is
/// signed for the SM-DP+ and the session ends (nothing of a partial download remains).
pub fn cancel_session(
    state: &EuiccState,
    session: &mut DownloadState,
    req: &CancelSessionRequest,
) -> CancelSessionResponse {
    let (tx, oid) = match &*session {
        DownloadState::Authenticated(a) => (a.transaction_id.clone(), a.smdp_oid.clone()),
        DownloadState::Prepared(p) => (p.auth.transaction_id.clone(), p.smdp_oid.clone()),
        DownloadState::Loading(l) => (l.transaction_id().to_vec(), l.smdp_oid()),
        _ => return CancelSessionResponse::Error(CancelSessionError::InvalidTransactionId),
    };
    if tx != req.transaction_id {
        return CancelSessionResponse::Error(CancelSessionError::InvalidTransactionId);
    }
    *session = DownloadState::Idle;
    let signed = Encoded::new(EuiccCancelSessionSigned {
        transaction_id: tx,
        smdp_oid: oid.unwrap_or_default(),
        reason: req.reason,
    });
    match state.sign(signed.raw()) {
        Ok(signature) => CancelSessionResponse::Ok {
            signed,
            signature: signature.to_vec(),
        },
        Err(_) => CancelSessionResponse::Error(CancelSessionError::UndefinedError),
    }
}

/// ListNotification (§5.7.9): metadata of the pending notifications, optionally only some
/// events.
pub fn list_notification(
    state: &EuiccState,
    req: &ListNotificationRequest,
) -> ListNotificationResponse {
    let list = state
        .notifications
        .iter()
        .filter(|n| {
            req.operation
                .is_none_or(|ops| ops.contains(notifications::event_of(n)))
        })
        .map(|n| NotificationMetadata {
            seq_number: n.seq_number,
            operation: notifications::event_of(n),
            notification_address: n.address.clone(),
            iccid: n.iccid,
        })
        .collect();
    ListNotificationResponse::Ok(list)
}

/// RetrieveNotificationsList (§5.7.10): the signed notifications, all or by sequence number
/// or event. A search that finds nothing answers noResultAvailable.
pub fn retrieve_notifications(
    state: &EuiccState,
    req: &RetrieveNotificationsListRequest,
) -> RetrieveNotificationsListResponse {
    let mut out = Vec::new();
    for n in &state.notifications {
        let wanted = match req.search {
            None => true,
            Some(NotificationSearch::SeqNumber(s)) => n.seq_number == s,
            Some(NotificationSearch::Operation(ops)) => ops.contains(notifications::event_of(n)),
        };
        if !wanted {
            continue;
        }
        match PendingNotification::from_der(&n.der) {
            Ok(p) => out.push(p),
            Err(_) => {
                return RetrieveNotificationsListResponse::Error(
                    RetrieveNotificationsListError::UndefinedError,
                )
            }
        }
    }
    if out.is_empty() && req.search.is_some() {
        return RetrieveNotificationsListResponse::Error(
            RetrieveNotificationsListError::NoResultAvailable,
        );
    }
    RetrieveNotificationsListResponse::Ok(out)
}

/// RemoveNotificationFromList (§5.7.11, `NotificationSentRequest`).
pub fn remove_notification(
    state: &mut EuiccState,
    req: &NotificationSentRequest,
) -> NotificationSentResponse {
    let before = state.notifications.len();
    state
        .notifications
        .retain(|n| n.seq_number != req.seq_number);
    let result = if state.notifications.len() < before {
        NotificationSentResult::Ok
    } else {
        NotificationSentResult::NothingToDelete
    };
    NotificationSentResponse { result }
}

/// LoadCRL (§5.7.12, optional): the CRL must be well-formed and signed by a trusted
/// CI. This eUICC does not claim crlSupport (rspCapability) and keeps no revocation list; a
/// valid CRL is acknowledged with no missing parts.
pub fn load_crl(state: &EuiccState, bytes: &[u8]) -> LoadCrlResponse {
    let Ok(req) = LoadCrlRequest::from_der(bytes) else {
        return LoadCrlResponse::Error(LoadCrlError::InvalidCrlFormat);
    };
    // `[0] IMPLICIT CertificateList`: restore the SEQUENCE tag to read it.
    let crl = crate::tlv::encode(0x30, &req.crl);
    let cis = state.identity.trusted_cis();
    match cert::crl_signed_by(&crl, &cis) {
        Err(_) => LoadCrlResponse::Error(LoadCrlError::InvalidCrlFormat),
        Ok(false) => LoadCrlResponse::Error(LoadCrlError::VerificationKeyNotFound),
        Ok(true) => LoadCrlResponse::Ok {
            missing_parts: None,
        },
    }
}
