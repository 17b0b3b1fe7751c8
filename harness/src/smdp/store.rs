//! The SM-DP+'s persistent state in SQLite: profile orders with their SGP.22 states (v2.5 §3.1.1
//! download preparation, §5.3 ES2+ and the profile state model of the SM-DP+: Available,
//! Allocated, Linked, Confirmed, Released, Downloaded, Installed, Error, Unavailable), matching
//! IDs, confirmation codes and retry counters; ES9+ sessions (keyed by transactionId); received
//! notifications; and the ES2+.HandleDownloadProgressInfo events sent to the operator.
//!
//! One connection, used under the caller's lock. A file database can be shared with
//! `simlab network order --db` while the server runs (WAL journal, busy timeout).
//!
//! Every change of an order goes through [`Store::transition`]: one SQLite transaction that
//! reads the row, lets the caller decide, and writes with a conditional UPDATE that only
//! applies to the row as read. Two sessions (threads or processes) can therefore never both
//! act on the same order state: the second one sees what the first one wrote.
//!
//! Sessions carry an expiry time; expired ones are invisible and [`Store::purge_sessions`]
//! deletes them.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Prepared statements kept per connection: every statement of this module (about 20) and of
/// the operator network's (`network::db`, about 50, on the same connection when the network
/// shares this database) stays prepared.
const STATEMENT_CACHE: usize = 128;

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
    euicc_certificate TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_iccid ON orders(iccid);
CREATE TABLE IF NOT EXISTS sessions (
    transaction_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0
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

/// Columns added after the first release of the schema: `(table, column, definition)`.
/// Databases written before get them on open (`ALTER TABLE … ADD COLUMN`); old sessions get
/// `expires_at` 0, i.e. they are expired and purged.
const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("orders", "euicc_certificate", "TEXT"),
    ("sessions", "expires_at", "INTEGER NOT NULL DEFAULT 0"),
];

/// Created after the columns exist (an old database gets `expires_at` first).
const INDEXES: &str = "CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);";

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
    #[error("SM-DP+ database: order {0} does not exist")]
    NoOrder(i64),
    /// The conditional UPDATE found the row changed since it was read in the same
    /// transaction: only possible if something wrote without [`Store::transition`].
    #[error("SM-DP+ database: order {0} changed while it was being updated")]
    Conflict(i64),
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
    /// The RSP session that last fetched (or is allowed to fetch) the package.
    pub last_transaction_id: Option<String>,
    /// The certificate of the eUICC the package was bound to (DER), kept so that its
    /// installation result can be verified even after the session expired.
    pub euicc_certificate: Option<Vec<u8>>,
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

/// Milliseconds since the Unix epoch (session expiry times).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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

/// The columns [`order_from_row`] reads, in its order. A macro so that every query can be one
/// `concat!`ed literal: a `&'static str` is the key of the connection's statement cache
/// (`prepare_cached`), and building the text with `format!` on every call would be waste.
macro_rules! order_select {
    ($($tail:literal),+) => {
        concat!(
            "SELECT id, iccid, template, state, eid, matching_id, confirmation_code, \
             cc_attempts, download_attempts, imsi, k, opc, msisdn, personalised, \
             last_transaction_id, euicc_certificate FROM orders ",
            $($tail),+
        )
    };
}

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
    let euicc_certificate: Option<String> = row.get(15)?;
    Ok((|| {
        let (id, iccid, template, eid, matching_id, cc, cc_attempts, dl, imsi, msisdn, pers, tx) =
            partial;
        let euicc_certificate = euicc_certificate
            .map(|text| {
                hex::decode(&text).map_err(|_| StoreError::BadValue {
                    column: "euicc_certificate",
                    value: text,
                    expected: "hex DER",
                })
            })
            .transpose()?;
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
            euicc_certificate,
        })
    })())
}

/// Writes the mutable fields of `o`; with `expected`, only if the row still holds exactly
/// those values (the conditional UPDATE of [`Store::transition`]). Returns the rows written.
fn write_order(
    conn: &Connection,
    o: &Order,
    expected: Option<&Order>,
) -> Result<usize, StoreError> {
    macro_rules! set {
        () => {
            "UPDATE orders SET state = ?2, eid = ?3, matching_id = ?4, \
             confirmation_code = ?5, cc_attempts = ?6, download_attempts = ?7, \
             last_transaction_id = ?8, euicc_certificate = ?9, updated_at = ?10 WHERE id = ?1"
        };
    }
    const SET: &str = set!();
    // `IS` compares NULLs as equal, unlike `=`.
    const SET_IF_UNCHANGED: &str = concat!(
        set!(),
        " AND state = ?11 AND eid IS ?12 AND matching_id IS ?13 \
         AND confirmation_code IS ?14 AND cc_attempts = ?15 AND download_attempts = ?16 \
         AND last_transaction_id IS ?17"
    );
    let cert = o.euicc_certificate.as_deref().map(hex::encode_upper);
    let new = params![
        o.id,
        o.state.as_str(),
        o.eid,
        o.matching_id,
        o.confirmation_code,
        o.cc_attempts,
        o.download_attempts,
        o.last_transaction_id,
        cert,
        now()
    ];
    let Some(old) = expected else {
        return Ok(conn.prepare_cached(SET)?.execute(new)?);
    };
    Ok(conn.prepare_cached(SET_IF_UNCHANGED)?.execute(params![
        o.id,
        o.state.as_str(),
        o.eid,
        o.matching_id,
        o.confirmation_code,
        o.cc_attempts,
        o.download_attempts,
        o.last_transaction_id,
        cert,
        now(),
        old.state.as_str(),
        old.eid,
        old.matching_id,
        old.confirmation_code,
        old.cc_attempts,
        old.download_attempts,
        old.last_transaction_id,
    ])?)
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
        for (table, column, definition) in ADDED_COLUMNS {
            let present: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
                params![table, column],
                |r| r.get(0),
            )?;
            if !present {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                ))?;
            }
        }
        conn.execute_batch(INDEXES)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { conn })
    }

    /// Runs one statement from the connection's statement cache: parsing and planning SQL
    /// was the largest part of the store's time (each statement was prepared on every call,
    /// about 10 % of the SM-DP+ server's CPU). Returns the rows changed.
    fn execute(
        &self,
        sql: &'static str,
        params: impl rusqlite::Params,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)?)
    }

    /// The first row of `sql` (cached as in [`Store::execute`]), mapped by `f`.
    fn query_row<T>(
        &self,
        sql: &'static str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }

    /// The connection itself, for the operator network's own tables (`net_*`, see
    /// `network::db`) in the same database; used under the same lock as everything here.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Inserts an order (its `id` is ignored) and returns the new id.
    pub fn insert_order(&self, o: &Order) -> Result<i64, StoreError> {
        let t = now();
        self.execute(
            "INSERT INTO orders (iccid, template, state, eid, matching_id, confirmation_code, \
             cc_attempts, download_attempts, imsi, k, opc, msisdn, personalised, \
             last_transaction_id, euicc_certificate, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
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
                o.euicc_certificate.as_deref().map(hex::encode_upper),
                t
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Writes every mutable field of `o` (by id), whatever the row holds now. Only for
    /// setting up tests and tools: the SM-DP+ changes orders with [`Store::transition`].
    pub fn update_order(&self, o: &Order) -> Result<(), StoreError> {
        write_order(&self.conn, o, None)?;
        Ok(())
    }

    /// Changes order `id` atomically: in one `BEGIN IMMEDIATE` transaction (which takes the
    /// database's write lock first, so no other connection or process writes in between) the
    /// row is read, `change` decides on it — editing the order, returning an error, or both
    /// (e.g. count a wrong confirmation code and refuse) — and an edited order is written
    /// with a conditional UPDATE that applies only to the row exactly as read.
    ///
    /// Returns the order as stored afterwards and what `change` returned.
    pub fn transition<T, E>(
        &self,
        id: i64,
        change: impl FnOnce(&mut Order) -> Result<T, E>,
    ) -> Result<(Order, Result<T, E>), StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let before = tx
            .prepare_cached(order_select!("WHERE id = ?1"))?
            .query_row([id], order_from_row)
            .optional()?
            .transpose()?
            .ok_or(StoreError::NoOrder(id))?;
        let mut after = before.clone();
        let outcome = change(&mut after);
        after.id = before.id;
        if after != before {
            if write_order(&tx, &after, Some(&before))? != 1 {
                return Err(StoreError::Conflict(id));
            }
            tx.commit()?;
        }
        Ok((after, outcome))
    }

    /// The one order `sql` (an [`order_select!`]) selects with `params`, if any.
    fn one_order(
        &self,
        sql: &'static str,
        params: impl rusqlite::Params,
    ) -> Result<Option<Order>, StoreError> {
        self.conn
            .prepare_cached(sql)?
            .query_row(params, order_from_row)
            .optional()?
            .transpose()
    }

    pub fn order(&self, id: i64) -> Result<Option<Order>, StoreError> {
        self.one_order(order_select!("WHERE id = ?1"), [id])
    }

    pub fn order_by_matching_id(&self, matching_id: &str) -> Result<Option<Order>, StoreError> {
        self.one_order(
            order_select!("WHERE matching_id = ?1 ORDER BY id DESC LIMIT 1"),
            [matching_id],
        )
    }

    /// The newest order with this ICCID.
    pub fn order_by_iccid(&self, iccid: &str) -> Result<Option<Order>, StoreError> {
        self.one_order(
            order_select!("WHERE iccid = ?1 ORDER BY id DESC LIMIT 1"),
            [iccid],
        )
    }

    /// The newest order bound to `eid` that is released, or downloaded but not yet reported
    /// installed (default SM-DP+ / no matching ID case, SGP.22 §3.1.3.2; a download that was
    /// interrupted after the package was sent can be retried).
    pub fn released_order_for_eid(&self, eid: &str) -> Result<Option<Order>, StoreError> {
        self.one_order(
            order_select!("WHERE eid = ?1 AND state IN (?2, ?3) ORDER BY id DESC LIMIT 1"),
            params![
                eid,
                OrderState::Released.as_str(),
                OrderState::Downloaded.as_str()
            ],
        )
    }

    /// Orders of `iccid` whose package went out and whose installation result has not come
    /// back, newest first (at most a few: a template's ICCID is shared by its downloads).
    pub fn orders_awaiting_result(&self, iccid: &str) -> Result<Vec<Order>, StoreError> {
        let mut stmt = self.conn.prepare_cached(order_select!(
            "WHERE iccid = ?1 AND state IN (?2, ?3) ",
            "AND euicc_certificate IS NOT NULL ORDER BY id DESC LIMIT 16"
        ))?;
        let rows = stmt.query_map(
            params![
                iccid,
                OrderState::Released.as_str(),
                OrderState::Downloaded.as_str()
            ],
            order_from_row,
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Every order, oldest first.
    pub fn orders(&self) -> Result<Vec<Order>, StoreError> {
        let mut stmt = self.conn.prepare_cached(order_select!("ORDER BY id"))?;
        let rows = stmt.query_map([], order_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Stores a new session that expires at `expires_at_ms` (Unix milliseconds).
    pub fn create_session(
        &self,
        transaction_id: &str,
        data: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO sessions (transaction_id, data, updated_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![transaction_id, data, now(), expires_at_ms],
        )?;
        Ok(())
    }

    /// Replaces a session's data, keeping its expiry. Returns false if it does not exist.
    pub fn put_session(&self, transaction_id: &str, data: &str) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE sessions SET data = ?2, updated_at = ?3 WHERE transaction_id = ?1",
            params![transaction_id, data, now()],
        )?;
        Ok(n == 1)
    }

    /// The data of a session that has not expired at `now_ms`.
    pub fn session(&self, transaction_id: &str, now_ms: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .query_row(
                "SELECT data FROM sessions WHERE transaction_id = ?1 AND expires_at > ?2",
                params![transaction_id, now_ms],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Deletes every session expired at `now_ms`; returns how many.
    pub fn purge_sessions(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now_ms])
    }

    /// Sessions stored, expired or not.
    pub fn session_count(&self) -> Result<u64, StoreError> {
        Ok(self.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))?)
    }

    pub fn delete_session(&self, transaction_id: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM sessions WHERE transaction_id = ?1",
            [transaction_id],
        )?;
        Ok(())
    }

    /// Increments and returns a named counter (first value 1).
    pub fn next_counter(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self.query_row(
            "INSERT INTO counters (name, value) VALUES (?1, 1) \
             ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            [name],
            |r| r.get(0),
        )?)
    }

    pub fn record_notification(&self, n: &NotificationRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO notifications (eid, iccid, seq_number, operation, result, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![n.eid, n.iccid, n.seq_number, n.operation, n.result, now()],
        )?;
        Ok(())
    }

    pub fn notifications(&self) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
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
        self.execute(
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
        self.execute(
            "UPDATE progress_events SET delivery = ?2 WHERE id = ?1",
            params![id, delivery],
        )?;
        Ok(())
    }

    pub fn progress_events(&self) -> Result<Vec<ProgressEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
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
            euicc_certificate: None,
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
        o.euicc_certificate = Some(vec![0x30, 0x00]);
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

    #[test]
    fn a_transition_writes_what_the_change_decided_and_returns_its_outcome() {
        let store = Store::open(None).unwrap();
        let id = store.insert_order(&order()).unwrap();
        let (after, outcome) = store
            .transition(id, |o| {
                o.download_attempts += 1;
                Err::<(), _>("refused after counting")
            })
            .unwrap();
        assert_eq!(outcome, Err("refused after counting"));
        assert_eq!(after.download_attempts, 1);
        assert_eq!(store.order(id).unwrap().unwrap(), after);
        let (_, outcome) = store.transition(id, |_| Ok::<_, ()>(7)).unwrap();
        assert_eq!(outcome, Ok(7));
        assert!(matches!(
            store.transition(999, |_| Ok::<_, ()>(())),
            Err(StoreError::NoOrder(999))
        ));
    }

    #[test]
    fn transitions_from_two_connections_never_both_act_on_the_same_state() {
        // Two SM-DP+ processes sharing one database file: each claims the released order
        // only if it is still released; exactly one claim per round succeeds.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smdp.sqlite");
        let first = Store::open(Some(&path)).unwrap();
        let mut o = order();
        o.state = OrderState::Released;
        let id = first.insert_order(&o).unwrap();
        drop(first);
        let wins: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let path = path.clone();
                    scope.spawn(move || {
                        let store = Store::open(Some(&path)).unwrap();
                        let (_, outcome) = store
                            .transition(id, |o| {
                                if o.state != OrderState::Released {
                                    return Err(());
                                }
                                o.state = OrderState::Downloaded;
                                o.last_transaction_id = Some(format!("T{i}"));
                                Ok(())
                            })
                            .unwrap();
                        outcome.is_ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    }

    #[test]
    fn a_blind_write_between_read_and_write_is_detected_as_a_conflict() {
        let store = Store::open(None).unwrap();
        let id = store.insert_order(&order()).unwrap();
        let result = store.transition(id, |o| {
            // Inside the transaction the same connection changes the row behind the
            // transition's back; the conditional UPDATE must notice.
            let mut other = o.clone();
            other.state = OrderState::Error;
            store.update_order(&other).unwrap();
            o.state = OrderState::Released;
            Ok::<_, ()>(())
        });
        assert!(matches!(result, Err(StoreError::Conflict(i)) if i == id));
    }

    #[test]
    fn expired_sessions_are_invisible_and_purged() {
        let store = Store::open(None).unwrap();
        store.create_session("A", "{}", 1_000).unwrap();
        store.create_session("B", "{}", 2_000).unwrap();
        assert_eq!(store.session("A", 999).unwrap().as_deref(), Some("{}"));
        assert_eq!(
            store.session("A", 1_000).unwrap(),
            None,
            "expired at its time"
        );
        assert!(store.put_session("A", "{\"x\":1}").unwrap());
        assert!(!store.put_session("C", "{}").unwrap());
        assert_eq!(store.purge_sessions(1_500).unwrap(), 1);
        assert_eq!(store.session_count().unwrap(), 1);
        assert_eq!(store.session("B", 1_500).unwrap().as_deref(), Some("{}"));
    }

    #[test]
    fn opens_a_database_written_before_sessions_expired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE sessions (transaction_id TEXT PRIMARY KEY, data TEXT NOT NULL, \
             updated_at INTEGER NOT NULL);
             INSERT INTO sessions VALUES ('OLD', '{}', 1);",
        )
        .unwrap();
        drop(conn);
        let store = Store::open(Some(&path)).unwrap();
        assert_eq!(store.session("OLD", now_ms()).unwrap(), None);
        assert_eq!(store.purge_sessions(now_ms()).unwrap(), 1);
        let id = store.insert_order(&order()).unwrap();
        assert_eq!(store.order(id).unwrap().unwrap().euicc_certificate, None);
    }
}
