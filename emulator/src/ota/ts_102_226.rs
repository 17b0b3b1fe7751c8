//! ETSI TS 102 226 (V17) §5: how remote APDUs travel in the secured data of a command packet
//! and how their results come back in the PoR's additional response data — the compact format
//! (§5.1) and the expanded format (§5.2, Command/Response Scripting templates of TS 101 220
//! Table 7.18/7.19). Both sides use it: the sender encodes scripts and decodes responses, the
//! card's remote file management applications ([`super::rfm`]) decode scripts and encode
//! responses.
//!
//! Compact commands are written as T=0 TPDUs one after the other: `CLA INS P1 P2 P3 [data]`,
//! P3 being Le for the instructions that only return data and Lc for the others; a case 4
//! command therefore carries no Le and its answer data is fetched by a GET RESPONSE in the same
//! script after '61 XX'. The secured data is in the expanded format when it starts with a
//! Command Scripting template tag ('AA' definite, 'AE' indefinite length), else compact.

use crate::tlv;
use thiserror::Error;

/// Command Scripting template, definite length (TS 101 220 Table 7.18).
pub const TAG_COMMAND_SCRIPT: u32 = 0xAA;
/// Command Scripting template, indefinite length.
pub const TAG_COMMAND_SCRIPT_INDEFINITE: u8 = 0xAE;
/// Response Scripting template, definite length.
pub const TAG_RESPONSE_SCRIPT: u32 = 0xAB;
/// Response Scripting template, indefinite length.
pub const TAG_RESPONSE_SCRIPT_INDEFINITE: u8 = 0xAF;
/// C-APDU inside a Command Scripting template.
pub const TAG_C_APDU: u32 = 0x22;
/// R-APDU inside a Response Scripting template.
pub const TAG_R_APDU: u32 = 0x23;
/// Number of executed C-APDUs.
pub const TAG_EXECUTED: u32 = 0x80;
/// Immediate action (not supported: answered with a bad format).
pub const TAG_IMMEDIATE_ACTION: u32 = 0x81;
/// Bad format: what was wrong with the script (§5.2.2).
pub const TAG_BAD_FORMAT: u32 = 0x90;

/// Bad format codes (§5.2.2): unknown tag, wrong length, length missing.
pub const BAD_FORMAT_UNKNOWN_TAG: u8 = 0x01;
pub const BAD_FORMAT_WRONG_LENGTH: u8 = 0x02;
pub const BAD_FORMAT_LENGTH_MISSING: u8 = 0x03;

/// The two formats of remote APDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptFormat {
    Compact,
    Expanded,
}

impl ScriptFormat {
    /// The format of `secured_data`.
    pub fn of(secured_data: &[u8]) -> Self {
        match secured_data.first().copied() {
            Some(0xAA) | Some(TAG_COMMAND_SCRIPT_INDEFINITE) => Self::Expanded,
            _ => Self::Compact,
        }
    }
}

/// Why a script or a response cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    #[error("command {index}: {problem}")]
    Command { index: usize, problem: &'static str },
    /// The card's answer for a malformed expanded script: a bad format code.
    #[error("bad format {0:02X}")]
    BadFormat(u8),
    #[error("the response data is malformed: {0}")]
    Response(&'static str),
}

/// Instructions that send no data and expect some: their P3 is Le (TS 102 221 Table 10.5).
fn is_outgoing_only(ins: u8) -> bool {
    matches!(ins, 0xB0 | 0xB2 | 0xC0 | 0xF2 | 0xCA | 0x84 | 0x12)
}

/// Writes APDUs (ISO/IEC 7816-3 short cases) in the compact format: a case 1 command gets
/// P3 = '00', a case 4 command loses its Le.
pub fn encode_compact(apdus: &[Vec<u8>]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    for (index, apdu) in apdus.iter().enumerate() {
        let bad = |problem| FormatError::Command { index, problem };
        let header = apdu.get(..4).ok_or(bad("shorter than CLA INS P1 P2"))?;
        out.extend_from_slice(header);
        match apdu.len() {
            4 => out.push(0),
            5 => out.push(apdu[4]),
            n => {
                let lc = usize::from(apdu[4]);
                if lc == 0 {
                    return Err(bad("extended lengths do not fit the compact format"));
                }
                if n != 5 + lc && n != 6 + lc {
                    return Err(bad("Lc does not match the data"));
                }
                out.extend_from_slice(&apdu[4..5 + lc]);
            }
        }
    }
    Ok(out)
}

/// Splits compact secured data into ISO/IEC 7816-3 APDUs (case 1 when P3 is '00' on an
/// instruction that takes data).
pub fn decode_compact(data: &[u8]) -> Result<Vec<Vec<u8>>, FormatError> {
    match decode_compact_prefix(data) {
        (commands, None) => Ok(commands),
        (_, Some(e)) => Err(e),
    }
}

/// As [`decode_compact`], but keeps the commands before a malformed one: what a receiver
/// runs before it reports the malformed one.
pub fn decode_compact_prefix(data: &[u8]) -> (Vec<Vec<u8>>, Option<FormatError>) {
    let mut commands = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let index = commands.len();
        let bad = |problem| Some(FormatError::Command { index, problem });
        let Some(header) = rest.get(..4) else {
            return (commands, bad("shorter than CLA INS P1 P2"));
        };
        let Some(&p3) = rest.get(4) else {
            // A trailing 4-byte command: case 1 without P3.
            commands.push(header.to_vec());
            break;
        };
        let ins = header[1];
        let len = if is_outgoing_only(ins) || p3 == 0 {
            5
        } else {
            5 + usize::from(p3)
        };
        let Some(command) = rest.get(..len) else {
            return (commands, bad("Lc runs past the end of the data"));
        };
        commands.push(if p3 == 0 && !is_outgoing_only(ins) {
            header.to_vec()
        } else {
            command.to_vec()
        });
        rest = rest.get(len..).unwrap_or_default();
    }
    (commands, None)
}

/// A Command Scripting template with definite length holding `apdus`.
pub fn encode_expanded(apdus: &[Vec<u8>]) -> Vec<u8> {
    let inner: Vec<u8> = apdus
        .iter()
        .flat_map(|a| tlv::encode(TAG_C_APDU, a))
        .collect();
    tlv::encode(TAG_COMMAND_SCRIPT, &inner)
}

/// The C-APDUs of a Command Scripting template (definite 'AA' or indefinite 'AE 80 … 00 00').
/// The error is the bad-format code to answer.
pub fn decode_expanded(data: &[u8]) -> Result<Vec<Vec<u8>>, FormatError> {
    let body = template_body(data, TAG_COMMAND_SCRIPT, TAG_COMMAND_SCRIPT_INDEFINITE)?;
    let mut apdus = Vec::new();
    for item in tlv::TlvIter::new(body) {
        let item = item.map_err(|e| FormatError::BadFormat(bad_format_code(e)))?;
        match item.tag {
            TAG_C_APDU => apdus.push(item.value.to_vec()),
            _ => return Err(FormatError::BadFormat(BAD_FORMAT_UNKNOWN_TAG)),
        }
    }
    Ok(apdus)
}

fn bad_format_code(e: tlv::TlvError) -> u8 {
    match e {
        tlv::TlvError::Truncated => BAD_FORMAT_LENGTH_MISSING,
        _ => BAD_FORMAT_WRONG_LENGTH,
    }
}

/// The content of a template, with definite length (`definite` tag) or indefinite length
/// (`indefinite` tag, '80', elements, '00 00').
fn template_body(data: &[u8], definite: u32, indefinite: u8) -> Result<&[u8], FormatError> {
    match data {
        [t, 0x80, inner @ ..] if *t == indefinite => match inner {
            [body @ .., 0x00, 0x00] => Ok(body),
            _ => Err(FormatError::BadFormat(BAD_FORMAT_LENGTH_MISSING)),
        },
        _ => {
            let t = tlv::parse_one(data).map_err(|e| FormatError::BadFormat(bad_format_code(e)))?;
            if t.tag != definite {
                return Err(FormatError::BadFormat(BAD_FORMAT_UNKNOWN_TAG));
            }
            Ok(t.value)
        }
    }
}

/// One command's answer: data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RApdu {
    pub data: Vec<u8>,
    pub sw: u16,
}

/// The outcome of a script as the PoR's additional response data tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptResponse {
    /// Number of commands executed (the last one included, even when it failed).
    pub executed: u8,
    /// The answers reported: the last one in the compact format, every executed one in the
    /// expanded format.
    pub responses: Vec<RApdu>,
    /// The bad format code of an expanded script the card could not read.
    pub bad_format: Option<u8>,
}

impl ScriptResponse {
    /// The last command's answer, if any was reported.
    pub fn last(&self) -> Option<&RApdu> {
        self.responses.last()
    }

    /// Compact additional response data (§5.1.2): number of commands executed, the last
    /// status word, the last command's data.
    pub fn encode_compact(&self) -> Vec<u8> {
        let mut out = vec![self.executed];
        if let Some(last) = self.last() {
            out.extend_from_slice(&last.sw.to_be_bytes());
            out.extend_from_slice(&last.data);
        }
        out
    }

    pub fn decode_compact(data: &[u8]) -> Result<Self, FormatError> {
        match data {
            [] => Err(FormatError::Response("empty")),
            [executed] => Ok(Self {
                executed: *executed,
                responses: Vec::new(),
                bad_format: None,
            }),
            [executed, s1, s2, rest @ ..] => Ok(Self {
                executed: *executed,
                responses: vec![RApdu {
                    data: rest.to_vec(),
                    sw: u16::from_be_bytes([*s1, *s2]),
                }],
                bad_format: None,
            }),
            _ => Err(FormatError::Response("a status word needs two bytes")),
        }
    }

    /// A Response Scripting template with definite length (§5.2.2).
    pub fn encode_expanded(&self) -> Vec<u8> {
        let mut inner = tlv::encode(TAG_EXECUTED, &[self.executed]);
        for r in &self.responses {
            let mut v = r.data.clone();
            v.extend_from_slice(&r.sw.to_be_bytes());
            inner.extend(tlv::encode(TAG_R_APDU, &v));
        }
        if let Some(code) = self.bad_format {
            inner.extend(tlv::encode(TAG_BAD_FORMAT, &[code]));
        }
        tlv::encode(TAG_RESPONSE_SCRIPT, &inner)
    }

    pub fn decode_expanded(data: &[u8]) -> Result<Self, FormatError> {
        let body = template_body(data, TAG_RESPONSE_SCRIPT, TAG_RESPONSE_SCRIPT_INDEFINITE)
            .map_err(|_| FormatError::Response("not a Response Scripting template"))?;
        let mut executed = None;
        let mut responses = Vec::new();
        let mut bad_format = None;
        for item in tlv::TlvIter::new(body) {
            let item = item.map_err(|_| FormatError::Response("malformed TLV"))?;
            match (item.tag, item.value) {
                (TAG_EXECUTED, [n]) => executed = Some(*n),
                (TAG_R_APDU, [data @ .., s1, s2]) => responses.push(RApdu {
                    data: data.to_vec(),
                    sw: u16::from_be_bytes([*s1, *s2]),
                }),
                (TAG_BAD_FORMAT, [code]) => bad_format = Some(*code),
                _ => return Err(FormatError::Response("unexpected element")),
            }
        }
        // The indefinite form carries no count: the R-APDUs are the executed commands.
        let executed = executed.unwrap_or(u8::try_from(responses.len()).unwrap_or(u8::MAX));
        Ok(Self {
            executed,
            responses,
            bad_format,
        })
    }

    /// Reads additional response data in the format the script was sent in.
    pub fn decode(format: ScriptFormat, data: &[u8]) -> Result<Self, FormatError> {
        match format {
            ScriptFormat::Compact => Self::decode_compact(data),
            ScriptFormat::Expanded => Self::decode_expanded(data),
        }
    }
}
