//! The operator network's logic, synchronous and transport-free (the HTTP layer in
//! [`super::http`] only decodes, calls one method and renders): the entitlement server
//! (authorization server 1031 of the seed's Fig. 3) with EAP-AKA and one-time codes, the BOSS
//! (1034) ordering profiles from the SM-DP+ (1035) over ES2+, the short message centre (1033),
//! the contract page's decisions (web server 1032), HLR-like checks and call delivery.
//!
//! State lives in SQLite ([`super::db`]): the SM-DP+'s database when it runs in this process,
//! a database of its own otherwise; every state change is one transaction taken under the
//! database's lock. The BOSS and the SM-DP+ share nothing but ES2+: orders go out as
//! DownloadOrder / ConfirmOrder / CancelOrder, their progress comes back as
//! HandleDownloadProgressInfo ([`super::es2`]). Calls to the SM-DP+ happen with no lock held,
//! between two transactions.

use super::db::{
    self, BossOrder, CardKind, Code, Line, LineState, LineView, Operation, Subscriber, Token,
};
use super::error::NetError;
use super::es2;
use super::ts43::{
    self, AppFields, LineId, Operation as Op, Params, Request, TransferType,
    SERVICE_STATUS_ACTIVATED, SERVICE_STATUS_ACTIVATING, SERVICE_STATUS_DEACTIVATED,
    SUBSCRIPTION_RESULT_CONTINUE_TO_WEBSHEET, SUBSCRIPTION_RESULT_DISMISS,
    SUBSCRIPTION_RESULT_DOWNLOAD_PROFILE, SUBSCRIPTION_RESULT_REQUIRES_USER_INPUT,
};
use crate::eap_aka::{self, server as eap_server, Identity, ServerVerdict};
use crate::smdp::{ConfirmOrderRequest, DownloadOrderRequest, Es2pClient, Smdp};
use rand::Rng as _;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use simlab_emulator::aka::{self, ts_33_102::next_sqn, AkaAlgorithm};
use std::sync::Arc;
use std::time::Duration;

/// IND bits of the SQN (TS 33.102 Annex C.3.2), as the emulated USIM's SqnStore default.
const IND_BITS: u8 = 5;
/// AMF of the vectors: separation bit 0 (not an E-UTRAN vector, TS 33.102 Annex H).
const AMF: [u8; 2] = [0x00, 0x00];
/// Resynchronisations allowed in one EAP-AKA session.
const MAX_RESYNCS: u32 = 2;
/// One-time codes: six digits.
const CODE_DIGITS: usize = 6;
/// Who sends the network's own SMS.
pub const SMS_SENDER: &str = "simlab";
/// A transfer reserved but never ordered (the request was interrupted) lapses this long after
/// its expiry, so that a request still ordering is not overtaken.
const ORPHAN_GRACE: i64 = 60;
/// MSISDNs the BOSS hands out to new lines: +1555 and seven digits from a counter.
const MSISDN_PREFIX: &str = "+1555";
const MSISDN_FIRST: i64 = 2_000_000;

/// What the network needs to know beyond the database.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Lifetime of one-time codes and EAP-AKA sessions.
    pub code_ttl: Duration,
    /// Wrong tries before a code request locks.
    pub code_tries: u32,
    /// Lifetime of tokens.
    pub token_ttl: Duration,
    /// Lifetime of a transfer's reservation of its number: past it, a transfer not completed
    /// (its new profile not enabled) ends ([`Network::expire_transfers`]).
    pub transfer_ttl: Duration,
    /// Profile template the BOSS orders (a file stem of the SM-DP+'s templates).
    pub profile_template: String,
    /// `http://host:port` of the operator services (contract URLs).
    pub base_url: String,
    /// `https://host:port` of the SM-DP+'s ES2+ (mutual TLS), for the URL list.
    pub smdp_es2_url: String,
    /// The BOSS's own ES2+ endpoint (HTTPS, mutual TLS): the URL of
    /// HandleDownloadProgressInfo the SM-DP+ calls.
    pub es2_callback_url: String,
    /// The SM-DP+'s ES9+ address (`host:port`) for activation codes when ConfirmOrder names
    /// none.
    pub smdp_address: String,
}

/// The AKA algorithm a template's profiles use (its `PE-AKAParameter`), keys per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateAlgorithm {
    Milenage,
    Xor,
}

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub msisdn: String,
    pub imsi: Option<String>,
}

/// An answer of `/ts43`.
#[derive(Debug, Clone, PartialEq)]
pub enum Ts43Answer {
    /// An EAP-Request to relay, and the session it belongs to.
    Challenge { packet: Vec<u8>, session: String },
    /// The entitlement document.
    Document(Value),
}

/// Where the network's tables live.
#[derive(Debug)]
enum Database {
    /// In the SM-DP+'s database (the embedded network: one file, one lock).
    Shared(Arc<Smdp>),
    /// A database of its own: the SM-DP+ runs elsewhere and is reached only over ES2+.
    Own(std::sync::Mutex<crate::smdp::Store>),
}

/// The operator network.
#[derive(Debug)]
pub struct Network {
    database: Database,
    es2: Es2pClient,
    options: ServiceOptions,
    template_algorithm: TemplateAlgorithm,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill(&mut b[..]);
    hex::encode(b)
}

fn hash_code(salt: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{code}").as_bytes()))
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A subscriber to provision (`POST /boss/subscribers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provision {
    pub msisdn: String,
    /// Absent for an eUICC line the BOSS orders a profile for (with `eid`).
    #[serde(default)]
    pub imsi: Option<String>,
    #[serde(default)]
    pub iccid: Option<String>,
    pub kind: CardKind,
    #[serde(default)]
    pub eid: Option<String>,
    #[serde(default)]
    pub aka: Option<ProvisionAka>,
    /// The account holder's MSISDN (default: `msisdn`); lines of one account bind without
    /// the second device's code.
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub sqn: Option<u64>,
    #[serde(default)]
    pub ota: Option<Value>,
    #[serde(default)]
    pub policy: db::Policy,
    #[serde(default)]
    pub ring_mode: db::RingMode,
}

/// The AKA algorithm and keys of a provisioned card (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProvisionAka {
    Milenage {
        k: String,
        #[serde(default)]
        opc: Option<String>,
        #[serde(default)]
        op: Option<String>,
    },
    Xor {
        k: String,
    },
}

fn key16(field: &str, text: &str) -> Result<[u8; 16], NetError> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| NetError::invalid(field, "expected 32 hex digits (16 bytes)"))
}

impl ProvisionAka {
    pub fn algorithm(&self) -> Result<AkaAlgorithm, NetError> {
        Ok(match self {
            ProvisionAka::Milenage { k, opc, op } => {
                let k = key16("aka.k", k)?;
                match (opc, op) {
                    (Some(opc), None) => AkaAlgorithm::Milenage {
                        k,
                        opc: key16("aka.opc", opc)?,
                    },
                    (None, Some(op)) => AkaAlgorithm::milenage_from_op(k, key16("aka.op", op)?),
                    _ => {
                        return Err(NetError::invalid(
                            "aka",
                            "milenage needs exactly one of opc and op",
                        ))
                    }
                }
            }
            ProvisionAka::Xor { k } => AkaAlgorithm::XorTest {
                k: key16("aka.k", k)?,
            },
        })
    }
}

/// Ring plan of a simulated call (`POST /calls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallResult {
    pub to: String,
    /// "single", "FA" or "MAH".
    pub mode: String,
    pub rings: Vec<RingStep>,
    pub answered_by: Option<String>,
    pub not_ringing: Vec<NotRinging>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RingStep {
    pub step: u32,
    pub imsis: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotRinging {
    pub imsi: String,
    pub reason: String,
}

/// A network authentication challenge (`POST /hlr/attach`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachChallenge {
    pub session: String,
    pub rand: String,
    pub autn: String,
}

/// How an attach ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attached {
    pub attached: bool,
    pub msisdn: String,
}

/// The HLR's view of an IMSI (`GET /hlr/imsi/{imsi}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HlrRecord {
    pub imsi: String,
    pub msisdn: String,
    pub state: LineState,
    pub reason: Option<String>,
    pub can_attach: bool,
}

/// A group of IMSIs sharing an MSISDN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub msisdn: String,
    pub ring_mode: db::RingMode,
    pub members: Vec<LineView>,
}

/// A subscriber with its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberView {
    pub msisdn: String,
    pub account: String,
    pub policy: db::Policy,
    pub ring_mode: db::RingMode,
    pub contract_signed: bool,
    pub imsis: Vec<LineView>,
}

/// A BOSS order with the SM-DP+'s state of it, as the SM-DP+ last reported it over ES2+
/// (HandleDownloadProgressInfo; the same as `order.state`, kept for clients of the first
/// version of this API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    #[serde(flatten)]
    pub order: BossOrder,
    pub smdp_state: Option<String>,
}

/// An operation for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    pub id: String,
    pub kind: String,
    pub app: String,
    pub msisdn: String,
    pub state: String,
    pub params: Value,
    pub result: Option<Value>,
}

/// What a decision on the contract page led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractOutcome {
    pub contract: db::Contract,
    pub message: String,
}

/// A profile ordered over ES2+, with the subscription data the SM-DP+ personalised it with.
struct Ordered {
    iccid: String,
    activation_code: String,
    /// The SM-DP+'s ES9+ address (ConfirmOrder's smdpAddress).
    smdp_address: String,
    imsi: String,
    algorithm: AkaAlgorithm,
}

/// Operation states.
mod state {
    pub const NEW: &str = "new";
    pub const AWAITING_AUTH_CODE: &str = "awaiting-auth-code";
    pub const AWAITING_CONTRACT: &str = "awaiting-contract";
    pub const CONTRACT_ACCEPTED: &str = "contract-accepted";
    pub const AWAITING_CODE: &str = "awaiting-code";
    pub const CODE_VERIFIED: &str = "code-verified";
    pub const DONE: &str = "done";
    pub const DECLINED: &str = "declined";
    pub const FAILED: &str = "failed";
}

impl Network {
    /// The network around an SM-DP+ in the same process, its tables in the SM-DP+'s database.
    pub fn new(
        smdp: Arc<Smdp>,
        es2: Es2pClient,
        options: ServiceOptions,
        template_algorithm: TemplateAlgorithm,
    ) -> Result<Self, NetError> {
        Self::open(Database::Shared(smdp), es2, options, template_algorithm)
    }

    /// The network for an SM-DP+ elsewhere (reached over ES2+ only), its tables in a database
    /// of its own (`None`: in memory).
    pub fn standalone(
        db: Option<&std::path::Path>,
        es2: Es2pClient,
        options: ServiceOptions,
        template_algorithm: TemplateAlgorithm,
    ) -> Result<Self, NetError> {
        let store = crate::smdp::Store::open(db).map_err(|e| NetError::internal(e.to_string()))?;
        Self::open(
            Database::Own(std::sync::Mutex::new(store)),
            es2,
            options,
            template_algorithm,
        )
    }

    fn open(
        database: Database,
        es2: Es2pClient,
        options: ServiceOptions,
        template_algorithm: TemplateAlgorithm,
    ) -> Result<Self, NetError> {
        let network = Self {
            database,
            es2,
            options,
            template_algorithm,
        };
        network.db(|c| Ok(db::create(c)?))?;
        Ok(network)
    }

    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    /// The SM-DP+ whose database the network shares, when it runs in this process.
    pub fn smdp(&self) -> Option<&Arc<Smdp>> {
        match &self.database {
            Database::Shared(smdp) => Some(smdp),
            Database::Own(_) => None,
        }
    }

    /// Runs `f` on the network's database connection under its lock (tests and QA tools
    /// inspect or age the network's tables with it). Never call it from inside `f`.
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        self.db(f)
    }

    /// Runs `f` on the connection under the database's lock.
    fn db<T>(&self, f: impl FnOnce(&Connection) -> Result<T, NetError>) -> Result<T, NetError> {
        match &self.database {
            Database::Shared(smdp) => smdp.with_store(|s| Ok(f(s.connection())))?,
            Database::Own(store) => {
                let store = store
                    .lock()
                    .map_err(|_| NetError::internal("network database lock poisoned"))?;
                f(store.connection())
            }
        }
    }

    /// Runs `f` in one transaction: all of it is stored, or none of it.
    fn tx<T>(&self, f: impl FnOnce(&Connection) -> Result<T, NetError>) -> Result<T, NetError> {
        self.db(|c| {
            let tx = c.unchecked_transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// A deadline `d` from now, in Unix seconds (rounded up: a lifetime below a second
    /// still ends after it, see the millisecond deadline of codes).
    fn ttl(d: Duration) -> i64 {
        db::now() + Self::secs(d) as i64
    }

    /// `d` in whole seconds, rounded up (TS.43's OtpExpiresIn, SMS texts).
    fn secs(d: Duration) -> u64 {
        (d.as_millis() as u64).div_ceil(1000)
    }

    // ----- BOSS: provisioning, reconciliation with the SM-DP+ -----

    /// `POST /boss/subscribers`: a line the operator already has (idempotent by ICCID), or,
    /// for an eUICC given by EID only, a line whose profile the BOSS orders now (the answer
    /// carries its activation code; idempotent by MSISDN + EID).
    pub fn provision(&self, p: &Provision) -> Result<(u16, LineView), NetError> {
        let msisdn = ts43::normalise_msisdn("msisdn", &p.msisdn)?;
        let account = p
            .account
            .as_deref()
            .map(|a| ts43::normalise_msisdn("account", a))
            .transpose()?;
        let eid = p
            .eid
            .as_deref()
            .map(|e| ts43::check_eid("eid", e))
            .transpose()?;
        if p.kind == CardKind::Euicc && eid.is_none() {
            return Err(NetError::missing("eid (required for kind euicc)"));
        }
        let (imsi, iccid, aka) =
            match (&p.imsi, &p.iccid, &p.aka) {
                (Some(imsi), Some(iccid), Some(aka)) => (
                    ts43::check_imsi("imsi", imsi)?,
                    ts43::check_iccid("iccid", iccid)?,
                    aka,
                ),
                (None, None, None) => match (p.kind, eid) {
                    (CardKind::Euicc, Some(eid)) => {
                        return self.provision_ordered(p, &msisdn, account, &eid)
                    }
                    _ => return Err(NetError::missing(
                        "imsi, iccid and aka (only an eUICC line given by eid may leave them out)",
                    )),
                },
                (None, _, _) => return Err(NetError::missing("imsi")),
                (_, None, _) => return Err(NetError::missing("iccid")),
                (_, _, None) => return Err(NetError::missing("aka")),
            };
        let algorithm = aka.algorithm()?;
        if let Some(ota) = &p.ota {
            super::ota::check_keys(ota)?;
        }
        self.tx(|c| {
            if let Some(existing) = db::line_by_iccid(c, &iccid)? {
                if existing.imsi != imsi {
                    return Err(NetError::conflict(
                        "imsi-exists",
                        format!("ICCID {iccid} is provisioned with IMSI {}", existing.imsi),
                    ));
                }
                let mut line = existing;
                line.algorithm = algorithm.clone();
                line.ota = p.ota.clone().or(line.ota);
                db::update_line(c, &line)?;
                return Ok((200, line.view()));
            }
            if db::line(c, &imsi)?.is_some() {
                return Err(NetError::conflict(
                    "imsi-exists",
                    format!("IMSI {imsi} is already provisioned with another ICCID"),
                ));
            }
            let account = self.ensure_subscriber(c, p, &msisdn, account.as_deref())?;
            let line = Line {
                imsi: imsi.clone(),
                msisdn: msisdn.clone(),
                home_msisdn: msisdn.clone(),
                account,
                iccid: Some(iccid.clone()),
                eid,
                kind: p.kind,
                algorithm,
                sqn_he: p.sqn.unwrap_or(0),
                state: LineState::Active,
                reason: None,
                ring_order: db::next_ring_order(c, &msisdn)?,
                ota: p.ota.clone(),
                order_iccid: None,
            };
            db::insert_line(c, &line)?;
            Ok((201, line.view()))
        })
    }

    /// The subscriber of `msisdn` (created with the provisioning's policy when new); its account.
    fn ensure_subscriber(
        &self,
        c: &Connection,
        p: &Provision,
        msisdn: &str,
        account: Option<&str>,
    ) -> Result<String, NetError> {
        Ok(match db::subscriber(c, msisdn)? {
            Some(s) => s.account,
            None => {
                let account = account.unwrap_or(msisdn).to_owned();
                db::upsert_subscriber(
                    c,
                    &Subscriber {
                        msisdn: msisdn.to_owned(),
                        account: account.clone(),
                        policy: p.policy,
                        ring_mode: p.ring_mode,
                        contract_signed: false,
                    },
                )?;
                account
            }
        })
    }

    /// An eUICC line the operator sets up by ordering its profile (e.g. the old eUICC of a
    /// migration, "already on the network" before the flow starts).
    fn provision_ordered(
        &self,
        p: &Provision,
        msisdn: &str,
        account: Option<String>,
        eid: &str,
    ) -> Result<(u16, LineView), NetError> {
        let existing = self.db(|c| {
            let orders = db::orders(c)?;
            for line in db::lines_of(c, msisdn)? {
                if line.eid.as_deref() == Some(eid) && line.state != LineState::Disabled {
                    let ac = orders
                        .iter()
                        .find(|o| o.imsi == line.imsi)
                        .map(|o| o.activation_code.clone());
                    let mut view = line.view();
                    view.activation_code = ac;
                    return Ok(Some(view));
                }
            }
            Ok(None)
        })?;
        if let Some(view) = existing {
            return Ok((200, view));
        }
        let ordered = self.order_profile(eid, msisdn)?;
        self.tx(|c| {
            let account = self.ensure_subscriber(c, p, msisdn, account.as_deref())?;
            let line = Line {
                imsi: ordered.imsi.clone(),
                msisdn: msisdn.to_owned(),
                home_msisdn: msisdn.to_owned(),
                account,
                iccid: Some(ordered.iccid.clone()),
                eid: Some(eid.to_owned()),
                kind: CardKind::Euicc,
                algorithm: ordered.algorithm.clone(),
                sqn_he: 0,
                state: LineState::Pending,
                reason: None,
                ring_order: db::next_ring_order(c, msisdn)?,
                ota: p.ota.clone(),
                order_iccid: Some(ordered.iccid.clone()),
            };
            db::insert_line(c, &line)?;
            db::put_order(
                c,
                &BossOrder {
                    iccid: ordered.iccid.clone(),
                    operation_id: "provisioning".into(),
                    msisdn: msisdn.to_owned(),
                    eid: eid.to_owned(),
                    imsi: ordered.imsi.clone(),
                    purpose: "subscribe".into(),
                    state: "released".into(),
                    activation_code: ordered.activation_code.clone(),
                },
            )?;
            let mut view = line.view();
            view.activation_code = Some(ordered.activation_code.clone());
            Ok((201, view))
        })
    }

    /// ES2+.HandleDownloadProgressInfo from the SM-DP+ (SGP.22 §5.3.5): the BOSS's record of
    /// the order follows the event when it moves the order forward ([`super::es2::decide`]),
    /// and the subscriber state with it, in one transaction. Answers what it did; refuses an
    /// event for an order the BOSS did not place (SGP.22 "Profile ICCID – Unknown") or for
    /// another EID than the order's ("EID – Invalid association").
    pub fn download_progress(
        &self,
        req: &crate::smdp::es2::HandleDownloadProgressInfoRequest,
    ) -> Result<db::OrderEvent, es2::Refusal> {
        let event = es2::Event::from_request(req)?;
        let internal =
            |e: NetError| es2::Refusal::new(crate::es9p::codes::EXECUTION_ERROR, e.to_string());
        self.tx(|c| {
            let Some((order, current_at)) = db::order(c, &event.iccid)? else {
                return Ok(Err(es2::Refusal::new(
                    crate::es9p::codes::ICCID_UNKNOWN,
                    format!("the BOSS placed no order for ICCID {}", event.iccid),
                )));
            };
            if let Some(eid) = event.eid.as_deref().filter(|e| *e != order.eid) {
                return Ok(Err(es2::Refusal::new(
                    crate::es9p::codes::EID_INVALID_ASSOCIATION,
                    format!(
                        "order {} is for EID {}, the event names {eid}",
                        order.iccid, order.eid
                    ),
                )));
            }
            let outcome = match es2::decide(&order.state, current_at, &event) {
                es2::Decision::Apply(new) => {
                    self.apply_order_state(c, &order, new)?;
                    db::set_order_state(c, &order.iccid, new, event.at)?;
                    format!("applied: {} → {new}", order.state)
                }
                es2::Decision::Ignore(why) => format!("ignored: {why}"),
            };
            let record = db::OrderEvent {
                iccid: event.iccid.clone(),
                point: event.point,
                status: req.notification_point_status.status.clone(),
                reason: event.reason.clone(),
                event_at: event.at,
                received_at: db::now(),
                outcome,
            };
            db::insert_order_event(c, &record)?;
            Ok(Ok(record))
        })
        .map_err(internal)?
    }

    /// What the order's new state means for its line (and the transfer it completes): the
    /// guards on the line's state make each consequence happen once.
    fn apply_order_state(
        &self,
        c: &Connection,
        order: &BossOrder,
        smdp_state: &str,
    ) -> Result<(), NetError> {
        let Some(mut line) = db::line(c, &order.imsi)? else {
            return Ok(());
        };
        match (order.purpose.as_str(), smdp_state) {
            ("subscribe" | "bind", "installed" | "enabled") if line.state == LineState::Pending => {
                line.state = LineState::Active;
                db::update_line(c, &line)?;
            }
            // Granted claims: the new eUICC's profile is enabled → the old card is disabled, in
            // the same transaction as the new IMSI becomes active.
            ("transfer", "enabled") if line.state == LineState::Pending => {
                line.state = LineState::Active;
                db::update_line(c, &line)?;
                if let Some(transfer) = db::transfer_of_operation(c, &order.operation_id)? {
                    if let Some(mut old) = db::line(c, &transfer.old_imsi)? {
                        old.state = LineState::Disabled;
                        old.reason = Some(format!(
                            "migrated to EID {} (ICCID {}); TS.43 ServiceStatus 4 DEACTIVATED_NO_REUSE",
                            order.eid, order.iccid
                        ));
                        db::update_line(c, &old)?;
                        let notice = match old.kind {
                            CardKind::Euicc => format!(
                                "simlab: your number {} moved to another device; disable profile {} on this eUICC",
                                order.msisdn,
                                old.iccid.clone().unwrap_or_default()
                            ),
                            CardKind::Uicc => format!(
                                "simlab: your number {} moved to another device; this SIM card is no longer in service",
                                order.msisdn
                            ),
                        };
                        // Fig. 16, granted claims: the old UICC's USIM is deactivated on the card
                        // itself by the network's RFM command (USIM RFM, DEACTIVATE FILE).
                        if old.kind == CardKind::Uicc && old.ota.is_some() {
                            let request = super::ota::OtaRequest {
                                imsi: old.imsi.clone(),
                                apdus: Vec::new(),
                                deactivate_usim: true,
                                application: None,
                                keyset: None,
                            };
                            if let Err(e) = super::ota::send(c, &old, &request) {
                                tracing::warn!(imsi = %old.imsi, "OTA deactivation not sent: {e}");
                            }
                        }
                        // Addressed to the old card itself (it is disabled, so an SMS to the
                        // MSISDN would no longer reach it).
                        db::insert_sms(
                            c,
                            &order.msisdn,
                            SMS_SENDER,
                            &notice,
                            "text",
                            None,
                            &[old.imsi.clone()],
                        )?;
                    }
                    db::set_transfer(c, transfer.id, "done", None)?;
                }
            }
            (_, "deleted") if line.state != LineState::Disabled => {
                line.state = LineState::Disabled;
                line.reason = Some(format!("profile {} deleted on the eUICC", order.iccid));
                db::update_line(c, &line)?;
                let why = line.reason.clone().unwrap_or_default();
                Self::end_group_without_primary(c, &line.msisdn, &why)?;
                if let Some(t) = db::transfer_of_operation(c, &order.operation_id)? {
                    let why = format!("the new profile {} was deleted on the eUICC", order.iccid);
                    db::end_transfer(c, t.id, "failed", &why)?;
                }
            }
            (_, "error" | "unavailable") if line.state == LineState::Pending => {
                line.state = LineState::Disabled;
                line.reason = Some(format!(
                    "order {} failed at the SM-DP+ ({smdp_state})",
                    order.iccid
                ));
                db::update_line(c, &line)?;
                let why = line.reason.clone().unwrap_or_default();
                Self::end_group_without_primary(c, &line.msisdn, &why)?;
                if let Some(t) = db::transfer_of_operation(c, &order.operation_id)? {
                    let why = format!("order {} failed at the SM-DP+ ({smdp_state})", order.iccid);
                    db::end_transfer(c, t.id, "failed", &why)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Orders a profile for `eid` over ES2+ (DownloadOrder with the EID, ConfirmOrder with
    /// releaseFlag): SGP.22 v2.5 §3.1.1 / §5.3.1–§5.3.2. No lock is held meanwhile.
    ///
    /// The profile carries `msisdn`, the number the network routes for the line (simlab's
    /// DownloadOrder extension `msisdn`): one source of truth for EF.MSISDN and the BOSS. The
    /// subscription data the BOSS provisions (IMSI, K, OPc) come back in the DownloadOrder
    /// answer (simlab's extension `subscriber`, as an operator reads a profile vendor's output
    /// file); an SM-DP+ that personalised another MSISDN has its order cancelled again.
    fn order_profile(&self, eid: &str, msisdn: &str) -> Result<Ordered, NetError> {
        let smdp_error = |e: anyhow::Error| NetError::new(502, "smdp-error", format!("{e:#}"));
        let ordered = self
            .es2
            .download_order(&DownloadOrderRequest {
                eid: Some(eid.to_owned()),
                profile_type: Some(self.options.profile_template.clone()),
                msisdn: Some(msisdn.to_owned()),
                ..Default::default()
            })
            .map_err(smdp_error)?;
        let iccid = ordered.iccid.clone();
        let data = match self.subscription_data(&ordered, msisdn) {
            Ok(d) => d,
            Err(e) => {
                let _ = self.cancel_order(&iccid, eid, "its subscription data are unusable");
                return Err(e);
            }
        };
        let confirmed = match self.es2.confirm_order(&ConfirmOrderRequest {
            iccid: iccid.clone(),
            eid: Some(eid.to_owned()),
            release_flag: true,
            ..Default::default()
        }) {
            Ok(c) => c,
            Err(e) => {
                let _ = self.cancel_order(&iccid, eid, "ConfirmOrder failed");
                return Err(smdp_error(e));
            }
        };
        let address = confirmed
            .smdp_address
            .unwrap_or_else(|| self.options.smdp_address.clone());
        Ok(Ordered {
            iccid,
            activation_code: format!("LPA:1${address}${}", confirmed.matching_id),
            smdp_address: address,
            imsi: data.0,
            algorithm: data.1,
        })
    }

    /// The IMSI and AKA keys of a profile from the DownloadOrder answer, checked against what
    /// the BOSS asked for.
    fn subscription_data(
        &self,
        ordered: &crate::smdp::DownloadOrderResponse,
        msisdn: &str,
    ) -> Result<(String, AkaAlgorithm), NetError> {
        let iccid = &ordered.iccid;
        let unusable = |what: &str| {
            NetError::new(
                502,
                "smdp-error",
                format!(
                    "DownloadOrder of {iccid}: {what} (the BOSS needs the simlab extension \
                     `subscriber` with imsi, k and opc)"
                ),
            )
        };
        let data = ordered
            .subscriber
            .as_ref()
            .ok_or_else(|| unusable("no subscriber data in the answer"))?;
        if let Some(carried) = &data.msisdn {
            if carried != msisdn {
                return Err(unusable(&format!(
                    "the profile carries MSISDN {carried}, not the line's {msisdn}"
                )));
            }
        }
        let imsi = data
            .imsi
            .as_deref()
            .ok_or_else(|| unusable("no imsi"))
            .and_then(|i| {
                ts43::check_imsi("subscriber.imsi", i).map_err(|e| unusable(&e.message))
            })?;
        let k = data
            .k
            .as_deref()
            .ok_or_else(|| unusable("no k"))
            .and_then(|k| key16("subscriber.k", k).map_err(|e| unusable(&e.message)))?;
        let algorithm = match self.template_algorithm {
            TemplateAlgorithm::Xor => AkaAlgorithm::XorTest { k },
            TemplateAlgorithm::Milenage => AkaAlgorithm::Milenage {
                k,
                opc: data
                    .opc
                    .as_deref()
                    .ok_or_else(|| unusable("no opc"))
                    .and_then(|o| key16("subscriber.opc", o).map_err(|e| unusable(&e.message)))?,
            },
        };
        Ok((imsi, algorithm))
    }

    /// ES2+.CancelOrder (SGP.22 §5.3.3) of an order the BOSS gives up, with
    /// finalProfileStatusIndicator "Unavailable" (its subscription data went to the BOSS; it
    /// is never handed out again). Answers whether the SM-DP+ no longer holds it for
    /// download: cancelled now, or unknown to it.
    fn cancel_order(&self, iccid: &str, eid: &str, why: &str) -> Result<(), String> {
        match self.es2.cancel_order(&crate::smdp::CancelOrderRequest {
            header: None,
            iccid: iccid.to_owned(),
            eid: Some(eid.to_owned()),
            matching_id: None,
            final_profile_status_indicator: "Unavailable".into(),
        }) {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = format!("{e:#}");
                let code = crate::es9p::codes::ICCID_UNKNOWN;
                if text.contains(&format!("subject {} reason {}", code.subject, code.reason)) {
                    return Ok(());
                }
                tracing::warn!(%iccid, "CancelOrder ({why}) failed: {text}");
                Err(text)
            }
        }
    }

    // ----- SMS centre, one-time codes, tokens -----

    /// Delivers an SMS to every IMSI active for `to`; returns its id and the IMSIs.
    fn deliver(
        &self,
        c: &Connection,
        to: &str,
        from: &str,
        text: &str,
    ) -> Result<(i64, Vec<String>), NetError> {
        if db::subscriber(c, to)?.is_none() && db::lines_of(c, to)?.is_empty() {
            return Err(NetError::forbidden(
                "unknown-subscriber",
                format!("no subscriber {to}"),
            ));
        }
        let imsis: Vec<String> = db::lines_of(c, to)?
            .into_iter()
            .filter(|l| l.state == LineState::Active)
            .map(|l| l.imsi)
            .collect();
        let id = db::insert_sms(c, to, from, text, "text", None, &imsis)?;
        Ok((id, imsis))
    }

    /// `POST /smsc/messages`.
    pub fn send_sms(
        &self,
        to: &str,
        from: &str,
        text: &str,
    ) -> Result<(i64, Vec<String>), NetError> {
        let to = ts43::normalise_msisdn("to", to)?;
        if from.trim().is_empty() {
            return Err(NetError::missing("from"));
        }
        if text.chars().count() > 1600 {
            return Err(NetError::invalid(
                "text",
                "at most 1600 characters (10 concatenated SMS)",
            ));
        }
        self.tx(|c| self.deliver(c, &to, from, text))
    }

    /// `GET /smsc/inbox/{imsi}`.
    pub fn inbox(&self, imsi: &str, after: i64) -> Result<Vec<db::Sms>, NetError> {
        let imsi = ts43::check_imsi("imsi", imsi)?;
        self.db(|c| {
            if db::line(c, &imsi)?.is_none() {
                return Err(NetError::forbidden(
                    "unknown-subscriber",
                    format!("no IMSI {imsi}"),
                ));
            }
            Ok(db::inbox(c, &imsi, after)?)
        })
    }

    /// Creates a code request for `msisdn` and sends the code by SMS.
    fn send_code(
        &self,
        c: &Connection,
        msisdn: &str,
        purpose: &str,
        operation_id: &str,
    ) -> Result<(), NetError> {
        let mut rng = rand::thread_rng();
        let code: String = (0..CODE_DIGITS)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect();
        let salt = random_hex(8);
        let record = Code {
            id: format!("code-{}", random_hex(8)),
            msisdn: msisdn.to_owned(),
            purpose: purpose.to_owned(),
            code_hash: hash_code(&salt, &code),
            salt,
            tries: 0,
            max_tries: self.options.code_tries,
            expires_at: Self::ttl(self.options.code_ttl),
            expires_ms: Some(db::now_ms() + self.options.code_ttl.as_millis() as i64),
            used_at: None,
            locked_at: None,
            operation_id: Some(operation_id.to_owned()),
        };
        db::put_code(c, &record)?;
        let minutes = Self::secs(self.options.code_ttl).div_ceil(60);
        let text =
            format!("simlab: your verification code is {code} ({purpose}; valid {minutes} min)");
        let (_, imsis) = self.deliver(c, msisdn, SMS_SENDER, &text)?;
        if imsis.is_empty() {
            return Err(NetError::forbidden(
                "imsi-not-active",
                format!("no active line receives SMS for {msisdn}"),
            ));
        }
        Ok(())
    }

    /// Checks a typed code against the operation's code request; the try is counted (and
    /// stored) whatever the outcome.
    fn check_code(&self, operation_id: &str, typed: &str) -> Result<(), NetError> {
        let verdict = self.tx(|c| {
            let mut code = db::code_of_operation(c, operation_id)?
                .ok_or_else(|| NetError::not_found(format!("operation {operation_id} has no code")))?;
            let now = db::now();
            let verdict = if code.used_at.is_some() {
                Err(NetError::forbidden("code-used", "this code was already used; request a new one"))
            } else if code.locked_at.is_some() {
                Err(NetError::forbidden("code-locked", format!("{} wrong tries: this request is locked; request a new code", code.max_tries)))
            } else if now > code.expires_at
                || code.expires_ms.is_some_and(|deadline| db::now_ms() > deadline)
            {
                Err(NetError::forbidden("code-expired", "the code expired; request a new one"))
            } else if ct_eq(&hash_code(&code.salt, typed.trim()), &code.code_hash) {
                code.used_at = Some(now);
                Ok(())
            } else {
                code.tries += 1;
                if code.tries >= code.max_tries {
                    code.locked_at = Some(now);
                    Err(NetError::forbidden("code-locked", format!("wrong code; {} wrong tries: this request is locked; request a new code", code.tries)))
                } else {
                    Err(NetError::forbidden("code-wrong", format!("wrong code; {} tries left", code.max_tries - code.tries)))
                }
            };
            db::put_code(c, &code)?;
            Ok(verdict)
        })?;
        verdict
    }

    fn issue_token(
        &self,
        c: &Connection,
        msisdn: &str,
        imsi: Option<&str>,
    ) -> Result<String, NetError> {
        let token = random_hex(16);
        db::put_token(
            c,
            &Token {
                token: token.clone(),
                msisdn: msisdn.to_owned(),
                imsi: imsi.map(str::to_owned),
                expires_at: Self::ttl(self.options.token_ttl),
            },
        )?;
        Ok(token)
    }

    fn auth_by_token(&self, token: &str) -> Result<Auth, NetError> {
        let t = self.db(|c| Ok(db::token(c, token)?))?.ok_or_else(|| {
            NetError::forbidden("token-invalid", "unknown token; authenticate again")
        })?;
        if db::now() > t.expires_at {
            return Err(NetError::forbidden(
                "token-invalid",
                "the token expired; authenticate again",
            ));
        }
        if let Some(imsi) = &t.imsi {
            self.check_line_usable(imsi)?;
        }
        Ok(Auth {
            msisdn: t.msisdn,
            imsi: t.imsi,
        })
    }

    /// The HLR's check: is this IMSI allowed on the network?
    fn usable(line: Option<Line>, imsi: &str) -> Result<Line, NetError> {
        let line = line.ok_or_else(|| {
            NetError::forbidden(
                "unknown-subscriber",
                format!("IMSI {imsi} is not a subscriber of this network"),
            )
        })?;
        match line.state {
            LineState::Active => Ok(line),
            LineState::Disabled => Err(NetError::forbidden(
                "imsi-disabled",
                format!(
                    "IMSI {imsi} is disabled: {}",
                    line.reason
                        .clone()
                        .unwrap_or_else(|| "no reason recorded".into())
                ),
            )),
            LineState::Pending => Err(NetError::forbidden(
                "imsi-not-active",
                format!("IMSI {imsi}: its profile is ordered but not installed yet"),
            )),
        }
    }

    fn check_line_usable(&self, imsi: &str) -> Result<Line, NetError> {
        Self::usable(self.db(|c| Ok(db::line(c, imsi)?))?, imsi)
    }

    // ----- Entitlement server (TS.43) -----

    /// `GET /ts43`.
    pub fn ts43_get(&self, params: &Params) -> Result<Ts43Answer, NetError> {
        if let Some(op) = params.get("operation_id") {
            return self.continue_operation(op, params);
        }
        let request = Request::parse(params)?;
        if let Op::Transfer { msisdn, .. } = &request.operation {
            // Upgrade and migration need the code sent to the number (Fig. 16 1602–1604),
            // whatever else the device holds.
            return self.start_code_auth(&request, msisdn);
        }
        if let Some(identity) = params.get("EAP_ID") {
            return self.start_eap(identity, &request);
        }
        if let Some(token) = params.get("token") {
            let auth = self.auth_by_token(token)?;
            return self
                .run_new(&request, &auth, None)
                .map(Ts43Answer::Document);
        }
        if let Some(msisdn) = params.get("MSISDN") {
            let msisdn = ts43::normalise_msisdn("MSISDN", msisdn)?;
            return self.start_code_auth(&request, &msisdn);
        }
        Err(NetError::new(
            401,
            "auth-required",
            "authenticate with EAP_ID (EAP-AKA), token, or MSISDN (one-time code by SMS)",
        ))
    }

    fn new_operation(
        &self,
        request: &Request,
        msisdn: &str,
        imsi: Option<&str>,
        state: &str,
    ) -> Operation {
        Operation {
            id: format!("op-{}", random_hex(12)),
            kind: request.operation.kind().to_owned(),
            app: request.app.clone(),
            msisdn: msisdn.to_owned(),
            imsi: imsi.map(str::to_owned),
            request: serde_json::to_string(&request.params).unwrap_or_default(),
            state: state.to_owned(),
            result: None,
        }
    }

    /// One-time code authentication: stores the request, sends the code, answers
    /// REQUIRES_USER_INPUT with the operation to continue.
    fn start_code_auth(&self, request: &Request, msisdn: &str) -> Result<Ts43Answer, NetError> {
        let mut op = self.new_operation(request, msisdn, None, state::AWAITING_AUTH_CODE);
        if let Op::Transfer { .. } = &request.operation {
            // Refuse early what cannot work (unknown number, no old card), before a code goes out.
            let old = self.db(|c| self.transfer_source(c, request))?;
            op.imsi = Some(old.imsi);
        }
        self.tx(|c| {
            db::put_operation(c, &op)?;
            self.send_code(c, msisdn, "authentication", &op.id)
        })?;
        let fields = AppFields::default()
            .set(
                "SubscriptionResult",
                SUBSCRIPTION_RESULT_REQUIRES_USER_INPUT,
            )
            .set("OperationId", op.id.clone())
            .set(
                "OtpExpiresIn",
                Self::secs(self.options.code_ttl).to_string(),
            );
        Ok(Ts43Answer::Document(ts43::document(
            &request.app,
            None,
            &fields,
        )))
    }

    fn start_eap(&self, identity_text: &str, request: &Request) -> Result<Ts43Answer, NetError> {
        let identity =
            Identity::parse(identity_text).map_err(|e| NetError::invalid("EAP_ID", e))?;
        let session_id = format!("eap-{}", random_hex(16));
        let identifier: u8 = rand::thread_rng().gen();
        let packet = self.tx(|c| {
            let mut line = Self::usable(db::line(c, &identity.imsi)?, &identity.imsi)?;
            let challenge = self.fresh_challenge(c, &mut line, identity_text, identifier)?;
            db::put_auth_session(
                c,
                &db::AuthSession {
                    id: session_id.clone(),
                    kind: "eap".into(),
                    imsi: line.imsi.clone(),
                    identity: identity_text.to_owned(),
                    identifier,
                    rand: challenge.rand,
                    xres: challenge.xres.clone(),
                    k_aut: challenge.keys.k_aut,
                    resyncs: 0,
                    request: serde_json::to_string(&request.params).unwrap_or_default(),
                    expires_at: Self::ttl(self.options.code_ttl),
                },
            )?;
            Ok(challenge.packet)
        })?;
        Ok(Ts43Answer::Challenge {
            packet,
            session: session_id,
        })
    }

    /// A new vector for the line (SQN_HE advanced in the same transaction) as an EAP-AKA
    /// challenge.
    fn fresh_challenge(
        &self,
        c: &Connection,
        line: &mut Line,
        identity: &str,
        identifier: u8,
    ) -> Result<eap_server::ServerChallenge, NetError> {
        let sqn = next_sqn(line.sqn_he, 0, IND_BITS);
        line.sqn_he = sqn;
        db::update_line(c, line)?;
        let mut rand = [0u8; 16];
        rand::thread_rng().fill(&mut rand);
        let vector = aka::generate_vector(&line.algorithm, sqn, AMF, &rand);
        Ok(eap_server::challenge(
            identity.as_bytes(),
            identifier,
            &vector,
        ))
    }

    /// `POST /ts43` with an EAP-Response.
    pub fn ts43_post(&self, session: Option<&str>, packet: &[u8]) -> Result<Ts43Answer, NetError> {
        let unknown = || {
            NetError::forbidden("eap-session-unknown", "no EAP-AKA session: send the EAP_SESSION cookie of the challenge (sessions are single-use and expire)")
        };
        let id = session.ok_or_else(unknown)?;
        let s = self
            .db(|c| Ok(db::auth_session(c, id)?))?
            .filter(|s| s.kind == "eap")
            .ok_or_else(unknown)?;
        if db::now() > s.expires_at {
            self.tx(|c| Ok(db::delete_auth_session(c, id)?))?;
            return Err(unknown());
        }
        let failure = eap_server::failure(s.identifier);
        match eap_server::verify_parts(s.identifier, &s.k_aut, &s.xres, packet) {
            ServerVerdict::Authenticated => {
                let (auth, token) = self.tx(|c| {
                    db::delete_auth_session(c, id)?;
                    let line = Self::usable(db::line(c, &s.imsi)?, &s.imsi)?;
                    let token = self.issue_token(c, &line.msisdn, Some(&line.imsi))?;
                    Ok((
                        Auth {
                            msisdn: line.msisdn,
                            imsi: Some(line.imsi),
                        },
                        token,
                    ))
                })?;
                let params: Params = serde_json::from_str(&s.request)
                    .map_err(|e| NetError::internal(e.to_string()))?;
                let request = Request::parse(&params)?;
                self.run_new(&request, &auth, Some(token))
                    .map(Ts43Answer::Document)
            }
            ServerVerdict::SyncFailure { auts } => {
                let outcome = self.tx(|c| {
                    let mut line = Self::usable(db::line(c, &s.imsi)?, &s.imsi)?;
                    if s.resyncs >= MAX_RESYNCS {
                        db::delete_auth_session(c, id)?;
                        return Ok(Err(NetError::forbidden("auth-failed", format!("more than {MAX_RESYNCS} resynchronisations in one session"))));
                    }
                    match aka::resynchronise(&line.algorithm, &s.rand, &auts) {
                        Err(_) => {
                            db::delete_auth_session(c, id)?;
                            Ok(Err(NetError::forbidden("auth-failed", "AUTS: MAC-S is wrong (TS 33.102 §6.3.5); the card holds another key")))
                        }
                        Ok(sqn_ms) => {
                            // TS 33.102 §6.3.5: SQN_HE := SQN_MS, then a fresh vector.
                            line.sqn_he = sqn_ms;
                            let identifier = s.identifier.wrapping_add(1);
                            let challenge = self.fresh_challenge(c, &mut line, &s.identity, identifier)?;
                            db::put_auth_session(c, &db::AuthSession {
                                identifier,
                                rand: challenge.rand,
                                xres: challenge.xres.clone(),
                                k_aut: challenge.keys.k_aut,
                                resyncs: s.resyncs + 1,
                                expires_at: Self::ttl(self.options.code_ttl),
                                ..s.clone()
                            })?;
                            Ok(Ok(challenge.packet))
                        }
                    }
                })?;
                outcome
                    .map(|packet| Ts43Answer::Challenge {
                        packet,
                        session: id.to_owned(),
                    })
                    .map_err(|e| e.with_eap_failure(failure))
            }
            ServerVerdict::Rejected(reason) => {
                self.tx(|c| Ok(db::delete_auth_session(c, id)?))?;
                Err(NetError::forbidden("auth-failed", reason.to_string())
                    .with_eap_failure(failure))
            }
        }
    }

    /// Runs a new, authenticated request.
    fn run_new(
        &self,
        request: &Request,
        auth: &Auth,
        token: Option<String>,
    ) -> Result<Value, NetError> {
        let mut op = self.new_operation(request, &auth.msisdn, auth.imsi.as_deref(), state::NEW);
        self.tx(|c| Ok(db::put_operation(c, &op)?))?;
        let fields = self.proceed(&mut op, request)?;
        Ok(self.render(&op, &fields, token))
    }

    fn render(&self, op: &Operation, fields: &AppFields, token: Option<String>) -> Value {
        let validity = self.options.token_ttl.as_secs();
        ts43::document(&op.app, token.as_deref().map(|t| (t, validity)), fields)
    }

    /// `GET /ts43?operation_id=…`: continues an operation (after a contract or with a code).
    fn continue_operation(&self, id: &str, params: &Params) -> Result<Ts43Answer, NetError> {
        let mut op = self
            .db(|c| Ok(db::operation(c, id)?))?
            .ok_or_else(|| NetError::not_found(format!("no operation {id}")))?;
        let stored: Params =
            serde_json::from_str(&op.request).map_err(|e| NetError::internal(e.to_string()))?;
        let request = Request::parse(&stored)?;
        let otp = params.get("otp");
        let mut token = None;
        if op.state == state::AWAITING_AUTH_CODE {
            let otp = otp.ok_or_else(|| NetError::missing("otp"))?;
            self.check_code(&op.id, otp)?;
            // The code proves the number: a token for it.
            token = Some(self.tx(|c| self.issue_token(c, &op.msisdn, None))?);
            op.state = state::NEW.into();
            self.tx(|c| Ok(db::put_operation(c, &op)?))?;
        } else {
            // Every other step is the authenticated line's own: token, or the code again.
            match (params.get("token"), otp) {
                (Some(t), _) => {
                    let auth = self.auth_by_token(t)?;
                    if auth.msisdn != op.msisdn {
                        return Err(NetError::forbidden(
                            "not-owner",
                            format!("operation {id} belongs to another line"),
                        ));
                    }
                }
                (None, Some(_)) if op.state != state::AWAITING_CODE => {
                    // A code typed again after it served: the code is spent.
                    return Err(NetError::forbidden(
                        "code-used",
                        "this code was already used; request a new one",
                    ));
                }
                (None, Some(_)) => {}
                (None, None) => {
                    return Err(NetError::new(
                        401,
                        "auth-required",
                        "continue with the token of the first answer",
                    ))
                }
            }
            if op.state == state::AWAITING_CODE {
                let otp = otp.ok_or_else(|| NetError::missing("otp"))?;
                self.check_code(&op.id, otp)?;
                op.state = state::CODE_VERIFIED.into();
                self.tx(|c| Ok(db::put_operation(c, &op)?))?;
            }
        }
        let fields = self.proceed(&mut op, &request)?;
        Ok(Ts43Answer::Document(self.render(&op, &fields, token)))
    }

    /// Moves an operation forward as far as it can go; answers the APPLICATION fields.
    fn proceed(&self, op: &mut Operation, request: &Request) -> Result<AppFields, NetError> {
        let stored = |op: &Operation| -> AppFields {
            op.result
                .as_deref()
                .and_then(|r| serde_json::from_str::<serde_json::Map<String, Value>>(r).ok())
                .map(AppFields)
                .unwrap_or_default()
        };
        match op.state.as_str() {
            state::DONE => return Ok(stored(op)),
            state::DECLINED => {
                return Ok(AppFields::default()
                    .set("SubscriptionResult", SUBSCRIPTION_RESULT_DISMISS)
                    .set("OperationId", op.id.clone()))
            }
            state::FAILED => {
                return Err(NetError::conflict(
                    "operation-state",
                    format!(
                        "operation {} failed: {}",
                        op.id,
                        op.result.clone().unwrap_or_default()
                    ),
                ))
            }
            state::AWAITING_CONTRACT => {
                let url = self
                    .db(|c| Ok(db::contract_of_operation(c, &op.id)?))?
                    .map(|k| self.contract_url(&k.id))
                    .unwrap_or_default();
                return Ok(self.contract_fields(op, &url));
            }
            state::AWAITING_CODE => {
                return Ok(AppFields::default()
                    .set(
                        "SubscriptionResult",
                        SUBSCRIPTION_RESULT_REQUIRES_USER_INPUT,
                    )
                    .set("ServiceStatus", SERVICE_STATUS_ACTIVATING)
                    .set("OperationId", op.id.clone())
                    .set(
                        "OtpExpiresIn",
                        Self::secs(self.options.code_ttl).to_string(),
                    ))
            }
            _ => {}
        }
        let outcome = match &request.operation {
            Op::Configuration => self.configuration(op),
            Op::Subscribe { eid, bind } => self.subscribe(op, eid, *bind),
            Op::Activate {
                primary,
                secondary,
                ring_mode,
            } => self.activate(op, primary.as_ref(), secondary, *ring_mode),
            Op::Deactivate { primary, secondary } => {
                self.deactivate(op, primary.as_ref(), secondary)
            }
            Op::Transfer { new_eid, .. } => self.transfer(op, request, new_eid),
        };
        match outcome {
            Ok(fields) => Ok(fields),
            Err(e) => {
                // Stored, so the admin API and a continuation see why it ended.
                if e.status >= 500 || e.code == "transfer-in-progress" {
                    op.state = state::FAILED.into();
                    op.result = Some(e.to_string());
                    self.tx(|c| Ok(db::put_operation(c, op)?))?;
                }
                Err(e)
            }
        }
    }

    fn finish(
        &self,
        c: &Connection,
        op: &mut Operation,
        fields: &AppFields,
    ) -> Result<(), NetError> {
        op.state = state::DONE.into();
        op.result = Some(Value::Object(fields.0.clone()).to_string());
        db::put_operation(c, op)?;
        Ok(())
    }

    fn contract_url(&self, id: &str) -> String {
        format!("{}/contract/{id}", self.options.base_url)
    }

    fn contract_fields(&self, op: &Operation, url: &str) -> AppFields {
        let fields = AppFields::default()
            .set("OperationId", op.id.clone())
            .set("SubscriptionServiceURL", url)
            .set(
                "SubscriptionServiceUserData",
                format!("operation_id={}", op.id),
            );
        if op.kind == "activate" {
            fields.set("ServiceStatus", SERVICE_STATUS_ACTIVATING)
        } else {
            fields.set(
                "SubscriptionResult",
                SUBSCRIPTION_RESULT_CONTINUE_TO_WEBSHEET,
            )
        }
    }

    /// Asks for a contract (step 6020 or 6120) and parks the operation.
    fn ask_contract(&self, op: &mut Operation, kind: &str) -> Result<AppFields, NetError> {
        let contract = db::Contract {
            id: format!("c-{}", random_hex(12)),
            operation_id: op.id.clone(),
            msisdn: op.msisdn.clone(),
            kind: kind.to_owned(),
            state: "pending".into(),
            answered_at: None,
        };
        op.state = state::AWAITING_CONTRACT.into();
        self.tx(|c| {
            db::put_contract(c, &contract)?;
            Ok(db::put_operation(c, op)?)
        })?;
        Ok(self.contract_fields(op, &self.contract_url(&contract.id)))
    }

    fn configuration(&self, op: &mut Operation) -> Result<AppFields, NetError> {
        self.tx(|c| {
            let line = match &op.imsi {
                Some(imsi) => db::line(c, imsi)?,
                None => db::lines_of(c, &op.msisdn)?
                    .into_iter()
                    .find(|l| l.state == LineState::Active),
            };
            let mut fields = AppFields::default().set("ServiceStatus", SERVICE_STATUS_ACTIVATED);
            if let Some(line) = line {
                fields = fields.line(&line.view());
                // Fig. 5 step 510: the primary learns the group's state.
                let members = Self::members(c, &line.msisdn)?;
                if members.len() >= 2 {
                    let mode = db::subscriber(c, &line.msisdn)?
                        .map(|s| s.ring_mode)
                        .unwrap_or_default();
                    fields = fields.multi_imsi(&line.msisdn, mode, &members);
                }
            }
            self.finish(c, op, &fields)?;
            Ok(fields)
        })
    }

    /// Whether a line is a secondary of its number's group: bound in from a number of its own,
    /// or born on the shared number (a SharedNumber companion, Fig. 5). Every other line is a
    /// primary of its number (a provisioned card, an own-number companion, a transfer's new
    /// card).
    fn is_secondary(c: &Connection, line: &Line) -> Result<bool, NetError> {
        if line.home_msisdn != line.msisdn {
            return Ok(true);
        }
        Ok(match &line.order_iccid {
            Some(iccid) => db::order(c, iccid)?.is_some_and(|(o, _)| o.purpose == "bind"),
            None => false,
        })
    }

    /// A group never outlives its primary: when `msisdn` has lines left but none of them is a
    /// primary (its primary was deleted, failed or expired), the group ends as an unbinding
    /// ends it — each line bound in from its own number goes back to it, each line born on the
    /// shared number is disabled with `why`.
    fn end_group_without_primary(c: &Connection, msisdn: &str, why: &str) -> Result<(), NetError> {
        let lines: Vec<Line> = db::lines_of(c, msisdn)?
            .into_iter()
            .filter(|l| l.state != LineState::Disabled)
            .collect();
        for l in &lines {
            if !Self::is_secondary(c, l)? {
                return Ok(());
            }
        }
        for mut l in lines {
            if l.home_msisdn != msisdn {
                l.msisdn = l.home_msisdn.clone();
                l.ring_order = db::next_ring_order(c, &l.home_msisdn)?;
            } else {
                l.state = LineState::Disabled;
                l.reason = Some(format!(
                    "the primary line of {msisdn} left the group: {why}"
                ));
            }
            db::update_line(c, &l)?;
        }
        Ok(())
    }

    /// A companion joins a number's group only while the number has its primary line (active
    /// or being provisioned): a group never exists without its primary (the seed's multi-IMSI
    /// single-MSISDN service hangs off the primary's subscription, Fig. 4 / Fig. 11). After a
    /// transfer's new profile was deleted, say, the number has no line left to share.
    fn require_primary(c: &Connection, msisdn: &str) -> Result<(), NetError> {
        for l in db::lines_of(c, msisdn)? {
            if l.state != LineState::Disabled && !Self::is_secondary(c, &l)? {
                return Ok(());
            }
        }
        Err(NetError::forbidden(
            "no-primary",
            format!(
                "{msisdn} has no active primary line to share: a companion cannot join its \
                 group; activate a card on the number first"
            ),
        ))
    }

    /// The members of an MSISDN's group: its lines that are not disabled, in ring order.
    fn members(c: &Connection, msisdn: &str) -> Result<Vec<LineView>, NetError> {
        Ok(db::lines_of(c, msisdn)?
            .iter()
            .filter(|l| l.state != LineState::Disabled)
            .map(Line::view)
            .collect())
    }

    /// A new number for a line that does not share the primary's.
    fn new_msisdn(&self, c: &Connection) -> Result<String, NetError> {
        loop {
            let n: i64 = c
                .prepare_cached(
                    "INSERT INTO counters (name, value) VALUES ('net-msisdn', 1) \
                 ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                )?
                .query_row([], |r| r.get(0))?;
            let msisdn = format!("{MSISDN_PREFIX}{:07}", MSISDN_FIRST + n);
            if db::subscriber(c, &msisdn)?.is_none() && db::lines_of(c, &msisdn)?.is_empty() {
                return Ok(msisdn);
            }
        }
    }

    /// ManageSubscription SUBSCRIBE (Fig. 4 404–407, Fig. 5, Fig. 6 6010–6070, Fig. 14 1402–1405).
    fn subscribe(&self, op: &mut Operation, eid: &str, bind: bool) -> Result<AppFields, NetError> {
        let subscriber = self
            .db(|c| Ok(db::subscriber(c, &op.msisdn)?))?
            .ok_or_else(|| {
                NetError::forbidden("unknown-subscriber", format!("no subscriber {}", op.msisdn))
            })?;
        if bind {
            self.db(|c| Self::require_primary(c, &op.msisdn))?;
        }
        if op.state == state::NEW && subscriber.policy.contract && !subscriber.contract_signed {
            return self.ask_contract(op, "service");
        }
        // The line's number before the order: the profile carries it (EF.MSISDN).
        let msisdn = if bind {
            op.msisdn.clone()
        } else {
            self.tx(|c| self.new_msisdn(c))?
        };
        let ordered = self.order_profile(eid, &msisdn)?;
        self.tx(|c| {
            if bind {
                // Again in the transaction that adds the line: the primary may have left
                // while the profile was ordered.
                Self::require_primary(c, &msisdn)?;
            }
            let account = subscriber.account.clone();
            if !bind {
                db::upsert_subscriber(
                    c,
                    &Subscriber {
                        msisdn: msisdn.clone(),
                        account: account.clone(),
                        policy: subscriber.policy,
                        ring_mode: subscriber.ring_mode,
                        contract_signed: subscriber.contract_signed,
                    },
                )?;
            }
            let line = Line {
                imsi: ordered.imsi.clone(),
                msisdn: msisdn.clone(),
                home_msisdn: msisdn.clone(),
                account,
                iccid: Some(ordered.iccid.clone()),
                eid: Some(eid.to_owned()),
                kind: CardKind::Euicc,
                algorithm: ordered.algorithm.clone(),
                sqn_he: 0,
                state: LineState::Pending,
                reason: None,
                ring_order: db::next_ring_order(c, &msisdn)?,
                ota: None,
                order_iccid: Some(ordered.iccid.clone()),
            };
            db::insert_line(c, &line)?;
            db::put_order(
                c,
                &BossOrder {
                    iccid: ordered.iccid.clone(),
                    operation_id: op.id.clone(),
                    msisdn,
                    eid: eid.to_owned(),
                    imsi: ordered.imsi.clone(),
                    purpose: if bind { "bind" } else { "subscribe" }.into(),
                    state: "released".into(),
                    activation_code: ordered.activation_code.clone(),
                },
            )?;
            let fields = self.download_fields(op, &ordered);
            self.finish(c, op, &fields)?;
            Ok(fields)
        })
    }

    fn download_fields(&self, op: &Operation, ordered: &Ordered) -> AppFields {
        AppFields::default()
            .set("SubscriptionResult", SUBSCRIPTION_RESULT_DOWNLOAD_PROFILE)
            .set("OperationId", op.id.clone())
            .set(
                "DownloadInfo",
                json!({
                    "ProfileActivationCode": ordered.activation_code,
                    "ProfileSmdpAddress": ordered.smdp_address,
                    "ProfileIccid": ordered.iccid,
                }),
            )
    }

    /// Resolves a device identifier to its line.
    fn resolve(c: &Connection, id: &LineId) -> Result<Line, NetError> {
        let found = match id {
            LineId::Imsi(v) => db::line(c, v)?,
            LineId::Iccid(v) => db::line_by_iccid(c, v)?,
            LineId::Eid(v) => db::line_by_eid(c, v)?,
            LineId::Msisdn(v) => {
                let lines = db::lines_of(c, v)?;
                lines
                    .iter()
                    .find(|l| l.home_msisdn == *v && l.state != LineState::Disabled)
                    .or_else(|| lines.first())
                    .cloned()
            }
        };
        found.ok_or_else(|| NetError::forbidden("unknown-subscriber", format!("no line with {id}")))
    }

    /// The primary line of a request: the one named (which must be the caller's), or the
    /// authenticated one.
    fn primary(c: &Connection, op: &Operation, id: Option<&LineId>) -> Result<Line, NetError> {
        let line = match (id, &op.imsi) {
            (Some(id), _) => Self::resolve(c, id)?,
            (None, Some(imsi)) => Self::usable(db::line(c, imsi)?, imsi)?,
            (None, None) => db::lines_of(c, &op.msisdn)?
                .into_iter()
                .find(|l| l.state == LineState::Active)
                .ok_or_else(|| {
                    NetError::forbidden(
                        "unknown-subscriber",
                        format!("no active line for {}", op.msisdn),
                    )
                })?,
        };
        if line.msisdn != op.msisdn {
            return Err(NetError::forbidden(
                "not-owner",
                format!("{} is not the authenticated line {}", line.imsi, op.msisdn),
            ));
        }
        Ok(line)
    }

    /// ManageService ACTIVATE_SERVICE: multi-IMSI single-MSISDN binding (Fig. 4 410, Fig. 6
    /// 6110–6160 with the optional 6120 and 6130, Fig. 11 1104, Fig. 12).
    fn activate(
        &self,
        op: &mut Operation,
        primary: Option<&LineId>,
        secondary: &LineId,
        ring_mode: Option<db::RingMode>,
    ) -> Result<AppFields, NetError> {
        let (primary_line, second, subscriber) = self.db(|c| {
            let p = Self::primary(c, op, primary)?;
            let s = Self::resolve(c, secondary)?;
            let sub = db::subscriber(c, &p.msisdn)?.ok_or_else(|| {
                NetError::forbidden("unknown-subscriber", format!("no subscriber {}", p.msisdn))
            })?;
            Ok((p, s, sub))
        })?;
        if second.msisdn == primary_line.msisdn {
            return Err(NetError::conflict(
                "already-in-group",
                format!("{} already shares {}", second.imsi, primary_line.msisdn),
            ));
        }
        if second.state == LineState::Disabled {
            return Self::usable(Some(second.clone()), &second.imsi).map(|_| AppFields::default());
        }
        // A primary with a group of its own would leave that group without it.
        let others = self.db(|c| {
            Ok(!Self::is_secondary(c, &second)? && Self::members(c, &second.msisdn)?.len() > 1)
        })?;
        if others {
            return Err(NetError::conflict(
                "already-in-group",
                format!(
                    "{} is the primary line of {}'s group; unbind its members first",
                    second.imsi, second.msisdn
                ),
            ));
        }
        let own = second.account == subscriber.account;
        if op.state == state::NEW && subscriber.policy.binding_contract {
            return self.ask_contract(op, "binding");
        }
        let code_needed = !own || subscriber.policy.second_device_code;
        if code_needed && op.state != state::CODE_VERIFIED {
            op.state = state::AWAITING_CODE.into();
            let target = second.msisdn.clone();
            self.tx(|c| {
                db::put_operation(c, op)?;
                self.send_code(c, &target, "second device", &op.id)
            })?;
            return Ok(AppFields::default()
                .set(
                    "SubscriptionResult",
                    SUBSCRIPTION_RESULT_REQUIRES_USER_INPUT,
                )
                .set("ServiceStatus", SERVICE_STATUS_ACTIVATING)
                .set("OperationId", op.id.clone())
                .set(
                    "OtpExpiresIn",
                    Self::secs(self.options.code_ttl).to_string(),
                ));
        }
        self.tx(|c| {
            let mut s =
                db::line(c, &second.imsi)?.ok_or_else(|| NetError::internal("line vanished"))?;
            if s.msisdn == primary_line.msisdn {
                return Err(NetError::conflict(
                    "already-in-group",
                    format!("{} already shares {}", s.imsi, primary_line.msisdn),
                ));
            }
            s.msisdn = primary_line.msisdn.clone();
            s.account = subscriber.account.clone();
            s.ring_order = db::next_ring_order(c, &primary_line.msisdn)?;
            db::update_line(c, &s)?;
            let mut sub = subscriber.clone();
            if let Some(mode) = ring_mode {
                sub.ring_mode = mode;
                db::upsert_subscriber(c, &sub)?;
            }
            let members = Self::members(c, &primary_line.msisdn)?;
            let fields = AppFields::default()
                .set("ServiceStatus", SERVICE_STATUS_ACTIVATED)
                .set("OperationId", op.id.clone())
                .multi_imsi(&primary_line.msisdn, sub.ring_mode, &members);
            self.finish(c, op, &fields)?;
            Ok(fields)
        })
    }

    /// ManageService DEACTIVATE_SERVICE: unbinding (Fig. 13 1304–1305).
    fn deactivate(
        &self,
        op: &mut Operation,
        primary: Option<&LineId>,
        secondary: &LineId,
    ) -> Result<AppFields, NetError> {
        self.tx(|c| {
            let p = Self::primary(c, op, primary)?;
            let mut s = Self::resolve(c, secondary)?;
            if s.msisdn != p.msisdn || s.state == LineState::Disabled {
                return Err(NetError::conflict(
                    "not-in-group",
                    format!("{} does not share {}", s.imsi, p.msisdn),
                ));
            }
            // Unbinding takes a secondary out; the number's own line leaves only by a transfer
            // or the end of its subscription.
            if !Self::is_secondary(c, &s)? {
                return Err(NetError::invalid(
                    "companion_terminal",
                    format!("{} is the primary line of {} itself", s.imsi, p.msisdn),
                ));
            }
            if s.home_msisdn != p.msisdn {
                s.msisdn = s.home_msisdn.clone();
                s.ring_order = db::next_ring_order(c, &s.home_msisdn)?;
            } else {
                s.state = LineState::Disabled;
                s.reason = Some(format!("unbound from {}", p.msisdn));
            }
            db::update_line(c, &s)?;
            let sub = db::subscriber(c, &p.msisdn)?
                .map(|s| s.ring_mode)
                .unwrap_or_default();
            let members = Self::members(c, &p.msisdn)?;
            let fields = AppFields::default()
                .set("ServiceStatus", SERVICE_STATUS_DEACTIVATED)
                .set("OperationId", op.id.clone())
                .multi_imsi(&p.msisdn, sub, &members);
            self.finish(c, op, &fields)?;
            Ok(fields)
        })
    }

    /// The old card of an upgrade / migration: the one named, or the number's first line.
    fn transfer_source(&self, c: &Connection, request: &Request) -> Result<Line, NetError> {
        let Op::Transfer {
            msisdn,
            transfer_type,
            old_iccid,
            ..
        } = &request.operation
        else {
            return Err(NetError::internal("not a transfer"));
        };
        let lines = db::lines_of(c, msisdn)?;
        if lines.is_empty() {
            return Err(NetError::forbidden(
                "unknown-subscriber",
                format!("no subscriber {msisdn}"),
            ));
        }
        let old = match old_iccid {
            Some(iccid) => lines
                .iter()
                .find(|l| l.iccid.as_deref() == Some(iccid.as_str()))
                .ok_or_else(|| {
                    NetError::invalid(
                        "old_terminal_iccid",
                        format!("{iccid} is not a card of {msisdn}"),
                    )
                })?,
            None => {
                // The number's own card (its primary), never a secondary sharing it.
                let mut found = None;
                for l in &lines {
                    if l.state == LineState::Active && !Self::is_secondary(c, l)? {
                        found = Some(l);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    NetError::forbidden(
                        "imsi-disabled",
                        format!("{msisdn} has no active card of its own to move from"),
                    )
                })?
            }
        };
        let old = Self::usable(Some(old.clone()), &old.imsi)?;
        match (transfer_type, old.kind) {
            (Some(TransferType::Upgrade), CardKind::Euicc) => Err(NetError::invalid(
                "transfer_type",
                format!("upgrade is from a UICC, but {msisdn}'s card is an eUICC: use migration"),
            )),
            (Some(TransferType::Migration), CardKind::Uicc) => Err(NetError::invalid(
                "transfer_type",
                format!("migration is from an eUICC, but {msisdn}'s card is a UICC: use upgrade"),
            )),
            _ => Ok(old),
        }
    }

    /// ManageSubscription TRANSFER_SUBSCRIPTION after the code: reserve the number (exactly
    /// one pending transfer per MSISDN, for `--transfer-ttl`), order the profile (Fig. 16
    /// 1605–1608, Fig. 17). A lapsed reservation of another request does not block: it is
    /// expired first ([`Self::expire_transfers`]).
    fn transfer(
        &self,
        op: &mut Operation,
        _request: &Request,
        new_eid: &str,
    ) -> Result<AppFields, NetError> {
        let old_imsi = op
            .imsi
            .clone()
            .ok_or_else(|| NetError::internal("transfer without old card"))?;
        let reserve = || {
            self.tx(|c| {
                let old = Self::usable(db::line(c, &old_imsi)?, &old_imsi)?;
                let id = db::reserve_transfer(
                    c,
                    &db::Transfer {
                        id: 0,
                        msisdn: op.msisdn.clone(),
                        operation_id: op.id.clone(),
                        old_imsi: old.imsi.clone(),
                        new_eid: new_eid.to_owned(),
                        order_iccid: None,
                        state: "pending".into(),
                        created_at: 0,
                        expires_at: Some(Self::ttl(self.options.transfer_ttl)),
                        reason: None,
                    },
                )?;
                Ok((id, old))
            })
        };
        let mut reserved = reserve()?;
        if reserved.0.is_none() && !self.expire_transfers()?.is_empty() {
            reserved = reserve()?;
        }
        let (Some(transfer_id), old) = reserved else {
            return Err(NetError::conflict(
                "transfer-in-progress",
                format!("another upgrade or migration of {} is pending", op.msisdn),
            ));
        };
        let ordered = match self.order_profile(new_eid, &op.msisdn) {
            Ok(o) => o,
            Err(e) => {
                let why = format!("the profile could not be ordered: {}", e.message);
                self.tx(|c| Ok(db::end_transfer(c, transfer_id, "failed", &why)?))?;
                return Err(e);
            }
        };
        let placed = self.tx(|c| {
            // The reservation may have lapsed while the SM-DP+ was asked (a very short
            // --transfer-ttl): then nothing is recorded and the new order is cancelled.
            if db::transfer(c, transfer_id)?.is_none_or(|t| t.state != "pending") {
                return Ok(None);
            }
            let line = Line {
                imsi: ordered.imsi.clone(),
                msisdn: op.msisdn.clone(),
                home_msisdn: op.msisdn.clone(),
                account: old.account.clone(),
                iccid: Some(ordered.iccid.clone()),
                eid: Some(new_eid.to_owned()),
                kind: CardKind::Euicc,
                algorithm: ordered.algorithm.clone(),
                sqn_he: 0,
                state: LineState::Pending,
                reason: None,
                ring_order: old.ring_order,
                ota: None,
                order_iccid: Some(ordered.iccid.clone()),
            };
            db::insert_line(c, &line)?;
            db::put_order(
                c,
                &BossOrder {
                    iccid: ordered.iccid.clone(),
                    operation_id: op.id.clone(),
                    msisdn: op.msisdn.clone(),
                    eid: new_eid.to_owned(),
                    imsi: ordered.imsi.clone(),
                    purpose: "transfer".into(),
                    state: es2::state::RELEASED.into(),
                    activation_code: ordered.activation_code.clone(),
                },
            )?;
            db::set_transfer(c, transfer_id, "pending", Some(&ordered.iccid))?;
            let fields = self.download_fields(op, &ordered);
            self.finish(c, op, &fields)?;
            Ok(Some(fields))
        })?;
        placed.ok_or_else(|| {
            let _ = self.cancel_order(&ordered.iccid, new_eid, "the reservation lapsed");
            NetError::conflict(
                "transfer-expired",
                format!(
                    "the reservation of {} lapsed before the profile was ordered; ask again",
                    op.msisdn
                ),
            )
        })
    }

    /// Ends every pending transfer whose reservation lapsed (`--transfer-ttl`), so that no
    /// transfer keeps its number reserved forever:
    ///
    /// - download not begun (the SM-DP+ last reported the order released): the order is
    ///   cancelled at the SM-DP+ first, over ES2+.CancelOrder (SGP.22 §5.3.3,
    ///   finalProfileStatusIndicator "Unavailable": its activation code is refused from then
    ///   on); when the SM-DP+ does not confirm (the download began meanwhile, or it is
    ///   unreachable) the transfer stays pending, untouched, for the next sweep;
    /// - downloaded but never enabled (downloaded, installed, or disabled): the SM-DP+ cannot
    ///   cancel an order whose profile is out (§5.3.3 applies to orders not yet downloaded,
    ///   and ES2+ in SGP.22 v2 has no function to delete a profile on an eUICC), so the BOSS
    ///   ends it on its own side — the new IMSI is disabled (the profile on the eUICC can no
    ///   longer attach) and the old card, still in service, gets an SMS saying so;
    ///
    /// then in one transaction the transfer becomes `expired` with the reason, the new line
    /// `disabled`, a cancelled order `unavailable` and the operation `failed` — the number is
    /// transferable again and the old card keeps it. A later enable of the expired profile
    /// changes no line (the transfer completes only from a pending line). Runs on a timer
    /// ([`super::server::start`]) and when a new transfer finds the number reserved. Answers
    /// the transfers it ended.
    pub fn expire_transfers(&self) -> Result<Vec<db::Transfer>, NetError> {
        let ttl = self.options.transfer_ttl.as_secs() as i64;
        let lapsed = self.db(|c| {
            let mut out = Vec::new();
            for t in db::lapsed_transfers(c, db::now(), ttl, ORPHAN_GRACE)? {
                let order = match &t.order_iccid {
                    Some(iccid) => db::order(c, iccid)?.map(|(o, _)| o),
                    None => None,
                };
                out.push((t, order));
            }
            Ok(out)
        })?;
        let mut ended = Vec::new();
        for (t, order) in lapsed {
            // The download has begun once the SM-DP+ reported anything past `released`.
            let downloaded = order
                .as_ref()
                .filter(|o| o.state != es2::state::RELEASED)
                .cloned();
            if downloaded.is_none() {
                if let Some(iccid) = &t.order_iccid {
                    if self
                        .cancel_order(iccid, &t.new_eid, "transfer expired")
                        .is_err()
                    {
                        continue;
                    }
                }
            }
            let reason = match (&t.order_iccid, &downloaded) {
                (_, Some(o)) => format!(
                    "profile {} {} on EID {} but not enabled within {ttl} s (--transfer-ttl); \
                     the SM-DP+ cannot cancel a downloaded order, so its IMSI is disabled",
                    o.iccid, o.state, o.eid
                ),
                (Some(iccid), None) => format!(
                    "no download within {ttl} s (--transfer-ttl): order {iccid} cancelled at \
                     the SM-DP+ (ES2+.CancelOrder, Unavailable)"
                ),
                (None, None) => format!(
                    "interrupted before the profile was ordered; lapsed after {ttl} s \
                     (--transfer-ttl)"
                ),
            };
            let done = self.tx(|c| {
                if !db::end_transfer(c, t.id, "expired", &reason)? {
                    return Ok(None);
                }
                if let Some(iccid) = &t.order_iccid {
                    if let Some((order, _)) = db::order(c, iccid)? {
                        if downloaded.is_none() {
                            db::set_order_state(c, iccid, es2::state::UNAVAILABLE, db::now())?;
                        }
                        if let Some(mut line) = db::line(c, &order.imsi)? {
                            if line.state == LineState::Pending {
                                line.state = LineState::Disabled;
                                line.reason = Some(format!("transfer expired: {reason}"));
                                db::update_line(c, &line)?;
                                Self::end_group_without_primary(
                                    c,
                                    &line.msisdn,
                                    "transfer expired",
                                )?;
                            }
                        }
                        if downloaded.is_some() {
                            Self::tell_old_card_transfer_expired(c, &t, &order)?;
                        }
                    }
                }
                if let Some(mut op) = db::operation(c, &t.operation_id)? {
                    op.state = state::FAILED.into();
                    op.result = Some(format!("transfer expired: {reason}"));
                    db::put_operation(c, &op)?;
                }
                Ok(db::transfer(c, t.id)?)
            })?;
            ended.extend(done);
        }
        Ok(ended)
    }

    /// A text SMS to the old card of an expired transfer whose profile is on the new eUICC:
    /// that profile will not attach and should be deleted; the number stays on the old card.
    fn tell_old_card_transfer_expired(
        c: &Connection,
        t: &db::Transfer,
        order: &BossOrder,
    ) -> Result<(), NetError> {
        let Some(old) = db::line(c, &t.old_imsi)? else {
            return Ok(());
        };
        if old.state != LineState::Active {
            return Ok(());
        }
        let text = format!(
            "simlab: moving your number {} to EID {} expired before profile {} was enabled; \
             that profile will not work, delete it; your number stays on this card",
            t.msisdn, order.eid, order.iccid
        );
        db::insert_sms(c, &t.msisdn, SMS_SENDER, &text, "text", None, &[old.imsi])?;
        Ok(())
    }

    /// Every upgrade / migration (admin API).
    pub fn transfers(&self) -> Result<Vec<db::Transfer>, NetError> {
        self.db(|c| Ok(db::transfers(c)?))
    }

    // ----- Contract page (WS 1032) -----

    /// The contract and what it is for.
    pub fn contract(&self, id: &str) -> Result<(db::Contract, Operation), NetError> {
        self.db(|c| {
            let k = db::contract(c, id)?
                .ok_or_else(|| NetError::not_found(format!("no contract {id}")))?;
            let op = db::operation(c, &k.operation_id)?
                .ok_or_else(|| NetError::internal("contract without operation"))?;
            Ok((k, op))
        })
    }

    /// The user's answer on the contract page (step 6030); accept continues the operation at
    /// once (6040–6060), decline ends it with nothing created.
    pub fn answer_contract(&self, id: &str, accept: bool) -> Result<ContractOutcome, NetError> {
        let (mut op, contract) = self.tx(|c| {
            let mut k = db::contract(c, id)?
                .ok_or_else(|| NetError::not_found(format!("no contract {id}")))?;
            if k.state != "pending" {
                return Err(NetError::conflict(
                    "operation-state",
                    format!("contract {id} was already {}", k.state),
                ));
            }
            let mut op = db::operation(c, &k.operation_id)?
                .ok_or_else(|| NetError::internal("contract without operation"))?;
            k.state = if accept { "accepted" } else { "declined" }.into();
            k.answered_at = Some(db::now());
            db::put_contract(c, &k)?;
            if accept {
                if k.kind == "service" {
                    if let Some(mut sub) = db::subscriber(c, &k.msisdn)? {
                        sub.contract_signed = true;
                        db::upsert_subscriber(c, &sub)?;
                    }
                }
                op.state = state::CONTRACT_ACCEPTED.into();
            } else {
                op.state = state::DECLINED.into();
                op.result =
                    Some(json!({"SubscriptionResult": SUBSCRIPTION_RESULT_DISMISS}).to_string());
            }
            db::put_operation(c, &op)?;
            Ok((op, k))
        })?;
        if !accept {
            return Ok(ContractOutcome {
                contract,
                message: "You declined. Nothing was ordered or changed.".into(),
            });
        }
        let stored: Params =
            serde_json::from_str(&op.request).map_err(|e| NetError::internal(e.to_string()))?;
        let request = Request::parse(&stored)?;
        let fields = self.proceed(&mut op, &request)?;
        let message = if fields.0.contains_key("DownloadInfo") {
            "Thank you. Your profile is ordered; return to your device to download it.".to_owned()
        } else if op.state == state::AWAITING_CODE {
            "Thank you. A code was sent to the second device; type it on your device.".to_owned()
        } else {
            "Thank you. Your request is done; return to your device.".to_owned()
        };
        Ok(ContractOutcome { contract, message })
    }

    // ----- HLR, calls -----

    /// `GET /hlr/imsi/{imsi}`.
    pub fn hlr_record(&self, imsi: &str) -> Result<HlrRecord, NetError> {
        let imsi = ts43::check_imsi("imsi", imsi)?;
        let line = self.db(|c| Ok(db::line(c, &imsi)?))?.ok_or_else(|| {
            NetError::forbidden(
                "unknown-subscriber",
                format!("IMSI {imsi} is not a subscriber of this network"),
            )
        })?;
        Ok(HlrRecord {
            can_attach: line.state == LineState::Active,
            imsi: line.imsi,
            msisdn: line.msisdn,
            state: line.state,
            reason: line.reason,
        })
    }

    /// `POST /hlr/attach`: network authentication of an IMSI (TS 33.102 §6.3).
    pub fn attach(&self, imsi: &str) -> Result<AttachChallenge, NetError> {
        let imsi = ts43::check_imsi("imsi", imsi)?;
        let session = format!("att-{}", random_hex(16));
        self.tx(|c| {
            let mut line = Self::usable(db::line(c, &imsi)?, &imsi)?;
            self.attach_vector(c, &mut line, &session, 0)
        })
    }

    fn attach_vector(
        &self,
        c: &Connection,
        line: &mut Line,
        session: &str,
        resyncs: u32,
    ) -> Result<AttachChallenge, NetError> {
        let sqn = next_sqn(line.sqn_he, 0, IND_BITS);
        line.sqn_he = sqn;
        db::update_line(c, line)?;
        let mut rand = [0u8; 16];
        rand::thread_rng().fill(&mut rand);
        let v = aka::generate_vector(&line.algorithm, sqn, AMF, &rand);
        db::put_auth_session(
            c,
            &db::AuthSession {
                id: session.to_owned(),
                kind: "attach".into(),
                imsi: line.imsi.clone(),
                identity: line.imsi.clone(),
                identifier: 0,
                rand,
                xres: v.xres.clone(),
                k_aut: [0; 16],
                resyncs,
                request: "{}".into(),
                expires_at: Self::ttl(self.options.code_ttl),
            },
        )?;
        Ok(AttachChallenge {
            session: session.to_owned(),
            rand: hex::encode_upper(rand),
            autn: hex::encode_upper(v.autn),
        })
    }

    /// `POST /hlr/attach/{session}` with RES, or AUTS after a synchronisation failure.
    pub fn attach_answer(
        &self,
        session: &str,
        res: Option<&str>,
        auts: Option<&str>,
    ) -> Result<Result<Attached, AttachChallenge>, NetError> {
        let unknown = || NetError::not_found(format!("no attach session {session}"));
        let s = self
            .db(|c| Ok(db::auth_session(c, session)?))?
            .filter(|s| s.kind == "attach")
            .ok_or_else(unknown)?;
        if db::now() > s.expires_at {
            self.tx(|c| Ok(db::delete_auth_session(c, session)?))?;
            return Err(unknown());
        }
        match (res, auts) {
            (Some(res), None) => {
                let res = hex::decode(res.trim())
                    .map_err(|_| NetError::invalid("res", "expected hex"))?;
                self.tx(|c| {
                    db::delete_auth_session(c, session)?;
                    let line = Self::usable(db::line(c, &s.imsi)?, &s.imsi)?;
                    if res.len() == s.xres.len()
                        && res.iter().zip(&s.xres).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
                    {
                        Ok(Ok(Attached {
                            attached: true,
                            msisdn: line.msisdn,
                        }))
                    } else {
                        Err(NetError::forbidden(
                            "auth-failed",
                            "RES differs from XRES: the card holds another key",
                        ))
                    }
                })
            }
            (None, Some(auts)) => {
                let auts: [u8; 14] = hex::decode(auts.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| NetError::invalid("auts", "expected 28 hex digits"))?;
                self.tx(|c| {
                    let mut line = Self::usable(db::line(c, &s.imsi)?, &s.imsi)?;
                    if s.resyncs >= MAX_RESYNCS {
                        db::delete_auth_session(c, session)?;
                        return Err(NetError::forbidden(
                            "auth-failed",
                            "too many resynchronisations",
                        ));
                    }
                    let sqn_ms =
                        aka::resynchronise(&line.algorithm, &s.rand, &auts).map_err(|_| {
                            NetError::forbidden(
                                "auth-failed",
                                "AUTS: MAC-S is wrong (TS 33.102 §6.3.5)",
                            )
                        })?;
                    line.sqn_he = sqn_ms;
                    self.attach_vector(c, &mut line, session, s.resyncs + 1)
                        .map(Err)
                })
            }
            _ => Err(NetError::bad_request("give exactly one of res and auts")),
        }
    }

    /// `POST /calls`: who rings, in which order (the seed's FA and MAH).
    pub fn call(&self, to: &str, answering: Option<&[String]>) -> Result<CallResult, NetError> {
        let to = ts43::normalise_msisdn("to", to)?;
        let (lines, mode) = self.db(|c| {
            let lines = db::lines_of(c, &to)?;
            let mode = db::subscriber(c, &to)?
                .map(|s| s.ring_mode)
                .unwrap_or_default();
            Ok((lines, mode))
        })?;
        if lines.is_empty() {
            return Err(NetError::forbidden(
                "unknown-subscriber",
                format!("no subscriber {to}"),
            ));
        }
        let (ringing, not_ringing): (Vec<&Line>, Vec<&Line>) =
            lines.iter().partition(|l| l.state == LineState::Active);
        let not_ringing: Vec<NotRinging> = not_ringing
            .into_iter()
            .map(|l| NotRinging {
                imsi: l.imsi.clone(),
                reason: match l.state {
                    LineState::Pending => "profile not installed yet".to_owned(),
                    _ => l.reason.clone().unwrap_or_else(|| "disabled".into()),
                },
            })
            .collect();
        let answers = |imsi: &str| answering.is_none_or(|a| a.iter().any(|x| x == imsi));
        let imsis: Vec<String> = ringing.iter().map(|l| l.imsi.clone()).collect();
        let mode_name = if lines.len() < 2 {
            "single"
        } else {
            mode.as_str()
        };
        let (rings, answered_by) = match mode {
            db::RingMode::Mah if lines.len() >= 2 => {
                let mut rings = Vec::new();
                let mut answered = None;
                for (i, imsi) in imsis.iter().enumerate() {
                    rings.push(RingStep {
                        step: i as u32 + 1,
                        imsis: vec![imsi.clone()],
                    });
                    if answers(imsi) {
                        answered = Some(imsi.clone());
                        break;
                    }
                }
                (rings, answered)
            }
            _ => {
                let answered = imsis.iter().find(|i| answers(i)).cloned();
                let rings = if imsis.is_empty() {
                    Vec::new()
                } else {
                    vec![RingStep {
                        step: 1,
                        imsis: imsis.clone(),
                    }]
                };
                (rings, answered)
            }
        };
        Ok(CallResult {
            to,
            mode: mode_name.into(),
            rings,
            answered_by,
            not_ringing,
        })
    }

    // ----- OTA sender (issue 8) -----

    /// `POST /ota/commands`: a secured packet for a card, as SMS-PP into its inbox.
    pub fn ota_send(
        &self,
        request: &super::ota::OtaRequest,
    ) -> Result<super::ota::OtaJob, NetError> {
        let imsi = ts43::check_imsi("imsi", &request.imsi)?;
        self.tx(|c| {
            let line = db::line(c, &imsi)?.ok_or_else(|| {
                NetError::forbidden("unknown-subscriber", format!("no IMSI {imsi}"))
            })?;
            super::ota::send(c, &line, request)
        })
    }

    /// `POST /ota/por`: the PoR the device got from its card.
    pub fn ota_por(&self, job: &str, por: &str) -> Result<super::ota::OtaJob, NetError> {
        self.tx(|c| super::ota::por(c, job, por))
    }

    pub fn ota_jobs(&self) -> Result<Vec<super::ota::OtaJob>, NetError> {
        self.db(super::ota::all)
    }

    // ----- Admin API (read-only) -----

    pub fn subscribers(&self) -> Result<Vec<SubscriberView>, NetError> {
        self.db(|c| {
            // One pass over the lines (in ring order per number), not one per subscriber.
            let mut lines = std::collections::HashMap::<String, Vec<LineView>>::new();
            for l in db::all_lines(c)? {
                lines.entry(l.msisdn.clone()).or_default().push(l.view());
            }
            Ok(db::subscribers(c)?
                .into_iter()
                .map(|s| {
                    let imsis = lines.remove(&s.msisdn);
                    Self::subscriber_view(s, imsis)
                })
                .collect())
        })
    }

    pub fn subscriber(&self, msisdn: &str) -> Result<SubscriberView, NetError> {
        let msisdn = ts43::normalise_msisdn("msisdn", msisdn)?;
        // Only this number's rows: a flow asks for its own subscriber while hundreds run.
        self.db(|c| {
            let Some(s) = db::subscriber(c, &msisdn)? else {
                return Ok(None);
            };
            let lines = db::lines_of(c, &msisdn)?.iter().map(Line::view).collect();
            Ok(Some(Self::subscriber_view(s, Some(lines))))
        })?
        .ok_or_else(|| NetError::not_found(format!("no subscriber {msisdn}")))
    }

    fn subscriber_view(s: Subscriber, imsis: Option<Vec<LineView>>) -> SubscriberView {
        SubscriberView {
            imsis: imsis.unwrap_or_default(),
            msisdn: s.msisdn,
            account: s.account,
            policy: s.policy,
            ring_mode: s.ring_mode,
            contract_signed: s.contract_signed,
        }
    }

    pub fn line(&self, imsi: &str) -> Result<LineView, NetError> {
        let imsi = ts43::check_imsi("imsi", imsi)?;
        self.db(|c| Ok(db::line(c, &imsi)?))?
            .map(|l| l.view())
            .ok_or_else(|| NetError::not_found(format!("no IMSI {imsi}")))
    }

    pub fn groups(&self) -> Result<Vec<GroupView>, NetError> {
        Ok(self
            .subscribers()?
            .into_iter()
            .map(|s| GroupView {
                msisdn: s.msisdn,
                ring_mode: s.ring_mode,
                members: s
                    .imsis
                    .into_iter()
                    .filter(|l| l.state != LineState::Disabled)
                    .collect(),
            })
            .filter(|g| g.members.len() >= 2)
            .collect())
    }

    /// The BOSS's orders with the state the SM-DP+ last reported for each over ES2+.
    pub fn orders(&self) -> Result<Vec<OrderView>, NetError> {
        Ok(self
            .db(|c| Ok(db::orders(c)?))?
            .into_iter()
            .map(|o| OrderView {
                smdp_state: Some(o.state.clone()),
                order: o,
            })
            .collect())
    }

    /// Every ES2+.HandleDownloadProgressInfo event received, with what the BOSS did with it.
    pub fn order_events(&self) -> Result<Vec<db::OrderEvent>, NetError> {
        self.db(|c| Ok(db::order_events(c)?))
    }

    pub fn operations(&self) -> Result<Vec<OperationView>, NetError> {
        Ok(self
            .db(|c| Ok(db::operations(c)?))?
            .into_iter()
            .map(|o| OperationView {
                params: serde_json::from_str(&o.request).unwrap_or(Value::Null),
                result: o
                    .result
                    .as_deref()
                    .map(|r| serde_json::from_str(r).unwrap_or_else(|_| json!(r))),
                id: o.id,
                kind: o.kind,
                app: o.app,
                msisdn: o.msisdn,
                state: o.state,
            })
            .collect())
    }

    pub fn sms(&self) -> Result<Vec<db::Sms>, NetError> {
        self.db(|c| Ok(db::all_sms(c)?))
    }

    pub fn contracts(&self) -> Result<Vec<db::Contract>, NetError> {
        self.db(|c| Ok(db::contracts(c)?))
    }
}

/// The EAP relay body (`{"eap-relay-packet": base64}`), decoded.
pub fn relay_packet(body: &[u8]) -> Result<Vec<u8>, NetError> {
    use base64::Engine as _;
    #[derive(Deserialize)]
    struct Relay {
        #[serde(rename = "eap-relay-packet")]
        packet: String,
    }
    let relay: Relay = serde_json::from_slice(body).map_err(|e| {
        NetError::bad_request(format!(
            "body must be {{\"eap-relay-packet\": base64}}: {e}"
        ))
    })?;
    base64::engine::general_purpose::STANDARD
        .decode(relay.packet.trim())
        .map_err(|e| {
            NetError::new(
                400,
                "eap-malformed",
                format!("eap-relay-packet is not base64: {e}"),
            )
        })
}

/// Re-exported for devices: the identity a USIM's IMSI authenticates with.
pub fn identity_for(imsi: &str, mnc_len: usize) -> String {
    eap_aka::permanent_identity(imsi, mnc_len)
}
