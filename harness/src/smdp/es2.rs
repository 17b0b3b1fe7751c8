//! ES2+ (operator ↔ SM-DP+), GSMA SGP.22 v2.5 §5.3 with the JSON binding of §6.5.2.1–§6.5.2.5:
//! DownloadOrder, ConfirmOrder, CancelOrder, ReleaseProfile served by the SM-DP+, and
//! HandleDownloadProgressInfo sent by it to the operator.
//!
//! Served under `/gsma/rsp2/es2plus/` on a port of its own with mutual TLS: the operator's
//! client certificate must chain to the configured operator CA ([`crate::pki::operator`]);
//! other clients are refused in the TLS handshake. [`Es2pClient`] is the operator side.

use super::store::{Order, OrderState, ProgressEvent};
use super::{FunctionError, Smdp};
use crate::defaults::Files;
use crate::es9p::{
    codes, HeaderOnly, RequestHeader, ResponseHeader, StatusCode, ADMIN_PROTOCOL,
    CONTENT_TYPE_JSON, HEADER_ADMIN_PROTOCOL, STATUS_EXECUTED_SUCCESS, STATUS_FAILED,
};
use crate::pki::OperatorIdentity;
use anyhow::Context as _;
use rand::Rng as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use simlab_emulator::saip::luhn_check_digit;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Path prefix of the ES2+ functions (SGP.22 §6.5.2).
pub const ES2P_PATH_PREFIX: &str = "/gsma/rsp2/es2plus/";
pub const DOWNLOAD_ORDER: &str = "downloadOrder";
pub const CONFIRM_ORDER: &str = "confirmOrder";
pub const CANCEL_ORDER: &str = "cancelOrder";
pub const RELEASE_PROFILE: &str = "releaseProfile";
pub const HANDLE_DOWNLOAD_PROGRESS_INFO: &str = "handleDownloadProgressInfo";

/// Notification points of ES2+.HandleDownloadProgressInfo (SGP.22 §5.3.5).
pub const POINT_ELIGIBILITY: u32 = 1;
pub const POINT_CONFIRMATION: u32 = 2;
pub const POINT_BPP_DOWNLOAD: u32 = 3;
pub const POINT_BPP_INSTALLATION: u32 = 4;
/// The LPA cancelled the session (ES9+.CancelSession); reported on its own point here.
pub const POINT_SESSION_CANCELLED: u32 = 5;
/// The eUICC's other notifications (SGP.22 §3.5, received over ES9+.HandleNotification),
/// forwarded to the operator on points of simlab's own numbering beyond SGP.22's download
/// points (docs/smdp.md): the profile was enabled, disabled or deleted on the eUICC.
pub const POINT_PROFILE_ENABLED: u32 = 101;
pub const POINT_PROFILE_DISABLED: u32 = 102;
pub const POINT_PROFILE_DELETED: u32 = 103;

/// ICCID issuer prefix of generated profiles: 89 (telecom) + 001 (test network country code,
/// as the 001-01 test PLMN) + 01 (issuer); ITU-T E.118.
const ICCID_PREFIX: &str = "8900101";
/// Digits after the prefix, before the Luhn digit (19-digit ICCID in total).
const ICCID_SERIAL_DIGITS: usize = 11;
/// Test PLMN 001-01 (TS 23.003, 3GPP test networks).
const IMSI_PREFIX: &str = "00101";
const IMSI_SERIAL_DIGITS: usize = 10;
/// MSISDNs from a fictional range.
const MSISDN_PREFIX: &str = "1555";
const MSISDN_SERIAL_DIGITS: usize = 7;
/// Matching IDs: SGP.22 §4.1 allows `0-9 A-Z -`; four groups of five.
const MATCHING_ID_GROUPS: usize = 4;
const MATCHING_ID_GROUP_LEN: usize = 5;
const MATCHING_ID_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// ES2+.DownloadOrder input (SGP.22 §5.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOrderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    /// Here: a template file stem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_type: Option<String>,
    /// simlab extension, not in SGP.22: the MSISDN the operator assigned to the subscription,
    /// personalised into the profile's EF.MSISDN (TS 31.102 §4.2.26) instead of a random
    /// one, so that the number a device reads from its card is the one the network routes.
    /// E.164, `+` optional (kept: it sets the international TON/NPI). A template without
    /// EF.MSISDN ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msisdn: Option<String>,
}

/// ES2+.DownloadOrder output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOrderResponse {
    pub header: ResponseHeader,
    pub iccid: String,
    /// simlab extension, not in SGP.22: the personalisation of a new profile (IMSI, K, OPc,
    /// MSISDN), which the operator needs to provision its HSS. SGP.22 leaves that exchange to
    /// MNO and SM-DP+ (real ones use profile description files); a test lab needs it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<SubscriberData>,
}

/// What the network side needs of a personalised profile (see
/// [`DownloadOrderResponse::subscriber`]); keys in hex.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imsi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msisdn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opc: Option<String>,
}

impl SubscriberData {
    /// The personalisation of `order`, if it was personalised.
    pub fn of(order: &Order) -> Option<Self> {
        order.personalised.then(|| Self {
            imsi: order.imsi.clone(),
            msisdn: order.msisdn.clone(),
            k: order.k.map(hex::encode_upper),
            opc: order.opc.map(hex::encode_upper),
        })
    }
}

/// ES2+.ConfirmOrder input (SGP.22 §5.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmOrderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    pub iccid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smds_address: Option<String>,
    pub release_flag: bool,
}

/// ES2+.ConfirmOrder output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmOrderResponse {
    pub header: ResponseHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    pub matching_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smdp_address: Option<String>,
}

/// ES2+.CancelOrder input (SGP.22 §5.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    pub iccid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_id: Option<String>,
    /// "Available" or "Unavailable".
    pub final_profile_status_indicator: String,
}

/// ES2+.ReleaseProfile input (SGP.22 §5.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseProfileRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    pub iccid: String,
}

/// `notificationPointStatus` of HandleDownloadProgressInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPointStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code_data: Option<crate::es9p::StatusCodeData>,
}

/// ES2+.HandleDownloadProgressInfo input (SGP.22 §5.3.5), sent by the SM-DP+.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandleDownloadProgressInfoRequest {
    pub header: RequestHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    pub iccid: String,
    pub profile_type: String,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub timestamp: String,
    pub notification_point_id: u32,
    pub notification_point_status: NotificationPointStatus,
}

/// How long one delivery of a progress event may take before it counts as failed.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits before the retries of an event the operator could not be reached for.
const PROGRESS_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
];

/// Delivers progress events to the operator's URL, over HTTPS with mutual TLS (SGP.22 §2.6.6:
/// ES2+ is mutually authenticated in both directions): the SM-DP+ presents CERT.DP.TLS and
/// accepts only a server certificate of the operator CA. A plain `http://` URL is refused
/// when it is configured, not when an event is due.
///
/// Each event is sent at once, from the thread of the function that caused it, so that the
/// ES9+ answer (e.g. to the eUICC's HandleNotification) follows the operator's
/// acknowledgement: a device that has its answer can rely on the operator knowing. SGP.22
/// §5.3.5 does not order the two; simlab chooses this so that network state is consistent
/// when a device's call returns (docs/smdp.md). An event the operator could not be reached for
/// (connection refused, timeout, `5xx`) is retried on a thread of its own a few times
/// ([`PROGRESS_RETRY_DELAYS`]); an operator's refusal is recorded and not retried.
#[derive(Debug)]
pub(super) struct ProgressSink {
    url: std::sync::RwLock<Option<String>>,
    /// The mutual-TLS agent, or why there is none (no operator CA in the PKI).
    agent: Result<ureq::Agent, String>,
    retries: Mutex<Option<mpsc::Sender<(i64, String, String)>>>,
    results: Arc<Mutex<Vec<(i64, String)>>>,
}

/// What became of one delivery.
enum Delivery {
    /// `2xx` without a failed header.
    Delivered,
    /// The operator answered and refused (a failed ES2+ header, or `4xx`): final.
    Refused(String),
    /// Not reached (transport error, `5xx`): worth retrying.
    Unreachable(String),
}

impl ProgressSink {
    /// A sink sending to `url` with the TLS client configuration `tls` (or why there is
    /// none); refuses a URL it could not call as ES2+ requires.
    pub(super) fn new(
        url: Option<String>,
        tls: Result<Arc<rustls::ClientConfig>, String>,
    ) -> anyhow::Result<Self> {
        let sink = Self {
            url: std::sync::RwLock::new(None),
            agent: tls.map(|config| {
                ureq::AgentBuilder::new()
                    .tls_config(config)
                    .timeout(PROGRESS_TIMEOUT)
                    .build()
            }),
            retries: Mutex::new(None),
            results: Arc::new(Mutex::new(Vec::new())),
        };
        sink.set_url(url)?;
        Ok(sink)
    }

    pub(super) fn url(&self) -> Option<String> {
        self.url.read().ok().and_then(|u| u.clone())
    }

    pub(super) fn set_url(&self, url: Option<String>) -> anyhow::Result<()> {
        if let Some(url) = &url {
            let https = url
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
            anyhow::ensure!(
                https,
                "ES2+ callback URL {url}: must be https:// (SGP.22 §2.6.6: ES2+ is TLS with \
                 mutual authentication, the SM-DP+'s progress notifications included)"
            );
            if let Err(why) = &self.agent {
                anyhow::bail!("ES2+ callback URL {url}: no mutual TLS to the operator: {why}");
            }
        }
        if let Ok(mut u) = self.url.write() {
            *u = url;
        }
        Ok(())
    }

    fn post(agent: &ureq::Agent, url: &str, body: &str) -> Delivery {
        match agent
            .post(url)
            .set(HEADER_ADMIN_PROTOCOL, ADMIN_PROTOCOL)
            .set("Content-Type", CONTENT_TYPE_JSON)
            .send_string(body)
        {
            Ok(r) => {
                let text = r.into_string().unwrap_or_default();
                // SGP.22 §6.5.1.4: an executed function with a failed header is a refusal.
                match serde_json::from_str::<HeaderOnly>(&text) {
                    Ok(h) if !h.header.is_success() => {
                        let data = h.header.function_execution_status.status_code_data;
                        Delivery::Refused(data.map_or_else(
                            || "refused".to_owned(),
                            |d| {
                                format!(
                                    "refused: {} / {} {}",
                                    d.subject_code,
                                    d.reason_code,
                                    d.message.unwrap_or_default()
                                )
                            },
                        ))
                    }
                    _ => Delivery::Delivered,
                }
            }
            Err(ureq::Error::Status(code, _)) if code < 500 => {
                Delivery::Refused(format!("refused: HTTP {code}"))
            }
            Err(e) => Delivery::Unreachable(e.to_string()),
        }
    }

    /// Sends event `id` now; returns what to record (`None`: no URL configured). An
    /// unreachable operator gets the event again later from the retry thread.
    pub(super) fn deliver(&self, id: i64, body: &str) -> Option<String> {
        let url = self.url()?;
        let agent = match &self.agent {
            Ok(agent) => agent,
            Err(why) => return Some(format!("failed: no mutual TLS to the operator: {why}")),
        };
        Some(match Self::post(agent, &url, body) {
            Delivery::Delivered => "delivered".to_owned(),
            Delivery::Refused(why) => why,
            Delivery::Unreachable(why) => {
                self.retry(agent, id, url, body.to_owned());
                format!("failed: {why} (retrying)")
            }
        })
    }

    fn retry(&self, agent: &ureq::Agent, id: i64, url: String, body: String) {
        let Ok(mut slot) = self.retries.lock() else {
            return;
        };
        let tx = slot.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<(i64, String, String)>();
            let results = Arc::clone(&self.results);
            let agent = agent.clone();
            std::thread::spawn(move || {
                for (id, url, body) in rx {
                    let mut outcome = String::from("failed");
                    for delay in PROGRESS_RETRY_DELAYS {
                        std::thread::sleep(delay);
                        match Self::post(&agent, &url, &body) {
                            Delivery::Delivered => {
                                outcome = "delivered (retried)".to_owned();
                                break;
                            }
                            Delivery::Refused(why) => {
                                outcome = why;
                                break;
                            }
                            Delivery::Unreachable(why) => outcome = format!("failed: {why}"),
                        }
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push((id, outcome));
                    }
                }
            });
            tx
        });
        let _ = tx.send((id, url, body));
    }

    /// Outcomes of retries finished since the last call.
    pub(super) fn finished_retries(&self) -> Vec<(i64, String)> {
        self.results
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` for a Unix time (proleptic Gregorian, H. Hinnant's civil_from_days).
pub fn timestamp(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

fn new_matching_id() -> String {
    let mut rng = rand::thread_rng();
    (0..MATCHING_ID_GROUPS)
        .map(|_| {
            (0..MATCHING_ID_GROUP_LEN)
                .map(|_| {
                    let i = rng.gen_range(0..MATCHING_ID_ALPHABET.len());
                    char::from(MATCHING_ID_ALPHABET.get(i).copied().unwrap_or(b'A'))
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn err(code: StatusCode, message: impl Into<String>) -> FunctionError {
    FunctionError::new(code, message)
}

impl Smdp {
    /// Records an ES2+.HandleDownloadProgressInfo event and sends it when a URL is configured.
    pub(super) fn progress_event(
        &self,
        order: &Order,
        point: u32,
        failure: Option<(StatusCode, &str)>,
    ) -> Result<(), FunctionError> {
        let status = NotificationPointStatus {
            status: if failure.is_some() {
                STATUS_FAILED
            } else {
                STATUS_EXECUTED_SUCCESS
            }
            .into(),
            status_code_data: failure.map(|(code, message)| crate::es9p::StatusCodeData {
                subject_code: code.subject.into(),
                reason_code: code.reason.into(),
                subject_identifier: None,
                message: Some(message.into()),
            }),
        };
        let body = HandleDownloadProgressInfoRequest {
            header: RequestHeader {
                function_requester_identifier: self.address.clone(),
                function_call_identifier: format!("{}-{point}", order.id),
            },
            eid: order.eid.clone(),
            iccid: order.iccid.clone(),
            profile_type: order.template.clone(),
            timestamp: timestamp(SystemTime::now()),
            notification_point_id: point,
            notification_point_status: status.clone(),
        };
        let body =
            serde_json::to_string(&body).map_err(|e| err(codes::EXECUTION_ERROR, e.to_string()))?;
        let event = ProgressEvent {
            iccid: order.iccid.clone(),
            eid: order.eid.clone(),
            notification_point_id: point,
            status: status.status,
            body: body.clone(),
            delivery: None,
        };
        // Outcomes of earlier retries, written now that the store lock is free.
        let done = self.progress.finished_retries();
        let id = self.with_store(|s| {
            for (id, outcome) in &done {
                s.set_progress_delivery(*id, outcome)?;
            }
            s.record_progress(&event)
        })?;
        // No lock is held while the operator handles the event (it may call ES2+ back).
        if let Some(outcome) = self.progress.deliver(id, &body) {
            self.with_store(|s| s.set_progress_delivery(id, &outcome))?;
        }
        Ok(())
    }

    /// ES2+.DownloadOrder (SGP.22 §5.3.1).
    pub fn download_order(
        &self,
        req: &DownloadOrderRequest,
    ) -> Result<DownloadOrderResponse, FunctionError> {
        self.function(|| self.download_order_checked(req))
    }

    /// ES2+.DownloadOrder (SGP.22 §5.3.1): reserves a profile of `profileType` (a template
    /// stem), personalised with a fresh ICCID, IMSI, K, OPc and (when the template has
    /// EF.MSISDN) MSISDN. State Allocated, or Linked when an EID is given.
    fn download_order_checked(
        &self,
        req: &DownloadOrderRequest,
    ) -> Result<DownloadOrderResponse, FunctionError> {
        if let Some(iccid) = &req.iccid {
            // Reserving a given ICCID: only profiles this server already holds as Available.
            let found = self.with_store(|s| s.order_by_iccid(iccid))?;
            let unknown = || {
                err(
                    codes::ICCID_UNKNOWN,
                    format!("no available profile {iccid}"),
                )
            };
            let found = found.ok_or_else(unknown)?;
            let (order, outcome) = self.transition(found.id, |o| {
                if o.state != OrderState::Available {
                    return Err(unknown());
                }
                o.eid = req.eid.clone();
                o.state = if o.eid.is_some() {
                    OrderState::Linked
                } else {
                    OrderState::Allocated
                };
                Ok(())
            })?;
            outcome?;
            return Ok(DownloadOrderResponse {
                header: ResponseHeader::success(),
                subscriber: SubscriberData::of(&order),
                iccid: order.iccid,
            });
        }
        let template = req.profile_type.as_deref().ok_or_else(|| {
            err(
                codes::MANDATORY_ELEMENT_MISSING,
                "profileType or iccid is required",
            )
        })?;
        if !self.templates.contains_key(template) {
            return Err(err(
                codes::PROFILE_TYPE_UNKNOWN,
                format!(
                    "no template {template:?}; known: {}",
                    self.templates().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if let Some(eid) = &req.eid {
            crate::pki::validate_eid(eid).map_err(|e| err(codes::INVALID_INPUT, e.to_string()))?;
        }
        if let Some(msisdn) = &req.msisdn {
            let digits = msisdn.strip_prefix('+').unwrap_or(msisdn);
            if !(1..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(
                    codes::INVALID_INPUT,
                    format!(
                        "msisdn {msisdn:?}: expected E.164, 1 to 15 digits after an optional +"
                    ),
                ));
            }
        }
        let serial = self.with_store(|s| s.next_counter("iccid"))?;
        let body = format!(
            "{ICCID_PREFIX}{:0width$}",
            serial,
            width = ICCID_SERIAL_DIGITS
        );
        let luhn =
            luhn_check_digit(&body).map_err(|e| err(codes::EXECUTION_ERROR, e.to_string()))?;
        let iccid = format!("{body}{luhn}");
        let mut k = [0u8; 16];
        let mut opc = [0u8; 16];
        rand::thread_rng().fill(&mut k);
        rand::thread_rng().fill(&mut opc);
        let mut order = Order {
            id: 0,
            iccid,
            template: template.to_owned(),
            state: if req.eid.is_some() {
                OrderState::Linked
            } else {
                OrderState::Allocated
            },
            eid: req.eid.clone(),
            matching_id: None,
            confirmation_code: None,
            cc_attempts: 0,
            download_attempts: 0,
            imsi: Some(format!(
                "{IMSI_PREFIX}{}",
                random_digits(IMSI_SERIAL_DIGITS)
            )),
            k: Some(k),
            opc: Some(opc),
            msisdn: Some(req.msisdn.clone().unwrap_or_else(|| {
                format!("{MSISDN_PREFIX}{}", random_digits(MSISDN_SERIAL_DIGITS))
            })),
            personalised: true,
            last_transaction_id: None,
            euicc_certificate: None,
        };
        // Templates without EF.MSISDN in an opt-usim PE get no MSISDN.
        if !self.template_has_msisdn(&order)? {
            order.msisdn = None;
        }
        order.id = self.with_store(|s| s.insert_order(&order))?;
        Ok(DownloadOrderResponse {
            header: ResponseHeader::success(),
            subscriber: SubscriberData::of(&order),
            iccid: order.iccid,
        })
    }

    /// Whether the order's template takes an MSISDN (read when the template was loaded).
    fn template_has_msisdn(&self, order: &Order) -> Result<bool, FunctionError> {
        self.templates
            .get(&order.template)
            .map(|t| t.has_msisdn)
            .ok_or_else(|| {
                FunctionError::new(
                    codes::EXECUTION_ERROR,
                    format!("template {} is gone", order.template),
                )
            })
    }

    fn es2_order(&self, iccid: &str) -> Result<Order, FunctionError> {
        self.with_store(|s| s.order_by_iccid(iccid))?
            .ok_or_else(|| {
                err(
                    codes::ICCID_UNKNOWN,
                    format!("no profile with ICCID {iccid}"),
                )
            })
    }

    /// ES2+.ConfirmOrder (SGP.22 §5.3.2).
    pub fn confirm_order(
        &self,
        req: &ConfirmOrderRequest,
    ) -> Result<ConfirmOrderResponse, FunctionError> {
        self.function(|| self.confirm_order_checked(req))
    }

    /// ES2+.ConfirmOrder (SGP.22 §5.3.2): binds the EID, sets matching ID (generated when not
    /// given) and confirmation code; Released with releaseFlag, else Confirmed.
    fn confirm_order_checked(
        &self,
        req: &ConfirmOrderRequest,
    ) -> Result<ConfirmOrderResponse, FunctionError> {
        let found = self.es2_order(&req.iccid)?;
        let matching_id = match req.matching_id.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => {
                if self.with_store(|s| s.order_by_matching_id(m))?.is_some()
                    || self.templates.contains_key(m)
                {
                    return Err(err(
                        codes::MATCHING_ID_IN_USE,
                        format!("matching ID {m:?} is taken"),
                    ));
                }
                m.to_owned()
            }
            None => new_matching_id(),
        };
        let (order, outcome) = self.transition(found.id, |order| {
            if !matches!(order.state, OrderState::Allocated | OrderState::Linked) {
                return Err(err(
                    codes::ICCID_NOT_ALLOWED,
                    format!(
                        "profile {} is {}, expected allocated or linked",
                        order.iccid, order.state
                    ),
                ));
            }
            match (&order.eid, &req.eid) {
                (Some(bound), Some(given)) if bound != given => {
                    return Err(err(
                        codes::EID_INVALID_ASSOCIATION,
                        format!(
                            "profile {} is linked to EID {bound}, not {given}",
                            order.iccid
                        ),
                    ))
                }
                (None, Some(given)) => {
                    crate::pki::validate_eid(given)
                        .map_err(|e| err(codes::INVALID_INPUT, e.to_string()))?;
                    order.eid = Some(given.clone());
                }
                _ => {}
            }
            order.matching_id = Some(matching_id.clone());
            order.confirmation_code = req.confirmation_code.clone().filter(|c| !c.is_empty());
            order.state = if req.release_flag {
                OrderState::Released
            } else {
                OrderState::Confirmed
            };
            Ok(())
        })?;
        outcome?;
        Ok(ConfirmOrderResponse {
            header: ResponseHeader::success(),
            eid: order.eid,
            matching_id,
            smdp_address: Some(self.address.clone()),
        })
    }

    /// ES2+.CancelOrder (SGP.22 §5.3.3).
    pub fn cancel_order(&self, req: &CancelOrderRequest) -> Result<HeaderOnly, FunctionError> {
        self.function(|| self.cancel_order_checked(req))
    }

    /// ES2+.CancelOrder (SGP.22 §5.3.3): ends a pending order; the profile becomes Available or
    /// Unavailable as the operator says.
    fn cancel_order_checked(&self, req: &CancelOrderRequest) -> Result<HeaderOnly, FunctionError> {
        let found = self.es2_order(&req.iccid)?;
        let (_, outcome) = self.transition(found.id, |order| {
            if order.state.is_downloaded() {
                return Err(err(
                    codes::ICCID_NOT_ALLOWED,
                    format!(
                        "profile {} is {}: too late to cancel",
                        order.iccid, order.state
                    ),
                ));
            }
            if let (Some(bound), Some(given)) = (&order.eid, &req.eid) {
                if bound != given {
                    return Err(err(
                        codes::EID_INVALID_ASSOCIATION,
                        format!("profile is linked to {bound}"),
                    ));
                }
            }
            order.state = match req.final_profile_status_indicator.as_str() {
                "Available" => OrderState::Available,
                "Unavailable" => OrderState::Unavailable,
                other => {
                    return Err(err(
                        codes::INVALID_INPUT,
                        format!(
                        "finalProfileStatusIndicator {other:?}, expected Available or Unavailable"
                    ),
                    ))
                }
            };
            order.matching_id = None;
            order.eid = None;
            order.confirmation_code = None;
            Ok(())
        })?;
        outcome?;
        Ok(HeaderOnly {
            header: ResponseHeader::success(),
        })
    }

    /// ES2+.ReleaseProfile (SGP.22 §5.3.4).
    pub fn release_profile(
        &self,
        req: &ReleaseProfileRequest,
    ) -> Result<HeaderOnly, FunctionError> {
        self.function(|| self.release_profile_checked(req))
    }

    /// ES2+.ReleaseProfile (SGP.22 §5.3.4): Confirmed → Released.
    fn release_profile_checked(
        &self,
        req: &ReleaseProfileRequest,
    ) -> Result<HeaderOnly, FunctionError> {
        let found = self.es2_order(&req.iccid)?;
        let (_, outcome) = self.transition(found.id, |order| {
            if order.state != OrderState::Confirmed {
                return Err(err(
                    codes::ICCID_NOT_ALLOWED,
                    format!(
                        "profile {} is {}, expected confirmed",
                        order.iccid, order.state
                    ),
                ));
            }
            order.state = OrderState::Released;
            Ok(())
        })?;
        outcome?;
        Ok(HeaderOnly {
            header: ResponseHeader::success(),
        })
    }

    /// DownloadOrder + ConfirmOrder(releaseFlag) in one step; returns the activation code.
    pub fn order_activation_code(
        &self,
        template: &str,
        eid: Option<&str>,
        confirmation_code: Option<&str>,
    ) -> Result<(Order, String), FunctionError> {
        let iccid = self
            .download_order(&DownloadOrderRequest {
                eid: eid.map(str::to_owned),
                profile_type: Some(template.to_owned()),
                ..Default::default()
            })?
            .iccid;
        let confirmed = self.confirm_order(&ConfirmOrderRequest {
            iccid: iccid.clone(),
            confirmation_code: confirmation_code.map(str::to_owned),
            release_flag: true,
            ..Default::default()
        })?;
        let order = self.es2_order(&iccid)?;
        Ok((order, self.activation_code(&confirmed.matching_id)))
    }
}

/// A blocking ES2+ client: the operator's side (its BOSS), as `simlab network order --server`
/// uses it. It authenticates with the operator's client certificate (mutual TLS) and trusts
/// only the given roots for the SM-DP+'s certificate.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// use simlab_harness::smdp::{DownloadOrderRequest, Es2pClient};
/// // The BOSS certificate, its key and the TLS root all from one PKI directory.
/// let es2 = Es2pClient::from_pki("127.0.0.1:8444", simlab_harness::defaults::Files::pki())?;
/// let order = es2.download_order(&DownloadOrderRequest {
///     profile_type: Some("TS48V1-A-UNIQUE".into()),
///     ..Default::default()
/// })?;
/// println!("reserved ICCID {}", order.iccid);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Es2pClient {
    base_url: String,
    agent: ureq::Agent,
}

impl Es2pClient {
    /// A client for the ES2+ port `url` (`https://host:port` or `host:port`) presenting
    /// `identity` and trusting only `roots` (DER) for the SM-DP+'s TLS certificate.
    pub fn new<R: AsRef<[u8]>>(
        url: &str,
        roots: &[R],
        identity: &OperatorIdentity,
    ) -> anyhow::Result<Self> {
        let mut store = rustls::RootCertStore::empty();
        for der in roots {
            store.add(CertificateDer::from(der.as_ref().to_vec()))?;
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8_der.clone()));
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_client_auth_cert(vec![CertificateDer::from(identity.cert_der.clone())], key)?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(config))
            .timeout(Duration::from_secs(30))
            .build();
        let base = if url.contains("://") {
            url.trim_end_matches('/').to_owned()
        } else {
            format!("https://{}", url.trim_end_matches('/'))
        };
        Ok(Self {
            base_url: base,
            agent,
        })
    }

    /// A client for `url` with everything from one PKI (a directory, or the built-in test PKI
    /// [`Files::pki`]): the BOSS client certificate and key (`Operator/`), and the CI that
    /// issued CERT.DP.TLS as TLS root.
    pub fn from_pki(url: &str, pki: impl Into<Files>) -> anyhow::Result<Self> {
        let pki = pki.into();
        let rel = crate::pki::cert_path(crate::pki::Role::Ci, crate::pki::Curve::Nist);
        let root = pki
            .read(&rel)
            .with_context(|| format!("TLS root {}", pki.location(&rel).display()))?;
        let identity = OperatorIdentity::load(pki)?;
        Self::new(url, &[root], &identity)
    }

    fn call<Req: Serialize, Resp: for<'de> Deserialize<'de>>(
        &self,
        function: &str,
        req: &Req,
    ) -> anyhow::Result<Resp> {
        let url = format!("{}{ES2P_PATH_PREFIX}{function}", self.base_url);
        let response = match self
            .agent
            .post(&url)
            .set(HEADER_ADMIN_PROTOCOL, ADMIN_PROTOCOL)
            .set("Content-Type", CONTENT_TYPE_JSON)
            .send_string(&serde_json::to_string(req)?)
        {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => anyhow::bail!(
                "{function}: {url}: {e} (ES2+ needs mutual TLS: a client certificate of the \
                 operator CA the SM-DP+ trusts, and the SM-DP+'s ES2+ port)"
            ),
        };
        let body = response.into_string()?;
        let header: HeaderOnly = serde_json::from_str(&body)
            .map_err(|e| anyhow::anyhow!("{function}: not an ES2+ response ({e}): {body}"))?;
        if !header.header.is_success() {
            let data = header.header.function_execution_status.status_code_data;
            anyhow::bail!(
                "{function} failed: {}",
                data.map(|d| format!(
                    "subject {} reason {} {}",
                    d.subject_code,
                    d.reason_code,
                    d.message.unwrap_or_default()
                ))
                .unwrap_or_default()
            );
        }
        Ok(serde_json::from_str(&body)?)
    }

    pub fn download_order(
        &self,
        req: &DownloadOrderRequest,
    ) -> anyhow::Result<DownloadOrderResponse> {
        self.call(DOWNLOAD_ORDER, req)
    }

    pub fn confirm_order(&self, req: &ConfirmOrderRequest) -> anyhow::Result<ConfirmOrderResponse> {
        self.call(CONFIRM_ORDER, req)
    }

    pub fn cancel_order(&self, req: &CancelOrderRequest) -> anyhow::Result<HeaderOnly> {
        self.call(CANCEL_ORDER, req)
    }

    pub fn release_profile(&self, req: &ReleaseProfileRequest) -> anyhow::Result<HeaderOnly> {
        self.call(RELEASE_PROFILE, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::epoch(0, "1970-01-01T00:00:00Z")]
    #[case::leap_day(951_782_400, "2000-02-29T00:00:00Z")]
    #[case::y2038(2_147_483_647, "2038-01-19T03:14:07Z")]
    fn formats_timestamps_as_the_json_binding_wants(#[case] secs: u64, #[case] text: &str) {
        assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(secs)), text);
    }

    #[test]
    fn matching_ids_use_only_the_allowed_characters() {
        let m = new_matching_id();
        assert_eq!(m.len(), 4 * 5 + 3);
        assert!(m
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_ne!(new_matching_id(), m);
    }
}
