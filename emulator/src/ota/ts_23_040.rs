//! 3GPP TS 23.040 (V17) as far as SMS-PP data download needs it: the SMS-DELIVER TPDU
//! (§9.2.2.1), addresses (§9.1.2.5), the data coding scheme's 8-bit alphabet (TS 23.038 §4),
//! and the user data header (§9.2.3.24) with its concatenation elements (§9.2.3.24.1,
//! §9.2.3.24.8) and the secured-packet identifiers of TS 31.115 §4 (command packet '70',
//! response packet '71').
//!
//! Written by hand: no maintained Rust crate decodes SMS TPDUs with user data headers.

use thiserror::Error;

/// TP-PID '7F': (U)SIM data download (§9.2.3.9).
pub const PID_USIM_DATA_DOWNLOAD: u8 = 0x7F;
/// TP-DCS 'F6': data coding/message class group, 8-bit data, class 2 ((U)SIM specific).
pub const DCS_CLASS2_8BIT: u8 = 0xF6;
/// TP-UDHI, first octet b6.
const UDHI: u8 = 0x40;
/// TP-MTI '00': SMS-DELIVER (SC to MS).
const MTI_MASK: u8 = 0x03;

/// IEI '00': concatenated short message, 8-bit reference.
pub const IEI_CONCAT_8: u8 = 0x00;
/// IEI '08': concatenated short message, 16-bit reference.
pub const IEI_CONCAT_16: u8 = 0x08;
/// IEI '70': command packet identifier (TS 31.115 §4.2).
pub const IEI_COMMAND_PACKET: u8 = 0x70;
/// IEI '71': response packet identifier (TS 31.115 §4.4).
pub const IEI_RESPONSE_PACKET: u8 = 0x71;

/// Why a TPDU cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmsError {
    #[error("SMS TPDU ended early (at {0})")]
    Truncated(&'static str),
    #[error("TP-MTI {0:#04b} is not SMS-DELIVER")]
    NotDeliver(u8),
    #[error("TP-DCS {0:02X} is not 8-bit data (only 8-bit user data can carry secured packets)")]
    Not8Bit(u8),
    #[error("TP-UDL is {udl} but {present} octets of user data follow")]
    UserDataLength { udl: usize, present: usize },
    #[error("the user data header is malformed")]
    Header,
    #[error("address of {0} digits (at most 20)")]
    AddressLength(usize),
    #[error("address digit {0:?} is not 0-9, *, #, a, b or c")]
    AddressDigit(char),
    #[error("the user data is {0} octets (at most 140)")]
    TooLong(usize),
}

/// An address field (§9.1.2.5): type of number and numbering plan, and the digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// TON/NPI octet, e.g. '81' unknown/ISDN, '91' international/ISDN.
    pub ton_npi: u8,
    /// Digits 0-9 and `*`, `#`, `a`, `b`, `c`.
    pub digits: String,
}

impl Address {
    /// An ISDN number: a leading `+` makes it international.
    pub fn isdn(number: &str) -> Self {
        match number.strip_prefix('+') {
            Some(d) => Self {
                ton_npi: 0x91,
                digits: d.into(),
            },
            None => Self {
                ton_npi: 0x81,
                digits: number.into(),
            },
        }
    }

    /// TON/NPI then the digits as swapped semi-octets, 'F'-padded.
    pub fn encode_bcd(&self) -> Result<Vec<u8>, SmsError> {
        if self.digits.len() > 20 {
            return Err(SmsError::AddressLength(self.digits.len()));
        }
        let mut nibbles = Vec::with_capacity(self.digits.len() + 1);
        for c in self.digits.chars() {
            nibbles.push(match c {
                '0'..='9' => c as u8 - b'0',
                '*' => 0x0A,
                '#' => 0x0B,
                'a' => 0x0C,
                'b' => 0x0D,
                'c' => 0x0E,
                _ => return Err(SmsError::AddressDigit(c)),
            });
        }
        if nibbles.len() % 2 == 1 {
            nibbles.push(0x0F);
        }
        let mut out = vec![self.ton_npi];
        out.extend(
            nibbles
                .chunks(2)
                .map(|p| p[0] | p.get(1).copied().unwrap_or(0x0F) << 4),
        );
        Ok(out)
    }

    /// Reads TON/NPI and `semi_octets` digits.
    pub fn decode_bcd(bytes: &[u8], semi_octets: usize) -> Result<Self, SmsError> {
        let (&ton_npi, rest) = bytes.split_first().ok_or(SmsError::Truncated("TON/NPI"))?;
        let mut digits = String::new();
        for b in rest {
            for nibble in [b & 0x0F, b >> 4] {
                if digits.len() == semi_octets {
                    break;
                }
                digits.push(match nibble {
                    0..=9 => char::from(b'0' + nibble),
                    0x0A => '*',
                    0x0B => '#',
                    0x0C => 'a',
                    0x0D => 'b',
                    0x0E => 'c',
                    _ => break,
                });
            }
        }
        Ok(Self { ton_npi, digits })
    }
}

/// An SMS-DELIVER TPDU with 8-bit user data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsDeliver {
    /// The first octet without TP-MTI and TP-UDHI (TP-MMS, TP-LP, TP-SRI, TP-RP as sent).
    pub flags: u8,
    pub originating_address: Address,
    pub pid: u8,
    pub dcs: u8,
    /// TP-SCTS: seven semi-octet pairs (§9.2.3.11).
    pub scts: [u8; 7],
    /// The user data header's information elements (TP-UDHI set when not empty).
    pub header: Vec<InformationElement>,
    /// The user data after the header.
    pub data: Vec<u8>,
}

/// One information element of a user data header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InformationElement {
    pub iei: u8,
    pub data: Vec<u8>,
}

/// Position of one part of a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concatenation {
    pub reference: u16,
    pub total: u8,
    /// 1-based.
    pub sequence: u8,
}

/// The most user data one short message carries (§9.2.3.16: 140 octets of 8-bit data).
pub const MAX_USER_DATA: usize = 140;

/// Whether `dcs` says 8-bit data (TS 23.038 §4).
pub fn dcs_is_8bit(dcs: u8) -> bool {
    match dcs >> 4 {
        // General data coding: b3-b2 = '01' 8-bit.
        0x0..=0x3 => (dcs >> 2) & 0x03 == 0x01,
        // Data coding / message class: b2 = 1 8-bit.
        0xF => dcs & 0x04 != 0,
        _ => false,
    }
}

impl SmsDeliver {
    /// An SMS-PP data download message (TP-PID '7F', TP-DCS 'F6') carrying `data` after
    /// `header`.
    pub fn data_download(
        originating_address: Address,
        scts: [u8; 7],
        header: Vec<InformationElement>,
        data: Vec<u8>,
    ) -> Self {
        Self {
            flags: 0,
            originating_address,
            pid: PID_USIM_DATA_DOWNLOAD,
            dcs: DCS_CLASS2_8BIT,
            scts,
            header,
            data,
        }
    }

    /// The user data: UDHL and the elements (when any), then the data.
    pub fn user_data(&self) -> Vec<u8> {
        let mut ud = Vec::new();
        if !self.header.is_empty() {
            let ies: Vec<u8> = self
                .header
                .iter()
                .flat_map(|ie| {
                    let mut b = vec![ie.iei, u8::try_from(ie.data.len()).unwrap_or(u8::MAX)];
                    b.extend_from_slice(&ie.data);
                    b
                })
                .collect();
            ud.push(u8::try_from(ies.len()).unwrap_or(u8::MAX));
            ud.extend(ies);
        }
        ud.extend_from_slice(&self.data);
        ud
    }

    pub fn encode(&self) -> Result<Vec<u8>, SmsError> {
        let ud = self.user_data();
        if ud.len() > MAX_USER_DATA {
            return Err(SmsError::TooLong(ud.len()));
        }
        let udhi = if self.header.is_empty() { 0 } else { UDHI };
        let mut out = vec![(self.flags & !(UDHI | MTI_MASK)) | udhi];
        out.push(u8::try_from(self.originating_address.digits.len()).unwrap_or(0));
        out.extend(self.originating_address.encode_bcd()?);
        out.push(self.pid);
        out.push(self.dcs);
        out.extend_from_slice(&self.scts);
        out.push(u8::try_from(ud.len()).unwrap_or(u8::MAX));
        out.extend(ud);
        Ok(out)
    }

    pub fn decode(tpdu: &[u8]) -> Result<Self, SmsError> {
        let (&first, rest) = tpdu
            .split_first()
            .ok_or(SmsError::Truncated("first octet"))?;
        if first & MTI_MASK != 0 {
            return Err(SmsError::NotDeliver(first & MTI_MASK));
        }
        let (&digits, rest) = rest.split_first().ok_or(SmsError::Truncated("TP-OA"))?;
        if digits > 20 {
            return Err(SmsError::AddressLength(usize::from(digits)));
        }
        let oa_len = 1 + usize::from(digits).div_ceil(2);
        let oa = rest.get(..oa_len).ok_or(SmsError::Truncated("TP-OA"))?;
        let originating_address = Address::decode_bcd(oa, usize::from(digits))?;
        let rest = rest.get(oa_len..).unwrap_or_default();
        let [pid, dcs, s0, s1, s2, s3, s4, s5, s6, udl, ud @ ..] = rest else {
            return Err(SmsError::Truncated("TP-PID..TP-UDL"));
        };
        if !dcs_is_8bit(*dcs) {
            return Err(SmsError::Not8Bit(*dcs));
        }
        let udl = usize::from(*udl);
        if ud.len() != udl {
            return Err(SmsError::UserDataLength {
                udl,
                present: ud.len(),
            });
        }
        let (header, data) = if first & UDHI != 0 {
            split_header(ud)?
        } else {
            (Vec::new(), ud.to_vec())
        };
        Ok(Self {
            flags: first & !(UDHI | MTI_MASK),
            originating_address,
            pid: *pid,
            dcs: *dcs,
            scts: [*s0, *s1, *s2, *s3, *s4, *s5, *s6],
            header,
            data,
        })
    }

    /// The element with `iei`, if present.
    pub fn element(&self, iei: u8) -> Option<&InformationElement> {
        self.header.iter().find(|ie| ie.iei == iei)
    }

    /// This message's place in a concatenated message, if it is part of one.
    pub fn concatenation(&self) -> Option<Concatenation> {
        self.header
            .iter()
            .find_map(|ie| match (ie.iei, ie.data.as_slice()) {
                (IEI_CONCAT_8, [r, t, s]) => Some(Concatenation {
                    reference: u16::from(*r),
                    total: *t,
                    sequence: *s,
                }),
                (IEI_CONCAT_16, [r0, r1, t, s]) => Some(Concatenation {
                    reference: u16::from_be_bytes([*r0, *r1]),
                    total: *t,
                    sequence: *s,
                }),
                _ => None,
            })
    }
}

/// Splits user data into its header's elements and the rest (§9.2.3.24).
pub fn split_header(ud: &[u8]) -> Result<(Vec<InformationElement>, Vec<u8>), SmsError> {
    let (&udhl, rest) = ud.split_first().ok_or(SmsError::Header)?;
    let mut ies = rest.get(..usize::from(udhl)).ok_or(SmsError::Header)?;
    let data = rest.get(usize::from(udhl)..).unwrap_or_default().to_vec();
    let mut header = Vec::new();
    while !ies.is_empty() {
        let [iei, len, tail @ ..] = ies else {
            return Err(SmsError::Header);
        };
        let value = tail.get(..usize::from(*len)).ok_or(SmsError::Header)?;
        header.push(InformationElement {
            iei: *iei,
            data: value.to_vec(),
        });
        ies = tail.get(usize::from(*len)..).unwrap_or_default();
    }
    Ok((header, data))
}
