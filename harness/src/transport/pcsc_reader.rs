//! Any PC/SC reader through pcscd (a real reader with a real SIM or eUICC, or vpcd's
//! "Virtual PCD 00 00"). Connects shared, T=0 or T=1 as the card offers. On an error
//! from `transmit` the APDU may or may not have reached the card (PC/SC does not say).

use super::{Transport, TransportError};
use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode, MAX_BUFFER_SIZE_EXTENDED};
use std::ffi::CString;

pub struct PcscReader {
    card: Card,
    reader: CString,
}

impl std::fmt::Debug for PcscReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscReader")
            .field("reader", &self.reader)
            .finish()
    }
}

fn err(e: pcsc::Error) -> TransportError {
    TransportError::Pcsc(e.to_string())
}

impl PcscReader {
    /// The names of the readers pcscd knows.
    pub fn list() -> Result<Vec<String>, TransportError> {
        let ctx = Context::establish(Scope::User).map_err(err)?;
        let names = ctx.list_readers_owned().map_err(err)?;
        Ok(names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    /// Connects to the card in the reader named `name` (exact name, or a unique prefix).
    pub fn connect(name: &str) -> Result<Self, TransportError> {
        let ctx = Context::establish(Scope::User).map_err(err)?;
        let names = ctx.list_readers_owned().map_err(err)?;
        let wanted: Vec<&CString> = names
            .iter()
            .filter(|n| n.to_string_lossy() == name || n.to_string_lossy().starts_with(name))
            .collect();
        let reader = match wanted.as_slice() {
            [one] => (*one).clone(),
            _ => {
                let present = names
                    .iter()
                    .map(|n| format!("{:?}", n.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(TransportError::NoSuchReader {
                    wanted: name.into(),
                    present,
                });
            }
        };
        let card = ctx
            .connect(&reader, ShareMode::Shared, Protocols::ANY)
            .map_err(err)?;
        Ok(Self { card, reader })
    }
}

impl Transport for PcscReader {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut buf = vec![0u8; MAX_BUFFER_SIZE_EXTENDED];
        let answer = self.card.transmit(apdu, &mut buf).map_err(err)?;
        Ok(answer.to_vec())
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.card
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
            .map_err(err)?;
        self.atr()
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut names = [0u8; 2048];
        let mut atr = [0u8; pcsc::MAX_ATR_SIZE];
        let status = self.card.status2(&mut names, &mut atr).map_err(err)?;
        Ok(status.atr().to_vec())
    }
}
