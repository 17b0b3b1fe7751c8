//! Where one server-side download's time goes (signatures, key agreement, BPP protection,
//! personalisation, database), in process (no TLS, no JSON) and over loopback HTTPS. Prints,
//! never asserts on speed. For meaningful numbers:
//! `cargo test --release -p simlab-harness --test smdp_timing -- --nocapture`.

mod smdp_support;

use simlab_harness::es9p::{AuthenticateClientRequest, Es9pClient, GetBoundProfilePackageRequest};
use simlab_harness::smdp::{self, Smdp, SmdpOptions};
use smdp_support::*;
use std::time::Instant;

const ADDRESS: &str = "127.0.0.1:8443";
const DOWNLOADS: u32 = 10;

/// One personalised-order download against `smdp` directly; returns the package size.
fn download_in_process(smdp: &Smdp, euicc: &FakeEuicc) -> usize {
    let (_, ac) = smdp.order_activation_code(TEMPLATE, None, None).unwrap();
    let mid = ac.rsplit('$').next().unwrap();
    let challenge: [u8; 16] = rand::random();
    let init = smdp
        .initiate_authentication(&euicc.initiate_request(&challenge, ADDRESS))
        .unwrap();
    let asr = euicc.authenticate_server(&init, &challenge, Some(mid));
    let sig1 = {
        let outer = simlab_emulator::tlv::parse_one(&asr).unwrap();
        let ok = simlab_emulator::tlv::parse_one(outer.value).unwrap();
        ok.find(0x5F37).unwrap().value.to_vec()
    };
    let auth = smdp
        .authenticate_client(&AuthenticateClientRequest {
            header: None,
            transaction_id: init.transaction_id.clone(),
            authenticate_server_response: asr,
        })
        .unwrap();
    let (pdr, _) = euicc.prepare_download(&auth, &sig1, None);
    let bpp = smdp
        .get_bound_profile_package(&GetBoundProfilePackageRequest {
            header: None,
            transaction_id: init.transaction_id,
            prepare_download_response: pdr,
        })
        .unwrap();
    bpp.bound_profile_package.len()
}

#[test]
fn prints_where_the_time_of_one_server_side_download_goes() {
    let build = if cfg!(debug_assertions) {
        "debug build: numbers are not representative"
    } else {
        "release build"
    };
    let smdp = Smdp::open(&SmdpOptions::new(pki_dir(), templates_dir()), ADDRESS).unwrap();
    let euicc = FakeEuicc::nist();
    download_in_process(&smdp, &euicc); // warm-up
    smdp.timings().reset();
    let started = Instant::now();
    let mut size = 0;
    for _ in 0..DOWNLOADS {
        size = download_in_process(&smdp, &euicc);
    }
    let wall = started.elapsed();
    let t = smdp.timings().snapshot();
    println!("SM-DP+ in process ({build}), {DOWNLOADS} personalised downloads of {TEMPLATE} (BPP {size} bytes):");
    println!(
        "  per download: {:.3} ms server time, {:.3} ms wall incl. test eUICC",
        t.total.as_secs_f64() * 1e3 / f64::from(DOWNLOADS),
        wall.as_secs_f64() * 1e3 / f64::from(DOWNLOADS)
    );
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e3 / f64::from(DOWNLOADS);
    println!(
        "  split per download (ms): sign {:.3}, verify {:.3}, ECDH {:.3}, BPP protection {:.3}, personalise {:.3}, db {:.3}, other {:.3}",
        per(t.sign), per(t.verify), per(t.key_agreement), per(t.protection), per(t.personalise), per(t.db), per(t.other())
    );
    assert!(
        t.calls >= u64::from(DOWNLOADS) * 3,
        "the timings count every call"
    );

    // The same over loopback HTTPS (TLS + JSON + HTTP on top).
    let s = smdp::start(SmdpOptions::new(pki_dir(), templates_dir())).unwrap();
    let c = Es9pClient::new(&s.address, &[s.ca_cert_der.clone()]).unwrap();
    download(&c, &euicc, &s.address, Some(TEMPLATE), None).unwrap();
    s.smdp().timings().reset();
    let started = Instant::now();
    for _ in 0..DOWNLOADS {
        download(&c, &euicc, &s.address, Some(TEMPLATE), None).unwrap();
    }
    let wall = started.elapsed();
    let t = s.smdp().timings().snapshot();
    println!(
        "SM-DP+ over HTTPS ({build}): {:.3} ms wall per download (client, test eUICC and server on one machine), {:.3} ms inside the ES9+ functions",
        wall.as_secs_f64() * 1e3 / f64::from(DOWNLOADS),
        per(t.total)
    );
}
