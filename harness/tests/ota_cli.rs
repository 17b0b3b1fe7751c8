//! `simlab ota send` as users run it: text, JSON, exit codes, and a deactivation that
//! survives between runs with --state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::process::Command;

fn simlab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const USIM: &str = "00A4040C0CA0000000871002FF49FF0589";

#[test]
fn the_text_output_shows_each_command_and_the_por() {
    let (ok, out, err) = simlab(&[
        "ota",
        "send",
        "--card",
        "vectors/cards/uicc.toml",
        "--keyset",
        "2",
        "--format",
        "expanded",
        "00A4000C022FE2",
        "00B000000A",
    ]);
    assert!(ok, "{err}");
    // UICC RFM would find EF.ICCID; USIM RFM (the default TAR) starts in ADF.USIM.
    assert!(
        out.contains("TAR B00011 · SPI 0619 · KIc 22 · KID 22"),
        "{out}"
    );
    assert!(
        out.contains("> 00A4000C022FE2\n< 6A82\n> 00B000000A\n  (not executed)"),
        "{out}"
    );
    let (ok, out, err) = simlab(&[
        "ota",
        "send",
        "--card",
        "vectors/cards/uicc.toml",
        "--keyset",
        "2",
        "--format",
        "expanded",
        "--tar",
        "B00010",
        "00A4000C022FE2",
        "00B000000A",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("< 989400010100000010F69000"), "{out}");
    assert!(
        out.contains("PoR 00 (por-ok), secured as the SPI asked, 2 of 2"),
        "{out}"
    );
}

#[test]
fn a_deactivated_usim_stays_deactivated_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let base = [
        "ota",
        "send",
        "--card",
        "vectors/cards/uicc.toml",
        "--state",
        state,
    ];
    let (ok, out, err) = simlab(&[&base[..], &["--json", "--keyset", "3", "00040000"]].concat());
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["result"]["por"]["statusName"], "por-ok");
    assert_eq!(v["result"]["por"]["secured"], true);
    assert_eq!(v["result"]["commands"][0]["sw"], "9000");
    // A second run loads the state: SELECT of ADF.USIM through UICC RFM answers 62 83.
    let (ok, out, err) = simlab(
        &[
            &base[..],
            &["--json", "--keyset", "3", "--tar", "B00010", USIM],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"]["commands"][0]["sw"], "6283", "{out}");
}

#[test]
fn a_refused_packet_is_an_error_with_a_stable_code_and_a_hint() {
    let (ok, out, err) = simlab(&[
        "--json",
        "ota",
        "send",
        "--card",
        "vectors/cards/uicc.toml",
        "--keyset",
        "3",
        "--spi",
        "cc+por",
        "00A40004023F00",
    ]);
    assert!(!ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "por-status");
    assert!(err.contains("0A (insufficient-security-level)"), "{err}");
    assert!(err.contains("--spi"), "{err}");
}

#[test]
fn a_replayed_counter_is_refused_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let run = |counter: &str| {
        simlab(&[
            "ota",
            "send",
            "--card",
            "vectors/cards/uicc.toml",
            "--state",
            state,
            "--keyset",
            "3",
            "--counter",
            counter,
            "00A40004023F00",
        ])
    };
    assert!(run("5").0);
    let (ok, _, err) = run("5");
    assert!(!ok);
    assert!(
        err.contains("02 (cntr-low)") && err.contains("higher --counter"),
        "{err}"
    );
    assert!(run("6").0);
}

#[test]
fn a_keyset_index_the_card_does_not_have_is_named_with_the_ones_it_has() {
    let (ok, _, err) = simlab(&[
        "ota",
        "send",
        "--card",
        "vectors/cards/uicc.toml",
        "--keyset",
        "9",
        "00A40004023F00",
    ]);
    assert!(!ok);
    assert!(
        err.contains("no keyset with KID index 9; it has 3, 2"),
        "{err}"
    );
}
