//! Every ES10 message decoder of SGP.22 §5.7 (requests the card reads, answers the LPA reads):
//! never a panic; a decoded request re-encodes to DER that decodes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_emulator::rsp::es10::*;

fn round_trip<T: Der + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = T::from_der(data) {
        let again = T::from_der(&v.to_der()).expect("re-encoded DER decodes");
        assert_eq!(again, v);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<GetEuiccDataRequest>(data);
    round_trip::<ProfileInfoListRequest>(data);
    round_trip::<EnableProfileRequest>(data);
    round_trip::<DisableProfileRequest>(data);
    round_trip::<DeleteProfileRequest>(data);
    round_trip::<EuiccMemoryResetRequest>(data);
    round_trip::<SetNicknameRequest>(data);
    round_trip::<ListNotificationRequest>(data);
    round_trip::<RetrieveNotificationsListRequest>(data);
    round_trip::<NotificationSentRequest>(data);
    round_trip::<CancelSessionRequest>(data);
    round_trip::<SetDefaultDpAddressRequest>(data);
    round_trip::<LoadCrlRequest>(data);
    let _ = AuthenticateServerRequest::from_der(data);
    let _ = AuthenticateServerResponse::from_der(data);
    let _ = PrepareDownloadRequest::from_der(data);
    let _ = PrepareDownloadResponse::from_der(data);
    let _ = EuiccInfo1::from_der(data);
    let _ = EuiccInfo2::from_der(data);
    let _ = ProfileInfoListResponse::from_der(data);
    let _ = RetrieveNotificationsListResponse::from_der(data);
    let _ = ListNotificationResponse::from_der(data);
    let _ = ProfileInstallationResult::from_der(data);
    let _ = StoreMetadataRequest::from_der(data);
    let _ = CancelSessionResponse::from_der(data);
    let _ = GetRatResponse::from_der(data);
    let _ = LoadCrlResponse::from_der(data);
    let _ = PendingNotification::from_der(data);
    let _ = CtxParams1::from_der(data);
    let _ = EuiccConfiguredAddressesResponse::from_der(data);
});
