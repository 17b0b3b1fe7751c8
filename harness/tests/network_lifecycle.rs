//! The BOSS's view of its orders over the real interface (docs/network.md §4): the SM-DP+
//! reports every event over ES2+.HandleDownloadProgressInfo (SGP.22 §5.3.5) and the BOSS's
//! subscriber state follows — idempotent, safe against late events, unknown orders refused with
//! the spec's error; the number a device reads from EF.MSISDN is the one the network routes;
//! pending transfers expire, their order cancelled at the SM-DP+ (ES2+.CancelOrder).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod network_support;

use network_support::*;
use serde_json::{json, Value};
use simlab_harness::network::client::{Auth, EntitlementRequest, NetworkClient, NextStep};
use simlab_harness::network::db::{LineState, Policy};
use simlab_harness::network::server::RunningNetwork;
use simlab_harness::network::service::OrderView;

fn order_of(client: &NetworkClient, iccid: &str) -> OrderView {
    client
        .orders()
        .unwrap()
        .into_iter()
        .find(|o| o.order.iccid == iccid)
        .unwrap()
}

/// Posts a HandleDownloadProgressInfo body to the BOSS as an SM-DP+ does: status and body.
fn post_progress(net: &RunningNetwork, body: &Value) -> (u16, Option<Value>) {
    let answer = match smdp_agent()
        .post(&net.es2_callback_url())
        .set("X-Admin-Protocol", "gsma/rsp/v2.5.0")
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = answer.status();
    let text = answer.into_string().unwrap();
    (status, serde_json::from_str(&text).ok())
}

/// `subjectCode/reasonCode` of a failed ES2+ header.
fn refusal(answer: &(u16, Option<Value>)) -> String {
    assert_eq!(answer.0, 200, "answered {answer:?}");
    let status = &answer.1.as_ref().unwrap()["header"]["functionExecutionStatus"];
    assert_eq!(status["status"], "Failed", "{answer:?}");
    format!(
        "{}/{}",
        status["statusCodeData"]["subjectCode"].as_str().unwrap(),
        status["statusCodeData"]["reasonCode"].as_str().unwrap()
    )
}

/// A companion profile ordered for a new eUICC (its own number).
fn companion_order(
    net: &RunningNetwork,
    client: &NetworkClient,
    token: &str,
    shared_number: bool,
) -> (Euicc, simlab_harness::network::client::DownloadInfo) {
    let mut euicc = Euicc::new(net);
    let eid = euicc.eid();
    let doc = client
        .entitlement_document(
            &EntitlementRequest::companion_subscribe(&eid, shared_number),
            &Auth::Token(token.into()),
        )
        .unwrap();
    let NextStep::Download(info) = doc.next_step() else {
        panic!("{:?}", doc.raw)
    };
    (euicc, info)
}

#[test]
fn the_line_follows_each_event_the_smdp_reports_over_es2() {
    let net = start();
    let (client, _usim, token) = primary(&net, Policy::default());
    let (mut euicc, info) = companion_order(&net, &client, &token, false);
    assert_eq!(order_of(&client, &info.iccid).order.state, "released");
    let imsi = order_of(&client, &info.iccid).order.imsi;
    assert_eq!(client.line(&imsi).unwrap().state, LineState::Pending);

    // The LPA's download ends with the installation result (ES9+.HandleNotification); the
    // SM-DP+ has told the BOSS before it answers, so the line is active when the device is done.
    let iccid = euicc.download(&info.activation_code);
    let order = order_of(&client, &iccid);
    assert_eq!(order.order.state, "installed");
    assert_eq!(order.smdp_state.as_deref(), Some("installed"));
    assert_eq!(client.line(&imsi).unwrap().state, LineState::Active);

    euicc.enable(&iccid);
    euicc.notify();
    assert_eq!(order_of(&client, &iccid).order.state, "enabled");
    euicc.disable(&iccid);
    euicc.notify();
    assert_eq!(order_of(&client, &iccid).order.state, "disabled");
    assert_eq!(
        client.line(&imsi).unwrap().state,
        LineState::Active,
        "a disabled profile is still a subscription"
    );
    euicc.delete(&iccid);
    euicc.notify();
    assert_eq!(order_of(&client, &iccid).order.state, "deleted");
    let line = client.line(&imsi).unwrap();
    assert_eq!(line.state, LineState::Disabled);
    assert_eq!(
        line.reason.as_deref(),
        Some(format!("profile {iccid} deleted on the eUICC").as_str())
    );

    let events: Vec<(u32, String)> = client
        .order_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.iccid == iccid)
        .map(|e| (e.point, e.outcome))
        .collect();
    assert_eq!(
        events,
        [
            (1, "ignored: no state change at this point".to_owned()),
            (3, "applied: released → downloaded".to_owned()),
            (4, "applied: downloaded → installed".to_owned()),
            (101, "applied: installed → enabled".to_owned()),
            (102, "applied: enabled → disabled".to_owned()),
            (103, "applied: disabled → deleted".to_owned()),
        ]
    );
    // The SM-DP+ recorded each event as delivered.
    let smdp = net.smdp().unwrap().smdp();
    let deliveries: Vec<_> = smdp
        .progress_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.iccid == iccid)
        .map(|e| e.delivery)
        .collect();
    assert_eq!(deliveries, vec![Some("delivered".to_owned()); 6]);
}

#[test]
fn repeated_and_late_events_change_nothing_and_the_transfer_completes_once() {
    let net = start();
    let (client, _usim, _token) = primary(&net, Policy::default());
    let mut euicc = Euicc::new(&net);
    let eid = euicc.eid();
    let doc = client
        .entitlement_document(
            &EntitlementRequest::transfer(MSISDN, &eid, Some("upgrade")),
            &Auth::Otp {
                msisdn: MSISDN.into(),
            },
        )
        .unwrap();
    let code = client.latest_code(IMSI).unwrap().unwrap();
    let doc = client
        .continue_operation(doc.operation_id().unwrap(), Some(&code), None)
        .unwrap();
    let NextStep::Download(info) = doc.next_step() else {
        panic!("{:?}", doc.raw)
    };
    let iccid = euicc.install(&info.activation_code);
    let new_imsi = order_of(&client, &iccid).order.imsi;
    let settled = |client: &NetworkClient| {
        (
            client.line(IMSI).unwrap(),
            client.line(&new_imsi).unwrap(),
            order_of(client, &iccid).order.state,
            client.inbox(IMSI, None).unwrap().len(),
            client.ota_jobs().unwrap().len(),
        )
    };
    let before = settled(&client);
    assert_eq!(before.0.state, LineState::Disabled);
    assert_eq!(before.1.state, LineState::Active);
    assert_eq!(before.2, "enabled");
    assert_eq!(before.4, 1, "one USIM deactivation for the old UICC");

    // Every event the SM-DP+ sent for the new profile, again, twice each, latest first.
    let bodies: Vec<Value> = net
        .smdp()
        .unwrap()
        .smdp()
        .progress_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.iccid == iccid)
        .map(|e| serde_json::from_str(&e.body).unwrap())
        .collect();
    assert_eq!(
        bodies.len(),
        4,
        "eligibility, download, installation, enable"
    );
    let seen = client.order_events().unwrap().len();
    for body in bodies.iter().rev().flat_map(|b| [b, b]) {
        assert_eq!(post_progress(&net, body), (204, None));
    }
    // A failed installation, arriving after the profile was enabled.
    let mut late_failure = bodies[2].clone();
    late_failure["notificationPointStatus"] = json!({"status": "Failed",
        "statusCodeData": {"subjectCode": "1.2", "reasonCode": "4.2", "message": "late"}});
    assert_eq!(post_progress(&net, &late_failure), (204, None));

    assert_eq!(
        settled(&client),
        before,
        "nothing moved, nothing sent twice"
    );
    let outcomes: Vec<String> = client.order_events().unwrap()[seen..]
        .iter()
        .map(|e| e.outcome.clone())
        .collect();
    assert_eq!(outcomes.len(), 9);
    assert!(
        outcomes.iter().all(|o| o.starts_with("ignored: ")),
        "{outcomes:?}"
    );
    let transfers: Vec<_> = client
        .operations()
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == "transfer")
        .collect();
    assert_eq!(transfers.len(), 1);
}

#[test]
fn an_event_the_boss_cannot_place_is_refused_with_the_es2_status_code() {
    let net = start();
    let (client, _usim, token) = primary(&net, Policy::default());
    let (mut euicc, info) = companion_order(&net, &client, &token, false);
    euicc.download(&info.activation_code);
    let event = |iccid: &str, eid: Option<&str>, point: u32, timestamp: &str| {
        let mut v = json!({
            "header": {"functionRequesterIdentifier": "test", "functionCallIdentifier": "1"},
            "iccid": iccid,
            "profileType": "TS48v4_SAIP2.3_BERTLV",
            "timestamp": timestamp,
            "notificationPointId": point,
            "notificationPointStatus": {"status": "Executed-Success"},
        });
        if let Some(eid) = eid {
            v["eid"] = json!(eid);
        }
        v
    };
    let order = order_of(&client, &info.iccid).order;
    let seen = client.order_events().unwrap().len();
    let ts = "2030-01-01T00:00:00Z";
    let cases = [
        // SGP.22 "Profile ICCID – Unknown": the BOSS placed no such order.
        (event("8900101999999999994", None, 101, ts), "8.2.1/3.9"),
        // "EID – Invalid association": the order is another eUICC's.
        (
            event(
                &order.iccid,
                Some("89049032123451234512345678900000"),
                103,
                ts,
            ),
            "8.1.1/3.10",
        ),
        // Function input data: malformed.
        (event(&order.iccid, None, 7, ts), "1.6/2.1"),
        (event(&order.iccid, None, 101, "yesterday"), "1.6/2.1"),
        (event("89001", None, 101, ts), "1.6/2.1"),
        (json!({"iccid": order.iccid}), "1.6/2.2"),
    ];
    for (body, expected) in &cases {
        let answer = post_progress(&net, body);
        assert_eq!(answer.0, 200, "{body} answered {answer:?}");
        assert_eq!(refusal(&answer), *expected, "{body}");
    }
    assert_eq!(
        client.order_events().unwrap().len(),
        seen,
        "nothing recorded"
    );
    assert_eq!(order_of(&client, &order.iccid).order.state, "installed");
    assert_eq!(client.line(&order.imsi).unwrap().state, LineState::Active);

    // An order placed by someone else than the BOSS (here: the test, over ES2+): the SM-DP+
    // records the BOSS's refusal of its events.
    let es2 = simlab_harness::smdp::Es2pClient::from_pki(
        &net.smdp().unwrap().es2_url(),
        vectors().join("pki"),
    )
    .unwrap();
    let mut other = Euicc::new(&net);
    let other_eid = other.eid();
    let placed = es2
        .download_order(&simlab_harness::smdp::DownloadOrderRequest {
            eid: Some(other_eid),
            profile_type: Some("TS48v4_SAIP2.3_BERTLV".into()),
            ..Default::default()
        })
        .unwrap();
    let confirmed = es2
        .confirm_order(&simlab_harness::smdp::ConfirmOrderRequest {
            iccid: placed.iccid.clone(),
            release_flag: true,
            ..Default::default()
        })
        .unwrap();
    other.download(&format!(
        "LPA:1${}${}",
        net.smdp_address(),
        confirmed.matching_id
    ));
    let deliveries: Vec<String> = net
        .smdp()
        .unwrap()
        .smdp()
        .progress_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.iccid == placed.iccid)
        .map(|e| e.delivery.unwrap())
        .collect();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries
            .iter()
            .all(|d| d.starts_with("refused: 8.2.1 / 3.9")),
        "{deliveries:?}"
    );
}

/// CERT.DP.TLS of the shipped PKI with its key (PKCS#8).
fn dp_tls_identity() -> (Vec<u8>, Vec<u8>) {
    use p256::pkcs8::EncodePrivateKey as _;
    let p =
        simlab_harness::pki::Pki::load(&vectors().join("pki"), simlab_harness::pki::Curve::Nist)
            .unwrap();
    let key = p256::SecretKey::from_slice(&p.dp_tls.key.unwrap().scalar()).unwrap();
    (
        p.dp_tls.cert_der,
        key.to_pkcs8_der().unwrap().as_bytes().to_vec(),
    )
}

/// A TLS client certificate issued by the shipped CI that is NOT an SM-DP+'s (no
/// id-rspRole-dp-tls policy; an SM-DS's TLS certificate would look like this), with its key.
fn other_ci_client_identity() -> (Vec<u8>, Vec<u8>) {
    use der::{Decode as _, Encode as _};
    use p256::pkcs8::EncodePrivateKey as _;
    use simlab_harness::pki::{keys::KeyPair, profiles, Curve, Pki};
    let p = Pki::load(&vectors().join("pki"), Curve::Nist).unwrap();
    let ci = x509_cert::Certificate::from_der(&p.ci.cert_der).unwrap();
    let key = KeyPair::generate(Curve::Nist).unwrap();
    let eku = x509_cert::ext::pkix::ExtendedKeyUsage(vec![profiles::oid::ID_KP_CLIENT_AUTH]);
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    let der = profiles::issue(
        profiles::CertRequest {
            serial: vec![0x01, 0x23],
            issuer: ci.tbs_certificate.subject.clone(),
            subject: profiles::name(&[profiles::Attr::Cn("not an SM-DP+")]).unwrap(),
            validity: x509_cert::time::Validity {
                not_before: profiles::rfc5280_time(now - day).unwrap(),
                not_after: profiles::rfc5280_time(now + day).unwrap(),
            },
            spki: key.spki().unwrap(),
            extensions: vec![x509_cert::ext::Extension {
                extn_id: der::oid::ObjectIdentifier::new_unwrap("2.5.29.37"),
                critical: false,
                extn_value: der::asn1::OctetString::new(eku.to_der().unwrap()).unwrap(),
            }],
        },
        p.ci.key.as_ref().unwrap(),
    )
    .unwrap();
    let secret = p256::SecretKey::from_slice(&key.scalar()).unwrap();
    (der, secret.to_pkcs8_der().unwrap().as_bytes().to_vec())
}

#[test]
fn the_boss_takes_progress_only_from_an_smdp_over_mutual_tls() {
    let net = start();
    let url = net.es2_callback_url();
    assert!(url.starts_with("https://"), "{url}");
    let (client, _usim, token) = primary(&net, Policy::default());
    let (_euicc, info) = companion_order(&net, &client, &token, false);
    let order = order_of(&client, &info.iccid).order;
    assert_eq!(order.state, "released");
    let seen = client.order_events().unwrap().len();
    // SGP.22 §5.3.5 point 3: the bound profile package went to the eUICC.
    let body = json!({
        "header": {"functionRequesterIdentifier": "test", "functionCallIdentifier": "1"},
        "eid": order.eid,
        "iccid": order.iccid,
        "profileType": "TS48v4_SAIP2.3_BERTLV",
        "timestamp": "2030-01-01T00:00:00Z",
        "notificationPointId": 3,
        "notificationPointStatus": {"status": "Executed-Success"},
    })
    .to_string();
    let send = |agent: &ureq::Agent| {
        agent
            .post(&url)
            .set("X-Admin-Protocol", "gsma/rsp/v2.5.0")
            .set("Content-Type", "application/json")
            .send_string(&body)
            .map_err(Box::new)
    };
    // SGP.22 §2.6.6: refused in the TLS handshake, never reaching the function — without a
    // client certificate, with the operator's own (another CA), with a certificate of the CI
    // that is not an SM-DP+ TLS certificate.
    let boss = simlab_harness::pki::OperatorIdentity::load(vectors().join("pki")).unwrap();
    for (who, agent) in [
        ("no certificate", tls_agent(None)),
        (
            "operator client certificate",
            tls_agent(Some((boss.cert_der, boss.key_pkcs8_der))),
        ),
        (
            "a client certificate of the CI without the SM-DP+ TLS role",
            tls_agent(Some(other_ci_client_identity())),
        ),
    ] {
        // Refused in TLS (an alert, or the connection closed after it), not by an answer.
        match send(&agent).map_err(|e| *e) {
            Err(ureq::Error::Transport(_)) => {}
            other => panic!("{who}: answered: {other:?}"),
        }
    }
    // The plain-HTTP operator port does not serve ES2+: 404 with the function's "unknown"
    // code and where it is.
    let plain = format!(
        "{}/gsma/rsp2/es2plus/handleDownloadProgressInfo",
        net.operator_url()
    );
    let answer = match ureq::post(&plain)
        .set("X-Admin-Protocol", "gsma/rsp/v2.5.0")
        .set("Content-Type", "application/json")
        .send_string(&body)
    {
        Err(ureq::Error::Status(404, r)) => {
            serde_json::from_str::<Value>(&r.into_string().unwrap()).unwrap()
        }
        other => panic!("{other:?}"),
    };
    let status = &answer["header"]["functionExecutionStatus"];
    assert_eq!(status["statusCodeData"]["subjectCode"], "1.6");
    assert_eq!(status["statusCodeData"]["reasonCode"], "3.9");
    assert!(
        status["statusCodeData"]["message"]
            .as_str()
            .unwrap()
            .contains(&url),
        "{answer}"
    );
    // SGP.22 §6.5.1 on the endpoint itself: no X-Admin-Protocol, 1.6 / 2.2.
    let answer = smdp_agent()
        .post(&url)
        .set("Content-Type", "application/json")
        .send_string(&body)
        .unwrap()
        .into_string()
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let status = &answer["header"]["functionExecutionStatus"]["statusCodeData"];
    assert_eq!(
        (&status["subjectCode"], &status["reasonCode"]),
        (&json!("1.6"), &json!("2.2"))
    );
    assert_eq!(client.order_events().unwrap().len(), seen, "nothing taken");
    assert_eq!(order_of(&client, &order.iccid).order.state, "released");

    // The SM-DP+'s TLS certificate is accepted, and the event applied.
    let answer = send(&tls_agent(Some(dp_tls_identity()))).unwrap();
    assert_eq!(answer.status(), 204);
    assert_eq!(order_of(&client, &order.iccid).order.state, "downloaded");
    assert_eq!(client.order_events().unwrap().len(), seen + 1);
}

#[test]
fn ef_msisdn_on_the_euicc_is_the_number_the_network_shows_for_the_line() {
    let net = start();
    let (client, _usim, token) = primary(&net, Policy::default());
    // A companion with a number of its own, and one sharing the primary's (Fig. 5).
    for shared in [false, true] {
        let (mut euicc, info) = companion_order(&net, &client, &token, shared);
        euicc.install(&info.activation_code);
        let line = client
            .line(&order_of(&client, &info.iccid).order.imsi)
            .unwrap();
        assert_eq!(line.msisdn == MSISDN, shared, "{line:?}");
        assert_eq!(euicc.read_msisdn().as_deref(), Some(line.msisdn.as_str()));
    }
    // An upgrade: the new eUICC's profile carries the number moved to it.
    let mut euicc = Euicc::new(&net);
    let eid = euicc.eid();
    let doc = client
        .entitlement_document(
            &EntitlementRequest::transfer(MSISDN, &eid, Some("upgrade")),
            &Auth::Otp {
                msisdn: MSISDN.into(),
            },
        )
        .unwrap();
    let code = client.latest_code(IMSI).unwrap().unwrap();
    let doc = client
        .continue_operation(doc.operation_id().unwrap(), Some(&code), None)
        .unwrap();
    let NextStep::Download(info) = doc.next_step() else {
        panic!("{:?}", doc.raw)
    };
    euicc.install(&info.activation_code);
    let line = client
        .line(&order_of(&client, &info.iccid).order.imsi)
        .unwrap();
    assert_eq!(line.state, LineState::Active);
    assert_eq!(line.msisdn, MSISDN);
    assert_eq!(euicc.read_msisdn().as_deref(), Some(MSISDN));
}

/// Asks for an upgrade of [`MSISDN`] to `eid` with the code the old card receives.
fn ask_upgrade(
    client: &NetworkClient,
    eid: &str,
) -> (
    String,
    Result<simlab_harness::network::client::EntitlementDocument, String>,
) {
    let doc = client
        .entitlement_document(
            &EntitlementRequest::transfer(MSISDN, eid, Some("upgrade")),
            &Auth::Otp {
                msisdn: MSISDN.into(),
            },
        )
        .unwrap();
    let op = doc.operation_id().unwrap().to_owned();
    let code = client.latest_code(IMSI).unwrap().unwrap();
    let answer = client
        .continue_operation(&op, Some(&code), None)
        .map_err(|e| e.code().unwrap_or("not-a-network-error").to_owned());
    (op, answer)
}

fn download_info(doc: &simlab_harness::network::client::EntitlementDocument) -> String {
    match doc.next_step() {
        NextStep::Download(info) => info.activation_code,
        other => panic!("{other:?}"),
    }
}

/// Runs SQL on the network's tables (the test ages a reservation).
fn net_sql(net: &RunningNetwork, statement: &str) {
    net.network()
        .with_connection(|c| {
            c.execute(statement, []).unwrap();
            Ok(())
        })
        .unwrap();
}

/// Runs SQL on the SM-DP+'s tables (the test plays the SM-DP+'s side of a race).
fn smdp_sql(net: &RunningNetwork, statement: &str) {
    net.smdp()
        .unwrap()
        .smdp()
        .with_store(|s| {
            s.connection().execute(statement, []).unwrap();
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_lapsed_transfer_is_cancelled_at_the_smdp_and_the_number_can_move_again() {
    let net = start();
    let (client, _usim, _token) = primary(&net, Policy::default());
    let mut euicc = Euicc::new(&net);
    let eid = euicc.eid();
    let (first_op, first) = ask_upgrade(&client, &eid);
    let first_code = download_info(&first.unwrap());
    let first_order = client.orders().unwrap().pop().unwrap().order;
    let smdp = net.smdp().unwrap().smdp();

    // The reservation lapses (its deadline moved into the past: no waiting in tests).
    net_sql(&net, "UPDATE net_transfers SET expires_at = 0");
    // The SM-DP+ has begun the download meanwhile (it has not reported it yet): CancelOrder
    // is refused, so the transfer stays as it was and the number stays reserved.
    smdp_sql(
        &net,
        &format!(
            "UPDATE orders SET state = 'downloaded' WHERE iccid = '{}'",
            first_order.iccid
        ),
    );
    let snapshot = |client: &NetworkClient| {
        (
            client.transfers().unwrap(),
            client.subscriber(MSISDN).unwrap(),
            client.orders().unwrap(),
        )
    };
    let before = snapshot(&client);
    assert_eq!(
        ask_upgrade(&client, &eid).1.unwrap_err(),
        "transfer-in-progress"
    );
    assert_eq!(snapshot(&client).1, before.1, "no line changed");
    assert_eq!(snapshot(&client).0, before.0, "no transfer changed");
    assert_eq!(net.network().expire_transfers().unwrap(), []);

    // The download never happens: the next request finds the reservation lapsed, the order
    // is cancelled at the SM-DP+, and the number moves on.
    smdp_sql(
        &net,
        &format!(
            "UPDATE orders SET state = 'released' WHERE iccid = '{}'",
            first_order.iccid
        ),
    );
    let (_, second) = ask_upgrade(&client, &eid);
    let second_code = download_info(&second.unwrap());
    let transfers = client.transfers().unwrap();
    assert_eq!(
        transfers
            .iter()
            .map(|t| t.state.as_str())
            .collect::<Vec<_>>(),
        ["expired", "pending"],
        "the lapsed one, the new one (the refused request reserved nothing): {transfers:?}"
    );
    let expired = &transfers[0];
    assert_eq!(
        expired.order_iccid.as_deref(),
        Some(first_order.iccid.as_str())
    );
    assert!(
        expired
            .reason
            .as_deref()
            .unwrap()
            .contains("cancelled at the SM-DP+ (ES2+.CancelOrder, Unavailable)"),
        "{expired:?}"
    );
    assert_eq!(
        order_of(&client, &first_order.iccid).order.state,
        "unavailable"
    );
    assert_eq!(
        smdp.order_by_iccid(&first_order.iccid)
            .unwrap()
            .unwrap()
            .state,
        simlab_harness::smdp::OrderState::Unavailable
    );
    let dead = client.line(&first_order.imsi).unwrap();
    assert_eq!(dead.state, LineState::Disabled);
    assert!(dead.reason.unwrap().starts_with("transfer expired: "));
    // The first request's continuation says why it ended.
    let op = client
        .operations()
        .unwrap()
        .into_iter()
        .find(|o| o.id == first_op)
        .unwrap();
    assert_eq!(op.state, "failed");

    // SGP.22 §5.6.3: the lapsed activation code is refused by the SM-DP+ (matching ID
    // refused), the new one works and completes the upgrade.
    let refused = euicc.try_download(&first_code).unwrap_err();
    assert!(
        refused.contains("8.2.6") && refused.contains("3.8"),
        "{refused}"
    );
    euicc.install(&second_code);
    let lines = client.subscriber(MSISDN).unwrap().imsis;
    let active: Vec<_> = lines
        .iter()
        .filter(|l| l.state == LineState::Active)
        .collect();
    assert_eq!(active.len(), 1, "{lines:?}");
    assert_ne!(active[0].imsi, IMSI);
    assert_ne!(active[0].imsi, first_order.imsi);
    assert_eq!(client.transfers().unwrap()[1].state, "done");
}

#[test]
fn a_transfer_downloaded_but_never_enabled_expires_and_the_number_stays_on_the_old_card() {
    let net = start();
    let (client, _usim, _token) = primary(&net, Policy::default());
    let mut euicc = Euicc::new(&net);
    let eid = euicc.eid();
    let (op_id, doc) = ask_upgrade(&client, &eid);
    // Downloaded and installed, never enabled (the user stopped there).
    let iccid = euicc.download(&download_info(&doc.unwrap()));
    let order = order_of(&client, &iccid).order;
    assert_eq!(order.state, "installed");
    assert_eq!(
        net.network().expire_transfers().unwrap(),
        [],
        "not before its reservation lapsed"
    );
    assert_eq!(client.transfers().unwrap()[0].state, "pending");

    // The reservation lapses (deadline moved into the past: no waiting in tests).
    net_sql(&net, "UPDATE net_transfers SET expires_at = 0");
    let ended = net.network().expire_transfers().unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    let t = &client.transfers().unwrap()[0];
    assert_eq!(t.state, "expired");
    let reason = t.reason.as_deref().unwrap();
    assert!(
        reason.contains(&format!("profile {iccid} installed on EID {eid}"))
            && reason.contains("not enabled within 3600 s (--transfer-ttl)"),
        "{reason}"
    );
    // The SM-DP+ cannot cancel a profile that is out: nothing was asked of it, and the BOSS
    // still shows the SM-DP+'s state. The new IMSI is disabled, the old card keeps the number.
    assert_eq!(order_of(&client, &iccid).order.state, "installed");
    assert_eq!(
        net.smdp()
            .unwrap()
            .smdp()
            .order_by_iccid(&iccid)
            .unwrap()
            .unwrap()
            .state,
        simlab_harness::smdp::OrderState::Installed
    );
    let new_line = client.line(&order.imsi).unwrap();
    assert_eq!(new_line.state, LineState::Disabled);
    assert!(
        new_line.reason.unwrap().starts_with("transfer expired: "),
        "says why"
    );
    let old = client.line(IMSI).unwrap();
    assert_eq!(
        (old.state, old.msisdn.as_str()),
        (LineState::Active, MSISDN)
    );
    let op = client
        .operations()
        .unwrap()
        .into_iter()
        .find(|o| o.id == op_id)
        .unwrap();
    assert_eq!(op.state, "failed");
    // The old card is told; the new profile cannot attach.
    let inbox = client.inbox(IMSI, None).unwrap();
    let told = inbox.last().unwrap();
    assert!(
        told.text.contains(&eid) && told.text.contains(&iccid) && told.text.contains("delete"),
        "{inbox:?}"
    );
    assert_eq!(code_of(client.attach(&order.imsi)), "imsi-disabled");
    // Sweeping again ends nothing more.
    assert_eq!(net.network().expire_transfers().unwrap(), []);

    // Enabled late, the profile changes nothing: the SM-DP+'s event is recorded, the
    // transfer stays expired, the number stays on the old card.
    euicc.enable(&iccid);
    euicc.notify();
    assert_eq!(order_of(&client, &iccid).order.state, "enabled");
    assert_eq!(client.transfers().unwrap()[0].state, "expired");
    assert_eq!(client.line(&order.imsi).unwrap().state, LineState::Disabled);
    assert_eq!(client.line(IMSI).unwrap().state, LineState::Active);

    // The number is free to move again.
    let mut other = Euicc::new(&net);
    let other_eid = other.eid();
    let (_, again) = ask_upgrade(&client, &other_eid);
    other.install(&download_info(&again.unwrap()));
    let transfers = client.transfers().unwrap();
    assert_eq!(transfers[1].state, "done", "{transfers:?}");
    assert_eq!(client.line(IMSI).unwrap().state, LineState::Disabled);
}

#[test]
fn the_sweeper_expires_a_transfer_nobody_asks_about() {
    let mut opts = simlab_harness::network::server::NetworkOptions::embedded(&vectors());
    opts.transfer_ttl = std::time::Duration::ZERO;
    let net = simlab_harness::network::server::start(opts).unwrap();
    let (client, _usim, _token) = primary(&net, Policy::default());
    let mut euicc = Euicc::new(&net);
    let eid = euicc.eid();
    let code = download_info(&ask_upgrade(&client, &eid).1.unwrap());
    // The sweeper runs every second for this lifetime; wait for it (bounded), no request.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while client.transfers().unwrap()[0].state == "pending" {
        assert!(std::time::Instant::now() < deadline, "never expired");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(client.transfers().unwrap()[0].state, "expired");
    assert_eq!(client.line(IMSI).unwrap().state, LineState::Active);
    let refused = euicc.try_download(&code).unwrap_err();
    assert!(
        refused.contains("8.2.6") && refused.contains("3.8"),
        "{refused}"
    );
}

#[test]
fn the_network_works_against_an_smdp_it_does_not_run() {
    // An SM-DP+ with a database of its own, as another host runs it.
    let smdp = simlab_harness::smdp::start(simlab_harness::smdp::SmdpOptions::new(
        vectors().join("pki"),
        vectors().join("profiles"),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = simlab_harness::network::server::NetworkOptions::embedded(&vectors());
    opts.remote_smdp = Some(simlab_harness::network::server::RemoteSmdp {
        es2_url: smdp.es2_url(),
        address: smdp.address.clone(),
        ca_cert_der: smdp.ca_cert_der.clone(),
        db: Some(dir.path().join("network.sqlite")),
    });
    let net = simlab_harness::network::server::start(opts).unwrap();
    assert!(net.smdp().is_none(), "no SM-DP+ of its own");
    smdp.smdp()
        .set_es2_callback_url(Some(net.es2_callback_url()))
        .unwrap();

    let (client, _usim, token) = primary(&net, Policy::default());
    let (mut euicc, info) = companion_order(&net, &client, &token, true);
    assert!(info.activation_code.contains(&smdp.address));
    euicc.install(&info.activation_code);
    let order = order_of(&client, &info.iccid);
    assert_eq!(order.order.state, "enabled");
    let line = client.line(&order.order.imsi).unwrap();
    assert_eq!(
        (line.state, line.msisdn.as_str()),
        (LineState::Active, MSISDN)
    );
    assert_eq!(euicc.read_msisdn().as_deref(), Some(MSISDN));
    assert_eq!(client.groups().unwrap()[0].members.len(), 2);

    // Two databases: the SM-DP+ knows nothing of subscribers, the network holds no order of
    // the SM-DP+'s.
    let count = |c: &rusqlite::Connection, sql: &str| -> i64 {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    smdp.smdp()
        .with_store(|s| {
            let c = s.connection();
            assert_eq!(
                count(
                    c,
                    "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'net_%'"
                ),
                0
            );
            assert_eq!(count(c, "SELECT COUNT(*) FROM orders"), 1);
            Ok(())
        })
        .unwrap();
    net.network()
        .with_connection(|c| {
            assert_eq!(count(c, "SELECT COUNT(*) FROM orders"), 0);
            assert_eq!(count(c, "SELECT COUNT(*) FROM net_orders"), 1);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_code_lifetime_below_a_second_is_honoured() {
    let mut opts = simlab_harness::network::server::NetworkOptions::embedded(&vectors());
    opts.code_ttl = std::time::Duration::from_millis(300);
    let net = simlab_harness::network::server::start(opts).unwrap();
    let client = net.client();
    client.provision(&uicc_provision()).unwrap();
    let doc = client
        .entitlement_document(
            &EntitlementRequest::acquire_configuration(),
            &Auth::Otp {
                msisdn: MSISDN.into(),
            },
        )
        .unwrap();
    // TS.43 counts in seconds: rounded up, never 0 for a code that lives.
    assert_eq!(doc.app()["OtpExpiresIn"], "1");
    let code = client.latest_code(IMSI).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(
        code_of(client.continue_operation(doc.operation_id().unwrap(), Some(&code), None)),
        "code-expired"
    );
}
