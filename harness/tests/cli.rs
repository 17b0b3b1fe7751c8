//! The `simlab` command as users run it: exit codes and what it prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

/// Runs `simlab` in the repository's root.
fn simlab(args: &[&str]) -> (bool, String, String) {
    simlab_in(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        args,
    )
}

/// Runs `simlab` in `dir` (a directory with no `vectors/`: the built-in defaults must do).
fn simlab_in(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn selftest_passes_on_the_builtin_card_from_any_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, out, err) = simlab_in(elsewhere.path(), &["card", "selftest"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("ICCID 8949001010000000016 ok"), "{out}");
    assert!(out.contains("selftest: PASS"), "{out}");
    assert!(out.contains("SM-DP+ order state: enabled"), "{out}");
    assert!(out.contains("selftest (eUICC): PASS"), "{out}");
}

#[test]
fn apdu_prints_each_exchange_and_fetches_61xx() {
    let (ok, out, err) = simlab(&[
        "apdu",
        "--card",
        "vectors/cards/uicc.toml",
        "00A4000402 2FE2",
        "00B000000A",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("> 00A40004022FE2\n< 62"), "{out}");
    assert!(out.contains("< 989400010100000010F69000"), "{out}");
}

#[test]
fn bad_hex_is_explained() {
    let (ok, _, err) = simlab(&["apdu", "--card", "vectors/cards/uicc.toml", "00A4zz"]);
    assert!(!ok);
    assert!(
        err.contains("is not hex") && err.contains("example"),
        "{err}"
    );
}

#[test]
fn a_missing_card_file_is_named() {
    let (ok, _, err) = simlab(&["apdu", "--card", "vectors/cards/nope.toml", "00A40000"]);
    assert!(!ok);
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn pki_generate_writes_the_sgp26_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = simlab(&["pki", "generate", "--out", dir.path().to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    for f in [
        "CertificateIssuer/CERT_CI_ECDSA_NIST.der",
        "eUICC/CERT_EUICC_ECDSA_NIST.der",
        "DPtls/CERT_S_SM_DP_TLS_NIST.der",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
}

/// `simlab network serve` and `simlab lpa` as a user runs them, from a directory without the
/// repository's vectors (built-in PKI, templates and eUICC): a download into an eUICC whose
/// state lives in a directory, then list, enable and notifications, all in JSON.
#[test]
fn lpa_commands_download_enable_and_list_against_network_serve() {
    use std::io::{BufRead, BufReader};
    let elsewhere = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args([
            "network",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--es2-listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
        ])
        .current_dir(elsewhere.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let address = first.rsplit("https://").next().unwrap().trim().to_string();
    assert!(address.starts_with("127.0.0.1:"), "{first}");
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_str().unwrap();
    let lpa = |args: &[&str]| {
        let mut all = vec!["lpa", "--card", "euicc", "--state", st, "--json"];
        all.extend_from_slice(args);
        simlab_in(elsewhere.path(), &all)
    };
    let ac = format!("LPA:1${address}$TS48V5-SAIP2-3-BERTLV-SUCI-UNIQUE");
    let (ok, out, err) = lpa(&["download", "--activation-code", &ac]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(ok, "{out}\n{err}");
    let done: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["ok"], true, "{out}");
    assert_eq!(done["result"]["iccid"], "8949449999999990163");
    let (ok, out, err) = lpa(&["list"]);
    assert!(ok, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["result"][0]["profileState"], "disabled", "{out}");
    let (ok, _, err) = lpa(&["enable", "8949449999999990163"]);
    assert!(ok, "{err}");
    let (ok, out, _) = lpa(&["list"]);
    assert!(ok && out.contains("\"enabled\""), "{out}");
    let (ok, out, err) = lpa(&["notifications", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Enable"),
        "the enable notification waits in the eUICC: {out}"
    );
    let (ok, out, err) = lpa(&["delete", "8949449999999990163"]);
    assert!(!ok, "an enabled profile cannot be deleted");
    let failure: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(failure["ok"], false, "{out}");
    assert!(
        failure["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ProfileNotInDisabledState"),
        "{out}"
    );
    assert!(
        err.contains("DeleteProfile") && err.contains("ProfileNotInDisabledState"),
        "{err}"
    );
}

/// `simlab network serve` prints every operator URL and provisions `--subscriber` cards; the
/// operator services answer at the printed address.
#[test]
fn network_serve_prints_the_operator_urls_and_provisions_subscribers() {
    use std::io::{BufRead, BufReader};
    let elsewhere = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args([
            "network",
            "serve",
            "--listen",
            "127.0.0.1:0",
            // Free ports only: the ES2+ default (8444) may be taken on a shared host.
            "--es2-listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
            "--subscriber",
            "uicc",
        ])
        .current_dir(elsewhere.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("Operator network listening on ") {
            base = Some(url.trim().to_owned());
        }
        let done = line.contains("Ctrl-C stops");
        printed.push(line);
        if done {
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("{printed:#?}"));
    let text = printed.join("\n");
    for service in [
        "/ts43",
        "/contract/",
        "/smsc/inbox/",
        "/boss/subscribers",
        "/hlr/attach",
        "/calls",
        "/admin/",
    ] {
        assert!(
            text.contains(&format!("{base}{service}")),
            "{service}: {text}"
        );
    }
    let subscribers: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{base}/admin/subscribers"))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(subscribers[0]["msisdn"], "+15555550100", "{subscribers}");
    assert_eq!(subscribers[0]["imsis"][0]["imsi"], "001010123456063");
    assert!(
        text.contains("subscriber +15555550100 IMSI 001010123456063"),
        "{text}"
    );
}

#[test]
fn help_lists_every_built_in_card() {
    for args in [
        &["--help"][..],
        &["card", "serve", "--help"][..],
        &["apdu", "--help"][..],
    ] {
        let (ok, out, err) = simlab(args);
        assert!(ok, "{args:?}: {err}");
        for name in simlab_harness::defaults::CARD_NAMES {
            assert!(out.contains(name), "{args:?} does not name {name}:\n{out}");
        }
    }
}

/// `simlab card serve --listen 127.0.0.1:0` says which port the OS picked (the log names the
/// bound address, not ":0"), and a vpcd peer reaches the card there.
#[test]
fn card_serve_listen_on_port_0_names_the_bound_port() {
    use std::io::{BufRead, BufReader};
    let mut server = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(["card", "serve", "--card", "uicc", "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains("reversed mode"))
        .expect("the serving line");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))
        .unwrap_or_else(|| panic!("no listen= in {line:?}"))
        .to_owned();
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let (ok, out, err) = simlab(&["apdu", "--vpcd", &addr, "--vpcd-connect", "00A40004023F00"]);
    let _ = server.kill();
    let _ = server.wait();
    assert_ne!(port, 0, "{line}");
    assert!(ok, "{out}{err}");
    assert!(out.contains("DF/ADF 3F00"), "{out}");
}

/// A card that cannot be reached is error code `transport` (README's output contract), with
/// or without pcscd on the machine.
#[test]
fn an_unreachable_reader_or_vpcd_peer_is_a_transport_error() {
    for args in [
        &[
            "--json",
            "apdu",
            "--reader",
            "no such reader here",
            "00A40004023F00",
        ][..],
        &[
            "--json",
            "apdu",
            "--vpcd",
            "127.0.0.1:1",
            "--vpcd-connect",
            "00A4",
        ][..],
    ] {
        let (ok, out, err) = simlab(args);
        assert!(!ok, "{out}{err}");
        let envelope: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(envelope["error"]["code"], "transport", "{out}");
    }
}
