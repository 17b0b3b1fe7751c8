//! `[[euicc.preinstalled]]` in a card definition: the profile is installed through the
//! card's own installation path when the card is built, so the card starts in the state
//! SGP.23-style cases expect (vectors/cards/euicc-test-profile.toml).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_emulator::{CardDefinition, Uicc};
use std::path::Path;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards");

fn build(text: &str) -> Result<Uicc, String> {
    let mut def = CardDefinition::from_toml(text).map_err(|e| e.to_string())?;
    def.base_dir = Some(Path::new(DIR).to_path_buf());
    let (atr, state) = def.build().map_err(|e| e.to_string())?;
    Ok(Uicc::new(atr, state))
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

const TEST_PROFILE: &str = include_str!("../../vectors/cards/euicc-test-profile.toml");

#[test]
fn the_test_profile_card_starts_with_the_ts48_profile_enabled_as_its_usim() {
    let mut card = build(TEST_PROFILE).unwrap();
    let e = card.state().euicc.as_ref().unwrap();
    assert_eq!(e.profiles.len(), 1);
    let p = &e.profiles[0];
    assert!(p.enabled);
    assert_eq!(p.iccid.digits(), "8949449999999990023");
    assert_eq!(p.profile_name, "TS.48 Generic eUICC Test Profile (v1, A)");
    assert!(e.notifications.is_empty(), "nothing was downloaded");
    card.power_on();
    // EF.ICCID is the profile's (TS 102 221 §13.2), EF.IMSI its IMSI (TS 31.102 §4.2.2).
    assert_eq!(card.transmit(&hex("00A4000C022FE2")), hex("9000"));
    assert_eq!(
        card.transmit(&hex("00B000000A")),
        hex("98 94 44 99 99 99 99 09 20 F3 9000")
    );
    assert_eq!(
        card.transmit(&hex("00A4040C0CA0000000871002FF49FF0589")),
        hex("9000")
    );
    assert_eq!(card.transmit(&hex("00A4000C026F07")), hex("9000"));
    assert_eq!(
        card.transmit(&hex("00B0000009")),
        hex("08 09 10 10 10 32 54 06 36 9000")
    );
}

#[test]
fn two_enabled_preinstalled_profiles_are_refused() {
    let twice = format!(
        "{TEST_PROFILE}\n[[euicc.preinstalled]]\npackage = \"../profiles/TS48V1-B-UNIQUE.der\"\nenabled = true\n"
    );
    let e = build(&twice).unwrap_err();
    assert!(
        e.contains("euicc.preinstalled") && e.contains("at most one"),
        "{e}"
    );
}

#[test]
fn the_same_package_twice_fails_as_a_download_would_with_iccid_already_on_the_euicc() {
    let twice = format!(
        "{TEST_PROFILE}\n[[euicc.preinstalled]]\npackage = \"../profiles/TS48V1-A-UNIQUE.der\"\n"
    );
    let e = build(&twice).unwrap_err();
    assert!(e.contains("IccidAlreadyExists"), "{e}");
}

#[test]
fn a_package_that_is_not_saip_fails_with_the_field_named() {
    let bad = TEST_PROFILE.replace("../profiles/TS48V1-A-UNIQUE.der", "../pki/README.md");
    let e = build(&bad).unwrap_err();
    assert!(
        e.contains("euicc.preinstalled") && e.contains("does not install"),
        "{e}"
    );
}
