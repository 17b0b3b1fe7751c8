//! The terminal's side of a UICC with a USIM, as a device's modem uses it: find the USIM in
//! EF.DIR (ETSI TS 102 221 §13.1), select it, verify PIN1, read EF.ICCID, EF.IMSI and EF.MSISDN
//! (3GPP TS 31.102 §4.2.2, §4.2.26) and relay the network's RAND/AUTN with AUTHENTICATE in the
//! 3G context (TS 31.102 §7.1.2). Every answer is checked; the status word is kept where a flow
//! proves something with it (a deactivated USIM selects with `62 83`, TS 102 221 §11.1.1.3).

use crate::transport::{split_sw, Transport, TransportError};
use simlab_emulator::aka::ts_31_102::AuthenticateResponse;
use simlab_emulator::saip::{decode_iccid_ef, decode_imsi, decode_msisdn_record};
use thiserror::Error;

/// RID + application code of a 3GPP USIM (TS 101 220 Annex E; TS 31.102 §4.1: A0000000871002).
const USIM_AID_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02];
/// TS 102 221 §13.1: EF.DIR under the MF; EF.ICCID.
const FID_MF: [u8; 2] = [0x3F, 0x00];
const FID_EF_DIR: [u8; 2] = [0x2F, 0x00];
const FID_EF_ICCID: [u8; 2] = [0x2F, 0xE2];
/// TS 31.102 §4.2.2 EF.IMSI, §4.2.26 EF.MSISDN.
const FID_EF_IMSI: [u8; 2] = [0x6F, 0x07];
const FID_EF_MSISDN: [u8; 2] = [0x6F, 0x40];
/// TS 102 221 §13.1: application template `61` holding the AID `4F`.
const TAG_APPLICATION_TEMPLATE: u8 = 0x61;
const TAG_AID: u8 = 0x4F;
/// TS 31.102 §7.1.2: AUTHENTICATE, P2 '81' = 3G security context.
const P2_3G_CONTEXT: u8 = 0x81;

pub const SW_OK: u16 = 0x9000;
/// TS 102 221 §10.2.1.3: selected file deactivated (warning).
pub const SW_DEACTIVATED: u16 = 0x6283;
/// TS 31.102 §7.3: authentication error, incorrect MAC.
pub const SW_MAC_FAILURE: u16 = 0x9862;

#[derive(Debug, Error)]
pub enum UsimError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{command}: the card answered {sw:04X}")]
    Status { command: &'static str, sw: u16 },
    #[error("the card lists no USIM in EF.DIR")]
    NoUsim,
    #[error("the USIM is deactivated (SELECT answered 62 83)")]
    Deactivated,
    #[error("{what} is not valid: {detail}")]
    Content { what: &'static str, detail: String },
}

/// What AUTHENTICATE gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AkaOutcome {
    /// `DB`: RES, CK, IK (TS 31.102 §7.1.2.1); `data` is the whole answer (Kc included when
    /// the card offers GSM access).
    Success {
        res: Vec<u8>,
        ck: [u8; 16],
        ik: [u8; 16],
        data: Vec<u8>,
    },
    /// `DC`: AUTS, the network must resynchronise (TS 33.102 §6.3.5).
    SyncFailure { auts: [u8; 14] },
    /// `98 62`: AUTN's MAC is wrong: the network is not who it claims.
    MacFailure,
    /// Any other status word (a deactivated USIM, a PIN not verified…).
    Refused { sw: u16 },
}

/// A USIM session on a card's basic channel.
#[derive(Debug)]
pub struct Usim<'a, T: Transport + ?Sized> {
    card: &'a mut T,
}

fn select_cmd(p1: u8, p2: u8, id: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, p1, p2, id.len() as u8];
    apdu.extend_from_slice(id);
    apdu
}

impl<'a, T: Transport + ?Sized> Usim<'a, T> {
    pub fn new(card: &'a mut T) -> Self {
        Self { card }
    }

    fn send(&mut self, apdu: &[u8]) -> Result<(Vec<u8>, u16), UsimError> {
        let answer = self.card.transmit(apdu)?;
        let (data, sw) = split_sw(&answer);
        Ok((data.to_vec(), sw))
    }

    fn expect(&mut self, command: &'static str, apdu: &[u8]) -> Result<Vec<u8>, UsimError> {
        match self.send(apdu)? {
            (data, SW_OK) => Ok(data),
            (_, sw) => Err(UsimError::Status { command, sw }),
        }
    }

    /// The USIM's AID from EF.DIR: the first application whose AID starts with the 3GPP USIM
    /// prefix.
    pub fn usim_aid(&mut self) -> Result<Vec<u8>, UsimError> {
        self.expect("SELECT MF", &select_cmd(0x00, 0x0C, &FID_MF))?;
        self.expect("SELECT EF.DIR", &select_cmd(0x00, 0x0C, &FID_EF_DIR))?;
        for record in 1..=u8::MAX {
            let (data, sw) = self.send(&[0x00, 0xB2, record, 0x04, 0x00])?;
            if sw != SW_OK {
                break; // 6A83: past the last record.
            }
            if let Some(aid) = aid_in_record(&data) {
                if aid.starts_with(&USIM_AID_PREFIX) {
                    return Ok(aid);
                }
            }
        }
        Err(UsimError::NoUsim)
    }

    /// SELECT ADF.USIM by AID; the status word as the card gave it (`90 00`, or `62 83` when
    /// the application is deactivated).
    pub fn select(&mut self, aid: &[u8]) -> Result<u16, UsimError> {
        Ok(self.send(&select_cmd(0x04, 0x0C, aid))?.1)
    }

    /// VERIFY PIN1 (TS 102 221 §11.1.9, key reference '01', padded with FF).
    pub fn verify_pin1(&mut self, pin: &str) -> Result<(), UsimError> {
        let padded = simlab_emulator::pin::pad(pin).map_err(|e| UsimError::Content {
            what: "PIN1",
            detail: e.to_string(),
        })?;
        let mut apdu = vec![0x00, 0x20, 0x00, 0x01, padded.len() as u8];
        apdu.extend_from_slice(&padded);
        self.expect("VERIFY PIN1", &apdu).map(|_| ())
    }

    /// VERIFY PIN1 unless the card says it is verified or disabled: VERIFY with no data asks
    /// for the PIN's status (TS 102 221 §11.1.9: `90 00`, or `63 CX` with X tries left).
    pub fn verify_pin1_if_needed(&mut self, pin: &str) -> Result<(), UsimError> {
        match self.send(&[0x00, 0x20, 0x00, 0x01])? {
            (_, SW_OK) => Ok(()),
            (_, sw) if sw & 0xFFF0 == 0x63C0 && sw != 0x63C0 => self.verify_pin1(pin),
            (_, sw) => Err(UsimError::Status {
                command: "VERIFY PIN1 (status)",
                sw,
            }),
        }
    }

    /// EF.ICCID (under the MF).
    pub fn iccid(&mut self) -> Result<String, UsimError> {
        self.expect("SELECT MF", &select_cmd(0x00, 0x0C, &FID_MF))?;
        self.expect("SELECT EF.ICCID", &select_cmd(0x00, 0x0C, &FID_EF_ICCID))?;
        let data = self.expect("READ BINARY EF.ICCID", &[0x00, 0xB0, 0x00, 0x00, 0x0A])?;
        decode_iccid_ef(&data).map_err(|e| UsimError::Content {
            what: "EF.ICCID",
            detail: e.to_string(),
        })
    }

    /// EF.IMSI of the selected USIM.
    pub fn imsi(&mut self) -> Result<String, UsimError> {
        self.expect("SELECT EF.IMSI", &select_cmd(0x00, 0x0C, &FID_EF_IMSI))?;
        let data = self.expect("READ BINARY EF.IMSI", &[0x00, 0xB0, 0x00, 0x00, 0x09])?;
        decode_imsi(&data).map_err(|e| UsimError::Content {
            what: "EF.IMSI",
            detail: e.to_string(),
        })
    }

    /// The first record of EF.MSISDN of the selected USIM, if it holds a number.
    pub fn msisdn(&mut self) -> Result<Option<String>, UsimError> {
        self.expect("SELECT EF.MSISDN", &select_cmd(0x00, 0x0C, &FID_EF_MSISDN))?;
        let data = self.expect("READ RECORD EF.MSISDN", &[0x00, 0xB2, 0x01, 0x04, 0x00])?;
        decode_msisdn_record(&data).map_err(|e| UsimError::Content {
            what: "EF.MSISDN",
            detail: e.to_string(),
        })
    }

    /// AUTHENTICATE in the 3G context with the network's RAND and AUTN.
    pub fn authenticate(
        &mut self,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<AkaOutcome, UsimError> {
        let mut apdu = vec![0x00, 0x88, 0x00, P2_3G_CONTEXT, 0x22, 0x10];
        apdu.extend_from_slice(rand);
        apdu.push(0x10);
        apdu.extend_from_slice(autn);
        apdu.push(0x00);
        let (data, sw) = self.send(&apdu)?;
        match sw {
            SW_OK => match AuthenticateResponse::parse(P2_3G_CONTEXT, &data) {
                Ok(AuthenticateResponse::Success3g { res, ck, ik, .. }) => {
                    Ok(AkaOutcome::Success { res, ck, ik, data })
                }
                Ok(AuthenticateResponse::SyncFailure { auts }) => {
                    Ok(AkaOutcome::SyncFailure { auts })
                }
                Ok(other) => Err(UsimError::Content {
                    what: "AUTHENTICATE answer",
                    detail: format!("{other:?} in the 3G context"),
                }),
                Err(e) => Err(UsimError::Content {
                    what: "AUTHENTICATE answer",
                    detail: e.to_string(),
                }),
            },
            SW_MAC_FAILURE => Ok(AkaOutcome::MacFailure),
            sw => Ok(AkaOutcome::Refused { sw }),
        }
    }
}

/// The AID in an EF.DIR record (`61 L 4F L AID …`), if any.
fn aid_in_record(record: &[u8]) -> Option<Vec<u8>> {
    let (&tag, rest) = record.split_first()?;
    if tag != TAG_APPLICATION_TEMPLATE {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let template = rest.get(..usize::from(len))?;
    let mut pos = 0;
    while pos + 2 <= template.len() {
        let (t, l) = (template[pos], usize::from(template[pos + 1]));
        let value = template.get(pos + 2..pos + 2 + l)?;
        if t == TAG_AID {
            return Some(value.to_vec());
        }
        pos += 2 + l;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::InProcess;
    use simlab_emulator::aka;

    fn card() -> InProcess {
        let def = crate::defaults::card(crate::defaults::UICC).unwrap();
        let (atr, state) = def.build().unwrap();
        InProcess::new(simlab_emulator::Uicc::new(atr, state))
    }

    #[test]
    fn reads_the_identity_and_authenticates_with_a_network_vector() {
        let mut t = card();
        let mut usim = Usim::new(&mut t);
        assert_eq!(usim.iccid().unwrap(), "8949001010000000016");
        let aid = usim.usim_aid().unwrap();
        assert_eq!(hex::encode_upper(&aid), "A0000000871002FF49FF0589");
        assert_eq!(usim.select(&aid).unwrap(), SW_OK);
        usim.verify_pin1("0000").unwrap();
        assert_eq!(usim.imsi().unwrap(), "001010123456063");
        assert_eq!(usim.msisdn().unwrap().as_deref(), Some("+15555550100"));

        let def = crate::defaults::card(crate::defaults::UICC).unwrap();
        let algorithm = def.build().unwrap().1.usim.unwrap().algorithm;
        let rand = [7u8; 16];
        let v = aka::generate_vector(&algorithm, 0x40, [0x80, 0x00], &rand);
        match usim.authenticate(&v.rand, &v.autn).unwrap() {
            AkaOutcome::Success { res, ck, ik, .. } => {
                assert_eq!((res, ck, ik), (v.xres.clone(), v.ck, v.ik));
            }
            other => panic!("{other:?}"),
        }
        // The same vector again is a replay: the card asks to resynchronise.
        assert!(matches!(
            usim.authenticate(&v.rand, &v.autn).unwrap(),
            AkaOutcome::SyncFailure { .. }
        ));
        let mut bad = v.autn;
        bad[15] ^= 1;
        assert_eq!(
            usim.authenticate(&v.rand, &bad).unwrap(),
            AkaOutcome::MacFailure
        );
    }

    #[test]
    fn aid_is_found_in_an_ef_dir_record() {
        let rec = hex::decode("61144F0CA0000000871002FF49FF058950045553494DFFFF").unwrap();
        assert_eq!(
            aid_in_record(&rec).map(hex::encode_upper).as_deref(),
            Some("A0000000871002FF49FF0589")
        );
        assert_eq!(aid_in_record(&[0xFF; 10]), None);
    }
}
