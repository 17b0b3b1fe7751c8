//! The UICC as a whole (vectors/cards/uicc.toml): arbitrary APDU sequences after power-on,
//! with resets. Every answer ends in a status word, the card never panics, its persistent
//! state stays serialisable and loads back equal.
//!
//! Input: a sequence of [len, bytes…] APDUs; len 0 means a reset.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_emulator::uicc::CardState;
use simlab_emulator::{CardDefinition, Uicc};
use std::sync::OnceLock;

fn template() -> &'static (Vec<u8>, CardState) {
    static CARD: OnceLock<(Vec<u8>, CardState)> = OnceLock::new();
    CARD.get_or_init(|| {
        let text = include_str!("../../vectors/cards/uicc.toml");
        CardDefinition::from_toml(text)
            .expect("uicc.toml")
            .build()
            .expect("builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let (atr, state) = template().clone();
    let mut card = Uicc::new(atr, state);
    card.seed_rng(1);
    card.power_on();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (apdu, after) = tail.split_at(n);
        rest = after;
        if len == 0 {
            card.reset();
            continue;
        }
        let answer = card.transmit(apdu);
        assert!(answer.len() >= 2, "an answer without a status word");
    }
    let json = serde_json::to_string(card.state()).expect("state serialises");
    let back: CardState = serde_json::from_str(&json).expect("state loads");
    assert_eq!(&back, card.state());
});
