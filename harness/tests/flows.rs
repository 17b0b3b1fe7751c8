//! Every flow × variant of the seed (JP7540673B2 Fig. 4–17), in-process cards against a fresh
//! embedded network each: each must pass its checks (outcomes read back from the cards over
//! APDUs and from the network's admin API), and each security variant must be refused with
//! its stable code and leave nothing half-done. The scenario files of `vectors/flows` run too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rstest::rstest;
use simlab_harness::flows::{self, catalog, engine, scenario, Env, FlowResult, Scenario};
use std::path::Path;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors");

fn env() -> Env {
    let mut env = Env::embedded(VECTORS);
    env.record = true;
    env
}

fn explain(r: &FlowResult) -> String {
    let mut text = format!("{} failed: {:?}\n", r.name, r.failure);
    for s in &r.steps {
        text.push_str(&format!("  {:>6} {} {:?}\n", s.id, s.title, s.outcome));
    }
    for c in &r.checks {
        text.push_str(&format!("  check {} {}: {}\n", c.ok, c.what, c.detail));
    }
    text
}

fn run(flow: &str, variant: &str) -> FlowResult {
    let s = Scenario::by_name(&format!("{flow}/{variant}"))
        .unwrap()
        .remove(0);
    flows::run(&s, &env(), &|_| {})
}

/// Every variant of the catalog, so that a new one cannot be forgotten below.
const CASES: &[(&str, &str)] = &[
    ("companion-download", "fa"),
    ("companion-download", "mah"),
    ("companion-download", "two-secondaries"),
    ("companion-download", "activation-code-twice"),
    ("companion-download", "other-eid"),
    ("bind-with-download", "eap-aka"),
    ("bind-with-download", "sms"),
    ("contract", "accept"),
    ("contract", "decline"),
    ("contract", "second-contract"),
    ("contract", "second-device-code"),
    ("multi-imsi-uicc", "default"),
    ("multi-imsi-uicc", "code-check"),
    ("unbind", "default"),
    ("unbind", "remove-profile"),
    ("unbind", "outsider"),
    ("dual-card", "eap-aka"),
    ("dual-card", "sms"),
    ("dual-card", "with-binding"),
    ("euicc-upgrade", "typed"),
    ("euicc-upgrade", "nfc"),
    ("euicc-upgrade", "wrong-code"),
    ("euicc-upgrade", "lockout"),
    ("euicc-upgrade", "expired-code"),
    ("euicc-upgrade", "reused-code"),
    ("euicc-upgrade", "someone-else"),
    ("euicc-upgrade", "network-restart"),
    ("euicc-migration", "typed"),
    ("euicc-migration", "concurrent"),
    ("euicc-migration", "someone-else"),
];

#[test]
fn the_cases_cover_every_flow_and_variant_of_the_catalog() {
    let all: Vec<(String, String)> = catalog::FLOWS
        .iter()
        .flat_map(|f| {
            f.variants
                .iter()
                .map(|v| (f.name.to_owned(), v.name.to_owned()))
        })
        .collect();
    let listed: Vec<(String, String)> = CASES
        .iter()
        .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(listed, all);
}

#[rstest]
#[case::companion_download_fa("companion-download", "fa")]
#[case::companion_download_mah("companion-download", "mah")]
#[case::companion_download_two_secondaries("companion-download", "two-secondaries")]
#[case::companion_download_activation_code_twice("companion-download", "activation-code-twice")]
#[case::companion_download_other_eid("companion-download", "other-eid")]
#[case::contract_accept("contract", "accept")]
#[case::contract_decline("contract", "decline")]
#[case::contract_second_contract("contract", "second-contract")]
#[case::contract_second_device_code("contract", "second-device-code")]
#[case::bind_with_download_eap_aka("bind-with-download", "eap-aka")]
#[case::bind_with_download_sms("bind-with-download", "sms")]
#[case::multi_imsi_uicc_default("multi-imsi-uicc", "default")]
#[case::multi_imsi_uicc_code_check("multi-imsi-uicc", "code-check")]
#[case::unbind_default("unbind", "default")]
#[case::unbind_remove_profile("unbind", "remove-profile")]
#[case::unbind_outsider("unbind", "outsider")]
#[case::dual_card_eap_aka("dual-card", "eap-aka")]
#[case::dual_card_sms("dual-card", "sms")]
#[case::dual_card_with_binding("dual-card", "with-binding")]
#[case::euicc_upgrade_typed("euicc-upgrade", "typed")]
#[case::euicc_upgrade_nfc("euicc-upgrade", "nfc")]
#[case::euicc_upgrade_wrong_code("euicc-upgrade", "wrong-code")]
#[case::euicc_upgrade_lockout("euicc-upgrade", "lockout")]
#[case::euicc_upgrade_expired_code("euicc-upgrade", "expired-code")]
#[case::euicc_upgrade_reused_code("euicc-upgrade", "reused-code")]
#[case::euicc_upgrade_someone_else("euicc-upgrade", "someone-else")]
#[case::euicc_upgrade_network_restart("euicc-upgrade", "network-restart")]
#[case::euicc_migration_typed("euicc-migration", "typed")]
#[case::euicc_migration_concurrent("euicc-migration", "concurrent")]
#[case::euicc_migration_someone_else("euicc-migration", "someone-else")]
fn flow_passes_in_process(#[case] flow: &str, #[case] variant: &str) {
    let r = run(flow, variant);
    assert!(r.passed, "{}", explain(&r));
    assert!(!r.checks.is_empty(), "{} proved nothing", r.name);
    let want = Scenario::by_name(&format!("{flow}/{variant}")).unwrap()[0]
        .expect
        .error
        .clone();
    assert_eq!(r.refused, want, "refusal of {}", r.name);
}

#[test]
fn a_refusal_the_scenario_expects_but_that_never_comes_fails_the_flow() {
    let mut s = Scenario::by_name("dual-card/eap-aka").unwrap().remove(0);
    s.expect.error = Some("code-locked".into());
    let r = flows::run(&s, &env(), &|_| {});
    assert!(!r.passed);
    assert!(
        r.failure
            .as_ref()
            .unwrap()
            .message
            .contains("expected the flow to be refused with code-locked"),
        "{}",
        explain(&r)
    );
}

#[test]
fn an_unexpected_refusal_fails_the_flow_at_its_step_with_the_networks_code() {
    // The lockout variant without its expectation: the right code after three wrong ones is
    // refused, and nothing expected that.
    let mut s = Scenario::by_name("euicc-upgrade/lockout")
        .unwrap()
        .remove(0);
    s.expect = scenario::Expect::default();
    let r = flows::run(&s, &env(), &|_| {});
    assert!(!r.passed);
    let f = r.failure.unwrap();
    assert_eq!(f.step.as_deref(), Some("1604"));
    assert_eq!(f.code.as_deref(), Some("code-locked"));
}

#[test]
fn every_scenario_file_in_vectors_parses_and_passes() {
    let scenarios = scenario::load_dir(&Path::new(VECTORS).join("flows")).unwrap();
    assert!(scenarios.len() >= 8, "{} scenario files", scenarios.len());
    for s in scenarios {
        let r = flows::run(&s, &env(), &|_| {});
        assert!(r.passed, "{}: {}", s.source.unwrap().display(), explain(&r));
    }
}

#[test]
fn the_transcript_shows_every_interface_in_order() {
    let r = run("companion-download", "fa");
    let text =
        simlab_harness::transcript::render_named(&r.transcript.unwrap().entries()).join("\n");
    let order = [
        "== 403",
        "GET /ts43?EAP_ID=0001010123456063",
        "# AUTHENTICATE",
        "== 401",
        "# ES10c.GetEID",
        "LINK bluetooth secondary → primary {\"type\":\"eid\"",
        "== 408",
        "# ES10b.AuthenticateServer",
        "POST /gsma/rsp2/es9plus/getBoundProfilePackage",
        "# ES10c.EnableProfile",
        "== 410",
        "POST /calls",
    ];
    let mut at = 0;
    for needle in order {
        let found = text[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing after byte {at}"));
        at += found;
    }
    let _ = engine::SETTLE;
}

/// The old UICC's proofs of Fig. 16 (SELECT ADF.USIM answers 62 83; AUTHENTICATE with a vector
/// the card would otherwise accept no longer answers DB) hold after the real RFM command
/// (SCP80 over SMS-PP, TS 102 225/226) reaches the card through its device — and do not
/// hold before, so they can fail.
#[test]
fn the_old_uicc_proofs_tell_an_rfm_deactivated_usim_from_an_active_one() {
    use simlab_harness::device::slot::CardSpec;
    use simlab_harness::device::{Device, Recorder, Slot};
    use simlab_harness::ota;
    let file = Path::new(VECTORS).join("cards/uicc.toml");
    let def = simlab_emulator::CardDefinition::load(&file).unwrap();
    let keyset = def.ota.keys().unwrap().keysets[0].keys.clone();
    let spec = CardSpec::File {
        definition: file,
        state: None,
    };
    let rec = Recorder::off();
    let slot = Slot::new(
        "old",
        &spec.to_string(),
        spec.open().unwrap(),
        Some(def),
        &rec,
    );
    let mut old = Device::new("old", Some(slot), None, &rec);

    assert_eq!(old.uicc_usim_select_status().unwrap(), 0x9000);
    let before = old.authenticate_directly(0x40).unwrap();
    assert_eq!(
        (before[0], &before[before.len() - 2..]),
        (0xDB, &[0x90, 0x00][..])
    );

    let command = ota::RemoteCommand::deactivate_usim();
    let messages = ota::build_sms_pp(
        &keyset,
        &command,
        &simlab_emulator::ota::ts_23_040::Address::isdn("12345678"),
        1,
    )
    .unwrap();
    for tpdu in &messages {
        let por = old.deliver_sms_pp(tpdu).unwrap().expect("a PoR");
        let report = ota::verify_por(&keyset, &command, &por).unwrap();
        assert_eq!(
            report.status,
            simlab_emulator::ota::ts_102_225::PorStatus::Ok
        );
    }
    assert_eq!(old.uicc_usim_select_status().unwrap(), 0x6283);
    let after = old.authenticate_directly(0x80).unwrap();
    assert_ne!(after.first(), Some(&0xDB), "{}", hex::encode_upper(&after));
}
