//! The card under test, behind a per-APDU timeout: whichever transport it is (a PC/SC
//! reader, a card in-process, a card behind vpcd) runs on its own thread, and every command
//! waits at most `timeout` for its answer. A transport that fails or stops answering is
//! "gone": every later call fails at once with [`TransportError::Gone`], so a dead reader
//! ends a run instead of hanging it.

use crate::cards;
use crate::transport::{InProcess, PcscReader, Transport, TransportError, VpcdReader};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// Which card to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A PC/SC reader by name (or unique prefix).
    Reader(String),
    /// simlab's card from a definition, in this process; state kept in `state` if given.
    Card {
        definition: PathBuf,
        state: Option<PathBuf>,
    },
    /// Play vpcd: listen here until a card connects.
    Vpcd(String),
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetSpec::Reader(r) => write!(f, "reader {r:?}"),
            TargetSpec::Card { definition, .. } => {
                write!(f, "card {} (in-process)", definition.display())
            }
            TargetSpec::Vpcd(a) => write!(f, "vpcd card at {a}"),
        }
    }
}

enum Request {
    Transmit(Vec<u8>),
    Reset,
    Atr,
}

/// A transport on its own thread, with a deadline on every call.
#[derive(Debug)]
pub struct Timed {
    requests: Sender<Request>,
    answers: Receiver<Result<Vec<u8>, TransportError>>,
    timeout: Duration,
    gone: Option<String>,
}

/// How long a vpcd card may take to connect.
const VPCD_ACCEPT: Duration = Duration::from_secs(30);

fn open(spec: &TargetSpec) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match spec {
        TargetSpec::Reader(name) => Box::new(PcscReader::connect(name)?),
        TargetSpec::Card { definition, state } => Box::new(InProcess::new(cards::load_card(
            definition,
            state.as_deref(),
        )?)),
        TargetSpec::Vpcd(addr) => Box::new(VpcdReader::accept(addr, VPCD_ACCEPT)?),
    })
}

impl Timed {
    /// Connects to the card; `timeout` bounds every later call (connecting may take up to
    /// `timeout` plus the vpcd accept wait).
    pub fn connect(spec: &TargetSpec, timeout: Duration) -> anyhow::Result<Self> {
        let (req_tx, req_rx) = mpsc::channel::<Request>();
        let (ans_tx, ans_rx) = mpsc::channel::<Result<Vec<u8>, TransportError>>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let spec_for_thread = spec.clone();
        std::thread::Builder::new()
            .name("suite-card".into())
            .spawn(move || {
                let mut t = match open(&spec_for_thread) {
                    Ok(t) => {
                        let _ = ready_tx.send(Ok(()));
                        t
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                for req in req_rx {
                    let answer = match req {
                        Request::Transmit(apdu) => t.transmit_raw(&apdu),
                        Request::Reset => t.reset(),
                        Request::Atr => t.atr(),
                    };
                    if ans_tx.send(answer).is_err() {
                        return;
                    }
                }
            })
            .context("starting the card thread")?;
        let wait = match spec {
            TargetSpec::Vpcd(_) => VPCD_ACCEPT + timeout,
            _ => timeout,
        };
        match ready_rx.recv_timeout(wait) {
            Ok(Ok(())) => Ok(Self {
                requests: req_tx,
                answers: ans_rx,
                timeout,
                gone: None,
            }),
            Ok(Err(e)) => Err(anyhow::anyhow!(e)).with_context(|| format!("connecting to {spec}")),
            Err(_) => anyhow::bail!("connecting to {spec}: no answer within {wait:?}"),
        }
    }

    /// Why the connection is gone, if it is.
    pub fn gone(&self) -> Option<&str> {
        self.gone.as_deref()
    }

    fn call(&mut self, req: Request) -> Result<Vec<u8>, TransportError> {
        if let Some(why) = &self.gone {
            return Err(TransportError::Gone(why.clone()));
        }
        if self.requests.send(req).is_err() {
            let why = "the card thread ended".to_owned();
            self.gone = Some(why.clone());
            return Err(TransportError::Gone(why));
        }
        match self.answers.recv_timeout(self.timeout) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                // A card that answers too little is still there; anything else is not.
                if !matches!(e, TransportError::ShortAnswer { .. }) {
                    self.gone = Some(e.to_string());
                }
                Err(e)
            }
            Err(RecvTimeoutError::Timeout) => {
                let e = TransportError::Timeout(self.timeout);
                self.gone = Some(e.to_string());
                Err(e)
            }
            Err(RecvTimeoutError::Disconnected) => {
                let why = "the card thread ended".to_owned();
                self.gone = Some(why.clone());
                Err(TransportError::Gone(why))
            }
        }
    }
}

impl Transport for Timed {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.call(Request::Transmit(apdu.to_vec()))
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.call(Request::Reset)
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.call(Request::Atr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_card_definition_is_a_connect_error_naming_it() {
        let e = Timed::connect(
            &TargetSpec::Card {
                definition: "no/such.toml".into(),
                state: None,
            },
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("no/such.toml"), "{e:#}");
    }

    #[test]
    fn an_in_process_card_answers_through_the_thread() {
        let def = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vectors/cards/uicc.toml"
        ));
        let mut t = Timed::connect(
            &TargetSpec::Card {
                definition: def,
                state: None,
            },
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            t.transmit_raw(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])
                .unwrap(),
            vec![0x90, 0x00]
        );
        assert!(t.reset().unwrap().starts_with(&[0x3B]));
    }
}
