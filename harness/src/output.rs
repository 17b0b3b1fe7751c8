//! The output contract every `simlab` command keeps, so labs can script against it.
//!
//! - Text for people by default; with `--json` (a global flag, accepted anywhere on the line)
//!   stdout holds exactly one JSON document, the envelope:
//!   - success: `{"ok": true, "result": …}`
//!   - failure: `{"ok": false, "error": {"code": …, "message": …, "subjectCode": …,
//!     "reasonCode": …}}` (the last two only for SGP.22 errors), and a non-zero exit code.
//! - Keys are camelCase everywhere (the SGP.22/ASN.1 names, as the ecosystem's LPA uses).
//! - Progress for people goes to stderr whenever stdout carries JSON.
//!
//! Commands build a serialisable result and a text rendering, and hand both to
//! [`Output::result`]; errors travel as `anyhow::Error` up to `main`, which prints them with
//! [`Output::error`]. An error that carries a stable code is a [`CodedError`] somewhere in the
//! chain; others get the code `"error"`.

use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;
use std::io::{self, Write as _};

/// How one command prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn text() -> Self {
        Self { json: false }
    }

    pub fn is_json(self) -> bool {
        self.json
    }

    /// Prints a command's result: `text()` for people, or the success envelope with `result`.
    pub fn result<T: Serialize + ?Sized>(
        self,
        result: &T,
        text: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            let envelope = json!({ "ok": true, "result": result });
            print_stdout(&format!("{}\n", serde_json::to_string_pretty(&envelope)?));
        } else {
            let mut text = text();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            print_stdout(&text);
        }
        Ok(())
    }

    /// A line of progress: stdout for people, stderr when stdout carries the JSON envelope.
    pub fn progress(self, line: impl fmt::Display) {
        if self.json {
            eprintln!("{line}");
        } else {
            print_stdout(&format!("{line}\n"));
        }
    }

    /// Prints a failure: `simlab: error: …` on stderr, plus the failure envelope on stdout
    /// with `--json`.
    pub fn error(self, error: &anyhow::Error) {
        eprintln!("simlab: error: {}", message(error));
        if self.json {
            let envelope = error_envelope(error);
            if let Ok(text) = serde_json::to_string_pretty(&envelope) {
                print_stdout(&format!("{text}\n"));
            }
        }
    }
}

/// An error with a stable, machine-readable code (and SGP.22 subject/reason codes when the
/// failure came from an SM-DP+ or an eUICC function). Put one in an `anyhow` chain with
/// `Err(CodedError::new(…))?` or `.context(CodedError::new(…))`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CodedError {
    /// Stable, kebab-case: `usage`, `card-definition`, `transport`, `es9-error`, …
    pub code: &'static str,
    pub message: String,
    pub subject_code: Option<String>,
    pub reason_code: Option<String>,
}

impl CodedError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            subject_code: None,
            reason_code: None,
        }
    }

    /// With SGP.22 status codes (e.g. subject `8.2.6`, reason `3.8`).
    pub fn with_sgp22(mut self, subject_code: &str, reason_code: &str) -> Self {
        self.subject_code = Some(subject_code.to_owned());
        self.reason_code = Some(reason_code.to_owned());
        self
    }
}

/// What `error` says, each cause once: its chain joined with ": " (as `{:#}` joins it), minus
/// the causes the previous one already ends with. Many error types repeat their source in
/// their own message (thiserror's `"…: {0}"` on a `#[from]` or `#[source]` field), and `{:#}`
/// then printed it again: "cannot connect …: Connection refused (os error 111): Connection
/// refused (os error 111)".
pub fn message(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if parts
            .last()
            .is_some_and(|previous| previous.ends_with(&text))
        {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// The failure envelope for `error`: the first [`CodedError`] in its chain gives the code,
/// the whole chain the message.
pub fn error_envelope(error: &anyhow::Error) -> Value {
    // `downcast_ref` also finds a CodedError given as `.context(…)`, which `chain()` shows
    // only wrapped.
    let coded = error
        .downcast_ref::<CodedError>()
        .or_else(|| error.chain().find_map(|e| e.downcast_ref::<CodedError>()));
    let mut body = json!({
        "code": coded.map_or("error", |c| c.code),
        "message": message(error),
    });
    if let Some(c) = coded {
        if let Some(s) = &c.subject_code {
            body["subjectCode"] = json!(s);
        }
        if let Some(r) = &c.reason_code {
            body["reasonCode"] = json!(r);
        }
    }
    json!({ "ok": false, "error": body })
}

/// Writes to stdout; a reader that went away (`simlab … | head`) ends the process quietly
/// with status 0, as command-line tools do, instead of a panic.
pub fn print_stdout(text: &str) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("simlab: error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    /// An error that prints its source in its own message too, as thiserror's `"…: {0}"`
    /// with `#[from]` does.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect to a card: {0}")]
    struct Repeats(#[from] std::io::Error);

    #[test]
    fn a_cause_the_message_already_shows_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = anyhow::Error::new(Repeats(io)).context("connecting on 127.0.0.1:1");
        assert_eq!(format!("{e:#}").matches("refused").count(), 2);
        assert_eq!(
            message(&e),
            "connecting on 127.0.0.1:1: cannot connect to a card: refused"
        );
        assert_eq!(
            error_envelope(&e)["error"]["message"],
            "connecting on 127.0.0.1:1: cannot connect to a card: refused"
        );
    }

    #[test]
    fn an_uncoded_error_gets_the_generic_code_and_its_whole_chain_as_message() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(
            error_envelope(&e),
            json!({"ok": false, "error": {"code": "error", "message": "outer: inner"}})
        );
    }

    #[test]
    fn a_coded_error_anywhere_in_the_chain_gives_code_and_sgp22_codes() {
        let e: anyhow::Result<()> = Err(CodedError::new("es9-error", "no such order")
            .with_sgp22("8.2.6", "3.8")
            .into());
        let e = e.context("download").unwrap_err();
        assert_eq!(
            error_envelope(&e),
            json!({"ok": false, "error": {
                "code": "es9-error", "message": "download: no such order",
                "subjectCode": "8.2.6", "reasonCode": "3.8"}})
        );
    }

    #[test]
    fn a_coded_error_given_as_context_gives_its_code() {
        let e = anyhow::anyhow!("holds a UICC").context(CodedError::new("card-state", "state"));
        assert_eq!(error_envelope(&e)["error"]["code"], "card-state");
    }
}
