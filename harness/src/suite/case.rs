//! Conformance cases as data: what a case file holds once parsed ([`super::parse`]), and how
//! one step's answer is checked against its expectations.
//!
//! A case is a list of steps; a step is an action (a command APDU, an ES10 request, a card
//! reset) with the checks its answer must pass and the values it captures for later steps.
//! Hex in commands and expectations is a [`Template`]: literal bytes, `*` (any bytes, in
//! expectations only), and references to captured or probed values (`$NAME`, `$cla(NAME)`).

use simlab_emulator::ota::ts_102_225::{PorStatus, Spi};
use simlab_emulator::ota::ts_102_226::ScriptFormat;
use simlab_emulator::tlv;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One case file: an area (its cases' JUnit classname) and its cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    pub path: PathBuf,
    pub area: String,
    pub cases: Vec<Case>,
}

/// One conformance case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// SGP.23-style identifier, e.g. `TC_eUICC_ES10c.GetEID`; unique across the suite.
    pub id: String,
    pub title: String,
    /// The spec clause the case checks, e.g. `ETSI TS 102 221 V17.1.0 §11.1.1`.
    pub spec: String,
    /// Capabilities the card must have (the file's and the case's own).
    pub requires: Vec<String>,
    pub steps: Vec<Step>,
    pub area: String,
    pub file: PathBuf,
    /// Line of the `case` keyword.
    pub line: usize,
}

/// One action and what its answer must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    pub action: Action,
    pub checks: Vec<Check>,
    pub captures: Vec<Capture>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `>` sends the APDU as is; `>>` also fetches '61 XX' with GET RESPONSE and re-sends on
    /// '6C XX' (what a T=0 terminal does, ISO 7816-3 §10.3.3).
    Apdu { command: Template, follow: bool },
    /// An ES10 function sent to the ISD-R over STORE DATA (SGP.22 §5.7.2).
    Es10(Es10Call),
    /// A warm reset: volatile state (channels, selections, verified PINs) is lost.
    Reset,
    /// A command string for a remote application in an SCP80 secured packet, sent as SMS-PP
    /// download ENVELOPEs ([`super::ota`]).
    Ota(OtaCall),
}

/// `ota tar=… keyset=… apdus="…"`, read (see [`super::ota`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtaCall {
    pub tar: [u8; 3],
    /// The keyset the packet is secured with.
    pub keyset: KeysetRef,
    pub spi: Spi,
    pub counter: CounterChoice,
    pub format: ScriptFormat,
    /// The command string: each APDU and how many times in a row it is sent.
    pub apdus: Vec<(usize, Template)>,
    /// Replacements for the keyset's keys and indexes: a packet the card must refuse.
    pub kic_key: Option<Vec<u8>>,
    pub kid_key: Option<Vec<u8>>,
    pub kic_index: Option<u8>,
    pub kid_index: Option<u8>,
}

/// Which of the card's keysets an `ota` step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysetRef {
    /// `keyset=N`: the one with KID key index N (TS 102 225 §5.1.3).
    Index(u8),
    /// `keyset=3des`: the first with triple DES ciphering and CBC-MAC (§5.1.2, §5.1.3.1).
    TripleDes,
    /// `keyset=aes`: the first with AES-CBC ciphering and AES-CMAC.
    Aes,
}

/// The counter (CNTR, TS 102 225 §5.1.1) an `ota` step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterChoice {
    /// `counter=N`.
    Value(u64),
    /// `counter=next`: above every counter the run sent (see [`super::ota`]).
    Next,
    /// `counter=last` / `last+N`: the last `next` value plus N.
    Last(u64),
}

/// `es10 NAME key=value …` as written; encoded when the step runs (values may refer to
/// captures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Es10Call {
    pub function: String,
    pub args: BTreeMap<String, String>,
}

/// Hex with holes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template(pub Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Bytes(Vec<u8>),
    /// `*`: any number of bytes (expectations only).
    Any,
    /// `$NAME`: the bytes of a captured or probed value.
    Var(String),
    /// `$cla(NAME)` / `$cla80(NAME)`: the CLA byte for the logical channel in `NAME`
    /// (TS 102 221 §10.1.1), interindustry ('0X'/'4X') or proprietary ('8X'/'CX').
    Cla {
        var: String,
        proprietary: bool,
    },
    /// `$len(NAME)`: one byte, the length of `NAME` (e.g. Lc before `$NAME`).
    Len(String),
}

/// A status word pattern, e.g. `9000`, `61xx`, `63Cx`: `x` matches any nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwPattern {
    pub value: u16,
    /// Bits that must equal `value`.
    pub mask: u16,
}

impl SwPattern {
    pub fn matches(&self, sw: u16) -> bool {
        sw & self.mask == self.value & self.mask
    }
}

impl std::fmt::Display for SwPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for shift in [12u16, 8, 4, 0] {
            if (self.mask >> shift) & 0xF == 0 {
                write!(f, "x")?;
            } else {
                write!(f, "{:X}", (self.value >> shift) & 0xF)?;
            }
        }
        Ok(())
    }
}

/// A path into the answer's BER-TLV: each element a tag and which occurrence (0 = first)
/// among its siblings, e.g. `BF2D/A0/E3[1]/5A`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvPath(pub Vec<(u32, usize)>);

impl std::fmt::Display for TlvPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (tag, n)) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "/")?;
            }
            write!(f, "{tag:02X}")?;
            if *n > 0 {
                write!(f, "[{n}]")?;
            }
        }
        Ok(())
    }
}

impl TlvPath {
    /// The value at the path in `data` (top-level elements first), if present and well formed.
    pub fn find<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let mut level = data;
        let mut value = None;
        for (tag, occurrence) in &self.0 {
            let found = tlv::TlvIter::new(level)
                .map_while(Result::ok)
                .filter(|t| t.tag == *tag)
                .nth(*occurrence)?;
            level = found.value;
            value = Some(found.value);
        }
        value
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The status word is one of these.
    Sw(Vec<SwPattern>),
    /// Any status word (written `sw any`: a step that checks nothing says so).
    SwAny,
    /// The answer data (status word excluded) matches the template, `*` anywhere.
    Data(Template),
    /// `data & mask == value` over the first bytes of the answer.
    DataMask {
        mask: Vec<u8>,
        value: Vec<u8>,
    },
    DataLen(LenRange),
    DataAny,
    DataEmpty,
    Tlv {
        path: TlvPath,
        check: TlvCheck,
    },
    /// What an `ota` step's PoR says (`por …`, `sms N`).
    Ota(OtaCheck),
}

/// A check of an `ota` step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtaCheck {
    /// `por ok`, `por cntr-low`, `por 0A`: the PoR's status (TS 102 225 §5.2.1 Table 5).
    Status(PorStatus),
    /// `por none`: no PoR came.
    NoPor,
    /// `por executed N`: the number of commands executed (TS 102 226 §5.1.2, §5.2.2).
    Executed(usize),
    /// `por secured` / `por unsecured`: ciphered and checksummed as the SPI asked, or not.
    Secured(bool),
    /// `sms N`: the packet travelled in N short messages (TS 31.115 §4).
    Messages(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlvCheck {
    Equals(Template),
    Len(LenRange),
    Present,
    Absent,
}

/// `N`, `N..M` or `N..` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenRange {
    pub min: usize,
    pub max: Option<usize>,
}

impl LenRange {
    pub fn contains(&self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }
}

impl std::fmt::Display for LenRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.max {
            Some(m) if m == self.min => write!(f, "{m}"),
            Some(m) => write!(f, "{}..{m}", self.min),
            None => write!(f, "{}..", self.min),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub name: String,
    pub source: CaptureSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureSource {
    /// The whole answer data.
    Data,
    /// Bytes `start..end` of the answer data (`data[i]` is `i..i+1`, `data[i..]` to the end).
    DataRange { start: usize, end: Option<usize> },
    /// The value at a TLV path.
    Tlv(TlvPath),
    /// SW2, e.g. the length a '61 XX' or '6C XX' announces.
    Sw2,
}

/// Captured and probed values by name.
pub type Vars = BTreeMap<String, Vec<u8>>;

/// Why a template could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "${0} is not known here: no earlier step captured it and the card probe did not set it"
    )]
    Unknown(String),
    #[error("$cla({0}) needs a one-byte channel number from 1 to 19")]
    BadChannel(String),
    #[error("$len({0}): the value is longer than 255 bytes")]
    TooLong(String),
    #[error("`*` is only allowed in expectations")]
    Wildcard,
}

/// CLA for `channel` (TS 102 221 §10.1.1): '0X' for 0–3, '4X' for 4–19; `proprietary` sets b8.
pub fn cla_for(channel: u8, proprietary: bool) -> Option<u8> {
    let base = match channel {
        0..=3 => channel,
        4..=19 => 0x40 | (channel - 4),
        _ => return None,
    };
    Some(if proprietary { base | 0x80 } else { base })
}

impl Template {
    /// The command bytes, references filled in.
    pub fn bytes(&self, vars: &Vars) -> Result<Vec<u8>, TemplateError> {
        let mut out = Vec::new();
        for part in &self.0 {
            match part {
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::Any => return Err(TemplateError::Wildcard),
                Part::Var(v) => out.extend(lookup(vars, v)?),
                Part::Cla { var, proprietary } => out.push(cla_of(vars, var, *proprietary)?),
                Part::Len(var) => out.push(len_of(vars, var)?),
            }
        }
        Ok(out)
    }

    /// The pattern as upper-case hex with `*` (the form `emulator::script::matches` reads).
    pub fn pattern(&self, vars: &Vars) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Bytes(b) => out.push_str(&hex::encode_upper(b)),
                Part::Any => out.push('*'),
                Part::Var(v) => out.push_str(&hex::encode_upper(lookup(vars, v)?)),
                Part::Cla { var, proprietary } => {
                    out.push_str(&format!("{:02X}", cla_of(vars, var, *proprietary)?));
                }
                Part::Len(var) => out.push_str(&format!("{:02X}", len_of(vars, var)?)),
            }
        }
        Ok(out)
    }

    /// Whether `got` matches this template.
    pub fn matches(&self, vars: &Vars, got: &[u8]) -> Result<bool, TemplateError> {
        Ok(simlab_emulator::script::matches(
            &self.pattern(vars)?,
            &hex::encode_upper(got),
        ))
    }
}

fn lookup<'a>(vars: &'a Vars, name: &str) -> Result<&'a [u8], TemplateError> {
    vars.get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| TemplateError::Unknown(name.to_owned()))
}

fn len_of(vars: &Vars, name: &str) -> Result<u8, TemplateError> {
    u8::try_from(lookup(vars, name)?.len()).map_err(|_| TemplateError::TooLong(name.into()))
}

fn cla_of(vars: &Vars, name: &str, proprietary: bool) -> Result<u8, TemplateError> {
    match lookup(vars, name)? {
        [ch] => cla_for(*ch, proprietary).ok_or_else(|| TemplateError::BadChannel(name.into())),
        _ => Err(TemplateError::BadChannel(name.into())),
    }
}

/// One failed check: what was expected and what came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: String,
    pub got: String,
}

impl Check {
    /// Checks one answer (data without SW, and the SW).
    pub fn check(&self, vars: &Vars, data: &[u8], sw: u16) -> Result<(), Mismatch> {
        let hex_data = || hex::encode_upper(data);
        let fail = |expected: String, got: String| Err(Mismatch { expected, got });
        match self {
            Check::Sw(list) => {
                if list.iter().any(|p| p.matches(sw)) {
                    Ok(())
                } else {
                    let want: Vec<String> = list.iter().map(ToString::to_string).collect();
                    fail(format!("sw {}", want.join(" or ")), format!("sw {sw:04X}"))
                }
            }
            Check::SwAny | Check::DataAny => Ok(()),
            // The runner checks these against the `ota` step's outcome.
            Check::Ota(_) => fail(
                "a PoR (`por` and `sms` follow an `ota` step)".into(),
                "a step that is not `ota`".into(),
            ),
            Check::DataEmpty => {
                if data.is_empty() {
                    Ok(())
                } else {
                    fail("no data".into(), format!("data {}", hex_data()))
                }
            }
            Check::DataLen(range) => {
                if range.contains(data.len()) {
                    Ok(())
                } else {
                    fail(
                        format!("data of {range} bytes"),
                        format!("{} bytes: {}", data.len(), hex_data()),
                    )
                }
            }
            Check::Data(t) => match t.matches(vars, data) {
                Ok(true) => Ok(()),
                Ok(false) => fail(
                    format!("data {}", t.pattern(vars).unwrap_or_default()),
                    format!("data {}", hex_data()),
                ),
                Err(e) => fail(
                    format!("data (template: {e})"),
                    format!("data {}", hex_data()),
                ),
            },
            Check::DataMask { mask, value } => {
                let ok = data.len() >= mask.len()
                    && mask
                        .iter()
                        .zip(value)
                        .zip(data)
                        .all(|((m, v), d)| d & m == v & m);
                if ok {
                    Ok(())
                } else {
                    fail(
                        format!(
                            "data & {} = {}",
                            hex::encode_upper(mask),
                            hex::encode_upper(value)
                        ),
                        format!("data {}", hex_data()),
                    )
                }
            }
            Check::Tlv { path, check } => {
                let found = path.find(data);
                let got = || match found {
                    Some(v) => format!("tlv {path} = {}", hex::encode_upper(v)),
                    None => format!("no {path} in data {}", hex_data()),
                };
                match (check, found) {
                    (TlvCheck::Present, Some(_)) | (TlvCheck::Absent, None) => Ok(()),
                    (TlvCheck::Present, None) => fail(format!("tlv {path} present"), got()),
                    (TlvCheck::Absent, Some(_)) => fail(format!("tlv {path} absent"), got()),
                    (TlvCheck::Len(r), Some(v)) if r.contains(v.len()) => Ok(()),
                    (TlvCheck::Len(r), _) => fail(
                        format!("tlv {path} of {r} bytes"),
                        match found {
                            Some(v) => format!("{} bytes: {}", v.len(), hex::encode_upper(v)),
                            None => got(),
                        },
                    ),
                    (TlvCheck::Equals(t), Some(v)) => match t.matches(vars, v) {
                        Ok(true) => Ok(()),
                        Ok(false) => fail(
                            format!("tlv {path} = {}", t.pattern(vars).unwrap_or_default()),
                            got(),
                        ),
                        Err(e) => fail(format!("tlv {path} (template: {e})"), got()),
                    },
                    (TlvCheck::Equals(t), None) => fail(
                        format!("tlv {path} = {}", t.pattern(vars).unwrap_or_default()),
                        got(),
                    ),
                }
            }
        }
    }
}

impl CaptureSource {
    /// The captured bytes, or why the answer does not have them.
    pub fn take(&self, data: &[u8], sw: u16) -> Result<Vec<u8>, String> {
        match self {
            CaptureSource::Sw2 => Ok(vec![sw.to_be_bytes()[1]]),
            CaptureSource::Data => Ok(data.to_vec()),
            CaptureSource::DataRange { start, end } => {
                let end = end.unwrap_or(data.len());
                data.get(*start..end).map(<[u8]>::to_vec).ok_or_else(|| {
                    format!(
                        "data[{start}..{end}] but the answer has {} bytes",
                        data.len()
                    )
                })
            }
            CaptureSource::Tlv(path) => path
                .find(data)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("no {path} in the answer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn path(p: &[(u32, usize)]) -> TlvPath {
        TlvPath(p.to_vec())
    }

    #[rstest]
    #[case::fcp_fid(&[(0x62, 0), (0x83, 0)], Some("3F00"))]
    #[case::second_occurrence(&[(0x62, 0), (0x80, 1)], Some("02"))]
    #[case::absent(&[(0x62, 0), (0x84, 0)], None)]
    #[case::top_level_second_element(&[(0x90, 0)], Some(""))]
    fn tlv_paths_walk_nested_elements(#[case] p: &[(u32, usize)], #[case] want: Option<&str>) {
        // 62 { 83 3F00, 80 01, 80 02 } then an empty 90.
        let data = hex::decode("620A83023F00800101800102".to_owned() + "9000").unwrap();
        assert_eq!(
            path(p).find(&data).map(hex::encode_upper),
            want.map(String::from)
        );
    }

    #[rstest]
    #[case("9000", 0x9000, true)]
    #[case("61xx", 0x6112, true)]
    #[case("63Cx", 0x63C2, true)]
    #[case("63Cx", 0x6300, false)]
    fn sw_patterns_match_nibbles(#[case] text: &str, #[case] sw: u16, #[case] ok: bool) {
        let (value, mask) = text.chars().fold((0u16, 0u16), |(v, m), c| match c {
            'x' => (v << 4, m << 4),
            c => ((v << 4) | c.to_digit(16).unwrap() as u16, (m << 4) | 0xF),
        });
        let p = SwPattern { value, mask };
        assert_eq!(p.matches(sw), ok);
        assert_eq!(p.to_string(), text.to_uppercase().replace('X', "x"));
    }

    #[rstest]
    #[case(0, false, Some(0x00))]
    #[case(3, true, Some(0x83))]
    #[case(4, false, Some(0x40))]
    #[case(19, true, Some(0xCF))]
    #[case(20, false, None)]
    fn cla_follows_ts_102_221_coding(#[case] ch: u8, #[case] p: bool, #[case] want: Option<u8>) {
        assert_eq!(cla_for(ch, p), want);
    }

    #[test]
    fn templates_fill_in_captures_and_report_unknown_names() {
        let mut vars = Vars::new();
        vars.insert("CH".into(), vec![5]);
        let t = Template(vec![
            Part::Cla {
                var: "CH".into(),
                proprietary: true,
            },
            Part::Bytes(vec![0xF2, 0, 0]),
            Part::Var("CH".into()),
        ]);
        assert_eq!(t.bytes(&vars).unwrap(), vec![0xC1, 0xF2, 0, 0, 5]);
        vars.clear();
        assert_eq!(t.bytes(&vars), Err(TemplateError::Unknown("CH".into())));
    }

    #[test]
    fn a_mask_check_compares_only_masked_bits() {
        let c = Check::DataMask {
            mask: vec![0xF0, 0x00],
            value: vec![0x60, 0xFF],
        };
        assert!(c.check(&Vars::new(), &[0x62, 0x11, 0x22], 0x9000).is_ok());
        assert!(c.check(&Vars::new(), &[0x72, 0x11], 0x9000).is_err());
        assert!(c.check(&Vars::new(), &[0x62], 0x9000).is_err());
    }
}
