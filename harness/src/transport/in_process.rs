//! The emulated card in the same process: no I/O, nothing can fail in transit.

use super::{Transport, TransportError};
use simlab_emulator::Uicc;

#[derive(Debug)]
pub struct InProcess {
    card: Uicc,
    atr: Vec<u8>,
}

impl InProcess {
    /// Powers the card on.
    pub fn new(mut card: Uicc) -> Self {
        let atr = card.power_on();
        Self { card, atr }
    }

    pub fn card(&self) -> &Uicc {
        &self.card
    }
}

impl Transport for InProcess {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.card.transmit(apdu))
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.atr = self.card.reset();
        Ok(self.atr.clone())
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        Ok(self.atr.clone())
    }
}
