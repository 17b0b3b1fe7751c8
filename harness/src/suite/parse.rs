//! The case file format (`vectors/conformance/*.cases`), read with `nom`. Every error names
//! the file, line and column and says what was expected there.
//!
//! ```text
//! # comment (anywhere outside a quoted string)
//! area = "uicc"                          # JUnit classname; default: the file's stem
//! requires = ["uicc"]                    # required by every case of the file
//!
//! case TC_UICC_SELECT.MF_ByFid_NoData {
//!     title = "SELECT MF by FID with P2 '0C' answers 90 00 and no data"
//!     spec = "ETSI TS 102 221 V17.1.0 §11.1.1.2, Table 11.2"
//!     requires = ["pin1-enabled"]        # more capabilities, for this case only
//!     > 00 A4 00 0C 02 3F00              # command APDU, sent as is
//!     sw 9000                            # status word(s); x = any nibble: sw 9000 61xx
//!     >> 00 A4 00 04 02 3F00             # ... with 61xx / 6Cxx handled (GET RESPONSE)
//!     data = 62 * 83 02 3F00 *           # answer data, * = any bytes
//!     tlv 62/83 = 3F00                   # value at a BER-TLV path (E3[1] = 2nd E3)
//!     tlv 62/C6 present                  # also: absent, len 2, len 1..4, len 2..
//!     data mask F0 = 60                  # also: data len 16, data any, data empty
//!     capture FCP = tlv 62/83            # also: data, data[0], data[2..4], data[1..], sw2
//!     > 00 70 00 00 01
//!     capture CH = data[0]
//!     > $cla(CH) A4 00 0C $len(FCP) $FCP # $NAME inserts a capture, $cla(CH) the CLA of
//!                                        # channel CH ($cla80: proprietary), $len(X) a length
//!     es10 GetEID                        # ES10 function over STORE DATA to the ISD-R
//!     tlv BF3E/5A len 16
//!     es10 EnableProfile iccid=$ENABLED_ICCID refresh=false
//!     es10 raw BF2E00                    # any bytes as an ES10 request
//!     reset                              # warm reset of the card
//!     ota tar=B00011 keyset=3 format=expanded apdus="00A4000C 02 6F46, 00B0000001"
//!                                        # SCP80 packet by SMS-PP download (see `ota`):
//!                                        # also spi=WORDS|HEX, counter=next|last|last+N|N,
//!                                        # kic_key=/kid_key=HEX, kic_index=/kid_index=N;
//!                                        # `3*HEX` sends an APDU three times
//!     por ok                             # the PoR's status; also por none, por executed 2,
//!                                        # por secured, por unsecured, sms 2 (messages)
//!     sw 9000                            # after `ota`: the last command's answer in the PoR
//! }
//! ```
//!
//! A step that sends something must check something: at least one `sw`, `data` or `tlv`
//! line (`sw any` when the answer really does not matter, e.g. in clean-up).

use super::case::{
    Action, Capture, CaptureSource, Case, CaseFile, Check, Es10Call, LenRange, OtaCheck, Part,
    Step, SwPattern, Template, TlvCheck, TlvPath,
};
use super::{es10, ota};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1, take_while_m_n};
use nom::character::complete::{char, digit1, space0, space1};
use nom::combinator::{all_consuming, cut, map, map_res, opt, recognize, value};
use nom::error::{ContextError, ErrorKind, FromExternalError, ParseError};
use nom::multi::{many0, many1, separated_list0, separated_list1};
use nom::sequence::{delimited, pair, preceded, separated_pair, terminated, tuple};
use nom::IResult;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// A problem in a case file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct CaseFileError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// nom's error for one line: where in the line, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineError<'a> {
    at: &'a str,
    expected: String,
}

impl<'a> ParseError<&'a str> for LineError<'a> {
    fn from_error_kind(input: &'a str, kind: ErrorKind) -> Self {
        Self {
            at: input,
            expected: format!("unexpected text ({kind:?})"),
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // The alternative that got further explains the problem best.
        if other.at.len() <= self.at.len() {
            other
        } else {
            self
        }
    }
}

impl<'a, E: std::fmt::Display> FromExternalError<&'a str, E> for LineError<'a> {
    fn from_external_error(input: &'a str, _kind: ErrorKind, e: E) -> Self {
        Self {
            at: input,
            expected: format!("unexpected text ({e})"),
        }
    }
}

impl<'a> ContextError<&'a str> for LineError<'a> {
    fn add_context(input: &'a str, ctx: &'static str, other: Self) -> Self {
        // The innermost context wins: it is the most specific.
        if other.expected.starts_with("expected") {
            other
        } else {
            Self {
                at: input,
                expected: format!("expected {ctx}"),
            }
        }
    }
}

type Res<'a, T> = IResult<&'a str, T, LineError<'a>>;

fn expected<'a, T>(
    what: &'static str,
    mut p: impl FnMut(&'a str) -> Res<'a, T>,
) -> impl FnMut(&'a str) -> Res<'a, T> {
    move |i| {
        p(i).map_err(|e| {
            e.map(|mut err| {
                if !err.expected.starts_with("expected") {
                    err.expected = format!("expected {what}");
                    err.at = i;
                }
                err
            })
        })
    }
}

/// What one line of a case file says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Area(String),
    Requires(Vec<String>),
    CaseStart(String),
    CaseEnd,
    Title(String),
    Spec(String),
    Action(Action),
    Check(Check),
    Capture(Capture),
}

fn ident(i: &str) -> Res<'_, &str> {
    recognize(pair(
        take_while_m_n(1, 1, |c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))(i)
}

fn case_id(i: &str) -> Res<'_, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || "_.-".contains(c))(i)
}

/// A double-quoted string; `\"` and `\\` escape.
fn quoted(i: &str) -> Res<'_, String> {
    let (i, _) = char('"')(i)?;
    let mut out = String::new();
    let mut chars = i.char_indices();
    while let Some((n, c)) = chars.next() {
        match c {
            '"' => return Ok((&i[n + 1..], out)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                _ => {
                    return Err(nom::Err::Failure(LineError {
                        at: &i[n..],
                        expected: "expected \\\" or \\\\ after a backslash".into(),
                    }))
                }
            },
            c => out.push(c),
        }
    }
    Err(nom::Err::Failure(LineError {
        at: "",
        expected: "expected a closing \" before the end of the line".into(),
    }))
}

fn eq(i: &str) -> Res<'_, ()> {
    value((), tuple((space0, expected("`=`", char('=')), space0)))(i)
}

fn string_list(i: &str) -> Res<'_, Vec<String>> {
    delimited(
        pair(expected("`[`", char('[')), space0),
        separated_list0(tuple((space0, char(','), space0)), quoted),
        pair(space0, expected("`]` or `, \"…\"`", char(']'))),
    )(i)
}

fn hex_byte(i: &str) -> Res<'_, u8> {
    map_res(
        take_while_m_n(2, 2, |c: char| c.is_ascii_hexdigit()),
        |h: &str| u8::from_str_radix(h, 16),
    )(i)
}

/// Hex bytes (pairs of digits, spaces anywhere between bytes) with `$NAME`, `$cla(NAME)`,
/// `$cla80(NAME)` and, when `wildcards`, `*`.
fn template(wildcards: bool) -> impl FnMut(&str) -> Res<'_, Template> {
    move |i| {
        let part = |i| {
            alt((
                map(
                    preceded(tag("$cla80("), cut(terminated(ident, char(')')))),
                    |v| Part::Cla {
                        var: v.into(),
                        proprietary: true,
                    },
                ),
                map(
                    preceded(tag("$len("), cut(terminated(ident, char(')')))),
                    |v| Part::Len(v.into()),
                ),
                map(
                    preceded(tag("$cla("), cut(terminated(ident, char(')')))),
                    |v| Part::Cla {
                        var: v.into(),
                        proprietary: false,
                    },
                ),
                map(
                    preceded(char('$'), cut(expected("a name after `$`", ident))),
                    |v| Part::Var(v.into()),
                ),
                map(hex_byte, |b| Part::Bytes(vec![b])),
            ))(i)
        };
        let any = |i| {
            if wildcards {
                value(Part::Any, char('*'))(i)
            } else {
                Err(nom::Err::Error(LineError {
                    at: i,
                    expected: "expected hex (`*` only in expectations)".into(),
                }))
            }
        };
        let (rest, parts) = expected(
            "hex bytes (pairs of digits), `$NAME` or `*`",
            many1(preceded(space0, alt((any, part)))),
        )(i)?;
        // A template runs to the end of its line: anything left is not hex.
        let (after, _) = space0(rest)?;
        if !after.is_empty() {
            return Err(nom::Err::Failure(LineError {
                at: after,
                expected: if !wildcards && after.starts_with('*') {
                    "expected hex (`*` only in expectations)".into()
                } else {
                    "expected hex bytes (pairs of digits), `$NAME` or `*`".into()
                },
            }));
        }
        // Merge neighbouring bytes.
        let mut merged: Vec<Part> = Vec::new();
        for p in parts {
            match (merged.last_mut(), p) {
                (Some(Part::Bytes(prev)), Part::Bytes(b)) => prev.extend(b),
                (_, p) => merged.push(p),
            }
        }
        Ok((rest, Template(merged)))
    }
}

fn plain_hex(i: &str) -> Res<'_, Vec<u8>> {
    map(
        expected("hex bytes", many1(preceded(space0, hex_byte))),
        |v| v,
    )(i)
}

fn number(i: &str) -> Res<'_, usize> {
    map_res(digit1, str::parse)(i)
}

fn len_range(i: &str) -> Res<'_, LenRange> {
    expected(
        "a length: N, N..M or N..",
        map(
            pair(number, opt(preceded(tag(".."), opt(number)))),
            |(min, tail)| match tail {
                None => LenRange {
                    min,
                    max: Some(min),
                },
                Some(max) => LenRange { min, max },
            },
        ),
    )(i)
}

fn tlv_tag(i: &str) -> Res<'_, u32> {
    map_res(
        take_while_m_n(2, 8, |c: char| c.is_ascii_hexdigit()),
        |h: &str| {
            if h.len() % 2 == 0 {
                u32::from_str_radix(h, 16)
            } else {
                u32::from_str_radix("zz", 16)
            }
        },
    )(i)
}

fn tlv_path(i: &str) -> Res<'_, TlvPath> {
    map(
        expected(
            "a TLV path of hex tags, e.g. BF2D/A0/E3[1]/5A",
            separated_list1(
                char('/'),
                pair(tlv_tag, opt(delimited(char('['), number, char(']')))),
            ),
        ),
        |elems| {
            TlvPath(
                elems
                    .into_iter()
                    .map(|(t, n)| (t, n.unwrap_or(0)))
                    .collect(),
            )
        },
    )(i)
}

fn sw_pattern(i: &str) -> Res<'_, SwPattern> {
    map(
        take_while_m_n(4, 4, |c: char| {
            c.is_ascii_hexdigit() || c == 'x' || c == 'X'
        }),
        |s: &str| {
            s.chars().fold(SwPattern { value: 0, mask: 0 }, |p, c| {
                let nibble = c.to_digit(16);
                SwPattern {
                    value: (p.value << 4) | nibble.map_or(0, |n| n as u16),
                    mask: (p.mask << 4) | if nibble.is_some() { 0xF } else { 0 },
                }
            })
        },
    )(i)
}

fn por_check(i: &str) -> Res<'_, OtaCheck> {
    alt((
        value(OtaCheck::NoPor, tag("none")),
        map(
            preceded(pair(tag("executed"), space1), cut(number)),
            OtaCheck::Executed,
        ),
        value(OtaCheck::Secured(true), tag("secured")),
        value(OtaCheck::Secured(false), tag("unsecured")),
        |i| {
            let (rest, word) = take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-')(i)?;
            match ota::por_status(word) {
                Some(status) => Ok((rest, OtaCheck::Status(status))),
                None => Err(nom::Err::Failure(LineError {
                    at: i,
                    expected: "expected a PoR status (ok, rc-cc-ds-failed, cntr-low, cntr-high, \
                               cntr-blocked, ciphering-error, unidentified-security-error, \
                               tar-unknown, insufficient-security-level or two hex digits), \
                               none, executed N, secured or unsecured"
                        .into(),
                })),
            }
        },
    ))(i)
}

fn check_line(i: &str) -> Res<'_, Check> {
    alt((
        map(
            preceded(pair(tag("por"), space1), cut(por_check)),
            Check::Ota,
        ),
        map(
            preceded(
                pair(tag("sms"), space1),
                cut(expected("a number of short messages", number)),
            ),
            |n| Check::Ota(OtaCheck::Messages(n)),
        ),
        preceded(
            pair(tag("sw"), space1),
            cut(alt((
                value(Check::SwAny, tag("any")),
                map(
                    expected(
                        "status words like 9000, 61xx or `any`",
                        separated_list1(space1, sw_pattern),
                    ),
                    Check::Sw,
                ),
            ))),
        ),
        preceded(
            pair(tag("data"), space0),
            cut(alt((
                map(
                    preceded(pair(char('='), space0), template(true)),
                    Check::Data,
                ),
                map(
                    preceded(
                        pair(tag("mask"), space1),
                        separated_pair(plain_hex, eq, plain_hex),
                    ),
                    |(mask, value)| Check::DataMask { mask, value },
                ),
                map(
                    preceded(pair(tag("len"), space1), len_range),
                    Check::DataLen,
                ),
                value(Check::DataAny, tag("any")),
                value(Check::DataEmpty, tag("empty")),
                |i| {
                    Err(nom::Err::Failure(LineError {
                        at: i,
                        expected: "expected `= HEX`, `mask HEX = HEX`, `len N`, `any` or `empty`"
                            .into(),
                    }))
                },
            ))),
        ),
        preceded(
            pair(tag("tlv"), space1),
            cut(map(
                pair(
                    terminated(tlv_path, space0),
                    alt((
                        map(
                            preceded(pair(char('='), space0), template(true)),
                            TlvCheck::Equals,
                        ),
                        map(preceded(pair(tag("len"), space1), len_range), TlvCheck::Len),
                        value(TlvCheck::Present, tag("present")),
                        value(TlvCheck::Absent, tag("absent")),
                        |i| {
                            Err(nom::Err::Failure(LineError {
                                at: i,
                                expected: "expected `= HEX`, `len N`, `present` or `absent`".into(),
                            }))
                        },
                    )),
                ),
                |(path, check)| Check::Tlv { path, check },
            )),
        ),
    ))(i)
}

fn capture_line(i: &str) -> Res<'_, Capture> {
    let source = alt((
        map(
            preceded(pair(tag("tlv"), space1), tlv_path),
            CaptureSource::Tlv,
        ),
        value(CaptureSource::Sw2, tag("sw2")),
        map(
            preceded(
                tag("data"),
                opt(delimited(
                    char('['),
                    pair(number, opt(preceded(tag(".."), opt(number)))),
                    char(']'),
                )),
            ),
            |range| match range {
                None => CaptureSource::Data,
                Some((start, None)) => CaptureSource::DataRange {
                    start,
                    end: Some(start + 1),
                },
                Some((start, Some(end))) => CaptureSource::DataRange { start, end },
            },
        ),
    ));
    preceded(
        pair(tag("capture"), space1),
        cut(map(
            separated_pair(
                expected("a capture name", ident),
                eq,
                expected("data, data[i], data[i..j], sw2 or tlv PATH", source),
            ),
            |(name, source)| Capture {
                name: name.into(),
                source,
            },
        )),
    )(i)
}

fn es10_arg(i: &str) -> Res<'_, (String, String)> {
    separated_pair(
        map(
            take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_'),
            String::from,
        ),
        char('='),
        cut(expected(
            "a value (a word or a \"quoted string\")",
            alt((
                quoted,
                map(take_while1(|c: char| !c.is_whitespace()), String::from),
            )),
        )),
    )(i)
}

/// One element of an `ota` step's `apdus`: `HEX` or `N*HEX` (the APDU N times).
fn ota_apdu(piece: &str) -> Result<(usize, Template), String> {
    let piece = piece.trim();
    let (times, apdu) = match piece.split_once('*') {
        Some((n, rest)) if n.trim().chars().all(|c| c.is_ascii_digit()) => (
            n.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=255).contains(n))
                .ok_or_else(|| format!("{n:?} times: expected 1 to 255"))?,
            rest,
        ),
        _ => (1, piece),
    };
    match all_consuming(template(false))(apdu.trim()) {
        Ok((_, t)) => Ok((times, t)),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            Err(format!("APDU {:?}: {}", apdu.trim(), e.expected))
        }
        Err(nom::Err::Incomplete(_)) => Err(format!("APDU {:?}: incomplete", apdu.trim())),
    }
}

/// `ota key=value …` (see [`ota`]).
fn ota_call(i: &str) -> Res<'_, Action> {
    let start = i;
    let (rest, args) = separated_list1(space1, es10_arg)(i)?;
    let mut map = BTreeMap::new();
    for (k, v) in args {
        map.insert(k, v);
    }
    let fail = |m: String| {
        nom::Err::Failure(LineError {
            at: start,
            expected: format!("expected valid `ota` arguments: {m}"),
        })
    };
    let apdus = match map.remove("apdus") {
        Some(list) => list
            .split(',')
            .map(ota_apdu)
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?,
        None => Vec::new(),
    };
    let call = ota::call_from_args(&map, apdus).map_err(fail)?;
    Ok((rest, Action::Ota(call)))
}

fn action_line(i: &str) -> Res<'_, Action> {
    alt((
        map(
            preceded(pair(tag(">>"), space0), cut(template(false))),
            |t| Action::Apdu {
                command: t,
                follow: true,
            },
        ),
        map(
            preceded(pair(tag(">"), space0), cut(template(false))),
            |t| Action::Apdu {
                command: t,
                follow: false,
            },
        ),
        value(Action::Reset, tag("reset")),
        preceded(pair(tag("ota"), space1), cut(ota_call)),
        preceded(
            pair(tag("es10"), space1),
            cut(|i| {
                let start = i;
                let (i, name) = expected("an ES10 function name", ident)(i)?;
                if es10::function(name).is_none() {
                    return Err(nom::Err::Failure(LineError {
                        at: start,
                        expected: format!(
                            "expected an ES10 function ({}), got {name:?}",
                            es10::FUNCTIONS.join(", ")
                        ),
                    }));
                }
                let mut map = BTreeMap::new();
                if name == "raw" {
                    let (rest, _) = preceded(space1, template(false))(i)?;
                    map.insert(
                        "hex".to_owned(),
                        i[..i.len() - rest.len()].trim().to_owned(),
                    );
                    return Ok((
                        rest,
                        Action::Es10(Es10Call {
                            function: name.to_owned(),
                            args: map,
                        }),
                    ));
                }
                let (i, args) = many0(preceded(space1, es10_arg))(i)?;
                for (k, v) in args {
                    map.insert(k, v);
                }
                if let Err(problem) = es10::check_args(name, &map) {
                    return Err(nom::Err::Failure(LineError {
                        at: start,
                        expected: format!("expected valid arguments: {problem}"),
                    }));
                }
                Ok((
                    i,
                    Action::Es10(Es10Call {
                        function: name.to_owned(),
                        args: map,
                    }),
                ))
            }),
        ),
    ))(i)
}

fn line(i: &str) -> Res<'_, Line> {
    all_consuming(terminated(
        expected(
            "a line of a case file: `case ID {`, `}`, `title = …`, `spec = …`, \
             `requires = […]`, `> APDU`, `>> APDU`, `es10 …`, `ota …`, `reset`, `sw …`, \
             `data …`, `tlv …`, `por …`, `sms N` or `capture …`",
            alt((
                map(preceded(pair(tag("area"), eq), cut(quoted)), Line::Area),
                map(
                    preceded(pair(tag("requires"), eq), cut(string_list)),
                    Line::Requires,
                ),
                map(preceded(pair(tag("title"), eq), cut(quoted)), Line::Title),
                map(preceded(pair(tag("spec"), eq), cut(quoted)), Line::Spec),
                map(
                    delimited(
                        pair(tag("case"), space1),
                        cut(expected(
                            "a case identifier like TC_UICC_SELECT.MF",
                            case_id,
                        )),
                        cut(pair(space0, expected("`{`", char('{')))),
                    ),
                    |id| Line::CaseStart(id.to_owned()),
                ),
                value(Line::CaseEnd, char('}')),
                map(capture_line, Line::Capture),
                map(check_line, Line::Check),
                map(action_line, Line::Action),
            )),
        ),
        space0,
    ))(i)
}

/// The line without its comment (a `#` outside double quotes starts one).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    for (n, c) in line.char_indices() {
        match c {
            '\\' if in_string && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !escaped => in_string = !in_string,
            '#' if !in_string => return &line[..n],
            _ => {}
        }
        escaped = false;
    }
    line
}

/// Parses one case file's text; `file` names it in errors and gives the default area.
pub fn parse_file(file: &Path, text: &str) -> Result<CaseFile, CaseFileError> {
    let err = |line: usize, column: usize, message: String| CaseFileError {
        file: file.to_path_buf(),
        line,
        column,
        message,
    };
    let mut area = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file_requires: Vec<String> = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut open: Option<Case> = None;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let content = strip_comment(raw);
        let indent = content.len() - content.trim_start().len();
        let trimmed = content.trim();
        if trimmed.is_empty() {
            continue;
        }
        let parsed = match line(trimmed) {
            Ok((_, l)) => l,
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                let column = indent + trimmed.len() - e.at.len() + 1;
                let found = e.at.chars().take(20).collect::<String>();
                let found = if found.is_empty() {
                    "the end of the line".to_owned()
                } else {
                    format!("{found:?}")
                };
                return Err(err(
                    line_no,
                    column,
                    format!("{}, found {found}", e.expected),
                ));
            }
            Err(nom::Err::Incomplete(_)) => {
                return Err(err(line_no, indent + 1, "incomplete line".into()));
            }
        };
        let col = indent + 1;
        match (&mut open, parsed) {
            (None, Line::Area(a)) => area = a,
            (None, Line::Requires(r)) => file_requires.extend(r),
            (None, Line::CaseStart(id)) => {
                open = Some(Case {
                    id,
                    title: String::new(),
                    spec: String::new(),
                    requires: Vec::new(),
                    steps: Vec::new(),
                    area: String::new(),
                    file: file.to_path_buf(),
                    line: line_no,
                })
            }
            (None, _) => {
                return Err(err(
                    line_no,
                    col,
                    "expected `area = …`, `requires = […]` or `case ID {` outside a case".into(),
                ))
            }
            (Some(_), Line::CaseEnd) => {
                let Some(mut case) = open.take() else {
                    continue;
                };
                let end_err = |m: String| err(line_no, col, format!("case {}: {m}", case.id));
                if case.spec.is_empty() {
                    return Err(end_err(
                        "has no `spec = \"…\"`: every case cites its clause".into(),
                    ));
                }
                if case.steps.is_empty() {
                    return Err(end_err("has no steps".into()));
                }
                if let Some(s) = case
                    .steps
                    .iter()
                    .find(|s| !matches!(s.action, Action::Reset) && s.checks.is_empty())
                {
                    return Err(err(
                        s.line,
                        1,
                        format!(
                            "case {}: this step checks nothing; add `sw …`, `data …` or `tlv …` \
                             (or `sw any` if the answer does not matter)",
                            case.id
                        ),
                    ));
                }
                if let Some(s) = case.steps.iter().find(|s| {
                    !matches!(s.action, Action::Ota(_))
                        && s.checks.iter().any(|c| matches!(c, Check::Ota(_)))
                }) {
                    return Err(err(
                        s.line,
                        1,
                        format!(
                            "case {}: `por` and `sms` check an `ota` step; this step is not one",
                            case.id
                        ),
                    ));
                }
                case.area = area.clone();
                let mut requires = file_requires.clone();
                requires.extend(std::mem::take(&mut case.requires));
                // A packet secured with a keyset needs the card's.
                requires.extend(case.steps.iter().filter_map(|s| match &s.action {
                    Action::Ota(call) => Some(ota::keyset_capability(call.keyset)),
                    _ => None,
                }));
                let mut seen = HashSet::new();
                requires.retain(|r| seen.insert(r.clone()));
                case.requires = requires;
                cases.push(case);
            }
            (Some(c), Line::Title(t)) => c.title = t,
            (Some(c), Line::Spec(s)) => c.spec = s,
            (Some(c), Line::Requires(r)) => c.requires.extend(r),
            (Some(c), Line::Action(action)) => c.steps.push(Step {
                line: line_no,
                action,
                checks: Vec::new(),
                captures: Vec::new(),
            }),
            (Some(c), Line::Check(check)) => match c.steps.last_mut() {
                Some(s) if !matches!(s.action, Action::Reset) => s.checks.push(check),
                _ => {
                    return Err(err(
                        line_no,
                        col,
                        "a check needs a `>`, `>>`, `es10` or `ota` step before it".into(),
                    ))
                }
            },
            (Some(c), Line::Capture(cap)) => match c.steps.last_mut() {
                Some(s) if !matches!(s.action, Action::Reset) => s.captures.push(cap),
                _ => {
                    return Err(err(
                        line_no,
                        col,
                        "a capture needs a `>`, `>>`, `es10` or `ota` step before it".into(),
                    ))
                }
            },
            (Some(c), Line::CaseStart(_)) => {
                return Err(err(
                    line_no,
                    col,
                    format!("case {} (line {}) is not closed with `}}`", c.id, c.line),
                ))
            }
            (Some(_), Line::Area(_)) => {
                return Err(err(
                    line_no,
                    col,
                    "`area` belongs at the top of the file".into(),
                ))
            }
        }
    }
    if let Some(c) = open {
        return Err(err(
            c.line,
            1,
            format!("case {} is not closed with `}}`", c.id),
        ));
    }
    Ok(CaseFile {
        path: file.to_path_buf(),
        area,
        cases,
    })
}

/// Reads every `*.cases` file in `dir` (sorted by name), or the one file `dir` names.
/// Case identifiers must be unique across them.
pub fn load(dir: &Path) -> Result<Vec<CaseFile>, anyhow::Error> {
    use anyhow::Context as _;
    let mut paths: Vec<PathBuf> = if dir.is_dir() {
        std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "cases"))
            .collect()
    } else {
        vec![dir.to_path_buf()]
    };
    paths.sort();
    if paths.is_empty() {
        anyhow::bail!(
            "no *.cases files in {} (give the directory of the case files, e.g. vectors/conformance)",
            dir.display()
        );
    }
    let mut files = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file = parse_file(&path, &text)?;
        for c in &file.cases {
            if !seen.insert(c.id.clone()) {
                return Err(CaseFileError {
                    file: path.clone(),
                    line: c.line,
                    column: 1,
                    message: format!("case {} is defined twice; identifiers must be unique", c.id),
                }
                .into());
            }
        }
        files.push(file);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse(text: &str) -> Result<CaseFile, CaseFileError> {
        parse_file(Path::new("t/uicc.cases"), text)
    }

    const GOOD: &str = r#"
# a comment
requires = ["uicc"]
case TC_X.One {   # trailing comment
    title = "one # not a comment"
    spec = "TS 102 221 §11.1.1"
    requires = ["usim"]
    > 00 A4 00 0C 02 3F00
    sw 9000 61xx
    >> 00A4000402 3F00
    data = 62 * 83023F00 *
    tlv 62/83 = 3F00
    tlv 62/C6[1] len 2..
    data mask F0 = 60
    capture FID = tlv 62/83
    > 00 70 00 00 01
    data len 1
    capture CH = data[0]
    > $cla(CH) A4 00 0C 02 $FID
    sw any
    es10 GetProfilesInfo iccid=$ICCID tags="5A 9F70"
    tlv BF2D/A0/E3/5A present
    reset
}
"#;

    #[test]
    fn reads_a_case_with_every_kind_of_line() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.area, "uicc");
        let c = &f.cases[0];
        assert_eq!(c.id, "TC_X.One");
        assert_eq!(c.title, "one # not a comment");
        assert_eq!(c.requires, vec!["uicc", "usim"]);
        assert_eq!(c.steps.len(), 6);
        assert_eq!(c.steps[0].line, 8);
        assert_eq!(
            c.steps[0].action,
            Action::Apdu {
                command: Template(vec![Part::Bytes(vec![0, 0xA4, 0, 0x0C, 2, 0x3F, 0])]),
                follow: false
            }
        );
        assert_eq!(
            c.steps[0].checks,
            vec![Check::Sw(vec![
                SwPattern {
                    value: 0x9000,
                    mask: 0xFFFF
                },
                SwPattern {
                    value: 0x6100,
                    mask: 0xFF00
                }
            ])]
        );
        assert_eq!(c.steps[1].checks.len(), 4);
        assert_eq!(
            c.steps[1].captures,
            vec![Capture {
                name: "FID".into(),
                source: CaptureSource::Tlv(TlvPath(vec![(0x62, 0), (0x83, 0)]))
            }]
        );
        assert_eq!(
            c.steps[3].action,
            Action::Apdu {
                command: Template(vec![
                    Part::Cla {
                        var: "CH".into(),
                        proprietary: false
                    },
                    Part::Bytes(vec![0xA4, 0, 0x0C, 2]),
                    Part::Var("FID".into())
                ]),
                follow: false
            }
        );
        let Action::Es10(call) = &c.steps[4].action else {
            panic!("es10 step")
        };
        assert_eq!(call.function, "GetProfilesInfo");
        assert_eq!(call.args["iccid"], "$ICCID");
        assert_eq!(call.args["tags"], "5A 9F70");
        assert_eq!(c.steps[5].action, Action::Reset);
    }

    #[test]
    fn reads_an_ota_step_and_requires_its_keyset() {
        let f = parse(
            "case TC_OTA.A {\n spec = \"TS 102 225 §5.1\"\n requires = [\"usim\"]\n \
             ota tar=B00011 keyset=3 format=expanded apdus=\"00A4000C 02 6F46, 2*00B0000001\"\n \
             por ok\n por executed 3\n sms 1\n sw 9000\n \
             ota tar=B00010 keyset=aes spi=cc+ciphering+counter-higher+por counter=last+1 \
             kid_key=00112233 apdus=\"00A4000C 02 $FID\"\n por cntr-high\n}",
        )
        .unwrap();
        let c = &f.cases[0];
        assert_eq!(c.requires, vec!["usim", "ota-keyset-3", "ota-keyset-aes"]);
        let Action::Ota(a) = &c.steps[0].action else {
            panic!("ota step")
        };
        assert_eq!(
            (a.tar, a.keyset),
            ([0xB0, 0x00, 0x11], super::super::case::KeysetRef::Index(3))
        );
        assert_eq!(a.spi, crate::ota::default_spi());
        assert_eq!(a.counter, super::super::case::CounterChoice::Value(0));
        assert_eq!(
            a.format,
            simlab_emulator::ota::ts_102_226::ScriptFormat::Expanded
        );
        assert_eq!(
            a.apdus,
            vec![
                (
                    1,
                    Template(vec![Part::Bytes(hex::decode("00A4000C026F46").unwrap())])
                ),
                (
                    2,
                    Template(vec![Part::Bytes(hex::decode("00B0000001").unwrap())])
                ),
            ]
        );
        assert_eq!(
            c.steps[0].checks,
            vec![
                Check::Ota(OtaCheck::Status(
                    simlab_emulator::ota::ts_102_225::PorStatus::Ok
                )),
                Check::Ota(OtaCheck::Executed(3)),
                Check::Ota(OtaCheck::Messages(1)),
                Check::Sw(vec![SwPattern {
                    value: 0x9000,
                    mask: 0xFFFF
                }]),
            ]
        );
        let Action::Ota(b) = &c.steps[1].action else {
            panic!("ota step")
        };
        assert_eq!(b.counter, super::super::case::CounterChoice::Last(1));
        assert_eq!(b.kid_key, Some(vec![0x00, 0x11, 0x22, 0x33]));
        assert_eq!(b.apdus[0].1 .0.last(), Some(&Part::Var("FID".into())));
    }

    #[rstest]
    #[case::ota_no_tar(
        "case A {\n spec = \"s\"\n ota keyset=3 apdus=\"00A4\"\n por ok\n}",
        3,
        6,
        "needs `tar=`"
    )]
    #[case::ota_unknown_argument(
        "case A {\n spec = \"s\"\n ota tar=B00010 keyset=3 kid=1 apdus=\"00A4\"\n por ok\n}",
        3,
        6,
        "got `kid`"
    )]
    #[case::ota_bad_apdu(
        "case A {\n spec = \"s\"\n ota tar=B00010 keyset=3 apdus=\"00A4, 0\"\n por ok\n}",
        3,
        6,
        "APDU \"0\""
    )]
    #[case::ota_bad_spi(
        "case A {\n spec = \"s\"\n ota tar=B00010 keyset=3 spi=cc+x apdus=\"00A4\"\n por ok\n}",
        3,
        6,
        "unknown word \"x\""
    )]
    #[case::ota_keyset_out_of_range(
        "case A {\n spec = \"s\"\n ota tar=B00010 keyset=16 apdus=\"00A4\"\n por ok\n}",
        3,
        6,
        "1 to 15"
    )]
    #[case::ota_bad_por(
        "case A {\n spec = \"s\"\n ota tar=B00010 keyset=3 apdus=\"00A4\"\n por fine\n}",
        4,
        6,
        "PoR status"
    )]
    #[case::por_after_apdu(
        "case A {\n spec = \"s\"\n > 00A4000C023F00\n por ok\n}",
        3,
        1,
        "check an `ota` step"
    )]
    #[case::ota_without_check(
        "case A {\n spec = \"s\"\n ota tar=B00010 keyset=3 apdus=\"00A4\"\n}",
        3,
        1,
        "checks nothing"
    )]
    #[case::bad_hex(
        "case A {\n spec = \"s\"\n > 00 A4 0\n sw 9000\n}",
        3,
        10,
        "expected hex"
    )]
    #[case::wildcard_in_command("case A {\n spec = \"s\"\n > 00 *\n}", 3, 7, "`*` only")]
    #[case::unknown_es10("case A {\n spec = \"s\"\n es10 GetEIDD\n}", 3, 7, "ES10 function")]
    #[case::no_spec("case A {\n > 00A4000C023F00\n sw 9000\n}", 4, 1, "cites its clause")]
    #[case::no_check(
        "case A {\n spec = \"s\"\n > 00A4000C023F00\n}",
        3,
        1,
        "checks nothing"
    )]
    #[case::unclosed("case A {\n spec = \"s\"\n", 1, 1, "not closed")]
    #[case::check_first("case A {\n spec = \"s\"\n sw 9000\n}", 3, 2, "needs a")]
    #[case::bad_sw("case A {\n spec = \"s\"\n > 00\n sw 90\n}", 4, 5, "status words")]
    #[case::bad_path(
        "case A {\n spec = \"s\"\n > 00\n tlv 6/83 present\n}",
        4,
        6,
        "TLV path"
    )]
    #[case::unterminated_string("area = \"uicc", 1, 13, "closing \"")]
    #[case::unknown_keyword("hello", 1, 1, "expected a line of a case file")]
    #[case::step_outside_a_case("> 00A4", 1, 1, "outside a case")]
    #[case::bad_capture(
        "case A {\n spec = \"s\"\n > 00\n sw any\n capture X = sw\n}",
        5,
        14,
        "data"
    )]
    fn errors_name_line_and_column(
        #[case] text: &str,
        #[case] line: usize,
        #[case] column: usize,
        #[case] says: &str,
    ) {
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert!(e.message.contains(says), "{e}");
        assert!(e
            .to_string()
            .starts_with(&format!("t/uicc.cases:{line}:{column}: ")));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "(?s).{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_case_shaped_text(
            lines in proptest::collection::vec(
                "(case [A-Z]{1,3} \\{|\\}|spec = \"[a-z]{0,3}\"|> [0-9A-F $*()a-z]{0,12}|sw [0-9a-fx ]{0,9}|tlv [0-9A-F/\\[\\]]{0,10} (present|len [0-9.]{0,4})|capture [A-Z]{1,2} = (data|tlv)[\\[\\]0-9.]{0,5}|es10 [A-Za-z]{0,12}( [a-z]{1,5}=[^ ]{0,5})?|ota( [a-z_]{1,9}=[^ ]{0,9})*( apdus=\"[0-9A-F*, $]{0,12}\")?|por [a-z0-9 -]{0,12}|sms [0-9]{0,3})",
                0..12,
            )
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }
}
