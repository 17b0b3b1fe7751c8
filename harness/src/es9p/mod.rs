//! ES9+ (LPA ↔ SM-DP+) JSON binding, GSMA SGP.22 v2.5 §6.5 (HTTP/JSON transport of the
//! functions of §5.6): the request and response bodies of initiateAuthentication,
//! authenticateClient, getBoundProfilePackage, handleNotification and cancelSession, the
//! response header with `functionExecutionStatus` (§6.5.1.4), and the subject/reason status codes
//! the SM-DP+ returns (§5.6.1–§5.6.5 tables, codes of §5.1.6.3/§5.1.6.4).
//!
//! Shared by the SM-DP+ ([`crate::smdp`]) and the blocking HTTPS client ([`client`]) the LPA
//! uses. Binary fields are `Vec<u8>`: base64 in JSON (§6.5.2), the transactionId as a hex string
//! (§6.5.2, `TransactionId` is "hexadecimal string").

pub mod client;

pub use client::{Es9pClient, Es9pError};

use serde::{Deserialize, Serialize};

/// Path prefix of every ES9+ function (SGP.22 §6.5.2).
pub const ES9P_PATH_PREFIX: &str = "/gsma/rsp2/es9plus/";
/// Function names, appended to [`ES9P_PATH_PREFIX`] (SGP.22 §6.5.2.6–§6.5.2.10).
pub const INITIATE_AUTHENTICATION: &str = "initiateAuthentication";
pub const AUTHENTICATE_CLIENT: &str = "authenticateClient";
pub const GET_BOUND_PROFILE_PACKAGE: &str = "getBoundProfilePackage";
pub const HANDLE_NOTIFICATION: &str = "handleNotification";
pub const CANCEL_SESSION: &str = "cancelSession";

/// The `X-Admin-Protocol` header (SGP.22 §6.5.1): `gsma/rsp/v<major>.<minor>.<rev>`.
pub const HEADER_ADMIN_PROTOCOL: &str = "X-Admin-Protocol";
/// The version this implementation speaks; real LPAs send v2.1.0 … v2.2.2 and are accepted.
pub const ADMIN_PROTOCOL: &str = "gsma/rsp/v2.2.0";
/// Prefix every accepted `X-Admin-Protocol` value has (SGP.22 v2.x).
pub const ADMIN_PROTOCOL_V2_PREFIX: &str = "gsma/rsp/v2.";
/// Content type of requests and responses (SGP.22 §6.5.1).
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// `functionExecutionStatus.status` values (SGP.22 §6.5.1.4).
pub const STATUS_EXECUTED_SUCCESS: &str = "Executed-Success";
pub const STATUS_EXECUTED_WITH_WARNING: &str = "Executed-WithWarning";
pub const STATUS_FAILED: &str = "Failed";
pub const STATUS_EXPIRED: &str = "Expired";

/// Base64 (RFC 4648 §4) for binary JSON fields (SGP.22 §6.5.2: "Base64 encoded" types).
/// Decoding accepts padded and unpadded input and ignores whitespace (some clients wrap lines).
pub mod base64_bytes {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).map_err(serde::de::Error::custom)
    }

    /// Decodes base64 text, padded or not, whitespace ignored.
    pub fn decode(text: &str) -> Result<Vec<u8>, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD
            .decode(&compact)
            .or_else(|_| STANDARD_NO_PAD.decode(compact.trim_end_matches('=')))
            .map_err(|e| format!("expected base64, got {:?}…: {e}", short(&compact)))
    }

    fn short(s: &str) -> &str {
        s.get(..s.len().min(24)).unwrap_or(s)
    }
}

/// Hex strings for the transactionId (SGP.22 §6.5.2: TransactionId "hexadecimal string");
/// written in upper case, read in either case.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text.trim())
            .map_err(|e| serde::de::Error::custom(format!("expected a hex transactionId: {e}")))
    }
}

/// Request header (SGP.22 §6.5.1.3). Real LPAs send none; the SM-DP+ never requires it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeader {
    pub function_requester_identifier: String,
    pub function_call_identifier: String,
}

/// `statusCodeData` (SGP.22 §6.5.1.4): why a function failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCodeData {
    pub subject_code: String,
    pub reason_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `functionExecutionStatus` (SGP.22 §6.5.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionExecutionStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code_data: Option<StatusCodeData>,
}

/// Response header (SGP.22 §6.5.1.4), present in every response with a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseHeader {
    pub function_execution_status: FunctionExecutionStatus,
}

impl ResponseHeader {
    /// `Executed-Success`, no status code data.
    pub fn success() -> Self {
        Self {
            function_execution_status: FunctionExecutionStatus {
                status: STATUS_EXECUTED_SUCCESS.into(),
                status_code_data: None,
            },
        }
    }

    /// `Failed` with a status code and a human-readable message.
    pub fn failed(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            function_execution_status: FunctionExecutionStatus {
                status: STATUS_FAILED.into(),
                status_code_data: Some(StatusCodeData {
                    subject_code: code.subject.into(),
                    reason_code: code.reason.into(),
                    subject_identifier: None,
                    message: Some(message.into()),
                }),
            },
        }
    }

    pub fn is_success(&self) -> bool {
        self.function_execution_status.status == STATUS_EXECUTED_SUCCESS
            || self.function_execution_status.status == STATUS_EXECUTED_WITH_WARNING
    }
}

/// A body that is only a header: every failure, and cancelSession's success (SGP.22 §6.5.2.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderOnly {
    pub header: ResponseHeader,
}

/// ES9+.InitiateAuthentication request (SGP.22 §5.6.1, §6.5.2.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateAuthenticationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    /// 16 bytes from ES10b.GetEUICCChallenge.
    #[serde(with = "base64_bytes")]
    pub euicc_challenge: Vec<u8>,
    /// `EUICCInfo1` DER (`BF20`).
    #[serde(rename = "euiccInfo1", with = "base64_bytes")]
    pub euicc_info1: Vec<u8>,
    /// The SM-DP+ address as the LPA knows it (may carry `:port`).
    pub smdp_address: String,
}

/// ES9+.InitiateAuthentication response on success (SGP.22 §6.5.2.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateAuthenticationResponse {
    pub header: ResponseHeader,
    #[serde(with = "hex_bytes")]
    pub transaction_id: Vec<u8>,
    /// `ServerSigned1` DER.
    #[serde(rename = "serverSigned1", with = "base64_bytes")]
    pub server_signed1: Vec<u8>,
    /// The whole `5F37 40 ‖ r‖s` field.
    #[serde(rename = "serverSignature1", with = "base64_bytes")]
    pub server_signature1: Vec<u8>,
    /// `SubjectKeyIdentifier` DER: `04 14 ‖ CI SKI`.
    #[serde(rename = "euiccCiPKIdToBeUsed", with = "base64_bytes")]
    pub euicc_ci_pkid_to_be_used: Vec<u8>,
    /// CERT.DPauth.SIG DER.
    #[serde(with = "base64_bytes")]
    pub server_certificate: Vec<u8>,
}

/// ES9+.AuthenticateClient request (SGP.22 §5.6.3, §6.5.2.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateClientRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    #[serde(with = "hex_bytes")]
    pub transaction_id: Vec<u8>,
    /// `AuthenticateServerResponse` DER (`BF38`) from ES10b.AuthenticateServer.
    #[serde(with = "base64_bytes")]
    pub authenticate_server_response: Vec<u8>,
}

/// ES9+.AuthenticateClient response on success (SGP.22 §6.5.2.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateClientResponse {
    pub header: ResponseHeader,
    #[serde(with = "hex_bytes")]
    pub transaction_id: Vec<u8>,
    /// `StoreMetadataRequest` DER (`BF25`).
    #[serde(with = "base64_bytes")]
    pub profile_metadata: Vec<u8>,
    /// `SmdpSigned2` DER.
    #[serde(rename = "smdpSigned2", with = "base64_bytes")]
    pub smdp_signed2: Vec<u8>,
    /// The whole `5F37 40 ‖ r‖s` field.
    #[serde(rename = "smdpSignature2", with = "base64_bytes")]
    pub smdp_signature2: Vec<u8>,
    /// CERT.DPpb.SIG DER.
    #[serde(with = "base64_bytes")]
    pub smdp_certificate: Vec<u8>,
}

/// ES9+.GetBoundProfilePackage request (SGP.22 §5.6.2, §6.5.2.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetBoundProfilePackageRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    #[serde(with = "hex_bytes")]
    pub transaction_id: Vec<u8>,
    /// `PrepareDownloadResponse` DER (`BF21`) from ES10b.PrepareDownload.
    #[serde(with = "base64_bytes")]
    pub prepare_download_response: Vec<u8>,
}

/// ES9+.GetBoundProfilePackage response on success (SGP.22 §6.5.2.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetBoundProfilePackageResponse {
    pub header: ResponseHeader,
    #[serde(with = "hex_bytes")]
    pub transaction_id: Vec<u8>,
    /// `BoundProfilePackage` DER (`BF36`).
    #[serde(with = "base64_bytes")]
    pub bound_profile_package: Vec<u8>,
}

/// ES9+.HandleNotification request (SGP.22 §5.6.4, §6.5.2.9); the answer is `204 No Content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandleNotificationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    /// `PendingNotification` DER: `BF37` ProfileInstallationResult or `30`
    /// OtherSignedNotification.
    #[serde(with = "base64_bytes")]
    pub pending_notification: Vec<u8>,
}

/// ES9+.CancelSession request (SGP.22 §5.6.5, §6.5.2.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelSessionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    #[serde(with = "hex_bytes")]
    pub transaction_id: Vec<u8>,
    /// `CancelSessionResponse` DER (`BF41`) from ES10b.CancelSession.
    #[serde(with = "base64_bytes")]
    pub cancel_session_response: Vec<u8>,
}

/// The five ES9+ functions, as the LPA calls them: over HTTPS ([`Es9pClient`]) or in process
/// (`impl Es9Plus for simlab_harness::smdp::Smdp`, for benchmarks and tests without TLS).
/// Failures reported by the SM-DP+ are [`Es9pError::Failed`] with its subject/reason codes.
pub trait Es9Plus {
    /// ES9+.InitiateAuthentication (SGP.22 §5.6.1).
    fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9pError>;
    /// ES9+.AuthenticateClient (SGP.22 §5.6.3).
    fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, Es9pError>;
    /// ES9+.GetBoundProfilePackage (SGP.22 §5.6.2).
    fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9pError>;
    /// ES9+.HandleNotification (SGP.22 §5.6.4).
    fn handle_notification(&self, req: &HandleNotificationRequest) -> Result<(), Es9pError>;
    /// ES9+.CancelSession (SGP.22 §5.6.5).
    fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError>;
}

/// A subject code and reason code pair (SGP.22 §5.1.6.3 / §5.1.6.4), as the function tables of
/// §5.6 and §5.3 list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode {
    pub subject: &'static str,
    pub reason: &'static str,
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.subject, self.reason)
    }
}

/// The status codes of the ES9+ and ES2+ function tables (SGP.22 v2.5 §5.3, §5.6).
pub mod codes {
    use super::StatusCode;

    const fn code(subject: &'static str, reason: &'static str) -> StatusCode {
        StatusCode { subject, reason }
    }

    // --- ES9+.InitiateAuthentication (§5.6.1) ---
    /// SM-DP+ Address – Refused: smdpAddress is not this server.
    pub const SMDP_ADDRESS_REFUSED: StatusCode = code("8.8.1", "3.8");
    /// Security configuration – Unsupported: no proposed CI PKID for signing is ours.
    pub const SECURITY_CONFIGURATION_UNSUPPORTED: StatusCode = code("8.8.2", "3.1");
    /// Specification version number – Unsupported (svn of EUICCInfo1).
    pub const SPECIFICATION_VERSION_UNSUPPORTED: StatusCode = code("8.8.3", "3.1");
    /// Unavailable server auth certificate: no CERT.DPauth chaining to a CI the eUICC verifies.
    pub const SERVER_AUTH_CERTIFICATE_UNAVAILABLE: StatusCode = code("8.8.4", "3.7");

    // --- ES9+.AuthenticateClient (§5.6.3) ---
    /// EUM certificate – Verification failed.
    pub const EUM_CERTIFICATE_INVALID: StatusCode = code("8.1.2", "6.1");
    /// EUM certificate – Expired.
    pub const EUM_CERTIFICATE_EXPIRED: StatusCode = code("8.1.2", "6.3");
    /// eUICC certificate – Verification failed.
    pub const EUICC_CERTIFICATE_INVALID: StatusCode = code("8.1.3", "6.1");
    /// eUICC certificate – Expired.
    pub const EUICC_CERTIFICATE_EXPIRED: StatusCode = code("8.1.3", "6.3");
    /// eUICC – Verification failed (euiccSignature1/2, serverChallenge, notification signature).
    pub const EUICC_VERIFICATION_FAILED: StatusCode = code("8.1", "6.1");
    /// Matching ID – Refused.
    pub const MATCHING_ID_REFUSED: StatusCode = code("8.2.6", "3.8");
    /// EID – Refused: the order is bound to another EID.
    pub const EID_REFUSED: StatusCode = code("8.1.1", "3.8");
    /// Profile – Not allowed: the order is not released.
    pub const PROFILE_NOT_RELEASED: StatusCode = code("8.2", "1.2");
    /// Profile type – Stored data error: no eligible profile for this eUICC.
    pub const NO_ELIGIBLE_PROFILE: StatusCode = code("8.2.5", "4.3");
    /// CI Public Key – Unknown: the eUICC chain ends at another CI than the one agreed.
    pub const CI_PUBLIC_KEY_UNKNOWN: StatusCode = code("8.11.1", "3.9");
    /// Download order – Time to live expired.
    pub const DOWNLOAD_ORDER_EXPIRED: StatusCode = code("8.8.5", "4.10");
    /// Download order – Maximum number of retries exceeded.
    pub const DOWNLOAD_RETRIES_EXCEEDED: StatusCode = code("8.8.5", "6.4");

    // --- ES9+.GetBoundProfilePackage (§5.6.2) ---
    /// Confirmation Code – Mandatory element missing.
    pub const CONFIRMATION_CODE_MISSING: StatusCode = code("8.2.7", "2.2");
    /// Confirmation Code – Refused.
    pub const CONFIRMATION_CODE_REFUSED: StatusCode = code("8.2.7", "3.8");
    /// Confirmation Code – Maximum number of retries exceeded.
    pub const CONFIRMATION_CODE_RETRIES_EXCEEDED: StatusCode = code("8.2.7", "6.4");

    // --- every ES9+ function with a transactionId ---
    /// TransactionId – Unknown: no ongoing RSP session with this id (or not in a state where
    /// this function may run).
    pub const TRANSACTION_ID_UNKNOWN: StatusCode = code("8.10.1", "3.9");

    // --- ES9+.CancelSession (§5.6.5) ---
    /// SM-DP+ – Invalid association: smdpOid is not the one of CERT.DPauth.
    pub const SMDP_OID_INVALID: StatusCode = code("8.8", "3.10");

    // --- ES2+ (§5.3) ---
    /// Profile ICCID – Unknown.
    pub const ICCID_UNKNOWN: StatusCode = code("8.2.1", "3.9");
    /// Profile ICCID – Not allowed in the profile's current state.
    pub const ICCID_NOT_ALLOWED: StatusCode = code("8.2.1", "1.2");
    /// EID – Invalid association: another EID is bound to the profile.
    pub const EID_INVALID_ASSOCIATION: StatusCode = code("8.1.1", "3.10");
    /// Matching ID – Already in use.
    pub const MATCHING_ID_IN_USE: StatusCode = code("8.2.6", "3.3");
    /// Profile Type – Unknown (no such template).
    pub const PROFILE_TYPE_UNKNOWN: StatusCode = code("8.2.5", "3.9");

    // --- generic (§5.1.6.4 reason codes 2.1/2.2 on the function's input) ---
    /// The request body is not the function's JSON or a field is not its ASN.1 structure
    /// (reason 2.1 "Invalid format"; subject 1.6 "Function input data").
    pub const INVALID_INPUT: StatusCode = code("1.6", "2.1");
    /// A mandatory input field is missing (reason 2.2).
    pub const MANDATORY_ELEMENT_MISSING: StatusCode = code("1.6", "2.2");
    /// Function provider – Execution error: the server failed (database, template file).
    pub const EXECUTION_ERROR: StatusCode = code("1.2", "4.2");
    /// No such function at the requested path (function input data – unknown). Outside the
    /// function tables: simlab's choice for requests that reach no function (docs/smdp.md).
    pub const UNKNOWN_FUNCTION: StatusCode = code("1.6", "3.9");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_request_as_a_real_lpa_sends_it() {
        // No header object, unpadded base64 is tolerated, smdpAddress carries a port.
        let body = r#"{"euiccChallenge":"AAECAwQFBgcICQoLDA0ODw==","euiccInfo1":"vyAA","smdpAddress":"127.0.0.1:8443"}"#;
        let req: InitiateAuthenticationRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.header, None);
        assert_eq!(req.euicc_challenge, (0u8..16).collect::<Vec<_>>());
        assert_eq!(req.euicc_info1, vec![0xBF, 0x20, 0x00]);
        assert_eq!(req.smdp_address, "127.0.0.1:8443");
    }

    #[test]
    fn writes_field_names_exactly_as_the_json_binding_spells_them() {
        let resp = InitiateAuthenticationResponse {
            header: ResponseHeader::success(),
            transaction_id: vec![0xAB, 0x01],
            server_signed1: vec![1],
            server_signature1: vec![2],
            euicc_ci_pkid_to_be_used: vec![3],
            server_certificate: vec![4],
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "header": {"functionExecutionStatus": {"status": "Executed-Success"}},
                "transactionId": "AB01",
                "serverSigned1": "AQ==",
                "serverSignature1": "Ag==",
                "euiccCiPKIdToBeUsed": "Aw==",
                "serverCertificate": "BA=="
            })
        );
    }

    #[test]
    fn failed_header_carries_subject_and_reason_codes() {
        let v = serde_json::to_value(HeaderOnly {
            header: ResponseHeader::failed(codes::TRANSACTION_ID_UNKNOWN, "unknown"),
        })
        .unwrap();
        assert_eq!(
            v["header"]["functionExecutionStatus"],
            serde_json::json!({"status": "Failed", "statusCodeData": {
                "subjectCode": "8.10.1", "reasonCode": "3.9", "message": "unknown"}})
        );
    }

    #[test]
    fn rejects_a_transaction_id_that_is_not_hex() {
        let body = r#"{"transactionId":"XYZ","authenticateServerResponse":""}"#;
        assert!(serde_json::from_str::<AuthenticateClientRequest>(body).is_err());
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..64)
    }

    proptest! {
        #[test]
        fn initiate_authentication_round_trips(c in bytes(), i in bytes(), a in "[a-z0-9.:-]{0,30}") {
            let req = InitiateAuthenticationRequest { header: None, euicc_challenge: c, euicc_info1: i, smdp_address: a };
            let text = serde_json::to_string(&req).unwrap();
            prop_assert_eq!(serde_json::from_str::<InitiateAuthenticationRequest>(&text).unwrap(), req);
        }

        #[test]
        fn every_response_round_trips(t in bytes(), a in bytes(), b in bytes(), c in bytes(), d in bytes()) {
            let h = ResponseHeader::success();
            let r1 = InitiateAuthenticationResponse { header: h.clone(), transaction_id: t.clone(), server_signed1: a.clone(), server_signature1: b.clone(), euicc_ci_pkid_to_be_used: c.clone(), server_certificate: d.clone() };
            prop_assert_eq!(serde_json::from_str::<InitiateAuthenticationResponse>(&serde_json::to_string(&r1).unwrap()).unwrap(), r1);
            let r2 = AuthenticateClientResponse { header: h.clone(), transaction_id: t.clone(), profile_metadata: a.clone(), smdp_signed2: b.clone(), smdp_signature2: c.clone(), smdp_certificate: d.clone() };
            prop_assert_eq!(serde_json::from_str::<AuthenticateClientResponse>(&serde_json::to_string(&r2).unwrap()).unwrap(), r2);
            let r3 = GetBoundProfilePackageResponse { header: h, transaction_id: t.clone(), bound_profile_package: a.clone() };
            prop_assert_eq!(serde_json::from_str::<GetBoundProfilePackageResponse>(&serde_json::to_string(&r3).unwrap()).unwrap(), r3);
        }

        #[test]
        fn every_request_round_trips(t in bytes(), a in bytes(), with_header in any::<bool>()) {
            let header = with_header.then(|| RequestHeader { function_requester_identifier: "lpa".into(), function_call_identifier: "1".into() });
            let r1 = AuthenticateClientRequest { header: header.clone(), transaction_id: t.clone(), authenticate_server_response: a.clone() };
            prop_assert_eq!(serde_json::from_str::<AuthenticateClientRequest>(&serde_json::to_string(&r1).unwrap()).unwrap(), r1);
            let r2 = GetBoundProfilePackageRequest { header: header.clone(), transaction_id: t.clone(), prepare_download_response: a.clone() };
            prop_assert_eq!(serde_json::from_str::<GetBoundProfilePackageRequest>(&serde_json::to_string(&r2).unwrap()).unwrap(), r2);
            let r3 = HandleNotificationRequest { header: header.clone(), pending_notification: a.clone() };
            prop_assert_eq!(serde_json::from_str::<HandleNotificationRequest>(&serde_json::to_string(&r3).unwrap()).unwrap(), r3);
            let r4 = CancelSessionRequest { header, transaction_id: t, cancel_session_response: a };
            prop_assert_eq!(serde_json::from_str::<CancelSessionRequest>(&serde_json::to_string(&r4).unwrap()).unwrap(), r4);
        }

        #[test]
        fn base64_decoding_never_panics(s in ".{0,80}") {
            let _ = base64_bytes::decode(&s);
        }
    }
}
