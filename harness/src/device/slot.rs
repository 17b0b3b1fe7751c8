//! Card slots: where a device's card is (`--card ROLE=SPEC`). A slot is any [`Transport`]: the
//! emulated card in-process from a definition file (optionally with a state directory), a card
//! behind vpcd's wire protocol, or any PC/SC reader — a real SIM or eUICC, or simlab's card
//! served to pcscd. Nothing in a flow knows which it got.

use crate::cards;
use crate::transport::{InProcess, PcscReader, Transport, TransportError, VpcdReader};
use anyhow::Context as _;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How long `vpcd:ADDR` waits for a card to connect.
pub const VPCD_ACCEPT_WAIT: Duration = Duration::from_secs(30);

/// A card's place, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardSpec {
    /// `reader:NAME`: a PC/SC reader (exact name or unique prefix).
    Reader(String),
    /// `file:CARD.toml[,state=DIR]`: the emulated card in-process.
    File {
        definition: PathBuf,
        state: Option<PathBuf>,
    },
    /// `vpcd:ADDR`: play vpcd's reader side on ADDR and wait for a card to connect
    /// (`simlab card serve --vpcd ADDR` with no pcscd there).
    Vpcd(String),
}

/// A spec that could not be parsed; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "card {spec:?}: {reason}; expected reader:NAME, file:CARD.toml[,state=DIR] or vpcd:HOST:PORT"
)]
pub struct CardSpecError {
    pub spec: String,
    pub reason: String,
}

impl FromStr for CardSpec {
    type Err = CardSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| CardSpecError {
            spec: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, rest) = s.split_once(':').ok_or_else(|| bad("no kind"))?;
        if rest.is_empty() {
            return Err(bad("nothing after the kind"));
        }
        match kind {
            "reader" => Ok(CardSpec::Reader(rest.to_owned())),
            "vpcd" => Ok(CardSpec::Vpcd(rest.to_owned())),
            "file" => {
                let mut parts = rest.split(',');
                let definition = PathBuf::from(parts.next().unwrap_or_default());
                let mut state = None;
                for option in parts {
                    match option.split_once('=') {
                        Some(("state", dir)) if !dir.is_empty() => state = Some(PathBuf::from(dir)),
                        _ => {
                            return Err(bad(&format!("unknown option {option:?} (only state=DIR)")))
                        }
                    }
                }
                Ok(CardSpec::File { definition, state })
            }
            other => Err(bad(&format!("unknown kind {other:?}"))),
        }
    }
}

impl fmt::Display for CardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardSpec::Reader(name) => write!(f, "reader:{name}"),
            CardSpec::Vpcd(addr) => write!(f, "vpcd:{addr}"),
            CardSpec::File { definition, state } => {
                write!(f, "file:{}", definition.display())?;
                if let Some(dir) = state {
                    write!(f, ",state={}", dir.display())?;
                }
                Ok(())
            }
        }
    }
}

/// A card connection a device owns; `Send` so flows run on worker threads.
pub type CardTransport = Box<dyn Transport + Send>;

impl CardSpec {
    /// Connects: powers the in-process card on, connects to the reader, or waits for vpcd.
    pub fn open(&self) -> anyhow::Result<CardTransport> {
        Ok(match self {
            CardSpec::Reader(name) => Box::new(PcscReader::connect(name)?),
            CardSpec::File { definition, state } => Box::new(InProcess::new(cards::load_card(
                definition,
                state.as_deref(),
            )?)),
            CardSpec::Vpcd(addr) => Box::new(
                VpcdReader::accept(addr, VPCD_ACCEPT_WAIT)
                    .with_context(|| format!("waiting for a card on vpcd {addr}"))?,
            ),
        })
    }

    /// The definition file of an in-process card.
    pub fn definition_file(&self) -> Option<&PathBuf> {
        match self {
            CardSpec::File { definition, .. } => Some(definition),
            _ => None,
        }
    }
}

/// `ROLE=SPEC` (or `ROLE=FILE` for `--card-def`), split at the first `=`.
pub fn role_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((role, value)) if !role.is_empty() && !value.is_empty() => {
            Ok((role.to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "{arg:?}: expected ROLE=VALUE, e.g. \"old=reader:Virtual PCD 00 00\""
        )),
    }
}

/// A transport borrowed for a while (an ES10 session over a slot the device keeps).
pub struct Borrowed<'a>(pub &'a mut dyn Transport);

impl fmt::Debug for Borrowed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Borrowed")
    }
}

impl Transport for Borrowed<'_> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.transmit_raw(apdu)
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.0.reset()
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.0.atr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("reader:Virtual PCD 00 00", CardSpec::Reader("Virtual PCD 00 00".into()))]
    #[case("vpcd:127.0.0.1:35963", CardSpec::Vpcd("127.0.0.1:35963".into()))]
    #[case("file:vectors/cards/uicc.toml", CardSpec::File { definition: "vectors/cards/uicc.toml".into(), state: None })]
    #[case("file:c.toml,state=/tmp/c", CardSpec::File { definition: "c.toml".into(), state: Some("/tmp/c".into()) })]
    fn parses_and_prints_every_kind(#[case] text: &str, #[case] want: CardSpec) {
        let spec: CardSpec = text.parse().unwrap();
        assert_eq!(spec, want);
        assert_eq!(spec.to_string(), text);
    }

    #[rstest]
    #[case("Virtual PCD 00 00", "no kind")]
    #[case("reader:", "nothing after the kind")]
    #[case("usb:1", "unknown kind \"usb\"")]
    #[case("file:c.toml,pin=0000", "unknown option \"pin=0000\" (only state=DIR)")]
    fn refuses_bad_specs_saying_why(#[case] text: &str, #[case] reason: &str) {
        let e = text.parse::<CardSpec>().unwrap_err();
        assert_eq!(e.reason, reason);
        assert!(e.to_string().contains("expected reader:NAME"));
    }

    #[test]
    fn role_value_splits_at_the_first_equals_sign() {
        assert_eq!(
            role_value("old=file:c.toml,state=/tmp/x").unwrap(),
            ("old".into(), "file:c.toml,state=/tmp/x".into())
        );
        assert!(role_value("=x").is_err());
        assert!(role_value("old").is_err());
    }
}
