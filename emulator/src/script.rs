//! APDU scripts: one exchange a line, `> C-APDU` then `< expected R-APDU`, hex with spaces
//! anywhere (so fields can be spaced at their boundaries), `*` in an expectation matching any
//! bytes, `#` starting a comment. The format of the card's tests, the end-to-end lanes and
//! conformance cases; running one needs only a function from command to answer.

use thiserror::Error;

/// One exchange: the command, and the pattern its answer must match (if given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Line number of the `>` line (1-based).
    pub line: usize,
    pub command: Vec<u8>,
    /// Upper-case hex with `*` wildcards, whitespace removed.
    pub expect: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptError {
    #[error("line {line}: {problem}")]
    Syntax { line: usize, problem: String },
    #[error("line {line}: > {command}\n  expected < {expected}\n  got      < {got}")]
    Mismatch {
        line: usize,
        command: String,
        expected: String,
        got: String,
    },
}

fn compact_upper(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

/// Reads a script into steps.
pub fn parse(text: &str) -> Result<Vec<Step>, ScriptError> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let syntax = |problem: String| ScriptError::Syntax { line, problem };
        if let Some(cmd) = content.strip_prefix('>') {
            let command = hex::decode(compact_upper(cmd))
                .map_err(|e| syntax(format!("command is not hex ({e})")))?;
            steps.push(Step {
                line,
                command,
                expect: None,
            });
        } else if let Some(want) = content.strip_prefix('<') {
            let want = compact_upper(want);
            if want.chars().any(|c| c != '*' && !c.is_ascii_hexdigit()) {
                return Err(syntax(format!(
                    "expected answer {want:?} is not hex with * wildcards"
                )));
            }
            match steps.last_mut() {
                Some(step @ Step { expect: None, .. }) => step.expect = Some(want),
                _ => return Err(syntax("'<' line without a '>' line before it".into())),
            }
        } else {
            return Err(syntax(format!(
                "{content:?} starts with neither '>' nor '<'"
            )));
        }
    }
    Ok(steps)
}

/// Whether `got` (upper-case hex) matches `pattern` (upper-case hex, `*` = any bytes).
pub fn matches(pattern: &str, got: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    let Some(mut rest) = got.strip_prefix(first) else {
        return false;
    };
    if parts.len() == 1 {
        return rest.is_empty();
    }
    for part in parts.iter().skip(1).take(parts.len() - 2) {
        let Some(pos) = rest.find(part) else {
            return false;
        };
        rest = rest.get(pos + part.len()..).unwrap_or_default();
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Runs a script through `transmit`; returns how many exchanges ran, or the first mismatch.
pub fn run(transmit: &mut dyn FnMut(&[u8]) -> Vec<u8>, text: &str) -> Result<usize, ScriptError> {
    let steps = parse(text)?;
    for step in &steps {
        let got = hex::encode_upper(transmit(&step.command));
        if let Some(expected) = &step.expect {
            if !matches(expected, &got) {
                return Err(ScriptError::Mismatch {
                    line: step.line,
                    command: hex::encode_upper(&step.command),
                    expected: expected.clone(),
                    got,
                });
            }
        }
    }
    Ok(steps.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("9000", "9000", true)]
    #[case("9000", "6A82", false)]
    #[case("61*", "6114", true)]
    #[case("62*83023F00*9000", "62188202782183023F00A5039000", true)]
    #[case("62*83023F00*9000", "62188202782183022F00A5039000", false)]
    #[case("*9000", "9000", true)]
    #[case("AB*AB", "AB", false)]
    #[case("*", "", true)]
    fn wildcards_match_any_bytes(#[case] pattern: &str, #[case] got: &str, #[case] want: bool) {
        assert_eq!(matches(pattern, got), want, "{pattern} vs {got}");
    }

    #[test]
    fn runs_and_reports_the_first_mismatch_with_its_line() {
        let script = "# select\n> 00 A4 00 0C 02 3F00\n< 9000\n\n> 00 B0 00 00 01\n< 6986";
        let mut card = |apdu: &[u8]| {
            if apdu[1] == 0xA4 {
                vec![0x90, 0x00]
            } else {
                vec![0x6A, 0x82]
            }
        };
        let err = run(&mut card, script).unwrap_err();
        assert_eq!(
            err,
            ScriptError::Mismatch {
                line: 5,
                command: "00B0000001".into(),
                expected: "6986".into(),
                got: "6A82".into()
            }
        );
    }

    #[rstest]
    #[case::answer_first("< 9000")]
    #[case::two_answers("> 00\n< 9000\n< 9000")]
    #[case::not_hex("> 00 ZZ")]
    #[case::bad_pattern("> 00\n< 90 0G")]
    #[case::no_marker("00A4")]
    fn rejects_malformed_scripts(#[case] text: &str) {
        assert!(
            matches!(parse(text), Err(ScriptError::Syntax { .. })),
            "{text}"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}", got in "[0-9A-F*]{0,40}") {
            let _ = parse(&text);
            let _ = matches(&got, "9000");
        }
    }
}
