//! ETSI TS 102 225 (V12) secured packets — "SCP80" — with the SMS specifics of 3GPP TS 31.115
//! §4: the command packet (§5.1.1), its security parameter indicator (SPI), KIc (§5.1.2), KID
//! (§5.1.3), TAR, counter and padding counter, and the response packet or Proof of Receipt
//! (PoR, §5.2) with its status codes (§5.2.1 Table 5).
//!
//! Both sides use this module: the card opens command packets and seals PoRs
//! ([`crate::ota::sms_pp`]); a sender seals command packets and opens PoRs (the harness's
//! `simlab ota send`). The coverage of the checksums is the one real cards use (checked against
//! real-card PoRs in `vectors/ota/`):
//!
//! - command packet: CC/RC over CPL, CHL, SPI, KIc, KID, TAR, CNTR, PCNTR and the secured data
//!   with its ciphering padding (TS 102 225 §5.1.1; the SMS user data header is not covered);
//! - response packet: CC/RC over the user data header (`02 71 00`, TS 31.115 §4.4), RPL, RHL,
//!   TAR, CNTR, PCNTR, status and the additional response data with its padding.
//!
//! Ciphering is CBC with a zero initial chaining value: triple DES outer-CBC with two or three
//! keys, or AES with a 16, 24 or 32-byte key (§5.1.2). Cryptographic checksums are triple DES
//! CBC-MAC (zero padding to the block size, the last block) and AES-CMAC (NIST SP 800-38B, the
//! leftmost 8 bytes) (§5.1.3.1); redundancy checks are CRC-16 and CRC-32 of ISO/IEC 13239
//! (§5.1.3.2). Single DES, DES-ECB and digital signatures are not supported (refused with
//! "unidentified security error").

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use cmac::{Cmac, Mac};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Toolkit Application Reference (TS 101 220 §6): three bytes addressing an application.
pub type Tar = [u8; 3];

/// Largest counter value (CNTR is five bytes, §5.1.1).
pub const COUNTER_MAX: u64 = (1 << 40) - 1;

/// Length of the fixed part of the command header after CHL: SPI 2, KIc 1, KID 1, TAR 3, CNTR
/// 5, PCNTR 1 (§5.1.1).
const COMMAND_HEADER_FIXED: usize = 13;
/// Length of the fixed part of the response header after RHL: TAR 3, CNTR 5, PCNTR 1, status 1.
const RESPONSE_HEADER_FIXED: usize = 10;
/// The SMS user data header of a response packet: UDHL 2, IEI '71' (response packet
/// identifier), length 0 (TS 31.115 §4.4).
pub const RESPONSE_UDH: [u8; 3] = [0x02, 0x71, 0x00];
/// Length of a cryptographic checksum produced here (§5.1.3.1: 8 bytes).
pub const CC_LEN: usize = 8;

// ---------------------------------------------------------------------------------------
// SPI (§5.1.1)

/// Counter handling, SPI first byte b5-b4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CounterMode {
    /// '00': no counter available.
    None,
    /// '01': counter available, no replay or sequence checking.
    Available,
    /// '10': process only if the counter is higher than the receiver's.
    Higher,
    /// '11': process only if the counter is exactly one higher than the receiver's.
    OneHigher,
}

/// Integrity protection, SPI first byte b2-b1 (and second byte b4-b3 for the PoR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Checksum {
    /// '00': no RC, CC or DS.
    None,
    /// '01': redundancy check.
    Rc,
    /// '10': cryptographic checksum.
    Cc,
    /// '11': digital signature.
    Ds,
}

/// Whether a PoR is wanted, SPI second byte b2-b1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PorRequest {
    /// '00': no PoR.
    None,
    /// '01': PoR required.
    Always,
    /// '10': PoR only when an error occurred.
    OnError,
}

/// The security parameter indicator of a command packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spi {
    pub counter: CounterMode,
    pub ciphering: bool,
    pub checksum: Checksum,
    pub por: PorRequest,
    pub por_checksum: Checksum,
    pub por_ciphered: bool,
    /// Second byte b6: PoR sent as SMS-SUBMIT instead of in the SMS-DELIVER-REPORT
    /// (TS 31.115 §4.2).
    pub por_via_submit: bool,
}

/// Why two SPI bytes cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SpiError {
    #[error(
        "SPI second byte b2-b1 '11' is reserved (expected no PoR, PoR required or PoR on error)"
    )]
    ReservedPorRequest,
}

impl Spi {
    /// Decodes the two SPI bytes; the reserved bits (first byte b8-b6, second byte b8-b7)
    /// are ignored.
    pub fn decode(bytes: [u8; 2]) -> Result<Self, SpiError> {
        let [first, second] = bytes;
        let checksum = |b: u8| match b & 0x03 {
            0 => Checksum::None,
            1 => Checksum::Rc,
            2 => Checksum::Cc,
            _ => Checksum::Ds,
        };
        let counter = match (first >> 3) & 0x03 {
            0 => CounterMode::None,
            1 => CounterMode::Available,
            2 => CounterMode::Higher,
            _ => CounterMode::OneHigher,
        };
        let por = match second & 0x03 {
            0 => PorRequest::None,
            1 => PorRequest::Always,
            2 => PorRequest::OnError,
            _ => return Err(SpiError::ReservedPorRequest),
        };
        Ok(Self {
            counter,
            ciphering: first & 0x04 != 0,
            checksum: checksum(first),
            por,
            por_checksum: checksum(second >> 2),
            por_ciphered: second & 0x10 != 0,
            por_via_submit: second & 0x20 != 0,
        })
    }

    pub fn encode(&self) -> [u8; 2] {
        let checksum = |c: Checksum| match c {
            Checksum::None => 0u8,
            Checksum::Rc => 1,
            Checksum::Cc => 2,
            Checksum::Ds => 3,
        };
        let counter = match self.counter {
            CounterMode::None => 0u8,
            CounterMode::Available => 1,
            CounterMode::Higher => 2,
            CounterMode::OneHigher => 3,
        };
        let por = match self.por {
            PorRequest::None => 0u8,
            PorRequest::Always => 1,
            PorRequest::OnError => 2,
        };
        let first = counter << 3 | u8::from(self.ciphering) << 2 | checksum(self.checksum);
        let second = u8::from(self.por_via_submit) << 5
            | u8::from(self.por_ciphered) << 4
            | checksum(self.por_checksum) << 2
            | por;
        [first, second]
    }

    /// Whether a PoR goes back for a packet that ended with `status`.
    pub fn wants_por(&self, status: PorStatus) -> bool {
        match self.por {
            PorRequest::None => false,
            PorRequest::Always => true,
            PorRequest::OnError => status != PorStatus::Ok,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Algorithms and keys (§5.1.2, §5.1.3)

/// A ciphering algorithm of KIc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CipherAlgorithm {
    /// Triple DES outer-CBC with two keys (K1 K2 K1), KIc b4-b1 '0101'.
    #[serde(rename = "3des-cbc2")]
    TripleDesCbc2,
    /// Triple DES outer-CBC with three keys, KIc b4-b1 '1001'.
    #[serde(rename = "3des-cbc3")]
    TripleDesCbc3,
    /// AES in CBC mode (key length from the key), KIc b4-b1 '0010'.
    AesCbc,
}

impl CipherAlgorithm {
    /// KIc b4-b1.
    pub fn code(self) -> u8 {
        match self {
            Self::TripleDesCbc2 => 0x05,
            Self::TripleDesCbc3 => 0x09,
            Self::AesCbc => 0x02,
        }
    }

    pub fn block_len(self) -> usize {
        match self {
            Self::TripleDesCbc2 | Self::TripleDesCbc3 => 8,
            Self::AesCbc => 16,
        }
    }

    fn key_ok(self, key: &[u8]) -> bool {
        match self {
            Self::TripleDesCbc2 => key.len() == 16,
            Self::TripleDesCbc3 => key.len() == 24,
            Self::AesCbc => matches!(key.len(), 16 | 24 | 32),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::TripleDesCbc2 => "3des-cbc2",
            Self::TripleDesCbc3 => "3des-cbc3",
            Self::AesCbc => "aes-cbc",
        }
    }
}

/// A cryptographic checksum algorithm of KID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MacAlgorithm {
    /// Triple DES outer-CBC MAC with two keys, KID b4-b1 '0101'.
    #[serde(rename = "3des-cbc-mac2")]
    TripleDesCbcMac2,
    /// Triple DES outer-CBC MAC with three keys, KID b4-b1 '1001'.
    #[serde(rename = "3des-cbc-mac3")]
    TripleDesCbcMac3,
    /// AES-CMAC, KID b4-b1 '0010'.
    AesCmac,
}

impl MacAlgorithm {
    /// KID b4-b1.
    pub fn code(self) -> u8 {
        match self {
            Self::TripleDesCbcMac2 => 0x05,
            Self::TripleDesCbcMac3 => 0x09,
            Self::AesCmac => 0x02,
        }
    }

    fn key_ok(self, key: &[u8]) -> bool {
        match self {
            Self::TripleDesCbcMac2 => key.len() == 16,
            Self::TripleDesCbcMac3 => key.len() == 24,
            Self::AesCmac => matches!(key.len(), 16 | 24 | 32),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::TripleDesCbcMac2 => "3des-cbc-mac2",
            Self::TripleDesCbcMac3 => "3des-cbc-mac3",
            Self::AesCmac => "aes-cmac",
        }
    }
}

/// A redundancy check algorithm of KID (§5.1.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RcAlgorithm {
    /// CRC-16 of ISO/IEC 13239, KID b4-b1 '0001'.
    Crc16,
    /// CRC-32 of ISO/IEC 13239, KID b4-b1 '0101'.
    Crc32,
}

impl RcAlgorithm {
    pub fn code(self) -> u8 {
        match self {
            Self::Crc16 => 0x01,
            Self::Crc32 => 0x05,
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Crc16 => 2,
            Self::Crc32 => 4,
        }
    }

    /// The CRC a KID names. A KID naming a CC algorithm (a PoR with RC for a command with
    /// CC) gets CRC-32.
    fn from_kid(kid: u8) -> Self {
        match kid & 0x0F {
            0x01 => Self::Crc16,
            _ => Self::Crc32,
        }
    }
}

/// One OTA keyset: the ciphering key (KIc) and the checksum key (KID), each with its key
/// index (KIc/KID b8-b5) and algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyset {
    pub kic_index: u8,
    pub kic_algorithm: CipherAlgorithm,
    #[serde(with = "hex_vec")]
    pub kic: Vec<u8>,
    pub kid_index: u8,
    pub kid_algorithm: MacAlgorithm,
    #[serde(with = "hex_vec")]
    pub kid: Vec<u8>,
}

/// What is wrong with a keyset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeysetError {
    #[error("key index {0} is outside 1..=15 (KIc/KID b8-b5)")]
    Index(u8),
    #[error("{which} is {got} bytes; {algorithm} needs {want}")]
    KeyLength {
        which: &'static str,
        algorithm: &'static str,
        got: usize,
        want: &'static str,
    },
}

impl Keyset {
    /// Checks indexes and key lengths.
    pub fn check(&self) -> Result<(), KeysetError> {
        for i in [self.kic_index, self.kid_index] {
            if !(1..=15).contains(&i) {
                return Err(KeysetError::Index(i));
            }
        }
        let want = |three_des: bool| {
            if three_des {
                "16 (2 keys) or 24 (3 keys)"
            } else {
                "16, 24 or 32"
            }
        };
        if !self.kic_algorithm.key_ok(&self.kic) {
            return Err(KeysetError::KeyLength {
                which: "kic",
                algorithm: self.kic_algorithm.name(),
                got: self.kic.len(),
                want: want(self.kic_algorithm != CipherAlgorithm::AesCbc),
            });
        }
        if !self.kid_algorithm.key_ok(&self.kid) {
            return Err(KeysetError::KeyLength {
                which: "kid",
                algorithm: self.kid_algorithm.name(),
                got: self.kid.len(),
                want: want(self.kid_algorithm != MacAlgorithm::AesCmac),
            });
        }
        Ok(())
    }

    /// The KIc byte naming this keyset's ciphering key.
    pub fn kic_byte(&self) -> u8 {
        self.kic_index << 4 | self.kic_algorithm.code()
    }

    /// The KID byte naming this keyset's checksum key.
    pub fn kid_byte(&self) -> u8 {
        self.kid_index << 4 | self.kid_algorithm.code()
    }
}

/// Key indexes of a KIc or KID byte (b8-b5).
pub fn key_index(byte: u8) -> u8 {
    byte >> 4
}

/// A failure of the cryptographic layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("the data to cipher is not a multiple of the {0}-byte block")]
    NotBlockAligned(usize),
    #[error("the key does not fit the algorithm")]
    BadKey,
}

/// CBC with a zero ICV over `data` (a whole number of blocks), in place.
pub fn cipher(
    alg: CipherAlgorithm,
    key: &[u8],
    data: &mut [u8],
    decrypt: bool,
) -> Result<(), CryptoError> {
    let block = alg.block_len();
    if data.len() % block != 0 {
        return Err(CryptoError::NotBlockAligned(block));
    }
    if !alg.key_ok(key) {
        return Err(CryptoError::BadKey);
    }
    match alg {
        CipherAlgorithm::TripleDesCbc2 => cbc_blocks::<des::TdesEde2>(key, data, decrypt),
        CipherAlgorithm::TripleDesCbc3 => cbc_blocks::<des::TdesEde3>(key, data, decrypt),
        CipherAlgorithm::AesCbc => match key.len() {
            16 => cbc_blocks::<aes::Aes128>(key, data, decrypt),
            24 => cbc_blocks::<aes::Aes192>(key, data, decrypt),
            _ => cbc_blocks::<aes::Aes256>(key, data, decrypt),
        },
    }
}

fn cbc_blocks<C>(key: &[u8], data: &mut [u8], decrypt: bool) -> Result<(), CryptoError>
where
    C: aes::cipher::BlockCipher + aes::cipher::BlockEncrypt + aes::cipher::BlockDecrypt + KeyInit,
{
    use aes::cipher::block_padding::NoPadding;
    let iv = vec![0u8; C::block_size()];
    if decrypt {
        cbc::Decryptor::<C>::new_from_slices(key, &iv)
            .map_err(|_| CryptoError::BadKey)?
            .decrypt_padded_mut::<NoPadding>(data)
            .map_err(|_| CryptoError::NotBlockAligned(C::block_size()))?;
    } else {
        let len = data.len();
        cbc::Encryptor::<C>::new_from_slices(key, &iv)
            .map_err(|_| CryptoError::BadKey)?
            .encrypt_padded_mut::<NoPadding>(data, len)
            .map_err(|_| CryptoError::NotBlockAligned(C::block_size()))?;
    }
    Ok(())
}

/// The cryptographic checksum of `input` (§5.1.3.1), [`CC_LEN`] bytes.
pub fn mac(alg: MacAlgorithm, key: &[u8], input: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if !alg.key_ok(key) {
        return Err(CryptoError::BadKey);
    }
    let full = match alg {
        MacAlgorithm::TripleDesCbcMac2 | MacAlgorithm::TripleDesCbcMac3 => {
            // Zero padding to the block, then the last block of the CBC encryption.
            let mut padded = input.to_vec();
            padded.resize(input.len().div_ceil(8) * 8, 0);
            let cipher_alg = if alg == MacAlgorithm::TripleDesCbcMac2 {
                CipherAlgorithm::TripleDesCbc2
            } else {
                CipherAlgorithm::TripleDesCbc3
            };
            cipher(cipher_alg, key, &mut padded, false)?;
            padded.split_off(padded.len().saturating_sub(8))
        }
        MacAlgorithm::AesCmac => match key.len() {
            16 => cmac::<aes::Aes128>(key, input)?,
            24 => cmac::<aes::Aes192>(key, input)?,
            _ => cmac::<aes::Aes256>(key, input)?,
        },
    };
    Ok(full.into_iter().take(CC_LEN).collect())
}

fn cmac<C>(key: &[u8], input: &[u8]) -> Result<Vec<u8>, CryptoError>
where
    C: aes::cipher::BlockCipher
        + aes::cipher::BlockEncrypt
        + Clone
        + KeyInit
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    let mut m = <Cmac<C> as KeyInit>::new_from_slice(key).map_err(|_| CryptoError::BadKey)?;
    m.update(input);
    Ok(m.finalize().into_bytes().to_vec())
}

/// The redundancy check of `input` (§5.1.3.2), big-endian.
pub fn redundancy_check(alg: RcAlgorithm, input: &[u8]) -> Vec<u8> {
    match alg {
        RcAlgorithm::Crc16 => crc::Crc::<u16>::new(&crc::CRC_16_IBM_SDLC)
            .checksum(input)
            .to_be_bytes()
            .to_vec(),
        RcAlgorithm::Crc32 => crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC)
            .checksum(input)
            .to_be_bytes()
            .to_vec(),
    }
}

/// The keys a packet is sealed or opened with, resolved from KIc/KID.
#[derive(Debug, Clone, Copy)]
pub struct PacketKeys<'a> {
    /// Ciphering algorithm and key (needed when the SPI asks for ciphering).
    pub cipher: Option<(CipherAlgorithm, &'a [u8])>,
    /// Checksum algorithm and key (needed when the SPI asks for a CC).
    pub mac: Option<(MacAlgorithm, &'a [u8])>,
}

impl<'a> PacketKeys<'a> {
    /// Both keys of `keyset`.
    pub fn of(keyset: &'a Keyset) -> Self {
        Self {
            cipher: Some((keyset.kic_algorithm, &keyset.kic)),
            mac: Some((keyset.kid_algorithm, &keyset.kid)),
        }
    }

    /// No keys: for a PoR sent unsecured.
    pub fn none() -> Self {
        Self {
            cipher: None,
            mac: None,
        }
    }
}

/// How a checksum is computed: its kind and, for a CC, the key.
fn checksum_len(kind: Checksum, kid: u8) -> Result<usize, PacketError> {
    match kind {
        Checksum::None => Ok(0),
        Checksum::Rc => Ok(RcAlgorithm::from_kid(kid).len()),
        Checksum::Cc => Ok(CC_LEN),
        Checksum::Ds => Err(PacketError::UnsupportedAlgorithm),
    }
}

fn compute_checksum(
    kind: Checksum,
    kid: u8,
    keys: &PacketKeys<'_>,
    input: &[u8],
) -> Result<Vec<u8>, PacketError> {
    match kind {
        Checksum::None => Ok(Vec::new()),
        Checksum::Rc => Ok(redundancy_check(RcAlgorithm::from_kid(kid), input)),
        Checksum::Cc => {
            let (alg, key) = keys.mac.ok_or(PacketError::MissingKey)?;
            mac(alg, key, input).map_err(|_| PacketError::MissingKey)
        }
        Checksum::Ds => Err(PacketError::UnsupportedAlgorithm),
    }
}

// ---------------------------------------------------------------------------------------
// Response status (§5.2.1 Table 5, TS 31.115 §4.4)

/// The status code of a response packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PorStatus {
    /// '00' PoR OK.
    Ok,
    /// '01' RC/CC/DS failed.
    RcCcDsFailed,
    /// '02' CNTR low.
    CounterLow,
    /// '03' CNTR high.
    CounterHigh,
    /// '04' CNTR blocked.
    CounterBlocked,
    /// '05' ciphering error.
    CipheringError,
    /// '06' unidentified security error: the command header could not be interpreted.
    UnidentifiedSecurityError,
    /// '07' insufficient memory to process the incoming message.
    InsufficientMemory,
    /// '08' more time needed.
    MoreTime,
    /// '09' TAR unknown.
    TarUnknown,
    /// '0A' insufficient security level.
    InsufficientSecurityLevel,
    /// '0B' the actual response data is sent by SMS-SUBMIT (TS 31.115).
    ResponseViaSmsSubmit,
    /// '0C' the actual response data is sent by USSD (TS 31.115).
    ResponseViaUssd,
    /// Any other (reserved) code, kept as it came.
    Other(u8),
}

impl PorStatus {
    pub fn code(self) -> u8 {
        use PorStatus::*;
        match self {
            Ok => 0x00,
            RcCcDsFailed => 0x01,
            CounterLow => 0x02,
            CounterHigh => 0x03,
            CounterBlocked => 0x04,
            CipheringError => 0x05,
            UnidentifiedSecurityError => 0x06,
            InsufficientMemory => 0x07,
            MoreTime => 0x08,
            TarUnknown => 0x09,
            InsufficientSecurityLevel => 0x0A,
            ResponseViaSmsSubmit => 0x0B,
            ResponseViaUssd => 0x0C,
            Other(c) => c,
        }
    }

    /// Total: `from_code(s.code()) == s` for every named status.
    pub fn from_code(code: u8) -> Self {
        use PorStatus::*;
        match code {
            0x00 => Ok,
            0x01 => RcCcDsFailed,
            0x02 => CounterLow,
            0x03 => CounterHigh,
            0x04 => CounterBlocked,
            0x05 => CipheringError,
            0x06 => UnidentifiedSecurityError,
            0x07 => InsufficientMemory,
            0x08 => MoreTime,
            0x09 => TarUnknown,
            0x0A => InsufficientSecurityLevel,
            0x0B => ResponseViaSmsSubmit,
            0x0C => ResponseViaUssd,
            c => Other(c),
        }
    }

    /// A kebab-case name for reports and JSON.
    pub fn name(self) -> &'static str {
        use PorStatus::*;
        match self {
            Ok => "por-ok",
            RcCcDsFailed => "rc-cc-ds-failed",
            CounterLow => "cntr-low",
            CounterHigh => "cntr-high",
            CounterBlocked => "cntr-blocked",
            CipheringError => "ciphering-error",
            UnidentifiedSecurityError => "unidentified-security-error",
            InsufficientMemory => "insufficient-memory",
            MoreTime => "more-time",
            TarUnknown => "tar-unknown",
            InsufficientSecurityLevel => "insufficient-security-level",
            ResponseViaSmsSubmit => "response-via-sms-submit",
            ResponseViaUssd => "response-via-ussd",
            Other(_) => "reserved",
        }
    }

    /// Whether the receiver established the packet's security (so it secures its PoR as the
    /// SPI asks): after a checksum, ciphering, key, TAR or security-level failure it did not,
    /// and its PoR goes back unciphered and without RC/CC/DS.
    pub fn security_established(self) -> bool {
        !matches!(
            self,
            PorStatus::RcCcDsFailed
                | PorStatus::CipheringError
                | PorStatus::UnidentifiedSecurityError
                | PorStatus::TarUnknown
                | PorStatus::InsufficientSecurityLevel
        )
    }
}

impl std::fmt::Display for PorStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X} ({})", self.code(), self.name())
    }
}

// ---------------------------------------------------------------------------------------
// Command packet (§5.1.1)

/// Why a packet cannot be sealed or opened. On the card each maps to a PoR status
/// ([`PacketError::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("packet shorter than its header or than its length fields say")]
    Truncated,
    #[error("CHL {0} is shorter than the 13 bytes of SPI..PCNTR")]
    HeaderLength(u8),
    #[error(transparent)]
    Spi(#[from] SpiError),
    #[error("the algorithm is not supported (single DES, DES-ECB, DS, or a reserved code)")]
    UnsupportedAlgorithm,
    #[error("no key for the ciphering or checksum the SPI asks for")]
    MissingKey,
    #[error("the ciphered part is not a whole number of cipher blocks")]
    NotBlockAligned,
    #[error("the padding counter exceeds the secured data")]
    Padding,
    #[error("the RC/CC/DS does not match")]
    ChecksumMismatch,
    #[error("the checksum length in the header ({got}) is not the algorithm's ({want})")]
    ChecksumLength { got: usize, want: usize },
    #[error("counter {0} exceeds five bytes")]
    CounterRange(u64),
    #[error("the packet would exceed 65535 bytes")]
    TooLong,
}

impl PacketError {
    /// The PoR status a receiver answers with.
    pub fn status(self) -> PorStatus {
        match self {
            PacketError::NotBlockAligned | PacketError::Padding => PorStatus::CipheringError,
            PacketError::ChecksumMismatch => PorStatus::RcCcDsFailed,
            _ => PorStatus::UnidentifiedSecurityError,
        }
    }
}

/// A command packet before sealing or after opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPacket {
    pub spi: Spi,
    /// KIc: key index (b8-b5) and algorithm (b4-b1).
    pub kic: u8,
    /// KID: key index (b8-b5) and algorithm (b4-b1).
    pub kid: u8,
    pub tar: Tar,
    pub counter: u64,
    /// The secured data (application data, padding removed).
    pub data: Vec<u8>,
}

/// The part of a command packet readable without keys: lengths, SPI, KIc, KID, TAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandHeader {
    pub cpl: u16,
    pub chl: u8,
    pub spi: Spi,
    pub kic: u8,
    pub kid: u8,
    pub tar: Tar,
}

/// Offset of CNTR in a command packet (after CPL 2, CHL 1, SPI 2, KIc 1, KID 1, TAR 3).
const COMMAND_CNTR_OFFSET: usize = 10;

impl CommandHeader {
    /// Reads the header of a command packet (CPL onwards) and checks its lengths.
    pub fn parse(packet: &[u8]) -> Result<Self, PacketError> {
        let head = packet
            .get(..COMMAND_CNTR_OFFSET)
            .ok_or(PacketError::Truncated)?;
        let [c0, c1, chl, s0, s1, kic, kid, t0, t1, t2] =
            <[u8; COMMAND_CNTR_OFFSET]>::try_from(head).map_err(|_| PacketError::Truncated)?;
        let cpl = u16::from_be_bytes([c0, c1]);
        if usize::from(cpl) != packet.len() - 2 {
            return Err(PacketError::Truncated);
        }
        if usize::from(chl) < COMMAND_HEADER_FIXED {
            return Err(PacketError::HeaderLength(chl));
        }
        // CHL counts SPI..RC/CC/DS, which must fit inside the packet.
        if usize::from(chl) + 3 > packet.len() {
            return Err(PacketError::Truncated);
        }
        Ok(Self {
            cpl,
            chl,
            spi: Spi::decode([s0, s1])?,
            kic,
            kid,
            tar: [t0, t1, t2],
        })
    }
}

impl CommandPacket {
    /// A packet for `keyset`: KIc and KID name its keys (KID names a CRC when the SPI asks
    /// for an RC: CRC-32).
    pub fn for_keyset(keyset: &Keyset, spi: Spi, tar: Tar, counter: u64, data: Vec<u8>) -> Self {
        let kid = match spi.checksum {
            Checksum::Rc => keyset.kid_index << 4 | RcAlgorithm::Crc32.code(),
            _ => keyset.kid_byte(),
        };
        Self {
            spi,
            kic: keyset.kic_byte(),
            kid,
            tar,
            counter,
            data,
        }
    }

    /// The packet on the wire (CPL onwards; the SMS user data header `02 70 00` goes before it).
    pub fn seal(&self, keys: &PacketKeys<'_>) -> Result<Vec<u8>, PacketError> {
        if self.counter > COUNTER_MAX {
            return Err(PacketError::CounterRange(self.counter));
        }
        let check_len = checksum_len(self.spi.checksum, self.kid)?;
        let mut data = self.data.clone();
        let mut pcntr = 0u8;
        let cipher = if self.spi.ciphering {
            let (alg, key) = keys.cipher.ok_or(PacketError::MissingKey)?;
            // §5.1.1: CNTR, PCNTR, RC/CC/DS and the secured data are ciphered together, padded
            // to the block size; PCNTR counts the padding bytes.
            let block = alg.block_len();
            let pad = (block - (6 + check_len + data.len()) % block) % block;
            data.resize(data.len() + pad, 0);
            pcntr = u8::try_from(pad).map_err(|_| PacketError::Padding)?;
            Some((alg, key))
        } else {
            None
        };
        let chl =
            u8::try_from(COMMAND_HEADER_FIXED + check_len).map_err(|_| PacketError::TooLong)?;
        let cpl =
            u16::try_from(1 + usize::from(chl) + data.len()).map_err(|_| PacketError::TooLong)?;
        let counter = counter_bytes(self.counter);
        let spi = self.spi.encode();
        let mut header = Vec::with_capacity(16 + data.len());
        header.extend_from_slice(&cpl.to_be_bytes());
        header.push(chl);
        header.extend_from_slice(&spi);
        header.extend_from_slice(&[self.kic, self.kid]);
        header.extend_from_slice(&self.tar);
        let mut covered = header.clone();
        covered.extend_from_slice(&counter);
        covered.push(pcntr);
        covered.extend_from_slice(&data);
        let check = compute_checksum(self.spi.checksum, self.kid, keys, &covered)?;
        let mut body = Vec::with_capacity(6 + check.len() + data.len());
        body.extend_from_slice(&counter);
        body.push(pcntr);
        body.extend_from_slice(&check);
        body.extend_from_slice(&data);
        if let Some((alg, key)) = cipher {
            self::cipher(alg, key, &mut body, false).map_err(|_| PacketError::MissingKey)?;
        }
        header.extend_from_slice(&body);
        Ok(header)
    }

    /// Opens a packet whose header was read: deciphers, checks the RC/CC/DS, removes the
    /// padding. The counter is not judged here (that is the receiver's state).
    pub fn open(
        header: &CommandHeader,
        packet: &[u8],
        keys: &PacketKeys<'_>,
    ) -> Result<Self, PacketError> {
        let spi = header.spi;
        let check_len = usize::from(header.chl) - COMMAND_HEADER_FIXED;
        let want = checksum_len(spi.checksum, header.kid)?;
        if check_len != want {
            return Err(PacketError::ChecksumLength {
                got: check_len,
                want,
            });
        }
        let mut body = packet
            .get(COMMAND_CNTR_OFFSET..)
            .ok_or(PacketError::Truncated)?
            .to_vec();
        if spi.ciphering {
            let (alg, key) = keys.cipher.ok_or(PacketError::MissingKey)?;
            cipher(alg, key, &mut body, true).map_err(|e| match e {
                CryptoError::NotBlockAligned(_) => PacketError::NotBlockAligned,
                CryptoError::BadKey => PacketError::MissingKey,
            })?;
        }
        let counter_bytes = body.get(..5).ok_or(PacketError::Truncated)?;
        let counter = counter_bytes
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        let pcntr = usize::from(*body.get(5).ok_or(PacketError::Truncated)?);
        let received = body.get(6..6 + check_len).ok_or(PacketError::Truncated)?;
        let data = body.get(6 + check_len..).ok_or(PacketError::Truncated)?;
        if pcntr > data.len() {
            return Err(PacketError::Padding);
        }
        if spi.checksum != Checksum::None {
            let mut covered = packet
                .get(..COMMAND_CNTR_OFFSET)
                .ok_or(PacketError::Truncated)?
                .to_vec();
            covered.extend_from_slice(body.get(..6).ok_or(PacketError::Truncated)?);
            covered.extend_from_slice(data);
            let expected = compute_checksum(spi.checksum, header.kid, keys, &covered)?;
            if !constant_time_eq(&expected, received) {
                return Err(PacketError::ChecksumMismatch);
            }
        }
        Ok(Self {
            spi,
            kic: header.kic,
            kid: header.kid,
            tar: header.tar,
            counter,
            data: data.get(..data.len() - pcntr).unwrap_or_default().to_vec(),
        })
    }
}

fn counter_bytes(counter: u64) -> [u8; 5] {
    let b = counter.to_be_bytes();
    [b[3], b[4], b[5], b[6], b[7]]
}

/// Compares checksums without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------
// Response packet / PoR (§5.2)

/// A response packet (PoR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePacket {
    pub tar: Tar,
    /// A copy of the command packet's counter (§5.2).
    pub counter: u64,
    pub status: PorStatus,
    /// The additional response data (padding removed).
    pub data: Vec<u8>,
}

/// A PoR as the sender read it: was it secured as the SPI asked?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedPor {
    pub packet: ResponsePacket,
    /// `false`: sent without the ciphering or checksum the SPI asked for, as a receiver does
    /// when it could not establish the command's security (the status then says why).
    pub secured: bool,
}

/// Why a PoR cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PorError {
    #[error("the PoR's user data header has no response packet identifier (IEI 71)")]
    NoResponseIdentifier,
    #[error(transparent)]
    Packet(#[from] PacketError),
    #[error("the PoR says status {0} but carries no ciphering or checksum although the SPI asked for them")]
    NotSecured(PorStatus),
}

impl ResponsePacket {
    /// The PoR as SMS user data (`02 71 00` then RPL onwards), secured as `spi` asks with
    /// `keys` (pass [`PacketKeys::none`] and a plain SPI for an unsecured PoR). `kid` names the
    /// RC algorithm when the SPI asks for a PoR with RC.
    pub fn seal(&self, spi: &Spi, kid: u8, keys: &PacketKeys<'_>) -> Result<Vec<u8>, PacketError> {
        let check_len = checksum_len(spi.por_checksum, kid)?;
        let mut data = self.data.clone();
        let mut pcntr = 0u8;
        let cipher = if spi.por_ciphered {
            let (alg, key) = keys.cipher.ok_or(PacketError::MissingKey)?;
            let block = alg.block_len();
            let pad = (block - (7 + check_len + data.len()) % block) % block;
            data.resize(data.len() + pad, 0);
            pcntr = u8::try_from(pad).map_err(|_| PacketError::Padding)?;
            Some((alg, key))
        } else {
            None
        };
        let rhl =
            u8::try_from(RESPONSE_HEADER_FIXED + check_len).map_err(|_| PacketError::TooLong)?;
        let rpl =
            u16::try_from(1 + usize::from(rhl) + data.len()).map_err(|_| PacketError::TooLong)?;
        let counter = counter_bytes(self.counter.min(COUNTER_MAX));
        let mut head = RESPONSE_UDH.to_vec();
        head.extend_from_slice(&rpl.to_be_bytes());
        head.push(rhl);
        head.extend_from_slice(&self.tar);
        let mut covered = head.clone();
        covered.extend_from_slice(&counter);
        covered.push(pcntr);
        covered.push(self.status.code());
        covered.extend_from_slice(&data);
        let check = compute_checksum(spi.por_checksum, kid, keys, &covered)?;
        let mut body = counter.to_vec();
        body.push(pcntr);
        body.push(self.status.code());
        body.extend_from_slice(&check);
        body.extend_from_slice(&data);
        if let Some((alg, key)) = cipher {
            self::cipher(alg, key, &mut body, false).map_err(|_| PacketError::MissingKey)?;
        }
        head.extend_from_slice(&body);
        Ok(head)
    }

    /// Reads a PoR (SMS user data with its header) for a command sent with `spi` and `kid`.
    /// A PoR sent unsecured (only for a status that says the security failed) is accepted
    /// with `secured: false`.
    pub fn open(
        user_data: &[u8],
        spi: &Spi,
        kid: u8,
        keys: &PacketKeys<'_>,
    ) -> Result<OpenedPor, PorError> {
        let udhl = usize::from(*user_data.first().ok_or(PacketError::Truncated)?);
        let udh = user_data.get(..1 + udhl).ok_or(PacketError::Truncated)?;
        if !udh_has_iei(udh.get(1..).unwrap_or_default(), 0x71) {
            return Err(PorError::NoResponseIdentifier);
        }
        let packet = user_data.get(1 + udhl..).ok_or(PacketError::Truncated)?;
        let head = packet.get(..6).ok_or(PacketError::Truncated)?;
        let rpl = usize::from(u16::from_be_bytes([head[0], head[1]]));
        if rpl != packet.len() - 2 {
            return Err(PacketError::Truncated.into());
        }
        let rhl = usize::from(head[2]);
        if rhl < RESPONSE_HEADER_FIXED || rhl + 3 > packet.len() {
            return Err(PacketError::Truncated.into());
        }
        let tar = [head[3], head[4], head[5]];
        let asked = spi.por_ciphered || spi.por_checksum != Checksum::None;
        let secured = Self::open_secured(udh, packet, rhl, tar, spi, kid, keys);
        match secured {
            Ok(p) => Ok(OpenedPor {
                packet: p,
                secured: true,
            }),
            Err(_) if asked && rhl == RESPONSE_HEADER_FIXED => {
                // No checksum field: perhaps an unsecured PoR for a failed security check,
                // which a receiver sends when it could not establish the command's keys.
                let plain = Self::parse_body(packet.get(6..).unwrap_or_default(), 0, tar)?;
                if plain.status.security_established() {
                    return Err(PorError::NotSecured(plain.status));
                }
                Ok(OpenedPor {
                    packet: plain,
                    secured: false,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    fn open_secured(
        udh: &[u8],
        packet: &[u8],
        rhl: usize,
        tar: Tar,
        spi: &Spi,
        kid: u8,
        keys: &PacketKeys<'_>,
    ) -> Result<Self, PacketError> {
        let check_len = rhl - RESPONSE_HEADER_FIXED;
        let want = checksum_len(spi.por_checksum, kid)?;
        if check_len != want {
            return Err(PacketError::ChecksumLength {
                got: check_len,
                want,
            });
        }
        let mut body = packet.get(6..).ok_or(PacketError::Truncated)?.to_vec();
        if spi.por_ciphered {
            let (alg, key) = keys.cipher.ok_or(PacketError::MissingKey)?;
            cipher(alg, key, &mut body, true).map_err(|e| match e {
                CryptoError::NotBlockAligned(_) => PacketError::NotBlockAligned,
                CryptoError::BadKey => PacketError::MissingKey,
            })?;
        }
        if spi.por_checksum != Checksum::None {
            let received = body.get(7..7 + check_len).ok_or(PacketError::Truncated)?;
            let mut covered = udh.to_vec();
            covered.extend_from_slice(packet.get(..6).ok_or(PacketError::Truncated)?);
            covered.extend_from_slice(body.get(..7).ok_or(PacketError::Truncated)?);
            covered.extend_from_slice(body.get(7 + check_len..).ok_or(PacketError::Truncated)?);
            let expected = compute_checksum(spi.por_checksum, kid, keys, &covered)?;
            if !constant_time_eq(&expected, received) {
                return Err(PacketError::ChecksumMismatch);
            }
        }
        Self::parse_body(&body, check_len, tar)
    }

    /// CNTR, PCNTR, status, RC/CC/DS (skipped), data without padding.
    fn parse_body(body: &[u8], check_len: usize, tar: Tar) -> Result<Self, PacketError> {
        let counter = body
            .get(..5)
            .ok_or(PacketError::Truncated)?
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        let pcntr = usize::from(*body.get(5).ok_or(PacketError::Truncated)?);
        let status = PorStatus::from_code(*body.get(6).ok_or(PacketError::Truncated)?);
        let data = body.get(7 + check_len..).ok_or(PacketError::Truncated)?;
        let data = data
            .get(..data.len().checked_sub(pcntr).ok_or(PacketError::Padding)?)
            .unwrap_or_default();
        Ok(Self {
            tar,
            counter,
            status,
            data: data.to_vec(),
        })
    }
}

/// Whether a user data header's information elements (after UDHL) include `iei`.
fn udh_has_iei(mut ies: &[u8], iei: u8) -> bool {
    while let [id, len, rest @ ..] = ies {
        if *id == iei {
            return true;
        }
        ies = rest.get(usize::from(*len)..).unwrap_or_default();
    }
    false
}

/// Keys as hex strings in serialised card state.
mod hex_vec {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn keyset(
        kic_algorithm: CipherAlgorithm,
        kic_len: usize,
        kid_algorithm: MacAlgorithm,
        kid_len: usize,
    ) -> Keyset {
        Keyset {
            kic_index: 1,
            kic_algorithm,
            kic: (0..kic_len as u8).collect(),
            kid_index: 1,
            kid_algorithm,
            kid: (0..kid_len as u8).map(|b| b ^ 0x5A).collect(),
        }
    }

    fn spi_strategy() -> impl Strategy<Value = Spi> {
        (any::<[u8; 2]>()).prop_filter_map("reserved PoR bits", |b| {
            Spi::decode([b[0] & 0x1F, b[1] & 0x3F]).ok()
        })
    }

    proptest! {
        #[test]
        fn spi_decode_encode_round_trips(spi in spi_strategy()) {
            prop_assert_eq!(Spi::decode(spi.encode()).unwrap(), spi);
        }

        #[test]
        fn every_status_code_round_trips(code in any::<u8>()) {
            prop_assert_eq!(PorStatus::from_code(code).code(), code);
        }

        #[test]
        fn parsing_arbitrary_packets_and_pors_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let k = keyset(CipherAlgorithm::AesCbc, 16, MacAlgorithm::AesCmac, 16);
            if let Ok(h) = CommandHeader::parse(&bytes) {
                let _ = CommandPacket::open(&h, &bytes, &PacketKeys::of(&k));
            }
            let spi = Spi::decode([0x06, 0x19]).unwrap();
            let _ = ResponsePacket::open(&bytes, &spi, 0x12, &PacketKeys::of(&k));
        }

        #[test]
        fn sealed_packets_open_to_what_was_sealed(
            spi in spi_strategy().prop_filter("no DS", |s| s.checksum != Checksum::Ds && s.por_checksum != Checksum::Ds),
            counter in 0..=COUNTER_MAX,
            data in proptest::collection::vec(any::<u8>(), 0..120),
            alg in 0usize..5,
        ) {
            let k = [
                keyset(CipherAlgorithm::TripleDesCbc2, 16, MacAlgorithm::TripleDesCbcMac2, 16),
                keyset(CipherAlgorithm::TripleDesCbc3, 24, MacAlgorithm::TripleDesCbcMac3, 24),
                keyset(CipherAlgorithm::AesCbc, 16, MacAlgorithm::AesCmac, 16),
                keyset(CipherAlgorithm::AesCbc, 24, MacAlgorithm::AesCmac, 24),
                keyset(CipherAlgorithm::AesCbc, 32, MacAlgorithm::AesCmac, 32),
            ][alg].clone();
            let p = CommandPacket::for_keyset(&k, spi, [0xB0, 0, 0x11], counter, data);
            let sealed = p.seal(&PacketKeys::of(&k)).unwrap();
            let h = CommandHeader::parse(&sealed).unwrap();
            prop_assert_eq!(CommandPacket::open(&h, &sealed, &PacketKeys::of(&k)).unwrap(), p.clone());
            let por = ResponsePacket { tar: p.tar, counter, status: PorStatus::Ok, data: p.data.clone() };
            let ud = por.seal(&spi, p.kid, &PacketKeys::of(&k)).unwrap();
            let opened = ResponsePacket::open(&ud, &spi, p.kid, &PacketKeys::of(&k)).unwrap();
            prop_assert!(opened.secured);
            prop_assert_eq!(opened.packet, por);
        }
    }

    #[rstest]
    #[case::des2(
        CipherAlgorithm::TripleDesCbc2,
        24,
        "kic is 24 bytes; 3des-cbc2 needs 16 (2 keys) or 24 (3 keys)"
    )]
    #[case::aes(
        CipherAlgorithm::AesCbc,
        20,
        "kic is 20 bytes; aes-cbc needs 16, 24 or 32"
    )]
    fn a_key_of_the_wrong_length_is_named(
        #[case] alg: CipherAlgorithm,
        #[case] len: usize,
        #[case] msg: &str,
    ) {
        let k = keyset(alg, len, MacAlgorithm::AesCmac, 16);
        assert_eq!(k.check().unwrap_err().to_string(), msg);
    }

    #[test]
    fn an_unsecured_por_is_accepted_only_for_a_security_failure() {
        let k = keyset(CipherAlgorithm::AesCbc, 16, MacAlgorithm::AesCmac, 16);
        let spi = Spi::decode([0x06, 0x19]).unwrap();
        let plain = Spi {
            por_ciphered: false,
            por_checksum: Checksum::None,
            ..spi
        };
        let por = |status| {
            ResponsePacket {
                tar: [1, 2, 3],
                counter: 0,
                status,
                data: Vec::new(),
            }
            .seal(&plain, 0x12, &PacketKeys::none())
            .unwrap()
        };
        let opened = ResponsePacket::open(
            &por(PorStatus::RcCcDsFailed),
            &spi,
            0x12,
            &PacketKeys::of(&k),
        )
        .unwrap();
        assert_eq!(
            (opened.secured, opened.packet.status),
            (false, PorStatus::RcCcDsFailed)
        );
        assert_eq!(
            ResponsePacket::open(&por(PorStatus::Ok), &spi, 0x12, &PacketKeys::of(&k)),
            Err(PorError::NotSecured(PorStatus::Ok))
        );
    }

    #[test]
    fn crc_checks_are_the_iso_13239_ones() {
        // The standard check values of CRC-32 (ISO-HDLC) and CRC-16 (IBM-SDLC / X.25).
        assert_eq!(
            redundancy_check(RcAlgorithm::Crc32, b"123456789"),
            [0xCB, 0xF4, 0x39, 0x26]
        );
        assert_eq!(
            redundancy_check(RcAlgorithm::Crc16, b"123456789"),
            [0x90, 0x6E]
        );
    }
}
