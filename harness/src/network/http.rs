//! The operator services over HTTP (axum on a tokio runtime thread of its own; docs/network.md
//! lists every route). Each handler decodes its input, runs one [`Network`] method off the async
//! workers and renders the answer; every failure is `{"error": {"code", "message"}}` with the
//! status of [`NetError`] (HTML for the contract page).

use super::contract;
use super::error::NetError;
use super::service::{relay_packet, Network, Provision, Ts43Answer};
use super::ts43::Params;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// TS.43 content type of the EAP relay (requests and challenge answers).
pub const CONTENT_TYPE_EAP_RELAY: &str = "application/vnd.gsma.eap-relay.v1.0+json";
/// Cookie carrying the EAP-AKA session between the challenge and the answer.
pub const EAP_SESSION_COOKIE: &str = "EAP_SESSION";
/// Runtime worker threads: the machine has two cores.
const WORKER_THREADS: usize = 2;
/// Request bodies larger than this are refused (no endpoint needs more).
const BODY_LIMIT: usize = 64 * 1024;

type Shared = Arc<Network>;

/// The router of every operator service.
pub fn router(network: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ts43", get(ts43_get).post(ts43_post))
        .route("/contract/{id}", get(contract_get).post(contract_post))
        .route("/smsc/messages", post(sms_send))
        .route("/smsc/inbox/{imsi}", get(sms_inbox))
        .route("/boss/subscribers", post(provision))
        .route(
            ES2_PROGRESS_PATH,
            axum::routing::any(es2_progress_elsewhere),
        )
        .route("/hlr/imsi/{imsi}", get(hlr_record))
        .route("/hlr/attach", post(hlr_attach))
        .route("/hlr/attach/{session}", post(hlr_attach_answer))
        .route("/calls", post(call))
        .route("/ota/commands", post(ota_send))
        .route("/ota/por", post(ota_por))
        .route("/admin/ota", get(admin_ota))
        .route("/admin/subscribers", get(admin_subscribers))
        .route("/admin/subscribers/{msisdn}", get(admin_subscriber))
        .route("/admin/imsis/{imsi}", get(admin_imsi))
        .route("/admin/groups", get(admin_groups))
        .route("/admin/orders", get(admin_orders))
        .route("/admin/order-events", get(admin_order_events))
        .route("/admin/transfers", get(admin_transfers))
        .route("/admin/operations", get(admin_operations))
        .route("/admin/sms", get(admin_sms))
        .route("/admin/contracts", get(admin_contracts))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(network)
}

/// Path of ES2+.HandleDownloadProgressInfo (SGP.22 §6.5.2.5) on the BOSS's ES2+ endpoint.
pub const ES2_PROGRESS_PATH: &str = "/gsma/rsp2/es2plus/handleDownloadProgressInfo";

/// The router of the BOSS's ES2+ endpoint (HTTPS with mutual TLS, [`super::es2_tls`]): the
/// one function the SM-DP+ calls on the operator.
pub fn es2_router(network: Shared) -> Router {
    Router::new()
        .route(
            ES2_PROGRESS_PATH,
            post(es2_progress).fallback(es2_wrong_method),
        )
        .fallback(es2_unknown_path)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(network)
}

/// The BOSS's ES2+ endpoint: where it listens and with which TLS.
#[derive(Debug)]
pub struct Es2Endpoint {
    pub listener: std::net::TcpListener,
    pub tls: Arc<rustls::ServerConfig>,
}

/// Serves `network` on `listener` (HTTP) and its ES2+ endpoint (HTTPS, mutual TLS) until
/// `shutdown` fires, on a new runtime thread.
pub fn spawn(
    listener: std::net::TcpListener,
    es2: Es2Endpoint,
    network: Shared,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("network")
        .enable_all()
        .build()?;
    let app = router(Arc::clone(&network));
    let es2_app = es2_router(network);
    let thread = std::thread::Builder::new()
        .name("network-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("operator network: {e}");
                        return;
                    }
                };
                let handle = axum_server::Handle::new();
                let config = axum_server::tls_rustls::RustlsConfig::from_config(es2.tls);
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                    .acceptor(axum_server::accept::NoDelayAcceptor::new());
                let es2_server = tokio::spawn(
                    axum_server::from_tcp(es2.listener)
                        .acceptor(acceptor)
                        .handle(handle.clone())
                        .serve(es2_app.into_make_service()),
                );
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = shutdown.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!("operator network stopped: {e}");
                }
                handle.shutdown();
                match es2_server.await {
                    Ok(Err(e)) => tracing::error!("BOSS ES2+ endpoint stopped: {e}"),
                    Err(e) => tracing::error!("BOSS ES2+ endpoint: {e}"),
                    Ok(Ok(())) => {}
                }
            });
        })?;
    Ok(thread)
}

fn error_response(e: &NetError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = json!({"error": {"code": e.code, "message": e.message}});
    if let Some(packet) = &e.eap_failure {
        body["eap-relay-packet"] = json!(base64::engine::general_purpose::STANDARD.encode(packet));
    }
    (status, axum::Json(body)).into_response()
}

fn json_response<T: Serialize>(status: u16, value: &T) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, axum::Json(value)).into_response()
}

/// Requests of the operator services running their network method at once. Every method
/// takes the one database lock, so more would only wait for it on threads of their own: under
/// load (hundreds of flows) the blocking pool grew to one thread per waiting request, and the
/// process spent its time creating, waking and parking them. The rest wait here, as tasks.
/// Above one, so that a request waiting for the SM-DP+ over ES2+ (no lock held) does not hold
/// up the others. ES2+ HandleDownloadProgressInfo does not pass this gate: the SM-DP+ may
/// send it while a request holding a permit waits for that SM-DP+.
const CONCURRENT_REQUESTS: usize = 4;

/// The gate of [`CONCURRENT_REQUESTS`] (one per process: it bounds threads, not the work of
/// one network; a process serving two networks shares it).
static REQUEST_GATE: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(CONCURRENT_REQUESTS);

/// Runs `f` on a blocking thread (the network's methods take the database lock and may call
/// the SM-DP+ over ES2+), at most [`CONCURRENT_REQUESTS`] at once.
async fn blocking<T: Send + 'static>(
    network: Shared,
    f: impl FnOnce(&Network) -> Result<T, NetError> + Send + 'static,
) -> Result<T, NetError> {
    let _permit = REQUEST_GATE
        .acquire()
        .await
        .map_err(|e| NetError::internal(format!("request gate closed: {e}")))?;
    tokio::task::spawn_blocking(move || f(&network))
        .await
        .map_err(|e| NetError::internal(format!("request handler failed: {e}")))?
}

async fn run_json<T: Serialize + Send + 'static>(
    network: Shared,
    f: impl FnOnce(&Network) -> Result<T, NetError> + Send + 'static,
) -> Response {
    match blocking(network, f).await {
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    }
}

/// Decodes a JSON body; names what was wrong.
fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, NetError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(NetError::bad_request(format!(
            "Content-Type must be application/json, got {ct:?}"
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        if text.starts_with("missing field") {
            NetError::new(400, "missing-parameter", text)
        } else {
            NetError::new(400, "invalid-parameter", text)
        }
    })
}

fn query_params(raw: Option<String>) -> Result<Params, NetError> {
    let mut out = Params::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(NetError::invalid(&k, "given twice"));
        }
    }
    Ok(out)
}

async fn index(State(network): State<Shared>) -> Response {
    let base = network.options().base_url.clone();
    let smdp = format!("https://{}", network.options().smdp_address);
    let es2 = network.options().smdp_es2_url.clone();
    let callback = network.options().es2_callback_url.clone();
    json_response(200, &super::server::urls(&base, &smdp, &es2, &callback))
}

async fn not_found() -> Response {
    error_response(&NetError::not_found(
        "no such endpoint; GET / lists the services",
    ))
}

fn ts43_answer(answer: Result<Ts43Answer, NetError>) -> Response {
    match answer {
        Ok(Ts43Answer::Challenge { packet, session }) => {
            let body = json!({"eap-relay-packet": base64::engine::general_purpose::STANDARD.encode(packet)});
            let mut r = (StatusCode::OK, body.to_string()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE_EAP_RELAY),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{EAP_SESSION_COOKIE}={session}; Path=/ts43; HttpOnly"
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(Ts43Answer::Document(doc)) => json_response(200, &doc),
        Err(e) => error_response(&e),
    }
}

async fn ts43_get(State(network): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let params = match query_params(raw) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    ts43_answer(blocking(network, move |n| n.ts43_get(&params)).await)
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == EAP_SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

async fn ts43_post(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with(CONTENT_TYPE_EAP_RELAY) {
        return error_response(&NetError::bad_request(format!(
            "Content-Type must be {CONTENT_TYPE_EAP_RELAY} (TS.43 EAP relay), got {ct:?}"
        )));
    }
    let packet = match relay_packet(&body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let session = session_cookie(&headers);
    ts43_answer(blocking(network, move |n| n.ts43_post(session.as_deref(), &packet)).await)
}

fn html(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Html(body),
    )
        .into_response()
}

async fn contract_get(State(network): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let action = format!("/contract/{id}");
    match blocking(network, move |n| n.contract(&id)).await {
        Ok((k, _)) => html(200, contract::render(&k, &action)),
        Err(e) => html(e.status, contract::error(e.code, &e.message)),
    }
}

async fn contract_post(
    State(network): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let decision = if ct.starts_with("application/x-www-form-urlencoded") {
        form_urlencoded::parse(&body)
            .find(|(k, _)| k == "decision")
            .map(|(_, v)| v.to_string())
    } else {
        None
    };
    let accept = match decision.as_deref() {
        Some("accept") => true,
        Some("decline") => false,
        _ => {
            let e = NetError::invalid(
                "decision",
                "post the form (application/x-www-form-urlencoded) with decision=accept or decision=decline",
            );
            return html(400, contract::error(e.code, &e.message));
        }
    };
    match blocking(network, move |n| n.answer_contract(&id, accept)).await {
        Ok(o) => html(200, contract::answered(&o.contract, &o.message)),
        Err(e) => html(e.status, contract::error(e.code, &e.message)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendSms {
    to: String,
    from: String,
    text: String,
}

async fn sms_send(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: SendSms = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    match blocking(network, move |n| n.send_sms(&req.to, &req.from, &req.text)).await {
        Ok((id, imsis)) => json_response(201, &json!({"id": id, "deliveredTo": imsis})),
        Err(e) => error_response(&e),
    }
}

async fn sms_inbox(
    State(network): State<Shared>,
    UrlPath(imsi): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let after = match query_params(raw).and_then(|p| {
        p.get("after")
            .map(|a| {
                a.parse::<i64>()
                    .map_err(|_| NetError::invalid("after", "expected a message id"))
            })
            .transpose()
    }) {
        Ok(a) => a.unwrap_or(0),
        Err(e) => return error_response(&e),
    };
    run_json(network, move |n| n.inbox(&imsi, after)).await
}

async fn provision(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: Provision = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    match blocking(network, move |n| n.provision(&req)).await {
        Ok((status, line)) => json_response(status, &line),
        Err(e) => error_response(&e),
    }
}

/// SGP.22 §5.3.5 ES2+.HandleDownloadProgressInfo from the SM-DP+ (JSON binding §6.5.2.5):
/// `204 No Content` once the BOSS took the event into account (applied or, for a repeated or
/// late one, ignored); a refused event answers `200` with a failed ES2+ header (§6.5.1.4):
/// "Profile ICCID – Unknown" for an order the BOSS did not place, "EID – Invalid
/// association", or the function input codes for a malformed body.
async fn es2_progress(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    use crate::es9p::codes;
    let refuse = |code, message: String| es2_refusal(StatusCode::OK, code, message);
    // SGP.22 §6.5.1: X-Admin-Protocol and a JSON Content-Type, else the function does not run.
    if let Some(e) = crate::smdp::header_refusal(&headers) {
        return refuse(e.code, e.message);
    }
    let req: crate::smdp::es2::HandleDownloadProgressInfoRequest =
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                let code = if e.to_string().contains("missing field") {
                    codes::MANDATORY_ELEMENT_MISSING
                } else {
                    codes::INVALID_INPUT
                };
                return refuse(code, format!("not an ES2+ HandleDownloadProgressInfo: {e}"));
            }
        };
    match tokio::task::spawn_blocking(move || network.download_progress(&req)).await {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(r)) => refuse(r.code, r.message),
        Err(e) => refuse(codes::EXECUTION_ERROR, format!("handler failed: {e}")),
    }
}

/// A failed ES2+ header (SGP.22 §6.5.1.4) with `status`, and `X-Admin-Protocol`.
fn es2_refusal(status: StatusCode, code: crate::es9p::StatusCode, message: String) -> Response {
    let body = crate::es9p::HeaderOnly {
        header: crate::es9p::ResponseHeader::failed(code, message),
    };
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        crate::es9p::HEADER_ADMIN_PROTOCOL,
        HeaderValue::from_static(crate::es9p::ADMIN_PROTOCOL),
    );
    r
}

/// HandleDownloadProgressInfo on the plain-HTTP operator port: not served there (SGP.22
/// §2.6.6, ES2+ is mutually authenticated TLS); `404` with a failed header (1.6 / 3.9, as the
/// SM-DP+ answers a function asked on the wrong port) naming the right URL.
async fn es2_progress_elsewhere(State(network): State<Shared>) -> Response {
    es2_refusal(
        StatusCode::NOT_FOUND,
        crate::es9p::codes::UNKNOWN_FUNCTION,
        format!(
            "ES2+ is served over HTTPS with mutual TLS: {}",
            network.options().es2_callback_url
        ),
    )
}

async fn es2_wrong_method(method: axum::http::Method) -> Response {
    let mut r = es2_refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::es9p::codes::INVALID_INPUT,
        format!("{method}: SGP.22 functions are called with POST"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

async fn es2_unknown_path(uri: axum::http::Uri) -> Response {
    es2_refusal(
        StatusCode::NOT_FOUND,
        crate::es9p::codes::UNKNOWN_FUNCTION,
        format!(
            "no function at {}; the operator serves only {ES2_PROGRESS_PATH}",
            uri.path()
        ),
    )
}

async fn hlr_record(State(network): State<Shared>, UrlPath(imsi): UrlPath<String>) -> Response {
    run_json(network, move |n| n.hlr_record(&imsi)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachRequest {
    imsi: String,
}

async fn hlr_attach(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: AttachRequest = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    run_json(network, move |n| n.attach(&req.imsi)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachAnswer {
    #[serde(default)]
    res: Option<String>,
    #[serde(default)]
    auts: Option<String>,
}

async fn hlr_attach_answer(
    State(network): State<Shared>,
    UrlPath(session): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: AttachAnswer = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    match blocking(network, move |n| {
        n.attach_answer(&session, req.res.as_deref(), req.auts.as_deref())
    })
    .await
    {
        Ok(Ok(attached)) => json_response(200, &attached),
        Ok(Err(challenge)) => json_response(200, &challenge),
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    to: String,
    #[serde(default)]
    answer: Option<Vec<String>>,
}

async fn call(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: CallRequest = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    run_json(network, move |n| n.call(&req.to, req.answer.as_deref())).await
}

async fn admin_subscribers(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.subscribers()).await
}

async fn admin_subscriber(
    State(network): State<Shared>,
    UrlPath(msisdn): UrlPath<String>,
) -> Response {
    run_json(network, move |n| n.subscriber(&msisdn)).await
}

async fn admin_imsi(State(network): State<Shared>, UrlPath(imsi): UrlPath<String>) -> Response {
    run_json(network, move |n| n.line(&imsi)).await
}

async fn admin_groups(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.groups()).await
}

async fn admin_orders(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.orders()).await
}

async fn admin_order_events(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.order_events()).await
}

async fn admin_transfers(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.transfers()).await
}

async fn admin_operations(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.operations()).await
}

async fn admin_sms(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.sms()).await
}

async fn admin_contracts(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.contracts()).await
}

async fn ota_send(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: super::ota::OtaRequest = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    match blocking(network, move |n| n.ota_send(&req)).await {
        Ok(job) => json_response(201, &job),
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PorRequest {
    job_id: String,
    por: String,
}

async fn ota_por(State(network): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: PorRequest = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    run_json(network, move |n| n.ota_por(&req.job_id, &req.por)).await
}

async fn admin_ota(State(network): State<Shared>) -> Response {
    run_json(network, |n| n.ota_jobs()).await
}
