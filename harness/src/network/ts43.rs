//! The requests and answers of the entitlement server in the shape of GSMA TS.43 (Service
//! Entitlement Configuration, ODSA for companion and primary devices): query parameters parsed
//! into a typed [`Request`] before anything else happens, and the entitlement document
//! (docs/network.md §1). Parameters TS.43 does not name (marked ✚ there) carry the seed's
//! identifiers.

use super::db::{LineView, RingMode};
use super::error::NetError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Query parameters as received.
pub type Params = BTreeMap<String, String>;

/// TS.43 application IDs.
pub const APP_ODSA_COMPANION: &str = "ap2006";
pub const APP_ODSA_PRIMARY: &str = "ap2009";

/// TS.43 ManageSubscription operation types.
pub const OPERATION_TYPE_SUBSCRIBE: &str = "0";
pub const OPERATION_TYPE_TRANSFER_SUBSCRIPTION: &str = "3";
/// TS.43 ManageService operation types.
pub const OPERATION_TYPE_ACTIVATE_SERVICE: &str = "10";
pub const OPERATION_TYPE_DEACTIVATE_SERVICE: &str = "11";

/// TS.43 SubscriptionResult values.
pub const SUBSCRIPTION_RESULT_CONTINUE_TO_WEBSHEET: &str = "1";
pub const SUBSCRIPTION_RESULT_DOWNLOAD_PROFILE: &str = "2";
pub const SUBSCRIPTION_RESULT_DONE: &str = "3";
pub const SUBSCRIPTION_RESULT_DISMISS: &str = "5";
pub const SUBSCRIPTION_RESULT_REQUIRES_USER_INPUT: &str = "8";
/// TS.43 ServiceStatus values.
pub const SERVICE_STATUS_ACTIVATED: &str = "1";
pub const SERVICE_STATUS_ACTIVATING: &str = "2";
pub const SERVICE_STATUS_DEACTIVATED: &str = "3";
/// TS.43 OperationResult: success.
pub const OPERATION_RESULT_SUCCESS: &str = "1";

/// How the seed identifies a device's line (ICCID, MSISDN, IMSI for UICC devices; EID,
/// MSISDN, IMSI for eUICC devices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineId {
    Iccid(String),
    Msisdn(String),
    Imsi(String),
    Eid(String),
}

impl std::fmt::Display for LineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineId::Iccid(v) => write!(f, "ICCID {v}"),
            LineId::Msisdn(v) => write!(f, "MSISDN {v}"),
            LineId::Imsi(v) => write!(f, "IMSI {v}"),
            LineId::Eid(v) => write!(f, "EID {v}"),
        }
    }
}

/// Upgrade (old UICC, Fig. 16) or migration (old eUICC, Fig. 17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Upgrade,
    Migration,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// AcquireConfiguration: authenticate, get a token and the line's state.
    Configuration,
    /// ManageSubscription SUBSCRIBE: a profile for an eUICC (a companion's, or the device's
    /// own), optionally bound to the primary's MSISDN (SharedNumber).
    Subscribe { eid: String, bind: bool },
    /// ManageService ACTIVATE_SERVICE: multi-IMSI single-MSISDN binding.
    Activate {
        primary: Option<LineId>,
        secondary: LineId,
        ring_mode: Option<RingMode>,
    },
    /// ManageService DEACTIVATE_SERVICE: unbinding.
    Deactivate {
        primary: Option<LineId>,
        secondary: LineId,
    },
    /// ManageSubscription TRANSFER_SUBSCRIPTION: upgrade or migration of an MSISDN to a new EID.
    Transfer {
        msisdn: String,
        new_eid: String,
        transfer_type: Option<TransferType>,
        old_iccid: Option<String>,
    },
}

impl Operation {
    /// The operation's kind as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Configuration => "configuration",
            Operation::Subscribe { .. } => "subscribe",
            Operation::Activate { .. } => "activate",
            Operation::Deactivate { .. } => "deactivate",
            Operation::Transfer { .. } => "transfer",
        }
    }
}

/// A parsed entitlement request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub app: String,
    pub operation: Operation,
    /// Everything received (recorded with the operation).
    pub params: Params,
}

/// `+` and 1–15 digits (E.164); given without `+`, it is added.
pub fn normalise_msisdn(parameter: &str, value: &str) -> Result<String, NetError> {
    let digits = value.trim().strip_prefix('+').unwrap_or(value.trim());
    if !(1..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NetError::invalid(
            parameter,
            format!("{value:?} is not an MSISDN: expected + and 1 to 15 digits (E.164)"),
        ));
    }
    Ok(format!("+{digits}"))
}

pub fn check_imsi(parameter: &str, value: &str) -> Result<String, NetError> {
    if !(6..=15).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NetError::invalid(
            parameter,
            format!("{value:?} is not an IMSI: expected 6 to 15 digits (TS 23.003 §2.2)"),
        ));
    }
    Ok(value.to_owned())
}

pub fn check_iccid(parameter: &str, value: &str) -> Result<String, NetError> {
    if !(18..=20).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NetError::invalid(
            parameter,
            format!("{value:?} is not an ICCID: expected 18 to 20 digits (ITU-T E.118)"),
        ));
    }
    Ok(value.to_owned())
}

pub fn check_eid(parameter: &str, value: &str) -> Result<String, NetError> {
    crate::pki::validate_eid(value).map_err(|e| NetError::invalid(parameter, e))?;
    Ok(value.to_owned())
}

fn line_id(params: &Params, prefix: &str, eid_allowed: bool) -> Result<Option<LineId>, NetError> {
    let mut found = Vec::new();
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    if let Some(v) = params.get(&name("iccid")) {
        found.push(LineId::Iccid(check_iccid(&name("iccid"), v)?));
    }
    if let Some(v) = params.get(&name("msisdn")) {
        found.push(LineId::Msisdn(normalise_msisdn(&name("msisdn"), v)?));
    }
    if let Some(v) = params.get(&name("imsi")) {
        found.push(LineId::Imsi(check_imsi(&name("imsi"), v)?));
    }
    if eid_allowed {
        if let Some(v) = params.get(&name("eid")) {
            found.push(LineId::Eid(check_eid(&name("eid"), v)?));
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(NetError::invalid(
            prefix,
            format!(
                "give one identifier of the {prefix} device, not {}",
                found.len()
            ),
        )),
    }
}

impl Request {
    /// Checks every parameter of a new request (not a continuation).
    pub fn parse(params: &Params) -> Result<Request, NetError> {
        let app = params
            .get("app")
            .cloned()
            .unwrap_or_else(|| APP_ODSA_PRIMARY.to_owned());
        if app != APP_ODSA_COMPANION && app != APP_ODSA_PRIMARY {
            return Err(NetError::invalid(
                "app",
                format!(
                    "{app:?}: this server offers ap2006 (ODSA companion) and ap2009 (ODSA primary)"
                ),
            ));
        }
        let operation_type = params.get("operation_type").map(String::as_str);
        let need_type = |expected: &str| {
            NetError::invalid(
                "operation_type",
                format!("{operation_type:?} is not supported here; expected {expected}"),
            )
        };
        let operation = match params.get("operation").map(String::as_str) {
            None | Some("AcquireConfiguration") => Operation::Configuration,
            Some("ManageSubscription") => match operation_type {
                Some(OPERATION_TYPE_SUBSCRIBE) => {
                    let eid = match (
                        params.get("companion_terminal_eid"),
                        params.get("terminal_eid"),
                    ) {
                        (Some(e), _) => check_eid("companion_terminal_eid", e)?,
                        (None, Some(e)) => check_eid("terminal_eid", e)?,
                        (None, None) => return Err(NetError::missing("companion_terminal_eid")),
                    };
                    let bind = match params.get("companion_terminal_service").map(String::as_str) {
                        None => false,
                        Some("SharedNumber") => true,
                        Some(other) => {
                            return Err(NetError::invalid(
                                "companion_terminal_service",
                                format!("{other:?}: only SharedNumber is offered"),
                            ))
                        }
                    };
                    Operation::Subscribe { eid, bind }
                }
                Some(OPERATION_TYPE_TRANSFER_SUBSCRIPTION) => Operation::Transfer {
                    msisdn: normalise_msisdn(
                        "MSISDN",
                        params
                            .get("MSISDN")
                            .ok_or_else(|| NetError::missing("MSISDN"))?,
                    )?,
                    new_eid: check_eid(
                        "terminal_eid",
                        params
                            .get("terminal_eid")
                            .ok_or_else(|| NetError::missing("terminal_eid"))?,
                    )?,
                    transfer_type: match params.get("transfer_type").map(String::as_str) {
                        None => None,
                        Some("upgrade") => Some(TransferType::Upgrade),
                        Some("migration") => Some(TransferType::Migration),
                        Some(other) => {
                            return Err(NetError::invalid(
                                "transfer_type",
                                format!("{other:?}: expected upgrade or migration"),
                            ))
                        }
                    },
                    old_iccid: params
                        .get("old_terminal_iccid")
                        .map(|v| check_iccid("old_terminal_iccid", v))
                        .transpose()?,
                },
                None => return Err(NetError::missing("operation_type")),
                _ => return Err(need_type("0 (SUBSCRIBE) or 3 (TRANSFER_SUBSCRIPTION)")),
            },
            Some("ManageService") => {
                let primary = line_id(params, "terminal", false)?;
                let secondary = line_id(params, "companion_terminal", true)?
                    .ok_or_else(|| NetError::missing("companion_terminal_eid, companion_terminal_iccid, companion_terminal_msisdn or companion_terminal_imsi"))?;
                match operation_type {
                    Some(OPERATION_TYPE_ACTIVATE_SERVICE) => Operation::Activate {
                        primary,
                        secondary,
                        ring_mode: params
                            .get("ring_mode")
                            .map(|m| {
                                RingMode::parse(m).ok_or_else(|| {
                                    NetError::invalid(
                                        "ring_mode",
                                        format!("{m:?}: expected FA or MAH"),
                                    )
                                })
                            })
                            .transpose()?,
                    },
                    Some(OPERATION_TYPE_DEACTIVATE_SERVICE) => {
                        Operation::Deactivate { primary, secondary }
                    }
                    None => return Err(NetError::missing("operation_type")),
                    _ => {
                        return Err(need_type(
                            "10 (ACTIVATE_SERVICE) or 11 (DEACTIVATE_SERVICE)",
                        ))
                    }
                }
            }
            Some(other) => {
                return Err(NetError::invalid(
                    "operation",
                    format!(
                    "{other:?}: expected AcquireConfiguration, ManageSubscription or ManageService"
                ),
                ))
            }
        };
        Ok(Request {
            app,
            operation,
            params: params.clone(),
        })
    }
}

/// The APPLICATION part of an entitlement document being built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppFields(pub Map<String, Value>);

impl AppFields {
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    pub fn line(self, line: &LineView) -> Self {
        self.set(
            "Line",
            json!({"MSISDN": line.msisdn, "IMSI": line.imsi, "ICCID": line.iccid,
                   "EID": line.eid, "State": line.state}),
        )
    }

    pub fn multi_imsi(self, msisdn: &str, mode: RingMode, members: &[LineView]) -> Self {
        let members: Vec<Value> = members
            .iter()
            .map(|m| {
                json!({"IMSI": m.imsi, "ICCID": m.iccid, "EID": m.eid, "State": m.state,
                       "RingOrder": m.ring_order})
            })
            .collect();
        self.set(
            "MultiImsi",
            json!({"MSISDN": msisdn, "RingMode": mode.as_str(), "Members": members}),
        )
    }
}

/// The whole document: `Vers`, `Token` (when one was issued) and `APPLICATION`.
pub fn document(app: &str, token: Option<(&str, u64)>, fields: &AppFields) -> Value {
    let mut application = Map::new();
    application.insert("AppID".into(), json!(app));
    application.insert("OperationResult".into(), json!(OPERATION_RESULT_SUCCESS));
    for (k, v) in &fields.0 {
        application.insert(k.clone(), v.clone());
    }
    let mut doc = Map::new();
    doc.insert("Vers".into(), json!({"version": "1", "validity": "172800"}));
    if let Some((token, validity)) = token {
        doc.insert(
            "Token".into(),
            json!({"token": token, "validity": validity.to_string()}),
        );
    }
    doc.insert("APPLICATION".into(), Value::Object(application));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const EID: &str = "89049032123451234512345678901235";

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[rstest]
    #[case::configuration(&[], Operation::Configuration)]
    #[case::companion(&[("app", "ap2006"), ("operation", "ManageSubscription"), ("operation_type", "0"), ("companion_terminal_eid", EID)],
        Operation::Subscribe { eid: EID.into(), bind: false })]
    #[case::shared_number(&[("operation", "ManageSubscription"), ("operation_type", "0"), ("companion_terminal_eid", EID), ("companion_terminal_service", "SharedNumber")],
        Operation::Subscribe { eid: EID.into(), bind: true })]
    #[case::own_euicc(&[("operation", "ManageSubscription"), ("operation_type", "0"), ("terminal_eid", EID)],
        Operation::Subscribe { eid: EID.into(), bind: false })]
    #[case::activate(&[("operation", "ManageService"), ("operation_type", "10"), ("terminal_iccid", "8949001010000000016"), ("companion_terminal_imsi", "001010000000002"), ("ring_mode", "mah")],
        Operation::Activate { primary: Some(LineId::Iccid("8949001010000000016".into())), secondary: LineId::Imsi("001010000000002".into()), ring_mode: Some(RingMode::Mah) })]
    #[case::deactivate(&[("operation", "ManageService"), ("operation_type", "11"), ("companion_terminal_msisdn", "15555550101")],
        Operation::Deactivate { primary: None, secondary: LineId::Msisdn("+15555550101".into()) })]
    #[case::transfer(&[("operation", "ManageSubscription"), ("operation_type", "3"), ("MSISDN", "+15555550100"), ("terminal_eid", EID), ("transfer_type", "upgrade")],
        Operation::Transfer { msisdn: "+15555550100".into(), new_eid: EID.into(), transfer_type: Some(TransferType::Upgrade), old_iccid: None })]
    fn parses_requests(#[case] pairs: &[(&str, &str)], #[case] operation: Operation) {
        assert_eq!(Request::parse(&params(pairs)).unwrap().operation, operation);
    }

    #[rstest]
    #[case::unknown_app(&[("app", "ap2004")], "invalid-parameter", "app")]
    #[case::unknown_operation(&[("operation", "Teleport")], "invalid-parameter", "operation")]
    #[case::no_type(&[("operation", "ManageSubscription")], "missing-parameter", "operation_type")]
    #[case::unsubscribe(&[("operation", "ManageSubscription"), ("operation_type", "1")], "invalid-parameter", "operation_type")]
    #[case::no_eid(&[("operation", "ManageSubscription"), ("operation_type", "0")], "missing-parameter", "companion_terminal_eid")]
    #[case::bad_eid(&[("operation", "ManageSubscription"), ("operation_type", "0"), ("companion_terminal_eid", "89049032123451234512345678901234")], "invalid-parameter", "companion_terminal_eid")]
    #[case::other_service(&[("operation", "ManageSubscription"), ("operation_type", "0"), ("companion_terminal_eid", EID), ("companion_terminal_service", "DiffNumber")], "invalid-parameter", "SharedNumber")]
    #[case::no_secondary(&[("operation", "ManageService"), ("operation_type", "10")], "missing-parameter", "companion_terminal_eid")]
    #[case::two_secondaries(&[("operation", "ManageService"), ("operation_type", "10"), ("companion_terminal_imsi", "001010000000002"), ("companion_terminal_eid", EID)], "invalid-parameter", "one identifier")]
    #[case::bad_imsi(&[("operation", "ManageService"), ("operation_type", "10"), ("companion_terminal_imsi", "12ab")], "invalid-parameter", "IMSI")]
    #[case::bad_ring_mode(&[("operation", "ManageService"), ("operation_type", "10"), ("companion_terminal_imsi", "001010000000002"), ("ring_mode", "both")], "invalid-parameter", "FA or MAH")]
    #[case::transfer_without_msisdn(&[("operation", "ManageSubscription"), ("operation_type", "3"), ("terminal_eid", EID)], "missing-parameter", "MSISDN")]
    #[case::transfer_bad_msisdn(&[("operation", "ManageSubscription"), ("operation_type", "3"), ("MSISDN", "+1-555"), ("terminal_eid", EID)], "invalid-parameter", "E.164")]
    #[case::transfer_bad_type(&[("operation", "ManageSubscription"), ("operation_type", "3"), ("MSISDN", "+1555"), ("terminal_eid", EID), ("transfer_type", "swap")], "invalid-parameter", "upgrade or migration")]
    fn refuses_bad_requests(
        #[case] pairs: &[(&str, &str)],
        #[case] code: &str,
        #[case] says: &str,
    ) {
        let e = Request::parse(&params(pairs)).unwrap_err();
        assert_eq!(e.code, code, "{e}");
        assert!(e.message.contains(says), "{e}");
    }

    #[test]
    fn the_document_has_vers_token_and_application() {
        let doc = document(
            "ap2006",
            Some(("T", 60)),
            &AppFields::default().set("SubscriptionResult", "2"),
        );
        insta::assert_snapshot!(serde_json::to_string_pretty(&doc).unwrap(), @r###"
        {
          "APPLICATION": {
            "AppID": "ap2006",
            "OperationResult": "1",
            "SubscriptionResult": "2"
          },
          "Token": {
            "token": "T",
            "validity": "60"
          },
          "Vers": {
            "validity": "172800",
            "version": "1"
          }
        }
        "###);
    }
}
