#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The card-side negative cases of the download: each asserts the exact SGP.22 v2.5 error and
//! that nothing was installed.

mod euicc_support;

use euicc_support::*;
use simlab_emulator::rsp::download::{build_initialise_secure_channel, hash_cc};
use simlab_emulator::rsp::es10::*;
use simlab_emulator::rsp::{derive_session_keys, OneTimeKeyPair};

fn order() -> Order {
    Order::of(ts48("TS48V1-A-UNIQUE"))
}

fn nothing_installed(lpa: &mut Lpa<'_>) {
    assert!(lpa.profiles().is_empty(), "a profile was installed");
}

fn auth_error(resp: &AuthenticateServerResponse) -> AuthenticateErrorCode {
    match resp {
        AuthenticateServerResponse::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn flip(bytes: &mut [u8], at: usize) {
    bytes[at] ^= 0x01;
}

#[test]
fn a_server_certificate_of_an_unknown_ci_is_refused() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    // The CI the SM-DP+ names is not one the eUICC trusts.
    let mut req = smdp.initiate(lpa.challenge(), "x");
    req.euicc_ci_pkid_to_be_used = vec![0x26, 0x90, 0x0D, 0x42];
    let resp: AuthenticateServerResponse = lpa.call(&req);
    assert_eq!(auth_error(&resp), AuthenticateErrorCode::CiPkUnknown);
    // A DPauth certificate from another CI (brainpool set) under our CI's PKID.
    let mut req = smdp.initiate(lpa.challenge(), "x");
    req.server_certificate = pki("DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der");
    let resp: AuthenticateServerResponse = lpa.call(&req);
    assert_eq!(auth_error(&resp), AuthenticateErrorCode::InvalidCertificate);
    // A DPpb certificate where DPauth belongs: wrong role.
    let mut req = smdp.initiate(lpa.challenge(), "x");
    req.server_certificate = pki("DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der");
    let resp: AuthenticateServerResponse = lpa.call(&req);
    assert_eq!(auth_error(&resp), AuthenticateErrorCode::InvalidOid);
    nothing_installed(&mut lpa);
}

#[test]
fn a_tampered_server_signature1_is_refused() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let mut req = smdp.initiate(lpa.challenge(), "x");
    flip(&mut req.server_signature1, 10);
    let resp: AuthenticateServerResponse = lpa.call(&req);
    assert_eq!(auth_error(&resp), AuthenticateErrorCode::InvalidSignature);
    // The signature covers the received bytes: a changed server address breaks it too.
    let mut req = smdp.initiate(lpa.challenge(), "x");
    let mut signed = req.server_signed1.value.clone();
    signed.server_address = "evil.example".into();
    req.server_signed1 = Encoded::new(signed);
    let resp: AuthenticateServerResponse = lpa.call(&req);
    assert_eq!(auth_error(&resp), AuthenticateErrorCode::InvalidSignature);
}

#[test]
fn a_wrong_euicc_challenge_is_refused_and_ends_the_session() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let mut challenge = lpa.challenge();
    challenge[0] ^= 0xFF;
    let req = smdp.initiate(challenge, "x");
    let resp: AuthenticateServerResponse = lpa.call(&req);
    assert_eq!(
        auth_error(&resp),
        AuthenticateErrorCode::EuiccChallengeMismatch
    );
    // No challenge any more: the same request now has no session.
    let resp: AuthenticateServerResponse = lpa.call(&req);
    assert_eq!(auth_error(&resp), AuthenticateErrorCode::NoSessionContext);
}

#[test]
fn session_commands_out_of_order_get_the_spec_errors() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let o = order();
    // PrepareDownload without AuthenticateServer.
    let (prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
    let bpp = smdp.bound_package(&prep, &resp, &o).unwrap();
    let again: PrepareDownloadResponse = lpa.call(&prep);
    assert_eq!(
        again,
        PrepareDownloadResponse::Error {
            transaction_id: smdp.transaction_id.clone(),
            code: DownloadErrorCode::NoSessionContext
        }
    );
    // The session ended: the package has no transaction to belong to.
    let pir = lpa.load_bpp(&bpp);
    assert_eq!(
        error_of(&pir),
        (
            BppCommandId::InitialiseSecureChannel,
            ErrorReason::InvalidTransactionId
        )
    );
    // A lone segment with no package being loaded is not taken.
    let (_, sw) = lpa.es10_sw(&bpp.load_profile_elements[0]);
    assert_eq!(sw, 0x6985);
    nothing_installed(&mut lpa);
}

#[test]
fn a_tampered_smdp_signature2_is_refused() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let auth: AuthenticateServerResponse = {
        let c = lpa.challenge();
        lpa.call(&smdp.initiate(c, "x"))
    };
    let mut prep = smdp.authenticate_client(&auth, false);
    flip(&mut prep.smdp_signature2, 3);
    let resp: PrepareDownloadResponse = lpa.call(&prep);
    assert!(matches!(
        resp,
        PrepareDownloadResponse::Error {
            code: DownloadErrorCode::InvalidSignature,
            ..
        }
    ));
    nothing_installed(&mut lpa);
}

#[test]
fn a_tampered_bf23_signature_fails_initialise_secure_channel() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let o = order();
    let (prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
    let mut bpp = smdp.bound_package(&prep, &resp, &o).unwrap();
    let n = bpp.initialise_secure_channel.len();
    flip(&mut bpp.initialise_secure_channel, n - 5);
    let pir = lpa.load_bpp(&bpp);
    assert_eq!(
        error_of(&pir),
        (
            BppCommandId::InitialiseSecureChannel,
            ErrorReason::InvalidSignature
        )
    );
    assert_eq!(pir.data.value.transaction_id, smdp.transaction_id);
    nothing_installed(&mut lpa);
    // The failed installation is kept as the install notification for the SM-DP+.
    let n = lpa.notifications();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].operation, NotificationEvent::Install);
}

#[test]
fn a_package_bound_to_another_eid_fails_its_first_mac() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let o = order();
    let (_prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
    let PrepareDownloadResponse::Ok { euicc_signed2, .. } = &resp else {
        panic!()
    };
    let otpk = euicc_signed2.value.euicc_otpk.clone();
    let smdp_ot = OneTimeKeyPair::generate(smdp.dp_pb.curve(), &mut smdp.rng).unwrap();
    let bf23 = build_initialise_secure_channel(
        &smdp.transaction_id,
        &smdp.host_id,
        &smdp_ot.public_key(),
        &otpk,
        &smdp.dp_pb,
    );
    let shs = smdp_ot.shared_secret(&otpk).unwrap();
    let other_eid: [u8; 16] = h("89049032123451234512345678901284").try_into().unwrap();
    let keys = derive_session_keys(shs.as_bytes(), 0x88, 0x10, &smdp.host_id, &other_eid).unwrap();
    let bpp = smdp.protect(bf23, &keys, &o);
    let pir = lpa.load_bpp(&bpp);
    assert_eq!(
        error_of(&pir),
        (
            BppCommandId::ConfigureIsdp,
            ErrorReason::Scp03tSecurityError
        )
    );
    nothing_installed(&mut lpa);
}

/// Builds a package, lets `tamper` change it, loads it; returns the error.
fn load_tampered(tamper: impl FnOnce(&mut BoundProfilePackage)) -> (BppCommandId, ErrorReason) {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let o = order();
    let (prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
    let mut bpp = smdp.bound_package(&prep, &resp, &o).unwrap();
    tamper(&mut bpp);
    let pir = lpa.load_bpp(&bpp);
    nothing_installed(&mut lpa);
    // And the session is over: the next segment is refused.
    let (_, sw) = lpa.es10_sw(&bpp.load_profile_elements[0]);
    assert_eq!(sw, 0x6985);
    error_of(&pir)
}

fn flip_mac(segment: &mut [u8]) {
    let n = segment.len();
    flip(segment, n - 1);
}

#[test]
fn one_flipped_mac_bit_in_any_segment_is_a_security_error() {
    assert_eq!(
        load_tampered(|b| flip_mac(&mut b.configure_isdp[0])),
        (
            BppCommandId::ConfigureIsdp,
            ErrorReason::Scp03tSecurityError
        )
    );
    assert_eq!(
        load_tampered(|b| flip_mac(&mut b.store_metadata[0])),
        (
            BppCommandId::StoreMetadata,
            ErrorReason::Scp03tSecurityError
        )
    );
    assert_eq!(
        load_tampered(|b| flip_mac(&mut b.replace_session_keys.as_mut().unwrap()[0])),
        (
            BppCommandId::ReplaceSessionKeys,
            ErrorReason::Scp03tSecurityError
        )
    );
    assert_eq!(
        load_tampered(|b| flip_mac(b.load_profile_elements.last_mut().unwrap())),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::Scp03tSecurityError
        )
    );
    assert_eq!(
        load_tampered(|b| flip(&mut b.load_profile_elements[1], 20)),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::Scp03tSecurityError
        )
    );
}

#[test]
fn segments_out_of_order_are_refused() {
    assert_eq!(
        load_tampered(|b| b.load_profile_elements.swap(0, 1)),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::Scp03tSecurityError
        )
    );
    // A segment left out: the next one's MAC chains from the wrong value.
    assert_eq!(
        load_tampered(|b| {
            b.load_profile_elements.remove(1);
        }),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::Scp03tSecurityError
        )
    );
    // Profile elements where the metadata must come: a structure error.
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let o = order();
    let (prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
    let bpp = smdp.bound_package(&prep, &resp, &o).unwrap();
    let cmds = bpp.lpa_commands();
    let a3_at = cmds.iter().position(|c| c[0] == 0xA3).unwrap();
    let reordered = [&cmds[..2], &cmds[a3_at..]].concat();
    let pir = lpa.load_commands(&reordered);
    assert_eq!(
        error_of(&pir),
        (
            BppCommandId::StoreMetadata,
            ErrorReason::Scp03tStructureError
        )
    );
    nothing_installed(&mut lpa);
}

#[test]
fn confirmation_code_missing_or_wrong_installs_nothing() {
    // Required but the LPA gave none: the eUICC refuses to prepare (undefinedError).
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let auth: AuthenticateServerResponse = {
        let c = lpa.challenge();
        lpa.call(&smdp.initiate(c, "x"))
    };
    let prep = smdp.authenticate_client(&auth, true);
    let resp: PrepareDownloadResponse = lpa.call(&prep);
    assert!(matches!(
        resp,
        PrepareDownloadResponse::Error {
            code: DownloadErrorCode::UndefinedError,
            ..
        }
    ));
    // A wrong code: the eUICC signs the hash it was given; the SM-DP+ refuses it.
    let mut o = order();
    o.confirmation_code = Some(b"1234".to_vec());
    let auth: AuthenticateServerResponse = {
        let c = lpa.challenge();
        lpa.call(&smdp.initiate(c, "x"))
    };
    let mut prep = smdp.authenticate_client(&auth, true);
    prep.hash_cc = Some(hash_cc(b"9999", &smdp.transaction_id));
    let resp: PrepareDownloadResponse = lpa.call(&prep);
    let PrepareDownloadResponse::Ok { euicc_signed2, .. } = &resp else {
        panic!("{resp:?}")
    };
    assert_eq!(euicc_signed2.value.hash_cc, prep.hash_cc);
    assert_eq!(
        smdp.bound_package(&prep, &resp, &o).unwrap_err(),
        "confirmationCodeRefused"
    );
    // The right code downloads.
    let pir = download(&mut lpa, &mut smdp, &o);
    assert!(matches!(checked_result(&pir), FinalResult::Success { .. }));
}

#[test]
fn cancel_session_mid_download_leaves_nothing() {
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let mut smdp = SmDp::new();
    let o = order();
    let (prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
    let bpp = smdp.bound_package(&prep, &resp, &o).unwrap();
    let cmds = bpp.lpa_commands();
    for c in &cmds[..5] {
        assert!(lpa.es10(c).is_empty());
    }
    let wrong: CancelSessionResponse = lpa.call(&CancelSessionRequest {
        transaction_id: vec![1, 2, 3],
        reason: CancelSessionReason::EndUserRejection,
    });
    assert_eq!(
        wrong,
        CancelSessionResponse::Error(CancelSessionError::InvalidTransactionId)
    );
    let ok: CancelSessionResponse = lpa.call(&CancelSessionRequest {
        transaction_id: smdp.transaction_id.clone(),
        reason: CancelSessionReason::EndUserRejection,
    });
    let CancelSessionResponse::Ok { signed, signature } = &ok else {
        panic!("{ok:?}")
    };
    smdp.euicc_key
        .as_ref()
        .unwrap()
        .verify(signed.raw(), signature)
        .unwrap();
    assert_eq!(signed.value.transaction_id, smdp.transaction_id);
    assert_eq!(signed.value.smdp_oid, vec![0x88, 0x37, 0x0A]);
    assert_eq!(signed.value.reason, CancelSessionReason::EndUserRejection);
    // The rest of the package has no session any more.
    let (_, sw) = lpa.es10_sw(&cmds[5]);
    assert_eq!(sw, 0x6985);
    nothing_installed(&mut lpa);
    assert!(lpa.notifications().is_empty());
}

#[test]
fn a_reset_mid_download_interrupts_it_and_leaves_nothing_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let o = order();
    let mut smdp = SmDp::new();
    let cmds = {
        let mut card = stored_card(dir.path());
        let mut lpa = Lpa::new(&mut card);
        let (prep, resp) = authenticate_and_prepare(&mut lpa, &mut smdp, &o);
        let cmds = smdp.bound_package(&prep, &resp, &o).unwrap().lpa_commands();
        for c in &cmds[..cmds.len() - 1] {
            assert!(lpa.es10(c).is_empty());
        }
        drop(lpa);
        card.reset();
        let mut lpa = Lpa::new(&mut card);
        let (_, sw) = lpa.es10_sw(cmds.last().unwrap());
        assert_eq!(sw, 0x6985);
        nothing_installed(&mut lpa);
        cmds
    };
    // A fresh process on the same store: no half profile either.
    let mut card = stored_card(dir.path());
    let mut lpa = Lpa::new(&mut card);
    nothing_installed(&mut lpa);
    assert!(!cmds.is_empty());
}

#[test]
fn tuak_profiles_fail_with_a_pe_processing_error() {
    // akaParameter algorithmID 1/2/3 lives in `80 01 0x` inside algoConfiguration; turn the
    // USIM test algorithm (3) into TUAK (2) in the package.
    let mut o = order();
    let pkg = simlab_emulator::saip::decode(&o.upp).unwrap();
    let aka = pkg.aka.first().unwrap();
    let at = o
        .upp
        .windows(aka.raw.len())
        .position(|w| w == aka.raw.as_slice())
        .unwrap();
    let inner = aka
        .raw
        .windows(3)
        .position(|w| w == [0x80, 0x01, 0x03])
        .unwrap();
    o.upp[at + inner + 2] = 0x02;
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let pir = download(&mut lpa, &mut SmDp::new(), &o);
    assert_eq!(
        error_of(&pir),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::InstallFailedDueToPeProcessingError
        )
    );
    nothing_installed(&mut lpa);
}

#[test]
fn metadata_naming_another_iccid_than_the_package_is_a_mismatch() {
    let mut o = order();
    o.metadata.iccid = Iccid::from_digits("8949449999999990031").unwrap();
    let mut card = card();
    let mut lpa = Lpa::new(&mut card);
    let pir = download(&mut lpa, &mut SmDp::new(), &o);
    assert_eq!(
        error_of(&pir),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::InstallFailedDueToIccidMismatch
        )
    );
    nothing_installed(&mut lpa);
}
