//! A counted soak of random and grammar-aware APDUs against the UICC and the eUICC, with and
//! without a state directory: every answer carries a status word, the card never panics, and
//! the state on disk always loads back as exactly the card's persistent state (no half-written
//! or corrupt state). The property tests (`uicc_props`, `euicc_props`) shrink failures; this
//! one is for volume: `SIMLAB_SOAK_APDUS=N` APDUs per card and mode (default 2,500; the
//! figures in docs/reliability.md come from a release run with a larger N), seed
//! `SIMLAB_SOAK_SEED` (default fixed, so a failure reproduces).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rstest::rstest;
use simlab_emulator::store::StateStore;
use simlab_emulator::uicc::CardState;
use simlab_emulator::{CardDefinition, Uicc};
use std::path::Path;

const DEFAULT_APDUS: usize = 2_500;
const DEFAULT_SEED: u64 = 0x51_1AB;
/// With a state directory, reload and compare after this many APDUs.
const CHECK_EVERY: usize = 50;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn definition(name: &str) -> CardDefinition {
    let path = format!(
        "{}/../vectors/cards/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    CardDefinition::load(Path::new(&path)).unwrap()
}

/// Instructions of TS 102 221 / TS 31.102 / GlobalPlatform a terminal sends, and some not.
const INS: [u8; 24] = [
    0xA4, 0xB0, 0xB2, 0xD6, 0xDC, 0xA2, 0x32, 0x20, 0x24, 0x26, 0x28, 0x2C, 0x88, 0xC0, 0xF2, 0x70,
    0xE2, 0x10, 0x12, 0x14, 0xC2, 0xCA, 0x04, 0x44,
];
const CLA: [u8; 8] = [0x00, 0x01, 0x02, 0x03, 0x40, 0x80, 0x81, 0xA0];
/// FIDs and AIDs worth selecting: MF, EF.ICCID, EF.DIR, EF.ARR, DF.TELECOM, ADF.USIM (by
/// the TS.48 AID), the ISD-R.
const SELECT_TARGETS: [&str; 7] = [
    "3F00",
    "2FE2",
    "2F00",
    "2F06",
    "7F10",
    "A0000000871002FF49FF0589",
    "A0000005591010FFFFFFFF8900000100",
];
/// ES10 tags the ISD-R knows (`BF20`…`BF56`), for STORE DATA bodies.
const ES10_TAGS: [u8; 14] = [
    0x20, 0x21, 0x22, 0x2D, 0x2E, 0x30, 0x31, 0x32, 0x33, 0x34, 0x38, 0x3C, 0x3E, 0x41,
];

fn apdu(rng: &mut StdRng) -> Vec<u8> {
    let cla = if rng.gen_bool(0.9) {
        CLA[rng.gen_range(0..CLA.len())]
    } else {
        rng.gen()
    };
    match rng.gen_range(0..10) {
        // Pure noise, any length.
        0 => (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect(),
        // SELECT something real.
        1 | 2 => {
            let target = hex::decode(SELECT_TARGETS[rng.gen_range(0..SELECT_TARGETS.len())])
                .unwrap_or_default();
            let p1 = if target.len() > 2 { 0x04 } else { 0x00 };
            let mut a = vec![cla, 0xA4, p1, [0x04, 0x0C][rng.gen_range(0..2)]];
            a.push(target.len() as u8);
            a.extend(target);
            a.push(0x00);
            a
        }
        // STORE DATA with an ES10 tag, in one block or as a first block.
        3 => {
            let body_len = rng.gen_range(0..120);
            let mut body = vec![0xBF, ES10_TAGS[rng.gen_range(0..ES10_TAGS.len())]];
            body.push(body_len as u8);
            body.extend((0..body_len).map(|_| rng.gen::<u8>()));
            let p1 = [0x91, 0x11, 0x00][rng.gen_range(0..3)];
            let mut a = vec![cla, 0xE2, p1, rng.gen_range(0..3), body.len() as u8];
            a.extend(body);
            a
        }
        // Anything else: a known instruction with random parameters, body and Le.
        _ => {
            let ins = INS[rng.gen_range(0..INS.len())];
            let mut a = vec![cla, ins, rng.gen(), rng.gen()];
            match rng.gen_range(0..3) {
                0 => {}
                1 => a.push(rng.gen()),
                _ => {
                    let lc = rng.gen_range(1..64u8);
                    a.push(lc);
                    a.extend((0..lc).map(|_| rng.gen::<u8>()));
                    if rng.gen_bool(0.5) {
                        a.push(rng.gen());
                    }
                }
            }
            a
        }
    }
}

fn load(def: &CardDefinition, dir: &Path) -> Uicc {
    let (atr, initial) = def.build().unwrap();
    let mut c = Uicc::with_store(atr, initial, StateStore::open(dir).unwrap()).unwrap();
    c.power_on();
    c
}

#[rstest]
fn random_apdus_always_get_a_status_word_and_never_corrupt_the_state(
    #[values("uicc", "euicc")] card: &str,
    #[values(false, true)] with_state: bool,
) {
    let n = env("SIMLAB_SOAK_APDUS", DEFAULT_APDUS as u64) as usize;
    let seed = env("SIMLAB_SOAK_SEED", DEFAULT_SEED);
    let mut rng = StdRng::seed_from_u64(seed ^ u64::from(with_state) ^ card.len() as u64);
    let def = definition(card);
    let dir = tempfile::tempdir().unwrap();
    let mut c = if with_state {
        load(&def, dir.path())
    } else {
        let (atr, state) = def.build().unwrap();
        let mut c = Uicc::new(atr, state);
        c.power_on();
        c
    };
    for i in 0..n {
        let a = apdu(&mut rng);
        if rng.gen_ratio(1, 200) {
            c.reset();
        }
        let answer = c.transmit(&a);
        assert!(
            answer.len() >= 2,
            "{card} APDU {i} ({}) got no status word (seed {seed})",
            hex::encode_upper(&a)
        );
        if with_state && (i + 1) % CHECK_EVERY == 0 {
            let saved: CardState = StateStore::open(dir.path())
                .unwrap()
                .load()
                .unwrap()
                .unwrap();
            assert!(
                &saved == c.state(),
                "{card}: after APDU {i} the state on disk is not the card's (seed {seed})"
            );
            // And a card loaded from it works (a power cycle from disk).
            let mut again = load(&def, dir.path());
            assert!(
                again
                    .transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])
                    .len()
                    >= 2
            );
        }
    }
    eprintln!("{card}, state directory {with_state}: {n} APDUs (seed {seed})");
}
