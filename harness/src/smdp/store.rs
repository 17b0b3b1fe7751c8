//! The SM-DP+'s persistent state in SQLite: profile orders with their SGP.22 states (v2.5 §3.1.1
//! download preparation, §5.3 ES2+ and the profile state model of the SM-DP+: Available,
//! Allocated, Linked, Confirmed, Released, Downloaded, Installed, Error, Unavailable), matching
//! IDs, confirmation codes and retry counters; ES9+ sessions (keyed by transactionId); received
//! notifications; and the ES2+.HandleDownloadProgressInfo events sent to the operator.
//!
//! One connection, used under the caller's lock. A file database can be shared with
//! `simlab network order --db` while the server runs (WAL journal, busy timeout).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// How long a writer waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    iccid TEXT NOT NULL,
    template TEXT NOT NULL,
    state TEXT NOT NULL,
    eid TEXT,
    matching_id TEXT UNIQUE,
    confirmation_code TEXT,
    cc_attempts INTEGER NOT NULL DEFAULT 0,
    download_attempts INTEGER NOT NULL DEFAULT 0,
    imsi TEXT,
    k TEXT,
    opc TEXT,
    msisdn TEXT,
    personalised INTEGER NOT NULL,
    last_transaction_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_iccid ON orders(iccid);
CREATE TABLE IF NOT EXISTS sessions (
    transaction_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    eid TEXT,
    iccid TEXT,
    seq_number INTEGER NOT NULL,
    operation TEXT NOT NULL,
    result TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS progress_events (
    id INTEGER PRIMARY KEY,
    iccid TEXT NOT NULL,
    eid TEXT,
    notification_point_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    delivery TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// Why the store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("SM-DP+ database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("SM-DP+ database: column {column} holds {value:?}, expected {expected}")]
    BadValue {
        column: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Profile (order) states of the SM-DP+ (SGP.22 v2.5 §3.1.1, §5.3.2–§5.3.5), plus the three
/// states the eUICC's notifications report after installation (enabled, disabled, deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderState {
    Available,
    Allocated,
    Linked,
    Confirmed,
    Released,
    Downloaded,
    Installed,
    Enabled,
    Disabled,
    Deleted,
    Error,
    Unavailable,
}

impl OrderState {
    pub const ALL: [OrderState; 12] = [
        OrderState::Available,
        OrderState::Allocated,
        OrderState::Linked,
        OrderState::Confirmed,
        OrderState::Released,
        OrderState::Downloaded,
        OrderState::Installed,
        OrderState::Enabled,
        OrderState::Disabled,
        OrderState::Deleted,
        OrderState::Error,
        OrderState::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Available => "available",
            OrderState::Allocated => "allocated",
            OrderState::Linked => "linked",
            OrderState::Confirmed => "confirmed",
            OrderState::Released => "released",
            OrderState::Downloaded => "downloaded",
            OrderState::Installed => "installed",
            OrderState::Enabled => "enabled",
            OrderState::Disabled => "disabled",
            OrderState::Deleted => "deleted",
            OrderState::Error => "error",
            OrderState::Unavailable => "unavailable",
        }
    }

    pub fn parse(s: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the profile has left the SM-DP+ (a download completed at least once).
    pub fn is_downloaded(self) -> bool {
        matches!(
            self,
            OrderState::Downloaded
                | OrderState::Installed
                | OrderState::Enabled
                | OrderState::Disabled
                | OrderState::Deleted
        )
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One profile order: a personalised profile (or a template served as is) and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub iccid: String,
    /// Template file stem in the templates directory.
    pub template: String,
    pub state: OrderState,
    pub eid: Option<String>,
    pub matching_id: Option<String>,
    pub confirmation_code: Option<String>,
    pub cc_attempts: u32,
    pub download_attempts: u32,
    pub imsi: Option<String>,
    pub k: Option<[u8; 16]>,
    pub opc: Option<[u8; 16]>,
    pub msisdn: Option<String>,
    /// False for a template downloaded by its file stem, unchanged.
    pub personalised: bool,
    pub last_transaction_id: Option<String>,
}

/// A notification the SM-DP+ received (ES9+.HandleNotification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub eid: Option<String>,
    pub iccid: Option<String>,
    pub seq_number: i64,
    pub operation: String,
    pub result: String,
}

/// An ES2+.HandleDownloadProgressInfo event (SGP.22 §5.3.5) as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    pub iccid: String,
    pub eid: Option<String>,
    pub notification_point_id: u32,
    pub status: String,
    /// The JSON body sent (or that would be sent) to the operator.
    pub body: String,
    /// `None` when no callback URL is configured, else "delivered" or the error.
    pub delivery: Option<String>,
}

/// The SQLite store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn key_from_hex(column: &'static str, v: Option<String>) -> Result<Option<[u8; 16]>, StoreError> {
    v.map(|text| {
        hex::decode(&text)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or(StoreError::BadValue {
                column,
                value: text,
                expected: "32 hex digits",
            })
    })
    .transpose()
}

const ORDER_COLUMNS: &str = "id, iccid, template, state, eid, matching_id, confirmation_code, \
    cc_attempts, download_attempts, imsi, k, opc, msisdn, personalised, last_transaction_id";

fn order_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Order, StoreError>> {
    let state: String = row.get(3)?;
    let k: Option<String> = row.get(10)?;
    let opc: Option<String> = row.get(11)?;
    let partial = (
        row.get::<_, i64>(0)?,
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, Option<String>>(4)?,
        row.get::<_, Option<String>>(5)?,
        row.get::<_, Option<String>>(6)?,
        row.get::<_, u32>(7)?,
        row.get::<_, u32>(8)?,
        row.get::<_, Option<String>>(9)?,
        row.get::<_, Option<String>>(12)?,
        row.get::<_, bool>(13)?,
        row.get::<_, Option<String>>(14)?,
    );
    Ok((|| {
        let (id, iccid, template, eid, matching_id, cc, cc_attempts, dl, imsi, msisdn, pers, tx) =
            partial;
        Ok(Order {
            id,
            iccid,
            template,
            state: OrderState::parse(&state).ok_or(StoreError::BadValue {
                column: "state",
                value: state.clone(),
                expected: "an order state",
            })?,
            eid,
            matching_id,
            confirmation_code: cc,
            cc_attempts,
            download_attempts: dl,
            imsi,
            k: key_from_hex("k", k)?,
            opc: key_from_hex("opc", opc)?,
            msisdn,
            personalised: pers,
            last_transaction_id: tx,
        })
    })())
}

impl Store {
    /// Opens (creating if needed) the database at `path`, or an in-memory one for `None`.
    pub fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        let conn = match path {
            Some(p) => {
                let conn = Connection::open(p)?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    /// The connection itself, for the operator network's own tables (`net_*`, see
    /// `network::db`) in the same database; used under the same lock as everything here.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Inserts an order (its `id` is ignored) and returns the new id.
    pub fn insert_order(&self, o: &Order) -> Result<i64, StoreError> {
        let t = now();
        self.conn.execute(
            "INSERT INTO orders (iccid, template, state, eid, matching_id, confirmation_code, \
             cc_attempts, download_attempts, imsi, k, opc, msisdn, personalised, \
             last_transaction_id, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
            params![
                o.iccid,
                o.template,
                o.state.as_str(),
                o.eid,
                o.matching_id,
                o.confirmation_code,
                o.cc_attempts,
                o.download_attempts,
                o.imsi,
                o.k.map(hex::encode_upper),
                o.opc.map(hex::encode_upper),
                o.msisdn,
                o.personalised,
                o.last_transaction_id,
                t
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Writes every mutable field of `o` (by id).
    pub fn update_order(&self, o: &Order) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE orders SET state = ?2, eid = ?3, matching_id = ?4, confirmation_code = ?5, \
             cc_attempts = ?6, download_attempts = ?7, last_transaction_id = ?8, updated_at = ?9 \
             WHERE id = ?1",
            params![
                o.id,
                o.state.as_str(),
                o.eid,
                o.matching_id,
                o.confirmation_code,
                o.cc_attempts,
                o.download_attempts,
                o.last_transaction_id,
                now()
            ],
        )?;
        Ok(())
    }

    fn order_where(
        &self,
        clause: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Option<Order>, StoreError> {
        let sql =
            format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {clause} ORDER BY id DESC LIMIT 1");
        self.conn
            .query_row(&sql, [value], order_from_row)
            .optional()?
            .transpose()
    }

    pub fn order(&self, id: i64) -> Result<Option<Order>, StoreError> {
        self.order_where("id = ?1", &id)
    }

    pub fn order_by_matching_id(&self, matching_id: &str) -> Result<Option<Order>, StoreError> {
        self.order_where("matching_id = ?1", &matching_id)
    }

    /// The newest order with this ICCID.
    pub fn order_by_iccid(&self, iccid: &str) -> Result<Option<Order>, StoreError> {
        self.order_where("iccid = ?1", &iccid)
    }

    /// The newest released order bound to `eid` (default SM-DP+ / no matching ID case, SGP.22
    /// §3.1.3.2).
    pub fn released_order_for_eid(&self, eid: &str) -> Result<Option<Order>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE eid = ?1 AND state = ?2 ORDER BY id DESC LIMIT 1"
        );
        self.conn
            .query_row(
                &sql,
                params![eid, OrderState::Released.as_str()],
                order_from_row,
            )
            .optional()?
            .transpose()
    }

    /// Every order, oldest first.
    pub fn orders(&self) -> Result<Vec<Order>, StoreError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], order_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    pub fn put_session(&self, transaction_id: &str, data: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sessions (transaction_id, data, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(transaction_id) DO UPDATE SET data = ?2, updated_at = ?3",
            params![transaction_id, data, now()],
        )?;
        Ok(())
    }

    pub fn session(&self, transaction_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT data FROM sessions WHERE transaction_id = ?1",
                [transaction_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn delete_session(&self, transaction_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM sessions WHERE transaction_id = ?1",
            [transaction_id],
        )?;
        Ok(())
    }

    /// Increments and returns a named counter (first value 1).
    pub fn next_counter(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "INSERT INTO counters (name, value) VALUES (?1, 1) \
             ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            [name],
            |r| r.get(0),
        )?)
    }

    pub fn record_notification(&self, n: &NotificationRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO notifications (eid, iccid, seq_number, operation, result, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![n.eid, n.iccid, n.seq_number, n.operation, n.result, now()],
        )?;
        Ok(())
    }

    pub fn notifications(&self) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT eid, iccid, seq_number, operation, result FROM notifications ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(NotificationRecord {
                eid: r.get(0)?,
                iccid: r.get(1)?,
                seq_number: r.get(2)?,
                operation: r.get(3)?,
                result: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a progress event; returns its row id (to update the delivery result later).
    pub fn record_progress(&self, e: &ProgressEvent) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO progress_events (iccid, eid, notification_point_id, status, body, \
             delivery, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                e.iccid,
                e.eid,
                e.notification_point_id,
                e.status,
                e.body,
                e.delivery,
                now()
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_progress_delivery(&self, id: i64, delivery: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE progress_events SET delivery = ?2 WHERE id = ?1",
            params![id, delivery],
        )?;
        Ok(())
    }

    pub fn progress_events(&self) -> Result<Vec<ProgressEvent>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT iccid, eid, notification_point_id, status, body, delivery \
             FROM progress_events ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ProgressEvent {
                iccid: r.get(0)?,
                eid: r.get(1)?,
                notification_point_id: r.get(2)?,
                status: r.get(3)?,
                body: r.get(4)?,
                delivery: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order {
            id: 0,
            iccid: "8900100000000000018".into(),
            template: "TS48v4_SAIP2.3_BERTLV".into(),
            state: OrderState::Allocated,
            eid: None,
            matching_id: Some("MID-1".into()),
            confirmation_code: None,
            cc_attempts: 0,
            download_attempts: 0,
            imsi: Some("001010000000001".into()),
            k: Some([1; 16]),
            opc: Some([2; 16]),
            msisdn: None,
            personalised: true,
            last_transaction_id: None,
        }
    }

    #[test]
    fn orders_round_trip_through_sqlite() {
        let store = Store::open(None).unwrap();
        let mut o = order();
        o.id = store.insert_order(&o).unwrap();
        assert_eq!(store.order(o.id).unwrap(), Some(o.clone()));
        o.state = OrderState::Released;
        o.eid = Some("89049032123451234512345678901235".into());
        o.cc_attempts = 2;
        store.update_order(&o).unwrap();
        assert_eq!(
            store.order_by_matching_id("MID-1").unwrap(),
            Some(o.clone())
        );
        assert_eq!(
            store
                .released_order_for_eid("89049032123451234512345678901235")
                .unwrap(),
            Some(o.clone())
        );
        assert_eq!(store.order_by_iccid(&o.iccid).unwrap(), Some(o));
    }

    #[test]
    fn refuses_a_second_order_with_the_same_matching_id() {
        let store = Store::open(None).unwrap();
        store.insert_order(&order()).unwrap();
        assert!(store.insert_order(&order()).is_err());
    }

    #[test]
    fn counters_start_at_one_and_increase() {
        let store = Store::open(None).unwrap();
        assert_eq!(store.next_counter("iccid").unwrap(), 1);
        assert_eq!(store.next_counter("iccid").unwrap(), 2);
        assert_eq!(store.next_counter("imsi").unwrap(), 1);
    }

    #[test]
    fn order_states_have_stable_names() {
        for st in OrderState::ALL {
            assert_eq!(OrderState::parse(st.as_str()), Some(st));
        }
        assert_eq!(OrderState::parse("bogus"), None);
    }
}
