//! Card definitions: a bad file is reported with the field at fault and what was expected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rstest::rstest;
use simlab_emulator::CardDefinition;

const GOOD: &str = include_str!("../../vectors/cards/uicc.toml");

fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "fixture lacks {from}");
    GOOD.replacen(from, to, 1)
}

#[rstest]
#[case::iccid_letters(
    with("iccid = \"8949001010000000016\"", "iccid = \"89490010100000000AB\""),
    "card.iccid"
)]
#[case::iccid_short(
    with("iccid = \"8949001010000000016\"", "iccid = \"894900\""),
    "card.iccid"
)]
#[case::imsi_too_long(
    with("imsi = \"001010123456063\"", "imsi = \"0010101234560631\""),
    "usim.imsi"
)]
#[case::aid_not_hex(
    with("aid = \"A0000000871002FF49FF0589\"", "aid = \"USIM\""),
    "usim.aid"
)]
#[case::k_too_short(
    with("k = \"465b5ce8b199b49faa5f0a2ee238a6bc\"", "k = \"465b\""),
    "usim.aka.k"
)]
#[case::unknown_algorithm(
    with("algorithm = \"milenage\"", "algorithm = \"comp128\""),
    "usim.aka.algorithm"
)]
#[case::pin_letters(with("pin1 = \"0000\"", "pin1 = \"abcd\""), "pins.pin1")]
#[case::msisdn_letters(
    with("msisdn = \"+15555550100\"", "msisdn = \"call me\""),
    "usim.msisdn"
)]
#[case::mnc_length(with("mnc_length = 2", "mnc_length = 4"), "usim.mnc_length")]
#[case::op_and_opc(
    with(
        "opc = \"cd63cb71954a9f4e48a5994e37a02baf\"",
        "opc = \"cd63cb71954a9f4e48a5994e37a02baf\"\nop = \"cdc202d5123e20f62b6d676ac72cb318\""
    ),
    "usim.aka"
)]
#[case::bad_override(format!("{GOOD}\n[[file]]\npath = \"ADF/6FAD\"\ncontent = \"0000\"\n"), "ADF/6FAD")]
#[case::override_missing_file(format!("{GOOD}\n[[file]]\npath = \"ADF/6FFF\"\ncontent = \"00\"\n"), "ADF/6FFF")]
fn names_the_field_at_fault(#[case] text: String, #[case] field: &str) {
    let err = CardDefinition::from_toml(&text)
        .and_then(|d| d.build().map(|_| ()))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(field), "error does not name {field}: {msg}");
}

#[test]
fn unknown_fields_are_refused_with_their_name() {
    let err = CardDefinition::from_toml(&with("[card]", "[card]\ncolour = \"red\"")).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn a_missing_section_is_named() {
    let text = GOOD.split("[usim]").next().unwrap();
    let err = CardDefinition::from_toml(text).unwrap_err();
    assert!(err.to_string().contains("usim"), "{err}");
}

#[test]
fn op_is_turned_into_opc() {
    let text = with(
        "opc = \"cd63cb71954a9f4e48a5994e37a02baf\"",
        "op = \"cdc202d5123e20f62b6d676ac72cb318\"",
    );
    let (_, from_op) = CardDefinition::from_toml(&text).unwrap().build().unwrap();
    let (_, from_opc) = CardDefinition::from_toml(GOOD).unwrap().build().unwrap();
    assert_eq!(
        from_op.usim, from_opc.usim,
        "TS 35.208 set 1: OPc = f(K, OP)"
    );
}
