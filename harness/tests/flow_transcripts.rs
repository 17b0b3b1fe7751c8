//! Snapshots of one normalised transcript per flow (JP7540673B2 figures 4–17): every APDU with
//! its ES10 or ISO command name, every HTTP exchange with the network and the SM-DP+, every SMS
//! and short-range link message, in order — values drawn at random per run (RAND, AUTN, keys,
//! codes, tokens, operation and session ids, profile IMSIs, ports, signatures, one-time keys,
//! the encrypted profile) masked, so a change in what any party says shows as a diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rstest::rstest;
use simlab_harness::flows::{self, Env, Scenario};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors");

#[rstest]
#[case::companion_download("companion-download/fa")]
#[case::contract("contract/accept")]
#[case::multi_imsi_uicc("multi-imsi-uicc/code-check")]
#[case::unbind("unbind/remove-profile")]
#[case::dual_card("dual-card/eap-aka")]
#[case::euicc_upgrade("euicc-upgrade/typed")]
#[case::euicc_upgrade_refused("euicc-upgrade/lockout")]
#[case::euicc_migration("euicc-migration/typed")]
fn normalised_transcript(#[case] name: &str) {
    let s = Scenario::by_name(name).unwrap().remove(0);
    let r = flows::run(&s, &Env::embedded(VECTORS), &|_| {});
    assert!(r.passed, "{name}: {:?}", r.failure);
    let text =
        simlab_harness::transcript::normalise_named(&r.transcript.unwrap().entries()).join("\n");
    insta::assert_snapshot!(name.replace('/', "__"), text);
}
