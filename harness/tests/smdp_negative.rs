//! SM-DP+ refusals with the exact SGP.22 v2.5 §5.6 subject/reason codes, over loopback HTTPS.

// This whole file is test code; clippy.toml's allow-*-in-tests only covers `#[test]` fns,
// not the helpers beside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod smdp_support;

use simlab_emulator::saip;
use simlab_harness::es9p::{
    AuthenticateClientRequest, CancelSessionRequest, Es9pClient, GetBoundProfilePackageRequest,
};
use simlab_harness::pki::Curve;
use simlab_harness::smdp::{self, OrderState, RunningSmdp, SmdpOptions};
use smdp_support::*;

fn server() -> RunningSmdp {
    smdp::start(SmdpOptions::new(pki_dir(), templates_dir())).unwrap()
}

fn client(s: &RunningSmdp) -> Es9pClient {
    Es9pClient::new(&s.address, &[&s.ca_cert_der]).unwrap()
}

fn matching_id(ac: &str) -> &str {
    ac.rsplit('$').next().unwrap()
}

/// DER value of the test SM-DP+ OID (RID 2.999.10 of the shipped DPauth certificate).
const SMDP_OID: &[u8] = &[0x88, 0x37, 0x0A];

#[test]
fn refuses_an_unknown_transaction_id_in_every_function() {
    let s = server();
    let c = client(&s);
    let euicc = FakeEuicc::nist();
    let tx = vec![0xEE; 16];
    assert_eq!(
        codes_of(c.authenticate_client(&AuthenticateClientRequest {
            header: None,
            transaction_id: tx.clone(),
            authenticate_server_response: vec![0xBF, 0x38, 0x00],
        })),
        pair("8.10.1", "3.9")
    );
    assert_eq!(
        codes_of(c.get_bound_profile_package(&GetBoundProfilePackageRequest {
            header: None,
            transaction_id: tx.clone(),
            prepare_download_response: vec![0xBF, 0x21, 0x00],
        })),
        pair("8.10.1", "3.9")
    );
    assert_eq!(
        codes_of(c.cancel_session(&CancelSessionRequest {
            header: None,
            transaction_id: tx.clone(),
            cancel_session_response: euicc.cancel_session_response(&tx, SMDP_OID, 1),
        })),
        pair("8.10.1", "3.9")
    );
}

#[test]
fn a_call_out_of_order_ends_the_session() {
    let s = server();
    let c = client(&s);
    let euicc = FakeEuicc::nist();
    let challenge = [3u8; 16];
    let init = c
        .initiate_authentication(&euicc.initiate_request(&challenge, &s.address))
        .unwrap();
    // getBoundProfilePackage before authenticateClient.
    assert_eq!(
        codes_of(c.get_bound_profile_package(&GetBoundProfilePackageRequest {
            header: None,
            transaction_id: init.transaction_id.clone(),
            prepare_download_response: vec![0xBF, 0x21, 0x00],
        })),
        pair("8.10.1", "3.9")
    );
    // The session is gone: a correct authenticateClient now fails too.
    let asr = euicc.authenticate_server(&init, &challenge, Some(TEMPLATE));
    assert_eq!(
        codes_of(c.authenticate_client(&AuthenticateClientRequest {
            header: None,
            transaction_id: init.transaction_id,
            authenticate_server_response: asr,
        })),
        pair("8.10.1", "3.9")
    );
}

#[test]
fn refuses_a_missing_confirmation_code() {
    let s = server();
    let euicc = FakeEuicc::nist();
    let (_, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, Some("2468"))
        .unwrap();
    let r = download(
        &client(&s),
        &euicc,
        &s.address,
        Some(matching_id(&ac)),
        None,
    );
    assert_eq!(codes_of(r), pair("8.2.7", "2.2"));
}

#[test]
fn counts_wrong_confirmation_codes_and_stops_at_the_limit() {
    let s = server();
    let c = client(&s);
    let euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, Some("2468"))
        .unwrap();
    let mid = matching_id(&ac);
    for attempt in 1..smdp::DEFAULT_CC_RETRY_LIMIT {
        let r = download(&c, &euicc, &s.address, Some(mid), Some("0000"));
        assert_eq!(codes_of(r), pair("8.2.7", "3.8"), "attempt {attempt}");
        let o = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
        assert_eq!(o.cc_attempts, attempt);
        assert_eq!(o.state, OrderState::Released);
    }
    let r = download(&c, &euicc, &s.address, Some(mid), Some("0000"));
    assert_eq!(codes_of(r), pair("8.2.7", "6.4"));
    assert_eq!(
        s.smdp()
            .order_by_iccid(&order.iccid)
            .unwrap()
            .unwrap()
            .state,
        OrderState::Error
    );
    // Even the right code is too late now: the order is used up.
    let r = download(&c, &euicc, &s.address, Some(mid), Some("2468"));
    assert_eq!(codes_of(r), pair("8.2.6", "3.8"));
}

#[test]
fn refuses_a_matching_id_once_its_profile_is_installed() {
    let s = server();
    let c = client(&s);
    let mut euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let got = download(&c, &euicc, &s.address, Some(matching_id(&ac)), None).unwrap();
    let iccid_ef = saip::encode_iccid_ef(&order.iccid).unwrap();
    notify(
        &c,
        euicc.installation_result(&got.transaction_id, &s.address, &iccid_ef, true),
    )
    .unwrap();
    let r = download(&c, &euicc, &s.address, Some(matching_id(&ac)), None);
    assert_eq!(codes_of(r), pair("8.2.6", "3.8"));
}

#[test]
fn refuses_an_unknown_matching_id() {
    let s = server();
    let r = download(
        &client(&s),
        &FakeEuicc::nist(),
        &s.address,
        Some("NO-SUCH-ID"),
        None,
    );
    assert_eq!(codes_of(r), pair("8.2.6", "3.8"));
}

#[test]
fn refuses_an_order_bound_to_another_eid() {
    let s = server();
    let other = simlab_harness::pki::complete_eid("890490320000000000000000000001").unwrap();
    assert_ne!(other, FakeEuicc::nist().eid_string());
    let (_, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, Some(&other), None)
        .unwrap();
    let r = download(
        &client(&s),
        &FakeEuicc::nist(),
        &s.address,
        Some(matching_id(&ac)),
        None,
    );
    assert_eq!(codes_of(r), pair("8.1.1", "3.8"));
}

#[test]
fn refuses_an_order_that_is_not_released() {
    let s = server();
    let smdp = s.smdp();
    let iccid = smdp
        .download_order(&smdp::DownloadOrderRequest {
            profile_type: Some(TEMPLATE.into()),
            ..Default::default()
        })
        .unwrap()
        .iccid;
    let confirmed = smdp
        .confirm_order(&smdp::ConfirmOrderRequest {
            iccid,
            release_flag: false,
            ..Default::default()
        })
        .unwrap();
    let r = download(
        &client(&s),
        &FakeEuicc::nist(),
        &s.address,
        Some(&confirmed.matching_id),
        None,
    );
    assert_eq!(codes_of(r), pair("8.2", "1.2"));
}

#[test]
fn refuses_an_euicc_of_an_unknown_ci() {
    let s = server();
    let c = client(&s);
    // A brainpool-PKI eUICC that claims the NIST CI: its EUM is not issued by that CI.
    let nist = FakeEuicc::nist();
    let mut stranger = FakeEuicc::from_pki(&pki_dir(), Curve::Brainpool);
    stranger.ci_ski = nist.ci_ski.clone();
    stranger.ci_key = nist.ci_key.clone();
    let r = download(&c, &stranger, &s.address, Some(TEMPLATE), None);
    assert_eq!(codes_of(r), pair("8.11.1", "3.9"));

    // An eUICC that offers only a CI the SM-DP+ does not have.
    let brp = FakeEuicc::from_pki(&pki_dir(), Curve::Brainpool);
    let r = c.initiate_authentication(&brp.initiate_request(&[1; 16], &s.address));
    assert_eq!(codes_of(r), pair("8.8.2", "3.1"));
}

#[test]
fn refuses_a_tampered_euicc_signature1() {
    let s = server();
    let mut euicc = FakeEuicc::nist();
    euicc.faults.tamper_signature1 = true;
    let r = download(&client(&s), &euicc, &s.address, Some(TEMPLATE), None);
    assert_eq!(codes_of(r), pair("8.1", "6.1"));
}

#[test]
fn refuses_a_tampered_euicc_signature2() {
    let s = server();
    let mut euicc = FakeEuicc::nist();
    euicc.faults.tamper_signature2 = true;
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let r = download(
        &client(&s),
        &euicc,
        &s.address,
        Some(matching_id(&ac)),
        None,
    );
    assert_eq!(codes_of(r), pair("8.1", "6.1"));
    assert_eq!(
        s.smdp()
            .order_by_iccid(&order.iccid)
            .unwrap()
            .unwrap()
            .state,
        OrderState::Released,
        "nothing was handed out"
    );
}

#[test]
fn refuses_another_smdp_address() {
    let s = server();
    let r = client(&s)
        .initiate_authentication(&FakeEuicc::nist().initiate_request(&[1; 16], "smdp.example.org"));
    assert_eq!(codes_of(r), pair("8.8.1", "3.8"));
}

#[test]
fn cancel_session_mid_download_returns_the_order_and_ends_the_session() {
    let s = server();
    let c = client(&s);
    let euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let auth = authenticate(&c, &euicc, &s.address, Some(matching_id(&ac))).unwrap();
    // A wrong smdpOid is refused.
    let r = c.cancel_session(&CancelSessionRequest {
        header: None,
        transaction_id: auth.transaction_id.clone(),
        cancel_session_response: euicc.cancel_session_response(&auth.transaction_id, &[0x2A, 3], 1),
    });
    assert_eq!(codes_of(r), pair("8.8", "3.10"));
    // postponed(1): the order stays released for a later attempt.
    c.cancel_session(&CancelSessionRequest {
        header: None,
        transaction_id: auth.transaction_id.clone(),
        cancel_session_response: euicc.cancel_session_response(&auth.transaction_id, SMDP_OID, 1),
    })
    .unwrap();
    assert_eq!(
        s.smdp()
            .order_by_iccid(&order.iccid)
            .unwrap()
            .unwrap()
            .state,
        OrderState::Released
    );
    let (pdr, _) = euicc.prepare_download(&auth.response, &auth.euicc_signature1, None);
    let r = c.get_bound_profile_package(&GetBoundProfilePackageRequest {
        header: None,
        transaction_id: auth.transaction_id,
        prepare_download_response: pdr,
    });
    assert_eq!(codes_of(r), pair("8.10.1", "3.9"));
    // The order can still be downloaded in a new session.
    download(&c, &euicc, &s.address, Some(matching_id(&ac)), None).unwrap();
}

#[test]
fn ignores_an_installation_result_with_a_bad_signature() {
    let s = server();
    let c = client(&s);
    let mut euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let got = download(&c, &euicc, &s.address, Some(matching_id(&ac)), None).unwrap();
    let iccid_ef = saip::encode_iccid_ef(&order.iccid).unwrap();
    let mut pir = euicc.installation_result(&got.transaction_id, &s.address, &iccid_ef, true);
    let last = pir.len() - 1;
    pir[last] ^= 1;
    notify(&c, pir).unwrap();
    assert_eq!(
        s.smdp()
            .order_by_iccid(&order.iccid)
            .unwrap()
            .unwrap()
            .state,
        OrderState::Downloaded
    );
    assert_eq!(
        s.smdp().notifications().unwrap()[0].result,
        "euiccSignPIR invalid"
    );
    // A failed installation puts the order back to released (attempts remain).
    let pir = euicc.installation_result(&got.transaction_id, &s.address, &iccid_ef, false);
    notify(&c, pir).unwrap();
    assert_eq!(
        s.smdp()
            .order_by_iccid(&order.iccid)
            .unwrap()
            .unwrap()
            .state,
        OrderState::Released
    );
}

#[test]
fn stops_after_the_download_attempt_limit() {
    let mut opts = SmdpOptions::new(pki_dir(), templates_dir());
    opts.download_retry_limit = 2;
    let s = smdp::start(opts).unwrap();
    let c = client(&s);
    let euicc = FakeEuicc::nist();
    let (_, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    // Authenticating without fetching a package is no attempt; each package bound is one.
    authenticate(&c, &euicc, &s.address, Some(matching_id(&ac))).unwrap();
    for _ in 0..2 {
        download(&c, &euicc, &s.address, Some(matching_id(&ac)), None).unwrap();
    }
    let r = authenticate(&c, &euicc, &s.address, Some(matching_id(&ac)));
    assert_eq!(codes_of(r), pair("8.8.5", "6.4"));
}

#[test]
fn refuses_a_body_that_is_not_the_functions_json() {
    let s = server();
    let agent = ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates({
                let mut r = rustls::RootCertStore::empty();
                r.add(rustls::pki_types::CertificateDer::from(
                    s.ca_cert_der.clone(),
                ))
                .unwrap();
                r
            })
            .with_no_client_auth(),
        ))
        .build();
    let post = |path: &str, body: &str| {
        let r = agent
            .post(&format!("{}{path}", s.url()))
            .set("X-Admin-Protocol", "gsma/rsp/v2.2.0")
            .set("Content-Type", "application/json")
            .send_string(body);
        match r {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let (status, body) = post(
        "/gsma/rsp2/es9plus/initiateAuthentication",
        r#"{"euiccChallenge":"AA=="}"#,
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["header"]["functionExecutionStatus"]["status"], "Failed");
    assert_eq!(
        v["header"]["functionExecutionStatus"]["statusCodeData"]["reasonCode"],
        "2.2"
    );
    let (status, _) = post("/gsma/rsp2/es9plus/noSuchFunction", "{}");
    assert_eq!(status, 404);
}

#[test]
fn in_process_calls_fail_with_the_same_codes_as_https() {
    let opts = SmdpOptions::new(pki_dir(), templates_dir());
    let smdp = smdp::Smdp::open(&opts, "127.0.0.1:8443").unwrap();
    let mut euicc = FakeEuicc::nist();
    let r = download(&smdp, &euicc, "127.0.0.1:8443", Some("NO-SUCH-ID"), None);
    assert_eq!(codes_of(r), pair("8.2.6", "3.8"));
    euicc.faults.tamper_signature1 = true;
    let r = download(&smdp, &euicc, "127.0.0.1:8443", Some(TEMPLATE), None);
    assert_eq!(codes_of(r), pair("8.1", "6.1"));
    euicc.faults.tamper_signature1 = false;
    let got = download(&smdp, &euicc, "127.0.0.1:8443", Some(TEMPLATE), None).unwrap();
    assert_eq!(
        got.upp,
        std::fs::read(templates_dir().join(format!("{TEMPLATE}.der"))).unwrap()
    );
}
