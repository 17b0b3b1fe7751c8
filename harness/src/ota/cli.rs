//! `simlab ota send`: one command string to a card's remote application over SMS-PP, the PoR
//! checked and each command's status word printed.

use super::{default_spi, send, OtaError, RemoteCommand, SendReport};
use crate::apdu::Target;
use crate::defaults;
use crate::output::{CodedError, Output};
use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use simlab_emulator::definition::OtaSection;
use simlab_emulator::ota::ts_102_225::{Checksum, CounterMode, Keyset, PorRequest, PorStatus, Spi};
use simlab_emulator::ota::ts_102_226::ScriptFormat;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum OtaCommand {
    /// Send APDUs to a remote application (RFM) in an SCP80 secured packet by SMS-PP
    /// download (ENVELOPE), check the PoR and print each command's status word.
    Send(SendArgs),
}

#[derive(Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    pub target: Target,
    /// With --vpcd: connect to a card listening there (`simlab card serve --listen ADDR`)
    /// instead of waiting for one.
    #[arg(long, requires = "vpcd")]
    pub vpcd_connect: bool,
    /// State directory of an in-process --card (counters and deactivated files persist).
    #[arg(long, requires = "card", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The keyset: a KID key index (1-15) of the keysets in --keys (default: --card's
    /// definition, else the built-in uicc card's), or a TOML file with [[ota.keyset]] tables
    /// (FILE, or FILE:INDEX when it holds several).
    #[arg(long, value_name = "INDEX|FILE")]
    pub keyset: String,
    /// Where --keyset INDEX looks (a card definition or any TOML with [[ota.keyset]]).
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// TAR in hex: B00011 USIM RFM, B00010 UICC RFM.
    #[arg(long, default_value = "B00011")]
    pub tar: String,
    /// SPI as 4 hex digits (e.g. 1621) or words joined by '+' or ',': rc|cc|ds, ciphering,
    /// counter|counter-higher|counter-one-higher, por|por-on-error|no-por, por-rc|por-cc,
    /// por-ciphered, por-submit. Default: cc+ciphering+por+por-cc+por-ciphered (06 19), with
    /// counter-higher when --counter is given.
    #[arg(long)]
    pub spi: Option<String>,
    /// The counter (CNTR, up to 2^40-1); must exceed the card's for counter-higher.
    #[arg(long)]
    pub counter: Option<u64>,
    /// Remote APDU format (TS 102 226 §5): compact reports the last command's status word,
    /// expanded every command's.
    #[arg(long, value_enum, default_value_t = Format::Compact)]
    pub format: Format,
    /// The APDUs in hex (spaces inside one argument are ignored).
    #[arg(required = true)]
    pub apdus: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Compact,
    Expanded,
}

/// The result `--json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendResult {
    pub tar: String,
    pub spi: String,
    pub kic: String,
    pub kid: String,
    pub counter: u64,
    pub format: &'static str,
    pub command_packet: String,
    /// The SMS-DELIVER TPDUs sent (one ENVELOPE each).
    pub messages: Vec<String>,
    pub por: Option<PorJson>,
    /// Commands executed, as the PoR says.
    pub executed: Option<u8>,
    pub commands: Vec<CommandJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PorJson {
    pub raw: String,
    pub status: String,
    pub status_name: &'static str,
    pub secured: bool,
    pub counter: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandJson {
    pub apdu: String,
    pub executed: bool,
    /// The status word, when the PoR reports it (the compact format reports the last only).
    pub sw: Option<String>,
    pub data: Option<String>,
}

pub fn run(cmd: OtaCommand, out: Output) -> anyhow::Result<()> {
    match cmd {
        OtaCommand::Send(a) => send_cmd(a, out),
    }
}

fn send_cmd(a: SendArgs, out: Output) -> anyhow::Result<()> {
    let keyset = load_keyset(&a)?;
    let command = remote_command(&a)?;
    let mut transport = a.target.open(a.vpcd_connect, a.state.as_deref())?;
    let report = send(&mut transport, &keyset, &command).map_err(coded)?;
    let result = result_of(&keyset, &command, &report);
    if let Some(por) = &report.por {
        if por.status != PorStatus::Ok {
            return Err(CodedError::new(
                "por-status",
                format!(
                    "the card refused the secured packet: PoR status {}{}",
                    por.status,
                    hint(por.status)
                ),
            )
            .into());
        }
    }
    out.result(&result, || text_of(&result))
}

/// A stable error code for each failure a script may branch on.
fn coded(e: OtaError) -> anyhow::Error {
    let code = match &e {
        OtaError::Transport(_) => "transport",
        OtaError::CardRefused { .. } => "envelope-refused",
        OtaError::Por(_) | OtaError::PorTar { .. } | OtaError::PorCounter { .. } => "por-invalid",
        OtaError::NoPor => "no-por",
        _ => "usage",
    };
    CodedError::new(code, e.to_string()).into()
}

/// What to try for a PoR status.
fn hint(status: PorStatus) -> &'static str {
    match status {
        PorStatus::RcCcDsFailed => " (check the KID key)",
        PorStatus::CounterLow => " (give a higher --counter)",
        PorStatus::CounterHigh => " (the card wants exactly its counter + 1)",
        PorStatus::CipheringError => " (check the KIc key and algorithm)",
        PorStatus::UnidentifiedSecurityError => {
            " (the card knows no keyset with these KIc/KID indexes and algorithms)"
        }
        PorStatus::TarUnknown => " (check --tar)",
        PorStatus::InsufficientSecurityLevel => {
            " (the application demands more: add ciphering, a CC or a counter to --spi)"
        }
        _ => "",
    }
}

#[derive(Debug, Deserialize)]
struct KeysFile {
    #[serde(default)]
    ota: OtaSection,
}

pub(crate) fn keysets_in(path: &Path) -> anyhow::Result<Vec<Keyset>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading keysets from {}", path.display()))?;
    let file: KeysFile = toml::from_str(&text)
        .map_err(|e| CodedError::new("usage", format!("{}: {e}", path.display())))?;
    let keys = file
        .ota
        .keys()
        .map_err(|e| CodedError::new("usage", format!("{}: {e}", path.display())))?;
    Ok(keys.keysets.into_iter().map(|k| k.keys).collect())
}

fn load_keyset(a: &SendArgs) -> anyhow::Result<Keyset> {
    if let Ok(index) = a.keyset.parse::<u8>() {
        let (label, all) = match (&a.keys, &a.target.card) {
            (Some(file), _) => (file.display().to_string(), keysets_in(file)?),
            (None, Some(card)) => (card.display().to_string(), card_keysets(card)?),
            (None, None) => (
                format!("the built-in {} card", defaults::UICC),
                card_keysets(Path::new(defaults::UICC))?,
            ),
        };
        return pick(&label, all, Some(index));
    }
    let (file, index) = match a.keyset.rsplit_once(':') {
        Some((file, index)) if index.parse::<u8>().is_ok() && !Path::new(&a.keyset).exists() => {
            (file, index.parse().ok())
        }
        _ => (a.keyset.as_str(), None),
    };
    pick(file, keysets_in(Path::new(file))?, index)
}

/// The keysets of a card definition (a file or a built-in card's name).
pub(crate) fn card_keysets(card: &Path) -> anyhow::Result<Vec<Keyset>> {
    let def = defaults::card_definition(card)?;
    let keys = def
        .ota
        .keys()
        .map_err(|e| CodedError::new("card-definition", format!("{}: {e}", card.display())))?;
    Ok(keys.keysets.into_iter().map(|k| k.keys).collect())
}

/// The keyset with KID index `index` of `all` (read from `label`), or the only one.
fn pick(label: &str, all: Vec<Keyset>, index: Option<u8>) -> anyhow::Result<Keyset> {
    let indexes: Vec<String> = all.iter().map(|k| k.kid_index.to_string()).collect();
    let usage = |m: String| anyhow::Error::from(CodedError::new("usage", m));
    match index {
        Some(i) => all.into_iter().find(|k| k.kid_index == i).ok_or_else(|| {
            usage(format!(
                "{label} has no keyset with KID index {i}; it has {}",
                if indexes.is_empty() {
                    "none".into()
                } else {
                    indexes.join(", ")
                }
            ))
        }),
        None if all.len() == 1 => all.into_iter().next().ok_or_else(|| usage(label.into())),
        None if all.is_empty() => Err(usage(format!("{label} has no [[ota.keyset]]"))),
        None => Err(usage(format!(
            "{label} holds keysets with KID indexes {}: give --keyset {label}:INDEX",
            indexes.join(", ")
        ))),
    }
}

fn remote_command(a: &SendArgs) -> anyhow::Result<RemoteCommand> {
    let usage = |m: String| anyhow::Error::from(CodedError::new("usage", m));
    let tar: [u8; 3] = hex::decode(&a.tar)
        .ok()
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| {
            usage(format!(
                "--tar {:?}: expected 3 bytes of hex, e.g. B00011",
                a.tar
            ))
        })?;
    let mut spi = match &a.spi {
        Some(text) => parse_spi(text).map_err(usage)?,
        None => default_spi(),
    };
    if a.spi.is_none() && a.counter.is_some() {
        spi.counter = CounterMode::Higher;
    }
    let apdus = a
        .apdus
        .iter()
        .map(|s| {
            let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode(&clean)
                .map_err(|_| usage(format!("APDU {s:?} is not hex (example: 00A40004023F00)")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RemoteCommand {
        tar,
        spi,
        counter: a.counter.unwrap_or(0),
        format: match a.format {
            Format::Compact => ScriptFormat::Compact,
            Format::Expanded => ScriptFormat::Expanded,
        },
        apdus,
    })
}

/// Reads `--spi`: 4 hex digits, or words.
pub fn parse_spi(text: &str) -> Result<Spi, String> {
    if text.len() == 4 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        let b = hex::decode(text).map_err(|e| e.to_string())?;
        return Spi::decode([b[0], b[1]]).map_err(|e| format!("--spi {text}: {e}"));
    }
    let mut spi = Spi {
        counter: CounterMode::None,
        ciphering: false,
        checksum: Checksum::None,
        por: PorRequest::None,
        por_checksum: Checksum::None,
        por_ciphered: false,
        por_via_submit: false,
    };
    for word in text.split(['+', ',']).map(str::trim) {
        match word {
            "rc" => spi.checksum = Checksum::Rc,
            "cc" => spi.checksum = Checksum::Cc,
            "ds" => spi.checksum = Checksum::Ds,
            "ciphering" => spi.ciphering = true,
            "counter" => spi.counter = CounterMode::Available,
            "counter-higher" => spi.counter = CounterMode::Higher,
            "counter-one-higher" => spi.counter = CounterMode::OneHigher,
            "por" => spi.por = PorRequest::Always,
            "por-on-error" => spi.por = PorRequest::OnError,
            "no-por" => spi.por = PorRequest::None,
            "por-rc" => spi.por_checksum = Checksum::Rc,
            "por-cc" => spi.por_checksum = Checksum::Cc,
            "por-ciphered" => spi.por_ciphered = true,
            "por-submit" => spi.por_via_submit = true,
            other => {
                return Err(format!(
                    "--spi: unknown word {other:?}; expected 4 hex digits or words among rc, cc, \
                     ds, ciphering, counter, counter-higher, counter-one-higher, por, \
                     por-on-error, no-por, por-rc, por-cc, por-ciphered, por-submit"
                ))
            }
        }
    }
    Ok(spi)
}

fn result_of(keyset: &Keyset, command: &RemoteCommand, report: &SendReport) -> SendResult {
    let script = report.por.as_ref().and_then(|p| p.script.as_ref());
    let executed = script.map(|s| usize::from(s.executed));
    let commands = command
        .apdus
        .iter()
        .enumerate()
        .map(|(i, apdu)| {
            let ran = executed.is_some_and(|n| i < n);
            // The reported answers are the last `responses.len()` executed commands.
            let answer = script.and_then(|s| {
                let n = usize::from(s.executed);
                let first = n.checked_sub(s.responses.len())?;
                (ran && i >= first)
                    .then(|| s.responses.get(i - first))
                    .flatten()
            });
            CommandJson {
                apdu: hex::encode_upper(apdu),
                executed: ran,
                sw: answer.map(|r| format!("{:04X}", r.sw)),
                data: answer
                    .filter(|r| !r.data.is_empty())
                    .map(|r| hex::encode_upper(&r.data)),
            }
        })
        .collect();
    SendResult {
        tar: hex::encode_upper(command.tar),
        spi: hex::encode_upper(command.spi.encode()),
        kic: format!("{:02X}", keyset.kic_byte()),
        kid: format!("{:02X}", command.kid(keyset)),
        counter: command.counter,
        format: match command.format {
            ScriptFormat::Compact => "compact",
            ScriptFormat::Expanded => "expanded",
        },
        command_packet: hex::encode_upper(&report.command_packet),
        messages: report.tpdus.iter().map(hex::encode_upper).collect(),
        por: report.por.as_ref().map(|p| PorJson {
            raw: hex::encode_upper(&p.raw),
            status: format!("{:02X}", p.status.code()),
            status_name: p.status.name(),
            secured: p.secured,
            counter: p.counter,
        }),
        executed: script.map(|s| s.executed),
        commands,
    }
}

fn text_of(r: &SendResult) -> String {
    let mut t = format!(
        "TAR {} · SPI {} · KIc {} · KID {} · CNTR {} · {} format · {} message(s)\n",
        r.tar,
        r.spi,
        r.kic,
        r.kid,
        r.counter,
        r.format,
        r.messages.len()
    );
    for c in &r.commands {
        t.push_str(&format!("> {}\n", c.apdu));
        match (&c.sw, c.executed) {
            (Some(sw), _) => {
                t.push_str(&format!("< {}{}\n", c.data.clone().unwrap_or_default(), sw))
            }
            (None, true) => {
                t.push_str("< (executed; the compact format reports only the last SW)\n")
            }
            (None, false) => t.push_str("  (not executed)\n"),
        }
    }
    match &r.por {
        Some(p) => t.push_str(&format!(
            "PoR {} ({}), {}, {} of {} command(s) executed\n",
            p.status,
            p.status_name,
            if p.secured {
                "secured as the SPI asked"
            } else {
                "UNSECURED"
            },
            r.executed.unwrap_or(0),
            r.commands.len()
        )),
        None => t.push_str("no PoR (the SPI asked none)\n"),
    }
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn spi_words_and_hex_agree() {
        let words = parse_spi("cc+ciphering+por+por-cc+por-ciphered").unwrap();
        assert_eq!(words, parse_spi("0619").unwrap());
        assert_eq!(words, default_spi());
        let counter = parse_spi("cc,ciphering,counter-higher,por-on-error").unwrap();
        assert_eq!(counter.encode(), [0x16, 0x02]);
        assert!(parse_spi("cc+bogus").unwrap_err().contains("bogus"));
        assert!(parse_spi("0603").is_err(), "PoR bits '11' are reserved");
    }
}
