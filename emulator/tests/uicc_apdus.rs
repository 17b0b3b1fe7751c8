#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! APDU → answer tables for the UICC/USIM of `vectors/cards/uicc.toml`, driven only through
//! `Uicc::transmit` as a terminal would. Scripts are one exchange a line: `> C-APDU` then
//! `< R-APDU`; `*` in an answer matches any bytes.

use rstest::rstest;
use simlab_emulator::{CardDefinition, Uicc};

fn card() -> Uicc {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
    let def = CardDefinition::load(std::path::Path::new(path)).expect("card definition loads");
    let (atr, state) = def.build().expect("card definition builds");
    let mut card = Uicc::new(atr, state);
    card.power_on();
    card
}

fn run(card: &mut Uicc, script: &str) {
    if let Err(e) = simlab_emulator::script::run(&mut |apdu| card.transmit(apdu), script) {
        panic!("{e}");
    }
}

const VERIFY_PIN1: &str = "> 00 20 00 01 08 30303030FFFFFFFF\n< 9000";
const SELECT_USIM: &str = "> 00 A4 04 04 0C A0000000871002FF49FF0589 00\n< 62 * 9000";

#[rstest]
#[case::select_mf_returns_its_fcp("> 00 A4 00 04 02 3F00 00\n< 62 * 83 02 3F00 * 9000")]
#[case::select_mf_with_empty_data("> 00 A4 00 0C 00\n< 9000")]
#[case::select_without_le_waits_for_get_response(
    "> 00 A4 00 04 02 2FE2\n< 61 *\n> 00 C0 00 00 00\n< 62 * 83 02 2FE2 * 9000"
)]
#[case::get_response_with_proprietary_class_too(
    "> 00 A4 00 04 02 2FE2\n< 61 *\n> 80 C0 00 00 00\n< 62 * 9000"
)]
#[case::get_response_without_pending_data("> 00 C0 00 00 10\n< 6985")]
#[case::read_iccid(
    "> 00 A4 00 0C 02 2FE2\n< 9000\n> 00 B0 00 00 0A\n< 98 94 00 01 01 00 00 00 10 F6 9000"
)]
#[case::read_iccid_by_sfi("> 00 B0 82 00 00\n< 98 94 00 01 01 00 00 00 10 F6 9000")]
#[case::read_binary_offset("> 00 A4 00 0C 02 2FE2\n< 9000\n> 00 B0 00 08 02\n< 10 F6 9000")]
#[case::read_past_the_end_warns("> 00 A4 00 0C 02 2FE2\n< 9000\n> 00 B0 00 08 04\n< 10 F6 6282")]
#[case::read_offset_outside_file("> 00 A4 00 0C 02 2FE2\n< 9000\n> 00 B0 00 0A 01\n< 6B00")]
#[case::read_binary_without_selected_ef("> 00 B0 00 00 01\n< 6986")]
#[case::read_binary_on_record_file("> 00 A4 00 0C 02 2F00\n< 9000\n> 00 B0 00 00 01\n< 6981")]
#[case::select_by_path_from_mf("> 00 A4 08 04 04 7FF0 6F07 00\n< 62 * 83 02 6F07 * 9000")]
#[case::select_by_path_via_current_adf(&format!("{SELECT_USIM}\n> 00 A4 08 0C 04 7FFF 6FAD\n< 9000\n> 00 B0 00 00 00\n< 00 00 00 02 9000"))]
#[case::select_unknown_fid("> 00 A4 00 04 02 6F99 00\n< 6A82")]
#[case::select_unknown_aid("> 00 A4 04 04 05 A000000000 00\n< 6A82")]
#[case::select_partial_aid(
    "> 00 A4 04 04 07 A0000000871002 00\n< 62 * 84 0C A0000000871002FF49FF0589 * 9000"
)]
#[case::select_next_occurrence_when_there_is_none(&format!("{SELECT_USIM}\n> 00 A4 04 06 07 A0000000871002 00\n< 6A82"))]
#[case::select_bad_p2("> 00 A4 00 08 02 3F00\n< 6A86")]
#[case::select_fid_with_wrong_length("> 00 A4 00 04 03 3F0000\n< 6700")]
#[case::select_parent_from_adf(&format!("{SELECT_USIM}\n> 00 A4 03 04 00\n< 62 * 83 02 3F00 * 9000"))]
#[case::status_gives_current_df(&format!("{SELECT_USIM}\n> 80 F2 00 00 00\n< 62 * 84 0C A0000000871002FF49FF0589 * 9000"))]
#[case::status_gives_aid(&format!("{SELECT_USIM}\n> 80 F2 00 01 00\n< 84 0C A0000000871002FF49FF0589 9000"))]
#[case::imsi_needs_pin1(&format!("{SELECT_USIM}\n> 00 A4 00 0C 02 6F07\n< 9000\n> 00 B0 00 00 09\n< 6982"))]
#[case::imsi_after_pin1(&format!(
    "{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 A4 00 0C 02 6F07\n< 9000\n> 00 B0 00 00 09\n< 08 09 10 10 10 32 54 06 36 9000"
))]
#[case::pin_status_query("> 00 20 00 01\n< 63C3")]
#[case::pin_status_after_verify(&format!("{VERIFY_PIN1}\n> 00 20 00 01\n< 9000"))]
#[case::wrong_pin_counts_down_then_blocks(
    "> 00 20 00 01 08 31313131FFFFFFFF\n< 63C2\n> 00 20 00 01 08 31313131FFFFFFFF\n< 63C1\n\
     > 00 20 00 01 08 31313131FFFFFFFF\n< 6983\n> 00 20 00 01 08 30303030FFFFFFFF\n< 6983\n\
     > 00 2C 00 01\n< 63CA\n\
     > 00 2C 00 01 10 3131313131313131 31323334FFFFFFFF\n< 9000\n\
     > 00 20 00 01 08 31323334FFFFFFFF\n< 9000"
)]
#[case::wrong_puk_counts_down("> 00 2C 00 01 10 3939393939393939 31323334FFFFFFFF\n< 63C9")]
#[case::verify_unknown_key_reference("> 00 20 00 05 08 30303030FFFFFFFF\n< 6A88")]
#[case::verify_wrong_length("> 00 20 00 01 04 30303030\n< 6700")]
#[case::change_pin(
    "> 00 24 00 01 10 30303030FFFFFFFF 39393939FFFFFFFF\n< 9000\n> 00 20 00 01 08 39393939FFFFFFFF\n< 9000"
)]
#[case::change_pin_rejects_bad_format("> 00 24 00 01 10 30303030FFFFFFFF 3939FFFFFFFFFFFF\n< 6A80")]
#[case::disable_pin1_then_imsi_is_readable(&format!(
    "> 00 26 00 01 08 30303030FFFFFFFF\n< 9000\n> 00 A4 00 0C 00\n< 9000\n{SELECT_USIM}\n\
     > 00 A4 00 0C 02 6F07\n< 9000\n> 00 B0 00 00 09\n< 08 * 9000\n\
     > 00 26 00 01 08 30303030FFFFFFFF\n< 6985\n> 00 28 00 01 08 30303030FFFFFFFF\n< 9000"
))]
#[case::adm1_cannot_be_disabled("> 00 26 00 0A 08 3535353535353535\n< 6985")]
#[case::read_ef_dir_record("> 00 A4 00 0C 02 2F00\n< 9000\n> 00 B2 01 04 20\n< 61 14 4F 0C A0000000871002FF49FF0589 50 04 5553494D * 9000")]
#[case::read_record_wrong_le("> 00 A4 00 0C 02 2F00\n< 9000\n> 00 B2 01 04 10\n< 6C20")]
#[case::read_record_out_of_range("> 00 A4 00 0C 02 2F00\n< 9000\n> 00 B2 03 04 20\n< 6A83")]
#[case::read_record_next_then_end(
    "> 00 A4 00 0C 02 2F00\n< 9000\n> 00 B2 00 02 20\n< 61 * 9000\n> 00 B2 00 02 20\n< FF * 9000\n> 00 B2 00 02 20\n< 6A83"
)]
#[case::read_record_by_sfi("> 00 B2 01 F4 20\n< 61 * 9000")]
#[case::search_record("> 00 A4 00 0C 02 2F00\n< 9000\n> 00 A2 01 04 04 5553494D 00\n< 01 9000")]
#[case::search_record_without_match_warns_and_keeps_the_record_pointer(
    "> 00 A4 00 0C 02 2F00\n< 9000\n> 00 B2 00 02 20\n< 61 * 9000\n> 00 B2 00 02 20\n< FF * 9000\n> 00 A2 01 04 02 ABCD 00\n< 6282\n> 00 B2 00 04 20\n< FF * 9000"
)]
#[case::update_needs_adm(&format!("{SELECT_USIM}\n> 00 A4 00 0C 02 6FAD\n< 9000\n> 00 D6 00 00 01 01\n< 6982"))]
#[case::update_with_adm(&format!(
    "{SELECT_USIM}\n> 00 20 00 0A 08 3535353535353535\n< 9000\n> 00 A4 00 0C 02 6FAD\n< 9000\n\
     > 00 D6 00 03 01 03\n< 9000\n> 00 B0 00 00 04\n< 00 00 00 03 9000\n> 00 D6 00 03 02 0303\n< 6700"
))]
#[case::update_record_msisdn(&format!(
    "{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 A4 00 0C 02 6F40\n< 9000\n\
     > 00 DC 02 04 1C {}\n< 9000\n> 00 B2 02 04 1C\n< {} 9000\n> 00 DC 02 04 02 FFFF\n< 6700",
    "AB".repeat(28),
    "AB".repeat(28)
))]
#[case::manage_channel_open_select_close(&"> 00 70 00 00 01\n< 01 9000\n> 01 A4 04 04 0C A0000000871002FF49FF0589 00\n< 62 * 9000\n\
     > 01 70 80 00\n< 9000\n> 01 A4 00 0C 02 3F00\n< 6881".to_string())]
#[case::manage_channel_explicit_number(
    "> 00 70 00 05\n< 9000\n> 41 A4 00 0C 02 3F00\n< 9000\n> 00 70 80 05\n< 9000"
)]
#[case::manage_channel_extended_class("> 00 70 00 13\n< 9000\n> 4F A4 00 0C 02 3F00\n< 9000")]
#[case::manage_channel_twice("> 00 70 00 02\n< 9000\n> 00 70 00 02\n< 6881")]
#[case::manage_channel_cannot_close_basic("> 00 70 80 00\n< 6A86")]
#[case::unopened_channel("> 02 A4 00 0C 02 3F00\n< 6881")]
#[case::channels_keep_their_own_selection(&"> 00 70 00 00 01\n< 01 9000\n> 01 A4 00 0C 02 2FE2\n< 9000\n> 00 A4 00 0C 02 2F05\n< 9000\n\
     > 01 B0 00 00 02\n< 98 94 9000\n> 00 B0 00 00 02\n< 656E 9000".to_string())]
#[case::terminal_capability("> 80 AA 00 00 0A A9088100820101830107\n< 9000")]
#[case::terminal_profile("> 80 10 00 00 03 FFFFFF\n< 9000")]
#[case::wrong_class("> A0 A4 00 00 02 3F00\n< 6E00")]
#[case::unknown_instruction("> 00 FE 00 00\n< 6D00")]
#[case::truncated_apdu("> 00 A4\n< 6700")]
#[case::store_data_without_isd_r("> 80 E2 91 00 03 BF2E00\n< 6985")]
fn answers_as_the_spec_says(#[case] script: &str) {
    run(&mut card(), script);
}

/// 3GPP TS 35.208 test set 1: RAND, AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A; RES, CK, IK, Kc = c3(CK, IK).
const AUTH_SET1: &str =
    "> 00 88 00 81 22 10 23553cbe9637a89d218ae64dae47bf35 10 55f328b43577b9b94a9ffac354dfafb3 00";
const AUTH_SET1_OK: &str = "< DB 08 a54211d5e3ba50bf 10 b40ba9a3c58b2a05bbf0d987b21bf8cb \
     10 f769bcd751044604127672711c6d3441 08 eae4be823af9a08b 9000";

#[rstest]
#[case::milenage_set1_succeeds(&format!("{SELECT_USIM}\n{VERIFY_PIN1}\n{AUTH_SET1}\n{AUTH_SET1_OK}"))]
#[case::replayed_autn_gives_auts(&format!("{SELECT_USIM}\n{VERIFY_PIN1}\n{AUTH_SET1}\n< DB * 9000\n{AUTH_SET1}\n< DC 0E * 9000"))]
#[case::wrong_mac(&format!(
    "{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 88 00 81 22 10 23553cbe9637a89d218ae64dae47bf35 10 55f328b43577b9b94a9ffac354dfafb4 00\n< 9862"
))]
#[case::needs_pin1(&format!("{SELECT_USIM}\n{AUTH_SET1}\n< 6982"))]
#[case::needs_the_usim_selected(&format!("{VERIFY_PIN1}\n{AUTH_SET1}\n< 6985"))]
#[case::gsm_context(&format!("{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 88 00 80 11 10 23553cbe9637a89d218ae64dae47bf35 00\n< 04 * 08 eae4be823af9a08b 9000"))]
// TS 31.102 §7.1.2: RAND must be 16 bytes ('6A 80'); length bytes that disagree with Lc
// are a wrong length ('67 00'); a case 4 APDU with a stray byte is no APDU at all ('67 00').
#[case::bad_rand_length(&format!("{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 88 00 81 08 04 01020304 02 AABB 00\n< 6A80"))]
#[case::rand_longer_than_the_data(&format!("{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 88 00 81 05 10 01020304 00\n< 6700"))]
#[case::malformed_apdu(&format!("{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 88 00 81 05 04 01020304 00 00\n< 6700"))]
#[case::unknown_context(&format!("{SELECT_USIM}\n{VERIFY_PIN1}\n> 00 88 00 82 11 10 23553cbe9637a89d218ae64dae47bf35 00\n< 6A86"))]
#[case::deactivated_usim_refuses(&format!(
    "> 00 20 00 0A 08 3535353535353535\n< 9000\n{VERIFY_PIN1}\n{SELECT_USIM}\n> 00 04 00 00\n< 9000\n\
     > 00 A4 04 04 0C A0000000871002FF49FF0589 00\n< 62 * 8A 01 04 * 6283\n{AUTH_SET1}\n< 6985\n\
     > 00 44 00 00\n< 9000\n{AUTH_SET1}\n{AUTH_SET1_OK}"
))]
#[case::deactivation_needs_adm(&format!("{SELECT_USIM}\n> 00 04 00 00\n< 6982"))]
#[case::deactivated_ef_cannot_be_read(
    "> 00 20 00 0A 08 3535353535353535\n< 9000\n> 00 04 00 00 02 2FE2\n< 9000\n> 00 B0 00 00 01\n< 6985"
)]
fn authenticates_as_ts_31_102_says(#[case] script: &str) {
    run(&mut card(), script);
}

#[test]
fn atr_of_the_default_card_offers_t0_only() {
    let mut c = card();
    let atr = c.power_on();
    // TD1 = '80' (T=0, TD2 follows), TD2 = '1F' (T=15 global, TA3 follows): no T=1, so pcscd
    // cannot settle on T=1 and lock T=0-only clients out.
    assert_eq!(atr[3], 0x80);
    assert_eq!(atr[4], 0x1F);
    let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
    assert_eq!(tck, 0, "TCK makes the XOR of T0..TCK zero");
}

#[test]
fn long_answers_come_in_pieces_of_ne() {
    let mut c = card();
    let r = c.transmit(&hex::decode("00A4000402 3F00 05".replace(' ', "")).unwrap());
    assert_eq!(r.len(), 7);
    assert_eq!(
        r[5],
        0x61,
        "first five bytes then 61xx: {}",
        hex::encode(&r)
    );
    let rest = usize::from(r[6]);
    let r2 = c.transmit(&[0x00, 0xC0, 0x00, 0x00, r[6]]);
    assert_eq!(r2.len(), rest + 2);
    assert_eq!(&r2[rest..], &[0x90, 0x00]);
}

#[test]
fn power_cycle_forgets_verification_and_channels() {
    let mut c = card();
    run(
        &mut c,
        &format!("{VERIFY_PIN1}\n> 00 70 00 00 01\n< 01 9000"),
    );
    c.power_on();
    run(
        &mut c,
        "> 00 20 00 01\n< 63C3\n> 01 A4 00 0C 02 3F00\n< 6881",
    );
}
