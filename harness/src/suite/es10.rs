//! ES10 requests as case authors write them (`es10 EnableProfile iccid=… refresh=false`),
//! encoded with the same SGP.22 v2.5 message types the LPA and the card use
//! (`simlab_emulator::rsp::es10`), so a case never carries hand-made DER unless it means to
//! (`es10 raw …`).
//!
//! Argument values: a word or a quoted string; `$NAME` refers to a captured or probed value.
//! ICCIDs are printed digits or a `$NAME` holding the 10 bytes of EF.ICCID / `Iccid`; AIDs,
//! tag lists, transaction IDs and CRLs are hex.

use super::case::Vars;
use simlab_emulator::rsp::es10::{self as m, Der};
use std::collections::BTreeMap;

/// Every function a case may name, with the SGP.22 v2.5 clause that defines it.
pub const FUNCTIONS: &[&str] = &[
    "GetEID",
    "GetEUICCInfo1",
    "GetEUICCInfo2",
    "GetEUICCChallenge",
    "GetEuiccConfiguredAddresses",
    "SetDefaultDpAddress",
    "GetProfilesInfo",
    "EnableProfile",
    "DisableProfile",
    "DeleteProfile",
    "eUICCMemoryReset",
    "SetNickname",
    "ListNotification",
    "RetrieveNotificationsList",
    "RemoveNotificationFromList",
    "CancelSession",
    "GetRAT",
    "LoadCRL",
    "raw",
];

/// The arguments each function takes.
fn allowed_args(function: &str) -> &'static [&'static str] {
    match function {
        "SetDefaultDpAddress" => &["address"],
        "GetProfilesInfo" => &["iccid", "aid", "class", "tags"],
        "EnableProfile" | "DisableProfile" => &["iccid", "aid", "refresh"],
        "DeleteProfile" => &["iccid", "aid"],
        "eUICCMemoryReset" => &["operational", "test", "defaultDp"],
        "SetNickname" => &["iccid", "nickname"],
        "ListNotification" => &["event"],
        "RetrieveNotificationsList" => &["seq", "event"],
        "RemoveNotificationFromList" => &["seq"],
        "CancelSession" => &["transactionId", "reason"],
        "LoadCRL" => &["crl"],
        "raw" => &["hex"],
        _ => &[],
    }
}

/// The canonical name, if `name` is a function.
pub fn function(name: &str) -> Option<&'static str> {
    FUNCTIONS.iter().copied().find(|f| *f == name)
}

/// Checks the argument names when a case file is read.
pub fn check_args(function: &str, args: &BTreeMap<String, String>) -> Result<(), String> {
    let allowed = allowed_args(function);
    for k in args.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(if allowed.is_empty() {
                format!("{function} takes no arguments, got `{k}`")
            } else {
                format!(
                    "{function} takes {}, got `{k}`",
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
    }
    Ok(())
}

/// Hex with spaces and `$NAME` references.
fn hex_value(v: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for token in v.split_whitespace() {
        if let Some(name) = token
            .strip_prefix("$len(")
            .and_then(|t| t.strip_suffix(')'))
        {
            let value = vars
                .get(name)
                .ok_or_else(|| format!("${name} is not known here"))?;
            out.push(
                u8::try_from(value.len())
                    .map_err(|_| format!("${name} is longer than 255 bytes"))?,
            );
            continue;
        }
        match token.strip_prefix('$') {
            Some(name) => out.extend(
                vars.get(name)
                    .ok_or_else(|| format!("${name} is not known here"))?,
            ),
            None => out.extend(hex::decode(token).map_err(|e| format!("{token:?}: {e}"))?),
        }
    }
    Ok(out)
}

/// A text argument; `$NAME` takes a captured value's bytes as UTF-8 (e.g. an address read
/// back from the card, to put it back).
fn text(v: &str, vars: &Vars) -> Result<String, String> {
    match v.strip_prefix('$') {
        Some(name) => {
            let bytes = vars
                .get(name)
                .ok_or_else(|| format!("${name} is not known here"))?;
            String::from_utf8(bytes.clone()).map_err(|_| format!("${name} is not UTF-8"))
        }
        None => Ok(v.to_owned()),
    }
}

fn iccid(v: &str, vars: &Vars) -> Result<m::Iccid, String> {
    if let Some(name) = v.strip_prefix('$') {
        let bytes = vars
            .get(name)
            .ok_or_else(|| format!("${name} is not known here"))?;
        let arr: [u8; m::ICCID_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("${name} is {} bytes, an ICCID is 10", bytes.len()))?;
        return Ok(m::Iccid(arr));
    }
    m::Iccid::from_digits(v).ok_or_else(|| format!("{v:?} is not an ICCID (18 to 20 digits)"))
}

fn number(v: &str, vars: &Vars) -> Result<u64, String> {
    if v.starts_with('$') {
        let bytes = hex_value(v, vars)?;
        if bytes.len() > 8 {
            return Err(format!(
                "{v} is {} bytes, too long for a number",
                bytes.len()
            ));
        }
        return Ok(bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b)));
    }
    v.parse().map_err(|_| format!("{v:?} is not a number"))
}

fn flag(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{v:?}: expected true or false")),
    }
}

fn event(v: &str) -> Result<m::NotificationEvents, String> {
    let mut e = m::NotificationEvents::default();
    match v {
        "install" => e.install = true,
        "enable" => e.enable = true,
        "disable" => e.disable = true,
        "delete" => e.delete = true,
        _ => {
            return Err(format!(
                "{v:?}: expected install, enable, disable or delete"
            ))
        }
    }
    Ok(e)
}

fn profile_id(
    args: &BTreeMap<String, String>,
    vars: &Vars,
) -> Result<m::ProfileIdentifier, String> {
    match (args.get("iccid"), args.get("aid")) {
        (Some(i), None) => Ok(m::ProfileIdentifier::Iccid(iccid(i, vars)?)),
        (None, Some(a)) => Ok(m::ProfileIdentifier::IsdpAid(hex_value(a, vars)?)),
        _ => Err("give exactly one of iccid=… or aid=…".into()),
    }
}

/// The DER of the request.
pub fn encode(
    function: &str,
    args: &BTreeMap<String, String>,
    vars: &Vars,
) -> Result<Vec<u8>, String> {
    let arg = |k: &str| args.get(k).map(String::as_str);
    let der = match function {
        "GetEID" => m::GetEuiccDataRequest::default().to_der(),
        "GetEUICCInfo1" => m::GetEuiccInfo1Request.to_der(),
        "GetEUICCInfo2" => m::GetEuiccInfo2Request.to_der(),
        "GetEUICCChallenge" => m::GetEuiccChallengeRequest.to_der(),
        "GetEuiccConfiguredAddresses" => m::EuiccConfiguredAddressesRequest.to_der(),
        "GetRAT" => m::GetRatRequest.to_der(),
        "SetDefaultDpAddress" => m::SetDefaultDpAddressRequest {
            address: text(arg("address").unwrap_or_default(), vars)?,
        }
        .to_der(),
        "GetProfilesInfo" => {
            let search = match (arg("iccid"), arg("aid"), arg("class")) {
                (None, None, None) => None,
                (Some(i), None, None) => Some(m::ProfileSearch::Iccid(iccid(i, vars)?)),
                (None, Some(a), None) => Some(m::ProfileSearch::IsdpAid(hex_value(a, vars)?)),
                (None, None, Some(c)) => Some(m::ProfileSearch::ProfileClass(match c {
                    "test" => m::ProfileClass::Test,
                    "provisioning" => m::ProfileClass::Provisioning,
                    "operational" => m::ProfileClass::Operational,
                    n => m::ProfileClass::from_code(number(n, vars)?),
                })),
                _ => return Err("give at most one of iccid=, aid=, class=".into()),
            };
            let tag_list = arg("tags").map(|t| hex_value(t, vars)).transpose()?;
            m::ProfileInfoListRequest { search, tag_list }.to_der()
        }
        "EnableProfile" => m::EnableProfileRequest {
            id: profile_id(args, vars)?,
            refresh: arg("refresh").map(flag).transpose()?.unwrap_or(true),
        }
        .to_der(),
        "DisableProfile" => m::DisableProfileRequest {
            id: profile_id(args, vars)?,
            refresh: arg("refresh").map(flag).transpose()?.unwrap_or(true),
        }
        .to_der(),
        "DeleteProfile" => m::DeleteProfileRequest {
            id: profile_id(args, vars)?,
        }
        .to_der(),
        "eUICCMemoryReset" => m::EuiccMemoryResetRequest {
            delete_operational_profiles: arg("operational").map(flag).transpose()?.unwrap_or(false),
            delete_field_loaded_test_profiles: arg("test").map(flag).transpose()?.unwrap_or(false),
            reset_default_smdp_address: arg("defaultDp").map(flag).transpose()?.unwrap_or(false),
        }
        .to_der(),
        "SetNickname" => m::SetNicknameRequest {
            iccid: iccid(arg("iccid").ok_or("SetNickname needs iccid=…")?, vars)?,
            nickname: text(arg("nickname").unwrap_or_default(), vars)?,
        }
        .to_der(),
        "ListNotification" => m::ListNotificationRequest {
            operation: arg("event").map(event).transpose()?,
        }
        .to_der(),
        "RetrieveNotificationsList" => m::RetrieveNotificationsListRequest {
            search: match (arg("seq"), arg("event")) {
                (None, None) => None,
                (Some(s), None) => Some(m::NotificationSearch::SeqNumber(number(s, vars)?)),
                (None, Some(e)) => Some(m::NotificationSearch::Operation(event(e)?)),
                _ => return Err("give at most one of seq=, event=".into()),
            },
        }
        .to_der(),
        "RemoveNotificationFromList" => m::NotificationSentRequest {
            seq_number: number(
                arg("seq").ok_or("RemoveNotificationFromList needs seq=…")?,
                vars,
            )?,
        }
        .to_der(),
        "CancelSession" => m::CancelSessionRequest {
            transaction_id: hex_value(arg("transactionId").unwrap_or_default(), vars)?,
            reason: match arg("reason").unwrap_or("endUserRejection") {
                "endUserRejection" => m::CancelSessionReason::EndUserRejection,
                "postponed" => m::CancelSessionReason::Postponed,
                "timeout" => m::CancelSessionReason::Timeout,
                "pprNotAllowed" => m::CancelSessionReason::PprNotAllowed,
                n => m::CancelSessionReason::from_code(number(n, vars)?),
            },
        }
        .to_der(),
        "LoadCRL" => m::LoadCrlRequest {
            crl: hex_value(arg("crl").unwrap_or_default(), vars)?,
        }
        .to_der(),
        "raw" => hex_value(arg("hex").unwrap_or_default(), vars)?,
        other => return Err(format!("unknown ES10 function {other}")),
    };
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn args(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[rstest]
    #[case::get_eid("GetEID", &[], "BF3E035C015A")]
    #[case::challenge("GetEUICCChallenge", &[], "BF2E00")]
    #[case::profiles_by_iccid(
        "GetProfilesInfo", &[("iccid", "8949449999999990023")],
        "BF2D0EA00C5A0A989444999999990920F3")]
    #[case::enable_no_refresh(
        "EnableProfile", &[("aid", "A0000005591010FFFFFFFF8900001100"), ("refresh", "false")],
        "BF3117A0124F10A0000005591010FFFFFFFF8900001100810100")]
    #[case::remove_notification("RemoveNotificationFromList", &[("seq", "300")], "BF30048002012C")]
    #[case::memory_reset_default_dp("eUICCMemoryReset", &[("defaultDp", "true")], "BF340482020520")]
    #[case::raw("raw", &[("hex", "BF2E 00")], "BF2E00")]
    fn encodes_what_sgp22_defines(#[case] f: &str, #[case] a: &[(&str, &str)], #[case] want: &str) {
        let got = encode(f, &args(a), &Vars::new()).unwrap();
        assert_eq!(hex::encode_upper(got), want);
    }

    #[test]
    fn arguments_take_captured_values() {
        let mut vars = Vars::new();
        vars.insert("ICCID".into(), hex::decode("989444999999990920F3").unwrap());
        vars.insert("SEQ".into(), vec![0x01, 0x00]);
        let d = encode("DeleteProfile", &args(&[("iccid", "$ICCID")]), &vars).unwrap();
        assert_eq!(hex::encode_upper(d), "BF330C5A0A989444999999990920F3");
        let r = encode(
            "RemoveNotificationFromList",
            &args(&[("seq", "$SEQ")]),
            &vars,
        )
        .unwrap();
        assert_eq!(hex::encode_upper(r), "BF3004800201 00".replace(' ', ""));
    }

    #[test]
    fn unknown_argument_names_are_refused_with_the_allowed_ones() {
        let e = check_args("EnableProfile", &args(&[("icid", "1")])).unwrap_err();
        assert!(e.contains("`iccid`, `aid`, `refresh`"), "{e}");
        assert!(check_args("GetEID", &args(&[("x", "1")])).is_err());
    }
}
