//! The operator network end to end over its HTTP API (docs/network.md): EAP-AKA against a
//! USIM's algorithm, one-time codes, contracts, companion downloads into the emulated eUICC
//! through simlab's LPA and SM-DP+, bindings and calls, upgrades and migrations (one wins),
//! input validation, and a restart on a database file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod network_support;

use network_support::*;
use rstest::rstest;
use simlab_emulator::aka::{AkaAlgorithm, SqnStore};
use simlab_harness::eap_aka::permanent_identity;
use simlab_harness::network::client::{
    Auth, ClientError, EntitlementRequest, NetworkClient, NextStep,
};
use simlab_harness::network::db::{LineState, Policy};
use simlab_harness::network::server::{self, NetworkOptions, RunningNetwork};
use simlab_harness::network::service::Provision;
use simlab_harness::network::ts43::LineId;
use simlab_harness::transport::InProcess;
use std::sync::Mutex;

#[test]
fn eap_aka_authenticates_the_uicc_and_the_token_works_afterwards() {
    let net = start();
    let (client, _usim, token) = primary(&net, Policy::default());
    assert_eq!(token.len(), 32);
    let doc = client
        .entitlement_document(
            &EntitlementRequest::acquire_configuration(),
            &Auth::Token(token),
        )
        .unwrap();
    assert_eq!(doc.line().unwrap()["IMSI"], IMSI);
    assert_eq!(doc.line().unwrap()["MSISDN"], MSISDN);
    assert_eq!(doc.app()["OperationResult"], "1");
    // Every challenge advanced SQN_HE (kept in the database).
    assert!(client.line(IMSI).unwrap().sqn_he > 0);
}

#[test]
fn a_card_with_another_key_rejects_the_challenge_and_the_network_answers_eap_failure() {
    let net = start();
    let client = net.client();
    client.provision(&uicc_provision()).unwrap();
    let mut other = SoftUsim {
        alg: AkaAlgorithm::XorTest { k: [7; 16] },
        sqn: SqnStore::default(),
    };
    let e = eap(
        &client,
        &mut other,
        IMSI,
        &EntitlementRequest::acquire_configuration(),
    )
    .unwrap_err();
    let ClientError::Network {
        status,
        code,
        eap_failure,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!((status, code.as_str()), (403, "auth-failed"));
    assert_eq!(eap_failure.map(|p| p[0]), Some(4), "EAP-Failure relayed");
}

#[test]
fn a_card_ahead_in_sqn_resynchronises_with_auts_and_then_authenticates() {
    let net = start();
    let client = net.client();
    client.provision(&uicc_provision()).unwrap();
    let mut usim = SoftUsim::uicc();
    // The card has accepted SQNs far beyond what the network will send.
    usim.sqn.accept(0x40_0000).unwrap();
    let doc = eap(
        &client,
        &mut usim,
        IMSI,
        &EntitlementRequest::acquire_configuration(),
    )
    .unwrap();
    assert!(doc.token().is_some());
    assert!(client.line(IMSI).unwrap().sqn_he > 0x40_0000);
}

#[test]
fn a_response_with_a_bad_mac_is_refused_and_the_session_is_gone() {
    let net = start();
    let client = net.client();
    client.provision(&uicc_provision()).unwrap();
    let mut usim = SoftUsim::uicc();
    let identity = permanent_identity(IMSI, 2);
    let first = client
        .entitlement(
            &EntitlementRequest::acquire_configuration(),
            &Auth::EapAka {
                identity: identity.clone(),
            },
        )
        .unwrap();
    let simlab_harness::network::client::EntitlementAnswer::Challenge { packet, session } = first
    else {
        panic!("no challenge")
    };
    let c = simlab_harness::eap_aka::Challenge::parse(&packet).unwrap();
    let mut response = c
        .answer(identity.as_bytes(), usim.answer(&c.rand, &c.autn))
        .response()
        .to_vec();
    let n = response.len();
    response[n - 1] ^= 0x01;
    assert_eq!(
        code_of(client.eap_relay(&session, &response)),
        "auth-failed"
    );
    assert_eq!(
        code_of(client.eap_relay(&session, &response)),
        "eap-session-unknown"
    );
}

#[test]
fn a_disabled_or_unknown_imsi_is_refused_before_any_challenge() {
    let net = start();
    let client = net.client();
    let req = EntitlementRequest::acquire_configuration();
    let auth = Auth::EapAka {
        identity: permanent_identity("001019999999999", 2),
    };
    assert_eq!(
        code_of(client.entitlement(&req, &auth)),
        "unknown-subscriber"
    );
    assert_eq!(
        code_of(client.entitlement(
            &req,
            &Auth::EapAka {
                identity: "1001010123456063@x".into()
            }
        )),
        "invalid-parameter"
    );
}

#[test]
fn sms_codes_are_single_use_count_wrong_tries_lock_and_expire() {
    let net = start();
    let client = net.client();
    client.provision(&uicc_provision()).unwrap();
    let req = EntitlementRequest::acquire_configuration();
    let ask = || {
        let doc = client
            .entitlement_document(
                &req,
                &Auth::Otp {
                    msisdn: MSISDN.into(),
                },
            )
            .unwrap();
        assert_eq!(doc.subscription_result(), Some("8"));
        let code = client.latest_code(IMSI).unwrap().unwrap();
        (doc.operation_id().unwrap().to_owned(), code)
    };
    let wrong = |code: &str| {
        let d = code.chars().next().unwrap().to_digit(10).unwrap();
        format!("{}{}", (d + 1) % 10, &code[1..])
    };

    // Two wrong tries, then the right code: a token for the number; the code is spent.
    let (op, code) = ask();
    assert_eq!(
        code_of(client.continue_operation(&op, Some(&wrong(&code)), None)),
        "code-wrong"
    );
    assert_eq!(
        code_of(client.continue_operation(&op, Some(&wrong(&code)), None)),
        "code-wrong"
    );
    let doc = client.continue_operation(&op, Some(&code), None).unwrap();
    assert!(doc.token().is_some());
    assert_eq!(
        code_of(client.continue_operation(&op, Some(&code), None)),
        "code-used"
    );

    // Three wrong tries lock the request: even the right code is refused then.
    let (op, code) = ask();
    for expected in ["code-wrong", "code-wrong", "code-locked"] {
        assert_eq!(
            code_of(client.continue_operation(&op, Some(&wrong(&code)), None)),
            expected
        );
    }
    assert_eq!(
        code_of(client.continue_operation(&op, Some(&code), None)),
        "code-locked"
    );

    // An expired code (its deadline moved into the past in the database).
    let (op, code) = ask();
    net.network()
        .with_connection(|c| {
            c.execute("UPDATE net_codes SET expires_at = 0", [])
                .unwrap();
            Ok(())
        })
        .unwrap();
    assert_eq!(
        code_of(client.continue_operation(&op, Some(&code), None)),
        "code-expired"
    );
}

fn companion_download(
    net: &RunningNetwork,
    client: &NetworkClient,
    token: &str,
    shared_number: bool,
) -> (Euicc, String, String) {
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
    let order = client
        .orders()
        .unwrap()
        .into_iter()
        .find(|o| o.order.iccid == info.iccid)
        .unwrap();
    assert_eq!(
        client.line(&order.order.imsi).unwrap().state,
        LineState::Pending,
        "not usable before the profile is installed"
    );
    // The BOSS ordered it for this EID only (the SM-DP+ refuses any other eUICC).
    let smdp_order = net
        .smdp()
        .unwrap()
        .smdp()
        .order_by_iccid(&info.iccid)
        .unwrap()
        .unwrap();
    assert_eq!(smdp_order.eid.as_deref(), Some(eid.as_str()));
    let iccid = euicc.install(&info.activation_code);
    assert_eq!(iccid, info.iccid);
    // An activation code serves once.
    let again = euicc.try_download(&info.activation_code);
    let again = again.expect_err("a second download with the same code worked");
    assert!(again.contains("reason code 3.8"), "{again}");
    (euicc, iccid, order.order.imsi)
}

#[test]
fn companion_download_with_shared_number_binds_and_calls_ring_both() {
    let net = start();
    let (client, _usim, token) = primary(&net, Policy::default());
    let (_euicc, _iccid, watch_imsi) = companion_download(&net, &client, &token, true);

    let watch = client.line(&watch_imsi).unwrap();
    assert_eq!(watch.state, LineState::Active);
    assert_eq!(watch.msisdn, MSISDN);
    let groups = client.groups().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0]
            .members
            .iter()
            .map(|m| m.imsi.as_str())
            .collect::<Vec<_>>(),
        [IMSI, watch_imsi.as_str()]
    );

    let fa = client.call(MSISDN, None).unwrap();
    assert_eq!(fa.mode, "FA");
    assert_eq!(fa.rings.len(), 1);
    assert_eq!(fa.rings[0].imsis, [IMSI.to_owned(), watch_imsi.clone()]);
    assert_eq!(fa.answered_by.as_deref(), Some(IMSI));

    // Fig. 5 step 510: the primary sees the group in its configuration.
    let doc = client
        .entitlement_document(
            &EntitlementRequest::acquire_configuration(),
            &Auth::Token(token.clone()),
        )
        .unwrap();
    assert_eq!(
        doc.multi_imsi().unwrap()["Members"][1]["IMSI"],
        watch_imsi.as_str()
    );

    // Unbinding a line born on the shared number: it has no number left, so it is disabled
    // and the group ends.
    client
        .entitlement_document(
            &EntitlementRequest::deactivate_multi_imsi(None, &LineId::Imsi(watch_imsi.clone())),
            &Auth::Token(token),
        )
        .unwrap();
    let watch = client.line(&watch_imsi).unwrap();
    assert_eq!(watch.state, LineState::Disabled);
    assert_eq!(watch.reason.as_deref(), Some("unbound from +15555550100"));
    assert!(client.groups().unwrap().is_empty());
    assert_eq!(client.call(MSISDN, None).unwrap().rings[0].imsis, [IMSI]);
}

#[test]
fn an_euicc_line_given_by_eid_gets_its_profile_ordered_and_becomes_active_once_installed() {
    let net = start();
    let client = net.client();
    let mut euicc = Euicc::new(&net);
    let eid = euicc.eid();
    let p = Provision {
        msisdn: "+15555550177".into(),
        imsi: None,
        iccid: None,
        kind: simlab_harness::network::db::CardKind::Euicc,
        eid: Some(eid.clone()),
        aka: None,
        account: None,
        sqn: None,
        ota: None,
        policy: Policy::default(),
        ring_mode: Default::default(),
    };
    let line = client.provision(&p).unwrap();
    assert_eq!(line.state, LineState::Pending);
    let ac = line.activation_code.clone().unwrap();
    // Idempotent: the same line and code again.
    let again = client.provision(&p).unwrap();
    assert_eq!(
        (again.imsi.as_str(), again.activation_code.as_deref()),
        (line.imsi.as_str(), Some(ac.as_str()))
    );
    euicc.install(&ac);
    let line = client.line(&line.imsi).unwrap();
    assert_eq!(line.state, LineState::Active);
    assert_eq!(line.eid.as_deref(), Some(eid.as_str()));
}

#[test]
fn download_then_binding_with_mah_rings_in_order_until_one_answers() {
    let net = start();
    let (client, _usim, token) = primary(&net, Policy::default());
    let (_euicc, iccid, watch_imsi) = companion_download(&net, &client, &token, false);
    let own = client.line(&watch_imsi).unwrap();
    assert_ne!(own.msisdn, MSISDN, "its own number until the binding");

    let doc = client
        .entitlement_document(
            &EntitlementRequest::activate_multi_imsi(
                Some(&LineId::Imsi(IMSI.into())),
                &LineId::Iccid(iccid),
                Some("MAH"),
            ),
            &Auth::Token(token.clone()),
        )
        .unwrap();
    assert_eq!(doc.service_status(), Some("1"));
    assert_eq!(doc.multi_imsi().unwrap()["RingMode"], "MAH");

    let only_watch = vec![watch_imsi.clone()];
    let mah = client.call(MSISDN, Some(&only_watch)).unwrap();
    assert_eq!(mah.mode, "MAH");
    assert_eq!(
        mah.rings
            .iter()
            .map(|r| r.imsis.clone())
            .collect::<Vec<_>>(),
        [vec![IMSI.to_owned()], vec![watch_imsi.clone()]]
    );
    assert_eq!(mah.answered_by, Some(watch_imsi.clone()));
    // The number's own view and the list of every subscriber agree: both lines, ring order.
    let one = client.subscriber(MSISDN).unwrap();
    assert_eq!(
        one.imsis
            .iter()
            .map(|l| l.imsi.as_str())
            .collect::<Vec<_>>(),
        [IMSI, watch_imsi.as_str()]
    );
    let listed = client.subscribers().unwrap();
    assert_eq!(listed.iter().find(|s| s.msisdn == MSISDN), Some(&one));

    // Binding again: already in the group. Unbinding: the watch gets its own number back.
    assert_eq!(
        code_of(client.entitlement_document(
            &EntitlementRequest::activate_multi_imsi(None, &LineId::Imsi(watch_imsi.clone()), None),
            &Auth::Token(token.clone()),
        )),
        "already-in-group"
    );
    let doc = client
        .entitlement_document(
            &EntitlementRequest::deactivate_multi_imsi(None, &LineId::Imsi(watch_imsi.clone())),
            &Auth::Token(token.clone()),
        )
        .unwrap();
    assert_eq!(doc.service_status(), Some("3"));
    assert!(client.groups().unwrap().is_empty());
    assert_eq!(client.line(&watch_imsi).unwrap().msisdn, own.msisdn);
    assert_eq!(
        code_of(client.entitlement_document(
            &EntitlementRequest::deactivate_multi_imsi(None, &LineId::Imsi(watch_imsi)),
            &Auth::Token(token),
        )),
        "not-in-group"
    );
}

#[test]
fn a_declined_contract_creates_nothing_and_an_accepted_one_orders_the_profile() {
    let net = start();
    let (client, _usim, token) = primary(
        &net,
        Policy {
            contract: true,
            ..Policy::default()
        },
    );
    let eid = "89049032123451234512345678901235";
    let ask = || {
        let doc = client
            .entitlement_document(
                &EntitlementRequest::companion_subscribe(eid, false),
                &Auth::Token(token.clone()),
            )
            .unwrap();
        let NextStep::Contract { url, operation_id } = doc.next_step() else {
            panic!("{:?}", doc.raw)
        };
        (url, operation_id)
    };

    let (url, op) = ask();
    let page = client.open_contract(&url).unwrap();
    assert!(page.pending);
    assert!(page.html.contains("value=\"decline\""));
    client.answer_contract(&url, false).unwrap();
    let doc = client.continue_operation(&op, None, Some(&token)).unwrap();
    assert_eq!(doc.next_step(), NextStep::Dismissed);
    assert!(client.orders().unwrap().is_empty());
    assert_eq!(client.subscribers().unwrap().len(), 1);
    assert!(net.smdp().unwrap().smdp().orders().unwrap().is_empty());
    assert_eq!(
        code_of(client.answer_contract(&url, true)),
        "operation-state"
    );

    let (url, op) = ask();
    let html = client.answer_contract(&url, true).unwrap();
    assert!(html.contains("profile is ordered"), "{html}");
    let doc = client.continue_operation(&op, None, Some(&token)).unwrap();
    assert!(matches!(doc.next_step(), NextStep::Download(_)));
    assert_eq!(client.orders().unwrap().len(), 1);
    // Signed once: the next request goes straight to the download.
    let doc = client
        .entitlement_document(
            &EntitlementRequest::companion_subscribe(eid, false),
            &Auth::Token(token),
        )
        .unwrap();
    assert!(matches!(doc.next_step(), NextStep::Download(_)));
}

#[test]
fn two_concurrent_migrations_of_one_number_exactly_one_wins_and_the_old_card_is_disabled() {
    let net = start();
    let (client, _usim, _token) = primary(&net, Policy::default());
    let eid = "89049032123451234512345678901235";
    let req = EntitlementRequest::transfer(MSISDN, eid, Some("upgrade"));
    // Both requests get their code (to the OLD card) before either is typed.
    let mut ops = Vec::new();
    for _ in 0..2 {
        let doc = client
            .entitlement_document(
                &req,
                &Auth::Otp {
                    msisdn: MSISDN.into(),
                },
            )
            .unwrap();
        let code = client.latest_code(IMSI).unwrap().unwrap();
        ops.push((doc.operation_id().unwrap().to_owned(), code));
    }
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (op, code) in &ops {
            let client = client.clone();
            let results = &results;
            s.spawn(move || {
                let r = client.continue_operation(op, Some(code), None);
                results.lock().unwrap().push(r);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let losers: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.code().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(losers, ["transfer-in-progress"]);
    let NextStep::Download(info) = winners[0].next_step() else {
        panic!()
    };

    let mut euicc = Euicc::new(&net);
    euicc.install(&info.activation_code);

    let old = client.line(IMSI).unwrap();
    assert_eq!(old.state, LineState::Disabled);
    assert!(old.reason.unwrap().contains("migrated to EID"));
    let active: Vec<_> = client
        .subscriber(MSISDN)
        .unwrap()
        .imsis
        .into_iter()
        .filter(|l| l.state == LineState::Active)
        .collect();
    assert_eq!(active.len(), 1, "one active IMSI for the number");
    assert_eq!(active[0].eid.as_deref(), Some(eid));
    // The old card is refused by the network, calls ring only the new one.
    assert_eq!(
        code_of(eap(
            &client,
            &mut SoftUsim::uicc(),
            IMSI,
            &EntitlementRequest::acquire_configuration()
        )),
        "imsi-disabled"
    );
    assert_eq!(code_of(client.attach(IMSI)), "imsi-disabled");
    let call = client.call(MSISDN, None).unwrap();
    assert_eq!(call.rings[0].imsis, [active[0].imsi.clone()]);
    assert_eq!(call.not_ringing[0].imsi, IMSI);
    // The old card got a notice, and the RFM command that deactivates its USIM (SMS-PP).
    let inbox = client.inbox(IMSI, None).unwrap();
    assert!(inbox
        .iter()
        .any(|s| s.text.contains("moved to another device")));
    let sms_pp: Vec<_> = inbox.iter().filter(|s| s.kind == "sms-pp").collect();
    assert_eq!(sms_pp.len(), 1, "{inbox:?}");
    let job = sms_pp[0].text.clone();

    // The old device hands it to its card (ENVELOPE, SMS-PP download) and returns the PoR.
    let mut old_card = InProcess::new(
        simlab_harness::cards::load_card(&vectors().join("cards/uicc.toml"), None).unwrap(),
    );
    let tpdu = hex::decode(sms_pp[0].user_data.as_ref().unwrap()).unwrap();
    let por = simlab_harness::ota::deliver_sms_pp(&mut old_card, &tpdu)
        .unwrap()
        .unwrap();
    let done = client.ota_por(&job, &por).unwrap();
    assert_eq!(done.state, "por-ok", "{done:?}");
    assert_eq!(done.outcome.unwrap()["responses"][0]["sw"], "9000");
    // Read directly afterwards, the old card's USIM is deactivated (TS 102 221: 62 83).
    use simlab_harness::transport::Transport as _;
    let select = old_card
        .transmit(&hex::decode("00A4040C0CA0000000871002FF49FF0589").unwrap())
        .unwrap();
    assert_eq!(select, [0x62, 0x83]);
    assert_eq!(
        code_of(client.ota_por(&job, &por)),
        "operation-state",
        "one PoR per job"
    );
}

#[test]
fn ota_commands_need_the_cards_keys_and_a_forged_por_is_recorded_as_refused() {
    let net = start();
    let client = net.client();
    let mut p = uicc_provision();
    let keys = p.ota.take().expect("uicc.toml has OTA keysets");
    client.provision(&p).unwrap();
    let request = simlab_harness::network::ota::OtaRequest {
        imsi: IMSI.into(),
        apdus: vec!["00A4000C022FE2".into(), "00B000000A".into()],
        deactivate_usim: false,
        application: Some("uicc".into()),
        keyset: None,
    };
    assert_eq!(code_of(client.ota_send(&request)), "no-ota-keys");
    p.ota = Some(keys);
    client.provision(&p).unwrap();
    let job = client.ota_send(&request).unwrap();
    assert_eq!(job.state, "sent");
    let mut bad = request.clone();
    bad.keyset = Some(15);
    assert_eq!(code_of(client.ota_send(&bad)), "invalid-parameter");

    // A PoR that was not made with the card's keys.
    let forged = hex::decode("027100001200000000000000000000000000001234").unwrap();
    let refused = client.ota_por(&job.id, &forged).unwrap();
    assert_eq!(refused.state, "por-error");
    assert!(refused.outcome.unwrap()["refused"].is_string());
    assert_eq!(client.ota_jobs().unwrap().len(), 1);
}

#[test]
fn a_migration_type_that_does_not_match_the_old_card_is_refused_before_any_code() {
    let net = start();
    let (client, _usim, _token) = primary(&net, Policy::default());
    let req = EntitlementRequest::transfer(
        MSISDN,
        "89049032123451234512345678901235",
        Some("migration"),
    );
    assert_eq!(
        code_of(client.entitlement(
            &req,
            &Auth::Otp {
                msisdn: MSISDN.into()
            }
        )),
        "invalid-parameter"
    );
    assert!(client.sms_log().unwrap().is_empty(), "no code was sent");
}

#[test]
fn network_attach_authenticates_with_aka_and_resynchronises() {
    let net = start();
    let client = net.client();
    client.provision(&uicc_provision()).unwrap();
    let mut usim = SoftUsim::uicc();
    usim.sqn.accept(0x1000).unwrap();
    let c = client.attach(IMSI).unwrap();
    let rand: [u8; 16] = hex::decode(&c.rand).unwrap().try_into().unwrap();
    let autn: [u8; 16] = hex::decode(&c.autn).unwrap().try_into().unwrap();
    let step = client
        .attach_answer(&c.session, &usim.answer(&rand, &autn))
        .unwrap();
    let simlab_harness::network::client::AttachStep::Challenge(c) = step else {
        panic!("{step:?}")
    };
    let rand: [u8; 16] = hex::decode(&c.rand).unwrap().try_into().unwrap();
    let autn: [u8; 16] = hex::decode(&c.autn).unwrap().try_into().unwrap();
    let step = client
        .attach_answer(&c.session, &usim.answer(&rand, &autn))
        .unwrap();
    assert!(matches!(
        step,
        simlab_harness::network::client::AttachStep::Attached(a) if a.msisdn == MSISDN
    ));
    assert!(client.hlr(IMSI).unwrap().can_attach);
}

#[test]
fn a_restarted_network_keeps_its_state_and_the_flow_continues() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("network.sqlite");
    let mut opts = NetworkOptions::embedded(&vectors());
    opts.smdp.db = Some(db.clone());
    let net = server::start(opts.clone()).unwrap();
    let (client, _usim, token) = primary(&net, Policy::default());
    let sqn = client.line(IMSI).unwrap().sqn_he;
    let doc = client
        .entitlement_document(
            &EntitlementRequest::acquire_configuration(),
            &Auth::Otp {
                msisdn: MSISDN.into(),
            },
        )
        .unwrap();
    let op = doc.operation_id().unwrap().to_owned();
    let code = client.latest_code(IMSI).unwrap().unwrap();
    net.stop();

    let net = server::start(opts).unwrap();
    let client = net.client();
    assert_eq!(client.line(IMSI).unwrap().sqn_he, sqn);
    let doc = client.continue_operation(&op, Some(&code), None).unwrap();
    assert!(
        doc.token().is_some(),
        "the code sent before the restart works"
    );
    client
        .entitlement_document(
            &EntitlementRequest::acquire_configuration(),
            &Auth::Token(token),
        )
        .unwrap();
}

/// Raw HTTP for the validation table (the typed client never sends these).
fn raw(
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = ureq::request(method, &format!("{base}{path}"));
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    let res = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let r = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = r.status();
    let text = r.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::json!({"text": text})),
    )
}

const JSON: Option<&str> = Some("application/json");
const RELAY: Option<&str> = Some("application/vnd.gsma.eap-relay.v1.0+json");

#[rstest]
#[case::no_auth(
    "GET",
    "/ts43?operation=AcquireConfiguration",
    None,
    None,
    401,
    "auth-required"
)]
#[case::bad_token("GET", "/ts43?token=nope", None, None, 403, "token-invalid")]
#[case::param_twice(
    "GET",
    "/ts43?app=ap2006&app=ap2009&token=x",
    None,
    None,
    400,
    "invalid-parameter"
)]
#[case::bad_msisdn("GET", "/ts43?MSISDN=abc", None, None, 400, "invalid-parameter")]
#[case::unknown_number(
    "GET",
    "/ts43?MSISDN=%2B19999999999",
    None,
    None,
    403,
    "unknown-subscriber"
)]
#[case::unknown_operation("GET", "/ts43?operation_id=op-0&otp=1", None, None, 404, "not-found")]
#[case::relay_wrong_type("POST", "/ts43", JSON, Some("{}"), 400, "bad-request")]
#[case::relay_not_json("POST", "/ts43", RELAY, Some("x"), 400, "bad-request")]
#[case::relay_not_base64(
    "POST",
    "/ts43",
    RELAY,
    Some(r#"{"eap-relay-packet":"***"}"#),
    400,
    "eap-malformed"
)]
#[case::relay_no_session(
    "POST",
    "/ts43",
    RELAY,
    Some(r#"{"eap-relay-packet":"AgIABA=="}"#),
    403,
    "eap-session-unknown"
)]
#[case::provision_missing(
    "POST",
    "/boss/subscribers",
    JSON,
    Some(r#"{"msisdn":"+1"}"#),
    400,
    "missing-parameter"
)]
#[case::provision_bad_key("POST", "/boss/subscribers", JSON, Some(r#"{"msisdn":"+1555","imsi":"001010000000001","iccid":"8949001010000000024","kind":"uicc","aka":{"algorithm":"xor","k":"00"}}"#), 400, "invalid-parameter")]
#[case::provision_euicc_without_eid("POST", "/boss/subscribers", JSON, Some(r#"{"msisdn":"+1555","imsi":"001010000000001","iccid":"8949001010000000024","kind":"euicc","aka":{"algorithm":"xor","k":"000102030405060708090a0b0c0d0e0f"}}"#), 400, "missing-parameter")]
#[case::provision_unknown_field(
    "POST",
    "/boss/subscribers",
    JSON,
    Some(r#"{"msisdn":"+1555","bogus":1}"#),
    400,
    "invalid-parameter"
)]
#[case::provision_imsi_taken("POST", "/boss/subscribers", JSON, Some(r#"{"msisdn":"+1555","imsi":"001010123456063","iccid":"8949001010000000024","kind":"uicc","aka":{"algorithm":"xor","k":"000102030405060708090a0b0c0d0e0f"}}"#), 409, "imsi-exists")]
#[case::sms_unknown(
    "POST",
    "/smsc/messages",
    JSON,
    Some(r#"{"to":"+19999","from":"a","text":"hi"}"#),
    403,
    "unknown-subscriber"
)]
#[case::sms_not_json(
    "POST",
    "/smsc/messages",
    Some("text/plain"),
    Some("hi"),
    400,
    "bad-request"
)]
#[case::inbox_bad_imsi("GET", "/smsc/inbox/12", None, None, 400, "invalid-parameter")]
#[case::inbox_bad_after(
    "GET",
    "/smsc/inbox/001010123456063?after=x",
    None,
    None,
    400,
    "invalid-parameter"
)]
#[case::attach_unknown(
    "POST",
    "/hlr/attach",
    JSON,
    Some(r#"{"imsi":"001019999999999"}"#),
    403,
    "unknown-subscriber"
)]
#[case::attach_answer_unknown(
    "POST",
    "/hlr/attach/att-0",
    JSON,
    Some(r#"{"res":"00"}"#),
    404,
    "not-found"
)]
#[case::call_unknown(
    "POST",
    "/calls",
    JSON,
    Some(r#"{"to":"+19999"}"#),
    403,
    "unknown-subscriber"
)]
#[case::admin_unknown_imsi("GET", "/admin/imsis/001019999999999", None, None, 404, "not-found")]
#[case::no_such_path("GET", "/nope", None, None, 404, "not-found")]
fn endpoints_refuse_bad_input_with_a_clear_code(
    #[case] method: &str,
    #[case] path: &str,
    #[case] content_type: Option<&str>,
    #[case] body: Option<&str>,
    #[case] status: u16,
    #[case] code: &str,
) {
    let net = start();
    net.client().provision(&uicc_provision()).unwrap();
    let (got_status, answer) = raw(net.operator_url(), method, path, content_type, body);
    assert_eq!(
        (got_status, answer["error"]["code"].as_str()),
        (status, Some(code)),
        "{answer}"
    );
    assert!(
        !answer["error"]["message"].as_str().unwrap_or("").is_empty(),
        "a message says what was wrong"
    );
}

#[test]
fn the_contract_form_refuses_a_missing_decision_and_unknown_contracts() {
    let net = start();
    let base = net.operator_url();
    let (status, answer) = raw(
        base,
        "POST",
        "/contract/c-0",
        Some("application/x-www-form-urlencoded"),
        Some("decision=maybe"),
    );
    assert_eq!(status, 400);
    assert!(answer["text"].as_str().unwrap().contains("decision=accept"));
    let (status, _) = raw(base, "GET", "/contract/c-0", None, None);
    assert_eq!(status, 404);
}

#[test]
fn the_index_lists_every_service_url() {
    let net = start();
    let urls = net.client().urls().unwrap();
    for key in [
        "entitlement",
        "contract",
        "smscInbox",
        "calls",
        "hlr",
        "admin",
        "es9plus",
    ] {
        assert!(urls["urls"][key].is_string(), "{key}: {urls}");
    }
}
