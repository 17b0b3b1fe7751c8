//! The operator network's tables (`net_*`, docs/network.md §8) — in the SM-DP+'s SQLite
//! database when both run in one process, else in one of the network's own — and typed access
//! to them. Every function takes the connection the caller holds under the database's lock;
//! state changes run inside one transaction opened by the caller.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use simlab_emulator::aka::AkaAlgorithm;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS net_subscribers (
    msisdn TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    policy TEXT NOT NULL,
    ring_mode TEXT NOT NULL,
    contract_signed INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_lines (
    imsi TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    home_msisdn TEXT NOT NULL,
    account TEXT NOT NULL,
    iccid TEXT UNIQUE,
    eid TEXT,
    kind TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    sqn_he INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    ring_order INTEGER NOT NULL,
    ota TEXT,
    order_iccid TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS net_lines_msisdn ON net_lines(msisdn);
CREATE INDEX IF NOT EXISTS net_lines_eid ON net_lines(eid);
CREATE TABLE IF NOT EXISTS net_auth_sessions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    imsi TEXT NOT NULL,
    identity TEXT NOT NULL,
    identifier INTEGER NOT NULL,
    rand TEXT NOT NULL,
    xres TEXT NOT NULL,
    k_aut TEXT NOT NULL,
    resyncs INTEGER NOT NULL DEFAULT 0,
    request TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_tokens (
    token TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    imsi TEXT,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_codes (
    id TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    purpose TEXT NOT NULL,
    salt TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    max_tries INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    locked_at INTEGER,
    operation_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    app TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    imsi TEXT,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    result TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_transfers (
    id INTEGER PRIMARY KEY,
    msisdn TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    old_imsi TEXT NOT NULL,
    new_eid TEXT NOT NULL,
    order_iccid TEXT,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS net_transfers_one_pending
    ON net_transfers(msisdn) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS net_contracts (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    answered_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_orders (
    iccid TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    eid TEXT NOT NULL,
    imsi TEXT NOT NULL,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    activation_code TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_order_events (
    id INTEGER PRIMARY KEY,
    iccid TEXT NOT NULL,
    point INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    event_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS net_sms (
    id INTEGER PRIMARY KEY,
    msisdn TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_data TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS net_sms_deliveries (
    sms_id INTEGER NOT NULL,
    imsi TEXT NOT NULL,
    PRIMARY KEY (sms_id, imsi)
);
CREATE TABLE IF NOT EXISTS net_ota_jobs (
    id TEXT PRIMARY KEY,
    imsi TEXT NOT NULL,
    request TEXT NOT NULL,
    sms_id INTEGER,
    state TEXT NOT NULL,
    por TEXT,
    outcome TEXT,
    created_at INTEGER NOT NULL
);
";

/// Columns added after the first release of the schema: `(table, column, definition)`. A
/// database written before gets them when the network opens it.
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("net_codes", "expires_ms", "INTEGER"),
    ("net_orders", "event_at", "INTEGER NOT NULL DEFAULT 0"),
    ("net_transfers", "expires_at", "INTEGER"),
    ("net_transfers", "reason", "TEXT"),
];

/// Indexes for the lookups of every request (after [`ADDED_COLUMNS`]: an older database gets
/// them too). Without them each of these lookups scanned its whole table, so a request cost
/// grew with every flow the network had served: an SMS inbox poll (by IMSI) walked every SMS
/// after the poller's cursor, a code, transfer or contract was found by its operation through
/// all of them.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS net_sms_deliveries_imsi ON net_sms_deliveries(imsi, sms_id);
CREATE INDEX IF NOT EXISTS net_codes_operation ON net_codes(operation_id);
CREATE INDEX IF NOT EXISTS net_transfers_operation ON net_transfers(operation_id);
CREATE INDEX IF NOT EXISTS net_contracts_operation ON net_contracts(operation_id);
";

/// Creates the tables, adds the columns an older database lacks, then the indexes.
pub fn create(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(SCHEMA)?;
    for (table, column, definition) in ADDED_COLUMNS {
        let mut stmt = c.prepare(&format!("PRAGMA table_info({table})"))?;
        let present = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .iter()
            .any(|name| name == column);
        if !present {
            c.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    c.execute_batch(INDEXES)
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A card type (the seed's UICC and eUICC devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardKind {
    Uicc,
    Euicc,
}

impl CardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CardKind::Uicc => "uicc",
            CardKind::Euicc => "euicc",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "uicc" => Some(CardKind::Uicc),
            "euicc" => Some(CardKind::Euicc),
            _ => None,
        }
    }
}

/// The state of an IMSI in the HLR/BOSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineState {
    /// Ordered at the SM-DP+, profile not installed yet.
    Pending,
    Active,
    Disabled,
}

impl LineState {
    pub fn as_str(self) -> &'static str {
        match self {
            LineState::Pending => "pending",
            LineState::Active => "active",
            LineState::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(LineState::Pending),
            "active" => Some(LineState::Active),
            "disabled" => Some(LineState::Disabled),
            _ => None,
        }
    }
}

/// Call delivery of a multi-IMSI single-MSISDN group (the seed's FA and MAH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RingMode {
    /// Flexible alerting: every member rings at once.
    #[default]
    #[serde(rename = "FA")]
    Fa,
    /// Mobile access hunting: members ring one after the other in ring order.
    #[serde(rename = "MAH")]
    Mah,
}

impl RingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RingMode::Fa => "FA",
            RingMode::Mah => "MAH",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "FA" => Some(RingMode::Fa),
            "MAH" => Some(RingMode::Mah),
            _ => None,
        }
    }
}

/// What the operator asks of a subscriber's requests (the seed's optional steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Sign the service contract before the first profile request (Fig. 6 step 6020).
    #[serde(default)]
    pub contract: bool,
    /// Sign a second contract for each binding (step 6120).
    #[serde(default)]
    pub binding_contract: bool,
    /// The second device proves itself with an SMS code before a binding (6130 / 1250).
    #[serde(default)]
    pub second_device_code: bool,
}

/// A subscriber (an MSISDN) of the BOSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscriber {
    pub msisdn: String,
    /// The MSISDN of the account holder (itself for a primary number).
    pub account: String,
    pub policy: Policy,
    pub ring_mode: RingMode,
    pub contract_signed: bool,
}

/// An IMSI (a card's subscription) in the HLR/BOSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub imsi: String,
    /// The number it serves now.
    pub msisdn: String,
    /// The number it had before any binding (where unbinding returns it).
    pub home_msisdn: String,
    pub account: String,
    pub iccid: Option<String>,
    pub eid: Option<String>,
    pub kind: CardKind,
    pub algorithm: AkaAlgorithm,
    pub sqn_he: u64,
    pub state: LineState,
    pub reason: Option<String>,
    pub ring_order: i64,
    pub ota: Option<serde_json::Value>,
    pub order_iccid: Option<String>,
}

/// A line as the admin API and the entitlement document show it (never its keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    pub imsi: String,
    pub msisdn: String,
    pub home_msisdn: String,
    pub account: String,
    pub iccid: Option<String>,
    pub eid: Option<String>,
    pub kind: CardKind,
    pub state: LineState,
    pub reason: Option<String>,
    pub ring_order: i64,
    pub sqn_he: u64,
    pub algorithm: String,
    pub ota_keys: bool,
    /// Only in the answer of a provisioning that ordered the line's profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_code: Option<String>,
}

impl Line {
    pub fn view(&self) -> LineView {
        LineView {
            imsi: self.imsi.clone(),
            msisdn: self.msisdn.clone(),
            home_msisdn: self.home_msisdn.clone(),
            account: self.account.clone(),
            iccid: self.iccid.clone(),
            eid: self.eid.clone(),
            kind: self.kind,
            state: self.state,
            reason: self.reason.clone(),
            ring_order: self.ring_order,
            sqn_he: self.sqn_he,
            algorithm: match self.algorithm {
                AkaAlgorithm::Milenage { .. } => "milenage".into(),
                AkaAlgorithm::XorTest { .. } => "xor".into(),
            },
            ota_keys: self.ota.is_some(),
            activation_code: None,
        }
    }
}

fn bad(column: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, format!("{column}={value}"), rusqlite::types::Type::Text)
}

/// The columns as a literal, so that queries can be `concat!`ed `&'static str`s (the key
/// of the connection's statement cache, `prepare_cached`).
macro_rules! line_columns {
    () => {
        "imsi, msisdn, home_msisdn, account, iccid, eid, kind, algorithm, \
    sqn_he, state, reason, ring_order, ota, order_iccid"
    };
}

fn line_from_row(r: &Row<'_>) -> rusqlite::Result<Line> {
    let kind: String = r.get(6)?;
    let algorithm: String = r.get(7)?;
    let state: String = r.get(9)?;
    let ota: Option<String> = r.get(12)?;
    Ok(Line {
        imsi: r.get(0)?,
        msisdn: r.get(1)?,
        home_msisdn: r.get(2)?,
        account: r.get(3)?,
        iccid: r.get(4)?,
        eid: r.get(5)?,
        kind: CardKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
        algorithm: serde_json::from_str(&algorithm).map_err(|_| bad("algorithm", "?"))?,
        sqn_he: r.get::<_, i64>(8)? as u64,
        state: LineState::parse(&state).ok_or_else(|| bad("state", &state))?,
        reason: r.get(10)?,
        ring_order: r.get(11)?,
        ota: ota.and_then(|o| serde_json::from_str(&o).ok()),
        order_iccid: r.get(13)?,
    })
}

pub fn insert_line(c: &Connection, l: &Line) -> rusqlite::Result<()> {
    let t = now();
    c.prepare_cached(concat!(
        "INSERT INTO net_lines (",
        line_columns!(),
        ", created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)"
    ))?
    .execute(params![
        l.imsi,
        l.msisdn,
        l.home_msisdn,
        l.account,
        l.iccid,
        l.eid,
        l.kind.as_str(),
        serde_json::to_string(&l.algorithm).unwrap_or_default(),
        l.sqn_he as i64,
        l.state.as_str(),
        l.reason,
        l.ring_order,
        l.ota.as_ref().map(|o| o.to_string()),
        l.order_iccid,
        t
    ])?;
    Ok(())
}

/// Writes every mutable field of a line (by IMSI).
pub fn update_line(c: &Connection, l: &Line) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE net_lines SET msisdn = ?2, home_msisdn = ?3, account = ?4, iccid = ?5, eid = ?6, \
         algorithm = ?7, sqn_he = ?8, state = ?9, reason = ?10, ring_order = ?11, ota = ?12, \
         updated_at = ?13 WHERE imsi = ?1",
    )?
    .execute(params![
        l.imsi,
        l.msisdn,
        l.home_msisdn,
        l.account,
        l.iccid,
        l.eid,
        serde_json::to_string(&l.algorithm).unwrap_or_default(),
        l.sqn_he as i64,
        l.state.as_str(),
        l.reason,
        l.ring_order,
        l.ota.as_ref().map(|o| o.to_string()),
        now()
    ])?;
    Ok(())
}

/// The newest line matching `WHERE $clause` (one `&'static str` per clause: the statement
/// cache's key).
macro_rules! line_select {
    ($clause:literal) => {
        concat!(
            "SELECT ",
            line_columns!(),
            " FROM net_lines WHERE ",
            $clause,
            " ORDER BY created_at DESC, rowid DESC LIMIT 1"
        )
    };
}

fn line_where(c: &Connection, sql: &'static str, value: &str) -> rusqlite::Result<Option<Line>> {
    c.prepare_cached(sql)?
        .query_row([value], line_from_row)
        .optional()
}

pub fn line(c: &Connection, imsi: &str) -> rusqlite::Result<Option<Line>> {
    line_where(c, line_select!("imsi = ?1"), imsi)
}

pub fn line_by_iccid(c: &Connection, iccid: &str) -> rusqlite::Result<Option<Line>> {
    line_where(c, line_select!("iccid = ?1"), iccid)
}

/// The newest line on an eUICC (an EID may have held several profiles).
pub fn line_by_eid(c: &Connection, eid: &str) -> rusqlite::Result<Option<Line>> {
    line_where(c, line_select!("eid = ?1 AND state != 'disabled'"), eid).and_then(|l| match l {
        Some(l) => Ok(Some(l)),
        None => line_where(c, line_select!("eid = ?1"), eid),
    })
}

/// The lines serving `msisdn`, in ring order.
pub fn lines_of(c: &Connection, msisdn: &str) -> rusqlite::Result<Vec<Line>> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT ",
        line_columns!(),
        " FROM net_lines WHERE msisdn = ?1 ORDER BY ring_order, rowid"
    ))?;
    let rows = stmt.query_map([msisdn], line_from_row)?;
    rows.collect()
}

pub fn all_lines(c: &Connection) -> rusqlite::Result<Vec<Line>> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT ",
        line_columns!(),
        " FROM net_lines ORDER BY msisdn, ring_order, rowid"
    ))?;
    let rows = stmt.query_map([], line_from_row)?;
    rows.collect()
}

pub fn next_ring_order(c: &Connection, msisdn: &str) -> rusqlite::Result<i64> {
    c.prepare_cached("SELECT COALESCE(MAX(ring_order), 0) + 1 FROM net_lines WHERE msisdn = ?1")?
        .query_row([msisdn], |r| r.get(0))
}

fn subscriber_from_row(r: &Row<'_>) -> rusqlite::Result<Subscriber> {
    let policy: String = r.get(2)?;
    let ring: String = r.get(3)?;
    Ok(Subscriber {
        msisdn: r.get(0)?,
        account: r.get(1)?,
        policy: serde_json::from_str(&policy).map_err(|_| bad("policy", &policy))?,
        ring_mode: RingMode::parse(&ring).ok_or_else(|| bad("ring_mode", &ring))?,
        contract_signed: r.get(4)?,
    })
}

pub fn subscriber(c: &Connection, msisdn: &str) -> rusqlite::Result<Option<Subscriber>> {
    c.prepare_cached(
        "SELECT msisdn, account, policy, ring_mode, contract_signed FROM net_subscribers \
         WHERE msisdn = ?1",
    )?
    .query_row([msisdn], subscriber_from_row)
    .optional()
}

pub fn subscribers(c: &Connection) -> rusqlite::Result<Vec<Subscriber>> {
    let mut stmt = c.prepare_cached(
        "SELECT msisdn, account, policy, ring_mode, contract_signed FROM net_subscribers \
         ORDER BY msisdn",
    )?;
    let rows = stmt.query_map([], subscriber_from_row)?;
    rows.collect()
}

pub fn upsert_subscriber(c: &Connection, s: &Subscriber) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO net_subscribers (msisdn, account, policy, ring_mode, contract_signed, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(msisdn) DO UPDATE SET \
         account = ?2, policy = ?3, ring_mode = ?4, contract_signed = ?5",
    )?
    .execute(params![
        s.msisdn,
        s.account,
        serde_json::to_string(&s.policy).unwrap_or_default(),
        s.ring_mode.as_str(),
        s.contract_signed,
        now()
    ])?;
    Ok(())
}

/// An EAP-AKA (or HLR attach) session between challenge and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    pub id: String,
    /// "eap" or "attach".
    pub kind: String,
    pub imsi: String,
    pub identity: String,
    pub identifier: u8,
    pub rand: [u8; 16],
    pub xres: Vec<u8>,
    pub k_aut: [u8; 16],
    pub resyncs: u32,
    /// The stored request (JSON) to run after authentication.
    pub request: String,
    pub expires_at: i64,
}

fn hex_array<const N: usize>(column: &str, text: &str) -> rusqlite::Result<[u8; N]> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(column, text))
}

pub fn put_auth_session(c: &Connection, s: &AuthSession) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO net_auth_sessions (id, kind, imsi, identity, identifier, rand, xres, k_aut, \
         resyncs, request, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT(id) DO UPDATE SET identifier = ?5, rand = ?6, xres = ?7, k_aut = ?8, \
         resyncs = ?9, expires_at = ?11",
    )?
    .execute(params![
        s.id,
        s.kind,
        s.imsi,
        s.identity,
        s.identifier,
        hex::encode(s.rand),
        hex::encode(&s.xres),
        hex::encode(s.k_aut),
        s.resyncs,
        s.request,
        s.expires_at
    ])?;
    Ok(())
}

pub fn auth_session(c: &Connection, id: &str) -> rusqlite::Result<Option<AuthSession>> {
    c.prepare_cached(
        "SELECT id, kind, imsi, identity, identifier, rand, xres, k_aut, resyncs, request, \
         expires_at FROM net_auth_sessions WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let rand: String = r.get(5)?;
        let xres: String = r.get(6)?;
        let k_aut: String = r.get(7)?;
        Ok(AuthSession {
            id: r.get(0)?,
            kind: r.get(1)?,
            imsi: r.get(2)?,
            identity: r.get(3)?,
            identifier: r.get(4)?,
            rand: hex_array("rand", &rand)?,
            xres: hex::decode(&xres).map_err(|_| bad("xres", &xres))?,
            k_aut: hex_array("k_aut", &k_aut)?,
            resyncs: r.get(8)?,
            request: r.get(9)?,
            expires_at: r.get(10)?,
        })
    })
    .optional()
}

pub fn delete_auth_session(c: &Connection, id: &str) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM net_auth_sessions WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A token of an earlier authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub msisdn: String,
    pub imsi: Option<String>,
    pub expires_at: i64,
}

pub fn put_token(c: &Connection, t: &Token) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO net_tokens (token, msisdn, imsi, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![t.token, t.msisdn, t.imsi, t.expires_at])?;
    Ok(())
}

pub fn token(c: &Connection, token: &str) -> rusqlite::Result<Option<Token>> {
    c.prepare_cached("SELECT token, msisdn, imsi, expires_at FROM net_tokens WHERE token = ?1")?
        .query_row([token], |r| {
            Ok(Token {
                token: r.get(0)?,
                msisdn: r.get(1)?,
                imsi: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })
        .optional()
}

/// A one-time code request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub id: String,
    pub msisdn: String,
    pub purpose: String,
    pub salt: String,
    pub code_hash: String,
    pub tries: u32,
    pub max_tries: u32,
    pub expires_at: i64,
    /// The same deadline in Unix milliseconds (lifetimes below a second); `None` for codes
    /// stored before it existed.
    pub expires_ms: Option<i64>,
    pub used_at: Option<i64>,
    pub locked_at: Option<i64>,
    pub operation_id: Option<String>,
}

pub fn put_code(c: &Connection, k: &Code) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO net_codes (id, msisdn, purpose, salt, code_hash, tries, max_tries, \
         expires_at, used_at, locked_at, operation_id, created_at, expires_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
         ON CONFLICT(id) DO UPDATE SET tries = ?6, used_at = ?9, locked_at = ?10",
    )?
    .execute(params![
        k.id,
        k.msisdn,
        k.purpose,
        k.salt,
        k.code_hash,
        k.tries,
        k.max_tries,
        k.expires_at,
        k.used_at,
        k.locked_at,
        k.operation_id,
        now(),
        k.expires_ms
    ])?;
    Ok(())
}

fn code_from_row(r: &Row<'_>) -> rusqlite::Result<Code> {
    Ok(Code {
        id: r.get(0)?,
        msisdn: r.get(1)?,
        purpose: r.get(2)?,
        salt: r.get(3)?,
        code_hash: r.get(4)?,
        tries: r.get(5)?,
        max_tries: r.get(6)?,
        expires_at: r.get(7)?,
        used_at: r.get(8)?,
        locked_at: r.get(9)?,
        operation_id: r.get(10)?,
        expires_ms: r.get(11)?,
    })
}

/// The columns as a literal, so that queries can be `concat!`ed `&'static str`s (the key
/// of the connection's statement cache, `prepare_cached`).
macro_rules! code_columns {
    () => {
        "id, msisdn, purpose, salt, code_hash, tries, max_tries, expires_at, \
    used_at, locked_at, operation_id, expires_ms"
    };
}

const CODE_OF_OPERATION: &str = concat!(
    "SELECT ",
    code_columns!(),
    " FROM net_codes WHERE operation_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"
);

/// The newest code request of an operation.
pub fn code_of_operation(c: &Connection, operation_id: &str) -> rusqlite::Result<Option<Code>> {
    c.prepare_cached(CODE_OF_OPERATION)?
        .query_row([operation_id], code_from_row)
        .optional()
}

/// A request of the entitlement server that runs in steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    pub kind: String,
    pub app: String,
    /// The line the request acts for (the authenticated MSISDN, or the MSISDN to transfer).
    pub msisdn: String,
    pub imsi: Option<String>,
    /// The request's parameters (JSON object).
    pub request: String,
    pub state: String,
    /// The answer once done (JSON), or the error.
    pub result: Option<String>,
}

pub fn put_operation(c: &Connection, o: &Operation) -> rusqlite::Result<()> {
    let t = now();
    c.prepare_cached(
        "INSERT INTO net_operations (id, kind, app, msisdn, imsi, request, state, result, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
         ON CONFLICT(id) DO UPDATE SET msisdn = ?4, imsi = ?5, request = ?6, state = ?7, \
         result = ?8, updated_at = ?9",
    )?
    .execute(params![
        o.id, o.kind, o.app, o.msisdn, o.imsi, o.request, o.state, o.result, t
    ])?;
    Ok(())
}

fn operation_from_row(r: &Row<'_>) -> rusqlite::Result<Operation> {
    Ok(Operation {
        id: r.get(0)?,
        kind: r.get(1)?,
        app: r.get(2)?,
        msisdn: r.get(3)?,
        imsi: r.get(4)?,
        request: r.get(5)?,
        state: r.get(6)?,
        result: r.get(7)?,
    })
}

/// The columns as a literal, so that queries can be `concat!`ed `&'static str`s (the key
/// of the connection's statement cache, `prepare_cached`).
macro_rules! operation_columns {
    () => {
        "id, kind, app, msisdn, imsi, request, state, result"
    };
}

pub fn operation(c: &Connection, id: &str) -> rusqlite::Result<Option<Operation>> {
    c.prepare_cached(concat!(
        "SELECT ",
        operation_columns!(),
        " FROM net_operations WHERE id = ?1"
    ))?
    .query_row([id], operation_from_row)
    .optional()
}

pub fn operations(c: &Connection) -> rusqlite::Result<Vec<Operation>> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT ",
        operation_columns!(),
        " FROM net_operations ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([], operation_from_row)?;
    rows.collect()
}

/// A contract shown on the contract page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub id: String,
    pub operation_id: String,
    pub msisdn: String,
    /// "service" (step 6020) or "binding" (step 6120).
    pub kind: String,
    /// "pending", "accepted" or "declined".
    pub state: String,
    pub answered_at: Option<i64>,
}

pub fn put_contract(c: &Connection, k: &Contract) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO net_contracts (id, operation_id, msisdn, kind, state, answered_at, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET \
         state = ?5, answered_at = ?6",
    )?
    .execute(params![
        k.id,
        k.operation_id,
        k.msisdn,
        k.kind,
        k.state,
        k.answered_at,
        now()
    ])?;
    Ok(())
}

fn contract_from_row(r: &Row<'_>) -> rusqlite::Result<Contract> {
    Ok(Contract {
        id: r.get(0)?,
        operation_id: r.get(1)?,
        msisdn: r.get(2)?,
        kind: r.get(3)?,
        state: r.get(4)?,
        answered_at: r.get(5)?,
    })
}

pub fn contract(c: &Connection, id: &str) -> rusqlite::Result<Option<Contract>> {
    c.prepare_cached(
        "SELECT id, operation_id, msisdn, kind, state, answered_at FROM net_contracts \
         WHERE id = ?1",
    )?
    .query_row([id], contract_from_row)
    .optional()
}

/// The newest contract of an operation.
const CONTRACT_OF_OPERATION: &str =
    "SELECT id, operation_id, msisdn, kind, state, answered_at FROM net_contracts \
     WHERE operation_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1";

pub fn contract_of_operation(c: &Connection, op: &str) -> rusqlite::Result<Option<Contract>> {
    c.prepare_cached(CONTRACT_OF_OPERATION)?
        .query_row([op], contract_from_row)
        .optional()
}

pub fn contracts(c: &Connection) -> rusqlite::Result<Vec<Contract>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, operation_id, msisdn, kind, state, answered_at FROM net_contracts \
         ORDER BY created_at, rowid",
    )?;
    let rows = stmt.query_map([], contract_from_row)?;
    rows.collect()
}

/// A profile the BOSS ordered from the SM-DP+.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BossOrder {
    pub iccid: String,
    pub operation_id: String,
    pub msisdn: String,
    pub eid: String,
    pub imsi: String,
    /// "subscribe", "bind" (SharedNumber) or "transfer".
    pub purpose: String,
    /// The SM-DP+ order state the BOSS last acted on.
    pub state: String,
    pub activation_code: String,
}

pub fn put_order(c: &Connection, o: &BossOrder) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO net_orders (iccid, operation_id, msisdn, eid, imsi, purpose, state, \
         activation_code, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT(iccid) DO UPDATE SET state = ?7, updated_at = ?9",
    )?
    .execute(params![
        o.iccid,
        o.operation_id,
        o.msisdn,
        o.eid,
        o.imsi,
        o.purpose,
        o.state,
        o.activation_code,
        now()
    ])?;
    Ok(())
}

pub fn orders(c: &Connection) -> rusqlite::Result<Vec<BossOrder>> {
    let mut stmt = c.prepare_cached(
        "SELECT iccid, operation_id, msisdn, eid, imsi, purpose, state, activation_code \
         FROM net_orders ORDER BY rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(BossOrder {
            iccid: r.get(0)?,
            operation_id: r.get(1)?,
            msisdn: r.get(2)?,
            eid: r.get(3)?,
            imsi: r.get(4)?,
            purpose: r.get(5)?,
            state: r.get(6)?,
            activation_code: r.get(7)?,
        })
    })?;
    rows.collect()
}

fn order_row(r: &Row) -> rusqlite::Result<(BossOrder, i64)> {
    Ok((
        BossOrder {
            iccid: r.get(0)?,
            operation_id: r.get(1)?,
            msisdn: r.get(2)?,
            eid: r.get(3)?,
            imsi: r.get(4)?,
            purpose: r.get(5)?,
            state: r.get(6)?,
            activation_code: r.get(7)?,
        },
        r.get(8)?,
    ))
}

/// The order of `iccid` and the time (Unix seconds) of the event that set its state.
pub fn order(c: &Connection, iccid: &str) -> rusqlite::Result<Option<(BossOrder, i64)>> {
    c.prepare_cached(
        "SELECT iccid, operation_id, msisdn, eid, imsi, purpose, state, activation_code, \
         event_at FROM net_orders WHERE iccid = ?1",
    )?
    .query_row([iccid], order_row)
    .optional()
}

/// Records the order's new state, set by an event of `event_at` (or by the BOSS itself).
pub fn set_order_state(
    c: &Connection,
    iccid: &str,
    state: &str,
    event_at: i64,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE net_orders SET state = ?2, event_at = ?3, updated_at = ?4 WHERE iccid = ?1",
    )?
    .execute(params![iccid, state, event_at, now()])?;
    Ok(())
}

/// An ES2+.HandleDownloadProgressInfo event the BOSS received, and what it did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    pub iccid: String,
    pub point: u32,
    pub status: String,
    pub reason: Option<String>,
    /// The event's timestamp (Unix seconds).
    pub event_at: i64,
    pub received_at: i64,
    /// "applied: FROM → TO" or "ignored: why".
    pub outcome: String,
}

pub fn insert_order_event(c: &Connection, e: &OrderEvent) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO net_order_events (iccid, point, status, reason, event_at, received_at, \
         outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.iccid,
        e.point,
        e.status,
        e.reason,
        e.event_at,
        e.received_at,
        e.outcome
    ])?;
    Ok(())
}

pub fn order_events(c: &Connection) -> rusqlite::Result<Vec<OrderEvent>> {
    let mut stmt = c.prepare_cached(
        "SELECT iccid, point, status, reason, event_at, received_at, outcome \
         FROM net_order_events ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OrderEvent {
            iccid: r.get(0)?,
            point: r.get(1)?,
            status: r.get(2)?,
            reason: r.get(3)?,
            event_at: r.get(4)?,
            received_at: r.get(5)?,
            outcome: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// An upgrade / migration: `pending` (the number is reserved), `done`, `failed` or `expired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    pub id: i64,
    pub msisdn: String,
    pub operation_id: String,
    pub old_imsi: String,
    pub new_eid: String,
    pub order_iccid: Option<String>,
    pub state: String,
    pub created_at: i64,
    /// When the reservation lapses unless the download has begun (Unix seconds; `None` for
    /// transfers recorded before reservations had a lifetime: created + the current TTL).
    pub expires_at: Option<i64>,
    /// Why it ended, when it did not complete.
    pub reason: Option<String>,
}

/// The columns as a literal, so that queries can be `concat!`ed `&'static str`s (the key
/// of the connection's statement cache, `prepare_cached`).
macro_rules! transfer_columns {
    () => {
        "id, msisdn, operation_id, old_imsi, new_eid, order_iccid, state, created_at, expires_at, reason"
    };
}
const TRANSFER_COLUMNS: &str = transfer_columns!();

fn transfer_row(r: &Row) -> rusqlite::Result<Transfer> {
    Ok(Transfer {
        id: r.get(0)?,
        msisdn: r.get(1)?,
        operation_id: r.get(2)?,
        old_imsi: r.get(3)?,
        new_eid: r.get(4)?,
        order_iccid: r.get(5)?,
        state: r.get(6)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        reason: r.get(9)?,
    })
}

/// Reserves the MSISDN for one transfer until `expires_at`; `Ok(None)` when another is
/// pending (the UNIQUE partial index decides, so two concurrent requests cannot both pass).
pub fn reserve_transfer(c: &Connection, t: &Transfer) -> rusqlite::Result<Option<i64>> {
    match c.prepare_cached("INSERT INTO net_transfers (msisdn, operation_id, old_imsi, new_eid, order_iccid, state, \
         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)")?.execute(params![
            t.msisdn,
            t.operation_id,
            t.old_imsi,
            t.new_eid,
            t.order_iccid,
            now(),
            t.expires_at
        ],) {
        Ok(_) => Ok(Some(c.last_insert_rowid())),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub fn transfer(c: &Connection, id: i64) -> rusqlite::Result<Option<Transfer>> {
    c.prepare_cached(concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM net_transfers WHERE id = ?1"
    ))?
    .query_row([id], transfer_row)
    .optional()
}

const TRANSFER_OF_OPERATION: &str = concat!(
    "SELECT ",
    transfer_columns!(),
    " FROM net_transfers WHERE operation_id = ?1 ORDER BY id DESC LIMIT 1"
);

pub fn transfer_of_operation(c: &Connection, op: &str) -> rusqlite::Result<Option<Transfer>> {
    c.prepare_cached(TRANSFER_OF_OPERATION)?
        .query_row([op], transfer_row)
        .optional()
}

pub fn transfers(c: &Connection) -> rusqlite::Result<Vec<Transfer>> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT ",
        transfer_columns!(),
        " FROM net_transfers ORDER BY id"
    ))?;
    let rows = stmt.query_map([], transfer_row)?;
    rows.collect()
}

/// Pending transfers whose reservation lapsed at `now`: those with an order (whatever the
/// SM-DP+ last reported: released, or downloaded but never enabled), and those without one (a
/// request interrupted between reservation and order) once `orphan_grace` beyond their expiry.
/// `ttl` dates transfers recorded without an expiry.
pub fn lapsed_transfers(
    c: &Connection,
    now: i64,
    ttl: i64,
    orphan_grace: i64,
) -> rusqlite::Result<Vec<Transfer>> {
    let columns = TRANSFER_COLUMNS
        .split(", ")
        .map(|col| format!("t.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {columns} FROM net_transfers t \
         WHERE t.state = 'pending' AND COALESCE(t.expires_at, t.created_at + ?2) <= ?1 \
         AND (t.order_iccid IS NOT NULL \
              OR COALESCE(t.expires_at, t.created_at + ?2) + ?3 <= ?1) ORDER BY t.id"
    ))?;
    let rows = stmt.query_map(params![now, ttl, orphan_grace], transfer_row)?;
    rows.collect()
}

pub fn set_transfer(
    c: &Connection,
    id: i64,
    state: &str,
    order_iccid: Option<&str>,
) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE net_transfers SET state = ?2, order_iccid = COALESCE(?3, order_iccid) WHERE id = ?1")?.execute(params![id, state, order_iccid],)?;
    Ok(())
}

/// Ends a pending transfer with `state` and why; `false` when it was no longer pending.
pub fn end_transfer(c: &Connection, id: i64, state: &str, reason: &str) -> rusqlite::Result<bool> {
    Ok(c.prepare_cached(
        "UPDATE net_transfers SET state = ?2, reason = ?3 WHERE id = ?1 AND state = 'pending'",
    )?
    .execute(params![id, state, reason])?
        == 1)
}

/// An SMS in an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sms {
    pub id: i64,
    pub from: String,
    pub to: String,
    pub text: String,
    /// "text" or "sms-pp".
    pub kind: String,
    /// The SMS-PP TPDU (hex) for `sms-pp`.
    pub user_data: Option<String>,
    pub received_at: i64,
    /// Admin view only: the IMSIs it was delivered to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered_to: Vec<String>,
}

/// Stores an SMS and its deliveries; returns its id.
pub fn insert_sms(
    c: &Connection,
    to: &str,
    from: &str,
    text: &str,
    kind: &str,
    user_data: Option<&str>,
    imsis: &[String],
) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO net_sms (msisdn, sender, text, kind, user_data, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![to, from, text, kind, user_data, now()])?;
    let id = c.last_insert_rowid();
    for imsi in imsis {
        c.prepare_cached("INSERT INTO net_sms_deliveries (sms_id, imsi) VALUES (?1, ?2)")?
            .execute(params![id, imsi])?;
    }
    Ok(id)
}

const INBOX: &str =
    "SELECT s.id, s.sender, s.msisdn, s.text, s.kind, s.user_data, s.created_at FROM net_sms s \
     JOIN net_sms_deliveries d ON d.sms_id = s.id WHERE d.imsi = ?1 AND s.id > ?2 ORDER BY s.id";

pub fn inbox(c: &Connection, imsi: &str, after: i64) -> rusqlite::Result<Vec<Sms>> {
    let mut stmt = c.prepare_cached(INBOX)?;
    let rows = stmt.query_map(params![imsi, after], |r| {
        Ok(Sms {
            id: r.get(0)?,
            from: r.get(1)?,
            to: r.get(2)?,
            text: r.get(3)?,
            kind: r.get(4)?,
            user_data: r.get(5)?,
            received_at: r.get(6)?,
            delivered_to: Vec::new(),
        })
    })?;
    rows.collect()
}

pub fn all_sms(c: &Connection) -> rusqlite::Result<Vec<Sms>> {
    let mut stmt = c.prepare_cached(
        "SELECT s.id, s.sender, s.msisdn, s.text, s.kind, s.user_data, s.created_at, \
         (SELECT GROUP_CONCAT(imsi, ',') FROM net_sms_deliveries d WHERE d.sms_id = s.id) \
         FROM net_sms s ORDER BY s.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let to: Option<String> = r.get(7)?;
        Ok(Sms {
            id: r.get(0)?,
            from: r.get(1)?,
            to: r.get(2)?,
            text: r.get(3)?,
            kind: r.get(4)?,
            user_data: r.get(5)?,
            received_at: r.get(6)?,
            delivered_to: to
                .map(|t| t.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for `sql` (EXPLAIN QUERY PLAN's detail column, one line per step).
    fn plan(c: &Connection, sql: &str) -> String {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// The lookups every flow makes find their rows through an index: a scan would make each
    /// request cost more with every flow the network has served.
    #[test]
    fn per_request_lookups_use_an_index() {
        let c = Connection::open_in_memory().unwrap();
        create(&c).unwrap();
        let inbox = plan(&c, INBOX);
        assert!(inbox.contains("net_sms_deliveries_imsi"), "{inbox}");
        for sql in [
            CODE_OF_OPERATION,
            TRANSFER_OF_OPERATION,
            CONTRACT_OF_OPERATION,
        ] {
            let p = plan(&c, sql);
            assert!(p.contains("_operation (operation_id=?)"), "{sql}: {p}");
        }
    }

    /// An older database (tables without the later columns and indexes) gets both.
    #[test]
    fn an_older_database_gets_the_indexes() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE net_codes (id TEXT PRIMARY KEY, msisdn TEXT NOT NULL, \
             purpose TEXT NOT NULL, salt TEXT NOT NULL, code_hash TEXT NOT NULL, \
             tries INTEGER NOT NULL DEFAULT 0, max_tries INTEGER NOT NULL, \
             expires_at INTEGER NOT NULL, used_at INTEGER, locked_at INTEGER, operation_id TEXT, \
             created_at INTEGER NOT NULL);",
        )
        .unwrap();
        create(&c).unwrap();
        let p = plan(&c, CODE_OF_OPERATION);
        assert!(p.contains("net_codes_operation"), "{p}");
    }
}
