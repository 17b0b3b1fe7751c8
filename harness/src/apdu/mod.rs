//! `simlab apdu`: send APDUs to any card — a PC/SC reader (real or virtual), an emulated card
//! in-process, or a card behind vpcd's wire protocol — and say what each answer means: the
//! status word's meaning (ISO/IEC 7816-4 §5.1.3, ETSI TS 102 221 §10.2.1) and, where it is
//! recognised, the decoded content ([`decode`]). Commands come from the command line (each
//! `61XX` fetched with GET RESPONSE, as a T=0 terminal does) or from an APDU script
//! (`emulator::script` format, sent exactly as written). The exit code is non-zero on the
//! first answer that is not the one expected, so a tester can check a real card with it.
//!
//! `simlab readers` lists the PC/SC readers.

pub mod decode;

use crate::cards;
use crate::output::{CodedError, Output};
use crate::transport::{split_sw, InProcess, PcscReader, Transport, VpcdReader};
use anyhow::Context as _;
use clap::Args;
use decode::{meaning, sw_matches, Decoded, Decoder};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `--vpcd ADDR` waits for a card to connect.
const VPCD_ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which card a command talks to (exactly one).
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A PC/SC reader (exact name or unique prefix), e.g. "Virtual PCD 00 00".
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
    // The help lists the built-in cards from harness::defaults, so it never goes stale.
    #[arg(
        long,
        value_name = "FILE|NAME",
        help = format!(
            "An emulated card, in-process: a definition file, or a built-in card ({})",
            crate::defaults::CARD_NAMES.join(", ")
        )
    )]
    pub card: Option<PathBuf>,
    /// Play vpcd at ADDR: wait there (30 s) for a card to connect, e.g. `simlab card serve
    /// --vpcd ADDR`; with --vpcd-connect, connect to a card listening there instead
    /// (`simlab card serve --listen ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub vpcd: Option<String>,
}

impl Target {
    /// Connects; `vpcd_connect` picks the direction for `--vpcd`, `state` is the state
    /// directory of an in-process `--card`.
    pub fn open(
        &self,
        vpcd_connect: bool,
        state: Option<&Path>,
    ) -> anyhow::Result<Box<dyn Transport>> {
        // README's output contract: a card that cannot be reached is a `transport` error.
        let transport = |what: String| CodedError::new("transport", what);
        Ok(match (&self.reader, &self.card, &self.vpcd) {
            (Some(r), _, _) => Box::new(
                PcscReader::connect(r)
                    .context(transport(format!("opening the PC/SC reader {r:?}")))?,
            ),
            (_, Some(c), _) => Box::new(InProcess::new(cards::load_card(c, state)?)),
            (_, _, Some(v)) if vpcd_connect => Box::new(
                VpcdReader::connect(v)
                    .context(transport(format!("connecting to a card listening on {v}")))?,
            ),
            (_, _, Some(v)) => Box::new(
                VpcdReader::accept(v, VPCD_ACCEPT_TIMEOUT)
                    .context(transport(format!("waiting on {v} for a card to connect")))?,
            ),
            _ => {
                return Err(
                    CodedError::new("usage", "give one of --reader, --card or --vpcd").into(),
                )
            }
        })
    }
}

#[derive(Args, Debug)]
pub struct ApduArgs {
    #[command(flatten)]
    pub target: Target,
    /// With --vpcd: connect to a card listening there instead of waiting for one.
    #[arg(long, requires = "vpcd")]
    pub vpcd_connect: bool,
    /// Read the exchanges from FILE ("-": standard input) in the APDU script format: `> C-APDU`
    /// on a line, optionally followed by `< expected R-APDU` (hex, spaces anywhere, `*` = any
    /// bytes), `#` comments. Sent exactly as written: a script fetches 61XX itself.
    #[arg(long, value_name = "FILE", conflicts_with = "apdus")]
    pub script: Option<PathBuf>,
    /// Status word expected of the APDUs on the command line, in order: the first --expect
    /// for the first APDU, and so on (`X` = any hex digit, `any` = anything). Default 9000 or
    /// 61XX.
    #[arg(long, value_name = "SW")]
    pub expect: Vec<String>,
    /// APDUs in hex (spaces inside one argument are ignored); 61XX answers are fetched with
    /// GET RESPONSE.
    #[arg(required_unless_present = "script", value_name = "APDU")]
    pub apdus: Vec<String>,
}

/// What an answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// The default: 9000 or 61XX.
    Normal,
    /// A status word pattern (`X` = any digit) or anything (`any`).
    Sw(String),
    /// A whole-answer pattern from a script (`*` = any bytes).
    Answer(String),
}

impl Expect {
    fn parse_sw(text: &str) -> anyhow::Result<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("any") {
            return Ok(Expect::Sw("XXXX".into()));
        }
        let ok = t.len() == 4
            && t.chars()
                .all(|c| c.is_ascii_hexdigit() || c.eq_ignore_ascii_case(&'x'));
        if !ok {
            return Err(CodedError::new(
                "usage",
                format!("--expect {text:?}: expected 4 hex digits (X = any), e.g. 9000, 6A82, 61XX, or `any`"),
            )
            .into());
        }
        Ok(Expect::Sw(t.to_ascii_uppercase()))
    }

    fn accepts(&self, answer: &[u8]) -> bool {
        let (_, sw) = split_sw(answer);
        match self {
            Expect::Normal => sw == 0x9000 || sw >> 8 == 0x61,
            Expect::Sw(p) => sw_matches(p, sw),
            Expect::Answer(p) => simlab_emulator::script::matches(p, &hex::encode_upper(answer)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Expect::Normal => "9000 or 61XX".into(),
            Expect::Sw(p) if p == "XXXX" => "any status word".into(),
            Expect::Sw(p) => p.clone(),
            Expect::Answer(p) => p.clone(),
        }
    }
}

/// One exchange as `simlab apdu` reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    /// Line of the script it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub command: String,
    /// The whole answer (data and status word), hex.
    pub response: String,
    pub sw: String,
    pub meaning: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<Decoded>,
    pub expected: String,
}

/// The result of `simlab apdu`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApduReport {
    pub atr: String,
    pub exchanges: Vec<Exchange>,
}

fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).map_err(|e| {
        CodedError::new(
            "usage",
            format!("APDU {s:?} is not hex ({e}; example: 00A4000C023F00)"),
        )
        .into()
    })
}

/// One step to send: the command, how to send it, what to expect.
struct Step {
    line: Option<usize>,
    command: Vec<u8>,
    /// Fetch 61XX with GET RESPONSE (command-line APDUs) or send as written (scripts).
    fetch: bool,
    expect: Expect,
}

fn steps(a: &ApduArgs) -> anyhow::Result<Vec<Step>> {
    if let Some(path) = &a.script {
        let text = if path.as_os_str() == "-" {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .context("reading the script from standard input")?;
            t
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the script {}", path.display()))?
        };
        let parsed = simlab_emulator::script::parse(&text)
            .map_err(|e| CodedError::new("usage", format!("script {}: {e}", path.display())))?;
        return Ok(parsed
            .into_iter()
            .map(|s| Step {
                line: Some(s.line),
                command: s.command,
                fetch: false,
                expect: s.expect.map_or(Expect::Normal, Expect::Answer),
            })
            .collect());
    }
    if a.expect.len() > a.apdus.len() {
        return Err(CodedError::new(
            "usage",
            format!(
                "{} --expect for {} APDUs: give at most one per APDU",
                a.expect.len(),
                a.apdus.len()
            ),
        )
        .into());
    }
    let mut out = Vec::new();
    for (i, text) in a.apdus.iter().enumerate() {
        out.push(Step {
            line: None,
            command: parse_hex(text)?,
            fetch: true,
            expect: match a.expect.get(i) {
                Some(e) => Expect::parse_sw(e)?,
                None => Expect::Normal,
            },
        });
    }
    Ok(out)
}

fn render_exchange(e: &Exchange) -> String {
    let mut t = format!(
        "> {}\n< {}\n  {}: {}",
        e.command, e.response, e.sw, e.meaning
    );
    if let Some(d) = &e.decoded {
        let _ = write!(t, "\n  {d}");
    }
    t
}

/// Runs `simlab apdu`.
pub fn run(a: ApduArgs, out: Output) -> anyhow::Result<()> {
    let steps = steps(&a)?;
    let mut card = a.target.open(a.vpcd_connect, None)?;
    let atr = hex::encode_upper(card.atr()?);
    if !out.is_json() {
        out.progress(format!("ATR {atr}"));
    }
    let mut decoder = Decoder::default();
    let mut exchanges = Vec::new();
    for step in steps {
        let answer = if step.fetch {
            card.transmit(&step.command)?
        } else {
            card.transmit_raw(&step.command)?
        };
        let (data, sw) = split_sw(&answer);
        let exchange = Exchange {
            line: step.line,
            command: hex::encode_upper(&step.command),
            response: hex::encode_upper(&answer),
            sw: format!("{sw:04X}"),
            meaning: meaning(sw),
            decoded: decoder.exchange(&step.command, data, sw),
            expected: step.expect.describe(),
        };
        if !out.is_json() {
            out.progress(render_exchange(&exchange));
        }
        if !step.expect.accepts(&answer) {
            let at = step.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            return Err(CodedError::new(
                "unexpected-answer",
                format!(
                    "{at}> {} answered {} ({}), expected {}",
                    exchange.command, exchange.response, exchange.meaning, exchange.expected
                ),
            )
            .into());
        }
        exchanges.push(exchange);
    }
    let report = ApduReport { atr, exchanges };
    // In text mode every exchange is already on stdout.
    out.result(&report, String::new)
}

/// `simlab readers`: the PC/SC readers pcscd knows, and whether a card is in each.
pub fn readers(out: Output) -> anyhow::Result<()> {
    let names = PcscReader::list()?;
    out.result(&serde_json::json!({ "readers": names }), || {
        if names.is_empty() {
            "no PC/SC readers (is pcscd running? vpcd's readers appear once its driver loads)"
                .into()
        } else {
            names.join("\n")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::default(Expect::Normal, "6120", true)]
    #[case::default_refuses(Expect::Normal, "6A82", false)]
    #[case::exact(Expect::Sw("6A82".into()), "6A82", true)]
    #[case::wildcard(Expect::Sw("63CX".into()), "63C2", true)]
    #[case::answer_pattern(Expect::Answer("62*9000".into()), "62019000", true)]
    #[case::answer_pattern_refuses(Expect::Answer("62*9000".into()), "6A82", false)]
    fn expectations_accept_what_they_say(
        #[case] e: Expect,
        #[case] answer: &str,
        #[case] want: bool,
    ) {
        assert_eq!(e.accepts(&hex::decode(answer).unwrap()), want);
    }

    #[rstest]
    #[case("any", Expect::Sw("XXXX".into()))]
    #[case("6a82", Expect::Sw("6A82".into()))]
    #[case("61xx", Expect::Sw("61XX".into()))]
    fn expect_arguments_parse(#[case] text: &str, #[case] want: Expect) {
        assert_eq!(Expect::parse_sw(text).unwrap(), want);
    }

    #[rstest]
    #[case("900")]
    #[case("90000")]
    #[case("9G00")]
    fn bad_expect_arguments_are_refused(#[case] text: &str) {
        let e = Expect::parse_sw(text).unwrap_err();
        assert!(e.to_string().contains("4 hex digits"), "{e}");
    }
}
