//! The seed's device-change flows with the cards behind the REAL pcscd: the old and the new
//! device's eUICCs served by simlab to two vpcd slots, used by the flows only as PC/SC readers
//! (`--card old=reader:… --card new=reader:…`), exactly as a QA team runs them with
//! `simlab card serve` (docs/flows.md).
//!
//! `#[ignore]`d like the rest of the pcscd lane (`scripts/test.sh` runs it with `--ignored`).
//! The two slots come from the environment: `SIMLAB_VPCD` (default 127.0.0.1:35963, the old
//! device's) and `SIMLAB_VPCD_2` (default the next port, the new device's), readers derived
//! from the ports as in `pcscd_lane.rs` (or `SIMLAB_VPCD_READER` / `SIMLAB_VPCD_2_READER`);
//! each slot is locked against other processes by listening on its lock port, as there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::LaneSlot;
use simlab_harness::adapter::VpcdCard;
use simlab_harness::device::slot::CardSpec;
use simlab_harness::flows::{self, Env, Scenario};
use simlab_harness::transport::PcscReader;
use simlab_vpcd::card::{spawn, ServeOptions};
use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors");
/// pcscd polls vpcd every 400 ms (docs/vpcd.md); generous for a loaded machine.
const CARD_WAIT: Duration = Duration::from_secs(15);
const SLOT_LOCK_WAIT: Duration = Duration::from_secs(120);

fn slots() -> (LaneSlot, LaneSlot) {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let first = LaneSlot::new(
        var("SIMLAB_VPCD").as_deref(),
        var("SIMLAB_VPCD_READER").as_deref(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let next = {
        let (host, port) = first.vpcd.rsplit_once(':').unwrap();
        format!("{host}:{}", port.parse::<u16>().unwrap() + 1)
    };
    let second = LaneSlot::new(
        Some(var("SIMLAB_VPCD_2").as_deref().unwrap_or(&next)),
        var("SIMLAB_VPCD_2_READER").as_deref(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (first, second)
}

/// Holds a slot against other processes (its lock port can have one listener).
fn lock(slot: &LaneSlot) -> TcpListener {
    let deadline = Instant::now() + SLOT_LOCK_WAIT;
    loop {
        match TcpListener::bind(slot.lock.as_str()) {
            Ok(l) => return l,
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot lock vpcd slot {} on {}: {e}", slot.vpcd, slot.lock),
        }
    }
}

/// Waits until pcscd shows a card in `reader`.
fn wait_for_card(reader: &str) {
    let deadline = Instant::now() + CARD_WAIT;
    loop {
        match PcscReader::connect(reader) {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("no card in {reader:?} within {CARD_WAIT:?}: {e}"),
        }
    }
}

/// Waits until pcscd no longer shows a card in `reader`: the next test's card must not be
/// mistaken for this one (pcscd polls vpcd every 400 ms).
fn wait_for_no_card(reader: &str) {
    let deadline = Instant::now() + CARD_WAIT;
    while PcscReader::connect(reader).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the card in {reader:?} did not go away"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs pcscd with vpcd (scripts/test.sh runs it)"]
fn euicc_migration_with_both_euiccs_behind_pcscd() {
    let (old_slot, new_slot) = slots();
    let _locks = (lock(&old_slot), lock(&new_slot));
    wait_for_no_card(&old_slot.reader);
    wait_for_no_card(&new_slot.reader);
    let card = |name: &str| {
        simlab_harness::cards::load_card(
            &std::path::Path::new(VECTORS).join("cards").join(name),
            None,
        )
        .unwrap()
    };
    let old_card = spawn(
        VpcdCard::new(card("euicc-2.toml")),
        old_slot.vpcd.clone(),
        ServeOptions::default(),
    )
    .unwrap();
    let new_card = spawn(
        VpcdCard::new(card("euicc.toml")),
        new_slot.vpcd.clone(),
        ServeOptions::default(),
    )
    .unwrap();
    wait_for_card(&old_slot.reader);
    wait_for_card(&new_slot.reader);

    let mut env = Env::embedded(VECTORS);
    env.cards
        .insert("old".into(), CardSpec::Reader(old_slot.reader.clone()));
    env.cards
        .insert("new".into(), CardSpec::Reader(new_slot.reader.clone()));
    let s = Scenario::by_name("euicc-migration/typed")
        .unwrap()
        .remove(0);
    let r = flows::run(&s, &env, &|_| {});
    old_card.stop().unwrap();
    new_card.stop().unwrap();
    wait_for_no_card(&old_slot.reader);
    wait_for_no_card(&new_slot.reader);
    assert!(r.passed, "{:?}\n{:#?}", r.failure, r.steps);
    // The proofs read the cards through pcscd: the old profile disabled, the new enabled.
    let proven: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.ok)
        .map(|c| c.what.as_str())
        .collect();
    assert!(
        proven
            .iter()
            .any(|w| w.starts_with("the old eUICC shows profile")),
        "{proven:?}"
    );
    assert!(
        proven
            .iter()
            .any(|w| w.starts_with("new's eUICC shows profile")),
        "{proven:?}"
    );
}

/// Fig. 16 through pcscd: the old UICC on one slot (with the definition the operator holds
/// for it), the new eUICC on the other; afterwards the old card, read through pcscd by the
/// flow's own proofs, has its USIM deactivated by the network's RFM (62 83, no DB).
#[test]
#[ignore = "needs pcscd with vpcd (scripts/test.sh runs it)"]
fn euicc_upgrade_with_the_old_uicc_and_the_new_euicc_behind_pcscd() {
    let (old_slot, new_slot) = slots();
    let _locks = (lock(&old_slot), lock(&new_slot));
    wait_for_no_card(&old_slot.reader);
    wait_for_no_card(&new_slot.reader);
    let cards = std::path::Path::new(VECTORS).join("cards");
    let card = |name: &str| simlab_harness::cards::load_card(&cards.join(name), None).unwrap();
    let old_card = spawn(
        VpcdCard::new(card("uicc.toml")),
        old_slot.vpcd.clone(),
        ServeOptions::default(),
    )
    .unwrap();
    let new_card = spawn(
        VpcdCard::new(card("euicc.toml")),
        new_slot.vpcd.clone(),
        ServeOptions::default(),
    )
    .unwrap();
    wait_for_card(&old_slot.reader);
    wait_for_card(&new_slot.reader);

    let mut env = Env::embedded(VECTORS);
    env.cards
        .insert("old".into(), CardSpec::Reader(old_slot.reader.clone()));
    env.card_defs.insert("old".into(), cards.join("uicc.toml"));
    env.cards
        .insert("new".into(), CardSpec::Reader(new_slot.reader.clone()));
    let s = Scenario::by_name("euicc-upgrade/typed").unwrap().remove(0);
    let r = flows::run(&s, &env, &|_| {});
    old_card.stop().unwrap();
    new_card.stop().unwrap();
    wait_for_no_card(&old_slot.reader);
    wait_for_no_card(&new_slot.reader);
    assert!(r.passed, "{:?}\n{:#?}", r.failure, r.steps);
    let proven: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.ok)
        .map(|c| c.what.as_str())
        .collect();
    for want in [
        "the old UICC's USIM selects with 62 83 (deactivated)",
        "the old UICC no longer answers AUTHENTICATE with DB",
    ] {
        assert!(proven.contains(&want), "{want}: {proven:?}");
    }
}
