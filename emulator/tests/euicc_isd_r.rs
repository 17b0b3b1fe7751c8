#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The ISD-R at the APDU level: selection on any channel, STORE DATA segmentation and block
//! numbers, 61xx answers, other instructions, what probing tools send; a model-based property
//! (at most one enabled profile) driven only through APDUs.

mod euicc_support;

use euicc_support::*;
use proptest::prelude::*;
use simlab_emulator::rsp::es10::*;
use simlab_emulator::Uicc;

fn x(card: &mut Uicc, apdu: &str) -> String {
    hex::encode_upper(card.transmit(&h(apdu)))
}

#[test]
fn isd_r_and_ecasd_are_selectable_on_any_channel() {
    let mut c = card();
    // Basic channel, with the FCI.
    assert_eq!(
        x(&mut c, &format!("00A40400 10 {ISD_R} 00")),
        format!("6F128410{ISD_R}9000")
    );
    // EID on the basic channel, as pySim asks for it (with Le).
    assert_eq!(
        x(&mut c, "80E29100 06 BF3E035C015A 00"),
        format!("BF3E125A10{EID}9000")
    );
    // Channel 2, without Le: 61xx, then GET RESPONSE with the proprietary class.
    assert_eq!(x(&mut c, "00700002"), "9000");
    assert_eq!(x(&mut c, &format!("02A40400 10 {ISD_R}")), "6114");
    assert_eq!(x(&mut c, "82C0000014"), format!("6F128410{ISD_R}9000"));
    assert_eq!(x(&mut c, "82E29100 06 BF3E035C015A"), "6115");
    assert_eq!(x(&mut c, "82C0000015"), format!("BF3E125A10{EID}9000"));
    // ECASD selectable; it takes no ES10.
    assert_eq!(x(&mut c, "00700003"), "9000");
    assert_eq!(
        x(&mut c, "03A40400 10 A0000005591010FFFFFFFF8900000200 00"),
        "6F128410A0000005591010FFFFFFFF89000002009000"
    );
    assert_eq!(x(&mut c, "83E29100 03 BF2000"), "6985");
}

#[test]
fn store_data_needs_the_isd_r_selected_on_its_channel() {
    let mut c = card();
    assert_eq!(x(&mut c, "80E29100 03 BF2000"), "6985");
    assert_eq!(x(&mut c, &format!("00A4040C 10 {ISD_R}")), "9000");
    assert!(x(&mut c, "80E29100 03 BF2000").starts_with("61"));
    // Selecting a file on the channel leaves the ISD-R.
    assert_eq!(x(&mut c, "00A4000C 02 3F00"), "9000");
    assert_eq!(x(&mut c, "80E29100 03 BF2000"), "6985");
}

#[test]
fn segments_are_numbered_per_function_and_answered_9000_in_between() {
    let mut c = card();
    x(&mut c, &format!("00A4040C 10 {ISD_R}"));
    // GetEID split in two blocks.
    assert_eq!(x(&mut c, "80E21100 03 BF3E03"), "9000");
    assert_eq!(
        x(&mut c, "80E29101 03 5C015A 00"),
        format!("BF3E125A10{EID}9000")
    );
    // The next function starts again at block 0; a wrong block number is refused.
    assert_eq!(x(&mut c, "80E21101 03 BF3E03"), "6A86");
    assert_eq!(x(&mut c, "80E21100 03 BF3E03"), "9000");
    assert_eq!(x(&mut c, "80E29102 03 5C015A"), "6A86");
    // Encrypted STORE DATA is not supported.
    assert_eq!(x(&mut c, "80E2D100 03 BF2000"), "6A86");
}

#[test]
fn probes_and_unknown_functions_get_error_status_words() {
    let mut c = card();
    x(&mut c, &format!("00A4040C 10 {ISD_R}"));
    // SGP.32 GetCerts: not an SGP.22 function.
    assert_eq!(x(&mut c, "80E29100 03 BF5600"), "6A88");
    // Not BER-TLV at all.
    assert_eq!(x(&mut c, "80E29100 02 BF2E"), "6A80");
    // GET DATA is no instruction of this card.
    assert_eq!(x(&mut c, "80CA00E000"), "6D00");
    // GetEID without the EID tag in its list.
    assert_eq!(x(&mut c, "80E29100 06 BF3E035C014F"), "6A88");
    // And the card keeps working.
    assert_eq!(
        x(&mut c, "80E29100 06 BF3E035C015A 00"),
        format!("BF3E125A10{EID}9000")
    );
}

#[test]
fn with_no_profile_the_usim_is_absent_and_the_mf_is_there() {
    let mut c = card();
    assert_eq!(x(&mut c, "00A4040C 0C A0000000871002FF49FF0589"), "6A82");
    assert_eq!(x(&mut c, "00A4000C 02 3F00"), "9000");
    assert_eq!(x(&mut c, "00A4000C 02 2F00"), "9000");
    assert_eq!(x(&mut c, "00A4000C 02 2FE2"), "6A82");
}

#[test]
fn long_answers_come_through_61xx_in_256_byte_pieces() {
    let mut c = card();
    let mut lpa = Lpa::new(&mut c);
    let o = Order::of(ts48("TS48V1-A-UNIQUE"));
    let challenge = lpa.challenge();
    let req = SmDp::new().initiate(challenge, "x");
    let (answer, sw) = lpa.es10_sw(&req.to_der());
    assert_eq!(sw, 0x9000);
    assert!(
        answer.len() > 256,
        "AuthenticateServer answers more than 256 bytes"
    );
    // Every GET RESPONSE answer carried at most 256 data bytes.
    assert!(lpa.transcript.iter().all(|(_, r)| r.len() <= 258));
    assert!(AuthenticateServerResponse::from_der(&answer).is_ok());
    drop(o);
}

// ---------------------------------------------------------------------------------------
// Model-based: random Enable/Disable/Delete/Reset sequences on three installed profiles,
// through APDUs only; the card must agree with a model, and never show two enabled profiles.

#[derive(Debug, Clone, Copy)]
enum Op {
    Enable(usize),
    Disable(usize),
    Delete(usize),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(Op::Enable),
        (0..3usize).prop_map(Op::Disable),
        (0..3usize).prop_map(Op::Delete),
        Just(Op::Reset),
    ]
}

/// A card with three profiles installed (downloads are slow in debug builds: done once).
fn three_profiles() -> (Vec<u8>, simlab_emulator::uicc::CardState, Vec<Iccid>) {
    let mut c = card();
    let mut iccids = Vec::new();
    let mut lpa = Lpa::new(&mut c);
    for name in [
        "TS48V1-A-UNIQUE",
        "TS48V1-B-UNIQUE",
        "TS48V2-SAIP2-1-BERTLV-UNIQUE",
    ] {
        let o = Order::of(ts48(name));
        let pir = download(&mut lpa, &mut SmDp::new(), &o);
        assert!(matches!(checked_result(&pir), FinalResult::Success { .. }));
        iccids.push(o.iccid);
    }
    drop(lpa);
    (c.atr().to_vec(), c.state().clone(), iccids)
}

fn ef_iccid(card: &mut Uicc) -> Option<Vec<u8>> {
    let r = card.transmit(&h("00A4000C022FE2"));
    if r != [0x90, 0x00] {
        return None;
    }
    let r = card.transmit(&h("00B000000A"));
    Some(r[..10].to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn at_most_one_profile_is_enabled_and_the_card_shows_it_after_reset(ops in proptest::collection::vec(op(), 1..12)) {
        use std::sync::OnceLock;
        static BASE: OnceLock<(Vec<u8>, simlab_emulator::uicc::CardState, Vec<Iccid>)> = OnceLock::new();
        let (atr, state, iccids) = BASE.get_or_init(three_profiles).clone();
        let mut card = Uicc::new(atr, state);
        card.seed_rng(1);
        card.power_on();
        let mut lpa = Lpa::new(&mut card);
        // Model: Some(enabled?) per profile, None once deleted.
        let mut model: Vec<Option<bool>> = vec![Some(false); 3];
        let mut shown: Option<usize> = None;
        for op in ops {
            match op {
                Op::Enable(i) => {
                    let want = match model[i] {
                        None => EnableProfileResult::IccidOrAidNotFound,
                        Some(true) => EnableProfileResult::ProfileNotInDisabledState,
                        Some(false) => {
                            for m in model.iter_mut().flatten() { *m = false; }
                            model[i] = Some(true);
                            EnableProfileResult::Ok
                        }
                    };
                    prop_assert_eq!(lpa.enable(iccids[i]), want);
                }
                Op::Disable(i) => {
                    let want = match model[i] {
                        None => DisableProfileResult::IccidOrAidNotFound,
                        Some(false) => DisableProfileResult::ProfileNotInEnabledState,
                        Some(true) => { model[i] = Some(false); DisableProfileResult::Ok }
                    };
                    prop_assert_eq!(lpa.disable(iccids[i]), want);
                }
                Op::Delete(i) => {
                    let want = match model[i] {
                        None => DeleteProfileResult::IccidOrAidNotFound,
                        Some(true) => DeleteProfileResult::ProfileNotInDisabledState,
                        Some(false) => { model[i] = None; DeleteProfileResult::Ok }
                    };
                    prop_assert_eq!(lpa.delete(iccids[i]), want);
                }
                Op::Reset => {
                    lpa.card.reset();
                    lpa.channel = None;
                    shown = model.iter().position(|m| *m == Some(true));
                    prop_assert_eq!(ef_iccid(lpa.card), shown.map(|i| iccids[i].0.to_vec()));
                }
            }
            let infos = lpa.profiles();
            let enabled = infos.iter().filter(|p| p.state == Some(ProfileState::Enabled)).count();
            prop_assert!(enabled <= 1, "{} profiles enabled", enabled);
            let present: Vec<Iccid> = infos.iter().map(|p| p.iccid.unwrap()).collect();
            let want: Vec<Iccid> = (0..3).filter(|i| model[*i].is_some()).map(|i| iccids[i]).collect();
            prop_assert_eq!(present, want);
            // Between resets the card keeps showing what the last reset chose.
            if !matches!(op, Op::Reset) {
                prop_assert_eq!(ef_iccid(lpa.card), shown.map(|i| iccids[i].0.to_vec()));
            }
        }
    }
}

#[test]
fn file_commands_and_authenticate_find_nothing_on_the_isd_r_channel() {
    let mut c = card();
    assert_eq!(x(&mut c, "00A4000C 02 2F00"), "9000");
    assert_eq!(x(&mut c, &format!("00A4040C 10 {ISD_R}")), "9000");
    assert_eq!(x(&mut c, "00B2010420"), "6986");
    assert_eq!(
        x(
            &mut c,
            "0088008122 10 00000000000000000000000000000000 10 00000000000000000000000000000000 00"
        ),
        "6985"
    );
}
