//! The network's OTA sender (issue 8; ETSI TS 102 225 SCP80 secured packets, TS 102 226 RFM,
//! 3GPP TS 31.115 SMS-PP): builds the secured packet for a subscriber's card from the keys the
//! BOSS holds for it (`Line.ota`: the card's `OtaKeys`), puts the SMS-DELIVER TPDUs in that
//! card's inbox (kind `sms-pp`), takes back the PoR the device got from its card and records
//! the verified outcome. The codecs are [`crate::ota`]'s (the card's own).
//!
//! A job is addressed to one card (IMSI), even a disabled one: the command that deactivates
//! an old USIM goes out just as its IMSI leaves service (the upgrade of Fig. 16).

use super::db::{self, Line};
use super::error::NetError;
use crate::ota::{build_sms_pp, verify_por, RemoteCommand, TAR_UICC_RFM, TAR_USIM_RFM};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use simlab_emulator::ota::keys::OtaKeys;
use simlab_emulator::ota::ts_23_040::Address;

/// The OTA server's address (TP-OA of the SMS-DELIVER).
pub const OTA_ORIGINATOR: &str = "+15555550000";

/// What to send (`POST /ota/commands`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtaRequest {
    pub imsi: String,
    /// Command APDUs (hex) for the remote application; absent with `deactivateUsim`.
    #[serde(default)]
    pub apdus: Vec<String>,
    /// Send DEACTIVATE FILE to ADF.USIM (TS 102 221 §11.1.14) through USIM RFM.
    #[serde(default)]
    pub deactivate_usim: bool,
    /// `usim` (TAR B00011, default) or `uicc` (TAR B00010).
    #[serde(default)]
    pub application: Option<String>,
    /// KID key index of the keyset to use (default: the card's first keyset).
    #[serde(default)]
    pub keyset: Option<u8>,
}

/// A job as stored and shown (`GET /admin/ota`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtaJob {
    pub id: String,
    pub imsi: String,
    /// The request as sent (application, keyset, APDUs).
    pub request: StoredCommand,
    /// Ids of the SMS carrying it (one per TPDU).
    pub sms: Vec<i64>,
    /// "sent", "por-ok" or "por-error".
    pub state: String,
    /// The PoR (hex) as the device returned it.
    pub por: Option<String>,
    /// The verified outcome: PoR status, per-command status words, or why it was refused.
    pub outcome: Option<serde_json::Value>,
}

/// What the PoR is checked against (the command is rebuilt from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCommand {
    pub application: String,
    pub keyset: u8,
    pub apdus: Vec<String>,
}

impl StoredCommand {
    fn command(&self) -> Result<RemoteCommand, NetError> {
        let apdus = self
            .apdus
            .iter()
            .map(|a| {
                hex::decode(a).map_err(|_| NetError::invalid("apdus", format!("{a:?} is not hex")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut command = RemoteCommand::usim_rfm(apdus);
        if self.application == "uicc" {
            command.tar = TAR_UICC_RFM;
        } else {
            command.tar = TAR_USIM_RFM;
        }
        Ok(command)
    }
}

/// The card's keysets as the BOSS holds them.
fn keys_of(line: &Line) -> Result<OtaKeys, NetError> {
    let ota = line.ota.clone().ok_or_else(|| {
        NetError::conflict(
            "no-ota-keys",
            format!(
                "the BOSS holds no OTA keys for IMSI {}: provision them (`ota`)",
                line.imsi
            ),
        )
    })?;
    serde_json::from_value(ota)
        .map_err(|e| NetError::internal(format!("OTA keys of {}: {e}", line.imsi)))
}

/// Checks the `ota` field of a provisioning: the card's keysets (`OtaKeys`).
pub fn check_keys(ota: &serde_json::Value) -> Result<(), NetError> {
    let keys: OtaKeys = serde_json::from_value(ota.clone()).map_err(|e| {
        NetError::invalid(
            "ota",
            format!("expected the card's OTA keysets ({{\"keysets\": [...]}}): {e}"),
        )
    })?;
    for k in &keys.keysets {
        k.keys
            .check()
            .map_err(|e| NetError::invalid("ota.keysets", e))?;
    }
    Ok(())
}

/// Builds the job and puts its SMS-PP messages in the card's inbox (inside the caller's
/// transaction).
pub fn send(c: &Connection, line: &Line, request: &OtaRequest) -> Result<OtaJob, NetError> {
    let keys = keys_of(line)?;
    let keyset = match request.keyset {
        Some(index) => keys
            .keysets
            .iter()
            .find(|k| k.keys.kid_index == index)
            .ok_or_else(|| {
                NetError::invalid(
                    "keyset",
                    format!("the card has no keyset with KID index {index}"),
                )
            })?,
        None => keys.keysets.first().ok_or_else(|| {
            NetError::conflict(
                "no-ota-keys",
                format!("no OTA keyset for IMSI {}", line.imsi),
            )
        })?,
    };
    let application = match request.application.as_deref() {
        None | Some("usim") => "usim",
        Some("uicc") => "uicc",
        Some(other) => {
            return Err(NetError::invalid(
                "application",
                format!("{other:?}: expected usim or uicc"),
            ))
        }
    };
    let apdus = if request.deactivate_usim {
        if !request.apdus.is_empty() || application != "usim" {
            return Err(NetError::invalid(
                "deactivateUsim",
                "goes alone, to the usim application",
            ));
        }
        RemoteCommand::deactivate_usim()
            .apdus
            .iter()
            .map(hex::encode_upper)
            .collect()
    } else {
        if request.apdus.is_empty() {
            return Err(NetError::missing("apdus (or deactivateUsim)"));
        }
        request
            .apdus
            .iter()
            .map(|a| a.replace(' ', "").to_ascii_uppercase())
            .collect()
    };
    let stored = StoredCommand {
        application: application.into(),
        keyset: keyset.keys.kid_index,
        apdus,
    };
    let command = stored.command()?;
    let reference = (db::now() & 0xFF) as u8;
    let tpdus = build_sms_pp(
        &keyset.keys,
        &command,
        &Address::isdn(OTA_ORIGINATOR),
        reference,
    )
    .map_err(|e| NetError::invalid("apdus", e))?;
    let id = format!("ota-{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut sms = Vec::new();
    for tpdu in &tpdus {
        // SMS-PP: `text` carries the job id, `userData` the SMS-DELIVER TPDU.
        sms.push(db::insert_sms(
            c,
            &line.msisdn,
            OTA_ORIGINATOR,
            &id,
            "sms-pp",
            Some(&hex::encode_upper(tpdu)),
            std::slice::from_ref(&line.imsi),
        )?);
    }
    let job = OtaJob {
        id,
        imsi: line.imsi.clone(),
        request: stored,
        sms,
        state: "sent".into(),
        por: None,
        outcome: None,
    };
    put(c, &job)?;
    Ok(job)
}

/// Verifies the PoR a device returns for a job and records the outcome.
pub fn por(c: &Connection, job_id: &str, por_hex: &str) -> Result<OtaJob, NetError> {
    let mut job =
        get(c, job_id)?.ok_or_else(|| NetError::not_found(format!("no OTA job {job_id}")))?;
    if job.state != "sent" {
        return Err(NetError::conflict(
            "operation-state",
            format!("OTA job {job_id} already has its PoR ({})", job.state),
        ));
    }
    let raw = hex::decode(por_hex.replace(' ', ""))
        .map_err(|_| NetError::invalid("por", "expected hex"))?;
    let line = db::line(c, &job.imsi)?.ok_or_else(|| NetError::internal("OTA job without line"))?;
    let keys = keys_of(&line)?;
    let keyset = keys
        .keysets
        .iter()
        .find(|k| k.keys.kid_index == job.request.keyset)
        .ok_or_else(|| NetError::internal("OTA keyset gone"))?;
    let command = job.request.command()?;
    job.por = Some(hex::encode_upper(&raw));
    match verify_por(&keyset.keys, &command, &raw) {
        Ok(report) => {
            let responses: Vec<serde_json::Value> = report
                .script
                .as_ref()
                .map(|s| {
                    s.responses
                        .iter()
                        .map(|r| serde_json::json!({"sw": format!("{:04X}", r.sw), "data": hex::encode_upper(&r.data)}))
                        .collect()
                })
                .unwrap_or_default();
            let ok = report.status == simlab_emulator::ota::ts_102_225::PorStatus::Ok;
            job.state = if ok { "por-ok" } else { "por-error" }.into();
            job.outcome = Some(serde_json::json!({
                "status": report.status.name(),
                "secured": report.secured,
                "executed": report.script.as_ref().map(|s| s.executed),
                "responses": responses,
            }));
        }
        Err(e) => {
            job.state = "por-error".into();
            job.outcome = Some(serde_json::json!({"refused": e.to_string()}));
        }
    }
    put(c, &job)?;
    Ok(job)
}

/// A `net_ota_jobs` row: id, imsi, request, state, por, outcome.
type JobRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn put(c: &Connection, job: &OtaJob) -> Result<(), NetError> {
    c.prepare_cached(
        "INSERT INTO net_ota_jobs (id, imsi, request, sms_id, state, por, outcome, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(id) DO UPDATE SET state = ?5, \
         por = ?6, outcome = ?7",
    )?
    .execute(params![
        job.id,
        job.imsi,
        serde_json::json!({"command": job.request, "sms": job.sms}).to_string(),
        job.sms.first(),
        job.state,
        job.por,
        job.outcome.as_ref().map(|o| o.to_string()),
        db::now()
    ])?;
    Ok(())
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode(row: JobRow) -> Result<OtaJob, NetError> {
    let (id, imsi, request, state, por, outcome) = row;
    #[derive(Deserialize)]
    struct Stored {
        command: StoredCommand,
        sms: Vec<i64>,
    }
    let stored: Stored = serde_json::from_str(&request)
        .map_err(|e| NetError::internal(format!("OTA job {id}: {e}")))?;
    Ok(OtaJob {
        id,
        imsi,
        request: stored.command,
        sms: stored.sms,
        state,
        por,
        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
    })
}

pub fn get(c: &Connection, id: &str) -> Result<Option<OtaJob>, NetError> {
    c.prepare_cached(
        "SELECT id, imsi, request, state, por, outcome FROM net_ota_jobs WHERE id = ?1",
    )?
    .query_row([id], from_row)
    .optional()?
    .map(decode)
    .transpose()
}

pub fn all(c: &Connection) -> Result<Vec<OtaJob>, NetError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, imsi, request, state, por, outcome FROM net_ota_jobs ORDER BY created_at, rowid",
    )?;
    let rows = stmt.query_map([], from_row)?;
    rows.map(|r| decode(r?)).collect()
}
