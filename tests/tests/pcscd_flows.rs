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
use pcsc::{Context, ReaderState, Scope, State};
use simlab_harness::adapter::VpcdCard;
use simlab_harness::device::slot::CardSpec;
use simlab_harness::flows::{self, Env, Scenario};
use simlab_vpcd::card::{spawn, ServeOptions};
use std::ffi::CString;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

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

/// The state pcscd shows for `reader` once `done` holds, or the last one seen after
/// `CARD_WAIT`. Watches with SCardGetStatusChange and never connects: probing with
/// SCardConnect right after a card left makes the probe's disconnect reset a card that is no
/// longer there; pcscd then marks the reader absent behind its event thread's back, which
/// never reports the removal and so never notices the NEXT card in that slot ("Card Not
/// Inserted" for as long as pcscd runs; seen with pcsc-lite 1.9 and vpcd 3.3).
fn wait_for_state(reader: &str, done: impl Fn(State) -> bool) -> (bool, State) {
    let ctx = Context::establish(Scope::User)
        .unwrap_or_else(|e| panic!("no PC/SC service ({e}): start pcscd (scripts/pcscd.sh start)"));
    let name = CString::new(reader).unwrap();
    let deadline = Instant::now() + CARD_WAIT;
    let mut known = State::UNAWARE;
    loop {
        let mut rs = [ReaderState::new(name.clone(), known)];
        let left = deadline.saturating_duration_since(Instant::now());
        match ctx.get_status_change(left.min(Duration::from_millis(500)), &mut rs) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => panic!("SCardGetStatusChange on {reader:?}: {e}"),
        }
        let now = rs[0].event_state() - State::CHANGED;
        if done(now) {
            return (true, now);
        }
        if left.is_zero() {
            return (false, now);
        }
        known = now;
    }
}

/// Waits until pcscd shows a card in `reader`.
fn wait_for_card(reader: &str) {
    let (present, state) = wait_for_state(reader, |s| s.contains(State::PRESENT));
    assert!(
        present,
        "no card in {reader:?} within {CARD_WAIT:?}: {state:?}"
    );
}

/// Waits until pcscd shows `reader` empty: the next test's card must not be mistaken for
/// this one (pcscd polls vpcd every 400 ms).
fn wait_for_no_card(reader: &str) {
    let (empty, state) = wait_for_state(reader, |s| s.contains(State::EMPTY));
    assert!(empty, "the card in {reader:?} did not go away: {state:?}");
}

/// Runs `scenario` with the built-in card `old` served to the first slot and `new` to the
/// second, both used by the flow only as PC/SC readers (`--card old=reader:… --card
/// new=reader:…`); `old_def` is the definition the operator holds for the old card (a UICC
/// needs one: `--card-def old=…`). Asserts that the flow passed and returns the names of the
/// checks it proved (read through pcscd by the flow's own proofs).
fn run_behind_pcscd(scenario: &str, old: &str, new: &str, old_def: Option<&str>) -> Vec<String> {
    let (old_slot, new_slot) = slots();
    let _locks = (lock(&old_slot), lock(&new_slot));
    wait_for_no_card(&old_slot.reader);
    wait_for_no_card(&new_slot.reader);
    let serve = |name: &str, slot: &LaneSlot| {
        let card = simlab_harness::cards::load_card(std::path::Path::new(name), None).unwrap();
        spawn(
            VpcdCard::new(card),
            slot.vpcd.clone(),
            ServeOptions::default(),
        )
        .unwrap()
    };
    let old_card = serve(old, &old_slot);
    let new_card = serve(new, &new_slot);
    wait_for_card(&old_slot.reader);
    wait_for_card(&new_slot.reader);

    let mut env = Env::built_in();
    env.cards
        .insert("old".into(), CardSpec::Reader(old_slot.reader.clone()));
    if let Some(def) = old_def {
        env.card_defs.insert("old".into(), def.into());
    }
    env.cards
        .insert("new".into(), CardSpec::Reader(new_slot.reader.clone()));
    let s = Scenario::by_name(scenario).unwrap().remove(0);
    let r = flows::run(&s, &env, &|_| {});
    old_card.stop().unwrap();
    new_card.stop().unwrap();
    wait_for_no_card(&old_slot.reader);
    wait_for_no_card(&new_slot.reader);
    assert!(r.passed, "{:?}\n{:#?}", r.failure, r.steps);
    r.checks
        .iter()
        .filter(|c| c.ok)
        .map(|c| c.what.clone())
        .collect()
}

#[test]
#[ignore = "needs pcscd with vpcd (scripts/test.sh runs it)"]
fn euicc_migration_with_both_euiccs_behind_pcscd() {
    let proven = run_behind_pcscd("euicc-migration/typed", "euicc-2", "euicc", None);
    // The proofs read the cards through pcscd: the old profile disabled, the new enabled.
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
    let proven = run_behind_pcscd("euicc-upgrade/typed", "uicc", "euicc", Some("uicc"));
    for want in [
        "the old UICC's USIM selects with 62 83 (deactivated)",
        "the old UICC no longer answers AUTHENTICATE with DB",
    ] {
        assert!(proven.iter().any(|p| p == want), "{want}: {proven:?}");
    }
}
