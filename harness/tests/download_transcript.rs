//! A whole profile download (SGP.22 v2.5 §3.1.3) of TS48V1-A-UNIQUE into the emulated eUICC
//! from simlab's SM-DP+ over loopback HTTPS, recorded on both LPA interfaces (ES10 APDUs and
//! ES9+ JSON), normalised (random values masked, see `simlab_harness::transcript`) and compared
//! with a reviewed snapshot: any change in what goes over the wire shows as a diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_harness::cards::load_card;
use simlab_harness::es9p::Es9pClient;
use simlab_harness::lpa::{self, ActivationCode, DeviceInfo, Es10Client};
use simlab_harness::smdp::{self, SmdpOptions};
use simlab_harness::transcript::{Recording, RecordingEs9, Transcript};
use simlab_harness::transport::InProcess;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Records one download and returns the normalised transcript.
fn recorded_download() -> (String, String) {
    let server = smdp::start(SmdpOptions::new(
        root().join("vectors/pki"),
        root().join("vectors/profiles"),
    ))
    .unwrap();
    // The port is masked but its digit count shows in lengths (`83 0F`): Linux hands out
    // ephemeral ports 32768–60999, always five digits.
    let port = server.address.rsplit_once(':').unwrap().1;
    assert_eq!(
        port.len(),
        5,
        "the snapshot assumes a five-digit port, got {port}"
    );
    let ac: ActivationCode = format!("LPA:1${}$TS48V1-A-UNIQUE", server.address)
        .parse()
        .unwrap();
    let mut card = load_card(&root().join("vectors/cards/euicc.toml"), None).unwrap();
    // The card's own randomness (euiccChallenge, otSK.EUICC.ECKA) is then the same every run.
    card.seed_rng(0x5EED);

    let transcript = Transcript::new();
    let mut es10 = Es10Client::open(Recording::new(InProcess::new(card), &transcript)).unwrap();
    let https =
        Es9pClient::new(&ac.smdp_address, std::slice::from_ref(&server.ca_cert_der)).unwrap();
    let es9 = RecordingEs9::new(&https, &transcript);
    let done = lpa::download_via(
        &mut es10,
        &es9,
        &ac,
        None,
        &DeviceInfo::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(done.iccid.as_deref(), Some("8949449999999990023"));
    drop(es10.close());
    server.stop();
    (transcript.normalised(), transcript.render())
}

#[test]
fn download_transcript_is_the_reviewed_one() {
    let (normalised, _) = recorded_download();
    insta::assert_snapshot!("ts48v1_a_unique_download", normalised);
}

#[test]
fn two_downloads_differ_on_the_wire_but_normalise_to_the_same_transcript() {
    let (first, first_raw) = recorded_download();
    let (second, second_raw) = recorded_download();
    assert_ne!(
        first_raw, second_raw,
        "the SM-DP+'s random values differ per session"
    );
    assert_eq!(first, second);
}

/// A raw transcript file reads back into the same download: normalised from the file, it is
/// the normalisation of the recording itself.
#[test]
fn a_raw_transcript_file_normalises_like_the_recording() {
    let (normalised, raw) = recorded_download();
    assert!(
        raw.contains("# 20"),
        "raw step labels carry the time: {raw:.300}"
    );
    let entries = simlab_harness::transcript::parse(&raw).unwrap();
    let from_file = simlab_harness::transcript::document(&entries, None, true);
    assert_eq!(from_file, normalised);
}

fn simlab(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `simlab transcript diff`: two downloads are the same after normalising; a changed status
/// word is reported with the line, and the exit code says so.
#[test]
fn transcript_diff_compares_downloads_after_normalising() {
    let dir = tempfile::tempdir().unwrap();
    let (_, first) = recorded_download();
    let (_, second) = recorded_download();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, &first).unwrap();
    std::fs::write(&b, &second).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (ok, out, err) = simlab(&["transcript", "diff", a, b]);
    assert!(ok, "{out}\n{err}");
    let (ok, out, _) = simlab(&["transcript", "normalise", a]);
    assert!(ok && out.contains("# ES10b.AuthenticateServer"), "{out}");

    // The eUICC's answer to RemoveNotificationFromList changed from ok (0) to an error (1).
    let tampered = second.replace("< BF30 03 80 01 00 9000", "< BF30 03 80 01 01 9000");
    assert_ne!(tampered, second);
    std::fs::write(b, tampered).unwrap();
    let (ok, out, err) = simlab(&["transcript", "diff", a, b]);
    assert!(!ok, "a difference fails the command");
    assert!(
        out.contains("-< BF30 03 80 01 00 9000") && out.contains("+< BF30 03 80 01 01 9000"),
        "{out}"
    );
    assert!(err.contains("differ after normalising"), "{err}");
    let (ok, out, _) = simlab(&["--json", "transcript", "diff", a, b]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(!ok);
    assert_eq!(v["error"]["code"], "transcripts-differ");
}
