//! `simlab suite run` as QA teams and CI use it: the whole conformance suite against
//! simlab's two cards (exit 0, JUnit and JSON reports that say so), a case file with a
//! mistake (exit 1, file:line:column), a failing case (exit 1, transcript, JUnit failure
//! with expected vs got), and a card that stops answering (the run ends with a clear error
//! and a JUnit of what ran, never hangs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use quick_junit::Report;
use simlab_harness::adapter::VpcdCard;
use simlab_harness::suite::target::TargetSpec;
use simlab_harness::suite::{execute, RunOptions};
use simlab_vpcd::VirtualCard;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn simlab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn junit(path: &Path) -> Report {
    Report::deserialize_from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[rstest::rstest]
#[case::uicc("uicc", &["uicc", "usim", "ota"], "euicc", None)]
// The eUICC's OTA keysets are its enabled profile's, not in its definition: given in a file.
#[case::euicc_test_profile(
    "euicc-test-profile",
    &["uicc", "usim", "euicc", "ota"],
    "",
    Some("vectors/conformance/keys/ts48-test-profile.toml")
)]
fn the_suite_passes_against_simlabs_cards_with_their_deviations_files(
    #[case] card: &str,
    #[case] areas_run: &[&str],
    #[case] area_skipped: &str,
    #[case] ota_keys: Option<&str>,
) {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("junit.xml");
    let json = dir.path().join("report.json");
    let transcripts = dir.path().join("t");
    let card_file = format!("vectors/cards/{card}.toml");
    let deviations = format!("vectors/conformance/deviations/simlab-{card}.toml");
    let mut args = vec![
        "suite",
        "run",
        "vectors/conformance",
        "--card",
        &card_file,
        "--deviations",
        &deviations,
        "--junit",
        xml.to_str().unwrap(),
        "--json-report",
        json.to_str().unwrap(),
        "--transcripts",
        transcripts.to_str().unwrap(),
    ];
    if let Some(keys) = ota_keys {
        args.extend(["--ota-keys", keys]);
    }
    let (code, out, err) = simlab(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");
    let report = junit(&xml);
    let cases: usize = report.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert!(cases >= 200, "{cases} cases in the JUnit report");
    assert_eq!(report.failures, 0);
    assert_eq!(report.errors, 0);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // simlab's deviations files are current: nothing listed fails, passes or matches nothing.
    assert_eq!(v["totals"]["knownDeviations"], 0, "{}", v["totals"]);
    assert_eq!(v["totals"]["passedDespiteDeviation"], 0, "{}", v["totals"]);
    assert_eq!(v["unusedDeviations"], serde_json::json!([]));
    for area in areas_run {
        assert!(
            v["areas"][area]["passed"].as_u64().unwrap() > 10,
            "{area}: {}",
            v["areas"][area]
        );
    }
    if !area_skipped.is_empty() {
        assert_eq!(v["areas"][area_skipped]["passed"], 0);
        assert!(v["areas"][area_skipped]["skipped"].as_u64().unwrap() > 10);
    }
    // Every case names its spec clause; every run case left a transcript.
    for c in v["cases"].as_array().unwrap() {
        assert!(!c["spec"].as_str().unwrap().is_empty(), "{c}");
        if c["status"] == "passed" {
            let f = transcripts.join(format!("{}.txt", c["id"].as_str().unwrap()));
            assert!(f.exists(), "{}", f.display());
        }
    }
}

#[test]
fn an_ota_case_checks_the_por_and_names_what_came() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("o.cases");
    std::fs::write(
        &f,
        "area = \"ota\"\n\
         case TC_O.Good {\n    spec = \"ETSI TS 102 226 §6\"\n    \
         ota tar=B00010 keyset=3 format=expanded apdus=\"00A4000C022FE2, 00B000000A\"\n    \
         por ok\n    sw 9000\n    data = $ICCID\n}\n\
         case TC_O.WrongExpectation {\n    spec = \"none (a deliberately wrong case)\"\n    \
         ota tar=B00010 keyset=3 apdus=\"00A4000C022FE2\"\n    por cntr-low\n}\n\
         case TC_O.NoKeys {\n    spec = \"none\"\n    \
         ota tar=B00010 keyset=9 apdus=\"00A4000C022FE2\"\n    por ok\n}\n",
    )
    .unwrap();
    let (code, text, err) = simlab(&[
        "suite",
        "run",
        f.to_str().unwrap(),
        "--card",
        "vectors/cards/uicc.toml",
    ]);
    assert_eq!(code, 1, "{text}{err}");
    assert!(
        text.contains("FAILED TC_O.WrongExpectation")
            && text.contains("expected PoR 02 (cntr-low)")
            && text.contains("got 1 message(s), CNTR 0, PoR 00 (por-ok), secured"),
        "{text}"
    );
    assert!(!text.contains("FAILED TC_O.Good"), "{text}");
    assert!(
        text.contains("no `ota-keyset-9`: no such keyset in vectors/cards/uicc.toml"),
        "{text}"
    );
}

#[test]
fn a_mistake_in_a_case_file_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.cases");
    std::fs::write(
        &f,
        "case TC_X.One {\n    spec = \"TS 102 221 §11.1.1\"\n    > 00 A4 00 0C 02 3F0\n    sw 9000\n}\n",
    )
    .unwrap();
    let (code, _, err) = simlab(&[
        "suite",
        "run",
        f.to_str().unwrap(),
        "--card",
        "vectors/cards/uicc.toml",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.cases:3:24: expected hex"), "{err}");
}

#[test]
fn a_failing_case_fails_the_run_with_expected_got_and_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.cases");
    std::fs::write(
        &f,
        "area = \"x\"\ncase TC_X.Wrong {\n    title = \"EF.ICCID is 11 bytes\"\n    spec = \"none (a deliberately wrong case)\"\n    >> 00 A4 00 04 02 2FE2\n    tlv 62/80 = 000B\n}\n\
         case TC_X.Right {\n    spec = \"ETSI TS 102 221 V17.1.0 §13.2\"\n    >> 00 A4 00 04 02 2FE2\n    tlv 62/80 = 000A\n}\n",
    )
    .unwrap();
    let xml = dir.path().join("j.xml");
    let (code, out, err) = simlab(&[
        "suite",
        "run",
        f.to_str().unwrap(),
        "--card",
        "vectors/cards/uicc.toml",
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("1 of 2 cases failed"), "{err}");
    assert!(
        out.contains("FAILED TC_X.Wrong")
            && out.contains("expected tlv 62/80 = 000B")
            && out.contains("got tlv 62/80 = 000A")
            && out.contains("> 00A40004 02 2FE2"),
        "{out}"
    );
    let report = junit(&xml);
    assert_eq!(report.failures, 1);
    let suite = &report.test_suites[0];
    assert_eq!(suite.name.as_str(), "x");
    let wrong = &suite.test_cases[0];
    assert_eq!(wrong.classname.as_ref().map(|c| c.as_str()), Some("x"));
    assert!(wrong.system_out.as_ref().unwrap().as_str().contains("< 61"));
}

#[test]
fn the_same_case_listed_as_a_deviation_does_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.cases");
    std::fs::write(
        &f,
        "case TC_X.Wrong {\n    spec = \"none\"\n    >> 00 A4 00 04 02 2FE2\n    tlv 62/80 = 000B\n}\n",
    )
    .unwrap();
    let d = dir.path().join("dev.toml");
    std::fs::write(&d, "[deviations]\n\"TC_X.*\" = \"known: 10 bytes here\"\n").unwrap();
    let (code, out, err) = simlab(&[
        "suite",
        "run",
        f.to_str().unwrap(),
        "--card",
        "vectors/cards/uicc.toml",
        "--deviations",
        d.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("TC_X.Wrong — known: 10 bytes here"), "{out}");
}

#[test]
fn unknown_requirements_skip_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.cases");
    std::fs::write(
        &f,
        "case TC_X.Euicc {\n    spec = \"SGP.22 §5.7.20\"\n    requires = [\"euicc\"]\n    es10 GetEID\n    sw 9000\n}\n",
    )
    .unwrap();
    let (code, out, err) = simlab(&[
        "--json",
        "suite",
        "run",
        f.to_str().unwrap(),
        "--card",
        "vectors/cards/uicc.toml",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["result"]["cases"][0];
    assert_eq!(c["status"], "skipped");
    assert!(c["reason"].as_str().unwrap().contains("no `euicc`"), "{c}");
}

/// A card that answers `answers` APDUs and then goes silent (a hung reader).
struct Silent {
    card: VpcdCard,
    answers: usize,
}

impl VirtualCard for Silent {
    fn atr(&mut self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) {
        self.card.power_on();
    }
    fn power_off(&mut self) {
        self.card.power_off();
    }
    fn reset(&mut self) {
        self.card.reset();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        if self.answers == 0 {
            std::thread::sleep(Duration::from_secs(30));
        }
        self.answers = self.answers.saturating_sub(1);
        self.card.transmit(apdu)
    }
}

#[test]
fn a_card_that_stops_answering_ends_the_run_with_a_clear_error_and_a_report_of_what_ran() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let uicc =
        simlab_harness::cards::load_card(&root().join("vectors/cards/uicc.toml"), None).unwrap();
    let card_addr = addr.clone();
    // The probe takes some 30 APDUs; the card then answers a few cases and goes silent.
    let _card = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        simlab_vpcd::card::spawn(
            Silent {
                card: VpcdCard::new(uicc),
                answers: 60,
            },
            card_addr,
            simlab_vpcd::card::ServeOptions::default(),
        )
    });
    let started = Instant::now();
    let report = execute(&RunOptions {
        cases: root().join("vectors/conformance/uicc.cases"),
        target: TargetSpec::Vpcd(addr),
        filters: Vec::new(),
        deviations: None,
        timeout: Duration::from_secs(1),
        ota_keys: None,
    })
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the run waited for the silent card"
    );
    let why = report.aborted.clone().expect("the run was aborted");
    assert!(why.contains("stopped answering"), "{why}");
    assert!(!report.ok());
    assert_eq!(report.totals.errors, 1);
    assert!(report.totals.passed > 0);
    assert!(!report.not_run.is_empty());
    let in_file: usize =
        simlab_harness::suite::parse::load(&root().join("vectors/conformance/uicc.cases"))
            .unwrap()
            .iter()
            .map(|f| f.cases.len())
            .sum();
    assert_eq!(
        report.cases.len() + report.not_run.len(),
        in_file,
        "every case is either reported or listed as not run"
    );
    let xml = report.junit().unwrap();
    let parsed = Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.errors, 1);
    assert_eq!(parsed.tests, report.cases.len());
}
