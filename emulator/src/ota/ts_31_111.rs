//! 3GPP TS 31.111 (V17) §7.1.1 / ETSI TS 102 223 §7.1: the ENVELOPE (SMS-PP download) that a
//! terminal sends its UICC for a short message with TP-PID "(U)SIM data download": the BER-TLV
//! tag 'D1' holding device identities (network → UICC), the optional address of the service
//! centre, and the SMS TPDU (an SMS-DELIVER). The UICC's answer data (the PoR, here) goes back
//! to the network in the SMS-DELIVER-REPORT (§7.1.1.2).
//!
//! The simple TLVs inside are COMPREHENSION-TLVs (TS 102 223 §8): their tag's b8 is the
//! "comprehension required" flag, so `02`/`82`, `06`/`86` and `0B`/`8B` are the same object.

use super::ts_23_040::Address;
use crate::tlv;
use thiserror::Error;

/// INS of ENVELOPE (TS 102 221 §10.1.2, CLA '80').
pub const INS_ENVELOPE: u8 = 0xC2;
/// BER-TLV tag of SMS-PP download (TS 101 220 §7.2).
pub const TAG_SMS_PP_DOWNLOAD: u32 = 0xD1;
/// COMPREHENSION-TLV tags without the CR flag (TS 101 220 §7.3).
const TAG_DEVICE_IDENTITIES: u32 = 0x02;
const TAG_ADDRESS: u32 = 0x06;
const TAG_SMS_TPDU: u32 = 0x0B;
/// Device identities: source network '83', destination UICC '81' (TS 102 223 §8.7).
const DEVICE_NETWORK: u8 = 0x83;
const DEVICE_UICC: u8 = 0x81;

/// Why an ENVELOPE's data is not an SMS-PP download.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    #[error("not a BER-TLV: {0}")]
    Tlv(#[from] tlv::TlvError),
    #[error("BER-TLV tag {0:02X} is not SMS-PP download (D1)")]
    NotSmsPp(u32),
    #[error("SMS-PP download without {0}")]
    Missing(&'static str),
    #[error("device identities must be network (83) to UICC (81)")]
    DeviceIdentities,
    #[error("the address is malformed")]
    Address,
}

/// The content of an SMS-PP download ENVELOPE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsPpDownload {
    /// The service centre's address (RP-OA), when the terminal gives it.
    pub address: Option<Address>,
    /// The SMS TPDU (an SMS-DELIVER).
    pub tpdu: Vec<u8>,
}

impl SmsPpDownload {
    /// The ENVELOPE data: `D1` { device identities, address, SMS TPDU }.
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = tlv::encode(0x80 | TAG_DEVICE_IDENTITIES, &[DEVICE_NETWORK, DEVICE_UICC]);
        if let Some(a) = &self.address {
            if let Ok(bcd) = a.encode_bcd() {
                inner.extend(tlv::encode(0x80 | TAG_ADDRESS, &bcd));
            }
        }
        inner.extend(tlv::encode(0x80 | TAG_SMS_TPDU, &self.tpdu));
        tlv::encode(TAG_SMS_PP_DOWNLOAD, &inner)
    }

    /// The complete ENVELOPE command APDU (case 4 without Le: a T=0 terminal fetches the
    /// answer with GET RESPONSE after '61 XX').
    pub fn envelope_apdu(&self) -> Vec<u8> {
        let data = self.encode();
        let mut apdu = vec![0x80, INS_ENVELOPE, 0x00, 0x00];
        apdu.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        apdu.extend(data);
        apdu
    }

    pub fn decode(data: &[u8]) -> Result<Self, EnvelopeError> {
        let outer = tlv::parse_one(data)?;
        if outer.tag != TAG_SMS_PP_DOWNLOAD {
            return Err(EnvelopeError::NotSmsPp(outer.tag));
        }
        let mut devices = None;
        let mut address = None;
        let mut tpdu = None;
        for item in tlv::TlvIter::new(outer.value) {
            let item = item?;
            // b8 of a COMPREHENSION-TLV tag is the CR flag, not part of the tag's meaning.
            match item.tag & 0x7F {
                TAG_DEVICE_IDENTITIES => devices = Some(item.value),
                TAG_ADDRESS => {
                    let digits = item.value.len().saturating_sub(1) * 2;
                    let mut a = Address::decode_bcd(item.value, digits)
                        .map_err(|_| EnvelopeError::Address)?;
                    a.digits.truncate(a.digits.trim_end_matches('F').len());
                    address = Some(a);
                }
                TAG_SMS_TPDU => tpdu = Some(item.value.to_vec()),
                // TS 102 223 §6.10: objects the UICC does not know are skipped.
                _ => {}
            }
        }
        match devices {
            Some([DEVICE_NETWORK, DEVICE_UICC]) => {}
            Some(_) => return Err(EnvelopeError::DeviceIdentities),
            None => return Err(EnvelopeError::Missing("device identities (82)")),
        }
        Ok(Self {
            address,
            tpdu: tpdu.ok_or(EnvelopeError::Missing("an SMS TPDU (8B)"))?,
        })
    }
}
