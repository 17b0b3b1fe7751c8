#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An insta snapshot of one whole download as the LPA exchanges it with the eUICC: one APDU
//! exchange a line, random and signed values masked (challenges, transaction id, one-time
//! keys, signatures), long data cut to its start and length.

mod euicc_support;

use euicc_support::*;
use simlab_emulator::rsp::es10::*;

/// Replaces every occurrence of the masked values, then shortens long hex.
fn normalise(hex_text: &str, masks: &[(String, &str)]) -> String {
    let mut s = hex_text.to_string();
    for (value, name) in masks {
        if value.len() >= 8 {
            s = s.replace(value.as_str(), &format!("<{name}>"));
        }
    }
    // Raw signatures: 5F37 40 and 64 bytes.
    while let Some(at) = s.find("5F3740") {
        let end = (at + 6 + 128).min(s.len());
        s.replace_range(at..end, "5F37<SIG>");
    }
    if s.len() > 72 {
        let cut = s.char_indices().nth(56).map_or(s.len(), |(i, _)| i);
        format!("{}…({} chars)", &s[..cut], s.len())
    } else {
        s
    }
}

#[test]
fn a_download_transcript_is_stable() {
    // A signature split over two STORE DATA blocks shows partly unmasked in the next block:
    // RustCrypto's deterministic (RFC 6979) signatures keep those bytes the same every run;
    // ring's hedged nonces would not. (This test binary has this one test: the process-wide
    // switch affects nothing else.)
    simlab_emulator::rsp::ecdsa::set_p256_backend(
        simlab_emulator::rsp::ecdsa::P256Backend::RustCrypto,
    );
    let mut card = card();
    let o = Order::of(ts48("TS48V1-A-UNIQUE"));
    let mut smdp = SmDp::new();
    let mut lpa = Lpa::new(&mut card);
    let pir = download(&mut lpa, &mut smdp, &o);
    assert!(matches!(checked_result(&pir), FinalResult::Success { .. }));
    assert_eq!(lpa.enable(o.iccid), EnableProfileResult::Ok);
    let info = lpa.profiles();
    assert_eq!(info.len(), 1);

    // Values to mask, as the ES10 answers carried them.
    let mut masks: Vec<(String, &str)> =
        vec![(hex::encode_upper(&smdp.transaction_id), "TRANSACTION_ID")];
    let all: String = lpa
        .transcript
        .iter()
        .map(|(_, r)| hex::encode_upper(r))
        .collect();
    // GetEUICCChallenge's answer: BF2E 12 80 10 ‖ challenge.
    let at = all.find("BF2E128010").unwrap();
    masks.push((all[at + 10..at + 42].to_string(), "EUICC_CHALLENGE"));
    // The eUICC's one-time key is in PrepareDownload's answer: 5F49 41 04….
    if let Some(at) = all.find("5F494104") {
        masks.push((all[at + 6..at + 6 + 130].to_string(), "EUICC_OTPK"));
    }
    let lines: Vec<String> = lpa
        .transcript
        .iter()
        .map(|(c, r)| {
            let (header, data) = c.split_at(c.len().min(4));
            format!(
                "> {} {} | < {}",
                hex::encode_upper(header),
                normalise(&hex::encode_upper(data), &masks),
                normalise(&hex::encode_upper(r), &masks)
            )
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}
