//! ES10 messages between the LPA and the eUICC (GSMA SGP.22 v2.5 §5.7, ASN.1 module
//! `RSPDefinitions` §2.2.x / Annex "ASN.1 definitions"): typed requests and responses with DER
//! encoding AND decoding, so the eUICC reads what the LPA builds with the same types.
//!
//! Tags follow `RSPDefinitions` (AUTOMATIC TAGS, X.680 §25.3: components of a SEQUENCE that
//! has no explicitly tagged component get `[0]`, `[1]`, …; otherwise untagged components keep
//! their universal tag). Result codes are enums inside 9000 answers, never status words
//! (§5.7). Every signed structure is kept as the exact bytes received ([`Encoded`]):
//! signatures are computed over those bytes (§5.7.13, §5.7.5), never over a re-encoding.
//!
//! Written by hand over [`crate::tlv`]: the structures are small, and an ASN.1 compiler would
//! re-encode what must be kept byte for byte.

use crate::tlv::{self, Tlv, TlvError};
use thiserror::Error;

// ---------------------------------------------------------------------------------------
// Tags (SGP.22 v2.5 RSPDefinitions)

pub const TAG_EUICC_INFO1: u32 = 0xBF20;
pub const TAG_PREPARE_DOWNLOAD: u32 = 0xBF21;
pub const TAG_EUICC_INFO2: u32 = 0xBF22;
pub const TAG_INITIALISE_SECURE_CHANNEL: u32 = 0xBF23;
pub const TAG_CONFIGURE_ISDP: u32 = 0xBF24;
pub const TAG_STORE_METADATA: u32 = 0xBF25;
pub const TAG_REPLACE_SESSION_KEYS: u32 = 0xBF26;
pub const TAG_PROFILE_INSTALLATION_RESULT_DATA: u32 = 0xBF27;
pub const TAG_LIST_NOTIFICATION: u32 = 0xBF28;
pub const TAG_SET_NICKNAME: u32 = 0xBF29;
pub const TAG_UPDATE_METADATA: u32 = 0xBF2A;
pub const TAG_RETRIEVE_NOTIFICATIONS_LIST: u32 = 0xBF2B;
pub const TAG_PROFILE_INFO_LIST: u32 = 0xBF2D;
pub const TAG_GET_EUICC_CHALLENGE: u32 = 0xBF2E;
pub const TAG_NOTIFICATION_METADATA: u32 = 0xBF2F;
pub const TAG_NOTIFICATION_SENT: u32 = 0xBF30;
pub const TAG_ENABLE_PROFILE: u32 = 0xBF31;
pub const TAG_DISABLE_PROFILE: u32 = 0xBF32;
pub const TAG_DELETE_PROFILE: u32 = 0xBF33;
pub const TAG_EUICC_MEMORY_RESET: u32 = 0xBF34;
pub const TAG_LOAD_CRL: u32 = 0xBF35;
pub const TAG_BOUND_PROFILE_PACKAGE: u32 = 0xBF36;
pub const TAG_PROFILE_INSTALLATION_RESULT: u32 = 0xBF37;
pub const TAG_AUTHENTICATE_SERVER: u32 = 0xBF38;
pub const TAG_EUICC_CONFIGURED_ADDRESSES: u32 = 0xBF3C;
pub const TAG_GET_EUICC_DATA: u32 = 0xBF3E;
pub const TAG_SET_DEFAULT_DP_ADDRESS: u32 = 0xBF3F;
pub const TAG_CANCEL_SESSION: u32 = 0xBF41;
pub const TAG_GET_RAT: u32 = 0xBF43;
/// SGP.32 `GetCertsRequest` (BF56): not an SGP.22 function; probed by some tools.
pub const TAG_SGP32_GET_CERTS: u32 = 0xBF56;

/// `ProfileInfo ::= [PRIVATE 3]`.
pub const TAG_PROFILE_INFO: u32 = 0xE3;
/// `Iccid ::= [APPLICATION 26]`, also the EID value `eidValue [APPLICATION 26]`.
pub const TAG_ICCID: u32 = 0x5A;
/// `isdpAid [APPLICATION 15]`.
pub const TAG_ISDP_AID: u32 = 0x4F;
/// `tagList [APPLICATION 28]`.
pub const TAG_TAG_LIST: u32 = 0x5C;
/// `[APPLICATION 55]` signatures, `[APPLICATION 73]` one-time public keys.
pub const TAG_SIGNATURE: u32 = 0x5F37;
pub const TAG_OTPK: u32 = 0x5F49;
/// `profileState [112]`.
pub const TAG_PROFILE_STATE: u32 = 0x9F70;
pub const TAG_NICKNAME: u32 = 0x90;
pub const TAG_SERVICE_PROVIDER_NAME: u32 = 0x91;
pub const TAG_PROFILE_NAME: u32 = 0x92;
pub const TAG_ICON_TYPE: u32 = 0x93;
pub const TAG_ICON: u32 = 0x94;
pub const TAG_PROFILE_CLASS: u32 = 0x95;
pub const TAG_NOTIFICATION_CONFIGURATION: u32 = 0xB6;
pub const TAG_PROFILE_OWNER: u32 = 0xB7;
pub const TAG_DP_PROPRIETARY_DATA: u32 = 0xB8;
pub const TAG_PPR_IDS: u32 = 0x99;

/// Universal tags (X.690).
const TAG_BOOLEAN: u32 = 0x01;
const TAG_INTEGER: u32 = 0x02;
const TAG_OCTET_STRING: u32 = 0x04;
const TAG_OID: u32 = 0x06;
const TAG_UTF8_STRING: u32 = 0x0C;
const TAG_SEQUENCE: u32 = 0x30;

/// Context-specific tags `[n]` primitive (`80`+n) and constructed (`A0`+n).
const fn ctx(n: u32) -> u32 {
    0x80 + n
}
const fn ctx_c(n: u32) -> u32 {
    0xA0 + n
}

/// Length of an EID (SGP.29) and of a challenge.
pub const EID_LEN: usize = 16;
pub const CHALLENGE_LEN: usize = 16;
/// ICCID as stored in EF.ICCID: 10 bytes of nibble-swapped BCD.
pub const ICCID_LEN: usize = 10;

// ---------------------------------------------------------------------------------------
// Errors and helpers

/// Why bytes are not the ES10 message expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Es10Error {
    #[error("{what}: not BER-TLV: {source}")]
    Tlv {
        what: &'static str,
        source: TlvError,
    },
    #[error("{what}: tag {found:#X}, expected {expected:#X}")]
    UnexpectedTag {
        what: &'static str,
        expected: u32,
        found: u32,
    },
    #[error("{what}: field {tag:#X} missing")]
    Missing { what: &'static str, tag: u32 },
    #[error("{what}: field {tag:#X}: {problem}")]
    BadValue {
        what: &'static str,
        tag: u32,
        problem: String,
    },
}

type Result<T> = std::result::Result<T, Es10Error>;

/// A message with one DER form.
pub trait Der: Sized {
    fn to_der(&self) -> Vec<u8>;
    fn from_der(bytes: &[u8]) -> Result<Self>;
}

/// A value together with the exact bytes it was read from (or encoded to): what signatures
/// cover. Build with [`Encoded::new`] (canonical DER) or [`Der::from_der`] (bytes kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded<T> {
    pub value: T,
    raw: Vec<u8>,
}

impl<T: Der> Encoded<T> {
    pub fn new(value: T) -> Self {
        let raw = value.to_der();
        Self { value, raw }
    }

    /// The exact DER bytes (tag, length and value).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

impl<T: Der> Der for Encoded<T> {
    fn to_der(&self) -> Vec<u8> {
        self.raw.clone()
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        Ok(Self {
            value: T::from_der(bytes)?,
            raw: bytes.to_vec(),
        })
    }
}

fn outer<'a>(bytes: &'a [u8], tag: u32, what: &'static str) -> Result<Tlv<'a>> {
    let t = tlv::parse_one(bytes).map_err(|source| Es10Error::Tlv { what, source })?;
    expect_tag(t, tag, what)
}

fn expect_tag<'a>(t: Tlv<'a>, tag: u32, what: &'static str) -> Result<Tlv<'a>> {
    if t.tag != tag {
        return Err(Es10Error::UnexpectedTag {
            what,
            expected: tag,
            found: t.tag,
        });
    }
    Ok(t)
}

fn children<'a>(t: &Tlv<'a>, what: &'static str) -> Result<Vec<Tlv<'a>>> {
    t.children()
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| Es10Error::Tlv { what, source })
}

/// The fields of a constructed value, looked up by tag (in any order; repeated tags are
/// taken first to last). Unknown fields are allowed (EXTENSIBILITY IMPLIED) and kept.
struct Fields<'a> {
    what: &'static str,
    items: Vec<Option<Tlv<'a>>>,
}

impl<'a> Fields<'a> {
    fn of(t: &Tlv<'a>, what: &'static str) -> Result<Self> {
        Ok(Self {
            what,
            items: children(t, what)?.into_iter().map(Some).collect(),
        })
    }

    fn opt(&mut self, tag: u32) -> Option<Tlv<'a>> {
        self.items
            .iter_mut()
            .find(|i| i.is_some_and(|t| t.tag == tag))
            .and_then(Option::take)
    }

    fn req(&mut self, tag: u32) -> Result<Tlv<'a>> {
        self.opt(tag).ok_or(Es10Error::Missing {
            what: self.what,
            tag,
        })
    }

    /// The first field not taken yet (for CHOICEs).
    fn next(&mut self) -> Option<Tlv<'a>> {
        self.items
            .iter_mut()
            .find(|i| i.is_some())
            .and_then(Option::take)
    }

    /// The raw bytes of every field not taken.
    fn rest(self) -> Vec<u8> {
        self.items
            .into_iter()
            .flatten()
            .flat_map(|t| t.raw.to_vec())
            .collect()
    }
}

fn bad(what: &'static str, tag: u32, problem: impl Into<String>) -> Es10Error {
    Es10Error::BadValue {
        what,
        tag,
        problem: problem.into(),
    }
}

/// DER INTEGER content of a non-negative value (X.690 §8.3: minimal two's complement).
pub fn encode_uint(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|b| **b == 0).count();
    let mut out = bytes.get(skip..).unwrap_or(&bytes).to_vec();
    if out.first().is_some_and(|b| b & 0x80 != 0) {
        out.insert(0, 0);
    }
    out
}

fn decode_uint(t: &Tlv<'_>, what: &'static str) -> Result<u64> {
    let v = t.value;
    match v {
        [] => Err(bad(what, t.tag, "empty INTEGER")),
        [first, ..] if first & 0x80 != 0 => Err(bad(what, t.tag, "negative INTEGER")),
        _ if v.len() > 9 || (v.len() == 9 && v.first() != Some(&0)) => {
            Err(bad(what, t.tag, "INTEGER above 2^64"))
        }
        _ => Ok(v.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))),
    }
}

fn int_tlv(tag: u32, v: u64) -> Vec<u8> {
    tlv::encode(tag, &encode_uint(v))
}

fn utf8(t: &Tlv<'_>, what: &'static str) -> Result<String> {
    String::from_utf8(t.value.to_vec()).map_err(|_| bad(what, t.tag, "not UTF-8"))
}

fn fixed<const N: usize>(t: &Tlv<'_>, what: &'static str) -> Result<[u8; N]> {
    t.value.try_into().map_err(|_| {
        bad(
            what,
            t.tag,
            format!("{} bytes, expected {N}", t.value.len()),
        )
    })
}

fn boolean(t: &Tlv<'_>, what: &'static str) -> Result<bool> {
    match t.value {
        [b] => Ok(*b != 0),
        _ => Err(bad(what, t.tag, "BOOLEAN must be one byte")),
    }
}

fn bool_tlv(tag: u32, v: bool) -> Vec<u8> {
    tlv::encode(tag, &[if v { 0xFF } else { 0x00 }])
}

/// Named BIT STRING content (X.690 §11.2.2: trailing zero bits removed): bit n is bit 7-(n%8)
/// of byte n/8.
pub fn encode_bits(bits: &[bool]) -> Vec<u8> {
    let used = bits.iter().rposition(|b| *b).map_or(0, |p| p + 1);
    let bytes = used.div_ceil(8);
    let mut out = vec![0u8; bytes + 1];
    for (n, _) in bits.iter().enumerate().take(used).filter(|(_, b)| **b) {
        if let Some(byte) = out.get_mut(1 + n / 8) {
            *byte |= 0x80 >> (n % 8);
        }
    }
    if let Some(first) = out.first_mut() {
        *first = u8::try_from(bytes * 8 - used).unwrap_or(0);
    }
    out
}

/// Reads a BIT STRING content into flags (any padding accepted).
pub fn decode_bits(t: &Tlv<'_>, what: &'static str) -> Result<Vec<bool>> {
    let (unused, bytes) = t
        .value
        .split_first()
        .ok_or_else(|| bad(what, t.tag, "empty BIT STRING"))?;
    if *unused > 7 || (bytes.is_empty() && *unused != 0) {
        return Err(bad(what, t.tag, "bad unused-bits count"));
    }
    let n = bytes.len() * 8 - usize::from(*unused);
    Ok((0..n)
        .map(|i| bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
        .collect())
}

fn seq_of<'a>(t: &Tlv<'a>, item_tag: u32, what: &'static str) -> Result<Vec<Tlv<'a>>> {
    let items = children(t, what)?;
    for i in &items {
        if i.tag != item_tag {
            return Err(Es10Error::UnexpectedTag {
                what,
                expected: item_tag,
                found: i.tag,
            });
        }
    }
    Ok(items)
}

fn cons(tag: u32, parts: &[Vec<u8>]) -> Vec<u8> {
    tlv::encode(tag, &parts.concat())
}

fn opt_tlv(tag: u32, v: Option<&[u8]>) -> Vec<u8> {
    v.map(|v| tlv::encode(tag, v)).unwrap_or_default()
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
            /// A value this version does not name.
            Other(u64),
        }
        impl $name {
            pub fn code(self) -> u64 {
                match self { $(Self::$variant => $code,)+ Self::Other(c) => c }
            }
            pub fn from_code(c: u64) -> Self {
                match c { $($code => Self::$variant,)+ other => Self::Other(other) }
            }
        }
    };
}

/// `TAG ::= SEQUENCE { result [0] INTEGER }` responses.
macro_rules! result_response {
    ($(#[$m:meta])* $name:ident, $tag:expr, $code:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            pub result: $code,
        }
        impl Der for $name {
            fn to_der(&self) -> Vec<u8> {
                cons($tag, &[int_tlv(ctx(0), self.result.code())])
            }
            fn from_der(bytes: &[u8]) -> Result<Self> {
                const WHAT: &str = stringify!($name);
                let t = outer(bytes, $tag, WHAT)?;
                let mut f = Fields::of(&t, WHAT)?;
                Ok(Self { result: $code::from_code(decode_uint(&f.req(ctx(0))?, WHAT)?) })
            }
        }
    };
}

/// Requests without content (`TAG 00`); any content received is ignored.
macro_rules! empty_request {
    ($(#[$m:meta])* $name:ident, $tag:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;
        impl Der for $name {
            fn to_der(&self) -> Vec<u8> {
                tlv::encode($tag, &[])
            }
            fn from_der(bytes: &[u8]) -> Result<Self> {
                outer(bytes, $tag, stringify!($name)).map(|_| Self)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Common types

/// An ICCID as `Iccid` carries it: the 10 bytes of EF.ICCID (nibble-swapped BCD, 'F' padded).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Iccid(pub [u8; ICCID_LEN]);

impl Iccid {
    /// From 18–20 printed digits; `None` if not digits or too long.
    pub fn from_digits(digits: &str) -> Option<Self> {
        crate::saip::encode_iccid_ef(digits).ok().map(Self)
    }

    /// The printed digits (padding 'F' dropped).
    pub fn digits(&self) -> String {
        self.0
            .iter()
            .flat_map(|b| [b & 0x0F, b >> 4])
            .take_while(|n| *n <= 9)
            .map(|n| char::from(b'0' + n))
            .collect()
    }

    fn from_tlv(t: &Tlv<'_>, what: &'static str) -> Result<Self> {
        fixed(t, what).map(Self)
    }

    fn to_tlv(self) -> Vec<u8> {
        tlv::encode(TAG_ICCID, &self.0)
    }
}

/// `profileIdentifier CHOICE { isdpAid [APPLICATION 15], iccid Iccid }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileIdentifier {
    IsdpAid(Vec<u8>),
    Iccid(Iccid),
}

impl ProfileIdentifier {
    fn to_tlv(&self) -> Vec<u8> {
        match self {
            Self::IsdpAid(aid) => tlv::encode(TAG_ISDP_AID, aid),
            Self::Iccid(i) => i.to_tlv(),
        }
    }

    fn from_tlv(t: &Tlv<'_>, what: &'static str) -> Result<Self> {
        match t.tag {
            TAG_ISDP_AID if (1..=16).contains(&t.value.len()) => {
                Ok(Self::IsdpAid(t.value.to_vec()))
            }
            TAG_ISDP_AID => Err(bad(what, t.tag, "AID must be 1 to 16 bytes")),
            TAG_ICCID => Ok(Self::Iccid(Iccid::from_tlv(t, what)?)),
            other => Err(Es10Error::UnexpectedTag {
                what,
                expected: TAG_ICCID,
                found: other,
            }),
        }
    }
}

/// `NotificationEvent` BIT STRING with one bit set (as NotificationMetadata carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotificationEvent {
    Install,
    Enable,
    Disable,
    Delete,
}

impl NotificationEvent {
    pub const ALL: [NotificationEvent; 4] = [
        NotificationEvent::Install,
        NotificationEvent::Enable,
        NotificationEvent::Disable,
        NotificationEvent::Delete,
    ];

    fn bit(self) -> usize {
        match self {
            Self::Install => 0,
            Self::Enable => 1,
            Self::Disable => 2,
            Self::Delete => 3,
        }
    }

    fn encode(self) -> Vec<u8> {
        let mut bits = [false; 4];
        if let Some(b) = bits.get_mut(self.bit()) {
            *b = true;
        }
        encode_bits(&bits)
    }

    fn decode(t: &Tlv<'_>, what: &'static str) -> Result<Self> {
        let bits = decode_bits(t, what)?;
        let first = bits
            .iter()
            .position(|b| *b)
            .ok_or_else(|| bad(what, t.tag, "no notification event bit set"))?;
        Self::ALL
            .into_iter()
            .find(|e| e.bit() == first)
            .ok_or_else(|| bad(what, t.tag, format!("unknown event bit {first}")))
    }
}

/// A set of NotificationEvents (`NotificationConfigurationInformation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotificationEvents {
    pub install: bool,
    pub enable: bool,
    pub disable: bool,
    pub delete: bool,
}

impl NotificationEvents {
    /// Every event (a profile whose notifications all go to one address).
    pub const ALL: Self = Self {
        install: true,
        enable: true,
        disable: true,
        delete: true,
    };

    pub fn contains(&self, e: NotificationEvent) -> bool {
        match e {
            NotificationEvent::Install => self.install,
            NotificationEvent::Enable => self.enable,
            NotificationEvent::Disable => self.disable,
            NotificationEvent::Delete => self.delete,
        }
    }

    fn encode(&self) -> Vec<u8> {
        encode_bits(&[self.install, self.enable, self.disable, self.delete])
    }

    fn decode(t: &Tlv<'_>, what: &'static str) -> Result<Self> {
        let b = decode_bits(t, what)?;
        let at = |i: usize| b.get(i).copied().unwrap_or(false);
        Ok(Self {
            install: at(0),
            enable: at(1),
            disable: at(2),
            delete: at(3),
        })
    }
}

/// `PprIds` BIT STRING (Profile Policy Rules, SGP.22 §2.9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PprIds {
    pub update_control: bool,
    /// PPR1: disabling this profile is not allowed.
    pub ppr1: bool,
    /// PPR2: deleting this profile is not allowed.
    pub ppr2: bool,
    /// PPR3: deletion is required upon successful disabling.
    pub ppr3: bool,
}

impl PprIds {
    pub fn encode(&self) -> Vec<u8> {
        encode_bits(&[self.update_control, self.ppr1, self.ppr2, self.ppr3])
    }

    fn decode(t: &Tlv<'_>, what: &'static str) -> Result<Self> {
        let b = decode_bits(t, what)?;
        let at = |i: usize| b.get(i).copied().unwrap_or(false);
        Ok(Self {
            update_control: at(0),
            ppr1: at(1),
            ppr2: at(2),
            ppr3: at(3),
        })
    }

    pub fn any(&self) -> bool {
        self.ppr1 || self.ppr2 || self.ppr3
    }
}

code_enum!(
    /// `ProfileClass` (SGP.22 §2.2.2).
    ProfileClass { Test = 0, Provisioning = 1, Operational = 2 }
);
code_enum!(
    /// `ProfileState`.
    ProfileState { Disabled = 0, Enabled = 1 }
);
code_enum!(
    /// `IconType`.
    IconType { Jpg = 0, Png = 1 }
);

/// `OperatorID ::= SEQUENCE { mccMnc [0], gid1 [1] OPTIONAL, gid2 [2] OPTIONAL }`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperatorId {
    pub mcc_mnc: Vec<u8>,
    pub gid1: Option<Vec<u8>>,
    pub gid2: Option<Vec<u8>>,
}

impl OperatorId {
    fn value(&self) -> Vec<u8> {
        [
            tlv::encode(ctx(0), &self.mcc_mnc),
            opt_tlv(ctx(1), self.gid1.as_deref()),
            opt_tlv(ctx(2), self.gid2.as_deref()),
        ]
        .concat()
    }

    fn from_tlv(t: &Tlv<'_>, what: &'static str) -> Result<Self> {
        let mut f = Fields::of(t, what)?;
        Ok(Self {
            mcc_mnc: f.req(ctx(0))?.value.to_vec(),
            gid1: f.opt(ctx(1)).map(|t| t.value.to_vec()),
            gid2: f.opt(ctx(2)).map(|t| t.value.to_vec()),
        })
    }
}

/// `NotificationConfigurationInformation ::= SEQUENCE { profileManagementOperation [0],
/// notificationAddress [1] }` (automatic tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationConfiguration {
    pub events: NotificationEvents,
    pub address: String,
}

fn encode_notification_configuration(list: &[NotificationConfiguration]) -> Vec<u8> {
    let items: Vec<Vec<u8>> = list
        .iter()
        .map(|c| {
            cons(
                TAG_SEQUENCE,
                &[
                    tlv::encode(ctx(0), &c.events.encode()),
                    tlv::encode(ctx(1), c.address.as_bytes()),
                ],
            )
        })
        .collect();
    cons(TAG_NOTIFICATION_CONFIGURATION, &items)
}

fn decode_notification_configuration(
    t: &Tlv<'_>,
    what: &'static str,
) -> Result<Vec<NotificationConfiguration>> {
    seq_of(t, TAG_SEQUENCE, what)?
        .iter()
        .map(|item| {
            let mut f = Fields::of(item, what)?;
            Ok(NotificationConfiguration {
                events: NotificationEvents::decode(&f.req(ctx(0))?, what)?,
                address: utf8(&f.req(ctx(1))?, what)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// ES10a (§5.7.3, §5.7.4)

empty_request!(
    /// `EuiccConfiguredAddressesRequest` (BF3C).
    EuiccConfiguredAddressesRequest,
    TAG_EUICC_CONFIGURED_ADDRESSES
);

/// `EuiccConfiguredAddressesResponse` (BF3C { [0] defaultDpAddress OPTIONAL, [1] rootDsAddress }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccConfiguredAddressesResponse {
    pub default_dp_address: Option<String>,
    pub root_ds_address: String,
}

impl Der for EuiccConfiguredAddressesResponse {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_EUICC_CONFIGURED_ADDRESSES,
            &[
                opt_tlv(
                    ctx(0),
                    self.default_dp_address.as_deref().map(str::as_bytes),
                ),
                tlv::encode(ctx(1), self.root_ds_address.as_bytes()),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "EuiccConfiguredAddressesResponse";
        let t = outer(bytes, TAG_EUICC_CONFIGURED_ADDRESSES, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            default_dp_address: f.opt(ctx(0)).map(|t| utf8(&t, WHAT)).transpose()?,
            root_ds_address: utf8(&f.req(ctx(1))?, WHAT)?,
        })
    }
}

/// `SetDefaultDpAddressRequest` (BF3F { [0] defaultDpAddress }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDefaultDpAddressRequest {
    pub address: String,
}

impl Der for SetDefaultDpAddressRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_SET_DEFAULT_DP_ADDRESS,
            &[tlv::encode(ctx(0), self.address.as_bytes())],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "SetDefaultDpAddressRequest";
        let t = outer(bytes, TAG_SET_DEFAULT_DP_ADDRESS, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            address: utf8(&f.req(ctx(0))?, WHAT)?,
        })
    }
}

code_enum!(SetDefaultDpAddressResult { Ok = 0, UndefinedError = 127 });
result_response!(
    /// `SetDefaultDpAddressResponse` (BF3F).
    SetDefaultDpAddressResponse,
    TAG_SET_DEFAULT_DP_ADDRESS,
    SetDefaultDpAddressResult
);

// ---------------------------------------------------------------------------------------
// ES10b: eUICC information (§5.7.8), challenge (§5.7.7)

empty_request!(
    /// `GetEuiccInfo1Request` (BF20).
    GetEuiccInfo1Request,
    TAG_EUICC_INFO1
);
empty_request!(
    /// `GetEuiccInfo2Request` (BF22).
    GetEuiccInfo2Request,
    TAG_EUICC_INFO2
);
empty_request!(
    /// `GetEuiccChallengeRequest` (BF2E).
    GetEuiccChallengeRequest,
    TAG_GET_EUICC_CHALLENGE
);

fn encode_pkid_list(tag: u32, list: &[Vec<u8>]) -> Vec<u8> {
    let items: Vec<Vec<u8>> = list
        .iter()
        .map(|k| tlv::encode(TAG_OCTET_STRING, k))
        .collect();
    cons(tag, &items)
}

fn decode_pkid_list(t: &Tlv<'_>, what: &'static str) -> Result<Vec<Vec<u8>>> {
    Ok(seq_of(t, TAG_OCTET_STRING, what)?
        .iter()
        .map(|k| k.value.to_vec())
        .collect())
}

/// `EUICCInfo1` (BF20 { [2] svn, [9] ciPKIdListForVerification, [10] …ForSigning }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccInfo1 {
    pub svn: [u8; 3],
    pub ci_pkid_verification: Vec<Vec<u8>>,
    pub ci_pkid_signing: Vec<Vec<u8>>,
}

impl Der for EuiccInfo1 {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_EUICC_INFO1,
            &[
                tlv::encode(ctx(2), &self.svn),
                encode_pkid_list(ctx_c(9), &self.ci_pkid_verification),
                encode_pkid_list(ctx_c(10), &self.ci_pkid_signing),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "EUICCInfo1";
        let t = outer(bytes, TAG_EUICC_INFO1, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            svn: fixed(&f.req(ctx(2))?, WHAT)?,
            ci_pkid_verification: decode_pkid_list(&f.req(ctx_c(9))?, WHAT)?,
            ci_pkid_signing: decode_pkid_list(&f.req(ctx_c(10))?, WHAT)?,
        })
    }
}

/// `EUICCInfo2` (BF22). BIT STRINGs are kept as their content bytes (unused-bits byte first);
/// fields this version does not name (certificationDataObject, v2.5/v3 additions) are kept raw
/// in `extra` and re-emitted at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccInfo2 {
    pub profile_version: [u8; 3],
    pub svn: [u8; 3],
    pub firmware_version: [u8; 3],
    pub ext_card_resource: Vec<u8>,
    pub uicc_capability: Vec<u8>,
    pub javacard_version: Option<[u8; 3]>,
    pub globalplatform_version: Option<[u8; 3]>,
    pub rsp_capability: Vec<u8>,
    pub ci_pkid_verification: Vec<Vec<u8>>,
    pub ci_pkid_signing: Vec<Vec<u8>>,
    pub euicc_category: Option<u64>,
    pub forbidden_ppr: Option<PprIds>,
    pub pp_version: [u8; 3],
    pub sas_accreditation_number: String,
    pub extra: Vec<u8>,
}

impl Der for EuiccInfo2 {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_EUICC_INFO2,
            &[
                tlv::encode(ctx(1), &self.profile_version),
                tlv::encode(ctx(2), &self.svn),
                tlv::encode(ctx(3), &self.firmware_version),
                tlv::encode(ctx(4), &self.ext_card_resource),
                tlv::encode(ctx(5), &self.uicc_capability),
                opt_tlv(ctx(6), self.javacard_version.as_ref().map(|v| &v[..])),
                opt_tlv(ctx(7), self.globalplatform_version.as_ref().map(|v| &v[..])),
                tlv::encode(ctx(8), &self.rsp_capability),
                encode_pkid_list(ctx_c(9), &self.ci_pkid_verification),
                encode_pkid_list(ctx_c(10), &self.ci_pkid_signing),
                self.euicc_category
                    .map(|c| int_tlv(ctx(11), c))
                    .unwrap_or_default(),
                self.forbidden_ppr
                    .map(|p| tlv::encode(TAG_PPR_IDS, &p.encode()))
                    .unwrap_or_default(),
                tlv::encode(TAG_OCTET_STRING, &self.pp_version),
                tlv::encode(TAG_UTF8_STRING, self.sas_accreditation_number.as_bytes()),
                self.extra.clone(),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "EUICCInfo2";
        let t = outer(bytes, TAG_EUICC_INFO2, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let v3 = |t: Option<Tlv<'_>>| t.map(|t| fixed::<3>(&t, WHAT)).transpose();
        Ok(Self {
            profile_version: fixed(&f.req(ctx(1))?, WHAT)?,
            svn: fixed(&f.req(ctx(2))?, WHAT)?,
            firmware_version: fixed(&f.req(ctx(3))?, WHAT)?,
            ext_card_resource: f.req(ctx(4))?.value.to_vec(),
            uicc_capability: f.req(ctx(5))?.value.to_vec(),
            javacard_version: v3(f.opt(ctx(6)))?,
            globalplatform_version: v3(f.opt(ctx(7)))?,
            rsp_capability: f.req(ctx(8))?.value.to_vec(),
            ci_pkid_verification: decode_pkid_list(&f.req(ctx_c(9))?, WHAT)?,
            ci_pkid_signing: decode_pkid_list(&f.req(ctx_c(10))?, WHAT)?,
            euicc_category: f.opt(ctx(11)).map(|t| decode_uint(&t, WHAT)).transpose()?,
            forbidden_ppr: f
                .opt(TAG_PPR_IDS)
                .map(|t| PprIds::decode(&t, WHAT))
                .transpose()?,
            pp_version: fixed(&f.req(TAG_OCTET_STRING)?, WHAT)?,
            sas_accreditation_number: utf8(&f.req(TAG_UTF8_STRING)?, WHAT)?,
            extra: f.rest(),
        })
    }
}

/// `GetEuiccChallengeResponse` (BF2E { [0] euiccChallenge }).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetEuiccChallengeResponse {
    pub challenge: [u8; CHALLENGE_LEN],
}

impl Der for GetEuiccChallengeResponse {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_GET_EUICC_CHALLENGE,
            &[tlv::encode(ctx(0), &self.challenge)],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "GetEuiccChallengeResponse";
        let t = outer(bytes, TAG_GET_EUICC_CHALLENGE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            challenge: fixed(&f.req(ctx(0))?, WHAT)?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// ES10b.AuthenticateServer (§5.7.13)

/// `ServerSigned1 ::= SEQUENCE { [0] transactionId, [1] euiccChallenge, [3] serverAddress,
/// [4] serverChallenge }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSigned1 {
    pub transaction_id: Vec<u8>,
    pub euicc_challenge: [u8; CHALLENGE_LEN],
    pub server_address: String,
    pub server_challenge: [u8; CHALLENGE_LEN],
}

impl Der for ServerSigned1 {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_SEQUENCE,
            &[
                tlv::encode(ctx(0), &self.transaction_id),
                tlv::encode(ctx(1), &self.euicc_challenge),
                tlv::encode(ctx(3), self.server_address.as_bytes()),
                tlv::encode(ctx(4), &self.server_challenge),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ServerSigned1";
        let t = outer(bytes, TAG_SEQUENCE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            transaction_id: transaction_id(&f.req(ctx(0))?, WHAT)?,
            euicc_challenge: fixed(&f.req(ctx(1))?, WHAT)?,
            server_address: utf8(&f.req(ctx(3))?, WHAT)?,
            server_challenge: fixed(&f.req(ctx(4))?, WHAT)?,
        })
    }
}

fn transaction_id(t: &Tlv<'_>, what: &'static str) -> Result<Vec<u8>> {
    if !(1..=16).contains(&t.value.len()) {
        return Err(bad(what, t.tag, "transactionId must be 1 to 16 bytes"));
    }
    Ok(t.value.to_vec())
}

/// `DeviceInfo ::= SEQUENCE { [0] tac, [1] deviceCapabilities, [2] imei OPTIONAL }`;
/// the capabilities are kept as the content bytes of `[1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub tac: Vec<u8>,
    pub device_capabilities: Vec<u8>,
    pub imei: Option<Vec<u8>>,
}

/// `CtxParams1` (its only alternative `ctxParamsForCommonAuthentication`, tag `A0`:
/// `{ [0] matchingId OPTIONAL, [1] deviceInfo }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtxParams1 {
    pub matching_id: Option<String>,
    pub device_info: DeviceInfo,
}

impl Der for CtxParams1 {
    fn to_der(&self) -> Vec<u8> {
        let d = &self.device_info;
        let device = cons(
            ctx_c(1),
            &[
                tlv::encode(ctx(0), &d.tac),
                tlv::encode(ctx_c(1), &d.device_capabilities),
                opt_tlv(ctx(2), d.imei.as_deref()),
            ],
        );
        cons(
            ctx_c(0),
            &[
                opt_tlv(ctx(0), self.matching_id.as_deref().map(str::as_bytes)),
                device,
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "CtxParams1";
        let t = outer(bytes, ctx_c(0), WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let matching_id = f.opt(ctx(0)).map(|t| utf8(&t, WHAT)).transpose()?;
        let dev = f.req(ctx_c(1))?;
        let mut d = Fields::of(&dev, WHAT)?;
        Ok(Self {
            matching_id,
            device_info: DeviceInfo {
                tac: d.req(ctx(0))?.value.to_vec(),
                device_capabilities: d.req(ctx_c(1))?.value.to_vec(),
                imei: d.opt(ctx(2)).map(|t| t.value.to_vec()),
            },
        })
    }
}

/// `AuthenticateServerRequest` (BF38).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateServerRequest {
    pub server_signed1: Encoded<ServerSigned1>,
    pub server_signature1: Vec<u8>,
    /// `euiccCiPKIdToBeUsed` (SubjectKeyIdentifier of the CI, OCTET STRING content).
    pub euicc_ci_pkid_to_be_used: Vec<u8>,
    pub server_certificate: Vec<u8>,
    pub ctx_params1: Encoded<CtxParams1>,
}

impl Der for AuthenticateServerRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_AUTHENTICATE_SERVER,
            &[
                self.server_signed1.to_der(),
                tlv::encode(TAG_SIGNATURE, &self.server_signature1),
                tlv::encode(TAG_OCTET_STRING, &self.euicc_ci_pkid_to_be_used),
                self.server_certificate.clone(),
                self.ctx_params1.to_der(),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "AuthenticateServerRequest";
        let t = outer(bytes, TAG_AUTHENTICATE_SERVER, WHAT)?;
        let items = children(&t, WHAT)?;
        // Two untagged SEQUENCEs (serverSigned1, serverCertificate): by position.
        let seqs: Vec<&Tlv<'_>> = items.iter().filter(|i| i.tag == TAG_SEQUENCE).collect();
        let find = |tag| {
            items
                .iter()
                .find(|i| i.tag == tag)
                .ok_or(Es10Error::Missing { what: WHAT, tag })
        };
        let signed = seqs.first().ok_or(Es10Error::Missing {
            what: WHAT,
            tag: TAG_SEQUENCE,
        })?;
        let cert = seqs.get(1).ok_or(Es10Error::Missing {
            what: WHAT,
            tag: TAG_SEQUENCE,
        })?;
        Ok(Self {
            server_signed1: Encoded::from_der(signed.raw)?,
            server_signature1: find(TAG_SIGNATURE)?.value.to_vec(),
            euicc_ci_pkid_to_be_used: find(TAG_OCTET_STRING)?.value.to_vec(),
            server_certificate: cert.raw.to_vec(),
            ctx_params1: Encoded::from_der(find(ctx_c(0))?.raw)?,
        })
    }
}

/// `EuiccSigned1 ::= SEQUENCE { [0] transactionId, [3] serverAddress, [4] serverChallenge,
/// [34] euiccInfo2, ctxParams1 }`. `euiccInfo2` and `ctxParams1` are kept as bytes: the eUICC
/// copies ctxParams1 exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccSigned1 {
    pub transaction_id: Vec<u8>,
    pub server_address: String,
    pub server_challenge: [u8; CHALLENGE_LEN],
    pub euicc_info2: Encoded<EuiccInfo2>,
    pub ctx_params1: Encoded<CtxParams1>,
}

impl Der for EuiccSigned1 {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_SEQUENCE,
            &[
                tlv::encode(ctx(0), &self.transaction_id),
                tlv::encode(ctx(3), self.server_address.as_bytes()),
                tlv::encode(ctx(4), &self.server_challenge),
                self.euicc_info2.to_der(),
                self.ctx_params1.to_der(),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "EuiccSigned1";
        let t = outer(bytes, TAG_SEQUENCE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            transaction_id: transaction_id(&f.req(ctx(0))?, WHAT)?,
            server_address: utf8(&f.req(ctx(3))?, WHAT)?,
            server_challenge: fixed(&f.req(ctx(4))?, WHAT)?,
            euicc_info2: Encoded::from_der(f.req(TAG_EUICC_INFO2)?.raw)?,
            ctx_params1: Encoded::from_der(f.req(ctx_c(0))?.raw)?,
        })
    }
}

code_enum!(
    /// `AuthenticateErrorCode`.
    AuthenticateErrorCode {
        InvalidCertificate = 1,
        InvalidSignature = 2,
        UnsupportedCurve = 3,
        NoSessionContext = 4,
        InvalidOid = 5,
        EuiccChallengeMismatch = 6,
        CiPkUnknown = 7,
        UndefinedError = 127,
    }
);

/// `AuthenticateServerResponse` (BF38 CHOICE { [0] ok, [1] error }).
#[allow(clippy::large_enum_variant)] // one per session; boxing would only complicate matching
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthenticateServerResponse {
    Ok {
        euicc_signed1: Encoded<EuiccSigned1>,
        euicc_signature1: Vec<u8>,
        euicc_certificate: Vec<u8>,
        eum_certificate: Vec<u8>,
    },
    Error {
        transaction_id: Vec<u8>,
        code: AuthenticateErrorCode,
    },
}

impl Der for AuthenticateServerResponse {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ok {
                euicc_signed1,
                euicc_signature1,
                euicc_certificate,
                eum_certificate,
            } => cons(
                ctx_c(0),
                &[
                    euicc_signed1.to_der(),
                    tlv::encode(TAG_SIGNATURE, euicc_signature1),
                    euicc_certificate.clone(),
                    eum_certificate.clone(),
                ],
            ),
            Self::Error {
                transaction_id,
                code,
            } => cons(
                ctx_c(1),
                &[
                    tlv::encode(ctx(0), transaction_id),
                    int_tlv(TAG_INTEGER, code.code()),
                ],
            ),
        };
        tlv::encode(TAG_AUTHENTICATE_SERVER, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "AuthenticateServerResponse";
        let t = outer(bytes, TAG_AUTHENTICATE_SERVER, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        if let Some(ok) = f.opt(ctx_c(0)) {
            let items = children(&ok, WHAT)?;
            let seqs: Vec<&Tlv<'_>> = items.iter().filter(|i| i.tag == TAG_SEQUENCE).collect();
            let seq = |i: usize| {
                seqs.get(i).map(|t| t.raw).ok_or(Es10Error::Missing {
                    what: WHAT,
                    tag: TAG_SEQUENCE,
                })
            };
            let signature =
                items
                    .iter()
                    .find(|i| i.tag == TAG_SIGNATURE)
                    .ok_or(Es10Error::Missing {
                        what: WHAT,
                        tag: TAG_SIGNATURE,
                    })?;
            return Ok(Self::Ok {
                euicc_signed1: Encoded::from_der(seq(0)?)?,
                euicc_signature1: signature.value.to_vec(),
                euicc_certificate: seq(1)?.to_vec(),
                eum_certificate: seq(2)?.to_vec(),
            });
        }
        let err = f.req(ctx_c(1))?;
        let mut e = Fields::of(&err, WHAT)?;
        Ok(Self::Error {
            transaction_id: e.req(ctx(0))?.value.to_vec(),
            code: AuthenticateErrorCode::from_code(decode_uint(&e.req(TAG_INTEGER)?, WHAT)?),
        })
    }
}

// ---------------------------------------------------------------------------------------
// ES10b.PrepareDownload (§5.7.5)

/// `SmdpSigned2 ::= SEQUENCE { [0] transactionId, ccRequiredFlag BOOLEAN,
/// bppEuiccOtpk [APPLICATION 73] OPTIONAL }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmdpSigned2 {
    pub transaction_id: Vec<u8>,
    pub cc_required: bool,
    pub bpp_euicc_otpk: Option<Vec<u8>>,
}

impl Der for SmdpSigned2 {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_SEQUENCE,
            &[
                tlv::encode(ctx(0), &self.transaction_id),
                bool_tlv(TAG_BOOLEAN, self.cc_required),
                opt_tlv(TAG_OTPK, self.bpp_euicc_otpk.as_deref()),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "SmdpSigned2";
        let t = outer(bytes, TAG_SEQUENCE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            transaction_id: transaction_id(&f.req(ctx(0))?, WHAT)?,
            cc_required: boolean(&f.req(TAG_BOOLEAN)?, WHAT)?,
            bpp_euicc_otpk: f.opt(TAG_OTPK).map(|t| t.value.to_vec()),
        })
    }
}

/// `PrepareDownloadRequest` (BF21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareDownloadRequest {
    pub smdp_signed2: Encoded<SmdpSigned2>,
    pub smdp_signature2: Vec<u8>,
    pub hash_cc: Option<[u8; 32]>,
    pub smdp_certificate: Vec<u8>,
}

impl Der for PrepareDownloadRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_PREPARE_DOWNLOAD,
            &[
                self.smdp_signed2.to_der(),
                tlv::encode(TAG_SIGNATURE, &self.smdp_signature2),
                opt_tlv(TAG_OCTET_STRING, self.hash_cc.as_ref().map(|h| &h[..])),
                self.smdp_certificate.clone(),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "PrepareDownloadRequest";
        let t = outer(bytes, TAG_PREPARE_DOWNLOAD, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let signed = f.req(TAG_SEQUENCE)?;
        let signature = f.req(TAG_SIGNATURE)?;
        let hash_cc = f
            .opt(TAG_OCTET_STRING)
            .map(|h| fixed(&h, WHAT))
            .transpose()?;
        let cert = f.req(TAG_SEQUENCE)?;
        Ok(Self {
            smdp_signed2: Encoded::from_der(signed.raw)?,
            smdp_signature2: signature.value.to_vec(),
            hash_cc,
            smdp_certificate: cert.raw.to_vec(),
        })
    }
}

/// `EUICCSigned2 ::= SEQUENCE { [0] transactionId, euiccOtpk [APPLICATION 73], hashCc OPTIONAL }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccSigned2 {
    pub transaction_id: Vec<u8>,
    pub euicc_otpk: Vec<u8>,
    pub hash_cc: Option<[u8; 32]>,
}

impl Der for EuiccSigned2 {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_SEQUENCE,
            &[
                tlv::encode(ctx(0), &self.transaction_id),
                tlv::encode(TAG_OTPK, &self.euicc_otpk),
                opt_tlv(TAG_OCTET_STRING, self.hash_cc.as_ref().map(|h| &h[..])),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "EUICCSigned2";
        let t = outer(bytes, TAG_SEQUENCE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            transaction_id: transaction_id(&f.req(ctx(0))?, WHAT)?,
            euicc_otpk: f.req(TAG_OTPK)?.value.to_vec(),
            hash_cc: f
                .opt(TAG_OCTET_STRING)
                .map(|h| fixed(&h, WHAT))
                .transpose()?,
        })
    }
}

code_enum!(
    /// `DownloadErrorCode`.
    DownloadErrorCode {
        InvalidCertificate = 1,
        InvalidSignature = 2,
        UnsupportedCurve = 3,
        NoSessionContext = 4,
        InvalidTransactionId = 5,
        UndefinedError = 127,
    }
);

/// `PrepareDownloadResponse` (BF21 CHOICE { [0] ok, [1] error }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareDownloadResponse {
    Ok {
        euicc_signed2: Encoded<EuiccSigned2>,
        euicc_signature2: Vec<u8>,
    },
    Error {
        transaction_id: Vec<u8>,
        code: DownloadErrorCode,
    },
}

impl Der for PrepareDownloadResponse {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ok {
                euicc_signed2,
                euicc_signature2,
            } => cons(
                ctx_c(0),
                &[
                    euicc_signed2.to_der(),
                    tlv::encode(TAG_SIGNATURE, euicc_signature2),
                ],
            ),
            Self::Error {
                transaction_id,
                code,
            } => cons(
                ctx_c(1),
                &[
                    tlv::encode(ctx(0), transaction_id),
                    int_tlv(TAG_INTEGER, code.code()),
                ],
            ),
        };
        tlv::encode(TAG_PREPARE_DOWNLOAD, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "PrepareDownloadResponse";
        let t = outer(bytes, TAG_PREPARE_DOWNLOAD, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        if let Some(ok) = f.opt(ctx_c(0)) {
            let mut o = Fields::of(&ok, WHAT)?;
            return Ok(Self::Ok {
                euicc_signed2: Encoded::from_der(o.req(TAG_SEQUENCE)?.raw)?,
                euicc_signature2: o.req(TAG_SIGNATURE)?.value.to_vec(),
            });
        }
        let err = f.req(ctx_c(1))?;
        let mut e = Fields::of(&err, WHAT)?;
        Ok(Self::Error {
            transaction_id: e.req(ctx(0))?.value.to_vec(),
            code: DownloadErrorCode::from_code(decode_uint(&e.req(TAG_INTEGER)?, WHAT)?),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Bound profile package (§2.5.4, §5.7.6) and what its segments carry (§5.5.x)

/// `BoundProfilePackage` (BF36): BF23 and the protected segments, each segment a whole TLV
/// (`87`, `88`, `86`) as the SM-DP+ produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundProfilePackage {
    pub initialise_secure_channel: Vec<u8>,
    pub configure_isdp: Vec<Vec<u8>>,
    pub store_metadata: Vec<Vec<u8>>,
    pub replace_session_keys: Option<Vec<Vec<u8>>>,
    pub load_profile_elements: Vec<Vec<u8>>,
}

const TAG_BPP_FIRST_87: u32 = ctx_c(0);
const TAG_BPP_88: u32 = ctx_c(1);
const TAG_BPP_SECOND_87: u32 = ctx_c(2);
const TAG_BPP_86: u32 = ctx_c(3);

impl BoundProfilePackage {
    /// The ES10b.LoadBoundProfilePackage commands an LPA sends (SGP.22 §2.5.5 / real LPAs):
    /// `BF36 L ‖ BF23…`, the whole `A0`, `A1 L` header, each `88`, the whole `A2` (if any),
    /// `A3 L` header, each `86`.
    pub fn lpa_commands(&self) -> Vec<Vec<u8>> {
        let whole = self.to_der();
        let header_len = whole.len() - self.value_len();
        let mut out = vec![[
            whole.get(..header_len).unwrap_or_default(),
            &self.initialise_secure_channel,
        ]
        .concat()];
        out.push(tlv::encode(TAG_BPP_FIRST_87, &self.configure_isdp.concat()));
        out.push(container_header(TAG_BPP_88, &self.store_metadata));
        out.extend(self.store_metadata.iter().cloned());
        if let Some(rsk) = &self.replace_session_keys {
            out.push(tlv::encode(TAG_BPP_SECOND_87, &rsk.concat()));
        }
        out.push(container_header(TAG_BPP_86, &self.load_profile_elements));
        out.extend(self.load_profile_elements.iter().cloned());
        out
    }

    fn value_len(&self) -> usize {
        self.value().len()
    }

    fn value(&self) -> Vec<u8> {
        let mut parts = vec![
            self.initialise_secure_channel.clone(),
            tlv::encode(TAG_BPP_FIRST_87, &self.configure_isdp.concat()),
            tlv::encode(TAG_BPP_88, &self.store_metadata.concat()),
        ];
        if let Some(rsk) = &self.replace_session_keys {
            parts.push(tlv::encode(TAG_BPP_SECOND_87, &rsk.concat()));
        }
        parts.push(tlv::encode(
            TAG_BPP_86,
            &self.load_profile_elements.concat(),
        ));
        parts.concat()
    }
}

fn container_header(tag: u32, items: &[Vec<u8>]) -> Vec<u8> {
    let mut h = Vec::new();
    tlv::push_tag(&mut h, tag);
    tlv::push_length(&mut h, items.iter().map(Vec::len).sum());
    h
}

impl Der for BoundProfilePackage {
    fn to_der(&self) -> Vec<u8> {
        tlv::encode(TAG_BOUND_PROFILE_PACKAGE, &self.value())
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "BoundProfilePackage";
        let t = outer(bytes, TAG_BOUND_PROFILE_PACKAGE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let segs = |t: Tlv<'_>, tag: u32| -> Result<Vec<Vec<u8>>> {
            Ok(seq_of(&t, tag, WHAT)?
                .iter()
                .map(|s| s.raw.to_vec())
                .collect())
        };
        Ok(Self {
            initialise_secure_channel: f.req(TAG_INITIALISE_SECURE_CHANNEL)?.raw.to_vec(),
            configure_isdp: segs(f.req(TAG_BPP_FIRST_87)?, 0x87)?,
            store_metadata: segs(f.req(TAG_BPP_88)?, 0x88)?,
            replace_session_keys: f
                .opt(TAG_BPP_SECOND_87)
                .map(|t| segs(t, 0x87))
                .transpose()?,
            load_profile_elements: segs(f.req(TAG_BPP_86)?, 0x86)?,
        })
    }
}

/// `ConfigureISDPRequest` (BF24 { [24] dpProprietaryData OPTIONAL }), dpProprietaryData kept
/// as its content bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigureIsdpRequest {
    pub dp_proprietary_data: Option<Vec<u8>>,
}

impl Der for ConfigureIsdpRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_CONFIGURE_ISDP,
            &[opt_tlv(
                TAG_DP_PROPRIETARY_DATA,
                self.dp_proprietary_data.as_deref(),
            )],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ConfigureISDPRequest";
        let t = outer(bytes, TAG_CONFIGURE_ISDP, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            dp_proprietary_data: f.opt(TAG_DP_PROPRIETARY_DATA).map(|t| t.value.to_vec()),
        })
    }
}

/// `StoreMetadataRequest` (BF25): the profile's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMetadataRequest {
    pub iccid: Iccid,
    pub service_provider_name: String,
    pub profile_name: String,
    pub icon_type: Option<IconType>,
    pub icon: Option<Vec<u8>>,
    pub profile_class: Option<ProfileClass>,
    pub notification_configuration: Option<Vec<NotificationConfiguration>>,
    pub profile_owner: Option<OperatorId>,
    pub ppr: Option<PprIds>,
}

impl Der for StoreMetadataRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_STORE_METADATA,
            &[
                self.iccid.to_tlv(),
                tlv::encode(
                    TAG_SERVICE_PROVIDER_NAME,
                    self.service_provider_name.as_bytes(),
                ),
                tlv::encode(TAG_PROFILE_NAME, self.profile_name.as_bytes()),
                self.icon_type
                    .map(|i| int_tlv(TAG_ICON_TYPE, i.code()))
                    .unwrap_or_default(),
                opt_tlv(TAG_ICON, self.icon.as_deref()),
                self.profile_class
                    .map(|c| int_tlv(TAG_PROFILE_CLASS, c.code()))
                    .unwrap_or_default(),
                self.notification_configuration
                    .as_deref()
                    .map(encode_notification_configuration)
                    .unwrap_or_default(),
                self.profile_owner
                    .as_ref()
                    .map(|o| tlv::encode(TAG_PROFILE_OWNER, &o.value()))
                    .unwrap_or_default(),
                self.ppr
                    .map(|p| tlv::encode(TAG_PPR_IDS, &p.encode()))
                    .unwrap_or_default(),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "StoreMetadataRequest";
        let t = outer(bytes, TAG_STORE_METADATA, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            iccid: Iccid::from_tlv(&f.req(TAG_ICCID)?, WHAT)?,
            service_provider_name: utf8(&f.req(TAG_SERVICE_PROVIDER_NAME)?, WHAT)?,
            profile_name: utf8(&f.req(TAG_PROFILE_NAME)?, WHAT)?,
            icon_type: f
                .opt(TAG_ICON_TYPE)
                .map(|t| decode_uint(&t, WHAT).map(IconType::from_code))
                .transpose()?,
            icon: f.opt(TAG_ICON).map(|t| t.value.to_vec()),
            profile_class: f
                .opt(TAG_PROFILE_CLASS)
                .map(|t| decode_uint(&t, WHAT).map(ProfileClass::from_code))
                .transpose()?,
            notification_configuration: f
                .opt(TAG_NOTIFICATION_CONFIGURATION)
                .map(|t| decode_notification_configuration(&t, WHAT))
                .transpose()?,
            profile_owner: f
                .opt(TAG_PROFILE_OWNER)
                .map(|t| OperatorId::from_tlv(&t, WHAT))
                .transpose()?,
            ppr: f
                .opt(TAG_PPR_IDS)
                .map(|t| PprIds::decode(&t, WHAT))
                .transpose()?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// ProfileInstallationResult (§5.7.6) and notifications (§5.7.9–§5.7.11)

/// `NotificationMetadata` (BF2F { [0] seqNumber, [1] profileManagementOperation,
/// notificationAddress UTF8String, iccid OPTIONAL }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationMetadata {
    pub seq_number: u64,
    pub operation: NotificationEvent,
    pub notification_address: String,
    pub iccid: Option<Iccid>,
}

impl Der for NotificationMetadata {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_NOTIFICATION_METADATA,
            &[
                int_tlv(ctx(0), self.seq_number),
                tlv::encode(ctx(1), &self.operation.encode()),
                tlv::encode(TAG_UTF8_STRING, self.notification_address.as_bytes()),
                self.iccid.map(Iccid::to_tlv).unwrap_or_default(),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "NotificationMetadata";
        let t = outer(bytes, TAG_NOTIFICATION_METADATA, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            seq_number: decode_uint(&f.req(ctx(0))?, WHAT)?,
            operation: NotificationEvent::decode(&f.req(ctx(1))?, WHAT)?,
            notification_address: utf8(&f.req(TAG_UTF8_STRING)?, WHAT)?,
            iccid: f
                .opt(TAG_ICCID)
                .map(|t| Iccid::from_tlv(&t, WHAT))
                .transpose()?,
        })
    }
}

code_enum!(
    /// `BppCommandId`: which part of the bound profile package failed.
    BppCommandId {
        InitialiseSecureChannel = 0,
        ConfigureIsdp = 1,
        StoreMetadata = 2,
        StoreMetadata2 = 3,
        ReplaceSessionKeys = 4,
        LoadProfileElements = 5,
    }
);

code_enum!(
    /// `ErrorReason` of a failed installation.
    ErrorReason {
        IncorrectInputValues = 1,
        InvalidSignature = 2,
        InvalidTransactionId = 3,
        UnsupportedCrtValues = 4,
        UnsupportedRemoteOperationType = 5,
        UnsupportedProfileClass = 6,
        Scp03tStructureError = 7,
        Scp03tSecurityError = 8,
        InstallFailedDueToIccidAlreadyExistsOnEuicc = 9,
        InstallFailedDueToInsufficientMemoryForProfile = 10,
        InstallFailedDueToInterruption = 11,
        InstallFailedDueToPeProcessingError = 12,
        InstallFailedDueToIccidMismatch = 13,
        TestProfileInstallFailedDueToInvalidNaaKey = 14,
        PprNotAllowed = 15,
        InstallFailedDueToUnknownError = 127,
    }
);

/// `finalResult [2] CHOICE { successResult [0], errorResult [1] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    Success {
        isdp_aid: Vec<u8>,
        sima_response: Vec<u8>,
    },
    Error {
        bpp_command_id: BppCommandId,
        error_reason: ErrorReason,
        sima_response: Option<Vec<u8>>,
    },
}

/// `ProfileInstallationResultData` (BF27).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInstallationResultData {
    pub transaction_id: Vec<u8>,
    pub notification_metadata: NotificationMetadata,
    /// SM-DP+ OID (content of the OBJECT IDENTIFIER).
    pub smdp_oid: Option<Vec<u8>>,
    pub final_result: FinalResult,
}

impl Der for ProfileInstallationResultData {
    fn to_der(&self) -> Vec<u8> {
        let result = match &self.final_result {
            FinalResult::Success {
                isdp_aid,
                sima_response,
            } => cons(
                ctx_c(0),
                &[
                    tlv::encode(TAG_ISDP_AID, isdp_aid),
                    tlv::encode(TAG_OCTET_STRING, sima_response),
                ],
            ),
            FinalResult::Error {
                bpp_command_id,
                error_reason,
                sima_response,
            } => cons(
                ctx_c(1),
                &[
                    int_tlv(ctx(0), bpp_command_id.code()),
                    int_tlv(ctx(1), error_reason.code()),
                    opt_tlv(ctx(2), sima_response.as_deref()),
                ],
            ),
        };
        cons(
            TAG_PROFILE_INSTALLATION_RESULT_DATA,
            &[
                tlv::encode(ctx(0), &self.transaction_id),
                self.notification_metadata.to_der(),
                opt_tlv(TAG_OID, self.smdp_oid.as_deref()),
                tlv::encode(ctx_c(2), &result),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ProfileInstallationResultData";
        let t = outer(bytes, TAG_PROFILE_INSTALLATION_RESULT_DATA, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let transaction_id = f.req(ctx(0))?.value.to_vec();
        let notification_metadata =
            NotificationMetadata::from_der(f.req(TAG_NOTIFICATION_METADATA)?.raw)?;
        let smdp_oid = f.opt(TAG_OID).map(|t| t.value.to_vec());
        let fr = f.req(ctx_c(2))?;
        let mut choice = Fields::of(&fr, WHAT)?;
        let final_result = if let Some(ok) = choice.opt(ctx_c(0)) {
            let mut o = Fields::of(&ok, WHAT)?;
            FinalResult::Success {
                isdp_aid: o.req(TAG_ISDP_AID)?.value.to_vec(),
                sima_response: o.req(TAG_OCTET_STRING)?.value.to_vec(),
            }
        } else {
            let err = choice.req(ctx_c(1))?;
            let mut e = Fields::of(&err, WHAT)?;
            FinalResult::Error {
                bpp_command_id: BppCommandId::from_code(decode_uint(&e.req(ctx(0))?, WHAT)?),
                error_reason: ErrorReason::from_code(decode_uint(&e.req(ctx(1))?, WHAT)?),
                sima_response: e.opt(ctx(2)).map(|t| t.value.to_vec()),
            }
        };
        Ok(Self {
            transaction_id,
            notification_metadata,
            smdp_oid,
            final_result,
        })
    }
}

/// `ProfileInstallationResult` (BF37 { BF27 data, euiccSignPIR 5F37 }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInstallationResult {
    pub data: Encoded<ProfileInstallationResultData>,
    /// Raw `r‖s` over the exact `data` bytes.
    pub euicc_sign_pir: Vec<u8>,
}

impl Der for ProfileInstallationResult {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_PROFILE_INSTALLATION_RESULT,
            &[
                self.data.to_der(),
                tlv::encode(TAG_SIGNATURE, &self.euicc_sign_pir),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ProfileInstallationResult";
        let t = outer(bytes, TAG_PROFILE_INSTALLATION_RESULT, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            data: Encoded::from_der(f.req(TAG_PROFILE_INSTALLATION_RESULT_DATA)?.raw)?,
            euicc_sign_pir: f.req(TAG_SIGNATURE)?.value.to_vec(),
        })
    }
}

code_enum!(
    /// `CancelSessionReason`.
    CancelSessionReason { EndUserRejection = 0, Postponed = 1, Timeout = 2, PprNotAllowed = 3 }
);

/// `CancelSessionRequest` (BF41 { [0] transactionId, [1] reason }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelSessionRequest {
    pub transaction_id: Vec<u8>,
    pub reason: CancelSessionReason,
}

impl Der for CancelSessionRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_CANCEL_SESSION,
            &[
                tlv::encode(ctx(0), &self.transaction_id),
                int_tlv(ctx(1), self.reason.code()),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "CancelSessionRequest";
        let t = outer(bytes, TAG_CANCEL_SESSION, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            transaction_id: f.req(ctx(0))?.value.to_vec(),
            reason: CancelSessionReason::from_code(decode_uint(&f.req(ctx(1))?, WHAT)?),
        })
    }
}

/// `EuiccCancelSessionSigned ::= SEQUENCE { [0] transactionId, [1] smdpOid, [2] reason }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccCancelSessionSigned {
    pub transaction_id: Vec<u8>,
    pub smdp_oid: Vec<u8>,
    pub reason: CancelSessionReason,
}

impl Der for EuiccCancelSessionSigned {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_SEQUENCE,
            &[
                tlv::encode(ctx(0), &self.transaction_id),
                tlv::encode(ctx(1), &self.smdp_oid),
                int_tlv(ctx(2), self.reason.code()),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "EuiccCancelSessionSigned";
        let t = outer(bytes, TAG_SEQUENCE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            transaction_id: f.req(ctx(0))?.value.to_vec(),
            smdp_oid: f.req(ctx(1))?.value.to_vec(),
            reason: CancelSessionReason::from_code(decode_uint(&f.req(ctx(2))?, WHAT)?),
        })
    }
}

code_enum!(CancelSessionError { InvalidTransactionId = 5, UndefinedError = 127 });

/// `CancelSessionResponse` (BF41 CHOICE { [0] ok, [1] error INTEGER }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelSessionResponse {
    Ok {
        signed: Encoded<EuiccCancelSessionSigned>,
        signature: Vec<u8>,
    },
    Error(CancelSessionError),
}

impl Der for CancelSessionResponse {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ok { signed, signature } => cons(
                ctx_c(0),
                &[signed.to_der(), tlv::encode(TAG_SIGNATURE, signature)],
            ),
            Self::Error(code) => int_tlv(ctx(1), code.code()),
        };
        tlv::encode(TAG_CANCEL_SESSION, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "CancelSessionResponse";
        let t = outer(bytes, TAG_CANCEL_SESSION, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        if let Some(ok) = f.opt(ctx_c(0)) {
            let mut o = Fields::of(&ok, WHAT)?;
            return Ok(Self::Ok {
                signed: Encoded::from_der(o.req(TAG_SEQUENCE)?.raw)?,
                signature: o.req(TAG_SIGNATURE)?.value.to_vec(),
            });
        }
        Ok(Self::Error(CancelSessionError::from_code(decode_uint(
            &f.req(ctx(1))?,
            WHAT,
        )?)))
    }
}

/// `ListNotificationRequest` (BF28 { [1] profileManagementOperation OPTIONAL }).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListNotificationRequest {
    pub operation: Option<NotificationEvents>,
}

impl Der for ListNotificationRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_LIST_NOTIFICATION,
            &[self
                .operation
                .map(|o| tlv::encode(ctx(1), &o.encode()))
                .unwrap_or_default()],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ListNotificationRequest";
        let t = outer(bytes, TAG_LIST_NOTIFICATION, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            operation: f
                .opt(ctx(1))
                .map(|t| NotificationEvents::decode(&t, WHAT))
                .transpose()?,
        })
    }
}

code_enum!(ListNotificationError { UndefinedError = 127 });

/// `ListNotificationResponse` (BF28 CHOICE { [0] SEQUENCE OF NotificationMetadata, [1] error }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListNotificationResponse {
    Ok(Vec<NotificationMetadata>),
    Error(ListNotificationError),
}

impl Der for ListNotificationResponse {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ok(list) => cons(ctx_c(0), &list.iter().map(Der::to_der).collect::<Vec<_>>()),
            Self::Error(e) => int_tlv(ctx(1), e.code()),
        };
        tlv::encode(TAG_LIST_NOTIFICATION, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ListNotificationResponse";
        let t = outer(bytes, TAG_LIST_NOTIFICATION, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        if let Some(list) = f.opt(ctx_c(0)) {
            return seq_of(&list, TAG_NOTIFICATION_METADATA, WHAT)?
                .iter()
                .map(|m| NotificationMetadata::from_der(m.raw))
                .collect::<Result<Vec<_>>>()
                .map(Self::Ok);
        }
        Ok(Self::Error(ListNotificationError::from_code(decode_uint(
            &f.req(ctx(1))?,
            WHAT,
        )?)))
    }
}

/// `RetrieveNotificationsListRequest` search criteria (`[0] CHOICE { [0] seqNumber,
/// [1] profileManagementOperation }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationSearch {
    SeqNumber(u64),
    Operation(NotificationEvents),
}

/// `RetrieveNotificationsListRequest` (BF2B). The criteria sit inside `A0` (automatic tag of
/// the untagged CHOICE): `BF2B A0 { 80 seq }`; a bare `BF2B 80 …` is not this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetrieveNotificationsListRequest {
    pub search: Option<NotificationSearch>,
}

impl Der for RetrieveNotificationsListRequest {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self.search {
            None => Vec::new(),
            Some(NotificationSearch::SeqNumber(n)) => cons(ctx_c(0), &[int_tlv(ctx(0), n)]),
            Some(NotificationSearch::Operation(o)) => {
                cons(ctx_c(0), &[tlv::encode(ctx(1), &o.encode())])
            }
        };
        tlv::encode(TAG_RETRIEVE_NOTIFICATIONS_LIST, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "RetrieveNotificationsListRequest";
        let t = outer(bytes, TAG_RETRIEVE_NOTIFICATIONS_LIST, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let search = match f.next() {
            None => None,
            Some(c) if c.tag == ctx_c(0) => {
                let mut inner = Fields::of(&c, WHAT)?;
                match inner.next() {
                    Some(s) if s.tag == ctx(0) => {
                        Some(NotificationSearch::SeqNumber(decode_uint(&s, WHAT)?))
                    }
                    Some(s) if s.tag == ctx(1) => Some(NotificationSearch::Operation(
                        NotificationEvents::decode(&s, WHAT)?,
                    )),
                    Some(s) => {
                        return Err(Es10Error::UnexpectedTag {
                            what: WHAT,
                            expected: ctx(0),
                            found: s.tag,
                        })
                    }
                    None => {
                        return Err(Es10Error::Missing {
                            what: WHAT,
                            tag: ctx(0),
                        })
                    }
                }
            }
            Some(other) => {
                return Err(Es10Error::UnexpectedTag {
                    what: WHAT,
                    expected: ctx_c(0),
                    found: other.tag,
                })
            }
        };
        Ok(Self { search })
    }
}

/// `OtherSignedNotification ::= SEQUENCE { tbsOtherNotification NotificationMetadata,
/// euiccNotificationSignature 5F37, euiccCertificate, eumCertificate }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherSignedNotification {
    pub tbs: Encoded<NotificationMetadata>,
    pub signature: Vec<u8>,
    pub euicc_certificate: Vec<u8>,
    pub eum_certificate: Vec<u8>,
}

/// `PendingNotification ::= CHOICE { profileInstallationResult BF37, otherSignedNotification }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingNotification {
    ProfileInstallationResult(ProfileInstallationResult),
    Other(OtherSignedNotification),
}

impl PendingNotification {
    /// The metadata (sequence number, event, address) of either kind.
    pub fn metadata(&self) -> &NotificationMetadata {
        match self {
            Self::ProfileInstallationResult(p) => &p.data.value.notification_metadata,
            Self::Other(o) => &o.tbs.value,
        }
    }
}

impl Der for PendingNotification {
    fn to_der(&self) -> Vec<u8> {
        match self {
            Self::ProfileInstallationResult(p) => p.to_der(),
            Self::Other(o) => cons(
                TAG_SEQUENCE,
                &[
                    o.tbs.to_der(),
                    tlv::encode(TAG_SIGNATURE, &o.signature),
                    o.euicc_certificate.clone(),
                    o.eum_certificate.clone(),
                ],
            ),
        }
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "PendingNotification";
        let t = tlv::parse_one(bytes).map_err(|source| Es10Error::Tlv { what: WHAT, source })?;
        if t.tag == TAG_PROFILE_INSTALLATION_RESULT {
            return ProfileInstallationResult::from_der(bytes).map(Self::ProfileInstallationResult);
        }
        let t = expect_tag(t, TAG_SEQUENCE, WHAT)?;
        let items = children(&t, WHAT)?;
        let tbs = items
            .iter()
            .find(|i| i.tag == TAG_NOTIFICATION_METADATA)
            .ok_or(Es10Error::Missing {
                what: WHAT,
                tag: TAG_NOTIFICATION_METADATA,
            })?;
        let sig = items
            .iter()
            .find(|i| i.tag == TAG_SIGNATURE)
            .ok_or(Es10Error::Missing {
                what: WHAT,
                tag: TAG_SIGNATURE,
            })?;
        let certs: Vec<&Tlv<'_>> = items.iter().filter(|i| i.tag == TAG_SEQUENCE).collect();
        let cert = |i: usize| {
            certs
                .get(i)
                .map(|c| c.raw.to_vec())
                .ok_or(Es10Error::Missing {
                    what: WHAT,
                    tag: TAG_SEQUENCE,
                })
        };
        Ok(Self::Other(OtherSignedNotification {
            tbs: Encoded::from_der(tbs.raw)?,
            signature: sig.value.to_vec(),
            euicc_certificate: cert(0)?,
            eum_certificate: cert(1)?,
        }))
    }
}

code_enum!(RetrieveNotificationsListError { NoResultAvailable = 1, UndefinedError = 127 });

/// `RetrieveNotificationsListResponse` (BF2B CHOICE { [0] SEQUENCE OF PendingNotification,
/// [1] error }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrieveNotificationsListResponse {
    Ok(Vec<PendingNotification>),
    Error(RetrieveNotificationsListError),
}

impl Der for RetrieveNotificationsListResponse {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ok(list) => cons(ctx_c(0), &list.iter().map(Der::to_der).collect::<Vec<_>>()),
            Self::Error(e) => int_tlv(ctx(1), e.code()),
        };
        tlv::encode(TAG_RETRIEVE_NOTIFICATIONS_LIST, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "RetrieveNotificationsListResponse";
        let t = outer(bytes, TAG_RETRIEVE_NOTIFICATIONS_LIST, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        if let Some(list) = f.opt(ctx_c(0)) {
            return children(&list, WHAT)?
                .iter()
                .map(|n| PendingNotification::from_der(n.raw))
                .collect::<Result<Vec<_>>>()
                .map(Self::Ok);
        }
        Ok(Self::Error(RetrieveNotificationsListError::from_code(
            decode_uint(&f.req(ctx(1))?, WHAT)?,
        )))
    }
}

/// `NotificationSentRequest` (BF30 { [0] seqNumber }), ES10b.RemoveNotificationFromList.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationSentRequest {
    pub seq_number: u64,
}

impl Der for NotificationSentRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(TAG_NOTIFICATION_SENT, &[int_tlv(ctx(0), self.seq_number)])
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "NotificationSentRequest";
        let t = outer(bytes, TAG_NOTIFICATION_SENT, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            seq_number: decode_uint(&f.req(ctx(0))?, WHAT)?,
        })
    }
}

code_enum!(NotificationSentResult { Ok = 0, NothingToDelete = 1, UndefinedError = 127 });
result_response!(
    /// `NotificationSentResponse` (BF30).
    NotificationSentResponse,
    TAG_NOTIFICATION_SENT,
    NotificationSentResult
);

// ---------------------------------------------------------------------------------------
// GetRAT (§5.7.22), LoadCRL (§5.7.12)

empty_request!(
    /// `GetRatRequest` (BF43).
    GetRatRequest,
    TAG_GET_RAT
);

/// `ProfilePolicyAuthorisationRule ::= SEQUENCE { [0] pprIds, [1] allowedOperators,
/// [2] pprFlags }`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProfilePolicyAuthorisationRule {
    pub ppr_ids: PprIds,
    pub allowed_operators: Vec<OperatorId>,
    /// pprFlags bit 0: consentRequired.
    pub consent_required: bool,
}

/// `GetRatResponse` (BF43 { [0] rat SEQUENCE OF ProfilePolicyAuthorisationRule }).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetRatResponse {
    pub rat: Vec<ProfilePolicyAuthorisationRule>,
}

impl Der for GetRatResponse {
    fn to_der(&self) -> Vec<u8> {
        let rules: Vec<Vec<u8>> = self
            .rat
            .iter()
            .map(|r| {
                let ops: Vec<Vec<u8>> = r
                    .allowed_operators
                    .iter()
                    .map(|o| tlv::encode(TAG_SEQUENCE, &o.value()))
                    .collect();
                cons(
                    TAG_SEQUENCE,
                    &[
                        tlv::encode(ctx(0), &r.ppr_ids.encode()),
                        cons(ctx_c(1), &ops),
                        tlv::encode(ctx(2), &encode_bits(&[r.consent_required])),
                    ],
                )
            })
            .collect();
        cons(TAG_GET_RAT, &[cons(ctx_c(0), &rules)])
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "GetRatResponse";
        let t = outer(bytes, TAG_GET_RAT, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let rat = seq_of(&f.req(ctx_c(0))?, TAG_SEQUENCE, WHAT)?
            .iter()
            .map(|r| {
                let mut rf = Fields::of(r, WHAT)?;
                let ppr_ids = PprIds::decode(&rf.req(ctx(0))?, WHAT)?;
                let allowed_operators = seq_of(&rf.req(ctx_c(1))?, TAG_SEQUENCE, WHAT)?
                    .iter()
                    .map(|o| OperatorId::from_tlv(o, WHAT))
                    .collect::<Result<Vec<_>>>()?;
                let flags = decode_bits(&rf.req(ctx(2))?, WHAT)?;
                Ok(ProfilePolicyAuthorisationRule {
                    ppr_ids,
                    allowed_operators,
                    consent_required: flags.first().copied().unwrap_or(false),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { rat })
    }
}

/// `LoadCRLRequest` (BF35 { [0] crl CertificateList }); the CRL kept as the content of `A0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadCrlRequest {
    pub crl: Vec<u8>,
}

impl Der for LoadCrlRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(TAG_LOAD_CRL, &[tlv::encode(ctx_c(0), &self.crl)])
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "LoadCRLRequest";
        let t = outer(bytes, TAG_LOAD_CRL, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            crl: f.req(ctx_c(0))?.value.to_vec(),
        })
    }
}

code_enum!(
    /// `LoadCRLResponseError`.
    LoadCrlError {
        InvalidSignature = 1,
        InvalidCrlFormat = 2,
        NotEnoughMemorySpace = 3,
        VerificationKeyNotFound = 4,
        UndefinedError = 127,
    }
);

/// `LoadCRLResponse` (BF35 CHOICE { [0] ok { [0] missingParts OPTIONAL }, [1] error }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadCrlResponse {
    Ok { missing_parts: Option<Vec<u64>> },
    Error(LoadCrlError),
}

impl Der for LoadCrlResponse {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ok { missing_parts } => {
                let parts = missing_parts
                    .as_ref()
                    .map(|p| {
                        let items: Vec<Vec<u8>> = p
                            .iter()
                            .map(|n| cons(TAG_SEQUENCE, &[int_tlv(ctx(0), *n)]))
                            .collect();
                        cons(ctx_c(0), &items)
                    })
                    .unwrap_or_default();
                tlv::encode(ctx_c(0), &parts)
            }
            Self::Error(e) => int_tlv(ctx(1), e.code()),
        };
        tlv::encode(TAG_LOAD_CRL, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "LoadCRLResponse";
        let t = outer(bytes, TAG_LOAD_CRL, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        if let Some(ok) = f.opt(ctx_c(0)) {
            let mut o = Fields::of(&ok, WHAT)?;
            let missing_parts = o
                .opt(ctx_c(0))
                .map(|p| {
                    seq_of(&p, TAG_SEQUENCE, WHAT)?
                        .iter()
                        .map(|s| {
                            let mut sf = Fields::of(s, WHAT)?;
                            decode_uint(&sf.req(ctx(0))?, WHAT)
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?;
            return Ok(Self::Ok { missing_parts });
        }
        Ok(Self::Error(LoadCrlError::from_code(decode_uint(
            &f.req(ctx(1))?,
            WHAT,
        )?)))
    }
}

// ---------------------------------------------------------------------------------------
// ES10c (§5.7.15–§5.7.21)

/// `searchCriteria [0] CHOICE { isdpAid 4F, iccid 5A, profileClass 95 }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileSearch {
    IsdpAid(Vec<u8>),
    Iccid(Iccid),
    ProfileClass(ProfileClass),
}

/// `ProfileInfoListRequest` (BF2D { [0] searchCriteria OPTIONAL, tagList 5C OPTIONAL }).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileInfoListRequest {
    pub search: Option<ProfileSearch>,
    pub tag_list: Option<Vec<u8>>,
}

impl Der for ProfileInfoListRequest {
    fn to_der(&self) -> Vec<u8> {
        let search = match &self.search {
            None => Vec::new(),
            Some(ProfileSearch::IsdpAid(a)) => cons(ctx_c(0), &[tlv::encode(TAG_ISDP_AID, a)]),
            Some(ProfileSearch::Iccid(i)) => cons(ctx_c(0), &[i.to_tlv()]),
            Some(ProfileSearch::ProfileClass(c)) => {
                cons(ctx_c(0), &[int_tlv(TAG_PROFILE_CLASS, c.code())])
            }
        };
        cons(
            TAG_PROFILE_INFO_LIST,
            &[search, opt_tlv(TAG_TAG_LIST, self.tag_list.as_deref())],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ProfileInfoListRequest";
        let t = outer(bytes, TAG_PROFILE_INFO_LIST, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let search = match f.opt(ctx_c(0)) {
            None => None,
            Some(c) => {
                let mut cf = Fields::of(&c, WHAT)?;
                let s = cf.next().ok_or(Es10Error::Missing {
                    what: WHAT,
                    tag: TAG_ICCID,
                })?;
                Some(match s.tag {
                    TAG_ISDP_AID => ProfileSearch::IsdpAid(s.value.to_vec()),
                    TAG_ICCID => ProfileSearch::Iccid(Iccid::from_tlv(&s, WHAT)?),
                    TAG_PROFILE_CLASS => {
                        ProfileSearch::ProfileClass(ProfileClass::from_code(decode_uint(&s, WHAT)?))
                    }
                    other => {
                        return Err(Es10Error::UnexpectedTag {
                            what: WHAT,
                            expected: TAG_ICCID,
                            found: other,
                        })
                    }
                })
            }
        };
        Ok(Self {
            search,
            tag_list: f.opt(TAG_TAG_LIST).map(|t| t.value.to_vec()),
        })
    }
}

/// `ProfileInfo` (E3): every field optional; which are present depends on the tag list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileInfo {
    pub iccid: Option<Iccid>,
    pub isdp_aid: Option<Vec<u8>>,
    pub state: Option<ProfileState>,
    pub nickname: Option<String>,
    pub service_provider_name: Option<String>,
    pub profile_name: Option<String>,
    pub icon_type: Option<IconType>,
    pub icon: Option<Vec<u8>>,
    pub profile_class: Option<ProfileClass>,
    pub notification_configuration: Option<Vec<NotificationConfiguration>>,
    pub profile_owner: Option<OperatorId>,
    /// `dpProprietaryData` content bytes.
    pub dp_proprietary_data: Option<Vec<u8>>,
    pub ppr: Option<PprIds>,
}

impl ProfileInfo {
    fn value(&self) -> Vec<u8> {
        [
            self.iccid.map(Iccid::to_tlv).unwrap_or_default(),
            opt_tlv(TAG_ISDP_AID, self.isdp_aid.as_deref()),
            self.state
                .map(|s| int_tlv(TAG_PROFILE_STATE, s.code()))
                .unwrap_or_default(),
            opt_tlv(TAG_NICKNAME, self.nickname.as_deref().map(str::as_bytes)),
            opt_tlv(
                TAG_SERVICE_PROVIDER_NAME,
                self.service_provider_name.as_deref().map(str::as_bytes),
            ),
            opt_tlv(
                TAG_PROFILE_NAME,
                self.profile_name.as_deref().map(str::as_bytes),
            ),
            self.icon_type
                .map(|i| int_tlv(TAG_ICON_TYPE, i.code()))
                .unwrap_or_default(),
            opt_tlv(TAG_ICON, self.icon.as_deref()),
            self.profile_class
                .map(|c| int_tlv(TAG_PROFILE_CLASS, c.code()))
                .unwrap_or_default(),
            self.notification_configuration
                .as_deref()
                .map(encode_notification_configuration)
                .unwrap_or_default(),
            self.profile_owner
                .as_ref()
                .map(|o| tlv::encode(TAG_PROFILE_OWNER, &o.value()))
                .unwrap_or_default(),
            opt_tlv(TAG_DP_PROPRIETARY_DATA, self.dp_proprietary_data.as_deref()),
            self.ppr
                .map(|p| tlv::encode(TAG_PPR_IDS, &p.encode()))
                .unwrap_or_default(),
        ]
        .concat()
    }

    fn from_tlv(t: &Tlv<'_>) -> Result<Self> {
        const WHAT: &str = "ProfileInfo";
        let mut f = Fields::of(t, WHAT)?;
        let str_of = |t: Option<Tlv<'_>>| t.map(|t| utf8(&t, WHAT)).transpose();
        Ok(Self {
            iccid: f
                .opt(TAG_ICCID)
                .map(|t| Iccid::from_tlv(&t, WHAT))
                .transpose()?,
            isdp_aid: f.opt(TAG_ISDP_AID).map(|t| t.value.to_vec()),
            state: f
                .opt(TAG_PROFILE_STATE)
                .map(|t| decode_uint(&t, WHAT).map(ProfileState::from_code))
                .transpose()?,
            nickname: str_of(f.opt(TAG_NICKNAME))?,
            service_provider_name: str_of(f.opt(TAG_SERVICE_PROVIDER_NAME))?,
            profile_name: str_of(f.opt(TAG_PROFILE_NAME))?,
            icon_type: f
                .opt(TAG_ICON_TYPE)
                .map(|t| decode_uint(&t, WHAT).map(IconType::from_code))
                .transpose()?,
            icon: f.opt(TAG_ICON).map(|t| t.value.to_vec()),
            profile_class: f
                .opt(TAG_PROFILE_CLASS)
                .map(|t| decode_uint(&t, WHAT).map(ProfileClass::from_code))
                .transpose()?,
            notification_configuration: f
                .opt(TAG_NOTIFICATION_CONFIGURATION)
                .map(|t| decode_notification_configuration(&t, WHAT))
                .transpose()?,
            profile_owner: f
                .opt(TAG_PROFILE_OWNER)
                .map(|t| OperatorId::from_tlv(&t, WHAT))
                .transpose()?,
            dp_proprietary_data: f.opt(TAG_DP_PROPRIETARY_DATA).map(|t| t.value.to_vec()),
            ppr: f
                .opt(TAG_PPR_IDS)
                .map(|t| PprIds::decode(&t, WHAT))
                .transpose()?,
        })
    }
}

code_enum!(ProfileInfoListError { IncorrectInputValues = 1, UndefinedError = 127 });

/// `ProfileInfoListResponse` (BF2D CHOICE { [0] SEQUENCE OF ProfileInfo, [1] error }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileInfoListResponse {
    Ok(Vec<ProfileInfo>),
    Error(ProfileInfoListError),
}

impl Der for ProfileInfoListResponse {
    fn to_der(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ok(list) => cons(
                ctx_c(0),
                &list
                    .iter()
                    .map(|p| tlv::encode(TAG_PROFILE_INFO, &p.value()))
                    .collect::<Vec<_>>(),
            ),
            Self::Error(e) => int_tlv(ctx(1), e.code()),
        };
        tlv::encode(TAG_PROFILE_INFO_LIST, &inner)
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ProfileInfoListResponse";
        let t = outer(bytes, TAG_PROFILE_INFO_LIST, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        if let Some(list) = f.opt(ctx_c(0)) {
            return seq_of(&list, TAG_PROFILE_INFO, WHAT)?
                .iter()
                .map(ProfileInfo::from_tlv)
                .collect::<Result<Vec<_>>>()
                .map(Self::Ok);
        }
        Ok(Self::Error(ProfileInfoListError::from_code(decode_uint(
            &f.req(ctx(1))?,
            WHAT,
        )?)))
    }
}

/// `EnableProfileRequest` / `DisableProfileRequest` (BF31/BF32 { [0] profileIdentifier,
/// [1] refreshFlag }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSwitchRequest<const TAG: u32> {
    pub id: ProfileIdentifier,
    pub refresh: bool,
}

pub type EnableProfileRequest = ProfileSwitchRequest<TAG_ENABLE_PROFILE>;
pub type DisableProfileRequest = ProfileSwitchRequest<TAG_DISABLE_PROFILE>;

impl<const TAG: u32> Der for ProfileSwitchRequest<TAG> {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG,
            &[
                cons(ctx_c(0), &[self.id.to_tlv()]),
                bool_tlv(ctx(1), self.refresh),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "Enable/DisableProfileRequest";
        let t = outer(bytes, TAG, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let idc = f.req(ctx_c(0))?;
        let mut idf = Fields::of(&idc, WHAT)?;
        let id = idf.next().ok_or(Es10Error::Missing {
            what: WHAT,
            tag: TAG_ICCID,
        })?;
        Ok(Self {
            id: ProfileIdentifier::from_tlv(&id, WHAT)?,
            refresh: boolean(&f.req(ctx(1))?, WHAT)?,
        })
    }
}

code_enum!(
    /// `EnableProfileResponse.enableResult` (v2.2+ adds catBusy(5)).
    EnableProfileResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInDisabledState = 2,
        DisallowedByPolicy = 3,
        WrongProfileReenabling = 4,
        CatBusy = 5,
        UndefinedError = 127,
    }
);
result_response!(
    /// `EnableProfileResponse` (BF31).
    EnableProfileResponse,
    TAG_ENABLE_PROFILE,
    EnableProfileResult
);

code_enum!(
    /// `DisableProfileResponse.disableResult`.
    DisableProfileResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInEnabledState = 2,
        DisallowedByPolicy = 3,
        CatBusy = 5,
        UndefinedError = 127,
    }
);
result_response!(
    /// `DisableProfileResponse` (BF32).
    DisableProfileResponse,
    TAG_DISABLE_PROFILE,
    DisableProfileResult
);

/// `DeleteProfileRequest` (BF33 CHOICE { isdpAid 4F, iccid 5A }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteProfileRequest {
    pub id: ProfileIdentifier,
}

impl Der for DeleteProfileRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(TAG_DELETE_PROFILE, &[self.id.to_tlv()])
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "DeleteProfileRequest";
        let t = outer(bytes, TAG_DELETE_PROFILE, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let id = f.next().ok_or(Es10Error::Missing {
            what: WHAT,
            tag: TAG_ICCID,
        })?;
        Ok(Self {
            id: ProfileIdentifier::from_tlv(&id, WHAT)?,
        })
    }
}

code_enum!(
    /// `DeleteProfileResponse.deleteResult`.
    DeleteProfileResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInDisabledState = 2,
        DisallowedByPolicy = 3,
        UndefinedError = 127,
    }
);
result_response!(
    /// `DeleteProfileResponse` (BF33).
    DeleteProfileResponse,
    TAG_DELETE_PROFILE,
    DeleteProfileResult
);

/// `EuiccMemoryResetRequest` (BF34 { [2] resetOptions BIT STRING }).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EuiccMemoryResetRequest {
    pub delete_operational_profiles: bool,
    pub delete_field_loaded_test_profiles: bool,
    pub reset_default_smdp_address: bool,
}

impl Der for EuiccMemoryResetRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_EUICC_MEMORY_RESET,
            &[tlv::encode(
                ctx(2),
                &encode_bits(&[
                    self.delete_operational_profiles,
                    self.delete_field_loaded_test_profiles,
                    self.reset_default_smdp_address,
                ]),
            )],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "EuiccMemoryResetRequest";
        let t = outer(bytes, TAG_EUICC_MEMORY_RESET, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        let b = decode_bits(&f.req(ctx(2))?, WHAT)?;
        let at = |i: usize| b.get(i).copied().unwrap_or(false);
        Ok(Self {
            delete_operational_profiles: at(0),
            delete_field_loaded_test_profiles: at(1),
            reset_default_smdp_address: at(2),
        })
    }
}

code_enum!(EuiccMemoryResetResult { Ok = 0, NothingToDelete = 1, UndefinedError = 127 });
result_response!(
    /// `EuiccMemoryResetResponse` (BF34).
    EuiccMemoryResetResponse,
    TAG_EUICC_MEMORY_RESET,
    EuiccMemoryResetResult
);

/// `GetEuiccDataRequest` (BF3E { tagList 5C }, the tag list being `5A`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetEuiccDataRequest {
    pub tag_list: Vec<u8>,
}

impl Default for GetEuiccDataRequest {
    fn default() -> Self {
        Self {
            tag_list: vec![0x5A],
        }
    }
}

impl Der for GetEuiccDataRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_GET_EUICC_DATA,
            &[tlv::encode(TAG_TAG_LIST, &self.tag_list)],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "GetEuiccDataRequest";
        let t = outer(bytes, TAG_GET_EUICC_DATA, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            tag_list: f.req(TAG_TAG_LIST)?.value.to_vec(),
        })
    }
}

/// `GetEuiccDataResponse` (BF3E { eidValue 5A }).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetEuiccDataResponse {
    pub eid: [u8; EID_LEN],
}

impl Der for GetEuiccDataResponse {
    fn to_der(&self) -> Vec<u8> {
        cons(TAG_GET_EUICC_DATA, &[tlv::encode(TAG_ICCID, &self.eid)])
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "GetEuiccDataResponse";
        let t = outer(bytes, TAG_GET_EUICC_DATA, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            eid: fixed(&f.req(TAG_ICCID)?, WHAT)?,
        })
    }
}

/// `SetNicknameRequest` (BF29 { iccid 5A, profileNickname [16] }).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNicknameRequest {
    pub iccid: Iccid,
    pub nickname: String,
}

impl Der for SetNicknameRequest {
    fn to_der(&self) -> Vec<u8> {
        cons(
            TAG_SET_NICKNAME,
            &[
                self.iccid.to_tlv(),
                tlv::encode(TAG_NICKNAME, self.nickname.as_bytes()),
            ],
        )
    }
    fn from_der(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "SetNicknameRequest";
        let t = outer(bytes, TAG_SET_NICKNAME, WHAT)?;
        let mut f = Fields::of(&t, WHAT)?;
        Ok(Self {
            iccid: Iccid::from_tlv(&f.req(TAG_ICCID)?, WHAT)?,
            nickname: utf8(&f.req(TAG_NICKNAME)?, WHAT)?,
        })
    }
}

code_enum!(SetNicknameResult { Ok = 0, IccidNotFound = 1, UndefinedError = 127 });
result_response!(
    /// `SetNicknameResponse` (BF29).
    SetNicknameResponse,
    TAG_SET_NICKNAME,
    SetNicknameResult
);

#[cfg(test)]
#[path = "es10_tests.rs"]
mod tests;
