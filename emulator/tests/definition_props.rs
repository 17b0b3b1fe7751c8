//! Card definitions (`vectors/cards/*.toml`, emulator/src/definition.rs) under property tests:
//!
//! - whatever text a user gives, reading and building it never panics: it is a card, or an
//!   error that names the field (or the TOML problem);
//! - a real definition with any one value replaced by anything is a working card or such an
//!   error, never a card that fails its first SELECT;
//! - a definition's identity round-trips through the card: the ICCID, IMSI, SPN and PIN1 it
//!   gives are what the card built from it answers over APDUs (EF.ICCID, ETSI TS 102 221
//!   §13.2; EF.IMSI, 3GPP TS 31.102 §4.2.2; EF.SPN §4.2.12; VERIFY PIN, TS 102 221 §11.1.9),
//!   decoded here from the bytes by the specs' coding, not by the card's own encoders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use simlab_emulator::{CardDefinition, Uicc};

const UICC: &str = include_str!("../../vectors/cards/uicc.toml");

fn card_of(def: &CardDefinition) -> Option<Uicc> {
    let (atr, state) = def.build().ok()?;
    let mut c = Uicc::new(atr, state);
    c.power_on();
    Some(c)
}

fn sw(answer: &[u8]) -> u16 {
    match answer {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// Sends `apdu` (hex); answers data and SW, fetching '61 XX' with GET RESPONSE.
fn send(card: &mut Uicc, apdu: &str) -> (Vec<u8>, u16) {
    let mut answer = card.transmit(&hex::decode(apdu.replace(' ', "")).unwrap());
    if let [.., 0x61, n] = answer[..] {
        answer = card.transmit(&[0x00, 0xC0, 0x00, 0x00, n]);
    }
    let s = sw(&answer);
    answer.truncate(answer.len().saturating_sub(2));
    (answer, s)
}

/// Swapped-nibble BCD digits (TS 102 221 §13.2, TS 31.102 §4.2.2), 'F' padding dropped.
fn bcd_digits(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| [b & 0x0F, b >> 4])
        .filter(|n| *n != 0x0F)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('?'))
        .collect()
}

/// The `key = value` lines of the UICC definition that a user may edit.
fn editable_lines() -> Vec<&'static str> {
    UICC.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && l.contains(" = "))
        .collect()
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(|s| format!("{s:?}")),
        "[0-9]{0,24}".prop_map(|s| format!("{s:?}")),
        "[0-9a-fA-F]{0,40}".prop_map(|s| format!("{s:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[]".to_owned()),
        Just("[\"0000\", 1]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        "[ -~]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_a_card_or_an_error(text in "(?s).{0,600}") {
        if let Ok(def) = CardDefinition::from_toml(&text) {
            let _ = card_of(&def);
        }
    }

    #[test]
    fn any_value_in_a_real_definition_is_a_working_card_or_a_named_error(
        line in proptest::sample::select(editable_lines()),
        value in toml_value(),
    ) {
        let key = line.split(" = ").next().unwrap_or_default();
        let text = UICC.replacen(line, &format!("{key} = {value}"), 1);
        match CardDefinition::from_toml(&text) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(def) => match def.build() {
                Err(e) => prop_assert!(!e.to_string().is_empty()),
                Ok(_) => {
                    let mut card = card_of(&def).unwrap();
                    prop_assert_eq!(send(&mut card, "00A4000C023F00").1, 0x9000, "{}", text);
                }
            },
        }
    }

    #[test]
    fn a_definitions_identity_is_what_its_card_answers(
        iccid in "89[0-9]{16,18}",
        imsi in "[0-9]{6,15}",
        spn in "[A-Za-z0-9]{1,16}",
        pin1 in "[0-9]{4,8}",
        k in "[0-9a-f]{32}",
        opc in "[0-9a-f]{32}",
    ) {
        let text = format!(
            "[card]\nname = \"prop\"\niccid = \"{iccid}\"\n\n[usim]\nimsi = \"{imsi}\"\n\
             spn = \"{spn}\"\n\n[usim.aka]\nalgorithm = \"milenage\"\nk = \"{k}\"\nopc = \"{opc}\"\n\n\
             [pins]\npin1 = \"{pin1}\"\n"
        );
        let def = CardDefinition::from_toml(&text).unwrap();
        let mut card = card_of(&def).unwrap();

        let (_, s) = send(&mut card, "00A4000C022FE2");
        prop_assert_eq!(s, 0x9000);
        let (data, s) = send(&mut card, "00B000000A");
        prop_assert_eq!(s, 0x9000);
        prop_assert_eq!(bcd_digits(&data), iccid);

        let (_, s) = send(&mut card, "00A4040C0CA0000000871002FF49FF0589");
        prop_assert_eq!(s, 0x9000);
        let pin = format!("{:F<16}", hex::encode_upper(pin1.as_bytes()));
        let (_, s) = send(&mut card, &format!("0020000108{pin}"));
        prop_assert_eq!(s, 0x9000, "PIN1 {}", pin1);

        let (_, s) = send(&mut card, "00A4000C026F07");
        prop_assert_eq!(s, 0x9000);
        let (data, s) = send(&mut card, "00B0000009");
        prop_assert_eq!(s, 0x9000);
        // Byte 1: the number of bytes that follow; then the parity nibble ('9' odd, '1' even)
        // and the digits (TS 31.102 §4.2.2).
        prop_assert_eq!(usize::from(data[0]), imsi.len() / 2 + 1);
        prop_assert_eq!(data[1] & 0x0F, if imsi.len() % 2 == 1 { 0x9 } else { 0x1 });
        prop_assert_eq!(&bcd_digits(&data[1..=usize::from(data[0])])[1..], imsi.as_str());

        let (_, s) = send(&mut card, "00A4000C026F46");
        prop_assert_eq!(s, 0x9000);
        let (data, s) = send(&mut card, "00B0000011");
        prop_assert_eq!(s, 0x9000);
        // Byte 1 the display condition, then the name in the GSM default alphabet, 'FF'
        // padded (TS 31.102 §4.2.12; letters and digits are their ASCII codes there).
        let name: Vec<u8> = data[1..].iter().copied().take_while(|b| *b != 0xFF).collect();
        prop_assert_eq!(String::from_utf8(name).unwrap(), spn);
    }
}
