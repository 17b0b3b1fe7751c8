//! The network's errors: an HTTP status, a stable kebab-case code and a message saying what was
//! wrong (docs/network.md, "Conventions"). Handlers return them; the HTTP layer renders
//! `{"error": {"code", "message"}}` (plus the EAP-Failure packet for EAP-AKA failures).

use crate::smdp::FunctionError;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct NetError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// EAP-Failure to relay (EAP-AKA failures only).
    pub eap_failure: Option<Vec<u8>>,
}

impl NetError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            eap_failure: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad-request", message)
    }

    pub fn missing(parameter: &str) -> Self {
        Self::new(
            400,
            "missing-parameter",
            format!("parameter {parameter} is required"),
        )
    }

    pub fn invalid(parameter: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(400, "invalid-parameter", format!("{parameter}: {problem}"))
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not-found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    pub fn with_eap_failure(mut self, packet: Vec<u8>) -> Self {
        self.eap_failure = Some(packet);
        self
    }
}

impl From<rusqlite::Error> for NetError {
    fn from(e: rusqlite::Error) -> Self {
        NetError::internal(format!("network database: {e}"))
    }
}

impl From<FunctionError> for NetError {
    fn from(e: FunctionError) -> Self {
        NetError::internal(format!("network database: {e}"))
    }
}
