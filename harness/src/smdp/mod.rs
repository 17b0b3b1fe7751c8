//! The SM-DP+ of simlab's emulated network: GSMA SGP.22 v2.5 §3.1 (profile download), §5.6 ES9+
//! (served over HTTPS with the JSON binding of §6.5), §5.3 ES2+ (operator orders, §6.5.2.1–5),
//! §2.5 / §5.5 bound profile packages.
//!
//! - [`Smdp`] is the server logic, synchronous and transport-free: one method per ES9+ / ES2+
//!   function taking and returning the JSON types of [`crate::es9p`] / [`es2`]. Tests and
//!   in-process benchmarks call it directly.
//! - [`start`] serves it over HTTPS (axum + rustls/ring, CERT.DP.TLS of the PKI) on its own
//!   tokio runtime thread and returns a [`RunningSmdp`] handle usable from synchronous code:
//!   ES9+ on one port (server authentication only), ES2+ on another that requires the
//!   operator's client certificate ([`crate::pki::operator`]; see [`http`] for why two ports).
//! - Orders, sessions and events live in SQLite ([`store`]); profiles are TS.48 SAIP templates
//!   personalised per order (fresh ICCID, IMSI, K/OPc, MSISDN) with
//!   [`simlab_emulator::saip::personalise`]. Every template is also downloadable with its file
//!   stem as matching ID, unchanged (as other test SM-DP+s do).

pub mod bpp;
pub mod certs;
pub mod es2;
mod es9;
mod http;

pub(crate) use http::header_refusal;
pub use http::{es2_client_tls_config, es2_tls_config, tls_config, DRAIN_LIMIT, MAX_BODY};
pub mod store;

pub use es2::{
    CancelOrderRequest, ConfirmOrderRequest, ConfirmOrderResponse, DownloadOrderRequest,
    DownloadOrderResponse, Es2pClient, ReleaseProfileRequest,
};
pub use store::{NotificationRecord, Order, OrderState, ProgressEvent, Store};

use crate::defaults::Files;
use crate::es9p::{codes, StatusCode};
use crate::pki::{self, Role};
use anyhow::Context as _;
use certs::TrustedCi;
use der::Decode as _;
use simlab_emulator::rsp::ecdsa::SigningKey;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// hostId of the control reference template (SGP.22 §5.5.1: OctetTo16; any value).
pub const HOST_ID: &[u8] = b"simlab-smdp";
/// serviceProviderName put in the profile metadata.
pub const SERVICE_PROVIDER_NAME: &str = "simlab";
/// Default confirmation-code attempts per order before it goes to Error.
pub const DEFAULT_CC_RETRY_LIMIT: u32 = 3;
/// Default download attempts (packages bound per order) before refusing.
pub const DEFAULT_DOWNLOAD_RETRY_LIMIT: u32 = 5;
/// Default lifetime of an ES9+ session, from InitiateAuthentication on. SGP.22 sets none; it
/// must cover a user reading the profile metadata and typing a confirmation code.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(600);

/// How to run an SM-DP+.
#[derive(Debug, Clone)]
pub struct SmdpOptions {
    /// Where ES9+ listens (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where ES2+ listens (port 0 picks a free one); mutual TLS with the operator CA.
    pub es2_listen: SocketAddr,
    /// The operator CA certificate (DER) ES2+ clients must chain to; `None`: the PKI's
    /// `Operator/CERT_OPERATOR_CA_NIST.der`.
    pub operator_ca: Option<PathBuf>,
    /// Host name or address to advertise (activation codes, serverAddress); default: the
    /// listen IP (`127.0.0.1` when listening on all interfaces).
    pub public_host: Option<String>,
    /// PKI in the SGP.26 layout (CI, DPauth, DPpb, DPtls with keys): a directory, or the
    /// built-in test PKI ([`Files::pki`]).
    pub pki_dir: Files,
    /// Curve of DPauth/DPpb (TLS always uses the NIST DPtls: rustls has no brainpool).
    pub curve: pki::Curve,
    /// SQLite file; `None` = in memory.
    pub db: Option<PathBuf>,
    /// SAIP templates (`*.der`): a directory, or the built-in TS.48 ones ([`Files::templates`]).
    pub templates_dir: Files,
    /// Send `A2` ReplaceSessionKeys in every bound package.
    pub replace_session_keys: bool,
    /// Where ES2+.HandleDownloadProgressInfo goes: an `https://` URL, called with mutual TLS
    /// (CERT.DP.TLS as client certificate; the operator's server certificate must chain to
    /// the operator CA, see `operator_ca`). Events are recorded in the database either way.
    pub es2_callback_url: Option<String>,
    pub cc_retry_limit: u32,
    pub download_retry_limit: u32,
    /// How long an ES9+ session lives; afterwards its functions answer "TransactionId –
    /// Unknown" (8.10.1 / 3.9) and it is purged.
    pub session_ttl: Duration,
}

impl SmdpOptions {
    /// Loopback, any port, NIST, in-memory database, ReplaceSessionKeys on.
    pub fn new(pki_dir: impl Into<Files>, templates_dir: impl Into<Files>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            es2_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            operator_ca: None,
            public_host: None,
            pki_dir: pki_dir.into(),
            curve: pki::Curve::Nist,
            db: None,
            templates_dir: templates_dir.into(),
            replace_session_keys: true,
            es2_callback_url: None,
            cc_retry_limit: DEFAULT_CC_RETRY_LIMIT,
            download_retry_limit: DEFAULT_DOWNLOAD_RETRY_LIMIT,
            session_ttl: DEFAULT_SESSION_TTL,
        }
    }
}

/// A function that failed with an SGP.22 status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub code: StatusCode,
    pub message: String,
}

impl FunctionError {
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl FunctionError {
    /// The error an ES9+ client sees for this failure (`function` is the ES9+ function name).
    pub fn into_es9p(self, function: &'static str) -> crate::es9p::Es9pError {
        crate::es9p::Es9pError::Failed {
            function,
            status: crate::es9p::STATUS_FAILED.into(),
            subject_code: self.code.subject.into(),
            reason_code: self.code.reason.into(),
            message: Some(self.message),
        }
    }
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for FunctionError {}

impl From<store::StoreError> for FunctionError {
    fn from(e: store::StoreError) -> Self {
        FunctionError::new(codes::EXECUTION_ERROR, e.to_string())
    }
}

/// Where the SM-DP+'s time went, summed over all calls (wall time inside each step, measured
/// on the calling thread; on an idle machine this is CPU time).
#[derive(Debug, Default)]
pub struct Timings {
    sign: AtomicU64,
    verify: AtomicU64,
    key_agreement: AtomicU64,
    protection: AtomicU64,
    personalise: AtomicU64,
    db: AtomicU64,
    total: AtomicU64,
    calls: AtomicU64,
}

/// A snapshot of [`Timings`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimingsSnapshot {
    /// ECDSA signing (serverSignature1, smdpSignature2, BF23 smdpSign).
    pub sign: Duration,
    /// ECDSA verification (certificate chain, euiccSignature1/2, notifications).
    pub verify: Duration,
    /// One-time key generation and ECDH.
    pub key_agreement: Duration,
    /// KDF, AES-CBC and CMAC of the segments.
    pub protection: Duration,
    /// SAIP personalisation of the package.
    pub personalise: Duration,
    /// SQLite (sessions and orders).
    pub db: Duration,
    /// Everything inside the ES9+/ES2+ functions.
    pub total: Duration,
    pub calls: u64,
}

impl TimingsSnapshot {
    /// Time not in any named step (JSON is outside: the HTTP layer does it).
    pub fn other(&self) -> Duration {
        self.total.saturating_sub(
            self.sign
                + self.verify
                + self.key_agreement
                + self.protection
                + self.personalise
                + self.db,
        )
    }
}

impl std::fmt::Display for TimingsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "total {:.3} ms in {} calls: sign {:.3}, verify {:.3}, key agreement {:.3}, \
             BPP protection {:.3}, personalise {:.3}, db {:.3}, other {:.3} (ms)",
            ms(self.total),
            self.calls,
            ms(self.sign),
            ms(self.verify),
            ms(self.key_agreement),
            ms(self.protection),
            ms(self.personalise),
            ms(self.db),
            ms(self.other())
        )
    }
}

fn add(slot: &AtomicU64, d: Duration) {
    slot.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

fn get(slot: &AtomicU64) -> Duration {
    Duration::from_nanos(slot.load(Ordering::Relaxed))
}

impl Timings {
    pub fn snapshot(&self) -> TimingsSnapshot {
        TimingsSnapshot {
            sign: get(&self.sign),
            verify: get(&self.verify),
            key_agreement: get(&self.key_agreement),
            protection: get(&self.protection),
            personalise: get(&self.personalise),
            db: get(&self.db),
            total: get(&self.total),
            calls: self.calls.load(Ordering::Relaxed),
        }
    }

    pub fn reset(&self) {
        for slot in [
            &self.sign,
            &self.verify,
            &self.key_agreement,
            &self.protection,
            &self.personalise,
            &self.db,
            &self.total,
            &self.calls,
        ] {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

/// The SM-DP+ logic: keys, certificates, templates, store.
#[derive(Debug)]
pub struct Smdp {
    address: String,
    port: Option<u16>,
    accepted_hosts: Vec<String>,
    dp_auth: SigningKey,
    dp_auth_cert: Vec<u8>,
    dp_pb: SigningKey,
    dp_pb_cert: Vec<u8>,
    ci: TrustedCi,
    /// EUM certificates verified under `ci` (checked once each, not once per download).
    eums: certs::EumCache,
    smdp_oid: Option<Vec<u8>>,
    replace_session_keys: bool,
    cc_retry_limit: u32,
    download_retry_limit: u32,
    session_ttl: Duration,
    templates: BTreeMap<String, Template>,
    store: Mutex<Store>,
    /// The store is in memory: no file to sync, no other process holding its lock.
    store_in_memory: bool,
    timings: Timings,
    progress: es2::ProgressSink,
}

fn read(dir: &Files, rel: &Path) -> anyhow::Result<Vec<u8>> {
    dir.read(rel)
        .with_context(|| format!("reading {}", dir.location(rel).display()))
}

fn signing_key(dir: &Files, role: Role, curve: pki::Curve) -> anyhow::Result<SigningKey> {
    let rel = pki::key_path(role, curve);
    let path = dir.location(&rel);
    let text = String::from_utf8(read(dir, &rel)?)
        .with_context(|| format!("{} is not PEM text", path.display()))?;
    SigningKey::from_pem(&text).with_context(|| format!("private key {}", path.display()))
}

/// DNS and IP names of a certificate's subjectAltName (the names TLS clients may use).
fn san_names(cert_der: &[u8]) -> Vec<String> {
    let Ok(cert) = Certificate::from_der(cert_der) else {
        return Vec::new();
    };
    let Ok(Some((_, san))) = cert.tbs_certificate.get::<SubjectAltName>() else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|n| match n {
            GeneralName::DnsName(d) => Some(d.as_str().to_ascii_lowercase()),
            GeneralName::IpAddress(ip) => match ip.as_bytes() {
                [a, b, c, d] => Some(format!("{a}.{b}.{c}.{d}")),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A profile template (SAIP package) and what the SM-DP+ needs to know of it, read once
/// when the server starts rather than on every download.
#[derive(Debug, Clone)]
pub struct Template {
    pub der: Arc<Vec<u8>>,
    /// The package's own ICCID (the one a download by file stem installs).
    pub iccid: String,
    /// Whether personalisation can write an MSISDN (the package has EF.MSISDN).
    pub has_msisdn: bool,
}

impl Template {
    /// Decodes `der` once; a package that does not decode is refused with its reason.
    pub fn new(der: Vec<u8>) -> anyhow::Result<Self> {
        let iccid = simlab_emulator::saip::decode(&der)?.header.iccid;
        let probe = simlab_emulator::saip::Personalisation {
            iccid: iccid.clone(),
            imsi: None,
            k: None,
            opc: None,
            msisdn: Some("+10000000000".into()),
        };
        let has_msisdn = simlab_emulator::saip::personalise(&der, &probe).is_ok();
        Ok(Self {
            der: Arc::new(der),
            iccid,
            has_msisdn,
        })
    }
}

/// Loads every `*.der` of `dir`, keyed by file stem. The built-in templates never change, so
/// they are decoded once per process: decoding all of them is ~30 ms of CPU, which was most of
/// the cost of starting an SM-DP+ (the flows start a fresh network for every scenario).
pub fn load_templates(dir: &Files) -> anyhow::Result<BTreeMap<String, Template>> {
    static BUILT_IN: Mutex<Option<BTreeMap<String, Template>>> = Mutex::new(None);
    if *dir != Files::templates() {
        return decode_templates(dir);
    }
    let mut cached = BUILT_IN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(t) = cached.as_ref() {
        return Ok(t.clone());
    }
    let templates = decode_templates(dir)?;
    *cached = Some(templates.clone());
    Ok(templates)
}

fn decode_templates(dir: &Files) -> anyhow::Result<BTreeMap<String, Template>> {
    let mut out = BTreeMap::new();
    let files = dir
        .with_extension("der")
        .with_context(|| format!("templates directory {dir}"))?;
    for (name, der) in files {
        let stem = name.trim_end_matches(".der");
        let template = Template::new(der)
            .with_context(|| format!("profile template {}", dir.location(&name).display()))?;
        out.insert(stem.to_owned(), template);
    }
    Ok(out)
}

impl Smdp {
    /// The SM-DP+ of `opts`, advertising `address` (`host:port`) in serverSigned1, profile
    /// metadata and activation codes.
    pub fn open(opts: &SmdpOptions, address: &str) -> anyhow::Result<Smdp> {
        let dir = &opts.pki_dir;
        let curve = opts.curve;
        let ci_der = read(dir, &pki::cert_path(Role::Ci, curve))?;
        let pki = pki::Pki::load_from(dir, curve).with_context(|| format!("PKI {dir}"))?;
        let ci = TrustedCi::from_certificate(&ci_der).context("CI certificate")?;
        let tls_cert = read(dir, &pki::cert_path(Role::DpTls, pki::Curve::Nist))
            .unwrap_or_else(|_| pki.dp_tls.cert_der.clone());
        let (host, port) = split_address(address);
        let mut accepted_hosts = san_names(&tls_cert);
        accepted_hosts.extend([
            host.to_ascii_lowercase(),
            "localhost".into(),
            "127.0.0.1".into(),
        ]);
        let templates = load_templates(&opts.templates_dir)?;
        // SGP.22 §2.6.6: the SM-DP+ → operator direction of ES2+ is mutual TLS too. Without
        // an operator CA there is no callback (an SM-DP+ used without one still opens).
        let callback_tls = operator_ca(opts)
            .and_then(|ca| http::es2_client_tls_config(dir, &ca))
            .map_err(|e| format!("{e:#}"));
        let progress = es2::ProgressSink::new(opts.es2_callback_url.clone(), callback_tls)?;
        let store = Store::open(opts.db.as_deref())?;
        Ok(Smdp {
            address: address.to_owned(),
            port,
            accepted_hosts,
            dp_auth: signing_key(dir, Role::DpAuth, curve)?,
            dp_auth_cert: pki.dp_auth.cert_der.clone(),
            dp_pb: signing_key(dir, Role::DpPb, curve)?,
            dp_pb_cert: pki.dp_pb.cert_der.clone(),
            // SGP.22 §4.5.2.1.0.3: the SM-DP+ OID is the registeredID of CERT.DPauth.
            smdp_oid: simlab_emulator::euicc::cert::registered_id(&pki.dp_auth.cert_der)
                .ok()
                .flatten(),
            eums: certs::EumCache::new(ci.clone()),
            ci,
            replace_session_keys: opts.replace_session_keys,
            cc_retry_limit: opts.cc_retry_limit,
            download_retry_limit: opts.download_retry_limit,
            session_ttl: opts.session_ttl,
            templates,
            store: Mutex::new(store),
            store_in_memory: opts.db.is_none(),
            timings: Timings::default(),
            progress,
        })
    }

    /// The advertised address (`host:port`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// An activation code for `matching_id` (SGP.22 §4.1: `LPA:1$<SM-DP+ address>$<matching ID>`).
    pub fn activation_code(&self, matching_id: &str) -> String {
        format!("LPA:1${}${matching_id}", self.address)
    }

    /// The template file stems (each downloadable by its stem as matching ID).
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// Whether a function may wait for something other than this process's CPU: a database
    /// file (fsync, the lock held by `simlab network order --db` in another process) or the
    /// operator's ES2+ callback, which is called during the function. The HTTPS server runs
    /// functions that cannot wait on its async workers, the others on the blocking pool.
    pub fn may_block(&self) -> bool {
        !self.store_in_memory || self.es2_callback_url().is_some()
    }

    /// Runs `f` on the store under its lock, timing it as database time.
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, store::StoreError>,
    ) -> Result<T, FunctionError> {
        let started = Instant::now();
        let guard = self
            .store
            .lock()
            .map_err(|_| FunctionError::new(codes::EXECUTION_ERROR, "store lock poisoned"))?;
        let result = f(&guard);
        drop(guard);
        add(&self.timings.db, started.elapsed());
        Ok(result?)
    }

    /// Changes order `id` in one atomic step ([`Store::transition`]), timed as database time.
    pub fn transition<T>(
        &self,
        id: i64,
        change: impl FnOnce(&mut Order) -> Result<T, FunctionError>,
    ) -> Result<(Order, Result<T, FunctionError>), FunctionError> {
        self.with_store(|s| s.transition(id, change))
    }

    /// ES9+ sessions stored (expired ones included until purged).
    pub fn session_count(&self) -> Result<u64, FunctionError> {
        self.with_store(Store::session_count)
    }

    /// Every order, oldest first.
    pub fn orders(&self) -> Result<Vec<Order>, FunctionError> {
        self.with_store(Store::orders)
    }

    pub fn order_by_iccid(&self, iccid: &str) -> Result<Option<Order>, FunctionError> {
        self.with_store(|s| s.order_by_iccid(iccid))
    }

    pub fn notifications(&self) -> Result<Vec<NotificationRecord>, FunctionError> {
        self.with_store(Store::notifications)
    }

    pub fn progress_events(&self) -> Result<Vec<ProgressEvent>, FunctionError> {
        self.with_store(Store::progress_events)
    }

    /// Where ES2+.HandleDownloadProgressInfo goes from now on (`None`: nowhere; events are
    /// still recorded). For an operator that starts after its SM-DP+. Refused (and nothing
    /// changed) unless `https://` with a usable operator CA (SGP.22 §2.6.6: mutual TLS).
    pub fn set_es2_callback_url(&self, url: Option<String>) -> anyhow::Result<()> {
        self.progress.set_url(url)
    }

    /// Where ES2+.HandleDownloadProgressInfo goes.
    pub fn es2_callback_url(&self) -> Option<String> {
        self.progress.url()
    }

    /// The exact profile package an order downloads (the template, personalised when the order
    /// is personalised).
    pub fn profile_package(&self, order: &Order) -> Result<Vec<u8>, FunctionError> {
        let template = self.templates.get(&order.template).ok_or_else(|| {
            FunctionError::new(
                codes::EXECUTION_ERROR,
                format!("template {} is gone", order.template),
            )
        })?;
        if !order.personalised {
            return Ok(template.der.as_ref().clone());
        }
        let started = Instant::now();
        let p = simlab_emulator::saip::Personalisation {
            iccid: order.iccid.clone(),
            imsi: order.imsi.clone(),
            k: order.k,
            opc: order.opc,
            msisdn: order.msisdn.clone(),
        };
        let result = simlab_emulator::saip::personalise(&template.der, &p);
        add(&self.timings.personalise, started.elapsed());
        result.map_err(|e| {
            FunctionError::new(
                codes::EXECUTION_ERROR,
                format!("personalising {}: {e}", order.template),
            )
        })
    }

    /// Whether `smdp_address` (as sent by an LPA: host, optionally `:port`) names this server;
    /// case-insensitive (SGP.22 §5.6.1).
    fn address_matches(&self, smdp_address: &str) -> bool {
        let (host, port) = split_address(smdp_address.trim());
        let host = host.to_ascii_lowercase();
        let port_ok = match (port, self.port) {
            (Some(p), Some(ours)) => p == ours,
            (None, Some(ours)) => ours == HTTPS_PORT,
            (_, None) => true,
        };
        port_ok && self.accepted_hosts.contains(&host)
    }

    fn time<T>(&self, slot: &AtomicU64, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        add(slot, started.elapsed());
        out
    }
}

/// Default HTTPS port: an address without a port means this one.
const HTTPS_PORT: u16 = 443;

/// Splits `host[:port]` (IPv6 in brackets allowed).
pub fn split_address(address: &str) -> (&str, Option<u16>) {
    if let Some(rest) = address.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (address, None),
        },
        _ => (address, None),
    }
}

/// A running HTTPS SM-DP+ (its own tokio runtime thread). Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSmdp {
    /// `host:port` to put in activation codes (ES9+).
    pub address: String,
    /// `host:port` of ES2+ (the operator's port, mutual TLS).
    pub es2_address: String,
    /// The root a client must trust for the TLS connection (the CI that issued CERT.DP.TLS).
    pub ca_cert_der: Vec<u8>,
    /// Where that root is: a path on disk, or `vectors/pki/… (built in)`.
    pub ca_cert_path: PathBuf,
    smdp: Arc<Smdp>,
    handle: axum_server::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningSmdp {
    pub fn smdp(&self) -> &Arc<Smdp> {
        &self.smdp
    }

    /// `https://host:port` of ES9+.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// `https://host:port` of ES2+.
    pub fn es2_url(&self) -> String {
        format!("https://{}", self.es2_address)
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningSmdp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds `addr` for one interface; warns when it is reachable from other machines.
fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("{what}: listening on {addr}"))?;
    listener.set_nonblocking(true)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "{what} listens on {addr}, reachable from other machines: this SM-DP+ is a test \
             server whose private keys are public test keys"
        );
    }
    Ok(listener)
}

/// The operator CA ES2+ trusts: `opts.operator_ca` (DER or PEM), else the PKI's.
fn operator_ca(opts: &SmdpOptions) -> anyhow::Result<Vec<u8>> {
    let Some(path) = &opts.operator_ca else {
        return Ok(pki::operator::load_ca(opts.pki_dir.clone())?);
    };
    let bytes = std::fs::read(path)
        .with_context(|| format!("operator CA certificate {}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") {
        let text = String::from_utf8_lossy(&bytes);
        let (label, der) = der::pem::decode_vec(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("operator CA {}: {e}", path.display()))?;
        anyhow::ensure!(
            label == "CERTIFICATE",
            "operator CA {}: a PEM {label}, expected CERTIFICATE",
            path.display()
        );
        return Ok(der);
    }
    Ok(bytes)
}

/// Starts an SM-DP+ over HTTPS: ES9+ on `opts.listen`, ES2+ (mutual TLS) on
/// `opts.es2_listen`.
pub fn start(opts: SmdpOptions) -> anyhow::Result<RunningSmdp> {
    let listener = bind(opts.listen, "ES9+")?;
    let es2_listener = bind(opts.es2_listen, "ES2+")?;
    let local = listener.local_addr()?;
    let host = opts.public_host.clone().unwrap_or_else(|| {
        if local.ip().is_unspecified() {
            "127.0.0.1".into()
        } else {
            local.ip().to_string()
        }
    });
    let address = format!("{host}:{}", local.port());
    let es2_local = es2_listener.local_addr()?;
    let es2_host = if es2_local.ip().is_unspecified() {
        "127.0.0.1".into()
    } else {
        es2_local.ip().to_string()
    };
    let es2_address = format!("{es2_host}:{}", es2_local.port());
    let smdp = Arc::new(Smdp::open(&opts, &address)?);
    let tls = http::tls_config(&opts.pki_dir)?;
    let es2_tls = http::es2_tls_config(&opts.pki_dir, &operator_ca(&opts)?)?;
    let ca_rel = pki::cert_path(Role::Ci, pki::Curve::Nist);
    let ca_cert_path = opts.pki_dir.location(&ca_rel);
    let ca_cert_der = read(&opts.pki_dir, &ca_rel)?;
    let handle = axum_server::Handle::new();
    let listeners = vec![
        http::Listener {
            socket: listener,
            tls,
            interface: http::Interface::Es9Plus,
        },
        http::Listener {
            socket: es2_listener,
            tls: es2_tls,
            interface: http::Interface::Es2Plus,
        },
    ];
    let thread = http::spawn(listeners, Arc::clone(&smdp), handle.clone())?;
    Ok(RunningSmdp {
        address,
        es2_address,
        ca_cert_der,
        ca_cert_path,
        smdp,
        handle,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::host_and_port("127.0.0.1:8443", "127.0.0.1", Some(8443))]
    #[case::host_only("smdp.example.com", "smdp.example.com", None)]
    #[case::ipv6("[::1]:443", "::1", Some(443))]
    #[case::bad_port("host:x", "host:x", None)]
    fn splits_addresses(#[case] a: &str, #[case] host: &str, #[case] port: Option<u16>) {
        assert_eq!(split_address(a), (host, port));
    }

    #[test]
    fn only_functions_that_cannot_wait_are_run_on_the_async_workers() {
        let opts = || SmdpOptions::new(Files::pki(), Files::templates());
        let in_memory = Smdp::open(&opts(), "127.0.0.1:8443").unwrap();
        assert!(!in_memory.may_block(), "in-memory store, no callback");
        // An operator callback is called during the functions: they may wait for it.
        in_memory
            .set_es2_callback_url(Some("https://127.0.0.1:9/es2".into()))
            .unwrap();
        assert!(in_memory.may_block());
        in_memory.set_es2_callback_url(None).unwrap();
        assert!(!in_memory.may_block());
        // A database file: fsync, and the lock another process may hold.
        let dir = tempfile::tempdir().unwrap();
        let mut file = opts();
        file.db = Some(dir.path().join("smdp.sqlite"));
        assert!(Smdp::open(&file, "127.0.0.1:8443").unwrap().may_block());
    }
}
