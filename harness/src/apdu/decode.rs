//! What `simlab apdu` tells about an answer: the meaning of its status word (ISO/IEC 7816-4
//! §5.1.3 and ETSI TS 102 221 §10.2.1, as a terminal reads any card, real or emulated) and the
//! decoded content of answers it recognises: an FCP template (TS 102 221 §11.1.1.3), EF.ICCID
//! (§13.2), EF.IMSI (TS 31.102 §4.2.2) and AUTHENTICATE answers (TS 31.102 §7.1.2.1: `DB`
//! success, `DC` synchronisation failure, GSM context SRES/Kc).

use serde::Serialize;
use simlab_emulator::aka::ts_31_102::AuthenticateResponse;
use simlab_emulator::fcp;
use simlab_emulator::saip::{decode_iccid_ef, decode_imsi};

/// ISO 7816-4 §5.1.3 / TS 102 221 §10.2.1: status words by pattern (`X` = any hex digit,
/// first match wins). Declared once as data; [`meaning`] reads it.
const STATUS_WORDS: &[(&str, &str)] = &[
    ("9000", "normal ending"),
    (
        "91XX",
        "normal ending; a proactive command of XX bytes is pending (FETCH)",
    ),
    (
        "92XX",
        "normal ending, with extra information about an ongoing data transfer",
    ),
    ("9300", "SIM Application Toolkit busy; retry later"),
    (
        "9FXX",
        "normal ending; XX bytes of response data (GSM 11.11 GET RESPONSE)",
    ),
    (
        "61XX",
        "XX more bytes available: fetch them with GET RESPONSE",
    ),
    ("6200", "warning: no information given, memory unchanged"),
    (
        "6281",
        "warning: part of the returned data may be corrupted",
    ),
    (
        "6282",
        "warning: end of file or record reached before reading Le bytes",
    ),
    ("6283", "warning: selected file invalidated (deactivated)"),
    ("6285", "warning: selected file in termination state"),
    ("62F1", "warning: more data available"),
    (
        "62F2",
        "warning: more data available and a proactive command pending",
    ),
    ("62F3", "warning: response data available"),
    ("63CX", "verification failed: X retries left"),
    ("63F1", "warning: more data expected"),
    (
        "63F2",
        "warning: more data expected and a proactive command pending",
    ),
    (
        "6400",
        "execution error: no information given, memory unchanged",
    ),
    (
        "6500",
        "execution error: no information given, memory changed",
    ),
    ("6581", "execution error: memory problem"),
    ("6700", "wrong length (Lc or Le)"),
    ("67XX", "wrong length: incorrect parameter P3"),
    ("6881", "logical channel not supported or not open"),
    ("6882", "secure messaging not supported"),
    ("6981", "command incompatible with the file structure"),
    (
        "6982",
        "security status not satisfied (verify a PIN or ADM first)",
    ),
    ("6983", "authentication/verification method blocked"),
    ("6984", "referenced data invalidated"),
    ("6985", "conditions of use not satisfied"),
    ("6986", "command not allowed: no EF selected"),
    (
        "6989",
        "command not allowed: secure channel security not satisfied",
    ),
    ("6A80", "incorrect parameters in the data field"),
    ("6A81", "function not supported"),
    ("6A82", "file or application not found"),
    ("6A83", "record not found"),
    ("6A84", "not enough memory space in the file"),
    ("6A86", "incorrect parameters P1-P2"),
    ("6A87", "Lc inconsistent with P1-P2"),
    ("6A88", "referenced data not found"),
    ("6B00", "wrong parameters P1-P2 (offset outside the EF)"),
    ("6CXX", "wrong Le: XX bytes are available"),
    ("6D00", "instruction code not supported or invalid"),
    ("6E00", "class not supported"),
    ("6F00", "technical problem, no precise diagnosis"),
    ("6FXX", "technical problem, no precise diagnosis"),
    (
        "9850",
        "INCREASE cannot be performed: maximum value reached",
    ),
    ("9862", "authentication error: incorrect MAC"),
    (
        "9863",
        "authentication error: security context not supported",
    ),
    ("9864", "authentication error: key freshness failure"),
    ("9865", "authentication error: no memory space available"),
    (
        "9866",
        "authentication error: no memory space available in EF.MUK",
    ),
];

/// Whether `sw` (4 hex digits) matches `pattern` (4 hex digits, `X`/`x` = any digit).
pub fn sw_matches(pattern: &str, sw: u16) -> bool {
    let sw = format!("{sw:04X}");
    pattern.len() == 4
        && pattern
            .chars()
            .zip(sw.chars())
            .all(|(p, s)| p.eq_ignore_ascii_case(&'x') || p.eq_ignore_ascii_case(&s))
}

/// What a status word means ("unknown status word" for one no specification above defines).
pub fn meaning(sw: u16) -> String {
    let Some((pattern, text)) = STATUS_WORDS.iter().find(|(p, _)| sw_matches(p, sw)) else {
        return "unknown status word".into();
    };
    let sw2 = sw & 0xFF;
    if pattern.ends_with("XX") {
        let n = if pattern.starts_with("61") && sw2 == 0 {
            "256 or more".to_string()
        } else {
            sw2.to_string()
        };
        text.replace("XX", &n)
    } else if pattern.ends_with("CX") {
        text.replace('X', &(sw2 & 0x0F).to_string())
    } else {
        (*text).to_string()
    }
}

/// What an answer's data holds, when `simlab apdu` recognises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum Decoded {
    /// A SELECT answer's FCP template.
    Fcp {
        #[serde(skip_serializing_if = "Option::is_none")]
        fid: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        aid: Option<String>,
        structure: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record_length: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        life_cycle: Option<String>,
    },
    /// READ BINARY of EF.ICCID.
    Iccid { iccid: String },
    /// READ BINARY of EF.IMSI.
    Imsi { imsi: String },
    /// AUTHENTICATE, 3G/5G context: `DB` successful execution.
    AuthenticateSuccess {
        res: String,
        ck: String,
        ik: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        kc: Option<String>,
    },
    /// AUTHENTICATE, 3G/5G context: `DC` synchronisation failure.
    AuthenticateSyncFailure { auts: String },
    /// AUTHENTICATE, GSM context.
    AuthenticateGsm { sres: String, kc: String },
}

impl std::fmt::Display for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decoded::Fcp {
                fid,
                aid,
                structure,
                size,
                record_length,
                life_cycle,
            } => {
                write!(f, "FCP: {structure}")?;
                if let Some(fid) = fid {
                    write!(f, " {fid}")?;
                }
                if let Some(aid) = aid {
                    write!(f, ", AID {aid}")?;
                }
                match (size, record_length) {
                    (Some(s), Some(r)) if *r > 0 => {
                        write!(f, ", {} records of {r} bytes", s / r)?;
                    }
                    (Some(s), _) => write!(f, ", {s} bytes")?,
                    _ => {}
                }
                if let Some(l) = life_cycle {
                    write!(f, ", {l}")?;
                }
                Ok(())
            }
            Decoded::Iccid { iccid } => write!(f, "EF.ICCID: ICCID {iccid}"),
            Decoded::Imsi { imsi } => write!(f, "EF.IMSI: IMSI {imsi}"),
            Decoded::AuthenticateSuccess { res, ck, ik, kc } => {
                write!(f, "AUTHENTICATE success (DB): RES {res}, CK {ck}, IK {ik}")?;
                if let Some(kc) = kc {
                    write!(f, ", Kc {kc}")?;
                }
                Ok(())
            }
            Decoded::AuthenticateSyncFailure { auts } => {
                write!(f, "AUTHENTICATE synchronisation failure (DC): AUTS {auts}")
            }
            Decoded::AuthenticateGsm { sres, kc } => {
                write!(f, "AUTHENTICATE (GSM context): SRES {sres}, Kc {kc}")
            }
        }
    }
}

/// TS 102 221 §11.1.1.4.3: file descriptor byte → structure.
fn structure(descriptor: &[u8]) -> String {
    match descriptor.first().map(|b| b & 0xBF) {
        Some(0x38) => "DF/ADF".into(),
        Some(0x01) => "transparent EF".into(),
        Some(0x02) => "linear fixed EF".into(),
        Some(0x06) => "cyclic EF".into(),
        Some(0x39) => "BER-TLV EF".into(),
        Some(b) => format!("file descriptor {b:02X}"),
        None => "file".into(),
    }
}

/// TS 102 221 §11.1.1.4.9: life cycle status integer.
fn life_cycle(lcsi: u8) -> String {
    match lcsi {
        0x01 => "creation state".into(),
        0x03 => "initialisation state".into(),
        0x05 | 0x07 => "activated".into(),
        0x04 | 0x06 => "deactivated".into(),
        0x0C..=0x0F => "terminated".into(),
        b => format!("life cycle {b:02X}"),
    }
}

const INS_SELECT: u8 = 0xA4;
const INS_READ_BINARY: u8 = 0xB0;
const INS_AUTHENTICATE: u8 = 0x88;
const INS_AUTHENTICATE_ODD: u8 = 0x89;
/// EF.ICCID (TS 102 221 §13.2) and EF.IMSI (TS 31.102 §4.2.2).
const FID_ICCID: u16 = 0x2FE2;
const FID_IMSI: u16 = 0x6F07;

/// Follows the session (which EF is selected) to decode READ BINARY answers.
#[derive(Debug, Default)]
pub struct Decoder {
    selected: Option<u16>,
}

impl Decoder {
    /// Reads one exchange: `data` is the answer without its status word.
    pub fn exchange(&mut self, command: &[u8], data: &[u8], sw: u16) -> Option<Decoded> {
        let [_, ins, p1, p2, ..] = *command else {
            return None;
        };
        let ok = sw == 0x9000 || sw >> 8 == 0x91 || sw >> 8 == 0x62;
        match ins {
            INS_SELECT => {
                if !ok {
                    return None;
                }
                // SELECT by FID (P1 00) or by path: the last two bytes of the data name the
                // file; the FCP, when there is one, says it too.
                let named = command
                    .get(5..)
                    .and_then(|d| d.get(..usize::from(command[4]).min(d.len())))
                    .filter(|d| d.len() >= 2 && p1 != 0x04)
                    .map(|d| u16::from_be_bytes([d[d.len() - 2], d[d.len() - 1]]));
                let decoded = fcp_answer(data);
                let from_fcp = match &decoded {
                    Some(Decoded::Fcp { fid: Some(f), .. }) => u16::from_str_radix(f, 16).ok(),
                    _ => None,
                };
                self.selected = from_fcp.or(named);
                if p1 == 0x04 {
                    // An application: no EF selected until the next SELECT.
                    self.selected = None;
                }
                decoded
            }
            INS_READ_BINARY if ok && p1 & 0x80 == 0 => match self.selected? {
                FID_ICCID => decode_iccid_ef(data)
                    .ok()
                    .map(|iccid| Decoded::Iccid { iccid }),
                FID_IMSI => decode_imsi(data).ok().map(|imsi| Decoded::Imsi { imsi }),
                _ => None,
            },
            INS_AUTHENTICATE | INS_AUTHENTICATE_ODD if sw == 0x9000 => {
                fn h(b: impl AsRef<[u8]>) -> String {
                    hex::encode_upper(b)
                }
                match AuthenticateResponse::parse(p2 & 0x87, data).ok()? {
                    AuthenticateResponse::Success3g { res, ck, ik, kc } => {
                        Some(Decoded::AuthenticateSuccess {
                            res: h(res),
                            ck: h(ck),
                            ik: h(ik),
                            kc: kc.map(h),
                        })
                    }
                    AuthenticateResponse::SyncFailure { auts } => {
                        Some(Decoded::AuthenticateSyncFailure { auts: h(auts) })
                    }
                    AuthenticateResponse::Gsm { sres, kc } => Some(Decoded::AuthenticateGsm {
                        sres: h(sres),
                        kc: h(kc),
                    }),
                }
            }
            _ => None,
        }
    }
}

fn fcp_answer(data: &[u8]) -> Option<Decoded> {
    if data.first() != Some(&0x62) {
        return None;
    }
    let s = fcp::decode(data).ok()?;
    // §11.1.1.4.3: record EFs carry the record length (2 bytes) and count in the descriptor.
    let record_length = match s.descriptor.as_slice() {
        [d, _, hi, lo, ..] if d & 0x07 == 0x02 || d & 0x07 == 0x06 => {
            Some(usize::from(*hi) << 8 | usize::from(*lo))
        }
        _ => None,
    };
    Some(Decoded::Fcp {
        fid: s.fid.map(|f| format!("{f:04X}")),
        aid: s.aid.map(hex::encode_upper),
        structure: structure(&s.descriptor),
        size: s.size,
        record_length,
        life_cycle: s.life_cycle.map(life_cycle),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0x9000, "normal ending")]
    #[case(0x6114, "20 more bytes available: fetch them with GET RESPONSE")]
    #[case(
        0x6100,
        "256 or more more bytes available: fetch them with GET RESPONSE"
    )]
    #[case(0x63C2, "verification failed: 2 retries left")]
    #[case(0x6A82, "file or application not found")]
    #[case(0x6C0A, "wrong Le: 10 bytes are available")]
    #[case(0x9862, "authentication error: incorrect MAC")]
    #[case(0x6F42, "technical problem, no precise diagnosis")]
    #[case(0x1234, "unknown status word")]
    fn status_words_have_their_meaning(#[case] sw: u16, #[case] text: &str) {
        assert_eq!(meaning(sw), text);
    }

    #[rstest]
    #[case("9000", 0x9000, true)]
    #[case("61xx", 0x6120, true)]
    #[case("61XX", 0x9000, false)]
    #[case("63cx", 0x63C1, true)]
    #[case("900", 0x9000, false)]
    fn patterns_match_status_words(#[case] p: &str, #[case] sw: u16, #[case] want: bool) {
        assert_eq!(sw_matches(p, sw), want);
    }

    #[test]
    fn decodes_iccid_after_selecting_ef_iccid_and_nothing_after_another_file() {
        let mut d = Decoder::default();
        assert_eq!(
            d.exchange(&hex::decode("00A4000C022FE2").unwrap(), &[], 0x9000),
            None
        );
        let iccid = hex::decode("989400010100000010F6").unwrap();
        assert_eq!(
            d.exchange(&hex::decode("00B000000A").unwrap(), &iccid, 0x9000),
            Some(Decoded::Iccid {
                iccid: "8949001010000000016".into()
            })
        );
        d.exchange(&hex::decode("00A4000C022F05").unwrap(), &[], 0x9000);
        assert_eq!(
            d.exchange(&hex::decode("00B000000A").unwrap(), &iccid, 0x9000),
            None
        );
    }

    #[test]
    fn decodes_an_fcp_and_follows_its_file_id() {
        let mut d = Decoder::default();
        let fcp =
            hex::decode("621C8202412183026F07A5038001718A01058B036F060580020009880138").unwrap();
        let got = d
            .exchange(&hex::decode("00A40004026F07").unwrap(), &fcp, 0x9000)
            .unwrap();
        assert_eq!(
            got.to_string(),
            "FCP: transparent EF 6F07, 9 bytes, activated"
        );
        let imsi = simlab_emulator::saip::encode_imsi("001010123456063").unwrap();
        assert_eq!(
            d.exchange(&hex::decode("00B0000009").unwrap(), &imsi, 0x9000),
            Some(Decoded::Imsi {
                imsi: "001010123456063".into()
            })
        );
    }

    #[test]
    fn decodes_authenticate_answers() {
        let mut d = Decoder::default();
        let cmd = hex::decode("0088008122").unwrap();
        let mut db = vec![0xDB, 0x08];
        db.extend([0x11; 8]);
        db.push(0x10);
        db.extend([0x22; 16]);
        db.push(0x10);
        db.extend([0x33; 16]);
        match d.exchange(&cmd, &db, 0x9000) {
            Some(Decoded::AuthenticateSuccess { res, kc: None, .. }) => {
                assert_eq!(res, "1111111111111111")
            }
            other => panic!("{other:?}"),
        }
        let mut dc = vec![0xDC, 0x0E];
        dc.extend([0x44; 14]);
        assert_eq!(
            d.exchange(&cmd, &dc, 0x9000),
            Some(Decoded::AuthenticateSyncFailure {
                auts: "44".repeat(14)
            })
        );
    }
}
