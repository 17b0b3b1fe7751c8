//! The output contract of `simlab --json` (see README "Output contract"): stdout holds exactly
//! one JSON document, `{"ok": true, "result": …}` or `{"ok": false, "error": {"code", "message",
//! …}}`, keys in camelCase, and the exit code is non-zero exactly when `ok` is false. Each case
//! runs the binary from a directory without the repository (built-in defaults) and is compared
//! with a reviewed snapshot of exit code and stdout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rstest::rstest;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// Keys of every object in `v`, recursively.
fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[rstest]
#[case::apdu_decodes_fcp_and_iccid(
    "apdu_ok",
    &["--json", "apdu", "--card", "uicc", "00A40004022FE2", "00B000000A"]
)]
#[case::apdu_unexpected_status_word(
    "apdu_unexpected",
    &["apdu", "--card", "uicc", "00A4000C022FE3", "--json"]
)]
#[case::apdu_expected_error_status_word(
    "apdu_expected_6a82",
    &["apdu", "--json", "--card", "uicc", "--expect", "6A82", "00A4000C022FE3"]
)]
#[case::usage_error("usage", &["--json", "apdu", "--card", "uicc"])]
#[case::missing_card("missing_card", &["--json", "apdu", "--card", "nope.toml", "00A40000"])]
#[case::aka_vector(
    "aka_vector",
    &["--json", "aka", "vector", "--card", "uicc", "--rand", "23553cbe9637a89d218ae64dae47bf35"]
)]
#[case::chip_info("chip_info", &["--json", "lpa", "--card", "euicc", "chip-info"])]
#[case::list_empty("lpa_list_empty", &["--json", "lpa", "--card", "euicc", "list"])]
#[case::not_an_euicc("not_an_euicc", &["--json", "lpa", "--card", "uicc", "list"])]
fn json_output_is_one_envelope(#[case] name: &str, #[case] args: &[&str]) {
    let (code, stdout) = run(args);
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {stdout}"));
    let ok = v["ok"].as_bool().unwrap();
    assert_eq!(ok, code == 0, "exit code {code} and ok = {ok} disagree");
    if !ok {
        assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string());
    }
    let mut all = Vec::new();
    keys(&v, &mut all);
    for k in all {
        assert!(
            !k.contains('_') && !k.starts_with(char::is_uppercase),
            "key {k:?} is not camelCase"
        );
    }
    insta::assert_snapshot!(
        name,
        format!("$ simlab {}\nexit {code}\n{stdout}", args.join(" "))
    );
}
