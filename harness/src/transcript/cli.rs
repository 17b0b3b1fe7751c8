//! `simlab transcript normalise FILE` and `simlab transcript diff A B`: download transcripts
//! (as `simlab lpa download --transcript FILE` writes them) made comparable across runs.

use super::document::{labelled_lines, parse, unwrap_lines};
use crate::output::{CodedError, Output};
use clap::Subcommand;
use similar::{ChangeTag, TextDiff};
use std::path::{Path, PathBuf};

/// Context lines around each change in `diff`'s output.
const DIFF_CONTEXT: usize = 3;

#[derive(Subcommand, Debug)]
pub enum TranscriptCommand {
    /// Print a raw transcript with every per-session random value (transaction ID,
    /// challenges, signatures, one-time keys, encrypted package, SM-DP+ port) replaced by a
    /// named placeholder and long deterministic values abbreviated with their SHA-256.
    Normalise {
        /// A raw transcript file.
        file: PathBuf,
    },
    /// Compare two transcripts after normalising them (normalised ones are compared as they
    /// are); exits non-zero when they differ, printing a unified diff.
    Diff {
        /// The expected transcript (raw or normalised).
        a: PathBuf,
        /// The transcript to check (raw or normalised).
        b: PathBuf,
    },
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        CodedError::new(
            "usage",
            format!("reading the transcript {}: {e}", path.display()),
        )
        .into()
    })
}

/// The normalised, labelled lines of a raw transcript file.
fn normalised(path: &Path) -> anyhow::Result<Vec<String>> {
    let entries = parse(&read(path)?)
        .map_err(|e| CodedError::new("bad-transcript", format!("{}: {e}", path.display())))?;
    Ok(labelled_lines(&entries, None, true))
}

/// A transcript's normalised lines: normalised now if it is raw, as they are if it is
/// normalised already (placeholders in it).
fn comparable(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = read(path)?;
    if parse(&text).is_ok() {
        return normalised(path);
    }
    let lines = unwrap_lines(&text);
    if lines
        .iter()
        .any(|l| l.contains("<TXID>") || l.contains('…'))
    {
        return Ok(lines);
    }
    // Neither: report why it does not parse as a raw transcript.
    normalised(path)
}

/// Runs a `simlab transcript` command.
pub fn run(cmd: TranscriptCommand, out: Output) -> anyhow::Result<()> {
    match cmd {
        TranscriptCommand::Normalise { file } => {
            let lines = normalised(&file)?;
            out.result(&serde_json::json!({ "lines": lines }), || {
                let mut text = String::new();
                for l in &lines {
                    for part in super::wrap(l) {
                        text.push_str(&part);
                        text.push('\n');
                    }
                }
                text
            })
        }
        TranscriptCommand::Diff { a, b } => {
            let (left, right) = (comparable(&a)?, comparable(&b)?);
            let (left, right) = (left.join("\n") + "\n", right.join("\n") + "\n");
            let diff = TextDiff::from_lines(&left, &right);
            let changed = diff
                .iter_all_changes()
                .filter(|c| c.tag() != ChangeTag::Equal)
                .count();
            if changed == 0 {
                return out.result(
                    &serde_json::json!({"identical": true, "lines": left.lines().count()}),
                    || {
                        format!(
                            "{} and {} are the same after normalising",
                            a.display(),
                            b.display()
                        )
                    },
                );
            }
            let unified = diff
                .unified_diff()
                .context_radius(DIFF_CONTEXT)
                .header(&a.display().to_string(), &b.display().to_string())
                .to_string();
            let summary = format!(
                "{} and {} differ after normalising ({changed} lines)",
                a.display(),
                b.display()
            );
            let message = if out.is_json() {
                format!("{summary}:\n{unified}")
            } else {
                // The diff is the output; the error line only says so.
                out.progress(unified.trim_end());
                summary
            };
            Err(CodedError::new("transcripts-differ", message).into())
        }
    }
}
