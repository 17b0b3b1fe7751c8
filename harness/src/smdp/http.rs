//! HTTPS transport of the SM-DP+ (SGP.22 v2.5 §6.1 TLS, §6.5 HTTP/JSON binding): axum routes
//! `POST /gsma/rsp2/es9plus/{function}` and `POST /gsma/rsp2/es2plus/{function}`, rustls with
//! the ring provider and CERT.DP.TLS (NIST: rustls has no brainpool), on a tokio runtime thread.
//!
//! ES9+ and ES2+ listen on separate ports. ES9+ is server-authenticated TLS, as SGP.22 specifies
//! it for the LPA; ES2+ is the operator's interface and requires a client certificate chaining
//! to the configured operator CA — a client without one, or with another, is refused during
//! the TLS handshake with an alert (`certificate_required`, `unknown_ca`, `bad_certificate`)
//! and never reaches a function. Two ports rather than one with an optional client certificate:
//! an ES9+ handshake then never carries a CertificateRequest (which some LPAs do not expect),
//! refusal happens in TLS itself rather than in each route, and the operator port can listen
//! on another interface than the one devices reach.
//!
//! Every executed function answers `200` with a JSON body whose header says success or failure
//! (§6.5.1.4); handleNotification answers `204 No Content` (§6.5.1).
//!
//! The input contract (§6.5.1): a request must carry `X-Admin-Protocol: gsma/rsp/v2.x.y` (or
//! v3) and `Content-Type: application/json`, else the function is not run and the answer is
//! `200` with a failed header. Requests that reach no function get their HTTP status and a
//! failed header too, never a bare status: an unknown path `404`, a method other than POST
//! `405`, a body over [`MAX_BODY`] `413` (bodies up to [`DRAIN_LIMIT`] are read to the end
//! first, so that the client sees the answer instead of a connection reset). Which codes each
//! of these carries is listed in `docs/smdp.md`.

use super::es2::{CANCEL_ORDER, CONFIRM_ORDER, DOWNLOAD_ORDER, ES2P_PATH_PREFIX, RELEASE_PROFILE};
use super::{FunctionError, Smdp};
use crate::defaults::Files;
use crate::es9p::{
    codes, HeaderOnly, ResponseHeader, ADMIN_PROTOCOL, AUTHENTICATE_CLIENT, CANCEL_SESSION,
    CONTENT_TYPE_JSON, ES9P_PATH_PREFIX, GET_BOUND_PROFILE_PACKAGE, HANDLE_NOTIFICATION,
    HEADER_ADMIN_PROTOCOL, INITIATE_AUTHENTICATION,
};
use crate::pki::{self, Role};
use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use p256::pkcs8::EncodePrivateKey as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

/// `Content-Type` of every JSON answer (SGP.22 §6.5.1).
const CONTENT_TYPE_JSON_UTF8: &str = "application/json;charset=UTF-8";
/// Runtime worker threads: the machine has two cores.
const WORKER_THREADS: usize = 2;
/// Largest request body a function accepts. SGP.22 requests are a few kilobytes (the largest,
/// AuthenticateClient and HandleNotification, carry two certificates).
pub const MAX_BODY: usize = 256 * 1024;
/// Over-size bodies up to this size are read and dropped before the refusal is sent; beyond
/// it the connection is closed unread.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
/// `X-Admin-Protocol` values served (SGP.22 §6.5.1: `gsma/rsp/v<x.y.z>`): v2, and v3 whose
/// ES9+ JSON binding is the same for these functions.
const ADMIN_PROTOCOL_PREFIXES: [&str; 2] = ["gsma/rsp/v2.", "gsma/rsp/v3."];

/// The rustls server configuration with CERT.DP.TLS (NIST) and its key (ES9+: no client
/// authentication).
pub fn tls_config(pki_dir: &Files) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    server_config(pki_dir, None)
}

/// The ES2+ server configuration: CERT.DP.TLS, and a client certificate required that chains
/// to `operator_ca` (DER).
pub fn es2_tls_config(
    pki_dir: &Files,
    operator_ca: &[u8],
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(operator_ca.to_vec()))
        .context("operator CA certificate is not usable as a trust anchor")?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .context("ES2+ client certificate verifier")?;
    server_config(pki_dir, Some(verifier))
}

/// CERT.DP.TLS (NIST) and its key: the SM-DP+'s TLS identity, as server (ES9+, ES2+) and as
/// client (HandleDownloadProgressInfo to the operator).
fn dp_tls_identity(
    pki_dir: &Files,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let curve = pki::Curve::Nist;
    let loaded = pki::Pki::load_from(pki_dir, curve)
        .with_context(|| format!("PKI {pki_dir} (NIST set, for TLS)"))?;
    let key = loaded.dp_tls.key.as_ref().with_context(|| {
        format!(
            "no TLS key {}",
            pki_dir
                .location(pki::key_path(Role::DpTls, curve))
                .display()
        )
    })?;
    let secret = p256::SecretKey::from_slice(&key.scalar()).context("DPtls key")?;
    let pkcs8 = secret.to_pkcs8_der().context("DPtls key as PKCS#8")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec()));
    Ok((
        vec![CertificateDer::from(loaded.dp_tls.cert_der.clone())],
        key,
    ))
}

/// The TLS client configuration of the SM-DP+'s calls to the operator
/// (ES2+.HandleDownloadProgressInfo, SGP.22 §5.3.5): ES2+ is mutually authenticated in both
/// directions (SGP.22 §2.6.6), so the SM-DP+ presents CERT.DP.TLS (EKU clientAuth) and trusts
/// only `operator_ca` (DER) — the CA it trusts for the operator's ES2+ client certificates —
/// for the operator's server certificate.
pub fn es2_client_tls_config(
    pki_dir: &Files,
    operator_ca: &[u8],
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(operator_ca.to_vec()))
        .context("operator CA certificate is not usable as a trust anchor")?;
    let (chain, key) = dp_tls_identity(pki_dir)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .context("CERT.DP.TLS as TLS client certificate")?;
    Ok(Arc::new(config))
}

fn server_config(
    pki_dir: &Files,
    client_auth: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let (chain, key) = dp_tls_identity(pki_dir)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .context("TLS certificate and key")?;
    Ok(Arc::new(config))
}

/// One HTTPS server to run: where, with which TLS, serving which interface.
pub(super) struct Listener {
    pub socket: std::net::TcpListener,
    pub tls: Arc<rustls::ServerConfig>,
    pub interface: Interface,
}

/// Which SGP.22 interface a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interface {
    Es9Plus,
    Es2Plus,
}

fn router(interface: Interface, smdp: Arc<Smdp>) -> Router {
    let router = match interface {
        Interface::Es9Plus => Router::new()
            .route(
                "/gsma/rsp2/es9plus/{function}",
                post(es9).fallback(wrong_method),
            )
            .fallback(unknown_es9_path),
        Interface::Es2Plus => Router::new()
            .route(
                "/gsma/rsp2/es2plus/{function}",
                post(es2).fallback(wrong_method),
            )
            .fallback(unknown_es2_path),
    };
    router.with_state(smdp)
}

/// Serves `smdp` on every listener until `handle` shuts down, on a new runtime thread.
pub(super) fn spawn(
    listeners: Vec<Listener>,
    smdp: Arc<Smdp>,
    handle: axum_server::Handle,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("smdp")
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("smdp-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                let servers: Vec<_> = listeners
                    .into_iter()
                    .map(|l| {
                        let app = router(l.interface, Arc::clone(&smdp));
                        tokio::spawn(serve(l.socket, l.tls, app, handle.clone()))
                    })
                    .collect();
                for server in servers {
                    let _ = server.await;
                }
            });
        })?;
    Ok(thread)
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    handle: axum_server::Handle,
) {
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    // TCP_NODELAY: without it Nagle held the first response of each new connection
    // behind the server's earlier small, still unacknowledged write (after the TLS
    // handshake) until the client's delayed ACK, up to 40 ms on Linux: every
    // download's InitiateAuthentication took ~12 ms on average instead of ~1 ms.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let result = axum_server::from_tcp(listener)
        .acceptor(acceptor)
        .handle(handle)
        .serve(app.into_make_service())
        .await;
    if let Err(e) = result {
        tracing::error!("SM-DP+ server stopped: {e}");
    }
}

/// What a function produced: a JSON body, or "no content"; or why no function ran.
enum Outcome {
    Json(String),
    NoContent,
    Refused(StatusCode, FunctionError),
}

fn to_json<T: Serialize>(result: Result<T, FunctionError>) -> Outcome {
    let text = match result {
        Ok(body) => serde_json::to_string(&body),
        Err(e) => serde_json::to_string(&HeaderOnly {
            header: ResponseHeader::failed(e.code, e.message),
        }),
    };
    Outcome::Json(text.unwrap_or_default())
}

/// Parses a request body; serde's "missing field" is SGP.22's "mandatory element missing".
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, FunctionError> {
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let code = if text.starts_with("missing field") {
            codes::MANDATORY_ELEMENT_MISSING
        } else {
            codes::INVALID_INPUT
        };
        FunctionError::new(code, format!("request body: {text}"))
    })
}

/// The functions served on each port (what `dispatch_es9` / `dispatch_es2` know).
const ES9_FUNCTIONS: [&str; 5] = [
    INITIATE_AUTHENTICATION,
    AUTHENTICATE_CLIENT,
    GET_BOUND_PROFILE_PACKAGE,
    HANDLE_NOTIFICATION,
    CANCEL_SESSION,
];
const ES2_FUNCTIONS: [&str; 4] = [DOWNLOAD_ORDER, CONFIRM_ORDER, CANCEL_ORDER, RELEASE_PROFILE];

fn dispatch_es9(smdp: &Smdp, function: &str, body: &[u8]) -> Outcome {
    match function {
        INITIATE_AUTHENTICATION => {
            to_json(parse(body).and_then(|r| smdp.initiate_authentication(&r)))
        }
        AUTHENTICATE_CLIENT => to_json(parse(body).and_then(|r| smdp.authenticate_client(&r))),
        GET_BOUND_PROFILE_PACKAGE => {
            to_json(parse(body).and_then(|r| smdp.get_bound_profile_package(&r)))
        }
        HANDLE_NOTIFICATION => match parse(body).and_then(|r| smdp.handle_notification(&r)) {
            Ok(()) => Outcome::NoContent,
            Err(e) => to_json::<()>(Err(e)),
        },
        CANCEL_SESSION => to_json(parse(body).and_then(|r| smdp.cancel_session(&r))),
        other => unknown_function("ES9+", other),
    }
}

fn dispatch_es2(smdp: &Smdp, function: &str, body: &[u8]) -> Outcome {
    match function {
        DOWNLOAD_ORDER => to_json(parse(body).and_then(|r| smdp.download_order(&r))),
        CONFIRM_ORDER => to_json(parse(body).and_then(|r| smdp.confirm_order(&r))),
        CANCEL_ORDER => to_json(parse(body).and_then(|r| smdp.cancel_order(&r))),
        RELEASE_PROFILE => to_json(parse(body).and_then(|r| smdp.release_profile(&r))),
        other => unknown_function("ES2+", other),
    }
}

fn unknown_function(interface: &str, function: &str) -> Outcome {
    Outcome::Refused(
        StatusCode::NOT_FOUND,
        FunctionError::new(
            codes::UNKNOWN_FUNCTION,
            format!("{interface} has no function {function:?}"),
        ),
    )
}

fn failure_body(e: FunctionError) -> String {
    serde_json::to_string(&HeaderOnly {
        header: ResponseHeader::failed(e.code, e.message),
    })
    .unwrap_or_default()
}

fn respond(outcome: Outcome) -> Response {
    let json = |status: StatusCode, body: String| {
        (
            status,
            [(header::CONTENT_TYPE, CONTENT_TYPE_JSON_UTF8)],
            body,
        )
            .into_response()
    };
    let mut response = match outcome {
        Outcome::Json(body) => json(StatusCode::OK, body),
        Outcome::NoContent => StatusCode::NO_CONTENT.into_response(),
        Outcome::Refused(status, e) => json(status, failure_body(e)),
    };
    response.headers_mut().insert(
        HEADER_ADMIN_PROTOCOL,
        HeaderValue::from_static(ADMIN_PROTOCOL),
    );
    response
}

/// Reads the whole body, at most [`DRAIN_LIMIT`] bytes, and checks the request against the
/// input contract of SGP.22 §6.5.1 (see the module docs).
async fn checked_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Outcome> {
    let too_large = |len: Option<usize>| {
        Outcome::Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            FunctionError::new(
                codes::INVALID_INPUT,
                format!(
                    "request body of {} exceeds the limit of {MAX_BODY} bytes",
                    len.map_or_else(
                        || format!("more than {DRAIN_LIMIT} bytes"),
                        |n| format!("{n} bytes")
                    )
                ),
            ),
        )
    };
    let bytes = axum::body::to_bytes(body, DRAIN_LIMIT)
        .await
        .map_err(|_| too_large(None))?;
    if let Some(e) = header_refusal(headers) {
        return Err(Outcome::Json(failure_body(e)));
    }
    if bytes.len() > MAX_BODY {
        return Err(too_large(Some(bytes.len())));
    }
    Ok(bytes)
}

/// Why the headers do not meet SGP.22 §6.5.1, if they do not (the BOSS's ES2+ endpoint
/// checks its requests with this too).
pub(crate) fn header_refusal(headers: &HeaderMap) -> Option<FunctionError> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
    };
    match text(HEADER_ADMIN_PROTOCOL) {
        None => {
            return Some(FunctionError::new(
                codes::MANDATORY_ELEMENT_MISSING,
                format!("no {HEADER_ADMIN_PROTOCOL} header; expected {ADMIN_PROTOCOL}"),
            ))
        }
        Some(v)
            if !ADMIN_PROTOCOL_PREFIXES
                .iter()
                .any(|p| v.to_ascii_lowercase().starts_with(p)) =>
        {
            return Some(FunctionError::new(
                codes::SPECIFICATION_VERSION_UNSUPPORTED,
                format!(
                    "{HEADER_ADMIN_PROTOCOL} {v:?} is not served; this SM-DP+ speaks \
                     gsma/rsp/v2.x.y (and v3)"
                ),
            ))
        }
        Some(_) => {}
    }
    // RFC 9110 §8.3.1: media type case-insensitive, parameters (charset) allowed.
    let content_type = text(header::CONTENT_TYPE.as_str());
    let media_type = content_type
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match (content_type.as_deref(), media_type.as_deref()) {
        (_, Some(CONTENT_TYPE_JSON)) => None,
        (None, _) => Some(FunctionError::new(
            codes::MANDATORY_ELEMENT_MISSING,
            format!("no Content-Type header; expected {CONTENT_TYPE_JSON}"),
        )),
        (Some(other), _) => Some(FunctionError::new(
            codes::INVALID_INPUT,
            format!("Content-Type {other:?}; expected {CONTENT_TYPE_JSON}"),
        )),
    }
}

/// Runs the function: right here when it can only use CPU, else off the async workers.
async fn run(
    smdp: Arc<Smdp>,
    (interface, functions): (&str, &[&str]),
    function: String,
    headers: HeaderMap,
    body: Body,
    dispatch: fn(&Smdp, &str, &[u8]) -> Outcome,
) -> Response {
    if !functions.contains(&function.as_str()) {
        drain(body).await;
        return respond(unknown_function(interface, &function));
    }
    let body = match checked_body(&headers, body).await {
        Ok(b) => b,
        Err(refused) => return respond(refused),
    };
    // A function that can only compute (in-memory store, no operator to call back) takes
    // well under a millisecond: it runs on this async worker. Handing it to the blocking pool
    // cost two thread wake-ups per request, ~0.1 ms of the server's CPU per download
    // (docs/performance.md). One that may wait (database file, ES2+ callback) still goes
    // there, so that the workers keep serving other connections meanwhile.
    let outcome = if smdp.may_block() {
        tokio::task::spawn_blocking(move || dispatch(&smdp, &function, &body))
            .await
            .map_err(|e| e.to_string())
    } else {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            dispatch(&smdp, &function, &body)
        }))
        .map_err(|_| "panic".to_owned())
    };
    match outcome {
        Ok(o) => respond(o),
        Err(e) => respond(to_json::<()>(Err(FunctionError::new(
            codes::EXECUTION_ERROR,
            format!("function panicked: {e}"),
        )))),
    }
}

async fn es9(
    State(smdp): State<Arc<Smdp>>,
    UrlPath(function): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(
        smdp,
        ("ES9+", &ES9_FUNCTIONS),
        function,
        headers,
        body,
        dispatch_es9,
    )
    .await
}

async fn es2(
    State(smdp): State<Arc<Smdp>>,
    UrlPath(function): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(
        smdp,
        ("ES2+", &ES2_FUNCTIONS),
        function,
        headers,
        body,
        dispatch_es2,
    )
    .await
}

/// Reads (and drops) the body of a request that reaches no function, so that the client
/// gets the answer rather than a reset.
async fn drain(body: Body) {
    let _ = axum::body::to_bytes(body, DRAIN_LIMIT).await;
}

async fn wrong_method(method: Method, uri: Uri, body: Body) -> Response {
    drain(body).await;
    let mut response = respond(Outcome::Refused(
        StatusCode::METHOD_NOT_ALLOWED,
        FunctionError::new(
            codes::INVALID_INPUT,
            format!(
                "{method} {}: SGP.22 functions are called with POST",
                uri.path()
            ),
        ),
    ));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

fn unknown_path(uri: &Uri, hint: &str) -> Response {
    respond(Outcome::Refused(
        StatusCode::NOT_FOUND,
        FunctionError::new(
            codes::UNKNOWN_FUNCTION,
            format!("no function at {}; {hint}", uri.path()),
        ),
    ))
}

async fn unknown_es9_path(uri: Uri, body: Body) -> Response {
    drain(body).await;
    let hint = if uri.path().starts_with(ES2P_PATH_PREFIX) {
        "ES2+ is served on the operator's port (mutual TLS), not on the ES9+ port"
    } else {
        "ES9+ functions are under /gsma/rsp2/es9plus/"
    };
    unknown_path(&uri, hint)
}

async fn unknown_es2_path(uri: Uri, body: Body) -> Response {
    drain(body).await;
    let hint = if uri.path().starts_with(ES9P_PATH_PREFIX) {
        "ES9+ is served on its own port, not on the operator's ES2+ port"
    } else {
        "ES2+ functions are under /gsma/rsp2/es2plus/"
    };
    unknown_path(&uri, hint)
}
