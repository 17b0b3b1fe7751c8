//! The text formats users write: conformance case files (nom parser), deviations files,
//! card definitions (TOML, then building the card), activation codes (SGP.22 §4.1), and
//! ES9+ JSON bodies (SGP.22 §6.5.2). The first byte picks the format. Never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_harness::es9p;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            let _ =
                simlab_harness::suite::parse::parse_file(std::path::Path::new("f.cases"), &text);
        }
        1 => {
            let _ = simlab_harness::suite::deviations::Deviations::parse(&text);
        }
        2 => {
            if let Ok(def) = simlab_emulator::CardDefinition::from_toml(&text) {
                let _ = def.build();
            }
        }
        3 => {
            if let Ok(ac) = text.parse::<simlab_harness::lpa::ActivationCode>() {
                let again: simlab_harness::lpa::ActivationCode = ac
                    .to_string()
                    .parse()
                    .expect("a printed activation code parses");
                assert_eq!(again.to_string(), ac.to_string());
            }
        }
        _ => {
            let _ = serde_json::from_slice::<es9p::InitiateAuthenticationRequest>(rest);
            let _ = serde_json::from_slice::<es9p::InitiateAuthenticationResponse>(rest);
            let _ = serde_json::from_slice::<es9p::AuthenticateClientRequest>(rest);
            let _ = serde_json::from_slice::<es9p::AuthenticateClientResponse>(rest);
            let _ = serde_json::from_slice::<es9p::GetBoundProfilePackageRequest>(rest);
            let _ = serde_json::from_slice::<es9p::GetBoundProfilePackageResponse>(rest);
            let _ = serde_json::from_slice::<es9p::HandleNotificationRequest>(rest);
            let _ = serde_json::from_slice::<es9p::CancelSessionRequest>(rest);
        }
    }
});
