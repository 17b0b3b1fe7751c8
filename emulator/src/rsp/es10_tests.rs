//! Vectors (hex from the ASN.1 of SGP.22 v2.5 and from what real LPAs send, see
//! `docs/clients.md`) and round-trip properties of every ES10 message.

use super::*;
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn iccid() -> Iccid {
    Iccid::from_digits("8949449999999990023").unwrap()
}

/// Checks both directions: the hex decodes to `value` and `value` encodes to the hex.
fn vector<T: Der + PartialEq + std::fmt::Debug>(hex_text: &str, value: T) {
    let bytes = h(hex_text);
    assert_eq!(T::from_der(&bytes).unwrap(), value, "decode {hex_text}");
    assert_eq!(
        hex::encode_upper(value.to_der()),
        hex::encode_upper(&bytes),
        "encode"
    );
}

#[test]
fn iccid_digits_are_nibble_swapped() {
    assert_eq!(hex::encode_upper(iccid().0), "989444999999990920F3");
    assert_eq!(iccid().digits(), "8949449999999990023");
}

#[test]
fn get_eid_request_is_what_pysim_sends() {
    vector("BF3E 03 5C01 5A", GetEuiccDataRequest::default());
    let eid = h("89049032123451234512345678901235");
    vector(
        "BF3E 12 5A10 89049032123451234512345678901235",
        GetEuiccDataResponse {
            eid: eid.try_into().unwrap(),
        },
    );
}

#[test]
fn empty_requests_are_tag_and_zero_length() {
    vector("BF20 00", GetEuiccInfo1Request);
    vector("BF22 00", GetEuiccInfo2Request);
    vector("BF2E 00", GetEuiccChallengeRequest);
    vector("BF3C 00", EuiccConfiguredAddressesRequest);
    vector("BF43 00", GetRatRequest);
    vector("BF2D 00", ProfileInfoListRequest::default());
    vector("BF28 00", ListNotificationRequest::default());
    vector("BF2B 00", RetrieveNotificationsListRequest::default());
}

#[test]
fn euicc_info1_lists_ci_pkids() {
    let ski = h("5C8F0655528F281818D00DE739B14DCAC7D6DAEE");
    vector(
        "BF20 35 8203 020500 A916 0414 5C8F0655528F281818D00DE739B14DCAC7D6DAEE \
         AA16 0414 5C8F0655528F281818D00DE739B14DCAC7D6DAEE",
        EuiccInfo1 {
            svn: [2, 5, 0],
            ci_pkid_verification: vec![ski.clone()],
            ci_pkid_signing: vec![ski],
        },
    );
}

#[test]
fn euicc_info2_keeps_pp_version_and_sas_as_universal_tags() {
    vector(
        "BF22 31 8103 020300 8203 020500 8303 010000 8403 010203 8503 067F36 8803 0578 00 \
         A900 AA00 99 01 00 0403 010000 0C05 5341533030",
        EuiccInfo2 {
            profile_version: [2, 3, 0],
            svn: [2, 5, 0],
            firmware_version: [1, 0, 0],
            ext_card_resource: vec![1, 2, 3],
            uicc_capability: vec![0x06, 0x7F, 0x36],
            javacard_version: None,
            globalplatform_version: None,
            rsp_capability: vec![0x05, 0x78, 0x00],
            ci_pkid_verification: vec![],
            ci_pkid_signing: vec![],
            euicc_category: None,
            forbidden_ppr: Some(PprIds::default()),
            pp_version: [1, 0, 0],
            sas_accreditation_number: "SAS00".into(),
            extra: vec![],
        },
    );
}

#[test]
fn challenge_response_carries_16_bytes_in_80() {
    vector(
        "BF2E 12 8010 000102030405060708090A0B0C0D0E0F",
        GetEuiccChallengeResponse {
            challenge: core::array::from_fn(|i| i as u8),
        },
    );
}

#[test]
fn enable_request_wraps_the_identifier_in_a0() {
    vector(
        "BF31 11 A00C 5A0A 989444999999990920F3 8101FF",
        EnableProfileRequest {
            id: ProfileIdentifier::Iccid(iccid()),
            refresh: true,
        },
    );
    vector(
        "BF32 0B A006 4F04 A0000005 810100",
        DisableProfileRequest {
            id: ProfileIdentifier::IsdpAid(h("A0000005")),
            refresh: false,
        },
    );
    vector(
        "BF31 03 800102",
        EnableProfileResponse {
            result: EnableProfileResult::ProfileNotInDisabledState,
        },
    );
    vector(
        "BF32 03 800103",
        DisableProfileResponse {
            result: DisableProfileResult::DisallowedByPolicy,
        },
    );
}

#[test]
fn delete_request_is_the_bare_choice() {
    vector(
        "BF33 0C 5A0A 989444999999990920F3",
        DeleteProfileRequest {
            id: ProfileIdentifier::Iccid(iccid()),
        },
    );
    vector(
        "BF33 03 800100",
        DeleteProfileResponse {
            result: DeleteProfileResult::Ok,
        },
    );
}

#[test]
fn memory_reset_options_are_a_named_bit_string() {
    vector(
        "BF34 04 8202 05A0",
        EuiccMemoryResetRequest {
            delete_operational_profiles: true,
            delete_field_loaded_test_profiles: false,
            reset_default_smdp_address: true,
        },
    );
    vector(
        "BF34 03 800101",
        EuiccMemoryResetResponse {
            result: EuiccMemoryResetResult::NothingToDelete,
        },
    );
}

#[test]
fn nickname_and_default_dp_address() {
    vector(
        "BF29 12 5A0A 989444999999990920F3 9004 776F726B",
        SetNicknameRequest {
            iccid: iccid(),
            nickname: "work".into(),
        },
    );
    vector(
        "BF29 03 800101",
        SetNicknameResponse {
            result: SetNicknameResult::IccidNotFound,
        },
    );
    vector(
        "BF3F 07 8005 612E6F7267",
        SetDefaultDpAddressRequest {
            address: "a.org".into(),
        },
    );
    vector(
        "BF3F 03 800100",
        SetDefaultDpAddressResponse {
            result: SetDefaultDpAddressResult::Ok,
        },
    );
    vector(
        "BF3C 0A 8003 612E62 8103 632E64",
        EuiccConfiguredAddressesResponse {
            default_dp_address: Some("a.b".into()),
            root_ds_address: "c.d".into(),
        },
    );
}

#[test]
fn profile_info_list_request_with_search_and_tag_list() {
    vector(
        "BF2D 13 A00C 5A0A 989444999999990920F3 5C03 5A9F70",
        ProfileInfoListRequest {
            search: Some(ProfileSearch::Iccid(iccid())),
            tag_list: Some(h("5A9F70")),
        },
    );
    vector(
        "BF2D 05 A003 950100",
        ProfileInfoListRequest {
            search: Some(ProfileSearch::ProfileClass(ProfileClass::Test)),
            tag_list: None,
        },
    );
}

#[test]
fn profile_info_list_response() {
    vector(
        "BF2D 17 A015 E313 5A0A 989444999999990920F3 9F7001 01 950102",
        ProfileInfoListResponse::Ok(vec![ProfileInfo {
            iccid: Some(iccid()),
            state: Some(ProfileState::Enabled),
            profile_class: Some(ProfileClass::Operational),
            ..Default::default()
        }]),
    );
    vector(
        "BF2D 03 810101",
        ProfileInfoListResponse::Error(ProfileInfoListError::IncorrectInputValues),
    );
}

#[test]
fn notification_metadata_and_list() {
    let meta = NotificationMetadata {
        seq_number: 1,
        operation: NotificationEvent::Install,
        notification_address: "a.b".into(),
        iccid: Some(iccid()),
    };
    vector(
        "BF2F 18 800101 81020780 0C03612E62 5A0A989444999999990920F3",
        meta.clone(),
    );
    vector(
        "BF28 1D A01B BF2F18 800101 81020780 0C03612E62 5A0A989444999999990920F3",
        ListNotificationResponse::Ok(vec![meta]),
    );
    vector(
        "BF28 04 81020520",
        ListNotificationRequest {
            operation: Some(NotificationEvents {
                disable: true,
                ..Default::default()
            }),
        },
    );
}

#[test]
fn retrieve_notifications_search_sits_inside_a0() {
    vector(
        "BF2B 05 A003 800107",
        RetrieveNotificationsListRequest {
            search: Some(NotificationSearch::SeqNumber(7)),
        },
    );
    // The field encoding trap: a bare `80` is not the spec form.
    assert!(matches!(
        RetrieveNotificationsListRequest::from_der(&h("BF2B03800107")),
        Err(Es10Error::UnexpectedTag {
            expected: 0xA0,
            found: 0x80,
            ..
        })
    ));
    vector(
        "BF2B 03 810101",
        RetrieveNotificationsListResponse::Error(RetrieveNotificationsListError::NoResultAvailable),
    );
}

#[test]
fn notification_sent_is_remove_notification_from_list() {
    vector("BF30 03 800105", NotificationSentRequest { seq_number: 5 });
    vector(
        "BF30 04 80020080",
        NotificationSentRequest { seq_number: 128 },
    );
    vector(
        "BF30 03 800101",
        NotificationSentResponse {
            result: NotificationSentResult::NothingToDelete,
        },
    );
}

#[test]
fn cancel_session_request_and_error() {
    vector(
        "BF41 0A 8005 0102030405 810101",
        CancelSessionRequest {
            transaction_id: h("0102030405"),
            reason: CancelSessionReason::Postponed,
        },
    );
    vector(
        "BF41 03 810105",
        CancelSessionResponse::Error(CancelSessionError::InvalidTransactionId),
    );
}

#[test]
fn rat_and_crl() {
    vector(
        "BF43 18 A016 3014 8002 0560 A10A 3008 8003 00F110 8101 FF 8202 0780",
        GetRatResponse {
            rat: vec![ProfilePolicyAuthorisationRule {
                ppr_ids: PprIds {
                    ppr1: true,
                    ppr2: true,
                    ..Default::default()
                },
                allowed_operators: vec![OperatorId {
                    mcc_mnc: h("00F110"),
                    gid1: Some(vec![0xFF]),
                    gid2: None,
                }],
                consent_required: true,
            }],
        },
    );
    vector("BF35 05 A003 300100", LoadCrlRequest { crl: h("300100") });
    vector(
        "BF35 03 810104",
        LoadCrlResponse::Error(LoadCrlError::VerificationKeyNotFound),
    );
    vector(
        "BF35 02 A000",
        LoadCrlResponse::Ok {
            missing_parts: None,
        },
    );
}

#[test]
fn authenticate_server_request_fields_by_position() {
    let signed = ServerSigned1 {
        transaction_id: h("01020304"),
        euicc_challenge: [0x11; 16],
        server_address: "a.b".into(),
        server_challenge: [0x22; 16],
    };
    let ctx = CtxParams1 {
        matching_id: Some("M".into()),
        device_info: DeviceInfo {
            tac: h("35290611"),
            device_capabilities: vec![],
            imei: None,
        },
    };
    let req = AuthenticateServerRequest {
        server_signed1: Encoded::new(signed),
        server_signature1: vec![0x33; 64],
        euicc_ci_pkid_to_be_used: vec![0x44; 20],
        server_certificate: h("3003020101"),
        ctx_params1: Encoded::new(ctx),
    };
    let der = req.to_der();
    // ctxParams1 as real LPAs send it: A0 { 80 matchingId, A1 { 80 tac, A1 00 } }.
    let tail = h("A00D 80014D A108 800435290611 A100");
    assert!(der.ends_with(&tail), "{}", hex::encode_upper(&der));
    assert_eq!(AuthenticateServerRequest::from_der(&der).unwrap(), req);
}

#[test]
fn signed_parts_keep_their_received_bytes() {
    // serverSigned1 with its fields in an unusual order still verifies over what came.
    let odd = h("302C 8310612E62 8004 01020304 8110 11111111111111111111111111111111 8410 22222222222222222222222222222222");
    let odd = {
        // fix the address length (3 bytes): built by hand to be sure of the bytes.
        let mut v = vec![0x30];
        let body = [
            h("8303612E62"),
            h("800401020304"),
            [vec![0x81, 0x10], vec![0x11; 16]].concat(),
            [vec![0x84, 0x10], vec![0x22; 16]].concat(),
        ]
        .concat();
        crate::tlv::push_length(&mut v, body.len());
        v.extend(body);
        let _ = odd;
        v
    };
    let e = Encoded::<ServerSigned1>::from_der(&odd).unwrap();
    assert_eq!(e.raw(), &odd[..]);
    assert_eq!(e.value.server_address, "a.b");
    assert_ne!(e.value.to_der(), odd);
}

#[test]
fn profile_installation_result_error_form() {
    let data = ProfileInstallationResultData {
        transaction_id: h("01"),
        notification_metadata: NotificationMetadata {
            seq_number: 2,
            operation: NotificationEvent::Install,
            notification_address: "a".into(),
            iccid: None,
        },
        smdp_oid: Some(h("883701")),
        final_result: FinalResult::Error {
            bpp_command_id: BppCommandId::LoadProfileElements,
            error_reason: ErrorReason::Scp03tSecurityError,
            sima_response: None,
        },
    };
    let pir = ProfileInstallationResult {
        data: Encoded::new(data),
        euicc_sign_pir: vec![0; 64],
    };
    let der = pir.to_der();
    assert!(
        hex::encode_upper(&der).contains("A208A106800105810108"),
        "{}",
        hex::encode_upper(&der)
    );
    assert_eq!(ProfileInstallationResult::from_der(&der).unwrap(), pir);
    assert_eq!(
        PendingNotification::from_der(&der).unwrap(),
        PendingNotification::ProfileInstallationResult(pir)
    );
}

#[test]
fn bound_profile_package_splits_into_the_commands_lpas_send() {
    let bpp = BoundProfilePackage {
        initialise_secure_channel: h("BF2300"),
        configure_isdp: vec![h("8701AA")],
        store_metadata: vec![h("8801BB"), h("8801CC")],
        replace_session_keys: Some(vec![h("8701DD")]),
        load_profile_elements: vec![h("8601EE"), h("8601FF")],
    };
    let cmds: Vec<String> = bpp.lpa_commands().iter().map(hex::encode_upper).collect();
    assert_eq!(
        cmds,
        [
            "BF361DBF2300",
            "A0038701AA",
            "A106",
            "8801BB",
            "8801CC",
            "A2038701DD",
            "A306",
            "8601EE",
            "8601FF"
        ]
    );
    assert_eq!(cmds.concat(), hex::encode_upper(bpp.to_der()));
    assert_eq!(BoundProfilePackage::from_der(&bpp.to_der()).unwrap(), bpp);
}

#[test]
fn uint_and_bits_encode_minimally() {
    assert_eq!(encode_uint(0), [0]);
    assert_eq!(encode_uint(127), [127]);
    assert_eq!(encode_uint(128), [0, 128]);
    assert_eq!(encode_uint(256), [1, 0]);
    assert_eq!(encode_bits(&[]), [0]);
    assert_eq!(encode_bits(&[true]), [7, 0x80]);
    assert_eq!(encode_bits(&[false, false, false, true, false]), [4, 0x10]);
}

// ---------------------------------------------------------------------------------------
// Properties

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}
fn nonempty(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..max)
}
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.\\-é]{0,20}"
}
fn arr<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|v| v.try_into().unwrap())
}
fn any_iccid() -> impl Strategy<Value = Iccid> {
    arr::<10>().prop_map(Iccid)
}
fn code() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..8, Just(127u64), any::<u64>()]
}
fn event() -> impl Strategy<Value = NotificationEvent> {
    prop::sample::select(NotificationEvent::ALL.to_vec())
}
fn events() -> impl Strategy<Value = NotificationEvents> {
    any::<[bool; 4]>().prop_map(|b| NotificationEvents {
        install: b[0],
        enable: b[1],
        disable: b[2],
        delete: b[3],
    })
}
fn ppr() -> impl Strategy<Value = PprIds> {
    any::<[bool; 4]>().prop_map(|b| PprIds {
        update_control: b[0],
        ppr1: b[1],
        ppr2: b[2],
        ppr3: b[3],
    })
}
fn operator() -> impl Strategy<Value = OperatorId> {
    (
        bytes(4),
        proptest::option::of(bytes(4)),
        proptest::option::of(bytes(4)),
    )
        .prop_map(|(mcc_mnc, gid1, gid2)| OperatorId {
            mcc_mnc,
            gid1,
            gid2,
        })
}
fn notif_conf() -> impl Strategy<Value = Vec<NotificationConfiguration>> {
    proptest::collection::vec(
        (events(), text())
            .prop_map(|(events, address)| NotificationConfiguration { events, address }),
        0..3,
    )
}
fn tx() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..=16)
}
fn metadata() -> impl Strategy<Value = NotificationMetadata> {
    (
        any::<u64>(),
        event(),
        text(),
        proptest::option::of(any_iccid()),
    )
        .prop_map(|(seq_number, operation, notification_address, iccid)| {
            NotificationMetadata {
                seq_number,
                operation,
                notification_address,
                iccid,
            }
        })
}
fn identifier() -> impl Strategy<Value = ProfileIdentifier> {
    prop_oneof![
        any_iccid().prop_map(ProfileIdentifier::Iccid),
        nonempty(17).prop_map(ProfileIdentifier::IsdpAid)
    ]
}
fn info2() -> impl Strategy<Value = EuiccInfo2> {
    (
        (
            arr::<3>(),
            arr::<3>(),
            arr::<3>(),
            bytes(8),
            bytes(5),
            proptest::option::of(arr::<3>()),
            proptest::option::of(arr::<3>()),
        ),
        (
            bytes(3),
            proptest::collection::vec(bytes(21), 0..3),
            proptest::collection::vec(bytes(21), 0..3),
            proptest::option::of(any::<u64>()),
            proptest::option::of(ppr()),
            arr::<3>(),
            text(),
        ),
    )
        .prop_map(
            |((pv, svn, fw, ecr, uc, jc, gp), (rc, civ, cis, cat, fppr, ppv, sas))| EuiccInfo2 {
                profile_version: pv,
                svn,
                firmware_version: fw,
                ext_card_resource: ecr,
                uicc_capability: uc,
                javacard_version: jc,
                globalplatform_version: gp,
                rsp_capability: rc,
                ci_pkid_verification: civ,
                ci_pkid_signing: cis,
                euicc_category: cat,
                forbidden_ppr: fppr,
                pp_version: ppv,
                sas_accreditation_number: sas,
                extra: vec![],
            },
        )
}
fn ctx_params() -> impl Strategy<Value = CtxParams1> {
    (
        proptest::option::of(text()),
        bytes(8),
        bytes(10),
        proptest::option::of(bytes(8)),
    )
        .prop_map(|(m, tac, caps, imei)| CtxParams1 {
            matching_id: m,
            device_info: DeviceInfo {
                tac,
                device_capabilities: caps,
                imei,
            },
        })
}
fn cert() -> impl Strategy<Value = Vec<u8>> {
    bytes(40).prop_map(|b| crate::tlv::encode(0x30, &b))
}
fn pir() -> impl Strategy<Value = ProfileInstallationResult> {
    let result = prop_oneof![
        (nonempty(17), bytes(10)).prop_map(|(isdp_aid, sima_response)| FinalResult::Success {
            isdp_aid,
            sima_response
        }),
        (code(), code(), proptest::option::of(bytes(6))).prop_map(|(c, r, s)| FinalResult::Error {
            bpp_command_id: BppCommandId::from_code(c),
            error_reason: ErrorReason::from_code(r),
            sima_response: s
        }),
    ];
    (
        tx(),
        metadata(),
        proptest::option::of(nonempty(10)),
        result,
        bytes(64),
    )
        .prop_map(|(t, m, o, r, s)| ProfileInstallationResult {
            data: Encoded::new(ProfileInstallationResultData {
                transaction_id: t,
                notification_metadata: m,
                smdp_oid: o,
                final_result: r,
            }),
            euicc_sign_pir: s,
        })
}
fn profile_info() -> impl Strategy<Value = ProfileInfo> {
    (
        (
            proptest::option::of(any_iccid()),
            proptest::option::of(nonempty(16)),
            proptest::option::of(code().prop_map(ProfileState::from_code)),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        ),
        (
            proptest::option::of(code().prop_map(IconType::from_code)),
            proptest::option::of(bytes(30)),
            proptest::option::of(code().prop_map(ProfileClass::from_code)),
            proptest::option::of(notif_conf()),
            proptest::option::of(operator()),
            proptest::option::of(bytes(10)),
            proptest::option::of(ppr()),
        ),
    )
        .prop_map(
            |(
                (iccid, isdp_aid, state, nickname, spn, name),
                (icon_type, icon, class, nc, owner, dp, ppr),
            )| ProfileInfo {
                iccid,
                isdp_aid,
                state,
                nickname,
                service_provider_name: spn,
                profile_name: name,
                icon_type,
                icon,
                profile_class: class,
                notification_configuration: nc,
                profile_owner: owner,
                dp_proprietary_data: dp,
                ppr,
            },
        )
}

fn round_trip<T: Der + PartialEq + std::fmt::Debug>(
    x: &T,
) -> std::result::Result<(), TestCaseError> {
    let der = x.to_der();
    let back = T::from_der(&der)
        .map_err(|e| TestCaseError::fail(format!("{e}: {}", hex::encode_upper(&der))))?;
    prop_assert_eq!(&back, x);
    prop_assert_eq!(back.to_der(), der);
    Ok(())
}

proptest! {
    #[test]
    fn es10a_and_info_round_trip(
        dp in proptest::option::of(text()), ds in text(), addr in text(), r in code(),
        svn in arr::<3>(), l1 in proptest::collection::vec(bytes(21), 0..3), l2 in proptest::collection::vec(bytes(21), 0..3),
        i2 in info2(), ch in arr::<16>(), eid in arr::<16>(), tl in bytes(4),
    ) {
        round_trip(&EuiccConfiguredAddressesResponse { default_dp_address: dp, root_ds_address: ds })?;
        round_trip(&SetDefaultDpAddressRequest { address: addr })?;
        round_trip(&SetDefaultDpAddressResponse { result: SetDefaultDpAddressResult::from_code(r) })?;
        round_trip(&EuiccInfo1 { svn, ci_pkid_verification: l1, ci_pkid_signing: l2 })?;
        round_trip(&i2)?;
        round_trip(&GetEuiccChallengeResponse { challenge: ch })?;
        round_trip(&GetEuiccDataResponse { eid })?;
        round_trip(&GetEuiccDataRequest { tag_list: tl })?;
    }

    #[test]
    fn authentication_and_download_round_trip(
        t in tx(), c1 in arr::<16>(), c2 in arr::<16>(), a in text(), sig in bytes(64), pk in bytes(21), crt in cert(),
        cp in ctx_params(), i2 in info2(), cc in any::<bool>(), otpk in proptest::option::of(bytes(65)),
        hash in proptest::option::of(arr::<32>()), r in code(),
    ) {
        let s1 = ServerSigned1 { transaction_id: t.clone(), euicc_challenge: c1, server_address: a.clone(), server_challenge: c2 };
        round_trip(&s1)?;
        round_trip(&AuthenticateServerRequest {
            server_signed1: Encoded::new(s1), server_signature1: sig.clone(), euicc_ci_pkid_to_be_used: pk,
            server_certificate: crt.clone(), ctx_params1: Encoded::new(cp.clone()),
        })?;
        round_trip(&AuthenticateServerResponse::Ok {
            euicc_signed1: Encoded::new(EuiccSigned1 { transaction_id: t.clone(), server_address: a, server_challenge: c2, euicc_info2: Encoded::new(i2), ctx_params1: Encoded::new(cp) }),
            euicc_signature1: sig.clone(), euicc_certificate: crt.clone(), eum_certificate: crt.clone(),
        })?;
        round_trip(&AuthenticateServerResponse::Error { transaction_id: t.clone(), code: AuthenticateErrorCode::from_code(r) })?;
        round_trip(&PrepareDownloadRequest {
            smdp_signed2: Encoded::new(SmdpSigned2 { transaction_id: t.clone(), cc_required: cc, bpp_euicc_otpk: otpk.clone() }),
            smdp_signature2: sig.clone(), hash_cc: hash, smdp_certificate: crt,
        })?;
        round_trip(&PrepareDownloadResponse::Ok {
            euicc_signed2: Encoded::new(EuiccSigned2 { transaction_id: t.clone(), euicc_otpk: otpk.unwrap_or_default(), hash_cc: hash }),
            euicc_signature2: sig,
        })?;
        round_trip(&PrepareDownloadResponse::Error { transaction_id: t, code: DownloadErrorCode::from_code(r) })?;
    }

    #[test]
    fn notifications_and_session_round_trip(
        p in pir(), m in metadata(), ms in proptest::collection::vec(metadata(), 0..3), ev in proptest::option::of(events()),
        seq in any::<u64>(), r in code(), t in tx(), oid in bytes(8), sig in bytes(64), crt in cert(),
    ) {
        round_trip(&p)?;
        round_trip(&m)?;
        round_trip(&ListNotificationRequest { operation: ev })?;
        round_trip(&ListNotificationResponse::Ok(ms))?;
        round_trip(&ListNotificationResponse::Error(ListNotificationError::from_code(r)))?;
        round_trip(&RetrieveNotificationsListRequest { search: Some(NotificationSearch::SeqNumber(seq)) })?;
        round_trip(&RetrieveNotificationsListRequest { search: ev.map(NotificationSearch::Operation) })?;
        let other = PendingNotification::Other(OtherSignedNotification {
            tbs: Encoded::new(m), signature: sig.clone(), euicc_certificate: crt.clone(), eum_certificate: crt,
        });
        round_trip(&RetrieveNotificationsListResponse::Ok(vec![PendingNotification::ProfileInstallationResult(p), other]))?;
        round_trip(&RetrieveNotificationsListResponse::Error(RetrieveNotificationsListError::from_code(r)))?;
        round_trip(&NotificationSentRequest { seq_number: seq })?;
        round_trip(&NotificationSentResponse { result: NotificationSentResult::from_code(r) })?;
        let reason = CancelSessionReason::from_code(r);
        round_trip(&CancelSessionRequest { transaction_id: t.clone(), reason })?;
        round_trip(&CancelSessionResponse::Ok { signed: Encoded::new(EuiccCancelSessionSigned { transaction_id: t, smdp_oid: oid, reason }), signature: sig })?;
        round_trip(&CancelSessionResponse::Error(CancelSessionError::from_code(r)))?;
    }

    #[test]
    fn es10c_round_trips(
        infos in proptest::collection::vec(profile_info(), 0..3), id in identifier(), refresh in any::<bool>(), r in code(),
        ic in any_iccid(), nick in text(), opts in any::<[bool; 3]>(), tl in proptest::option::of(bytes(5)),
        search in proptest::option::of(prop_oneof![
            nonempty(16).prop_map(ProfileSearch::IsdpAid), any_iccid().prop_map(ProfileSearch::Iccid),
            code().prop_map(|c| ProfileSearch::ProfileClass(ProfileClass::from_code(c)))]),
        rules in proptest::collection::vec((ppr(), proptest::collection::vec(operator(), 0..2), any::<bool>()), 0..3),
        crl in bytes(30), parts in proptest::option::of(proptest::collection::vec(any::<u64>(), 0..3)),
    ) {
        round_trip(&ProfileInfoListRequest { search, tag_list: tl })?;
        round_trip(&ProfileInfoListResponse::Ok(infos))?;
        round_trip(&ProfileInfoListResponse::Error(ProfileInfoListError::from_code(r)))?;
        round_trip(&EnableProfileRequest { id: id.clone(), refresh })?;
        round_trip(&DisableProfileRequest { id: id.clone(), refresh })?;
        round_trip(&DeleteProfileRequest { id })?;
        round_trip(&EnableProfileResponse { result: EnableProfileResult::from_code(r) })?;
        round_trip(&DisableProfileResponse { result: DisableProfileResult::from_code(r) })?;
        round_trip(&DeleteProfileResponse { result: DeleteProfileResult::from_code(r) })?;
        round_trip(&EuiccMemoryResetRequest { delete_operational_profiles: opts[0], delete_field_loaded_test_profiles: opts[1], reset_default_smdp_address: opts[2] })?;
        round_trip(&EuiccMemoryResetResponse { result: EuiccMemoryResetResult::from_code(r) })?;
        round_trip(&SetNicknameRequest { iccid: ic, nickname: nick })?;
        round_trip(&SetNicknameResponse { result: SetNicknameResult::from_code(r) })?;
        round_trip(&GetRatResponse { rat: rules.into_iter().map(|(p, o, c)| ProfilePolicyAuthorisationRule { ppr_ids: p, allowed_operators: o, consent_required: c }).collect() })?;
        round_trip(&LoadCrlRequest { crl })?;
        round_trip(&LoadCrlResponse::Ok { missing_parts: parts })?;
        round_trip(&LoadCrlResponse::Error(LoadCrlError::from_code(r)))?;
    }

    #[test]
    fn bpp_parts_round_trip(
        ic in any_iccid(), spn in text(), name in text(), it in proptest::option::of(code()), icon in proptest::option::of(bytes(20)),
        class in proptest::option::of(code()), nc in proptest::option::of(notif_conf()), owner in proptest::option::of(operator()),
        p in proptest::option::of(ppr()), dp in proptest::option::of(bytes(10)),
        segs in proptest::collection::vec(bytes(30), 1..4), rsk in any::<bool>(),
    ) {
        round_trip(&StoreMetadataRequest {
            iccid: ic, service_provider_name: spn, profile_name: name, icon_type: it.map(IconType::from_code), icon,
            profile_class: class.map(ProfileClass::from_code), notification_configuration: nc, profile_owner: owner, ppr: p,
        })?;
        round_trip(&ConfigureIsdpRequest { dp_proprietary_data: dp })?;
        let seg = |tag: u32| segs.iter().map(|s| crate::tlv::encode(tag, s)).collect::<Vec<_>>();
        round_trip(&BoundProfilePackage {
            initialise_secure_channel: crate::tlv::encode(0xBF23, &segs[0]),
            configure_isdp: seg(0x87), store_metadata: seg(0x88),
            replace_session_keys: rsk.then(|| seg(0x87)), load_profile_elements: seg(0x86),
        })?;
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(tag in prop::sample::select(vec![
        0xBF20u32, 0xBF21, 0xBF22, 0xBF25, 0xBF27, 0xBF28, 0xBF29, 0xBF2B, 0xBF2D, 0xBF2E, 0xBF2F, 0xBF30,
        0xBF31, 0xBF32, 0xBF33, 0xBF34, 0xBF35, 0xBF36, 0xBF37, 0xBF38, 0xBF3C, 0xBF3E, 0xBF3F, 0xBF41, 0xBF43, 0x30, 0xA0]),
        body in bytes(200),
    ) {
        let der = crate::tlv::encode(tag, &body);
        for input in [&der[..], &body[..]] {
            let _ = AuthenticateServerRequest::from_der(input);
            let _ = AuthenticateServerResponse::from_der(input);
            let _ = PrepareDownloadRequest::from_der(input);
            let _ = PrepareDownloadResponse::from_der(input);
            let _ = EuiccInfo1::from_der(input);
            let _ = EuiccInfo2::from_der(input);
            let _ = ProfileInfoListRequest::from_der(input);
            let _ = ProfileInfoListResponse::from_der(input);
            let _ = RetrieveNotificationsListRequest::from_der(input);
            let _ = RetrieveNotificationsListResponse::from_der(input);
            let _ = ListNotificationResponse::from_der(input);
            let _ = ProfileInstallationResult::from_der(input);
            let _ = StoreMetadataRequest::from_der(input);
            let _ = BoundProfilePackage::from_der(input);
            let _ = EnableProfileRequest::from_der(input);
            let _ = DeleteProfileRequest::from_der(input);
            let _ = EuiccMemoryResetRequest::from_der(input);
            let _ = CancelSessionRequest::from_der(input);
            let _ = CancelSessionResponse::from_der(input);
            let _ = GetRatResponse::from_der(input);
            let _ = LoadCrlResponse::from_der(input);
            let _ = PendingNotification::from_der(input);
            let _ = CtxParams1::from_der(input);
        }
    }
}
