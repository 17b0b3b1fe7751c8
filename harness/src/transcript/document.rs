//! Transcripts as files: the lines of [`super::render`] or [`super::normalise`] with a step
//! label before each ES10 function (SGP.22 §5.7, named after the request's tag) and each ES9+
//! function (§5.6, named after its path), the time of each step in raw transcripts, and long
//! lines wrapped. [`parse`] reads a raw transcript file back into entries, so a recorded
//! download can be normalised or compared later (`simlab transcript normalise|diff`).
//!
//! File format, on top of the line format of the module above:
//! - `# <time> <function>` (raw) or `# <function>` (normalised): a step label; every line
//!   starting with `#` is a comment to [`parse`].
//! - A line longer than [`WRAP_WIDTH`] continues on lines starting with two spaces; joining
//!   them (dropping the two spaces) gives the line back exactly.

use super::{
    normalise, render, Entry, BASE64_DER_FIELDS, ES9P_PATH_PREFIX, FIELD_EUICC_CHALLENGE,
    FIELD_TRANSACTION_ID, INS_STORE_DATA,
};
use base64::Engine as _;
use serde_json::Value;
use std::time::SystemTime;
use thiserror::Error;

/// Lines longer than this many characters are wrapped.
pub const WRAP_WIDTH: usize = 100;
/// How a continuation line starts.
const CONTINUATION: &str = "  ";

/// SGP.22 §5.7 ES10 functions by the tag of their request (the first STORE DATA block).
const ES10_FUNCTIONS: &[(u16, &str)] = &[
    (0xBF3C, "ES10a.GetEuiccConfiguredAddresses"),
    (0xBF3F, "ES10a.SetDefaultDpAddress"),
    (0xBF21, "ES10b.PrepareDownload"),
    (0xBF36, "ES10b.LoadBoundProfilePackage"),
    (0xBF2E, "ES10b.GetEUICCChallenge"),
    (0xBF20, "ES10b.GetEUICCInfo1"),
    (0xBF22, "ES10b.GetEUICCInfo2"),
    (0xBF28, "ES10b.ListNotification"),
    (0xBF2B, "ES10b.RetrieveNotificationsList"),
    (0xBF30, "ES10b.RemoveNotificationFromList"),
    (0xBF35, "ES10b.LoadCRL"),
    (0xBF38, "ES10b.AuthenticateServer"),
    (0xBF41, "ES10b.CancelSession"),
    (0xBF43, "ES10b.GetRAT"),
    (0xBF2D, "ES10c.GetProfilesInfo"),
    (0xBF31, "ES10c.EnableProfile"),
    (0xBF32, "ES10c.DisableProfile"),
    (0xBF33, "ES10c.DeleteProfile"),
    (0xBF34, "ES10c.eUICCMemoryReset"),
    (0xBF3E, "ES10c.GetEID"),
    (0xBF29, "ES10c.SetNickname"),
];

/// The function an entry starts, if it starts one: the first STORE DATA block (P2 = 0) of an
/// ES10 request, or an ES9+ request.
fn step_label(entry: &Entry) -> Option<String> {
    match entry {
        Entry::Apdu { command, .. } | Entry::ApduFailed { command, .. } => {
            let [_, ins, _, 0x00, _, t1, t2, ..] = command[..] else {
                return None;
            };
            if ins != INS_STORE_DATA {
                return None;
            }
            let tag = u16::from_be_bytes([t1, t2]);
            ES10_FUNCTIONS
                .iter()
                .find(|(t, _)| *t == tag)
                .map(|(_, name)| (*name).to_owned())
        }
        Entry::HttpRequest { path, .. } => Some(format!(
            "ES9+.{}",
            path.strip_prefix(ES9P_PATH_PREFIX).unwrap_or(path)
        )),
        _ => None,
    }
}

/// Lines each entry renders to (see `Renderer::lines`).
fn line_count(entry: &Entry) -> usize {
    match entry {
        Entry::Apdu { .. } | Entry::ApduFailed { .. } => 2,
        _ => 1,
    }
}

/// The logical lines of a transcript file: step labels (with `times`, when given) and the
/// rendered (or, with `normalised`, normalised) lines, unwrapped.
pub fn labelled_lines(
    entries: &[Entry],
    times: Option<&[SystemTime]>,
    normalised: bool,
) -> Vec<String> {
    let lines = if normalised {
        normalise(entries)
    } else {
        render(entries)
    };
    let mut out = Vec::with_capacity(lines.len() + entries.len());
    let mut rest = lines.into_iter();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(label) = step_label(entry) {
            match times.and_then(|t| t.get(i)) {
                Some(at) => out.push(format!("# {} {label}", timestamp(*at))),
                None => out.push(format!("# {label}")),
            }
        }
        out.extend(rest.by_ref().take(line_count(entry)));
    }
    out.extend(rest);
    out
}

/// A transcript file: [`labelled_lines`], each wrapped at [`WRAP_WIDTH`].
pub fn document(entries: &[Entry], times: Option<&[SystemTime]>, normalised: bool) -> String {
    let mut text = String::new();
    for line in labelled_lines(entries, times, normalised) {
        for part in wrap(&line) {
            text.push_str(&part);
            text.push('\n');
        }
    }
    text
}

/// One logical line as file lines, broken before a space where one is near the end of the
/// width (else inside a long word). A break never leaves a space at the end of a line, so
/// editors that trim trailing spaces lose nothing.
pub fn wrap(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WRAP_WIDTH {
        return vec![line.to_owned()];
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut width = WRAP_WIDTH;
    while chars.len() - start > width {
        let mut end = start + width;
        // Break before a space in the second half of the window when there is one (the space
        // starts the continuation), else inside the word.
        if let Some(space) = (start + width / 2..end).rev().find(|&i| chars[i] == ' ') {
            end = space;
        }
        while end > start + 1 && chars[end - 1] == ' ' {
            end -= 1;
        }
        let piece: String = chars[start..end].iter().collect();
        out.push(if start == 0 {
            piece
        } else {
            format!("{CONTINUATION}{piece}")
        });
        start = end;
        width = WRAP_WIDTH - CONTINUATION.len();
    }
    let piece: String = chars[start..].iter().collect();
    out.push(format!("{CONTINUATION}{piece}"));
    out
}

/// The logical lines of a file: continuations joined, blank lines dropped.
pub fn unwrap_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        match (line.strip_prefix(CONTINUATION), out.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ if line.trim().is_empty() => {}
            _ => out.push(line.to_owned()),
        }
    }
    out
}

/// What is wrong with a transcript file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: String },
}

/// A raw transcript file (as `simlab lpa download --transcript` writes it) back into entries.
/// A normalised transcript cannot be read back: its random values are gone.
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut entries = Vec::new();
    let mut pending_command: Option<(usize, Vec<u8>)> = None;
    for (n, line) in unwrap_lines(text).iter().enumerate() {
        let line_no = n + 1;
        let bad = |problem: String| ParseError::Line {
            line: line_no,
            problem,
        };
        if line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        if let Some((_, command)) = pending_command.take() {
            match word {
                "<" => {
                    entries.push(Entry::Apdu {
                        command,
                        response: hex_words(rest).map_err(bad)?,
                    });
                    continue;
                }
                "ERR" => {
                    entries.push(Entry::ApduFailed {
                        command,
                        error: rest.to_owned(),
                    });
                    continue;
                }
                _ => return Err(bad("a '>' line is not followed by '<' or 'ERR'".into())),
            }
        }
        match word {
            ">" => pending_command = Some((line_no, hex_words(rest).map_err(bad)?)),
            "RESET" => entries.push(Entry::Reset {
                atr: hex_words(rest).map_err(bad)?,
            }),
            "POST" => {
                let (path, body) = rest
                    .split_once(' ')
                    .ok_or_else(|| bad("POST without a JSON body".into()))?;
                entries.push(Entry::HttpRequest {
                    path: path.to_owned(),
                    body: json_body(body).map_err(bad)?,
                });
            }
            "ERR" => entries.push(Entry::HttpFailed {
                error: rest.to_owned(),
            }),
            status if status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()) => {
                let status = status.parse().map_err(|_| bad("bad HTTP status".into()))?;
                let body = if rest.is_empty() {
                    None
                } else {
                    Some(json_body(rest).map_err(bad)?)
                };
                entries.push(Entry::HttpResponse { status, body });
            }
            other => {
                return Err(bad(format!(
                    "{other:?} starts no transcript line ('>', '<', POST, an HTTP status, ERR, \
                     RESET or '#')"
                )))
            }
        }
    }
    if let Some((line, _)) = pending_command {
        return Err(ParseError::Line {
            line,
            problem: "the last '>' line has no answer".into(),
        });
    }
    Ok(entries)
}

fn hex_words(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).map_err(|e| {
        if clean.contains('<') || clean.contains('…') {
            "holds placeholders: this transcript is normalised already, only raw ones \
             (`simlab lpa download --transcript`) can be read back"
                .to_owned()
        } else {
            format!("{text:?} is not hex ({e})")
        }
    })
}

/// The JSON of a request or answer as it was on the wire: the renderer shows base64 fields
/// decoded as hex; they go back to base64 here.
fn json_body(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("body is not JSON ({e})"))?;
    unrender(v, None)
}

fn unrender(v: Value, key: Option<&str>) -> Result<Value, String> {
    Ok(match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = unrender(v, Some(&k))?;
                    Ok((k, v))
                })
                .collect::<Result<_, String>>()?,
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| unrender(i, None))
                .collect::<Result<_, _>>()?,
        ),
        Value::String(s) => match key {
            Some(FIELD_TRANSACTION_ID) => Value::String(s.replace(' ', "")),
            Some(k) if k == FIELD_EUICC_CHALLENGE || BASE64_DER_FIELDS.contains(&k) => {
                let bytes = hex_words(&s).map_err(|e| format!("field {k}: {e}"))?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            _ => Value::String(s),
        },
        other => other,
    })
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` (UTC).
fn timestamp(at: SystemTime) -> String {
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    let seconds = crate::smdp::es2::timestamp(at);
    format!("{}.{millis:03}Z", seconds.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrapping_keeps_every_character_and_no_trailing_space() {
        let line = format!("> 81E21100 78 {} {} 9000", "AB".repeat(80), "C ".repeat(70));
        let parts = wrap(&line);
        assert!(parts.len() > 2);
        for p in &parts {
            assert!(p.chars().count() <= WRAP_WIDTH, "{p}");
            assert!(!p.ends_with(' '), "{p:?}");
        }
        assert_eq!(unwrap_lines(&parts.join("\n")), vec![line]);
    }

    proptest! {
        #[test]
        fn wrap_then_unwrap_gives_the_line_back(line in "[>#A-F0-9 ]{1,400}") {
            prop_assume!(!line.trim().is_empty() && !line.starts_with(' '));
            let text = wrap(&line).join("\n");
            prop_assert_eq!(unwrap_lines(&text), vec![line]);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "(?s).{0,300}") {
            let _ = parse(&text);
        }
    }
}
