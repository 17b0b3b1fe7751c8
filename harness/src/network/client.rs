//! The typed, blocking client of the operator network (docs/network.md §9), for devices and
//! tests: the TS.43 entitlement exchange (EAP-AKA relay, token, one-time code), the contract
//! page, the SMS centre, BOSS provisioning, HLR checks, calls and the admin API. Cheap to clone,
//! `Send + Sync` (one ureq agent with its connection pool).
//!
//! Every failure the network answers becomes [`ClientError::Network`] with its stable code.
//! An optional observer sees every exchange (flows put them in their transcripts).

use super::db::{Contract, LineView, Sms};
use super::http::{CONTENT_TYPE_EAP_RELAY, EAP_SESSION_COOKIE};
use super::service::{
    AttachChallenge, Attached, CallResult, GroupView, HlrRecord, OperationView, OrderView,
    Provision, ProvisionAka, SubscriberView,
};
use super::ts43::{self, LineId};
use crate::eap_aka::peer::{CardAnswer, Challenge, PeerAnswer};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Rounds of one EAP-AKA exchange (challenge, resynchronisations) before giving up.
const MAX_EAP_ROUNDS: usize = 4;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The network answered an error (docs/network.md "Conventions").
    #[error("{code} (HTTP {status}): {message}")]
    Network {
        status: u16,
        code: String,
        message: String,
        /// The EAP-Failure relayed with an EAP-AKA failure.
        eap_failure: Option<Vec<u8>>,
    },
    #[error("network unreachable: {0}")]
    Transport(String),
    #[error("unexpected answer from the network: {0}")]
    Decode(String),
    /// The device side refused (a malformed challenge, a card that cannot answer).
    #[error("device: {0}")]
    Device(String),
}

impl ClientError {
    /// The network's error code, when the network answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Network { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// One HTTP exchange, as the observer sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    pub method: String,
    /// Path with query.
    pub path: String,
    /// JSON body, or a form body as a JSON object.
    pub request: Option<Value>,
    pub status: u16,
    /// JSON answer, or `{"html": …}` for pages.
    pub response: Option<Value>,
}

/// Sees every exchange.
pub type Observer = Arc<dyn Fn(&Exchange) + Send + Sync>;

/// A card answering RAND/AUTN (the USIM's AUTHENTICATE, 3G context).
pub type CardFn<'a> = dyn FnMut(&[u8; 16], &[u8; 16]) -> Result<CardAnswer> + 'a;

/// How a `/ts43` request authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// EAP-AKA with this permanent identity (see [`crate::eap_aka::permanent_identity`]).
    EapAka { identity: String },
    /// The token of an earlier authentication.
    Token(String),
    /// A one-time code by SMS to this number.
    Otp { msisdn: String },
    /// Continue an operation (after a contract or with a code).
    Continue {
        operation_id: String,
        otp: Option<String>,
        token: Option<String>,
    },
}

/// A `/ts43` request: application, operation and parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntitlementRequest {
    pub params: BTreeMap<String, String>,
}

impl EntitlementRequest {
    fn with(pairs: &[(&str, &str)]) -> Self {
        Self {
            params: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Adds or replaces a parameter.
    pub fn param(mut self, key: &str, value: &str) -> Self {
        self.params.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Authenticate only: token and the line's state (AcquireConfiguration, ap2009).
    pub fn acquire_configuration() -> Self {
        Self::with(&[
            ("app", ts43::APP_ODSA_PRIMARY),
            ("operation", "AcquireConfiguration"),
        ])
    }

    /// A profile for a companion's eUICC (ap2006 ManageSubscription SUBSCRIBE); `shared_number`
    /// also binds it to the primary's MSISDN (Fig. 5).
    pub fn companion_subscribe(eid: &str, shared_number: bool) -> Self {
        let r = Self::with(&[
            ("app", ts43::APP_ODSA_COMPANION),
            ("operation", "ManageSubscription"),
            ("operation_type", ts43::OPERATION_TYPE_SUBSCRIBE),
            ("companion_terminal_eid", eid),
        ]);
        if shared_number {
            r.param("companion_terminal_service", "SharedNumber")
        } else {
            r
        }
    }

    /// A profile for the device's own eUICC, authenticated by its UICC (Fig. 14/15).
    pub fn own_euicc_subscribe(eid: &str, bind: bool) -> Self {
        let r = Self::with(&[
            ("app", ts43::APP_ODSA_PRIMARY),
            ("operation", "ManageSubscription"),
            ("operation_type", ts43::OPERATION_TYPE_SUBSCRIBE),
            ("terminal_eid", eid),
        ]);
        if bind {
            r.param("companion_terminal_service", "SharedNumber")
        } else {
            r
        }
    }

    fn with_ids(mut self, primary: Option<&LineId>, secondary: &LineId) -> Self {
        let set = |r: &mut Self, prefix: &str, id: &LineId| {
            let (suffix, value) = match id {
                LineId::Iccid(v) => ("iccid", v),
                LineId::Msisdn(v) => ("msisdn", v),
                LineId::Imsi(v) => ("imsi", v),
                LineId::Eid(v) => ("eid", v),
            };
            r.params.insert(format!("{prefix}_{suffix}"), value.clone());
        };
        if let Some(p) = primary {
            set(&mut self, "terminal", p);
        }
        set(&mut self, "companion_terminal", secondary);
        self
    }

    /// Multi-IMSI single-MSISDN activation (ManageService ACTIVATE_SERVICE).
    pub fn activate_multi_imsi(
        primary: Option<&LineId>,
        secondary: &LineId,
        ring_mode: Option<&str>,
    ) -> Self {
        let r = Self::with(&[
            ("app", ts43::APP_ODSA_COMPANION),
            ("operation", "ManageService"),
            ("operation_type", ts43::OPERATION_TYPE_ACTIVATE_SERVICE),
        ])
        .with_ids(primary, secondary);
        match ring_mode {
            Some(m) => r.param("ring_mode", m),
            None => r,
        }
    }

    /// Unbinding (ManageService DEACTIVATE_SERVICE).
    pub fn deactivate_multi_imsi(primary: Option<&LineId>, secondary: &LineId) -> Self {
        Self::with(&[
            ("app", ts43::APP_ODSA_COMPANION),
            ("operation", "ManageService"),
            ("operation_type", ts43::OPERATION_TYPE_DEACTIVATE_SERVICE),
        ])
        .with_ids(primary, secondary)
    }

    /// Upgrade to eUICC or eUICC migration (ManageSubscription TRANSFER_SUBSCRIPTION);
    /// `transfer_type`: "upgrade", "migration" or `None` (inferred).
    pub fn transfer(msisdn: &str, new_eid: &str, transfer_type: Option<&str>) -> Self {
        let r = Self::with(&[
            ("app", ts43::APP_ODSA_PRIMARY),
            ("operation", "ManageSubscription"),
            ("operation_type", ts43::OPERATION_TYPE_TRANSFER_SUBSCRIPTION),
            ("MSISDN", msisdn),
            ("terminal_eid", new_eid),
        ]);
        match transfer_type {
            Some(t) => r.param("transfer_type", t),
            None => r,
        }
    }
}

/// DownloadInfo of an entitlement document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadInfo {
    #[serde(rename = "ProfileActivationCode")]
    pub activation_code: String,
    #[serde(rename = "ProfileSmdpAddress")]
    pub smdp_address: String,
    #[serde(rename = "ProfileIccid")]
    pub iccid: String,
}

/// What a document asks the device to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Download the profile (SubscriptionResult 2).
    Download(DownloadInfo),
    /// Open the contract page, then continue the operation (SubscriptionResult 1, or
    /// ServiceStatus 2 with a URL).
    Contract { url: String, operation_id: String },
    /// Type the code the SMS brought, then continue (SubscriptionResult 8).
    Code { operation_id: String },
    /// The user declined (SubscriptionResult 5).
    Dismissed,
    /// Nothing more to do.
    Done,
}

/// The entitlement document (docs/network.md §1).
#[derive(Debug, Clone, PartialEq)]
pub struct EntitlementDocument {
    pub raw: Value,
}

impl EntitlementDocument {
    /// The `APPLICATION` characteristic.
    pub fn app(&self) -> &Value {
        &self.raw["APPLICATION"]
    }

    fn app_str(&self, key: &str) -> Option<&str> {
        self.app()[key].as_str()
    }

    pub fn token(&self) -> Option<&str> {
        self.raw["Token"]["token"].as_str()
    }

    pub fn subscription_result(&self) -> Option<&str> {
        self.app_str("SubscriptionResult")
    }

    pub fn service_status(&self) -> Option<&str> {
        self.app_str("ServiceStatus")
    }

    pub fn operation_id(&self) -> Option<&str> {
        self.app_str("OperationId")
    }

    pub fn contract_url(&self) -> Option<&str> {
        self.app_str("SubscriptionServiceURL")
    }

    pub fn download_info(&self) -> Option<DownloadInfo> {
        serde_json::from_value(self.app()["DownloadInfo"].clone()).ok()
    }

    /// `Line` (AcquireConfiguration).
    pub fn line(&self) -> Option<&Value> {
        self.app().get("Line")
    }

    /// `MultiImsi` (bindings).
    pub fn multi_imsi(&self) -> Option<&Value> {
        self.app().get("MultiImsi")
    }

    pub fn next_step(&self) -> NextStep {
        let op = || self.operation_id().unwrap_or_default().to_owned();
        if let Some(info) = self.download_info() {
            return NextStep::Download(info);
        }
        if let Some(url) = self.contract_url() {
            if self.subscription_result() == Some(ts43::SUBSCRIPTION_RESULT_CONTINUE_TO_WEBSHEET)
                || self.service_status() == Some(ts43::SERVICE_STATUS_ACTIVATING)
                    && self.subscription_result().is_none()
            {
                return NextStep::Contract {
                    url: url.to_owned(),
                    operation_id: op(),
                };
            }
        }
        match self.subscription_result() {
            Some(ts43::SUBSCRIPTION_RESULT_REQUIRES_USER_INPUT) => {
                NextStep::Code { operation_id: op() }
            }
            Some(ts43::SUBSCRIPTION_RESULT_DISMISS) => NextStep::Dismissed,
            _ => NextStep::Done,
        }
    }
}

/// An answer of `/ts43`.
#[derive(Debug, Clone, PartialEq)]
pub enum EntitlementAnswer {
    /// An EAP-Request to give the peer; answer it with [`NetworkClient::eap_relay`].
    Challenge {
        packet: Vec<u8>,
        session: String,
    },
    Document(EntitlementDocument),
}

/// The contract page as a browser shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractPage {
    pub url: String,
    pub html: String,
    /// Whether the page offers the accept / decline form (unanswered).
    pub pending: bool,
}

/// The answer to an attach step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachStep {
    Attached(Attached),
    /// A fresh challenge after AUTS.
    Challenge(AttachChallenge),
}

/// The client.
#[derive(Clone)]
pub struct NetworkClient {
    base: String,
    agent: ureq::Agent,
    observer: Option<Observer>,
}

impl std::fmt::Debug for NetworkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkClient")
            .field("base", &self.base)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Builds the `/ts43` query.
fn query(req: &EntitlementRequest, auth: &Auth) -> String {
    let mut params = req.params.clone();
    match auth {
        Auth::EapAka { identity } => {
            params.insert("EAP_ID".into(), identity.clone());
        }
        Auth::Token(t) => {
            params.insert("token".into(), t.clone());
        }
        Auth::Otp { msisdn } => {
            params.insert("MSISDN".into(), msisdn.clone());
        }
        Auth::Continue {
            operation_id,
            otp,
            token,
        } => {
            params = BTreeMap::new();
            params.insert("operation_id".into(), operation_id.clone());
            if let Some(o) = otp {
                params.insert("otp".into(), o.clone());
            }
            if let Some(t) = token {
                params.insert("token".into(), t.clone());
            }
        }
    }
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The status and body of an answer, whatever the status.
struct Answer {
    status: u16,
    body: String,
    set_cookie: Option<String>,
}

impl NetworkClient {
    /// A client of the operator services at `base_url` (`http://host:port`).
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
            observer: None,
        }
    }

    /// The same client, reporting every exchange to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn observe(&self, method: &str, url: &str, request: Option<Value>, answer: &Answer) {
        if let Some(o) = &self.observer {
            let path = url.strip_prefix(&self.base).unwrap_or(url).to_owned();
            let response = serde_json::from_str(&answer.body)
                .ok()
                .or_else(|| (!answer.body.is_empty()).then(|| json!({"html": answer.body})));
            o(&Exchange {
                method: method.into(),
                path,
                request,
                status: answer.status,
                response,
            });
        }
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        cookie: Option<&str>,
        body: Option<&str>,
        observed: Option<Value>,
    ) -> Result<Answer> {
        let mut req = self.agent.request(method, url);
        if let Some(ct) = content_type {
            req = req.set("Content-Type", ct);
        }
        if let Some(c) = cookie {
            req = req.set("Cookie", c);
        }
        let result = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(ClientError::Transport(format!("{method} {url}: {e}"))),
        };
        let status = response.status();
        let set_cookie = response.header("set-cookie").map(str::to_owned);
        let body = response
            .into_string()
            .map_err(|e| ClientError::Transport(format!("{method} {url}: {e}")))?;
        let answer = Answer {
            status,
            body,
            set_cookie,
        };
        self.observe(method, url, observed, &answer);
        Ok(answer)
    }

    fn error(answer: &Answer) -> ClientError {
        let v: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let e = &v["error"];
        match (e["code"].as_str(), e["message"].as_str()) {
            (Some(code), Some(message)) => ClientError::Network {
                status: answer.status,
                code: code.to_owned(),
                message: message.to_owned(),
                eap_failure: v["eap-relay-packet"]
                    .as_str()
                    .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok()),
            },
            _ => ClientError::Decode(format!("HTTP {}: {}", answer.status, answer.body)),
        }
    }

    fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T> {
        if !(200..300).contains(&answer.status) {
            return Err(Self::error(answer));
        }
        serde_json::from_str(&answer.body)
            .map_err(|e| ClientError::Decode(format!("{e}: {}", answer.body)))
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path);
        Self::decode(&self.send("GET", &url, None, None, None, None)?)
    }

    fn post_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = self.url(path);
        let value = serde_json::to_value(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let text = value.to_string();
        Self::decode(&self.send(
            "POST",
            &url,
            Some("application/json"),
            None,
            Some(&text),
            Some(value),
        )?)
    }

    fn ts43_answer(answer: &Answer) -> Result<EntitlementAnswer> {
        if !(200..300).contains(&answer.status) {
            return Err(Self::error(answer));
        }
        let v: Value = serde_json::from_str(&answer.body)
            .map_err(|e| ClientError::Decode(format!("{e}: {}", answer.body)))?;
        if let Some(p) = v["eap-relay-packet"].as_str() {
            let packet = base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| ClientError::Decode(format!("eap-relay-packet: {e}")))?;
            let session = answer
                .set_cookie
                .as_deref()
                .and_then(|c| c.split(';').next())
                .and_then(|kv| kv.trim().strip_prefix(&format!("{EAP_SESSION_COOKIE}=")))
                .map(str::to_owned)
                .ok_or_else(|| {
                    ClientError::Decode("challenge without EAP_SESSION cookie".into())
                })?;
            return Ok(EntitlementAnswer::Challenge { packet, session });
        }
        Ok(EntitlementAnswer::Document(EntitlementDocument { raw: v }))
    }

    /// One `GET /ts43`.
    pub fn entitlement(&self, req: &EntitlementRequest, auth: &Auth) -> Result<EntitlementAnswer> {
        let url = self.url(&format!("/ts43?{}", query(req, auth)));
        Self::ts43_answer(&self.send("GET", &url, None, None, None, None)?)
    }

    /// `GET /ts43` that must answer a document (token, code, continuation).
    pub fn entitlement_document(
        &self,
        req: &EntitlementRequest,
        auth: &Auth,
    ) -> Result<EntitlementDocument> {
        match self.entitlement(req, auth)? {
            EntitlementAnswer::Document(d) => Ok(d),
            EntitlementAnswer::Challenge { .. } => Err(ClientError::Decode(
                "an EAP challenge where a document was expected".into(),
            )),
        }
    }

    /// Continues an operation (after the contract page, or with a code).
    pub fn continue_operation(
        &self,
        operation_id: &str,
        otp: Option<&str>,
        token: Option<&str>,
    ) -> Result<EntitlementDocument> {
        self.entitlement_document(
            &EntitlementRequest::default(),
            &Auth::Continue {
                operation_id: operation_id.to_owned(),
                otp: otp.map(str::to_owned),
                token: token.map(str::to_owned),
            },
        )
    }

    /// `POST /ts43`: one EAP-Response of a session.
    pub fn eap_relay(&self, session: &str, response: &[u8]) -> Result<EntitlementAnswer> {
        let url = self.url("/ts43");
        let body = json!({"eap-relay-packet": b64(response)});
        let text = body.to_string();
        let answer = self.send(
            "POST",
            &url,
            Some(CONTENT_TYPE_EAP_RELAY),
            Some(&format!("{EAP_SESSION_COOKIE}={session}")),
            Some(&text),
            Some(body),
        )?;
        Self::ts43_answer(&answer)
    }

    /// The whole EAP-AKA exchange: `peer` turns each EAP-Request into the EAP-Response.
    pub fn authenticate_eap_aka(
        &self,
        req: &EntitlementRequest,
        identity: &str,
        peer: &mut dyn FnMut(&[u8]) -> Result<Vec<u8>>,
    ) -> Result<EntitlementDocument> {
        let mut answer = self.entitlement(
            req,
            &Auth::EapAka {
                identity: identity.to_owned(),
            },
        )?;
        for _ in 0..MAX_EAP_ROUNDS {
            match answer {
                EntitlementAnswer::Document(d) => return Ok(d),
                EntitlementAnswer::Challenge { packet, session } => {
                    let response = peer(&packet)?;
                    answer = self.eap_relay(&session, &response)?;
                }
            }
        }
        Err(ClientError::Decode(format!(
            "no document after {MAX_EAP_ROUNDS} EAP rounds"
        )))
    }

    /// EAP-AKA with a card: each challenge is checked ([`Challenge::parse`]), RAND/AUTN go to
    /// `card` (the USIM's AUTHENTICATE), and the answer is built as RFC 4187 says (response,
    /// synchronisation failure, authentication reject, or client error for a bad server MAC).
    pub fn authenticate_with_card(
        &self,
        req: &EntitlementRequest,
        identity: &str,
        card: &mut CardFn<'_>,
    ) -> Result<EntitlementDocument> {
        let mut peer = |packet: &[u8]| -> Result<Vec<u8>> {
            let challenge =
                Challenge::parse(packet).map_err(|e| ClientError::Device(e.to_string()))?;
            let answer = card(&challenge.rand, &challenge.autn)?;
            Ok(match challenge.answer(identity.as_bytes(), answer) {
                PeerAnswer::Success { response, .. }
                | PeerAnswer::SyncFailure { response }
                | PeerAnswer::Reject { response }
                | PeerAnswer::ServerMacInvalid { response } => response,
            })
        };
        self.authenticate_eap_aka(req, identity, &mut peer)
    }

    /// Opens the contract page (what a device's browser shows).
    pub fn open_contract(&self, url: &str) -> Result<ContractPage> {
        let url = self.url(url);
        let answer = self.send("GET", &url, None, None, None, None)?;
        if answer.status != 200 {
            return Err(Self::html_error(&answer));
        }
        Ok(ContractPage {
            pending: answer.body.contains("name=\"decision\""),
            url,
            html: answer.body,
        })
    }

    fn html_error(answer: &Answer) -> ClientError {
        // The error page carries the code in data-code="…".
        let code = answer
            .body
            .split("data-code=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("error")
            .to_owned();
        let message = answer
            .body
            .split("data-code=\"")
            .nth(1)
            .and_then(|r| r.split_once('>'))
            .and_then(|(_, r)| r.split('<').next())
            .unwrap_or("")
            .to_owned();
        ClientError::Network {
            status: answer.status,
            code,
            message,
            eap_failure: None,
        }
    }

    /// Submits the contract form: accept or decline. Answers the confirmation page.
    pub fn answer_contract(&self, url: &str, accept: bool) -> Result<String> {
        let url = self.url(url);
        let decision = if accept { "accept" } else { "decline" };
        let body = format!("decision={decision}");
        let answer = self.send(
            "POST",
            &url,
            Some("application/x-www-form-urlencoded"),
            None,
            Some(&body),
            Some(json!({"decision": decision})),
        )?;
        if answer.status != 200 {
            return Err(Self::html_error(&answer));
        }
        Ok(answer.body)
    }

    /// `POST /smsc/messages`: returns the message id and the IMSIs it reached.
    pub fn send_sms(&self, to: &str, from: &str, text: &str) -> Result<(i64, Vec<String>)> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Sent {
            id: i64,
            delivered_to: Vec<String>,
        }
        let s: Sent = self.post_json(
            "/smsc/messages",
            &json!({"to": to, "from": from, "text": text}),
        )?;
        Ok((s.id, s.delivered_to))
    }

    /// `GET /smsc/inbox/{imsi}`: the SMS delivered to this card, newer than `after`.
    pub fn inbox(&self, imsi: &str, after: Option<i64>) -> Result<Vec<Sms>> {
        let path = match after {
            Some(a) => format!("/smsc/inbox/{imsi}?after={a}"),
            None => format!("/smsc/inbox/{imsi}"),
        };
        self.get_json(&path)
    }

    /// The newest one-time code in a card's inbox (the six digits of the network's SMS).
    pub fn latest_code(&self, imsi: &str) -> Result<Option<String>> {
        Ok(self
            .inbox(imsi, None)?
            .iter()
            .rev()
            .find_map(|s| extract_code(&s.text)))
    }

    /// `POST /boss/subscribers`: a card the operator holds, or (kind euicc, eid, no imsi) a line
    /// whose profile the BOSS orders (`activation_code` in the answer).
    pub fn provision(&self, p: &Provision) -> Result<LineView> {
        self.post_json("/boss/subscribers", p)
    }

    /// `GET /hlr/imsi/{imsi}`.
    pub fn hlr(&self, imsi: &str) -> Result<HlrRecord> {
        self.get_json(&format!("/hlr/imsi/{imsi}"))
    }

    /// `POST /hlr/attach`.
    pub fn attach(&self, imsi: &str) -> Result<AttachChallenge> {
        self.post_json("/hlr/attach", &json!({"imsi": imsi}))
    }

    /// `POST /hlr/attach/{session}` with the card's answer (RES, or AUTS).
    pub fn attach_answer(&self, session: &str, card: &CardAnswer) -> Result<AttachStep> {
        let body = match card {
            CardAnswer::Success { res, .. } => json!({"res": hex::encode_upper(res)}),
            CardAnswer::SyncFailure { auts } => json!({"auts": hex::encode_upper(auts)}),
            CardAnswer::MacFailure => {
                return Err(ClientError::Device(
                    "the card refused the network's AUTN (MAC failure)".into(),
                ))
            }
        };
        let v: Value = self.post_json(&format!("/hlr/attach/{session}"), &body)?;
        if v.get("attached").is_some() {
            serde_json::from_value(v)
                .map(AttachStep::Attached)
                .map_err(|e| ClientError::Decode(e.to_string()))
        } else {
            serde_json::from_value(v)
                .map(AttachStep::Challenge)
                .map_err(|e| ClientError::Decode(e.to_string()))
        }
    }

    /// `POST /calls`: who rings; `answer` lists who picks up (default everyone ringing).
    pub fn call(&self, to: &str, answer: Option<&[String]>) -> Result<CallResult> {
        let body = match answer {
            Some(a) => json!({"to": to, "answer": a}),
            None => json!({"to": to}),
        };
        self.post_json("/calls", &body)
    }

    pub fn subscribers(&self) -> Result<Vec<SubscriberView>> {
        self.get_json("/admin/subscribers")
    }

    pub fn subscriber(&self, msisdn: &str) -> Result<SubscriberView> {
        self.get_json(&format!(
            "/admin/subscribers/{}",
            form_urlencoded::byte_serialize(msisdn.as_bytes()).collect::<String>()
        ))
    }

    pub fn line(&self, imsi: &str) -> Result<LineView> {
        self.get_json(&format!("/admin/imsis/{imsi}"))
    }

    pub fn groups(&self) -> Result<Vec<GroupView>> {
        self.get_json("/admin/groups")
    }

    pub fn orders(&self) -> Result<Vec<OrderView>> {
        self.get_json("/admin/orders")
    }

    /// The ES2+ progress events the BOSS received from the SM-DP+ and what it did with each.
    pub fn order_events(&self) -> Result<Vec<super::db::OrderEvent>> {
        self.get_json("/admin/order-events")
    }

    /// Every upgrade / migration with its state (`pending`, `done`, `failed`, `expired`) and,
    /// for those that did not complete, why.
    pub fn transfers(&self) -> Result<Vec<super::db::Transfer>> {
        self.get_json("/admin/transfers")
    }

    pub fn operations(&self) -> Result<Vec<OperationView>> {
        self.get_json("/admin/operations")
    }

    pub fn sms_log(&self) -> Result<Vec<Sms>> {
        self.get_json("/admin/sms")
    }

    pub fn contracts(&self) -> Result<Vec<Contract>> {
        self.get_json("/admin/contracts")
    }

    /// `POST /ota/commands`: a secured packet (SCP80) for a card, delivered as SMS-PP to its
    /// inbox (`Sms.kind == "sms-pp"`, `user_data` = the TPDU, `text` = the job id).
    pub fn ota_send(&self, request: &super::ota::OtaRequest) -> Result<super::ota::OtaJob> {
        self.post_json("/ota/commands", request)
    }

    /// `POST /ota/por`: the PoR a device's card answered to the job's SMS-PP.
    pub fn ota_por(&self, job_id: &str, por: &[u8]) -> Result<super::ota::OtaJob> {
        self.post_json(
            "/ota/por",
            &json!({"jobId": job_id, "por": hex::encode_upper(por)}),
        )
    }

    /// `GET /admin/ota`.
    pub fn ota_jobs(&self) -> Result<Vec<super::ota::OtaJob>> {
        self.get_json("/admin/ota")
    }

    /// `GET /`: every service URL.
    pub fn urls(&self) -> Result<Value> {
        self.get_json("/")
    }
}

/// The six-digit code in a network SMS ("… code is 123456 …").
pub fn extract_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

impl Provision {
    /// The subscriber the operator holds for a card definition (`[card] iccid`, `[usim]` IMSI,
    /// MSISDN and AKA keys); `msisdn` overrides the definition's.
    pub fn from_card_definition(
        def: &simlab_emulator::definition::CardDefinition,
        msisdn: Option<&str>,
    ) -> anyhow::Result<Provision> {
        let usim = def
            .usim
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the card definition has no [usim] section"))?;
        let iccid = def
            .card
            .iccid
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the card definition has no card.iccid"))?;
        let msisdn = msisdn
            .map(str::to_owned)
            .or_else(|| usim.msisdn.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("no MSISDN: give one, or usim.msisdn in the card definition")
            })?;
        let aka = match usim.aka.algorithm.as_str() {
            "milenage" => ProvisionAka::Milenage {
                k: usim.aka.k.clone(),
                opc: usim.aka.opc.clone(),
                op: usim.aka.op.clone(),
            },
            "xor" => ProvisionAka::Xor {
                k: usim.aka.k.clone(),
            },
            other => anyhow::bail!("usim.aka.algorithm {other:?}: expected milenage or xor"),
        };
        Ok(Provision {
            msisdn,
            imsi: Some(usim.imsi.clone()),
            iccid: Some(iccid),
            kind: super::db::CardKind::Uicc,
            eid: None,
            aka: Some(aka),
            account: None,
            sqn: Some(usim.aka.sqn),
            // The card's OTA keysets (`[[ota.keyset]]`), for the network's RFM commands.
            ota: match def.ota.keys()? {
                keys if keys.keysets.is_empty() => None,
                keys => Some(serde_json::to_value(keys)?),
            },
            policy: Default::default(),
            ring_mode: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_code_in_the_network_sms() {
        assert_eq!(
            extract_code("simlab: your verification code is 042917 (authentication; valid 5 min)"),
            Some("042917".into())
        );
        assert_eq!(extract_code("no code here 12345"), None);
    }

    #[test]
    fn builds_ts43_queries() {
        let q = query(
            &EntitlementRequest::companion_subscribe("8904", true),
            &Auth::Token("T".into()),
        );
        assert_eq!(q, "app=ap2006&companion_terminal_eid=8904&companion_terminal_service=SharedNumber&operation=ManageSubscription&operation_type=0&token=T");
        let q = query(
            &EntitlementRequest::acquire_configuration(),
            &Auth::Continue {
                operation_id: "op-1".into(),
                otp: Some("123456".into()),
                token: None,
            },
        );
        assert_eq!(q, "operation_id=op-1&otp=123456");
    }
}
