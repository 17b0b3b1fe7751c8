//! `simlab bench`: APDU rates of the emulated card on three paths, each measured side by
//! side with a null card (answers 90 00 to everything) on the same path in the same run,
//! so the ratio says what the card itself costs:
//! 1. in-process (`Uicc::transmit` vs `NullCard::transmit`), one core;
//! 2. over vpcd's wire protocol on loopback TCP (reader side ↔ card side), no pcscd;
//! 3. through pcscd and vpcd (the reader of `--vpcd`'s slot, "Virtual PCD 00 00" by
//!    default), with `--pcscd`.
//!
//! The workload is the commonest read: SELECT EF.ICCID by FID, then READ BINARY.
//!
//! `simlab bench --downloads` measures complete profile downloads instead ([`downloads`]).

pub mod downloads;

use crate::adapter::VpcdCard;
use crate::defaults::{BuiltIn, Files};
use crate::output::Output;
use crate::selftest;
use crate::transport::{PcscReader, Transport, TransportError};
use anyhow::{ensure, Context as _};
use clap::Args;
use simlab_emulator::rsp::ecdsa::{set_p256_backend, P256Backend};
use simlab_vpcd::reader::ReaderListener;
use simlab_vpcd::{NullCard, VirtualCard};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// APDUs per in-process measurement.
    #[arg(long, default_value_t = 400_000)]
    pub in_process: usize,
    /// APDUs per loopback TCP measurement.
    #[arg(long, default_value_t = 40_000)]
    pub tcp: usize,
    /// Also measure through pcscd (needs pcscd with vpcd; the card goes into --vpcd's slot).
    #[arg(long)]
    pub pcscd: bool,
    /// The vpcd slot for --pcscd (host:port; port 35963 + N is reader "Virtual PCD 00 0N").
    #[arg(
        long,
        value_name = "ADDR",
        env = crate::card_cli::VPCD_ENV,
        default_value = simlab_vpcd::DEFAULT_VPCD_ADDR
    )]
    pub vpcd: String,
    /// APDUs per pcscd measurement.
    #[arg(long, default_value_t = 10_000)]
    pub pcscd_apdus: usize,
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,

    /// Measure the seed's flows instead (docs/flows.md): every flow × variant on the embedded
    /// default, then --flow-load companion-download flows at once against one network process.
    #[arg(long)]
    pub flows: bool,
    /// Concurrent flows of the load run (0: none).
    #[arg(long, default_value_t = 1000)]
    pub flow_load: usize,
    /// A vectors directory (cards, PKI, profiles) for --flows; default: the built-in ones.
    #[arg(long)]
    pub vectors: Option<PathBuf>,

    /// Measure complete profile downloads (SGP.22) instead of APDUs: in-process, then over
    /// loopback HTTPS against a separate SM-DP+ process.
    #[arg(long)]
    pub downloads: bool,
    /// Downloads per measurement.
    #[arg(long, default_value_t = 200)]
    pub download_count: usize,
    /// Concurrent LPAs (each with its own eUICC) against the HTTPS SM-DP+.
    #[arg(long, default_value_t = 4)]
    pub lpas: usize,
    /// Threads of the in-process measurement (one row for 1 thread, one for this many).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Template downloaded (file stem in --templates, used as matching ID).
    #[arg(long, default_value = "TS48V1-A-UNIQUE")]
    pub template: String,
    /// eUICC definition: a file, or a built-in card name.
    #[arg(long, value_name = "FILE|NAME", default_value = crate::defaults::EUICC)]
    pub card: PathBuf,
    /// SM-DP+ PKI directory (SGP.26 layout); default: the built-in test PKI.
    #[arg(long, value_name = "DIR")]
    pub pki: Option<PathBuf>,
    /// SM-DP+ template directory; default: the built-in TS.48 templates.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Only the in-process download measurement.
    #[arg(long)]
    pub no_https: bool,
    /// The HTTPS SM-DP+ keeps its SQLite database in a file (default: in memory, as
    /// `simlab network serve` does without --db).
    #[arg(long)]
    pub db_file: bool,
    /// Use this running SM-DP+ (`host:port`, e.g. from `simlab network serve`) instead of
    /// starting one; its TLS root must be the CI of --pki.
    #[arg(long)]
    pub server: Option<String>,
    /// Process id of --server, to count its CPU time (from /proc/PID/stat).
    #[arg(long, requires = "server")]
    pub server_pid: Option<u32>,
    /// P-256 implementation for the download measurement: ring (the default), rustcrypto, or
    /// both side by side in one run.
    #[arg(long, value_enum, default_value = "ring")]
    pub p256: P256Choice,
    /// Another simlab binary (e.g. built from an earlier commit) measured in the same run as
    /// the baseline: its in-process one-thread downloads, and its SM-DP+ serving this build's
    /// HTTPS load; printed side by side with ratios.
    #[arg(long, value_name = "PROGRAM")]
    pub baseline: Option<PathBuf>,
    /// Internal: serve the SM-DP+ for the HTTPS download measurement and answer `reset` /
    /// `stats` on stdin.
    #[arg(long, hide = true)]
    pub serve_smdp: bool,
}

/// `--p256`: which ECDSA/ECDH implementation the download measurement uses on NIST P-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum P256Choice {
    Ring,
    Rustcrypto,
    Both,
}

impl P256Choice {
    fn backends(self) -> Vec<P256Backend> {
        match self {
            P256Choice::Ring => vec![P256Backend::Ring],
            P256Choice::Rustcrypto => vec![P256Backend::RustCrypto],
            P256Choice::Both => P256Backend::ALL.to_vec(),
        }
    }
}

fn pki(a: &BenchArgs) -> Files {
    Files::or_built_in(a.pki.as_deref(), BuiltIn::Pki)
}

fn templates(a: &BenchArgs) -> Files {
    Files::or_built_in(a.templates.as_deref(), BuiltIn::Profiles)
}

const SELECT_ICCID: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0xE2];
const READ_ICCID: [u8; 5] = [0x00, 0xB0, 0x00, 0x00, 0x0A];

fn workload(i: usize) -> &'static [u8] {
    if i % 2 == 0 {
        &SELECT_ICCID
    } else {
        &READ_ICCID
    }
}

/// One line of the report: the card's rate, the null card's, and their ratio.
#[derive(Debug, Clone)]
pub struct Row {
    pub path: &'static str,
    pub card: f64,
    pub null: f64,
}

impl Row {
    pub fn ratio(&self) -> f64 {
        self.card / self.null
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn rate(n: usize, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn drive(card: &mut dyn VirtualCard, n: usize) -> anyhow::Result<()> {
    card.power_on();
    for i in 0..n {
        let answer = card.transmit(workload(i));
        ensure!(
            answer.ends_with(&[0x90, 0x00]),
            "card answered {}",
            hex::encode(&answer)
        );
    }
    Ok(())
}

fn in_process(n: usize) -> anyhow::Result<(f64, f64)> {
    let (uicc, _) = selftest::load(None)?;
    let mut card = VpcdCard::new(uicc);
    let card_rate = rate(n, || drive(&mut card, n))?;
    let mut null = NullCard::default();
    let null_rate = rate(n, || drive(&mut null, n))?;
    Ok((card_rate, null_rate))
}

fn over_tcp<C: VirtualCard + 'static>(card: C, n: usize) -> anyhow::Result<f64> {
    let listener = ReaderListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let thread = simlab_vpcd::card::spawn(card, addr, Default::default())?;
    let mut conn = listener.accept_timeout(Duration::from_secs(10))?;
    conn.power_on()?;
    let r = rate(n, || {
        for i in 0..n {
            let answer = conn.transmit(workload(i))?;
            ensure!(
                answer.ends_with(&[0x90, 0x00]),
                "card answered {}",
                hex::encode(&answer)
            );
        }
        Ok(())
    });
    drop(conn);
    thread.stop()?;
    r
}

/// Waits until pcscd shows a card in the reader and connects to it.
fn connect_pcscd(reader: &str) -> anyhow::Result<PcscReader> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match PcscReader::connect(reader) {
            Ok(r) => return Ok(r),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("waiting for the card in {reader}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(e).context("pcscd never showed the card; is pcscd running with vpcd?")
            }
        }
    }
}

fn through_pcscd<C: VirtualCard + 'static>(card: C, vpcd: &str, n: usize) -> anyhow::Result<f64> {
    let reader_name = crate::card_cli::vpcd_reader_name(vpcd)?;
    let thread = simlab_vpcd::card::spawn(card, vpcd.to_owned(), Default::default())?;
    let result = (|| {
        let mut reader = connect_pcscd(&reader_name)?;
        rate(n, || {
            for i in 0..n {
                let answer = reader
                    .transmit_raw(workload(i))
                    .map_err(|e: TransportError| anyhow::anyhow!(e))?;
                ensure!(
                    answer.ends_with(&[0x90, 0x00]),
                    "card answered {}",
                    hex::encode(&answer)
                );
            }
            Ok(())
        })
    })();
    thread.stop()?;
    // pcscd notices the removal at its next poll; let the slot empty before the next card.
    std::thread::sleep(Duration::from_millis(900));
    result
}

/// Runs the measurements and returns the rows.
pub fn measure(a: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let repeat = a.repeat.max(1);
    let mut rows = Vec::new();
    let (mut c, mut z) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (card, null) = in_process(a.in_process)?;
        c.push(card);
        z.push(null);
    }
    rows.push(Row {
        path: "in-process",
        card: median(c),
        null: median(z),
    });

    let (mut c, mut z) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        c.push(over_tcp(VpcdCard::new(selftest::load(None)?.0), a.tcp)?);
        z.push(over_tcp(NullCard::default(), a.tcp)?);
    }
    rows.push(Row {
        path: "vpcd TCP (loopback)",
        card: median(c),
        null: median(z),
    });

    if a.pcscd {
        let (mut c, mut z) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            c.push(through_pcscd(
                VpcdCard::new(selftest::load(None)?.0),
                &a.vpcd,
                a.pcscd_apdus,
            )?);
            z.push(through_pcscd(NullCard::default(), &a.vpcd, a.pcscd_apdus)?);
        }
        rows.push(Row {
            path: "pcscd + vpcd",
            card: median(c),
            null: median(z),
        });
    }
    Ok(rows)
}

/// One backend's download measurements.
struct DownloadRun {
    backend: P256Backend,
    local: Vec<downloads::InProcessReport>,
    https: Vec<downloads::HttpsReport>,
    tls: Option<downloads::TlsHandshakeCpu>,
    baseline: Option<Baseline>,
}

/// The same measurements of `--baseline PROGRAM`.
struct Baseline {
    program: PathBuf,
    local: downloads::BaselineInProcess,
    https: Vec<downloads::HttpsReport>,
}

/// `simlab bench --downloads`: in-process rows, then HTTPS rows, per P-256 backend; with
/// `--p256 both` the backends alternate in one run and a comparison closes the output.
fn run_downloads(a: &BenchArgs, out: Output) -> anyhow::Result<()> {
    let opts = downloads::DownloadBenchOptions {
        card: a.card.clone(),
        pki: pki(a),
        templates: templates(a),
        template: a.template.clone(),
        count: a.download_count.max(1),
        server_program: None,
        db_file: a.db_file,
        external: a.server.clone().map(|s| (s, a.server_pid)),
    };
    let mut runs = Vec::new();
    for backend in a.p256.backends() {
        set_p256_backend(backend);
        if !out.is_json() {
            out.progress(format!("== P-256 backend: {backend}"));
        }
        let mut local = vec![downloads::in_process(&opts, 1)?];
        if a.threads > 1 {
            local.push(downloads::in_process(&opts, a.threads)?);
        }
        if !out.is_json() {
            out.progress(downloads::in_process_text(&a.template, &local).trim_end());
        }
        let mut https = Vec::new();
        let mut tls = None;
        let lpas: &[usize] = if a.lpas > 1 { &[1, a.lpas] } else { &[1] };
        if !a.no_https {
            for &k in lpas {
                https.push(downloads::over_https(&opts, k)?);
            }
            tls = Some(downloads::tls_handshakes(
                &opts.pki,
                "127.0.0.1",
                opts.count,
            )?);
            if !out.is_json() {
                out.progress(downloads::https_text(&https, local.first(), tls.as_ref()).trim_end());
            }
        }
        let baseline = match &a.baseline {
            Some(program) => {
                if !out.is_json() {
                    out.progress(format!("== baseline {}: measuring", program.display()));
                }
                let local = downloads::baseline_in_process(program, &opts)?;
                let mut https = Vec::new();
                // Against an external --server there is no baseline server to start.
                if !a.no_https && opts.external.is_none() {
                    let theirs = downloads::DownloadBenchOptions {
                        server_program: Some(program.clone()),
                        ..opts.clone()
                    };
                    for &k in lpas {
                        https.push(downloads::over_https(&theirs, k)?);
                    }
                }
                Some(Baseline {
                    program: program.clone(),
                    local,
                    https,
                })
            }
            None => None,
        };
        if !out.is_json() {
            if let Some(one) = local.first() {
                out.progress(downloads::targets_text(one, &https).trim_end());
            }
            if let Some(b) = &baseline {
                out.progress(baseline_text(&local, &https, b).trim_end());
            }
        }
        runs.push(DownloadRun {
            backend,
            local,
            https,
            tls,
            baseline,
        });
    }
    set_p256_backend(P256Backend::default());
    let result = serde_json::json!({
        "runs": runs.iter().map(|r| serde_json::json!({
            "p256": r.backend.to_string(),
            "inProcess": downloads::in_process_json(&a.template, &r.local),
            "https": (!a.no_https).then(|| downloads::https_json(&r.https, r.tls.as_ref())),
            "baseline": r.baseline.as_ref().map(|b| serde_json::json!({
                "program": b.program.display().to_string(),
                "inProcess": {
                    "threads": 1,
                    "downloadsPerSecond": b.local.per_second,
                    "cpuMsPerDownload": { "total": b.local.cpu_ms, "smdp": b.local.smdp_ms },
                },
                "https": (!b.https.is_empty()).then(|| downloads::https_json(&b.https, None)),
            })),
        })).collect::<Vec<_>>(),
    });
    out.result(&result, || comparison(&runs))
}

/// This build next to `--baseline` (ratios this / baseline): in-process on one thread, and the
/// server process's CPU for each HTTPS row (both servers under this build's load generator).
fn baseline_text(
    local: &[downloads::InProcessReport],
    https: &[downloads::HttpsReport],
    b: &Baseline,
) -> String {
    let ms = |d: Duration, n: usize| d.as_secs_f64() * 1e3 / n.max(1) as f64;
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    if let Some(one) = local.first() {
        rows.push((
            "in-process downloads/s, 1 thread (wall)".into(),
            one.per_second(),
            b.local.per_second,
        ));
        rows.push((
            "in-process downloads/s, 1 thread (of its CPU)".into(),
            one.cpu_bound_per_second(),
            if b.local.cpu_ms > 0.0 {
                1e3 / b.local.cpu_ms
            } else {
                0.0
            },
        ));
        rows.push((
            "in-process CPU ms per download, 1 thread".into(),
            ms(one.cpu.total, one.downloads),
            b.local.cpu_ms,
        ));
        rows.push((
            "in-process SM-DP+ ES9+ functions CPU ms".into(),
            ms(one.cpu.smdp, one.downloads),
            b.local.smdp_ms,
        ));
    }
    for (ours, theirs) in https.iter().zip(&b.https) {
        rows.push((
            format!("HTTPS server process CPU ms, {} LPAs", ours.lpas),
            ms(ours.server_cpu, ours.downloads),
            ms(theirs.server_cpu, theirs.downloads),
        ));
        rows.push((
            format!("HTTPS downloads/s, {} LPAs", ours.lpas),
            ours.per_second(),
            theirs.per_second(),
        ));
    }
    let mut t = format!(
        "== this build next to the baseline {} (same run; ratio = this / baseline)\n{:<48} {:>11} {:>11} {:>8}\n",
        b.program.display(),
        "measurement",
        "this build",
        "baseline",
        "ratio"
    );
    for (what, ours, theirs) in rows {
        t.push_str(&format!(
            "{what:<48} {ours:>11.3} {theirs:>11.3} {:>8}\n",
            if theirs > 0.0 {
                format!("x{:.2}", ours / theirs)
            } else {
                "-".into()
            }
        ));
    }
    t
}

/// The backends side by side (first row = baseline for the ratios); empty for one backend.
fn comparison(runs: &[DownloadRun]) -> String {
    let [base, ..] = runs else {
        return String::new();
    };
    if runs.len() < 2 {
        return String::new();
    }
    let ms = |d: Duration, n: usize| d.as_secs_f64() * 1e3 / n.max(1) as f64;
    let row = |r: &DownloadRun| {
        let l = r.local.first();
        (
            l.map_or(0.0, downloads::InProcessReport::per_second),
            l.map_or(0.0, |l| ms(l.cpu.smdp, l.downloads)),
            l.map_or(0.0, |l| ms(l.cpu.card, l.downloads)),
            r.https.last().map(|h| ms(h.server_cpu, h.downloads)),
            r.https.last().map(downloads::HttpsReport::per_second),
        )
    };
    let b = row(base);
    let mut t = format!(
        "== side by side (in-process: 1 thread; HTTPS: the last row above)\n{:<12} {:>13} {:>12} {:>10} {:>16} {:>12}\n",
        "P-256", "downloads/s", "SM-DP+ ms", "card ms", "HTTPS server ms", "HTTPS dl/s"
    );
    for r in runs {
        let (rate, smdp, card, server, https) = row(r);
        let opt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        t.push_str(&format!(
            "{:<12} {:>13.1} {:>12.3} {:>10.3} {:>16} {:>12}\n",
            r.backend.to_string(),
            rate,
            smdp,
            card,
            opt(server, 3),
            opt(https, 1)
        ));
        if r.backend != base.backend {
            t.push_str(&format!(
                "  vs {}: downloads/s ×{:.2}, SM-DP+ CPU ×{:.2}, card CPU ×{:.2}\n",
                base.backend,
                rate / b.0.max(f64::MIN_POSITIVE),
                smdp / b.1.max(f64::MIN_POSITIVE),
                card / b.2.max(f64::MIN_POSITIVE)
            ));
        }
    }
    t
}

/// `simlab bench`: measures and prints the table (or the JSON result).
pub fn run(a: &BenchArgs, out: Output) -> anyhow::Result<()> {
    if a.serve_smdp {
        if let Some(backend) = a.p256.backends().first() {
            set_p256_backend(*backend);
        }
        return downloads::serve_smdp(&pki(a), &templates(a), a.db_file);
    }
    if a.downloads {
        return run_downloads(a, out);
    }
    if a.flows {
        crate::output::print_stdout(&crate::flows::bench::run(
            a.vectors.as_deref(),
            a.flow_load,
        )?);
        return Ok(());
    }
    let rows = measure(a)?;
    let workload = "SELECT EF.ICCID (00A4000C022FE2) + READ BINARY (00B000000A)";
    let json = serde_json::json!({
        "workload": workload,
        "repeat": a.repeat.max(1),
        "rows": rows.iter().map(|r| serde_json::json!({
            "path": r.path,
            "cardApdusPerSecond": r.card.round(),
            "nullApdusPerSecond": r.null.round(),
            "ratio": (r.ratio() * 1e4).round() / 1e4,
        })).collect::<Vec<_>>(),
    });
    out.result(&json, || {
        let mut text = format!(
            "workload: {workload}, median of {}\n{:<22} {:>14} {:>14} {:>8}\n",
            a.repeat.max(1),
            "path",
            "card APDU/s",
            "null APDU/s",
            "ratio"
        );
        for r in &rows {
            text.push_str(&format!(
                "{:<22} {:>14.0} {:>14.0} {:>7.1}%\n",
                r.path,
                r.card,
                r.null,
                100.0 * r.ratio()
            ));
        }
        text
    })
}
