//! Card definitions that would make a card no real one is: each refused at load with the
//! field named and what was expected, never cut or accepted silently (issue: a 4-digit PUK,
//! a 300-character SPN, max_profiles = 0, a 300-character SM-DP+ address, a state directory
//! of the other kind of card).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rstest::rstest;
use simlab_emulator::definition::DefinitionError;
use simlab_emulator::CardDefinition;
use std::path::{Path, PathBuf};

const UICC: &str = include_str!("../../vectors/cards/uicc.toml");
const EUICC: &str = include_str!("../../vectors/cards/euicc.toml");

fn cards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/cards")
}

fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture lacks {from}");
    text.replacen(from, to, 1)
}

/// Builds a definition text as if it were a file in `vectors/cards` (relative paths work).
fn build(text: &str) -> Result<(), DefinitionError> {
    let mut def = CardDefinition::from_toml(text)?;
    def.base_dir = Some(cards_dir());
    def.build().map(|_| ())
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

#[rstest]
#[case::puk1_of_4_digits(
    replaced(UICC, "puk1 = \"11111111\"", "puk1 = \"1234\""),
    "pins.puk1",
    "8 digits"
)]
#[case::puk2_of_9_digits(
    replaced(UICC, "puk2 = \"22222222\"", "puk2 = \"222222222\""),
    "pins.puk2",
    "8 digits"
)]
#[case::puk_with_letters(
    replaced(UICC, "puk1 = \"11111111\"", "puk1 = \"1111111a\""),
    "pins.puk1",
    "8 digits"
)]
#[case::spn_of_300_characters(
    replaced(UICC, "spn = \"simlab\"", &format!("spn = \"{}\"", long(300))),
    "usim.spn", "16"
)]
#[case::spn_of_17_characters(
    replaced(UICC, "spn = \"simlab\"", "spn = \"ABCDEFGHIJKLMNOPQ\""),
    "usim.spn",
    "16"
)]
#[case::spn_with_a_character_efspn_cannot_hold(
    replaced(UICC, "spn = \"simlab\"", "spn = \"sim-lab\""),
    "usim.spn",
    "'-'"
)]
#[case::max_profiles_zero(
    replaced(EUICC, "max_profiles = 8", "max_profiles = 0"),
    "euicc.max_profiles",
    "1 to 4096"
)]
#[case::max_profiles_too_many(
    replaced(EUICC, "max_profiles = 8", "max_profiles = 5000"),
    "euicc.max_profiles",
    "1 to 4096"
)]
#[case::smdp_address_of_300_characters(
    replaced(EUICC, "default_smdp_address = \"testsmdpplus1.example.com\"",
             &format!("default_smdp_address = \"{}.example.com\"", long(288))),
    "euicc.default_smdp_address", "255"
)]
#[case::smdp_address_empty(
    replaced(
        EUICC,
        "default_smdp_address = \"testsmdpplus1.example.com\"",
        "default_smdp_address = \"\""
    ),
    "euicc.default_smdp_address",
    "255"
)]
#[case::smdp_address_with_a_space(
    replaced(
        EUICC,
        "default_smdp_address = \"testsmdpplus1.example.com\"",
        "default_smdp_address = \"smdp plus\""
    ),
    "euicc.default_smdp_address",
    "' '"
)]
#[case::smds_address_of_300_characters(
    replaced(EUICC, "root_smds_address = \"lpa.ds.gsma.com\"", &format!("root_smds_address = \"{}\"", long(300))),
    "euicc.root_smds_address", "255"
)]
#[case::sas_of_65_bytes(
    replaced(EUICC, "max_profiles = 8", &format!("max_profiles = 8\nsas_accreditation_number = \"{}\"", long(65))),
    "euicc.sas_accreditation_number", "64"
)]
fn refuses_nonsense_with_the_field_and_what_was_expected(
    #[case] text: String,
    #[case] field: &str,
    #[case] expected: &str,
) {
    let msg = build(&text).unwrap_err().to_string();
    assert!(msg.contains(field), "does not name {field}: {msg}");
    assert!(msg.contains(expected), "does not say {expected:?}: {msg}");
}

#[rstest]
#[case::spn_of_16(replaced(UICC, "spn = \"simlab\"", "spn = \"ABCDEFGHIJKLMNOP\""))]
#[case::max_profiles_one(replaced(EUICC, "max_profiles = 8", "max_profiles = 1"))]
#[case::address_with_port(replaced(
    EUICC,
    "default_smdp_address = \"testsmdpplus1.example.com\"",
    "default_smdp_address = \"127.0.0.1:8443\""
))]
fn accepts_the_limits_themselves(#[case] text: String) {
    build(&text).unwrap();
}

#[test]
fn the_shipped_cards_pass() {
    build(UICC).unwrap();
    build(EUICC).unwrap();
}

fn state_of(text: &str) -> simlab_emulator::state::CardState {
    let mut def = CardDefinition::from_toml(text).unwrap();
    def.base_dir = Some(cards_dir());
    def.build().unwrap().1
}

#[test]
fn a_state_of_the_other_kind_of_card_is_refused_by_name() {
    let uicc = CardDefinition::from_toml(UICC).unwrap();
    let euicc = CardDefinition::from_toml(EUICC).unwrap();
    let uicc_state = state_of(UICC);
    let euicc_state = state_of(EUICC);
    uicc.check_saved_state(&uicc_state).unwrap();
    euicc.check_saved_state(&euicc_state).unwrap();
    let e = euicc
        .check_saved_state(&uicc_state)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds a UICC") && e.contains("describes an eUICC"),
        "{e}"
    );
    let e = uicc
        .check_saved_state(&euicc_state)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds an eUICC (EID 89049032123451234512345678901235)")
            && e.contains("describes a UICC"),
        "{e}"
    );
}

#[test]
fn a_state_of_another_euicc_is_refused_by_name() {
    let other = replaced(
        EUICC,
        "eid = \"89049032123451234512345678901235\"",
        "eid = \"89049032000000000000000000000166\"",
    );
    let def = CardDefinition::from_toml(&other).unwrap();
    let e = def
        .check_saved_state(&state_of(EUICC))
        .unwrap_err()
        .to_string();
    assert!(e.contains("89049032123451234512345678901235"), "{e}");
    assert!(e.contains("89049032000000000000000000000166"), "{e}");
}
