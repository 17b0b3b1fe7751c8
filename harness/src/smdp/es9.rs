//! ES9+ functions of the SM-DP+ (SGP.22 v2.5 §5.6): initiateAuthentication (§5.6.1),
//! authenticateClient (§5.6.3), getBoundProfilePackage (§5.6.2), handleNotification (§5.6.4),
//! cancelSession (§5.6.5), with the RSP session state machine
//! `Initiated → Authenticated → PackageSent → (notification) gone`. A call in any other state
//! ends the session with "TransactionId – Unknown", as does a call after the session's
//! lifetime (`SmdpOptions::session_ttl`); expired sessions are purged.
//!
//! Orders (§3.1.3.2): AuthenticateClient only checks that the order may go to this eUICC;
//! GetBoundProfilePackage binds it, atomically, to the eUICC (EID, transaction, certificate).
//! Until the installation result arrives the order stays retryable by that EID — each retry
//! gets a package newly bound to the eUICC's new one-time key — and refused to every other.
//!
//! The SGP.22 data objects are the ones the eUICC and the LPA use, [`simlab_emulator::rsp::es10`];
//! every signature is checked over the bytes as received ([`es10::Encoded::raw`]).

use super::bpp::{self, BindingInput};
use super::certs::{self, VerifiedEuicc};
use super::es2::{
    POINT_BPP_DOWNLOAD, POINT_BPP_INSTALLATION, POINT_CONFIRMATION, POINT_ELIGIBILITY,
    POINT_PROFILE_DELETED, POINT_PROFILE_DISABLED, POINT_PROFILE_ENABLED, POINT_SESSION_CANCELLED,
};
use super::store::{now_ms, NotificationRecord, Order, OrderState};
use super::{add, FunctionError, Smdp, HOST_ID, SERVICE_PROVIDER_NAME};
use crate::es9p::{
    codes, AuthenticateClientRequest, AuthenticateClientResponse, CancelSessionRequest, Es9pError,
    GetBoundProfilePackageRequest, GetBoundProfilePackageResponse, HandleNotificationRequest,
    HeaderOnly, InitiateAuthenticationRequest, InitiateAuthenticationResponse, ResponseHeader,
    AUTHENTICATE_CLIENT, CANCEL_SESSION, GET_BOUND_PROFILE_PACKAGE, HANDLE_NOTIFICATION,
    INITIATE_AUTHENTICATION,
};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use simlab_emulator::rsp::download::{hash_cc, signature_field};
use simlab_emulator::rsp::ecdsa::VerifyingKey;
use simlab_emulator::rsp::es10::{
    self, AuthenticateErrorCode, CancelSessionReason, CancelSessionResponse, CtxParams1, Der as _,
    Es10Error, EuiccInfo1, FinalResult, Iccid, NotificationConfiguration, NotificationEvent,
    NotificationEvents, PendingNotification, PrepareDownloadResponse, ServerSigned1, SmdpSigned2,
    StoreMetadataRequest, CHALLENGE_LEN,
};
use simlab_emulator::tlv::{self, Tlv};
use std::time::{Instant, SystemTime};

/// The SGP.22 major version this server speaks (EUICCInfo1.svn byte 1); v3 eUICCs also speak v2.
const SVN_MAJOR_MIN: u8 = 2;
/// CancelSessionReason values that end the order in Error (SGP.22 §5.6.5: endUserRejection(0),
/// pprNotAllowed(3)); postponed(1) and timeout(2) leave it Released for a later attempt.
const CANCEL_REASONS_FINAL: [CancelSessionReason; 2] = [
    CancelSessionReason::EndUserRejection,
    CancelSessionReason::PprNotAllowed,
];
/// `SubjectKeyIdentifier ::= OCTET STRING` (RFC 5280 §4.2.1.2): euiccCiPKIdToBeUsed carries
/// the whole TLV.
const TAG_OCTET_STRING: u32 = 0x04;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum SessionState {
    Initiated,
    Authenticated,
    PackageSent,
}

/// One RSP session, stored as JSON under its transactionId.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    state: SessionState,
    server_challenge: Vec<u8>,
    ci_ski: Vec<u8>,
    euicc_cert: Option<Vec<u8>>,
    eid: Option<String>,
    order_id: Option<i64>,
    /// The whole smdpSignature2 field (`5F37 40 ‖ sig`), covered by euiccSignature2.
    smdp_signature2: Option<Vec<u8>>,
    cc_required: bool,
}

fn invalid(what: impl std::fmt::Display) -> FunctionError {
    FunctionError::new(codes::INVALID_INPUT, what.to_string())
}

fn unknown_transaction(tx: &[u8]) -> FunctionError {
    FunctionError::new(
        codes::TRANSACTION_ID_UNKNOWN,
        format!(
            "no RSP session {} in a state for this call",
            hex::encode_upper(tx)
        ),
    )
}

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::thread_rng().fill_bytes(&mut out);
    out
}

/// The `StoreMetadataRequest` (SGP.22 §5.5.3) of a profile: its ICCID, this SM-DP+ as service
/// provider, the template as profile name, and every notification to `address` (this SM-DP+).
fn store_metadata(
    iccid: &str,
    profile_name: &str,
    address: &str,
) -> Result<Vec<u8>, FunctionError> {
    let iccid = simlab_emulator::saip::encode_iccid_ef(iccid)
        .map_err(|e| FunctionError::new(codes::EXECUTION_ERROR, e.to_string()))?;
    Ok(StoreMetadataRequest {
        iccid: Iccid(iccid),
        service_provider_name: SERVICE_PROVIDER_NAME.into(),
        profile_name: profile_name.to_owned(),
        icon_type: None,
        icon: None,
        profile_class: None,
        notification_configuration: Some(vec![NotificationConfiguration {
            events: NotificationEvents::ALL,
            address: address.to_owned(),
        }]),
        profile_owner: None,
        ppr: None,
    }
    .to_der())
}

/// A notification's sequence number as the store keeps it (SQLite INTEGER).
fn seq_number(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// How the notification store names a `NotificationEvent`.
fn event_name(event: NotificationEvent) -> &'static str {
    match event {
        NotificationEvent::Install => "install",
        NotificationEvent::Enable => "enable",
        NotificationEvent::Disable => "disable",
        NotificationEvent::Delete => "delete",
    }
}

/// `AuthenticateResponseOk` (SGP.22 §5.7.13) as the SM-DP+ reads it, borrowing the received
/// bytes. Read field by field rather than with [`es10::AuthenticateServerResponse`]: that one
/// decodes `euiccInfo2` in full, which this SM-DP+ does not use and has never required to be a
/// complete EUICCInfo2.
#[derive(Debug)]
struct AuthenticateResponseOk<'a> {
    /// The whole `euiccSigned1` element, as signed.
    euicc_signed1: &'a [u8],
    transaction_id: &'a [u8],
    server_challenge: &'a [u8],
    ctx_params1: CtxParams1,
    /// Raw euiccSignature1 (`r‖s`).
    euicc_signature1: &'a [u8],
    euicc_certificate: &'a [u8],
    eum_certificate: &'a [u8],
}

/// `AuthenticateServerResponse` (`BF38`): the eUICC's answer or its refusal.
#[derive(Debug)]
enum AuthenticateServerAnswer<'a> {
    Ok(AuthenticateResponseOk<'a>),
    Refused(AuthenticateErrorCode),
}

/// `authenticateResponseOk [0]` of the `AuthenticateServerResponse` CHOICE.
const TAG_AUTHENTICATE_RESPONSE_OK: u32 = 0xA0;
/// Fields of `EuiccSigned1`: transactionId [0], serverAddress [3], serverChallenge [4],
/// ctxParams1 (its only alternative, `[0]` constructed).
const TAG_TRANSACTION_ID: u32 = 0x80;
const TAG_SERVER_ADDRESS: u32 = 0x83;
const TAG_SERVER_CHALLENGE: u32 = 0x84;
const TAG_CTX_PARAMS1: u32 = 0xA0;
const TAG_SEQUENCE: u32 = 0x30;

impl<'a> AuthenticateServerAnswer<'a> {
    fn read(der: &'a [u8]) -> Result<Self, Es10Error> {
        const WHAT: &str = "AuthenticateServerResponse";
        let children = |t: &Tlv<'a>, what: &'static str| {
            t.children()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| Es10Error::Tlv { what, source })
        };
        let field = |items: &[Tlv<'a>], tag: u32, what: &'static str| {
            items
                .iter()
                .find(|t| t.tag == tag)
                .copied()
                .ok_or(Es10Error::Missing { what, tag })
        };
        let outer = tlv::parse_one(der).map_err(|source| Es10Error::Tlv { what: WHAT, source })?;
        let choice = if outer.tag == es10::TAG_AUTHENTICATE_SERVER {
            children(&outer, WHAT)?.into_iter().next()
        } else {
            None
        };
        let ok = match choice {
            Some(ok) if ok.tag == TAG_AUTHENTICATE_RESPONSE_OK => ok,
            // Not the Ok alternative: es10 reads the error (or says what is wrong).
            _ => {
                return match es10::AuthenticateServerResponse::from_der(der)? {
                    es10::AuthenticateServerResponse::Error { code, .. } => Ok(Self::Refused(code)),
                    es10::AuthenticateServerResponse::Ok { .. } => Err(Es10Error::Missing {
                        what: WHAT,
                        tag: TAG_AUTHENTICATE_RESPONSE_OK,
                    }),
                };
            }
        };
        const SIGNED: &str = "euiccSigned1";
        let items = children(&ok, WHAT)?;
        // Three untagged SEQUENCEs: euiccSigned1, euiccCertificate, eumCertificate, in order.
        let seqs: Vec<Tlv<'a>> = items
            .iter()
            .filter(|t| t.tag == TAG_SEQUENCE)
            .copied()
            .collect();
        let seq = |i: usize| {
            seqs.get(i).copied().ok_or(Es10Error::Missing {
                what: WHAT,
                tag: TAG_SEQUENCE,
            })
        };
        let (signed, euicc_certificate, eum_certificate) = (seq(0)?, seq(1)?, seq(2)?);
        let euicc_signature1 = field(&items, es10::TAG_SIGNATURE, WHAT)?.value;
        let fields = children(&signed, SIGNED)?;
        // serverAddress is not used here, but an euiccSigned1 without it is not one.
        field(&fields, TAG_SERVER_ADDRESS, SIGNED)?;
        Ok(Self::Ok(AuthenticateResponseOk {
            euicc_signed1: signed.raw,
            transaction_id: field(&fields, TAG_TRANSACTION_ID, SIGNED)?.value,
            server_challenge: field(&fields, TAG_SERVER_CHALLENGE, SIGNED)?.value,
            ctx_params1: CtxParams1::from_der(field(&fields, TAG_CTX_PARAMS1, SIGNED)?.raw)?,
            euicc_signature1,
            euicc_certificate: euicc_certificate.raw,
            eum_certificate: eum_certificate.raw,
        }))
    }
}

impl Smdp {
    /// Runs one ES9+ function body, timing it.
    pub(super) fn function<T>(
        &self,
        f: impl FnOnce() -> Result<T, FunctionError>,
    ) -> Result<T, FunctionError> {
        let started = Instant::now();
        let out = f();
        add(&self.timings.total, started.elapsed());
        self.timings
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        out
    }

    fn load_session(&self, tx: &[u8]) -> Result<Session, FunctionError> {
        let key = hex::encode_upper(tx);
        let text = self
            .with_store(|s| s.session(&key, now_ms()))?
            .ok_or_else(|| unknown_transaction(tx))?;
        serde_json::from_str(&text)
            .map_err(|e| FunctionError::new(codes::EXECUTION_ERROR, format!("session data: {e}")))
    }

    /// Stores a new session living `session_ttl`; expired sessions are purged first, so the
    /// table holds at most the sessions started within one lifetime.
    fn create_session(&self, tx: &[u8], session: &Session) -> Result<(), FunctionError> {
        let text = serde_json::to_string(session)
            .map_err(|e| FunctionError::new(codes::EXECUTION_ERROR, e.to_string()))?;
        let key = hex::encode_upper(tx);
        let now = now_ms();
        let ttl = i64::try_from(self.session_ttl.as_millis()).unwrap_or(i64::MAX);
        self.with_store(|s| {
            s.purge_sessions(now)?;
            s.create_session(&key, &text, now.saturating_add(ttl))
        })
    }

    fn save_session(&self, tx: &[u8], session: &Session) -> Result<(), FunctionError> {
        let text = serde_json::to_string(session)
            .map_err(|e| FunctionError::new(codes::EXECUTION_ERROR, e.to_string()))?;
        let key = hex::encode_upper(tx);
        if self.with_store(|s| s.put_session(&key, &text))? {
            Ok(())
        } else {
            Err(unknown_transaction(tx))
        }
    }

    fn end_session(&self, tx: &[u8]) -> Result<(), FunctionError> {
        let key = hex::encode_upper(tx);
        self.with_store(|s| s.delete_session(&key))
    }

    /// The eUICC answered a step with its error: the session ends, "eUICC – Verification failed".
    fn euicc_refused<T>(&self, tx: &[u8], message: String) -> Result<T, FunctionError> {
        self.end_session(tx)?;
        Err(FunctionError::new(
            codes::EUICC_VERIFICATION_FAILED,
            message,
        ))
    }

    /// Loads the session and checks it is in `expected`; otherwise the session ends (an
    /// out-of-order call aborts it, like the eUICC does).
    fn session_in(&self, tx: &[u8], expected: SessionState) -> Result<Session, FunctionError> {
        let session = self.load_session(tx)?;
        if session.state != expected {
            self.end_session(tx)?;
            return Err(FunctionError::new(
                codes::TRANSACTION_ID_UNKNOWN,
                format!(
                    "RSP session {} is {:?}, this call needs {expected:?}; session ended",
                    hex::encode_upper(tx),
                    session.state
                ),
            ));
        }
        Ok(session)
    }

    fn verify(&self, key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
        self.time(&self.timings.verify, || key.verify(msg, sig).is_ok())
    }

    fn euicc_key(&self, session: &Session) -> Result<VerifyingKey, FunctionError> {
        let cert = session
            .euicc_cert
            .as_deref()
            .ok_or_else(|| FunctionError::new(codes::EXECUTION_ERROR, "session has no eUICC"))?;
        VerifyingKey::from_certificate_der(cert)
            .map_err(|e| FunctionError::new(codes::EXECUTION_ERROR, e.to_string()))
    }

    fn session_order(session: &Session) -> Result<i64, FunctionError> {
        session
            .order_id
            .ok_or_else(|| FunctionError::new(codes::EXECUTION_ERROR, "session has no order"))
    }

    /// ES9+.InitiateAuthentication (SGP.22 §5.6.1).
    pub fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, FunctionError> {
        self.function(|| {
            if !self.address_matches(&req.smdp_address) {
                return Err(FunctionError::new(
                    codes::SMDP_ADDRESS_REFUSED,
                    format!(
                        "smdpAddress {:?} is not this SM-DP+ ({})",
                        req.smdp_address, self.address
                    ),
                ));
            }
            let euicc_challenge: [u8; CHALLENGE_LEN] =
                req.euicc_challenge.as_slice().try_into().map_err(|_| {
                    invalid(format!(
                        "euiccChallenge is {} bytes, expected {CHALLENGE_LEN}",
                        req.euicc_challenge.len()
                    ))
                })?;
            let info = EuiccInfo1::from_der(&req.euicc_info1).map_err(invalid)?;
            if info.svn.first().is_none_or(|major| *major < SVN_MAJOR_MIN) {
                return Err(FunctionError::new(
                    codes::SPECIFICATION_VERSION_UNSUPPORTED,
                    format!("svn {} is below v2", hex::encode(info.svn)),
                ));
            }
            if !info.ci_pkid_signing.contains(&self.ci.ski) {
                return Err(FunctionError::new(
                    codes::SECURITY_CONFIGURATION_UNSUPPORTED,
                    format!(
                        "none of the eUICC's CI keys for signing is this SM-DP+'s CI {}",
                        hex::encode_upper(&self.ci.ski)
                    ),
                ));
            }
            if !info.ci_pkid_verification.contains(&self.ci.ski) {
                return Err(FunctionError::new(
                    codes::SERVER_AUTH_CERTIFICATE_UNAVAILABLE,
                    "no CERT.DPauth chains to a CI the eUICC verifies",
                ));
            }
            let transaction_id: [u8; CHALLENGE_LEN] = random();
            let server_challenge: [u8; CHALLENGE_LEN] = random();
            // SGP.22 §5.6.1: serverAddress is the address the LPA used (the LPA and the eUICC
            // compare it with theirs), so echo the received one, port included.
            let signed = ServerSigned1 {
                transaction_id: transaction_id.to_vec(),
                euicc_challenge,
                server_address: req.smdp_address.clone(),
                server_challenge,
            }
            .to_der();
            let signature = self.time(&self.timings.sign, || self.dp_auth.sign(&signed));
            self.create_session(
                &transaction_id,
                &Session {
                    state: SessionState::Initiated,
                    server_challenge: server_challenge.to_vec(),
                    ci_ski: self.ci.ski.clone(),
                    euicc_cert: None,
                    eid: None,
                    order_id: None,
                    smdp_signature2: None,
                    cc_required: false,
                },
            )?;
            Ok(InitiateAuthenticationResponse {
                header: ResponseHeader::success(),
                transaction_id: transaction_id.to_vec(),
                server_signed1: signed,
                server_signature1: signature_field(&signature),
                euicc_ci_pkid_to_be_used: tlv::encode(TAG_OCTET_STRING, &self.ci.ski),
                server_certificate: self.dp_auth_cert.clone(),
            })
        })
    }

    /// ES9+.AuthenticateClient (SGP.22 §5.6.3).
    pub fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, FunctionError> {
        let result = self.function(|| self.authenticate_client_checked(req));
        if result.is_err() {
            // SGP.22 §5.6.3: a refused authentication ends the RSP session.
            let _ = self.end_session(&req.transaction_id);
        }
        result
    }

    fn authenticate_client_checked(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, FunctionError> {
        {
            let tx = req.transaction_id.as_slice();
            let mut session = self.session_in(tx, SessionState::Initiated)?;
            let ok = match AuthenticateServerAnswer::read(&req.authenticate_server_response)
                .map_err(invalid)?
            {
                AuthenticateServerAnswer::Ok(ok) => ok,
                AuthenticateServerAnswer::Refused(code) => {
                    return self.euicc_refused(
                        tx,
                        format!(
                            "the eUICC refused the server: authenticateErrorCode {}",
                            code.code()
                        ),
                    )
                }
            };
            if ok.transaction_id != tx {
                return Err(unknown_transaction(ok.transaction_id));
            }
            let euicc: VerifiedEuicc = self
                .time(&self.timings.verify, || {
                    self.eums.verify_euicc_chain(
                        ok.euicc_certificate,
                        ok.eum_certificate,
                        SystemTime::now(),
                    )
                })
                .map_err(|e| FunctionError::new(e.status_code(), e.to_string()))?;
            if !self.verify(&euicc.key, ok.euicc_signed1, ok.euicc_signature1) {
                return Err(FunctionError::new(
                    codes::EUICC_VERIFICATION_FAILED,
                    "euiccSignature1 does not verify over euiccSigned1",
                ));
            }
            if ok.server_challenge != session.server_challenge.as_slice() {
                return Err(FunctionError::new(
                    codes::EUICC_VERIFICATION_FAILED,
                    "serverChallenge is not the one of this session",
                ));
            }
            // Eligibility only: nothing is bound before the package is asked for (a device
            // that gives up here leaves the order to any other), see `bind_order`.
            let order = self.eligible_order(ok.ctx_params1.matching_id.as_deref(), &euicc.eid)?;
            let mut reported = order.clone();
            reported.eid = Some(euicc.eid.clone());
            self.progress_event(&reported, POINT_ELIGIBILITY, None)?;

            let metadata = store_metadata(&order.iccid, &order.template, &self.address)?;
            let cc_required = order.confirmation_code.is_some();
            // SGP.22 §5.7.5: ccRequiredFlag always present (real LPAs need it); no bppEuiccOtpk:
            // a retry gets a package newly bound to the eUICC's new one-time key (see
            // `get_bound_profile_package`).
            let signed2 = SmdpSigned2 {
                transaction_id: tx.to_vec(),
                cc_required,
                bpp_euicc_otpk: None,
            }
            .to_der();
            // SGP.22 §5.7.5: smdpSignature2 covers smdpSigned2 ‖ the euiccSignature1 field.
            let to_sign = [signed2.as_slice(), &signature_field(ok.euicc_signature1)].concat();
            let signature2 =
                signature_field(&self.time(&self.timings.sign, || self.dp_pb.sign(&to_sign)));
            session.state = SessionState::Authenticated;
            session.euicc_cert = Some(ok.euicc_certificate.to_vec());
            session.eid = Some(euicc.eid);
            session.order_id = Some(order.id);
            session.smdp_signature2 = Some(signature2.clone());
            session.cc_required = cc_required;
            self.save_session(tx, &session)?;
            Ok(AuthenticateClientResponse {
                header: ResponseHeader::success(),
                transaction_id: tx.to_vec(),
                profile_metadata: metadata,
                smdp_signed2: signed2,
                smdp_signature2: signature2,
                smdp_certificate: self.dp_pb_cert.clone(),
            })
        }
    }

    /// The order a matching ID (or, without one, the EID) selects (SGP.22 §5.6.3: matchingId
    /// refused, EID refused, profile not released, retries exceeded).
    fn eligible_order(&self, matching_id: Option<&str>, eid: &str) -> Result<Order, FunctionError> {
        let matching_id = matching_id.filter(|m| !m.is_empty());
        let found = match matching_id {
            Some(m) => self.with_store(|s| s.order_by_matching_id(m))?,
            None => self.with_store(|s| s.released_order_for_eid(eid))?,
        };
        let order = match (found, matching_id) {
            (Some(o), _) => o,
            (None, Some(m)) if self.templates.contains_key(m) => return self.template_order(m),
            (None, Some(m)) => {
                return Err(FunctionError::new(
                    codes::MATCHING_ID_REFUSED,
                    format!("no order has matching ID {m:?}"),
                ))
            }
            (None, None) => {
                return Err(FunctionError::new(
                    codes::MATCHING_ID_REFUSED,
                    format!("no matching ID and no released order for EID {eid}"),
                ))
            }
        };
        match self.refusal(&order, eid, true) {
            Some(refused) => Err(refused),
            None => Ok(order),
        }
    }

    /// Why `eid` may not download `order` now, if it may not (SGP.22 §5.6.3). An order is
    /// downloadable while Released, and while Downloaded — the package went out but no
    /// installation result came back (§3.1.3.2: a retry after an interrupted download) — by
    /// the EID it is bound to, or by any EID while it is bound to none. `attempts`: also
    /// refuse when the download attempts are used up.
    fn refusal(&self, order: &Order, eid: &str, attempts: bool) -> Option<FunctionError> {
        match order.state {
            OrderState::Released | OrderState::Downloaded => {}
            OrderState::Allocated | OrderState::Linked | OrderState::Confirmed => {
                return Some(FunctionError::new(
                    codes::PROFILE_NOT_RELEASED,
                    format!("order {} is {}, not released", order.iccid, order.state),
                ))
            }
            other => {
                return Some(FunctionError::new(
                    codes::MATCHING_ID_REFUSED,
                    format!(
                        "order {} is {other}: its matching ID is used up",
                        order.iccid
                    ),
                ))
            }
        }
        if let Some(bound) = &order.eid {
            if bound != eid {
                return Some(FunctionError::new(
                    codes::EID_REFUSED,
                    format!("order {} is for EID {bound}, not {eid}", order.iccid),
                ));
            }
        }
        if attempts && order.download_attempts >= self.download_retry_limit {
            return Some(FunctionError::new(
                codes::DOWNLOAD_RETRIES_EXCEEDED,
                format!(
                    "order {} had {} download attempts (limit {})",
                    order.iccid, order.download_attempts, self.download_retry_limit
                ),
            ));
        }
        None
    }

    /// A template downloaded by its file stem: an order of its own, unpersonalised.
    fn template_order(&self, stem: &str) -> Result<Order, FunctionError> {
        let template = self
            .templates
            .get(stem)
            .ok_or_else(|| FunctionError::new(codes::MATCHING_ID_REFUSED, stem.to_owned()))?;
        let mut order = Order {
            id: 0,
            iccid: template.iccid.clone(),
            template: stem.to_owned(),
            state: OrderState::Released,
            eid: None,
            matching_id: None,
            confirmation_code: None,
            cc_attempts: 0,
            download_attempts: 0,
            imsi: None,
            k: None,
            opc: None,
            msisdn: None,
            personalised: false,
            last_transaction_id: None,
            euicc_certificate: None,
        };
        order.id = self.with_store(|s| s.insert_order(&order))?;
        Ok(order)
    }

    /// ES9+.GetBoundProfilePackage (SGP.22 §5.6.2).
    pub fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, FunctionError> {
        self.function(|| {
            let tx = req.transaction_id.as_slice();
            let mut session = self.session_in(tx, SessionState::Authenticated)?;
            let (euicc_signed2, euicc_signature2) =
                match PrepareDownloadResponse::from_der(&req.prepare_download_response)
                    .map_err(invalid)?
                {
                    PrepareDownloadResponse::Ok {
                        euicc_signed2,
                        euicc_signature2,
                    } => (euicc_signed2, euicc_signature2),
                    PrepareDownloadResponse::Error { code, .. } => {
                        return self.euicc_refused(
                            tx,
                            format!(
                                "the eUICC refused PrepareDownload: downloadErrorCode {}",
                                code.code()
                            ),
                        )
                    }
                };
            let key = self.euicc_key(&session)?;
            let smdp_signature2 = session.smdp_signature2.clone().unwrap_or_default();
            // SGP.22 §5.7.5: euiccSignature2 covers euiccSigned2 (as received) ‖ the
            // smdpSignature2 field.
            let signed = [euicc_signed2.raw(), smdp_signature2.as_slice()].concat();
            if !self.verify(&key, &signed, &euicc_signature2) {
                return Err(FunctionError::new(
                    codes::EUICC_VERIFICATION_FAILED,
                    "euiccSignature2 does not verify over euiccSigned2 ‖ smdpSignature2",
                ));
            }
            let ok = &euicc_signed2.value;
            if ok.transaction_id != tx {
                return Err(unknown_transaction(&ok.transaction_id));
            }
            let order = self.bind_order(tx, &session, ok.hash_cc.as_ref().map(|h| &h[..]))?;
            let upp = self.profile_package(&order)?;
            let eid = session
                .eid
                .as_deref()
                .and_then(certs::eid_to_bytes)
                .ok_or_else(|| FunctionError::new(codes::EXECUTION_ERROR, "session EID"))?;
            let metadata = store_metadata(&order.iccid, &order.template, &self.address)?;
            let (package, times) = bpp::bind(
                &BindingInput {
                    transaction_id: tx,
                    host_id: HOST_ID,
                    euicc_otpk: &ok.euicc_otpk,
                    eid: &eid,
                    dp_pb: &self.dp_pb,
                    metadata: &metadata,
                    upp: &upp,
                    replace_session_keys: self.replace_session_keys,
                },
                &mut rand::thread_rng(),
            )
            .map_err(|e| FunctionError::new(codes::EUICC_VERIFICATION_FAILED, e.to_string()))?;
            add(&self.timings.key_agreement, times.key_agreement);
            add(&self.timings.sign, times.signature);
            add(&self.timings.protection, times.protection);
            session.state = SessionState::PackageSent;
            self.save_session(tx, &session)?;
            self.progress_event(&order, POINT_BPP_DOWNLOAD, None)?;
            Ok(GetBoundProfilePackageResponse {
                header: ResponseHeader::success(),
                transaction_id: tx.to_vec(),
                bound_profile_package: package,
            })
        })
    }

    /// Binds the session's order to its eUICC for this package, as one atomic step: checks
    /// the confirmation code (§5.6.2) and that the order may still go to this EID, then
    /// records Downloaded, the EID, this transaction and the eUICC certificate. Of several
    /// sessions racing for one order, exactly one binds it; the others are refused with
    /// "EID – Refused" (it is bound to another eUICC now). A session of the same EID binds it
    /// again: that is the retry of an interrupted download (§3.1.3.2), served with a package
    /// bound to this session's new one-time key. The order stays retryable until the
    /// installation result arrives (`handle_notification`) or the attempts are used up.
    fn bind_order(
        &self,
        tx: &[u8],
        session: &Session,
        hash_cc: Option<&[u8]>,
    ) -> Result<Order, FunctionError> {
        let eid = session
            .eid
            .clone()
            .ok_or_else(|| FunctionError::new(codes::EXECUTION_ERROR, "session has no EID"))?;
        let (order, outcome) = self.transition(Self::session_order(session)?, |o| {
            if session.cc_required {
                self.check_confirmation_code(tx, o, hash_cc)?;
            }
            if let Some(refused) = self.refusal(o, &eid, true) {
                return Err(refused);
            }
            // Each package bound is one download attempt (SGP.22 §5.6.3 "Maximum number of
            // retries exceeded" counts these).
            o.download_attempts += 1;
            o.state = OrderState::Downloaded;
            o.eid = Some(eid.clone());
            o.last_transaction_id = Some(hex::encode_upper(tx));
            o.euicc_certificate = session.euicc_cert.clone();
            Ok(())
        })?;
        if let Err(e) = outcome {
            if e.code == codes::CONFIRMATION_CODE_REFUSED
                || e.code == codes::CONFIRMATION_CODE_RETRIES_EXCEEDED
            {
                self.progress_event(&order, POINT_CONFIRMATION, Some((e.code, &e.message)))?;
            }
            // A wrong or missing code may be tried again in this session (§5.6.2); anything
            // else ends it.
            if e.code != codes::CONFIRMATION_CODE_REFUSED
                && e.code != codes::CONFIRMATION_CODE_MISSING
            {
                self.end_session(tx)?;
            }
            return Err(e);
        }
        Ok(order)
    }

    /// SGP.22 §5.6.2: hashCc must be SHA-256(SHA-256(code) ‖ transactionId); each wrong one
    /// counts, and the attempt that reaches the limit puts the order in Error.
    fn check_confirmation_code(
        &self,
        tx: &[u8],
        order: &mut Order,
        received: Option<&[u8]>,
    ) -> Result<(), FunctionError> {
        let code = order.confirmation_code.clone().unwrap_or_default();
        if order.cc_attempts >= self.cc_retry_limit {
            return Err(FunctionError::new(
                codes::CONFIRMATION_CODE_RETRIES_EXCEEDED,
                "confirmation code attempts used up",
            ));
        }
        let Some(received) = received else {
            return Err(FunctionError::new(
                codes::CONFIRMATION_CODE_MISSING,
                "this order needs a confirmation code; hashCc is absent",
            ));
        };
        if received == hash_cc(code.as_bytes(), tx).as_slice() {
            return Ok(());
        }
        order.cc_attempts += 1;
        let message = format!(
            "wrong confirmation code, attempt {} of {}",
            order.cc_attempts, self.cc_retry_limit
        );
        if order.cc_attempts >= self.cc_retry_limit {
            order.state = OrderState::Error;
            return Err(FunctionError::new(
                codes::CONFIRMATION_CODE_RETRIES_EXCEEDED,
                message,
            ));
        }
        Err(FunctionError::new(
            codes::CONFIRMATION_CODE_REFUSED,
            message,
        ))
    }

    /// ES9+.HandleNotification (SGP.22 §5.6.4). Notifications that do not verify are recorded
    /// and otherwise ignored (the function has no error output, §6.5.2.9).
    pub fn handle_notification(
        &self,
        req: &HandleNotificationRequest,
    ) -> Result<(), FunctionError> {
        self.function(|| {
            match PendingNotification::from_der(&req.pending_notification).map_err(invalid)? {
                PendingNotification::ProfileInstallationResult(pir) => {
                    let data = &pir.data.value;
                    let metadata = &data.notification_metadata;
                    let mut record = NotificationRecord {
                        eid: None,
                        iccid: metadata.iccid.map(|i| i.digits()),
                        seq_number: seq_number(metadata.seq_number),
                        operation: event_name(NotificationEvent::Install).into(),
                        result: String::new(),
                    };
                    // The order the session bound — or, once the session is gone (expired, or
                    // superseded by a retry), the order of this ICCID whose bound eUICC signed
                    // this result: a late result still counts.
                    let from_session = self
                        .load_session(&data.transaction_id)
                        .ok()
                        .filter(|s| s.state == SessionState::PackageSent)
                        .and_then(|s| s.order_id);
                    let candidates = match (from_session, &record.iccid) {
                        (Some(id), _) => self.with_store(|s| s.order(id))?.into_iter().collect(),
                        (None, Some(iccid)) => {
                            self.with_store(|s| s.orders_awaiting_result(iccid))?
                        }
                        (None, None) => Vec::new(),
                    };
                    if candidates.is_empty() {
                        record.result = "unknown transactionId".into();
                        return self.with_store(|s| s.record_notification(&record));
                    }
                    // SGP.22 §5.7.6: euiccSignPIR covers the received ProfileInstallationResultData.
                    let signed_by = |o: &Order| {
                        o.euicc_certificate
                            .as_deref()
                            .and_then(|c| VerifyingKey::from_certificate_der(c).ok())
                            .is_some_and(|key| {
                                self.verify(&key, pir.data.raw(), &pir.euicc_sign_pir)
                            })
                    };
                    let Some(order) = candidates.into_iter().find(signed_by) else {
                        record.result = "euiccSignPIR invalid".into();
                        return self.with_store(|s| s.record_notification(&record));
                    };
                    record.eid = order.eid.clone();
                    let tx_hex = hex::encode_upper(&data.transaction_id);
                    let failure = match &data.final_result {
                        FinalResult::Success { .. } => {
                            record.result = "success".into();
                            None
                        }
                        FinalResult::Error {
                            bpp_command_id,
                            error_reason,
                            ..
                        } => {
                            record.result = format!(
                                "error: bppCommandId {}, errorReason {}",
                                bpp_command_id.code(),
                                error_reason.code()
                            );
                            Some((codes::EXECUTION_ERROR, record.result.as_str()))
                        }
                    };
                    let (order, _) = self.transition(order.id, |o| {
                        match (failure.is_none(), o.state) {
                            // Installed, whichever session's package it was; later states
                            // (enabled, deleted, …) stay.
                            (true, OrderState::Released | OrderState::Downloaded) => {
                                o.state = OrderState::Installed;
                            }
                            // Only the failure of the package currently out reopens the
                            // order: a retry may follow while attempts remain.
                            (false, OrderState::Downloaded)
                                if o.last_transaction_id.as_deref() == Some(tx_hex.as_str()) =>
                            {
                                o.state = if o.download_attempts < self.download_retry_limit {
                                    OrderState::Released
                                } else {
                                    OrderState::Error
                                };
                            }
                            _ => {}
                        }
                        Ok::<(), FunctionError>(())
                    })?;
                    self.end_session(&data.transaction_id)?;
                    self.with_store(|s| s.record_notification(&record))?;
                    // SGP.22 §5.3.5: the operator learns whether the order is over: a failure
                    // that used up the attempts put it in Error.
                    let failure = match failure {
                        Some((_, message)) if order.state == OrderState::Error => {
                            Some((codes::DOWNLOAD_RETRIES_EXCEEDED, message))
                        }
                        other => other,
                    };
                    self.progress_event(&order, POINT_BPP_INSTALLATION, failure)
                }
                PendingNotification::Other(other) => {
                    let metadata = &other.tbs.value;
                    let iccid = metadata.iccid.map(|i| i.digits());
                    let mut record = NotificationRecord {
                        eid: None,
                        iccid: iccid.clone(),
                        seq_number: seq_number(metadata.seq_number),
                        operation: event_name(metadata.operation).into(),
                        result: String::new(),
                    };
                    let verified = self.time(&self.timings.verify, || {
                        self.eums.verify_euicc_chain(
                            &other.euicc_certificate,
                            &other.eum_certificate,
                            SystemTime::now(),
                        )
                    });
                    let euicc = match verified {
                        Ok(e) => e,
                        Err(e) => {
                            record.result = format!("certificate refused: {e}");
                            return self.with_store(|s| s.record_notification(&record));
                        }
                    };
                    record.eid = Some(euicc.eid.clone());
                    // SGP.22 §5.7.10: euiccNotificationSignature covers the received
                    // tbsOtherNotification.
                    if !self.verify(&euicc.key, other.tbs.raw(), &other.signature) {
                        record.result = "euiccNotificationSignature invalid".into();
                        return self.with_store(|s| s.record_notification(&record));
                    }
                    record.result = "success".into();
                    let order = match &iccid {
                        Some(i) => self.with_store(|s| s.order_by_iccid(i))?,
                        None => None,
                    };
                    if let Some(order) = order.filter(|o| o.eid.as_deref() == Some(&euicc.eid)) {
                        let (state, point) = match metadata.operation {
                            NotificationEvent::Enable => {
                                (OrderState::Enabled, Some(POINT_PROFILE_ENABLED))
                            }
                            NotificationEvent::Disable => {
                                (OrderState::Disabled, Some(POINT_PROFILE_DISABLED))
                            }
                            NotificationEvent::Delete => {
                                (OrderState::Deleted, Some(POINT_PROFILE_DELETED))
                            }
                            NotificationEvent::Install => (OrderState::Installed, None),
                        };
                        let (order, outcome) = self.transition(order.id, |o| {
                            o.state = state;
                            Ok::<(), FunctionError>(())
                        })?;
                        outcome?;
                        self.with_store(|s| s.record_notification(&record))?;
                        // The operator learns every state change the eUICC reports (the
                        // installation itself travels on point 4 with its result).
                        if let Some(point) = point {
                            self.progress_event(&order, point, None)?;
                        }
                        return Ok(());
                    }
                    self.with_store(|s| s.record_notification(&record))
                }
            }
        })
    }

    /// ES9+.CancelSession (SGP.22 §5.6.5).
    pub fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, FunctionError> {
        self.function(|| {
            let tx = req.transaction_id.as_slice();
            let session = self.load_session(tx)?;
            let parsed =
                CancelSessionResponse::from_der(&req.cancel_session_response).map_err(invalid)?;
            let reason = match parsed {
                CancelSessionResponse::Ok { signed, signature } => {
                    // Before authenticateClient the SM-DP+ has no eUICC key to check with.
                    // SGP.22 §5.7.14: the signature covers the received euiccCancelSessionSigned.
                    if session.euicc_cert.is_some() {
                        let key = self.euicc_key(&session)?;
                        if !self.verify(&key, signed.raw(), &signature) {
                            return Err(FunctionError::new(
                                codes::EUICC_VERIFICATION_FAILED,
                                "euiccCancelSessionSignature does not verify",
                            ));
                        }
                    }
                    let signed = &signed.value;
                    if let Some(ours) = &self.smdp_oid {
                        if &signed.smdp_oid != ours {
                            return Err(FunctionError::new(
                                codes::SMDP_OID_INVALID,
                                format!(
                                    "smdpOid {} is not this SM-DP+'s {}",
                                    hex::encode_upper(&signed.smdp_oid),
                                    hex::encode_upper(ours)
                                ),
                            ));
                        }
                    }
                    if signed.transaction_id != tx {
                        return Err(unknown_transaction(&signed.transaction_id));
                    }
                    Some(signed.reason)
                }
                CancelSessionResponse::Error(_) => None,
            };
            self.end_session(tx)?;
            if let Some(id) = session.order_id {
                let final_reason = reason.is_some_and(|r| CANCEL_REASONS_FINAL.contains(&r));
                let ours = Some(hex::encode_upper(tx));
                let (order, _) = self.transition(id, |o| {
                    let bound_here = o.last_transaction_id == ours;
                    let eid_ok = o.eid.is_none() || o.eid == session.eid;
                    // Only this session's own download is cancelled: a session that lost the
                    // order to another one (or to a retry) leaves it alone.
                    match o.state {
                        OrderState::Released if eid_ok && final_reason => {
                            o.state = OrderState::Error;
                        }
                        OrderState::Downloaded if bound_here => {
                            o.state = if final_reason {
                                OrderState::Error
                            } else {
                                OrderState::Released
                            };
                        }
                        _ => {}
                    }
                    Ok::<(), FunctionError>(())
                })?;
                self.progress_event(
                    &order,
                    POINT_SESSION_CANCELLED,
                    Some((
                        codes::TRANSACTION_ID_UNKNOWN,
                        "session cancelled by the LPA",
                    )),
                )?;
            }
            Ok(HeaderOnly {
                header: ResponseHeader::success(),
            })
        })
    }
}

/// The SM-DP+ called in process, as the LPA calls it over HTTPS (no TLS, no JSON).
impl crate::es9p::Es9Plus for Smdp {
    fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9pError> {
        Smdp::initiate_authentication(self, req).map_err(|e| e.into_es9p(INITIATE_AUTHENTICATION))
    }

    fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, Es9pError> {
        Smdp::authenticate_client(self, req).map_err(|e| e.into_es9p(AUTHENTICATE_CLIENT))
    }

    fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9pError> {
        Smdp::get_bound_profile_package(self, req)
            .map_err(|e| e.into_es9p(GET_BOUND_PROFILE_PACKAGE))
    }

    fn handle_notification(&self, req: &HandleNotificationRequest) -> Result<(), Es9pError> {
        Smdp::handle_notification(self, req).map_err(|e| e.into_es9p(HANDLE_NOTIFICATION))
    }

    fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError> {
        Smdp::cancel_session(self, req).map_err(|e| e.into_es9p(CANCEL_SESSION))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// `ctxParamsForCommonAuthentication` with matchingId "AB" and deviceInfo { tac, empty
    /// deviceCapabilities }.
    const CTX_PARAMS1: &str = "A0 0E 8002 4142 A108 8004 35290611 A100";

    /// An `euiccSigned1` whose euiccInfo2 is only svn/profileVersion/firmware (as the SM-DP+
    /// tests' eUICC sends it), with `fields` in front of it.
    fn euicc_signed1(fields: &str) -> Vec<u8> {
        tlv::encode(
            TAG_SEQUENCE,
            &[
                h(fields),
                h("BF22 0D 8103 020300 8203 020500 8301 00"),
                h(CTX_PARAMS1),
            ]
            .concat(),
        )
    }

    fn authenticate_response_ok(signed1: &[u8]) -> Vec<u8> {
        let ok = [
            signed1.to_vec(),
            h("5F37 02 0102"),
            h("30 01 E1"),
            h("30 01 E2"),
        ]
        .concat();
        tlv::encode(
            es10::TAG_AUTHENTICATE_SERVER,
            &tlv::encode(TAG_AUTHENTICATE_RESPONSE_OK, &ok),
        )
    }

    #[test]
    fn reads_an_authenticate_response_whose_euicc_info2_it_does_not_decode() {
        let signed1 = euicc_signed1("8002 A1A2 8303 613A31 8402 C1C2");
        let der = authenticate_response_ok(&signed1);
        assert!(
            es10::AuthenticateServerResponse::from_der(&der).is_err(),
            "es10 decodes euiccInfo2 in full"
        );
        let AuthenticateServerAnswer::Ok(ok) = AuthenticateServerAnswer::read(&der).unwrap() else {
            panic!("not the Ok alternative");
        };
        assert_eq!(
            ok.euicc_signed1,
            signed1.as_slice(),
            "signed bytes as received"
        );
        assert_eq!(ok.transaction_id, [0xA1, 0xA2]);
        assert_eq!(ok.server_challenge, [0xC1, 0xC2]);
        assert_eq!(ok.ctx_params1.matching_id.as_deref(), Some("AB"));
        assert_eq!(ok.ctx_params1.device_info.tac, h("35290611"));
        assert_eq!(ok.euicc_signature1, [1, 2]);
        assert_eq!(ok.euicc_certificate, h("30 01 E1"));
        assert_eq!(ok.eum_certificate, h("30 01 E2"));
    }

    #[test]
    fn reads_an_authenticate_response_as_es10_builds_it() {
        let info2 = es10::EuiccInfo2 {
            profile_version: [2, 3, 0],
            svn: [2, 5, 0],
            firmware_version: [1, 0, 0],
            ext_card_resource: h("8101 00"),
            uicc_capability: h("03 0000"),
            javacard_version: None,
            globalplatform_version: None,
            rsp_capability: h("02 0000"),
            ci_pkid_verification: vec![vec![0x5C; 20]],
            ci_pkid_signing: vec![vec![0x5C; 20]],
            euicc_category: None,
            forbidden_ppr: None,
            pp_version: [0, 1, 0],
            sas_accreditation_number: "SIMLAB".into(),
            extra: Vec::new(),
        };
        let signed1 = es10::Encoded::new(es10::EuiccSigned1 {
            transaction_id: vec![7; 16],
            server_address: "smdp.example".into(),
            server_challenge: [9; CHALLENGE_LEN],
            euicc_info2: es10::Encoded::new(info2),
            ctx_params1: es10::Encoded::from_der(&h(CTX_PARAMS1)).unwrap(),
        });
        let der = es10::AuthenticateServerResponse::Ok {
            euicc_signed1: signed1.clone(),
            euicc_signature1: vec![3; 64],
            euicc_certificate: h("30 01 E1"),
            eum_certificate: h("30 01 E2"),
        }
        .to_der();
        let AuthenticateServerAnswer::Ok(ok) = AuthenticateServerAnswer::read(&der).unwrap() else {
            panic!("not the Ok alternative");
        };
        assert_eq!(ok.euicc_signed1, signed1.raw());
        assert_eq!(ok.transaction_id, [7; 16]);
        assert_eq!(ok.server_challenge, [9; CHALLENGE_LEN]);
        assert_eq!(ok.euicc_signature1, [3; 64]);
    }

    #[test]
    fn reads_the_euiccs_refusal_with_its_error_code() {
        let der = es10::AuthenticateServerResponse::Error {
            transaction_id: vec![1; 16],
            code: AuthenticateErrorCode::InvalidSignature,
        }
        .to_der();
        assert!(matches!(
            AuthenticateServerAnswer::read(&der).unwrap(),
            AuthenticateServerAnswer::Refused(AuthenticateErrorCode::InvalidSignature)
        ));
    }

    #[rstest]
    #[case::empty_choice("BF38 00", Es10Error::Missing { what: "AuthenticateServerResponse", tag: 0xA1 })]
    #[case::other_message(
        "BF21 00",
        Es10Error::UnexpectedTag { what: "AuthenticateServerResponse", expected: 0xBF38, found: 0xBF21 }
    )]
    #[case::no_certificates(
        "BF38 0B A0 09 30 03 8001 01 5F37 01 00",
        Es10Error::Missing { what: "AuthenticateServerResponse", tag: 0x30 }
    )]
    #[case::no_server_challenge(
        "BF38 14 A0 12 30 08 8001 01 8301 61 A000 5F37 01 00 3000 3000",
        Es10Error::Missing { what: "euiccSigned1", tag: 0x84 }
    )]
    #[case::no_ctx_params1(
        "BF38 14 A0 12 30 08 8001 01 8301 61 8400 5F37 01 00 3000 3000",
        Es10Error::Missing { what: "euiccSigned1", tag: 0xA0 }
    )]
    fn refuses_an_authenticate_response_without_what_it_needs(
        #[case] der: &str,
        #[case] expected: Es10Error,
    ) {
        assert_eq!(
            AuthenticateServerAnswer::read(&h(der)).unwrap_err(),
            expected
        );
    }

    #[test]
    fn store_metadata_names_the_profile_and_sends_every_notification_here() {
        assert_eq!(
            store_metadata("8949449999999990023", "T", "a:1").unwrap(),
            h("BF25 24 \
               5A0A 98944499999999 0920F3 \
               9106 73696D6C6162 \
               9201 54 \
               B60B 3009 8002 04F0 8103 613A31")
        );
    }

    #[test]
    fn every_notification_event_is_in_notification_events_all_and_survives_der() {
        for e in NotificationEvent::ALL {
            assert!(NotificationEvents::ALL.contains(e), "{e:?}");
        }
        // ListNotificationRequest carries a bare NotificationEvents: `BF28 { 81 04F0 }`.
        let request = es10::ListNotificationRequest {
            operation: Some(NotificationEvents::ALL),
        };
        assert_eq!(request.to_der(), h("BF28 04 8102 04F0"));
        assert_eq!(
            es10::ListNotificationRequest::from_der(&request.to_der()).unwrap(),
            request
        );
    }

    #[rstest]
    #[case::cc_not_required(false, "30 07 8002 A1A2 0101 00")]
    #[case::cc_required(true, "30 07 8002 A1A2 0101 FF")]
    fn smdp_signed2_always_carries_the_cc_required_flag(#[case] cc: bool, #[case] expected: &str) {
        let signed2 = SmdpSigned2 {
            transaction_id: vec![0xA1, 0xA2],
            cc_required: cc,
            bpp_euicc_otpk: None,
        };
        assert_eq!(signed2.to_der(), h(expected));
    }

    proptest! {
        #[test]
        fn the_authenticate_response_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = AuthenticateServerAnswer::read(&bytes);
        }
    }
}
