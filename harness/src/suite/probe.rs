//! What the card can do, found out before the cases run, without changing its persistent
//! state (no PIN is presented, nothing is written): the capabilities cases `require`, and
//! values cases refer to (`$USIM_AID`, `$EID`, `$ENABLED_ICCID`, …).
//!
//! | capability | how it is found |
//! |---|---|
//! | `uicc` | SELECT MF by FID answers 90 00 (TS 102 221 §11.1.1) |
//! | `usim` | EF.DIR lists an application whose AID starts with the USIM RID and code A0000000871002 (TS 102 221 §13.1, TS 31.102 §4.1) and SELECT by that AID answers 90 00 |
//! | `pin1-enabled` / `pin1-disabled` | VERIFY PIN1 without data answers 63 CX / 90 00 (TS 102 221 §11.1.9) |
//! | `euicc` | the ISD-R is selectable on a logical channel (SGP.22 §2.2.1) and GetEID answers |
//! | `profile-enabled` / `profile-disabled` | GetProfilesInfo lists a profile in that state (SGP.22 §5.7.15) |
//! | `channels-4` | logical channels 1–3 can be opened (TS 102 221 §11.1.17) |
//! | `channels-19` | logical channels 4–19 can be opened too |
//! | `ota-keyset-N`, `ota-keyset-3des`, `ota-keyset-aes` | the run has the card's OTA keyset with KID index N, or one of that kind (`--ota-keys FILE`, or the `--card` definition's) |
//!
//! Values: `ICCID` (EF.ICCID, 10 bytes), `USIM_AID`, `EID`, `ENABLED_ICCID` / `ENABLED_AID`
//! (the enabled profile's `Iccid` and ISD-P AID), `DISABLED_ICCID` / `DISABLED_AID`.
//! Capabilities that cannot be probed without side effects (which PIN values the card has,
//! which keys its USIM uses) are declared per card in the deviations file (`provides`).

use super::case::Vars;
use crate::lpa::IsdR;
use crate::transport::{split_sw, Transport, TransportError};
use serde::Serialize;
use simlab_emulator::rsp::es10::{self, Der};
use simlab_emulator::tlv;
use std::collections::BTreeMap;

/// RID + application code of a USIM AID (TS 31.102 §4.1, TS 101 220 Annex E).
const USIM_AID_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02];
/// EF.DIR (TS 102 221 §13.1) and its records: application template '61' with AID '4F'.
const FID_DIR: [u8; 2] = [0x2F, 0x00];
const TAG_APPLICATION_TEMPLATE: u32 = 0x61;
const TAG_AID: u32 = 0x4F;
/// How many EF.DIR records are read at most.
const MAX_DIR_RECORDS: u8 = 16;

/// What the probe found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Capability → how it was found (or "declared").
    pub have: BTreeMap<String, String>,
    /// Capability → why the card does not have it.
    pub lacking: BTreeMap<String, String>,
    #[serde(skip)]
    pub vars: Vars,
    /// Values found, as hex, for the report.
    pub values: BTreeMap<String, String>,
}

impl Capabilities {
    fn has(&mut self, name: &str, evidence: impl Into<String>) {
        self.lacking.remove(name);
        self.have.insert(name.to_owned(), evidence.into());
    }

    fn lacks(&mut self, name: &str, why: impl Into<String>) {
        if !self.have.contains_key(name) {
            self.lacking.insert(name.to_owned(), why.into());
        }
    }

    fn value(&mut self, name: &str, bytes: Vec<u8>) {
        self.values
            .insert(name.to_owned(), hex::encode_upper(&bytes));
        self.vars.insert(name.to_owned(), bytes);
    }

    /// Adds what a deviations file declares.
    pub fn declare(&mut self, names: &[String]) {
        for n in names {
            self.has(n, "declared in the deviations file");
        }
    }

    /// `ota-keyset-N` for each keyset the run has (KID index N), and why the others lack.
    pub fn ota_keysets(&mut self, keys: &super::ota::OtaKeys) {
        use super::case::KeysetRef;
        for (name, evidence) in super::ota::capabilities(keys) {
            self.has(&name, evidence);
        }
        let refs = (1..=15)
            .map(KeysetRef::Index)
            .chain([KeysetRef::TripleDes, KeysetRef::Aes]);
        for r in refs {
            let why = if keys.keysets.is_empty() {
                "no OTA keys: give the card's keysets with --ota-keys FILE ([[ota.keyset]] \
                 tables, docs/ota.md)"
                    .to_owned()
            } else {
                format!("no such keyset in {}", keys.source)
            };
            self.lacks(&super::ota::keyset_capability(r), why);
        }
    }

    /// `None` if every requirement is met, else why not.
    pub fn missing(&self, requires: &[String]) -> Option<String> {
        let missing: Vec<String> = requires
            .iter()
            .filter(|r| !self.have.contains_key(*r))
            .map(|r| match self.lacking.get(r) {
                Some(why) => format!("no `{r}`: {why}"),
                None => format!(
                    "no `{r}`: not probed; declare it with `provides` in the card's deviations file"
                ),
            })
            .collect();
        (!missing.is_empty()).then(|| missing.join("; "))
    }
}

fn sw_of(answer: &[u8]) -> u16 {
    split_sw(answer).1
}

/// Probes the card. Only transport failures are errors; a card that answers oddly simply
/// lacks the capability.
pub fn probe(t: &mut dyn Transport) -> Result<Capabilities, TransportError> {
    let mut caps = Capabilities::default();
    t.reset()?;
    let sw = sw_of(&t.transmit_raw(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])?);
    if sw == 0x9000 {
        caps.has("uicc", "SELECT MF answered 90 00");
    } else {
        caps.lacks("uicc", format!("SELECT MF answered {sw:04X}"));
    }
    // EF.ICCID (TS 102 221 §13.2).
    if sw_of(&t.transmit_raw(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0xE2])?) == 0x9000 {
        let answer = t.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x0A])?;
        if let (data, 0x9000) = split_sw(&answer) {
            caps.value("ICCID", data.to_vec());
        }
    }
    probe_usim(t, &mut caps)?;
    // PIN1 status (TS 102 221 §11.1.9): no data, so no attempt is used.
    match sw_of(&t.transmit_raw(&[0x00, 0x20, 0x00, 0x01])?) {
        sw if sw & 0xFFF0 == 0x63C0 => {
            caps.has("pin1-enabled", format!("VERIFY PIN1 status {sw:04X}"));
            caps.lacks("pin1-disabled", format!("VERIFY PIN1 status {sw:04X}"));
        }
        0x9000 => {
            caps.has("pin1-disabled", "VERIFY PIN1 status 9000");
            caps.lacks("pin1-enabled", "VERIFY PIN1 status 9000");
        }
        sw => {
            caps.lacks("pin1-enabled", format!("VERIFY PIN1 status {sw:04X}"));
            caps.lacks("pin1-disabled", format!("VERIFY PIN1 status {sw:04X}"));
        }
    }
    probe_channels(t, &mut caps)?;
    probe_euicc(t, &mut caps)?;
    t.reset()?;
    Ok(caps)
}

fn probe_usim(t: &mut dyn Transport, caps: &mut Capabilities) -> Result<(), TransportError> {
    t.transmit_raw(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])?;
    let sw = sw_of(&t.transmit_raw(&[0x00, 0xA4, 0x00, 0x0C, 0x02, FID_DIR[0], FID_DIR[1]])?);
    if sw != 0x9000 {
        caps.lacks("usim", format!("SELECT EF.DIR answered {sw:04X}"));
        return Ok(());
    }
    let mut aid = None;
    for n in 1..=MAX_DIR_RECORDS {
        let answer = t.transmit(&[0x00, 0xB2, n, 0x04, 0x00])?;
        let (data, sw) = split_sw(&answer);
        if sw != 0x9000 {
            break;
        }
        let found = tlv::TlvIter::new(data)
            .map_while(Result::ok)
            .filter(|t| t.tag == TAG_APPLICATION_TEMPLATE)
            .find_map(|t| t.find(TAG_AID))
            .map(|a| a.value.to_vec())
            .filter(|a| a.starts_with(&USIM_AID_PREFIX));
        if found.is_some() {
            aid = found;
            break;
        }
    }
    let Some(aid) = aid else {
        caps.lacks("usim", "EF.DIR lists no USIM application");
        return Ok(());
    };
    let mut select = vec![0x00, 0xA4, 0x04, 0x0C, u8::try_from(aid.len()).unwrap_or(0)];
    select.extend_from_slice(&aid);
    let sw = sw_of(&t.transmit_raw(&select)?);
    if sw == 0x9000 {
        caps.has(
            "usim",
            format!("USIM {} selectable", hex::encode_upper(&aid)),
        );
        caps.value("USIM_AID", aid);
    } else {
        caps.lacks(
            "usim",
            format!("SELECT USIM {} answered {sw:04X}", hex::encode_upper(&aid)),
        );
    }
    Ok(())
}

fn probe_channels(t: &mut dyn Transport, caps: &mut Capabilities) -> Result<(), TransportError> {
    t.reset()?;
    let mut opened = 0u8;
    for _ in 1..=19 {
        let answer = t.transmit_raw(&[0x00, 0x70, 0x00, 0x00, 0x01])?;
        match split_sw(&answer) {
            ([_], 0x9000) => opened += 1,
            _ => break,
        }
    }
    if opened >= 3 {
        caps.has("channels-4", "channels 1–3 open");
    } else {
        caps.lacks(
            "channels-4",
            format!("only {opened} extra logical channels open"),
        );
    }
    if opened >= 19 {
        caps.has("channels-19", "channels 1–19 open");
    } else {
        caps.lacks(
            "channels-19",
            format!("only {opened} extra logical channels open"),
        );
    }
    t.reset()?;
    Ok(())
}

fn probe_euicc(t: &mut dyn Transport, caps: &mut Capabilities) -> Result<(), TransportError> {
    let mut isd_r = match IsdR::open(&mut *t) {
        Ok(i) => i,
        Err(crate::lpa::isd_r::IsdRError::Transport(e)) => return Err(e),
        Err(e) => {
            for c in ["euicc", "profile-enabled", "profile-disabled"] {
                caps.lacks(c, format!("no ISD-R: {e}"));
            }
            return Ok(());
        }
    };
    let eid = isd_r
        .es10(&es10::GetEuiccDataRequest::default().to_der())
        .ok()
        .and_then(|a| es10::GetEuiccDataResponse::from_der(&a).ok());
    let Some(eid) = eid else {
        caps.lacks(
            "euicc",
            "the ISD-R is selectable but GetEID did not answer an EID",
        );
        return Ok(());
    };
    caps.has("euicc", "ISD-R selectable, GetEID answers");
    caps.value("EID", eid.eid.to_vec());
    let list = isd_r
        .es10(&es10::ProfileInfoListRequest::default().to_der())
        .ok()
        .and_then(|a| es10::ProfileInfoListResponse::from_der(&a).ok());
    let profiles = match list {
        Some(es10::ProfileInfoListResponse::Ok(p)) => p,
        _ => Vec::new(),
    };
    for (state, cap, prefix) in [
        (es10::ProfileState::Enabled, "profile-enabled", "ENABLED"),
        (es10::ProfileState::Disabled, "profile-disabled", "DISABLED"),
    ] {
        match profiles.iter().find(|p| p.state == Some(state)) {
            Some(p) => {
                caps.has(
                    cap,
                    format!(
                        "profile {} is {}",
                        p.iccid
                            .as_ref()
                            .map(es10::Iccid::digits)
                            .unwrap_or_default(),
                        cap.trim_start_matches("profile-")
                    ),
                );
                if let Some(i) = &p.iccid {
                    caps.value(&format!("{prefix}_ICCID"), i.0.to_vec());
                }
                if let Some(a) = &p.isdp_aid {
                    caps.value(&format!("{prefix}_AID"), a.clone());
                }
            }
            None => caps.lacks(
                cap,
                format!(
                    "GetProfilesInfo lists no {} profile",
                    cap.trim_start_matches("profile-")
                ),
            ),
        }
    }
    Ok(())
}
