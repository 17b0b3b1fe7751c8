//! The eUICC as a whole (vectors/cards/euicc-test-profile.toml: the TS.48 test profile
//! enabled): after power-on the ISD-R is selected on channel 1, then arbitrary input is sent
//! as ES10 requests in STORE DATA blocks (or raw APDUs, or resets). Every answer ends in a
//! status word, the card never panics, at most one profile is enabled, ICCIDs stay unique,
//! and the persistent state loads back equal.
//!
//! Input: records [kind, len, bytes…]; kind % 4: 0 ES10 request, 1 raw APDU, 2 reset,
//! 3 GET RESPONSE with Le = len.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_emulator::uicc::CardState;
use simlab_emulator::{CardDefinition, Uicc};
use std::sync::OnceLock;

fn template() -> &'static (Vec<u8>, CardState) {
    static CARD: OnceLock<(Vec<u8>, CardState)> = OnceLock::new();
    CARD.get_or_init(|| {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vectors/cards/euicc-test-profile.toml"
        );
        CardDefinition::load(std::path::Path::new(dir))
            .expect("euicc-test-profile.toml")
            .build()
            .expect("builds")
    })
}

const OPEN: [u8; 5] = [0x00, 0x70, 0x00, 0x00, 0x01];
const SELECT_ISD_R: [u8; 21] = [
    0x01, 0xA4, 0x04, 0x00, 0x10, 0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF,
    0x89, 0x00, 0x00, 0x01, 0x00,
];

fn send(card: &mut Uicc, apdu: &[u8]) {
    assert!(
        card.transmit(apdu).len() >= 2,
        "an answer without a status word"
    );
}

fuzz_target!(|data: &[u8]| {
    let (atr, state) = template().clone();
    let mut card = Uicc::new(atr, state);
    card.seed_rng(1);
    card.power_on();
    send(&mut card, &OPEN);
    send(&mut card, &SELECT_ISD_R);
    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (body, after) = tail.split_at(n);
        rest = after;
        match kind % 4 {
            0 => {
                let blocks: Vec<&[u8]> = body.chunks(120).collect();
                for (i, b) in blocks.iter().enumerate() {
                    let p1 = if i + 1 == blocks.len() { 0x91 } else { 0x11 };
                    let mut apdu = vec![0x81, 0xE2, p1, i as u8, b.len() as u8];
                    apdu.extend_from_slice(b);
                    send(&mut card, &apdu);
                }
            }
            1 => {
                card.transmit(body);
            }
            2 => {
                card.reset();
                send(&mut card, &OPEN);
                send(&mut card, &SELECT_ISD_R);
            }
            _ => send(&mut card, &[0x01, 0xC0, 0x00, 0x00, *len]),
        }
    }
    let e = card.state().euicc.as_ref().expect("an eUICC");
    assert!(e.profiles.iter().filter(|p| p.enabled).count() <= 1);
    let mut iccids: Vec<_> = e.profiles.iter().map(|p| p.iccid).collect();
    iccids.sort();
    iccids.dedup();
    assert_eq!(iccids.len(), e.profiles.len(), "ICCIDs unique");
    let json = serde_json::to_string(card.state()).expect("state serialises");
    let back: CardState = serde_json::from_str(&json).expect("state loads");
    assert_eq!(&back, card.state());
});
