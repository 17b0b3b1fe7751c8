//! Starting the whole emulated network in one process: the SM-DP+ over HTTPS
//! ([`crate::smdp::start`]) and the operator services over HTTP ([`super::http`]), sharing one
//! SQLite database. Used by `simlab network serve` and in-process by the flows ("embedded"
//! network, port 0).

use super::http;
use super::service::{Network, ServiceOptions, TemplateAlgorithm};
use crate::defaults::Files;
use crate::smdp::{self, Es2pClient, RunningSmdp, SmdpOptions};
use anyhow::Context as _;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Default address of the operator services.
pub const DEFAULT_OPERATOR_LISTEN: &str = "127.0.0.1:8080";
/// Default address of the BOSS's ES2+ endpoint (HTTPS, mutual TLS), where the SM-DP+ sends
/// HandleDownloadProgressInfo.
pub const DEFAULT_OPERATOR_ES2_LISTEN: &str = "127.0.0.1:8445";
/// Default profile template the BOSS orders: TS.48 v4 SAIP 2.3 with EF.MSISDN.
pub const DEFAULT_PROFILE_TEMPLATE: &str = "TS48v4_SAIP2.3_BERTLV";
/// Default lifetime of one-time codes (the issue: 5 minutes).
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(300);
/// Default wrong tries before a code request locks.
pub const DEFAULT_CODE_TRIES: u32 = 3;
/// Default token lifetime: one day.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(86_400);
/// Default lifetime of a transfer's reservation of its number: one hour to download and
/// enable the profile on the new device (the one-time code before it lives 5 minutes).
pub const DEFAULT_TRANSFER_TTL: Duration = Duration::from_secs(3600);
/// Longest wait between two sweeps for lapsed transfers.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How to run the network.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// The SM-DP+ (its `db` is the network's database too; its `es2_callback_url` is set to
    /// the BOSS by [`start`]).
    pub smdp: SmdpOptions,
    /// Where the operator services listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where the BOSS's ES2+ endpoint listens (HTTPS with mutual TLS, SGP.22 §2.6.6; port 0
    /// picks a free one): the SM-DP+'s HandleDownloadProgressInfo (§5.3.5) arrives there.
    pub es2_listen: SocketAddr,
    /// Host to put in URLs (contract pages); default the listen IP.
    pub public_host: Option<String>,
    pub code_ttl: Duration,
    pub code_tries: u32,
    pub token_ttl: Duration,
    /// Lifetime of a transfer's reservation of its number (see [`DEFAULT_TRANSFER_TTL`]).
    pub transfer_ttl: Duration,
    pub profile_template: String,
    /// Use an SM-DP+ running elsewhere instead of starting one: the network then reaches it
    /// over ES2+ only (its orders, and their progress over ES2+.HandleDownloadProgressInfo,
    /// which that SM-DP+ must send to [`RunningNetwork::es2_callback_url`]), and keeps its
    /// tables in a database of its own. `smdp` still gives the PKI (the BOSS's client
    /// certificate) and the templates (the AKA algorithm of the profile the BOSS orders).
    pub remote_smdp: Option<RemoteSmdp>,
}

/// An SM-DP+ the network does not run.
#[derive(Debug, Clone)]
pub struct RemoteSmdp {
    /// Its ES2+ (`https://host:port`; mutual TLS with the PKI's operator certificate).
    pub es2_url: String,
    /// Its ES9+ address (`host:port`), as activation codes name it.
    pub address: String,
    /// The root its TLS certificates chain to (DER).
    pub ca_cert_der: Vec<u8>,
    /// The network's database file (`None`: in memory).
    pub db: Option<std::path::PathBuf>,
}

impl NetworkOptions {
    /// Defaults around an SM-DP+ configuration.
    pub fn new(smdp: SmdpOptions) -> Self {
        Self {
            smdp,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            es2_listen: SocketAddr::from(([127, 0, 0, 1], 8445)),
            public_host: None,
            code_ttl: DEFAULT_CODE_TTL,
            code_tries: DEFAULT_CODE_TRIES,
            token_ttl: DEFAULT_TOKEN_TTL,
            transfer_ttl: DEFAULT_TRANSFER_TTL,
            profile_template: DEFAULT_PROFILE_TEMPLATE.into(),
            remote_smdp: None,
        }
    }

    /// The flows' embedded network with simlab's built-in test PKI and TS.48 templates:
    /// loopback, free ports, in-memory database.
    pub fn built_in() -> Self {
        let mut o = Self::new(SmdpOptions::new(Files::pki(), Files::templates()));
        o.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        o.es2_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        o
    }

    /// As [`Self::built_in`] with the PKI and templates of `vectors` (a `vectors/` directory).
    pub fn embedded(vectors: &Path) -> Self {
        let mut o = Self::new(SmdpOptions::new(
            vectors.join("pki"),
            vectors.join("profiles"),
        ));
        o.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        o.es2_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        o
    }
}

/// The running network. Dropping it stops both servers.
#[derive(Debug)]
pub struct RunningNetwork {
    smdp: Option<RunningSmdp>,
    remote: Option<RemoteSmdp>,
    network: Arc<Network>,
    operator_url: String,
    es2_callback_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Dropped to stop the sweeper of lapsed transfers.
    sweeper_stop: Option<std::sync::mpsc::Sender<()>>,
    sweeper: Option<std::thread::JoinHandle<()>>,
}

impl RunningNetwork {
    /// `http://host:port` of the operator services.
    pub fn operator_url(&self) -> &str {
        &self.operator_url
    }

    /// The SM-DP+ (`host:port`, as activation codes carry it).
    pub fn smdp_address(&self) -> &str {
        match (&self.smdp, &self.remote) {
            (Some(s), _) => s.address.as_str(),
            (None, Some(r)) => r.address.as_str(),
            (None, None) => "",
        }
    }

    /// The TLS root an LPA must trust for the SM-DP+.
    pub fn smdp_ca_cert_der(&self) -> &[u8] {
        match (&self.smdp, &self.remote) {
            (Some(s), _) => s.ca_cert_der.as_slice(),
            (None, Some(r)) => r.ca_cert_der.as_slice(),
            (None, None) => &[],
        }
    }

    /// The SM-DP+ running in this process (`None` with [`NetworkOptions::remote_smdp`]).
    pub fn smdp(&self) -> Option<&RunningSmdp> {
        self.smdp.as_ref()
    }

    /// The logic, for in-process checks.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    /// Where an SM-DP+ sends ES2+.HandleDownloadProgressInfo for this network's BOSS:
    /// `https://host:port/gsma/rsp2/es2plus/handleDownloadProgressInfo` (mutual TLS: the
    /// operator's server certificate, an SM-DP+ TLS certificate required of the caller).
    pub fn es2_callback_url(&self) -> String {
        self.es2_callback_url.clone()
    }

    /// A client of the operator services.
    pub fn client(&self) -> super::client::NetworkClient {
        super::client::NetworkClient::new(&self.operator_url)
    }

    /// Every URL of the network.
    pub fn urls(&self) -> Value {
        urls(
            &self.operator_url,
            &format!("https://{}", self.smdp_address()),
            &self.network.options().smdp_es2_url,
            &self.es2_callback_url,
        )
    }

    /// Stops both servers and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        drop(self.sweeper_stop.take());
        if let Some(t) = self.sweeper.take() {
            let _ = t.join();
        }
        if let Some(s) = self.smdp.take() {
            s.stop();
        }
    }
}

impl Drop for RunningNetwork {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Every service URL (`GET /` answers this).
pub fn urls(operator: &str, smdp: &str, es2: &str, es2_callback: &str) -> Value {
    json!({
        "urls": {
            "entitlement": format!("{operator}/ts43"),
            "contract": format!("{operator}/contract/{{id}}"),
            "smscSend": format!("{operator}/smsc/messages"),
            "smscInbox": format!("{operator}/smsc/inbox/{{imsi}}"),
            "bossSubscribers": format!("{operator}/boss/subscribers"),
            "es2Callback": es2_callback,
            "hlr": format!("{operator}/hlr/imsi/{{imsi}}"),
            "hlrAttach": format!("{operator}/hlr/attach"),
            "calls": format!("{operator}/calls"),
            "admin": format!("{operator}/admin/{{subscribers|groups|orders|order-events|transfers|operations|sms|contracts}}"),
            "es9plus": format!("{smdp}/gsma/rsp2/es9plus/"),
            "es2plus": format!("{es2}/gsma/rsp2/es2plus/"),
        }
    })
}

/// The AKA algorithm of a template (its first PE-AKAParameter with an algorithm).
pub fn template_algorithm(dir: &Files, template: &str) -> anyhow::Result<TemplateAlgorithm> {
    let file = format!("{template}.der");
    let path = dir.location(&file);
    let der = dir
        .read(&file)
        .with_context(|| format!("profile template {}", path.display()))?;
    let package = simlab_emulator::saip::decode(&der)
        .with_context(|| format!("profile template {}", path.display()))?;
    match package.aka.iter().find_map(|a| a.algorithm) {
        Some(simlab_emulator::saip::AkaAlgorithm::Milenage) => Ok(TemplateAlgorithm::Milenage),
        Some(simlab_emulator::saip::AkaAlgorithm::UsimTestAlgorithm) => Ok(TemplateAlgorithm::Xor),
        other => anyhow::bail!(
            "profile template {}: AKA algorithm {other:?} is not supported by the network (Milenage or the XOR test algorithm)",
            path.display()
        ),
    }
}

/// Starts the SM-DP+ (unless [`NetworkOptions::remote_smdp`] names one elsewhere) and the
/// operator services.
pub fn start(mut opts: NetworkOptions) -> anyhow::Result<RunningNetwork> {
    let algorithm = template_algorithm(&opts.smdp.templates_dir, &opts.profile_template)?;
    let listener = std::net::TcpListener::bind(opts.listen)
        .with_context(|| format!("listening on {}", opts.listen))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let host = opts.public_host.clone().unwrap_or_else(|| {
        if local.ip().is_unspecified() {
            "127.0.0.1".into()
        } else {
            local.ip().to_string()
        }
    });
    let operator_url = format!("http://{host}:{}", local.port());
    let es2_listener = std::net::TcpListener::bind(opts.es2_listen)
        .with_context(|| format!("BOSS ES2+ endpoint: listening on {}", opts.es2_listen))?;
    es2_listener.set_nonblocking(true)?;
    let es2_local = es2_listener.local_addr()?;
    let es2_host = match &opts.public_host {
        Some(h) => h.clone(),
        None if es2_local.ip().is_unspecified() => "127.0.0.1".into(),
        None if es2_local.is_ipv6() => format!("[{}]", es2_local.ip()),
        None => es2_local.ip().to_string(),
    };
    let es2_callback_url = format!(
        "https://{es2_host}:{}{}",
        es2_local.port(),
        http::ES2_PROGRESS_PATH
    );
    let service = |es2_url: String, smdp_address: String| ServiceOptions {
        code_ttl: opts.code_ttl,
        code_tries: opts.code_tries,
        token_ttl: opts.token_ttl,
        transfer_ttl: opts.transfer_ttl,
        profile_template: opts.profile_template.clone(),
        base_url: operator_url.clone(),
        smdp_es2_url: es2_url,
        es2_callback_url: es2_callback_url.clone(),
        smdp_address,
    };
    // The root the SM-DP+'s TLS certificate (its client certificate on the BOSS's ES2+
    // endpoint) chains to.
    let (running_smdp, network, smdp_root) = match &opts.remote_smdp {
        Some(remote) => {
            // SGP.22 §2.6.6: the operator's client certificate of the PKI, and the SM-DP+'s
            // TLS root as given.
            let identity = crate::pki::OperatorIdentity::load(opts.smdp.pki_dir.clone())
                .context("the BOSS's ES2+ client certificate (Operator/ of the PKI)")?;
            let es2 = Es2pClient::new(&remote.es2_url, &[&remote.ca_cert_der], &identity)
                .context("ES2+ client of the BOSS")?;
            let network = Network::standalone(
                remote.db.as_deref(),
                es2,
                service(remote.es2_url.clone(), remote.address.clone()),
                algorithm,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            (None, network, remote.ca_cert_der.clone())
        }
        None => {
            if opts.smdp.es2_callback_url.is_none() {
                opts.smdp.es2_callback_url = Some(es2_callback_url.clone());
            }
            let running_smdp = smdp::start(opts.smdp.clone())?;
            // SGP.22 §2.6.6: ES2+ is mutually authenticated TLS; the BOSS presents the
            // operator's client certificate of the PKI (`Operator/`) on the ES2+ port.
            let es2 = Es2pClient::from_pki(&running_smdp.es2_url(), opts.smdp.pki_dir.clone())
                .context("ES2+ client of the BOSS (operator certificate of the PKI)")?;
            let network = Network::new(
                Arc::clone(running_smdp.smdp()),
                es2,
                service(running_smdp.es2_url(), running_smdp.address.clone()),
                algorithm,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let root = running_smdp.ca_cert_der.clone();
            (Some(running_smdp), network, root)
        }
    };
    // SGP.22 §2.6.6: the SM-DP+ → operator direction of ES2+ is mutual TLS as well.
    let es2 = http::Es2Endpoint {
        listener: es2_listener,
        tls: super::es2_tls::server_config(&opts.smdp.pki_dir, &smdp_root)?,
    };
    let network = Arc::new(network);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = http::spawn(listener, es2, Arc::clone(&network), rx)?;
    let (sweeper_stop, sweeper) = spawn_sweeper(Arc::clone(&network), opts.transfer_ttl)?;
    Ok(RunningNetwork {
        smdp: running_smdp,
        remote: opts.remote_smdp.clone(),
        network,
        operator_url,
        es2_callback_url,
        shutdown: Some(tx),
        thread: Some(thread),
        sweeper_stop: Some(sweeper_stop),
        sweeper: Some(sweeper),
    })
}

/// Expires lapsed transfers every quarter of their lifetime (between 1 s and
/// [`MAX_SWEEP_INTERVAL`]), so that a number is freed even when nobody asks for it, until the
/// returned sender is dropped.
fn spawn_sweeper(
    network: Arc<Network>,
    ttl: Duration,
) -> anyhow::Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let interval = (ttl / 4).clamp(Duration::from_secs(1), MAX_SWEEP_INTERVAL);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("network-transfer-sweeper".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(interval)
            {
                match network.expire_transfers() {
                    Ok(ended) => {
                        for t in ended {
                            tracing::info!(msisdn = %t.msisdn, "transfer {} expired", t.id);
                        }
                    }
                    Err(e) => tracing::warn!("expiring transfers: {e}"),
                }
            }
        })?;
    Ok((stop, thread))
}

/// The operator side's options of `simlab network serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Address of the operator services (entitlement, contract page, SMSC, BOSS, HLR, calls,
    /// admin) over HTTP; port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_OPERATOR_LISTEN)]
    pub operator_listen: SocketAddr,
    /// Address of the BOSS's ES2+ endpoint, where the SM-DP+ sends
    /// HandleDownloadProgressInfo: HTTPS with mutual TLS (the PKI's operator server
    /// certificate; callers must present an SM-DP+ TLS certificate). Port 0 picks a free port
    /// [default: 127.0.0.1:8445; a free port on the same address when --operator-listen has
    /// port 0].
    #[arg(long, value_name = "ADDR")]
    pub operator_es2_listen: Option<SocketAddr>,
    /// Lifetime of one-time codes and EAP-AKA sessions, in seconds.
    #[arg(long, default_value_t = DEFAULT_CODE_TTL.as_secs())]
    pub code_ttl: u64,
    /// Wrong tries before a code request locks.
    #[arg(long, default_value_t = DEFAULT_CODE_TRIES)]
    pub code_tries: u32,
    /// Lifetime of entitlement tokens, in seconds.
    #[arg(long, default_value_t = DEFAULT_TOKEN_TTL.as_secs())]
    pub token_ttl: u64,
    /// Lifetime of an upgrade's / migration's reservation of its number, in seconds: a
    /// transfer whose new profile is not enabled by then ends — its order cancelled at the
    /// SM-DP+ if not downloaded yet, else the downloaded profile's IMSI disabled — and the
    /// number stays on the old card, transferable again.
    #[arg(long, default_value_t = DEFAULT_TRANSFER_TTL.as_secs())]
    pub transfer_ttl: u64,
    /// Profile template the BOSS orders for new lines.
    #[arg(long, default_value = DEFAULT_PROFILE_TEMPLATE)]
    pub profile_template: String,
    /// Provision the subscriber a card definition describes (ICCID, IMSI, keys, MSISDN):
    /// `CARD.toml` (or a built-in card's name, e.g. `uicc`), optionally
    /// `,msisdn=+15555550100`. Repeatable.
    #[arg(long = "subscriber")]
    pub subscribers: Vec<String>,
    /// Use the SM-DP+ at this ES2+ URL (`https://host:port`, e.g. the `ES2+:` line another
    /// `simlab network serve` prints) instead of running one: the BOSS orders there with the
    /// PKI's operator client certificate, and that SM-DP+ must send its
    /// HandleDownloadProgressInfo to this network's ES2+ endpoint (printed; `--es2-callback`
    /// of the other `simlab network serve`). `--db` then holds the network's tables only.
    #[arg(long, value_name = "URL", requires = "smdp_address")]
    pub smdp: Option<String>,
    /// With --smdp: that SM-DP+'s ES9+ address (`host:port`), the one its activation codes
    /// name (the `SM-DP+ listening on` line of the other `simlab network serve`).
    #[arg(long, value_name = "HOST:PORT", requires = "smdp")]
    pub smdp_address: Option<String>,
    /// With --smdp: the root its TLS certificates chain to (DER or PEM) [default: the PKI's
    /// CI, CertificateIssuer/CERT_CI_ECDSA_NIST.der].
    #[arg(long, value_name = "FILE", requires = "smdp")]
    pub smdp_ca: Option<std::path::PathBuf>,
}

impl OperatorArgs {
    /// Where the BOSS's ES2+ endpoint listens: as given; else free when the operator services
    /// asked for a free port (whoever runs several networks side by side asks for free ports,
    /// so a fixed default would make them collide), else the default.
    pub fn es2_listen(&self) -> anyhow::Result<SocketAddr> {
        if let Some(addr) = self.operator_es2_listen {
            return Ok(addr);
        }
        if self.operator_listen.port() == 0 {
            return Ok(SocketAddr::new(self.operator_listen.ip(), 0));
        }
        Ok(DEFAULT_OPERATOR_ES2_LISTEN.parse()?)
    }

    /// The SM-DP+ elsewhere of `--smdp` (`None` without it), its database `db` (the
    /// network's own) and its TLS root from `--smdp-ca` or the PKI `pki`.
    pub fn remote_smdp(
        &self,
        pki: &Files,
        db: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Option<RemoteSmdp>> {
        let Some(url) = &self.smdp else {
            return Ok(None);
        };
        let es2_url = match url.split_once("://") {
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => url.clone(),
            Some(_) => anyhow::bail!(
                "--smdp {url}: ES2+ is HTTPS with mutual TLS (SGP.22 §2.6.6); give https://host:port"
            ),
            None => format!("https://{url}"),
        };
        let address = self.smdp_address.clone().unwrap_or_default();
        let (host, _) = crate::smdp::split_address(&address);
        if host.is_empty() || address.contains('/') {
            anyhow::bail!(
                "--smdp-address {address:?}: expected host:port, as activation codes name it"
            );
        }
        let ca_cert_der = match &self.smdp_ca {
            Some(path) => read_certificate(path)?,
            None => {
                let rel = crate::pki::cert_path(crate::pki::Role::Ci, crate::pki::Curve::Nist);
                pki.read(&rel)
                    .with_context(|| format!("TLS root {}", pki.location(&rel).display()))?
            }
        };
        Ok(Some(RemoteSmdp {
            es2_url: es2_url.trim_end_matches('/').to_owned(),
            address,
            ca_cert_der,
            db,
        }))
    }

    /// Starts the network around the SM-DP+ options and provisions the subscribers (answered
    /// with the network).
    pub fn start(
        &self,
        smdp: SmdpOptions,
    ) -> anyhow::Result<(RunningNetwork, Vec<super::db::LineView>)> {
        if self.code_tries == 0 {
            anyhow::bail!("--code-tries must be at least 1");
        }
        let mut opts = NetworkOptions::new(smdp);
        opts.listen = self.operator_listen;
        opts.es2_listen = self.es2_listen()?;
        opts.code_ttl = Duration::from_secs(self.code_ttl);
        opts.code_tries = self.code_tries;
        opts.token_ttl = Duration::from_secs(self.token_ttl);
        opts.transfer_ttl = Duration::from_secs(self.transfer_ttl);
        opts.profile_template = self.profile_template.clone();
        opts.remote_smdp = self.remote_smdp(&opts.smdp.pki_dir, opts.smdp.db.clone())?;
        let running = start(opts)?;
        let mut provisioned = Vec::new();
        for spec in &self.subscribers {
            let (path, msisdn) = match spec.split_once(",msisdn=") {
                Some((p, m)) => (p, Some(m)),
                None => (spec.as_str(), None),
            };
            let def = crate::defaults::card_definition(Path::new(path))
                .with_context(|| format!("--subscriber {spec}"))?;
            let p = super::service::Provision::from_card_definition(&def, msisdn)
                .with_context(|| format!("--subscriber {spec}"))?;
            let line = running
                .network()
                .provision(&p)
                .map_err(|e| anyhow::anyhow!("--subscriber {spec}: {e}"))?
                .1;
            provisioned.push(line);
        }
        Ok((running, provisioned))
    }
}

/// A certificate file, DER or PEM (`CERTIFICATE`), as DER.
fn read_certificate(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("certificate {}", path.display()))?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(&bytes)
            .map_err(|e| anyhow::anyhow!("certificate {}: {e}", path.display()))?;
        anyhow::ensure!(
            label == "CERTIFICATE",
            "{}: a PEM {label}, expected CERTIFICATE",
            path.display()
        );
        der
    } else {
        bytes
    };
    <x509_cert::Certificate as der::Decode>::from_der(&der)
        .with_context(|| format!("{} is not an X.509 certificate", path.display()))?;
    Ok(der)
}

/// Every operator URL and the provisioned subscribers, as text for people.
pub fn urls_text(running: &RunningNetwork, provisioned: &[super::db::LineView]) -> String {
    let base = running.operator_url();
    let mut out = format!(
        "Operator network listening on {base}\n  \
         entitlement (TS.43, EAP-AKA / token / SMS code): {base}/ts43\n  \
         contract page: {base}/contract/{{id}}\n  \
         SMS centre: POST {base}/smsc/messages, GET {base}/smsc/inbox/{{imsi}}\n  \
         BOSS: POST {base}/boss/subscribers; ES2+ endpoint {callback} (mutual TLS)\n  \
         HLR: GET {base}/hlr/imsi/{{imsi}}, POST {base}/hlr/attach\n  \
         calls: POST {base}/calls\n  \
         admin (read-only): {base}/admin/{{subscribers,groups,orders,order-events,transfers,operations,sms,contracts}}, {base}/admin/imsis/{{imsi}}\n",
        callback = running.es2_callback_url(),
    );
    for line in provisioned {
        out.push_str(&format!(
            "  subscriber {} IMSI {} ICCID {} provisioned\n",
            line.msisdn,
            line.imsi,
            line.iccid.as_deref().unwrap_or("")
        ));
    }
    out
}
