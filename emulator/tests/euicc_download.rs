#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End to end, in process: the eUICC of vectors/cards/euicc.toml driven only through APDUs
//! by an LPA, with the SM-DP+ played by test code (test PKI of vectors/pki). Every TS.48
//! package is downloaded, installed, enabled, authenticated with, disabled and deleted.

mod euicc_support;

use euicc_support::*;
use simlab_emulator::aka::{sqn_to_bytes, AkaAlgorithm};
use simlab_emulator::rsp::es10::*;
use simlab_emulator::rsp::VerifyingKey;
use simlab_emulator::Uicc;

const USIM_AID: &str = "A0000000871002FF49FF0589";

fn sw(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

/// Reads EF.ICCID on the basic channel.
fn read_iccid(card: &mut Uicc) -> Option<Vec<u8>> {
    let r = card.transmit(&h("00A4000C02 2FE2"));
    if sw(&r) != 0x9000 {
        return None;
    }
    let r = card.transmit(&h("00B000000A"));
    assert_eq!(sw(&r), 0x9000);
    Some(r[..10].to_vec())
}

/// Status word given when the answer is a synchronisation failure ('DC' … with 9000).
const SYNC_FAILURE: u16 = 0xDC00;

/// Selects the USIM and runs a 3G AUTHENTICATE with a vector made for `k` (XOR algorithm);
/// returns the status word (or [`SYNC_FAILURE`]) and checks RES, CK, IK on success.
fn authenticate(card: &mut Uicc, k: [u8; 16], sqn: u64) -> u16 {
    let mut select = h("00A4040C0C");
    select.extend(h(USIM_AID));
    let r = card.transmit(&select);
    if sw(&r) != 0x9000 {
        return sw(&r);
    }
    let alg = AkaAlgorithm::XorTest { k };
    let rand = [0x23u8; 16];
    let amf = [0x80, 0x00];
    let sqn = sqn_to_bytes(sqn);
    let v = alg.f2345(&rand);
    let mac = alg.f1(&rand, &sqn, &amf);
    let mut autn: Vec<u8> = sqn.iter().zip(v.ak.iter()).map(|(a, b)| a ^ b).collect();
    autn.extend(amf);
    autn.extend(mac);
    let mut cmd = h("0088008122 10");
    cmd.extend(rand);
    cmd.push(0x10);
    cmd.extend(&autn);
    cmd.push(0x00);
    let mut r = card.transmit(&cmd);
    if sw(&r) >> 8 == 0x61 {
        r = card.transmit(&[0x00, 0xC0, 0, 0, r[r.len() - 1]]);
    }
    if sw(&r) == 0x9000 && r[0] == 0xDC {
        return SYNC_FAILURE;
    }
    if sw(&r) == 0x9000 {
        assert_eq!(r[0], 0xDB, "successful 3G authentication");
        let n = usize::from(r[1]);
        assert_eq!(&r[2..2 + n], &v.res[..], "RES");
        assert_eq!(&r[3 + n..3 + n + 16], &v.ck, "CK");
    }
    sw(&r)
}

fn k() -> [u8; 16] {
    h(K).try_into().unwrap()
}

#[test]
fn every_ts48_package_downloads_installs_enables_authenticates_and_goes_away() {
    let packages = ts48_packages();
    assert_eq!(
        packages.len(),
        36,
        "vectors/profiles ships 36 TS.48 packages"
    );
    // Packages with the same ICCID cannot live together: one card per package.
    for (name, upp) in packages {
        let mut card = card();
        let order = Order::of(upp);
        let mut smdp = SmDp::new();
        let pir = {
            let mut lpa = Lpa::new(&mut card);
            download(&mut lpa, &mut smdp, &order)
        };
        let FinalResult::Success { isdp_aid, .. } = checked_result(&pir) else {
            panic!("{name}: {:?}", pir.data.value.final_result);
        };
        assert_eq!(
            pir.data.value.notification_metadata.iccid,
            Some(order.iccid),
            "{name}"
        );
        let mut lpa = Lpa::new(&mut card);
        let infos = lpa.profiles();
        assert_eq!(infos.len(), 1, "{name}");
        assert_eq!(infos[0].iccid, Some(order.iccid));
        assert_eq!(infos[0].isdp_aid.as_deref(), Some(&isdp_aid[..]));
        assert_eq!(infos[0].state, Some(ProfileState::Disabled));
        assert_eq!(lpa.enable(order.iccid), EnableProfileResult::Ok, "{name}");
        drop(lpa);
        // Before the reset the old content (no USIM) is still the card's.
        assert_eq!(
            authenticate(&mut card, k(), 32),
            0x6A82,
            "{name}: USIM before refresh"
        );
        card.reset();
        assert_eq!(
            read_iccid(&mut card),
            Some(order.iccid.0.to_vec()),
            "{name}: EF.ICCID"
        );
        assert_eq!(
            authenticate(&mut card, k(), 32),
            0x9000,
            "{name}: AUTHENTICATE"
        );
        let mut lpa = Lpa::new(&mut card);
        assert_eq!(
            lpa.delete(order.iccid),
            DeleteProfileResult::ProfileNotInDisabledState
        );
        assert_eq!(lpa.disable(order.iccid), DisableProfileResult::Ok);
        assert_eq!(lpa.delete(order.iccid), DeleteProfileResult::Ok);
        assert!(lpa.profiles().is_empty());
        drop(lpa);
        card.reset();
        assert_eq!(
            authenticate(&mut card, k(), 64),
            0x6A82,
            "{name}: no USIM after delete"
        );
        assert_eq!(read_iccid(&mut card), None);
    }
}

#[test]
fn two_profiles_switch_with_at_most_one_enabled() {
    let mut card = card();
    let a = Order::of(ts48("TS48V1-A-UNIQUE"));
    let b = Order::of(ts48("TS48V2-SAIP2-3-BERTLV-UNIQUE"));
    let mut lpa = Lpa::new(&mut card);
    for o in [&a, &b] {
        let pir = download(&mut lpa, &mut SmDp::new(), o);
        assert!(matches!(checked_result(&pir), FinalResult::Success { .. }));
    }
    assert_eq!(lpa.enable(a.iccid), EnableProfileResult::Ok);
    assert_eq!(
        lpa.enable(a.iccid),
        EnableProfileResult::ProfileNotInDisabledState
    );
    assert_eq!(lpa.enable(b.iccid), EnableProfileResult::Ok);
    let states: Vec<_> = lpa
        .profiles()
        .iter()
        .map(|p| (p.iccid.unwrap(), p.state.unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            (a.iccid, ProfileState::Disabled),
            (b.iccid, ProfileState::Enabled)
        ]
    );
    drop(lpa);
    card.reset();
    assert_eq!(read_iccid(&mut card), Some(b.iccid.0.to_vec()));
}

#[test]
fn installing_the_same_iccid_twice_fails_in_store_metadata() {
    let mut card = card();
    let o = Order::of(ts48("TS48V1-A-UNIQUE"));
    let mut lpa = Lpa::new(&mut card);
    download(&mut lpa, &mut SmDp::new(), &o);
    let pir = download(&mut lpa, &mut SmDp::new(), &o);
    assert_eq!(
        error_of(&pir),
        (
            BppCommandId::StoreMetadata,
            ErrorReason::InstallFailedDueToIccidAlreadyExistsOnEuicc
        )
    );
    assert_eq!(lpa.profiles().len(), 1);
}

#[test]
fn the_whole_bpp_in_one_es10_command_installs_too() {
    let mut card = card();
    let o = Order::of(ts48("TS48V3-SAIP2-1-BERTLV-UNIQUE"));
    let mut smdp = SmDp::new();
    let mut lpa = Lpa::new(&mut card);
    let (prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
    let bpp = smdp.bound_package(&prep, &resp, &o).unwrap();
    let pir = lpa.load_commands(&[bpp.to_der()]);
    assert!(matches!(checked_result(&pir), FinalResult::Success { .. }));
    assert_eq!(lpa.profiles().len(), 1);
}

#[test]
fn notifications_are_signed_listed_retrieved_and_removed() {
    let mut card = card();
    let o = Order::of(ts48("TS48V1-B-UNIQUE"));
    let mut lpa = Lpa::new(&mut card);
    let pir = download(&mut lpa, &mut SmDp::new(), &o);
    assert_eq!(lpa.enable(o.iccid), EnableProfileResult::Ok);
    assert_eq!(lpa.disable(o.iccid), DisableProfileResult::Ok);
    assert_eq!(lpa.delete(o.iccid), DeleteProfileResult::Ok);
    let list = lpa.notifications();
    let events: Vec<_> = list.iter().map(|m| (m.seq_number, m.operation)).collect();
    assert_eq!(
        events,
        [
            (1, NotificationEvent::Install),
            (2, NotificationEvent::Enable),
            (3, NotificationEvent::Disable),
            (4, NotificationEvent::Delete)
        ]
    );
    assert!(list
        .iter()
        .all(|m| m.notification_address == SMDP_ADDRESS && m.iccid == Some(o.iccid)));

    let all: RetrieveNotificationsListResponse =
        lpa.call(&RetrieveNotificationsListRequest::default());
    let RetrieveNotificationsListResponse::Ok(all) = all else {
        panic!("{all:?}")
    };
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], PendingNotification::ProfileInstallationResult(pir));
    let euicc_key =
        VerifyingKey::from_certificate_der(&pki("eUICC/CERT_EUICC_ECDSA_NIST.der")).unwrap();
    for n in &all[1..] {
        let PendingNotification::Other(o) = n else {
            panic!("{n:?}")
        };
        euicc_key.verify(o.tbs.raw(), &o.signature).unwrap();
        assert_eq!(o.euicc_certificate, pki("eUICC/CERT_EUICC_ECDSA_NIST.der"));
        assert_eq!(o.eum_certificate, pki("EUM/CERT_EUM_ECDSA_NIST.der"));
    }

    let one: RetrieveNotificationsListResponse = lpa.call(&RetrieveNotificationsListRequest {
        search: Some(NotificationSearch::SeqNumber(3)),
    });
    let RetrieveNotificationsListResponse::Ok(one) = one else {
        panic!()
    };
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].metadata().operation, NotificationEvent::Disable);

    // The field encoding trap (BF2B 80 …) gets an error answer, not a crash.
    let trap = RetrieveNotificationsListResponse::from_der(&lpa.es10(&h("BF2B03800103"))).unwrap();
    assert!(matches!(trap, RetrieveNotificationsListResponse::Error(_)));

    let removed: NotificationSentResponse = lpa.call(&NotificationSentRequest { seq_number: 1 });
    assert_eq!(removed.result, NotificationSentResult::Ok);
    let again: NotificationSentResponse = lpa.call(&NotificationSentRequest { seq_number: 1 });
    assert_eq!(again.result, NotificationSentResult::NothingToDelete);
    assert_eq!(lpa.notifications().len(), 3);
    let none: RetrieveNotificationsListResponse = lpa.call(&RetrieveNotificationsListRequest {
        search: Some(NotificationSearch::SeqNumber(1)),
    });
    assert_eq!(
        none,
        RetrieveNotificationsListResponse::Error(RetrieveNotificationsListError::NoResultAvailable)
    );
}

#[test]
fn profile_policy_rules_are_enforced() {
    let mut card = card();
    let mut o = Order::of(ts48("TS48V1-A-UNIQUE"));
    o.metadata.ppr = Some(PprIds {
        ppr1: true,
        ppr2: true,
        ..Default::default()
    });
    let mut other = Order::of(ts48("TS48V2-SAIP2-1-BERTLV-UNIQUE"));
    other.metadata.ppr = Some(PprIds {
        ppr3: true,
        ..Default::default()
    });
    let mut lpa = Lpa::new(&mut card);
    assert!(matches!(
        checked_result(&download(&mut lpa, &mut SmDp::new(), &o)),
        FinalResult::Success { .. }
    ));
    // PPR3 is not in the default RAT: refused at StoreMetadata.
    assert_eq!(
        error_of(&download(&mut lpa, &mut SmDp::new(), &other)),
        (BppCommandId::StoreMetadata, ErrorReason::PprNotAllowed)
    );
    assert_eq!(lpa.delete(o.iccid), DeleteProfileResult::DisallowedByPolicy);
    assert_eq!(lpa.enable(o.iccid), EnableProfileResult::Ok);
    assert_eq!(
        lpa.disable(o.iccid),
        DisableProfileResult::DisallowedByPolicy
    );
    let info = lpa.profiles();
    assert_eq!(
        info[0].ppr,
        Some(PprIds {
            ppr1: true,
            ppr2: true,
            ..Default::default()
        })
    );
}

#[test]
fn es10c_info_nickname_eid_addresses_and_memory_reset() {
    let mut card = card();
    let o = Order::of(ts48("TS48V1-A-UNIQUE"));
    let mut lpa = Lpa::new(&mut card);
    download(&mut lpa, &mut SmDp::new(), &o);
    let eid: GetEuiccDataResponse = lpa.call(&GetEuiccDataRequest::default());
    assert_eq!(hex::encode_upper(eid.eid), EID);
    let nick: SetNicknameResponse = lpa.call(&SetNicknameRequest {
        iccid: o.iccid,
        nickname: "work".into(),
    });
    assert_eq!(nick.result, SetNicknameResult::Ok);
    let unknown: SetNicknameResponse = lpa.call(&SetNicknameRequest {
        iccid: Iccid([0x98; 10]),
        nickname: "x".into(),
    });
    assert_eq!(unknown.result, SetNicknameResult::IccidNotFound);
    // A tag list selects the fields; a search criterion the profiles.
    let r: ProfileInfoListResponse = lpa.call(&ProfileInfoListRequest {
        search: Some(ProfileSearch::Iccid(o.iccid)),
        tag_list: Some(h("5A 90 9F70")),
    });
    assert_eq!(
        r,
        ProfileInfoListResponse::Ok(vec![ProfileInfo {
            iccid: Some(o.iccid),
            state: Some(ProfileState::Disabled),
            nickname: Some("work".into()),
            ..Default::default()
        }])
    );
    let none: ProfileInfoListResponse = lpa.call(&ProfileInfoListRequest {
        search: Some(ProfileSearch::ProfileClass(ProfileClass::Test)),
        tag_list: None,
    });
    assert_eq!(none, ProfileInfoListResponse::Ok(vec![]));
    let addr: EuiccConfiguredAddressesResponse = lpa.call(&EuiccConfiguredAddressesRequest);
    assert_eq!(addr.default_dp_address.as_deref(), Some(SMDP_ADDRESS));
    let set: SetDefaultDpAddressResponse = lpa.call(&SetDefaultDpAddressRequest {
        address: "other.example".into(),
    });
    assert_eq!(set.result, SetDefaultDpAddressResult::Ok);
    let addr: EuiccConfiguredAddressesResponse = lpa.call(&EuiccConfiguredAddressesRequest);
    assert_eq!(addr.default_dp_address.as_deref(), Some("other.example"));
    let reset: EuiccMemoryResetResponse = lpa.call(&EuiccMemoryResetRequest {
        delete_operational_profiles: true,
        delete_field_loaded_test_profiles: true,
        reset_default_smdp_address: true,
    });
    assert_eq!(reset.result, EuiccMemoryResetResult::Ok);
    assert!(lpa.profiles().is_empty());
    let addr: EuiccConfiguredAddressesResponse = lpa.call(&EuiccConfiguredAddressesRequest);
    assert_eq!(addr.default_dp_address.as_deref(), Some(SMDP_ADDRESS));
    let again: EuiccMemoryResetResponse = lpa.call(&EuiccMemoryResetRequest::default());
    assert_eq!(again.result, EuiccMemoryResetResult::NothingToDelete);
}

#[test]
fn euicc_info_names_the_ci_of_the_test_pki() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let info1 = lpa.info1();
    let ski = h("5C8F0655528F281818D00DE739B14DCAC7D6DAEE");
    assert_eq!(info1.ci_pkid_verification, std::slice::from_ref(&ski));
    assert_eq!(info1.ci_pkid_signing, std::slice::from_ref(&ski));
    let info2: EuiccInfo2 = lpa.call(&GetEuiccInfo2Request);
    assert_eq!(info2.svn, [2, 5, 0]);
    assert_eq!(info2.ci_pkid_verification, [ski]);
    let rat: GetRatResponse = lpa.call(&GetRatRequest);
    assert_eq!(rat.rat.len(), 1);
    // LoadCRL: a CRL nobody we trust signed.
    let crl: LoadCrlResponse = lpa.call(&LoadCrlRequest {
        crl: h("3003020101 300A06082A8648CE3D040302 030100"),
    });
    assert!(matches!(crl, LoadCrlResponse::Error(_)));
}

#[test]
fn state_survives_a_restart_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let o = Order::of(ts48("TS48V1-A-UNIQUE"));
    {
        let mut card = stored_card(dir.path());
        let mut lpa = Lpa::new(&mut card);
        download(&mut lpa, &mut SmDp::new(), &o);
        assert_eq!(lpa.enable(o.iccid), EnableProfileResult::Ok);
    }
    let mut card = stored_card(dir.path());
    assert_eq!(read_iccid(&mut card), Some(o.iccid.0.to_vec()));
    assert_eq!(authenticate(&mut card, k(), 32), 0x9000);
    drop(card);
    // The SQN accepted above was saved: replaying the vector is a sync failure now.
    let mut card = stored_card(dir.path());
    assert_eq!(
        authenticate(&mut card, k(), 32),
        SYNC_FAILURE,
        "replayed SQN"
    );
}

#[test]
fn euicc_definitions_are_checked() {
    use simlab_emulator::CardDefinition;
    let text = std::fs::read_to_string(root().join("vectors/cards/euicc.toml")).unwrap();
    let build = |t: &str| {
        let mut d = CardDefinition::from_toml(t)?;
        d.base_dir = Some(root().join("vectors/cards"));
        d.build().map(|_| ())
    };
    build(&text).unwrap();
    let bad_eid = text.replace(
        "89049032123451234512345678901235",
        "89049032123451234512345678901234",
    );
    assert!(build(&bad_eid)
        .unwrap_err()
        .to_string()
        .contains("MOD 97-10"));
    let other_key = text.replace("eUICC/SK_EUICC_ECDSA_NIST.pem", "EUM/SK_EUM_ECDSA_NIST.pem");
    assert!(build(&other_key)
        .unwrap_err()
        .to_string()
        .contains("does not match"));
    let missing = text.replace("CERT_EUM_ECDSA_NIST.der", "nope.der");
    assert!(build(&missing)
        .unwrap_err()
        .to_string()
        .contains("euicc.eum_certificate"));
    let with_usim = format!("{text}\n[usim]\nimsi = \"001010123456063\"\n[usim.aka]\nalgorithm = \"xor\"\nk = \"{K}\"\n");
    assert!(build(&with_usim).unwrap_err().to_string().contains("usim"));
}
