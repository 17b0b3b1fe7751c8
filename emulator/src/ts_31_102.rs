//! 3GPP TS 31.102 (V17): the USIM application — its ADF and EFs (§4.2, contents encoded as
//! §4.2.x says) and AUTHENTICATE (§7.1.2) in the 3G and GSM security contexts.

use crate::aka;
use crate::aka::ts_31_102::AuthenticateCommand;
use crate::apdu::Command;
use crate::app::{CmdResult, Context, Response};
use crate::fs::{self, ArrRef, FileBody, FileSystem, FsError, LifeCycle, NodeId};
use crate::saip;
use crate::status::StatusWord;

/// The USIM's persistent state lives with the card's ([`crate::state::CardState`]).
pub use crate::aka::UsimState;

/// Service n°27 "GSM Access" in EF.UST: when available, the 3G answer also carries Kc.
pub const SERVICE_GSM_ACCESS: usize = 27;

/// AUTHENTICATE (TS 31.102 §7.1.2) on the USIM selected on the command's channel.
pub fn authenticate(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    if cmd.p1 != 0x00 {
        return Err(StatusWord::IncorrectP1P2);
    }
    let challenge = AuthenticateCommand::parse(cmd.p2, cmd.data)
        .map_err(|e| StatusWord::from_u16(u16::from_be_bytes(e.status_word())))?;
    let adf = usable_usim(ctx)?;
    let gsm_access = service_available(&ctx.state.fs, adf, SERVICE_GSM_ACCESS);
    let usim = ctx
        .state
        .usim
        .as_mut()
        .ok_or(StatusWord::ConditionsOfUseNotSatisfied)?;
    let answer = aka::ts_31_102::execute(&challenge, &usim.algorithm, &mut usim.sqn, gsm_access)
        .map_err(|e| StatusWord::from_u16(u16::from_be_bytes(e.status_word())))?;
    Ok(Response::ok(answer.encode()))
}

/// The USIM ADF selected on this channel, if it is active and its PIN condition is met.
///
/// An invalidated (deactivated) ADF refuses AUTHENTICATE with '69 85': this is how an
/// operator disables an old card (TS 102 221 §11.1.14).
fn usable_usim(ctx: &Context<'_>) -> Result<NodeId, StatusWord> {
    let adf = ctx
        .chan()
        .adf
        .ok_or(StatusWord::ConditionsOfUseNotSatisfied)?;
    let node = ctx
        .state
        .fs
        .node(adf)
        .ok_or(StatusWord::ConditionsOfUseNotSatisfied)?;
    if node.life_cycle == LifeCycle::Deactivated {
        return Err(StatusWord::ConditionsOfUseNotSatisfied);
    }
    // §7.1.2: AUTHENTICATE needs the application PIN (PIN1) unless it is disabled.
    if !ctx.key_satisfied(crate::pin::KEY_PIN1) {
        return Err(StatusWord::SecurityStatusNotSatisfied);
    }
    Ok(adf)
}

/// Whether service `n` is set in EF.UST (TS 31.102 §4.2.8: bit (n-1) mod 8 of byte (n-1)/8).
pub fn service_available(fs: &FileSystem, adf: NodeId, n: usize) -> bool {
    let Some(ust) = fs.child_by_fid(adf, FID_UST) else {
        return false;
    };
    match fs.node(ust).map(|u| &u.body) {
        Some(FileBody::Transparent(bytes)) => {
            n > 0
                && bytes
                    .get((n - 1) / 8)
                    .is_some_and(|b| b & (1 << ((n - 1) % 8)) != 0)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// The USIM's files (§4.2) and their encodings.

pub const FID_ADF_USIM: u16 = 0x7FF0;
pub const FID_ARR: u16 = 0x6F06;
pub const FID_IMSI: u16 = 0x6F07;
pub const FID_KEYS: u16 = 0x6F08;
pub const FID_KEYS_PS: u16 = 0x6F09;
pub const FID_AD: u16 = 0x6FAD;
pub const FID_UST: u16 = 0x6F38;
pub const FID_EST: u16 = 0x6F56;
pub const FID_ACC: u16 = 0x6F78;
pub const FID_LOCI: u16 = 0x6F7E;
pub const FID_SPN: u16 = 0x6F46;
pub const FID_MSISDN: u16 = 0x6F40;

/// Length of the alpha identifier we give EF.MSISDN records (§4.2.26: X bytes, then 14).
const MSISDN_ALPHA_LEN: usize = 14;
/// Record length of EF.MSISDN as built here.
pub const MSISDN_RECORD_LEN: usize = MSISDN_ALPHA_LEN + 14;

/// EF.SPN (§4.2.12): display condition then the name, GSM default alphabet ('FF' padded).
/// The name is limited to the GSM 7-bit characters that share ASCII codes.
fn encode_spn(name: &str) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend(
        name.bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b' ')
            .take(16),
    );
    out.resize(17, 0xFF);
    out
}

/// What the USIM's files are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsimFiles<'a> {
    pub aid: &'a [u8],
    pub imsi: &'a str,
    pub msisdn: Option<&'a str>,
    pub spn: Option<&'a str>,
    pub mnc_length: u8,
    /// EF.UST services to mark available.
    pub services: &'a [usize],
}

/// Access rules used by the default files: records of EF.ARR (TS 102 221 §9.2.4).
pub mod rules {
    use crate::arr::rule;
    use crate::pin::{KEY_ADM1, KEY_PIN1};

    /// Record 1: read always; update/deactivate/activate with ADM1.
    pub const READ_ALWAYS: u8 = 1;
    /// Record 2: read and update with PIN1; deactivate/activate with ADM1.
    pub const PIN1_READ_UPDATE: u8 = 2;
    /// Record 3: read with PIN1; update/deactivate/activate with ADM1.
    pub const PIN1_READ_ADM_UPDATE: u8 = 3;

    pub const RECORD_LEN: usize = 32;

    /// The records, FF-padded to [`RECORD_LEN`].
    pub fn records() -> Vec<Vec<u8>> {
        let update_deact_act = 0x02 | 0x08 | 0x10;
        [
            [rule::always(0x01), rule::key(update_deact_act, KEY_ADM1)].concat(),
            [
                rule::key(0x01 | 0x02, KEY_PIN1),
                rule::key(0x08 | 0x10, KEY_ADM1),
            ]
            .concat(),
            [
                rule::key(0x01, KEY_PIN1),
                rule::key(update_deact_act, KEY_ADM1),
            ]
            .concat(),
        ]
        .into_iter()
        .map(|mut r| {
            r.resize(RECORD_LEN, 0xFF);
            r
        })
        .collect()
    }
}

/// Creates ADF.USIM and its EFs under the MF; returns the ADF.
pub fn build_usim(fs: &mut FileSystem, f: &UsimFiles<'_>) -> Result<NodeId, FsError> {
    let at = |record| ArrRef {
        arr_fid: FID_ARR,
        record,
    };
    let adf = fs.add(
        FileSystem::MF,
        fs::df(FID_ADF_USIM, Some(f.aid.to_vec()), at(rules::READ_ALWAYS)),
    )?;
    let arr = FileBody::LinearFixed {
        record_len: rules::RECORD_LEN,
        records: rules::records(),
    };
    fs.add(
        adf,
        fs::ef(FID_ARR, Some(0x17), at(rules::READ_ALWAYS), arr),
    )?;
    let imsi = saip::encode_imsi(f.imsi)
        .ok()
        .map(|b| b.to_vec())
        .unwrap_or_else(|| vec![0xFF; 9]);
    let transparent =
        |fid, sfi, rule, data: Vec<u8>| fs::ef(fid, sfi, at(rule), FileBody::Transparent(data));
    fs.add(
        adf,
        transparent(FID_IMSI, Some(0x07), rules::PIN1_READ_ADM_UPDATE, imsi),
    )?;
    // EF.Keys / EF.KeysPS (§4.2.4/5): KSI '07' = no key available, then CK and IK.
    let keys = [vec![0x07], vec![0xFF; 32]].concat();
    fs.add(
        adf,
        transparent(FID_KEYS, Some(0x08), rules::PIN1_READ_UPDATE, keys.clone()),
    )?;
    fs.add(
        adf,
        transparent(FID_KEYS_PS, Some(0x09), rules::PIN1_READ_UPDATE, keys),
    )?;
    // EF.AD (§4.2.18): normal operation, no OFM, then the MNC length.
    fs.add(
        adf,
        transparent(
            FID_AD,
            Some(0x03),
            rules::READ_ALWAYS,
            vec![0x00, 0x00, 0x00, f.mnc_length],
        ),
    )?;
    let mut ust = vec![0u8; 8];
    for n in f.services.iter().filter(|n| (1..=64).contains(*n)) {
        if let Some(b) = ust.get_mut((n - 1) / 8) {
            *b |= 1 << ((n - 1) % 8);
        }
    }
    fs.add(
        adf,
        transparent(FID_UST, Some(0x04), rules::PIN1_READ_ADM_UPDATE, ust),
    )?;
    fs.add(
        adf,
        transparent(FID_EST, Some(0x05), rules::PIN1_READ_UPDATE, vec![0x00]),
    )?;
    // EF.ACC (§4.2.15): access class = last IMSI digit.
    let class = f
        .imsi
        .bytes()
        .last()
        .map(|d| d.wrapping_sub(b'0'))
        .filter(|d| *d <= 9)
        .unwrap_or(0);
    fs.add(
        adf,
        transparent(
            FID_ACC,
            Some(0x06),
            rules::PIN1_READ_ADM_UPDATE,
            (1u16 << class).to_be_bytes().to_vec(),
        ),
    )?;
    // EF.LOCI (§4.2.17): no TMSI, no LAI, location update status "not updated".
    let loci = vec![
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x01,
    ];
    fs.add(
        adf,
        transparent(FID_LOCI, Some(0x0B), rules::PIN1_READ_UPDATE, loci),
    )?;
    if let Some(spn) = f.spn {
        fs.add(
            adf,
            transparent(FID_SPN, None, rules::READ_ALWAYS, encode_spn(spn)),
        )?;
    }
    let record_len = MSISDN_RECORD_LEN;
    let first = f
        .msisdn
        .and_then(|m| saip::encode_msisdn_record(m, record_len).ok())
        .unwrap_or_else(|| vec![0xFF; record_len]);
    let msisdn = FileBody::LinearFixed {
        record_len,
        records: vec![first, vec![0xFF; record_len]],
    };
    fs.add(
        adf,
        fs::ef(FID_MSISDN, None, at(rules::PIN1_READ_UPDATE), msisdn),
    )?;
    Ok(adf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usim(msisdn: Option<&str>) -> (FileSystem, NodeId) {
        let mut fs = FileSystem::new(ArrRef {
            arr_fid: 0x2F06,
            record: 1,
        });
        let files = UsimFiles {
            aid: &[0xA0, 0, 0, 0, 0x87, 0x10, 0x02],
            imsi: "001010123456063",
            msisdn,
            spn: Some("simlab"),
            mnc_length: 2,
            services: &[SERVICE_GSM_ACCESS],
        };
        let adf = build_usim(&mut fs, &files).unwrap();
        (fs, adf)
    }

    fn content(fs: &FileSystem, adf: NodeId, fid: u16) -> FileBody {
        fs.node(fs.child_by_fid(adf, fid).unwrap())
            .unwrap()
            .body
            .clone()
    }

    #[test]
    fn ef_imsi_holds_the_ts_31_102_encoding() {
        let (fs, adf) = usim(None);
        let want = hex::decode("080910101032540636").unwrap();
        assert_eq!(content(&fs, adf, FID_IMSI), FileBody::Transparent(want));
    }

    #[test]
    fn ef_msisdn_record_1_holds_an_international_number() {
        let (fs, adf) = usim(Some("+4915112345678"));
        let FileBody::LinearFixed {
            records,
            record_len,
        } = content(&fs, adf, FID_MSISDN)
        else {
            panic!("EF.MSISDN is linear fixed")
        };
        assert_eq!(record_len, 28);
        assert_eq!(
            hex::encode_upper(&records[0][14..]),
            "0891945111325476F8FFFFFFFFFF"
        );
        assert!(records[1].iter().all(|b| *b == 0xFF), "record 2 is empty");
    }

    #[test]
    fn gsm_access_service_is_read_from_ef_ust() {
        let (fs, adf) = usim(None);
        assert!(service_available(&fs, adf, SERVICE_GSM_ACCESS));
        assert!(!service_available(&fs, adf, 19));
    }
}
