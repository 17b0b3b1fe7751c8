//! Notifications (SGP.22 v2.5 §3.5, §5.7.9–§5.7.11): each profile management operation that
//! the profile's metadata asks for (install always, to the SM-DP+; enable, disable, delete
//! when `notificationConfigurationInfo` lists them) leaves a pending notification with the
//! next sequence number, signed by the eUICC:
//! - install: the `ProfileInstallationResult` (BF37, euiccSignPIR over the BF27 bytes);
//! - others: `OtherSignedNotification` (euiccNotificationSignature over the BF2F bytes, with
//!   the eUICC and EUM certificates).
//!
//! They stay until the LPA removes them (RemoveNotificationFromList) after delivery.

use super::{EuiccError, EuiccState, Profile, StoredNotification};
use crate::rsp::es10::{
    Der, Encoded, FinalResult, Iccid, NotificationEvent, NotificationMetadata,
    OtherSignedNotification, PendingNotification, ProfileInstallationResult,
    ProfileInstallationResultData,
};

fn event_bit(e: NotificationEvent) -> u8 {
    match e {
        NotificationEvent::Install => 0,
        NotificationEvent::Enable => 1,
        NotificationEvent::Disable => 2,
        NotificationEvent::Delete => 3,
    }
}

/// The event of a stored notification.
pub fn event_of(n: &StoredNotification) -> NotificationEvent {
    match n.event {
        0 => NotificationEvent::Install,
        1 => NotificationEvent::Enable,
        2 => NotificationEvent::Disable,
        _ => NotificationEvent::Delete,
    }
}

fn next_seq(state: &mut EuiccState) -> u64 {
    state.last_seq_number = state.last_seq_number.wrapping_add(1);
    state.last_seq_number
}

/// Builds and signs the ProfileInstallationResult of a download; when `store` is set (the
/// session knew its SM-DP+), keeps it as the install notification.
pub fn installation_result(
    state: &mut EuiccState,
    transaction_id: &[u8],
    smdp_address: &str,
    smdp_oid: Option<Vec<u8>>,
    iccid: Option<Iccid>,
    final_result: FinalResult,
    store: bool,
) -> Result<ProfileInstallationResult, EuiccError> {
    let seq_number = if store { next_seq(state) } else { 0 };
    let data = Encoded::new(ProfileInstallationResultData {
        transaction_id: transaction_id.to_vec(),
        notification_metadata: NotificationMetadata {
            seq_number,
            operation: NotificationEvent::Install,
            notification_address: smdp_address.to_string(),
            iccid,
        },
        smdp_oid,
        final_result,
    });
    let signature = state.sign(data.raw())?;
    let pir = ProfileInstallationResult {
        data,
        euicc_sign_pir: signature.to_vec(),
    };
    if store {
        state.notifications.push(StoredNotification {
            seq_number,
            event: event_bit(NotificationEvent::Install),
            address: smdp_address.to_string(),
            iccid,
            der: pir.to_der(),
        });
    }
    Ok(pir)
}

/// Leaves the notification of `event` on `profile` if its metadata asks for one.
pub fn profile_event(
    state: &mut EuiccState,
    profile: &Profile,
    event: NotificationEvent,
) -> Result<(), EuiccError> {
    let Some(address) = profile
        .notification_configuration
        .iter()
        .find(|c| match event {
            NotificationEvent::Install => c.install,
            NotificationEvent::Enable => c.enable,
            NotificationEvent::Disable => c.disable,
            NotificationEvent::Delete => c.delete,
        })
        .map(|c| c.address.clone())
    else {
        return Ok(());
    };
    let seq_number = next_seq(state);
    let tbs = Encoded::new(NotificationMetadata {
        seq_number,
        operation: event,
        notification_address: address.clone(),
        iccid: Some(profile.iccid),
    });
    let signature = state.sign(tbs.raw())?;
    let pending = PendingNotification::Other(OtherSignedNotification {
        tbs,
        signature: signature.to_vec(),
        euicc_certificate: state.identity.euicc_certificate.clone(),
        eum_certificate: state.identity.eum_certificate.clone(),
    });
    state.notifications.push(StoredNotification {
        seq_number,
        event: event_bit(event),
        address,
        iccid: Some(profile.iccid),
        der: pending.to_der(),
    });
    Ok(())
}
