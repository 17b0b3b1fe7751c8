//! The one place that knows both a card and vpcd: serves an emulated [`Uicc`] as a
//! [`VirtualCard`], so pcscd (through vpcd) or vpcd's reader side can reach it.
//!
//! Every APDU and answer is logged at debug level under the target [`APDU_LOG_TARGET`]
//! (`simlab card serve --log-apdus`, or `RUST_LOG=debug`).

use simlab_emulator::Uicc;
use simlab_vpcd::VirtualCard;

/// The tracing target of the card side's APDU log.
pub const APDU_LOG_TARGET: &str = "simlab::apdu";

/// An emulated card behind vpcd.
#[derive(Debug)]
pub struct VpcdCard {
    card: Uicc,
    powered: bool,
}

impl VpcdCard {
    pub fn new(card: Uicc) -> Self {
        Self {
            card,
            powered: false,
        }
    }

    pub fn into_inner(self) -> Uicc {
        self.card
    }
}

impl VirtualCard for VpcdCard {
    fn atr(&mut self) -> Vec<u8> {
        self.card.atr().to_vec()
    }

    fn power_on(&mut self) {
        self.card.power_on();
        self.powered = true;
    }

    fn power_off(&mut self) {
        // Volatile state goes with the power; the next power-on starts a fresh session.
        self.powered = false;
    }

    fn reset(&mut self) {
        self.card.reset();
        self.powered = true;
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        if !self.powered {
            // vpcd sends APDUs only to a powered card; if one comes anyway, power up first
            // as a real reader would have done.
            self.card.power_on();
            self.powered = true;
        }
        let answer = self.card.transmit(apdu);
        tracing::debug!(
            target: APDU_LOG_TARGET,
            "> {} < {}",
            hex::encode_upper(apdu),
            hex::encode_upper(&answer)
        );
        answer
    }
}
