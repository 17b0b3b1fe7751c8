//! The vsmartcard vpcd wire protocol (virtualsmartcard 0.8/0.9, `src/vpcd/vpcd.c`; facts in
//! `docs/vpcd.md`): framing ([`frame`]), the card side that serves a
//! [`VirtualCard`] to vpcd ([`card`]), and the reader side that drives any vpcd card without
//! pcscd ([`reader`]). Knows nothing of cards: a card is bytes in, bytes out.

pub mod card;
pub mod frame;
pub mod reader;

/// TCP port of vpcd's first reader slot ("Virtual PCD 00 00"); slot `n` listens on
/// `VPCD_BASE_PORT + n` (vpcd.c: `VPCD_PORT + slot`).
pub const VPCD_BASE_PORT: u16 = 35963;

/// Where the card side connects by default: vpcd's first slot on this machine.
pub const DEFAULT_VPCD_ADDR: &str = "127.0.0.1:35963";

/// What vpcd sees of a card. The harness implements it around the emulator.
///
/// Every method must return promptly: pcscd polls each reader with get-ATR every 400 ms and
/// blocks the reader forever if a card never answers.
pub trait VirtualCard: Send {
    /// The ATR, answered to vpcd's get-ATR (which may come at any time, also between APDUs).
    /// An empty ATR is sent as a zero-length frame, which vpcd takes as card removal.
    fn atr(&mut self) -> Vec<u8>;
    /// vpcd powered the card on (cold start).
    fn power_on(&mut self);
    /// vpcd powered the card off.
    fn power_off(&mut self);
    /// vpcd asked for a warm reset.
    fn reset(&mut self);
    /// Process one C-APDU and return the R-APDU (data, then SW1 SW2). vpcd does no T=0
    /// processing: 61xx and 6Cxx go to the client unchanged. An empty answer is sent as a
    /// zero-length frame, which vpcd takes as card removal.
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;
}

impl<C: VirtualCard + ?Sized> VirtualCard for Box<C> {
    fn atr(&mut self) -> Vec<u8> {
        (**self).atr()
    }
    fn power_on(&mut self) {
        (**self).power_on();
    }
    fn power_off(&mut self) {
        (**self).power_off();
    }
    fn reset(&mut self) {
        (**self).reset();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        (**self).transmit(apdu)
    }
}

/// ATR of [`NullCard`]: `3B` direct convention; `T0 = 80` (TD1 follows, no historical
/// bytes); `TD1 = 80` (T=0 offered, TD2 follows); `TD2 = 01` (T=1 offered); `TCK = 01`
/// (ISO/IEC 7816-3 §8.2.5: XOR of T0..TCK is zero; present because T=1 is offered).
pub const NULL_CARD_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

/// SW1 SW2 `90 00`: normal processing (ISO/IEC 7816-4 §5.6).
pub const SW_OK: [u8; 2] = [0x90, 0x00];

/// A card that answers `90 00` to every APDU: the baseline for measuring the transport.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NullCard {
    /// APDUs received so far (lets tests and benchmarks check what arrived).
    pub apdus: u64,
    /// Power-on, power-off and reset events received so far.
    pub power_events: u64,
}

impl VirtualCard for NullCard {
    fn atr(&mut self) -> Vec<u8> {
        NULL_CARD_ATR.to_vec()
    }
    fn power_on(&mut self) {
        self.power_events += 1;
    }
    fn power_off(&mut self) {
        self.power_events += 1;
    }
    fn reset(&mut self) {
        self.power_events += 1;
    }
    fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
        self.apdus += 1;
        SW_OK.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_card_atr_has_a_valid_check_byte_and_offers_t0_and_t1() {
        // ISO/IEC 7816-3 §8.2.5: XOR of T0 through TCK is zero.
        assert_eq!(NULL_CARD_ATR[1..].iter().fold(0, |a, b| a ^ b), 0);
        // TD1 low nibble T=0, TD2 low nibble T=1.
        assert_eq!(NULL_CARD_ATR[2] & 0x0F, 0);
        assert_eq!(NULL_CARD_ATR[3] & 0x0F, 1);
    }

    #[test]
    fn null_card_answers_9000_and_counts() {
        let mut card = NullCard::default();
        assert_eq!(card.transmit(&[0x00, 0xA4, 0x00, 0x04]), vec![0x90, 0x00]);
        card.power_on();
        assert_eq!(card.apdus, 1);
        assert_eq!(card.power_events, 1);
    }
}
