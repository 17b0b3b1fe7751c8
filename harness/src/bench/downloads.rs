//! `simlab bench --downloads`: complete profile downloads (GSMA SGP.22 v2.5 §3.1.3: ES10b on
//! the emulated eUICC, ES9+ on simlab's SM-DP+, simlab's LPA relaying), NIST P-256 PKI of
//! `vectors/pki`, in two settings:
//!
//! 1. **In-process**: card, SM-DP+ ([`Smdp`] called through [`Es9Plus`], no TLS, HTTP or JSON)
//!    and LPA in this process, on 1..T threads sharing one SM-DP+.
//! 2. **Over loopback HTTPS**: the SM-DP+ in its own process (this binary, `bench
//!    --serve-smdp`, which serves with [`smdp::start`] exactly as `simlab network serve` does
//!    and also answers for its [`Timings`](crate::smdp::Timings) on stdin/stdout), and K
//!    threads here as the load generator, each an LPA with its own emulated eUICC. Every
//!    download opens a new TLS connection, as an LPA does for each RSP session.
//!
//! CPU time is measured, not inferred from wall time: per thread with
//! `CLOCK_THREAD_CPUTIME_ID` around every card `transmit` and every in-process ES9+ call, per
//! process with `CLOCK_PROCESS_CPUTIME_ID` (the server reports its own).
//!
//! Each download gets a fresh card built from one pre-built `CardState` (the definition is
//! parsed and built once, then cloned): the card holds at most `max_profiles` profiles and a
//! template's ICCID installs only once per card. Nothing is deleted afterwards.

use crate::defaults::Files;
use crate::es9p::Es9pClient;
use crate::es9p::{
    AuthenticateClientRequest, AuthenticateClientResponse, CancelSessionRequest, Es9Plus,
    Es9pError, GetBoundProfilePackageRequest, GetBoundProfilePackageResponse,
    HandleNotificationRequest, HeaderOnly, InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
};
use crate::lpa::{self, ActivationCode, DeviceInfo, Es10Client};
use crate::smdp::{self, Smdp, SmdpOptions, TimingsSnapshot};
use crate::transport::{InProcess, Transport, TransportError};
use anyhow::{bail, ensure, Context as _};
use rustix::time::{clock_gettime, ClockId};
use simlab_emulator::uicc::CardState;
use simlab_emulator::Uicc;
use std::cell::Cell;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Address the in-process SM-DP+ advertises (never listened on: no network in-process).
const IN_PROCESS_ADDRESS: &str = "127.0.0.1:8443";
/// Downloads before each measurement (page faults, SQLite statement cache, TLS setup).
const WARM_UP: usize = 2;
/// Line the bench server prints once it listens: `listening <host:port>`.
const READY: &str = "listening";

/// What the download benchmark runs against.
#[derive(Debug, Clone)]
pub struct DownloadBenchOptions {
    /// eUICC definition: a file, or a built-in card name (`euicc`).
    pub card: PathBuf,
    /// PKI of the SM-DP+ (default: the built-in `vectors/pki`).
    pub pki: Files,
    /// SAIP templates (default: the built-in `vectors/profiles`).
    pub templates: Files,
    /// Template file stem downloaded each time (its matching ID).
    pub template: String,
    /// Downloads per measurement.
    pub count: usize,
    /// The `simlab` binary that serves the SM-DP+ for the HTTPS part (default: this one).
    pub server_program: Option<PathBuf>,
    /// The HTTPS server keeps its SQLite database in a file instead of in memory.
    pub db_file: bool,
    /// Use this already running SM-DP+ (e.g. `simlab network serve`) instead of starting one:
    /// its address, and its process id to read its CPU time from `/proc` (no Timings then).
    pub external: Option<(String, Option<u32>)>,
}

/// This thread's CPU time.
pub fn thread_cpu() -> Duration {
    to_duration(clock_gettime(ClockId::ThreadCPUTime))
}

/// This process's CPU time (all threads, including finished ones).
pub fn process_cpu() -> Duration {
    to_duration(clock_gettime(ClockId::ProcessCPUTime))
}

fn to_duration(t: rustix::time::Timespec) -> Duration {
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e3 / n.max(1) as f64
}

/// The card: one definition built once, a fresh copy per download.
#[derive(Debug, Clone)]
struct CardFactory {
    atr: Vec<u8>,
    state: CardState,
}

impl CardFactory {
    fn load(path: &Path) -> anyhow::Result<Self> {
        let def = crate::defaults::card_definition(path)?;
        let (atr, state) = def
            .build()
            .with_context(|| format!("in card definition {}", path.display()))?;
        ensure!(
            state.euicc.is_some(),
            "{} is not an eUICC (no [euicc] section)",
            path.display()
        );
        Ok(Self { atr, state })
    }

    fn card(&self) -> MeteredCard {
        MeteredCard {
            inner: InProcess::new(Uicc::new(self.atr.clone(), self.state.clone())),
            cpu: Duration::ZERO,
            apdus: 0,
        }
    }
}

/// The emulated card in process, counting the CPU time of its `transmit` calls.
#[derive(Debug)]
struct MeteredCard {
    inner: InProcess,
    cpu: Duration,
    apdus: u64,
}

impl Transport for MeteredCard {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let started = thread_cpu();
        let answer = self.inner.transmit_raw(apdu);
        self.cpu += thread_cpu().saturating_sub(started);
        self.apdus += 1;
        answer
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.inner.reset()
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.inner.atr()
    }
}

/// An ES9+ implementation (the SM-DP+ in process, or the HTTPS client), counting this
/// thread's CPU time and the wall time of its calls.
struct Metered<'a> {
    inner: &'a dyn Es9Plus,
    cpu: Cell<Duration>,
    wall: Cell<Duration>,
}

impl std::fmt::Debug for Metered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("cpu", &self.cpu)
            .field("wall", &self.wall)
            .finish_non_exhaustive()
    }
}

impl<'a> Metered<'a> {
    fn new(inner: &'a dyn Es9Plus) -> Self {
        Self {
            inner,
            cpu: Cell::new(Duration::ZERO),
            wall: Cell::new(Duration::ZERO),
        }
    }

    fn metered<T>(&self, f: impl FnOnce(&dyn Es9Plus) -> T) -> T {
        let (cpu, wall) = (thread_cpu(), Instant::now());
        let out = f(self.inner);
        self.cpu
            .set(self.cpu.get() + thread_cpu().saturating_sub(cpu));
        self.wall.set(self.wall.get() + wall.elapsed());
        out
    }
}

impl Es9Plus for Metered<'_> {
    fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9pError> {
        self.metered(|s| s.initiate_authentication(req))
    }

    fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, Es9pError> {
        self.metered(|s| s.authenticate_client(req))
    }

    fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9pError> {
        self.metered(|s| s.get_bound_profile_package(req))
    }

    fn handle_notification(&self, req: &HandleNotificationRequest) -> Result<(), Es9pError> {
        self.metered(|s| s.handle_notification(req))
    }

    fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError> {
        self.metered(|s| s.cancel_session(req))
    }
}

/// CPU time of one or more downloads on the threads that ran them, by part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuSplit {
    /// Everything on the download threads.
    pub total: Duration,
    /// Building the card from the pre-built state and powering it on.
    pub card_build: Duration,
    /// Inside the card's `transmit` (the eUICC's ES10 work).
    pub card: Duration,
    /// Inside the ES9+ calls: the SM-DP+ itself in process; over HTTPS the client's TLS,
    /// HTTP and JSON (the server's CPU is elsewhere).
    pub smdp: Duration,
    /// Wall time inside the ES9+ calls (over HTTPS: waiting for the server included).
    pub es9_wall: Duration,
    /// Wall time of the downloads.
    pub wall: Duration,
    pub apdus: u64,
}

impl CpuSplit {
    /// The rest: the LPA (ES10 encoding, relaying; over HTTPS also TLS, HTTP and JSON).
    pub fn lpa(&self) -> Duration {
        self.total
            .saturating_sub(self.card_build + self.card + self.smdp)
    }

    fn add(&mut self, o: &CpuSplit) {
        self.total += o.total;
        self.card_build += o.card_build;
        self.card += o.card;
        self.smdp += o.smdp;
        self.es9_wall += o.es9_wall;
        self.wall += o.wall;
        self.apdus += o.apdus;
    }
}

/// One download on this thread, through `es9`; returns its CPU split.
fn one_download(
    factory: &CardFactory,
    es9: &dyn Es9Plus,
    ac: &ActivationCode,
) -> anyhow::Result<CpuSplit> {
    let (started, wall) = (thread_cpu(), Instant::now());
    let card = factory.card();
    let card_build = thread_cpu().saturating_sub(started);
    let es9 = Metered::new(es9);
    let mut es10 = Es10Client::open(card).context("opening the ISD-R")?;
    let done = lpa::download_via(
        &mut es10,
        &es9,
        ac,
        None,
        &DeviceInfo::default(),
        &mut |_| {},
    )
    .context("download")?;
    ensure!(
        done.iccid.is_some(),
        "the installation result names no ICCID"
    );
    let card = es10.close();
    Ok(CpuSplit {
        total: thread_cpu().saturating_sub(started),
        card_build,
        card: card.cpu,
        smdp: es9.cpu.get(),
        es9_wall: es9.wall.get(),
        wall: wall.elapsed(),
        apdus: card.apdus,
    })
}

/// Runs `count` downloads on `threads` threads, each taking the next download until all are
/// done; `run` does one download and returns its split. Returns the summed split and the
/// wall time.
fn run_threads(
    count: usize,
    threads: usize,
    run: &(dyn Fn() -> anyhow::Result<CpuSplit> + Sync),
) -> anyhow::Result<(CpuSplit, Duration)> {
    let next = AtomicUsize::new(0);
    let total = Mutex::new(CpuSplit::default());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut mine = CpuSplit::default();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    match run() {
                        Ok(split) => mine.add(&split),
                        Err(e) => {
                            // Stop everyone: the numbers of a failing run mean nothing.
                            next.store(count, Ordering::Relaxed);
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            break;
                        }
                    }
                }
                if let Ok(mut t) = total.lock() {
                    t.add(&mine);
                }
            });
        }
    });
    let wall = started.elapsed();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let split = total
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a download thread panicked"))?;
    Ok((split, wall))
}

/// The in-process measurement.
#[derive(Debug, Clone)]
pub struct InProcessReport {
    pub threads: usize,
    pub downloads: usize,
    pub wall: Duration,
    /// CPU time on the download threads, by part.
    pub cpu: CpuSplit,
    /// CPU time of the whole process during the run: with one download thread it must equal
    /// `cpu.total` (nothing else works for it), the proof that "one thread" is one thread.
    pub process_cpu: Duration,
    /// The SM-DP+'s own split (wall time inside its steps, summed over threads).
    pub smdp: TimingsSnapshot,
    /// Bytes of the unprotected profile package.
    pub package_len: usize,
}

impl InProcessReport {
    /// Downloads per second of wall time.
    pub fn per_second(&self) -> f64 {
        self.downloads as f64 / self.wall.as_secs_f64()
    }

    /// Downloads per second the download threads' CPU time allows: the wall rate when each
    /// thread has a core to itself (a busy machine makes the wall rate lower, never this).
    pub fn cpu_bound_per_second(&self) -> f64 {
        let ms = per(self.cpu.total, self.downloads);
        if ms > 0.0 {
            self.threads as f64 * 1e3 / ms
        } else {
            0.0
        }
    }

    /// Process CPU time over the download threads' CPU time (1.00: no other thread worked).
    pub fn process_over_threads(&self) -> f64 {
        self.process_cpu.as_secs_f64() / self.cpu.total.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

fn activation_code(address: &str, template: &str) -> anyhow::Result<ActivationCode> {
    format!("LPA:1${address}${template}")
        .parse()
        .map_err(|e| anyhow::anyhow!("activation code for {template}: {e}"))
}

/// `opts.count` downloads in this process on `threads` threads sharing one SM-DP+.
pub fn in_process(opts: &DownloadBenchOptions, threads: usize) -> anyhow::Result<InProcessReport> {
    let factory = CardFactory::load(&opts.card)?;
    let smdp = Smdp::open(
        &SmdpOptions::new(opts.pki.clone(), opts.templates.clone()),
        IN_PROCESS_ADDRESS,
    )?;
    if !smdp.templates().any(|t| t == opts.template) {
        bail!("no template {} in {}", opts.template, opts.templates);
    }
    let package_len = opts
        .templates
        .read(format!("{}.der", opts.template))
        .map(|der| der.len())
        .unwrap_or(0);
    let ac = activation_code(smdp.address(), &opts.template)?;
    let run = || one_download(&factory, &smdp, &ac);
    for _ in 0..WARM_UP {
        run()?;
    }
    smdp.timings().reset();
    let process_before = process_cpu();
    let (cpu, wall) = run_threads(opts.count, threads, &run)?;
    let process_cpu = process_cpu().saturating_sub(process_before);
    Ok(InProcessReport {
        threads: threads.max(1),
        downloads: opts.count,
        wall,
        cpu,
        process_cpu,
        smdp: smdp.timings().snapshot(),
        package_len,
    })
}

/// The in-process one-thread figures of another `simlab` binary (a baseline, e.g. the build
/// before a change), measured by running it: `PROGRAM --json bench --downloads --no-https
/// --threads 1`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BaselineInProcess {
    pub per_second: f64,
    /// CPU ms per download on the download thread.
    pub cpu_ms: f64,
    /// Of which inside the SM-DP+'s ES9+ functions.
    pub smdp_ms: f64,
}

/// Runs `program`'s in-process measurement with the same download, count and P-256 backend.
pub fn baseline_in_process(
    program: &Path,
    opts: &DownloadBenchOptions,
) -> anyhow::Result<BaselineInProcess> {
    let mut cmd = Command::new(program);
    cmd.arg("--json")
        .args(["bench", "--downloads", "--no-https", "--threads", "1"])
        .arg("--download-count")
        .arg(opts.count.to_string())
        .arg("--template")
        .arg(&opts.template)
        .arg("--card")
        .arg(&opts.card)
        .arg("--p256")
        .arg(p256_name());
    if let Some(dir) = opts.pki.disk_dir() {
        cmd.arg("--pki").arg(dir);
    }
    if let Some(dir) = opts.templates.disk_dir() {
        cmd.arg("--templates").arg(dir);
    }
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running the baseline {}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the baseline {} printed no JSON result", program.display()))?;
    let row = &json["result"]["runs"][0]["inProcess"]["rows"][0];
    let number = |v: &serde_json::Value, what: &str| {
        v.as_f64().with_context(|| {
            format!(
                "the baseline {}'s result has no {what}: {text}",
                program.display()
            )
        })
    };
    Ok(BaselineInProcess {
        per_second: number(&row["downloadsPerSecond"], "downloadsPerSecond")?,
        cpu_ms: number(&row["cpuMsPerDownload"]["total"], "cpuMsPerDownload.total")?,
        smdp_ms: number(&row["cpuMsPerDownload"]["smdp"], "cpuMsPerDownload.smdp")?,
    })
}

/// `--p256` value of the backend this process measures with now.
fn p256_name() -> &'static str {
    match simlab_emulator::rsp::ecdsa::p256_backend() {
        simlab_emulator::rsp::ecdsa::P256Backend::Ring => "ring",
        simlab_emulator::rsp::ecdsa::P256Backend::RustCrypto => "rustcrypto",
    }
}

/// The HTTPS measurement.
#[derive(Debug, Clone)]
pub struct HttpsReport {
    pub lpas: usize,
    pub downloads: usize,
    pub wall: Duration,
    /// CPU time of the SM-DP+ process during the run.
    pub server_cpu: Duration,
    /// The server's split (wall time inside its ES9+ steps, summed over its threads); only
    /// for a server this benchmark started.
    pub server: Option<TimingsSnapshot>,
    /// Of `server_cpu`, the kernel's part (TCP on loopback, scheduling, futexes), from
    /// `/proc/<pid>/stat`; `None` when the process id is unknown.
    pub server_system: Option<Duration>,
    /// CPU time of this process (the load generator: cards, LPAs, TLS clients) during the run.
    pub client_cpu: Duration,
    /// Of `client_cpu`, the kernel's part.
    pub client_system: Option<Duration>,
    /// The load generator's download threads, by part.
    pub client: CpuSplit,
    pub db_file: bool,
}

impl HttpsReport {
    pub fn per_second(&self) -> f64 {
        self.downloads as f64 / self.wall.as_secs_f64()
    }
}

/// The bench SM-DP+ process: started, talked to over its stdin/stdout, stopped on drop.
#[derive(Debug)]
struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    address: String,
}

impl ServerProcess {
    fn start(program: &Path, opts: &DownloadBenchOptions) -> anyhow::Result<Self> {
        let mut cmd = Command::new(program);
        // The server does its P-256 work with the backend this process measures now.
        cmd.arg("bench")
            .arg("--serve-smdp")
            .arg("--p256")
            .arg(p256_name())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(dir) = opts.pki.disk_dir() {
            cmd.arg("--pki").arg(dir);
        }
        if let Some(dir) = opts.templates.disk_dir() {
            cmd.arg("--templates").arg(dir);
        }
        if opts.db_file {
            cmd.arg("--db-file");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting the SM-DP+ process {}", program.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .map(BufReader::new)
            .context("no stdout from the SM-DP+ process")?;
        let mut server = ServerProcess {
            child,
            stdin,
            stdout,
            address: String::new(),
        };
        let line = server.read_line()?;
        server.address = line
            .strip_prefix(READY)
            .map(|a| a.trim().to_owned())
            .with_context(|| format!("the SM-DP+ process said {line:?}, expected {READY} ADDR"))?;
        Ok(server)
    }

    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line)?;
        ensure!(n > 0, "the SM-DP+ process ended (see its stderr above)");
        Ok(line.trim_end().to_owned())
    }

    /// Sends a command, returns its one-line answer.
    fn ask(&mut self, command: &str) -> anyhow::Result<String> {
        let stdin = self.stdin.as_mut().context("SM-DP+ stdin closed")?;
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        self.read_line()
    }

    /// Resets the server's timings; returns its CPU time so far.
    fn reset(&mut self) -> anyhow::Result<Duration> {
        let answer = self.ask(CMD_RESET)?;
        let stats = parse_stats(&answer)?;
        Ok(stats.0)
    }

    fn stats(&mut self) -> anyhow::Result<(Duration, TimingsSnapshot)> {
        let answer = self.ask(CMD_STATS)?;
        parse_stats(&answer)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin asks the server to stop; kill only if it does not.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CMD_RESET: &str = "reset";
const CMD_STATS: &str = "stats";
const STATS_PREFIX: &str = "stats";

/// `stats cpu sign verify key_agreement protection personalise db total calls` (nanoseconds,
/// then a count).
fn format_stats(cpu: Duration, t: &TimingsSnapshot) -> String {
    let ns = |d: Duration| d.as_nanos();
    format!(
        "{STATS_PREFIX} {} {} {} {} {} {} {} {} {}",
        ns(cpu),
        ns(t.sign),
        ns(t.verify),
        ns(t.key_agreement),
        ns(t.protection),
        ns(t.personalise),
        ns(t.db),
        ns(t.total),
        t.calls
    )
}

fn parse_stats(line: &str) -> anyhow::Result<(Duration, TimingsSnapshot)> {
    let fields = line
        .strip_prefix(STATS_PREFIX)
        .with_context(|| format!("the SM-DP+ process said {line:?}, expected {STATS_PREFIX} …"))?
        .split_whitespace()
        .map(str::parse::<u64>)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("numbers in {line:?}"))?;
    let [cpu, sign, verify, key_agreement, protection, personalise, db, total, calls] = fields[..]
    else {
        bail!("{line:?} has {} numbers, expected 9", fields.len());
    };
    let d = Duration::from_nanos;
    Ok((
        d(cpu),
        TimingsSnapshot {
            sign: d(sign),
            verify: d(verify),
            key_agreement: d(key_agreement),
            protection: d(protection),
            personalise: d(personalise),
            db: d(db),
            total: d(total),
            calls,
        },
    ))
}

/// `bench --serve-smdp`: serves the SM-DP+ on a free loopback port with [`smdp::start`] (as
/// `simlab network serve` does), prints `listening ADDR`, then answers `reset` and `stats`
/// lines on stdin until stdin closes.
pub fn serve_smdp(pki: &Files, templates: &Files, db_file: bool) -> anyhow::Result<()> {
    let mut opts = SmdpOptions::new(pki.clone(), templates.clone());
    let dir = if db_file { Some(db_dir()?) } else { None };
    if let Some(dir) = &dir {
        opts.db = Some(dir.join("smdp.sqlite"));
    }
    let running = smdp::start(opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY} {}", running.address)?;
    out.flush()?;
    for line in std::io::stdin().lines() {
        let line = line?;
        match line.trim() {
            CMD_RESET => {
                running.smdp().timings().reset();
                writeln!(
                    out,
                    "{}",
                    format_stats(process_cpu(), &TimingsSnapshot::default())
                )?;
            }
            CMD_STATS => writeln!(
                out,
                "{}",
                format_stats(process_cpu(), &running.smdp().timings().snapshot())
            )?,
            other => writeln!(out, "unknown command {other:?}")?,
        }
        out.flush()?;
    }
    running.stop();
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// A fresh directory for the server's database file.
fn db_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("simlab-bench-smdp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `opts.count` downloads from a separate SM-DP+ process over loopback HTTPS, `lpas` at once.
pub fn over_https(opts: &DownloadBenchOptions, lpas: usize) -> anyhow::Result<HttpsReport> {
    let factory = CardFactory::load(&opts.card)?;
    let mut server = match &opts.external {
        Some((address, pid)) => Server::External {
            address: address.clone(),
            pid: *pid,
        },
        None => {
            let program = match &opts.server_program {
                Some(p) => p.clone(),
                None => std::env::current_exe().context("locating the simlab binary")?,
            };
            Server::Own(ServerProcess::start(&program, opts)?)
        }
    };
    let roots = vec![ci_root(&opts.pki)?];
    let ac = activation_code(server.address(), &opts.template)?;
    // As `lpa::download` does: a new client (new TLS connection) for each download.
    let run = || {
        let client = Es9pClient::new(&ac.smdp_address, &roots)?;
        one_download(&factory, &client, &ac)
    };
    for _ in 0..WARM_UP {
        run()?;
    }
    let server_before = server.reset()?;
    let server_sys_before = server.system_time();
    let client_before = process_cpu();
    let client_sys_before = proc_times(std::process::id()).ok().map(|t| t.1);
    let (client, wall) = run_threads(opts.count, lpas, &run)?;
    let client_cpu = process_cpu().saturating_sub(client_before);
    let client_system = proc_times(std::process::id())
        .ok()
        .zip(client_sys_before)
        .map(|((_, after), before)| after.saturating_sub(before));
    let (server_after, timings) = server.stats()?;
    let server_system = server
        .system_time()
        .zip(server_sys_before)
        .map(|(after, before)| after.saturating_sub(before));
    let db_file = matches!(server, Server::Own(_)) && opts.db_file;
    drop(server);
    Ok(HttpsReport {
        lpas: lpas.max(1),
        downloads: opts.count,
        wall,
        server_cpu: server_after.saturating_sub(server_before),
        server: timings,
        server_system,
        client_cpu,
        client_system,
        client,
        db_file,
    })
}

/// The SM-DP+ the HTTPS measurement talks to.
#[derive(Debug)]
enum Server {
    Own(ServerProcess),
    External { address: String, pid: Option<u32> },
}

impl Server {
    fn address(&self) -> &str {
        match self {
            Server::Own(p) => &p.address,
            Server::External { address, .. } => address,
        }
    }

    /// The server's kernel CPU time so far, when its process id is known.
    fn system_time(&self) -> Option<Duration> {
        let pid = match self {
            Server::Own(p) => Some(p.child.id()),
            Server::External { pid, .. } => *pid,
        }?;
        proc_times(pid).ok().map(|t| t.1)
    }

    /// Resets the timings (own server); returns the server's CPU time so far.
    fn reset(&mut self) -> anyhow::Result<Duration> {
        match self {
            Server::Own(p) => p.reset(),
            Server::External { pid, .. } => pid.map_or(Ok(Duration::ZERO), proc_cpu),
        }
    }

    fn stats(&mut self) -> anyhow::Result<(Duration, Option<TimingsSnapshot>)> {
        match self {
            Server::Own(p) => p.stats().map(|(cpu, t)| (cpu, Some(t))),
            Server::External { pid, .. } => Ok((pid.map_or(Ok(Duration::ZERO), proc_cpu)?, None)),
        }
    }
}

/// Linux USER_HZ: `/proc/<pid>/stat` counts CPU time in 1/100 s on every architecture
/// simlab runs on (proc(5)).
const USER_HZ: u64 = 100;

/// User and system CPU time of process `pid` (all its threads, finished ones included), from
/// `/proc/<pid>/stat` fields 14 (utime) and 15 (stime), proc(5). Resolution 10 ms.
pub fn proc_times(pid: u32) -> anyhow::Result<(Duration, Duration)> {
    stat_times(&format!("/proc/{pid}/stat"))
}

/// As [`proc_times`] for one thread `tid` of process `pid` (`/proc/PID/task/TID/stat`).
pub fn proc_times_of(pid: u32, tid: u32) -> anyhow::Result<(Duration, Duration)> {
    stat_times(&format!("/proc/{pid}/task/{tid}/stat"))
}

fn stat_times(path: &str) -> anyhow::Result<(Duration, Duration)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // Field 2 (comm) is in parentheses and may hold spaces; count fields after its ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("{path} has no ')'"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' the first field is field 3 (state).
    let ticks = |i: usize| -> anyhow::Result<Duration> {
        let n: u64 = fields
            .get(i - 3)
            .with_context(|| format!("{path} has no field {i}"))?
            .parse()
            .with_context(|| format!("field {i} of {path}"))?;
        Ok(Duration::from_millis(n * 1000 / USER_HZ))
    };
    Ok((ticks(14)?, ticks(15)?))
}

fn proc_cpu(pid: u32) -> anyhow::Result<Duration> {
    let (user, system) = proc_times(pid)?;
    Ok(user + system)
}

/// CPU time of full TLS handshakes (the server's and the client's side), run in memory with
/// the SM-DP+'s TLS configuration: CERT.DP.TLS (NIST) and its key, rustls with the ring
/// provider, the LPA's client configuration (the CI as only root). Over HTTPS every download
/// makes one: the LPA builds a new client, so there is no session resumption — and neither
/// is there here: each handshake gets a new client configuration (one shared configuration
/// would resume the session of the ticket the server sent, which is cheaper).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsHandshakeCpu {
    pub handshakes: usize,
    pub server: Duration,
    pub client: Duration,
}

/// Feeds every TLS record `bytes` holds into `conn`.
fn deliver<D>(conn: &mut rustls::ConnectionCommon<D>, mut bytes: &[u8]) -> anyhow::Result<()> {
    while !bytes.is_empty() {
        conn.read_tls(&mut bytes)?;
        conn.process_new_packets()?;
    }
    Ok(())
}

/// Everything `conn` wants to send.
fn pending<D>(conn: &mut rustls::ConnectionCommon<D>) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    Ok(out)
}

/// The NIST CI certificate of `pki`: the TLS root of the SM-DP+.
fn ci_root(pki: &Files) -> anyhow::Result<Vec<u8>> {
    let rel = crate::pki::cert_path(crate::pki::Role::Ci, crate::pki::Curve::Nist);
    pki.read(&rel)
        .with_context(|| format!("TLS root {}", pki.location(&rel).display()))
}

/// `n` full handshakes in memory, each side's CPU time counted separately.
pub fn tls_handshakes(pki_dir: &Files, address: &str, n: usize) -> anyhow::Result<TlsHandshakeCpu> {
    let server_config = crate::smdp::tls_config(pki_dir)?;
    let root = ci_root(pki_dir)?;
    let (host, _) = smdp::split_address(address);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .with_context(|| format!("{host} as a TLS server name"))?;
    let mut out = TlsHandshakeCpu {
        handshakes: n,
        ..Default::default()
    };
    for _ in 0..n {
        let client_config = crate::es9p::client::tls_client_config(&[&root])?;
        let started = thread_cpu();
        let mut client = rustls::ClientConnection::new(client_config, name.clone())?;
        let mut to_server = pending(&mut client)?;
        out.client += thread_cpu().saturating_sub(started);
        let started = thread_cpu();
        let mut server = rustls::ServerConnection::new(Arc::clone(&server_config))?;
        out.server += thread_cpu().saturating_sub(started);
        while !to_server.is_empty() {
            let started = thread_cpu();
            deliver(&mut server, &to_server)?;
            let to_client = pending(&mut server)?;
            out.server += thread_cpu().saturating_sub(started);
            let started = thread_cpu();
            deliver(&mut client, &to_client)?;
            to_server = pending(&mut client)?;
            out.client += thread_cpu().saturating_sub(started);
        }
        ensure!(
            !client.is_handshaking() && !server.is_handshaking(),
            "the in-memory TLS handshake did not complete"
        );
    }
    Ok(out)
}

fn timings_line(t: &TimingsSnapshot, n: usize) -> String {
    format!(
        "sign {:.3}, verify {:.3}, key agreement {:.3}, BPP protection {:.3}, personalise {:.3}, \
         db {:.3}, other {:.3}; inside ES9+ functions {:.3}",
        per(t.sign, n),
        per(t.verify, n),
        per(t.key_agreement, n),
        per(t.protection, n),
        per(t.personalise, n),
        per(t.db, n),
        per(t.other(), n),
        per(t.total, n)
    )
}

/// Milliseconds per download, rounded to microseconds, for JSON.
fn ms(d: Duration, n: usize) -> f64 {
    (per(d, n) * 1e3).round() / 1e3
}

fn timings_json(t: &TimingsSnapshot, n: usize) -> serde_json::Value {
    serde_json::json!({
        "sign": ms(t.sign, n),
        "verify": ms(t.verify, n),
        "keyAgreement": ms(t.key_agreement, n),
        "protection": ms(t.protection, n),
        "personalise": ms(t.personalise, n),
        "db": ms(t.db, n),
        "other": ms(t.other(), n),
        "total": ms(t.total, n),
    })
}

/// The in-process measurements as JSON (CPU in ms per download).
pub fn in_process_json(template: &str, reports: &[InProcessReport]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let n = r.downloads;
            serde_json::json!({
                "threads": r.threads,
                "downloads": n,
                "downloadsPerSecond": (r.per_second() * 10.0).round() / 10.0,
                "cpuMsPerDownload": {
                    "total": ms(r.cpu.total, n),
                    "card": ms(r.cpu.card, n),
                    "smdp": ms(r.cpu.smdp, n),
                    "lpa": ms(r.cpu.lpa(), n),
                    "cardBuild": ms(r.cpu.card_build, n),
                },
                "cpuBoundDownloadsPerSecond": (r.cpu_bound_per_second() * 10.0).round() / 10.0,
                "processCpuMs": ms(r.process_cpu, n),
                "processOverThreadsCpu": (r.process_over_threads() * 100.0).round() / 100.0,
                "apdusPerDownload": r.cpu.apdus / n.max(1) as u64,
                "smdpSplitMs": timings_json(&r.smdp, n),
            })
        })
        .collect();
    serde_json::json!({
        "template": template,
        "packageBytes": reports.first().map_or(0, |r| r.package_len),
        "rows": rows,
    })
}

/// The HTTPS measurements as JSON (CPU in ms per download).
pub fn https_json(https: &[HttpsReport], tls: Option<&TlsHandshakeCpu>) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = https
        .iter()
        .map(|r| {
            let n = r.downloads;
            serde_json::json!({
                "lpas": r.lpas,
                "downloads": n,
                "downloadsPerSecond": (r.per_second() * 10.0).round() / 10.0,
                "serverCpuMs": ms(r.server_cpu, n),
                "clientCpuMs": ms(r.client_cpu, n),
                "clientSplitMs": {
                    "card": ms(r.client.card + r.client.card_build, n),
                    "es9Client": ms(r.client.smdp, n),
                    "lpa": ms(r.client.lpa(), n),
                },
                "latencyMs": ms(r.client.wall, n),
                "serverKernelMs": r.server_system.map(|d| ms(d, n)),
                "clientKernelMs": r.client_system.map(|d| ms(d, n)),
                "serverSplitMs": r.server.as_ref().map(|t| timings_json(t, n)),
                "dbFile": r.db_file,
            })
        })
        .collect();
    serde_json::json!({
        "rows": rows,
        "tlsHandshakeMs": tls.map(|t| serde_json::json!({
            "server": ms(t.server, t.handshakes),
            "client": ms(t.client, t.handshakes),
        })),
    })
}

/// Prints the in-process table (one row per report) and the SM-DP+ split.
pub fn print_in_process(template: &str, reports: &[InProcessReport]) {
    crate::output::print_stdout(&in_process_text(template, reports));
}

/// The in-process table (one row per report) and the SM-DP+ split.
pub fn in_process_text(template: &str, reports: &[InProcessReport]) -> String {
    let mut out = String::new();
    let Some(first) = reports.first() else {
        return out;
    };
    let _ = writeln!(out,
        "download: {template} ({} bytes unprotected), NIST P-256, fresh eUICC per download from one pre-built state",
        first.package_len
    );
    let _ = writeln!(
        out,
        "in-process (card + SM-DP+ + LPA, no TLS/HTTP/JSON); CPU ms per download:"
    );
    let _ = writeln!(
        out,
        "{:>7} {:>9} {:>11} {:>9} {:>8} {:>8} {:>8} {:>10} {:>7}",
        "threads",
        "downloads",
        "downloads/s",
        "CPU ms",
        "card",
        "SM-DP+",
        "LPA",
        "card build",
        "APDUs"
    );
    for r in reports {
        let n = r.downloads;
        let _ = writeln!(
            out,
            "{:>7} {:>9} {:>11.1} {:>9.3} {:>8.3} {:>8.3} {:>8.3} {:>10.3} {:>7}",
            r.threads,
            n,
            r.per_second(),
            per(r.cpu.total, n),
            per(r.cpu.card, n),
            per(r.cpu.smdp, n),
            per(r.cpu.lpa(), n),
            per(r.cpu.card_build, n),
            r.cpu.apdus / n.max(1) as u64
        );
    }
    for r in reports {
        let _ = writeln!(
            out,
            "{} thread(s): {:.0} downloads/s of CPU time ({:.3} ms per download on the download threads); \
             process CPU {:.3} ms per download = {:.2} x the download threads' (1.00: no other thread worked)",
            r.threads,
            r.cpu_bound_per_second(),
            per(r.cpu.total, r.downloads),
            per(r.process_cpu, r.downloads),
            r.process_over_threads()
        );
    }
    let _ = writeln!(
        out,
        "SM-DP+ split, ms per download (1 thread): {}",
        timings_line(&first.smdp, first.downloads)
    );
    out
}

/// Issue 6 §4's targets for an SM-DP+ server process's CPU per download (ms) and for complete
/// in-process downloads per second on one thread.
pub const TARGET_SERVER_CPU_MS: f64 = 1.0;
pub const TARGET_ONE_THREAD_PER_SECOND: f64 = 600.0;

/// The two target figures of a run: in-process on one thread (`local`, its first row must be
/// the one-thread row), and the SM-DP+ server process's CPU per download for every HTTPS row.
pub fn targets_text(local: &InProcessReport, https: &[HttpsReport]) -> String {
    let mut out = String::new();
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    for r in https {
        let server = per(r.server_cpu, r.downloads);
        let _ = writeln!(
            out,
            "target: SM-DP+ server process CPU per download <= {TARGET_SERVER_CPU_MS:.1} ms ({} LPAs): \
             {server:.3} ms, {:.2} x the target: {}",
            r.lpas,
            server / TARGET_SERVER_CPU_MS,
            verdict(server <= TARGET_SERVER_CPU_MS)
        );
    }
    let wall = local.per_second();
    let cpu = local.cpu_bound_per_second();
    let _ = writeln!(
        out,
        "target: >= {TARGET_ONE_THREAD_PER_SECOND:.0} complete in-process downloads/s on {} thread: \
         {wall:.0}/s wall ({:.2} x the target: {}), {cpu:.0}/s of its CPU time ({:.2} x: {}); \
         process CPU = {:.2} x the thread's",
        local.threads,
        wall / TARGET_ONE_THREAD_PER_SECOND,
        verdict(wall >= TARGET_ONE_THREAD_PER_SECOND),
        cpu / TARGET_ONE_THREAD_PER_SECOND,
        verdict(cpu >= TARGET_ONE_THREAD_PER_SECOND),
        local.process_over_threads()
    );
    out
}

/// Prints the HTTPS table (one row per report), then where the server's CPU time goes:
/// its ES9+ functions (the in-process SM-DP+'s CPU time, `reference`), TLS handshakes
/// (`tls`, measured in memory), and the rest (HTTP, JSON, runtime), by difference.
pub fn print_https(
    https: &[HttpsReport],
    reference: Option<&InProcessReport>,
    tls: Option<&TlsHandshakeCpu>,
) {
    crate::output::print_stdout(&https_text(https, reference, tls));
}

/// The HTTPS table and the server's split, as [`print_https`] prints them.
pub fn https_text(
    https: &[HttpsReport],
    reference: Option<&InProcessReport>,
    tls: Option<&TlsHandshakeCpu>,
) -> String {
    let mut out = String::new();
    let Some(first) = https.first() else {
        return out;
    };
    let cores = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1);
    let _ = writeln!(out,
        "over loopback HTTPS, SM-DP+ in its own process ({} database), new TLS connection per download; CPU ms per download:",
        if first.db_file { "SQLite file" } else { "in-memory SQLite" }
    );
    let _ = writeln!(
        out,
        "{:>4} {:>9} {:>11} {:>10} {:>10} {:>7} {:>11} {:>7} {:>10} {:>10} {:>14}",
        "LPAs",
        "downloads",
        "downloads/s",
        "server CPU",
        "client CPU",
        "card",
        "ES9+ client",
        "LPA",
        "latency ms",
        "ES9+ wait",
        "server-bound/s"
    );
    for r in https {
        let n = r.downloads;
        let server_ms = per(r.server_cpu, n);
        let _ = writeln!(out,
            "{:>4} {:>9} {:>11.1} {:>10.3} {:>10.3} {:>7.3} {:>11.3} {:>7.3} {:>10.3} {:>10.3} {:>14.0}",
            r.lpas,
            n,
            r.per_second(),
            server_ms,
            per(r.client_cpu, n),
            per(r.client.card + r.client.card_build, n),
            per(r.client.smdp, n),
            per(r.client.lpa(), n),
            per(r.client.wall, n),
            per(r.client.es9_wall.saturating_sub(r.client.smdp), n),
            if server_ms > 0.0 {
                cores as f64 * 1e3 / server_ms
            } else {
                0.0
            }
        );
    }
    let _ = writeln!(out,
        "client columns: card = eUICC, ES9+ client = TLS + HTTP + JSON in the LPA's ES9+ calls, \
         LPA = the rest; latency = wall per download per LPA; ES9+ wait = wall in ES9+ calls not on the client's CPU"
    );
    let _ = writeln!(out,
        "server-bound/s = {cores} cores / server CPU per download: the rate if the SM-DP+ had the machine to itself"
    );
    for r in https {
        if let (Some(server), Some(client)) = (r.server_system, r.client_system) {
            let _ = writeln!(
                out,
                "kernel (system) CPU, ms per download ({} LPAs): server {:.3}, client {:.3}",
                r.lpas,
                per(server, r.downloads),
                per(client, r.downloads)
            );
        }
    }
    for r in https {
        if let Some(t) = &r.server {
            let _ = writeln!(out,
                "server's own split (wall ms inside its steps, inflated when threads wait for a core), {} LPAs: {}",
                r.lpas,
                timings_line(t, r.downloads)
            );
        }
    }
    if let (Some(reference), Some(tls)) = (reference, tls) {
        let functions = per(reference.cpu.smdp, reference.downloads);
        let handshake_server = per(tls.server, tls.handshakes);
        let handshake_client = per(tls.client, tls.handshakes);
        for r in https {
            let server = per(r.server_cpu, r.downloads);
            let _ = writeln!(out,
                "server CPU, ms per download ({} LPAs): {server:.3} = ES9+ functions {functions:.3} (in-process CPU) \
                 + TLS handshake {handshake_server:.3} + HTTP/JSON/runtime {:.3}",
                r.lpas,
                server - functions - handshake_server
            );
        }
        let _ = writeln!(out,
            "client CPU: TLS handshake {handshake_client:.3} ms of the ES9+ client column (ring, TLS 1.3, full handshake)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn options(count: usize) -> DownloadBenchOptions {
        DownloadBenchOptions {
            card: root().join("vectors/cards/euicc.toml"),
            pki: Files::pki(),
            templates: Files::templates(),
            template: "TS48V1-A-UNIQUE".into(),
            count,
            server_program: None,
            db_file: false,
            external: None,
        }
    }

    #[test]
    fn in_process_benchmark_completes_downloads_and_accounts_for_every_part() {
        let r = in_process(&options(3), 1).unwrap();
        assert_eq!((r.downloads, r.threads), (3, 1));
        // Three downloads plus nothing else: four ES9+ calls each (no cancel).
        assert_eq!(r.smdp.calls, 12);
        assert!(r.cpu.card > Duration::ZERO && r.cpu.smdp > Duration::ZERO);
        assert!(r.cpu.apdus >= 3 * 10, "{} APDUs", r.cpu.apdus);
        assert!(r.cpu.card + r.cpu.smdp + r.cpu.card_build <= r.cpu.total);
        assert!(r.package_len > 0);
        // The process clock counts the download thread's time too (clock resolution aside).
        assert!(r.process_cpu + Duration::from_millis(1) >= r.cpu.total);
        let text = in_process_text("TS48V1-A-UNIQUE", std::slice::from_ref(&r));
        assert!(text.contains("x the download threads'"), "{text}");
        let targets = targets_text(&r, &[]);
        assert!(
            targets.contains(">= 600 complete in-process downloads/s on 1 thread"),
            "{targets}"
        );
    }

    #[test]
    fn in_process_benchmark_runs_on_several_threads_sharing_one_smdp() {
        let r = in_process(&options(4), 2).unwrap();
        assert_eq!(r.smdp.calls, 16);
    }

    #[test]
    fn refuses_a_template_the_smdp_does_not_have() {
        let mut o = options(1);
        o.template = "NO-SUCH-TEMPLATE".into();
        let e = in_process(&o, 1).unwrap_err().to_string();
        assert!(e.contains("no template NO-SUCH-TEMPLATE"), "{e}");
    }

    #[test]
    fn reads_this_process_cpu_time_from_proc() {
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(started.elapsed());
        }
        let cpu = proc_cpu(std::process::id()).unwrap();
        // Ticks are 10 ms; at least the busy loop above must show, and no more than all time.
        assert!(cpu >= Duration::from_millis(30), "{cpu:?}");
        assert!(cpu <= process_cpu() + Duration::from_millis(10), "{cpu:?}");
    }

    #[test]
    fn stats_lines_round_trip() {
        let t = TimingsSnapshot {
            sign: Duration::from_nanos(1),
            verify: Duration::from_nanos(2),
            key_agreement: Duration::from_nanos(3),
            protection: Duration::from_nanos(4),
            personalise: Duration::from_nanos(5),
            db: Duration::from_nanos(6),
            total: Duration::from_nanos(70),
            calls: 8,
        };
        let line = format_stats(Duration::from_nanos(99), &t);
        assert_eq!(line, "stats 99 1 2 3 4 5 6 70 8");
        assert_eq!(parse_stats(&line).unwrap(), (Duration::from_nanos(99), t));
        assert!(parse_stats("stats 1 2").is_err());
        assert!(parse_stats("hello").is_err());
    }
}
