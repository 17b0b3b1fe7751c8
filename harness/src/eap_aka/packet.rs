//! EAP packets (RFC 3748 §4) carrying EAP-AKA (RFC 4187 §8–§10): the codec both the server
//! (the network's entitlement server) and the peer (a device) use.
//!
//! Written by hand: no maintained crate encodes EAP-AKA. Parsing is strict where RFC 4187 is:
//! attribute lengths in 4-byte units that fit the packet, the fixed lengths of AT_RAND, AT_AUTN,
//! AT_AUTS and AT_MAC, no duplicate attributes, and unknown non-skippable attributes (types
//! 0–127, §8.1) refused. Skippable attributes (128–255, e.g. AT_IV, AT_ENCR_DATA) are kept
//! undecoded.

use thiserror::Error;

/// EAP Codes (RFC 3748 §4).
pub const CODE_REQUEST: u8 = 1;
pub const CODE_RESPONSE: u8 = 2;
pub const CODE_SUCCESS: u8 = 3;
pub const CODE_FAILURE: u8 = 4;

/// EAP Type of EAP-AKA (RFC 4187 §11, IANA).
pub const TYPE_AKA: u8 = 23;

/// EAP header (Code, Identifier, Length) and, for AKA, Type, Subtype, Reserved.
const HEADER_LEN: usize = 4;
const AKA_HEADER_LEN: usize = 8;

/// Attribute types (RFC 4187 §11).
pub const AT_RAND: u8 = 1;
pub const AT_AUTN: u8 = 2;
pub const AT_RES: u8 = 3;
pub const AT_AUTS: u8 = 4;
pub const AT_MAC: u8 = 11;
pub const AT_IDENTITY: u8 = 14;
pub const AT_CLIENT_ERROR_CODE: u8 = 22;
pub const AT_PERMANENT_ID_REQ: u8 = 10;
pub const AT_ANY_ID_REQ: u8 = 13;
pub const AT_FULLAUTH_ID_REQ: u8 = 17;
/// First skippable attribute type (RFC 4187 §8.1).
const SKIPPABLE_FROM: u8 = 128;

/// EAP-AKA Subtypes (RFC 4187 §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subtype {
    Challenge,
    AuthenticationReject,
    SynchronizationFailure,
    Identity,
    Notification,
    Reauthentication,
    ClientError,
}

impl Subtype {
    pub fn code(self) -> u8 {
        match self {
            Subtype::Challenge => 1,
            Subtype::AuthenticationReject => 2,
            Subtype::SynchronizationFailure => 4,
            Subtype::Identity => 5,
            Subtype::Notification => 12,
            Subtype::Reauthentication => 13,
            Subtype::ClientError => 14,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Subtype::Challenge,
            2 => Subtype::AuthenticationReject,
            4 => Subtype::SynchronizationFailure,
            5 => Subtype::Identity,
            12 => Subtype::Notification,
            13 => Subtype::Reauthentication,
            14 => Subtype::ClientError,
            _ => return None,
        })
    }
}

/// One attribute (RFC 4187 §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// §10.6: 16 bytes of RAND.
    Rand([u8; 16]),
    /// §10.7: 16 bytes of AUTN.
    Autn([u8; 16]),
    /// §10.8: RES of 32–128 bits, a whole number of bytes here (the USIM's RES is).
    Res(Vec<u8>),
    /// §10.9: 14 bytes of AUTS.
    Auts([u8; 14]),
    /// §10.15: HMAC-SHA1-128.
    Mac([u8; 16]),
    /// §10.5: an identity (its actual length, without padding).
    Identity(Vec<u8>),
    /// §10.20: client error code (0: unable to process packet).
    ClientErrorCode(u16),
    /// §10.2: identity requests (no value).
    PermanentIdReq,
    AnyIdReq,
    FullauthIdReq,
    /// A skippable attribute kept as its raw value (after Type and Length).
    Skippable {
        kind: u8,
        value: Vec<u8>,
    },
}

impl Attribute {
    pub fn kind(&self) -> u8 {
        match self {
            Attribute::Rand(_) => AT_RAND,
            Attribute::Autn(_) => AT_AUTN,
            Attribute::Res(_) => AT_RES,
            Attribute::Auts(_) => AT_AUTS,
            Attribute::Mac(_) => AT_MAC,
            Attribute::Identity(_) => AT_IDENTITY,
            Attribute::ClientErrorCode(_) => AT_CLIENT_ERROR_CODE,
            Attribute::PermanentIdReq => AT_PERMANENT_ID_REQ,
            Attribute::AnyIdReq => AT_ANY_ID_REQ,
            Attribute::FullauthIdReq => AT_FULLAUTH_ID_REQ,
            Attribute::Skippable { kind, .. } => *kind,
        }
    }

    /// The attribute's bytes after Type and Length (reserved bytes and padding included).
    fn value_bytes(&self) -> Vec<u8> {
        let reserved_then = |v: &[u8]| [&[0u8, 0][..], v].concat();
        match self {
            Attribute::Rand(v) | Attribute::Autn(v) | Attribute::Mac(v) => reserved_then(v),
            // §10.8: the two bytes after Length hold the RES length in bits.
            Attribute::Res(v) => {
                let bits = (v.len() * 8) as u16;
                let mut out = bits.to_be_bytes().to_vec();
                out.extend_from_slice(v);
                pad4(out, 2)
            }
            // §10.9: AUTS follows Length directly (2 + 14 = 16 bytes).
            Attribute::Auts(v) => v.to_vec(),
            Attribute::Identity(v) => {
                let mut out = (v.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(v);
                pad4(out, 2)
            }
            Attribute::ClientErrorCode(c) => c.to_be_bytes().to_vec(),
            Attribute::PermanentIdReq | Attribute::AnyIdReq | Attribute::FullauthIdReq => {
                vec![0, 0]
            }
            Attribute::Skippable { value, .. } => value.clone(),
        }
    }
}

/// Pads `v` (which follows `header` bytes of Type and Length) with zeros to a multiple of 4.
fn pad4(mut v: Vec<u8>, header: usize) -> Vec<u8> {
    while (v.len() + header) % 4 != 0 {
        v.push(0);
    }
    v
}

/// An EAP packet: an EAP-AKA Request/Response, or a bare Success/Failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Aka(AkaPacket),
    Success { identifier: u8 },
    Failure { identifier: u8 },
}

/// An EAP-Request or EAP-Response of Type AKA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkaPacket {
    /// [`CODE_REQUEST`] or [`CODE_RESPONSE`].
    pub code: u8,
    pub identifier: u8,
    pub subtype: Subtype,
    pub attributes: Vec<Attribute>,
}

/// Why a packet does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("EAP packet of {0} bytes is shorter than its 4-byte header (RFC 3748 §4)")]
    TooShort(usize),
    #[error("EAP Length field says {said} bytes but {got} arrived (RFC 3748 §4)")]
    LengthMismatch { said: usize, got: usize },
    #[error("EAP Code {0} is not Request, Response, Success or Failure (RFC 3748 §4)")]
    UnknownCode(u8),
    #[error("EAP Type {0} is not EAP-AKA (23)")]
    NotAka(u8),
    #[error("EAP-AKA Subtype {0} is unknown (RFC 4187 §11)")]
    UnknownSubtype(u8),
    #[error(
        "attribute {kind} at offset {offset} has length 0 or runs past the packet (RFC 4187 §8.1)"
    )]
    AttributeOverrun { kind: u8, offset: usize },
    #[error("attribute {kind} is {got} bytes, RFC 4187 §10 says {expected}")]
    AttributeLength {
        kind: u8,
        expected: usize,
        got: usize,
    },
    #[error("attribute {0} appears twice (RFC 4187 §8.1)")]
    Duplicate(u8),
    #[error("non-skippable attribute {0} is unknown (RFC 4187 §8.1)")]
    UnknownAttribute(u8),
    #[error("AT_RES says {bits} bits: RFC 4187 §10.8 allows 32–128 bits, whole bytes here")]
    ResLength { bits: usize },
}

impl Packet {
    /// Decodes one EAP packet.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::TooShort(bytes.len()));
        }
        let code = bytes[0];
        let identifier = bytes[1];
        let said = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if said != bytes.len() {
            return Err(PacketError::LengthMismatch {
                said,
                got: bytes.len(),
            });
        }
        match code {
            CODE_SUCCESS | CODE_FAILURE if said == HEADER_LEN => Ok(if code == CODE_SUCCESS {
                Packet::Success { identifier }
            } else {
                Packet::Failure { identifier }
            }),
            CODE_SUCCESS | CODE_FAILURE => Err(PacketError::LengthMismatch {
                said,
                got: HEADER_LEN,
            }),
            CODE_REQUEST | CODE_RESPONSE => {
                if bytes.len() < AKA_HEADER_LEN {
                    return Err(PacketError::TooShort(bytes.len()));
                }
                if bytes[4] != TYPE_AKA {
                    return Err(PacketError::NotAka(bytes[4]));
                }
                let subtype =
                    Subtype::from_code(bytes[5]).ok_or(PacketError::UnknownSubtype(bytes[5]))?;
                let attributes = decode_attributes(&bytes[AKA_HEADER_LEN..])?;
                Ok(Packet::Aka(AkaPacket {
                    code,
                    identifier,
                    subtype,
                    attributes,
                }))
            }
            other => Err(PacketError::UnknownCode(other)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Packet::Success { identifier } => vec![CODE_SUCCESS, *identifier, 0, 4],
            Packet::Failure { identifier } => vec![CODE_FAILURE, *identifier, 0, 4],
            Packet::Aka(p) => p.encode(),
        }
    }
}

fn decode_attributes(mut data: &[u8]) -> Result<Vec<Attribute>, PacketError> {
    let mut out: Vec<Attribute> = Vec::new();
    let mut offset = AKA_HEADER_LEN;
    while !data.is_empty() {
        let kind = data[0];
        let len = data.get(1).map(|l| usize::from(*l) * 4).unwrap_or(0);
        if len == 0 || len > data.len() {
            return Err(PacketError::AttributeOverrun { kind, offset });
        }
        let value = &data[2..len];
        let attribute = decode_attribute(kind, value)?;
        if out.iter().any(|a| a.kind() == kind) {
            return Err(PacketError::Duplicate(kind));
        }
        out.push(attribute);
        data = &data[len..];
        offset += len;
    }
    Ok(out)
}

fn fixed<const N: usize>(kind: u8, value: &[u8], skip: usize) -> Result<[u8; N], PacketError> {
    value
        .get(skip..)
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or(PacketError::AttributeLength {
            kind,
            expected: N + skip + 2,
            got: value.len() + 2,
        })
}

fn decode_attribute(kind: u8, value: &[u8]) -> Result<Attribute, PacketError> {
    Ok(match kind {
        AT_RAND => Attribute::Rand(fixed(kind, value, 2)?),
        AT_AUTN => Attribute::Autn(fixed(kind, value, 2)?),
        AT_MAC => Attribute::Mac(fixed(kind, value, 2)?),
        AT_AUTS => Attribute::Auts(fixed(kind, value, 0)?),
        AT_RES => {
            let bits = usize::from(u16::from_be_bytes([value[0], value[1]]));
            let bytes = bits / 8;
            if bits % 8 != 0 || !(32..=128).contains(&bits) || value.len() < 2 + bytes {
                return Err(PacketError::ResLength { bits });
            }
            Attribute::Res(value[2..2 + bytes].to_vec())
        }
        AT_IDENTITY => {
            let n = usize::from(u16::from_be_bytes([value[0], value[1]]));
            let id = value.get(2..2 + n).ok_or(PacketError::AttributeLength {
                kind,
                expected: n + 4,
                got: value.len() + 2,
            })?;
            Attribute::Identity(id.to_vec())
        }
        AT_CLIENT_ERROR_CODE => {
            let v: [u8; 2] = fixed(kind, value, 0)?;
            Attribute::ClientErrorCode(u16::from_be_bytes(v))
        }
        AT_PERMANENT_ID_REQ => Attribute::PermanentIdReq,
        AT_ANY_ID_REQ => Attribute::AnyIdReq,
        AT_FULLAUTH_ID_REQ => Attribute::FullauthIdReq,
        k if k >= SKIPPABLE_FROM => Attribute::Skippable {
            kind: k,
            value: value.to_vec(),
        },
        k => return Err(PacketError::UnknownAttribute(k)),
    })
}

impl AkaPacket {
    pub fn new(code: u8, identifier: u8, subtype: Subtype, attributes: Vec<Attribute>) -> Self {
        Self {
            code,
            identifier,
            subtype,
            attributes,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![
            self.code,
            self.identifier,
            0,
            0,
            TYPE_AKA,
            self.subtype.code(),
            0,
            0,
        ];
        for a in &self.attributes {
            let value = a.value_bytes();
            out.push(a.kind());
            out.push(((value.len() + 2) / 4) as u8);
            out.extend_from_slice(&value);
        }
        let len = (out.len() as u16).to_be_bytes();
        out[2] = len[0];
        out[3] = len[1];
        out
    }

    pub fn rand(&self) -> Option<&[u8; 16]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rand(v) => Some(v),
            _ => None,
        })
    }

    pub fn autn(&self) -> Option<&[u8; 16]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Autn(v) => Some(v),
            _ => None,
        })
    }

    pub fn res(&self) -> Option<&[u8]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Res(v) => Some(v.as_slice()),
            _ => None,
        })
    }

    pub fn auts(&self) -> Option<&[u8; 14]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Auts(v) => Some(v),
            _ => None,
        })
    }

    pub fn mac(&self) -> Option<&[u8; 16]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Mac(v) => Some(v),
            _ => None,
        })
    }

    pub fn client_error_code(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::ClientErrorCode(c) => Some(*c),
            _ => None,
        })
    }

    /// The packet with its AT_MAC value zeroed: what HMAC-SHA1 covers (RFC 4187 §10.15).
    pub fn with_zero_mac(&self) -> Vec<u8> {
        let mut copy = self.clone();
        for a in &mut copy.attributes {
            if let Attribute::Mac(v) = a {
                *v = [0; 16];
            }
        }
        copy.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn decodes_and_reencodes_the_upstream_response_byte_for_byte() {
        let raw =
            h("020200281701000003030040C79F02A59FC9A38F0B0500001C141BDDDE8BEF2E502FB6793808DE7C");
        let Packet::Aka(p) = Packet::decode(&raw).unwrap() else {
            panic!("not AKA")
        };
        assert_eq!(p.code, CODE_RESPONSE);
        assert_eq!(p.subtype, Subtype::Challenge);
        assert_eq!(p.res(), Some(&h("C79F02A59FC9A38F")[..]));
        assert_eq!(p.encode(), raw);
    }

    #[rstest]
    #[case::success("03070004", Packet::Success { identifier: 7 })]
    #[case::failure("04090004", Packet::Failure { identifier: 9 })]
    fn decodes_success_and_failure(#[case] hex: &str, #[case] expected: Packet) {
        assert_eq!(Packet::decode(&h(hex)).unwrap(), expected);
        assert_eq!(expected.encode(), h(hex));
    }

    #[rstest]
    #[case::too_short("0102", PacketError::TooShort(2))]
    #[case::length_too_big("01020010170100", PacketError::LengthMismatch { said: 16, got: 7 })]
    #[case::unknown_code("05020004", PacketError::UnknownCode(5))]
    #[case::not_aka("0102000812010000", PacketError::NotAka(18))]
    #[case::unknown_subtype("0102000817630000", PacketError::UnknownSubtype(0x63))]
    #[case::zero_length_attribute("0102000C1701000001000000", PacketError::AttributeOverrun { kind: 1, offset: 8 })]
    #[case::unknown_non_skippable("0102000C1701000063010000", PacketError::UnknownAttribute(0x63))]
    #[case::duplicate("01020010170100000D0100000D010000", PacketError::Duplicate(13))]
    #[case::auts_short("0102000C170400000401AABB", PacketError::AttributeLength { kind: 4, expected: 16, got: 4 })]
    fn refuses_malformed_packets(#[case] hex: &str, #[case] error: PacketError) {
        assert_eq!(Packet::decode(&h(hex)), Err(error));
    }

    #[test]
    fn keeps_skippable_attributes_and_pads_identities() {
        let p = AkaPacket::new(
            CODE_RESPONSE,
            1,
            Subtype::Identity,
            vec![
                Attribute::Identity(b"0001@x".to_vec()),
                Attribute::Skippable {
                    kind: 0x81,
                    value: vec![0; 18],
                },
            ],
        );
        let raw = p.encode();
        assert_eq!(raw.len() % 4, 0);
        assert_eq!(Packet::decode(&raw).unwrap(), Packet::Aka(p));
    }

    fn attribute() -> impl Strategy<Value = Attribute> {
        prop_oneof![
            any::<[u8; 16]>().prop_map(Attribute::Rand),
            any::<[u8; 16]>().prop_map(Attribute::Autn),
            prop::collection::vec(any::<u8>(), 4..=16).prop_map(Attribute::Res),
            any::<[u8; 14]>().prop_map(Attribute::Auts),
            any::<[u8; 16]>().prop_map(Attribute::Mac),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Attribute::Identity),
            any::<u16>().prop_map(Attribute::ClientErrorCode),
        ]
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
            let _ = Packet::decode(&bytes);
        }

        #[test]
        fn encode_then_decode_is_the_identity(
            attrs in prop::collection::vec(attribute(), 0..6),
            id in any::<u8>(),
        ) {
            // One attribute of each type, as the codec insists.
            let mut seen = std::collections::BTreeSet::new();
            let attrs: Vec<_> = attrs.into_iter().filter(|a| seen.insert(a.kind())).collect();
            let p = AkaPacket::new(CODE_REQUEST, id, Subtype::Challenge, attrs);
            prop_assert_eq!(Packet::decode(&p.encode()), Ok(Packet::Aka(p)));
        }
    }
}
