//! End to end in one process: simlab's LPA downloads a profile from simlab's SM-DP+ (HTTPS on
//! loopback) into the emulated eUICC, enables it, and the card then authenticates as that
//! profile's USIM; disable, delete and notifications follow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_emulator::aka::{self, ts_31_102::AuthenticateResponse, AkaAlgorithm};
use simlab_harness::cards::load_card;
use simlab_harness::lpa::{self, ActivationCode, DeviceInfo, Es10Client};
use simlab_harness::smdp::{self, SmdpOptions};
use simlab_harness::transport::{split_sw, InProcess, Transport};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn smdp() -> smdp::RunningSmdp {
    smdp::start(SmdpOptions::new(
        root().join("vectors/pki"),
        root().join("vectors/profiles"),
    ))
    .unwrap()
}

fn euicc() -> InProcess {
    InProcess::new(load_card(&root().join("vectors/cards/euicc.toml"), None).unwrap())
}

fn roots(s: &smdp::RunningSmdp) -> Vec<Vec<u8>> {
    vec![s.ca_cert_der.clone()]
}

fn ok(t: &mut InProcess, apdu: &str) -> Vec<u8> {
    let answer = t
        .transmit(&hex::decode(apdu.replace(' ', "")).unwrap())
        .unwrap();
    let (data, sw) = split_sw(&answer);
    assert_eq!(sw, 0x9000, "{apdu} answered {}", hex::encode_upper(&answer));
    data.to_vec()
}

/// TS.48: PIN1 0000, USIM AID, XOR test algorithm with K 000102…0f.
fn authenticate_as_ts48_usim(t: &mut InProcess) {
    ok(t, "00 A4 04 0C 0C A0000000871002FF49FF0589");
    // TS.48's PIN1 is disabled; VERIFY would still succeed, so skip it.
    let k: [u8; 16] = core::array::from_fn(|i| i as u8);
    let alg = AkaAlgorithm::XorTest { k };
    let v = aka::generate_vector(&alg, 0x40, [0x80, 0x00], &[0x5A; 16]);
    let data = ok(
        t,
        &format!(
            "00 88 00 81 22 10{} 10{} 00",
            hex::encode(v.rand),
            hex::encode(v.autn)
        ),
    );
    match AuthenticateResponse::parse(0x81, &data).unwrap() {
        AuthenticateResponse::Success3g { res, ck, ik, .. } => {
            assert_eq!((res, ck, ik), (v.xres, v.ck, v.ik));
        }
        other => panic!("AUTHENTICATE: {other:?}"),
    }
}

#[test]
fn downloads_enables_authenticates_disables_and_deletes_a_ts48_profile() {
    let server = smdp();
    let ac: ActivationCode = format!("LPA:1${}$TS48V1-A-UNIQUE", server.address)
        .parse()
        .unwrap();
    let mut es10 = Es10Client::open(euicc()).unwrap();
    assert_eq!(es10.eid().unwrap(), "89049032123451234512345678901235");
    let mut steps = Vec::new();
    let done = lpa::download(
        &mut es10,
        &ac,
        None,
        &roots(&server),
        &DeviceInfo::default(),
        &mut |s| steps.push(s.to_string()),
    )
    .unwrap();
    assert_eq!(done.iccid.as_deref(), Some("8949449999999990023"));
    assert!(
        steps.iter().any(|s| s.contains("HandleNotification")),
        "{steps:?}"
    );

    let profiles = es10.profiles().unwrap();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].state, "disabled");
    // Nothing enabled yet: no USIM on the card.
    let mut t = es10.close();
    let r = t
        .transmit(&hex::decode("00A4040C0CA0000000871002FF49FF0589").unwrap())
        .unwrap();
    assert_eq!(split_sw(&r).1, 0x6A82);

    let mut es10 = Es10Client::open(t).unwrap();
    es10.enable("8949449999999990023").unwrap();
    assert_eq!(es10.profiles().unwrap()[0].state, "enabled");
    // The enable notification is queued for the SM-DP+ and goes out on request.
    let sent = lpa::process_notifications(&mut es10, &roots(&server), &mut |_| {}).unwrap();
    assert_eq!(sent, 1);
    let mut t = es10.close();
    t.reset().unwrap();
    authenticate_as_ts48_usim(&mut t);
    let iccid = ok(&mut t, "00 A4 08 0C 02 2FE2");
    assert!(iccid.is_empty());
    assert_eq!(
        hex::encode_upper(ok(&mut t, "00 B0 00 00 0A")),
        "989444999999990920F3"
    );

    let mut es10 = Es10Client::open(t).unwrap();
    assert!(
        es10.delete("8949449999999990023").is_err(),
        "an enabled profile cannot be deleted"
    );
    es10.disable("8949449999999990023").unwrap();
    es10.delete("8949449999999990023").unwrap();
    assert!(es10.profiles().unwrap().is_empty());
    assert_eq!(
        lpa::process_notifications(&mut es10, &roots(&server), &mut |_| {}).unwrap(),
        2
    );
    server.stop();
}

#[test]
fn a_personalised_order_needs_its_confirmation_code() {
    let server = smdp();
    let (order, code) = server
        .smdp()
        .order_activation_code(
            "TS48V2-SAIP2-1-BERTLV-UNIQUE",
            Some("89049032123451234512345678901235"),
            Some("4711"),
        )
        .unwrap();
    let mut ac: ActivationCode = code.parse().unwrap();
    ac.confirmation_code_required = true;
    let mut es10 = Es10Client::open(euicc()).unwrap();
    let none = lpa::download(
        &mut es10,
        &ac,
        None,
        &roots(&server),
        &DeviceInfo::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        none.to_string().contains("requires a confirmation code"),
        "{none}"
    );
    let wrong = lpa::download(
        &mut es10,
        &ac,
        Some("1234"),
        &roots(&server),
        &DeviceInfo::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        wrong.to_string().contains("8.2.7"),
        "SGP.22 confirmation code refused: {wrong}"
    );
    assert!(
        es10.profiles().unwrap().is_empty(),
        "nothing installed after a wrong code"
    );
    let done = lpa::download(
        &mut es10,
        &ac,
        Some("4711"),
        &roots(&server),
        &DeviceInfo::default(),
        &mut |_| {},
    )
    .unwrap();
    // A personalised order carries a fresh ICCID, not the template's.
    assert_eq!(done.iccid.as_deref(), Some(order.iccid.as_str()));
    assert_ne!(order.iccid, "8949449999999990049");
    assert_eq!(es10.profiles().unwrap().len(), 1);
    server.stop();
}

#[test]
fn an_unknown_matching_id_is_refused_and_the_session_cancelled() {
    let server = smdp();
    let ac: ActivationCode = format!("LPA:1${}$NO-SUCH-ORDER", server.address)
        .parse()
        .unwrap();
    let mut es10 = Es10Client::open(euicc()).unwrap();
    let mut steps = Vec::new();
    let err = lpa::download(
        &mut es10,
        &ac,
        None,
        &roots(&server),
        &DeviceInfo::default(),
        &mut |s| steps.push(s.to_string()),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("subject code 8.2.6, reason code 3.8"),
        "{err}"
    );
    assert!(
        steps.iter().any(|s| s.contains("CancelSession")),
        "{steps:?}"
    );
    assert!(es10.profiles().unwrap().is_empty());
    server.stop();
}

/// Every GSMA TS.48 template, downloaded by its file stem through the LPA over HTTPS into a
/// fresh eUICC, enabled, and read back: EF.ICCID after the REFRESH is the package's ICCID.
#[test]
fn every_ts48_template_downloads_enables_and_reads_back() {
    let server = smdp();
    let mut stems: Vec<String> = std::fs::read_dir(root().join("vectors/profiles"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "der"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    assert_eq!(stems.len(), 36, "the 36 TS.48 packages");
    for stem in &stems {
        let der =
            std::fs::read(root().join("vectors/profiles").join(format!("{stem}.der"))).unwrap();
        let iccid = simlab_emulator::saip::decode(&der).unwrap().header.iccid;
        let ac: ActivationCode = format!("LPA:1${}${stem}", server.address).parse().unwrap();
        let mut es10 = Es10Client::open(euicc()).unwrap();
        let done = lpa::download(
            &mut es10,
            &ac,
            None,
            &roots(&server),
            &DeviceInfo::default(),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(done.iccid.as_deref(), Some(iccid.as_str()), "{stem}");
        es10.enable(&iccid)
            .unwrap_or_else(|e| panic!("{stem}: enable: {e}"));
        let mut t = es10.close();
        t.reset().unwrap();
        ok(&mut t, "00 A4 08 0C 02 2FE2");
        let ef = ok(&mut t, "00 B0 00 00 0A");
        assert_eq!(
            simlab_emulator::saip::decode_iccid_ef(&ef).unwrap(),
            iccid,
            "{stem}: EF.ICCID"
        );
    }
    server.stop();
}
