//! HTTPS transport of the SM-DP+ (SGP.22 v2.5 §6.1 TLS, §6.5 HTTP/JSON binding): axum routes
//! `POST /gsma/rsp2/es9plus/{function}` and `POST /gsma/rsp2/es2plus/{function}`, rustls with
//! the ring provider and CERT.DP.TLS (NIST: rustls has no brainpool), on a tokio runtime thread.
//!
//! Every executed function answers `200` with a JSON body whose header says success or failure
//! (§6.5.1.4); handleNotification answers `204 No Content` (§6.5.1); unknown paths `404`.

use super::es2::{CANCEL_ORDER, CONFIRM_ORDER, DOWNLOAD_ORDER, RELEASE_PROFILE};
use super::{FunctionError, Smdp};
use crate::defaults::Files;
use crate::es9p::{
    codes, HeaderOnly, ResponseHeader, ADMIN_PROTOCOL, AUTHENTICATE_CLIENT, CANCEL_SESSION,
    GET_BOUND_PROFILE_PACKAGE, HANDLE_NOTIFICATION, HEADER_ADMIN_PROTOCOL, INITIATE_AUTHENTICATION,
};
use crate::pki::{self, Role};
use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
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

/// The rustls server configuration with CERT.DP.TLS (NIST) and its key.
pub fn tls_config(pki_dir: &Files) -> anyhow::Result<Arc<rustls::ServerConfig>> {
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
    let chain = vec![CertificateDer::from(loaded.dp_tls.cert_der.clone())];
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("TLS certificate and key")?;
    Ok(Arc::new(config))
}

/// Serves `smdp` on `listener` until `handle` shuts down, on a new runtime thread.
pub(super) fn spawn(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    smdp: Arc<Smdp>,
    handle: axum_server::Handle,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("smdp")
        .enable_all()
        .build()?;
    let app = Router::new()
        .route("/gsma/rsp2/es9plus/{function}", post(es9))
        .route("/gsma/rsp2/es2plus/{function}", post(es2))
        .with_state(smdp);
    let thread = std::thread::Builder::new()
        .name("smdp-server".into())
        .spawn(move || {
            runtime.block_on(async move {
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
            });
        })?;
    Ok(thread)
}

/// What a function produced: a JSON body, or "no content".
enum Outcome {
    Json(String),
    NoContent,
    NotFound,
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
        _ => Outcome::NotFound,
    }
}

fn dispatch_es2(smdp: &Smdp, function: &str, body: &[u8]) -> Outcome {
    match function {
        DOWNLOAD_ORDER => to_json(parse(body).and_then(|r| smdp.download_order(&r))),
        CONFIRM_ORDER => to_json(parse(body).and_then(|r| smdp.confirm_order(&r))),
        CANCEL_ORDER => to_json(parse(body).and_then(|r| smdp.cancel_order(&r))),
        RELEASE_PROFILE => to_json(parse(body).and_then(|r| smdp.release_profile(&r))),
        _ => Outcome::NotFound,
    }
}

fn respond(outcome: Outcome) -> Response {
    let mut response = match outcome {
        Outcome::Json(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, CONTENT_TYPE_JSON_UTF8)],
            body,
        )
            .into_response(),
        Outcome::NoContent => StatusCode::NO_CONTENT.into_response(),
        Outcome::NotFound => StatusCode::NOT_FOUND.into_response(),
    };
    response.headers_mut().insert(
        HEADER_ADMIN_PROTOCOL,
        HeaderValue::from_static(ADMIN_PROTOCOL),
    );
    response
}

/// Runs the CPU-bound function off the async workers.
async fn run(
    smdp: Arc<Smdp>,
    function: String,
    body: Bytes,
    dispatch: fn(&Smdp, &str, &[u8]) -> Outcome,
) -> Response {
    let outcome = tokio::task::spawn_blocking(move || dispatch(&smdp, &function, &body)).await;
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
    body: Bytes,
) -> Response {
    run(smdp, function, body, dispatch_es9).await
}

async fn es2(
    State(smdp): State<Arc<Smdp>>,
    UrlPath(function): UrlPath<String>,
    body: Bytes,
) -> Response {
    run(smdp, function, body, dispatch_es2).await
}
