//! Property tests of the whole card, driven only through APDUs: whatever a terminal sends,
//! the card answers with a status word, never panics, and keeps its PIN and SQN invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use simlab_emulator::aka::generate_vector;
use simlab_emulator::pin::{KEY_ADM1, KEY_PIN1, KEY_PIN2};
use simlab_emulator::uicc::CardState;
use simlab_emulator::{fcp, CardDefinition, Uicc};

fn card() -> Uicc {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
    let (atr, state) = CardDefinition::load(std::path::Path::new(path))
        .unwrap()
        .build()
        .unwrap();
    let mut c = Uicc::new(atr, state);
    c.power_on();
    c
}

/// Commands a terminal plausibly sends, with random parameters, plus pure noise.
fn apdu() -> impl Strategy<Value = Vec<u8>> {
    let fid = prop_oneof![
        Just(vec![0x3F, 0x00]),
        Just(vec![0x2F, 0xE2]),
        Just(vec![0x2F, 0x00]),
        Just(vec![0x6F, 0x07]),
        Just(vec![0x6F, 0x40]),
        Just(vec![0x7F, 0xFF]),
        any::<[u8; 2]>().prop_map(|f| f.to_vec()),
    ];
    let pin = prop_oneof![
        Just(b"0000\xFF\xFF\xFF\xFF".to_vec()),
        Just(b"9999\xFF\xFF\xFF\xFF".to_vec()),
        Just(b"55555555".to_vec()),
        any::<[u8; 8]>().prop_map(|p| p.to_vec()),
    ];
    let key = prop_oneof![Just(KEY_PIN1), Just(KEY_PIN2), Just(KEY_ADM1), any::<u8>()];
    let cla = prop_oneof![
        Just(0x00u8),
        Just(0x01),
        Just(0x40),
        Just(0x80),
        any::<u8>()
    ];
    prop_oneof![
        (cla.clone(), any::<u8>(), any::<u8>(), fid).prop_map(|(c, p1, p2, f)| [
            vec![c, 0xA4, p1 & 0x0F, p2, 2],
            f,
            vec![0]
        ]
        .concat()),
        (cla.clone(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(c, p1, p2, le)| vec![c, 0xB0, p1, p2, le]),
        (cla.clone(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(c, p1, p2, le)| vec![c, 0xB2, p1, p2, le]),
        (
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 1..40)
        )
            .prop_map(|(p1, p2, d)| [vec![0x00, 0xD6, p1, p2, d.len() as u8], d].concat()),
        (
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 1..40)
        )
            .prop_map(|(p1, p2, d)| [vec![0x00, 0xDC, p1, p2, d.len() as u8], d].concat()),
        (
            prop_oneof![Just(0x20u8), Just(0x24), Just(0x26), Just(0x28), Just(0x2C)],
            key,
            pin.clone(),
            pin
        )
            .prop_map(|(ins, k, a, b)| {
                let data = if ins == 0x24 || ins == 0x2C {
                    [a, b].concat()
                } else {
                    a
                };
                [vec![0x00, ins, 0x00, k, data.len() as u8], data].concat()
            }),
        (any::<u8>(), any::<u8>()).prop_map(|(p1, p2)| vec![0x00, 0x70, p1, p2, 0x01]),
        any::<u8>().prop_map(|le| vec![0x00, 0xC0, 0x00, 0x00, le]),
        Just(vec![
            0x00, 0xA4, 0x04, 0x04, 0x0C, 0xA0, 0, 0, 0, 0x87, 0x10, 0x02, 0xFF, 0x49, 0xFF, 0x05,
            0x89, 0x00
        ]),
        Just(vec![0x00, 0x04, 0x00, 0x00]),
        Just(vec![0x00, 0x44, 0x00, 0x00]),
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

/// Checks the invariants of the persistent state.
fn check_invariants(state: &CardState) {
    for (key, pin) in state.pins.iter() {
        assert!(
            pin.attempts_left <= pin.max_attempts,
            "key {key:02X}: {} > {}",
            pin.attempts_left,
            pin.max_attempts
        );
        if let Some(puk) = &pin.puk {
            assert!(puk.attempts_left <= puk.max_attempts);
        }
    }
    // The state always survives a save/load cycle unchanged.
    let json = serde_json::to_string(state).unwrap();
    let back: CardState = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, state);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_apdu_sequence_gets_status_words_and_keeps_invariants(apdus in proptest::collection::vec(apdu(), 1..40)) {
        let mut c = card();
        for a in &apdus {
            let r = c.transmit(a);
            prop_assert!(r.len() >= 2, "answer to {} has no status word", hex::encode(a));
        }
        check_invariants(c.state());
    }

    #[test]
    fn a_blocked_pin_stays_blocked_until_the_puk(wrong in proptest::collection::vec(any::<[u8; 4]>(), 3..8)) {
        let mut c = card();
        for w in &wrong {
            let mut block = [0xFFu8; 8];
            block[..4].copy_from_slice(&w.map(|d| b'1' + d % 9));
            let _ = c.transmit(&[&[0x00, 0x20, 0x00, KEY_PIN1, 8][..], &block].concat());
        }
        let right = c.transmit(&[&[0x00, 0x20, 0x00, KEY_PIN1, 8][..], b"0000\xFF\xFF\xFF\xFF"].concat());
        prop_assert_eq!(right, vec![0x69, 0x83]);
        c.power_on();
        let status = c.transmit(&[0x00, 0x20, 0x00, KEY_PIN1]);
        prop_assert_eq!(status, vec![0x69, 0x83]);
    }

    #[test]
    fn an_sqn_is_accepted_at_most_once(sqns in proptest::collection::vec(1u64..2000, 1..12)) {
        let mut c = card();
        let alg = c.state().usim.as_ref().unwrap().algorithm.clone();
        assert_eq!(c.transmit(&[&[0x00, 0xA4, 0x04, 0x0C, 0x0C][..], &hex::decode("A0000000871002FF49FF0589").unwrap()].concat()), vec![0x90, 0x00]);
        assert_eq!(c.transmit(&[&[0x00, 0x20, 0x00, KEY_PIN1, 8][..], b"0000\xFF\xFF\xFF\xFF"].concat()), vec![0x90, 0x00]);
        let mut accepted = std::collections::BTreeSet::new();
        for (i, sqn) in sqns.iter().enumerate() {
            // IND = low 5 bits; SEQ must grow per IND (TS 33.102 Annex C).
            let v = generate_vector(&alg, *sqn, [0x80, 0x00], &[i as u8; 16]);
            let cmd = [vec![0x00, 0x88, 0x00, 0x81, 0x22, 0x10], v.rand.to_vec(), vec![0x10], v.autn.to_vec(), vec![0x00]].concat();
            let r = c.transmit(&cmd);
            if r.first() == Some(&0xDB) {
                prop_assert!(accepted.insert(*sqn), "SQN {sqn} accepted twice");
            } else {
                prop_assert_eq!(r.first(), Some(&0xDC), "answer {}", hex::encode(&r));
            }
        }
    }

    #[test]
    fn fcp_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = fcp::decode(&bytes);
    }
}
