//! SM-DP+ over loopback HTTPS: whole downloads driven through the ES9+ client by a test-side
//! eUICC, the bound package opened and compared with the personalised SAIP package
//! (SGP.22 v2.5 §3.1.3, §5.6), notifications, and requests shaped as real LPAs send them.

// This whole file is test code; clippy.toml's allow-*-in-tests only covers `#[test]` fns,
// not the helpers beside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod smdp_support;

use simlab_emulator::saip;
use simlab_harness::es9p::{Es9pClient, ADMIN_PROTOCOL};
use simlab_harness::pki::Curve;
use simlab_harness::smdp::{self, OrderState, SmdpOptions};
use smdp_support::*;

fn server(replace_session_keys: bool) -> smdp::RunningSmdp {
    let mut opts = SmdpOptions::new(pki_dir(), templates_dir());
    opts.replace_session_keys = replace_session_keys;
    smdp::start(opts).unwrap()
}

fn client(s: &smdp::RunningSmdp) -> Es9pClient {
    Es9pClient::new(&s.address, &[&s.ca_cert_der]).unwrap()
}

#[test]
fn downloads_a_personalised_order_and_gets_exactly_the_personalised_package() {
    let s = server(true);
    let smdp = s.smdp();
    let mut euicc = FakeEuicc::nist();
    let (order, ac) = smdp.order_activation_code(TEMPLATE, None, None).unwrap();
    let matching_id = ac.rsplit('$').next().unwrap();
    assert_eq!(ac, format!("LPA:1${}${matching_id}", s.address));
    assert_eq!(order.state, OrderState::Released);

    let got = download(&client(&s), &euicc, &s.address, Some(matching_id), None).unwrap();

    let expected = smdp.profile_package(&order).unwrap();
    assert_eq!(
        got.upp, expected,
        "the decrypted 86 segments are the personalised package"
    );
    let pkg = saip::decode(&got.upp).unwrap();
    assert_eq!(pkg.header.iccid, order.iccid);
    assert_eq!(pkg.imsi(), order.imsi);
    assert_eq!(pkg.aka[0].k.as_deref(), Some(order.k.unwrap().as_slice()));
    let template = std::fs::read(templates_dir().join(format!("{TEMPLATE}.der"))).unwrap();
    assert_ne!(got.upp, template);
    assert!(got.replaced_keys);
    assert!(got.segments_86 > 1);

    // Metadata: ICCID (EF form), SPN, profile name, notification address.
    let md = simlab_emulator::tlv::parse_one(&got.metadata).unwrap();
    assert_eq!(md.tag, 0xBF25);
    assert_eq!(
        md.find(0x5A).unwrap().value,
        saip::encode_iccid_ef(&order.iccid).unwrap()
    );
    assert_eq!(md.find(0x92).unwrap().value, TEMPLATE.as_bytes());

    let after = smdp.order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!(after.state, OrderState::Downloaded);
    assert_eq!(after.eid.as_deref(), Some(euicc.eid_string().as_str()));

    // Installation result, then enable / disable / delete notifications.
    let iccid_ef = saip::encode_iccid_ef(&order.iccid).unwrap();
    let c = client(&s);
    notify(
        &c,
        euicc.installation_result(&got.transaction_id, &s.address, &iccid_ef, true),
    )
    .unwrap();
    assert_eq!(
        smdp.order_by_iccid(&order.iccid).unwrap().unwrap().state,
        OrderState::Installed
    );
    for (bits, state) in [
        ("0640", OrderState::Enabled),
        ("0520", OrderState::Disabled),
        ("0410", OrderState::Deleted),
    ] {
        notify(&c, euicc.other_notification(bits, &s.address, &iccid_ef)).unwrap();
        assert_eq!(
            smdp.order_by_iccid(&order.iccid).unwrap().unwrap().state,
            state
        );
    }
    let notes = smdp.notifications().unwrap();
    assert_eq!(
        notes
            .iter()
            .map(|n| (n.operation.as_str(), n.result.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("install", "success"),
            ("enable", "success"),
            ("disable", "success"),
            ("delete", "success")
        ]
    );
    let points: Vec<u32> = smdp
        .progress_events()
        .unwrap()
        .iter()
        .map(|e| e.notification_point_id)
        .collect();
    // Download points of SGP.22 §5.3.5, then the enable, disable and delete notifications
    // forwarded on simlab's points 101–103 (docs/smdp.md).
    assert_eq!(points, vec![1, 3, 4, 101, 102, 103]);
    s.stop();
}

#[test]
fn downloads_every_template_by_its_file_stem_unchanged() {
    let s = server(false);
    let c = client(&s);
    let euicc = FakeEuicc::nist();
    let stems: Vec<String> = s.smdp().templates().map(str::to_owned).collect();
    assert!(stems.len() >= 30, "the TS.48 set is shipped: {stems:?}");
    for stem in &stems {
        let got = download(&c, &euicc, &s.address, Some(stem), None).unwrap();
        let template = std::fs::read(templates_dir().join(format!("{stem}.der"))).unwrap();
        assert_eq!(got.upp, template, "{stem}");
        assert!(!got.replaced_keys);
    }
    // Template stems stay downloadable.
    download(&c, &euicc, &s.address, Some(&stems[0]), None).unwrap();
}

#[test]
fn downloads_with_a_brainpool_pki() {
    let mut opts = SmdpOptions::new(pki_dir(), templates_dir());
    opts.curve = Curve::Brainpool;
    let s = smdp::start(opts).unwrap();
    let euicc = FakeEuicc::from_pki(&pki_dir(), Curve::Brainpool);
    let got = download(&client(&s), &euicc, &s.address, Some(TEMPLATE), None).unwrap();
    assert_eq!(
        got.upp,
        std::fs::read(templates_dir().join(format!("{TEMPLATE}.der"))).unwrap()
    );
}

#[test]
fn downloads_with_a_confirmation_code() {
    let s = server(true);
    let euicc = FakeEuicc::nist();
    let (_, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, Some(&euicc.eid_string()), Some("1234"))
        .unwrap();
    let mid = ac.rsplit('$').next().unwrap();
    download(&client(&s), &euicc, &s.address, Some(mid), Some("1234")).unwrap();
}

#[test]
fn downloads_the_released_order_of_its_eid_without_a_matching_id() {
    let s = server(true);
    let euicc = FakeEuicc::nist();
    let (order, _) = s
        .smdp()
        .order_activation_code(TEMPLATE, Some(&euicc.eid_string()), None)
        .unwrap();
    let got = download(&client(&s), &euicc, &s.address, None, None).unwrap();
    assert_eq!(saip::decode(&got.upp).unwrap().header.iccid, order.iccid);
}

/// What a widely used open-source LPA sends (docs/clients.md): its own User-Agent and
/// X-Admin-Protocol, no header object, empty deviceCapabilities, smdpAddress with a port.
#[test]
fn answers_requests_shaped_as_a_real_lpa_sends_them_with_every_key() {
    use base64::Engine as _;
    let s = server(true);
    let euicc = FakeEuicc::nist();
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        r.add(rustls::pki_types::CertificateDer::from(
            s.ca_cert_der.clone(),
        ))
        .unwrap();
        r
    };
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(tls))
        .build();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let challenge = [7u8; 16];
    let body = format!(
        r#"{{"euiccChallenge":"{}","euiccInfo1":"{}","smdpAddress":"{}"}}"#,
        b64(&challenge),
        b64(&euicc.euicc_info1()),
        s.address
    );
    let resp = agent
        .post(&format!(
            "{}/gsma/rsp2/es9plus/initiateAuthentication",
            s.url()
        ))
        .set("User-Agent", "gsma-rsp-lpad")
        .set("X-Admin-Protocol", "gsma/rsp/v2.2.2")
        .set("Content-Type", "application/json")
        .send_string(&body)
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.header("X-Admin-Protocol"), Some(ADMIN_PROTOCOL));
    assert!(resp.content_type().starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    for key in [
        "transactionId",
        "serverSigned1",
        "serverSignature1",
        "euiccCiPKIdToBeUsed",
        "serverCertificate",
    ] {
        assert!(v[key].is_string(), "{key} missing in {v}");
    }
    assert_eq!(
        v["header"]["functionExecutionStatus"]["status"],
        "Executed-Success"
    );
    // The signed serverAddress echoes the address as the LPA sent it, port included.
    let signed1 = base64::engine::general_purpose::STANDARD
        .decode(v["serverSigned1"].as_str().unwrap())
        .unwrap();
    let t = simlab_emulator::tlv::parse_one(&signed1).unwrap();
    assert_eq!(t.find(0x83).unwrap().value, s.address.as_bytes());

    // authenticateClient with the card's answer (empty deviceCapabilities, no IMEI).
    let init: simlab_harness::es9p::InitiateAuthenticationResponse =
        serde_json::from_value(v).unwrap();
    let asr = euicc.authenticate_server(&init, &challenge, Some(TEMPLATE));
    let body = format!(
        r#"{{"transactionId":"{}","authenticateServerResponse":"{}"}}"#,
        hex::encode_upper(&init.transaction_id),
        b64(&asr)
    );
    let resp = agent
        .post(&format!("{}/gsma/rsp2/es9plus/authenticateClient", s.url()))
        .set("User-Agent", "gsma-rsp-lpad")
        .set("X-Admin-Protocol", "gsma/rsp/v2.2.2")
        .set("Content-Type", "application/json")
        .send_string(&body)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    for key in [
        "transactionId",
        "profileMetadata",
        "smdpSigned2",
        "smdpSignature2",
        "smdpCertificate",
    ] {
        assert!(v[key].is_string(), "{key} missing in {v}");
    }
}

#[test]
fn a_client_that_does_not_trust_the_ci_refuses_the_server() {
    let s = server(true);
    let other_ci =
        std::fs::read(pki_dir().join("CertificateIssuer/CERT_CI_ECDSA_BRP.der")).unwrap();
    let c = Es9pClient::new(&s.address, &[other_ci]).unwrap();
    let euicc = FakeEuicc::nist();
    let err = c
        .initiate_authentication(&euicc.initiate_request(&[1; 16], &s.address))
        .unwrap_err();
    assert!(
        matches!(err, simlab_harness::es9p::Es9pError::Transport { .. }),
        "{err}"
    );
}
