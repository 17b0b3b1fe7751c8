//! SM-DP+ order integrity (SGP.22 v2.5 §3.1.3.2, §5.6): one order is bound by exactly one
//! eUICC however many download it at once; a download interrupted after the package went out
//! is served again to the same eUICC and refused to any other; ES9+ sessions expire.

// This whole file is test code; clippy.toml's allow-*-in-tests only covers `#[test]` fns,
// not the helpers beside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod smdp_support;

use simlab_emulator::saip;
use simlab_harness::es9p::{
    CancelSessionRequest, Es9Plus, Es9pClient, GetBoundProfilePackageRequest,
    InitiateAuthenticationRequest,
};
use simlab_harness::smdp::{self, OrderState, RunningSmdp, Smdp, SmdpOptions};
use smdp_support::*;
use std::sync::Barrier;
use std::time::Duration;

fn server() -> RunningSmdp {
    smdp::start(SmdpOptions::new(pki_dir(), templates_dir())).unwrap()
}

fn client(s: &RunningSmdp) -> Es9pClient {
    Es9pClient::new(&s.address, &[&s.ca_cert_der]).unwrap()
}

fn matching_id(ac: &str) -> String {
    ac.rsplit('$').next().unwrap().to_owned()
}

/// DER value of the test SM-DP+ OID (RID 2.999.10 of the shipped DPauth certificate).
const SMDP_OID: &[u8] = &[0x88, 0x37, 0x0A];
/// eUICCs racing for one order per round, and rounds (each with a new order); more with
/// `SIMLAB_RACE_ROUNDS` / `SIMLAB_RACERS` (docs/reliability.md).
const RACERS: usize = 6;
const ROUNDS: usize = 4;

fn from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one racer got: its EID and the outcome of its download.
type Outcome = (String, Result<Downloaded, (String, String)>);

/// All `euiccs` download `mid` at once over HTTPS: every one authenticates first, then all
/// ask for the package together (the widest race: nobody has bound the order yet). A loser
/// cancels its session as an LPA does (SGP.22 §3.1.3.4, reason postponed).
fn race(s: &RunningSmdp, euiccs: &[FakeEuicc], mid: &str) -> Vec<Outcome> {
    let barrier = Barrier::new(euiccs.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = euiccs
            .iter()
            .map(|euicc| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let c = client(s);
                    let failed = |e: simlab_harness::es9p::Es9pError| {
                        let (s, r) = e.status_code().expect("an SGP.22 failure");
                        (s.to_owned(), r.to_owned())
                    };
                    let auth = authenticate(&c, euicc, &s.address, Some(mid));
                    barrier.wait();
                    let auth = match auth {
                        Ok(a) => a,
                        Err(e) => return (euicc.eid_string(), Err(failed(e))),
                    };
                    let (pdr, ot) =
                        euicc.prepare_download(&auth.response, &auth.euicc_signature1, None);
                    let got = c.get_bound_profile_package(&GetBoundProfilePackageRequest {
                        header: None,
                        transaction_id: auth.transaction_id.clone(),
                        prepare_download_response: pdr,
                    });
                    match got {
                        Ok(bpp) => {
                            let (metadata, upp, replaced_keys, segments_86) = euicc.open_bpp(
                                &bpp.bound_profile_package,
                                &ot,
                                &auth.response.smdp_certificate,
                            );
                            let done = Downloaded {
                                transaction_id: auth.transaction_id,
                                metadata,
                                upp,
                                replaced_keys,
                                segments_86,
                            };
                            (euicc.eid_string(), Ok(done))
                        }
                        Err(e) => {
                            let _ = c.cancel_session(&CancelSessionRequest {
                                header: None,
                                transaction_id: auth.transaction_id.clone(),
                                cancel_session_response: euicc.cancel_session_response(
                                    &auth.transaction_id,
                                    SMDP_OID,
                                    1,
                                ),
                            });
                            (euicc.eid_string(), Err(failed(e)))
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn exactly_one_of_many_concurrent_downloads_of_one_order_wins() {
    let s = server();
    let euiccs = FakeEuicc::many(from_env("SIMLAB_RACERS", RACERS));
    let rounds = from_env("SIMLAB_RACE_ROUNDS", ROUNDS);
    for round in 0..rounds {
        let (order, ac) = s
            .smdp()
            .order_activation_code(TEMPLATE, None, None)
            .unwrap();
        let outcomes = race(&s, &euiccs, &matching_id(&ac));
        let winners: Vec<&Outcome> = outcomes.iter().filter(|o| o.1.is_ok()).collect();
        let summary: Vec<String> = outcomes
            .iter()
            .map(|(eid, o)| match o {
                Ok(_) => format!("{eid}: package"),
                Err(codes) => format!("{eid}: {codes:?}"),
            })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {summary:#?}");
        for (eid, outcome) in &outcomes {
            if let Err(codes) = outcome {
                // SGP.22 §5.6.2/§5.6.3: "EID – Refused": the order is bound to another eUICC.
                assert_eq!(codes, &pair("8.1.1", "3.8"), "round {round}, {eid}");
            }
        }
        let winner = &winners[0].0;
        let stored = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
        assert_eq!(
            stored.state,
            OrderState::Downloaded,
            "losers' cancels left it"
        );
        assert_eq!(stored.eid.as_ref(), Some(winner));
        let expected = s.smdp().profile_package(&order).unwrap();
        assert_eq!(winners[0].1.as_ref().unwrap().upp, expected);
    }
    eprintln!(
        "{rounds} rounds of {} concurrent downloads of one order: one winner each",
        euiccs.len()
    );
}

#[test]
fn the_same_eid_retrying_after_the_package_was_sent_gets_a_newly_bound_package() {
    let s = server();
    let c = client(&s);
    let mut euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let mid = matching_id(&ac);
    // The package went out, but the device died before the eUICC stored it.
    let first = download(&c, &euicc, &s.address, Some(&mid), None).unwrap();
    let again = download(&c, &euicc, &s.address, Some(&mid), None).unwrap();
    assert_ne!(again.transaction_id, first.transaction_id);
    assert_eq!(again.upp, first.upp, "the same profile, bound anew");
    let stored = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Downloaded);
    assert_eq!(stored.download_attempts, 2);
    assert_eq!(
        stored.last_transaction_id,
        Some(hex::encode_upper(&again.transaction_id))
    );
    let iccid_ef = saip::encode_iccid_ef(&order.iccid).unwrap();
    notify(
        &c,
        euicc.installation_result(&again.transaction_id, &s.address, &iccid_ef, true),
    )
    .unwrap();
    let stored = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Installed);
}

#[test]
fn another_eid_is_refused_once_a_package_was_bound() {
    let s = server();
    let c = client(&s);
    let (_, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let mid = matching_id(&ac);
    download(&c, &FakeEuicc::nist(), &s.address, Some(&mid), None).unwrap();
    let other = &FakeEuicc::many(1)[0];
    let r = download(&c, other, &s.address, Some(&mid), None);
    assert_eq!(codes_of(r), pair("8.1.1", "3.8"));
}

#[test]
fn an_order_without_eid_is_bound_by_the_first_eid_that_fetches_its_package() {
    let s = server();
    let c = client(&s);
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let mid = matching_id(&ac);
    let first = FakeEuicc::nist();
    let second = &FakeEuicc::many(1)[0];
    // The first device authenticates and gives up before asking for the package: that binds
    // nothing, so another device may still take the order.
    authenticate(&c, &first, &s.address, Some(&mid)).unwrap();
    let stored = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!((stored.state, stored.eid), (OrderState::Released, None));
    download(&c, second, &s.address, Some(&mid), None).unwrap();
    let stored = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!(stored.eid, Some(second.eid_string()));
    let r = download(&c, &first, &s.address, Some(&mid), None);
    assert_eq!(codes_of(r), pair("8.1.1", "3.8"));
}

#[test]
fn a_late_installation_result_of_an_earlier_session_still_installs_the_order() {
    let s = server();
    let c = client(&s);
    let mut euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let mid = matching_id(&ac);
    let first = download(&c, &euicc, &s.address, Some(&mid), None).unwrap();
    let second = download(&c, &euicc, &s.address, Some(&mid), None).unwrap();
    let iccid_ef = saip::encode_iccid_ef(&order.iccid).unwrap();
    // The first package was installed after all, its result sent late; the retry's package
    // then fails on the eUICC (the ICCID is already there).
    notify(
        &c,
        euicc.installation_result(&first.transaction_id, &s.address, &iccid_ef, true),
    )
    .unwrap();
    notify(
        &c,
        euicc.installation_result(&second.transaction_id, &s.address, &iccid_ef, false),
    )
    .unwrap();
    let stored = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Installed);
    let results: Vec<String> = s
        .smdp()
        .notifications()
        .unwrap()
        .into_iter()
        .map(|n| n.result)
        .collect();
    assert_eq!(results[0], "success", "{results:?}");
}

#[test]
fn a_cancelled_retry_reopens_the_order_for_the_same_eid_only() {
    let s = server();
    let c = client(&s);
    let euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let mid = matching_id(&ac);
    let got = download(&c, &euicc, &s.address, Some(&mid), None).unwrap();
    c.cancel_session(&CancelSessionRequest {
        header: None,
        transaction_id: got.transaction_id.clone(),
        cancel_session_response: euicc.cancel_session_response(&got.transaction_id, SMDP_OID, 1),
    })
    .unwrap();
    let stored = s.smdp().order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Released);
    assert_eq!(stored.eid, Some(euicc.eid_string()), "still bound");
    let r = download(&c, &FakeEuicc::many(1)[0], &s.address, Some(&mid), None);
    assert_eq!(codes_of(r), pair("8.1.1", "3.8"));
    download(&c, &euicc, &s.address, Some(&mid), None).unwrap();
}

fn in_process(ttl: Duration) -> Smdp {
    let mut opts = SmdpOptions::new(pki_dir(), templates_dir());
    opts.session_ttl = ttl;
    Smdp::open(&opts, "127.0.0.1:8443").unwrap()
}

fn initiate(smdp: &Smdp, euicc: &FakeEuicc) -> Vec<u8> {
    let req: InitiateAuthenticationRequest = euicc.initiate_request(&[7; 16], "127.0.0.1:8443");
    Es9Plus::initiate_authentication(smdp, &req)
        .unwrap()
        .transaction_id
}

#[test]
fn an_expired_session_answers_transaction_id_unknown_and_is_purged() {
    // A lifetime of zero: every session has expired by its next call.
    let smdp = in_process(Duration::ZERO);
    let euicc = FakeEuicc::nist();
    let r = authenticate(&smdp, &euicc, "127.0.0.1:8443", Some(TEMPLATE));
    assert_eq!(codes_of(r), pair("8.10.1", "3.9"));
    // 500 abandoned sessions leave one row (the newest, itself expired), not 500.
    for _ in 0..500 {
        initiate(&smdp, &euicc);
    }
    assert_eq!(smdp.session_count().unwrap(), 1);
}

#[test]
fn sessions_within_their_lifetime_stay_until_used() {
    let smdp = in_process(Duration::from_secs(3600));
    let euicc = FakeEuicc::nist();
    for _ in 0..20 {
        initiate(&smdp, &euicc);
    }
    assert_eq!(smdp.session_count().unwrap(), 20);
    authenticate(&smdp, &euicc, "127.0.0.1:8443", Some(TEMPLATE)).unwrap();
}
