//! Blocking ES9+ client over HTTPS (SGP.22 v2.5 §6.5 JSON binding, §6.1 TLS): what the LPA uses
//! to talk to an SM-DP+. One method per ES9+ function; requests carry the headers real LPAs send
//! (`X-Admin-Protocol`, `User-Agent`, `Content-Type: application/json`) and no `header` object.
//!
//! TLS is rustls with the ring provider and a root store of exactly the certificates given (the
//! GSMA CI of the test PKI, or the DPtls certificate itself): no system roots, so a server only
//! passes when its DPtls chain ends at a configured root (SGP.22 §2.6.3 / §6.1.1).

use super::{
    AuthenticateClientRequest, AuthenticateClientResponse, CancelSessionRequest,
    GetBoundProfilePackageRequest, GetBoundProfilePackageResponse, HandleNotificationRequest,
    HeaderOnly, InitiateAuthenticationRequest, InitiateAuthenticationResponse, ADMIN_PROTOCOL,
    AUTHENTICATE_CLIENT, CANCEL_SESSION, CONTENT_TYPE_JSON, ES9P_PATH_PREFIX,
    GET_BOUND_PROFILE_PACKAGE, HANDLE_NOTIFICATION, HEADER_ADMIN_PROTOCOL, INITIATE_AUTHENTICATION,
};
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// `User-Agent` this client sends (real LPAs send their own name, e.g. `gsma-rsp-lpad`).
pub const USER_AGENT: &str = "simlab-lpa";
/// HTTP status of a notification accepted without a body (SGP.22 §6.5.1: MEP Notification).
const HTTP_NO_CONTENT: u16 = 204;
const HTTP_OK: u16 = 200;
/// Per-request timeout; a bound profile package is tens of kilobytes on loopback.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why an ES9+ call did not return the function's output.
#[derive(Debug, Error)]
pub enum Es9pError {
    /// The SM-DP+ executed the function and reported failure (SGP.22 §6.5.1.4).
    #[error("{function}: SM-DP+ answered {status} with subject code {subject_code}, reason code {reason_code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Failed {
        function: &'static str,
        status: String,
        subject_code: String,
        reason_code: String,
        message: Option<String>,
    },
    #[error("{function}: HTTP status {status}, expected 200/204: {body}")]
    HttpStatus {
        function: &'static str,
        status: u16,
        body: String,
    },
    #[error("{function}: connection to {url} failed: {reason}")]
    Transport {
        function: &'static str,
        url: String,
        reason: String,
    },
    #[error("{function}: response is not the expected JSON: {reason}")]
    BadResponse {
        function: &'static str,
        reason: String,
    },
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl Es9pError {
    /// The SM-DP+'s (subjectCode, reasonCode), when it reported a failure.
    pub fn status_code(&self) -> Option<(&str, &str)> {
        match self {
            Es9pError::Failed {
                subject_code,
                reason_code,
                ..
            } => Some((subject_code, reason_code)),
            _ => None,
        }
    }
}

/// The LPA's TLS configuration: rustls with the ring provider, trusting only `roots` (DER).
pub fn tls_client_config(
    roots: &[impl AsRef<[u8]>],
) -> Result<Arc<rustls::ClientConfig>, Es9pError> {
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        store
            .add(CertificateDer::from(der.as_ref().to_vec()))
            .map_err(|e| Es9pError::Tls(format!("root certificate not usable: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Es9pError::Tls(e.to_string()))?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A blocking ES9+ client for one SM-DP+ address.
#[derive(Debug, Clone)]
pub struct Es9pClient {
    base_url: String,
    agent: ureq::Agent,
}

impl Es9pClient {
    /// A client for `smdp_address` (`host` or `host:port`, as in an activation code) trusting
    /// only `roots` (DER certificates: the CI, or the DPtls certificate itself).
    pub fn new<R: AsRef<[u8]>>(smdp_address: &str, roots: &[R]) -> Result<Self, Es9pError> {
        let config = tls_client_config(roots)?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(config)
            .timeout(TIMEOUT)
            .build();
        let address = smdp_address
            .trim()
            .trim_start_matches("https://")
            .trim_end_matches('/');
        Ok(Self {
            base_url: format!("https://{address}"),
            agent,
        })
    }

    /// The URL prefix requests go to (`https://host[:port]`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// ES9+.InitiateAuthentication (SGP.22 §5.6.1).
    pub fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9pError> {
        self.call(INITIATE_AUTHENTICATION, req)
    }

    /// ES9+.AuthenticateClient (SGP.22 §5.6.3).
    pub fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, Es9pError> {
        self.call(AUTHENTICATE_CLIENT, req)
    }

    /// ES9+.GetBoundProfilePackage (SGP.22 §5.6.2).
    pub fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9pError> {
        self.call(GET_BOUND_PROFILE_PACKAGE, req)
    }

    /// ES9+.HandleNotification (SGP.22 §5.6.4): `204 No Content` on success.
    pub fn handle_notification(&self, req: &HandleNotificationRequest) -> Result<(), Es9pError> {
        match self.post(HANDLE_NOTIFICATION, req)? {
            (HTTP_NO_CONTENT, _) => Ok(()),
            (HTTP_OK, body) if body.trim().is_empty() => Ok(()),
            // Some servers answer 200 with a header; accept it when it says success.
            (HTTP_OK, body) => check_header(HANDLE_NOTIFICATION, &body),
            (status, body) => Err(Es9pError::HttpStatus {
                function: HANDLE_NOTIFICATION,
                status,
                body,
            }),
        }
    }

    /// ES9+.CancelSession (SGP.22 §5.6.5).
    pub fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError> {
        self.call(CANCEL_SESSION, req)
    }

    fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        function: &'static str,
        req: &Req,
    ) -> Result<Resp, Es9pError> {
        match self.post(function, req)? {
            (HTTP_OK, body) => {
                check_header(function, &body)?;
                parse(function, &body)
            }
            (status, body) => Err(Es9pError::HttpStatus {
                function,
                status,
                body,
            }),
        }
    }

    /// POSTs the JSON body; returns the HTTP status and body text.
    fn post<Req: Serialize>(
        &self,
        function: &'static str,
        req: &Req,
    ) -> Result<(u16, String), Es9pError> {
        let url = format!("{}{ES9P_PATH_PREFIX}{function}", self.base_url);
        let body = serde_json::to_string(req).map_err(|e| Es9pError::BadResponse {
            function,
            reason: format!("request not serialisable: {e}"),
        })?;
        let result = self
            .agent
            .post(&url)
            .set(HEADER_ADMIN_PROTOCOL, ADMIN_PROTOCOL)
            .set("User-Agent", USER_AGENT)
            .set("Content-Type", CONTENT_TYPE_JSON)
            .send_string(&body);
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(Es9pError::Transport {
                    function,
                    url,
                    reason: t.to_string(),
                })
            }
        };
        let status = response.status();
        let text = response.into_string().map_err(|e| Es9pError::BadResponse {
            function,
            reason: format!("body unreadable: {e}"),
        })?;
        Ok((status, text))
    }
}

impl super::Es9Plus for Es9pClient {
    fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9pError> {
        Es9pClient::initiate_authentication(self, req)
    }

    fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, Es9pError> {
        Es9pClient::authenticate_client(self, req)
    }

    fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9pError> {
        Es9pClient::get_bound_profile_package(self, req)
    }

    fn handle_notification(&self, req: &HandleNotificationRequest) -> Result<(), Es9pError> {
        Es9pClient::handle_notification(self, req)
    }

    fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError> {
        Es9pClient::cancel_session(self, req)
    }
}

fn parse<T: DeserializeOwned>(function: &'static str, body: &str) -> Result<T, Es9pError> {
    serde_json::from_str(body).map_err(|e| Es9pError::BadResponse {
        function,
        reason: e.to_string(),
    })
}

/// Reads `header.functionExecutionStatus` first, so that a failure is reported with its codes
/// even though the body lacks the success fields.
fn check_header(function: &'static str, body: &str) -> Result<(), Es9pError> {
    let header: HeaderOnly = parse(function, body)?;
    if header.header.is_success() {
        return Ok(());
    }
    let status = header.header.function_execution_status;
    let data = status.status_code_data;
    Err(Es9pError::Failed {
        function,
        status: status.status,
        subject_code: data
            .as_ref()
            .map(|d| d.subject_code.clone())
            .unwrap_or_default(),
        reason_code: data
            .as_ref()
            .map(|d| d.reason_code.clone())
            .unwrap_or_default(),
        message: data.and_then(|d| d.message),
    })
}
