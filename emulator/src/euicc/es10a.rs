//! ES10a (SGP.22 v2.5 §5.7.3 GetEuiccConfiguredAddresses, §5.7.4 SetDefaultDpAddress).

use super::EuiccState;
use crate::rsp::es10::{
    Der, EuiccConfiguredAddressesResponse, SetDefaultDpAddressRequest, SetDefaultDpAddressResponse,
    SetDefaultDpAddressResult,
};
use crate::status::StatusWord;

/// The default SM-DP+ address (if any) and the root SM-DS address.
pub fn configured_addresses(state: &EuiccState) -> Vec<u8> {
    EuiccConfiguredAddressesResponse {
        default_dp_address: state.config.default_dp_address.clone(),
        root_ds_address: state.config.root_ds_address.clone(),
    }
    .to_der()
}

/// Sets (or, with an empty address, removes) the default SM-DP+ address.
pub fn set_default_dp_address(
    state: &mut EuiccState,
    req: &SetDefaultDpAddressRequest,
) -> Result<Vec<u8>, StatusWord> {
    // §5.7.4: an FQDN; 255 bytes is the longest a DNS name can be (RFC 1035 §2.3.4).
    let result = if req.address.len() > 255 {
        SetDefaultDpAddressResult::UndefinedError
    } else {
        state.config.default_dp_address = (!req.address.is_empty()).then(|| req.address.clone());
        SetDefaultDpAddressResult::Ok
    };
    Ok(SetDefaultDpAddressResponse { result }.to_der())
}
